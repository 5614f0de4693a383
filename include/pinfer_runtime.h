/*
 * pinfer_runtime.h - the in-process runtime of libpinfer: CPU pools, pinning
 * of a thread and its OpenMP team, executors with futures, multi-stream
 * batch execution.
 *
 * A library of its own, libpinfer-runtime (pkg-config pinfer-runtime), on
 * top of libpinfer: it links an OpenMP runtime and records the loading
 * thread's affinity mask in a constructor, which a program that only plans
 * and launches (pinfer.h alone) does not want.  The conventions of
 * pinfer.h hold here too.
 */
#ifndef PINFER_RUNTIME_H
#define PINFER_RUNTIME_H

#include "pinfer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Runtime: pools, pinning, executors, streams (docs/runtime.md)             */

/*
 * What the process may use.  Pools keep only the CPUs this process may use:
 * the process's affinity mask as it was at start-up, intersected with the
 * cgroup's cpuset.  "At start-up" means when libpinfer was loaded (a
 * constructor reads the loading thread's mask), widened by the places of an
 * OpenMP runtime that had already bound that thread to one of them
 * (OMP_PROC_BIND / OMP_PLACES / GOMP_CPU_AFFINITY / KMP_AFFINITY).  So a
 * thread narrowed later, by pf_pin() or anything else, never shrinks the
 * pools made afterwards.  The cgroup part comes from the live topology,
 * loaded once on first use (the library's only global state).
 *
 * Threads: pools are immutable and may be shared.  Executors, futures and
 * streams are thread-safe as each function says.  None of these objects
 * survives fork() in the child.
 */

/* An ordered list of CPU ids; team thread t of a pinned team runs on CPU t. */
typedef struct pf_pool pf_pool;

/*
 * A pool of these CPUs in this order, dropping those the process may not use
 * (order kept).  Errors (-EINVAL with *why): n == 0, a negative id or one >=
 * PF_ID_LIMIT, an id listed twice, nothing left after filtering.  -ENOMEM.
 * Free *out with pf_pool_free().
 */
int pf_pool_from_list(const int *cpus, size_t n, pf_pool **out, char **why);

/* The same from a CPU list such as "0-3,8" (ascending: see pf_cpulist_parse). */
int pf_pool_from_string(const char *list, pf_pool **out, char **why);

/*
 * The CPUs of NUMA node `node` in `topo` (NULL: the live machine, loaded
 * once), ascending: with logical false one per physical core (the core's
 * lowest CPU the process may use, as the planner picks them), with logical
 * true all of them.  E-cores are included.  Errors (-EINVAL with *why): no
 * such node, nothing left; the live topology's load error when topo is NULL.
 */
int pf_pool_from_node(const pf_topology *topo, int node, bool logical, pf_pool **out, char **why);

/* The CPUs of a planned instance (pf_plan_instances), filtered. */
int pf_pool_from_instance(const pf_instance *instance, pf_pool **out, char **why);

/* Every CPU the process may use, ascending (the default pool). */
int pf_pool_from_process(pf_pool **out, char **why);

/* The pool's CPU ids in order (owned by the pool); *n receives their number (>= 1). */
const int *pf_pool_cpus(const pf_pool *pool, size_t *n);

void pf_pool_free(pf_pool *pool);

/*
 * Part `i` of `n` items cut into `nparts` contiguous parts, the first
 * n % nparts parts one item larger: [*begin, *end).  Parts past n (when
 * n < nparts) are empty.  How streams share a pool's CPUs and a batch.
 * Pure; nparts must be > 0 and i < nparts.
 */
void pf_split_range(size_t n, size_t nparts, size_t i, size_t *begin, size_t *end);

/* The state pf_pin() replaced; pf_unpin() puts it back. */
typedef struct pf_pin_state pf_pin_state;

/*
 * Pin the calling thread and its OpenMP team to the pool: the team size
 * becomes the pool size (omp_set_num_threads, dynamic adjustment off), and
 * in an OpenMP parallel region team thread t binds itself to pool CPU t, the
 * calling thread being thread 0.  Later parallel regions of the calling
 * thread reuse that team, so thread t stays on CPU t (docs/runtime.md: why
 * this holds for GNU libgomp and for LLVM/Intel libomp, with or without
 * OMP_PROC_BIND / KMP_AFFINITY).  Other threads are not touched.
 *
 * With `previous` not NULL, *previous receives what was replaced (every team
 * thread's mask, the team size and dynamic setting) for pf_unpin().
 * Errors (with *why): -EINVAL (no pool, a CPU the kernel refuses),
 * -EBUSY (called inside an OpenMP parallel region), -EAGAIN (the OpenMP
 * runtime gave a smaller team: OMP_THREAD_LIMIT, ...), -ENOMEM.  On error
 * nothing is changed.
 */
int pf_pin(const pf_pool *pool, pf_pin_state **previous, char **why);

/*
 * Restore what pf_pin() replaced, exactly: each of those threads' affinity
 * masks, the calling thread's team size and dynamic setting; then free the
 * state.  Must be called by the thread that pinned; pins nest in LIFO order
 * (pin A, pin B, unpin B gives A's binding back).  NULL: no-op, returns 0.
 * Returns 0, or -EINVAL (another thread: nothing done, state kept).  A team
 * thread that has exited since the pin is skipped.
 */
int pf_unpin(pf_pin_state *previous);

/*
 * Executors: one worker thread pinned to a pool with pf_pin() (so it has its
 * own OpenMP team bound to the pool) that runs submitted tasks one at a time
 * in FIFO order.  Any number of tasks may be in flight.  An idle worker, and
 * a thread waiting for a future, spin (yielding the CPU to any other thread
 * that wants it) for PINFER_SPIN_US microseconds (environment, read when the
 * executor is made; default 200, 0 = sleep at once) before they sleep.
 */
typedef struct pf_executor pf_executor;
typedef struct pf_future pf_future;

/* A task: its return value (0 or a negative code, by convention) is the future's result. */
typedef int (*pf_task_fn)(void *arg);

/*
 * Start an executor on the pool (copied).  Returns once the worker is
 * pinned: the errors of pf_pin() (with *why), -EAGAIN (no thread), -ENOMEM.
 * Free with pf_executor_free().
 */
int pf_executor_create(const pf_pool *pool, pf_executor **out, char **why);

/*
 * Queue fn(arg).  With `out` not NULL, *out receives a future (free it with
 * pf_future_free(), whether or not the task has run).  Thread-safe; tasks
 * may submit to their own executor.  Returns 0, -EINVAL (no executor or
 * fn), -ENOMEM, or -ECANCELED once pf_executor_free() has begun (including
 * from a task running during the drain); then nothing is queued.
 */
int pf_executor_submit(pf_executor *ex, pf_task_fn fn, void *arg, pf_future **out);

/* The executor's pool (owned by the executor). */
const pf_pool *pf_executor_pool(const pf_executor *ex);

/* true when the calling thread is the executor's worker (inside one of its tasks). */
bool pf_executor_in_worker(const pf_executor *ex);

/*
 * Refuse new tasks, run every queued one, unpin and join the worker, free.
 * Futures stay valid.  Called from one of its own tasks it does not wait:
 * the worker drains and frees the executor itself after that task.  Calls
 * to pf_executor_submit() racing with it get -ECANCELED; calls made after it
 * returned use a freed handle.  NULL: no-op.
 */
void pf_executor_free(pf_executor *ex);

/* true once the task has run.  Thread-safe. */
bool pf_future_poll(const pf_future *f);

/*
 * Wait for the task; *result (if not NULL) receives its return value.
 * Returns 0, or -EDEADLK when called from the executor's own worker on a
 * task not yet run (it could never run).  Thread-safe, several waiters
 * allowed; spins briefly, then sleeps.
 */
int pf_future_wait(pf_future *f, int *result);

/*
 * The same, giving up after timeout_ms milliseconds with -ETIMEDOUT
 * (timeout_ms 0: just look; negative: no limit).
 */
int pf_future_wait_timeout(pf_future *f, int timeout_ms, int *result);

/*
 * Free a future.  If its task has not run yet, it still runs and its result
 * is dropped.  Must not race with a wait on the same future.  NULL: no-op.
 */
void pf_future_free(pf_future *f);

/*
 * Streams: N executors over a pool cut into N contiguous parts of
 * pf_split_range() (the first len % N parts one CPU larger).
 */
typedef struct pf_streams pf_streams;

/* nstreams value: one stream per CPU of the pool. */
#define PF_STREAMS_AUTO 0

/*
 * Start nstreams executors (PF_STREAMS_AUTO or 0: one per pool CPU).
 * Errors (-EINVAL with *why): nstreams < 0, more streams than CPUs (callers
 * that want to clamp compare with the pool size first); those of
 * pf_executor_create().  Free with pf_streams_free().
 */
int pf_streams_create(const pf_pool *pool, int nstreams, pf_streams **out, char **why);

/* A chunk of a batch: items [begin, end) on stream `stream`. */
typedef int (*pf_stream_fn)(void *ctx, int stream, size_t begin, size_t end);

/*
 * Cut [0, batch) with pf_split_range() over the streams and call
 * fn(ctx, i, begin, end) on stream i for every non-empty chunk (when batch <
 * N only the first `batch` streams run, one item each), all at once; return
 * when all are done.  Returns 0 when every fn returned 0, else the nonzero
 * return of the lowest-index stream that failed (not the first in time; all
 * chunks run to the end regardless).  batch 0: nothing runs, 0.
 * Thread-safe: concurrent calls run one after the other.  -EINVAL (no
 * streams or fn), -EDEADLK (called from one of its own streams), -ENOMEM.
 */
int pf_streams_run(pf_streams *s, size_t batch, pf_stream_fn fn, void *ctx);

/* The number of streams. */
int pf_streams_count(const pf_streams *s);

/* Stream i's pool (owned by the streams), or NULL when i is out of range. */
const pf_pool *pf_streams_pool(const pf_streams *s, int i);

/* Free every stream (each drains, then joins).  NULL: no-op. */
void pf_streams_free(pf_streams *s);

#ifdef __cplusplus
}
#endif

#endif /* PINFER_RUNTIME_H */
