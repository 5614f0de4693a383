/*
 * bench_check.c - what `pinfer check` costs: this process starts 1000
 * threads (asleep), then measures the CPU time (getrusage) of
 *   - one full reading of it from /proc (pf_proc_read: stat, sched,
 *     schedstat, status of every thread, numa_maps, environ, cgroup), and
 *   - one sample of a check window (every thread's stat), from a
 *     pf_check_run over a 2 s window at 20 ms: (its CPU time - its two full
 *     readings) / its samples.
 * Target: a sample of 1000 threads under 20 ms of CPU.
 *
 *     build/bench/bench_check [THREADS]
 */
#include "pinfer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;
static int stop;

static void *sleeper(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!stop)
        pthread_cond_wait(&done, &lock);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    if (n < 1 || n > 100000) {
        fprintf(stderr, "bench_check: THREADS from 1 to 100000\n");
        return 2;
    }
    pthread_t *t = calloc((size_t)n, sizeof *t);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], &attr, sleeper, NULL) != 0) {
            fprintf(stderr, "bench_check: cannot start thread %d\n", i);
            return 1;
        }
    int reads = 20;
    double c0 = cpu_s();
    size_t seen = 0;
    for (int i = 0; i < reads; i++) {
        pf_proc_process *p = NULL;
        if (pf_proc_read(NULL, (int)getpid(), &p, NULL) == 0)
            seen = p->nthreads;
        pf_proc_process_free(p);
    }
    double per_read = (cpu_s() - c0) / reads;
    pf_topology *topo = NULL;
    char *why = NULL;
    if (pf_topology_load(NULL, &topo, &why) < 0) {
        fprintf(stderr, "bench_check: %s\n", why);
        return 1;
    }
    pf_check_options o;
    pf_check_options_init(&o);
    o.duration_s = 2.0;
    o.interval_s = 0.02;
    int pid = (int)getpid();
    pf_check_report *r = NULL;
    double c1 = cpu_s();
    if (pf_check_run(topo, &pid, 1, &o, &r, &why) < 0) {
        fprintf(stderr, "bench_check: %s\n", why);
        return 1;
    }
    double run_cpu = cpu_s() - c1;
    int samples = (int)(o.duration_s / o.interval_s) + 1;
    double per_sample = (run_cpu - 2 * per_read) / samples;
    printf("threads: %zu (this process)\n", seen);
    printf("full reading (pf_proc_read): %.2f ms CPU each (%d readings)\n", per_read * 1e3, reads);
    printf("check window: %.2f s, about %d samples, %.1f ms CPU in all\n", r->window_s, samples,
           run_cpu * 1e3);
    printf("one sample of %zu threads: %.2f ms CPU (target under 20 ms: %s)\n", seen,
           per_sample * 1e3, per_sample < 0.020 ? "met" : "NOT met");
    pf_check_report_free(r);
    pf_topology_free(topo);
    pthread_mutex_lock(&lock);
    stop = 1;
    pthread_cond_broadcast(&done);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(t);
    return 0;
}
