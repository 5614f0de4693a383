/*
 * pf_test.h - what the cmocka test programs share: cmocka itself, fixture
 * paths, a topology loader that fails the test on error, and the CPUs of
 * this machine the tests run on.
 */
#ifndef PF_TEST_H
#define PF_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pinfer.h"

#ifndef PF_SOURCE_DIR
#define PF_SOURCE_DIR "."
#endif

/* The path of a fixture file, in a static buffer. */
static inline const char *fixture(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", PF_SOURCE_DIR, name);
    return path;
}

/*
 * A topology from a source as pf_topology_load() takes it (NULL: live), or a
 * test failure naming the reason; a success leaves no message behind.
 */
static inline pf_topology *load_source(const char *source)
{
    pf_topology *t = NULL;
    char *why = NULL;
    int rc = pf_topology_load(source, &t, &why);
    if (rc < 0)
        fail_msg("loading %s: %s", source ? source : "NULL", why ? why : pf_strerror(rc));
    assert_null(why);
    return t;
}

/* Load a fixture (or a "synthetic:..." source) or fail the test with the reason. */
static inline pf_topology *load_fixture(const char *name)
{
    return load_source(strncmp(name, "synthetic:", 10) == 0 ? name : fixture(name));
}

/*
 * Fill plan options from a compact form ("ni=2 nc=3 bind scatter"): ni=N
 * nc=N node=N nodes=L cores=L logical ecores bind scatter latency throughput
 * multi rank=N idx=L lr=N lws=N quota=Q.  The strings point into `buf`.
 */
static inline void plan_options_parse(const char *text, char *buf, size_t size, pf_plan_options *o)
{
    pf_plan_options_init(o);
    snprintf(buf, size, "%s", text);
    for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        const char *v = eq ? eq + 1 : "";
        if (eq)
            *eq = '\0';
        if (!strcmp(tok, "ni"))
            o->ninstances = (int)strtol(v, NULL, 10);
        else if (!strcmp(tok, "nc"))
            o->ncores_per_instance = (int)strtol(v, NULL, 10);
        else if (!strcmp(tok, "node"))
            o->node_id = (int)strtol(v, NULL, 10);
        else if (!strcmp(tok, "nodes"))
            o->nodes_list = v;
        else if (!strcmp(tok, "cores"))
            o->core_list = v;
        else if (!strcmp(tok, "logical"))
            o->use_logical_cores = true;
        else if (!strcmp(tok, "ecores"))
            o->use_e_cores = true;
        else if (!strcmp(tok, "bind"))
            o->bind_numa_node = true;
        else if (!strcmp(tok, "scatter"))
            o->strategy = PF_STRATEGY_SCATTER;
        else if (!strcmp(tok, "latency"))
            o->latency_mode = true;
        else if (!strcmp(tok, "throughput"))
            o->throughput_mode = true;
        else if (!strcmp(tok, "multi"))
            o->multi_instance = true;
        else if (!strcmp(tok, "rank"))
            o->rank = (int)strtol(v, NULL, 10);
        else if (!strcmp(tok, "idx"))
            o->instance_idx = v;
        else if (!strcmp(tok, "lr"))
            o->local_rank = (int)strtol(v, NULL, 10);
        else if (!strcmp(tok, "lws"))
            o->local_world_size = (int)strtol(v, NULL, 10);
        else if (!strcmp(tok, "quota"))
            o->cpu_quota = strtod(v, NULL);
        else
            fail_msg("unknown test option '%s'", tok);
    }
}

/* The plan of `options` (compact form) on t, or fail the test with the reason. */
static inline pf_plan *plan_from_text(pf_topology *t, const char *options)
{
    pf_plan_options o;
    char buf[256];
    plan_options_parse(options, buf, sizeof buf, &o);
    pf_plan *plan = NULL;
    char *why = NULL;
    if (pf_plan_instances(t, &o, &plan, &why) < 0)
        fail_msg("plan [%s]: %s", options, why ? why : "");
    return plan;
}

/*
 * ---- the CPUs the tests run on ----
 *
 * Tests never name CPUs by number: they pick them from the CPUs this process
 * may use (cpu_at(0) is the first, cpu_at(1) the second, cpu_last() the
 * last) and compute what they expect from that choice, so that they hold on
 * a machine of any size and under `taskset`.  A test that needs more CPUs
 * than there are calls NEED_CPUS(n): it is skipped, which tests/run_unit.sh
 * counts and lists with the reason printed here.
 *
 * The set is read once, by main() calling cpu_count() before any test
 * narrows a thread.  A child started by run_child() (pf_runtime_test.h) is
 * told its set in PF_TEST_CPUS instead: an OpenMP binding variable may have
 * bound its initial thread to one CPU before main.
 */

#define CPUS_TEXT_MAX 4096 /* room for a CPU list such as "0-63" or "0,2,4,...,126" */

typedef struct cpu_ids {
    size_t n;
    int *ids; /* ascending */
} cpu_ids;

/* Add id to an ascending list (a test set-up failure if memory runs out). */
static inline void cpu_ids_add(cpu_ids *l, int id)
{
    int *grown = realloc(l->ids, (l->n + 1) * sizeof *grown);
    if (!grown)
        fail_msg("out of memory");
    size_t i = l->n;
    while (i > 0 && grown[i - 1] > id)
        i--;
    if (i > 0 && grown[i - 1] == id)
        return;
    memmove(grown + i + 1, grown + i, (l->n - i) * sizeof *grown);
    grown[i] = id;
    l->ids = grown;
    l->n++;
}

/* The calling thread's affinity, whatever the number of CPUs. */
static inline cpu_ids thread_affinity(void)
{
    cpu_ids l = {0, NULL};
    for (size_t bits = 1024;; bits *= 2) {
        cpu_set_t *set = CPU_ALLOC(bits);
        size_t size = CPU_ALLOC_SIZE(bits);
        if (!set)
            fail_msg("out of memory");
        CPU_ZERO_S(size, set);
        if (sched_getaffinity(0, size, set) == 0) {
            for (size_t c = 0; c < bits; c++)
                if (CPU_ISSET_S(c, size, set))
                    cpu_ids_add(&l, (int)c);
            CPU_FREE(set);
            return l;
        }
        CPU_FREE(set);
        if (errno != EINVAL || bits >= PF_ID_LIMIT)
            fail_msg("sched_getaffinity: %s", strerror(errno));
    }
}

/* Add the ids of a comma-separated list ("3,5,7"); false if it is not one. */
static inline bool cpu_ids_parse(const char *text, cpu_ids *l)
{
    for (const char *s = text; *s;) {
        char *end;
        long id = strtol(s, &end, 10);
        if (end == s || id < 0 || id >= PF_ID_LIMIT || (*end && *end != ','))
            return false;
        cpu_ids_add(l, (int)id);
        s = *end ? end + 1 : end;
    }
    return true;
}

/* The CPUs this process may use (see above). */
static inline const cpu_ids *test_cpus(void)
{
    static cpu_ids cpus;
    static bool done;
    if (!done) {
        done = true;
        const char *given = getenv("PF_TEST_CPUS");
        if (given && *given) {
            if (!cpu_ids_parse(given, &cpus))
                fail_msg("PF_TEST_CPUS=%s: not a list of CPU ids", given);
        } else {
            cpus = thread_affinity();
        }
        if (cpus.n == 0)
            fail_msg("this process may use no CPU");
    }
    return &cpus;
}

static inline size_t cpu_count(void)
{
    return test_cpus()->n;
}

/* The i-th CPU this process may use, in ascending order. */
static inline int cpu_at(size_t i)
{
    if (i >= cpu_count())
        fail_msg("CPU #%zu asked for, this process may use %zu (test bug: NEED_CPUS missing)", i,
                 cpu_count());
    return test_cpus()->ids[i];
}

static inline int cpu_last(void)
{
    return cpu_at(cpu_count() - 1);
}

static inline bool cpu_allowed(int id)
{
    for (size_t i = 0; i < cpu_count(); i++)
        if (test_cpus()->ids[i] == id)
            return true;
    return false;
}

/* An id this process may not use (beyond the last one it may), distinct for each k >= 0. */
static inline int cpu_outside(int k)
{
    return cpu_last() + 1 + k;
}

/* ids as the kernel writes a CPU list (ascending, ranges collapsed: "0-3,8"), in buf. */
static inline const char *cpus_text(const int *ids, size_t n, char *buf, size_t size)
{
    cpu_ids sorted = {0, NULL};
    for (size_t i = 0; i < n; i++)
        cpu_ids_add(&sorted, ids[i]);
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sorted.n && len < size; i++) {
        size_t j = i;
        while (j + 1 < sorted.n && sorted.ids[j + 1] == sorted.ids[j] + 1)
            j++;
        if (j == i)
            len += (size_t)snprintf(buf + len, size - len, "%s%d", len ? "," : "", sorted.ids[i]);
        else
            len += (size_t)snprintf(buf + len, size - len, "%s%d-%d", len ? "," : "", sorted.ids[i],
                                    sorted.ids[j]);
        i = j;
    }
    free(sorted.ids);
    if (len >= size)
        fail_msg("CPU list longer than %zu characters", size);
    return buf;
}

/* All the CPUs this process may use, as the kernel writes them ("0-1"), in buf. */
static inline const char *allowed_text(char *buf, size_t size)
{
    return cpus_text(test_cpus()->ids, test_cpus()->n, buf, size);
}

/* Skip the rest of the test, saying why: tests/run_unit.sh lists the reason with the test. */
#define SKIP_BECAUSE(...)               \
    do {                                \
        print_message("[  SKIP    ] "); \
        print_message(__VA_ARGS__);     \
        print_message("\n");            \
        skip();                         \
    } while (0)

/* Skip the rest of the test unless this process may use at least k CPUs. */
#define NEED_CPUS(k)                                                                    \
    do {                                                                                \
        if (cpu_count() < (size_t)(k)) {                                                \
            char cpus_[CPUS_TEXT_MAX];                                                  \
            SKIP_BECAUSE("needs %d CPUs, this process may use %zu (CPUs %s)", (int)(k), \
                         cpu_count(), allowed_text(cpus_, sizeof cpus_));               \
        }                                                                               \
    } while (0)

#endif /* PF_TEST_H */
