/*
 * search.c - pinfer tune's searches, as ask and tell.
 *
 * Shared rules.  A configuration is known once a result was told for it
 * (its canonical form: KMP_BLOCKTIME at its default without Intel OpenMP),
 * whether the search asked for it or a record being resumed told it first;
 * a known configuration is never asked for.  Every strategy asks for the
 * default configuration first: it is the baseline every other result is
 * compared with.  A configuration asked for and not told by the next call to
 * pf_tune_search_next() counts as failed.  max_trials bounds the record, not
 * this run: it counts every known configuration, resumed ones included, and
 * the one being measured, so `--resume --max-trials 50` ends with 50 rows.
 * A failed trial is worse than any measured one.  The best is the best
 * value told (on an exact tie, the one told first).
 *
 * grid    every canonical configuration once, the default first, then in
 *         mixed-radix order (the split varying slowest).
 * random  the same configurations in a seeded shuffled order: a 4-round
 *         Feistel network keyed by splitmix64(seed) permutes the indices
 *         0..R-1 of all configurations (cycle walking from the next power
 *         of four), so the order needs no memory and no rand().
 *
 * auto    a coordinate search that bets on the space's structure:
 *
 *   0. The default configuration is the incumbent.
 *   1. Split.  Throughput is roughly unimodal in the cores per instance
 *      (more instances trade per-instance speed for parallelism), so the
 *      split values, ordered by C, are searched with the other knobs at the
 *      incumbent's: every value when there are at most 4 or the budget holds
 *      six times their number, else a ternary search (ties narrow to the
 *      middle third) followed by a hill-climb from the best point.  The
 *      best value measured replaces the incumbent's only if it beats it by
 *      more than the noise.
 *   2. Coordinate descent over the other knobs, in order of expected
 *      impact: OpenMP (with KMP_BLOCKTIME: "default", and "intel" with
 *      each blocktime, as one knob, since a bad blocktime can hide that
 *      Intel OpenMP wins with a good one), allocator, logical cores, numa,
 *      nodes, batch size, batch delay.  Each step measures every other
 *      value of the knob with the incumbent's other knobs (these knobs have
 *      2-5 values, and serving throughput is not unimodal in the batch size
 *      once an SLO fails the large ones) and adopts the best only if it
 *      beats the incumbent by more than the noise.
 *   3. If step 2 changed anything, the split is searched again in the new
 *      context and step 2 repeats (at most 6 rounds), until a round changes
 *      nothing: interactions (jemalloc good only with Intel OpenMP, SMT
 *      moving the best split) are found by revisiting in the new context.
 *
 *   Noise: a result beats another when it is better by more than
 *   max(spread of either, 1%) of the other's value, so ties and flat
 *   objectives keep the default, and each adoption is a real gain (which is
 *   also why the rounds end).
 *   Budget: max_trials when given, else a third of the space (all of it
 *   below 12 configurations, where a third leaves too little to learn
 *   from); auto ends early when the descent converges.
 *
 *   Ask and tell turns this procedure inside out without a state machine:
 *   each pf_tune_search_next() replays it from the start against the known
 *   results, and the first configuration it needs that is not known is the
 *   one asked for.  The replay is deterministic (it depends only on the
 *   results it reads), so resumed results are simply found on the way, and
 *   a replay costs a few hundred hash look-ups.
 */
#include "tune/tune.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define AUTO_ROUNDS 6
#define NOISE_FLOOR 0.01

typedef struct result {
    pf_tune_config config; /* canonical */
    uint64_t key;
    double value, spread;
    bool failed;
} result;

struct pf_tune_search {
    const pf_tune_space *space;
    pf_tune_search_options opts;
    uint64_t total;  /* configurations, canonical or not: the product of the knobs' sizes */
    size_t budget;   /* most known configurations before the search ends */
    result *results; /* in the order told */
    size_t nresults, capresults;
    size_t *table; /* open addressing: index + 1 into results, 0 empty */
    size_t captable;
    bool pending; /* asked for and not yet told */
    pf_tune_config asked;
    uint64_t cursor;   /* grid and random: the next index to consider */
    unsigned halfbits; /* random: the Feistel network's half width */
    uint64_t keys[4];
    long best; /* index into results, -1: none */
};

/* ------------------------------------------------------------------------ */
/* Known results                                                             */

static uint64_t key_of(const pf_tune_space *space, const pf_tune_config *c)
{
    uint64_t key = 0;
    for (int k = 0; k < PF_TUNE_NKNOBS; k++)
        key = key * space->nvalues[k] + c->v[k];
    return key;
}

static void config_of(const pf_tune_space *space, uint64_t key, pf_tune_config *c)
{
    for (int k = PF_TUNE_NKNOBS - 1; k >= 0; k--) {
        c->v[k] = (size_t)(key % space->nvalues[k]);
        key /= space->nvalues[k];
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t splitmix64(uint64_t *state)
{
    return mix64(*state += 0x9e3779b97f4a7c15ULL);
}

static result *find(const pf_tune_search *s, uint64_t key)
{
    if (!s->captable)
        return NULL;
    size_t mask = s->captable - 1;
    for (size_t i = (size_t)mix64(key) & mask;; i = (i + 1) & mask) {
        size_t slot = s->table[i];
        if (!slot)
            return NULL;
        if (s->results[slot - 1].key == key)
            return &s->results[slot - 1];
    }
}

static void table_put(size_t *table, size_t cap, uint64_t key, size_t index)
{
    size_t mask = cap - 1, i = (size_t)mix64(key) & mask;
    while (table[i])
        i = (i + 1) & mask;
    table[i] = index + 1;
}

/* Room for one more result: 0 or -ENOMEM. */
static int reserve(pf_tune_search *s)
{
    if (s->nresults == s->capresults) {
        size_t cap = s->capresults ? 2 * s->capresults : 64;
        result *grown = realloc(s->results, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        s->results = grown;
        s->capresults = cap;
    }
    if (2 * (s->nresults + 1) > s->captable) {
        size_t cap = s->captable ? 2 * s->captable : 128;
        size_t *table = calloc(cap, sizeof *table);
        if (!table)
            return -ENOMEM;
        for (size_t i = 0; i < s->nresults; i++)
            table_put(table, cap, s->results[i].key, i);
        free(s->table);
        s->table = table;
        s->captable = cap;
    }
    return 0;
}

static bool ok(const result *r)
{
    return r && !r->failed;
}

/* Higher is better, whatever the objective; a failure is worst. */
static double score(const pf_tune_search *s, const result *r)
{
    if (!ok(r))
        return -INFINITY;
    return s->opts.higher_is_better ? r->value : -r->value;
}

/* Does a beat b by more than the noise? */
static bool beats(const pf_tune_search *s, const result *a, const result *b)
{
    if (!ok(a))
        return false;
    if (!ok(b))
        return true;
    double noise = fmax(NOISE_FLOOR, fmax(a->spread, b->spread));
    double gain = score(s, a) - score(s, b), base = fabs(b->value);
    return base > 0 ? gain > noise * base : gain > 0;
}

static bool in_space(const pf_tune_space *space, const pf_tune_config *c)
{
    for (int k = 0; k < PF_TUNE_NKNOBS; k++)
        if (c->v[k] >= space->nvalues[k])
            return false;
    return true;
}

static bool known(const pf_tune_search *s, const pf_tune_config *config)
{
    pf_tune_config c = *config;
    pf_tune_config_canonical(s->space, &c);
    return find(s, key_of(s->space, &c)) != NULL;
}

/* ------------------------------------------------------------------------ */
/* Creating, telling, the best                                               */

int pf_tune_search_create(const pf_tune_space *space, const pf_tune_search_options *opts,
                          pf_tune_search **out)
{
    *out = NULL;
    uint64_t total = 1;
    for (int k = 0; k < PF_TUNE_NKNOBS; k++) {
        size_t n = space->nvalues[k];
        if (n == 0 || space->defaults[k] >= n || total > (UINT64_MAX >> 2) / n)
            return -EINVAL;
        total *= n;
    }
    pf_tune_search *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->space = space;
    if (opts)
        s->opts = *opts;
    else
        s->opts.higher_is_better = true;
    s->total = total;
    s->best = -1;

    size_t size = pf_tune_space_size(space);
    s->budget = s->opts.max_trials ? s->opts.max_trials : SIZE_MAX;
    if (s->opts.strategy == PF_TUNE_AUTO && !s->opts.max_trials)
        s->budget = size < 12 ? size : size / 3;

    unsigned bits = 2;
    while (bits < 62 && (UINT64_C(1) << bits) < total)
        bits += 2;
    s->halfbits = bits / 2;
    uint64_t state = s->opts.seed;
    for (int i = 0; i < 4; i++)
        s->keys[i] = splitmix64(&state);
    *out = s;
    return 0;
}

void pf_tune_search_free(pf_tune_search *search)
{
    if (!search)
        return;
    free(search->results);
    free(search->table);
    free(search);
}

static bool better(const pf_tune_search *s, const result *a, const result *b)
{
    return ok(a) && (!b || score(s, a) > score(s, b));
}

static void rescan_best(pf_tune_search *s)
{
    s->best = -1;
    for (size_t i = 0; i < s->nresults; i++)
        if (better(s, &s->results[i], s->best < 0 ? NULL : &s->results[s->best]))
            s->best = (long)i;
}

void pf_tune_search_tell(pf_tune_search *search, const pf_tune_config *config, double value,
                         double spread, bool failed)
{
    pf_tune_search *s = search;
    if (!in_space(s->space, config))
        return;
    pf_tune_config c = *config;
    pf_tune_config_canonical(s->space, &c);
    uint64_t key = key_of(s->space, &c);
    if (s->pending && key_of(s->space, &s->asked) == key)
        s->pending = false;
    result *r = find(s, key);
    if (!r) {
        /* Out of memory: the result is lost, and the search may ask for it again. */
        if (reserve(s))
            return;
        r = &s->results[s->nresults];
        *r = (result){.config = c, .key = key};
        table_put(s->table, s->captable, key, s->nresults++);
    }
    r->failed = failed || isnan(value);
    r->value = r->failed ? NAN : value;
    r->spread = isfinite(spread) && spread > 0 ? spread : 0;
    long i = (long)(r - s->results);
    if (i == s->best)
        rescan_best(s);
    else if (better(s, r, s->best < 0 ? NULL : &s->results[s->best]))
        s->best = i;
}

int pf_tune_search_best(const pf_tune_search *search, pf_tune_config *config, double *value)
{
    if (search->best < 0)
        return 0;
    const result *r = &search->results[search->best];
    if (config)
        *config = r->config;
    if (value)
        *value = r->value;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* grid and random                                                           */

/* A permutation of [0, 4^halfbits): a balanced Feistel network. */
static uint64_t feistel(const pf_tune_search *s, uint64_t x)
{
    unsigned h = s->halfbits;
    uint64_t mask = (UINT64_C(1) << h) - 1, left = x >> h, right = x & mask;
    for (int i = 0; i < 4; i++) {
        uint64_t next = left ^ (mix64(right ^ s->keys[i]) & mask);
        left = right;
        right = next;
    }
    return (left << h) | right;
}

/* The index'th configuration of the strategy's order, canonical or not. */
static uint64_t order_at(const pf_tune_search *s, uint64_t index)
{
    if (s->opts.strategy != PF_TUNE_RANDOM)
        return index;
    /* Cycle walking: a permutation of the larger domain restricted to [0, total). */
    uint64_t x = feistel(s, index);
    while (x >= s->total)
        x = feistel(s, x);
    return x;
}

static int next_in_order(pf_tune_search *s, pf_tune_config *config)
{
    while (s->cursor < s->total) {
        config_of(s->space, order_at(s, s->cursor++), config);
        if (pf__tune_is_canonical(s->space, config) && !known(s, config))
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* auto                                                                      */

/* One replay of the auto procedure. */
typedef struct walk {
    pf_tune_search *s;
    pf_tune_config cur; /* the incumbent */
    const result *inc;  /* its result */
    bool changed;
    bool stop; /* `ask` is the first configuration the procedure needs and nobody measured */
    pf_tune_config ask;
} walk;

/* The result of a configuration, or false (and the walk stops) when it is unknown. */
static bool probe(walk *w, const pf_tune_config *config, const result **out)
{
    pf_tune_config c = *config;
    pf_tune_config_canonical(w->s->space, &c);
    const result *r = find(w->s, key_of(w->s->space, &c));
    if (!r) {
        w->ask = c;
        w->stop = true;
        return false;
    }
    *out = r;
    return true;
}

static void adopt(walk *w, size_t split, const result *r)
{
    w->cur.v[PF_TUNE_SPLIT] = split;
    w->inc = r;
    w->changed = true;
}

/* The split values' indices ordered by cores per instance (unparsable ones last). */
static void split_order(const pf_tune_space *space, size_t *order)
{
    size_t n = space->nvalues[PF_TUNE_SPLIT];
    long *cores = malloc(n * sizeof *cores);
    for (size_t i = 0; i < n; i++) {
        long ni, c;
        order[i] = i;
        if (cores)
            cores[i] =
                pf__tune_split_parse(space->values[PF_TUNE_SPLIT][i], &ni, &c) ? LONG_MAX : c;
    }
    /* Insertion sort, stable: a handful of values. */
    for (size_t i = 1; cores && i < n; i++)
        for (size_t j = i; j > 0 && cores[order[j - 1]] > cores[order[j]]; j--) {
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    free(cores);
}

typedef struct split_eval {
    walk *w;
    const size_t *order;
    const result **seen; /* by position in order; NULL: not measured */
} split_eval;

/* The result at position i of the ordered splits (others at the incumbent's). */
static bool split_at(split_eval *e, size_t i, const result **out)
{
    if (!e->seen[i]) {
        pf_tune_config c = e->w->cur;
        c.v[PF_TUNE_SPLIT] = e->order[i];
        if (!probe(e->w, &c, &e->seen[i]))
            return false;
    }
    *out = e->seen[i];
    return true;
}

static bool split_search(walk *w)
{
    pf_tune_search *s = w->s;
    size_t n = s->space->nvalues[PF_TUNE_SPLIT];
    if (n < 2)
        return true;
    size_t *order = calloc(n, sizeof *order);
    const result **seen = calloc(n, sizeof *seen);
    if (!order || !seen) {
        /* No memory to search the split: leave it as it is. */
        free(order);
        free(seen);
        return true;
    }
    split_order(s->space, order);
    split_eval e = {w, order, seen};
    bool done = false;
    const result *a, *b;

    if (n <= 4 || 6 * n <= s->budget) {
        for (size_t i = 0; i < n; i++)
            if (!split_at(&e, i, &a))
                goto out;
    } else {
        size_t lo = 0, hi = n - 1;
        while (hi - lo > 2) {
            size_t m1 = lo + (hi - lo) / 3, m2 = hi - (hi - lo) / 3;
            if (!split_at(&e, m1, &a) || !split_at(&e, m2, &b))
                goto out;
            if (score(s, a) < score(s, b))
                lo = m1 + 1;
            else if (score(s, a) > score(s, b))
                hi = m2 - 1;
            else {
                lo = m1; /* a tie: the peak lies between them */
                hi = m2;
            }
        }
        size_t top = lo;
        for (size_t i = lo; i <= hi; i++) {
            if (!split_at(&e, i, &a) || !split_at(&e, top, &b))
                goto out;
            if (score(s, a) > score(s, b))
                top = i;
        }
        /* Hill-climb from the best point: the ternary search assumed a single peak. */
        for (int dir = -1; dir <= 1; dir += 2)
            for (size_t i = top; (dir < 0 ? i > 0 : i + 1 < n); i += (size_t)dir) {
                if (!split_at(&e, i + (size_t)dir, &a) || !split_at(&e, i, &b))
                    goto out;
                if (score(s, a) <= score(s, b))
                    break;
            }
    }
    const result *top = NULL;
    size_t topv = 0;
    for (size_t i = 0; i < n; i++)
        if (seen[i] && better(s, seen[i], top)) {
            top = seen[i];
            topv = order[i];
        }
    if (top && topv != w->cur.v[PF_TUNE_SPLIT] && beats(s, top, w->inc))
        adopt(w, topv, top);
    done = true;
out:
    free(order);
    free(seen);
    return done;
}

/*
 * One coordinate step: every other value of a knob with the incumbent's
 * other knobs.  The OpenMP runtime and KMP_BLOCKTIME are one knob here, its
 * values "default" and "intel" with each blocktime: a bad blocktime can
 * make Intel OpenMP look worse than the default when a good one wins.
 */
static bool knob_step(walk *w, pf_tune_knob knob)
{
    pf_tune_search *s = w->s;
    const pf_tune_space *space = s->space;
    size_t n = space->nvalues[knob];
    if (n < 2)
        return true;
    const result *top = NULL, *r;
    pf_tune_config best = w->cur;
    for (size_t v = 0; v < n; v++) {
        bool joint = knob == PF_TUNE_OMP && pf__tune_is_intel(space, v);
        size_t nbt = joint ? space->nvalues[PF_TUNE_BLOCKTIME] : 1;
        for (size_t bt = 0; bt < nbt; bt++) {
            pf_tune_config c = w->cur;
            c.v[knob] = v;
            if (joint)
                c.v[PF_TUNE_BLOCKTIME] = bt;
            pf_tune_config_canonical(space, &c);
            if (pf_tune_config_equal(&c, &w->cur))
                continue;
            if (!probe(w, &c, &r))
                return false;
            if (better(s, r, top)) {
                top = r;
                best = c;
            }
        }
    }
    if (top && beats(s, top, w->inc)) {
        w->cur = best;
        w->inc = top;
        w->changed = true;
    }
    return true;
}

static void auto_walk(walk *w)
{
    static const pf_tune_knob ORDER[] = {PF_TUNE_OMP,        PF_TUNE_ALLOCATOR, PF_TUNE_LOGICAL,
                                         PF_TUNE_NUMA,       PF_TUNE_NODES,     PF_TUNE_BATCH_SIZE,
                                         PF_TUNE_BATCH_DELAY};
    pf_tune_space_default_config(w->s->space, &w->cur);
    pf_tune_config_canonical(w->s->space, &w->cur);
    if (!probe(w, &w->cur, &w->inc) || !split_search(w))
        return;
    for (int round = 0; round < AUTO_ROUNDS; round++) {
        w->changed = false;
        for (size_t i = 0; i < sizeof ORDER / sizeof *ORDER; i++)
            if (!knob_step(w, ORDER[i]))
                return;
        if (!w->changed || !split_search(w))
            return;
    }
}

/* ------------------------------------------------------------------------ */
/* Asking                                                                    */

int pf_tune_search_next(pf_tune_search *search, pf_tune_config *config)
{
    pf_tune_search *s = search;
    if (s->pending) {
        pf_tune_config c = s->asked;
        pf_tune_search_tell(s, &c, NAN, 0, true);
        s->pending = false;
    }
    if (s->nresults >= s->budget)
        return 0;
    pf_tune_config c;
    pf_tune_space_default_config(s->space, &c);
    pf_tune_config_canonical(s->space, &c);
    int found = !known(s, &c);
    if (!found && s->opts.strategy == PF_TUNE_AUTO) {
        walk w = {.s = s};
        auto_walk(&w);
        found = w.stop;
        c = w.ask;
    } else if (!found) {
        found = next_in_order(s, &c);
    }
    if (!found)
        return 0;
    s->pending = true;
    s->asked = c;
    *config = c;
    return 1;
}
