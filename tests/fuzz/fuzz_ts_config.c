/*
 * fuzz_ts_config.c - libFuzzer target for TorchServe's config.properties
 * (src/serve/): the properties reader, the keys, the `models` JSON, the
 * model specs, the addresses and the word splitting of cpu_launcher_args.
 *
 * Properties: nothing crashes or leaks; a refusal is -EINVAL (or -ENOMEM)
 * with one printable line "fuzz:LINE: ..." whose LINE is a line of the
 * input; a config that is read holds what the header promises (ports in
 * range, model files that pass the store rule again unchanged, workers and
 * batch sizes in range, an argv of argc words), every warning and note is
 * one line naming the input; and the words of cpu_launcher_args, joined
 * again as a shell would quote them (pf_shell_join), split to the same
 * words.  The input is also read as one --models list.
 */
#include "pinfer.h"
#include "serve/serve.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *const ENV[] = {"MS=/models", "MODEL=resnet-18", "EMPTY=", NULL};

/* One printable line, starting "fuzz:" and a line number within the input. */
static void check_line(const char *msg, size_t nlines, bool numbered)
{
    if (!msg)
        abort();
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            abort();
    if (!numbered)
        return;
    if (strncmp(msg, "fuzz:", 5) != 0)
        abort();
    char *end;
    long line = strtol(msg + 5, &end, 10);
    if (end == msg + 5 || *end != ':' || line < 1 || (size_t)line > nlines)
        abort();
}

static void check_spec(const pf_serve_model_spec *s, size_t n)
{
    if (s->all) {
        if (s->name || s->file || n != 1)
            abort();
        return;
    }
    if (pf_serve_model_name_check(s->name, NULL) != 0)
        abort();
    char *again = NULL;
    if (pf_serve_store_path(s->file, &again, NULL) != 0 || strcmp(again, s->file) != 0)
        abort();
    free(again);
}

static bool printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* split(join(argv)) == argv, for words a shell line can hold on one line. */
static void check_words(char *const *argv, size_t argc)
{
    for (size_t i = 0; i < argc; i++)
        if (!printable(argv[i]))
            return;
    char *line = pf_shell_join(argv);
    if (!line)
        return;
    char **again = NULL;
    size_t n = 0;
    if (pf__shell_split(line, &again, &n, NULL) != 0 || n != argc)
        abort();
    for (size_t i = 0; i < n; i++)
        if (strcmp(again[i], argv[i]) != 0)
            abort();
    pf_strv_free(again);
    free(line);
}

static void check_config(const pf_serve_config *c, size_t nlines)
{
    const pf_serve_address *a[] = {c->inference_address, c->management_address, c->metrics_address};
    for (size_t i = 0; i < 3; i++)
        if (!a[i] || !a[i]->host || !*a[i]->host || a[i]->port < 0 || a[i]->port > 65535)
            abort();
    for (size_t i = 0; i < c->nload_models; i++)
        check_spec(&c->load_models[i], c->nload_models);
    if (c->default_workers_per_model < 0 || c->job_queue_size < 1 ||
        c->default_response_timeout < 1 || c->max_request_size < 1 || c->max_response_size < 1)
        abort();
    for (size_t i = 0; i < c->nmodels; i++) {
        const pf_serve_model_config *m = &c->models[i];
        if (pf_serve_model_name_check(m->name, NULL) != 0 ||
            pf__serve_name_check("version", m->version, NULL) != 0 || m->min_workers < 0 ||
            m->max_workers < m->min_workers || m->batch_size < 1 || m->max_batch_delay < 0 ||
            m->response_timeout < 1 || m->line < 1 || (size_t)m->line > nlines)
            abort();
        if (m->mar_name) {
            char *again = NULL;
            if (pf_serve_store_path(m->mar_name, &again, NULL) != 0 ||
                strcmp(again, m->mar_name) != 0)
                abort();
            free(again);
        }
    }
    if (!c->cpu_launcher_argv || c->cpu_launcher_argv[c->cpu_launcher_argc])
        abort();
    for (size_t i = 0; i < c->cpu_launcher_argc; i++)
        if (!c->cpu_launcher_argv[i])
            abort();
    check_words(c->cpu_launcher_argv, c->cpu_launcher_argc);
    for (size_t i = 0; i < c->nproperties; i++)
        if (!c->properties[i].key || !c->properties[i].value || c->properties[i].line < 1 ||
            (size_t)c->properties[i].line > nlines)
            abort();
    for (size_t i = 0; i < c->nwarnings; i++)
        check_line(c->warnings[i], nlines, true);
    for (size_t i = 0; i < c->nnotes; i++)
        check_line(c->notes[i], nlines, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    size_t nlines = 1;
    for (size_t i = 0; i < size; i++)
        if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == size || text[i + 1] != '\n')))
            nlines++;
    pf_serve_config *c = NULL;
    char *why = NULL;
    int rc = pf_serve_config_parse(text, size, "fuzz", ENV, &c, &why);
    if (rc == 0) {
        if (why)
            abort();
        check_config(c, nlines);
        pf_serve_config_free(c);
    } else if (rc == -EINVAL) {
        if (c)
            abort();
        check_line(why, nlines, true);
    } else if (rc != -ENOMEM) {
        abort();
    }
    free(why);

    /* The same bytes as one --models list, up to a NUL. */
    char *list = strndup(text, size);
    if (!list)
        return 0;
    pf_serve_model_spec *specs = NULL;
    size_t n = 0;
    why = NULL;
    rc = pf_serve_model_list_parse(list, &specs, &n, &why);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            check_spec(&specs[i], n);
        pf_serve_model_list_free(specs, n);
    } else if (rc == -EINVAL) {
        if (specs || n)
            abort();
        check_line(why, 0, false);
    } else if (rc != -ENOMEM) {
        abort();
    }
    free(why);
    free(list);
    return 0;
}
