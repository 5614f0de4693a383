/*
 * watch.h - `pinfer check --watch`: a live map of the machine's CPUs and the
 * checked processes' threads on them (watch.c).
 */
#ifndef PF_TOOL_WATCH_H
#define PF_TOOL_WATCH_H

#include "pinfer.h"

/*
 * Check the processes window after window, redrawing the map in place on
 * the terminal until SIGINT, SIGTERM or SIGHUP; the terminal is then as it
 * was.  0 when stopped, -ENOTTY when standard output is not a terminal, or
 * pf_check_run()'s error (with *why).
 */
int tool_watch(const pf_topology *topo, const int *pids, size_t npids, const pf_check_options *opts,
               char **why);

#endif /* PF_TOOL_WATCH_H */
