/*
 * models.c - naming the models to load: model names, the model-store path
 * rule, and the items of --models / load_models ("NAME=FILE", "FILE", "all").
 *
 * TorchServe splits load_models on commas, each item on its first '=', skips
 * empty items, and accepts "all" in any case; its FILE may also be a URL to
 * download.  pinfer loads from the model store only (docs/serve.md, "Model
 * files"): a FILE is a relative path that stays inside the store, checked
 * here on the text, before anything is opened.
 */
#include "serve/serve.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAME_MAX_LEN 255

int pf__serve_name_check(const char *what, const char *name, char **why)
{
    if (!name || !*name)
        return pf__serve_fail(why, -EINVAL, "an empty %s", what);
    size_t n = strlen(name);
    if (n > NAME_MAX_LEN)
        return pf__serve_fail(why, -EINVAL, "%s '%.40s...' is longer than %d characters", what,
                              name, NAME_MAX_LEN);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '-' && c != '.')))
            return pf__serve_fail(why, -EINVAL,
                                  "%s '%s': letters, digits, '_', '-' and '.' only, starting with "
                                  "a letter or a digit",
                                  what, name);
    }
    return 0;
}

int pf_serve_model_name_check(const char *name, char **why)
{
    return pf__serve_name_check("model name", name, why);
}

/* "s3://", "http://", "file://": a scheme (a letter, then letters, digits, + - .) and "://". */
static bool is_url(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
        return false;
    const char *p = s + 1;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '+' || *p == '-' || *p == '.')
        p++;
    return strncmp(p, "://", 3) == 0;
}

int pf_serve_store_path(const char *file, char **normalized, char **why)
{
    if (!normalized)
        return -EINVAL;
    *normalized = NULL;
    if (!file || !*file)
        return pf__serve_fail(why, -EINVAL, "an empty model file name");
    for (const unsigned char *p = (const unsigned char *)file; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return pf__serve_fail(why, -EINVAL, "model file '%s' holds a control character", file);
    if (is_url(file))
        return pf__serve_fail(why, -EINVAL,
                              "model file '%s' is a URL: pinfer loads models from the model store "
                              "only (download it there and name it relative to the store)",
                              file);
    if (file[0] == '/')
        return pf__serve_fail(why, -EINVAL,
                              "model file '%s' is an absolute path: name it relative to the model "
                              "store",
                              file);
    pf__buf b = {0};
    for (const char *p = file; *p;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            pf__buf_free(&b);
            return pf__serve_fail(
                why, -EINVAL, "model file '%s' leaves the model store ('..' is not allowed)", file);
        }
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (b.len > 0)
                pf__buf_put(&b, "/", 1);
            pf__buf_put(&b, p, n);
        }
        p += n;
        while (*p == '/')
            p++;
    }
    if (b.len == 0 && !b.failed) {
        pf__buf_free(&b);
        return pf__serve_fail(
            why, -EINVAL, "model file '%s' names the model store itself, not a model in it", file);
    }
    return pf__buf_take(&b, normalized);
}

/* The stem of a normalised FILE: its last component without a model file's extension. */
static char *stem_of(const char *file)
{
    static const char *const EXTS[] = {".tar.gz", ".mar", ".model", ".pt", ".pth", ".zip"};
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t n = strlen(base);
    for (size_t i = 0; i < sizeof EXTS / sizeof *EXTS; i++) {
        size_t e = strlen(EXTS[i]);
        if (n > e && strcmp(base + n - e, EXTS[i]) == 0) {
            n -= e;
            break;
        }
    }
    return strndup(base, n);
}

static void spec_clear(pf_serve_model_spec *spec)
{
    free(spec->name);
    free(spec->file);
    memset(spec, 0, sizeof *spec);
}

/* Blanks around an item are not part of it ("a.mar, b.mar"). */
static void trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* Parse the item [text, text + len) into *spec (cleared on failure). */
static int parse_item(const char *text, size_t len, pf_serve_model_spec *spec, char **why)
{
    memset(spec, 0, sizeof *spec);
    trim(&text, &len);
    char *item = strndup(text, len);
    if (!item)
        return -ENOMEM;
    int rc = 0;
    char *sub = NULL;
    if (strcasecmp(item, "all") == 0) {
        spec->all = true;
        goto done;
    }
    if (len == 0) {
        rc = pf__serve_fail(why, -EINVAL, "an empty model (write NAME=FILE, FILE or all)");
        goto done;
    }
    char *eq = strchr(item, '=');
    const char *file = item;
    if (eq) {
        *eq = '\0';
        file = eq + 1;
        spec->named = true;
        if (!*item) {
            rc = pf__serve_fail(why, -EINVAL, "'%s=%s': no model name before '='", item, file);
            goto done;
        }
        if (!*file) {
            rc = pf__serve_fail(why, -EINVAL, "'%s=': no model file after '='", item);
            goto done;
        }
    }
    rc = pf_serve_store_path(file, &spec->file, &sub);
    if (rc == 0) {
        spec->name = eq ? strdup(item) : stem_of(spec->file);
        if (!spec->name)
            rc = -ENOMEM;
    }
    if (rc == 0 && pf_serve_model_name_check(spec->name, &sub) < 0) {
        rc = eq ? pf__serve_fail(why, -EINVAL, "%s", sub ? sub : "invalid model name")
                : pf__serve_fail(why, -EINVAL, "%s, from '%s' (name the model: NAME=%s)",
                                 sub ? sub : "invalid model name", file, file);
        goto done;
    }
    if (rc == -EINVAL)
        rc = pf__serve_fail(why, rc, "%s", sub ? sub : "invalid model file");
done:
    free(sub);
    free(item);
    if (rc < 0)
        spec_clear(spec);
    return rc;
}

int pf_serve_model_spec_parse(const char *text, pf_serve_model_spec **out, char **why)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    pf_serve_model_spec *spec = calloc(1, sizeof *spec);
    if (!spec)
        return -ENOMEM;
    int rc = parse_item(text ? text : "", text ? strlen(text) : 0, spec, why);
    if (rc < 0) {
        free(spec);
        return rc;
    }
    *out = spec;
    return 0;
}

void pf_serve_model_spec_free(pf_serve_model_spec *spec)
{
    if (!spec)
        return;
    spec_clear(spec);
    free(spec);
}

int pf_serve_model_list_parse(const char *text, pf_serve_model_spec **specs, size_t *count,
                              char **why)
{
    if (!specs || !count)
        return -EINVAL;
    *specs = NULL;
    *count = 0;
    pf_serve_model_spec *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (const char *p = text ? text : ""; rc == 0;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *item = p;
        size_t ilen = len;
        trim(&item, &ilen);
        if (ilen > 0) {
            if (n == cap) {
                cap = cap ? cap * 2 : 4;
                pf_serve_model_spec *grown = realloc(v, cap * sizeof *v);
                if (!grown) {
                    rc = -ENOMEM;
                    break;
                }
                v = grown;
            }
            rc = parse_item(item, ilen, &v[n], why);
            if (rc < 0)
                break;
            n++;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (v[i].all && n > 1)
            rc = pf__serve_fail(why, -EINVAL,
                                "'all' loads every model of the store: it cannot be listed with "
                                "other models");
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (!v[i].all && !v[j].all && strcmp(v[i].name, v[j].name) == 0)
                rc = pf__serve_fail(why, -EINVAL, "model name '%s' is given twice (%s and %s)",
                                    v[i].name, v[j].file, v[i].file);
    }
    if (rc < 0) {
        pf_serve_model_list_free(v, n);
        return rc;
    }
    *specs = v;
    *count = n;
    return 0;
}

void pf_serve_model_list_free(pf_serve_model_spec *specs, size_t count)
{
    for (size_t i = 0; specs && i < count; i++)
        spec_clear(&specs[i]);
    free(specs);
}
