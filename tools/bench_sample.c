/*
 * bench_sample.c - what `pinfer bench` watches while a configuration runs:
 * each CPU's busy share over time (/proc/stat: the report's heat map), the
 * workers' threads through the check module (migrations, run-queue waits,
 * memory per node, findings), and the processes it starts and stops.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char *bench_format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    return text;
}

int bench_fail(char **why, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    free(*why);
    *why = text;
    return rc;
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_cpu_map_sample(bench_cpu_sampler *s, pf_bench_cpu_map *map, double now_s)
{
    pf_cpu_times *times = NULL;
    size_t n = 0;
    char *why = NULL;
    if (pf_cpu_times_read(NULL, &times, &n, &why) < 0) {
        free(why);
        return;
    }
    if (!s->last) {
        /* The first reading fixes the CPUs of the map: the columns of every row. */
        if (!map->cpus && n > 0 && (map->cpus = calloc(n, sizeof *map->cpus))) {
            for (size_t i = 0; i < n; i++)
                map->cpus[i] = times[i].cpu;
            map->ncpus = n;
        }
    } else if (map->cpus) {
        double *grown = realloc(map->busy, (map->nsamples + 1) * map->ncpus * sizeof *grown);
        if (grown) {
            map->busy = grown;
            double *row = grown + map->nsamples * map->ncpus;
            for (size_t c = 0; c < map->ncpus; c++) {
                row[c] = 0;
                const pf_cpu_times *now = NULL, *before = NULL;
                for (size_t i = 0; i < n && !now; i++)
                    if (times[i].cpu == map->cpus[c])
                        now = &times[i];
                for (size_t i = 0; i < s->nlast && !before; i++)
                    if (s->last[i].cpu == map->cpus[c])
                        before = &s->last[i];
                if (now && before && now->total > before->total && now->busy >= before->busy)
                    row[c] = 100.0 * (double)(now->busy - before->busy) /
                             (double)(now->total - before->total);
                if (row[c] > 100)
                    row[c] = 100;
            }
            /* The interval is the mean of the samples' spacing. */
            double span = now_s - s->last_s;
            map->interval_s =
                (map->interval_s * (double)map->nsamples + span) / (double)(map->nsamples + 1);
            map->nsamples++;
        }
    }
    free(s->last);
    s->last = times;
    s->nlast = n;
    s->last_s = now_s;
}

void bench_cpu_sampler_free(bench_cpu_sampler *s)
{
    free(s->last);
    s->last = NULL;
    s->nlast = 0;
}

static void *check_thread(void *arg)
{
    bench_check *c = arg;
    struct timespec delay = {(time_t)c->delay_s,
                             (long)((c->delay_s - (double)(time_t)c->delay_s) * 1e9)};
    while (nanosleep(&delay, &delay) < 0 && errno == EINTR) {
    }
    pf_check_options opts;
    pf_check_options_init(&opts);
    opts.duration_s = c->window_s;
    if (opts.interval_s > opts.duration_s)
        opts.interval_s = opts.duration_s;
    c->rc = pf_check_run(c->topo, c->pids, c->npids, &opts, &c->report, &c->why);
    return NULL;
}

int bench_check_start(bench_check *c, const pf_topology *topo, const int *pids, size_t npids,
                      double delay_s, double window_s)
{
    memset(c, 0, sizeof *c);
    if (npids == 0)
        return -ENOENT;
    c->pids = malloc(npids * sizeof *c->pids);
    if (!c->pids)
        return -ENOMEM;
    memcpy(c->pids, pids, npids * sizeof *pids);
    c->npids = npids;
    c->topo = topo;
    c->delay_s = delay_s > 0 ? delay_s : 0;
    c->window_s = window_s >= 0.5 ? window_s : 0.5;
    int rc = pthread_create(&c->thread, NULL, check_thread, c);
    if (rc != 0) {
        free(c->pids);
        c->pids = NULL;
        return -rc;
    }
    c->started = true;
    return 0;
}

/* Fill the configuration's figures from a check report over its window. */
static void figures_of(const pf_check_report *r, pf_bench_config *out)
{
    double window = r->window_s > 0 ? r->window_s : 1;
    long long migrations = 0, cross_node = 0;
    double wait_sum = 0, local_weighted = 0, memory_total = 0;
    size_t waits = 0;
    for (size_t p = 0; p < r->nprocesses; p++) {
        const pf_check_process *proc = &r->processes[p];
        for (size_t t = 0; t < proc->nthreads; t++) {
            const pf_check_thread *th = &proc->threads[t];
            if (!th->busy)
                continue;
            migrations += th->migrations > 0 ? th->migrations : 0;
            cross_node += th->cross_node_migrations > 0 ? th->cross_node_migrations : 0;
            if (th->run_wait_pct >= 0) {
                wait_sum += th->run_wait_pct;
                waits++;
            }
        }
        if (proc->local_memory_pct >= 0 && proc->memory_by_node) {
            double total = 0;
            for (size_t k = 0; k < proc->nnodes; k++)
                total += (double)proc->memory_by_node[k];
            local_weighted += proc->local_memory_pct * total;
            memory_total += total;
        }
    }
    out->migrations_per_s = (double)migrations / window;
    out->cross_node_migrations_per_s = (double)cross_node / window;
    out->run_wait_pct = waits ? wait_sum / (double)waits : -1;
    out->local_memory_pct = memory_total > 0 ? local_weighted / memory_total : -1;
    out->smt_shared = 0;
    out->findings = calloc(r->nfindings + 1, sizeof *out->findings);
    for (size_t i = 0; out->findings && i < r->nfindings; i++) {
        const pf_check_finding *f = &r->findings[i];
        out->smt_shared += strcmp(f->code, "SMT_SHARED") == 0;
        char *line = bench_format("%s (process %d): %s", f->code, f->pid, f->message);
        if (line)
            out->findings[out->nfindings++] = line;
    }
}

void bench_check_finish(bench_check *c, pf_bench_config *out)
{
    if (c->started) {
        pthread_join(c->thread, NULL);
        c->started = false;
        if (c->rc == 0 && c->report)
            figures_of(c->report, out);
    }
    pf_check_report_free(c->report);
    c->report = NULL;
    free(c->why);
    c->why = NULL;
    free(c->pids);
    c->pids = NULL;
}

static int int_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int bench_children(int pid, int **pids, size_t *n)
{
    *pids = NULL;
    *n = 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    size_t cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char file[320];
        snprintf(file, sizeof file, "/proc/%d/task/%.32s/children", pid, e->d_name);
        FILE *f = fopen(file, "r");
        if (!f)
            continue;
        long child;
        while (rc == 0 && fscanf(f, "%ld", &child) == 1) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                int *grown = realloc(*pids, cap * sizeof *grown);
                if (!grown) {
                    rc = -ENOMEM;
                    break;
                }
                *pids = grown;
            }
            (*pids)[(*n)++] = (int)child;
        }
        fclose(f);
    }
    closedir(d);
    if (rc < 0) {
        free(*pids);
        *pids = NULL;
        *n = 0;
        return rc;
    }
    qsort(*pids, *n, sizeof **pids, int_cmp);
    return 0;
}

bool bench_wait(int pid, double timeout_s, int *status)
{
    double deadline = bench_now() + timeout_s;
    for (;;) {
        int st = 0;
        pid_t got = waitpid(pid, &st, WNOHANG);
        if (got == pid) {
            *status = st;
            return true;
        }
        if (got < 0 && errno != EINTR) {
            *status = 0;
            return true; /* not ours, or already reaped */
        }
        if (bench_now() >= deadline)
            return false;
        struct timespec nap = {0, 20 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

int bench_stop(int pid, double grace_s)
{
    int status = 0;
    if (bench_wait(pid, 0, &status))
        return status;
    kill(pid, SIGTERM);
    if (!bench_wait(pid, grace_s, &status)) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        bench_wait(pid, 30, &status);
    }
    /* Whatever the group left behind. */
    kill(-pid, SIGKILL);
    return status;
}

char *bench_describe_status(int status)
{
    if (WIFSIGNALED(status))
        return bench_format("was killed by signal %d (%s)", WTERMSIG(status),
                            strsignal(WTERMSIG(status)));
    return bench_format("exited with status %d", WEXITSTATUS(status));
}

char *bench_last_error_line(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char line[1024], last[1024] = "", error[1024] = "";
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        snprintf(last, sizeof last, "%s", line);
        if (strstr(line, "error") || strstr(line, "Error"))
            snprintf(error, sizeof error, "%s", line);
    }
    fclose(f);
    const char *pick = error[0] ? error : last;
    return pick[0] ? pf_printable(pick) : NULL;
}

/* The CDF's points: every 5% to 90, every 1% to 99, then the tail. */
static const double CDF_PCTS[] = {0,  5,  10, 15, 20, 25, 30,   35,   40,    45, 50,
                                  55, 60, 65, 70, 75, 80, 85,   90,   91,    92, 93,
                                  94, 95, 96, 97, 98, 99, 99.5, 99.9, 99.99, 100};

void bench_fill_latency(pf_bench_config *out, const pf_histogram *us)
{
    if (pf_histogram_count(us) == 0)
        return;
    out->mean_ms = pf_histogram_mean(us) / 1000.0;
    out->p50_ms = (double)pf_histogram_percentile(us, 50) / 1000.0;
    out->p90_ms = (double)pf_histogram_percentile(us, 90) / 1000.0;
    out->p99_ms = (double)pf_histogram_percentile(us, 99) / 1000.0;
    out->max_ms = (double)pf_histogram_max(us) / 1000.0;
    size_t n = sizeof CDF_PCTS / sizeof *CDF_PCTS;
    out->cdf = calloc(n, sizeof *out->cdf);
    if (!out->cdf)
        return;
    for (size_t i = 0; i < n; i++) {
        out->cdf[i].pct = CDF_PCTS[i];
        out->cdf[i].ms = (double)(CDF_PCTS[i] == 0 ? pf_histogram_min(us)
                                                   : pf_histogram_percentile(us, CDF_PCTS[i])) /
                         1000.0;
    }
    out->ncdf = n;
}

void bench_config_clear(pf_bench_config *c)
{
    free(c->name);
    free(c->description);
    free(c->command);
    free(c->error);
    free(c->cdf);
    for (size_t i = 0; i < c->nfindings; i++)
        free(c->findings[i]);
    free(c->findings);
    free(c->cpu_map.cpus);
    free(c->cpu_map.busy);
    memset(c, 0, sizeof *c);
}

char *bench_metric_unit(const char *regex, const char *fallback)
{
    const char *close = strchr(regex, ')');
    if (!close)
        return strdup(fallback);
    const char *start = close + 1;
    while (*start == ' ')
        start++;
    size_t len = strlen(start);
    while (len > 0 && start[len - 1] == ' ')
        len--;
    bool plain = len > 0 && len < 40;
    for (size_t i = 0; plain && i < len; i++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/ _%-",
                       start[i]) != NULL;
    return plain ? bench_format("%.*s", (int)len, start) : strdup(fallback);
}

char **bench_env_with(char *const *add)
{
    extern char **environ;
    size_t n = 0, extra = 0;
    while (environ[n])
        n++;
    while (add && add[extra])
        extra++;
    char **envp = calloc(n + extra + 1, sizeof *envp);
    size_t k = 0;
    for (size_t i = 0; envp && i < n; i++) {
        bool replaced = false;
        for (size_t e = 0; e < extra && !replaced; e++) {
            size_t len = strcspn(add[e], "=");
            replaced = strncmp(environ[i], add[e], len + 1) == 0;
        }
        if (!replaced)
            envp[k++] = environ[i];
    }
    for (size_t e = 0; envp && e < extra; e++)
        envp[k++] = add[e];
    return envp;
}

size_t bench_usable_cpus(const pf_topology *topo, bool physical)
{
    size_t n = 0, count = 0;
    const pf_cpu_info *cpus = pf_topology_cpus(topo, &n);
    for (size_t i = 0; i < n; i++) {
        if (!cpus[i].allowed)
            continue;
        bool first = true;
        for (size_t k = 0; physical && k < i; k++)
            if (cpus[k].allowed && cpus[k].core_first == cpus[i].core_first &&
                cpus[k].socket == cpus[i].socket)
                first = false;
        count += first;
    }
    return count;
}

int bench_read_file(const char *path, size_t max, char **text, size_t *len, char **why)
{
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return bench_fail(why, -errno, "%s: %s", path, strerror(errno));
    size_t cap = 4096;
    char *data = malloc(cap + 1);
    size_t got;
    int rc = 0;
    while (data && (got = fread(data + *len, 1, cap - *len, f)) > 0) {
        *len += got;
        if (*len < cap)
            continue;
        if (cap >= max) {
            rc = bench_fail(why, -EINVAL, "%s: larger than %zu MiB", path, max >> 20);
            break;
        }
        char *grown = realloc(data, cap * 2 + 1);
        if (!grown)
            break;
        data = grown;
        cap *= 2;
    }
    fclose(f);
    if (rc == 0 && (!data || *len == cap))
        rc = -ENOMEM;
    if (rc < 0) {
        free(data);
        *len = 0;
        return rc;
    }
    data[*len] = '\0';
    *text = data;
    return 0;
}
