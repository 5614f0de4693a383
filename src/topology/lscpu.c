/*
 * lscpu.c - topologies from lscpu output.
 *
 * Two formats:
 *   `lscpu --parse[=CPU,Core,Socket,Node,...]`: CSV rows after '#' comment
 *   lines; the last comment line before the rows that is a list of column
 *   names, one of them a column read here, is the header (without one, the
 *   columns are CPU,Core,Socket,Node).  Empty fields are allowed for Node;
 *   a row with empty Core and Socket is an offline CPU.
 *   `lscpu -e` / `lscpu --all --extended`: a whitespace table whose first
 *   line names the columns (at least CPU, CORE, SOCKET; NODE, MAXMHZ, ONLINE
 *   and the cache column are used when present).  Rows with '-' in CPU, CORE
 *   or SOCKET, or "no" under ONLINE, are offline CPUs and skipped.
 * Column names are matched without regard to case.  A header must name CPU,
 * Core and Socket, and no column twice: `# Core,Socket,Node` over rows that
 * start with core ids would otherwise have them read as CPU ids.  A UTF-8
 * byte order mark before the first line is skipped.  Every malformed line is
 * an error naming the input and the line.  Pure: the text is in memory.
 */
#include "topology/topology.h"
#include "base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_COLUMNS 64

/* The two commands whose output this reads, for the messages. */
#define LSCPU_COMMANDS "`lscpu --parse=CPU,Core,Socket,Node` or `lscpu -e`"

enum column {
    COL_OTHER,
    COL_CPU,
    COL_CORE,
    COL_SOCKET,
    COL_NODE,
    COL_MAXMHZ,
    COL_ONLINE,
    COL_CACHE
};

typedef struct field {
    const char *s;
    size_t len;
} field;

typedef struct parser {
    const char *name;
    char **why;
    int line;
    enum column cols[MAX_COLUMNS];
    int cache_sub; /* which ':' sub-field of the cache column is the LLC */
    size_t ncols;
    pf__cpu_row *rows;
    size_t nrows, cap;
} parser;

static bool field_is(field f, const char *word)
{
    return f.len == strlen(word) && strncasecmp(f.s, word, f.len) == 0;
}

/*
 * Name the column; a cache column is either one level ("L3", as in the CSV)
 * or several joined by ':' ("L1d:L1i:L2:L3", as in the table), where the
 * last level listed is the last-level cache: *cache_sub receives the number
 * of ':' in it.
 */
static enum column column_of(field f, int *cache_sub)
{
    if (field_is(f, "CPU"))
        return COL_CPU;
    if (field_is(f, "CORE"))
        return COL_CORE;
    if (field_is(f, "SOCKET"))
        return COL_SOCKET;
    if (field_is(f, "NODE"))
        return COL_NODE;
    if (field_is(f, "MAXMHZ"))
        return COL_MAXMHZ;
    if (field_is(f, "ONLINE"))
        return COL_ONLINE;
    if (field_is(f, "CACHE") || field_is(f, "L3") || field_is(f, "L2") ||
        (f.len > 2 && memchr(f.s, ':', f.len) && (f.s[0] == 'L' || f.s[0] == 'l'))) {
        int colons = 0;
        for (size_t i = 0; i < f.len; i++)
            colons += f.s[i] == ':';
        *cache_sub = colons;
        return COL_CACHE;
    }
    return COL_OTHER;
}

static size_t split(const char *s, size_t len, bool csv, field *out, size_t max, bool *too_many)
{
    size_t n = 0;
    size_t i = 0;
    *too_many = false;
    if (csv) {
        for (;;) {
            size_t start = i;
            while (i < len && s[i] != ',')
                i++;
            if (n == max) {
                *too_many = true;
                return n;
            }
            out[n++] = (field){s + start, i - start};
            if (i >= len)
                break;
            i++; /* past the comma */
        }
        /* Trim blanks inside each field. */
        for (size_t k = 0; k < n; k++) {
            while (out[k].len && (out[k].s[0] == ' ' || out[k].s[0] == '\t')) {
                out[k].s++;
                out[k].len--;
            }
            while (out[k].len &&
                   (out[k].s[out[k].len - 1] == ' ' || out[k].s[out[k].len - 1] == '\t'))
                out[k].len--;
        }
        return n;
    }
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && s[i] != ' ' && s[i] != '\t')
            i++;
        if (n == max) {
            *too_many = true;
            return n;
        }
        out[n++] = (field){s + start, i - start};
    }
    return n;
}

/* Say which of CPU, Core and Socket a header lacks: "CPU", "Core and Socket". */
static void name_missing(bool cpu, bool core, bool socket, char *buf, size_t size)
{
    const char *names[3];
    size_t n = 0;
    if (!cpu)
        names[n++] = "CPU";
    if (!core)
        names[n++] = "Core";
    if (!socket)
        names[n++] = "Socket";
    snprintf(buf, size, "%s%s%s", names[0], n > 1 ? " and " : "", n > 1 ? names[1] : "");
}

static int set_header(parser *p, const field *f, size_t n)
{
    bool seen_cpu = false, seen_core = false, seen_socket = false;
    size_t llc = n; /* the last cache column */
    for (size_t i = 0; i < n; i++) {
        /* A column named twice: which of the two is meant cannot be known. */
        for (size_t j = 0; f[i].len && j < i; j++)
            if (f[j].len == f[i].len && strncasecmp(f[j].s, f[i].s, f[i].len) == 0)
                return pf__fail(p->why, -EINVAL, "%s:%d: the header names the %.*s column twice",
                                p->name, p->line, (int)(f[i].len > 32 ? 32 : f[i].len), f[i].s);
        int sub = 0;
        p->cols[i] = column_of(f[i], &sub);
        /* Several cache columns (CSV "L1d,L1i,L2,L3"): the last one wins. */
        if (p->cols[i] == COL_CACHE) {
            if (llc < n)
                p->cols[llc] = COL_OTHER;
            llc = i;
            p->cache_sub = sub;
        }
        seen_cpu |= p->cols[i] == COL_CPU;
        seen_core |= p->cols[i] == COL_CORE;
        seen_socket |= p->cols[i] == COL_SOCKET;
    }
    p->ncols = n;
    if (!seen_cpu && !seen_core && !seen_socket)
        return pf__fail(p->why, -EINVAL,
                        "%s:%d: not lscpu output: the header must name the CPU, CORE and "
                        "SOCKET columns (as the output of " LSCPU_COMMANDS " does)",
                        p->name, p->line);
    if (!seen_cpu || !seen_core || !seen_socket) {
        char missing[32];
        name_missing(seen_cpu, seen_core, seen_socket, missing, sizeof missing);
        return pf__fail(p->why, -EINVAL,
                        "%s:%d: the header has no %s column%s: it must name CPU, Core and "
                        "Socket, as the output of " LSCPU_COMMANDS " does",
                        p->name, p->line, missing, strchr(missing, ' ') ? "s" : "");
    }
    return 0;
}

static int parse_id_field(parser *p, field f, const char *what, int *out)
{
    long v;
    int rc = pf__parse_int(f.s, f.len, 0, PF_ID_LIMIT - 1, &v);
    if (rc < 0)
        return pf__fail(p->why, -EINVAL, "%s:%d: %s '%.*s' is not %s", p->name, p->line, what,
                        (int)(f.len > 32 ? 32 : f.len), f.s,
                        rc == -ERANGE ? "in range" : "a non-negative integer");
    *out = (int)v;
    return 0;
}

/* A MAXMHZ value: digits, optionally '.' and digits. */
static int parse_mhz(parser *p, field f, double *out)
{
    double v = 0, scale = 0;
    size_t digits = 0;
    for (size_t i = 0; i < f.len; i++) {
        char c = f.s[i];
        if (c == '.' && scale == 0) {
            scale = 1;
        } else if (c >= '0' && c <= '9' && digits < 15) {
            digits++;
            if (scale > 0) {
                scale /= 10;
                v += (c - '0') * scale;
            } else {
                v = v * 10 + (c - '0');
            }
        } else {
            return pf__fail(p->why, -EINVAL, "%s:%d: MAXMHZ '%.*s' is not a frequency", p->name,
                            p->line, (int)(f.len > 32 ? 32 : f.len), f.s);
        }
    }
    if (digits == 0)
        return pf__fail(p->why, -EINVAL, "%s:%d: MAXMHZ '%.*s' is not a frequency", p->name,
                        p->line, (int)(f.len > 32 ? 32 : f.len), f.s);
    *out = v;
    return 0;
}

static bool is_absent(field f)
{
    return f.len == 0 || field_is(f, "-");
}

/* The cache column's LLC id: the cache_sub'th ':'-separated part. */
static int parse_cache(parser *p, field f, int *out)
{
    if (is_absent(f)) {
        *out = -1;
        return 0;
    }
    field part = f;
    int sub = 0;
    size_t start = 0;
    for (size_t i = 0; i <= f.len; i++) {
        if (i == f.len || f.s[i] == ':') {
            if (sub == p->cache_sub)
                part = (field){f.s + start, i - start};
            sub++;
            start = i + 1;
        }
    }
    if (sub != p->cache_sub + 1)
        return pf__fail(p->why, -EINVAL, "%s:%d: cache field '%.*s' does not match its header",
                        p->name, p->line, (int)(f.len > 32 ? 32 : f.len), f.s);
    if (is_absent(part)) {
        *out = -1;
        return 0;
    }
    return parse_id_field(p, part, "cache id", out);
}

static int parse_row(parser *p, const field *f, size_t n)
{
    if (n != p->ncols)
        return pf__fail(p->why, -EINVAL, "%s:%d: %zu fields where the header names %zu", p->name,
                        p->line, n, p->ncols);
    pf__cpu_row row = {.cpu = -1,
                       .core = -1,
                       .socket = -1,
                       .node = -1,
                       .llc = -1,
                       .efficiency = -1,
                       .allowed = true,
                       .line = p->line};
    bool offline = false;
    field cpu = {0}, core = {0}, socket = {0};
    for (size_t i = 0; i < n; i++) {
        switch (p->cols[i]) {
        case COL_CPU: cpu = f[i]; break;
        case COL_CORE: core = f[i]; break;
        case COL_SOCKET: socket = f[i]; break;
        case COL_ONLINE: offline |= field_is(f[i], "no") || field_is(f[i], "N"); break;
        default: break;
        }
    }
    if (is_absent(cpu) && cpu.len == 0)
        return pf__fail(p->why, -EINVAL, "%s:%d: the CPU field is empty", p->name, p->line);
    /* Offline CPUs show '-' (table) or nothing (CSV) where their place would be. */
    if (offline || field_is(cpu, "-") || is_absent(core) || is_absent(socket))
        return 0;
    int rc = parse_id_field(p, cpu, "CPU", &row.cpu);
    if (rc == 0)
        rc = parse_id_field(p, core, "core", &row.core);
    if (rc == 0)
        rc = parse_id_field(p, socket, "socket", &row.socket);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (p->cols[i] == COL_NODE && !is_absent(f[i]))
            rc = parse_id_field(p, f[i], "node", &row.node);
        else if (p->cols[i] == COL_MAXMHZ && !is_absent(f[i]))
            rc = parse_mhz(p, f[i], &row.maxmhz);
        else if (p->cols[i] == COL_CACHE)
            rc = parse_cache(p, f[i], &row.llc);
    }
    if (rc < 0)
        return rc;
    if (p->nrows == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        pf__cpu_row *grown = realloc(p->rows, cap * sizeof *grown);
        if (!grown)
            return pf__fail(p->why, -ENOMEM, "out of memory");
        p->rows = grown;
        p->cap = cap;
    }
    p->rows[p->nrows++] = row;
    return 0;
}

/*
 * A line of plain `lscpu`'s summary ("Architecture:   x86_64", in any
 * language): its first word ends with ':'.  No header of the two formats
 * does (the table's cache column is "L1d:L1i:L2:L3", colons inside).
 */
static bool is_summary_line(const char *s, size_t len)
{
    size_t word = 0;
    while (word < len && s[word] != ' ' && s[word] != '\t')
        word++;
    return word > 1 && s[word - 1] == ':';
}

/*
 * A CSV comment line that names columns ("# CPU,Core,Socket,Node,,L1d,L1i",
 * in any order, or "# Core,Socket,Node" from `lscpu --parse=Core,Socket,Node`):
 * every comma-separated field is a word (a column name: letters, digits and
 * "%:_-") or empty, and one of them is a column read here.  lscpu's prose
 * comments above the header ("# The following is the parsable format, which
 * can be fed to other") have blanks inside their fields; "# generated" names
 * no column.  Whether the header names the columns needed, each once, is for
 * set_header to say.
 */
static bool is_csv_header(const char *s, size_t len)
{
    field f[MAX_COLUMNS];
    bool too_many, known = false;
    size_t n = split(s + 1, len - 1, true, f, MAX_COLUMNS, &too_many);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < f[i].len; k++) {
            char c = f[i].s[k];
            bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || strchr("%:_-", c);
            if (!word || c == '\0')
                return false;
        }
        int sub;
        known |= f[i].len > 0 && column_of(f[i], &sub) != COL_OTHER;
    }
    return known;
}

int pf__topology_parse_lscpu(const char *name, const char *text, size_t len, pf_topology **out,
                             char **why)
{
    parser p = {.name = name, .why = why};
    field fields[MAX_COLUMNS];
    int rc = 0;
    int format = 0; /* 0 unknown yet, 1 CSV, 2 table */
    /* A UTF-8 byte order mark (Windows editors write one) is not part of line 1. */
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        text += 3;
        len -= 3;
    }
    const char *csv_header = NULL;
    size_t csv_header_len = 0;
    int csv_header_line = 0;
    size_t pos = 0;
    while (pos < len && rc == 0) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        p.line++;
        if (n && s[n - 1] == '\r')
            n--;
        size_t lead = 0;
        while (lead < n && (s[lead] == ' ' || s[lead] == '\t'))
            lead++;
        if (lead == n)
            continue;
        if (s[lead] == '#') {
            if (format == 0 && is_csv_header(s + lead, n - lead)) {
                csv_header = s + lead + 1;
                csv_header_len = n - lead - 1;
                csv_header_line = p.line;
            }
            continue;
        }
        if (format == 0 && is_summary_line(s + lead, n - lead)) {
            rc = pf__fail(why, -EINVAL,
                          "%s:%d: this is plain lscpu's summary, which does not say which core "
                          "each CPU is on: give the output of " LSCPU_COMMANDS,
                          name, p.line);
            break;
        }
        if (format == 0) {
            bool too_many;
            size_t k;
            if (memchr(s, ',', n) || csv_header) {
                format = 1;
                if (csv_header) {
                    int line = p.line;
                    p.line = csv_header_line;
                    k = split(csv_header, csv_header_len, true, fields, MAX_COLUMNS, &too_many);
                    rc = too_many ? pf__fail(why, -EINVAL, "%s:%d: more than %d columns", name,
                                             p.line, MAX_COLUMNS)
                                  : set_header(&p, fields, k);
                    p.line = line;
                } else {
                    static const char *const defaults[] = {"CPU", "Core", "Socket", "Node"};
                    for (k = 0; k < 4; k++)
                        fields[k] = (field){defaults[k], strlen(defaults[k])};
                    rc = set_header(&p, fields, 4);
                }
                if (rc < 0)
                    break;
                /* Without a header the Node column may be absent. */
                if (!csv_header) {
                    size_t commas = 0;
                    for (size_t i = 0; i < n; i++)
                        commas += s[i] == ',';
                    if (commas == 2)
                        p.ncols = 3;
                }
            } else {
                format = 2;
                k = split(s, n, false, fields, MAX_COLUMNS, &too_many);
                rc = too_many ? pf__fail(why, -EINVAL, "%s:%d: more than %d columns", name, p.line,
                                         MAX_COLUMNS)
                              : set_header(&p, fields, k);
                continue;
            }
        }
        bool too_many;
        size_t k = split(s, n, format == 1, fields, MAX_COLUMNS, &too_many);
        if (too_many)
            rc = pf__fail(why, -EINVAL, "%s:%d: more than %d columns", name, p.line, MAX_COLUMNS);
        else
            rc = parse_row(&p, fields, k);
    }
    if (rc == 0 && format == 0)
        rc = pf__fail(
            why, -EINVAL,
            "%s: not lscpu output: no CPU rows (expected the output of " LSCPU_COMMANDS ")", name);
    if (rc == 0)
        rc = pf__topology_build(name, false, p.rows, p.nrows, out, why);
    free(p.rows);
    return rc;
}
