/* json.c - the JSON writer of json.h. */
#include "base/json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void pf__json_init(pf__json *w)
{
    memset(w, 0, sizeof *w);
}

/* Before any value or key: the separator its position needs. */
static void separate(pf__json *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->need_comma[w->depth])
        pf__buf_puts(&w->out, ", ");
    w->need_comma[w->depth] = true;
}

static void open_container(pf__json *w, const char *c)
{
    separate(w);
    pf__buf_puts(&w->out, c);
    if (w->depth + 1 < PF__JSON_MAX_DEPTH)
        w->depth++;
    else
        w->out.failed = true; /* deeper than any document of ours: a bug */
    w->need_comma[w->depth] = false;
}

static void close_container(pf__json *w, const char *c)
{
    pf__buf_puts(&w->out, c);
    if (w->depth > 0)
        w->depth--;
}

void pf__json_begin_object(pf__json *w)
{
    open_container(w, "{");
}

void pf__json_end_object(pf__json *w)
{
    close_container(w, "}");
}

void pf__json_begin_array(pf__json *w)
{
    open_container(w, "[");
}

void pf__json_end_array(pf__json *w)
{
    close_container(w, "]");
}

/*
 * The length of the well-formed UTF-8 sequence at p (1 to 4), or 0 when it
 * is not one: a stray continuation byte, a truncated sequence, an overlong
 * form, a surrogate or a code point above U+10FFFF.
 */
static size_t utf8_length(const unsigned char *p)
{
    size_t n = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 0;
    if (n == 0 || *p >= 0xf5 || *p == 0xc0 || *p == 0xc1)
        return 0;
    for (size_t k = 1; k < n; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    if ((*p == 0xe0 && p[1] < 0xa0) || (*p == 0xed && p[1] >= 0xa0) ||
        (*p == 0xf0 && p[1] < 0x90) || (*p == 0xf4 && p[1] >= 0x90))
        return 0;
    return n;
}

/*
 * A JSON string: quotes, backslashes and control characters escaped; UTF-8
 * passes through; a byte that is not part of well-formed UTF-8 (a file name
 * in Latin-1, say) becomes U+FFFD, so that the document is always valid.
 */
static void put_escaped(pf__buf *out, const char *s)
{
    pf__buf_puts(out, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80) {
            size_t n = utf8_length(p);
            if (n == 0) {
                pf__buf_puts(out, "\\ufffd");
            } else {
                pf__buf_put(out, (const char *)p, n);
                p += n - 1;
            }
            continue;
        }
        switch (*p) {
        case '"': pf__buf_puts(out, "\\\""); break;
        case '\\': pf__buf_puts(out, "\\\\"); break;
        case '\n': pf__buf_puts(out, "\\n"); break;
        case '\t': pf__buf_puts(out, "\\t"); break;
        case '\r': pf__buf_puts(out, "\\r"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                pf__buf_printf(out, "\\u%04x", *p);
            else
                pf__buf_put(out, (const char *)p, 1);
        }
    }
    pf__buf_puts(out, "\"");
}

void pf__json_key(pf__json *w, const char *key)
{
    separate(w);
    put_escaped(&w->out, key);
    pf__buf_puts(&w->out, ": ");
    w->after_key = true;
}

void pf__json_string(pf__json *w, const char *s)
{
    separate(w);
    if (s)
        put_escaped(&w->out, s);
    else
        pf__buf_puts(&w->out, "null");
}

void pf__json_int(pf__json *w, long long v)
{
    separate(w);
    pf__buf_printf(&w->out, "%lld", v);
}

void pf__json_double(pf__json *w, double v)
{
    separate(w);
    char text[PF__DOUBLE_TEXT];
    pf__format_double(v, text);
    pf__buf_puts(&w->out, text);
}

void pf__json_bool(pf__json *w, bool v)
{
    separate(w);
    pf__buf_puts(&w->out, v ? "true" : "false");
}

void pf__json_null(pf__json *w)
{
    separate(w);
    pf__buf_puts(&w->out, "null");
}

void pf__json_int_array(pf__json *w, const int *v, size_t n)
{
    pf__json_begin_array(w);
    for (size_t i = 0; i < n; i++)
        pf__json_int(w, v[i]);
    pf__json_end_array(w);
}

void pf__json_string_array(pf__json *w, char *const *v, size_t n)
{
    pf__json_begin_array(w);
    for (size_t i = 0; i < n; i++)
        pf__json_string(w, v[i]);
    pf__json_end_array(w);
}

void pf__json_member_int(pf__json *w, const char *key, long long v)
{
    pf__json_key(w, key);
    pf__json_int(w, v);
}

void pf__json_member_string(pf__json *w, const char *key, const char *s)
{
    pf__json_key(w, key);
    pf__json_string(w, s);
}

int pf__json_finish(pf__json *w, char **out)
{
    pf__buf_puts(&w->out, "\n");
    return pf__buf_take(&w->out, out);
}

void pf__json_raw(pf__json *w, const char *json)
{
    separate(w);
    pf__buf_puts(&w->out, json);
}
