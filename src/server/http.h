/*
 * http.h - the server's HTTP/1.1 listeners: libmicrohttpd behind one small
 * interface, so that nothing else in src/serve/ sees its types.
 *
 * A listener runs in the caller's thread: it owns an epoll fd
 * (pf__http_fd) that the caller polls with the rest of its event loop, and
 * pf__http_run() does what is due.  A request reaches the handler once,
 * with its whole body; the handler answers at once (pf__http_respond) or
 * later (pf__http_defer, then pf__http_respond from the same thread when the
 * answer is known).  A body over the limit is answered 413 from its headers
 * when it states its length, and never read.
 */
#ifndef PF_SERVE_HTTP_H
#define PF_SERVE_HTTP_H

#include "pinfer_serve.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pf__http_listener pf__http_listener;
typedef struct pf__http_request pf__http_request;

typedef void (*pf__http_handler)(void *ctx, pf__http_request *req);

typedef struct pf__http_options {
    size_t max_body;       /* larger bodies: 413 */
    unsigned max_conns;    /* connections at once (beyond: refused) */
    unsigned idle_timeout; /* seconds an idle keep-alive connection stays open */
    pf__http_handler handler;
    void *ctx;
} pf__http_options;

/*
 * Bind and listen on addr (host resolved, port 0: a free port).  -EINVAL
 * with *why for an https address (not served) or a host that does not
 * resolve, the socket's errno ("cannot listen on ...: Address already in
 * use"), -ENOMEM.
 */
int pf__http_listen(const pf_serve_address *addr, const pf__http_options *opts,
                    pf__http_listener **out, char **why);
/* The port bound (the one chosen when addr said 0). */
int pf__http_port(const pf__http_listener *l);
/* The fd to poll for reading. */
int pf__http_fd(const pf__http_listener *l);
/* Milliseconds until the listener has something to do by itself; -1: none. */
int pf__http_timeout(const pf__http_listener *l);
/* Accept, read, call the handler, write: whatever is due, without blocking. */
void pf__http_run(pf__http_listener *l);
/* Has a deferred request been answered since the last pf__http_run (its answer waits)? */
bool pf__http_resumed(const pf__http_listener *l);
/* Stop accepting new connections (those open are served to their end). */
void pf__http_quiesce(pf__http_listener *l);
/* Connections open now. */
unsigned pf__http_connections(const pf__http_listener *l);
/* Close every connection and free.  Deferred requests must have been answered.  NULL: no-op. */
void pf__http_free(pf__http_listener *l);

/* A request, valid from the handler's call until it is answered. */
const char *pf__http_method(const pf__http_request *req);
const char *pf__http_path(const pf__http_request *req); /* percent-decoded, without the query */
/* A query argument (decoded), or NULL. */
const char *pf__http_query(const pf__http_request *req, const char *name);
/* A header (name in any case), or NULL. */
const char *pf__http_header(const pf__http_request *req, const char *name);
/* Every header: fn(ctx, name, value) in arrival order; fn returns false to stop. */
void pf__http_headers(const pf__http_request *req,
                      bool (*fn)(void *ctx, const char *name, const char *value), void *ctx);
const void *pf__http_body(const pf__http_request *req, size_t *len);
/* Is the client on a loopback address (127.0.0.0/8, ::1, ::ffff:127.x)? */
bool pf__http_client_loopback(const pf__http_request *req);

/* One extra response header. */
typedef struct pf__http_header_field {
    const char *name;
    const char *value;
} pf__http_header_field;

/*
 * Answer: status, content type (NULL: none), extra headers, and the body,
 * taken over (malloc'd; freed by the listener, also on failure).  A
 * request is answered once.  0, or -ENOMEM (the connection is then closed).
 */
int pf__http_respond(pf__http_request *req, int status, const char *content_type,
                     const pf__http_header_field *headers, size_t nheaders, void *body, size_t len);
/* The same with a copy of a NUL-terminated text. */
int pf__http_respond_text(pf__http_request *req, int status, const char *content_type,
                          const char *text);

/* The answer comes later: the connection waits, reading nothing more. */
void pf__http_defer(pf__http_request *req);

/* When its headers were read: CLOCK_MONOTONIC in microseconds. */
uint64_t pf__http_started_us(const pf__http_request *req);

/* A value the caller keeps with the request (NULL at first). */
void pf__http_set_data(pf__http_request *req, void *data);
void *pf__http_data(const pf__http_request *req);

#endif /* PF_SERVE_HTTP_H */
