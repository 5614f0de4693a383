/*
 * fuzz_worker_frame.c - libFuzzer target for the worker protocol's frame
 * reader (src/serve/frame.c).
 *
 * The input is a byte stream from a worker.  It is fed whole, then again in
 * pieces whose sizes come from the input's own bytes; both readings must
 * agree: the same frames (kind, JSON text, data), then the same error or
 * the same end.  Properties: nothing crashes or leaks; a frame's JSON is an
 * object and its lengths are within the limits; an error is -EPROTO with one
 * printable line, final (fed again, the same code and message); each frame
 * encoded again gives back the bytes it was read from.
 */
#include "serve/frame.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAMES 64

typedef struct reading {
    pf__frame frames[MAX_FRAMES];
    size_t n;
    int rc; /* the last feed's or finish's code */
    char *why;
} reading;

static void check_message(const char *msg)
{
    if (!msg || !*msg)
        abort();
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            abort();
}

/* Feed [p, p + n); take the frames.  false once an error ended the reading. */
static bool feed(pf__frame_decoder *d, const uint8_t *p, size_t n, reading *r)
{
    for (;;) {
        size_t used = 0;
        char *why = NULL;
        int rc = pf__frame_decoder_feed(d, p, n, &used, &why);
        if (used > n)
            abort();
        if (rc < 0) {
            if (rc != -EPROTO && rc != -ENOMEM)
                abort();
            r->rc = rc;
            r->why = why;
            return false;
        }
        if (why)
            abort();
        p += used;
        n -= used;
        if (rc == 0) {
            if (n != 0)
                abort();
            return true;
        }
        pf__frame f;
        if (pf__frame_decoder_take(d, &f) != 1)
            abort();
        if (!json_is_object(f.obj) || f.json_len > PF__FRAME_MAX_JSON ||
            f.data_len > PF__FRAME_MAX_DATA || f.json[f.json_len] != '\0' ||
            !(PF__FRAME_FROM_WORKER & (1u << f.kind)) || (f.data_len == 0) != (f.data == NULL))
            abort();
        if (r->n == MAX_FRAMES) {
            pf__frame_release(&f);
            continue;
        }
        r->frames[r->n++] = f;
    }
}

static void finish(pf__frame_decoder *d, reading *r)
{
    r->rc = pf__frame_decoder_finish(d, &r->why);
    if (r->rc != 0 && r->rc != -EPROTO)
        abort();
    if ((r->rc == 0) != (r->why == NULL))
        abort();
}

/* The error is final: the same code and message again. */
static void check_final(pf__frame_decoder *d, const reading *r)
{
    check_message(r->why);
    if (strcmp(pf__frame_decoder_error(d), r->why) != 0)
        abort();
    size_t used = 1;
    char *why = NULL;
    if (pf__frame_decoder_feed(d, "PFW1", 4, &used, &why) != r->rc || used != 0 || !why ||
        strcmp(why, r->why) != 0)
        abort();
    free(why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reading whole = {.n = 0}, parts = {.n = 0};
    pf__frame_decoder d;

    pf__frame_decoder_init(&d, PF__FRAME_FROM_WORKER);
    if (feed(&d, data, size, &whole))
        finish(&d, &whole);
    if (whole.rc < 0)
        check_final(&d, &whole);
    pf__frame_decoder_free(&d);

    /* In pieces: sizes 1..64 taken from the bytes themselves. */
    pf__frame_decoder_init(&d, PF__FRAME_FROM_WORKER);
    size_t at = 0, step = 0;
    bool going = true;
    while (going && at < size) {
        size_t len = (size_t)(data[step++ % size] & 63) + 1;
        if (len > size - at)
            len = size - at;
        going = feed(&d, data + at, len, &parts);
        at += len;
    }
    if (going)
        finish(&d, &parts);
    if (parts.rc < 0)
        check_final(&d, &parts);
    pf__frame_decoder_free(&d);

    if (whole.rc != parts.rc || whole.n != parts.n ||
        (whole.why && strcmp(whole.why, parts.why) != 0))
        abort();
    size_t pos = 0;
    for (size_t i = 0; i < whole.n; i++) {
        const pf__frame *a = &whole.frames[i], *b = &parts.frames[i];
        if (a->kind != b->kind || a->json_len != b->json_len || a->data_len != b->data_len ||
            memcmp(a->json, b->json, a->json_len) != 0 ||
            (a->data_len && memcmp(a->data, b->data, a->data_len) != 0))
            abort();
        uint8_t *again = NULL;
        size_t n = 0;
        if (pf__frame_encode(a->kind, a->json, a->json_len, a->data, a->data_len, &again, &n,
                             NULL) == 0) {
            if (pos + n > size || memcmp(data + pos, again, n) != 0)
                abort();
            pos += n;
            free(again);
        }
    }
    for (size_t i = 0; i < whole.n; i++)
        pf__frame_release(&whole.frames[i]);
    for (size_t i = 0; i < parts.n; i++)
        pf__frame_release(&parts.frames[i]);
    free(whole.why);
    free(parts.why);
    return 0;
}
