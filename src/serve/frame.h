/*
 * frame.h - the frames of the worker protocol (docs/worker-protocol.md) on
 * the front end's side: writing one, and reading them from a non-blocking
 * socket as bytes arrive.
 *
 * A frame is a 16-byte header (magic "PFW1", kind, json_len, data_len: u32
 * little-endian), a JSON object in UTF-8, and raw data.  The decoder checks
 * the header alone (magic, kind, limits) before it keeps any byte of the
 * body, so that a wrong header costs nothing; the JSON is parsed (jansson)
 * once it is whole and must be an object.  The messages are the worker's
 * (python/pinfer/serve/protocol.py).
 */
#ifndef PF_SERVE_FRAME_H
#define PF_SERVE_FRAME_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PF__FRAME_HEADER 16
#define PF__FRAME_MAX_JSON ((uint32_t)16 << 20) /* 16 MiB */
#define PF__FRAME_MAX_DATA ((uint32_t)1 << 30)  /* 1 GiB */

enum pf__frame_kind {
    PF__FRAME_READY = 1,
    PF__FRAME_BATCH = 2,
    PF__FRAME_RESULT = 3,
    PF__FRAME_PIN = 4,
    PF__FRAME_PINNED = 5,
    PF__FRAME_STOP = 6,
};

/* The kinds each end receives, as masks of (1u << kind). */
#define PF__FRAME_FROM_WORKER \
    ((1u << PF__FRAME_READY) | (1u << PF__FRAME_RESULT) | (1u << PF__FRAME_PINNED))
#define PF__FRAME_FROM_FRONT_END \
    ((1u << PF__FRAME_BATCH) | (1u << PF__FRAME_PIN) | (1u << PF__FRAME_STOP))
#define PF__FRAME_ANY 0x7eu

/* "READY" ... "STOP", or NULL for a kind the protocol does not have. */
const char *pf__frame_kind_name(uint32_t kind);

/*
 * The 16 header bytes of a frame.  -EINVAL (*why) for an unknown kind or a
 * length over the limits.
 */
int pf__frame_header(uint8_t out[PF__FRAME_HEADER], uint32_t kind, size_t json_len, size_t data_len,
                     char **why);

/*
 * A whole frame in one malloc'd buffer (*out, *out_len): the header, the
 * JSON text as given (not checked) and the data.  -EINVAL as
 * pf__frame_header, -ENOMEM.
 */
int pf__frame_encode(uint32_t kind, const char *json, size_t json_len, const void *data,
                     size_t data_len, uint8_t **out, size_t *out_len, char **why);

/* One frame read.  Free with pf__frame_release. */
typedef struct pf__frame {
    uint32_t kind;
    char *json; /* the JSON text, NUL-terminated */
    size_t json_len;
    json_t *obj;   /* that text parsed: an object */
    uint8_t *data; /* NULL when data_len is 0 */
    size_t data_len;
} pf__frame;

void pf__frame_release(pf__frame *frame);

/*
 * The incremental reader.  Feed it the bytes as they arrive, in pieces of
 * any size; it hands out whole frames one at a time.  An error is final:
 * every later call returns the same code, and the message is kept
 * (pf__frame_decoder_error).
 */
typedef struct pf__frame_decoder {
    unsigned accept; /* kinds accepted, a mask of (1u << kind) */
    uint8_t head[PF__FRAME_HEADER];
    size_t head_got;
    pf__frame cur; /* the frame being read (kind and lengths once the header is whole) */
    size_t json_cap, json_got;
    size_t data_cap, data_got;
    bool ready; /* cur is whole, waiting for pf__frame_decoder_take */
    int error;
    char *message;
} pf__frame_decoder;

/* Start reading frames of the kinds in `accept` (PF__FRAME_FROM_WORKER...). */
void pf__frame_decoder_init(pf__frame_decoder *d, unsigned accept);
/* Free what the decoder holds (a frame half read or not taken, the message). */
void pf__frame_decoder_free(pf__frame_decoder *d);

/*
 * Consume bytes up to the end of the next whole frame.  *used is how many
 * of the n bytes were taken.  Returns 1 when a frame is whole (take it with
 * pf__frame_decoder_take, then feed the rest: bytes + *used), 0 when every
 * byte was taken and the frame is not yet whole, -EPROTO on a protocol error
 * (with *why, a copy of the one-line message), -ENOMEM.  While a frame
 * waits to be taken, nothing is consumed and 1 is returned again.
 */
int pf__frame_decoder_feed(pf__frame_decoder *d, const void *bytes, size_t n, size_t *used,
                           char **why);

/* Move the whole frame out (1), or 0 when none is whole. */
int pf__frame_decoder_take(pf__frame_decoder *d, pf__frame *out);

/*
 * The connection ended: 0 between two frames, -EPROTO ("the connection
 * closed inside a frame ...") inside one (and the decoder's error is that).
 */
int pf__frame_decoder_finish(pf__frame_decoder *d, char **why);

/* The decoder's error message, or NULL. */
const char *pf__frame_decoder_error(const pf__frame_decoder *d);

#endif /* PF_SERVE_FRAME_H */
