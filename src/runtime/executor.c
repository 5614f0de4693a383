/*
 * executor.c - one pinned worker thread per executor, FIFO tasks, futures.
 *
 * The queue is a linked list of futures under a mutex; the future is the task.
 * Latency is what matters (an empty task should come back in a few
 * microseconds), so both sides spin before they sleep:
 *
 *   - the worker, after its last task, polls an atomic count of queued tasks
 *     before it sleeps on a condition variable; a submitter signals only
 *     when the worker said it sleeps;
 *   - a waiter polls the future's state before it sleeps on that state word
 *     with futex(2); the worker wakes it only when a waiter said it sleeps.
 *
 * A spin is a few `pause`s, then sched_yield() at each turn: the spinner
 * gives way at once to any other runnable thread on its CPU (on a small
 * machine the caller, the workers and their OpenMP teams share few CPUs,
 * and the caller usually sits on a CPU whose worker it waits for), and only
 * burns a CPU nobody else wants.  How long: PINFER_SPIN_US microseconds
 * (read when the executor is made; default DEFAULT_SPIN_US, 0 = sleep at
 * once), like GOMP_SPINCOUNT or KMP_BLOCKTIME for OpenMP's own threads.  A
 * sleeping thread costs a wake-up, which on a virtual machine with idle
 * vCPUs can take tens of microseconds or more (docs/runtime.md).
 *
 * A future is shared by the worker and the caller, with a reference count:
 * freeing a future whose task has not run only drops the caller's reference.
 */
#include "pinfer_runtime.h"
#include "base/util.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* How long a worker or a waiter spins before it sleeps, unless PINFER_SPIN_US says. */
#define DEFAULT_SPIN_US 200
#define MAX_SPIN_US 1000000
/* Turns of plain `pause` before a spin starts yielding. */
#define PAUSE_TURNS 64

enum { FUTURE_PENDING = 0, FUTURE_DONE = 1 };

struct pf_future {
    atomic_uint state;    /* FUTURE_PENDING / FUTURE_DONE; the futex word */
    atomic_uint sleepers; /* waiters asleep (or about to be) on state */
    atomic_int refs;      /* the queue's and the caller's */
    int result;           /* written before state becomes DONE */
    pf_task_fn fn;
    void *arg;
    pthread_t worker; /* to refuse a wait that would deadlock */
    int64_t spin_ns;  /* the executor's */
    struct pf_future *next;
};

struct pf_executor {
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* the worker sleeps on it */
    pf_future *head, *tail; /* under lock */
    atomic_bool closing;    /* written under lock: free has begun; read while spinning */
    bool sleeping;          /* under lock: the worker waits on `wake` */
    bool self_free;         /* under lock: free was called by a task; the worker frees */
    atomic_size_t queued;   /* tasks in the list, read without the lock while spinning */
    pthread_t thread;
    pf_pool *pool;
    int64_t spin_ns;
    /* Start-up handshake: the worker reports how pinning went. */
    pthread_cond_t started;
    int start_rc; /* 1 until the worker reports */
    char *start_why;
};

static long futex(atomic_uint *word, int op, unsigned val, const struct timespec *timeout)
{
    return syscall(SYS_futex, word, op | FUTEX_PRIVATE_FLAG, val, timeout, NULL, 0);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/*
 * Poll ready(arg) for up to ns nanoseconds; true as soon as it holds.
 * Yielding rather than pausing after the first turns: see the top.
 */
static bool spin(bool (*ready)(const void *), const void *arg, int64_t ns)
{
    int64_t until = now_ns() + ns;
    for (unsigned turn = 0;; turn++) {
        if (ready(arg))
            return true;
        if (turn < PAUSE_TURNS) {
            cpu_relax();
            continue;
        }
        if (now_ns() >= until)
            return false;
        sched_yield();
    }
}

static int64_t spin_setting(void)
{
    const char *v = getenv("PINFER_SPIN_US");
    long us;
    if (!v || pf__parse_int(v, strlen(v), 0, MAX_SPIN_US, &us) < 0)
        us = DEFAULT_SPIN_US;
    return (int64_t)us * 1000;
}

static bool work_or_closing(const void *arg)
{
    const pf_executor *ex = arg;
    return atomic_load_explicit(&ex->queued, memory_order_acquire) != 0 ||
           atomic_load_explicit(&ex->closing, memory_order_relaxed);
}

static bool future_done(const void *arg)
{
    const pf_future *f = arg;
    return atomic_load_explicit(&f->state, memory_order_acquire) == FUTURE_DONE;
}

static void future_release(pf_future *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}

static void future_complete(pf_future *f, int result)
{
    f->result = result;
    /* seq_cst store, then seq_cst load of sleepers: with the waiter's
       increment-then-load, at least one side sees the other (no lost wake-up). */
    atomic_store(&f->state, FUTURE_DONE);
    if (atomic_load(&f->sleepers) > 0)
        futex(&f->state, FUTEX_WAKE, INT_MAX, NULL);
    future_release(f);
}

/* Pop the next task, or NULL when closing and empty; sleeps when there is none. */
static pf_future *next_task(pf_executor *ex)
{
    spin(work_or_closing, ex, ex->spin_ns);
    pthread_mutex_lock(&ex->lock);
    while (!ex->head && !atomic_load_explicit(&ex->closing, memory_order_relaxed)) {
        ex->sleeping = true;
        pthread_cond_wait(&ex->wake, &ex->lock);
        ex->sleeping = false;
    }
    pf_future *f = ex->head;
    if (f) {
        ex->head = f->next;
        if (!ex->head)
            ex->tail = NULL;
        atomic_fetch_sub_explicit(&ex->queued, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&ex->lock);
    return f;
}

static void executor_destroy(pf_executor *ex)
{
    pthread_mutex_destroy(&ex->lock);
    pthread_cond_destroy(&ex->wake);
    pthread_cond_destroy(&ex->started);
    pf_pool_free(ex->pool);
    free(ex->start_why);
    free(ex);
}

static void *worker_main(void *arg)
{
    pf_executor *ex = arg;
    pf_pin_state *pinned = NULL;
    char *why = NULL;
    int rc = pf_pin(ex->pool, &pinned, &why);
    pthread_mutex_lock(&ex->lock);
    ex->start_rc = rc;
    ex->start_why = why;
    pthread_cond_signal(&ex->started);
    pthread_mutex_unlock(&ex->lock);
    if (rc < 0)
        return NULL;

    pf_future *f;
    while ((f = next_task(ex)))
        future_complete(f, f->fn(f->arg));

    /* Give the team threads their masks back: libomp hands them to other
       teams later, and they should not carry this pool's binding there. */
    pf_unpin(pinned);
    pthread_mutex_lock(&ex->lock);
    bool self_free = ex->self_free;
    pthread_mutex_unlock(&ex->lock);
    if (self_free) {
        pthread_detach(pthread_self());
        executor_destroy(ex);
    }
    return NULL;
}

int pf_executor_create(const pf_pool *pool, pf_executor **out, char **why)
{
    if (!pool || !out)
        return pf__fail(why, -EINVAL, "no pool, or no place for the executor");
    size_t n;
    const int *cpus = pf_pool_cpus(pool, &n);
    pf_executor *ex = calloc(1, sizeof *ex);
    if (!ex)
        return pf__fail(why, -ENOMEM, "out of memory");
    int rc = pf_pool_from_list(cpus, n, &ex->pool, why);
    if (rc < 0) {
        free(ex);
        return rc;
    }
    pthread_mutex_init(&ex->lock, NULL);
    pthread_cond_init(&ex->wake, NULL);
    pthread_cond_init(&ex->started, NULL);
    ex->start_rc = 1;
    ex->spin_ns = spin_setting();
    int err = pthread_create(&ex->thread, NULL, worker_main, ex);
    if (err) {
        executor_destroy(ex);
        return pf__fail(why, err == ENOMEM ? -ENOMEM : -EAGAIN,
                        "cannot start the executor's thread: %s", strerror(err));
    }
    pthread_mutex_lock(&ex->lock);
    while (ex->start_rc == 1)
        pthread_cond_wait(&ex->started, &ex->lock);
    rc = ex->start_rc;
    pthread_mutex_unlock(&ex->lock);
    if (rc < 0) {
        pthread_join(ex->thread, NULL);
        if (why) {
            *why = ex->start_why;
            ex->start_why = NULL;
        }
        executor_destroy(ex);
        return rc;
    }
    free(ex->start_why);
    ex->start_why = NULL;
    *out = ex;
    return 0;
}

int pf_executor_submit(pf_executor *ex, pf_task_fn fn, void *arg, pf_future **out)
{
    if (!ex || !fn)
        return -EINVAL;
    pf_future *f = malloc(sizeof *f);
    if (!f)
        return -ENOMEM;
    atomic_init(&f->state, FUTURE_PENDING);
    atomic_init(&f->sleepers, 0);
    atomic_init(&f->refs, out ? 2 : 1);
    f->result = 0;
    f->fn = fn;
    f->arg = arg;
    f->worker = ex->thread;
    f->spin_ns = ex->spin_ns;
    f->next = NULL;

    pthread_mutex_lock(&ex->lock);
    if (atomic_load_explicit(&ex->closing, memory_order_relaxed)) {
        pthread_mutex_unlock(&ex->lock);
        free(f);
        return -ECANCELED;
    }
    if (ex->tail)
        ex->tail->next = f;
    else
        ex->head = f;
    ex->tail = f;
    atomic_fetch_add_explicit(&ex->queued, 1, memory_order_release);
    /* Signal under the lock: once it is released, pf_executor_free() may
       destroy the executor, and this call must not touch it any more. */
    if (ex->sleeping)
        pthread_cond_signal(&ex->wake);
    pthread_mutex_unlock(&ex->lock);
    if (out)
        *out = f;
    return 0;
}

const pf_pool *pf_executor_pool(const pf_executor *ex)
{
    return ex->pool;
}

bool pf_executor_in_worker(const pf_executor *ex)
{
    return ex && pthread_equal(pthread_self(), ex->thread);
}

void pf_executor_free(pf_executor *ex)
{
    if (!ex)
        return;
    bool self = pthread_equal(pthread_self(), ex->thread);
    pthread_mutex_lock(&ex->lock);
    atomic_store_explicit(&ex->closing, true, memory_order_relaxed);
    ex->self_free = self;
    if (ex->sleeping)
        pthread_cond_signal(&ex->wake);
    pthread_mutex_unlock(&ex->lock);
    if (self)
        return; /* the worker drains, then destroys the executor */
    pthread_join(ex->thread, NULL);
    executor_destroy(ex);
}

bool pf_future_poll(const pf_future *f)
{
    return f && atomic_load_explicit(&((pf_future *)f)->state, memory_order_acquire) == FUTURE_DONE;
}

int pf_future_wait_timeout(pf_future *f, int timeout_ms, int *result)
{
    if (!f)
        return -EINVAL;
    if (atomic_load_explicit(&f->state, memory_order_acquire) != FUTURE_DONE) {
        if (pthread_equal(pthread_self(), f->worker))
            return -EDEADLK;
        int64_t start = now_ns();
        int64_t deadline = timeout_ms < 0 ? INT64_MAX : start + (int64_t)timeout_ms * 1000000;
        int64_t budget =
            timeout_ms < 0 || f->spin_ns < deadline - start ? f->spin_ns : deadline - start;
        spin(future_done, f, budget);
        atomic_fetch_add(&f->sleepers, 1);
        while (atomic_load(&f->state) != FUTURE_DONE) {
            struct timespec ts, *tsp = NULL;
            if (timeout_ms >= 0) {
                int64_t left = deadline - now_ns();
                if (left <= 0)
                    break;
                ts.tv_sec = (time_t)(left / 1000000000);
                ts.tv_nsec = (long)(left % 1000000000);
                tsp = &ts;
            }
            futex(&f->state, FUTEX_WAIT, FUTURE_PENDING, tsp);
        }
        atomic_fetch_sub(&f->sleepers, 1);
        if (atomic_load_explicit(&f->state, memory_order_acquire) != FUTURE_DONE)
            return -ETIMEDOUT;
    }
    if (result)
        *result = f->result;
    return 0;
}

int pf_future_wait(pf_future *f, int *result)
{
    return pf_future_wait_timeout(f, -1, result);
}

void pf_future_free(pf_future *f)
{
    if (f)
        future_release(f);
}
