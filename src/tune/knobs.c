/*
 * knobs.c - the names of pinfer tune's knobs, as record.csv, tune.json,
 * --space files and messages write them.
 */
#include "pinfer.h"

#include <string.h>

static const char *const NAMES[PF_TUNE_NKNOBS] = {
    "split", "logical_cores", "nodes",      "numa",           "allocator",
    "omp",   "kmp_blocktime", "batch_size", "max_batch_delay"};

const char *pf_tune_knob_name(pf_tune_knob knob)
{
    return (unsigned)knob < PF_TUNE_NKNOBS ? NAMES[knob] : NULL;
}

int pf_tune_knob_of(const char *name)
{
    char normal[32];
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof normal)
        return -1;
    for (size_t i = 0; i <= n; i++)
        normal[i] = name[i] == '-' ? '_' : name[i];
    for (int k = 0; k < PF_TUNE_NKNOBS; k++)
        if (strcmp(normal, NAMES[k]) == 0)
            return k;
    return -1;
}
