/*
 * test_loadgen.c - the load generator (src/bench/loadgen.c,
 * src/bench/http_client.c): the URL, the request bytes and the response
 * parser on their own; then pf_load_run against a real server in a thread
 * of this process (one epoll loop on 127.0.0.1, port 0) that answers in
 * the ways a test asks for: plain, chunked, byte by byte after a 100
 * Continue, closing after each answer (with and without saying so), never,
 * or once after a stall.  Every run is bounded by a request count, a
 * duration or both, and by a per-request timeout.
 */
#include "pf_test.h"

#include "bench/loadgen.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the URL and the request ---- */

static void test_url_parse(void **state)
{
    (void)state;
    static const struct {
        const char *url, *host, *port, *host_hdr, *path;
        bool ipv6;
    } good[] = {
        {"http://127.0.0.1:8080/predictions/m?x=1#frag", "127.0.0.1", "8080", "127.0.0.1:8080",
         "/predictions/m?x=1", false},
        {"http://[::1]:9/", "::1", "9", "[::1]:9", "/", true},
        {"http://[::1]", "::1", "80", "[::1]", "/", true},
        {"http://example", "example", "80", "example", "/", false},
        {"HTTP://my-host.local?q=2", "my-host.local", "80", "my-host.local", "/?q=2", false},
        {"http://h:65535/a/b", "h", "65535", "h:65535", "/a/b", false},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        pf__http_url u;
        char *why = NULL;
        int rc = pf__http_url_parse(good[i].url, &u, &why);
        if (rc < 0)
            fail_msg("%s: %s", good[i].url, why ? why : "?");
        assert_string_equal(u.host, good[i].host);
        assert_string_equal(u.port, good[i].port);
        assert_string_equal(u.host_hdr, good[i].host_hdr);
        assert_string_equal(u.path, good[i].path);
        assert_int_equal(u.ipv6, good[i].ipv6);
        pf__http_url_free(&u);
    }
}

static void test_request_build(void **state)
{
    (void)state;
    pf__http_url u;
    assert_int_equal(pf__http_url_parse("http://127.0.0.1:81/x", &u, NULL), 0);
    pf_load_options o;
    pf_load_options_init(&o);
    char *req = NULL, *why = NULL;
    size_t len = 0;
    bool head = true;
    assert_int_equal(pf__http_request_build(&u, &o, &req, &len, &head, &why), 0);
    assert_string_equal(req, "GET /x HTTP/1.1\r\nHost: 127.0.0.1:81\r\nUser-Agent: pinfer-load\r\n"
                             "Accept: */*\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(len, strlen(req));
    assert_false(head);
    free(req);

    o.body = "{\"a\":1}";
    o.body_len = 7;
    o.content_type = "application/json";
    assert_int_equal(pf__http_request_build(&u, &o, &req, &len, &head, &why), 0);
    assert_true(strncmp(req, "POST /x HTTP/1.1\r\n", 18) == 0);
    assert_non_null(strstr(req, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(req, "\r\nContent-Length: 7\r\n"));
    assert_int_equal(len, strlen(req));
    assert_string_equal(req + len - 11, "\r\n\r\n{\"a\":1}");
    free(req);

    o.body = NULL;
    o.body_len = 0;
    o.content_type = NULL;
    o.method = "HEAD";
    assert_int_equal(pf__http_request_build(&u, &o, &req, &len, &head, &why), 0);
    assert_true(head);
    assert_null(strstr(req, "Content-Length"));
    free(req);
    o.method = "PUT";
    assert_int_equal(pf__http_request_build(&u, &o, &req, &len, &head, &why), 0);
    assert_non_null(strstr(req, "\r\nContent-Length: 0\r\n"));
    free(req);

    o.method = "GE T";
    assert_int_equal(pf__http_request_build(&u, &o, &req, &len, &head, &why), -EINVAL);
    assert_non_null(why);
    free(why);
    why = NULL;
    o.method = NULL;
    o.content_type = "text/plain\r\nX-Evil: 1";
    assert_int_equal(pf__http_request_build(&u, &o, &req, &len, &head, &why), -EINVAL);
    free(why);
    pf__http_url_free(&u);
}

/* ---- the parser ---- */

typedef struct parsed {
    int n;
    int status[8];
    bool close[8];
    size_t end[8]; /* offset just after each answer */
    int rc;        /* the last: 0 (incomplete or clean end), -EPROTO */
    int eof;       /* pf__http_response_eof's, when no error came first */
} parsed;

/* Feed text in pieces of `step` bytes (0: whole), then the close. */
static parsed parse_text(const char *text, size_t len, size_t step, bool head)
{
    parsed r = {.n = 0};
    pf__http_parser p;
    pf__http_parser_init(&p, head);
    size_t at = 0, base = 0;
    while (at < len) {
        size_t n = step && step < len - at ? step : len - at;
        size_t off = 0;
        while (off < n) {
            size_t used = 0;
            int rc = pf__http_response_parse(&p, text + at + off, n - off, &used);
            assert_true(used <= n - off);
            off += used;
            if (rc < 0) {
                assert_non_null(p.error);
                r.rc = rc;
                return r;
            }
            if (rc == 0) {
                assert_int_equal(off, n);
                break;
            }
            assert_true(r.n < 8);
            r.status[r.n] = p.status;
            r.close[r.n] = p.close;
            r.end[r.n] = at + off;
            r.n++;
        }
        at += n;
    }
    (void)base;
    r.eof = pf__http_response_eof(&p);
    if (r.eof == 1) {
        r.status[r.n] = p.status;
        r.close[r.n] = p.close;
        r.end[r.n] = len;
        r.n++;
    } else if (r.eof < 0) {
        r.rc = r.eof;
    }
    return r;
}

static void test_parser(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool head;
        int rc, n;
        int status[3];
        bool close[3];
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 0, 1, {200}, {false}},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n"
         "0\r\nX-Trailer: 1\r\n\r\n",
         false,
         0,
         1,
         {200},
         {false}},
        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length:2\r\n\r\nok",
         false,
         0,
         1,
         {201},
         {false}},
        {"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
         false,
         0,
         2,
         {204, 404},
         {false, false}},
        {"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", true, 0, 1, {200}, {false}},
        {"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.0 200 OK\r\nConnection: "
         "keep-alive\r\nContent-Length: 0\r\n\r\n",
         false,
         0,
         2,
         {200, 200},
         {true, false}},
        {"HTTP/1.1 500 Oops\nConnection: Keep-Alive, close\nContent-Length: 3\n\nabc",
         false,
         0,
         1,
         {500},
         {true}},
        {"HTTP/1.1 200 OK\r\n\r\nuntil the close", false, 0, 1, {200}, {true}},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nbody",
         false,
         0,
         1,
         {200},
         {true}},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 99\r\n\r\n"
         "1\r\nx\r\n0\r\n\r\n",
         false,
         0,
         1,
         {200},
         {false}},
        {"\r\nHTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n", false, 0, 1, {302}, {false}},
        /* Errors. */
        {"SSH-2.0-OpenSSH\r\n", false, -EPROTO, 0, {0}, {false}},
        {"HTTP/1.1 2x0 OK\r\n\r\n", false, -EPROTO, 0, {0}, {false}},
        {"HTTP/1.1 101 Switching\r\n\r\n", false, -EPROTO, 0, {0}, {false}},
        {"HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n", false, -EPROTO, 0, {0}, {false}},
        {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
         false,
         -EPROTO,
         0,
         {0},
         {false}},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
         false,
         -EPROTO,
         0,
         {0},
         {false}},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
         false,
         -EPROTO,
         0,
         {0},
         {false}},
        {"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", false, -EPROTO, 0, {0}, {false}},
        {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", false, -EPROTO, 0, {0}, {false}},
        {"HTTP/1.1 200 OK\r\nContent-Le", false, -EPROTO, 0, {0}, {false}},
        {"HTTP/1.1 100 Continue\r\n\r\n", false, -EPROTO, 0, {0}, {false}},
    };
    const size_t steps[] = {0, 1, 2, 3, 7};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
            parsed r = parse_text(cases[i].text, strlen(cases[i].text), steps[s], cases[i].head);
            if (r.rc != cases[i].rc || r.n != cases[i].n)
                fail_msg("case %zu in pieces of %zu: rc %d, %d answers (expected %d, %d)", i,
                         steps[s], r.rc, r.n, cases[i].rc, cases[i].n);
            for (int k = 0; k < r.n; k++) {
                assert_int_equal(r.status[k], cases[i].status[k]);
                assert_int_equal(r.close[k], cases[i].close[k]);
            }
        }
    }

    /* A 1 MB chunk and a long header line cost nothing and are skipped. */
    size_t big = 1 << 20;
    char *text = malloc(big + 1024);
    assert_non_null(text);
    int n = snprintf(text, 1024,
                     "HTTP/1.1 200 OK\r\nX-Long: %0500d\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "%zx\r\n",
                     7, big);
    memset(text + n, 'x', big);
    memcpy(text + n + big, "\r\n0\r\n\r\n", 7);
    parsed r = parse_text(text, (size_t)n + big + 7, 4096, false);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.end[0], (size_t)n + big + 7);
    free(text);
}

/* ---- the test server ---- */

enum mode {
    M_PLAIN,        /* Content-Length */
    M_CHUNKED,      /* chunked, with an extension and a trailer */
    M_SPLIT,        /* 100 Continue then the answer, one byte per write */
    M_CLOSE,        /* "Connection: close", then closes */
    M_CLOSE_SILENT, /* closes after each answer without saying so */
    M_UNTIL_CLOSE,  /* no length: the body ends at the close */
    M_NEVER,        /* reads, never answers */
    M_STALL,        /* as M_PLAIN, but request number stall_at waits stall_ms first */
};

static const char PLAIN[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n"
                            "\r\nhello";
static const char CHUNKED[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
                              "2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
static const char SPLIT[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: "
                            "5\r\n\r\nhello";
static const char CLOSE[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
static const char UNTIL_CLOSE[] = "HTTP/1.1 200 OK\r\n\r\nhello";
static const char NOT_FOUND[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
static const char FAILED[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops";

#define SRV_FDS 1024
#define SRV_BUF 8192
#define SRV_TIMES 4096

typedef struct server {
    enum mode mode;
    int stall_at, stall_ms;
    int lfd, port, ep, wake[2];
    pthread_t thread;
    atomic_int accepted, requests;
    char *buf[SRV_FDS];
    size_t len[SRV_FDS];
    char last_request[1024]; /* the last request's head and body */
    double times[SRV_TIMES]; /* when each request arrived */
} server;

static void write_all(int fd, const char *p, size_t n, bool one_by_one)
{
    while (n > 0) {
        ssize_t w = send(fd, p, one_by_one ? 1 : n, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, 100);
            continue;
        }
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
        if (one_by_one)
            usleep(30);
    }
}

static void drop(server *s, int fd)
{
    close(fd);
    free(s->buf[fd]);
    s->buf[fd] = NULL;
    s->len[fd] = 0;
}

/* Answer the complete requests in fd's buffer; false when the connection was closed. */
static bool answer(server *s, int fd)
{
    for (;;) {
        char *b = s->buf[fd];
        size_t len = s->len[fd];
        char *end = memmem(b, len, "\r\n\r\n", 4);
        if (!end)
            return true;
        size_t head = (size_t)(end - b) + 4, body = 0;
        for (char *h = b; h && h < end;) {
            if (strncasecmp(h, "content-length:", 15) == 0)
                body = (size_t)strtol(h + 15, NULL, 10);
            char *nl = memchr(h, '\n', (size_t)(end - h));
            h = nl ? nl + 1 : NULL;
        }
        if (len < head + body)
            return true;
        int k = atomic_fetch_add(&s->requests, 1);
        if (k < SRV_TIMES)
            s->times[k] = now_s();
        size_t keep =
            head + body < sizeof s->last_request ? head + body : sizeof s->last_request - 1;
        memcpy(s->last_request, b, keep);
        s->last_request[keep] = '\0';
        memmove(b, b + head + body, len - head - body);
        s->len[fd] = len - head - body;
        if (strncmp(s->last_request, "GET /404 ", 9) == 0) {
            write_all(fd, NOT_FOUND, sizeof NOT_FOUND - 1, false);
            continue;
        }
        if (strncmp(s->last_request, "GET /500 ", 9) == 0) {
            write_all(fd, FAILED, sizeof FAILED - 1, false);
            continue;
        }
        switch (s->mode) {
        case M_PLAIN: write_all(fd, PLAIN, sizeof PLAIN - 1, false); break;
        case M_CHUNKED: write_all(fd, CHUNKED, sizeof CHUNKED - 1, false); break;
        case M_SPLIT: write_all(fd, SPLIT, sizeof SPLIT - 1, true); break;
        case M_CLOSE:
            write_all(fd, CLOSE, sizeof CLOSE - 1, false);
            drop(s, fd);
            return false;
        case M_CLOSE_SILENT:
            write_all(fd, PLAIN, sizeof PLAIN - 1, false);
            drop(s, fd);
            return false;
        case M_UNTIL_CLOSE:
            write_all(fd, UNTIL_CLOSE, sizeof UNTIL_CLOSE - 1, false);
            drop(s, fd);
            return false;
        case M_NEVER: break;
        case M_STALL:
            if (k == s->stall_at)
                usleep((useconds_t)s->stall_ms * 1000);
            write_all(fd, PLAIN, sizeof PLAIN - 1, false);
            break;
        }
    }
}

static void *server_main(void *arg)
{
    server *s = arg;
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(s->ep, events, 64, 1000);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == s->wake[0])
                return NULL;
            if (fd == s->lfd) {
                int c = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (c < 0)
                    continue;
                if (c >= SRV_FDS) {
                    close(c);
                    continue;
                }
                atomic_fetch_add(&s->accepted, 1);
                int one = 1;
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                s->buf[c] = malloc(SRV_BUF);
                s->len[c] = 0;
                struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
                epoll_ctl(s->ep, EPOLL_CTL_ADD, c, &ev);
                continue;
            }
            if (!s->buf[fd])
                continue;
            ssize_t got = recv(fd, s->buf[fd] + s->len[fd], SRV_BUF - s->len[fd], 0);
            if (got < 0 && errno == EAGAIN)
                continue;
            if (got <= 0 || s->len[fd] + (size_t)got >= SRV_BUF) {
                drop(s, fd);
                continue;
            }
            s->len[fd] += (size_t)got;
            answer(s, fd);
        }
    }
}

/* A server on 127.0.0.1 (or ::1 with ipv6), port 0; NULL when ::1 cannot be had. */
static server *server_start(enum mode mode, bool ipv6)
{
    server *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->mode = mode;
    s->stall_at = -1;
    s->lfd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    int rc;
    if (ipv6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        socklen_t len = sizeof a;
        rc = bind(s->lfd, (struct sockaddr *)&a, sizeof a);
        if (rc < 0) {
            close(s->lfd);
            free(s);
            return NULL;
        }
        getsockname(s->lfd, (struct sockaddr *)&a, &len);
        s->port = ntohs(a.sin6_port);
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
        getsockname(s->lfd, (struct sockaddr *)&a, &len);
        s->port = ntohs(a.sin_port);
    }
    assert_int_equal(listen(s->lfd, 128), 0);
    assert_int_equal(pipe(s->wake), 0);
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = s->lfd};
    epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &ev);
    ev.data.fd = s->wake[0];
    epoll_ctl(s->ep, EPOLL_CTL_ADD, s->wake[0], &ev);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
    return s;
}

static void server_stop(server *s)
{
    assert_int_equal(write(s->wake[1], "x", 1), 1);
    pthread_join(s->thread, NULL);
    for (int fd = 0; fd < SRV_FDS; fd++)
        if (s->buf[fd])
            drop(s, fd);
    close(s->lfd);
    close(s->ep);
    close(s->wake[0]);
    close(s->wake[1]);
    free(s);
}

/* ---- runs ---- */

static char url_buf[128];

static const char *url_of(const server *s, const char *path)
{
    snprintf(url_buf, sizeof url_buf, "http://127.0.0.1:%d%s", s->port, path);
    return url_buf;
}

/* Options of a bounded run: n requests (within 10 s at most), 5 s per request. */
static void bounded(pf_load_options *o, const char *url, int connections, int threads, long long n)
{
    pf_load_options_init(o);
    o->url = url;
    o->connections = connections;
    o->threads = threads;
    o->requests = n;
    o->duration_s = 10;
    o->timeout_s = 5;
}

static pf_load_result *run_ok(const pf_load_options *o)
{
    pf_load_result *res = NULL;
    char *why = NULL;
    int rc = pf_load_run(o, &res, &why);
    if (rc < 0)
        fail_msg("pf_load_run(%s): %s", o->url, why ? why : pf_strerror(rc));
    assert_null(why);
    assert_non_null(res);
    assert_non_null(res->latency);
    return res;
}

/* Every request answered 2xx, no error. */
static void assert_all_ok(const pf_load_result *res, long long n)
{
    if (res->completed != n || res->ok != n || res->errors != 0)
        fail_msg("completed %lld, ok %lld, errors %lld (expected %lld, %lld, 0): %s",
                 res->completed, res->ok, res->errors, n, n,
                 res->first_error ? res->first_error : "no error");
    assert_int_equal(pf_histogram_count(res->latency), n);
    assert_true(res->elapsed_s > 0);
    assert_true(res->throughput > 0);
}

static void test_bad_options(void **state)
{
    (void)state;
    static const char *urls[] = {
        "",           "ftp://127.0.0.1/", "https://127.0.0.1/", "http://",
        "http://:80", "http://[::1/",     "http://[::1]x/",     "http://[zz]/",
        "http://h:0", "http://h:65536/",  "http://h:abc/",      "http://h:/",
        "http://u@h", "http://h/a b",     "http://h_%/",        "127.0.0.1:80",
    };
    pf_load_options o;
    for (size_t i = 0; i <= sizeof urls / sizeof *urls; i++) {
        bounded(&o, i < sizeof urls / sizeof *urls ? urls[i] : NULL, 1, 1, 1);
        pf_load_result *res = (pf_load_result *)1;
        char *why = NULL;
        int rc = pf_load_run(&o, &res, &why);
        if (rc != -EINVAL || !why || !*why)
            fail_msg("%s: %d %s", o.url ? o.url : "NULL", rc, why ? why : "no message");
        assert_null(res);
        free(why);
    }
    for (int k = 0; k < 11; k++) {
        bounded(&o, "http://127.0.0.1:9/", 2, 1, 1);
        switch (k) {
        case 0: o.connections = 0; break;
        case 1: o.threads = 0; break;
        case 2: o.rate = -1; break;
        case 3: o.rate = NAN; break;
        case 4:
            o.duration_s = 0;
            o.requests = 0;
            break;
        case 5: o.timeout_s = 0; break;
        case 6: o.warmup_s = -1; break;
        case 7: o.requests = -1; break;
        case 8: o.method = "GE T"; break;
        case 9: o.content_type = "a\r\nb: c"; break;
        case 10: o.body_len = 3; break;
        }
        pf_load_result *res = NULL;
        char *why = NULL;
        int rc = pf_load_run(&o, &res, &why);
        if (rc != -EINVAL || !why || !*why)
            fail_msg("options case %d: %d %s", k, rc, why ? why : "no message");
        assert_null(res);
        free(why);
    }
    pf_load_result_free(NULL);
}

/* Closed loop, a request count: exactly that many, over keep-alive connections. */
static void test_closed_loop_count(void **state)
{
    (void)state;
    server *s = server_start(M_PLAIN, false);
    pf_load_options o;
    bounded(&o, url_of(s, "/"), 4, 2, 200);
    pf_load_result *res = run_ok(&o);
    assert_all_ok(res, 200);
    assert_int_equal(atomic_load(&s->requests), 200);
    assert_int_equal(atomic_load(&s->accepted), 4);
    assert_int_equal(res->bytes_received, 200 * (long long)(sizeof PLAIN - 1));
    assert_null(res->first_error);
    assert_true(pf_histogram_max(res->latency) < 5000000);
    assert_true(strncmp(s->last_request, "GET / HTTP/1.1\r\n", 16) == 0);
    pf_load_result_free(res);
    server_stop(s);
}

/* Hundreds of connections over three threads; more threads than connections are fewer. */
static void test_many_connections(void **state)
{
    (void)state;
    server *s = server_start(M_PLAIN, false);
    pf_load_options o;
    bounded(&o, url_of(s, "/"), 300, 3, 900);
    pf_load_result *res = run_ok(&o);
    assert_all_ok(res, 900);
    assert_int_equal(atomic_load(&s->accepted), 300);
    pf_load_result_free(res);

    atomic_store(&s->accepted, 0);
    bounded(&o, url_of(s, "/"), 2, 8, 20);
    res = run_ok(&o);
    assert_all_ok(res, 20);
    assert_int_equal(atomic_load(&s->accepted), 2);
    pf_load_result_free(res);
    server_stop(s);
}

/* Closed loop for a duration: ends on time, keeps its connections. */
static void test_closed_loop_duration(void **state)
{
    (void)state;
    server *s = server_start(M_PLAIN, false);
    pf_load_options o;
    bounded(&o, url_of(s, "/"), 3, 1, 0);
    o.duration_s = 0.3;
    double t0 = now_s();
    pf_load_result *res = run_ok(&o);
    double took = now_s() - t0;
    assert_true(res->completed > 0);
    assert_all_ok(res, res->completed);
    assert_true(fabs(res->elapsed_s - 0.3) < 0.01);
    assert_true(took >= 0.29 && took < 3);
    assert_int_equal(atomic_load(&s->accepted), 3);
    assert_true(atomic_load(&s->requests) >= res->completed);
    assert_true(fabs(res->throughput - (double)res->ok / res->elapsed_s) < 1e-6);
    pf_load_result_free(res);
    server_stop(s);
}

static void test_chunked(void **state)
{
    (void)state;
    server *s = server_start(M_CHUNKED, false);
    pf_load_options o;
    bounded(&o, url_of(s, "/"), 2, 1, 50);
    pf_load_result *res = run_ok(&o);
    assert_all_ok(res, 50);
    assert_int_equal(atomic_load(&s->accepted), 2);
    assert_int_equal(res->bytes_received, 50 * (long long)(sizeof CHUNKED - 1));
    pf_load_result_free(res);
    server_stop(s);
}

/* Answers that arrive a byte at a time, after a 100 Continue. */
static void test_split_answers(void **state)
{
    (void)state;
    server *s = server_start(M_SPLIT, false);
    pf_load_options o;
    bounded(&o, url_of(s, "/"), 2, 2, 20);
    pf_load_result *res = run_ok(&o);
    assert_all_ok(res, 20);
    assert_int_equal(atomic_load(&s->accepted), 2);
    pf_load_result_free(res);
    server_stop(s);
}

/* A server that closes after each answer: a new connection per request, no error. */
static void test_server_closes(void **state)
{
    (void)state;
    const enum mode modes[] = {M_CLOSE, M_CLOSE_SILENT, M_UNTIL_CLOSE};
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        server *s = server_start(modes[m], false);
        pf_load_options o;
        bounded(&o, url_of(s, "/"), 2, 1, 30);
        pf_load_result *res = run_ok(&o);
        assert_all_ok(res, 30);
        /* The silent close: a request sent before the close was seen is sent again. */
        int accepted = atomic_load(&s->accepted);
        if (accepted < 30 || (modes[m] != M_CLOSE_SILENT && accepted != 30))
            fail_msg("mode %zu: %d connections for 30 answers", m, accepted);
        pf_load_result_free(res);
        server_stop(s);
    }
}

static void test_status_counts(void **state)
{
    (void)state;
    server *s = server_start(M_PLAIN, false);
    pf_load_options o;
    bounded(&o, url_of(s, "/404"), 2, 1, 10);
    pf_load_result *res = run_ok(&o);
    assert_int_equal(res->completed, 10);
    assert_int_equal(res->status_4xx, 10);
    assert_int_equal(res->ok + res->status_5xx + res->status_other + res->errors, 0);
    assert_true(res->throughput == 0);
    assert_int_equal(pf_histogram_count(res->latency), 10);
    pf_load_result_free(res);

    bounded(&o, url_of(s, "/500"), 3, 1, 12);
    res = run_ok(&o);
    assert_int_equal(res->completed, 12);
    assert_int_equal(res->status_5xx, 12);
    assert_int_equal(res->ok + res->status_4xx + res->status_other + res->errors, 0);
    pf_load_result_free(res);
    server_stop(s);
}

/* Nothing listens: each request is a connect error, counted; the run ends. */
static void test_connection_refused(void **state)
{
    (void)state;
    /* A port that is bound but not listening refuses, and no one else can take it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(a.sin_port));
    pf_load_options o;
    bounded(&o, url, 2, 2, 20);
    double t0 = now_s();
    pf_load_result *res = run_ok(&o);
    assert_true(now_s() - t0 < 5);
    assert_int_equal(res->completed, 0);
    assert_int_equal(res->errors, 20);
    assert_non_null(res->first_error);
    assert_non_null(strstr(res->first_error, "refused"));
    assert_null(strchr(res->first_error, '\n'));
    assert_int_equal(pf_histogram_count(res->latency), 0);
    pf_load_result_free(res);

    /* For a duration, in an open loop too. */
    bounded(&o, url, 2, 1, 0);
    o.duration_s = 0.2;
    o.rate = 100;
    res = run_ok(&o);
    assert_int_equal(res->completed, 0);
    assert_true(res->errors > 0);
    assert_non_null(res->first_error);
    pf_load_result_free(res);
    close(fd);
}

/* A server that never answers: each request fails at its timeout, on a new connection. */
static void test_timeout(void **state)
{
    (void)state;
    server *s = server_start(M_NEVER, false);
    pf_load_options o;
    bounded(&o, url_of(s, "/"), 2, 1, 4);
    o.timeout_s = 0.2;
    double t0 = now_s();
    pf_load_result *res = run_ok(&o);
    double took = now_s() - t0;
    assert_int_equal(res->completed, 0);
    assert_int_equal(res->errors, 4);
    assert_non_null(res->first_error);
    assert_non_null(strstr(res->first_error, "timeout"));
    if (took < 0.39 || took > 4)
        fail_msg("4 timeouts of 0.2 s on 2 connections took %.3f s", took);
    assert_true(atomic_load(&s->accepted) >= 3);
    pf_load_result_free(res);
    server_stop(s);
}

/*
 * Open loop at 200 requests/s for 1 s; the server stalls 300 ms once, on
 * its 20th request.  Every request due during the stall is charged from
 * its due time: the slowest is about 300 ms, and far more than the 4 in
 * flight (the connections) are slow: with coordinated omission only those
 * 4 would be.
 */
static void test_open_loop_stall(void **state)
{
    (void)state;
    server *s = server_start(M_STALL, false);
    s->stall_at = 20;
    s->stall_ms = 300;
    pf_load_options o;
    bounded(&o, url_of(s, "/"), 4, 1, 0);
    o.rate = 200;
    o.duration_s = 1.0;
    pf_load_result *res = run_ok(&o);
    long long max = pf_histogram_max(res->latency), p99 = pf_histogram_percentile(res->latency, 99),
              p95 = pf_histogram_percentile(res->latency, 95);
    if (max < 300000 || p99 < 200000 || p95 < 100000)
        fail_msg("a 300 ms stall seen as p95 %lld us, p99 %lld us, max %lld us", p95, p99, max);
    assert_true(res->completed >= 100 && res->completed <= 201);
    assert_int_equal(res->errors, 0);
    pf_load_result_free(res);
    server_stop(s);
}

/* Open loop: the rate is kept, spread over the window, never exceeded. */
static void test_open_loop_rate(void **state)
{
    (void)state;
    server *s = server_start(M_PLAIN, false);
    pf_load_options o;
    bounded(&o, url_of(s, "/"), 4, 2, 0);
    o.rate = 400;
    o.duration_s = 0.5;
    double t0 = now_s();
    pf_load_result *res = run_ok(&o);
    int n = atomic_load(&s->requests);
    if (res->completed < 100 || res->completed > 201 || n > 202)
        fail_msg("400/s for 0.5 s: %lld answers, %d requests", res->completed, n);
    assert_int_equal(res->errors, 0);
    /* Spread: the first quarter of the window saw no more than its share (and a margin). */
    int early = 0;
    for (int i = 0; i < n && i < SRV_TIMES; i++)
        early += s->times[i] < t0 + 0.125;
    if (early > 0.4 * n)
        fail_msg("%d of %d requests in the first quarter of the window", early, n);
    pf_load_result_free(res);

    /* A request count in an open loop, after a warm-up: exactly that many measured. */
    atomic_store(&s->requests, 0);
    bounded(&o, url_of(s, "/"), 2, 1, 30);
    o.rate = 300;
    o.warmup_s = 0.1;
    res = run_ok(&o);
    assert_all_ok(res, 30);
    n = atomic_load(&s->requests);
    assert_true(n >= 55 && n <= 62); /* 30 in the warm-up (0.1 s at 300/s), 30 measured */
    assert_true(res->elapsed_s > 0.05 && res->elapsed_s < 2);
    pf_load_result_free(res);
    server_stop(s);
}

/* A warm-up is run but not counted. */
static void test_warmup(void **state)
{
    (void)state;
    server *s = server_start(M_PLAIN, false);
    pf_load_options o;
    bounded(&o, url_of(s, "/"), 2, 1, 0);
    o.warmup_s = 0.15;
    o.duration_s = 0.15;
    pf_load_result *res = run_ok(&o);
    assert_true(res->completed > 0);
    assert_true(atomic_load(&s->requests) > res->completed + 5);
    assert_true(fabs(res->elapsed_s - 0.15) < 0.01);
    pf_load_result_free(res);
    server_stop(s);
}

typedef struct progress_seen {
    pthread_t caller;
    int calls;
    bool other_thread;
    double last_elapsed;
    bool not_increasing;
    long long completed;
} progress_seen;

static bool on_progress(const pf_load_progress *p, void *ctx)
{
    progress_seen *seen = ctx;
    if (!pthread_equal(pthread_self(), seen->caller))
        seen->other_thread = true;
    if (seen->calls > 0 && p->elapsed_s <= seen->last_elapsed)
        seen->not_increasing = true;
    seen->last_elapsed = p->elapsed_s;
    seen->completed = p->completed;
    return ++seen->calls < 3;
}

/* Progress from the calling thread, about every interval; false stops the run. */
static void test_progress(void **state)
{
    (void)state;
    server *s = server_start(M_PLAIN, false);
    pf_load_options o;
    bounded(&o, url_of(s, "/"), 2, 2, 0);
    o.duration_s = 8;
    o.progress = on_progress;
    o.progress_interval_s = 0.05;
    progress_seen seen = {.caller = pthread_self()};
    o.ctx = &seen;
    double t0 = now_s();
    pf_load_result *res = run_ok(&o);
    double took = now_s() - t0;
    assert_int_equal(seen.calls, 3);
    assert_false(seen.other_thread);
    assert_false(seen.not_increasing);
    assert_true(took < 3);
    assert_true(res->elapsed_s < 3);
    assert_true(res->completed >= seen.completed);
    assert_true(seen.completed > 0);
    pf_load_result_free(res);
    server_stop(s);
}

/* A body, its type and length reach the server; the method defaults to POST. */
static void test_post_body(void **state)
{
    (void)state;
    server *s = server_start(M_PLAIN, false);
    pf_load_options o;
    bounded(&o, url_of(s, "/predictions/m?x=1"), 1, 1, 3);
    o.body = "hello";
    o.body_len = 5;
    o.content_type = "application/json";
    pf_load_result *res = run_ok(&o);
    assert_all_ok(res, 3);
    assert_true(strncmp(s->last_request, "POST /predictions/m?x=1 HTTP/1.1\r\n", 34) == 0);
    assert_non_null(strstr(s->last_request, "\r\nContent-Length: 5\r\n"));
    assert_non_null(strstr(s->last_request, "\r\nContent-Type: application/json\r\n"));
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%d\r\n", s->port);
    assert_non_null(strstr(s->last_request, host));
    assert_string_equal(s->last_request + strlen(s->last_request) - 9, "\r\n\r\nhello");
    pf_load_result_free(res);
    server_stop(s);
}

/* A name (localhost: maybe ::1 first, the server is on 127.0.0.1) and an IPv6 literal. */
static void test_names_and_ipv6(void **state)
{
    (void)state;
    server *s = server_start(M_PLAIN, false);
    char url[64];
    snprintf(url, sizeof url, "http://localhost:%d/", s->port);
    pf_load_options o;
    bounded(&o, url, 2, 1, 10);
    pf_load_result *res = run_ok(&o);
    assert_all_ok(res, 10);
    pf_load_result_free(res);
    server_stop(s);

    s = server_start(M_PLAIN, true);
    if (!s)
        SKIP_BECAUSE("no IPv6 loopback (::1) here");
    snprintf(url, sizeof url, "http://[::1]:%d/", s->port);
    bounded(&o, url, 2, 1, 10);
    res = run_ok(&o);
    assert_all_ok(res, 10);
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: [::1]:%d\r\n", s->port);
    assert_non_null(strstr(s->last_request, host));
    pf_load_result_free(res);
    server_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_request_build),
        cmocka_unit_test(test_parser),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_closed_loop_count),
        cmocka_unit_test(test_many_connections),
        cmocka_unit_test(test_closed_loop_duration),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_split_answers),
        cmocka_unit_test(test_server_closes),
        cmocka_unit_test(test_status_counts),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_open_loop_stall),
        cmocka_unit_test(test_open_loop_rate),
        cmocka_unit_test(test_warmup),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_post_body),
        cmocka_unit_test(test_names_and_ipv6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
