/*
 * server.c - the front end's event loop, the models' queues and dynamic
 * batching, start-up and shutdown (docs/serve.md).
 *
 * Everything runs in the caller's thread: one epoll fd holds the three
 * listeners' epoll fds, every worker's socket and pidfd.  A request that
 * needs a worker becomes a job in its model's queue; a free worker takes up
 * to batch_size jobs, at most max_batch_delay ms after the first arrived;
 * the whole batch travels as one frame.  Every job has a deadline, and
 * pf_server_timeout() is the earliest thing due.
 */
#include "server/server.h"

#include "base/json.h"

#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_GRACE_MS 10000
#define DEFAULT_BATCH_DELAY_MS 100

uint64_t pf__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void pf__server_log(pf_server *srv, pf_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = pf__vstrdupf(fmt, ap);
    va_end(ap);
    pf_log_fn log = srv->opts.log ? srv->opts.log : pf_log_stderr;
    log(srv->opts.log_ctx, level, text ? text : fmt);
    free(text);
}

void pf_server_options_init(pf_server_options *o)
{
    memset(o, 0, sizeof *o);
    pf_launch_request_init(&o->launch);
    o->max_batch_delay = -1;
}

/* ---- answers ------------------------------------------------------------ */

void pf__reply_json(pf__http_request *req, int status, char *json)
{
    if (!json) {
        pf__http_respond(req, 500, NULL, NULL, 0, NULL, 0);
        return;
    }
    pf__http_respond(req, status, "application/json", NULL, 0, json, strlen(json));
}

static const char *ts_error_type(int status)
{
    switch (status) {
    case 400: return "BadRequestException";
    case 401: return "UnauthorizedException";
    case 403: return "ForbiddenException";
    case 404: return "ModelNotFoundException";
    case 405: return "MethodNotAllowedException";
    case 409: return "ConflictStatusException";
    case 413: return "RequestTooLargeException";
    case 503: return "ServiceUnavailableException";
    case 504: return "RequestTimeoutException";
    case 507: return "InsufficientStorageException";
    default: return status >= 500 ? "InternalServerException" : "BadRequestException";
    }
}

/*
 * Answer a JSON object of one string member, key: the formatted message;
 * with TorchServe's "code" and "type" before it when ts_error.
 */
static void reply_message(pf__http_request *req, int status, bool ts_error, const char *key,
                          const char *fmt, va_list ap) PF__PRINTF(5, 0);
static void reply_message(pf__http_request *req, int status, bool ts_error, const char *key,
                          const char *fmt, va_list ap)
{
    char *msg = pf__vstrdupf(fmt, ap);
    pf__json w;
    pf__json_init(&w);
    pf__json_begin_object(&w);
    if (ts_error) {
        pf__json_member_int(&w, "code", status);
        pf__json_member_string(&w, "type", ts_error_type(status));
    }
    pf__json_member_string(&w, key, msg ? msg : "out of memory");
    pf__json_end_object(&w);
    char *out = NULL;
    pf__json_finish(&w, &out);
    free(msg);
    pf__reply_json(req, status, out);
}

void pf__reply_ts_error(pf__http_request *req, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_message(req, status, true, "message", fmt, ap);
    va_end(ap);
}

void pf__reply_error(pf__http_request *req, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_message(req, status, false, "error", fmt, ap);
    va_end(ap);
}

void pf__reply_status(pf__http_request *req, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_message(req, status, false, "status", fmt, ap);
    va_end(ap);
}

/* ---- jobs --------------------------------------------------------------- */

void pf__job_free(pf__job *job)
{
    if (!job)
        return;
    for (size_t i = 0; i < job->nparts; i++) {
        pf__job_part *p = &job->parts[i];
        free(p->content_type);
        free(p->name);
        free(p->error);
        free(p->body_type);
        free(p->body);
        free(p->headers_json);
    }
    free(job->parts);
    free(job->headers_json);
    free(job);
}

static void count_answer(pf__model *m, int status)
{
    int cls = status / 100;
    if (m && cls >= 1 && cls <= 5)
        m->answered[cls]++;
}

/* An error as the job's API writes it. */
void pf__reply_api_error(pf__http_request *req, pf__api api, int status, const char *msg)
{
    if (api == PF__API_PREDICTIONS)
        pf__reply_ts_error(req, status, "%s", msg);
    else
        pf__reply_error(req, status, "%s", msg);
}

static void job_done(pf_server *srv, pf__job *job)
{
    srv->live_jobs--;
    pf__job_free(job);
}

void pf__job_fail(pf_server *srv, pf__job *job, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = pf__vstrdupf(fmt, ap);
    va_end(ap);
    if (job->http) {
        pf__reply_api_error(job->http, job->api, status, msg ? msg : "error");
        count_answer(job->model, status);
        job->http = NULL;
    }
    free(msg);
    job_done(srv, job);
}

/*
 * The headers with the worker's time on the batch and the front end's from
 * arrival to answer (us_text: 48 bytes for their texts), and the worker's own.
 */
static int answer_headers(const pf__job_part *p, uint64_t handler_us, uint64_t server_us,
                          pf__http_header_field *out, size_t max, char *us_text, json_t **owned)
{
    size_t n = 0;
    snprintf(us_text, 24, "%llu", (unsigned long long)handler_us);
    snprintf(us_text + 24, 24, "%llu", (unsigned long long)server_us);
    out[n++] = (pf__http_header_field){"Pinfer-Handler-Us", us_text};
    out[n++] = (pf__http_header_field){"Pinfer-Server-Us", us_text + 24};
    *owned = NULL;
    if (p && p->headers_json) {
        json_t *obj = json_loads(p->headers_json, 0, NULL);
        const char *key;
        json_t *value;
        json_object_foreach(obj, key, value)
        {
            if (n < max && json_is_string(value))
                out[n++] = (pf__http_header_field){key, json_string_value(value)};
        }
        *owned = obj;
    }
    return (int)n;
}

/* Every part of a multipart job in one JSON list (docs/serve.md, "Multipart"). */
static char *parts_as_list(const pf__job *job)
{
    pf__buf b = {0};
    pf__buf_puts(&b, "[");
    for (size_t i = 0; i < job->nparts; i++) {
        const pf__job_part *p = &job->parts[i];
        if (i)
            pf__buf_puts(&b, ", ");
        bool json = p->body_type && strncmp(p->body_type, "application/json", 16) == 0;
        if (json) {
            size_t n = p->body_len;
            while (n > 0 && (p->body[n - 1] == '\n' || p->body[n - 1] == ' '))
                n--;
            pf__buf_put(&b, (const char *)p->body, n);
        } else {
            pf__json w;
            pf__json_init(&w);
            char *text = malloc(p->body_len + 1);
            if (text) {
                memcpy(text, p->body, p->body_len);
                text[p->body_len] = '\0';
            }
            bool utf8 = text && pf__utf8_valid(text, p->body_len) && strlen(text) == p->body_len;
            pf__json_string(&w, utf8 ? text : "<binary output>");
            free(text);
            char *s = NULL;
            if (pf__json_finish(&w, &s) == 0) {
                s[strcspn(s, "\n")] = '\0';
                pf__buf_puts(&b, s);
            }
            free(s);
        }
    }
    pf__buf_puts(&b, "]\n");
    char *out = NULL;
    return pf__buf_take(&b, &out) == 0 ? out : NULL;
}

/* A part is answered; when every part is, the job is. */
void pf__job_finish_part(pf_server *srv, pf__job *job, size_t part)
{
    (void)part;
    if (++job->nanswered < job->nparts)
        return;
    pf__model *m = job->model;
    uint64_t now = pf__now_us();
    m->requests_total++;
    m->inference_us_total += now - job->arrived_us;
    if (job->dispatched_us)
        m->queue_us_total += job->dispatched_us - job->arrived_us;
    if (!job->http) {
        job_done(srv, job);
        return;
    }
    for (size_t i = 0; i < job->nparts; i++) {
        const pf__job_part *p = &job->parts[i];
        if (p->status >= 400) {
            pf__reply_api_error(job->http, job->api, p->status, p->error ? p->error : "error");
            count_answer(m, p->status);
            job->http = NULL;
            job_done(srv, job);
            return;
        }
    }
    size_t limit = srv->opts.config->max_response_size;
    pf__http_header_field headers[32];
    char us_text[48];
    uint64_t server_us = pf__now_us() - pf__http_started_us(job->http);
    json_t *owned = NULL;
    if (job->nparts == 1) {
        pf__job_part *p = &job->parts[0];
        if (p->body_len > limit) {
            pf__reply_api_error(job->http, job->api, 500,
                                "the response is larger than max_response_size");
            count_answer(m, 500);
        } else {
            int n = answer_headers(p, job->handler_us, server_us, headers, 32, us_text, &owned);
            pf__http_respond(job->http, p->status ? p->status : 200, p->body_type, headers,
                             (size_t)n, p->body, p->body_len);
            p->body = NULL;
            count_answer(m, p->status ? p->status : 200);
        }
    } else {
        char *list = parts_as_list(job);
        int n = answer_headers(NULL, job->handler_us, server_us, headers, 32, us_text, &owned);
        if (list && strlen(list) > limit) {
            free(list);
            pf__reply_api_error(job->http, job->api, 500,
                                "the response is larger than max_response_size");
            count_answer(m, 500);
        } else if (list) {
            pf__http_respond(job->http, 200, "application/json", headers, (size_t)n, list,
                             strlen(list));
            count_answer(m, 200);
        } else {
            pf__reply_api_error(job->http, job->api, 500, "out of memory");
        }
    }
    json_decref(owned);
    job->http = NULL;
    job_done(srv, job);
}

/* ---- queues and batching ------------------------------------------------ */

size_t pf__model_ready_workers(const pf__model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nworkers; i++)
        if (m->workers[i]->state == PF__W_IDLE || m->workers[i]->state == PF__W_BUSY)
            n++;
    return n;
}

pf__model *pf__server_find(pf_server *srv, const char *name, const char *version)
{
    for (size_t i = 0; i < srv->nmodels; i++) {
        pf__model *m = srv->models[i];
        if (!m->removing && strcmp(m->name, name) == 0 &&
            (!version || strcmp(m->version, version) == 0))
            return m;
    }
    return NULL;
}

int pf__server_submit(pf_server *srv, pf__model *m, pf__job *job, char **why)
{
    if (srv->draining)
        return pf__fail(why, -EAGAIN, "the server is shutting down");
    if (m->queued >= (size_t)m->queue_size)
        return pf__fail(why, -EBUSY,
                        "model %s: %zu requests are queued already (job_queue_size): try later",
                        m->name, m->queued);
    job->id = ++srv->next_job;
    job->model = m;
    job->arrived_us = pf__now_us();
    job->deadline_us = job->arrived_us + (uint64_t)m->response_timeout * 1000000u;
    job->next = NULL;
    if (m->tail)
        m->tail->next = job;
    else
        m->head = job;
    m->tail = job;
    m->queued++;
    srv->live_jobs++;
    pf__http_defer(job->http);
    pf__server_schedule(srv);
    return 0;
}

static pf__job *queue_pop(pf__model *m)
{
    pf__job *job = m->head;
    if (job) {
        m->head = job->next;
        if (!m->head)
            m->tail = NULL;
        job->next = NULL;
        m->queued--;
    }
    return job;
}

static pf__worker *idle_worker(const pf__model *m)
{
    for (size_t i = 0; i < m->nworkers; i++)
        if (m->workers[i]->state == PF__W_IDLE && !m->workers[i]->retired)
            return m->workers[i];
    return NULL;
}

static void record_batch(pf__model *m, size_t n)
{
    int bucket = 0;
    while (bucket < 7 && n > (1u << bucket))
        bucket++;
    m->batch_hist[bucket]++;
    m->batch_count++;
    m->batch_requests += n;
}

static void schedule_model(pf_server *srv, pf__model *m, uint64_t now)
{
    pf__worker *w;
    while (m->head && (w = idle_worker(m))) {
        uint64_t due = m->head->arrived_us + (uint64_t)m->max_batch_delay * 1000u;
        if (m->queued < (size_t)m->batch_size && now < due && !srv->draining && !m->removing)
            return; /* wait for more, until due */
        size_t n = m->queued < (size_t)m->batch_size ? m->queued : (size_t)m->batch_size;
        pf__job **jobs = calloc(n, sizeof *jobs);
        if (!jobs)
            return;
        for (size_t i = 0; i < n; i++)
            jobs[i] = queue_pop(m);
        record_batch(m, n);
        if (pf__worker_send_batch(srv, w, jobs, n) < 0) {
            for (size_t i = 0; i < n; i++)
                pf__job_fail(srv, jobs[i], 500, "cannot send the request to a worker");
            free(jobs);
        }
    }
}

/* Jobs past their deadline in the queues. */
static void expire_queued(pf_server *srv, pf__model *m, uint64_t now)
{
    pf__job **link = &m->head;
    pf__job *prev = NULL;
    while (*link) {
        pf__job *job = *link;
        if (job->deadline_us <= now) {
            *link = job->next;
            if (m->tail == job)
                m->tail = prev;
            m->queued--;
            pf__job_fail(srv, job, 504,
                         "model %s: no worker answered within the response timeout of %d s",
                         m->name, m->response_timeout);
            continue;
        }
        prev = job;
        link = &job->next;
    }
}

void pf__server_schedule(pf_server *srv)
{
    uint64_t now = pf__now_us();
    for (size_t i = 0; i < srv->nmodels; i++)
        schedule_model(srv, srv->models[i], now);
}

/* ---- models --------------------------------------------------------------- */

void pf__model_free(pf__model *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->version);
    free(m->file);
    free(m->path);
    free(m->url);
    free(m->workers);
    free(m->handler);
    free(m->platform);
    free(m->load_error);
    pf__ivec_free(&m->share);
    pf_launch_spec_free(m->spec);
    free(m);
}

int pf__model_add(pf_server *srv, pf__model *m, char **why)
{
    pf__model **v = realloc(srv->models, (srv->nmodels + 1) * sizeof *v);
    if (!v)
        return pf__fail(why, -ENOMEM, "out of memory");
    srv->models = v;
    srv->models[srv->nmodels++] = m;
    return 0;
}

/* The model leaves the list once its workers are gone and nothing waits. */
static void reap_models(pf_server *srv)
{
    for (size_t i = 0; i < srv->nmodels;) {
        pf__model *m = srv->models[i];
        if (m->removing && m->nworkers == 0 && !m->head) {
            for (pf__waiter *wt = srv->waiters; wt; wt = wt->next)
                if (wt->model == m)
                    wt->model = NULL;
            memmove(&srv->models[i], &srv->models[i + 1],
                    (srv->nmodels - i - 1) * sizeof *srv->models);
            srv->nmodels--;
            pf__model_free(m);
            continue;
        }
        i++;
    }
}

void pf__model_remove(pf_server *srv, pf__model *m)
{
    m->removing = true;
    m->target = 0;
    /* What is queued is still served: the workers stop once it is. */
    pf__server_schedule(srv);
}

/* ---- management waiters ------------------------------------------------- */

void pf__server_check_waiters(pf_server *srv)
{
    pf__waiter **link = &srv->waiters;
    while (*link) {
        pf__waiter *wt = *link;
        pf__model *m = wt->model;
        bool done = false;
        if (!m) {
            pf__reply_ts_error(wt->http, 500,
                               "the model was unregistered while its workers "
                               "started");
            done = true;
        } else if (pf__model_ready_workers(m) >= wt->target) {
            if (wt->registering)
                pf__reply_status(wt->http, 200,
                                 "Model \"%s\" Version: %s registered with %zu initial workers",
                                 m->name, m->version, wt->target);
            else
                pf__reply_status(wt->http, 200, "Workers scaled to %zu for model: %s", wt->target,
                                 m->name);
            done = true;
        } else if (m->load_error && !m->ever_ready) {
            pf__reply_ts_error(wt->http, 500, "model %s cannot be loaded: %s", m->name,
                               m->load_error);
            if (wt->registering)
                pf__model_remove(srv, m);
            done = true;
        } else if (srv->draining) {
            pf__reply_ts_error(wt->http, 503, "the server is shutting down");
            done = true;
        }
        if (done) {
            *link = wt->next;
            free(wt);
        } else {
            link = &wt->next;
        }
    }
}

/* ---- the loop ----------------------------------------------------------- */

int pf_server_fd(const pf_server *srv)
{
    return srv->epfd;
}

static void consider(uint64_t *earliest, uint64_t t)
{
    if (t && t < *earliest)
        *earliest = t;
}

int pf_server_timeout(const pf_server *srv)
{
    uint64_t earliest = UINT64_MAX;
    for (size_t i = 0; i < srv->nmodels; i++) {
        const pf__model *m = srv->models[i];
        for (const pf__job *j = m->head; j; j = j->next)
            consider(&earliest, j->deadline_us);
        if (m->head && idle_worker(m))
            consider(&earliest, m->head->arrived_us + (uint64_t)m->max_batch_delay * 1000u);
        for (size_t k = 0; k < m->nworkers; k++) {
            const pf__worker *w = m->workers[k];
            if (w->state == PF__W_BUSY)
                consider(&earliest, w->batch_deadline_us);
            if (w->state == PF__W_DOWN && !w->retired)
                consider(&earliest, w->restart_us);
        }
    }
    if (srv->draining) {
        consider(&earliest, srv->drain_deadline_us);
        consider(&earliest, srv->kill_deadline_us);
    }
    int ms = -1;
    if (earliest != UINT64_MAX) {
        uint64_t now = pf__now_us();
        ms = earliest <= now ? 0 : (int)((earliest - now + 999) / 1000);
    }
    for (int i = 0; i < 3; i++) {
        if (!srv->http[i])
            continue;
        int t = pf__http_timeout(srv->http[i]);
        if (t >= 0 && (ms < 0 || t < ms))
            ms = t;
    }
    return ms;
}

/* Draining: once nothing is queued or in flight, the workers get STOP. */
static void drain(pf_server *srv, uint64_t now)
{
    bool idle = srv->live_jobs == 0;
    for (size_t i = 0; i < srv->nmodels; i++) {
        pf__model *m = srv->models[i];
        for (size_t k = 0; k < m->nworkers; k++) {
            pf__worker *w = m->workers[k];
            if (idle || now >= srv->drain_deadline_us) {
                if (!w->retired || w->state == PF__W_IDLE || w->state == PF__W_STARTING)
                    pf__worker_stop(srv, w);
            }
            if (now >= srv->kill_deadline_us)
                pf__worker_kill(w);
        }
    }
    if (now >= srv->drain_deadline_us) {
        for (size_t i = 0; i < srv->nmodels; i++) {
            pf__model *m = srv->models[i];
            pf__job *job;
            while ((job = queue_pop(m)))
                pf__job_fail(srv, job, 503, "the server stopped before this request ran");
        }
    }
}

void pf_server_step(pf_server *srv)
{
    struct epoll_event ev[64];
    int n = epoll_wait(srv->epfd, ev, 64, 0);
    for (int i = 0; i < n; i++) {
        uint64_t tag = ev[i].data.u64;
        pf__tag_kind kind = (pf__tag_kind)(tag & 3u);
        void *ptr = (void *)(uintptr_t)(tag & ~(uint64_t)3u);
        if (kind == PF__TAG_HTTP)
            pf__http_run(ptr);
        else if (kind == PF__TAG_SOCK)
            pf__worker_event(srv, ptr, ev[i].events);
        else
            pf__worker_exited(srv, ptr);
    }
    uint64_t now = pf__now_us();
    for (size_t i = 0; i < srv->nmodels; i++) {
        pf__model *m = srv->models[i];
        expire_queued(srv, m, now);
        for (size_t k = 0; k < m->nworkers; k++)
            pf__worker_due(srv, m->workers[k], now);
        pf__model_sweep(srv, m);
    }
    pf__server_schedule(srv);
    if (srv->draining)
        drain(srv, now);
    pf__server_check_waiters(srv);
    reap_models(srv);
    /* Answers made above are written now, not at the next wake-up. */
    for (int i = 0; i < 3; i++)
        if (srv->http[i] && (pf__http_resumed(srv->http[i]) || pf__http_timeout(srv->http[i]) == 0))
            pf__http_run(srv->http[i]);
}

int pf_server_startup(const pf_server *srv, char **why)
{
    for (size_t i = 0; i < srv->nmodels; i++) {
        const pf__model *m = srv->models[i];
        if (!m->startup || m->ever_ready)
            continue;
        if (m->load_error)
            return pf__fail(why, -EINVAL, "model %s (%s) cannot be loaded: %s", m->name, m->file,
                            m->load_error);
        if (m->target > 0)
            return 0;
    }
    return 1;
}

void pf_server_shutdown(pf_server *srv, bool now)
{
    uint64_t t = pf__now_us();
    if (!srv->draining) {
        srv->draining = true;
        int grace = srv->opts.grace_ms > 0 ? srv->opts.grace_ms : DEFAULT_GRACE_MS;
        srv->drain_deadline_us = t + (uint64_t)grace * 1000u;
        srv->kill_deadline_us = t + 2 * (uint64_t)grace * 1000u;
        for (int i = 0; i < 3; i++)
            if (srv->http[i])
                pf__http_quiesce(srv->http[i]);
        /* The workers are not retired here: they still run what is queued, and drain()
           stops them once nothing is (no worker is restarted while draining). */
    }
    if (now) {
        srv->drain_deadline_us = srv->kill_deadline_us = t;
        srv->killed = true;
    }
}

bool pf_server_finished(const pf_server *srv)
{
    if (!srv->draining)
        return false;
    for (size_t i = 0; i < srv->nmodels; i++)
        for (size_t k = 0; k < srv->models[i]->nworkers; k++)
            if (srv->models[i]->workers[k]->pid > 0)
                return false;
    if (srv->live_jobs > 0 && !srv->killed && pf__now_us() < srv->drain_deadline_us)
        return false;
    return true;
}

int pf_server_port(const pf_server *srv, pf_serve_listener which)
{
    return srv->http[which] ? pf__http_port(srv->http[which]) : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void pf__remove_tree(const char *path)
{
    if (path)
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void pf_server_free(pf_server *srv)
{
    if (!srv)
        return;
    for (size_t i = 0; i < srv->nmodels; i++) {
        pf__model *m = srv->models[i];
        for (size_t k = 0; k < m->nworkers; k++)
            pf__worker_free(srv, m->workers[k]);
        m->nworkers = 0;
        pf__job *job;
        while ((job = queue_pop(m)))
            pf__job_fail(srv, job, 503, "the server stopped");
        pf__model_free(m);
    }
    free(srv->models);
    while (srv->waiters) {
        pf__waiter *wt = srv->waiters;
        srv->waiters = wt->next;
        pf__reply_ts_error(wt->http, 503, "the server stopped");
        free(wt);
    }
    for (int i = 0; i < 3; i++)
        pf__http_free(srv->http[i]);
    if (srv->epfd >= 0)
        close(srv->epfd);
    pf_launch_spec_free(srv->spec);
    pf_topology_free(srv->own_topo);
    pf_serve_config_free(srv->own_config);
    pf__remove_tree(srv->workdir);
    free(srv->workdir);
    free(srv->store);
    free(srv->python);
    free(srv->token);
    pf__ivec_free(&srv->allowed);
    pf__ivec_free(&srv->usable);
    free(srv);
}
