/*
 * cmd_topo.c - `pinfer topo`: sockets, NUMA nodes, cores, SMT siblings,
 * last-level caches, E-cores, the CPUs this process may use, and for this
 * machine its ISA features and the libraries a launch would preload.
 */
#include "tool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct topo_view {
    const pf_cpu_info *cpus;
    size_t ncpus;
    int *scratch;              /* ncpus ints */
    const pf_cpu_info **order; /* ncpus pointers, sorted by what is being printed */
} topo_view;

/*
 * Each list below is printed from one sort of the CPUs by its key (socket,
 * node, cache group), then by id: one pass per list, not one over every CPU
 * per socket, node or cache, which took 46 s for 50,000 nodes.
 */
static int cmp_int(int a, int b)
{
    return (a > b) - (a < b);
}
static int by_socket(const void *a, const void *b)
{
    const pf_cpu_info *x = *(const pf_cpu_info *const *)a, *y = *(const pf_cpu_info *const *)b;
    return x->socket != y->socket ? cmp_int(x->socket, y->socket) : cmp_int(x->cpu, y->cpu);
}
static int by_node(const void *a, const void *b)
{
    const pf_cpu_info *x = *(const pf_cpu_info *const *)a, *y = *(const pf_cpu_info *const *)b;
    return x->node != y->node ? cmp_int(x->node, y->node) : cmp_int(x->cpu, y->cpu);
}
static int by_llc(const void *a, const void *b)
{
    const pf_cpu_info *x = *(const pf_cpu_info *const *)a, *y = *(const pf_cpu_info *const *)b;
    return x->llc != y->llc ? cmp_int(x->llc, y->llc) : cmp_int(x->cpu, y->cpu);
}

static void sort_view(topo_view *v, int (*cmp)(const void *, const void *))
{
    for (size_t i = 0; i < v->ncpus; i++)
        v->order[i] = &v->cpus[i];
    qsort(v->order, v->ncpus, sizeof *v->order, cmp);
}

/* Print ids as a list; "-" for none. */
static void print_list(const int *ids, size_t n)
{
    char *text = NULL;
    if (n == 0 || pf_cpulist_format(ids, n, &text) < 0)
        fputs(n == 0 ? "-" : "?", stdout);
    else
        fputs(text, stdout);
    free(text);
}

/*
 * Print the CPUs of order[start, start + len) whose smt_rank is 0 (rank 0),
 * above 0 (rank 1) or any (rank -1).
 */
static void print_run(const topo_view *v, size_t start, size_t len, int rank)
{
    size_t n = 0;
    for (size_t i = start; i < start + len; i++) {
        const pf_cpu_info *c = v->order[i];
        if (rank < 0 || (rank == 0) == (c->smt_rank == 0))
            v->scratch[n++] = c->cpu;
    }
    print_list(v->scratch, n);
}

/* The CPUs with this flag (allowed, efficiency), ascending. */
static void print_flagged(const topo_view *v, bool efficiency)
{
    size_t n = 0;
    for (size_t i = 0; i < v->ncpus; i++)
        if (efficiency ? v->cpus[i].efficiency : v->cpus[i].allowed)
            v->scratch[n++] = v->cpus[i].cpu;
    print_list(v->scratch, n);
}

static int socket_of(const pf_cpu_info *c)
{
    return c->socket;
}
static int node_of(const pf_cpu_info *c)
{
    return c->node;
}
static int llc_of(const pf_cpu_info *c)
{
    return c->llc;
}

/* The length of the run of order[] from start with the same key. */
static size_t run_length(const topo_view *v, size_t start, int (*key)(const pf_cpu_info *))
{
    size_t end = start + 1;
    while (end < v->ncpus && key(v->order[end]) == key(v->order[start]))
        end++;
    return end - start;
}

static void print_machine(const pf_topology *t, const topo_view *v)
{
    size_t nnodes;
    pf_topology_nodes(t, &nnodes);
    int smt = 1;
    for (size_t i = 0; i < v->ncpus; i++)
        if (v->cpus[i].smt_rank + 1 > smt)
            smt = v->cpus[i].smt_rank + 1;
    printf("source:     %s\n", pf_topology_source(t));
    printf("machine:    %zu %s, %zu %s, %zu %s, %zu NUMA %s, %d %s per core\n",
           pf_topology_nsockets(t), tool_plural(pf_topology_nsockets(t), "socket", "sockets"),
           pf_topology_ncores(t), tool_plural(pf_topology_ncores(t), "core", "cores"), v->ncpus,
           tool_plural(v->ncpus, "CPU", "CPUs"), nnodes, tool_plural(nnodes, "node", "nodes"), smt,
           tool_plural((size_t)smt, "thread", "threads"));
    fputs("allowed:    ", stdout);
    print_flagged(v, false);
    double quota = pf_topology_cpu_quota(t);
    if (quota > 0)
        printf("\nquota:      %g %s (the cgroup's CPU quota: plans keep within it)", quota,
               quota == 1 ? "CPU" : "CPUs");
    fputs("\nE-cores:    ", stdout);
    print_flagged(v, true);
    fputc('\n', stdout);
}

/* A run of order[]: one socket's CPUs. */
typedef struct run {
    size_t start, len;
    int first; /* its lowest CPU */
} run;

static int by_first_cpu(const void *a, const void *b)
{
    return cmp_int(((const run *)a)->first, ((const run *)b)->first);
}

/* Sockets in order of their first CPU, then nodes, then cache groups. */
static int print_layout(topo_view *v)
{
    run *runs = malloc((v->ncpus ? v->ncpus : 1) * sizeof *runs);
    if (!runs)
        return -ENOMEM;
    sort_view(v, by_socket);
    size_t nruns = 0;
    for (size_t i = 0; i < v->ncpus; i += runs[nruns++].len)
        runs[nruns] = (run){i, run_length(v, i, socket_of), v->order[i]->cpu};
    qsort(runs, nruns, sizeof *runs, by_first_cpu);
    for (size_t r = 0; r < nruns; r++) {
        printf("socket %d:   CPUs ", v->order[runs[r].start]->socket);
        print_run(v, runs[r].start, runs[r].len, -1);
        fputc('\n', stdout);
    }
    free(runs);

    sort_view(v, by_node);
    for (size_t i = 0, len; i < v->ncpus; i += len) {
        len = run_length(v, i, node_of);
        printf("node %d:     CPUs ", v->order[i]->node);
        print_run(v, i, len, -1);
        fputs("; cores ", stdout);
        print_run(v, i, len, 0);
        fputs("; SMT siblings ", stdout);
        print_run(v, i, len, 1);
        fputc('\n', stdout);
    }

    /* groups named by their lowest CPU: ascending names are ascending first CPUs */
    sort_view(v, by_llc);
    bool llc_known = false;
    for (size_t i = 0, len; i < v->ncpus; i += len) {
        len = run_length(v, i, llc_of);
        if (v->order[i]->llc < 0)
            continue;
        if (!llc_known)
            fputs("last-level caches:", stdout);
        llc_known = true;
        fputs(" [", stdout);
        print_run(v, i, len, -1);
        fputc(']', stdout);
    }
    fputs(llc_known ? "\n" : "last-level caches: unknown\n", stdout);
    return 0;
}

/*
 * Features and libraries of the described machine are known for the live
 * one only.  For another source the libraries of this machine (the one
 * pinfer runs on) are shown all the same, labelled as such: `plan` preloads
 * them whatever the topology, and the text must not suggest otherwise.
 */
static void print_this_machine(const pf_topology *t)
{
    bool live = pf_topology_is_live(t);
    const char *features[32];
    size_t nfeatures = live ? pf_isa_features(features, 32) : 0;
    if (nfeatures > 32)
        nfeatures = 32;
    fputs("features:  ", stdout);
    if (!live)
        fputs(" unknown (not the live machine)", stdout);
    for (size_t i = 0; i < nfeatures; i++)
        printf(" %s", features[i]);
    if (live && nfeatures == 0)
        fputs(" none of avx2, avx512, amx", stdout);
    fputc('\n', stdout);
    if (!live)
        fputs("libraries:  unknown for that machine; this machine's, which plan preloads "
              "whatever the topology:\n",
              stdout);
    char **skipped = NULL;
    for (int lib = 0; lib < PF_LIBRARY_COUNT; lib++) {
        char *path = NULL;
        printf("%-11s %s",
               lib == PF_LIBRARY_IOMP ? "openmp:" : "allocator:", pf_library_name((pf_library)lib));
        if (pf_library_search((pf_library)lib, NULL, true, &path, &skipped) == 0)
            printf(" %s\n", path);
        else
            printf(" not found (apt-get install %s)\n", pf_library_package((pf_library)lib));
        free(path);
    }
    fflush(stdout);
    for (size_t i = 0; skipped && skipped[i]; i++)
        pf_log_stderr(NULL, PF_LOG_WARNING, skipped[i]);
    pf_strv_free(skipped);
}

static int print_human(const pf_topology *t)
{
    topo_view v;
    v.cpus = pf_topology_cpus(t, &v.ncpus);
    v.scratch = malloc((v.ncpus ? v.ncpus : 1) * sizeof *v.scratch);
    v.order = malloc((v.ncpus ? v.ncpus : 1) * sizeof *v.order);
    int rc = v.scratch && v.order ? 0 : -ENOMEM;
    if (rc == 0) {
        print_machine(t, &v);
        rc = print_layout(&v);
    }
    if (rc == 0)
        print_this_machine(t);
    free(v.scratch);
    free(v.order);
    return rc;
}

static int run_topo(const tool_options *o)
{
    pf_topology *topo = NULL;
    char *why = NULL;
    int rc = pf_topology_load(o->topology, &topo, &why);
    if (rc < 0)
        return tool_fail(o->json, rc, why);
    char *doc = NULL;
    if (!o->json)
        rc = print_human(topo);
    else if ((rc = pf_topology_to_json(topo, true, &doc)) == 0)
        fputs(doc, stdout);
    free(doc);
    pf_topology_free(topo);
    return rc < 0 ? tool_fail(false, rc, NULL) : 0;
}

const tool_command_def tool_cmd_topo = {
    .name = "topo",
    .id = CMD_TOPO,
    .args = "[--topology SRC] [--json]",
    .summary = "show the machine: sockets, nodes, cores, caches, features, libraries",
    .about = "Show sockets, NUMA nodes, cores and SMT siblings, last-level caches, E-cores,\n"
             "the CPUs this process may use and, for this machine, its ISA features and the\n"
             "OpenMP runtime and allocators a launch would preload.",
    .run = run_topo,
};
