/*
 * json.c - the documents of `pinfer plan --json` and `pinfer topo --json`,
 * written once, here: the tool prints them and the Python package parses
 * the very same text, so the two can never disagree.
 */
#include "base/json.h"

#include "pinfer.h"

#include <stdlib.h>

/* A CPU quota, when there is one (the key is left out otherwise). */
static void member_quota(pf__json *w, double quota)
{
    if (quota > 0) {
        pf__json_key(w, "cpu_quota");
        pf__json_double(w, quota);
    }
}

/* The topology planned on, with the CPU quota the plan kept within. */
static void topology_summary(pf__json *w, const pf_topology *t, double quota)
{
    size_t ncpus, nnodes;
    pf_topology_cpus(t, &ncpus);
    const int *nodes = pf_topology_nodes(t, &nnodes);
    pf__json_begin_object(w);
    pf__json_member_string(w, "source", pf_topology_source(t));
    pf__json_member_int(w, "cpus", (long long)ncpus);
    pf__json_member_int(w, "cores", (long long)pf_topology_ncores(t));
    pf__json_member_int(w, "sockets", (long long)pf_topology_nsockets(t));
    pf__json_key(w, "nodes");
    pf__json_int_array(w, nodes, nnodes);
    member_quota(w, quota);
    pf__json_end_object(w);
}

static void instances(pf__json *w, const pf_plan *plan)
{
    pf__json_begin_array(w);
    for (size_t i = 0; i < plan->ninstances; i++) {
        const pf_instance *in = &plan->instances[i];
        pf__json_begin_object(w);
        pf__json_member_int(w, "index", in->index);
        pf__json_key(w, "cpus");
        pf__json_int_array(w, in->cpus, in->ncpus);
        pf__json_key(w, "nodes");
        pf__json_int_array(w, in->nodes, in->nnodes);
        pf__json_member_int(w, "threads", in->threads);
        pf__json_end_object(w);
    }
    pf__json_end_array(w);
}

int pf_launch_spec_to_json(const pf_launch_spec *spec, char **out)
{
    pf__json w;
    pf__json_init(&w);
    pf__json_begin_object(&w);
    pf__json_key(&w, "topology");
    topology_summary(&w, spec->topo, spec->plan->cpu_quota);
    pf__json_key(&w, "instances");
    instances(&w, spec->plan);
    pf__json_key(&w, "env");
    pf__json_begin_object(&w);
    for (size_t i = 0; i < spec->env->ncommon; i++) {
        pf__json_member_string(&w, spec->env->common[i].name, spec->env->common[i].value);
    }
    pf__json_end_object(&w);
    pf__json_key(&w, "preload");
    pf__json_string_array(&w, spec->env->preload, spec->env->npreload);
    pf__json_key(&w, "command");
    pf__json_begin_array(&w);
    for (size_t i = 0; spec->argv && spec->argv[i]; i++)
        pf__json_string(&w, spec->argv[i]);
    pf__json_end_array(&w);
    pf__json_key(&w, "warnings");
    pf__json_string_array(&w, spec->warnings, spec->nwarnings);
    pf__json_end_object(&w);
    return pf__json_finish(&w, out);
}

static void cpu_object(pf__json *w, const pf_cpu_info *c)
{
    pf__json_begin_object(w);
    pf__json_member_int(w, "cpu", c->cpu);
    pf__json_member_int(w, "core", c->core);
    pf__json_member_int(w, "socket", c->socket);
    pf__json_member_int(w, "node", c->node);
    pf__json_member_int(w, "smt_rank", c->smt_rank);
    pf__json_member_int(w, "core_first", c->core_first);
    pf__json_key(w, "llc");
    if (c->llc >= 0)
        pf__json_int(w, c->llc);
    else
        pf__json_null(w);
    pf__json_key(w, "efficiency");
    pf__json_bool(w, c->efficiency);
    pf__json_key(w, "allowed");
    pf__json_bool(w, c->allowed);
    pf__json_end_object(w);
}

/* This machine's features and libraries: only a live topology has them. */
static void machine(pf__json *w, const pf_topology *t, bool libraries)
{
    bool live = pf_topology_is_live(t);
    const char *features[32];
    size_t nfeatures = live ? pf_isa_features(features, 32) : 0;
    if (nfeatures > 32)
        nfeatures = 32;
    pf__json_key(w, "features");
    pf__json_begin_array(w);
    for (size_t i = 0; i < nfeatures; i++)
        pf__json_string(w, features[i]);
    pf__json_end_array(w);
    pf__json_key(w, "libraries");
    pf__json_begin_object(w);
    for (int lib = 0; live && libraries && lib < PF_LIBRARY_COUNT; lib++) {
        char *path = NULL;
        if (pf_library_find((pf_library)lib, NULL, true, &path) < 0)
            path = NULL;
        pf__json_member_string(w, pf_library_name((pf_library)lib), path);
        free(path);
    }
    pf__json_end_object(w);
}

int pf_topology_to_json(const pf_topology *t, bool libraries, char **out)
{
    size_t ncpus, nnodes;
    const pf_cpu_info *cpus = pf_topology_cpus(t, &ncpus);
    const int *nodes = pf_topology_nodes(t, &nnodes);
    pf__json w;
    pf__json_init(&w);
    pf__json_begin_object(&w);
    pf__json_member_string(&w, "source", pf_topology_source(t));
    pf__json_member_int(&w, "sockets", (long long)pf_topology_nsockets(t));
    pf__json_member_int(&w, "cores", (long long)pf_topology_ncores(t));
    pf__json_key(&w, "nodes");
    pf__json_int_array(&w, nodes, nnodes);
    pf__json_key(&w, "cpus");
    pf__json_begin_array(&w);
    for (size_t i = 0; i < ncpus; i++)
        cpu_object(&w, &cpus[i]);
    pf__json_end_array(&w);
    pf__json_key(&w, "allowed");
    pf__json_begin_array(&w);
    for (size_t i = 0; i < ncpus; i++)
        if (cpus[i].allowed)
            pf__json_int(&w, cpus[i].cpu);
    pf__json_end_array(&w);
    member_quota(&w, pf_topology_cpu_quota(t));
    machine(&w, t, libraries);
    pf__json_end_object(&w);
    return pf__json_finish(&w, out);
}

int pf_error_to_json(const char *message, char **out)
{
    pf__json w;
    pf__json_init(&w);
    pf__json_begin_object(&w);
    pf__json_member_string(&w, "error", message);
    pf__json_end_object(&w);
    return pf__json_finish(&w, out);
}
