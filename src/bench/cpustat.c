/*
 * cpustat.c - each CPU's busy and total time from /proc/stat, the samples
 * of `pinfer bench`'s CPU heat map (busy share = delta busy / delta total
 * between two readings).  The parser is pure, bounded by len, fuzzed
 * (tests/fuzz/fuzz_cpu_times.c).
 *
 * A per-CPU line is "cpuN user nice system idle iowait irq softirq steal
 * guest guest_nice", in clock ticks.  Kernels before 2.6 print only the
 * first four columns, 2.6.0 seven, 2.6.11 eight, 2.6.24 nine: a missing
 * column counts 0.  guest and guest_nice are already counted in user and
 * nice (the kernel adds a guest's time to both), so they are not added
 * again.  iowait is idle time (the CPU had nothing to run while a task
 * waited on I/O), so it counts in the total and not as busy.  The
 * aggregate "cpu " line and every other line (intr, ctxt, ...) are skipped;
 * an offline CPU has no line, so the ids may have gaps.
 */
#include "pinfer.h"

#include "base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* /proc/stat of a machine with thousands of CPUs and its intr line stays far below. */
#define STAT_MAX (64u << 20)

/* The next line of [*p, end): its start and length; false at the end. */
static bool next_line(const char **p, const char *end, const char **line, size_t *n)
{
    if (*p >= end)
        return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    *line = *p;
    *n = (size_t)((nl ? nl : end) - *p);
    *p = nl ? nl + 1 : end;
    return true;
}

/* A run of digits at *s as an unsigned number, advancing *s; false when none or too large. */
static bool read_u64(const char **s, const char *end, unsigned long long *out)
{
    const char *p = *s;
    unsigned long long v = 0;
    if (p >= end || *p < '0' || *p > '9')
        return false;
    while (p < end && *p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p++ - '0');
        if (v > (~0ULL - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    *s = p;
    return true;
}

static void skip_blanks(const char **s, const char *end)
{
    while (*s < end && (**s == ' ' || **s == '\t' || **s == '\r'))
        (*s)++;
}

/*
 * A "cpuN ..." line (after its "cpu") into *t.  -EINVAL for a line that
 * names a CPU but is not one: fewer than four columns, a column that is not
 * a number, a sum past 64 bits.
 */
static int parse_cpu_line(const char *p, const char *end, pf_cpu_times *t)
{
    unsigned long long id, col[8] = {0};
    if (!read_u64(&p, end, &id) || id >= PF_ID_LIMIT)
        return -EINVAL;
    if (p < end && *p != ' ' && *p != '\t')
        return -EINVAL;
    int ncols = 0;
    for (;;) {
        skip_blanks(&p, end);
        unsigned long long v;
        if (p >= end)
            break;
        if (!read_u64(&p, end, &v) || (p < end && *p != ' ' && *p != '\t' && *p != '\r'))
            return -EINVAL;
        if (ncols < 8) /* guest, guest_nice and any later column: not added */
            col[ncols] = v;
        ncols++;
    }
    if (ncols < 4)
        return -EINVAL;
    /* user nice system idle iowait irq softirq steal */
    unsigned long long busy = 0, total;
    const int busy_cols[] = {0, 1, 2, 5, 6, 7};
    for (size_t i = 0; i < sizeof busy_cols / sizeof busy_cols[0]; i++)
        if (__builtin_add_overflow(busy, col[busy_cols[i]], &busy))
            return -EINVAL;
    if (__builtin_add_overflow(busy, col[3], &total) ||
        __builtin_add_overflow(total, col[4], &total))
        return -EINVAL;
    t->cpu = (int)id;
    t->busy = busy;
    t->total = total;
    return 0;
}

static int cpu_times_cmp(const void *a, const void *b)
{
    int x = ((const pf_cpu_times *)a)->cpu, y = ((const pf_cpu_times *)b)->cpu;
    return (x > y) - (x < y);
}

int pf_cpu_times_parse(const char *text, size_t len, pf_cpu_times **out, size_t *n, char **why)
{
    *out = NULL;
    *n = 0;
    const char *p = text ? text : "", *end = p + (text ? len : 0), *line;
    size_t ln, count = 0, cap = 0, lineno = 0;
    pf_cpu_times *v = NULL;
    while (next_line(&p, end, &line, &ln)) {
        lineno++;
        /* "cpu" and a digit: the aggregate "cpu " line is not one. */
        if (ln < 4 || memcmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9')
            continue;
        pf_cpu_times t;
        if (parse_cpu_line(line + 3, line + ln, &t) < 0) {
            free(v);
            return pf__fail(why, -EINVAL, "/proc/stat line %zu: not a CPU's times: \"%.*s\"",
                            lineno, ln > 60 ? 60 : (int)ln, line);
        }
        if (count == cap) {
            size_t grown_cap = cap ? cap * 2 : 64;
            pf_cpu_times *grown = realloc(v, grown_cap * sizeof *grown);
            if (!grown) {
                free(v);
                return pf__fail(why, -ENOMEM, "out of memory");
            }
            v = grown;
            cap = grown_cap;
        }
        v[count++] = t;
    }
    if (count == 0)
        return pf__fail(why, -EINVAL, "/proc/stat holds no \"cpuN\" line");
    /* The kernel writes them ascending; a captured or edited file may not. */
    qsort(v, count, sizeof *v, cpu_times_cmp);
    for (size_t i = 1; i < count; i++)
        if (v[i].cpu == v[i - 1].cpu) {
            int cpu = v[i].cpu;
            free(v);
            return pf__fail(why, -EINVAL, "/proc/stat has two lines of cpu%d", cpu);
        }
    *out = v;
    *n = count;
    return 0;
}

/* The whole file into *buf (malloc'd) and *len; -errno when it cannot be read. */
static int read_whole(const char *path, char **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* /proc files report size 0: read until the end, growing the buffer. */
    size_t cap = 16384, n = 0;
    char *b = malloc(cap);
    int rc = b ? 0 : -ENOMEM;
    while (rc == 0) {
        if (n == cap) {
            if (cap >= STAT_MAX) {
                rc = -EFBIG;
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
        ssize_t got = read(fd, b + n, cap - n);
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
    *buf = b;
    *len = n;
    return 0;
}

int pf_cpu_times_read(const char *root, pf_cpu_times **out, size_t *n, char **why)
{
    *out = NULL;
    *n = 0;
    char *path = pf__strdupf("%s/stat", root ? root : "/proc");
    if (!path)
        return pf__fail(why, -ENOMEM, "out of memory");
    char *text;
    size_t len;
    int rc = read_whole(path, &text, &len);
    if (rc < 0) {
        rc = rc == -ENOMEM ? pf__fail(why, rc, "out of memory")
                           : pf__fail(why, rc, "%s: cannot read: %s", path, strerror(-rc));
        free(path);
        return rc;
    }
    free(path);
    rc = pf_cpu_times_parse(text, len, out, n, why);
    free(text);
    return rc;
}
