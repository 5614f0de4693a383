/*
 * test_bench_parse.c - the benchmark's two parsers: Apache Bench's report
 * (pf_ab_parse) on real reports (tests/fixtures/ab/README.md says how each
 * was made) and on damaged ones; /proc/stat's per-CPU times
 * (pf_cpu_times_parse) on captured and hand-made files
 * (tests/fixtures/procstat/README.md), and pf_cpu_times_read on the live
 * /proc and on trees it cannot read.
 */
#include "pf_test.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A fixture's whole text (malloc'd, NUL-terminated), or a test failure. */
static char *read_fixture(const char *name, size_t *len)
{
    const char *path = fixture(name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - 1 - n, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- Apache Bench ---- */

/* a == b as parsed from the same decimal text (cmocka has no double assertion). */
#define assert_near(a, b) assert_near_((a), (b), #a, __LINE__)
static void assert_near_(double a, double b, const char *what, int line)
{
    if (!(a - b <= 1e-9 && b - a <= 1e-9))
        fail_msg("line %d: %s is %.17g, not %.17g", line, what, a, b);
}

/* What one fixture says, as ab printed it. */
typedef struct ab_case {
    const char *file;
    long long complete, failed, non_2xx;
    double time_taken_s, requests_per_s, mean_ms;
    double pct[9]; /* 50 66 75 80 90 95 98 99 100 */
} ab_case;

static const ab_case AB_CASES[] = {
    {"ab/plain.txt", 500, 0, 0, 0.203, 2463.26, 1.624, {2, 2, 2, 2, 2, 2, 2, 2, 3}},
    {"ab/keepalive.txt", 1000, 0, 0, 0.123, 8112.93, 0.986, {1, 1, 1, 1, 2, 3, 3, 4, 12}},
    {"ab/non2xx.txt", 300, 0, 300, 0.041, 7266.39, 0.550, {0, 1, 1, 1, 1, 1, 2, 3, 4}},
    {"ab/length_failures.txt", 300, 257, 0, 0.034, 8858.18, 0.452, {0, 0, 1, 1, 1, 1, 2, 2, 3}},
    {"ab/dropped.txt", 200, 67, 0, 0.077, 2599.33, 1.539, {1, 2, 2, 2, 2, 2, 4, 5, 5}},
    {"ab/post_keepalive.txt", 400, 0, 0, 0.058, 6951.20, 1.439, {1, 1, 2, 2, 3, 4, 5, 10, 20}},
};

static void pcts(const pf_ab_result *r, double out[9])
{
    const double v[9] = {r->p50_ms, r->p66_ms, r->p75_ms, r->p80_ms, r->p90_ms,
                         r->p95_ms, r->p98_ms, r->p99_ms, r->p100_ms};
    memcpy(out, v, sizeof v);
}

static void check_ab(const ab_case *c, const pf_ab_result *r)
{
    assert_int_equal(r->complete, c->complete);
    assert_int_equal(r->failed, c->failed);
    assert_int_equal(r->non_2xx, c->non_2xx);
    assert_near(r->time_taken_s, c->time_taken_s);
    assert_near(r->requests_per_s, c->requests_per_s);
    assert_near(r->mean_ms, c->mean_ms);
    double got[9];
    pcts(r, got);
    for (int i = 0; i < 9; i++)
        assert_near(got[i], c->pct[i]);
}

static int ab_text(const char *text, pf_ab_result *r, char **why)
{
    return pf_ab_parse(text, strlen(text), r, why);
}

static void test_ab_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof AB_CASES / sizeof AB_CASES[0]; i++) {
        size_t len;
        char *text = read_fixture(AB_CASES[i].file, &len);
        pf_ab_result r;
        char *why = NULL;
        print_message("%s\n", AB_CASES[i].file);
        assert_int_equal(pf_ab_parse(text, len, &r, &why), 0);
        assert_null(why);
        check_ab(&AB_CASES[i], &r);
        free(text);
    }
}

/* The same reports with "\r\n" line ends, and without the NUL after their last byte. */
static void test_ab_crlf_and_bounds(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof AB_CASES / sizeof AB_CASES[0]; i++) {
        size_t len;
        char *text = read_fixture(AB_CASES[i].file, &len);
        char *crlf = malloc(2 * len + 1);
        assert_non_null(crlf);
        size_t n = 0;
        for (size_t j = 0; j < len; j++) {
            if (text[j] == '\n')
                crlf[n++] = '\r';
            crlf[n++] = text[j];
        }
        /* An exact-size copy: ASan catches a read past len. */
        char *exact = malloc(n);
        assert_non_null(exact);
        memcpy(exact, crlf, n);
        pf_ab_result r;
        assert_int_equal(pf_ab_parse(exact, n, &r, NULL), 0);
        check_ab(&AB_CASES[i], &r);
        free(exact);
        free(crlf);
        free(text);
    }
}

static void test_ab_not_a_report(void **state)
{
    (void)state;
    pf_ab_result r;
    char *why = NULL;
    /* ab that could not connect: its banner, no report. */
    size_t len;
    char *text = read_fixture("ab/refused.txt", &len);
    assert_int_equal(pf_ab_parse(text, len, &r, &why), -EINVAL);
    assert_non_null(why);
    assert_non_null(strstr(why, "Complete requests"));
    assert_null(strchr(why, '\n'));
    assert_int_equal(r.complete, -1);
    free(why);
    free(text);
    /* Empty, NULL, garbage, binary. */
    why = NULL;
    assert_int_equal(pf_ab_parse("", 0, &r, &why), -EINVAL);
    assert_non_null(why);
    free(why);
    assert_int_equal(pf_ab_parse(NULL, 0, &r, NULL), -EINVAL);
    assert_int_equal(ab_text("hello\nworld\n%%%\n 50% 3\n", &r, NULL), -EINVAL);
    const char bin[] = {'\0', '\377', 'C', '\n', '\0'};
    assert_int_equal(pf_ab_parse(bin, sizeof bin, &r, NULL), -EINVAL);
    /* A "Complete requests" line without a count. */
    why = NULL;
    assert_int_equal(ab_text("Complete requests:   lots\n", &r, &why), -EINVAL);
    assert_non_null(strstr(why, "not a count"));
    free(why);
    assert_int_equal(ab_text("Complete requests:\n", &r, NULL), -EINVAL);
    assert_int_equal(ab_text("Complete requests:   -5\n", &r, NULL), -EINVAL);
    assert_int_equal(ab_text("Complete requests:   99999999999999999999999\n", &r, NULL), -EINVAL);
    /* The key must start the line (after blanks). */
    assert_int_equal(ab_text("x Complete requests: 5\n", &r, NULL), -EINVAL);
}

static void test_ab_missing_fields(void **state)
{
    (void)state;
    pf_ab_result r;
    /* Only the count: everything else unknown, non_2xx 0 (ab prints it only when there were some).
     */
    assert_int_equal(ab_text("Complete requests: 7", &r, NULL), 0);
    assert_int_equal(r.complete, 7);
    assert_int_equal(r.failed, -1);
    assert_int_equal(r.non_2xx, 0);
    assert_true(r.time_taken_s == -1 && r.requests_per_s == -1 && r.mean_ms == -1);
    double got[9];
    pcts(&r, got);
    for (int i = 0; i < 9; i++)
        assert_true(got[i] == -1);
    /* ab run with -d (no percentile table), lines out of order, tabs. */
    assert_int_equal(ab_text("Requests per second:\t12.5 [#/sec] (mean)\n"
                             "Time per request:   0.5 [ms] (mean, across all concurrent requests)\n"
                             "Time per request:   2.0 [ms] (mean)\n"
                             "Failed requests:    3\n"
                             "   (Connect: 1, Receive: 0, Length: 2, Exceptions: 0)\n"
                             "Complete requests:  10\n",
                             &r, NULL),
                     0);
    assert_int_equal(r.complete, 10);
    assert_int_equal(r.failed, 3);
    assert_true(r.requests_per_s == 12.5);
    assert_true(r.mean_ms == 2.0); /* not the "across all concurrent requests" one */
    assert_true(r.time_taken_s == -1 && r.p50_ms == -1);
    /* A table cut short, rows it does not keep, a row with a fraction. */
    assert_int_equal(ab_text("Complete requests: 4\n"
                             "Percentage of the requests served within a certain time (ms)\n"
                             "  50%      1.5\n"
                             "  33%      9\n"
                             "  90%      3\n",
                             &r, NULL),
                     0);
    assert_true(r.p50_ms == 1.5 && r.p90_ms == 3 && r.p66_ms == -1 && r.p100_ms == -1);
    /* Rows outside the table are not read; the table ends at a line that is no row. */
    assert_int_equal(ab_text("  50%   7\nComplete requests: 4\n"
                             "Percentage of the requests served within a certain time (ms)\n"
                             "  50%      1\n\n  90%      3\n",
                             &r, NULL),
                     0);
    assert_true(r.p50_ms == 1 && r.p90_ms == -1);
}

static void test_ab_bad_values(void **state)
{
    (void)state;
    pf_ab_result r;
    /* A value that is not a plain number is unknown (-1), not a guess. */
    assert_int_equal(ab_text("Complete requests: 5\n"
                             "Failed requests: 0x10\n"
                             "Non-2xx responses: many\n"
                             "Time taken for tests: nan seconds\n"
                             "Requests per second: 1e3 [#/sec] (mean)\n"
                             "Time per request: -2.5 [ms] (mean)\n"
                             "Percentage of the requests served within a certain time (ms)\n"
                             "  50%      inf\n"
                             "  66%      1..2\n"
                             "  75%      .5\n"
                             "  80%      5.\n",
                             &r, NULL),
                     0);
    assert_int_equal(r.complete, 5);
    assert_int_equal(r.failed, -1);
    assert_int_equal(r.non_2xx, -1);
    assert_true(r.time_taken_s == -1 && r.requests_per_s == -1 && r.mean_ms == -1);
    assert_true(r.p50_ms == -1 && r.p66_ms == -1 && r.p75_ms == -1 && r.p80_ms == -1);
    /* The first line of a key wins, even when a later one is better. */
    assert_int_equal(ab_text("Complete requests: 5\nComplete requests: 6\n"
                             "Failed requests: x\nFailed requests: 1\n",
                             &r, NULL),
                     0);
    assert_int_equal(r.complete, 5);
    assert_int_equal(r.failed, -1);
    /* Two reports one after the other: the first one's figures. */
    size_t first, second;
    char *text = read_fixture("ab/plain.txt", &first);
    char *other = read_fixture("ab/keepalive.txt", &second);
    char *two = malloc(first + second);
    assert_non_null(two);
    memcpy(two, text, first);
    memcpy(two + first, other, second);
    assert_int_equal(pf_ab_parse(two, first + second, &r, NULL), 0);
    check_ab(&AB_CASES[0], &r);
    free(two);
    free(other);
    free(text);
}

/* ---- /proc/stat ---- */

typedef struct cpu_case {
    const char *file;
    size_t n;
    pf_cpu_times want[4];
} cpu_case;

/* Worked out by hand from the files (busy = user+nice+system+irq+softirq+steal). */
static const cpu_case CPU_CASES[] = {
    {"procstat/live2cpu.stat",
     2,
     {{0, 875862 + 12 + 125274 + 0 + 3026 + 317,
       875862 + 12 + 125274 + 3026 + 317 + 1125577 + 2023},
      {1, 1140096 + 1 + 157507 + 0 + 4005 + 317,
       1140096 + 1 + 157507 + 4005 + 317 + 823107 + 9822}}},
    {"procstat/offline4cpu.stat", 3, {{0, 1542, 11642}, {1, 2173, 11323}, {3, 2453, 23603}}},
    {"procstat/oldkernel.stat", 2, {{0, 4100, 50100}, {1, 5200, 49200}}},
};

static void check_cpus(const cpu_case *c, const pf_cpu_times *v, size_t n)
{
    assert_int_equal(n, c->n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(v[i].cpu, c->want[i].cpu);
        assert_int_equal(v[i].busy, c->want[i].busy);
        assert_int_equal(v[i].total, c->want[i].total);
    }
}

static void test_cpu_times_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof CPU_CASES / sizeof CPU_CASES[0]; i++) {
        size_t len, n;
        char *text = read_fixture(CPU_CASES[i].file, &len);
        pf_cpu_times *v;
        char *why = NULL;
        print_message("%s\n", CPU_CASES[i].file);
        assert_int_equal(pf_cpu_times_parse(text, len, &v, &n, &why), 0);
        assert_null(why);
        check_cpus(&CPU_CASES[i], v, n);
        free(v);
        free(text);
    }
}

static void test_cpu_times_shapes(void **state)
{
    (void)state;
    pf_cpu_times *v;
    size_t n;
    /* Linux 2.6.0's seven columns; CRLF; no final newline; out of order; extra columns. */
    const char *s = "cpu 1 1 1 1 1 1 1\r\n"
                    "cpu5 10 0 5 100 7 1 2 4 50 60 99\r\n"
                    "cpu2 1 2 3 4 5 6 7\r\n"
                    "cpu10\t1\t0\t0\t9";
    assert_int_equal(pf_cpu_times_parse(s, strlen(s), &v, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(v[0].cpu, 2);
    assert_int_equal(v[0].busy, 1 + 2 + 3 + 6 + 7);
    assert_int_equal(v[0].total, 1 + 2 + 3 + 6 + 7 + 4 + 5);
    assert_int_equal(v[1].cpu, 5);
    assert_int_equal(v[1].busy, 10 + 5 + 1 + 2 + 4);
    assert_int_equal(v[1].total, 10 + 5 + 1 + 2 + 4 + 100 + 7);
    assert_int_equal(v[2].cpu, 10);
    assert_int_equal(v[2].busy, 1);
    assert_int_equal(v[2].total, 10);
    free(v);
    /* Lines that are not a CPU's: skipped. */
    s = "cpu  1 2 3 4\ncpufreq 1 2 3 4\nintr 1 2\ncpu0 0 0 0 0\n";
    assert_int_equal(pf_cpu_times_parse(s, strlen(s), &v, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].busy, 0);
    free(v);
}

static void test_cpu_times_bad(void **state)
{
    (void)state;
    pf_cpu_times *v = (pf_cpu_times *)&v;
    size_t n = 99;
    char *why = NULL;
    /* No cpuN line: empty, NULL, the aggregate line alone, garbage. */
    assert_int_equal(pf_cpu_times_parse("", 0, &v, &n, &why), -EINVAL);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_non_null(strstr(why, "cpuN"));
    free(why);
    assert_int_equal(pf_cpu_times_parse(NULL, 0, &v, &n, NULL), -EINVAL);
    const char *bad[] = {
        "cpu  1 2 3 4\nintr 5\n",
        "hello world",
        "cpu0 1 2 3\n",                      /* fewer than four columns */
        "cpu0 1 2 x 4\n",                    /* not a number */
        "cpu0 1 2 -3 4\n",                   /* signed */
        "cpu0 1 2 3 4x\n",                   /* trailing junk */
        "cpu0x 1 2 3 4\n",                   /* not an id */
        "cpu0 1 2 3 4\ncpu0 1 2 3 4\n",      /* twice */
        "cpu99999999 1 2 3 4\n",             /* id past PF_ID_LIMIT */
        "cpu0 18446744073709551616 0 0 0\n", /* a column past 64 bits */
        "cpu0 18446744073709551615 1 0 0\n", /* a sum past 64 bits */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        print_message("%s\n", bad[i]);
        assert_int_equal(pf_cpu_times_parse(bad[i], strlen(bad[i]), &v, &n, &why), -EINVAL);
        assert_null(v);
        assert_non_null(why);
        assert_null(strchr(why, '\n'));
        free(why);
    }
}

static void test_cpu_times_read(void **state)
{
    (void)state;
    pf_cpu_times *a, *b = NULL;
    size_t na, nb;
    char *why = NULL;
    /* The live /proc, twice: the same CPUs (none went offline meanwhile), totals that only grow. */
    assert_int_equal(pf_cpu_times_read(NULL, &a, &na, &why), 0);
    assert_null(why);
    assert_true(na >= cpu_count());
    for (size_t i = 0; i < cpu_count(); i++) {
        bool found = false;
        for (size_t j = 0; j < na; j++)
            found = found || a[j].cpu == cpu_at(i);
        assert_true(found);
    }
    /*
     * Read again until the clock ticks (USER_HZ, 100 a second: time passes in /proc/stat in
     * steps of 10 ms, so two reads 20 ms apart can still be equal): totals never go back
     * and do grow, within two seconds.
     */
    unsigned long long ta = 0, tb = 0;
    for (size_t i = 0; i < na; i++) {
        if (i > 0)
            assert_true(a[i].cpu > a[i - 1].cpu);
        assert_true(a[i].busy <= a[i].total);
        ta += a[i].total;
    }
    for (int attempt = 0; attempt < 100 && tb <= ta; attempt++) {
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
        free(b);
        b = NULL;
        assert_int_equal(pf_cpu_times_read("/proc", &b, &nb, &why), 0);
        assert_int_equal(na, nb);
        tb = 0;
        for (size_t i = 0; i < na; i++) {
            assert_int_equal(a[i].cpu, b[i].cpu);
            assert_true(b[i].busy >= a[i].busy);
            assert_true(b[i].total >= a[i].total);
            tb += b[i].total;
        }
    }
    assert_true(tb > ta);
    free(a);
    free(b);
    /* Another tree: root/stat. */
    char dir[] = "/tmp/pf_cpustat_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[4200];
    snprintf(path, sizeof path, "%s/stat", dir);
    size_t len;
    char *text = read_fixture("procstat/offline4cpu.stat", &len);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    free(text);
    assert_int_equal(pf_cpu_times_read(dir, &a, &na, NULL), 0);
    check_cpus(&CPU_CASES[1], a, na);
    free(a);
    /* A file that is not /proc/stat: the parser's -EINVAL. */
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs("nothing\n", f);
    fclose(f);
    assert_int_equal(pf_cpu_times_read(dir, &a, &na, NULL), -EINVAL);
    assert_null(a);
    /* No file: -ENOENT naming the path; a directory where the file should be: -EISDIR. */
    assert_int_equal(unlink(path), 0);
    why = NULL;
    assert_int_equal(pf_cpu_times_read(dir, &a, &na, &why), -ENOENT);
    assert_null(a);
    assert_int_equal(na, 0);
    assert_non_null(strstr(why, path));
    free(why);
    assert_int_equal(mkdir(path, 0700), 0);
    why = NULL;
    assert_int_equal(pf_cpu_times_read(dir, &a, &na, &why), -EISDIR);
    assert_non_null(why);
    free(why);
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    cpu_count();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ab_fixtures),      cmocka_unit_test(test_ab_crlf_and_bounds),
        cmocka_unit_test(test_ab_not_a_report),  cmocka_unit_test(test_ab_missing_fields),
        cmocka_unit_test(test_ab_bad_values),    cmocka_unit_test(test_cpu_times_fixtures),
        cmocka_unit_test(test_cpu_times_shapes), cmocka_unit_test(test_cpu_times_bad),
        cmocka_unit_test(test_cpu_times_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
