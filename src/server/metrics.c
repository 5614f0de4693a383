/*
 * metrics.c - GET /metrics on the metrics address, in Prometheus' text
 * format (docs/serve.md, "Metrics"): TorchServe's request and latency
 * counters, and pinfer's own per-worker and per-model figures.
 */
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Label values: names are [A-Za-z0-9_.-] (pf_serve_model_name_check), nothing to escape. */
static void model_labels(pf__buf *b, const pf__model *m)
{
    pf__buf_printf(b, "model_name=\"%s\",model_version=\"%s\"", m->name, m->version);
}

static void help(pf__buf *b, const char *name, const char *type, const char *text)
{
    pf__buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void per_model(pf__buf *b, const pf_server *srv, const char *name, const char *type,
                      const char *text, uint64_t (*value)(const pf__model *))
{
    help(b, name, type, text);
    for (size_t i = 0; i < srv->nmodels; i++) {
        const pf__model *m = srv->models[i];
        pf__buf_printf(b, "%s{", name);
        model_labels(b, m);
        pf__buf_printf(b, "} %llu\n", (unsigned long long)value(m));
    }
}

static uint64_t requests_total(const pf__model *m)
{
    return m->requests_total;
}
static uint64_t inference_us(const pf__model *m)
{
    return m->inference_us_total;
}
static uint64_t queue_us(const pf__model *m)
{
    return m->queue_us_total;
}
static uint64_t queued(const pf__model *m)
{
    return m->queued;
}

/* One line per worker of every model: fn writes the value. */
static void per_worker(pf__buf *b, const pf_server *srv, const char *name, const char *type,
                       const char *text, bool cpus_label, long (*value)(const pf__worker *))
{
    help(b, name, type, text);
    for (size_t i = 0; i < srv->nmodels; i++) {
        const pf__model *m = srv->models[i];
        for (size_t k = 0; k < m->nworkers; k++) {
            const pf__worker *w = m->workers[k];
            long v = value(w);
            if (v < 0)
                continue;
            pf__buf_printf(b, "%s{", name);
            model_labels(b, m);
            pf__buf_printf(b, ",worker=\"%d\"", w->id);
            if (cpus_label) {
                char *list = NULL;
                pf_cpulist_format(w->cpus.v, w->cpus.len, &list);
                pf__buf_printf(b, ",cpus=\"%s\"", list ? list : "");
                free(list);
            }
            pf__buf_printf(b, "} %ld\n", v);
        }
    }
}

static long worker_cpus(const pf__worker *w)
{
    return w->pid > 0 ? (long)w->cpus.len : -1;
}
static long worker_restarts(const pf__worker *w)
{
    return (long)w->restarts;
}
static long worker_migrations(const pf__worker *w)
{
    return w->proc_migrations;
}
static long worker_rss_kb(const pf__worker *w)
{
    return w->proc_rss_kb;
}

void pf__metrics_handle(void *ctx, pf__http_request *req)
{
    pf_server *srv = ctx;
    if (strcmp(pf__http_path(req), "/metrics") != 0) {
        pf__reply_error(req, 404, "no such endpoint: %s (GET /metrics)", pf__http_path(req));
        return;
    }
    if (strcmp(pf__http_method(req), "GET") != 0) {
        pf__reply_error(req, 405, "/metrics: use GET");
        return;
    }
    /* One reading of each worker's /proc for the figures below. */
    for (size_t i = 0; i < srv->nmodels; i++)
        for (size_t k = 0; k < srv->models[i]->nworkers; k++)
            pf__worker_read_proc(srv->models[i]->workers[k]);
    pf__buf b = {0};
    per_model(&b, srv, "ts_inference_requests_total", "counter",
              "Requests answered by the model's workers.", requests_total);
    per_model(&b, srv, "ts_inference_latency_microseconds", "counter",
              "Total time from arrival to answer of those requests, in microseconds.",
              inference_us);
    per_model(&b, srv, "ts_queue_latency_microseconds", "counter",
              "Total time those requests waited in the queue, in microseconds.", queue_us);
    per_model(&b, srv, "pinfer_queue_depth", "gauge", "Requests queued now.", queued);
    help(&b, "pinfer_responses_total", "counter", "Answers to inference requests by status class.");
    for (size_t i = 0; i < srv->nmodels; i++) {
        const pf__model *m = srv->models[i];
        for (int c = 2; c <= 5; c++) {
            pf__buf_puts(&b, "pinfer_responses_total{");
            model_labels(&b, m);
            pf__buf_printf(&b, ",code=\"%dxx\"} %llu\n", c, (unsigned long long)m->answered[c]);
        }
    }
    help(&b, "pinfer_batch_size", "histogram", "Requests per batch sent to a worker.");
    static const char *const LE[] = {"1", "2", "4", "8", "16", "32", "64", "+Inf"};
    for (size_t i = 0; i < srv->nmodels; i++) {
        const pf__model *m = srv->models[i];
        uint64_t cumulative = 0;
        for (int k = 0; k < 8; k++) {
            cumulative += m->batch_hist[k];
            pf__buf_puts(&b, "pinfer_batch_size_bucket{");
            model_labels(&b, m);
            pf__buf_printf(&b, ",le=\"%s\"} %llu\n", LE[k], (unsigned long long)cumulative);
        }
        pf__buf_puts(&b, "pinfer_batch_size_sum{");
        model_labels(&b, m);
        pf__buf_printf(&b, "} %llu\npinfer_batch_size_count{",
                       (unsigned long long)m->batch_requests);
        model_labels(&b, m);
        pf__buf_printf(&b, "} %llu\n", (unsigned long long)m->batch_count);
    }
    per_worker(&b, srv, "pinfer_worker_cpus", "gauge",
               "CPUs the worker is bound to (label cpus: which; 0: not bound).", true, worker_cpus);
    per_worker(&b, srv, "pinfer_worker_migrations_total", "counter",
               "Moves of the worker's threads between CPUs (se.nr_migrations, all threads).", false,
               worker_migrations);
    per_worker(&b, srv, "pinfer_worker_restarts_total", "counter",
               "Times the worker was restarted.", false, worker_restarts);
    per_worker(&b, srv, "pinfer_worker_memory_kilobytes", "gauge",
               "The worker's resident memory (VmRSS).", false, worker_rss_kb);
    char *out = NULL;
    if (pf__buf_take(&b, &out) < 0) {
        pf__reply_error(req, 500, "out of memory");
        return;
    }
    pf__http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, 0, out,
                     strlen(out));
}
