/*
 * pinfer.h - the public interface of libpinfer.
 *
 * One header, the reference manual: every function says what it returns and
 * who frees what.
 *
 * Conventions
 *   - Functions return 0 on success or a negative errno-style code
 *     (-EINVAL, -ENOMEM, -ENOENT, ...); pf_strerror() names it.  Nothing
 *     relies on errno after a call returns.
 *   - Functions that can fail on user input take an optional `char **why`:
 *     when it is not NULL and the call fails, *why receives a one-line,
 *     malloc'd explanation (free() it); on success *why is left untouched.
 *   - Every object has a create/free pair; freeing NULL is a no-op.
 *     Strings and arrays handed to the caller are freed with free().
 *   - CPU ids, core ids, socket ids and node ids are non-negative ints below
 *     PF_ID_LIMIT.  There is no fixed CPU count (no 1024-CPU limit).
 */
#ifndef PINFER_H
#define PINFER_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PINFER_VERSION "0.1.0"

/* Ids (CPU, core, socket, node) must be below this; larger ones are errors. */
#define PF_ID_LIMIT (1 << 22)

/* A static string naming a return code of this library ("invalid argument"). */
const char *pf_strerror(int code);

/* ------------------------------------------------------------------------ */
/* CPU lists                                                                 */

/*
 * Parse a list of ids such as "0-3,8, 10-11".  Spaces around items, a
 * trailing comma, any order and duplicates are tolerated; the result is
 * ascending and without duplicates.  Errors (-EINVAL, with *why): an empty
 * list, "3-0", "0-", "-3", "a", "1.5", an id >= PF_ID_LIMIT.
 * On success *ids (free()) holds *count ids; *ids is NULL when count is 0,
 * which cannot happen since an empty list is an error.
 */
int pf_cpulist_parse(const char *text, int **ids, size_t *count, char **why);

/*
 * Format ids as a list, ranges collapsed: {0,1,2,3,8,10,11} -> "0-3,8,10-11".
 * The ids need not be sorted or unique.  *text is malloc'd ("" for count 0).
 * Returns 0, -EINVAL (negative id) or -ENOMEM.
 */
int pf_cpulist_format(const int *ids, size_t count, char **text);

/* ------------------------------------------------------------------------ */
/* Topology                                                                  */

typedef struct pf_topology pf_topology;

/* One hardware thread (a "CPU" for the OS). */
typedef struct pf_cpu_info {
    int cpu;         /* OS CPU id */
    int core;        /* core id as the source numbers it (unique per socket) */
    int socket;      /* socket (package) id */
    int node;        /* NUMA node id; the socket's id when the source has none */
    int smt_rank;    /* 0 for the core's first thread (its lowest CPU id),
                        1, 2, ... for its SMT siblings in ascending id order */
    int core_first;  /* lowest CPU id of this CPU's core */
    int llc;         /* last-level cache group: lowest CPU id sharing it; -1 unknown */
    bool efficiency; /* an efficiency core of a hybrid CPU */
    bool allowed;    /* this process may run there (affinity and cgroup) */
} pf_cpu_info;

/*
 * Load a topology.  `source` is one of
 *   NULL or "live"            this machine, through hwloc, with `allowed` set
 *                             from the process's affinity mask and cgroup;
 *   "synthetic:<description>" an hwloc synthetic description,
 *                             e.g. "synthetic:pack:2 numa:1 core:4 pu:2";
 *   a file path               the output of `lscpu --parse[=...]`, of
 *                             `lscpu -e` / `lscpu --all --extended`, or an
 *                             hwloc XML export (told apart by content).
 * Non-live topologies have every CPU allowed.  Errors (with *why naming the
 * file and line where there is one): -ENOENT / -EACCES (unreadable file),
 * -EINVAL (malformed input), -ENOMEM, -ENOTSUP (hwloc failed).
 * Free *out with pf_topology_free().
 */
int pf_topology_load(const char *source, pf_topology **out, char **why);
void pf_topology_free(pf_topology *topo);

/* "live", the file path, or "synthetic:..." (owned by the topology). */
const char *pf_topology_source(const pf_topology *topo);
/* true for the live machine. */
bool pf_topology_is_live(const pf_topology *topo);

/* All CPUs, ascending by id; *count receives their number.  Owned by topo. */
const pf_cpu_info *pf_topology_cpus(const pf_topology *topo, size_t *count);
/* The CPU with this id, or NULL. */
const pf_cpu_info *pf_topology_cpu(const pf_topology *topo, int cpu);

/* Counts over the whole topology (allowed or not). */
size_t pf_topology_ncores(const pf_topology *topo);
size_t pf_topology_nsockets(const pf_topology *topo);
/* NUMA node ids, ascending; owned by topo. */
const int *pf_topology_nodes(const pf_topology *topo, size_t *count);

/* ------------------------------------------------------------------------ */
/* Planning: topology + options -> instances.  Pure: no I/O, no environment. */

typedef enum pf_strategy {
    PF_STRATEGY_CLOSE = 0, /* keep the first instances that fit */
    PF_STRATEGY_SCATTER    /* spread the kept instances evenly */
} pf_strategy;

typedef struct pf_plan_options {
    int ninstances;          /* NI; -1 = not given (0 and < -1 are errors) */
    int ncores_per_instance; /* NC; 0 = not given, -1 = split evenly with the
                                remainder to the first instances */
    int node_id;             /* -1 = not given */
    const char *nodes_list;  /* NULL = not given; an id list */
    const char *core_list;   /* NULL = not given; a CPU list */
    bool use_logical_cores;
    bool use_e_cores;
    bool bind_numa_node;
    pf_strategy strategy;
    bool latency_mode;
    bool throughput_mode;
    bool multi_instance;
    int rank;                 /* -1 = not given */
    const char *instance_idx; /* NULL or "-1" = not given; an id list */
    int local_rank;           /* torchrun's LOCAL_RANK; -1 = not set */
    int local_world_size;     /* torchrun's LOCAL_WORLD_SIZE; -1 = not set */
} pf_plan_options;

/* Fill *opts with "nothing given". */
void pf_plan_options_init(pf_plan_options *opts);

typedef struct pf_instance {
    int index;      /* its index in the full plan (before --rank selection) */
    int *cpus;      /* ascending */
    size_t ncpus;
    int *nodes;     /* distinct nodes of cpus, ascending */
    size_t nnodes;
    int threads;    /* OpenMP threads: the number of CPUs */
} pf_instance;

typedef struct pf_plan {
    pf_instance *instances;
    size_t ninstances;
    char **warnings; /* one line each, no "pinfer: warning: " prefix */
    size_t nwarnings;
} pf_plan;

/*
 * Plan instances as launcher.md section 3 says.  On success *out is a plan
 * to free with pf_plan_free().  Errors: -EINVAL with *why for every
 * impossible request (no plan is returned, nothing is half-done), -ENOMEM.
 */
int pf_plan_instances(const pf_topology *topo, const pf_plan_options *opts,
                      pf_plan **out, char **why);
void pf_plan_free(pf_plan *plan);

/* ------------------------------------------------------------------------ */
/* This machine: ISA features and the libraries a launcher preloads          */

/*
 * The instruction-set features that matter for inference which this
 * machine's CPU has and the OS enables, spelled as /proc/cpuinfo spells them,
 * in this order: "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
 * "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8".
 * Stores up to `max` static strings in names and returns how many features
 * there are in all (call with max 0 to count).  Read from CPUID on x86,
 * /proc/cpuinfo elsewhere.
 */
size_t pf_isa_features(const char **names, size_t max);

typedef enum pf_library {
    PF_LIBRARY_TCMALLOC = 0, /* libtcmalloc.so[.4] */
    PF_LIBRARY_JEMALLOC,     /* libjemalloc.so[.2] */
    PF_LIBRARY_IOMP,         /* libiomp5.so, or LLVM's libomp.so[.5] */
    PF_LIBRARY_COUNT
} pf_library;

/* "tcmalloc", "jemalloc", "iomp" (static). */
const char *pf_library_name(pf_library lib);
/* The Debian package that provides it, for messages (static). */
const char *pf_library_package(pf_library lib);

/*
 * Find a library in the order of launcher.md section 4: $CONDA_PREFIX/lib,
 * $VIRTUAL_ENV/lib, ~/.local/lib, /usr/local/lib, /usr/local/lib64,
 * /usr/lib/<multiarch>, /usr/lib, /usr/lib64, then the dynamic loader's
 * cache (/etc/ld.so.cache).  Versioned sonames count.  CONDA_PREFIX,
 * VIRTUAL_ENV and HOME are read from envp (NULL-terminated "NAME=value"
 * strings; NULL means the process's environment).  With `system` false only
 * those three environment directories are searched (for tests).
 * On success *path (free()) is the file's absolute path.
 * Returns 0, -ENOENT (not found), -EINVAL, -ENOMEM.
 */
int pf_library_find(pf_library lib, char *const *envp, bool system, char **path);

#ifdef __cplusplus
}
#endif

#endif /* PINFER_H */
