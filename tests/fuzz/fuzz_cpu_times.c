/*
 * fuzz_cpu_times.c - libFuzzer target for the /proc/stat parser
 * (src/bench/cpustat.c, pf_cpu_times_parse).
 *
 * The input is the file's text (not NUL-terminated: a parser that reads
 * past its length is caught by ASan).  Properties: nothing crashes or
 * leaks; on success at least one CPU, ids strictly ascending and below
 * PF_ID_LIMIT, busy never above total; on failure nothing returned and one
 * line saying why.
 */
#include "pinfer.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1); /* exactly size bytes: no terminator */
    if (!text)
        return 0;
    memcpy(text, data, size);
    pf_cpu_times *v = NULL;
    size_t n = 0;
    char *why = NULL;
    int rc = pf_cpu_times_parse(text, size, &v, &n, &why);
    if (rc == 0) {
        if (!v || n == 0 || why)
            abort();
        for (size_t i = 0; i < n; i++) {
            if (v[i].cpu < 0 || v[i].cpu >= PF_ID_LIMIT || v[i].busy > v[i].total)
                abort();
            if (i > 0 && v[i].cpu <= v[i - 1].cpu)
                abort();
        }
    } else if ((rc != -EINVAL && rc != -ENOMEM) || v || n || !why || strchr(why, '\n')) {
        abort();
    }
    free(v);
    free(why);
    free(text);
    return 0;
}
