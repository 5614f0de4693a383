/*
 * shell.c - a command line as a person reads it and a shell reads it back:
 * the launcher's info lines and `pinfer plan`'s table show commands this way.
 */
#include "base/util.h"

#include "pinfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* One byte inside bash's $'...': \n, \t, \xHH, \' and \\ escaped. */
static void put_ansi_c(pf__buf *b, unsigned char c)
{
    char esc[8] = {(char)c, '\0'};
    if (c == '\n')
        snprintf(esc, sizeof esc, "\\n");
    else if (c == '\t')
        snprintf(esc, sizeof esc, "\\t");
    else if (is_control(c))
        snprintf(esc, sizeof esc, "\\x%02x", c);
    else if (c == '\'' || c == '\\')
        snprintf(esc, sizeof esc, "\\%c", c);
    pf__buf_puts(b, esc);
}

/*
 * One argument as a shell reads it back: plain words as they are, others in
 * single quotes; an argument with control characters (a newline) in bash's
 * $'...' so that the log line stays one line.
 */
static void put_quoted(pf__buf *b, const char *arg)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                "_./=:,+-@%";
    const unsigned char *p;
    bool is_plain = *arg != '\0', control = false;
    for (p = (const unsigned char *)arg; *p; p++) {
        is_plain = is_plain && strchr(plain, *p);
        control = control || is_control(*p);
    }
    if (is_plain) {
        pf__buf_puts(b, arg);
    } else if (control) {
        pf__buf_puts(b, "$'");
        for (p = (const unsigned char *)arg; *p; p++)
            put_ansi_c(b, *p);
        pf__buf_puts(b, "'");
    } else {
        pf__buf_puts(b, "'");
        for (p = (const unsigned char *)arg; *p; p++)
            if (*p == '\'')
                pf__buf_puts(b, "'\\''");
            else
                pf__buf_put(b, (const char *)p, 1);
        pf__buf_puts(b, "'");
    }
}

char *pf_shell_join(char *const *argv)
{
    pf__buf line = {0};
    for (size_t i = 0; argv && argv[i]; i++) {
        if (i)
            pf__buf_puts(&line, " ");
        put_quoted(&line, argv[i]);
    }
    char *out = NULL;
    pf__buf_take(&line, &out);
    return out;
}
