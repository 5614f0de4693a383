/* json.c - the minimal JSON writer of json.h. */
#include "json.h"

void json_init(json_writer *w, FILE *out)
{
    w->out = out;
    w->depth = 0;
    w->need_comma[0] = false;
    w->after_key = false;
}

/* Before any value or key: the separator its position needs. */
static void separate(json_writer *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->need_comma[w->depth])
        fputs(", ", w->out);
    w->need_comma[w->depth] = true;
}

static void open_container(json_writer *w, char c)
{
    separate(w);
    fputc(c, w->out);
    if (w->depth + 1 < JSON_MAX_DEPTH)
        w->depth++;
    w->need_comma[w->depth] = false;
}

static void close_container(json_writer *w, char c)
{
    fputc(c, w->out);
    if (w->depth > 0)
        w->depth--;
}

void json_begin_object(json_writer *w)
{
    open_container(w, '{');
}
void json_end_object(json_writer *w)
{
    close_container(w, '}');
}
void json_begin_array(json_writer *w)
{
    open_container(w, '[');
}
void json_end_array(json_writer *w)
{
    close_container(w, ']');
}

static void write_escaped(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '\r': fputs("\\r", out); break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

void json_key(json_writer *w, const char *key)
{
    separate(w);
    write_escaped(w->out, key);
    fputs(": ", w->out);
    w->after_key = true;
}

void json_string(json_writer *w, const char *s)
{
    separate(w);
    if (s)
        write_escaped(w->out, s);
    else
        fputs("null", w->out);
}

void json_int(json_writer *w, long long v)
{
    separate(w);
    fprintf(w->out, "%lld", v);
}

void json_bool(json_writer *w, bool v)
{
    separate(w);
    fputs(v ? "true" : "false", w->out);
}

void json_null(json_writer *w)
{
    separate(w);
    fputs("null", w->out);
}

void json_int_array(json_writer *w, const int *v, size_t n)
{
    json_begin_array(w);
    for (size_t i = 0; i < n; i++)
        json_int(w, v[i]);
    json_end_array(w);
}

void json_finish(json_writer *w)
{
    fputc('\n', w->out);
}
