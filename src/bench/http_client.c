/*
 * http_client.c - what the load generator knows of HTTP/1.1, without a
 * socket: the URL, the request's bytes (built once, sent as they are for
 * every request) and an incremental response parser.
 *
 * The parser is written for a client that sends one request at a time on a
 * connection and needs of each answer only its status, where it ends and
 * whether the connection stays open.  It takes the bytes as they arrive:
 * lines (the status line, headers, chunk sizes, trailers) are gathered in a
 * small buffer up to their '\n' (of a long line only the first
 * PF__HTTP_LINE_MAX - 1 bytes are kept: enough for the headers it reads),
 * bodies and chunk data are counted and skipped.  So an answer split into
 * single bytes, several answers in one read, and a 1 GB body all cost the
 * same memory: none.
 */
#include "bench/loadgen.h"

#include "base/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the URL ---- */

void pf__http_url_free(pf__http_url *u)
{
    if (!u)
        return;
    free(u->host);
    free(u->host_hdr);
    free(u->port);
    free(u->path);
    memset(u, 0, sizeof *u);
}

static bool host_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

static bool ipv6_char(char c)
{
    return isxdigit((unsigned char)c) || c == ':' || c == '.';
}

int pf__http_url_parse(const char *url, pf__http_url *out, char **why)
{
    memset(out, 0, sizeof *out);
    if (!url || !*url)
        return pf__fail(why, -EINVAL, "no URL given");
    if (strncasecmp(url, "https://", 8) == 0)
        return pf__fail(why, -EINVAL, "%s: https is not supported (http:// only)", url);
    if (strncasecmp(url, "http://", 7) != 0)
        return pf__fail(why, -EINVAL, "%s: not an http:// URL", url);
    const char *auth = url + 7;
    size_t alen = strcspn(auth, "/?#");
    const char *end = auth + alen;
    const char *host = auth, *host_end, *port = NULL;
    if (memchr(auth, '@', alen))
        return pf__fail(why, -EINVAL, "%s: user names in URLs are not supported", url);
    if (*auth == '[') {
        const char *close = memchr(auth, ']', alen);
        if (!close)
            return pf__fail(why, -EINVAL, "%s: no ']' after the IPv6 address", url);
        host = auth + 1;
        host_end = close;
        for (const char *c = host; c < host_end; c++)
            if (!ipv6_char(*c))
                return pf__fail(why, -EINVAL, "%s: not an IPv6 address in brackets", url);
        if (close + 1 < end && close[1] != ':')
            return pf__fail(why, -EINVAL, "%s: ':PORT' or '/' expected after ']'", url);
        out->ipv6 = true;
        if (close + 1 < end)
            port = close + 2;
    } else {
        host_end = memchr(auth, ':', alen);
        if (host_end)
            port = host_end + 1;
        else
            host_end = end;
        for (const char *c = host; c < host_end; c++)
            if (!host_char(*c))
                return pf__fail(why, -EINVAL, "%s: '%c' in the host name", url, *c);
    }
    if (host_end == host)
        return pf__fail(why, -EINVAL, "%s: no host", url);
    long portnum = 80;
    if (port && pf__parse_int(port, (size_t)(end - port), 1, 65535, &portnum) < 0)
        return pf__fail(why, -EINVAL, "%s: the port is not a number from 1 to 65535", url);
    /* The path with its query, up to a fragment (which is never sent). */
    size_t plen = strcspn(end, "#");
    for (size_t i = 0; i < plen; i++)
        if ((unsigned char)end[i] <= 0x20 || end[i] == 0x7f)
            return pf__fail(why, -EINVAL, "%s: a space or control character in the path", url);
    int hlen = (int)(host_end - host);
    out->host = pf__strdupf("%.*s", hlen, host);
    out->port = pf__strdupf("%ld", portnum);
    if (out->ipv6)
        out->host_hdr = port ? pf__strdupf("[%.*s]:%ld", hlen, host, portnum)
                             : pf__strdupf("[%.*s]", hlen, host);
    else
        out->host_hdr =
            port ? pf__strdupf("%.*s:%ld", hlen, host, portnum) : pf__strdupf("%.*s", hlen, host);
    out->path = pf__strdupf("%s%.*s", plen && *end == '/' ? "" : "/", (int)plen, end);
    if (!out->host || !out->port || !out->host_hdr || !out->path) {
        pf__http_url_free(out);
        return pf__fail(why, -ENOMEM, "out of memory");
    }
    return 0;
}

/* ---- the request ---- */

/* RFC 9110's tchar. */
static bool token_char(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

int pf__http_request_build(const pf__http_url *u, const pf_load_options *opts, char **out,
                           size_t *len, bool *head, char **why)
{
    *out = NULL;
    *len = 0;
    bool has_body = opts->body && opts->body_len > 0;
    const char *method = opts->method ? opts->method : has_body ? "POST" : "GET";
    if (!*method)
        return pf__fail(why, -EINVAL, "empty HTTP method");
    for (const char *c = method; *c; c++)
        if (!token_char(*c))
            return pf__fail(why, -EINVAL, "'%s' is not an HTTP method", method);
    const char *ctype = opts->content_type;
    if (ctype && strpbrk(ctype, "\r\n"))
        return pf__fail(why, -EINVAL, "a line break in the content type");
    if (!ctype && has_body)
        ctype = "application/octet-stream";
    /* A method that carries a body says its length even when it is 0. */
    bool with_length =
        has_body || !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");

    pf__buf b = {0};
    pf__buf_printf(&b,
                   "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pinfer-load\r\nAccept: */*\r\n"
                   "Connection: keep-alive\r\n",
                   method, u->path, u->host_hdr);
    if (ctype)
        pf__buf_printf(&b, "Content-Type: %s\r\n", ctype);
    if (with_length)
        pf__buf_printf(&b, "Content-Length: %zu\r\n", has_body ? opts->body_len : 0);
    pf__buf_puts(&b, "\r\n");
    if (has_body)
        pf__buf_put(&b, opts->body, opts->body_len);
    size_t n = b.len;
    if (pf__buf_take(&b, out) < 0)
        return pf__fail(why, -ENOMEM, "out of memory");
    *len = n;
    *head = !strcmp(method, "HEAD");
    return 0;
}

/* ---- the response parser ---- */

enum {
    ST_STATUS,     /* the status line (empty lines before it are skipped) */
    ST_HEADER,     /* header lines up to the empty one */
    ST_BODY,       /* `remaining` bytes of a Content-Length body */
    ST_CHUNK_SIZE, /* a chunk-size line */
    ST_CHUNK_DATA, /* `remaining` bytes of a chunk */
    ST_CHUNK_END,  /* the empty line after a chunk's data */
    ST_TRAILER,    /* trailer lines up to the empty one */
    ST_UNTIL_CLOSE,
    ST_ERROR,
};

static void begin_answer(pf__http_parser *p)
{
    p->state = ST_STATUS;
    p->started = false;
    p->cur_status = 0;
    p->cur_close = p->chunked = p->until_close = p->has_length = p->keep_alive = p->http10 = false;
    p->length = p->remaining = 0;
    p->head_bytes = 0;
    p->line_len = 0;
    p->line_long = false;
}

void pf__http_parser_init(pf__http_parser *p, bool head_request)
{
    memset(p, 0, sizeof *p);
    p->head_request = head_request;
    begin_answer(p);
}

static int fail(pf__http_parser *p, const char *msg)
{
    p->state = ST_ERROR;
    p->error = msg;
    return -EPROTO;
}

/* Skip optional white space at both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
}

static bool name_is(const char *name, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(name, want, n) == 0;
}

/* Whether the comma-separated list [s, e) holds `token` (any case). */
static bool list_has(const char *s, const char *e, const char *token)
{
    while (s < e) {
        const char *comma = memchr(s, ',', (size_t)(e - s));
        const char *te = comma ? comma : e, *ts = s;
        trim(&ts, &te);
        if (name_is(ts, (size_t)(te - ts), token))
            return true;
        s = comma ? comma + 1 : e;
    }
    return false;
}

/* Whether the last element of the comma-separated list [s, e) is `token`. */
static bool list_ends_with(const char *s, const char *e, const char *token)
{
    const char *last = s;
    for (const char *c = s; c < e; c++)
        if (*c == ',')
            last = c + 1;
    trim(&last, &e);
    return name_is(last, (size_t)(e - last), token);
}

static int status_line(pf__http_parser *p, const char *s, size_t n)
{
    /* "HTTP/1.x SSS[ reason]" */
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)s[7]) || s[8] != ' ' ||
        !isdigit((unsigned char)s[9]) || !isdigit((unsigned char)s[10]) ||
        !isdigit((unsigned char)s[11]) || (n > 12 && s[12] != ' '))
        return fail(p, "not an HTTP/1.x status line");
    p->http10 = s[7] == '0';
    p->cur_status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (p->cur_status < 100)
        return fail(p, "a status code below 100");
    if (p->cur_status == 101)
        return fail(p, "101 Switching Protocols answered to a plain request");
    p->state = ST_HEADER;
    return 0;
}

static int header_line(pf__http_parser *p, const char *s, size_t n, bool long_line)
{
    if (*s == ' ' || *s == '\t')
        return 0; /* an obsolete folded continuation: of no header read here */
    const char *colon = memchr(s, ':', n);
    if (!colon || colon == s)
        return fail(p, "a header line without a name");
    size_t nlen = (size_t)(colon - s);
    const char *v = colon + 1, *ve = s + n;
    bool length = name_is(s, nlen, "content-length");
    bool te = name_is(s, nlen, "transfer-encoding");
    bool conn = name_is(s, nlen, "connection");
    if ((length || te || conn) && long_line)
        return fail(p, "a framing header line too long");
    trim(&v, &ve);
    if (length) {
        long long value = 0;
        if (v == ve)
            return fail(p, "an empty Content-Length");
        for (const char *c = v; c < ve; c++) {
            if (!isdigit((unsigned char)*c) || value > (1ll << 56))
                return fail(p, "a Content-Length that is not a number");
            value = value * 10 + (*c - '0');
        }
        if (p->has_length && value != p->length)
            return fail(p, "two different Content-Length headers");
        p->has_length = true;
        p->length = value;
    } else if (te) {
        /* Chunked when it is the last coding; any other: the body ends at the close. */
        p->chunked = list_ends_with(v, ve, "chunked");
        p->until_close = !p->chunked;
    } else if (conn) {
        if (list_has(v, ve, "close"))
            p->cur_close = true;
        if (list_has(v, ve, "keep-alive"))
            p->keep_alive = true;
    }
    return 0;
}

/* The head ended: choose how the body is framed.  1 when the answer is already complete. */
static int head_done(pf__http_parser *p)
{
    if (p->http10 && !p->keep_alive)
        p->cur_close = true;
    if (p->cur_status < 200) {
        /* An interim answer (100 Continue, 103 Early Hints): the real one follows. */
        begin_answer(p);
        p->started = true;
        return 0;
    }
    if (p->head_request || p->cur_status == 204 || p->cur_status == 304)
        return 1;
    if (p->chunked) {
        p->state = ST_CHUNK_SIZE;
        return 0;
    }
    if (p->has_length && !p->until_close) {
        if (p->length == 0)
            return 1;
        p->remaining = p->length;
        p->state = ST_BODY;
        return 0;
    }
    p->cur_close = true;
    p->state = ST_UNTIL_CLOSE;
    return 0;
}

/* An answer completed: publish it, be ready for the next.  Returns 1. */
static int answer_done(pf__http_parser *p)
{
    p->status = p->cur_status;
    p->close = p->cur_close;
    begin_answer(p);
    return 1;
}

static int chunk_size_line(pf__http_parser *p, const char *s, size_t n, bool long_line)
{
    long long size = 0;
    size_t i = 0;
    for (; i < n && isxdigit((unsigned char)s[i]); i++) {
        if (size > (1ll << 56))
            return fail(p, "a chunk size too large");
        int c = (unsigned char)s[i];
        size = size * 16 + (isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10));
    }
    if (i == 0)
        return fail(p, "a chunk size that is not hexadecimal");
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i < n && s[i] != ';')
        return fail(p, "garbage after a chunk size");
    if (i == n && long_line)
        return fail(p, "a chunk size line too long");
    if (size == 0) {
        p->state = ST_TRAILER;
    } else {
        p->remaining = size;
        p->state = ST_CHUNK_DATA;
    }
    return 0;
}

/* A whole line is in p->line (its '\n' and a '\r' before it removed).  1: the answer completed. */
static int line_done(pf__http_parser *p)
{
    const char *s = p->line;
    size_t n = p->line_len;
    p->line_len = 0;
    bool long_line = p->line_long;
    p->line_long = false;
    switch (p->state) {
    case ST_STATUS:
        if (n == 0 && !long_line)
            return 0; /* an empty line before the status line is tolerated */
        return status_line(p, s, n);
    case ST_HEADER:
        if (n == 0 && !long_line)
            return head_done(p);
        return header_line(p, s, n, long_line);
    case ST_CHUNK_SIZE: return chunk_size_line(p, s, n, long_line);
    case ST_CHUNK_END:
        if (n != 0 || long_line)
            return fail(p, "no line end after a chunk's data");
        p->state = ST_CHUNK_SIZE;
        return 0;
    case ST_TRAILER: return n == 0 && !long_line ? 1 : 0;
    default: return fail(p, "internal parser state");
    }
}

/*
 * Take bytes of a line up to its '\n'.  Returns how many were taken; *ended
 * when the '\n' was among them.
 */
static size_t take_line(pf__http_parser *p, const char *data, size_t len, bool *ended)
{
    const char *nl = memchr(data, '\n', len);
    size_t n = nl ? (size_t)(nl - data) + 1 : len;
    size_t text = nl ? n - 1 : n;
    size_t room = sizeof p->line - 1 - p->line_len;
    if (text > room) {
        text = room;
        p->line_long = true;
    }
    memcpy(p->line + p->line_len, data, text);
    p->line_len += text;
    *ended = nl != NULL;
    if (nl && p->line_len > 0 && p->line[p->line_len - 1] == '\r' && !p->line_long)
        p->line_len--;
    /* A '\r' kept at the end of a truncated line is of no importance: its tail was cut anyway. */
    p->line[p->line_len] = '\0';
    return n;
}

int pf__http_response_parse(pf__http_parser *p, const char *data, size_t len, size_t *used)
{
    size_t at = 0;
    *used = 0;
    if (p->state == ST_ERROR)
        return -EPROTO;
    while (at < len) {
        const char *d = data + at;
        size_t left = len - at;
        switch (p->state) {
        case ST_BODY:
        case ST_CHUNK_DATA: {
            size_t n = (unsigned long long)p->remaining < left ? (size_t)p->remaining : left;
            p->remaining -= (long long)n;
            at += n;
            if (p->remaining > 0)
                break;
            if (p->state == ST_CHUNK_DATA) {
                p->state = ST_CHUNK_END;
                break;
            }
            *used = at;
            return answer_done(p);
        }
        case ST_UNTIL_CLOSE: at = len; break;
        default: {
            bool ended;
            size_t n = take_line(p, d, left, &ended);
            at += n;
            p->started = true;
            if (p->state <= ST_HEADER || p->state == ST_TRAILER) {
                p->head_bytes += n;
                if (p->head_bytes > PF__HTTP_HEAD_MAX)
                    return fail(p, "an answer's head too large");
            }
            if (!ended)
                break;
            int rc = line_done(p);
            if (rc < 0) {
                *used = at;
                return rc;
            }
            if (rc == 1) {
                *used = at;
                return answer_done(p);
            }
        }
        }
    }
    *used = at;
    return 0;
}

int pf__http_response_eof(pf__http_parser *p)
{
    if (p->state == ST_ERROR)
        return -EPROTO;
    if (p->state == ST_UNTIL_CLOSE)
        return answer_done(p);
    if (p->state == ST_STATUS && !p->started)
        return 0;
    return fail(p, "the connection closed in the middle of an answer");
}
