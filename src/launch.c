/*
 * launch.c - starting and supervising instances (launcher.md section 5).
 *
 * Binding is native, between fork and exec: sched_setaffinity for the CPUs
 * and set_mempolicy(MPOL_BIND) for memory.  Whether memory binding is
 * allowed here is probed once in the launcher (containers often refuse it):
 * a refusal is one warning and CPU binding goes on.
 *
 * One instance without a log dir is bound and exec'd in place: no fork, no
 * supervisor, the program is the process (signals and exit status are its
 * own).  Otherwise every instance is forked into its own process group, and
 * the launcher loops on poll() over a self-pipe fed by its signal handlers
 * (SIGCHLD and the four forwarded signals) and, with a log dir, the pipes
 * that carry each instance's output to its log file and to the console.
 */
#include "util.h"

#include "pinfer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MPOL_BIND_MODE 2 /* MPOL_BIND of <linux/mempolicy.h> */
#define DEFAULT_GRACE_MS 10000

extern char **environ;

void pf_launch_options_init(pf_launch_options *o)
{
    memset(o, 0, sizeof *o);
    o->bind_cpus = true;
    o->bind_memory = true;
    o->exec_single = true;
    o->grace_ms = DEFAULT_GRACE_MS;
}

/* ---- messages ----------------------------------------------------------- */

static int launcher_log_fd = -1; /* DIR/<prefix>_<ts>_instances.log, or -1 */

static void say(const char *level, const char *fmt, ...) PF__PRINTF(2, 3);
static void say(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = pf__vstrdupf(fmt, ap);
    va_end(ap);
    char *line = text ? pf__strdupf("pinfer: %s: %s\n", level, text) : NULL;
    if (line) {
        ssize_t ignored = write(STDERR_FILENO, line, strlen(line));
        if (launcher_log_fd >= 0)
            ignored = write(launcher_log_fd, line, strlen(line));
        (void)ignored;
    }
    free(line);
    free(text);
}

/* ---- binding ------------------------------------------------------------ */

char *pf_binding_command(const pf_instance *in, bool bind_cpus, bool bind_memory)
{
    char *cpus = NULL, *nodes = NULL, *out = NULL;
    if (pf_cpulist_format(in->cpus, in->ncpus, &cpus) == 0 &&
        pf_cpulist_format(in->nodes, in->nnodes, &nodes) == 0) {
        if (bind_cpus && bind_memory)
            out = pf__strdupf("numactl -C %s -m %s", cpus, nodes);
        else if (bind_cpus)
            out = pf__strdupf("taskset -c %s", cpus);
        else
            out = strdup("(no binding)");
    }
    free(cpus);
    free(nodes);
    return out;
}

typedef struct binding {
    cpu_set_t *cpus;
    size_t cpus_size;
    unsigned long *nodes;
    unsigned long max_node; /* bits in nodes */
} binding;

static void binding_free(binding *b)
{
    if (b->cpus)
        CPU_FREE(b->cpus);
    free(b->nodes);
}

static int binding_make(const pf_instance *in, binding *b)
{
    memset(b, 0, sizeof *b);
    int max_cpu = 0, max_node = 0;
    for (size_t k = 0; k < in->ncpus; k++)
        max_cpu = in->cpus[k] > max_cpu ? in->cpus[k] : max_cpu;
    for (size_t k = 0; k < in->nnodes; k++)
        max_node = in->nodes[k] > max_node ? in->nodes[k] : max_node;
    b->cpus = CPU_ALLOC(max_cpu + 1);
    b->cpus_size = CPU_ALLOC_SIZE(max_cpu + 1);
    size_t bits = sizeof(unsigned long) * 8;
    size_t words = (size_t)max_node / bits + 1;
    b->nodes = calloc(words, sizeof *b->nodes);
    b->max_node = words * bits;
    if (!b->cpus || !b->nodes) {
        binding_free(b);
        return -ENOMEM;
    }
    CPU_ZERO_S(b->cpus_size, b->cpus);
    for (size_t k = 0; k < in->ncpus; k++)
        CPU_SET_S((size_t)in->cpus[k], b->cpus_size, b->cpus);
    for (size_t k = 0; k < in->nnodes; k++)
        b->nodes[(size_t)in->nodes[k] / bits] |= 1ul << ((size_t)in->nodes[k] % bits);
    return 0;
}

static int set_memory_policy(const binding *b)
{
    return (int)syscall(SYS_set_mempolicy, MPOL_BIND_MODE, b->nodes, b->max_node + 1);
}

/*
 * May this process bind memory?  Try it with instance 0's nodes and put the
 * policy back (the launcher itself allocates nothing that matters).
 */
static bool memory_binding_allowed(const binding *b, int *err)
{
    int mode = 0;
    unsigned long saved[64] = {0};
    unsigned long saved_bits = sizeof saved * 8;
    bool have_saved = syscall(SYS_get_mempolicy, &mode, saved, saved_bits, NULL, 0) == 0;
    if (set_memory_policy(b) != 0) {
        *err = errno;
        return false;
    }
    if (have_saved)
        syscall(SYS_set_mempolicy, mode, mode ? saved : NULL, mode ? saved_bits : 0);
    else
        syscall(SYS_set_mempolicy, 0, NULL, 0);
    return true;
}

/* In the child (or the exec'd process): bind, reporting failure on stderr. */
static void bind_self(const binding *b, bool cpus, bool memory)
{
    if (cpus && sched_setaffinity(0, b->cpus_size, b->cpus) != 0)
        say("warning", "cannot bind CPUs: %s", strerror(errno));
    if (memory && set_memory_policy(b) != 0)
        say("warning", "cannot bind memory: %s", strerror(errno));
}

/* ---- exec --------------------------------------------------------------- */

/* execve, looking argv[0] up on PATH when asked (like execvp, with our env). */
static void exec_command(const pf_launch_options *o, char **envp)
{
    const char *file = o->argv[0];
    if (!o->search_path || strchr(file, '/')) {
        execve(file, o->argv, envp);
    } else {
        const char *path = getenv("PATH");
        if (!path)
            path = "/usr/local/bin:/usr/bin:/bin";
        int err = ENOENT;
        for (const char *p = path;; p++) {
            const char *colon = strchr(p, ':');
            size_t len = colon ? (size_t)(colon - p) : strlen(p);
            char full[4096];
            if ((size_t)snprintf(full, sizeof full, "%.*s/%s", (int)len, len ? p : ".", file) <
                sizeof full) {
                execve(full, o->argv, envp);
                if (errno != ENOENT && errno != ENOTDIR)
                    err = errno;
            }
            if (!colon)
                break;
            p = colon;
        }
        errno = err;
    }
    say("error", "cannot run %s: %s", file, strerror(errno));
}

/* ---- supervision -------------------------------------------------------- */

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

typedef struct child {
    pid_t pid; /* 0 once reaped */
    int status;
    bool exited;
    int out_fd; /* read end of its output pipe, or -1 */
    int log_fd; /* its log file, or -1 */
    bool at_line_start;
} child;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += w;
        n -= (size_t)w;
    }
}

/* Copy output to the log file whole, and to the console with "[i] " at line starts. */
static void relay(child *c, size_t index, bool prefix, const char *buf, size_t n)
{
    write_all(c->log_fd, buf, n);
    if (!prefix) {
        write_all(STDOUT_FILENO, buf, n);
        return;
    }
    char tag[32];
    int tag_len = snprintf(tag, sizeof tag, "[%zu] ", index);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (c->at_line_start) {
            write_all(STDOUT_FILENO, tag, (size_t)tag_len);
            c->at_line_start = false;
        }
        if (buf[i] == '\n') {
            write_all(STDOUT_FILENO, buf + start, i + 1 - start);
            start = i + 1;
            c->at_line_start = true;
        }
    }
    if (start < n)
        write_all(STDOUT_FILENO, buf + start, n - start);
}

static void describe_status(int status, char *buf, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
}

static int exit_code(int status)
{
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* ---- log files ---------------------------------------------------------- */

static char *instance_log_name(const char *dir, const char *prefix, const char *stamp,
                               const pf_instance *in)
{
    char *cpus = NULL;
    if (pf_cpulist_format(in->cpus, in->ncpus, &cpus) < 0)
        return NULL;
    for (char *p = cpus; *p; p++)
        if (*p == ',')
            *p = '_';
    char *name = pf__strdupf("%s/%s_%s_instance_%d_cores_%s.log", dir, prefix, stamp, in->index,
                             cpus);
    free(cpus);
    return name;
}

/*
 * Create the run's log files with O_EXCL: a time stamp whose files all
 * exist already gets a suffix (_2, _3, ...), so nothing is overwritten.
 */
static int open_logs(const pf_plan *plan, const pf_launch_options *o, child *children,
                     char **why)
{
    const char *prefix = o->log_prefix ? o->log_prefix : "run";
    if (mkdir(o->log_dir, 0777) != 0 && errno != EEXIST)
        return pf__fail(why, -errno, "cannot create log directory %s: %s", o->log_dir,
                        strerror(errno));
    struct stat st;
    if (stat(o->log_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return pf__fail(why, -ENOTDIR, "log path %s is not a directory", o->log_dir);
    char base[32];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(base, sizeof base, "%Y%m%d%H%M%S", &tm);
    for (int attempt = 1; attempt < 1000; attempt++) {
        char stamp[48];
        if (attempt == 1)
            snprintf(stamp, sizeof stamp, "%s", base);
        else
            snprintf(stamp, sizeof stamp, "%s_%d", base, attempt);
        char *main_name = pf__strdupf("%s/%s_%s_instances.log", o->log_dir, prefix, stamp);
        if (!main_name)
            return pf__fail(why, -ENOMEM, "out of memory");
        int fd = open(main_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        int err = errno;
        free(main_name);
        if (fd < 0 && err == EEXIST)
            continue;
        if (fd < 0)
            return pf__fail(why, -err, "cannot create a log file in %s: %s", o->log_dir,
                            strerror(err));
        bool clash = false;
        for (size_t i = 0; i < plan->ninstances; i++) {
            char *name = instance_log_name(o->log_dir, prefix, stamp, &plan->instances[i]);
            children[i].log_fd =
                name ? open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
            err = name ? errno : ENOMEM;
            free(name);
            if (children[i].log_fd < 0) {
                clash = err == EEXIST;
                for (size_t k = 0; k < i; k++) {
                    close(children[k].log_fd);
                    children[k].log_fd = -1;
                }
                break;
            }
        }
        if (clash) {
            close(fd);
            continue; /* the main log was new: it stays, empty; try the next stamp */
        }
        if (children[plan->ninstances ? plan->ninstances - 1 : 0].log_fd < 0 &&
            plan->ninstances) {
            close(fd);
            return pf__fail(why, -err, "cannot create a log file in %s: %s", o->log_dir,
                            strerror(err));
        }
        launcher_log_fd = fd;
        return 0;
    }
    return pf__fail(why, -EEXIST, "cannot find a new log file name in %s", o->log_dir);
}

/* ---- the launcher ------------------------------------------------------- */

static void log_command(const pf_instance *in, const pf_launch_options *o)
{
    char *bind = pf_binding_command(in, o->bind_cpus, o->bind_memory);
    size_t len = 0;
    for (size_t i = 0; o->argv[i]; i++)
        len += strlen(o->argv[i]) + 3;
    char *cmd = malloc(len + 1);
    if (cmd) {
        cmd[0] = '\0';
        size_t at = 0;
        for (size_t i = 0; o->argv[i]; i++)
            at += (size_t)snprintf(cmd + at, len + 1 - at, "%s%s", i ? " " : "", o->argv[i]);
    }
    say("info", "instance %d: %s %s", in->index, bind ? bind : "", cmd ? cmd : "");
    free(bind);
    free(cmd);
}

/* Bind and exec in place: the single-instance path. */
static int exec_in_place(const pf_plan *plan, const pf_launch_env *env,
                         const pf_launch_options *o, bool memory, char **why)
{
    const pf_instance *in = &plan->instances[0];
    binding b;
    if (binding_make(in, &b) < 0)
        return pf__fail(why, -ENOMEM, "out of memory");
    char **envp = NULL;
    int rc = pf_launch_env_apply(env, 0, o->environ ? o->environ : environ, &envp);
    if (rc < 0) {
        binding_free(&b);
        return pf__fail(why, rc, "out of memory");
    }
    log_command(in, o);
    bind_self(&b, o->bind_cpus, memory);
    exec_command(o, envp);
    int err = errno;
    pf_strv_free(envp);
    binding_free(&b);
    return pf__fail(why, err == ENOENT ? -ENOENT : -EACCES, "cannot run %s: %s", o->argv[0],
                    strerror(err));
}

static void install_handlers(struct sigaction *saved)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < NFORWARDED; i++)
        sigaction(FORWARDED[i], &sa, &saved[i]);
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, &saved[NFORWARDED]);
}

static void restore_handlers(const struct sigaction *saved)
{
    for (size_t i = 0; i < NFORWARDED; i++)
        sigaction(FORWARDED[i], &saved[i], NULL);
    sigaction(SIGCHLD, &saved[NFORWARDED], NULL);
}

/* Fork instance i: own process group, output to its pipe, bound, exec'd. */
static int start_child(const pf_plan *plan, const pf_launch_env *env, const pf_launch_options *o,
                       bool memory, size_t i, child *c, const struct sigaction *saved)
{
    const pf_instance *in = &plan->instances[i];
    binding b;
    char **envp = NULL;
    int pipefd[2] = {-1, -1};
    if (binding_make(in, &b) < 0)
        return -ENOMEM;
    if (pf_launch_env_apply(env, i, o->environ ? o->environ : environ, &envp) < 0) {
        binding_free(&b);
        return -ENOMEM;
    }
    if (o->log_dir && pipe2(pipefd, O_CLOEXEC) != 0) {
        int err = errno;
        pf_strv_free(envp);
        binding_free(&b);
        return -err;
    }
    log_command(in, o);
    pid_t pid = fork();
    if (pid == 0) {
        restore_handlers(saved);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        if (pipefd[1] >= 0) {
            dup2(pipefd[1], STDOUT_FILENO);
            dup2(pipefd[1], STDERR_FILENO);
        }
        launcher_log_fd = -1;
        bind_self(&b, o->bind_cpus, memory);
        exec_command(o, envp);
        _exit(127);
    }
    int err = errno;
    pf_strv_free(envp);
    binding_free(&b);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    if (pid < 0) {
        if (pipefd[0] >= 0)
            close(pipefd[0]);
        return -err;
    }
    setpgid(pid, pid); /* also here: no race with a signal forwarded right away */
    c->pid = pid;
    c->out_fd = pipefd[0];
    return 0;
}

static void forward(child *children, size_t n, int sig)
{
    for (size_t i = 0; i < n; i++)
        if (children[i].pid > 0 && !children[i].exited)
            kill(-children[i].pid, sig);
}

static void reap(child *children, size_t n)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        for (size_t i = 0; i < n; i++)
            if (children[i].pid == pid) {
                children[i].status = status;
                children[i].exited = true;
            }
    }
}

static bool all_done(const child *children, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!children[i].exited || children[i].out_fd >= 0)
            return false;
    return true;
}

/* The supervision loop: output, signals, children, the grace period. */
static void supervise(const pf_plan *plan, const pf_launch_options *o, child *children)
{
    size_t n = plan->ninstances;
    bool prefix = n > 1;
    double deadline = -1;
    int grace = o->grace_ms > 0 ? o->grace_ms : DEFAULT_GRACE_MS;
    struct pollfd *fds = calloc(n + 1, sizeof *fds);
    size_t *owner = calloc(n + 1, sizeof *owner);
    char buf[65536];
    while (fds && owner && !all_done(children, n)) {
        size_t nfds = 0;
        fds[nfds++] = (struct pollfd){.fd = signal_pipe[0], .events = POLLIN};
        for (size_t i = 0; i < n; i++)
            if (children[i].out_fd >= 0) {
                owner[nfds] = i;
                fds[nfds++] = (struct pollfd){.fd = children[i].out_fd, .events = POLLIN};
            }
        int timeout = -1;
        if (deadline >= 0) {
            double left = deadline - now_ms();
            timeout = left > 0 ? (int)left + 1 : 0;
        }
        int ready = poll(fds, nfds, timeout);
        if (ready < 0 && errno != EINTR)
            break;
        if (deadline >= 0 && now_ms() >= deadline) {
            say("warning", "instances still running %d ms after the signal: killing them", grace);
            forward(children, n, SIGKILL);
            deadline = -2; /* killed: no more deadline */
        }
        if (ready <= 0)
            continue;
        if (fds[0].revents & POLLIN) {
            unsigned char sigs[64];
            ssize_t got = read(signal_pipe[0], sigs, sizeof sigs);
            for (ssize_t k = 0; k < got; k++) {
                if (sigs[k] == SIGCHLD)
                    continue;
                say("info", "received %s: passing it on to the instances", strsignal(sigs[k]));
                forward(children, n, sigs[k]);
                if (deadline == -1)
                    deadline = now_ms() + grace;
            }
            reap(children, n);
        }
        for (size_t f = 1; f < nfds; f++) {
            if (!(fds[f].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            child *c = &children[owner[f]];
            ssize_t got = read(c->out_fd, buf, sizeof buf);
            if (got > 0) {
                relay(c, owner[f], prefix, buf, (size_t)got);
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                if (prefix && !c->at_line_start)
                    write_all(STDOUT_FILENO, "\n", 1);
                close(c->out_fd);
                c->out_fd = -1;
            }
        }
    }
    free(fds);
    free(owner);
    /* Nothing is left behind: a group still alive (or a loop that broke) is killed. */
    for (size_t i = 0; i < n; i++) {
        if (children[i].pid > 0 && !children[i].exited) {
            kill(-children[i].pid, SIGKILL);
            waitpid(children[i].pid, &children[i].status, 0);
            children[i].exited = true;
        }
    }
}

int pf_launch(const pf_plan *plan, const pf_launch_env *env, const pf_launch_options *o,
              int *status, char **why)
{
    if (!plan || !env || !o || !o->argv || !o->argv[0] || !status ||
        env->ninstances != plan->ninstances || plan->ninstances == 0)
        return pf__fail(why, -EINVAL, "nothing to launch");
    *status = 0;
    bool memory = o->bind_memory;
    if (memory) {
        binding probe;
        if (binding_make(&plan->instances[0], &probe) < 0)
            return pf__fail(why, -ENOMEM, "out of memory");
        int err = 0;
        if (!memory_binding_allowed(&probe, &err)) {
            say("warning", "memory binding is refused here (%s): binding CPUs only",
                strerror(err));
            memory = false;
        }
        binding_free(&probe);
    }
    if (o->exec_single && plan->ninstances == 1 && !o->log_dir)
        return exec_in_place(plan, env, o, memory, why);

    size_t n = plan->ninstances;
    child *children = calloc(n, sizeof *children);
    if (!children)
        return pf__fail(why, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        children[i].out_fd = children[i].log_fd = -1;
        children[i].at_line_start = true;
    }
    int rc = 0;
    if (o->log_dir)
        rc = open_logs(plan, o, children, why);
    if (rc == 0 && pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        rc = pf__fail(why, -errno, "cannot create a pipe: %s", strerror(errno));
    if (rc < 0) {
        free(children);
        if (launcher_log_fd >= 0)
            close(launcher_log_fd);
        launcher_log_fd = -1;
        return rc;
    }
    struct sigaction saved[NFORWARDED + 1];
    install_handlers(saved);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = start_child(plan, env, o, memory, i, &children[i], saved);
        if (rc < 0)
            say("error", "cannot start instance %d: %s", plan->instances[i].index, strerror(-rc));
    }
    if (rc < 0) /* nothing half-done: stop what started */
        forward(children, n, SIGKILL);
    supervise(plan, o, children);
    restore_handlers(saved);
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    signal_pipe[0] = signal_pipe[1] = -1;

    for (size_t i = 0; i < n; i++) {
        if (children[i].pid <= 0)
            continue;
        int st = children[i].status;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            continue;
        char what[96];
        describe_status(st, what, sizeof what);
        say("error", "instance %d %s", plan->instances[i].index, what);
        if (*status == 0)
            *status = exit_code(st);
    }
    for (size_t i = 0; i < n; i++)
        if (children[i].log_fd >= 0)
            close(children[i].log_fd);
    if (launcher_log_fd >= 0)
        close(launcher_log_fd);
    launcher_log_fd = -1;
    free(children);
    if (rc < 0) {
        if (*status == 0)
            *status = 1;
        return pf__fail(why, rc, "could not start every instance");
    }
    return 0;
}
