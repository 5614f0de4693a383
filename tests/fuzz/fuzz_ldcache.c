/*
 * fuzz_ldcache.c - libFuzzer target for the dynamic loader cache parser.
 *
 * The input is a cache image; every name a launcher looks for is looked up
 * in it, walking all matches.  Nothing may crash or read out of bounds, and
 * every path returned must lie inside the image, NUL-terminated.
 */
#include "plan/libfind.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"libtcmalloc.so.4", "libjemalloc.so.2", "libiomp5.so",
                                        "libomp.so.5", ""};
    /* A private copy: the parser must not rely on anything past size. */
    char *image = malloc(size ? size : 1);
    if (!image)
        return 0;
    memcpy(image, data, size);
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        for (int flags = -1; flags <= 0x303; flags += 0x304) {
            size_t pos = 0;
            for (int guard = 0; guard < 100000; guard++) {
                const char *path = pf__ldcache_lookup(image, size, names[k], flags, &pos);
                if (!path)
                    break;
                if (path < image || path >= image + size ||
                    !memchr(path, '\0', size - (size_t)(path - image)))
                    abort();
            }
        }
    }
    free(image);
    return 0;
}
