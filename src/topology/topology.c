/*
 * topology.c - the topology model: building it from a source's rows, the
 * queries of pinfer.h, and choosing the source for pf_topology_load().
 */
#include "topology/topology.h"
#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TOPOLOGY_FILE (64u << 20)
/* A MAXMHZ step of at least this share of the highest value splits P from E. */
#define ECORE_GAP_PERCENT 15

static int row_by_cpu(const void *a, const void *b)
{
    const pf__cpu_row *x = a, *y = b;
    return (x->cpu > y->cpu) - (x->cpu < y->cpu);
}

/* A sort key: CPUs with equal (a, b) form a group, ordered by cpu. */
typedef struct group_key {
    int a, b, cpu;
    size_t index;
} group_key;

static int by_group(const void *p, const void *q)
{
    const group_key *x = p, *y = q;
    if (x->a != y->a)
        return (x->a > y->a) - (x->a < y->a);
    if (x->b != y->b)
        return (x->b > y->b) - (x->b < y->b);
    return (x->cpu > y->cpu) - (x->cpu < y->cpu);
}

static size_t count_distinct(pf__ivec *vec)
{
    pf__ivec_sort_unique(vec);
    return vec->len;
}

static int double_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*
 * E-cores from MAXMHZ: sort the known values, find the highest step between
 * neighbours of at least ECORE_GAP_PERCENT of the maximum; every CPU below
 * that step is an efficiency core.  One value, or no such step: none (0).
 * Returns -1 when out of memory.
 */
static double ecore_threshold(const pf__cpu_row *rows, size_t n)
{
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].maxmhz > 0)
            v[k++] = rows[i].maxmhz;
    qsort(v, k, sizeof *v, double_cmp);
    double threshold = 0;
    /* Equal neighbours make a step of 0: no need to drop duplicates. */
    for (size_t j = k; j-- > 1;) {
        if ((v[j] - v[j - 1]) * 100 >= ECORE_GAP_PERCENT * v[k - 1]) {
            threshold = v[j];
            break;
        }
    }
    free(v);
    return threshold;
}

static const char *at_line(int line, char *buf, size_t size)
{
    if (line > 0)
        snprintf(buf, size, ":%d", line);
    else
        buf[0] = '\0';
    return buf;
}

int pf__topology_build(const char *name, bool live, pf__cpu_row *rows, size_t n, pf_topology **out,
                       char **why)
{
    char where[32];
    if (n == 0)
        return pf__fail(why, -EINVAL, "%s: no online CPU found", name);
    qsort(rows, n, sizeof *rows, row_by_cpu);
    for (size_t i = 1; i < n; i++)
        if (rows[i].cpu == rows[i - 1].cpu)
            return pf__fail(why, -EINVAL, "%s%s: CPU %d is listed twice", name,
                            at_line(rows[i].line, where, sizeof where), rows[i].cpu);

    bool derive_efficiency = true;
    for (size_t i = 0; i < n; i++)
        if (rows[i].efficiency >= 0)
            derive_efficiency = false;
    double threshold = derive_efficiency ? ecore_threshold(rows, n) : 0;
    if (threshold < 0)
        return pf__fail(why, -ENOMEM, "out of memory");

    pf_topology *t = calloc(1, sizeof *t);
    group_key *keys = malloc(n * sizeof *keys);
    int rc = -ENOMEM;
    if (!t || !keys)
        goto fail;
    t->live = live;
    t->ncpus = n;
    t->source = strdup(name);
    t->cpus = calloc(n, sizeof *t->cpus);
    if (!t->source || !t->cpus)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        pf_cpu_info *c = &t->cpus[i];
        c->cpu = rows[i].cpu;
        c->core = rows[i].core;
        c->socket = rows[i].socket;
        c->node = rows[i].node >= 0 ? rows[i].node : rows[i].socket;
        c->llc = rows[i].llc;
        c->allowed = rows[i].allowed;
        if (derive_efficiency)
            c->efficiency = rows[i].maxmhz > 0 && rows[i].maxmhz < threshold;
        else
            c->efficiency = rows[i].efficiency > 0;
    }

    /* SMT ranks and core representatives: walk the CPUs core by core. */
    for (size_t i = 0; i < n; i++)
        keys[i] = (group_key){t->cpus[i].socket, t->cpus[i].core, t->cpus[i].cpu, i};
    qsort(keys, n, sizeof *keys, by_group);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        const pf_cpu_info *first = &t->cpus[keys[i].index];
        for (; j < n && keys[j].a == keys[i].a && keys[j].b == keys[i].b; j++) {
            pf_cpu_info *c = &t->cpus[keys[j].index];
            if (c->node != first->node) {
                rc = pf__fail(why, -EINVAL,
                              "%s%s: core %d of socket %d is in node %d and in node %d", name,
                              at_line(rows[keys[j].index].line, where, sizeof where), c->core,
                              c->socket, first->node, c->node);
                goto fail;
            }
            c->smt_rank = (int)(j - i);
            c->core_first = first->cpu;
        }
        t->ncores++;
        i = j;
    }

    /* Cache groups are named by their lowest CPU, whatever the source called them. */
    for (size_t i = 0; i < n; i++)
        keys[i] = (group_key){rows[i].llc, 0, t->cpus[i].cpu, i};
    qsort(keys, n, sizeof *keys, by_group);
    for (size_t i = 0, first = 0; i < n; i++) {
        if (keys[i].a != keys[first].a)
            first = i;
        t->cpus[keys[i].index].llc = keys[i].a < 0 ? -1 : t->cpus[keys[first].index].cpu;
    }

    pf__ivec sockets = {0}, nodes = {0};
    for (size_t i = 0; i < n; i++) {
        if (pf__ivec_push(&sockets, t->cpus[i].socket) || pf__ivec_push(&nodes, t->cpus[i].node)) {
            pf__ivec_free(&sockets);
            pf__ivec_free(&nodes);
            goto fail;
        }
    }
    t->nsockets = count_distinct(&sockets);
    pf__ivec_free(&sockets);
    t->nnodes = count_distinct(&nodes);
    t->nodes = nodes.v;
    free(keys);
    *out = t;
    return 0;

fail:
    free(keys);
    pf_topology_free(t);
    if (rc == -ENOMEM)
        return pf__fail(why, rc, "out of memory");
    return rc;
}

void pf_topology_free(pf_topology *t)
{
    if (!t)
        return;
    free(t->source);
    free(t->cpus);
    free(t->nodes);
    free(t);
}

const char *pf_topology_source(const pf_topology *t)
{
    return t->source;
}
bool pf_topology_is_live(const pf_topology *t)
{
    return t->live;
}
size_t pf_topology_ncores(const pf_topology *t)
{
    return t->ncores;
}
size_t pf_topology_nsockets(const pf_topology *t)
{
    return t->nsockets;
}
double pf_topology_cpu_quota(const pf_topology *t)
{
    return t->cpu_quota;
}

const pf_cpu_info *pf_topology_cpus(const pf_topology *t, size_t *count)
{
    *count = t->ncpus;
    return t->cpus;
}

const int *pf_topology_nodes(const pf_topology *t, size_t *count)
{
    *count = t->nnodes;
    return t->nodes;
}

const pf_cpu_info *pf_topology_cpu(const pf_topology *t, int cpu)
{
    size_t lo = 0, hi = t->ncpus;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->cpus[mid].cpu == cpu)
            return &t->cpus[mid];
        if (t->cpus[mid].cpu < cpu)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* What a path that is not a regular file is, for the message. */
static const char *file_kind(mode_t mode)
{
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISDIR(mode))
        return "a folder";
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "a device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a regular file";
}

static int cannot_read(const char *path, int err, char **why)
{
    return pf__fail(why,
                    err == EACCES   ? -EACCES
                    : err == ENOENT ? -ENOENT
                                    : -EINVAL,
                    "cannot read topology '%s': %s", path, strerror(err));
}

/*
 * Open a topology file: a regular file only.  Opening a FIFO for reading
 * blocks until a writer comes, for ever if none does, and a device can have
 * side effects on open: so the path is checked with stat() first, opened
 * O_NONBLOCK (which regular files ignore) in case it was replaced in
 * between, and checked again on the descriptor.  "-" is standard input,
 * read to its end whatever it is, except a terminal.
 */
static int open_topology_file(const char *path, int *fd, char **why)
{
    struct stat st;
    if (strcmp(path, "-") == 0) {
        if (fstat(STDIN_FILENO, &st) < 0)
            return pf__fail(why, -EINVAL, "-: cannot read standard input: %s", strerror(errno));
        if (isatty(STDIN_FILENO))
            return pf__fail(why, -EINVAL,
                            "-: standard input is a terminal: give it the output of lscpu "
                            "(`lscpu -e | pinfer plan --topology -`) or name a file");
        *fd = STDIN_FILENO;
        return 0;
    }
    if (stat(path, &st) < 0)
        return cannot_read(path, errno, why);
    if (!S_ISREG(st.st_mode))
        return pf__fail(why, -EINVAL,
                        "%s: is %s; a topology must be a regular file (`-` reads standard input)",
                        path, file_kind(st.st_mode));
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (*fd < 0)
        return cannot_read(path, errno, why);
    int rc = 0;
    if (fstat(*fd, &st) < 0)
        rc = cannot_read(path, errno, why);
    else if (!S_ISREG(st.st_mode))
        rc = pf__fail(why, -EINVAL,
                      "%s: is %s; a topology must be a regular file (`-` reads standard input)",
                      path, file_kind(st.st_mode));
    if (rc < 0)
        close(*fd);
    return rc;
}

/* Read a whole topology file (or standard input) into a NUL-terminated buffer. */
static int read_file(const char *path, char **text, size_t *len, char **why)
{
    int fd = -1;
    int rc = open_topology_file(path, &fd, why);
    if (rc < 0)
        return rc;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* a standard input left non-blocking by whoever made it: wait for data */
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, -1) >= 0 || errno == EINTR)
                continue;
        }
        if (got < 0) {
            rc = cannot_read(path, errno, why);
            break;
        }
        if (got == 0)
            break;
        n += (size_t)got;
        if (n == cap) {
            if (cap >= MAX_TOPOLOGY_FILE) {
                rc = pf__fail(why, -EINVAL, "%s: larger than %u MiB, not a topology", path,
                              MAX_TOPOLOGY_FILE >> 20);
                break;
            }
            char *grown = realloc(buf, cap * 2 + 1);
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
    }
    if (fd != STDIN_FILENO)
        close(fd);
    if (!buf)
        return pf__fail(why, -ENOMEM, "out of memory");
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

/*
 * This machine through hwloc, with the cgroup CPU quota read as the sysfs
 * source reads it (hwloc knows no quota).
 */
static int load_hwloc_live(const char *name, pf_topology **out, char **why)
{
    int rc = pf__topology_load_hwloc(name, NULL, 0, NULL, out, why);
    if (rc == 0 && (rc = pf__sysfs_cgroup_quota("/", &(*out)->cpu_quota, why)) < 0) {
        pf_topology_free(*out);
        *out = NULL;
    }
    return rc;
}

/*
 * The live machine: sysfs, or hwloc where sysfs lacks a file the model needs
 * or may not read it (a container or emulator that shows no CPU topology in
 * /sys/devices/system/cpu; hwloc can then read /proc/cpuinfo).
 */
static int load_live(pf_topology **out, char **why)
{
    char *reason = NULL;
    int rc = pf__topology_load_sysfs("live", "/", true, out, &reason);
    if (rc == -ENOENT || rc == -EACCES) {
        free(reason);
        return load_hwloc_live("live", out, why);
    }
    if (rc < 0 && why)
        *why = reason;
    else
        free(reason);
    return rc;
}

int pf_topology_load(const char *source, pf_topology **out, char **why)
{
    if (!out)
        return pf__fail(why, -EINVAL, "no place for the topology");
    if (!source || strcmp(source, "live") == 0)
        return load_live(out, why);
    if (strcmp(source, "hwloc") == 0)
        return load_hwloc_live(source, out, why);
    if (strncmp(source, "synthetic:", 10) == 0)
        return pf__topology_load_hwloc(source, NULL, 0, source + 10, out, why);
    if (strncmp(source, "sysfs:", 6) == 0) {
        if (!source[6])
            return pf__fail(why, -EINVAL, "sysfs: needs a folder (sysfs:/path/to/root)");
        return pf__topology_load_sysfs(source, source + 6, false, out, why);
    }
    if (!*source)
        return pf__fail(why, -EINVAL, "empty topology source");

    char *text = NULL;
    size_t len = 0;
    int rc = read_file(source, &text, &len, why);
    if (rc < 0)
        return rc;
    /* XML by its first character, after a UTF-8 byte order mark and blanks. */
    size_t i = len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
        i++;
    if (i < len && text[i] == '<')
        rc = pf__topology_load_hwloc(source, text, len, NULL, out, why);
    else
        rc = pf__topology_parse_lscpu(source, text, len, out, why);
    free(text);
    return rc;
}
