/*
 * test_streams.c - multi-stream execution: how a pool is cut into streams
 * and a batch into chunks (a table), where each chunk runs, the first error
 * by stream index, all chunks at once, and the errors.
 */
#include "pf_runtime_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define MAX_STREAMS 4

static pf_pool *pool_of(const int *cpus, size_t n)
{
    pf_pool *p = NULL;
    char *why = NULL;
    if (pf_pool_from_list(cpus, n, &p, &why) < 0)
        fail_msg("pool: %s", why);
    return p;
}

static pf_streams *streams_on(const int *cpus, size_t n, int nstreams)
{
    pf_pool *p = pool_of(cpus, n);
    pf_streams *s = NULL;
    char *why = NULL;
    int rc = pf_streams_create(p, nstreams, &s, &why);
    if (rc < 0)
        fail_msg("pf_streams_create(%d): %s", nstreams, why ? why : pf_strerror(rc));
    pf_pool_free(p);
    return s;
}

/* The pool's CPUs as "1,0". */
static const char *pool_str(const pf_pool *pool, char *buf, size_t size)
{
    size_t n, len = 0;
    const int *cpus = pf_pool_cpus(pool, &n);
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%d", i ? "," : "", cpus[i]);
    return buf;
}

/* What each stream saw: its chunk, its thread's CPUs, its team. */
typedef struct record {
    int calls[MAX_STREAMS];
    size_t begin[MAX_STREAMS], end[MAX_STREAMS];
    char worker[MAX_STREAMS][64];
    char team[MAX_STREAMS][128]; /* "0 1": team thread t's CPUs */
} record;

static int record_chunk(void *ctx, int stream, size_t begin, size_t end)
{
    record *r = ctx;
    r->calls[stream]++;
    r->begin[stream] = begin;
    r->end[stream] = end;
    my_cpus(r->worker[stream], sizeof r->worker[stream]);
    char cpus[4][64] = {{0}};
    int size = 0;
#pragma omp parallel
    {
        int t = omp_get_thread_num();
        if (t == 0)
            size = omp_get_num_threads();
        if (t < 4)
            my_cpus(cpus[t], sizeof cpus[t]);
    }
    size_t len = 0;
    r->team[stream][0] = '\0';
    for (int t = 0; t < size && t < 4; t++)
        len += (size_t)snprintf(r->team[stream] + len, sizeof r->team[stream] - len, "%s%s",
                                t ? " " : "", cpus[t]);
    return 0;
}

/*
 * The table's CPUs are letters for CPUs of the process: a is the first, b
 * the second, z the last.  "ab" is a pool of a then b; "a|b" two streams'
 * pools, of a and of b; "a,b" one pool of both.
 */
static int cpu_of(char letter)
{
    return letter == 'a' ? cpu_at(0) : letter == 'b' ? cpu_at(1) : cpu_last();
}

/* The template with each letter replaced by its CPU, in buf. */
static const char *with_cpus(const char *template, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (const char *t = template; *t && len < size; t++) {
        if (*t >= 'a' && *t <= 'z')
            len += (size_t)snprintf(buf + len, size - len, "%d", cpu_of(*t));
        else
            len += (size_t)snprintf(buf + len, size - len, "%c", *t);
    }
    return buf;
}

typedef struct chunk_case {
    const char *cpus;
    int nstreams; /* as given: 0 is AUTO */
    size_t batch;
    const char *pools;  /* per stream, "|"-separated */
    const char *chunks; /* per stream "begin-end" or "-" when it does not run */
} chunk_case;

static const chunk_case CASES[] = {
    /* One CPU: the last. */
    {"z", PF_STREAMS_AUTO, 4, "z", "0-4"},
    {"z", 1, 0, "z", "-"},
    /* Two CPUs, two streams (given and AUTO). */
    {"ab", 2, 0, "a|b", "- -"},
    {"ab", 2, 1, "a|b", "0-1 -"},
    {"ab", 2, 2, "a|b", "0-1 1-2"},
    {"ab", 2, 3, "a|b", "0-2 2-3"},
    {"ab", 2, 4, "a|b", "0-2 2-4"},
    {"ab", 2, 5, "a|b", "0-3 3-5"},
    {"ab", PF_STREAMS_AUTO, 64, "a|b", "0-32 32-64"},
    {"ab", PF_STREAMS_AUTO, 63, "a|b", "0-32 32-63"},
    /* The pool's order decides which CPU each stream gets. */
    {"ba", 2, 3, "b|a", "0-2 2-3"},
    /* One stream over both CPUs: a team of two. */
    {"ab", 1, 1, "a,b", "0-1"},
    {"ab", 1, 7, "a,b", "0-7"},
    {"ba", 1, 2, "b,a", "0-2"},
};

static void test_chunk_table(void **state)
{
    (void)state;
    size_t not_run = 0;
    for (size_t c = 0; c < sizeof CASES / sizeof *CASES; c++) {
        const chunk_case *k = &CASES[c];
        if (strchr(k->cpus, 'b') && cpu_count() < 2) {
            not_run++;
            continue;
        }
        int ids[2];
        size_t ncpus = strlen(k->cpus);
        for (size_t i = 0; i < ncpus; i++)
            ids[i] = cpu_of(k->cpus[i]);
        char want_pools[128];
        with_cpus(k->pools, want_pools, sizeof want_pools);
        pf_streams *s = streams_on(ids, ncpus, k->nstreams);
        int n = pf_streams_count(s);
        char pools[128] = "", chunks[128] = "", buf[64];
        size_t lp = 0, lc = 0;
        for (int i = 0; i < n; i++)
            lp += (size_t)snprintf(pools + lp, sizeof pools - lp, "%s%s", i ? "|" : "",
                                   pool_str(pf_streams_pool(s, i), buf, sizeof buf));
        record r;
        memset(&r, 0, sizeof r);
        int rc = pf_streams_run(s, k->batch, record_chunk, &r);
        for (int i = 0; i < n; i++) {
            if (r.calls[i] > 1)
                fail_msg("case %zu: stream %d called %d times", c, i, r.calls[i]);
            if (r.calls[i])
                lc += (size_t)snprintf(chunks + lc, sizeof chunks - lc, "%s%zu-%zu", i ? " " : "",
                                       r.begin[i], r.end[i]);
            else
                lc += (size_t)snprintf(chunks + lc, sizeof chunks - lc, "%s-", i ? " " : "");
        }
        if (rc != 0 || strcmp(pools, want_pools) != 0 || strcmp(chunks, k->chunks) != 0)
            fail_msg("case %zu (batch %zu): rc %d, pools %s (expected %s), chunks %s "
                     "(expected %s)",
                     c, k->batch, rc, pools, want_pools, chunks, k->chunks);
        /* Each chunk ran on its stream: worker on the stream's first CPU, team on its CPUs. */
        for (int i = 0; i < n; i++) {
            if (!r.calls[i])
                continue;
            size_t np;
            const int *cpus = pf_pool_cpus(pf_streams_pool(s, i), &np);
            char want_worker[16], want_team[64] = "";
            snprintf(want_worker, sizeof want_worker, "%d", cpus[0]);
            size_t lt = 0;
            for (size_t t = 0; t < np; t++)
                lt += (size_t)snprintf(want_team + lt, sizeof want_team - lt, "%s%d", t ? " " : "",
                                       cpus[t]);
            if (strcmp(r.worker[i], want_worker) != 0 || strcmp(r.team[i], want_team) != 0)
                fail_msg("case %zu stream %d: worker on %s, team on '%s'; expected %s and '%s'", c,
                         i, r.worker[i], r.team[i], want_worker, want_team);
        }
        pf_streams_free(s);
    }
    if (not_run)
        SKIP_BECAUSE("%zu of %zu cases need 2 CPUs, this process may use 1", not_run,
                     sizeof CASES / sizeof *CASES);
}

/* Streams on the first two CPUs of the process (the only one, with one); *n is their number. */
static pf_pool *first_two(size_t *n)
{
    *n = cpu_count() < 2 ? 1 : 2;
    int ids[] = {cpu_at(0), cpu_at(*n - 1)};
    return pool_of(ids, *n);
}

static void test_create_errors(void **state)
{
    (void)state;
    size_t np;
    pf_pool *p = first_two(&np);
    pf_streams *s = NULL;
    char *why = NULL;
    assert_int_equal(pf_streams_create(p, (int)np + 1, &s, &why), -EINVAL);
    assert_non_null(strstr(why, "at most one stream per CPU"));
    free(why);
    why = NULL;
    assert_int_equal(pf_streams_create(p, -1, &s, &why), -EINVAL);
    free(why);
    assert_int_equal(pf_streams_create(NULL, 1, &s, NULL), -EINVAL);
    assert_null(s);
    assert_int_equal(pf_streams_create(p, PF_STREAMS_AUTO, &s, NULL), 0);
    assert_int_equal(pf_streams_count(s), (int)np);
    assert_null(pf_streams_pool(s, (int)np));
    assert_null(pf_streams_pool(s, -1));
    assert_int_equal(pf_streams_run(s, 3, NULL, NULL), -EINVAL);
    assert_int_equal(pf_streams_run(NULL, 3, record_chunk, NULL), -EINVAL);
    pf_streams_free(s);
    pf_streams_free(NULL);
    pf_pool_free(p);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Stream i returns codes[i], stream 0 after a while, so that the others finish first. */
static int fail_as_told(void *ctx, int stream, size_t begin, size_t end)
{
    (void)begin;
    (void)end;
    const int *codes = ctx;
    if (stream == 0)
        sleep_ms(20);
    return codes[stream];
}

static void test_first_error(void **state)
{
    (void)state;
    NEED_CPUS(2);
    int ab[] = {cpu_at(0), cpu_at(1)};
    pf_streams *s = streams_on(ab, 2, 2);
    int none[] = {0, 0}, both[] = {-EPERM, -EIO}, second[] = {0, -EIO}, first[] = {-EPERM, 0};
    assert_int_equal(pf_streams_run(s, 2, fail_as_told, none), 0);
    /* Lowest stream index, although stream 1 failed first in time. */
    assert_int_equal(pf_streams_run(s, 2, fail_as_told, both), -EPERM);
    assert_int_equal(pf_streams_run(s, 2, fail_as_told, second), -EIO);
    assert_int_equal(pf_streams_run(s, 2, fail_as_told, first), -EPERM);
    /* A stream that does not run (batch 1) cannot fail. */
    assert_int_equal(pf_streams_run(s, 1, fail_as_told, second), 0);
    pf_streams_free(s);
}

/* A barrier every chunk must reach: it can only be passed if all run at once. */
typedef struct meeting {
    atomic_int arrived;
    int expected;
} meeting;

static int meet(void *ctx, int stream, size_t begin, size_t end)
{
    (void)stream;
    (void)begin;
    (void)end;
    meeting *m = ctx;
    atomic_fetch_add(&m->arrived, 1);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&m->arrived) < m->expected) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 5)
            return -ETIMEDOUT; /* the others never came: they were not running */
        sched_yield();
    }
    return 0;
}

static void test_all_at_once(void **state)
{
    (void)state;
    NEED_CPUS(2);
    int ab[] = {cpu_at(0), cpu_at(1)};
    pf_streams *s = streams_on(ab, 2, 2);
    for (int i = 0; i < 50; i++) {
        meeting m = {0, 2};
        assert_int_equal(pf_streams_run(s, 10, meet, &m), 0);
    }
    pf_streams_free(s);
}

/* Concurrent runs from two threads do not interleave their chunks (that could deadlock). */
typedef struct runner {
    pf_streams *s;
    int failures;
} runner;

static void *run_meetings(void *arg)
{
    runner *r = arg;
    for (int i = 0; i < 50; i++) {
        meeting m = {0, 2};
        if (pf_streams_run(r->s, 2, meet, &m) != 0)
            r->failures++;
    }
    return NULL;
}

static void test_concurrent_runs(void **state)
{
    (void)state;
    NEED_CPUS(2);
    int ab[] = {cpu_at(0), cpu_at(1)};
    pf_streams *s = streams_on(ab, 2, 2);
    runner r[2] = {{s, 0}, {s, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, run_meetings, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(r[0].failures + r[1].failures, 0);
    pf_streams_free(s);
}

static int run_from_inside(void *ctx, int stream, size_t begin, size_t end)
{
    (void)begin;
    (void)end;
    if (stream != 0)
        return 0;
    return pf_streams_run(ctx, 2, run_from_inside, ctx);
}

static void test_run_from_a_stream(void **state)
{
    (void)state;
    size_t np;
    pf_pool *p = first_two(&np);
    pf_streams *s = NULL;
    assert_int_equal(pf_streams_create(p, (int)np, &s, NULL), 0);
    assert_int_equal(pf_streams_run(s, 2, run_from_inside, s), -EDEADLK);
    pf_streams_free(s);
    pf_pool_free(p);
}

static atomic_long items;

static int count_items(void *ctx, int stream, size_t begin, size_t end)
{
    (void)ctx;
    (void)stream;
    atomic_fetch_add(&items, (long)(end - begin));
    return 0;
}

/* Many small runs, with pauses long enough for the workers to fall asleep. */
static void test_many_runs(void **state)
{
    (void)state;
    size_t np;
    pf_pool *p = first_two(&np);
    pf_streams *s = NULL;
    assert_int_equal(pf_streams_create(p, PF_STREAMS_AUTO, &s, NULL), 0);
    pf_pool_free(p);
    atomic_store(&items, 0);
    long want = 0;
    for (size_t i = 0; i < 2000; i++) {
        assert_int_equal(pf_streams_run(s, i % 5, count_items, NULL), 0);
        want += (long)(i % 5);
        if (i % 400 == 0)
            sleep_ms(5);
    }
    assert_int_equal(atomic_load(&items), want);
    pf_streams_free(s);
}

int main(void)
{
    cpu_count(); /* read the CPUs before any test narrows this thread */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_table),     cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_first_error),     cmocka_unit_test(test_all_at_once),
        cmocka_unit_test(test_concurrent_runs), cmocka_unit_test(test_run_from_a_stream),
        cmocka_unit_test(test_many_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
