/*
 * read.c - pf_proc_read(): one reading of a process and its threads from a
 * /proc tree (the live one, or a captured one in tests).  Files are read
 * whole with one open each; a file that is missing or unreadable leaves its
 * fields unknown; a thread that vanishes between the listing and its files
 * is left out.
 */
#include "proc/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_MAX (16u << 20) /* numa_maps of a large process stays far below */
#define MAX_NODES 1024

/* The variables of a process's environment that shape its threads and allocation. */
static const char *const ENV_KEYS[] = {
    "OMP_NUM_THREADS",
    "OMP_PROC_BIND",
    "OMP_PLACES",
    "OMP_WAIT_POLICY",
    "KMP_AFFINITY",
    "KMP_BLOCKTIME",
    "GOMP_CPU_AFFINITY",
    "LD_PRELOAD",
    "MKL_NUM_THREADS",
    "MALLOC_CONF",
    NULL,
};

/* The whole file at root/rel into *buf (malloc'd, NUL-terminated); -errno when it cannot be. */
static int slurp(const char *path, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    int rc = b ? 0 : -ENOMEM;
    while (rc == 0) {
        if (n + 1 >= cap) {
            if (cap >= FILE_MAX) {
                break;
            }
            char *g = realloc(b, cap * 2);
            if (!g) {
                rc = -ENOMEM;
                break;
            }
            b = g;
            cap *= 2;
        }
        ssize_t got = read(fd, b + n, cap - 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            rc = -errno;
        else if (got == 0)
            break;
        else
            n += (size_t)got;
    }
    close(fd);
    if (rc < 0) {
        free(b);
        return rc;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

static int slurp_at(const char *dir, const char *name, char **buf, size_t *len)
{
    char path[4600];
    if ((size_t)snprintf(path, sizeof path, "%.4400s/%s", dir, name) >= sizeof path)
        return -ENAMETOOLONG;
    return slurp(path, buf, len);
}

static int copy_ivec(const pf__ivec *v, int **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!v->len)
        return 0;
    *out = malloc(v->len * sizeof **out);
    if (!*out)
        return -ENOMEM;
    memcpy(*out, v->v, v->len * sizeof **out);
    *n = v->len;
    return 0;
}

/* One thread's files under dir; -ENOENT when it vanished. */
static int read_thread(const char *dir, int tid, pf_proc_thread *t)
{
    memset(t, 0, sizeof *t);
    t->tid = tid;
    t->cpu = -1;
    t->utime = t->stime = t->nr_migrations = t->exec_ns = -1;
    t->run_ns = t->wait_ns = t->voluntary = t->involuntary = -1;
    char *buf;
    size_t len;
    int rc = slurp_at(dir, "stat", &buf, &len);
    if (rc < 0)
        return rc == -ENOMEM ? rc : -ENOENT;
    rc = pf__proc_parse_stat(buf, len, t);
    free(buf);
    if (rc < 0)
        return -ENOENT; /* an unreadable stat: as good as gone */
    if (slurp_at(dir, "sched", &buf, &len) == 0) {
        pf__proc_parse_sched(buf, len, t);
        free(buf);
    }
    if (slurp_at(dir, "schedstat", &buf, &len) == 0) {
        pf__proc_parse_schedstat(buf, len, t);
        free(buf);
    }
    if (slurp_at(dir, "status", &buf, &len) == 0) {
        pf__ivec cpus = {0};
        pf__proc_parse_status(buf, len, &cpus, NULL, &t->voluntary, &t->involuntary, NULL);
        free(buf);
        rc = copy_ivec(&cpus, &t->cpus_allowed, &t->ncpus_allowed);
        pf__ivec_free(&cpus);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int tid_cmp(const void *a, const void *b)
{
    const pf_proc_thread *x = a, *y = b;
    return (x->tid > y->tid) - (x->tid < y->tid);
}

static int read_threads(const char *pdir, pf_proc_process *p)
{
    char tdir[4200];
    snprintf(tdir, sizeof tdir, "%.4000s/task", pdir);
    DIR *d = opendir(tdir);
    if (!d)
        return -ENOENT;
    size_t cap = 0;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        char *endp;
        long tid = strtol(e->d_name, &endp, 10);
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || *endp || tid <= 0 || tid > 1L << 30)
            continue;
        if (p->nthreads == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            pf_proc_thread *g = realloc(p->threads, ncap * sizeof *g);
            if (!g) {
                rc = -ENOMEM;
                break;
            }
            p->threads = g;
            cap = ncap;
        }
        char dir[4400];
        snprintf(dir, sizeof dir, "%.4200s/%ld", tdir, tid);
        int trc = read_thread(dir, (int)tid, &p->threads[p->nthreads]);
        if (trc == 0)
            p->nthreads++;
        else if (trc == -ENOMEM)
            rc = trc;
    }
    closedir(d);
    if (p->nthreads > 1)
        qsort(p->threads, p->nthreads, sizeof *p->threads, tid_cmp);
    return rc;
}

/* The command line, arguments joined by spaces; "[name]" when empty (kernel threads). */
static char *command_line(const char *pdir, const pf_proc_process *p)
{
    char *buf;
    size_t len;
    if (slurp_at(pdir, "cmdline", &buf, &len) == 0 && len > 0) {
        while (len > 0 && buf[len - 1] == '\0')
            len--;
        for (size_t i = 0; i < len; i++)
            if (buf[i] == '\0' || (unsigned char)buf[i] < 32)
                buf[i] = ' ';
        buf[len] = '\0';
        return buf;
    }
    free(buf);
    return pf__strdupf("[%s]", p->nthreads ? p->threads[0].name : "?");
}

static int read_env(const char *pdir, pf_proc_process *p)
{
    char *buf;
    size_t len;
    if (slurp_at(pdir, "environ", &buf, &len) < 0)
        return 0; /* another user's process: unknown */
    pf__strv sv = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < len;) {
        const char *entry = buf + i;
        size_t n = strnlen(entry, len - i);
        for (int k = 0; ENV_KEYS[k]; k++) {
            size_t kn = strlen(ENV_KEYS[k]);
            if (n > kn && memcmp(entry, ENV_KEYS[k], kn) == 0 && entry[kn] == '=')
                rc = pf__strv_take(&sv, strndup(entry, n));
        }
        i += n + 1;
    }
    free(buf);
    if (rc < 0) {
        pf__strv_free(&sv);
        return rc;
    }
    p->env = sv.v;
    if (!p->env)
        p->env = calloc(1, sizeof *p->env);
    return p->env ? 0 : -ENOMEM;
}

static int read_numa(const char *pdir, pf_proc_process *p)
{
    char *buf;
    size_t len;
    if (slurp_at(pdir, "numa_maps", &buf, &len) < 0)
        return 0;
    unsigned long long *bytes = calloc(MAX_NODES, sizeof *bytes);
    if (!bytes) {
        free(buf);
        return -ENOMEM;
    }
    unsigned long long other = 0;
    pf__proc_parse_numa_maps(buf, len, bytes, MAX_NODES, &other);
    free(buf);
    size_t n = 0;
    for (size_t i = 0; i < MAX_NODES; i++)
        if (bytes[i])
            n = i + 1;
    for (size_t i = 0; i < p->nmems_allowed; i++)
        if ((size_t)p->mems_allowed[i] + 1 > n && p->mems_allowed[i] < MAX_NODES)
            n = (size_t)p->mems_allowed[i] + 1;
    p->memory_by_node = bytes;
    p->nnodes = n;
    return 0;
}

int pf_proc_read(const char *root, int pid, pf_proc_process **out, char **why)
{
    *out = NULL;
    char pdir[4096];
    snprintf(pdir, sizeof pdir, "%.4000s/%d", root ? root : "/proc", pid);
    pf_proc_process *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->pid = pid;
    p->rss_kb = -1;
    char *buf;
    size_t len;
    int rc = slurp_at(pdir, "status", &buf, &len);
    if (rc < 0) {
        free(p);
        return rc == -ENOMEM ? rc : pf__fail(why, -ENOENT, "no process %d", pid);
    }
    pf__ivec cpus = {0}, mems = {0};
    pf__proc_parse_status(buf, len, &cpus, &mems, NULL, NULL, &p->rss_kb);
    free(buf);
    rc = copy_ivec(&cpus, &p->cpus_allowed, &p->ncpus_allowed);
    if (rc == 0)
        rc = copy_ivec(&mems, &p->mems_allowed, &p->nmems_allowed);
    pf__ivec_free(&cpus);
    pf__ivec_free(&mems);
    if (rc == 0)
        rc = read_threads(pdir, p);
    if (rc == 0 && p->nthreads == 0)
        rc = pf__fail(why, -ENOENT, "no process %d (it exited)", pid);
    if (rc == 0 && !(p->command = command_line(pdir, p)))
        rc = -ENOMEM;
    if (rc == 0)
        rc = read_env(pdir, p);
    if (rc == 0)
        rc = read_numa(pdir, p);
    if (rc == 0 && slurp_at(pdir, "cgroup", &buf, &len) == 0) {
        p->cgroup = pf__proc_parse_cgroup(buf, len);
        free(buf);
    }
    if (rc < 0) {
        pf_proc_process_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void pf_proc_process_free(pf_proc_process *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nthreads; i++)
        free(p->threads[i].cpus_allowed);
    free(p->threads);
    free(p->command);
    free(p->cpus_allowed);
    free(p->mems_allowed);
    free(p->memory_by_node);
    pf_strv_free(p->env);
    free(p->cgroup);
    free(p);
}

const pf_proc_thread *pf_proc_thread_of(const pf_proc_process *p, int tid)
{
    pf_proc_thread key = {.tid = tid};
    return bsearch(&key, p->threads, p->nthreads, sizeof *p->threads, tid_cmp);
}
