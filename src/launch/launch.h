/*
 * launch.h - what the files of src/launch share: messages with a level,
 * prepared bindings, captured-output lines, log files.
 */
#ifndef PF_LAUNCH_H
#define PF_LAUNCH_H

#include "base/util.h"

#include "pinfer.h"

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>

/* Format a message and hand it to fn (NULL: pf_log_stderr). */
void pf__logf(pf_log_fn fn, void *ctx, pf_log_level level, const char *fmt, ...) PF__PRINTF(4, 5);

/* "pinfer: <level>: <text>\n", text printable (pf_printable): a console's line (malloc'd). */
char *pf__log_console_line(pf_log_level level, const char *text);

/* "2026-11-29 17:50:01.123 pinfer: <level>: <text>\n": a log file's line (malloc'd). */
char *pf__log_file_line(pf_log_level level, const char *text);

/*
 * A binding prepared before fork, so that the child only makes system
 * calls: the CPU mask and the node mask in the kernel's formats.
 */
typedef struct pf__binding {
    cpu_set_t *cpus; /* NULL: CPUs not bound */
    size_t cpus_size;
    unsigned long *nodes;   /* NULL: memory not bound */
    unsigned long max_node; /* bits in nodes */
} pf__binding;

/*
 * A binding in words: "numactl -C 0-3 -m 0" / "taskset -c 0-3" / "(no
 * binding)" (pf_binding_command), or with words "CPUs 0-3, memory node 0" /
 * "CPUs 0-3, memory not bound" / "not bound" (the launcher's info line).
 * malloc'd; NULL when out of memory.
 */
char *pf__binding_text(const pf_instance *in, bool bind_cpus, bool bind_memory, bool words);

/* cpus NULL: no CPU mask; nodes NULL: no node mask.  0 or -ENOMEM. */
int pf__binding_make(const int *cpus, size_t ncpus, const int *nodes, size_t nnodes,
                     pf__binding *b);
void pf__binding_free(pf__binding *b);
/* Async-signal-safe; 0 (also when there is nothing to bind), or -errno. */
int pf__binding_apply_cpus(const pf__binding *b);
int pf__binding_apply_memory(const pf__binding *b);

/*
 * Captured output cut into lines: bytes are held until a newline (or until
 * the buffer is full: a longer line comes out in pieces).
 */
#define PF__LINE_MAX 4096
typedef struct pf__line {
    char text[PF__LINE_MAX];
    size_t len;
} pf__line;

typedef void (*pf__line_fn)(void *ctx, const char *line, size_t len);
/* Feed bytes; fn gets each complete line without its newline. */
void pf__line_feed(pf__line *l, const char *buf, size_t n, pf__line_fn fn, void *ctx);
/* The held part, if any, as a last line. */
void pf__line_flush(pf__line *l, pf__line_fn fn, void *ctx);

/* write() all of buf, retrying on EINTR: 0, or -errno of the write that failed. */
int pf__write_all(int fd, const char *buf, size_t n);

/*
 * A console written without ever blocking (console.c): what the fd cannot
 * take now is held in a bounded buffer, and what does not fit is dropped
 * and counted.
 */
typedef struct pf__console {
    int fd;      /* where to write; -1: nowhere */
    int own;     /* our own non-blocking description of it, or -1 */
    bool socket; /* written with MSG_DONTWAIT */
    bool broken; /* a write failed (EPIPE...): the console is gone */
    char *buf;   /* held bytes, in order */
    size_t len;
    size_t dropped; /* bytes dropped since the last report */
} pf__console;

void pf__console_open(pf__console *c, int fd);
void pf__console_close(pf__console *c);
void pf__console_write(pf__console *c, const char *p, size_t n);
/* Write what is held, without blocking; true when nothing is left. */
bool pf__console_flush(pf__console *c);
bool pf__console_pending(const pf__console *c);

/*
 * The log files of one run in dir (created with its parents): the
 * launcher's <prefix>_<stamp>_instances.log and one
 * <prefix>_<stamp>_instance_<index>_cores_<cpus>.log per instance, all
 * created with O_EXCL: a stamp already used gets _2, _3, ...  *main_fd and
 * fds[i] are open for writing (O_CLOEXEC); *main_name and names[i] are
 * their paths (malloc'd: the caller frees them).  0, or -errno with *why
 * and no file made.
 */
int pf__logs_open(const char *dir, const char *prefix, const pf_plan *plan, int *main_fd,
                  char **main_name, int *fds, char **names, char **why);

/*
 * Memory binding of the spec's instances, if asked and allowed here: probed
 * once with instance 0's nodes; a refusal is one warning.  *memory says
 * whether to bind.  0 or -ENOMEM.
 */
int pf__memory_allowed(const pf_launch_spec *spec, pf_log_fn log, void *ctx, bool *memory);

/*
 * What instance i is given, as info lines: "instance 0: CPUs 0-3, memory
 * node 0 (numactl -C 0-3 -m 0 <command>)" and "instance 0 environment:
 * OMP_NUM_THREADS=4 ..." (what the launcher set).  memory: whether memory
 * is really bound (a refusal shows as "memory not bound").
 */
void pf__log_instance(const pf_launch_spec *spec, size_t i, bool memory, pf_log_fn log, void *ctx);

#endif /* PF_LAUNCH_H */
