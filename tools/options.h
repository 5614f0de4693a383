/*
 * options.h - the command line of `pinfer run | plan | topo`.
 *
 * Every option has a dash and an underscore spelling and takes its value as
 * `--opt value` or `--opt=value`; the first argument that is not an option
 * (or everything after `--`) is PROGRAM and its arguments, kept untouched.
 */
#ifndef PF_TOOL_OPTIONS_H
#define PF_TOOL_OPTIONS_H

#include "pinfer_serve.h"

#include <stdio.h>

typedef enum tool_command {
    CMD_RUN,
    CMD_PLAN,
    CMD_TOPO,
    CMD_SERVE,
    CMD_CHECK,
    CMD_BENCH,
    CMD_TUNE
} tool_command;

#define TOOL_MAX_MODEL_ARGS 64

/* What `pinfer serve` takes beyond the launcher's options; NULL / 0: not given. */
typedef struct tool_serve_options {
    const char *model_store;
    const char *models[TOOL_MAX_MODEL_ARGS]; /* --models values, and the words after them */
    int nmodels;
    const char *ts_config;
    const char *addresses[3]; /* inference, management, metrics */
    int workers, batch_size, response_timeout, job_queue_size;
    int max_batch_delay; /* -1: not given */
    pf_serve_pinning pinning;
    const char *python;
    const char *frontend_cpus;
    const char *token_file;
} tool_serve_options;

/* What `pinfer bench` takes beyond serve's and the launcher's options; NULL / 0: not given. */
typedef struct tool_bench_options {
    const char *configs; /* --configs, as written */
    const char *model;   /* --model FILE */
    const char *arch;    /* --arch: the built-in model's torchvision architecture */
    const char *handler;
    const char *input;
    const char *report_dir;
    const char *metric;
    bool ab; /* --load-generator ab */
    int concurrency;
    double rate; /* requests per second; 0: closed loop */
    long long requests;
    double warmup_s; /* -1: not given */
} tool_bench_options;

/* What `pinfer tune` takes; NULL / 0: not given. */
typedef struct tool_tune_options {
    const char *serve;  /* --serve MODEL ("builtin": the built-in model) */
    const char *space;  /* --space FILE */
    const char *conf;   /* --conf FILE (IPEX hypertune's YAML) */
    const char *output; /* --output DIR */
    bool minimize;
    bool resume;
    double slo_p99_ms;
    int strategy; /* a pf_tune_strategy; -1: not given */
    int max_trials;
    double budget_s;
    int repeat;
    double timeout_s;
    long seed; /* -1: not given */
} tool_tune_options;

typedef struct tool_options {
    tool_command command;
    pf_plan_options plan;
    const char *topology; /* --topology, else $PINFER_TOPOLOGY, else NULL (live) */
    bool json;
    bool help; /* -h or --help among the options: the rest is not parsed */
    pf_allocator allocator;
    pf_omp_runtime omp;
    bool disable_numactl;
    bool disable_taskset;
    bool module;
    bool no_python;
    bool fail_fast; /* run: the first failed instance stops the others */
    const char *log_dir;
    const char *log_prefix;
    int grace_ms;         /* $PINFER_GRACE_MS (run); 0: the default */
    const char *notes[4]; /* warnings about the options themselves, NULL-terminated */
    int nnotes;
    char **program; /* PROGRAM and its arguments (NULL-terminated), or NULL */
    int nprogram;
    tool_serve_options serve;
    tool_bench_options bench;
    tool_tune_options tune;
    int children_of;   /* check --children PID; 0: not given */
    bool all;          /* check --all */
    bool watch;        /* check --watch */
    double duration_s; /* check --duration; 0: the default */
    double interval_s; /* check --interval; 0: the default */
    char **argv;       /* the command line parsed (argv[0]: the command's name) */
    int argc;
} tool_options;

/*
 * Parse argv (argv[0] is the sub-command's name, e.g. "plan") and the
 * environment (PINFER_TOPOLOGY, LOCAL_RANK, LOCAL_WORLD_SIZE).  Returns 0, or
 * -EINVAL with *why (malloc'd) for a usage error.
 */
int tool_parse_options(tool_command command, int argc, char **argv, tool_options *out, char **why);

/* The options `command` takes, by group, as its --help shows them. */
void tool_options_help(tool_command command, FILE *out);

/* The launch request the options make (run and plan). */
void tool_launch_request(const tool_options *opts, pf_launch_request *req);

/*
 * The words of cpu_launcher_args (config.properties) that pinfer serve
 * applies, in order, in *kept (NULL-terminated; the strings are argv's);
 * the options it decides itself (--ninstances, --rank ...) are left out,
 * each named in a note (malloc'd, NULL-terminated *notes).  -EINVAL with
 * *why for a word that is not an option of pinfer run.
 */
int tool_filter_launcher_args(char *const *argv, char ***kept, char ***notes, char **why);

/*
 * The words of a `pinfer bench` command line that shape the pinned plan and
 * that pinfer serve takes (--core-list 0-3, --node-id=1 ...), in order, in
 * *words (NULL-terminated; the strings are opts->argv's): the allocator's,
 * OpenMP's and the log's options are left out (bench sets them per
 * configuration).  0 or -ENOMEM.
 */
int tool_bench_plan_args(const tool_options *opts, char ***words);

/* Does the command line ask for --json (before PROGRAM)?  For reporting its own errors. */
bool tool_options_want_json(int argc, char **argv);

#endif /* PF_TOOL_OPTIONS_H */
