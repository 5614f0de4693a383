/*
 * cmd_tune.c - `pinfer tune`: measure configurations of a program run by
 * the launcher (or of pinfer serve under load) and choose the best
 * (docs/tune.md).  The space comes from the machine (src/tune), narrowed or
 * widened by --space or an IPEX hypertune --conf; the search (auto, grid,
 * random) asks for a configuration, a trial measures it - every run through
 * the real launcher, `pinfer run` or `pinfer serve` started from this
 * executable - and tells the result.  After every trial the record
 * (record.csv, tune.json) is written, so an interrupted tuning resumes.
 * Exit 0 with a result, 1 when no trial succeeded, 2 for a usage error.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Defaults (docs/tune.md). */
#define DEFAULT_TIMEOUT_S 600.0
#define DEFAULT_SERVE_DURATION_S 10.0
#define DEFAULT_SERVE_WARMUP_S 3.0
/* A winner must beat the runner-up by more than the spread of either, and at least this. */
#define NOISE_FLOOR 0.02
/* The largest --conf, --space or record.csv read. */
#define CONF_MAX (16u << 20)

/* How a program's objective is read. */
typedef enum objective_kind { OBJ_WALL, OBJ_METRIC, OBJ_HYPERTUNE, OBJ_SERVE } objective_kind;

typedef struct tune_run {
    const tool_options *opts;
    pf_topology *topo;
    pf_tune_space *space;
    char *self;
    char *dir;
    objective_kind kind;
    regex_t metric;
    bool have_metric;
    bool higher;
    char *objective; /* its name: "items/s", hypertune's name, "seconds", "req/s" */
    int repeat;
    double timeout_s;
    double started;
    bench_run bench; /* serving: the model, its request, the load */
    pf_tune_trial *trials;
    size_t ntrials, cap;
    size_t resumed;
    size_t physical; /* usable physical cores */
    size_t logical;  /* usable CPUs */
} tune_run;

/* ---- reading a program's output ------------------------------------------ */

/* Per instance: the values its output gave. */
typedef struct instance_values {
    double sum;
    long long n;
    bool hypertune_next; /* the last line was an @hypertune line: this one is the value */
} instance_values;

typedef struct output_reader {
    tune_run *run;
    instance_values inst[256];
    char line[4096];
    size_t len;
    int log;
    char *hypertune_error;
} output_reader;

/* "[3] text" -> 3 and the text; a line without the prefix is instance 0's. */
static size_t strip_instance(const char **line)
{
    const char *s = *line;
    if (s[0] != '[')
        return 0;
    char *end;
    long i = strtol(s + 1, &end, 10);
    if (end == s + 1 || *end != ']' || end[1] != ' ' || i < 0 || i >= 256)
        return 0;
    *line = end + 2;
    return (size_t)i;
}

static void take_line(output_reader *r)
{
    r->line[r->len] = '\0';
    if (r->log >= 0 && (write(r->log, r->line, r->len) < 0 || write(r->log, "\n", 1) < 0)) {
        /* a lost log line does not change the measurement */
    }
    const char *text = r->line;
    size_t i = strip_instance(&text);
    instance_values *v = &r->inst[i];
    tune_run *run = r->run;
    if (run->kind == OBJ_METRIC) {
        regmatch_t m[2];
        if (regexec(&run->metric, text, 2, m, 0) == 0 && m[1].rm_so >= 0) {
            char value[64];
            size_t n = (size_t)(m[1].rm_eo - m[1].rm_so);
            if (n < sizeof value) {
                memcpy(value, text + m[1].rm_so, n);
                value[n] = '\0';
                char *end;
                double x = strtod(value, &end);
                if (end != value && !*end && isfinite(x)) {
                    v->sum += x;
                    v->n++;
                }
            }
        }
    } else if (run->kind == OBJ_HYPERTUNE || run->kind == OBJ_WALL) {
        if (v->hypertune_next) {
            v->hypertune_next = false;
            char *end;
            double x = strtod(text, &end);
            while (*end == ' ' || *end == '\t' || *end == '\r')
                end++;
            if (end != text && !*end && isfinite(x)) {
                v->sum += x;
                v->n++;
            }
            return;
        }
        char *name = NULL, *why = NULL;
        bool higher = false;
        int rc = pf_tune_hypertune_line(text, &name, &higher, &why);
        if (rc == 1) {
            if (run->kind == OBJ_WALL) {
                /* The first @hypertune line decides the objective for the whole tuning. */
                run->kind = OBJ_HYPERTUNE;
                run->higher = higher;
                free(run->objective);
                run->objective = name;
                name = NULL;
            }
            if (run->objective && name && strcmp(name, run->objective) != 0) {
                /* Another objective of a multi-objective script: not the one tuned. */
            } else {
                v->hypertune_next = true;
            }
        } else if (rc < 0 && !r->hypertune_error) {
            r->hypertune_error = why;
            why = NULL;
        }
        free(name);
        free(why);
    }
}

/* ---- a trial -------------------------------------------------------------- */

typedef struct run_result {
    bool ok;
    double value;
    char *status; /* NULL when ok */
    double seconds;
} run_result;

/* One run of the program under `pinfer run ARGS`, its objective read from its output. */
static run_result run_program(tune_run *run, char *const *args, char *const *env, size_t trial,
                              int repeat)
{
    const tool_options *o = run->opts;
    run_result res = {0};
    size_t nargs = 0;
    while (args[nargs])
        nargs++;
    char **argv = calloc(nargs + (size_t)o->nprogram + 6, sizeof *argv);
    char *log_path = bench_format("%s/logs/trial-%zu-%d.log", run->dir, trial, repeat);
    if (!argv || !log_path) {
        free(argv);
        free(log_path);
        res.status = strdup("out of memory");
        return res;
    }
    size_t n = 0;
    argv[n++] = run->self;
    argv[n++] = "run";
    for (size_t i = 0; i < nargs; i++)
        argv[n++] = args[i];
    if (o->no_python)
        argv[n++] = "--no-python";
    if (o->module)
        argv[n++] = "--module";
    argv[n++] = "--";
    for (int i = 0; i < o->nprogram; i++)
        argv[n++] = o->program[i];
    argv[n] = NULL;
    output_reader *r = calloc(1, sizeof *r);
    char **envp = bench_env_with(env);
    int fds[2] = {-1, -1};
    if (!r || !envp || pipe2(fds, O_CLOEXEC) < 0) {
        res.status = strdup("out of memory");
        goto done;
    }
    r->run = run;
    r->log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    so.file = run->self;
    so.argv = argv;
    so.envp = envp;
    so.stdio[0] = PF_SPAWN_DEVNULL;
    so.stdio[1] = fds[1];
    so.stdio[2] = r->log >= 0 ? r->log : PF_SPAWN_DEVNULL;
    so.new_group = true;
    so.death_signal = SIGKILL;
    char *why = NULL;
    int pid = -1;
    double start = bench_now();
    int rc = pf_spawn(&so, &pid, &why);
    close(fds[1]);
    if (rc < 0) {
        res.status = why ? why : strdup("cannot start pinfer run");
        close(fds[0]);
        goto done;
    }
    bool timed_out = false;
    for (;;) {
        double left = start + run->timeout_s - bench_now();
        if (left <= 0) {
            timed_out = true;
            kill(-pid, SIGKILL);
            break;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        int got = poll(&p, 1, left > 1 ? 1000 : (int)(left * 1000) + 1);
        if (got <= 0)
            continue;
        char buf[8192];
        ssize_t k = read(fds[0], buf, sizeof buf);
        if (k <= 0)
            break;
        for (ssize_t i = 0; i < k; i++) {
            if (buf[i] == '\n' || r->len == sizeof r->line - 1) {
                take_line(r);
                r->len = 0;
                if (buf[i] == '\n')
                    continue;
            }
            r->line[r->len++] = buf[i];
        }
    }
    if (r->len > 0)
        take_line(r);
    close(fds[0]);
    int status = 0;
    if (!bench_wait(pid, timed_out ? 30 : run->timeout_s, &status)) {
        timed_out = true;
        kill(-pid, SIGKILL);
        bench_wait(pid, 30, &status);
    }
    kill(-pid, SIGKILL); /* whatever the instances left in their group */
    res.seconds = bench_now() - start;
    if (timed_out) {
        res.status = bench_format("timeout after %.0f s", run->timeout_s);
    } else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        char *how = bench_describe_status(status);
        res.status = bench_format("pinfer run %s (log: %s)", how ? how : "failed", log_path);
        free(how);
    } else if (run->kind == OBJ_WALL) {
        res.ok = true;
        res.value = res.seconds;
    } else {
        /* higher is better: a throughput, summed over instances; lower: a latency, averaged. */
        double total = 0;
        size_t with = 0;
        for (size_t i = 0; i < 256; i++)
            if (r->inst[i].n > 0) {
                total += r->inst[i].sum / (double)r->inst[i].n;
                with++;
            }
        if (with == 0) {
            res.status = r->hypertune_error ? bench_format("@hypertune: %s", r->hypertune_error)
                                            : strdup("no metric");
        } else {
            res.ok = true;
            res.value = run->higher ? total : total / (double)with;
        }
    }
done:
    if (r && r->log >= 0)
        close(r->log);
    if (r)
        free(r->hypertune_error);
    free(r);
    free(envp);
    free(argv);
    free(log_path);
    return res;
}

/* A whole number of a knob's value (checked when the space was made), or `fallback`. */
static int atoi_checked(const char *text, int fallback)
{
    char *end;
    long v = strtol(text, &end, 10);
    return end != text && !*end && v >= 0 && v <= 1 << 30 ? (int)v : fallback;
}

/* The knob's value as an allocator / OpenMP runtime of pinfer serve. */
static pf_allocator allocator_of(const char *v)
{
    return strcmp(v, "tcmalloc") == 0   ? PF_ALLOCATOR_TCMALLOC
           : strcmp(v, "jemalloc") == 0 ? PF_ALLOCATOR_JEMALLOC
                                        : PF_ALLOCATOR_DEFAULT;
}

/* One run of pinfer serve under load in the configuration. */
static run_result run_serve(tune_run *run, const pf_tune_config *c, char *const *args,
                            char *const *env, size_t trial)
{
    run_result res = {0};
    const pf_tune_space *sp = run->space;
    int instances = 1;
    sscanf(pf_tune_config_value(sp, c, PF_TUNE_SPLIT), "%d", &instances);
    /* pinfer serve's own options: the launcher's minus those it sets from the configuration. */
    size_t nargs = 0;
    while (args[nargs])
        nargs++;
    char **serve_args = calloc(nargs + 1, sizeof *serve_args);
    size_t k = 0;
    for (size_t i = 0; serve_args && i < nargs; i++) {
        if (strcmp(args[i], "--ninstances") == 0 || strcmp(args[i], "--memory-allocator") == 0 ||
            strcmp(args[i], "--omp-runtime") == 0) {
            i++;
            continue;
        }
        serve_args[k++] = args[i];
    }
    char name[32];
    snprintf(name, sizeof name, "trial-%zu", trial);
    bench_config cfg = {
        .name = name,
        .base = BENCH_PINNED,
        .allocator = allocator_of(pf_tune_config_value(sp, c, PF_TUNE_ALLOCATOR)),
        .omp = strcmp(pf_tune_config_value(sp, c, PF_TUNE_OMP), "intel") == 0 ? PF_OMP_INTEL
                                                                              : PF_OMP_DEFAULT,
        .serve_args = serve_args,
        .env = env,
    };
    static char *const none[] = {NULL};
    if (!serve_args)
        cfg.serve_args = none;
    run->bench.workers = instances;
    run->bench.batch_size = atoi_checked(pf_tune_config_value(sp, c, PF_TUNE_BATCH_SIZE), 1);
    run->bench.max_batch_delay =
        atoi_checked(pf_tune_config_value(sp, c, PF_TUNE_BATCH_DELAY), 100);
    run->bench.concurrency = run->opts->bench.concurrency > 0
                                 ? run->opts->bench.concurrency
                                 : 2 * instances * run->bench.batch_size;
    pf_bench_config out = {.mean_ms = -1,
                           .p50_ms = -1,
                           .p90_ms = -1,
                           .p99_ms = -1,
                           .max_ms = -1,
                           .local_memory_pct = -1,
                           .migrations_per_s = -1};
    double start = bench_now();
    bench_serving(&run->bench, &cfg, &out);
    res.seconds = bench_now() - start;
    double slo = run->opts->tune.slo_p99_ms;
    if (out.error) {
        res.status = out.error;
        out.error = NULL;
    } else if (slo > 0 && out.p99_ms > slo) {
        res.status = bench_format("p99 %.1f ms above the SLO (%.1f ms)", out.p99_ms, slo);
    } else {
        res.ok = true;
        res.value = out.throughput;
    }
    bench_config_clear(&out);
    free(serve_args);
    return res;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Measure a configuration: --repeat runs, the median and the spread kept. */
static void trial(tune_run *run, const pf_tune_config *c, pf_tune_trial *t)
{
    memset(t, 0, sizeof *t);
    t->config = *c;
    t->value = NAN;
    char **args = NULL, **env = NULL;
    if (pf_tune_config_args(run->space, c, &args, &env) < 0) {
        t->status = strdup("out of memory");
        return;
    }
    double values[100];
    int ok = 0;
    for (int k = 0; k < run->repeat; k++) {
        run_result r = run->kind == OBJ_SERVE
                           ? run_serve(run, c, args, env, run->ntrials + 1)
                           : run_program(run, args, env, run->ntrials + 1, k + 1);
        t->seconds += r.seconds;
        t->repeats++;
        if (!r.ok) {
            /* One failed run fails the trial: a configuration that crashes sometimes loses. */
            free(t->status);
            t->status = r.status ? r.status : strdup("failed");
            ok = 0;
            break;
        }
        values[ok++] = r.value;
    }
    pf_strv_free(args);
    pf_strv_free(env);
    if (ok == 0)
        return;
    qsort(values, (size_t)ok, sizeof *values, cmp_double);
    t->value = ok % 2 ? values[ok / 2] : (values[ok / 2 - 1] + values[ok / 2]) / 2;
    t->spread = t->value != 0 ? (values[ok - 1] - values[0]) / fabs(t->value) : 0;
    t->status = strdup("ok");
}

static bool trial_ok(const pf_tune_trial *t)
{
    return t->status && strcmp(t->status, "ok") == 0 && !isnan(t->value);
}

static int add_trial(tune_run *run, pf_tune_trial *t)
{
    if (run->ntrials == run->cap) {
        size_t cap = run->cap ? run->cap * 2 : 32;
        pf_tune_trial *grown = realloc(run->trials, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        run->trials = grown;
        run->cap = cap;
    }
    run->trials[run->ntrials++] = *t;
    return 0;
}

/* Is a better than b for this objective? */
static bool better(const tune_run *run, double a, double b)
{
    return run->higher ? a > b : a < b;
}

/* The best and the runner-up among the trials that succeeded (-1: none). */
static void best_two(const tune_run *run, long *best, long *second)
{
    *best = *second = -1;
    for (size_t i = 0; i < run->ntrials; i++) {
        if (!trial_ok(&run->trials[i]))
            continue;
        if (*best < 0 || better(run, run->trials[i].value, run->trials[*best].value)) {
            *second = *best;
            *best = (long)i;
        } else if (*second < 0 || better(run, run->trials[i].value, run->trials[*second].value)) {
            *second = (long)i;
        }
    }
}

/* Does the best beat the runner-up by more than the noise (docs/tune.md, "Noise")? */
static bool is_winner(const tune_run *run, long best, long second, double *margin)
{
    *margin = NOISE_FLOOR;
    if (best < 0 || second < 0)
        return best >= 0;
    const pf_tune_trial *a = &run->trials[best], *b = &run->trials[second];
    if (a->spread > *margin)
        *margin = a->spread;
    if (b->spread > *margin)
        *margin = b->spread;
    double gain = run->higher ? a->value / b->value - 1 : b->value / a->value - 1;
    return b->value != 0 && gain > *margin;
}

static int write_file(const char *dir, const char *name, const char *text)
{
    char *path = bench_format("%s/%s", dir, name);
    char *tmp = bench_format("%s/.%s.tmp", dir, name);
    FILE *f = tmp ? fopen(tmp, "w") : NULL;
    int rc = f && fputs(text, f) >= 0 ? 0 : -errno;
    if (f && fclose(f) != 0 && rc == 0)
        rc = -errno;
    /* Written whole, then renamed: an interrupted tuning never leaves half a record. */
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    free(path);
    free(tmp);
    return rc;
}

static int write_record(const tune_run *run)
{
    char *csv = NULL, *json = NULL;
    long best, second;
    best_two(run, &best, &second);
    double margin;
    bool winner = is_winner(run, best, second, &margin);
    int rc = pf_tune_record_to_csv(run->space, run->objective, run->trials, run->ntrials, &csv);
    if (rc == 0)
        rc = pf_tune_record_to_json(run->space, run->objective, run->higher, run->trials,
                                    run->ntrials, best, winner, &json);
    if (rc == 0)
        rc = write_file(run->dir, "record.csv", csv);
    if (rc == 0)
        rc = write_file(run->dir, "tune.json", json);
    free(csv);
    free(json);
    return rc;
}

/* The default configuration's trial, or NULL. */
static const pf_tune_trial *default_trial(const tune_run *run)
{
    pf_tune_config d;
    pf_tune_space_default_config(run->space, &d);
    for (size_t i = 0; i < run->ntrials; i++) {
        pf_tune_config c = run->trials[i].config;
        pf_tune_config_canonical(run->space, &c);
        if (pf_tune_config_equal(&c, &d))
            return &run->trials[i];
    }
    return NULL;
}

/* The command line of a configuration: `pinfer run ...` or `pinfer serve ...`. */
static char *command_of(const tune_run *run, const pf_tune_config *c)
{
    char **args = NULL, **env = NULL;
    if (pf_tune_config_args(run->space, c, &args, &env) < 0)
        return NULL;
    const tool_options *o = run->opts;
    size_t n = 0, ne = 0;
    while (args[n])
        n++;
    while (env[ne])
        ne++;
    char **words = calloc(n + ne + (size_t)o->nprogram + 16, sizeof *words);
    char *models = run->kind == OBJ_SERVE
                       ? bench_format("%s=%s", run->bench.model_name, run->bench.model_file)
                       : NULL;
    char *line = NULL;
    if (words) {
        size_t k = 0;
        for (size_t i = 0; i < ne; i++)
            words[k++] = env[i];
        words[k++] = "pinfer";
        if (run->kind == OBJ_SERVE) {
            words[k++] = "serve";
            for (size_t i = 0; i < n; i++) {
                if (strcmp(args[i], "--ninstances") == 0)
                    words[k++] = "--workers";
                else
                    words[k++] = args[i];
            }
            words[k++] = "--batch-size";
            words[k++] = (char *)pf_tune_config_value(run->space, c, PF_TUNE_BATCH_SIZE);
            words[k++] = "--max-batch-delay";
            words[k++] = (char *)pf_tune_config_value(run->space, c, PF_TUNE_BATCH_DELAY);
            words[k++] = "--model-store";
            words[k++] = run->bench.store ? run->bench.store : "STORE";
            words[k++] = "--models";
            words[k++] = models ? models : "MODEL";
        } else {
            words[k++] = "run";
            for (size_t i = 0; i < n; i++)
                words[k++] = args[i];
            if (o->no_python)
                words[k++] = "--no-python";
            if (o->module)
                words[k++] = "--module";
            for (int i = 0; i < o->nprogram; i++)
                words[k++] = o->program[i];
        }
        words[k] = NULL;
        line = pf_shell_join(words);
        free(words);
    }
    free(models);
    pf_strv_free(args);
    pf_strv_free(env);
    return line;
}

static int by_value(const void *a, const void *b, void *ctx)
{
    const tune_run *run = ctx;
    const pf_tune_trial *x = a, *y = b;
    bool ox = trial_ok(x), oy = trial_ok(y);
    if (ox != oy)
        return ox ? -1 : 1;
    if (!ox)
        return 0;
    if (x->value == y->value)
        return 0;
    return better(run, x->value, y->value) ? -1 : 1;
}

static void print_table(tune_run *run)
{
    const pf_tune_trial *def = default_trial(run);
    double def_value = def && trial_ok(def) ? def->value : NAN;
    pf_tune_trial *sorted = malloc(run->ntrials * sizeof *sorted);
    if (!sorted)
        return;
    memcpy(sorted, run->trials, run->ntrials * sizeof *sorted);
    qsort_r(sorted, run->ntrials, sizeof *sorted, by_value, run);
    char resumed[48] = "";
    if (run->resumed)
        snprintf(resumed, sizeof resumed, " (%zu resumed)", run->resumed);
    printf("\npinfer tune: %zu trial%s%s; objective: %s (%s is better)\n", run->ntrials,
           run->ntrials == 1 ? "" : "s", resumed, run->objective, run->higher ? "higher" : "lower");
    printf("\n%4s  %-44s %14s %8s %8s  %s\n", "rank", "configuration", run->objective, "spread",
           "vs dflt", "status");
    for (size_t i = 0; i < run->ntrials; i++) {
        const pf_tune_trial *t = &sorted[i];
        char *what = pf_tune_config_describe(run->space, &t->config);
        pf_tune_config c = t->config;
        pf_tune_config_canonical(run->space, &c);
        pf_tune_config d;
        pf_tune_space_default_config(run->space, &d);
        bool is_default = pf_tune_config_equal(&c, &d);
        char label[96];
        snprintf(label, sizeof label, "%s%s", what ? what : "?", is_default ? " (default)" : "");
        if (trial_ok(t)) {
            double ratio = !isnan(def_value) && def_value != 0
                               ? (run->higher ? t->value / def_value : def_value / t->value)
                               : NAN;
            printf("%4zu  %-44s %14.4g %7.1f%%", i + 1, label, t->value, t->spread * 100);
            if (!isnan(ratio))
                printf(" %7.2fx", ratio);
            else
                printf(" %8s", "-");
            printf("  ok\n");
        } else {
            printf("%4s  %-44s %14s %8s %8s  %s\n", "-", label, "-", "-", "-",
                   t->status ? t->status : "failed");
        }
        free(what);
    }
    free(sorted);
    printf("(vs dflt: how many times better than the untuned default, pinfer run with no "
           "option)\n");
}

/* ---- the command ----------------------------------------------------------- */

/*
 * Drop the splits that cannot run here (more cores than this process may
 * use): a --space or --conf written for a larger machine.  -EINVAL with *why
 * when none is left: the space is empty.
 */
static int fit_splits(tune_run *run, char **why)
{
    pf_tune_space *sp = run->space;
    bool logical = false;
    for (size_t i = 0; i < sp->nvalues[PF_TUNE_LOGICAL]; i++)
        logical |= strcmp(sp->values[PF_TUNE_LOGICAL][i], "on") == 0;
    size_t limit = logical ? run->logical : run->physical;
    char **keep = calloc(sp->nvalues[PF_TUNE_SPLIT] + 1, sizeof *keep);
    if (!keep)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < sp->nvalues[PF_TUNE_SPLIT]; i++) {
        unsigned long a = 0, b = 0;
        if (sscanf(sp->values[PF_TUNE_SPLIT][i], "%lux%lu", &a, &b) == 2 && a * b <= limit)
            keep[n++] = sp->values[PF_TUNE_SPLIT][i];
        else
            fprintf(stderr,
                    "pinfer: warning: tune: split %s needs more than the %zu cores this process "
                    "may use: left out\n",
                    sp->values[PF_TUNE_SPLIT][i], limit);
    }
    int rc = 0;
    if (n == 0)
        rc = bench_fail(why, -EINVAL,
                        "tune: the space is empty: no split fits the %zu cores this process "
                        "may use",
                        limit);
    else if (n < sp->nvalues[PF_TUNE_SPLIT])
        rc = pf_tune_space_set(sp, PF_TUNE_SPLIT, keep, n, why);
    free(keep);
    return rc;
}

static int set_up_space(tune_run *run, pf_tune_conf *conf, char **why)
{
    const tool_options *o = run->opts;
    pf_tune_space_options so = {.serve = o->tune.serve != NULL};
    char *path = NULL;
    if (pf_library_find(PF_LIBRARY_TCMALLOC, NULL, true, &path) == 0)
        so.have_tcmalloc = true;
    free(path);
    path = NULL;
    if (pf_library_find(PF_LIBRARY_JEMALLOC, NULL, true, &path) == 0)
        so.have_jemalloc = true;
    free(path);
    path = NULL;
    if (pf_library_find(PF_LIBRARY_IOMP, NULL, true, &path) == 0)
        so.have_iomp = true;
    free(path);
    int rc = pf_tune_space_default(run->topo, &so, &run->space, why);
    size_t len = 0;
    if (rc == 0 && o->tune.conf) {
        char *text = NULL;
        rc = bench_read_file(o->tune.conf, CONF_MAX, &text, &len, why);
        if (rc == 0)
            rc = pf_tune_conf_parse(text, len, o->tune.conf, run->topo, run->space, conf, why);
        free(text);
        for (size_t i = 0; rc == 0 && conf->notes && conf->notes[i]; i++)
            fprintf(stderr, "pinfer: note: %s\n", conf->notes[i]);
        /* hypertune tunes none of pinfer's own knobs: they keep their default (--space widens). */
        pf_tune_space *sp = run->space;
        for (int k = PF_TUNE_BLOCKTIME; rc == 0 && k <= PF_TUNE_BATCH_DELAY; k++) {
            char *only[] = {sp->values[k][sp->defaults[k]]};
            char *copy = strdup(only[0]);
            only[0] = copy;
            rc = copy ? pf_tune_space_set(sp, (pf_tune_knob)k, only, 1, why) : -ENOMEM;
            free(copy);
        }
    }
    if (rc == 0 && o->tune.space) {
        char *text = NULL;
        rc = bench_read_file(o->tune.space, CONF_MAX, &text, &len, why);
        if (rc == 0)
            rc = pf_tune_space_load(run->space, text, len, o->tune.space, why);
        free(text);
    }
    if (rc == 0)
        rc = fit_splits(run, why);
    return rc;
}

static void progress_line(tune_run *run, size_t max, const pf_tune_trial *t)
{
    char *what = pf_tune_config_describe(run->space, &t->config);
    long best, second;
    best_two(run, &best, &second);
    char limit[32] = "";
    if (max)
        snprintf(limit, sizeof limit, "/%zu", max);
    if (trial_ok(t))
        fprintf(stderr, "trial %zu%s: %s -> %.4g %s", run->ntrials, limit, what ? what : "?",
                t->value, run->objective);
    else
        fprintf(stderr, "trial %zu%s: %s -> FAILED: %s", run->ntrials, limit, what ? what : "?",
                t->status ? t->status : "?");
    if (best >= 0)
        fprintf(stderr, " (best %.4g)", run->trials[best].value);
    fprintf(stderr, "\n");
    free(what);
}

static void run_free(tune_run *run)
{
    pf_tune_trials_free(run->trials, run->ntrials);
    pf_tune_space_free(run->space);
    pf_topology_free(run->topo);
    if (run->have_metric)
        regfree(&run->metric);
    free(run->objective);
    free(run->self);
    free(run->dir);
    free(run->bench.self);
    free(run->bench.python);
    free(run->bench.dir);
    free(run->bench.cpus);
    free(run->bench.store);
    free(run->bench.model_name);
    free(run->bench.model_file);
    free(run->bench.input);
    free(run->bench.content_type);
    free(run->bench.body);
}

static int cmd_tune(const tool_options *o)
{
    tune_run run = {.opts = o, .repeat = o->tune.repeat > 0 ? o->tune.repeat : 1};
    tool_options serving; /* the options bench's serving code reads (--serve as --model) */
    pf_tune_conf conf = {.strategy = -1};
    char *why = NULL;
    int rc = 0;
    run.started = bench_now();
    if (o->bench.metric) {
        int err = regcomp(&run.metric, o->bench.metric, REG_EXTENDED);
        if (err != 0) {
            char msg[256];
            regerror(err, &run.metric, msg, sizeof msg);
            rc = bench_fail(&why, -EINVAL, "--metric '%s': %s", o->bench.metric, msg);
        } else {
            run.have_metric = true;
            if (run.metric.re_nsub < 1)
                rc = bench_fail(&why, -EINVAL,
                                "--metric '%s': no group: put the number in ( ), as in "
                                "'([0-9.]+) items/s'",
                                o->bench.metric);
        }
        run.kind = OBJ_METRIC;
        run.higher = !o->tune.minimize;
        run.objective = bench_metric_unit(o->bench.metric, "metric");
    } else if (o->tune.serve) {
        run.kind = OBJ_SERVE;
        run.higher = true;
        run.objective = strdup("req/s");
    } else {
        run.kind = OBJ_WALL; /* until the program prints @hypertune lines */
        run.higher = false;
        run.objective = strdup("seconds");
    }
    if (rc == 0)
        rc = pf_topology_load(NULL, &run.topo, &why);
    if (rc == 0) {
        run.physical = bench_usable_cpus(run.topo, true);
        run.logical = bench_usable_cpus(run.topo, false);
        run.self = realpath("/proc/self/exe", NULL);
        if (!run.self)
            rc = bench_fail(&why, -errno, "cannot find this executable: %s", strerror(errno));
    }
    if (rc == 0)
        rc = set_up_space(&run, &conf, &why);
    run.timeout_s = o->tune.timeout_s > 0 ? o->tune.timeout_s : DEFAULT_TIMEOUT_S;
    pf_tune_search_options so = {.strategy = PF_TUNE_AUTO, .seed = 1};
    if (conf.strategy >= 0)
        so.strategy = (pf_tune_strategy)conf.strategy;
    if (o->tune.strategy >= 0)
        so.strategy = (pf_tune_strategy)o->tune.strategy;
    so.max_trials = o->tune.max_trials > 0 ? (size_t)o->tune.max_trials
                    : conf.max_trials > 0  ? (size_t)conf.max_trials
                                           : 0;
    if (o->tune.seed >= 0)
        so.seed = (unsigned)o->tune.seed;
    double serve_trial_s = 0;
    if (rc == 0 && o->tune.serve) {
        run.bench.opts = o;
        run.bench.topo = run.topo;
        run.bench.duration_s = o->duration_s > 0 ? o->duration_s : DEFAULT_SERVE_DURATION_S;
        run.bench.warmup_s = o->bench.warmup_s >= 0 ? o->bench.warmup_s : DEFAULT_SERVE_WARMUP_S;
        run.bench.count = 1;
        serve_trial_s = run.bench.duration_s + run.bench.warmup_s;
        if (o->tune.budget_s > 0 && o->tune.budget_s < serve_trial_s * run.repeat)
            rc = bench_fail(&why, -EINVAL,
                            "--budget %.0f s is too small for one trial: each takes at least "
                            "%.0f s (--warmup + --duration, times --repeat)",
                            o->tune.budget_s, serve_trial_s * run.repeat);
    }
    if (rc == 0) {
        if (o->tune.output) {
            run.dir = strdup(o->tune.output);
        } else if (conf.output_dir) {
            run.dir = strdup(conf.output_dir);
        } else {
            char stamp[32];
            time_t now = time(NULL);
            strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
            run.dir = bench_format("pinfer-tune-%s", stamp);
        }
        char *logs = run.dir ? bench_format("%s/logs", run.dir) : NULL;
        if (!logs || (mkdir(run.dir, 0755) < 0 && errno != EEXIST) ||
            (mkdir(logs, 0755) < 0 && errno != EEXIST))
            rc = bench_fail(&why, -EINVAL, "cannot create %s: %s", logs ? logs : "the folder",
                            strerror(errno));
        free(logs);
    }
    if (rc == 0 && o->tune.serve) {
        run.bench.self = strdup(run.self);
        const char *py = o->serve.python ? o->serve.python : getenv("PINFER_PYTHON");
        run.bench.python = py && *py ? strdup(py) : NULL;
        run.bench.dir = strdup(run.dir);
        run.bench.tty = isatty(2) == 1;
        /* --serve MODEL is bench's --model; "builtin" is the built-in model. */
        serving = *o;
        serving.bench.model = strcmp(o->tune.serve, "builtin") == 0 ? NULL : o->tune.serve;
        run.bench.opts = &serving;
        rc = bench_prepare_serving(&run.bench, &why);
    }
    pf_tune_search *search = NULL;
    if (rc == 0 && o->tune.resume) {
        size_t len = 0;
        char *path = bench_format("%s/record.csv", run.dir);
        char *text = NULL;
        rc = path ? bench_read_file(path, CONF_MAX, &text, &len, &why) : -ENOMEM;
        pf_tune_trial *old = NULL;
        size_t nold = 0, skipped = 0;
        if (rc == 0)
            rc = pf_tune_record_parse(run.space, text, len, &old, &nold, &skipped, &why);
        for (size_t i = 0; rc == 0 && i < nold; i++) {
            rc = add_trial(&run, &old[i]);
            memset(&old[i], 0, sizeof old[i]);
        }
        if (rc == 0 && skipped)
            fprintf(stderr, "pinfer: note: tune: %zu trial%s of %s left out: not in this space\n",
                    skipped, skipped == 1 ? "" : "s", path);
        run.resumed = run.ntrials;
        pf_tune_trials_free(old, nold);
        free(text);
        free(path);
    }
    if (rc < 0) {
        pf_tune_conf_clear(&conf);
        run_free(&run);
        return tool_fail(o->json, rc, why);
    }

    /*
     * The default first, outside the search: its output decides the
     * objective when the program prints @hypertune lines, and whether the
     * metric matches at all.
     */
    int status = 0;
    pf_tune_config config;
    pf_tune_space_default_config(run.space, &config);
    if (!default_trial(&run)) {
        pf_tune_trial t;
        trial(&run, &config, &t);
        add_trial(&run, &t);
        progress_line(&run, so.max_trials, &t);
        write_record(&run);
        const pf_tune_trial *d = &run.trials[run.ntrials - 1];
        if (!trial_ok(d) && d->status && strcmp(d->status, "no metric") == 0) {
            status = tool_fail(o->json, -EINVAL,
                               bench_format("tune: --metric '%s' matches nothing the program "
                                            "printed in the default configuration (its output: "
                                            "%s/logs/trial-1-1.log)",
                                            o->bench.metric, run.dir));
        } else if (o->tune.budget_s > 0 && bench_now() - run.started > o->tune.budget_s) {
            status = tool_fail(o->json, -EINVAL,
                               bench_format("--budget %.0f s is too small for one trial: the "
                                            "default configuration took %.0f s",
                                            o->tune.budget_s, bench_now() - run.started));
        }
    }
    so.higher_is_better = run.higher;
    if (status == 0 && pf_tune_search_create(run.space, &so, &search) < 0)
        status = tool_fail(o->json, -ENOMEM, NULL);
    for (size_t i = 0; search && i < run.ntrials; i++) {
        const pf_tune_trial *t = &run.trials[i];
        pf_tune_search_tell(search, &t->config, t->value, t->spread, !trial_ok(t));
    }
    while (status == 0 && pf_tune_search_next(search, &config) == 1) {
        double elapsed = bench_now() - run.started;
        double mean = run.ntrials > run.resumed ? elapsed / (double)(run.ntrials - run.resumed)
                                                : serve_trial_s;
        if (o->tune.budget_s > 0 && elapsed + mean > o->tune.budget_s) {
            fprintf(stderr, "pinfer: note: tune: the budget (%.0f s) is spent: no more trials\n",
                    o->tune.budget_s);
            break;
        }
        pf_tune_trial t;
        trial(&run, &config, &t);
        if (add_trial(&run, &t) < 0) {
            status = tool_fail(o->json, -ENOMEM, NULL);
            break;
        }
        pf_tune_search_tell(search, &t.config, t.value, t.spread, !trial_ok(&t));
        progress_line(&run, so.max_trials, &t);
        if (write_record(&run) < 0)
            fprintf(stderr, "pinfer: warning: tune: cannot write %s/record.csv: %s\n", run.dir,
                    strerror(errno));
    }
    pf_tune_search_free(search);
    if (status != 0) {
        pf_tune_conf_clear(&conf);
        run_free(&run);
        return status;
    }
    write_record(&run);
    long best, second;
    best_two(&run, &best, &second);
    double margin = 0;
    bool winner = is_winner(&run, best, second, &margin);
    if (o->json) {
        char *json = NULL;
        if (pf_tune_record_to_json(run.space, run.objective, run.higher, run.trials, run.ntrials,
                                   best, winner, &json) == 0)
            fputs(json, stdout);
        free(json);
    } else {
        print_table(&run);
    }
    if (best < 0) {
        fprintf(stderr, "pinfer: error: tune: no trial succeeded (see %s/logs/)\n", run.dir);
        status = 1;
    } else if (!o->json) {
        const pf_tune_trial *b = &run.trials[best];
        char *line = command_of(&run, &b->config);
        const pf_tune_trial *d = default_trial(&run);
        if (winner && second >= 0)
            printf("\nbest: %s\n", line ? line : "?");
        else if (second >= 0)
            printf("\ntie: the best two are within the noise (%.0f%%): %s\n", margin * 100,
                   line ? line : "?");
        else
            printf("\nbest (the only trial that succeeded): %s\n", line ? line : "?");
        if (d && trial_ok(d) && d != b)
            printf("      %.2fx the default's %s\n",
                   run.higher ? b->value / d->value : d->value / b->value, run.objective);
        printf("record: %s/record.csv, %s/tune.json\n", run.dir, run.dir);
        free(line);
    }
    pf_tune_conf_clear(&conf);
    run_free(&run);
    return status;
}

const tool_command_def tool_cmd_tune = {
    .name = "tune",
    .id = CMD_TUNE,
    .args = "[OPTIONS] -- PROGRAM [ARGS...] | [OPTIONS] --serve MODEL",
    .summary = "measure configurations and choose the best",
    .about =
        "Run PROGRAM through pinfer run (or pinfer serve under load) in the configurations of\n"
        "a search space - instances x cores, logical cores, NUMA binding, allocator, OpenMP\n"
        "runtime, KMP_BLOCKTIME, and for --serve batch size and delay - chosen by a search\n"
        "(auto: far fewer trials than the grid), and print the trials sorted with their ratio\n"
        "to the untuned default, the best command line, record.csv and tune.json.  The\n"
        "objective: --metric over the output, hypertune's @hypertune lines, else the run's\n"
        "wall time.  Accepts IPEX hypertune's YAML with --conf.  Exit 0 with a result, 1 when\n"
        "no trial succeeded, 2 for a usage error.",
    .run = cmd_tune,
};
