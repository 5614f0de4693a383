/*
 * proc.h - the parsers of /proc files under the reader (src/proc/read.c):
 * pure functions on a file's text, so that they are tested on captured
 * text and fuzzed.  Each takes the bytes as read (not NUL-terminated),
 * never reads past len, and leaves fields it does not find at their
 * "unknown" value (-1 for counters).
 */
#ifndef PF_PROC_H
#define PF_PROC_H

#include "base/util.h"
#include "pinfer.h"

#include <stddef.h>

/*
 * /proc/PID/task/TID/stat: the name between the first '(' and the last ')',
 * the state, utime and stime (clock ticks), and the CPU it last ran on
 * (field 39).  -EINVAL when the text is not one.
 */
int pf__proc_parse_stat(const char *text, size_t len, pf_proc_thread *out);

/* /proc/.../sched: se.nr_migrations and se.sum_exec_runtime (ms with a fraction). */
void pf__proc_parse_sched(const char *text, size_t len, pf_proc_thread *out);

/* /proc/.../schedstat: "RUN_NS WAIT_NS SLICES".  -EINVAL when it is not that. */
int pf__proc_parse_schedstat(const char *text, size_t len, pf_proc_thread *out);

/*
 * /proc/.../status: Cpus_allowed_list, Mems_allowed_list, the context
 * switches, and (process) VmRSS in kB.  The lists go to *cpus / *mems.
 */
int pf__proc_parse_status(const char *text, size_t len, pf__ivec *cpus, pf__ivec *mems,
                          long long *voluntary, long long *involuntary, long long *rss_kb);

/*
 * /proc/PID/numa_maps: bytes resident per node (N<node>=<pages> times the
 * line's kernelpagesize_kB, 4 when absent), added into bytes[node] for
 * nodes below max_nodes (others are counted in *other).
 */
void pf__proc_parse_numa_maps(const char *text, size_t len, unsigned long long *bytes,
                              size_t max_nodes, unsigned long long *other);

/* /proc/PID/cgroup: the cgroup v2 path ("0::/path"), else the cpuset controller's. malloc'd. */
char *pf__proc_parse_cgroup(const char *text, size_t len);

#endif /* PF_PROC_H */
