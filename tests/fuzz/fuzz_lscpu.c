/*
 * fuzz_lscpu.c - libFuzzer target for the lscpu parsers and the planner.
 *
 * The input is lscpu text (--parse CSV or the -e table).  When it parses,
 * the topology is checked for its invariants and planned with options drawn
 * from the input's first bytes: nothing may crash or leak, and every plan
 * must hold only known CPUs, each at most once.
 */
#include "pinfer.h"
#include "topology/topology.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_plan(const pf_topology *t, const pf_plan *plan)
{
    size_t ncpus;
    pf_topology_cpus(t, &ncpus);
    size_t total = 0;
    for (size_t i = 0; i < plan->ninstances; i++) {
        const pf_instance *in = &plan->instances[i];
        if (in->ncpus == 0 || in->threads != (int)in->ncpus || in->nnodes == 0)
            abort();
        for (size_t k = 0; k < in->ncpus; k++)
            if (!pf_topology_cpu(t, in->cpus[k]) || (k > 0 && in->cpus[k] <= in->cpus[k - 1]))
                abort();
        total += in->ncpus;
    }
    if (total > ncpus)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pf_topology *t = NULL;
    char *why = NULL;
    int rc = pf__topology_parse_lscpu("fuzz", (const char *)data, size, &t, &why);
    if (rc < 0) {
        if (!why && rc != -ENOMEM)
            abort();
        free(why);
        return 0;
    }
    size_t n;
    const pf_cpu_info *cpus = pf_topology_cpus(t, &n);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && cpus[i].cpu <= cpus[i - 1].cpu)
            abort();
        if (cpus[i].core_first > cpus[i].cpu ||
            (cpus[i].smt_rank == 0) != (cpus[i].core_first == cpus[i].cpu))
            abort();
    }
    uint8_t b0 = size > 0 ? data[0] : 0, b1 = size > 1 ? data[1] : 0;
    for (int variant = 0; variant < 4; variant++) {
        pf_plan_options o;
        pf_plan_options_init(&o);
        uint8_t bits = (uint8_t)(b0 + variant * 37);
        o.ninstances = (bits & 1) ? 1 + (b1 + variant) % 9 : -1;
        o.ncores_per_instance = (bits & 2) ? (b1 >> 4) % 6 - 1 : 0;
        o.use_logical_cores = bits & 4;
        o.bind_numa_node = bits & 8;
        o.strategy = (bits & 16) ? PF_STRATEGY_SCATTER : PF_STRATEGY_CLOSE;
        o.throughput_mode = (bits & 96) == 32;
        o.latency_mode = (bits & 96) == 64;
        o.use_e_cores = bits & 128;
        pf_plan *plan = NULL;
        why = NULL;
        if (pf_plan_instances(t, &o, &plan, &why) == 0)
            check_plan(t, plan);
        else if (!why)
            abort();
        free(why);
        pf_plan_free(plan);
    }
    pf_topology_free(t);
    return 0;
}
