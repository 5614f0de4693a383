/*
 * spawn.c - starting one bound process, safely from a threaded program.
 *
 * After fork() a child of a multi-threaded process holds whatever locks
 * other threads held at that moment (malloc's, stdio's, the dynamic
 * loader's): calling anything that may take one deadlocks.  So, as libuv's
 * uv_spawn does, everything the child needs is built before fork (argv, the
 * environment, the /bin/sh fallback's argv, the CPU and node masks, the
 * stdio fds), and the child only makes async-signal-safe calls.
 *
 * What the child could not do comes back through a pipe that is
 * close-on-exec: a record per event (a binding refused: a warning, the
 * child goes on; execve failed: the child exits 127).  The parent reads
 * until end of file, which comes when the exec succeeded (the pipe closed
 * with the old image) or the child died.
 *
 * All signals are blocked around fork(), so that none of the parent's
 * handlers runs in the child before the child has set every disposition
 * back to its default (handlers and SIG_IGN alike: an instance started
 * from a script that ignored SIGINT must still stop on Ctrl-C) and emptied
 * its mask.
 */
#include "launch/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum stage { STAGE_CPUS = 1, STAGE_MEMORY, STAGE_SETUP, STAGE_EXEC };

typedef struct report {
    int stage;
    int err;
} report;

/* Everything the child needs, built before fork. */
typedef struct prepared {
    const pf_spawn_options *o;
    char *const *envp;
    char **sh_argv; /* "sh" FILE ARGS... for a file without #! */
    pf__binding binding;
    int stdio[4]; /* resolved fds for 0..3, -1: inherit (3: none) */
    int null_fd;
    pid_t parent;
} prepared;

static void prepared_free(prepared *p)
{
    free(p->sh_argv);
    pf__binding_free(&p->binding);
    if (p->null_fd >= 0)
        close(p->null_fd);
}

static int prepare(const pf_spawn_options *o, prepared *p)
{
    memset(p, 0, sizeof *p);
    p->null_fd = -1;
    p->o = o;
    p->envp = o->envp ? o->envp : environ;
    p->parent = getpid();
    size_t n = 0;
    while (o->argv[n])
        n++;
    p->sh_argv = calloc(n + 2, sizeof *p->sh_argv);
    if (!p->sh_argv)
        return -ENOMEM;
    p->sh_argv[0] = "sh";
    p->sh_argv[1] = (char *)o->file;
    for (size_t i = 1; i < n; i++)
        p->sh_argv[i + 1] = o->argv[i];
    int rc = pf__binding_make(o->cpus, o->ncpus, o->nodes, o->nnodes, &p->binding);
    for (int k = 0; rc == 0 && k < 3; k++) {
        p->stdio[k] = o->stdio[k] >= 0 ? o->stdio[k] : -1;
        if (o->stdio[k] == PF_SPAWN_DEVNULL) {
            if (p->null_fd < 0)
                p->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
            rc = p->null_fd < 0 ? -errno : 0;
            p->stdio[k] = p->null_fd;
        }
    }
    p->stdio[3] = o->fd3 >= 0 ? o->fd3 : -1;
    if (rc < 0)
        prepared_free(p);
    return rc;
}

/* Async-signal-safe: one record to the parent. */
static void tell(int fd, int stage, int err)
{
    report r = {stage, err};
    ssize_t ignored = write(fd, &r, sizeof r);
    (void)ignored;
}

/*
 * Stdio and fd 3: dup2 onto 0..3.  A source fd that is itself 0..3 could
 * be overwritten by an earlier dup2, and so could the report pipe: first
 * move them above 3.
 */
static int child_stdio(const prepared *p, int *report_fd)
{
    if (p->stdio[3] >= 0 && *report_fd <= 3) {
        *report_fd = fcntl(*report_fd, F_DUPFD_CLOEXEC, 4);
        if (*report_fd < 0)
            return -errno;
    }
    int src[4];
    for (int k = 0; k < 4; k++) {
        src[k] = p->stdio[k];
        if (src[k] >= 0 && src[k] <= 3 && src[k] != k) {
            src[k] = fcntl(src[k], F_DUPFD_CLOEXEC, 4);
            if (src[k] < 0)
                return -errno;
        }
    }
    for (int k = 0; k < 4; k++) {
        if (src[k] == k) {
            int flags = fcntl(k, F_GETFD);
            if (flags >= 0)
                fcntl(k, F_SETFD, flags & ~FD_CLOEXEC);
        } else if (src[k] >= 0 && dup2(src[k], k) < 0) {
            return -errno;
        }
    }
    return 0;
}

/* Async-signal-safe only, from here to _exit. */
static void child(const prepared *p, int report_fd)
{
    const pf_spawn_options *o = p->o;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL); /* EINVAL for the libc's reserved ones: fine */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (o->death_signal > 0) {
        prctl(PR_SET_PDEATHSIG, o->death_signal);
        if (getppid() != p->parent) /* the parent died before prctl */
            _exit(128 + o->death_signal);
    }
    int rc = 0;
    if (o->new_group && setpgid(0, 0) != 0)
        rc = -errno;
    if (rc == 0)
        rc = child_stdio(p, &report_fd);
    if (rc < 0) {
        tell(report_fd, STAGE_SETUP, -rc);
        _exit(127);
    }
    if ((rc = pf__binding_apply_cpus(&p->binding)) < 0)
        tell(report_fd, STAGE_CPUS, -rc);
    if ((rc = pf__binding_apply_memory(&p->binding)) < 0)
        tell(report_fd, STAGE_MEMORY, -rc);
    execve(o->file, o->argv, p->envp);
    if (errno == ENOEXEC)
        execve("/bin/sh", p->sh_argv, p->envp);
    int err = errno;
    tell(report_fd, STAGE_EXEC, err);
    _exit(err == ENOENT ? 127 : 126); /* as a shell says it */
}

static int exec_failure(const pf_spawn_options *o, int stage, int err, char **why)
{
    if (stage == STAGE_SETUP)
        return pf__fail(why, -err, "cannot set up %s's process: %s", o->argv[0], strerror(err));
    return pf__fail(why, -err, "cannot run %s: %s", o->argv[0], strerror(err));
}

static void warn_binding(const pf_spawn_options *o, int stage, int err)
{
    pf__logf(o->log, o->log_ctx, PF_LOG_WARNING, "cannot bind %s: %s",
             stage == STAGE_CPUS ? "CPUs" : "memory", strerror(err));
}

/* The parent's side of the report pipe: warnings logged, an exec failure returned. */
static int read_reports(const pf_spawn_options *o, int fd, pid_t pid, char **why)
{
    report r;
    int rc = 0;
    for (;;) {
        ssize_t got = read(fd, &r, sizeof r);
        if (got < 0 && errno == EINTR)
            continue;
        if (got != (ssize_t)sizeof r)
            break; /* end of file: exec'd, or died */
        if (r.stage == STAGE_CPUS || r.stage == STAGE_MEMORY)
            warn_binding(o, r.stage, r.err);
        else if (rc == 0)
            rc = exec_failure(o, r.stage, r.err, why);
    }
    if (rc < 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    return rc;
}

void pf_spawn_options_init(pf_spawn_options *o)
{
    memset(o, 0, sizeof *o);
    o->stdio[0] = o->stdio[1] = o->stdio[2] = PF_SPAWN_INHERIT;
    o->fd3 = -1;
}

static bool options_valid(const pf_spawn_options *o)
{
    return o && o->file && o->argv && o->argv[0];
}

int pf_spawn(const pf_spawn_options *o, int *pid_out, char **why)
{
    if (!options_valid(o) || !pid_out)
        return pf__fail(why, -EINVAL, "nothing to start");
    prepared p;
    int rc = prepare(o, &p);
    if (rc < 0)
        return pf__fail(why, rc, "cannot start %s: %s", o->argv[0], strerror(-rc));
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        rc = -errno;
        prepared_free(&p);
        return pf__fail(why, rc, "cannot create a pipe: %s", strerror(-rc));
    }
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid_t pid = fork();
    if (pid == 0)
        child(&p, fds[1]);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        prepared_free(&p);
        return pf__fail(why, -err, "fork: %s", strerror(err));
    }
    if (o->new_group)
        setpgid(pid, pid); /* also here: no race with a signal sent to the group right away */
    rc = read_reports(o, fds[0], pid, why);
    close(fds[0]);
    prepared_free(&p);
    if (rc == 0)
        *pid_out = (int)pid;
    return rc;
}

int pf_exec(const pf_spawn_options *o, char **why)
{
    if (!options_valid(o))
        return pf__fail(why, -EINVAL, "nothing to run");
    prepared p;
    int rc = prepare(o, &p);
    if (rc < 0)
        return pf__fail(why, rc, "cannot run %s: %s", o->argv[0], strerror(-rc));
    if ((rc = pf__binding_apply_cpus(&p.binding)) < 0)
        warn_binding(o, STAGE_CPUS, -rc);
    if ((rc = pf__binding_apply_memory(&p.binding)) < 0)
        warn_binding(o, STAGE_MEMORY, -rc);
    execve(o->file, o->argv, p.envp);
    if (errno == ENOEXEC)
        execve("/bin/sh", p.sh_argv, p.envp);
    int err = errno;
    prepared_free(&p);
    return exec_failure(o, STAGE_EXEC, err, why);
}
