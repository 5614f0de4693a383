/*
 * html.c - report.html: what `pinfer bench` measured as one page that
 * opens offline, from a mail attachment or a CI artifact as well as from
 * the report folder.  So: one file, CSS inline, charts as inline SVG drawn
 * here, no script, no font, image or style sheet fetched, no link out.
 *
 * The page: a header (target, machine, start, command, load, verdict), the
 * table of configurations, then four charts, each an <svg class="chart
 * KIND"> with its width, height and viewBox written out:
 *   throughput  bars per configuration, its value and ratio to `default`;
 *   cdf         the latency CDFs, one line per configuration;
 *   heatmap     per configuration, each CPU's busy share over time (rows
 *               CPUs, columns samples): the case study's htop picture of
 *               which CPU was busy when;
 *   locality    migrations per second and memory on the local node.
 * A chart with nothing to draw (program mode has no latencies; the heat
 * map when nothing was sampled) is replaced by a sentence that says so.  A
 * configuration that failed is in the table with its error and left out
 * of the charts, with a note.
 *
 * Every text of the report (names, commands, errors, findings) is written
 * escaped: a command line holds quotes, `<` and `&` as often as not.
 * Coordinates are computed from figures that may be -1 (not measured) or
 * not finite; they are checked where they are drawn, so that no "nan" or
 * negative size reaches the page.
 */
#include "base/util.h"
#include "bench/report.h"

#include "pinfer.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The charts' width: the page's column, so that they are drawn 1:1 on a laptop. */
#define CHART_W 760.0

/* One colour per configuration (in report order), the same in every chart and the table. */
static const char *const config_colours[] = {
    "#e15759", "#f28e2b", "#4e79a7", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f",
};

/*
 * The heat map's scale: ten steps of 10% from idle (the background) to
 * fully busy, pale to dark red, so that a busy CPU stands out as it does in
 * htop's bars.
 */
#define HEAT_LEVELS 10
static const char *const heat_colours[HEAT_LEVELS] = {
    "#f1f4f8", "#fff0c2", "#ffdf8a", "#fec65b", "#fdab45",
    "#fb8a35", "#f1672a", "#dd4725", "#bf2a22", "#961423",
};

typedef struct page {
    pf__buf b;
    const pf_bench_report *r;
    long base; /* the configuration named `default`, measured; -1: none */
    const char *unit;
} page;

/* ---- Text and numbers ------------------------------------------------------- */

/*
 * Text as HTML: the five characters with a meaning escaped as entities;
 * control characters (but tab and newline) become spaces, since HTML has
 * no way to show them.  NULL writes nothing.
 */
static void esc(pf__buf *b, const char *s)
{
    if (!s)
        return;
    for (const char *p = s; *p; p++) {
        const char *start = p;
        while (*p && !strchr("<>&\"'", *p) &&
               ((unsigned char)*p >= 0x20 || *p == '\t' || *p == '\n') && *p != 0x7f)
            p++;
        pf__buf_put(b, start, (size_t)(p - start));
        if (!*p)
            break;
        switch (*p) {
        case '<': pf__buf_puts(b, "&lt;"); break;
        case '>': pf__buf_puts(b, "&gt;"); break;
        case '&': pf__buf_puts(b, "&amp;"); break;
        case '"': pf__buf_puts(b, "&quot;"); break;
        case '\'': pf__buf_puts(b, "&#39;"); break;
        default: pf__buf_puts(b, " ");
        }
    }
}

static bool known(double v)
{
    return v >= 0 && isfinite(v);
}

/*
 * A coordinate or length, to 0.1 px, from integers only (no locale, no
 * exponent); not finite: 0, so that nothing else than a number is ever
 * written in an attribute.
 */
static void pt(pf__buf *b, double v)
{
    if (!isfinite(v) || fabs(v) > 1e9)
        v = 0;
    long long t = llround(v * 10);
    if (t < 0) {
        pf__buf_puts(b, "-");
        t = -t;
    }
    if (t % 10)
        pf__buf_printf(b, "%lld.%lld", t / 10, t % 10);
    else
        pf__buf_printf(b, "%lld", t / 10);
}

/* A figure for people: three significant digits or more, no exponent below 1e15. */
static void human(char *text, size_t size, double v)
{
    double a = fabs(v);
    if (a == 0) {
        snprintf(text, size, "0");
        return;
    }
    int decimals = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
    if (a > 0 && a < 0.001)
        snprintf(text, size, "%.2g", v);
    else
        snprintf(text, size, "%.*f", decimals, v);
}

static void put_human(pf__buf *b, double v)
{
    char text[64];
    human(text, sizeof text, v);
    pf__buf_puts(b, text);
}

/* An axis label: the shortest form of a tick value (0.5, 2, 1000). */
static void put_tick(pf__buf *b, double v)
{
    char text[64];
    snprintf(text, sizeof text, "%.6g", fabs(v) < 1e-12 ? 0.0 : v);
    pf__buf_puts(b, text);
}

/* A step of 1, 2 or 5 times a power of ten that cuts `span` in about `count` parts. */
static double nice_step(double span, int count)
{
    if (!(span > 0) || !isfinite(span))
        return 1;
    double raw = span / count;
    double p = pow(10, floor(log10(raw)));
    double f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* The nearest 1, 2 or 5 times a power of ten below v (up: above), for a log axis' ends. */
static double nice_bound(double v, bool up)
{
    double p = pow(10, floor(log10(v)));
    static const double steps[] = {1, 2, 5, 10};
    if (up) {
        for (size_t i = 0; i < 4; i++)
            if (steps[i] * p >= v * (1 - 1e-9))
                return steps[i] * p;
        return 10 * p;
    }
    for (size_t i = 3; i-- > 0;)
        if (steps[i] * p <= v * (1 + 1e-9))
            return steps[i] * p;
    return p;
}

/* ---- The report's figures ----------------------------------------------------- */

static const char *colour(size_t i)
{
    return config_colours[i % (sizeof config_colours / sizeof *config_colours)];
}

static bool measured(const pf_bench_config *c)
{
    return !c->error;
}

static size_t nconfigs(const pf_bench_report *r)
{
    return r->configs ? r->nconfigs : 0;
}

/* The configuration's throughput over the baseline's; -1: no ratio. */
static double throughput_ratio(const page *pg, const pf_bench_config *c)
{
    if (pg->base < 0 || !measured(c) || !known(c->throughput))
        return -1;
    double base = pg->r->configs[pg->base].throughput;
    return known(base) && base > 0 ? c->throughput / base : -1;
}

static double p99_ratio(const page *pg, const pf_bench_config *c)
{
    if (pg->base < 0 || !measured(c) || !known(c->p99_ms))
        return -1;
    double base = pg->r->configs[pg->base].p99_ms;
    return known(base) && base > 0 ? c->p99_ms / base : -1;
}

static bool has_cdf(const pf_bench_config *c)
{
    return measured(c) && c->cdf && c->ncdf > 0;
}

static bool has_cpu_map(const pf_bench_config *c)
{
    const pf_bench_cpu_map *m = &c->cpu_map;
    return measured(c) && m->nsamples > 0 && m->ncpus > 0 && m->cpus && m->busy;
}

/* ---- Page -------------------------------------------------------------------- */

static const char style[] =
    ":root{--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--soft:#f5f7fa;--accent:#3b6fb6}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:var(--soft);color:var(--fg);"
    "font:15px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,"
    "sans-serif}\n"
    "main{max-width:1120px;margin:0 auto;padding:28px 32px 48px;background:#fff;"
    "min-height:100vh}\n"
    "h1{font-size:26px;margin:0 0 2px}\n"
    "h1 small{font-weight:400;color:var(--muted);font-size:15px;margin-left:8px}\n"
    "h2{font-size:19px;margin:36px 0 6px;padding-bottom:4px;border-bottom:1px solid "
    "var(--line)}\n"
    "h3{font-size:16px;margin:26px 0 4px}\n"
    "h4{font-size:14px;margin:16px 0 2px}\n"
    "p.lead{color:var(--muted);margin:2px 0 12px}\n"
    "dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:3px 18px;margin:14px 0}\n"
    "dl.meta dt{color:var(--muted)}\n"
    "dl.meta dd{margin:0;min-width:0}\n"
    "code{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;"
    "background:var(--soft);padding:1px 5px;border-radius:3px;overflow-wrap:anywhere}\n"
    "pre{font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;"
    "background:var(--soft);padding:10px 12px;border-radius:4px;overflow:auto;max-height:480px}\n"
    ".verdict{margin:16px 0 0;padding:10px 14px;border-left:4px solid var(--accent);"
    "background:#eef4fb;font-weight:600}\n"
    ".scroll{overflow-x:auto}\n"
    "table{border-collapse:collapse;width:100%;font-size:13px}\n"
    "th,td{padding:6px 7px;border-bottom:1px solid var(--line);text-align:right;"
    "vertical-align:top}\n"
    "thead th{background:var(--soft);font-weight:600;vertical-align:bottom}\n"
    "th:first-child,td:first-child,td.findings,td.error{text-align:left}\n"
    "td{font-variant-numeric:tabular-nums}\n"
    "td.name b{white-space:nowrap}\n"
    ".swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}\n"
    ".desc{color:var(--muted);font-size:12px}\n"
    "td.error{color:#b42318;background:#fef3f2}\n"
    ".na{color:#9aa5b1}\n"
    ".better{color:#1a7f37;font-weight:600}\n"
    ".worse{color:#b42318;font-weight:600}\n"
    "ul.findings{margin:0;padding-left:16px;color:#7a2e0e}\n"
    "tr.has-sub td{border-bottom:none}\n"
    "tr.sub td{padding-top:0}\n"
    ".note{color:var(--muted);font-style:italic}\n"
    "figure{margin:10px 0 0}\n"
    "svg.chart{display:block;max-width:100%;height:auto}\n"
    "svg.chart text{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,Arial,sans-serif;"
    "font-size:12px;fill:#3e4c59}\n"
    "svg.chart .axis{stroke:#9aa5b1;stroke-width:1}\n"
    "svg.chart .grid{stroke:#e4e7eb;stroke-width:1}\n"
    "svg.chart .title{font-weight:600;fill:#1f2933}\n"
    "svg.chart .desc{font-weight:400;fill:#7b8794}\n"
    "details{margin:8px 0}\n"
    "summary{cursor:pointer;color:var(--accent)}\n"
    "footer{margin-top:40px;color:var(--muted);font-size:12px}\n";

/* "<dt>label</dt><dd>text</dd>", the text escaped ("-" when missing); code: in <code>. */
static void meta_row(page *pg, const char *label, const char *text, bool code)
{
    pf__buf_printf(&pg->b, "<dt>%s</dt><dd>", label);
    if (!text || !*text) {
        pf__buf_puts(&pg->b, "<span class=\"na\">&mdash;</span>");
    } else {
        pf__buf_puts(&pg->b, code ? "<code>" : "");
        esc(&pg->b, text);
        pf__buf_puts(&pg->b, code ? "</code>" : "");
    }
    pf__buf_puts(&pg->b, "</dd>\n");
}

static void header(page *pg)
{
    const pf_bench_report *r = pg->r;
    pf__buf *b = &pg->b;
    pf__buf_puts(b, "<header>\n<h1>pinfer bench<small>");
    esc(b, r->mode && strcmp(r->mode, "program") == 0 ? "program mode" : "serving mode");
    pf__buf_puts(b, "</small></h1>\n<p class=\"lead\">The same load, once per configuration; "
                    "ratios are to <b>default</b> (unpinned, as many threads in each worker "
                    "as there are cores).</p>\n<dl class=\"meta\">\n");
    meta_row(pg, "Target", r->target, true);
    meta_row(pg, "Machine", r->machine, false);
    meta_row(pg, "Started", r->started, false);
    meta_row(pg, "Command", r->command, true);
    meta_row(pg, "Load", r->load, false);
    pf__buf_puts(b, "</dl>\n");
    if (r->verdict && *r->verdict) {
        pf__buf_puts(b, "<p class=\"verdict\">");
        esc(b, r->verdict);
        pf__buf_puts(b, "</p>\n");
    }
    pf__buf_puts(b, "</header>\n");
}

/* A table cell with a figure, or a dash when it was not measured. */
static void cell(page *pg, double v)
{
    if (!known(v)) {
        pf__buf_puts(&pg->b, "<td class=\"na\">&mdash;</td>");
        return;
    }
    pf__buf_puts(&pg->b, "<td>");
    put_human(&pg->b, v);
    pf__buf_puts(&pg->b, "</td>");
}

/*
 * A ratio to the baseline, "1.32&times;", marked better or worse past 5%.
 * higher_better: throughput (more is better) or latency (less is).
 */
static void ratio_text(page *pg, double v, bool higher_better)
{
    const char *cls = "";
    if (v > 1.05)
        cls = higher_better ? " class=\"better\"" : " class=\"worse\"";
    else if (v < 0.95)
        cls = higher_better ? " class=\"worse\"" : " class=\"better\"";
    pf__buf_printf(&pg->b, "<span%s>%.2f&times;</span>", cls, v);
}

static void swatch(page *pg, size_t i)
{
    pf__buf_printf(&pg->b, "<span class=\"swatch\" style=\"background:%s\"></span>", colour(i));
}

/*
 * The findings of `pinfer check` under the configuration's row, across the
 * figures' columns: a column of their own would be too narrow for a
 * sentence and stretch every row.
 */
static void findings_row(page *pg, const pf_bench_config *c)
{
    pf__buf *b = &pg->b;
    pf__buf_puts(b, "<tr class=\"sub\"><td></td><td colspan=\"11\" class=\"findings\">"
                    "<ul class=\"findings\">");
    for (size_t k = 0; k < c->nfindings; k++) {
        const char *f = c->findings[k] ? c->findings[k] : "";
        /* "CODE: message": the code in <code>, so that the eye finds it. */
        const char *colon = strstr(f, ": ");
        size_t n = strspn(f, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
        pf__buf_puts(b, "<li>");
        if (colon && n > 0 && f + n == colon) {
            pf__buf_puts(b, "<code>");
            pf__buf_put(b, f, n);
            pf__buf_puts(b, "</code> ");
            esc(b, colon + 2);
        } else {
            esc(b, f);
        }
        pf__buf_puts(b, "</li>");
    }
    pf__buf_puts(b, "</ul></td></tr>\n");
}

static void table(page *pg)
{
    pf__buf *b = &pg->b;
    const pf_bench_report *r = pg->r;
    pf__buf_puts(b, "<section>\n<h2>Configurations</h2>\n");
    if (nconfigs(r) == 0) {
        pf__buf_puts(b, "<p class=\"note\">No configuration was run.</p>\n</section>\n");
        return;
    }
    pf__buf_puts(b, "<div class=\"scroll\"><table class=\"configs\">\n<thead><tr>"
                    "<th>Configuration</th><th>Workers &times; threads</th><th>Throughput (");
    esc(b, pg->unit);
    pf__buf_puts(b, ")</th><th>vs default</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th>"
                    "<th>max ms</th><th>Failed</th><th>CPU %</th><th>Migrations/s</th>"
                    "<th>Local memory %</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < nconfigs(r); i++) {
        const pf_bench_config *c = &r->configs[i];
        bool sub = measured(c) && c->findings && c->nfindings > 0;
        pf__buf_puts(b,
                     sub ? "<tr class=\"has-sub\"><td class=\"name\">" : "<tr><td class=\"name\">");
        swatch(pg, i);
        pf__buf_puts(b, "<b>");
        esc(b, c->name ? c->name : "(unnamed)");
        pf__buf_puts(b, "</b>");
        if (c->description && *c->description) {
            pf__buf_puts(b, "<div class=\"desc\">");
            esc(b, c->description);
            pf__buf_puts(b, "</div>");
        }
        pf__buf_puts(b, "</td>");
        if (!measured(c)) {
            pf__buf_puts(b, "<td colspan=\"11\" class=\"error\">Not measured: ");
            esc(b, c->error);
            pf__buf_puts(b, "</td></tr>\n");
            continue;
        }
        if (c->workers > 0 && c->threads > 0)
            pf__buf_printf(b, "<td>%d &times; %d</td>", c->workers, c->threads);
        else if (c->workers > 0)
            pf__buf_printf(b, "<td>%d</td>", c->workers);
        else
            pf__buf_puts(b, "<td class=\"na\">&mdash;</td>");
        cell(pg, c->throughput);
        double tr = throughput_ratio(pg, c);
        if ((long)i == pg->base) {
            pf__buf_puts(b, "<td class=\"na\">baseline</td>");
        } else if (tr >= 0) {
            pf__buf_puts(b, "<td>");
            ratio_text(pg, tr, true);
            pf__buf_puts(b, "</td>");
        } else {
            pf__buf_puts(b, "<td class=\"na\">&mdash;</td>");
        }
        cell(pg, c->p50_ms);
        cell(pg, c->p90_ms);
        /* The p99 with its ratio: the tail is what pinning changes most. */
        double pr = p99_ratio(pg, c);
        if (known(c->p99_ms) && pr >= 0 && (long)i != pg->base) {
            pf__buf_puts(b, "<td>");
            put_human(b, c->p99_ms);
            pf__buf_puts(b, "<div class=\"desc\">");
            ratio_text(pg, pr, false);
            pf__buf_puts(b, "</div></td>");
        } else {
            cell(pg, c->p99_ms);
        }
        cell(pg, c->max_ms);
        if (c->failed >= 0)
            pf__buf_printf(b, "<td>%lld</td>", c->failed);
        else
            pf__buf_puts(b, "<td class=\"na\">&mdash;</td>");
        cell(pg, c->cpu_pct);
        cell(pg, c->migrations_per_s);
        cell(pg, c->local_memory_pct);
        pf__buf_puts(b, "</tr>\n");
        if (sub)
            findings_row(pg, c);
    }
    pf__buf_puts(b, "</tbody>\n</table></div>\n</section>\n");
}

/* The opening of a chart: its kind as a class, explicit size and viewBox. */
static void svg_open(page *pg, const char *kind, double h, const char *label)
{
    pf__buf_printf(&pg->b, "<figure><svg class=\"chart %s\" width=\"", kind);
    pt(&pg->b, CHART_W);
    pf__buf_puts(&pg->b, "\" height=\"");
    pt(&pg->b, h);
    pf__buf_puts(&pg->b, "\" viewBox=\"0 0 ");
    pt(&pg->b, CHART_W);
    pf__buf_puts(&pg->b, " ");
    pt(&pg->b, h);
    pf__buf_puts(&pg->b, "\" role=\"img\" aria-label=\"");
    esc(&pg->b, label);
    pf__buf_puts(&pg->b, "\">\n");
}

static void svg_close(page *pg)
{
    pf__buf_puts(&pg->b, "</svg></figure>\n");
}

static void line(pf__buf *b, const char *cls, double x1, double y1, double x2, double y2)
{
    pf__buf_printf(b, "<line class=\"%s\" x1=\"", cls);
    pt(b, x1);
    pf__buf_puts(b, "\" y1=\"");
    pt(b, y1);
    pf__buf_puts(b, "\" x2=\"");
    pt(b, x2);
    pf__buf_puts(b, "\" y2=\"");
    pt(b, y2);
    pf__buf_puts(b, "\"/>\n");
}

static void rect(pf__buf *b, double x, double y, double w, double h, const char *fill)
{
    pf__buf_puts(b, "<rect x=\"");
    pt(b, x);
    pf__buf_puts(b, "\" y=\"");
    pt(b, y);
    pf__buf_puts(b, "\" width=\"");
    pt(b, w > 0 ? w : 0);
    pf__buf_puts(b, "\" height=\"");
    pt(b, h > 0 ? h : 0);
    pf__buf_printf(b, "\" fill=\"%s\"/>", fill);
}

/* "<text x y [anchor] [class]>" - the caller writes the text and "</text>". */
static void text_open(pf__buf *b, double x, double y, const char *anchor, const char *cls)
{
    pf__buf_puts(b, "<text x=\"");
    pt(b, x);
    pf__buf_puts(b, "\" y=\"");
    pt(b, y);
    pf__buf_puts(b, "\"");
    if (anchor)
        pf__buf_printf(b, " text-anchor=\"%s\"", anchor);
    if (cls)
        pf__buf_printf(b, " class=\"%s\"", cls);
    pf__buf_puts(b, ">");
}

/* A configuration's name, right-aligned before its bars. */
static void row_label(page *pg, size_t i, double x, double y)
{
    text_open(&pg->b, x, y, "end", NULL);
    esc(&pg->b, pg->r->configs[i].name ? pg->r->configs[i].name : "(unnamed)");
    pf__buf_puts(&pg->b, "</text>\n");
}

static void note(page *pg, const char *text)
{
    pf__buf_puts(&pg->b, "<p class=\"note\">");
    pf__buf_puts(&pg->b, text);
    pf__buf_puts(&pg->b, "</p>\n");
}

/* ---- Chart 1: throughput ------------------------------------------------------ */

static void chart_throughput(page *pg)
{
    const pf_bench_report *r = pg->r;
    pf__buf *b = &pg->b;
    pf__buf_puts(b, "<h3>Throughput</h3>\n");
    size_t rows = 0;
    double top = 0;
    for (size_t i = 0; i < nconfigs(r); i++) {
        if (!measured(&r->configs[i]))
            continue;
        rows++;
        if (known(r->configs[i].throughput) && r->configs[i].throughput > top)
            top = r->configs[i].throughput;
    }
    if (rows == 0 || !(top > 0)) {
        note(pg, "No configuration has a throughput to draw.");
        return;
    }
    const double x0 = 150, plot_w = 400, row_h = 36, bar_h = 22, y0 = 10;
    double step = nice_step(top, 5);
    double axis_max = ceil(top / step) * step;
    double h = y0 + (double)rows * row_h + 34;
    svg_open(pg, "throughput", h, "Throughput per configuration");
    double plot_bottom = y0 + (double)rows * row_h;
    for (double t = 0; t <= axis_max * (1 + 1e-9); t += step) {
        double x = x0 + t / axis_max * plot_w;
        line(b, "grid", x, y0 - 4, x, plot_bottom);
        text_open(b, x, plot_bottom + 16, "middle", NULL);
        put_tick(b, t);
        pf__buf_puts(b, "</text>\n");
    }
    line(b, "axis", x0, y0 - 4, x0, plot_bottom);
    text_open(b, x0 + plot_w / 2, plot_bottom + 31, "middle", NULL);
    esc(b, pg->unit);
    pf__buf_puts(b, "</text>\n");
    size_t row = 0;
    for (size_t i = 0; i < nconfigs(r); i++) {
        const pf_bench_config *c = &r->configs[i];
        if (!measured(c))
            continue;
        double y = y0 + (double)row++ * row_h + (row_h - bar_h) / 2;
        row_label(pg, i, x0 - 8, y + bar_h / 2 + 4);
        if (!known(c->throughput)) {
            text_open(b, x0 + 6, y + bar_h / 2 + 4, NULL, NULL);
            pf__buf_puts(b, "not measured</text>\n");
            continue;
        }
        double w = c->throughput / axis_max * plot_w;
        pf__buf_puts(b, "<g><title>");
        esc(b, c->name);
        pf__buf_puts(b, ": ");
        put_human(b, c->throughput);
        pf__buf_puts(b, " ");
        esc(b, pg->unit);
        pf__buf_puts(b, "</title>");
        rect(b, x0, y, w, bar_h, colour(i));
        pf__buf_puts(b, "</g>\n");
        text_open(b, x0 + w + 6, y + bar_h / 2 + 4, NULL, NULL);
        pf__buf_puts(b, "<tspan class=\"title\">");
        put_human(b, c->throughput);
        pf__buf_puts(b, "</tspan> ");
        esc(b, pg->unit);
        double tr = throughput_ratio(pg, c);
        if ((long)i == pg->base)
            pf__buf_puts(b, " (baseline)");
        else if (tr >= 0)
            pf__buf_printf(b, " (%.2f&times; default)", tr);
        pf__buf_puts(b, "</text>\n");
    }
    svg_close(pg);
}

/* ---- Chart 2: latency CDFs ---------------------------------------------------- */

typedef struct xscale {
    bool log;
    double lo, hi; /* the axis' ends, ms */
    double x0, w;
} xscale;

static double xs_map(const xscale *s, double ms)
{
    double f;
    if (s->log) {
        double v = ms > s->lo ? ms : s->lo;
        f = (log10(v) - log10(s->lo)) / (log10(s->hi) - log10(s->lo));
    } else {
        f = (ms - s->lo) / (s->hi - s->lo);
    }
    if (!isfinite(f))
        f = 0;
    return s->x0 + (f < 0 ? 0 : f > 1 ? 1 : f) * s->w;
}

static void chart_cdf(page *pg)
{
    const pf_bench_report *r = pg->r;
    pf__buf *b = &pg->b;
    pf__buf_puts(b, "<h3>Latency distribution</h3>\n");
    double lo = INFINITY, hi = 0;
    size_t lines = 0;
    for (size_t i = 0; i < nconfigs(r); i++) {
        const pf_bench_config *c = &r->configs[i];
        if (!has_cdf(c))
            continue;
        lines++;
        for (size_t k = 0; k < c->ncdf; k++) {
            double ms = c->cdf[k].ms;
            if (!known(ms) || !isfinite(c->cdf[k].pct))
                continue;
            if (ms > 0 && ms < lo)
                lo = ms;
            if (ms > hi)
                hi = ms;
        }
    }
    if (lines == 0 || !(hi > 0)) {
        note(pg, "No latency distribution was measured (in program mode the programs report "
                 "a throughput, not the latency of each request).");
        return;
    }
    /*
     * A log scale when the latencies span more than a factor of 20: an
     * oversubscribed server's tail is ten times its median, and on a
     * linear axis its body would be a vertical line at the left.
     */
    xscale s = {.x0 = 64, .w = CHART_W - 64 - 24};
    s.log = isfinite(lo) && hi / lo > 20;
    if (s.log) {
        s.lo = nice_bound(lo, false);
        s.hi = nice_bound(hi, true);
        if (!(s.hi > s.lo))
            s.hi = s.lo * 10;
    } else {
        double step = nice_step(hi, 6);
        s.lo = 0;
        s.hi = ceil(hi / step) * step;
    }
    const double y0 = 14, plot_h = 300;
    double h = y0 + plot_h + 46;
    svg_open(pg, "cdf", h, "Latency CDF per configuration");
    /* y: the percentile, 0 at the bottom. */
#define CDF_Y(p) (y0 + plot_h - (p) / 100.0 * plot_h)
    for (int p = 0; p <= 100; p += 20) {
        line(b, "grid", s.x0, CDF_Y(p), s.x0 + s.w, CDF_Y(p));
        text_open(b, s.x0 - 6, CDF_Y(p) + 4, "end", NULL);
        pf__buf_printf(b, "%d</text>\n", p);
    }
    static const int marks[] = {50, 90, 99};
    for (size_t k = 0; k < 3; k++) {
        pf__buf_puts(b, "<g stroke-dasharray=\"4 3\">");
        line(b, "axis", s.x0, CDF_Y(marks[k]), s.x0 + s.w, CDF_Y(marks[k]));
        pf__buf_puts(b, "</g>");
        text_open(b, s.x0 + s.w - 2, CDF_Y(marks[k]) - 3, "end", NULL);
        pf__buf_printf(b, "p%d</text>\n", marks[k]);
    }
    if (s.log) {
        /* 1, 2, 5 in each decade; past four decades the 2 and 5 lose their labels. */
        bool minor_labels = s.hi / s.lo <= 1e4 * (1 + 1e-9);
        for (double d = pow(10, floor(log10(s.lo) + 1e-9)); d <= s.hi * (1 + 1e-9); d *= 10) {
            static const double mult[] = {1, 2, 5};
            for (size_t k = 0; k < 3; k++) {
                double v = d * mult[k];
                if (v < s.lo * (1 - 1e-9))
                    continue;
                if (v > s.hi * (1 + 1e-9))
                    break;
                double x = xs_map(&s, v);
                line(b, "grid", x, y0, x, y0 + plot_h);
                bool end = fabs(v - s.lo) < 1e-9 * s.lo || fabs(v - s.hi) < 1e-9 * s.hi;
                if (k > 0 && !minor_labels && !end)
                    continue;
                text_open(b, x, y0 + plot_h + 16, "middle", NULL);
                put_tick(b, v);
                pf__buf_puts(b, "</text>\n");
            }
        }
    } else {
        double step = nice_step(s.hi, 6);
        for (double v = 0; v <= s.hi * (1 + 1e-9); v += step) {
            double x = xs_map(&s, v);
            line(b, "grid", x, y0, x, y0 + plot_h);
            text_open(b, x, y0 + plot_h + 16, "middle", NULL);
            put_tick(b, v);
            pf__buf_puts(b, "</text>\n");
        }
    }
    line(b, "axis", s.x0, y0 + plot_h, s.x0 + s.w, y0 + plot_h);
    line(b, "axis", s.x0, y0, s.x0, y0 + plot_h);
    text_open(b, s.x0 + s.w / 2, y0 + plot_h + 36, "middle", NULL);
    pf__buf_puts(b, s.log ? "latency, ms (log scale)</text>\n" : "latency, ms</text>\n");
    pf__buf_puts(b, "<text transform=\"translate(16 ");
    pt(b, y0 + plot_h / 2);
    pf__buf_puts(b, ") rotate(-90)\" text-anchor=\"middle\">percentile</text>\n");
    size_t shown = 0;
    for (size_t i = 0; i < nconfigs(r); i++) {
        const pf_bench_config *c = &r->configs[i];
        if (!has_cdf(c))
            continue;
        pf__buf_printf(b,
                       "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2.2\" "
                       "stroke-linejoin=\"round\" points=\"",
                       colour(i));
        bool first = true;
        for (size_t k = 0; k < c->ncdf; k++) {
            double ms = c->cdf[k].ms, p = c->cdf[k].pct;
            if (!known(ms) || !isfinite(p))
                continue;
            p = p < 0 ? 0 : p > 100 ? 100 : p;
            if (!first)
                pf__buf_puts(b, " ");
            first = false;
            pt(b, xs_map(&s, ms));
            pf__buf_puts(b, ",");
            pt(b, CDF_Y(p));
        }
        pf__buf_puts(b, "\"><title>");
        esc(b, c->name);
        pf__buf_puts(b, "</title></polyline>\n");
        /* The legend, bottom right: below a CDF's curve, where no line goes. */
        double ly = y0 + plot_h - 14 - (double)(lines - 1 - shown) * 18;
        double lx = s.x0 + s.w - 170;
        rect(b, lx, ly - 9, 14, 4, colour(i));
        text_open(b, lx + 20, ly - 3, NULL, NULL);
        esc(b, c->name);
        if (known(c->p99_ms)) {
            pf__buf_puts(b, " (p99 ");
            put_human(b, c->p99_ms);
            pf__buf_puts(b, " ms)");
        }
        pf__buf_puts(b, "</text>\n");
        shown++;
    }
#undef CDF_Y
    svg_close(pg);
}

/* ---- Chart 3: per-CPU heat maps ----------------------------------------------- */

/* The level of a busy share: 0 (under 10%, the background) to 9; -1: no value. */
static int heat_level(double busy)
{
    if (!isfinite(busy) || busy < 0)
        return -1;
    int level = (int)(busy / (100.0 / HEAT_LEVELS));
    return level >= HEAT_LEVELS ? HEAT_LEVELS - 1 : level;
}

/*
 * One configuration's map.  Samples are averaged into at most 240 columns
 * (a minute at 0.1 s is 600 samples: more columns than pixels), and the
 * cells of a row that share a level are drawn as one rectangle, so that
 * a machine of a hundred CPUs makes a page of kilobytes, not megabytes.
 */
static int heatmap(page *pg, size_t i)
{
    const pf_bench_config *c = &pg->r->configs[i];
    const pf_bench_cpu_map *m = &c->cpu_map;
    pf__buf *b = &pg->b;
    size_t ncols = m->nsamples < 240 ? m->nsamples : 240;
    int *levels = malloc(ncols * sizeof *levels);
    if (!levels)
        return -ENOMEM;
    const double x0 = 64, plot_w = CHART_W - 64 - 20, y0 = 8;
    double row_h = 360.0 / (double)m->ncpus;
    row_h = row_h > 14 ? 14 : row_h < 2 ? 2 : row_h;
    double plot_h = row_h * (double)m->ncpus;
    double h = y0 + plot_h + 40 + 44;
    double col_w = plot_w / (double)ncols;
    bool seconds = m->interval_s > 0 && isfinite(m->interval_s);
    double span = seconds ? m->interval_s * (double)m->nsamples : (double)m->nsamples;

    pf__buf_puts(b, "<h4>");
    esc(b, c->name);
    if (c->workers > 0 && c->threads > 0)
        pf__buf_printf(b, " <span class=\"desc\">%d workers &times; %d threads</span>", c->workers,
                       c->threads);
    pf__buf_puts(b, "</h4>\n");
    {
        char *label = pf__strdupf("Per-CPU utilisation over time: %s", c->name ? c->name : "");
        if (!label) {
            free(levels);
            return -ENOMEM;
        }
        svg_open(pg, "heatmap", h, label);
        free(label);
    }
    rect(b, x0, y0, plot_w, plot_h, heat_colours[0]);
    pf__buf_puts(b, "\n<g shape-rendering=\"crispEdges\">\n");
    for (size_t cpu = 0; cpu < m->ncpus; cpu++) {
        for (size_t col = 0; col < ncols; col++) {
            size_t from = col * m->nsamples / ncols, to = (col + 1) * m->nsamples / ncols;
            double sum = 0;
            size_t n = 0;
            for (size_t s = from; s < to; s++) {
                double v = m->busy[s * m->ncpus + cpu];
                if (isfinite(v) && v >= 0) {
                    sum += v > 100 ? 100 : v;
                    n++;
                }
            }
            levels[col] = n ? heat_level(sum / (double)n) : -1;
        }
        double y = y0 + (double)cpu * row_h;
        for (size_t col = 0; col < ncols;) {
            size_t end = col + 1;
            while (end < ncols && levels[end] == levels[col])
                end++;
            if (levels[col] > 0)
                rect(b, x0 + (double)col * col_w, y, (double)(end - col) * col_w, row_h,
                     heat_colours[levels[col]]);
            col = end;
        }
        pf__buf_puts(b, "\n");
    }
    pf__buf_puts(b, "</g>\n");
    /* The CPUs, labelled as often as the rows leave room for. */
    size_t every = (size_t)ceil(11.0 / row_h);
    size_t last = m->ncpus - 1;
    for (size_t cpu = 0; cpu < m->ncpus; cpu++) {
        /* And the last CPU, when it is not too close to the label before it. */
        if (cpu % every != 0 && !(cpu == last && cpu % every >= (every + 1) / 2))
            continue;
        text_open(b, x0 - 6, y0 + ((double)cpu + 0.5) * row_h + 4, "end", NULL);
        pf__buf_printf(b, "%d</text>\n", m->cpus[cpu]);
    }
    pf__buf_puts(b, "<text transform=\"translate(14 ");
    pt(b, y0 + plot_h / 2);
    pf__buf_puts(b, ") rotate(-90)\" text-anchor=\"middle\">CPU</text>\n");
    double step = nice_step(span, 8);
    double bottom = y0 + plot_h;
    for (double t = 0; t <= span * (1 + 1e-9); t += step) {
        double x = x0 + t / span * plot_w;
        line(b, "axis", x, bottom, x, bottom + 4);
        text_open(b, x, bottom + 16, "middle", NULL);
        put_tick(b, t);
        pf__buf_puts(b, "</text>\n");
    }
    line(b, "axis", x0, bottom, x0 + plot_w, bottom);
    text_open(b, x0 + plot_w / 2, bottom + 32, "middle", NULL);
    pf__buf_puts(b, seconds ? "time, s" : "sample");
    pf__buf_puts(b, "</text>\n");
    /* The colour scale. */
    double ly = bottom + 48;
    text_open(b, x0, ly + 10, NULL, NULL);
    pf__buf_puts(b, "busy</text>\n");
    for (int k = 0; k < HEAT_LEVELS; k++) {
        rect(b, x0 + 40 + k * 28, ly, 28, 12, heat_colours[k]);
        pf__buf_puts(b, "\n");
    }
    pf__buf_puts(b, "<rect x=\"");
    pt(b, x0 + 40);
    pf__buf_puts(b, "\" y=\"");
    pt(b, ly);
    pf__buf_printf(b, "\" width=\"%d\" height=\"12\" fill=\"none\" stroke=\"#cbd2d9\"/>\n",
                   28 * HEAT_LEVELS);
    for (int k = 0; k <= HEAT_LEVELS; k += 5) {
        text_open(b, x0 + 40 + k * 28, ly + 26, "middle", NULL);
        pf__buf_printf(b, "%d%%</text>\n", k * 10);
    }
    text_open(b, x0 + 40 + 28 * HEAT_LEVELS + 12, ly + 10, NULL, NULL);
    pf__buf_puts(b, "of each CPU's time per interval");
    if (seconds) {
        pf__buf_puts(b, " (");
        /* The sampler's spacing jitters by microseconds: say it as it was asked for. */
        put_tick(b, round(m->interval_s * 100) / 100);
        pf__buf_puts(b, " s)");
    }
    pf__buf_puts(b, "</text>\n");
    svg_close(pg);
    free(levels);
    return 0;
}

static int chart_heatmaps(page *pg)
{
    const pf_bench_report *r = pg->r;
    pf__buf *b = &pg->b;
    pf__buf_puts(b, "<h3>Which CPU was busy when</h3>\n");
    size_t maps = 0;
    for (size_t i = 0; i < nconfigs(r); i++)
        maps += has_cpu_map(&r->configs[i]);
    if (maps == 0) {
        note(pg, "The CPUs were not sampled during the measured phases: there is no per-CPU "
                 "utilisation to show.");
        return 0;
    }
    pf__buf_puts(b, "<p class=\"lead\">Each row is a CPU, each column a moment of the measured "
                    "phase, the colour how busy the CPU was: unpinned workers wander over "
                    "the CPUs, pinned ones keep to theirs.</p>\n");
    for (size_t i = 0; i < nconfigs(r); i++) {
        const pf_bench_config *c = &r->configs[i];
        if (!measured(c))
            continue;
        if (!has_cpu_map(c)) {
            pf__buf_puts(b, "<h4>");
            esc(b, c->name);
            pf__buf_puts(b, "</h4>\n<p class=\"note\">Not sampled.</p>\n");
            continue;
        }
        int rc = heatmap(pg, i);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- Chart 4: migrations and memory locality ------------------------------------ */

static void chart_locality(page *pg)
{
    const pf_bench_report *r = pg->r;
    pf__buf *b = &pg->b;
    pf__buf_puts(b, "<h3>Migrations and memory locality</h3>\n");
    size_t rows = 0, known_any = 0;
    double top = 0;
    for (size_t i = 0; i < nconfigs(r); i++) {
        const pf_bench_config *c = &r->configs[i];
        if (!measured(c))
            continue;
        rows++;
        if (known(c->migrations_per_s)) {
            known_any++;
            top = c->migrations_per_s > top ? c->migrations_per_s : top;
        }
        known_any += known(c->local_memory_pct);
    }
    if (rows == 0 || known_any == 0) {
        note(pg, "Neither migrations nor memory placement were measured.");
        return;
    }
    const double xa = 150, xb = 470, bar_w = 200, row_h = 32, bar_h = 18, y0 = 34;
    double h = y0 + (double)rows * row_h + 10;
    svg_open(pg, "locality", h, "Migrations per second and memory on the local node");
    text_open(b, xa, 16, NULL, "title");
    pf__buf_puts(b, "Migrations/s <tspan class=\"desc\">(fewer is better)</tspan></text>\n");
    text_open(b, xb, 16, NULL, "title");
    pf__buf_puts(b, "Memory on the local node <tspan class=\"desc\">(more is better)</tspan>"
                    "</text>\n");
    line(b, "axis", xa, y0 - 6, xa, y0 + (double)rows * row_h);
    line(b, "axis", xb, y0 - 6, xb, y0 + (double)rows * row_h);
    line(b, "grid", xb + bar_w, y0 - 6, xb + bar_w, y0 + (double)rows * row_h);
    size_t row = 0;
    for (size_t i = 0; i < nconfigs(r); i++) {
        const pf_bench_config *c = &r->configs[i];
        if (!measured(c))
            continue;
        double y = y0 + (double)row++ * row_h;
        double ty = y + bar_h / 2 + 4;
        row_label(pg, i, xa - 8, ty);
        if (known(c->migrations_per_s)) {
            double w = top > 0 ? c->migrations_per_s / top * bar_w : 0;
            rect(b, xa, y, w < 1 && c->migrations_per_s > 0 ? 1 : w, bar_h, colour(i));
            text_open(b, xa + w + 6, ty, NULL, NULL);
            put_human(b, c->migrations_per_s);
            if (known(c->cross_node_migrations_per_s) && c->cross_node_migrations_per_s > 0) {
                pf__buf_puts(b, " (");
                put_human(b, c->cross_node_migrations_per_s);
                pf__buf_puts(b, " across nodes)");
            }
            pf__buf_puts(b, "</text>\n");
        } else {
            text_open(b, xa + 6, ty, NULL, "desc");
            pf__buf_puts(b, "not measured</text>\n");
        }
        if (known(c->local_memory_pct)) {
            double pct = c->local_memory_pct > 100 ? 100 : c->local_memory_pct;
            double w = pct / 100 * bar_w;
            rect(b, xb, y, w, bar_h, colour(i));
            text_open(b, xb + bar_w + 6, ty, NULL, NULL);
            put_human(b, c->local_memory_pct);
            pf__buf_puts(b, "%</text>\n");
        } else {
            text_open(b, xb + 6, ty, NULL, "desc");
            pf__buf_puts(b, "not measured</text>\n");
        }
    }
    svg_close(pg);
}

/* ---- The rest ---------------------------------------------------------------------- */

static int charts(page *pg)
{
    const pf_bench_report *r = pg->r;
    pf__buf *b = &pg->b;
    pf__buf_puts(b, "<section>\n<h2>Charts</h2>\n");
    bool any_failed = false;
    for (size_t i = 0; i < nconfigs(r); i++)
        any_failed |= !measured(&r->configs[i]);
    if (any_failed) {
        pf__buf_puts(b, "<p class=\"note\">Left out of the charts, since they could not be "
                        "measured:");
        const char *sep = " ";
        for (size_t i = 0; i < nconfigs(r); i++) {
            const pf_bench_config *c = &r->configs[i];
            if (measured(c))
                continue;
            pf__buf_puts(b, sep);
            pf__buf_puts(b, "<b>");
            esc(b, c->name ? c->name : "(unnamed)");
            pf__buf_puts(b, "</b> (");
            esc(b, c->error);
            pf__buf_puts(b, ")");
            sep = "; ";
        }
        pf__buf_puts(b, ".</p>\n");
    }
    chart_throughput(pg);
    chart_cdf(pg);
    int rc = chart_heatmaps(pg);
    if (rc < 0)
        return rc;
    chart_locality(pg);
    pf__buf_puts(b, "</section>\n");
    return 0;
}

/* The command line of each configuration, and the plan, folded away (no script needed). */
static void details(page *pg)
{
    const pf_bench_report *r = pg->r;
    pf__buf *b = &pg->b;
    pf__buf_puts(b, "<section>\n<h2>How each configuration ran</h2>\n");
    if (nconfigs(r) == 0)
        note(pg, "No configuration was run.");
    for (size_t i = 0; i < nconfigs(r); i++) {
        const pf_bench_config *c = &r->configs[i];
        pf__buf_puts(b, "<details><summary>");
        esc(b, c->name ? c->name : "(unnamed)");
        pf__buf_puts(b, "</summary>");
        if (c->description && *c->description) {
            pf__buf_puts(b, "<p>");
            esc(b, c->description);
            pf__buf_puts(b, "</p>");
        }
        pf__buf_puts(b, "<pre>");
        esc(b, c->command && *c->command ? c->command : "(no command recorded)");
        pf__buf_puts(b, "</pre></details>\n");
    }
    if (r->plan_json && r->plan_json[strspn(r->plan_json, " \t\r\n")]) {
        pf__buf_puts(b, "<details><summary>The pinned configuration's plan "
                        "(<code>pinfer plan --json</code>)</summary><pre>");
        esc(b, r->plan_json);
        pf__buf_puts(b, "</pre></details>\n");
    }
    pf__buf_puts(b, "</section>\n");
}

int pf_bench_report_to_html(const pf_bench_report *report, char **out)
{
    pf__c_numbers locale;
    if (pf__c_numbers_begin(&locale) < 0)
        return -ENOMEM;
    page pg = {.r = report, .base = pf__bench_baseline(report), .unit = report->unit};
    if (!pg.unit || !*pg.unit)
        pg.unit = "per second";
    pf__buf *b = &pg.b;
    pf__buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<title>pinfer bench");
    if (report->target && *report->target) {
        pf__buf_puts(b, ": ");
        esc(b, report->target);
    }
    pf__buf_puts(b, "</title>\n<style>\n");
    pf__buf_puts(b, style);
    pf__buf_puts(b, "</style>\n</head>\n<body>\n<main>\n");
    header(&pg);
    table(&pg);
    int rc = charts(&pg);
    if (rc < 0) {
        pf__buf_free(b);
        pf__c_numbers_end(&locale);
        return rc;
    }
    details(&pg);
    pf__buf_puts(b, "<footer>Written by pinfer " PINFER_VERSION
                    " (<code>pinfer bench</code>); bench.json and bench.csv beside this page "
                    "hold the same figures.</footer>\n</main>\n</body>\n</html>\n");
    rc = pf__buf_take(b, out);
    pf__c_numbers_end(&locale);
    return rc;
}
