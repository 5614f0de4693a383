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
 *   NULL or "live"            this machine, read from Linux sysfs
 *                             (/sys/devices/system/cpu and node, the hybrid
 *                             PMUs in /sys/devices), with `allowed` set from
 *                             the calling thread's affinity mask and the
 *                             process's cgroup cpuset; through hwloc instead
 *                             when sysfs lacks a file the model needs or may
 *                             not read it (a container or emulator without
 *                             CPU topology in /sys);
 *   "hwloc"                   this machine through hwloc, as "live" did
 *                             before sysfs (to compare the two); live too;
 *   "sysfs:<folder>"          a sysfs tree captured or built under <folder>
 *                             (<folder>/sys/devices/system/cpu/online, ...);
 *   "synthetic:<description>" an hwloc synthetic description,
 *                             e.g. "synthetic:pack:2 numa:1 core:4 pu:2";
 *   a file path               the output of `lscpu --parse[=...]`, of
 *                             `lscpu -e` / `lscpu --all --extended`, or an
 *                             hwloc XML export (told apart by content); a
 *                             file named "live" or "hwloc" is "./live".
 * Non-live topologies have every CPU allowed.  Errors (with *why naming the
 * file and line where there is one): -ENOENT / -EACCES (unreadable file;
 * for sysfs:, a file the model needs is missing), -EINVAL (malformed input),
 * -ENOMEM, -ENOTSUP (hwloc failed, or the affinity mask is unreadable).
 * Free *out with pf_topology_free().
 */
int pf_topology_load(const char *source, pf_topology **out, char **why);
void pf_topology_free(pf_topology *topo);

/* "live", "hwloc", the file path, "synthetic:..." or "sysfs:..." (owned by the topology). */
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
    int index; /* its index in the full plan (before --rank selection) */
    int *cpus; /* ascending */
    size_t ncpus;
    int *nodes; /* distinct nodes of cpus, ascending */
    size_t nnodes;
    int threads; /* OpenMP threads: the number of CPUs */
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
int pf_plan_instances(const pf_topology *topo, const pf_plan_options *opts, pf_plan **out,
                      char **why);
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

/* ------------------------------------------------------------------------ */
/* The environment of each instance (launcher.md section 4).  Pure.          */

typedef enum pf_allocator {
    PF_ALLOCATOR_AUTO = 0, /* tcmalloc if found, else jemalloc, else the default */
    PF_ALLOCATOR_DEFAULT,
    PF_ALLOCATOR_TCMALLOC,
    PF_ALLOCATOR_JEMALLOC
} pf_allocator;

typedef enum pf_omp_runtime {
    PF_OMP_AUTO = 0, /* Intel's (libiomp5 / LLVM libomp) if found, else the default */
    PF_OMP_DEFAULT,  /* whatever the program links: GNU libgomp for gcc and PyTorch */
    PF_OMP_INTEL
} pf_omp_runtime;

typedef struct pf_env_options {
    pf_allocator allocator;
    pf_omp_runtime omp;
    /* The launcher binds each instance's CPUs.  false: placement by the
       environment alone (explicit OpenMP places per instance). */
    bool cpu_binding;
    /* What pf_library_find() found, by pf_library; NULL = not found. */
    const char *libraries[PF_LIBRARY_COUNT];
    /* The current environment, NULL-terminated "NAME=value" (NULL: none). */
    char *const *environ;
    /* Does this LD_PRELOAD entry exist?  NULL: access(path, F_OK).  Tests
       pass their own so that the computation stays a function of its inputs. */
    bool (*file_exists)(const char *path, void *ctx);
    void *ctx;
} pf_env_options;

/* Set all fields to their defaults (auto, auto, CPU binding on). */
void pf_env_options_init(pf_env_options *opts);

typedef struct pf_env_var {
    char *name;
    char *value;
} pf_env_var;

typedef struct pf_launch_env {
    size_t ninstances;
    pf_env_var **vars; /* vars[i]: what the launcher sets for instance i, LD_PRELOAD included */
    size_t *nvars;
    pf_env_var *common; /* the assignments every instance shares (for --json) */
    size_t ncommon;
    char **preload; /* the final LD_PRELOAD entries, in order */
    size_t npreload;
    pf_allocator allocator; /* what is in effect: never AUTO */
    pf_omp_runtime omp;     /* likewise */
    char **warnings;        /* one line each */
    size_t nwarnings;
} pf_launch_env;

/*
 * Compute each instance's environment from the plan, the options, the
 * libraries found and the current environment.  An existing non-empty value
 * wins over the launcher's (one warning names them all).  LD_PRELOAD: the
 * existing entries that exist, then the allocator, then the OpenMP runtime,
 * never the same library (or two of one kind) twice.
 * Returns 0, -EINVAL or -ENOMEM.  Free *out with pf_launch_env_free().
 */
int pf_env_compute(const pf_plan *plan, const pf_topology *topo, const pf_env_options *opts,
                   pf_launch_env **out, char **why);
void pf_launch_env_free(pf_launch_env *env);

/*
 * Instance i's whole environment: `base` (NULL-terminated "NAME=value")
 * with the launch env's assignments applied.  *out is a NULL-terminated,
 * malloc'd array of malloc'd strings; free it with pf_strv_free().
 */
int pf_launch_env_apply(const pf_launch_env *env, size_t instance, char *const *base, char ***out);
void pf_strv_free(char **strv);

/* ------------------------------------------------------------------------ */
/* Launching and supervising instances (launcher.md section 5)               */

typedef struct pf_launch_options {
    char *const *argv;      /* the command every instance runs, NULL-terminated */
    bool search_path;       /* look argv[0] up on PATH, like execvp */
    bool bind_cpus;         /* CPU affinity to the instance's CPUs */
    bool bind_memory;       /* memory bound to the instance's nodes */
    const char *log_dir;    /* NULL: instances share the launcher's stdio */
    const char *log_prefix; /* NULL: "run" */
    int grace_ms;           /* after a forwarded signal, SIGKILL what is left; <= 0: 10000 */
    char *const *environ;   /* the environment to start from; NULL: the process's */
    bool exec_single;       /* one instance and no log dir: bind and exec in place */
    /* Lines to report as the launcher's warnings before anything starts (the
       plan's, the environment's), NULL-terminated; NULL: none.  Reported by
       pf_launch so that they reach the launcher's log file too. */
    const char *const *warnings;
} pf_launch_options;

void pf_launch_options_init(pf_launch_options *opts);

/*
 * Start every instance of the plan at once, bound as asked, with the launch
 * environment applied, and supervise them: output to the console (with a
 * "[i] " prefix when there are several and a log dir) and to DIR's log files,
 * SIGINT/SIGTERM/SIGHUP/SIGQUIT forwarded to every instance's process group,
 * what is left after the grace period killed, nothing left behind.
 * Launcher messages go to stderr as "pinfer: <level>: <text>".
 * *status receives 0 if every instance exited 0, else the status of the
 * lowest-index failed instance (128+N for signal N).  When an instance's main
 * process exits, whatever it left running in its process group is killed.
 * argv[0] is resolved once, before anything starts (on PATH with
 * search_path): a program that cannot be run returns -ENOENT (not found,
 * *status 127) or -EACCES (not executable, *status 126), as a shell would.
 * With exec_single and one instance, it does not return on success.
 * Returns 0, or a negative code with *why when nothing could be started
 * (a log file that cannot be created, fork failing); nothing is left running.
 */
int pf_launch(const pf_plan *plan, const pf_launch_env *env, const pf_launch_options *opts,
              int *status, char **why);

/* The equivalent command line of a binding: "numactl -C 0-3 -m 0" (malloc'd). */
char *pf_binding_command(const pf_instance *instance, bool bind_cpus, bool bind_memory);

/*
 * argv (NULL-terminated) as one line that a shell reads back as the same
 * words: plain words as they are, others in single quotes, and those with
 * control characters (a newline) in bash's $'...' so that the line stays one
 * line.  malloc'd; NULL when out of memory.
 */
char *pf_shell_join(char *const *argv);

/*
 * The file `name` runs as execvp would find it: as given when it holds a
 * slash, else the first executable regular file on $PATH (an empty element
 * is the current directory).  *path is malloc'd.  Returns 0, -ENOENT,
 * -EACCES (found, not executable), -EINVAL or -ENOMEM.
 */
int pf_find_program(const char *name, char **path);

#ifdef __cplusplus
}
#endif

#endif /* PINFER_H */
