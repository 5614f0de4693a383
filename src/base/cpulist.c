/*
 * cpulist.c - parse and format id lists such as "0-3,8,10-11".
 *
 * Parsing collects ranges first, then sorts and merges them, and only then
 * expands them into ids: a list that repeats a large range many times costs
 * the size of the result, not the size of the repetition.
 */
#include "pinfer.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct range {
    int lo, hi;
} range;

static int range_cmp(const void *a, const void *b)
{
    const range *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Trim blanks around [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_blank(**s))
        (*s)++;
    while (*e > *s && is_blank((*e)[-1]))
        (*e)--;
}

static int parse_id(const char *s, const char *e, const char *item, size_t item_len, int *out,
                    char **why)
{
    trim(&s, &e);
    long v;
    int rc = pf__parse_int(s, (size_t)(e - s), 0, PF_ID_LIMIT - 1, &v);
    if (rc == -ERANGE)
        return pf__fail(why, -EINVAL, "'%.*s' is out of range (ids go up to %d)", (int)item_len,
                        item, PF_ID_LIMIT - 1);
    if (rc < 0)
        return pf__fail(why, -EINVAL, "'%.*s' is not an id or a range of ids", (int)item_len, item);
    *out = (int)v;
    return 0;
}

/* Parse one item "N" or "N-M" of [s, e) (already trimmed). */
static int parse_item(const char *s, const char *e, range *out, char **why)
{
    const char *dash = memchr(s, '-', (size_t)(e - s));
    size_t len = (size_t)(e - s);
    if (!dash) {
        int rc = parse_id(s, e, s, len, &out->lo, why);
        out->hi = out->lo;
        return rc;
    }
    if (dash == s || dash + 1 == e)
        return pf__fail(why, -EINVAL, "'%.*s' is not an id or a range of ids", (int)len, s);
    int rc = parse_id(s, dash, s, len, &out->lo, why);
    if (rc == 0)
        rc = parse_id(dash + 1, e, s, len, &out->hi, why);
    if (rc == 0 && out->hi < out->lo)
        rc = pf__fail(why, -EINVAL, "'%.*s' is a range that runs backwards", (int)len, s);
    return rc;
}

int pf_cpulist_parse(const char *text, int **ids, size_t *count, char **why)
{
    if (!text || !ids || !count)
        return pf__fail(why, -EINVAL, "no list given");
    range *ranges = NULL;
    size_t nranges = 0, cap = 0;
    int rc = 0;
    const char *p = text, *end = text + strlen(text);
    while (p <= end && rc == 0) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *item_end = comma ? comma : end;
        const char *s = p, *e = item_end;
        trim(&s, &e);
        if (s == e) {
            /* Only the item after a final comma may be empty. */
            if (comma || nranges == 0)
                rc = pf__fail(why, -EINVAL,
                              nranges == 0 && !comma ? "the list is empty"
                                                     : "the list has an empty item");
            break;
        }
        if (nranges == cap) {
            cap = cap ? cap * 2 : 8;
            range *grown = realloc(ranges, cap * sizeof *grown);
            if (!grown) {
                rc = pf__fail(why, -ENOMEM, "out of memory");
                break;
            }
            ranges = grown;
        }
        rc = parse_item(s, e, &ranges[nranges], why);
        if (rc == 0)
            nranges++;
        if (!comma)
            break;
        p = comma + 1;
    }
    if (rc < 0) {
        free(ranges);
        return rc;
    }

    /* Merge overlapping ranges, then expand. */
    qsort(ranges, nranges, sizeof *ranges, range_cmp);
    size_t merged = 0, total = 0;
    for (size_t i = 0; i < nranges; i++) {
        if (merged > 0 && ranges[i].lo <= ranges[merged - 1].hi + 1) {
            if (ranges[i].hi > ranges[merged - 1].hi)
                ranges[merged - 1].hi = ranges[i].hi;
        } else {
            ranges[merged++] = ranges[i];
        }
    }
    for (size_t i = 0; i < merged; i++)
        total += (size_t)(ranges[i].hi - ranges[i].lo) + 1;
    int *out = malloc(total * sizeof *out);
    if (!out) {
        free(ranges);
        return pf__fail(why, -ENOMEM, "out of memory");
    }
    size_t n = 0;
    for (size_t i = 0; i < merged; i++)
        for (int id = ranges[i].lo; id <= ranges[i].hi; id++)
            out[n++] = id;
    free(ranges);
    *ids = out;
    *count = n;
    return 0;
}

int pf_cpulist_format(const int *ids, size_t count, char **text)
{
    if (!text || (count > 0 && !ids))
        return -EINVAL;
    int *sorted = malloc((count ? count : 1) * sizeof *sorted);
    if (!sorted)
        return -ENOMEM;
    if (count)
        memcpy(sorted, ids, count * sizeof *sorted);
    qsort(sorted, count, sizeof *sorted, pf__int_cmp);
    if (count > 0 && sorted[0] < 0) {
        free(sorted);
        return -EINVAL;
    }
    /* Each id prints in at most 11 characters plus a separator. */
    size_t cap = count * 12 + 1, len = 0;
    char *out = malloc(cap);
    if (!out) {
        free(sorted);
        return -ENOMEM;
    }
    out[0] = '\0';
    for (size_t i = 0; i < count;) {
        size_t j = i;
        while (j + 1 < count && (sorted[j + 1] == sorted[j] || sorted[j + 1] == sorted[j] + 1))
            j++;
        int n =
            sorted[i] == sorted[j]
                ? snprintf(out + len, cap - len, "%s%d", len ? "," : "", sorted[i])
                : snprintf(out + len, cap - len, "%s%d-%d", len ? "," : "", sorted[i], sorted[j]);
        len += (size_t)n;
        i = j + 1;
    }
    free(sorted);
    *text = out;
    return 0;
}
