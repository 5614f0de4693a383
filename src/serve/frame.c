/*
 * frame.c - the worker protocol's frames (docs/worker-protocol.md): the
 * header written, and frames read incrementally from bytes fed in pieces.
 *
 * The reader is a small state machine over one frame: header bytes until
 * there are 16, then the header is judged on its own (magic, kind, both
 * lengths against the limits) before any byte of the body is kept, then the
 * JSON and the data, each into a buffer grown with what arrived (doubling,
 * never past the length the header announced), so that a peer announcing a
 * gigabyte and sending nothing costs nothing.  A whole frame is held until
 * it is taken; a caller that feeds a socket's read buffer gets the frames
 * one by one and feeds the rest again.
 */
#include "serve/frame.h"
#include "serve/serve.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t MAGIC[4] = {'P', 'F', 'W', '1'};

const char *pf__frame_kind_name(uint32_t kind)
{
    switch (kind) {
    case PF__FRAME_READY: return "READY";
    case PF__FRAME_BATCH: return "BATCH";
    case PF__FRAME_RESULT: return "RESULT";
    case PF__FRAME_PIN: return "PIN";
    case PF__FRAME_PINNED: return "PINNED";
    case PF__FRAME_STOP: return "STOP";
    default: return NULL;
    }
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int pf__frame_header(uint8_t out[PF__FRAME_HEADER], uint32_t kind, size_t json_len, size_t data_len,
                     char **why)
{
    if (!pf__frame_kind_name(kind))
        return pf__fail(why, -EINVAL, "unknown frame kind %u", (unsigned)kind);
    if (json_len > PF__FRAME_MAX_JSON)
        return pf__fail(why, -EINVAL, "JSON of %zu bytes (the limit is %u)", json_len,
                        (unsigned)PF__FRAME_MAX_JSON);
    if (data_len > PF__FRAME_MAX_DATA)
        return pf__fail(why, -EINVAL, "data of %zu bytes (the limit is %u)", data_len,
                        (unsigned)PF__FRAME_MAX_DATA);
    memcpy(out, MAGIC, 4);
    put_u32(out + 4, kind);
    put_u32(out + 8, (uint32_t)json_len);
    put_u32(out + 12, (uint32_t)data_len);
    return 0;
}

int pf__frame_encode(uint32_t kind, const char *json, size_t json_len, const void *data,
                     size_t data_len, uint8_t **out, size_t *out_len, char **why)
{
    *out = NULL;
    *out_len = 0;
    uint8_t head[PF__FRAME_HEADER];
    int rc = pf__frame_header(head, kind, json_len, data_len, why);
    if (rc < 0)
        return rc;
    size_t total = PF__FRAME_HEADER + json_len + data_len;
    uint8_t *buf = malloc(total);
    if (!buf)
        return pf__fail(why, -ENOMEM, "out of memory for a frame of %zu bytes", total);
    memcpy(buf, head, PF__FRAME_HEADER);
    if (json_len)
        memcpy(buf + PF__FRAME_HEADER, json, json_len);
    if (data_len)
        memcpy(buf + PF__FRAME_HEADER + json_len, data, data_len);
    *out = buf;
    *out_len = total;
    return 0;
}

void pf__frame_release(pf__frame *frame)
{
    if (!frame)
        return;
    free(frame->json);
    json_decref(frame->obj);
    free(frame->data);
    memset(frame, 0, sizeof *frame);
}

void pf__frame_decoder_init(pf__frame_decoder *d, unsigned accept)
{
    memset(d, 0, sizeof *d);
    d->accept = accept;
}

void pf__frame_decoder_free(pf__frame_decoder *d)
{
    if (!d)
        return;
    pf__frame_release(&d->cur);
    free(d->message);
    unsigned accept = d->accept;
    memset(d, 0, sizeof *d);
    d->accept = accept;
}

const char *pf__frame_decoder_error(const pf__frame_decoder *d)
{
    return d->error ? d->message : NULL;
}

/* The decoder's final error: keep the message, copy it to *why. */
static int decoder_fail(pf__frame_decoder *d, char **why, int code, const char *fmt, ...)
    PF__PRINTF(4, 5);
static int decoder_fail(pf__frame_decoder *d, char **why, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = pf__vstrdupf(fmt, ap);
    va_end(ap);
    free(d->message);
    d->message = text ? pf_printable(text) : NULL;
    free(text);
    d->error = code;
    pf__frame_release(&d->cur);
    d->ready = false;
    if (why)
        *why = d->message ? strdup(d->message) : NULL;
    return code;
}

static int repeat_error(const pf__frame_decoder *d, char **why)
{
    if (why)
        *why = d->message ? strdup(d->message) : NULL;
    return d->error;
}

/* The 4 magic bytes as text: printable ASCII as is, others \xNN. */
static void magic_text(const uint8_t *m, char out[17])
{
    size_t k = 0;
    for (size_t i = 0; i < 4; i++) {
        if (m[i] >= 0x20 && m[i] < 0x7f && m[i] != '\\' && m[i] != '"') {
            out[k++] = (char)m[i];
        } else {
            snprintf(out + k, 5, "\\x%02x", m[i]);
            k += 4;
        }
    }
    out[k] = '\0';
}

/* The header is whole: judge it before any byte of the body is kept. */
static int check_header(pf__frame_decoder *d, char **why)
{
    if (memcmp(d->head, MAGIC, 4) != 0) {
        char text[17];
        magic_text(d->head, text);
        return decoder_fail(d, why, -EPROTO, "bad magic \"%s\" (expected \"PFW1\")", text);
    }
    uint32_t kind = get_u32(d->head + 4);
    uint32_t json_len = get_u32(d->head + 8);
    uint32_t data_len = get_u32(d->head + 12);
    const char *name = pf__frame_kind_name(kind);
    if (!name)
        return decoder_fail(d, why, -EPROTO, "unknown frame kind %u", (unsigned)kind);
    if (!(d->accept & (1u << kind)))
        return decoder_fail(d, why, -EPROTO, "unexpected %s frame", name);
    if (json_len > PF__FRAME_MAX_JSON)
        return decoder_fail(d, why, -EPROTO, "JSON of %u bytes (the limit is %u)",
                            (unsigned)json_len, (unsigned)PF__FRAME_MAX_JSON);
    if (data_len > PF__FRAME_MAX_DATA)
        return decoder_fail(d, why, -EPROTO, "data of %u bytes (the limit is %u)",
                            (unsigned)data_len, (unsigned)PF__FRAME_MAX_DATA);
    d->cur.kind = kind;
    d->cur.json_len = json_len;
    d->cur.data_len = data_len;
    return 0;
}

/*
 * Room for `need` bytes in *buf (capacity *cap), growing by doubling from
 * 64 KiB but never past `limit`, the size the header announced.
 */
static int reserve(uint8_t **buf, size_t *cap, size_t need, size_t limit)
{
    if (need <= *cap)
        return 0;
    size_t grow = *cap ? *cap * 2 : 65536;
    size_t size = need > grow ? need : grow;
    if (size > limit)
        size = limit;
    uint8_t *p = realloc(*buf, size);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = size;
    return 0;
}

static const char *json_type_text(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_ARRAY: return "list";
    case JSON_STRING: return "str";
    case JSON_INTEGER: return "int";
    case JSON_REAL: return "float";
    case JSON_TRUE:
    case JSON_FALSE: return "bool";
    case JSON_NULL: return "NoneType";
    default: return "value";
    }
}

/*
 * The body is whole: the JSON must be UTF-8, valid and an object (the type
 * named as Python names it, as the worker says it).
 */
static int complete(pf__frame_decoder *d, char **why)
{
    if (!d->cur.json) {
        d->cur.json = malloc(1);
        if (!d->cur.json)
            return decoder_fail(d, why, -ENOMEM, "out of memory for a frame");
    }
    d->cur.json[d->cur.json_len] = '\0';
    if (!pf__utf8_valid(d->cur.json, d->cur.json_len))
        return decoder_fail(d, why, -EPROTO, "the JSON of the frame is not UTF-8");
    json_error_t err;
    json_t *obj = json_loadb(d->cur.json, d->cur.json_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!obj)
        return decoder_fail(d, why, -EPROTO,
                            "the JSON of the frame is not valid: %s (line %d, column %d)", err.text,
                            err.line, err.column);
    if (!json_is_object(obj)) {
        const char *type = json_type_text(obj);
        json_decref(obj);
        return decoder_fail(d, why, -EPROTO, "the JSON of the frame is a %s, not an object", type);
    }
    d->cur.obj = obj;
    d->ready = true;
    return 1;
}

int pf__frame_decoder_feed(pf__frame_decoder *d, const void *bytes, size_t n, size_t *used,
                           char **why)
{
    const uint8_t *p = bytes;
    size_t at = 0;
    *used = 0;
    if (why)
        *why = NULL;
    if (d->error)
        return repeat_error(d, why);
    if (d->ready)
        return 1;
    for (;;) {
        if (d->head_got < PF__FRAME_HEADER) {
            size_t take = PF__FRAME_HEADER - d->head_got;
            if (take > n - at)
                take = n - at;
            memcpy(d->head + d->head_got, p + at, take);
            d->head_got += take;
            at += take;
            *used = at;
            if (d->head_got < PF__FRAME_HEADER)
                return 0;
            int rc = check_header(d, why);
            if (rc < 0)
                return rc;
        }
        if (d->json_got < d->cur.json_len) {
            size_t take = d->cur.json_len - d->json_got;
            if (take > n - at)
                take = n - at;
            if (take == 0)
                return 0;
            if (reserve((uint8_t **)&d->cur.json, &d->json_cap, d->json_got + take + 1,
                        d->cur.json_len + 1) < 0)
                return decoder_fail(d, why, -ENOMEM, "out of memory for a frame");
            memcpy(d->cur.json + d->json_got, p + at, take);
            d->json_got += take;
            at += take;
            *used = at;
            continue;
        }
        if (d->data_got < d->cur.data_len) {
            size_t take = d->cur.data_len - d->data_got;
            if (take > n - at)
                take = n - at;
            if (take == 0)
                return 0;
            if (reserve(&d->cur.data, &d->data_cap, d->data_got + take, d->cur.data_len) < 0)
                return decoder_fail(d, why, -ENOMEM, "out of memory for a frame");
            memcpy(d->cur.data + d->data_got, p + at, take);
            d->data_got += take;
            at += take;
            *used = at;
            continue;
        }
        return complete(d, why);
    }
}

int pf__frame_decoder_take(pf__frame_decoder *d, pf__frame *out)
{
    if (!d->ready || d->error)
        return 0;
    *out = d->cur;
    memset(&d->cur, 0, sizeof d->cur);
    d->ready = false;
    d->head_got = 0;
    d->json_cap = d->json_got = 0;
    d->data_cap = d->data_got = 0;
    return 1;
}

int pf__frame_decoder_finish(pf__frame_decoder *d, char **why)
{
    if (why)
        *why = NULL;
    if (d->error)
        return repeat_error(d, why);
    if (d->ready || d->head_got == 0)
        return 0;
    if (d->head_got < PF__FRAME_HEADER)
        return decoder_fail(d, why, -EPROTO,
                            "the connection closed inside a frame header (%zu of %d bytes)",
                            d->head_got, PF__FRAME_HEADER);
    if (d->json_got < d->cur.json_len)
        return decoder_fail(d, why, -EPROTO,
                            "the connection closed inside a frame (JSON: %zu of %zu bytes)",
                            d->json_got, d->cur.json_len);
    return decoder_fail(d, why, -EPROTO,
                        "the connection closed inside a frame (data: %zu of %zu bytes)",
                        d->data_got, d->cur.data_len);
}
