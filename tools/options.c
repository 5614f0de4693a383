/*
 * options.c - parsing the launcher's command line into tool_options.
 *
 * One table names every option, its aliases, what it takes and which
 * sub-commands accept it; the parser normalises '_' to '-' in option names
 * and splits `--opt=value`.  run_cpu's and ipexrun's spellings are aliases.
 */
#include "options.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum opt_id {
    O_NINSTANCES,
    O_NCORES,
    O_NODE_ID,
    O_SOCKET_ID,
    O_NODES_LIST,
    O_CORE_LIST,
    O_LOGICAL,
    O_ECORES,
    O_BIND,
    O_STRATEGY,
    O_LATENCY,
    O_THROUGHPUT,
    O_MULTI,
    O_RANK,
    O_INSTANCE_IDX,
    O_TCMALLOC,
    O_JEMALLOC,
    O_DEFAULT_ALLOC,
    O_ALLOCATOR,
    O_DISABLE_IOMP,
    O_OMP_RUNTIME,
    O_DISABLE_NUMACTL,
    O_DISABLE_TASKSET,
    O_TASK_MANAGER,
    O_MODULE,
    O_NO_PYTHON,
    O_LOG_DIR,
    O_LOG_PREFIX,
    O_FAIL_FAST,
    O_TOPOLOGY,
    O_JSON,
    O_MODEL_STORE,
    O_MODELS,
    O_TS_CONFIG,
    O_INFERENCE_ADDR,
    O_MANAGEMENT_ADDR,
    O_METRICS_ADDR,
    O_WORKERS,
    O_BATCH_SIZE,
    O_BATCH_DELAY,
    O_RESPONSE_TIMEOUT,
    O_QUEUE_SIZE,
    O_PINNING,
    O_PYTHON,
    O_FRONTEND_CPUS,
    O_TOKEN_FILE,
    O_FOREGROUND,
    O_CHILDREN,
    O_ALL,
    O_DURATION,
    O_INTERVAL,
    O_WATCH,
    O_CONFIGS,
    O_MODEL,
    O_ARCH,
    O_HANDLER,
    O_INPUT,
    O_REPORT,
    O_METRIC,
    O_LOAD_GENERATOR,
    O_CONCURRENCY,
    O_RATE,
    O_REQUESTS,
    O_WARMUP,
    O_SERVE_MODEL,
    O_SPACE,
    O_CONF,
    O_MINIMIZE,
    O_SLO,
    O_TUNE_STRATEGY,
    O_MAX_TRIALS,
    O_BUDGET,
    O_REPEAT,
    O_TIMEOUT,
    O_RESUME,
    O_OUTPUT,
    O_SEED
};

/* The longest grace period PINFER_GRACE_MS may ask for: an hour. */
#define GRACE_MS_MAX 3600000

/* Which sub-commands take an option. */
#define FOR_RUN (1u << CMD_RUN)
#define FOR_PLAN (1u << CMD_PLAN)
#define FOR_TOPO (1u << CMD_TOPO)
#define FOR_SERVE (1u << CMD_SERVE)
#define FOR_CHECK (1u << CMD_CHECK)
#define FOR_BENCH (1u << CMD_BENCH)
#define FOR_TUNE (1u << CMD_TUNE)
#define FOR_LAUNCH (FOR_RUN | FOR_PLAN)
/* The launcher's options that also shape `pinfer serve`'s workers and bench's pinned plan. */
#define FOR_WORKERS (FOR_LAUNCH | FOR_SERVE | FOR_BENCH)

/* The help's headings, in the order they are printed. */
enum group {
    G_TUNE,
    G_BENCH,
    G_SERVE,
    G_CHECK,
    G_INSTANCES,
    G_ENVIRONMENT,
    G_PROGRAM,
    G_OTHER,
    NGROUPS
};
static const char *const GROUP_NAMES[NGROUPS] = {"Tuning",    "Benchmarking", "Serving", "Checking",
                                                 "Instances", "Environment",  "Program", "Other"};

/*
 * One row per option: its spellings (the first is canonical; '_' for '-'
 * is accepted everywhere), its value's name in the help (NULL: a flag), the
 * help line, and which commands take it.  The help is made from this table.
 */
typedef struct option_spec {
    const char *names[3];
    const char *value;
    enum opt_id id;
    unsigned commands;
    enum group group;
    const char *help;
} option_spec;

static const option_spec OPTIONS[] = {
    {{"--serve"},
     "MODEL",
     O_SERVE_MODEL,
     FOR_TUNE,
     G_TUNE,
     "tune pinfer serve on MODEL (or builtin)"},
    {{"--space"}, "FILE", O_SPACE, FOR_TUNE, G_TUNE, "narrow or widen the space (JSON or YAML)"},
    {{"--conf", "--conf-file"}, "FILE", O_CONF, FOR_TUNE, G_TUNE, "an IPEX hypertune YAML file"},
    {{"--strategy"}, "S", O_TUNE_STRATEGY, FOR_TUNE, G_TUNE, "auto|grid|random (default auto)"},
    {{"--max-trials"}, "N", O_MAX_TRIALS, FOR_TUNE, G_TUNE, "at most N trials"},
    {{"--budget"}, "S", O_BUDGET, FOR_TUNE, G_TUNE, "no trial started after S seconds"},
    {{"--repeat"}, "K", O_REPEAT, FOR_TUNE, G_TUNE, "runs per trial, the median kept (default 1)"},
    {{"--timeout"}, "S", O_TIMEOUT, FOR_TUNE, G_TUNE, "one run's limit (default 600)"},
    {{"--metric"}, "REGEX", O_METRIC, FOR_TUNE, G_TUNE, "the objective: the first group, summed"},
    {{"--minimize"}, NULL, O_MINIMIZE, FOR_TUNE, G_TUNE, "lower --metric values are better"},
    {{"--slo-p99"}, "MS", O_SLO, FOR_TUNE, G_TUNE, "serving: trials above this p99 fail"},
    {{"--output"}, "DIR", O_OUTPUT, FOR_TUNE, G_TUNE, "(default ./pinfer-tune-TIMESTAMP)"},
    {{"--resume"}, NULL, O_RESUME, FOR_TUNE, G_TUNE, "reuse the trials of DIR/record.csv"},
    {{"--seed"}, "N", O_SEED, FOR_TUNE, G_TUNE, "random's seed (default 1)"},
    {{"--duration"},
     "S",
     O_DURATION,
     FOR_TUNE,
     G_TUNE,
     "serving: each trial's measured phase (10)"},
    {{"--warmup"}, "S", O_WARMUP, FOR_TUNE, G_TUNE, "serving: each trial's warm-up (default 3)"},
    {{"--configs"},
     "LIST",
     O_CONFIGS,
     FOR_BENCH,
     G_BENCH,
     "default,threads,pinned and variants (docs/bench.md)"},
    {{"--model"},
     "FILE",
     O_MODEL,
     FOR_BENCH,
     G_BENCH,
     "a TorchScript file or .mar (default: built in)"},
    {{"--arch"}, "NAME", O_ARCH, FOR_BENCH, G_BENCH, "the built-in model (default resnet18)"},
    {{"--handler"},
     "NAME",
     O_HANDLER,
     FOR_BENCH | FOR_TUNE,
     G_BENCH,
     "the handler of a TorchScript --model"},
    {{"--input"},
     "FILE",
     O_INPUT,
     FOR_BENCH | FOR_TUNE,
     G_BENCH,
     "each request's body (default: an image)"},
    {{"--concurrency"},
     "C",
     O_CONCURRENCY,
     FOR_BENCH | FOR_TUNE,
     G_BENCH,
     "connections (default 2 x workers x batch size)"},
    {{"--rate"}, "R", O_RATE, FOR_BENCH, G_BENCH, "open loop: R requests a second"},
    {{"--requests"}, "N", O_REQUESTS, FOR_BENCH, G_BENCH, "stop after N requests"},
    {{"--warmup"},
     "S",
     O_WARMUP,
     FOR_BENCH,
     G_BENCH,
     "load before measuring (default 5; programs 0)"},
    {{"--load-generator"}, "G", O_LOAD_GENERATOR, FOR_BENCH, G_BENCH, "builtin|ab"},
    {{"--metric"},
     "REGEX",
     O_METRIC,
     FOR_BENCH,
     G_BENCH,
     "a program's throughput: the first group"},
    {{"--report"}, "DIR", O_REPORT, FOR_BENCH, G_BENCH, "(default ./pinfer-bench-TIMESTAMP)"},
    {{"--children"}, "PID", O_CHILDREN, FOR_CHECK, G_CHECK, "the processes under PID"},
    {{"--all"}, NULL, O_ALL, FOR_CHECK, G_CHECK, "every process with a busy thread"},
    {{"--duration"}, "S", O_DURATION, FOR_CHECK, G_CHECK, "the sampling window (default 2)"},
    {{"--duration"}, "S", O_DURATION, FOR_BENCH, G_BENCH, "the measured phase (default 20)"},
    {{"--workers"}, "N", O_WORKERS, FOR_BENCH, G_BENCH, "workers or instances (default: see docs)"},
    {{"--interval"}, "S", O_INTERVAL, FOR_CHECK, G_CHECK, "between samples (default 0.1)"},
    {{"--watch"}, NULL, O_WATCH, FOR_CHECK, G_CHECK, "a live map of the CPUs until Ctrl-C"},
    {{"--model-store"},
     "DIR",
     O_MODEL_STORE,
     FOR_SERVE,
     G_SERVE,
     "the folder models are loaded from"},
    {{"--models"},
     "SPEC",
     O_MODELS,
     FOR_SERVE,
     G_SERVE,
     "models to load: NAME=FILE, FILE or all (repeatable)"},
    {{"--ts-config"}, "FILE", O_TS_CONFIG, FOR_SERVE, G_SERVE, "a TorchServe config.properties"},
    {{"--inference-address"},
     "URL",
     O_INFERENCE_ADDR,
     FOR_SERVE,
     G_SERVE,
     "default http://127.0.0.1:8080"},
    {{"--management-address"},
     "URL",
     O_MANAGEMENT_ADDR,
     FOR_SERVE,
     G_SERVE,
     "default http://127.0.0.1:8081"},
    {{"--metrics-address"},
     "URL",
     O_METRICS_ADDR,
     FOR_SERVE,
     G_SERVE,
     "default http://127.0.0.1:8082"},
    {{"--workers"}, "N", O_WORKERS, FOR_SERVE, G_SERVE, "workers per model (default: planned)"},
    {{"--batch-size"},
     "N",
     O_BATCH_SIZE,
     FOR_SERVE | FOR_BENCH,
     G_SERVE,
     "requests per batch (default 1)"},
    {{"--max-batch-delay"},
     "MS",
     O_BATCH_DELAY,
     FOR_SERVE | FOR_BENCH,
     G_SERVE,
     "wait for a batch to fill (default 100)"},
    {{"--response-timeout"},
     "S",
     O_RESPONSE_TIMEOUT,
     FOR_SERVE,
     G_SERVE,
     "answer 504 after S seconds (default 120)"},
    {{"--job-queue-size"},
     "N",
     O_QUEUE_SIZE,
     FOR_SERVE,
     G_SERVE,
     "queued requests per model before 503 (100)"},
    {{"--pinning"}, "P", O_PINNING, FOR_SERVE, G_SERVE, "pinned|threads|none (default pinned)"},
    {{"--python"},
     "PATH",
     O_PYTHON,
     FOR_SERVE | FOR_BENCH | FOR_TUNE,
     G_SERVE,
     "the workers' interpreter"},
    {{"--frontend-cpus"},
     "LIST",
     O_FRONTEND_CPUS,
     FOR_SERVE,
     G_SERVE,
     "CPUs of the front end (default: chosen)"},
    {{"--management-token-file"},
     "FILE",
     O_TOKEN_FILE,
     FOR_SERVE,
     G_SERVE,
     "bearer token the management API requires"},
    {{"--foreground"}, NULL, O_FOREGROUND, FOR_SERVE, G_SERVE, "TorchServe's flag: always so"},
    {{"--ninstances"}, "N", O_NINSTANCES, FOR_LAUNCH, G_INSTANCES, "number of instances"},
    {{"--ncores-per-instance", "--ncore-per-instance"},
     "N",
     O_NCORES,
     FOR_WORKERS,
     G_INSTANCES,
     "CPUs per instance (-1: split evenly)"},
    {{"--node-id"}, "N", O_NODE_ID, FOR_WORKERS, G_INSTANCES, "only the CPUs of this NUMA node"},
    {{"--socket-id"},
     "N",
     O_SOCKET_ID,
     FOR_WORKERS,
     G_INSTANCES,
     "only the CPUs of this socket (IPEX's option)"},
    {{"--nodes-list"},
     "L",
     O_NODES_LIST,
     FOR_WORKERS,
     G_INSTANCES,
     "only the CPUs of these NUMA nodes"},
    {{"--core-list", "--cores-list"},
     "L",
     O_CORE_LIST,
     FOR_WORKERS,
     G_INSTANCES,
     "exactly these CPUs (e.g. 0-3,8)"},
    {{"--use-logical-cores", "--use-logical-core"},
     NULL,
     O_LOGICAL,
     FOR_WORKERS,
     G_INSTANCES,
     "also use SMT siblings"},
    {{"--use-e-cores", "--use-e-core"},
     NULL,
     O_ECORES,
     FOR_WORKERS,
     G_INSTANCES,
     "also use efficiency cores"},
    {{"--bind-numa-node", "--skip-cross-node-cores"},
     NULL,
     O_BIND,
     FOR_WORKERS,
     G_INSTANCES,
     "no instance spans two NUMA nodes"},
    {{"--strategy"},
     "close|scatter",
     O_STRATEGY,
     FOR_WORKERS,
     G_INSTANCES,
     "which instances to keep (default close)"},
    {{"--latency-mode"}, NULL, O_LATENCY, FOR_LAUNCH, G_INSTANCES, "preset: 4 cores per instance"},
    {{"--throughput-mode"},
     NULL,
     O_THROUGHPUT,
     FOR_LAUNCH,
     G_INSTANCES,
     "preset: one instance per NUMA node"},
    {{"--multi-instance"},
     NULL,
     O_MULTI,
     FOR_LAUNCH,
     G_INSTANCES,
     "several instances (throughput mode unless sized)"},
    {{"--rank"}, "I", O_RANK, FOR_LAUNCH, G_INSTANCES, "launch only instance I of the plan"},
    {{"--instance-idx"},
     "L",
     O_INSTANCE_IDX,
     FOR_LAUNCH,
     G_INSTANCES,
     "launch only these instances of the plan"},
    {{"--memory-allocator"},
     "A",
     O_ALLOCATOR,
     FOR_WORKERS,
     G_ENVIRONMENT,
     "auto|default|tcmalloc|jemalloc (default auto)"},
    {{"--enable-tcmalloc"},
     NULL,
     O_TCMALLOC,
     FOR_WORKERS,
     G_ENVIRONMENT,
     "= --memory-allocator tcmalloc"},
    {{"--enable-jemalloc"},
     NULL,
     O_JEMALLOC,
     FOR_WORKERS,
     G_ENVIRONMENT,
     "= --memory-allocator jemalloc"},
    {{"--use-default-allocator"},
     NULL,
     O_DEFAULT_ALLOC,
     FOR_WORKERS,
     G_ENVIRONMENT,
     "= --memory-allocator default"},
    {{"--omp-runtime"},
     "R",
     O_OMP_RUNTIME,
     FOR_WORKERS,
     G_ENVIRONMENT,
     "auto|default|intel (default auto)"},
    {{"--disable-iomp"},
     NULL,
     O_DISABLE_IOMP,
     FOR_WORKERS,
     G_ENVIRONMENT,
     "= --omp-runtime default"},
    {{"--disable-numactl"},
     NULL,
     O_DISABLE_NUMACTL,
     FOR_WORKERS,
     G_ENVIRONMENT,
     "do not bind memory"},
    {{"--disable-taskset"},
     NULL,
     O_DISABLE_TASKSET,
     FOR_WORKERS,
     G_ENVIRONMENT,
     "with --disable-numactl: do not bind CPUs"},
    {{"--multi-task-manager"},
     "M",
     O_TASK_MANAGER,
     FOR_WORKERS,
     G_ENVIRONMENT,
     "auto|none|numactl|taskset (ipexrun's)"},
    {{"--module", "-m"},
     NULL,
     O_MODULE,
     FOR_LAUNCH | FOR_BENCH | FOR_TUNE,
     G_PROGRAM,
     "run PROGRAM as a Python module"},
    {{"--no-python"},
     NULL,
     O_NO_PYTHON,
     FOR_LAUNCH | FOR_BENCH | FOR_TUNE,
     G_PROGRAM,
     "run PROGRAM directly, not with python"},
    {{"--log-path", "--log-dir"},
     "DIR",
     O_LOG_DIR,
     FOR_LAUNCH | FOR_SERVE,
     G_PROGRAM,
     "log files in DIR (created)"},
    {{"--log-file-prefix"},
     "P",
     O_LOG_PREFIX,
     FOR_LAUNCH,
     G_PROGRAM,
     "their names start with P (default run)"},
    {{"--fail-fast"},
     NULL,
     O_FAIL_FAST,
     FOR_RUN,
     G_PROGRAM,
     "the first failed instance stops the others"},
    {{"--topology"},
     "SRC",
     O_TOPOLOGY,
     FOR_LAUNCH | FOR_TOPO | FOR_SERVE,
     G_OTHER,
     "an lscpu/hwloc XML file or synthetic:\"...\""},
    {{"--json"},
     NULL,
     O_JSON,
     FOR_PLAN | FOR_TOPO | FOR_CHECK | FOR_BENCH | FOR_TUNE,
     G_OTHER,
     "machine-readable output"},
};

#define NOPTIONS (sizeof OPTIONS / sizeof *OPTIONS)

static const char *const COMMAND_NAMES[] = {"run",   "plan",  "topo", "serve",
                                            "check", "bench", "tune"};

void tool_options_help(tool_command command, FILE *out)
{
    for (int g = 0; g < NGROUPS; g++) {
        bool heading = false;
        for (size_t i = 0; i < NOPTIONS; i++) {
            const option_spec *o = &OPTIONS[i];
            if (o->group != (enum group)g || !(o->commands & (1u << command)))
                continue;
            if (!heading)
                fprintf(out, "\n%s:\n", GROUP_NAMES[g]);
            heading = true;
            char left[64];
            bool short_alias = o->names[1] && o->names[1][1] != '-';
            snprintf(left, sizeof left, "%s%s%s%s%s", short_alias ? o->names[1] : "",
                     short_alias ? ", " : "", o->names[0], o->value ? " " : "",
                     o->value ? o->value : "");
            if (strlen(left) > 28)
                fprintf(out, "  %s\n  %-28s %s\n", left, "", o->help);
            else
                fprintf(out, "  %-28s %s\n", left, o->help);
        }
    }
}

static int usage_error(char **why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(char **why, const char *fmt, ...)
{
    va_list ap, copy;
    va_start(ap, fmt);
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    *why = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (*why)
        vsnprintf(*why, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* A whole-string decimal int (sign allowed). */
static int parse_int(const char *name, const char *text, int *out, char **why)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (!*text || *end || text[0] == ' ' || text[0] == '+' || errno || v < -(1L << 30) ||
        v > (1L << 30))
        return usage_error(why, "%s: '%s' is not an integer", name, text);
    *out = (int)v;
    return 0;
}

static int parse_choice(const char *name, const char *text, const char *const *choices, int *out,
                        char **why)
{
    for (int i = 0; choices[i]; i++)
        if (strcmp(text, choices[i]) == 0) {
            *out = i;
            return 0;
        }
    char list[128] = "";
    size_t len = 0;
    for (int i = 0; choices[i] && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", choices[i]);
    return usage_error(why, "%s: '%s' is not one of %s", name, text, list);
}

/*
 * The row of an option name: the first whose commands include one of
 * `commands` (two rows may share a name with a help line each), else the
 * first of that name at all.
 */
static const option_spec *find_option(const char *arg, size_t len, unsigned commands)
{
    char name[64];
    if (len >= sizeof name)
        return NULL;
    for (size_t i = 0; i < len; i++)
        name[i] = (char)(arg[i] == '_' && i >= 2 ? '-' : arg[i]);
    name[len] = '\0';
    const option_spec *first = NULL;
    for (size_t i = 0; i < NOPTIONS; i++)
        for (int k = 0; k < 3 && OPTIONS[i].names[k]; k++)
            if (strcmp(name, OPTIONS[i].names[k]) == 0) {
                if (OPTIONS[i].commands & commands)
                    return &OPTIONS[i];
                if (!first)
                    first = &OPTIONS[i];
            }
    return first;
}

/* A number for a serve option, within [lo, hi]. */
static int parse_range(const char *name, const char *text, int lo, int hi, int *out, char **why)
{
    int v;
    if (parse_int(name, text, &v, why) < 0 || v < lo || v > hi) {
        free(*why);
        return usage_error(why, "%s: '%s' is not a whole number from %d to %d", name, text, lo, hi);
    }
    *out = v;
    return 0;
}

static int parse_range_pid(const char *name, const char *text, int *out, char **why)
{
    return parse_range(name, text, 1, 1 << 30, out, why);
}

static int apply_serve(tool_serve_options *s, const option_spec *spec, const char *name,
                       const char *value, char **why)
{
    static const char *const pinnings[] = {"pinned", "threads", "none", NULL};
    int v = 0, rc = 0;
    switch (spec->id) {
    case O_MODEL_STORE: s->model_store = value; return 0;
    case O_MODELS:
        if (s->nmodels == TOOL_MAX_MODEL_ARGS)
            return usage_error(why, "%s: more than %d given", name, TOOL_MAX_MODEL_ARGS);
        s->models[s->nmodels++] = value;
        return 0;
    case O_TS_CONFIG: s->ts_config = value; return 0;
    case O_INFERENCE_ADDR: s->addresses[0] = value; return 0;
    case O_MANAGEMENT_ADDR: s->addresses[1] = value; return 0;
    case O_METRICS_ADDR: s->addresses[2] = value; return 0;
    case O_WORKERS: return parse_range(name, value, 1, 4096, &s->workers, why);
    case O_BATCH_SIZE: return parse_range(name, value, 1, 1 << 20, &s->batch_size, why);
    case O_BATCH_DELAY: return parse_range(name, value, 0, 3600000, &s->max_batch_delay, why);
    case O_RESPONSE_TIMEOUT: return parse_range(name, value, 1, 1 << 24, &s->response_timeout, why);
    case O_QUEUE_SIZE: return parse_range(name, value, 1, 1 << 24, &s->job_queue_size, why);
    case O_PINNING:
        rc = parse_choice(name, value, pinnings, &v, why);
        s->pinning = (pf_serve_pinning)v;
        return rc;
    case O_PYTHON: s->python = value; return 0;
    case O_FRONTEND_CPUS: s->frontend_cpus = value; return 0;
    case O_TOKEN_FILE: s->token_file = value; return 0;
    case O_FOREGROUND: return 0;
    default: return usage_error(why, "internal error: unhandled option %s", name);
    }
}

/* Seconds for check: a decimal number in (0, 3600]. */
static int parse_seconds(const char *name, const char *text, double *out, char **why)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno || !(v > 0) || v > 3600 || text[0] == ' ')
        return usage_error(why, "%s: '%s' is not a number of seconds above 0 and at most 3600",
                           name, text);
    *out = v;
    return 0;
}

/* A positive decimal number up to max (seconds, or milliseconds for --slo-p99). */
static int parse_seconds_max(const char *name, const char *text, double max, double *out,
                             char **why)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (!*text || *end || errno || !(v > 0) || v > max || text[0] == ' ')
        return usage_error(why, "%s: '%s' is not a number above 0 and at most %g", name, text, max);
    *out = v;
    return 0;
}

/* Seconds that may be 0: a decimal number in [0, 3600]. */
static int parse_seconds0(const char *name, const char *text, double *out, char **why)
{
    if (strcmp(text, "0") == 0) {
        *out = 0;
        return 0;
    }
    return parse_seconds(name, text, out, why);
}

static int apply_bench(tool_bench_options *b, const option_spec *spec, const char *name,
                       const char *value, char **why)
{
    static const char *const generators[] = {"builtin", "ab", NULL};
    int v = 0, rc = 0;
    if (spec->value && !*value)
        return usage_error(why, "%s: empty value", name);
    switch (spec->id) {
    case O_CONFIGS: b->configs = value; return 0;
    case O_MODEL: b->model = value; return 0;
    case O_ARCH: b->arch = value; return 0;
    case O_HANDLER: b->handler = value; return 0;
    case O_INPUT: b->input = value; return 0;
    case O_REPORT: b->report_dir = value; return 0;
    case O_METRIC: b->metric = value; return 0;
    case O_LOAD_GENERATOR:
        rc = parse_choice(name, value, generators, &v, why);
        b->ab = v == 1;
        return rc;
    case O_CONCURRENCY: return parse_range(name, value, 1, 100000, &b->concurrency, why);
    case O_REQUESTS:
        rc = parse_range(name, value, 1, 1 << 30, &v, why);
        b->requests = v;
        return rc;
    case O_RATE: {
        char *end;
        errno = 0;
        double r = strtod(value, &end);
        if (*end || errno || !(r > 0) || r > 1e7 || value[0] == ' ')
            return usage_error(why, "%s: '%s' is not a number of requests a second above 0", name,
                               value);
        b->rate = r;
        return 0;
    }
    case O_WARMUP: return parse_seconds0(name, value, &b->warmup_s, why);
    default: return usage_error(why, "internal error: unhandled option %s", name);
    }
}

static int apply_tune(tool_tune_options *t, const option_spec *spec, const char *name,
                      const char *value, char **why)
{
    static const char *const strategies[] = {"auto", "grid", "random", NULL};
    if (spec->value && !*value)
        return usage_error(why, "%s: empty value", name);
    switch (spec->id) {
    case O_SERVE_MODEL: t->serve = value; return 0;
    case O_SPACE: t->space = value; return 0;
    case O_CONF: t->conf = value; return 0;
    case O_OUTPUT: t->output = value; return 0;
    case O_MINIMIZE: t->minimize = true; return 0;
    case O_RESUME: t->resume = true; return 0;
    case O_TUNE_STRATEGY: return parse_choice(name, value, strategies, &t->strategy, why);
    case O_MAX_TRIALS: return parse_range(name, value, 1, 1 << 20, &t->max_trials, why);
    case O_REPEAT: return parse_range(name, value, 1, 100, &t->repeat, why);
    case O_BUDGET: return parse_seconds_max(name, value, 30 * 86400.0, &t->budget_s, why);
    case O_TIMEOUT: return parse_seconds_max(name, value, 86400.0, &t->timeout_s, why);
    case O_SLO: return parse_seconds_max(name, value, 3600000.0, &t->slo_p99_ms, why);
    case O_SEED: {
        int v = 0;
        int rc = parse_range(name, value, 0, 1 << 30, &v, why);
        t->seed = v;
        return rc;
    }
    default: return usage_error(why, "internal error: unhandled option %s", name);
    }
}

typedef struct choices_seen {
    int allocator_flags; /* how many of --enable-*, --use-default-allocator */
    int task_manager;    /* -1 not given */
    bool memory_allocator_given;
} choices_seen;

static int apply(tool_options *o, const option_spec *spec, const char *name, const char *value,
                 choices_seen *seen, char **why)
{
    static const char *const strategies[] = {"close", "scatter", NULL};
    static const char *const allocators[] = {"auto", "default", "tcmalloc", "jemalloc", NULL};
    static const char *const omps[] = {"auto", "default", "intel", NULL};
    static const char *const managers[] = {"auto", "none", "numactl", "taskset", NULL};
    int v = 0, rc = 0;
    switch (spec->id) {
    case O_NINSTANCES: return parse_int(name, value, &o->plan.ninstances, why);
    case O_NCORES: return parse_int(name, value, &o->plan.ncores_per_instance, why);
    case O_NODE_ID: return parse_int(name, value, &o->plan.node_id, why);
    case O_SOCKET_ID: return parse_int(name, value, &o->plan.socket_id, why);
    case O_RANK: return parse_int(name, value, &o->plan.rank, why);
    case O_NODES_LIST: o->plan.nodes_list = value; return 0;
    case O_CORE_LIST: o->plan.core_list = value; return 0;
    case O_INSTANCE_IDX: o->plan.instance_idx = value; return 0;
    case O_LOGICAL: o->plan.use_logical_cores = true; return 0;
    case O_ECORES: o->plan.use_e_cores = true; return 0;
    case O_BIND: o->plan.bind_numa_node = true; return 0;
    case O_LATENCY: o->plan.latency_mode = true; return 0;
    case O_THROUGHPUT: o->plan.throughput_mode = true; return 0;
    case O_MULTI: o->plan.multi_instance = true; return 0;
    case O_STRATEGY:
        rc = parse_choice(name, value, strategies, &v, why);
        o->plan.strategy = v ? PF_STRATEGY_SCATTER : PF_STRATEGY_CLOSE;
        return rc;
    case O_TCMALLOC:
    case O_JEMALLOC:
    case O_DEFAULT_ALLOC: {
        pf_allocator a = spec->id == O_TCMALLOC   ? PF_ALLOCATOR_TCMALLOC
                         : spec->id == O_JEMALLOC ? PF_ALLOCATOR_JEMALLOC
                                                  : PF_ALLOCATOR_DEFAULT;
        if (seen->allocator_flags++ > 0 && o->allocator != a)
            return usage_error(why, "choose one of --enable-tcmalloc, --enable-jemalloc and "
                                    "--use-default-allocator");
        o->allocator = a;
        return 0;
    }
    case O_ALLOCATOR:
        rc = parse_choice(name, value, allocators, &v, why);
        seen->memory_allocator_given = true;
        o->allocator = (pf_allocator)v;
        return rc;
    case O_DISABLE_IOMP: o->omp = PF_OMP_DEFAULT; return 0;
    case O_OMP_RUNTIME:
        rc = parse_choice(name, value, omps, &v, why);
        o->omp = (pf_omp_runtime)v;
        return rc;
    case O_DISABLE_NUMACTL: o->disable_numactl = true; return 0;
    case O_DISABLE_TASKSET: o->disable_taskset = true; return 0;
    case O_TASK_MANAGER:
        rc = parse_choice(name, value, managers, &seen->task_manager, why);
        return rc;
    case O_MODULE: o->module = true; return 0;
    case O_NO_PYTHON: o->no_python = true; return 0;
    case O_LOG_DIR:
        if (!*value)
            return usage_error(why, "%s: empty directory name", name);
        o->log_dir = value;
        return 0;
    case O_LOG_PREFIX:
        if (!*value || strchr(value, '/'))
            return usage_error(why, "%s: '%s' is not a file name prefix", name, value);
        o->log_prefix = value;
        return 0;
    case O_TOPOLOGY:
        if (!*value)
            return usage_error(why, "%s: empty topology source", name);
        o->topology = value;
        return 0;
    case O_JSON: o->json = true; return 0;
    case O_FAIL_FAST: o->fail_fast = true; return 0;
    case O_CHILDREN: return parse_range_pid(name, value, &o->children_of, why);
    case O_ALL: o->all = true; return 0;
    case O_WATCH: o->watch = true; return 0;
    case O_CONFIGS:
    case O_MODEL:
    case O_ARCH:
    case O_HANDLER:
    case O_INPUT:
    case O_REPORT:
    case O_METRIC:
    case O_LOAD_GENERATOR:
    case O_CONCURRENCY:
    case O_REQUESTS:
    case O_RATE:
    case O_WARMUP: return apply_bench(&o->bench, spec, name, value, why);
    case O_SERVE_MODEL:
    case O_SPACE:
    case O_CONF:
    case O_OUTPUT:
    case O_MINIMIZE:
    case O_RESUME:
    case O_TUNE_STRATEGY:
    case O_MAX_TRIALS:
    case O_REPEAT:
    case O_BUDGET:
    case O_TIMEOUT:
    case O_SLO:
    case O_SEED: return apply_tune(&o->tune, spec, name, value, why);
    case O_DURATION: return parse_seconds(name, value, &o->duration_s, why);
    case O_INTERVAL: return parse_seconds(name, value, &o->interval_s, why);
    default: return apply_serve(&o->serve, spec, name, value, why);
    }
    return usage_error(why, "internal error: unhandled option %s", name);
}

/* An environment variable holding an integer in [lo, hi], `what` saying what it must be. */
static int env_int(const char *var, long lo, long hi, const char *what, int *out, char **why)
{
    const char *value = getenv(var);
    if (!value || !*value)
        return 0;
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (*end || errno || value[0] < '0' || value[0] > '9' || v < lo || v > hi)
        return usage_error(why, "%s='%s' is not %s", var, value, what);
    *out = (int)v;
    return 0;
}

/*
 * PINFER_CPU_QUOTA: a CPU quota to plan within, as a positive decimal
 * number of CPUs ("4", "2.5"); unset or empty: the topology's.
 */
static int env_quota(double *out, char **why)
{
    const char *value = getenv("PINFER_CPU_QUOTA");
    if (!value || !*value)
        return 0;
    size_t digits = 0, i = 0;
    for (; value[i] >= '0' && value[i] <= '9'; i++)
        digits++;
    if (value[i] == '.')
        for (i++; value[i] >= '0' && value[i] <= '9'; i++)
            digits++;
    double quota = digits > 0 && !value[i] ? strtod(value, NULL) : 0;
    if (!(quota > 0) || !isfinite(quota))
        return usage_error(
            why, "PINFER_CPU_QUOTA='%s' is not a positive number of CPUs, such as 4 or 2.5", value);
    *out = quota;
    return 0;
}

bool tool_options_want_json(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0 || arg[0] != '-' || arg[1] == '\0')
            return false;
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        const option_spec *spec = find_option(arg, eq ? (size_t)(eq - arg) : strlen(arg), ~0u);
        if (spec && spec->id == O_JSON)
            return true;
        if (spec && spec->value && !eq)
            i++;
    }
    return false;
}

int tool_parse_options(tool_command command, int argc, char **argv, tool_options *o, char **why)
{
    memset(o, 0, sizeof *o);
    o->command = command;
    pf_plan_options_init(&o->plan);
    o->log_prefix = "run";
    o->serve.max_batch_delay = -1;
    o->bench.warmup_s = -1;
    o->tune.strategy = -1;
    o->tune.seed = -1;
    o->argv = argv;
    o->argc = argc;
    const char *env_topology = getenv("PINFER_TOPOLOGY");
    o->topology = env_topology && *env_topology ? env_topology : NULL;
    choices_seen seen = {.task_manager = -1};

    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (arg[0] != '-' || arg[1] == '\0')
            break;
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            o->help = true; /* wherever it stands among the options */
            return 0;
        }
        const option_spec *spec = find_option(arg, name_len, 1u << command);
        if (!spec || !(spec->commands & (1u << command))) {
            return usage_error(why, "%s: unknown option '%.*s' (see pinfer %s --help)",
                               COMMAND_NAMES[command], (int)name_len, arg, COMMAND_NAMES[command]);
        }
        const char *name = spec->names[0];
        const char *value = NULL;
        if (spec->value) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else
                return usage_error(why, "%s needs a value", name);
        } else if (eq) {
            return usage_error(why, "%s takes no value", name);
        }
        int rc = apply(o, spec, name, value, &seen, why);
        if (rc < 0)
            return rc;
    }
    if (seen.memory_allocator_given && seen.allocator_flags > 0)
        return usage_error(why, "--memory-allocator and --enable-*/--use-default-allocator "
                                "cannot be used together");
    /* ipexrun's --multi-task-manager: binding is always native. */
    if (seen.task_manager == 1) { /* none */
        o->disable_numactl = o->disable_taskset = true;
    } else if (seen.task_manager == 3) { /* taskset: CPUs only */
        o->disable_numactl = true;
    }
    /* As in run_cpu: the CPU binding goes with the memory binding unless both are off. */
    if (o->disable_taskset && !o->disable_numactl)
        o->notes[o->nnotes++] = "--disable-taskset has no effect without --disable-numactl: "
                                "CPUs are still bound";
    if (o->module && o->no_python)
        return usage_error(why, "--module and --no-python cannot be used together");
    if (i < argc) {
        o->program = &argv[i];
        o->nprogram = argc - i;
    }
    if (command == CMD_CHECK) {
        int ways = (o->program != NULL) + (o->children_of > 0) + o->all;
        if (ways != 1)
            return usage_error(why, "check: give PIDs, --children PID or --all (one of them)");
        if (o->watch && o->json)
            return usage_error(why, "check: --watch and --json cannot be used together");
    }
    if (command == CMD_TOPO && o->program)
        return usage_error(why, "topo: unexpected argument '%s'", o->program[0]);
    if (command == CMD_SERVE && o->program) {
        /* TorchServe's `--models a=a.mar b=b.mar`: the words after --models are models too. */
        if (o->serve.nmodels == 0)
            return usage_error(why, "serve: unexpected argument '%s'", o->program[0]);
        for (int k = 0; k < o->nprogram; k++) {
            if (o->serve.nmodels == TOOL_MAX_MODEL_ARGS)
                return usage_error(why, "--models: more than %d given", TOOL_MAX_MODEL_ARGS);
            o->serve.models[o->serve.nmodels++] = o->program[k];
        }
        o->program = NULL;
        o->nprogram = 0;
    }
    if (command == CMD_BENCH) {
        const tool_bench_options *b = &o->bench;
        const char *serving_only = b->model                        ? "--model"
                                   : b->arch                       ? "--arch"
                                   : b->handler                    ? "--handler"
                                   : b->input                      ? "--input"
                                   : b->concurrency                ? "--concurrency"
                                   : b->rate > 0                   ? "--rate"
                                   : b->requests                   ? "--requests"
                                   : b->ab                         ? "--load-generator"
                                   : o->serve.batch_size           ? "--batch-size"
                                   : o->serve.max_batch_delay >= 0 ? "--max-batch-delay"
                                                                   : NULL;
        if (o->program && serving_only)
            return usage_error(why, "bench: %s is for serving, not for a PROGRAM", serving_only);
        if (!o->program && (b->metric || o->module || o->no_python))
            return usage_error(why, "bench: %s is for a PROGRAM (after --)",
                               b->metric   ? "--metric"
                               : o->module ? "--module"
                                           : "--no-python");
        if (b->model && b->arch)
            return usage_error(why, "bench: --arch names the built-in model: not with --model");
        if (b->handler && !b->model)
            return usage_error(why, "bench: --handler goes with --model FILE");
    }
    if (command == CMD_TUNE) {
        const tool_tune_options *t = &o->tune;
        const tool_bench_options *b = &o->bench;
        if (!o->program == !t->serve)
            return usage_error(why,
                               "tune: give -- PROGRAM [ARGS...] or --serve MODEL (one of them)");
        const char *serving_only = t->slo_p99_ms > 0   ? "--slo-p99"
                                   : b->handler        ? "--handler"
                                   : b->input          ? "--input"
                                   : b->concurrency    ? "--concurrency"
                                   : o->duration_s > 0 ? "--duration"
                                   : b->warmup_s >= 0  ? "--warmup"
                                                       : NULL;
        if (o->program && serving_only)
            return usage_error(why, "tune: %s is for --serve, not for a PROGRAM", serving_only);
        if (t->serve && (b->metric || t->minimize || o->module || o->no_python))
            return usage_error(why, "tune: %s is for a PROGRAM, not for --serve",
                               b->metric     ? "--metric"
                               : t->minimize ? "--minimize"
                               : o->module   ? "--module"
                                             : "--no-python");
        if (t->minimize && !b->metric)
            return usage_error(why, "tune: --minimize goes with --metric (the default objective, "
                                    "the run's wall time, is always minimised)");
    }
    if (command == CMD_RUN && !o->program)
        return usage_error(why, "run: no PROGRAM to launch");
    const char *count = "a non-negative integer";
    int rc = env_int("LOCAL_WORLD_SIZE", 0, 1L << 30, count, &o->plan.local_world_size, why);
    if (rc == 0)
        rc = env_int("LOCAL_RANK", 0, 1L << 30, count, &o->plan.local_rank, why);
    if (rc == 0)
        rc = env_quota(&o->plan.cpu_quota, why);
    if (rc == 0 && (command == CMD_RUN || command == CMD_SERVE))
        rc = env_int("PINFER_GRACE_MS", 1, GRACE_MS_MAX,
                     "a number of milliseconds from 1 to 3600000", &o->grace_ms, why);
    return rc;
}

int tool_filter_launcher_args(char *const *argv, char ***kept, char ***notes, char **why)
{
    size_t n = 0;
    while (argv[n])
        n++;
    *kept = calloc(n + 1, sizeof **kept);
    *notes = calloc(n + 1, sizeof **notes);
    if (!*kept || !*notes) {
        free(*kept);
        free(*notes);
        *kept = *notes = NULL;
        return -ENOMEM;
    }
    size_t nkept = 0, nnotes = 0;
    for (size_t i = 0; argv[i]; i++) {
        const char *arg = argv[i];
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const option_spec *spec = arg[0] == '-' ? find_option(arg, name_len, FOR_LAUNCH) : NULL;
        int rc = 0;
        if (!spec || !(spec->commands & FOR_LAUNCH))
            rc = usage_error(why, "cpu_launcher_args: '%s' is not an option of pinfer run", arg);
        else if (spec->value && !eq && !argv[i + 1])
            rc = usage_error(why, "cpu_launcher_args: %s needs a value", spec->names[0]);
        if (rc < 0) {
            free(*kept);
            for (size_t k = 0; k < nnotes; k++)
                free((*notes)[k]);
            free(*notes);
            *kept = *notes = NULL;
            return rc;
        }
        bool takes = spec->value && !eq;
        if (spec->commands & FOR_SERVE) {
            (*kept)[nkept++] = (char *)arg;
            if (takes)
                (*kept)[nkept++] = argv[i + 1];
        } else {
            usage_error(&(*notes)[nnotes++],
                        "cpu_launcher_args: %s is decided by pinfer serve (one instance per "
                        "worker): ignored",
                        spec->names[0]);
        }
        if (takes)
            i++;
    }
    return 0;
}

void tool_launch_request(const tool_options *o, pf_launch_request *r)
{
    pf_launch_request_init(r);
    r->plan = o->plan;
    r->topology = o->topology;
    r->require_live = o->command == CMD_RUN;
    r->allocator = o->allocator;
    r->omp = o->omp;
    r->disable_numactl = o->disable_numactl;
    r->disable_taskset = o->disable_taskset;
    r->no_python = o->no_python;
    r->module = o->module;
    r->program = o->program;
    r->warnings = o->notes;
}

int tool_bench_plan_args(const tool_options *o, char ***words)
{
    *words = calloc((size_t)o->argc + 1, sizeof **words);
    if (!*words)
        return -ENOMEM;
    size_t n = 0;
    for (int i = 1; i < o->argc; i++) {
        const char *arg = o->argv[i];
        if (strcmp(arg, "--") == 0 || arg[0] != '-' || arg[1] == '\0')
            break;
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const option_spec *spec = find_option(arg, name_len, FOR_BENCH);
        bool takes = spec && spec->value && !eq;
        bool forward = spec && (spec->commands & FOR_WORKERS) == FOR_WORKERS &&
                       spec->id != O_ALLOCATOR && spec->id != O_TCMALLOC &&
                       spec->id != O_JEMALLOC && spec->id != O_DEFAULT_ALLOC &&
                       spec->id != O_OMP_RUNTIME && spec->id != O_DISABLE_IOMP;
        if (forward) {
            (*words)[n++] = o->argv[i];
            if (takes && i + 1 < o->argc)
                (*words)[n++] = o->argv[i + 1];
        }
        if (takes)
            i++;
    }
    return 0;
}
