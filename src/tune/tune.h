/*
 * tune.h - what src/tune's files share beyond pinfer.h.
 */
#ifndef PF_TUNE_H
#define PF_TUNE_H

#include "pinfer.h"

/* Is value `omp` of the OpenMP knob Intel's runtime (the one KMP_BLOCKTIME is for)? */
bool pf__tune_is_intel(const pf_tune_space *space, size_t omp);
/* Is the configuration canonical (KMP_BLOCKTIME at its default unless with Intel OpenMP)? */
bool pf__tune_is_canonical(const pf_tune_space *space, const pf_tune_config *config);
/* Parse a split's "NxC" (both >= 1): 0 or -EINVAL. */
int pf__tune_split_parse(const char *text, long *n, long *c);

#endif /* PF_TUNE_H */
