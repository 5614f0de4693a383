/*
 * topology.h - the internal topology model and the interface its sources
 * (sysfs, lscpu text, hwloc) fill in.
 *
 * A source produces rows, one per online CPU, in any order; pf__topology_build
 * checks them, sorts them by CPU id and derives what every source shares:
 * the node fallback, SMT ranks, core representatives, counts, and E-cores
 * from a MAXMHZ gap when the source knows no CPU kinds.
 */
#ifndef PF_TOPOLOGY_H
#define PF_TOPOLOGY_H

#include "pinfer.h"

struct pf_topology {
    char *source;
    bool live;
    pf_cpu_info *cpus; /* ascending by cpu */
    size_t ncpus;
    int *nodes; /* distinct node ids, ascending */
    size_t nnodes;
    size_t ncores;
    size_t nsockets;
    double cpu_quota; /* live: the cgroup CPU quota in CPUs; 0 none (every other source) */
};

typedef struct pf__cpu_row {
    int cpu;
    int core;
    int socket;
    int node;       /* -1: the source has none; the socket's id is used */
    double maxmhz;  /* 0: unknown */
    int llc;        /* -1: unknown */
    int efficiency; /* -1: unknown (derive from maxmhz), else 0 or 1 */
    bool allowed;
    int line; /* the input line it came from, for messages; 0 none */
} pf__cpu_row;

/*
 * Build a topology from rows (which it reorders).  `name` is the source as
 * shown to users and in messages.  Errors: -EINVAL with *why (no CPUs, a CPU
 * listed twice, a core in two nodes), -ENOMEM.
 */
int pf__topology_build(const char *name, bool live, pf__cpu_row *rows, size_t nrows,
                       pf_topology **out, char **why);

/*
 * Parse lscpu output held in text[0, len) (not NUL-terminated): the CSV of
 * `lscpu --parse[=...]` or the table of `lscpu -e`.  `name` names the input in
 * messages ("file:line: ...").  Pure: no I/O.
 */
int pf__topology_parse_lscpu(const char *name, const char *text, size_t len, pf_topology **out,
                             char **why);

/*
 * Load through hwloc: the live machine (xml and synthetic NULL), an XML
 * export held in memory (xml[xml_len] must be a NUL), or a synthetic
 * description.
 */
int pf__topology_load_hwloc(const char *name, const char *xml, size_t xml_len,
                            const char *synthetic, pf_topology **out, char **why);

/*
 * Bounds on a synthetic description (synthetic.c, docs/topology.md): at most
 * this many PUs, explicit indexes below it, and an estimated cost of hwloc's
 * loader (set comparisons times their length in words) of at most
 * PF_SYNTHETIC_MAX_WORK, about a second on the development machine, where one
 * unit of it measured PF_SYNTHETIC_SECONDS_PER_WORK.
 */
#define PF_SYNTHETIC_MAX_PUS 16384
#define PF_SYNTHETIC_MAX_WORK 8.0e8
#define PF_SYNTHETIC_SECONDS_PER_WORK 8.0e-10

/*
 * Check the synthetic description desc[0, len) (without the quotes
 * pf_topology_load() strips) before hwloc reads it: its form, in the subset
 * of hwloc's syntax that synthetic.c describes, and its size.  `name` names
 * the source in messages.  Returns 0, with *pus (when not NULL) the PU
 * count; -EINVAL with *why = "<name>: <what> at '<where>'" (one line) for a
 * description outside the subset, one that hwloc 2.9 would abort on, or one
 * too large (more than PF_SYNTHETIC_MAX_PUS PUs, or too wide to build within
 * PF_SYNTHETIC_MAX_WORK); -ENOMEM.  Pure: no I/O, no global state.
 */
int pf__synthetic_check(const char *name, const char *desc, size_t len, unsigned long *pus,
                        char **why);

/*
 * Load from a Linux sysfs tree under `root` ("/": this machine), reading
 * sys/devices/system/{cpu,node} and sys/devices/cpu_{core,atom}.  `live`
 * sets `allowed` from the cgroup cpuset found under root (see
 * pf__sysfs_cgroup_cpus) and the calling thread's affinity, sets cpu_quota
 * (see pf__sysfs_cgroup_quota), and marks the topology live; otherwise
 * every CPU is allowed and there is no quota.  Errors, with *why naming
 * the file: -ENOENT (a file the model needs is missing), -EINVAL (a file
 * holds what sysfs never writes there), -EACCES, -ENOTSUP (the affinity
 * cannot be read), -ENOMEM.
 */
int pf__topology_load_sysfs(const char *name, const char *root, bool live, pf_topology **out,
                            char **why);

/*
 * The CPUs the cgroup cpuset of this process allows, read under `root`:
 * the process's cgroup from proc/self/cgroup, then the cpuset file of that
 * cgroup or of its nearest ancestor that has one (v1, the cpuset
 * hierarchy: sys/fs/cgroup/cpuset/<path>/cpuset.effective_cpus or
 * cpuset.cpus; v2: sys/fs/cgroup/<path>/cpuset.cpus.effective).  *cpus
 * (free()) is ascending, or NULL with *count 0 when no cpuset restricts.
 * Errors: -EINVAL with *why naming a cpuset file that is not a CPU list,
 * -ENOMEM.
 */
int pf__sysfs_cgroup_cpus(const char *root, int **cpus, size_t *count, char **why);

/*
 * The cgroup CPU quota of this process in CPUs, read under `root`: for the
 * cgroup of the cpu controller in proc/self/cgroup and each of its
 * ancestors, v2's cpu.max ("<quota> <period>", "max <period>": none) under
 * sys/fs/cgroup, or v1's cpu.cfs_quota_us (-1: none) / cpu.cfs_period_us
 * under sys/fs/cgroup/cpu (else sys/fs/cgroup/<its controller list>, such
 * as cpu,cpuacct); the smallest quota / period wins.  *quota is 0 when no
 * level sets one (missing or unreadable files say nothing).  Errors:
 * -EINVAL with *why naming a quota file that holds something else,
 * -ENOMEM.  The live sources (sysfs and hwloc) both read the quota here.
 */
int pf__sysfs_cgroup_quota(const char *root, double *quota, char **why);
/* The same for another process: cgroup_text is its /proc/PID/cgroup (NULL: this process's). */
int pf__sysfs_cgroup_quota_of(const char *root, const char *cgroup_text, double *quota, char **why);

#endif /* PF_TOPOLOGY_H */
