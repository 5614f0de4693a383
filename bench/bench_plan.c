/*
 * bench_plan - how long planning takes.
 *
 *   build/bench/bench_plan [PINFER]      (PINFER defaults to build/pinfer)
 *
 * Prints, side by side in one run:
 *   - the wall time of `pinfer plan` on this machine (live hwloc topology),
 *     a whole process from exec to exit, against `true` as the floor;
 *   - the in-process time to load the live topology;
 *   - the time of pf_plan_instances over a synthetic 8-socket, 1024-CPU
 *     topology for several option sets.
 * Figures are medians and 90th percentiles over many runs.
 */
#include "bench.h"
#include "pinfer.h"

#include <string.h>

#define RUNS 200

int main(int argc, char **argv)
{
    char *pinfer = argc > 1 ? argv[1] : "build/pinfer";
    static double a[RUNS], b[RUNS];

    /* Interleave the two commands so that both see the same machine noise. */
    char *plan_argv[] = {pinfer, "plan", NULL};
    char *true_argv[] = {"/bin/true", NULL};
    for (int i = 0; i < RUNS; i++) {
        a[i] = bench_time_process(plan_argv);
        b[i] = bench_time_process(true_argv);
    }
    bench_report("`pinfer plan` (live topology), whole process", a, RUNS);
    bench_report("`/bin/true`, whole process (the floor)", b, RUNS);
    printf("%-52s %9.1f us (target: `pinfer plan` under 5000 us)\n", "pinfer plan minus the floor",
           a[RUNS / 2] - b[RUNS / 2]);

    for (int i = 0; i < RUNS; i++) {
        double t0 = bench_now_us();
        pf_topology *t;
        if (pf_topology_load(NULL, &t, NULL) < 0) {
            fprintf(stderr, "bench_plan: cannot load the live topology\n");
            return 1;
        }
        a[i] = bench_now_us() - t0;
        pf_topology_free(t);
    }
    bench_report("live topology load, in process", a, RUNS);

    const char *src = "synthetic:pack:8 numa:1 core:64 pu:2";
    pf_topology *big;
    char *why = NULL;
    if (pf_topology_load(src, &big, &why) < 0) {
        fprintf(stderr, "bench_plan: %s: %s\n", src, why ? why : "");
        return 1;
    }
    size_t ncpus;
    pf_topology_cpus(big, &ncpus);
    printf("planning on %s (%zu CPUs):\n", src, ncpus);
    const char *names[] = {
        "no options",
        "--throughput-mode",
        "--latency-mode",
        "--use-logical-cores --ninstances 1024",
        "--ninstances 13 --bind-numa-node",
        "--ncores-per-instance 3 --ninstances 50 --strategy scatter --bind-numa-node"};
    for (int k = 0; k < 6; k++) {
        pf_plan_options o;
        pf_plan_options_init(&o);
        switch (k) {
        case 1: o.throughput_mode = true; break;
        case 2: o.latency_mode = true; break;
        case 3:
            o.use_logical_cores = true;
            o.ninstances = 1024;
            break;
        case 4:
            o.ninstances = 13;
            o.bind_numa_node = true;
            break;
        case 5:
            o.ncores_per_instance = 3;
            o.ninstances = 50;
            o.strategy = PF_STRATEGY_SCATTER;
            o.bind_numa_node = true;
            break;
        default: break;
        }
        for (int i = 0; i < RUNS; i++) {
            double t0 = bench_now_us();
            pf_plan *plan;
            if (pf_plan_instances(big, &o, &plan, NULL) < 0) {
                fprintf(stderr, "bench_plan: planning '%s' failed\n", names[k]);
                return 1;
            }
            a[i] = bench_now_us() - t0;
            pf_plan_free(plan);
        }
        char label[80];
        snprintf(label, sizeof label, "  %s", names[k]);
        bench_report(label, a, RUNS);
    }
    printf("(target: planning a 1024-CPU topology under 5000 us)\n");
    pf_topology_free(big);
    return 0;
}
