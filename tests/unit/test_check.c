/*
 * test_check.c - the findings of `pinfer check` (pf_check_judge) on a
 * two-socket SMT machine this one is not (hwloc synthetic "pack:2 numa:1
 * core:4 pu:2": CPUs 0-7 on socket and node 0, 8-15 on socket and node 1,
 * siblings found from the topology, not assumed): reports made by hand, one
 * situation each, and exactly the findings it calls for.
 */
#include "pf_test.h"

#define MAX_T 4

static pf_topology *topo;

static int setup(void **state)
{
    (void)state;
    topo = load_fixture("synthetic:pack:2 numa:1 core:4 pu:2");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pf_topology_free(topo);
    return 0;
}

/* The SMT sibling of a CPU (the other CPU of its core). */
static int sibling(int cpu)
{
    const pf_cpu_info *c = pf_topology_cpu(topo, cpu);
    size_t n;
    const pf_cpu_info *all = pf_topology_cpus(topo, &n);
    for (size_t i = 0; i < n; i++)
        if (all[i].cpu != cpu && all[i].core_first == c->core_first && all[i].socket == c->socket)
            return all[i].cpu;
    fail_msg("CPU %d has no sibling", cpu);
    return -1;
}

static int *ints(const int *v, size_t n)
{
    int *out = malloc(n * sizeof *out);
    memcpy(out, v, n * sizeof *out);
    return out;
}

/* A busy thread allowed on [lo, hi], seen on the CPUs given. */
static void thread(pf_check_process *p, int lo, int hi, const int *seen, size_t nseen)
{
    pf_check_thread *t = &p->threads[p->nthreads++];
    memset(t, 0, sizeof *t);
    t->tid = p->pid * 10 + (int)p->nthreads;
    snprintf(t->name, sizeof t->name, "w%zu", p->nthreads);
    t->ncpus_allowed = (size_t)(hi - lo + 1);
    t->cpus_allowed = malloc(t->ncpus_allowed * sizeof(int));
    for (int c = lo; c <= hi; c++)
        t->cpus_allowed[c - lo] = c;
    t->cpus_seen = ints(seen, nseen);
    t->ncpus_seen = nseen;
    t->cpu_pct = 95;
    t->run_wait_pct = 1;
    t->busy = true;
    p->busy_threads++;
}

/* A process with memory on nodes 0 and 1 (bytes) and the allowed union of its threads. */
static pf_check_process *process(pf_check_report *r, int pid, unsigned long long node0,
                                 unsigned long long node1)
{
    pf_check_process *p = &r->processes[r->nprocesses++];
    memset(p, 0, sizeof *p);
    p->pid = pid;
    p->command = strdup("worker");
    p->threads = calloc(MAX_T, sizeof *p->threads);
    p->memory_by_node = calloc(2, sizeof *p->memory_by_node);
    p->memory_by_node[0] = node0;
    p->memory_by_node[1] = node1;
    p->nnodes = 2;
    p->local_memory_pct = -1;
    return p;
}

static void finish(pf_check_process *p)
{
    int seen[16] = {0};
    for (size_t i = 0; i < p->nthreads; i++)
        for (size_t k = 0; k < p->threads[i].ncpus_allowed; k++)
            seen[p->threads[i].cpus_allowed[k]] = 1;
    p->cpus_allowed = malloc(16 * sizeof(int));
    for (int c = 0; c < 16; c++)
        if (seen[c])
            p->cpus_allowed[p->ncpus_allowed++] = c;
}

static pf_check_report *report(void)
{
    pf_check_report *r = calloc(1, sizeof *r);
    r->window_s = 2.0;
    r->processes = calloc(3, sizeof *r->processes);
    return r;
}

/* The codes found, sorted and joined ("FLOATING,SMT_SHARED"), in a static buffer. */
static const char *judge(pf_check_report *r)
{
    for (size_t i = 0; i < r->nprocesses; i++)
        finish(&r->processes[i]);
    assert_int_equal(pf_check_judge(topo, r), 0);
    static char out[256];
    out[0] = '\0';
    const char *codes[16];
    size_t n = 0;
    for (size_t i = 0; i < r->nfindings && n < 16; i++) {
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            dup |= strcmp(codes[k], r->findings[i].code) == 0;
        if (!dup)
            codes[n++] = r->findings[i].code;
        assert_non_null(r->findings[i].message);
        assert_non_null(r->findings[i].advice);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = i + 1; k < n; k++)
            if (strcmp(codes[k], codes[i]) < 0) {
                const char *x = codes[i];
                codes[i] = codes[k];
                codes[k] = x;
            }
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(out + used, sizeof out - used, "%s%s", i ? "," : "", codes[i]);
    return out;
}

static void test_two_processes_on_one_cpu(void **state)
{
    (void)state;
    pf_check_report *r = report();
    int cpu0[] = {0};
    thread(process(r, 1, 1 << 20, 0), 0, 0, cpu0, 1);
    pf_check_process *q = process(r, 2, 1 << 20, 0);
    thread(q, 0, 0, cpu0, 1);
    q->threads[0].run_wait_pct = 48;
    r->processes[0].threads[0].run_wait_pct = 49;
    assert_string_equal(judge(r), "OVERLAP,OVERSUBSCRIBED");
    pf_check_report_free(r);
}

static void test_floating(void **state)
{
    (void)state;
    pf_check_report *r = report();
    pf_check_process *p = process(r, 1, 1 << 20, 0);
    int a[] = {0, 2, 4}, b[] = {6, 2};
    thread(p, 0, 15, a, 3);
    thread(p, 0, 15, b, 2);
    p->threads[0].migrations = 9;
    /* Both sockets are allowed and seen? No: seen on node 0 only; floating all the same. */
    assert_string_equal(judge(r), "FLOATING");
    pf_check_report_free(r);
}

static void test_smt_shared(void **state)
{
    (void)state;
    pf_check_report *r = report();
    pf_check_process *p = process(r, 1, 1 << 20, 0);
    int a[] = {0}, b[] = {sibling(0)};
    /* Pinned each to one CPU, on the siblings of core 0, while socket 0 has idle cores. */
    thread(p, 0, 0, a, 1);
    thread(p, b[0], b[0], b, 1);
    p->threads[0].cpus_allowed = realloc(p->threads[0].cpus_allowed, 8 * sizeof(int));
    for (int c = 0; c < 8; c++)
        p->threads[0].cpus_allowed[c] = c;
    p->threads[0].ncpus_allowed = 8;
    assert_string_equal(judge(r), "FLOATING,SMT_SHARED");
    pf_check_report_free(r);
    /* The same two CPUs, when the allowed CPUs hold no other core: nothing to do better. */
    r = report();
    p = process(r, 1, 1 << 20, 0);
    thread(p, 0, 0, a, 1);
    thread(p, b[0], b[0], b, 1);
    assert_string_equal(judge(r), "");
    assert_non_null(strstr(r->ok[0], "OK: process 1: 2 busy threads"));
    pf_check_report_free(r);
}

static void test_cross_node_and_remote_memory(void **state)
{
    (void)state;
    pf_check_report *r = report();
    pf_check_process *p = process(r, 1, 600 << 20, 400 << 20);
    int a[] = {0}, b[] = {8};
    thread(p, 0, 0, a, 1);
    thread(p, 8, 8, b, 1);
    assert_string_equal(judge(r), "CROSS_NODE"); /* all of its memory is on its two nodes */
    assert_true(r->processes[0].local_memory_pct == 100.0);
    pf_check_report_free(r);
    r = report();
    p = process(r, 1, 800 << 20, 200 << 20);
    thread(p, 8, 8, b, 1);
    /* On node 1, whose 20% of its memory is under half: both findings. */
    assert_string_equal(judge(r), "CROSS_NODE,REMOTE_MEMORY");
    assert_true(r->processes[0].local_memory_pct == 20.0);
    pf_check_report_free(r);
}

static void test_over_quota(void **state)
{
    (void)state;
    pf_check_report *r = report();
    pf_check_process *p = process(r, 1, 1 << 20, 0);
    int a[] = {0}, b[] = {2};
    thread(p, 0, 0, a, 1);
    thread(p, 2, 2, b, 1);
    p->cpu_quota = 1.0;
    assert_string_equal(judge(r), "OVER_QUOTA");
    pf_check_report_free(r);
    /* OMP_NUM_THREADS over the quota, with one busy thread. */
    r = report();
    p = process(r, 1, 1 << 20, 0);
    thread(p, 0, 0, a, 1);
    p->cpu_quota = 2.0;
    p->env = calloc(2, sizeof *p->env);
    p->env[0] = strdup("OMP_NUM_THREADS=8");
    assert_string_equal(judge(r), "OVER_QUOTA");
    assert_non_null(strstr(r->findings[0].message, "OMP_NUM_THREADS=8"));
    pf_check_report_free(r);
}

static void test_ok(void **state)
{
    (void)state;
    pf_check_report *r = report();
    pf_check_process *p = process(r, 7, 1 << 20, 0);
    int a[] = {0}, b[] = {2};
    thread(p, 0, 0, a, 1);
    thread(p, 2, 2, b, 1);
    pf_check_process *idle = process(r, 8, 0, 0);
    (void)idle;
    assert_string_equal(judge(r), "");
    assert_string_equal(r->ok[0], "OK: process 7: 2 busy threads on CPUs 0,2 of node 0, each on "
                                  "one CPU, 0 migrations, 100% local memory");
    assert_string_equal(r->ok[1], "OK: process 8: no busy thread in the window");
    char *json = NULL;
    assert_int_equal(pf_check_report_to_json(r, &json), 0);
    assert_non_null(strstr(json, "\"local_memory_pct\": 100.0"));
    assert_non_null(strstr(json, "\"findings\": []"));
    free(json);
    pf_check_report_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_processes_on_one_cpu),
        cmocka_unit_test(test_floating),
        cmocka_unit_test(test_smt_shared),
        cmocka_unit_test(test_cross_node_and_remote_memory),
        cmocka_unit_test(test_over_quota),
        cmocka_unit_test(test_ok),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
