/*
 * bench.h - what the parts of `pinfer bench` share (docs/bench.md):
 * cmd_bench.c reads the command line, runs each configuration and writes
 * the report; bench_serving.c measures one configuration of pinfer serve
 * under load, bench_program.c one of N instances of a program;
 * bench_sample.c watches the machine and the processes meanwhile.
 */
#ifndef PF_TOOL_BENCH_H
#define PF_TOOL_BENCH_H

#include "tool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

/* The three ways to run the workers; a configuration is one of them plus variants. */
typedef enum bench_base { BENCH_DEFAULT = 0, BENCH_THREADS, BENCH_PINNED } bench_base;

typedef struct bench_config {
    char *name; /* as written in --configs ("pinned+jemalloc") */
    bench_base base;
    pf_allocator allocator; /* in effect (never AUTO for default and threads) */
    pf_omp_runtime omp;
    char *error; /* set: the name is not a configuration (why) */
    /* Set by pinfer tune: the options given to pinfer serve instead of the bench command
       line's planning options, and variables added to its environment (NULL: none). */
    char *const *serve_args;
    char *const *env;
} bench_config;

/* What every configuration of one run shares. */
typedef struct bench_run {
    const tool_options *opts;
    pf_topology *topo;
    char *self;   /* this executable (pinfer serve is started from it) */
    char *python; /* the workers' interpreter; NULL: pinfer serve's default */
    char *dir;    /* the report folder */
    int workers;  /* workers or instances of every configuration */
    size_t cores; /* physical cores they share */
    int *cpus;    /* the CPUs they share (the pinned plan's) */
    size_t ncpus;
    pf_allocator auto_allocator; /* what `auto` is on this machine (pinfer run's choice) */
    pf_omp_runtime auto_omp;
    bool restricted; /* cpus is narrower than what this process may use: the
                        unpinned configurations are started within them */
    double warmup_s;
    double duration_s;   /* 0: until --requests (serving) or the program ends */
    bool tty;            /* progress redrawn in place on a terminal */
    size_t index, count; /* the configuration being measured, of how many */
    /* Serving */
    char *store;      /* the model store */
    char *model_name; /* NAME of --models NAME=FILE */
    char *model_file;
    char *input;        /* the request body's file */
    char *content_type; /* its type */
    char *body;
    size_t body_len;
    int concurrency;
    int batch_size;
    int max_batch_delay;
} bench_run;

/*
 * The model, its store and the request body of a serving run: the built-in
 * model, or --model (with --handler), and --input or the generated image
 * (in run->dir/model).  0, or an error with *why.
 */
int bench_prepare_serving(bench_run *run, char **why);

/* Measure one configuration into *out (error set when it could not be). */
void bench_serving(bench_run *run, const bench_config *cfg, pf_bench_config *out);
void bench_program(bench_run *run, const bench_config *cfg, pf_bench_config *out);

/* Progress on stderr: "[k/n] NAME: text", redrawn in place on a terminal. */
void bench_progress(const bench_run *run, const char *name, bool final, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* *why = the formatted message (malloc'd); returns rc. */
int bench_fail(char **why, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * The unit of a program's --metric: the plain words after its group
 * ("([0-9.]+) inferences/s" -> "inferences/s"), else `fallback` (malloc'd).
 */
char *bench_metric_unit(const char *regex, const char *fallback);

/*
 * This process's environment with `add` ("NAME=value", NULL-terminated)
 * replacing or adding variables: an array of borrowed strings (free() it,
 * not them); NULL when out of memory.
 */
char **bench_env_with(char *const *add);

/* A formatted, malloc'd string (NULL when out of memory). */
char *bench_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The machine's per-CPU busy shares over time, for the report's heat map:
 * call bench_cpu_map_sample() about every interval during the measured
 * phase; each call after the first adds a row.
 */
typedef struct bench_cpu_sampler {
    pf_cpu_times *last;
    size_t nlast;
    double last_s;
} bench_cpu_sampler;

void bench_cpu_map_sample(bench_cpu_sampler *s, pf_bench_cpu_map *map, double now_s);
void bench_cpu_sampler_free(bench_cpu_sampler *s);

/*
 * pinfer check's sampling of processes in a thread of its own: it waits
 * `delay_s`, then samples the pids for `window_s`; bench_check_finish()
 * joins it and fills the configuration's migration, run-queue, SMT and
 * memory figures and its findings.
 */
typedef struct bench_check {
    pthread_t thread;
    bool started;
    const pf_topology *topo;
    int *pids;
    size_t npids;
    double delay_s, window_s;
    pf_check_report *report;
    char *why;
    int rc;
} bench_check;

int bench_check_start(bench_check *c, const pf_topology *topo, const int *pids, size_t npids,
                      double delay_s, double window_s);
void bench_check_finish(bench_check *c, pf_bench_config *out);

/* The pids of the children of `pid` (/proc/PID/task/.../children), ascending. */
int bench_children(int pid, int **pids, size_t *n);

/* The seconds of CLOCK_MONOTONIC. */
double bench_now(void);

/*
 * Wait for pid to exit for up to timeout_s (0: do not wait): true and its
 * wait status in *status when it did.
 */
bool bench_wait(int pid, double timeout_s, int *status);

/* Stop a process group led by pid: SIGTERM, SIGKILL after grace_s; reaped. */
int bench_stop(int pid, double grace_s);

/* "exited with status 1", "was killed by signal 9" (malloc'd). */
char *bench_describe_status(int status);

/* The last non-empty line of a file holding "error" if one does, else the last (malloc'd). */
char *bench_last_error_line(const char *path);

/* The CPUs this process may use (physical: one per core), from the topology. */
size_t bench_usable_cpus(const pf_topology *topo, bool physical);

/*
 * A whole file, NUL-terminated, of at most `max` bytes.  0, or -errno /
 * -EINVAL (larger than max) with *why "PATH: ...", -ENOMEM.
 */
int bench_read_file(const char *path, size_t max, char **text, size_t *len, char **why);

/* Free what a measured configuration holds (not the structure itself). */
void bench_config_clear(pf_bench_config *c);

/* Latency figures and CDF of a histogram in microseconds. */
void bench_fill_latency(pf_bench_config *out, const pf_histogram *us);

#endif /* PF_TOOL_BENCH_H */
