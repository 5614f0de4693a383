/*
 * address.c - listening addresses as TorchServe writes them
 * ("http://127.0.0.1:8080", "https://0.0.0.0:8443").
 *
 * TorchServe matches ((https|http)://([^:^/]+)(:([0-9]+))?)|(unix:(/.*)),
 * case-insensitively, and takes a missing port from the listener (80/443 for
 * inference, 8081/8444 management, 8082/8445 metrics).  pinfer reads the
 * same, and also IPv6 literals in brackets ("http://[::1]:8080", which
 * TorchServe's pattern cannot express), a single trailing slash, and port 0
 * (any free port).  Unix sockets are refused: the server listens on TCP.
 */
#include "serve/serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int default_port(pf_serve_listener listener, bool https)
{
    switch (listener) {
    case PF_SERVE_MANAGEMENT: return https ? 8444 : 8081;
    case PF_SERVE_METRICS: return https ? 8445 : 8082;
    default: return https ? 443 : 80;
    }
}

/* A DNS name: dot-separated labels of letters, digits and inner hyphens. */
static bool host_name_valid(const char *h, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = i < n ? h[i] : '.';
        if (c == '.') {
            if (label == 0 || label > 63 || h[i - 1] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

static bool all_digits_and_dots(const char *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(h[i] == '.' || (h[i] >= '0' && h[i] <= '9')))
            return false;
    return true;
}

int pf_serve_address_parse(const char *text, pf_serve_listener listener, pf_serve_address **out,
                           char **why)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!text || !*text)
        return pf__serve_fail(why, -EINVAL, "an empty address (write http://HOST:PORT)");
    const char *sep = strstr(text, "://");
    if (!sep) {
        if (strncasecmp(text, "unix:", 5) == 0)
            return pf__serve_fail(
                why, -EINVAL, "'%s': unix sockets are not supported: use http://HOST:PORT", text);
        return pf__serve_fail(why, -EINVAL, "'%s' has no scheme: write http://%s", text, text);
    }
    size_t slen = (size_t)(sep - text);
    bool https;
    if (slen == 4 && strncasecmp(text, "http", 4) == 0)
        https = false;
    else if (slen == 5 && strncasecmp(text, "https", 5) == 0)
        https = true;
    else
        return pf__serve_fail(why, -EINVAL, "'%s': the scheme must be http or https", text);
    const char *rest = sep + 3;
    size_t n = strlen(rest);
    if (n > 0 && rest[n - 1] == '/')
        n--; /* "http://0.0.0.0:8080/" */
    for (size_t i = 0; i < n; i++) {
        if (rest[i] == '/' || rest[i] == '?' || rest[i] == '#')
            return pf__serve_fail(why, -EINVAL, "'%s': an address has no path or query", text);
        if (rest[i] == '@')
            return pf__serve_fail(why, -EINVAL, "'%s': an address has no user name", text);
    }
    const char *host = rest, *port = NULL;
    size_t hlen;
    bool v6 = false;
    if (n > 0 && rest[0] == '[') {
        const char *close = memchr(rest, ']', n);
        if (!close)
            return pf__serve_fail(why, -EINVAL, "'%s': no ']' after the IPv6 address", text);
        host = rest + 1;
        hlen = (size_t)(close - host);
        v6 = true;
        const char *after = close + 1;
        if (after < rest + n) {
            if (*after != ':')
                return pf__serve_fail(why, -EINVAL, "'%s': ':PORT' or nothing must follow ']'",
                                      text);
            port = after + 1;
        }
    } else {
        const char *colon = memchr(rest, ':', n);
        hlen = colon ? (size_t)(colon - rest) : n;
        if (colon) {
            port = colon + 1;
            if (memchr(port, ':', (size_t)(rest + n - port)))
                return pf__serve_fail(why, -EINVAL,
                                      "'%s': write an IPv6 address in brackets (http://[::1]:8080)",
                                      text);
        }
    }
    if (hlen == 0)
        return pf__serve_fail(why, -EINVAL, "'%s' has no host", text);
    char *h = strndup(host, hlen);
    if (!h)
        return -ENOMEM;
    unsigned char bin[16];
    if (v6                             ? inet_pton(AF_INET6, h, bin) != 1
        : all_digits_and_dots(h, hlen) ? inet_pton(AF_INET, h, bin) != 1
                                       : !host_name_valid(h, hlen)) {
        int rc = pf__serve_fail(why, -EINVAL, "'%s': '%s' is not %s", text, h,
                                v6                             ? "an IPv6 address"
                                : all_digits_and_dots(h, hlen) ? "an IPv4 address"
                                                               : "a host name or an IP address");
        free(h);
        return rc;
    }
    long p = default_port(listener, https);
    if (port && pf__parse_int(port, (size_t)(rest + n - port), 0, 65535, &p) < 0) {
        free(h);
        return pf__serve_fail(why, -EINVAL, "'%s': the port must be a number from 0 to 65535",
                              text);
    }
    pf_serve_address *a = calloc(1, sizeof *a);
    if (!a) {
        free(h);
        return -ENOMEM;
    }
    a->https = https;
    a->host = h;
    a->port = (int)p;
    *out = a;
    return 0;
}

void pf_serve_address_free(pf_serve_address *addr)
{
    if (!addr)
        return;
    free(addr->host);
    free(addr);
}
