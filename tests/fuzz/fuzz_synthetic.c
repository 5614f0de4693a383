/*
 * fuzz_synthetic.c - libFuzzer target for synthetic descriptions: the
 * bounded loader, pf__synthetic_check() and then hwloc itself.
 *
 * The check stands between a description and hwloc's synthetic loader,
 * which aborts on some descriptions (hwloc 2.9: a memcache level, index
 * loops that do not divide their level) and takes minutes on wide ones.
 * Anything the check accepts must load without crashing, within a few
 * seconds, and with at most the PUs the check counted.  The check also runs
 * alone on libFuzzer's exactly-sized buffer, so that ASan sees any read past
 * the end.  Refusals are one line naming the source.
 */
#include "pinfer.h"
#include "topology/topology.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned long pus = 0;
    char *why = NULL;
    int check = pf__synthetic_check("fuzz", (const char *)data, size, &pus, &why);
    if (check < 0 && check != -ENOMEM &&
        (!why || strncmp(why, "fuzz: ", 6) != 0 || strchr(why, '\n')))
        abort();
    if (check == 0 && (pus == 0 || pus > PF_SYNTHETIC_MAX_PUS))
        abort();
    free(why);
    why = NULL;

    /* The whole load, as pf_topology_load("synthetic:...") makes it. */
    char *source = malloc(size + 11);
    if (!source)
        return 0;
    memcpy(source, "synthetic:", 10);
    memcpy(source + 10, data, size);
    source[size + 10] = '\0';
    pf_topology *t = NULL;
    double start = now();
    int rc = pf__topology_load_hwloc(source, NULL, 0, source + 10, &t, &why);
    double seconds = now() - start;
    /* One line naming the source (which may hold newlines between levels). */
    if (rc < 0 && rc != -ENOMEM &&
        (!why || strncmp(why, source, strlen(source)) != 0 ||
         (!memchr(data, '\n', size) && strchr(why, '\n'))))
        abort();
    /* What the check lets through is built in about a second at most. */
    if (seconds > 5)
        abort();
    free(why);
    if (rc == 0) {
        size_t n;
        const pf_cpu_info *cpus = pf_topology_cpus(t, &n);
        /* The same text went through the check unquoted: its count bounds hwloc's. */
        bool quoted = size >= 2 && (data[0] == '"' || data[0] == '\'') && data[size - 1] == data[0];
        if (n == 0 || n > PF_SYNTHETIC_MAX_PUS || (check == 0 && !quoted && n > pus))
            abort();
        for (size_t i = 0; i < n; i++)
            if ((i > 0 && cpus[i].cpu <= cpus[i - 1].cpu) || cpus[i].core_first > cpus[i].cpu ||
                (cpus[i].smt_rank == 0) != (cpus[i].core_first == cpus[i].cpu))
                abort();
    }
    pf_topology_free(t);
    free(source);
    return 0;
}
