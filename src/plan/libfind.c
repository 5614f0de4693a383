/*
 * libfind.c - finding the libraries a launcher preloads (tcmalloc, jemalloc,
 * Intel's or LLVM's OpenMP runtime) in the order docs/libraries.md gives.
 *
 * A launcher does this at every start, so it is a handful of stat() calls and,
 * only when no directory has the library, one read of the dynamic loader's
 * cache, parsed here rather than by running `ldconfig -p` (a fork and exec
 * that would cost more than the rest of the start-up).  docs/libraries.md
 * tells the decisions.
 */
#include "pinfer.h"
#include "base/util.h"
#include "plan/libfind.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * Try each file name in dir + suffix.  `dir` may end in slashes; a relative
 * or empty dir is skipped: the path goes into LD_PRELOAD, which must not
 * depend on the working directory of the program.  Returns 0 (found, *path
 * set), -ENOENT or -ENOMEM.
 */
static int try_dir(const char *dir, const char *suffix, const library_desc *lib, char **path)
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
        if (is_file(buf)) {
            *path = strdup(buf);
            return *path ? 0 : -ENOMEM;
        }
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
static int try_ldcache(const library_desc *lib, char **path)
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
        while ((found = pf__ldcache_lookup(map, size, lib->files[i], -1, &pos)) != NULL) {
            if (found[0] == '/' && is_file(found)) {
                *path = strdup(found);
                rc = *path ? 0 : -ENOMEM;
                break;
            }
        }
    }
    munmap(map, size);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The search                                                                */

int pf_library_find(pf_library lib, char *const *envp, bool system, char **path)
{
    if ((unsigned)lib >= PF_LIBRARY_COUNT || !path)
        return -EINVAL;
    const library_desc *desc = &libraries[lib];
    const struct {
        const char *var, *suffix;
    } env_dirs[] = {{"CONDA_PREFIX", "/lib"}, {"VIRTUAL_ENV", "/lib"}, {"HOME", "/.local/lib"}};

    for (size_t i = 0; i < sizeof env_dirs / sizeof env_dirs[0]; i++) {
        int rc = try_dir(env_get(envp, env_dirs[i].var), env_dirs[i].suffix, desc, path);
        if (rc != -ENOENT)
            return rc;
    }
    if (!system)
        return -ENOENT;
    for (size_t i = 0; i < sizeof system_dirs / sizeof system_dirs[0]; i++) {
        int rc = try_dir(system_dirs[i], "", desc, path);
        if (rc != -ENOENT)
            return rc;
    }
    return try_ldcache(desc, path);
}
