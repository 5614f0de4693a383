/*
 * test_executor.c - executors and futures: results and errors through the
 * future, FIFO order, many tasks in flight, timed waits and polling, freeing
 * a pending future, draining on free, submitting while freeing, and the
 * worker's binding (it and its OpenMP team on the pool).
 */
#include "pf_runtime_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

static pf_pool *pool_of(const int *cpus, size_t n)
{
    pf_pool *p = NULL;
    char *why = NULL;
    if (pf_pool_from_list(cpus, n, &p, &why) < 0)
        fail_msg("pool: %s", why);
    return p;
}

static pf_executor *executor_on(const int *cpus, size_t n)
{
    pf_pool *p = pool_of(cpus, n);
    pf_executor *ex = NULL;
    char *why = NULL;
    int rc = pf_executor_create(p, &ex, &why);
    if (rc < 0)
        fail_msg("pf_executor_create: %s", why ? why : pf_strerror(rc));
    pf_pool_free(p);
    return ex;
}

/* An executor on the first two CPUs of the process (the only one, with one): what most tests
   use, since they are not about where the worker runs. */
static pf_executor *executor_on_first_two(void)
{
    int first[] = {cpu_at(0), cpu_count() > 1 ? cpu_at(1) : cpu_at(0)};
    return executor_on(first, cpu_count() > 1 ? 2 : 1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* A gate tasks wait at until the test opens it. */
static atomic_int gate;

static int wait_at_gate(void *arg)
{
    (void)arg;
    while (!atomic_load(&gate))
        sleep_ms(1);
    return 7;
}

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

static void test_result_and_error(void **state)
{
    (void)state;
    pf_executor *ex = executor_on_first_two();
    pf_future *ok, *bad;
    assert_int_equal(pf_executor_submit(ex, return_arg, (void *)(intptr_t)42, &ok), 0);
    assert_int_equal(pf_executor_submit(ex, return_arg, (void *)(intptr_t)-EIO, &bad), 0);
    int r = 0;
    assert_int_equal(pf_future_wait(ok, &r), 0);
    assert_int_equal(r, 42);
    assert_int_equal(pf_future_wait(bad, &r), 0);
    assert_int_equal(r, -EIO);
    assert_int_equal(pf_future_wait(bad, NULL), 0); /* again, and without a result */
    assert_true(pf_future_poll(bad));
    pf_future_free(ok);
    pf_future_free(bad);
    pf_executor_free(ex);
}

/* What a task sees of its thread and of its OpenMP team. */
typedef struct binding {
    char worker[64];
    int team;
    char cpus[4][64];
} binding;

static int look_at_binding(void *arg)
{
    binding *b = arg;
    my_cpus(b->worker, sizeof b->worker);
#pragma omp parallel
    {
        int t = omp_get_thread_num();
        if (t == 0)
            b->team = omp_get_num_threads();
        if (t < 4)
            my_cpus(b->cpus[t], sizeof b->cpus[t]);
    }
    return 0;
}

/* Run look_at_binding on ex. */
static binding binding_of(pf_executor *ex)
{
    binding b = {0};
    pf_future *f;
    assert_int_equal(pf_executor_submit(ex, look_at_binding, &b, &f), 0);
    assert_int_equal(pf_future_wait(f, NULL), 0);
    pf_future_free(f);
    return b;
}

static void test_worker_binding(void **state)
{
    (void)state;
    /* One CPU, the last: the worker and a team of one. */
    int last = cpu_last();
    char want[16];
    snprintf(want, sizeof want, "%d", last);
    pf_executor *ex = executor_on(&last, 1);
    binding b = binding_of(ex);
    assert_string_equal(b.worker, want);
    assert_int_equal(b.team, 1);
    assert_string_equal(b.cpus[0], want);
    pf_executor_free(ex);

    /* Two CPUs in either order: the worker on the first, team thread t on CPU t. */
    NEED_CPUS(2);
    int orders[2][2] = {{cpu_at(0), cpu_at(1)}, {cpu_at(1), cpu_at(0)}};
    for (int o = 0; o < 2; o++) {
        ex = executor_on(orders[o], 2);
        size_t n;
        const int *cpus = pf_pool_cpus(pf_executor_pool(ex), &n);
        assert_int_equal(n, 2);
        assert_int_equal(cpus[0], orders[o][0]);
        for (int round = 0; round < 3; round++) {
            b = binding_of(ex);
            char want0[16], want1[16];
            snprintf(want0, sizeof want0, "%d", orders[o][0]);
            snprintf(want1, sizeof want1, "%d", orders[o][1]);
            assert_string_equal(b.worker, want0);
            assert_int_equal(b.team, 2);
            assert_string_equal(b.cpus[0], want0);
            assert_string_equal(b.cpus[1], want1);
        }
        pf_executor_free(ex);
    }
}

#define MANY 1000

typedef struct order_log {
    int seen[MANY];
    int count; /* touched by the worker only */
} order_log;

typedef struct order_task {
    order_log *log;
    int index;
} order_task;

static int log_order(void *arg)
{
    order_task *t = arg;
    t->log->seen[t->log->count++] = t->index;
    return t->index;
}

/* 1000 tasks in flight at once come back in order, each with its own result. */
static void test_fifo_many_in_flight(void **state)
{
    (void)state;
    pf_executor *ex = executor_on_first_two();
    static order_log log;
    static order_task tasks[MANY];
    static pf_future *futures[MANY];
    log.count = 0;
    for (int i = 0; i < MANY; i++) {
        tasks[i] = (order_task){&log, i};
        assert_int_equal(pf_executor_submit(ex, log_order, &tasks[i], &futures[i]), 0);
    }
    for (int i = MANY - 1; i >= 0; i--) { /* waiting in reverse changes nothing */
        int r = -1;
        assert_int_equal(pf_future_wait(futures[i], &r), 0);
        assert_int_equal(r, i);
        pf_future_free(futures[i]);
    }
    assert_int_equal(log.count, MANY);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(log.seen[i], i);
    pf_executor_free(ex);
}

/* Several submitting threads: each one's tasks keep their order. */
static int last_seen[4]; /* per submitter, the last index the worker ran; worker only */
static atomic_int order_errors;

typedef struct tagged {
    int submitter;
    int index;
} tagged;

static int check_tag(void *arg)
{
    tagged *t = arg;
    if (last_seen[t->submitter] != t->index - 1)
        atomic_fetch_add(&order_errors, 1);
    last_seen[t->submitter] = t->index;
    free(t);
    return 0;
}

typedef struct submitter {
    pf_executor *ex;
    int id;
} submitter;

static void *submit_many(void *arg)
{
    submitter *s = arg;
    for (int i = 0; i < 250; i++) {
        tagged *t = malloc(sizeof *t);
        *t = (tagged){s->id, i};
        if (pf_executor_submit(s->ex, check_tag, t, NULL) < 0)
            atomic_fetch_add(&order_errors, 1);
    }
    return NULL;
}

static void test_concurrent_submitters(void **state)
{
    (void)state;
    pf_executor *ex = executor_on_first_two();
    atomic_store(&order_errors, 0);
    submitter s[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        last_seen[i] = -1;
        s[i] = (submitter){ex, i};
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, submit_many, &s[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    pf_executor_free(ex); /* drains, and orders the worker's writes before what follows */
    assert_int_equal(atomic_load(&order_errors), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(last_seen[i], 249);
}

static void test_timed_wait_and_poll(void **state)
{
    (void)state;
    atomic_store(&gate, 0);
    pf_executor *ex = executor_on_first_two();
    pf_future *f;
    assert_int_equal(pf_executor_submit(ex, wait_at_gate, NULL, &f), 0);
    assert_false(pf_future_poll(f));
    int r = 0;
    assert_int_equal(pf_future_wait_timeout(f, 0, &r), -ETIMEDOUT);
    double t0 = now_ms();
    assert_int_equal(pf_future_wait_timeout(f, 50, &r), -ETIMEDOUT);
    double waited = now_ms() - t0;
    if (waited < 49 || waited > 2000)
        fail_msg("a 50 ms timed wait took %.1f ms", waited);
    assert_false(pf_future_poll(f));
    atomic_store(&gate, 1);
    assert_int_equal(pf_future_wait_timeout(f, 10000, &r), 0);
    assert_int_equal(r, 7);
    assert_true(pf_future_poll(f));
    assert_int_equal(pf_future_wait_timeout(f, 0, &r), 0);
    pf_future_free(f);
    pf_executor_free(ex);
}

static atomic_int ran;

static int count_run(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
    return 0;
}

/* Freeing a future whose task has not run: the task still runs, nothing leaks. */
static void test_free_pending_future(void **state)
{
    (void)state;
    atomic_store(&gate, 0);
    atomic_store(&ran, 0);
    pf_executor *ex = executor_on_first_two();
    pf_future *blocker, *dropped, *last;
    assert_int_equal(pf_executor_submit(ex, wait_at_gate, NULL, &blocker), 0);
    assert_int_equal(pf_executor_submit(ex, count_run, NULL, &dropped), 0);
    pf_future_free(dropped);
    assert_int_equal(pf_executor_submit(ex, count_run, NULL, NULL), 0); /* no future at all */
    assert_int_equal(pf_executor_submit(ex, count_run, NULL, &last), 0);
    atomic_store(&gate, 1);
    assert_int_equal(pf_future_wait(last, NULL), 0);
    assert_int_equal(atomic_load(&ran), 3);
    pf_future_free(blocker); /* done by now */
    pf_future_free(last);
    pf_executor_free(ex);
}

static int slow_count(void *arg)
{
    (void)arg;
    sleep_ms(20);
    atomic_fetch_add(&ran, 1);
    return 0;
}

/* Free runs what is queued before it returns; the futures stay valid. */
static void test_drain_on_free(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    pf_executor *ex = executor_on_first_two();
    pf_future *first, *rest[200];
    assert_int_equal(pf_executor_submit(ex, slow_count, NULL, &first), 0);
    for (int i = 0; i < 200; i++)
        assert_int_equal(pf_executor_submit(ex, count_run, NULL, &rest[i]), 0);
    pf_executor_free(ex);
    assert_int_equal(atomic_load(&ran), 201);
    assert_true(pf_future_poll(first));
    pf_future_free(first);
    for (int i = 0; i < 200; i++) {
        assert_true(pf_future_poll(rest[i]));
        pf_future_free(rest[i]);
    }
}

typedef struct resubmit {
    pf_executor *ex;
    int rc;
} resubmit;

static int submit_to_own(void *arg)
{
    resubmit *r = arg;
    r->rc = pf_executor_submit(r->ex, count_run, NULL, NULL);
    return 0;
}

static void *free_in_thread(void *arg)
{
    pf_executor_free(arg);
    return NULL;
}

/* While free drains, submitting (from outside or from a task) is -ECANCELED. */
static void test_submit_while_freeing(void **state)
{
    (void)state;
    atomic_store(&gate, 0);
    atomic_store(&ran, 0);
    pf_executor *ex = executor_on_first_two();
    resubmit during = {ex, 1};
    assert_int_equal(pf_executor_submit(ex, wait_at_gate, NULL, NULL), 0);
    assert_int_equal(pf_executor_submit(ex, submit_to_own, &during, NULL), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, free_in_thread, ex), 0);
    sleep_ms(50); /* free has begun: it waits for the gate */
    assert_int_equal(pf_executor_submit(ex, count_run, NULL, NULL), -ECANCELED);
    atomic_store(&gate, 1);
    pthread_join(t, NULL);
    assert_int_equal(during.rc, -ECANCELED);
    assert_int_equal(atomic_load(&ran), 0);
}

/* A task may submit to its own executor; waiting there for that task is -EDEADLK. */
typedef struct nested {
    pf_executor *ex;
    int wait_rc;
    int done_wait_rc;
    bool in_worker;
} nested;

static int submit_and_wait(void *arg)
{
    nested *n = arg;
    n->in_worker = pf_executor_in_worker(n->ex);
    pf_future *f;
    if (pf_executor_submit(n->ex, count_run, NULL, &f) < 0)
        return -1;
    n->wait_rc = pf_future_wait(f, NULL);
    pf_future_free(f);
    return 0;
}

static int wait_done(void *arg)
{
    nested *n = arg;
    pf_future *f;
    if (pf_executor_submit(n->ex, count_run, NULL, &f) < 0)
        return -1;
    /* Runs before the wait can be reached?  No: FIFO puts it after this task. */
    n->done_wait_rc = pf_future_wait_timeout(f, 0, NULL);
    pf_future_free(f);
    return 0;
}

static void test_wait_from_worker(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    pf_executor *ex = executor_on_first_two();
    nested n = {ex, 1, 1, false};
    pf_future *f;
    assert_int_equal(pf_executor_submit(ex, submit_and_wait, &n, &f), 0);
    assert_int_equal(pf_future_wait(f, NULL), 0);
    pf_future_free(f);
    assert_true(n.in_worker);
    assert_false(pf_executor_in_worker(ex));
    assert_int_equal(n.wait_rc, -EDEADLK);
    assert_int_equal(pf_executor_submit(ex, wait_done, &n, &f), 0);
    assert_int_equal(pf_future_wait(f, NULL), 0);
    pf_future_free(f);
    assert_int_equal(n.done_wait_rc, -EDEADLK);
    pf_executor_free(ex);
    assert_int_equal(atomic_load(&ran), 2);
}

/* Opened by the test once everything is queued: the task must not free its
   executor before the next submission is in (that one would be -ECANCELED). */
static atomic_int free_gate;

static int free_own_executor(void *arg)
{
    while (!atomic_load(&free_gate))
        sleep_ms(1);
    pf_executor_free(arg);
    return 5;
}

/* A task may free its own executor: the rest of the queue still runs. */
static void test_free_from_task(void **state)
{
    (void)state;
    atomic_store(&ran, 0);
    pf_executor *ex = executor_on_first_two();
    pf_future *f, *after;
    atomic_store(&free_gate, 0);
    assert_int_equal(pf_executor_submit(ex, free_own_executor, ex, &f), 0);
    assert_int_equal(pf_executor_submit(ex, slow_count, NULL, &after), 0);
    atomic_store(&free_gate, 1);
    int r;
    assert_int_equal(pf_future_wait(f, &r), 0);
    assert_int_equal(r, 5);
    assert_int_equal(pf_future_wait(after, NULL), 0);
    assert_int_equal(atomic_load(&ran), 1);
    pf_future_free(f);
    pf_future_free(after);
    sleep_ms(20); /* let the detached worker finish freeing */
}

static void test_errors(void **state)
{
    (void)state;
    pf_executor *ex = NULL;
    char *why = NULL;
    assert_int_equal(pf_executor_create(NULL, &ex, &why), -EINVAL);
    free(why);
    ex = executor_on_first_two();
    pf_future *f = NULL;
    assert_int_equal(pf_executor_submit(ex, NULL, NULL, &f), -EINVAL);
    assert_int_equal(pf_executor_submit(NULL, count_run, NULL, &f), -EINVAL);
    assert_null(f);
    assert_false(pf_future_poll(NULL));
    assert_int_equal(pf_future_wait(NULL, NULL), -EINVAL);
    pf_executor_free(ex);
    pf_executor_free(NULL);
    pf_future_free(NULL);
}

/* Quick back-to-back round trips (both sides spinning) and slow ones (sleeping). */
static void test_round_trips(void **state)
{
    (void)state;
    pf_executor *ex = executor_on_first_two();
    for (int i = 0; i < 2000; i++) {
        pf_future *f;
        int r;
        assert_int_equal(pf_executor_submit(ex, return_arg, (void *)(intptr_t)i, &f), 0);
        assert_int_equal(pf_future_wait(f, &r), 0);
        assert_int_equal(r, i);
        pf_future_free(f);
        if (i % 500 == 0)
            sleep_ms(5); /* past the spin: the worker sleeps */
    }
    pf_executor_free(ex);
}

int main(void)
{
    cpu_count(); /* read the CPUs before any test narrows this thread */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_and_error),
        cmocka_unit_test(test_worker_binding),
        cmocka_unit_test(test_fifo_many_in_flight),
        cmocka_unit_test(test_concurrent_submitters),
        cmocka_unit_test(test_timed_wait_and_poll),
        cmocka_unit_test(test_free_pending_future),
        cmocka_unit_test(test_drain_on_free),
        cmocka_unit_test(test_submit_while_freeing),
        cmocka_unit_test(test_wait_from_worker),
        cmocka_unit_test(test_free_from_task),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
