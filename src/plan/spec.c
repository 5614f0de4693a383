/*
 * spec.c - options to a complete launch specification, in one place:
 * topology -> plan -> libraries -> environment -> command line -> bindings.
 * `pinfer run` and `pinfer plan` use it today; a server, a benchmark and a
 * tuner make their workers' specs with it too, so that every way of
 * starting an instance starts it the same way.
 */
#include "base/util.h"

#include "pinfer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/*
 * The public struct and what only the spec knows: the topology it loaded
 * itself (NULL when the request lent one), which it frees.
 */
typedef struct owned_spec {
    pf_launch_spec spec; /* first: a pf_launch_spec * is an owned_spec * */
    pf_topology *topo;
} owned_spec;

void pf_launch_request_init(pf_launch_request *r)
{
    memset(r, 0, sizeof *r);
    pf_plan_options_init(&r->plan);
    r->allocator = PF_ALLOCATOR_AUTO;
    r->omp = PF_OMP_AUTO;
}

void pf_launch_spec_free(pf_launch_spec *spec)
{
    if (!spec)
        return;
    size_t n = spec->plan ? spec->plan->ninstances : 0;
    for (size_t i = 0; i < n; i++) {
        if (spec->envp)
            pf_strv_free(spec->envp[i]);
        if (spec->binding)
            free(spec->binding[i]);
    }
    free(spec->envp);
    free(spec->binding);
    pf_strv_free(spec->warnings);
    pf_strv_free(spec->argv);
    free(spec->python);
    for (int lib = 0; lib < PF_LIBRARY_COUNT; lib++)
        free(spec->libraries[lib]);
    pf_launch_env_free(spec->env);
    pf_plan_free(spec->plan);
    owned_spec *o = (owned_spec *)spec;
    pf_topology_free(o->topo);
    free(o);
}

/*
 * The libraries the options may preload, and only those (a launcher does
 * this at every start): tcmalloc for auto and tcmalloc, jemalloc when asked
 * or when auto found no tcmalloc, Intel's OpenMP unless the default is asked.
 * Files passed over as unfit to preload are named in *skipped.
 */
static int find_libraries(const pf_launch_request *r, char **found, char ***skipped)
{
    bool want[PF_LIBRARY_COUNT] = {
        [PF_LIBRARY_TCMALLOC] =
            r->allocator == PF_ALLOCATOR_AUTO || r->allocator == PF_ALLOCATOR_TCMALLOC,
        [PF_LIBRARY_JEMALLOC] = r->allocator == PF_ALLOCATOR_JEMALLOC,
        [PF_LIBRARY_IOMP] = r->omp != PF_OMP_DEFAULT,
    };
    for (int lib = 0; lib < PF_LIBRARY_COUNT; lib++) {
        found[lib] = NULL;
        bool fallback = lib == PF_LIBRARY_JEMALLOC && r->allocator == PF_ALLOCATOR_AUTO &&
                        !found[PF_LIBRARY_TCMALLOC];
        if (!want[lib] && !fallback)
            continue;
        int rc = pf_library_search((pf_library)lib, r->environ, true, &found[lib], skipped);
        if (rc == -ENOMEM)
            return rc;
        if (rc < 0)
            found[lib] = NULL;
    }
    return 0;
}

static int add_strings(char **dst, size_t *n, char *const *src, size_t count)
{
    for (size_t k = 0; k < count; k++)
        if (!(dst[(*n)++] = strdup(src[k])))
            return -ENOMEM;
    return 0;
}

/* The request's warnings, then the plan's, the library search's, the environment's. */
static int collect_warnings(const pf_launch_request *r, pf_launch_spec *spec, char **skipped)
{
    size_t nreq = 0, nskipped = 0;
    while (r->warnings && r->warnings[nreq])
        nreq++;
    while (skipped && skipped[nskipped])
        nskipped++;
    size_t total = nreq + spec->plan->nwarnings + nskipped + spec->env->nwarnings;
    spec->warnings = calloc(total + 1, sizeof *spec->warnings);
    if (!spec->warnings)
        return -ENOMEM;
    size_t n = 0;
    int rc = add_strings(spec->warnings, &n, (char *const *)r->warnings, nreq);
    if (rc == 0)
        rc = add_strings(spec->warnings, &n, spec->plan->warnings, spec->plan->nwarnings);
    if (rc == 0)
        rc = add_strings(spec->warnings, &n, skipped, nskipped);
    if (rc == 0)
        rc = add_strings(spec->warnings, &n, spec->env->warnings, spec->env->nwarnings);
    spec->nwarnings = n;
    return rc;
}

/*
 * The command each instance runs: PROGRAM ARGS with no_python, else
 * PYTHON -u [-m] PROGRAM ARGS where PYTHON is the request's, else
 * $PINFER_PYTHON, else the first python3 on PATH.
 */
static int build_command(const pf_launch_request *r, pf_launch_spec *spec)
{
    size_t nprog = 0;
    while (r->program && r->program[nprog])
        nprog++;
    if (nprog == 0)
        return 0;
    char *const *envp = r->environ ? r->environ : environ;
    if (!r->no_python) {
        const char *given = r->python ? r->python : pf__envp_get(envp, "PINFER_PYTHON");
        if (given && *given)
            spec->python = strdup(given);
        else if (pf_find_program("python3", pf__envp_get(envp, "PATH"), &spec->python) < 0)
            spec->python = NULL;
        spec->python_missing = !spec->python;
    }
    spec->argv = calloc(nprog + 4, sizeof *spec->argv);
    if (!spec->argv)
        return -ENOMEM;
    size_t n = 0;
    if (!r->no_python) {
        spec->argv[n++] = strdup(spec->python ? spec->python : "python3");
        spec->argv[n++] = strdup("-u");
        if (r->module)
            spec->argv[n++] = strdup("-m");
    }
    for (size_t k = 0; k < nprog; k++)
        spec->argv[n++] = strdup(r->program[k]);
    for (size_t k = 0; k < n; k++)
        if (!spec->argv[k])
            return -ENOMEM;
    return 0;
}

/* Each instance's whole environment and its binding, ready for pf_spawn(). */
static int build_instances(const pf_launch_request *r, pf_launch_spec *spec)
{
    size_t n = spec->plan->ninstances;
    spec->envp = calloc(n, sizeof *spec->envp);
    spec->binding = calloc(n, sizeof *spec->binding);
    if (!spec->envp || !spec->binding)
        return -ENOMEM;
    char *const *base = r->environ ? r->environ : environ;
    for (size_t i = 0; i < n; i++) {
        int rc = pf_launch_env_apply(spec->env, i, base, &spec->envp[i]);
        if (rc < 0)
            return rc;
        spec->binding[i] =
            pf_binding_command(&spec->plan->instances[i], spec->bind_cpus, spec->bind_memory);
        if (!spec->binding[i])
            return -ENOMEM;
    }
    return 0;
}

static int refuse_not_live(char **why)
{
    return pf__fail(why, -EINVAL,
                    "run launches on this machine: the topology (--topology or "
                    "PINFER_TOPOLOGY) must be live; `pinfer plan --topology ...` plans for "
                    "another");
}

static int load_topology(const pf_launch_request *r, pf_launch_spec *spec, pf_topology **owned,
                         char **why)
{
    /*
     * Only "live" and "hwloc" name this machine: anything else is refused
     * before it is read, so that `-` does not eat the standard input the
     * instances would inherit, nor a large file cost time for nothing.
     */
    if (r->require_live && !r->topo && r->topology && strcmp(r->topology, "live") != 0 &&
        strcmp(r->topology, "hwloc") != 0)
        return refuse_not_live(why);
    if (r->topo) {
        spec->topo = r->topo;
    } else {
        int rc = pf_topology_load(r->topology, owned, why);
        if (rc < 0)
            return rc;
        spec->topo = *owned;
    }
    if (r->require_live && !pf_topology_is_live(spec->topo))
        return refuse_not_live(why);
    return 0;
}

int pf_launch_spec_create(const pf_launch_request *r, pf_launch_spec **out, char **why)
{
    if (!r || !out)
        return pf__fail(why, -EINVAL, "no request");
    owned_spec *o = calloc(1, sizeof *o);
    if (!o)
        return pf__fail(why, -ENOMEM, "out of memory");
    pf_launch_spec *spec = &o->spec;
    spec->bind_cpus = !(r->disable_numactl && r->disable_taskset);
    spec->bind_memory = !r->disable_numactl;
    char **skipped = NULL;
    int rc = load_topology(r, spec, &o->topo, why);
    if (rc == 0)
        rc = pf_plan_instances(spec->topo, &r->plan, &spec->plan, why);
    if (rc == 0 && (rc = find_libraries(r, spec->libraries, &skipped)) < 0)
        rc = pf__fail(why, rc, "out of memory");
    if (rc == 0) {
        pf_env_options eo;
        pf_env_options_init(&eo);
        eo.allocator = r->allocator;
        eo.omp = r->omp;
        eo.cpu_binding = spec->bind_cpus;
        eo.environ = r->environ ? r->environ : environ;
        for (int lib = 0; lib < PF_LIBRARY_COUNT; lib++)
            eo.libraries[lib] = spec->libraries[lib];
        rc = pf_env_compute(spec->plan, spec->topo, &eo, &spec->env, why);
    }
    if (rc == 0 && ((rc = collect_warnings(r, spec, skipped)) < 0 ||
                    (rc = build_command(r, spec)) < 0 || (rc = build_instances(r, spec)) < 0))
        rc = pf__fail(why, rc, "out of memory");
    pf_strv_free(skipped);
    if (rc < 0) {
        pf_launch_spec_free(spec);
        return rc;
    }
    *out = spec;
    return 0;
}

int pf_launch_spec_resolve(const pf_launch_spec *spec, char **path, char **why)
{
    if (spec && spec->python_missing)
        return pf__fail(why, -ENOENT,
                        "cannot run python3: not found on PATH (set PINFER_PYTHON, or use "
                        "--no-python)");
    if (!spec || !spec->argv || !spec->argv[0] || !path)
        return pf__fail(why, -EINVAL, "no command to run");
    const char *name = spec->argv[0];
    int rc = pf_find_program(name, pf__envp_get(spec->envp[0], "PATH"), path);
    if (rc == -ENOMEM)
        return pf__fail(why, rc, "out of memory");
    if (rc < 0)
        return pf__fail(why, rc, "cannot run %s: %s", name, strerror(-rc));
    return 0;
}
