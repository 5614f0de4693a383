/*
 * exec.c - one instance in place: bind the calling process and exec the
 * program, with no supervisor (its signals and exit status are its own);
 * and what that path shares with the supervisor's starts.
 */
#include "launch/launch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int pf__memory_allowed(const pf_launch_spec *spec, pf_log_fn log, void *ctx, int fd, bool *memory)
{
    *memory = spec->bind_memory;
    if (!*memory)
        return 0;
    const pf_instance *first = &spec->plan->instances[0];
    int rc = pf_memory_binding_probe(first->nodes, first->nnodes);
    if (rc == -ENOMEM)
        return rc;
    if (rc < 0) {
        pf__logf(log, ctx, fd, PF_LOG_WARNING,
                 "memory binding is refused here (%s): binding CPUs only", strerror(-rc));
        *memory = false;
    }
    return 0;
}

void pf__log_instance(const pf_launch_spec *spec, size_t i, pf_log_fn log, void *ctx, int fd)
{
    char *cmd = pf_shell_join(spec->argv);
    pf__logf(log, ctx, fd, PF_LOG_INFO, "instance %d: %s %s", spec->plan->instances[i].index,
             spec->binding[i] ? spec->binding[i] : "", cmd ? cmd : "");
    free(cmd);
}

int pf_launch_exec(const pf_launch_spec *spec, size_t i, pf_log_fn log, void *ctx, char **why)
{
    if (!spec || !spec->plan || i >= spec->plan->ninstances)
        return pf__fail(why, -EINVAL, "no such instance");
    char *file = NULL;
    int rc = pf_launch_spec_resolve(spec, &file, why);
    for (size_t k = 0; k < spec->nwarnings; k++)
        pf__logf(log, ctx, -1, PF_LOG_WARNING, "%s", spec->warnings[k]);
    bool memory = false;
    if (rc == 0 && pf__memory_allowed(spec, log, ctx, -1, &memory) < 0)
        rc = pf__fail(why, -ENOMEM, "out of memory");
    if (rc < 0) {
        free(file);
        return rc;
    }
    const pf_instance *in = &spec->plan->instances[i];
    pf__log_instance(spec, i, log, ctx, -1);
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    so.file = file;
    so.argv = spec->argv;
    so.envp = spec->envp[i];
    if (spec->bind_cpus)
        so.cpus = in->cpus, so.ncpus = in->ncpus;
    if (memory)
        so.nodes = in->nodes, so.nnodes = in->nnodes;
    so.log = log;
    so.log_ctx = ctx;
    rc = pf_exec(&so, why);
    free(file);
    return rc;
}
