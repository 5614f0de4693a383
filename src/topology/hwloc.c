/*
 * topo_hwloc.c - the hwloc sources of the topology model: the live machine,
 * an hwloc XML export, and an hwloc synthetic description.
 *
 * hwloc does the discovery; this file only asks it for what the model holds
 * (packages, cores, PUs, NUMA nodes, data caches, CPU kinds), turns every PU
 * into a pf__cpu_row and hands the rows to pf__topology_build().
 *
 * Start-up cost is the point of most of what follows: a launcher loads the
 * live topology on every start.  See docs/topology.md for the measurements.
 *
 * An XML file is user input, and hwloc's XML importer trusts it (hwloc 2.9
 * dereferences NULL on a PU without a nodeset).  pf__hwloc_xml_check()
 * (hwloc_xml.c) reads the text first, in-process, and hwloc only gets what
 * has the shape of an hwloc 2.x export; nothing here forks, so loading is
 * safe in multi-threaded programs.  A synthetic description is checked the
 * same way, by pf__synthetic_check() (synthetic.c): hwloc 2.9 aborts on
 * some, and needs minutes for wide ones.
 */
#include "topology/topology.h"
#include "base/util.h"
#include "topology/hwloc_xml.h"

#include <errno.h>
#include <hwloc.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define PF_HAVE_SINGLE_THREADED 1
#endif
#endif

/* A PU without a core ancestor is a core of its own: core = this + its logical index. */
#define LONE_PU_CORE_BASE (1 << 21)
/* Cache levels are numbered apart so that an L2 and an L3 never share an llc key. */
#define LLC_LEVEL_STRIDE (1 << 24)

/*
 * hwloc_topology_init() dlopen()s every plugin it finds (PCI, OpenCL, GL,
 * libxml2 on Debian), which pulls in libpciaccess, libOpenCL, libX11, libxml2:
 * about 3 ms, more than the whole discovery.  None of them describes CPUs.
 * The only switch is the environment variable HWLOC_PLUGINS_PATH, read once
 * by hwloc_topology_init(); an empty path loads no plugin.  Changing the
 * environment is only safe while no other thread can read it, so this is
 * done only in a single-threaded process, only when the user has set neither
 * HWLOC_PLUGINS_PATH nor HWLOC_PLUGINS_BLACKLIST, and undone right after.
 */
static bool plugins_off(void)
{
#ifdef PF_HAVE_SINGLE_THREADED
    if (!__libc_single_threaded)
        return false;
    if (getenv("HWLOC_PLUGINS_PATH") || getenv("HWLOC_PLUGINS_BLACKLIST"))
        return false;
    return setenv("HWLOC_PLUGINS_PATH", "", 0) == 0;
#else
    return false;
#endif
}

static int init_topology(hwloc_topology_t *topo)
{
    bool restore = plugins_off();
    int rc = hwloc_topology_init(topo);
    if (restore)
        unsetenv("HWLOC_PLUGINS_PATH");
    return rc;
}

/*
 * Keep only what the model reads.  Every filtered type is work hwloc skips:
 * no PCI scan, no OS devices, no instruction caches, no memory attributes.
 * The data caches stay, for the last-level cache groups.  The x86 component
 * is left out: on Linux it adds nothing the model needs, and it reads CPUID
 * on every PU by migrating the thread to each in turn (its cost grows with
 * the CPU count).  "linux:io" is the Linux component's I/O phase.
 */
static int configure(hwloc_topology_t topo, bool xml)
{
    int rc = 0;
    unsigned long flags = HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED;
#if HWLOC_API_VERSION >= 0x00020800
    /*
     * An XML file's distances and memory attributes are not read at all: the
     * model needs neither, and what hwloc's core does with them is more than
     * pf__hwloc_xml_check() can vouch for (it checks their form only).
     */
    if (xml)
        flags |= HWLOC_TOPOLOGY_FLAG_NO_DISTANCES | HWLOC_TOPOLOGY_FLAG_NO_MEMATTRS;
#else
    (void)xml;
#endif
    rc |= hwloc_topology_set_flags(topo, flags);
    rc |= hwloc_topology_set_all_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_NONE);
    rc |= hwloc_topology_set_type_filter(topo, HWLOC_OBJ_PACKAGE, HWLOC_TYPE_FILTER_KEEP_ALL);
    rc |= hwloc_topology_set_type_filter(topo, HWLOC_OBJ_CORE, HWLOC_TYPE_FILTER_KEEP_ALL);
    /* Groups that bring structure stay: synthetic NUMA nodes hang off them. */
    rc |= hwloc_topology_set_type_filter(topo, HWLOC_OBJ_GROUP, HWLOC_TYPE_FILTER_KEEP_STRUCTURE);
    rc |= hwloc_topology_set_cache_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_ALL);
    rc |= hwloc_topology_set_icache_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_NONE);
    rc |= hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_NONE);
    /* Unknown component names are not errors for hwloc; these only save time. */
    hwloc_topology_set_components(topo, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "x86");
    hwloc_topology_set_components(topo, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "linux:io");
    return rc == 0 ? 0 : -1;
}

/*
 * The calling thread's affinity mask (sched_getaffinity(0)), as an hwloc
 * bitmap.
 */
static int get_affinity(hwloc_bitmap_t set)
{
    size_t size = 0;
    int err;
    cpu_set_t *mask = pf__affinity_read(&size, &err);
    if (!mask)
        return -err;
    int rc = 0;
    hwloc_bitmap_zero(set);
    for (size_t cpu = 0; cpu < size * 8 && rc == 0; cpu++)
        if (CPU_ISSET_S(cpu, size, mask) && hwloc_bitmap_set(set, (unsigned)cpu))
            rc = -ENOMEM;
    CPU_FREE(mask);
    return rc;
}

/* A row found by its CPU id (rows come in hwloc's logical order). */
typedef struct cpu_slot {
    unsigned cpu;
    size_t row;
} cpu_slot;

static int by_slot_cpu(const void *a, const void *b)
{
    const cpu_slot *x = a, *y = b;
    return (x->cpu > y->cpu) - (x->cpu < y->cpu);
}

/*
 * The NUMA node of each PU: the node whose cpuset holds it.  A PU can be near
 * several nodes (DRAM and HBM, MCDRAM or CXL memory on the same package):
 * prefer ordinary memory (no subtype, or hwloc's "DRAM" on heterogeneous
 * machines) and then the lowest id, so that every PU of a core lands in the
 * same node.  One pass over each node's CPUs, not one over the nodes per PU:
 * a synthetic or XML topology can have thousands of nodes.
 */
static int assign_nodes(hwloc_topology_t topo, pf__cpu_row *rows, size_t n)
{
    cpu_slot *slots = malloc((n ? n : 1) * sizeof *slots);
    bool *plain_best = calloc(n ? n : 1, sizeof *plain_best);
    if (!slots || !plain_best) {
        free(slots);
        free(plain_best);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        slots[i] = (cpu_slot){(unsigned)rows[i].cpu, i};
        rows[i].node = -1;
    }
    qsort(slots, n, sizeof *slots, by_slot_cpu);
    hwloc_obj_t node = NULL;
    while ((node = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, node)) != NULL) {
        if (!node->cpuset || node->os_index == HWLOC_UNKNOWN_INDEX || node->os_index >= PF_ID_LIMIT)
            continue;
        int id = (int)node->os_index;
        bool plain = !node->subtype || strcmp(node->subtype, "DRAM") == 0;
        unsigned cpu;
        hwloc_bitmap_foreach_begin(cpu, node->cpuset)
        {
            cpu_slot key = {cpu, 0};
            const cpu_slot *hit = bsearch(&key, slots, n, sizeof *slots, by_slot_cpu);
            if (hit) {
                pf__cpu_row *r = &rows[hit->row];
                if (r->node < 0 || (plain && !plain_best[hit->row]) ||
                    (plain == plain_best[hit->row] && id < r->node)) {
                    r->node = id;
                    plain_best[hit->row] = plain;
                }
            }
        }
        hwloc_bitmap_foreach_end();
    }
    free(slots);
    free(plain_best);
    return 0;
}

/* The highest-level data or unified cache above the PU, as a unique key; -1 none. */
static int llc_of(hwloc_obj_t pu)
{
    hwloc_obj_t llc = NULL;
    for (hwloc_obj_t o = pu->parent; o; o = o->parent)
        if (hwloc_obj_type_is_dcache(o->type))
            llc = o;
    if (!llc || llc->logical_index >= LLC_LEVEL_STRIDE)
        return -1;
    unsigned level = llc->attr->cache.depth;
    if (level > 6)
        level = 6;
    return (int)(level * LLC_LEVEL_STRIDE + llc->logical_index);
}

/*
 * CPU kinds.  With two kinds or more, every PU outside the highest-ranked
 * kind (hwloc's "efficiency" ranks performance: higher is faster) is an
 * efficiency core.  When hwloc could not rank the kinds (every efficiency
 * -1), there is no answer here; the kinds' FrequencyMaxMHz, if any, go into
 * maxmhz and pf__topology_build applies the same MAXMHZ gap rule as lscpu.
 * One kind or none: efficiency unknown (-1), maxmhz 0, so no E-cores.
 */
static int apply_cpukinds(hwloc_topology_t topo, pf__cpu_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rows[i].efficiency = -1;
        rows[i].maxmhz = 0;
    }
    int nr = hwloc_cpukinds_get_nr(topo, 0);
    if (nr <= 1)
        return 0;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set)
        return -ENOMEM;
    int top = -1, top_efficiency = -1;
    for (int k = 0; k < nr; k++) {
        int efficiency = -1;
        if (hwloc_cpukinds_get_info(topo, (unsigned)k, NULL, &efficiency, NULL, NULL, 0) == 0 &&
            efficiency > top_efficiency) {
            top = k;
            top_efficiency = efficiency;
        }
    }
    for (int k = 0; k < nr; k++) {
        unsigned ninfos = 0;
        struct hwloc_info_s *infos = NULL;
        if (hwloc_cpukinds_get_info(topo, (unsigned)k, set, NULL, &ninfos, &infos, 0) != 0)
            continue;
        double mhz = 0;
        for (unsigned j = 0; j < ninfos; j++)
            if (infos[j].name && infos[j].value && strcmp(infos[j].name, "FrequencyMaxMHz") == 0)
                mhz = strtod(infos[j].value, NULL);
        for (size_t i = 0; i < n; i++) {
            if (!hwloc_bitmap_isset(set, (unsigned)rows[i].cpu))
                continue;
            if (top >= 0)
                rows[i].efficiency = k != top;
            else if (mhz > 0)
                rows[i].maxmhz = mhz;
        }
    }
    if (top >= 0)
        for (size_t i = 0; i < n; i++)
            if (rows[i].efficiency < 0)
                rows[i].efficiency = 0; /* in no kind: not known to be an E-core */
    hwloc_bitmap_free(set);
    return 0;
}

/*
 * One row per PU.  `allowed` is NULL for sources that are not this machine
 * (every CPU allowed).
 */
static int make_rows(const char *name, hwloc_topology_t topo, hwloc_const_bitmap_t allowed,
                     pf__cpu_row **out, size_t *count, char **why)
{
    int npus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    if (npus <= 0)
        return pf__fail(why, -EINVAL, "%s: no online CPU found", name);
    pf__cpu_row *rows = calloc((size_t)npus, sizeof *rows);
    if (!rows)
        return pf__fail(why, -ENOMEM, "out of memory");
    size_t n = 0;
    int rc = 0;
    hwloc_obj_t pu = NULL;
    while (rc == 0 && n < (size_t)npus &&
           (pu = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PU, pu)) != NULL) {
        unsigned cpu = pu->os_index;
        hwloc_obj_t pkg = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pu);
        unsigned socket = 0;
        if (pkg)
            socket = pkg->os_index != HWLOC_UNKNOWN_INDEX ? pkg->os_index : pkg->logical_index;
        hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
        unsigned core_id = core ? core->logical_index : LONE_PU_CORE_BASE + pu->logical_index;

        if (cpu == HWLOC_UNKNOWN_INDEX || cpu >= PF_ID_LIMIT)
            rc = pf__fail(why, -EINVAL, "%s: a CPU has no usable id (%u)", name, cpu);
        else if (socket >= PF_ID_LIMIT)
            rc = pf__fail(why, -EINVAL, "%s: CPU %u has a package id too large (%u)", name, cpu,
                          socket);
        else if (core_id >= PF_ID_LIMIT)
            rc = pf__fail(why, -EINVAL, "%s: too many cores", name);
        if (rc < 0)
            break;
        rows[n++] = (pf__cpu_row){
            .cpu = (int)cpu,
            .core = (int)core_id,
            .socket = (int)socket,
            .node = -1,
            .llc = llc_of(pu),
            .allowed = !allowed || hwloc_bitmap_isset(allowed, cpu),
        };
    }
    if (rc == 0 && (assign_nodes(topo, rows, n) < 0 || apply_cpukinds(topo, rows, n) < 0))
        rc = pf__fail(why, -ENOMEM, "out of memory");
    if (rc < 0) {
        free(rows);
        return rc;
    }
    *out = rows;
    *count = n;
    return 0;
}

/* A copy of a synthetic description without one pair of surrounding quotes. */
static char *unquote(const char *s)
{
    size_t len = strlen(s);
    if (len >= 2 && (s[0] == '"' || s[0] == '\'') && s[len - 1] == s[0]) {
        s++;
        len -= 2;
    }
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

/* Point the topology at its source: 0, or a failure with *why. */
static int select_source(const char *name, hwloc_topology_t topo, const char *xml, size_t xml_len,
                         const char *synthetic, char **why)
{
    if (xml) {
        /* hwloc wants the size with the terminating NUL, which our caller provides. */
        if (xml_len == 0 || xml_len >= INT_MAX)
            return pf__fail(why, -EINVAL, "%s: not a valid hwloc XML topology", name);
        if (hwloc_topology_set_xmlbuffer(topo, xml, (int)xml_len + 1) < 0)
            return pf__fail(why, -EINVAL, "%s: not a valid hwloc XML topology", name);
        return 0;
    }
    if (synthetic && hwloc_topology_set_synthetic(topo, synthetic) < 0)
        return pf__fail(why, -EINVAL, "%s: hwloc cannot parse this synthetic description", name);
    return 0;
}

/*
 * The live machine's allowed CPUs: hwloc's allowed set (the cgroup cpuset)
 * and the affinity mask of the calling thread, which is the process's own
 * until it starts threads.
 */
static int live_allowed(const char *name, hwloc_topology_t topo, hwloc_bitmap_t allowed, char **why)
{
    hwloc_bitmap_t affinity = hwloc_bitmap_alloc();
    if (!affinity)
        return pf__fail(why, -ENOMEM, "out of memory");
    int rc = get_affinity(affinity);
    if (rc < 0) {
        hwloc_bitmap_free(affinity);
        if (rc == -ENOMEM)
            return pf__fail(why, rc, "out of memory");
        return pf__fail(why, -ENOTSUP, "%s: cannot read this process's CPU affinity: %s", name,
                        strerror(-rc));
    }
    rc = hwloc_bitmap_and(allowed, hwloc_topology_get_allowed_cpuset(topo), affinity);
    hwloc_bitmap_free(affinity);
    if (rc < 0)
        return pf__fail(why, -ENOMEM, "out of memory");
    return 0;
}

/* Everything up to the rows: discovery through hwloc, then one row per PU. */
static int load_rows(const char *name, const char *xml, size_t xml_len, const char *synthetic,
                     pf__cpu_row **rows, size_t *n, char **why)
{
    bool live = !xml && !synthetic;
    hwloc_topology_t topo;
    if (init_topology(&topo) < 0)
        return pf__fail(why, -ENOMEM, "%s: cannot initialise hwloc: out of memory", name);

    hwloc_bitmap_t allowed = NULL;
    int rc = configure(topo, xml != NULL);
    if (rc < 0) {
        rc = pf__fail(why, -ENOTSUP, "%s: hwloc refused the discovery settings", name);
        goto out;
    }
    rc = select_source(name, topo, xml, xml_len, synthetic, why);
    if (rc < 0)
        goto out;
    if (hwloc_topology_load(topo) < 0) {
        if (xml)
            rc = pf__fail(why, -EINVAL, "%s: not a valid hwloc XML topology", name);
        else if (synthetic)
            rc = pf__fail(why, -EINVAL, "%s: hwloc cannot parse this synthetic description", name);
        else
            rc = pf__fail(why, -ENOTSUP, "%s: hwloc cannot read this machine's topology: %s", name,
                          strerror(errno));
        goto out;
    }
    if (live) {
        allowed = hwloc_bitmap_alloc();
        if (!allowed) {
            rc = pf__fail(why, -ENOMEM, "out of memory");
            goto out;
        }
        rc = live_allowed(name, topo, allowed, why);
        if (rc < 0)
            goto out;
    }
    rc = make_rows(name, topo, allowed, rows, n, why);

out:
    hwloc_bitmap_free(allowed);
    hwloc_topology_destroy(topo);
    return rc;
}

int pf__topology_load_hwloc(const char *name, const char *xml, size_t xml_len,
                            const char *synthetic, pf_topology **out, char **why)
{
    /*
     * hwloc's XML importer trusts its input and crashes on files its own
     * exports never look like: check the shape first (hwloc_xml.c).
     */
    if (xml) {
        int rc = pf__hwloc_xml_check(name, xml, xml_len, why);
        if (rc < 0)
            return rc;
    }
    /*
     * A synthetic description is checked too: hwloc 2.9 aborts on some, and
     * takes minutes and gigabytes to build wide ones (synthetic.c).
     */
    char *desc = NULL;
    if (synthetic) {
        if (!(desc = unquote(synthetic)))
            return pf__fail(why, -ENOMEM, "out of memory");
        int rc = 0;
        if (!desc[strspn(desc, " \t\n")])
            rc = pf__fail(why, -EINVAL, "%s: empty synthetic description", name);
        else
            rc = pf__synthetic_check(name, desc, strlen(desc), NULL, why);
        if (rc < 0) {
            free(desc);
            return rc;
        }
    }
    pf__cpu_row *rows = NULL;
    size_t n = 0;
    int rc = load_rows(name, xml, xml_len, desc, &rows, &n, why);
    free(desc);
    if (rc < 0)
        return rc;
    rc = pf__topology_build(name, !xml && !synthetic, rows, n, out, why);
    free(rows);
    return rc;
}
