/*
 * supervisor.c - the instances of a launch spec, started and watched from
 * any event loop.
 *
 * One epoll fd holds everything the supervisor waits for: each instance's
 * pidfd (readable when its main process exits), each captured output pipe,
 * and a timerfd armed for the next deadline (the grace period after a
 * signal, the output drain after the last exit, a restart's back-off; a
 * 50 ms tick on kernels without pidfds).  The caller polls that one fd and
 * calls pf_supervisor_step(); no signal handler and no SIGCHLD are needed,
 * so a server can hold many supervisors, and a program none.
 *
 * An exited main process is noticed with waitid(WNOWAIT) and left a zombie
 * until it is restarted or the supervisor is freed: the zombie keeps its pid,
 * hence its process group id, from being reused, so that signalling the
 * group (forwarding, killing what the instance left behind) can never reach
 * an unrelated process.
 */
#include "launch/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

#define DEFAULT_GRACE_MS 10000
#define DEFAULT_RESTART_DELAY_MS 100
#define DEFAULT_RESTART_MAX_MS 30000
#define DEFAULT_RESTART_RESET_MS 10000
#define TICK_MS 50 /* exits are polled this often without pidfds */

enum event_kind { EV_TIMER = 0, EV_EXIT, EV_OUTPUT };

/* A log file of the run: the launcher's, or an instance's. */
typedef struct log_file {
    int fd;      /* -1: none */
    char *name;  /* its path: a file the run leaves unused is removed */
    bool failed; /* a write to it failed (said once) */
    bool used;   /* something was written to it */
} log_file;

typedef struct instance {
    pid_t pid;         /* its main process; 0: none (never started, or reaped) */
    int pidfd;         /* -1: none */
    bool exited;       /* the main process exited (a zombie until reaped) */
    bool done;         /* down for good: no restart to come */
    bool ever_started; /* its status counts */
    int status;        /* the last wait status */
    int out_fd;        /* read end of its output pipe; -1 */
    log_file log;      /* its log file */
    pf__line line;     /* captured output not yet a whole line */
    double started_at;
    double restart_at; /* < 0: no restart due */
    int delay_ms;      /* the next back-off */
    unsigned restarts;
} instance;

struct pf_supervisor {
    const pf_launch_spec *spec;
    pf_supervisor_options o;
    char *file;  /* the resolved program */
    bool memory; /* memory binding is on and allowed here */
    int epfd;
    int timerfd;
    bool tick;         /* no pidfds: poll exits every TICK_MS */
    log_file main_log; /* the launcher's log file */
    bool log_failed;   /* some log file lost output: the run's status is not 0 */
    pf__console out;   /* the instances' output, when copied to the console */
    pf__console err;   /* the supervisor's messages, without a log callback */
    instance *in;
    size_t n;
    bool stopping;      /* a signal was forwarded (or fail-fast): nothing restarts */
    bool interrupted;   /* pf_supervisor_signal(): the end does not wait for the console */
    bool held_back;     /* output not read until the console catches up (no log files) */
    long cause;         /* the instance whose failure stopped the others (fail-fast); -1 */
    double kill_at;     /* SIGKILL what is left then; < 0 none */
    double drain_until; /* all down: stop waiting for output then; < 0 not yet */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- messages ------------------------------------------------------------ */

/* A write to a log file; a failure is said once per file, and the run fails. */
static void log_write(pf_supervisor *s, log_file *f, const char *what, const char *buf, size_t n);

/*
 * The supervisor's messages: to the log callback, or to its own
 * non-blocking stderr; and, with a timestamp, to the launcher's log file.
 */
static void say_text(pf_supervisor *s, pf_log_level level, const char *text)
{
    if (s->main_log.fd >= 0) {
        char *line = pf__log_file_line(level, text);
        if (line)
            log_write(s, &s->main_log, "the launcher's log file", line, strlen(line));
        free(line);
    }
    if (s->o.log) {
        s->o.log(s->o.log_ctx, level, text);
        return;
    }
    char *line = pf__log_console_line(level, text);
    if (line)
        pf__console_write(&s->err, line, strlen(line));
    free(line);
}

static void say(pf_supervisor *s, pf_log_level level, const char *fmt, ...) PF__PRINTF(3, 4);
static void say(pf_supervisor *s, pf_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = pf__vstrdupf(fmt, ap);
    va_end(ap);
    if (text)
        say_text(s, level, text);
    free(text);
}

/* A pf_log_fn for what the supervisor's helpers report (spawn's binding warnings). */
static void say_fn(void *ctx, pf_log_level level, const char *text)
{
    say_text(ctx, level, text);
}

static void log_write(pf_supervisor *s, log_file *f, const char *what, const char *buf, size_t n)
{
    if (f->fd < 0 || f->failed || n == 0)
        return;
    f->used = true;
    int rc = pf__write_all(f->fd, buf, n);
    if (rc == 0)
        return;
    f->failed = true;
    s->log_failed = true;
    /* Said after f->failed is set: the message does not go into the file that failed again. */
    say(s, PF_LOG_ERROR, "cannot write %s: %s (its output from now on is missing there)", what,
        strerror(-rc));
}

void pf_supervisor_options_init(pf_supervisor_options *o)
{
    memset(o, 0, sizeof *o);
    o->console_fd = 1;
    o->grace_ms = DEFAULT_GRACE_MS;
    o->restart_delay_ms = DEFAULT_RESTART_DELAY_MS;
    o->restart_max_delay_ms = DEFAULT_RESTART_MAX_MS;
    o->restart_reset_ms = DEFAULT_RESTART_RESET_MS;
}

static uint64_t event_key(enum event_kind kind, size_t i)
{
    return (uint64_t)kind << 32 | (uint64_t)i;
}

static int watch(pf_supervisor *s, int fd, enum event_kind kind, size_t i)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = event_key(kind, i)};
    return epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

static void close_fd(pf_supervisor *s, int *fd)
{
    if (*fd < 0)
        return;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, *fd, NULL);
    close(*fd);
    *fd = -1;
}

/* ---- output ---------------------------------------------------------------- */

typedef struct line_target {
    pf_supervisor *s;
    size_t i;
} line_target;

static void emit_line(void *ctx, const char *line, size_t len)
{
    line_target *t = ctx;
    const pf_supervisor_options *o = &t->s->o;
    if (o->on_output) {
        o->on_output(o->ctx, t->i, line, len);
        return;
    }
    /* "[i] line\n" in one piece, so that the instances' lines never mix; i is
       the instance's index in the plan, as in its log file's name. */
    char out[PF__LINE_MAX + 32];
    size_t head = (size_t)snprintf(out, 32, "[%d] ", t->s->spec->plan->instances[t->i].index);
    memcpy(out + head, line, len);
    out[head + len] = '\n';
    pf__console_write(&t->s->out, out, head + len + 1);
}

static bool by_lines(const pf_supervisor *s)
{
    return s->o.on_output || s->o.prefix_lines;
}

/* Copy output to the log file whole, and to the console or the callback. */
static void relay(pf_supervisor *s, size_t i, const char *buf, size_t n)
{
    instance *in = &s->in[i];
    if (in->log.fd >= 0) {
        char what[64];
        snprintf(what, sizeof what, "the log file of instance %d",
                 s->spec->plan->instances[i].index);
        log_write(s, &in->log, what, buf, n);
    }
    line_target t = {s, i};
    if (by_lines(s))
        pf__line_feed(&in->line, buf, n, emit_line, &t);
    else
        pf__console_write(&s->out, buf, n);
}

static void close_output(pf_supervisor *s, size_t i)
{
    line_target t = {s, i};
    if (by_lines(s))
        pf__line_flush(&s->in[i].line, emit_line, &t);
    close_fd(s, &s->in[i].out_fd);
}

/* Read what is there; at end of file (or an error) the output is closed. */
static void read_output(pf_supervisor *s, size_t i, bool until_empty)
{
    char buf[65536];
    while (s->in[i].out_fd >= 0) {
        ssize_t got = read(s->in[i].out_fd, buf, sizeof buf);
        if (got > 0)
            relay(s, i, buf, (size_t)got);
        else if (got == 0 || (errno != EINTR && errno != EAGAIN))
            close_output(s, i);
        if (got <= 0 || !until_empty)
            break;
    }
}

/* ---- starting ---------------------------------------------------------- */

static int start_instance(pf_supervisor *s, size_t i, char **why)
{
    const pf_launch_spec *spec = s->spec;
    const pf_instance *in = &spec->plan->instances[i];
    instance *st = &s->in[i];
    int pipefd[2] = {-1, -1};
    if ((s->o.capture || s->o.log_dir) && pipe2(pipefd, O_CLOEXEC) != 0)
        return pf__fail(why, -errno, "cannot create a pipe: %s", strerror(errno));
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    so.file = s->file;
    so.argv = spec->argv;
    so.envp = spec->envp[i];
    if (spec->bind_cpus)
        so.cpus = in->cpus, so.ncpus = in->ncpus;
    if (s->memory)
        so.nodes = in->nodes, so.nnodes = in->nnodes;
    so.stdio[0] = s->o.null_stdin ? PF_SPAWN_DEVNULL : PF_SPAWN_INHERIT;
    so.stdio[1] = so.stdio[2] = pipefd[1] >= 0 ? pipefd[1] : PF_SPAWN_INHERIT;
    so.new_group = true;
    so.death_signal = s->o.death_signal;
    so.log = say_fn;
    so.log_ctx = s;
    int pid = 0;
    int rc = pf_spawn(&so, &pid, why);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    if (rc < 0) {
        if (pipefd[0] >= 0)
            close(pipefd[0]);
        return rc;
    }
    *st = (instance){.pid = pid,
                     .pidfd = -1,
                     .out_fd = pipefd[0],
                     .log = st->log,
                     .ever_started = true,
                     .started_at = now_ms(),
                     .restart_at = -1,
                     .delay_ms = st->delay_ms,
                     .restarts = st->restarts};
    if (st->out_fd >= 0) {
        fcntl(st->out_fd, F_SETFL, O_NONBLOCK);
        watch(s, st->out_fd, EV_OUTPUT, i);
    }
    if (!s->tick) {
        st->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (st->pidfd < 0 || watch(s, st->pidfd, EV_EXIT, i) < 0)
            s->tick = true; /* an old kernel: poll instead */
    }
    return 0;
}

/* ---- exits and deadlines ------------------------------------------------ */

static void signal_groups(pf_supervisor *s, int sig)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->in[i].pid > 0)
            kill(-s->in[i].pid, sig);
}

static int wait_status_of(const siginfo_t *info)
{
    if (info->si_code == CLD_EXITED)
        return (info->si_status & 0xff) << 8;
    return info->si_status & 0x7f; /* killed or dumped: the signal */
}

static bool failed(int status)
{
    return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* "instance 1 exited 0 after 12.3 s", as it happens; failures as errors. */
static void report_exit(pf_supervisor *s, size_t i, int restart_ms)
{
    const instance *in = &s->in[i];
    char what[96], again[48] = "";
    if (WIFSIGNALED(in->status))
        snprintf(what, sizeof what, "was killed by signal %d (%s)", WTERMSIG(in->status),
                 strsignal(WTERMSIG(in->status)));
    else
        snprintf(what, sizeof what, "exited %d", WEXITSTATUS(in->status));
    if (restart_ms >= 0)
        snprintf(again, sizeof again, ": restarting in %d ms", restart_ms);
    say(s, failed(in->status) ? PF_LOG_ERROR : PF_LOG_INFO, "instance %d %s after %.1f s%s",
        s->spec->plan->instances[i].index, what, (now_ms() - in->started_at) / 1e3, again);
}

static void stop(pf_supervisor *s, int sig, const char *message);

static void schedule(pf_supervisor *s, size_t i)
{
    instance *in = &s->in[i];
    bool failed_now = failed(in->status);
    bool again = !s->stopping && (s->o.restart == PF_RESTART_ALWAYS ||
                                  (s->o.restart == PF_RESTART_ON_FAILURE && failed_now));
    int restart_ms = -1;
    if (again) {
        if (s->o.restart_reset_ms > 0 && now_ms() - in->started_at >= s->o.restart_reset_ms)
            in->delay_ms = 0;
        int first = s->o.restart_delay_ms > 0 ? s->o.restart_delay_ms : DEFAULT_RESTART_DELAY_MS;
        int most = s->o.restart_max_delay_ms > 0 ? s->o.restart_max_delay_ms : first;
        restart_ms = in->delay_ms > 0 ? in->delay_ms : first;
        in->delay_ms = restart_ms >= most / 2 ? most : restart_ms * 2;
        in->restart_at = now_ms() + restart_ms;
    } else {
        in->done = true;
    }
    report_exit(s, i, restart_ms);
    if (s->o.on_exit)
        s->o.on_exit(s->o.ctx, i, in->status, restart_ms);
    if (failed_now && !again && s->o.fail_fast && !s->stopping) {
        /* The run's status is this failure's, not that of the SIGTERM it causes. */
        s->cause = (long)i;
        char message[96];
        snprintf(message, sizeof message, "instance %d failed: stopping the others (fail-fast)",
                 s->spec->plan->instances[i].index);
        stop(s, SIGTERM, message);
    }
}

/*
 * Notice main processes that exited, without reaping them (WNOWAIT), and
 * kill what each left running in its group: nothing of an instance outlives
 * it, and nothing holds its output pipe open for ever.
 */
static void observe_exits(pf_supervisor *s)
{
    for (size_t i = 0; i < s->n; i++) {
        instance *in = &s->in[i];
        if (in->pid <= 0 || in->exited)
            continue;
        siginfo_t info;
        memset(&info, 0, sizeof info);
        if (waitid(P_PID, (id_t)in->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
            info.si_pid != in->pid)
            continue;
        in->exited = true;
        in->status = wait_status_of(&info);
        kill(-in->pid, SIGKILL);
        close_fd(s, &in->pidfd);
        schedule(s, i);
    }
}

static void reap(instance *in)
{
    while (in->pid > 0 && waitpid(in->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    in->pid = 0;
}

static void restart(pf_supervisor *s, size_t i)
{
    instance *in = &s->in[i];
    in->restart_at = -1;
    read_output(s, i, true); /* what the old process wrote, before the new one writes */
    if (in->out_fd >= 0)
        close_output(s, i);
    reap(in);
    in->restarts++;
    say(s, PF_LOG_INFO, "restarting instance %d (restart %u)", s->spec->plan->instances[i].index,
        in->restarts);
    char *why = NULL;
    if (start_instance(s, i, &why) < 0) {
        say(s, PF_LOG_ERROR, "cannot restart instance %d: %s", s->spec->plan->instances[i].index,
            why ? why : "out of memory");
        in->exited = true;
        in->status = 127 << 8;
        schedule(s, i);
    }
    free(why);
}

static bool all_down(const pf_supervisor *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->in[i].ever_started && !s->in[i].done)
            return false;
    return true;
}

bool pf_supervisor_finished(const pf_supervisor *s)
{
    if (!s || !all_down(s))
        return false;
    for (size_t i = 0; i < s->n; i++)
        if (s->in[i].out_fd >= 0)
            return false;
    /* What a slow console still holds gets until the drain deadline, so that the
       last lines are not lost; after a signal the end comes at once. */
    bool pending = pf__console_pending(&s->out) || pf__console_pending(&s->err);
    return !pending || s->interrupted || (s->drain_until >= 0 && now_ms() >= s->drain_until);
}

static void check_deadlines(pf_supervisor *s)
{
    double now = now_ms();
    if (s->kill_at >= 0 && now >= s->kill_at) {
        if (!all_down(s))
            say(s, PF_LOG_WARNING, "instances still running %d ms after the signal: killing them",
                s->o.grace_ms);
        signal_groups(s, SIGKILL);
        s->kill_at = -1;
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->in[i].restart_at >= 0 && now >= s->in[i].restart_at)
            restart(s, i);
    if (s->drain_until < 0 && all_down(s))
        s->drain_until = now + s->o.grace_ms;
    /* Output still open after that comes from a process that left the
       instance's group (setsid): it is not waited for. */
    if (s->drain_until >= 0 && now >= s->drain_until)
        for (size_t i = 0; i < s->n; i++)
            if (s->in[i].out_fd >= 0)
                close_output(s, i);
}

static double next_deadline(const pf_supervisor *s)
{
    double next = -1;
    double candidates[4] = {s->kill_at, s->drain_until, -1, -1};
    if (s->tick && !all_down(s))
        candidates[2] = now_ms() + TICK_MS;
    if (pf__console_pending(&s->out) || pf__console_pending(&s->err))
        candidates[3] = now_ms() + TICK_MS; /* try the slow console again */
    for (size_t k = 0; k < 4; k++)
        if (candidates[k] >= 0 && (next < 0 || candidates[k] < next))
            next = candidates[k];
    for (size_t i = 0; i < s->n; i++)
        if (s->in[i].restart_at >= 0 && (next < 0 || s->in[i].restart_at < next))
            next = s->in[i].restart_at;
    return next;
}

int pf_supervisor_timeout(const pf_supervisor *s)
{
    double next = next_deadline(s);
    if (next < 0)
        return -1;
    double left = next - now_ms();
    return left > 0 ? (int)left + 1 : 0;
}

/* The timerfd fires at the next deadline, so that polling the epoll fd alone is enough. */
static void arm_timer(pf_supervisor *s)
{
    struct itimerspec t;
    memset(&t, 0, sizeof t);
    int ms = pf_supervisor_timeout(s);
    if (ms == 0)
        ms = 1;
    if (ms > 0) {
        t.it_value.tv_sec = ms / 1000;
        t.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
    }
    timerfd_settime(s->timerfd, 0, &t, NULL);
}

/*
 * Write what the consoles hold; once drained, say what could not be shown.
 * At the end (final) it is said even if the console never drained (a pipe
 * nobody reads), counting what is still held: that is never shown either.
 */
static void flush_consoles(pf_supervisor *s, bool final)
{
    pf__console_flush(&s->err);
    bool drained = pf__console_flush(&s->out);
    size_t lost = s->out.dropped + (drained ? 0 : s->out.len);
    if ((drained || final) && lost > 0) {
        s->out.dropped = 0;
        say(s, PF_LOG_WARNING,
            "the console could not keep up: %zu bytes of the instances' output were not shown%s",
            lost, s->main_log.fd >= 0 ? " (the log files have them)" : "");
    }
}

/*
 * Without log files the console copy is the only one: rather than drop it,
 * the instances' output is not read while the console is behind (they wait
 * in write(), as they would on a slow terminal), and is read again once the
 * console has taken what it holds.  The supervisor itself never waits.
 */
static void hold_back_output(pf_supervisor *s)
{
    bool hold = !s->o.log_dir && !s->o.on_output && pf__console_pending(&s->out);
    if (hold == s->held_back)
        return;
    s->held_back = hold;
    for (size_t i = 0; i < s->n; i++) {
        if (s->in[i].out_fd < 0)
            continue;
        if (hold)
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->in[i].out_fd, NULL);
        else
            watch(s, s->in[i].out_fd, EV_OUTPUT, i);
    }
}

int pf_supervisor_step(pf_supervisor *s)
{
    if (!s)
        return -EINVAL;
    struct epoll_event ev[64];
    int ready = epoll_wait(s->epfd, ev, 64, 0);
    int rc = ready < 0 && errno != EINTR ? -errno : 0;
    for (int k = 0; k < ready; k++) {
        enum event_kind kind = (enum event_kind)(ev[k].data.u64 >> 32);
        size_t i = (size_t)(ev[k].data.u64 & 0xffffffffu);
        if (kind == EV_TIMER) {
            uint64_t expirations;
            ssize_t ignored = read(s->timerfd, &expirations, sizeof expirations);
            (void)ignored;
        } else if (kind == EV_OUTPUT && i < s->n) {
            read_output(s, i, false);
        }
    }
    observe_exits(s);
    check_deadlines(s);
    flush_consoles(s, false);
    hold_back_output(s);
    arm_timer(s);
    return rc;
}

int pf_supervisor_fd(const pf_supervisor *s)
{
    return s ? s->epfd : -1;
}

int pf_supervisor_run(pf_supervisor *s, int timeout_ms)
{
    double end = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
    pf_supervisor_step(s);
    while (!pf_supervisor_finished(s)) {
        int wait = -1;
        if (end >= 0) {
            double left = end - now_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            wait = (int)left + 1;
        }
        struct pollfd p = {.fd = s->epfd, .events = POLLIN};
        if (poll(&p, 1, wait) < 0) {
            if (errno == EINTR)
                return -EINTR;
            return -errno;
        }
        int rc = pf_supervisor_step(s);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void pf_supervisor_signal(pf_supervisor *s, int sig, const char *message)
{
    if (!s)
        return;
    s->interrupted = true;
    stop(s, sig, message);
}

/* Pass sig on, then the grace period; asked again within it, kill at once. */
static void stop(pf_supervisor *s, int sig, const char *message)
{
    if (message)
        say(s, PF_LOG_INFO, "%s", message);
    if (s->stopping && s->kill_at >= 0 && !all_down(s)) {
        /* Asked again within the grace period (a second Ctrl-C): no more waiting. */
        say(s, PF_LOG_WARNING, "asked to stop again: killing the instances now");
        signal_groups(s, SIGKILL);
        s->kill_at = -1;
        arm_timer(s);
        return;
    }
    s->stopping = true;
    for (size_t i = 0; i < s->n; i++)
        if (s->in[i].restart_at >= 0) {
            s->in[i].restart_at = -1;
            s->in[i].done = true;
        }
    signal_groups(s, sig);
    if (s->kill_at < 0)
        s->kill_at = now_ms() + s->o.grace_ms;
    arm_timer(s);
}

int pf_supervisor_pid(const pf_supervisor *s, size_t i)
{
    return s && i < s->n && !s->in[i].exited ? (int)s->in[i].pid : 0;
}

unsigned pf_supervisor_restarts(const pf_supervisor *s, size_t i)
{
    return s && i < s->n ? s->in[i].restarts : 0;
}

/* A wait status as a shell shows it: the exit status, or 128+N for signal N. */
static int exit_code(int status)
{
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int pf_supervisor_exit_status(pf_supervisor *s)
{
    int code = 0;
    if (s && s->cause >= 0) /* fail-fast: the failure that stopped the others */
        code = exit_code(s->in[s->cause].status);
    for (size_t i = 0; s && i < s->n && code == 0; i++) {
        int st = s->in[i].status;
        if (s->in[i].ever_started && s->in[i].exited && failed(st))
            code = exit_code(st);
    }
    if (code == 0 && s && s->log_failed)
        code = 1; /* the run lost output: not a success */
    return code;
}

/* ---- creating and freeing ------------------------------------------------ */

/*
 * An instance of a start that failed: killed, reaped and its output read,
 * without being reported or counted as an exit (the failure to start is
 * what is reported), so that the run ends at once with nothing running.
 */
static void abandon(pf_supervisor *s, size_t i)
{
    instance *in = &s->in[i];
    if (in->pid > 0)
        kill(-in->pid, SIGKILL);
    reap(in);
    if (in->out_fd >= 0) {
        read_output(s, i, true);
        if (in->out_fd >= 0)
            close_output(s, i);
    }
    close_fd(s, &in->pidfd);
    in->exited = in->ever_started = false;
    in->done = true;
}

int pf_supervisor_start(pf_supervisor *s, char **why)
{
    if (!s)
        return pf__fail(why, -EINVAL, "no supervisor");
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0; i++) {
        pf__log_instance(s->spec, i, s->memory, say_fn, s);
        char *err = NULL;
        rc = start_instance(s, i, &err);
        if (rc < 0) { /* said once, here; *why is the same line */
            say(s, PF_LOG_ERROR, "cannot start instance %d: %s", s->spec->plan->instances[i].index,
                err ? err : strerror(-rc));
            rc = pf__fail(why, rc, "cannot start instance %d: %s",
                          s->spec->plan->instances[i].index, err ? err : strerror(-rc));
        }
        free(err);
    }
    if (rc < 0) { /* nothing half-done: stop what started */
        s->stopping = true;
        for (size_t i = 0; i < s->n; i++)
            abandon(s, i);
    }
    arm_timer(s);
    return rc;
}

static int open_fds(pf_supervisor *s, char **why)
{
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (s->epfd < 0 || s->timerfd < 0 || watch(s, s->timerfd, EV_TIMER, 0) < 0)
        return pf__fail(why, -errno, "cannot create the supervisor's fds: %s", strerror(errno));
    return 0;
}

int pf_supervisor_create(const pf_launch_spec *spec, const pf_supervisor_options *o,
                         pf_supervisor **out, char **why)
{
    if (!spec || !out || !spec->argv || !spec->argv[0] || !spec->plan ||
        spec->plan->ninstances == 0)
        return pf__fail(why, -EINVAL, "nothing to launch");
    pf_supervisor *s = calloc(1, sizeof *s);
    if (!s)
        return pf__fail(why, -ENOMEM, "out of memory");
    s->spec = spec;
    if (o)
        s->o = *o;
    else
        pf_supervisor_options_init(&s->o);
    if (s->o.grace_ms <= 0)
        s->o.grace_ms = DEFAULT_GRACE_MS;
    s->n = spec->plan->ninstances;
    s->epfd = s->timerfd = -1;
    s->main_log = (log_file){.fd = -1};
    s->cause = -1;
    pf__console_open(&s->out, s->o.console_fd);
    pf__console_open(&s->err, s->o.log ? -1 : STDERR_FILENO);
    s->kill_at = s->drain_until = -1;
    s->in = calloc(s->n, sizeof *s->in);
    int *log_fds = calloc(s->n, sizeof *log_fds);
    char **log_names = calloc(s->n, sizeof *log_names);
    int rc = s->in && log_fds && log_names ? 0 : pf__fail(why, -ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < s->n; i++)
        s->in[i] = (instance){.pidfd = -1, .out_fd = -1, .log = {.fd = -1}, .restart_at = -1};
    if (rc == 0)
        rc = pf_launch_spec_resolve(spec, &s->file, why);
    if (rc == 0 && s->o.log_dir) {
        rc = pf__logs_open(s->o.log_dir, s->o.log_prefix ? s->o.log_prefix : "run", spec->plan,
                           &s->main_log.fd, &s->main_log.name, log_fds, log_names, why);
        for (size_t i = 0; rc == 0 && i < s->n; i++)
            s->in[i].log = (log_file){.fd = log_fds[i], .name = log_names[i]};
    }
    /* Before an error, if any: the warnings may explain it. */
    for (size_t k = 0; k < spec->nwarnings; k++)
        say(s, PF_LOG_WARNING, "%s", spec->warnings[k]);
    if (rc == 0)
        rc = open_fds(s, why);
    if (rc == 0 && pf__memory_allowed(spec, say_fn, s, &s->memory) < 0)
        rc = pf__fail(why, -ENOMEM, "out of memory");
    free(log_fds);
    free(log_names);
    if (rc < 0) {
        pf_supervisor_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/*
 * Close a log file; one the run left unused is removed: the file of an
 * instance that never started (a failed start, a failed create), or the
 * launcher's when nothing was said.  Only the files the run made are
 * touched, so a failure leaves no empty log files behind.
 */
static void close_log(log_file *f, bool keep)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->name && !keep && !f->used)
        unlink(f->name);
    free(f->name);
    *f = (log_file){.fd = -1};
}

void pf_supervisor_free(pf_supervisor *s)
{
    if (!s)
        return;
    /* Whatever way it ends, nothing is left behind. */
    signal_groups(s, SIGKILL);
    for (size_t i = 0; s->in && i < s->n; i++) {
        instance *in = &s->in[i];
        if (in->out_fd >= 0 && s->epfd >= 0)
            close_output(s, i);
        else if (in->out_fd >= 0)
            close(in->out_fd);
        if (in->pidfd >= 0)
            close(in->pidfd);
        close_log(&in->log, in->ever_started);
        reap(in);
    }
    flush_consoles(s, true);
    pf__console_flush(&s->err); /* the drop report, if any */
    pf__console_close(&s->out);
    pf__console_close(&s->err);
    close_log(&s->main_log, false);
    if (s->timerfd >= 0)
        close(s->timerfd);
    if (s->epfd >= 0)
        close(s->epfd);
    free(s->in);
    free(s->file);
    free(s);
}
