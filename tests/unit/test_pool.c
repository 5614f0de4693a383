/*
 * test_pool.c - CPU pools: from a list, a string, a NUMA node, a planned
 * instance, the process; filtering by the start-up mask (in children started
 * with another affinity or with an OpenMP runtime that binds the initial
 * thread), and the errors.
 */
#include "pf_runtime_test.h"

#include <pthread.h>

/* The pool's CPUs in order, comma-separated ("1,0"), in a static buffer. */
static const char *pool_str(const pf_pool *pool)
{
    static char buf[256];
    size_t n, len = 0;
    const int *cpus = pf_pool_cpus(pool, &n);
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < sizeof buf; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d", i ? "," : "", cpus[i]);
    return buf;
}

/* Run `call` (which fills pool_ and why_); expect the pool `want` ("1,0"), or with "!text" an
   -EINVAL whose message holds text. */
#define EXPECT_POOL(call, want)                                                                 \
    do {                                                                                        \
        pf_pool *pool_ = NULL;                                                                  \
        char *why_ = NULL;                                                                      \
        int rc_ = (call);                                                                       \
        const char *want_ = (want);                                                             \
        if (want_[0] == '!') {                                                                  \
            if (rc_ != -EINVAL || !why_ || !strstr(why_, want_ + 1))                            \
                fail_msg("%s: expected an error with '%s', got %d '%s'", #call, want_ + 1, rc_, \
                         why_ ? why_ : (pool_ ? pool_str(pool_) : ""));                         \
        } else {                                                                                \
            if (rc_ != 0)                                                                       \
                fail_msg("%s: %s", #call, why_ ? why_ : pf_strerror(rc_));                      \
            if (strcmp(pool_str(pool_), want_) != 0)                                            \
                fail_msg("%s: expected %s, got %s", #call, want_, pool_str(pool_));             \
        }                                                                                       \
        pf_pool_free(pool_);                                                                    \
        free(why_);                                                                             \
    } while (0)

static const int L01[] = {0, 1}, L10[] = {1, 0}, L0[] = {0}, L1[] = {1}, LFAR[] = {0, 5000, 1},
                 LNONE[] = {100000, 4000}, LNEG[] = {0, -1}, LBIG[] = {PF_ID_LIMIT},
                 LDUP[] = {1, 0, 1};

static void test_from_list(void **state)
{
    (void)state;
    EXPECT_POOL(pf_pool_from_list(L01, 2, &pool_, &why_), "0,1");
    EXPECT_POOL(pf_pool_from_list(L10, 2, &pool_, &why_), "1,0");
    EXPECT_POOL(pf_pool_from_list(L0, 1, &pool_, &why_), "0");
    EXPECT_POOL(pf_pool_from_list(L1, 1, &pool_, &why_), "1");
    /* CPUs the process may not use (here: that do not exist) are dropped, order kept. */
    EXPECT_POOL(pf_pool_from_list(LFAR, 3, &pool_, &why_), "0,1");
    EXPECT_POOL(pf_pool_from_list(LNONE, 2, &pool_, &why_), "!none of them may be used");
    EXPECT_POOL(pf_pool_from_list(L01, 0, &pool_, &why_), "!empty");
    EXPECT_POOL(pf_pool_from_list(NULL, 2, &pool_, &why_), "!empty");
    EXPECT_POOL(pf_pool_from_list(LNEG, 2, &pool_, &why_), "!out of range");
    EXPECT_POOL(pf_pool_from_list(LBIG, 1, &pool_, &why_), "!out of range");
    EXPECT_POOL(pf_pool_from_list(LDUP, 3, &pool_, &why_), "!listed twice");
    assert_int_equal(pf_pool_from_list(L01, 2, NULL, NULL), -EINVAL);
    pf_pool_free(NULL);
}

static void test_from_string(void **state)
{
    (void)state;
    EXPECT_POOL(pf_pool_from_string("0-1", &pool_, &why_), "0,1");
    EXPECT_POOL(pf_pool_from_string("1,0", &pool_, &why_), "0,1"); /* lists are ascending */
    EXPECT_POOL(pf_pool_from_string("1, 7-9", &pool_, &why_), "1");
    EXPECT_POOL(pf_pool_from_string("7-9", &pool_, &why_), "!'7-9' (CPUs 7-9): none of them");
    EXPECT_POOL(pf_pool_from_string("0-", &pool_, &why_), "!not an id");
    EXPECT_POOL(pf_pool_from_string("", &pool_, &why_), "!empty");
    EXPECT_POOL(pf_pool_from_string(NULL, &pool_, &why_), "!no CPU list");
}

/* The expected node pool computed from the live topology itself. */
static void test_from_node_live(void **state)
{
    (void)state;
    pf_topology *live = NULL;
    char *why = NULL;
    assert_int_equal(pf_topology_load(NULL, &live, &why), 0);
    size_t ncpus;
    const pf_cpu_info *cpus = pf_topology_cpus(live, &ncpus);
    char want_phys[256] = "", want_all[256] = "";
    size_t lp = 0, la = 0;
    for (size_t i = 0; i < ncpus; i++) {
        if (cpus[i].node != cpus[0].node || !cpus[i].allowed)
            continue;
        la += (size_t)snprintf(want_all + la, sizeof want_all - la, "%s%d", la ? "," : "",
                               cpus[i].cpu);
        if (cpus[i].smt_rank == 0)
            lp += (size_t)snprintf(want_phys + lp, sizeof want_phys - lp, "%s%d", lp ? "," : "",
                                   cpus[i].cpu);
    }
    int node = cpus[0].node;
    EXPECT_POOL(pf_pool_from_node(NULL, node, false, &pool_, &why_), want_phys);
    EXPECT_POOL(pf_pool_from_node(NULL, node, true, &pool_, &why_), want_all);
    EXPECT_POOL(pf_pool_from_node(NULL, 4242, false, &pool_, &why_), "!node 4242 does not exist");
    EXPECT_POOL(pf_pool_from_node(live, node, true, &pool_, &why_), want_all);
    pf_topology_free(live);
}

static void test_from_node_topologies(void **state)
{
    (void)state;
    pf_topology *two_nodes = load_fixture("synthetic:pack:1 numa:2 core:1 pu:1");
    EXPECT_POOL(pf_pool_from_node(two_nodes, 0, false, &pool_, &why_), "0");
    EXPECT_POOL(pf_pool_from_node(two_nodes, 1, false, &pool_, &why_), "1");
    EXPECT_POOL(pf_pool_from_node(two_nodes, 2, false, &pool_, &why_), "!node 2 does not exist");
    pf_topology_free(two_nodes);

    /* One core with two threads: physical = its first thread, logical = both. */
    pf_topology *smt = load_fixture("synthetic:pack:1 core:1 pu:2");
    EXPECT_POOL(pf_pool_from_node(smt, 0, false, &pool_, &why_), "0");
    EXPECT_POOL(pf_pool_from_node(smt, 0, true, &pool_, &why_), "0,1");
    pf_topology_free(smt);

    /* CPUs 2 and 3 do not exist here: the second core has nothing this process may use. */
    pf_topology *big = load_fixture("synthetic:pack:1 core:2 pu:2");
    EXPECT_POOL(pf_pool_from_node(big, 0, false, &pool_, &why_), "0");
    EXPECT_POOL(pf_pool_from_node(big, 0, true, &pool_, &why_), "0,1");
    pf_topology_free(big);

    pf_topology *far = load_fixture("synthetic:pack:2 numa:1 core:1 pu:2");
    EXPECT_POOL(pf_pool_from_node(far, 0, true, &pool_, &why_), "0,1");
    EXPECT_POOL(pf_pool_from_node(far, 1, true, &pool_, &why_), "!none of its CPUs");
    pf_topology_free(far);

    pf_topology *mine = load_fixture("this_2cpu.lscpu");
    EXPECT_POOL(pf_pool_from_node(mine, 0, false, &pool_, &why_), "0,1");
    pf_topology_free(mine);
}

static void test_from_instance(void **state)
{
    (void)state;
    int both[] = {0, 1}, far[] = {2, 3}, mixed[] = {1, 2};
    pf_instance inst = {.index = 3, .cpus = both, .ncpus = 2, .threads = 2};
    EXPECT_POOL(pf_pool_from_instance(&inst, &pool_, &why_), "0,1");
    inst.cpus = mixed;
    EXPECT_POOL(pf_pool_from_instance(&inst, &pool_, &why_), "1");
    inst.cpus = far;
    EXPECT_POOL(pf_pool_from_instance(&inst, &pool_, &why_), "!instance 3");
    inst.ncpus = 0;
    EXPECT_POOL(pf_pool_from_instance(&inst, &pool_, &why_), "!without CPUs");
    EXPECT_POOL(pf_pool_from_instance(NULL, &pool_, &why_), "!no instance");

    /* From a real plan over this machine's fixture: two instances of one CPU. */
    pf_topology *t = load_fixture("this_2cpu.lscpu");
    pf_plan_options o;
    pf_plan_options_init(&o);
    o.ninstances = 2;
    pf_plan *plan = NULL;
    char *why = NULL;
    assert_int_equal(pf_plan_instances(t, &o, &plan, &why), 0);
    assert_int_equal(plan->ninstances, 2);
    EXPECT_POOL(pf_pool_from_instance(&plan->instances[0], &pool_, &why_), "0");
    EXPECT_POOL(pf_pool_from_instance(&plan->instances[1], &pool_, &why_), "1");
    pf_plan_free(plan);
    pf_topology_free(t);
}

static void test_from_process(void **state)
{
    (void)state;
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), "0,1");
}

static void *narrowed_thread(void *arg)
{
    (void)arg;
    set_my_cpus(L0, 1);
    char buf[64];
    assert_string_equal(my_cpus(buf, sizeof buf), "0");
    EXPECT_POOL(pf_pool_from_string("0-1", &pool_, &why_), "0,1");
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), "0,1");
    return NULL;
}

/* A thread narrowed after start-up (as pinning does) does not shrink pools. */
static void test_narrowed_thread(void **state)
{
    (void)state;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, narrowed_thread, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    set_my_cpus(L1, 1);
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), "0,1");
    set_my_cpus(L01, 2);
}

/* ---- children: the start-up mask is not the whole machine ---- */

/* Started with affinity {1}. */
static void child_cpu1(void **state)
{
    (void)state;
    EXPECT_POOL(pf_pool_from_string("0-1", &pool_, &why_), "1");
    EXPECT_POOL(pf_pool_from_list(L10, 2, &pool_, &why_), "1");
    EXPECT_POOL(pf_pool_from_list(L0, 1, &pool_, &why_), "!none of them may be used");
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), "1");
    EXPECT_POOL(pf_pool_from_node(NULL, 0, true, &pool_, &why_), "1");
    EXPECT_POOL(pf_pool_from_node(NULL, 0, false, &pool_, &why_), "1");
    /* A core whose first thread may not be used is represented by its sibling. */
    pf_topology *smt = load_fixture("synthetic:pack:1 core:1 pu:2");
    EXPECT_POOL(pf_pool_from_node(smt, 0, false, &pool_, &why_), "1");
    pf_topology_free(smt);
    /* Widening the thread later does not widen the pools either. */
    set_my_cpus(L01, 2);
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), "1");
}

/* Started with OMP_PROC_BIND/OMP_PLACES or KMP_AFFINITY: the runtime binds the initial thread. */
static void child_openmp_bound(void **state)
{
    (void)state;
    char buf[64];
    omp_get_max_threads(); /* libomp binds at its first use, libgomp at load */
    if (strcmp(my_cpus(buf, sizeof buf), "0") != 0)
        fail_msg("the OpenMP runtime (%s) did not bind the initial thread: %s", openmp_runtime(),
                 buf);
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), "0,1");
    EXPECT_POOL(pf_pool_from_string("0-1", &pool_, &why_), "0,1");
}

/* The first pool is made by a thread narrowed after start-up (the library's
   lazy load of the live topology must not take that thread's mask). */
static void child_narrowed_first(void **state)
{
    (void)state;
    set_my_cpus(L1, 1);
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), "0,1");
    EXPECT_POOL(pf_pool_from_node(NULL, 0, true, &pool_, &why_), "0,1");
}

/* Both: affinity {1} and OMP_PROC_BIND. */
static void child_cpu1_openmp_bound(void **state)
{
    (void)state;
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), "1");
}

static const char *const PROC_BIND[] = {"OMP_PROC_BIND=close", "OMP_PLACES=threads", NULL};
static const char *const KMP[] = {"LD_PRELOAD=" IOMP_PATH,
                                  "KMP_AFFINITY=granularity=fine,compact,1,0", NULL};
/* libiomp5 preloaded into a gcc-built program with OMP_PROC_BIND: libgomp, still
   loaded, binds the initial thread before libomp starts, from that narrowed mask. */
static const char *const IOMP_PROC_BIND[] = {"LD_PRELOAD=" IOMP_PATH, "OMP_PROC_BIND=close",
                                             "OMP_PLACES=threads", NULL};

static void test_startup_cpu1(void **state)
{
    (void)state;
    assert_int_equal(run_child("cpu1", 1, NULL), 0);
    assert_int_equal(run_child("narrowed-first", -1, NULL), 0);
}

static void test_startup_gomp_bound(void **state)
{
    (void)state;
    assert_int_equal(run_child("openmp-bound", -1, PROC_BIND), 0);
    assert_int_equal(run_child("cpu1-openmp-bound", 1, PROC_BIND), 0);
}

static void test_startup_iomp_bound(void **state)
{
    (void)state;
    if (access(IOMP_PATH, R_OK) != 0)
        skip();
    assert_int_equal(run_child("openmp-bound", -1, KMP), 0);
    assert_int_equal(run_child("cpu1-openmp-bound", 1, KMP), 0);
    assert_int_equal(run_child("openmp-bound", -1, IOMP_PROC_BIND), 0);
    assert_int_equal(run_child("cpu1-openmp-bound", 1, IOMP_PROC_BIND), 0);
}

static void test_split_range(void **state)
{
    (void)state;
    static const struct {
        size_t n, parts;
        const char *want; /* "begin-end" per part */
    } rows[] = {
        {10, 3, "0-4 4-7 7-10"},
        {9, 3, "0-3 3-6 6-9"},
        {2, 3, "0-1 1-2 2-2"},
        {0, 2, "0-0 0-0"},
        {1, 1, "0-1"},
        {7, 2, "0-4 4-7"},
        {64, 5, "0-13 13-26 26-39 39-52 52-64"},
    };
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        char got[256] = "";
        size_t len = 0;
        for (size_t i = 0; i < rows[r].parts; i++) {
            size_t b, e;
            pf_split_range(rows[r].n, rows[r].parts, i, &b, &e);
            len += (size_t)snprintf(got + len, sizeof got - len, "%s%zu-%zu", i ? " " : "", b, e);
        }
        if (strcmp(got, rows[r].want) != 0)
            fail_msg("split %zu into %zu: expected %s, got %s", rows[r].n, rows[r].parts,
                     rows[r].want, got);
    }
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0) {
        static const struct {
            const char *mode;
            struct CMUnitTest test;
        } children[] = {
            {"cpu1", cmocka_unit_test(child_cpu1)},
            {"narrowed-first", cmocka_unit_test(child_narrowed_first)},
            {"openmp-bound", cmocka_unit_test(child_openmp_bound)},
            {"cpu1-openmp-bound", cmocka_unit_test(child_cpu1_openmp_bound)},
        };
        for (size_t i = 0; i < sizeof children / sizeof *children; i++)
            if (strcmp(argv[2], children[i].mode) == 0)
                return _cmocka_run_group_tests(children[i].mode, &children[i].test, 1, NULL, NULL);
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_list),          cmocka_unit_test(test_from_string),
        cmocka_unit_test(test_from_node_live),     cmocka_unit_test(test_from_node_topologies),
        cmocka_unit_test(test_from_instance),      cmocka_unit_test(test_from_process),
        cmocka_unit_test(test_narrowed_thread),    cmocka_unit_test(test_startup_cpu1),
        cmocka_unit_test(test_startup_gomp_bound), cmocka_unit_test(test_startup_iomp_bound),
        cmocka_unit_test(test_split_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
