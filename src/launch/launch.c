/*
 * launch.c - starting and supervising instances (launcher.md section 5).
 *
 * Binding is native, between fork and exec: sched_setaffinity for the CPUs
 * and set_mempolicy(MPOL_BIND) for memory.  Whether memory binding is
 * allowed here is probed once in the launcher (containers often refuse it):
 * a refusal is one warning and CPU binding goes on.
 *
 * The program is resolved once, before anything starts, so that a missing
 * one is one clear error and not one per instance.
 *
 * One instance without a log dir is bound and exec'd in place: no fork, no
 * supervisor, the program is the process (signals and exit status are its
 * own).  Otherwise every instance is forked into its own process group, and
 * the launcher loops on poll() over a self-pipe fed by its signal handlers
 * (SIGCHLD and the four forwarded signals) and, with a log dir, the pipes
 * that carry each instance's output to its log file and to the console.
 *
 * An instance's main process that exits is not reaped until the end: as a
 * zombie it keeps its pid, hence its process group id, from being reused,
 * so that signalling the group (forwarding, killing what it left behind)
 * can never reach an unrelated process.
 */
#include "base/util.h"

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
#define EXIT_NOT_FOUND 127 /* as a shell says a command cannot be found */
#define EXIT_NOT_EXECUTABLE 126

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

/* ---- the command, for people ------------------------------------------- */

typedef struct strbuf {
    char *s;
    size_t len, cap;
    bool failed;
} strbuf;

static void put(strbuf *b, const char *text, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *grown = realloc(b->s, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->len, text, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void put_str(strbuf *b, const char *text)
{
    put(b, text, strlen(text));
}

static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* One byte inside bash's $'...': \n, \t, \xHH, \' and \\ escaped. */
static void put_ansi_c(strbuf *b, unsigned char c)
{
    char esc[8] = {(char)c, '\0'};
    if (c == '\n')
        snprintf(esc, sizeof esc, "\\n");
    else if (c == '\t')
        snprintf(esc, sizeof esc, "\\t");
    else if (is_control(c))
        snprintf(esc, sizeof esc, "\\x%02x", c);
    else if (c == '\'' || c == '\\')
        snprintf(esc, sizeof esc, "\\%c", c);
    put_str(b, esc);
}

/*
 * One argument as a shell reads it back: plain words as they are, others in
 * single quotes; an argument with control characters (a newline) in bash's
 * $'...' so that the log line stays one line.
 */
static void put_quoted(strbuf *b, const char *arg)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                "_./=:,+-@%";
    const unsigned char *p;
    bool is_plain = *arg != '\0', control = false;
    for (p = (const unsigned char *)arg; *p; p++) {
        is_plain = is_plain && strchr(plain, *p);
        control = control || is_control(*p);
    }
    if (is_plain) {
        put_str(b, arg);
    } else if (control) {
        put_str(b, "$'");
        for (p = (const unsigned char *)arg; *p; p++)
            put_ansi_c(b, *p);
        put_str(b, "'");
    } else {
        put_str(b, "'");
        for (p = (const unsigned char *)arg; *p; p++)
            if (*p == '\'')
                put_str(b, "'\\''");
            else
                put(b, (const char *)p, 1);
        put_str(b, "'");
    }
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

/* ---- the program ---------------------------------------------------------- */

/* The PATH the instances get (NULL: none, search_path_list's default). */
static const char *env_path(const pf_launch_options *o)
{
    return pf__envp_get(o->environ ? o->environ : environ, "PATH");
}

/* 0 when `file` is an executable regular file, else -ENOENT / -EACCES / -EISDIR. */
static int check_executable(const char *file)
{
    struct stat st;
    if (stat(file, &st) != 0)
        return errno == ENOENT || errno == ENOTDIR ? -ENOENT : -errno;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    return access(file, X_OK) == 0 && S_ISREG(st.st_mode) ? 0 : -EACCES;
}

/* The program named with its path: it must be executable as it is. */
static int take_as_given(const char *name, char **file)
{
    int rc = *name ? check_executable(name) : -ENOENT;
    if (rc == 0 && !(*file = strdup(name)))
        rc = -ENOMEM;
    return rc;
}

/*
 * The file `name` names, as execvp would find it: as given when it holds a
 * slash, else the first executable one on path_list (NULL: execvp's default;
 * an empty element is the current directory).  A file found but not
 * executable is reported only if nothing better comes later.
 */
static int search_path_list(const char *path_list, const char *name, char **file)
{
    int rc = -ENOENT;
    if (!path_list)
        path_list = "/usr/local/bin:/usr/bin:/bin"; /* execvp's default, near enough */
    if (strchr(name, '/')) {
        rc = take_as_given(name, file);
    } else {
        for (const char *p = path_list; rc != 0 && rc != -ENOMEM;) {
            size_t len = strcspn(p, ":");
            char *candidate = pf__strdupf("%.*s%s%s", (int)len, p, len ? "/" : "", name);
            int found = candidate ? check_executable(candidate) : -ENOMEM;
            if (found == 0 || found == -ENOMEM)
                rc = found;
            else if (found != -ENOENT)
                rc = found == -EISDIR ? rc : found; /* not executable: remember */
            if (found == 0)
                *file = candidate;
            else
                free(candidate);
            if (!p[len])
                break;
            p += len + 1;
        }
    }
    return rc;
}

int pf_find_program(const char *name, char **path)
{
    if (!name || !path)
        return -EINVAL;
    return search_path_list(getenv("PATH"), name, path);
}

static int resolve_program(const pf_launch_options *o, char **file, char **why)
{
    const char *name = o->argv[0];
    int rc = o->search_path ? search_path_list(env_path(o), name, file) : take_as_given(name, file);
    if (rc == 0 || rc == -ENOMEM)
        return rc == 0 ? 0 : pf__fail(why, rc, "out of memory");
    return pf__fail(why, rc, "cannot run %s: %s", name, strerror(-rc));
}

static int exit_status_of(int rc)
{
    return rc == -ENOENT ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
}

/* execve, and like execvp a file without a #! line is run by /bin/sh. */
static void exec_program(const char *file, char *const *argv, char **envp)
{
    execve(file, argv, envp);
    if (errno != ENOEXEC)
        return;
    size_t n = 0;
    while (argv[n])
        n++;
    char **sh = calloc(n + 2, sizeof *sh);
    if (!sh)
        return;
    sh[0] = "sh";
    sh[1] = (char *)file;
    for (size_t i = 1; i < n; i++)
        sh[i + 1] = argv[i];
    execve("/bin/sh", sh, envp);
    free(sh);
    errno = ENOEXEC;
}

/* ---- log files ---------------------------------------------------------- */

/* mkdir -p: the parents of a log dir are created too. */
static int make_dirs(const char *dir)
{
    char *path = strdup(dir);
    if (!path)
        return -ENOMEM;
    int rc = 0;
    for (char *p = path + 1; rc == 0; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !end)
            continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            rc = -errno;
        if (end)
            break;
        *p = '/';
    }
    free(path);
    return rc;
}

static char *instance_log_name(const char *dir, const char *prefix, const char *stamp,
                               const pf_instance *in)
{
    char *cpus = NULL;
    if (pf_cpulist_format(in->cpus, in->ncpus, &cpus) < 0)
        return NULL;
    for (char *p = cpus; *p; p++)
        if (*p == ',')
            *p = '_';
    char *name =
        pf__strdupf("%s/%s_%s_instance_%d_cores_%s.log", dir, prefix, stamp, in->index, cpus);
    free(cpus);
    return name;
}

typedef struct child {
    pid_t pid;       /* 0: not started */
    bool exited;     /* its main process exited (a zombie until the end) */
    int status;      /* its wait status, once reaped */
    int out_fd;      /* read end of its output pipe, or -1 */
    int log_fd;      /* its log file, or -1 */
    char line[4096]; /* console: the part of a line not shown yet */
    size_t nline;
} child;

/* Open every instance's log file of one time stamp; -EEXIST if one exists. */
static int open_instance_logs(const pf_plan *plan, const char *dir, const char *prefix,
                              const char *stamp, child *children)
{
    for (size_t i = 0; i < plan->ninstances; i++) {
        char *name = instance_log_name(dir, prefix, stamp, &plan->instances[i]);
        children[i].log_fd = name ? open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644) : -1;
        int err = name ? errno : ENOMEM;
        free(name);
        if (children[i].log_fd < 0) {
            for (size_t k = 0; k < i; k++) {
                close(children[k].log_fd);
                children[k].log_fd = -1;
            }
            return -err;
        }
    }
    return 0;
}

/*
 * Create the run's log files with O_EXCL: a time stamp whose names exist
 * already gets a suffix (_2, _3, ...), so nothing is ever overwritten.
 */
static int open_logs(const pf_plan *plan, const pf_launch_options *o, child *children, char **why)
{
    const char *prefix = o->log_prefix ? o->log_prefix : "run";
    int rc = make_dirs(o->log_dir);
    if (rc < 0)
        return pf__fail(why, rc, "cannot create log directory %s: %s", o->log_dir, strerror(-rc));
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
        rc = fd < 0 ? -errno : open_instance_logs(plan, o->log_dir, prefix, stamp, children);
        if (fd >= 0 && rc < 0) {
            close(fd);
            unlink(main_name); /* ours, just made, empty: not part of any run */
        }
        free(main_name);
        if (rc == -EEXIST)
            continue;
        if (rc < 0)
            return pf__fail(why, rc, "cannot create a log file in %s: %s", o->log_dir,
                            strerror(-rc));
        launcher_log_fd = fd;
        return 0;
    }
    return pf__fail(why, -EEXIST, "cannot find a new log file name in %s", o->log_dir);
}

/* ---- output ------------------------------------------------------------- */

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

/* Show the held line on the console as "[i] line\n", in one write. */
static void flush_line(child *c, size_t index)
{
    if (c->nline == 0)
        return;
    char out[sizeof c->line + 32];
    size_t len = (size_t)snprintf(out, 32, "[%zu] ", index);
    memcpy(out + len, c->line, c->nline);
    len += c->nline;
    if (out[len - 1] != '\n')
        out[len++] = '\n';
    write_all(STDOUT_FILENO, out, len);
    c->nline = 0;
}

/*
 * Copy output to the log file whole, and to the console: as it comes with
 * one instance; with several, line by line with "[i] " before each, so that
 * the instances' lines never mix (a line longer than the buffer is shown in
 * pieces, each a line of its own).
 */
static void relay(child *c, size_t index, bool prefix, const char *buf, size_t n)
{
    write_all(c->log_fd, buf, n);
    if (!prefix) {
        write_all(STDOUT_FILENO, buf, n);
        return;
    }
    while (n > 0) {
        const char *nl = memchr(buf, '\n', n);
        size_t want = nl ? (size_t)(nl - buf) + 1 : n;
        size_t room = sizeof c->line - c->nline;
        size_t take = want < room ? want : room;
        memcpy(c->line + c->nline, buf, take);
        c->nline += take;
        buf += take;
        n -= take;
        if ((nl && take == want) || c->nline == sizeof c->line)
            flush_line(c, index);
    }
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
#define NHANDLED (NFORWARDED + 2) /* and SIGCHLD, SIGPIPE */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
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

/*
 * The launcher's handlers.  SIGPIPE is ignored: a console that went away
 * (`pinfer run ... | head`) must not kill the launcher and orphan the
 * instances; writes to it fail instead.
 */
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
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &saved[NFORWARDED + 1]);
}

static void restore_handlers(const struct sigaction *saved)
{
    for (size_t i = 0; i < NFORWARDED; i++)
        sigaction(FORWARDED[i], &saved[i], NULL);
    sigaction(SIGCHLD, &saved[NFORWARDED], NULL);
    sigaction(SIGPIPE, &saved[NFORWARDED + 1], NULL);
}

/* What the children of one launch share. */
typedef struct launch_ctx {
    const pf_plan *plan;
    const pf_launch_env *env;
    const pf_launch_options *o;
    const char *file;              /* the resolved program */
    bool memory;                   /* bind memory (allowed here) */
    bool null_stdin;               /* stdin is a terminal: /dev/null instead */
    const struct sigaction *saved; /* the dispositions the program gets */
} launch_ctx;

/* In the child: its group, its stdio, its binding; then the program. */
static void child_exec(const launch_ctx *x, const binding *b, int out_fd, char **envp)
{
    restore_handlers(x->saved);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    if (out_fd >= 0) {
        dup2(out_fd, STDOUT_FILENO);
        dup2(out_fd, STDERR_FILENO);
    }
    /* A process group in the background that reads the terminal is stopped
       (SIGTTIN) for ever: instances do not read a terminal. */
    int null_fd = x->null_stdin ? open("/dev/null", O_RDONLY) : -1;
    if (null_fd >= 0)
        dup2(null_fd, STDIN_FILENO);
    launcher_log_fd = -1;
    bind_self(b, x->o->bind_cpus, x->memory);
    exec_program(x->file, x->o->argv, envp);
    int err = errno;
    say("error", "cannot run %s: %s", x->o->argv[0], strerror(err));
    _exit(err == ENOENT ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE);
}

/* Fork instance i: own process group, output to its pipe, bound, exec'd. */
static int start_child(const launch_ctx *x, size_t i, child *c)
{
    binding b;
    char **envp = NULL;
    int pipefd[2] = {-1, -1};
    if (binding_make(&x->plan->instances[i], &b) < 0)
        return -ENOMEM;
    char *const *base = x->o->environ ? x->o->environ : environ;
    if (pf_launch_env_apply(x->env, i, base, &envp) < 0) {
        binding_free(&b);
        return -ENOMEM;
    }
    if (x->o->log_dir && pipe2(pipefd, O_CLOEXEC) != 0) {
        int err = errno;
        pf_strv_free(envp);
        binding_free(&b);
        return -err;
    }
    pid_t pid = fork();
    if (pid == 0)
        child_exec(x, &b, pipefd[1], envp);
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

typedef struct supervisor {
    child *children;
    size_t n;
    bool prefix;        /* "[i] " on the console */
    int grace;          /* ms */
    double kill_at;     /* after a forwarded signal: SIGKILL what is left then; < 0 none */
    double drain_until; /* every instance exited: stop waiting for output then; < 0 not yet */
} supervisor;

/* Signal every instance's process group (its main process may be a zombie). */
static void signal_groups(const supervisor *s, int sig)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->children[i].pid > 0)
            kill(-s->children[i].pid, sig);
}

static bool all_exited(const supervisor *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->children[i].pid > 0 && !s->children[i].exited)
            return false;
    return true;
}

static bool finished(const supervisor *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->children[i].out_fd >= 0)
            return false;
    return all_exited(s);
}

static void close_output(supervisor *s, size_t i)
{
    child *c = &s->children[i];
    if (s->prefix)
        flush_line(c, i);
    close(c->out_fd);
    c->out_fd = -1;
}

/*
 * Notice main processes that exited, without reaping them (WNOWAIT), and
 * kill what each left running in its group: nothing of an instance outlives
 * it, and nothing holds its output pipe open for ever.
 */
static void observe_exits(supervisor *s)
{
    for (size_t i = 0; i < s->n; i++) {
        child *c = &s->children[i];
        if (c->pid <= 0 || c->exited)
            continue;
        siginfo_t info;
        memset(&info, 0, sizeof info);
        if (waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            info.si_pid == c->pid) {
            c->exited = true;
            kill(-c->pid, SIGKILL);
        }
    }
}

static void handle_signals(supervisor *s)
{
    unsigned char sigs[64];
    ssize_t got = read(signal_pipe[0], sigs, sizeof sigs);
    for (ssize_t k = 0; k < got; k++) {
        if (sigs[k] == SIGCHLD)
            continue;
        say("info", "received %s: passing it on to the instances", strsignal(sigs[k]));
        signal_groups(s, sigs[k]);
        if (s->kill_at < 0)
            s->kill_at = now_ms() + s->grace;
    }
}

static void check_deadlines(supervisor *s)
{
    double now = now_ms();
    if (s->kill_at >= 0 && now >= s->kill_at) {
        if (!all_exited(s))
            say("warning", "instances still running %d ms after the signal: killing them",
                s->grace);
        signal_groups(s, SIGKILL);
        s->kill_at = -1;
    }
    if (s->drain_until < 0 && all_exited(s))
        s->drain_until = now + s->grace;
    /* Output still open after that comes from a process that left the instance's
       group (setsid): it is not waited for. */
    if (s->drain_until >= 0 && now >= s->drain_until)
        for (size_t i = 0; i < s->n; i++)
            if (s->children[i].out_fd >= 0)
                close_output(s, i);
}

static int poll_timeout(const supervisor *s)
{
    double next = -1;
    if (s->kill_at >= 0)
        next = s->kill_at;
    if (s->drain_until >= 0 && (next < 0 || s->drain_until < next))
        next = s->drain_until;
    if (next < 0)
        return -1;
    double left = next - now_ms();
    return left > 0 ? (int)left + 1 : 0;
}

static void read_output(supervisor *s, size_t i)
{
    char buf[65536];
    child *c = &s->children[i];
    ssize_t got = read(c->out_fd, buf, sizeof buf);
    if (got > 0)
        relay(c, i, s->prefix, buf, (size_t)got);
    else if (got == 0 || (errno != EINTR && errno != EAGAIN))
        close_output(s, i);
}

/* The supervision loop: output, signals, exits, deadlines; then reap everything. */
static void supervise(supervisor *s)
{
    struct pollfd *fds = calloc(s->n + 1, sizeof *fds);
    size_t *owner = calloc(s->n + 1, sizeof *owner);
    while (fds && owner && !finished(s)) {
        size_t nfds = 0;
        fds[nfds++] = (struct pollfd){.fd = signal_pipe[0], .events = POLLIN};
        for (size_t i = 0; i < s->n; i++)
            if (s->children[i].out_fd >= 0) {
                owner[nfds] = i;
                fds[nfds++] = (struct pollfd){.fd = s->children[i].out_fd, .events = POLLIN};
            }
        int ready = poll(fds, nfds, poll_timeout(s));
        if (ready < 0 && errno != EINTR)
            break;
        if (ready > 0 && (fds[0].revents & POLLIN))
            handle_signals(s);
        for (size_t f = 1; ready > 0 && f < nfds; f++)
            if (fds[f].revents & (POLLIN | POLLHUP | POLLERR))
                read_output(s, owner[f]);
        observe_exits(s);
        check_deadlines(s);
    }
    free(fds);
    free(owner);
    /* Whatever way the loop ended, nothing is left behind. */
    signal_groups(s, SIGKILL);
    for (size_t i = 0; i < s->n; i++) {
        child *c = &s->children[i];
        if (c->out_fd >= 0)
            close_output(s, i);
        while (c->pid > 0 && waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
            ;
        c->exited = c->pid > 0;
    }
}

/* ---- the launcher ------------------------------------------------------- */

char *pf_shell_join(char *const *argv)
{
    strbuf line = {0};
    put_str(&line, "");
    for (size_t i = 0; argv && argv[i]; i++) {
        if (i)
            put_str(&line, " ");
        put_quoted(&line, argv[i]);
    }
    if (line.failed) {
        free(line.s);
        return NULL;
    }
    return line.s;
}

static void log_command(const pf_instance *in, const pf_launch_options *o)
{
    char *bind = pf_binding_command(in, o->bind_cpus, o->bind_memory);
    char *cmd = pf_shell_join(o->argv);
    say("info", "instance %d: %s %s", in->index, bind ? bind : "", cmd ? cmd : "");
    free(bind);
    free(cmd);
}

/* Bind and exec in place: the single-instance path. */
static int exec_in_place(const launch_ctx *x, int *status, char **why)
{
    const pf_instance *in = &x->plan->instances[0];
    binding b;
    if (binding_make(in, &b) < 0)
        return pf__fail(why, -ENOMEM, "out of memory");
    char **envp = NULL;
    int rc = pf_launch_env_apply(x->env, 0, x->o->environ ? x->o->environ : environ, &envp);
    if (rc < 0) {
        binding_free(&b);
        return pf__fail(why, rc, "out of memory");
    }
    log_command(in, x->o);
    bind_self(&b, x->o->bind_cpus, x->memory);
    exec_program(x->file, x->o->argv, envp);
    int err = errno;
    pf_strv_free(envp);
    binding_free(&b);
    rc = err == ENOENT ? -ENOENT : -EACCES;
    *status = exit_status_of(rc);
    return pf__fail(why, rc, "cannot run %s: %s", x->o->argv[0], strerror(err));
}

/* Is memory binding allowed here?  Probed once, with instance 0's nodes. */
static int probe_memory(const pf_launch_options *o, const pf_plan *plan, bool *memory)
{
    *memory = o->bind_memory;
    if (!*memory)
        return 0;
    binding probe;
    if (binding_make(&plan->instances[0], &probe) < 0)
        return -ENOMEM;
    int err = 0;
    if (!memory_binding_allowed(&probe, &err)) {
        say("warning", "memory binding is refused here (%s): binding CPUs only", strerror(err));
        *memory = false;
    }
    binding_free(&probe);
    return 0;
}

static void close_logs(child *children, size_t n)
{
    for (size_t i = 0; children && i < n; i++)
        if (children[i].log_fd >= 0)
            close(children[i].log_fd);
    if (launcher_log_fd >= 0)
        close(launcher_log_fd);
    launcher_log_fd = -1;
}

/* Start every instance and supervise them; returns 0 or the code of a failed start. */
static int run_children(launch_ctx *x, child *children, int *status)
{
    size_t n = x->plan->ninstances;
    struct sigaction saved[NHANDLED];
    install_handlers(saved);
    x->saved = saved;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        log_command(&x->plan->instances[i], x->o);
        rc = start_child(x, i, &children[i]);
        if (rc < 0)
            say("error", "cannot start instance %d: %s", x->plan->instances[i].index,
                strerror(-rc));
    }
    supervisor s = {.children = children,
                    .n = n,
                    .prefix = n > 1 && x->o->log_dir,
                    .grace = x->o->grace_ms > 0 ? x->o->grace_ms : DEFAULT_GRACE_MS,
                    .kill_at = -1,
                    .drain_until = -1};
    if (rc < 0) /* nothing half-done: stop what started */
        signal_groups(&s, SIGKILL);
    supervise(&s);
    restore_handlers(saved);
    for (size_t i = 0; i < n; i++) {
        int st = children[i].status;
        if (children[i].pid <= 0 || (WIFEXITED(st) && WEXITSTATUS(st) == 0))
            continue;
        char what[96];
        describe_status(st, what, sizeof what);
        say("error", "instance %d %s", x->plan->instances[i].index, what);
        if (*status == 0)
            *status = exit_code(st);
    }
    return rc;
}

int pf_launch(const pf_plan *plan, const pf_launch_env *env, const pf_launch_options *o,
              int *status, char **why)
{
    if (!plan || !env || !o || !o->argv || !o->argv[0] || !status ||
        env->ninstances != plan->ninstances || plan->ninstances == 0)
        return pf__fail(why, -EINVAL, "nothing to launch");
    *status = 0;
    launch_ctx x = {.plan = plan, .env = env, .o = o};
    char *file = NULL;
    size_t n = plan->ninstances;
    bool in_place = o->exec_single && n == 1 && !o->log_dir;
    child *children = in_place ? NULL : calloc(n, sizeof *children);
    for (size_t i = 0; children && i < n; i++)
        children[i].out_fd = children[i].log_fd = -1;
    int rc = !in_place && !children ? pf__fail(why, -ENOMEM, "out of memory") : 0;
    if (rc == 0 && (rc = resolve_program(o, &file, why)) < 0 && rc != -ENOMEM)
        *status = exit_status_of(rc);
    x.file = file;
    if (rc == 0 && o->log_dir)
        rc = open_logs(plan, o, children, why);
    /* Before the error, if any: the warnings may explain it. */
    for (size_t k = 0; o->warnings && o->warnings[k]; k++)
        say("warning", "%s", o->warnings[k]);
    if (rc == 0 && probe_memory(o, plan, &x.memory) < 0)
        rc = pf__fail(why, -ENOMEM, "out of memory");
    if (rc == 0 && in_place) {
        rc = exec_in_place(&x, status, why);
    } else if (rc == 0) {
        x.null_stdin = isatty(STDIN_FILENO);
        if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
            rc = pf__fail(why, -errno, "cannot create a pipe: %s", strerror(errno));
        if (rc == 0 && (rc = run_children(&x, children, status)) < 0)
            rc = pf__fail(why, rc, "could not start every instance");
        if (signal_pipe[0] >= 0) {
            close(signal_pipe[0]);
            close(signal_pipe[1]);
        }
        signal_pipe[0] = signal_pipe[1] = -1;
    }
    if (rc < 0 && *status == 0)
        *status = 1;
    close_logs(children, n);
    free(children);
    free(file);
    return rc;
}
