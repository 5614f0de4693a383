/*
 * console.c - writing to a console that may not keep up.
 *
 * A supervisor must never block on its console: with stdout a pipe that
 * nobody reads, a blocking write() would stop it from passing signals on
 * and from killing what outlived the grace period.  So the console is
 * written without blocking, through a bounded buffer; what does not fit is
 * dropped and counted (the log files, written in full, keep everything),
 * and the count is reported once the console drains.
 *
 * O_NONBLOCK is a property of the open file description, which a pipe or a
 * terminal shares with the shell that started us: setting it on fd 1 would
 * leave the shell's terminal non-blocking.  A pipe or a terminal is opened
 * again through /proc/self/fd instead, which makes a description of our
 * own; a socket is written with MSG_DONTWAIT; a regular file (or anything
 * else) never blocks for long and is written as it is.
 */
#include "launch/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONSOLE_BUFFER (1u << 20) /* held while the console is slow */

void pf__console_open(pf__console *c, int fd)
{
    memset(c, 0, sizeof *c);
    c->fd = fd;
    c->own = -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return;
    if (S_ISSOCK(st.st_mode)) {
        c->socket = true;
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        c->own = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (c->own >= 0)
            c->fd = c->own;
    }
}

void pf__console_close(pf__console *c)
{
    if (c->own >= 0)
        close(c->own);
    free(c->buf);
    memset(c, 0, sizeof *c);
    c->fd = c->own = -1;
}

/* One write that never blocks: bytes written, 0 when it would block, -1 on an error. */
static ssize_t try_write(const pf__console *c, const char *p, size_t n)
{
    for (;;) {
        ssize_t w = c->socket ? send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) : write(c->fd, p, n);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

/* Write what is held; true when nothing is left. */
bool pf__console_flush(pf__console *c)
{
    while (c->len > 0 && !c->broken) {
        ssize_t w = try_write(c, c->buf, c->len);
        if (w < 0)
            c->broken = true; /* the console went away: nothing more to show */
        if (w <= 0)
            break;
        memmove(c->buf, c->buf + w, c->len - (size_t)w);
        c->len -= (size_t)w;
    }
    if (c->broken)
        c->len = 0;
    return c->len == 0;
}

/*
 * Keep a write for later, whole or not at all: a write is a line (or a
 * chunk of one instance's output), and a part of it held with the rest
 * dropped would join the next line on the console ("[1] 12[0] 345").
 */
static void hold(pf__console *c, const char *p, size_t n)
{
    if ((!c->buf && !(c->buf = malloc(CONSOLE_BUFFER))) || n > CONSOLE_BUFFER - c->len) {
        c->dropped += n;
        return;
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
}

void pf__console_write(pf__console *c, const char *p, size_t n)
{
    if (c->fd < 0 || c->broken || n == 0)
        return;
    if (!pf__console_flush(c)) { /* keep the order: behind what is held */
        hold(c, p, n);
        return;
    }
    ssize_t w = try_write(c, p, n);
    if (w < 0)
        c->broken = true;
    else if ((size_t)w < n)
        hold(c, p + w, n - (size_t)w);
}

bool pf__console_pending(const pf__console *c)
{
    return c->len > 0 && !c->broken;
}
