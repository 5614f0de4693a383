/*
 * topology.h - the internal topology model and the interface its sources
 * (lscpu text, hwloc) fill in.
 *
 * A source produces rows, one per online CPU, in any order; pf__topology_build
 * checks them, sorts them by CPU id and derives what every source shares:
 * the node fallback, SMT ranks, core representatives, counts, and E-cores
 * from a MAXMHZ gap when the source knows no CPU kinds.
 */
#ifndef PF_TOPOLOGY_H
#define PF_TOPOLOGY_H

#include "pinfer.h"

struct pf_topology {
    char *source;
    bool live;
    pf_cpu_info *cpus; /* ascending by cpu */
    size_t ncpus;
    int *nodes; /* distinct node ids, ascending */
    size_t nnodes;
    size_t ncores;
    size_t nsockets;
};

typedef struct pf__cpu_row {
    int cpu;
    int core;
    int socket;
    int node;       /* -1: the source has none; the socket's id is used */
    double maxmhz;  /* 0: unknown */
    int llc;        /* -1: unknown */
    int efficiency; /* -1: unknown (derive from maxmhz), else 0 or 1 */
    bool allowed;
    int line; /* the input line it came from, for messages; 0 none */
} pf__cpu_row;

/*
 * Build a topology from rows (which it reorders).  `name` is the source as
 * shown to users and in messages.  Errors: -EINVAL with *why (no CPUs, a CPU
 * listed twice, a core in two nodes), -ENOMEM.
 */
int pf__topology_build(const char *name, bool live, pf__cpu_row *rows, size_t nrows,
                       pf_topology **out, char **why);

/*
 * Parse lscpu output held in text[0, len) (not NUL-terminated): the CSV of
 * `lscpu --parse[=...]` or the table of `lscpu -e`.  `name` names the input in
 * messages ("file:line: ...").  Pure: no I/O.
 */
int pf__topology_parse_lscpu(const char *name, const char *text, size_t len, pf_topology **out,
                             char **why);

/*
 * Load through hwloc: the live machine (xml and synthetic NULL), an XML
 * export held in memory (xml[xml_len] must be a NUL), or a synthetic
 * description.
 */
int pf__topology_load_hwloc(const char *name, const char *xml, size_t xml_len,
                            const char *synthetic, pf_topology **out, char **why);

#endif /* PF_TOPOLOGY_H */
