/*
 * cmd_plan.c - `pinfer plan`: the instances, environment and command that
 * `pinfer run` would use, as a table or as JSON, for this machine or any
 * other (--topology).
 */
#include "tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Is this assignment one every instance shares (shown once, as "env: ...")? */
static bool is_common(const pf_launch_env *env, const pf_env_var *v)
{
    for (size_t k = 0; k < env->ncommon; k++)
        if (!strcmp(env->common[k].name, v->name) && !strcmp(env->common[k].value, v->value))
            return true;
    return false;
}

/* The digits of a non-negative number, for column widths. */
static int digits(long long n)
{
    int d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

/*
 * One row per instance, its CPU list last: the other columns are as wide as
 * their longest value, so they stay aligned however long a CPU list is
 * (0-27,56-83 on a 2x28 machine with SMT, every other CPU when siblings are
 * numbered next to each other), and a row stays one line for grep and awk.
 */
static void print_instances(const pf_plan *plan)
{
    size_t n = plan->ninstances;
    char **nodes = calloc(n ? n : 1, sizeof *nodes);
    char **cpus = calloc(n ? n : 1, sizeof *cpus);
    int wi = (int)strlen("instance"), wn = (int)strlen("nodes"), wt = (int)strlen("threads");
    for (size_t i = 0; nodes && cpus && i < n; i++) {
        const pf_instance *in = &plan->instances[i];
        pf_cpulist_format(in->nodes, in->nnodes, &nodes[i]);
        pf_cpulist_format(in->cpus, in->ncpus, &cpus[i]);
        int len = nodes[i] ? (int)strlen(nodes[i]) : 1;
        wn = len > wn ? len : wn;
        wi = digits(in->index) > wi ? digits(in->index) : wi;
        wt = digits(in->threads) > wt ? digits(in->threads) : wt;
    }
    printf("%-*s  %-*s  %-*s  %s\n", wi, "instance", wn, "nodes", wt, "threads", "CPUs");
    for (size_t i = 0; i < n; i++) {
        const pf_instance *in = &plan->instances[i];
        const char *nl = nodes && nodes[i] ? nodes[i] : "?", *cl = cpus && cpus[i] ? cpus[i] : "?";
        printf("%-*d  %-*s  %-*d  %s\n", wi, in->index, wn, nl, wt, in->threads, cl);
    }
    for (size_t i = 0; i < n; i++) {
        free(nodes ? nodes[i] : NULL);
        free(cpus ? cpus[i] : NULL);
    }
    free(nodes);
    free(cpus);
}

static void print_table(const pf_launch_spec *spec)
{
    const pf_topology *t = spec->topo;
    const pf_plan *plan = spec->plan;
    const pf_launch_env *env = spec->env;
    size_t ncpus, nnodes;
    pf_topology_cpus(t, &ncpus);
    pf_topology_nodes(t, &nnodes);
    printf("topology: %s (%zu %s, %zu %s, %zu %s, %zu NUMA %s)\n", pf_topology_source(t), ncpus,
           tool_plural(ncpus, "CPU", "CPUs"), pf_topology_ncores(t),
           tool_plural(pf_topology_ncores(t), "core", "cores"), pf_topology_nsockets(t),
           tool_plural(pf_topology_nsockets(t), "socket", "sockets"), nnodes,
           tool_plural(nnodes, "node", "nodes"));
    print_instances(plan);
    if (env->npreload > 0) {
        /* The libraries are searched for here, whatever the topology: say so
           when the plan is for another machine. */
        fputs(pf_topology_is_live(t) ? "preload:" : "preload (this machine's libraries):", stdout);
        for (size_t i = 0; i < env->npreload; i++)
            printf(" %s", env->preload[i]);
        fputc('\n', stdout);
    }
    if (spec->argv) {
        char *line = pf_shell_join(spec->argv);
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
    for (size_t i = 0; i < spec->nwarnings; i++)
        pf_log_stderr(NULL, PF_LOG_WARNING, spec->warnings[i]);
}

static int run_plan(const tool_options *o)
{
    pf_launch_spec *spec = NULL;
    int rc = 0, status = tool_launch_spec(o, &spec);
    if (status)
        return status;
    char *doc = NULL;
    if (!o->json)
        print_table(spec);
    else if ((rc = pf_launch_spec_to_json(spec, &doc)) == 0)
        fputs(doc, stdout);
    free(doc);
    pf_launch_spec_free(spec);
    return rc < 0 ? tool_fail(false, rc, NULL) : 0;
}

const tool_command_def tool_cmd_plan = {
    .name = "plan",
    .id = CMD_PLAN,
    .args = "[OPTIONS] [--] [PROGRAM [ARGS...]]",
    .summary = "print the instances, environment and command run would use",
    .about = "Print the plan `pinfer run` would launch: each instance's CPUs, nodes and\n"
             "threads, the preloads, the command and the environment; for this machine or,\n"
             "with --topology, for another.",
    .run = run_plan,
};
