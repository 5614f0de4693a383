/*
 * fuzz_http_response.c - libFuzzer target for the load generator's HTTP
 * response parser (src/bench/http_client.c).
 *
 * The input is the byte stream of a connection, then its close.  It is fed
 * whole, then again in pieces whose sizes come from the input's own bytes,
 * as answers to a GET and as answers to a HEAD.  Both readings must agree:
 * the same answers (status, close, where each ends), then the same error
 * or the same end.  Properties: nothing crashes; no call takes more than it
 * was given; an answer's status is from 200 to 999 (interim ones are
 * skipped); an error is -EPROTO with one printable line, and final.
 */
#include "bench/loadgen.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ANSWERS 64

typedef struct reading {
    size_t n;
    int status[MAX_ANSWERS];
    bool close[MAX_ANSWERS];
    size_t end[MAX_ANSWERS];
    size_t total; /* answers, beyond MAX_ANSWERS too */
    int rc;       /* 0, or -EPROTO */
    const char *error;
} reading;

static void check_message(const char *msg)
{
    if (!msg || !*msg)
        abort();
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            abort();
}

static void answer(reading *r, const pf__http_parser *p, size_t end)
{
    if (p->status < 200 || p->status > 999)
        abort();
    if (r->n < MAX_ANSWERS) {
        r->status[r->n] = p->status;
        r->close[r->n] = p->close;
        r->end[r->n] = end;
        r->n++;
    }
    r->total++;
}

/* Feed [at, at + n) of data; false once an error ended the reading. */
static bool feed(pf__http_parser *p, const uint8_t *data, size_t at, size_t n, reading *r)
{
    size_t off = 0;
    while (off < n) {
        size_t used = 0;
        int rc = pf__http_response_parse(p, (const char *)data + at + off, n - off, &used);
        if (used > n - off)
            abort();
        off += used;
        if (rc < 0) {
            if (rc != -EPROTO)
                abort();
            check_message(p->error);
            /* Final: the same again, nothing taken. */
            if (pf__http_response_parse(p, "HTTP/1.1 200 OK\r\n\r\n", 19, &used) != -EPROTO ||
                used != 0 || pf__http_response_eof(p) != -EPROTO)
                abort();
            r->rc = rc;
            r->error = p->error;
            return false;
        }
        if (rc == 0) {
            if (off != n)
                abort();
            return true;
        }
        if (rc != 1)
            abort();
        answer(r, p, at + off);
    }
    return true;
}

static void finish(pf__http_parser *p, size_t size, reading *r)
{
    int rc = pf__http_response_eof(p);
    if (rc == 1) {
        answer(r, p, size);
    } else if (rc < 0) {
        if (rc != -EPROTO)
            abort();
        check_message(p->error);
        r->rc = rc;
        r->error = p->error;
    } else if (rc != 0) {
        abort();
    }
}

static void read_both_ways(const uint8_t *data, size_t size, bool head)
{
    reading whole = {.n = 0}, parts = {.n = 0};
    pf__http_parser p;

    pf__http_parser_init(&p, head);
    if (feed(&p, data, 0, size, &whole))
        finish(&p, size, &whole);

    /* In pieces: sizes 1..32 taken from the bytes themselves. */
    pf__http_parser_init(&p, head);
    size_t at = 0, step = 0;
    bool going = true;
    while (going && at < size) {
        size_t len = (size_t)(data[step++ % size] & 31) + 1;
        if (len > size - at)
            len = size - at;
        going = feed(&p, data, at, len, &parts);
        at += len;
    }
    if (going)
        finish(&p, size, &parts);

    if (whole.rc != parts.rc || whole.n != parts.n || whole.total != parts.total ||
        (whole.error != parts.error && strcmp(whole.error, parts.error) != 0))
        abort();
    for (size_t i = 0; i < whole.n; i++)
        if (whole.status[i] != parts.status[i] || whole.close[i] != parts.close[i] ||
            whole.end[i] != parts.end[i])
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_both_ways(data, size, false);
    read_both_ways(data, size, true);
    return 0;
}
