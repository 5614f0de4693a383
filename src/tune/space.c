/*
 * space.c - pinfer tune's default search space and what a configuration
 * means: its canonical form, its one-line description, and the `pinfer run`
 * options and environment that realise it.
 *
 * The space is built from the topology alone (and the libraries found), so
 * it is a pure function and every machine shape is a test row.  The split
 * knob is the one that matters most and has the most values:
 *
 *   P = the usable physical cores: distinct (socket, core_first) among the
 *       allowed CPUs, efficiency cores left out (pinfer run leaves them out
 *       too unless asked);
 *   C = every divisor of P (N = P / C instances, no core idle) and every
 *       power of two up to P (N = floor(P / C): a power-of-two instance is
 *       often what a kernel library tiles best, at the cost of idle cores);
 *   values "NxC", ordered by C ascending, the default "1xP" (pinfer run with
 *   no option).
 *
 * KMP_BLOCKTIME only means something to Intel OpenMP, so a configuration
 * with another runtime keeps it at its default: that is the canonical form,
 * and the space's size counts canonical configurations only.
 */
#include "tune/tune.h"
#include "base/util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Building                                                                  */

typedef struct builder {
    pf_tune_space *space;
    int rc;
} builder;

/* Append a value to a knob (the text is copied); remembers -ENOMEM. */
static void add(builder *b, pf_tune_knob knob, const char *text)
{
    if (b->rc)
        return;
    pf_tune_space *s = b->space;
    char **grown = realloc(s->values[knob], (s->nvalues[knob] + 1) * sizeof *grown);
    if (!grown) {
        b->rc = -ENOMEM;
        return;
    }
    s->values[knob] = grown;
    if (!(grown[s->nvalues[knob]] = strdup(text))) {
        b->rc = -ENOMEM;
        return;
    }
    s->nvalues[knob]++;
}

static void add_long(builder *b, pf_tune_knob knob, long v)
{
    char text[32];
    snprintf(text, sizeof text, "%ld", v);
    add(b, knob, text);
}

/* The index of a value's text in a knob, or `fallback`. */
static size_t index_of(const pf_tune_space *s, pf_tune_knob knob, const char *text, size_t fallback)
{
    for (size_t i = 0; i < s->nvalues[knob]; i++)
        if (strcmp(s->values[knob][i], text) == 0)
            return i;
    return fallback;
}

typedef struct core_key {
    int socket, core_first, node;
    bool smt; /* a second allowed CPU of this core was seen */
} core_key;

/*
 * The usable physical cores, one entry per distinct (socket, core_first),
 * in CPU order.  A core counts when one of its CPUs is allowed and it is not
 * an efficiency core.
 */
static int usable_cores(const pf_topology *topo, core_key **out, size_t *count)
{
    size_t ncpus;
    const pf_cpu_info *cpus = pf_topology_cpus(topo, &ncpus);
    core_key *cores = calloc(ncpus ? ncpus : 1, sizeof *cores);
    if (!cores)
        return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < ncpus; i++) {
        const pf_cpu_info *c = &cpus[i];
        if (!c->allowed || c->efficiency)
            continue;
        size_t j = 0;
        while (j < n && !(cores[j].socket == c->socket && cores[j].core_first == c->core_first))
            j++;
        if (j < n) {
            cores[j].smt = true;
            continue;
        }
        cores[n++] = (core_key){c->socket, c->core_first, c->node, false};
    }
    *out = cores;
    *count = n;
    return 0;
}

static void add_splits(builder *b, long p)
{
    /* C ascending: walk 1..P and keep divisors and powers of two. */
    for (long c = 1; c <= p; c++) {
        bool pow2 = (c & (c - 1)) == 0;
        if (p % c != 0 && !pow2)
            continue;
        char text[48];
        snprintf(text, sizeof text, "%ldx%ld", p / c, c);
        add(b, PF_TUNE_SPLIT, text);
    }
}

int pf_tune_space_default(const pf_topology *topo, const pf_tune_space_options *opts,
                          pf_tune_space **out, char **why)
{
    static const pf_tune_space_options none = {0};
    if (!opts)
        opts = &none;
    *out = NULL;
    core_key *cores;
    size_t ncores;
    int rc = usable_cores(topo, &cores, &ncores);
    if (rc)
        return rc;
    if (ncores == 0) {
        free(cores);
        return pf__fail(why, -EINVAL, "no usable core to tune on (every CPU is excluded)");
    }

    builder b = {calloc(1, sizeof *b.space), 0};
    if (!b.space) {
        free(cores);
        return -ENOMEM;
    }
    pf_tune_space *s = b.space;

    add_splits(&b, (long)ncores);
    s->defaults[PF_TUNE_SPLIT] = s->nvalues[PF_TUNE_SPLIT] ? s->nvalues[PF_TUNE_SPLIT] - 1 : 0;

    bool smt = false;
    pf__ivec nodes = {0};
    for (size_t i = 0; i < ncores; i++) {
        smt |= cores[i].smt;
        if (pf__ivec_push(&nodes, cores[i].node))
            b.rc = -ENOMEM;
    }
    pf__ivec_sort_unique(&nodes);
    free(cores);

    add(&b, PF_TUNE_LOGICAL, "off");
    if (smt)
        add(&b, PF_TUNE_LOGICAL, "on");

    add(&b, PF_TUNE_NODES, "all");
    if (nodes.len > 1)
        for (size_t i = 0; i < nodes.len; i++)
            add_long(&b, PF_TUNE_NODES, nodes.v[i]);
    add(&b, PF_TUNE_NUMA, "bind");
    if (nodes.len > 1)
        add(&b, PF_TUNE_NUMA, "off");
    pf__ivec_free(&nodes);

    add(&b, PF_TUNE_ALLOCATOR, "default");
    if (opts->have_tcmalloc)
        add(&b, PF_TUNE_ALLOCATOR, "tcmalloc");
    if (opts->have_jemalloc)
        add(&b, PF_TUNE_ALLOCATOR, "jemalloc");

    add(&b, PF_TUNE_OMP, "default");
    if (opts->have_iomp) {
        add(&b, PF_TUNE_OMP, "intel");
        add(&b, PF_TUNE_BLOCKTIME, "0");
        add(&b, PF_TUNE_BLOCKTIME, "1");
        add(&b, PF_TUNE_BLOCKTIME, "200");
    } else {
        add(&b, PF_TUNE_BLOCKTIME, "1");
    }

    if (opts->serve) {
        static const long batch[] = {1, 2, 4, 8, 16}, delay[] = {5, 20, 100};
        for (size_t i = 0; i < sizeof batch / sizeof *batch; i++)
            add_long(&b, PF_TUNE_BATCH_SIZE, batch[i]);
        for (size_t i = 0; i < sizeof delay / sizeof *delay; i++)
            add_long(&b, PF_TUNE_BATCH_DELAY, delay[i]);
    } else {
        add(&b, PF_TUNE_BATCH_SIZE, "1");
        add(&b, PF_TUNE_BATCH_DELAY, "100");
    }
    if (b.rc) {
        pf_tune_space_free(s);
        return b.rc;
    }

    /* What `pinfer run` picks with no option (src/plan/env.c). */
    s->defaults[PF_TUNE_ALLOCATOR] =
        index_of(s, PF_TUNE_ALLOCATOR, "tcmalloc", index_of(s, PF_TUNE_ALLOCATOR, "jemalloc", 0));
    s->defaults[PF_TUNE_OMP] = index_of(s, PF_TUNE_OMP, "intel", 0);
    s->defaults[PF_TUNE_BLOCKTIME] = index_of(s, PF_TUNE_BLOCKTIME, "1", 0);
    s->defaults[PF_TUNE_BATCH_SIZE] = index_of(s, PF_TUNE_BATCH_SIZE, "1", 0);
    s->defaults[PF_TUNE_BATCH_DELAY] = index_of(s, PF_TUNE_BATCH_DELAY, "100", 0);
    *out = s;
    return 0;
}

void pf_tune_space_free(pf_tune_space *space)
{
    if (!space)
        return;
    for (int k = 0; k < PF_TUNE_NKNOBS; k++) {
        for (size_t i = 0; i < space->nvalues[k]; i++)
            free(space->values[k][i]);
        free(space->values[k]);
    }
    free(space);
}

/* ------------------------------------------------------------------------ */
/* Configurations                                                            */

bool pf__tune_is_intel(const pf_tune_space *space, size_t omp)
{
    return omp < space->nvalues[PF_TUNE_OMP] &&
           strcmp(space->values[PF_TUNE_OMP][omp], "intel") == 0;
}

bool pf__tune_is_canonical(const pf_tune_space *space, const pf_tune_config *config)
{
    return pf__tune_is_intel(space, config->v[PF_TUNE_OMP]) ||
           config->v[PF_TUNE_BLOCKTIME] == space->defaults[PF_TUNE_BLOCKTIME];
}

size_t pf_tune_space_size(const pf_tune_space *space)
{
    /* (the other knobs) x (non-Intel runtimes + Intel runtimes x blocktimes) */
    size_t intel = 0, other = 0;
    for (size_t i = 0; i < space->nvalues[PF_TUNE_OMP]; i++)
        pf__tune_is_intel(space, i) ? intel++ : other++;
    size_t n = other + intel * space->nvalues[PF_TUNE_BLOCKTIME];
    for (int k = 0; k < PF_TUNE_NKNOBS; k++) {
        if (k == PF_TUNE_OMP || k == PF_TUNE_BLOCKTIME)
            continue;
        size_t m = space->nvalues[k];
        if (m && n > SIZE_MAX / m)
            return SIZE_MAX;
        n *= m;
    }
    return n;
}

void pf_tune_space_default_config(const pf_tune_space *space, pf_tune_config *config)
{
    for (int k = 0; k < PF_TUNE_NKNOBS; k++)
        config->v[k] = space->defaults[k];
}

void pf_tune_config_canonical(const pf_tune_space *space, pf_tune_config *config)
{
    if (!pf__tune_is_intel(space, config->v[PF_TUNE_OMP]))
        config->v[PF_TUNE_BLOCKTIME] = space->defaults[PF_TUNE_BLOCKTIME];
}

bool pf_tune_config_equal(const pf_tune_config *a, const pf_tune_config *b)
{
    for (int k = 0; k < PF_TUNE_NKNOBS; k++)
        if (a->v[k] != b->v[k])
            return false;
    return true;
}

const char *pf_tune_config_value(const pf_tune_space *space, const pf_tune_config *config,
                                 pf_tune_knob knob)
{
    if ((unsigned)knob >= PF_TUNE_NKNOBS || config->v[knob] >= space->nvalues[knob])
        return NULL;
    return space->values[knob][config->v[knob]];
}

char *pf_tune_config_describe(const pf_tune_space *space, const pf_tune_config *config)
{
    pf__buf b = {0};
    for (int k = 0; k < PF_TUNE_NKNOBS; k++) {
        const char *v = pf_tune_config_value(space, config, (pf_tune_knob)k);
        if (space->nvalues[k] < 2 || !v)
            continue;
        if (k == PF_TUNE_BLOCKTIME && !pf__tune_is_intel(space, config->v[PF_TUNE_OMP]))
            continue;
        if (b.len)
            pf__buf_puts(&b, " ");
        switch (k) {
        case PF_TUNE_LOGICAL: pf__buf_printf(&b, "logical %s", v); break;
        case PF_TUNE_NODES:
            pf__buf_printf(&b, strcmp(v, "all") == 0 ? "nodes %s" : "node %s", v);
            break;
        case PF_TUNE_NUMA: pf__buf_printf(&b, "numa %s", v); break;
        /* "default default" would say nothing: name what is the default. */
        case PF_TUNE_ALLOCATOR:
            pf__buf_puts(&b, strcmp(v, "default") == 0 ? "default-malloc" : v);
            break;
        case PF_TUNE_OMP: pf__buf_puts(&b, strcmp(v, "default") == 0 ? "default-omp" : v); break;
        case PF_TUNE_BLOCKTIME: pf__buf_printf(&b, "KMP_BLOCKTIME=%s", v); break;
        case PF_TUNE_BATCH_SIZE: pf__buf_printf(&b, "batch %s", v); break;
        case PF_TUNE_BATCH_DELAY: pf__buf_printf(&b, "delay %s", v); break;
        default: pf__buf_puts(&b, v); break;
        }
    }
    if (!b.len)
        pf__buf_puts(&b, "default");
    char *out = NULL;
    return pf__buf_take(&b, &out) == 0 ? out : NULL;
}

int pf__tune_split_parse(const char *text, long *n, long *c)
{
    const char *x = strchr(text, 'x');
    if (!x || pf__parse_int(text, (size_t)(x - text), 1, 1L << 30, n) ||
        pf__parse_int(x + 1, strlen(x + 1), 1, 1L << 30, c))
        return -EINVAL;
    return 0;
}

/* A NULL-terminated array that pf_strv_free() frees; remembers -ENOMEM. */
typedef struct strv {
    char **v;
    size_t n;
    int rc;
} strv;

static void strv_add(strv *s, char *word)
{
    if (!word)
        s->rc = -ENOMEM;
    if (s->rc) {
        free(word);
        return;
    }
    char **grown = realloc(s->v, (s->n + 2) * sizeof *grown);
    if (!grown) {
        free(word);
        s->rc = -ENOMEM;
        return;
    }
    s->v = grown;
    s->v[s->n++] = word;
    s->v[s->n] = NULL;
}

/*
 * The split with logical cores on: N instances, each the same share of
 * every usable CPU (`--ninstances N` alone), so that an instance holds whole
 * cores with their siblings.  `--ncores-per-instance` counts CPUs, not
 * cores, once siblings are candidates, and the args see no topology to
 * scale C by the threads per core.
 */
int pf_tune_config_args(const pf_tune_space *space, const pf_tune_config *config, char ***args,
                        char ***env)
{
    strv a = {0}, e = {0};
    *args = NULL;
    if (env)
        *env = NULL;
    const char *split = pf_tune_config_value(space, config, PF_TUNE_SPLIT);
    const char *logical = pf_tune_config_value(space, config, PF_TUNE_LOGICAL);
    const char *nodes = pf_tune_config_value(space, config, PF_TUNE_NODES);
    const char *numa = pf_tune_config_value(space, config, PF_TUNE_NUMA);
    const char *alloc = pf_tune_config_value(space, config, PF_TUNE_ALLOCATOR);
    const char *omp = pf_tune_config_value(space, config, PF_TUNE_OMP);
    const char *bt = pf_tune_config_value(space, config, PF_TUNE_BLOCKTIME);
    bool on = logical && strcmp(logical, "on") == 0;
    long n, c;

    if (split && pf__tune_split_parse(split, &n, &c) == 0) {
        strv_add(&a, strdup("--ninstances"));
        strv_add(&a, pf__strdupf("%ld", n));
        if (!on) {
            strv_add(&a, strdup("--ncores-per-instance"));
            strv_add(&a, pf__strdupf("%ld", c));
        }
    }
    if (on)
        strv_add(&a, strdup("--use-logical-cores"));
    if (nodes && strcmp(nodes, "all") != 0) {
        strv_add(&a, strdup("--node-id"));
        strv_add(&a, strdup(nodes));
    }
    if (numa && strcmp(numa, "off") == 0)
        strv_add(&a, strdup("--disable-numactl"));
    if (alloc) {
        strv_add(&a, strdup("--memory-allocator"));
        strv_add(&a, strdup(alloc));
    }
    if (omp) {
        strv_add(&a, strdup("--omp-runtime"));
        strv_add(&a, strdup(omp));
    }
    if (!a.v && !a.rc && !(a.v = calloc(1, sizeof *a.v)))
        a.rc = -ENOMEM;
    if (env) {
        if (bt && pf__tune_is_intel(space, config->v[PF_TUNE_OMP]))
            strv_add(&e, pf__strdupf("KMP_BLOCKTIME=%s", bt));
        if (!e.v && !e.rc && !(e.v = calloc(1, sizeof *e.v)))
            e.rc = -ENOMEM;
    }
    if (a.rc || e.rc) {
        pf_strv_free(a.v);
        pf_strv_free(e.v);
        return -ENOMEM;
    }
    *args = a.v;
    if (env)
        *env = e.v;
    return 0;
}
