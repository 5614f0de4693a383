/*
 * test_pin.c - pinning the calling thread and its OpenMP team, checked the
 * way a user would: each team thread reads its own Cpus_allowed_list from
 * /proc/self/task/<tid>/status inside a parallel region.
 *
 * The same tests run again in children: with OMP_PROC_BIND=close +
 * OMP_PLACES=threads (what `pinfer run` sets for libgomp), with LLVM/Intel
 * OpenMP preloaded (LD_PRELOAD=libiomp5.so), with it and KMP_AFFINITY (what
 * `pinfer run` sets for it), and with it and OMP_PROC_BIND.
 */
#include "pf_runtime_test.h"

#include <pthread.h>

#define MAX_TEAM 8

typedef struct team_view {
    int size;
    pid_t tids[MAX_TEAM];
    char cpus[MAX_TEAM][CPUS_TEXT_MAX];
} team_view;

/* What each thread of a default-sized parallel region sees. */
static void look_at_team(team_view *v)
{
    memset(v, 0, sizeof *v);
#pragma omp parallel
    {
        int t = omp_get_thread_num();
        if (t == 0)
            v->size = omp_get_num_threads();
        if (t < MAX_TEAM) {
            v->tids[t] = test_gettid();
            my_cpus(v->cpus[t], sizeof v->cpus[t]);
        }
    }
}

/* Every team thread t of the next regions is on cpus[t]; the team has n threads. */
static void expect_team(const int *cpus, int n)
{
    assert_int_equal(omp_get_max_threads(), n);
    for (int round = 0; round < 5; round++) {
        team_view v;
        look_at_team(&v);
        if (v.size != n)
            fail_msg("round %d: team of %d threads, expected %d", round, v.size, n);
        for (int t = 0; t < n; t++) {
            char want[16];
            snprintf(want, sizeof want, "%d", cpus[t]);
            if (strcmp(v.cpus[t], want) != 0)
                fail_msg("round %d: team thread %d (tid %d) is on %s, expected %s (runtime %s)",
                         round, t, (int)v.tids[t], v.cpus[t], want, openmp_runtime());
        }
        assert_int_equal(v.tids[0], test_gettid());
    }
}

static pf_pool *pool_of(const int *cpus, size_t n)
{
    pf_pool *p = NULL;
    char *why = NULL;
    if (pf_pool_from_list(cpus, n, &p, &why) < 0)
        fail_msg("pool of %zu CPUs from %d: %s", n, cpus[0], why);
    return p;
}

static pf_pin_state *pin(const pf_pool *pool)
{
    pf_pin_state *st = NULL;
    char *why = NULL;
    int rc = pf_pin(pool, &st, &why);
    if (rc < 0)
        fail_msg("pf_pin: %s", why ? why : pf_strerror(rc));
    return st;
}

/* Give every thread of a 2-thread team all the process's CPUs and the team size 2 (test set-up). */
static void reset_team(void)
{
    omp_set_dynamic(0);
    omp_set_num_threads(2);
#pragma omp parallel num_threads(2)
    set_my_cpus_all();
}

/* The process's CPUs as Cpus_allowed_list shows them: where reset_team leaves every thread. */
static const char *all_cpus(void)
{
    static char buf[CPUS_TEXT_MAX];
    return allowed_text(buf, sizeof buf);
}

static void test_pin_team(void **state)
{
    (void)state;
    NEED_CPUS(2);
    reset_team();
    int ab[] = {cpu_at(0), cpu_at(1)};
    pf_pool *p = pool_of(ab, 2);
    pf_pin_state *st = pin(p);
    expect_team(ab, 2);
    assert_int_equal(pf_unpin(st), 0);
    pf_pool_free(p);
}

static void test_pin_reversed(void **state)
{
    (void)state;
    NEED_CPUS(2);
    reset_team();
    int ba[] = {cpu_at(1), cpu_at(0)};
    pf_pool *p = pool_of(ba, 2);
    pf_pin_state *st = pin(p);
    expect_team(ba, 2);
    assert_int_equal(pf_unpin(st), 0);
    pf_pool_free(p);
}

/* Each CPU of the process alone. */
static void test_pin_single(void **state)
{
    (void)state;
    reset_team();
    for (size_t i = 0; i < cpu_count(); i++) {
        int one = cpu_at(i);
        pf_pool *p = pool_of(&one, 1);
        pf_pin_state *st = pin(p);
        expect_team(&one, 1);
        assert_int_equal(pf_unpin(st), 0);
        assert_int_equal(omp_get_max_threads(), 2);
        pf_pool_free(p);
    }
}

/* Distinct masks before pinning; after unpinning, each thread has its own back. */
static void test_restore_exactly(void **state)
{
    (void)state;
    NEED_CPUS(2);
    reset_team();
    int ab[] = {cpu_at(0), cpu_at(1)}, ba[] = {cpu_at(1), cpu_at(0)};
    char both[CPUS_TEXT_MAX], first[CPUS_TEXT_MAX];
    cpus_text(ab, 2, both, sizeof both);
    cpus_text(ab, 1, first, sizeof first);
    team_view before, after;
#pragma omp parallel num_threads(2)
    set_my_cpus(ab, omp_get_thread_num() == 0 ? 2 : 1);
    look_at_team(&before);
    assert_int_equal(before.size, 2);
    assert_string_equal(before.cpus[0], both);
    assert_string_equal(before.cpus[1], first);
    omp_set_dynamic(1); /* after looking: it may shrink regions */

    pf_pool *p = pool_of(ba, 2);
    pf_pin_state *st = pin(p);
    assert_int_equal(omp_get_dynamic(), 0);
    expect_team(ba, 2);
    assert_int_equal(pf_unpin(st), 0);

    /* Read the saved threads from outside any region: the very same tids. */
    for (int t = 0; t < 2; t++) {
        char buf[CPUS_TEXT_MAX];
        assert_string_equal(task_cpus(before.tids[t], buf, sizeof buf), before.cpus[t]);
    }
    assert_int_equal(omp_get_max_threads(), 2);
    assert_int_equal(omp_get_dynamic(), 1);
    omp_set_dynamic(0);
    look_at_team(&after);
    assert_string_equal(after.cpus[0], both);
    assert_string_equal(after.cpus[1], first);
    pf_pool_free(p);
}

static void test_restore_team_size(void **state)
{
    (void)state;
    reset_team();
    omp_set_num_threads(3);
    int first = cpu_at(0);
    pf_pool *p = pool_of(&first, 1);
    pf_pin_state *st = pin(p);
    expect_team(&first, 1);
    assert_int_equal(pf_unpin(st), 0);
    assert_int_equal(omp_get_max_threads(), 3);
    char buf[CPUS_TEXT_MAX];
    assert_string_equal(my_cpus(buf, sizeof buf), all_cpus());
    pf_pool_free(p);
}

static void test_nesting(void **state)
{
    (void)state;
    NEED_CPUS(2);
    reset_team();
    int ab[] = {cpu_at(0), cpu_at(1)}, ba[] = {cpu_at(1), cpu_at(0)};
    pf_pool *a = pool_of(ab, 2), *b = pool_of(ba, 2);
    pf_pin_state *sa = pin(a);
    expect_team(ab, 2);
    pf_pin_state *sb = pin(b);
    expect_team(ba, 2);
    assert_int_equal(pf_unpin(sb), 0);
    expect_team(ab, 2);
    assert_int_equal(pf_unpin(sa), 0);
    team_view v;
    look_at_team(&v);
    assert_string_equal(v.cpus[0], all_cpus());
    assert_string_equal(v.cpus[1], all_cpus());
    pf_pool_free(a);
    pf_pool_free(b);
}

static void test_nesting_sizes(void **state)
{
    (void)state;
    NEED_CPUS(2);
    reset_team();
    int ab[] = {cpu_at(0), cpu_at(1)}, b = cpu_at(1);
    pf_pool *two = pool_of(ab, 2), *one = pool_of(&b, 1);
    /* Larger, then smaller. */
    pf_pin_state *s2 = pin(two);
    pf_pin_state *s1 = pin(one);
    expect_team(&b, 1);
    assert_int_equal(pf_unpin(s1), 0);
    expect_team(ab, 2);
    assert_int_equal(pf_unpin(s2), 0);
    /* Smaller, then larger. */
    s1 = pin(one);
    s2 = pin(two);
    expect_team(ab, 2);
    assert_int_equal(pf_unpin(s2), 0);
    expect_team(&b, 1);
    assert_int_equal(pf_unpin(s1), 0);
    assert_int_equal(omp_get_max_threads(), 2);
    char buf[CPUS_TEXT_MAX];
    assert_string_equal(my_cpus(buf, sizeof buf), all_cpus());
    pf_pool_free(one);
    pf_pool_free(two);
}

static void test_errors(void **state)
{
    (void)state;
    reset_team();
    pf_pin_state *st = NULL;
    char *why = NULL;
    assert_int_equal(pf_pin(NULL, &st, &why), -EINVAL);
    free(why);
    assert_int_equal(pf_unpin(NULL), 0);

    int last = cpu_last();
    pf_pool *p = pool_of(&last, 1);
    int inside = 0;
#pragma omp parallel num_threads(2)
    {
        if (omp_get_thread_num() == 0) {
            pf_pin_state *s = NULL;
            char *w = NULL;
            inside = pf_pin(p, &s, &w);
            free(w);
        }
    }
    assert_int_equal(inside, -EBUSY);
    team_view v; /* untouched: the reset state */
    look_at_team(&v);
    assert_int_equal(v.size, 2);
    assert_string_equal(v.cpus[0], all_cpus());
    assert_string_equal(v.cpus[1], all_cpus());
    pf_pool_free(p);
}

static void *unpin_elsewhere(void *arg)
{
    return (void *)(intptr_t)pf_unpin(arg);
}

static void test_unpin_other_thread(void **state)
{
    (void)state;
    reset_team();
    int last = cpu_last();
    pf_pool *p = pool_of(&last, 1);
    pf_pin_state *st = pin(p);
    pthread_t t;
    void *rc;
    assert_int_equal(pthread_create(&t, NULL, unpin_elsewhere, st), 0);
    pthread_join(t, &rc);
    assert_int_equal((int)(intptr_t)rc, -EINVAL);
    expect_team(&last, 1);
    assert_int_equal(pf_unpin(st), 0);
    pf_pool_free(p);
}

static void test_pin_without_state(void **state)
{
    (void)state;
    reset_team();
    /* The first two CPUs reversed (the only one, with one). */
    size_t n = cpu_count() < 2 ? cpu_count() : 2;
    int order[] = {cpu_at(n - 1), cpu_at(0)};
    pf_pool *p = pool_of(order, n);
    assert_int_equal(pf_pin(p, NULL, NULL), 0);
    expect_team(order, (int)n);
    reset_team();
    pf_pool_free(p);
}

/* Two threads, each with its own team, pinned at once to different orders. */
typedef struct racer {
    int cpus[2];
    int rounds_ok;
} racer;

static void *pin_in_thread(void *arg)
{
    racer *r = arg;
    pf_pool *p = pool_of(r->cpus, 2);
    pf_pin_state *st = pin(p);
    for (int i = 0; i < 20; i++) {
        team_view v;
        look_at_team(&v);
        bool ok = v.size == 2;
        for (int t = 0; t < 2 && ok; t++) {
            char want[16];
            snprintf(want, sizeof want, "%d", r->cpus[t]);
            ok = strcmp(v.cpus[t], want) == 0;
        }
        r->rounds_ok += ok;
    }
    pf_unpin(st);
    pf_pool_free(p);
    return NULL;
}

static void test_teams_of_two_threads(void **state)
{
    (void)state;
    NEED_CPUS(2);
    racer r[2] = {{{cpu_at(0), cpu_at(1)}, 0}, {{cpu_at(1), cpu_at(0)}, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, pin_in_thread, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(r[0].rounds_ok, 20);
    assert_int_equal(r[1].rounds_ok, 20);
}

/* ---- the same tests under other runtimes and launcher settings ---- */

static void variant(const char *const *env, bool iomp)
{
    if (iomp && access(IOMP_PATH, R_OK) != 0)
        SKIP_BECAUSE("%s is missing (Debian package libomp-dev)", IOMP_PATH);
    assert_int_equal(run_child(iomp ? "iomp" : "gomp", -1, env), 0);
    /* The child skipped what this process skips: say so here, where it is counted. */
    if (cpu_count() < 2)
        SKIP_BECAUSE("the child passed, but skipped the tests that need 2 CPUs (this process "
                     "may use 1)");
}

static void test_gomp_proc_bind(void **state)
{
    (void)state;
    static const char *const env[] = {"OMP_PROC_BIND=close", "OMP_PLACES=threads", NULL};
    variant(env, false);
}

static void test_iomp(void **state)
{
    (void)state;
    static const char *const env[] = {"LD_PRELOAD=" IOMP_PATH, NULL};
    variant(env, true);
}

static void test_iomp_kmp_affinity(void **state)
{
    (void)state;
    static const char *const env[] = {"LD_PRELOAD=" IOMP_PATH,
                                      "KMP_AFFINITY=granularity=fine,compact,1,0", NULL};
    variant(env, true);
}

static void test_iomp_proc_bind(void **state)
{
    (void)state;
    static const char *const env[] = {"LD_PRELOAD=" IOMP_PATH, "OMP_PROC_BIND=close",
                                      "OMP_PLACES=threads", NULL};
    variant(env, true);
}

#define NPIN 11 /* the first NPIN tests run in-process, and again in each variant's child */
static const struct CMUnitTest TESTS[] = {
    cmocka_unit_test(test_pin_team),
    cmocka_unit_test(test_pin_reversed),
    cmocka_unit_test(test_pin_single),
    cmocka_unit_test(test_restore_exactly),
    cmocka_unit_test(test_restore_team_size),
    cmocka_unit_test(test_nesting),
    cmocka_unit_test(test_nesting_sizes),
    cmocka_unit_test(test_errors),
    cmocka_unit_test(test_unpin_other_thread),
    cmocka_unit_test(test_pin_without_state),
    cmocka_unit_test(test_teams_of_two_threads),
    cmocka_unit_test(test_gomp_proc_bind),
    cmocka_unit_test(test_iomp),
    cmocka_unit_test(test_iomp_kmp_affinity),
    cmocka_unit_test(test_iomp_proc_bind),
};

int main(int argc, char **argv)
{
    cpu_count(); /* read the CPUs before any test narrows this thread */
    if (argc == 3 && strcmp(argv[1], "--child") == 0) {
        /* Make sure the runtime is the one the variant is about. */
        const char *rt = openmp_runtime();
        bool iomp = strstr(rt, "iomp5") || strstr(rt, "libomp");
        if (iomp != (strcmp(argv[2], "iomp") == 0)) {
            fprintf(stderr, "child %s: the OpenMP runtime is %s\n", argv[2], rt);
            return 3;
        }
        return _cmocka_run_group_tests(argv[2], TESTS, NPIN, NULL, NULL);
    }
    return cmocka_run_group_tests(TESTS, NULL, NULL);
}
