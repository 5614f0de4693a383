/*
 * plan.c - the planner: topology + options -> instances (docs/planning.md).
 *
 * Pure: it reads the topology and the options and nothing else.  The steps
 * follow the spec's numbering:
 *   1. candidates   which CPUs may be used at all, within the CPU quota
 *   2. order        node, then core (by its first CPU), then its siblings
 *   3-4. presets and unset values resolved into NI / NC / bind
 *   5. NC given     cut groups into slices of NC, keep NI of them
 *   6. only NI      split the group (or share NI among the nodes)
 *   7. errors       anything that would launch an empty instance
 *   8. selection    --rank / --instance-idx, then torchrun's local split
 *   9. warnings     instances that span NUMA nodes
 * The ordered candidates are one array; every instance is a run of it
 * (a part), so the steps only compute (start, length) pairs.
 */
#include "topology/topology.h"
#include "base/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct part {
    size_t start, len;
} part;

typedef struct planner {
    const pf_topology *topo;
    const pf_plan_options *opts;
    char **why;
    const pf_cpu_info **cand; /* ordered candidates */
    size_t ncand;
    /* groups: runs of cand; one per node with bind, else one */
    part *groups;
    size_t ngroups;
    part *parts; /* the plan's instances as runs of cand */
    size_t nparts;
    char **warnings;
    size_t nwarnings, warnings_cap;
    int ni, nc;
    bool bind, remainder, throughput;
    double quota;       /* the CPU quota planned within (CPUs); 0: none */
    size_t quota_from;  /* candidates before the quota cut them; 0: it did not */
    const char *things; /* what the candidates are: "cores" or "CPUs" */
} planner;

static int warn(planner *p, const char *fmt, ...) PF__PRINTF(2, 3);
static int warn(planner *p, const char *fmt, ...)
{
    /* Doubling: a plan of 50,000 instances can warn about each. */
    if (p->nwarnings == p->warnings_cap) {
        size_t cap = p->warnings_cap ? p->warnings_cap * 2 : 8;
        char **grown = realloc(p->warnings, cap * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        p->warnings = grown;
        p->warnings_cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *line = pf__vstrdupf(fmt, ap);
    va_end(ap);
    if (!line)
        return -ENOMEM;
    p->warnings[p->nwarnings++] = line;
    return 0;
}

static int oom(planner *p)
{
    return pf__fail(p->why, -ENOMEM, "out of memory");
}

/*
 * What the messages count, agreeing with n: physical cores when the SMT
 * siblings were left out (no --use-logical-cores, or a preset) and no
 * explicit --core-list named the CPUs, else CPUs (hardware threads).
 * "needs 112 CPUs" would read as more than a 112-CPU machine has when what
 * ran out was its 56 cores.
 */
static const char *unit(const planner *p, size_t n)
{
    const pf_plan_options *o = p->opts;
    bool cores = !o->core_list && (!o->use_logical_cores || o->latency_mode || p->throughput);
    if (cores)
        return n == 1 ? "core" : "cores";
    return n == 1 ? "CPU" : "CPUs";
}

void pf_plan_options_init(pf_plan_options *o)
{
    memset(o, 0, sizeof *o);
    o->ninstances = -1;
    o->ncores_per_instance = 0;
    o->node_id = -1;
    o->socket_id = -1;
    o->strategy = PF_STRATEGY_CLOSE;
    o->rank = -1;
    o->local_rank = -1;
    o->local_world_size = -1;
}

static bool given_list(const char *list)
{
    return list && strcmp(list, "-1") != 0;
}

/* Step 2's order: node, the core's first CPU in the topology, then the CPU. */
static int by_plan_order(const void *a, const void *b)
{
    const pf_cpu_info *x = *(const pf_cpu_info *const *)a;
    const pf_cpu_info *y = *(const pf_cpu_info *const *)b;
    if (x->node != y->node)
        return (x->node > y->node) - (x->node < y->node);
    if (x->core_first != y->core_first)
        return (x->core_first > y->core_first) - (x->core_first < y->core_first);
    return (x->cpu > y->cpu) - (x->cpu < y->cpu);
}

static int check_options(planner *p)
{
    const pf_plan_options *o = p->opts;
    if (o->ninstances == 0 || o->ninstances < -1)
        return pf__fail(p->why, -EINVAL, "--ninstances must be positive (or -1 for unset), not %d",
                        o->ninstances);
    if (o->ncores_per_instance < -1)
        return pf__fail(p->why, -EINVAL,
                        "--ncores-per-instance must be positive, 0 (unset) or -1 (split evenly), "
                        "not %d",
                        o->ncores_per_instance);
    if (o->node_id < -1)
        return pf__fail(p->why, -EINVAL, "--node-id must be a node id (or -1 for unset), not %d",
                        o->node_id);
    if (o->node_id != -1 && o->nodes_list)
        return pf__fail(p->why, -EINVAL, "--node-id and --nodes-list cannot be used together");
    if (o->socket_id < -1)
        return pf__fail(p->why, -EINVAL,
                        "--socket-id must be a socket id (or -1 for unset), not %d", o->socket_id);
    if (o->socket_id != -1 && (o->node_id != -1 || o->nodes_list))
        return pf__fail(p->why, -EINVAL,
                        "--socket-id and --node-id/--nodes-list cannot be used together");
    if (o->rank < -1)
        return pf__fail(p->why, -EINVAL, "--rank must be an instance index (or -1), not %d",
                        o->rank);
    if (o->rank != -1 && given_list(o->instance_idx))
        return pf__fail(p->why, -EINVAL, "--rank and --instance-idx cannot be used together");
    if (o->strategy != PF_STRATEGY_CLOSE && o->strategy != PF_STRATEGY_SCATTER)
        return pf__fail(p->why, -EINVAL, "unknown strategy");
    if (o->local_world_size > 1 && (o->local_rank < -1 || o->local_rank >= o->local_world_size))
        return pf__fail(p->why, -EINVAL, "LOCAL_RANK %d is not below LOCAL_WORLD_SIZE %d",
                        o->local_rank, o->local_world_size);
    if (!(o->cpu_quota >= 0) || !isfinite(o->cpu_quota))
        return pf__fail(p->why, -EINVAL,
                        "the CPU quota must be a positive number of CPUs (or 0 for the "
                        "topology's), not %g",
                        o->cpu_quota);
    return 0;
}

/*
 * The physical core's representative among the usable CPUs is its lowest
 * usable CPU (so that a process confined to a core's second thread still
 * gets that core); every other usable CPU of the core is an SMT sibling.
 */
static bool *usable_siblings(const pf_topology *t)
{
    bool *sibling = calloc(t->ncpus ? t->ncpus : 1, sizeof *sibling);
    bool *core_seen = calloc(t->ncpus ? t->ncpus : 1, sizeof *core_seen);
    if (!sibling || !core_seen) {
        free(sibling);
        free(core_seen);
        return NULL;
    }
    for (size_t i = 0; i < t->ncpus; i++) {
        if (!t->cpus[i].allowed)
            continue;
        size_t first = (size_t)(pf_topology_cpu(t, t->cpus[i].core_first) - t->cpus);
        sibling[i] = core_seen[first];
        core_seen[first] = true;
    }
    free(core_seen);
    return sibling;
}

static int collect_core_list(planner *p)
{
    int *ids;
    size_t n;
    char *msg = NULL;
    int rc = pf_cpulist_parse(p->opts->core_list, &ids, &n, &msg);
    if (rc < 0) {
        rc = pf__fail(p->why, rc, "--core-list '%s': %s", p->opts->core_list,
                      msg ? msg : pf_strerror(rc));
        free(msg);
        return rc;
    }
    p->cand = malloc(n * sizeof *p->cand);
    if (!p->cand) {
        free(ids);
        return oom(p);
    }
    for (size_t i = 0; i < n; i++) {
        const pf_cpu_info *c = pf_topology_cpu(p->topo, ids[i]);
        if (!c || !c->allowed) {
            rc = pf__fail(p->why, -EINVAL, "--core-list: CPU %d %s", ids[i],
                          c ? "is not usable by this process (affinity or cgroup)"
                            : "does not exist on this topology");
            break;
        }
        p->cand[p->ncand++] = c;
    }
    free(ids);
    return rc;
}

static int collect_nodes(planner *p, int **nodes, size_t *nnodes)
{
    const pf_plan_options *o = p->opts;
    *nodes = NULL;
    *nnodes = 0;
    if (o->node_id == -1 && !o->nodes_list)
        return 0;
    if (o->node_id != -1) {
        *nodes = malloc(sizeof **nodes);
        if (!*nodes)
            return oom(p);
        (*nodes)[0] = o->node_id;
        *nnodes = 1;
    } else {
        char *msg = NULL;
        int rc = pf_cpulist_parse(o->nodes_list, nodes, nnodes, &msg);
        if (rc < 0) {
            rc = pf__fail(p->why, rc, "--nodes-list '%s': %s", o->nodes_list,
                          msg ? msg : pf_strerror(rc));
            free(msg);
            return rc;
        }
    }
    for (size_t i = 0; i < *nnodes; i++) {
        if (!pf__sorted_has(p->topo->nodes, p->topo->nnodes, (*nodes)[i])) {
            char *known = NULL;
            pf_cpulist_format(p->topo->nodes, p->topo->nnodes, &known);
            int rc = pf__fail(p->why, -EINVAL, "NUMA node %d does not exist (nodes: %s)",
                              (*nodes)[i], known ? known : "?");
            free(known);
            free(*nodes);
            *nodes = NULL;
            return rc;
        }
    }
    return 0;
}

/* --socket-id named a socket without a candidate: which of two reasons. */
static int socket_missing(planner *p, int socket)
{
    const pf_topology *t = p->topo;
    pf__ivec ids = {0};
    bool exists = false;
    for (size_t i = 0; i < t->ncpus; i++) {
        exists = exists || t->cpus[i].socket == socket;
        if (pf__ivec_push(&ids, t->cpus[i].socket) < 0) {
            pf__ivec_free(&ids);
            return oom(p);
        }
    }
    int rc;
    if (exists) {
        rc = pf__fail(p->why, -EINVAL, "socket %d has no CPU this process may use", socket);
    } else {
        pf__ivec_sort_unique(&ids);
        char *known = NULL;
        pf_cpulist_format(ids.v, ids.len, &known);
        rc = pf__fail(p->why, -EINVAL, "socket %d does not exist (sockets: %s)", socket,
                      known ? known : "?");
        free(known);
    }
    pf__ivec_free(&ids);
    return rc;
}

/*
 * Every node of --node-id / --nodes-list (nodes[], sorted, no duplicates)
 * has a candidate: one pass over the candidates, not one per node.
 */
static int check_nodes_used(planner *p, const int *nodes, size_t nnodes)
{
    bool *used = calloc(nnodes ? nnodes : 1, sizeof *used);
    if (!used)
        return oom(p);
    for (size_t i = 0; i < p->ncand; i++) {
        const int *hit = bsearch(&p->cand[i]->node, nodes, nnodes, sizeof *nodes, pf__int_cmp);
        if (hit)
            used[hit - nodes] = true;
    }
    int rc = 0;
    for (size_t k = 0; k < nnodes && rc == 0; k++)
        if (!used[k])
            rc =
                pf__fail(p->why, -EINVAL, "NUMA node %d has no CPU this process may use", nodes[k]);
    free(used);
    return rc;
}

/* Step 1: the candidate CPUs, then step 2: their order. */
static int collect_candidates(planner *p, bool drop_siblings)
{
    const pf_topology *t = p->topo;
    const pf_plan_options *o = p->opts;
    int rc;
    if (o->core_list) {
        if (o->node_id != -1 || o->nodes_list || o->socket_id != -1)
            if ((rc = warn(p, "--core-list is given: --%s is ignored",
                           o->socket_id != -1 ? "socket-id" : "node-id/--nodes-list")) < 0)
                return oom(p);
        rc = collect_core_list(p);
    } else {
        int *nodes;
        size_t nnodes;
        if ((rc = collect_nodes(p, &nodes, &nnodes)) < 0)
            return rc;
        bool *sibling = usable_siblings(t);
        p->cand = malloc((t->ncpus ? t->ncpus : 1) * sizeof *p->cand);
        if (!sibling || !p->cand) {
            free(nodes);
            free(sibling);
            return oom(p);
        }
        for (size_t i = 0; i < t->ncpus; i++) {
            const pf_cpu_info *c = &t->cpus[i];
            if (!c->allowed || (nodes && !pf__sorted_has(nodes, nnodes, c->node)))
                continue;
            if (o->socket_id != -1 && c->socket != o->socket_id)
                continue;
            if ((drop_siblings && sibling[i]) || (c->efficiency && !o->use_e_cores))
                continue;
            p->cand[p->ncand++] = c;
        }
        free(sibling);
        /* A node asked for by name must give at least one CPU. */
        rc = nodes ? check_nodes_used(p, nodes, nnodes) : 0;
        free(nodes);
        if (rc == 0 && o->socket_id != -1 && p->ncand == 0)
            rc = socket_missing(p, o->socket_id);
        if (rc == 0 && p->ncand == 0)
            rc = pf__fail(p->why, -EINVAL, "no CPU is left to plan on");
    }
    if (rc < 0)
        return rc;
    qsort(p->cand, p->ncand, sizeof *p->cand, by_plan_order);
    return 0;
}

/*
 * Step 1, the CPU quota (v3): a cgroup quota of Q CPUs smaller than the
 * candidates leaves only the first floor(Q) of them, at least one, in plan
 * order (node by node, a core's siblings after it): more threads than the
 * quota would be throttled every period, all of them at once.  Explicit
 * --core-list CPUs are cut too: the quota throttles them alike.
 */
static int apply_cpu_quota(planner *p, bool whole_cores)
{
    double q = p->opts->cpu_quota > 0 ? p->opts->cpu_quota : pf_topology_cpu_quota(p->topo);
    p->quota = q > 0 ? q : 0;
    p->things = whole_cores && !p->opts->core_list ? "cores" : "CPUs";
    if (q <= 0 || q >= (double)p->ncand)
        return 0;
    size_t keep = q < 1 ? 1 : (size_t)q;
    if (keep >= p->ncand)
        return 0;
    char text[PF__DOUBLE_TEXT];
    pf__format_double(q, text);
    if (warn(p, "CPU quota of %s CPUs: planning on %zu of %zu %s", text, keep, p->ncand,
             p->things) < 0)
        return oom(p);
    p->quota_from = p->ncand;
    p->ncand = keep;
    return 0;
}

/* An error once the quota cut the candidates says so: it may be the cause. */
static void blame_quota(planner *p)
{
    if (!p->quota_from || !p->why || !*p->why)
        return;
    char text[PF__DOUBLE_TEXT];
    pf__format_double(p->quota, text);
    char *longer = pf__strdupf("%s (the CPU quota of %s CPUs leaves %zu of the %zu %s)", *p->why,
                               text, p->ncand, p->quota_from, p->things);
    if (longer) {
        free(*p->why);
        *p->why = longer;
    }
}

static int make_groups(planner *p)
{
    p->groups = malloc(p->ncand * sizeof *p->groups);
    if (!p->groups)
        return oom(p);
    for (size_t i = 0; i < p->ncand; i++) {
        if (i == 0 || (p->bind && p->cand[i]->node != p->cand[i - 1]->node))
            p->groups[p->ngroups++] = (part){i, 0};
        p->groups[p->ngroups - 1].len++;
    }
    return 0;
}

/* parts is sized for the worst case, one per candidate, before use. */
static void add_part(planner *p, size_t start, size_t len)
{
    p->parts[p->nparts++] = (part){start, len};
}

/* sum over groups of min(slices[g], rounds) */
static size_t dealt_in(const size_t *slices, size_t n, size_t rounds)
{
    size_t sum = 0;
    for (size_t g = 0; g < n; g++)
        sum += slices[g] < rounds ? slices[g] : rounds;
    return sum;
}

/*
 * Deal `keep` instances (at most the sum of slices[]) to the groups round
 * robin: one to each group that has a slice left, in order, until none is
 * left to deal.  Computed, not played: R full rounds (the most with at most
 * `keep` dealt) give each group min(slices, R), and what is left goes one
 * each to the first groups with more than R slices.  (Played, it took one
 * pass over every group per round: quadratic with thousands of nodes.)
 */
static void deal_round_robin(const size_t *slices, size_t n, size_t keep, size_t *share)
{
    size_t lo = 0, hi = 0;
    for (size_t g = 0; g < n; g++)
        if (slices[g] > hi)
            hi = slices[g];
    while (lo < hi) { /* the largest R with dealt_in(R) <= keep */
        size_t mid = lo + (hi - lo + 1) / 2;
        if (dealt_in(slices, n, mid) <= keep)
            lo = mid;
        else
            hi = mid - 1;
    }
    size_t left = keep - dealt_in(slices, n, lo);
    for (size_t g = 0; g < n; g++) {
        share[g] = slices[g] < lo ? slices[g] : lo;
        if (left > 0 && slices[g] > lo) {
            share[g]++;
            left--;
        }
    }
}

/* Step 5: slices of NC CPUs. */
static int plan_slices(planner *p)
{
    size_t nc = (size_t)p->nc, total = 0;
    size_t *slices = calloc(p->ngroups, sizeof *slices);
    if (!slices)
        return oom(p);
    for (size_t g = 0; g < p->ngroups; g++)
        total += slices[g] = p->groups[g].len / nc;
    int rc = 0;
    if (total == 0) {
        size_t largest = 0;
        for (size_t g = 0; g < p->ngroups; g++)
            if (p->groups[g].len > largest)
                largest = p->groups[g].len;
        rc = p->opts->latency_mode
                 ? pf__fail(p->why, -EINVAL,
                            "--latency-mode needs 4 %s per instance; only %zu %s %s %s", unit(p, 4),
                            largest, unit(p, largest), largest == 1 ? "is" : "are",
                            p->bind ? "in any one NUMA node" : "available")
                 : pf__fail(p->why, -EINVAL, "--ncores-per-instance %d is more than the %zu %s %s",
                            p->nc, largest, unit(p, largest),
                            p->bind ? "in any one NUMA node" : "available");
    } else if (p->ni > 0 && (size_t)p->ni > total) {
        rc = pf__fail(p->why, -EINVAL,
                      "--ninstances %d with --ncores-per-instance %d needs %zu %s; %zu %s", p->ni,
                      p->nc, (size_t)p->ni * nc, unit(p, (size_t)p->ni * nc), total,
                      total == 1 ? "instance fits" : "instances fit");
    }
    if (rc < 0) {
        free(slices);
        return rc;
    }
    size_t keep = p->ni > 0 ? (size_t)p->ni : total;
    if (p->opts->strategy == PF_STRATEGY_CLOSE || keep == total) {
        for (size_t g = 0; g < p->ngroups && p->nparts < keep; g++)
            for (size_t s = 0; s < slices[g] && p->nparts < keep; s++)
                add_part(p, p->groups[g].start + s * nc, nc);
    } else {
        /* scatter: deal the instances to groups round-robin, then spread each
           group's share evenly over its slices: floor(k * S / n). */
        size_t *share = calloc(p->ngroups, sizeof *share);
        if (!share) {
            free(slices);
            return oom(p);
        }
        deal_round_robin(slices, p->ngroups, keep, share);
        for (size_t g = 0; g < p->ngroups; g++)
            for (size_t k = 0; k < share[g]; k++)
                add_part(p, p->groups[g].start + (k * slices[g] / share[g]) * nc, nc);
        free(share);
    }
    free(slices);
    return 0;
}

/* Split a run of n CPUs at start into k parts (step 6). */
static int split_run(planner *p, size_t start, size_t n, size_t k)
{
    size_t size = n / k, extra = p->remainder ? n % k : 0;
    if (size == 0)
        return pf__fail(p->why, -EINVAL, "%zu %s cannot share %zu %s%s: an instance would be empty",
                        k, k == 1 ? "instance" : "instances", n, unit(p, n),
                        p->bind ? " of one NUMA node" : "");
    for (size_t i = 0; i < k; i++) {
        size_t len = size + (i < extra);
        add_part(p, start, len);
        start += len;
    }
    return 0;
}

/*
 * Step 6 with bind: share NI among the nodes in proportion to their CPUs,
 * rounding up (and at least one each); then, while that is too many, take
 * one back from the node whose instances would be smallest (least
 * len_i / n_i) among those with more than one; finally drop whole nodes,
 * the smallest first and the last of equals first.
 */
typedef struct node_share {
    const part *groups;
    size_t *n;
} node_share;

/* Group g's instances would be smaller than h's (len_g / n_g < len_h / n_h), or equal and g first.
 */
static bool smaller_share(const node_share *s, size_t g, size_t h)
{
    size_t a = s->groups[g].len * s->n[h], b = s->groups[h].len * s->n[g];
    return a < b || (a == b && g < h);
}

static void sift_down(const node_share *s, size_t *heap, size_t len, size_t i)
{
    for (;;) {
        size_t least = i, l = 2 * i + 1, r = l + 1;
        if (l < len && smaller_share(s, heap[l], heap[least]))
            least = l;
        if (r < len && smaller_share(s, heap[r], heap[least]))
            least = r;
        if (least == i)
            return;
        size_t t = heap[i];
        heap[i] = heap[least];
        heap[least] = t;
        i = least;
    }
}

/* Nodes to drop: the smallest first, the last of equals first. */
static int by_drop_order(const void *a, const void *b)
{
    const part *x = a, *y = b; /* (group, len) */
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return (x->start < y->start) - (x->start > y->start);
}

static int share_among_nodes(planner *p, size_t *n)
{
    size_t ni = (size_t)p->ni, len = p->ncand, sum = 0, G = p->ngroups;
    for (size_t g = 0; g < G; g++) {
        size_t len_g = p->groups[g].len;
        n[g] = ni * len_g / len;
        if ((ni * len_g) % len != 0 || n[g] == 0)
            n[g]++;
        sum += n[g];
    }
    if (sum <= ni)
        return 0;
    size_t *order = malloc(G * sizeof *order);
    if (!order)
        return oom(p);
    /*
     * Take one back from the node whose instances would be smallest, among
     * those with more than one, until few enough: a heap keyed by len_g / n_g
     * (each step raises only the key of the node it took from).
     */
    node_share s = {p->groups, n};
    size_t heap_len = 0;
    for (size_t g = 0; g < G; g++)
        if (n[g] > 1)
            order[heap_len++] = g;
    for (size_t i = heap_len / 2; i-- > 0;)
        sift_down(&s, order, heap_len, i);
    while (sum > ni && heap_len > 0) {
        size_t g = order[0];
        n[g]--;
        sum--;
        if (n[g] <= 1)
            order[0] = order[--heap_len];
        sift_down(&s, order, heap_len, 0);
    }
    free(order);
    if (sum > ni) {
        /* every n is 1 here: drop the smallest nodes, the last of equals first */
        part *drop = malloc(G * sizeof *drop);
        if (!drop)
            return oom(p);
        for (size_t g = 0; g < G; g++)
            drop[g] = (part){g, p->groups[g].len};
        qsort(drop, G, sizeof *drop, by_drop_order);
        for (size_t i = 0; i < G && sum > ni; i++)
            if (n[drop[i].start] > 0) {
                n[drop[i].start]--;
                sum--;
            }
        free(drop);
    }
    return 0;
}

static int plan_split(planner *p)
{
    size_t ni = (size_t)p->ni;
    if (ni > p->ncand)
        return pf__fail(p->why, -EINVAL, "--ninstances %zu is more than the %zu %s available", ni,
                        p->ncand, unit(p, p->ncand));
    if (!p->bind)
        return split_run(p, 0, p->ncand, ni);
    size_t *n = calloc(p->ngroups, sizeof *n);
    if (!n)
        return oom(p);
    int rc = share_among_nodes(p, n);
    for (size_t g = 0; g < p->ngroups && rc == 0; g++)
        if (n[g] > 0)
            rc = split_run(p, p->groups[g].start, p->groups[g].len, n[g]);
    free(n);
    return rc;
}

/* Step 8: --rank / --instance-idx.  Returns the chosen part indices. */
static int select_parts(planner *p, size_t **chosen, size_t *nchosen)
{
    const pf_plan_options *o = p->opts;
    *chosen = malloc((p->nparts ? p->nparts : 1) * sizeof **chosen);
    if (!*chosen)
        return oom(p);
    *nchosen = 0;
    int *ids = NULL;
    size_t nids = 0;
    int rc = 0;
    if (o->rank >= 0) {
        ids = malloc(sizeof *ids);
        if (!ids)
            return oom(p);
        ids[0] = o->rank;
        nids = 1;
    } else if (given_list(o->instance_idx)) {
        char *msg = NULL;
        rc = pf_cpulist_parse(o->instance_idx, &ids, &nids, &msg);
        if (rc < 0) {
            rc = pf__fail(p->why, rc, "--instance-idx '%s': %s", o->instance_idx,
                          msg ? msg : pf_strerror(rc));
            free(msg);
            return rc;
        }
    } else {
        for (size_t i = 0; i < p->nparts; i++)
            (*chosen)[(*nchosen)++] = i;
        return 0;
    }
    for (size_t i = 0; i < nids && rc == 0; i++) {
        if ((size_t)ids[i] >= p->nparts)
            rc = pf__fail(p->why, -EINVAL, "%s %d is outside the plan, which has %zu instance%s",
                          o->rank >= 0 ? "--rank" : "--instance-idx", ids[i], p->nparts,
                          p->nparts == 1 ? "" : "s");
        else
            (*chosen)[(*nchosen)++] = (size_t)ids[i];
    }
    free(ids);
    return rc;
}

static int make_instance(planner *p, pf_instance *inst, int index, size_t start, size_t len)
{
    inst->index = index;
    inst->cpus = malloc(len * sizeof *inst->cpus);
    inst->nodes = malloc(len * sizeof *inst->nodes);
    if (!inst->cpus || !inst->nodes)
        return oom(p);
    for (size_t i = 0; i < len; i++) {
        inst->cpus[i] = p->cand[start + i]->cpu;
        inst->nodes[i] = p->cand[start + i]->node;
    }
    qsort(inst->cpus, len, sizeof *inst->cpus, pf__int_cmp);
    pf__ivec nodes = {inst->nodes, len, len};
    pf__ivec_sort_unique(&nodes);
    inst->ncpus = len;
    inst->nnodes = nodes.len;
    inst->threads = (int)len;
    if (inst->nnodes > 1) {
        char *list = NULL;
        if (pf_cpulist_format(inst->nodes, inst->nnodes, &list) < 0 ||
            warn(p,
                 "instance %d spans NUMA nodes %s: its memory is not local to all its CPUs "
                 "(--bind-numa-node keeps instances within a node)",
                 index, list) < 0) {
            free(list);
            return oom(p);
        }
        free(list);
    }
    return 0;
}

/*
 * A request that failed for want of CPUs while SMT siblings were left out
 * only because --use-logical-cores was not given: if planning again with it
 * succeeds, say so after the error.  (Presets drop siblings whatever the
 * option says, and an explicit --core-list is never filtered: no hint then.)
 */
static void hint_logical_cores(const pf_topology *topo, const pf_plan_options *opts, char **why)
{
    pf_plan_options with = *opts;
    with.use_logical_cores = true;
    pf_plan *plan = NULL;
    if (pf_plan_instances(topo, &with, &plan, NULL) < 0)
        return;
    pf_plan_free(plan);
    char *longer = pf__strdupf(
        "%s; --use-logical-cores would make it fit (it adds the cores' SMT siblings)", *why);
    if (longer) {
        free(*why);
        *why = longer;
    }
}

/* Steps 3 and 4: presets and unset values. */
static int resolve_counts(planner *p, bool *drop_siblings)
{
    const pf_plan_options *o = p->opts;
    bool gave_ni = o->ninstances != -1, gave_nc = o->ncores_per_instance != 0;
    /* --multi-instance alone means --throughput-mode */
    bool throughput =
        o->throughput_mode || (o->multi_instance && !gave_ni && o->ncores_per_instance <= 0);
    p->throughput = throughput;
    p->ni = o->ninstances;
    p->nc = o->ncores_per_instance;
    p->bind = o->bind_numa_node;
    *drop_siblings = !o->use_logical_cores;
    if (o->latency_mode && throughput)
        return pf__fail(p->why, -EINVAL,
                        o->throughput_mode
                            ? "--latency-mode and --throughput-mode cannot be used together"
                            : "--latency-mode and --multi-instance cannot be used together");
    if (o->latency_mode || throughput) {
        const char *name = o->latency_mode ? "--latency-mode" : "--throughput-mode";
        if ((gave_ni || gave_nc) &&
            warn(p, "%s overrides --ninstances and --ncores-per-instance", name) < 0)
            return oom(p);
        if (o->use_logical_cores && !o->core_list &&
            warn(p, "%s uses physical cores only: --use-logical-cores is ignored", name) < 0)
            return oom(p);
        *drop_siblings = true;
        p->ni = -1;
        p->nc = o->latency_mode ? 4 : 0;
        p->bind |= throughput;
    }
    return 0;
}

int pf_plan_instances(const pf_topology *topo, const pf_plan_options *opts, pf_plan **out,
                      char **why)
{
    if (!topo || !opts || !out)
        return pf__fail(why, -EINVAL, "no topology or no options");
    planner p = {.topo = topo, .opts = opts, .why = why};
    bool drop_siblings;
    pf_plan *plan = NULL;
    size_t *chosen = NULL, nchosen = 0;
    int rc = check_options(&p);
    if (rc == 0)
        rc = resolve_counts(&p, &drop_siblings);
    if (rc == 0)
        rc = collect_candidates(&p, drop_siblings);
    if (rc == 0)
        rc = apply_cpu_quota(&p, drop_siblings);
    if (rc == 0 && p.throughput) {
        /* one instance per node among the candidates */
        pf__ivec nodes = {0};
        for (size_t i = 0; i < p.ncand && rc == 0; i++)
            rc = pf__ivec_push(&nodes, p.cand[i]->node) < 0 ? oom(&p) : 0;
        pf__ivec_sort_unique(&nodes);
        p.ni = (int)nodes.len;
        pf__ivec_free(&nodes);
    }
    if (rc == 0) {
        p.remainder = p.nc == -1;
        if (p.nc < 0)
            p.nc = 0;
        if (p.nc == 0 && p.ni == -1)
            p.ni = 1;
        p.parts = malloc((p.ncand ? p.ncand : 1) * sizeof *p.parts);
        rc = p.parts ? make_groups(&p) : oom(&p);
    }
    if (rc == 0)
        rc = p.nc > 0 ? plan_slices(&p) : plan_split(&p);
    if (rc == 0)
        rc = select_parts(&p, &chosen, &nchosen);

    /* torchrun: this process takes share LOCAL_RANK of every instance. */
    size_t world = opts->local_world_size > 1 ? (size_t)opts->local_world_size : 1;
    size_t local = opts->local_rank > 0 ? (size_t)opts->local_rank : 0;
    for (size_t i = 0; rc == 0 && world > 1 && i < nchosen; i++) {
        part *pt = &p.parts[chosen[i]];
        if (pt->len / world == 0)
            rc = pf__fail(why, -EINVAL,
                          "instance %zu has %zu %s, too few to share among LOCAL_WORLD_SIZE %zu "
                          "processes",
                          chosen[i], pt->len, unit(&p, pt->len), world);
    }
    if (rc == 0) {
        plan = calloc(1, sizeof *plan);
        if (plan)
            plan->instances = calloc(nchosen ? nchosen : 1, sizeof *plan->instances);
        rc = plan && plan->instances ? 0 : oom(&p);
    }
    for (size_t i = 0; rc == 0 && i < nchosen; i++) {
        part pt = p.parts[chosen[i]];
        if (world > 1) {
            pt.len /= world;
            pt.start += local * pt.len;
        }
        rc = make_instance(&p, &plan->instances[i], (int)chosen[i], pt.start, pt.len);
        plan->ninstances = i + 1;
    }
    if (rc == 0) {
        plan->nplanned = p.nparts;
        plan->cpu_quota = p.quota;
        plan->warnings = p.warnings;
        plan->nwarnings = p.nwarnings;
        p.warnings = NULL;
        p.nwarnings = 0;
        *out = plan;
    } else {
        pf_plan_free(plan);
        if (rc == -EINVAL)
            blame_quota(&p);
    }
    for (size_t i = 0; i < p.nwarnings; i++)
        free(p.warnings[i]);
    free(p.warnings);
    free(p.cand);
    free(p.groups);
    free(p.parts);
    free(chosen);
    if (rc == -EINVAL && why && *why && !opts->use_logical_cores && !opts->core_list &&
        !opts->latency_mode && !p.throughput)
        hint_logical_cores(topo, opts, why);
    return rc;
}

void pf_plan_free(pf_plan *plan)
{
    if (!plan)
        return;
    for (size_t i = 0; i < plan->ninstances; i++) {
        free(plan->instances[i].cpus);
        free(plan->instances[i].nodes);
    }
    for (size_t i = 0; i < plan->nwarnings; i++)
        free(plan->warnings[i]);
    free(plan->instances);
    free(plan->warnings);
    free(plan);
}
