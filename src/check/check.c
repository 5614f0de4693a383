/*
 * check.c - pf_check_run(): sample processes over a window from /proc and
 * judge their placement against the live topology (docs/check.md): the
 * findings OVERSUBSCRIBED, FLOATING, SMT_SHARED, OVERLAP, CROSS_NODE,
 * REMOTE_MEMORY and OVER_QUOTA, each with its evidence and one line of
 * advice, and the JSON of `pinfer check --json`.
 */
#include "base/json.h"
#include "proc/proc.h"
#include "topology/topology.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUSY_PCT 20.0
#define WAIT_PCT 10.0
#define LOCAL_PCT 90.0

void pf_check_options_init(pf_check_options *o)
{
    memset(o, 0, sizeof *o);
    o->duration_s = 2.0;
    o->interval_s = 0.1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What the samples saw of one thread. */
typedef struct track {
    int pid, tid;
    pf__ivec seen;
    int last_cpu;
    long long changes, node_changes, socket_changes;
} track;

typedef struct tracks {
    track *v;
    size_t len, cap;
} tracks;

static track *find_track(tracks *t, int pid, int tid, bool create)
{
    for (size_t i = 0; i < t->len; i++)
        if (t->v[i].tid == tid && t->v[i].pid == pid)
            return &t->v[i];
    if (!create)
        return NULL;
    if (t->len == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        track *g = realloc(t->v, cap * sizeof *g);
        if (!g)
            return NULL;
        t->v = g;
        t->cap = cap;
    }
    track *k = &t->v[t->len++];
    memset(k, 0, sizeof *k);
    k->pid = pid;
    k->tid = tid;
    k->last_cpu = -1;
    return k;
}

static void see(const pf_topology *topo, track *k, int cpu)
{
    if (cpu < 0)
        return;
    if (!pf__sorted_has(k->seen.v, k->seen.len, cpu)) {
        pf__ivec_push(&k->seen, cpu);
        pf__ivec_sort_unique(&k->seen);
    }
    if (k->last_cpu >= 0 && k->last_cpu != cpu) {
        k->changes++;
        const pf_cpu_info *a = pf_topology_cpu(topo, k->last_cpu), *b = pf_topology_cpu(topo, cpu);
        if (a && b && a->node != b->node)
            k->node_changes++;
        if (a && b && a->socket != b->socket)
            k->socket_changes++;
    }
    k->last_cpu = cpu;
}

/* One sample: each thread's current CPU (task/TID/stat only). */
static void sample(const pf_topology *topo, const char *root, int pid, tracks *t)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%.4000s/%d/task", root, pid);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[4500], buf[1024];
        snprintf(path, sizeof path, "%s/%.32s/stat", dir, e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue; /* the thread exited */
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        pf_proc_thread th;
        memset(&th, 0, sizeof th);
        th.cpu = -1;
        if (pf__proc_parse_stat(buf, n, &th) < 0)
            continue;
        track *k = find_track(t, pid, (int)strtol(e->d_name, NULL, 10), true);
        if (k)
            see(topo, k, th.cpu);
    }
    closedir(d);
}

static int copy_ints(const int *v, size_t n, int **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!n)
        return 0;
    *out = malloc(n * sizeof **out);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, v, n * sizeof **out);
    *nout = n;
    return 0;
}

static long long delta(long long a, long long b)
{
    return a >= 0 && b >= a ? b - a : -1;
}

/* A thread's figures from its first and last readings and its samples. */
static int judge_thread(const pf_proc_thread *t0, const pf_proc_thread *t1, const track *k,
                        double window, pf_check_thread *out)
{
    memset(out, 0, sizeof *out);
    out->tid = t1->tid;
    memcpy(out->name, t1->name, sizeof out->name);
    int rc =
        copy_ints(t1->cpus_allowed, t1->ncpus_allowed, &out->cpus_allowed, &out->ncpus_allowed);
    if (rc == 0 && k)
        rc = copy_ints(k->seen.v, k->seen.len, &out->cpus_seen, &out->ncpus_seen);
    if (rc < 0)
        return rc;
    long long ns = t0 ? delta(t0->exec_ns, t1->exec_ns) : t1->exec_ns;
    if (ns < 0 && t0 && t0->utime >= 0 && t1->utime >= 0) {
        long ticks = sysconf(_SC_CLK_TCK);
        long long used = (t1->utime + t1->stime) - (t0->utime + t0->stime);
        ns = used >= 0 && ticks > 0 ? used * 1000000000LL / ticks : -1;
    }
    out->cpu_pct = ns >= 0 ? (double)ns / (window * 1e9) * 100.0 : 0;
    long long mig = t0 ? delta(t0->nr_migrations, t1->nr_migrations) : -1;
    out->migrations = mig >= 0 ? mig : k ? k->changes : 0;
    out->cross_node_migrations = k ? k->node_changes : 0;
    out->cross_socket_migrations = k ? k->socket_changes : 0;
    long long wait = t0 ? delta(t0->wait_ns, t1->wait_ns) : -1;
    out->run_wait_pct = wait >= 0 ? (double)wait / (window * 1e9) * 100.0 : -1;
    out->involuntary = t0 ? delta(t0->involuntary, t1->involuntary) : -1;
    out->busy = out->cpu_pct >= BUSY_PCT;
    return 0;
}

/* ---- findings ------------------------------------------------------------ */

typedef struct findings {
    pf_check_finding *v;
    size_t len, cap;
    bool failed;
} findings;

static void add(findings *f, const char *code, const char *severity, int pid, int tid, char *advice,
                const char *fmt, ...) PF__PRINTF(7, 8);
static void add(findings *f, const char *code, const char *severity, int pid, int tid, char *advice,
                const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = pf__vstrdupf(fmt, ap);
    va_end(ap);
    if (f->len == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        pf_check_finding *g = realloc(f->v, cap * sizeof *g);
        if (!g) {
            f->failed = true;
            free(msg);
            free(advice);
            return;
        }
        f->v = g;
        f->cap = cap;
    }
    if (!msg || !advice)
        f->failed = true;
    f->v[f->len++] = (pf_check_finding){code, severity, pid, tid, msg, advice};
}

static char *list_text(const int *v, size_t n)
{
    char *text = NULL;
    if (pf_cpulist_format(v, n, &text) < 0)
        return NULL;
    return text;
}

/* The union of the busy threads' allowed CPUs (or seen CPUs). */
static void busy_union(const pf_check_process *p, bool seen, pf__ivec *out)
{
    for (size_t i = 0; i < p->nthreads; i++) {
        const pf_check_thread *t = &p->threads[i];
        if (!t->busy)
            continue;
        const int *v = seen ? t->cpus_seen : t->cpus_allowed;
        size_t n = seen ? t->ncpus_seen : t->ncpus_allowed;
        for (size_t k = 0; k < n; k++)
            pf__ivec_push(out, v[k]);
    }
    pf__ivec_sort_unique(out);
}

static void nodes_of(const pf_topology *topo, const pf__ivec *cpus, pf__ivec *nodes)
{
    for (size_t i = 0; i < cpus->len; i++) {
        const pf_cpu_info *c = pf_topology_cpu(topo, cpus->v[i]);
        if (c)
            pf__ivec_push(nodes, c->node);
    }
    pf__ivec_sort_unique(nodes);
}

static const char *env_of(const pf_check_process *p, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; p->env && p->env[i]; i++)
        if (strncmp(p->env[i], name, n) == 0 && p->env[i][n] == '=')
            return p->env[i] + n + 1;
    return NULL;
}

static void judge_process(const pf_topology *topo, pf_check_process *p, double window, findings *f)
{
    if (!p->busy_threads)
        return;
    size_t busy = p->busy_threads;
    double max_wait = -1, max_rate = 0;
    size_t floating = 0;
    for (size_t i = 0; i < p->nthreads; i++) {
        const pf_check_thread *t = &p->threads[i];
        if (!t->busy)
            continue;
        if (t->run_wait_pct > max_wait)
            max_wait = t->run_wait_pct;
        if (t->ncpus_allowed > 1)
            floating++;
        double rate = (double)t->migrations / window;
        if (rate > max_rate)
            max_rate = rate;
    }
    if (busy > p->ncpus_allowed && p->ncpus_allowed)
        add(f, "OVERSUBSCRIBED", "bad", p->pid, -1,
            pf__strdupf("one busy thread per CPU: OMP_NUM_THREADS=%zu here (pinfer run sets it "
                        "to each instance's CPUs), or give it %zu CPUs",
                        p->ncpus_allowed, busy),
            "%zu busy threads share %zu allowed CPUs", busy, p->ncpus_allowed);
    else if (max_wait > WAIT_PCT)
        add(f, "OVERSUBSCRIBED", "bad", p->pid, -1,
            pf__strdupf("fewer threads than CPUs, and no two processes on one CPU (pinfer run "
                        "plans both)"),
            "a busy thread waited %.0f%% of the window on a run queue", max_wait);
    const char *pin_advice = "pin each thread to one CPU: pinfer run (Intel OpenMP: "
                             "KMP_AFFINITY; GNU: OMP_PROC_BIND=close with OMP_PLACES=cores)";
    if (floating)
        add(f, "FLOATING", "warn", p->pid, -1, strdup(pin_advice),
            "%zu of %zu busy threads may run on any of %zu CPUs (%.1f migrations/s at most)",
            floating, busy, p->ncpus_allowed, max_rate);
    else if (max_rate > 1.0)
        add(f, "FLOATING", "warn", p->pid, -1, strdup(pin_advice),
            "its %zu busy threads are pinned, yet one migrated %.1f times/s", busy, max_rate);
    /* Nodes: where the busy threads ran, and where the memory is. */
    pf__ivec seen = {0}, nodes = {0};
    busy_union(p, true, &seen);
    nodes_of(topo, &seen, &nodes);
    unsigned long long total = 0, local = 0;
    for (size_t n = 0; p->memory_by_node && n < p->nnodes; n++) {
        total += p->memory_by_node[n];
        if (pf__sorted_has(nodes.v, nodes.len, (int)n))
            local += p->memory_by_node[n];
    }
    p->local_memory_pct = total ? (double)local * 100.0 / (double)total : -1;
    if (nodes.len > 1) {
        char *list = list_text(nodes.v, nodes.len);
        add(f, "CROSS_NODE", "warn", p->pid, -1,
            pf__strdupf("keep it on one node: pinfer run --bind-numa-node, or --node-id N"),
            "its busy threads ran on NUMA nodes %s", list ? list : "?");
        free(list);
    } else if (nodes.len == 1 && total && p->memory_by_node && (size_t)nodes.v[0] < p->nnodes &&
               p->memory_by_node[nodes.v[0]] * 2 < total) {
        add(f, "CROSS_NODE", "warn", p->pid, -1,
            pf__strdupf("bind memory with the CPUs: pinfer run binds both (numactl -m)"),
            "its busy threads ran on node %d, which holds %.0f%% of its memory", nodes.v[0],
            (double)p->memory_by_node[nodes.v[0]] * 100.0 / (double)total);
    }
    if (p->local_memory_pct >= 0 && p->local_memory_pct < LOCAL_PCT)
        add(f, "REMOTE_MEMORY", "warn", p->pid, -1,
            pf__strdupf("allocate where it runs: pinfer run binds memory to the instance's "
                        "nodes"),
            "%.0f%% of its resident memory is on the nodes its busy threads ran on",
            p->local_memory_pct);
    const char *omp = env_of(p, "OMP_NUM_THREADS");
    long omp_n = omp ? strtol(omp, NULL, 10) : 0;
    if (p->cpu_quota > 0 &&
        ((double)busy > ceil(p->cpu_quota) + 1e-9 || (double)omp_n > ceil(p->cpu_quota) + 1e-9))
        add(f, "OVER_QUOTA", "bad", p->pid, -1,
            pf__strdupf("as many threads as the quota: pinfer run plans within it "
                        "(OMP_NUM_THREADS=%.0f)",
                        floor(p->cpu_quota) > 0 ? floor(p->cpu_quota) : 1),
            "%zu busy threads%s%s%s against a cgroup CPU quota of %.2f CPUs", busy,
            omp ? " (OMP_NUM_THREADS=" : "", omp ? omp : "", omp ? ")" : "", p->cpu_quota);
    pf__ivec_free(&seen);
    pf__ivec_free(&nodes);
}

/*
 * Two busy threads seen on different SMT siblings of one core while a core in
 * their allowed CPUs had no busy thread: per process, and across processes.
 */
static void judge_smt(const pf_topology *topo, const pf_check_report *r, findings *f)
{
    for (size_t a = 0; a < r->nprocesses; a++) {
        const pf_check_process *p = &r->processes[a];
        size_t shared = 0;
        pf__ivec allowed = {0}, used = {0};
        busy_union(p, false, &allowed);
        for (size_t x = 0; x < r->nprocesses; x++) /* cores any busy thread was seen on */
            for (size_t i = 0; i < r->processes[x].nthreads; i++) {
                const pf_check_thread *t = &r->processes[x].threads[i];
                for (size_t k = 0; t->busy && k < t->ncpus_seen; k++) {
                    const pf_cpu_info *c = pf_topology_cpu(topo, t->cpus_seen[k]);
                    if (c)
                        pf__ivec_push(&used, c->core_first);
                }
            }
        pf__ivec_sort_unique(&used);
        bool idle_core = false;
        for (size_t i = 0; i < allowed.len && !idle_core; i++) {
            const pf_cpu_info *c = pf_topology_cpu(topo, allowed.v[i]);
            idle_core = c && !pf__sorted_has(used.v, used.len, c->core_first);
        }
        /* Pairs of this process's busy threads (and others') on two siblings of a core. */
        for (size_t i = 0; idle_core && i < p->nthreads; i++) {
            const pf_check_thread *t = &p->threads[i];
            bool counted = false;
            for (size_t x = 0; t->busy && !counted && x < r->nprocesses; x++)
                for (size_t j = 0; !counted && j < r->processes[x].nthreads; j++) {
                    const pf_check_thread *u = &r->processes[x].threads[j];
                    if (!u->busy || u == t)
                        continue;
                    for (size_t k = 0; !counted && k < t->ncpus_seen; k++)
                        for (size_t m = 0; !counted && m < u->ncpus_seen; m++) {
                            const pf_cpu_info *c = pf_topology_cpu(topo, t->cpus_seen[k]);
                            const pf_cpu_info *d = pf_topology_cpu(topo, u->cpus_seen[m]);
                            counted = c && d && c->cpu != d->cpu &&
                                      c->core_first == d->core_first && c->socket == d->socket;
                        }
                }
            shared += counted;
        }
        if (shared)
            add(f, "SMT_SHARED", "warn", p->pid, -1,
                pf__strdupf("one thread per physical core: pinfer run plans on cores, not "
                            "siblings (unless --use-logical-cores)"),
                "%zu busy thread%s ran on the SMT sibling of another busy thread's CPU while "
                "an allowed core had none",
                shared, shared == 1 ? "" : "s");
        pf__ivec_free(&allowed);
        pf__ivec_free(&used);
    }
}

static void judge_overlap(const pf_check_report *r, findings *f)
{
    for (size_t a = 0; a < r->nprocesses; a++)
        for (size_t b = a + 1; b < r->nprocesses; b++) {
            const pf_check_process *p = &r->processes[a], *q = &r->processes[b];
            if (!p->busy_threads || !q->busy_threads)
                continue;
            pf__ivec x = {0}, y = {0}, both = {0};
            busy_union(p, false, &x);
            busy_union(q, false, &y);
            for (size_t i = 0; i < x.len; i++)
                if (pf__sorted_has(y.v, y.len, x.v[i]))
                    pf__ivec_push(&both, x.v[i]);
            if (both.len) {
                char *list = list_text(both.v, both.len);
                add(f, "OVERLAP", "bad", p->pid, -1,
                    pf__strdupf("give each process its own CPUs: pinfer run --ninstances N "
                                "plans them apart"),
                    "its busy threads and those of process %d may both run on CPU%s %s", q->pid,
                    both.len == 1 ? "" : "s", list ? list : "?");
                free(list);
            }
            pf__ivec_free(&x);
            pf__ivec_free(&y);
            pf__ivec_free(&both);
        }
}

static char *ok_line(const pf_topology *topo, const pf_check_process *p)
{
    if (!p->busy_threads)
        return pf__strdupf("OK: process %d: no busy thread in the window", p->pid);
    pf__ivec seen = {0}, nodes = {0};
    busy_union(p, true, &seen);
    nodes_of(topo, &seen, &nodes);
    long long mig = 0;
    for (size_t i = 0; i < p->nthreads; i++)
        if (p->threads[i].busy)
            mig += p->threads[i].migrations;
    char local[48] = "";
    if (p->local_memory_pct >= 0)
        snprintf(local, sizeof local, ", %.0f%% local memory", p->local_memory_pct);
    char *cpus = list_text(seen.v, seen.len);
    char *nl = list_text(nodes.v, nodes.len);
    char *line = pf__strdupf("OK: process %d: %zu busy thread%s on CPU%s %s of node%s %s, each "
                             "on one CPU, %lld migration%s%s",
                             p->pid, p->busy_threads, p->busy_threads == 1 ? "" : "s",
                             seen.len == 1 ? "" : "s", cpus ? cpus : "?", nodes.len == 1 ? "" : "s",
                             nl ? nl : "?", mig, mig == 1 ? "" : "s", local);
    free(cpus);
    free(nl);
    pf__ivec_free(&seen);
    pf__ivec_free(&nodes);
    return line;
}

int pf_check_judge(const pf_topology *topo, pf_check_report *r)
{
    findings f = {0};
    for (size_t i = 0; i < r->nprocesses; i++)
        judge_process(topo, &r->processes[i], r->window_s, &f);
    judge_smt(topo, r, &f);
    judge_overlap(r, &f);
    r->findings = f.v;
    r->nfindings = f.len;
    if (f.failed)
        return -ENOMEM;
    r->ok = calloc(r->nprocesses + 1, sizeof *r->ok);
    if (!r->ok)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < r->nprocesses; i++) {
        bool found = false;
        for (size_t k = 0; k < r->nfindings; k++)
            found |= r->findings[k].pid == r->processes[i].pid;
        if (!found && !(r->ok[n++] = ok_line(topo, &r->processes[i])))
            return -ENOMEM;
    }
    return 0;
}

/* ---- the run -------------------------------------------------------------- */

static double process_quota(const pf_check_options *o, int pid)
{
    char path[4200], text[4096];
    snprintf(path, sizeof path, "%.4000s/%d/cgroup", o->proc_root ? o->proc_root : "/proc", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    double quota = 0;
    char *why = NULL;
    if (pf__sysfs_cgroup_quota_of(o->sys_root ? o->sys_root : "/", text, &quota, &why) < 0)
        quota = 0;
    free(why);
    return quota;
}

static int build_process(const pf_check_options *o, const pf_proc_process *p0,
                         const pf_proc_process *p1, tracks *t, double window, pf_check_process *out)
{
    const pf_proc_process *last = p1 ? p1 : p0;
    memset(out, 0, sizeof *out);
    out->pid = last->pid;
    out->local_memory_pct = -1;
    out->command = strdup(last->command ? last->command : "");
    int rc = out->command ? 0 : -ENOMEM;
    /* The process may run where any of its threads may: the main thread's own mask
       (status) is narrower when an OpenMP runtime pinned it. */
    pf__ivec allowed = {0};
    for (size_t i = 0; i < last->ncpus_allowed; i++)
        pf__ivec_push(&allowed, last->cpus_allowed[i]);
    for (size_t i = 0; i < last->nthreads; i++)
        for (size_t k = 0; k < last->threads[i].ncpus_allowed; k++)
            pf__ivec_push(&allowed, last->threads[i].cpus_allowed[k]);
    pf__ivec_sort_unique(&allowed);
    if (rc == 0)
        rc = copy_ints(allowed.v, allowed.len, &out->cpus_allowed, &out->ncpus_allowed);
    pf__ivec_free(&allowed);
    if (rc == 0)
        rc = copy_ints(last->mems_allowed, last->nmems_allowed, &out->mems_allowed,
                       &out->nmems_allowed);
    if (rc == 0 && last->memory_by_node && last->nnodes) {
        out->memory_by_node = malloc(last->nnodes * sizeof *out->memory_by_node);
        if (!out->memory_by_node)
            rc = -ENOMEM;
        else
            memcpy(out->memory_by_node, last->memory_by_node,
                   last->nnodes * sizeof *out->memory_by_node);
        out->nnodes = last->nnodes;
    }
    if (rc == 0 && last->env) {
        size_t n = 0;
        while (last->env[n])
            n++;
        out->env = calloc(n + 1, sizeof *out->env);
        for (size_t i = 0; out->env && i < n; i++)
            out->env[i] = strdup(last->env[i]);
        if (!out->env)
            rc = -ENOMEM;
    }
    out->cpu_quota = process_quota(o, out->pid);
    if (rc == 0 && last->nthreads) {
        out->threads = calloc(last->nthreads, sizeof *out->threads);
        if (!out->threads)
            rc = -ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < last->nthreads; i++) {
        const pf_proc_thread *t1 = &last->threads[i];
        const pf_proc_thread *t0 = p1 && p0 ? pf_proc_thread_of(p0, t1->tid) : NULL;
        const track *k = find_track(t, out->pid, t1->tid, false);
        if (!p1) /* exited in the window: as last seen, not judged busy */
            t0 = t1;
        rc = judge_thread(t0, t1, k, window, &out->threads[out->nthreads]);
        if (rc == 0) {
            if (!p1)
                out->threads[out->nthreads].busy = false;
            out->busy_threads += out->threads[out->nthreads].busy;
            out->nthreads++;
        }
    }
    return rc;
}

int pf_check_run(const pf_topology *topo, const int *pids, size_t npids,
                 const pf_check_options *opts, pf_check_report **out, char **why)
{
    *out = NULL;
    pf_check_options o;
    if (opts)
        o = *opts;
    else
        pf_check_options_init(&o);
    if (!(o.duration_s > 0) || o.duration_s > 3600 || !(o.interval_s > 0) ||
        o.interval_s > o.duration_s)
        return pf__fail(why, -EINVAL,
                        "the window must be over 0 and at most 3600 s, and the interval "
                        "over 0 and at most the window");
    const char *root = o.proc_root ? o.proc_root : "/proc";
    pf_proc_process **first = calloc(npids ? npids : 1, sizeof *first);
    pf_proc_process **last = calloc(npids ? npids : 1, sizeof *last);
    pf_check_report *r = calloc(1, sizeof *r);
    tracks t = {0};
    int rc = first && last && r ? 0 : -ENOMEM;
    size_t alive = 0;
    double start = now_s();
    for (size_t i = 0; rc == 0 && i < npids; i++) {
        int prc = pf_proc_read(root, pids[i], &first[i], NULL);
        if (prc == -ENOMEM)
            rc = prc;
        alive += prc == 0;
    }
    if (rc == 0 && !alive)
        rc = npids == 1 ? pf__fail(why, -ENOENT, "no process %d", pids[0])
                        : pf__fail(why, -ENOENT, "none of the %zu processes exists", npids);
    /* The samples of each thread's CPU, until the window ends. */
    while (rc == 0) {
        for (size_t i = 0; i < npids; i++)
            if (first[i])
                sample(topo, root, pids[i], &t);
        double left = start + o.duration_s - now_s();
        if (left <= 0)
            break;
        double step = left < o.interval_s ? left : o.interval_s;
        struct timespec ts = {(time_t)step, (long)((step - floor(step)) * 1e9)};
        nanosleep(&ts, NULL);
    }
    double window = now_s() - start;
    for (size_t i = 0; rc == 0 && i < npids; i++) {
        if (!first[i])
            continue;
        int prc = pf_proc_read(root, pids[i], &last[i], NULL);
        if (prc == -ENOMEM)
            rc = prc;
    }
    if (rc == 0) {
        r->window_s = window;
        r->processes = calloc(alive, sizeof *r->processes);
        if (!r->processes)
            rc = -ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < npids; i++) {
        if (!first[i])
            continue;
        rc = build_process(&o, first[i], last[i], &t, window, &r->processes[r->nprocesses]);
        r->nprocesses++;
    }
    if (rc == 0)
        rc = pf_check_judge(topo, r);
    for (size_t i = 0; i < npids && first; i++)
        pf_proc_process_free(first[i]);
    for (size_t i = 0; i < npids && last; i++)
        pf_proc_process_free(last[i]);
    free(first);
    free(last);
    for (size_t i = 0; i < t.len; i++)
        pf__ivec_free(&t.v[i].seen);
    free(t.v);
    if (rc < 0) {
        pf_check_report_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void pf_check_report_free(pf_check_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nprocesses; i++) {
        pf_check_process *p = &r->processes[i];
        free(p->command);
        free(p->cpus_allowed);
        free(p->mems_allowed);
        free(p->memory_by_node);
        pf_strv_free(p->env);
        for (size_t k = 0; k < p->nthreads; k++) {
            free(p->threads[k].cpus_allowed);
            free(p->threads[k].cpus_seen);
        }
        free(p->threads);
    }
    free(r->processes);
    for (size_t i = 0; i < r->nfindings; i++) {
        free(r->findings[i].message);
        free(r->findings[i].advice);
    }
    free(r->findings);
    pf_strv_free(r->ok);
    free(r);
}

/* ---- JSON ------------------------------------------------------------------ */

static void pct(pf__json *w, const char *key, double v)
{
    pf__json_key(w, key);
    if (v < 0)
        pf__json_null(w);
    else
        pf__json_double(w, round(v * 10) / 10);
}

int pf_check_report_to_json(const pf_check_report *r, char **out)
{
    pf__json w;
    pf__json_init(&w);
    pf__json_begin_object(&w);
    pf__json_key(&w, "window_s");
    pf__json_double(&w, round(r->window_s * 1000) / 1000);
    pf__json_key(&w, "processes");
    pf__json_begin_array(&w);
    for (size_t i = 0; i < r->nprocesses; i++) {
        const pf_check_process *p = &r->processes[i];
        pf__json_begin_object(&w);
        pf__json_member_int(&w, "pid", p->pid);
        pf__json_member_string(&w, "command", p->command);
        pf__json_key(&w, "cpus_allowed");
        pf__json_int_array(&w, p->cpus_allowed, p->ncpus_allowed);
        pf__json_key(&w, "mems_allowed");
        pf__json_int_array(&w, p->mems_allowed, p->nmems_allowed);
        pf__json_key(&w, "memory_by_node");
        if (!p->memory_by_node) {
            pf__json_null(&w);
        } else {
            pf__json_begin_object(&w);
            for (size_t n = 0; n < p->nnodes; n++) {
                char key[24];
                snprintf(key, sizeof key, "%zu", n);
                pf__json_member_int(&w, key, (long long)p->memory_by_node[n]);
            }
            pf__json_end_object(&w);
        }
        pct(&w, "local_memory_pct", p->local_memory_pct);
        pf__json_key(&w, "cpu_quota");
        if (p->cpu_quota > 0)
            pf__json_double(&w, p->cpu_quota);
        else
            pf__json_null(&w);
        pf__json_key(&w, "env");
        if (!p->env) {
            pf__json_null(&w);
        } else {
            pf__json_begin_object(&w);
            for (size_t k = 0; p->env[k]; k++) {
                char *eq = strchr(p->env[k], '=');
                if (!eq)
                    continue;
                *eq = '\0';
                pf__json_member_string(&w, p->env[k], eq + 1);
                *eq = '=';
            }
            pf__json_end_object(&w);
        }
        pf__json_key(&w, "threads");
        pf__json_begin_array(&w);
        for (size_t k = 0; k < p->nthreads; k++) {
            const pf_check_thread *t = &p->threads[k];
            pf__json_begin_object(&w);
            pf__json_member_int(&w, "tid", t->tid);
            pf__json_member_string(&w, "name", t->name);
            pf__json_key(&w, "cpus_allowed");
            pf__json_int_array(&w, t->cpus_allowed, t->ncpus_allowed);
            pf__json_key(&w, "cpus_seen");
            pf__json_int_array(&w, t->cpus_seen, t->ncpus_seen);
            pct(&w, "cpu_pct", t->cpu_pct);
            pf__json_member_int(&w, "migrations", t->migrations);
            pf__json_member_int(&w, "cross_node_migrations", t->cross_node_migrations);
            pct(&w, "run_wait_pct", t->run_wait_pct);
            pf__json_key(&w, "busy");
            pf__json_bool(&w, t->busy);
            pf__json_end_object(&w);
        }
        pf__json_end_array(&w);
        pf__json_end_object(&w);
    }
    pf__json_end_array(&w);
    pf__json_key(&w, "findings");
    pf__json_begin_array(&w);
    for (size_t i = 0; i < r->nfindings; i++) {
        const pf_check_finding *fi = &r->findings[i];
        pf__json_begin_object(&w);
        pf__json_member_string(&w, "code", fi->code);
        pf__json_member_string(&w, "severity", fi->severity);
        pf__json_member_int(&w, "pid", fi->pid);
        pf__json_key(&w, "tid");
        if (fi->tid >= 0)
            pf__json_int(&w, fi->tid);
        else
            pf__json_null(&w);
        pf__json_member_string(&w, "message", fi->message);
        pf__json_member_string(&w, "advice", fi->advice);
        pf__json_end_object(&w);
    }
    pf__json_end_array(&w);
    pf__json_end_object(&w);
    return pf__json_finish(&w, out);
}
