/*
 * bench_tune - how close pinfer tune's `auto` search comes to `grid` and how
 * many trials it spends, in process, on synthetic workloads.
 *
 *   build/bench/bench_tune [SEEDS]      (SEEDS of the noisy runs, default 5)
 *
 * A workload is an objective function of a configuration (nothing runs):
 * N instances of per-instance speed C * eff(C), eff peaking at some cores
 * per instance, times multiplicative effects of the allocator, OpenMP
 * runtime, KMP_BLOCKTIME, SMT, NUMA binding and serving's batch size and
 * delay, with interactions (jemalloc good only with Intel OpenMP, Intel
 * OpenMP good only with a long blocktime), failures (too many cores per
 * instance, a node too small for the split, batch 16 over an SLO, the
 * default itself) and a flat one (all ties).  Each runs on several
 * synthetic machines with and without the serving knobs.
 *
 * Per case: grid's trials (the whole space) and best; auto's trials, their
 * share of grid's, and auto's best as a percentage of grid's; random's best
 * with auto's number of trials (mean over SEEDS seeds); then, with +-3%
 * multiplicative noise and 3 repeats a trial (median told, spread as
 * (max - min) / median), the worst and mean over SEEDS seeds of the true
 * value of auto's pick against the true optimum.  The target: auto within
 * 5% of grid's best with at most a third of its trials (spaces of 12
 * configurations or more).
 */
#include "bench.h"
#include "pinfer.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef struct workload {
    const char *name;
    double peak;
    double alloc[3]; /* default, tcmalloc, jemalloc */
    double intel;
    double bt[3]; /* KMP_BLOCKTIME 0, 1, 200 */
    double logical, numa_off, batch_gain;
    bool je_needs_intel;
    double fail_above;
    bool flat, lower, fail_default;
} workload;

#define BASE                                                                      \
    .alloc = {1, 1.1, 1.05}, .intel = 1.15, .bt = {1.02, 1, 0.9}, .logical = 1.1, \
    .numa_off = 0.95, .batch_gain = 0.3

static const workload WORKLOADS[] = {
    {"peak at 1 core", 1, BASE},
    {"peak at 4 cores", 4, BASE},
    {"peak at 12 cores", 12, BASE},
    {"one big instance", 512, BASE},
    {"jemalloc only with intel", 6, BASE, .je_needs_intel = true},
    {"intel only with blocktime 200", 8, .alloc = {1, 1.02, 1.2}, .intel = 0.8, .bt = {1, 1, 1.5},
     .logical = 0.9, .numa_off = 1.1, .batch_gain = 0.5},
    {"SMT helps, small preloads", 3, .alloc = {1, 1.01, 1.0}, .intel = 1.01, .bt = {1, 1, 1},
     .logical = 1.35, .numa_off = 0.98, .batch_gain = 0.1},
    {"flat (all ties)", 4, BASE, .flat = true},
    {"fails above 8 cores", 16, BASE, .fail_above = 8},
    {"the default fails", 8, BASE, .fail_default = true},
    {"latency, peak at 2", 2, BASE, .lower = true},
};

typedef struct machine {
    const char *name, *source;
} machine;

static const machine MACHINES[] = {
    {"2 cores", "synthetic:pack:1 numa:1 core:2 pu:1"},
    {"8 cores", "synthetic:pack:1 numa:1 core:8 pu:1"},
    {"2x28 SMT", "synthetic:pack:2 numa:1 core:28 pu:2"},
    {"4 nodes x 16", "synthetic:pack:4 numa:1 core:16 pu:1"},
};

static const char *value(const pf_tune_space *s, const pf_tune_config *c, pf_tune_knob k)
{
    return pf_tune_config_value(s, c, k);
}

/* The noiseless objective: true and *out, or false for a failed trial. */
static bool objective(const workload *w, const pf_tune_space *s, const pf_tune_config *c,
                      double *out)
{
    long n = 1, cores = 1, dn = 1, dc = 1;
    sscanf(value(s, c, PF_TUNE_SPLIT), "%ldx%ld", &n, &cores);
    sscanf(s->values[PF_TUNE_SPLIT][s->defaults[PF_TUNE_SPLIT]], "%ldx%ld", &dn, &dc);
    pf_tune_config d;
    pf_tune_space_default_config(s, &d);
    if (w->fail_default && pf_tune_config_equal(c, &d))
        return false;
    if (w->flat) {
        *out = 100;
        return true;
    }
    if (w->fail_above > 0 && cores > w->fail_above)
        return false;
    size_t nnodes = s->nvalues[PF_TUNE_NODES] > 1 ? s->nvalues[PF_TUNE_NODES] - 1 : 1;
    if (strcmp(value(s, c, PF_TUNE_NODES), "all") != 0 &&
        (size_t)(n * cores) > (size_t)(dn * dc) / nnodes)
        return false;
    double x = log2((double)cores / w->peak);
    double t = (double)n * (double)cores * exp(-x * x / 4);
    bool intel = strcmp(value(s, c, PF_TUNE_OMP), "intel") == 0;
    const char *a = value(s, c, PF_TUNE_ALLOCATOR);
    int ai = strcmp(a, "tcmalloc") == 0 ? 1 : strcmp(a, "jemalloc") == 0 ? 2 : 0;
    if (ai == 2 && w->je_needs_intel)
        t *= intel ? 1.3 : 0.85;
    else
        t *= w->alloc[ai];
    if (intel) {
        const char *bt = value(s, c, PF_TUNE_BLOCKTIME);
        t *= w->intel * w->bt[strcmp(bt, "0") == 0 ? 0 : strcmp(bt, "1") == 0 ? 1 : 2];
    }
    if (strcmp(value(s, c, PF_TUNE_LOGICAL), "on") == 0)
        t *= w->logical;
    if (strcmp(value(s, c, PF_TUNE_NUMA), "off") == 0)
        t *= w->numa_off;
    long batch = strtol(value(s, c, PF_TUNE_BATCH_SIZE), NULL, 10);
    long delay = strtol(value(s, c, PF_TUNE_BATCH_DELAY), NULL, 10);
    if (batch >= 16)
        return false;
    t *= pow((double)batch, w->batch_gain) * (delay == 20 ? 1.04 : 1.0);
    *out = w->lower ? 1000 / t : t;
    return true;
}

static uint64_t rng_next(uint64_t *state)
{
    uint64_t x = (*state += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Uniform in [-1, 1]. */
static double rng_sym(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) / (double)(UINT64_C(1) << 52) - 1;
}

typedef struct outcome {
    size_t trials;
    bool found;
    double truth; /* the noiseless value of the pick */
} outcome;

/* Run a search; noise > 0: `repeats` noisy measurements a trial. */
static outcome run(const workload *w, const pf_tune_space *s, pf_tune_strategy strategy,
                   size_t max_trials, unsigned seed, double noise)
{
    pf_tune_search_options o = {strategy, !w->lower, max_trials, seed};
    pf_tune_search *search;
    outcome out = {0};
    if (pf_tune_search_create(s, &o, &search) < 0) {
        fprintf(stderr, "bench_tune: cannot create a search\n");
        exit(1);
    }
    uint64_t rng = seed * 7919u + 17;
    pf_tune_config c;
    while (pf_tune_search_next(search, &c) == 1) {
        double v = 0, spread = 0;
        bool good = objective(w, s, &c, &v);
        if (good && noise > 0) {
            double r[3];
            for (int i = 0; i < 3; i++)
                r[i] = v * (1 + noise * rng_sym(&rng));
            qsort(r, 3, sizeof *r, bench_cmp_double);
            v = r[1];
            spread = (r[2] - r[0]) / r[1];
        }
        pf_tune_search_tell(search, &c, v, spread, !good);
        out.trials++;
    }
    double told;
    out.found = pf_tune_search_best(search, &c, &told) == 1;
    if (out.found)
        out.found = objective(w, s, &c, &out.truth);
    pf_tune_search_free(search);
    return out;
}

/* A pick's value as a percentage of the optimum (higher is better); 0 when none. */
static double pct(const workload *w, const outcome *o, double best)
{
    if (!o->found)
        return 0;
    return 100 * (w->lower ? best / o->truth : o->truth / best);
}

int main(int argc, char **argv)
{
    int seeds = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 5;
    if (seeds < 1)
        seeds = 1;
    size_t cases = 0, met = 0, met_noisy = 0, grid_total = 0, auto_total = 0;
    double worst = 1e9, worst_noisy = 1e9, random_sum = 0;
    double t0 = bench_now_us();
    printf("%-13s %-5s %-30s %6s %5s %6s %8s %8s %10s %10s\n", "machine", "serve", "workload",
           "grid", "auto", "share", "auto%", "random%", "noisy min%", "noisy avg%");
    for (size_t m = 0; m < sizeof MACHINES / sizeof *MACHINES; m++)
        for (int serve = 0; serve < 2; serve++) {
            pf_topology *topo;
            pf_tune_space *s;
            char *why = NULL;
            pf_tune_space_options so = {serve, true, true, true};
            if (pf_topology_load(MACHINES[m].source, &topo, &why) < 0 ||
                pf_tune_space_default(topo, &so, &s, &why) < 0) {
                fprintf(stderr, "bench_tune: %s: %s\n", MACHINES[m].source, why ? why : "failed");
                return 1;
            }
            pf_topology_free(topo);
            size_t size = pf_tune_space_size(s);
            for (size_t i = 0; i < sizeof WORKLOADS / sizeof *WORKLOADS; i++) {
                const workload *w = &WORKLOADS[i];
                outcome grid = run(w, s, PF_TUNE_GRID, 0, 0, 0);
                outcome aut = run(w, s, PF_TUNE_AUTO, 0, 0, 0);
                double best = grid.truth, apct = pct(w, &aut, best), rpct = 0;
                double nmin = 1e9, nsum = 0;
                for (int k = 0; k < seeds; k++) {
                    outcome r = run(w, s, PF_TUNE_RANDOM, aut.trials, (unsigned)k + 1, 0);
                    rpct += pct(w, &r, best) / seeds;
                    outcome n = run(w, s, PF_TUNE_AUTO, 0, (unsigned)k + 1, 0.03);
                    /* the seed only moves the noise: auto ignores it */
                    double p = pct(w, &n, best);
                    nmin = p < nmin ? p : nmin;
                    nsum += p / seeds;
                }
                bool cheap = size < 12 || aut.trials * 3 <= size;
                met += cheap && apct >= 95;
                met_noisy += cheap && nmin >= 95;
                worst = apct < worst ? apct : worst;
                worst_noisy = nmin < worst_noisy ? nmin : worst_noisy;
                random_sum += rpct;
                grid_total += grid.trials;
                auto_total += aut.trials;
                cases++;
                printf("%-13s %-5s %-30s %6zu %5zu %5.1f%% %7.1f%% %7.1f%% %9.1f%% %9.1f%%%s\n",
                       MACHINES[m].name, serve ? "yes" : "no", w->name, grid.trials, aut.trials,
                       100.0 * (double)aut.trials / (double)grid.trials, apct, rpct, nmin, nsum,
                       cheap && apct >= 95 ? "" : "  MISSED");
            }
            pf_tune_space_free(s);
        }
    printf("\n%zu cases: grid %zu trials, auto %zu (%.1f%%); worst auto %.1f%% of grid's best, "
           "random at auto's budget %.1f%% on average\n",
           cases, grid_total, auto_total, 100.0 * (double)auto_total / (double)grid_total, worst,
           random_sum / (double)cases);
    printf("target (within 5%% of grid's best with at most a third of its trials): %zu/%zu "
           "noiseless, %zu/%zu with +-3%% noise over %d seeds (worst %.1f%%)\n",
           met, cases, met_noisy, cases, seeds, worst_noisy);
    printf("time %.0f ms\n", (bench_now_us() - t0) / 1000);
    return met == cases ? 0 : 1;
}
