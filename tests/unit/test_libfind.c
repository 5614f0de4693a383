/*
 * test_libfind.c - finding tcmalloc, jemalloc and the OpenMP runtime: the
 * directory order, the names, what may be preloaded (pf_library_check: a
 * table of files that are or are not fit), and the loader-cache parser (on
 * built images, malformed ones and this machine's /etc/ld.so.cache).
 *
 * The libraries of the fake trees are copies of
 * tests/fixtures/libtree/lib/libtcmalloc.so.4, a minimal ELF shared object
 * of this machine (tests/fixtures/make_libtree.sh); the unfit ones are
 * made here: text, patched headers, modes, owners.
 */
#include "pf_test.h"
#include "plan/libfind.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <grp.h>
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

/* Write bytes to root/rel (mode 0644), creating the parents (0755). */
static void put_file(const char *root, const char *rel, const void *data, size_t len)
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
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, 0644), 0); /* whatever the umask */
    close(fd);
}

/* A minimal ELF shared object of this machine (the committed fixture's bytes). */
static char *good_library(size_t *len)
{
    FILE *f = fopen(fixture("libtree/lib/libtcmalloc.so.4"), "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 16);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    assert_true(*len >= sizeof(Elf64_Ehdr));
    assert_memory_equal(buf, ELFMAG, SELFMAG);
    return buf;
}

/* A library at root/rel that pinfer may preload. */
static void touch(const char *root, const char *rel)
{
    size_t len;
    char *lib = good_library(&len);
    put_file(root, rel, lib, len);
    free(lib);
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

/* ------------------------------------------------------------------------ */
/* What may be preloaded                                                     */

typedef enum candidate_kind {
    GOOD,          /* the fixture's bytes: an ELF shared object of this machine */
    TEXT,          /* "not a library" */
    EMPTY,         /* an empty file */
    OTHER_CLASS,   /* EI_CLASS patched: a 32-bit ELF for a 64-bit process (or the reverse) */
    OTHER_ORDER,   /* EI_DATA patched */
    EXEC,          /* e_type ET_EXEC: an executable */
    REL,           /* e_type ET_REL: an object file */
    OTHER_MACHINE, /* e_machine of another architecture */
    TRUNCATED,     /* the first 20 bytes of a good one */
    DIRECTORY,     /* a directory with the library's name */
    FIFO,          /* a named pipe: must not block the search */
    LINK_GOOD,     /* a symbolic link to a good library in root/real */
    LINK_DANGLING, /* a symbolic link to nothing */
    LINK_OPEN_DIR, /* a symbolic link to a good library in a world-writable directory */
} candidate_kind;

typedef struct check_case {
    const char *name;
    candidate_kind kind;
    mode_t mode;      /* the file's mode; 0: 0644 */
    mode_t dir_mode;  /* the mode of the directory holding it; 0: 0755 */
    long uid, gid;    /* the file's owner and group; -1: this process's (other: needs root) */
    long dir_gid;     /* the directory's group; -1: this process's */
    const char *skip; /* NULL: found; "": no candidate (nothing said); else the reason given */
} check_case;

#define ME (-1)
#define NOBODY_ID 54321 /* a user and group id nobody has */

static const check_case CHECKS[] = {
    {"a good library", GOOD, 0, 0, ME, ME, ME, NULL},
    {"a symbolic link to a good library", LINK_GOOD, 0, 0, ME, ME, ME, NULL},
    {"read-only, executable", GOOD, 0555, 0, ME, ME, ME, NULL},
    {"in a sticky world-writable directory, ours", GOOD, 0, 01777, ME, ME, ME, NULL},
    {"a text file", TEXT, 0, 0, ME, ME, ME, "is not an ELF file"},
    {"an empty file", EMPTY, 0, 0, ME, ME, ME, "is not an ELF file"},
    {"world-writable", GOOD, 0666, 0, ME, ME, ME, "is writable by everyone (mode 0666)"},
    {"world-writable text, the issue's", TEXT, 0666, 0, ME, ME, ME, "is writable by everyone"},
    {"a directory", DIRECTORY, 0, 0, ME, ME, ME, "is a directory"},
    {"a named pipe", FIFO, 0, 0, ME, ME, ME, "is not a regular file"},
    {"the other ELF class (32-bit on x86-64)", OTHER_CLASS, 0, 0, ME, ME, ME,
     "-bit ELF file, and this process is"},
    {"the other byte order", OTHER_ORDER, 0, 0, ME, ME, ME,
     "is an ELF file of the other byte order"},
    {"an executable (ET_EXEC)", EXEC, 0, 0, ME, ME, ME, "is not a shared object but an executable"},
    {"an object file (ET_REL)", REL, 0, 0, ME, ME, ME,
     "is not a shared object but a relocatable object"},
    {"another machine", OTHER_MACHINE, 0, 0, ME, ME, ME, "is for another machine"},
    {"a truncated header", TRUNCATED, 0, 0, ME, ME, ME, "is a truncated ELF file"},
    {"in a world-writable directory", GOOD, 0, 0777, ME, ME, ME,
     "which everyone may write (mode 0777)"},
    {"a link into a world-writable directory", LINK_OPEN_DIR, 0, 0, ME, ME, ME,
     "which everyone may write (mode 0777)"},
    {"a dangling symbolic link", LINK_DANGLING, 0, 0, ME, ME, ME, ""},
    /* owners and groups: root only (chown) */
    {"group-writable by a group of nobody", GOOD, 0664, 0, ME, NOBODY_ID, ME,
     "is writable by group 54321 (mode 0664)"},
    {"group-writable by root's group", GOOD, 0664, 0, ME, 0, ME, NULL},
    {"another owner, not writable by others", GOOD, 0644, 0, NOBODY_ID, NOBODY_ID, ME, NULL},
    {"in a directory writable by a group of nobody", GOOD, 0, 0775, ME, ME, NOBODY_ID,
     "which group 54321 may write (mode 0775)"},
    {"someone else's in a sticky world-writable directory", GOOD, 0, 01777, NOBODY_ID, NOBODY_ID,
     ME, "belongs to uid 54321 and is in"},
};

static bool needs_root(const check_case *c)
{
    return c->uid != ME || c->gid != ME || c->dir_gid != ME;
}

/* A good library with the header byte at `at` (of 16-bit field when wide) set to v. */
static void put_patched(const char *root, const char *rel, size_t at, unsigned v, bool wide)
{
    size_t len;
    char *lib = good_library(&len);
    if (wide) {
        uint16_t x = (uint16_t)v;
        memcpy(lib + at, &x, sizeof x);
    } else {
        lib[at] = (char)v;
    }
    put_file(root, rel, lib, len);
    free(lib);
}

/* Make the candidate root/lib/libtcmalloc.so of this kind. */
static void make_candidate(const char *root, const check_case *c)
{
    const char *rel = "lib/libtcmalloc.so";
    char path[4096], target[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    size_t len;
    char *good = good_library(&len);
    uint16_t machine;
    memcpy(&machine, good + 18, sizeof machine);
    switch (c->kind) {
    case GOOD: put_file(root, rel, good, len); break;
    case TEXT: put_file(root, rel, "not a library\n", 14); break;
    case EMPTY: put_file(root, rel, "", 0); break;
    case OTHER_CLASS:
        put_patched(root, rel, EI_CLASS, good[EI_CLASS] == ELFCLASS64 ? ELFCLASS32 : ELFCLASS64,
                    false);
        break;
    case OTHER_ORDER:
        put_patched(root, rel, EI_DATA, good[EI_DATA] == ELFDATA2LSB ? ELFDATA2MSB : ELFDATA2LSB,
                    false);
        break;
    case EXEC: put_patched(root, rel, 16, ET_EXEC, true); break;
    case REL: put_patched(root, rel, 16, ET_REL, true); break;
    case OTHER_MACHINE:
        put_patched(root, rel, 18, machine == EM_AARCH64 ? EM_X86_64 : EM_AARCH64, true);
        break;
    case TRUNCATED: put_file(root, rel, good, 20); break;
    case DIRECTORY:
        touch(root, "lib/placeholder");
        assert_int_equal(mkdir(path, 0755), 0);
        break;
    case FIFO:
        touch(root, "lib/placeholder");
        assert_int_equal(mkfifo(path, 0644), 0);
        break;
    case LINK_GOOD:
    case LINK_OPEN_DIR:
        touch(root, "real/libtcmalloc.so.4.5.9");
        touch(root, "lib/placeholder");
        snprintf(target, sizeof target, "%s/real/libtcmalloc.so.4.5.9", root);
        assert_int_equal(symlink(target, path), 0);
        if (c->kind == LINK_OPEN_DIR) {
            snprintf(target, sizeof target, "%s/real", root);
            assert_int_equal(chmod(target, 0777), 0);
        }
        break;
    case LINK_DANGLING:
        touch(root, "lib/placeholder");
        assert_int_equal(symlink("/nonexistent/libtcmalloc.so.4", path), 0);
        break;
    }
    free(good);
    if (c->mode)
        assert_int_equal(chmod(path, c->mode), 0);
    if (c->uid != ME || c->gid != ME)
        assert_int_equal(chown(path, c->uid == ME ? (uid_t)-1 : (uid_t)c->uid,
                               c->gid == ME ? (gid_t)-1 : (gid_t)c->gid),
                         0);
    snprintf(path, sizeof path, "%s/lib", root);
    if (c->dir_gid != ME)
        assert_int_equal(chown(path, (uid_t)-1, (gid_t)c->dir_gid), 0);
    assert_int_equal(chmod(path, c->dir_mode ? c->dir_mode : 0755), 0);
}

/* Search a tree holding only this candidate; returns the number of failures. */
static int run_check(const check_case *c)
{
    char *root = tree();
    make_candidate(root, c);
    char *conda = env_entry("CONDA_PREFIX", root);
    char *envp[] = {conda, NULL};
    char *path = NULL, **skipped = NULL, want[4096];
    snprintf(want, sizeof want, "%s/lib/libtcmalloc.so", root);
    int rc = pf_library_search(PF_LIBRARY_TCMALLOC, envp, false, &path, &skipped);
    int failures = 0;
    if (!c->skip) {
        if (rc != 0 || !path || strcmp(path, want) != 0 || skipped) {
            print_error("%s: expected %s found, got %d %s, %s\n", c->name, want, rc,
                        path ? path : "(none)", skipped ? skipped[0] : "nothing skipped");
            failures++;
        }
        char *why = NULL;
        if (pf_library_check(want, &why) != 0) {
            print_error("%s: pf_library_check: %s\n", c->name, why ? why : "?");
            failures++;
        }
        free(why);
    } else if (!*c->skip) {
        if (rc != -ENOENT || path || skipped) {
            print_error("%s: expected nothing, got %d %s\n", c->name, rc,
                        skipped ? skipped[0]
                        : path  ? path
                                : "");
            failures++;
        }
    } else {
        const char *line = skipped ? skipped[0] : NULL;
        size_t n = strlen(line ? line : "");
        if (rc != -ENOENT || path || !line || skipped[1] || strncmp(line, want, strlen(want)) ||
            !strstr(line, c->skip) || n < 15 || strcmp(line + n - 15, ": not preloaded") != 0) {
            print_error("%s: expected '%s ... %s ...: not preloaded', got %d %s\n", c->name, want,
                        c->skip, rc,
                        line   ? line
                        : path ? path
                               : "nothing");
            failures++;
        }
        char *why = NULL;
        int code = pf_library_check(want, &why);
        if (code >= 0 || !why || !strstr(why, c->skip)) {
            print_error("%s: pf_library_check: %d %s\n", c->name, code, why ? why : "?");
            failures++;
        }
        free(why);
    }
    free(path);
    pf_strv_free(skipped);
    free(conda);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/real", root);
    chmod(dir, 0755);
    remove_tree(root);
    return failures;
}

/* The table, without the rows that need root. */
static void test_what_may_be_preloaded(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof CHECKS / sizeof *CHECKS; i++)
        if (!needs_root(&CHECKS[i]))
            failures += run_check(&CHECKS[i]);
    assert_int_equal(failures, 0);
}

/* The rows that change a file's owner or group. */
static void test_what_may_be_preloaded_owners(void **state)
{
    (void)state;
    if (geteuid() != 0)
        SKIP_BECAUSE("changes files' owners: needs root");
    int failures = 0;
    for (size_t i = 0; i < sizeof CHECKS / sizeof *CHECKS; i++)
        if (needs_root(&CHECKS[i]))
            failures += run_check(&CHECKS[i]);
    assert_int_equal(failures, 0);
}

/*
 * Group write by the owner's private group (named as the owner, its primary
 * group, no other member) is the owner's own: Debian and Ubuntu users with
 * umask 002 have such files.  Any such account of this machine will do.
 */
static void test_private_group(void **state)
{
    (void)state;
    if (geteuid() != 0)
        SKIP_BECAUSE("changes a file's owner: needs root");
    struct passwd *pw;
    uid_t uid = 0;
    gid_t gid = 0;
    setpwent();
    while ((pw = getpwent()) != NULL && uid == 0) {
        struct group *gr = pw->pw_uid != 0 ? getgrgid(pw->pw_gid) : NULL;
        if (gr && strcmp(gr->gr_name, pw->pw_name) == 0 && (!gr->gr_mem || !gr->gr_mem[0])) {
            uid = pw->pw_uid;
            gid = pw->pw_gid;
        }
    }
    endpwent();
    if (uid == 0)
        SKIP_BECAUSE("no account of this machine has a private group");
    check_case c = {"group-writable by the owner's private group",
                    GOOD,
                    0664,
                    0,
                    (long)uid,
                    (long)gid,
                    ME,
                    NULL};
    assert_int_equal(run_check(&c), 0);
}

/* A file passed over does not end the search: the next name, the next directory. */
static void test_search_goes_on(void **state)
{
    (void)state;
    char *a = tree(), *b = tree();
    put_file(a, "lib/libtcmalloc.so", "not a library\n", 14);
    touch(a, "lib/libtcmalloc.so.4");
    put_file(b, "lib/libjemalloc.so", "not a library\n", 14);
    put_file(b, "lib/libjemalloc.so.2", "not a library either\n", 21);
    touch(b, ".local/lib/libjemalloc.so.2");
    char *conda = env_entry("CONDA_PREFIX", a), *venv = env_entry("VIRTUAL_ENV", b),
         *home = env_entry("HOME", b);
    char *envp[] = {conda, venv, home, NULL};
    char *path = NULL, **skipped = NULL;
    assert_int_equal(pf_library_search(PF_LIBRARY_TCMALLOC, envp, false, &path, &skipped), 0);
    expect_path(path, a, "lib/libtcmalloc.so.4");
    free(path);
    assert_non_null(skipped);
    assert_non_null(strstr(skipped[0], "/lib/libtcmalloc.so is not an ELF file: not preloaded"));
    assert_null(skipped[1]);
    /* the list grows over calls, and says each file once */
    assert_int_equal(pf_library_search(PF_LIBRARY_JEMALLOC, envp, false, &path, &skipped), 0);
    expect_path(path, b, ".local/lib/libjemalloc.so.2");
    free(path);
    assert_int_equal(pf_library_search(PF_LIBRARY_JEMALLOC, envp, false, &path, &skipped), 0);
    free(path);
    assert_non_null(skipped[1]);
    assert_non_null(strstr(skipped[1], "lib/libjemalloc.so is not an ELF file"));
    assert_non_null(skipped[2]);
    assert_non_null(strstr(skipped[2], "lib/libjemalloc.so.2 is not an ELF file"));
    assert_null(skipped[3]);
    pf_strv_free(skipped);
    /* pf_library_find says nothing, and finds the same */
    assert_int_equal(find(PF_LIBRARY_TCMALLOC, envp, false, &path), 0);
    expect_path(path, a, "lib/libtcmalloc.so.4");
    free(path);
    /* pf_library_check's own errors */
    char *why = NULL;
    assert_int_equal(pf_library_check(NULL, &why), -EINVAL);
    free(why);
    why = NULL;
    assert_int_equal(pf_library_check("/nonexistent/libx.so", &why), -ENOENT);
    assert_non_null(why);
    assert_string_equal(why, "/nonexistent/libx.so does not exist");
    free(why);
    assert_int_equal(pf_library_check("/nonexistent/libx.so", NULL), -ENOENT);
    free(conda);
    free(venv);
    free(home);
    remove_tree(a);
    remove_tree(b);
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
        cmocka_unit_test(test_what_may_be_preloaded),
        cmocka_unit_test(test_what_may_be_preloaded_owners),
        cmocka_unit_test(test_private_group),
        cmocka_unit_test(test_search_goes_on),
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
