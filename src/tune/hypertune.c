/*
 * hypertune.c - IPEX hypertune's objective line, as a program prints it:
 *
 *     @hypertune {'name': 'latency (ms)', 'higher_is_better': False, 'target_val': 10}
 *
 * (Python's print() of a dict) and the objective's number on the next line.
 * The marker may stand anywhere in the line: a logger's prefix is common.
 * After it comes one Python dict literal of scalars: keys and strings in
 * single or double quotes with the escapes repr() writes (\' \" \\ \n \t
 * \r), True / False (and true / false / 1 / 0, which hand-written lines
 * use), numbers (inf and nan too: repr() of a float), None.  Keys other
 * than name, higher_is_better and target_val are ignored, as hypertune
 * ignores them; a repeated key's last value counts, as in Python.  After
 * the closing brace only blanks may follow: text there means the line is
 * not what the program meant to print, and guessing would tune the wrong
 * thing.
 */
#include "pinfer.h"

#include "base/util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MARKER "@hypertune"
#define MAX_NAME 256

typedef struct cursor {
    const char *p;
    char **why;
} cursor;

static void blanks(cursor *c)
{
    while (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n')
        c->p++;
}

static int bad(cursor *c, const char *what)
{
    return pf__fail(c->why, -EINVAL, "malformed @hypertune line: %s", what);
}

/* A quoted string into a malloc'd *out (NULL out: checked and skipped). */
static int string(cursor *c, char **out)
{
    char quote = *c->p;
    if (quote != '\'' && quote != '"')
        return bad(c, "a quoted string is expected ('name')");
    c->p++;
    pf__buf b = {0};
    pf__buf_put(&b, "", 0);
    for (;;) {
        char ch = *c->p;
        if (ch == '\0') {
            pf__buf_free(&b);
            return bad(c, "a string is not closed");
        }
        c->p++;
        if (ch == quote)
            break;
        if (ch == '\\') {
            char e = *c->p;
            static const char FROM[] = "'\"\\ntr", TO[] = "'\"\\\n\t\r";
            const char *at = e ? strchr(FROM, e) : NULL;
            if (!at) {
                pf__buf_free(&b);
                return bad(c, "an escape other than \\' \\\" \\\\ \\n \\t \\r in a string");
            }
            ch = TO[at - FROM];
            c->p++;
        }
        pf__buf_put(&b, &ch, 1);
    }
    if (!out) {
        pf__buf_free(&b);
        return 0;
    }
    return pf__buf_take(&b, out);
}

static bool word(cursor *c, const char *w)
{
    size_t n = strlen(w);
    if (strncmp(c->p, w, n) != 0 || isalnum((unsigned char)c->p[n]) || c->p[n] == '_')
        return false;
    c->p += n;
    return true;
}

/* True / False / true / false / 1 / 0. */
static int boolean(cursor *c, bool *out)
{
    if (word(c, "True") || word(c, "true") || word(c, "1"))
        return *out = true, 0;
    if (word(c, "False") || word(c, "false") || word(c, "0"))
        return *out = false, 0;
    return bad(c, "higher_is_better is True or False");
}

/* A Python number (int or float, inf and nan included), in the C locale's syntax. */
static int number(cursor *c, const char *key)
{
    const char *what = strcmp(key, "target_val") == 0
                           ? "target_val is a number"
                           : "a value is a number, a string, True, False or None";
    const char *s = c->p;
    if (*s == '+' || *s == '-')
        s++;
    if (strncmp(s, "inf", 3) == 0 || strncmp(s, "nan", 3) == 0) {
        c->p = s + 3;
        return isalnum((unsigned char)*c->p) ? bad(c, what) : 0;
    }
    /* Digits, one point, an exponent: checked by hand, since strtod follows the locale. */
    size_t digits = 0;
    while (isdigit((unsigned char)*s) || *s == '_')
        digits += *s++ != '_';
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s) || *s == '_';)
            digits += *s++ != '_';
    if (digits == 0)
        return bad(c, what);
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return bad(c, what);
        while (isdigit((unsigned char)*s))
            s++;
    }
    if (isalnum((unsigned char)*s) || *s == '.')
        return bad(c, what);
    c->p = s;
    return 0;
}

/* Any other key's value: a scalar literal, skipped. */
static int skip_value(cursor *c, const char *key)
{
    if (*c->p == '\'' || *c->p == '"')
        return string(c, NULL);
    if (word(c, "None") || word(c, "True") || word(c, "False") || word(c, "true") ||
        word(c, "false"))
        return 0;
    return number(c, key);
}

int pf_tune_hypertune_line(const char *line, char **name, bool *higher_is_better, char **why)
{
    if (why)
        *why = NULL;
    if (!line || !name || !higher_is_better)
        return pf__fail(why, -EINVAL, "nothing to read");
    *name = NULL;
    const char *at = strstr(line, MARKER);
    if (!at)
        return 0;
    cursor c = {at + strlen(MARKER), why};
    blanks(&c);
    if (*c.p != '{')
        return bad(&c, "a dict {'name': ...} is expected after @hypertune");
    c.p++;
    char *got = NULL;
    bool hib = false;
    int rc = 0;
    blanks(&c);
    while (rc == 0 && *c.p != '}') {
        char *key = NULL;
        if ((rc = string(&c, &key)) < 0)
            break;
        blanks(&c);
        if (*c.p != ':') {
            free(key);
            rc = bad(&c, "':' is expected after a key");
            break;
        }
        c.p++;
        blanks(&c);
        if (strcmp(key, "name") == 0) {
            free(got);
            got = NULL;
            if (*c.p != '\'' && *c.p != '"')
                rc = bad(&c, "name is a quoted string");
            else
                rc = string(&c, &got);
        } else if (strcmp(key, "higher_is_better") == 0) {
            rc = boolean(&c, &hib);
        } else if (strcmp(key, "target_val") == 0) {
            rc = word(&c, "None") ? 0 : number(&c, key);
        } else {
            rc = skip_value(&c, key);
        }
        free(key);
        if (rc < 0)
            break;
        blanks(&c);
        if (*c.p == ',') {
            c.p++;
            blanks(&c);
        } else if (*c.p != '}') {
            rc = bad(&c, "',' or '}' is expected after a value");
        }
    }
    if (rc == 0) {
        c.p++;
        blanks(&c);
        if (*c.p)
            rc = bad(&c, "text after the closing '}'");
        else if (!got)
            rc = bad(&c, "'name' is missing");
        else if (!*got || strlen(got) > MAX_NAME)
            rc = bad(&c, "'name' is empty or longer than 256 bytes");
        else
            for (const unsigned char *p = (const unsigned char *)got; *p && rc == 0; p++)
                if (*p < 0x20 || *p == 0x7f)
                    rc = bad(&c, "'name' holds a control character");
    }
    if (rc < 0) {
        free(got);
        return rc;
    }
    *name = got;
    *higher_is_better = hib;
    return 1;
}
