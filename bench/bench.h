/*
 * bench.h - what the benchmarks share: a clock, medians and percentiles, and
 * timing a whole command from spawn to exit.
 */
#ifndef PF_BENCH_H
#define PF_BENCH_H

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static inline double bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sort v and return its p-th percentile (0 <= p <= 100). */
static inline double bench_percentile(double *v, int n, int p)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    int i = n * p / 100;
    return v[i < n ? i : n - 1];
}

static inline void bench_report(const char *what, double *v, int n)
{
    double p50 = bench_percentile(v, n, 50), p90 = bench_percentile(v, n, 90);
    printf("%-56s median %9.1f us   p90 %9.1f us   (n=%d)\n", what, p50, p90, n);
}

/* Wall time of one spawn-to-exit of argv (PATH lookup), output to /dev/null; exits on failure. */
static inline double bench_time_process(char *const *argv)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
    double t0 = bench_now_us();
    pid_t pid;
    if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
        fprintf(stderr, "bench: cannot run %s\n", argv[0]);
        exit(1);
    }
    int status;
    waitpid(pid, &status, 0);
    double t = bench_now_us() - t0;
    posix_spawn_file_actions_destroy(&fa);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench: %s failed\n", argv[0]);
        exit(1);
    }
    return t;
}

#endif /* PF_BENCH_H */
