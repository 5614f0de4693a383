/*
 * ab.c - pf_ab_parse(): the figures of Apache Bench's report (`ab` standard
 * output), the ones TorchServe's benchmark reads.  Pure, bounded by len,
 * fuzzed (tests/fuzz/fuzz_ab.c); tests/fixtures/ab/ holds real reports.
 *
 * The report is "Key:   value [unit]" lines, then the percentile table:
 *
 *     Complete requests:      300
 *     Failed requests:        257
 *        (Connect: 0, Receive: 0, Length: 257, Exceptions: 0)
 *     Non-2xx responses:      300
 *     Time per request:       0.452 [ms] (mean)
 *     Time per request:       0.113 [ms] (mean, across all concurrent requests)
 *     ...
 *     Percentage of the requests served within a certain time (ms)
 *       50%      1
 *      100%      5 (longest request)
 *
 * Lines are matched by their key, so their order does not matter and a line
 * ab did not print leaves its field unknown.  ab's own lines never repeat
 * a key except "Time per request", whose first line is the mean over the
 * concurrency (what TorchServe reports): for every key the first line wins.
 * A value that is not a plain non-negative decimal number is taken as not
 * printed rather than guessed at.
 */
#include "pinfer.h"

#include "base/util.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A number's text is copied here to be NUL-terminated for strtod/strtoll. */
#define NUMBER_MAX 40

/* The next line of [*p, end) without its "\r\n" or "\n": start and length; false at the end. */
static bool next_line(const char **p, const char *end, const char **line, size_t *n)
{
    if (*p >= end)
        return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *stop = nl ? nl : end;
    *line = *p;
    *p = nl ? nl + 1 : end;
    if (stop > *line && stop[-1] == '\r')
        stop--;
    *n = (size_t)(stop - *line);
    return true;
}

static void skip_blanks(const char **s, const char *end)
{
    while (*s < end && (**s == ' ' || **s == '\t'))
        (*s)++;
}

/* The word at *s (up to a blank or the end), advancing *s past it and the blanks after. */
static size_t take_word(const char **s, const char *end, const char **word)
{
    skip_blanks(s, end);
    *word = *s;
    while (*s < end && **s != ' ' && **s != '\t')
        (*s)++;
    size_t n = (size_t)(*s - *word);
    skip_blanks(s, end);
    return n;
}

/*
 * [s, s + n) as a count: digits only (strtoll alone would take a sign,
 * blanks and a "0x"), in range.  false when it is not one.
 */
static bool parse_count(const char *s, size_t n, long long *out)
{
    char buf[NUMBER_MAX];
    if (n == 0 || n >= sizeof buf)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    char *stop;
    long long v = strtoll(buf, &stop, 10);
    if (errno != 0 || *stop != '\0')
        return false;
    *out = v;
    return true;
}

/*
 * [s, s + n) as ab prints a measure ("12.345", "1018"): digits with at most
 * one point between digits; no sign, exponent, "inf" or "nan", which
 * strtod would take.  false when it is not one.
 */
static bool parse_measure(const char *s, size_t n, double *out)
{
    char buf[NUMBER_MAX];
    if (n == 0 || n >= sizeof buf || s[0] == '.' || s[n - 1] == '.')
        return false;
    int points = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.')
            points++;
        else if (s[i] < '0' || s[i] > '9')
            return false;
    }
    if (points > 1)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    char *stop;
    double v = strtod(buf, &stop);
    if (errno != 0 || *stop != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* When the line is "key: ...", the text after the colon and its blanks; else NULL. */
static const char *after_key(const char *line, const char *end, const char *key)
{
    size_t k = strlen(key);
    if ((size_t)(end - line) < k || memcmp(line, key, k) != 0)
        return NULL;
    const char *p = line + k;
    skip_blanks(&p, end);
    return p;
}

/* true when [s, end) holds `needle`. */
static bool contains(const char *s, const char *end, const char *needle)
{
    size_t k = strlen(needle);
    for (; (size_t)(end - s) >= k; s++)
        if (memcmp(s, needle, k) == 0)
            return true;
    return false;
}

/* The field of the percentile table's row for pct, or NULL for a row pinfer does not keep. */
static double *percentile_field(pf_ab_result *r, long long pct)
{
    switch (pct) {
    case 50: return &r->p50_ms;
    case 66: return &r->p66_ms;
    case 75: return &r->p75_ms;
    case 80: return &r->p80_ms;
    case 90: return &r->p90_ms;
    case 95: return &r->p95_ms;
    case 98: return &r->p98_ms;
    case 99: return &r->p99_ms;
    case 100: return &r->p100_ms;
    default: return NULL;
    }
}

/*
 * A row of the percentile table: "  50%      1" or " 100%      5 (longest
 * request)".  false when the line is not a row, which ends the table.
 */
static bool table_row(const char *p, const char *end, pf_ab_result *r)
{
    const char *word;
    size_t n = take_word(&p, end, &word);
    long long pct, dummy;
    double ms;
    if (n < 2 || word[n - 1] != '%' || !parse_count(word, n - 1, &pct))
        return false;
    n = take_word(&p, end, &word);
    if (!parse_measure(word, n, &ms))
        return parse_count(word, n, &dummy); /* a value too long to keep: still a row */
    double *field = percentile_field(r, pct);
    if (field && *field < 0)
        *field = ms;
    return true;
}

/* The first word of the value as a count into *field (-1: not one), unless a line did before. */
static void set_count(const char *p, const char *end, long long *field, bool *seen)
{
    const char *word;
    size_t n = take_word(&p, end, &word);
    long long v;
    if (!*seen)
        *field = parse_count(word, n, &v) ? v : -1;
    *seen = true;
}

static void set_measure(const char *p, const char *end, double *field, bool *seen)
{
    const char *word;
    size_t n = take_word(&p, end, &word);
    double v;
    if (!*seen)
        *field = parse_measure(word, n, &v) ? v : -1;
    *seen = true;
}

int pf_ab_parse(const char *text, size_t len, pf_ab_result *out, char **why)
{
    pf_ab_result r;
    r.complete = r.failed = -1;
    r.non_2xx = 0; /* ab prints the line only when there was one */
    r.time_taken_s = r.requests_per_s = r.mean_ms = -1;
    r.p50_ms = r.p66_ms = r.p75_ms = r.p80_ms = r.p90_ms = -1;
    r.p95_ms = r.p98_ms = r.p99_ms = r.p100_ms = -1;
    bool seen_complete = false, seen_failed = false, seen_non_2xx = false;
    bool seen_time = false, seen_rate = false, seen_mean = false;
    bool in_table = false, seen_table = false;
    const char *p = text ? text : "", *end = p + (text ? len : 0), *line;
    size_t n;
    while (next_line(&p, end, &line, &n)) {
        const char *s = line, *e = line + n, *v;
        skip_blanks(&s, e);
        if (in_table && table_row(s, e, &r))
            continue;
        in_table = false;
        if ((v = after_key(s, e, "Complete requests:")))
            set_count(v, e, &r.complete, &seen_complete);
        else if ((v = after_key(s, e, "Failed requests:")))
            set_count(v, e, &r.failed, &seen_failed);
        else if ((v = after_key(s, e, "Non-2xx responses:")))
            set_count(v, e, &r.non_2xx, &seen_non_2xx);
        else if ((v = after_key(s, e, "Time taken for tests:")))
            set_measure(v, e, &r.time_taken_s, &seen_time);
        else if ((v = after_key(s, e, "Requests per second:")))
            set_measure(v, e, &r.requests_per_s, &seen_rate);
        else if ((v = after_key(s, e, "Time per request:")) && !contains(v, e, "across"))
            set_measure(v, e, &r.mean_ms, &seen_mean);
        else if (after_key(s, e, "Percentage of the requests served within") && !seen_table)
            in_table = seen_table = true; /* a second table (a second report) is not read */
    }
    *out = r;
    if (!seen_complete)
        return pf__fail(why, -EINVAL,
                        "not a report of ab: no \"Complete requests\" line (ab stopped early?)");
    if (r.complete < 0)
        return pf__fail(why, -EINVAL, "ab's report: \"Complete requests\" is not a count");
    return 0;
}
