/*
 * report.c - what `pinfer bench` measured, written out: bench.json (every
 * figure, the ratios to `default`, the machine, the plan, the command lines)
 * and bench.csv (one row per configuration: TorchServe's ab_report.csv
 * columns where they apply, then pinfer's own).  report.html is html.c's.
 *
 * A figure that was not measured is -1 in the model (program mode has no
 * latencies, a configuration that failed has nothing): it is null in the
 * JSON and an empty cell in the CSV, never a number a reader could mistake
 * for a measurement.
 */
#include "bench/report.h"
#include "base/json.h"

#include "pinfer.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void config_clear(pf_bench_config *c)
{
    free(c->name);
    free(c->description);
    free(c->command);
    free(c->error);
    free(c->cdf);
    for (size_t i = 0; c->findings && i < c->nfindings; i++)
        free(c->findings[i]);
    free(c->findings);
    free(c->cpu_map.cpus);
    free(c->cpu_map.busy);
    memset(c, 0, sizeof *c);
}

void pf_bench_report_clear(pf_bench_report *report)
{
    if (!report)
        return;
    free(report->mode);
    free(report->unit);
    free(report->target);
    free(report->load);
    free(report->machine);
    free(report->started);
    free(report->command);
    free(report->plan_json);
    for (size_t i = 0; report->configs && i < report->nconfigs; i++)
        config_clear(&report->configs[i]);
    free(report->configs);
    free(report->verdict);
    memset(report, 0, sizeof *report);
}

/* ---- What both documents compute -------------------------------------------- */

long pf__bench_baseline(const pf_bench_report *r)
{
    for (size_t i = 0; r->configs && i < r->nconfigs; i++)
        if (r->configs[i].name && strcmp(r->configs[i].name, "default") == 0)
            return r->configs[i].error ? -1 : (long)i;
    return -1;
}

int pf__c_numbers_begin(pf__c_numbers *n)
{
    n->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (!n->c)
        return -ENOMEM;
    n->saved = uselocale(n->c);
    return 0;
}

void pf__c_numbers_end(pf__c_numbers *n)
{
    uselocale(n->saved);
    freelocale(n->c);
}

/* v / base, or -1 when either was not measured (or the base is 0). */
static double ratio(double v, double base)
{
    if (!(v >= 0) || !(base > 0) || !isfinite(v) || !isfinite(base))
        return -1;
    return v / base;
}

static double throughput_ratio(const pf_bench_report *r, long base, const pf_bench_config *c)
{
    if (base < 0 || c->error)
        return -1;
    return ratio(c->throughput, r->configs[base].throughput);
}

static double p99_ratio(const pf_bench_report *r, long base, const pf_bench_config *c)
{
    if (base < 0 || c->error)
        return -1;
    return ratio(c->p99_ms, r->configs[base].p99_ms);
}

/* Failed answers as a share of those completed (TorchServe's "TS error rate"), -1: unknown. */
static double error_rate_pct(const pf_bench_config *c)
{
    if (c->error || c->failed < 0 || c->requests < 0)
        return -1;
    if (c->requests == 0)
        return c->failed > 0 ? 100 : -1;
    return 100.0 * (double)c->failed / (double)c->requests;
}

/* v rounded to 1/scale, or -1 when it is not a measurement. */
static double rounded(double v, double scale)
{
    if (!(v >= 0) || !isfinite(v))
        return -1;
    return round(v * scale) / scale;
}

/* ---- bench.json -------------------------------------------------------------- */

/* A figure: null when not measured; milliseconds and rates to 0.001, shares to 0.1. */
static void figure(pf__json *w, const char *key, double v, double scale)
{
    pf__json_key(w, key);
    double x = rounded(v, scale);
    if (x < 0)
        pf__json_null(w);
    else
        pf__json_double(w, x);
}

static void count(pf__json *w, const char *key, long long v)
{
    pf__json_key(w, key);
    if (v < 0)
        pf__json_null(w);
    else
        pf__json_int(w, v);
}

/* The heat map: {"interval_s", "cpus": [...], "busy": [[one share per CPU] per sample]}. */
static void cpu_map_json(pf__json *w, const pf_bench_cpu_map *m)
{
    pf__json_key(w, "cpu_map");
    if (m->nsamples == 0 || m->ncpus == 0 || !m->cpus || !m->busy) {
        pf__json_null(w);
        return;
    }
    pf__json_begin_object(w);
    figure(w, "interval_s", m->interval_s, 1000);
    pf__json_key(w, "cpus");
    pf__json_int_array(w, m->cpus, m->ncpus);
    pf__json_key(w, "busy");
    pf__json_begin_array(w);
    for (size_t s = 0; s < m->nsamples; s++) {
        pf__json_begin_array(w);
        for (size_t c = 0; c < m->ncpus; c++) {
            double x = rounded(m->busy[s * m->ncpus + c], 10);
            if (x < 0)
                pf__json_null(w);
            else
                pf__json_double(w, x);
        }
        pf__json_end_array(w);
    }
    pf__json_end_array(w);
    pf__json_end_object(w);
}

static void config_json(pf__json *w, const pf_bench_report *r, long base, const pf_bench_config *c)
{
    pf__json_begin_object(w);
    pf__json_member_string(w, "name", c->name);
    pf__json_member_string(w, "description", c->description);
    pf__json_member_string(w, "command", c->command);
    pf__json_member_string(w, "error", c->error);
    count(w, "workers", c->workers);
    count(w, "threads", c->threads);
    figure(w, "duration_s", c->duration_s, 1000);
    count(w, "requests", c->requests);
    count(w, "failed", c->failed);
    figure(w, "error_rate_pct", error_rate_pct(c), 1000);
    figure(w, "throughput", c->throughput, 1000);
    figure(w, "throughput_ratio", throughput_ratio(r, base, c), 1000);
    figure(w, "mean_ms", c->mean_ms, 1000);
    figure(w, "p50_ms", c->p50_ms, 1000);
    figure(w, "p90_ms", c->p90_ms, 1000);
    figure(w, "p99_ms", c->p99_ms, 1000);
    figure(w, "max_ms", c->max_ms, 1000);
    figure(w, "p99_ratio", p99_ratio(r, base, c), 1000);
    pf__json_key(w, "cdf");
    if (!c->cdf || c->ncdf == 0) {
        pf__json_null(w);
    } else {
        pf__json_begin_array(w);
        for (size_t i = 0; i < c->ncdf; i++) {
            pf__json_begin_object(w);
            figure(w, "pct", c->cdf[i].pct, 1000);
            figure(w, "ms", c->cdf[i].ms, 1000);
            pf__json_end_object(w);
        }
        pf__json_end_array(w);
    }
    figure(w, "cpu_pct", c->cpu_pct, 10);
    figure(w, "migrations_per_s", c->migrations_per_s, 1000);
    figure(w, "cross_node_migrations_per_s", c->cross_node_migrations_per_s, 1000);
    figure(w, "run_wait_pct", c->run_wait_pct, 10);
    count(w, "smt_shared", c->smt_shared);
    figure(w, "local_memory_pct", c->local_memory_pct, 10);
    pf__json_key(w, "findings");
    pf__json_string_array(w, c->findings, c->findings ? c->nfindings : 0);
    cpu_map_json(w, &c->cpu_map);
    pf__json_end_object(w);
}

int pf_bench_report_to_json(const pf_bench_report *report, char **out)
{
    pf__c_numbers locale;
    if (pf__c_numbers_begin(&locale) < 0)
        return -ENOMEM;
    const pf_bench_report *r = report;
    long base = pf__bench_baseline(r);
    pf__json w;
    pf__json_init(&w);
    pf__json_begin_object(&w);
    pf__json_member_string(&w, "mode", r->mode);
    pf__json_member_string(&w, "unit", r->unit);
    pf__json_member_string(&w, "target", r->target);
    pf__json_member_string(&w, "load", r->load);
    pf__json_member_string(&w, "machine", r->machine);
    pf__json_member_string(&w, "started", r->started);
    pf__json_member_string(&w, "command", r->command);
    pf__json_member_string(&w, "verdict", r->verdict);
    pf__json_member_string(&w, "baseline", base >= 0 ? r->configs[base].name : NULL);
    pf__json_key(&w, "configs");
    pf__json_begin_array(&w);
    for (size_t i = 0; r->configs && i < r->nconfigs; i++)
        config_json(&w, r, base, &r->configs[i]);
    pf__json_end_array(&w);
    /* Last: the plan is the longest part, and the figures read better first. */
    pf__json_key(&w, "plan");
    if (r->plan_json && r->plan_json[strspn(r->plan_json, " \t\r\n")])
        pf__json_raw(&w, r->plan_json);
    else
        pf__json_null(&w);
    pf__json_end_object(&w);
    int rc = pf__json_finish(&w, out);
    pf__c_numbers_end(&locale);
    return rc;
}

/* ---- bench.csv --------------------------------------------------------------- */

/*
 * The columns.  TorchServe's benchmark (benchmarks/benchmark-ab.py) writes
 * ab_report.csv with one row per run: "Benchmark", "Batch size", "Batch
 * delay", "Workers", "Model", "Concurrency", "Input", "Requests", "TS failed
 * requests", "TS throughput", "TS latency P50/P90/P99/mean", "TS error
 * rate", the model-side and queue percentiles read from TorchServe's
 * metrics log, and the means of those metrics ("cpu_percentage_mean" ...).
 * Those pinfer measures keep their name and their place, so that a sheet
 * or script made for TorchServe's report reads ours; the batch settings,
 * the input and the server-side metrics are not figures of the report and
 * are left out rather than written empty.  pinfer's own columns follow.
 */
enum column {
    COL_BENCHMARK,
    COL_WORKERS,
    COL_MODEL,
    COL_REQUESTS,
    COL_FAILED,
    COL_THROUGHPUT,
    COL_P50,
    COL_P90,
    COL_P99,
    COL_MEAN,
    COL_ERROR_RATE,
    COL_CPU,
    COL_CONFIGURATION,
    COL_DESCRIPTION,
    COL_THREADS,
    COL_UNIT,
    COL_DURATION,
    COL_MAX,
    COL_THROUGHPUT_RATIO,
    COL_P99_RATIO,
    COL_MIGRATIONS,
    COL_CROSS_NODE,
    COL_RUN_WAIT,
    COL_SMT_SHARED,
    COL_LOCAL_MEMORY,
    COL_FINDINGS,
    COL_ERROR,
    COL_COMMAND,
    NCOLUMNS
};

static const char *const column_names[NCOLUMNS] = {
    [COL_BENCHMARK] = "Benchmark",
    [COL_WORKERS] = "Workers",
    [COL_MODEL] = "Model",
    [COL_REQUESTS] = "Requests",
    [COL_FAILED] = "TS failed requests",
    [COL_THROUGHPUT] = "TS throughput",
    [COL_P50] = "TS latency P50",
    [COL_P90] = "TS latency P90",
    [COL_P99] = "TS latency P99",
    [COL_MEAN] = "TS latency mean",
    [COL_ERROR_RATE] = "TS error rate",
    [COL_CPU] = "cpu_percentage_mean",
    [COL_CONFIGURATION] = "Configuration",
    [COL_DESCRIPTION] = "Description",
    [COL_THREADS] = "Threads",
    [COL_UNIT] = "Unit",
    [COL_DURATION] = "Duration s",
    [COL_MAX] = "Latency max",
    [COL_THROUGHPUT_RATIO] = "Throughput ratio",
    [COL_P99_RATIO] = "P99 ratio",
    [COL_MIGRATIONS] = "Migrations/s",
    [COL_CROSS_NODE] = "Cross-node migrations/s",
    [COL_RUN_WAIT] = "Run wait %",
    [COL_SMT_SHARED] = "SMT shared",
    [COL_LOCAL_MEMORY] = "Local memory %",
    [COL_FINDINGS] = "Findings",
    [COL_ERROR] = "Error",
    [COL_COMMAND] = "Command",
};

/* RFC 4180: a field holding a comma, a quote or a line break is quoted, its quotes doubled. */
static void csv_text(pf__buf *b, const char *s)
{
    if (!s)
        return;
    if (!s[strcspn(s, ",\"\r\n")]) {
        pf__buf_puts(b, s);
        return;
    }
    pf__buf_puts(b, "\"");
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            pf__buf_puts(b, "\"");
        pf__buf_put(b, p, 1);
    }
    pf__buf_puts(b, "\"");
}

static void csv_number(pf__buf *b, double v, double scale)
{
    double x = rounded(v, scale);
    if (x < 0)
        return;
    char text[PF__DOUBLE_TEXT];
    pf__format_double(x, text);
    pf__buf_puts(b, text);
}

static void csv_count(pf__buf *b, long long v)
{
    if (v >= 0)
        pf__buf_printf(b, "%lld", v);
}

/*
 * TorchServe writes "AB" (Apache Bench) in "Benchmark"; pinfer writes the
 * tool that drove the load: "AB" too when `load` says ab did, "pinfer" for
 * its own generator, "program" for program mode (no requests at all).
 */
static const char *benchmark_name(const pf_bench_report *r)
{
    if (r->mode && strcmp(r->mode, "program") == 0)
        return "program";
    if (r->load && strncmp(r->load, "ab", 2) == 0 && !(r->load[2] >= 'a' && r->load[2] <= 'z'))
        return "AB";
    return "pinfer";
}

static void csv_cell(pf__buf *b, const pf_bench_report *r, long base, const pf_bench_config *c,
                     enum column col)
{
    /* A configuration that failed has its names, its command and its error, no figure. */
    bool m = !c->error;
    switch (col) {
    case COL_BENCHMARK: csv_text(b, benchmark_name(r)); break;
    case COL_WORKERS: csv_count(b, c->workers); break;
    case COL_MODEL: csv_text(b, r->target); break;
    case COL_REQUESTS: csv_count(b, m ? c->requests : -1); break;
    case COL_FAILED: csv_count(b, m ? c->failed : -1); break;
    case COL_THROUGHPUT: csv_number(b, m ? c->throughput : -1, 1000); break;
    case COL_P50: csv_number(b, m ? c->p50_ms : -1, 1000); break;
    case COL_P90: csv_number(b, m ? c->p90_ms : -1, 1000); break;
    case COL_P99: csv_number(b, m ? c->p99_ms : -1, 1000); break;
    case COL_MEAN: csv_number(b, m ? c->mean_ms : -1, 1000); break;
    case COL_ERROR_RATE: csv_number(b, error_rate_pct(c), 1000); break;
    case COL_CPU: csv_number(b, m ? c->cpu_pct : -1, 10); break;
    case COL_CONFIGURATION: csv_text(b, c->name); break;
    case COL_DESCRIPTION: csv_text(b, c->description); break;
    case COL_THREADS: csv_count(b, c->threads); break;
    case COL_UNIT: csv_text(b, r->unit); break;
    case COL_DURATION: csv_number(b, m ? c->duration_s : -1, 1000); break;
    case COL_MAX: csv_number(b, m ? c->max_ms : -1, 1000); break;
    case COL_THROUGHPUT_RATIO: csv_number(b, throughput_ratio(r, base, c), 1000); break;
    case COL_P99_RATIO: csv_number(b, p99_ratio(r, base, c), 1000); break;
    case COL_MIGRATIONS: csv_number(b, m ? c->migrations_per_s : -1, 1000); break;
    case COL_CROSS_NODE: csv_number(b, m ? c->cross_node_migrations_per_s : -1, 1000); break;
    case COL_RUN_WAIT: csv_number(b, m ? c->run_wait_pct : -1, 10); break;
    case COL_SMT_SHARED: csv_count(b, m ? c->smt_shared : -1); break;
    case COL_LOCAL_MEMORY: csv_number(b, m ? c->local_memory_pct : -1, 10); break;
    case COL_FINDINGS: {
        /* One cell: the findings joined by "; " (each is one line). */
        pf__buf joined = {0};
        for (size_t i = 0; c->findings && i < c->nfindings; i++) {
            if (i > 0)
                pf__buf_puts(&joined, "; ");
            pf__buf_puts(&joined, c->findings[i] ? c->findings[i] : "");
        }
        if (joined.failed)
            b->failed = true;
        csv_text(b, joined.s);
        pf__buf_free(&joined);
        break;
    }
    case COL_ERROR: csv_text(b, c->error); break;
    case COL_COMMAND: csv_text(b, c->command); break;
    case NCOLUMNS: break;
    }
}

int pf_bench_report_to_csv(const pf_bench_report *report, char **out)
{
    pf__c_numbers locale;
    if (pf__c_numbers_begin(&locale) < 0)
        return -ENOMEM;
    long base = pf__bench_baseline(report);
    pf__buf b = {0};
    /* Lines end in CRLF, as RFC 4180 and Python's csv module (TorchServe's writer) do. */
    for (int col = 0; col < NCOLUMNS; col++) {
        if (col > 0)
            pf__buf_puts(&b, ",");
        csv_text(&b, column_names[col]);
    }
    pf__buf_puts(&b, "\r\n");
    for (size_t i = 0; report->configs && i < report->nconfigs; i++) {
        for (int col = 0; col < NCOLUMNS; col++) {
            if (col > 0)
                pf__buf_puts(&b, ",");
            csv_cell(&b, report, base, &report->configs[i], (enum column)col);
        }
        pf__buf_puts(&b, "\r\n");
    }
    int rc = pf__buf_take(&b, out);
    pf__c_numbers_end(&locale);
    return rc;
}
