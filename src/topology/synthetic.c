/*
 * synthetic.c - the check a synthetic description passes before hwloc reads
 * it: its form, and what building it would cost.
 *
 * hwloc's synthetic loader is fast for machines of real shapes and slow for
 * wide ones: every object it creates is inserted from the root by comparing
 * its CPU set with the objects already there, so a level of W objects side by
 * side costs W^2 set comparisons, each as long as the PU count.  "core:8192
 * pu:1" took 14 s to load on the development machine, "pack:1000 core:100
 * pu:1" minutes and gigabytes.  It also trusts its input: hwloc 2.9 aborts on a
 * level of memory-side caches ("memcache:2 pu:2") and on index interleavings
 * whose loops do not divide the level ("pack:2(indexes=core) core:2 pu:1",
 * or factors whose product overflows).  So the description is parsed here
 * first, in the subset of hwloc's syntax below, and hwloc only gets one
 * whose every token it reads as this parser does and whose cost is bounded.
 *
 *   description := [ "(" attrs ")" ] { sep } level { sep { sep } level } { sep }
 *   sep         := " " | "\n"
 *   level       := [ type ":" ] count [ "(" attrs ")" ]
 *                | "[" type [ "(" attrs ")" ] "]"     NUMA nodes attached to each
 *                                                     object of the level before
 *   type        := hwloc's names, matched as hwloc_type_sscanf() does: Package
 *                  (pack, socket), Die, NUMANode (numa, node), L1..L5 caches
 *                  (l3, L2d, L1iCache...), Group[N], Core, PU; abbreviations
 *                  of two letters or more
 *   count       := a decimal from 1, without leading zeros
 *   attrs       := attr { " " attr }
 *   attr        := ("memory=" | "size=") digits [letters]
 *                | "indexes=" (a list of exactly as many decimal ids as the
 *                  level has objects, each below PF_SYNTHETIC_MAX_PUS, none
 *                  twice | "S*N:S*N..." with S, N >= 1 and the product of the
 *                  N at most the level's width | level names "core:pack", for
 *                  the PU level only)
 *
 * The structure is checked too, as hwloc checks it after reading every
 * level (PUs last, one level each of packages, dies, cores and NUMA nodes):
 * hwloc 2.9 leaks the attached NUMA nodes when one of those checks fails.
 *
 * The cost: objects of level l (W_l of them, a_l under each parent) are
 * built depth first, children before their parent, so when one is inserted
 * the root holds the finished objects of each level above it, at most
 * a_1 + ... + a_l of them, and every comparison reads (highest PU id / 64 + 1)
 * words.  The estimate, (words) * sum over levels of W_l * (1 + a_1 + ... +
 * a_l), with the adjustments measure() explains, came within 0.9 to 1.3
 * times the measured load time over flat, deep and realistic shapes
 * (docs/topology.md).
 */
#include "topology/topology.h"
#include "base/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEVELS 64
#define MAX_COUNT 999999999ul
#define MAX_ATTACHED 64

enum kind {
    K_NONE, /* unnamed level: hwloc picks the type */
    K_PACKAGE,
    K_DIE,
    K_NUMA,
    K_CACHE,
    K_ICACHE,
    K_GROUP,
    K_CORE,
    K_PU,
    K_REFUSED /* a type hwloc knows that a level cannot be here */
};

typedef struct level {
    enum kind kind;
    unsigned long count; /* objects under each parent */
    unsigned long width; /* objects in the level */
    const char *indexes; /* the indexes= value, or NULL */
    size_t indexes_len;
} level;

typedef struct checker {
    const char *name;
    const char *s; /* the description */
    size_t len;
    size_t pos;
    char **why;
    level levels[MAX_LEVELS];
    size_t nlevels;
    size_t attached[MAX_ATTACHED]; /* the levels (0: the root) NUMA nodes hang off */
    size_t nattached;
    const char *numa_indexes; /* the attached NUMA nodes' indexes= (the last given) */
    size_t numa_indexes_len;
    unsigned long max_pu_index; /* the highest explicit PU index, or 0 */
} checker;

/*
 * One line naming the source, what is wrong and where: the text from there,
 * up to 24 printable characters, or its offset when it starts with another.
 */
static int fail_at(checker *c, size_t pos, const char *what)
{
    if (pos >= c->len)
        return pf__fail(c->why, -EINVAL, "%s: %s at the end", c->name, what);
    size_t n = 0;
    while (pos + n < c->len && n < 24 && c->s[pos + n] >= 0x20 && c->s[pos + n] < 0x7f)
        n++;
    if (n == 0)
        return pf__fail(c->why, -EINVAL, "%s: %s at offset %zu", c->name, what, pos);
    return pf__fail(c->why, -EINVAL, "%s: %s at '%.*s'", c->name, what, (int)n, c->s + pos);
}

static bool is_letter(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}
static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/*
 * hwloc__type_match() of hwloc 2.x: does s[0, n) start with the lowercase
 * `type`, at least `minmatch` characters of it, up to a character that is
 * not a letter or '-'?  Returns the length matched, or -1.
 */
static long type_match(const char *s, size_t n, const char *type, size_t minmatch)
{
    for (size_t i = 0;; i++) {
        char ch = i < n ? s[i] : '\0';
        if (!ch)
            return i < minmatch ? -1 : (long)i;
        if (ch != type[i] && ch != type[i] + 'A' - 'a') {
            if (is_letter(ch) || ch == '-')
                return -1;
            return i < minmatch ? -1 : (long)i;
        }
    }
}

/* A decimal run at s[0, n) (capped); the number of digits read. */
static size_t read_decimal(const char *s, size_t n, unsigned long cap, unsigned long *out)
{
    size_t i = 0;
    unsigned long v = 0;
    for (; i < n && is_digit(s[i]); i++)
        v = v > cap ? v : v * 10 + (unsigned long)(s[i] - '0');
    *out = v;
    return i;
}

/*
 * The kind of the type named by the whole of s[0, n), in the order
 * hwloc_type_sscanf() tries its names (an earlier name wins an abbreviation:
 * "co" is a Core only because no name before it matches).  Only a name hwloc
 * reads as the same kind, using every character, is accepted.
 */
static enum kind kind_of(const char *s, size_t n)
{
    static const struct {
        const char *name;
        size_t minmatch;
        enum kind kind;
    } names[] = {
        {"osdev", 2, K_REFUSED},
        {"block", 4, K_REFUSED},
        {"network", 3, K_REFUSED},
        {"openfabrics", 7, K_REFUSED},
        {"dma", 3, K_REFUSED},
        {"gpu", 3, K_REFUSED},
        {"coproc", 5, K_REFUSED},
        {"co-processor", 6, K_REFUSED},
        {"machine", 2, K_REFUSED},
        {"numanode", 2, K_NUMA},
        {"node", 2, K_NUMA},
        {"memcache", 5, K_REFUSED},
        {"memory-side cache", 8, K_REFUSED},
        {"package", 2, K_PACKAGE},
        {"socket", 2, K_PACKAGE},
        {"die", 2, K_DIE},
        {"core", 2, K_CORE},
        {"pu", 2, K_PU},
        {"misc", 4, K_REFUSED},
        {"bridge", 4, K_REFUSED},
        {"hostbridge", 6, K_REFUSED},
        {"pcibridge", 5, K_REFUSED},
        {"pcidev", 3, K_REFUSED},
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        long m = type_match(s, n, names[i].name, names[i].minmatch);
        if (m >= 0)
            return (size_t)m == n ? names[i].kind : K_REFUSED;
    }
    if (n >= 2 && (s[0] == 'l' || s[0] == 'L') && is_digit(s[1])) {
        unsigned long depth;
        size_t i = 1 + read_decimal(s + 1, n - 1, 100, &depth);
        bool icache = i < n && (s[i] == 'i' || s[i] == 'I');
        if (depth < 1 || depth > (icache ? 3u : 5u))
            return K_REFUSED;
        if (i < n && (icache || s[i] == 'd' || s[i] == 'D' || s[i] == 'u' || s[i] == 'U'))
            i++;
        long m = type_match(s + i, n - i, "cache", 0);
        if (m < 0 || i + (size_t)m != n)
            return K_REFUSED;
        return icache ? K_ICACHE : K_CACHE;
    }
    long m = type_match(s, n, "group", 2);
    if (m >= 0) {
        unsigned long depth;
        size_t i = (size_t)m + read_decimal(s + m, n - (size_t)m, 100, &depth);
        return i == n ? K_GROUP : K_REFUSED;
    }
    return K_REFUSED;
}

/* A count: a decimal from 1, without leading zeros, of at most 9 digits. */
static int read_count(checker *c, unsigned long *out)
{
    const char *s = c->s + c->pos;
    size_t n = read_decimal(s, c->len - c->pos, MAX_COUNT, out);
    if (n == 0 || s[0] == '0')
        return fail_at(c, c->pos, "a level needs a count (a decimal from 1)");
    if (n > 9)
        return fail_at(c, c->pos, "a count of more than 9 digits");
    c->pos += n;
    return 0;
}

/* Where an attribute value ends: at ' ' or ')'. */
static size_t value_end(const checker *c, size_t from)
{
    size_t i = from;
    while (i < c->len && c->s[i] != ' ' && c->s[i] != ')')
        i++;
    return i;
}

/*
 * The attributes after '(' up to ')': memory= and size= (digits, then
 * letters for a unit, hwloc checks which), indexes= (kept for later).
 */
static int read_attrs(checker *c, const char **indexes, size_t *indexes_len)
{
    c->pos++; /* '(' */
    for (;;) {
        const char *s = c->s + c->pos;
        size_t left = c->len - c->pos;
        size_t key = 0;
        if (left >= 7 && memcmp(s, "memory=", 7) == 0)
            key = 7;
        else if (left >= 5 && memcmp(s, "size=", 5) == 0)
            key = 5;
        if (key) {
            size_t i = c->pos + key, digits = i;
            while (i < c->len && is_digit(c->s[i]))
                i++;
            if (i == digits)
                return fail_at(c, digits, "a size needs digits");
            while (i < c->len && is_letter(c->s[i]))
                i++;
            c->pos = i;
        } else if (left >= 8 && memcmp(s, "indexes=", 8) == 0) {
            size_t start = c->pos + 8, end = value_end(c, start);
            if (end == start)
                return fail_at(c, start, "indexes= needs a value");
            for (size_t i = start; i < end; i++)
                if (!is_letter(c->s[i]) && !is_digit(c->s[i]) && !strchr(",*:-", c->s[i]))
                    return fail_at(c, i, "indexes= holds digits, ',', '*', ':' and level names");
            *indexes = c->s + start;
            *indexes_len = end - start;
            c->pos = end;
        } else {
            return fail_at(c, c->pos, "unknown attribute (memory=, size= or indexes=)");
        }
        if (c->pos < c->len && c->s[c->pos] == ' ') {
            c->pos++;
            continue;
        }
        if (c->pos < c->len && c->s[c->pos] == ')') {
            c->pos++;
            return 0;
        }
        return fail_at(c, c->pos, "attributes are separated by one blank and end with ')'");
    }
}

/* A type name: letters, digits and '-' up to `stop`. */
static int read_type(checker *c, char stop, enum kind *kind)
{
    size_t start = c->pos;
    while (c->pos < c->len &&
           (is_letter(c->s[c->pos]) || is_digit(c->s[c->pos]) || c->s[c->pos] == '-'))
        c->pos++;
    size_t n = c->pos - start;
    if (c->pos >= c->len || (c->s[c->pos] != stop && !(stop == ']' && c->s[c->pos] == '(')))
        return fail_at(c, start,
                       stop == ':' ? "a level type is followed by ':'"
                                   : "an attached type is followed by ']' or '('");
    *kind = kind_of(c->s + start, n);
    if (*kind == K_REFUSED)
        return fail_at(c, start,
                       "not a level type (Package, Die, NUMANode, L1-L5 caches, Group, Core, PU)");
    return 0;
}

static int read_attached(checker *c)
{
    size_t start = c->pos;
    c->pos++; /* '[' */
    enum kind kind;
    int rc = read_type(c, ']', &kind);
    if (rc < 0)
        return rc;
    if (kind != K_NUMA)
        return fail_at(c, start + 1, "only NUMA nodes are attached with [...]");
    if (c->pos < c->len && c->s[c->pos] == '(' &&
        (rc = read_attrs(c, &c->numa_indexes, &c->numa_indexes_len)) < 0)
        return rc;
    if (c->pos >= c->len || c->s[c->pos] != ']')
        return fail_at(c, c->pos, "an attached type ends with ']'");
    c->pos++;
    if (c->nattached == MAX_ATTACHED)
        return fail_at(c, start, "too many attached levels");
    c->attached[c->nattached++] = c->nlevels;
    return 0;
}

static int read_level(checker *c)
{
    if (c->nlevels + 1 == MAX_LEVELS)
        return fail_at(c, c->pos, "too many levels");
    level *l = &c->levels[++c->nlevels];
    *l = (level){.kind = K_NONE};
    int rc;
    if (!is_digit(c->s[c->pos])) {
        if ((rc = read_type(c, ':', &l->kind)) < 0)
            return rc;
        c->pos++; /* ':' */
    }
    if ((rc = read_count(c, &l->count)) < 0)
        return rc;
    if (c->pos < c->len && c->s[c->pos] == '(' &&
        (rc = read_attrs(c, &l->indexes, &l->indexes_len)) < 0)
        return rc;
    return 0;
}

static bool is_sep(char ch)
{
    return ch == ' ' || ch == '\n';
}

static int read_description(checker *c)
{
    int rc;
    c->levels[0] = (level){.kind = K_NONE, .count = 1, .width = 1};
    if (c->len > 0 && c->s[0] == '(' &&
        (rc = read_attrs(c, &c->levels[0].indexes, &c->levels[0].indexes_len)) < 0)
        return rc;
    for (;;) {
        while (c->pos < c->len && is_sep(c->s[c->pos]))
            c->pos++;
        if (c->pos == c->len)
            break;
        char ch = c->s[c->pos];
        if (ch == '[')
            rc = read_attached(c);
        else if (is_letter(ch) || is_digit(ch))
            rc = read_level(c);
        else
            rc = fail_at(c, c->pos, "not a level");
        if (rc < 0)
            return rc;
        if (c->pos < c->len && !is_sep(c->s[c->pos]))
            return fail_at(c, c->pos, "levels are separated by blanks");
    }
    if (c->nlevels == 0)
        return pf__fail(c->why, -EINVAL, "%s: no level (pack:2 core:4 pu:2, say)", c->name);
    return 0;
}

/*
 * indexes= of a level of `width` objects.  A list: exactly `width` ids,
 * each below PF_SYNTHETIC_MAX_PUS, none twice (*max receives the highest).
 * S*N loops: hwloc 2.9 aborts on a product of N that wraps, so each S and N
 * is from 1 to the width, and so is their product.  Level names: for the PU
 * level only, where every level named is above (elsewhere hwloc divides by
 * a larger width and aborts).
 */
static int check_indexes(checker *c, const char *v, size_t n, unsigned long width, bool pu_level,
                         unsigned long *max)
{
    size_t at = (size_t)(v - c->s);
    *max = 0;
    size_t list = 0;
    while (list < n && (is_digit(v[list]) || v[list] == ','))
        list++;
    if (list == n) {
        unsigned char *seen = calloc(PF_SYNTHETIC_MAX_PUS / 8, 1);
        if (!seen)
            return pf__fail(c->why, -ENOMEM, "out of memory");
        unsigned long count = 0;
        int rc = 0;
        for (size_t i = 0; i <= n && rc == 0; i++) {
            size_t start = i;
            unsigned long id;
            i += read_decimal(v + i, n - i, PF_SYNTHETIC_MAX_PUS, &id);
            if (i == start || (i < n && v[i] != ','))
                rc = fail_at(c, at + start, "indexes= needs ids separated by ','");
            else if (id >= PF_SYNTHETIC_MAX_PUS)
                rc = fail_at(c, at + start, "an index is too large (at most 16383)");
            else if (seen[id / 8] & (1u << (id % 8)))
                rc = fail_at(c, at + start, "an index is given twice");
            if (rc < 0)
                break;
            seen[id / 8] |= (unsigned char)(1u << (id % 8));
            if (id > *max)
                *max = id;
            count++;
        }
        free(seen);
        if (rc == 0 && count != width) {
            char what[80];
            snprintf(what, sizeof what, "indexes= lists %lu ids for %lu objects", count, width);
            rc = fail_at(c, at, what);
        }
        return rc;
    }
    if (is_digit(v[0])) {
        unsigned long product = 1;
        for (size_t i = 0;; i++) {
            unsigned long step, nb;
            size_t start = i;
            i += read_decimal(v + i, n - i, width, &step);
            if (i == start || v[start] == '0' || i >= n || v[i] != '*')
                return fail_at(c, at + start, "an interleaving loop is S*N");
            size_t second = ++i;
            i += read_decimal(v + i, n - i, width, &nb);
            if (i == second || v[second] == '0' || (i < n && v[i] != ':'))
                return fail_at(c, at + start, "an interleaving loop is S*N");
            if (step > width || nb > width || product * nb > width)
                return fail_at(c, at + start, "an interleaving loop is larger than its level");
            product *= nb;
            if (i == n)
                return 0;
        }
    }
    if (!pu_level)
        return fail_at(c, at, "indexes= by level names is for PUs only (give S*N loops)");
    return 0;
}

/*
 * The rules hwloc checks once it has read every level, here because hwloc
 * 2.9 leaks the attached NUMA nodes' memory when one fails: PUs last and
 * only there, one level each of packages, dies, cores and NUMA nodes, NUMA
 * nodes as a level or attached but not both, and the levels above the PUs
 * either all named or all unnamed (hwloc then names them).
 */
static int check_structure(checker *c)
{
    static const char *const names[] = {
        [K_PACKAGE] = "Package", [K_DIE] = "Die", [K_NUMA] = "NUMANode", [K_CORE] = "Core"};
    const level *lv = c->levels;
    size_t n = c->nlevels, unnamed = 0, seen[K_REFUSED + 1] = {0};
    if (lv[n].kind != K_PU && lv[n].kind != K_NONE)
        return pf__fail(c->why, -EINVAL, "%s: the last level is not PUs (pu:N)", c->name);
    for (size_t l = 1; l < n; l++) {
        enum kind k = lv[l].kind;
        unnamed += k == K_NONE;
        if (k == K_PU)
            return pf__fail(c->why, -EINVAL, "%s: PUs are the last level only", c->name);
        if (++seen[k] > 1 && (k == K_PACKAGE || k == K_DIE || k == K_NUMA || k == K_CORE))
            return pf__fail(c->why, -EINVAL, "%s: two %s levels", c->name, names[k]);
    }
    if (seen[K_NUMA] && c->nattached)
        return pf__fail(c->why, -EINVAL, "%s: NUMA nodes both as a level and attached ([numa])",
                        c->name);
    if (unnamed && unnamed != n - 1)
        return pf__fail(c->why, -EINVAL,
                        "%s: some levels have a type and others not (name all, or none)", c->name);
    return 0;
}

/* Widths, the PU count and the cost estimate; every indexes= checked. */
static int measure(checker *c, double *work)
{
    level *lv = c->levels;
    size_t n = c->nlevels;
    for (size_t l = 1; l <= n; l++) {
        if (lv[l].count > PF_SYNTHETIC_MAX_PUS ||
            lv[l - 1].width * lv[l].count > PF_SYNTHETIC_MAX_PUS) {
            /* the PU count, or a lower bound when it would overflow */
            double pus = 1;
            for (size_t k = 1; k <= n; k++)
                pus *= (double)lv[k].count;
            return pf__fail(c->why, -EINVAL,
                            "%s: %.0f PUs; a synthetic topology has at most %d (hwloc needs "
                            "seconds to minutes for more): give a larger machine as lscpu output",
                            c->name, pus, PF_SYNTHETIC_MAX_PUS);
        }
        lv[l].width = lv[l - 1].width * lv[l].count;
    }
    unsigned long pus = lv[n].width, numa_attached = 0, max;
    for (size_t i = 0; i < c->nattached; i++)
        numa_attached += lv[c->attached[i]].width;
    int rc = 0;
    for (size_t l = 0; l <= n && rc == 0; l++)
        if (lv[l].indexes) {
            rc = check_indexes(c, lv[l].indexes, lv[l].indexes_len, lv[l].width, l == n, &max);
            if (l == n && max > c->max_pu_index)
                c->max_pu_index = max;
        }
    if (rc == 0 && c->numa_indexes)
        rc = check_indexes(c, c->numa_indexes, c->numa_indexes_len, numa_attached, false, &max);
    if (rc < 0)
        return rc;

    /*
     * Objects of level l pass the finished objects at the root: 1 + a_1 +
     * ... + a_l.  A level pinfer filters out (dies, instruction caches)
     * groups nothing: its children stay side by side at the root, as if its
     * count multiplied theirs.  A NUMA level is two objects each (the node,
     * and the group hwloc makes to hold its CPUs).  Attached NUMA nodes also
     * look among their object's children.
     */
    double passed = 1, sum = 0, merged = 1;
    double at_level[MAX_LEVELS];
    at_level[0] = 1;
    for (size_t l = 1; l <= n; l++) {
        enum kind k = lv[l].kind;
        double side = merged * (double)lv[l].count;
        if (k == K_DIE || k == K_ICACHE) {
            merged = side;
        } else {
            merged = 1;
            passed += side;
            sum += (double)lv[l].width * passed * (k == K_NUMA ? 2 : 1);
        }
        at_level[l] = passed + (merged > 1 ? merged : 0);
    }
    for (size_t i = 0; i < c->nattached; i++) {
        size_t l = c->attached[i];
        sum += (double)lv[l].width * (at_level[l] + (l < n ? (double)lv[l + 1].count : 0));
    }
    unsigned long top = pus - 1 > c->max_pu_index ? pus - 1 : c->max_pu_index;
    *work = sum * (double)(top / 64 + 1);
    return 0;
}

int pf__synthetic_check(const char *name, const char *desc, size_t len, unsigned long *pus,
                        char **why)
{
    checker c = {.name = name, .s = desc, .len = len, .why = why};
    for (size_t i = 0; i < len; i++)
        if (desc[i] == '\0' || desc[i] == '\t' || desc[i] == '\r')
            return fail_at(&c, i, "a NUL, tab or carriage return");
    int rc = read_description(&c);
    if (rc == 0)
        rc = check_structure(&c);
    double work = 0;
    if (rc == 0)
        rc = measure(&c, &work);
    if (rc < 0)
        return rc;
    if (work > PF_SYNTHETIC_MAX_WORK)
        return pf__fail(
            why, -EINVAL,
            "%s: too wide for hwloc's synthetic loader: it would take about %.1f s, "
            "more than the %.1f s allowed (the time grows with the square of the "
            "objects side by side in a level, times the PUs): add levels between wide ones "
            "(pack:8 l3:8 core:16, not pack:8 core:128) or give the machine as lscpu "
            "output",
            name, work * PF_SYNTHETIC_SECONDS_PER_WORK,
            PF_SYNTHETIC_MAX_WORK * PF_SYNTHETIC_SECONDS_PER_WORK);
    if (pus)
        *pus = c.levels[c.nlevels].width;
    return 0;
}
