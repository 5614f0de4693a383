/*
 * test_plan.c - the planner, table-driven over topology fixtures.
 *
 * Each row: a fixture, options in a compact form, and the expected plan as
 * "cpus/nodes" per instance separated by ';' ("idx:cpus/nodes" when the
 * index is not the position), or "!text" for an error whose message holds
 * text.  Options in the compact form of plan_options_parse (pf_test.h).
 */
#include "pf_test.h"

#include <math.h>

typedef struct plan_case {
    const char *fixture;
    const char *options;
    const char *expect;
} plan_case;

#define W "worked16.lscpu"
#define A "xeon_2s28c_smt_adjacent.lscpu"
#define X "xeon_2s28c_smt_after.lscpu"
#define S "snc_4n14c.lscpu"
#define E "epyc_12nodes.lscpu"
#define H "hybrid_8p8e.lscpu-e"
#define T "this_2cpu.lscpu"

static const plan_case CASES[] = {
    /* docs/planning.md, the worked example, exactly */
    {W, "", "0-7/0-1"},
    {W, "ni=2", "0-3/0;4-7/1"},
    {W, "nc=3", "0-2/0;3-5/0-1"},
    {W, "nc=3 bind", "0-2/0;4-6/1"},
    {W, "logical ni=2", "0-3,8-11/0;4-7,12-15/1"},
    /* splits and remainders */
    {W, "ni=3", "0-1/0;2-3/0;4-5/1"},
    {W, "ni=3 nc=-1", "0-2/0;3-5/0-1;6-7/1"},
    {W, "nc=-1", "0-7/0-1"},
    {W, "ni=3 bind", "0-3/0;4-5/1;6-7/1"},
    {W, "ni=8", "0/0;1/0;2/0;3/0;4/1;5/1;6/1;7/1"},
    {W, "nc=4 ni=2", "0-3/0;4-7/1"},
    {W, "logical nc=3", "0-1,8/0;2,9-10/0;3-4,11/0-1;5,12-13/1;6-7,14/1"},
    {W, "logical nc=3 bind", "0-1,8/0;2,9-10/0;4-5,12/1;6,13-14/1"},
    /* strategies */
    {W, "nc=2 ni=2", "0-1/0;2-3/0"},
    {W, "nc=2 ni=2 scatter", "0-1/0;4-5/1"},
    {W, "nc=2 ni=3 scatter", "0-1/0;2-3/0;4-5/1"},
    {W, "nc=2 ni=3 scatter bind", "0-1/0;2-3/0;4-5/1"},
    {W, "nc=2 ni=2 scatter bind", "0-1/0;4-5/1"},
    {W, "nc=1 ni=3 scatter bind", "0/0;2/0;4/1"},
    {W, "nc=2 scatter", "0-1/0;2-3/0;4-5/1;6-7/1"},
    /* nodes and lists */
    {W, "node=1", "4-7/1"},
    {W, "node=1 logical", "4-7,12-15/1"},
    {W, "nodes=0,1 ni=2", "0-3/0;4-7/1"},
    {W, "node=-1 ni=2", "0-3/0;4-7/1"},
    {W, "cores=8-11,0", "0,8-11/0"},
    {W, "cores=8-11,0 ni=2", "0,8/0;9-10/0"},
    {W, "cores=4,0 node=1", "0,4/0-1"},
    /* presets */
    {W, "latency", "0-3/0;4-7/1"},
    {W, "latency logical", "0-3/0;4-7/1"},
    {W, "throughput", "0-3/0;4-7/1"},
    {W, "throughput ni=3", "0-3/0;4-7/1"},
    {W, "throughput logical", "0-3/0;4-7/1"},
    {W, "multi", "0-3/0;4-7/1"},
    {W, "multi ni=4", "0-1/0;2-3/0;4-5/1;6-7/1"},
    {W, "latency cores=0-3,8-11", "0-1,8-9/0;2-3,10-11/0"},
    /* selection and torchrun */
    {W, "ni=2 rank=1", "1:4-7/1"},
    {W, "ni=2 rank=-1", "0-3/0;4-7/1"},
    {W, "ni=4 idx=1,3", "1:2-3/0;3:6-7/1"},
    {W, "ni=4 idx=-1", "0-1/0;2-3/0;4-5/1;6-7/1"},
    {W, "ni=2 lws=2 lr=1", "0:2-3/0;1:6-7/1"},
    {W, "ni=2 lws=3 lr=0", "0/0;4/1"},
    {W, "ni=2 lws=1 lr=0", "0-3/0;4-7/1"},
    {W, "ni=2 rank=0 lws=2", "0:0-1/0"},
    {W, "logical ni=1 lws=2 lr=1", "4-7,12-15/1"},
    /* errors of step 7 and the others */
    {W, "nc=9", "!more than the 8 cores"},
    {W, "nc=5 bind", "!in any one NUMA node"},
    {W, "ni=9", "!more than the 8 cores"},
    {W, "ni=0", "!--ninstances must be positive"},
    {W, "ni=-2", "!--ninstances must be positive"},
    {W, "nc=-2", "!--ncores-per-instance must be"},
    {W, "nc=4 ni=3", "!2 instances fit"},
    {W, "node=2", "!NUMA node 2 does not exist"},
    {W, "node=0 nodes=1", "!cannot be used together"},
    {W, "nodes=0,7", "!NUMA node 7 does not exist"},
    {W, "nodes=1-0", "!runs backwards"},
    {W, "cores=16", "!CPU 16 does not exist"},
    {W, "cores=3-0", "!runs backwards"},
    {W, "cores=a", "!not an id"},
    {W, "cores=", "!empty"},
    {W, "latency throughput", "!cannot be used together"},
    {W, "latency multi", "!cannot be used together"},
    {W, "ni=2 rank=2", "!outside the plan"},
    {W, "ni=2 idx=0,5", "!outside the plan"},
    {W, "ni=2 rank=0 idx=1", "!cannot be used together"},
    {W, "ni=2 lws=2 lr=2", "!LOCAL_RANK 2"},
    {W, "ni=8 lws=2", "!too few to share"},
    {W, "ni=5 bind", "0-1/0;2-3/0;4/1;5/1;6/1"},
    /* siblings next to each other: physical cores are the even CPUs */
    {A, "nc=2 ni=2", "0,2/0;4,6/0"},
    {A, "latency rank=13", "13:104,106,108,110/1"},
    {A, "logical nc=4 ni=1", "0-3/0"},
    {A, "logical ni=2", "0-55/0;56-111/1"},
    {A, "node=1 nc=14 ni=1", "56,58,60,62,64,66,68,70,72,74,76,78,80,82/1"},
    /* siblings after all cores */
    {X, "throughput", "0-27/0;28-55/1"},
    {X, "logical ni=2", "0-27,56-83/0;28-55,84-111/1"},
    {X, "ni=3 nc=-1", "0-18/0;19-37/0-1;38-55/1"},
    {X, "ni=3 bind", "0-27/0;28-41/1;42-55/1"},
    {X, "ni=5 bind", "0-13/0;14-27/0;28-36/1;37-45/1;46-54/1"},
    {X, "ni=5 bind nc=-1", "0-13/0;14-27/0;28-37/1;38-46/1;47-55/1"},
    {X, "cores=56,0 ni=1", "0,56/0"},
    /* 4 NUMA nodes x 14 cores */
    {S, "throughput", "0-13/0;14-27/1;28-41/2;42-55/3"},
    {S, "ni=2 bind", "0-13/0;14-27/1"},
    {S, "ni=6 bind", "0-13/0;14-27/1;28-34/2;35-41/2;42-48/3;49-55/3"},
    {S, "nodes=1,2 ni=2", "14-27/1;28-41/2"},
    {S, "nodes=1-2 ni=2 bind", "14-27/1;28-41/2"},
    {S, "node=3", "42-55/3"},
    {S, "nc=10 bind", "0-9/0;14-23/1;28-37/2;42-51/3"},
    {S, "nc=10", "0-9/0;10-19/0-1;20-29/1-2;30-39/2;40-49/2-3"},
    {S, "nc=10 bind ni=3 scatter", "0-9/0;14-23/1;28-37/2"},
    {S, "nc=7 bind ni=3 scatter", "0-6/0;14-20/1;28-34/2"},
    {S, "nc=7 bind ni=6 scatter", "0-6/0;7-13/0;14-20/1;21-27/1;28-34/2;42-48/3"},
    {S, "nc=7 ni=6 scatter", "0-6/0;7-13/0;14-20/1;28-34/2;35-41/2;42-48/3"},
    {S, "cores=0-5,14-15 ni=3 bind", "0-2/0;3-5/0;14-15/1"},
    {S, "cores=0-5,14-15 ni=2 bind", "0-5/0;14-15/1"},
    {S, "cores=0-1,14-16,28-31,42 ni=2 bind", "14-16/1;28-31/2"},
    {S, "cores=0-1,14-16,28-31,42 ni=3 bind", "0-1/0;14-16/1;28-31/2"},
    /* 12 NUMA nodes */
    {E, "throughput rank=11", "11:88-95/11"},
    {E, "ni=5 bind", "0-7/0;8-15/1;16-23/2;24-31/3;32-39/4"},
    {E, "node=11", "88-95/11"},
    {E, "nodes=10-11 logical ni=2", "80-87,176-183/10;88-95,184-191/11"},
    {E, "nodes=10-11 logical bind", "80-87,176-183/10"},
    /* hybrid: E-cores are CPUs 16-23 */
    {H, "", "0,2,4,6,8,10,12,14/0"},
    {H, "ecores", "0,2,4,6,8,10,12,14,16-23/0"},
    {H, "ecores logical", "0-23/0"},
    {H, "ecores ni=2", "0,2,4,6,8,10,12,14/0;16-23/0"},
    {H, "cores=16-17", "16-17/0"},
    {H, "latency", "0,2,4,6/0;8,10,12,14/0"},
    /* this machine */
    {T, "", "0-1/0"},
    {T, "ni=2", "0/0;1/0"},
    {T, "nc=1", "0/0;1/0"},
    {T, "throughput", "0-1/0"},
    {T, "latency", "!--latency-mode needs 4 cores"},
    {T, "ni=3", "!more than the 2 cores"},
    /* node column empty, and large node ids */
    {"node_empty.lscpu", "ni=2", "0-1/0;2-3/1"},
    {"node_ids_large.lscpu", "throughput", "0-1/16;2-3/130"},
    {"node_ids_large.lscpu", "node=130", "2-3/130"},
    /* a CPU quota (v3): the first floor(Q) candidates in plan order, at least one */
    {W, "quota=2.5", "0-1/0"},
    {W, "quota=3", "0-2/0"},
    {W, "quota=0.4", "0/0"},
    {W, "quota=1", "0/0"},
    {W, "quota=8", "0-7/0-1"},
    {W, "quota=64", "0-7/0-1"},
    {W, "quota=7.99", "0-6/0-1"},
    {W, "quota=6 ni=2", "0-2/0;3-5/0-1"},
    {W, "quota=6 ni=2 bind", "0-3/0;4-5/1"},
    {W, "quota=6 throughput", "0-3/0;4-5/1"},
    {W, "quota=3 throughput", "0-2/0"},
    {W, "quota=5 logical", "0-2,8-9/0"},
    {W, "quota=3 node=1", "4-6/1"},
    {W, "quota=2 cores=8-11,0", "0,8/0"},
    {W, "quota=4 nc=2", "0-1/0;2-3/0"},
    {W, "quota=2 ni=4", "!(the CPU quota of 2.0 CPUs leaves 2 of the 8 cores)"},
    {W, "quota=2.5 nc=3", "!the CPU quota of 2.5 CPUs leaves 2 of the 8 cores"},
    {W, "quota=3 latency", "!--latency-mode needs 4 cores"},
    {W, "quota=3 latency", "!the CPU quota of 3.0 CPUs leaves 3 of the 8 cores"},
    {W, "quota=5 logical ni=6", "!the CPU quota of 5.0 CPUs leaves 5 of the 16 CPUs"},
    {W, "quota=2 ni=2 rank=2", "!the CPU quota of 2.0 CPUs leaves 2"},
    {W, "quota=8 ni=9", "!more than the 8 cores available"},
    {W, "quota=-1", "!the CPU quota must be a positive number"},
    {T, "quota=1.5", "0/0"},
    {T, "quota=0.1 ni=2", "!the CPU quota of 0.1 CPUs leaves 1 of the 2 cores"},
    {X, "quota=4 throughput", "0-3/0"},
    {X, "quota=30 throughput", "0-27/0;28-29/1"},
    /* synthetic hwloc topologies */
    {"synthetic:pack:2 numa:1 core:4 pu:2", "ni=2", "0,2,4,6/0;8,10,12,14/1"},
    {"synthetic:pack:2 numa:1 core:4 pu:2", "logical nc=2 ni=1", "0-1/0"},
};

/* The plan in the expected form, always with explicit indices. */
static char *describe(const pf_plan *plan)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    for (size_t i = 0; i < plan->ninstances; i++) {
        char *cpus, *nodes;
        assert_int_equal(
            pf_cpulist_format(plan->instances[i].cpus, plan->instances[i].ncpus, &cpus), 0);
        assert_int_equal(
            pf_cpulist_format(plan->instances[i].nodes, plan->instances[i].nnodes, &nodes), 0);
        assert_int_equal(plan->instances[i].threads, (int)plan->instances[i].ncpus);
        len += (size_t)snprintf(out + len, cap - len, "%s%d:%s/%s", i ? ";" : "",
                                plan->instances[i].index, cpus, nodes);
        free(cpus);
        free(nodes);
    }
    return out;
}

/* The expected form with indices made explicit: "a/b;c/d" -> "0:a/b;1:c/d". */
static char *normalise(const char *expect)
{
    size_t cap = strlen(expect) * 2 + 64, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    char *copy = strdup(expect);
    int pos = 0;
    out[0] = '\0';
    for (char *save = NULL, *tok = strtok_r(copy, ";", &save); tok;
         tok = strtok_r(NULL, ";", &save), pos++) {
        if (strchr(tok, ':'))
            len += (size_t)snprintf(out + len, cap - len, "%s%s", pos ? ";" : "", tok);
        else
            len += (size_t)snprintf(out + len, cap - len, "%s%d:%s", pos ? ";" : "", pos, tok);
    }
    free(copy);
    return out;
}

static void test_plan_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        const plan_case *c = &CASES[i];
        pf_topology *t = load_fixture(c->fixture);
        pf_plan_options o;
        char buf[256];
        plan_options_parse(c->options, buf, sizeof buf, &o);
        pf_plan *plan = NULL;
        char *why = NULL;
        int rc = pf_plan_instances(t, &o, &plan, &why);
        if (c->expect[0] == '!') {
            if (rc != -EINVAL || !why || !strstr(why, c->expect + 1)) {
                print_error("%s [%s]: expected error '%s', got rc %d '%s'\n", c->fixture,
                            c->options, c->expect + 1, rc, why ? why : "(none)");
                failures++;
            }
            assert_null(plan);
        } else if (rc != 0) {
            print_error("%s [%s]: expected %s, got error %d: %s\n", c->fixture, c->options,
                        c->expect, rc, why ? why : "");
            failures++;
        } else {
            char *got = describe(plan), *want = normalise(c->expect);
            if (strcmp(got, want) != 0) {
                print_error("%s [%s]:\n  expected %s\n  got      %s\n", c->fixture, c->options,
                            want, got);
                failures++;
            }
            free(got);
            free(want);
        }
        free(why);
        pf_plan_free(plan);
        pf_topology_free(t);
    }
    assert_int_equal(failures, 0);
}

static bool has_warning(const pf_plan *plan, const char *text)
{
    for (size_t i = 0; i < plan->nwarnings; i++)
        if (strstr(plan->warnings[i], text))
            return true;
    return false;
}

static void test_warnings(void **state)
{
    (void)state;
    pf_topology *t = load_fixture(W);
    pf_plan *p = plan_from_text(t, "nc=3");
    assert_true(has_warning(p, "instance 1 spans NUMA nodes 0-1"));
    assert_false(has_warning(p, "instance 0 spans"));
    pf_plan_free(p);
    p = plan_from_text(t, "nc=3 bind");
    assert_int_equal(p->nwarnings, 0);
    pf_plan_free(p);
    p = plan_from_text(t, "throughput ni=2");
    assert_true(has_warning(p, "overrides --ninstances"));
    pf_plan_free(p);
    p = plan_from_text(t, "latency logical");
    assert_true(has_warning(p, "--use-logical-cores is ignored"));
    pf_plan_free(p);
    p = plan_from_text(t, "cores=0 node=1");
    assert_true(has_warning(p, "--core-list is given"));
    pf_plan_free(p);
    pf_topology_free(t);
}

/* The quota is warned about once when it cuts the candidates, and the plan records it. */
static void test_quota(void **state)
{
    (void)state;
    pf_topology *t = load_fixture(W);
    assert_true(pf_topology_cpu_quota(t) == 0); /* a file: no quota of its own */
    pf_plan *p = plan_from_text(t, "quota=4");
    assert_int_equal(p->nwarnings, 1);
    assert_string_equal(p->warnings[0], "CPU quota of 4.0 CPUs: planning on 4 of 8 cores");
    assert_true(p->cpu_quota == 4);
    pf_plan_free(p);
    p = plan_from_text(t, "quota=0.5 logical");
    assert_string_equal(p->warnings[0], "CPU quota of 0.5 CPUs: planning on 1 of 16 CPUs");
    pf_plan_free(p);
    p = plan_from_text(t, "quota=2 cores=0-3");
    assert_string_equal(p->warnings[0], "CPU quota of 2.0 CPUs: planning on 2 of 4 CPUs");
    pf_plan_free(p);
    /* Larger than the candidates: no effect and no warning, but recorded. */
    p = plan_from_text(t, "quota=12.5 ni=2 bind");
    assert_int_equal(p->nwarnings, 0);
    assert_true(p->cpu_quota == 12.5);
    pf_plan_free(p);
    /* One candidate under a quota below one CPU: nothing is cut, nothing said. */
    p = plan_from_text(t, "quota=0.25 cores=3");
    assert_int_equal(p->nwarnings, 0);
    pf_plan_free(p);
    p = plan_from_text(t, "");
    assert_true(p->cpu_quota == 0);
    pf_plan_free(p);
    /* Not a number of CPUs. */
    pf_plan_options o;
    pf_plan_options_init(&o);
    assert_true(o.cpu_quota == 0);
    pf_plan *plan = NULL;
    const double bad[] = {-0.5, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.cpu_quota = bad[i];
        assert_int_equal(pf_plan_instances(t, &o, &plan, NULL), -EINVAL);
        assert_null(plan);
    }
    pf_topology_free(t);
}

/*
 * The whole message of each "does not fit" error: counts that agree with
 * their number ("1 instance fits"), cores when the SMT siblings were left
 * out (so that "needs 112" is not read against a 112-CPU machine), CPUs when
 * they count, and the hint when --use-logical-cores would make it fit.
 */
typedef struct message_case {
    const char *fixture, *options, *message;
} message_case;

#define FITS "; --use-logical-cores would make it fit (it adds the cores' SMT siblings)"

static const message_case MESSAGES[] = {
    {X, "ni=8 nc=14",
     "--ninstances 8 with --ncores-per-instance 14 needs 112 cores; 4 instances fit" FITS},
    {X, "ni=2 nc=28 node=0",
     "--ninstances 2 with --ncores-per-instance 28 needs 56 cores; 1 instance fits" FITS},
    {X, "ni=9 nc=14",
     "--ninstances 9 with --ncores-per-instance 14 needs 126 cores; 4 instances fit"},
    {X, "logical ni=9 nc=14",
     "--ninstances 9 with --ncores-per-instance 14 needs 126 CPUs; 8 instances fit"},
    {X, "ni=57", "--ninstances 57 is more than the 56 cores available" FITS},
    {X, "ni=113", "--ninstances 113 is more than the 56 cores available"},
    {X, "logical ni=113", "--ninstances 113 is more than the 112 CPUs available"},
    {X, "nc=29 bind",
     "--ncores-per-instance 29 is more than the 28 cores in any one NUMA node" FITS},
    {X, "nc=57", "--ncores-per-instance 57 is more than the 56 cores available" FITS},
    {X, "nc=2 rank=30", "--rank 30 is outside the plan, which has 28 instances" FITS},
    {X, "throughput rank=2", "--rank 2 is outside the plan, which has 2 instances"},
    {T, "ni=2 nc=2", "--ninstances 2 with --ncores-per-instance 2 needs 4 cores; 1 instance fits"},
    {T, "ni=3", "--ninstances 3 is more than the 2 cores available"},
    {T, "cores=0 ni=2", "--ninstances 2 is more than the 1 CPU available"},
    {T, "cores=0 nc=2", "--ncores-per-instance 2 is more than the 1 CPU available"},
    {T, "latency", "--latency-mode needs 4 cores per instance; only 2 cores are available"},
    {T, "latency cores=0", "--latency-mode needs 4 CPUs per instance; only 1 CPU is available"},
    {T, "ni=1 rank=1", "--rank 1 is outside the plan, which has 1 instance"},
    {W, "ni=2 nc=1 lws=2",
     "instance 0 has 1 core, too few to share among LOCAL_WORLD_SIZE 2 processes"},
    {W, "logical ni=16 lws=2",
     "instance 0 has 1 CPU, too few to share among LOCAL_WORLD_SIZE 2 processes"},
    {W, "latency bind node=0 cores=0-2",
     "--latency-mode needs 4 CPUs per instance; only 3 CPUs are in any one NUMA node"},
    {"node_empty.lscpu", "cores=0 ni=2 bind", "--ninstances 2 is more than the 1 CPU available"},
};

static void test_messages(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof MESSAGES / sizeof *MESSAGES; i++) {
        const message_case *c = &MESSAGES[i];
        pf_topology *t = load_fixture(c->fixture);
        pf_plan_options o;
        char buf[256];
        plan_options_parse(c->options, buf, sizeof buf, &o);
        pf_plan *plan = NULL;
        char *why = NULL;
        int rc = pf_plan_instances(t, &o, &plan, &why);
        if (rc != -EINVAL || !why || strcmp(why, c->message) != 0) {
            print_error("%s [%s]:\n  expected %s\n  got      %s (%d)\n", c->fixture, c->options,
                        c->message, why ? why : "(none)", rc);
            failures++;
        }
        assert_null(plan);
        free(why);
        pf_topology_free(t);
    }
    assert_int_equal(failures, 0);
}

/* A CPU the process may not use is never planned on. */
static void test_core_list_needs_usable_cpus(void **state)
{
    (void)state;
    pf_topology *t = load_fixture(T);
    pf_plan_options o;
    pf_plan_options_init(&o);
    o.core_list = "0-1";
    pf_plan *plan = NULL;
    assert_int_equal(pf_plan_instances(t, &o, &plan, NULL), 0);
    assert_int_equal(plan->ninstances, 1);
    pf_plan_free(plan);
    assert_int_equal(pf_plan_instances(NULL, &o, &plan, NULL), -EINVAL);
    assert_int_equal(pf_plan_instances(t, NULL, &plan, NULL), -EINVAL);
    pf_topology_free(t);
}

/* 8 sockets x 64 cores x 2 threads: 1024 CPUs, planned in every mode. */
static void test_large_synthetic(void **state)
{
    (void)state;
    pf_topology *t = load_fixture("synthetic:pack:8 numa:2 core:32 pu:2");
    size_t n;
    pf_topology_cpus(t, &n);
    assert_int_equal(n, 1024);
    pf_plan *p = plan_from_text(t, "throughput");
    assert_int_equal(p->ninstances, 16);
    assert_int_equal(p->instances[15].ncpus, 32);
    pf_plan_free(p);
    p = plan_from_text(t, "logical ni=1024");
    assert_int_equal(p->ninstances, 1024);
    pf_plan_free(p);
    p = plan_from_text(t, "latency");
    assert_int_equal(p->ninstances, 128);
    pf_plan_free(p);
    pf_topology_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_table),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_core_list_needs_usable_cpus),
        cmocka_unit_test(test_large_synthetic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
