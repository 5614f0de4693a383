/*
 * test_hwloc.c - the hwloc sources of the topology: synthetic descriptions,
 * XML exports (made here with hwloc, so no fixture can go stale), the live
 * machine and its affinity mask.
 */
#include "pf_test.h"

#include <errno.h>
#include <hwloc.h>
#include <hwloc/export.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define DUAL "pack:2 numa:1 core:4 pu:2"

/*
 * Descriptions here name their NUMA level: for one without, hwloc 2.9 inserts
 * it with an overlapping memcpy (harmless with glibc, but valgrind reports it).
 */

/* A topology from a source, or a test failure naming the reason. */
static pf_topology *load(const char *source)
{
    pf_topology *t = NULL;
    char *why = NULL;
    int rc = pf_topology_load(source, &t, &why);
    if (rc < 0) {
        print_error("loading %s: %s\n", source, why ? why : pf_strerror(rc));
        free(why);
        fail();
    }
    assert_null(why);
    return t;
}

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
    pf_topology *t = load("synthetic:" DUAL);
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
    pf_topology *t = load("synthetic:pack:2 numa:2 core:2 pu:2");
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
    pf_topology *t = load("synthetic:pack:1 numa:1 l3:1 l2:2 core:2 pu:2(indexes=0,4,1,5,2,6,3,7)");
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
    t = load("synthetic:pack:2 numa:1 l3:1 core:2 pu:2");
    c = pf_topology_cpus(t, &n);
    assert_int_equal(n, 8);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c[i].llc, i < 4 ? 0 : 4);
    pf_topology_free(t);
}

static void test_synthetic_without_cores(void **state)
{
    (void)state;
    pf_topology *t = load("synthetic:pack:1 numa:1 pu:4");
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
        pf_topology *t = load(sources[i]);
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
    expect_failure("synthetic:pack:2 core:x pu:2", -EINVAL, "synthetic");
    expect_failure("synthetic:", -EINVAL, "synthetic");
    expect_failure("synthetic:\"\"", -EINVAL, "synthetic");
    expect_failure("synthetic:\"pack:2", -EINVAL, "synthetic");
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
    pf_topology *from_xml = load(path);
    pf_topology *from_synthetic = load(source);
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
    pf_topology *t = load(path);
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
    t = load(path);
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
    t = load(path);
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

/* The affinity mask of the calling thread, as a set sized by the kernel. */
static bool in_affinity(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return cpu < CPU_SETSIZE; /* a mask larger than 1024 CPUs: not checked here */
    return cpu < CPU_SETSIZE && CPU_ISSET(cpu, &set);
}

/* The XML check runs in a child; a parent that ignores SIGCHLD must not defeat it. */
static void test_xml_with_sigchld_ignored(void **state)
{
    (void)state;
    char *path = export_to_file("pack:1 numa:1 core:2 pu:2", NO_KINDS);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGCHLD, &ign, &old), 0);
    pf_topology *t = NULL;
    char *why = NULL;
    int rc = pf_topology_load(path, &t, &why);
    sigaction(SIGCHLD, &old, NULL);
    assert_int_equal(rc, 0);
    size_t n;
    pf_topology_cpus(t, &n);
    assert_int_equal(n, 4);
    pf_topology_free(t);
    unlink(path);
    free(path);
}

static void test_live(void **state)
{
    (void)state;
    pf_topology *t = load(NULL);
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

    t = load("live");
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
        cmocka_unit_test(test_xml_round_trip),
        cmocka_unit_test(test_xml_cpu_kinds),
        cmocka_unit_test(test_xml_malformed),
        cmocka_unit_test(test_xml_with_sigchld_ignored),
        cmocka_unit_test(test_live),
        cmocka_unit_test(test_live_affinity),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
