/*
 * histogram.c - pf_histogram: latencies with bounded relative error,
 * HdrHistogram's log-linear layout.
 *
 * With p = precision_bits and H = 2^p, the values [0, 2H) each have a
 * counter of their own (width 1).  Above that, each power of two
 * [2^(p+k), 2^(p+k+1)), k >= 1, is split into H sub-buckets of width 2^k.
 * A sub-bucket's width is at most 1/H of the values it holds, so any value
 * reported for it (its lowest or highest equivalent) is within 1/H of every
 * value recorded in it.
 *
 * The counters sit in one array, in value order: value v < 2H is at index
 * v; above, with k = msb(v) - p, v >> k falls in [H, 2H) and the index is
 * k * H + (v >> k), which continues where the previous power of two ended.
 * Recording is a count of leading zeros, a shift and an add (and two
 * comparisons, which keep min and max at hand); a percentile is one walk
 * over the counters.
 */
#include "pinfer.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct pf_histogram {
    long long highest;
    int precision_bits;
    size_t ncounts;
    long long *counts;
    long long total;
    long long clamped;
    size_t lowest_index, highest_index; /* of the recorded values; valid when total > 0 */
    double sum;                         /* of the recorded values, exact below 2^53 */
};

static size_t index_of(int p, long long value)
{
    unsigned long long v = (unsigned long long)value;
    if (v < (2ull << p))
        return (size_t)v;
    int msb = 63 - __builtin_clzll(v);
    int k = msb - p;
    return ((size_t)k << p) + (size_t)(v >> k);
}

/* The smallest value of the counter at index i, and the width of its range. */
static long long lowest_at(int p, size_t i, long long *width)
{
    if (i < ((size_t)2 << p)) {
        *width = 1;
        return (long long)i;
    }
    int k = (int)(i >> p) - 1;
    unsigned long long sub = (unsigned long long)i - ((unsigned long long)k << p);
    *width = 1ll << k;
    return (long long)(sub << k);
}

/* The largest value the counter at index i stands for, never above `highest`. */
static long long highest_at(const pf_histogram *h, size_t i)
{
    long long width;
    long long low = lowest_at(h->precision_bits, i, &width);
    long long high = low + (width - 1);
    return high < h->highest ? high : h->highest;
}

int pf_histogram_create(long long highest, int precision_bits, pf_histogram **out)
{
    *out = NULL;
    /* The top bound keeps every index and every highest equivalent within 63 bits. */
    if (highest < 2 || highest > (1ll << 62) || precision_bits < 1 || precision_bits > 14)
        return -EINVAL;
    pf_histogram *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->highest = highest;
    h->precision_bits = precision_bits;
    h->ncounts = index_of(precision_bits, highest) + 1;
    h->counts = calloc(h->ncounts, sizeof *h->counts);
    if (!h->counts) {
        free(h);
        return -ENOMEM;
    }
    *out = h;
    return 0;
}

void pf_histogram_free(pf_histogram *h)
{
    if (!h)
        return;
    free(h->counts);
    free(h);
}

void pf_histogram_record(pf_histogram *h, long long value, long long count)
{
    if (count <= 0)
        return;
    if (value < 0)
        value = 0;
    if (value > h->highest) {
        value = h->highest;
        h->clamped += count;
    }
    size_t i = index_of(h->precision_bits, value);
    h->counts[i] += count;
    if (h->total == 0 || i < h->lowest_index)
        h->lowest_index = i;
    if (h->total == 0 || i > h->highest_index)
        h->highest_index = i;
    h->total += count;
    h->sum += (double)value * (double)count;
}

int pf_histogram_add(pf_histogram *dst, const pf_histogram *src)
{
    if (dst->highest != src->highest || dst->precision_bits != src->precision_bits)
        return -EINVAL;
    if (src->total == 0)
        return 0;
    for (size_t i = src->lowest_index; i <= src->highest_index; i++)
        dst->counts[i] += src->counts[i];
    if (dst->total == 0 || src->lowest_index < dst->lowest_index)
        dst->lowest_index = src->lowest_index;
    if (dst->total == 0 || src->highest_index > dst->highest_index)
        dst->highest_index = src->highest_index;
    dst->total += src->total;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
    return 0;
}

void pf_histogram_reset(pf_histogram *h)
{
    memset(h->counts, 0, h->ncounts * sizeof *h->counts);
    h->total = 0;
    h->clamped = 0;
    h->sum = 0;
}

long long pf_histogram_count(const pf_histogram *h)
{
    return h->total;
}

long long pf_histogram_clamped(const pf_histogram *h)
{
    return h->clamped;
}

long long pf_histogram_min(const pf_histogram *h)
{
    long long width;
    return h->total ? lowest_at(h->precision_bits, h->lowest_index, &width) : 0;
}

long long pf_histogram_max(const pf_histogram *h)
{
    return h->total ? highest_at(h, h->highest_index) : 0;
}

double pf_histogram_mean(const pf_histogram *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}

long long pf_histogram_percentile(const pf_histogram *h, double pct)
{
    if (h->total == 0)
        return 0;
    if (!(pct > 0)) /* also NaN */
        pct = 0;
    if (pct > 100)
        pct = 100;
    /*
     * The rank wanted: at least pct% of the samples at or below it.  The
     * product is rounded down by a relative 1e-12 first, so that 99.9% of
     * 1000 (999.0000000000001 in binary) is rank 999, not 1000.
     */
    double x = pct / 100.0 * (double)h->total;
    long long rank = (long long)ceil(x - x * 1e-12);
    if (rank < 1)
        rank = 1;
    if (rank > h->total)
        rank = h->total;
    long long seen = 0;
    for (size_t i = h->lowest_index; i <= h->highest_index; i++) {
        seen += h->counts[i];
        if (seen >= rank)
            return highest_at(h, i);
    }
    return pf_histogram_max(h);
}
