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
    char cpus[MAX_TEAM][64];
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

static pf_pool *pool_of(const char *list_in_order)
{
    int ids[MAX_TEAM];
    size_t n = 0;
    for (const char *s = list_in_order; *s && n < MAX_TEAM; s++)
        if (*s >= '0' && *s <= '9')
            ids[n++] = *s - '0';
    pf_pool *p = NULL;
    char *why = NULL;
    if (pf_pool_from_list(ids, n, &p, &why) < 0)
        fail_msg("pool %s: %s", list_in_order, why);
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

/* Give every thread of a 2-thread team both CPUs and the team size 2 (test set-up). */
static void reset_team(void)
{
    static const int both[] = {0, 1};
    omp_set_dynamic(0);
    omp_set_num_threads(2);
#pragma omp parallel num_threads(2)
    set_my_cpus(both, 2);
}

static const int C01[] = {0, 1}, C10[] = {1, 0}, C0[] = {0}, C1[] = {1};

static void test_pin_team(void **state)
{
    (void)state;
    reset_team();
    pf_pool *p = pool_of("0,1");
    pf_pin_state *st = pin(p);
    expect_team(C01, 2);
    assert_int_equal(pf_unpin(st), 0);
    pf_pool_free(p);
}

static void test_pin_reversed(void **state)
{
    (void)state;
    reset_team();
    pf_pool *p = pool_of("1,0");
    pf_pin_state *st = pin(p);
    expect_team(C10, 2);
    assert_int_equal(pf_unpin(st), 0);
    pf_pool_free(p);
}

static void test_pin_single(void **state)
{
    (void)state;
    reset_team();
    for (int cpu = 0; cpu < 2; cpu++) {
        pf_pool *p = pool_of(cpu ? "1" : "0");
        pf_pin_state *st = pin(p);
        expect_team(cpu ? C1 : C0, 1);
        assert_int_equal(pf_unpin(st), 0);
        assert_int_equal(omp_get_max_threads(), 2);
        pf_pool_free(p);
    }
}

/* Distinct masks before pinning; after unpinning, each thread has its own back. */
static void test_restore_exactly(void **state)
{
    (void)state;
    reset_team();
    team_view before, after;
#pragma omp parallel num_threads(2)
    {
        int mine = omp_get_thread_num() == 0 ? 1 : 0;
        if (omp_get_thread_num() == 0)
            set_my_cpus(C01, 2);
        else
            set_my_cpus(&mine, 1);
    }
    look_at_team(&before);
    assert_int_equal(before.size, 2);
    assert_string_equal(before.cpus[0], "0-1");
    assert_string_equal(before.cpus[1], "0");
    omp_set_dynamic(1); /* after looking: it may shrink regions */

    pf_pool *p = pool_of("1,0");
    pf_pin_state *st = pin(p);
    assert_int_equal(omp_get_dynamic(), 0);
    expect_team(C10, 2);
    assert_int_equal(pf_unpin(st), 0);

    /* Read the saved threads from outside any region: the very same tids. */
    for (int t = 0; t < 2; t++) {
        char buf[64];
        assert_string_equal(task_cpus(before.tids[t], buf, sizeof buf), before.cpus[t]);
    }
    assert_int_equal(omp_get_max_threads(), 2);
    assert_int_equal(omp_get_dynamic(), 1);
    omp_set_dynamic(0);
    look_at_team(&after);
    assert_string_equal(after.cpus[0], "0-1");
    assert_string_equal(after.cpus[1], "0");
    pf_pool_free(p);
}

static void test_restore_team_size(void **state)
{
    (void)state;
    reset_team();
    omp_set_num_threads(3);
    pf_pool *p = pool_of("0");
    pf_pin_state *st = pin(p);
    expect_team(C0, 1);
    assert_int_equal(pf_unpin(st), 0);
    assert_int_equal(omp_get_max_threads(), 3);
    char buf[64];
    assert_string_equal(my_cpus(buf, sizeof buf), "0-1");
    pf_pool_free(p);
}

static void test_nesting(void **state)
{
    (void)state;
    reset_team();
    pf_pool *a = pool_of("0,1"), *b = pool_of("1,0");
    pf_pin_state *sa = pin(a);
    expect_team(C01, 2);
    pf_pin_state *sb = pin(b);
    expect_team(C10, 2);
    assert_int_equal(pf_unpin(sb), 0);
    expect_team(C01, 2);
    assert_int_equal(pf_unpin(sa), 0);
    team_view v;
    look_at_team(&v);
    assert_string_equal(v.cpus[0], "0-1");
    assert_string_equal(v.cpus[1], "0-1");
    pf_pool_free(a);
    pf_pool_free(b);
}

static void test_nesting_sizes(void **state)
{
    (void)state;
    reset_team();
    pf_pool *two = pool_of("0,1"), *one = pool_of("1");
    /* Larger, then smaller. */
    pf_pin_state *s2 = pin(two);
    pf_pin_state *s1 = pin(one);
    expect_team(C1, 1);
    assert_int_equal(pf_unpin(s1), 0);
    expect_team(C01, 2);
    assert_int_equal(pf_unpin(s2), 0);
    /* Smaller, then larger. */
    s1 = pin(one);
    s2 = pin(two);
    expect_team(C01, 2);
    assert_int_equal(pf_unpin(s2), 0);
    expect_team(C1, 1);
    assert_int_equal(pf_unpin(s1), 0);
    assert_int_equal(omp_get_max_threads(), 2);
    char buf[64];
    assert_string_equal(my_cpus(buf, sizeof buf), "0-1");
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

    pf_pool *p = pool_of("1");
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
    assert_string_equal(v.cpus[0], "0-1");
    assert_string_equal(v.cpus[1], "0-1");
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
    pf_pool *p = pool_of("1");
    pf_pin_state *st = pin(p);
    pthread_t t;
    void *rc;
    assert_int_equal(pthread_create(&t, NULL, unpin_elsewhere, st), 0);
    pthread_join(t, &rc);
    assert_int_equal((int)(intptr_t)rc, -EINVAL);
    expect_team(C1, 1);
    assert_int_equal(pf_unpin(st), 0);
    pf_pool_free(p);
}

static void test_pin_without_state(void **state)
{
    (void)state;
    reset_team();
    pf_pool *p = pool_of("1,0");
    assert_int_equal(pf_pin(p, NULL, NULL), 0);
    expect_team(C10, 2);
    reset_team();
    pf_pool_free(p);
}

/* Two threads, each with its own team, pinned at once to different orders. */
typedef struct racer {
    const char *list;
    const int *cpus;
    int rounds_ok;
} racer;

static void *pin_in_thread(void *arg)
{
    racer *r = arg;
    pf_pool *p = pool_of(r->list);
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
    racer r[2] = {{"0,1", C01, 0}, {"1,0", C10, 0}};
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
        skip();
    assert_int_equal(run_child(iomp ? "iomp" : "gomp", -1, env), 0);
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
