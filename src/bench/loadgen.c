/*
 * loadgen.c - pf_load_run(): the built-in HTTP load generator.
 *
 * Each of `threads` workers owns its share of the connections and one
 * epoll instance; nothing is shared between workers on the path of a
 * request but, with a `requests` limit in a closed loop, one atomic counter
 * of the requests started.  A request costs one send() of the prebuilt
 * request bytes, one recv() into the worker's buffer (more when the answer
 * is larger or arrives in pieces), one pass of the incremental parser, one
 * clock read and one histogram increment: no allocation, no copy of the
 * answer.
 *
 * A connection is free when it has no request: open (idle), or closed
 * (opened again by its next request).  Free connections wait on a stack.
 *   - Closed loop: a free connection starts the next request at once; the
 *     latency counts from then.
 *   - Open loop: request g (over all workers) is due at t0 + g / rate;
 *     worker w takes the requests g = w, w + threads, w + 2 threads...  A
 *     due request takes a free connection; when there is none it waits,
 *     and more due requests pile up behind it (a number, not a queue in
 *     memory).  Its latency counts from the time it was due, so a server
 *     that stalls is charged for every request the schedule wanted to send
 *     during the stall, not only for the few in flight (what wrk and ab
 *     call coordinated omission).
 *
 * The per-request timeout runs from the request's start (its send, and the
 * connect before it when the connection was closed).  Timeouts, and the
 * short pause after a failed connect, are checked on a scan of the
 * worker's connections every SCAN_NS: a few milliseconds of precision for a
 * limit of seconds, and no timer structure to update per request.
 *
 * A server may close a keep-alive connection at any time between answers;
 * a request sent on a reused connection that closes before any byte of the
 * answer is sent again on a new connection, once, as browsers do, instead
 * of being counted as an error.
 *
 * The calling thread only waits: it wakes every progress interval for the
 * callback (the workers publish their counters with relaxed atomic
 * stores), then joins the workers and merges their histograms.
 */
#include "bench/loadgen.h"

#include "base/util.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_BUF (64 << 10)
#define MAX_EVENTS 256
#define SCAN_NS 5000000ll                    /* timeouts and back-offs: checked every 5 ms */
#define RETRY_NS 10000000ll                  /* the pause after a failed connect */
#define HIST_HIGHEST (24ll * 3600 * 1000000) /* a day, in microseconds */
#define HIST_PRECISION 10                    /* 0.1% */
#define ERROR_MAX 256
#define NEVER INT64_MAX

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

enum {
    C_CLOSED,     /* no socket */
    C_CONNECTING, /* connect() in progress */
    C_IDLE,       /* open, no request on it */
    C_SENDING,    /* the request partly sent: waiting to write */
    C_WAITING,    /* the request sent: waiting for the answer */
    C_BACKOFF,    /* closed after a failed connect, until `deadline` */
};

typedef struct worker worker;

typedef struct conn {
    int fd;
    int state;
    bool has_req;   /* a request is on this connection */
    bool measured;  /* ... of the measured phase */
    bool reused;    /* an answer came on this socket before */
    bool retried;   /* the request was already sent again after a close */
    bool got_bytes; /* a byte of the answer arrived */
    bool listed;    /* on the free stack */
    bool parked;    /* closed loop: no request left for it */
    uint32_t gen;   /* of the socket: an event of a socket closed since is ignored */
    size_t sent;
    int64_t start;    /* the request's start (closed loop) or due time (open loop) */
    int64_t deadline; /* the request's timeout, or the end of a back-off */
    pf__http_parser parser;
} conn;

typedef struct run {
    const pf_load_options *o;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char *target; /* "HOST:PORT", for messages */
    char *req;
    size_t req_len;
    bool head;
    int nthreads;
    int64_t t_start, t_measure, t_end; /* t_end NEVER: no duration */
    int64_t timeout_ns;
    double rate;
    long long g_first;         /* open loop: the first measured request */
    long long g_limit;         /* open loop: one past the last request (0: none) */
    _Atomic long long tickets; /* closed loop, with a `requests` limit */
    atomic_int stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int running;
} run;

struct worker {
    run *r;
    int index;
    pthread_t thread;
    int epfd;
    conn *conns;
    int nconns;
    int *free_stack;
    int nfree;
    int busy; /* connections with a request */
    char *rbuf;
    pf_histogram *hist;
    long long next_k; /* open loop: the worker's next request (g = k * threads + index) */
    /* The measured phase's counts; the two that progress reads are published. */
    long long completed, ok, s4xx, s5xx, sother, errors, bytes;
    _Atomic long long pub_completed, pub_failed;
    int64_t end; /* when the worker stopped */
    char first_error[ERROR_MAX];
    int64_t first_error_at;
};

static bool open_loop(const run *r)
{
    return r->rate > 0;
}

static void note_error(worker *w, int64_t now, const char *fmt, ...) PF__PRINTF(3, 4);

static void note_error(worker *w, int64_t now, const char *fmt, ...)
{
    if (w->first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->first_error, sizeof w->first_error, fmt, ap);
    va_end(ap);
    for (char *c = w->first_error; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    w->first_error_at = now;
}

static bool in_window(const run *r, int64_t now)
{
    return now < r->t_end;
}

/* ---- connections ---- */

static void push_free(worker *w, conn *c)
{
    if (c->listed || c->parked)
        return;
    c->listed = true;
    w->free_stack[w->nfree++] = (int)(c - w->conns);
}

static void close_conn(conn *c)
{
    if (c->fd >= 0) {
        /* close() removes it from the epoll set. */
        close(c->fd);
        c->fd = -1;
    }
    c->state = C_CLOSED;
    c->reused = false;
}

/* What an event carries: the connection's index and its socket's generation. */
static uint64_t event_data(const worker *w, const conn *c)
{
    return (uint64_t)c->gen << 32 | (uint64_t)(c - w->conns);
}

static void set_events(worker *w, conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.u64 = event_data(w, c)};
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* The request on c ended (answered or failed). */
static void request_over(worker *w, conn *c)
{
    c->has_req = false;
    w->busy--;
}

/*
 * The request on c failed: count it, close the connection (its state is
 * unknown), and free it for the next request; after a failed connect, only
 * after a pause, so that a server that refuses is not hammered.
 */
static void fail_request(worker *w, conn *c, int64_t now, bool pause, const char *what)
{
    note_error(w, now, "%s: %s", w->r->target, what);
    if (c->has_req) {
        if (c->measured && in_window(w->r, now))
            w->errors++;
        request_over(w, c);
    }
    close_conn(c);
    if (pause) {
        c->state = C_BACKOFF;
        c->deadline = now + RETRY_NS;
    } else {
        push_free(w, c);
    }
}

static void send_request(worker *w, conn *c, int64_t now);
static void begin_request(worker *w, conn *c, int64_t now);

/* The socket closed or failed before the answer was complete. */
static void closed_early(worker *w, conn *c, int64_t now, const char *what)
{
    if (c->has_req && c->reused && !c->got_bytes && !c->retried) {
        /* The server had closed the kept-alive connection: send it again, once. */
        close_conn(c);
        c->retried = true;
        begin_request(w, c, now);
        return;
    }
    fail_request(w, c, now, false, what);
}

static void connect_failed(worker *w, conn *c, int64_t now, int err)
{
    char msg[ERROR_MAX];
    snprintf(msg, sizeof msg, "connect: %s", strerror(err));
    fail_request(w, c, now, true, msg);
}

static void connected(worker *w, conn *c, int64_t now)
{
    c->state = C_IDLE;
    if (c->has_req)
        send_request(w, c, now);
    else
        push_free(w, c);
}

static void open_conn(worker *w, conn *c, int64_t now)
{
    const run *r = w->r;
    int fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        connect_failed(w, c, now, errno);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(fd, (const struct sockaddr *)&r->addr, r->addrlen);
    if (rc < 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        connect_failed(w, c, now, err);
        return;
    }
    c->gen++;
    struct epoll_event ev = {.events = EPOLLIN | (rc < 0 ? EPOLLOUT : 0),
                             .data.u64 = event_data(w, c)};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = errno;
        close(fd);
        connect_failed(w, c, now, err);
        return;
    }
    c->fd = fd;
    c->reused = false;
    pf__http_parser_init(&c->parser, r->head);
    if (rc == 0) {
        connected(w, c, now);
    } else {
        c->state = C_CONNECTING;
    }
}

/* The connect in progress ended. */
static void connect_done(worker *w, conn *c, int64_t now)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        connect_failed(w, c, now, err);
        return;
    }
    set_events(w, c, EPOLLIN);
    connected(w, c, now);
}

/* Send what is left of the request. */
static void send_more(worker *w, conn *c, int64_t now)
{
    const run *r = w->r;
    while (c->sent < r->req_len) {
        ssize_t n = send(c->fd, r->req + c->sent, r->req_len - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (c->state != C_SENDING) {
                set_events(w, c, EPOLLIN | EPOLLOUT);
                c->state = C_SENDING;
            }
            return;
        }
        closed_early(w, c, now, n < 0 ? strerror(errno) : "send failed");
        return;
    }
    if (c->state == C_SENDING)
        set_events(w, c, EPOLLIN);
    c->state = C_WAITING;
}

static void send_request(worker *w, conn *c, int64_t now)
{
    c->sent = 0;
    c->got_bytes = false;
    send_more(w, c, now);
}

/* Start the request given to c: on its socket, or on a new one first. */
static void begin_request(worker *w, conn *c, int64_t now)
{
    c->deadline = now + w->r->timeout_ns;
    if (c->fd < 0)
        open_conn(w, c, now);
    else
        send_request(w, c, now);
}

/* Give c a request starting at `start`. */
static void assign(worker *w, conn *c, int64_t start, bool measured, int64_t now)
{
    c->has_req = true;
    c->measured = measured;
    c->start = start;
    c->retried = false;
    w->busy++;
    begin_request(w, c, now);
}

/* An answer completed on c. */
static void answered(worker *w, conn *c, int64_t now)
{
    run *r = w->r;
    int status = c->parser.status;
    if (c->measured && in_window(r, now)) {
        w->completed++;
        if (status >= 200 && status < 300)
            w->ok++;
        else if (status >= 400 && status < 500)
            w->s4xx++;
        else if (status >= 500 && status < 600)
            w->s5xx++;
        else
            w->sother++;
        pf_histogram_record(w->hist, (now - c->start) / 1000, 1);
    }
    request_over(w, c);
    if (c->parser.close || c->state == C_SENDING) {
        close_conn(c);
    } else {
        c->state = C_IDLE;
        c->reused = true;
    }
    push_free(w, c);
}

static void on_readable(worker *w, conn *c, int64_t *now)
{
    run *r = w->r;
    ssize_t n = recv(c->fd, w->rbuf, READ_BUF, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    *now = now_ns();
    if (n <= 0) {
        const char *what = n < 0 ? strerror(errno) : "the server closed the connection";
        if (!c->has_req) {
            close_conn(c);
            return;
        }
        int rc = pf__http_response_eof(&c->parser);
        if (rc == 1)
            answered(w, c, *now);
        else if (rc < 0)
            fail_request(w, c, *now, false, c->parser.error);
        else
            closed_early(w, c, *now,
                         n < 0 ? what : "the server closed the connection before answering");
        return;
    }
    if (!c->has_req) {
        note_error(w, *now, "%s: %zd bytes from the server while no request was sent", r->target,
                   n);
        if (in_window(r, *now) && *now >= r->t_measure)
            w->errors++;
        close_conn(c);
        return;
    }
    if (c->measured && in_window(r, *now))
        w->bytes += n;
    c->got_bytes = true;
    size_t used = 0;
    int rc = pf__http_response_parse(&c->parser, w->rbuf, (size_t)n, &used);
    if (rc < 0) {
        fail_request(w, c, *now, false, c->parser.error);
        return;
    }
    if (rc == 0)
        return;
    bool extra = used < (size_t)n;
    answered(w, c, *now);
    if (extra) {
        /* One request at a time: bytes after its answer answer nothing. */
        note_error(w, *now, "%s: bytes after the answer", r->target);
        if (in_window(r, *now) && *now >= r->t_measure)
            w->errors++;
        close_conn(c);
    }
}

static void on_event(worker *w, uint64_t data, uint32_t events, int64_t *now)
{
    conn *c = &w->conns[(uint32_t)data];
    if (c->fd < 0 || c->gen != (uint32_t)(data >> 32))
        return; /* the socket was closed by an earlier event of this batch */
    if (c->state == C_CONNECTING) {
        connect_done(w, c, *now);
        return;
    }
    if (c->state == C_SENDING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) &&
        !(events & EPOLLIN)) {
        send_more(w, c, *now);
        return;
    }
    on_readable(w, c, now);
}

/* ---- the worker's loop ---- */

static int64_t due_of(const run *r, long long g)
{
    return r->t_start + (int64_t)((double)g / r->rate * 1e9);
}

static long long next_g(const worker *w)
{
    return w->next_k * w->r->nthreads + w->index;
}

/* Closed loop: the next request for c, unless none is left. */
static void closed_next(worker *w, conn *c, int64_t now)
{
    run *r = w->r;
    bool measured = now >= r->t_measure;
    if (measured && r->o->requests > 0 &&
        atomic_fetch_add_explicit(&r->tickets, 1, memory_order_relaxed) >= r->o->requests) {
        c->parked = true;
        return;
    }
    assign(w, c, now, measured, now);
}

/* Give work to the free connections (those free now: a failure frees one again). */
static void dispatch(worker *w, int64_t now)
{
    run *r = w->r;
    if (!open_loop(r)) {
        for (int n = w->nfree; n > 0 && w->nfree > 0; n--) {
            conn *c = &w->conns[w->free_stack[--w->nfree]];
            c->listed = false;
            closed_next(w, c, now);
        }
        return;
    }
    for (int n = w->nfree; n > 0 && w->nfree > 0; n--) {
        long long g = next_g(w);
        if (r->g_limit && g >= r->g_limit)
            return;
        int64_t due = due_of(r, g);
        if (due > now || due >= r->t_end)
            return;
        conn *c = &w->conns[w->free_stack[--w->nfree]];
        c->listed = false;
        w->next_k++;
        assign(w, c, due, g >= r->g_first, now);
    }
}

/* Timeouts, and the end of back-offs. */
static void scan(worker *w, int64_t now)
{
    char msg[64];
    for (int i = 0; i < w->nconns; i++) {
        conn *c = &w->conns[i];
        if (c->has_req && now >= c->deadline) {
            snprintf(msg, sizeof msg, "no answer within %g s (timeout)", w->r->o->timeout_s);
            fail_request(w, c, now, false, msg);
        } else if (c->state == C_BACKOFF && now >= c->deadline) {
            c->state = C_CLOSED;
            push_free(w, c);
        }
    }
}

static bool finished(const worker *w)
{
    const run *r = w->r;
    if (w->busy > 0)
        return false;
    if (open_loop(r))
        return r->g_limit && next_g(w) >= r->g_limit;
    return r->o->requests > 0 &&
           atomic_load_explicit(&r->tickets, memory_order_relaxed) >= r->o->requests;
}

static int wait_events(int epfd, struct epoll_event *ev, int64_t wait_ns)
{
    if (wait_ns < 0)
        wait_ns = 0;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
    /* Microsecond timeouts: an open loop's due times are not rounded to milliseconds. */
    static atomic_bool no_pwait2;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = {.tv_sec = wait_ns / 1000000000, .tv_nsec = wait_ns % 1000000000};
        int n = epoll_pwait2(epfd, ev, MAX_EVENTS, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store(&no_pwait2, true);
    }
#endif
    return epoll_wait(epfd, ev, MAX_EVENTS, (int)((wait_ns + 999999) / 1000000));
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    run *r = w->r;
    struct epoll_event events[MAX_EVENTS];
    if (open_loop(r))
        prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake at the due times, not 50 us late */
    int64_t now = now_ns();
    for (int i = w->nconns; i-- > 0;) {
        if (open_loop(r))
            open_conn(w, &w->conns[i], now); /* connected ahead of the schedule */
        else
            push_free(w, &w->conns[i]);
    }
    int64_t next_scan = now + SCAN_NS;
    for (;;) {
        if (atomic_load_explicit(&r->stop, memory_order_relaxed) || now >= r->t_end)
            break;
        dispatch(w, now);
        if (finished(w))
            break;
        int64_t wake = next_scan < r->t_end ? next_scan : r->t_end;
        if (open_loop(r) && w->nfree > 0 && !(r->g_limit && next_g(w) >= r->g_limit)) {
            int64_t due = due_of(r, next_g(w));
            if (due < wake)
                wake = due;
        }
        int n = wait_events(w->epfd, events, wake - now);
        now = now_ns();
        for (int i = 0; i < n; i++)
            on_event(w, events[i].data.u64, events[i].events, &now);
        if (now >= next_scan) {
            scan(w, now);
            next_scan = now + SCAN_NS;
        }
        atomic_store_explicit(&w->pub_completed, w->completed, memory_order_relaxed);
        atomic_store_explicit(&w->pub_failed, w->completed - w->ok + w->errors,
                              memory_order_relaxed);
    }
    w->end = now;
    atomic_store_explicit(&w->pub_completed, w->completed, memory_order_relaxed);
    atomic_store_explicit(&w->pub_failed, w->completed - w->ok + w->errors, memory_order_relaxed);
    for (int i = 0; i < w->nconns; i++)
        close_conn(&w->conns[i]);
    pthread_mutex_lock(&r->lock);
    r->running--;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* ---- set-up ---- */

void pf_load_options_init(pf_load_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->connections = 16;
    opts->threads = 1;
    opts->duration_s = 10;
    opts->timeout_s = 30;
    opts->progress_interval_s = 0.5;
}

void pf_load_result_free(pf_load_result *res)
{
    if (!res)
        return;
    pf_histogram_free(res->latency);
    free(res->first_error);
    free(res);
}

static int check_options(const pf_load_options *o, char **why)
{
    if (o->connections < 1)
        return pf__fail(why, -EINVAL, "connections must be at least 1 (%d given)", o->connections);
    if (o->threads < 1)
        return pf__fail(why, -EINVAL, "threads must be at least 1 (%d given)", o->threads);
    if (!isfinite(o->rate) || o->rate < 0)
        return pf__fail(why, -EINVAL, "the rate must be 0 (closed loop) or a positive number");
    if (!isfinite(o->warmup_s) || o->warmup_s < 0 || o->warmup_s > 1e6)
        return pf__fail(why, -EINVAL, "the warm-up must be a number of seconds >= 0");
    if (!isfinite(o->duration_s) || o->duration_s < 0 || o->duration_s > 1e8)
        return pf__fail(why, -EINVAL, "the duration must be a number of seconds >= 0");
    if (o->requests < 0)
        return pf__fail(why, -EINVAL, "the number of requests must be >= 0");
    if (o->duration_s == 0 && o->requests == 0)
        return pf__fail(why, -EINVAL,
                        "neither a duration nor a number of requests: the load would not end");
    if (!isfinite(o->timeout_s) || o->timeout_s <= 0 || o->timeout_s > 1e6)
        return pf__fail(why, -EINVAL, "the timeout must be a positive number of seconds");
    if (o->progress && !(o->progress_interval_s > 0 && o->progress_interval_s < 1e6))
        return pf__fail(why, -EINVAL, "the progress interval must be a positive number of seconds");
    if (o->body_len > 0 && !o->body)
        return pf__fail(why, -EINVAL, "a body length without a body");
    /*
     * A socket per connection: the soft limit on descriptors (often 1024) is
     * raised as far as the hard one allows when it is too low, as Go's
     * runtime does; beyond the hard limit, the options are refused.
     */
    struct rlimit rl;
    rlim_t need = (rlim_t)o->connections + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur) {
        if (rl.rlim_max == RLIM_INFINITY || need <= rl.rlim_max) {
            rl.rlim_cur = need;
            if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
                return 0;
        }
        return pf__fail(why, -EINVAL,
                        "%d connections need more file descriptors than the limit of %llu "
                        "(ulimit -n)",
                        o->connections, (unsigned long long)rl.rlim_max);
    }
    return 0;
}

/* A connect to ai within limit_ms, blocking: whether the address answers. */
static bool address_answers(const struct addrinfo *ai, int limit_ms)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    if (!ok && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t len = sizeof err;
        ok = poll(&p, 1, limit_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
             err == 0;
    }
    close(fd);
    return ok;
}

/*
 * Resolve the host.  A name with several addresses (localhost: ::1 and
 * 127.0.0.1) gets the first that accepts a connection, as wrk does; when
 * none does, the first (its connects will fail and be counted).
 */
static int resolve(const pf__http_url *u, double timeout_s, run *r, char **why)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    if (u->ipv6) {
        hints.ai_family = AF_INET6;
        hints.ai_flags |= AI_NUMERICHOST;
    }
    struct addrinfo *list = NULL;
    int rc = getaddrinfo(u->host, u->port, &hints, &list);
    if (rc != 0)
        return pf__fail(why, rc == EAI_MEMORY ? -ENOMEM : -EINVAL, "%s: %s", u->host,
                        rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    const struct addrinfo *pick = list;
    if (list->ai_next) {
        int limit_ms = timeout_s < 1 ? (int)(timeout_s * 1000) + 1 : 1000;
        for (const struct addrinfo *ai = list; ai; ai = ai->ai_next)
            if (address_answers(ai, limit_ms)) {
                pick = ai;
                break;
            }
    }
    memcpy(&r->addr, pick->ai_addr, pick->ai_addrlen);
    r->addrlen = pick->ai_addrlen;
    freeaddrinfo(list);
    return 0;
}

static void free_workers(worker *ws, int n)
{
    if (!ws)
        return;
    for (int i = 0; i < n; i++) {
        if (ws[i].epfd >= 0)
            close(ws[i].epfd);
        free(ws[i].conns);
        free(ws[i].free_stack);
        free(ws[i].rbuf);
        pf_histogram_free(ws[i].hist);
    }
    free(ws);
}

static int make_workers(run *r, worker **out)
{
    int n = r->nthreads, conns = r->o->connections;
    worker *ws = calloc((size_t)n, sizeof *ws);
    if (!ws)
        return -ENOMEM;
    for (int i = 0; i < n; i++)
        ws[i].epfd = -1;
    for (int i = 0; i < n; i++) {
        worker *w = &ws[i];
        w->r = r;
        w->index = i;
        w->nconns = conns / n + (i < conns % n);
        w->conns = calloc((size_t)w->nconns, sizeof *w->conns);
        w->free_stack = calloc((size_t)w->nconns, sizeof *w->free_stack);
        w->rbuf = malloc(READ_BUF);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (!w->conns || !w->free_stack || !w->rbuf || w->epfd < 0 ||
            pf_histogram_create(HIST_HIGHEST, HIST_PRECISION, &w->hist) < 0) {
            int rc = w->epfd < 0 ? -errno : -ENOMEM;
            free_workers(ws, n);
            return rc;
        }
        for (int j = 0; j < w->nconns; j++)
            w->conns[j].fd = -1;
    }
    *out = ws;
    return 0;
}

static double seconds(int64_t ns)
{
    return (double)ns / 1e9;
}

/* The calling thread: progress every interval until the workers are done. */
static void supervise(run *r, worker *ws)
{
    const pf_load_options *o = r->o;
    int64_t interval = o->progress ? (int64_t)(o->progress_interval_s * 1e9) : 0;
    int64_t next = r->t_start + interval, last_t = r->t_start;
    long long last_completed = 0;
    pthread_mutex_lock(&r->lock);
    while (r->running > 0) {
        if (!o->progress) {
            pthread_cond_wait(&r->cond, &r->lock);
            continue;
        }
        struct timespec ts = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000};
        pthread_cond_timedwait(&r->cond, &r->lock, &ts);
        int64_t now = now_ns();
        if (r->running == 0 || now < next)
            continue;
        pthread_mutex_unlock(&r->lock);
        pf_load_progress p = {.elapsed_s = seconds(now - r->t_measure)};
        for (int i = 0; i < r->nthreads; i++) {
            p.completed += atomic_load_explicit(&ws[i].pub_completed, memory_order_relaxed);
            p.failed += atomic_load_explicit(&ws[i].pub_failed, memory_order_relaxed);
        }
        p.rate = now > last_t ? (double)(p.completed - last_completed) / seconds(now - last_t) : 0;
        last_t = now;
        last_completed = p.completed;
        if (!o->progress(&p, o->ctx))
            atomic_store(&r->stop, 1);
        while (next <= now)
            next += interval;
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
}

static int collect(run *r, worker *ws, pf_load_result **out)
{
    pf_load_result *res = calloc(1, sizeof *res);
    if (!res || pf_histogram_create(HIST_HIGHEST, HIST_PRECISION, &res->latency) < 0) {
        pf_load_result_free(res);
        return -ENOMEM;
    }
    int64_t end = r->t_measure;
    const worker *first = NULL;
    for (int i = 0; i < r->nthreads; i++) {
        const worker *w = &ws[i];
        res->completed += w->completed;
        res->ok += w->ok;
        res->status_4xx += w->s4xx;
        res->status_5xx += w->s5xx;
        res->status_other += w->sother;
        res->errors += w->errors;
        res->bytes_received += w->bytes;
        pf_histogram_add(res->latency, w->hist);
        if (w->end > end)
            end = w->end;
        if (w->first_error[0] && (!first || w->first_error_at < first->first_error_at))
            first = w;
    }
    if (end > r->t_end)
        end = r->t_end;
    res->elapsed_s = end > r->t_measure ? seconds(end - r->t_measure) : 0;
    res->throughput = res->elapsed_s > 0 ? (double)res->ok / res->elapsed_s : 0;
    if (first && !(res->first_error = pf__strdupf("%s", first->first_error))) {
        pf_load_result_free(res);
        return -ENOMEM;
    }
    *out = res;
    return 0;
}

int pf_load_run(const pf_load_options *opts, pf_load_result **out, char **why)
{
    *out = NULL;
    if (why)
        *why = NULL;
    if (!opts)
        return pf__fail(why, -EINVAL, "no options");
    int rc = check_options(opts, why);
    if (rc < 0)
        return rc;
    pf__http_url url;
    rc = pf__http_url_parse(opts->url, &url, why);
    if (rc < 0)
        return rc;
    run r;
    memset(&r, 0, sizeof r);
    r.o = opts;
    rc = pf__http_request_build(&url, opts, &r.req, &r.req_len, &r.head, why);
    if (rc == 0)
        rc = resolve(&url, opts->timeout_s, &r, why);
    if (rc == 0 && !(r.target = pf__strdupf("%s", url.host_hdr)))
        rc = pf__fail(why, -ENOMEM, "out of memory");
    pf__http_url_free(&url);
    worker *ws = NULL;
    r.nthreads = opts->threads < opts->connections ? opts->threads : opts->connections;
    if (rc == 0 && (rc = make_workers(&r, &ws)) < 0)
        pf__fail(why, rc, "setting up the workers: %s", strerror(-rc));
    if (rc < 0) {
        free(r.req);
        free(r.target);
        return rc;
    }

    pthread_mutex_init(&r.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r.cond, &ca);
    pthread_condattr_destroy(&ca);
    r.rate = opts->rate;
    r.timeout_ns = (int64_t)(opts->timeout_s * 1e9);
    r.t_start = now_ns();
    r.t_measure = r.t_start + (int64_t)(opts->warmup_s * 1e9);
    r.t_end = opts->duration_s > 0 ? r.t_measure + (int64_t)(opts->duration_s * 1e9) : NEVER;
    if (open_loop(&r)) {
        /* The first request due at or after the measured phase's start. */
        long long g = (long long)floor(opts->warmup_s * r.rate);
        while (g > 0 && due_of(&r, g - 1) >= r.t_measure)
            g--;
        while (due_of(&r, g) < r.t_measure)
            g++;
        r.g_first = g;
        r.g_limit = opts->requests > 0 ? g + opts->requests : 0;
    }

    r.running = r.nthreads;
    for (int i = 0; i < r.nthreads; i++) {
        int err = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
        if (err) {
            /* Stop those started; the load is not run. */
            atomic_store(&r.stop, 1);
            for (int j = 0; j < i; j++)
                pthread_join(ws[j].thread, NULL);
            rc = pf__fail(why, -err, "starting a load thread: %s", strerror(err));
            break;
        }
    }
    if (rc == 0) {
        supervise(&r, ws);
        for (int i = 0; i < r.nthreads; i++)
            pthread_join(ws[i].thread, NULL);
        rc = collect(&r, ws, out);
        if (rc < 0)
            pf__fail(why, rc, "out of memory");
    }
    free_workers(ws, r.nthreads);
    pthread_cond_destroy(&r.cond);
    pthread_mutex_destroy(&r.lock);
    free(r.req);
    free(r.target);
    return rc;
}
