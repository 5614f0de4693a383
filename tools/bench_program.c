/*
 * bench_program.c - one configuration of `pinfer bench -- PROGRAM`: N
 * instances of the program started the way the configuration says (bound
 * by pinfer's plan, or unbound with a thread count), their output read line
 * by line for --metric, the machine and the instances sampled meanwhile.
 *
 * Each instance runs once; the program's own arguments decide how long (as
 * with `pinfer run`).  With --duration, instances still running at the end
 * of the measured phase are stopped (SIGTERM) and measured on what they
 * printed until then.  Throughput is the sum over the instances of the
 * mean of the values --metric matched after the warm-up, else completed
 * runs per second of the phase.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct instance {
    int pid;
    int out; /* its standard output; -1 once at its end */
    int log; /* its log file: standard output and error */
    char line[4096];
    size_t len;
    bool exited;
    int status;
    bool stopped; /* stopped by us at the end of the phase */
    double sum;   /* the metric's values after the warm-up */
    long long values;
} instance;

/* Take one line of an instance's output: to its log, and through the metric. */
static void take_line(const bench_run *run, const regex_t *metric, instance *in, double start)
{
    in->line[in->len] = '\0';
    if (in->log >= 0 && write(in->log, in->line, in->len) < 0) {
        /* a full disk loses the log, not the measurement */
    }
    if (in->log >= 0 && write(in->log, "\n", 1) < 0) {
    }
    regmatch_t m[2];
    if (metric && regexec(metric, in->line, 2, m, 0) == 0 && m[1].rm_so >= 0 &&
        bench_now() - start >= run->warmup_s) {
        char value[64];
        size_t n = (size_t)(m[1].rm_eo - m[1].rm_so);
        if (n < sizeof value) {
            memcpy(value, in->line + m[1].rm_so, n);
            value[n] = '\0';
            char *end;
            errno = 0;
            double v = strtod(value, &end);
            if (end != value && !*end && !errno) {
                in->sum += v;
                in->values++;
            }
        }
    }
    in->len = 0;
}

static void read_output(const bench_run *run, const regex_t *metric, instance *in, double start)
{
    char buf[8192];
    ssize_t got = read(in->out, buf, sizeof buf);
    if (got <= 0) {
        if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
            if (in->len > 0)
                take_line(run, metric, in, start);
            close(in->out);
            in->out = -1;
        }
        return;
    }
    for (ssize_t i = 0; i < got; i++) {
        if (buf[i] == '\n' || in->len == sizeof in->line - 1) {
            take_line(run, metric, in, start);
            if (buf[i] == '\n')
                continue;
        }
        in->line[in->len++] = buf[i];
    }
}

static char *describe(const bench_run *run, const bench_config *cfg, const pf_launch_spec *spec)
{
    int threads = cfg->base == BENCH_PINNED
                      ? (spec->plan->ninstances ? spec->plan->instances[0].threads : 0)
                      : spec->plan->instances[0].threads;
    (void)run;
    return bench_format("%d threads per instance%s", threads,
                        cfg->base == BENCH_PINNED && spec->bind_cpus
                            ? ", each instance bound to its cores"
                            : ", not bound");
}

void bench_program(bench_run *run, const bench_config *cfg, pf_bench_config *out)
{
    const tool_options *o = run->opts;
    pf_launch_request req;
    tool_launch_request(o, &req);
    req.topo = run->topo;
    req.require_live = true;
    req.allocator = cfg->allocator;
    req.omp = cfg->omp;
    req.warnings = NULL;
    if (cfg->base == BENCH_PINNED) {
        req.plan.ninstances = run->workers;
    } else {
        size_t share = cfg->base == BENCH_THREADS ? run->cores / (size_t)run->workers : run->cores;
        req.plan.ninstances = 1;
        req.plan.ncores_per_instance = share > 0 ? (int)share : 1;
        req.disable_numactl = req.disable_taskset = true;
    }
    pf_launch_spec *spec = NULL;
    char *why = NULL, *path = NULL;
    instance *ins = calloc((size_t)run->workers, sizeof *ins);
    regex_t metric;
    bool have_metric = false;
    char **unbound_env = NULL;
    if (!ins) {
        out->error = strdup("out of memory");
        return;
    }
    for (int i = 0; i < run->workers; i++)
        ins[i].out = ins[i].log = -1;
    if (pf_launch_spec_create(&req, &spec, &why) < 0 ||
        pf_launch_spec_resolve(spec, &path, &why) < 0) {
        out->error = why;
        why = NULL;
        goto done;
    }
    out->command = pf_shell_join(spec->argv);
    free(out->description);
    out->description = describe(run, cfg, spec);
    out->threads = spec->plan->instances[0].threads;
    if (o->bench.metric) {
        have_metric = regcomp(&metric, o->bench.metric, REG_EXTENDED) == 0;
    }
    /* Unbound: the plan's environment without the OpenMP affinity that would bind them. */
    size_t nenv = 0;
    while (spec->envp[0][nenv])
        nenv++;
    unbound_env = calloc(nenv + 1, sizeof *unbound_env);
    if (!unbound_env) {
        out->error = strdup("out of memory");
        goto done;
    }
    for (size_t k = 0, j = 0; k < nenv; k++)
        if (!pf_env_is_openmp_affinity(spec->envp[0][k]))
            unbound_env[j++] = spec->envp[0][k];
    bench_progress(run, cfg->name, false, "starting %d instances", run->workers);
    double start = bench_now();
    int started = 0;
    for (int i = 0; i < run->workers; i++) {
        const pf_instance *plan_in =
            cfg->base == BENCH_PINNED ? &spec->plan->instances[i] : &spec->plan->instances[0];
        char *log_path = bench_format("%s/logs/program-%s-%d.log", run->dir, cfg->name, i);
        ins[i].log = log_path ? open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
        free(log_path);
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0) {
            out->error = bench_format("cannot create a pipe: %s", strerror(errno));
            break;
        }
        char *const *envp = cfg->base == BENCH_PINNED ? spec->envp[i] : unbound_env;
        pf_spawn_options so;
        pf_spawn_options_init(&so);
        so.file = path;
        so.argv = spec->argv;
        so.envp = envp;
        so.stdio[0] = PF_SPAWN_DEVNULL;
        so.stdio[1] = fds[1];
        so.stdio[2] = ins[i].log >= 0 ? ins[i].log : PF_SPAWN_INHERIT;
        so.new_group = true;
        so.death_signal = SIGKILL;
        if (cfg->base == BENCH_PINNED && spec->bind_cpus) {
            so.cpus = plan_in->cpus;
            so.ncpus = plan_in->ncpus;
            if (spec->bind_memory) {
                so.nodes = plan_in->nodes;
                so.nnodes = plan_in->nnodes;
            }
        } else if (run->restricted) {
            so.cpus = run->cpus;
            so.ncpus = run->ncpus;
        }
        int rc = pf_spawn(&so, &ins[i].pid, &why);
        close(fds[1]);
        if (rc < 0) {
            close(fds[0]);
            out->error = why;
            why = NULL;
            break;
        }
        ins[i].out = fds[0];
        started++;
    }
    int *pids = calloc((size_t)started + 1, sizeof *pids);
    for (int i = 0; pids && i < started; i++)
        pids[i] = ins[i].pid;
    bench_check check;
    double window = run->duration_s > 0 ? run->duration_s * 0.8 : 2.0;
    bool checking = pids && started > 0 &&
                    bench_check_start(&check, run->topo, pids, (size_t)started, run->warmup_s + 0.3,
                                      window) == 0;
    free(pids);
    bench_cpu_sampler sampler = {0};
    double next = start + 0.5;
    double stop_at = run->duration_s > 0 ? start + run->warmup_s + run->duration_s : 0;
    bool stopping = false;
    for (;;) {
        struct pollfd p[started > 0 ? started : 1];
        int np = 0, map[started > 0 ? started : 1];
        for (int i = 0; i < started; i++)
            if (ins[i].out >= 0) {
                p[np] = (struct pollfd){ins[i].out, POLLIN, 0};
                map[np++] = i;
            }
        int running = 0;
        for (int i = 0; i < started; i++) {
            if (!ins[i].exited && ins[i].out < 0 && bench_wait(ins[i].pid, 0, &ins[i].status))
                ins[i].exited = true;
            running += !ins[i].exited;
        }
        if (running == 0)
            break;
        int n = poll(p, (nfds_t)np, 100);
        for (int k = 0; n > 0 && k < np; k++)
            if (p[k].revents)
                read_output(run, have_metric ? &metric : NULL, &ins[map[k]], start);
        double now = bench_now();
        if (np == 0 && n == 0) {
            /* Every output closed: reap. */
            for (int i = 0; i < started; i++)
                if (!ins[i].exited && bench_wait(ins[i].pid, 0.05, &ins[i].status))
                    ins[i].exited = true;
        }
        if (now >= next) {
            next += 0.5;
            double elapsed = now - start - run->warmup_s;
            if (elapsed >= 0)
                bench_cpu_map_sample(&sampler, &out->cpu_map, now);
            bench_progress(run, cfg->name, false, "%s%.0f s, %d of %d instances running",
                           elapsed < 0 ? "warm-up, " : "", elapsed < 0 ? -elapsed : elapsed,
                           running, started);
        }
        if (stop_at > 0 && now >= stop_at && !stopping) {
            stopping = true;
            for (int i = 0; i < started; i++)
                if (!ins[i].exited) {
                    ins[i].stopped = true;
                    kill(-ins[i].pid, SIGTERM);
                }
        }
        if (stopping && now >= stop_at + 10)
            for (int i = 0; i < started; i++)
                if (!ins[i].exited)
                    kill(-ins[i].pid, SIGKILL);
    }
    double end = bench_now();
    if (checking)
        bench_check_finish(&check, out);
    bench_cpu_sampler_free(&sampler);
    double elapsed = end - start - run->warmup_s;
    out->duration_s = elapsed > 0 ? elapsed : end - start;
    double throughput = 0;
    long long completed = 0, failed = 0;
    for (int i = 0; i < started; i++) {
        instance *in = &ins[i];
        bool ok = in->stopped || (WIFEXITED(in->status) && WEXITSTATUS(in->status) == 0);
        completed += ok && !in->stopped;
        failed += !ok;
        if (!ok && !out->error) {
            char *how = bench_describe_status(in->status);
            char *log_path = bench_format("%s/logs/program-%s-%d.log", run->dir, cfg->name, i);
            char *line = log_path ? bench_last_error_line(log_path) : NULL;
            out->error = bench_format("instance %d %s%s%s", i, how ? how : "failed",
                                      line ? ": " : "", line ? line : "");
            free(how);
            free(line);
            free(log_path);
        }
        if (o->bench.metric && in->values == 0 && !out->error)
            out->error =
                bench_format("instance %d printed nothing that --metric '%s' matches%s", i,
                             o->bench.metric, run->warmup_s > 0 ? " after the warm-up" : "");
        if (in->values > 0)
            throughput += in->sum / (double)in->values;
    }
    if (!o->bench.metric && completed == 0 && !out->error)
        out->error = bench_format("no instance completed a run within --duration %.0f s: give a "
                                  "longer --duration, or --metric to read what they print",
                                  run->duration_s);
    out->requests = completed;
    out->failed = failed;
    out->throughput = o->bench.metric ? throughput : (double)completed / out->duration_s;
    double cpu = 0;
    for (size_t i = 0; i < out->cpu_map.nsamples * out->cpu_map.ncpus; i++)
        cpu += out->cpu_map.busy[i];
    if (out->cpu_map.nsamples > 0)
        out->cpu_pct = cpu / (double)(out->cpu_map.nsamples * out->cpu_map.ncpus);
done:
    for (int i = 0; i < run->workers; i++) {
        if (ins[i].pid > 0 && !ins[i].exited)
            bench_stop(ins[i].pid, 5);
        if (ins[i].out >= 0)
            close(ins[i].out);
        if (ins[i].log >= 0)
            close(ins[i].log);
    }
    if (have_metric)
        regfree(&metric);
    free(unbound_env);
    free(ins);
    free(path);
    free(why);
    pf_launch_spec_free(spec);
}
