/*
 * inference.c - the inference address: TorchServe's /ping and
 * /predictions, the Open Inference Protocol (KServe v2) and KServe v1
 * (docs/serve.md, "Inference API").  A request for a model becomes a job;
 * everything else is answered here.
 */
#include "server/server.h"

#include "base/json.h"
#include "serve/multipart.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A path cut at '/': at most 8 segments, each a copy. */
typedef struct segments {
    char *v[8];
    size_t n;
    bool too_many;
} segments;

static void split_path(const char *path, segments *s)
{
    memset(s, 0, sizeof *s);
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, "/");
        if (s->n == 8) {
            s->too_many = true;
            break;
        }
        s->v[s->n++] = strndup(p, len);
        p += len;
    }
}

static void segments_free(segments *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
}

static bool is(const segments *s, size_t i, const char *word)
{
    return i < s->n && s->v[i] && strcmp(s->v[i], word) == 0;
}

static bool method_is(const pf__http_request *req, const char *m)
{
    return strcmp(pf__http_method(req), m) == 0;
}

static bool add_header(void *ctx, const char *name, const char *value)
{
    pf__json *w = ctx;
    char lower[256];
    size_t n = strlen(name);
    if (n >= sizeof lower)
        return true;
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    /* Only text the JSON writer can carry: headers are ASCII by the RFC. */
    if (!pf__utf8_valid(value, strlen(value)))
        return true;
    pf__json_member_string(w, lower, value);
    return true;
}

static char *headers_json(const pf__http_request *req)
{
    pf__json w;
    pf__json_init(&w);
    pf__json_begin_object(&w);
    pf__http_headers(req, add_header, &w);
    pf__json_end_object(&w);
    char *out = NULL;
    if (pf__json_finish(&w, &out) < 0)
        return NULL;
    out[strcspn(out, "\n")] = '\0';
    return out;
}

/* The parts of a multipart body: file parts, or every part when none is a file. */
static int multipart_parts(pf__http_request *req, pf__job *job, const char *type, char **why)
{
    const char *boundary;
    size_t blen;
    int rc = pf__multipart_boundary(type, strlen(type), &boundary, &blen, why);
    if (rc < 0)
        return rc;
    size_t len;
    const uint8_t *body = pf__http_body(req, &len);
    pf__multipart_part *parts = NULL;
    size_t nparts = 0;
    rc = pf__multipart_parse(boundary, blen, body, len, &parts, &nparts, why);
    if (rc < 0)
        return rc;
    size_t files = 0;
    for (size_t i = 0; i < nparts; i++)
        files += parts[i].filename != NULL;
    job->parts = calloc(nparts, sizeof *job->parts);
    if (!job->parts) {
        free(parts);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nparts; i++) {
        const pf__multipart_part *p = &parts[i];
        if (files && !p->filename)
            continue;
        pf__job_part *jp = &job->parts[job->nparts++];
        jp->offset = (size_t)(p->body - body);
        jp->length = p->body_len;
        jp->content_type =
            p->content_type ? strndup(p->content_type, p->content_type_len) : strdup("text/plain");
        jp->name = strndup(p->name, p->name_len);
    }
    free(parts);
    return 0;
}

/* A job for this request, its body in one part or, multipart, one part per file. */
static int make_job(pf__http_request *req, pf__api api, pf__job **out, char **why)
{
    pf__job *job = calloc(1, sizeof *job);
    if (!job)
        return -ENOMEM;
    job->http = req;
    job->api = api;
    job->headers_json = headers_json(req);
    size_t len;
    pf__http_body(req, &len);
    const char *type = pf__http_header(req, "Content-Type");
    int rc = 0;
    if (api == PF__API_PREDICTIONS && type && strncasecmp(type, "multipart/form-data", 19) == 0) {
        rc = multipart_parts(req, job, type, why);
    } else if (len == 0) {
        rc = pf__fail(why, -EINVAL, "the request has no body: send the input in it");
    } else {
        job->parts = calloc(1, sizeof *job->parts);
        if (job->parts) {
            job->nparts = 1;
            job->parts[0].length = len;
            job->parts[0].content_type = type ? strdup(type) : NULL;
        } else {
            rc = -ENOMEM;
        }
    }
    if (rc < 0) {
        pf__job_free(job);
        return rc;
    }
    *out = job;
    return 0;
}

/* Find the model and queue the request for it. */
static void infer(pf_server *srv, pf__http_request *req, pf__api api, const char *name,
                  const char *version)
{
    pf__model *m = pf__server_find(srv, name, version);
    if (!m) {
        char *msg = version && pf__server_find(srv, name, NULL)
                        ? pf__strdupf("Model version not found: %s/%s", name, version)
                        : pf__strdupf("Model not found: %s", name);
        pf__reply_api_error(req, api, 404, msg ? msg : "Model not found");
        free(msg);
        return;
    }
    if (m->target == 0 && pf__model_ready_workers(m) == 0) {
        char *msg = pf__strdupf("model %s has no worker: scale it up first "
                                "(PUT /models/%s?min_worker=1 on the management address)",
                                m->name, m->name);
        pf__reply_api_error(req, api, 503, msg ? msg : "no worker");
        free(msg);
        return;
    }
    pf__job *job = NULL;
    char *why = NULL;
    int rc = make_job(req, api, &job, &why);
    if (rc < 0) {
        pf__reply_api_error(req, api, rc == -ENOMEM ? 500 : 400, why ? why : "out of memory");
        free(why);
        return;
    }
    rc = pf__server_submit(srv, m, job, &why);
    if (rc < 0) {
        pf__reply_api_error(req, api, 503, why ? why : "cannot queue the request");
        free(why);
        pf__job_free(job);
    }
}

static bool all_ready(pf_server *srv)
{
    for (size_t i = 0; i < srv->nmodels; i++) {
        const pf__model *m = srv->models[i];
        if (!m->removing && m->target > 0 && pf__model_ready_workers(m) == 0)
            return false;
    }
    return true;
}

static void reply_members(pf__http_request *req, int status, const char *key, const char *value,
                          const char *key2, int boolean)
{
    pf__json w;
    pf__json_init(&w);
    pf__json_begin_object(&w);
    if (key)
        pf__json_member_string(&w, key, value);
    if (key2) {
        pf__json_key(&w, key2);
        pf__json_bool(&w, boolean);
    }
    pf__json_end_object(&w);
    char *out = NULL;
    pf__json_finish(&w, &out);
    pf__reply_json(req, status, out);
}

static void v2_metadata(pf__http_request *req, const pf__model *m)
{
    pf__json w;
    pf__json_init(&w);
    pf__json_begin_object(&w);
    pf__json_member_string(&w, "name", m->name);
    pf__json_key(&w, "versions");
    pf__json_begin_array(&w);
    pf__json_string(&w, m->version);
    pf__json_end_array(&w);
    pf__json_member_string(&w, "platform", m->platform ? m->platform : "");
    pf__json_key(&w, "inputs");
    pf__json_begin_array(&w);
    pf__json_end_array(&w);
    pf__json_key(&w, "outputs");
    pf__json_begin_array(&w);
    pf__json_end_array(&w);
    pf__json_end_object(&w);
    char *out = NULL;
    pf__json_finish(&w, &out);
    pf__reply_json(req, 200, out);
}

/* /v2/...: s->v[0] is "v2". */
static void route_v2(pf_server *srv, pf__http_request *req, const segments *s)
{
    bool get = method_is(req, "GET"), post = method_is(req, "POST");
    if (s->n == 1 && get) {
        pf__json w;
        pf__json_init(&w);
        pf__json_begin_object(&w);
        pf__json_member_string(&w, "name", "pinfer");
        pf__json_member_string(&w, "version", PINFER_VERSION);
        pf__json_key(&w, "extensions");
        pf__json_begin_array(&w);
        pf__json_string(&w, "binary_tensor_data");
        pf__json_end_array(&w);
        pf__json_end_object(&w);
        char *out = NULL;
        pf__json_finish(&w, &out);
        pf__reply_json(req, 200, out);
        return;
    }
    if (s->n == 3 && is(s, 1, "health") && get && (is(s, 2, "live") || is(s, 2, "ready"))) {
        bool live = is(s, 2, "live");
        bool ok = live || (all_ready(srv) && !srv->draining);
        reply_members(req, ok ? 200 : 503, NULL, NULL, live ? "live" : "ready", ok);
        return;
    }
    if (s->n >= 3 && is(s, 1, "models")) {
        const char *name = s->v[2];
        const char *version = NULL;
        size_t i = 3;
        if (is(s, 3, "versions") && s->n >= 5) {
            version = s->v[4];
            i = 5;
        }
        if (i == s->n && get) {
            pf__model *m = pf__server_find(srv, name, version);
            if (m)
                v2_metadata(req, m);
            else
                pf__reply_error(req, 404, "Model not found: %s", name);
            return;
        }
        if (i + 1 == s->n && is(s, i, "ready") && get) {
            pf__model *m = pf__server_find(srv, name, version);
            if (!m) {
                pf__reply_error(req, 404, "Model not found: %s", name);
                return;
            }
            bool ok = pf__model_ready_workers(m) > 0;
            reply_members(req, ok ? 200 : 503, "name", m->name, "ready", ok);
            return;
        }
        if (i + 1 == s->n && is(s, i, "infer")) {
            if (post)
                infer(srv, req, PF__API_V2, name, version);
            else
                pf__reply_error(req, 405, "%s: use POST", pf__http_path(req));
            return;
        }
    }
    pf__reply_error(req, 404, "no such endpoint: %s %s", pf__http_method(req), pf__http_path(req));
}

/* /v1/models[/NAME[:predict]]. */
static void route_v1(pf_server *srv, pf__http_request *req, const segments *s)
{
    if (s->n == 2 && is(s, 1, "models") && method_is(req, "GET")) {
        pf__json w;
        pf__json_init(&w);
        pf__json_begin_object(&w);
        pf__json_key(&w, "models");
        pf__json_begin_array(&w);
        for (size_t i = 0; i < srv->nmodels; i++)
            if (!srv->models[i]->removing)
                pf__json_string(&w, srv->models[i]->name);
        pf__json_end_array(&w);
        pf__json_end_object(&w);
        char *out = NULL;
        pf__json_finish(&w, &out);
        pf__reply_json(req, 200, out);
        return;
    }
    if (s->n == 3 && is(s, 1, "models")) {
        char *name = s->v[2];
        char *colon = strrchr(name, ':');
        if (colon && strcmp(colon, ":predict") == 0) {
            *colon = '\0';
            if (method_is(req, "POST"))
                infer(srv, req, PF__API_V1, name, NULL);
            else
                pf__reply_error(req, 405, "%s: use POST", pf__http_path(req));
            return;
        }
        if (!colon && method_is(req, "GET")) {
            pf__model *m = pf__server_find(srv, name, NULL);
            if (!m)
                pf__reply_error(req, 404, "Model not found: %s", name);
            else
                reply_members(req, 200, "name", m->name, "ready", pf__model_ready_workers(m) > 0);
            return;
        }
    }
    pf__reply_error(req, 404, "no such endpoint: %s %s", pf__http_method(req), pf__http_path(req));
}

void pf__inference_handle(void *ctx, pf__http_request *req)
{
    pf_server *srv = ctx;
    segments s;
    split_path(pf__http_path(req), &s);
    if (srv->draining) {
        pf__reply_ts_error(req, 503, "the server is shutting down");
    } else if (s.too_many) {
        pf__reply_ts_error(req, 404, "no such endpoint: %s", pf__http_path(req));
    } else if (s.n == 1 && is(&s, 0, "ping")) {
        bool ok = all_ready(srv);
        reply_members(req, ok ? 200 : 500, "status", ok ? "Healthy" : "Unhealthy", NULL, 0);
    } else if ((s.n == 2 || s.n == 3) && is(&s, 0, "predictions")) {
        if (method_is(req, "POST") || method_is(req, "PUT"))
            infer(srv, req, PF__API_PREDICTIONS, s.v[1], s.n == 3 ? s.v[2] : NULL);
        else
            pf__reply_ts_error(req, 405, "%s: use POST", pf__http_path(req));
    } else if (s.n >= 1 && is(&s, 0, "v2")) {
        route_v2(srv, req, &s);
    } else if (s.n >= 1 && is(&s, 0, "v1")) {
        route_v1(srv, req, &s);
    } else {
        pf__reply_ts_error(req, 404, "no such endpoint: %s %s", pf__http_method(req),
                           pf__http_path(req));
    }
    segments_free(&s);
}
