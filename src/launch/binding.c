/*
 * binding.c - binding a process to its CPUs and memory natively:
 * sched_setaffinity for the CPUs, set_mempolicy(MPOL_BIND) for memory,
 * with the masks built before fork so that the child only makes the two
 * system calls.  Memory binding is refused in many containers; whether it
 * is allowed is probed once by the launcher, not discovered per child.
 */
#include "launch/launch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MPOL_BIND_MODE 2 /* MPOL_BIND of <linux/mempolicy.h> */

char *pf__binding_text(const pf_instance *in, bool bind_cpus, bool bind_memory, bool words)
{
    char *cpus = NULL, *nodes = NULL, *out = NULL;
    if (pf_cpulist_format(in->cpus, in->ncpus, &cpus) == 0 &&
        pf_cpulist_format(in->nodes, in->nnodes, &nodes) == 0) {
        const char *node_word = in->nnodes == 1 ? "node" : "nodes";
        if (bind_cpus && bind_memory)
            out = words ? pf__strdupf("CPUs %s, memory %s %s", cpus, node_word, nodes)
                        : pf__strdupf("numactl -C %s -m %s", cpus, nodes);
        else if (bind_cpus)
            out = words ? pf__strdupf("CPUs %s, memory not bound", cpus)
                        : pf__strdupf("taskset -c %s", cpus);
        else
            out = strdup(words ? "not bound" : "(no binding)");
    }
    free(cpus);
    free(nodes);
    return out;
}

char *pf_binding_command(const pf_instance *in, bool bind_cpus, bool bind_memory)
{
    return pf__binding_text(in, bind_cpus, bind_memory, false);
}

static int max_id(const int *ids, size_t n)
{
    int m = 0;
    for (size_t k = 0; k < n; k++)
        m = ids[k] > m ? ids[k] : m;
    return m;
}

void pf__binding_free(pf__binding *b)
{
    if (b->cpus)
        CPU_FREE(b->cpus);
    free(b->nodes);
    memset(b, 0, sizeof *b);
}

int pf__binding_make(const int *cpus, size_t ncpus, const int *nodes, size_t nnodes, pf__binding *b)
{
    memset(b, 0, sizeof *b);
    if (cpus && ncpus > 0) {
        int top = max_id(cpus, ncpus);
        b->cpus = CPU_ALLOC(top + 1);
        b->cpus_size = CPU_ALLOC_SIZE(top + 1);
        if (!b->cpus)
            return -ENOMEM;
        CPU_ZERO_S(b->cpus_size, b->cpus);
        for (size_t k = 0; k < ncpus; k++)
            CPU_SET_S((size_t)cpus[k], b->cpus_size, b->cpus);
    }
    if (nodes && nnodes > 0) {
        size_t bits = sizeof(unsigned long) * 8;
        size_t words = (size_t)max_id(nodes, nnodes) / bits + 1;
        b->nodes = calloc(words, sizeof *b->nodes);
        b->max_node = words * bits;
        if (!b->nodes) {
            pf__binding_free(b);
            return -ENOMEM;
        }
        for (size_t k = 0; k < nnodes; k++)
            b->nodes[(size_t)nodes[k] / bits] |= 1ul << ((size_t)nodes[k] % bits);
    }
    return 0;
}

int pf__binding_apply_cpus(const pf__binding *b)
{
    if (b->cpus && sched_setaffinity(0, b->cpus_size, b->cpus) != 0)
        return -errno;
    return 0;
}

int pf__binding_apply_memory(const pf__binding *b)
{
    if (b->nodes && syscall(SYS_set_mempolicy, MPOL_BIND_MODE, b->nodes, b->max_node + 1) != 0)
        return -errno;
    return 0;
}

/* Try the nodes' policy and put the previous one back (the caller allocates nothing meanwhile). */
int pf_memory_binding_probe(const int *nodes, size_t nnodes)
{
    pf__binding b;
    if (pf__binding_make(NULL, 0, nodes, nnodes, &b) < 0)
        return -ENOMEM;
    int mode = 0;
    unsigned long saved[64] = {0};
    unsigned long saved_bits = sizeof saved * 8;
    bool have_saved = syscall(SYS_get_mempolicy, &mode, saved, saved_bits, NULL, 0) == 0;
    int rc = pf__binding_apply_memory(&b);
    if (rc == 0 && have_saved)
        syscall(SYS_set_mempolicy, mode, mode ? saved : NULL, mode ? saved_bits : 0);
    else if (rc == 0)
        syscall(SYS_set_mempolicy, 0, NULL, 0);
    pf__binding_free(&b);
    return rc;
}
