/*
 * test_env.c - the environment of each instance (docs/environment.md), as
 * the pure function it is: fake library paths, a fake environment and a
 * file_exists callback, so that nothing depends on this machine.
 *
 * Each row of the table: a fixture and plan options (as in test_plan.c),
 * environment options, the current environment, and what is expected:
 *   vars      every instance's assignments in order, "NAME=value" separated
 *             by ' ', instances separated by " | ";
 *   common    the shared assignments, same form;
 *   preload   the final LD_PRELOAD entries joined by ':';
 *   effect    "<allocator>/<omp>" in effect;
 *   warnings  the expected warnings, each a substring of one warning, in
 *             order, separated by '|'; their number must match exactly.
 * Options: alloc=auto|default|tcmalloc|jemalloc omp=auto|default|intel
 * nobind, and which libraries were found: tc je iomp (none: "-"), or found
 * but unfit to preload: tcbad jebad iompbad.
 * A file "exists" when its path starts with '/' and holds neither "gone"
 * nor '$' (entries the loader resolves itself must not be asked about); a
 * library may be preloaded unless its path holds "bad" (the check's
 * callback, in place of pf_library_check's file tests).
 */
#include "pf_test.h"

/* Fake library paths: what pf_library_find() would have found. */
#define TC "/L/libtcmalloc.so.4"
#define JE "/L/libjemalloc.so.2"
#define IOMP "/L/libiomp5.so"
#define TC_BAD "/bad/libtcmalloc.so"
#define JE_BAD "/bad/libjemalloc.so"
#define IOMP_BAD "/bad/libiomp5.so"
#define UNFIT " is writable by everyone (mode 0666): not preloaded"
#define COMPACT "KMP_AFFINITY=granularity=fine,compact,1,0"
#define INTEL_ALL_TC "LD_PRELOAD=" TC ":" IOMP
#define JE_CONF "MALLOC_CONF=oversize_threshold:1,background_thread:true,metadata_thp:auto"

typedef struct env_case {
    const char *fixture;
    const char *plan;
    const char *options;
    const char *environ;
    const char *vars;
    const char *common;
    const char *preload;
    const char *effect;
    const char *warnings;
} env_case;

#define W "worked16.lscpu"
#define T "this_2cpu.lscpu"
#define ALL "tc je iomp"

static const env_case CASES[] = {
    /* Intel runtime found (auto): preloaded, KMP_BLOCKTIME, KMP_AFFINITY compact,
       also when the plan uses every CPU of the machine (it used to be left out) */
    {W, "", ALL, "", INTEL_ALL_TC " OMP_NUM_THREADS=8 KMP_BLOCKTIME=1 " COMPACT,
     INTEL_ALL_TC " OMP_NUM_THREADS=8 KMP_BLOCKTIME=1 " COMPACT, TC ":" IOMP, "tcmalloc/intel", ""},
    {W, "ni=2", ALL, "",
     INTEL_ALL_TC " OMP_NUM_THREADS=4 KMP_BLOCKTIME=1 " COMPACT " | " INTEL_ALL_TC
                  " OMP_NUM_THREADS=4 KMP_BLOCKTIME=1 " COMPACT,
     INTEL_ALL_TC " OMP_NUM_THREADS=4 KMP_BLOCKTIME=1 " COMPACT, TC ":" IOMP, "tcmalloc/intel", ""},
    {W, "logical", ALL, "", INTEL_ALL_TC " OMP_NUM_THREADS=16 KMP_BLOCKTIME=1 " COMPACT,
     INTEL_ALL_TC " OMP_NUM_THREADS=16 KMP_BLOCKTIME=1 " COMPACT, TC ":" IOMP, "tcmalloc/intel",
     ""},
    {W, "logical ni=2", ALL, "",
     INTEL_ALL_TC " OMP_NUM_THREADS=8 KMP_BLOCKTIME=1 " COMPACT " | " INTEL_ALL_TC
                  " OMP_NUM_THREADS=8 KMP_BLOCKTIME=1 " COMPACT,
     INTEL_ALL_TC " OMP_NUM_THREADS=8 KMP_BLOCKTIME=1 " COMPACT, TC ":" IOMP, "tcmalloc/intel", ""},
    {T, "ni=2", ALL, "",
     INTEL_ALL_TC " OMP_NUM_THREADS=1 KMP_BLOCKTIME=1 " COMPACT " | " INTEL_ALL_TC
                  " OMP_NUM_THREADS=1 KMP_BLOCKTIME=1 " COMPACT,
     INTEL_ALL_TC " OMP_NUM_THREADS=1 KMP_BLOCKTIME=1 " COMPACT, TC ":" IOMP, "tcmalloc/intel", ""},
    {T, "cores=1", ALL, "", INTEL_ALL_TC " OMP_NUM_THREADS=1 KMP_BLOCKTIME=1 " COMPACT,
     INTEL_ALL_TC " OMP_NUM_THREADS=1 KMP_BLOCKTIME=1 " COMPACT, TC ":" IOMP, "tcmalloc/intel", ""},
    /* threads differ: OMP_NUM_THREADS is not common */
    {W, "ni=3 nc=-1", "omp=default alloc=default " ALL, "",
     "OMP_NUM_THREADS=3 OMP_PROC_BIND=close OMP_PLACES=threads | "
     "OMP_NUM_THREADS=3 OMP_PROC_BIND=close OMP_PLACES=threads | "
     "OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads",
     "OMP_PROC_BIND=close OMP_PLACES=threads", "", "default/default", ""},
    /* explicit intel, and intel without CPU binding: an explicit proclist */
    {W, "ni=2", "omp=intel nobind alloc=default " ALL, "",
     "LD_PRELOAD=" IOMP " OMP_NUM_THREADS=4 KMP_BLOCKTIME=1 "
     "KMP_AFFINITY=granularity=fine,proclist=[0,1,2,3],explicit | LD_PRELOAD=" IOMP
     " OMP_NUM_THREADS=4 KMP_BLOCKTIME=1 KMP_AFFINITY=granularity=fine,proclist=[4,5,6,7],explicit",
     "LD_PRELOAD=" IOMP " OMP_NUM_THREADS=4 KMP_BLOCKTIME=1", IOMP, "default/intel", ""},
    /* without binding the proclist is given even when every CPU is used */
    {T, "ni=2", "nobind alloc=default " ALL, "",
     "LD_PRELOAD=" IOMP " OMP_NUM_THREADS=1 KMP_BLOCKTIME=1 "
     "KMP_AFFINITY=granularity=fine,proclist=[0],explicit | LD_PRELOAD=" IOMP
     " OMP_NUM_THREADS=1 KMP_BLOCKTIME=1 KMP_AFFINITY=granularity=fine,proclist=[1],explicit",
     "LD_PRELOAD=" IOMP " OMP_NUM_THREADS=1 KMP_BLOCKTIME=1", IOMP, "default/intel", ""},
    /* intel asked for and missing: a warning naming the package, GNU settings */
    {W, "", "omp=intel tc je", "",
     "LD_PRELOAD=" TC " OMP_NUM_THREADS=8 OMP_PROC_BIND=close OMP_PLACES=threads",
     "LD_PRELOAD=" TC " OMP_NUM_THREADS=8 OMP_PROC_BIND=close OMP_PLACES=threads", TC,
     "tcmalloc/default", "Intel OpenMP was asked for but not found (apt-get install libomp5)"},
    /* auto without the Intel runtime: GNU */
    {W, "ni=2", "tc", "",
     "LD_PRELOAD=" TC " OMP_NUM_THREADS=4 OMP_PROC_BIND=close OMP_PLACES=threads | LD_PRELOAD=" TC
     " OMP_NUM_THREADS=4 OMP_PROC_BIND=close OMP_PLACES=threads",
     "LD_PRELOAD=" TC " OMP_NUM_THREADS=4 OMP_PROC_BIND=close OMP_PLACES=threads", TC,
     "tcmalloc/default", ""},
    /* GNU without CPU binding: explicit places, one per CPU */
    {W, "nc=3", "omp=default nobind " ALL, "",
     "LD_PRELOAD=" TC " OMP_NUM_THREADS=3 OMP_PROC_BIND=close OMP_PLACES={0},{1},{2} | "
     "LD_PRELOAD=" TC " OMP_NUM_THREADS=3 OMP_PROC_BIND=close OMP_PLACES={3},{4},{5}",
     "LD_PRELOAD=" TC " OMP_NUM_THREADS=3 OMP_PROC_BIND=close", TC, "tcmalloc/default", ""},
    /* --disable-iomp wins over a runtime found */
    {T, "", "omp=default " ALL, "",
     "LD_PRELOAD=" TC " OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads",
     "LD_PRELOAD=" TC " OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads", TC,
     "tcmalloc/default", ""},
    /* allocators: auto order tcmalloc > jemalloc > default */
    {T, "", "omp=default je", "",
     "LD_PRELOAD=" JE " OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads " JE_CONF,
     "LD_PRELOAD=" JE " OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads " JE_CONF, JE,
     "jemalloc/default", ""},
    {T, "", "omp=default -", "", "OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads",
     "OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads", "", "default/default", ""},
    {T, "", "alloc=jemalloc " ALL, "",
     "LD_PRELOAD=" JE ":" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT " " JE_CONF,
     "LD_PRELOAD=" JE ":" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT " " JE_CONF,
     JE ":" IOMP, "jemalloc/intel", ""},
    {T, "", "alloc=default iomp tc", "",
     "LD_PRELOAD=" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "LD_PRELOAD=" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT, IOMP, "default/intel", ""},
    /* an allocator asked for and missing: a warning naming the package, the default */
    {T, "", "alloc=tcmalloc je iomp", "",
     "LD_PRELOAD=" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "LD_PRELOAD=" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT, IOMP, "default/intel",
     "tcmalloc was asked for but not found (apt-get install libgoogle-perftools4)"},
    {T, "", "alloc=jemalloc tc iomp", "",
     "LD_PRELOAD=" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "LD_PRELOAD=" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT, IOMP, "default/intel",
     "jemalloc was asked for but not found (apt-get install libjemalloc2): using the default"},
    {T, "", "alloc=jemalloc omp=intel -", "",
     "OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads",
     "OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads", "", "default/default",
     "jemalloc was asked for|Intel OpenMP was asked for"},
    /* existing non-empty values win, named in ONE warning; empty ones do not */
    {W, "ni=2", "omp=default alloc=default -", "OMP_NUM_THREADS=6;OMP_PLACES=cores;PATH=/bin",
     "OMP_PROC_BIND=close | OMP_PROC_BIND=close", "OMP_PROC_BIND=close", "", "default/default",
     "keeping OMP_NUM_THREADS=6, OMP_PLACES=cores from the environment"},
    {W, "ni=3 nc=-1", ALL, "OMP_NUM_THREADS=;KMP_BLOCKTIME=200;KMP_AFFINITY=",
     INTEL_ALL_TC " OMP_NUM_THREADS=3 " COMPACT " | " INTEL_ALL_TC " OMP_NUM_THREADS=3 " COMPACT
                  " | " INTEL_ALL_TC " OMP_NUM_THREADS=2 " COMPACT,
     INTEL_ALL_TC " " COMPACT, TC ":" IOMP, "tcmalloc/intel", "keeping KMP_BLOCKTIME=200 from"},
    {T, "", "omp=default je", "MALLOC_CONF=narenas:1",
     "LD_PRELOAD=" JE " OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads",
     "LD_PRELOAD=" JE " OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads", JE,
     "jemalloc/default", "keeping MALLOC_CONF=narenas:1 from the environment"},
    /* an existing value equal to pinfer's overrides nothing: no warning */
    {T, "ni=2", "omp=default alloc=default -", "OMP_NUM_THREADS=1;OMP_PROC_BIND=spread",
     "OMP_PLACES=threads | OMP_PLACES=threads", "OMP_PLACES=threads", "", "default/default",
     "keeping OMP_PROC_BIND=spread from"},
    /* LD_PRELOAD: existing entries that exist first, then allocator, then OpenMP */
    {T, "", ALL, "LD_PRELOAD=/opt/libfoo.so:/gone/libbar.so /opt/libbaz.so",
     "LD_PRELOAD=/opt/libfoo.so:/opt/libbaz.so:" TC ":" IOMP
     " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "LD_PRELOAD=/opt/libfoo.so:/opt/libbaz.so:" TC ":" IOMP
     " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "/opt/libfoo.so:/opt/libbaz.so:" TC ":" IOMP, "tcmalloc/intel",
     "LD_PRELOAD entry /gone/libbar.so does not exist: dropped"},
    /* never the same library twice */
    {T, "", ALL, "LD_PRELOAD=/opt/libfoo.so::/opt/libfoo.so:" TC ":" IOMP,
     "LD_PRELOAD=/opt/libfoo.so:" TC ":" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "LD_PRELOAD=/opt/libfoo.so:" TC ":" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "/opt/libfoo.so:" TC ":" IOMP, "tcmalloc/intel", ""},
    /* the user's order is kept, ours are not added again */
    {T, "", ALL, "LD_PRELOAD=" IOMP ":" TC,
     "LD_PRELOAD=" IOMP ":" TC " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "LD_PRELOAD=" IOMP ":" TC " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT, IOMP ":" TC,
     "tcmalloc/intel", ""},
    /* the same library elsewhere: kept, ours not added, no warning */
    {T, "", ALL, "LD_PRELOAD=/opt/lib/libtcmalloc.so.4",
     "LD_PRELOAD=/opt/lib/libtcmalloc.so.4:" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "LD_PRELOAD=/opt/lib/libtcmalloc.so.4:" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "/opt/lib/libtcmalloc.so.4:" IOMP, "tcmalloc/intel", ""},
    /* another allocator already preloaded: kept, ours not added, a warning;
       the settings follow what is really preloaded (jemalloc's MALLOC_CONF) */
    {T, "", ALL, "LD_PRELOAD=/opt/libjemalloc.so.2",
     "LD_PRELOAD=/opt/libjemalloc.so.2:" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT
     " " JE_CONF,
     "LD_PRELOAD=/opt/libjemalloc.so.2:" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT
     " " JE_CONF,
     "/opt/libjemalloc.so.2:" IOMP, "jemalloc/intel",
     "LD_PRELOAD already has /opt/libjemalloc.so.2: not adding " TC},
    {T, "", "alloc=jemalloc " ALL, "LD_PRELOAD=/opt/libtcmalloc_minimal.so.4",
     "LD_PRELOAD=/opt/libtcmalloc_minimal.so.4:" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "LD_PRELOAD=/opt/libtcmalloc_minimal.so.4:" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "/opt/libtcmalloc_minimal.so.4:" IOMP, "tcmalloc/intel",
     "LD_PRELOAD already has /opt/libtcmalloc_minimal.so.4: not adding " JE},
    /* another OpenMP runtime already preloaded: GNU's -> GNU settings */
    {T, "", ALL, "LD_PRELOAD=/usr/lib/libgomp.so.1",
     "LD_PRELOAD=/usr/lib/libgomp.so.1:" TC " OMP_NUM_THREADS=2 OMP_PROC_BIND=close "
     "OMP_PLACES=threads",
     "LD_PRELOAD=/usr/lib/libgomp.so.1:" TC " OMP_NUM_THREADS=2 OMP_PROC_BIND=close "
     "OMP_PLACES=threads",
     "/usr/lib/libgomp.so.1:" TC, "tcmalloc/default",
     "LD_PRELOAD already has /usr/lib/libgomp.so.1: not adding " IOMP},
    /* LLVM's libomp is Intel's runtime: KMP settings */
    {T, "", ALL, "LD_PRELOAD=/opt/libomp.so.5",
     "LD_PRELOAD=/opt/libomp.so.5:" TC " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "LD_PRELOAD=/opt/libomp.so.5:" TC " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT,
     "/opt/libomp.so.5:" TC, "tcmalloc/intel",
     "LD_PRELOAD already has /opt/libomp.so.5: not adding " IOMP},
    /* every entry gone and nothing to add: LD_PRELOAD is emptied, not left to fail */
    {T, "", "omp=default alloc=default -", "LD_PRELOAD=/gone/a.so",
     "LD_PRELOAD= OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads",
     "LD_PRELOAD= OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads", "", "default/default",
     "LD_PRELOAD entry /gone/a.so does not exist"},
    /* names without a slash are searched by the loader, $LIB is expanded by it:
       neither can be checked here, both are kept */
    /* a library found but unfit to preload (pf_library_check): left out with a
       warning, as if not found; auto falls back to the next allocator */
    {T, "", "tcbad je iomp", "",
     "LD_PRELOAD=" JE ":" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT " " JE_CONF,
     "LD_PRELOAD=" JE ":" IOMP " OMP_NUM_THREADS=2 KMP_BLOCKTIME=1 " COMPACT " " JE_CONF,
     JE ":" IOMP, "jemalloc/intel", TC_BAD UNFIT},
    {T, "", "tc iompbad", "",
     "LD_PRELOAD=" TC " OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads",
     "LD_PRELOAD=" TC " OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads", TC,
     "tcmalloc/default", IOMP_BAD UNFIT},
    {T, "", "alloc=jemalloc omp=intel tc jebad iompbad", "",
     "OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads",
     "OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads", "", "default/default",
     JE_BAD UNFIT "|" IOMP_BAD UNFIT "|jemalloc was asked for|Intel OpenMP was asked for"},
    /* the environment's own LD_PRELOAD entries are the user's choice: not checked */
    {T, "", "omp=default tc", "LD_PRELOAD=/bad/libmine.so",
     "LD_PRELOAD=/bad/libmine.so:" TC " OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads",
     "LD_PRELOAD=/bad/libmine.so:" TC " OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads",
     "/bad/libmine.so:" TC, "tcmalloc/default", ""},
    {T, "", "omp=default tc", "LD_PRELOAD=libfoo.so.1 /usr/$LIB/libbar.so",
     "LD_PRELOAD=libfoo.so.1:/usr/$LIB/libbar.so:" TC
     " OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads",
     "LD_PRELOAD=libfoo.so.1:/usr/$LIB/libbar.so:" TC
     " OMP_NUM_THREADS=2 OMP_PROC_BIND=close OMP_PLACES=threads",
     "libfoo.so.1:/usr/$LIB/libbar.so:" TC, "tcmalloc/default", ""},
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

static bool exists_unless_gone(const char *path, void *ctx)
{
    if (ctx)
        ++*(int *)ctx;
    return path[0] == '/' && !strstr(path, "gone") && !strchr(path, '$');
}

static int fit_unless_bad(const char *path, void *ctx, char **why)
{
    (void)ctx;
    if (!strstr(path, "bad"))
        return 0;
    *why = malloc(strlen(path) + 64);
    assert_non_null(*why);
    snprintf(*why, strlen(path) + 64, "%s is writable by everyone (mode 0666)", path);
    return -EPERM;
}

static void env_options_of(const char *text, pf_env_options *o)
{
    static const char *const allocators[] = {"auto", "default", "tcmalloc", "jemalloc", NULL};
    static const char *const omps[] = {"auto", "default", "intel", NULL};
    pf_env_options_init(o);
    o->file_exists = exists_unless_gone;
    o->library_check = fit_unless_bad;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        if (!strncmp(tok, "alloc=", 6)) {
            for (int k = 0; allocators[k]; k++)
                if (!strcmp(tok + 6, allocators[k]))
                    o->allocator = (pf_allocator)k;
        } else if (!strncmp(tok, "omp=", 4)) {
            for (int k = 0; omps[k]; k++)
                if (!strcmp(tok + 4, omps[k]))
                    o->omp = (pf_omp_runtime)k;
        } else if (!strcmp(tok, "nobind")) {
            o->cpu_binding = false;
        } else if (!strcmp(tok, "tc")) {
            o->libraries[PF_LIBRARY_TCMALLOC] = TC;
        } else if (!strcmp(tok, "je")) {
            o->libraries[PF_LIBRARY_JEMALLOC] = JE;
        } else if (!strcmp(tok, "iomp")) {
            o->libraries[PF_LIBRARY_IOMP] = IOMP;
        } else if (!strcmp(tok, "tcbad")) {
            o->libraries[PF_LIBRARY_TCMALLOC] = TC_BAD;
        } else if (!strcmp(tok, "jebad")) {
            o->libraries[PF_LIBRARY_JEMALLOC] = JE_BAD;
        } else if (!strcmp(tok, "iompbad")) {
            o->libraries[PF_LIBRARY_IOMP] = IOMP_BAD;
        } else if (strcmp(tok, "-") != 0) {
            fail_msg("unknown env option '%s'", tok);
        }
    }
}

/* Split "A=1;B=2" into a NULL-terminated vector (free with pf_strv_free). */
static char **environ_of(const char *text)
{
    char **v = calloc(strlen(text) + 2, sizeof *v);
    assert_non_null(v);
    char *copy = strdup(text);
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ";", &save); tok;
         tok = strtok_r(NULL, ";", &save))
        v[n++] = strdup(tok);
    free(copy);
    return v;
}

/* Append "NAME=value" items separated by sep to a growing string. */
static void append(char **s, size_t *len, const char *sep, const char *name, const char *value)
{
    size_t add = strlen(sep) + strlen(name) + strlen(value) + 2;
    *s = realloc(*s, *len + add);
    assert_non_null(*s);
    *len += (size_t)snprintf(*s + *len, add, "%s%s=%s", *len ? sep : "", name, value);
}

/* The variables as "A=1 B=2"; PINFER_* (which instance) are checked by test_instance_index. */
static char *render_vars(const pf_env_var *vars, size_t n)
{
    char *s = strdup("");
    size_t len = 0;
    for (size_t k = 0; k < n; k++)
        if (strncmp(vars[k].name, "PINFER_", 7) != 0)
            append(&s, &len, " ", vars[k].name, vars[k].value);
    return s;
}

static char *render_all(const pf_launch_env *env)
{
    char *s = strdup("");
    size_t len = 0;
    for (size_t i = 0; i < env->ninstances; i++) {
        char *one = render_vars(env->vars[i], env->nvars[i]);
        size_t add = strlen(one) + 4;
        s = realloc(s, len + add);
        assert_non_null(s);
        len += (size_t)snprintf(s + len, add, "%s%s", i ? " | " : "", one);
        free(one);
    }
    return s;
}

static char *render_preload(const pf_launch_env *env)
{
    char *s = strdup("");
    size_t len = 0;
    for (size_t k = 0; k < env->npreload; k++) {
        size_t add = strlen(env->preload[k]) + 2;
        s = realloc(s, len + add);
        assert_non_null(s);
        len += (size_t)snprintf(s + len, add, "%s%s", k ? ":" : "", env->preload[k]);
    }
    return s;
}

static const char *allocator_name(pf_allocator a)
{
    static const char *const names[] = {"auto", "default", "tcmalloc", "jemalloc"};
    return (unsigned)a < 4 ? names[a] : "?";
}

static const char *omp_name(pf_omp_runtime r)
{
    static const char *const names[] = {"auto", "default", "intel"};
    return (unsigned)r < 3 ? names[r] : "?";
}

/* Do the warnings match the '|'-separated substrings, one each, in order? */
static bool warnings_match(const pf_launch_env *env, const char *expect)
{
    char *copy = strdup(expect);
    size_t n = 0;
    bool ok = true;
    for (char *save = NULL, *tok = strtok_r(copy, "|", &save); tok;
         tok = strtok_r(NULL, "|", &save), n++)
        ok = ok && n < env->nwarnings && strstr(env->warnings[n], tok) != NULL;
    free(copy);
    return ok && n == env->nwarnings;
}

static int check_field(const env_case *c, const char *what, const char *want, const char *got)
{
    if (strcmp(want, got) == 0)
        return 0;
    print_error("%s [%s] [%s] [%s] %s:\n  expected %s\n  got      %s\n", c->fixture, c->plan,
                c->options, c->environ, what, want, got);
    return 1;
}

static int run_case(const env_case *c)
{
    pf_topology *t = load_fixture(c->fixture);
    pf_plan *plan = plan_from_text(t, c->plan);
    pf_env_options o;
    env_options_of(c->options, &o);
    char **envp = environ_of(c->environ);
    o.environ = envp;
    pf_launch_env *env = NULL;
    char *why = NULL;
    int rc = pf_env_compute(plan, t, &o, &env, &why);
    if (rc != 0)
        fail_msg("%s [%s] [%s]: error %d %s", c->fixture, c->plan, c->options, rc, why);
    int failures = 0;
    char *vars = render_all(env), *common = render_vars(env->common, env->ncommon);
    char *preload = render_preload(env), effect[64];
    snprintf(effect, sizeof effect, "%s/%s", allocator_name(env->allocator), omp_name(env->omp));
    failures += check_field(c, "vars", c->vars, vars);
    failures += check_field(c, "common", c->common, common);
    failures += check_field(c, "preload", c->preload, preload);
    failures += check_field(c, "in effect", c->effect, effect);
    if (!warnings_match(env, c->warnings)) {
        print_error("%s [%s] [%s] [%s]: expected warnings '%s', got %zu:\n", c->fixture, c->plan,
                    c->options, c->environ, c->warnings, env->nwarnings);
        for (size_t k = 0; k < env->nwarnings; k++)
            print_error("    %s\n", env->warnings[k]);
        failures++;
    }
    assert_int_equal(env->ninstances, plan->ninstances);
    free(vars);
    free(common);
    free(preload);
    pf_launch_env_free(env);
    pf_strv_free(envp);
    pf_plan_free(plan);
    pf_topology_free(t);
    return failures;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */

static void test_env_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++)
        failures += run_case(&CASES[i]);
    assert_int_equal(failures, 0);
}

/* The callback is what decides, with its context; none means access(). */
static void test_file_exists_callback(void **state)
{
    (void)state;
    pf_topology *t = load_fixture(T);
    pf_plan *plan = plan_from_text(t, "");
    pf_env_options o;
    env_options_of("-", &o);
    int calls = 0;
    o.ctx = &calls;
    char *envp[] = {"LD_PRELOAD=/a/libx.so:/b/liby.so", NULL};
    o.environ = envp;
    pf_launch_env *env = NULL;
    assert_int_equal(pf_env_compute(plan, t, &o, &env, NULL), 0);
    assert_int_equal(calls, 2);
    assert_int_equal(env->npreload, 2);
    pf_launch_env_free(env);
    /* the default: access(2); this test's binary exists, /nonexistent does not */
    o.file_exists = NULL;
    o.ctx = NULL;
    char *real[] = {"LD_PRELOAD=/nonexistent/libx.so:" PF_SOURCE_DIR "/Makefile", NULL};
    o.environ = real;
    assert_int_equal(pf_env_compute(plan, t, &o, &env, NULL), 0);
    assert_int_equal(env->npreload, 1);
    assert_string_equal(env->preload[0], PF_SOURCE_DIR "/Makefile");
    assert_int_equal(env->nwarnings, 1);
    assert_non_null(strstr(env->warnings[0], "/nonexistent/libx.so"));
    pf_launch_env_free(env);
    pf_plan_free(plan);
    pf_topology_free(t);
}

/*
 * Without a library_check callback, pf_library_check() decides: the
 * fixture's ELF shared object is preloaded, a text file is not (with the
 * reason), and the environment's own LD_PRELOAD entry is not asked about.
 */
static void test_library_check_default(void **state)
{
    (void)state;
    pf_topology *t = load_fixture(T);
    pf_plan *plan = plan_from_text(t, "");
    pf_env_options o;
    env_options_of("omp=intel", &o);
    o.library_check = NULL;
    char tc[4096];
    snprintf(tc, sizeof tc, "%s", fixture("libtree/lib/libtcmalloc.so.4"));
    o.libraries[PF_LIBRARY_TCMALLOC] = tc;
    o.libraries[PF_LIBRARY_IOMP] = PF_SOURCE_DIR "/Makefile"; /* text */
    char *envp[] = {"LD_PRELOAD=" PF_SOURCE_DIR "/README.md", NULL};
    o.environ = envp;
    pf_launch_env *env = NULL;
    assert_int_equal(pf_env_compute(plan, t, &o, &env, NULL), 0);
    assert_int_equal(env->npreload, 2);
    assert_string_equal(env->preload[0], PF_SOURCE_DIR "/README.md");
    assert_string_equal(env->preload[1], tc);
    assert_int_equal(env->omp, PF_OMP_DEFAULT);
    assert_int_equal(env->nwarnings, 2);
    assert_string_equal(env->warnings[0],
                        PF_SOURCE_DIR "/Makefile is not an ELF file: not preloaded");
    assert_non_null(strstr(env->warnings[1], "Intel OpenMP was asked for"));
    pf_launch_env_free(env);
    pf_plan_free(plan);
    pf_topology_free(t);
}

/* No environment at all is an empty one. */
static void test_null_environ(void **state)
{
    (void)state;
    pf_topology *t = load_fixture(T);
    pf_plan *plan = plan_from_text(t, "ni=2");
    pf_env_options o;
    env_options_of(ALL, &o);
    pf_launch_env *env = NULL;
    assert_int_equal(pf_env_compute(plan, t, &o, &env, NULL), 0);
    assert_int_equal(env->nwarnings, 0);
    assert_int_equal(env->npreload, 2);
    assert_int_equal(env->allocator, PF_ALLOCATOR_TCMALLOC);
    assert_int_equal(env->omp, PF_OMP_INTEL);
    pf_launch_env_free(env);
    pf_plan_free(plan);
    pf_topology_free(t);
}

static bool strv_has(char **v, const char *item)
{
    for (size_t i = 0; v[i]; i++)
        if (strcmp(v[i], item) == 0)
            return true;
    return false;
}

static size_t strv_len(char **v)
{
    size_t n = 0;
    while (v[n])
        n++;
    return n;
}

/* pf_launch_env_apply: ours replace, theirs stay, nothing is lost or doubled. */
/*
 * Each instance learns its index in the full plan and the plan's size, also
 * when --rank picks one instance, and whatever an outer launch left in the
 * environment (those values describe another plan).
 */
static void test_instance_index(void **state)
{
    (void)state;
    static const struct {
        const char *plan;
        const char *environ;
        const char *expect; /* per instance, " | " between */
    } rows[] = {
        {"ni=2", "",
         "PINFER_INSTANCE=0 PINFER_NINSTANCES=2 | PINFER_INSTANCE=1 PINFER_NINSTANCES=2"},
        {"ni=4 rank=2", "", "PINFER_INSTANCE=2 PINFER_NINSTANCES=4"},
        {"nc=1 idx=1,3", "",
         "PINFER_INSTANCE=1 PINFER_NINSTANCES=8 | PINFER_INSTANCE=3 PINFER_NINSTANCES=8"},
        {"", "PINFER_INSTANCE=5;PINFER_NINSTANCES=9", "PINFER_INSTANCE=0 PINFER_NINSTANCES=1"},
    };
    pf_topology *t = load_fixture(W);
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
        pf_plan *plan = plan_from_text(t, rows[r].plan);
        pf_env_options o;
        env_options_of("omp=default alloc=default -", &o);
        char **envv = environ_of(rows[r].environ);
        o.environ = envv;
        pf_launch_env *env = NULL;
        assert_int_equal(pf_env_compute(plan, t, &o, &env, NULL), 0);
        char *got = strdup("");
        size_t len = 0;
        for (size_t i = 0; i < env->ninstances; i++)
            for (size_t k = 0; k < env->nvars[i]; k++)
                if (strncmp(env->vars[i][k].name, "PINFER_", 7) == 0)
                    append(&got, &len,
                           k && strncmp(env->vars[i][k - 1].name, "PINFER_", 7) == 0 ? " " : " | ",
                           env->vars[i][k].name, env->vars[i][k].value);
        if (strcmp(got, rows[r].expect) != 0)
            fail_msg("row %zu (%s): got '%s', want '%s'", r, rows[r].plan, got, rows[r].expect);
        assert_int_equal(env->nwarnings, 0); /* not "keeping PINFER_INSTANCE" */
        free(got);
        pf_launch_env_free(env);
        pf_strv_free(envv);
        pf_plan_free(plan);
    }
    pf_topology_free(t);
}

static void test_apply(void **state)
{
    (void)state;
    pf_topology *t = load_fixture(W);
    pf_plan *plan = plan_from_text(t, "ni=2");
    pf_env_options o;
    env_options_of("omp=default tc", &o);
    char *base[] = {"PATH=/bin",
                    "OMP_NUM_THREADS=",
                    "LD_PRELOAD=/opt/libfoo.so:/gone/x.so",
                    "OMP_PROC_BIND=spread",
                    "OMP_NUM_THREADS_EXTRA=1",
                    "OMP_PLACE=x",
                    "NOEQUALS",
                    "EMPTY=",
                    NULL};
    o.environ = base;
    pf_launch_env *env = NULL;
    assert_int_equal(pf_env_compute(plan, t, &o, &env, NULL), 0);
    char **out = NULL;
    assert_int_equal(pf_launch_env_apply(env, 1, base, &out), 0);
    assert_true(strv_has(out, "PATH=/bin"));
    assert_true(strv_has(out, "OMP_NUM_THREADS=4"));
    assert_false(strv_has(out, "OMP_NUM_THREADS="));
    assert_true(strv_has(out, "LD_PRELOAD=/opt/libfoo.so:" TC));
    assert_true(strv_has(out, "OMP_PROC_BIND=spread")); /* theirs won */
    assert_true(strv_has(out, "OMP_PLACES=threads"));
    assert_true(strv_has(out, "OMP_NUM_THREADS_EXTRA=1"));
    assert_true(strv_has(out, "OMP_PLACE=x"));
    assert_true(strv_has(out, "NOEQUALS"));
    assert_true(strv_has(out, "EMPTY="));
    /* base 8 - 2 replaced + 5 ours (LD_PRELOAD, OMP_NUM_THREADS, OMP_PLACES, PINFER_INSTANCE,
       PINFER_NINSTANCES) */
    assert_int_equal(strv_len(out), 11);
    assert_true(strv_has(out, "PINFER_INSTANCE=1"));
    assert_true(strv_has(out, "PINFER_NINSTANCES=2"));
    pf_strv_free(out);

    /* no base: exactly ours */
    assert_int_equal(pf_launch_env_apply(env, 0, NULL, &out), 0);
    assert_int_equal(strv_len(out), env->nvars[0]);
    assert_true(strv_has(out, "OMP_NUM_THREADS=4"));
    pf_strv_free(out);

    /* a variable twice in the base is replaced once, not kept once */
    char *twice[] = {"OMP_NUM_THREADS=", "A=1", "OMP_NUM_THREADS=", NULL};
    assert_int_equal(pf_launch_env_apply(env, 0, twice, &out), 0);
    assert_true(strv_has(out, "A=1"));
    assert_false(strv_has(out, "OMP_NUM_THREADS="));
    assert_int_equal(strv_len(out), 1 + env->nvars[0]);
    pf_strv_free(out);

    /* invalid arguments */
    out = NULL;
    assert_int_equal(pf_launch_env_apply(NULL, 0, base, &out), -EINVAL);
    assert_int_equal(pf_launch_env_apply(env, 2, base, &out), -EINVAL);
    assert_int_equal(pf_launch_env_apply(env, 0, base, NULL), -EINVAL);
    assert_null(out);
    pf_launch_env_free(env);
    pf_plan_free(plan);
    pf_topology_free(t);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    pf_topology *t = load_fixture(T);
    pf_plan *plan = plan_from_text(t, "");
    pf_env_options o;
    env_options_of(ALL, &o);
    pf_launch_env *env = NULL;
    char *why = NULL;
    assert_int_equal(pf_env_compute(NULL, t, &o, &env, &why), -EINVAL);
    assert_non_null(why);
    free(why);
    assert_int_equal(pf_env_compute(plan, NULL, &o, &env, NULL), -EINVAL);
    assert_int_equal(pf_env_compute(plan, t, NULL, &env, NULL), -EINVAL);
    assert_int_equal(pf_env_compute(plan, t, &o, NULL, NULL), -EINVAL);
    o.allocator = (pf_allocator)42;
    assert_int_equal(pf_env_compute(plan, t, &o, &env, NULL), -EINVAL);
    env_options_of(ALL, &o);
    o.omp = (pf_omp_runtime)-1;
    assert_int_equal(pf_env_compute(plan, t, &o, &env, NULL), -EINVAL);
    assert_null(env);
    pf_launch_env_free(NULL);
    pf_strv_free(NULL);
    pf_plan_free(plan);
    pf_topology_free(t);
}

/* Defaults of the options. */
static void test_options_init(void **state)
{
    (void)state;
    pf_env_options o;
    memset(&o, 0xff, sizeof o);
    pf_env_options_init(&o);
    assert_int_equal(o.allocator, PF_ALLOCATOR_AUTO);
    assert_int_equal(o.omp, PF_OMP_AUTO);
    assert_true(o.cpu_binding);
    assert_null(o.environ);
    assert_null(o.file_exists);
    assert_null(o.library_check);
    for (int lib = 0; lib < PF_LIBRARY_COUNT; lib++)
        assert_null(o.libraries[lib]);
}

int main(void)
{
    /* one test a line, not in columns */
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_table),
        cmocka_unit_test(test_file_exists_callback),
        cmocka_unit_test(test_library_check_default),
        cmocka_unit_test(test_null_environ),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_instance_index),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_options_init),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
