/*
 * fuzz_tune_conf.c - libFuzzer target for pinfer tune's configuration
 * files (src/tune/): IPEX hypertune's YAML (pf_tune_conf_parse) and
 * --space files, JSON and YAML (pf_tune_space_load), on a fixed synthetic
 * topology (2 nodes, 8 cores, SMT) and a space built by hand.
 *
 * The first byte picks the reader (and, for --space, the name that picks
 * the format); the rest is the text.  Nothing crashes or leaks; a refusal
 * is -EINVAL (or -ENOMEM) with one printable line naming the input; what is
 * read leaves a space whose every knob has values, each valid and
 * canonical (pf_tune_space_set takes them again unchanged), its default
 * among them; every note is one printable line naming the input.
 */
#include "pinfer.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const LISTS[PF_TUNE_NKNOBS][4] = {
    {"8x1", "2x4", "1x8"}, {"off", "on"}, {"all", "0"}, {"bind", "off"}, {"default", "jemalloc"},
    {"default", "intel"},  {"0", "200"},  {"1", "4"},   {"100"}};

static pf_tune_space *space_make(void)
{
    pf_tune_space *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    for (int k = 0; k < PF_TUNE_NKNOBS; k++) {
        s->values[k] = calloc(4, sizeof(char *));
        for (size_t i = 0; i < 4 && LISTS[k][i]; i++)
            s->values[k][s->nvalues[k]++] = strdup(LISTS[k][i]);
        s->defaults[k] = s->nvalues[k] - 1;
    }
    return s;
}

static void space_free(pf_tune_space *s)
{
    for (int k = 0; k < PF_TUNE_NKNOBS; k++) {
        for (size_t i = 0; i < s->nvalues[k]; i++)
            free(s->values[k][i]);
        free(s->values[k]);
    }
    free(s);
}

static void check_line(const char *msg, const char *source)
{
    if (!msg || strncmp(msg, source, strlen(source)) != 0)
        abort();
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            abort();
}

/* Every knob valid: set again with its own values, nothing changes. */
static void check_space(pf_tune_space *s)
{
    for (int k = 0; k < PF_TUNE_NKNOBS; k++) {
        if (s->nvalues[k] == 0 || s->defaults[k] >= s->nvalues[k])
            abort();
        size_t n = s->nvalues[k], def = s->defaults[k];
        char **copy = calloc(n, sizeof *copy);
        for (size_t i = 0; i < n; i++)
            copy[i] = strdup(s->values[k][i]);
        if (pf_tune_space_set(s, k, copy, n, NULL) != 0 || s->nvalues[k] != n ||
            s->defaults[k] != def)
            abort();
        for (size_t i = 0; i < n; i++) {
            if (strcmp(copy[i], s->values[k][i]) != 0)
                abort();
            free(copy[i]);
        }
        free(copy);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pf_topology *topo;
    if (!topo && pf_topology_load("synthetic:pack:2 numa:1 core:4 pu:2", &topo, NULL) != 0)
        abort();
    if (size < 1)
        return 0;
    int mode = data[0] % 4;
    const char *text = (const char *)data + 1;
    size--;
    pf_tune_space *s = space_make();
    char *why = NULL;
    int rc;
    if (mode == 0) {
        pf_tune_conf c;
        rc = pf_tune_conf_parse(text, size, "fuzz.yaml", topo, s, &c, &why);
        if (rc == 0) {
            if (why || c.strategy < -1 || c.strategy > PF_TUNE_RANDOM || c.max_trials < 0)
                abort();
            for (char **n = c.notes; n && *n; n++)
                check_line(*n, "fuzz.yaml:");
            pf_tune_conf_clear(&c);
        } else if (c.output_dir || c.notes) {
            abort();
        }
    } else {
        static const char *const NAMES[] = {"", "fuzz.json", "fuzz.yaml", "fuzz"};
        rc = pf_tune_space_load(s, text, size, NAMES[mode], &why);
    }
    if (rc == 0) {
        if (why)
            abort();
        check_space(s);
    } else if (rc == -EINVAL) {
        check_line(why, mode == 0 ? "fuzz.yaml" : "fuzz");
    } else if (rc != -ENOMEM) {
        abort();
    }
    free(why);
    space_free(s);
    return 0;
}
