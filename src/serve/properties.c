/*
 * properties.c - the text format of java.util.Properties, which TorchServe's
 * config.properties is written in.
 *
 * The reader follows Properties.load's two steps.  First, logical lines:
 * blank lines and comment lines (first non-blank character '#' or '!') are
 * skipped; a line that ends in an odd number of backslashes continues on the
 * next, the backslash dropped and the next line's leading blanks skipped (a
 * comment line never continues; a continuation line is never a comment).
 * Line ends are \n, \r and \r\n; blanks are space, tab and form feed.
 * Second, key and value: the key runs to the first unescaped '=', ':' or
 * blank; blanks around the separator, and one '=' or ':' after blanks, are
 * skipped; the rest is the value.  Escapes: \t \n \r \f, \uXXXX, and a
 * backslash before any other character stands for that character.
 *
 * Where pinfer differs from Java, on purpose: the text is UTF-8, not
 * ISO 8859-1 (what users write today; other bytes are an error, not
 * mojibake); a malformed escape or half a surrogate pair is an error naming
 * its line; a value's unescaped trailing blanks are dropped (Java keeps
 * them, and `model_store=/models ` then names a folder ending in a space).
 */
#include "serve/serve.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\f';
}

static bool is_eol(char c)
{
    return c == '\n' || c == '\r';
}

/* Past the line end at pos: \r\n counts as one. */
static size_t skip_eol(const char *text, size_t len, size_t pos)
{
    if (text[pos] == '\r' && pos + 1 < len && text[pos + 1] == '\n')
        return pos + 2;
    return pos + 1;
}

bool pf__utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t more;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= more)
            return false;
        for (size_t k = 1; k <= more; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += more + 1;
    }
    return true;
}

/* Line breaks of a logical line: raw byte offsets and the lines they start. */
typedef struct breaks {
    size_t *off;
    int *line;
    size_t len;
    size_t cap;
} breaks;

static int breaks_push(breaks *b, size_t off, int line)
{
    if (b->len > 0 && b->off[b->len - 1] == off) {
        b->line[b->len - 1] = line;
        return 0;
    }
    if (b->len == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        size_t *o = realloc(b->off, cap * sizeof *o);
        if (!o)
            return -ENOMEM;
        b->off = o;
        int *l = realloc(b->line, cap * sizeof *l);
        if (!l)
            return -ENOMEM;
        b->line = l;
        b->cap = cap;
    }
    b->off[b->len] = off;
    b->line[b->len] = line;
    b->len++;
    return 0;
}

static void breaks_free(breaks *b)
{
    free(b->off);
    free(b->line);
    memset(b, 0, sizeof *b);
}

/* The line of raw byte `off`: that of the last break at or before it. */
static int breaks_line(const breaks *b, size_t off)
{
    int line = b->line[0];
    for (size_t i = 0; i < b->len && b->off[i] <= off; i++)
        line = b->line[i];
    return line;
}

static int hex4(const char *s, size_t avail, uint32_t *out)
{
    if (avail < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return 0;
}

static void put_utf8(pf__buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    pf__buf_put(b, u, n);
}

/*
 * Convert raw[from, to) (escapes) into *out.  For a value (trim true),
 * unescaped trailing blanks are dropped and the raw line breaks inside the
 * range are carried over to output offsets in *ob.
 */
static int convert(const char *source, const char *raw, size_t from, size_t to, const breaks *rb,
                   bool trim, pf__buf *out, breaks *ob, char **why)
{
    size_t next = 0; /* the next raw break to carry over */
    if (ob) {
        if (breaks_push(ob, 0, breaks_line(rb, from)) < 0)
            return -ENOMEM;
        while (next < rb->len && rb->off[next] <= from)
            next++;
    }
    size_t keep = 0; /* output length up to the last byte that is not a trailing blank */
    pf__buf_put(out, "", 0);
    for (size_t i = from; i < to;) {
        if (ob && next < rb->len && rb->off[next] <= i) {
            if (breaks_push(ob, out->len, rb->line[next]) < 0)
                return -ENOMEM;
            next++;
            continue;
        }
        char c = raw[i];
        if (c != '\\') {
            pf__buf_put(out, &c, 1);
            if (!trim || !is_blank(c))
                keep = out->len;
            i++;
            continue;
        }
        if (i + 1 >= to) { /* a lone backslash at the end stands for nothing */
            i++;
            continue;
        }
        char e = raw[i + 1];
        if (e != 'u') {
            char v = e == 't' ? '\t' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 'f' ? '\f' : e;
            pf__buf_put(out, &v, 1);
            keep = out->len;
            i += 2;
            continue;
        }
        int line = breaks_line(rb, i);
        uint32_t cp, low;
        if (hex4(raw + i + 2, to - i - 2, &cp) < 0)
            return pf__serve_fail(why, -EINVAL, "%s:%d: malformed \\uXXXX escape (four hex digits)",
                                  source, line);
        i += 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (i + 1 < to && raw[i] == '\\' && raw[i + 1] == 'u' &&
                hex4(raw + i + 2, to - i - 2, &low) == 0 && low >= 0xdc00 && low <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                i += 6;
            } else {
                return pf__serve_fail(why, -EINVAL,
                                      "%s:%d: \\u%04X is half a surrogate pair (a \\uDC00-\\uDFFF "
                                      "escape must follow it)",
                                      source, line, (unsigned)cp);
            }
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            return pf__serve_fail(why, -EINVAL,
                                  "%s:%d: \\u%04X is half a surrogate pair (no \\uD800-\\uDBFF "
                                  "escape before it)",
                                  source, line, (unsigned)cp);
        } else if (cp == 0) {
            return pf__serve_fail(why, -EINVAL, "%s:%d: \\u0000 (a NUL character) is not allowed",
                                  source, line);
        }
        put_utf8(out, cp);
        keep = out->len;
    }
    if (out->failed)
        return -ENOMEM;
    if (trim) {
        out->len = keep;
        out->s[keep] = '\0';
        while (ob && ob->len > 1 && ob->off[ob->len - 1] > keep)
            ob->len--;
    }
    return 0;
}

static int props_push(pf__properties *props, const pf__property *p)
{
    if (props->len == props->cap) {
        size_t cap = props->cap ? props->cap * 2 : 16;
        pf__property *v = realloc(props->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        props->v = v;
        props->cap = cap;
    }
    props->v[props->len++] = *p;
    return 0;
}

static void property_free(pf__property *p)
{
    free(p->key);
    free(p->value);
    free(p->breaks);
    free(p->lines);
}

/* Split one logical line into its key and value and append them. */
static int add_line(const char *source, const pf__buf *raw, const breaks *rb, pf__properties *props,
                    char **why)
{
    const char *r = raw->s ? raw->s : "";
    size_t n = raw->len, k = 0, v;
    bool backslash = false, sep = false;
    while (k < n) {
        char c = r[k];
        if ((c == '=' || c == ':') && !backslash) {
            sep = true;
            break;
        }
        if (is_blank(c) && !backslash)
            break;
        backslash = c == '\\' ? !backslash : false;
        k++;
    }
    for (v = k < n ? k + 1 : n; v < n; v++) {
        char c = r[v];
        if (!is_blank(c)) {
            if (!sep && (c == '=' || c == ':'))
                sep = true;
            else
                break;
        }
    }
    pf__buf key = {0}, value = {0};
    breaks vb = {0};
    int rc = convert(source, r, 0, k, rb, false, &key, NULL, why);
    if (rc == 0)
        rc = convert(source, r, v, n, rb, true, &value, &vb, why);
    if (rc == 0) {
        pf__property p = {.key = key.s,
                          .value = value.s,
                          .value_len = value.len,
                          .line = rb->line[0],
                          .breaks = vb.off,
                          .lines = vb.line,
                          .nbreaks = vb.len};
        rc = props_push(props, &p);
        if (rc == 0)
            return 0;
    }
    pf__buf_free(&key);
    pf__buf_free(&value);
    breaks_free(&vb);
    return rc;
}

int pf__properties_parse(const char *source, const char *text, size_t len, pf__properties *out,
                         char **why)
{
    memset(out, 0, sizeof *out);
    pf__buf raw = {0};
    breaks rb = {0};
    size_t pos = 0;
    int line = 1, rc = 0;
    while (pos < len && rc == 0) {
        while (pos < len && is_blank(text[pos]))
            pos++;
        if (pos == len)
            break;
        if (is_eol(text[pos])) {
            pos = skip_eol(text, len, pos);
            line++;
            continue;
        }
        if (text[pos] == '#' || text[pos] == '!') {
            while (pos < len && !is_eol(text[pos]))
                pos++;
            if (pos < len) {
                pos = skip_eol(text, len, pos);
                line++;
            }
            continue;
        }
        /* A logical line: physical lines joined while they end in an odd number of backslashes. */
        raw.len = 0;
        rb.len = 0;
        if (breaks_push(&rb, 0, line) < 0) {
            rc = -ENOMEM;
            break;
        }
        for (;;) {
            size_t seg = pos;
            while (pos < len && !is_eol(text[pos]))
                pos++;
            if (memchr(text + seg, '\0', pos - seg)) {
                rc = pf__serve_fail(why, -EINVAL, "%s:%d: a NUL byte", source, line);
                break;
            }
            if (!pf__utf8_valid(text + seg, pos - seg)) {
                rc = pf__serve_fail(why, -EINVAL,
                                    "%s:%d: not UTF-8 text (write other characters as \\uXXXX)",
                                    source, line);
                break;
            }
            size_t trailing = 0;
            while (trailing < pos - seg && text[pos - 1 - trailing] == '\\')
                trailing++;
            bool more = trailing % 2 == 1;
            pf__buf_put(&raw, text + seg, pos - seg - (more ? 1 : 0));
            if (pos < len) {
                pos = skip_eol(text, len, pos);
                line++;
            }
            if (!more || pos >= len)
                break;
            while (pos < len && is_blank(text[pos]))
                pos++;
            if (breaks_push(&rb, raw.len, line) < 0) {
                rc = -ENOMEM;
                break;
            }
        }
        if (rc == 0 && raw.failed)
            rc = -ENOMEM;
        if (rc == 0)
            rc = add_line(source, &raw, &rb, out, why);
    }
    pf__buf_free(&raw);
    breaks_free(&rb);
    if (rc < 0)
        pf__properties_free(out);
    return rc;
}

void pf__properties_free(pf__properties *props)
{
    for (size_t i = 0; i < props->len; i++)
        property_free(&props->v[i]);
    free(props->v);
    memset(props, 0, sizeof *props);
}

int pf__property_line_at(const pf__property *prop, size_t offset)
{
    int line = prop->line;
    for (size_t i = 0; i < prop->nbreaks && prop->breaks[i] <= offset; i++)
        line = prop->lines[i];
    return line;
}
