/*
 * pin.c - binding the calling thread and its OpenMP team to a pool.
 *
 * Only portable OpenMP and Linux calls, so that the same code works with GNU
 * libgomp and with LLVM/Intel libomp (LD_PRELOAD=libiomp5.so serves gcc's
 * GOMP_* entry points too): set the team size, open one parallel region, and
 * in it let team thread t bind itself with sched_setaffinity(0) to pool
 * CPU t, after saving its mask and noting its kernel thread id.  Both
 * runtimes keep the team of a thread's outermost regions alive between
 * regions ("thread pool" in libgomp, "hot team" in libomp) and hand slot t
 * to the same OS thread each time, so the binding holds for the regions
 * that follow; docs/runtime.md says why and what OMP_PROC_BIND/KMP_AFFINITY
 * change.
 *
 * Restoring needs no region: the saved masks are put back by thread id with
 * sched_setaffinity(tid), which reaches the very threads that were bound even
 * if the runtime has since reshuffled or shrunk the team.
 */
#include "pinfer_runtime.h"
#include "base/util.h"

#include <errno.h>
#include <omp.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct pf_pin_state {
    pid_t owner;          /* the thread that pinned: only it may restore */
    int nthreads;         /* omp_get_max_threads() before */
    int dynamic;          /* omp_get_dynamic() before */
    size_t nsaved;        /* team threads whose masks were saved */
    pid_t *tids;          /* [nsaved] */
    size_t setsize;       /* bytes per saved mask */
    unsigned char *masks; /* [nsaved][setsize] */
};

/* What each team thread reports from the region. */
typedef struct slot {
    pid_t tid;
    int err;          /* errno of a failed get/set, 0 */
    bool moved;       /* its mask was changed */
    atomic_bool done; /* published with release: the fields above are written */
} slot;

static pid_t current_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/*
 * The size of a mask the kernel accepts for sched_getaffinity: CPU_ALLOC_SIZE
 * of 1024 CPUs on most machines, more on larger ones.
 */
static size_t kernel_setsize(void)
{
    size_t bytes = 0;
    int err;
    cpu_set_t *set = pf__affinity_read(&bytes, &err);
    if (!set)
        return 0;
    CPU_FREE(set);
    return bytes;
}

static cpu_set_t *saved_mask(const pf_pin_state *st, size_t i)
{
    return (cpu_set_t *)(st->masks + i * st->setsize);
}

/* Put back the saved masks: of the threads marked `moved` in slots, or of all (slots NULL). */
static void restore_masks(const pf_pin_state *st, const slot *slots)
{
    for (size_t i = 0; i < st->nsaved; i++) {
        if (slots && !slots[i].moved)
            continue;
        /* ESRCH: the thread has exited since; nothing to restore. */
        sched_setaffinity(st->tids[i], st->setsize, saved_mask(st, i));
    }
}

static void free_state(pf_pin_state *st)
{
    if (!st)
        return;
    free(st->tids);
    free(st->masks);
    free(st);
}

/* The body of the pinning region, run by every team thread. */
static void pin_team_thread(pf_pin_state *st, slot *slots, const int *cpus, size_t n,
                            int *team_size)
{
    int t = omp_get_thread_num();
    if (t == 0)
        *team_size = omp_get_num_threads();
    if ((size_t)t >= n)
        return;
    slot *s = &slots[t];
    s->tid = current_tid();
    st->tids[t] = s->tid;
    if (sched_getaffinity(0, st->setsize, saved_mask(st, (size_t)t)) < 0) {
        s->err = errno;
    } else {
        size_t cpu = (size_t)cpus[t];
        size_t bytes = CPU_ALLOC_SIZE(cpu + 1);
        cpu_set_t *set = CPU_ALLOC(cpu + 1);
        if (!set) {
            s->err = ENOMEM;
        } else {
            CPU_ZERO_S(bytes, set);
            CPU_SET_S(cpu, bytes, set);
            if (sched_setaffinity(0, bytes, set) < 0)
                s->err = errno;
            else
                s->moved = true;
            CPU_FREE(set);
        }
    }
    /* The runtime's join barrier orders these writes for the thread that
       reads them, but a sanitizer may not see inside the runtime. */
    atomic_store_explicit(&s->done, true, memory_order_release);
}

int pf_pin(const pf_pool *pool, pf_pin_state **previous, char **why)
{
    if (!pool)
        return pf__fail(why, -EINVAL, "no pool to pin to");
    size_t n;
    const int *cpus = pf_pool_cpus(pool, &n);
    /* Also registers the thread with the runtime (libomp binds a new root
       under KMP_AFFINITY then), so that what is saved is what it would be. */
    int nthreads = omp_get_max_threads();
    if (omp_get_level() > 0)
        return pf__fail(why, -EBUSY, "cannot pin from inside an OpenMP parallel region");
    if ((size_t)omp_get_thread_limit() < n)
        return pf__fail(why, -EAGAIN,
                        "a pool of %zu CPUs needs more threads than "
                        "OMP_THREAD_LIMIT (%d) allows",
                        n, omp_get_thread_limit());

    pf_pin_state *st = calloc(1, sizeof *st);
    slot *slots = calloc(n, sizeof *slots);
    if (!st || !slots)
        goto nomem;
    st->owner = current_tid();
    st->nthreads = nthreads;
    st->dynamic = omp_get_dynamic();
    st->setsize = kernel_setsize();
    if (st->setsize == 0)
        goto nomem;
    st->tids = calloc(n, sizeof *st->tids);
    st->masks = calloc(n, st->setsize);
    if (!st->tids || !st->masks)
        goto nomem;
    st->nsaved = n;

    /* Dynamic adjustment would let the runtime give later regions fewer threads. */
    omp_set_dynamic(0);
    omp_set_num_threads((int)n);
    int team_size = 0;
#pragma omp parallel num_threads((int)n)
    pin_team_thread(st, slots, cpus, n, &team_size);

    int rc = 0;
    for (size_t t = 0; t < n; t++) {
        if (!atomic_load_explicit(&slots[t].done, memory_order_acquire)) {
            if (rc == 0)
                rc = pf__fail(why, -EAGAIN,
                              "the OpenMP runtime gave a team of %d threads for a pool of %zu "
                              "CPUs (OMP_THREAD_LIMIT, or a nested region?)",
                              team_size, n);
        } else if (slots[t].err && rc == 0) {
            int err = slots[t].err;
            rc = pf__fail(why, err == ENOMEM ? -ENOMEM : -EINVAL,
                          "cannot bind team thread %zu to CPU %d: %s", t, cpus[t], strerror(err));
        }
    }
    if (rc < 0) {
        /* Undo: put back what was moved, and the settings. */
        for (size_t t = 0; t < n; t++)
            if (!atomic_load_explicit(&slots[t].done, memory_order_acquire))
                slots[t].moved = false;
        restore_masks(st, slots);
        omp_set_num_threads(st->nthreads);
        omp_set_dynamic(st->dynamic);
        free(slots);
        free_state(st);
        return rc;
    }
    free(slots);
    if (previous)
        *previous = st;
    else
        free_state(st);
    return 0;

nomem:
    free(slots);
    free_state(st);
    return pf__fail(why, -ENOMEM, "out of memory");
}

int pf_unpin(pf_pin_state *previous)
{
    if (!previous)
        return 0;
    if (previous->owner != current_tid())
        return -EINVAL;
    restore_masks(previous, NULL);
    omp_set_num_threads(previous->nthreads);
    omp_set_dynamic(previous->dynamic);
    free_state(previous);
    return 0;
}
