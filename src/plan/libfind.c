/*
 * libfind.c - finding the libraries a launcher preloads (tcmalloc, jemalloc,
 * Intel's or LLVM's OpenMP runtime) in the order docs/libraries.md gives.
 *
 * A launcher does this at every start, so it is a handful of stat() calls and,
 * only when no directory has the library, one read of the dynamic loader's
 * cache, parsed here rather than by running `ldconfig -p` (a fork and exec
 * that would cost more than the rest of the start-up).  Every file found is
 * checked before it is returned (pf_library_check): it goes into LD_PRELOAD
 * of processes that may run as root, from directories that are the user's.
 * docs/libraries.md tells the decisions.
 */
#include "pinfer.h"
#include "base/util.h"
#include "plan/libfind.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* What to look for                                                          */

typedef struct library_desc {
    const char *name;
    const char *package;
    const char *files[5]; /* in order of preference, NULL-terminated */
} library_desc;

static const library_desc libraries[PF_LIBRARY_COUNT] = {
    [PF_LIBRARY_TCMALLOC] = {"tcmalloc",
                             "libgoogle-perftools4",
                             {"libtcmalloc.so", "libtcmalloc.so.4", NULL}},
    [PF_LIBRARY_JEMALLOC] = {"jemalloc",
                             "libjemalloc2",
                             {"libjemalloc.so", "libjemalloc.so.2", NULL}},
    [PF_LIBRARY_IOMP] = {"iomp",
                         "libomp5",
                         {"libiomp5.so", "libomp.so.5", "libomp.so", "libomp5.so", NULL}},
};

const char *pf_library_name(pf_library lib)
{
    if ((unsigned)lib >= PF_LIBRARY_COUNT)
        return "unknown";
    return libraries[lib].name;
}

const char *pf_library_package(pf_library lib)
{
    if ((unsigned)lib >= PF_LIBRARY_COUNT)
        return "unknown";
    return libraries[lib].package;
}

/* The Debian multiarch triplet of the machine we are built for. */
#if defined(__x86_64__) && defined(__ILP32__)
#define MULTIARCH "x86_64-linux-gnux32"
#elif defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__i386__)
#define MULTIARCH "i386-linux-gnu"
#elif defined(__aarch64__) && defined(__AARCH64EB__)
#define MULTIARCH "aarch64_be-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#elif defined(__arm__) && defined(__ARM_PCS_VFP)
#define MULTIARCH "arm-linux-gnueabihf"
#elif defined(__arm__)
#define MULTIARCH "arm-linux-gnueabi"
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define MULTIARCH "powerpc64le-linux-gnu"
#elif defined(__powerpc64__)
#define MULTIARCH "powerpc64-linux-gnu"
#elif defined(__s390x__)
#define MULTIARCH "s390x-linux-gnu"
#elif defined(__riscv) && __riscv_xlen == 64
#define MULTIARCH "riscv64-linux-gnu"
#elif defined(__loongarch64)
#define MULTIARCH "loongarch64-linux-gnu"
#elif defined(__mips64) && defined(__MIPSEL__)
#define MULTIARCH "mips64el-linux-gnuabi64"
#endif

static const char *const system_dirs[] = {
    "/usr/local/lib",
    "/usr/local/lib64",
#ifdef MULTIARCH
    ("/usr/lib/" MULTIARCH),
#endif
    "/usr/lib",
    "/usr/lib64",
};

/* ------------------------------------------------------------------------ */
/* Directories                                                               */

/* NAME's value in envp, or in the process's environment when envp is NULL. */
static const char *env_get(char *const *envp, const char *name)
{
    return envp ? pf__envp_get(envp, name) : getenv(name);
}

/* ------------------------------------------------------------------------ */
/* Is it fit to preload?                                                     */

/* The ELF class, byte order and machine of the libraries this process loads. */
#if UINTPTR_MAX > 0xffffffffu
#define NATIVE_CLASS ELFCLASS64
#define NATIVE_BITS "64-bit"
#else
#define NATIVE_CLASS ELFCLASS32
#define NATIVE_BITS "32-bit"
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define NATIVE_DATA ELFDATA2MSB
#else
#define NATIVE_DATA ELFDATA2LSB
#endif
#if defined(__x86_64__)
#define NATIVE_MACHINE EM_X86_64
#elif defined(__i386__)
#define NATIVE_MACHINE EM_386
#elif defined(__aarch64__)
#define NATIVE_MACHINE EM_AARCH64
#elif defined(__arm__)
#define NATIVE_MACHINE EM_ARM
#elif defined(__powerpc64__)
#define NATIVE_MACHINE EM_PPC64
#elif defined(__powerpc__)
#define NATIVE_MACHINE EM_PPC
#elif defined(__s390x__) || defined(__s390__)
#define NATIVE_MACHINE EM_S390
#elif defined(__riscv)
#define NATIVE_MACHINE 243 /* EM_RISCV */
#elif defined(__loongarch__)
#define NATIVE_MACHINE 258 /* EM_LOONGARCH */
#elif defined(__mips__)
#define NATIVE_MACHINE EM_MIPS
#else
#define NATIVE_MACHINE 0 /* unknown here: not checked */
#endif

/*
 * Is gid the user-private group of uid: the group named as the user, whose
 * primary group it is, with no other member?  Then "writable by the group"
 * means writable by the owner alone (Debian and Ubuntu give every user such
 * a group and, for users, a umask of 002: their files are group-writable).
 */
static bool is_private_group(uid_t uid, gid_t gid)
{
    size_t size = 16384;
    char *buf = malloc(size);
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;
    bool own = false;
    if (buf && getpwuid_r(uid, &pw, buf, size / 2, &pwp) == 0 && pwp && pw.pw_gid == gid &&
        getgrgid_r(gid, &gr, buf + size / 2, size / 2, &grp) == 0 && grp &&
        strcmp(gr.gr_name, pw.pw_name) == 0) {
        own = true;
        for (size_t i = 0; gr.gr_mem && gr.gr_mem[i]; i++)
            own = own && strcmp(gr.gr_mem[i], pw.pw_name) == 0;
    }
    free(buf);
    return own;
}

/* May others than the owner and root write it?  Group 0 is root's. */
static bool others_may_write(const struct stat *st)
{
    return (st->st_mode & S_IWOTH) || ((st->st_mode & S_IWGRP) && st->st_gid != 0 &&
                                       !is_private_group(st->st_uid, st->st_gid));
}

/* "everyone", or "group <name>" (or its number) in buf, for messages. */
static const char *writers(const struct stat *st, char *buf, size_t size)
{
    if (st->st_mode & S_IWOTH)
        return "everyone";
    struct group gr, *grp = NULL;
    char names[4096];
    if (getgrgid_r(st->st_gid, &gr, names, sizeof names, &grp) == 0 && grp)
        snprintf(buf, size, "group %s", gr.gr_name);
    else
        snprintf(buf, size, "group %u", (unsigned)st->st_gid);
    return buf;
}

/*
 * The directory that holds `path` may be written by others than its owner
 * and root only if it has the sticky bit (as /tmp) and the entry belongs to
 * root or to the directory's owner: then nobody else may have put it there,
 * nor replace or rename it.
 */
static int check_dir(const char *path, const char *dir, uid_t entry_owner, char **why)
{
    struct stat ds;
    if (stat(dir, &ds) < 0) {
        int err = errno;
        return pf__fail(why, -err, "%s: its directory %s cannot be read: %s", path, dir,
                        strerror(err));
    }
    if (!others_may_write(&ds))
        return 0;
    char who[64];
    if (!(ds.st_mode & S_ISVTX))
        return pf__fail(why, -EPERM, "%s is in %s, which %s may write (mode %04o)", path, dir,
                        writers(&ds, who, sizeof who), (unsigned)(ds.st_mode & 07777));
    if (entry_owner != 0 && entry_owner != ds.st_uid)
        return pf__fail(why, -EPERM,
                        "%s belongs to uid %u and is in %s, which %s may write (mode %04o)", path,
                        (unsigned)entry_owner, dir, writers(&ds, who, sizeof who),
                        (unsigned)(ds.st_mode & 07777));
    return 0;
}

/* The directory part of path ("." when none), in buf. */
static const char *dir_of(const char *path, char *buf, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return ".";
    size_t len = slash == path ? 1 : (size_t)(slash - path);
    snprintf(buf, size, "%.*s", (int)len, path);
    return buf;
}

/* What an ELF type is, for messages. */
static const char *elf_type_name(unsigned type)
{
    switch (type) {
    case ET_REL: return "a relocatable object (.o)";
    case ET_EXEC: return "an executable";
    case ET_CORE: return "a core dump";
    default: return "of an unknown type";
    }
}

/* The header: an ELF shared object of this process's class, byte order and machine. */
static int check_elf(const char *path, int fd, char **why)
{
    unsigned char h[64]; /* sizeof (Elf64_Ehdr); Elf32_Ehdr is 52 */
    ssize_t n;
    do
        n = pread(fd, h, sizeof h, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int err = errno;
        return pf__fail(why, -err, "%s cannot be read: %s", path, strerror(err));
    }
    if ((size_t)n < EI_NIDENT || memcmp(h, ELFMAG, SELFMAG) != 0)
        return pf__fail(why, -ENOEXEC, "%s is not an ELF file", path);
    if (h[EI_CLASS] != NATIVE_CLASS)
        return pf__fail(why, -ENOEXEC, "%s is a %s ELF file, and this process is " NATIVE_BITS,
                        path, h[EI_CLASS] == ELFCLASS32 ? "32-bit" : "64-bit");
    if (h[EI_DATA] != NATIVE_DATA)
        return pf__fail(why, -ENOEXEC, "%s is an ELF file of the other byte order", path);
    size_t need = NATIVE_CLASS == ELFCLASS64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
    if ((size_t)n < need)
        return pf__fail(why, -ENOEXEC, "%s is a truncated ELF file", path);
    /* e_type and e_machine are at 16 and 18 in both classes, in the file's byte order. */
    uint16_t type, machine;
    memcpy(&type, h + 16, sizeof type);
    memcpy(&machine, h + 18, sizeof machine);
    if (type != ET_DYN)
        return pf__fail(why, -ENOEXEC, "%s is not a shared object but %s", path,
                        elf_type_name(type));
    if (NATIVE_MACHINE != 0 && machine != NATIVE_MACHINE)
        return pf__fail(why, -ENOEXEC, "%s is for another machine (ELF machine %u, not %u)", path,
                        (unsigned)machine, (unsigned)NATIVE_MACHINE);
    return 0;
}

int pf_library_check(const char *path, char **why)
{
    if (!path || !*path)
        return pf__fail(why, -EINVAL, "no library path");
    struct stat ls, st;
    if (lstat(path, &ls) < 0) {
        int err = errno;
        return err == ENOENT ? pf__fail(why, -ENOENT, "%s does not exist", path)
                             : pf__fail(why, -err, "%s cannot be read: %s", path, strerror(err));
    }
    /* O_NONBLOCK: a FIFO in the library's place must not block the launcher. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        return err == ENOENT ? pf__fail(why, -ENOENT, "%s is a dangling symbolic link", path)
                             : pf__fail(why, -err, "%s cannot be read: %s", path, strerror(err));
    }
    int rc = 0;
    char who[64];
    if (fstat(fd, &st) < 0) {
        int err = errno;
        rc = pf__fail(why, -err, "%s cannot be read: %s", path, strerror(err));
    } else if (S_ISDIR(st.st_mode))
        rc = pf__fail(why, -ENOEXEC, "%s is a directory", path);
    else if (!S_ISREG(st.st_mode))
        rc = pf__fail(why, -ENOEXEC, "%s is not a regular file", path);
    else if (others_may_write(&st))
        rc = pf__fail(why, -EPERM, "%s is writable by %s (mode %04o)", path,
                      writers(&st, who, sizeof who), (unsigned)(st.st_mode & 07777));
    else
        rc = check_elf(path, fd, why);
    close(fd);
    /* The directory of the name, and that of the file it leads to. */
    char dir[PATH_MAX];
    if (rc == 0)
        rc = check_dir(path, dir_of(path, dir, sizeof dir), ls.st_uid, why);
    char *real = rc == 0 && S_ISLNK(ls.st_mode) ? realpath(path, NULL) : NULL;
    if (real) {
        char real_dir[PATH_MAX];
        if (strcmp(dir_of(real, real_dir, sizeof real_dir), dir) != 0)
            rc = check_dir(path, real_dir, st.st_uid, why);
        free(real);
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Candidates                                                                */

/* The search's state: what it found, and what it passed over. */
typedef struct search {
    char **path;     /* the result */
    char ***skipped; /* NULL: not wanted */
    int rc;          /* -ENOMEM once an allocation failed */
} search;

static void note_skipped(search *s, const char *why)
{
    if (!s->skipped || s->rc)
        return;
    char *line = pf__strdupf("%s: not preloaded", why);
    if (!line) {
        s->rc = -ENOMEM;
        return;
    }
    size_t n = 0;
    for (; *s->skipped && (*s->skipped)[n]; n++)
        if (strcmp((*s->skipped)[n], line) == 0) { /* the cache can name a directory's file */
            free(line);
            return;
        }
    char **grown = realloc(*s->skipped, (n + 2) * sizeof *grown);
    if (!grown) {
        free(line);
        s->rc = -ENOMEM;
        return;
    }
    *s->skipped = grown;
    grown[n] = line;
    grown[n + 1] = NULL;
}

/*
 * A candidate that exists (stat() finds something) is taken if it passes
 * pf_library_check(), else noted and passed over.  Returns 0 (taken, *path
 * set), -ENOENT (go on) or -ENOMEM.
 */
static int try_file(search *s, const char *file)
{
    struct stat st;
    if (stat(file, &st) < 0)
        return -ENOENT; /* no such file, or a dangling link: not a candidate */
    char *why = NULL;
    if (pf_library_check(file, &why) < 0) {
        note_skipped(s, why ? why : file);
        free(why);
        return s->rc ? s->rc : -ENOENT;
    }
    *s->path = strdup(file);
    return *s->path ? 0 : -ENOMEM;
}

/*
 * Try each file name in dir + suffix.  `dir` may end in slashes; a relative
 * or empty dir is skipped: the path goes into LD_PRELOAD, which must not
 * depend on the working directory of the program.  Returns 0 (found, *path
 * set), -ENOENT or -ENOMEM.
 */
static int try_dir(search *s, const char *dir, const char *suffix, const library_desc *lib)
{
    if (!dir || dir[0] != '/')
        return -ENOENT;
    size_t dlen = strlen(dir);
    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    if (dlen == 1)
        dlen = 0; /* "/" + "/lib" */
    char buf[PATH_MAX];
    for (size_t i = 0; lib->files[i]; i++) {
        int n = snprintf(buf, sizeof buf, "%.*s%s/%s", (int)dlen, dir, suffix, lib->files[i]);
        if (n < 0 || (size_t)n >= sizeof buf)
            return -ENOENT;
        int rc = try_file(s, buf);
        if (rc != -ENOENT)
            return rc;
    }
    return -ENOENT;
}

/* ------------------------------------------------------------------------ */
/* The dynamic loader's cache                                                */

/*
 * /etc/ld.so.cache, as glibc's elf/cache.c writes it.  Two formats, the
 * second of which may follow the first in one file:
 *
 *   "ld.so-1.7.0"        header {magic[11], u32 nlibs} then nlibs entries
 *                        {i32 flags, u32 key, u32 value}; key and value are
 *                        offsets from the end of the entries.
 *   "glibc-ld.so.cache"  header {magic[17], version "1.1", u32 nlibs,
 *   "1.1"                u32 len_strings, u8 flags, 3 pad, u32 extension,
 *                        3 u32 unused} (48 bytes) then nlibs entries
 *                        {i32 flags, u32 key, u32 value, u32 osversion,
 *                        u64 hwcap} (24 bytes); key and value are offsets
 *                        from the start of this header.
 *
 * key is the library's file name (its soname), value its full path.  flags
 * names the ABI (ELF libc6 + the architecture's bits); hwcap is non-zero for
 * the copies built for CPU subsets (glibc-hwcaps directories), skipped here.
 * Every number comes from a file anyone with root can write, so each is
 * checked against the mapped size before use.
 */
#define OLD_MAGIC "ld.so-1.7.0"
#define OLD_HEADER 16u
#define OLD_ENTRY 12u
#define NEW_MAGIC "glibc-ld.so.cache1.1"
#define NEW_HEADER 48u
#define NEW_ENTRY 24u
#define LDCACHE_MAX_SIZE (256u << 20)

/* The flags of the entries this process can load, as glibc's _DL_CACHEDEFAULT_ID. */
#if defined(__x86_64__) && defined(__ILP32__)
#define LDCACHE_FLAGS 0x0803
#elif defined(__x86_64__)
#define LDCACHE_FLAGS 0x0303
#elif defined(__i386__)
#define LDCACHE_FLAGS 0x0003
#elif defined(__aarch64__)
#define LDCACHE_FLAGS 0x0a03
#elif defined(__arm__) && defined(__ARM_PCS_VFP)
#define LDCACHE_FLAGS 0x0903
#elif defined(__powerpc64__)
#define LDCACHE_FLAGS 0x0503
#elif defined(__s390x__)
#define LDCACHE_FLAGS 0x0403
#elif defined(__riscv) && __riscv_xlen == 64 && defined(__riscv_float_abi_double)
#define LDCACHE_FLAGS 0x1003
#elif defined(__loongarch64) && defined(__loongarch_double_float)
#define LDCACHE_FLAGS 0x1203
#else
#define LDCACHE_FLAGS (-1) /* unknown here: any ELF libc6 entry */
#endif
#define FLAG_TYPE_MASK 0x00ff
#define FLAG_ELF_LIBC6 0x0003

/* The alignment of the new header after the old entries (glibc's ALIGN_CACHE). */
struct new_entry_align {
    uint32_t a;
    uint64_t b;
};

static uint32_t rd32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint64_t rd64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The NUL-terminated string at base + off within [base, base + size), or NULL. */
static const char *cache_string(const char *base, size_t size, uint32_t off)
{
    if (off >= size || !memchr(base + off, '\0', size - off))
        return NULL;
    return base + off;
}

static bool flags_match(int32_t flags, int want)
{
    if (want >= 0)
        return flags == want;
    return (flags & FLAG_TYPE_MASK) == FLAG_ELF_LIBC6;
}

/*
 * Exposed for tests and fuzzing (no header: declared where used).
 * Look `name` up in a loader cache image data[0, size): returns the path of
 * the next entry at or after *pos whose key is name, whose flags are
 * `flags` (-1: this process's ABI) and which is not an hwcap subset copy,
 * and moves *pos past it; NULL when there is none or the image is not a
 * cache.  The path points into data.
 */
const char *pf__ldcache_lookup(const char *data, size_t size, const char *name, int flags,
                               size_t *pos);

const char *pf__ldcache_lookup(const char *data, size_t size, const char *name, int flags,
                               size_t *pos)
{
    if (!data || !name || !pos)
        return NULL;
    if (flags < 0)
        flags = LDCACHE_FLAGS;
    const char *hdr = NULL; /* the new-format header, if any */
    if (size >= NEW_HEADER && memcmp(data, NEW_MAGIC, sizeof NEW_MAGIC - 1) == 0) {
        hdr = data;
    } else if (size >= OLD_HEADER && memcmp(data, OLD_MAGIC, sizeof OLD_MAGIC - 1) == 0) {
        size_t nold = rd32(data + 12);
        if (nold > (size - OLD_HEADER) / OLD_ENTRY)
            return NULL;
        size_t end = OLD_HEADER + nold * OLD_ENTRY;
        size_t align = _Alignof(struct new_entry_align);
        size_t at = (end + align - 1) & ~(align - 1);
        if (at <= size && size - at >= NEW_HEADER &&
            memcmp(data + at, NEW_MAGIC, sizeof NEW_MAGIC - 1) == 0) {
            hdr = data + at;
        } else {
            /* Old format alone: strings start after the entries. */
            const char *strings = data + end;
            size_t ssize = size - end;
            for (size_t i = *pos; i < nold; i++) {
                const char *e = data + OLD_HEADER + i * OLD_ENTRY;
                if (!flags_match((int32_t)rd32(e), flags))
                    continue;
                const char *key = cache_string(strings, ssize, rd32(e + 4));
                const char *value = cache_string(strings, ssize, rd32(e + 8));
                if (key && value && strcmp(key, name) == 0) {
                    *pos = i + 1;
                    return value;
                }
            }
            *pos = nold;
            return NULL;
        }
    } else {
        return NULL;
    }

    size_t hsize = size - (size_t)(hdr - data);
    /* The header's flags byte names the byte order (glibc 2.33+): 0 unset, 2 little, 3 big. */
    uint8_t endian = (uint8_t)hdr[28] & 3;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    const uint8_t host_endian = 3;
#else
    const uint8_t host_endian = 2;
#endif
    if (endian != 0 && endian != host_endian)
        return NULL;
    size_t n = rd32(hdr + 20);
    if (n > (hsize - NEW_HEADER) / NEW_ENTRY)
        return NULL;
    for (size_t i = *pos; i < n; i++) {
        const char *e = hdr + NEW_HEADER + i * NEW_ENTRY;
        if (!flags_match((int32_t)rd32(e), flags) || rd64(e + 16) != 0)
            continue;
        const char *key = cache_string(hdr, hsize, rd32(e + 4));
        const char *value = cache_string(hdr, hsize, rd32(e + 8));
        if (key && value && strcmp(key, name) == 0) {
            *pos = i + 1;
            return value;
        }
    }
    *pos = n;
    return NULL;
}

/* Look the library up in /etc/ld.so.cache: 0 with *path, -ENOENT or -ENOMEM. */
static int try_ldcache(search *s, const library_desc *lib)
{
    int fd = open("/etc/ld.so.cache", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -ENOENT;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uintmax_t)st.st_size > LDCACHE_MAX_SIZE) {
        close(fd);
        return -ENOENT;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return -ENOENT;
    int rc = -ENOENT;
    for (size_t i = 0; lib->files[i] && rc == -ENOENT; i++) {
        size_t pos = 0;
        const char *found;
        while (rc == -ENOENT &&
               (found = pf__ldcache_lookup(map, size, lib->files[i], -1, &pos)) != NULL)
            if (found[0] == '/')
                rc = try_file(s, found);
    }
    munmap(map, size);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The search                                                                */

int pf_library_find(pf_library lib, char *const *envp, bool system, char **path)
{
    return pf_library_search(lib, envp, system, path, NULL);
}

int pf_library_search(pf_library lib, char *const *envp, bool system, char **path, char ***skipped)
{
    if ((unsigned)lib >= PF_LIBRARY_COUNT || !path)
        return -EINVAL;
    *path = NULL;
    search s = {.path = path, .skipped = skipped};
    const library_desc *desc = &libraries[lib];
    const struct {
        const char *var, *suffix;
    } env_dirs[] = {{"CONDA_PREFIX", "/lib"}, {"VIRTUAL_ENV", "/lib"}, {"HOME", "/.local/lib"}};

    for (size_t i = 0; i < sizeof env_dirs / sizeof env_dirs[0]; i++) {
        int rc = try_dir(&s, env_get(envp, env_dirs[i].var), env_dirs[i].suffix, desc);
        if (rc != -ENOENT)
            return rc;
    }
    if (!system)
        return -ENOENT;
    for (size_t i = 0; i < sizeof system_dirs / sizeof system_dirs[0]; i++) {
        int rc = try_dir(&s, system_dirs[i], "", desc);
        if (rc != -ENOENT)
            return rc;
    }
    return try_ldcache(&s, desc);
}
