/*
 * test_pool.c - CPU pools: from a list, a string, a NUMA node, a planned
 * instance, the process; filtering by the start-up mask (in children started
 * with another affinity or with an OpenMP runtime that binds the initial
 * thread), and the errors.
 */
#include "pf_runtime_test.h"

#include <pthread.h>

/* ids comma-separated in their order ("1,0"), in buf. */
static const char *list_str(const int *ids, size_t n, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%d", i ? "," : "", ids[i]);
    return buf;
}

/* The pool's CPUs in order, comma-separated ("1,0"), in a static buffer. */
static const char *pool_str(const pf_pool *pool)
{
    static char buf[CPUS_TEXT_MAX];
    size_t n;
    const int *cpus = pf_pool_cpus(pool, &n);
    return list_str(cpus, n, buf, sizeof buf);
}

/* printf into one of a few static buffers: an expectation for EXPECT_POOL. */
static const char *fmt(const char *format, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *format, ...)
{
    static char bufs[4][CPUS_TEXT_MAX];
    static int next;
    char *buf = bufs[next++ % 4];
    va_list ap;
    va_start(ap, format);
    vsnprintf(buf, CPUS_TEXT_MAX, format, ap);
    va_end(ap);
    return buf;
}

/* All the CPUs this process may use, comma-separated: what a pool of all of them holds. */
static const char *all_list(void)
{
    static char buf[CPUS_TEXT_MAX];
    return list_str(test_cpus()->ids, test_cpus()->n, buf, sizeof buf);
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

/* The NUMA node of a CPU in the live topology (node membership does not depend on masks). */
static int live_node_of(int cpu)
{
    pf_topology *live = NULL;
    char *why = NULL;
    if (pf_topology_load(NULL, &live, &why) < 0)
        fail_msg("live topology: %s", why);
    const pf_cpu_info *c = pf_topology_cpu(live, cpu);
    if (!c)
        fail_msg("CPU %d is not in the live topology", cpu);
    int node = c->node;
    pf_topology_free(live);
    return node;
}

/* CPUs x, y, ... are ones this process may not use (cpu_outside). */

static void test_from_list(void **state)
{
    (void)state;
    int a = cpu_at(0), x = cpu_outside(0), y = cpu_outside(1);
    int l_a[] = {a}, l_ax[] = {x, a}, l_none[] = {x, y}, l_neg[] = {a, -1}, l_big[] = {PF_ID_LIMIT},
        l_dup[] = {a, x, a};
    EXPECT_POOL(pf_pool_from_list(l_a, 1, &pool_, &why_), fmt("%d", a));
    /* CPUs the process may not use are dropped. */
    EXPECT_POOL(pf_pool_from_list(l_ax, 2, &pool_, &why_), fmt("%d", a));
    EXPECT_POOL(pf_pool_from_list(l_none, 2, &pool_, &why_), "!none of them may be used");
    EXPECT_POOL(pf_pool_from_list(l_a, 0, &pool_, &why_), "!empty");
    EXPECT_POOL(pf_pool_from_list(NULL, 2, &pool_, &why_), "!empty");
    EXPECT_POOL(pf_pool_from_list(l_neg, 2, &pool_, &why_), "!out of range");
    EXPECT_POOL(pf_pool_from_list(l_big, 1, &pool_, &why_), "!out of range");
    EXPECT_POOL(pf_pool_from_list(l_dup, 3, &pool_, &why_), "!listed twice");
    assert_int_equal(pf_pool_from_list(l_a, 1, NULL, NULL), -EINVAL);
    pf_pool_free(NULL);

    NEED_CPUS(2);
    int b = cpu_at(1);
    int l_ab[] = {a, b}, l_ba[] = {b, a}, l_b[] = {b}, l_bxa[] = {b, x, a};
    EXPECT_POOL(pf_pool_from_list(l_ab, 2, &pool_, &why_), fmt("%d,%d", a, b));
    EXPECT_POOL(pf_pool_from_list(l_ba, 2, &pool_, &why_), fmt("%d,%d", b, a));
    EXPECT_POOL(pf_pool_from_list(l_b, 1, &pool_, &why_), fmt("%d", b));
    /* Dropped from the middle, the order of the rest kept. */
    EXPECT_POOL(pf_pool_from_list(l_bxa, 3, &pool_, &why_), fmt("%d,%d", b, a));
}

static void test_from_string(void **state)
{
    (void)state;
    int a = cpu_at(0), x = cpu_outside(0);
    char all[CPUS_TEXT_MAX];
    allowed_text(all, sizeof all);
    EXPECT_POOL(pf_pool_from_string(all, &pool_, &why_), all_list());
    EXPECT_POOL(pf_pool_from_string(fmt("%d", a), &pool_, &why_), fmt("%d", a));
    EXPECT_POOL(pf_pool_from_string(fmt("%d, %d-%d", a, x, x + 2), &pool_, &why_), fmt("%d", a));
    EXPECT_POOL(pf_pool_from_string(fmt("%d-%d", x, x + 2), &pool_, &why_),
                fmt("!'%d-%d' (CPUs %d-%d): none of them", x, x + 2, x, x + 2));
    EXPECT_POOL(pf_pool_from_string(fmt("%d-", a), &pool_, &why_), "!not an id");
    EXPECT_POOL(pf_pool_from_string("", &pool_, &why_), "!empty");
    EXPECT_POOL(pf_pool_from_string(NULL, &pool_, &why_), "!no CPU list");

    NEED_CPUS(2);
    int b = cpu_at(1);
    /* Lists are ascending, whatever order they are written in. */
    EXPECT_POOL(pf_pool_from_string(fmt("%d,%d", b, a), &pool_, &why_), fmt("%d,%d", a, b));
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
    int node = pf_topology_cpu(live, cpu_at(0))->node; /* the node of the first usable CPU */
    cpu_ids phys = {0, NULL}, all = {0, NULL};
    for (size_t i = 0; i < ncpus; i++) {
        if (cpus[i].node != node || !cpus[i].allowed || !cpu_allowed(cpus[i].cpu))
            continue;
        cpu_ids_add(&all, cpus[i].cpu);
        /* Physical: per core its first usable CPU (CPUs are ascending). */
        bool taken = false;
        for (size_t j = 0; j < i && !taken; j++)
            taken = cpus[j].socket == cpus[i].socket && cpus[j].core_first == cpus[i].core_first &&
                    cpus[j].allowed && cpu_allowed(cpus[j].cpu);
        if (!taken)
            cpu_ids_add(&phys, cpus[i].cpu);
    }
    char want_phys[CPUS_TEXT_MAX], want_all[CPUS_TEXT_MAX];
    list_str(phys.ids, phys.n, want_phys, sizeof want_phys);
    list_str(all.ids, all.n, want_all, sizeof want_all);
    free(phys.ids);
    free(all.ids);
    EXPECT_POOL(pf_pool_from_node(NULL, node, false, &pool_, &why_), want_phys);
    EXPECT_POOL(pf_pool_from_node(NULL, node, true, &pool_, &why_), want_all);
    EXPECT_POOL(pf_pool_from_node(NULL, 4242, false, &pool_, &why_), "!node 4242 does not exist");
    EXPECT_POOL(pf_pool_from_node(live, node, true, &pool_, &why_), want_all);
    pf_topology_free(live);
}

/*
 * The pool of a node whose CPUs are, core by core, `cores` ("0 1|2 3": two
 * cores of two threads): the CPUs this process may use, all of them
 * (logical) or per core the first (physical); "!none of its CPUs" if none.
 */
static const char *node_pool(const char *cores, bool logical)
{
    static char buf[CPUS_TEXT_MAX];
    size_t len = 0;
    bool core_taken = false;
    buf[0] = '\0';
    for (const char *s = cores; *s;) {
        if (*s == '|' || *s == ' ') {
            core_taken = core_taken && *s == ' ';
            s++;
            continue;
        }
        char *end;
        int id = (int)strtol(s, &end, 10);
        if (end == s)
            fail_msg("node_pool: cannot read '%s'", cores);
        s = end;
        if (cpu_allowed(id) && (logical || !core_taken) && len < sizeof buf) {
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%d", len ? "," : "", id);
            core_taken = true;
        }
    }
    return len ? buf : "!none of its CPUs";
}

/* Topologies that are not this machine: their CPUs are kept to those this process may use. */
static void test_from_node_topologies(void **state)
{
    (void)state;
    static const struct {
        const char *topology;
        int node;
        const char *cores;
    } rows[] = {
        {"synthetic:pack:1 numa:2 core:1 pu:1", 0, "0"},
        {"synthetic:pack:1 numa:2 core:1 pu:1", 1, "1"},
        /* One core with two threads: physical = its first usable thread, logical = both. */
        {"synthetic:pack:1 core:1 pu:2", 0, "0 1"},
        {"synthetic:pack:1 core:2 pu:2", 0, "0 1|2 3"},
        {"synthetic:pack:2 numa:1 core:1 pu:2", 0, "0 1"},
        {"synthetic:pack:2 numa:1 core:1 pu:2", 1, "2 3"},
        {"this_2cpu.lscpu", 0, "0|1"},
    };
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        pf_topology *t = load_fixture(rows[r].topology);
        for (int logical = 0; logical < 2; logical++)
            EXPECT_POOL(pf_pool_from_node(t, rows[r].node, logical, &pool_, &why_),
                        node_pool(rows[r].cores, logical));
        pf_topology_free(t);
    }
    pf_topology *two_nodes = load_fixture("synthetic:pack:1 numa:2 core:1 pu:1");
    EXPECT_POOL(pf_pool_from_node(two_nodes, 2, false, &pool_, &why_), "!node 2 does not exist");
    pf_topology_free(two_nodes);

    /* Cores of two threads numbered like this machine's CPUs, so that every CPU this process
       may use is in one: a core whose first thread it may not use has its sibling instead. */
    int cores = cpu_last() / 2 + 1;
    char source[64];
    snprintf(source, sizeof source, "synthetic:pack:1 core:%d pu:2", cores);
    size_t size = (size_t)cores * 24 + 1, len = 0;
    char *spec = malloc(size);
    assert_non_null(spec);
    for (int c = 0; c < cores; c++)
        len += (size_t)snprintf(spec + len, size - len, "%s%d %d", c ? "|" : "", 2 * c, 2 * c + 1);
    pf_topology *pairs = load_fixture(source);
    for (int logical = 0; logical < 2; logical++)
        EXPECT_POOL(pf_pool_from_node(pairs, 0, logical, &pool_, &why_), node_pool(spec, logical));
    EXPECT_POOL(pf_pool_from_node(pairs, 0, true, &pool_, &why_), all_list());
    pf_topology_free(pairs);
    free(spec);
}

static void test_from_instance(void **state)
{
    (void)state;
    int x = cpu_outside(0), y = cpu_outside(1);
    /* The first two CPUs (the only one, with one). */
    size_t n = cpu_count() < 2 ? cpu_count() : 2;
    int first[] = {cpu_at(0), cpu_at(n - 1)}, mixed[] = {cpu_last(), x}, far[] = {x, y};
    char buf[CPUS_TEXT_MAX];
    pf_instance inst = {.index = 3, .cpus = first, .ncpus = n, .threads = (int)n};
    EXPECT_POOL(pf_pool_from_instance(&inst, &pool_, &why_), list_str(first, n, buf, sizeof buf));
    inst.cpus = mixed;
    inst.ncpus = 2;
    EXPECT_POOL(pf_pool_from_instance(&inst, &pool_, &why_), fmt("%d", cpu_last()));
    inst.cpus = far;
    EXPECT_POOL(pf_pool_from_instance(&inst, &pool_, &why_), "!instance 3");
    inst.ncpus = 0;
    EXPECT_POOL(pf_pool_from_instance(&inst, &pool_, &why_), "!without CPUs");
    EXPECT_POOL(pf_pool_from_instance(NULL, &pool_, &why_), "!no instance");

    /* From a real plan over a 2-CPU fixture: two instances of one CPU, each kept to the CPUs
       this process may use. */
    pf_topology *t = load_fixture("this_2cpu.lscpu");
    pf_plan_options o;
    pf_plan_options_init(&o);
    o.ninstances = 2;
    pf_plan *plan = NULL;
    char *why = NULL;
    assert_int_equal(pf_plan_instances(t, &o, &plan, &why), 0);
    assert_int_equal(plan->ninstances, 2);
    for (size_t i = 0; i < plan->ninstances; i++) {
        const pf_instance *in = &plan->instances[i];
        cpu_ids usable = {0, NULL};
        for (size_t c = 0; c < in->ncpus; c++)
            if (cpu_allowed(in->cpus[c]))
                cpu_ids_add(&usable, in->cpus[c]);
        EXPECT_POOL(pf_pool_from_instance(in, &pool_, &why_),
                    usable.n ? list_str(usable.ids, usable.n, buf, sizeof buf)
                             : fmt("!instance %d", in->index));
        free(usable.ids);
    }
    pf_plan_free(plan);
    pf_topology_free(t);
}

static void test_from_process(void **state)
{
    (void)state;
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), all_list());
}

static void *narrowed_thread(void *arg)
{
    (void)arg;
    int a = cpu_at(0);
    set_my_cpus(&a, 1);
    char buf[CPUS_TEXT_MAX], all[CPUS_TEXT_MAX];
    assert_string_equal(my_cpus(buf, sizeof buf), fmt("%d", a));
    EXPECT_POOL(pf_pool_from_string(allowed_text(all, sizeof all), &pool_, &why_), all_list());
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), all_list());
    return NULL;
}

/* A thread narrowed after start-up (as pinning does) does not shrink pools. */
static void test_narrowed_thread(void **state)
{
    (void)state;
    NEED_CPUS(2); /* else narrowing to one CPU changes nothing */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, narrowed_thread, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    int last = cpu_last();
    set_my_cpus(&last, 1);
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), all_list());
    set_my_cpus_all();
}

/* ---- children: the start-up mask is not the whole machine ----
   run_child tells each child the CPUs it starts with (cpu_at, cpu_count) and
   its parent's (parent_cpus). */

/* Started on one CPU, the second of its parent's. */
static void child_on_one_cpu(void **state)
{
    (void)state;
    int b = cpu_at(0);
    assert_int_equal(cpu_count(), 1);
    cpu_ids parent = parent_cpus();
    int a = parent.ids[0];
    assert_int_not_equal(a, b);
    char wide[CPUS_TEXT_MAX];
    cpus_text(parent.ids, parent.n, wide, sizeof wide);
    int l_ba[] = {b, a}, l_a[] = {a};
    int node = live_node_of(b);
    EXPECT_POOL(pf_pool_from_string(wide, &pool_, &why_), fmt("%d", b));
    EXPECT_POOL(pf_pool_from_list(l_ba, 2, &pool_, &why_), fmt("%d", b));
    EXPECT_POOL(pf_pool_from_list(l_a, 1, &pool_, &why_), "!none of them may be used");
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), fmt("%d", b));
    EXPECT_POOL(pf_pool_from_node(NULL, node, true, &pool_, &why_), fmt("%d", b));
    EXPECT_POOL(pf_pool_from_node(NULL, node, false, &pool_, &why_), fmt("%d", b));
    /* A core whose first thread may not be used is represented by its sibling: one core
       whose threads are CPUs 0 to b. */
    char source[64];
    snprintf(source, sizeof source, "synthetic:pack:1 core:1 pu:%d", b + 1);
    pf_topology *smt = load_fixture(source);
    EXPECT_POOL(pf_pool_from_node(smt, 0, false, &pool_, &why_), fmt("%d", b));
    pf_topology_free(smt);
    /* Widening the thread later does not widen the pools either. */
    set_my_cpus(parent.ids, parent.n);
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), fmt("%d", b));
    free(parent.ids);
}

/* Started with OMP_PROC_BIND/OMP_PLACES or KMP_AFFINITY: the runtime binds the initial thread. */
static void child_openmp_bound(void **state)
{
    (void)state;
    char buf[CPUS_TEXT_MAX], all[CPUS_TEXT_MAX];
    omp_get_max_threads(); /* libomp binds at its first use, libgomp at load */
    /* To its first place: one CPU of the process's. */
    char *end;
    long cpu = strtol(my_cpus(buf, sizeof buf), &end, 10);
    if (end == buf || *end || !cpu_allowed((int)cpu))
        fail_msg("the OpenMP runtime (%s) did not bind the initial thread to one of CPUs %s: %s",
                 openmp_runtime(), allowed_text(all, sizeof all), buf);
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), all_list());
    EXPECT_POOL(pf_pool_from_string(allowed_text(all, sizeof all), &pool_, &why_), all_list());
}

/* The first pool is made by a thread narrowed after start-up (the library's
   lazy load of the live topology must not take that thread's mask). */
static void child_narrowed_first(void **state)
{
    (void)state;
    int b = cpu_at(1);
    set_my_cpus(&b, 1);
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), all_list());
    /* Expected: the node of the first CPU, those of its CPUs the process may use. */
    pf_topology *live = NULL;
    char *why = NULL;
    if (pf_topology_load(NULL, &live, &why) < 0)
        fail_msg("live topology: %s", why);
    int node = pf_topology_cpu(live, cpu_at(0))->node;
    cpu_ids on_node = {0, NULL};
    for (size_t i = 0; i < cpu_count(); i++)
        if (pf_topology_cpu(live, cpu_at(i))->node == node)
            cpu_ids_add(&on_node, cpu_at(i));
    pf_topology_free(live);
    char want[CPUS_TEXT_MAX];
    list_str(on_node.ids, on_node.n, want, sizeof want);
    free(on_node.ids);
    EXPECT_POOL(pf_pool_from_node(NULL, node, true, &pool_, &why_), want);
}

/* Both: started on one CPU, and OMP_PROC_BIND. */
static void child_on_one_cpu_openmp_bound(void **state)
{
    (void)state;
    EXPECT_POOL(pf_pool_from_process(&pool_, &why_), fmt("%d", cpu_at(0)));
}

static const char *const PROC_BIND[] = {"OMP_PROC_BIND=close", "OMP_PLACES=threads", NULL};
static const char *const KMP[] = {"LD_PRELOAD=" IOMP_PATH,
                                  "KMP_AFFINITY=granularity=fine,compact,1,0", NULL};
/* libiomp5 preloaded into a gcc-built program with OMP_PROC_BIND: libgomp, still
   loaded, binds the initial thread before libomp starts, from that narrowed mask. */
static const char *const IOMP_PROC_BIND[] = {"LD_PRELOAD=" IOMP_PATH, "OMP_PROC_BIND=close",
                                             "OMP_PLACES=threads", NULL};

/* Each needs two CPUs: with one, a child on one CPU or bound to one is not narrowed. */

static void test_startup_on_one_cpu(void **state)
{
    (void)state;
    NEED_CPUS(2);
    assert_int_equal(run_child("one-cpu", cpu_at(1), NULL), 0);
    assert_int_equal(run_child("narrowed-first", -1, NULL), 0);
}

static void test_startup_gomp_bound(void **state)
{
    (void)state;
    NEED_CPUS(2);
    assert_int_equal(run_child("openmp-bound", -1, PROC_BIND), 0);
    assert_int_equal(run_child("one-cpu-openmp-bound", cpu_at(1), PROC_BIND), 0);
}

static void test_startup_iomp_bound(void **state)
{
    (void)state;
    if (access(IOMP_PATH, R_OK) != 0)
        SKIP_BECAUSE("%s is missing (Debian package libomp-dev)", IOMP_PATH);
    NEED_CPUS(2);
    assert_int_equal(run_child("openmp-bound", -1, KMP), 0);
    assert_int_equal(run_child("one-cpu-openmp-bound", cpu_at(1), KMP), 0);
    assert_int_equal(run_child("openmp-bound", -1, IOMP_PROC_BIND), 0);
    assert_int_equal(run_child("one-cpu-openmp-bound", cpu_at(1), IOMP_PROC_BIND), 0);
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
    cpu_count(); /* read the CPUs before any test narrows this thread */
    if (argc == 3 && strcmp(argv[1], "--child") == 0) {
        static const struct {
            const char *mode;
            struct CMUnitTest test;
        } children[] = {
            {"one-cpu", cmocka_unit_test(child_on_one_cpu)},
            {"narrowed-first", cmocka_unit_test(child_narrowed_first)},
            {"openmp-bound", cmocka_unit_test(child_openmp_bound)},
            {"one-cpu-openmp-bound", cmocka_unit_test(child_on_one_cpu_openmp_bound)},
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
        cmocka_unit_test(test_narrowed_thread),    cmocka_unit_test(test_startup_on_one_cpu),
        cmocka_unit_test(test_startup_gomp_bound), cmocka_unit_test(test_startup_iomp_bound),
        cmocka_unit_test(test_split_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
