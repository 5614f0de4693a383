/* relay.c - captured output: whole writes, and lines that never mix. */
#include "launch/launch.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int pf__write_all(int fd, const char *buf, size_t n)
{
    while (fd >= 0 && n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

void pf__line_flush(pf__line *l, pf__line_fn fn, void *ctx)
{
    if (l->len == 0)
        return;
    size_t len = l->len;
    l->len = 0;
    fn(ctx, l->text, len);
}

void pf__line_feed(pf__line *l, const char *buf, size_t n, pf__line_fn fn, void *ctx)
{
    while (n > 0) {
        const char *nl = memchr(buf, '\n', n);
        size_t want = nl ? (size_t)(nl - buf) : n; /* the newline itself is dropped */
        size_t room = sizeof l->text - l->len;
        size_t take = want < room ? want : room;
        memcpy(l->text + l->len, buf, take);
        l->len += take;
        buf += take;
        n -= take;
        bool ended = nl && take == want;
        if (ended) {
            buf++; /* the newline */
            n--;
            size_t len = l->len;
            l->len = 0;
            fn(ctx, l->text, len);
        } else if (l->len == sizeof l->text) {
            pf__line_flush(l, fn, ctx);
        }
    }
}
