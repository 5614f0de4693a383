/*
 * bench_runtime - what the runtime costs, and what streams buy.
 *
 *   build/bench/bench_runtime [SECONDS]     (SECONDS per throughput point, default 2)
 *
 * Prints, on a pool of every CPU this process may use (two on the test machine):
 *   - submit-to-completion latency of an empty task on an executor (p50, p99),
 *     back to back and after an idle pause (the worker asleep), against
 *     creating and joining one thread per task;
 *   - pf_streams_run of an empty fn over 2 streams, likewise;
 *   - pf_pin + pf_unpin of a 2-thread OpenMP team;
 *   - for reference, the floor a sleeping thread costs: a bare futex
 *     ping-pong between two threads pinned to the pool's first two CPUs;
 *   - the throughput of a compute kernel (the demo's dense layers: 4 x
 *     1024x1024 float, ReLU, OpenMP parallel for over output rows) as
 *     1 stream x 2 threads and as 2 streams x 1 thread, at batch 1, 2, 32, 64.
 * Targets on the test machine: empty task p50 < 20 us, empty streams_run over
 * 2 streams < 30 us, pin+unpin < 100 us.
 */
#include "pinfer_runtime.h"

#include <dlfcn.h>
#include <linux/futex.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HIDDEN 1024
#define LAYERS 4

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    printf("%-58s p50 %8.1f us   p99 %8.1f us   (n=%d)\n", what, v[n / 2], v[n * 99 / 100], n);
}

static void die(const char *what, int rc, char *why)
{
    fprintf(stderr, "bench_runtime: %s: %s\n", what, why ? why : pf_strerror(rc));
    exit(1);
}

static int empty_task(void *arg)
{
    (void)arg;
    return 0;
}

static void *empty_thread(void *arg)
{
    return arg;
}

static int empty_chunk(void *ctx, int stream, size_t begin, size_t end)
{
    (void)ctx;
    (void)stream;
    (void)begin;
    (void)end;
    return 0;
}

static void bench_executor(const pf_pool *pool, double *v, int n)
{
    pf_executor *ex;
    char *why = NULL;
    int rc = pf_executor_create(pool, &ex, &why);
    if (rc < 0)
        die("executor", rc, why);
    for (int pass = 0; pass < 2; pass++) {
        int iters = pass ? n / 10 : n;
        for (int i = -100; i < iters; i++) {
            if (pass)
                sleep_us(1000); /* past the worker's spin: it sleeps */
            double t0 = now_us();
            pf_future *f;
            if (pf_executor_submit(ex, empty_task, NULL, &f) < 0 || pf_future_wait(f, NULL) < 0)
                die("submit", -1, NULL);
            double t = now_us() - t0;
            pf_future_free(f);
            if (i >= 0)
                v[i] = t;
        }
        report(pass ? "empty task, executor, after 1 ms idle"
                    : "empty task, executor, back to back",
               v, iters);
    }
    pf_executor_free(ex);

    for (int i = -100; i < n / 4; i++) {
        double t0 = now_us();
        pthread_t t;
        if (pthread_create(&t, NULL, empty_thread, NULL) != 0)
            die("pthread_create", -1, NULL);
        pthread_join(t, NULL);
        if (i >= 0)
            v[i] = now_us() - t0;
    }
    report("empty task, a new thread each (create + join)", v, n / 4);
}

static void bench_streams(const pf_pool *pool, double *v, int n)
{
    pf_streams *s;
    char *why = NULL;
    int rc = pf_streams_create(pool, 2, &s, &why);
    if (rc < 0)
        die("streams", rc, why);
    for (int pass = 0; pass < 2; pass++) {
        int iters = pass ? n / 10 : n;
        for (int i = -100; i < iters; i++) {
            if (pass)
                sleep_us(1000);
            double t0 = now_us();
            if (pf_streams_run(s, 2, empty_chunk, NULL) < 0)
                die("streams_run", -1, NULL);
            if (i >= 0)
                v[i] = now_us() - t0;
        }
        report(pass ? "pf_streams_run, empty fn, 2 streams, after 1 ms idle"
                    : "pf_streams_run, empty fn, 2 streams, back to back",
               v, iters);
    }
    pf_streams_free(s);
}

static void bench_pin(const pf_pool *pool, double *v, int n)
{
    for (int i = -100; i < n; i++) {
        double t0 = now_us();
        pf_pin_state *st;
        char *why = NULL;
        int rc = pf_pin(pool, &st, &why);
        if (rc < 0)
            die("pin", rc, why);
        pf_unpin(st);
        if (i >= 0)
            v[i] = now_us() - t0;
    }
    char what[64];
    size_t ncpus;
    pf_pool_cpus(pool, &ncpus);
    snprintf(what, sizeof what, "pf_pin + pf_unpin, %zu-thread team", ncpus);
    report(what, v, n);
}

/* ---- reference: a futex ping-pong between two pinned threads ---- */

typedef struct pingpong {
    atomic_uint ping, pong;
    int cpus[2];
    double *v;
    int n;
    long idle_us;
} pingpong;

static void futex_wait(atomic_uint *w, unsigned val)
{
    syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(atomic_uint *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void *pong_thread(void *arg)
{
    pingpong *p = arg;
    pin_self(p->cpus[1]);
    for (unsigned i = 1; i <= (unsigned)p->n + 100; i++) {
        while (atomic_load(&p->ping) < i)
            futex_wait(&p->ping, i - 1);
        atomic_store(&p->pong, i);
        futex_wake(&p->pong);
    }
    return NULL;
}

static void *ping_thread(void *arg)
{
    pingpong *p = arg;
    pin_self(p->cpus[0]);
    for (unsigned i = 1; i <= (unsigned)p->n + 100; i++) {
        if (p->idle_us)
            sleep_us(p->idle_us);
        double t0 = now_us();
        atomic_store(&p->ping, i);
        futex_wake(&p->ping);
        while (atomic_load(&p->pong) < i)
            futex_wait(&p->pong, i - 1);
        if (i > 100)
            p->v[i - 101] = now_us() - t0;
    }
    return NULL;
}

static void bench_futex(const pf_pool *pool, double *v, int n)
{
    size_t ncpus;
    const int *cpus = pf_pool_cpus(pool, &ncpus);
    for (int pass = 0; pass < 2; pass++) {
        pingpong p = {
            .cpus = {cpus[0], cpus[1]}, .v = v, .n = pass ? n / 10 : n, .idle_us = pass ? 1000 : 0};
        pthread_t a, b;
        pthread_create(&b, NULL, pong_thread, &p);
        pthread_create(&a, NULL, ping_thread, &p);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        report(pass ? "reference: futex ping-pong CPU to CPU, after 1 ms idle"
                    : "reference: futex ping-pong CPU to CPU, back to back",
               v, p.n);
    }
}

/* ---- the compute kernel: the demo's dense layers ---- */

typedef struct model {
    float *w, *bias;
    float *scratch[2][2]; /* per stream, two activation buffers of 64 x HIDDEN */
    double checksum[2];
} model;

/* out[b][j] = relu(sum_k in[b][k] * w[j][k] + bias[j]): rows of W split over the team. */
static void dense(const float *w, const float *bias, const float *in, float *out, int batch)
{
#pragma omp parallel for schedule(static)
    for (int j = 0; j < HIDDEN; j++) {
        const float *row = w + (size_t)j * HIDDEN;
        for (int b = 0; b < batch; b++) {
            const float *x = in + (size_t)b * HIDDEN;
            float acc = bias[j];
            for (int k = 0; k < HIDDEN; k++)
                acc += row[k] * x[k];
            out[(size_t)b * HIDDEN + j] = acc > 0 ? acc : 0;
        }
    }
}

static int infer_chunk(void *ctx, int stream, size_t begin, size_t end)
{
    model *m = ctx;
    int batch = (int)(end - begin);
    float *in = m->scratch[stream][0], *out = m->scratch[stream][1];
    for (size_t i = 0; i < (size_t)batch * HIDDEN; i++)
        in[i] = (float)((i + begin) % 17) / 17.0f;
    for (int l = 0; l < LAYERS; l++) {
        dense(m->w + (size_t)l * HIDDEN * HIDDEN, m->bias + (size_t)l * HIDDEN, in, out, batch);
        float *t = in;
        in = out;
        out = t;
    }
    m->checksum[stream] += in[0];
    return 0;
}

static double throughput(const pf_pool *pool, int nstreams, size_t batch, model *m, double seconds)
{
    pf_streams *s;
    char *why = NULL;
    int rc = pf_streams_create(pool, nstreams, &s, &why);
    if (rc < 0)
        die("streams", rc, why);
    pf_streams_run(s, batch, infer_chunk, m); /* warm up: teams, caches */
    long items = 0;
    double t0 = now_us(), elapsed = 0;
    while (elapsed < seconds * 1e6) {
        if (pf_streams_run(s, batch, infer_chunk, m) < 0)
            die("streams_run", -1, NULL);
        items += (long)batch;
        elapsed = now_us() - t0;
    }
    pf_streams_free(s);
    return items / (elapsed / 1e6);
}

static void bench_compute(const pf_pool *pool, double seconds)
{
    size_t ncpus;
    pf_pool_cpus(pool, &ncpus);
    if (ncpus < 2) {
        printf("compute kernel: needs 2 CPUs, this process may use %zu\n", ncpus);
        return;
    }
    const int two[] = {pf_pool_cpus(pool, &ncpus)[0], pf_pool_cpus(pool, &ncpus)[1]};
    pf_pool *pool2;
    char *why = NULL;
    int rc = pf_pool_from_list(two, 2, &pool2, &why);
    if (rc < 0)
        die("pool", rc, why);
    model m = {0};
    m.w = malloc((size_t)LAYERS * HIDDEN * HIDDEN * sizeof *m.w);
    m.bias = malloc((size_t)LAYERS * HIDDEN * sizeof *m.bias);
    for (int s = 0; s < 2; s++)
        for (int b = 0; b < 2; b++)
            m.scratch[s][b] = malloc((size_t)64 * HIDDEN * sizeof(float));
    unsigned seed = 12345;
    for (size_t i = 0; i < (size_t)LAYERS * HIDDEN * HIDDEN; i++) {
        seed = seed * 1103515245u + 12345u;
        m.w[i] = ((float)((seed >> 16) & 0x7fff) / 32768.0f - 0.5f) * 2.0f / HIDDEN;
    }
    for (size_t i = 0; i < (size_t)LAYERS * HIDDEN; i++)
        m.bias[i] = 0.01f;

    printf("\ncompute kernel: %d dense layers %dx%d (float, ReLU), CPUs %d,%d, %.1f s per point\n",
           LAYERS, HIDDEN, HIDDEN, two[0], two[1], seconds);
    printf("%8s %22s %22s %8s\n", "batch", "1 stream x 2 threads", "2 streams x 1 thread",
           "2x1/1x2");
    const size_t batches[] = {1, 2, 32, 64};
    for (size_t i = 0; i < sizeof batches / sizeof *batches; i++) {
        double one = throughput(pool2, 1, batches[i], &m, seconds);
        double two_streams = throughput(pool2, 2, batches[i], &m, seconds);
        printf("%8zu %16.1f it/s %16.1f it/s %8.2f\n", batches[i], one, two_streams,
               two_streams / one);
    }
    printf("(checksum %.3f)\n", m.checksum[0] + m.checksum[1]);
    for (int s = 0; s < 2; s++)
        for (int b = 0; b < 2; b++)
            free(m.scratch[s][b]);
    free(m.w);
    free(m.bias);
    pf_pool_free(pool2);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? strtod(argv[1], NULL) : 2.0;
    if (!(seconds > 0))
        seconds = 2.0;
    pf_pool *pool;
    char *why = NULL;
    int rc = pf_pool_from_process(&pool, &why);
    if (rc < 0)
        die("pool", rc, why);
    size_t ncpus;
    const int *cpus = pf_pool_cpus(pool, &ncpus);
    char *list = NULL;
    pf_cpulist_format(cpus, ncpus, &list);
    Dl_info info;
    const char *rt =
        dladdr((void *)omp_get_num_threads, &info) && info.dli_fname ? info.dli_fname : "?";
    printf("pool: CPUs %s; OpenMP runtime: %s\n\n", list ? list : "?", rt);
    free(list);

    enum { N = 20000 };
    double *v = malloc(N * sizeof *v);
    bench_executor(pool, v, N);
    if (ncpus >= 2)
        bench_streams(pool, v, N);
    bench_pin(pool, v, N / 4);
    if (ncpus >= 2)
        bench_futex(pool, v, N / 4);
    free(v);
    bench_compute(pool, seconds);
    pf_pool_free(pool);
    return 0;
}
