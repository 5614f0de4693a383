/*
 * management.c - TorchServe's management API on the management address:
 * list, describe, register, scale, unregister (docs/serve.md,
 * "Management API").  Loopback clients only, unless a token is set; with a
 * token every request carries it.
 */
#include "server/server.h"

#include "base/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX 1000

/*
 * A query number in *out: absent -> dflt.  false when it is bad, with the 400
 * sent: callers chain them with && so that one request gets one answer.
 */
static bool query_int(pf__http_request *req, const char *name, long lo, long hi, long dflt,
                      long *out)
{
    const char *text = pf__http_query(req, name);
    *out = dflt;
    if (text && pf__parse_int(text, strlen(text), lo, hi, out) < 0) {
        pf__reply_ts_error(req, 400, "%s='%s': a whole number from %ld to %ld is needed", name,
                           text, lo, hi);
        return false;
    }
    return true;
}

/* A query boolean in *out, as query_int. */
static bool query_bool(pf__http_request *req, const char *name, bool dflt, bool *out)
{
    const char *text = pf__http_query(req, name);
    *out = dflt;
    if (!text)
        return true;
    if (strcasecmp(text, "true") == 0 || strcasecmp(text, "false") == 0) {
        *out = strcasecmp(text, "true") == 0;
        return true;
    }
    pf__reply_ts_error(req, 400, "%s='%s': true or false", name, text);
    return false;
}

static void list_models(pf_server *srv, pf__http_request *req)
{
    long limit, start;
    if (!query_int(req, "limit", 1, LIST_LIMIT_MAX, LIST_LIMIT_DEFAULT, &limit) ||
        !query_int(req, "next_page_token", 0, 1L << 30, 0, &start))
        return;
    pf__json w;
    pf__json_init(&w);
    pf__json_begin_object(&w);
    pf__json_key(&w, "models");
    pf__json_begin_array(&w);
    long shown = 0, index = 0;
    bool more = false;
    for (size_t i = 0; i < srv->nmodels; i++) {
        const pf__model *m = srv->models[i];
        if (m->removing)
            continue;
        if (index++ < start)
            continue;
        if (shown == limit) {
            more = true;
            break;
        }
        pf__json_begin_object(&w);
        pf__json_member_string(&w, "modelName", m->name);
        pf__json_member_string(&w, "modelUrl", m->url);
        pf__json_end_object(&w);
        shown++;
    }
    pf__json_end_array(&w);
    if (more) {
        char token[24];
        snprintf(token, sizeof token, "%ld", start + shown);
        pf__json_member_string(&w, "nextPageToken", token);
    }
    pf__json_end_object(&w);
    char *out = NULL;
    pf__json_finish(&w, &out);
    pf__reply_json(req, 200, out);
}

static const char *state_name(const pf__worker *w)
{
    switch (w->state) {
    case PF__W_STARTING: return "STARTING";
    case PF__W_IDLE: return "READY";
    case PF__W_BUSY: return "BUSY";
    case PF__W_STOPPING: return "STOPPING";
    default: return w->retired ? "STOPPED" : "RESTARTING";
    }
}

static void cpu_list_member(pf__json *w, const char *key, const pf__ivec *v)
{
    char *text = NULL;
    pf_cpulist_format(v->v, v->len, &text);
    pf__json_member_string(w, key, text ? text : "");
    free(text);
}

static void describe_worker(pf__json *j, const pf__worker *w)
{
    pf__json_begin_object(j);
    char id[16];
    snprintf(id, sizeof id, "%d", w->id);
    pf__json_member_string(j, "id", id);
    if (w->start_wall_ms) {
        char when[40];
        time_t t = (time_t)(w->start_wall_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        pf__json_member_string(j, "startTime", when);
    }
    pf__json_member_string(j, "status", state_name(w));
    pf__json_member_int(j, "memoryUsage", w->proc_rss_kb > 0 ? w->proc_rss_kb * 1024 : 0);
    pf__json_member_int(j, "pid", w->pid > 0 ? w->pid : -1);
    pf__json_key(j, "gpu");
    pf__json_bool(j, false);
    pf__json_member_string(j, "gpuUsage", "N/A");
    cpu_list_member(j, "cpus", &w->cpus);
    cpu_list_member(j, "memoryNodes", &w->nodes);
    pf__json_member_int(j, "threads", w->threads);
    pf__json_member_int(j, "restarts", w->restarts);
    pf__json_member_int(j, "batches", (long long)w->batches);
    pf__json_end_object(j);
}

static void describe(pf_server *srv, pf__http_request *req, const char *name, const char *version)
{
    bool all = version && strcmp(version, "all") == 0;
    pf__json j;
    pf__json_init(&j);
    pf__json_begin_array(&j);
    size_t found = 0;
    for (size_t i = 0; i < srv->nmodels; i++) {
        const pf__model *m = srv->models[i];
        if (m->removing || strcmp(m->name, name) != 0 ||
            (version && !all && strcmp(version, m->version) != 0))
            continue;
        found++;
        pf__json_begin_object(&j);
        pf__json_member_string(&j, "modelName", m->name);
        pf__json_member_string(&j, "modelVersion", m->version);
        pf__json_member_string(&j, "modelUrl", m->url);
        pf__json_member_string(&j, "runtime", "python");
        pf__json_member_int(&j, "minWorkers", (long long)m->target);
        pf__json_member_int(&j, "maxWorkers",
                            m->max_workers > 0 ? m->max_workers : (long long)m->target);
        pf__json_member_int(&j, "batchSize", m->batch_size);
        pf__json_member_int(&j, "maxBatchDelay", m->max_batch_delay);
        pf__json_member_int(&j, "responseTimeout", m->response_timeout);
        pf__json_key(&j, "loadedAtStartup");
        pf__json_bool(&j, m->startup);
        pf__json_member_string(&j, "handler", m->handler);
        pf__json_member_string(&j, "platform", m->platform);
        cpu_list_member(&j, "cpus", &m->share);
        pf__json_member_int(&j, "queued", (long long)m->queued);
        pf__json_key(&j, "workers");
        pf__json_begin_array(&j);
        for (size_t k = 0; k < m->nworkers; k++) {
            pf__worker_read_proc(m->workers[k]);
            describe_worker(&j, m->workers[k]);
        }
        pf__json_end_array(&j);
        pf__json_end_object(&j);
    }
    pf__json_end_array(&j);
    char *out = NULL;
    pf__json_finish(&j, &out);
    if (!found) {
        free(out);
        pf__reply_ts_error(req, 404, "Model not found: %s%s%s", name, version ? "/" : "",
                           version ? version : "");
        return;
    }
    pf__reply_json(req, 200, out);
}

/* Wait for `target` ready workers before answering. */
static void wait_for(pf_server *srv, pf__http_request *req, pf__model *m, size_t target,
                     bool registering)
{
    pf__waiter *wt = calloc(1, sizeof *wt);
    if (!wt) {
        pf__reply_ts_error(req, 500, "out of memory");
        return;
    }
    wt->http = req;
    wt->model = m;
    wt->target = target;
    wt->registering = registering;
    wt->next = srv->waiters;
    srv->waiters = wt;
    pf__http_defer(req);
}

/* CPUs no model holds. */
static void free_cpus(const pf_server *srv, pf__ivec *out)
{
    for (size_t i = 0; i < srv->usable.len; i++) {
        int cpu = srv->usable.v[i];
        bool held = false;
        for (size_t k = 0; k < srv->nmodels && !held; k++)
            held = pf__sorted_has(srv->models[k]->share.v, srv->models[k]->share.len, cpu);
        if (!held)
            pf__ivec_push(out, cpu);
    }
}

/* A new model's share: N cores per worker with --ncores-per-instance, else every free one. */
static int take_share(pf_server *srv, pf__model *m, size_t workers, char **why)
{
    if (srv->opts.pinning != PF_PINNING_PINNED)
        return 0;
    pf__ivec free_ = {0};
    free_cpus(srv, &free_);
    int per = srv->opts.launch.plan.ncores_per_instance;
    size_t want = per > 0 ? workers * (size_t)per : free_.len;
    int rc = 0;
    if (free_.len < want || free_.len < workers)
        rc = pf__fail(why, -ENOSPC,
                      "%zu workers need %zu free cores and %zu are free: unregister a model "
                      "first, or start the server with --ncores-per-instance to leave cores "
                      "free",
                      workers, want > workers ? want : workers, free_.len);
    for (size_t i = 0; rc == 0 && i < want; i++)
        rc = pf__ivec_push(&m->share, free_.v[i]);
    pf__ivec_free(&free_);
    return rc;
}

/* The unbound workers' environment follows the number of workers (threads: their share). */
static int replan_unbound(pf_server *srv, size_t total, char **why)
{
    if (srv->opts.pinning == PF_PINNING_PINNED)
        return 0;
    pf_launch_spec *spec = NULL;
    int rc = pf__plan_all(srv, total, &spec, why);
    if (rc == 0) {
        pf_launch_spec_free(srv->spec);
        srv->spec = spec;
    }
    return rc;
}

static size_t total_workers(const pf_server *srv, const pf__model *except, size_t extra)
{
    size_t n = extra;
    for (size_t i = 0; i < srv->nmodels; i++)
        if (srv->models[i] != except && !srv->models[i]->removing)
            n += srv->models[i]->target;
    return n;
}

static void register_model(pf_server *srv, pf__http_request *req)
{
    const char *url = pf__http_query(req, "url");
    if (!url || !*url) {
        pf__reply_ts_error(req, 400, "Parameter url is required: a model file in the store");
        return;
    }
    const pf_serve_config *cfg = srv->opts.config;
    long dflt = cfg->default_workers_per_model > 0 ? cfg->default_workers_per_model : 1;
    long workers, batch, delay, timeout; /* batch, timeout 0 and delay -1: not given */
    bool sync;
    if (!query_int(req, "initial_workers", 0, 4096, dflt, &workers) ||
        !query_int(req, "batch_size", 1, 1 << 20, 0, &batch) ||
        !query_int(req, "max_batch_delay", 0, 3600000, -1, &delay) ||
        !query_int(req, "response_timeout", 1, 1 << 24, 0, &timeout) ||
        !query_bool(req, "synchronous", false, &sync))
        return;
    const char *name = pf__http_query(req, "model_name");
    char *why = NULL;
    pf_serve_model_spec *spec = NULL;
    int rc = pf_serve_model_spec_parse(url, &spec, &why);
    if (rc == 0 && spec->all)
        rc = pf__fail(&why, -EINVAL, "url=all: register one model at a time");
    if (rc == 0 && spec->named)
        rc = pf__fail(&why, -EINVAL, "url='%s': a file of the model store", url);
    if (rc == 0 && name)
        rc = pf_serve_model_name_check(name, &why);
    pf__model *m = NULL;
    if (rc == 0)
        rc = pf__model_open(srv, spec->file, name, spec->name, &m, &why);
    pf_serve_model_spec_free(spec);
    if (rc == 0) {
        pf__model_settings(srv, m, 0);
        if (batch > 0)
            m->batch_size = (int)batch;
        if (delay >= 0)
            m->max_batch_delay = (int)delay;
        if (timeout > 0)
            m->response_timeout = (int)timeout;
        free(m->url);
        m->url = strdup(url);
        rc = take_share(srv, m, (size_t)workers, &why);
    }
    if (rc == 0)
        rc = replan_unbound(srv, total_workers(srv, NULL, (size_t)workers), &why);
    if (rc == 0)
        rc = pf__model_add(srv, m, &why);
    if (rc == 0) {
        rc = pf__model_plan(srv, m, (size_t)workers, &why);
        if (rc < 0)
            srv->nmodels--; /* it was the last */
    }
    if (rc < 0) {
        pf__model_free(m);
        int status = rc == -ENOENT ? 404 : rc == -EEXIST ? 409 : rc == -ENOSPC ? 507 : 400;
        pf__reply_ts_error(req, rc == -ENOMEM ? 500 : status, "%s", why ? why : "out of memory");
        free(why);
        return;
    }
    pf__server_log(srv, PF_LOG_INFO, "model %s registered (%s, %ld workers)", m->name, url,
                   workers);
    if (sync && workers > 0) {
        wait_for(srv, req, m, (size_t)workers, true);
        pf__server_schedule(srv);
        return;
    }
    pf__reply_status(req, sync ? 200 : 202,
                     "Model \"%s\" Version: %s registered with %ld initial "
                     "workers%s",
                     m->name, m->version, workers, sync || !workers ? "" : " (starting)");
}

static void scale_model(pf_server *srv, pf__http_request *req, pf__model *m)
{
    long n;
    bool sync;
    if (!query_int(req, "min_worker", 0, 4096, 1, &n) ||
        !query_bool(req, "synchronous", false, &sync))
        return;
    /* max_worker is TorchServe's autoscaling bound: the server keeps min_worker workers. */
    char *why = NULL;
    int rc = replan_unbound(srv, total_workers(srv, m, (size_t)n), &why);
    if (rc == 0)
        rc = pf__model_plan(srv, m, (size_t)n, &why);
    if (rc < 0) {
        pf__reply_ts_error(req, rc == -ENOMEM ? 500 : 400, "%s", why ? why : "out of memory");
        free(why);
        return;
    }
    pf__server_log(srv, PF_LOG_INFO, "model %s scaled to %ld workers", m->name, n);
    if (sync && n > 0) {
        wait_for(srv, req, m, (size_t)n, false);
        return;
    }
    pf__reply_status(req, sync ? 200 : 202,
                     sync ? "Workers scaled to %ld for model: %s"
                          : "Processing worker updates: %ld for model %s",
                     n, m->name);
}

static void unregister_model(pf_server *srv, pf__http_request *req, pf__model *m)
{
    pf__job *job;
    while ((job = m->head)) {
        m->head = job->next;
        m->queued--;
        pf__job_fail(srv, job, 503, "model %s was unregistered", m->name);
    }
    m->tail = NULL;
    char *name = strdup(m->name);
    pf__model_plan(srv, m, 0, NULL);
    pf__model_remove(srv, m);
    pf__ivec_free(&m->share); /* its cores are free for the next model */
    pf__server_log(srv, PF_LOG_INFO, "model %s unregistered", name ? name : "?");
    pf__reply_status(req, 200, "Model \"%s\" unregistered", name ? name : "?");
    free(name);
}

static bool authorized(pf_server *srv, pf__http_request *req)
{
    if (!srv->token) {
        if (pf__http_client_loopback(req))
            return true;
        pf__reply_ts_error(req, 403,
                           "the management API answers loopback clients only, unless "
                           "the server has a token (--management-token-file)");
        return false;
    }
    const char *auth = pf__http_header(req, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        /* Compared in full whatever differs first. */
        const char *given = auth + 7;
        size_t a = strlen(given), b = strlen(srv->token);
        unsigned diff = (unsigned)(a ^ b);
        for (size_t i = 0; i < a && i < b; i++)
            diff |= (unsigned)(given[i] ^ srv->token[i]);
        if (diff == 0)
            return true;
    }
    pf__reply_ts_error(req, 401, "a management request needs 'Authorization: Bearer <token>'");
    return false;
}

void pf__management_handle(void *ctx, pf__http_request *req)
{
    pf_server *srv = ctx;
    if (!authorized(srv, req))
        return;
    const char *path = pf__http_path(req);
    const char *method = pf__http_method(req);
    if (srv->draining) {
        pf__reply_ts_error(req, 503, "the server is shutting down");
        return;
    }
    if (strcmp(path, "/models") == 0 || strcmp(path, "/models/") == 0) {
        if (strcmp(method, "GET") == 0)
            list_models(srv, req);
        else if (strcmp(method, "POST") == 0)
            register_model(srv, req);
        else
            pf__reply_ts_error(req, 405, "/models: GET or POST");
        return;
    }
    if (strncmp(path, "/models/", 8) != 0) {
        pf__reply_ts_error(req, 404, "no such endpoint: %s %s", method, path);
        return;
    }
    char name[256], version[256];
    name[0] = version[0] = '\0';
    const char *rest = path + 8;
    size_t n = strcspn(rest, "/");
    const char *after = rest + n;
    size_t vn = *after == '/' ? strcspn(after + 1, "/") : 0;
    if (n == 0 || n >= sizeof name || vn >= sizeof version ||
        (*after == '/' && after[1 + vn] != '\0')) {
        pf__reply_ts_error(req, 404, "no such endpoint: %s %s", method, path);
        return;
    }
    memcpy(name, rest, n);
    name[n] = '\0';
    if (vn) {
        memcpy(version, after + 1, vn);
        version[vn] = '\0';
    }
    const char *ver = vn ? version : NULL;
    if (strcmp(method, "GET") == 0) {
        describe(srv, req, name, ver);
        return;
    }
    if (strcmp(method, "PUT") != 0 && strcmp(method, "DELETE") != 0) {
        pf__reply_ts_error(req, 405, "/models/%s: GET, PUT or DELETE", name);
        return;
    }
    pf__model *m = pf__server_find(srv, name, ver && strcmp(ver, "all") ? ver : NULL);
    if (!m) {
        pf__reply_ts_error(req, 404, "Model not found: %s", name);
        return;
    }
    if (strcmp(method, "PUT") == 0)
        scale_model(srv, req, m);
    else
        unregister_model(srv, req, m);
}
