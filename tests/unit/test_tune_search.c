/*
 * test_tune_search.c - pinfer tune's default spaces, configurations, and
 * the grid, random and auto searches, run in process against synthetic
 * objective functions (no trial runs anything).
 */
#include "pf_test.h"

#include <math.h>

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static pf_tune_space *space_of(const char *source, const char *libs, bool serve)
{
    pf_topology *t = load_fixture(source);
    pf_tune_space_options o = {.serve = serve,
                               .have_tcmalloc = strchr(libs, 't') != NULL,
                               .have_jemalloc = strchr(libs, 'j') != NULL,
                               .have_iomp = strchr(libs, 'i') != NULL};
    pf_tune_space *s = NULL;
    char *why = NULL;
    int rc = pf_tune_space_default(t, &o, &s, &why);
    if (rc)
        fail_msg("space of %s: %s", source, why ? why : pf_strerror(rc));
    pf_topology_free(t);
    return s;
}

/* A knob's values joined by ',' with the default in brackets: "off,[on]". */
static const char *values_text(const pf_tune_space *s, pf_tune_knob k)
{
    static char buf[1024];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s->nvalues[k]; i++) {
        bool d = i == s->defaults[k];
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s%s%s", i ? "," : "", d ? "[" : "",
                                s->values[k][i], d ? "]" : "");
    }
    return buf;
}

/* A configuration from its values' texts, knob by knob ("2x4", "off", ...; NULL: default). */
static pf_tune_config config_of(const pf_tune_space *s, const char *const text[PF_TUNE_NKNOBS])
{
    pf_tune_config c;
    pf_tune_space_default_config(s, &c);
    for (int k = 0; k < PF_TUNE_NKNOBS; k++) {
        if (!text[k])
            continue;
        size_t i = 0;
        while (i < s->nvalues[k] && strcmp(s->values[k][i], text[k]) != 0)
            i++;
        if (i == s->nvalues[k])
            fail_msg("no value %s for %s", text[k], pf_tune_knob_name((pf_tune_knob)k));
        c.v[k] = i;
    }
    return c;
}

static const char *joined(char **words)
{
    static char buf[1024];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; words[i]; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? " " : "", words[i]);
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Synthetic objectives                                                      */

/*
 * A workload's throughput: N instances of per-instance speed C * eff(C),
 * eff peaking at `peak` cores (log-normal in C), times multiplicative
 * effects of the other knobs.  Failures: a split whose cores per instance
 * exceed `fail_above`, a node whose cores the split does not fit in (as the
 * planner refuses it), batch 16 (an SLO).  `lower`: the objective is a
 * latency, 1000 / throughput.
 */
typedef struct workload {
    const char *name;
    double peak;
    double alloc[3]; /* default, tcmalloc, jemalloc */
    double intel;
    double bt[3]; /* 0, 1, 200 */
    double logical, numa_off, batch_gain;
    bool je_needs_intel; /* jemalloc is 1.3 with Intel OpenMP, 0.85 without */
    double fail_above;
    bool flat, lower, fail_default;
} workload;

static int value_index(const pf_tune_space *s, const pf_tune_config *c, pf_tune_knob k,
                       const char *const *names)
{
    const char *v = pf_tune_config_value(s, c, k);
    for (int i = 0; names[i]; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

static bool objective(const workload *w, const pf_tune_space *s, const pf_tune_config *c,
                      double *value)
{
    static const char *const allocs[] = {"default", "tcmalloc", "jemalloc", NULL};
    static const char *const bts[] = {"0", "1", "200", NULL};
    long n, cores, dn, dc;
    sscanf(pf_tune_config_value(s, c, PF_TUNE_SPLIT), "%ldx%ld", &n, &cores);
    sscanf(s->values[PF_TUNE_SPLIT][s->defaults[PF_TUNE_SPLIT]], "%ldx%ld", &dn, &dc);
    pf_tune_config d;
    pf_tune_space_default_config(s, &d);
    if (w->fail_default && pf_tune_config_equal(c, &d))
        return false;
    if (w->flat) {
        *value = 100;
        return true;
    }
    if (w->fail_above > 0 && cores > w->fail_above)
        return false;
    const char *node = pf_tune_config_value(s, c, PF_TUNE_NODES);
    size_t nnodes = s->nvalues[PF_TUNE_NODES] > 1 ? s->nvalues[PF_TUNE_NODES] - 1 : 1;
    if (strcmp(node, "all") != 0 && (size_t)(n * cores) > (size_t)(dn * dc) / nnodes)
        return false;
    double x = log2((double)cores / w->peak);
    double t = (double)n * (double)cores * exp(-x * x / 4);
    bool intel = strcmp(pf_tune_config_value(s, c, PF_TUNE_OMP), "intel") == 0;
    int a = value_index(s, c, PF_TUNE_ALLOCATOR, allocs);
    if (a == 2 && w->je_needs_intel)
        t *= intel ? 1.3 : 0.85;
    else
        t *= w->alloc[a];
    if (intel)
        t *= w->intel * w->bt[value_index(s, c, PF_TUNE_BLOCKTIME, bts)];
    if (strcmp(pf_tune_config_value(s, c, PF_TUNE_LOGICAL), "on") == 0)
        t *= w->logical;
    if (strcmp(pf_tune_config_value(s, c, PF_TUNE_NUMA), "off") == 0)
        t *= w->numa_off;
    long batch = strtol(pf_tune_config_value(s, c, PF_TUNE_BATCH_SIZE), NULL, 10);
    long delay = strtol(pf_tune_config_value(s, c, PF_TUNE_BATCH_DELAY), NULL, 10);
    if (batch >= 16)
        return false;
    t *= pow((double)batch, w->batch_gain) * (delay == 20 ? 1.04 : 1.0);
    *value = w->lower ? 1000 / t : t;
    return true;
}

typedef struct outcome {
    size_t trials;
    bool found;
    double best;
    pf_tune_config config;
} outcome;

static outcome run_search(const workload *w, const pf_tune_space *s, pf_tune_strategy strategy,
                          size_t max_trials, unsigned seed)
{
    pf_tune_search_options o = {strategy, !w->lower, max_trials, seed};
    pf_tune_search *search = NULL;
    assert_int_equal(pf_tune_search_create(s, &o, &search), 0);
    outcome out = {0};
    pf_tune_config c;
    while (pf_tune_search_next(search, &c) == 1) {
        double v = 0;
        bool good = objective(w, s, &c, &v);
        pf_tune_search_tell(search, &c, v, 0, !good);
        out.trials++;
        assert_true(out.trials <= pf_tune_space_size(s));
    }
    out.found = pf_tune_search_best(search, &out.config, &out.best) == 1;
    pf_tune_search_free(search);
    return out;
}

/* ------------------------------------------------------------------------ */
/* Spaces                                                                    */

static void test_space_8_cores(void **state)
{
    (void)state;
    pf_tune_space *s = space_of("synthetic:pack:1 numa:1 core:8 pu:1", "", false);
    assert_string_equal(values_text(s, PF_TUNE_SPLIT), "8x1,4x2,2x4,[1x8]");
    assert_string_equal(values_text(s, PF_TUNE_LOGICAL), "[off]");
    assert_string_equal(values_text(s, PF_TUNE_NODES), "[all]");
    assert_string_equal(values_text(s, PF_TUNE_NUMA), "[bind]");
    assert_string_equal(values_text(s, PF_TUNE_ALLOCATOR), "[default]");
    assert_string_equal(values_text(s, PF_TUNE_OMP), "[default]");
    assert_string_equal(values_text(s, PF_TUNE_BLOCKTIME), "[1]");
    assert_string_equal(values_text(s, PF_TUNE_BATCH_SIZE), "[1]");
    assert_string_equal(values_text(s, PF_TUNE_BATCH_DELAY), "[100]");
    assert_int_equal(pf_tune_space_size(s), 4);
    pf_tune_space_free(s);

    s = space_of("synthetic:pack:1 numa:1 core:8 pu:1", "tji", true);
    assert_string_equal(values_text(s, PF_TUNE_ALLOCATOR), "default,[tcmalloc],jemalloc");
    assert_string_equal(values_text(s, PF_TUNE_OMP), "default,[intel]");
    assert_string_equal(values_text(s, PF_TUNE_BLOCKTIME), "0,[1],200");
    assert_string_equal(values_text(s, PF_TUNE_BATCH_SIZE), "[1],2,4,8,16");
    assert_string_equal(values_text(s, PF_TUNE_BATCH_DELAY), "5,20,[100]");
    assert_int_equal(pf_tune_space_size(s), 4 * 3 * (1 + 3) * 5 * 3);
    pf_tune_space_free(s);

    /* jemalloc alone is the default allocator pinfer run picks */
    s = space_of("synthetic:pack:1 numa:1 core:8 pu:1", "j", false);
    assert_string_equal(values_text(s, PF_TUNE_ALLOCATOR), "default,[jemalloc]");
    assert_int_equal(pf_tune_space_size(s), 8);
    pf_tune_space_free(s);
}

static void test_space_2_sockets_smt(void **state)
{
    (void)state;
    pf_tune_space *s = space_of("synthetic:pack:2 numa:1 core:28 pu:2", "ti", false);
    assert_string_equal(values_text(s, PF_TUNE_SPLIT),
                        "56x1,28x2,14x4,8x7,7x8,4x14,3x16,2x28,1x32,[1x56]");
    assert_string_equal(values_text(s, PF_TUNE_LOGICAL), "[off],on");
    assert_string_equal(values_text(s, PF_TUNE_NODES), "[all],0,1");
    assert_string_equal(values_text(s, PF_TUNE_NUMA), "[bind],off");
    assert_string_equal(values_text(s, PF_TUNE_ALLOCATOR), "default,[tcmalloc]");
    assert_int_equal(pf_tune_space_size(s), 10 * 2 * 3 * 2 * 2 * 4);
    pf_tune_space_free(s);
}

static void test_space_small_and_hybrid(void **state)
{
    (void)state;
    pf_tune_space *s = space_of("synthetic:pack:1 numa:1 core:2 pu:1", "", false);
    assert_string_equal(values_text(s, PF_TUNE_SPLIT), "2x1,[1x2]");
    pf_tune_space_free(s);
    s = space_of("synthetic:pack:1 numa:1 core:1 pu:2", "", false);
    assert_string_equal(values_text(s, PF_TUNE_SPLIT), "[1x1]");
    assert_string_equal(values_text(s, PF_TUNE_LOGICAL), "[off],on");
    pf_tune_space_free(s);
    /* 6 is not a power of two: 4 cores per instance leaves 2 idle */
    s = space_of("synthetic:pack:1 numa:1 core:6 pu:1", "", false);
    assert_string_equal(values_text(s, PF_TUNE_SPLIT), "6x1,3x2,2x3,1x4,[1x6]");
    pf_tune_space_free(s);
    /* four nodes */
    s = space_of("synthetic:pack:2 numa:2 core:16 pu:1", "", false);
    assert_string_equal(values_text(s, PF_TUNE_NODES), "[all],0,1,2,3");
    assert_string_equal(values_text(s, PF_TUNE_SPLIT), "64x1,32x2,16x4,8x8,4x16,2x32,[1x64]");
    pf_tune_space_free(s);
    /* efficiency cores are not split (pinfer run leaves them out) */
    s = space_of("hybrid_8p8e.lscpu-e", "", false);
    assert_string_equal(values_text(s, PF_TUNE_SPLIT), "8x1,4x2,2x4,[1x8]");
    assert_string_equal(values_text(s, PF_TUNE_LOGICAL), "[off],on");
    pf_tune_space_free(s);
}

/* ------------------------------------------------------------------------ */
/* Configurations                                                            */

static void test_canonical_describe_args(void **state)
{
    (void)state;
    pf_tune_space *s = space_of("synthetic:pack:1 numa:1 core:8 pu:1", "tji", true);
    pf_tune_config d, c;
    pf_tune_space_default_config(s, &d);
    char *text = pf_tune_config_describe(s, &d);
    assert_string_equal(text, "1x8 tcmalloc intel KMP_BLOCKTIME=1 batch 1 delay 100");
    free(text);

    c = config_of(s, (const char *[PF_TUNE_NKNOBS]){"2x4", NULL, NULL, NULL, "jemalloc", "intel",
                                                    "0", "8", "20"});
    text = pf_tune_config_describe(s, &c);
    assert_string_equal(text, "2x4 jemalloc intel KMP_BLOCKTIME=0 batch 8 delay 20");
    free(text);
    char **args, **env;
    assert_int_equal(pf_tune_config_args(s, &c, &args, &env), 0);
    assert_string_equal(joined(args), "--ninstances 2 --ncores-per-instance 4 --memory-allocator "
                                      "jemalloc --omp-runtime intel");
    assert_string_equal(joined(env), "KMP_BLOCKTIME=0");
    pf_strv_free(args);
    pf_strv_free(env);
    assert_string_equal(pf_tune_config_value(s, &c, PF_TUNE_BATCH_SIZE), "8");
    assert_null(pf_tune_config_value(s, &c, PF_TUNE_NKNOBS));

    /* without Intel OpenMP, KMP_BLOCKTIME is nothing: canonical at its default */
    c = config_of(
        s, (const char *[PF_TUNE_NKNOBS]){NULL, NULL, NULL, NULL, "default", "default", "200"});
    pf_tune_config e = c;
    pf_tune_config_canonical(s, &e);
    assert_false(pf_tune_config_equal(&c, &e));
    assert_string_equal(pf_tune_config_value(s, &e, PF_TUNE_BLOCKTIME), "1");
    pf_tune_config_canonical(s, &e);
    assert_string_equal(pf_tune_config_value(s, &e, PF_TUNE_BLOCKTIME), "1");
    text = pf_tune_config_describe(s, &c);
    assert_string_equal(text, "1x8 default-malloc default-omp batch 1 delay 100");
    free(text);
    assert_int_equal(pf_tune_config_args(s, &c, &args, &env), 0);
    assert_string_equal(joined(args), "--ninstances 1 --ncores-per-instance 8 --memory-allocator "
                                      "default --omp-runtime default");
    assert_null(env[0]);
    pf_strv_free(args);
    pf_strv_free(env);
    pf_tune_space_free(s);

    /* SMT and nodes: logical cores share every CPU among the instances */
    s = space_of("synthetic:pack:2 numa:1 core:28 pu:2", "", false);
    c = config_of(s, (const char *[PF_TUNE_NKNOBS]){"4x14", "on", "1", "off"});
    text = pf_tune_config_describe(s, &c);
    assert_string_equal(text, "4x14 logical on node 1 numa off");
    free(text);
    assert_int_equal(pf_tune_config_args(s, &c, &args, &env), 0);
    assert_string_equal(joined(args), "--ninstances 4 --use-logical-cores --node-id 1 "
                                      "--disable-numactl --memory-allocator default --omp-runtime "
                                      "default");
    pf_strv_free(args);
    pf_strv_free(env);
    pf_tune_space_free(s);

    /* a space of one configuration describes it as the default */
    s = space_of("synthetic:pack:1 numa:1 core:1 pu:1", "", false);
    pf_tune_space_default_config(s, &d);
    text = pf_tune_config_describe(s, &d);
    assert_string_equal(text, "default");
    free(text);
    pf_tune_space_free(s);
}

static void test_space_errors(void **state)
{
    (void)state;
    pf_tune_space empty = {0};
    pf_tune_search *search = (pf_tune_search *)&empty;
    pf_tune_search_options o = {PF_TUNE_GRID, true, 0, 0};
    assert_int_equal(pf_tune_search_create(&empty, &o, &search), -EINVAL);
    assert_null(search);
    pf_tune_space_free(NULL);
    pf_tune_search_free(NULL);
}

/* ------------------------------------------------------------------------ */
/* grid and random                                                           */

/* Every canonical configuration of the space, asked exactly once; returns the order's keys. */
static size_t *collect(const pf_tune_space *s, pf_tune_strategy strategy, unsigned seed)
{
    size_t size = pf_tune_space_size(s), n = 0, top = 0;
    size_t *order = calloc(size + 1, sizeof *order);
    size_t total = 1;
    for (int k = 0; k < PF_TUNE_NKNOBS; k++)
        total *= s->nvalues[k];
    unsigned char *seen = calloc(total, 1);
    pf_tune_search_options o = {strategy, true, 0, seed};
    pf_tune_search *search;
    assert_int_equal(pf_tune_search_create(s, &o, &search), 0);
    pf_tune_config c, d;
    pf_tune_space_default_config(s, &d);
    while (pf_tune_search_next(search, &c) == 1) {
        assert_true(n < size);
        if (n == 0)
            assert_true(pf_tune_config_equal(&c, &d));
        pf_tune_config canon = c;
        pf_tune_config_canonical(s, &canon);
        assert_true(pf_tune_config_equal(&c, &canon));
        size_t key = 0;
        for (int k = 0; k < PF_TUNE_NKNOBS; k++)
            key = key * s->nvalues[k] + c.v[k];
        assert_int_equal(seen[key], 0);
        seen[key] = 1;
        order[n++] = key;
        top = key % 7 > top ? key % 7 : top;
        pf_tune_search_tell(search, &c, (double)(key % 7), 0, false);
    }
    assert_int_equal(n, size);
    double best;
    assert_int_equal(pf_tune_search_best(search, &c, &best), 1);
    assert_true(best == (double)top);
    pf_tune_search_free(search);
    free(seen);
    return order;
}

static void test_grid_and_random_cover(void **state)
{
    (void)state;
    pf_tune_space *s = space_of("synthetic:pack:2 numa:1 core:4 pu:2", "tji", true);
    size_t size = pf_tune_space_size(s);
    size_t *grid = collect(s, PF_TUNE_GRID, 0);
    size_t *r1 = collect(s, PF_TUNE_RANDOM, 1);
    size_t *r1b = collect(s, PF_TUNE_RANDOM, 1);
    size_t *r2 = collect(s, PF_TUNE_RANDOM, 2);
    assert_memory_equal(r1, r1b, size * sizeof *r1);
    assert_memory_not_equal(r1, r2, size * sizeof *r1);
    assert_memory_not_equal(r1, grid, size * sizeof *r1);
    /* grid's order after the default is ascending */
    for (size_t i = 2; i < size; i++)
        assert_true(grid[i] > grid[i - 1]);
    free(grid);
    free(r1);
    free(r1b);
    free(r2);
    pf_tune_space_free(s);

    /* the smallest spaces */
    s = space_of("synthetic:pack:1 numa:1 core:1 pu:1", "", false);
    free(collect(s, PF_TUNE_RANDOM, 3));
    free(collect(s, PF_TUNE_GRID, 3));
    free(collect(s, PF_TUNE_AUTO, 3));
    pf_tune_space_free(s);
}

static void test_resume_and_max_trials(void **state)
{
    (void)state;
    pf_tune_space *s = space_of("synthetic:pack:1 numa:1 core:8 pu:1", "tji", false);
    size_t size = pf_tune_space_size(s);
    for (int strategy = PF_TUNE_AUTO; strategy <= PF_TUNE_RANDOM; strategy++) {
        pf_tune_search_options o = {(pf_tune_strategy)strategy, true, 0, 7};
        pf_tune_search *search;
        assert_int_equal(pf_tune_search_create(s, &o, &search), 0);
        /* a record told first: the default and two others, one of them not canonical */
        pf_tune_config d, a, b, c;
        pf_tune_space_default_config(s, &d);
        a = config_of(s, (const char *[PF_TUNE_NKNOBS]){"2x4"});
        b = config_of(s, (const char *[PF_TUNE_NKNOBS]){"4x2", NULL, NULL, NULL, "jemalloc",
                                                        "default", "200"});
        pf_tune_search_tell(search, &d, 10, 0, false);
        pf_tune_search_tell(search, &a, 12, 0, false);
        pf_tune_search_tell(search, &b, 0, 0, true);
        pf_tune_config_canonical(s, &b);
        size_t asked = 0;
        while (pf_tune_search_next(search, &c) == 1) {
            assert_false(pf_tune_config_equal(&c, &d));
            assert_false(pf_tune_config_equal(&c, &a));
            assert_false(pf_tune_config_equal(&c, &b));
            pf_tune_search_tell(search, &c, 1, 0, false);
            asked++;
        }
        if (strategy == PF_TUNE_AUTO)
            assert_true(asked + 3 <= size / 3);
        else
            assert_int_equal(asked, size - 3);
        double v;
        assert_int_equal(pf_tune_search_best(search, &c, &v), 1);
        assert_true(pf_tune_config_equal(&c, &a));
        assert_true(v == 12);
        pf_tune_search_free(search);

        /* max_trials counts the resumed results too */
        o.max_trials = 5;
        assert_int_equal(pf_tune_search_create(s, &o, &search), 0);
        pf_tune_search_tell(search, &a, 12, 0, false);
        pf_tune_search_tell(search, &b, 0, 0, true);
        asked = 0;
        while (pf_tune_search_next(search, &c) == 1) {
            if (asked == 0)
                assert_true(pf_tune_config_equal(&c, &d));
            pf_tune_search_tell(search, &c, 1, 0, false);
            asked++;
        }
        assert_int_equal(asked, 3);
        pf_tune_search_free(search);

        /* a configuration asked for and never told counts as failed */
        o.max_trials = 0;
        assert_int_equal(pf_tune_search_create(s, &o, &search), 0);
        assert_int_equal(pf_tune_search_next(search, &c), 1);
        assert_true(pf_tune_config_equal(&c, &d));
        assert_int_equal(pf_tune_search_next(search, &c), 1);
        assert_false(pf_tune_config_equal(&c, &d));
        assert_int_equal(pf_tune_search_best(search, &c, &v), 0);
        pf_tune_search_free(search);
    }
    pf_tune_space_free(s);
}

/* ------------------------------------------------------------------------ */
/* auto                                                                      */

#define BASE                                                                      \
    .alloc = {1, 1.1, 1.05}, .intel = 1.15, .bt = {1.02, 1, 0.9}, .logical = 1.1, \
    .numa_off = 0.95, .batch_gain = 0.3

static const workload WORKLOADS[] = {
    {"peak at 1 core", 1, BASE},
    {"peak at 4 cores", 4, BASE},
    {"peak at 12 cores", 12, BASE},
    {"one big instance", 512, BASE},
    {"jemalloc only with intel", 6, BASE, .je_needs_intel = true},
    {"intel hurts, blocktime 200 helps", 8, .alloc = {1, 1.02, 1.2}, .intel = 0.8,
     .bt = {1, 1, 1.5}, .logical = 0.9, .numa_off = 1.1, .batch_gain = 0.5},
    {"flat", 4, BASE, .flat = true},
    {"fails above 8 cores", 16, BASE, .fail_above = 8},
    {"the default fails", 8, BASE, .fail_default = true},
    {"latency, peak at 2", 2, BASE, .lower = true},
};

static const char *const MACHINES[] = {
    "synthetic:pack:1 numa:1 core:2 pu:1",
    "synthetic:pack:1 numa:1 core:8 pu:1",
    "synthetic:pack:2 numa:1 core:28 pu:2",
    "synthetic:pack:2 numa:2 core:16 pu:1",
};

static void test_auto_finds_the_best(void **state)
{
    (void)state;
    size_t cases = 0;
    for (size_t m = 0; m < sizeof MACHINES / sizeof *MACHINES; m++)
        for (int serve = 0; serve < 2; serve++) {
            pf_tune_space *s = space_of(MACHINES[m], "tji", serve);
            size_t size = pf_tune_space_size(s);
            for (size_t i = 0; i < sizeof WORKLOADS / sizeof *WORKLOADS; i++) {
                const workload *w = &WORKLOADS[i];
                outcome grid = run_search(w, s, PF_TUNE_GRID, 0, 0);
                outcome aut = run_search(w, s, PF_TUNE_AUTO, 0, 0);
                assert_int_equal(grid.trials, size);
                assert_true(grid.found);
                if (!aut.found)
                    fail_msg("%s on %s: auto found nothing", w->name, MACHINES[m]);
                double ratio = w->lower ? grid.best / aut.best : aut.best / grid.best;
                if (ratio < 0.95 || (size >= 12 && aut.trials * 3 > size)) {
                    char *text = pf_tune_config_describe(s, &aut.config);
                    fail_msg("%s on %s%s: auto %.1f (%s) in %zu trials, grid %.1f in %zu", w->name,
                             MACHINES[m], serve ? " serving" : "", aut.best, text, aut.trials,
                             grid.best, grid.trials);
                }
                if (w->flat) {
                    pf_tune_config d;
                    pf_tune_space_default_config(s, &d);
                    assert_true(pf_tune_config_equal(&aut.config, &d));
                }
                cases++;
            }
            pf_tune_space_free(s);
        }
    assert_int_equal(cases, 80);
}

static void test_auto_all_failed(void **state)
{
    (void)state;
    pf_tune_space *s = space_of("synthetic:pack:1 numa:1 core:8 pu:1", "tji", false);
    pf_tune_search_options o = {PF_TUNE_AUTO, true, 0, 0};
    pf_tune_search *search;
    assert_int_equal(pf_tune_search_create(s, &o, &search), 0);
    pf_tune_config c;
    size_t n = 0;
    while (pf_tune_search_next(search, &c) == 1) {
        pf_tune_search_tell(search, &c, NAN, 0, true);
        n++;
    }
    assert_true(n >= 1 && n <= pf_tune_space_size(s) / 3);
    double v;
    assert_int_equal(pf_tune_search_best(search, &c, &v), 0);
    pf_tune_search_free(search);

    /* noise: a 0.5% gain within a 2% spread keeps the default */
    assert_int_equal(pf_tune_search_create(s, &o, &search), 0);
    pf_tune_config d;
    pf_tune_space_default_config(s, &d);
    while (pf_tune_search_next(search, &c) == 1)
        pf_tune_search_tell(search, &c, pf_tune_config_equal(&c, &d) ? 100 : 100.5, 0.02, false);
    pf_tune_search_free(search);
    pf_tune_space_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_space_8_cores),
        cmocka_unit_test(test_space_2_sockets_smt),
        cmocka_unit_test(test_space_small_and_hybrid),
        cmocka_unit_test(test_canonical_describe_args),
        cmocka_unit_test(test_space_errors),
        cmocka_unit_test(test_grid_and_random_cover),
        cmocka_unit_test(test_resume_and_max_trials),
        cmocka_unit_test(test_auto_finds_the_best),
        cmocka_unit_test(test_auto_all_failed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
