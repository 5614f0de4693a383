/*
 * bench_loadgen.c - is the built-in load generator (pf_load_run) fast
 * enough not to be what a benchmark measures?  Against the same trivial
 * server, in the same run, interleaved rounds of wrk (Debian's) and of
 * pf_load_run with the same threads and connections, closed loop; each
 * round's requests per second, the medians and builtin / wrk.
 * Target: >= 0.8.
 *
 * The server is a fork()ed child: one epoll loop answering every request
 * with a fixed keep-alive "HTTP/1.1 200 OK" of 2 bytes, on 127.0.0.1, bound
 * to the last CPU when there are two or more (the load generators then run
 * on the others).
 *
 *     build/bench/bench_loadgen [ROUNDS [SECONDS [THREADS [CONNECTIONS]]]]
 *
 * Defaults: 3 rounds of 3 s, 1 thread, 16 connections.  Exit 2 when wrk is
 * not installed.
 */
#include "pinfer.h"

#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char ANSWER[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#define MAX_FDS 65536

/*
 * The server's loop.  A request ends at "\r\n\r\n" (the benchmark sends
 * GETs without a body); how much of that ending each connection has seen
 * is kept across reads.
 */
static void serve(int lfd)
{
    static unsigned char matched[MAX_FDS];
    static const char END[] = "\r\n\r\n";
    char buf[16384], out[16384];
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= MAX_FDS) {
                        close(c);
                        continue;
                    }
                    int one = 1;
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    matched[c] = 0;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            ssize_t got = read(fd, buf, sizeof buf);
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN)
                    continue;
                close(fd);
                continue;
            }
            size_t len = 0;
            for (ssize_t j = 0; j < got; j++) {
                matched[fd] = buf[j] == END[matched[fd]] ? matched[fd] + 1 : buf[j] == '\r';
                if (matched[fd] == 4) {
                    matched[fd] = 0;
                    if (len + sizeof ANSWER - 1 > sizeof out) {
                        if (write(fd, out, len) < 0)
                            break;
                        len = 0;
                    }
                    memcpy(out + len, ANSWER, sizeof ANSWER - 1);
                    len += sizeof ANSWER - 1;
                }
            }
            if (len && write(fd, out, len) < 0)
                close(fd);
        }
    }
}

static bool on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    char buf[4096];
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, prog);
        if (access(buf, X_OK) == 0)
            return true;
        path += n + (path[n] == ':');
    }
    return false;
}

/* Run wrk; its Requests/sec, or -1. */
static double run_wrk(char *const *argv)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return -1;
    }
    static char out[65536];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof out - 1 && (n = read(fds[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    const char *line = strstr(out, "Requests/sec:");
    if (!line || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_loadgen: wrk's output:\n%s\n", out);
        return -1;
    }
    return strtod(line + strlen("Requests/sec:"), NULL);
}

static double run_builtin(const char *url, int threads, int conns, int seconds, double *p50,
                          double *p99)
{
    pf_load_options o;
    pf_load_options_init(&o);
    o.url = url;
    o.threads = threads;
    o.connections = conns;
    o.duration_s = seconds;
    pf_load_result *res = NULL;
    char *why = NULL;
    int rc = pf_load_run(&o, &res, &why);
    if (rc < 0) {
        fprintf(stderr, "bench_loadgen: pf_load_run: %s\n", why ? why : pf_strerror(rc));
        free(why);
        return -1;
    }
    double rps = res->elapsed_s > 0 ? (double)res->completed / res->elapsed_s : 0;
    *p50 = (double)pf_histogram_percentile(res->latency, 50);
    *p99 = (double)pf_histogram_percentile(res->latency, 99);
    if (res->errors || res->ok != res->completed)
        fprintf(stderr, "bench_loadgen: builtin: %lld errors, %lld not 2xx (%s)\n", res->errors,
                res->completed - res->ok, res->first_error ? res->first_error : "");
    pf_load_result_free(res);
    return rps;
}

static double median(double *v, int n)
{
    return bench_percentile(v, n, 50);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 3;
    int seconds = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 3;
    int threads = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 1;
    int conns = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 16;
    if (rounds < 1 || rounds > 100 || seconds < 1 || seconds > 3600 || threads < 1 ||
        threads > 256 || conns < threads || conns > 10000) {
        fprintf(stderr, "usage: bench_loadgen [ROUNDS [SECONDS [THREADS [CONNECTIONS]]]]\n");
        return 2;
    }
    if (!on_path("wrk")) {
        printf("bench_loadgen: wrk is not installed (apt-get install wrk): nothing to compare "
               "with\n");
        return 2;
    }

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t slen = sizeof sa;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &slen) < 0) {
        perror("bench_loadgen: server socket");
        return 1;
    }
    int port = ntohs(sa.sin_port);

    /* The server on the last allowed CPU, the load generators on the others. */
    cpu_set_t all, server_cpu, rest;
    CPU_ZERO(&server_cpu);
    sched_getaffinity(0, sizeof all, &all);
    int ncpus = CPU_COUNT(&all), last = -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all))
            last = c;
    rest = all;
    if (ncpus >= 2) {
        CPU_SET(last, &server_cpu);
        CPU_CLR(last, &rest);
    }
    fflush(stdout);
    pid_t server = fork();
    if (server < 0) {
        perror("bench_loadgen: fork");
        return 1;
    }
    if (server == 0) {
        if (ncpus >= 2)
            sched_setaffinity(0, sizeof server_cpu, &server_cpu);
        serve(lfd);
        _exit(0);
    }
    close(lfd);
    if (ncpus >= 2)
        sched_setaffinity(0, sizeof rest, &rest);

    char url[64], targ[16], carg[16], darg[16];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    snprintf(targ, sizeof targ, "%d", threads);
    snprintf(carg, sizeof carg, "%d", conns);
    snprintf(darg, sizeof darg, "%ds", seconds);
    char *wrk[] = {"wrk", "-t", targ, "-c", carg, "-d", darg, "--latency", url, NULL};
    if (ncpus >= 2)
        printf("server: pid %d on CPU %d; load generators on the %d other CPU(s)\n", (int)server,
               last, ncpus - 1);
    else
        printf("server: pid %d, one CPU shared with the load generators\n", (int)server);
    printf("wrk:     wrk -t %d -c %d -d %ds --latency %s\n", threads, conns, seconds, url);
    printf("builtin: pf_load_run url=%s threads=%d connections=%d duration_s=%d (closed loop)\n",
           url, threads, conns, seconds);

    double *w = calloc((size_t)rounds, sizeof *w), *b = calloc((size_t)rounds, sizeof *b);
    int status = 0;
    for (int i = 0; i < rounds && status == 0; i++) {
        double p50 = 0, p99 = 0;
        /* Alternate which goes first, so that a drift of the machine hits both alike. */
        if (i % 2 == 0) {
            w[i] = run_wrk(wrk);
            b[i] = run_builtin(url, threads, conns, seconds, &p50, &p99);
        } else {
            b[i] = run_builtin(url, threads, conns, seconds, &p50, &p99);
            w[i] = run_wrk(wrk);
        }
        if (w[i] < 0 || b[i] < 0) {
            status = 1;
            break;
        }
        printf("round %d: wrk %10.0f req/s   builtin %10.0f req/s (p50 %.0f us, p99 %.0f us)   "
               "ratio %.2f\n",
               i + 1, w[i], b[i], p50, p99, b[i] / w[i]);
        fflush(stdout);
    }
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
    if (status == 0) {
        double mw = median(w, rounds), mb = median(b, rounds);
        printf("median:  wrk %10.0f req/s   builtin %10.0f req/s   ratio builtin/wrk %.2f "
               "(target >= 0.8)\n",
               mw, mb, mb / mw);
    }
    free(w);
    free(b);
    return status;
}
