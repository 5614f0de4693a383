/*
 * test_sysfs.c - the sysfs source: the live machine against hwloc (all
 * fields, also under a narrowed affinity mask), the constructed trees of
 * tests/fixtures/sysfs against hand-written rows, the cgroup cpuset and CPU
 * quota, and malformed files (an error naming the file, never a crash).
 */
#include "pf_test.h"
#include "topology/topology.h"

#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Loading must fail with `code` and a one-line message holding `needle`. */
static void expect_failure(const char *source, int code, const char *needle)
{
    pf_topology *t = NULL;
    char *why = NULL;
    int rc = pf_topology_load(source, &t, &why);
    if (rc != code)
        print_error("%s: rc %d (%s), wanted %d\n", source, rc, why ? why : "", code);
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

/* "sysfs:<the fixture tree>", in a static buffer. */
static const char *fixture_tree(const char *name)
{
    static char source[4200];
    char rel[256];
    snprintf(rel, sizeof rel, "sysfs/%s", name);
    snprintf(source, sizeof source, "sysfs:%s", fixture(rel));
    return source;
}

/* ------------------------------------------------------------------------ */
/* The live machine: sysfs and hwloc agree                                   */

/* 0 when the two topologies hold the same CPUs, field by field; else why not. */
static const char *differ(const pf_topology *a, const pf_topology *b)
{
    size_t na, nb;
    const pf_cpu_info *x = pf_topology_cpus(a, &na);
    const pf_cpu_info *y = pf_topology_cpus(b, &nb);
    if (na != nb)
        return "CPU count";
    for (size_t i = 0; i < na; i++) {
        if (x[i].cpu != y[i].cpu)
            return "cpu";
        if (x[i].core != y[i].core)
            return "core";
        if (x[i].socket != y[i].socket)
            return "socket";
        if (x[i].node != y[i].node)
            return "node";
        if (x[i].smt_rank != y[i].smt_rank)
            return "smt_rank";
        if (x[i].core_first != y[i].core_first)
            return "core_first";
        if (x[i].llc != y[i].llc)
            return "llc";
        if (x[i].efficiency != y[i].efficiency)
            return "efficiency";
        if (x[i].allowed != y[i].allowed)
            return "allowed";
    }
    if (pf_topology_ncores(a) != pf_topology_ncores(b))
        return "core count";
    if (pf_topology_nsockets(a) != pf_topology_nsockets(b))
        return "socket count";
    size_t nna, nnb;
    const int *ma = pf_topology_nodes(a, &nna), *mb = pf_topology_nodes(b, &nnb);
    if (nna != nnb || memcmp(ma, mb, nna * sizeof *ma) != 0)
        return "nodes";
    return NULL;
}

static void test_live_matches_hwloc(void **state)
{
    (void)state;
    pf_topology *sysfs = load_source(NULL);
    pf_topology *hwloc = load_source("hwloc");
    assert_string_equal(pf_topology_source(sysfs), "live");
    assert_string_equal(pf_topology_source(hwloc), "hwloc");
    assert_true(pf_topology_is_live(sysfs));
    assert_true(pf_topology_is_live(hwloc));
    const char *field = differ(sysfs, hwloc);
    if (field)
        fail_msg("sysfs and hwloc differ in %s", field);
    /* Both read the cgroup CPU quota the same way (0 where there is none). */
    assert_true(pf_topology_cpu_quota(sysfs) == pf_topology_cpu_quota(hwloc));
    pf_topology_free(sysfs);
    pf_topology_free(hwloc);
}

/*
 * In a child bound to one CPU of this process's mask, both sources allow
 * that CPU and nothing else, and agree on everything.  Reports through the
 * exit status (no cmocka in the child).
 */
static int child_bound_to(int cpu)
{
    cpu_set_t *set = CPU_ALLOC((size_t)cpu + 1);
    size_t size = CPU_ALLOC_SIZE((size_t)cpu + 1);
    if (!set)
        return 9;
    CPU_ZERO_S(size, set);
    CPU_SET_S((size_t)cpu, size, set);
    int bound = sched_setaffinity(0, size, set);
    CPU_FREE(set);
    if (bound != 0)
        return 10;
    pf_topology *sysfs = NULL, *hwloc = NULL;
    if (pf_topology_load(NULL, &sysfs, NULL) != 0 || pf_topology_load("hwloc", &hwloc, NULL) != 0)
        return 11;
    int rc = differ(sysfs, hwloc) ? 12 : 0;
    size_t n;
    const pf_cpu_info *c = pf_topology_cpus(sysfs, &n);
    for (size_t i = 0; i < n; i++)
        if (c[i].allowed != (c[i].cpu == cpu))
            rc = 13;
    pf_topology_free(sysfs);
    pf_topology_free(hwloc);
    return rc;
}

static void test_live_narrowed_affinity(void **state)
{
    (void)state;
    /* The lowest and the highest CPU this process may use, from the machine. */
    pf_topology *t = load_source(NULL);
    size_t n;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    int lowest = -1, highest = -1;
    for (size_t i = 0; i < n; i++) {
        if (!c[i].allowed)
            continue;
        if (lowest < 0)
            lowest = c[i].cpu;
        highest = c[i].cpu;
    }
    pf_topology_free(t);
    assert_true(lowest >= 0);
    int targets[2] = {lowest, highest};
    for (int k = 0; k < 2; k++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            _exit(child_bound_to(targets[k]));
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0)
            fail_msg("bound to CPU %d: child status %d", targets[k], WEXITSTATUS(status));
    }
}

/*
 * In a child with its own mount namespace where /sys/devices/system/cpu is
 * an empty tmpfs (as in containers that hide it), the live load falls back
 * to hwloc and still succeeds.  77: no namespace for us (not root, no user
 * namespaces): skipped.
 */
static int child_without_cpu_topology(void)
{
    if (unshare(CLONE_NEWNS) != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
        return 77;
    /* Private first, so that nothing mounted here reaches the parent's namespace. */
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("none", "/sys/devices/system/cpu", "tmpfs", 0, NULL) != 0)
        return 77;
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0)
        dup2(null, STDERR_FILENO); /* hwloc says it found no sysfs topology */
    pf_topology *t = NULL;
    if (pf__topology_load_sysfs("t", "/", true, &t, NULL) != -ENOENT)
        return 10;
    if (pf_topology_load(NULL, &t, NULL) != 0)
        return 11;
    size_t n;
    pf_topology_cpus(t, &n);
    int rc = n >= 1 && pf_topology_is_live(t) && !strcmp(pf_topology_source(t), "live") ? 0 : 12;
    pf_topology_free(t);
    return rc;
}

static void test_live_falls_back_to_hwloc(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_without_cpu_topology());
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip();
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ------------------------------------------------------------------------ */
/* Constructed trees against hand-written rows                               */

typedef struct row {
    int cpu, core, socket, node, smt_rank, core_first, llc;
    bool efficiency;
} row;

static void assert_rows(const pf_topology *t, const row *want, size_t nwant)
{
    size_t n;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++) {
        const row *w = &want[i];
        if (c[i].cpu != w->cpu || c[i].core != w->core || c[i].socket != w->socket ||
            c[i].node != w->node || c[i].smt_rank != w->smt_rank ||
            c[i].core_first != w->core_first || c[i].llc != w->llc ||
            c[i].efficiency != w->efficiency)
            fail_msg("row %zu: got cpu %d core %d socket %d node %d smt %d first %d llc %d eff %d; "
                     "wanted %d %d %d %d %d %d %d %d",
                     i, c[i].cpu, c[i].core, c[i].socket, c[i].node, c[i].smt_rank, c[i].core_first,
                     c[i].llc, c[i].efficiency, w->cpu, w->core, w->socket, w->node, w->smt_rank,
                     w->core_first, w->llc, w->efficiency);
        assert_true(c[i].allowed); /* not live: everything */
    }
}

static pf_topology *load_tree(const char *name)
{
    const char *source = fixture_tree(name);
    pf_topology *t = load_source(source);
    assert_string_equal(pf_topology_source(t), source);
    assert_false(pf_topology_is_live(t));
    return t;
}

static void test_dual_socket(void **state)
{
    (void)state;
    /* Core k holds CPUs k and k + 8; cores 0-3 on socket 0 and node 0, 4-7 on 1. */
    row want[16];
    for (int cpu = 0; cpu < 16; cpu++) {
        int k = cpu % 8;
        want[cpu] = (row){cpu, k, k / 4, k / 4, cpu / 8, k, k < 4 ? 0 : 4, false};
    }
    pf_topology *t = load_tree("dual_socket");
    assert_rows(t, want, 16);
    assert_int_equal(pf_topology_ncores(t), 8);
    assert_int_equal(pf_topology_nsockets(t), 2);
    size_t nn;
    const int *nodes = pf_topology_nodes(t, &nn);
    assert_int_equal(nn, 2);
    assert_int_equal(nodes[1], 1);
    pf_topology_free(t);
}

static void test_hybrid(void **state)
{
    (void)state;
    /* P-cores 0-1 with two threads each, then four E-cores; one L3. */
    static const row want[] = {
        {0, 0, 0, 0, 0, 0, 0, false}, {1, 0, 0, 0, 1, 0, 0, false}, {2, 1, 0, 0, 0, 2, 0, false},
        {3, 1, 0, 0, 1, 2, 0, false}, {4, 2, 0, 0, 0, 4, 0, true},  {5, 3, 0, 0, 0, 5, 0, true},
        {6, 4, 0, 0, 0, 6, 0, true},  {7, 5, 0, 0, 0, 7, 0, true},
    };
    pf_topology *t = load_tree("hybrid_2p4e");
    assert_rows(t, want, 8);
    assert_int_equal(pf_topology_ncores(t), 6);
    pf_topology_free(t);
}

static void test_big_little_by_capacity(void **state)
{
    (void)state;
    /* No cpufreq: cpu_capacity 446 against 1024 makes CPUs 0-3 E-cores; an L2 per cluster. */
    row want[6];
    for (int cpu = 0; cpu < 6; cpu++)
        want[cpu] = (row){cpu, cpu, 0, 0, 0, cpu, cpu < 4 ? 0 : 4, cpu < 4};
    pf_topology *t = load_tree("arm_big_little");
    assert_rows(t, want, 6);
    pf_topology_free(t);
}

static void test_offline_cpu(void **state)
{
    (void)state;
    /* CPU 2 is offline: no row, and CPU 3 is a core of its own. */
    static const row want[] = {
        {0, 0, 0, 0, 0, 0, 0, false},
        {1, 0, 0, 0, 1, 0, 0, false},
        {3, 1, 0, 0, 0, 3, 0, false},
    };
    pf_topology *t = load_tree("offline_cpu");
    assert_rows(t, want, 3);
    assert_null(pf_topology_cpu(t, 2));
    pf_topology_free(t);
}

static void test_no_node_folder(void **state)
{
    (void)state;
    /*
     * Even CPUs on socket 0, odd on socket 1; no NUMA: node = socket.  Cores
     * are numbered as hwloc numbers them, socket by socket: 0, 2 | 1, 3.
     */
    static const row want[] = {
        {0, 0, 0, 0, 0, 0, 0, false},
        {1, 2, 1, 1, 0, 1, 1, false},
        {2, 1, 0, 0, 0, 2, 0, false},
        {3, 3, 1, 1, 0, 3, 1, false},
    };
    pf_topology *t = load_tree("no_nodes");
    assert_rows(t, want, 4);
    assert_int_equal(pf_topology_nsockets(t), 2);
    pf_topology_free(t);
}

/* ------------------------------------------------------------------------ */
/* The cgroup cpuset                                                         */

static void expect_cgroup(const char *root, const char *want)
{
    int *cpus = NULL;
    size_t n = 0;
    char *why = NULL;
    int rc = pf__sysfs_cgroup_cpus(root, &cpus, &n, &why);
    if (rc < 0)
        fail_msg("%s: %s", root, why ? why : pf_strerror(rc));
    if (!want) {
        assert_null(cpus);
        assert_int_equal(n, 0);
        return;
    }
    assert_non_null(cpus);
    char *text = NULL;
    assert_int_equal(pf_cpulist_format(cpus, n, &text), 0);
    assert_string_equal(text, want);
    free(text);
    free(cpus);
}

/* The cgroup CPU quota read under root must be `want` CPUs (0: none). */
static void expect_quota(const char *root, double want)
{
    double quota = -1;
    char *why = NULL;
    int rc = pf__sysfs_cgroup_quota(root, &quota, &why);
    if (rc < 0)
        fail_msg("%s: %s", root, why ? why : pf_strerror(rc));
    if (quota != want)
        fail_msg("%s: quota %g, wanted %g", root, quota, want);
}

static bool in_affinity(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return false;
    return cpu < CPU_SETSIZE && CPU_ISSET(cpu, &set);
}

static void test_cgroup_v2(void **state)
{
    (void)state;
    /* worker and job.scope have no cpuset file: /pinfer.slice's 1-2 applies. */
    expect_cgroup(fixture("sysfs/cgroup_v2"), "1-2");
    /* cpu.max: max (none) in worker, 2.5 in job.scope, 4 above: the smallest. */
    expect_quota(fixture("sysfs/cgroup_v2"), 2.5);

    /* Loaded as if live: allowed = the cgroup's CPUs and this thread's mask. */
    pf_topology *t = NULL;
    char *why = NULL;
    int rc = pf__topology_load_sysfs("t", fixture("sysfs/cgroup_v2"), true, &t, &why);
    if (rc < 0)
        fail_msg("%s", why);
    assert_true(pf_topology_is_live(t));
    size_t n;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c[i].allowed, (c[i].cpu == 1 || c[i].cpu == 2) && in_affinity(c[i].cpu));
    assert_true(pf_topology_cpu_quota(t) == 2.5);
    pf_topology_free(t);

    /* The tree as a topology source: not this machine, no quota. */
    t = load_source(fixture_tree("cgroup_v2"));
    assert_true(pf_topology_cpu_quota(t) == 0);
    pf_topology_free(t);
}

static void test_cgroup_v1(void **state)
{
    (void)state;
    /* The cpuset hierarchy's line wins over the v2 one; effective_cpus over cpus. */
    expect_cgroup(fixture("sysfs/cgroup_v1"), "1,3");
    /* The cpu hierarchy under its controller list (cpu,cpuacct): -1 at the root,
       3 CPUs in /job, 2.5 in /job/step. */
    expect_quota(fixture("sysfs/cgroup_v1"), 2.5);
}

static void test_cgroup_none(void **state)
{
    (void)state;
    /* No proc/self/cgroup: nothing restricts. */
    expect_cgroup(fixture("sysfs/dual_socket"), NULL);
    expect_quota(fixture("sysfs/dual_socket"), 0);
}

/* ------------------------------------------------------------------------ */
/* Trees built here: variants and malformed files                            */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tree_remove(const char *root)
{
    assert_int_equal(nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* Write root/rel holding len bytes of text (len 0: strlen); NULL text makes a folder. */
static void tree_put(const char *root, const char *rel, const char *text, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
        *p = '/';
    }
    if (!text) {
        assert_int_equal(mkdir(path, 0755), 0);
        return;
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    size_t size = len ? len : strlen(text);
    assert_int_equal(fwrite(text, 1, size, f), size);
    fclose(f);
}

static void tree_unlink(const char *root, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    assert_int_equal(unlink(path), 0);
}

/*
 * A small machine: CPUs 0-3, one package, cores {0,1} and {2,3}, an L1d per
 * core and an L2 for all, node 0.  Returns the malloc'd root.
 */
static char *tree_base(void)
{
    char tmpl[] = "/tmp/pinfer-sysfs-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *root = strdup(tmpl);
    tree_put(root, "sys/devices/system/cpu/online", "0-3\n", 0);
    for (int cpu = 0; cpu < 4; cpu++) {
        char rel[128], core[32];
        snprintf(core, sizeof core, "%d-%d\n", cpu & ~1, (cpu & ~1) + 1);
#define PUT(file, text)                                                      \
    snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%d/%s", cpu, file); \
    tree_put(root, rel, text, 0)
        PUT("topology/physical_package_id", "0\n");
        PUT("topology/core_cpus_list", core);
        PUT("topology/package_cpus_list", "0-3\n");
        PUT("cache/index0/level", "1\n");
        PUT("cache/index0/type", "Data\n");
        PUT("cache/index0/shared_cpu_list", core);
        PUT("cache/index1/level", "2\n");
        PUT("cache/index1/type", "Unified\n");
        PUT("cache/index1/shared_cpu_list", "0-3\n");
#undef PUT
    }
    tree_put(root, "sys/devices/system/node/node0/cpulist", "0-3\n", 0);
    return root;
}

static pf_topology *load_root(const char *root)
{
    char source[4200];
    snprintf(source, sizeof source, "sysfs:%s", root);
    return load_source(source);
}

static void test_built_base(void **state)
{
    (void)state;
    char *root = tree_base();
    static const row want[] = {
        {0, 0, 0, 0, 0, 0, 0, false},
        {1, 0, 0, 0, 1, 0, 0, false},
        {2, 1, 0, 0, 0, 2, 0, false},
        {3, 1, 0, 0, 1, 2, 0, false},
    };
    pf_topology *t = load_root(root);
    assert_rows(t, want, 4);
    pf_topology_free(t);

    /* A trailing slash on the root changes nothing. */
    char slash[256];
    snprintf(slash, sizeof slash, "%s/", root);
    t = load_root(slash);
    assert_rows(t, want, 4);
    pf_topology_free(t);
    tree_remove(root);
    free(root);
}

static void test_built_variants(void **state)
{
    (void)state;
    /* Without cpu/online: cpu/present less the CPUs whose online file says 0. */
    char *root = tree_base();
    tree_unlink(root, "sys/devices/system/cpu/online");
    tree_put(root, "sys/devices/system/cpu/present", "0-3\n", 0);
    tree_put(root, "sys/devices/system/cpu/cpu1/online", "0\n", 0);
    pf_topology *t = load_root(root);
    size_t n;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    assert_int_equal(n, 3);
    assert_int_equal(c[1].cpu, 2);
    assert_int_equal(c[0].smt_rank, 0);
    pf_topology_free(t);
    tree_remove(root);
    free(root);

    /* Before Linux 5.7: thread_siblings_list and core_siblings_list. */
    root = tree_base();
    for (int cpu = 0; cpu < 4; cpu++) {
        char rel[128];
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%d/topology/core_cpus_list", cpu);
        tree_unlink(root, rel);
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%d/topology/package_cpus_list", cpu);
        tree_unlink(root, rel);
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%d/topology/thread_siblings_list",
                 cpu);
        tree_put(root, rel, cpu < 2 ? "0-1\n" : "2-3\n", 0);
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%d/topology/core_siblings_list", cpu);
        tree_put(root, rel, "0-3\n", 0);
    }
    t = load_root(root);
    c = pf_topology_cpus(t, &n);
    assert_int_equal(n, 4);
    assert_int_equal(c[3].smt_rank, 1);
    assert_int_equal(c[3].core_first, 2);
    assert_int_equal(pf_topology_ncores(t), 2);
    pf_topology_free(t);
    tree_remove(root);
    free(root);

    /* No cache folders: no last-level cache; an instruction cache on top is skipped. */
    root = tree_base();
    for (int cpu = 0; cpu < 4; cpu++) {
        char rel[128];
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%d/cache/index2/type", cpu);
        tree_put(root, rel, "Instruction\n", 0);
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%d/cache/index2/shared_cpu_list", cpu);
        tree_put(root, rel, "0-3\n", 0);
    }
    t = load_root(root);
    c = pf_topology_cpus(t, &n);
    assert_int_equal(c[0].llc, 0);
    assert_int_equal(c[2].llc, 0);
    pf_topology_free(t);
    tree_remove(root);
    free(root);

    root = tree_base();
    for (int cpu = 0; cpu < 4; cpu++) {
        char rel[128];
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%d/cache", cpu);
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", root, rel);
        tree_remove(path);
    }
    t = load_root(root);
    c = pf_topology_cpus(t, &n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c[i].llc, -1);
    pf_topology_free(t);
    tree_remove(root);
    free(root);
}

static void test_built_packages(void **state)
{
    (void)state;
    /* physical_package_id -1 (unknown): packages numbered by their first CPU. */
    char *root = tree_base();
    for (int cpu = 0; cpu < 4; cpu++) {
        char rel[128];
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
        tree_put(root, rel, "-1\n", 0);
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%d/topology/package_cpus_list", cpu);
        tree_put(root, rel, cpu < 2 ? "0-1\n" : "2-3\n", 0);
    }
    tree_unlink(root, "sys/devices/system/node/node0/cpulist");
    tree_put(root, "sys/devices/system/node/node0/cpulist", "0-1\n", 0);
    tree_put(root, "sys/devices/system/node/node1/cpulist", "2-3\n", 0);
    pf_topology *t = load_root(root);
    size_t n;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    assert_int_equal(pf_topology_nsockets(t), 2);
    assert_int_equal(c[1].socket, 0);
    assert_int_equal(c[2].socket, 1);
    assert_int_equal(c[3].node, 1);
    pf_topology_free(t);
    tree_remove(root);
    free(root);

    /* Lists naming offline CPUs, or not naming the CPU itself, do not break anything. */
    root = tree_base();
    tree_put(root, "sys/devices/system/cpu/cpu0/topology/core_cpus_list", "1,9\n", 0);
    tree_put(root, "sys/devices/system/node/node0/cpulist", "0-7\n", 0);
    t = load_root(root);
    c = pf_topology_cpus(t, &n);
    assert_int_equal(n, 4);
    assert_int_equal(c[1].core_first, 0);
    pf_topology_free(t);
    tree_remove(root);
    free(root);
}

static void test_built_kinds(void **state)
{
    (void)state;
    /* No hybrid PMU: a maximum frequency 15% or more below the top makes E-cores. */
    char *root = tree_base();
    for (int cpu = 0; cpu < 4; cpu++) {
        char rel[128];
        snprintf(rel, sizeof rel, "sys/devices/system/cpu/cpu%d/cpufreq/cpuinfo_max_freq", cpu);
        tree_put(root, rel, cpu < 2 ? "4700000\n" : "3500000\n", 0);
    }
    pf_topology *t = load_root(root);
    size_t n;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c[i].efficiency, i >= 2);
    pf_topology_free(t);

    /* The PMUs, when there, decide: here cpu_core lists everything, so no E-core. */
    tree_put(root, "sys/devices/cpu_core/cpus", "0-3\n", 0);
    tree_put(root, "sys/devices/cpu_atom/cpus", "\n", 0);
    t = load_root(root);
    c = pf_topology_cpus(t, &n);
    for (size_t i = 0; i < n; i++)
        assert_false(c[i].efficiency);
    pf_topology_free(t);

    /* Meteor Lake's low-power E-cores count as E-cores. */
    tree_put(root, "sys/devices/cpu_core/cpus", "0-1\n", 0);
    tree_put(root, "sys/devices/cpu_lowpower/cpus", "2-3\n", 0);
    t = load_root(root);
    c = pf_topology_cpus(t, &n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(c[i].efficiency, i >= 2);
    pf_topology_free(t);
    tree_remove(root);
    free(root);
}

typedef struct bad_case {
    const char *rel;  /* the file replaced */
    const char *text; /* its new contents; NULL: a folder instead */
    size_t len;       /* 0: strlen */
    int code;
    const char *needle; /* in the message; NULL: rel */
} bad_case;

static const bad_case BAD[] = {
    {"sys/devices/system/cpu/online", "abc\n", 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/online", "\n", 0, -EINVAL, "lists no CPU"},
    {"sys/devices/system/cpu/online", "0-\n", 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/online", "3-0\n", 0, -EINVAL, "backwards"},
    {"sys/devices/system/cpu/online", "99999999\n", 0, -EINVAL, "out of range"},
    {"sys/devices/system/cpu/online", "0-1\0garbage", 11, -EINVAL, "NUL"},
    {"sys/devices/system/cpu/online", NULL, 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/cpu0/topology/physical_package_id", "x\n", 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/cpu0/topology/physical_package_id", "-2\n", 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/cpu0/topology/physical_package_id", "4194304\n", 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/cpu0/topology/physical_package_id", "1 2\n", 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/cpu0/topology/physical_package_id", "", 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/cpu0/topology/core_cpus_list", "1-0\n", 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/cpu0/topology/package_cpus_list", "zz\n", 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/cpu0/cache/index1/type", NULL, 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/cpu0/cache/index1/shared_cpu_list", ",\n", 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/cpu0/cache/index1/shared_cpu_list", "0x3\n", 0, -EINVAL, NULL},
    {"sys/devices/system/node/node0/cpulist", "x\n", 0, -EINVAL, NULL},
    {"sys/devices/system/node/node99999999/cpulist", "0\n", 0, -EINVAL, "node99999999"},
    {"sys/devices/system/node/node1x/cpulist", "0\n", 0, -EINVAL, "node1x"},
    {"sys/devices/system/node/node1/cpulist", NULL, 0, -EINVAL, NULL},
    {"sys/devices/cpu_core/cpus", "P\n", 0, -EINVAL, NULL},
    {"sys/devices/cpu_atom/cpus", "-\n", 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "fast\n", 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/cpu2/cpufreq/cpuinfo_max_freq", "-5\n", 0, -EINVAL, NULL},
    {"sys/devices/system/cpu/cpu0/cpu_capacity", "1024x\n", 0, -EINVAL, NULL},
};

static void test_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        const bad_case *b = &BAD[i];
        char *root = tree_base();
        if (strstr(b->rel, "cpu_atom"))
            tree_put(root, "sys/devices/cpu_core/cpus", "0-1\n", 0);
        if (strstr(b->rel, "cpu2/cpufreq"))
            tree_put(root, "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3000000\n", 0);
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", root, b->rel);
        unlink(path);
        tree_put(root, b->rel, b->text, b->len);
        char source[4200];
        snprintf(source, sizeof source, "sysfs:%s", root);
        print_message("  case %zu: %s\n", i, b->rel);
        expect_failure(source, b->code, b->needle ? b->needle : b->rel);
        tree_remove(root);
        free(root);
    }
}

static void test_huge_file(void **state)
{
    (void)state;
    char *root = tree_base();
    size_t size = 3u << 20;
    char *text = malloc(size);
    assert_non_null(text);
    memset(text, ' ', size);
    text[size - 2] = '0';
    text[size - 1] = '\n';
    tree_put(root, "sys/devices/system/cpu/online", text, size);
    free(text);
    char source[4200];
    snprintf(source, sizeof source, "sysfs:%s", root);
    expect_failure(source, -EINVAL, "larger than");
    tree_remove(root);
    free(root);
}

/* A FIFO where a file belongs: read as empty at once, not waited on. */
static void test_fifo(void **state)
{
    (void)state;
    char *root = tree_base();
    char path[4200];
    snprintf(path, sizeof path, "%s/sys/devices/system/cpu/online", root);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkfifo(path, 0644), 0);
    char source[4200];
    snprintf(source, sizeof source, "sysfs:%s", root);
    expect_failure(source, -EINVAL, "lists no CPU");
    tree_remove(root);
    free(root);
}

static void test_missing(void **state)
{
    (void)state;
    char *root = tree_base();
    char source[4200];
    snprintf(source, sizeof source, "sysfs:%s", root);
    /* CPU 0 reads the package's id for all four. */
    tree_unlink(root, "sys/devices/system/cpu/cpu0/topology/physical_package_id");
    expect_failure(source, -ENOENT, "cpu0/topology/physical_package_id");
    tree_remove(root);
    free(root);

    root = tree_base();
    snprintf(source, sizeof source, "sysfs:%s", root);
    tree_unlink(root, "sys/devices/system/node/node0/cpulist");
    expect_failure(source, -ENOENT, "node0/cpulist");
    tree_unlink(root, "sys/devices/system/cpu/online");
    expect_failure(source, -ENOENT, "sys/devices/system/cpu/present");
    tree_remove(root);
    expect_failure(source, -ENOENT, root);
    free(root);

    expect_failure("sysfs:", -EINVAL, "sysfs:");
    expect_failure("sysfs:/dev/null", -EINVAL, "/dev/null");
}

static void test_cgroup_malformed(void **state)
{
    (void)state;
    char *root = tree_base();
    int *cpus = NULL;
    size_t n = 0;

    /* Lines that name no usable cgroup: nothing restricts. */
    const char *junk[] = {"",
                          "\n\n",
                          "no colon at all\n",
                          "::\n",
                          "0::relative/path\n",
                          "0::/../../escape\n",
                          "3:cpuset\n",
                          "x:y:z:/w\n"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        tree_put(root, "proc/self/cgroup", junk[i], 0);
        assert_int_equal(pf__sysfs_cgroup_cpus(root, &cpus, &n, NULL), 0);
        assert_null(cpus);
    }
    /* A long path, beyond PATH_MAX: the mount's root instead. */
    size_t len = 9000;
    char *line = malloc(len + 8);
    assert_non_null(line);
    memcpy(line, "0::", 3);
    for (size_t i = 3; i < len; i++)
        line[i] = i % 7 == 3 ? '/' : 'a';
    memcpy(line + len, "\n", 2);
    tree_put(root, "proc/self/cgroup", line, 0);
    free(line);
    tree_put(root, "sys/fs/cgroup/cpuset.cpus.effective", "0-1\n", 0);
    assert_int_equal(pf__sysfs_cgroup_cpus(root, &cpus, &n, NULL), 0);
    assert_int_equal(n, 2);
    free(cpus);

    /* A cpuset file that is not a list: an error naming it. */
    tree_put(root, "proc/self/cgroup", "0::/job\n", 0);
    tree_put(root, "sys/fs/cgroup/job/cpuset.cpus.effective", "all of them\n", 0);
    char *why = NULL;
    assert_int_equal(pf__sysfs_cgroup_cpus(root, &cpus, &n, &why), -EINVAL);
    assert_non_null(why);
    assert_non_null(strstr(why, "sys/fs/cgroup/job/cpuset.cpus.effective"));
    free(why);
    why = NULL;
    pf_topology *t = NULL;
    assert_int_equal(pf__topology_load_sysfs("t", root, true, &t, &why), -EINVAL);
    assert_null(t);
    assert_non_null(strstr(why, "cpuset.cpus.effective"));
    free(why);
    tree_remove(root);
    free(root);
}

/* Quotas in built trees: nesting, "max" and -1, v1 at sys/fs/cgroup/cpu, malformed files. */
static void test_cgroup_quota(void **state)
{
    (void)state;
    char *root = tree_base();

    /* v2: a smaller quota above wins over none below; a larger one below is not the one. */
    tree_put(root, "proc/self/cgroup", "0::/a/b/c\n", 0);
    tree_put(root, "sys/fs/cgroup/a/cpu.max", "50000 100000\n", 0);
    tree_put(root, "sys/fs/cgroup/a/b/cpu.max", "max 100000\n", 0);
    tree_put(root, "sys/fs/cgroup/a/b/c/cpu.max", "800000 100000\n", 0);
    expect_quota(root, 0.5);
    tree_put(root, "sys/fs/cgroup/a/cpu.max", "max 100000\n", 0);
    expect_quota(root, 8);
    tree_put(root, "sys/fs/cgroup/a/b/c/cpu.max", "max 50000\n", 0);
    expect_quota(root, 0);
    /* A path that leaves the namespace: the mount's root is the process's cgroup. */
    tree_put(root, "proc/self/cgroup", "0::/../elsewhere\n", 0);
    tree_put(root, "sys/fs/cgroup/cpu.max", "150000 100000\n", 0);
    expect_quota(root, 1.5);
    /* A v2 path missing under the mount (a container without a cgroup namespace). */
    tree_put(root, "proc/self/cgroup", "0::/docker/1234\n", 0);
    expect_quota(root, 1.5);

    /* v1: the cpu hierarchy's line wins; sys/fs/cgroup/cpu before the controller list. */
    tree_put(root, "proc/self/cgroup", "4:cpu,cpuacct:/x\n3:cpuset:/\n0::/a/b/c\n", 0);
    tree_put(root, "sys/fs/cgroup/cpu/x/cpu.cfs_quota_us", "-1\n", 0);
    tree_put(root, "sys/fs/cgroup/cpu/x/cpu.cfs_period_us", "100000\n", 0);
    expect_quota(root, 0);
    tree_put(root, "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "200000\n", 0);
    tree_put(root, "sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n", 0);
    tree_put(root, "sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_quota_us", "50000\n", 0);
    tree_put(root, "sys/fs/cgroup/cpu,cpuacct/x/cpu.cfs_period_us", "100000\n", 0);
    expect_quota(root, 2);
    /* A quota without its period says nothing. */
    tree_put(root, "sys/fs/cgroup/cpu/x/cpu.cfs_quota_us", "10000\n", 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/sys/fs/cgroup/cpu/x/cpu.cfs_period_us", root);
    assert_int_equal(unlink(path), 0);
    expect_quota(root, 2);

    /* Files that are not quotas: an error naming the file, also for the live load. */
    static const struct {
        const char *line, *rel, *text;
    } bad[] = {
        {"0::/a\n", "sys/fs/cgroup/a/cpu.max", "lots\n"},
        {"0::/a\n", "sys/fs/cgroup/a/cpu.max", "0 100000\n"},
        {"0::/a\n", "sys/fs/cgroup/a/cpu.max", "100000\n"},
        {"0::/a\n", "sys/fs/cgroup/a/cpu.max", "100000 0\n"},
        {"0::/a\n", "sys/fs/cgroup/a/cpu.max", "-5 100000\n"},
        {"4:cpu:/y\n", "sys/fs/cgroup/cpu/y/cpu.cfs_quota_us", "0\n"},
        {"4:cpu:/y\n", "sys/fs/cgroup/cpu/y/cpu.cfs_quota_us", "a while\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tree_put(root, "proc/self/cgroup", bad[i].line, 0);
        tree_put(root, bad[i].rel, bad[i].text, 0);
        double quota = -1;
        char *why = NULL;
        assert_int_equal(pf__sysfs_cgroup_quota(root, &quota, &why), -EINVAL);
        assert_non_null(why);
        if (!strstr(why, bad[i].rel) || !strstr(why, "is not a CPU quota"))
            fail_msg("%s '%s': %s", bad[i].rel, bad[i].text, why);
        free(why);
        why = NULL;
        pf_topology *t = NULL;
        assert_int_equal(pf__topology_load_sysfs("t", root, true, &t, &why), -EINVAL);
        assert_null(t);
        assert_non_null(strstr(why, bad[i].rel));
        free(why);
        tree_put(root, bad[i].rel, "max 100000\n", 0);
        if (strstr(bad[i].rel, "cfs"))
            tree_put(root, bad[i].rel, "-1\n", 0);
    }
    tree_put(root, "sys/fs/cgroup/cpu/y/cpu.cfs_quota_us", "100000\n", 0);
    tree_put(root, "sys/fs/cgroup/cpu/y/cpu.cfs_period_us", "none\n", 0);
    char *why = NULL;
    double quota = -1;
    assert_int_equal(pf__sysfs_cgroup_quota(root, &quota, &why), -EINVAL);
    assert_non_null(strstr(why, "cpu.cfs_period_us"));
    free(why);

    /* Loaded as if live: the topology carries the quota (1.25 in /y, below 2 at the root). */
    tree_put(root, "sys/fs/cgroup/cpu/y/cpu.cfs_period_us", "80000\n", 0);
    pf_topology *t = NULL;
    assert_int_equal(pf__topology_load_sysfs("t", root, true, &t, NULL), 0);
    assert_true(pf_topology_cpu_quota(t) == 1.25);
    pf_topology_free(t);
    tree_remove(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_live_matches_hwloc),
        cmocka_unit_test(test_live_narrowed_affinity),
        cmocka_unit_test(test_live_falls_back_to_hwloc),
        cmocka_unit_test(test_dual_socket),
        cmocka_unit_test(test_hybrid),
        cmocka_unit_test(test_big_little_by_capacity),
        cmocka_unit_test(test_offline_cpu),
        cmocka_unit_test(test_no_node_folder),
        cmocka_unit_test(test_cgroup_v2),
        cmocka_unit_test(test_cgroup_v1),
        cmocka_unit_test(test_cgroup_none),
        cmocka_unit_test(test_built_base),
        cmocka_unit_test(test_built_variants),
        cmocka_unit_test(test_built_packages),
        cmocka_unit_test(test_built_kinds),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_huge_file),
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_cgroup_malformed),
        cmocka_unit_test(test_cgroup_quota),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
