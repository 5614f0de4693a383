/*
 * env.c - the environment of each instance (docs/environment.md).
 *
 * A pure function of the plan, the options, the libraries found and the
 * current environment (the only questions it asks outside are whether an
 * LD_PRELOAD entry exists and whether a library found may be preloaded,
 * through callbacks tests replace).  The steps:
 *   0. keep the libraries found that may be preloaded (pf_library_check);
 *   1. choose the allocator and the OpenMP runtime from those;
 *   2. merge LD_PRELOAD: existing entries that exist, then the allocator,
 *      then the OpenMP runtime, never the same library or two of one kind;
 *   3. per instance: OMP_NUM_THREADS, the runtime's placement variables,
 *      MALLOC_CONF for jemalloc; an existing non-empty value wins.
 */
#include "base/util.h"

#include "pinfer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JEMALLOC_CONF "oversize_threshold:1,background_thread:true,metadata_thp:auto"
#define KMP_AFFINITY_COMPACT "granularity=fine,compact,1,0"

void pf_env_options_init(pf_env_options *o)
{
    memset(o, 0, sizeof *o);
    o->allocator = PF_ALLOCATOR_AUTO;
    o->omp = PF_OMP_AUTO;
    o->cpu_binding = true;
}

/* What kind of library a preload entry is, by its file name. */
typedef enum lib_kind { KIND_OTHER, KIND_ALLOCATOR, KIND_OPENMP } lib_kind;

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static lib_kind kind_of(const char *path)
{
    static const char *const allocators[] = {"libtcmalloc", "libjemalloc", "libmimalloc", NULL};
    static const char *const openmps[] = {"libiomp5.", "libomp.", "libomp5.", "libgomp.", NULL};
    const char *name = base_name(path);
    for (int i = 0; allocators[i]; i++)
        if (strncmp(name, allocators[i], strlen(allocators[i])) == 0)
            return KIND_ALLOCATOR;
    for (int i = 0; openmps[i]; i++)
        if (strncmp(name, openmps[i], strlen(openmps[i])) == 0)
            return KIND_OPENMP;
    return KIND_OTHER;
}

static bool default_exists(const char *path, void *ctx)
{
    (void)ctx;
    return access(path, F_OK) == 0;
}

static int default_library_check(const char *path, void *ctx, char **why)
{
    (void)ctx;
    return pf_library_check(path, why);
}

/* The variables pinfer sets besides LD_PRELOAD: at most this many can be kept. */
#define MAX_KEPT 8

typedef struct builder {
    pf_launch_env *env;
    const pf_env_options *opts;
    int rc;
    const char *lib[PF_LIBRARY_COUNT]; /* the libraries found that may be preloaded */
    const char *kept[MAX_KEPT];        /* names whose existing value won over a different one */
    size_t nkept;
    /* The same for every instance, computed once before them: */
    char *preload_line; /* LD_PRELOAD's value, or NULL when it is not set */
    size_t nplanned;    /* the full plan's size, for PINFER_NINSTANCES */
} builder;

static void warn(builder *b, const char *fmt, ...) PF__PRINTF(2, 3);
static void warn(builder *b, const char *fmt, ...)
{
    if (b->rc)
        return;
    char **grown = realloc(b->env->warnings, (b->env->nwarnings + 1) * sizeof *grown);
    va_list ap;
    va_start(ap, fmt);
    char *line = grown ? pf__vstrdupf(fmt, ap) : NULL;
    va_end(ap);
    if (grown)
        b->env->warnings = grown;
    if (!line) {
        b->rc = -ENOMEM;
        return;
    }
    b->env->warnings[b->env->nwarnings++] = line;
}

static void add_preload(builder *b, const char *path)
{
    if (b->rc)
        return;
    for (size_t i = 0; i < b->env->npreload; i++)
        if (strcmp(b->env->preload[i], path) == 0)
            return;
    char **grown = realloc(b->env->preload, (b->env->npreload + 1) * sizeof *grown);
    char *copy = grown ? strdup(path) : NULL;
    if (grown)
        b->env->preload = grown;
    if (!copy) {
        b->rc = -ENOMEM;
        return;
    }
    b->env->preload[b->env->npreload++] = copy;
}

/* The existing LD_PRELOAD entry of this kind, or NULL. */
static const char *preloaded_kind(const builder *b, lib_kind kind)
{
    for (size_t i = 0; i < b->env->npreload; i++)
        if (kind_of(b->env->preload[i]) == kind)
            return b->env->preload[i];
    return NULL;
}

/*
 * Can a file test tell whether the loader will find this entry?  Not for a
 * bare name (the loader searches its library path for it) nor for one with
 * $LIB, $PLATFORM or $ORIGIN (the loader expands them): those are kept as
 * written.
 */
static bool checkable(const char *entry)
{
    return strchr(entry, '/') && !strchr(entry, '$');
}

/* Keep the existing LD_PRELOAD entries that exist, in order. */
static void merge_existing_preload(builder *b)
{
    const char *existing = pf__envp_get(b->opts->environ, "LD_PRELOAD");
    if (!existing)
        return;
    bool (*exists)(const char *, void *) =
        b->opts->file_exists ? b->opts->file_exists : default_exists;
    const char *p = existing;
    while (*p && !b->rc) {
        size_t skip = strspn(p, ": \t");
        p += skip;
        size_t len = strcspn(p, ": \t");
        if (len == 0)
            break;
        char *entry = strndup(p, len);
        if (!entry) {
            b->rc = -ENOMEM;
            break;
        }
        if (!checkable(entry) || exists(entry, b->opts->ctx))
            add_preload(b, entry);
        else
            warn(b, "LD_PRELOAD entry %s does not exist: dropped", entry);
        free(entry);
        p += len;
    }
}

/*
 * Add our library of a kind unless the environment already preloads one of
 * that kind; returns the file in effect (ours, theirs) or NULL.
 */
static const char *preload_ours(builder *b, lib_kind kind, const char *ours)
{
    const char *theirs = preloaded_kind(b, kind);
    if (theirs) {
        if (strcmp(base_name(theirs), base_name(ours)) != 0)
            warn(b, "LD_PRELOAD already has %s: not adding %s", theirs, ours);
        return theirs;
    }
    add_preload(b, ours);
    return ours;
}

/*
 * Step 0: a library found is used only if it may be preloaded (a regular
 * ELF shared object nobody else may replace: pf_library_check); one that
 * may not is left out, with a warning, as if it had not been found.
 */
static void check_libraries(builder *b)
{
    int (*check)(const char *, void *, char **) =
        b->opts->library_check ? b->opts->library_check : default_library_check;
    for (int lib = 0; lib < PF_LIBRARY_COUNT && !b->rc; lib++) {
        const char *path = b->opts->libraries[lib];
        char *why = NULL;
        b->lib[lib] = NULL;
        if (!path)
            continue;
        if (check(path, b->opts->ctx, &why) == 0)
            b->lib[lib] = path;
        else
            warn(b, "%s: not preloaded", why ? why : path);
        free(why);
    }
}

static pf_allocator choose_allocator(builder *b)
{
    const pf_env_options *o = b->opts;
    const char *tc = b->lib[PF_LIBRARY_TCMALLOC], *je = b->lib[PF_LIBRARY_JEMALLOC];
    switch (o->allocator) {
    case PF_ALLOCATOR_AUTO:
        return tc ? PF_ALLOCATOR_TCMALLOC : je ? PF_ALLOCATOR_JEMALLOC : PF_ALLOCATOR_DEFAULT;
    case PF_ALLOCATOR_TCMALLOC:
    case PF_ALLOCATOR_JEMALLOC: {
        pf_library lib =
            o->allocator == PF_ALLOCATOR_TCMALLOC ? PF_LIBRARY_TCMALLOC : PF_LIBRARY_JEMALLOC;
        if (b->lib[lib])
            return o->allocator;
        warn(b, "%s was asked for but not found (apt-get install %s): using the default allocator",
             pf_library_name(lib), pf_library_package(lib));
        return PF_ALLOCATOR_DEFAULT;
    }
    default: return PF_ALLOCATOR_DEFAULT;
    }
}

static pf_omp_runtime choose_omp(builder *b)
{
    const char *iomp = b->lib[PF_LIBRARY_IOMP];
    switch (b->opts->omp) {
    case PF_OMP_AUTO: return iomp ? PF_OMP_INTEL : PF_OMP_DEFAULT;
    case PF_OMP_INTEL:
        if (iomp)
            return PF_OMP_INTEL;
        warn(b,
             "Intel OpenMP was asked for but not found (apt-get install %s): using the "
             "program's default OpenMP runtime",
             pf_library_package(PF_LIBRARY_IOMP));
        return PF_OMP_DEFAULT;
    default: return PF_OMP_DEFAULT;
    }
}

/*
 * Remember that the environment's value of `name` won over a different one
 * of ours, for the one warning that names them all.  Equal values override
 * nothing and are not worth a warning (a pinfer run inside an instance
 * inherits most of them).
 */
static void note_kept(builder *b, const char *name, const char *existing, const char *ours)
{
    if (strcmp(existing, ours) == 0)
        return;
    for (size_t k = 0; k < b->nkept; k++)
        if (strcmp(b->kept[k], name) == 0)
            return;
    if (b->nkept < MAX_KEPT)
        b->kept[b->nkept++] = name;
}

/* Set name=value for instance i unless the environment has a non-empty value. */
/* Set name=value for instance i (value malloc'd, taken; NULL: out of memory). */
static void set_var(builder *b, size_t i, const char *name, char *value)
{
    if (!value)
        b->rc = b->rc ? b->rc : -ENOMEM;
    if (b->rc) {
        free(value);
        return;
    }
    pf_launch_env *env = b->env;
    pf_env_var *grown = realloc(env->vars[i], (env->nvars[i] + 1) * sizeof *grown);
    char *copy = grown ? strdup(name) : NULL;
    if (grown)
        env->vars[i] = grown;
    if (!copy) {
        b->rc = -ENOMEM;
        free(value);
        return;
    }
    env->vars[i][env->nvars[i]++] = (pf_env_var){copy, value};
}

/* The same, unless the environment has a non-empty value already: that one wins. */
static void assign(builder *b, size_t i, const char *name, char *value)
{
    const char *existing = pf__envp_get(b->opts->environ, name);
    if (!b->rc && value && existing && *existing && strcmp(name, "LD_PRELOAD") != 0) {
        note_kept(b, name, existing, value);
        free(value);
        return;
    }
    set_var(b, i, name, value);
}

/* The one warning naming every existing value that won: "A=1, B=2". */
static void warn_kept(builder *b)
{
    char *list = NULL;
    for (size_t k = 0; k < b->nkept && !b->rc; k++) {
        const char *value = pf__envp_get(b->opts->environ, b->kept[k]);
        char *longer = list ? pf__strdupf("%s, %s=%s", list, b->kept[k], value)
                            : pf__strdupf("%s=%s", b->kept[k], value);
        free(list);
        list = longer;
        if (!list)
            b->rc = -ENOMEM;
    }
    if (list)
        warn(b, "keeping %s from the environment over pinfer's values", list);
    free(list);
}

/* "{4},{5},{6}" (OpenMP places) or "4,5,6" (a KMP proclist). */
static char *cpu_places(const pf_instance *in, bool braces)
{
    size_t cap = in->ncpus * 16 + 1, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (size_t k = 0; k < in->ncpus; k++)
        len += (size_t)snprintf(out + len, cap - len, braces ? "%s{%d}" : "%s%d", k ? "," : "",
                                in->cpus[k]);
    return out;
}

static char *join_preload(const pf_launch_env *env)
{
    size_t len = 1;
    for (size_t i = 0; i < env->npreload; i++)
        len += strlen(env->preload[i]) + 1;
    char *out = malloc(len);
    if (!out)
        return NULL;
    out[0] = '\0';
    size_t at = 0;
    for (size_t i = 0; i < env->npreload; i++) {
        size_t n = strlen(env->preload[i]);
        if (i)
            out[at++] = ':';
        memcpy(out + at, env->preload[i], n);
        at += n;
        out[at] = '\0';
    }
    return out;
}

static void instance_env(builder *b, const pf_instance *in, size_t i)
{
    pf_launch_env *env = b->env;
    if (b->preload_line)
        assign(b, i, "LD_PRELOAD", strdup(b->preload_line));
    assign(b, i, "OMP_NUM_THREADS", pf__strdupf("%d", in->threads));
    if (env->omp == PF_OMP_INTEL) {
        assign(b, i, "KMP_BLOCKTIME", strdup("1"));
        if (!b->opts->cpu_binding) {
            char *list = cpu_places(in, false);
            assign(b, i, "KMP_AFFINITY",
                   list ? pf__strdupf("granularity=fine,proclist=[%s],explicit", list) : NULL);
            free(list);
        } else {
            /* Always, also when the plan uses every CPU (a machine without SMT):
               without it Intel's threads are free to migrate inside the mask. */
            assign(b, i, "KMP_AFFINITY", strdup(KMP_AFFINITY_COMPACT));
        }
    } else {
        /* GNU: one place per CPU, thread t on the instance's CPU t. */
        assign(b, i, "OMP_PROC_BIND", strdup("close"));
        assign(b, i, "OMP_PLACES", b->opts->cpu_binding ? strdup("threads") : cpu_places(in, true));
    }
    if (env->allocator == PF_ALLOCATOR_JEMALLOC)
        assign(b, i, "MALLOC_CONF", strdup(JEMALLOC_CONF));
    /* Which instance this is: set whatever the environment says, since an
       outer launch's values describe another plan. */
    set_var(b, i, "PINFER_INSTANCE", pf__strdupf("%d", in->index));
    set_var(b, i, "PINFER_NINSTANCES", pf__strdupf("%zu", b->nplanned));
}

/* The assignments all instances share, for --json. */
static void find_common(builder *b)
{
    pf_launch_env *env = b->env;
    if (b->rc || env->ninstances == 0)
        return;
    env->common = calloc(env->nvars[0] + 1, sizeof *env->common);
    if (!env->common) {
        b->rc = -ENOMEM;
        return;
    }
    for (size_t k = 0; k < env->nvars[0]; k++) {
        const pf_env_var *v = &env->vars[0][k];
        bool everywhere = true;
        for (size_t i = 1; i < env->ninstances && everywhere; i++) {
            bool found = false;
            for (size_t j = 0; j < env->nvars[i] && !found; j++)
                found = !strcmp(env->vars[i][j].name, v->name) &&
                        !strcmp(env->vars[i][j].value, v->value);
            everywhere = found;
        }
        if (everywhere) {
            env->common[env->ncommon].name = strdup(v->name);
            env->common[env->ncommon].value = strdup(v->value);
            if (!env->common[env->ncommon].name || !env->common[env->ncommon].value) {
                free(env->common[env->ncommon].name);
                free(env->common[env->ncommon].value);
                b->rc = -ENOMEM;
                return;
            }
            env->ncommon++;
        }
    }
}

int pf_env_compute(const pf_plan *plan, const pf_topology *topo, const pf_env_options *opts,
                   pf_launch_env **out, char **why)
{
    (void)topo; /* the environment depends on the plan alone since KMP_AFFINITY is always set */
    if (!plan || !topo || !opts || !out)
        return pf__fail(why, -EINVAL, "no plan, topology or options");
    if ((unsigned)opts->allocator > PF_ALLOCATOR_JEMALLOC || (unsigned)opts->omp > PF_OMP_INTEL)
        return pf__fail(why, -EINVAL, "unknown allocator or OpenMP runtime");
    pf_launch_env *env = calloc(1, sizeof *env);
    builder b = {.env = env,
                 .opts = opts,
                 .nplanned = plan->nplanned > plan->ninstances ? plan->nplanned : plan->ninstances};
    if (env) {
        env->ninstances = plan->ninstances;
        env->vars = calloc(plan->ninstances + 1, sizeof *env->vars);
        env->nvars = calloc(plan->ninstances + 1, sizeof *env->nvars);
    }
    if (!env || !env->vars || !env->nvars) {
        pf_launch_env_free(env);
        return pf__fail(why, -ENOMEM, "out of memory");
    }
    check_libraries(&b);
    env->allocator = choose_allocator(&b);
    env->omp = choose_omp(&b);
    merge_existing_preload(&b);
    if (env->allocator != PF_ALLOCATOR_DEFAULT && !b.rc) {
        pf_library lib =
            env->allocator == PF_ALLOCATOR_TCMALLOC ? PF_LIBRARY_TCMALLOC : PF_LIBRARY_JEMALLOC;
        const char *used = preload_ours(&b, KIND_ALLOCATOR, b.lib[lib]);
        /* Theirs wins; MALLOC_CONF follows what is really preloaded. */
        if (used && strncmp(base_name(used), "libjemalloc", 11) == 0)
            env->allocator = PF_ALLOCATOR_JEMALLOC;
        else if (used && strncmp(base_name(used), "libtcmalloc", 11) == 0)
            env->allocator = PF_ALLOCATOR_TCMALLOC;
    }
    if (env->omp == PF_OMP_INTEL && !b.rc) {
        const char *used = preload_ours(&b, KIND_OPENMP, b.lib[PF_LIBRARY_IOMP]);
        if (used && strncmp(base_name(used), "libgomp.", 8) == 0)
            env->omp = PF_OMP_DEFAULT;
    }
    if (!b.rc && (env->npreload > 0 || pf__envp_get(opts->environ, "LD_PRELOAD")) &&
        !(b.preload_line = join_preload(env)))
        b.rc = -ENOMEM;
    for (size_t i = 0; i < plan->ninstances && !b.rc; i++)
        instance_env(&b, &plan->instances[i], i);
    free(b.preload_line);
    warn_kept(&b);
    find_common(&b);
    if (b.rc) {
        pf_launch_env_free(env);
        return pf__fail(why, b.rc, "out of memory");
    }
    *out = env;
    return 0;
}

void pf_launch_env_free(pf_launch_env *env)
{
    if (!env)
        return;
    for (size_t i = 0; env->vars && i < env->ninstances; i++) {
        for (size_t k = 0; k < env->nvars[i]; k++) {
            free(env->vars[i][k].name);
            free(env->vars[i][k].value);
        }
        free(env->vars[i]);
    }
    for (size_t k = 0; k < env->ncommon; k++) {
        free(env->common[k].name);
        free(env->common[k].value);
    }
    for (size_t k = 0; k < env->npreload; k++)
        free(env->preload[k]);
    for (size_t k = 0; k < env->nwarnings; k++)
        free(env->warnings[k]);
    free(env->vars);
    free(env->nvars);
    free(env->common);
    free(env->preload);
    free(env->warnings);
    free(env);
}

void pf_strv_free(char **strv)
{
    for (size_t i = 0; strv && strv[i]; i++)
        free(strv[i]);
    free(strv);
}

int pf_launch_env_apply(const pf_launch_env *env, size_t instance, char *const *base, char ***out)
{
    if (!env || !out || instance >= env->ninstances)
        return -EINVAL;
    size_t nbase = 0;
    while (base && base[nbase])
        nbase++;
    const pf_env_var *vars = env->vars[instance];
    size_t nvars = env->nvars[instance];
    char **result = calloc(nbase + nvars + 1, sizeof *result);
    if (!result)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < nbase; i++) {
        bool replaced = false;
        for (size_t k = 0; k < nvars && !replaced; k++) {
            size_t len = strlen(vars[k].name);
            replaced = strncmp(base[i], vars[k].name, len) == 0 && base[i][len] == '=';
        }
        if (replaced)
            continue;
        if (!(result[n++] = strdup(base[i])))
            goto oom;
    }
    for (size_t k = 0; k < nvars; k++)
        if (!(result[n++] = pf__strdupf("%s=%s", vars[k].name, vars[k].value)))
            goto oom;
    *out = result;
    return 0;
oom:
    pf_strv_free(result);
    return -ENOMEM;
}

/*
 * The plan's environment sets one of these for its instance's CPUs, and
 * the OpenMP runtime then binds the program's threads (its main thread
 * included) there: an instance meant to be unbound must not get them, else
 * every such instance would run on the first instance's CPUs.
 */
bool pf_env_is_openmp_affinity(const char *entry)
{
    static const char *const NAMES[] = {
        "KMP_AFFINITY=", "OMP_PROC_BIND=", "OMP_PLACES=", "GOMP_CPU_AFFINITY="};
    for (size_t i = 0; i < sizeof NAMES / sizeof *NAMES; i++)
        if (strncmp(entry, NAMES[i], strlen(NAMES[i])) == 0)
            return true;
    return false;
}
