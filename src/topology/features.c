/*
 * features.c - the instruction-set features that matter for inference.
 *
 * On x86 a feature counts only when the CPU has it (CPUID) and the OS saves
 * the register state it needs (XCR0, read with XGETBV): AVX and FMA need the
 * YMM state, AVX-512 the opmask and ZMM states, AMX the tile states.  That is
 * what the kernel checks before it shows a flag in /proc/cpuinfo, so both
 * agree.  Elsewhere the "flags" line of /proc/cpuinfo is read (these are x86
 * names; other architectures report none of them).  No allocation, no state.
 */
#include "pinfer.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define PF_X86 1
#else
#include <fcntl.h>
#include <unistd.h>
#endif

enum {
    F_AVX2,
    F_FMA,
    F_AVX512F,
    F_AVX512_VNNI,
    F_AVX512_BF16,
    F_AVX512_FP16,
    F_AVX_VNNI,
    F_AMX_TILE,
    F_AMX_BF16,
    F_AMX_INT8,
    F_COUNT
};

/* The documented order; the names are /proc/cpuinfo's. */
static const char *const feature_names[F_COUNT] = {
    "avx2",        "fma",      "avx512f",  "avx512_vnni", "avx512_bf16",
    "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16",    "amx_int8",
};

#ifdef PF_X86

/* XCR0 state components. */
#define XCR0_SSE (1u << 1)
#define XCR0_YMM (1u << 2)
#define XCR0_OPMASK (1u << 5)
#define XCR0_ZMM_HI256 (1u << 6)
#define XCR0_HI16_ZMM (1u << 7)
#define XCR0_XTILECFG (1u << 17)
#define XCR0_XTILEDATA (1u << 18)

#define XCR0_AVX_STATE (XCR0_SSE | XCR0_YMM)
#define XCR0_AVX512_STATE (XCR0_AVX_STATE | XCR0_OPMASK | XCR0_ZMM_HI256 | XCR0_HI16_ZMM)
#define XCR0_AMX_STATE (XCR0_XTILECFG | XCR0_XTILEDATA)

static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    /* xgetbv, spelled as bytes for assemblers that predate the mnemonic. */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

/* A bit mask of the F_* features. */
static unsigned detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(1, 0, &a, &b, &c, &d))
        return 0;
    bool osxsave = c & bit_OSXSAVE, avx = c & bit_AVX, fma = c & bit_FMA;
    if (!osxsave || !avx)
        return 0; /* no AVX state without XSAVE enabled by the OS: none of these */
    uint64_t xcr0 = read_xcr0();
    bool ymm = (xcr0 & XCR0_AVX_STATE) == XCR0_AVX_STATE;
    bool zmm = (xcr0 & XCR0_AVX512_STATE) == XCR0_AVX512_STATE;
    bool tiles = (xcr0 & XCR0_AMX_STATE) == XCR0_AMX_STATE;
    if (!ymm)
        return 0;

    unsigned have = 0;
    if (fma)
        have |= 1u << F_FMA;
    unsigned b7 = 0, c7 = 0, d7 = 0, a71 = 0, max_subleaf = 0;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        max_subleaf = a;
        b7 = b;
        c7 = c;
        d7 = d;
    }
    if (max_subleaf >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
        a71 = a;

    if (b7 & (1u << 5))
        have |= 1u << F_AVX2;
    if (a71 & (1u << 4))
        have |= 1u << F_AVX_VNNI;
    if (zmm && (b7 & (1u << 16))) {
        have |= 1u << F_AVX512F;
        if (c7 & (1u << 11))
            have |= 1u << F_AVX512_VNNI;
        if (a71 & (1u << 5))
            have |= 1u << F_AVX512_BF16;
        if (d7 & (1u << 23))
            have |= 1u << F_AVX512_FP16;
    }
    if (tiles && (d7 & (1u << 24))) {
        have |= 1u << F_AMX_TILE;
        if (d7 & (1u << 22))
            have |= 1u << F_AMX_BF16;
        if (d7 & (1u << 25))
            have |= 1u << F_AMX_INT8;
    }
    return have;
}

#else /* not x86 */

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

/*
 * The first "flags" line of /proc/cpuinfo.  It sits in the first CPU's
 * block, well inside the first few KiB; a line longer than the buffer loses
 * its last, cut-off token only.
 */
static unsigned detect(void)
{
    char buf[16384];
    int fd = open("/proc/cpuinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t len = 0;
    while (len < sizeof buf - 1) {
        ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';

    unsigned have = 0;
    for (char *line = buf; line < buf + len;) {
        char *end = memchr(line, '\n', (size_t)(buf + len - line));
        bool complete = end != NULL;
        if (!end)
            end = buf + len;
        char *p = line;
        if (strncmp(p, "flags", 5) == 0) {
            p += 5;
            while (p < end && is_space(*p))
                p++;
            if (p < end && *p == ':') {
                p++;
                while (p < end) {
                    while (p < end && is_space(*p))
                        p++;
                    char *tok = p;
                    while (p < end && !is_space(*p))
                        p++;
                    size_t n = (size_t)(p - tok);
                    if (n == 0 || (p == end && !complete))
                        break;
                    for (int f = 0; f < F_COUNT; f++)
                        if (strlen(feature_names[f]) == n && memcmp(tok, feature_names[f], n) == 0)
                            have |= 1u << f;
                }
                break;
            }
        }
        line = end + 1;
    }
    return have;
}

#endif

size_t pf_isa_features(const char **names, size_t max)
{
    unsigned have = detect();
    size_t count = 0;
    for (int f = 0; f < F_COUNT; f++) {
        if (!(have & (1u << f)))
            continue;
        if (names && count < max)
            names[count] = feature_names[f];
        count++;
    }
    return count;
}
