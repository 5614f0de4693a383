/*
 * pool.c - CPU pools: ordered lists of CPU ids, kept to the CPUs this
 * process may use.
 *
 * "May use" is the process's affinity at start-up intersected with the
 * cgroup's cpuset.  Two things make "at start-up" harder than one
 * sched_getaffinity() at first use:
 *
 *   - Our own pinning narrows threads.  A pool made by a pinned thread (an
 *     executor's task, code inside pf_pin) must not shrink to that thread's
 *     CPU, so the mask is read by a constructor when the library is loaded,
 *     before anything of ours can have run.
 *   - OpenMP runtimes narrow the initial thread too: with OMP_PROC_BIND,
 *     OMP_PLACES or GOMP_CPU_AFFINITY, GNU libgomp binds it to the first
 *     place in its own constructor, which runs before ours; LLVM/Intel
 *     libomp does the same with KMP_AFFINITY or OMP_PROC_BIND at its first
 *     use.  Both build their places from the mask they saw first, so when
 *     such a variable is set the union of the places is added back.
 *
 * The cgroup part comes from the live topology, whose `allowed` flags are
 * "hwloc's allowed cpuset and the loading thread's mask".  It is loaded once,
 * on first use, in a short-lived thread started with the start-up mask, so
 * that the caller's own (possibly narrowed) mask does not leak into it.
 * The mask and that topology are the only global state of the runtime.
 */
#include "pinfer_runtime.h"
#include "base/util.h"

#include <dlfcn.h>
#include <errno.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

struct pf_pool {
    size_t n;
    int cpus[];
};

static struct {
    cpu_set_t *mask; /* the start-up mask; NULL if it could not be read */
    size_t size;     /* its size in bytes */
    int mask_errno;
    pthread_once_t once;
    pf_topology *live; /* NULL when the load failed */
    int live_rc;
    char *live_why;
} startup = {.once = PTHREAD_ONCE_INIT};

/*
 * Runs when the library is loaded (or when the static archive's pool.o is
 * part of a program, before main).  Only a system call: no OpenMP, no hwloc.
 */
__attribute__((constructor)) static void capture_startup_mask(void)
{
    startup.mask = pf__affinity_read(&startup.size, &startup.mask_errno);
}

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v && *v;
}

typedef struct places_api {
    int (*num_places)(void);
    int (*place_num_procs)(int);
    void (*place_proc_ids)(int, int *);
} places_api;

static void add_places(const places_api *api)
{
    int nplaces = api->num_places();
    for (int p = 0; p < nplaces; p++) {
        int n = api->place_num_procs(p);
        if (n <= 0)
            continue;
        int *ids = malloc((size_t)n * sizeof *ids);
        if (!ids)
            return;
        api->place_proc_ids(p, ids);
        for (int i = 0; i < n; i++)
            if (ids[i] >= 0 && (size_t)ids[i] < startup.size * 8)
                CPU_SET_S((size_t)ids[i], startup.size, startup.mask);
        free(ids);
    }
}

/*
 * Add the OpenMP places back when a binding variable says there are some.
 * Those of the runtime in use, and libgomp's own when it is loaded but
 * another runtime serves the calls (libiomp5 preloaded into a gcc-built
 * program): libgomp still reads OMP_PROC_BIND and binds the initial thread
 * in its constructor, so the runtime in use starts from that narrowed mask
 * and only libgomp's places remember the whole one.  libgomp's place
 * functions only read what its constructor computed.
 */
static void add_openmp_places(void)
{
    if (!env_set("OMP_PROC_BIND") && !env_set("OMP_PLACES") && !env_set("GOMP_CPU_AFFINITY") &&
        !env_set("KMP_AFFINITY"))
        return;
    places_api api = {omp_get_num_places, omp_get_place_num_procs, omp_get_place_proc_ids};
    add_places(&api);
    void *gomp = dlopen("libgomp.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (gomp) {
        /* POSIX lets a void * from dlsym become a function pointer. */
        *(void **)&api.num_places = dlsym(gomp, "omp_get_num_places");
        *(void **)&api.place_num_procs = dlsym(gomp, "omp_get_place_num_procs");
        *(void **)&api.place_proc_ids = dlsym(gomp, "omp_get_place_proc_ids");
        if (api.num_places && api.place_num_procs && api.place_proc_ids)
            add_places(&api);
        dlclose(gomp);
    }
}

static void *load_live(void *arg)
{
    (void)arg;
    startup.live_rc = pf_topology_load(NULL, &startup.live, &startup.live_why);
    return NULL;
}

static void init_once(void)
{
    if (startup.mask)
        add_openmp_places();
    /* Load here if this thread has the start-up mask (the usual case: no
       thread to start, and hwloc keeps its faster single-threaded set-up);
       else in a thread that has it; if that cannot be started (the cgroup
       shrank since), here anyway. */
    size_t size;
    int err;
    cpu_set_t *mine = startup.mask ? pf__affinity_read(&size, &err) : NULL;
    bool same = mine && size == startup.size && CPU_EQUAL_S(size, mine, startup.mask);
    if (mine)
        CPU_FREE(mine);
    pthread_attr_t attr;
    pthread_t thread;
    bool loaded = false;
    if (!same && startup.mask && pthread_attr_init(&attr) == 0) {
        if (pthread_attr_setaffinity_np(&attr, startup.size, startup.mask) == 0 &&
            pthread_create(&thread, &attr, load_live, NULL) == 0) {
            pthread_join(thread, NULL);
            loaded = true;
        }
        pthread_attr_destroy(&attr);
    }
    if (!loaded)
        load_live(NULL);
}

/* Is the start-up state usable?  Fills *why when it is not. */
static int ensure_startup(char **why)
{
    pthread_once(&startup.once, init_once);
    if (!startup.mask)
        return pf__fail(why, startup.mask_errno == ENOMEM ? -ENOMEM : -ENOTSUP,
                        "cannot read this process's CPU affinity: %s",
                        strerror(startup.mask_errno));
    return 0;
}

/* May the process use this CPU?  Needs ensure_startup(). */
static bool may_use(int cpu)
{
    if (cpu < 0 || (size_t)cpu >= startup.size * 8 ||
        !CPU_ISSET_S((size_t)cpu, startup.size, startup.mask))
        return false;
    if (!startup.live) /* no topology: the mask alone (it is within the cgroup anyway) */
        return true;
    const pf_cpu_info *c = pf_topology_cpu(startup.live, cpu);
    return c && c->allowed;
}

/* The pool of the ids the process may use, in order; `what` names the source in messages. */
static int make_pool(const int *cpus, size_t n, const char *what, pf_pool **out, char **why)
{
    if (!out)
        return pf__fail(why, -EINVAL, "no place for the pool");
    int rc = ensure_startup(why);
    if (rc < 0)
        return rc;
    pf_pool *p = malloc(sizeof *p + (n ? n : 1) * sizeof *p->cpus);
    if (!p)
        return pf__fail(why, -ENOMEM, "out of memory");
    p->n = 0;
    for (size_t i = 0; i < n; i++)
        if (may_use(cpus[i]))
            p->cpus[p->n++] = cpus[i];
    if (p->n == 0) {
        free(p);
        char *list = NULL;
        pf_cpulist_format(cpus, n, &list);
        rc = pf__fail(why, -EINVAL, "%s (CPUs %s): none of them may be used by this process", what,
                      list ? list : "?");
        free(list);
        return rc;
    }
    *out = p;
    return 0;
}

int pf_pool_from_list(const int *cpus, size_t n, pf_pool **out, char **why)
{
    if (n == 0 || !cpus)
        return pf__fail(why, -EINVAL, "empty CPU list");
    for (size_t i = 0; i < n; i++) {
        if (cpus[i] < 0 || cpus[i] >= PF_ID_LIMIT)
            return pf__fail(why, -EINVAL, "CPU id %d is out of range (0 to %d)", cpus[i],
                            PF_ID_LIMIT - 1);
        /* A pool pins one thread per entry: a repeated CPU is a mistake. */
        for (size_t j = 0; j < i; j++)
            if (cpus[j] == cpus[i])
                return pf__fail(why, -EINVAL, "CPU %d is listed twice", cpus[i]);
    }
    return make_pool(cpus, n, "the CPU list", out, why);
}

int pf_pool_from_string(const char *list, pf_pool **out, char **why)
{
    if (!list)
        return pf__fail(why, -EINVAL, "no CPU list");
    int *ids = NULL;
    size_t n = 0;
    int rc = pf_cpulist_parse(list, &ids, &n, why);
    if (rc < 0)
        return rc;
    char *what = pf__strdupf("'%s'", list);
    rc = make_pool(ids, n, what ? what : "the CPU list", out, why);
    free(what);
    free(ids);
    return rc;
}

int pf_pool_from_node(const pf_topology *topo, int node, bool logical, pf_pool **out, char **why)
{
    int rc = ensure_startup(why);
    if (rc < 0)
        return rc;
    if (!topo) {
        if (!startup.live)
            return pf__fail(why, startup.live_rc < 0 ? startup.live_rc : -ENOTSUP,
                            "the live topology could not be loaded: %s",
                            startup.live_why ? startup.live_why : pf_strerror(startup.live_rc));
        topo = startup.live;
    }
    size_t ncpus;
    const pf_cpu_info *cpus = pf_topology_cpus(topo, &ncpus);
    pf__ivec ids = {0};
    bool found = false;
    for (size_t i = 0; i < ncpus; i++) {
        const pf_cpu_info *c = &cpus[i];
        if (c->node != node)
            continue;
        found = true;
        if (!c->allowed || !may_use(c->cpu))
            continue;
        if (!logical) {
            /* One per core: the lowest usable CPU of the core, as the planner does.
               CPUs are ascending, so an earlier usable sibling was taken already. */
            bool taken = false;
            for (size_t j = 0; j < i && !taken; j++)
                taken = cpus[j].core_first == c->core_first && cpus[j].socket == c->socket &&
                        cpus[j].allowed && may_use(cpus[j].cpu);
            if (taken)
                continue;
        }
        if (pf__ivec_push(&ids, c->cpu) < 0) {
            pf__ivec_free(&ids);
            return pf__fail(why, -ENOMEM, "out of memory");
        }
    }
    if (!found)
        return pf__fail(why, -EINVAL, "NUMA node %d does not exist in topology %s", node,
                        pf_topology_source(topo));
    if (ids.len == 0)
        return pf__fail(why, -EINVAL, "NUMA node %d: none of its CPUs may be used by this process",
                        node);
    char *what = pf__strdupf("NUMA node %d", node);
    rc = make_pool(ids.v, ids.len, what ? what : "the NUMA node", out, why);
    free(what);
    pf__ivec_free(&ids);
    return rc;
}

int pf_pool_from_instance(const pf_instance *instance, pf_pool **out, char **why)
{
    if (!instance || instance->ncpus == 0)
        return pf__fail(why, -EINVAL, "no instance, or an instance without CPUs");
    char *what = pf__strdupf("instance %d", instance->index);
    int rc = make_pool(instance->cpus, instance->ncpus, what ? what : "the instance", out, why);
    free(what);
    return rc;
}

int pf_pool_from_process(pf_pool **out, char **why)
{
    int rc = ensure_startup(why);
    if (rc < 0)
        return rc;
    pf__ivec ids = {0};
    for (size_t cpu = 0; cpu < startup.size * 8; cpu++) {
        if (may_use((int)cpu) && pf__ivec_push(&ids, (int)cpu) < 0) {
            pf__ivec_free(&ids);
            return pf__fail(why, -ENOMEM, "out of memory");
        }
    }
    if (ids.len == 0) /* cannot happen: we are running somewhere */
        return pf__fail(why, -EINVAL, "this process may use no CPU");
    rc = make_pool(ids.v, ids.len, "this process", out, why);
    pf__ivec_free(&ids);
    return rc;
}

const int *pf_pool_cpus(const pf_pool *pool, size_t *n)
{
    *n = pool->n;
    return pool->cpus;
}

void pf_pool_free(pf_pool *pool)
{
    free(pool);
}

void pf_split_range(size_t n, size_t nparts, size_t i, size_t *begin, size_t *end)
{
    size_t base = n / nparts, extra = n % nparts;
    *begin = i * base + (i < extra ? i : extra);
    *end = *begin + base + (i < extra ? 1 : 0);
}
