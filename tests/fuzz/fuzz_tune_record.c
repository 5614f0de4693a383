/*
 * fuzz_tune_record.c - libFuzzer target for what pinfer tune reads back
 * (src/tune/): record.csv (pf_tune_record_parse, on a space built by hand)
 * and hypertune's objective lines (pf_tune_hypertune_line).
 *
 * Record: nothing crashes or leaks; a refusal is -EINVAL with a message;
 * every trial read is in the space, and writing the trials again
 * (pf_tune_record_to_csv) and reading that gives the same trials, none
 * skipped.  Objective lines (the input up to a NUL): 1 with a non-empty
 * printable name, 0 without "@hypertune" in it, or -EINVAL with a message.
 */
#include "pinfer.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const LISTS[PF_TUNE_NKNOBS][4] = {{"8x1", "2x4", "1x8"},
                                                     {"off", "on"},
                                                     {"all", "0"},
                                                     {"bind", "off"},
                                                     {"default", "jemalloc", "tcmalloc"},
                                                     {"default", "intel"},
                                                     {"0", "200"},
                                                     {"1", "4"},
                                                     {"100"}};

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

static bool same(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}

static void check_trials(const pf_tune_space *s, const pf_tune_trial *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < PF_TUNE_NKNOBS; k++)
            if (t[i].config.v[k] >= s->nvalues[k] || !t[i].status)
                abort();
    char *csv = NULL;
    if (pf_tune_record_to_csv(s, "fuzz", t, n, &csv) != 0)
        return;
    pf_tune_trial *again = NULL;
    size_t m = 0, skipped = 0;
    if (pf_tune_record_parse(s, csv, strlen(csv), &again, &m, &skipped, NULL) != 0 || m != n ||
        skipped)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&again[i].config, &t[i].config, sizeof t[i].config) != 0 ||
            !same(again[i].value, t[i].value) || !same(again[i].spread, t[i].spread) ||
            !same(again[i].seconds, t[i].seconds) || again[i].repeats != t[i].repeats ||
            strcmp(again[i].status, t[i].status) != 0)
            abort();
    }
    pf_tune_trials_free(again, m);
    free(csv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    pf_tune_space *s = space_make();
    pf_tune_trial *t = NULL;
    size_t n = 0, skipped = 0;
    char *why = NULL;
    int rc = pf_tune_record_parse(s, text, size, &t, &n, &skipped, &why);
    if (rc == 0) {
        if (why)
            abort();
        check_trials(s, t, n);
        pf_tune_trials_free(t, n);
    } else if (rc == -EINVAL) {
        if (!why || t || n)
            abort();
    } else if (rc != -ENOMEM) {
        abort();
    }
    free(why);
    space_free(s);

    char *line = strndup(text, size);
    if (!line)
        return 0;
    char *name = NULL;
    bool higher;
    why = NULL;
    rc = pf_tune_hypertune_line(line, &name, &higher, &why);
    if (rc == 1) {
        if (!name || !*name || why)
            abort();
        for (const unsigned char *p = (const unsigned char *)name; *p; p++)
            if (*p < 0x20 || *p == 0x7f)
                abort();
    } else if (rc == 0) {
        if (name || why || strstr(line, "@hypertune"))
            abort();
    } else if (rc != -EINVAL || !why || name) {
        abort();
    }
    free(name);
    free(why);
    free(line);
    return 0;
}
