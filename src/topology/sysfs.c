/*
 * sysfs.c - the topology read from Linux sysfs: the live machine (the
 * default source) and captured or constructed trees ("sysfs:<root>").
 *
 * hwloc's Linux backend reads these same files and then builds a whole
 * object tree; the model needs a few ids per CPU, so reading them directly
 * costs a fraction of the time (docs/topology.md).  Every path is read
 * relative to a root folder, "/" for this machine, so the tests run on trees.
 *
 * What is read (under sys/devices/system/ unless said), for the CPUs of
 * cpu/online:
 *   socket  cpu/cpuN/topology/physical_package_id, once per package: the
 *           CPUs of its package_cpus_list take the id its first CPU read;
 *   core    cpu/cpuN/topology/core_cpus_list (thread_siblings_list before
 *           Linux 5.7), once per core; ids are numbered as hwloc numbers
 *           them (number_cores);
 *   llc     the last Data or Unified cache of cpu/cpuN/cache/index*, once
 *           per cache: the CPUs of its shared_cpu_list share it;
 *   node    node/nodeN/cpulist;
 *   E-cores sys/devices/cpu_core and cpu_atom (Intel's hybrid PMUs), else
 *           each core's cpufreq/cpuinfo_max_freq, else its cpu_capacity,
 *           into the MAXMHZ rule of pf__topology_build;
 *   allowed (live) the cgroup cpuset and the thread's affinity mask;
 *   quota   (live) the cgroup CPU quota: cpu.max (v2) or
 *           cpu.cfs_quota_us / cpu.cfs_period_us (v1), the smallest of the
 *           process's cgroup and its ancestors.
 * Reading a file costs ~5 us (the open), so each is read once per package,
 * core or cache, not per CPU: ~20 files on a small machine, where hwloc
 * reads ~100.  Lists are cut to the online CPUs: an offline CPU is never a
 * row.
 *
 * Errors: a missing file that the model needs is -ENOENT (the live source
 * then asks hwloc instead, see topology.c); anything else a file holds that
 * is not what sysfs writes there is -EINVAL, with the file named in *why.
 */
#include "topology/topology.h"
#include "base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* sysfs files are a page; a cpulist of a huge machine a few.  More is not sysfs. */
#define MAX_SYSFS_FILE (1u << 20)
/* One read returns a sysfs attribute up to this size whole. */
#define SYSFS_PAGE 4096
/* A CPU's caches are cache/index0 .. index<this - 1> at most. */
#define MAX_CACHE_INDEX 64
#define UNSET INT_MIN

/* A root folder and the last file read under it. */
typedef struct reader {
    int rootfd;
    const char *root; /* as messages show it: no trailing '/', "" for "/" */
    size_t root_len;
    char *text; /* NUL-terminated contents of the last file read */
    size_t cap;
} reader;

static int reader_open(reader *r, const char *root, char **why)
{
    memset(r, 0, sizeof *r);
    r->rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r->rootfd < 0) {
        int err = errno;
        return pf__fail(why, err == ENOENT ? -ENOENT : -EINVAL, "cannot open sysfs root '%s': %s",
                        root, strerror(err));
    }
    r->root = root;
    r->root_len = strlen(root);
    while (r->root_len > 0 && root[r->root_len - 1] == '/')
        r->root_len--;
    return 0;
}

static void reader_close(reader *r)
{
    if (r->rootfd >= 0)
        close(r->rootfd);
    free(r->text);
}

/*
 * Read root/rel into r->text.  Returns its length, or -errno: -ENOENT (it or
 * a folder on its way is missing), -EFBIG (larger than MAX_SYSFS_FILE),
 * -EILSEQ (holds a NUL byte), -ENOMEM, or what open/read failed with.
 */
static int read_text(reader *r, const char *rel)
{
    /* O_NONBLOCK: a FIFO in a tree built to trap us reads as empty, without a writer to wait for.
     */
    int fd = openat(r->rootfd, rel, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOTDIR ? -ENOENT : -errno;
    size_t len = 0;
    int rc = 0;
    for (;;) {
        if (r->cap - len < 2) {
            size_t cap = r->cap ? r->cap * 2 : 4096;
            char *grown = cap <= 2 * (size_t)MAX_SYSFS_FILE ? realloc(r->text, cap) : NULL;
            if (!grown) {
                rc = cap <= 2 * (size_t)MAX_SYSFS_FILE ? -ENOMEM : -EFBIG;
                break;
            }
            r->text = grown;
            r->cap = cap;
        }
        ssize_t got = read(fd, r->text + len, r->cap - len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            break;
        }
        if (got == 0)
            break;
        size_t asked = r->cap - len - 1;
        len += (size_t)got;
        if (len > MAX_SYSFS_FILE) {
            rc = -EFBIG;
            break;
        }
        /*
         * sysfs writes an attribute of up to a page in one read, and a
         * short read of a regular file is its end: no second read for
         * the common case.  Longer files are read until read() says 0.
         */
        if ((size_t)got < asked && len < SYSFS_PAGE)
            break;
    }
    close(fd);
    if (rc < 0)
        return rc;
    r->text[len] = '\0';
    if (memchr(r->text, '\0', len))
        return -EILSEQ;
    return (int)len;
}

/* A failure to read root/rel as a message; returns the error code for the caller. */
static int fail_file(const reader *r, const char *rel, int rc, char **why)
{
    int len = (int)r->root_len;
    switch (rc) {
    case -ENOMEM: return pf__fail(why, -ENOMEM, "out of memory");
    case -ENOENT:
        return pf__fail(why, -ENOENT, "%.*s/%s: missing (not a Linux sysfs tree?)", len, r->root,
                        rel);
    case -EACCES: return pf__fail(why, -EACCES, "%.*s/%s: permission denied", len, r->root, rel);
    case -EFBIG:
        return pf__fail(why, -EINVAL, "%.*s/%s: larger than %u KiB, not a sysfs file", len, r->root,
                        rel, MAX_SYSFS_FILE >> 10);
    case -EILSEQ:
        return pf__fail(why, -EINVAL, "%.*s/%s: holds a NUL byte, not a sysfs file", len, r->root,
                        rel);
    default:
        return pf__fail(why, -EINVAL, "%.*s/%s: cannot read: %s", len, r->root, rel, strerror(-rc));
    }
}

/* Show at most this much of a file in a message. */
#define SHOWN 40

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* r->text without the blanks around it. */
static const char *trimmed(const reader *r, size_t *len)
{
    const char *s = r->text;
    size_t n = strlen(s);
    while (n > 0 && is_blank(s[n - 1]))
        n--;
    while (n > 0 && is_blank(*s))
        s++, n--;
    *len = n;
    return s;
}

/*
 * Read root/rel as one integer in [lo, hi].  Returns 0, 1 when `optional`
 * and the file is missing, or a failure with *why naming the file.
 */
static int read_int(reader *r, const char *rel, bool optional, long lo, long hi, long *out,
                    char **why)
{
    int rc = read_text(r, rel);
    if (rc == -ENOENT && optional)
        return 1;
    if (rc < 0)
        return fail_file(r, rel, rc, why);
    size_t len;
    const char *s = trimmed(r, &len);
    if (pf__parse_int(s, len, lo, hi, out) < 0)
        return pf__fail(why, -EINVAL, "%.*s/%s: '%.*s' is not an integer from %ld to %ld",
                        (int)r->root_len, r->root, rel, (int)(len < SHOWN ? len : SHOWN), s, lo,
                        hi);
    return 0;
}

/*
 * Read root/rel as a CPU list ("0-3,8"; blank: no CPU) into *ids (free()),
 * ascending.  Returns 0, 1 when `optional` and the file is missing (*ids
 * NULL), or a failure with *why naming the file.
 */
static int read_list(reader *r, const char *rel, bool optional, int **ids, size_t *count,
                     char **why)
{
    *ids = NULL;
    *count = 0;
    int rc = read_text(r, rel);
    if (rc == -ENOENT && optional)
        return 1;
    if (rc < 0)
        return fail_file(r, rel, rc, why);
    size_t len;
    trimmed(r, &len);
    if (len == 0)
        return 0;
    char *reason = NULL;
    rc = pf_cpulist_parse(r->text, ids, count, &reason);
    if (rc < 0) {
        rc = pf__fail(why, rc, "%.*s/%s: %s", (int)r->root_len, r->root, rel,
                      reason ? reason : pf_strerror(rc));
        free(reason);
    }
    return rc;
}

/* The row of a CPU in the ascending array of online CPUs, or -1. */
static long row_of(const int *online, size_t n, int cpu)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (online[mid] == cpu)
            return (long)mid;
        if (online[mid] < cpu)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* What the loader knows so far, one entry per online CPU (row). */
typedef struct machine {
    reader r;
    int *cpus; /* online CPU ids, ascending */
    size_t n;
    pf__cpu_row *rows;
    int *package_of; /* the row that read the package's id; UNSET */
    int *core_of;    /* the first row of the core; UNSET */
    double quota;    /* live: the cgroup CPU quota in CPUs; 0 none */
} machine;

static void machine_free(machine *m)
{
    reader_close(&m->r);
    free(m->cpus);
    free(m->rows);
    free(m->package_of);
    free(m->core_of);
}

/*
 * The online CPUs: cpu/online, or without it cpu/present less the CPUs
 * whose cpuN/online says 0.
 */
static int read_online(machine *m, char **why)
{
    const char *rel = "sys/devices/system/cpu/online";
    int rc = read_list(&m->r, rel, true, &m->cpus, &m->n, why);
    if (rc == 1) {
        rel = "sys/devices/system/cpu/present";
        rc = read_list(&m->r, rel, false, &m->cpus, &m->n, why);
        size_t kept = 0;
        for (size_t i = 0; rc == 0 && i < m->n; i++) {
            char path[96];
            long online = 1;
            snprintf(path, sizeof path, "sys/devices/system/cpu/cpu%d/online", m->cpus[i]);
            rc = read_int(&m->r, path, true, 0, 1, &online, why);
            if (rc == 1)
                rc = 0; /* no such file: a CPU that cannot go offline */
            if (rc == 0 && online)
                m->cpus[kept++] = m->cpus[i];
        }
        if (rc == 0)
            m->n = kept;
    }
    if (rc < 0)
        return rc;
    if (m->n == 0)
        return pf__fail(why, -EINVAL, "%.*s/%s: lists no CPU", (int)m->r.root_len, m->r.root, rel);
    return 0;
}

/*
 * Give every CPU of `path`'s list that has no value yet in `of` the value
 * `value` (CPUs not online are ignored).  A missing file assigns nothing.
 */
static int spread(machine *m, const char *path, int *of, int value, char **why)
{
    int *ids;
    size_t count;
    int rc = read_list(&m->r, path, true, &ids, &count, why);
    if (rc < 0)
        return rc;
    for (size_t k = 0; k < count; k++) {
        long j = row_of(m->cpus, m->n, ids[k]);
        if (j >= 0 && of[j] == UNSET)
            of[j] = value;
    }
    free(ids);
    return rc;
}

/*
 * Sockets and cores.  A package's id is read once, from its first CPU, and
 * given to the CPUs of its package_cpus_list; a core's list is read once.
 * physical_package_id -1 (unknown) numbers the packages by their first CPU,
 * as hwloc's logical indexes do.
 */
static int read_packages_and_cores(machine *m, char **why)
{
    char path[128];
    for (size_t i = 0; i < m->n; i++) {
        int cpu = m->cpus[i];
        if (m->package_of[i] == UNSET) {
            long id;
            snprintf(path, sizeof path, "sys/devices/system/cpu/cpu%d/topology/physical_package_id",
                     cpu);
            int rc = read_int(&m->r, path, false, -1, PF_ID_LIMIT - 1, &id, why);
            if (rc < 0)
                return rc;
            m->package_of[i] = (int)i;
            m->rows[i].socket = (int)id;
            snprintf(path, sizeof path, "sys/devices/system/cpu/cpu%d/topology/package_cpus_list",
                     cpu);
            rc = spread(m, path, m->package_of, (int)i, why);
            if (rc == 1) {
                snprintf(path, sizeof path,
                         "sys/devices/system/cpu/cpu%d/topology/core_siblings_list", cpu);
                rc = spread(m, path, m->package_of, (int)i, why);
            }
            if (rc < 0)
                return rc;
        }
        if (m->core_of[i] == UNSET) {
            m->core_of[i] = (int)i;
            snprintf(path, sizeof path, "sys/devices/system/cpu/cpu%d/topology/core_cpus_list",
                     cpu);
            int rc = spread(m, path, m->core_of, (int)i, why);
            if (rc == 1) {
                snprintf(path, sizeof path,
                         "sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", cpu);
                rc = spread(m, path, m->core_of, (int)i, why);
            }
            if (rc < 0)
                return rc;
        }
    }
    /* Rows that read an id hold it; the others take their package's. */
    int unknown = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->package_of[i] == (int)i && m->rows[i].socket < 0)
            m->rows[i].socket = -2 - unknown++; /* the k-th unknown package, for now */
    for (size_t i = 0; i < m->n; i++) {
        int socket = m->rows[m->package_of[i]].socket;
        m->rows[i].socket = socket < 0 ? -2 - socket : socket;
    }
    return 0;
}

/* true when the text read is this cache type. */
static bool text_is(const reader *r, const char *word)
{
    size_t len;
    const char *s = trimmed(r, &len);
    return len == strlen(word) && memcmp(s, word, len) == 0;
}

/*
 * The highest cache index of a CPU (cache/indexN), or -1 without caches.
 */
static int top_cache_index(machine *m, int cpu, char **why)
{
    char path[96];
    snprintf(path, sizeof path, "sys/devices/system/cpu/cpu%d/cache", cpu);
    int fd = openat(m->r.rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? -1 : fail_file(&m->r, path, -errno, why);
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return pf__fail(why, -ENOMEM, "out of memory");
    }
    long top = -1;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        long index;
        const char *digits = e->d_name + 5;
        if (strncmp(e->d_name, "index", 5) == 0 &&
            pf__parse_int(digits, strlen(digits), 0, MAX_CACHE_INDEX - 1, &index) == 0 &&
            index > top)
            top = index;
    }
    closedir(dir);
    return (int)top;
}

/*
 * The cache index of a CPU that is its last level: the highest-level Data
 * or Unified cache.  Linux numbers a CPU's caches by ascending level (L1d,
 * L1i, L2, L3 on x86, ARM, POWER and RISC-V alike), so it is the last index
 * of such a type, found reading from the top down.  Returns the index, -1
 * for none (no cache folder, or only instruction caches), or a failure.
 */
static int llc_index(machine *m, int cpu, char **why)
{
    int top = top_cache_index(m, cpu, why);
    for (int index = top; index >= 0; index--) {
        char path[128];
        snprintf(path, sizeof path, "sys/devices/system/cpu/cpu%d/cache/index%d/type", cpu, index);
        int rc = read_text(&m->r, path);
        if (rc == -ENOENT)
            continue;
        if (rc < 0)
            return fail_file(&m->r, path, rc, why);
        if (text_is(&m->r, "Data") || text_is(&m->r, "Unified"))
            return index;
    }
    return top < -1 ? top : -1;
}

/*
 * Last-level caches, read on the first CPU of each: every online CPU of its
 * shared_cpu_list has it.  A row's llc names its group by the row that read
 * it (-1 none); pf__topology_build renames the groups by their lowest CPU.
 */
static int read_caches(machine *m, char **why)
{
    int *llc = malloc(m->n * sizeof *llc);
    if (!llc)
        return pf__fail(why, -ENOMEM, "out of memory");
    for (size_t i = 0; i < m->n; i++)
        llc[i] = UNSET;
    int rc = 0;
    for (size_t i = 0; i < m->n && rc == 0; i++) {
        if (llc[i] != UNSET)
            continue;
        int cpu = m->cpus[i];
        int index = llc_index(m, cpu, why);
        llc[i] = index >= 0 ? (int)i : -1;
        if (index < 0) {
            rc = index == -1 ? 0 : index;
            continue;
        }
        char path[128];
        snprintf(path, sizeof path, "sys/devices/system/cpu/cpu%d/cache/index%d/shared_cpu_list",
                 cpu, index);
        rc = spread(m, path, llc, (int)i, why);
        rc = rc < 0 ? rc : 0;
    }
    for (size_t i = 0; i < m->n; i++)
        m->rows[i].llc = llc[i];
    free(llc);
    return rc;
}

/*
 * NUMA nodes: the CPUs of node/nodeN/cpulist are in node N (the lowest N
 * when a broken tree lists a CPU twice).  No node folder (a kernel without
 * NUMA): node -1, which pf__topology_build turns into the socket's id.
 */
static int read_nodes(machine *m, char **why)
{
    const char *dir_rel = "sys/devices/system/node";
    int fd = openat(m->r.rootfd, dir_rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return fail_file(&m->r, dir_rel, -errno, why);
    }
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return pf__fail(why, -ENOMEM, "out of memory");
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, "node", 4) != 0 || e->d_name[4] < '0' || e->d_name[4] > '9')
            continue;
        long node;
        const char *digits = e->d_name + 4;
        if (pf__parse_int(digits, strlen(digits), 0, PF_ID_LIMIT - 1, &node) < 0) {
            rc = pf__fail(why, -EINVAL, "%.*s/%s/%.*s: not a node folder (nodeN, N below %d)",
                          (int)m->r.root_len, m->r.root, dir_rel, SHOWN, e->d_name, PF_ID_LIMIT);
            break;
        }
        char path[320];
        snprintf(path, sizeof path, "%s/%s/cpulist", dir_rel, e->d_name);
        int *ids;
        size_t count;
        rc = read_list(&m->r, path, false, &ids, &count, why);
        if (rc < 0)
            break;
        for (size_t k = 0; k < count; k++) {
            long j = row_of(m->cpus, m->n, ids[k]);
            if (j >= 0 && (m->rows[j].node < 0 || node < m->rows[j].node))
                m->rows[j].node = (int)node;
        }
        free(ids);
    }
    closedir(dir);
    return rc;
}

/* Mark the online CPUs of a list in `mark` (one per row); returns how many there were. */
static size_t mark_online(const machine *m, const int *ids, size_t count, bool *mark)
{
    size_t online = 0;
    for (size_t k = 0; k < count; k++) {
        long j = row_of(m->cpus, m->n, ids[k]);
        if (j >= 0) {
            online++;
            mark[j] = true;
        }
    }
    return online;
}

/*
 * Intel hybrid CPUs have one PMU per core type: /sys/devices/cpu_core (P)
 * and cpu_atom (E), and cpu_lowpower (Meteor Lake's low-power E-cores).
 * Returns 1 when there are none (not a hybrid Intel CPU, or Linux < 5.13).
 */
static int read_hybrid_pmus(machine *m, char **why)
{
    static const char *const small[] = {"sys/devices/cpu_atom/cpus",
                                        "sys/devices/cpu_lowpower/cpus"};
    int *ids;
    size_t count;
    int rc = read_list(&m->r, "sys/devices/cpu_core/cpus", true, &ids, &count, why);
    if (rc != 0)
        return rc;
    bool *p = calloc(m->n, sizeof *p), *e = calloc(m->n, sizeof *e);
    if (!p || !e) {
        free(ids);
        free(p);
        free(e);
        return pf__fail(why, -ENOMEM, "out of memory");
    }
    size_t np = mark_online(m, ids, count, p), ne = 0;
    free(ids);
    for (size_t s = 0; s < 2 && rc >= 0; s++) {
        rc = read_list(&m->r, small[s], true, &ids, &count, why);
        if (rc == 0)
            mark_online(m, ids, count, e);
        free(ids);
    }
    if (rc >= 0) {
        for (size_t i = 0; i < m->n; i++)
            ne += e[i] && !p[i];
        /* One kind online (the others disabled): no E-cores, as for a one-kind hwloc. */
        for (size_t i = 0; i < m->n; i++)
            m->rows[i].efficiency = np > 0 && ne > 0 && e[i] && !p[i];
        rc = 0;
    }
    free(p);
    free(e);
    return rc;
}

/*
 * One number per core, read on its first CPU and given to its siblings, into
 * maxmhz for the MAXMHZ rule.  Returns 1 (and leaves maxmhz 0) unless every
 * core has the file.
 */
static int read_per_core(machine *m, const char *file, double scale, char **why)
{
    char path[128];
    for (size_t i = 0; i < m->n; i++) {
        if (m->core_of[i] != (int)i)
            continue;
        long value;
        snprintf(path, sizeof path, "sys/devices/system/cpu/cpu%d/%s", m->cpus[i], file);
        int rc = read_int(&m->r, path, true, 0, INT_MAX, &value, why);
        if (rc == 0 && value == 0)
            rc = 1; /* "0": unknown */
        if (rc != 0) {
            for (size_t k = 0; k < m->n; k++)
                m->rows[k].maxmhz = 0;
            return rc;
        }
        m->rows[i].maxmhz = (double)value * scale;
    }
    for (size_t i = 0; i < m->n; i++)
        m->rows[i].maxmhz = m->rows[m->core_of[i]].maxmhz;
    return 0;
}

/*
 * E-cores.  The hybrid PMUs say which core is which.  Without them, a CPU
 * whose maximum frequency (cpufreq's cpuinfo_max_freq) lies below a gap of
 * 15% is an E-core, the rule of lscpu's MAXMHZ and of hwloc's unranked CPU
 * kinds; without cpufreq (virtual machines, some ARM boards), the same rule
 * on the scheduler's cpu_capacity (1024 for the fastest core; ARM big.LITTLE).
 */
static int read_kinds(machine *m, char **why)
{
    for (size_t i = 0; i < m->n; i++)
        m->rows[i].efficiency = -1;
    int rc = read_hybrid_pmus(m, why);
    if (rc != 1)
        return rc;
    rc = read_per_core(m, "cpufreq/cpuinfo_max_freq", 1e-3, why);
    if (rc == 1)
        rc = read_per_core(m, "cpu_capacity", 1, why);
    return rc < 0 ? rc : 0;
}

/* A sort key: CPUs with equal values form a group; groups by their lowest CPU. */
typedef struct keyed {
    int value, cpu;
    size_t row;
} keyed;

static int by_value_then_cpu(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->value != y->value)
        return (x->value > y->value) - (x->value < y->value);
    return (x->cpu > y->cpu) - (x->cpu < y->cpu);
}

/*
 * For every row, the lowest CPU and the size of the group of rows sharing
 * its value (value -1, none: first -1, size 0).
 */
static int group_stats(const machine *m, const int *values, int *first, int *size)
{
    keyed *k = malloc(m->n * sizeof *k);
    if (!k)
        return -ENOMEM;
    for (size_t i = 0; i < m->n; i++)
        k[i] = (keyed){values[i], m->cpus[i], i};
    qsort(k, m->n, sizeof *k, by_value_then_cpu);
    for (size_t i = 0; i < m->n;) {
        size_t j = i;
        while (j < m->n && k[j].value == k[i].value)
            j++;
        for (size_t t = i; t < j; t++) {
            first[k[t].row] = k[i].value == -1 ? -1 : k[i].cpu;
            size[k[t].row] = k[i].value == -1 ? 0 : (int)(j - i);
        }
        i = j;
    }
    free(k);
    return 0;
}

/* A core and where hwloc's depth-first order puts it. */
#define NLEVELS 3
typedef struct core_order {
    int key[NLEVELS + 1]; /* first CPUs of its ancestors, largest first, then its own */
    size_t row;
} core_order;

static int by_tree_position(const void *a, const void *b)
{
    const core_order *x = a, *y = b;
    for (int l = 0; l <= NLEVELS; l++)
        if (x->key[l] != y->key[l])
            return (x->key[l] > y->key[l]) - (x->key[l] < y->key[l]);
    return 0;
}

/*
 * Core ids.  Any id unique per socket would do for the model; hwloc's is the
 * core's logical index, its rank in a depth-first walk of a tree whose
 * children are ordered by their first CPU.  Sorting the cores by the first
 * CPUs of their package, NUMA node and last-level cache, larger sets first
 * (a larger set is higher in the tree), then by their own first CPU gives
 * the same numbers, so that the two live sources agree.
 */
static int number_cores(machine *m, char **why)
{
    size_t n = m->n;
    int *values = malloc(n * sizeof *values);
    int *first = malloc(NLEVELS * n * sizeof *first);
    int *size = malloc(NLEVELS * n * sizeof *size);
    core_order *cores = malloc(n * sizeof *cores);
    int rc = values && first && size && cores ? 0 : -ENOMEM;
    for (int level = 0; level < NLEVELS && rc == 0; level++) {
        for (size_t i = 0; i < n; i++)
            values[i] = level == 0   ? m->rows[i].socket
                        : level == 1 ? m->rows[i].node
                                     : m->rows[i].llc;
        rc = group_stats(m, values, first + level * n, size + level * n);
    }
    size_t ncores = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (m->core_of[i] != (int)i)
            continue;
        core_order *c = &cores[ncores++];
        c->row = i;
        /* The ancestors, largest first (insertion sort of three). */
        int idx[NLEVELS] = {0, 1, 2};
        for (int a = 1; a < NLEVELS; a++)
            for (int b = a; b > 0 && size[idx[b] * n + i] > size[idx[b - 1] * n + i]; b--) {
                int t = idx[b];
                idx[b] = idx[b - 1];
                idx[b - 1] = t;
            }
        for (int l = 0; l < NLEVELS; l++)
            c->key[l] = first[idx[l] * n + i];
        c->key[NLEVELS] = m->cpus[i];
    }
    if (rc == 0) {
        qsort(cores, ncores, sizeof *cores, by_tree_position);
        for (size_t k = 0; k < ncores; k++)
            values[cores[k].row] = (int)k;
        for (size_t i = 0; i < n; i++)
            m->rows[i].core = values[m->core_of[i]];
    }
    free(values);
    free(first);
    free(size);
    free(cores);
    return rc < 0 ? pf__fail(why, rc, "out of memory") : 0;
}

/* ------------------------------------------------------------------------ */
/* The cgroup: its cpuset and its CPU quota                                  */

/* Does the comma-separated controller list list[0, len) hold `want`? */
static bool controllers_hold(const char *list, size_t len, const char *want)
{
    size_t wlen = strlen(want);
    for (size_t i = 0; i <= len;) {
        const char *comma = memchr(list + i, ',', len - i);
        size_t end = comma ? (size_t)(comma - list) : len;
        if (end - i == wlen && memcmp(list + i, want, wlen) == 0)
            return true;
        i = end + 1;
    }
    return false;
}

/*
 * The cgroup of this process that holds `controller` ("cpuset", "cpu"),
 * from the text of /proc/self/cgroup (lines "id:controllers:path"): the
 * line of the v1 hierarchy with that controller, else the v2 line
 * "0::path".  Fills `path` (starting with '/') and *v1, and for v1 the
 * hierarchy's controller list in `list` ("cpu,cpuacct", the folder systemd
 * and Docker mount it as; "" when it does not fit).  false when neither.
 */
static bool cgroup_path(const char *text, const char *controller, char *path, size_t size, bool *v1,
                        char *list, size_t list_size)
{
    bool found = false;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        const char *c1 = memchr(line, ':', len);
        const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
        if (c2) {
            const char *p = c2 + 1;
            size_t plen = len - (size_t)(p - line);
            size_t clen = (size_t)(c2 - c1 - 1);
            bool is_v1 = controllers_hold(c1 + 1, clen, controller);
            bool is_v2 = c2 == c1 + 1 && c1 - line == 1 && line[0] == '0';
            if ((is_v1 || (is_v2 && !found)) && plen > 0 && p[0] == '/') {
                if (plen >= size)
                    plen = 1; /* no such file anyway: the mount's root */
                memcpy(path, p, plen);
                path[plen] = '\0';
                *v1 = is_v1;
                found = true;
                if (is_v1) {
                    if (clen >= list_size)
                        clen = 0;
                    memcpy(list, c1 + 1, clen);
                    list[clen] = '\0';
                    return true;
                }
            }
        }
        line += len + (nl ? 1 : 0);
    }
    return found;
}

/*
 * The folder of a cgroup: mount + path, without a trailing '/'; the mount's
 * root when the path leads outside the namespace ("/../x": in a container
 * without a cgroup namespace the mount's root is the container's cgroup) or
 * is too long.  Returns its length.
 */
static size_t cgroup_dir(const char *mount, char *cgroup, char *dir, size_t size)
{
    if (strstr(cgroup, "/..") || strstr(cgroup, "//"))
        cgroup[1] = '\0';
    size_t mlen = strlen(mount);
    if (mlen + strlen(cgroup) >= size)
        cgroup[1] = '\0';
    size_t dlen = mlen + strlen(cgroup);
    memcpy(dir, mount, mlen);
    memcpy(dir + mlen, cgroup, dlen - mlen + 1);
    while (dlen > mlen && dir[dlen - 1] == '/')
        dir[--dlen] = '\0';
    return dlen;
}

/* Up one cgroup: dir without its last name.  false at the mount's root (mlen long). */
static bool cgroup_parent(char *dir, size_t *dlen, size_t mlen)
{
    if (*dlen <= mlen)
        return false;
    while (*dlen > mlen && dir[*dlen - 1] != '/')
        (*dlen)--;
    while (*dlen > mlen && dir[*dlen - 1] == '/')
        (*dlen)--;
    dir[*dlen] = '\0';
    return true;
}

/* proc/self/cgroup under the root, copied into *text (free()); NULL without one. */
static int read_self_cgroup(reader *r, char **text, char **why)
{
    *text = NULL;
    if (read_text(r, "proc/self/cgroup") < 0)
        return 0; /* no cgroups: nothing restricts */
    *text = strdup(r->text);
    return *text ? 0 : pf__fail(why, -ENOMEM, "out of memory");
}

/*
 * The cgroup cpuset: the file of the process's cgroup, or of its nearest
 * ancestor that has one (a v2 cgroup without the cpuset controller uses its
 * parent's; in a container without a cgroup namespace the process's path is
 * not below the mount, whose root is then the container's cgroup).  Empty
 * files say nothing and are skipped too.  `self` is proc/self/cgroup's text.
 */
static int cgroup_cpus(reader *r, const char *self, int **cpus, size_t *count, char **why)
{
    *cpus = NULL;
    *count = 0;
    char cgroup[PATH_MAX], list[64];
    bool v1 = false;
    if (!self || !cgroup_path(self, "cpuset", cgroup, sizeof cgroup, &v1, list, sizeof list))
        return 0;
    static const char *const v1_files[] = {"cpuset.effective_cpus", "cpuset.cpus", NULL};
    static const char *const v2_files[] = {"cpuset.cpus.effective", NULL};
    const char *mount = v1 ? "sys/fs/cgroup/cpuset" : "sys/fs/cgroup";
    const char *const *files = v1 ? v1_files : v2_files;
    char dir[PATH_MAX];
    size_t dlen = cgroup_dir(mount, cgroup, dir, sizeof dir);
    do {
        for (size_t f = 0; files[f]; f++) {
            char rel[PATH_MAX + 32];
            snprintf(rel, sizeof rel, "%s/%s", dir, files[f]);
            int rc = read_list(r, rel, true, cpus, count, why);
            if (rc < 0)
                return rc;
            if (rc == 0 && *count > 0)
                return 0;
            free(*cpus);
            *cpus = NULL;
            *count = 0;
        }
    } while (cgroup_parent(dir, &dlen, strlen(mount)));
    return 0;
}

int pf__sysfs_cgroup_cpus(const char *root, int **cpus, size_t *count, char **why)
{
    *cpus = NULL;
    *count = 0;
    reader r;
    char *self = NULL;
    int rc = reader_open(&r, root, why);
    if (rc < 0)
        return rc;
    rc = read_self_cgroup(&r, &self, why);
    if (rc == 0)
        rc = cgroup_cpus(&r, self, cpus, count, why);
    free(self);
    reader_close(&r);
    return rc;
}

/* A quota file that holds what the kernel never writes there. */
static int bad_quota(const reader *r, const char *rel, const char *expected, char **why)
{
    size_t len;
    const char *s = trimmed(r, &len);
    return pf__fail(why, -EINVAL, "%.*s/%s: '%.*s' is not a CPU quota (%s)", (int)r->root_len,
                    r->root, rel, (int)(len < SHOWN ? len : SHOWN), s, expected);
}

/*
 * A cgroup file that may be absent (no such controller at that level):
 * 1 with its trimmed text, 0 when it is missing or unreadable, or the
 * failure of reading it, naming the file.
 */
static int read_optional(reader *r, const char *rel, const char **s, size_t *len, char **why)
{
    int rc = read_text(r, rel);
    if (rc == -ENOENT || rc == -EACCES)
        return 0;
    if (rc < 0)
        return fail_file(r, rel, rc, why);
    *s = trimmed(r, len);
    return 1;
}

/*
 * One cgroup v2 level: cpu.max, "<quota> <period>" in microseconds or
 * "max <period>" (no quota).  *cpus = quota / period, 0 for none; a file
 * that is missing or unreadable (no cpu controller there) says nothing.
 */
static int quota_v2(reader *r, const char *dir, double *cpus, char **why)
{
    char rel[PATH_MAX + 32];
    snprintf(rel, sizeof rel, "%s/cpu.max", dir);
    *cpus = 0;
    size_t len;
    const char *s;
    int rc = read_optional(r, rel, &s, &len, why);
    if (rc <= 0)
        return rc;
    const char *space = memchr(s, ' ', len);
    long quota = 0, period;
    if (space) {
        size_t qlen = (size_t)(space - s);
        bool unlimited = qlen == 3 && memcmp(s, "max", 3) == 0;
        if ((unlimited || pf__parse_int(s, qlen, 1, LONG_MAX, &quota) == 0) &&
            pf__parse_int(space + 1, len - qlen - 1, 1, LONG_MAX, &period) == 0) {
            *cpus = unlimited ? 0 : (double)quota / (double)period;
            return 0;
        }
    }
    return bad_quota(r, rel, "\"max 100000\" or \"400000 100000\"", why);
}

/*
 * One cgroup v1 level: cpu.cfs_quota_us (-1: no quota) over
 * cpu.cfs_period_us.  Missing or unreadable files say nothing.
 */
static int quota_v1(reader *r, const char *dir, double *cpus, char **why)
{
    char rel[PATH_MAX + 32];
    long quota, period;
    *cpus = 0;
    snprintf(rel, sizeof rel, "%s/cpu.cfs_quota_us", dir);
    size_t len;
    const char *s;
    int rc = read_optional(r, rel, &s, &len, why);
    if (rc <= 0)
        return rc;
    if (pf__parse_int(s, len, -1, LONG_MAX, &quota) < 0 || quota == 0)
        return bad_quota(r, rel, "-1 or a number of microseconds", why);
    if (quota < 0)
        return 0;
    snprintf(rel, sizeof rel, "%s/cpu.cfs_period_us", dir);
    if ((rc = read_optional(r, rel, &s, &len, why)) <= 0)
        return rc;
    if (pf__parse_int(s, len, 1, LONG_MAX, &period) < 0)
        return bad_quota(r, rel, "a number of microseconds", why);
    *cpus = (double)quota / (double)period;
    return 0;
}

/* Is root/rel a folder (or a link to one)? */
static bool is_folder(const reader *r, const char *rel)
{
    int fd = openat(r->rootfd, rel, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/*
 * The cgroup CPU quota, in CPUs: the smallest quota / period of the
 * process's cgroup (for the cpu controller) and of every ancestor up to the
 * mount's root; 0 when none sets one.  v1 reads the cpu hierarchy at
 * sys/fs/cgroup/cpu (systemd links it to cpu,cpuacct), else under the name
 * of its controller list; v2 reads sys/fs/cgroup.  `self` is
 * proc/self/cgroup's text.
 */
static int cgroup_quota(reader *r, const char *self, double *quota, char **why)
{
    *quota = 0;
    char cgroup[PATH_MAX], list[64], mount[96];
    bool v1 = false;
    if (!self || !cgroup_path(self, "cpu", cgroup, sizeof cgroup, &v1, list, sizeof list))
        return 0;
    snprintf(mount, sizeof mount, "sys/fs/cgroup%s", v1 ? "/cpu" : "");
    if (v1 && !is_folder(r, mount) && list[0] && !strchr(list, '/') && strcmp(list, "..") != 0)
        snprintf(mount, sizeof mount, "sys/fs/cgroup/%s", list);
    char dir[PATH_MAX];
    size_t dlen = cgroup_dir(mount, cgroup, dir, sizeof dir);
    do {
        double cpus;
        int rc = v1 ? quota_v1(r, dir, &cpus, why) : quota_v2(r, dir, &cpus, why);
        if (rc < 0)
            return rc;
        if (cpus > 0 && (*quota == 0 || cpus < *quota))
            *quota = cpus;
    } while (cgroup_parent(dir, &dlen, strlen(mount)));
    return 0;
}

int pf__sysfs_cgroup_quota(const char *root, double *quota, char **why)
{
    return pf__sysfs_cgroup_quota_of(root, NULL, quota, why);
}

int pf__sysfs_cgroup_quota_of(const char *root, const char *cgroup_text, double *quota, char **why)
{
    *quota = 0;
    reader r;
    char *self = NULL;
    int rc = reader_open(&r, root, why);
    if (rc < 0)
        return rc;
    if (cgroup_text)
        self = strdup(cgroup_text);
    else
        rc = read_self_cgroup(&r, &self, why);
    if (rc == 0 && cgroup_text && !self)
        rc = pf__fail(why, -ENOMEM, "out of memory");
    if (rc == 0)
        rc = cgroup_quota(&r, self, quota, why);
    free(self);
    reader_close(&r);
    return rc;
}

/*
 * What the live machine allows: `allowed` = in the cgroup cpuset (when one
 * restricts) and in the calling thread's affinity mask (the kernel keeps the
 * mask inside the cpuset already; reading both is what hwloc does, and costs
 * one file), and the cgroup CPU quota.  proc/self/cgroup is read once for both.
 */
static int read_allowed(machine *m, const char *name, char **why)
{
    char *self = NULL;
    int *cgroup = NULL;
    size_t ncgroup = 0;
    int rc = read_self_cgroup(&m->r, &self, why);
    if (rc == 0)
        rc = cgroup_cpus(&m->r, self, &cgroup, &ncgroup, why);
    if (rc == 0)
        rc = cgroup_quota(&m->r, self, &m->quota, why);
    free(self);
    if (rc < 0) {
        free(cgroup);
        return rc;
    }
    size_t size = 0;
    int err = 0;
    cpu_set_t *mask = pf__affinity_read(&size, &err);
    if (!mask) {
        free(cgroup);
        if (err == ENOMEM)
            return pf__fail(why, -ENOMEM, "out of memory");
        return pf__fail(why, -ENOTSUP, "%s: cannot read this process's CPU affinity: %s", name,
                        strerror(err));
    }
    for (size_t i = 0; i < m->n; i++) {
        size_t cpu = (size_t)m->cpus[i];
        m->rows[i].allowed = (!cgroup || pf__sorted_has(cgroup, ncgroup, m->cpus[i])) &&
                             cpu < size * 8 && CPU_ISSET_S(cpu, size, mask);
    }
    CPU_FREE(mask);
    free(cgroup);
    return 0;
}

int pf__topology_load_sysfs(const char *name, const char *root, bool live, pf_topology **out,
                            char **why)
{
    machine m = {0};
    int rc = reader_open(&m.r, root, why);
    if (rc < 0)
        return rc;
    rc = read_online(&m, why);
    if (rc == 0) {
        m.rows = calloc(m.n, sizeof *m.rows);
        m.package_of = malloc(m.n * sizeof *m.package_of);
        m.core_of = malloc(m.n * sizeof *m.core_of);
        if (!m.rows || !m.package_of || !m.core_of)
            rc = pf__fail(why, -ENOMEM, "out of memory");
    }
    if (rc == 0) {
        for (size_t i = 0; i < m.n; i++) {
            m.rows[i] = (pf__cpu_row){.cpu = m.cpus[i], .node = -1, .llc = -1, .allowed = true};
            m.package_of[i] = m.core_of[i] = UNSET;
        }
        rc = read_packages_and_cores(&m, why);
    }
    if (rc == 0)
        rc = read_caches(&m, why);
    if (rc == 0)
        rc = read_nodes(&m, why);
    if (rc == 0)
        rc = read_kinds(&m, why);
    if (rc == 0)
        rc = number_cores(&m, why);
    if (rc == 0 && live)
        rc = read_allowed(&m, name, why);
    if (rc == 0)
        rc = pf__topology_build(name, live, m.rows, m.n, out, why);
    if (rc == 0)
        (*out)->cpu_quota = m.quota;
    machine_free(&m);
    return rc;
}
