/*
 * test_features.c - pf_isa_features: the contract (counting, order, names)
 * and, on x86, agreement with the kernel's view in /proc/cpuinfo.
 */
#include "pf_test.h"

#include <sys/utsname.h>

static const char *const documented[] = {
    "avx2",        "fma",      "avx512f",  "avx512_vnni", "avx512_bf16",
    "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16",    "amx_int8",
};
#define NDOC (sizeof documented / sizeof documented[0])

/*
 * The first kernel version that prints each flag: a CPU can have a feature
 * that an older kernel does not name.  Rounded up to be safe.
 */
static const int since[NDOC][2] = {
    {3, 10}, {3, 10}, {4, 1}, {4, 20}, {5, 4}, {5, 12}, {5, 14}, {5, 17}, {5, 17}, {5, 17},
};

static int doc_index(const char *name)
{
    for (size_t i = 0; i < NDOC; i++)
        if (strcmp(name, documented[i]) == 0)
            return (int)i;
    return -1;
}

static void test_count_and_fill(void **state)
{
    (void)state;
    size_t count = pf_isa_features(NULL, 0);
    assert_true(count <= NDOC);
    const char *names[NDOC + 2];
    for (size_t i = 0; i < NDOC + 2; i++)
        names[i] = "sentinel";
    assert_int_equal(pf_isa_features(names, NDOC + 2), count);
    for (size_t i = count; i < NDOC + 2; i++)
        assert_string_equal(names[i], "sentinel");
    /* Documented names only, in the documented order, each once. */
    int last = -1;
    for (size_t i = 0; i < count; i++) {
        int at = doc_index(names[i]);
        assert_true(at > last);
        last = at;
    }
    /* A smaller array receives the first ones; the total is still returned. */
    if (count > 0) {
        const char *first[2] = {NULL, "sentinel"};
        assert_int_equal(pf_isa_features(first, 1), count);
        assert_string_equal(first[0], names[0]);
        assert_string_equal(first[1], "sentinel");
    }
    /* Stable across calls. */
    const char *again[NDOC];
    assert_int_equal(pf_isa_features(again, NDOC), count);
    for (size_t i = 0; i < count; i++)
        assert_ptr_equal(again[i], names[i]);
}

/* Does the "flags" line of /proc/cpuinfo hold this word?  -1: no flags line. */
static int cpuinfo_has(const char *flag)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return -1;
    static char line[65536];
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) != 0)
            continue;
        found = 0;
        const char *p = strchr(line, ':');
        size_t len = strlen(flag);
        while (p && *p) {
            p += strspn(p, ": \t\n");
            size_t n = strcspn(p, " \t\n");
            if (n == len && strncmp(p, flag, len) == 0)
                found = 1;
            p += n;
        }
        break;
    }
    fclose(f);
    return found;
}

static bool kernel_at_least(int major, int minor)
{
    struct utsname u;
    int ma = 0, mi = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
        return false;
    return ma > major || (ma == major && mi >= minor);
}

static void test_agrees_with_cpuinfo(void **state)
{
    (void)state;
#if defined(__x86_64__) || defined(__i386__)
    if (cpuinfo_has("fpu") < 0)
        skip(); /* no /proc/cpuinfo flags line */
    /* valgrind runs the code on a CPU of its own, whose CPUID lacks AVX-512 and AMX. */
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload"))
        skip();
    const char *names[NDOC];
    size_t count = pf_isa_features(names, NDOC);
    for (size_t i = 0; i < NDOC; i++) {
        bool reported = false;
        for (size_t j = 0; j < count; j++)
            if (strcmp(names[j], documented[i]) == 0)
                reported = true;
        int kernel = cpuinfo_has(documented[i]);
        if (kernel == 1 && !reported)
            fail_msg("/proc/cpuinfo has %s, pf_isa_features does not", documented[i]);
        if (kernel == 0 && reported && kernel_at_least(since[i][0], since[i][1]))
            fail_msg("pf_isa_features has %s, /proc/cpuinfo does not", documented[i]);
    }
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_and_fill),
        cmocka_unit_test(test_agrees_with_cpuinfo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
