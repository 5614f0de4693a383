/*
 * hwloc_xml.c - a strict reader of hwloc 2.x XML topology exports, run on
 * the text before hwloc sees it.
 *
 * Why.  hwloc's XML importer trusts its input.  hwloc 2.9 dereferences NULL
 * on well-formed files that merely omit what its own exports always write (a
 * PU without a nodeset, a NUMA node without a complete_cpuset), and its core
 * goes wrong on shapes no export has (a PU inside a PU, a cpuset that is not
 * the PU's os_index).  A topology file is user input, and the library runs in
 * multi-threaded programs, where loading it in a forked child to see whether
 * it crashes is not an option.  So the file is read here first, and only
 * what has the shape of an hwloc 2.x export reaches hwloc.
 *
 * Two readers must see the same document.  hwloc reads XML with libxml2 when
 * its libxml2 plugin is loaded, and otherwise with its own minimal reader,
 * which knows far less XML: it skips header lines up to a newline, ends a tag
 * at the first '>', takes attribute names of [a-z_] followed by `="`, decodes
 * seven entities, and silently stops reading a tag's attributes at anything
 * else.  A file that this check and one of those readers understood
 * differently could pass here and still crash there (this check sees a
 * cpuset that the reader dropped).  So the syntax accepted is the
 * intersection: the exact forms hwloc writes, on which all three agree.
 * Everything else is refused with the line and the reason.
 *
 * The syntax (after the bytes: ASCII printable, tab and newline only):
 *   - optional `<?xml version="1.0"[ encoding="UTF-8"][ standalone=".."]?>`
 *     and `<!DOCTYPE topology SYSTEM "hwloc2.dtd">` (or "hwloc.dtd"), each
 *     followed by a newline, then `<topology version="2.N">` at once;
 *   - tags `<name attr="value" ...>`, `/>` or `</name>`; names of [a-z0-9_],
 *     attribute names of [a-z_], a single space after the tag name, blanks
 *     between attributes, values in double quotes without raw '<', '>' or
 *     control characters, entities &lt; &gt; &amp; &quot; &#9; &#10; &#13;;
 *   - no comments, CDATA or processing instructions inside the document
 *     (hwloc's own reader fails on them; with libxml2, hwloc dropped the
 *     object after a comment); blanks and comments after </topology> only.
 *
 * The structure (hwloc 2.x, version="2.N"; 1.x files are refused):
 *   - one root <object type="Machine"> first in <topology>, then any of
 *     <distances2>, <distances2hetero>, <support>, <memattr>, <cpukind>;
 *   - in an object: <info>, <page_type> (NUMA nodes), <userdata> first, then
 *     child objects; attribute `type` first, each attribute once, only the
 *     attributes hwloc writes for that type, every number a plain decimal in
 *     range;
 *   - CPU-side ("normal") objects and memory objects carry cpuset,
 *     complete_cpuset, nodeset and complete_nodeset; the root also
 *     allowed_cpuset and allowed_nodeset; I/O and Misc objects none;
 *   - bitmaps in hwloc's form "0x0000ffff,,0x00000001" (1-8 hex digits a
 *     group, empty groups zero), ids below PF_ID_LIMIT, no infinite "0xf...f";
 *   - placement: Machine only at the root; normal objects below normal
 *     objects, deeper than their nearest non-Group ancestor in the order
 *     Machine, Package, Die, L5..L1 caches, Core, PU (Groups anywhere above
 *     Core); memory objects below normal objects or MemCache; NUMA nodes hold
 *     only Misc; I/O objects below normal or I/O objects; nothing below a PU;
 *   - sets: cpuset within complete_cpuset and nodeset within
 *     complete_nodeset; each set within the parent's; a PU's cpuset and
 *     complete_cpuset are exactly its os_index, a NUMA node's nodeset and
 *     complete_nodeset exactly its os_index, both unique; a normal object's
 *     cpuset is the union of its normal children's (none: empty, as for a
 *     CPU-less package), whose complete_cpusets do not overlap and come in
 *     the order of their first CPU (empty last) as hwloc writes them (out of
 *     order, hwloc sorts them but prints a warning banner); a memory
 *     object has its parent's cpuset and complete_cpuset; the root's nodeset
 *     is exactly its NUMA nodes (at least one) and it has a PU;
 *   - caches: depth and cache_type agree with the type (hwloc checks too);
 *   - gp_index present, non-zero and unique;
 *   - distances: nbobjs 2..1024, indexes and values of exactly that count,
 *     plain decimals each followed by one space, every index an existing
 *     object of the stated type, none twice; memory attributes: known flags,
 *     not hwloc's read-only Capacity and Locality, targets existing NUMA
 *     nodes, initiators existing objects or CPU sets; CPU kinds: non-empty,
 *     within the machine's PUs, not overlapping;
 *   - size at most 64 MiB, 2^16 objects, 4096 below any one object,
 *     elements nested 64 deep (hwloc's time grows with the square of the
 *     children of one object).
 * Every export of hwloc 2.x passes (`lstopo --of xml`, with or without I/O,
 * restricted, with disallowed CPUs, annotated with distances, memory
 * attributes, CPU kinds, Misc objects and infos); hand-made files that hwloc
 * would take may not.
 */
#include "topology/hwloc_xml.h"

#include "base/util.h"
#include "pinfer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_XML_SIZE (64u << 20)
#define MAX_DEPTH 64
#define MAX_ATTRS 24
/*
 * hwloc appends each object to its parent's list of children by walking
 * the list: n children of one parent cost n^2 / 2 steps.  65,535 memory-less
 * packages side by side took 7.5 s to load; 2^16 objects with at most 4096
 * below any one take well under a second (docs/topology.md).
 */
#define MAX_OBJECTS (1u << 16)
#define MAX_CHILDREN 4096
#define MAX_DISTANCE_OBJS 1024
#define MAX_CPUKINDS 256
#define MAX_SET_WORDS (PF_ID_LIMIT / 32)
#define MAX_USERDATA (1u << 24)

/* ------------------------------------------------------------------------ */
/* Bitmaps: 32-bit words, lowest first, without trailing zero words.         */

typedef struct bits {
    uint32_t *w;
    size_t n, cap;
} bits;

static void bits_free(bits *b)
{
    free(b->w);
    *b = (bits){0};
}

static void bits_trim(bits *b)
{
    while (b->n > 0 && b->w[b->n - 1] == 0)
        b->n--;
}

static int bits_reserve(bits *b, size_t n)
{
    if (n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4;
    while (cap < n)
        cap *= 2;
    uint32_t *w = realloc(b->w, cap * sizeof *w);
    if (!w)
        return -ENOMEM;
    b->w = w;
    b->cap = cap;
    return 0;
}

/* dst |= src */
static int bits_or(bits *dst, const bits *src)
{
    if (bits_reserve(dst, src->n) < 0)
        return -ENOMEM;
    for (size_t i = dst->n; i < src->n; i++)
        dst->w[i] = 0;
    if (dst->n < src->n)
        dst->n = src->n;
    for (size_t i = 0; i < src->n; i++)
        dst->w[i] |= src->w[i];
    return 0;
}

static int bits_set(bits *b, unsigned long bit)
{
    bits one = {0};
    size_t word = bit / 32;
    if (bits_reserve(&one, word + 1) < 0)
        return -ENOMEM;
    memset(one.w, 0, (word + 1) * sizeof *one.w);
    one.w[word] = 1u << (bit % 32);
    one.n = word + 1;
    int rc = bits_or(b, &one);
    bits_free(&one);
    return rc;
}

static bool bits_has(const bits *b, unsigned long bit)
{
    return bit / 32 < b->n && (b->w[bit / 32] >> (bit % 32) & 1u);
}

static bool bits_equal(const bits *a, const bits *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->w, b->w, a->n * sizeof *a->w) == 0);
}

/* a is within b */
static bool bits_within(const bits *a, const bits *b)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->w[i] & ~(i < b->n ? b->w[i] : 0))
            return false;
    return true;
}

static bool bits_overlap(const bits *a, const bits *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++)
        if (a->w[i] & b->w[i])
            return true;
    return false;
}

/* exactly {bit} */
static bool bits_is_only(const bits *b, unsigned long bit)
{
    if (b->n != bit / 32 + 1 || b->w[bit / 32] != 1u << (bit % 32))
        return false;
    for (size_t i = 0; i + 1 < b->n; i++)
        if (b->w[i])
            return false;
    return true;
}

/* The lowest bit, or SIZE_MAX for the empty set (hwloc_bitmap_compare_first's order). */
static size_t bits_first(const bits *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->w[i])
            return i * 32 + (size_t)__builtin_ctz(b->w[i]);
    return SIZE_MAX;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * hwloc's bitmap text: comma-separated groups of 32 bits, highest first,
 * each "0x" and 1 to 8 hex digits, or nothing for a zero group between two
 * others (hwloc writes 2^64 as "0x00000001,,0x0").  Returns 0, -EINVAL
 * (form), -ERANGE (a bit at PF_ID_LIMIT or above) or -ENOMEM.
 */
static int bits_parse(const char *s, bits *out)
{
    *out = (bits){0};
    size_t groups = 0;
    for (const char *p = s;;) {
        bool edge = p == s || *p == '\0';
        if (*p == ',' || *p == '\0') {
            if (edge) /* the first and last groups are written out */
                return -EINVAL;
        } else {
            if (p[0] != '0' || p[1] != 'x')
                return -EINVAL;
            p += 2;
            size_t digits = 0;
            while (hexval(p[digits]) >= 0)
                digits++;
            if (digits == 0 || digits > 8)
                return -EINVAL;
            p += digits;
        }
        groups++;
        if (*p == '\0')
            break;
        if (*p != ',')
            return -EINVAL;
        p++;
        if (*p == '\0')
            return -EINVAL;
    }
    if (groups > MAX_SET_WORDS)
        return -ERANGE;
    if (bits_reserve(out, groups) < 0)
        return -ENOMEM;
    out->n = groups;
    const char *p = s;
    for (size_t g = groups; g-- > 0;) {
        uint32_t v = 0;
        if (*p == '0')
            for (p += 2; hexval(*p) >= 0; p++)
                v = v << 4 | (uint32_t)hexval(*p);
        out->w[g] = v;
        if (*p == ',')
            p++;
    }
    bits_trim(out);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Object types.                                                             */

enum cls { C_NORMAL, C_MEMORY, C_IO, C_MISC };

enum {
    T_MACHINE,
    T_PACKAGE,
    T_DIE,
    T_L5,
    T_L4,
    T_L3,
    T_L3I,
    T_L2,
    T_L2I,
    T_L1,
    T_L1I,
    T_CORE,
    T_PU,
    T_GROUP,
    T_NUMANODE,
    T_MEMCACHE,
    T_BRIDGE,
    T_PCIDEV,
    T_OSDEV,
    T_MISC,
    NTYPES
};

/* hwloc_obj_type_string()'s names: what exports write.  order: see placement. */
static const struct {
    const char *name;
    enum cls cls;
    int order;       /* normal types: deeper is larger; Group -1 */
    int cache_level; /* CPU caches: 1..5; else 0 */
    bool icache;
} types[NTYPES] = {
    [T_MACHINE] = {"Machine", C_NORMAL, 0, 0, false},
    [T_PACKAGE] = {"Package", C_NORMAL, 1, 0, false},
    [T_DIE] = {"Die", C_NORMAL, 2, 0, false},
    [T_L5] = {"L5Cache", C_NORMAL, 3, 5, false},
    [T_L4] = {"L4Cache", C_NORMAL, 4, 4, false},
    [T_L3] = {"L3Cache", C_NORMAL, 5, 3, false},
    [T_L3I] = {"L3iCache", C_NORMAL, 6, 3, true},
    [T_L2] = {"L2Cache", C_NORMAL, 7, 2, false},
    [T_L2I] = {"L2iCache", C_NORMAL, 8, 2, true},
    [T_L1] = {"L1Cache", C_NORMAL, 9, 1, false},
    [T_L1I] = {"L1iCache", C_NORMAL, 10, 1, true},
    [T_CORE] = {"Core", C_NORMAL, 11, 0, false},
    [T_PU] = {"PU", C_NORMAL, 12, 0, false},
    [T_GROUP] = {"Group", C_NORMAL, -1, 0, false},
    [T_NUMANODE] = {"NUMANode", C_MEMORY, 0, 0, false},
    [T_MEMCACHE] = {"MemCache", C_MEMORY, 0, 0, false},
    [T_BRIDGE] = {"Bridge", C_IO, 0, 0, false},
    [T_PCIDEV] = {"PCIDev", C_IO, 0, 0, false},
    [T_OSDEV] = {"OSDev", C_IO, 0, 0, false},
    [T_MISC] = {"Misc", C_MISC, 0, 0, false},
};

static int type_by_name(const char *s, size_t len)
{
    for (int t = 0; t < NTYPES; t++)
        if (strlen(types[t].name) == len && memcmp(types[t].name, s, len) == 0)
            return t;
    return -1;
}

static bool has_sets(int type)
{
    return types[type].cls == C_NORMAL || types[type].cls == C_MEMORY;
}

/* Object attributes, in the order hwloc writes them. */
enum {
    A_TYPE,
    A_OS_INDEX,
    A_CPUSET,
    A_COMPLETE_CPUSET,
    A_ALLOWED_CPUSET,
    A_NODESET,
    A_COMPLETE_NODESET,
    A_ALLOWED_NODESET,
    A_GP_INDEX,
    A_NAME,
    A_SUBTYPE,
    A_LOCAL_MEMORY,
    A_CACHE_SIZE,
    A_DEPTH,
    A_CACHE_LINESIZE,
    A_CACHE_ASSOCIATIVITY,
    A_CACHE_TYPE,
    A_KIND,
    A_SUBKIND,
    A_DONT_MERGE,
    A_BRIDGE_TYPE,
    A_BRIDGE_PCI,
    A_PCI_BUSID,
    A_PCI_TYPE,
    A_PCI_LINK_SPEED,
    A_OSDEV_TYPE,
    NATTRS
};

static const char *const object_attrs[NATTRS] = {
    "type",           "os_index",   "cpuset",           "complete_cpuset",
    "allowed_cpuset", "nodeset",    "complete_nodeset", "allowed_nodeset",
    "gp_index",       "name",       "subtype",          "local_memory",
    "cache_size",     "depth",      "cache_linesize",   "cache_associativity",
    "cache_type",     "kind",       "subkind",          "dont_merge",
    "bridge_type",    "bridge_pci", "pci_busid",        "pci_type",
    "pci_link_speed", "osdev_type",
};

/* The four sets of normal and memory objects, in frame.set[]. */
enum { S_CPUSET, S_COMPLETE_CPUSET, S_NODESET, S_COMPLETE_NODESET, NSETS };
static const int set_attr[NSETS] = {A_CPUSET, A_COMPLETE_CPUSET, A_NODESET, A_COMPLETE_NODESET};

static bool attr_allowed(int type, int a, bool root)
{
    bool cache = types[type].cache_level > 0 || type == T_MEMCACHE;
    switch (a) {
    case A_TYPE:
    case A_OS_INDEX:
    case A_GP_INDEX:
    case A_NAME:
    case A_SUBTYPE: return true;
    case A_CPUSET:
    case A_COMPLETE_CPUSET:
    case A_NODESET:
    case A_COMPLETE_NODESET: return has_sets(type);
    case A_ALLOWED_CPUSET:
    case A_ALLOWED_NODESET: return root;
    case A_LOCAL_MEMORY: return type == T_NUMANODE;
    case A_CACHE_SIZE:
    case A_CACHE_LINESIZE:
    case A_CACHE_ASSOCIATIVITY:
    case A_CACHE_TYPE: return cache;
    case A_DEPTH: return cache || type == T_BRIDGE;
    case A_KIND:
    case A_SUBKIND:
    case A_DONT_MERGE: return type == T_GROUP;
    case A_BRIDGE_TYPE:
    case A_BRIDGE_PCI: return type == T_BRIDGE;
    case A_PCI_BUSID:
    case A_PCI_TYPE:
    case A_PCI_LINK_SPEED: return type == T_BRIDGE || type == T_PCIDEV;
    case A_OSDEV_TYPE: return type == T_OSDEV;
    default: return false;
    }
}

/* ------------------------------------------------------------------------ */
/* Elements.                                                                 */

enum elem {
    E_TOPOLOGY,
    E_OBJECT,
    E_INFO,
    E_PAGE_TYPE,
    E_USERDATA,
    E_DISTANCES,
    E_DISTANCES_HETERO,
    E_INDEXES,
    E_U64VALUES,
    E_SUPPORT,
    E_MEMATTR,
    E_MEMATTR_VALUE,
    E_CPUKIND,
    NELEMS
};

static const char *const elem_names[NELEMS] = {
    "topology",   "object",           "info",    "page_type", "userdata",
    "distances2", "distances2hetero", "indexes", "u64values", "support",
    "memattr",    "memattr_value",    "cpukind",
};

/* One attribute of the tag being read; value decoded and NUL-terminated. */
typedef struct attr {
    const char *name;
    size_t namelen;
    const char *value;
    size_t len;
} attr;

typedef struct tag {
    const char *start; /* its '<' */
    const char *name;
    size_t namelen;
    attr attrs[MAX_ATTRS];
    size_t nattrs;
    bool empty; /* <name ... /> */
} tag;

/* An open element. */
typedef struct frame {
    enum elem elem;
    const char *start;
    /* objects */
    int type;
    int anchor; /* normal objects: the nearest non-Group normal type, this one included */
    bool object_children;
    size_t nchildren; /* child objects of every kind */
    bits set[NSETS];
    bits kids_cpuset, kids_complete; /* unions over normal children */
    size_t kids_first;               /* the first CPU of the last normal child's complete_cpuset */
    /* distances */
    int dist_type; /* -1: heterogeneous */
    bool os_indexing;
    unsigned long nbobjs;
    size_t nindexes, nvalues;
    uint64_t *indexes;
    /* memory attributes */
    unsigned long memattr_flags;
} frame;

typedef struct objref {
    uint64_t gp;
    int type;
    const char *start;
} objref;

typedef struct reader {
    const char *name;
    const char *text, *p, *end;
    char **why;
    char *scratch; /* decoded attribute values of the current tag */
    size_t scratch_cap;
    frame stack[MAX_DEPTH];
    size_t depth;
    size_t nobjects;
    bool root_done;
    bits pus, nodes;         /* os_index of every PU, of every NUMA node */
    bits root_cpuset, kinds; /* the machine's PUs; the union of CPU kinds */
    size_t nkinds;
    objref *refs; /* every object's gp_index, sorted once the tree is read */
    size_t nrefs, refs_cap;
} reader;

static int line_of(const reader *r, const char *pos)
{
    int line = 1;
    for (const char *p = r->text; p < pos && p < r->end; p++)
        line += *p == '\n';
    return line;
}

static int at(reader *r, const char *pos, const char *fmt, ...) PF__PRINTF(3, 4);

/* A refusal: "<name>: line N: <message>", -EINVAL. */
static int at(reader *r, const char *pos, const char *fmt, ...)
{
    if (!r->why)
        return -EINVAL;
    va_list ap;
    va_start(ap, fmt);
    char *msg = pf__vstrdupf(fmt, ap);
    va_end(ap);
    if (!msg)
        return pf__fail(r->why, -ENOMEM, "out of memory");
    int rc = pf__fail(r->why, -EINVAL, "%s: line %d: %s", r->name, line_of(r, pos), msg);
    free(msg);
    return rc;
}

static int oom(reader *r)
{
    return pf__fail(r->why, -ENOMEM, "out of memory");
}

/* A value fit for a one-line message: at most 32 characters, controls as '?'. */
static const char *shown(const char *v, char buf[40])
{
    size_t n = 0;
    for (; v[n] && n < 32; n++)
        buf[n] = (unsigned char)v[n] < 0x20 || (unsigned char)v[n] > 0x7e ? '?' : v[n];
    if (v[n])
        buf[n++] = '~';
    buf[n] = '\0';
    return buf;
}

static bool name_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

static bool starts(const reader *r, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(r->end - r->p) >= n && memcmp(r->p, s, n) == 0;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

static void skip_blanks(reader *r)
{
    while (r->p < r->end && blank(*r->p))
        r->p++;
}

/* A decimal in [0, max]: digits only. */
static bool parse_dec(const char *s, uint64_t max, uint64_t *out)
{
    if (!*s)
        return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
    return pf__parse_int(s, strlen(s), lo, hi, out) == 0;
}

/* ------------------------------------------------------------------------ */
/* Lexing.                                                                   */

/* Every byte: printable ASCII, tab or newline (hwloc exports escape the rest). */
static int check_bytes(reader *r)
{
    for (const char *p = r->text; p < r->end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c <= 0x7e)
            continue;
        if (c == '\n' || c == '\t')
            continue;
        if (c == '\0')
            return at(r, p, "a NUL byte");
        if (c == '\r')
            return at(r, p, "a carriage return (hwloc's own XML reader needs Unix line ends)");
        return at(r, p, "byte 0x%02x: hwloc exports are plain ASCII", c);
    }
    return 0;
}

/*
 * Decode an attribute value ending at the next '"' into r->scratch at *used.
 * Returns 0 and advances r->p past the quote.
 */
static int read_value(reader *r, size_t *used, attr *a)
{
    static const struct {
        const char *entity;
        char c;
    } entities[] = {{"&lt;", '<'},  {"&gt;", '>'},   {"&amp;", '&'}, {"&quot;", '"'},
                    {"&#9;", '\t'}, {"&#10;", '\n'}, {"&#13;", '\r'}};
    char *out = r->scratch + *used;
    size_t n = 0;
    while (r->p < r->end && *r->p != '"') {
        char c = *r->p;
        if (c == '&') {
            size_t k = 0, count = sizeof entities / sizeof entities[0];
            while (k < count && !starts(r, entities[k].entity))
                k++;
            if (k == count)
                return at(r, r->p,
                          "an entity hwloc does not write (only &lt; &gt; &amp; &quot; &#9; "
                          "&#10; &#13;)");
            out[n++] = entities[k].c;
            r->p += strlen(entities[k].entity);
            continue;
        }
        if (c == '<' || c == '>')
            return at(r, r->p, "a raw '%c' in an attribute value (write &%s;)", c,
                      c == '<' ? "lt" : "gt");
        if (c == '\n' || c == '\t')
            return at(r, r->p, "a raw line break or tab in an attribute value");
        out[n++] = c;
        r->p++;
    }
    if (r->p == r->end)
        return at(r, r->p, "the file ends inside an attribute value");
    r->p++;
    out[n] = '\0';
    a->value = out;
    a->len = n;
    *used += n + 1;
    return 0;
}

/* A start tag at r->p ('<' then a letter). */
static int read_tag(reader *r, tag *t)
{
    t->start = r->p;
    t->nattrs = 0;
    t->empty = false;
    const char *close = memchr(r->p, '>', (size_t)(r->end - r->p));
    if (!close)
        return at(r, r->p, "a tag without its '>'");
    size_t need = (size_t)(close - r->p) + 1;
    if (need > r->scratch_cap) {
        char *grown = realloc(r->scratch, need);
        if (!grown)
            return oom(r);
        r->scratch = grown;
        r->scratch_cap = need;
    }
    size_t used = 0;
    r->p++;
    t->name = r->p;
    while (r->p < close &&
           ((*r->p >= 'a' && *r->p <= 'z') || (*r->p >= '0' && *r->p <= '9') || *r->p == '_'))
        r->p++;
    t->namelen = (size_t)(r->p - t->name);
    if (t->namelen == 0)
        return at(r, t->start, "a tag name hwloc does not write");
    if (*r->p != ' ' && *r->p != '/' && *r->p != '>')
        return at(r, r->p, "a tag name hwloc does not write, or no single space after it");
    for (;;) {
        bool spaced = r->p < close && blank(*r->p);
        skip_blanks(r);
        if (*r->p == '>') {
            r->p++;
            return 0;
        }
        if (*r->p == '/') {
            if (r->p + 1 != close)
                return at(r, r->p, "a '/' inside a tag");
            t->empty = true;
            r->p += 2;
            return 0;
        }
        if (!spaced)
            return at(r, r->p, "attributes not separated by blanks");
        attr *a = &t->attrs[t->nattrs];
        a->name = r->p;
        while (r->p < close && ((*r->p >= 'a' && *r->p <= 'z') || *r->p == '_'))
            r->p++;
        a->namelen = (size_t)(r->p - a->name);
        if (a->namelen == 0 || r->p + 1 >= close || r->p[0] != '=' || r->p[1] != '"')
            return at(r, r->p, "an attribute not in hwloc's form name=\"value\"");
        for (size_t i = 0; i < t->nattrs; i++)
            if (t->attrs[i].namelen == a->namelen &&
                memcmp(t->attrs[i].name, a->name, a->namelen) == 0)
                return at(r, a->name, "attribute '%.*s' twice", (int)a->namelen, a->name);
        if (t->nattrs + 1 == MAX_ATTRS)
            return at(r, a->name, "more than %d attributes in a tag", MAX_ATTRS - 1);
        r->p += 2;
        int rc = read_value(r, &used, a);
        if (rc < 0)
            return rc;
        t->nattrs++;
    }
}

static const attr *find_attr(const tag *t, const char *name)
{
    for (size_t i = 0; i < t->nattrs; i++)
        if (name_is(t->attrs[i].name, t->attrs[i].namelen, name))
            return &t->attrs[i];
    return NULL;
}

/* Refuse attributes outside `known` (NULL-terminated) and missing `required` ones. */
static int only_attrs(reader *r, const tag *t, const char *const *known,
                      const char *const *required)
{
    for (size_t i = 0; i < t->nattrs; i++) {
        const char *const *k = known;
        while (*k && !name_is(t->attrs[i].name, t->attrs[i].namelen, *k))
            k++;
        if (!*k)
            return at(r, t->attrs[i].name, "unknown attribute '%.*s' in <%.*s>",
                      (int)t->attrs[i].namelen, t->attrs[i].name, (int)t->namelen, t->name);
    }
    for (; required && *required; required++)
        if (!find_attr(t, *required))
            return at(r, t->start, "<%.*s> without %s", (int)t->namelen, t->name, *required);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The tree.                                                                 */

static frame *top(reader *r)
{
    return &r->stack[r->depth - 1];
}

static void frame_free(frame *f)
{
    for (int s = 0; s < NSETS; s++)
        bits_free(&f->set[s]);
    bits_free(&f->kids_cpuset);
    bits_free(&f->kids_complete);
    free(f->indexes);
    f->indexes = NULL;
}

static int push(reader *r, enum elem elem, const char *start)
{
    if (r->depth == MAX_DEPTH)
        return at(r, start, "elements nested deeper than %d levels", MAX_DEPTH);
    frame *f = &r->stack[r->depth++];
    *f = (frame){.elem = elem, .start = start, .type = -1, .dist_type = -1};
    return 0;
}

static const char *type_name(int type)
{
    return types[type].name;
}

/* A set attribute of an object, parsed into `out`. */
static int object_set(reader *r, const attr *a, bits *out)
{
    char buf[40];
    int rc = bits_parse(a->value, out);
    if (rc == -ENOMEM)
        return oom(r);
    if (rc == -ERANGE)
        return at(r, a->name, "%.*s holds an id of %d or more", (int)a->namelen, a->name,
                  PF_ID_LIMIT);
    if (rc < 0)
        return at(r, a->name, "%.*s \"%s\" is not an hwloc bitmap (\"0x000000ff,0x...\")",
                  (int)a->namelen, a->name, shown(a->value, buf));
    return 0;
}

/* The attributes of an <object> into f. */
static int object_attrs_read(reader *r, const tag *t, frame *f, bool root, unsigned long *os,
                             bool *has_os, uint64_t *gp, bits *allowed)
{
    char buf[40];
    bool seen[NATTRS] = {false};
    const attr *cache_depth = NULL, *cache_type = NULL;
    int type = f->type;
    for (size_t i = 1; i < t->nattrs; i++) {
        const attr *a = &t->attrs[i];
        int k = 0;
        while (k < NATTRS && !name_is(a->name, a->namelen, object_attrs[k]))
            k++;
        if (k == NATTRS || k == A_TYPE)
            return at(r, a->name, "unknown object attribute '%.*s'", (int)a->namelen, a->name);
        if (!attr_allowed(type, k, root))
            return at(r, a->name, "%s%s with a %s", root ? "root " : "", type_name(type),
                      object_attrs[k]);
        seen[k] = true;
        uint64_t u;
        long l;
        switch (k) {
        case A_OS_INDEX:
            if (!parse_dec(a->value, UINT32_MAX, &u))
                return at(r, a->name, "os_index \"%s\" is not a 32-bit decimal",
                          shown(a->value, buf));
            *os = (unsigned long)u;
            *has_os = true;
            break;
        case A_GP_INDEX:
            if (!parse_dec(a->value, INT64_MAX, &u) || u == 0)
                return at(r, a->name, "gp_index \"%s\" is not a positive decimal",
                          shown(a->value, buf));
            *gp = u;
            break;
        case A_CPUSET:
        case A_COMPLETE_CPUSET:
        case A_NODESET:
        case A_COMPLETE_NODESET: {
            int s = 0;
            while (set_attr[s] != k)
                s++;
            int rc = object_set(r, a, &f->set[s]);
            if (rc < 0)
                return rc;
            break;
        }
        case A_ALLOWED_CPUSET:
        case A_ALLOWED_NODESET: {
            int rc = object_set(r, a, &allowed[k == A_ALLOWED_NODESET]);
            if (rc < 0)
                return rc;
            break;
        }
        case A_LOCAL_MEMORY:
        case A_CACHE_SIZE:
            if (!parse_dec(a->value, UINT64_MAX, &u))
                return at(r, a->name, "%s \"%s\" is not a decimal", object_attrs[k],
                          shown(a->value, buf));
            break;
        case A_DEPTH:
            if (!parse_dec(a->value, UINT32_MAX, &u))
                return at(r, a->name, "depth \"%s\" is not a decimal", shown(a->value, buf));
            cache_depth = a;
            break;
        case A_CACHE_LINESIZE:
        case A_KIND:
        case A_SUBKIND:
        case A_OSDEV_TYPE:
            if (!parse_dec(a->value, UINT32_MAX, &u))
                return at(r, a->name, "%s \"%s\" is not a 32-bit decimal", object_attrs[k],
                          shown(a->value, buf));
            break;
        case A_DONT_MERGE:
            if (!parse_dec(a->value, 1, &u))
                return at(r, a->name, "dont_merge \"%s\" is not 0 or 1", shown(a->value, buf));
            break;
        case A_CACHE_ASSOCIATIVITY:
            if (!parse_int(a->value, -1, INT32_MAX, &l))
                return at(r, a->name, "cache_associativity \"%s\" is not -1 or more",
                          shown(a->value, buf));
            break;
        case A_CACHE_TYPE:
            if (!parse_dec(a->value, 2, &u))
                return at(r, a->name, "cache_type \"%s\" is not 0, 1 or 2", shown(a->value, buf));
            cache_type = a;
            break;
        default: break; /* names, subtypes and I/O strings: any text */
        }
    }
    if (!seen[A_GP_INDEX])
        return at(r, t->start, "%s without a gp_index", type_name(type));
    if (has_sets(type))
        for (int s = 0; s < NSETS; s++)
            if (!seen[set_attr[s]])
                return at(r, t->start, "%s without a %s", type_name(type),
                          object_attrs[set_attr[s]]);
    if (root && (!seen[A_ALLOWED_CPUSET] || !seen[A_ALLOWED_NODESET]))
        return at(r, t->start, "root Machine without %s",
                  seen[A_ALLOWED_CPUSET] ? "allowed_nodeset" : "allowed_cpuset");
    if ((type == T_PU || type == T_NUMANODE) && !*has_os)
        return at(r, t->start, "%s without an os_index", type_name(type));
    if (types[type].cache_level > 0) {
        if (!cache_depth || !cache_type)
            return at(r, t->start, "%s without %s", type_name(type),
                      cache_depth ? "a cache_type" : "a depth");
        uint64_t depth = 0, ctype = 0;
        parse_dec(cache_depth->value, UINT32_MAX, &depth);
        parse_dec(cache_type->value, 2, &ctype);
        if (depth != (uint64_t)types[type].cache_level)
            return at(r, cache_depth->name, "%s with depth %s", type_name(type),
                      shown(cache_depth->value, buf));
        if (types[type].icache ? ctype != 2 : ctype == 2)
            return at(r, cache_type->name, "%s with cache_type %s", type_name(type),
                      shown(cache_type->value, buf));
    }
    return 0;
}

/* Where an object of `type` may be, given its parent frame p (an object). */
static int object_placement(reader *r, const tag *t, const frame *p, int type)
{
    enum cls pc = types[p->type].cls, c = types[type].cls;
    const char *pn = type_name(p->type), *n = type_name(type);
    if (type == T_MACHINE)
        return at(r, t->start, "a Machine below the root object");
    if (p->type == T_PU)
        return at(r, t->start, "an object (%s) below a PU", n);
    if (c == C_MISC)
        return 0;
    if (pc == C_MISC)
        return at(r, t->start, "%s below a Misc object", n);
    if (p->type == T_NUMANODE)
        return at(r, t->start, "%s below a NUMANode", n);
    if (pc == C_IO && c != C_IO)
        return at(r, t->start, "%s below an I/O object (%s)", n, pn);
    if (pc == C_MEMORY && c != C_MEMORY)
        return at(r, t->start, "%s below %s", n, pn);
    if (c == C_NORMAL && (type == T_GROUP ? types[p->anchor].order >= types[T_CORE].order
                                          : types[type].order <= types[p->anchor].order))
        return at(r, t->start, "%s below %s%s", n, type_name(p->anchor),
                  p->type == T_GROUP ? " (through Groups)" : "");
    return 0;
}

/* The set rules that hold when an object opens: f against itself and its parent p. */
static int object_sets_open(reader *r, const frame *p, frame *f, unsigned long os, bool root,
                            bits *allowed)
{
    const char *n = type_name(f->type);
    if (!bits_within(&f->set[S_CPUSET], &f->set[S_COMPLETE_CPUSET]))
        return at(r, f->start, "%s with a cpuset not within its complete_cpuset", n);
    if (!bits_within(&f->set[S_NODESET], &f->set[S_COMPLETE_NODESET]))
        return at(r, f->start, "%s with a nodeset not within its complete_nodeset", n);
    if (p) {
        static const char *const what[NSETS] = {"cpuset", "complete_cpuset", "nodeset",
                                                "complete_nodeset"};
        for (int s = 0; s < NSETS; s++)
            if (!bits_within(&f->set[s], &p->set[s]))
                return at(r, f->start, "%s with a %s not within its parent's", n, what[s]);
    }
    if (f->type == T_PU) {
        if (os >= PF_ID_LIMIT)
            return at(r, f->start, "PU os_index %lu is %d or more", os, PF_ID_LIMIT);
        if (!bits_is_only(&f->set[S_CPUSET], os) || !bits_is_only(&f->set[S_COMPLETE_CPUSET], os))
            return at(r, f->start, "PU %lu whose cpuset or complete_cpuset is not just CPU %lu", os,
                      os);
        if (bits_has(&r->pus, os))
            return at(r, f->start, "PU %lu twice", os);
        if (bits_set(&r->pus, os) < 0)
            return oom(r);
    }
    if (f->type == T_NUMANODE) {
        if (os >= PF_ID_LIMIT)
            return at(r, f->start, "NUMANode os_index %lu is %d or more", os, PF_ID_LIMIT);
        if (!bits_is_only(&f->set[S_NODESET], os) || !bits_is_only(&f->set[S_COMPLETE_NODESET], os))
            return at(r, f->start, "NUMANode %lu whose nodeset or complete_nodeset is not just %lu",
                      os, os);
        if (bits_has(&r->nodes, os))
            return at(r, f->start, "NUMANode %lu twice", os);
        if (bits_set(&r->nodes, os) < 0)
            return oom(r);
    }
    if (types[f->type].cls == C_MEMORY && p &&
        (!bits_equal(&f->set[S_CPUSET], &p->set[S_CPUSET]) ||
         !bits_equal(&f->set[S_COMPLETE_CPUSET], &p->set[S_COMPLETE_CPUSET])))
        return at(r, f->start, "%s whose cpuset or complete_cpuset is not its parent's", n);
    if (root) {
        if (!bits_within(&allowed[0], &f->set[S_COMPLETE_CPUSET]))
            return at(r, f->start, "root allowed_cpuset not within its complete_cpuset");
        if (!bits_within(&allowed[1], &f->set[S_COMPLETE_NODESET]))
            return at(r, f->start, "root allowed_nodeset not within its complete_nodeset");
    }
    return 0;
}

static int add_ref(reader *r, uint64_t gp, int type, const char *start)
{
    if (r->nrefs == r->refs_cap) {
        size_t cap = r->refs_cap ? r->refs_cap * 2 : 64;
        objref *grown = realloc(r->refs, cap * sizeof *grown);
        if (!grown)
            return oom(r);
        r->refs = grown;
        r->refs_cap = cap;
    }
    r->refs[r->nrefs++] = (objref){gp, type, start};
    return 0;
}

static int ref_cmp(const void *a, const void *b)
{
    uint64_t x = ((const objref *)a)->gp, y = ((const objref *)b)->gp;
    return (x > y) - (x < y);
}

/* The type of the object with this gp_index, or -1. */
static int ref_type(const reader *r, uint64_t gp)
{
    objref key = {gp, 0, NULL};
    const objref *hit = bsearch(&key, r->refs, r->nrefs, sizeof *r->refs, ref_cmp);
    return hit ? hit->type : -1;
}

static int open_object(reader *r, const tag *t)
{
    frame *p = top(r);
    bool root = p->elem == E_TOPOLOGY;
    if (root && r->root_done)
        return at(r, t->start, "a second top-level <object> (a topology has one root)");
    if (!root && p->elem != E_OBJECT)
        return at(r, t->start, "<object> inside <%s>", elem_names[p->elem]);
    if (++r->nobjects > MAX_OBJECTS)
        return at(r, t->start, "more than %u objects", MAX_OBJECTS);
    if (t->nattrs == 0 || !name_is(t->attrs[0].name, t->attrs[0].namelen, "type"))
        return at(r, t->start, "<object> whose first attribute is not its type");
    char buf[40];
    int type = type_by_name(t->attrs[0].value, t->attrs[0].len);
    if (type < 0)
        return at(r, t->start, "unknown object type \"%s\"", shown(t->attrs[0].value, buf));
    if (root && type != T_MACHINE)
        return at(r, t->start, "the root object is a %s, not a Machine", type_name(type));
    if (!root) {
        int rc = object_placement(r, t, p, type);
        if (rc < 0)
            return rc;
        if (++p->nchildren > MAX_CHILDREN)
            return at(r, t->start, "more than %u objects below one %s", MAX_CHILDREN,
                      type_name(p->type));
        p->object_children = true;
    }
    int rc = push(r, E_OBJECT, t->start);
    if (rc < 0)
        return rc;
    frame *f = top(r);
    p = root ? NULL : &r->stack[r->depth - 2];
    f->type = type;
    if (types[type].cls == C_NORMAL)
        f->anchor = type == T_GROUP ? p->anchor : type;
    unsigned long os = 0;
    bool has_os = false;
    uint64_t gp = 0;
    bits allowed[2] = {{0}, {0}};
    rc = object_attrs_read(r, t, f, root, &os, &has_os, &gp, allowed);
    if (rc == 0 && has_sets(type))
        rc = object_sets_open(r, p, f, os, root, allowed);
    bits_free(&allowed[0]);
    bits_free(&allowed[1]);
    if (rc == 0)
        rc = add_ref(r, gp, type, t->start);
    return rc;
}

static int close_object(reader *r, frame *f)
{
    const char *n = type_name(f->type);
    frame *p = r->depth >= 2 ? &r->stack[r->depth - 2] : NULL;
    bool root = p && p->elem == E_TOPOLOGY;
    if (types[f->type].cls == C_NORMAL && f->type != T_PU &&
        !bits_equal(&f->set[S_CPUSET], &f->kids_cpuset))
        return at(r, f->start, "%s whose cpuset is not the union of its children's", n);
    if (root) {
        if (f->set[S_CPUSET].n == 0)
            return at(r, f->start, "no PU object");
        if (r->nodes.n == 0)
            return at(r, f->start, "no NUMANode object");
        if (!bits_equal(&f->set[S_NODESET], &r->nodes))
            return at(r, f->start, "root nodeset is not exactly its NUMA nodes");
        r->root_done = true;
        r->root_cpuset = f->set[S_CPUSET];
        f->set[S_CPUSET] = (bits){0};
        qsort(r->refs, r->nrefs, sizeof *r->refs, ref_cmp);
        for (size_t i = 1; i < r->nrefs; i++) {
            const objref *a = &r->refs[i - 1], *b = &r->refs[i];
            if (a->gp == b->gp)
                return at(r, a->start > b->start ? a->start : b->start,
                          "a second object with gp_index %llu", (unsigned long long)a->gp);
        }
        return 0;
    }
    if (types[f->type].cls == C_NORMAL && p && has_sets(p->type)) {
        if (bits_overlap(&f->set[S_COMPLETE_CPUSET], &p->kids_complete))
            return at(r, f->start, "%s whose complete_cpuset overlaps a sibling's", n);
        /* Out of order, hwloc would sort them, and print a warning banner on stderr. */
        size_t first = bits_first(&f->set[S_COMPLETE_CPUSET]);
        if (first < p->kids_first)
            return at(r, f->start,
                      "%s after a sibling with a higher first CPU (hwloc writes siblings in order)",
                      n);
        p->kids_first = first;
        if (bits_or(&p->kids_complete, &f->set[S_COMPLETE_CPUSET]) < 0 ||
            bits_or(&p->kids_cpuset, &f->set[S_CPUSET]) < 0)
            return oom(r);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Everything but objects.                                                   */

/* Elements that only an object may hold, before its child objects. */
static int in_object_head(reader *r, const tag *t, const char *what)
{
    frame *p = top(r);
    if (p->elem != E_OBJECT)
        return at(r, t->start, "<%s> inside <%s>", what, elem_names[p->elem]);
    if (p->object_children)
        return at(r, t->start, "<%s> after a child <object>", what);
    return 0;
}

/* Elements after the root object, in <topology>. */
static int after_root(reader *r, const tag *t, const char *what)
{
    frame *p = top(r);
    if (p->elem != E_TOPOLOGY)
        return at(r, t->start, "<%s> inside <%s>", what, elem_names[p->elem]);
    if (!r->root_done)
        return at(r, t->start, "<%s> before the root <object>", what);
    return 0;
}

static int open_info(reader *r, const tag *t)
{
    frame *p = top(r);
    int rc = p->elem == E_CPUKIND ? 0 : in_object_head(r, t, "info");
    if (rc == 0)
        rc = only_attrs(r, t, (const char *const[]){"name", "value", NULL},
                        (const char *const[]){"name", "value", NULL});
    return rc ? rc : push(r, E_INFO, t->start);
}

static int open_page_type(reader *r, const tag *t)
{
    int rc = in_object_head(r, t, "page_type");
    if (rc < 0)
        return rc;
    if (top(r)->type != T_NUMANODE)
        return at(r, t->start, "<page_type> in a %s, not a NUMANode", type_name(top(r)->type));
    const char *const both[] = {"size", "count", NULL};
    rc = only_attrs(r, t, both, both);
    uint64_t u;
    for (size_t i = 0; rc == 0 && i < t->nattrs; i++)
        if (!parse_dec(t->attrs[i].value, UINT64_MAX, &u))
            rc = at(r, t->attrs[i].name, "page_type %.*s is not a decimal",
                    (int)t->attrs[i].namelen, t->attrs[i].name);
    return rc ? rc : push(r, E_PAGE_TYPE, t->start);
}

/*
 * Text content of <userdata>, <indexes> and <u64values>, up to the next '<',
 * which must start the end tag.  Returns its length in *len.
 */
static int read_content(reader *r, const tag *t, const char **text, size_t *len)
{
    const char *start = r->p;
    const char *lt = memchr(r->p, '<', (size_t)(r->end - r->p));
    if (!lt)
        return at(r, t->start, "the file ends inside <%.*s>", (int)t->namelen, t->name);
    for (const char *c = start; c < lt; c++)
        if (*c == '&')
            return at(r, c, "an entity in <%.*s> content", (int)t->namelen, t->name);
    r->p = lt;
    if ((size_t)(r->end - r->p) < t->namelen + 3 || r->p[1] != '/' ||
        memcmp(r->p + 2, t->name, t->namelen) != 0 || r->p[2 + t->namelen] != '>')
        return at(r, r->p, "<%.*s> content followed by something else than </%.*s>",
                  (int)t->namelen, t->name, (int)t->namelen, t->name);
    r->p += t->namelen + 3;
    *text = start;
    *len = (size_t)(lt - start);
    return 0;
}

static int open_userdata(reader *r, const tag *t)
{
    int rc = in_object_head(r, t, "userdata");
    if (rc == 0)
        rc = only_attrs(r, t, (const char *const[]){"length", "encoding", "name", NULL},
                        (const char *const[]){"length", NULL});
    if (rc < 0)
        return rc;
    uint64_t length;
    if (!parse_dec(find_attr(t, "length")->value, MAX_USERDATA, &length))
        return at(r, t->start, "userdata length is not a decimal up to %u", MAX_USERDATA);
    const attr *enc = find_attr(t, "encoding");
    bool base64 = enc && strcmp(enc->value, "base64") == 0;
    if (enc && !base64 && strcmp(enc->value, "normal") != 0)
        return at(r, t->start, "userdata encoding is neither \"normal\" nor \"base64\"");
    uint64_t expected = base64 ? 4 * ((length + 2) / 3) : length;
    const char *text = "";
    size_t len = 0;
    if (!t->empty) {
        rc = read_content(r, t, &text, &len);
        if (rc < 0)
            return rc;
    }
    if (len != expected)
        return at(r, t->start, "userdata of %zu characters, not the %llu its length says", len,
                  (unsigned long long)expected);
    for (size_t i = 0; base64 && i < len; i++) {
        char c = text[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || c == '=';
        if (!ok)
            return at(r, text + i, "userdata that is not base64");
    }
    return 0;
}

static int open_distances(reader *r, const tag *t, bool hetero)
{
    const char *what = hetero ? "distances2hetero" : "distances2";
    int rc = after_root(r, t, what);
    if (rc == 0 && hetero)
        rc = only_attrs(r, t, (const char *const[]){"nbobjs", "kind", "name", NULL},
                        (const char *const[]){"nbobjs", "kind", NULL});
    else if (rc == 0)
        rc = only_attrs(r, t,
                        (const char *const[]){"type", "nbobjs", "kind", "name", "indexing", NULL},
                        (const char *const[]){"type", "nbobjs", "kind", "indexing", NULL});
    if (rc < 0)
        return rc;
    uint64_t nbobjs, kind;
    if (!parse_dec(find_attr(t, "nbobjs")->value, MAX_DISTANCE_OBJS, &nbobjs) || nbobjs < 2)
        return at(r, t->start, "%s nbobjs is not a decimal from 2 to %d", what, MAX_DISTANCE_OBJS);
    if (!parse_dec(find_attr(t, "kind")->value, UINT32_MAX, &kind) || kind == 0)
        return at(r, t->start, "%s kind is not a positive decimal", what);
    int type = -1;
    bool os = false;
    if (!hetero) {
        const attr *ta = find_attr(t, "type");
        type = type_by_name(ta->value, ta->len);
        if (type < 0 || type == T_MISC)
            return at(r, t->start, "distances2 between objects of an unknown type");
        /* hwloc names PUs and NUMA nodes by os_index, the rest by gp_index */
        os = type == T_PU || type == T_NUMANODE;
        if (strcmp(find_attr(t, "indexing")->value, os ? "os" : "gp") != 0)
            return at(r, t->start, "distances2 between %ss not indexed by %s", type_name(type),
                      os ? "os" : "gp");
    }
    rc = push(r, hetero ? E_DISTANCES_HETERO : E_DISTANCES, t->start);
    if (rc < 0)
        return rc;
    frame *f = top(r);
    f->dist_type = type;
    f->os_indexing = os;
    f->nbobjs = (unsigned long)nbobjs;
    f->indexes = malloc((size_t)nbobjs * sizeof *f->indexes);
    return f->indexes ? 0 : oom(r);
}

/* One index of a distances matrix: the object must exist. */
static int distance_index(reader *r, frame *f, const char *pos, int type, uint64_t v)
{
    bool found;
    if (f->os_indexing)
        found = v < PF_ID_LIMIT && bits_has(type == T_PU ? &r->pus : &r->nodes, (unsigned long)v);
    else
        found = ref_type(r, v) == type;
    if (!found)
        return at(r, pos, "distances to a %s %llu that is not in the topology", type_name(type),
                  (unsigned long long)v);
    f->indexes[f->nindexes++] = v;
    return 0;
}

/* <indexes> and <u64values>: numbers each followed by one space. */
static int open_matrix_part(reader *r, const tag *t, bool values)
{
    frame *f = top(r);
    const char *what = values ? "u64values" : "indexes";
    if (f->elem != E_DISTANCES && f->elem != E_DISTANCES_HETERO)
        return at(r, t->start, "<%s> inside <%s>", what, elem_names[f->elem]);
    const char *const length[] = {"length", NULL};
    int rc = only_attrs(r, t, length, length);
    if (rc < 0)
        return rc;
    uint64_t expected;
    if (!parse_dec(find_attr(t, "length")->value, INT32_MAX, &expected))
        return at(r, t->start, "<%s> length is not a decimal", what);
    const char *text = "";
    size_t len = 0;
    if (!t->empty && (rc = read_content(r, t, &text, &len)) < 0)
        return rc;
    if (len != expected || len == 0)
        return at(r, t->start, "<%s> of %zu characters, not the %llu its length says", what, len,
                  (unsigned long long)expected);
    uint64_t limit = values ? (uint64_t)f->nbobjs * f->nbobjs : f->nbobjs;
    for (const char *c = text, *end = text + len; c < end;) {
        const char *item = c;
        int type = f->dist_type;
        if (f->elem == E_DISTANCES_HETERO && !values) {
            const char *colon = memchr(c, ':', (size_t)(end - c));
            type = colon ? type_by_name(c, (size_t)(colon - c)) : -1;
            if (type < 0 || type == T_MISC)
                return at(r, c, "distances2hetero index without a known type (\"Type:gp \")");
            c = colon + 1;
        }
        uint64_t v = 0;
        size_t digits = 0;
        while (c + digits < end && c[digits] >= '0' && c[digits] <= '9')
            digits++;
        char num[24];
        if (digits == 0 || digits >= sizeof num || (digits > 1 && c[0] == '0'))
            return at(r, c, "<%s> holds something else than plain decimals", what);
        memcpy(num, c, digits);
        num[digits] = '\0';
        if (!parse_dec(num, UINT64_MAX, &v))
            return at(r, c, "<%s> number too large", what);
        c += digits;
        if (c == end || *c != ' ')
            return at(r, c, "<%s> numbers must each be followed by one space", what);
        c++;
        size_t *count = values ? &f->nvalues : &f->nindexes;
        if (*count == limit)
            return at(r, item, "more %s than nbobjs says", what);
        if (values)
            f->nvalues++;
        else if ((rc = distance_index(r, f, item, type, v)) < 0)
            return rc;
    }
    return 0;
}

static int close_distances(reader *r, frame *f)
{
    if (f->nindexes != f->nbobjs || f->nvalues != (size_t)f->nbobjs * f->nbobjs)
        return at(r, f->start, "distances with %zu indexes and %zu values for %lu objects",
                  f->nindexes, f->nvalues, f->nbobjs);
    uint64_t *v = f->indexes;
    for (size_t i = 0; i < f->nindexes; i++)
        for (size_t j = i + 1; j < f->nindexes; j++)
            if (v[i] == v[j])
                return at(r, f->start, "distances naming an object twice");
    return 0;
}

static int open_support(reader *r, const tag *t)
{
    int rc = after_root(r, t, "support");
    if (rc == 0)
        rc = only_attrs(r, t, (const char *const[]){"name", "value", NULL},
                        (const char *const[]){"name", NULL});
    long l;
    const attr *v = rc == 0 ? find_attr(t, "value") : NULL;
    if (v && !parse_int(v->value, 0, INT32_MAX, &l))
        rc = at(r, t->start, "support value is not a decimal");
    return rc ? rc : push(r, E_SUPPORT, t->start);
}

/* hwloc_memattr_flag_e: HIGHER_FIRST 1, LOWER_FIRST 2, NEED_INITIATOR 4. */
static int open_memattr(reader *r, const tag *t)
{
    const char *const both[] = {"name", "flags", NULL};
    int rc = after_root(r, t, "memattr");
    if (rc == 0)
        rc = only_attrs(r, t, both, both);
    if (rc < 0)
        return rc;
    const char *name = find_attr(t, "name")->value;
    uint64_t flags;
    if (!parse_dec(find_attr(t, "flags")->value, 7, &flags) || (flags & 3) == 0 || (flags & 3) == 3)
        return at(r, t->start, "memattr flags are not one of hwloc's combinations");
    /* hwloc's own attributes: Capacity and Locality are computed, never set. */
    static const struct {
        const char *name;
        uint64_t flags;
    } builtin[] = {{"Capacity", 0},       {"Locality", 0}, {"Bandwidth", 5},   {"ReadBandwidth", 5},
                   {"WriteBandwidth", 5}, {"Latency", 6},  {"ReadLatency", 6}, {"WriteLatency", 6}};
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (strcasecmp(name, builtin[i].name) == 0 && flags != builtin[i].flags)
            return at(r, t->start, "memattr %s %s", builtin[i].name,
                      builtin[i].flags ? "with other flags than hwloc's"
                                       : "is hwloc's, not a file's");
    rc = push(r, E_MEMATTR, t->start);
    if (rc == 0)
        top(r)->memattr_flags = (unsigned long)flags;
    return rc;
}

static int open_memattr_value(reader *r, const tag *t)
{
    frame *p = top(r);
    if (p->elem != E_MEMATTR)
        return at(r, t->start, "<memattr_value> inside <%s>", elem_names[p->elem]);
    int rc = only_attrs(
        r, t,
        (const char *const[]){"target_obj_gp_index", "target_obj_type", "value", "initiator_cpuset",
                              "initiator_obj_gp_index", "initiator_obj_type", NULL},
        (const char *const[]){"target_obj_gp_index", "target_obj_type", "value", NULL});
    if (rc < 0)
        return rc;
    uint64_t gp, value;
    const attr *tt = find_attr(t, "target_obj_type");
    if (type_by_name(tt->value, tt->len) != T_NUMANODE ||
        !parse_dec(find_attr(t, "target_obj_gp_index")->value, UINT64_MAX, &gp) ||
        ref_type(r, gp) != T_NUMANODE)
        return at(r, t->start, "memattr_value whose target is not a NUMANode of the topology");
    if (!parse_dec(find_attr(t, "value")->value, UINT64_MAX, &value))
        return at(r, t->start, "memattr_value value is not a decimal");
    const attr *cpus = find_attr(t, "initiator_cpuset");
    const attr *igp = find_attr(t, "initiator_obj_gp_index");
    const attr *itype = find_attr(t, "initiator_obj_type");
    bool need = p->memattr_flags & 4;
    if (!need && (cpus || igp || itype))
        return at(r, t->start, "memattr_value with an initiator its memattr does not take");
    if (need && cpus && !igp && !itype) {
        bits set;
        int prc = bits_parse(cpus->value, &set);
        bool ok = prc == 0 && set.n > 0 && bits_within(&set, &r->root_cpuset);
        bits_free(&set);
        if (prc == -ENOMEM)
            return oom(r);
        if (!ok)
            return at(r, t->start,
                      "memattr_value initiator_cpuset is not a set of the topology's PUs");
    } else if (need) {
        int type = itype ? type_by_name(itype->value, itype->len) : -1;
        if (cpus || !igp || type < 0 || !parse_dec(igp->value, UINT64_MAX, &gp) ||
            ref_type(r, gp) != type || !has_sets(type))
            return at(r, t->start,
                      "memattr_value initiator is neither a cpuset nor an object of the topology");
    }
    return push(r, E_MEMATTR_VALUE, t->start);
}

static int open_cpukind(reader *r, const tag *t)
{
    int rc = after_root(r, t, "cpukind");
    if (rc == 0)
        rc = only_attrs(r, t, (const char *const[]){"cpuset", "forced_efficiency", NULL},
                        (const char *const[]){"cpuset", NULL});
    if (rc < 0)
        return rc;
    long l;
    const attr *fe = find_attr(t, "forced_efficiency");
    if (fe && !parse_int(fe->value, -1, INT32_MAX, &l))
        return at(r, t->start, "cpukind forced_efficiency is not -1 or more");
    if (++r->nkinds > MAX_CPUKINDS)
        return at(r, t->start, "more than %d CPU kinds", MAX_CPUKINDS);
    bits set;
    rc = bits_parse(find_attr(t, "cpuset")->value, &set);
    if (rc == -ENOMEM)
        return oom(r);
    if (rc < 0)
        return at(r, t->start, "cpukind cpuset is not an hwloc bitmap");
    const char *bad = set.n == 0                            ? "is empty"
                      : !bits_within(&set, &r->root_cpuset) ? "holds CPUs that are not PUs"
                      : bits_overlap(&set, &r->kinds)       ? "overlaps another kind"
                                                            : NULL;
    rc = bad ? at(r, t->start, "cpukind cpuset %s", bad) : bits_or(&r->kinds, &set);
    bits_free(&set);
    if (rc == -ENOMEM)
        return oom(r);
    return rc ? rc : push(r, E_CPUKIND, t->start);
}

static int open_element(reader *r, tag *t)
{
    int e = 0;
    while (e < NELEMS && !name_is(t->name, t->namelen, elem_names[e]))
        e++;
    int rc;
    switch (e) {
    case E_OBJECT: rc = open_object(r, t); break;
    case E_INFO: rc = open_info(r, t); break;
    case E_PAGE_TYPE: rc = open_page_type(r, t); break;
    case E_USERDATA: return open_userdata(r, t);
    case E_DISTANCES: rc = open_distances(r, t, false); break;
    case E_DISTANCES_HETERO: rc = open_distances(r, t, true); break;
    case E_INDEXES: return open_matrix_part(r, t, false);
    case E_U64VALUES: return open_matrix_part(r, t, true);
    case E_SUPPORT: rc = open_support(r, t); break;
    case E_MEMATTR: rc = open_memattr(r, t); break;
    case E_MEMATTR_VALUE: rc = open_memattr_value(r, t); break;
    case E_CPUKIND: rc = open_cpukind(r, t); break;
    case E_TOPOLOGY: return at(r, t->start, "<topology> inside <topology>");
    default: return at(r, t->start, "unknown element <%.*s>", (int)t->namelen, t->name);
    }
    return rc;
}

/* The element on top of the stack ends: its own checks, then pop it. */
static int close_element(reader *r)
{
    frame *f = top(r);
    int rc = 0;
    switch (f->elem) {
    case E_OBJECT: rc = close_object(r, f); break;
    case E_DISTANCES:
    case E_DISTANCES_HETERO: rc = close_distances(r, f); break;
    case E_TOPOLOGY:
        if (!r->root_done)
            rc = at(r, f->start, "<topology> without an <object>");
        break;
    default: break;
    }
    frame_free(f);
    r->depth--;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* The document.                                                             */

/*
 * The header lines.  hwloc's own reader skips every line that starts with
 * "<?xml " or "<!DOCTYPE " up to its newline, whatever it holds, and then
 * wants "<topology" at once; libxml2 parses them.  Only the forms hwloc
 * writes, each on a line of its own, mean the same to both.
 */
static int read_prolog(reader *r)
{
    if (starts(r, "<?xml ")) {
        const char *start = r->p;
        r->p += 6;
        bool ok = starts(r, "version=\"1.0\"");
        if (ok)
            r->p += 13;
        if (ok && (starts(r, " encoding=\"UTF-8\"") || starts(r, " encoding=\"utf-8\"")))
            r->p += 17;
        if (ok && (starts(r, " standalone=\"yes\"") || starts(r, " standalone=\"no\"")))
            r->p += r->p[13] == 'y' ? 17 : 16;
        if (!ok || !starts(r, "?>\n"))
            return at(r, start,
                      "an XML declaration other than <?xml version=\"1.0\" encoding=\"UTF-8\"?> "
                      "on a line of its own");
        r->p += 3;
    }
    if (starts(r, "<!DOCTYPE ")) {
        const char *start = r->p;
        if (starts(r, "<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n"))
            r->p += 40;
        else if (starts(r, "<!DOCTYPE topology SYSTEM \"hwloc.dtd\">\n"))
            r->p += 39;
        else
            return at(r, start,
                      "a DOCTYPE other than <!DOCTYPE topology SYSTEM \"hwloc2.dtd\"> on a line "
                      "of its own");
    }
    if (!starts(r, "<topology")) {
        if (r->p == r->text)
            return at(r, r->p, "does not start with <?xml, <!DOCTYPE or <topology");
        return at(r, r->p, "<topology> does not follow the header lines at once");
    }
    tag *t = malloc(sizeof *t);
    if (!t)
        return oom(r);
    int rc = read_tag(r, t);
    if (rc == 0 && !name_is(t->name, t->namelen, "topology"))
        rc =
            at(r, t->start, "the root element is <%.*s>, not <topology>", (int)t->namelen, t->name);
    const attr *v = rc == 0 ? find_attr(t, "version") : NULL;
    if (rc == 0 && (t->nattrs != 1 || !v))
        rc = at(r, t->start, "<topology> without a version, or with other attributes");
    char buf[40];
    if (rc == 0 && (v->len < 3 || v->value[0] != '2' || v->value[1] != '.' ||
                    strspn(v->value + 2, "0123456789") != v->len - 2 || v->len > 5))
        rc = at(r, t->start,
                "<topology version=\"%s\">: only hwloc 2.x exports are read (version=\"2.0\", "
                "as lstopo 2.x writes)",
                shown(v->value, buf));
    if (rc == 0 && t->empty)
        rc = at(r, t->start, "an empty <topology/>");
    if (rc == 0)
        rc = push(r, E_TOPOLOGY, t->start);
    free(t);
    return rc;
}

/* Blanks and comments; a comment is "<!--" up to the first "-->", without "--" inside. */
static int skip_trailer(reader *r)
{
    for (;;) {
        skip_blanks(r);
        if (!starts(r, "<!--"))
            return 0;
        const char *start = r->p;
        r->p += 4;
        while (r->p < r->end && !starts(r, "--"))
            r->p++;
        if (!starts(r, "-->"))
            return at(r, start, "a comment without its end, or with \"--\" inside");
        r->p += 3;
    }
}

static int read_document(reader *r)
{
    if ((size_t)(r->end - r->text) > MAX_XML_SIZE)
        return pf__fail(r->why, -EINVAL, "%s: larger than %u MiB, not a topology", r->name,
                        MAX_XML_SIZE >> 20);
    int rc = check_bytes(r);
    if (rc == 0)
        rc = read_prolog(r);
    tag *t = malloc(sizeof *t);
    if (!t)
        return rc < 0 ? rc : oom(r);
    while (rc == 0 && r->depth > 0) {
        skip_blanks(r);
        if (r->p == r->end) {
            rc = at(r, r->p, "the file ends inside <%s>", elem_names[top(r)->elem]);
        } else if (*r->p != '<') {
            rc = at(r, r->p, "text inside <%s>", elem_names[top(r)->elem]);
        } else if (starts(r, "<!--")) {
            rc = at(r, r->p, "a comment inside <topology> (hwloc's own XML reader cannot skip it)");
        } else if (starts(r, "</")) {
            const char *name = elem_names[top(r)->elem];
            size_t len = strlen(name);
            if ((size_t)(r->end - r->p) < len + 3 || memcmp(r->p + 2, name, len) != 0 ||
                r->p[2 + len] != '>')
                rc = at(r, r->p, "an end tag that does not close <%s>", name);
            else
                r->p += len + 3;
            if (rc == 0)
                rc = close_element(r);
        } else if (r->p + 1 < r->end && r->p[1] >= 'a' && r->p[1] <= 'z') {
            rc = read_tag(r, t);
            size_t depth = r->depth;
            if (rc == 0)
                rc = open_element(r, t);
            if (rc == 0 && t->empty && r->depth > depth)
                rc = close_element(r);
        } else {
            rc = at(r, r->p, "markup that hwloc does not write");
        }
    }
    free(t);
    if (rc == 0)
        rc = skip_trailer(r);
    if (rc == 0 && r->p != r->end)
        rc = at(r, r->p, "something after </topology>");
    return rc;
}

int pf__hwloc_xml_check(const char *name, const char *xml, size_t len, char **why)
{
    reader *r = calloc(1, sizeof *r);
    if (!r)
        return pf__fail(why, -ENOMEM, "out of memory");
    r->name = name;
    r->text = r->p = xml;
    r->end = xml + len;
    r->why = why;
    int rc = read_document(r);
    while (r->depth > 0)
        frame_free(&r->stack[--r->depth]);
    bits_free(&r->pus);
    bits_free(&r->nodes);
    bits_free(&r->root_cpuset);
    bits_free(&r->kinds);
    free(r->refs);
    free(r->scratch);
    free(r);
    return rc;
}
