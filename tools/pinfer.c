/*
 * pinfer - plan, launch and supervise pinned inference instances.
 *
 *   pinfer run  [OPTIONS] [--] PROGRAM [ARGS...]     launch and supervise
 *   pinfer plan [OPTIONS] [--] [PROGRAM [ARGS...]]   print the plan
 *   pinfer topo [--topology SRC] [--json]            show the machine
 *
 * Built on the public API of libpinfer only.  Usage errors print one line
 * "pinfer: error: ..." (and {"error": ...} on stdout with --json) and exit 2.
 */
#include "json.h"
#include "options.h"
#include "pinfer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

#define EXIT_USAGE 2

static const char USAGE[] =
    "usage: pinfer run  [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "       pinfer plan [OPTIONS] [--] [PROGRAM [ARGS...]]\n"
    "       pinfer topo [--topology SRC] [--json]\n"
    "\n"
    "Plan instances over physical cores and NUMA nodes, set OpenMP and the\n"
    "allocator up, bind CPUs and memory, launch and supervise.  A drop-in for\n"
    "`python -m torch.backends.xeon.run_cpu` and `ipexrun`: same options, in\n"
    "their dash and underscore spellings.\n"
    "\n"
    "Instances:\n"
    "  --ninstances N                 number of instances\n"
    "  --ncores-per-instance N        CPUs per instance (-1: split evenly)\n"
    "  --node-id N, --nodes-list L    only the CPUs of these NUMA nodes\n"
    "  --core-list L                  exactly these CPUs (e.g. 0-3,8)\n"
    "  --use-logical-cores            also use SMT siblings\n"
    "  --use-e-cores                  also use efficiency cores\n"
    "  --bind-numa-node               no instance spans two NUMA nodes\n"
    "  --strategy close|scatter       which instances to keep (default close)\n"
    "  --latency-mode                 preset: 4 cores per instance\n"
    "  --throughput-mode              preset: one instance per NUMA node\n"
    "  --rank I, --instance-idx L     launch only these instances of the plan\n"
    "Environment:\n"
    "  --memory-allocator auto|default|tcmalloc|jemalloc   (--enable-tcmalloc, ...)\n"
    "  --omp-runtime auto|default|intel                    (--disable-iomp)\n"
    "  --disable-numactl, --disable-taskset, --multi-task-manager M\n"
    "Program:\n"
    "  -m, --module                   run PROGRAM as a Python module\n"
    "  --no-python                    run PROGRAM directly, not with python\n"
    "  --log-path DIR, --log-file-prefix P\n"
    "Other:\n"
    "  --topology SRC                 an lscpu/hwloc XML file or synthetic:\"...\"\n"
    "  --json                         machine-readable output (plan, topo)\n"
    "\n"
    "See pinfer(1).\n";

/* Report a usage error the way --json users and people both read it. */
static int fail_usage(bool json, const char *msg)
{
    fprintf(stderr, "pinfer: error: %s\n", msg);
    if (json) {
        json_writer w;
        json_init(&w, stdout);
        json_begin_object(&w);
        json_key(&w, "error");
        json_string(&w, msg);
        json_end_object(&w);
        json_finish(&w);
    }
    return EXIT_USAGE;
}

static int fail_code(bool json, int rc, char *why)
{
    const char *msg = why ? why : pf_strerror(rc);
    int status = fail_usage(json, msg);
    free(why);
    /* Failures of the machine rather than of the input are not usage errors. */
    return rc == -ENOMEM || rc == -ENOTSUP || rc == -EIO ? 1 : status;
}

/*
 * The command each instance runs: PROGRAM ARGS with --no-python, else
 * PYTHON -u [-m] PROGRAM ARGS where PYTHON is $PINFER_PYTHON or the first
 * python3 on PATH.  *python receives the malloc'd interpreter path (or NULL).
 */
static size_t build_command(const tool_options *o, const char **argv, char **python)
{
    size_t n = 0;
    *python = NULL;
    if (!o->program)
        return 0;
    if (!o->no_python) {
        const char *env = getenv("PINFER_PYTHON");
        if (env && *env)
            *python = strdup(env);
        else if (pf_find_program("python3", python) < 0)
            *python = NULL;
        argv[n++] = *python ? *python : "python3";
        argv[n++] = "-u";
        if (o->module)
            argv[n++] = "-m";
    }
    for (int i = 0; i < o->nprogram; i++)
        argv[n++] = o->program[i];
    return n;
}

static void json_topology_summary(json_writer *w, const pf_topology *t)
{
    size_t ncpus, nnodes;
    pf_topology_cpus(t, &ncpus);
    const int *nodes = pf_topology_nodes(t, &nnodes);
    json_begin_object(w);
    json_key(w, "source");
    json_string(w, pf_topology_source(t));
    json_key(w, "cpus");
    json_int(w, (long long)ncpus);
    json_key(w, "cores");
    json_int(w, (long long)pf_topology_ncores(t));
    json_key(w, "sockets");
    json_int(w, (long long)pf_topology_nsockets(t));
    json_key(w, "nodes");
    json_int_array(w, nodes, nnodes);
    json_end_object(w);
}

/* Is this assignment one every instance shares (shown once, as "env: ...")? */
static bool is_common(const pf_launch_env *env, const pf_env_var *v)
{
    for (size_t k = 0; k < env->ncommon; k++)
        if (!strcmp(env->common[k].name, v->name) && !strcmp(env->common[k].value, v->value))
            return true;
    return false;
}

static void print_plan_json(const pf_topology *t, const pf_plan *plan, const pf_launch_env *env,
                            const char **cmd, size_t ncmd, const tool_options *o)
{
    json_writer w;
    json_init(&w, stdout);
    json_begin_object(&w);
    json_key(&w, "topology");
    json_topology_summary(&w, t);
    json_key(&w, "instances");
    json_begin_array(&w);
    for (size_t i = 0; i < plan->ninstances; i++) {
        const pf_instance *in = &plan->instances[i];
        json_begin_object(&w);
        json_key(&w, "index");
        json_int(&w, in->index);
        json_key(&w, "cpus");
        json_int_array(&w, in->cpus, in->ncpus);
        json_key(&w, "nodes");
        json_int_array(&w, in->nodes, in->nnodes);
        json_key(&w, "threads");
        json_int(&w, in->threads);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_key(&w, "env");
    json_begin_object(&w);
    for (size_t i = 0; i < env->ncommon; i++) {
        json_key(&w, env->common[i].name);
        json_string(&w, env->common[i].value);
    }
    json_end_object(&w);
    json_key(&w, "preload");
    json_begin_array(&w);
    for (size_t i = 0; i < env->npreload; i++)
        json_string(&w, env->preload[i]);
    json_end_array(&w);
    json_key(&w, "command");
    json_begin_array(&w);
    for (size_t i = 0; i < ncmd; i++)
        json_string(&w, cmd[i]);
    json_end_array(&w);
    json_key(&w, "warnings");
    json_begin_array(&w);
    for (int i = 0; i < o->nnotes; i++)
        json_string(&w, o->notes[i]);
    for (size_t i = 0; i < plan->nwarnings; i++)
        json_string(&w, plan->warnings[i]);
    for (size_t i = 0; i < env->nwarnings; i++)
        json_string(&w, env->warnings[i]);
    json_end_array(&w);
    json_end_object(&w);
    json_finish(&w);
}

static const char *plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* Print ids as a list; "-" for none. */
static void print_list(FILE *out, const int *ids, size_t n)
{
    char *text = NULL;
    if (n == 0 || pf_cpulist_format(ids, n, &text) < 0)
        fputs(n == 0 ? "-" : "?", out);
    else
        fputs(text, out);
    free(text);
}

static void print_warnings(const tool_options *o, const pf_plan *plan, const pf_launch_env *env)
{
    for (int i = 0; i < o->nnotes; i++)
        fprintf(stderr, "pinfer: warning: %s\n", o->notes[i]);
    for (size_t i = 0; i < plan->nwarnings; i++)
        fprintf(stderr, "pinfer: warning: %s\n", plan->warnings[i]);
    for (size_t i = 0; env && i < env->nwarnings; i++)
        fprintf(stderr, "pinfer: warning: %s\n", env->warnings[i]);
}

static void print_plan_table(const pf_topology *t, const pf_plan *plan, const pf_launch_env *env,
                             const char **cmd, size_t ncmd, const tool_options *o)
{
    size_t ncpus, nnodes;
    pf_topology_cpus(t, &ncpus);
    pf_topology_nodes(t, &nnodes);
    printf("topology: %s (%zu %s, %zu %s, %zu %s, %zu NUMA %s)\n", pf_topology_source(t), ncpus,
           plural(ncpus, "CPU", "CPUs"), pf_topology_ncores(t),
           plural(pf_topology_ncores(t), "core", "cores"), pf_topology_nsockets(t),
           plural(pf_topology_nsockets(t), "socket", "sockets"), nnodes,
           plural(nnodes, "node", "nodes"));
    printf("%-9s %-24s %-8s %s\n", "instance", "CPUs", "nodes", "threads");
    for (size_t i = 0; i < plan->ninstances; i++) {
        const pf_instance *in = &plan->instances[i];
        char *cpus = NULL, *nodes = NULL;
        pf_cpulist_format(in->cpus, in->ncpus, &cpus);
        pf_cpulist_format(in->nodes, in->nnodes, &nodes);
        printf("%-9d %-24s %-8s %d\n", in->index, cpus ? cpus : "?", nodes ? nodes : "?",
               in->threads);
        free(cpus);
        free(nodes);
    }
    if (env->npreload > 0) {
        fputs("preload:", stdout);
        for (size_t i = 0; i < env->npreload; i++)
            printf(" %s", env->preload[i]);
        fputc('\n', stdout);
    }
    if (ncmd > 0) {
        /* cmd is NULL-terminated: it was allocated with room to spare. */
        char *line = pf_shell_join((char *const *)cmd);
        printf("command: %s\n", line ? line : "?");
        free(line);
    }
    for (size_t i = 0; i < env->ncommon; i++)
        printf("env: %s=%s\n", env->common[i].name, env->common[i].value);
    for (size_t i = 0; i < plan->ninstances; i++)
        for (size_t k = 0; k < env->nvars[i]; k++)
            if (!is_common(env, &env->vars[i][k]))
                printf("env[%d]: %s=%s\n", plan->instances[i].index, env->vars[i][k].name,
                       env->vars[i][k].value);
    fflush(stdout);
    print_warnings(o, plan, env);
}

/*
 * Find the libraries the options may preload (only those: a launcher does
 * this at every start) and compute every instance's environment.
 */
static int compute_env(const tool_options *o, const pf_plan *plan, const pf_topology *topo,
                       char **found, pf_launch_env **env, char **why)
{
    pf_env_options eo;
    pf_env_options_init(&eo);
    eo.allocator = o->allocator;
    eo.omp = o->omp;
    eo.cpu_binding = !(o->disable_numactl && o->disable_taskset);
    eo.environ = environ;
    bool want[PF_LIBRARY_COUNT] = {
        [PF_LIBRARY_TCMALLOC] =
            o->allocator == PF_ALLOCATOR_AUTO || o->allocator == PF_ALLOCATOR_TCMALLOC,
        [PF_LIBRARY_JEMALLOC] = o->allocator == PF_ALLOCATOR_JEMALLOC,
        [PF_LIBRARY_IOMP] = o->omp != PF_OMP_DEFAULT,
    };
    for (int lib = 0; lib < PF_LIBRARY_COUNT; lib++) {
        found[lib] = NULL;
        if (want[lib] && pf_library_find((pf_library)lib, NULL, true, &found[lib]) < 0)
            found[lib] = NULL;
    }
    /* auto falls back to jemalloc only when tcmalloc is missing */
    if (o->allocator == PF_ALLOCATOR_AUTO && !found[PF_LIBRARY_TCMALLOC] &&
        pf_library_find(PF_LIBRARY_JEMALLOC, NULL, true, &found[PF_LIBRARY_JEMALLOC]) < 0)
        found[PF_LIBRARY_JEMALLOC] = NULL;
    for (int lib = 0; lib < PF_LIBRARY_COUNT; lib++)
        eo.libraries[lib] = found[lib];
    return pf_env_compute(plan, topo, &eo, env, why);
}

static void free_found(char **found)
{
    for (int lib = 0; lib < PF_LIBRARY_COUNT; lib++)
        free(found[lib]);
}

static int load_topology(const tool_options *o, pf_topology **topo)
{
    char *why = NULL;
    int rc = pf_topology_load(o->topology, topo, &why);
    return rc < 0 ? fail_code(o->json, rc, why) : 0;
}

/* Topology, plan and environment: what `plan` prints and `run` launches. */
typedef struct prepared {
    pf_topology *topo;
    pf_plan *plan;
    pf_launch_env *env;
    char *found[PF_LIBRARY_COUNT];
    const char **cmd;
    size_t ncmd;
    char *python;
} prepared;

static void prepared_free(prepared *p)
{
    free(p->python);
    free(p->cmd);
    free_found(p->found);
    pf_launch_env_free(p->env);
    pf_plan_free(p->plan);
    pf_topology_free(p->topo);
}

static int prepare(const tool_options *o, prepared *p)
{
    memset(p, 0, sizeof *p);
    int status = load_topology(o, &p->topo);
    if (status)
        return status;
    char *why = NULL;
    int rc = 0;
    if (o->command == CMD_RUN && !pf_topology_is_live(p->topo))
        rc = -EINVAL, why = strdup("run launches on this machine: the topology (--topology or "
                                   "PINFER_TOPOLOGY) must be live; `pinfer plan --topology ...` "
                                   "plans for another");
    if (rc == 0)
        rc = pf_plan_instances(p->topo, &o->plan, &p->plan, &why);
    if (rc == 0)
        rc = compute_env(o, p->plan, p->topo, p->found, &p->env, &why);
    if (rc == 0) {
        p->cmd = calloc((size_t)o->nprogram + 4, sizeof *p->cmd);
        rc = p->cmd ? 0 : -ENOMEM;
    }
    if (rc < 0) {
        prepared_free(p);
        return fail_code(o->json, rc, why);
    }
    p->ncmd = build_command(o, p->cmd, &p->python);
    return 0;
}

static int cmd_plan(const tool_options *o)
{
    prepared p;
    int status = prepare(o, &p);
    if (status)
        return status;
    if (o->json)
        print_plan_json(p.topo, p.plan, p.env, p.cmd, p.ncmd, o);
    else
        print_plan_table(p.topo, p.plan, p.env, p.cmd, p.ncmd, o);
    prepared_free(&p);
    return 0;
}

/* Every warning of the options, the plan and the environment, NULL-terminated. */
static const char **collect_warnings(const tool_options *o, const pf_plan *plan,
                                     const pf_launch_env *env)
{
    size_t n = (size_t)o->nnotes + plan->nwarnings + env->nwarnings, k = 0;
    const char **all = calloc(n + 1, sizeof *all);
    for (int i = 0; all && i < o->nnotes; i++)
        all[k++] = o->notes[i];
    for (size_t i = 0; all && i < plan->nwarnings; i++)
        all[k++] = plan->warnings[i];
    for (size_t i = 0; all && i < env->nwarnings; i++)
        all[k++] = env->warnings[i];
    return all;
}

static int cmd_run(const tool_options *o)
{
    prepared p;
    int status = prepare(o, &p);
    if (status)
        return status;
    if (!o->no_python && !p.python) {
        prepared_free(&p);
        fputs("pinfer: error: cannot run python3: not found on PATH (set PINFER_PYTHON, or use "
              "--no-python)\n",
              stderr);
        return 127; /* as a shell says a command cannot be found */
    }
    /* pf_launch reports them, so that they reach the log file too. */
    const char **warnings = collect_warnings(o, p.plan, p.env);
    if (!warnings) {
        prepared_free(&p);
        fputs("pinfer: error: out of memory\n", stderr);
        return 1;
    }
    pf_launch_options lo;
    pf_launch_options_init(&lo);
    lo.argv = (char *const *)p.cmd;
    /* a bare PINFER_PYTHON ("python3.11") is looked up like any command */
    lo.search_path = true;
    lo.bind_cpus = !(o->disable_numactl && o->disable_taskset);
    lo.bind_memory = !o->disable_numactl;
    lo.log_dir = o->log_dir;
    lo.log_prefix = o->log_prefix;
    lo.warnings = warnings;
    const char *grace = getenv("PINFER_GRACE_MS");
    if (grace && *grace)
        lo.grace_ms = (int)strtol(grace, NULL, 10);
    char *why = NULL;
    int rc = pf_launch(p.plan, p.env, &lo, &status, &why);
    free(warnings);
    prepared_free(&p);
    if (rc < 0) {
        fprintf(stderr, "pinfer: error: %s\n", why ? why : pf_strerror(rc));
        free(why);
        /* 127/126 when the program cannot be run, as pf_launch says; else 1 */
        return status ? status : 1;
    }
    return status;
}

/* ---- topo ---------------------------------------------------------------- */

typedef struct topo_view {
    const pf_cpu_info *cpus;
    size_t ncpus;
    int *scratch; /* ncpus ints */
} topo_view;

/* Collect ids of CPUs matching a predicate into scratch; returns the count. */
typedef bool (*cpu_pred)(const pf_cpu_info *c, int arg);
static size_t select_cpus(const topo_view *v, cpu_pred pred, int arg, bool want_core)
{
    size_t n = 0;
    for (size_t i = 0; i < v->ncpus; i++)
        if (pred(&v->cpus[i], arg))
            v->scratch[n++] = want_core ? v->cpus[i].core_first : v->cpus[i].cpu;
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

static void print_topo_human(const pf_topology *t, const char **features, size_t nfeatures,
                             char *const *libs)
{
    topo_view v;
    v.cpus = pf_topology_cpus(t, &v.ncpus);
    v.scratch = malloc((v.ncpus ? v.ncpus : 1) * sizeof *v.scratch);
    if (!v.scratch)
        return;
    size_t nnodes;
    const int *nodes = pf_topology_nodes(t, &nnodes);
    int smt = 1;
    for (size_t i = 0; i < v.ncpus; i++)
        if (v.cpus[i].smt_rank + 1 > smt)
            smt = v.cpus[i].smt_rank + 1;
    printf("source:     %s\n", pf_topology_source(t));
    printf("machine:    %zu %s, %zu %s, %zu %s, %zu NUMA %s, %d %s per core\n",
           pf_topology_nsockets(t), plural(pf_topology_nsockets(t), "socket", "sockets"),
           pf_topology_ncores(t), plural(pf_topology_ncores(t), "core", "cores"), v.ncpus,
           plural(v.ncpus, "CPU", "CPUs"), nnodes, plural(nnodes, "node", "nodes"), smt,
           plural((size_t)smt, "thread", "threads"));
    fputs("allowed:    ", stdout);
    print_list(stdout, v.scratch, select_cpus(&v, is_allowed, 0, false));
    fputs("\nE-cores:    ", stdout);
    print_list(stdout, v.scratch, select_cpus(&v, is_efficiency, 0, false));
    fputc('\n', stdout);
    /* Sockets, in order of their first CPU: each printed at that CPU. */
    for (size_t i = 0; i < v.ncpus; i++) {
        bool known = false;
        for (size_t k = 0; k < i && !known; k++)
            known = v.cpus[k].socket == v.cpus[i].socket;
        if (known)
            continue;
        printf("socket %d:   CPUs ", v.cpus[i].socket);
        print_list(stdout, v.scratch, select_cpus(&v, in_socket, v.cpus[i].socket, false));
        fputc('\n', stdout);
    }
    for (size_t k = 0; k < nnodes; k++) {
        int node = nodes[k];
        printf("node %d:     CPUs ", node);
        print_list(stdout, v.scratch, select_cpus(&v, in_node, node, false));
        fputs("; cores ", stdout);
        print_list(stdout, v.scratch, select_cpus(&v, in_node_first, node, false));
        fputs("; SMT siblings ", stdout);
        print_list(stdout, v.scratch, select_cpus(&v, in_node_sibling, node, false));
        fputc('\n', stdout);
    }
    bool llc_known = false;
    for (size_t i = 0; i < v.ncpus; i++) {
        const pf_cpu_info *c = &v.cpus[i];
        if (c->llc != c->cpu)
            continue; /* print each group once, at its first CPU */
        if (!llc_known)
            fputs("last-level caches:", stdout);
        llc_known = true;
        fputs(" [", stdout);
        print_list(stdout, v.scratch, select_cpus(&v, in_llc, c->llc, false));
        fputc(']', stdout);
    }
    fputs(llc_known ? "\n" : "last-level caches: unknown\n", stdout);
    fputs("features:  ", stdout);
    if (!pf_topology_is_live(t))
        fputs(" unknown (not the live machine)", stdout);
    for (size_t i = 0; i < nfeatures; i++)
        printf(" %s", features[i]);
    if (pf_topology_is_live(t) && nfeatures == 0)
        fputs(" none of avx2, avx512, amx", stdout);
    fputc('\n', stdout);
    if (!pf_topology_is_live(t))
        fputs("libraries:  not searched (not the live machine)\n", stdout);
    for (int lib = 0; pf_topology_is_live(t) && lib < PF_LIBRARY_COUNT; lib++) {
        printf("%-11s %s",
               lib == PF_LIBRARY_IOMP ? "openmp:" : "allocator:", pf_library_name((pf_library)lib));
        if (libs[lib])
            printf(" %s\n", libs[lib]);
        else
            printf(" not found (apt-get install %s)\n", pf_library_package((pf_library)lib));
    }
    free(v.scratch);
}

static void print_topo_json(const pf_topology *t, const char **features, size_t nfeatures,
                            char *const *libs)
{
    size_t ncpus, nnodes;
    const pf_cpu_info *cpus = pf_topology_cpus(t, &ncpus);
    const int *nodes = pf_topology_nodes(t, &nnodes);
    json_writer w;
    json_init(&w, stdout);
    json_begin_object(&w);
    json_key(&w, "source");
    json_string(&w, pf_topology_source(t));
    json_key(&w, "sockets");
    json_int(&w, (long long)pf_topology_nsockets(t));
    json_key(&w, "cores");
    json_int(&w, (long long)pf_topology_ncores(t));
    json_key(&w, "nodes");
    json_int_array(&w, nodes, nnodes);
    json_key(&w, "cpus");
    json_begin_array(&w);
    for (size_t i = 0; i < ncpus; i++) {
        const pf_cpu_info *c = &cpus[i];
        json_begin_object(&w);
        json_key(&w, "cpu");
        json_int(&w, c->cpu);
        json_key(&w, "core");
        json_int(&w, c->core);
        json_key(&w, "socket");
        json_int(&w, c->socket);
        json_key(&w, "node");
        json_int(&w, c->node);
        json_key(&w, "smt_rank");
        json_int(&w, c->smt_rank);
        json_key(&w, "core_first");
        json_int(&w, c->core_first);
        json_key(&w, "llc");
        if (c->llc >= 0)
            json_int(&w, c->llc);
        else
            json_null(&w);
        json_key(&w, "efficiency");
        json_bool(&w, c->efficiency);
        json_key(&w, "allowed");
        json_bool(&w, c->allowed);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_key(&w, "allowed");
    json_begin_array(&w);
    for (size_t i = 0; i < ncpus; i++)
        if (cpus[i].allowed)
            json_int(&w, cpus[i].cpu);
    json_end_array(&w);
    json_key(&w, "features");
    json_begin_array(&w);
    for (size_t i = 0; i < nfeatures; i++)
        json_string(&w, features[i]);
    json_end_array(&w);
    json_key(&w, "libraries");
    json_begin_object(&w);
    for (int lib = 0; pf_topology_is_live(t) && lib < PF_LIBRARY_COUNT; lib++) {
        json_key(&w, pf_library_name((pf_library)lib));
        json_string(&w, libs[lib]);
    }
    json_end_object(&w);
    json_end_object(&w);
    json_finish(&w);
}

static int cmd_topo(const tool_options *o)
{
    pf_topology *topo;
    int status = load_topology(o, &topo);
    if (status)
        return status;
    /* Features are this machine's: shown only for the live topology. */
    const char *features[32];
    size_t nfeatures = 0;
    if (pf_topology_is_live(topo)) {
        nfeatures = pf_isa_features(features, sizeof features / sizeof *features);
        if (nfeatures > sizeof features / sizeof *features)
            nfeatures = sizeof features / sizeof *features;
    }
    /* So are the libraries found: searched only for the live topology. */
    char *libs[PF_LIBRARY_COUNT] = {NULL};
    for (int lib = 0; pf_topology_is_live(topo) && lib < PF_LIBRARY_COUNT; lib++)
        if (pf_library_find((pf_library)lib, NULL, true, &libs[lib]) < 0)
            libs[lib] = NULL;
    if (o->json)
        print_topo_json(topo, features, nfeatures, libs);
    else
        print_topo_human(topo, features, nfeatures, libs);
    for (int lib = 0; lib < PF_LIBRARY_COUNT; lib++)
        free(libs[lib]);
    pf_topology_free(topo);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (strcmp(sub, "--version") == 0 || strcmp(sub, "version") == 0) {
        printf("pinfer %s\n", PINFER_VERSION);
        return 0;
    }
    tool_command command;
    if (strcmp(sub, "run") == 0)
        command = CMD_RUN;
    else if (strcmp(sub, "plan") == 0)
        command = CMD_PLAN;
    else if (strcmp(sub, "topo") == 0)
        command = CMD_TOPO;
    else {
        fprintf(stderr, "pinfer: error: unknown command '%s' (commands: run, plan, topo)\n", sub);
        return EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0 || argv[i][0] != '-')
            break;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
    }
    tool_options opts;
    char *why = NULL;
    int rc = tool_parse_options(command, argc - 1, argv + 1, &opts, &why);
    if (rc < 0)
        return fail_code(command != CMD_RUN && tool_options_want_json(argc - 1, argv + 1), rc, why);
    switch (command) {
    case CMD_RUN: return cmd_run(&opts);
    case CMD_PLAN: return cmd_plan(&opts);
    default: return cmd_topo(&opts);
    }
}
