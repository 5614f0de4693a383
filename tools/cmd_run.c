/*
 * cmd_run.c - `pinfer run`: plan, launch and supervise.
 *
 * The launch specification comes from the library; one instance without a
 * log directory is exec'd in place (the program is the process); otherwise
 * a supervisor runs the instances, and this file adds what only a command
 * line program should do: catch SIGINT, SIGTERM, SIGHUP and SIGQUIT (through
 * a self-pipe) and pass them on, ignore SIGPIPE (a console that went away
 * must not kill the launcher and orphan the instances), and turn the
 * outcome into an exit status.
 */
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_NOT_FOUND 127 /* as a shell says a command cannot be found */
#define EXIT_NOT_EXECUTABLE 126

static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char byte = (unsigned char)sig;
    ssize_t ignored = write(signal_pipe[1], &byte, 1);
    (void)ignored;
    errno = saved;
}

static const int FORWARDED[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NFORWARDED (sizeof FORWARDED / sizeof *FORWARDED)

static void install_handlers(struct sigaction *saved)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < NFORWARDED; i++)
        sigaction(FORWARDED[i], &sa, &saved[i]);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &saved[NFORWARDED]);
}

static void restore_handlers(const struct sigaction *saved)
{
    for (size_t i = 0; i < NFORWARDED; i++)
        sigaction(FORWARDED[i], &saved[i], NULL);
    sigaction(SIGPIPE, &saved[NFORWARDED], NULL);
}

static void close_signal_pipe(void)
{
    for (int k = 0; k < 2; k++) {
        close(signal_pipe[k]);
        signal_pipe[k] = -1;
    }
}

/* The status a shell gives a program that cannot be run. */
static int status_of_start_error(int rc)
{
    if (rc == -ENOENT)
        return EXIT_NOT_FOUND;
    return rc == -EACCES || rc == -EISDIR || rc == -ENOEXEC ? EXIT_NOT_EXECUTABLE : 1;
}

/* Poll the supervisor and the signals until every instance is down. */
static void supervise(pf_supervisor *sup)
{
    while (!pf_supervisor_finished(sup)) {
        struct pollfd fds[2] = {{.fd = pf_supervisor_fd(sup), .events = POLLIN},
                                {.fd = signal_pipe[0], .events = POLLIN}};
        if (poll(fds, 2, pf_supervisor_timeout(sup)) < 0 && errno != EINTR)
            break;
        unsigned char sigs[64];
        ssize_t got = fds[1].revents & POLLIN ? read(signal_pipe[0], sigs, sizeof sigs) : 0;
        for (ssize_t k = 0; k < got; k++) {
            char message[96];
            snprintf(message, sizeof message, "received %s: passing it on to the instances",
                     strsignal(sigs[k]));
            pf_supervisor_signal(sup, sigs[k], message);
        }
        if (pf_supervisor_step(sup) < 0)
            break;
    }
}

static int run_supervised(const tool_options *o, const pf_launch_spec *spec)
{
    pf_supervisor_options so;
    pf_supervisor_options_init(&so);
    so.log_dir = o->log_dir;
    so.log_prefix = o->log_prefix;
    so.capture = o->log_dir || spec->plan->ninstances > 1;
    so.prefix_lines = spec->plan->ninstances > 1;
    so.fail_fast = o->fail_fast;
    so.death_signal = SIGKILL; /* even a SIGKILL of the launcher leaves nothing behind */
    /* A process group in the background that reads the terminal is stopped
       (SIGTTIN) for ever: instances do not read a terminal. */
    so.null_stdin = isatty(STDIN_FILENO);
    if (o->grace_ms > 0)
        so.grace_ms = o->grace_ms;
    /* First: a failure here must not leave the supervisor's log files behind. */
    if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        fprintf(stderr, "pinfer: error: cannot create a pipe: %s\n", strerror(errno));
        return 1;
    }
    char *why = NULL;
    pf_supervisor *sup = NULL;
    int rc = pf_supervisor_create(spec, &so, &sup, &why);
    if (rc < 0) {
        pf_log_stderr(NULL, PF_LOG_ERROR, why ? why : pf_strerror(rc));
        free(why);
        close_signal_pipe();
        /* 127 or 126 only when the program is what cannot be run (not a log directory). */
        char *path = NULL;
        int program = pf_launch_spec_resolve(spec, &path, NULL);
        free(path);
        return program < 0 ? status_of_start_error(program) : 1;
    }
    struct sigaction saved[NFORWARDED + 1];
    install_handlers(saved);
    rc = pf_supervisor_start(sup, &why);
    supervise(sup);
    int status = pf_supervisor_exit_status(sup);
    pf_supervisor_free(sup);
    restore_handlers(saved);
    close_signal_pipe();
    if (rc < 0) {
        /* The supervisor said which instance could not start, and stopped the others. */
        free(why);
        return status_of_start_error(rc);
    }
    return status;
}

static int run_run(const tool_options *o)
{
    pf_launch_spec *spec = NULL;
    int rc = 0, status = tool_launch_spec(o, &spec);
    if (status)
        return status;
    char *why = NULL;
    if (spec->python_missing) {
        /* Before anything else: nothing of the plan matters without Python. */
        pf_launch_spec_resolve(spec, NULL, &why);
        rc = -ENOENT;
    } else if (spec->plan->ninstances == 1 && !o->log_dir) {
        rc = pf_launch_exec(spec, 0, NULL, NULL, &why);
    } else {
        status = run_supervised(o, spec);
        pf_launch_spec_free(spec);
        return status;
    }
    pf_log_stderr(NULL, PF_LOG_ERROR, why ? why : pf_strerror(rc));
    free(why);
    pf_launch_spec_free(spec);
    return status_of_start_error(rc);
}

const tool_command_def tool_cmd_run = {
    .name = "run",
    .id = CMD_RUN,
    .args = "[OPTIONS] [--] PROGRAM [ARGS...]",
    .summary = "launch and supervise pinned instances of PROGRAM",
    .about = "Plan instances over physical cores and NUMA nodes, set OpenMP and the allocator\n"
             "up, bind each instance's CPUs and memory, launch them all, pass signals on, log,\n"
             "and exit with the first failed instance's status.",
    .run = run_run,
};
