/*
 * multipart.h - multipart/form-data bodies (RFC 7578 over RFC 2046), read
 * in place: every part, name and value points into the caller's buffers,
 * nothing is copied.
 */
#ifndef PF_SERVE_MULTIPART_H
#define PF_SERVE_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

/* The longest boundary RFC 2046 allows. */
#define PF__MULTIPART_MAX_BOUNDARY 70

/* One part.  Pointers into the body; a missing field is NULL with length 0. */
typedef struct pf__multipart_part {
    const char *headers; /* the header block, without the blank line */
    size_t headers_len;
    const char *name; /* Content-Disposition's name, as written between its quotes */
    size_t name_len;
    const char *filename; /* its filename, as written (escapes not undone) */
    size_t filename_len;
    const char *content_type; /* the Content-Type value, trimmed (NULL: text/plain) */
    size_t content_type_len;
    const uint8_t *body;
    size_t body_len;
} pf__multipart_part;

/*
 * The boundary of a Content-Type header value ("multipart/form-data;
 * boundary=..." quoted or not, names case-insensitive).  *boundary points
 * into `content_type`.  -EINVAL (*why) when the type is not
 * multipart/form-data, the boundary is missing, given twice, empty, longer
 * than 70 characters, or holds a character RFC 2046 does not allow.
 */
int pf__multipart_boundary(const char *content_type, size_t len, const char **boundary,
                           size_t *boundary_len, char **why);

/*
 * The parts of a body.  *parts is malloc'd (free() it), *nparts its length
 * (at least 1).  The preamble and the epilogue are skipped.  -EINVAL (*why)
 * for: no first boundary, a boundary line not ended by CRLF, a header line
 * that is not "Name: value" (folded lines included), a part without
 * Content-Disposition form-data and a name, a missing final boundary;
 * -ENOMEM.
 */
int pf__multipart_parse(const char *boundary, size_t boundary_len, const void *body, size_t len,
                        pf__multipart_part **parts, size_t *nparts, char **why);

#endif /* PF_SERVE_MULTIPART_H */
