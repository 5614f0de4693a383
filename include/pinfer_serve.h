/*
 * pinfer_serve.h - libpinfer-serve: `pinfer serve`'s front end as a library
 * (docs/serve.md), on top of libpinfer (pinfer.h: the configuration it
 * reads, the launch machinery its workers are started with).  A library of
 * its own so that a program that only plans and launches links no HTTP
 * library: this one links libmicrohttpd, jansson and libzip.
 *
 *     pkg-config --cflags --libs pinfer-serve
 */
#ifndef PINFER_SERVE_H
#define PINFER_SERVE_H

#include "pinfer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Serving: the server                                                       */

/*
 * `pinfer serve`'s front end as a library (docs/serve.md): HTTP listeners
 * for TorchServe's inference, management and metrics APIs and KServe's v1
 * and v2 protocols, per-model queues with dynamic batching, and Python
 * workers planned, bound and supervised with the launcher's machinery.  Like
 * the supervisor it runs in the caller's thread without signal handlers:
 * poll pf_server_fd() for reading with pf_server_timeout(), then call
 * pf_server_step().
 */
typedef struct pf_server pf_server;

typedef enum pf_serve_pinning {
    PF_PINNING_PINNED = 0, /* each worker on its own cores and memory nodes */
    PF_PINNING_THREADS,    /* nothing bound; each worker its share of the cores as threads */
    PF_PINNING_NONE        /* nothing bound; each worker a thread per physical core */
} pf_serve_pinning;

typedef struct pf_server_options {
    const pf_serve_config *config; /* addresses, store, models, limits; NULL: defaults */
    pf_launch_request launch;      /* the workers' plan and environment (program: the server's) */
    pf_serve_pinning pinning;
    int workers;               /* per model loaded at start; 0: the config's, else planned */
    int batch_size;            /* 0: 1 (a model's `models` entry wins) */
    int max_batch_delay;       /* ms; -1: 100 */
    int response_timeout;      /* s; 0: the config's default_response_timeout */
    int job_queue_size;        /* 0: the config's */
    const char *frontend_cpus; /* a CPU list for the front end; NULL: chosen (docs) */
    const char *token;         /* the management API's bearer token; NULL: none */
    const char *log_dir;       /* each worker's output in a file there; NULL: inherited */
    int grace_ms;              /* to finish work in flight at shutdown; 0: 10000 */
    pf_log_fn log;             /* NULL: pf_log_stderr */
    void *log_ctx;
} pf_server_options;

void pf_server_options_init(pf_server_options *opts);

/*
 * Listen, find the models to load at start, plan and start their workers.
 * Errors (nothing left running): -EINVAL with *why for a bad request (a
 * model file missing or outside the store, more workers than cores when
 * pinned, a bad CPU list), a listener that cannot bind, -ENOMEM.
 */
int pf_server_create(const pf_server_options *opts, pf_server **out, char **why);
/* The port a listener bound (the one chosen for port 0). */
int pf_server_port(const pf_server *srv, pf_serve_listener which);
int pf_server_fd(const pf_server *srv);
int pf_server_timeout(const pf_server *srv);
void pf_server_step(pf_server *srv);
/*
 * 1 once every model loaded at start has a worker ready, 0 while they load,
 * -EINVAL with *why when one of them cannot be loaded.
 */
int pf_server_startup(const pf_server *srv, char **why);
/*
 * Stop: stop accepting, finish what is queued and in flight within the
 * grace period, stop the workers (SIGKILL after another grace period).
 * now: kill the workers at once.
 */
void pf_server_shutdown(pf_server *srv, bool now);
bool pf_server_finished(const pf_server *srv);
/* Kill every worker left, close, remove the server's temporary files.  NULL: no-op. */
void pf_server_free(pf_server *srv);

#ifdef __cplusplus
}
#endif

#endif /* PINFER_SERVE_H */
