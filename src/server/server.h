/*
 * server.h - the inside of `pinfer serve`'s front end (docs/serve.md): one
 * event loop in one thread over the HTTP listeners, the workers' sockets
 * and their pidfds.  server.c runs the loop, the queues and the batching;
 * worker.c starts, feeds, re-pins and restarts the workers; store.c finds
 * model files and reads archives' manifests; inference.c, management.c and
 * metrics.c answer the three addresses.
 */
#ifndef PF_SERVE_SERVER_H
#define PF_SERVE_SERVER_H

#include "base/util.h"
#include "serve/frame.h"
#include "server/http.h"
#include "serve/serve.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct pf__model pf__model;
typedef struct pf__worker pf__worker;

typedef enum pf__api { PF__API_PREDICTIONS, PF__API_V2, PF__API_V1 } pf__api;

/* One request of a job as the worker gets it: a part of the HTTP body. */
typedef struct pf__job_part {
    size_t offset, length;
    char *content_type; /* NULL: none */
    char *name;         /* a multipart field name, or NULL */
    /* The answer. */
    int status;
    char *error;
    char *body_type;
    uint8_t *body;
    size_t body_len;
    char *headers_json; /* the worker's extra headers, a JSON object text, or NULL */
} pf__job_part;

/* One inference request, from its arrival to its answer. */
typedef struct pf__job {
    struct pf__job *next; /* in its model's queue */
    uint64_t id;
    pf__http_request *http; /* NULL once answered */
    pf__model *model;
    pf__api api;
    char *headers_json; /* the request's headers, a JSON object text */
    pf__job_part *parts;
    size_t nparts, nanswered;
    uint64_t arrived_us, deadline_us, dispatched_us;
    uint64_t handler_us; /* the worker's time on the batch that held it */
    int tries;           /* batches it was sent in */
    pf__worker *worker;  /* the worker holding it, or NULL */
} pf__job;

typedef enum pf__worker_state {
    PF__W_STARTING, /* spawned, no READY yet */
    PF__W_IDLE,     /* ready for a batch */
    PF__W_BUSY,     /* a batch is out */
    PF__W_STOPPING, /* STOP sent (or to be sent after its batch); not counted */
    PF__W_DOWN      /* exited; restarted at restart_us unless retired */
} pf__worker_state;

struct pf__worker {
    pf__model *model;
    int id; /* 9000 + n as TorchServe numbers them, per model */
    pf__worker_state state;
    bool retired; /* never restarted: scaled down, unregistered, shutting down */
    pid_t pid;
    int pidfd;
    int sock;
    char *unpack_dir;
    pf__frame_decoder dec;
    uint8_t *out; /* bytes not yet written */
    size_t out_len, out_off;
    bool want_write;
    pf__job **batch;
    size_t nbatch;
    uint64_t batch_id;
    uint64_t batch_deadline_us;
    bool timed_out; /* killed for its batch's timeout */
    int slot;       /* its instance in the server's launch spec */
    pf__ivec cpus;  /* where it runs now (pinned) */
    pf__ivec nodes;
    uint64_t pin_seq; /* a PIN awaiting PINNED; 0: none */
    int threads;
    uint64_t started_us;
    uint64_t start_wall_ms;
    unsigned restarts;
    int backoff_ms;
    uint64_t restart_us;
    char *load_error; /* READY's error */
    uint64_t batches, requests;
    long proc_rss_kb;     /* VmRSS at the last pf__worker_read_proc(); -1: unknown */
    long proc_migrations; /* se.nr_migrations of all its threads, then */
};

/* A management request waiting for workers (synchronous register and scale). */
typedef struct pf__waiter {
    struct pf__waiter *next;
    pf__http_request *http;
    pf__model *model;
    size_t target; /* ready workers awaited */
    bool registering;
} pf__waiter;

struct pf__model {
    char *name;
    char *version;
    char *file;    /* in the store, as given */
    char *path;    /* absolute */
    char *url;     /* what describe calls modelUrl */
    bool startup;  /* loaded at start */
    bool removing; /* unregistered: finishing its queue */
    int batch_size;
    int max_batch_delay;  /* ms */
    int response_timeout; /* s */
    int queue_size;
    int max_workers;
    size_t target;        /* workers wanted */
    pf__ivec share;       /* pinned: the CPUs its workers are planned on */
    pf_launch_spec *spec; /* pinned: the plan of its workers */
    pf__worker **workers;
    size_t nworkers;
    int next_worker_id;
    pf__job *head, *tail;
    size_t queued;
    char *handler, *platform; /* from the first READY */
    char *load_error;         /* the last READY error */
    bool ever_ready;
    /* Metrics. */
    uint64_t requests_total, inference_us_total, queue_us_total;
    uint64_t batch_hist[8]; /* batches of 1, 2, 3-4, 5-8, 9-16, 17-32, 33-64, more */
    uint64_t batch_count, batch_requests;
    uint64_t answered[6]; /* by status class: 1xx..5xx, index 1..5 */
};

/* The server. */
struct pf_server {
    pf_server_options opts;      /* copied; strings owned below */
    pf_serve_config *own_config; /* the defaults, when no config was given */
    pf_topology *own_topo;
    char *store; /* the model store, absolute and resolved; NULL: none */
    int epfd;
    pf__http_listener *http[3];
    pf__model **models;
    size_t nmodels;
    const pf_topology *topo; /* from the spec */
    pf_launch_spec *spec;    /* not pinned: the environment of every worker */
    pf__ivec usable;         /* the CPUs workers may be planned on */
    char *python;
    char *workdir; /* private: workers' unpack folders */
    size_t total_cores;
    uint64_t next_job, next_batch, next_pin;
    size_t live_jobs;
    bool draining;
    uint64_t drain_deadline_us, kill_deadline_us;
    bool killed;
    pf__waiter *waiters;
    pf__ivec allowed;    /* the CPUs the process could use at start */
    bool frontend_moved; /* the front end's affinity was narrowed: workers get `allowed` */
    char *token;         /* the management API's bearer token, or NULL */
    uint64_t started_us;
};

/* Epoll tags: what an event is about. */
typedef enum pf__tag_kind { PF__TAG_HTTP, PF__TAG_SOCK, PF__TAG_PIDFD } pf__tag_kind;

uint64_t pf__now_us(void);
void pf__server_log(pf_server *srv, pf_log_level level, const char *fmt, ...) PF__PRINTF(3, 4);

/* server.c */
pf__model *pf__server_find(pf_server *srv, const char *name, const char *version);
int pf__server_submit(pf_server *srv, pf__model *m, pf__job *job, char **why);
void pf__server_schedule(pf_server *srv);
void pf__job_finish_part(pf_server *srv, pf__job *job, size_t part);
void pf__job_fail(pf_server *srv, pf__job *job, int status, const char *fmt, ...) PF__PRINTF(4, 5);
void pf__job_free(pf__job *job);
size_t pf__model_ready_workers(const pf__model *m);
void pf__server_check_waiters(pf_server *srv);
int pf__model_add(pf_server *srv, pf__model *m, char **why);
void pf__model_remove(pf_server *srv, pf__model *m);
void pf__model_free(pf__model *m);

/* start.c: a model of the store (name: NAME=, else the manifest's, else fallback). */
int pf__model_open(pf_server *srv, const char *file, const char *name, const char *fallback,
                   pf__model **out, char **why);
/* Its settings from the `models` property and the options; the workers it asks for (0: none). */
int pf__model_settings(pf_server *srv, pf__model *m, int workers);

/* worker.c */
/*
 * The launch spec of `total` workers planned together (pinned), or the one
 * unbound instance whose environment is every worker's (threads, none).
 */
int pf__plan_all(pf_server *srv, size_t total, pf_launch_spec **out, char **why);
/*
 * Give m `target` workers: pinned, planned on its share of cores (-EINVAL
 * with *why when they do not fit; nothing changes then); workers added,
 * retired, and moved in place (PIN) as the new plan says.
 */
int pf__model_plan(pf_server *srv, pf__model *m, size_t target, char **why);
int pf__worker_send_batch(pf_server *srv, pf__worker *w, pf__job **jobs, size_t n);
void pf__worker_event(pf_server *srv, pf__worker *w, uint32_t events);
void pf__worker_exited(pf_server *srv, pf__worker *w);
void pf__worker_stop(pf_server *srv, pf__worker *w);
void pf__worker_kill(pf__worker *w);
void pf__worker_due(pf_server *srv, pf__worker *w, uint64_t now);
void pf__worker_free(pf_server *srv, pf__worker *w);
void pf__model_sweep(pf_server *srv, pf__model *m);
/* One reading of the worker's /proc: proc_rss_kb and proc_migrations (-1: unknown). */
void pf__worker_read_proc(pf__worker *w);

/* Remove a folder and what it holds, links not followed.  NULL: no-op. */
void pf__remove_tree(const char *path);

/* store.c */
int pf__store_resolve(const char *store, const char *file, char **path, char **why);
int pf__store_manifest(const char *path, char **name, char **version, char **why);
int pf__store_list(const char *store, char ***files, size_t *count, char **why);

/* inference.c, management.c, metrics.c: the handlers of the three listeners. */
void pf__inference_handle(void *srv, pf__http_request *req);
void pf__management_handle(void *srv, pf__http_request *req);
void pf__metrics_handle(void *srv, pf__http_request *req);

/* Answers in JSON. */
void pf__reply_json(pf__http_request *req, int status, char *json);
/* TorchServe's error object {"code", "type", "message"}. */
void pf__reply_ts_error(pf__http_request *req, int status, const char *fmt, ...) PF__PRINTF(3, 4);
/* {"error": message}. */
void pf__reply_error(pf__http_request *req, int status, const char *fmt, ...) PF__PRINTF(3, 4);
/* An error as the API writes it: TorchServe's object for /predictions, else {"error"}. */
void pf__reply_api_error(pf__http_request *req, pf__api api, int status, const char *msg);
/* {"status": message}: the management API's answers. */
void pf__reply_status(pf__http_request *req, int status, const char *fmt, ...) PF__PRINTF(3, 4);

#endif /* PF_SERVE_SERVER_H */
