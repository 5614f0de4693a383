/*
 * record.c - the trials of a tuning run as record.csv (written as trials
 * end, read back by --resume) and tune.json.
 *
 * record.csv starts with IPEX hypertune's columns, so that what reads
 * hypertune's record.csv reads pinfer's:
 *
 *   ncore_per_instance,ninstances,use_all_nodes,use_logical_core,
 *   disable_numactl,disable_iomp,malloc,<objective>
 *
 * (Python's True / False, malloc tc / je / pt; the objective's column is
 * named after the objective, its cell empty for a failed trial), then
 * pinfer's own: split,nodes,kmp_blocktime,batch_size,max_batch_delay,
 * allocator,omp,repeats,spread,seconds,status.  RFC 4180: a cell holding a
 * comma, a quote or a line break is quoted, quotes doubled.
 *
 * Reading back matches a row to the space by pinfer's columns (and
 * use_logical_core and disable_numactl, which say logical_cores and numa):
 * a row whose values the space does not have, whose two halves disagree
 * (someone edited one), or whose numbers do not read is skipped and
 * counted, so that --resume over a changed space keeps what still applies.
 * KMP_BLOCKTIME is read only with Intel OpenMP: without it the knob does
 * nothing, and the configuration is the canonical one (its default).
 *
 * Numbers are written and read in the C locale whatever the caller's is
 * (bench/report.h says why).
 */
#include "bench/report.h"
#include "tune/tune_yaml.h"

#include "base/json.h"
#include "base/util.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NCOLS 19
#define OBJECTIVE_COL 7

static const char *const COLS[NCOLS] = {"ncore_per_instance",
                                        "ninstances",
                                        "use_all_nodes",
                                        "use_logical_core",
                                        "disable_numactl",
                                        "disable_iomp",
                                        "malloc",
                                        NULL,
                                        "split",
                                        "nodes",
                                        "kmp_blocktime",
                                        "batch_size",
                                        "max_batch_delay",
                                        "allocator",
                                        "omp",
                                        "repeats",
                                        "spread",
                                        "seconds",
                                        "status"};

/* pinfer's knob of each column from 8 on that holds one (-1: a trial's figure). */
static const int PF_COLS[NCOLS - OBJECTIVE_COL - 1] = {PF_TUNE_SPLIT,
                                                       PF_TUNE_NODES,
                                                       PF_TUNE_BLOCKTIME,
                                                       PF_TUNE_BATCH_SIZE,
                                                       PF_TUNE_BATCH_DELAY,
                                                       PF_TUNE_ALLOCATOR,
                                                       PF_TUNE_OMP,
                                                       -1,
                                                       -1,
                                                       -1,
                                                       -1};

static const char *value_of(const pf_tune_space *space, const pf_tune_config *config,
                            pf_tune_knob k)
{
    size_t i = config->v[k];
    return space->values[k] && i < space->nvalues[k] ? space->values[k][i] : "";
}

/* An allocator as hypertune's malloc writes it. */
static const char *malloc_of(const char *allocator)
{
    if (strcmp(allocator, "tcmalloc") == 0)
        return "tc";
    if (strcmp(allocator, "jemalloc") == 0)
        return "je";
    return strcmp(allocator, "default") == 0 ? "pt" : "";
}

static const char *py_bool(bool b)
{
    return b ? "True" : "False";
}

/* N and C of "NxC", or false. */
static bool split_of(const char *s, long *n, long *c)
{
    const char *x = strchr(s, 'x');
    return x && pf__parse_int(s, (size_t)(x - s), 1, LONG_MAX, n) == 0 &&
           pf__parse_int(x + 1, strlen(x + 1), 1, LONG_MAX, c) == 0;
}

static void put_cell(pf__buf *b, const char *s, bool first)
{
    if (!first)
        pf__buf_put(b, ",", 1);
    if (!strpbrk(s, ",\"\r\n")) {
        pf__buf_puts(b, s);
        return;
    }
    pf__buf_put(b, "\"", 1);
    for (const char *p = s; *p; p++)
        pf__buf_puts(b, *p == '"' ? "\"\"" : (char[]){*p, '\0'});
    pf__buf_put(b, "\"", 1);
}

static void put_number(pf__buf *b, double v)
{
    char text[PF__DOUBLE_TEXT] = "";
    if (isfinite(v))
        pf__format_double(v, text);
    put_cell(b, text, false);
}

int pf_tune_record_to_csv(const pf_tune_space *space, const char *objective,
                          const pf_tune_trial *trials, size_t n, char **out)
{
    *out = NULL;
    pf__c_numbers locale;
    if (pf__c_numbers_begin(&locale) < 0)
        return -ENOMEM;
    pf__buf b = {0};
    for (int i = 0; i < NCOLS; i++)
        put_cell(&b, COLS[i] ? COLS[i] : objective && *objective ? objective : "objective", i == 0);
    pf__buf_put(&b, "\n", 1);
    for (size_t t = 0; t < n; t++) {
        const pf_tune_config *c = &trials[t].config;
        long ni, nc;
        char ncore[24] = "", ninst[24] = "";
        if (split_of(value_of(space, c, PF_TUNE_SPLIT), &ni, &nc)) {
            snprintf(ncore, sizeof ncore, "%ld", nc);
            snprintf(ninst, sizeof ninst, "%ld", ni);
        }
        put_cell(&b, ncore, true);
        put_cell(&b, ninst, false);
        put_cell(&b, py_bool(strcmp(value_of(space, c, PF_TUNE_NODES), "all") == 0), false);
        put_cell(&b, py_bool(strcmp(value_of(space, c, PF_TUNE_LOGICAL), "on") == 0), false);
        put_cell(&b, py_bool(strcmp(value_of(space, c, PF_TUNE_NUMA), "off") == 0), false);
        put_cell(&b, py_bool(strcmp(value_of(space, c, PF_TUNE_OMP), "default") == 0), false);
        put_cell(&b, malloc_of(value_of(space, c, PF_TUNE_ALLOCATOR)), false);
        put_number(&b, trials[t].value);
        for (int i = 0; i < 7; i++)
            put_cell(&b, value_of(space, c, PF_COLS[i]), false);
        char repeats[16];
        snprintf(repeats, sizeof repeats, "%d", trials[t].repeats);
        put_cell(&b, repeats, false);
        put_number(&b, trials[t].spread);
        put_number(&b, trials[t].seconds);
        put_cell(&b, trials[t].status ? trials[t].status : "", false);
        pf__buf_put(&b, "\n", 1);
    }
    pf__c_numbers_end(&locale);
    return pf__buf_take(&b, out);
}

/* ---- reading record.csv back -------------------------------------------- */

typedef struct csv {
    const char *text;
    size_t len, pos;
} csv;

/*
 * The next row's cells into *cells (their texts malloc'd).  0 and *ok, or
 * *ok false for a malformed row (a quote not closed, text after a closing
 * quote, a NUL byte); -ENOMEM; 1 at the end of the text.  A quote not
 * closed takes the rest of the text: nothing after it can be told apart.
 */
static int next_row(csv *c, pf__strv *cells, bool *ok)
{
    pf__strv_free(cells);
    *ok = true;
    if (c->pos >= c->len)
        return 1;
    enum { START, PLAIN, QUOTED, CLOSED } state = START;
    pf__buf cell = {0};
    int rc = 0;
    for (;;) {
        bool end = c->pos >= c->len;
        char ch = end ? '\n' : c->text[c->pos++];
        if (state == QUOTED) {
            if (end) {
                *ok = false;
                break;
            }
            if (ch == '"' && c->pos < c->len && c->text[c->pos] == '"')
                c->pos++; /* "" is one quote */
            else if (ch == '"') {
                state = CLOSED;
                continue;
            }
        } else if (ch == ',' || ch == '\n' || ch == '\r') {
            char *s = NULL;
            if ((rc = pf__buf_take(&cell, &s)) < 0 || (rc = pf__strv_take(cells, s)) < 0)
                break;
            state = START;
            if (ch == ',')
                continue;
            if (ch == '\r' && c->pos < c->len && c->text[c->pos] == '\n')
                c->pos++;
            break;
        } else if (state == START && ch == '"') {
            state = QUOTED;
            continue;
        } else if (state == CLOSED) {
            *ok = false; /* "a"b: text after a closing quote */
        } else {
            state = PLAIN;
        }
        if (ch == '\0')
            *ok = false;
        pf__buf_put(&cell, &ch, 1);
    }
    pf__buf_free(&cell);
    return rc;
}

static bool blank_row(const pf__strv *cells)
{
    return cells->len == 1 && cells->v[0][0] == '\0';
}

/* The index of a value in the space (canonical first: "02x4" is "2x4"), or -1. */
static long index_of(const pf_tune_space *space, pf_tune_knob k, const char *text)
{
    if (!space->values[k] || space->nvalues[k] == 0)
        return *text ? -1 : 0;
    char canon[PF__TUNE_VALUE_MAX];
    if (pf__tune_value_check(k, text, canon, NULL) < 0)
        return -1;
    for (size_t i = 0; i < space->nvalues[k]; i++)
        if (strcmp(space->values[k][i], canon) == 0)
            return (long)i;
    return -1;
}

static int bool_of(const char *s)
{
    if (!strcmp(s, "True") || !strcmp(s, "true"))
        return 1;
    if (!strcmp(s, "False") || !strcmp(s, "false"))
        return 0;
    return -1;
}

/* A number cell: empty is NAN; else all of it a finite number. */
static bool number_of(const char *s, double *out)
{
    if (!*s) {
        *out = NAN;
        return true;
    }
    char *end;
    *out = strtod(s, &end);
    return *end == '\0' && isfinite(*out) && s[0] != ' ';
}

/* One row as a trial: false when it does not fit the space. */
static bool row_trial(const pf_tune_space *space, char **cell, pf_tune_trial *t)
{
    memset(t, 0, sizeof *t);
    static const char *const LOGICAL[] = {"off", "on"}, *const NUMA[] = {"bind", "off"};
    int logical = bool_of(cell[3]), numa_off = bool_of(cell[4]);
    if (logical < 0 || numa_off < 0)
        return false;
    long idx[PF_TUNE_NKNOBS];
    idx[PF_TUNE_LOGICAL] = index_of(space, PF_TUNE_LOGICAL, LOGICAL[logical]);
    idx[PF_TUNE_NUMA] = index_of(space, PF_TUNE_NUMA, NUMA[numa_off]);
    for (int i = 0; i < 7; i++)
        idx[PF_COLS[i]] = index_of(space, PF_COLS[i], cell[OBJECTIVE_COL + 1 + i]);
    const char *omp = NULL;
    if (idx[PF_TUNE_OMP] >= 0 && space->values[PF_TUNE_OMP])
        omp = space->values[PF_TUNE_OMP][idx[PF_TUNE_OMP]];
    bool intel = omp && strcmp(omp, "intel") == 0;
    if (!intel)
        idx[PF_TUNE_BLOCKTIME] = (long)space->defaults[PF_TUNE_BLOCKTIME];
    for (int k = 0; k < PF_TUNE_NKNOBS; k++) {
        if (idx[k] < 0)
            return false;
        t->config.v[k] = (size_t)idx[k];
    }
    /* hypertune's half must say what pinfer's says. */
    long n, c, hn, hc;
    const char *split = value_of(space, &t->config, PF_TUNE_SPLIT);
    if (*split || *cell[0] || *cell[1]) {
        if (!split_of(split, &n, &c) || pf__parse_int(cell[0], strlen(cell[0]), 1, LONG_MAX, &hc) ||
            pf__parse_int(cell[1], strlen(cell[1]), 1, LONG_MAX, &hn) || hn != n || hc != c)
            return false;
    }
    int all_nodes = bool_of(cell[2]), no_iomp = bool_of(cell[5]);
    if (all_nodes != (strcmp(value_of(space, &t->config, PF_TUNE_NODES), "all") == 0) ||
        no_iomp != (strcmp(value_of(space, &t->config, PF_TUNE_OMP), "default") == 0) ||
        strcmp(cell[6], malloc_of(value_of(space, &t->config, PF_TUNE_ALLOCATOR))) != 0)
        return false;
    long repeats;
    if (!number_of(cell[OBJECTIVE_COL], &t->value) || !number_of(cell[16], &t->spread) ||
        !number_of(cell[17], &t->seconds) ||
        pf__parse_int(cell[15], strlen(cell[15]), 0, INT_MAX, &repeats) < 0)
        return false;
    t->repeats = (int)repeats;
    return true;
}

static bool header_ok(const pf__strv *cells)
{
    if (cells->len != NCOLS)
        return false;
    for (int i = 0; i < NCOLS; i++)
        if (COLS[i] && strcmp(cells->v[i], COLS[i]) != 0)
            return false;
    return true;
}

int pf_tune_record_parse(const pf_tune_space *space, const char *text, size_t len,
                         pf_tune_trial **trials, size_t *n, size_t *skipped, char **why)
{
    *trials = NULL;
    *n = 0;
    *skipped = 0;
    if (!space || (!text && len))
        return pf__fail(why, -EINVAL, "record.csv: nothing to read");
    csv c = {text, len, 0};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        c.pos = 3; /* a byte-order mark: spreadsheets write one */
    pf__c_numbers locale;
    if (pf__c_numbers_begin(&locale) < 0)
        return -ENOMEM;
    pf__strv cells = {0};
    pf_tune_trial *out = NULL;
    size_t count = 0, cap = 0;
    bool ok, header = false;
    int rc;
    while ((rc = next_row(&c, &cells, &ok)) == 0) {
        if (ok && blank_row(&cells))
            continue;
        if (!header) {
            if (!ok || !header_ok(&cells)) {
                rc = pf__fail(why, -EINVAL,
                              "not a record of pinfer tune: its first line is not the header "
                              "\"ncore_per_instance,ninstances,...,status\" (%d columns)",
                              NCOLS);
                break;
            }
            header = true;
            continue;
        }
        pf_tune_trial t;
        if (!ok || cells.len != NCOLS || !row_trial(space, cells.v, &t)) {
            (*skipped)++;
            continue;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            pf_tune_trial *grown = realloc(out, ncap * sizeof *grown);
            if (!grown) {
                rc = -ENOMEM;
                break;
            }
            out = grown;
            cap = ncap;
        }
        if (!(t.status = strdup(cells.v[18]))) {
            rc = -ENOMEM;
            break;
        }
        out[count++] = t;
    }
    pf__strv_free(&cells);
    pf__c_numbers_end(&locale);
    if (rc < 0) {
        pf_tune_trials_free(out, count);
        *skipped = 0;
        return rc;
    }
    *trials = out;
    *n = count;
    return 0;
}

void pf_tune_trials_free(pf_tune_trial *trials, size_t n)
{
    for (size_t i = 0; trials && i < n; i++)
        free(trials[i].status);
    free(trials);
}

/* ---- tune.json ---------------------------------------------------------- */

/* The default configuration, KMP_BLOCKTIME compared only with Intel OpenMP. */
static bool is_default(const pf_tune_space *space, const pf_tune_config *c)
{
    pf_tune_config d;
    for (int k = 0; k < PF_TUNE_NKNOBS; k++)
        d.v[k] = space->defaults[k];
    bool intel = strcmp(value_of(space, &d, PF_TUNE_OMP), "intel") == 0;
    for (int k = 0; k < PF_TUNE_NKNOBS; k++)
        if (c->v[k] != d.v[k] && (k != PF_TUNE_BLOCKTIME || intel))
            return false;
    return true;
}

int pf_tune_record_to_json(const pf_tune_space *space, const char *objective, bool higher_is_better,
                           const pf_tune_trial *trials, size_t n, long best, bool winner,
                           char **out)
{
    *out = NULL;
    pf__c_numbers locale;
    if (pf__c_numbers_begin(&locale) < 0)
        return -ENOMEM;
    /* The baseline: the first trial of the default configuration that succeeded. */
    long base = -1;
    for (size_t i = 0; i < n && base < 0; i++)
        if (is_default(space, &trials[i].config) && isfinite(trials[i].value))
            base = (long)i;
    double base_value = base >= 0 ? trials[base].value : NAN;
    pf__json w;
    pf__json_init(&w);
    pf__json_begin_object(&w);
    pf__json_key(&w, "objective");
    pf__json_begin_object(&w);
    pf__json_member_string(&w, "name", objective ? objective : "objective");
    pf__json_key(&w, "higher_is_better");
    pf__json_bool(&w, higher_is_better);
    pf__json_end_object(&w);
    pf__json_key(&w, "space");
    pf__json_begin_object(&w);
    for (int k = 0; k < PF_TUNE_NKNOBS; k++) {
        pf__json_key(&w, pf_tune_knob_name(k));
        pf__json_begin_object(&w);
        pf__json_key(&w, "values");
        pf__json_string_array(&w, space->values[k], space->values[k] ? space->nvalues[k] : 0);
        pf__json_key(&w, "default");
        if (space->values[k] && space->defaults[k] < space->nvalues[k])
            pf__json_string(&w, space->values[k][space->defaults[k]]);
        else
            pf__json_null(&w);
        pf__json_end_object(&w);
    }
    pf__json_end_object(&w);
    pf__json_member_int(&w, "default_trial", base);
    pf__json_key(&w, "trials");
    pf__json_begin_array(&w);
    for (size_t i = 0; i < n; i++) {
        const pf_tune_trial *t = &trials[i];
        pf__json_begin_object(&w);
        pf__json_key(&w, "config");
        pf__json_begin_object(&w);
        for (int k = 0; k < PF_TUNE_NKNOBS; k++) {
            const char *v = value_of(space, &t->config, k);
            pf__json_member_string(&w, pf_tune_knob_name(k), *v ? v : NULL);
        }
        pf__json_end_object(&w);
        pf__json_key(&w, "value");
        pf__json_double(&w, t->value);
        pf__json_key(&w, "spread");
        pf__json_double(&w, t->spread);
        pf__json_member_int(&w, "repeats", t->repeats);
        pf__json_key(&w, "seconds");
        pf__json_double(&w, t->seconds);
        pf__json_member_string(&w, "status", t->status);
        pf__json_key(&w, "ratio");
        /* value / the default's: null when either is missing or the default's is 0. */
        if (isfinite(t->value) && isfinite(base_value) && base_value != 0)
            pf__json_double(&w, t->value / base_value);
        else
            pf__json_null(&w);
        pf__json_end_object(&w);
    }
    pf__json_end_array(&w);
    pf__json_member_int(&w, "best", best >= 0 && (size_t)best < n ? best : -1);
    pf__json_key(&w, "winner");
    pf__json_bool(&w, winner && best >= 0 && (size_t)best < n);
    pf__json_end_object(&w);
    pf__c_numbers_end(&locale);
    return pf__json_finish(&w, out);
}
