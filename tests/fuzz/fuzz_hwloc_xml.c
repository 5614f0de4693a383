/*
 * fuzz_hwloc_xml.c - libFuzzer target for hwloc XML topologies: the whole
 * in-process load, pf__hwloc_xml_check() and then hwloc itself.
 *
 * The check is what stands between a user's file and hwloc's importer, which
 * trusts its input; any input that the check lets through and that then
 * crashes (or leaks) inside hwloc is a finding.  hwloc is not instrumented,
 * so coverage guides the search through the check, and a crash in hwloc
 * shows as a SEGV or an abort.  Refusals must carry a one-line reason that
 * names the file; a loaded topology must hold its invariants.
 */
#include "pinfer.h"
#include "topology/hwloc_xml.h"
#include "topology/topology.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* pf__topology_load_hwloc wants the text NUL-terminated, as read_file leaves it. */
    char *xml = malloc(size + 1);
    if (!xml)
        return 0;
    memcpy(xml, data, size);
    xml[size] = '\0';

    pf_topology *t = NULL;
    char *why = NULL;
    int rc = pf__topology_load_hwloc("fuzz", xml, size, NULL, &t, &why);
    if (rc < 0) {
        if (rc != -ENOMEM && (!why || strncmp(why, "fuzz: ", 6) != 0 || strchr(why, '\n')))
            abort();
        free(why);
        free(xml);
        return 0;
    }
    if (why)
        abort();
    /* What passed the load passes the check alone, with the same answer. */
    if (pf__hwloc_xml_check("fuzz", xml, size, NULL) != 0)
        abort();
    size_t n;
    const pf_cpu_info *cpus = pf_topology_cpus(t, &n);
    if (n == 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && cpus[i].cpu <= cpus[i - 1].cpu)
            abort();
        if (cpus[i].cpu < 0 || cpus[i].cpu >= PF_ID_LIMIT || !cpus[i].allowed)
            abort();
        if (cpus[i].core_first > cpus[i].cpu ||
            (cpus[i].smt_rank == 0) != (cpus[i].core_first == cpus[i].cpu))
            abort();
    }
    pf_topology_free(t);
    free(xml);
    return 0;
}
