/*
 * pf_test.h - what the cmocka test programs share: cmocka itself, fixture
 * paths and a topology loader that fails the test on error.
 */
#ifndef PF_TEST_H
#define PF_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
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

/* Load a fixture (or a "synthetic:..." source) or fail the test with the reason. */
static inline pf_topology *load_fixture(const char *name)
{
    pf_topology *t = NULL;
    char *why = NULL;
    const char *src = strncmp(name, "synthetic:", 10) == 0 ? name : fixture(name);
    int rc = pf_topology_load(src, &t, &why);
    if (rc < 0)
        fail_msg("loading %s: %s", src, why ? why : pf_strerror(rc));
    return t;
}

/*
 * Fill plan options from a compact form ("ni=2 nc=3 bind scatter"): ni=N
 * nc=N node=N nodes=L cores=L logical ecores bind scatter latency throughput
 * multi rank=N idx=L lr=N lws=N.  The strings point into `buf`.
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

#endif /* PF_TEST_H */
