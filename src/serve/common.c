/*
 * common.c - what the files of src/serve share: one-line messages, string
 * arrays, and shell-like word splitting (cpu_launcher_args).
 */
#include "serve/serve.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int pf__serve_fail(char **why, int code, const char *fmt, ...)
{
    if (why) {
        va_list ap;
        va_start(ap, fmt);
        char *text = pf__vstrdupf(fmt, ap);
        va_end(ap);
        *why = text ? pf_printable(text) : NULL;
        free(text);
    }
    return code;
}

/*
 * The states of shlex.split (posix=True, comments off): between words,
 * in a word, in single quotes, in double quotes.  A word exists from its
 * first character or quote on, so '' is an empty word.
 */
int pf__shell_split(const char *text, char ***argv, size_t *argc, char **why)
{
    pf__strv words = {0};
    pf__buf word = {0};
    bool in_word = false;
    char quote = 0;
    int rc = 0;
    for (const char *p = text ? text : "";; p++) {
        char c = *p;
        if (quote) {
            if (c == '\0') {
                rc = pf__serve_fail(why, -EINVAL, "no closing quotation (%c)", quote);
                break;
            }
            if (c == quote) {
                quote = 0;
            } else if (quote == '"' && c == '\\' && (p[1] == '"' || p[1] == '\\')) {
                pf__buf_put(&word, ++p, 1);
            } else {
                pf__buf_put(&word, p, 1);
            }
            continue;
        }
        if (c == '\0' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
            c == '\v') {
            if (in_word) {
                char *w = NULL;
                rc = pf__buf_take(&word, &w);
                if (rc == 0)
                    rc = pf__strv_take(&words, w);
                if (rc < 0)
                    break;
                in_word = false;
            }
            if (c == '\0')
                break;
            continue;
        }
        in_word = true;
        if (c == '\'' || c == '"') {
            quote = c;
            pf__buf_put(&word, "", 0);
        } else if (c == '\\') {
            if (p[1] == '\0') {
                rc = pf__serve_fail(why, -EINVAL, "no escaped character after the last backslash");
                break;
            }
            pf__buf_put(&word, ++p, 1);
        } else {
            pf__buf_put(&word, p, 1);
        }
    }
    if (rc == 0 && word.failed)
        rc = -ENOMEM;
    pf__buf_free(&word);
    if (rc == 0 && !words.v && !(words.v = calloc(1, sizeof *words.v)))
        rc = -ENOMEM;
    if (rc < 0) {
        pf__strv_free(&words);
        return rc;
    }
    *argv = words.v;
    *argc = words.len;
    return 0;
}
