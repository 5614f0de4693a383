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

#endif /* PF_TEST_H */
