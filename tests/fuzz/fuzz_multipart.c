/*
 * fuzz_multipart.c - libFuzzer target for multipart/form-data
 * (src/serve/multipart.c).
 *
 * The input is a Content-Type value, a newline, and a body.  Properties:
 * nothing crashes or leaks; a boundary read from the value lies inside it,
 * is 1 to 70 bytes and is read again the same from
 * "multipart/form-data; boundary=\"B\""; the body is split with it (or with
 * "XB" when the value gives none); every part points inside the body, in
 * order, not overlapping, with a name; a refusal is -EINVAL with one
 * printable line and nothing returned.
 */
#include "serve/multipart.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const char *msg)
{
    if (!msg || !*msg)
        abort();
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            abort();
}

static bool inside(const void *p, size_t n, const void *base, size_t len)
{
    const uint8_t *a = p, *b = base;
    return a >= b && n <= len && (size_t)(a - b) <= len - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ct_len = nl ? (size_t)(nl - data) : size;
    const char *ct = (const char *)data;
    const uint8_t *body = nl ? nl + 1 : data + size;
    size_t body_len = size - (size_t)(body - data);

    const char *b = NULL;
    size_t bl = 0;
    char *why = NULL;
    int rc = pf__multipart_boundary(ct, ct_len, &b, &bl, &why);
    if (rc == 0) {
        if (why || !b || bl == 0 || bl > PF__MULTIPART_MAX_BOUNDARY || !inside(b, bl, ct, ct_len))
            abort();
        char again[128];
        int n = snprintf(again, sizeof again, "multipart/form-data; boundary=\"%.*s\"", (int)bl, b);
        const char *b2;
        size_t bl2;
        if (n < 0 || pf__multipart_boundary(again, (size_t)n, &b2, &bl2, NULL) != 0 || bl2 != bl ||
            memcmp(b2, b, bl) != 0)
            abort();
    } else {
        if (rc != -EINVAL || b || bl)
            abort();
        check_message(why);
        free(why);
        why = NULL;
        b = "XB";
        bl = 2;
    }

    pf__multipart_part *parts = NULL;
    size_t nparts = 0;
    rc = pf__multipart_parse(b, bl, body, body_len, &parts, &nparts, &why);
    if (rc == 0) {
        if (why || !parts || nparts == 0)
            abort();
        const uint8_t *last = body;
        for (size_t i = 0; i < nparts; i++) {
            const pf__multipart_part *p = &parts[i];
            if (!p->name || !p->headers || !inside(p->name, p->name_len, body, body_len) ||
                !inside(p->headers, p->headers_len, body, body_len) ||
                !inside(p->body, p->body_len, body, body_len) ||
                (const uint8_t *)p->headers < last ||
                p->body < (const uint8_t *)p->headers + p->headers_len)
                abort();
            if ((p->filename && !inside(p->filename, p->filename_len, body, body_len)) ||
                (p->content_type && !inside(p->content_type, p->content_type_len, body, body_len)))
                abort();
            last = p->body + p->body_len;
        }
        free(parts);
    } else {
        if (rc != -EINVAL || parts || nparts)
            abort();
        check_message(why);
        free(why);
    }
    return 0;
}
