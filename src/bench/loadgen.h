/*
 * loadgen.h - the load generator's internals (src/bench/loadgen.c,
 * src/bench/http_client.c): the URL, the request bytes and the HTTP/1.1
 * response parser, each pure so that tests and fuzzers can drive them
 * without a socket.
 */
#ifndef PF_BENCH_LOADGEN_H
#define PF_BENCH_LOADGEN_H

#include "pinfer.h"

#include <stdbool.h>
#include <stddef.h>

/* ---- the URL ---- */

typedef struct pf__http_url {
    char *host;     /* as it is resolved: brackets of an IPv6 literal removed */
    char *host_hdr; /* the Host header's value: "[::1]:8080", "example:8080", "example" */
    char *port;     /* decimal text, for getaddrinfo */
    char *path;     /* "/..." with its query, no fragment */
    bool ipv6;      /* the host was a bracketed literal */
} pf__http_url;

/* Parse "http://HOST[:PORT][/PATH]".  -EINVAL with *why, -ENOMEM.  Free with pf__http_url_free().
 */
int pf__http_url_parse(const char *url, pf__http_url *out, char **why);
void pf__http_url_free(pf__http_url *u);

/*
 * The request's bytes, built once: "METHOD PATH HTTP/1.1", Host,
 * User-Agent, Accept, Connection: keep-alive, and with a body (or a method
 * that carries one) Content-Type and Content-Length.  *head tells whether
 * the method is HEAD (its answers have no body).  -EINVAL with *why (a
 * method that is not an HTTP token, a content type with a line break),
 * -ENOMEM.
 */
int pf__http_request_build(const pf__http_url *u, const pf_load_options *opts, char **out,
                           size_t *len, bool *head, char **why);

/* ---- the response parser ---- */

#define PF__HTTP_LINE_MAX 256        /* of a line, the part examined */
#define PF__HTTP_HEAD_MAX (64 << 10) /* status line and headers of one answer */

/*
 * An incremental HTTP/1.x response parser.  It takes the bytes of a
 * connection as they come, in pieces of any size, and keeps of the head
 * only what the load generator needs: the status, the body's framing
 * (Content-Length, chunked, or up to the close) and whether the server
 * closes the connection after the answer.  Bodies are skipped, not copied.
 * Interim answers (1xx but 101) are skipped.  No allocation.
 */
typedef struct pf__http_parser {
    /* The answer that completed last (valid after a return of 1). */
    int status;
    bool close; /* the server closes after it: "Connection: close", HTTP/1.0 */
    /* The error, once pf__http_response_parse returned -EPROTO (sticky). */
    const char *error;
    /* State. */
    int state;
    bool head_request;
    bool started; /* a byte of the current answer seen */
    int cur_status;
    bool cur_close, chunked, until_close, has_length, keep_alive, http10, line_long;
    long long length; /* Content-Length */
    long long remaining;
    size_t head_bytes;
    size_t line_len;
    char line[PF__HTTP_LINE_MAX];
} pf__http_parser;

/* Ready for the answers to requests of this kind (head: HEAD requests, answers without a body). */
void pf__http_parser_init(pf__http_parser *p, bool head_request);

/*
 * Feed [data, data + len).  Returns 1 when an answer completed: *used bytes
 * were taken (the rest belongs to what follows), p->status and p->close
 * describe it, and the parser is ready for the next answer.  Returns 0 when
 * all of it was taken and the answer is not complete yet, or -EPROTO when
 * the bytes are not an HTTP/1.x answer (p->error says why, one line; every
 * later call returns -EPROTO again).
 */
int pf__http_response_parse(pf__http_parser *p, const char *data, size_t len, size_t *used);

/*
 * The connection was closed.  Returns 1 when that completed an answer (one
 * whose body runs up to the close), 0 when no answer was begun, -EPROTO
 * when one was cut short (p->error says so).
 */
int pf__http_response_eof(pf__http_parser *p);

#endif /* PF_BENCH_LOADGEN_H */
