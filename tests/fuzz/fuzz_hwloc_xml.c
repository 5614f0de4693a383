/*
 * fuzz_hwloc_xml.c - libFuzzer target for hwloc XML topologies: the whole
 * in-process load, pf__hwloc_xml_check() and then hwloc itself.
 *
 * The check is what stands between a user's file and hwloc's importer, which
 * trusts its input; any input that the check lets through and that then
 * crashes (or leaks) inside hwloc is a finding.  hwloc is not instrumented,
 * so coverage guides the search through the check, and a crash in hwloc
 * shows as a SEGV or an abort.  The check also runs alone on libFuzzer's
 * exactly-sized buffer, so that ASan sees any read past the end.  Refusals
 * must carry a one-line reason that names the file; a loaded topology must
 * hold its invariants.
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
    /*
     * The check alone, on libFuzzer's buffer of exactly `size` bytes: it must
     * not read past the end, which ASan would see.
     */
    char *checked = NULL;
    int check = pf__hwloc_xml_check("fuzz", (const char *)data, size, &checked);
    if (check < 0 && check != -ENOMEM && (!checked || strchr(checked, '\n')))
        abort();

    /* The whole load wants the text NUL-terminated, as read_file leaves it. */
    char *xml = malloc(size + 1);
    if (!xml) {
        free(checked);
        return 0;
    }
    memcpy(xml, data, size);
    xml[size] = '\0';
    pf_topology *t = NULL;
    char *why = NULL;
    int rc = pf__topology_load_hwloc("fuzz", xml, size, NULL, &t, &why);
    free(xml);
    if (check < 0 && check != -ENOMEM) {
        /* Refused by the check: hwloc never saw it, and the load says why. */
        if (rc != check || !why || strcmp(why, checked) != 0)
            abort();
    } else if (rc < 0 && rc != -ENOMEM &&
               (!why || strncmp(why, "fuzz: ", 6) != 0 || strchr(why, '\n'))) {
        abort(); /* hwloc refused it: one line naming the file */
    }
    free(checked);
    free(why);
    if (rc < 0)
        return 0;

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
    return 0;
}
