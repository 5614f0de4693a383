/*
 * bench_serving.c - one configuration of `pinfer bench` in serving mode:
 * start `pinfer serve` (this executable) with the configuration's pinning,
 * threads, allocator and OpenMP runtime; wait for `ready`; drive the load
 * (the built-in generator, or Apache Bench as TorchServe's benchmark runs
 * it) through a warm-up and the measured phase while sampling the machine's
 * CPUs and the workers' threads; stop the server.  Whatever fails - the
 * server does not start, dies under load, answers nothing but errors - is
 * the configuration's error; the run goes on with the next.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long a server may take to load its models before the configuration fails. */
#define STARTUP_TIMEOUT_S 300.0
/* How long a server is given to drain and stop. */
#define STOP_GRACE_S 30.0

static const char *const PINNING_WORDS[] = {"none", "threads", "pinned"};
static const char *const ALLOCATOR_WORDS[] = {"auto", "default", "tcmalloc", "jemalloc"};
static const char *const OMP_WORDS[] = {"auto", "default", "intel"};

/* A growable argv. */
typedef struct words {
    char **v;
    size_t len, cap;
} words;

static void add(words *w, const char *word)
{
    if (w->len + 2 > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 32;
        char **grown = realloc(w->v, cap * sizeof *grown);
        if (!grown)
            return;
        w->v = grown;
        w->cap = cap;
    }
    w->v[w->len] = strdup(word);
    if (w->v[w->len])
        w->len++;
    w->v[w->len] = NULL;
}

static void words_free(words *w)
{
    for (size_t i = 0; i < w->len; i++)
        free(w->v[i]);
    free(w->v);
}

static void server_argv(const bench_run *run, const bench_config *cfg, words *w)
{
    char number[32];
    char *models = bench_format("%s=%s", run->model_name, run->model_file);
    add(w, run->self);
    add(w, "serve");
    add(w, "--model-store");
    add(w, run->store);
    add(w, "--models");
    add(w, models ? models : "?");
    free(models);
    static const char *const listeners[] = {"--inference-address", "--management-address",
                                            "--metrics-address"};
    for (size_t i = 0; i < 3; i++) {
        add(w, listeners[i]);
        add(w, "http://127.0.0.1:0");
    }
    add(w, "--workers");
    snprintf(number, sizeof number, "%d", run->workers);
    add(w, number);
    add(w, "--pinning");
    add(w, PINNING_WORDS[cfg->base]);
    add(w, "--batch-size");
    snprintf(number, sizeof number, "%d", run->batch_size);
    add(w, number);
    add(w, "--max-batch-delay");
    snprintf(number, sizeof number, "%d", run->max_batch_delay);
    add(w, number);
    add(w, "--memory-allocator");
    add(w, ALLOCATOR_WORDS[cfg->allocator]);
    add(w, "--omp-runtime");
    add(w, OMP_WORDS[cfg->omp]);
    if (run->python) {
        add(w, "--python");
        add(w, run->python);
    }
    if (cfg->serve_args) {
        for (size_t i = 0; cfg->serve_args[i]; i++)
            add(w, cfg->serve_args[i]);
    } else if (cfg->base == BENCH_PINNED) {
        char **plan = NULL;
        if (tool_bench_plan_args(run->opts, &plan) == 0)
            for (size_t i = 0; plan[i]; i++)
                add(w, plan[i]);
        free(plan);
    }
}

/* A started server: its pid, its stdout, where it answers. */
typedef struct server {
    int pid;
    int out; /* its standard output (kept open: it may still write) */
    char url[256];
    bool exited; /* reaped; status holds its wait status */
    int status;
} server;

/*
 * Read the server's standard output until `ready`: the inference address
 * comes first.  0, or -1 with *why (the server exited, or took too long).
 */
static int await_ready(server *s, const char *log_path, char **why)
{
    char buf[4096];
    size_t len = 0;
    double deadline = bench_now() + STARTUP_TIMEOUT_S;
    for (;;) {
        char *nl;
        while ((nl = memchr(buf, '\n', len))) {
            *nl = '\0';
            const char *prefix = "inference: ";
            if (strncmp(buf, prefix, strlen(prefix)) == 0)
                snprintf(s->url, sizeof s->url, "%.200s", buf + strlen(prefix));
            if (strcmp(buf, "ready") == 0)
                return s->url[0] ? 0 : -1;
            size_t used = (size_t)(nl - buf) + 1;
            memmove(buf, nl + 1, len - used);
            len -= used;
        }
        double left = deadline - bench_now();
        if (left <= 0) {
            *why = bench_format("pinfer serve was not ready after %.0f s (its log: %s)",
                                STARTUP_TIMEOUT_S, log_path);
            return -1;
        }
        struct pollfd p = {s->out, POLLIN, 0};
        int n = poll(&p, 1, left > 1 ? 1000 : (int)(left * 1000) + 1);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0) {
            ssize_t got = read(s->out, buf + len, sizeof buf - 1 - len);
            if (got > 0) {
                len += (size_t)got;
                if (len == sizeof buf - 1)
                    len = 0; /* a line that long is not one of ours */
                continue;
            }
            if (got == 0) {
                /* End of output: the server exited during start-up. */
                s->exited = bench_wait(s->pid, 10, &s->status);
                char *how = s->exited ? bench_describe_status(s->status) : strdup("closed");
                char *line = bench_last_error_line(log_path);
                *why = bench_format("pinfer serve %s during start-up%s%s (its log: %s)",
                                    how ? how : "stopped", line ? ": " : "", line ? line : "",
                                    log_path);
                free(how);
                free(line);
                return -1;
            }
        }
    }
}

/* The progress callback's state. */
typedef struct watch {
    bench_run *run;
    const char *name;
    server *srv;
    bench_cpu_sampler sampler;
    pf_bench_cpu_map *map;
    bool died; /* the server exited under load */
} watch;

static bool server_alive(watch *w)
{
    if (!w->srv->exited && bench_wait(w->srv->pid, 0, &w->srv->status)) {
        w->srv->exited = true;
        w->died = true;
    }
    return !w->srv->exited;
}

static bool on_progress(const pf_load_progress *p, void *ctx)
{
    watch *w = ctx;
    if (p->elapsed_s < 0) {
        bench_progress(w->run, w->name, false, "warm-up, %.0f s left", -p->elapsed_s);
    } else {
        bench_cpu_map_sample(&w->sampler, w->map, bench_now());
        if (w->run->duration_s > 0)
            bench_progress(w->run, w->name, false, "%.0f/%.0f s, %lld requests, %.1f req/s",
                           p->elapsed_s, w->run->duration_s, p->completed, p->rate);
        else
            bench_progress(w->run, w->name, false, "%.0f s, %lld/%lld requests, %.1f req/s",
                           p->elapsed_s, p->completed, w->run->opts->bench.requests, p->rate);
    }
    return server_alive(w);
}

static void measure_builtin(watch *w, pf_bench_config *out)
{
    bench_run *run = w->run;
    char *url = bench_format("%s/predictions/%s", w->srv->url, run->model_name);
    pf_load_options lo;
    pf_load_options_init(&lo);
    lo.url = url;
    lo.method = "POST";
    lo.body = run->body;
    lo.body_len = run->body_len;
    lo.content_type = run->content_type;
    lo.connections = run->concurrency;
    lo.rate = run->opts->bench.rate;
    lo.warmup_s = run->warmup_s;
    lo.duration_s = run->duration_s;
    lo.requests = run->opts->bench.requests;
    lo.progress = on_progress;
    lo.ctx = w;
    pf_load_result *res = NULL;
    char *why = NULL;
    if (!url) {
        out->error = strdup("out of memory");
    } else if (pf_load_run(&lo, &res, &why) < 0) {
        out->error = why;
        why = NULL;
    } else {
        out->duration_s = res->elapsed_s;
        out->requests = res->completed;
        out->failed = res->completed - res->ok + res->errors;
        out->throughput = res->throughput;
        bench_fill_latency(out, res->latency);
        if (res->ok == 0 && !w->died)
            out->error = bench_format("no request succeeded (%lld answers: %lld 4xx, %lld 5xx; "
                                      "%lld errors%s%s): is --input what the model takes?",
                                      res->completed, res->status_4xx, res->status_5xx, res->errors,
                                      res->first_error ? "; first: " : "",
                                      res->first_error ? res->first_error : "");
    }
    pf_load_result_free(res);
    free(why);
    free(url);
}

/* Run ab to its end, sampling meanwhile; its output in *text.  The exit status, or -1. */
static int run_ab(watch *w, char *const *argv, bool measured, char **text, size_t *len)
{
    int fds[2];
    *text = NULL;
    *len = 0;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    so.file = argv[0];
    so.argv = argv;
    so.stdio[0] = PF_SPAWN_DEVNULL;
    so.stdio[1] = fds[1];
    so.stdio[2] = fds[1];
    so.new_group = true;
    so.death_signal = SIGKILL;
    char *path = NULL, *why = NULL;
    int pid = -1;
    int rc = pf_find_program("ab", NULL, &path);
    if (rc == 0) {
        so.file = path;
        rc = pf_spawn(&so, &pid, &why);
    }
    close(fds[1]);
    free(why);
    free(path);
    if (rc < 0) {
        close(fds[0]);
        return -1;
    }
    size_t cap = 0;
    double start = bench_now(), next = start + 0.5;
    for (;;) {
        struct pollfd p = {fds[0], POLLIN, 0};
        int n = poll(&p, 1, 100);
        if (n > 0) {
            if (*len + 4096 > cap) {
                cap = cap ? cap * 2 : 65536;
                char *grown = realloc(*text, cap + 1);
                if (!grown)
                    break;
                *text = grown;
            }
            ssize_t got = read(fds[0], *text + *len, cap - *len);
            if (got <= 0)
                break;
            *len += (size_t)got;
        }
        if (bench_now() >= next) {
            next += 0.5;
            if (measured)
                bench_cpu_map_sample(&w->sampler, w->map, bench_now());
            bench_progress(w->run, w->name, false, "%s: ab, %.0f s",
                           measured ? "measuring" : "warm-up", bench_now() - start);
            if (!server_alive(w))
                kill(-pid, SIGTERM);
        }
    }
    close(fds[0]);
    if (*text)
        (*text)[*len] = '\0';
    int status = 0;
    bench_wait(pid, 60, &status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void measure_ab(watch *w, pf_bench_config *out)
{
    bench_run *run = w->run;
    char conc[32], count[32], seconds[32];
    snprintf(conc, sizeof conc, "%d", run->concurrency);
    char *url = bench_format("%s/predictions/%s", w->srv->url, run->model_name);
    long long requests = run->opts->bench.requests;
    /* ab allocates a record per request of -n: with -t, enough for the time, not more. */
    snprintf(count, sizeof count, "%lld", requests > 0 ? requests : 500000LL);
    char *argv[16];
    size_t n = 0;
    argv[n++] = "ab";
    argv[n++] = "-k";
    argv[n++] = "-c";
    argv[n++] = conc;
    argv[n++] = "-p";
    argv[n++] = run->input;
    argv[n++] = "-T";
    argv[n++] = run->content_type;
    size_t timed = n;
    argv[n++] = "-t";
    argv[n++] = seconds;
    argv[n++] = "-n";
    argv[n++] = count;
    argv[n++] = url;
    argv[n] = NULL;
    char *text = NULL;
    size_t len = 0;
    if (run->warmup_s > 0) {
        snprintf(seconds, sizeof seconds, "%.0f", run->warmup_s < 1 ? 1 : run->warmup_s);
        run_ab(w, argv, false, &text, &len);
        free(text);
    }
    if (run->duration_s > 0) {
        snprintf(seconds, sizeof seconds, "%.0f", run->duration_s < 1 ? 1 : run->duration_s);
    } else {
        /* -n alone: drop -t and its value. */
        memmove(&argv[timed], &argv[timed + 2], (n - timed - 1) * sizeof *argv);
        n -= 2;
    }
    int status = run_ab(w, argv, true, &text, &len);
    pf_ab_result ab;
    char *why = NULL;
    if (w->died) {
        /* the caller says so */
    } else if (!text || pf_ab_parse(text, len, &ab, &why) < 0) {
        char *line = NULL;
        if (text) {
            /* ab's own complaint is its last line. */
            char *end = text + len;
            while (end > text && (end[-1] == '\n' || end[-1] == '\r'))
                *--end = '\0';
            char *start = strrchr(text, '\n');
            line = pf_printable(start ? start + 1 : text);
        }
        out->error =
            bench_format("ab failed (status %d)%s%s", status, line ? ": " : "", line ? line : "");
        free(line);
    } else {
        long long failed = (ab.failed > 0 ? ab.failed : 0) + ab.non_2xx;
        out->duration_s = ab.time_taken_s;
        out->requests = ab.complete;
        out->failed = failed;
        out->throughput =
            ab.time_taken_s > 0 ? (double)(ab.complete - failed) / ab.time_taken_s : 0;
        out->mean_ms = ab.mean_ms;
        out->p50_ms = ab.p50_ms;
        out->p90_ms = ab.p90_ms;
        out->p99_ms = ab.p99_ms;
        out->max_ms = ab.p100_ms;
        const double pcts[] = {50, 66, 75, 80, 90, 95, 98, 99, 100};
        const double ms[] = {ab.p50_ms, ab.p66_ms, ab.p75_ms, ab.p80_ms, ab.p90_ms,
                             ab.p95_ms, ab.p98_ms, ab.p99_ms, ab.p100_ms};
        out->cdf = calloc(9, sizeof *out->cdf);
        for (size_t i = 0; out->cdf && i < 9; i++)
            if (ms[i] >= 0)
                out->cdf[out->ncdf++] = (pf_bench_cdf_point){pcts[i], ms[i]};
        if (ab.complete - failed <= 0)
            out->error = bench_format("no request succeeded (%lld of %lld failed): is --input "
                                      "what the model takes?",
                                      failed, ab.complete);
    }
    free(why);
    free(text);
    free(url);
}

void bench_serving(bench_run *run, const bench_config *cfg, pf_bench_config *out)
{
    words argv = {0};
    server_argv(run, cfg, &argv);
    out->command = argv.v ? pf_shell_join(argv.v) : NULL;
    char *log_path = bench_format("%s/logs/serve-%s.log", run->dir, cfg->name);
    int log = log_path ? open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    int fds[2] = {-1, -1};
    server srv = {.pid = -1, .out = -1};
    char *why = NULL;
    if (!argv.v || log < 0 || pipe2(fds, O_CLOEXEC) < 0) {
        out->error = bench_format("cannot start pinfer serve: %s (%s)", strerror(errno),
                                  log_path ? log_path : "?");
        goto done;
    }
    bench_progress(run, cfg->name, false, "starting pinfer serve (%d workers)", run->workers);
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    so.file = run->self;
    so.argv = argv.v;
    so.stdio[0] = PF_SPAWN_DEVNULL;
    so.stdio[1] = fds[1];
    so.stdio[2] = log;
    so.new_group = true;
    so.death_signal = SIGKILL;
    /* This process's environment, the configuration's variables replacing its own. */
    char **envp = cfg->env && cfg->env[0] ? bench_env_with(cfg->env) : NULL;
    so.envp = envp;
    if (run->restricted && cfg->base != BENCH_PINNED) {
        so.cpus = run->cpus;
        so.ncpus = run->ncpus;
    }
    int rc = pf_spawn(&so, &srv.pid, &why);
    free(envp);
    close(fds[1]);
    srv.out = fds[0];
    if (rc < 0) {
        out->error = why;
        why = NULL;
        goto done;
    }
    if (await_ready(&srv, log_path, &why) < 0) {
        out->error = why ? why : strdup("pinfer serve did not start");
        why = NULL;
        goto done;
    }
    int *workers = NULL;
    size_t nworkers = 0;
    bench_children(srv.pid, &workers, &nworkers);
    bench_check check;
    double window = run->duration_s > 0 ? run->duration_s * 0.8 : 2.0;
    bool checking =
        bench_check_start(&check, run->topo, workers, nworkers, run->warmup_s + 0.2, window) == 0;
    free(workers);
    watch w = {.run = run, .name = cfg->name, .srv = &srv, .map = &out->cpu_map};
    if (run->opts->bench.ab)
        measure_ab(&w, out);
    else
        measure_builtin(&w, out);
    if (checking)
        bench_check_finish(&check, out);
    bench_cpu_sampler_free(&w.sampler);
    double cpu = 0;
    for (size_t i = 0; i < out->cpu_map.nsamples * out->cpu_map.ncpus; i++)
        cpu += out->cpu_map.busy[i];
    if (out->cpu_map.nsamples > 0)
        out->cpu_pct = cpu / (double)(out->cpu_map.nsamples * out->cpu_map.ncpus);
    if (w.died) {
        char *how = bench_describe_status(srv.status);
        char *line = bench_last_error_line(log_path);
        free(out->error);
        out->error =
            bench_format("pinfer serve %s during the run, after %lld requests%s%s",
                         how ? how : "stopped", out->requests, line ? ": " : "", line ? line : "");
        free(how);
        free(line);
    }
done:
    if (srv.pid > 0 && !srv.exited) {
        bench_progress(run, cfg->name, false, "stopping pinfer serve");
        int status = bench_stop(srv.pid, STOP_GRACE_S);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            /* Measured all the same: said, the figures kept. */
            char *how = bench_describe_status(status);
            fprintf(stderr,
                    "pinfer: warning: bench: %s: pinfer serve %s when stopped (its log: %s)\n",
                    cfg->name, how ? how : "failed", log_path ? log_path : "?");
            free(how);
        }
    }
    if (srv.out >= 0)
        close(srv.out);
    if (log >= 0)
        close(log);
    free(why);
    free(log_path);
    words_free(&argv);
}
