/*
 * spacefile.c - a search space's values set by hand: pf_tune_space_set()
 * (one knob, checked) and pf_tune_space_load() (a --space file of several,
 * JSON or YAML); and the libyaml helpers conf.c shares (tune_yaml.h).
 *
 * Values are checked strictly and kept in one canonical text, so that two
 * spellings of one value ("02x4", "2x4") cannot both be tried and a record
 * written today matches the space of tomorrow.  The ordered knobs (split,
 * by cores per instance; KMP_BLOCKTIME, batch size and delay, by number)
 * are sorted: the auto strategy walks them as ranges, whatever order a file
 * wrote them in.
 *
 * A --space file is read whole before anything is set: every value of every
 * knob is checked first, so a refused file leaves the space as it was (only
 * running out of memory can stop half-way).
 */
#include "tune/tune_yaml.h"

#include "base/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CORES PF_ID_LIMIT
#define MAX_BLOCKTIME 1000000L /* ms: 1000 s, far beyond any useful spin */
#define MAX_BATCH_SIZE 4096L
#define MAX_BATCH_DELAY 3600000L /* ms: an hour */

/* ---- libyaml's document tree -------------------------------------------- */

int pf__tune_yaml_load(yaml_document_t *doc, const char *text, size_t len, const char *source,
                       char **why)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = 0;
    if (!yaml_parser_load(&parser, doc)) {
        if (parser.error == YAML_MEMORY_ERROR)
            rc = -ENOMEM;
        else
            rc = pf__fail(why, -EINVAL, "%s:%zu: not valid YAML: %s%s%s", source,
                          parser.problem_mark.line + 1, parser.context ? parser.context : "",
                          parser.context ? ", " : "",
                          parser.problem ? parser.problem : "a syntax error");
    }
    yaml_parser_delete(&parser);
    return rc;
}

int pf__tune_yaml_line(const yaml_node_t *node)
{
    size_t line = node->start_mark.line + 1;
    return line > INT32_MAX ? INT32_MAX : (int)line;
}

const char *pf__tune_yaml_scalar(const yaml_node_t *node)
{
    if (!node || node->type != YAML_SCALAR_NODE)
        return NULL;
    const char *s = (const char *)node->data.scalar.value;
    return strlen(s) == node->data.scalar.length ? s : NULL;
}

bool pf__tune_yaml_is_null(const yaml_node_t *node)
{
    if (!node || node->type != YAML_SCALAR_NODE ||
        node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *s = (const char *)node->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

const char *pf__tune_yaml_kind(const yaml_node_t *node)
{
    if (!node)
        return "nothing";
    switch (node->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_SCALAR_NODE:
        if (pf__tune_yaml_is_null(node))
            return "nothing";
        return pf__tune_yaml_scalar(node) ? "a string" : "a string holding a NUL byte";
    default: return "nothing";
    }
}

const yaml_node_t *pf__tune_yaml_repeated_key(yaml_document_t *doc, const yaml_node_t *map)
{
    const yaml_node_pair_t *start = map->data.mapping.pairs.start;
    const yaml_node_pair_t *top = map->data.mapping.pairs.top;
    /* Quadratic, but mappings here have a handful of keys; a fuzzer's long
       one is bounded by the input, and the walk stops at the first repeat. */
    for (const yaml_node_pair_t *p = start; p < top; p++) {
        const yaml_node_t *k = yaml_document_get_node(doc, p->key);
        const char *ks = pf__tune_yaml_scalar(k);
        if (!ks)
            continue;
        for (const yaml_node_pair_t *q = start; q < p; q++) {
            const char *qs = pf__tune_yaml_scalar(yaml_document_get_node(doc, q->key));
            if (qs && strcmp(qs, ks) == 0)
                return k;
        }
    }
    return NULL;
}

/* ---- checking values ---------------------------------------------------- */

/* A value as messages quote it: at most 40 bytes, control characters as '?'. */
static void shown(const char *value, char out[48])
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)value; *p && n < 40; p++)
        out[n++] = *p < 0x20 || *p == 0x7f ? '?' : (char)*p;
    if (strlen(value) > 40) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

static bool one_of(const char *value, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(value, *words) == 0)
            return true;
    return false;
}

int pf__tune_value_check(pf_tune_knob knob, const char *value, char canon[PF__TUNE_VALUE_MAX],
                         char **why)
{
    static const char *const ON_OFF[] = {"on", "off", NULL};
    static const char *const BIND_OFF[] = {"bind", "off", NULL};
    static const char *const ALLOCATORS[] = {"default", "tcmalloc", "jemalloc", NULL};
    static const char *const OMPS[] = {"default", "intel", NULL};
    const char *name = pf_tune_knob_name(knob);
    if (!name)
        return pf__fail(why, -EINVAL, "knob %d: no such knob", (int)knob);
    char q[48];
    shown(value, q);
    size_t len = strlen(value);
    long a, b;
    switch (knob) {
    case PF_TUNE_SPLIT: {
        /* Exactly digits 'x' digits: "2x4", never "2X4" or " 2x4". */
        const char *x = memchr(value, 'x', len);
        if (!x || pf__parse_int(value, (size_t)(x - value), 1, MAX_CORES, &a) < 0 ||
            pf__parse_int(x + 1, len - (size_t)(x - value) - 1, 1, MAX_CORES, &b) < 0)
            return pf__fail(why, -EINVAL,
                            "%s: '%s' is not NxC (N instances x C cores per instance, whole "
                            "numbers >= 1: \"2x4\")",
                            name, q);
        snprintf(canon, PF__TUNE_VALUE_MAX, "%ldx%ld", a, b);
        return 0;
    }
    case PF_TUNE_LOGICAL:
        if (!one_of(value, ON_OFF))
            return pf__fail(why, -EINVAL, "%s: '%s' is not on or off", name, q);
        break;
    case PF_TUNE_NODES:
        if (strcmp(value, "all") == 0)
            break;
        if (pf__parse_int(value, len, 0, PF_ID_LIMIT - 1, &a) < 0)
            return pf__fail(why, -EINVAL, "%s: '%s' is not all or a NUMA node id", name, q);
        snprintf(canon, PF__TUNE_VALUE_MAX, "%ld", a);
        return 0;
    case PF_TUNE_NUMA:
        if (!one_of(value, BIND_OFF))
            return pf__fail(why, -EINVAL, "%s: '%s' is not bind or off", name, q);
        break;
    case PF_TUNE_ALLOCATOR:
        if (!one_of(value, ALLOCATORS))
            return pf__fail(why, -EINVAL, "%s: '%s' is not default, tcmalloc or jemalloc", name, q);
        break;
    case PF_TUNE_OMP:
        if (!one_of(value, OMPS))
            return pf__fail(why, -EINVAL, "%s: '%s' is not default or intel", name, q);
        break;
    case PF_TUNE_BLOCKTIME:
    case PF_TUNE_BATCH_SIZE:
    case PF_TUNE_BATCH_DELAY: {
        long lo = knob == PF_TUNE_BATCH_SIZE ? 1 : 0;
        long hi = knob == PF_TUNE_BLOCKTIME    ? MAX_BLOCKTIME
                  : knob == PF_TUNE_BATCH_SIZE ? MAX_BATCH_SIZE
                                               : MAX_BATCH_DELAY;
        if (pf__parse_int(value, len, lo, hi, &a) < 0)
            return pf__fail(why, -EINVAL, "%s: '%s' is not a whole number from %ld to %ld%s", name,
                            q, lo, hi, knob == PF_TUNE_BATCH_SIZE ? "" : " (ms)");
        snprintf(canon, PF__TUNE_VALUE_MAX, "%ld", a);
        return 0;
    }
    default: return pf__fail(why, -EINVAL, "knob %d: no such knob", (int)knob);
    }
    /* A word of a fixed list: shorter than canon. */
    snprintf(canon, PF__TUNE_VALUE_MAX, "%s", value);
    return 0;
}

/* ---- pf_tune_space_set -------------------------------------------------- */

/* The numbers of a canonical value, for sorting: (C, N) of "NxC", else (value, 0). */
static void sort_key(const char *v, long *major, long *minor)
{
    char *end;
    long first = strtol(v, &end, 10);
    if (*end == 'x') {
        *major = strtol(end + 1, NULL, 10);
        *minor = first;
    } else {
        *major = first;
        *minor = 0;
    }
}

static int numeric_cmp(const void *pa, const void *pb)
{
    long a1, a2, b1, b2;
    sort_key(*(char *const *)pa, &a1, &a2);
    sort_key(*(char *const *)pb, &b1, &b2);
    if (a1 != b1)
        return a1 < b1 ? -1 : 1;
    return (a2 > b2) - (a2 < b2);
}

static int text_cmp(const void *pa, const void *pb)
{
    return strcmp(*(char *const *)pa, *(char *const *)pb);
}

static bool ordered(pf_tune_knob knob)
{
    return knob == PF_TUNE_SPLIT || knob == PF_TUNE_BLOCKTIME || knob == PF_TUNE_BATCH_SIZE ||
           knob == PF_TUNE_BATCH_DELAY;
}

static void free_values(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/*
 * The first value repeated in canonical texts, or NULL.  Sorted copy of the
 * pointers: hypertune's all_logical_cores makes lists of thousands.
 */
static const char *repeated(char *const *canon, size_t n, int *err)
{
    *err = 0;
    if (n < 2)
        return NULL;
    char **sorted = malloc(n * sizeof *sorted);
    if (!sorted) {
        *err = -ENOMEM;
        return NULL;
    }
    memcpy(sorted, canon, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, text_cmp);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            dup = sorted[i];
    free(sorted);
    return dup;
}

int pf_tune_space_set(pf_tune_space *space, pf_tune_knob knob, char *const *values, size_t n,
                      char **why)
{
    const char *name = pf_tune_knob_name(knob);
    if (!space || !name)
        return pf__fail(why, -EINVAL, "knob %d: no such knob", (int)knob);
    if (n == 0 || !values)
        return pf__fail(why, -EINVAL, "%s: no values (a knob needs at least one)", name);
    char **canon = calloc(n, sizeof *canon);
    if (!canon)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char text[PF__TUNE_VALUE_MAX];
        if (!values[i])
            rc = pf__fail(why, -EINVAL, "%s: a value is missing", name);
        else if ((rc = pf__tune_value_check(knob, values[i], text, why)) == 0 &&
                 !(canon[i] = strdup(text)))
            rc = -ENOMEM;
    }
    const char *dup = rc == 0 ? repeated(canon, n, &rc) : NULL;
    if (dup) {
        char q[48];
        shown(dup, q);
        rc = pf__fail(why, -EINVAL, "%s: '%s' is repeated", name, q);
    }
    if (rc < 0) {
        free_values(canon, n);
        return rc;
    }
    /* The default: the old default's value if it stays, else the first written. */
    const char *keep = canon[0];
    if (space->values[knob] && space->defaults[knob] < space->nvalues[knob])
        for (size_t i = 0; i < n; i++)
            if (strcmp(canon[i], space->values[knob][space->defaults[knob]]) == 0)
                keep = canon[i];
    if (ordered(knob))
        qsort(canon, n, sizeof *canon, numeric_cmp);
    size_t def = 0;
    for (size_t i = 0; i < n; i++)
        if (canon[i] == keep)
            def = i;
    free_values(space->values[knob], space->nvalues[knob]);
    space->values[knob] = canon;
    space->nvalues[knob] = n;
    space->defaults[knob] = def;
    return 0;
}

/* ---- pf_tune_space_load ------------------------------------------------- */

#define KNOBS_LIST                                                                   \
    "split, logical_cores, nodes, numa, allocator, omp, kmp_blocktime, batch_size, " \
    "max_batch_delay"

/* One knob of a file: its values as written (not yet canonical) and where. */
typedef struct entry {
    char **values;
    size_t n;
    int line; /* 0: unknown */
} entry;

typedef struct loader {
    const char *source;
    entry knobs[PF_TUNE_NKNOBS];
    bool seen[PF_TUNE_NKNOBS];
    char **why;
} loader;

static void loader_free(loader *l)
{
    for (int k = 0; k < PF_TUNE_NKNOBS; k++)
        free_values(l->knobs[k].values, l->knobs[k].n);
}

/* "SOURCE:LINE: " or "SOURCE: " when the line is unknown. */
static int fail_at(loader *l, int line, int code, const char *what)
{
    if (line > 0)
        return pf__fail(l->why, code, "%s:%d: %s", l->source, line, what ? what : "");
    return pf__fail(l->why, code, "%s: %s", l->source, what ? what : "");
}

/* The knob of a key, or -EINVAL naming it. */
static int knob_of_key(loader *l, const char *key, int line)
{
    int k = key ? pf_tune_knob_of(key) : -1;
    if (k < 0) {
        char q[48], *msg;
        shown(key ? key : "", q);
        msg = pf__strdupf("unknown knob '%s' (the knobs: " KNOBS_LIST ")", q);
        int rc = msg ? fail_at(l, line, -EINVAL, msg) : -ENOMEM;
        free(msg);
        return rc;
    }
    if (l->seen[k]) {
        char *msg = pf__strdupf("%s: repeated", pf_tune_knob_name(k));
        int rc = msg ? fail_at(l, line, -EINVAL, msg) : -ENOMEM;
        free(msg);
        return rc;
    }
    l->seen[k] = true;
    l->knobs[k].line = line;
    return k;
}

static int not_a_list(loader *l, int k, int line, const char *kind)
{
    char *msg = pf__strdupf("%s: a list of values is expected ([\"a\", \"b\"]), not %s",
                            pf_tune_knob_name(k), kind);
    int rc = msg ? fail_at(l, line, -EINVAL, msg) : -ENOMEM;
    free(msg);
    return rc;
}

/* Check every value, with the line each was written on (0: the knob's). */
static int check_entry(loader *l, int k, const int *lines)
{
    entry *e = &l->knobs[k];
    char **canon = calloc(e->n ? e->n : 1, sizeof *canon);
    if (!canon)
        return -ENOMEM;
    int rc = 0;
    char *sub = NULL;
    if (e->n == 0) {
        sub = pf__strdupf("%s: no values (a knob needs at least one)", pf_tune_knob_name(k));
        rc = sub ? fail_at(l, e->line, -EINVAL, sub) : -ENOMEM;
    }
    for (size_t i = 0; i < e->n && rc == 0; i++) {
        char text[PF__TUNE_VALUE_MAX];
        if ((rc = pf__tune_value_check(k, e->values[i], text, &sub)) < 0)
            rc = fail_at(l, lines && lines[i] ? lines[i] : e->line, rc, sub);
        else if (!(canon[i] = strdup(text)))
            rc = -ENOMEM;
        free(sub);
        sub = NULL;
    }
    for (size_t i = 1; i < e->n && rc == 0; i++)
        for (size_t j = 0; j < i && rc == 0; j++)
            if (strcmp(canon[i], canon[j]) == 0) {
                char q[48];
                shown(e->values[i], q);
                sub = pf__strdupf("%s: '%s' is repeated", pf_tune_knob_name(k), q);
                rc = sub ? fail_at(l, lines && lines[i] ? lines[i] : e->line, -EINVAL, sub)
                         : -ENOMEM;
                free(sub);
                sub = NULL;
            }
    free(sub);
    free_values(canon, e->n);
    return rc;
}

/* The line of `"key"` followed by ':' in a JSON text (jansson keeps no positions), or 0. */
static int json_key_line(const char *text, size_t len, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i + klen + 2 <= len; i++) {
        if (text[i] != '"' || memcmp(text + i + 1, key, klen) != 0 || text[i + 1 + klen] != '"')
            continue;
        size_t j = i + klen + 2;
        while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n'))
            j++;
        if (j < len && text[j] == ':') {
            int line = 1;
            for (size_t p = 0; p < i; p++)
                line += text[p] == '\n';
            return line;
        }
    }
    return 0;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "a number";
    case JSON_REAL: return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static int read_json(loader *l, const char *text, size_t len)
{
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        /* jansson's text may quote the bad input: keep the message one line. */
        for (char *p = err.text; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        return pf__fail(l->why, -EINVAL, "%s:%d: not valid JSON: %s", l->source,
                        err.line > 0 ? err.line : 1, err.text);
    }
    int rc = 0;
    if (!json_is_object(root)) {
        char *msg = pf__strdupf("a JSON object of knobs and their values ({\"split\": "
                                "[\"1x8\", \"2x4\"]}) is expected, not %s",
                                json_kind(root));
        rc = msg ? fail_at(l, 1, -EINVAL, msg) : -ENOMEM;
        free(msg);
    }
    const char *key;
    json_t *list;
    json_object_foreach(root, key, list)
    {
        if (rc < 0)
            break;
        int line = json_key_line(text, len, key);
        int k = rc = knob_of_key(l, key, line);
        if (rc < 0)
            break;
        rc = 0;
        if (!json_is_array(list)) {
            rc = not_a_list(l, k, line, json_kind(list));
            break;
        }
        entry *e = &l->knobs[k];
        size_t n = json_array_size(list);
        if (n && !(e->values = calloc(n, sizeof *e->values))) {
            rc = -ENOMEM;
            break;
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            json_t *v = json_array_get(list, i);
            char *s = NULL;
            if (json_is_string(v))
                s = strdup(json_string_value(v));
            else if (json_is_integer(v))
                s = pf__strdupf("%lld", (long long)json_integer_value(v));
            else if (json_is_boolean(v) && k == PF_TUNE_LOGICAL)
                s = strdup(json_is_true(v) ? "on" : "off");
            else {
                char *msg = pf__strdupf("%s: a value is a string or a whole number, not %s",
                                        pf_tune_knob_name(k), json_kind(v));
                rc = msg ? fail_at(l, line, -EINVAL, msg) : -ENOMEM;
                free(msg);
                break;
            }
            if (!s)
                rc = -ENOMEM;
            else
                e->values[e->n++] = s;
        }
        if (rc == 0)
            rc = check_entry(l, k, NULL);
    }
    json_decref(root);
    return rc;
}

/* YAML's booleans (1.1, as PyYAML reads them) for logical_cores: on / off. */
static const char *yaml_bool(const yaml_node_t *node)
{
    static const char *const YES[] = {"true", "True", "TRUE", "yes", "Yes", "YES", NULL};
    static const char *const NO[] = {"false", "False", "FALSE", "no", "No", "NO", NULL};
    const char *s = pf__tune_yaml_scalar(node);
    if (!s || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return NULL;
    return one_of(s, YES) ? "on" : one_of(s, NO) ? "off" : NULL;
}

static int read_yaml_list(loader *l, yaml_document_t *doc, int k, const yaml_node_t *list)
{
    entry *e = &l->knobs[k];
    size_t n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    int *lines = calloc(n ? n : 1, sizeof *lines);
    if (!lines || (n && !(e->values = calloc(n, sizeof *e->values)))) {
        free(lines);
        return -ENOMEM;
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const yaml_node_t *v = yaml_document_get_node(doc, list->data.sequence.items.start[i]);
        const char *s = k == PF_TUNE_LOGICAL && yaml_bool(v) ? yaml_bool(v) : NULL;
        if (!s)
            s = pf__tune_yaml_scalar(v);
        if (!s || pf__tune_yaml_is_null(v)) {
            char *msg = pf__strdupf("%s: a value is a string or a whole number, not %s",
                                    pf_tune_knob_name(k), pf__tune_yaml_kind(v));
            rc = msg ? fail_at(l, v ? pf__tune_yaml_line(v) : e->line, -EINVAL, msg) : -ENOMEM;
            free(msg);
            break;
        }
        lines[i] = pf__tune_yaml_line(v);
        if (!(e->values[e->n++] = strdup(s)))
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = check_entry(l, k, lines);
    free(lines);
    return rc;
}

static int read_yaml(loader *l, const char *text, size_t len)
{
    yaml_document_t doc;
    int rc = pf__tune_yaml_load(&doc, text, len, l->source, l->why);
    if (rc < 0)
        return rc;
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE) {
        char *msg = pf__strdupf("a mapping of knobs to lists of values (split: [1x8, 2x4]) is "
                                "expected, not %s",
                                pf__tune_yaml_kind(root));
        rc = msg ? fail_at(l, root ? pf__tune_yaml_line(root) : 1, -EINVAL, msg) : -ENOMEM;
        free(msg);
        yaml_document_delete(&doc);
        return rc;
    }
    for (const yaml_node_pair_t *p = root->data.mapping.pairs.start;
         p < root->data.mapping.pairs.top && rc == 0; p++) {
        const yaml_node_t *key = yaml_document_get_node(&doc, p->key);
        const yaml_node_t *value = yaml_document_get_node(&doc, p->value);
        int line = pf__tune_yaml_line(key);
        int k = rc = knob_of_key(l, pf__tune_yaml_scalar(key), line);
        if (rc < 0)
            break;
        rc = 0;
        if (!value || value->type != YAML_SEQUENCE_NODE)
            rc = not_a_list(l, k, line, pf__tune_yaml_kind(value));
        else
            rc = read_yaml_list(l, &doc, k, value);
    }
    yaml_document_delete(&doc);
    return rc;
}

/* JSON by name (.json), else by its first character ('{' or '['); YAML otherwise. */
static bool is_json(const char *text, size_t len, const char *source)
{
    size_t n = strlen(source);
    if (n >= 5 && strcmp(source + n - 5, ".json") == 0)
        return true;
    if ((n >= 5 && strcmp(source + n - 5, ".yaml") == 0) ||
        (n >= 4 && strcmp(source + n - 4, ".yml") == 0))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')
            continue;
        return text[i] == '{' || text[i] == '[';
    }
    return false;
}

int pf_tune_space_load(pf_tune_space *space, const char *text, size_t len, const char *source,
                       char **why)
{
    if (!source)
        source = "--space";
    if (!space || (!text && len))
        return pf__fail(why, -EINVAL, "%s: nothing to read", source);
    loader l = {.source = source, .why = why};
    int rc = is_json(text ? text : "", len, source) ? read_json(&l, text, len)
                                                    : read_yaml(&l, text ? text : "", len);
    /* Everything checked: now set, in knob order. */
    for (int k = 0; k < PF_TUNE_NKNOBS && rc == 0; k++)
        if (l.seen[k])
            rc = pf_tune_space_set(space, k, l.knobs[k].values, l.knobs[k].n, why);
    loader_free(&l);
    return rc;
}
