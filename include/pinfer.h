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
 *                             e.g. "synthetic:pack:2 numa:1 core:4 pu:2",
 *                             checked before hwloc reads it: at most 16384
 *                             PUs, and no shape hwloc takes more than
 *                             about a second to build (docs/topology.md);
 *   a file path               a regular file (a FIFO, folder or device is
 *                             -EINVAL, never opened for reading) holding
 *                             the output of `lscpu --parse[=...]`, of
 *                             `lscpu -e` / `lscpu --all --extended`, or an
 *                             hwloc XML export (told apart by content); a
 *                             file named "live" or "hwloc" is "./live";
 *   "-"                       the same, read from standard input to its
 *                             end (a terminal is -EINVAL); a file named
 *                             "-" is "./-".
 * Live topologies also carry the process's cgroup CPU quota
 * (pf_topology_cpu_quota).  Non-live topologies have every CPU allowed and
 * no quota.  Errors (with *why naming the
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

/*
 * The cgroup CPU quota of this process in CPUs (quota / period: 2.5 is 250 ms
 * of CPU time every 100 ms), or 0 when there is none.  Read for the live
 * machine from the process's cgroup and its ancestors, the smallest winning:
 * v2's cpu.max, v1's cpu.cfs_quota_us / cpu.cfs_period_us
 * (docs/topology.md).  Always 0 for other sources; plan for another
 * machine's quota with pf_plan_options.cpu_quota.
 */
double pf_topology_cpu_quota(const pf_topology *topo);

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
    int socket_id;           /* -1 = not given; the CPUs of this socket, all its nodes */
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
    double cpu_quota;         /* a CPU quota in CPUs (> 0) to plan within instead of the
                                 topology's; 0 = the topology's (pf_topology_cpu_quota) */
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
    size_t nplanned; /* instances in the full plan, before --rank / --instance-idx */
    char **warnings; /* one line each, no "pinfer: warning: " prefix */
    size_t nwarnings;
    double cpu_quota; /* the CPU quota planned within, in CPUs (0: none) */
} pf_plan;

/*
 * Plan instances as docs/planning.md says.  On success *out is a plan
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
 * Find a library in this order (docs/libraries.md): $CONDA_PREFIX/lib,
 * $VIRTUAL_ENV/lib, ~/.local/lib, /usr/local/lib, /usr/local/lib64,
 * /usr/lib/<multiarch>, /usr/lib, /usr/lib64, then the dynamic loader's
 * cache (/etc/ld.so.cache).  Versioned sonames count.  CONDA_PREFIX,
 * VIRTUAL_ENV and HOME are read from envp (NULL-terminated "NAME=value"
 * strings; NULL means the process's environment).  With `system` false only
 * those three environment directories are searched (for tests).  A file
 * that exists but fails pf_library_check() is passed over and the search
 * goes on (pf_library_search() says which were).
 * On success *path (free()) is the file's absolute path.
 * Returns 0, -ENOENT (not found), -EINVAL, -ENOMEM.
 */
int pf_library_find(pf_library lib, char *const *envp, bool system, char **path);

/*
 * pf_library_find(), saying what it passed over: when `skipped` is not
 * NULL, one line per file that exists but failed pf_library_check()
 * ("<path> is writable by everyone (mode 0666): not preloaded") is appended
 * to *skipped, a NULL-terminated array that starts as NULL and grows over
 * several calls (a line already there is not added again); free it with
 * pf_strv_free().  Returns as pf_library_find().
 */
int pf_library_search(pf_library lib, char *const *envp, bool system, char **path, char ***skipped);

/*
 * May `path` be preloaded into the instances, which may run as root
 * (docs/libraries.md, "What is preloaded")?  It must be a regular file
 * (symbolic links followed) holding an ELF shared object (ET_DYN) of this
 * process's class, byte order and machine; neither it nor its directory
 * (that of the name and, through a link, that of the file) may be writable
 * by others than its owner and root, a directory with the sticky bit
 * excepted when the entry belongs to root or to the directory's owner.
 * Group write counts as the owner's when the group is the owner's private
 * group (named as the owner, no other member).  Only the header is read:
 * nothing of the library runs.  Returns 0; -ENOENT (no such file, a
 * dangling link), -ENOEXEC (not a regular file, not an ELF shared object
 * for this process), -EPERM (writable by others), another negative errno
 * (it cannot be read), -EINVAL (no path).  *why (malloc'd, when why is not
 * NULL) is one line that starts with the path and says why.
 */
int pf_library_check(const char *path, char **why);

/* ------------------------------------------------------------------------ */
/* The environment of each instance (docs/environment.md).  Pure.           */

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
    /* May this library of `libraries` be preloaded?  0, or a negative code
       with *why (malloc'd; may stay NULL) saying why not: the library is
       then not used, with a warning.  NULL: pf_library_check().  Tests pass
       their own.  The environment's own LD_PRELOAD entries are not asked
       about (docs/environment.md). */
    int (*library_check)(const char *path, void *ctx, char **why);
    void *ctx; /* passed to file_exists and library_check */
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
 * libraries found and the current environment.  A library found that fails
 * opts->library_check is not used (one warning each).  An existing non-empty
 * value wins over the launcher's (one warning names them all).  LD_PRELOAD:
 * the existing entries that exist, then the allocator, then the OpenMP
 * runtime, never the same library (or two of one kind) twice.
 * Returns 0, -EINVAL or -ENOMEM.  Free *out with pf_launch_env_free().
 */
int pf_env_compute(const pf_plan *plan, const pf_topology *topo, const pf_env_options *opts,
                   pf_launch_env **out, char **why);
void pf_launch_env_free(pf_launch_env *env);

/*
 * Is "NAME=value" one of the OpenMP thread-affinity variables the
 * environment sets for an instance's CPUs (KMP_AFFINITY, OMP_PROC_BIND,
 * OMP_PLACES, GOMP_CPU_AFFINITY)?  A program meant to run unbound is given
 * the environment without them.
 */
bool pf_env_is_openmp_affinity(const char *entry);

/*
 * Instance i's whole environment: `base` (NULL-terminated "NAME=value")
 * with the launch env's assignments applied.  *out is a NULL-terminated,
 * malloc'd array of malloc'd strings; free it with pf_strv_free().
 */
int pf_launch_env_apply(const pf_launch_env *env, size_t instance, char *const *base, char ***out);
void pf_strv_free(char **strv);

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */

typedef enum pf_log_level { PF_LOG_ERROR = 0, PF_LOG_WARNING, PF_LOG_INFO } pf_log_level;

/* "error", "warning", "info" (static). */
const char *pf_log_level_name(pf_log_level level);

/*
 * Where the library's messages go: one line of text each, without a
 * trailing newline or a "pinfer: <level>: " prefix.  Called from the thread
 * that called the library; it must not call back into the object that
 * reports.  NULL wherever a pf_log_fn is taken means pf_log_stderr.
 */
typedef void (*pf_log_fn)(void *ctx, pf_log_level level, const char *text);

/*
 * text as one printable line: control characters (a newline in a file name
 * or an argument, an escape sequence) written as \n, \t, \r or \xHH, so
 * that a message can neither break into two lines nor drive the terminal.
 * Backslashes stay as they are: a shell-quoted command line in a message
 * (pf_shell_join) must still read back as the same words.  malloc'd; NULL
 * when out of memory.
 */
char *pf_printable(const char *text);

/* The default sink: "pinfer: <level>: <text>\n" on fd 2 in one write(), text printable. */
void pf_log_stderr(void *ctx, pf_log_level level, const char *text);

/* ------------------------------------------------------------------------ */
/* The launch specification: options -> everything a launch needs           */

/*
 * What a user asks for: the run_cpu/ipexrun options of `pinfer run`, as
 * data.  pf_launch_request_init() gives "nothing asked": the live machine,
 * default plan, auto allocator and OpenMP runtime, binding on, Python.
 */
typedef struct pf_launch_request {
    pf_plan_options plan;
    const char *topology;    /* a pf_topology_load() source; NULL: the live machine */
    const pf_topology *topo; /* or one already loaded (borrowed; wins over topology) */
    bool require_live;       /* refuse a topology that is not this machine's */
    pf_allocator allocator;
    pf_omp_runtime omp;
    bool disable_numactl; /* no memory binding */
    bool disable_taskset; /* with disable_numactl: no binding at all */
    bool no_python;       /* run PROGRAM itself, not PYTHON -u PROGRAM */
    bool module;          /* PYTHON -u -m PROGRAM */
    const char *python;   /* the interpreter; NULL: $PINFER_PYTHON, else python3 on PATH */
    char *const *program; /* PROGRAM ARGS..., NULL-terminated; NULL or empty: no command */
    char *const *environ; /* the environment to start from; NULL: the process's */
    /* Warnings about the request itself to put first among the spec's
       (an ignored option, say), NULL-terminated; NULL: none. */
    const char *const *warnings;
} pf_launch_request;

void pf_launch_request_init(pf_launch_request *req);

typedef struct pf_launch_spec {
    const pf_topology *topo; /* the topology planned on (owned by the spec unless borrowed) */
    pf_plan *plan;           /* the instances */
    pf_launch_env *env;      /* what the launcher sets for each */
    char **argv;             /* the command, NULL-terminated; NULL when none was given */
    char *python;            /* the interpreter found, or NULL (none needed, or not found) */
    bool python_missing;     /* a Python program, and no interpreter found: argv[0] is "python3" */
    bool bind_cpus;          /* each instance's CPU affinity is set */
    bool bind_memory;        /* and its memory bound to its nodes */
    char ***envp;            /* envp[i]: instance i's whole environment, NULL-terminated */
    char **binding;          /* binding[i]: its binding as a command ("numactl -C 0-3 -m 0") */
    char **warnings;         /* the request's, the plan's and the environment's, in order */
    size_t nwarnings;
    char *libraries[PF_LIBRARY_COUNT]; /* what was searched for and found (else NULL) */
} pf_launch_spec;

/*
 * Turn a request into a complete launch specification: load the topology,
 * plan, find the libraries the options may preload (only those), compute
 * every instance's environment, build the command line and the bindings.
 * Pure but for the topology load, the library search and reading PATH.
 * Errors (nothing returned, nothing half-done): -EINVAL with *why for an
 * impossible request, the topology's load errors, -ENOMEM.  A program or an
 * interpreter that cannot be found is not an error here (plan shows it):
 * see pf_launch_spec_check_program().  Free with pf_launch_spec_free().
 */
int pf_launch_spec_create(const pf_launch_request *req, pf_launch_spec **out, char **why);
void pf_launch_spec_free(pf_launch_spec *spec);

/*
 * Resolve the spec's argv[0] as execvp would (on the PATH of instance 0's
 * environment); *path (malloc'd) is the file to execute.  Errors, with *why:
 * -EINVAL (no command), -ENOENT (not found; a missing interpreter says how
 * to name one), -EACCES (not executable), -ENOMEM.
 */
int pf_launch_spec_resolve(const pf_launch_spec *spec, char **path, char **why);

/*
 * The `pinfer plan --json` document of a spec: topology summary, instances,
 * the shared environment, preloads, command, warnings (docs/plan.md).
 * *out (malloc'd) ends with a newline.  0 or -ENOMEM.
 */
int pf_launch_spec_to_json(const pf_launch_spec *spec, char **out);

/*
 * The `pinfer topo --json` document: sockets, cores, nodes, every CPU, the
 * allowed CPUs, and for the live machine only its ISA features and, with
 * `libraries`, the OpenMP runtime and allocators found (docs/topo.md).
 * The Python package returns the same document as a dict.  0 or -ENOMEM.
 */
int pf_topology_to_json(const pf_topology *topo, bool libraries, char **out);

/* {"error": message} and a newline, for --json users of a failed command.  0 or -ENOMEM. */
int pf_error_to_json(const char *message, char **out);

/* ------------------------------------------------------------------------ */
/* Spawning one process, bound                                               */

#define PF_SPAWN_INHERIT (-1) /* a stdio slot: keep the parent's */
#define PF_SPAWN_DEVNULL (-2) /* a stdio slot: /dev/null */

typedef struct pf_spawn_options {
    const char *file;  /* the file to execute (a path: see pf_find_program) */
    char *const *argv; /* NULL-terminated, argv[0] included */
    char *const *envp; /* the whole environment; NULL: the process's */
    const int *cpus;   /* CPU affinity; NULL: inherited */
    size_t ncpus;
    const int *nodes; /* memory bound to these nodes (MPOL_BIND); NULL: not bound */
    size_t nnodes;
    int stdio[3];     /* fds for 0, 1, 2, or PF_SPAWN_INHERIT / PF_SPAWN_DEVNULL */
    int fd3;          /* an fd the child gets as its fd 3 (a socket to it, say); -1: none */
    bool new_group;   /* the child leads a new process group */
    int death_signal; /* sent to the child when the spawning thread dies; 0: none */
    pf_log_fn log;    /* binding warnings; NULL: pf_log_stderr */
    void *log_ctx;
} pf_spawn_options;

void pf_spawn_options_init(pf_spawn_options *opts);

/*
 * Start a process, libuv's uv_spawn way: everything is prepared before
 * fork(); between fork and exec the child makes async-signal-safe calls only
 * (signal dispositions to default and mask emptied, process group, stdio,
 * CPU affinity, memory policy, execve, and /bin/sh for a file without a #!
 * line), so this is safe from a multi-threaded program.  A binding the
 * kernel refuses is a warning and the program still runs; an exec that
 * fails comes back through a close-on-exec pipe: the child is reaped and the
 * call returns -ENOENT / -EACCES / -ENOEXEC ... with *why ("cannot run X:
 * ...").  fork() and pipe failures return their errno (-EAGAIN, -EMFILE), with
 * *why "fork: ..." or "cannot create a pipe: ...".
 * On success *pid is the child's pid, for the caller to wait for.
 */
int pf_spawn(const pf_spawn_options *opts, int *pid, char **why);

/*
 * The same in place: bind the calling process and exec.  Returns only on
 * failure (the codes of pf_spawn), with the process's binding changed.
 */
int pf_exec(const pf_spawn_options *opts, char **why);

/*
 * Is memory binding allowed here (containers often refuse set_mempolicy)?
 * Tried with these nodes and put back.  0, or the kernel's -errno.
 */
int pf_memory_binding_probe(const int *nodes, size_t nnodes);

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
 * slash, else the first executable regular file on `path_list` (NULL: the
 * process's $PATH; an empty element is the current directory).  *path is
 * malloc'd.  Returns 0, -ENOENT, -EACCES (found, not executable), -EINVAL
 * or -ENOMEM.
 */
int pf_find_program(const char *name, const char *path_list, char **path);

/*
 * Run instance i of the spec in place, without a supervisor: resolve the
 * program, report the spec's warnings, bind the calling process and exec
 * (`pinfer run` with one instance and no log directory: the program is the
 * process, its signals and exit status its own).  Returns only on failure:
 * -ENOENT / -EACCES (a shell's 127 / 126) or another code, with *why.
 */
int pf_launch_exec(const pf_launch_spec *spec, size_t instance, pf_log_fn log, void *ctx,
                   char **why);

/* ------------------------------------------------------------------------ */
/* Supervising the instances of a spec                                       */

/*
 * A supervisor starts every instance of a launch spec and watches them
 * without blocking and without signal handlers: a program with its own
 * event loop polls pf_supervisor_fd() for reading, with the timeout of
 * pf_supervisor_timeout(), and calls pf_supervisor_step() when it wakes.
 * Any number of supervisors may live in one process, each used by one
 * thread at a time.  Exits are seen through pidfds (a Linux >= 5.3 kernel;
 * older ones are polled every 50 ms), so nothing reaps or handles SIGCHLD
 * behind the program's back, and a supervisor reaps only its own children.
 *
 * Each instance runs in a process group of its own; when its main process
 * exits, whatever it left in that group is killed, and the main process is
 * reaped only then, so that the group id cannot be reused under a signal.
 */
typedef struct pf_supervisor pf_supervisor;

typedef enum pf_restart {
    PF_RESTART_NEVER = 0,  /* an instance that exits stays down (pinfer run) */
    PF_RESTART_ON_FAILURE, /* restarted unless it exited 0 */
    PF_RESTART_ALWAYS      /* restarted whenever it exits (a server's workers) */
} pf_restart;

typedef struct pf_supervisor_options {
    const char *log_dir;    /* log files there (created, parents too); NULL: none */
    const char *log_prefix; /* their names' prefix; NULL: "run" */
    bool capture;           /* read the instances' output (always with log_dir) */
    int console_fd;         /* captured output is copied there (default 1), never blocking
                               the supervisor.  With log files, what a slow console cannot
                               take (beyond 1 MiB held) is dropped, counted and said; without,
                               output is not read until the console catches up (instances
                               wait, nothing is lost).  At the end it is given one grace
                               period to take what it holds (none after a signal). */
    bool prefix_lines;      /* ... line by line as "[i] line", i the plan index */
    bool null_stdin;        /* instances read /dev/null, not the launcher's stdin */
    int grace_ms;           /* after a stop or a forwarded signal, SIGKILL after this */
    bool fail_fast;         /* an instance that fails for good stops the others (SIGTERM) */
    int death_signal;       /* instances get it when the thread driving the supervisor dies
                               (PR_SET_PDEATHSIG: even SIGKILL of the launcher); 0: none */
    pf_restart restart;
    int restart_delay_ms;     /* the first back-off (default 100), doubled each time ... */
    int restart_max_delay_ms; /* ... up to this (default 30000) */
    int restart_reset_ms;     /* an instance up this long starts again from the first */
    pf_log_fn log;            /* the supervisor's messages (also in DIR's log, timestamped);
                                 NULL: stderr as "pinfer: <level>: <text>", never blocking */
    void *log_ctx;
    /* A line of captured output (without its newline; a line longer than
       4 KiB comes in pieces).  Set: the console copy is not made. */
    void (*on_output)(void *ctx, size_t instance, const char *line, size_t len);
    /* An instance's main process exited (wait status); restart_ms >= 0: it
       starts again in that many ms, -1: it stays down. */
    void (*on_exit)(void *ctx, size_t instance, int status, int restart_ms);
    void *ctx;
} pf_supervisor_options;

void pf_supervisor_options_init(pf_supervisor_options *opts);

/*
 * Prepare a supervisor: resolve the program (-ENOENT / -EACCES with *why),
 * create the log files (never overwriting one), probe memory binding (a
 * refusal is one warning and CPUs are still bound), and report the spec's
 * warnings.  Nothing runs yet.  The spec must outlive the supervisor.
 * Free with pf_supervisor_free().
 */
int pf_supervisor_create(const pf_launch_spec *spec, const pf_supervisor_options *opts,
                         pf_supervisor **out, char **why);

/*
 * Start every instance at once.  If one cannot be started, that is said
 * once, as an error ("cannot start instance 1: fork: Resource temporarily
 * unavailable"), and returned with the same *why; those started are killed
 * and reaped (nothing half-done), without being reported or counted as
 * exits, and the log files of the instances that never ran are removed at
 * pf_supervisor_free().  The supervisor is then finished.
 */
int pf_supervisor_start(pf_supervisor *sup, char **why);

/* The fd to poll for reading (an epoll fd; owned by the supervisor). */
int pf_supervisor_fd(const pf_supervisor *sup);

/* Milliseconds until the supervisor has something to do by itself, -1: none. */
int pf_supervisor_timeout(const pf_supervisor *sup);

/*
 * Do what is due, without blocking: relay output, notice exits (kill what
 * an exited instance left behind, report it, schedule its restart), restart,
 * apply the grace period.  Returns 0, or a negative code when the
 * supervisor's own fds failed (it keeps its children either way).
 */
int pf_supervisor_step(pf_supervisor *sup);

/*
 * Block until every instance has exited for good and its output is drained
 * (a program without an event loop of its own).  timeout_ms < 0: no limit.
 * 0 when finished, -ETIMEDOUT, -EINTR when a signal arrived (the caller
 * forwards it and calls again).
 */
int pf_supervisor_run(pf_supervisor *sup, int timeout_ms);

/*
 * true once every instance has exited for good, its output is drained, and
 * the console has taken what it held (or the drain deadline, one grace
 * period after the last exit, has passed; not waited for after
 * pf_supervisor_signal()).
 */
bool pf_supervisor_finished(const pf_supervisor *sup);

/*
 * Send sig to every instance's process group; from then on nothing is
 * restarted and whatever is left after the grace period is killed.  With a
 * message (not NULL) it is logged first, as info.  Called again while
 * instances are within that grace period (a second Ctrl-C), it kills them
 * at once.
 */
void pf_supervisor_signal(pf_supervisor *sup, int sig, const char *message);

/* The pid of instance i's main process (0: not running). */
int pf_supervisor_pid(const pf_supervisor *sup, size_t instance);

/* How many times instance i was restarted. */
unsigned pf_supervisor_restarts(const pf_supervisor *sup, size_t instance);

/*
 * The run's exit status: 0 if every instance exited 0, else that of the
 * lowest-index failed instance (128+N for signal N); with fail_fast, that of
 * the instance whose failure stopped the others (not the SIGTERM they got);
 * 1 when they all succeeded but a log file could not be written in full.  Each exit was
 * logged as it happened ("instance 1 exited 3 after 1.0 s", an error;
 * "instance 0 exited 0 after 12.3 s", info).
 */
int pf_supervisor_exit_status(pf_supervisor *sup);

/* Kill what is left (SIGKILL to every group), reap, close.  NULL: no-op. */
void pf_supervisor_free(pf_supervisor *sup);

/* ------------------------------------------------------------------------ */
/* Processes: what /proc says of a process and its threads                   */

/*
 * One reading of /proc for a process: its threads' counters at one moment.
 * The reader works on a root folder ("/proc", or a captured tree in tests)
 * and never fails on what a kernel may lack: a missing field is -1 (or
 * false / NULL).  A thread or process that vanishes while being read is
 * left out, not an error.
 */
typedef struct pf_proc_thread {
    int tid;
    char name[32];           /* from stat, as the kernel truncates it (15 bytes) */
    char state;              /* R, S, D ... */
    int cpu;                 /* the CPU it last ran on; -1: unknown */
    long long utime;         /* clock ticks in user mode; -1: unknown */
    long long stime;         /* ... in kernel mode */
    long long nr_migrations; /* sched's se.nr_migrations; -1: the kernel has none */
    long long exec_ns;       /* sched's se.sum_exec_runtime; -1: unknown */
    long long run_ns;        /* schedstat: time on a CPU; -1: no schedstat */
    long long wait_ns;       /* schedstat: time waiting on a run queue */
    long long voluntary;     /* context switches (status) */
    long long involuntary;
    int *cpus_allowed; /* Cpus_allowed_list, ascending */
    size_t ncpus_allowed;
} pf_proc_thread;

typedef struct pf_proc_process {
    int pid;
    char *command;           /* the command line, arguments joined by spaces ([comm] when empty) */
    pf_proc_thread *threads; /* ordered by tid */
    size_t nthreads;
    int *cpus_allowed; /* the process's own status */
    size_t ncpus_allowed;
    int *mems_allowed;
    size_t nmems_allowed;
    long long rss_kb;                   /* VmRSS; -1: unknown (a kernel thread) */
    unsigned long long *memory_by_node; /* bytes resident per node (numa_maps); NULL: unreadable */
    size_t nnodes;                      /* entries of memory_by_node */
    char **env;   /* "NAME=value" of the variables that shape threads and allocation
                     (OMP_NUM_THREADS, OMP_PROC_BIND, OMP_PLACES, KMP_AFFINITY, LD_PRELOAD,
                     ...), NULL-terminated; NULL when environ cannot be read */
    char *cgroup; /* its cgroup's path (v2, else the cpuset controller's); NULL: unknown */
} pf_proc_process;

/*
 * Read process `pid` under `root` (NULL: "/proc").  -ENOENT when it does
 * not exist (or vanished), -ENOMEM; nothing else fails: what cannot be read
 * is left unknown.  Free with pf_proc_process_free().
 */
int pf_proc_read(const char *root, int pid, pf_proc_process **out, char **why);
void pf_proc_process_free(pf_proc_process *proc);

/* The thread `tid` of a reading, or NULL. */
const pf_proc_thread *pf_proc_thread_of(const pf_proc_process *proc, int tid);

/* ------------------------------------------------------------------------ */
/* Checking: is a process pinned right?  (`pinfer check`, docs/check.md)     */

typedef struct pf_check_options {
    double duration_s;     /* the sampling window (default 2) */
    double interval_s;     /* between samples of each thread's CPU (default 0.1) */
    const char *proc_root; /* NULL: "/proc" */
    const char *sys_root;  /* for cgroup quotas; NULL: "/" */
} pf_check_options;

void pf_check_options_init(pf_check_options *opts);

typedef struct pf_check_thread {
    int tid;
    char name[32];
    int *cpus_allowed;
    size_t ncpus_allowed;
    int *cpus_seen; /* the CPUs it was seen on at the samples, ascending */
    size_t ncpus_seen;
    double cpu_pct;                  /* of one CPU, over the window */
    long long migrations;            /* in the window (se.nr_migrations, else sampled changes) */
    long long cross_node_migrations; /* sampled changes of NUMA node */
    long long cross_socket_migrations;
    double run_wait_pct;   /* time waiting on a run queue, share of the window; -1: unknown */
    long long involuntary; /* involuntary context switches in the window; -1: unknown */
    bool busy;             /* used at least 20% of one CPU */
} pf_check_thread;

typedef struct pf_check_process {
    int pid;
    char *command;
    int *cpus_allowed;
    size_t ncpus_allowed;
    int *mems_allowed;
    size_t nmems_allowed;
    unsigned long long *memory_by_node; /* NULL: numa_maps unreadable */
    size_t nnodes;
    double local_memory_pct; /* on the nodes its busy threads ran on; -1: unknown */
    double cpu_quota;        /* the cgroup's, in CPUs; 0: none */
    char **env;              /* as pf_proc_process's; NULL: unreadable */
    pf_check_thread *threads;
    size_t nthreads;
    size_t busy_threads;
} pf_check_process;

typedef struct pf_check_finding {
    const char *code;     /* OVERSUBSCRIBED, FLOATING, SMT_SHARED, OVERLAP, CROSS_NODE,
                             REMOTE_MEMORY, OVER_QUOTA */
    const char *severity; /* "warn" or "bad" */
    int pid;
    int tid; /* -1: the process as a whole */
    char *message;
    char *advice;
} pf_check_finding;

typedef struct pf_check_report {
    double window_s;
    pf_check_process *processes;
    size_t nprocesses;
    pf_check_finding *findings;
    size_t nfindings;
    char **ok; /* one line per process without a finding, "OK: ..." (NULL-terminated) */
} pf_check_report;

/*
 * Sample the processes over the window on the live topology and judge
 * their placement.  A process or thread that exits during the window is
 * kept as last seen (or left out when it is gone before the first sample).
 * -ENOENT with *why when none of the pids exists, -EINVAL for bad options,
 * -ENOMEM.  Free with pf_check_report_free().
 */
int pf_check_run(const pf_topology *topo, const int *pids, size_t npids,
                 const pf_check_options *opts, pf_check_report **out, char **why);
void pf_check_report_free(pf_check_report *report);

/*
 * The findings and OK lines of a report whose processes and threads are
 * filled in (busy, cpus_seen, migrations ...): what pf_check_run() does after
 * sampling, pure, on any topology.  Sets local_memory_pct.  0 or -ENOMEM.
 */
int pf_check_judge(const pf_topology *topo, pf_check_report *report);

/* The report as `pinfer check --json` writes it (docs/check.md).  0 or -ENOMEM. */
int pf_check_report_to_json(const pf_check_report *report, char **out);

/* ------------------------------------------------------------------------ */
/* Benchmarking: histograms, the load generator, reports (docs/bench.md)     */

/*
 * A latency histogram with bounded relative error (HdrHistogram's design:
 * buckets of doubling width, each split into 2^precision_bits linear
 * sub-buckets), so that a percentile of any number of samples costs a walk
 * of a few thousand counters, not a sort.  Values are integers (the load
 * generator records microseconds) from 0 to `highest`; a larger value is
 * recorded as `highest` and counted in pf_histogram_clamped().  Every value
 * reported is within 1 / 2^precision_bits of a recorded one (0.1% at 10).
 */
typedef struct pf_histogram pf_histogram;

/* highest >= 2; precision_bits 1-14.  -EINVAL, -ENOMEM.  Free with pf_histogram_free(). */
int pf_histogram_create(long long highest, int precision_bits, pf_histogram **out);
void pf_histogram_free(pf_histogram *h);
/* Record `count` samples of `value` (negative values are recorded as 0). */
void pf_histogram_record(pf_histogram *h, long long value, long long count);
/* Add src's samples to dst: both made with the same highest and precision, else -EINVAL. */
int pf_histogram_add(pf_histogram *dst, const pf_histogram *src);
void pf_histogram_reset(pf_histogram *h);
long long pf_histogram_count(const pf_histogram *h);
long long pf_histogram_clamped(const pf_histogram *h);
/*
 * The smallest and largest recorded value as their buckets report them: min
 * the lowest value of its bucket, max the highest (never above `highest`,
 * the same as percentile 100).  0 when empty.
 */
long long pf_histogram_min(const pf_histogram *h);
long long pf_histogram_max(const pf_histogram *h);
double pf_histogram_mean(const pf_histogram *h);
/*
 * The value at percentile pct (0-100): the smallest bucket value v such that
 * at least pct% of the samples are <= v, reported as the bucket's highest
 * equivalent value (never below the true percentile).  0 when empty.
 */
long long pf_histogram_percentile(const pf_histogram *h, double pct);

/*
 * The built-in load generator: HTTP/1.1 over keep-alive connections to one
 * URL, event-driven (epoll), in `threads` threads each with its share of the
 * connections.  Closed loop (rate 0): every connection sends its next
 * request when the answer to the last arrives.  Open loop (rate > 0):
 * requests are due on a fixed schedule (rate per second over all threads);
 * a request waits for a free connection when all are busy, and its latency
 * counts from the time it was due, so a stall of the server is never hidden
 * (no coordinated omission).  A connection the server closes is reopened.
 */
typedef struct pf_load_progress {
    double elapsed_s;    /* since the measured phase began (negative in warm-up) */
    long long completed; /* answers in the measured phase */
    long long failed;    /* answers not 2xx plus connection errors, measured phase */
    double rate;         /* answers per second over the last interval */
} pf_load_progress;

typedef struct pf_load_options {
    const char *url;    /* "http://HOST:PORT/PATH" (IPv4, [IPv6] or a name) */
    const char *method; /* NULL: "POST" when there is a body, else "GET" */
    const void *body;   /* sent with every request; NULL: none */
    size_t body_len;
    const char *content_type; /* NULL: application/octet-stream when there is a body */
    int connections;          /* >= 1 (default 16): closed loop's concurrency */
    int threads;              /* >= 1 (default 1); more than connections is reduced */
    double rate;              /* requests per second, open loop; 0: closed loop */
    double warmup_s;          /* load first, not measured (default 0) */
    double duration_s;        /* the measured phase; 0: until `requests` (default 10) */
    long long requests;       /* stop after this many measured requests (answered or
                                 failed); 0: no limit */
    double timeout_s;         /* one request's limit: then it fails, its connection is
                                 reopened (default 30) */
    /* Called about every progress_interval_s (default 0.5) from the thread that
       called pf_load_run(), never concurrently; NULL: none.  Return false to stop. */
    bool (*progress)(const pf_load_progress *p, void *ctx);
    void *ctx;
    double progress_interval_s;
} pf_load_options;

void pf_load_options_init(pf_load_options *opts);

typedef struct pf_load_result {
    double elapsed_s;    /* the measured phase */
    long long completed; /* answers received in it (any status) */
    long long ok;        /* 2xx */
    long long status_4xx, status_5xx, status_other;
    long long errors; /* connect, reset, timeout or unparsable answers */
    long long bytes_received;
    double throughput;     /* ok / elapsed_s */
    pf_histogram *latency; /* microseconds, answers of the measured phase (any status) */
    char *first_error;     /* the first error seen, one line; NULL: none */
} pf_load_result;

/*
 * Run the load.  Errors before any request (-EINVAL with *why for a bad URL
 * or options, a name that does not resolve; -ENOMEM): nothing returned.
 * Once running, failures are counted in the result, never returned.  A
 * server that cannot be connected to at all gives a result with errors and
 * no answers.  Free with pf_load_result_free().
 */
int pf_load_run(const pf_load_options *opts, pf_load_result **out, char **why);
void pf_load_result_free(pf_load_result *res);

/*
 * Apache Bench's report (`ab` standard output), as TorchServe's benchmark
 * reads it.  Fields ab did not print, or printed as no plain non-negative
 * number, are -1; when a key is on two lines, the first counts.
 */
typedef struct pf_ab_result {
    long long complete;    /* "Complete requests" */
    long long failed;      /* "Failed requests" */
    long long non_2xx;     /* "Non-2xx responses" (0 when absent) */
    double time_taken_s;   /* "Time taken for tests" */
    double requests_per_s; /* "Requests per second" */
    double mean_ms;        /* "Time per request" (the first, mean over concurrency) */
    /* "Percentage of the requests served within a certain time (ms)": */
    double p50_ms, p66_ms, p75_ms, p80_ms, p90_ms, p95_ms, p98_ms, p99_ms, p100_ms;
} pf_ab_result;

/*
 * Parse ab's output: lines in any order, "\n" or "\r\n"; *out is filled
 * either way.  -EINVAL with *why when it holds no "Complete requests" line
 * with a count (ab stopped before its report).
 */
int pf_ab_parse(const char *text, size_t len, pf_ab_result *out, char **why);

/*
 * Per-CPU time from /proc/stat: for each "cpuN" line, busy (user, nice,
 * system, irq, softirq, steal) and total (busy + idle + iowait) clock ticks.
 */
typedef struct pf_cpu_times {
    int cpu;
    unsigned long long busy;
    unsigned long long total;
} pf_cpu_times;

/*
 * Parse a /proc/stat text (any kernel's: 4 to 10 columns).  *out ascending
 * by cpu, with gaps where CPUs are offline; free() it.  -EINVAL (no cpuN
 * line, or one that is malformed or repeated), -ENOMEM: nothing returned.
 */
int pf_cpu_times_parse(const char *text, size_t len, pf_cpu_times **out, size_t *n, char **why);
/* Read root/stat (root NULL: "/proc") and parse it; -errno with *why when it cannot be read. */
int pf_cpu_times_read(const char *root, pf_cpu_times **out, size_t *n, char **why);

/*
 * What `pinfer bench` measured: the data of bench.json, bench.csv and
 * report.html.  Times in milliseconds; a figure that was not measured is
 * -1 (program mode has no latencies).
 */
typedef struct pf_bench_cdf_point {
    double pct; /* 0-100 */
    double ms;
} pf_bench_cdf_point;

/* A heat map: each CPU's busy share (0-100) in each sampling interval. */
typedef struct pf_bench_cpu_map {
    double interval_s;
    size_t nsamples;
    size_t ncpus;
    int *cpus;    /* the CPUs, ascending */
    double *busy; /* nsamples rows of ncpus: busy[s * ncpus + c] */
} pf_bench_cpu_map;

typedef struct pf_bench_config {
    char *name;        /* "default", "threads", "pinned", "pinned+jemalloc" ... */
    char *description; /* one line: what the configuration sets */
    char *command;     /* the command line it ran, shell-quoted */
    char *error;       /* NULL: measured; else why it could not be (one line) */
    int workers;
    int threads;        /* per worker or instance (OMP_NUM_THREADS) */
    double duration_s;  /* the measured phase */
    long long requests; /* completed (programs: runs completed) */
    long long failed;
    double throughput; /* per second, in the report's unit */
    double mean_ms, p50_ms, p90_ms, p99_ms, max_ms;
    pf_bench_cdf_point *cdf; /* latency CDF, ascending; NULL in program mode */
    size_t ncdf;
    double cpu_pct;          /* the machine's CPU use over the phase, % of all CPUs */
    double migrations_per_s; /* over the workers' busy threads; -1: unknown */
    double cross_node_migrations_per_s;
    double run_wait_pct;     /* the busy threads' mean share of time waiting to run */
    long long smt_shared;    /* busy threads seen on a core's two siblings at once */
    double local_memory_pct; /* the workers' memory on their nodes; -1: unknown */
    char **findings;         /* "CODE: message", NULL-terminated (NULL: none) */
    size_t nfindings;
    pf_bench_cpu_map cpu_map; /* nsamples 0: not sampled */
} pf_bench_config;

typedef struct pf_bench_report {
    char *mode;      /* "serve" or "program" */
    char *unit;      /* "req/s", or the program's metric ("inferences/s") */
    char *target;    /* the model (serving) or the program's command line */
    char *load;      /* how it was driven: "builtin closed loop, 16 connections" ... */
    char *machine;   /* one line: sockets, cores, CPUs, the model name of the CPU */
    char *started;   /* ISO 8601 UTC */
    char *command;   /* the pinfer bench command line */
    char *plan_json; /* the pinned configuration's `pinfer plan --json` document; NULL: none */
    pf_bench_config *configs;
    size_t nconfigs;
    char *verdict; /* one line */
} pf_bench_report;

/* Free what a report holds (the strings and arrays of every field), not the report itself. */
void pf_bench_report_clear(pf_bench_report *report);
/* bench.json (docs/bench.md).  0 or -ENOMEM. */
int pf_bench_report_to_json(const pf_bench_report *report, char **out);
/* bench.csv: TorchServe's ab_report.csv columns where they apply, one row per configuration. */
int pf_bench_report_to_csv(const pf_bench_report *report, char **out);
/* report.html: one self-contained page, inline SVG, no script, nothing fetched.  0 or -ENOMEM. */
int pf_bench_report_to_html(const pf_bench_report *report, char **out);

/* ------------------------------------------------------------------------ */
/* Tuning: search spaces, strategies, records (`pinfer tune`, docs/tune.md)  */

/*
 * The knobs pinfer tune turns.  A search space holds, for each knob, the
 * values to try as text (a knob with one value is not tuned) and which of
 * them the untuned default uses.  A configuration is one value index per
 * knob.  Pure: nothing here runs a trial.
 */
typedef enum pf_tune_knob {
    PF_TUNE_SPLIT = 0, /* instances x cores per instance, "NxC" ("2x4"); ordered by C */
    PF_TUNE_LOGICAL,   /* SMT siblings used too: "off", "on" */
    PF_TUNE_NODES,     /* "all", or one NUMA node id ("0": hypertune's use_all_nodes=False) */
    PF_TUNE_NUMA,      /* memory bound to the instance's nodes: "bind", "off" (--disable-numactl) */
    PF_TUNE_ALLOCATOR, /* "default", "tcmalloc", "jemalloc" */
    PF_TUNE_OMP,       /* "default" (the program's own), "intel" */
    PF_TUNE_BLOCKTIME, /* KMP_BLOCKTIME in ms with Intel OpenMP ("0", "1", "200"); ordered */
    PF_TUNE_BATCH_SIZE,  /* serving: pinfer serve's --batch-size; ordered */
    PF_TUNE_BATCH_DELAY, /* serving: --max-batch-delay in ms; ordered */
    PF_TUNE_NKNOBS
} pf_tune_knob;

/* "split", "logical_cores", "nodes", "numa", "allocator", "omp", "kmp_blocktime",
   "batch_size", "max_batch_delay"; NULL for another value. */
const char *pf_tune_knob_name(pf_tune_knob knob);
/* The knob of a name (as above; '-' for '_' accepted), or -1. */
int pf_tune_knob_of(const char *name);

typedef struct pf_tune_space {
    char **values[PF_TUNE_NKNOBS]; /* each knob's values, in order; never empty */
    size_t nvalues[PF_TUNE_NKNOBS];
    size_t defaults[PF_TUNE_NKNOBS]; /* the untuned default's value of each knob */
} pf_tune_space;

typedef struct pf_tune_config {
    size_t v[PF_TUNE_NKNOBS]; /* value index of each knob */
} pf_tune_config;

typedef struct pf_tune_space_options {
    bool serve;         /* add batch size and max batch delay */
    bool have_tcmalloc; /* the libraries found (pf_find_library): only those are tried */
    bool have_jemalloc;
    bool have_iomp;
} pf_tune_space_options;

/*
 * The space of a machine (docs/tune.md, "The space"): the splits of the
 * usable physical cores into instances that leave no core idle, and the
 * cores-per-instance values among the divisors and powers of two (as many
 * instances as fit); logical cores only with SMT; nodes and NUMA binding
 * only with several nodes; the allocators and OpenMP runtimes found;
 * KMP_BLOCKTIME 0, 1, 200 with Intel OpenMP; serving: batch sizes 1, 2, 4,
 * 8, 16 and delays 5, 20, 100 ms.  The default is what `pinfer run` with no
 * option does (one instance on every physical core, the allocator and
 * OpenMP it picks) and, serving, batch 1 and 100 ms.  -EINVAL with *why
 * (no usable core), -ENOMEM.  Free with pf_tune_space_free().
 */
int pf_tune_space_default(const pf_topology *topo, const pf_tune_space_options *opts,
                          pf_tune_space **out, char **why);
void pf_tune_space_free(pf_tune_space *space);

/*
 * Replace a knob's values (checked: "NxC" with N, C >= 1, exactly digits 'x'
 * digits; on/off; bind/off; "all" or a node id; a known allocator or
 * runtime; KMP_BLOCKTIME 0-1000000 ms, batch size 1-4096, delay
 * 0-3600000 ms), copied in canonical form ("02x4" is "2x4"); the ordered
 * knobs are sorted (split by C, then N; the numbers by value).  The default
 * becomes the old default's value if it is among them, else the first
 * written.  -EINVAL with *why for a bad or repeated value or an empty list
 * (the space unchanged), -ENOMEM.
 */
int pf_tune_space_set(pf_tune_space *space, pf_tune_knob knob, char *const *values, size_t n,
                      char **why);

/*
 * --space FILE: a JSON or YAML mapping of knob names to lists of values
 * ({"split": ["1x8", "2x4"], "allocator": ["jemalloc"]}; values strings or
 * whole numbers, booleans for logical_cores), each applied with
 * pf_tune_space_set().  JSON when `source` ends in .json, YAML when in
 * .yaml / .yml, else JSON when the text starts with '{' or '['.  `source`
 * names it in messages (NULL: "--space").  Every value is checked before
 * any is set: a refused file leaves the space as it was.  -EINVAL with *why
 * (one line "SOURCE:LINE: ..."; an unknown or repeated knob, a value that
 * is not a list, a bad value), -ENOMEM.
 */
int pf_tune_space_load(pf_tune_space *space, const char *text, size_t len, const char *source,
                       char **why);

/* The number of distinct configurations (KMP_BLOCKTIME counts only with Intel OpenMP). */
size_t pf_tune_space_size(const pf_tune_space *space);
/* The default configuration. */
void pf_tune_space_default_config(const pf_tune_space *space, pf_tune_config *config);
/* Make a configuration canonical: KMP_BLOCKTIME at its default without Intel OpenMP. */
void pf_tune_config_canonical(const pf_tune_space *space, pf_tune_config *config);
bool pf_tune_config_equal(const pf_tune_config *a, const pf_tune_config *b);
/* "2x4 tcmalloc intel KMP_BLOCKTIME=1 ..." (the knobs the space tunes), malloc'd. */
char *pf_tune_config_describe(const pf_tune_space *space, const pf_tune_config *config);

/*
 * The `pinfer run` options of a configuration ("--ninstances", "2",
 * "--ncores-per-instance", "4", "--memory-allocator", "jemalloc",
 * "--omp-runtime", "intel", ...; NULL-terminated, malloc'd strings, free
 * with pf_strv_free()) and the environment it adds ("KMP_BLOCKTIME=1" with
 * Intel OpenMP, likewise; env may be NULL).  With logical cores on, the
 * split is "--use-logical-cores --ninstances N" alone: the instances share
 * every usable CPU, each C cores with their siblings when N x C is every
 * core (--ncores-per-instance would count CPUs).  A split that does not fit
 * the chosen node fails to plan.  Serving knobs are not among them (see
 * pf_tune_config_value()).  0 or -ENOMEM.
 */
int pf_tune_config_args(const pf_tune_space *space, const pf_tune_config *config, char ***args,
                        char ***env);
/* The text of one knob's value in a configuration; NULL for a bad knob or index. */
const char *pf_tune_config_value(const pf_tune_space *space, const pf_tune_config *config,
                                 pf_tune_knob knob);

/*
 * A search over a space, as ask and tell: pf_tune_search_next() gives the
 * next configuration to measure, pf_tune_search_tell() takes its result (a
 * measured value, its relative spread over repeats, or a failure).  Results
 * may be told before they are asked for (resuming from a record): the
 * search never asks for a configuration it knows.  `auto` (docs/tune.md,
 * "The auto strategy") uses the space's structure to need far fewer trials
 * than `grid`; `random` draws without replacement from a seeded generator.
 * Every strategy measures the default configuration first.
 */
typedef enum pf_tune_strategy { PF_TUNE_AUTO = 0, PF_TUNE_GRID, PF_TUNE_RANDOM } pf_tune_strategy;

typedef struct pf_tune_search pf_tune_search;

typedef struct pf_tune_search_options {
    pf_tune_strategy strategy;
    bool higher_is_better;
    size_t max_trials; /* 0: no limit (grid and random: the whole space; auto: a third of
                          it, all of it below 12); counts resumed results too */
    unsigned seed;     /* random */
} pf_tune_search_options;

/* -EINVAL (an empty space), -ENOMEM.  The space is borrowed: it must outlive the search. */
int pf_tune_search_create(const pf_tune_space *space, const pf_tune_search_options *opts,
                          pf_tune_search **out);
/* 1 and *config: measure it next (a configuration not told before the next
   call counts as failed); 0: the search is over. */
int pf_tune_search_next(pf_tune_search *search, pf_tune_config *config);
/* A result: value (failed: the trial failed, or broke a constraint such as --slo-p99). */
void pf_tune_search_tell(pf_tune_search *search, const pf_tune_config *config, double value,
                         double spread, bool failed);
/* The best configuration told so far: 1 with *config and *value, 0 when none succeeded. */
int pf_tune_search_best(const pf_tune_search *search, pf_tune_config *config, double *value);
void pf_tune_search_free(pf_tune_search *search);

/*
 * An IPEX hypertune configuration file (YAML, as its documentation shows):
 * tuning.strategy (grid | random), tuning.max_trials, output_dir, and
 * hyperparams.launcher: hp (the knobs to tune, of ncore_per_instance (or
 * ncores_per_instance), ninstances, use_all_nodes, use_logical_core,
 * disable_numactl, disable_iomp, malloc) and their value lists
 * (all_physical_cores / all_logical_cores, lists of ints, bools, tc/je/pt),
 * mapped onto the space (docs/tune.md, "hypertune"; src/tune/conf.c): the
 * knobs not in hp take hypertune's defaults, those in hp without a list its
 * default search spaces; ncore x ninstances become splits "NxC" (-1: what
 * the launcher picks, P / N or P / C, both -1 "1xP"), those with N * C > P
 * left out with a note, P the physical cores of the topology's allowed
 * CPUs.  KMP_BLOCKTIME and the batch knobs stay as the space has them.
 * Unknown keys are errors.  -EINVAL with *why ("FILE:LINE: ..."; the space
 * unchanged), -ENOMEM.  *out is always initialised; free its strings with
 * pf_tune_conf_clear().
 */
typedef struct pf_tune_conf {
    int strategy;     /* a pf_tune_strategy; -1: not set */
    long max_trials;  /* 0: not set */
    char *output_dir; /* NULL: not set */
    char **notes;     /* "FILE:LINE: ..." NULL-terminated (NULL: none): combinations left
                         out, lists of knobs not in hp, libraries the space lacked */
} pf_tune_conf;

int pf_tune_conf_parse(const char *text, size_t len, const char *source, const pf_topology *topo,
                       pf_tune_space *space, pf_tune_conf *out, char **why);
void pf_tune_conf_clear(pf_tune_conf *conf);

/*
 * hypertune's objective line: "@hypertune {'name': 'latency', 'higher_is_better':
 * False, 'target_val': 10}" (a Python dict: single or double quotes, True /
 * False / true / false / 1 / 0; name mandatory, non-empty, printable;
 * higher_is_better default false; target_val optional, a number; other
 * keys ignored), anywhere in the line, nothing but blanks after its '}'; its
 * value is the next line of output.  1 when the line holds one (*name
 * malloc'd), 0 when it does not, -EINVAL with *why for a malformed one.
 */
int pf_tune_hypertune_line(const char *line, char **name, bool *higher_is_better, char **why);

/*
 * One trial of a record (record.csv: hypertune's columns, then pinfer's;
 * docs/tune.md, "Records").
 */
typedef struct pf_tune_trial {
    pf_tune_config config;
    double value;  /* the median over repeats; NAN when failed */
    double spread; /* (max - min) / median over repeats; 0 with one */
    int repeats;
    double seconds; /* wall time of the trial, all repeats */
    char *
        status; /* "ok", or why it failed ("exit 3", "timeout", "no metric", "p99 above the SLO") */
} pf_tune_trial;

/*
 * record.csv of trials: hypertune's 7 columns, the objective's (named
 * `objective`, the objective's name; NULL: "objective"; empty for a failed
 * trial), then pinfer's (src/tune/record.c).  Numbers in the C locale.
 * 0 or -ENOMEM.
 */
int pf_tune_record_to_csv(const pf_tune_space *space, const char *objective,
                          const pf_tune_trial *trials, size_t n, char **out);
/*
 * Read a record.csv back (--resume): rows whose values are all in the space
 * (and whose hypertune columns agree with pinfer's) become trials, KMP_BLOCKTIME
 * at its default without Intel OpenMP; others are skipped and counted in
 * *skipped.  An empty text is no trial.  -EINVAL with *why (not a record of
 * pinfer tune: its header), -ENOMEM.  Free with pf_tune_trials_free().
 */
int pf_tune_record_parse(const pf_tune_space *space, const char *text, size_t len,
                         pf_tune_trial **trials, size_t *n, size_t *skipped, char **why);
void pf_tune_trials_free(pf_tune_trial *trials, size_t n);

/*
 * tune.json: the space, the objective (name, higher or lower is better),
 * every trial (its knobs' values, value, spread, repeats, seconds, status,
 * ratio to the default's value) in the order run, the index of the best
 * (-1: none) and whether it beat the runner-up by more than the noise
 * (`winner`: false means a tie).  The default's value is that of the first
 * successful trial of the default configuration (`default_trial`, -1:
 * none; KMP_BLOCKTIME compared only with Intel OpenMP); without one, or
 * for a failed trial, value and ratio are null.  0 or -ENOMEM.
 */
int pf_tune_record_to_json(const pf_tune_space *space, const char *objective, bool higher_is_better,
                           const pf_tune_trial *trials, size_t n, long best, bool winner,
                           char **out);

/* ------------------------------------------------------------------------ */
/* Serving: configuration                                                    */

/*
 * What `pinfer serve` reads before it starts: TorchServe's config.properties,
 * the model specs of --models / load_models, the listening addresses
 * (docs/serve.md, "Configuration").  Pure: no file but the one
 * pf_serve_config_load() reads, no network, no model store look-up.
 */

/* A listening address: TorchServe's "http://127.0.0.1:8080". */
typedef struct pf_serve_address {
    bool https;
    char *host; /* "127.0.0.1", "0.0.0.0", "localhost", or an IPv6 literal without its
                   brackets ("::1"); never empty */
    int port;   /* 0-65535; 0: any free port, chosen when the server binds */
} pf_serve_address;

/* Which listener an address is for: it decides the port when none is written. */
typedef enum pf_serve_listener {
    PF_SERVE_INFERENCE = 0, /* no port: 80, https 443 (TorchServe's) */
    PF_SERVE_MANAGEMENT,    /* no port: 8081, https 8444 */
    PF_SERVE_METRICS        /* no port: 8082, https 8445 */
} pf_serve_listener;

/*
 * Parse "SCHEME://HOST[:PORT][/]": SCHEME http or https (any case); HOST an
 * IPv4 address, an IPv6 address in brackets ("[::1]") or a host name;
 * PORT 0-65535.  Errors (-EINVAL, *why one line quoting the text): another
 * scheme (TorchServe's "unix:" sockets included), no host, a bad port, a
 * path, user info, a query.  Free *out with pf_serve_address_free().
 */
int pf_serve_address_parse(const char *text, pf_serve_listener listener, pf_serve_address **out,
                           char **why);
void pf_serve_address_free(pf_serve_address *addr);

/*
 * Is `name` usable as a model name (it is a path component of every URL of
 * the model): 1-255 characters of [A-Za-z0-9_.-], the first a letter or a
 * digit (TorchServe's rule)?  0, or -EINVAL with *why.
 */
int pf_serve_model_name_check(const char *name, char **why);

/*
 * The model-store rule for a model FILE (of --models, load_models, marName,
 * the management API's url=): it names something inside the store, so it
 * may not be empty, absolute, a URL ("http://", "https://", "s3://", any
 * "SCHEME://"), hold a ".." component or a control character, or name the
 * store itself.  On success *normalized (malloc'd) is FILE relative to the
 * store with "." components, repeated and trailing slashes removed
 * ("./a//b.mar" -> "a/b.mar").  -EINVAL with *why otherwise, -ENOMEM.
 * This is a rule on the text only: whoever opens the file must still refuse
 * links that lead out of the store.
 */
int pf_serve_store_path(const char *file, char **normalized, char **why);

/* One model to load: an item of --models or load_models. */
typedef struct pf_serve_model_spec {
    bool all;   /* "all" (any case): every model in the store; name and file are NULL */
    char *name; /* NAME of NAME=FILE, else the stem of FILE: its last component without
                   .mar, .tar.gz, .model, .pt, .pth or .zip ("x/resnet-18.mar" -> "resnet-18") */
    bool named; /* NAME= was written; when not, the archive's manifest may name the model */
    char *file; /* FILE as pf_serve_store_path() normalised it */
} pf_serve_model_spec;

/*
 * Parse one item: "NAME=FILE", "FILE" or "all" (blanks around it ignored).
 * The name must pass pf_serve_model_name_check() (a stem that does not asks
 * for NAME=FILE), FILE pf_serve_store_path().  -EINVAL with *why (quoting
 * the item), -ENOMEM.  Free *out with pf_serve_model_spec_free().
 */
int pf_serve_model_spec_parse(const char *text, pf_serve_model_spec **out, char **why);
void pf_serve_model_spec_free(pf_serve_model_spec *spec);

/*
 * Parse a comma-separated list of items (TorchServe's load_models; --models
 * takes the same).  Empty items are skipped, so "" is an empty list (*specs
 * NULL, *count 0).  "all" must stand alone; two items may not give one name.
 * Errors as pf_serve_model_spec_parse().  Free with pf_serve_model_list_free().
 */
int pf_serve_model_list_parse(const char *text, pf_serve_model_spec **specs, size_t *count,
                              char **why);
void pf_serve_model_list_free(pf_serve_model_spec *specs, size_t count);

/*
 * One model version of the `models` property (TorchServe's JSON:
 * {"NAME": {"VERSION": {"defaultVersion": true, "marName": "x.mar",
 * "minWorkers": 1, ...}}}).  Absent fields hold their defaults, resolved
 * once the whole file is read.
 */
typedef struct pf_serve_model_config {
    char *name;           /* checked as pf_serve_model_name_check() */
    char *version;        /* likewise */
    bool default_version; /* "defaultVersion" (false when absent) */
    char *mar_name;       /* "marName" as pf_serve_store_path() normalised it; NULL: absent */
    int min_workers;      /* "minWorkers" >= 1; 0: absent (default_workers_per_model) */
    int max_workers;      /* "maxWorkers" >= minWorkers; 0: absent (then min_workers) */
    int batch_size;       /* "batchSize" >= 1; absent: 1 */
    int max_batch_delay;  /* "maxBatchDelay" in ms, >= 0; absent: 100 */
    int response_timeout; /* "responseTimeout" in s, >= 1; absent: default_response_timeout */
    int line;             /* the line of the model's name in the file */
} pf_serve_model_config;

/* A key as the file set it (the last of repeated keys), for keys the server reads itself. */
typedef struct pf_serve_property {
    char *key;
    char *value; /* escapes converted, $$VAR$$ substituted */
    int line;
} pf_serve_property;

typedef struct pf_serve_config {
    char *source;                         /* the file name messages use */
    pf_serve_address *inference_address;  /* default http://127.0.0.1:8080 */
    pf_serve_address *management_address; /* default http://127.0.0.1:8081 */
    pf_serve_address *metrics_address;    /* default http://127.0.0.1:8082 */
    char *model_store;                    /* NULL: not set */
    pf_serve_model_spec *load_models;     /* none by default */
    size_t nload_models;
    int default_workers_per_model; /* 0: not set (the server plans them) */
    int job_queue_size;            /* default 100 */
    int default_response_timeout;  /* seconds, default 120 */
    size_t max_request_size;       /* bytes, default 6553500 */
    size_t max_response_size;      /* bytes, default 6553500 */
    pf_serve_model_config *models; /* in file order */
    size_t nmodels;
    bool cpu_launcher_enable;
    char *cpu_launcher_args;  /* as written; NULL: not set */
    char **cpu_launcher_argv; /* its words, NULL-terminated (never NULL: {NULL} when none) */
    size_t cpu_launcher_argc;
    bool ipex_enable;
    pf_serve_property *properties; /* every key-value line, the last of repeated keys, in
                                      file order: the server reads the TLS files there */
    size_t nproperties;
    char **warnings; /* "FILE:LINE: ...", one line each, NULL-terminated (NULL when none):
                        unknown keys and `models` fields, repeated keys, a setting that
                        narrows what workers see and is not applied (blacklist_env_vars) */
    size_t nwarnings;
    char **notes; /* likewise: TorchServe keys and `models` fields pinfer does not use,
                     cpu_launcher_enable=false */
    size_t nnotes;
} pf_serve_config;

/*
 * Read a config.properties text (docs/serve.md, "Configuration": the syntax,
 * every key read, its default and its checks).  `source` names it in
 * messages (NULL: "config.properties"); $$NAME$$ in a value is replaced by
 * NAME from envp (NULL-terminated "NAME=value"; NULL: the process's
 * environment), as TorchServe does.  An empty text gives every default.
 * Errors: -EINVAL with *why, one line "SOURCE:LINE: ..." (the first error in
 * the file), -ENOMEM.  Nothing is printed: warnings and notes are data.
 * Free *out with pf_serve_config_free().
 */
int pf_serve_config_parse(const char *text, size_t len, const char *source, char *const *envp,
                          pf_serve_config **out, char **why);

/*
 * pf_serve_config_parse() of a file (at most 16 MiB).  -ENOENT / -EACCES /
 * another negative errno when it cannot be read ("cannot read PATH: ..."),
 * -EINVAL for a folder, a file too large, or what the parse refuses.
 */
int pf_serve_config_load(const char *path, char *const *envp, pf_serve_config **out, char **why);
void pf_serve_config_free(pf_serve_config *cfg);

#ifdef __cplusplus
}
#endif

#endif /* PINFER_H */
