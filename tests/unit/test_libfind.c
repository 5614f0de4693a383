/*
 * test_libfind.c - finding tcmalloc, jemalloc and the OpenMP runtime: the
 * directory order, the names, and the loader-cache parser (on built images,
 * malformed ones and this machine's /etc/ld.so.cache).
 */
#include "pf_test.h"
#include "plan/libfind.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* Fake trees                                                                */

static char *tree(void)
{
    char tmpl[] = "/tmp/pinfer-libfind-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return strdup(tmpl);
}

static void touch(const char *root, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    /* Create the parents, one component at a time. */
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(path, 0755) != 0)
            assert_int_equal(errno, EEXIST);
        *p = '/';
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    close(fd);
}

static void remove_tree(char *root)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
    free(root);
}

/* Find lib with this environment; returns the code, *path (or NULL) in out. */
static int find(pf_library lib, char *const *envp, bool system_dirs, char **out)
{
    *out = NULL;
    return pf_library_find(lib, envp, system_dirs, out);
}

static void expect_path(const char *got, const char *root, const char *rel)
{
    char want[4096];
    snprintf(want, sizeof want, "%s/%s", root, rel);
    assert_non_null(got);
    assert_string_equal(got, want);
}

static char *env_entry(const char *name, const char *value)
{
    size_t len = strlen(name) + strlen(value) + 2;
    char *s = malloc(len);
    assert_non_null(s);
    snprintf(s, len, "%s=%s", name, value);
    return s;
}

/* ------------------------------------------------------------------------ */
/* The search                                                                */

static void test_found_in_conda(void **state)
{
    (void)state;
    char *root = tree();
    touch(root, "lib/libtcmalloc.so.4");
    touch(root, "lib/libomp.so.5");
    char *conda = env_entry("CONDA_PREFIX", root);
    char *envp[] = {"PATH=/usr/bin", conda, NULL};
    char *path;
    for (int sys = 0; sys < 2; sys++) {
        assert_int_equal(find(PF_LIBRARY_TCMALLOC, envp, sys, &path), 0);
        expect_path(path, root, "lib/libtcmalloc.so.4");
        free(path);
        assert_int_equal(find(PF_LIBRARY_IOMP, envp, sys, &path), 0);
        expect_path(path, root, "lib/libomp.so.5");
        free(path);
    }
    assert_int_equal(find(PF_LIBRARY_JEMALLOC, envp, false, &path), -ENOENT);
    assert_null(path);

    /* Within a directory, the names' order decides. */
    touch(root, "lib/libtcmalloc.so");
    touch(root, "lib/libiomp5.so");
    assert_int_equal(find(PF_LIBRARY_TCMALLOC, envp, false, &path), 0);
    expect_path(path, root, "lib/libtcmalloc.so");
    free(path);
    assert_int_equal(find(PF_LIBRARY_IOMP, envp, false, &path), 0);
    expect_path(path, root, "lib/libiomp5.so");
    free(path);
    free(conda);
    remove_tree(root);
}

static void test_precedence(void **state)
{
    (void)state;
    char *a = tree(), *b = tree(), *c = tree();
    touch(a, "lib/libjemalloc.so.2");
    touch(b, "lib/libjemalloc.so");
    touch(c, ".local/lib/libjemalloc.so");
    char *conda = env_entry("CONDA_PREFIX", a), *venv = env_entry("VIRTUAL_ENV", b),
         *home = env_entry("HOME", c);
    char *path;

    /* The directory order wins over the name order: a's .so.2 before b's .so. */
    char *all[] = {home, venv, conda, NULL};
    assert_int_equal(find(PF_LIBRARY_JEMALLOC, all, false, &path), 0);
    expect_path(path, a, "lib/libjemalloc.so.2");
    free(path);

    char *no_conda[] = {home, venv, NULL};
    assert_int_equal(find(PF_LIBRARY_JEMALLOC, no_conda, false, &path), 0);
    expect_path(path, b, "lib/libjemalloc.so");
    free(path);

    char *only_home[] = {home, NULL};
    assert_int_equal(find(PF_LIBRARY_JEMALLOC, only_home, false, &path), 0);
    expect_path(path, c, ".local/lib/libjemalloc.so");
    free(path);

    free(conda);
    free(venv);
    free(home);
    remove_tree(a);
    remove_tree(b);
    remove_tree(c);
}

static void test_what_counts_as_a_library(void **state)
{
    (void)state;
    char *root = tree();
    char *conda = env_entry("CONDA_PREFIX", root);
    char *envp[] = {conda, NULL};
    char *path, link[4096], target[4096];

    /* A directory with the right name, and a dangling symlink: not libraries. */
    snprintf(link, sizeof link, "%s/lib/libjemalloc.so", root);
    touch(root, "lib/placeholder");
    assert_int_equal(mkdir(link, 0755), 0);
    snprintf(link, sizeof link, "%s/lib/libjemalloc.so.2", root);
    assert_int_equal(symlink("/nonexistent/libjemalloc.so.2", link), 0);
    assert_int_equal(find(PF_LIBRARY_JEMALLOC, envp, false, &path), -ENOENT);

    /* A symlink to a file counts, and is returned as found, not resolved. */
    touch(root, "real/libtcmalloc.so.4.5.9");
    snprintf(target, sizeof target, "%s/real/libtcmalloc.so.4.5.9", root);
    snprintf(link, sizeof link, "%s/lib/libtcmalloc.so.4", root);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(find(PF_LIBRARY_TCMALLOC, envp, false, &path), 0);
    expect_path(path, root, "lib/libtcmalloc.so.4");
    free(path);
    free(conda);

    /* Trailing slashes are dropped; a relative prefix is ignored. */
    char *slashed = malloc(strlen(root) + 16);
    assert_non_null(slashed);
    snprintf(slashed, strlen(root) + 16, "CONDA_PREFIX=%s//", root);
    char *env_slashed[] = {slashed, NULL};
    assert_int_equal(find(PF_LIBRARY_TCMALLOC, env_slashed, false, &path), 0);
    expect_path(path, root, "lib/libtcmalloc.so.4");
    free(path);
    free(slashed);
    char *env_relative[] = {"CONDA_PREFIX=tmp/conda", "VIRTUAL_ENV=", NULL};
    assert_int_equal(find(PF_LIBRARY_TCMALLOC, env_relative, false, &path), -ENOENT);
    remove_tree(root);
}

static void test_empty_tree(void **state)
{
    (void)state;
    char *root = tree();
    char *conda = env_entry("CONDA_PREFIX", root), *venv = env_entry("VIRTUAL_ENV", root),
         *home = env_entry("HOME", root);
    char *envp[] = {conda, venv, home, NULL};
    char *empty[] = {NULL};
    for (int lib = 0; lib < PF_LIBRARY_COUNT; lib++) {
        char *path;
        assert_int_equal(find((pf_library)lib, envp, false, &path), -ENOENT);
        assert_null(path);
        assert_int_equal(find((pf_library)lib, empty, false, &path), -ENOENT);
        assert_null(path);
    }
    free(conda);
    free(venv);
    free(home);
    remove_tree(root);
}

static void test_process_environment(void **state)
{
    (void)state;
    char *root = tree();
    touch(root, "lib/libjemalloc.so.2");
    const char *saved = getenv("CONDA_PREFIX");
    char *restore = saved ? strdup(saved) : NULL;
    assert_int_equal(setenv("CONDA_PREFIX", root, 1), 0);
    char *path;
    assert_int_equal(find(PF_LIBRARY_JEMALLOC, NULL, false, &path), 0);
    expect_path(path, root, "lib/libjemalloc.so.2");
    free(path);
    if (restore) {
        setenv("CONDA_PREFIX", restore, 1);
        free(restore);
    } else {
        unsetenv("CONDA_PREFIX");
    }
    remove_tree(root);
}

static void test_system_search(void **state)
{
    (void)state;
    char *empty[] = {NULL};
    for (int lib = 0; lib < PF_LIBRARY_COUNT; lib++) {
        char *path;
        int rc = find((pf_library)lib, empty, true, &path);
        if (rc == -ENOENT) {
            assert_null(path);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_non_null(path);
        assert_int_equal(path[0], '/');
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        free(path);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char *path = NULL;
    assert_int_equal(pf_library_find(PF_LIBRARY_COUNT, NULL, false, &path), -EINVAL);
    assert_int_equal(pf_library_find((pf_library)-1, NULL, false, &path), -EINVAL);
    assert_int_equal(pf_library_find(PF_LIBRARY_TCMALLOC, NULL, false, NULL), -EINVAL);
    assert_null(path);
}

static void test_names(void **state)
{
    (void)state;
    const char *want[] = {"tcmalloc", "jemalloc", "iomp"};
    for (int lib = 0; lib < PF_LIBRARY_COUNT; lib++) {
        assert_string_equal(pf_library_name((pf_library)lib), want[lib]);
        const char *pkg = pf_library_package((pf_library)lib);
        assert_non_null(pkg);
        assert_true(strlen(pkg) > 0);
    }
    assert_string_equal(pf_library_package(PF_LIBRARY_TCMALLOC), "libgoogle-perftools4");
    assert_string_equal(pf_library_package(PF_LIBRARY_JEMALLOC), "libjemalloc2");
    assert_non_null(pf_library_name(PF_LIBRARY_COUNT));
    assert_non_null(pf_library_package(PF_LIBRARY_COUNT));
}

/* ------------------------------------------------------------------------ */
/* The loader cache                                                          */

#define FLAGS 0x0303 /* any value: the tests pass it explicitly */

typedef struct entry {
    int32_t flags;
    const char *key, *value;
    uint64_t hwcap;
} entry;

typedef struct image {
    char buf[4096];
    size_t len;
} image;

static void put32(char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}
static void put64(char *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

/* Append a string at the end of the image; returns its offset from `base`. */
static uint32_t add_string(image *img, size_t base, const char *s)
{
    size_t len = strlen(s) + 1;
    assert_true(img->len + len <= sizeof img->buf);
    memcpy(img->buf + img->len, s, len);
    img->len += len;
    return (uint32_t)(img->len - len - base);
}

/* A new-format cache ("glibc-ld.so.cache1.1") at img->len. */
static void add_new_cache(image *img, const entry *e, size_t n)
{
    size_t base = img->len;
    memset(img->buf + base, 0, 48 + 24 * n);
    memcpy(img->buf + base, "glibc-ld.so.cache1.1", 20);
    put32(img->buf + base + 20, (uint32_t)n);
    img->buf[base + 28] = 2; /* little endian */
    img->len = base + 48 + 24 * n;
    for (size_t i = 0; i < n; i++) {
        char *p = img->buf + base + 48 + 24 * i;
        put32(p, (uint32_t)e[i].flags);
        put32(p + 4, add_string(img, base, e[i].key));
        put32(p + 8, add_string(img, base, e[i].value));
        put64(p + 16, e[i].hwcap);
    }
}

/* An old-format cache ("ld.so-1.7.0"); with `then_new`, a new one follows it. */
static void add_old_cache(image *img, const entry *e, size_t n, bool then_new)
{
    memset(img->buf, 0, 16 + 12 * n);
    memcpy(img->buf, "ld.so-1.7.0", 11);
    put32(img->buf + 12, (uint32_t)n);
    img->len = 16 + 12 * n;
    if (then_new) {
        /* Old entries point nowhere useful; the new cache is what is read. */
        for (size_t i = 0; i < n; i++)
            put32(img->buf + 16 + 12 * i, (uint32_t)e[i].flags);
        img->len = (img->len + 7) & ~(size_t)7;
        add_new_cache(img, e, n);
        return;
    }
    size_t strings = img->len;
    for (size_t i = 0; i < n; i++) {
        char *p = img->buf + 16 + 12 * i;
        put32(p, (uint32_t)e[i].flags);
        put32(p + 4, add_string(img, strings, e[i].key));
        put32(p + 8, add_string(img, strings, e[i].value));
    }
}

static const entry sample[] = {
    {FLAGS, "libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 0},
    {0x0003, "libtcmalloc.so.4", "/usr/lib32/libtcmalloc.so.4", 0},          /* another ABI */
    {FLAGS, "libtcmalloc.so.4", "/usr/lib/hw/libtcmalloc.so.4", 1ull << 62}, /* hwcap copy */
    {FLAGS, "libtcmalloc.so.4", "/opt/a/libtcmalloc.so.4", 0},
    {FLAGS, "libtcmalloc.so.4", "/opt/b/libtcmalloc.so.4", 0},
    {FLAGS, "libjemalloc.so.2", "/opt/c/libjemalloc.so.2", 0},
};
#define NSAMPLE (sizeof sample / sizeof sample[0])

static void check_sample(const image *img)
{
    size_t pos = 0;
    const char *v = pf__ldcache_lookup(img->buf, img->len, "libtcmalloc.so.4", FLAGS, &pos);
    assert_non_null(v);
    assert_string_equal(v, "/opt/a/libtcmalloc.so.4");
    v = pf__ldcache_lookup(img->buf, img->len, "libtcmalloc.so.4", FLAGS, &pos);
    assert_non_null(v);
    assert_string_equal(v, "/opt/b/libtcmalloc.so.4");
    assert_null(pf__ldcache_lookup(img->buf, img->len, "libtcmalloc.so.4", FLAGS, &pos));
    pos = 0;
    v = pf__ldcache_lookup(img->buf, img->len, "libjemalloc.so.2", FLAGS, &pos);
    assert_non_null(v);
    assert_string_equal(v, "/opt/c/libjemalloc.so.2");
    pos = 0;
    assert_null(pf__ldcache_lookup(img->buf, img->len, "libomp.so.5", FLAGS, &pos));
    pos = 0;
    v = pf__ldcache_lookup(img->buf, img->len, "libtcmalloc.so.4", 0x0003, &pos);
    assert_non_null(v);
    assert_string_equal(v, "/usr/lib32/libtcmalloc.so.4");
}

static void test_ldcache_formats(void **state)
{
    (void)state;
    image *img = calloc(1, sizeof *img);
    assert_non_null(img);
    add_new_cache(img, sample, NSAMPLE);
    check_sample(img);

    memset(img, 0, sizeof *img);
    add_old_cache(img, sample, NSAMPLE, true);
    check_sample(img);

    /* The old format alone has no hwcap field: skip the entry that needs it. */
    entry old[NSAMPLE];
    size_t n = 0;
    for (size_t i = 0; i < NSAMPLE; i++)
        if (sample[i].hwcap == 0)
            old[n++] = sample[i];
    memset(img, 0, sizeof *img);
    add_old_cache(img, old, n, false);
    check_sample(img);
    free(img);
}

/* Every prefix and every corrupted byte of a cache is handled without a fault. */
static void test_ldcache_malformed(void **state)
{
    (void)state;
    image *img = calloc(1, sizeof *img);
    assert_non_null(img);
    add_old_cache(img, sample, NSAMPLE, true);
    size_t full = img->len;
    for (size_t len = 0; len <= full; len++) {
        /* A copy of exactly len bytes, so that ASan sees any read past it. */
        char *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, img->buf, len);
        size_t pos = 0;
        while (pf__ldcache_lookup(copy, len, "libtcmalloc.so.4", FLAGS, &pos))
            ;
        free(copy);
    }
    for (size_t at = 0; at < full; at++) {
        for (int v = 0; v < 4; v++) {
            const unsigned char values[] = {0x00, 0xff, 0x7f, 0x80};
            char *copy = malloc(full);
            assert_non_null(copy);
            memcpy(copy, img->buf, full);
            copy[at] = (char)values[v];
            size_t pos = 0;
            while (pf__ldcache_lookup(copy, full, "libtcmalloc.so.4", FLAGS, &pos))
                ;
            free(copy);
        }
    }

    /* Specific lies: too many entries, offsets past the end, no terminating NUL. */
    memset(img, 0, sizeof *img);
    add_new_cache(img, sample, NSAMPLE);
    size_t pos = 0;
    put32(img->buf + 20, 0xffffffffu);
    assert_null(pf__ldcache_lookup(img->buf, img->len, "libc.so.6", FLAGS, &pos));
    put32(img->buf + 20, (uint32_t)NSAMPLE);
    put32(img->buf + 48 + 8, 0xfffffff0u); /* libc.so.6's value */
    pos = 0;
    assert_null(pf__ldcache_lookup(img->buf, img->len, "libc.so.6", FLAGS, &pos));
    img->buf[img->len - 1] = 'x'; /* the last string loses its NUL */
    pos = 0;
    assert_null(pf__ldcache_lookup(img->buf, img->len, "libjemalloc.so.2", FLAGS, &pos));
    img->buf[img->len - 1] = '\0';
    img->buf[28] = 3; /* big endian */
    pos = 0;
    assert_null(pf__ldcache_lookup(img->buf, img->len, "libjemalloc.so.2", FLAGS, &pos));
    assert_null(pf__ldcache_lookup(NULL, 0, "libc.so.6", FLAGS, &pos));
    assert_null(pf__ldcache_lookup("not a cache at all, just text", 29, "libc.so.6", FLAGS, &pos));
    free(img);
}

/* This machine's cache knows its C library, with the flags of this process's ABI. */
static void test_ldcache_real(void **state)
{
    (void)state;
    int fd = open("/etc/ld.so.cache", O_RDONLY);
    if (fd < 0)
        skip();
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    assert_true(map != MAP_FAILED);
    size_t pos = 0;
    const char *libc = pf__ldcache_lookup(map, (size_t)st.st_size, "libc.so.6", -1, &pos);
    assert_non_null(libc);
    assert_int_equal(libc[0], '/');
    assert_non_null(strstr(libc, "/libc.so.6"));
    assert_int_equal(access(libc, R_OK), 0);
    munmap(map, (size_t)st.st_size);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_found_in_conda),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_what_counts_as_a_library),
        cmocka_unit_test(test_empty_tree),
        cmocka_unit_test(test_process_environment),
        cmocka_unit_test(test_system_search),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_ldcache_formats),
        cmocka_unit_test(test_ldcache_malformed),
        cmocka_unit_test(test_ldcache_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
