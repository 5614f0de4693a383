/*
 * serve.h - internal interface of the server's library part (src/serve/):
 * the Java properties reader under config.c, the messages they share, and
 * the word splitter of cpu_launcher_args.
 *
 * Only src/serve/ includes jansson (config.c, for the `models` JSON); the
 * public header shows none of its types.
 */
#ifndef PF_SERVE_H
#define PF_SERVE_H

#include "base/util.h"
#include "pinfer.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * One property of a properties text, as java.util.Properties.load reads it
 * (docs/serve.md, "Syntax"): escapes converted, continuation lines joined,
 * unescaped trailing whitespace of the value dropped.  `line` is the
 * physical line the logical line starts on.  A value that spans several
 * physical lines records where each starts: value byte breaks[i] is the
 * first byte that came from line lines[i] (breaks[0] = 0, lines[0] = line),
 * so that a JSON error inside a long `models` value can name its own line.
 */
typedef struct pf__property {
    char *key;
    char *value;
    size_t value_len; /* strlen(value): escapes cannot produce a NUL */
    int line;
    size_t *breaks;
    int *lines;
    size_t nbreaks;
} pf__property;

typedef struct pf__properties {
    pf__property *v; /* in file order, duplicates kept */
    size_t len;
    size_t cap;
} pf__properties;

/*
 * Read a properties text.  Errors (-EINVAL, *why "SOURCE:LINE: ..."): a NUL
 * byte, bytes that are not UTF-8 outside comments, a malformed \uXXXX
 * escape, half a surrogate pair, \u0000.  -ENOMEM.  On success *out holds
 * every key-value line (free with pf__properties_free); on failure nothing.
 */
int pf__properties_parse(const char *source, const char *text, size_t len, pf__properties *out,
                         char **why);
void pf__properties_free(pf__properties *props);

/* The physical line of byte `offset` of a property's value. */
int pf__property_line_at(const pf__property *prop, size_t offset);

/* true when [s, s + n) is well-formed UTF-8 (no overlong forms, no surrogates). */
bool pf__utf8_valid(const char *s, size_t n);

/*
 * pf__fail, with the formatted message made one printable line
 * (pf_printable): values quoted in a message may hold a newline.
 */
int pf__serve_fail(char **why, int code, const char *fmt, ...) PF__PRINTF(3, 4);

/*
 * Split text into words as Python's shlex.split (a POSIX shell without
 * expansions): blanks separate words, '...' is literal, "..." is literal
 * but for \" and \\, a backslash outside quotes takes the next character
 * literally.  *argv is NULL-terminated (free with pf_strv_free) and *argc
 * its length.  Errors: -EINVAL with *why ("no closing quotation",
 * "no escaped character"), -ENOMEM.
 */
int pf__shell_split(const char *text, char ***argv, size_t *argc, char **why);

/*
 * The rule of model names (pf_serve_model_name_check), for model names and
 * versions alike: `what` names the thing in the message ("model name").
 */
int pf__serve_name_check(const char *what, const char *name, char **why);

#endif /* PF_SERVE_H */
