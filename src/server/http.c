/*
 * http.c - the HTTP listeners on libmicrohttpd (docs/serve.md, "The HTTP
 * library"): external epoll mode, so that the whole front end is one event
 * loop in one thread; suspended connections for answers that come from a
 * worker later.
 */
#include "server/http.h"

#include "base/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct pf__http_listener {
    struct MHD_Daemon *daemon;
    int port;
    pf__http_options opts;
    unsigned connections;
    bool resumed; /* a deferred answer is waiting to be written */
};

struct pf__http_request {
    pf__http_listener *listener;
    struct MHD_Connection *conn;
    char *method;
    char *path;
    uint8_t *body; /* NUL-terminated past its length */
    size_t body_len, body_cap;
    size_t declared;               /* Content-Length, when given */
    bool too_large;                /* answer 413 once the body is over */
    bool called;                   /* the handler has been called */
    bool deferred;                 /* suspended, waiting for pf__http_respond */
    struct MHD_Response *response; /* an answer made while deferred */
    int status;
    void *data;
    uint64_t started_us; /* its headers were read */
};

static struct MHD_Response *make_response(const char *content_type,
                                          const pf__http_header_field *headers, size_t nheaders,
                                          void *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, len ? body : (void *)"", MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return NULL;
    }
    if (!len)
        free(body);
    if (content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (size_t i = 0; i < nheaders; i++)
        MHD_add_response_header(r, headers[i].name, headers[i].value);
    return r;
}

int pf__http_respond(pf__http_request *req, int status, const char *content_type,
                     const pf__http_header_field *headers, size_t nheaders, void *body, size_t len)
{
    struct MHD_Response *r = make_response(content_type, headers, nheaders, body, len);
    if (req->deferred) {
        /* Resumed: the access handler is called again and queues it. */
        req->response = r;
        req->status = status;
        req->deferred = false;
        req->listener->resumed = true;
        MHD_resume_connection(req->conn);
        return r ? 0 : -ENOMEM;
    }
    if (!r)
        return -ENOMEM;
    MHD_queue_response(req->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return 0;
}

int pf__http_respond_text(pf__http_request *req, int status, const char *content_type,
                          const char *text)
{
    char *copy = strdup(text);
    if (!copy)
        return pf__http_respond(req, 500, NULL, NULL, 0, NULL, 0);
    return pf__http_respond(req, status, content_type, NULL, 0, copy, strlen(copy));
}

void pf__http_defer(pf__http_request *req)
{
    req->deferred = true;
    MHD_suspend_connection(req->conn);
}

void pf__http_set_data(pf__http_request *req, void *data)
{
    req->data = data;
}

uint64_t pf__http_started_us(const pf__http_request *req)
{
    return req->started_us;
}

void *pf__http_data(const pf__http_request *req)
{
    return req->data;
}

const char *pf__http_method(const pf__http_request *req)
{
    return req->method;
}

const char *pf__http_path(const pf__http_request *req)
{
    return req->path;
}

const char *pf__http_query(const pf__http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *pf__http_header(const pf__http_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

typedef struct header_walk {
    bool (*fn)(void *ctx, const char *name, const char *value);
    void *ctx;
} header_walk;

static enum MHD_Result walk_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    header_walk *w = cls;
    return w->fn(w->ctx, key, value ? value : "") ? MHD_YES : MHD_NO;
}

void pf__http_headers(const pf__http_request *req,
                      bool (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    header_walk w = {fn, ctx};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, walk_header, &w);
}

const void *pf__http_body(const pf__http_request *req, size_t *len)
{
    *len = req->body_len;
    return req->body;
}

bool pf__http_client_loopback(const pf__http_request *req)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!info || !info->client_addr)
        return false;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

static void request_free(pf__http_request *req)
{
    if (!req)
        return;
    if (req->response)
        MHD_destroy_response(req->response);
    free(req->method);
    free(req->path);
    free(req->body);
    free(req);
}

/* Room for n bytes and a NUL. */
static int body_reserve(pf__http_request *req, size_t n)
{
    if (n + 1 <= req->body_cap)
        return 0;
    size_t cap = req->body_cap ? req->body_cap : 4096;
    while (cap < n + 1)
        cap *= 2;
    uint8_t *p = realloc(req->body, cap);
    if (!p)
        return -ENOMEM;
    req->body = p;
    req->body_cap = cap;
    return 0;
}

static enum MHD_Result respond_now(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static const char TOO_LARGE[] = "{\"code\": 413, \"type\": \"RequestTooLarge\", "
                                "\"message\": \"the request body is larger than "
                                "max_request_size\", \"error\": \"the request body is larger "
                                "than max_request_size\"}\n";

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    pf__http_listener *l = cls;
    pf__http_request *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->listener = l;
        req->conn = conn;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        req->started_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
        req->method = strdup(method);
        req->path = strdup(url);
        if (!req->method || !req->path) {
            request_free(req);
            return MHD_NO;
        }
        *con_cls = req;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || end == cl || *end || n > l->opts.max_body) {
                /* Answered from the headers: the body is never read. */
                req->called = true;
                return respond_now(conn, MHD_HTTP_CONTENT_TOO_LARGE, TOO_LARGE);
            }
            req->declared = (size_t)n;
            if (n > 0 && body_reserve(req, (size_t)n) < 0)
                return MHD_NO;
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!req->too_large && req->body_len + *upload_size > l->opts.max_body)
            req->too_large = true; /* chunked: no length was stated */
        if (req->too_large) {
            /* Read and dropped, up to a bound, then the connection is closed. */
            req->declared += *upload_size;
            *upload_size = 0;
            return req->declared > 4 * l->opts.max_body + (1u << 20) ? MHD_NO : MHD_YES;
        }
        if (body_reserve(req, req->body_len + *upload_size) < 0)
            return MHD_NO;
        memcpy(req->body + req->body_len, upload_data, *upload_size);
        req->body_len += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    if (req->response) { /* a deferred answer, resumed */
        struct MHD_Response *r = req->response;
        req->response = NULL;
        enum MHD_Result rc = MHD_queue_response(conn, (unsigned)req->status, r);
        MHD_destroy_response(r);
        return rc;
    }
    if (req->called)
        return req->deferred ? MHD_YES : MHD_NO;
    req->called = true;
    if (req->too_large)
        return respond_now(conn, MHD_HTTP_CONTENT_TOO_LARGE, TOO_LARGE);
    if (body_reserve(req, req->body_len) < 0)
        return MHD_NO;
    req->body[req->body_len] = '\0'; /* a text body can be read as a string */
    l->opts.handler(l->opts.ctx, req);
    return MHD_YES;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    pf__http_request *req = *con_cls;
    *con_cls = NULL;
    request_free(req);
}

static void connection_event(void *cls, struct MHD_Connection *conn, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe)
{
    (void)conn;
    (void)socket_context;
    pf__http_listener *l = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        l->connections++;
    else if (l->connections > 0)
        l->connections--;
}

static int open_socket(const pf_serve_address *addr, int *fd, int *port, char **why)
{
    char service[16];
    snprintf(service, sizeof service, "%d", addr->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(addr->host, service, &hints, &res);
    if (gai != 0)
        return pf__fail(why, -EINVAL, "cannot listen on %s:%d: %s", addr->host, addr->port,
                        gai_strerror(gai));
    int err = EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, 1024) == 0) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            getsockname(s, (struct sockaddr *)&ss, &sl);
            *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
            *fd = s;
            freeaddrinfo(res);
            return 0;
        }
        err = errno;
        close(s);
    }
    freeaddrinfo(res);
    return pf__fail(why, -err, "cannot listen on %s:%d: %s", addr->host, addr->port, strerror(err));
}

int pf__http_listen(const pf_serve_address *addr, const pf__http_options *opts,
                    pf__http_listener **out, char **why)
{
    *out = NULL;
    if (addr->https)
        return pf__fail(why, -EINVAL,
                        "https://%s:%d: TLS is not served: terminate it in front of the server "
                        "(a proxy or the ingress)",
                        addr->host, addr->port);
    pf__http_listener *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->opts = *opts;
    int fd = -1;
    int rc = open_socket(addr, &fd, &l->port, why);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->daemon =
        MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, access_handler, l,
                         MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                         opts->max_conns ? opts->max_conns : 1024u, MHD_OPTION_CONNECTION_TIMEOUT,
                         opts->idle_timeout, MHD_OPTION_NOTIFY_COMPLETED, completed, l,
                         MHD_OPTION_NOTIFY_CONNECTION, connection_event, l, MHD_OPTION_END);
    if (!l->daemon) {
        close(fd);
        free(l);
        return pf__fail(why, -EIO, "cannot start the HTTP listener on %s:%d", addr->host,
                        addr->port);
    }
    *out = l;
    return 0;
}

int pf__http_port(const pf__http_listener *l)
{
    return l->port;
}

int pf__http_fd(const pf__http_listener *l)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    return info ? info->epoll_fd : -1;
}

int pf__http_timeout(const pf__http_listener *l)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(l->daemon, &ms) != MHD_YES)
        return -1;
    return ms > 60000 ? 60000 : (int)ms;
}

void pf__http_run(pf__http_listener *l)
{
    l->resumed = false;
    MHD_run(l->daemon);
}

bool pf__http_resumed(const pf__http_listener *l)
{
    return l->resumed;
}

void pf__http_quiesce(pf__http_listener *l)
{
    int fd = MHD_quiesce_daemon(l->daemon);
    if (fd >= 0)
        close(fd);
}

unsigned pf__http_connections(const pf__http_listener *l)
{
    return l->connections;
}

void pf__http_free(pf__http_listener *l)
{
    if (!l)
        return;
    MHD_stop_daemon(l->daemon);
    free(l);
}
