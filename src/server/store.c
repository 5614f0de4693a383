/*
 * store.c - model files in the model store: a FILE of --models or of the
 * management API resolved to a file that really lies inside the store (links
 * that lead out refused), an archive's name and version from its
 * MAR-INF/MANIFEST.json (a .mar read with libzip, or the unpacked layout),
 * and the models of "all".
 */
#include "server/server.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

#define MANIFEST "MAR-INF/MANIFEST.json"
#define MANIFEST_MAX (1u << 20)

int pf__store_resolve(const char *store, const char *file, char **path, char **why)
{
    *path = NULL;
    if (!store)
        return pf__fail(why, -EINVAL, "'%s': no model store is set (--model-store)", file);
    char *norm = NULL;
    int rc = pf_serve_store_path(file, &norm, why);
    if (rc < 0)
        return rc;
    char *joined = pf__strdupf("%s/%s", store, norm);
    free(norm);
    if (!joined)
        return -ENOMEM;
    char *real = realpath(joined, NULL);
    if (!real) {
        int err = errno;
        rc = pf__fail(why, err == ENOENT ? -ENOENT : -err, "model file '%s': %s", file,
                      strerror(err));
        free(joined);
        return rc;
    }
    free(joined);
    size_t n = strlen(store);
    if (strncmp(real, store, n) != 0 || (real[n] != '/' && real[n] != '\0') || !real[n]) {
        free(real);
        return pf__fail(why, -EINVAL, "model file '%s' leads out of the model store (a link)",
                        file);
    }
    *path = real;
    return 0;
}

/* The manifest's text: from the folder, or from the archive. */
static int read_manifest(const char *path, char **text, char **why)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return pf__fail(why, -errno, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        char *file = pf__strdupf("%s/" MANIFEST, path);
        FILE *f = file ? fopen(file, "re") : NULL;
        free(file);
        if (!f)
            return 0; /* a folder without a manifest: no name from it */
        char *buf = calloc(MANIFEST_MAX + 1, 1);
        size_t got = buf ? fread(buf, 1, MANIFEST_MAX, f) : 0;
        fclose(f);
        if (!buf)
            return -ENOMEM;
        buf[got] = '\0';
        *text = buf;
        return 0;
    }
    int err = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY, &err);
    if (!z)
        return 0; /* not a zip: a TorchScript file has no manifest to read */
    zip_stat_t zs;
    int rc = 0;
    if (zip_stat(z, MANIFEST, 0, &zs) == 0) {
        if (!(zs.valid & ZIP_STAT_SIZE) || zs.size > MANIFEST_MAX) {
            rc = pf__fail(why, -EINVAL, "%s: " MANIFEST " is larger than 1 MiB", path);
        } else {
            zip_file_t *zf = zip_fopen(z, MANIFEST, 0);
            char *buf = calloc((size_t)zs.size + 1, 1);
            zip_int64_t got = zf && buf ? zip_fread(zf, buf, zs.size) : -1;
            if (zf)
                zip_fclose(zf);
            if (got != (zip_int64_t)zs.size) {
                free(buf);
                rc = pf__fail(why, -EINVAL, "%s: cannot read " MANIFEST, path);
            } else {
                *text = buf;
            }
        }
    }
    zip_discard(z);
    return rc;
}

int pf__store_manifest(const char *path, char **name, char **version, char **why)
{
    *name = *version = NULL;
    char *text = NULL;
    int rc = read_manifest(path, &text, why);
    if (rc < 0 || !text)
        return rc;
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    free(text);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return pf__fail(why, -EINVAL, "%s: " MANIFEST " is not a JSON object", path);
    }
    json_t *model = json_object_get(doc, "model");
    const char *n = json_string_value(json_object_get(model, "modelName"));
    const char *v = json_string_value(json_object_get(model, "modelVersion"));
    if (n && pf_serve_model_name_check(n, why) < 0)
        rc = -EINVAL;
    else if (v && pf__serve_name_check("model version", v, why) < 0)
        rc = -EINVAL;
    if (rc == 0 && n && !(*name = strdup(n)))
        rc = -ENOMEM;
    if (rc == 0 && v && !(*version = strdup(v)))
        rc = -ENOMEM;
    json_decref(doc);
    if (rc < 0) {
        free(*name);
        free(*version);
        *name = *version = NULL;
    }
    return rc;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int pf__store_list(const char *store, char ***files, size_t *count, char **why)
{
    *files = NULL;
    *count = 0;
    DIR *d = opendir(store);
    if (!d)
        return pf__fail(why, -errno, "cannot read the model store %s: %s", store, strerror(errno));
    pf__strv sv = {0};
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *full = pf__strdupf("%s/%s/" MANIFEST, store, e->d_name);
        struct stat st;
        bool unpacked = full && stat(full, &st) == 0 && S_ISREG(st.st_mode);
        free(full);
        if (unpacked || has_suffix(e->d_name, ".mar") || has_suffix(e->d_name, ".pt") ||
            has_suffix(e->d_name, ".pth"))
            rc = pf__strv_take(&sv, strdup(e->d_name));
    }
    closedir(d);
    if (rc < 0) {
        pf__strv_free(&sv);
        return rc;
    }
    if (sv.len)
        qsort(sv.v, sv.len, sizeof *sv.v, by_name);
    *files = sv.v;
    *count = sv.len;
    return 0;
}
