/*
 * test_serve_http.c - the HTTP listener module (src/serve/http.c) on a real
 * socket: port 0, a request answered at once, one answered later (deferred,
 * then resumed), keep-alive, a body over the limit answered 413 from its
 * headers before the body is sent, query and header access, and an https
 * address refused.  The client is a plain socket in this process; the
 * listener is driven by polling its fd, as the server does.
 */
#include "pf_test.h"

#include "server/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct seen {
    int calls;
    char path[256];
    char query[64];
    char header[64];
    size_t body_len;
    pf__http_request *deferred;
} seen;

static void handler(void *ctx, pf__http_request *req)
{
    seen *s = ctx;
    s->calls++;
    snprintf(s->path, sizeof s->path, "%s", pf__http_path(req));
    const char *q = pf__http_query(req, "x");
    snprintf(s->query, sizeof s->query, "%s", q ? q : "");
    const char *h = pf__http_header(req, "x-test");
    snprintf(s->header, sizeof s->header, "%s", h ? h : "");
    pf__http_body(req, &s->body_len);
    if (strcmp(pf__http_path(req), "/later") == 0) {
        pf__http_defer(req);
        s->deferred = req;
        return;
    }
    pf__http_respond_text(req, 200, "text/plain", "hello\n");
}

static pf__http_listener *start(seen *s, size_t max_body)
{
    pf_serve_address addr = {.https = false, .host = "127.0.0.1", .port = 0};
    pf__http_options o = {
        .max_body = max_body, .max_conns = 16, .idle_timeout = 10, .handler = handler, .ctx = s};
    pf__http_listener *l = NULL;
    char *why = NULL;
    int rc = pf__http_listen(&addr, &o, &l, &why);
    if (rc < 0)
        fail_msg("listen: %s", why ? why : pf_strerror(rc));
    assert_true(pf__http_port(l) > 0);
    return l;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_all(int fd, const char *text)
{
    size_t n = strlen(text);
    assert_int_equal(send(fd, text, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Drive the listener until `fd` has a whole answer (headers and Content-Length bytes). */
static void read_answer(pf__http_listener *l, int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (int round = 0; round < 400; round++) {
        struct pollfd p[2] = {{pf__http_fd(l), POLLIN, 0}, {fd, POLLIN, 0}};
        poll(p, 2, 10);
        pf__http_run(l);
        if (p[1].revents & POLLIN) {
            ssize_t n = recv(fd, buf + got, cap - 1 - got, MSG_DONTWAIT);
            if (n > 0)
                got += (size_t)n;
            buf[got] = '\0';
            const char *end = strstr(buf, "\r\n\r\n");
            const char *cl = strcasestr(buf, "Content-Length:");
            if (end && cl && got >= (size_t)(end + 4 - buf) + strtoul(cl + 15, NULL, 10))
                return;
            if (n == 0)
                return;
        }
    }
    fail_msg("no whole answer within 4 s; got '%s'", buf);
}

static void test_answer_and_keep_alive(void **state)
{
    (void)state;
    seen s = {0};
    pf__http_listener *l = start(&s, 1024);
    int fd = connect_to(pf__http_port(l));
    char buf[4096];
    for (int i = 0; i < 2; i++) { /* one connection, two requests */
        send_all(fd, "POST /a/b?x=42 HTTP/1.1\r\nHost: t\r\nX-Test: yes\r\n"
                     "Content-Length: 5\r\n\r\nabcde");
        read_answer(l, fd, buf, sizeof buf);
        assert_non_null(strstr(buf, "HTTP/1.1 200"));
        assert_non_null(strstr(buf, "hello"));
    }
    assert_int_equal(s.calls, 2);
    assert_string_equal(s.path, "/a/b");
    assert_string_equal(s.query, "42");
    assert_string_equal(s.header, "yes");
    assert_int_equal(s.body_len, 5);
    close(fd);
    pf__http_free(l);
}

static void test_deferred(void **state)
{
    (void)state;
    seen s = {0};
    pf__http_listener *l = start(&s, 1024);
    int fd = connect_to(pf__http_port(l));
    send_all(fd, "GET /later HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int round = 0; round < 200 && !s.deferred; round++) {
        struct pollfd p = {pf__http_fd(l), POLLIN, 0};
        poll(&p, 1, 10);
        pf__http_run(l);
    }
    assert_non_null(s.deferred);
    struct pollfd p = {fd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 50), 0); /* nothing yet */
    char *body = strdup("later\n");
    pf__http_header_field h = {"X-Extra", "1"};
    assert_int_equal(pf__http_respond(s.deferred, 201, "text/plain", &h, 1, body, 6), 0);
    char buf[4096];
    read_answer(l, fd, buf, sizeof buf);
    assert_non_null(strstr(buf, "HTTP/1.1 201"));
    assert_non_null(strstr(buf, "X-Extra: 1"));
    assert_non_null(strstr(buf, "later"));
    close(fd);
    pf__http_free(l);
}

static void test_too_large_from_headers(void **state)
{
    (void)state;
    seen s = {0};
    pf__http_listener *l = start(&s, 100);
    int fd = connect_to(pf__http_port(l));
    /* The length alone is over the limit: 413 arrives before any body byte is sent. */
    send_all(fd, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000\r\n\r\n");
    char buf[4096];
    read_answer(l, fd, buf, sizeof buf);
    assert_non_null(strstr(buf, "HTTP/1.1 413"));
    assert_int_equal(s.calls, 0);
    close(fd);
    pf__http_free(l);
}

static void test_https_refused(void **state)
{
    (void)state;
    pf_serve_address addr = {.https = true, .host = "127.0.0.1", .port = 0};
    seen s = {0};
    pf__http_options o = {.max_body = 10, .handler = handler, .ctx = &s};
    pf__http_listener *l = NULL;
    char *why = NULL;
    assert_int_equal(pf__http_listen(&addr, &o, &l, &why), -EINVAL);
    assert_non_null(strstr(why, "TLS"));
    assert_null(l);
    free(why);
}

static void test_port_in_use(void **state)
{
    (void)state;
    seen s = {0};
    pf__http_listener *a = start(&s, 10);
    pf_serve_address addr = {.https = false, .host = "127.0.0.1", .port = pf__http_port(a)};
    pf__http_options o = {.max_body = 10, .handler = handler, .ctx = &s};
    pf__http_listener *b = NULL;
    char *why = NULL;
    assert_int_equal(pf__http_listen(&addr, &o, &b, &why), -EADDRINUSE);
    assert_non_null(strstr(why, "cannot listen on 127.0.0.1:"));
    free(why);
    pf__http_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_and_keep_alive),
        cmocka_unit_test(test_deferred),
        cmocka_unit_test(test_too_large_from_headers),
        cmocka_unit_test(test_https_refused),
        cmocka_unit_test(test_port_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
