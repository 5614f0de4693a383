/*
 * test_bench_report.c - what `pinfer bench` writes into its report folder:
 * bench.json (read back with jansson: structure, values, nulls for what was
 * not measured, the ratios to `default`), bench.csv (TorchServe's columns,
 * RFC 4180 quoting, empty cells) and report.html (the four charts, every
 * text escaped, nothing fetched, no "nan" anywhere), for a serving report
 * with a configuration that failed, a program-mode report, an empty one and
 * one full of figures that are not numbers; and pf_bench_report_clear()
 * freeing all of it (ASan's leak check, under `make SAN=1`).
 */
#include "pf_test.h"

#include <ctype.h>
#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <unistd.h>

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

/* A CDF of n points from lo to hi ms (a straight line in percentile). */
static void fill_cdf(pf_bench_config *c, double lo, double hi, size_t n)
{
    c->cdf = calloc(n, sizeof *c->cdf);
    assert_non_null(c->cdf);
    c->ncdf = n;
    for (size_t i = 0; i < n; i++) {
        c->cdf[i].pct = 100.0 * (double)i / (double)(n - 1);
        c->cdf[i].ms = lo + (hi - lo) * (double)i * (double)i / (double)((n - 1) * (n - 1));
    }
}

/* CPUs 0-3 sampled 30 times: busy on `busy_cpu`, half busy on the others. */
static void fill_map(pf_bench_config *c, int busy_cpu)
{
    pf_bench_cpu_map *m = &c->cpu_map;
    m->interval_s = 0.1;
    m->nsamples = 30;
    m->ncpus = 4;
    m->cpus = calloc(4, sizeof *m->cpus);
    m->busy = calloc(30 * 4, sizeof *m->busy);
    assert_non_null(m->cpus);
    assert_non_null(m->busy);
    for (int k = 0; k < 4; k++)
        m->cpus[k] = k;
    for (size_t s = 0; s < 30; s++)
        for (size_t k = 0; k < 4; k++)
            m->busy[s * 4 + k] = (int)k == busy_cpu ? 97.5 : 50.0 * (double)(s % 3);
}

static void add_findings(pf_bench_config *c, const char *a, const char *b)
{
    c->findings = calloc(3, sizeof *c->findings);
    assert_non_null(c->findings);
    c->findings[0] = xstrdup(a);
    c->findings[1] = xstrdup(b);
    c->nfindings = 2;
}

static void config(pf_bench_config *c, const char *name, double throughput, double p99)
{
    c->name = xstrdup(name);
    c->description = xstrdup("what it sets");
    c->command = xstrdup("pinfer serve --model 'resnet.pt' --workers 2");
    c->workers = 2;
    c->threads = 4;
    c->duration_s = 10;
    c->requests = (long long)(throughput * 10);
    c->failed = 0;
    c->throughput = throughput;
    c->mean_ms = p99 / 3;
    c->p50_ms = p99 / 4;
    c->p90_ms = p99 / 2;
    c->p99_ms = p99;
    c->max_ms = p99 * 2;
    c->cpu_pct = 80;
    c->migrations_per_s = -1;
    c->cross_node_migrations_per_s = -1;
    c->run_wait_pct = -1;
    c->smt_shared = -1;
    c->local_memory_pct = -1;
}

/*
 * The case study's report: default, threads and pinned measured (with
 * CDFs and CPU maps), then pinned+jemalloc, which could not run.  `name`
 * is the second configuration's name.
 */
static void serve_report(pf_bench_report *r, const char *name)
{
    memset(r, 0, sizeof *r);
    r->mode = xstrdup("serve");
    r->unit = xstrdup("req/s");
    r->target = xstrdup("resnet50.pt");
    r->load = xstrdup("builtin closed loop, 16 connections");
    r->machine = xstrdup("1 socket, 4 cores, 8 CPUs, Example CPU");
    r->started = xstrdup("2024-05-01T10:00:00Z");
    r->command = xstrdup("pinfer bench --model resnet50.pt");
    r->plan_json = xstrdup("{\"instances\": [{\"cpus\": [0, 1]}], \"ninstances\": 2}\n");
    r->verdict = xstrdup("pinned: 2.00x the throughput of default, p99 0.25x");
    r->nconfigs = 4;
    r->configs = calloc(4, sizeof *r->configs);
    assert_non_null(r->configs);
    config(&r->configs[0], "default", 100, 40);
    config(&r->configs[1], name, 150, 20);
    config(&r->configs[2], "pinned", 200, 10);
    config(&r->configs[3], "pinned+jemalloc", 0, -1);
    for (int i = 0; i < 3; i++) {
        fill_cdf(&r->configs[i], 1 + i, 10.0 * (4 - i), 21);
        fill_map(&r->configs[i], i);
    }
    r->configs[0].migrations_per_s = 120.5;
    r->configs[0].cross_node_migrations_per_s = 3;
    r->configs[0].local_memory_pct = 61.25;
    r->configs[2].migrations_per_s = 0;
    r->configs[2].local_memory_pct = 100;
    r->configs[0].failed = 3;
    add_findings(&r->configs[0], "OVERSUBSCRIBED: 16 busy threads on 8 CPUs",
                 "FLOATING: worker 1 moved 120 times");
    struct pf_bench_config *bad = &r->configs[3];
    free(bad->description);
    bad->description = NULL;
    bad->error = xstrdup("libjemalloc.so.2 not found");
    bad->throughput = -1;
    bad->requests = -1;
    bad->failed = -1;
    bad->mean_ms = bad->p50_ms = bad->p90_ms = bad->max_ms = -1;
    bad->cpu_pct = -1;
}

/* Program mode: no latencies, no CDF, no CPU map. */
static void program_report(pf_bench_report *r)
{
    memset(r, 0, sizeof *r);
    r->mode = xstrdup("program");
    r->unit = xstrdup("inferences/s");
    r->target = xstrdup("./demo --seconds 3");
    r->nconfigs = 3;
    r->configs = calloc(3, sizeof *r->configs);
    assert_non_null(r->configs);
    const char *names[] = {"default", "threads", "pinned"};
    for (int i = 0; i < 3; i++) {
        config(&r->configs[i], names[i], 10.0 * (i + 1), -1);
        pf_bench_config *c = &r->configs[i];
        c->mean_ms = c->p50_ms = c->p90_ms = c->max_ms = -1;
    }
}

/* ---- bench.json ----------------------------------------------------------- */

static json_t *to_json(const pf_bench_report *r)
{
    char *text = NULL;
    assert_int_equal(pf_bench_report_to_json(r, &text), 0);
    assert_non_null(text);
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    if (!doc)
        fail_msg("not JSON (%s, line %d): %s", err.text, err.line, text);
    free(text);
    return doc;
}

static double number(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        fail_msg("%s is not a number", key);
    return json_number_value(v);
}

static void assert_null_member(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_null(v))
        fail_msg("%s: want null, got %s", key, v ? "a value" : "no member");
}

static void test_json_serve(void **state)
{
    (void)state;
    pf_bench_report r;
    serve_report(&r, "threads");
    json_t *doc = to_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "mode")), "serve");
    assert_string_equal(json_string_value(json_object_get(doc, "unit")), "req/s");
    assert_string_equal(json_string_value(json_object_get(doc, "baseline")), "default");
    assert_string_equal(json_string_value(json_object_get(doc, "verdict")), r.verdict);
    /* The plan is the document itself, not a string holding it. */
    json_t *plan = json_object_get(doc, "plan");
    assert_true(json_is_object(plan));
    assert_int_equal(json_integer_value(json_object_get(plan, "ninstances")), 2);

    json_t *configs = json_object_get(doc, "configs");
    assert_int_equal(json_array_size(configs), 4);
    json_t *def = json_array_get(configs, 0), *thr = json_array_get(configs, 1);
    json_t *pin = json_array_get(configs, 2), *bad = json_array_get(configs, 3);
    assert_string_equal(json_string_value(json_object_get(thr, "name")), "threads");
    assert_true(json_is_null(json_object_get(def, "error")));
    assert_true(number(def, "throughput_ratio") == 1.0);
    assert_true(number(thr, "throughput_ratio") == 1.5);
    assert_true(number(pin, "throughput_ratio") == 2.0);
    assert_true(number(pin, "p99_ratio") == 0.25);
    assert_true(number(thr, "p99_ratio") == 0.5);
    assert_true(number(pin, "throughput") == 200);
    assert_true(number(pin, "p50_ms") == 2.5);
    assert_true(number(def, "mean_ms") == 13.333); /* to the microsecond */
    assert_int_equal(json_integer_value(json_object_get(def, "failed")), 3);
    assert_true(number(def, "error_rate_pct") == 0.3);
    assert_int_equal(json_integer_value(json_object_get(pin, "workers")), 2);
    assert_int_equal(json_integer_value(json_object_get(pin, "threads")), 4);
    /* -1: not measured, null */
    assert_null_member(thr, "migrations_per_s");
    assert_null_member(thr, "local_memory_pct");
    assert_null_member(thr, "smt_shared");
    assert_null_member(thr, "run_wait_pct");
    assert_true(number(def, "migrations_per_s") == 120.5);
    assert_true(number(def, "local_memory_pct") == 61.3); /* shares to 0.1 */
    assert_true(number(pin, "migrations_per_s") == 0);
    /* The failed configuration: its error, no figure, no ratio. */
    assert_string_equal(json_string_value(json_object_get(bad, "error")),
                        "libjemalloc.so.2 not found");
    assert_null_member(bad, "throughput");
    assert_null_member(bad, "throughput_ratio");
    assert_null_member(bad, "p99_ratio");
    assert_null_member(bad, "p99_ms");
    assert_null_member(bad, "cdf");
    assert_null_member(bad, "cpu_map");
    assert_null_member(bad, "description");
    assert_int_equal(json_array_size(json_object_get(bad, "findings")), 0);
    /* The CDF and the CPU map. */
    json_t *cdf = json_object_get(def, "cdf");
    assert_int_equal(json_array_size(cdf), 21);
    assert_true(number(json_array_get(cdf, 20), "pct") == 100);
    assert_true(number(json_array_get(cdf, 20), "ms") == 40);
    assert_true(number(json_array_get(cdf, 0), "ms") == 1);
    json_t *map = json_object_get(pin, "cpu_map");
    assert_true(number(map, "interval_s") == 0.1);
    assert_int_equal(json_array_size(json_object_get(map, "cpus")), 4);
    json_t *busy = json_object_get(map, "busy");
    assert_int_equal(json_array_size(busy), 30);
    assert_int_equal(json_array_size(json_array_get(busy, 0)), 4);
    assert_true(json_number_value(json_array_get(json_array_get(busy, 0), 2)) == 97.5);
    json_t *findings = json_object_get(def, "findings");
    assert_int_equal(json_array_size(findings), 2);
    assert_string_equal(json_string_value(json_array_get(findings, 1)),
                        "FLOATING: worker 1 moved 120 times");
    json_decref(doc);
    pf_bench_report_clear(&r);
}

static void test_json_program_mode(void **state)
{
    (void)state;
    pf_bench_report r;
    program_report(&r);
    json_t *doc = to_json(&r);
    json_t *configs = json_object_get(doc, "configs");
    assert_int_equal(json_array_size(configs), 3);
    json_t *pin = json_array_get(configs, 2);
    assert_true(number(pin, "throughput_ratio") == 3.0);
    static const char *const nulls[] = {"mean_ms", "p50_ms",    "p90_ms", "p99_ms",
                                        "max_ms",  "p99_ratio", "cdf",    "cpu_map"};
    for (size_t i = 0; i < sizeof nulls / sizeof *nulls; i++)
        assert_null_member(pin, nulls[i]);
    assert_null_member(doc, "plan");
    assert_null_member(doc, "verdict");
    json_decref(doc);
    pf_bench_report_clear(&r);
}

/* No configuration named `default`, or one that failed: no ratios at all. */
static void test_json_no_baseline(void **state)
{
    (void)state;
    pf_bench_report r;
    serve_report(&r, "threads");
    free(r.configs[0].name);
    r.configs[0].name = xstrdup("unpinned");
    json_t *doc = to_json(&r);
    assert_null_member(doc, "baseline");
    json_t *pin = json_array_get(json_object_get(doc, "configs"), 2);
    assert_null_member(pin, "throughput_ratio");
    assert_null_member(pin, "p99_ratio");
    json_decref(doc);
    free(r.configs[0].name);
    r.configs[0].name = xstrdup("default");
    r.configs[0].error = xstrdup("the server did not start");
    doc = to_json(&r);
    assert_null_member(doc, "baseline");
    pin = json_array_get(json_object_get(doc, "configs"), 2);
    assert_null_member(pin, "throughput_ratio");
    json_decref(doc);
    pf_bench_report_clear(&r);
}

static void test_json_empty(void **state)
{
    (void)state;
    pf_bench_report r;
    memset(&r, 0, sizeof r);
    json_t *doc = to_json(&r);
    assert_int_equal(json_array_size(json_object_get(doc, "configs")), 0);
    assert_null_member(doc, "mode");
    assert_null_member(doc, "plan");
    assert_null_member(doc, "baseline");
    json_decref(doc);
}

/* ---- bench.csv ------------------------------------------------------------ */

/* Split an RFC 4180 record starting at *p into fields (malloc'd); advance past its CRLF. */
static size_t csv_record(const char **p, char **fields, size_t max)
{
    size_t n = 0;
    const char *s = *p;
    for (;;) {
        char buf[4096];
        size_t len = 0;
        if (*s == '"') {
            s++;
            for (;;) {
                assert_true(*s != '\0'); /* an unterminated quote */
                if (*s == '"' && s[1] == '"') {
                    buf[len++] = '"';
                    s += 2;
                } else if (*s == '"') {
                    s++;
                    break;
                } else {
                    buf[len++] = *s++;
                }
                assert_true(len < sizeof buf);
            }
        } else {
            while (*s && *s != ',' && *s != '\r' && *s != '\n' && *s != '"')
                buf[len++] = *s++;
            assert_true(*s != '"'); /* a quote inside an unquoted field */
        }
        buf[len] = '\0';
        assert_true(n < max);
        fields[n++] = xstrdup(buf);
        if (*s == ',') {
            s++;
            continue;
        }
        assert_true(s[0] == '\r' && s[1] == '\n'); /* records end in CRLF */
        *p = s + 2;
        return n;
    }
}

static void free_fields(char **fields, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(fields[i]);
}

static size_t column(char **header, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(header[i], name) == 0)
            return i;
    fail_msg("no column %s", name);
    return 0;
}

static void test_csv(void **state)
{
    (void)state;
    pf_bench_report r;
    serve_report(&r, "threads, \"tuned\"");
    char *text = NULL;
    assert_int_equal(pf_bench_report_to_csv(&r, &text), 0);
    /* TorchServe's ab_report.csv columns first, in its order; then pinfer's. */
    const char *want = "Benchmark,Workers,Model,Requests,TS failed requests,TS throughput,"
                       "TS latency P50,TS latency P90,TS latency P99,TS latency mean,"
                       "TS error rate,cpu_percentage_mean,Configuration,";
    assert_int_equal(strncmp(text, want, strlen(want)), 0);
    const char *p = text;
    char *header[64], *row[64];
    size_t nh = csv_record(&p, header, 64);
    size_t thr = column(header, nh, "TS throughput"), p99 = column(header, nh, "TS latency P99");
    size_t name = column(header, nh, "Configuration"), ratio = column(header, nh, "P99 ratio");
    size_t tr = column(header, nh, "Throughput ratio"), err = column(header, nh, "Error");
    size_t mig = column(header, nh, "Migrations/s"), loc = column(header, nh, "Local memory %");
    size_t fin = column(header, nh, "Findings"), cmd = column(header, nh, "Command");
    size_t rate = column(header, nh, "TS error rate"), bench = column(header, nh, "Benchmark");
    column(header, nh, "Threads");
    for (int i = 0; i < 4; i++) {
        size_t n = csv_record(&p, row, 64);
        assert_int_equal(n, nh);
        assert_string_equal(row[bench], "pinfer");
        assert_string_equal(row[cmd], "pinfer serve --model 'resnet.pt' --workers 2");
        switch (i) {
        case 0:
            assert_string_equal(row[name], "default");
            assert_string_equal(row[thr], "100.0");
            assert_string_equal(row[tr], "1.0");
            assert_string_equal(row[mig], "120.5");
            assert_string_equal(row[loc], "61.3");
            assert_string_equal(row[rate], "0.3");
            assert_string_equal(row[fin], "OVERSUBSCRIBED: 16 busy threads on 8 CPUs; "
                                          "FLOATING: worker 1 moved 120 times");
            assert_string_equal(row[err], "");
            break;
        case 1:
            /* The comma and the quotes survive the quoting. */
            assert_string_equal(row[name], "threads, \"tuned\"");
            assert_string_equal(row[ratio], "0.5");
            assert_string_equal(row[mig], ""); /* not measured */
            break;
        case 2:
            assert_string_equal(row[p99], "10.0");
            assert_string_equal(row[ratio], "0.25");
            assert_string_equal(row[tr], "2.0");
            break;
        case 3:
            assert_string_equal(row[err], "libjemalloc.so.2 not found");
            assert_string_equal(row[thr], "");
            assert_string_equal(row[tr], "");
            assert_string_equal(row[p99], "");
            break;
        }
        free_fields(row, n);
    }
    assert_string_equal(p, ""); /* one row per configuration, nothing else */
    assert_non_null(strstr(text, "\"threads, \"\"tuned\"\"\""));
    free_fields(header, nh);
    free(text);
    pf_bench_report_clear(&r);

    /* Empty: the header alone. */
    memset(&r, 0, sizeof r);
    assert_int_equal(pf_bench_report_to_csv(&r, &text), 0);
    p = text;
    nh = csv_record(&p, header, 64);
    assert_string_equal(p, "");
    free_fields(header, nh);
    free(text);

    /* Program mode: "program" in Benchmark, no latency. */
    program_report(&r);
    assert_int_equal(pf_bench_report_to_csv(&r, &text), 0);
    p = text;
    nh = csv_record(&p, header, 64);
    size_t n = csv_record(&p, row, 64);
    assert_string_equal(row[column(header, nh, "Benchmark")], "program");
    assert_string_equal(row[column(header, nh, "TS latency P50")], "");
    assert_string_equal(row[column(header, nh, "TS throughput")], "10.0");
    free_fields(row, n);
    free_fields(header, nh);
    free(text);
    pf_bench_report_clear(&r);
}

/* ---- report.html ------------------------------------------------------------ */

/*
 * Not inlined: GCC 12, inlining it, takes the pointer it returns for one
 * into its local variable and warns (-Wdangling-pointer) wherever the page
 * is read.
 */
__attribute__((noinline)) static char *to_html(const pf_bench_report *r)
{
    char *html = NULL;
    assert_int_equal(pf_bench_report_to_html(r, &html), 0);
    assert_non_null(html);
    return html;
}

static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/*
 * What no page may hold: a number that is not one ("nan", "inf",
 * "infinity" as a word, in any case), a script, anything fetched or linked.
 */
static void assert_clean(const char *html)
{
    size_t len = strlen(html);
    char *low = malloc(len + 1);
    assert_non_null(low);
    for (size_t i = 0; i <= len; i++)
        low[i] = (char)tolower((unsigned char)html[i]);
    static const char *const words[] = {"nan", "inf", "infinity"};
    for (size_t w = 0; w < 3; w++) {
        size_t n = strlen(words[w]);
        for (const char *p = strstr(low, words[w]); p; p = strstr(p + 1, words[w])) {
            bool before = p > low && isalpha((unsigned char)p[-1]);
            bool after = isalpha((unsigned char)p[n]);
            if (!before && !after)
                fail_msg("\"%s\" in the page: ...%.60s...", words[w], p > low + 30 ? p - 30 : low);
        }
    }
    static const char *const banned[] = {"<script", "http://", "https://", "src=", "href=",
                                         "url(",    "@import", "<link",    "<img", "<iframe"};
    for (size_t i = 0; i < sizeof banned / sizeof *banned; i++)
        if (strstr(low, banned[i]))
            fail_msg("\"%s\" in the page", banned[i]);
    free(low);
}

/*
 * Every <svg> has a width and height above 0 and a viewBox of the same
 * size, and no negative size is drawn in it.  Returns how many there are.
 */
static size_t check_svgs(const char *html)
{
    size_t n = 0;
    for (const char *p = strstr(html, "<svg"); p; p = strstr(p + 1, "<svg")) {
        n++;
        const char *end = strchr(p, '>');
        assert_non_null(end);
        double w = 0, h = 0, vw = 0, vh = 0;
        const char *a = strstr(p, " width=\""), *b = strstr(p, " height=\"");
        const char *v = strstr(p, " viewBox=\"");
        assert_true(a && a < end && b && b < end && v && v < end);
        w = strtod(a + 8, NULL);
        h = strtod(b + 9, NULL);
        assert_int_equal(sscanf(v + 10, "0 0 %lf %lf", &vw, &vh), 2);
        assert_true(w > 0 && h > 0);
        assert_true(vw == w && vh == h);
        const char *close = strstr(p, "</svg>");
        assert_non_null(close);
        const char *neg_w = strstr(p, "width=\"-"), *neg_h = strstr(p, "height=\"-");
        if ((neg_w && neg_w < close) || (neg_h && neg_h < close))
            fail_msg("a negative size in an svg: %.80s", p);
    }
    return n;
}

/* The text of every chart (each <svg> ... </svg>) concatenated. */
static char *svg_text(const char *html)
{
    size_t len = strlen(html);
    char *out = calloc(len + 1, 1);
    assert_non_null(out);
    for (const char *p = strstr(html, "<svg"); p; p = strstr(p + 1, "<svg")) {
        const char *close = strstr(p, "</svg>");
        assert_non_null(close);
        strncat(out, p, (size_t)(close - p));
    }
    return out;
}

static void test_html_serve(void **state)
{
    (void)state;
    pf_bench_report r;
    serve_report(&r, "<script>&\"'");
    free(r.command);
    r.command = xstrdup("pinfer bench --configs 'a&b' -- \"<x>\"");
    char *html = to_html(&r);
    assert_clean(html);
    assert_int_equal(strncmp(html, "<!DOCTYPE html>", 15), 0);
    assert_non_null(strstr(html, "<style>"));
    assert_int_equal(occurrences(html, "class=\"chart throughput\""), 1);
    assert_int_equal(occurrences(html, "class=\"chart cdf\""), 1);
    assert_int_equal(occurrences(html, "class=\"chart heatmap\""), 3); /* one per config */
    assert_int_equal(occurrences(html, "class=\"chart locality\""), 1);
    assert_int_equal(check_svgs(html), 6);
    /* The hostile name, escaped wherever it appears, never raw. */
    assert_non_null(strstr(html, "&lt;script&gt;&amp;&quot;&#39;"));
    assert_null(strstr(html, "<script"));
    assert_non_null(strstr(html, "pinfer bench --configs &#39;a&amp;b&#39; -- &quot;&lt;x&gt;"
                                 "&quot;"));
    /* One line per measured configuration in the CDF. */
    const char *cdf = strstr(html, "class=\"chart cdf\"");
    assert_int_equal(occurrences(cdf, "<polyline") >= 3, 1);
    /* The failed configuration: in the table with its error, out of the charts, a note. */
    assert_non_null(strstr(html, "libjemalloc.so.2 not found"));
    assert_non_null(strstr(html, "Left out of the charts"));
    char *charts = svg_text(html);
    assert_null(strstr(charts, "pinned+jemalloc"));
    assert_non_null(strstr(charts, "pinned"));
    assert_non_null(strstr(charts, "2.00&times; default"));
    free(charts);
    /* The header. */
    assert_non_null(strstr(html, "1 socket, 4 cores, 8 CPUs, Example CPU"));
    assert_non_null(strstr(html, "2024-05-01T10:00:00Z"));
    assert_non_null(strstr(html, "builtin closed loop, 16 connections"));
    assert_non_null(strstr(html, "pinned: 2.00x the throughput of default"));
    assert_non_null(strstr(html, "<code>OVERSUBSCRIBED</code>"));
    free(html);
    pf_bench_report_clear(&r);
}

static void test_html_program_mode(void **state)
{
    (void)state;
    pf_bench_report r;
    program_report(&r);
    char *html = to_html(&r);
    assert_clean(html);
    assert_int_equal(occurrences(html, "class=\"chart throughput\""), 1);
    assert_null(strstr(html, "class=\"chart cdf\""));
    assert_null(strstr(html, "class=\"chart heatmap\""));
    assert_null(strstr(html, "class=\"chart locality\"")); /* nothing of it was measured */
    assert_non_null(strstr(html, "No latency distribution was measured"));
    assert_non_null(strstr(html, "were not sampled"));
    assert_non_null(strstr(html, "inferences/s"));
    assert_int_equal(check_svgs(html), 1);
    free(html);
    pf_bench_report_clear(&r);
}

static void test_html_empty(void **state)
{
    (void)state;
    pf_bench_report r;
    memset(&r, 0, sizeof r);
    char *html = to_html(&r);
    assert_clean(html);
    assert_null(strstr(html, "<svg"));
    assert_non_null(strstr(html, "No configuration was run"));
    assert_non_null(strstr(html, "</html>"));
    free(html);
}

/*
 * Figures that are not numbers (NaN, infinities, -1 everywhere, a CDF with
 * holes, a map of one sample with NaN cells, a zero interval) draw no
 * "nan" and no negative size: what cannot be drawn is left out.
 */
static void test_html_not_numbers(void **state)
{
    (void)state;
    pf_bench_report r;
    serve_report(&r, "threads");
    pf_bench_config *c = &r.configs[1];
    c->throughput = INFINITY;
    c->p50_ms = NAN;
    c->p99_ms = -INFINITY;
    c->migrations_per_s = NAN;
    c->local_memory_pct = 250; /* over 100: the bar stops at 100 */
    c->cdf[3].ms = NAN;
    c->cdf[4].pct = NAN;
    c->cdf[5].ms = -1;
    c->cpu_map.busy[0] = NAN;
    c->cpu_map.busy[1] = -5;
    c->cpu_map.busy[2] = 1e300;
    c->cpu_map.interval_s = 0;
    r.configs[0].cpu_map.nsamples = 1;
    r.configs[2].cpu_map.interval_s = NAN;
    r.configs[2].throughput = NAN;
    r.configs[0].cdf[0].ms = 0; /* a latency of 0 on the log scale */
    char *html = to_html(&r);
    assert_clean(html);
    check_svgs(html);
    free(html);

    /* Every CDF point at 0 ms, every throughput unknown: those charts become notes. */
    for (int i = 0; i < 3; i++) {
        r.configs[i].throughput = -1;
        for (size_t k = 0; k < r.configs[i].ncdf; k++)
            r.configs[i].cdf[k].ms = 0;
    }
    html = to_html(&r);
    assert_clean(html);
    assert_null(strstr(html, "class=\"chart throughput\""));
    assert_null(strstr(html, "class=\"chart cdf\""));
    check_svgs(html);
    free(html);
    pf_bench_report_clear(&r);
}

/*
 * A long run on a large machine (600 samples of 256 CPUs): the columns are
 * averaged down to what a page can show and equal neighbours merged, so
 * the page stays small; every CPU keeps its row.
 */
static void test_html_large_map(void **state)
{
    (void)state;
    pf_bench_report r;
    serve_report(&r, "threads");
    pf_bench_cpu_map *m = &r.configs[2].cpu_map;
    free(m->cpus);
    free(m->busy);
    m->nsamples = 600;
    m->ncpus = 256;
    m->cpus = calloc(m->ncpus, sizeof *m->cpus);
    m->busy = calloc(m->nsamples * m->ncpus, sizeof *m->busy);
    assert_non_null(m->cpus);
    assert_non_null(m->busy);
    for (size_t c = 0; c < m->ncpus; c++)
        m->cpus[c] = (int)c * 2; /* not 0..n-1: the labels are the CPUs' numbers */
    for (size_t s = 0; s < m->nsamples; s++)
        for (size_t c = 0; c < m->ncpus; c++)
            m->busy[s * m->ncpus + c] = c < 128 ? 95 : (double)((s / 50 + c) % 11) * 10;
    char *html = to_html(&r);
    assert_clean(html);
    assert_int_equal(check_svgs(html), 6);
    assert_true(strlen(html) < 4 * 1024 * 1024);
    assert_non_null(strstr(html, ">510</text>")); /* the last CPU's label */
    free(html);
    pf_bench_report_clear(&r);
}

/* A program that set a locale with a decimal comma still gets points in every number. */
static void test_decimal_comma_locale(void **state)
{
    (void)state;
    char dir[] = "/tmp/pf-locale-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1", dir);
    int rc = system(cmd);
    setenv("LOCPATH", dir, 1);
    const char *set = rc == 0 ? setlocale(LC_NUMERIC, "de_DE.UTF-8") : NULL;
    if (!set) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        (void)system(cmd);
        unsetenv("LOCPATH");
        SKIP_BECAUSE("no de_DE locale could be made with localedef (exit %d)", rc);
    }
    char probe[16];
    snprintf(probe, sizeof probe, "%.1f", 1.5);
    assert_string_equal(probe, "1,5"); /* the locale is in effect */
    pf_bench_report r;
    serve_report(&r, "threads");
    json_t *doc = to_json(&r);
    assert_true(number(json_array_get(json_object_get(doc, "configs"), 0), "migrations_per_s") ==
                120.5);
    json_decref(doc);
    char *csv = NULL;
    assert_int_equal(pf_bench_report_to_csv(&r, &csv), 0);
    assert_non_null(strstr(csv, ",120.5,"));
    char *html = to_html(&r);
    assert_non_null(strstr(html, "viewBox=\"0 0 760 "));
    assert_non_null(strstr(html, "0.1 s)"));        /* the heat map's interval */
    assert_non_null(strstr(html, "2.00&times;"));   /* a ratio */
    assert_non_null(strstr(html, "<td>80.0</td>")); /* a figure */
    snprintf(probe, sizeof probe, "%.1f", 1.5);
    assert_string_equal(probe, "1,5"); /* and the caller's locale is back */
    free(csv);
    free(html);
    pf_bench_report_clear(&r);
    setlocale(LC_NUMERIC, "C");
    unsetenv("LOCPATH");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- pf_bench_report_clear ---------------------------------------------------- */

static void test_clear(void **state)
{
    (void)state;
    pf_bench_report_clear(NULL);
    pf_bench_report r;
    memset(&r, 0, sizeof r);
    pf_bench_report_clear(&r); /* nothing in it */
    serve_report(&r, "threads");
    pf_bench_report_clear(&r); /* ASan's leak check: everything freed */
    assert_null(r.configs);
    assert_int_equal(r.nconfigs, 0);
    assert_null(r.mode);
    assert_null(r.plan_json);
    pf_bench_report_clear(&r); /* twice: the first left it empty */
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_serve),
        cmocka_unit_test(test_json_program_mode),
        cmocka_unit_test(test_json_no_baseline),
        cmocka_unit_test(test_json_empty),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_html_serve),
        cmocka_unit_test(test_html_program_mode),
        cmocka_unit_test(test_html_empty),
        cmocka_unit_test(test_html_not_numbers),
        cmocka_unit_test(test_html_large_map),
        cmocka_unit_test(test_decimal_comma_locale),
        cmocka_unit_test(test_clear),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
