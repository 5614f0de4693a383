/*
 * parse.c - the /proc file parsers of proc.h: stat, sched, schedstat,
 * status, numa_maps, cgroup.  Pure, bounded by len, fuzzed
 * (tests/fuzz/fuzz_proc.c).
 */
#include "proc/proc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

/* A decimal number at *s (sign allowed), advancing *s; false when none. */
static bool read_ll(const char **s, const char *end, long long *out)
{
    const char *p = *s;
    bool neg = false;
    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    if (p >= end || *p < '0' || *p > '9')
        return false;
    unsigned long long v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p++ - '0');
        v = v > (~0ULL - d) / 10 ? ~0ULL : v * 10 + d; /* saturates */
    }
    if (v > (unsigned long long)9223372036854775807LL)
        v = 9223372036854775807ULL;
    *out = neg ? -(long long)v : (long long)v;
    *s = p;
    return true;
}

static void skip_blanks(const char **s, const char *end)
{
    while (*s < end && (**s == ' ' || **s == '\t'))
        (*s)++;
}

int pf__proc_parse_stat(const char *text, size_t len, pf_proc_thread *out)
{
    const char *end = text + len;
    const char *open = memchr(text, '(', len);
    const char *close = NULL;
    for (const char *p = end; p > text; p--)
        if (p[-1] == ')') {
            close = p - 1;
            break;
        }
    if (!open || !close || close < open)
        return -EINVAL;
    size_t n = (size_t)(close - open - 1);
    if (n >= sizeof out->name)
        n = sizeof out->name - 1;
    memcpy(out->name, open + 1, n);
    out->name[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out->name[i] < 32)
            out->name[i] = '?';
    const char *p = close + 1;
    skip_blanks(&p, end);
    if (p >= end)
        return -EINVAL;
    out->state = *p++;
    /* Fields 4.. after the state; utime is 14, stime 15, processor 39. */
    for (int field = 4; field <= 39; field++) {
        skip_blanks(&p, end);
        long long v;
        if (!read_ll(&p, end, &v))
            return field > 15 ? 0 : -EINVAL; /* an old kernel's shorter line */
        if (field == 14)
            out->utime = v;
        else if (field == 15)
            out->stime = v;
        else if (field == 39)
            out->cpu = v >= 0 && v < (1 << 20) ? (int)v : -1;
    }
    return 0;
}

/* "key : value" lines: the value of `key` as a number, with its fraction in *frac (6 digits). */
static bool sched_value(const char *line, size_t n, const char *key, long long *whole,
                        long long *micro)
{
    size_t k = strlen(key);
    if (n <= k || memcmp(line, key, k) != 0 ||
        (line[k] != ' ' && line[k] != '\t' && line[k] != ':'))
        return false;
    const char *p = line + k, *end = line + n;
    skip_blanks(&p, end);
    if (p >= end || *p != ':')
        return false;
    p++;
    skip_blanks(&p, end);
    if (!read_ll(&p, end, whole))
        return false;
    *micro = 0;
    if (p < end && *p == '.') {
        p++;
        long long f = 0;
        int digits = 0;
        while (p < end && *p >= '0' && *p <= '9' && digits < 6) {
            f = f * 10 + (*p++ - '0');
            digits++;
        }
        while (digits++ < 6)
            f *= 10;
        *micro = f;
    }
    return true;
}

void pf__proc_parse_sched(const char *text, size_t len, pf_proc_thread *out)
{
    const char *p = text, *end = text + len, *line;
    size_t n;
    while (next_line(&p, end, &line, &n)) {
        long long whole, micro;
        if (sched_value(line, n, "se.nr_migrations", &whole, &micro))
            out->nr_migrations = whole >= 0 ? whole : -1;
        else if (sched_value(line, n, "se.sum_exec_runtime", &whole, &micro) && whole >= 0 &&
                 whole < 9223372036854LL)
            out->exec_ns = whole * 1000000 + micro; /* ms.nnnnnn */
    }
}

int pf__proc_parse_schedstat(const char *text, size_t len, pf_proc_thread *out)
{
    const char *p = text, *end = text + len;
    long long run, wait;
    skip_blanks(&p, end);
    if (!read_ll(&p, end, &run))
        return -EINVAL;
    skip_blanks(&p, end);
    if (!read_ll(&p, end, &wait) || run < 0 || wait < 0)
        return -EINVAL;
    out->run_ns = run;
    out->wait_ns = wait;
    return 0;
}

/* A CPU list value ("0-3,8") into v, bounded; false when it is not one. */
static bool read_list(const char *s, size_t n, pf__ivec *v)
{
    const char *p = s, *end = s + n;
    v->len = 0;
    skip_blanks(&p, end);
    while (p < end) {
        long long a, b;
        if (!read_ll(&p, end, &a) || a < 0 || a >= (1 << 20))
            return false;
        b = a;
        if (p < end && *p == '-') {
            p++;
            if (!read_ll(&p, end, &b) || b < a || b >= (1 << 20))
                return false;
        }
        if (b - a > 65536 || v->len > 65536)
            return false;
        for (long long x = a; x <= b; x++)
            if (pf__ivec_push(v, (int)x) < 0)
                return false;
        if (p < end && *p == ',')
            p++;
        else
            break;
    }
    skip_blanks(&p, end);
    pf__ivec_sort_unique(v); /* the kernel's are; a captured file may not be */
    return p == end || *p == '\r';
}

/* "Key:\tvalue": the value of `key` (after its blanks), or NULL. */
static const char *status_value(const char *line, size_t n, const char *key, size_t *vn)
{
    size_t k = strlen(key);
    if (n <= k || memcmp(line, key, k) != 0 || line[k] != ':')
        return NULL;
    const char *p = line + k + 1, *end = line + n;
    skip_blanks(&p, end);
    *vn = (size_t)(end - p);
    return p;
}

int pf__proc_parse_status(const char *text, size_t len, pf__ivec *cpus, pf__ivec *mems,
                          long long *voluntary, long long *involuntary, long long *rss_kb)
{
    const char *p = text, *end = text + len, *line;
    size_t n, vn;
    while (next_line(&p, end, &line, &n)) {
        const char *v;
        long long x;
        if ((v = status_value(line, n, "Cpus_allowed_list", &vn))) {
            if (cpus && !read_list(v, vn, cpus))
                cpus->len = 0;
        } else if ((v = status_value(line, n, "Mems_allowed_list", &vn))) {
            if (mems && !read_list(v, vn, mems))
                mems->len = 0;
        } else if ((v = status_value(line, n, "voluntary_ctxt_switches", &vn))) {
            if (voluntary && read_ll(&v, v + vn, &x))
                *voluntary = x;
        } else if ((v = status_value(line, n, "nonvoluntary_ctxt_switches", &vn))) {
            if (involuntary && read_ll(&v, v + vn, &x))
                *involuntary = x;
        } else if ((v = status_value(line, n, "VmRSS", &vn))) {
            if (rss_kb && read_ll(&v, v + vn, &x))
                *rss_kb = x;
        }
    }
    return 0;
}

void pf__proc_parse_numa_maps(const char *text, size_t len, unsigned long long *bytes,
                              size_t max_nodes, unsigned long long *other)
{
    const char *p = text, *end = text + len, *line;
    size_t n;
    while (next_line(&p, end, &line, &n)) {
        /* The page size first: it applies to the whole line. */
        long long page_kb = 4;
        const char *k = NULL;
        for (const char *q = line; q + 18 <= line + n; q++)
            if (memcmp(q, "kernelpagesize_kB=", 18) == 0) {
                k = q + 18;
                break;
            }
        long long v;
        if (k && read_ll(&k, line + n, &v) && v > 0 && v <= (1LL << 30))
            page_kb = v;
        const char *q = line, *qe = line + n;
        while (q < qe) {
            /* Words separated by blanks: "N<node>=<pages>". */
            while (q < qe && *q == ' ')
                q++;
            const char *w = q;
            while (q < qe && *q != ' ')
                q++;
            if (q - w >= 4 && w[0] == 'N' && w[1] >= '0' && w[1] <= '9') {
                const char *r = w + 1;
                long long node, pages;
                if (read_ll(&r, q, &node) && r < q && *r == '=') {
                    r++;
                    if (read_ll(&r, q, &pages) && r == q && node >= 0 && pages >= 0 &&
                        pages < (1LL << 40)) {
                        unsigned long long b =
                            (unsigned long long)pages * (unsigned long long)page_kb * 1024ULL;
                        if ((unsigned long long)node < max_nodes)
                            bytes[node] += b;
                        else if (other)
                            *other += b;
                    }
                }
            }
        }
    }
}

char *pf__proc_parse_cgroup(const char *text, size_t len)
{
    const char *p = text, *end = text + len, *line;
    size_t n;
    char *cpuset = NULL;
    while (next_line(&p, end, &line, &n)) {
        if (n >= 3 && memcmp(line, "0::", 3) == 0) {
            free(cpuset);
            return strndup(line + 3, n - 3);
        }
        const char *c1 = memchr(line, ':', n);
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(line + n - c1 - 1)) : NULL;
        if (!cpuset && c1 && c2) {
            /* "ID:controller,controller:/path": is cpuset among the controllers? */
            const char *c = c1 + 1;
            while (c < c2) {
                const char *e = memchr(c, ',', (size_t)(c2 - c));
                const char *we = e ? e : c2;
                if (we - c == 6 && memcmp(c, "cpuset", 6) == 0)
                    cpuset = strndup(c2 + 1, (size_t)(line + n - c2 - 1));
                c = we + 1;
            }
        }
    }
    return cpuset;
}
