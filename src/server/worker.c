/*
 * worker.c - the workers of `pinfer serve`: planned together, started
 * bound with pf_spawn() (their socket as fd 3), fed one frame per batch,
 * re-pinned in place when the plan changes, restarted with back-off when
 * they die (docs/serve.md, "Workers"; docs/worker-protocol.md).
 */
#include "server/server.h"

#include "base/json.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RESTART_FIRST_MS 100
#define RESTART_MAX_MS 30000
#define RESTART_RESET_US 10000000u /* up this long: the next back-off starts again */
#define READ_CHUNK 65536

static uint64_t tag(void *ptr, pf__tag_kind kind)
{
    return (uint64_t)(uintptr_t)ptr | (uint64_t)kind;
}

/* ---- planning ----------------------------------------------------------- */

/*
 * The launch request of the workers: the server's options, its program,
 * its topology.  Pinned, `cpus` (a CPU list) is where they are planned.
 */
static void worker_request(const pf_server *srv, pf_launch_request *req, const char *cpus)
{
    static char *const program[] = {"pinfer.serve.worker", NULL};
    *req = srv->opts.launch;
    req->program = program;
    req->module = true;
    req->no_python = false;
    req->topo = srv->topo;
    req->require_live = true;
    req->python = srv->python;
    req->plan.rank = -1;
    req->plan.instance_idx = NULL;
    if (cpus) {
        req->plan.core_list = cpus;
        req->plan.node_id = -1;
        req->plan.socket_id = -1;
        req->plan.nodes_list = NULL;
        req->plan.ncores_per_instance = 0;
    }
}

int pf__plan_all(pf_server *srv, size_t total, pf_launch_spec **out, char **why)
{
    pf_launch_request req;
    worker_request(srv, &req, NULL);
    if (srv->opts.pinning == PF_PINNING_PINNED) {
        req.plan.ninstances = total > 0 ? (int)total : 1;
    } else {
        /* One instance, never bound: its environment is every worker's. */
        size_t share = srv->opts.pinning == PF_PINNING_THREADS && total > 0
                           ? srv->total_cores / total
                           : srv->total_cores;
        req.plan.ninstances = 1;
        req.plan.ncores_per_instance = share > 0 ? (int)share : 1;
        req.disable_numactl = req.disable_taskset = true;
    }
    char *reason = NULL;
    int rc = pf_launch_spec_create(&req, out, &reason);
    if (rc == -EINVAL) {
        rc = pf__fail(why, rc,
                      "%zu workers cannot be planned on the %zu cores this server "
                      "may use: %s",
                      total, srv->total_cores, reason ? reason : "no plan");
        free(reason);
        return rc;
    }
    if (rc < 0)
        *why = reason;
    else
        free(reason);
    return rc;
}

static bool same_cpus(const pf__ivec *v, const pf_instance *in)
{
    if (v->len != in->ncpus)
        return false;
    for (size_t i = 0; i < v->len; i++)
        if (v->v[i] != in->cpus[i])
            return false;
    return true;
}

static int set_ivec(pf__ivec *v, const int *ids, size_t n)
{
    v->len = 0;
    for (size_t i = 0; i < n; i++)
        if (pf__ivec_push(v, ids[i]) < 0)
            return -ENOMEM;
    return 0;
}

static int write_frame(pf_server *srv, pf__worker *w, uint32_t kind, const char *json,
                       const void *data, size_t data_len);

static void send_pin(pf_server *srv, pf__worker *w, const pf_launch_spec *spec,
                     const pf_instance *in)
{
    pf__json j;
    pf__json_init(&j);
    pf__json_begin_object(&j);
    w->pin_seq = ++srv->next_pin;
    pf__json_member_int(&j, "seq", (long long)w->pin_seq);
    pf__json_key(&j, "cpus");
    pf__json_int_array(&j, in->cpus, in->ncpus);
    pf__json_key(&j, "nodes");
    if (spec->bind_memory)
        pf__json_int_array(&j, in->nodes, in->nnodes);
    else
        pf__json_null(&j);
    pf__json_end_object(&j);
    char *text = NULL;
    if (pf__json_finish(&j, &text) == 0)
        write_frame(srv, w, PF__FRAME_PIN, text, NULL, 0);
    free(text);
}

static pf__worker *worker_new(pf__model *m)
{
    pf__worker *w = calloc(1, sizeof *w);
    pf__worker **v = realloc(m->workers, (m->nworkers + 1) * sizeof *v);
    if (!w || !v) {
        free(w);
        if (v)
            m->workers = v;
        return NULL;
    }
    m->workers = v;
    w->model = m;
    w->id = 9000 + m->next_worker_id++;
    w->state = PF__W_DOWN;
    w->pidfd = w->sock = -1;
    w->restart_us = pf__now_us();
    w->backoff_ms = RESTART_FIRST_MS;
    m->workers[m->nworkers++] = w;
    return w;
}

/* Workers that count: not retired. */
static size_t live_count(const pf__model *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nworkers; i++)
        n += !m->workers[i]->retired;
    return n;
}

/* Retire one worker of m: a down or starting one first, then an idle one, then a busy one. */
static void retire_one(pf_server *srv, pf__model *m)
{
    static const pf__worker_state order[] = {PF__W_DOWN, PF__W_STARTING, PF__W_IDLE, PF__W_BUSY};
    for (size_t o = 0; o < 4; o++)
        for (size_t i = m->nworkers; i-- > 0;) {
            pf__worker *w = m->workers[i];
            if (!w->retired && w->state == order[o]) {
                pf__worker_stop(srv, w);
                return;
            }
        }
}

/* Slots of m's spec: a worker already on a slot's CPUs keeps it, the others are moved. */
static int assign_slots(pf_server *srv, pf__model *m, const pf_launch_spec *spec)
{
    size_t nslots = spec->plan->ninstances;
    bool *taken = calloc(nslots ? nslots : 1, sizeof *taken);
    if (!taken)
        return -ENOMEM;
    for (size_t k = 0; k < m->nworkers; k++)
        m->workers[k]->slot = -1;
    for (size_t k = 0; k < m->nworkers; k++) {
        pf__worker *w = m->workers[k];
        if (w->retired || w->pid <= 0)
            continue;
        for (size_t s = 0; s < nslots; s++)
            if (!taken[s] && same_cpus(&w->cpus, &spec->plan->instances[s])) {
                taken[s] = true;
                w->slot = (int)s;
                break;
            }
    }
    size_t next = 0;
    for (size_t k = 0; k < m->nworkers; k++) {
        pf__worker *w = m->workers[k];
        if (w->retired || w->slot >= 0)
            continue;
        while (next < nslots && taken[next])
            next++;
        if (next >= nslots)
            break;
        taken[next] = true;
        w->slot = (int)next;
        if (w->pid > 0) /* running elsewhere: re-pinned in place */
            send_pin(srv, w, spec, &spec->plan->instances[next]);
    }
    free(taken);
    return 0;
}

int pf__model_plan(pf_server *srv, pf__model *m, size_t target, char **why)
{
    pf_launch_spec *spec = NULL;
    if (srv->opts.pinning == PF_PINNING_PINNED && target > 0) {
        if (m->share.len < target)
            return pf__fail(why, -EINVAL,
                            "model %s has %zu cores: it cannot run %zu workers without two "
                            "sharing a core",
                            m->name, m->share.len, target);
        char *cpus = NULL;
        if (pf_cpulist_format(m->share.v, m->share.len, &cpus) < 0)
            return -ENOMEM;
        pf_launch_request req;
        worker_request(srv, &req, cpus);
        req.plan.ninstances = (int)target;
        char *reason = NULL;
        int rc = pf_launch_spec_create(&req, &spec, &reason);
        free(cpus);
        if (rc < 0) {
            rc = pf__fail(why, rc, "model %s: %zu workers cannot be planned on its cores: %s",
                          m->name, target, reason ? reason : "out of memory");
            free(reason);
            return rc;
        }
        free(reason);
    }
    m->target = target;
    while (live_count(m) > target)
        retire_one(srv, m);
    while (live_count(m) < target)
        if (!worker_new(m))
            break;
    if (spec && assign_slots(srv, m, spec) < 0) {
        pf_launch_spec_free(spec);
        return -ENOMEM;
    }
    if (srv->opts.pinning == PF_PINNING_PINNED) {
        pf_launch_spec_free(m->spec);
        m->spec = spec;
    } else {
        for (size_t k = 0; k < m->nworkers; k++)
            m->workers[k]->slot = 0;
    }
    return 0;
}

/* The spec a worker of m is started from. */
static const pf_launch_spec *spec_of(const pf_server *srv, const pf__model *m)
{
    return srv->opts.pinning == PF_PINNING_PINNED ? m->spec : srv->spec;
}

/* ---- writing frames ------------------------------------------------------- */

static void watch(pf_server *srv, pf__worker *w)
{
    struct epoll_event ev = {.events = EPOLLIN | (w->want_write ? EPOLLOUT : 0u),
                             .data.u64 = tag(w, PF__TAG_SOCK)};
    epoll_ctl(srv->epfd, EPOLL_CTL_MOD, w->sock, &ev);
}

static void flush(pf_server *srv, pf__worker *w)
{
    while (w->sock >= 0 && w->out_off < w->out_len) {
        ssize_t n = send(w->sock, w->out + w->out_off, w->out_len - w->out_off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            pf__worker_kill(w); /* its end is gone: the pidfd tells the rest */
            w->out_len = w->out_off = 0;
            break;
        }
        w->out_off += (size_t)n;
    }
    if (w->out_off == w->out_len) {
        free(w->out);
        w->out = NULL;
        w->out_len = w->out_off = 0;
    }
    bool want = w->out_len > 0;
    if (want != w->want_write && w->sock >= 0) {
        w->want_write = want;
        watch(srv, w);
    }
}

static int write_frame(pf_server *srv, pf__worker *w, uint32_t kind, const char *json,
                       const void *data, size_t data_len)
{
    if (w->sock < 0)
        return -EPIPE;
    size_t json_len = strlen(json);
    uint8_t head[PF__FRAME_HEADER];
    char *why = NULL;
    int rc = pf__frame_header(head, kind, json_len, data_len, &why);
    free(why);
    if (rc < 0)
        return rc;
    size_t add = PF__FRAME_HEADER + json_len + data_len;
    uint8_t *buf = realloc(w->out, w->out_len + add);
    if (!buf)
        return -ENOMEM;
    memcpy(buf + w->out_len, head, PF__FRAME_HEADER);
    memcpy(buf + w->out_len + PF__FRAME_HEADER, json, json_len);
    if (data_len)
        memcpy(buf + w->out_len + PF__FRAME_HEADER + json_len, data, data_len);
    w->out = buf;
    w->out_len += add;
    flush(srv, w);
    return 0;
}

int pf__worker_send_batch(pf_server *srv, pf__worker *w, pf__job **jobs, size_t n)
{
    pf__json j;
    pf__json_init(&j);
    pf__json_begin_object(&j);
    uint64_t batch = ++srv->next_batch;
    pf__json_member_int(&j, "batch", (long long)batch);
    pf__json_key(&j, "requests");
    pf__json_begin_array(&j);
    size_t data_len = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < jobs[i]->nparts; p++)
            data_len += jobs[i]->parts[p].length;
    uint8_t *data = malloc(data_len ? data_len : 1);
    if (!data) {
        pf__json_finish(&j, NULL);
        return -ENOMEM;
    }
    static const char *const API[] = {"predictions", "v2", "v1"};
    size_t off = 0;
    uint64_t now = pf__now_us();
    uint64_t deadline = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        pf__job *job = jobs[i];
        size_t body_len;
        const uint8_t *body = pf__http_body(job->http, &body_len);
        for (size_t p = 0; p < job->nparts; p++) {
            pf__job_part *part = &job->parts[p];
            pf__json_begin_object(&j);
            char id[48];
            snprintf(id, sizeof id, "%llu.%zu", (unsigned long long)job->id, p);
            pf__json_member_string(&j, "id", id);
            pf__json_member_string(&j, "api", API[job->api]);
            if (part->content_type)
                pf__json_member_string(&j, "content_type", part->content_type);
            if (part->name)
                pf__json_member_string(&j, "name", part->name);
            pf__json_member_int(&j, "offset", (long long)off);
            pf__json_member_int(&j, "length", (long long)part->length);
            if (job->headers_json) {
                pf__json_key(&j, "headers");
                pf__json_raw(&j, job->headers_json);
            }
            pf__json_end_object(&j);
            memcpy(data + off, body + part->offset, part->length);
            off += part->length;
        }
        job->worker = w;
        job->dispatched_us = now;
        job->tries++;
        if (job->deadline_us < deadline)
            deadline = job->deadline_us;
    }
    pf__json_end_array(&j);
    pf__json_end_object(&j);
    char *text = NULL;
    int rc = pf__json_finish(&j, &text);
    if (rc == 0)
        rc = write_frame(srv, w, PF__FRAME_BATCH, text, data, data_len);
    free(text);
    free(data);
    if (rc < 0)
        return rc;
    free(w->batch);
    w->batch = jobs;
    w->nbatch = n;
    w->batch_id = batch;
    w->batch_deadline_us = deadline;
    w->state = PF__W_BUSY;
    w->batches++;
    w->requests += n;
    return 0;
}

/* ---- starting ------------------------------------------------------------- */

static char *worker_config(pf_server *srv, const pf__worker *w, const pf_instance *in)
{
    const pf__model *m = w->model;
    pf__json j;
    pf__json_init(&j);
    pf__json_begin_object(&j);
    pf__json_member_string(&j, "model", m->name);
    pf__json_member_string(&j, "version", m->version);
    pf__json_member_string(&j, "path", m->path);
    pf__json_member_int(&j, "batch_size", m->batch_size);
    pf__json_key(&j, "ipex_enable");
    pf__json_bool(&j, srv->opts.config->ipex_enable);
    pf__json_member_string(&j, "unpack_dir", w->unpack_dir);
    if (in) {
        pf__json_key(&j, "cpus");
        pf__json_int_array(&j, in->cpus, in->ncpus);
        pf__json_key(&j, "nodes");
        if (spec_of(srv, m)->bind_memory)
            pf__json_int_array(&j, in->nodes, in->nnodes);
        else
            pf__json_null(&j);
    }
    pf__json_end_object(&j);
    char *out = NULL;
    if (pf__json_finish(&j, &out) < 0)
        return NULL;
    out[strcspn(out, "\n")] = '\0';
    return out;
}

/* The instance's environment and PINFER_WORKER_CONFIG; unbound: no affinity variables. */
static char **worker_env(char *const *base, const char *config, bool unbound)
{
    size_t n = 0;
    while (base[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(base[i], "PINFER_WORKER_CONFIG=", 21) != 0 &&
            !(unbound && pf_env_is_openmp_affinity(base[i])))
            env[k++] = base[i];
    env[k] = pf__strdupf("PINFER_WORKER_CONFIG=%s", config);
    if (!env[k]) {
        free(env);
        return NULL;
    }
    return env;
}

static int open_log(pf_server *srv, const pf__worker *w)
{
    if (!srv->opts.log_dir)
        return PF_SPAWN_INHERIT;
    char *path = pf__strdupf("%s/%s_%d.log", srv->opts.log_dir, w->model->name, w->id);
    int fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    if (fd < 0)
        pf__server_log(srv, PF_LOG_WARNING, "cannot open %s: %s: the worker writes to stderr",
                       path ? path : "a log file", strerror(errno));
    free(path);
    return fd < 0 ? PF_SPAWN_INHERIT : fd;
}

static int spawn(pf_server *srv, pf__worker *w, char **why)
{
    pf__model *m = w->model;
    const pf_launch_spec *spec = spec_of(srv, m);
    if (!spec || w->slot < 0 || (size_t)w->slot >= spec->plan->ninstances)
        return pf__fail(why, -EINVAL, "no CPUs are planned for worker %d of %s", w->id, m->name);
    const pf_instance *in = &spec->plan->instances[w->slot];
    bool pinned = srv->opts.pinning == PF_PINNING_PINNED;
    free(w->unpack_dir);
    w->unpack_dir = pf__strdupf("%s/%s-%d-%u", srv->workdir, m->name, w->id, w->restarts);
    if (!w->unpack_dir)
        return -ENOMEM;
    if (mkdir(w->unpack_dir, 0700) < 0 && errno != EEXIST)
        return pf__fail(why, -errno, "cannot create %s: %s", w->unpack_dir, strerror(errno));
    int sv[2] = {-1, -1};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return pf__fail(why, -errno, "cannot create a socket pair: %s", strerror(errno));
    char *config = worker_config(srv, w, pinned ? in : NULL);
    char **env = config ? worker_env(spec->envp[w->slot], config, !pinned) : NULL;
    free(config);
    if (!env) {
        close(sv[0]);
        close(sv[1]);
        return -ENOMEM;
    }
    pf_spawn_options o;
    pf_spawn_options_init(&o);
    o.file = srv->python;
    o.argv = spec->argv;
    o.envp = env;
    if (pinned) {
        o.cpus = in->cpus;
        o.ncpus = in->ncpus;
        if (spec->bind_memory) {
            o.nodes = in->nodes;
            o.nnodes = in->nnodes;
        }
    } else if (srv->frontend_moved) {
        o.cpus = srv->allowed.v; /* not the front end's CPUs: the process's at start */
        o.ncpus = srv->allowed.len;
    }
    int log_fd = open_log(srv, w);
    o.stdio[0] = PF_SPAWN_DEVNULL;
    o.stdio[1] = o.stdio[2] = log_fd;
    o.fd3 = sv[1];
    o.new_group = true;
    o.death_signal = SIGKILL; /* no worker outlives the server */
    o.log = srv->opts.log;
    o.log_ctx = srv->opts.log_ctx;
    int pid = 0;
    int rc = pf_spawn(&o, &pid, why);
    if (log_fd >= 0)
        close(log_fd);
    close(sv[1]);
    /* env's last string is ours; the rest are the spec's. */
    size_t n = 0;
    while (env[n])
        n++;
    free(env[n - 1]);
    free(env);
    if (rc < 0) {
        close(sv[0]);
        return rc;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        int err = errno;
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(sv[0]);
        return pf__fail(why, -err, "pidfd_open: %s (Linux 5.3 or later is needed)", strerror(err));
    }
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    w->pid = pid;
    w->pidfd = pidfd;
    w->sock = sv[0];
    w->want_write = false;
    w->state = PF__W_STARTING;
    w->started_us = pf__now_us();
    w->start_wall_ms = (uint64_t)time(NULL) * 1000u;
    pf__frame_decoder_init(&w->dec, PF__FRAME_FROM_WORKER);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag(w, PF__TAG_SOCK)};
    epoll_ctl(srv->epfd, EPOLL_CTL_ADD, w->sock, &ev);
    struct epoll_event pev = {.events = EPOLLIN, .data.u64 = tag(w, PF__TAG_PIDFD)};
    epoll_ctl(srv->epfd, EPOLL_CTL_ADD, w->pidfd, &pev);
    if (pinned) {
        set_ivec(&w->cpus, in->cpus, in->ncpus);
        set_ivec(&w->nodes, in->nodes, in->nnodes);
    } else {
        w->cpus.len = w->nodes.len = 0;
    }
    return 0;
}

/* ---- reading frames ------------------------------------------------------- */

static char *dup_string(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? strdup(s) : NULL;
}

static void on_ready(pf_server *srv, pf__worker *w, json_t *obj)
{
    pf__model *m = w->model;
    const char *error = json_string_value(json_object_get(obj, "error"));
    if (error) {
        free(w->load_error);
        w->load_error = strdup(error);
        free(m->load_error);
        m->load_error = strdup(error);
        pf__server_log(srv, PF_LOG_ERROR, "model %s: worker %d cannot load the model: %s", m->name,
                       w->id, error);
        return;
    }
    if (!m->handler)
        m->handler = dup_string(obj, "handler");
    if (!m->platform)
        m->platform = dup_string(obj, "platform");
    w->threads = (int)json_integer_value(json_object_get(obj, "threads"));
    m->ever_ready = true;
    free(m->load_error);
    m->load_error = NULL;
    if (w->state == PF__W_STARTING)
        w->state = PF__W_IDLE;
    char *cpus = NULL;
    if (w->cpus.len)
        pf_cpulist_format(w->cpus.v, w->cpus.len, &cpus);
    pf__server_log(srv, PF_LOG_INFO, "model %s: worker %d ready (pid %d, %s%s, %d threads)",
                   m->name, w->id, (int)w->pid, cpus ? "CPUs " : "not bound", cpus ? cpus : "",
                   w->threads);
    free(cpus);
}

static void on_pinned(pf_server *srv, pf__worker *w, json_t *obj)
{
    const char *error = json_string_value(json_object_get(obj, "error"));
    if (error) {
        pf__server_log(srv, PF_LOG_WARNING, "model %s: worker %d cannot be re-pinned: %s",
                       w->model->name, w->id, error);
        return;
    }
    json_t *cpus = json_object_get(obj, "cpus");
    json_t *nodes = json_object_get(obj, "nodes");
    size_t i;
    json_t *v;
    w->cpus.len = 0;
    json_array_foreach(cpus, i, v) pf__ivec_push(&w->cpus, (int)json_integer_value(v));
    w->nodes.len = 0;
    json_array_foreach(nodes, i, v) pf__ivec_push(&w->nodes, (int)json_integer_value(v));
    w->threads = (int)json_integer_value(json_object_get(obj, "threads"));
    if ((uint64_t)json_integer_value(json_object_get(obj, "seq")) == w->pin_seq)
        w->pin_seq = 0;
}

/* "JOB.PART" of a request id. */
static bool parse_id(const char *id, uint64_t *job, size_t *part)
{
    unsigned long long j;
    size_t p;
    int used = 0;
    if (!id || sscanf(id, "%llu.%zu%n", &j, &p, &used) != 2 || id[used])
        return false;
    *job = j;
    *part = p;
    return true;
}

static pf__job *batch_job(pf__worker *w, uint64_t id)
{
    for (size_t i = 0; i < w->nbatch; i++)
        if (w->batch[i] && w->batch[i]->id == id)
            return w->batch[i];
    return NULL;
}

static void on_result(pf_server *srv, pf__worker *w, pf__frame *f)
{
    if (w->state != PF__W_BUSY ||
        (uint64_t)json_integer_value(json_object_get(f->obj, "batch")) != w->batch_id) {
        pf__server_log(srv, PF_LOG_WARNING,
                       "model %s: worker %d answered a batch it was not "
                       "given: ignored",
                       w->model->name, w->id);
        return;
    }
    uint64_t handler_us = (uint64_t)json_integer_value(json_object_get(f->obj, "elapsed_us"));
    json_t *responses = json_object_get(f->obj, "responses");
    size_t i;
    json_t *r;
    json_array_foreach(responses, i, r)
    {
        uint64_t id;
        size_t part;
        pf__job *job = NULL;
        if (!json_is_object(r) ||
            !parse_id(json_string_value(json_object_get(r, "id")), &id, &part) ||
            !(job = batch_job(w, id)) || part >= job->nparts || job->parts[part].status)
            continue;
        pf__job_part *p = &job->parts[part];
        int status = (int)json_integer_value(json_object_get(r, "status"));
        p->status = status >= 100 && status <= 599 ? status : 500;
        if (p->status >= 400) {
            const char *e = json_string_value(json_object_get(r, "error"));
            p->error = strdup(e ? e : "the worker failed");
        } else {
            json_int_t off = json_integer_value(json_object_get(r, "offset"));
            json_int_t len = json_integer_value(json_object_get(r, "length"));
            if (off < 0 || len < 0 || (size_t)off > f->data_len ||
                (size_t)len > f->data_len - (size_t)off) {
                p->status = 500;
                p->error = strdup("the worker's answer points outside its data");
            } else {
                p->body = malloc((size_t)len ? (size_t)len : 1);
                if (p->body)
                    memcpy(p->body, f->data + off, (size_t)len);
                p->body_len = (size_t)len;
                p->body_type = dup_string(r, "content_type");
                json_t *h = json_object_get(r, "headers");
                if (json_is_object(h))
                    p->headers_json = json_dumps(h, JSON_COMPACT);
            }
        }
        job->handler_us = handler_us;
    }
    /* Every job of the batch is answered: a part the worker left out is a 500. */
    pf__job **jobs = w->batch;
    size_t n = w->nbatch;
    w->batch = NULL;
    w->nbatch = 0;
    w->state = PF__W_IDLE;
    for (size_t k = 0; k < n; k++) {
        pf__job *job = jobs[k];
        job->worker = NULL;
        for (size_t p = 0; p < job->nparts; p++)
            if (!job->parts[p].status) {
                job->parts[p].status = 500;
                job->parts[p].error = strdup("the worker did not answer this request");
            }
        job->nanswered = 0;
        size_t nparts = job->nparts; /* the last call frees the job */
        for (size_t p = 0; p < nparts; p++)
            pf__job_finish_part(srv, job, p);
    }
    free(jobs);
    if (w->retired)
        pf__worker_stop(srv, w);
}

static void on_frame(pf_server *srv, pf__worker *w, pf__frame *f)
{
    if (f->kind == PF__FRAME_READY)
        on_ready(srv, w, f->obj);
    else if (f->kind == PF__FRAME_RESULT)
        on_result(srv, w, f);
    else if (f->kind == PF__FRAME_PINNED)
        on_pinned(srv, w, f->obj);
}

static void close_sock(pf_server *srv, pf__worker *w)
{
    if (w->sock < 0)
        return;
    epoll_ctl(srv->epfd, EPOLL_CTL_DEL, w->sock, NULL);
    close(w->sock);
    w->sock = -1;
    free(w->out);
    w->out = NULL;
    w->out_len = w->out_off = 0;
    pf__frame_decoder_free(&w->dec);
}

void pf__worker_event(pf_server *srv, pf__worker *w, uint32_t events)
{
    if (events & EPOLLOUT)
        flush(srv, w);
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return;
    uint8_t buf[READ_CHUNK];
    for (int rounds = 0; w->sock >= 0 && rounds < 64; rounds++) {
        ssize_t got = recv(w->sock, buf, sizeof buf, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (got <= 0) {
            close_sock(srv, w); /* the pidfd says when it has exited */
            return;
        }
        bool drained = (size_t)got < sizeof buf; /* epoll says when more arrives */
        size_t off = 0;
        while (off < (size_t)got) {
            size_t used = 0;
            char *why = NULL;
            int rc = pf__frame_decoder_feed(&w->dec, buf + off, (size_t)got - off, &used, &why);
            off += used;
            if (rc < 0) {
                pf__server_log(srv, PF_LOG_ERROR, "model %s: worker %d: %s: killed", w->model->name,
                               w->id, why ? why : "protocol error");
                free(why);
                pf__worker_kill(w);
                close_sock(srv, w);
                return;
            }
            pf__frame f;
            if (rc == 1 && pf__frame_decoder_take(&w->dec, &f) == 1) {
                on_frame(srv, w, &f);
                pf__frame_release(&f);
            }
        }
        if (drained)
            return;
    }
}

/* ---- exits, restarts, stops ----------------------------------------------- */

void pf__worker_kill(pf__worker *w)
{
    if (w->pid > 0)
        kill(-w->pid, SIGKILL);
}

void pf__worker_stop(pf_server *srv, pf__worker *w)
{
    w->retired = true;
    if (w->pid <= 0 || w->state == PF__W_STOPPING)
        return;
    if (w->state == PF__W_BUSY)
        return; /* STOP follows its answer (on_result) */
    write_frame(srv, w, PF__FRAME_STOP, "{}", NULL, 0);
    w->state = PF__W_STOPPING;
}

/* The jobs of a batch whose worker died: retried once, else answered. */
static void requeue(pf_server *srv, pf__worker *w, uint64_t now)
{
    pf__model *m = w->model;
    for (size_t k = w->nbatch; k-- > 0;) {
        pf__job *job = w->batch[k];
        job->worker = NULL;
        if (job->deadline_us <= now) {
            pf__job_fail(srv, job, 504,
                         "model %s: no answer within the response timeout of %d s (the worker "
                         "was stopped)",
                         m->name, m->response_timeout);
        } else if (job->tries >= 2 || (srv->draining && now >= srv->drain_deadline_us)) {
            pf__job_fail(srv, job, 503, "model %s: the worker died while running this request",
                         m->name);
        } else {
            /* At the head of the queue: it waited longest. */
            job->next = m->head;
            m->head = job;
            if (!m->tail)
                m->tail = job;
            m->queued++;
        }
    }
    free(w->batch);
    w->batch = NULL;
    w->nbatch = 0;
}

void pf__worker_exited(pf_server *srv, pf__worker *w)
{
    int status = 0;
    pid_t got = waitpid(w->pid, &status, WNOHANG);
    if (got == 0)
        return;
    uint64_t now = pf__now_us();
    kill(-w->pid, SIGKILL); /* what it left in its group */
    epoll_ctl(srv->epfd, EPOLL_CTL_DEL, w->pidfd, NULL);
    close(w->pidfd);
    w->pidfd = -1;
    close_sock(srv, w);
    pf__remove_tree(w->unpack_dir);
    pf__model *m = w->model;
    bool expected = w->state == PF__W_STOPPING;
    if (!expected && !w->load_error) {
        char how[48];
        if (WIFSIGNALED(status))
            snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(status));
        else
            snprintf(how, sizeof how, "exited %d", WEXITSTATUS(status));
        pf__server_log(srv, PF_LOG_WARNING, "model %s: worker %d (pid %d) %s%s", m->name, w->id,
                       (int)w->pid, how,
                       w->timed_out ? " after its batch passed the response timeout" : "");
    }
    w->pid = 0;
    requeue(srv, w, now);
    w->state = PF__W_DOWN;
    w->timed_out = false;
    w->pin_seq = 0;
    if ((w->load_error && !m->ever_ready) || srv->draining)
        w->retired = true; /* a model that never loaded is not retried; nor a worker now */
    free(w->load_error);
    w->load_error = NULL;
    if (!w->retired) {
        if (now - w->started_us >= RESTART_RESET_US)
            w->backoff_ms = RESTART_FIRST_MS;
        w->restart_us = now + (uint64_t)w->backoff_ms * 1000u;
        pf__server_log(srv, PF_LOG_INFO, "model %s: worker %d restarts in %d ms", m->name, w->id,
                       w->backoff_ms);
        w->backoff_ms = w->backoff_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : w->backoff_ms * 2;
        w->restarts++;
    }
    pf__server_schedule(srv);
}

void pf__worker_due(pf_server *srv, pf__worker *w, uint64_t now)
{
    if (w->state == PF__W_BUSY && w->batch_deadline_us <= now && !w->timed_out) {
        pf__server_log(srv, PF_LOG_WARNING,
                       "model %s: worker %d has not answered within the response timeout of "
                       "%d s: killed",
                       w->model->name, w->id, w->model->response_timeout);
        w->timed_out = true;
        pf__worker_kill(w);
    }
    if (w->state == PF__W_DOWN && !w->retired && now >= w->restart_us && !srv->draining) {
        char *why = NULL;
        if (spawn(srv, w, &why) < 0) {
            pf__server_log(srv, PF_LOG_ERROR, "model %s: cannot start worker %d: %s",
                           w->model->name, w->id, why ? why : "out of memory");
            free(why);
            w->restart_us = now + (uint64_t)w->backoff_ms * 1000u;
            w->backoff_ms = w->backoff_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : w->backoff_ms * 2;
        }
    }
}

/* Workers retired and gone leave their model. */
void pf__model_sweep(pf_server *srv, pf__model *m)
{
    (void)srv;
    for (size_t i = 0; i < m->nworkers;) {
        pf__worker *w = m->workers[i];
        if (w->retired && w->pid <= 0) {
            memmove(&m->workers[i], &m->workers[i + 1], (m->nworkers - i - 1) * sizeof *m->workers);
            m->nworkers--;
            pf__worker_free(srv, w);
            continue;
        }
        i++;
    }
}

void pf__worker_free(pf_server *srv, pf__worker *w)
{
    if (!w)
        return;
    if (w->pid > 0) {
        kill(-w->pid, SIGKILL);
        waitpid(w->pid, NULL, 0);
        pf__remove_tree(w->unpack_dir);
    }
    if (w->pidfd >= 0) {
        epoll_ctl(srv->epfd, EPOLL_CTL_DEL, w->pidfd, NULL);
        close(w->pidfd);
    }
    close_sock(srv, w);
    for (size_t k = 0; k < w->nbatch; k++)
        pf__job_fail(srv, w->batch[k], 503, "the server stopped");
    free(w->batch);
    free(w->unpack_dir);
    free(w->load_error);
    pf__ivec_free(&w->cpus);
    pf__ivec_free(&w->nodes);
    free(w);
}

/* ---- what /proc says of a worker ------------------------------------------- */

void pf__worker_read_proc(pf__worker *w)
{
    w->proc_rss_kb = w->proc_migrations = -1;
    pf_proc_process *p = NULL;
    if (w->pid <= 0 || pf_proc_read(NULL, (int)w->pid, &p, NULL) < 0)
        return;
    w->proc_rss_kb = (long)p->rss_kb;
    w->proc_migrations = 0;
    for (size_t i = 0; i < p->nthreads; i++)
        if (p->threads[i].nr_migrations > 0)
            w->proc_migrations += (long)p->threads[i].nr_migrations;
    pf_proc_process_free(p);
}
