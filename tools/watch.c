/*
 * watch.c - `pinfer check --watch`: the machine as a live map, redrawn in
 * place every window (docs/check.md, "Watching").  Each socket is a block of
 * cores; each core shows its CPUs (SMT siblings side by side) as a letter
 * naming the checked process whose busiest thread ran there and how busy
 * that CPU was for it; the findings of the last window follow.  Plain ANSI
 * sequences (the alternate screen, cursor home, clear to end of line), so
 * that it works in any terminal and over ssh; the terminal is given back
 * as it was on Ctrl-C, SIGTERM or an error.
 */
#include "watch.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static int columns(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        return ws.ws_col;
    return 80;
}

/* What the map shows of one CPU: the letter of a process and a busy share. */
typedef struct cell {
    char letter; /* 'A' + process index; '.' when no checked thread ran there */
    double pct;
} cell;

static void fill_cells(const pf_check_report *r, cell *cells, size_t ncells)
{
    for (size_t i = 0; i < ncells; i++)
        cells[i] = (cell){'.', 0};
    for (size_t p = 0; p < r->nprocesses; p++)
        for (size_t t = 0; t < r->processes[p].nthreads; t++) {
            const pf_check_thread *th = &r->processes[p].threads[t];
            if (!th->ncpus_seen)
                continue;
            /* Its time, shared among the CPUs it was seen on. */
            double share = th->cpu_pct / (double)th->ncpus_seen;
            for (size_t k = 0; k < th->ncpus_seen; k++) {
                int cpu = th->cpus_seen[k];
                if (cpu < 0 || (size_t)cpu >= ncells || share < 1.0)
                    continue;
                if (cells[cpu].letter == '.' || share > cells[cpu].pct)
                    cells[cpu] = (cell){(char)('A' + (p % 26)), share};
            }
        }
}

/* One line: the text cut to the width, then clear to the end of the line. */
static void line(FILE *out, int width, const char *text)
{
    fprintf(out, "%.*s\x1b[K\n", width, text);
}

static void draw(FILE *out, const pf_topology *topo, const pf_check_report *r, int frame)
{
    int width = columns();
    size_t ncpus;
    const pf_cpu_info *cpus = pf_topology_cpus(topo, &ncpus);
    int max_cpu = 0;
    for (size_t i = 0; i < ncpus; i++)
        if (cpus[i].cpu > max_cpu)
            max_cpu = cpus[i].cpu;
    cell *cells = calloc((size_t)max_cpu + 1, sizeof *cells);
    if (!cells)
        return;
    fill_cells(r, cells, (size_t)max_cpu + 1);
    char buf[1024];
    fputs("\x1b[H", out);
    snprintf(buf, sizeof buf,
             "pinfer check --watch: %zu process%s, window %.1f s, frame %d  (Ctrl-C to stop)",
             r->nprocesses, r->nprocesses == 1 ? "" : "es", r->window_s, frame);
    line(out, width, buf);
    line(out, width, "");
    size_t nsockets = pf_topology_nsockets(topo);
    for (size_t s = 0; s < nsockets; s++) {
        /* The socket's cores in CPU order: each core's first CPU, then its siblings. */
        int node = -1;
        for (size_t i = 0; i < ncpus && node < 0; i++)
            if ((size_t)cpus[i].socket == s)
                node = cpus[i].node;
        snprintf(buf, sizeof buf, "socket %zu (node %d)", s, node);
        line(out, width, buf);
        size_t used = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < ncpus; i++) {
            const pf_cpu_info *c = &cpus[i];
            if ((size_t)c->socket != s || c->cpu != c->core_first)
                continue;
            char core[96];
            size_t n = (size_t)snprintf(core, sizeof core, " %3d[", c->cpu);
            bool first = true;
            for (size_t k = 0; k < ncpus; k++) {
                const pf_cpu_info *d = &cpus[k];
                if (d->socket != c->socket || d->core_first != c->core_first)
                    continue;
                const cell *x = &cells[d->cpu];
                if (x->letter == '.')
                    n += (size_t)snprintf(core + n, sizeof core - n, "%s .  ", first ? "" : "|");
                else
                    n += (size_t)snprintf(core + n, sizeof core - n, "%s%c%3.0f", first ? "" : "|",
                                          x->letter, x->pct > 999 ? 999.0 : x->pct);
                first = false;
            }
            n += (size_t)snprintf(core + n, sizeof core - n, "]");
            if (used + n > (size_t)width || used + n >= sizeof buf - 1) {
                line(out, width, buf);
                buf[0] = '\0';
                used = 0;
            }
            memcpy(buf + used, core, n + 1);
            used += n;
        }
        if (used)
            line(out, width, buf);
    }
    line(out, width, "");
    for (size_t p = 0; p < r->nprocesses; p++) {
        const pf_check_process *pr = &r->processes[p];
        char *cmd = pf_printable(pr->command);
        snprintf(buf, sizeof buf, "%c = process %d, %zu busy thread%s: %s", (char)('A' + (p % 26)),
                 pr->pid, pr->busy_threads, pr->busy_threads == 1 ? "" : "s", cmd ? cmd : "?");
        free(cmd);
        line(out, width, buf);
    }
    line(out, width, "");
    if (!r->nfindings)
        line(out, width, "no finding");
    for (size_t i = 0; i < r->nfindings; i++) {
        const pf_check_finding *f = &r->findings[i];
        snprintf(buf, sizeof buf, "%-4s %-14s %d: %s", f->severity, f->code, f->pid, f->message);
        line(out, width, buf);
    }
    fputs("\x1b[J", out); /* whatever an earlier, longer frame left below */
    fflush(out);
    free(cells);
}

int tool_watch(const pf_topology *topo, const int *pids, size_t npids, const pf_check_options *opts,
               char **why)
{
    if (!isatty(STDOUT_FILENO))
        return -ENOTTY;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* The alternate screen, cursor hidden: what was on the terminal comes back at the end. */
    fputs("\x1b[?1049h\x1b[?25l\x1b[2J", stdout);
    fflush(stdout);
    int rc = 0;
    for (int frame = 1; !stopping; frame++) {
        pf_check_report *r = NULL;
        rc = pf_check_run(topo, pids, npids, opts, &r, why);
        if (rc < 0)
            break;
        if (!stopping)
            draw(stdout, topo, r, frame);
        pf_check_report_free(r);
    }
    fputs("\x1b[?25h\x1b[?1049l", stdout);
    fflush(stdout);
    return rc;
}
