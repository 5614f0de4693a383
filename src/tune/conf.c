/*
 * conf.c - an IPEX hypertune configuration (its documented YAML) read onto
 * a pinfer tune search space.
 *
 *   tuning: {strategy: grid | random, max_trials: N}      optional
 *   output_dir: DIR                                       optional
 *   hyperparams:                                          mandatory
 *     launcher:                                           optional
 *       hp: [ncore_per_instance, ninstances, ...]          mandatory with launcher
 *       ncore_per_instance: all_physical_cores | [1, 2]    optional search spaces
 *       ...
 *
 * hypertune tunes the launcher's options; pinfer's knobs say the same thing
 * another way, so each value list is translated (docs/tune.md, "hypertune"):
 *
 *   ncore_per_instance x ninstances  split: each pair as "NxC"; -1 (not
 *                                    passed) is what the launcher then picks,
 *                                    C = P / N or N = P / C, both -1 "1xP";
 *                                    pairs with N * C > P are left out (a note)
 *   use_all_nodes                    nodes: True "all", False "0" (--node_id 0)
 *   use_logical_core                 logical_cores: True "on", False "off"
 *   disable_numactl                  numa: False "bind", True "off"
 *   disable_iomp                     omp: False "intel", True "default" (GNU)
 *   malloc                           allocator: tc tcmalloc, je jemalloc,
 *                                    pt default (PyTorch's own)
 *
 * P is the number of physical cores among the topology's allowed CPUs,
 * whatever use_logical_core says: a split counts cores, and SMT siblings
 * are the logical_cores knob's business.  A knob not in hp takes
 * hypertune's default (one value); one in hp without a list its default
 * search space (all_logical_cores; [True, False] where both mean something;
 * [tc, je, pt]).  pinfer's own knobs (KMP_BLOCKTIME, the batch knobs) are
 * left as the space has them.  Unknown keys anywhere are errors: a
 * misspelt knob would otherwise silently not be tuned.
 *
 * YAML scalars are read as PyYAML reads them where it matters: 1.1's
 * booleans (True, false, yes, off, ...) for the bool knobs, decimal ints.
 */
#include "tune/tune_yaml.h"

#include "base/util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* hypertune's launcher knobs, in its record.csv's order. */
typedef enum hknob {
    H_NCORE = 0,
    H_NINSTANCES,
    H_ALL_NODES,
    H_LOGICAL,
    H_NO_NUMACTL,
    H_NO_IOMP,
    H_MALLOC,
    H_NKNOBS
} hknob;

static const char *const HNAMES[H_NKNOBS] = {
    "ncore_per_instance", "ninstances",   "use_all_nodes", "use_logical_core",
    "disable_numactl",    "disable_iomp", "malloc"};

static const char *const MALLOCS[] = {"tc", "je", "pt"};
static const char *const ALLOCATORS[] = {"tcmalloc", "jemalloc", "default"};

#define MAX_TRIALS 1000000000L

/* A knob's values: ints (ncore, ninstances: -1 or >= 1), bools 0/1, malloc 0-2. */
typedef struct hvalues {
    long *v;
    size_t n;
    bool given; /* a list (or all_*_cores) was written */
    int line;
} hvalues;

typedef struct reader {
    const char *source;
    yaml_document_t *doc;
    hvalues knobs[H_NKNOBS];
    bool in_hp[H_NKNOBS];
    size_t physical, logical, nodes; /* of the allowed CPUs */
    pf__strv notes;
    pf_tune_conf *conf;
    char **why;
} reader;

static int fail(reader *r, const yaml_node_t *at, const char *fmt, ...) PF__PRINTF(3, 4);
static int fail(reader *r, const yaml_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = pf__vstrdupf(fmt, ap);
    va_end(ap);
    if (!msg)
        return -ENOMEM;
    int rc =
        pf__fail(r->why, -EINVAL, "%s:%d: %s", r->source, at ? pf__tune_yaml_line(at) : 1, msg);
    free(msg);
    return rc;
}

static int note(reader *r, int line, const char *fmt, ...) PF__PRINTF(3, 4);
static int note(reader *r, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = pf__vstrdupf(fmt, ap);
    va_end(ap);
    if (!msg)
        return -ENOMEM;
    int rc = pf__strv_take(&r->notes, pf__strdupf("%s:%d: %s", r->source, line, msg));
    free(msg);
    return rc;
}

static const yaml_node_t *node(reader *r, int id)
{
    return yaml_document_get_node(r->doc, id);
}

/* A key as messages show it: printable, at most 40 bytes. */
static void shown(const yaml_node_t *key, char out[48])
{
    const char *s = pf__tune_yaml_scalar(key);
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : "?"); *p && n < 40; p++)
        out[n++] = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;
    out[n] = '\0';
}

/*
 * Check that `map` is a mapping whose keys are all in `known`
 * (NULL-terminated), each once: 0, or -EINVAL naming the first key that is
 * unknown or repeated (`expected` lists the known ones for the message).
 */
static int mapping_keys(reader *r, const yaml_node_t *map, const char *what,
                        const char *const *known, const char *expected)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return fail(r, map, "%s: a mapping is expected, not %s", what, pf__tune_yaml_kind(map));
    const yaml_node_t *dup = pf__tune_yaml_repeated_key(r->doc, map);
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *key = node(r, p->key);
        if (key == dup) {
            char q[48];
            shown(key, q);
            return fail(r, key, "%s: '%s' is repeated", what, q);
        }
        const char *s = pf__tune_yaml_scalar(key);
        bool ok = false;
        for (size_t i = 0; s && known[i] && !ok; i++)
            ok = strcmp(s, known[i]) == 0;
        if (!ok) {
            char q[48];
            shown(key, q);
            return fail(r, key, "%s: unknown key '%s' (expected %s)", what, q, expected);
        }
    }
    return 0;
}

/* The knob a launcher key names (both spellings of ncore_per_instance), or -1. */
static int hknob_of(const char *s)
{
    if (!s)
        return -1;
    if (strcmp(s, "ncores_per_instance") == 0)
        return H_NCORE;
    for (int k = 0; k < H_NKNOBS; k++)
        if (strcmp(s, HNAMES[k]) == 0)
            return k;
    return -1;
}

static bool yaml_bool(const char *s, long *out)
{
    static const char *const YES[] = {"True", "true", "TRUE", "yes", "Yes",
                                      "YES",  "on",   "On",   "ON"};
    static const char *const NO[] = {"False", "false", "FALSE", "no", "No",
                                     "NO",    "off",   "Off",   "OFF"};
    for (size_t i = 0; s && i < sizeof YES / sizeof *YES; i++) {
        if (strcmp(s, YES[i]) == 0)
            return *out = 1, true;
        if (strcmp(s, NO[i]) == 0)
            return *out = 0, true;
    }
    return false;
}

static int push(hvalues *h, long v)
{
    long *grown = realloc(h->v, (h->n + 1) * sizeof *grown);
    if (!grown)
        return -ENOMEM;
    h->v = grown;
    h->v[h->n++] = v;
    return 0;
}

static int push_range(hvalues *h, size_t upto)
{
    for (size_t i = 1; i <= upto; i++)
        if (push(h, (long)i) < 0)
            return -ENOMEM;
    return 0;
}

static const char *expected_of(int k)
{
    switch (k) {
    case H_NCORE:
    case H_NINSTANCES:
        return "all_physical_cores, all_logical_cores or a list of integers (-1 or >= 1)";
    case H_MALLOC: return "a list of tc, je, pt";
    default: return "a list of True / False";
    }
}

/* A knob's search space as written: all_*_cores, or a list. */
static int read_values(reader *r, int k, const yaml_node_t *key, const yaml_node_t *value)
{
    hvalues *h = &r->knobs[k];
    if (h->given)
        return fail(r, key,
                    "launcher: %s is repeated (ncore_per_instance and "
                    "ncores_per_instance are one knob)",
                    HNAMES[k]);
    h->given = true;
    h->line = pf__tune_yaml_line(key);
    const char *s = pf__tune_yaml_scalar(value);
    if ((k == H_NCORE || k == H_NINSTANCES) && s &&
        (!strcmp(s, "all_physical_cores") || !strcmp(s, "all_logical_cores")))
        return push_range(h, !strcmp(s, "all_physical_cores") ? r->physical : r->logical);
    if (!value || value->type != YAML_SEQUENCE_NODE)
        return fail(r, value ? value : key, "%s: %s is expected, not %s", HNAMES[k], expected_of(k),
                    pf__tune_yaml_kind(value));
    for (yaml_node_item_t *i = value->data.sequence.items.start; i < value->data.sequence.items.top;
         i++) {
        const yaml_node_t *item = node(r, *i);
        const char *t = pf__tune_yaml_scalar(item);
        long v = -2;
        bool ok = false;
        if (k == H_NCORE || k == H_NINSTANCES)
            ok = t && pf__parse_int(t, strlen(t), -1, PF_ID_LIMIT, &v) == 0 && v != 0;
        else if (k == H_MALLOC)
            for (long m = 0; m < 3 && t && !ok; m++)
                if (strcmp(t, MALLOCS[m]) == 0)
                    ok = true, v = m;
        if (k != H_NCORE && k != H_NINSTANCES && k != H_MALLOC)
            ok = yaml_bool(t, &v);
        if (!ok && !t)
            return fail(r, item, "%s: an item is %s: %s is expected", HNAMES[k],
                        pf__tune_yaml_kind(item), expected_of(k));
        if (!ok) {
            char q[48];
            shown(item, q);
            return fail(r, item, "%s: '%s' is not valid: %s is expected", HNAMES[k], q,
                        expected_of(k));
        }
        for (size_t j = 0; j < h->n; j++)
            if (h->v[j] == v)
                return fail(r, item, "%s: '%s' is repeated", HNAMES[k], t);
        if (push(h, v) < 0)
            return -ENOMEM;
    }
    if (h->n == 0)
        return fail(r, value, "%s: the list is empty", HNAMES[k]);
    return 0;
}

static int read_hp(reader *r, const yaml_node_t *hp)
{
    if (!hp || hp->type != YAML_SEQUENCE_NODE)
        return fail(r, hp, "hp: a list of the knobs to tune is expected, not %s",
                    pf__tune_yaml_kind(hp));
    for (yaml_node_item_t *i = hp->data.sequence.items.start; i < hp->data.sequence.items.top;
         i++) {
        const yaml_node_t *item = node(r, *i);
        int k = hknob_of(pf__tune_yaml_scalar(item));
        char q[48];
        shown(item, q);
        if (k < 0)
            return fail(r, item,
                        "hp: unknown knob '%s' (the knobs: ncore_per_instance, ninstances, "
                        "use_all_nodes, use_logical_core, disable_numactl, disable_iomp, malloc)",
                        q);
        if (r->in_hp[k])
            return fail(r, item, "hp: '%s' is repeated", q);
        r->in_hp[k] = true;
    }
    return 0;
}

static int read_launcher(reader *r, const yaml_node_t *launcher)
{
    static const char *const KEYS[] = {"hp",
                                       "ncore_per_instance",
                                       "ncores_per_instance",
                                       "ninstances",
                                       "use_all_nodes",
                                       "use_logical_core",
                                       "disable_numactl",
                                       "disable_iomp",
                                       "malloc",
                                       NULL};
    int rc = mapping_keys(r, launcher, "launcher", KEYS,
                          "hp and the knobs' search spaces: ncore_per_instance, ninstances, "
                          "use_all_nodes, use_logical_core, disable_numactl, disable_iomp, "
                          "malloc");
    if (rc < 0)
        return rc;
    const yaml_node_t *hp = NULL;
    for (const yaml_node_pair_t *p = launcher->data.mapping.pairs.start;
         p < launcher->data.mapping.pairs.top; p++)
        if (strcmp(pf__tune_yaml_scalar(node(r, p->key)), "hp") == 0)
            hp = node(r, p->value);
    if (!hp)
        return fail(r, launcher, "launcher: hp (the list of knobs to tune) is missing");
    if ((rc = read_hp(r, hp)) < 0)
        return rc;
    for (const yaml_node_pair_t *p = launcher->data.mapping.pairs.start;
         p < launcher->data.mapping.pairs.top && rc == 0; p++) {
        const yaml_node_t *key = node(r, p->key);
        int k = hknob_of(pf__tune_yaml_scalar(key));
        if (k >= 0)
            rc = read_values(r, k, key, node(r, p->value));
    }
    return rc;
}

static int read_tuning(reader *r, const yaml_node_t *tuning)
{
    static const char *const KEYS[] = {"strategy", "max_trials", NULL};
    if (pf__tune_yaml_is_null(tuning))
        return 0;
    int rc = mapping_keys(r, tuning, "tuning", KEYS, "strategy, max_trials");
    for (const yaml_node_pair_t *p = tuning->data.mapping.pairs.start;
         rc == 0 && p < tuning->data.mapping.pairs.top; p++) {
        const yaml_node_t *v = node(r, p->value);
        const char *s = pf__tune_yaml_scalar(v);
        char q[48];
        shown(v, q);
        if (strcmp(pf__tune_yaml_scalar(node(r, p->key)), "strategy") == 0) {
            if (s && strcmp(s, "grid") == 0)
                r->conf->strategy = PF_TUNE_GRID;
            else if (s && strcmp(s, "random") == 0)
                r->conf->strategy = PF_TUNE_RANDOM;
            else if (!s)
                rc = fail(r, v, "tuning: strategy: grid or random is expected, not %s",
                          pf__tune_yaml_kind(v));
            else
                rc = fail(r, v, "tuning: strategy: '%s' is not grid or random", q);
        } else {
            long n;
            if (!s)
                rc = fail(r, v,
                          "tuning: max_trials: a whole number from 1 to %ld is expected, "
                          "not %s",
                          MAX_TRIALS, pf__tune_yaml_kind(v));
            else if (pf__parse_int(s, strlen(s), 1, MAX_TRIALS, &n) < 0)
                rc = fail(r, v, "tuning: max_trials: '%s' is not a whole number from 1 to %ld", q,
                          MAX_TRIALS);
            else
                r->conf->max_trials = n;
        }
    }
    return rc;
}

static int read_root(reader *r, const yaml_node_t *root)
{
    static const char *const KEYS[] = {"tuning", "output_dir", "hyperparams", NULL};
    static const char *const HYPER[] = {"launcher", NULL};
    if (!root)
        return fail(r, NULL, "empty: hyperparams is mandatory");
    int rc = mapping_keys(r, root, "the file", KEYS, "tuning, output_dir, hyperparams");
    if (rc < 0)
        return rc;
    const yaml_node_t *hyper = NULL;
    for (const yaml_node_pair_t *p = root->data.mapping.pairs.start;
         rc == 0 && p < root->data.mapping.pairs.top; p++) {
        const char *key = pf__tune_yaml_scalar(node(r, p->key));
        const yaml_node_t *v = node(r, p->value);
        if (strcmp(key, "tuning") == 0) {
            rc = read_tuning(r, v);
        } else if (strcmp(key, "output_dir") == 0) {
            const char *s = pf__tune_yaml_scalar(v);
            if (!s || !*s || pf__tune_yaml_is_null(v))
                rc = fail(r, v, "output_dir: a folder is expected, not %s", pf__tune_yaml_kind(v));
            else if (!(r->conf->output_dir = strdup(s)))
                rc = -ENOMEM;
        } else {
            hyper = v;
        }
    }
    if (rc < 0)
        return rc;
    if (!hyper)
        return fail(r, root,
                    "hyperparams is missing (it is mandatory: hyperparams: "
                    "{launcher: {hp: [...]}})");
    if ((rc = mapping_keys(r, hyper, "hyperparams", HYPER, "launcher")) < 0)
        return rc;
    for (const yaml_node_pair_t *p = hyper->data.mapping.pairs.start;
         p < hyper->data.mapping.pairs.top; p++)
        return read_launcher(r, node(r, p->value));
    return 0;
}

/* ---- the mapping onto the space ----------------------------------------- */

/* Values in order, as hypertune's lists write them: [True, False] is {1, 0}. */
static int push_all(hvalues *h, const long *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (push(h, v[i]) < 0)
            return -ENOMEM;
    return 0;
}

/* hypertune's default search space of a knob in hp without a list. */
static int default_space(reader *r, int k)
{
    static const long BOTH[] = {1, 0}, TRUE_[] = {1}, FALSE_[] = {0}, MALLOC3[] = {0, 1, 2};
    hvalues *h = &r->knobs[k];
    switch (k) {
    case H_NCORE:
    case H_NINSTANCES: return push_range(h, r->logical);
    case H_ALL_NODES: return r->nodes > 1 ? push_all(h, BOTH, 2) : push_all(h, TRUE_, 1);
    case H_LOGICAL: return r->logical > r->physical ? push_all(h, BOTH, 2) : push_all(h, FALSE_, 1);
    case H_MALLOC: return push_all(h, MALLOC3, 3);
    default: return push_all(h, BOTH, 2);
    }
}

/* hypertune's default value of a knob not in hp. */
static int default_value(hvalues *h, int k)
{
    h->n = 0;
    switch (k) {
    case H_NCORE:
    case H_NINSTANCES: return push(h, -1);
    case H_ALL_NODES: return push(h, 1);
    case H_MALLOC: return push(h, 0);
    default: return push(h, 0);
    }
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static int add_split(pf__strv *splits, long n, long c)
{
    return pf__strv_take(splits, pf__strdupf("%ldx%ld", n, c));
}

typedef struct ranked {
    const char *text;
    size_t at;
} ranked;

static int ranked_cmp(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    int c = strcmp(a->text, b->text);
    return c ? c : (a->at > b->at) - (a->at < b->at);
}

/*
 * Drop repeated splits (-1 resolves to a pair that may also be written
 * out), keeping the first of each in place: the first value is the
 * default's fallback.  Sorted, not compared pairwise: all_logical_cores
 * twice makes thousands.
 */
static int unique_splits(pf__strv *splits)
{
    size_t n = splits->len;
    if (n < 2)
        return 0;
    ranked *r = malloc(n * sizeof *r);
    if (!r)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        r[i] = (ranked){splits->v[i], i};
    qsort(r, n, sizeof *r, ranked_cmp);
    /* Equal texts sort by position: each but the first of a run goes. */
    size_t first = 0;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(r[i].text, r[first].text) != 0) {
            first = i;
            continue;
        }
        free(splits->v[r[i].at]);
        splits->v[r[i].at] = NULL;
    }
    free(r);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (splits->v[i])
            splits->v[kept++] = splits->v[i];
    splits->len = kept;
    splits->v[kept] = NULL;
    return 0;
}

/*
 * ncore_per_instance x ninstances as splits.  Lists are sorted first so
 * that the pairs too large are counted, not walked: all_logical_cores
 * twice on a large machine is millions of pairs.
 */
static int map_splits(reader *r, pf__strv *splits)
{
    hvalues *hc = &r->knobs[H_NCORE], *hn = &r->knobs[H_NINSTANCES];
    long p = (long)r->physical;
    qsort(hc->v, hc->n, sizeof *hc->v, cmp_long);
    qsort(hn->v, hn->n, sizeof *hn->v, cmp_long);
    size_t dropped = 0;
    int rc = 0;
    for (size_t i = 0; i < hn->n && rc == 0; i++) {
        long n = hn->v[i];
        for (size_t j = 0; j < hc->n && rc == 0; j++) {
            long c = hc->v[j];
            long rn = n, rc_ = c;
            if (n < 0 && c < 0)
                rn = 1, rc_ = p;
            else if (n < 0)
                rn = p / c;
            else if (c < 0)
                rc_ = p / n;
            if (rn < 1 || rc_ < 1 || rn > p / rc_) {
                if (n > 0 && c > 0) {
                    /* Sorted: every larger C is too large too. */
                    dropped += hc->n - j;
                    break;
                }
                dropped++;
                continue;
            }
            rc = add_split(splits, rn, rc_);
        }
    }
    if (rc < 0)
        return rc;
    if ((rc = unique_splits(splits)) < 0)
        return rc;
    int line = hc->line ? hc->line : hn->line ? hn->line : 1;
    if (splits->len == 0)
        return pf__fail(r->why, -EINVAL,
                        "%s:%d: no pair of ninstances and ncore_per_instance fits the %zu "
                        "physical cores",
                        r->source, line, r->physical);
    if (dropped)
        rc = note(r, line,
                  "%zu of the %zu pairs of ninstances and ncore_per_instance left out: "
                  "they need more than the %zu physical cores",
                  dropped, hn->n * hc->n, r->physical);
    return rc;
}

/* A value that maps onto something the space did not have (a library not found?). */
static int note_unfound(reader *r, const pf_tune_space *space, pf_tune_knob knob, const char *value,
                        const char *from)
{
    if (!space->values[knob] || space->nvalues[knob] == 0)
        return 0;
    for (size_t i = 0; i < space->nvalues[knob]; i++)
        if (strcmp(space->values[knob][i], value) == 0)
            return 0;
    int line = r->knobs[knob == PF_TUNE_OMP ? H_NO_IOMP : H_MALLOC].line;
    return note(r, line ? line : 1,
                "%s %s (%s) was not among the space's values: pinfer did not find it here, "
                "and its trials may fail",
                pf_tune_knob_name(knob), value, from);
}

static int apply(reader *r, pf_tune_space *space)
{
    pf__strv v[PF_TUNE_NKNOBS] = {{0}};
    int rc = map_splits(r, &v[PF_TUNE_SPLIT]);
    struct {
        int h;
        pf_tune_knob knob;
        const char *when_true, *when_false;
    } bools[] = {
        {H_ALL_NODES, PF_TUNE_NODES, "all", "0"},
        {H_LOGICAL, PF_TUNE_LOGICAL, "on", "off"},
        {H_NO_NUMACTL, PF_TUNE_NUMA, "off", "bind"},
        {H_NO_IOMP, PF_TUNE_OMP, "default", "intel"},
    };
    for (size_t b = 0; b < sizeof bools / sizeof *bools && rc == 0; b++) {
        hvalues *h = &r->knobs[bools[b].h];
        for (size_t i = 0; i < h->n && rc == 0; i++) {
            const char *text = h->v[i] ? bools[b].when_true : bools[b].when_false;
            rc = pf__strv_take(&v[bools[b].knob], strdup(text));
            if (rc == 0 && bools[b].knob == PF_TUNE_OMP)
                rc = note_unfound(r, space, PF_TUNE_OMP, text,
                                  h->v[i] ? "disable_iomp True" : "disable_iomp False");
        }
    }
    hvalues *m = &r->knobs[H_MALLOC];
    for (size_t i = 0; i < m->n && rc == 0; i++) {
        char from[16];
        snprintf(from, sizeof from, "malloc %s", MALLOCS[m->v[i]]);
        rc = pf__strv_take(&v[PF_TUNE_ALLOCATOR], strdup(ALLOCATORS[m->v[i]]));
        if (rc == 0)
            rc = note_unfound(r, space, PF_TUNE_ALLOCATOR, ALLOCATORS[m->v[i]], from);
    }
    static const pf_tune_knob SET[] = {PF_TUNE_SPLIT, PF_TUNE_LOGICAL,   PF_TUNE_NODES,
                                       PF_TUNE_NUMA,  PF_TUNE_ALLOCATOR, PF_TUNE_OMP};
    for (size_t i = 0; i < sizeof SET / sizeof *SET && rc == 0; i++)
        rc = pf_tune_space_set(space, SET[i], v[SET[i]].v, v[SET[i]].len, r->why);
    for (int k = 0; k < PF_TUNE_NKNOBS; k++)
        pf__strv_free(&v[k]);
    return rc;
}

/* P, logical CPUs and nodes of the allowed CPUs. */
static int count_cpus(reader *r, const pf_topology *topo)
{
    size_t n = 0;
    const pf_cpu_info *cpus = pf_topology_cpus(topo, &n);
    pf__ivec cores = {0}, nodes = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!cpus[i].allowed)
            continue;
        r->logical++;
        if ((rc = pf__ivec_push(&cores, cpus[i].core_first)) == 0)
            rc = pf__ivec_push(&nodes, cpus[i].node);
    }
    pf__ivec_sort_unique(&cores);
    pf__ivec_sort_unique(&nodes);
    r->physical = cores.len;
    r->nodes = nodes.len;
    pf__ivec_free(&cores);
    pf__ivec_free(&nodes);
    if (rc == 0 && r->physical == 0)
        rc = pf__fail(r->why, -EINVAL, "%s: the topology has no CPU this process may use",
                      r->source);
    return rc;
}

int pf_tune_conf_parse(const char *text, size_t len, const char *source, const pf_topology *topo,
                       pf_tune_space *space, pf_tune_conf *out, char **why)
{
    if (!source)
        source = "hypertune.yaml";
    if (!out)
        return pf__fail(why, -EINVAL, "%s: nowhere to put the configuration", source);
    memset(out, 0, sizeof *out);
    out->strategy = -1;
    if (!topo || !space || (!text && len))
        return pf__fail(why, -EINVAL, "%s: nothing to read", source);
    reader r = {.source = source, .conf = out, .why = why};
    int rc = count_cpus(&r, topo);
    yaml_document_t doc;
    bool loaded = false;
    if (rc == 0 && (rc = pf__tune_yaml_load(&doc, text ? text : "", len, source, why)) == 0) {
        loaded = true;
        r.doc = &doc;
        rc = read_root(&r, yaml_document_get_root_node(&doc));
    }
    for (int k = 0; k < H_NKNOBS && rc == 0; k++) {
        hvalues *h = &r.knobs[k];
        if (!r.in_hp[k]) {
            if (h->given)
                rc = note(&r, h->line, "%s: not in hp, so not tuned: hypertune's default is used",
                          HNAMES[k]);
            if (rc == 0)
                rc = default_value(h, k);
        } else if (!h->given) {
            rc = default_space(&r, k);
        }
    }
    if (rc == 0)
        rc = apply(&r, space);
    for (int k = 0; k < H_NKNOBS; k++)
        free(r.knobs[k].v);
    if (loaded)
        yaml_document_delete(&doc);
    if (rc == 0) {
        out->notes = r.notes.v;
        return 0;
    }
    pf__strv_free(&r.notes);
    pf_tune_conf_clear(out);
    return rc;
}

void pf_tune_conf_clear(pf_tune_conf *conf)
{
    if (!conf)
        return;
    free(conf->output_dir);
    if (conf->notes) {
        for (char **n = conf->notes; *n; n++)
            free(*n);
        free(conf->notes);
    }
    memset(conf, 0, sizeof *conf);
    conf->strategy = -1;
}
