/*
 * cmd_check.c - `pinfer check`: sample processes from /proc over a window
 * and say whether they are pinned right (docs/check.md): the findings with
 * their evidence and advice, an OK line per process without one, or the
 * JSON report.  Exit 0 without findings, 1 with, 2 for a usage error.
 */
#include "tool.h"
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    return text;
}

/* A growable list of pids. */
typedef struct pids {
    int *v;
    size_t len, cap;
} pids;

static int push(pids *p, int pid)
{
    for (size_t i = 0; i < p->len; i++)
        if (p->v[i] == pid)
            return 0;
    if (p->len == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        int *g = realloc(p->v, cap * sizeof *g);
        if (!g)
            return -ENOMEM;
        p->v = g;
        p->cap = cap;
    }
    p->v[p->len++] = pid;
    return 0;
}

/* Every pid of /proc with its parent's (ppid[i] for all.v[i]). */
static int every_process(pids *all, pids *parents)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -errno;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *close = strrchr(buf, ')');
        int ppid = 0;
        char state;
        if (!close || sscanf(close + 1, " %c %d", &state, &ppid) != 2)
            continue;
        /* push() skips duplicates: parents may repeat, so append directly. */
        if (all->len == all->cap || parents->len == parents->cap) {
            size_t cap = all->cap ? all->cap * 2 : 256;
            int *a = realloc(all->v, cap * sizeof *a);
            if (a)
                all->v = a;
            int *b = a ? realloc(parents->v, cap * sizeof *b) : NULL;
            if (b)
                parents->v = b;
            if (!a || !b) {
                rc = -ENOMEM;
                break;
            }
            all->cap = parents->cap = cap;
        }
        all->v[all->len++] = (int)pid;
        parents->v[parents->len++] = ppid;
    }
    closedir(d);
    return rc;
}

/* The processes to check, from PIDs, --children or --all. */
static int targets(const tool_options *o, pids *out, char **why)
{
    if (o->program) {
        for (int i = 0; i < o->nprogram; i++) {
            char *end;
            long pid = strtol(o->program[i], &end, 10);
            if (!*o->program[i] || *end || pid <= 0 || pid > 1L << 30) {
                char *printable = pf_printable(o->program[i]);
                *why = format("check: '%s' is not a PID (a positive whole number)",
                              printable ? printable : "?");
                free(printable);
                return -EINVAL;
            }
            if (push(out, (int)pid) < 0)
                return -ENOMEM;
        }
        return 0;
    }
    pids all = {0}, parents = {0};
    int rc = every_process(&all, &parents);
    if (rc < 0) {
        free(all.v);
        free(parents.v);
        return rc;
    }
    if (o->all) {
        for (size_t i = 0; rc == 0 && i < all.len; i++)
            if (all.v[i] != (int)getpid())
                rc = push(out, all.v[i]);
    } else {
        /* Descendants of children_of, breadth first over the parent links. */
        pids frontier = {0};
        rc = push(&frontier, o->children_of);
        for (size_t k = 0; rc == 0 && k < frontier.len; k++)
            for (size_t i = 0; rc == 0 && i < all.len; i++)
                if (parents.v[i] == frontier.v[k]) {
                    rc = push(&frontier, all.v[i]);
                    if (rc == 0)
                        rc = push(out, all.v[i]);
                }
        free(frontier.v);
        if (rc == 0 && out->len == 0) {
            bool exists = false;
            for (size_t i = 0; i < all.len; i++)
                exists |= all.v[i] == o->children_of;
            *why = exists ? format("check: process %d has no child process", o->children_of)
                          : format("check: no process %d", o->children_of);
            rc = -ENOENT;
        }
    }
    free(all.v);
    free(parents.v);
    return rc;
}

static void print_text(const pf_check_report *r, bool only_busy)
{
    size_t shown = 0;
    for (size_t i = 0; i < r->nprocesses; i++)
        shown += !only_busy || r->processes[i].busy_threads > 0;
    printf("pinfer check: %zu process%s over %.1f s\n", shown, shown == 1 ? "" : "es", r->window_s);
    for (size_t i = 0; i < r->nfindings; i++) {
        const pf_check_finding *f = &r->findings[i];
        const char *command = "";
        for (size_t k = 0; k < r->nprocesses; k++)
            if (r->processes[k].pid == f->pid)
                command = r->processes[k].command;
        char *printable = pf_printable(command);
        printf("%-4s %-14s process %d (%.40s): %s\n     advice: %s\n", f->severity, f->code, f->pid,
               printable ? printable : "?", f->message, f->advice);
        free(printable);
    }
    for (size_t i = 0; r->ok && r->ok[i]; i++)
        if (!only_busy || !strstr(r->ok[i], "no busy thread"))
            printf("%s\n", r->ok[i]);
}

static int cmd_check(const tool_options *o)
{
    pids list = {0};
    char *why = NULL;
    int rc = targets(o, &list, &why);
    if (rc < 0) {
        free(list.v);
        return tool_fail(o->json, rc, why);
    }
    pf_topology *topo = NULL;
    rc = pf_topology_load(NULL, &topo, &why);
    if (rc < 0) {
        free(list.v);
        return tool_fail(o->json, rc, why);
    }
    pf_check_options opts;
    pf_check_options_init(&opts);
    if (o->duration_s > 0)
        opts.duration_s = o->duration_s;
    if (o->interval_s > 0)
        opts.interval_s = o->interval_s;
    if (opts.interval_s > opts.duration_s)
        opts.interval_s = opts.duration_s;
    if (o->watch) {
        if (o->duration_s <= 0)
            opts.duration_s = 1.0; /* one frame a second */
        if (opts.interval_s > opts.duration_s)
            opts.interval_s = opts.duration_s;
        rc = tool_watch(topo, list.v, list.len, &opts, &why);
        free(list.v);
        pf_topology_free(topo);
        if (rc == -ENOTTY)
            return tool_fail(false, -EINVAL,
                             strdup("check --watch draws on a terminal: standard output is "
                                    "not one (use --json to record)"));
        return rc < 0 ? tool_fail(false, rc, why) : 0;
    }
    pf_check_report *report = NULL;
    rc = pf_check_run(topo, list.v, list.len, &opts, &report, &why);
    free(list.v);
    if (rc < 0) {
        pf_topology_free(topo);
        return tool_fail(o->json, rc, why);
    }
    int status = report->nfindings ? 1 : 0;
    if (o->json) {
        char *doc = NULL;
        if (pf_check_report_to_json(report, &doc) == 0)
            fputs(doc, stdout);
        else
            status = tool_fail(true, -ENOMEM, NULL);
        free(doc);
    } else {
        print_text(report, o->all);
    }
    pf_check_report_free(report);
    pf_topology_free(topo);
    return status;
}

const tool_command_def tool_cmd_check = {
    .name = "check",
    .id = CMD_CHECK,
    .args = "[OPTIONS] PID... | --children PID | --all",
    .summary = "show whether processes are pinned right, from /proc",
    .about = "Sample the processes' threads from /proc over a window (where each ran, how\n"
             "busy, migrations, run-queue waits, memory per NUMA node, the OpenMP\n"
             "environment, the cgroup quota) and report what is wrong with their placement:\n"
             "OVERSUBSCRIBED, FLOATING, SMT_SHARED, OVERLAP, CROSS_NODE, REMOTE_MEMORY,\n"
             "OVER_QUOTA, each with its evidence and advice, or one OK line per process.\n"
             "Exit 0 without findings, 1 with findings, 2 for a usage error.",
    .run = cmd_check,
};
