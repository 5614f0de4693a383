/*
 * cmd_bench.c - `pinfer bench`: the case study's experiment on this machine
 * (docs/bench.md).  Each configuration - `default` (unbound, a thread per
 * physical core in every worker: oversubscribed), `threads` (unbound, each
 * worker its share of the cores), `pinned` (pinfer's plan), and variants
 * with another allocator or OpenMP runtime - serves the same model under
 * the same load (or runs the same program), one after the other; then the
 * table with ratios to `default`, a verdict, and the report folder:
 * bench.json, bench.csv, report.html.  Exit 0 when every configuration was
 * measured, 1 when one could not be, 2 for a usage error.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Defaults (docs/bench.md). */
#define DEFAULT_WORKERS_MAX 4
#define DEFAULT_DURATION_S 20.0
#define DEFAULT_WARMUP_S 5.0
#define DEFAULT_CONFIGS "default,threads,pinned"
/* Ratios within this much of 1 are noise on a shared machine: no winner. */
#define VERDICT_MARGIN 0.05

/* ---- progress ----------------------------------------------------------- */

void bench_progress(const bench_run *run, const char *name, bool final, const char *fmt, ...)
{
    static double last_line;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (run->tty) {
        fprintf(stderr, "\r\033[K[%zu/%zu] %s: %s%s", run->index + 1, run->count, name, text,
                final ? "\n" : "");
    } else {
        /* A log, not a screen: a line every few seconds, and every final one. */
        double now = bench_now();
        if (!final && now - last_line < 5)
            return;
        last_line = final ? 0 : now;
        fprintf(stderr, "[%zu/%zu] %s: %s\n", run->index + 1, run->count, name, text);
    }
    fflush(stderr);
}

/* ---- configurations ----------------------------------------------------- */

static const char *const BASE_NAMES[] = {"default", "threads", "pinned"};

static const char *CONFIG_HELP = "a configuration is default, threads or pinned, optionally "
                                 "with +jemalloc, +tcmalloc, +default-allocator, +iomp or +gomp";

/*
 * One name of --configs: a base and variants.  The unpinned bases start
 * from the plain environment (the default allocator, the program's own
 * OpenMP: what TorchServe does), pinned from pinfer's plan with the
 * command line's allocator and OpenMP choices; the variants override.
 */
static int parse_config(const tool_options *o, const char *text, bench_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->name = strdup(text);
    if (!cfg->name)
        return -ENOMEM;
    char *copy = strdup(text), *save = NULL;
    if (!copy)
        return -ENOMEM;
    char *word = strtok_r(copy, "+", &save);
    int base = -1;
    for (int i = 0; word && i < 3; i++)
        if (strcmp(word, BASE_NAMES[i]) == 0)
            base = i;
    if (base < 0) {
        char *printable = pf_printable(text);
        cfg->error = bench_format("--configs: '%s' is not a configuration: %s",
                                  printable ? printable : "?", CONFIG_HELP);
        free(printable);
        free(copy);
        return 0;
    }
    cfg->base = (bench_base)base;
    cfg->allocator = base == BENCH_PINNED ? o->allocator : PF_ALLOCATOR_DEFAULT;
    cfg->omp = base == BENCH_PINNED ? o->omp : PF_OMP_DEFAULT;
    while ((word = strtok_r(NULL, "+", &save))) {
        if (strcmp(word, "jemalloc") == 0)
            cfg->allocator = PF_ALLOCATOR_JEMALLOC;
        else if (strcmp(word, "tcmalloc") == 0)
            cfg->allocator = PF_ALLOCATOR_TCMALLOC;
        else if (strcmp(word, "default-allocator") == 0)
            cfg->allocator = PF_ALLOCATOR_DEFAULT;
        else if (strcmp(word, "iomp") == 0)
            cfg->omp = PF_OMP_INTEL;
        else if (strcmp(word, "gomp") == 0)
            cfg->omp = PF_OMP_DEFAULT;
        else {
            char *printable = pf_printable(word);
            cfg->error = bench_format("--configs: '+%s' in '%s' is not a variant: %s",
                                      printable ? printable : "?", text, CONFIG_HELP);
            free(printable);
            break;
        }
    }
    free(copy);
    return 0;
}

static int parse_configs(const tool_options *o, bench_config **out, size_t *n, char **why)
{
    const char *list = o->bench.configs ? o->bench.configs : DEFAULT_CONFIGS;
    *out = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *c = list; *c; c++)
        cap += *c == ',';
    bench_config *cfgs = calloc(cap, sizeof *cfgs);
    char *copy = strdup(list), *save = NULL;
    if (!cfgs || !copy) {
        free(cfgs);
        free(copy);
        return -ENOMEM;
    }
    size_t count = 0;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ')
            item++;
        if (!*item)
            continue;
        bool repeated = false;
        for (size_t i = 0; i < count; i++)
            repeated |= strcmp(cfgs[i].name, item) == 0;
        if (repeated)
            continue;
        if (parse_config(o, item, &cfgs[count]) < 0) {
            free(copy);
            *out = cfgs;
            *n = count;
            return -ENOMEM;
        }
        count++;
    }
    free(copy);
    *out = cfgs;
    *n = count;
    if (count == 0) {
        *why = bench_format("--configs: no configuration in '%s'", list);
        return -EINVAL;
    }
    return 0;
}

static void configs_free(bench_config *cfgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(cfgs[i].name);
        free(cfgs[i].error);
    }
    free(cfgs);
}

static const char *allocator_text(pf_allocator a)
{
    switch (a) {
    case PF_ALLOCATOR_TCMALLOC: return "tcmalloc";
    case PF_ALLOCATOR_JEMALLOC: return "jemalloc";
    case PF_ALLOCATOR_DEFAULT: return "the default allocator";
    default: return "the allocator pinfer run chooses";
    }
}

static const char *omp_text(pf_omp_runtime o)
{
    switch (o) {
    case PF_OMP_INTEL: return "Intel OpenMP";
    case PF_OMP_DEFAULT: return "the program's OpenMP";
    default: return "the OpenMP runtime pinfer run chooses";
    }
}

static char *describe(const bench_run *run, const bench_config *cfg, int *threads)
{
    size_t share = run->cores / (size_t)run->workers;
    if (share == 0)
        share = 1;
    const char *how = "";
    switch (cfg->base) {
    case BENCH_DEFAULT:
        *threads = (int)run->cores;
        how = "not bound, a thread per physical core in each (torch's default)";
        break;
    case BENCH_THREADS:
        *threads = (int)share;
        how = "not bound, each its share of the physical cores as threads";
        break;
    case BENCH_PINNED:
        *threads = (int)share;
        how = "pinfer's plan: each on its own cores, memory on their node";
        break;
    }
    pf_allocator allocator =
        cfg->allocator == PF_ALLOCATOR_AUTO ? run->auto_allocator : cfg->allocator;
    pf_omp_runtime omp = cfg->omp == PF_OMP_AUTO ? run->auto_omp : cfg->omp;
    return bench_format("%d %s x %d threads, %s; %s, %s", run->workers,
                        run->opts->program ? "instances" : "workers", *threads, how,
                        allocator_text(allocator), omp_text(omp));
}

/* ---- the run's set-up ----------------------------------------------------- */

/* Run PYTHON -m pinfer.serve.builtin ARGS...; its "model:" and "input:" lines. */
static int builtin_files(bench_run *run, char *const *args, char **model, char **input, char **why)
{
    const char *python = run->python ? run->python : "python3";
    char *path = NULL;
    int rc = pf_find_program(python, NULL, &path);
    if (rc < 0)
        return bench_fail(why, rc,
                          "cannot find the Python interpreter '%s' (--python, or "
                          "PINFER_PYTHON)",
                          python);
    char *argv[16];
    size_t n = 0;
    argv[n++] = (char *)python;
    argv[n++] = "-m";
    argv[n++] = "pinfer.serve.builtin";
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        free(path);
        return bench_fail(why, -errno, "cannot create a pipe: %s", strerror(errno));
    }
    char *log_path = bench_format("%s/logs/model.log", run->dir);
    int log = log_path ? open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    so.file = path;
    so.argv = argv;
    so.stdio[0] = PF_SPAWN_DEVNULL;
    so.stdio[1] = fds[1];
    so.stdio[2] = log >= 0 ? log : PF_SPAWN_INHERIT;
    so.death_signal = SIGKILL;
    int pid = -1;
    rc = pf_spawn(&so, &pid, why);
    close(fds[1]);
    free(path);
    char out[4096];
    size_t len = 0;
    ssize_t got;
    while (
        rc == 0 && len < sizeof out - 1 &&
        ((got = read(fds[0], out + len, sizeof out - 1 - len)) > 0 || (got < 0 && errno == EINTR)))
        if (got > 0)
            len += (size_t)got;
    out[len] = '\0';
    close(fds[0]);
    if (log >= 0)
        close(log);
    int status = 0;
    if (rc == 0)
        bench_wait(pid, 600, &status);
    if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        char *line = log_path ? bench_last_error_line(log_path) : NULL;
        rc = bench_fail(why, -EINVAL, "the built-in model could not be made%s%s (%s)",
                        line ? ": " : "", line ? line : "", log_path ? log_path : "");
        free(line);
    }
    free(log_path);
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); rc == 0 && line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "model: ", 7) == 0 && model)
            *model = strdup(line + 7);
        else if (strncmp(line, "input: ", 7) == 0 && input)
            *input = strdup(line + 7);
    }
    return rc;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int bench_prepare_serving(bench_run *run, char **why)
{
    const tool_bench_options *b = &run->opts->bench;
    char *model_dir = bench_format("%s/model", run->dir);
    char *out_arg = bench_format("--out=%s", model_dir ? model_dir : "");
    char *arch_arg = bench_format("--arch=%s", b->arch ? b->arch : "resnet18");
    char *model = NULL, *input = NULL;
    int rc = model_dir && out_arg && arch_arg ? 0 : -ENOMEM;
    if (rc == 0 && !b->model) {
        char *args[] = {out_arg, arch_arg, NULL};
        bench_progress(run, "model", false, "making the built-in model (torchvision %s)",
                       b->arch ? b->arch : "resnet18");
        rc = builtin_files(run, args, &model, b->input ? NULL : &input, why);
        if (rc == 0 && model) {
            run->store = strdup(model_dir);
            run->model_file = model;
            model = NULL;
        }
    } else if (rc == 0) {
        char *real = realpath(b->model, NULL);
        struct stat st;
        if (!real || stat(real, &st) < 0 || !S_ISREG(st.st_mode)) {
            rc = bench_fail(why, -EINVAL, "--model %s: %s", b->model,
                            real ? "not a regular file" : strerror(errno));
        } else if (b->handler) {
            if (has_suffix(real, ".mar"))
                rc = bench_fail(why, -EINVAL,
                                "--handler: %s is an archive: its manifest names its handler",
                                b->model);
            char *model_arg = bench_format("--model=%s", real);
            char *handler_arg = bench_format("--handler=%s", b->handler);
            char *args[] = {out_arg, model_arg, handler_arg, NULL};
            if (rc == 0)
                rc = builtin_files(run, args, &model, b->input ? NULL : &input, why);
            free(model_arg);
            free(handler_arg);
            if (rc == 0 && model) {
                run->store = strdup(model_dir);
                run->model_file = model;
                model = NULL;
            }
        } else {
            char *slash = strrchr(real, '/');
            *slash = '\0';
            run->store = strdup(*real ? real : "/");
            run->model_file = strdup(slash + 1);
            if (!b->input) {
                char *args[] = {out_arg, "--input-only", NULL};
                rc = builtin_files(run, args, NULL, &input, why);
            }
        }
        free(real);
    }
    if (rc == 0 && !run->model_file)
        rc = bench_fail(why, -EINVAL, "no model was made");
    if (rc == 0) {
        /* NAME: the file's stem, made a valid model name. */
        char *name = strdup(run->model_file);
        if (name) {
            name[strcspn(name, ".")] = '\0';
            for (char *c = name; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
                    *c = '_';
        }
        run->model_name = name && *name ? name : strdup("model");
        if (name && !*name)
            free(name);
        run->input = b->input ? strdup(b->input) : input;
        input = NULL;
        if (!run->input)
            rc = bench_fail(why, -EINVAL, "no input was made");
    }
    if (rc == 0) {
        char *reason = NULL;
        rc = bench_read_file(run->input, 64u << 20, &run->body, &run->body_len, &reason);
        if (rc < 0 && reason)
            rc = bench_fail(why, rc, "--input %s", reason);
        free(reason);
    }
    if (rc == 0) {
        const char *in = run->input;
        run->content_type = strdup(has_suffix(in, ".jpg") || has_suffix(in, ".jpeg") ? "image/jpeg"
                                   : has_suffix(in, ".png")                          ? "image/png"
                                   : has_suffix(in, ".json") ? "application/json"
                                   : has_suffix(in, ".txt")  ? "text/plain"
                                                             : "application/octet-stream");
    }
    free(model);
    free(input);
    free(model_dir);
    free(out_arg);
    free(arch_arg);
    return rc;
}

/* The CPUs and physical cores the configurations share: the pinned plan's. */
static int plan_share(bench_run *run, pf_bench_report *rep, char **why)
{
    pf_launch_request req;
    tool_launch_request(run->opts, &req);
    req.topo = run->topo;
    req.require_live = true;
    req.warnings = NULL;
    req.plan.ninstances = run->workers;
    static char *const placeholder[] = {"pinfer.serve.worker", NULL};
    if (!run->opts->program) {
        req.program = placeholder;
        req.module = true;
    }
    pf_launch_spec *spec = NULL;
    int rc = pf_launch_spec_create(&req, &spec, why);
    if (rc < 0)
        return rc;
    size_t cap = 0;
    for (size_t i = 0; i < spec->plan->ninstances; i++)
        cap += spec->plan->instances[i].ncpus;
    run->cpus = calloc(cap ? cap : 1, sizeof *run->cpus);
    if (!run->cpus) {
        pf_launch_spec_free(spec);
        return -ENOMEM;
    }
    for (size_t i = 0; i < spec->plan->ninstances; i++)
        for (size_t c = 0; c < spec->plan->instances[i].ncpus; c++)
            run->cpus[run->ncpus++] = spec->plan->instances[i].cpus[c];
    /* Physical cores: distinct cores of those CPUs. */
    size_t ncpu = 0;
    const pf_cpu_info *cpus = pf_topology_cpus(run->topo, &ncpu);
    size_t cores = 0, allowed = 0;
    for (size_t i = 0; i < ncpu; i++) {
        allowed += cpus[i].allowed;
        bool ours = false, first = true;
        for (size_t k = 0; k < run->ncpus; k++)
            ours |= run->cpus[k] == cpus[i].cpu;
        for (size_t k = 0; ours && k < run->ncpus; k++) {
            const pf_cpu_info *other = pf_topology_cpu(run->topo, run->cpus[k]);
            if (other && other->core_first == cpus[i].core_first && other->cpu < cpus[i].cpu)
                first = false;
        }
        cores += ours && first;
    }
    run->cores = cores;
    run->restricted = run->ncpus < allowed;
    run->auto_allocator = spec->env->allocator;
    run->auto_omp = spec->env->omp;
    pf_launch_spec_to_json(spec, &rep->plan_json);
    pf_launch_spec_free(spec);
    return 0;
}

static char *machine_line(const pf_topology *topo)
{
    size_t n = 0, allowed = 0;
    const pf_cpu_info *cpus = pf_topology_cpus(topo, &n);
    for (size_t i = 0; i < n; i++)
        allowed += cpus[i].allowed;
    size_t nnodes = 0;
    pf_topology_nodes(topo, &nnodes);
    char model[256] = "";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *colon = strchr(line, ':');
            if (colon) {
                colon += 1 + (colon[1] == ' ');
                colon[strcspn(colon, "\n")] = '\0';
                snprintf(model, sizeof model, "%s", colon);
            }
            break;
        }
    if (f)
        fclose(f);
    size_t ns = pf_topology_nsockets(topo), nc = pf_topology_ncores(topo);
    return bench_format("%zu socket%s, %zu NUMA node%s, %zu cores, %zu CPUs (%zu usable)%s%s", ns,
                        ns == 1 ? "" : "s", nnodes, nnodes == 1 ? "" : "s", nc, n, allowed,
                        model[0] ? "; " : "", model);
}

/* ---- results ------------------------------------------------------------ */

/*
 * The configuration the ratios are to: `default` when it was measured
 * (the report's writers use the same rule); NULL otherwise, and no ratios.
 */
static const pf_bench_config *reference(const pf_bench_report *rep)
{
    for (size_t i = 0; i < rep->nconfigs; i++)
        if (!rep->configs[i].error && strcmp(rep->configs[i].name, "default") == 0)
            return &rep->configs[i];
    return NULL;
}

static char *verdict(const pf_bench_report *rep)
{
    const pf_bench_config *ref = reference(rep), *best = NULL;
    size_t failed = 0;
    for (size_t i = 0; i < rep->nconfigs; i++) {
        const pf_bench_config *c = &rep->configs[i];
        failed += c->error != NULL;
        if (!c->error && (!best || c->throughput > best->throughput))
            best = c;
    }
    char fails[96] = "";
    if (failed)
        snprintf(fails, sizeof fails, " (%zu configuration%s could not be measured)", failed,
                 failed == 1 ? "" : "s");
    if (!best)
        return bench_format("no configuration was measured%s", fails);
    if (!ref || !(ref->throughput > 0))
        return bench_format("default was not measured, so there are no ratios; the fastest: %s, "
                            "%.1f %s%s",
                            best->name, best->throughput, rep->unit, fails);
    double ratio = best->throughput / ref->throughput;
    if (best == ref || ratio < 1 + VERDICT_MARGIN)
        return bench_format("no configuration beats %s by more than %.0f%% on this machine "
                            "(best: %s, %.2fx)%s",
                            ref->name, VERDICT_MARGIN * 100, best->name, ratio, fails);
    char p99[64] = "";
    if (best->p99_ms > 0 && ref->p99_ms > 0)
        snprintf(p99, sizeof p99, " and %.2fx its p99 latency", best->p99_ms / ref->p99_ms);
    return bench_format("%s is the fastest: %.2fx the throughput of %s%s%s", best->name, ratio,
                        ref->name, p99, fails);
}

static void print_ms(double ms)
{
    if (ms < 0)
        printf(" %9s", "-");
    else
        printf(" %9.1f", ms);
}

static void print_table(const pf_bench_report *rep)
{
    const pf_bench_config *ref = reference(rep);
    printf("\npinfer bench: %s\n  on %s\n  load: %s\n", rep->target, rep->machine, rep->load);
    int width = 22; /* the name column: as wide as the longest name */
    for (size_t i = 0; i < rep->nconfigs; i++)
        if ((int)strlen(rep->configs[i].name) > width)
            width = (int)strlen(rep->configs[i].name);
    printf("\n%-*s %14s %7s %9s %9s %9s %9s %7s %7s %6s %7s %6s\n", width, "configuration",
           "throughput", "ratio", "p50 ms", "p90 ms", "p99 ms", "max ms", "p99 x", "failed",
           "CPU %", "migr/s", "local");
    for (size_t i = 0; i < rep->nconfigs; i++) {
        const pf_bench_config *c = &rep->configs[i];
        if (c->error) {
            printf("%-*s FAILED: %s\n", width, c->name, c->error);
            continue;
        }
        printf("%-*s %14.1f", width, c->name, c->throughput);
        if (ref && ref->throughput > 0)
            printf(" %6.2fx", c->throughput / ref->throughput);
        else
            printf(" %7s", "-");
        print_ms(c->p50_ms);
        print_ms(c->p90_ms);
        print_ms(c->p99_ms);
        print_ms(c->max_ms);
        if (ref && ref->p99_ms > 0 && c->p99_ms > 0)
            printf(" %6.2fx", c->p99_ms / ref->p99_ms);
        else
            printf(" %7s", "-");
        printf(" %7lld %6.0f", c->failed, c->cpu_pct);
        if (c->migrations_per_s >= 0)
            printf(" %7.1f", c->migrations_per_s);
        else
            printf(" %7s", "-");
        if (c->local_memory_pct >= 0)
            printf(" %5.0f%%\n", c->local_memory_pct);
        else
            printf(" %6s\n", "-");
    }
    if (ref)
        printf("(throughput in %s; ratios to default; p99 x: p99 latency as a multiple of "
               "default's)\n",
               rep->unit);
    else
        printf("(throughput in %s; no ratios: default was not measured)\n", rep->unit);
    for (size_t i = 0; i < rep->nconfigs; i++)
        for (size_t k = 0; k < rep->configs[i].nfindings; k++)
            printf("  %s: %s\n", rep->configs[i].name, rep->configs[i].findings[k]);
    printf("\nverdict: %s\n", rep->verdict);
}

static int write_text(const char *dir, const char *name, const char *text, char **why)
{
    char *path = bench_format("%s/%s", dir, name);
    FILE *f = path ? fopen(path, "w") : NULL;
    int rc = 0;
    if (!f || fputs(text, f) < 0)
        rc = bench_fail(why, -errno, "cannot write %s: %s", path ? path : name, strerror(errno));
    if (f && fclose(f) != 0 && rc == 0)
        rc = bench_fail(why, -errno, "cannot write %s: %s", path, strerror(errno));
    free(path);
    return rc;
}

static int write_report(const pf_bench_report *rep, const char *dir, char **json, char **why)
{
    char *csv = NULL, *html = NULL;
    int rc = pf_bench_report_to_json(rep, json);
    if (rc == 0)
        rc = pf_bench_report_to_csv(rep, &csv);
    if (rc == 0)
        rc = pf_bench_report_to_html(rep, &html);
    if (rc == 0)
        rc = write_text(dir, "bench.json", *json, why);
    if (rc == 0)
        rc = write_text(dir, "bench.csv", csv, why);
    if (rc == 0)
        rc = write_text(dir, "report.html", html, why);
    free(csv);
    free(html);
    return rc;
}

static int make_dirs(const char *path, char **why)
{
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    for (char *p = copy + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char was = *p;
            *p = '\0';
            if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
                int rc = bench_fail(why, -errno, "--report %s: cannot create %s: %s", path, copy,
                                    strerror(errno));
                free(copy);
                return rc;
            }
            *p = was;
            if (!was)
                break;
        }
    }
    free(copy);
    return 0;
}

/* ---- the command -------------------------------------------------------- */

static void run_free(bench_run *run)
{
    pf_topology_free(run->topo);
    free(run->self);
    free(run->python);
    free(run->dir);
    free(run->cpus);
    free(run->store);
    free(run->model_name);
    free(run->model_file);
    free(run->input);
    free(run->content_type);
    free(run->body);
}

static int cmd_bench(const tool_options *o)
{
    bench_run run = {.opts = o, .tty = isatty(2) == 1};
    pf_bench_report rep = {0};
    bench_config *cfgs = NULL;
    size_t ncfgs = 0;
    char *why = NULL, *json = NULL;
    int rc = parse_configs(o, &cfgs, &ncfgs, &why);
    int status = 0;
    if (rc == 0 && o->bench.metric) {
        regex_t re;
        int err = regcomp(&re, o->bench.metric, REG_EXTENDED);
        if (err != 0) {
            char msg[256];
            regerror(err, &re, msg, sizeof msg);
            rc = bench_fail(&why, -EINVAL, "--metric '%s': %s", o->bench.metric, msg);
        } else {
            if (re.re_nsub < 1)
                rc = bench_fail(&why, -EINVAL,
                                "--metric '%s': no group: put the number in ( ), as in "
                                "'([0-9.]+) inferences/s'",
                                o->bench.metric);
            regfree(&re);
        }
    }
    if (rc == 0)
        rc = pf_topology_load(NULL, &run.topo, &why);
    if (rc == 0) {
        run.self = realpath("/proc/self/exe", NULL);
        if (!run.self)
            rc = bench_fail(&why, -errno, "cannot find this executable: %s", strerror(errno));
    }
    size_t usable = run.topo ? bench_usable_cpus(run.topo, true) : 0;
    if (rc == 0) {
        if (o->serve.workers > 0)
            run.workers = o->serve.workers;
        else
            run.workers = (int)(usable < DEFAULT_WORKERS_MAX ? usable : DEFAULT_WORKERS_MAX);
        if (run.workers < 1)
            run.workers = 1;
        if ((size_t)run.workers > usable)
            rc = bench_fail(&why, -EINVAL,
                            "--workers %d: more than the %zu physical cores this process may "
                            "use",
                            run.workers, usable);
    }
    if (rc == 0)
        rc = plan_share(&run, &rep, &why);
    /* What the user named must exist before anything is made. */
    struct stat st;
    if (rc == 0 && o->bench.model) {
        int err = stat(o->bench.model, &st) < 0 ? errno : 0;
        if (err || !S_ISREG(st.st_mode))
            rc = bench_fail(&why, -EINVAL, "--model %s: %s", o->bench.model,
                            err ? strerror(err) : "not a regular file");
    }
    if (rc == 0 && o->bench.input && access(o->bench.input, R_OK) < 0)
        rc = bench_fail(&why, -EINVAL, "--input %s: %s", o->bench.input, strerror(errno));
    const char *py = o->serve.python ? o->serve.python : getenv("PINFER_PYTHON");
    run.python = py && *py ? strdup(py) : NULL;
    bool serving = !o->program;
    run.duration_s = o->duration_s > 0                   ? o->duration_s
                     : serving && o->bench.requests == 0 ? DEFAULT_DURATION_S
                                                         : 0;
    run.warmup_s = o->bench.warmup_s >= 0 ? o->bench.warmup_s : serving ? DEFAULT_WARMUP_S : 0;
    run.batch_size = o->serve.batch_size > 0 ? o->serve.batch_size : 1;
    run.max_batch_delay = o->serve.max_batch_delay >= 0 ? o->serve.max_batch_delay : 100;
    run.concurrency =
        o->bench.concurrency > 0 ? o->bench.concurrency : 2 * run.workers * run.batch_size;
    if (rc == 0) {
        if (o->bench.report_dir) {
            run.dir = strdup(o->bench.report_dir);
        } else {
            char stamp[32];
            time_t now = time(NULL);
            strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
            run.dir = bench_format("pinfer-bench-%s", stamp);
        }
        char *logs = run.dir ? bench_format("%s/logs", run.dir) : NULL;
        rc = logs ? make_dirs(logs, &why) : -ENOMEM;
        free(logs);
    }
    run.count = ncfgs;
    if (rc == 0 && serving)
        rc = bench_prepare_serving(&run, &why);
    if (rc < 0) {
        configs_free(cfgs, ncfgs);
        pf_bench_report_clear(&rep);
        run_free(&run);
        return tool_fail(o->json, rc, why);
    }

    /* The report's header. */
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    rep.started = strdup(stamp);
    rep.mode = strdup(serving ? "serve" : "program");
    rep.machine = machine_line(run.topo);
    char **words = calloc((size_t)o->argc + 2, sizeof *words);
    if (words) {
        words[0] = "pinfer";
        for (int i = 0; i < o->argc; i++)
            words[i + 1] = o->argv[i];
        rep.command = pf_shell_join(words);
        free(words);
    }
    if (serving) {
        rep.unit = strdup("req/s");
        rep.target =
            bench_format("%s (%s), %d workers, batch size %d", run.model_name,
                         o->bench.model ? o->bench.model : "built in", run.workers, run.batch_size);
        if (o->bench.ab)
            rep.load = bench_format("Apache Bench, -c %d -k, warm-up %.0f s, %s", run.concurrency,
                                    run.warmup_s, run.duration_s > 0 ? "timed" : "counted");
        else if (o->bench.rate > 0)
            rep.load = bench_format("built-in, open loop at %.1f req/s (up to %d connections), "
                                    "warm-up %.0f s",
                                    o->bench.rate, run.concurrency, run.warmup_s);
        else
            rep.load = bench_format("built-in, closed loop, %d keep-alive connections, warm-up "
                                    "%.0f s",
                                    run.concurrency, run.warmup_s);
    } else {
        rep.unit =
            o->bench.metric ? bench_metric_unit(o->bench.metric, "(--metric)") : strdup("runs/s");
        rep.target = pf_shell_join(o->program);
        rep.load = bench_format("%d instances, warm-up %.0f s%s", run.workers, run.warmup_s,
                                run.duration_s > 0 ? ", stopped at --duration" : "");
    }
    rep.configs = calloc(ncfgs, sizeof *rep.configs);
    if (!rep.configs) {
        configs_free(cfgs, ncfgs);
        pf_bench_report_clear(&rep);
        run_free(&run);
        return tool_fail(o->json, -ENOMEM, NULL);
    }
    for (size_t i = 0; i < ncfgs; i++) {
        pf_bench_config *out = &rep.configs[rep.nconfigs++];
        *out = (pf_bench_config){.workers = run.workers,
                                 .mean_ms = -1,
                                 .p50_ms = -1,
                                 .p90_ms = -1,
                                 .p99_ms = -1,
                                 .max_ms = -1,
                                 .migrations_per_s = -1,
                                 .cross_node_migrations_per_s = -1,
                                 .run_wait_pct = -1,
                                 .local_memory_pct = -1};
        out->name = strdup(cfgs[i].name);
        run.index = i;
        if (cfgs[i].error) {
            out->error = strdup(cfgs[i].error);
            fprintf(stderr, "pinfer: error: %s\n", cfgs[i].error);
            if (status == 0 || status == 1)
                status = EXIT_USAGE;
            continue;
        }
        out->description = describe(&run, &cfgs[i], &out->threads);
        if (serving)
            bench_serving(&run, &cfgs[i], out);
        else
            bench_program(&run, &cfgs[i], out);
        if (out->error) {
            bench_progress(&run, out->name, true, "FAILED: %s", out->error);
            if (status == 0)
                status = 1;
        } else if (serving) {
            bench_progress(&run, out->name, true, "%.1f req/s, p99 %.1f ms, %lld failed",
                           out->throughput, out->p99_ms, out->failed);
        } else {
            bench_progress(&run, out->name, true, "%.1f %s, %lld runs, %lld failed",
                           out->throughput, rep.unit, out->requests, out->failed);
        }
    }
    rep.verdict = verdict(&rep);
    rc = write_report(&rep, run.dir, &json, &why);
    if (rc < 0) {
        status = tool_fail(o->json, rc, why);
    } else if (o->json) {
        fputs(json, stdout);
    } else {
        print_table(&rep);
        printf("report: %s/report.html (and bench.json, bench.csv, logs/)\n", run.dir);
    }
    free(json);
    configs_free(cfgs, ncfgs);
    pf_bench_report_clear(&rep);
    run_free(&run);
    return status;
}

const tool_command_def tool_cmd_bench = {
    .name = "bench",
    .id = CMD_BENCH,
    .args = "[OPTIONS] [--model FILE] | [OPTIONS] -- PROGRAM [ARGS...]",
    .summary = "the case study's experiment: default, threads and pinned, measured",
    .about =
        "Serve a model with pinfer serve in each configuration (default: unbound, a thread\n"
        "per physical core in every worker; threads: unbound, each worker its share of the\n"
        "cores; pinned: pinfer's plan), drive the same load through each, sample the workers,\n"
        "and compare: a table with ratios to default, a verdict, and a report folder with\n"
        "bench.json, bench.csv and report.html.  Without --model, a built-in torchvision\n"
        "ResNet-18 with random weights.  With -- PROGRAM, N instances of PROGRAM instead,\n"
        "their throughput read from their output with --metric.  Exit 0 when every\n"
        "configuration was measured, 1 when one could not be, 2 for a usage error.",
    .run = cmd_bench,
};
