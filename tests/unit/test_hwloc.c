/*
 * test_hwloc.c - the hwloc sources of the topology: synthetic descriptions,
 * XML exports (made here with hwloc, so no fixture can go stale), the check
 * that XML files pass before hwloc reads them (a table of small edits of one
 * export, each accepted or refused with its message), the live machine and
 * its affinity mask.
 */
#include "pf_test.h"
#include "topology/hwloc_xml.h"
#include "topology/topology.h"
#include "base/util.h"

#include <errno.h>
#include <dirent.h>
#include <hwloc.h>
#include <hwloc/export.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DUAL "pack:2 numa:1 core:4 pu:2"

/*
 * Descriptions here name their NUMA level: for one without, hwloc 2.9 inserts
 * it with an overlapping memcpy (harmless with glibc, but valgrind reports it).
 */

/* Loading must fail with `code` and a message holding `needle`; nothing is returned. */
static void expect_failure(const char *source, int code, const char *needle)
{
    pf_topology *t = NULL;
    char *why = NULL;
    int rc = pf_topology_load(source, &t, &why);
    assert_int_equal(rc, code);
    assert_null(t);
    assert_non_null(why);
    assert_null(strchr(why, '\n'));
    if (!strstr(why, needle)) {
        print_error("message '%s' lacks '%s'\n", why, needle);
        free(why);
        fail();
    }
    free(why);
}

static void test_synthetic_dual_socket(void **state)
{
    (void)state;
    pf_topology *t = load_source("synthetic:" DUAL);
    size_t n;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    assert_int_equal(n, 16);
    assert_int_equal(pf_topology_ncores(t), 8);
    assert_int_equal(pf_topology_nsockets(t), 2);
    size_t nn;
    const int *nodes = pf_topology_nodes(t, &nn);
    assert_int_equal(nn, 2);
    assert_int_equal(nodes[0], 0);
    assert_int_equal(nodes[1], 1);
    assert_false(pf_topology_is_live(t));
    assert_string_equal(pf_topology_source(t), "synthetic:" DUAL);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c[i].cpu, (int)i);
        /* hwloc numbers synthetic PUs in order: siblings are next to each other. */
        assert_int_equal(c[i].smt_rank, (int)(i % 2));
        assert_int_equal(c[i].core_first, (int)(i & ~1u));
        assert_int_equal(c[i].socket, (int)(i / 8));
        assert_int_equal(c[i].node, (int)(i / 8));
        assert_int_equal(c[i].llc, -1); /* no cache in the description */
        assert_false(c[i].efficiency);
        assert_true(c[i].allowed);
    }
    const pf_cpu_info *one = pf_topology_cpu(t, 1);
    assert_non_null(one);
    assert_int_equal(one->smt_rank, 1);
    assert_int_equal(one->core_first, 0);
    assert_int_equal(one->core, pf_topology_cpu(t, 0)->core);
    assert_int_not_equal(one->core, pf_topology_cpu(t, 2)->core);
    pf_topology_free(t);
}

static void test_synthetic_nodes_per_package(void **state)
{
    (void)state;
    pf_topology *t = load_source("synthetic:pack:2 numa:2 core:2 pu:2");
    size_t n, nn;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    const int *nodes = pf_topology_nodes(t, &nn);
    assert_int_equal(n, 16);
    assert_int_equal(pf_topology_ncores(t), 8);
    assert_int_equal(pf_topology_nsockets(t), 2);
    assert_int_equal(nn, 4);
    for (size_t i = 0; i < nn; i++)
        assert_int_equal(nodes[i], (int)i);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c[i].node, (int)(i / 4));
        assert_int_equal(c[i].socket, (int)(i / 8));
    }
    pf_topology_free(t);
}

static void test_synthetic_far_siblings_and_caches(void **state)
{
    (void)state;
    /* Siblings numbered apart, as on most Intel servers: core k holds CPUs k and k+4. */
    pf_topology *t =
        load_source("synthetic:pack:1 numa:1 l3:1 l2:2 core:2 pu:2(indexes=0,4,1,5,2,6,3,7)");
    size_t n;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    assert_int_equal(n, 8);
    assert_int_equal(pf_topology_ncores(t), 4);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c[i].smt_rank, i >= 4);
        assert_int_equal(c[i].core_first, (int)(i % 4));
        assert_int_equal(c[i].llc, 0); /* one L3 over everything, not the L2s */
    }
    pf_topology_free(t);

    /* A cache per package: the groups are named by their lowest CPU. */
    t = load_source("synthetic:pack:2 numa:1 l3:1 core:2 pu:2");
    c = pf_topology_cpus(t, &n);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c[i].llc, i < 4 ? 0 : 4);
    pf_topology_free(t);
}

static void test_synthetic_without_cores(void **state)
{
    (void)state;
    pf_topology *t = load_source("synthetic:pack:1 numa:1 pu:4");
    size_t n;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    assert_int_equal(n, 4);
    assert_int_equal(pf_topology_ncores(t), 4); /* each PU is a core of its own */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(c[i].smt_rank, 0);
        assert_int_equal(c[i].core_first, (int)i);
        assert_int_equal(c[i].node, 0);
    }
    pf_topology_free(t);
}

static void test_synthetic_quotes(void **state)
{
    (void)state;
    const char *sources[] = {"synthetic:\"pack:2 numa:1 core:2 pu:1\"",
                             "synthetic:'pack:2 numa:1 core:2 pu:1'"};
    for (size_t i = 0; i < 2; i++) {
        pf_topology *t = load_source(sources[i]);
        size_t n;
        pf_topology_cpus(t, &n);
        assert_int_equal(n, 4);
        assert_int_equal(pf_topology_nsockets(t), 2);
        pf_topology_free(t);
    }
}

static void test_synthetic_malformed(void **state)
{
    (void)state;
    expect_failure("synthetic:foo", -EINVAL, "synthetic:foo");
    expect_failure("synthetic:pack:0 pu:2", -EINVAL, "synthetic");
    expect_failure("synthetic:pack:2(size=1GB) pu:2", -EINVAL, "hwloc cannot parse");
    expect_failure("synthetic:'pack:1000 core:100 pu:1'", -EINVAL, "100000 PUs");
    expect_failure("synthetic:pack:2 core:x pu:2", -EINVAL, "synthetic");
    expect_failure("synthetic:", -EINVAL, "synthetic");
    expect_failure("synthetic:\"\"", -EINVAL, "synthetic");
    expect_failure("synthetic:\"pack:2", -EINVAL, "synthetic");
}

/*
 * The check before hwloc (synthetic.c): what it accepts, with the PU count,
 * and what it refuses, with a message holding `refusal`.
 */
typedef struct synthetic_case {
    const char *desc;
    unsigned long pus;   /* accepted: the PU count */
    const char *refusal; /* refused: part of the message */
} synthetic_case;

static const synthetic_case synthetic_cases[] = {
    /* hwloc's syntax variants */
    {"pack:2 numa:2 core:4 pu:2", 32, NULL},
    {"Package:2 NUMANode:1 L3Cache:1 L2Cache:2 L1dCache:1 Core:1 PU:2", 8, NULL},
    {"socket:2 node:2 l3:2 l2u:1 l1d:1 l1i:1 co:2 pu:1", 16, NULL},
    {"pack:2 l3:2(size=32MB) core:2 pu:2", 16, NULL},
    {"(memory=64GB) pack:2 core:2 pu:2", 8, NULL},
    {"pack:2 [numa(memory=1GB)] core:4 pu:2", 16, NULL},
    {"[NUMANode(memory=1073741824)] Package:2 Core:2 PU:2(indexes=4*2:2*2:1*2)", 8, NULL},
    {"pack:2 [numa(indexes=1,0)] core:2 pu:2(indexes=2*4:1*2)", 8, NULL},
    {"pack:2 core:2 pu:2(indexes=pack:core)", 8, NULL},
    {"pack:2 numa:2(indexes=3,2,1,0) core:1 pu:2(indexes=0,4,1,5,2,6,3,7)", 8, NULL},
    {"numa:2 pack:2 group:2 die:2 pu:1", 16, NULL},
    {"pack:2\nnuma:1\ncore:2  pu:2\n", 8, NULL},
    {"2 2 2", 8, NULL},
    /* the bounds */
    {"pack:1000 core:100 pu:1", 0, "100000 PUs; a synthetic topology has at most 16384"},
    {"pack:999999999 pu:999999999", 0, "PUs; a synthetic topology has at most 16384"},
    {"pu:16385", 0, "16385 PUs"},
    {"core:8192 pu:1", 0, "too wide for hwloc's synthetic loader: it would take about 1"},
    {"pu:4096", 0, "too wide"},
    {"pack:64 l3:8 core:16 pu:2", 16384, NULL},
    {"pu:2048", 2048, NULL},
    {"pu:2(indexes=0,16384)", 0, "an index is too large"},
    /* what hwloc 2.9 aborts on */
    {"memcache:2 pu:2", 0, "not a level type"},
    {"pu:2(indexes=1*2147483648:1*2147483648:1*2147483648)", 0, "larger than its level"},
    {"pack:2(indexes=core) core:2 pu:1", 0, "by level names is for PUs only"},
    {"pack:2 [numa(indexes=core)] core:4 pu:1", 0, "by level names is for PUs only"},
    /* outside the subset, or malformed */
    {"pack:010 pu:1", 0, "a level needs a count"},
    {"pack:0x10 pu:1", 0, "a level needs a count (a decimal from 1) at '0x10 pu:1'"},
    {"pu: 2", 0, "a level needs a count"},
    {"pu:+2", 0, "a level needs a count"},
    {"pack:0 pu:2", 0, "a level needs a count"},
    {"pack 2 core:3 pu:1", 0, "a level type is followed by ':'"},
    {"pack:2core:2 pu:1", 0, "levels are separated by blanks"},
    {"pack:2\tpu:2", 0, "a NUL, tab or carriage return"},
    {"pack:2 [numa:5] pu:2", 0, "an attached type is followed by ']' or '('"},
    {"pack:2 [core] pu:2", 0, "only NUMA nodes are attached"},
    {"pack:2(foo=1) pu:2", 0, "unknown attribute"},
    {"pack:2(memory=1GB  size=1) pu:2", 0, "unknown attribute"},
    {"pack:2(memory=1GB pu:2", 0, "unknown attribute (memory=, size= or indexes=) at 'pu:2'"},
    {"pack:2 pu:2(indexes=0,1", 0, "end with ')' at the end"},
    {"core5:2 pu:1", 0, "not a level type"},
    {"machine:2 pu:1", 0, "not a level type"},
    {"l6:2 pu:1", 0, "not a level type"},
    {"p:2 pu:1", 0, "not a level type"},
    {"pu:2(indexes=0,1,2)", 0, "indexes= lists 3 ids for 2 objects"},
    {"pu:2(indexes=1,1)", 0, "an index is given twice"},
    {"pu:2(indexes=0,,1)", 0, "indexes= needs ids separated by ','"},
    {"pu:4(indexes=2*2:)", 0, "an interleaving loop is S*N"},
    {"pu:4(indexes=0*2)", 0, "an interleaving loop is S*N"},
    {"pu:2(indexes=)", 0, "indexes= needs a value"},
    {"pu:1234567890", 0, "a count of more than 9 digits"},
    /* what hwloc refuses after reading every level, leaking [numa] nodes */
    {"pack:2 [numa(memory=1GB)]", 0, "the last level is not PUs"},
    {"pack:2 [numa] core:2", 0, "the last level is not PUs"},
    {"pu:2 core:2 pu:1", 0, "PUs are the last level only"},
    {"pack:2 [numa] core:2 core:2 pu:1", 0, "two Core levels"},
    {"pack:2 socket:2 pu:1", 0, "two Package levels"},
    {"numa:2 [numa] pu:1", 0, "NUMA nodes both as a level and attached"},
    {"pack:2 2 pu:1", 0, "some levels have a type and others not"},
    {"pack:2 core:2 2", 8, NULL},
    {"", 0, "no level"},
    {" \n ", 0, "no level"},
    {"(memory=1) ", 0, "no level"},
};

static void test_synthetic_check(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof synthetic_cases / sizeof *synthetic_cases; i++) {
        const synthetic_case *c = &synthetic_cases[i];
        unsigned long pus = 0;
        char *why = NULL;
        int rc = pf__synthetic_check("s", c->desc, strlen(c->desc), &pus, &why);
        if (c->refusal ? rc != -EINVAL || !why || !strstr(why, c->refusal) || strchr(why, '\n')
                       : rc != 0 || pus != c->pus) {
            print_error("'%s': rc %d, %lu PUs, '%s'\n", c->desc, rc, pus, why ? why : "");
            failures++;
        }
        free(why);
    }
    assert_int_equal(failures, 0);
}

/*
 * Through pf_topology_load: what the check accepts loads with that many
 * CPUs, and what it refuses never reaches hwloc, which would abort on some
 * (memcache, wrapping loops) and build others for minutes: each refusal is
 * immediate.
 */
static void test_synthetic_bounded_load(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof synthetic_cases / sizeof *synthetic_cases; i++) {
        const synthetic_case *c = &synthetic_cases[i];
        char source[256];
        snprintf(source, sizeof source, "synthetic:%s", c->desc);
        struct timespec a, b;
        pf_topology *t = NULL;
        char *why = NULL;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int rc = pf_topology_load(source, &t, &why);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        if (c->refusal) {
            assert_int_equal(rc, -EINVAL);
            assert_non_null(strstr(why, "synthetic:"));
            if (ms > 50)
                fail_msg("'%s' refused after %.0f ms", c->desc, ms);
        } else if (rc == 0) {
            size_t n;
            pf_topology_cpus(t, &n);
            assert_int_equal(n, c->pus);
        } else if (!strstr(why, "hwloc cannot parse")) {
            /* hwloc may refuse what the check lets through, never crash on it */
            fail_msg("'%s': %s", c->desc, why);
        }
        pf_topology_free(t);
        free(why);
    }
}

/* An hwloc XML export of a synthetic topology, written to a temporary file. */
enum kinds { NO_KINDS, RANKED_KINDS, UNRANKED_KINDS, FREQUENCY_KINDS };

static char *export_to_file(const char *synthetic, enum kinds kinds)
{
    hwloc_topology_t h;
    assert_int_equal(hwloc_topology_init(&h), 0);
    assert_int_equal(hwloc_topology_set_synthetic(h, synthetic), 0);
    assert_int_equal(hwloc_topology_load(h), 0);
    if (kinds != NO_KINDS) {
        /*
         * CPUs 0-3 a fast kind, 4-7 a slow one (hwloc ranks higher = faster);
         * or two kinds that nothing ranks.
         */
        hwloc_bitmap_t fast = hwloc_bitmap_alloc(), slow = hwloc_bitmap_alloc();
        hwloc_bitmap_set_range(fast, 0, 3);
        hwloc_bitmap_set_range(slow, 4, 7);
        bool ranked = kinds == RANKED_KINDS, mhz = kinds == FREQUENCY_KINDS;
        struct hwloc_info_s slow_mhz = {"FrequencyMaxMHz", "2500"};
        struct hwloc_info_s fast_mhz = {"FrequencyMaxMHz", "4000"};
        assert_int_equal(
            hwloc_cpukinds_register(h, slow, ranked ? 0 : -1, mhz, mhz ? &slow_mhz : NULL, 0), 0);
        assert_int_equal(
            hwloc_cpukinds_register(h, fast, ranked ? 1 : -1, mhz, mhz ? &fast_mhz : NULL, 0), 0);
        hwloc_bitmap_free(fast);
        hwloc_bitmap_free(slow);
    }
    char *xml = NULL;
    int len = 0;
    assert_int_equal(hwloc_topology_export_xmlbuffer(h, &xml, &len, 0), 0);
    assert_true(len > 1);

    char tmpl[] = "/tmp/pinfer-test-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    size_t size = (size_t)len - 1; /* len counts the NUL */
    assert_int_equal(write(fd, xml, size), (ssize_t)size);
    close(fd);
    hwloc_free_xmlbuffer(h, xml);
    hwloc_topology_destroy(h);
    return strdup(tmpl);
}

static void assert_same_cpus(const pf_topology *a, const pf_topology *b)
{
    size_t na, nb;
    const pf_cpu_info *x = pf_topology_cpus(a, &na);
    const pf_cpu_info *y = pf_topology_cpus(b, &nb);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(x[i].cpu, y[i].cpu);
        assert_int_equal(x[i].core, y[i].core);
        assert_int_equal(x[i].socket, y[i].socket);
        assert_int_equal(x[i].node, y[i].node);
        assert_int_equal(x[i].smt_rank, y[i].smt_rank);
        assert_int_equal(x[i].core_first, y[i].core_first);
        assert_int_equal(x[i].llc, y[i].llc);
        assert_int_equal(x[i].efficiency, y[i].efficiency);
        assert_int_equal(x[i].allowed, y[i].allowed);
    }
    assert_int_equal(pf_topology_ncores(a), pf_topology_ncores(b));
    assert_int_equal(pf_topology_nsockets(a), pf_topology_nsockets(b));
}

static void test_xml_round_trip(void **state)
{
    (void)state;
    const char *desc = "pack:2 numa:2 l3:1 core:4 pu:2";
    char *path = export_to_file(desc, NO_KINDS);
    char source[256];
    snprintf(source, sizeof source, "synthetic:%s", desc);
    pf_topology *from_xml = load_source(path);
    pf_topology *from_synthetic = load_source(source);
    assert_string_equal(pf_topology_source(from_xml), path);
    assert_false(pf_topology_is_live(from_xml));
    size_t n;
    pf_topology_cpus(from_xml, &n);
    assert_int_equal(n, 32);
    assert_same_cpus(from_xml, from_synthetic);
    pf_topology_free(from_xml);
    pf_topology_free(from_synthetic);
    unlink(path);
    free(path);
}

static void test_xml_cpu_kinds(void **state)
{
    (void)state;
    char *path = export_to_file("pack:1 numa:1 core:4 pu:2", RANKED_KINDS);
    pf_topology *t = load_source(path);
    size_t n;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c[i].efficiency, i >= 4);
    pf_topology_free(t);
    unlink(path);
    free(path);

    /*
     * Kinds that hwloc does not rank, with frequencies: the MAXMHZ rule decides
     * (4000 vs 2500 MHz is a step of more than 15%).
     */
    path = export_to_file("pack:1 numa:1 core:4 pu:2", FREQUENCY_KINDS);
    const char *saved = getenv("HWLOC_CPUKINDS_RANKING");
    assert_null(saved);
    setenv("HWLOC_CPUKINDS_RANKING", "none", 1);
    t = load_source(path);
    unsetenv("HWLOC_CPUKINDS_RANKING");
    c = pf_topology_cpus(t, &n);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c[i].efficiency, i >= 4);
    pf_topology_free(t);
    unlink(path);
    free(path);

    /* Kinds without a ranking (and without frequencies) tell nothing: no E-cores. */
    path = export_to_file("pack:1 numa:1 core:4 pu:2", UNRANKED_KINDS);
    t = load_source(path);
    c = pf_topology_cpus(t, &n);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++)
        assert_false(c[i].efficiency);
    pf_topology_free(t);
    unlink(path);
    free(path);
}

/* Write text to a temporary file; returns its malloc'd path. */
static char *write_temp(const char *text)
{
    char tmpl[] = "/tmp/pinfer-test-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return strdup(tmpl);
}

static void test_xml_malformed(void **state)
{
    (void)state;
    const char *texts[] = {
        "<topology><object type=\"Machine\"",
        "<?xml version=\"1.0\"?>\n<html><body>not a topology</body></html>\n",
        "<?xml version=\"1.0\"?>\n<topology version=\"2.0\">\n"
        "  <object type=\"Machine\" os_index=\"0\" cpuset=\"0x1\">\n"
        "    <object type=\"PU\" os_index=\"zero\" cpuset=\"0x1\"/>\n",
        "<",
        /* Well-formed, but hwloc 2.9 crashes on each of these: */
        "<topology version=\"2.0\"><object type=\"Machine\" os_index=\"0\" cpuset=\"0x1\" "
        "complete_cpuset=\"0x1\" allowed_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\" "
        "allowed_nodeset=\"0x1\"><object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x1\" "
        "nodeset=\"0x1\"/><object type=\"PU\" os_index=\"0\" cpuset=\"0x1\"/></object></topology>",
        "<topology version=\"2.0\"><object type=\"Machine\" os_index=\"0\" cpuset=\"0x1\" "
        "complete_cpuset=\"0x1\" allowed_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\" "
        "allowed_nodeset=\"0x1\"><object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x1\" "
        "nodeset=\"0x1\"/><object type=\"PU\" os_index=\"0\" cpuset=\"0x1\"><object "
        "type=\"PU\" os_index=\"0\" cpuset=\"0x1\"/></object></object></topology>",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char *path = write_temp(texts[i]);
        expect_failure(path, -EINVAL, path);
        unlink(path);
        free(path);
    }
}

/*
 * A small export, one object a line, that table rows below change in one
 * place each.  Line 4 the Machine, 5 the NUMA node, 6 the core, 7 and 8 the
 * PUs.
 */
#define MACHINE                                                                             \
    "  <object type=\"Machine\" os_index=\"0\" cpuset=\"0x00000003\" "                      \
    "complete_cpuset=\"0x00000003\" "                                                       \
    "allowed_cpuset=\"0x00000003\" nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" " \
    "allowed_nodeset=\"0x00000001\" gp_index=\"1\">\n"
#define NUMA                                                                                 \
    "    <object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x00000003\" "                    \
    "complete_cpuset=\"0x00000003\" nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" " \
    "gp_index=\"2\" local_memory=\"1073741824\"/>\n"
#define CORE                                                          \
    "    <object type=\"Core\" os_index=\"0\" cpuset=\"0x00000003\" " \
    "complete_cpuset=\"0x00000003\" "                                 \
    "nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" gp_index=\"3\">\n"
#define PU0                                                           \
    "      <object type=\"PU\" os_index=\"0\" cpuset=\"0x00000001\" " \
    "complete_cpuset=\"0x00000001\" "                                 \
    "nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" gp_index=\"4\"/>\n"
#define PU1                                                           \
    "      <object type=\"PU\" os_index=\"1\" cpuset=\"0x00000002\" " \
    "complete_cpuset=\"0x00000002\" "                                 \
    "nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" gp_index=\"5\"/>\n"
#define PROLOG \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n"
#define SMALL_EXPORT                                                                  \
    PROLOG "<topology version=\"2.0\">\n" MACHINE NUMA CORE PU0 PU1 "    </object>\n" \
           "  </object>\n</topology>\n"
#define AFTER_ROOT "  </object>\n</topology>\n"

/*
 * One case: SMALL_EXPORT with its first `find` replaced by `replace` (a NULL
 * find: the text as is), and what loading must say after "<file>: " (NULL:
 * it loads, with CPUs 0 and 1).
 */
typedef struct xml_case {
    const char *find, *replace, *refusal;
} xml_case;

static const xml_case xml_cases[] = {
    {NULL, NULL, NULL},
    /* What exports may hold, and hand edits that keep their shape. */
    {PROLOG, "", NULL},
    {"<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n", "", NULL},
    {MACHINE, MACHINE "    <info name=\"Key &lt;&amp;&gt;\" value=\"&quot;a&#9;b&#10;\"/>\n", NULL},
    {"</topology>\n", "</topology>\n<!-- a trailing comment -->\n", NULL},
    {"1073741824\"/>", "1073741824\"><page_type size=\"4096\" count=\"2\"/></object>", NULL},
    {PU1, PU1 "      <object type=\"Misc\" gp_index=\"9\" name=\"m\"/>\n", NULL},
    {"<object type=\"PU\" os_index=\"1\"", "<object  type=\"PU\"\tos_index=\"1\"", NULL},
    {"gp_index=\"5\"/>", "gp_index=\"5\" />", NULL},
    {AFTER_ROOT,
     "  </object>\n  <cpukind cpuset=\"0x00000001\" forced_efficiency=\"0\"/>\n"
     "  <cpukind cpuset=\"0x00000002\" forced_efficiency=\"1\">\n"
     "    <info name=\"FrequencyMaxMHz\" value=\"4000\"/>\n  </cpukind>\n</topology>\n",
     NULL},
    {AFTER_ROOT,
     "  </object>\n  <distances2 type=\"PU\" nbobjs=\"2\" kind=\"5\" indexing=\"os\">\n"
     "    <indexes length=\"4\">1 0 </indexes>\n"
     "    <u64values length=\"12\">10 20 20 10 </u64values>\n  </distances2>\n</topology>\n",
     NULL},
    {AFTER_ROOT,
     "  </object>\n  <memattr name=\"Bandwidth\" flags=\"5\">\n"
     "    <memattr_value target_obj_type=\"NUMANode\" target_obj_gp_index=\"2\" value=\"9\" "
     "initiator_cpuset=\"0x00000003\"/>\n  </memattr>\n</topology>\n",
     NULL},
    /* The shapes hwloc 2.9 crashes on. */
    {PU0,
     "      <object type=\"PU\" os_index=\"0\" cpuset=\"0x00000001\" "
     "complete_cpuset=\"0x00000001\" gp_index=\"4\"/>\n",
     "line 7: PU without a nodeset"},
    {NUMA,
     "    <object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x00000003\" nodeset=\"0x00000001\" "
     "gp_index=\"2\"/>\n",
     "line 5: NUMANode without a complete_cpuset"},
    {"gp_index=\"4\"/>", "gp_index=\"4\"><object type=\"PU\" os_index=\"0\"/></object>",
     "line 7: an object (PU) below a PU"},
    {"os_index=\"0\" cpuset=\"0x00000001\" complete_cpuset=\"0x00000001\"",
     "os_index=\"0\" cpuset=\"0x00000002\" complete_cpuset=\"0x00000002\"",
     "line 7: PU 0 whose cpuset or complete_cpuset is not just CPU 0"},
    /* Objects and sets. */
    {"os_index=\"1\" cpuset=\"0x00000002\" complete_cpuset=\"0x00000002\"",
     "os_index=\"0\" cpuset=\"0x00000001\" complete_cpuset=\"0x00000001\"", "line 8: PU 0 twice"},
    {PU1, "", "line 6: Core whose cpuset is not the union of its children's"},
    {PU0 PU1, PU1 PU0,
     "line 8: PU after a sibling with a higher first CPU (hwloc writes siblings in order)"},
    {"type=\"PU\" os_index=\"1\"", "type=\"PU\" os_index=\"4194304\"",
     "line 8: PU os_index 4194304 is 4194304 or more"},
    {"type=\"PU\" os_index=\"1\"", "type=\"PU\"", "line 8: PU without an os_index"},
    {"type=\"Core\"", "type=\"Socket\"", "line 6: unknown object type \"Socket\""},
    {"type=\"Core\" os_index=\"0\"", "type=\"Package\" os_index=\"0\"", NULL},
    {CORE,
     "    <object type=\"Core\" os_index=\"0\" cpuset=\"0x00000003\" "
     "complete_cpuset=\"0x00000003\" "
     "nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" gp_index=\"7\">\n"
     "    <object type=\"Package\" os_index=\"0\" cpuset=\"0x00000003\" "
     "complete_cpuset=\"0x00000003\" nodeset=\"0x00000001\" complete_nodeset=\"0x00000001\" "
     "gp_index=\"3\">\n",
     "line 7: Package below Core"},
    {"type=\"Machine\"", "type=\"Package\"", "line 4: the root object is a Package, not a Machine"},
    {" gp_index=\"3\"", "", "line 6: Core without a gp_index"},
    {"gp_index=\"5\"", "gp_index=\"4\"", "line 8: a second object with gp_index 4"},
    {"cpuset=\"0x00000002\"", "cpuset=\"2\"",
     "line 8: cpuset \"2\" is not an hwloc bitmap (\"0x000000ff,0x...\")"},
    {"cpuset=\"0x00000002\"", "cpuset=\"0xf...f\"",
     "line 8: cpuset \"0xf...f\" is not an hwloc bitmap (\"0x000000ff,0x...\")"},
    {"nodeset=\"0x00000001\" gp_index=\"2\"", "nodeset=\"0x00000003\" gp_index=\"2\"",
     "line 5: NUMANode with a complete_nodeset not within its parent's"},
    {" allowed_cpuset=\"0x00000003\"", "", "line 4: root Machine without allowed_cpuset"},
    {"gp_index=\"2\" local_memory", "gp_index=\"2\" cpuset=\"0x00000001\" local_memory",
     "line 5: attribute 'cpuset' twice"},
    {PU1, PU1 "      <object type=\"Misc\" gp_index=\"9\" cpuset=\"0x00000002\"/>\n",
     "line 9: Misc with a cpuset"},
    {"1073741824\"/>", "1073741824\"><object type=\"PU\" os_index=\"1\"/></object>",
     "line 5: PU below a NUMANode"},
    {MACHINE,
     MACHINE "    <object type=\"Misc\" gp_index=\"9\"/>\n    <info name=\"a\" value=\"b\"/>\n",
     "line 6: <info> after a child <object>"},
    /* Syntax that hwloc's own reader and libxml2 would read differently, or not at all. */
    {"version=\"1.0\" encoding", "\r\n version=\"1.0\" encoding",
     "line 1: a carriage return (hwloc's own XML reader needs Unix line ends)"},
    {"<topology version=\"2.0\">", "<topology>",
     "line 3: <topology> without a version, or with other attributes"},
    {"<topology version=\"2.0\">", "<topology version=\"1.0\">",
     "line 3: <topology version=\"1.0\">: only hwloc 2.x exports are read (version=\"2.0\", as "
     "lstopo 2.x writes)"},
    {PU1, "<!-- a comment -->\n" PU1,
     "line 8: a comment inside <topology> (hwloc's own XML reader cannot skip it)"},
    {"os_index=\"1\" cpuset", "os_index='1' cpuset",
     "line 8: an attribute not in hwloc's form name=\"value\""},
    {"os_index=\"1\" cpuset", "os_index = \"1\" cpuset",
     "line 8: an attribute not in hwloc's form name=\"value\""},
    {"os_index=\"1\" cpuset", "OS_index=\"1\" cpuset",
     "line 8: an attribute not in hwloc's form name=\"value\""},
    {"gp_index=\"5\"", "gp_index=\"5\"name=\"x\"", "line 8: attributes not separated by blanks"},
    {"gp_index=\"3\"", "gp_index=\"3\" name=\"a&apos;b\"",
     "line 6: an entity hwloc does not write (only &lt; &gt; &amp; &quot; &#9; &#10; &#13;)"},
    {"gp_index=\"3\"", "gp_index=\"3\" name=\"a>b\"",
     "line 6: a raw '>' in an attribute value (write &gt;)"},
    {"gp_index=\"3\"", "gp_index=\"3\" name=\"a\nb\"",
     "line 6: a raw line break or tab in an attribute value"},
    {"<object type=\"PU\" os_index=\"1\"", "<object\ttype=\"PU\" os_index=\"1\"",
     "line 8: a tag name hwloc does not write, or no single space after it"},
    {PU1, "      hello\n" PU1, "line 8: text inside <object>"},
    {"    </object>\n", "    </objects>\n", "line 9: an end tag that does not close <object>"},
    {"    </object>\n  </object>\n</topology>\n", "    </object>\n",
     "line 10: the file ends inside <object>"},
    {"</topology>\n", "</topology>\n<topology/>\n", "line 12: something after </topology>"},
    {PROLOG, " " PROLOG, "line 1: does not start with <?xml, <!DOCTYPE or <topology"},
    {"SYSTEM \"hwloc2.dtd\">", "SYSTEM \"hwloc2.dtd\" [ <!ENTITY x \"y\"> ]>",
     "line 2: a DOCTYPE other than <!DOCTYPE topology SYSTEM \"hwloc2.dtd\"> on a line of its own"},
    {"encoding=\"UTF-8\"?>\n", "encoding=\"UTF-16\"?>\n",
     "line 1: an XML declaration other than <?xml version=\"1.0\" encoding=\"UTF-8\"?> on a line "
     "of its own"},
    {"encoding=\"UTF-8\"?>\n", "encoding=\"UTF-8\"?><topology version=\"2.0\"></topology>\n",
     "line 1: an XML declaration other than <?xml version=\"1.0\" encoding=\"UTF-8\"?> on a line "
     "of its own"},
    {"gp_index=\"3\"", "gp_index=\"3\" name=\"\xc3\xa9\"",
     "line 6: byte 0xc3: hwloc exports are plain ASCII"},
    {MACHINE, MACHINE "    <![CDATA[x]]>\n", "line 5: markup that hwloc does not write"},
    {MACHINE, MACHINE "    <thing/>\n", "line 5: unknown element <thing>"},
    /* After the root object. */
    {AFTER_ROOT,
     "  </object>\n  <cpukind cpuset=\"0x00000003\"/>\n  <cpukind cpuset=\"0x00000002\"/>\n"
     "</topology>\n",
     "line 12: cpukind cpuset overlaps another kind"},
    {AFTER_ROOT, "  </object>\n  <cpukind cpuset=\"0x00000004\"/>\n</topology>\n",
     "line 11: cpukind cpuset holds CPUs that are not PUs"},
    {AFTER_ROOT,
     "  </object>\n  <distances2 type=\"NUMANode\" nbobjs=\"2\" kind=\"5\" indexing=\"os\">\n"
     "    <indexes length=\"4\">0 1 </indexes>\n  </distances2>\n</topology>\n",
     "line 12: distances to a NUMANode 1 that is not in the topology"},
    {AFTER_ROOT,
     "  </object>\n  <distances2 type=\"PU\" nbobjs=\"2\" kind=\"5\" indexing=\"os\">\n"
     "    <indexes length=\"4\">0 1 </indexes>\n  </distances2>\n</topology>\n",
     "line 11: distances with 2 indexes and 0 values for 2 objects"},
    {AFTER_ROOT, "  </object>\n  <memattr name=\"Capacity\" flags=\"1\"/>\n</topology>\n",
     "line 11: memattr Capacity is hwloc's, not a file's"},
    {AFTER_ROOT, "  </object>\n  <info name=\"a\" value=\"b\"/>\n</topology>\n",
     "line 11: <info> inside <topology>"},
};

/* SMALL_EXPORT with one change, malloc'd. */
static char *xml_variant(const xml_case *c)
{
    const char *base = SMALL_EXPORT;
    if (!c->find)
        return strdup(base);
    const char *at = strstr(base, c->find);
    if (!at)
        fail_msg("case text not found: %s", c->find);
    size_t head = (size_t)(at - base), find = strlen(c->find), repl = strlen(c->replace);
    char *text = malloc(strlen(base) - find + repl + 1);
    assert_non_null(text);
    memcpy(text, base, head);
    memcpy(text + head, c->replace, repl);
    memcpy(text + head + repl, at + find, strlen(at + find) + 1);
    return text;
}

static void test_xml_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof xml_cases / sizeof xml_cases[0]; i++) {
        const xml_case *c = &xml_cases[i];
        char *text = xml_variant(c);
        char *path = write_temp(text);
        pf_topology *t = NULL;
        char *why = NULL;
        int rc = pf_topology_load(path, &t, &why);
        if (!c->refusal) {
            if (rc != 0)
                fail_msg("case %zu: refused: %s", i, why ? why : pf_strerror(rc));
            size_t n;
            const pf_cpu_info *cpus = pf_topology_cpus(t, &n);
            assert_int_equal(n, 2);
            assert_int_equal(cpus[0].cpu, 0);
            assert_int_equal(cpus[1].cpu, 1);
        } else {
            char expected[512];
            snprintf(expected, sizeof expected, "%s: %s", path, c->refusal);
            if (rc != -EINVAL || !why || strcmp(why, expected) != 0)
                fail_msg("case %zu: rc %d, message\n  '%s'\nnot\n  '%s'", i, rc,
                         why ? why : "(none)", expected);
            assert_null(t);
        }
        pf_topology_free(t);
        free(why);
        unlink(path);
        free(path);
        free(text);
    }
}

/*
 * A machine with CPU 0 and `groups` groups of `per_group` memory-less
 * packages (none: the packages below the machine), built with pf__buf.
 */
static char *wide_xml(size_t groups, size_t per_group)
{
    pf__buf b = {0};
    pf__buf_puts(&b, "<topology version=\"2.0\">\n<object type=\"Machine\" os_index=\"0\" "
                     "cpuset=\"0x1\" complete_cpuset=\"0x1\" allowed_cpuset=\"0x1\" "
                     "nodeset=\"0x1\" complete_nodeset=\"0x1\" allowed_nodeset=\"0x1\" "
                     "gp_index=\"1\">\n");
    pf__buf_puts(&b, "<object type=\"NUMANode\" os_index=\"0\" cpuset=\"0x1\" "
                     "complete_cpuset=\"0x1\" nodeset=\"0x1\" complete_nodeset=\"0x1\" "
                     "gp_index=\"2\" local_memory=\"1073741824\"/>\n");
    pf__buf_puts(&b, "<object type=\"PU\" os_index=\"0\" cpuset=\"0x1\" complete_cpuset=\"0x1\" "
                     "nodeset=\"0x1\" complete_nodeset=\"0x1\" gp_index=\"3\"/>\n");
    size_t gp = 4;
    for (size_t g = 0; g < (groups ? groups : 1); g++) {
        if (groups)
            pf__buf_printf(&b,
                           "<object type=\"Group\" cpuset=\"0x0\" complete_cpuset=\"0x0\" "
                           "nodeset=\"0x0\" complete_nodeset=\"0x0\" gp_index=\"%zu\" "
                           "kind=\"1\" subkind=\"0\">\n",
                           gp++);
        for (size_t k = 0; k < per_group; k++)
            pf__buf_printf(&b,
                           "<object type=\"Package\" os_index=\"%zu\" cpuset=\"0x0\" "
                           "complete_cpuset=\"0x0\" nodeset=\"0x0\" complete_nodeset=\"0x0\" "
                           "gp_index=\"%zu\"/>\n",
                           g * per_group + k, gp++);
        if (groups)
            pf__buf_puts(&b, "</object>\n");
    }
    pf__buf_puts(&b, "</object>\n</topology>\n");
    char *text = NULL;
    assert_int_equal(pf__buf_take(&b, &text), 0);
    return text;
}

/*
 * hwloc appends each child to its parent's list by walking the list: 65,535
 * memory-less packages below the machine took 7.5 s to load, 2^18 objects
 * would take minutes.  At most 4096 objects below one, 2^16 in all.
 */
static void test_xml_limits(void **state)
{
    (void)state;
    static const struct {
        size_t groups, per_group;
        const char *refusal;
    } cases[] = {
        {0, 4094, NULL}, /* and a NUMA node and a PU */
        {0, 4095, "f.xml: line 4099: more than 4096 objects below one Machine"},
        {1, 4097, "f.xml: line 4102: more than 4096 objects below one Group"},
        {15, 4096, NULL}, /* 61,458 objects */
        {16, 4096, "f.xml: line 65553: more than 65536 objects"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *text = wide_xml(cases[i].groups, cases[i].per_group);
        char *why = NULL;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int rc = pf__hwloc_xml_check("f.xml", text, strlen(text), &why);
        if (cases[i].refusal) {
            if (rc != -EINVAL || !why || strcmp(why, cases[i].refusal) != 0)
                fail_msg("case %zu: rc %d, '%s'", i, rc, why ? why : "");
        } else {
            if (rc != 0)
                fail_msg("case %zu: refused: %s", i, why ? why : "");
            /* and hwloc loads the largest accepted in well under a second */
            pf_topology *t = NULL;
            char *path = write_temp(text);
            rc = pf_topology_load(path, &t, &why);
            clock_gettime(CLOCK_MONOTONIC, &b);
            double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
            if (rc != 0 || s > 1.0)
                fail_msg("case %zu: rc %d after %.2f s: %s", i, rc, s, why ? why : "");
            pf_topology_free(t);
            unlink(path);
            free(path);
        }
        free(why);
        free(text);
    }
}

/* The check alone: what a file cannot hold through the C-string cases above. */
static void test_xml_check_bytes(void **state)
{
    (void)state;
    const char *base = SMALL_EXPORT;
    size_t len = strlen(base);
    char *text = strdup(base);
    assert_non_null(text);
    char *why = NULL;
    assert_int_equal(pf__hwloc_xml_check("f.xml", text, len, &why), 0);
    assert_null(why);
    text[strlen(PROLOG) + 30] = '\0';
    assert_int_equal(pf__hwloc_xml_check("f.xml", text, len, &why), -EINVAL);
    assert_string_equal(why, "f.xml: line 4: a NUL byte");
    free(why);
    why = NULL;
    /* Without a place for the reason, the code still says it. */
    assert_int_equal(pf__hwloc_xml_check("f.xml", text, len, NULL), -EINVAL);
    assert_int_equal(pf__hwloc_xml_check("f.xml", text, 0, &why), -EINVAL);
    assert_string_equal(why, "f.xml: line 1: does not start with <?xml, <!DOCTYPE or <topology");
    free(why);
    free(text);
}

/*
 * Exports that hwloc itself writes, with what exports can hold: caches,
 * groups, dies, memory-only packages, disallowed CPUs, Misc objects, infos
 * with odd characters, userdata, distances, memory attributes, CPU kinds.
 */
static void export_userdata(void *reserved, hwloc_topology_t topo, hwloc_obj_t obj)
{
    if (obj->type == HWLOC_OBJ_MACHINE) {
        hwloc_export_obj_userdata(reserved, topo, obj, "plain", "some <text> & more", 18);
        hwloc_export_obj_userdata_base64(reserved, topo, obj, "b64", "\x01\x02\x03\x04", 4);
    }
}

static char *export_edited(const char *synthetic, int edit)
{
    hwloc_topology_t h;
    assert_int_equal(hwloc_topology_init(&h), 0);
    assert_int_equal(hwloc_topology_set_synthetic(h, synthetic), 0);
    if (edit == 2)
        hwloc_topology_set_flags(h, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
    assert_int_equal(hwloc_topology_load(h), 0);
    hwloc_obj_t root = hwloc_get_root_obj(h);
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    switch (edit) {
    case 1: /* keep CPUs 0-3 only: the other package keeps its memory, no CPU */
        hwloc_bitmap_set_range(set, 0, 3);
        assert_int_equal(hwloc_topology_restrict(h, set, 0), 0);
        break;
    case 2: /* CPUs 1 and 3 disallowed */
        hwloc_bitmap_copy(set, root->cpuset);
        hwloc_bitmap_clr(set, 1);
        hwloc_bitmap_clr(set, 3);
        assert_int_equal(hwloc_topology_allow(h, set, NULL, HWLOC_ALLOW_FLAG_CUSTOM), 0);
        break;
    case 3: { /* annotations */
        hwloc_obj_add_info(root, "Odd \"name\" <&>", "tab\there\nnewline");
        hwloc_topology_insert_misc_object(h, root, "misc <1>");
        hwloc_topology_insert_misc_object(h, hwloc_get_obj_by_type(h, HWLOC_OBJ_CORE, 0), "m2");
        hwloc_topology_set_userdata_export_callback(h, export_userdata);
        hwloc_bitmap_set_range(set, 0, 1);
        assert_int_equal(hwloc_cpukinds_register(h, set, 1, 0, NULL, 0), 0);
        unsigned nn = (unsigned)hwloc_get_nbobjs_by_type(h, HWLOC_OBJ_NUMANODE);
        hwloc_obj_t nodes[8];
        hwloc_uint64_t values[64];
        for (unsigned i = 0; i < nn && i < 8; i++)
            nodes[i] = hwloc_get_obj_by_type(h, HWLOC_OBJ_NUMANODE, i);
        for (unsigned i = 0; i < nn * nn && i < 64; i++)
            values[i] = i % (nn + 1) == 0 ? 10 : 20;
        hwloc_distances_add_handle_t d = hwloc_distances_add_create(
            h, "test", HWLOC_DISTANCES_KIND_FROM_USER | HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0);
        assert_non_null(d);
        assert_int_equal(hwloc_distances_add_values(h, d, nn, nodes, values, 0), 0);
        assert_int_equal(hwloc_distances_add_commit(h, d, 0), 0);
        hwloc_memattr_id_t id;
        assert_int_equal(hwloc_memattr_register(h, "Made-up", HWLOC_MEMATTR_FLAG_HIGHER_FIRST, &id),
                         0);
        assert_int_equal(hwloc_memattr_set_value(h, id, nodes[0], NULL, 0, 42), 0);
        struct hwloc_location loc = {.type = HWLOC_LOCATION_TYPE_CPUSET};
        loc.location.cpuset = root->cpuset;
        assert_int_equal(
            hwloc_memattr_set_value(h, HWLOC_MEMATTR_ID_BANDWIDTH, nodes[0], &loc, 0, 1000), 0);
        break;
    }
    default: break;
    }
    hwloc_bitmap_free(set);
    char *xml = NULL;
    int len = 0;
    assert_int_equal(hwloc_topology_export_xmlbuffer(h, &xml, &len, 0), 0);
    char *copy = strdup(xml);
    assert_non_null(copy);
    hwloc_free_xmlbuffer(h, xml);
    hwloc_topology_destroy(h);
    return copy;
}

static void test_xml_exports(void **state)
{
    (void)state;
    static const struct {
        const char *synthetic;
        int edit;
        size_t ncpus;
    } exports[] = {
        {"numa:1 core:1 pu:1", 0, 1},
        {"pack:2 numa:2 core:4 pu:2", 0, 32},
        {"pack:2 [numa] [numa(memory=1GB)] l3:2 core:2 pu:2", 0, 16},
        {"pack:1 die:2 group:2 numa:1 l3:1 l2:2 l1d:1 l1i:1 core:1 pu:2", 0, 16},
        {"pack:2 numa:1 core:2 pu:2(indexes=0,4,1,5,2,6,3,7)", 0, 8},
        {"pack:2 numa:1 pu:40", 0, 80},
        {"pack:2 numa:1 core:2 pu:2", 1, 4},
        {"pack:2 numa:1 core:2 pu:2", 2, 8},
        {"pack:2 numa:2 core:2 pu:2", 3, 16},
    };
    for (size_t i = 0; i < sizeof exports / sizeof exports[0]; i++) {
        char *xml = export_edited(exports[i].synthetic, exports[i].edit);
        char *path = write_temp(xml);
        pf_topology *t = NULL;
        char *why = NULL;
        if (pf_topology_load(path, &t, &why) != 0)
            fail_msg("export of %s (edit %d) refused: %s", exports[i].synthetic, exports[i].edit,
                     why ? why : "?");
        size_t n;
        pf_topology_cpus(t, &n);
        assert_int_equal(n, exports[i].ncpus);
        pf_topology_free(t);
        unlink(path);
        free(path);
        free(xml);
    }
}

/* The fuzz target's seeds: the exports load, the mutants (crashing shapes) are refused. */
static void test_xml_seed_corpus(void **state)
{
    (void)state;
    const char *dir = PF_SOURCE_DIR "/tests/fuzz/corpus/hwloc_xml";
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        bool mutant = strncmp(e->d_name, "mutant_", 7) == 0;
        pf_topology *t = NULL;
        char *why = NULL;
        int rc = pf_topology_load(path, &t, &why);
        if (mutant ? rc != -EINVAL : rc != 0)
            fail_msg("%s: rc %d (%s)", e->d_name, rc, why ? why : "no message");
        pf_topology_free(t);
        free(why);
        seen++;
    }
    closedir(d);
    assert_true(seen >= 20);
}

/*
 * Loading XML forks nothing and shares nothing: threads load at once, and
 * no child process ever signals its end.
 */
static volatile sig_atomic_t children_ended;

static void count_child(int sig)
{
    (void)sig;
    children_ended++;
}

static void *load_repeatedly(void *path)
{
    for (int i = 0; i < 20; i++) {
        pf_topology *t = NULL;
        if (pf_topology_load(path, &t, NULL) != 0)
            return path; /* failure */
        pf_topology_free(t);
    }
    return NULL;
}

static void test_xml_threads(void **state)
{
    (void)state;
    char *path = export_to_file("pack:2 numa:1 core:2 pu:2", NO_KINDS);
    struct sigaction count = {.sa_handler = count_child}, old;
    sigemptyset(&count.sa_mask);
    assert_int_equal(sigaction(SIGCHLD, &count, &old), 0);
    children_ended = 0;
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, load_repeatedly, path), 0);
    for (int i = 0; i < 4; i++) {
        void *failed = NULL;
        assert_int_equal(pthread_join(threads[i], &failed), 0);
        assert_null(failed);
    }
    sigaction(SIGCHLD, &old, NULL);
    assert_int_equal(children_ended, 0);
    unlink(path);
    free(path);
}

/* The affinity mask of the calling thread, as a set sized by the kernel. */
static bool in_affinity(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return cpu < CPU_SETSIZE; /* a mask larger than 1024 CPUs: not checked here */
    return cpu < CPU_SETSIZE && CPU_ISSET(cpu, &set);
}

static void test_live(void **state)
{
    (void)state;
    pf_topology *t = load_source(NULL);
    assert_true(pf_topology_is_live(t));
    assert_string_equal(pf_topology_source(t), "live");
    size_t n, allowed = 0;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        if (!c[i].allowed)
            continue;
        allowed++;
        assert_true(in_affinity(c[i].cpu));
    }
    assert_true(allowed >= 1);
    assert_true(pf_topology_ncores(t) >= 1);
    pf_topology_free(t);

    t = load_source("live");
    assert_true(pf_topology_is_live(t));
    pf_topology_cpus(t, &allowed);
    assert_int_equal(allowed, n);
    pf_topology_free(t);
}

/*
 * In a child bound to CPU 1 only, the live topology allows CPU 1 and nothing
 * else.  The child reports through its exit status (no cmocka in there).
 */
static int child_bound_to_cpu1(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(1, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        return 10;
    pf_topology *t = NULL;
    char *why = NULL;
    if (pf_topology_load(NULL, &t, &why) != 0) {
        free(why);
        return 11;
    }
    size_t n;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        if (c[i].allowed != (c[i].cpu == 1))
            rc = 12;
    if (!pf_topology_cpu(t, 1))
        rc = 13;
    pf_topology_free(t);
    return rc;
}

static void test_live_affinity(void **state)
{
    (void)state;
    cpu_set_t set;
    CPU_ZERO(&set);
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    if (CPU_COUNT(&set) < 2 || !CPU_ISSET(1, &set))
        skip();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_bound_to_cpu1());
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char *why = NULL;
    assert_int_equal(pf_topology_load("synthetic:" DUAL, NULL, &why), -EINVAL);
    free(why);
    /* Without a place for the reason, failures still report their code. */
    pf_topology *t = NULL;
    assert_int_equal(pf_topology_load("synthetic:nonsense", &t, NULL), -EINVAL);
    assert_null(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_dual_socket),
        cmocka_unit_test(test_synthetic_nodes_per_package),
        cmocka_unit_test(test_synthetic_far_siblings_and_caches),
        cmocka_unit_test(test_synthetic_without_cores),
        cmocka_unit_test(test_synthetic_quotes),
        cmocka_unit_test(test_synthetic_malformed),
        cmocka_unit_test(test_synthetic_check),
        cmocka_unit_test(test_synthetic_bounded_load),
        cmocka_unit_test(test_xml_round_trip),
        cmocka_unit_test(test_xml_cpu_kinds),
        cmocka_unit_test(test_xml_malformed),
        cmocka_unit_test(test_xml_cases),
        cmocka_unit_test(test_xml_check_bytes),
        cmocka_unit_test(test_xml_limits),
        cmocka_unit_test(test_xml_exports),
        cmocka_unit_test(test_xml_seed_corpus),
        cmocka_unit_test(test_xml_threads),
        cmocka_unit_test(test_live),
        cmocka_unit_test(test_live_affinity),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
