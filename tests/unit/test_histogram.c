/*
 * test_histogram.c - pf_histogram: exact percentiles of known
 * distributions within the precision bound, the bound itself over a sweep
 * of values and precisions, counts, add (merge), reset, clamping, the
 * empty histogram and bad arguments.
 */
#include "pf_test.h"

#include <math.h>

/* A histogram or a test failure. */
static pf_histogram *make(long long highest, int bits)
{
    pf_histogram *h = NULL;
    assert_int_equal(pf_histogram_create(highest, bits, &h), 0);
    assert_non_null(h);
    return h;
}

/* reported is the true value or above it by at most true / 2^bits (values below 2^(bits+1) exact).
 */
static void assert_within(long long reported, long long truth, int bits)
{
    long long slack = truth >> bits;
    if (reported < truth || reported > truth + slack)
        fail_msg("reported %lld for %lld: outside [%lld, %lld] (precision %d bits)", reported,
                 truth, truth, truth + slack, bits);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    pf_histogram *h = (pf_histogram *)1;
    assert_int_equal(pf_histogram_create(1, 10, &h), -EINVAL);
    assert_null(h);
    assert_int_equal(pf_histogram_create(1000, 0, &h), -EINVAL);
    assert_int_equal(pf_histogram_create(1000, 15, &h), -EINVAL);
    assert_int_equal(pf_histogram_create(-5, 10, &h), -EINVAL);
    pf_histogram_free(NULL);
}

static void test_empty(void **state)
{
    (void)state;
    pf_histogram *h = make(1000000, 10);
    assert_int_equal(pf_histogram_count(h), 0);
    assert_int_equal(pf_histogram_clamped(h), 0);
    assert_int_equal(pf_histogram_min(h), 0);
    assert_int_equal(pf_histogram_max(h), 0);
    assert_true(pf_histogram_mean(h) == 0.0);
    assert_int_equal(pf_histogram_percentile(h, 0), 0);
    assert_int_equal(pf_histogram_percentile(h, 50), 0);
    assert_int_equal(pf_histogram_percentile(h, 100), 0);
    pf_histogram_free(h);
}

/* 1..n once each: the value at percentile p is ceil(p% of n). */
static void test_uniform_percentiles(void **state)
{
    (void)state;
    const long long n = 100000;
    const int bits = 10;
    pf_histogram *h = make(10000000, bits);
    for (long long v = 1; v <= n; v++)
        pf_histogram_record(h, v, 1);
    assert_int_equal(pf_histogram_count(h), n);
    const double pcts[] = {0, 0.001, 1, 10, 25, 50, 66.6, 75, 90, 99, 99.9, 99.99, 99.999, 100};
    for (size_t i = 0; i < sizeof pcts / sizeof *pcts; i++) {
        long long truth = (long long)ceil(pcts[i] / 100.0 * (double)n - 1e-9);
        if (truth < 1)
            truth = 1;
        assert_within(pf_histogram_percentile(h, pcts[i]), truth, bits);
    }
    assert_int_equal(pf_histogram_min(h), 1);
    assert_within(pf_histogram_max(h), n, bits);
    assert_true(fabs(pf_histogram_mean(h) - (double)(n + 1) / 2) < 1e-6);
    /* Out of range percentiles are the ends. */
    assert_int_equal(pf_histogram_percentile(h, -5), pf_histogram_percentile(h, 0));
    assert_int_equal(pf_histogram_percentile(h, 250), pf_histogram_max(h));
    assert_int_equal(pf_histogram_percentile(h, NAN), pf_histogram_percentile(h, 0));
    pf_histogram_free(h);
}

/* 900 samples of 100 us and 100 of 10 ms: the percentiles jump where they should. */
static void test_bimodal(void **state)
{
    (void)state;
    pf_histogram *h = make(60000000, 10);
    pf_histogram_record(h, 100, 900);
    pf_histogram_record(h, 10000, 100);
    assert_int_equal(pf_histogram_count(h), 1000);
    assert_int_equal(pf_histogram_percentile(h, 50), 100); /* below 2048: exact */
    assert_int_equal(pf_histogram_percentile(h, 90), 100);
    assert_within(pf_histogram_percentile(h, 90.1), 10000, 10);
    assert_within(pf_histogram_percentile(h, 99.9), 10000, 10);
    assert_int_equal(pf_histogram_min(h), 100);
    assert_within(pf_histogram_max(h), 10000, 10);
    assert_true(fabs(pf_histogram_mean(h) - 1090.0) < 1e-9);
    pf_histogram_free(h);
}

/*
 * The bound over values from 0 to 10^12 and precisions 1 to 14: a value is
 * reported within v / 2^bits of itself, by max (the highest of its bucket,
 * seen when the values come in ascending order) and by min (the lowest of
 * its bucket, seen in descending order).
 */
static void test_precision_sweep(void **state)
{
    (void)state;
    const int all_bits[] = {1, 2, 3, 7, 10, 14};
    for (size_t b = 0; b < sizeof all_bits / sizeof *all_bits; b++) {
        int bits = all_bits[b];
        pf_histogram *up = make(1000000000000ll, bits), *down = make(1000000000000ll, bits);
        static long long values[40000];
        size_t n = 0;
        for (double x = 0; x <= 1e12 && n < 40000; x = x * 1.0007 + 1)
            values[n++] = (long long)x;
        assert_true(n > 15000);
        for (size_t i = 0; i < n; i++) {
            long long v = values[i], hi, lo;
            pf_histogram_record(up, v, 1);
            hi = pf_histogram_max(up);
            pf_histogram_record(down, values[n - 1 - i], 1);
            lo = pf_histogram_min(down);
            long long w = values[n - 1 - i];
            if (hi < v || hi - v > (v >> bits))
                fail_msg("%lld at %d bits: reported as %lld", v, bits, hi);
            if (lo > w || w - lo > (w >> bits))
                fail_msg("%lld at %d bits: its bucket starts at %lld", w, bits, lo);
            if (i % 1000 == 0)
                assert_int_equal(pf_histogram_percentile(up, 100), hi);
        }
        pf_histogram_free(up);
        pf_histogram_free(down);
    }
}

static void test_record_count_and_negative(void **state)
{
    (void)state;
    pf_histogram *h = make(1000, 3);
    pf_histogram_record(h, 7, 5);
    pf_histogram_record(h, -40, 2); /* recorded as 0 */
    pf_histogram_record(h, 9, 0);   /* nothing */
    assert_int_equal(pf_histogram_count(h), 7);
    assert_int_equal(pf_histogram_min(h), 0);
    assert_int_equal(pf_histogram_max(h), 7);
    assert_int_equal(pf_histogram_percentile(h, 28), 0);
    assert_int_equal(pf_histogram_percentile(h, 29), 7);
    assert_true(fabs(pf_histogram_mean(h) - 35.0 / 7) < 1e-9);
    pf_histogram_free(h);
}

static void test_clamped(void **state)
{
    (void)state;
    pf_histogram *h = make(1000, 10);
    pf_histogram_record(h, 500, 1);
    pf_histogram_record(h, 5000, 3);
    pf_histogram_record(h, 1000, 1); /* at the limit: not clamped */
    assert_int_equal(pf_histogram_count(h), 5);
    assert_int_equal(pf_histogram_clamped(h), 3);
    assert_int_equal(pf_histogram_max(h), 1000);
    assert_int_equal(pf_histogram_percentile(h, 100), 1000);
    assert_int_equal(pf_histogram_percentile(h, 20), 500);
    /* A bucket straddling `highest` never reports above it. */
    pf_histogram *g = make(100000, 2);
    pf_histogram_record(g, 100000, 1);
    assert_int_equal(pf_histogram_max(g), 100000);
    pf_histogram_free(g);
    /* The largest histogram accepted. */
    pf_histogram *big = make(1ll << 62, 14);
    pf_histogram_record(big, 1ll << 62, 1);
    pf_histogram_record(big, 1, 1);
    assert_int_equal(pf_histogram_max(big), 1ll << 62);
    assert_int_equal(pf_histogram_min(big), 1);
    pf_histogram_free(big);
    pf_histogram_free(h);
}

/* Two halves added give the histogram of the whole, and reset empties. */
static void test_add_and_reset(void **state)
{
    (void)state;
    pf_histogram *a = make(1000000, 8), *b = make(1000000, 8), *all = make(1000000, 8);
    for (long long v = 1; v <= 5000; v++) {
        pf_histogram_record(v % 2 ? a : b, v * 37, 1);
        pf_histogram_record(all, v * 37, 1);
    }
    pf_histogram_record(b, 2000000, 1);
    pf_histogram_record(all, 2000000, 1);
    assert_int_equal(pf_histogram_add(a, b), 0);
    assert_int_equal(pf_histogram_count(a), pf_histogram_count(all));
    assert_int_equal(pf_histogram_clamped(a), 1);
    for (double p = 0; p <= 100; p += 0.5)
        assert_int_equal(pf_histogram_percentile(a, p), pf_histogram_percentile(all, p));
    assert_int_equal(pf_histogram_min(a), pf_histogram_min(all));
    assert_int_equal(pf_histogram_max(a), pf_histogram_max(all));
    assert_true(fabs(pf_histogram_mean(a) - pf_histogram_mean(all)) < 1e-6);

    pf_histogram *other_bits = make(1000000, 9), *other_highest = make(2000000, 8);
    assert_int_equal(pf_histogram_add(a, other_bits), -EINVAL);
    assert_int_equal(pf_histogram_add(a, other_highest), -EINVAL);
    assert_int_equal(pf_histogram_count(a), 5001);

    pf_histogram_reset(a);
    assert_int_equal(pf_histogram_count(a), 0);
    assert_int_equal(pf_histogram_clamped(a), 0);
    assert_int_equal(pf_histogram_max(a), 0);
    assert_true(pf_histogram_mean(a) == 0.0);
    pf_histogram_record(a, 3, 1);
    assert_int_equal(pf_histogram_percentile(a, 99), 3);

    pf_histogram_free(a);
    pf_histogram_free(b);
    pf_histogram_free(all);
    pf_histogram_free(other_bits);
    pf_histogram_free(other_highest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_uniform_percentiles),
        cmocka_unit_test(test_bimodal),
        cmocka_unit_test(test_precision_sweep),
        cmocka_unit_test(test_record_count_and_negative),
        cmocka_unit_test(test_clamped),
        cmocka_unit_test(test_add_and_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
