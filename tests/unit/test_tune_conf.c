/*
 * test_tune_conf.c - pinfer tune's files (src/tune/): values set by hand and
 * --space files (spacefile.c), IPEX hypertune's YAML configuration
 * (conf.c) and objective lines (hypertune.c), record.csv and tune.json
 * (record.c).
 *
 * Spaces are built by hand here (space_make): the default space of a
 * machine is another file's business and is not called.  Hypertune's
 * configurations are read on synthetic topologies, so that P (physical
 * cores), SMT and the node count are known: "pack:2 numa:1 core:4 pu:2" has
 * 8 cores, 16 CPUs and 2 nodes.
 */
#include "pf_test.h"

#include "base/util.h"

#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <unistd.h>

#define TOPO_2N_SMT "synthetic:pack:2 numa:1 core:4 pu:2"
#define TOPO_1N "synthetic:pack:1 core:4 pu:1"

/* ---- spaces built by hand -------------------------------------------------- */

/*
 * A space from one text per knob: values separated by spaces, the default
 * marked with a leading '*' (else the first).  Allocated as
 * pf_tune_space_free() frees: each string and each array with malloc.
 */
static pf_tune_space *space_make(const char *const lists[PF_TUNE_NKNOBS])
{
    pf_tune_space *s = calloc(1, sizeof *s);
    assert_non_null(s);
    for (int k = 0; k < PF_TUNE_NKNOBS; k++) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s", lists[k]);
        s->values[k] = calloc(64, sizeof(char *));
        assert_non_null(s->values[k]);
        for (char *save = NULL, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
            if (*w == '*') {
                s->defaults[k] = s->nvalues[k];
                w++;
            }
            s->values[k][s->nvalues[k]++] = strdup(w);
        }
    }
    return s;
}

/* The space most tests use: 8 cores, two nodes, every library found. */
static pf_tune_space *space_standard(void)
{
    static const char *const LISTS[PF_TUNE_NKNOBS] = {
        "8x1 4x2 2x4 *1x8", "*off on",  "*all 0", "*bind off", "*default tcmalloc jemalloc",
        "default *intel",   "0 1 *200", "*1",     "*100"};
    return space_make(LISTS);
}

static void space_free(pf_tune_space *s)
{
    if (!s)
        return;
    for (int k = 0; k < PF_TUNE_NKNOBS; k++) {
        for (size_t i = 0; i < s->nvalues[k]; i++)
            free(s->values[k][i]);
        free(s->values[k]);
    }
    free(s);
}

/* A knob's values as one text, the default starred: "8x1 4x2 *1x8". */
static const char *values_text(const pf_tune_space *s, pf_tune_knob k)
{
    static char buf[2048];
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s->nvalues[k]; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s%s", i ? " " : "",
                              i == s->defaults[k] ? "*" : "", s->values[k][i]);
    return buf;
}

#define assert_values(s, k, text) assert_string_equal(values_text(s, k), text)

/* ---- pf_tune_space_set ------------------------------------------------------- */

static int set_list(pf_tune_space *s, pf_tune_knob k, const char *list, char **why)
{
    char buf[512], *v[32];
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w && n < 32;
         w = strtok_r(NULL, " ", &save))
        v[n++] = w;
    return pf_tune_space_set(s, k, v, n, why);
}

static void test_space_set_good(void **state)
{
    (void)state;
    pf_tune_space *s = space_standard();
    /* The old default stays the default; ordered knobs are sorted (split by C, then N). */
    assert_int_equal(set_list(s, PF_TUNE_SPLIT, "1x8 8x1 2x4 02x2", NULL), 0);
    assert_values(s, PF_TUNE_SPLIT, "8x1 2x2 2x4 *1x8");
    /* The old default gone: the first written, wherever sorting puts it. */
    assert_int_equal(set_list(s, PF_TUNE_SPLIT, "4x2 1x1", NULL), 0);
    assert_values(s, PF_TUNE_SPLIT, "1x1 *4x2");
    assert_int_equal(set_list(s, PF_TUNE_LOGICAL, "on", NULL), 0);
    assert_values(s, PF_TUNE_LOGICAL, "*on");
    assert_int_equal(set_list(s, PF_TUNE_NODES, "1 all 007", NULL), 0);
    assert_values(s, PF_TUNE_NODES, "1 *all 7");
    assert_int_equal(set_list(s, PF_TUNE_NUMA, "off bind", NULL), 0);
    assert_values(s, PF_TUNE_NUMA, "off *bind");
    assert_int_equal(set_list(s, PF_TUNE_ALLOCATOR, "jemalloc tcmalloc", NULL), 0);
    assert_values(s, PF_TUNE_ALLOCATOR, "*jemalloc tcmalloc");
    assert_int_equal(set_list(s, PF_TUNE_OMP, "intel default", NULL), 0);
    assert_values(s, PF_TUNE_OMP, "*intel default");
    assert_int_equal(set_list(s, PF_TUNE_BLOCKTIME, "1000000 200 0", NULL), 0);
    assert_values(s, PF_TUNE_BLOCKTIME, "0 *200 1000000");
    assert_int_equal(set_list(s, PF_TUNE_BATCH_SIZE, "16 4096 1 8", NULL), 0);
    assert_values(s, PF_TUNE_BATCH_SIZE, "*1 8 16 4096");
    assert_int_equal(set_list(s, PF_TUNE_BATCH_DELAY, "3600000 0 5", NULL), 0);
    assert_values(s, PF_TUNE_BATCH_DELAY, "0 5 *3600000");
    space_free(s);

    /* A zeroed space (no old values): the first written is the default. */
    pf_tune_space empty;
    memset(&empty, 0, sizeof empty);
    assert_int_equal(set_list(&empty, PF_TUNE_OMP, "intel default", NULL), 0);
    assert_values(&empty, PF_TUNE_OMP, "*intel default");
    free(empty.values[PF_TUNE_OMP][0]);
    free(empty.values[PF_TUNE_OMP][1]);
    free(empty.values[PF_TUNE_OMP]);
}

static void test_space_set_bad(void **state)
{
    (void)state;
    static const struct {
        pf_tune_knob knob;
        const char *list;
        const char *why;
    } CASES[] = {
        {PF_TUNE_SPLIT, "2X4",
         "split: '2X4' is not NxC (N instances x C cores per instance, whole numbers >= 1: "
         "\"2x4\")"},
        {PF_TUNE_SPLIT, "0x4", NULL},
        {PF_TUNE_SPLIT, "2x0", NULL},
        {PF_TUNE_SPLIT, "2x", NULL},
        {PF_TUNE_SPLIT, "x4", NULL},
        {PF_TUNE_SPLIT, "2x4x1", NULL},
        {PF_TUNE_SPLIT, "-2x4", NULL},
        {PF_TUNE_SPLIT, "+2x4", NULL},
        {PF_TUNE_SPLIT, "2x4 02x4", "split: '2x4' is repeated"},
        {PF_TUNE_LOGICAL, "yes", "logical_cores: 'yes' is not on or off"},
        {PF_TUNE_LOGICAL, "On", NULL},
        {PF_TUNE_NODES, "any", "nodes: 'any' is not all or a NUMA node id"},
        {PF_TUNE_NODES, "-1", NULL},
        {PF_TUNE_NODES, "0 0", "nodes: '0' is repeated"},
        {PF_TUNE_NUMA, "on", "numa: 'on' is not bind or off"},
        {PF_TUNE_ALLOCATOR, "mimalloc",
         "allocator: 'mimalloc' is not default, tcmalloc or jemalloc"},
        {PF_TUNE_OMP, "gnu", "omp: 'gnu' is not default or intel"},
        {PF_TUNE_BLOCKTIME, "infinite",
         "kmp_blocktime: 'infinite' is not a whole number from 0 to 1000000 (ms)"},
        {PF_TUNE_BLOCKTIME, "1000001", NULL},
        {PF_TUNE_BLOCKTIME, "1.5", NULL},
        {PF_TUNE_BATCH_SIZE, "0", "batch_size: '0' is not a whole number from 1 to 4096"},
        {PF_TUNE_BATCH_SIZE, "4097", NULL},
        {PF_TUNE_BATCH_DELAY, "3600001",
         "max_batch_delay: '3600001' is not a whole number from 0 to 3600000 (ms)"},
        {PF_TUNE_BATCH_DELAY, "", "max_batch_delay: no values (a knob needs at least one)"},
    };
    pf_tune_space *s = space_standard();
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        char *why = NULL;
        int rc = set_list(s, CASES[i].knob, CASES[i].list, &why);
        if (rc != -EINVAL || !why)
            fail_msg("case %zu (%s): rc %d", i, CASES[i].list, rc);
        if (CASES[i].why && strcmp(why, CASES[i].why) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, why, CASES[i].why);
        free(why);
    }
    /* Nothing changed. */
    assert_values(s, PF_TUNE_SPLIT, "8x1 4x2 2x4 *1x8");
    assert_values(s, PF_TUNE_BATCH_DELAY, "*100");
    /* A control character is not printed; a long value is cut short. */
    char *why = NULL;
    char *odd[] = {"a\nb"};
    assert_int_equal(pf_tune_space_set(s, PF_TUNE_OMP, odd, 1, &why), -EINVAL);
    assert_string_equal(why, "omp: 'a?b' is not default or intel");
    free(why);
    char *none[] = {NULL};
    assert_int_equal(pf_tune_space_set(s, PF_TUNE_OMP, none, 1, &why), -EINVAL);
    free(why);
    assert_int_equal(pf_tune_space_set(s, (pf_tune_knob)PF_TUNE_NKNOBS, odd, 1, &why), -EINVAL);
    assert_string_equal(why, "knob 9: no such knob");
    free(why);
    space_free(s);
}

/* ---- pf_tune_space_load ------------------------------------------------------ */

static int load(pf_tune_space *s, const char *text, const char *source, char **why)
{
    return pf_tune_space_load(s, text, strlen(text), source, why);
}

static void test_space_load_json(void **state)
{
    (void)state;
    pf_tune_space *s = space_standard();
    const char *doc = "{\n"
                      "  \"split\": [\"1x8\", \"2x4\"],\n"
                      "  \"allocator\": [\"jemalloc\"],\n"
                      "  \"batch-size\": [1, 4],\n"
                      "  \"logical_cores\": [true, false],\n"
                      "  \"kmp_blocktime\": [\"0\", 1]\n"
                      "}\n";
    char *why = NULL;
    assert_int_equal(load(s, doc, "space.json", &why), 0);
    assert_null(why);
    assert_values(s, PF_TUNE_SPLIT, "2x4 *1x8");
    assert_values(s, PF_TUNE_ALLOCATOR, "*jemalloc");
    assert_values(s, PF_TUNE_BATCH_SIZE, "*1 4");
    assert_values(s, PF_TUNE_LOGICAL, "on *off");
    assert_values(s, PF_TUNE_BLOCKTIME, "*0 1");
    assert_values(s, PF_TUNE_OMP, "default *intel"); /* not in the file: as it was */
    /* An empty object changes nothing; a file without a name is told by its '{'. */
    assert_int_equal(load(s, "  {}", "--space", &why), 0);
    assert_values(s, PF_TUNE_SPLIT, "2x4 *1x8");
    space_free(s);
}

static void test_space_load_yaml(void **state)
{
    (void)state;
    pf_tune_space *s = space_standard();
    const char *doc = "# the space to search\n"
                      "split: [1x8, 2x4, 8x1]\n"
                      "omp:\n"
                      "  - intel\n"
                      "logical_cores: [on, False]\n"
                      "max_batch_delay: [5, '20', \"100\"]\n";
    char *why = NULL;
    assert_int_equal(load(s, doc, "space.yaml", &why), 0);
    assert_null(why);
    assert_values(s, PF_TUNE_SPLIT, "8x1 2x4 *1x8");
    assert_values(s, PF_TUNE_OMP, "*intel");
    assert_values(s, PF_TUNE_LOGICAL, "on *off");
    assert_values(s, PF_TUNE_BATCH_DELAY, "5 20 *100");
    /* A flow mapping in a file named .yml is YAML. */
    assert_int_equal(load(s, "{nodes: [all]}", "s.yml", &why), 0);
    assert_values(s, PF_TUNE_NODES, "*all");
    space_free(s);
}

static void test_space_load_errors(void **state)
{
    (void)state;
    static const struct {
        const char *source, *text, *why;
    } CASES[] = {
        /* JSON */
        {"s.json", "{\"split\": [\"1x8\"],\n \"spilt\": [\"2x4\"]}",
         "s.json:2: unknown knob 'spilt' (the knobs: split, logical_cores, nodes, numa, "
         "allocator, omp, kmp_blocktime, batch_size, max_batch_delay)"},
        {"s.json", "{\n\"allocator\": \"jemalloc\"}",
         "s.json:2: allocator: a list of values is expected ([\"a\", \"b\"]), not a string"},
        {"s.json", "{\"split\": [\"1x8\",\n \"2x9x\"]}",
         "s.json:1: split: '2x9x' is not NxC (N instances x C cores per instance, whole numbers "
         ">= 1: \"2x4\")"},
        {"s.json", "{\"batch_size\": [1.5]}",
         "s.json:1: batch_size: a value is a string or a whole number, not a number with a "
         "fraction"},
        {"s.json", "{\"omp\": [true]}",
         "s.json:1: omp: a value is a string or a whole number, not a boolean"},
        {"s.json", "{\"omp\": []}", "s.json:1: omp: no values (a knob needs at least one)"},
        {"s.json", "{\"omp\": [\"intel\", \"intel\"]}", "s.json:1: omp: 'intel' is repeated"},
        {"s.json", "{\n\n\"omp\": [\"intel\",]}", NULL},
        {"s.json", "{\"omp\": [\"intel\"], \"omp\": [\"default\"]}", NULL},
        {"s.json", "[\"split\"]",
         "s.json:1: a JSON object of knobs and their values ({\"split\": [\"1x8\", \"2x4\"]}) is "
         "expected, not a list"},
        {"--space", "{\"nodes\": [-1]}", "--space:1: nodes: '-1' is not all or a NUMA node id"},
        /* YAML */
        {"s.yaml", "split: [1x8]\nomp: [intel]\nomp: [default]\n", "s.yaml:3: omp: repeated"},
        {"s.yaml", "split:\n  - 1x8\n  - 2x4\n  - 1x8\n", "s.yaml:4: split: '1x8' is repeated"},
        {"s.yaml", "split:\n  - 1x8\n  - 1y8\n", NULL},
        {"s.yaml", "numa:\n",
         "s.yaml:1: numa: a list of values is expected ([\"a\", \"b\"]), "
         "not nothing"},
        {"s.yaml", "numa: [[bind]]\n",
         "s.yaml:1: numa: a value is a string or a whole number, not a list"},
        {"s.yaml", "numa: [~]\n",
         "s.yaml:1: numa: a value is a string or a whole number, not nothing"},
        {"s.yaml", "",
         "s.yaml:1: a mapping of knobs to lists of values (split: [1x8, 2x4]) is "
         "expected, not nothing"},
        {"s.yaml", "- split\n", NULL},
        {"s.yaml", "\n\nsplit: [1x8\n", NULL},
        {"s.yaml", "{split: [1x8], 3: [1]}", NULL},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        pf_tune_space *s = space_standard();
        char *why = NULL;
        int rc = load(s, CASES[i].text, CASES[i].source, &why);
        if (rc != -EINVAL || !why)
            fail_msg("case %zu: rc %d", i, rc);
        if (CASES[i].why && strcmp(why, CASES[i].why) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, why, CASES[i].why);
        if (strncmp(why, CASES[i].source, strlen(CASES[i].source)) != 0 || strchr(why, '\n'))
            fail_msg("case %zu: not one line naming the file: \"%s\"", i, why);
        /* A refused file changes nothing, even the knobs before the bad one. */
        assert_values(s, PF_TUNE_SPLIT, "8x1 4x2 2x4 *1x8");
        assert_values(s, PF_TUNE_OMP, "default *intel");
        free(why);
        space_free(s);
    }
    /* The lines: JSON's syntax errors, YAML's. */
    pf_tune_space *s = space_standard();
    char *why = NULL;
    assert_int_equal(load(s, "{\n\n\"omp\": [\"intel\",]}", "s.json", &why), -EINVAL);
    assert_non_null(strstr(why, "s.json:3: not valid JSON"));
    free(why);
    assert_int_equal(load(s, "\n\nsplit: [1x8\n", "s.yaml", &why), -EINVAL);
    assert_non_null(strstr(why, "not valid YAML"));
    free(why);
    space_free(s);
}

/* ---- pf_tune_conf_parse ------------------------------------------------------ */

static char *read_fixture(const char *name, size_t *len)
{
    FILE *f = fopen(fixture(name), "rb");
    assert_non_null(f);
    static char buf[65536];
    *len = fread(buf, 1, sizeof buf - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static int conf(const char *topo_source, pf_tune_space *s, const char *text, pf_tune_conf *c,
                char **why)
{
    pf_topology *t = load_fixture(topo_source);
    int rc = pf_tune_conf_parse(text, strlen(text), "h.yaml", t, s, c, why);
    pf_topology_free(t);
    return rc;
}

static size_t nnotes(const pf_tune_conf *c)
{
    size_t n = 0;
    while (c->notes && c->notes[n])
        n++;
    return n;
}

/* The documentation's sample: ncore all_physical_cores x ninstances [1]. */
static void test_conf_sample(void **state)
{
    (void)state;
    size_t len;
    const char *text = read_fixture("hypertune/conf.yaml", &len);
    pf_topology *t = load_fixture(TOPO_2N_SMT);
    pf_tune_space *s = space_standard();
    pf_tune_conf c;
    char *why = NULL;
    assert_int_equal(pf_tune_conf_parse(text, len, "conf.yaml", t, s, &c, &why), 0);
    assert_null(why);
    assert_int_equal(c.strategy, PF_TUNE_GRID);
    assert_int_equal(c.max_trials, 100);
    assert_string_equal(c.output_dir, "/path/to/dir");
    assert_null(c.notes);
    assert_values(s, PF_TUNE_SPLIT, "1x1 1x2 1x3 1x4 1x5 1x6 1x7 *1x8");
    /* The knobs not in hp: hypertune's defaults. */
    assert_values(s, PF_TUNE_NODES, "*all");
    assert_values(s, PF_TUNE_LOGICAL, "*off");
    assert_values(s, PF_TUNE_NUMA, "*bind");
    assert_values(s, PF_TUNE_OMP, "*intel");
    assert_values(s, PF_TUNE_ALLOCATOR, "*tcmalloc");
    /* pinfer's own: as they were. */
    assert_values(s, PF_TUNE_BLOCKTIME, "0 1 *200");
    assert_values(s, PF_TUNE_BATCH_SIZE, "*1");
    pf_tune_conf_clear(&c);
    assert_null(c.output_dir);
    assert_int_equal(c.strategy, -1);
    pf_tune_conf_clear(&c); /* twice */
    pf_tune_conf_clear(NULL);
    space_free(s);
    pf_topology_free(t);
}

/* hypertune's example.yaml: every knob, the ncores_per_instance spelling. */
static void test_conf_example(void **state)
{
    (void)state;
    size_t len;
    const char *text = read_fixture("hypertune/example.yaml", &len);
    pf_tune_space *s = space_standard();
    pf_tune_conf c;
    char *why = NULL;
    assert_int_equal(conf(TOPO_2N_SMT, s, text, &c, &why), 0);
    assert_int_equal(c.strategy, PF_TUNE_GRID);
    assert_string_equal(c.output_dir, "/tmp/hypertune");
    /* ninstances -1: as many as fit (8 / C); 2x4 twice (-1 and 2) is one value. */
    assert_values(s, PF_TUNE_SPLIT, "1x1 2x1 *8x1 1x2 2x2 4x2 1x4 2x4");
    assert_values(s, PF_TUNE_NODES, "*all 0");
    assert_values(s, PF_TUNE_LOGICAL, "on *off");
    assert_values(s, PF_TUNE_NUMA, "off *bind");
    assert_values(s, PF_TUNE_OMP, "default *intel");
    assert_values(s, PF_TUNE_ALLOCATOR, "tcmalloc jemalloc *default");
    assert_null(c.notes);
    pf_tune_conf_clear(&c);
    space_free(s);
}

/* all_logical_cores, all_physical_cores, and the pairs too large. */
static void test_conf_all_cores(void **state)
{
    (void)state;
    pf_tune_space *s = space_standard();
    pf_tune_conf c;
    char *why = NULL;
    const char *text = "hyperparams:\n"
                       "  launcher:\n"
                       "    hp: [ncore_per_instance, ninstances]\n"
                       "    ncore_per_instance: all_logical_cores\n"
                       "    ninstances: [2, -1]\n";
    assert_int_equal(conf(TOPO_2N_SMT, s, text, &c, &why), 0);
    /* C 1..16: with N 2, C <= 4; with N -1, C <= 8 (N = 8 / C). */
    assert_values(s, PF_TUNE_SPLIT, "2x1 8x1 2x2 4x2 2x3 2x4 1x5 1x6 1x7 *1x8");
    assert_int_equal(c.strategy, -1);
    assert_int_equal(c.max_trials, 0);
    assert_null(c.output_dir);
    assert_int_equal(nnotes(&c), 1);
    assert_string_equal(c.notes[0], "h.yaml:4: 20 of the 32 pairs of ninstances and "
                                    "ncore_per_instance left out: they need more than the 8 "
                                    "physical cores");
    pf_tune_conf_clear(&c);

    /* all_physical_cores twice: every pair N x C <= 8. */
    text = "hyperparams:\n"
           "  launcher:\n"
           "    hp: [ncore_per_instance, ninstances]\n"
           "    ncore_per_instance: all_physical_cores\n"
           "    ninstances: all_physical_cores\n";
    assert_int_equal(conf(TOPO_2N_SMT, s, text, &c, &why), 0);
    assert_int_equal(s->nvalues[PF_TUNE_SPLIT], 20);
    assert_int_equal(nnotes(&c), 1);
    assert_non_null(strstr(c.notes[0], "44 of the 64 pairs"));
    pf_tune_conf_clear(&c);

    /* Nothing fits: an error. */
    text = "hyperparams:\n"
           "  launcher:\n"
           "    hp: [ncore_per_instance, ninstances]\n"
           "    ncore_per_instance: [16]\n"
           "    ninstances: [1]\n";
    assert_int_equal(conf(TOPO_2N_SMT, s, text, &c, &why), -EINVAL);
    assert_string_equal(why, "h.yaml:4: no pair of ninstances and ncore_per_instance fits the 8 "
                             "physical cores");
    free(why);
    space_free(s);
}

/* Knobs in hp without a list: hypertune's default search spaces, machine-dependent. */
static void test_conf_default_spaces(void **state)
{
    (void)state;
    const char *text = "hyperparams:\n"
                       "  launcher:\n"
                       "    hp: [ncore_per_instance, ninstances, use_all_nodes, use_logical_core,\n"
                       "         disable_numactl, disable_iomp, malloc]\n";
    pf_tune_space *s = space_standard();
    pf_tune_conf c;
    char *why = NULL;
    assert_int_equal(conf(TOPO_2N_SMT, s, text, &c, &why), 0);
    /* all_logical_cores twice: 16 x 16 pairs, 20 of them fit 8 cores. */
    assert_int_equal(s->nvalues[PF_TUNE_SPLIT], 20);
    assert_values(s, PF_TUNE_NODES, "*all 0");
    assert_values(s, PF_TUNE_LOGICAL, "on *off");
    assert_values(s, PF_TUNE_NUMA, "off *bind");
    assert_values(s, PF_TUNE_OMP, "default *intel");
    assert_values(s, PF_TUNE_ALLOCATOR, "tcmalloc jemalloc *default");
    pf_tune_conf_clear(&c);
    space_free(s);

    /* One node, no SMT: nothing to try for nodes and logical cores. */
    s = space_standard();
    assert_int_equal(conf(TOPO_1N, s, text, &c, &why), 0);
    assert_values(s, PF_TUNE_SPLIT, "*1x1 2x1 3x1 4x1 1x2 2x2 1x3 1x4");
    assert_values(s, PF_TUNE_NODES, "*all");
    assert_values(s, PF_TUNE_LOGICAL, "*off");
    pf_tune_conf_clear(&c);
    space_free(s);
}

/* Notes: a list for a knob not in hp; a library the space did not have. */
static void test_conf_notes(void **state)
{
    (void)state;
    static const char *const LISTS[PF_TUNE_NKNOBS] = {
        "*1x8", "*off", "*all", "*bind", "*default jemalloc", "*default", "*0", "*1", "*100"};
    pf_tune_space *s = space_make(LISTS);
    pf_tune_conf c;
    char *why = NULL;
    const char *text = "tuning:\n"
                       "  strategy: random\n"
                       "  max_trials: 7\n"
                       "hyperparams:\n"
                       "  launcher:\n"
                       "    hp: [malloc]\n"
                       "    malloc: [je, tc]\n"
                       "    ninstances: [2]\n";
    assert_int_equal(conf(TOPO_2N_SMT, s, text, &c, &why), 0);
    assert_int_equal(c.strategy, PF_TUNE_RANDOM);
    assert_int_equal(c.max_trials, 7);
    assert_values(s, PF_TUNE_SPLIT, "*1x8");
    assert_values(s, PF_TUNE_ALLOCATOR, "*jemalloc tcmalloc");
    assert_values(s, PF_TUNE_OMP, "*intel");
    assert_int_equal(nnotes(&c), 3);
    assert_string_equal(c.notes[0], "h.yaml:8: ninstances: not in hp, so not tuned: hypertune's "
                                    "default is used");
    assert_string_equal(c.notes[1], "h.yaml:1: omp intel (disable_iomp False) was not among the "
                                    "space's values: pinfer did not find it here, and its trials "
                                    "may fail");
    assert_string_equal(c.notes[2], "h.yaml:7: allocator tcmalloc (malloc tc) was not among the "
                                    "space's values: pinfer did not find it here, and its trials "
                                    "may fail");
    pf_tune_conf_clear(&c);
    space_free(s);

    /* hyperparams without a launcher: every knob at hypertune's default. */
    s = space_standard();
    assert_int_equal(conf(TOPO_2N_SMT, s, "hyperparams: {}\ntuning:\n", &c, &why), 0);
    assert_values(s, PF_TUNE_SPLIT, "*1x8");
    assert_values(s, PF_TUNE_ALLOCATOR, "*tcmalloc");
    assert_int_equal(c.strategy, -1);
    pf_tune_conf_clear(&c);
    space_free(s);
}

static void test_conf_errors(void **state)
{
    (void)state;
#define HP "hyperparams:\n  launcher:\n    hp: [ninstances]\n"
    static const struct {
        const char *text, *why;
    } CASES[] = {
        {"output_dir: /x\nfoo: 1\n" HP,
         "h.yaml:2: the file: unknown key 'foo' (expected tuning, output_dir, hyperparams)"},
        {"tuning:\n  strategi: grid\n" HP,
         "h.yaml:2: tuning: unknown key 'strategi' (expected strategy, max_trials)"},
        {"hyperparams:\n  launcher:\n    hp: [ninstances]\n  model:\n    hp: []\n",
         "h.yaml:4: hyperparams: unknown key 'model' (expected launcher)"},
        {"hyperparams:\n  launcher:\n    hp: [ninstances]\n    ncore: [1]\n",
         "h.yaml:4: launcher: unknown key 'ncore' (expected hp and the knobs' search spaces: "
         "ncore_per_instance, ninstances, use_all_nodes, use_logical_core, disable_numactl, "
         "disable_iomp, malloc)"},
        {"hyperparams:\n  launcher:\n    hp: [ninstances, cores]\n",
         "h.yaml:3: hp: unknown knob 'cores' (the knobs: ncore_per_instance, ninstances, "
         "use_all_nodes, use_logical_core, disable_numactl, disable_iomp, malloc)"},
        {"hyperparams:\n  launcher:\n    hp: [ninstances, ninstances]\n",
         "h.yaml:3: hp: 'ninstances' is repeated"},
        {"hyperparams:\n  launcher:\n    hp: [ncore_per_instance, ncores_per_instance]\n",
         "h.yaml:3: hp: 'ncores_per_instance' is repeated"},
        {"hyperparams:\n  launcher:\n    hp: [ninstances]\n    ncore_per_instance: [1]\n"
         "    ncores_per_instance: [2]\n",
         "h.yaml:5: launcher: ncore_per_instance is repeated (ncore_per_instance and "
         "ncores_per_instance are one knob)"},
        {"hyperparams:\n  launcher:\n    ninstances: [1]\n",
         "h.yaml:3: launcher: hp (the list of knobs to tune) is missing"},
        {"hyperparams:\n  launcher:\n    hp: ninstances\n",
         "h.yaml:3: hp: a list of the knobs to tune is expected, not a string"},
        {"tuning:\n  strategy: grid\n",
         "h.yaml:1: hyperparams is missing (it is mandatory: hyperparams: {launcher: {hp: "
         "[...]}})"},
        {"", "h.yaml:1: empty: hyperparams is mandatory"},
        {"hyperparams:\n", "h.yaml:1: hyperparams: a mapping is expected, not nothing"},
        {"- hyperparams\n", "h.yaml:1: the file: a mapping is expected, not a list"},
        {"tuning:\n  strategy: bayes\n" HP, "h.yaml:2: tuning: strategy: 'bayes' is not grid or "
                                            "random"},
        {"tuning:\n  max_trials: 0\n" HP,
         "h.yaml:2: tuning: max_trials: '0' is not a whole number from 1 to 1000000000"},
        {"tuning:\n  max_trials: [1]\n" HP,
         "h.yaml:2: tuning: max_trials: a whole number from 1 to 1000000000 is expected, not a "
         "list"},
        {"output_dir: ''\n" HP, "h.yaml:1: output_dir: a folder is expected, not a string"},
        {HP "    ninstances: [0]\n",
         "h.yaml:4: ninstances: '0' is not valid: all_physical_cores, all_logical_cores or a "
         "list of integers (-1 or >= 1) is expected"},
        {HP "    ninstances: [1.5]\n", NULL},
        {HP "    ninstances: [-2]\n", NULL},
        {HP "    ninstances: all_cores\n",
         "h.yaml:4: ninstances: all_physical_cores, all_logical_cores or a list of integers (-1 "
         "or >= 1) is expected, not a string"},
        {HP "    ninstances: [1, 1]\n", "h.yaml:4: ninstances: '1' is repeated"},
        {HP "    ninstances: []\n", "h.yaml:4: ninstances: the list is empty"},
        {HP "    use_all_nodes: [maybe]\n",
         "h.yaml:4: use_all_nodes: 'maybe' is not valid: a list of True / False is expected"},
        {HP "    malloc: [tc, mi]\n",
         "h.yaml:4: malloc: 'mi' is not valid: a list of tc, je, pt is expected"},
        {HP "    malloc:\n      - [tc]\n",
         "h.yaml:5: malloc: an item is a list: a list of tc, je, pt is expected"},
        {"hyperparams:\n  launcher:\n    hp: [ninstances]\n  launcher: {}\n",
         "h.yaml:4: hyperparams: 'launcher' is repeated"},
        {"hyperparams: [\n", NULL},
    };
#undef HP
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        pf_tune_space *s = space_standard();
        pf_tune_conf c;
        char *why = NULL;
        int rc = conf(TOPO_2N_SMT, s, CASES[i].text, &c, &why);
        if (rc != -EINVAL || !why)
            fail_msg("case %zu: rc %d", i, rc);
        if (CASES[i].why && strcmp(why, CASES[i].why) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, why, CASES[i].why);
        if (strncmp(why, "h.yaml:", 7) != 0 || strchr(why, '\n'))
            fail_msg("case %zu: not one line \"h.yaml:LINE: ...\": \"%s\"", i, why);
        /* Nothing kept, nothing changed. */
        assert_null(c.output_dir);
        assert_null(c.notes);
        assert_values(s, PF_TUNE_SPLIT, "8x1 4x2 2x4 *1x8");
        assert_values(s, PF_TUNE_ALLOCATOR, "*default tcmalloc jemalloc");
        free(why);
        space_free(s);
    }
}

/* ---- pf_tune_hypertune_line -------------------------------------------------- */

static void test_hypertune_line(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        int rc;
        const char *name;
        bool higher;
    } CASES[] = {
        {"@hypertune {'name': 'latency (ms)', 'higher_is_better': False, 'target_val': 10}", 1,
         "latency (ms)", false},
        {"@hypertune {'name': 'throughput', 'higher_is_better': True}\n", 1, "throughput", true},
        {"INFO:root: @hypertune {\"name\": \"it's\", \"higher_is_better\": true}", 1, "it's", true},
        {"@hypertune{'name':'a\\'b\\\\c','higher_is_better':1,}", 1, "a'b\\c", true},
        {"@hypertune {'name': 'fps', 'higher_is_better': 0, 'target_val': -1.5e3}\r\n", 1, "fps",
         false},
        {"@hypertune {'target_val': inf, 'name': 'x'}", 1, "x", false},
        {"@hypertune {'name': 'old', 'name': 'new', 'unit': 'ms', 'n': 3, 'o': None}", 1, "new",
         false},
        {"@hypertune { 'name' : 'spaced' , 'higher_is_better' : True } ", 1, "spaced", true},
        {"latency: 12.5", 0, NULL, false},
        {"", 0, NULL, false},
        {"@hyper tune {'name': 'x'}", 0, NULL, false},
        {"@hypertune", -EINVAL, NULL, false},
        {"@hypertune latency", -EINVAL, NULL, false},
        {"@hypertune {'higher_is_better': True}", -EINVAL, NULL, false},
        {"@hypertune {'name': 'x'", -EINVAL, NULL, false},
        {"@hypertune {'name': 'x}", -EINVAL, NULL, false},
        {"@hypertune {'name': 'a\\qb'}", -EINVAL, NULL, false},
        {"@hypertune {'name': 'x'} trailing", -EINVAL, NULL, false},
        {"@hypertune {'name': 'x', 'higher_is_better': maybe}", -EINVAL, NULL, false},
        {"@hypertune {'name': 'x', 'higher_is_better': 1.5}", -EINVAL, NULL, false},
        {"@hypertune {'name': 'x', 'target_val': 'ten'}", -EINVAL, NULL, false},
        {"@hypertune {'name': 'x', 'target_val': 1e}", -EINVAL, NULL, false},
        {"@hypertune {'name': ''}", -EINVAL, NULL, false},
        {"@hypertune {'name': 'a\\nb'}", -EINVAL, NULL, false},
        {"@hypertune {'name': x}", -EINVAL, NULL, false},
        {"@hypertune {name: 'x'}", -EINVAL, NULL, false},
        {"@hypertune {'name' 'x'}", -EINVAL, NULL, false},
        {"@hypertune {'name': 'x' 'y': 1}", -EINVAL, NULL, false},
        {"@hypertune {'name': 'x', 'list': [1]}", -EINVAL, NULL, false},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        char *name = NULL, *why = NULL;
        bool higher = !CASES[i].higher;
        int rc = pf_tune_hypertune_line(CASES[i].line, &name, &higher, &why);
        if (rc != CASES[i].rc)
            fail_msg("case %zu (%s): rc %d, want %d (%s)", i, CASES[i].line, rc, CASES[i].rc,
                     why ? why : "");
        if (rc == 1) {
            assert_string_equal(name, CASES[i].name);
            assert_int_equal(higher, CASES[i].higher);
            assert_null(why);
        } else {
            assert_null(name);
            if (rc < 0 && (!why || strncmp(why, "malformed @hypertune line: ", 27) != 0))
                fail_msg("case %zu: message \"%s\"", i, why ? why : "(none)");
            if (rc == 0)
                assert_null(why);
        }
        free(name);
        free(why);
    }
    char *name = NULL, *why = NULL;
    bool higher;
    assert_int_equal(
        pf_tune_hypertune_line("@hypertune {'higher_is_better': True}", &name, &higher, &why),
        -EINVAL);
    assert_string_equal(why, "malformed @hypertune line: 'name' is missing");
    free(why);
}

/* ---- record.csv -------------------------------------------------------------- */

/* A configuration from value texts ("2x4 on all bind jemalloc intel 1 1 100"). */
static pf_tune_config config_of(const pf_tune_space *s, const char *text)
{
    pf_tune_config c;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    int k = 0;
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        assert_true(k < PF_TUNE_NKNOBS);
        size_t i = 0;
        while (i < s->nvalues[k] && strcmp(s->values[k][i], w) != 0)
            i++;
        if (i == s->nvalues[k])
            fail_msg("%s: no value %s", pf_tune_knob_name(k), w);
        c.v[k++] = i;
    }
    assert_int_equal(k, PF_TUNE_NKNOBS);
    return c;
}

static pf_tune_trial trial(const pf_tune_space *s, const char *config, double value, double spread,
                           int repeats, double seconds, const char *status)
{
    pf_tune_trial t = {config_of(s, config), value, spread, repeats, seconds, (char *)status};
    return t;
}

#define DEFAULT_CONFIG "1x8 off all bind default intel 200 1 100"

static size_t standard_trials(const pf_tune_space *s, pf_tune_trial *t)
{
    size_t n = 0;
    t[n++] = trial(s, DEFAULT_CONFIG, 20.0, 0.01, 3, 12.5, "ok");
    t[n++] = trial(s, "2x4 on 0 off jemalloc intel 1 1 100", 10.0, 0.125, 3, 8.25, "ok");
    t[n++] = trial(s, "8x1 off all bind tcmalloc default 200 1 100", NAN, 0, 1, 0.5, "exit 3");
    t[n++] = trial(s, "4x2 off all bind default default 200 1 100", 25.5, 0, 3, 1.0 / 3,
                   "said \"no\", twice\nthen stopped");
    return n;
}

static void assert_trials_equal(const pf_tune_trial *a, const pf_tune_trial *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < PF_TUNE_NKNOBS; k++)
            if (a[i].config.v[k] != b[i].config.v[k])
                fail_msg("trial %zu: %s %zu, want %zu", i, pf_tune_knob_name(k), a[i].config.v[k],
                         b[i].config.v[k]);
        if (isnan(b[i].value))
            assert_true(isnan(a[i].value));
        else
            assert_true(a[i].value == b[i].value);
        assert_true(a[i].spread == b[i].spread);
        assert_true(a[i].seconds == b[i].seconds);
        assert_int_equal(a[i].repeats, b[i].repeats);
        assert_string_equal(a[i].status, b[i].status);
    }
}

static void test_record_csv(void **state)
{
    (void)state;
    pf_tune_space *s = space_standard();
    pf_tune_trial t[8];
    size_t n = standard_trials(s, t);
    char *csv = NULL;
    assert_int_equal(pf_tune_record_to_csv(s, "latency (ms)", t, n, &csv), 0);
    const char *want =
        "ncore_per_instance,ninstances,use_all_nodes,use_logical_core,disable_numactl,"
        "disable_iomp,malloc,latency (ms),split,nodes,kmp_blocktime,batch_size,max_batch_delay,"
        "allocator,omp,repeats,spread,seconds,status\n"
        "8,1,True,False,False,False,pt,20.0,1x8,all,200,1,100,default,intel,3,0.01,12.5,ok\n"
        "4,2,False,True,True,False,je,10.0,2x4,0,1,1,100,jemalloc,intel,3,0.125,8.25,ok\n"
        "1,8,True,False,False,True,tc,,8x1,all,200,1,100,tcmalloc,default,1,0.0,0.5,exit 3\n"
        "2,4,True,False,False,True,pt,25.5,4x2,all,200,1,100,default,default,3,0.0,"
        "0.3333333333333333,\"said \"\"no\"\", twice\nthen stopped\"\n";
    assert_string_equal(csv, want);

    /* Round trip. */
    pf_tune_trial *back = NULL;
    size_t nback = 0, skipped = 9;
    char *why = NULL;
    assert_int_equal(pf_tune_record_parse(s, csv, strlen(csv), &back, &nback, &skipped, &why), 0);
    assert_null(why);
    assert_int_equal(nback, n);
    assert_int_equal(skipped, 0);
    assert_trials_equal(back, t, n);
    pf_tune_trials_free(back, nback);
    free(csv);

    /* CRLF line ends, a byte-order mark, blank lines, no objective name. */
    assert_int_equal(pf_tune_record_to_csv(s, NULL, t, 2, &csv), 0);
    assert_non_null(strstr(csv, ",malloc,objective,split,"));
    pf__buf b = {0};
    pf__buf_puts(&b, "\xEF\xBB\xBF");
    for (const char *p = csv; *p; p++)
        pf__buf_puts(&b, *p == '\n' ? "\r\n\r\n" : (char[]){*p, 0});
    assert_int_equal(pf_tune_record_parse(s, b.s, b.len, &back, &nback, &skipped, &why), 0);
    assert_int_equal(nback, 2);
    assert_int_equal(skipped, 0);
    assert_trials_equal(back, t, 2);
    pf_tune_trials_free(back, nback);
    pf__buf_free(&b);
    free(csv);

    /* No trial: the header alone; an empty text: no trial either. */
    assert_int_equal(pf_tune_record_to_csv(s, "x", t, 0, &csv), 0);
    assert_int_equal(pf_tune_record_parse(s, csv, strlen(csv), &back, &nback, &skipped, &why), 0);
    assert_int_equal(nback, 0);
    assert_null(back);
    free(csv);
    assert_int_equal(pf_tune_record_parse(s, "", 0, &back, &nback, &skipped, &why), 0);
    assert_int_equal(nback, 0);
    pf_tune_trials_free(NULL, 0);
    space_free(s);
}

#define HEADER                                                                                   \
    "ncore_per_instance,ninstances,use_all_nodes,use_logical_core,disable_numactl,disable_iomp," \
    "malloc,fps,split,nodes,kmp_blocktime,batch_size,max_batch_delay,allocator,omp,repeats,"     \
    "spread,seconds,status\n"
#define GOOD "8,1,True,False,False,False,pt,20.0,1x8,all,200,1,100,default,intel,3,0.01,12.5,ok\n"

static void test_record_skipped(void **state)
{
    (void)state;
    pf_tune_space *s = space_standard();
    const char *text = HEADER GOOD
        /* a split the space does not have */
        "3,2,True,False,False,False,pt,20.0,2x3,all,200,1,100,default,intel,3,0.01,12.5,ok\n"
        /* hypertune's half disagrees with pinfer's: ncore, malloc, use_all_nodes, disable_iomp */
        "4,1,True,False,False,False,pt,20.0,1x8,all,200,1,100,default,intel,3,0.01,12.5,ok\n"
        "8,1,True,False,False,False,tc,20.0,1x8,all,200,1,100,default,intel,3,0.01,12.5,ok\n"
        "8,1,False,False,False,False,pt,20.0,1x8,all,200,1,100,default,intel,3,0.01,12.5,ok\n"
        "8,1,True,False,False,True,pt,20.0,1x8,all,200,1,100,default,intel,3,0.01,12.5,ok\n"
        /* a bool that is not one, a number that is not one */
        "8,1,True,maybe,False,False,pt,20.0,1x8,all,200,1,100,default,intel,3,0.01,12.5,ok\n"
        "8,1,True,False,False,False,pt,20;0,1x8,all,200,1,100,default,intel,3,0.01,12.5,ok\n"
        "8,1,True,False,False,False,pt,inf,1x8,all,200,1,100,default,intel,3,0.01,12.5,ok\n"
        "8,1,True,False,False,False,pt,20.0,1x8,all,200,1,100,default,intel,-3,0.01,12.5,ok\n"
        /* a blocktime the space lacks, with Intel OpenMP */
        "8,1,True,False,False,False,pt,20.0,1x8,all,5,1,100,default,intel,3,0.01,12.5,ok\n"
        /* too few cells, too many, a quote not closed properly */
        "8,1,True,False\n"
        "8,1,True,False,False,False,pt,20.0,1x8,all,200,1,100,default,intel,3,0.01,12.5,ok,x\n"
        "8,1,True,False,False,False,pt,20.0,1x8,all,200,1,100,default,intel,3,0.01,12.5,\"ok\"x\n"
        /* good: blocktime ignored without Intel OpenMP (canonical: its default) */
        "2,4,True,False,False,True,pt,25.5,4x2,all,77,1,100,default,default,3,0.0,1.5,ok\n"
        "\n" GOOD
        /* a quote never closed: the rest of the text is one malformed row */
        "8,1,True,False,False,False,pt,20.0,1x8,all,200,1,100,default,intel,3,0.01,12.5,"
        "\"ok\n" GOOD;
    pf_tune_trial *t = NULL;
    size_t n = 0, skipped = 0;
    char *why = NULL;
    assert_int_equal(pf_tune_record_parse(s, text, strlen(text), &t, &n, &skipped, &why), 0);
    assert_int_equal(n, 3);
    assert_int_equal(skipped, 14);
    assert_string_equal(values_text(s, PF_TUNE_SPLIT), "8x1 4x2 2x4 *1x8");
    assert_int_equal(t[1].config.v[PF_TUNE_SPLIT], 1);
    assert_int_equal(t[1].config.v[PF_TUNE_BLOCKTIME], 2); /* 200, the default */
    assert_int_equal(t[1].config.v[PF_TUNE_OMP], 0);
    assert_true(t[2].value == 20.0);
    pf_tune_trials_free(t, n);
    space_free(s);
}

static void test_record_bad_header(void **state)
{
    (void)state;
    pf_tune_space *s = space_standard();
    static const char *const TEXTS[] = {
        "a,b,c\n" GOOD,
        /* hypertune's own record.csv: its 8 columns, not pinfer's 19 */
        "ncore_per_instance,ninstances,use_all_nodes,use_logical_core,disable_numactl,"
        "disable_iomp,malloc,latency\n8,1,True,False,False,False,tc,12.5\n",
        "\"ncore_per_instance\n",
        HEADER,
    };
    for (size_t i = 0; i < sizeof TEXTS / sizeof *TEXTS; i++) {
        pf_tune_trial *t = (pf_tune_trial *)1;
        size_t n = 1, skipped = 1;
        char *why = NULL;
        int rc = pf_tune_record_parse(s, TEXTS[i], strlen(TEXTS[i]) - (i == 3 ? 30 : 0), &t, &n,
                                      &skipped, &why);
        if (rc != -EINVAL)
            fail_msg("text %zu: rc %d", i, rc);
        assert_null(t);
        assert_int_equal(n, 0);
        assert_non_null(why);
        assert_non_null(strstr(why, "not a record of pinfer tune"));
        free(why);
    }
    space_free(s);
}

/* ---- tune.json --------------------------------------------------------------- */

static json_t *to_json(const pf_tune_space *s, const pf_tune_trial *t, size_t n, long best,
                       bool winner)
{
    char *text = NULL;
    assert_int_equal(pf_tune_record_to_json(s, "latency (ms)", false, t, n, best, winner, &text),
                     0);
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    if (!doc)
        fail_msg("not JSON (%s): %s", err.text, text);
    free(text);
    return doc;
}

static double member_number(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        fail_msg("%s is not a number", key);
    return json_number_value(v);
}

static void test_record_json(void **state)
{
    (void)state;
    pf_tune_space *s = space_standard();
    pf_tune_trial t[8];
    size_t n = standard_trials(s, t);
    /* A second run of the default with another KMP_BLOCKTIME is still the default... */
    t[n++] = trial(s, "1x8 off all bind default intel 1 1 100", 40.0, 0, 3, 1, "ok");
    json_t *doc = to_json(s, t, n, 1, true);
    json_t *obj = json_object_get(doc, "objective");
    assert_string_equal(json_string_value(json_object_get(obj, "name")), "latency (ms)");
    assert_true(json_is_false(json_object_get(obj, "higher_is_better")));
    json_t *split = json_object_get(json_object_get(doc, "space"), "split");
    assert_int_equal(json_array_size(json_object_get(split, "values")), 4);
    assert_string_equal(json_string_value(json_object_get(split, "default")), "1x8");
    assert_int_equal(json_integer_value(json_object_get(doc, "default_trial")), 0);
    json_t *trials = json_object_get(doc, "trials");
    assert_int_equal(json_array_size(trials), n);
    json_t *t1 = json_array_get(trials, 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(t1, "config"), "split")),
                        "2x4");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(t1, "config"), "kmp_blocktime")), "1");
    assert_true(member_number(t1, "value") == 10.0);
    assert_true(member_number(t1, "spread") == 0.125);
    assert_true(member_number(t1, "seconds") == 8.25);
    assert_int_equal(json_integer_value(json_object_get(t1, "repeats")), 3);
    assert_string_equal(json_string_value(json_object_get(t1, "status")), "ok");
    assert_true(member_number(t1, "ratio") == 0.5);
    assert_true(member_number(json_array_get(trials, 0), "ratio") == 1.0);
    assert_true(member_number(json_array_get(trials, 3), "ratio") == 25.5 / 20);
    /* The failed trial: null value and ratio. */
    json_t *t2 = json_array_get(trials, 2);
    assert_true(json_is_null(json_object_get(t2, "value")));
    assert_true(json_is_null(json_object_get(t2, "ratio")));
    assert_string_equal(json_string_value(json_object_get(t2, "status")), "exit 3");
    assert_int_equal(json_integer_value(json_object_get(doc, "best")), 1);
    assert_true(json_is_true(json_object_get(doc, "winner")));
    json_decref(doc);

    /* ...but not without Intel OpenMP in the default: then blocktime does not count. */
    s->defaults[PF_TUNE_OMP] = 0; /* default */
    t[0] = trial(s, "1x8 off all bind default default 0 1 100", 30.0, 0, 3, 1, "ok");
    doc = to_json(s, t, n, -1, false);
    assert_int_equal(json_integer_value(json_object_get(doc, "default_trial")), 0);
    assert_true(member_number(json_array_get(json_object_get(doc, "trials"), 3), "ratio") ==
                25.5 / 30);
    assert_int_equal(json_integer_value(json_object_get(doc, "best")), -1);
    assert_true(json_is_false(json_object_get(doc, "winner")));
    json_decref(doc);

    /* No default measured (or it failed): every ratio null. */
    t[0].value = NAN;
    doc = to_json(s, t, 2, 0, false);
    assert_int_equal(json_integer_value(json_object_get(doc, "default_trial")), -1);
    assert_true(
        json_is_null(json_object_get(json_array_get(json_object_get(doc, "trials"), 1), "ratio")));
    json_decref(doc);
    space_free(s);
}

/* A program that set a locale with a decimal comma still gets points in every number. */
static void test_decimal_comma_locale(void **state)
{
    (void)state;
    char dir[] = "/tmp/pf-locale-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[256];
    snprintf(cmd, sizeof cmd, "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1", dir);
    int rc = system(cmd);
    setenv("LOCPATH", dir, 1);
    const char *set = rc == 0 ? setlocale(LC_NUMERIC, "de_DE.UTF-8") : NULL;
    if (!set) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        (void)system(cmd);
        unsetenv("LOCPATH");
        SKIP_BECAUSE("no de_DE locale could be made with localedef (exit %d)", rc);
    }
    char probe[16];
    snprintf(probe, sizeof probe, "%.1f", 1.5);
    assert_string_equal(probe, "1,5"); /* the locale is in effect */
    pf_tune_space *s = space_standard();
    pf_tune_trial t[8];
    size_t n = standard_trials(s, t);
    char *csv = NULL;
    assert_int_equal(pf_tune_record_to_csv(s, "fps", t, n, &csv), 0);
    assert_non_null(strstr(csv, ",10.0,2x4,"));
    assert_non_null(strstr(csv, ",3,0.125,8.25,ok\n"));
    pf_tune_trial *back = NULL;
    size_t nback = 0, skipped = 0;
    assert_int_equal(pf_tune_record_parse(s, csv, strlen(csv), &back, &nback, &skipped, NULL), 0);
    assert_int_equal(nback, n);
    assert_trials_equal(back, t, n);
    pf_tune_trials_free(back, nback);
    json_t *doc = to_json(s, t, n, 1, true);
    assert_true(member_number(json_array_get(json_object_get(doc, "trials"), 1), "spread") ==
                0.125);
    json_decref(doc);
    snprintf(probe, sizeof probe, "%.1f", 1.5);
    assert_string_equal(probe, "1,5"); /* and the caller's locale is back */
    free(csv);
    space_free(s);
    setlocale(LC_NUMERIC, "C");
    unsetenv("LOCPATH");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_space_set_good),
        cmocka_unit_test(test_space_set_bad),
        cmocka_unit_test(test_space_load_json),
        cmocka_unit_test(test_space_load_yaml),
        cmocka_unit_test(test_space_load_errors),
        cmocka_unit_test(test_conf_sample),
        cmocka_unit_test(test_conf_example),
        cmocka_unit_test(test_conf_all_cores),
        cmocka_unit_test(test_conf_default_spaces),
        cmocka_unit_test(test_conf_notes),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_hypertune_line),
        cmocka_unit_test(test_record_csv),
        cmocka_unit_test(test_record_skipped),
        cmocka_unit_test(test_record_bad_header),
        cmocka_unit_test(test_record_json),
        cmocka_unit_test(test_decimal_comma_locale),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
