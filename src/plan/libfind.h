/*
 * libfind.h - the internal part of library discovery that tests and the
 * fuzzer call directly: the dynamic loader cache parser.
 */
#ifndef PF_LIBFIND_H
#define PF_LIBFIND_H

#include <stddef.h>

/*
 * Look `name` up in a loader cache image data[0, size): returns the path of
 * the next entry at or after *pos whose key is name, whose flags are
 * `flags` (-1: this process's ABI) and which is not an hwcap subset copy,
 * and moves *pos past it; NULL when there is none or the image is not a
 * cache.  The path points into data.
 */
const char *pf__ldcache_lookup(const char *data, size_t size, const char *name, int flags,
                               size_t *pos);

#endif /* PF_LIBFIND_H */
