/*
 * fuzz_proc.c - libFuzzer target for the /proc parsers (src/proc/parse.c):
 * numa_maps, sched, schedstat, stat, status and cgroup text.
 *
 * The first byte picks the parser, the rest is the file's text (not
 * NUL-terminated: a parser that reads past its length is caught by ASan).
 * Properties: nothing crashes or leaks; counters are -1 or non-negative;
 * byte totals are whole pages; CPU lists are ascending.
 */
#include "proc/proc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pf_proc_thread blank(void)
{
    pf_proc_thread t;
    memset(&t, 0, sizeof t);
    t.cpu = -1;
    t.utime = t.stime = t.nr_migrations = t.exec_ns = t.run_ns = t.wait_ns = -1;
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned which = data[0] % 6;
    size_t len = size - 1;
    char *text = malloc(len ? len : 1); /* exactly len bytes: no terminator */
    if (!text)
        return 0;
    memcpy(text, data + 1, len);
    pf_proc_thread t = blank();
    switch (which) {
    case 0: {
        unsigned long long bytes[8] = {0}, other = 0;
        pf__proc_parse_numa_maps(text, len, bytes, 8, &other);
        for (int i = 0; i < 8; i++)
            if (bytes[i] % 1024)
                abort();
        break;
    }
    case 1:
        pf__proc_parse_sched(text, len, &t);
        if (t.nr_migrations < -1 || t.exec_ns < -1)
            abort();
        break;
    case 2:
        if (pf__proc_parse_schedstat(text, len, &t) == 0 && (t.run_ns < 0 || t.wait_ns < 0))
            abort();
        break;
    case 3:
        if (pf__proc_parse_stat(text, len, &t) == 0 &&
            (strlen(t.name) >= sizeof t.name || t.cpu < -1))
            abort();
        break;
    case 4: {
        pf__ivec cpus = {0}, mems = {0};
        long long v = -1, iv = -1, rss = -1;
        pf__proc_parse_status(text, len, &cpus, &mems, &v, &iv, &rss);
        for (size_t i = 1; i < cpus.len; i++)
            if (cpus.v[i] < cpus.v[i - 1] || cpus.v[i] < 0)
                abort();
        pf__ivec_free(&cpus);
        pf__ivec_free(&mems);
        break;
    }
    default: free(pf__proc_parse_cgroup(text, len)); break;
    }
    free(text);
    return 0;
}
