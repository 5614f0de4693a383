/*
 * start.c - pf_server_create(): the listeners, the models loaded at start,
 * the first plan of their workers, and where the front end itself runs
 * (docs/serve.md, "Start-up").
 */
#include "server/server.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define DEFAULT_BATCH_DELAY_MS 100

/* The settings of the `models` property for this model, if any. */
static const pf_serve_model_config *model_config(const pf_serve_config *cfg, const char *name,
                                                 const char *version)
{
    const pf_serve_model_config *found = NULL;
    for (size_t i = 0; i < cfg->nmodels; i++) {
        const pf_serve_model_config *c = &cfg->models[i];
        if (strcmp(c->name, name) != 0)
            continue;
        if (version && strcmp(c->version, version) == 0)
            return c;
        if (!found || c->default_version)
            found = c;
    }
    return found;
}

int pf__model_settings(pf_server *srv, pf__model *m, int workers)
{
    const pf_serve_config *cfg = srv->opts.config;
    const pf_serve_model_config *c = model_config(cfg, m->name, m->version);
    const pf_server_options *o = &srv->opts;
    m->batch_size = c && c->batch_size > 0 ? c->batch_size : o->batch_size > 0 ? o->batch_size : 1;
    m->max_batch_delay = c                         ? c->max_batch_delay
                         : o->max_batch_delay >= 0 ? o->max_batch_delay
                                                   : DEFAULT_BATCH_DELAY_MS;
    m->response_timeout = c && c->response_timeout > 0 ? c->response_timeout
                          : o->response_timeout > 0    ? o->response_timeout
                                                       : cfg->default_response_timeout;
    m->queue_size = o->job_queue_size > 0 ? o->job_queue_size : cfg->job_queue_size;
    if (workers <= 0 && c && c->min_workers > 0)
        workers = c->min_workers;
    m->max_workers = c && c->max_workers > 0 ? c->max_workers : 0;
    return workers;
}

/* A model of the store: its file resolved, its name and version. */
int pf__model_open(pf_server *srv, const char *file, const char *name, const char *fallback,
                   pf__model **out, char **why)
{
    *out = NULL;
    char *path = NULL;
    int rc = pf__store_resolve(srv->store, file, &path, why);
    if (rc < 0)
        return rc;
    char *mname = NULL, *mversion = NULL;
    rc = pf__store_manifest(path, &mname, &mversion, why);
    if (rc < 0) {
        free(path);
        return rc;
    }
    pf__model *m = calloc(1, sizeof *m);
    if (m) {
        m->name = strdup(name ? name : mname ? mname : fallback);
        m->version = strdup(mversion ? mversion : "1.0");
        m->file = strdup(file);
        m->path = path;
        m->url = strdup(file);
        path = NULL;
    }
    free(path);
    free(mname);
    free(mversion);
    if (!m || !m->name || !m->version || !m->file || !m->url) {
        pf__model_free(m);
        return pf__fail(why, -ENOMEM, "out of memory");
    }
    if (pf_serve_model_name_check(m->name, why) < 0) {
        pf__model_free(m);
        return -EINVAL;
    }
    if (pf__server_find(srv, m->name, NULL)) {
        rc = pf__fail(why, -EEXIST, "model %s is already registered", m->name);
        pf__model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* The models of --models / load_models. */
static int open_startup_models(pf_server *srv, char **why)
{
    const pf_serve_config *cfg = srv->opts.config;
    for (size_t i = 0; i < cfg->nload_models; i++) {
        const pf_serve_model_spec *s = &cfg->load_models[i];
        char **files = NULL;
        size_t nfiles = 0;
        if (s->all) {
            if (!srv->store)
                return pf__fail(why, -EINVAL, "--models all: no model store is set");
            int rc = pf__store_list(srv->store, &files, &nfiles, why);
            if (rc < 0)
                return rc;
        }
        size_t n = s->all ? nfiles : 1;
        for (size_t k = 0; k < n; k++) {
            char *stem = NULL;
            if (s->all) {
                pf_serve_model_spec *one = NULL;
                if (pf_serve_model_spec_parse(files[k], &one, NULL) == 0)
                    stem = strdup(one->name);
                pf_serve_model_spec_free(one);
            }
            pf__model *m = NULL;
            int rc = pf__model_open(srv, s->all ? files[k] : s->file, s->named ? s->name : NULL,
                                    s->all ? (stem ? stem : files[k]) : s->name, &m, why);
            free(stem);
            if (rc == 0 && (rc = pf__model_add(srv, m, why)) < 0)
                pf__model_free(m);
            if (rc < 0) {
                pf_strv_free(files);
                return rc;
            }
            m->startup = true;
        }
        pf_strv_free(files);
    }
    return 0;
}

/* Where the front end runs: --frontend-cpus, else the CPUs no worker uses. */
static int place_frontend(pf_server *srv, char **why)
{
    const char *list = srv->opts.frontend_cpus;
    int *ids = NULL;
    size_t n = 0;
    char *text = NULL;
    if (list) {
        int rc = pf_cpulist_parse(list, &ids, &n, why);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++)
            if (!pf__sorted_has(srv->allowed.v, srv->allowed.len, ids[i])) {
                free(ids);
                return pf__fail(why, -EINVAL,
                                "--frontend-cpus %s: CPU %d is not one this "
                                "process may use",
                                list, ids[i]);
            }
    } else if (srv->opts.pinning == PF_PINNING_PINNED) {
        ids = calloc(srv->allowed.len ? srv->allowed.len : 1, sizeof *ids);
        if (!ids)
            return -ENOMEM;
        for (size_t i = 0; i < srv->allowed.len; i++) {
            int cpu = srv->allowed.v[i];
            bool used = false;
            for (size_t k = 0; k < srv->nmodels && !used; k++)
                used = pf__sorted_has(srv->models[k]->share.v, srv->models[k]->share.len, cpu);
            if (!used)
                ids[n++] = cpu;
        }
        if (n == 0) {
            free(ids);
            pf__server_log(srv, PF_LOG_INFO,
                           "front end: every CPU runs a worker, so it shares theirs "
                           "(--frontend-cpus chooses)");
            return 0;
        }
    } else {
        pf__server_log(srv, PF_LOG_INFO, "front end: not bound (--pinning %s)",
                       srv->opts.pinning == PF_PINNING_THREADS ? "threads" : "none");
        return 0;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < CPU_SETSIZE)
            CPU_SET(ids[i], &set);
    pf_cpulist_format(ids, n, &text);
    int rc = 0;
    if (sched_setaffinity(0, sizeof set, &set) < 0) {
        rc = pf__fail(why, -errno, "cannot bind the front end to CPUs %s: %s", text ? text : "?",
                      strerror(errno));
    } else {
        srv->frontend_moved = true;
        pf__server_log(srv, PF_LOG_INFO, "front end: CPUs %s%s", text ? text : "?",
                       list ? "" : " (no worker runs there)");
    }
    free(text);
    free(ids);
    return rc;
}

static int listen_all(pf_server *srv, char **why)
{
    const pf_serve_config *cfg = srv->opts.config;
    const pf_serve_address *addr[3] = {cfg->inference_address, cfg->management_address,
                                       cfg->metrics_address};
    pf__http_handler handlers[3] = {pf__inference_handle, pf__management_handle,
                                    pf__metrics_handle};
    for (int i = 0; i < 3; i++) {
        pf__http_options o = {
            .max_body = i == 0 ? cfg->max_request_size : 1u << 20,
            .max_conns = 1024,
            .idle_timeout = 120,
            .handler = handlers[i],
            .ctx = srv,
        };
        int rc = pf__http_listen(addr[i], &o, &srv->http[i], why);
        if (rc < 0)
            return rc;
        struct epoll_event ev = {.events = EPOLLIN,
                                 .data.u64 = (uint64_t)(uintptr_t)srv->http[i] | PF__TAG_HTTP};
        if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, pf__http_fd(srv->http[i]), &ev) < 0)
            return pf__fail(why, -errno, "epoll: %s", strerror(errno));
    }
    return 0;
}

/* The CPUs of one instance covering what the options allow: the cores workers share. */
static int count_cores(pf_server *srv, char **why)
{
    pf_launch_request req = srv->opts.launch;
    static char *const program[] = {"pinfer.serve.worker", NULL};
    req.program = program;
    req.module = true;
    req.topo = srv->topo;
    req.plan.ninstances = 1;
    req.plan.ncores_per_instance = 0;
    req.plan.rank = -1;
    req.plan.instance_idx = NULL;
    pf_launch_spec *spec = NULL;
    int rc = pf_launch_spec_create(&req, &spec, why);
    if (rc < 0)
        return rc;
    const pf_instance *all = &spec->plan->instances[0];
    srv->total_cores = all->ncpus;
    for (size_t i = 0; i < all->ncpus; i++)
        pf__ivec_push(&srv->usable, all->cpus[i]);
    rc = pf_launch_spec_resolve(spec, &srv->python, why);
    pf_launch_spec_free(spec);
    return rc;
}

/* Workers per model at start when nothing says: the cores shared among the models. */
static size_t default_workers(const pf_server *srv, size_t nmodels)
{
    size_t per = (size_t)(srv->opts.launch.plan.ncores_per_instance > 0
                              ? srv->opts.launch.plan.ncores_per_instance
                              : 1);
    size_t slots = srv->total_cores / per;
    size_t n = nmodels ? slots / nmodels : 0;
    return n > 0 ? n : 1;
}

/*
 * The first plan: every worker of the models loaded at start planned
 * together; each model's share is its workers' CPUs.
 */
static int plan_startup(pf_server *srv, char **why)
{
    size_t total = 0;
    for (size_t i = 0; i < srv->nmodels; i++)
        total += srv->models[i]->target;
    pf_launch_spec *spec = NULL;
    int rc = pf__plan_all(srv, total, &spec, why);
    if (rc < 0)
        return rc;
    bool pinned = srv->opts.pinning == PF_PINNING_PINNED;
    size_t next = 0;
    for (size_t i = 0; rc == 0 && i < srv->nmodels; i++) {
        pf__model *m = srv->models[i];
        for (size_t k = 0; pinned && k < m->target && next < spec->plan->ninstances; k++) {
            const pf_instance *in = &spec->plan->instances[next++];
            for (size_t c = 0; c < in->ncpus; c++)
                pf__ivec_push(&m->share, in->cpus[c]);
        }
        pf__ivec_sort_unique(&m->share);
        rc = pf__model_plan(srv, m, m->target, why);
    }
    if (pinned)
        pf_launch_spec_free(spec);
    else
        srv->spec = spec;
    return rc;
}

int pf_server_create(const pf_server_options *opts, pf_server **out, char **why)
{
    *out = NULL;
    pf_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -ENOMEM;
    srv->epfd = -1;
    srv->opts = *opts;
    srv->started_us = pf__now_us();
    int rc = 0;
    if (!opts->config) {
        rc = pf_serve_config_parse("", 0, NULL, NULL, &srv->own_config, why);
        srv->opts.config = srv->own_config;
    }
    const pf_serve_config *cfg = srv->opts.config;
    if (rc == 0 && opts->token && !(srv->token = strdup(opts->token)))
        rc = -ENOMEM;
    srv->opts.token = srv->token;
    if (rc == 0 && cfg->model_store) {
        srv->store = realpath(cfg->model_store, NULL);
        if (!srv->store)
            rc = pf__fail(why, -errno, "model store %s: %s", cfg->model_store, strerror(errno));
    }
    cpu_set_t set;
    if (rc == 0 && sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &set))
                pf__ivec_push(&srv->allowed, c);
    if (rc == 0 && !opts->launch.topo) {
        rc = pf_topology_load(opts->launch.topology, &srv->own_topo, why);
        srv->topo = srv->own_topo;
    } else if (rc == 0) {
        srv->topo = opts->launch.topo;
    }
    if (rc == 0)
        rc = count_cores(srv, why);
    if (rc == 0) {
        srv->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (srv->epfd < 0)
            rc = pf__fail(why, -errno, "epoll: %s", strerror(errno));
    }
    if (rc == 0)
        rc = listen_all(srv, why);
    if (rc == 0)
        rc = open_startup_models(srv, why);
    if (rc == 0) {
        size_t fallback = opts->workers > 0 ? (size_t)opts->workers
                          : cfg->default_workers_per_model > 0
                              ? (size_t)cfg->default_workers_per_model
                              : default_workers(srv, srv->nmodels);
        for (size_t i = 0; i < srv->nmodels; i++) {
            pf__model *m = srv->models[i];
            int w = pf__model_settings(srv, m, opts->workers);
            m->target = w > 0 ? (size_t)w : fallback;
        }
        const char *tmp = getenv("TMPDIR");
        srv->workdir = pf__strdupf("%s/pinfer-serve-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!srv->workdir || !mkdtemp(srv->workdir)) {
            rc = pf__fail(why, -errno, "cannot create a temporary folder: %s", strerror(errno));
            free(srv->workdir);
            srv->workdir = NULL;
        }
    }
    if (rc == 0)
        rc = plan_startup(srv, why);
    if (rc == 0)
        rc = place_frontend(srv, why);
    if (rc < 0) {
        pf_server_free(srv);
        return rc;
    }
    *out = srv;
    pf_server_step(srv); /* the workers start now */
    return 0;
}
