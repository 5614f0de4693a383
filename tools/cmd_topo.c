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
    int *scratch; /* ncpus ints */
} topo_view;

/* Collect ids of CPUs matching a predicate into scratch; returns the count. */
typedef bool (*cpu_pred)(const pf_cpu_info *c, int arg);
static size_t select_cpus(const topo_view *v, cpu_pred pred, int arg)
{
    size_t n = 0;
    for (size_t i = 0; i < v->ncpus; i++)
        if (pred(&v->cpus[i], arg))
            v->scratch[n++] = v->cpus[i].cpu;
    return n;
}

static bool in_node(const pf_cpu_info *c, int node)
{
    return c->node == node;
}
static bool in_node_first(const pf_cpu_info *c, int node)
{
    return c->node == node && c->smt_rank == 0;
}
static bool in_node_sibling(const pf_cpu_info *c, int node)
{
    return c->node == node && c->smt_rank > 0;
}
static bool is_efficiency(const pf_cpu_info *c, int unused)
{
    (void)unused;
    return c->efficiency;
}
static bool is_allowed(const pf_cpu_info *c, int unused)
{
    (void)unused;
    return c->allowed;
}
static bool in_socket(const pf_cpu_info *c, int socket)
{
    return c->socket == socket;
}
static bool in_llc(const pf_cpu_info *c, int llc)
{
    return c->llc == llc;
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

static void print_selected(const topo_view *v, cpu_pred pred, int arg)
{
    print_list(v->scratch, select_cpus(v, pred, arg));
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
    print_selected(v, is_allowed, 0);
    double quota = pf_topology_cpu_quota(t);
    if (quota > 0)
        printf("\nquota:      %g %s (the cgroup's CPU quota: plans keep within it)", quota,
               quota == 1 ? "CPU" : "CPUs");
    fputs("\nE-cores:    ", stdout);
    print_selected(v, is_efficiency, 0);
    fputc('\n', stdout);
}

/* Sockets in order of their first CPU, then nodes, then cache groups. */
static void print_layout(const pf_topology *t, const topo_view *v)
{
    for (size_t i = 0; i < v->ncpus; i++) {
        bool known = false;
        for (size_t k = 0; k < i && !known; k++)
            known = v->cpus[k].socket == v->cpus[i].socket;
        if (known)
            continue;
        printf("socket %d:   CPUs ", v->cpus[i].socket);
        print_selected(v, in_socket, v->cpus[i].socket);
        fputc('\n', stdout);
    }
    size_t nnodes;
    const int *nodes = pf_topology_nodes(t, &nnodes);
    for (size_t k = 0; k < nnodes; k++) {
        printf("node %d:     CPUs ", nodes[k]);
        print_selected(v, in_node, nodes[k]);
        fputs("; cores ", stdout);
        print_selected(v, in_node_first, nodes[k]);
        fputs("; SMT siblings ", stdout);
        print_selected(v, in_node_sibling, nodes[k]);
        fputc('\n', stdout);
    }
    bool llc_known = false;
    for (size_t i = 0; i < v->ncpus; i++) {
        const pf_cpu_info *c = &v->cpus[i];
        if (c->llc != c->cpu)
            continue; /* print each group once, at its first CPU */
        if (!llc_known)
            fputs("last-level caches:", stdout);
        llc_known = true;
        fputs(" [", stdout);
        print_selected(v, in_llc, c->llc);
        fputc(']', stdout);
    }
    fputs(llc_known ? "\n" : "last-level caches: unknown\n", stdout);
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
    if (!v.scratch)
        return -ENOMEM;
    print_machine(t, &v);
    print_layout(t, &v);
    print_this_machine(t);
    free(v.scratch);
    return 0;
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
