/*
 * multipart.c - multipart/form-data (RFC 7578, RFC 2046 section 5.1) read
 * in place.
 *
 * The body is cut at its delimiters, CRLF "--" boundary, found with memmem:
 * the first boundary may open the body or follow a preamble's CRLF; after
 * each delimiter comes "--" (the close delimiter: the epilogue after it is
 * ignored) or optional blanks and CRLF, then a part: header lines up to a
 * blank line, then the body up to the next delimiter.  A body that never
 * closes is an error, not a truncated last part.  Header values and
 * parameters are returned as written, pointing into the caller's buffers.
 */
#include "serve/multipart.h"
#include "serve/serve.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* RFC 2046 bchars (space allowed but not last). */
static bool is_bchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("'()+_,-./:=? ", c));
}

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool ieq(const char *s, size_t n, const char *word)
{
    return n == strlen(word) && strncasecmp(s, word, n) == 0;
}

typedef struct param {
    const char *name, *value;
    size_t name_len, value_len;
    bool quoted;
} param;

/*
 * The parameter after the ';' at s[*at] (";" OWS name "=" value OWS), with
 * *at moved past it.  A quoted value is returned as written between its
 * quotes; with `escapes` a backslash quotes the next character, without it
 * a backslash is refused.  1: a parameter, 0: the end, or -EINVAL.
 */
static int next_param(const char *s, size_t n, size_t *at, bool escapes, param *out,
                      const char *what, char **why)
{
    size_t i = *at;
    while (i < n && ows(s[i]))
        i++;
    if (i == n)
        return 0;
    if (s[i] != ';')
        return pf__serve_fail(why, -EINVAL, "%s: a ';' expected before \"%.*s\"", what,
                              (int)(n - i > 20 ? 20 : n - i), s + i);
    i++;
    while (i < n && ows(s[i]))
        i++;
    size_t start = i;
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    if (i == start || i == n || s[i] != '=')
        return pf__serve_fail(why, -EINVAL, "%s: a parameter that is not name=value", what);
    out->name = s + start;
    out->name_len = i - start;
    i++;
    out->quoted = i < n && s[i] == '"';
    if (out->quoted) {
        start = ++i;
        while (i < n && s[i] != '"') {
            if (s[i] == '\\') {
                if (!escapes)
                    return pf__serve_fail(why, -EINVAL, "%s: a backslash in a quoted %.*s", what,
                                          (int)out->name_len, out->name);
                i++;
            }
            i++;
        }
        if (i >= n)
            return pf__serve_fail(why, -EINVAL, "%s: no closing quote", what);
        out->value = s + start;
        out->value_len = i - start;
        i++;
    } else {
        start = i;
        while (i < n && is_tchar((unsigned char)s[i]))
            i++;
        out->value = s + start;
        out->value_len = i - start;
    }
    *at = i;
    return 1;
}

/* The media type at the start of s (trimmed), *at after it. */
static void media_type(const char *s, size_t n, size_t *at, const char **type, size_t *type_len)
{
    size_t i = 0;
    while (i < n && ows(s[i]))
        i++;
    size_t start = i;
    while (i < n && s[i] != ';')
        i++;
    size_t end = i;
    while (end > start && ows(s[end - 1]))
        end--;
    *type = s + start;
    *type_len = end - start;
    *at = end;
}

int pf__multipart_boundary(const char *content_type, size_t len, const char **boundary,
                           size_t *boundary_len, char **why)
{
    *boundary = NULL;
    *boundary_len = 0;
    const char *type;
    size_t type_len, at;
    media_type(content_type, len, &at, &type, &type_len);
    if (!ieq(type, type_len, "multipart/form-data"))
        return pf__serve_fail(why, -EINVAL, "the content type \"%.*s\" is not multipart/form-data",
                              (int)(type_len > 80 ? 80 : type_len), type);
    const char *found = NULL;
    size_t found_len = 0;
    param p;
    int rc;
    while ((rc = next_param(content_type, len, &at, false, &p, "Content-Type", why)) == 1) {
        if (!ieq(p.name, p.name_len, "boundary"))
            continue;
        if (found)
            return pf__serve_fail(why, -EINVAL, "Content-Type: the boundary is given twice");
        found = p.value;
        found_len = p.value_len;
    }
    if (rc < 0)
        return rc;
    if (!found)
        return pf__serve_fail(why, -EINVAL, "Content-Type: no boundary");
    if (found_len == 0 || found_len > PF__MULTIPART_MAX_BOUNDARY)
        return pf__serve_fail(why, -EINVAL, "Content-Type: a boundary of %zu characters (1 to %d)",
                              found_len, PF__MULTIPART_MAX_BOUNDARY);
    for (size_t i = 0; i < found_len; i++)
        if (!is_bchar((unsigned char)found[i]))
            return pf__serve_fail(why, -EINVAL,
                                  "Content-Type: the boundary holds a character not allowed "
                                  "(0x%02x)",
                                  (unsigned char)found[i]);
    if (found[found_len - 1] == ' ')
        return pf__serve_fail(why, -EINVAL, "Content-Type: the boundary ends with a space");
    *boundary = found;
    *boundary_len = found_len;
    return 0;
}

/* Content-Disposition: form-data; name="..."; filename="..." */
static int disposition(pf__multipart_part *part, const char *v, size_t n, size_t k, char **why)
{
    const char *type;
    size_t type_len, at;
    media_type(v, n, &at, &type, &type_len);
    if (!ieq(type, type_len, "form-data"))
        return pf__serve_fail(why, -EINVAL, "part %zu: Content-Disposition is not form-data", k);
    char what[64];
    snprintf(what, sizeof what, "part %zu: Content-Disposition", k);
    param p;
    int rc;
    while ((rc = next_param(v, n, &at, true, &p, what, why)) == 1) {
        if (ieq(p.name, p.name_len, "name")) {
            if (part->name)
                return pf__serve_fail(why, -EINVAL, "%s: name given twice", what);
            part->name = p.value;
            part->name_len = p.value_len;
        } else if (ieq(p.name, p.name_len, "filename")) {
            if (part->filename)
                return pf__serve_fail(why, -EINVAL, "%s: filename given twice", what);
            part->filename = p.value;
            part->filename_len = p.value_len;
        }
    }
    if (rc < 0)
        return rc;
    if (!part->name)
        return pf__serve_fail(why, -EINVAL, "%s: no name", what);
    return 0;
}

/* The header lines of part k: [h, h + n), lines ended by CRLF (the last one's included). */
static int part_headers(pf__multipart_part *part, const char *h, size_t n, size_t k, char **why)
{
    bool seen_disposition = false, seen_type = false;
    size_t i = 0;
    while (i < n) {
        const char *eol = memmem(h + i, n - i, "\r\n", 2);
        size_t end = eol ? (size_t)(eol - h) : n;
        const char *line = h + i;
        size_t len = end - i;
        size_t c = 0;
        while (c < len && is_tchar((unsigned char)line[c]))
            c++;
        if (c == 0 || c == len || line[c] != ':')
            return pf__serve_fail(why, -EINVAL, "part %zu: a header line that is not Name: value",
                                  k);
        for (size_t j = c; j < len; j++)
            if (line[j] == '\r' || line[j] == '\n' || line[j] == '\0')
                return pf__serve_fail(why, -EINVAL, "part %zu: a header holds a bare CR, LF or NUL",
                                      k);
        size_t vs = c + 1, ve = len;
        while (vs < ve && ows(line[vs]))
            vs++;
        while (ve > vs && ows(line[ve - 1]))
            ve--;
        if (ieq(line, c, "Content-Disposition")) {
            if (seen_disposition)
                return pf__serve_fail(why, -EINVAL, "part %zu: Content-Disposition given twice", k);
            seen_disposition = true;
            int rc = disposition(part, line + vs, ve - vs, k, why);
            if (rc < 0)
                return rc;
        } else if (ieq(line, c, "Content-Type")) {
            if (seen_type)
                return pf__serve_fail(why, -EINVAL, "part %zu: Content-Type given twice", k);
            seen_type = true;
            part->content_type = line + vs;
            part->content_type_len = ve - vs;
        }
        i = end + 2;
    }
    if (!seen_disposition)
        return pf__serve_fail(why, -EINVAL, "part %zu: no Content-Disposition", k);
    return 0;
}

int pf__multipart_parse(const char *boundary, size_t boundary_len, const void *body, size_t len,
                        pf__multipart_part **parts, size_t *nparts, char **why)
{
    *parts = NULL;
    *nparts = 0;
    if (boundary_len == 0 || boundary_len > PF__MULTIPART_MAX_BOUNDARY)
        return pf__serve_fail(why, -EINVAL, "a boundary of %zu characters (1 to %d)", boundary_len,
                              PF__MULTIPART_MAX_BOUNDARY);
    const char *b = body;
    char delim[4 + PF__MULTIPART_MAX_BOUNDARY]; /* CRLF "--" boundary */
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, boundary_len);
    size_t dlen = 4 + boundary_len;

    size_t p;
    if (len >= dlen - 2 && memcmp(b, delim + 2, dlen - 2) == 0) {
        p = dlen - 2;
    } else {
        const char *d = len ? memmem(b, len, delim, dlen) : NULL;
        if (!d)
            return pf__serve_fail(why, -EINVAL, "no boundary \"--%.*s\" in the body",
                                  (int)boundary_len, boundary);
        p = (size_t)(d - b) + dlen;
    }
    pf__multipart_part *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len - p >= 2 && b[p] == '-' && b[p + 1] == '-') {
            if (n == 0)
                rc = pf__serve_fail(why, -EINVAL, "no part before the final boundary");
            break;
        }
        while (p < len && ows(b[p]))
            p++;
        if (len - p < 2 || b[p] != '\r' || b[p + 1] != '\n') {
            rc = pf__serve_fail(why, -EINVAL,
                                len == p ? "the body ends without its final boundary"
                                         : "a boundary line not ended by CRLF");
            break;
        }
        p += 2;
        const char *d = memmem(b + p, len - p, delim, dlen);
        if (!d) {
            rc = pf__serve_fail(why, -EINVAL, "the body ends without its final boundary");
            break;
        }
        size_t end = (size_t)(d - b);
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            pf__multipart_part *nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                rc = pf__serve_fail(why, -ENOMEM, "out of memory");
                break;
            }
            v = nv;
            cap = ncap;
        }
        pf__multipart_part *part = &v[n++];
        memset(part, 0, sizeof *part);
        size_t body_at;
        if (end - p >= 2 && b[p] == '\r' && b[p + 1] == '\n') {
            body_at = p + 2; /* no header at all */
        } else {
            const char *blank = memmem(b + p, end - p, "\r\n\r\n", 4);
            if (!blank) {
                rc = pf__serve_fail(why, -EINVAL, "part %zu: headers not ended by a blank line", n);
                break;
            }
            part->headers = b + p;
            part->headers_len = (size_t)(blank - (b + p));
            body_at = part->headers_len + p + 4;
            rc = part_headers(part, part->headers, part->headers_len + 2, n, why);
            if (rc < 0)
                break;
        }
        if (!part->headers) {
            rc = pf__serve_fail(why, -EINVAL, "part %zu: no Content-Disposition", n);
            break;
        }
        part->body = (const uint8_t *)b + body_at;
        part->body_len = end - body_at;
        p = end + dlen;
    }
    if (rc < 0) {
        free(v);
        return rc;
    }
    *parts = v;
    *nparts = n;
    return 0;
}
