/* util.c - internal helpers: messages, int arrays, strict integers. */
#include "base/util.h"

#include "pinfer.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *pf__vstrdupf(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *pf__strdupf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = pf__vstrdupf(fmt, ap);
    va_end(ap);
    return s;
}

int pf__fail(char **why, int code, const char *fmt, ...)
{
    if (why) {
        va_list ap;
        va_start(ap, fmt);
        *why = pf__vstrdupf(fmt, ap);
        va_end(ap);
    }
    return code;
}

int pf__ivec_push(pf__ivec *vec, int x)
{
    if (vec->len == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 16;
        int *v = realloc(vec->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        vec->v = v;
        vec->cap = cap;
    }
    vec->v[vec->len++] = x;
    return 0;
}

void pf__ivec_free(pf__ivec *vec)
{
    free(vec->v);
    vec->v = NULL;
    vec->len = vec->cap = 0;
}

int pf__int_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void pf__ivec_sort_unique(pf__ivec *vec)
{
    if (vec->len < 2)
        return;
    qsort(vec->v, vec->len, sizeof *vec->v, pf__int_cmp);
    size_t out = 1;
    for (size_t i = 1; i < vec->len; i++)
        if (vec->v[i] != vec->v[out - 1])
            vec->v[out++] = vec->v[i];
    vec->len = out;
}

bool pf__sorted_has(const int *v, size_t n, int x)
{
    return v && bsearch(&x, v, n, sizeof *v, pf__int_cmp) != NULL;
}

const char *pf__envp_get(char *const *envp, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], name, len) == 0 && envp[i][len] == '=')
            return envp[i] + len + 1;
    return NULL;
}

cpu_set_t *pf__affinity_read(size_t *size, int *err)
{
    for (size_t ncpus = 1024; ncpus <= PF_ID_LIMIT; ncpus *= 2) {
        cpu_set_t *set = CPU_ALLOC(ncpus);
        if (!set) {
            *err = ENOMEM;
            return NULL;
        }
        size_t bytes = CPU_ALLOC_SIZE(ncpus);
        if (sched_getaffinity(0, bytes, set) == 0) {
            *size = bytes;
            return set;
        }
        *err = errno;
        CPU_FREE(set);
        if (*err != EINVAL)
            return NULL;
    }
    *err = EINVAL;
    return NULL;
}

int pf__parse_int(const char *s, size_t len, long lo, long hi, long *out)
{
    size_t i = 0;
    bool negative = false;
    if (len > 0 && s[0] == '-' && lo < 0) {
        negative = true;
        i = 1;
    }
    if (i == len)
        return -EINVAL;
    long value = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        int digit = s[i] - '0';
        /* Accumulate negatively: LONG_MIN has no positive twin. */
        if (value < (LONG_MIN + 9) / 10)
            return -ERANGE;
        value = value * 10 - digit;
    }
    if (!negative)
        value = -value;
    if (value < lo || value > hi)
        return -ERANGE;
    *out = value;
    return 0;
}

void pf__buf_put(pf__buf *b, const char *text, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *grown = realloc(b->s, cap);
        if (!grown) {
            b->failed = true;
            return;
        }
        b->s = grown;
        b->cap = cap;
    }
    memcpy(b->s + b->len, text, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void pf__buf_puts(pf__buf *b, const char *text)
{
    pf__buf_put(b, text, strlen(text));
}

void pf__buf_printf(pf__buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = pf__vstrdupf(fmt, ap);
    va_end(ap);
    if (text)
        pf__buf_puts(b, text);
    else
        b->failed = true;
    free(text);
}

int pf__buf_take(pf__buf *b, char **out)
{
    pf__buf_put(b, "", 0);
    if (b->failed) {
        pf__buf_free(b);
        *out = NULL;
        return -ENOMEM;
    }
    *out = b->s;
    memset(b, 0, sizeof *b);
    return 0;
}

void pf__buf_free(pf__buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

char *pf_printable(const char *text)
{
    pf__buf b = {0};
    for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++) {
        if (*p == '\n')
            pf__buf_puts(&b, "\\n");
        else if (*p == '\t')
            pf__buf_puts(&b, "\\t");
        else if (*p == '\r')
            pf__buf_puts(&b, "\\r");
        else if (*p < 0x20 || *p == 0x7f)
            pf__buf_printf(&b, "\\x%02x", *p);
        else
            pf__buf_put(&b, (const char *)p, 1);
    }
    char *out = NULL;
    pf__buf_take(&b, &out);
    return out;
}

void pf__format_double(double v, char *buf)
{
    if (!isfinite(v)) {
        snprintf(buf, PF__DOUBLE_TEXT, "null");
        return;
    }
    /* Fixed notation where it is short: 400.0, not 4e+02. */
    bool fixed = v == 0 || (fabs(v) >= 1e-4 && fabs(v) < 1e15);
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, PF__DOUBLE_TEXT, fixed ? "%.*f" : "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            return;
    }
    /* 17 decimals are not always enough in fixed notation (0.0225313869996171 needs 18):
       17 significant digits always read back as the same double. */
    snprintf(buf, PF__DOUBLE_TEXT, "%.17g", v);
}

int pf__strv_take(pf__strv *sv, char *s)
{
    if (!s)
        return -ENOMEM;
    if (sv->len + 1 >= sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 8;
        char **v = realloc(sv->v, cap * sizeof *v);
        if (!v) {
            free(s);
            return -ENOMEM;
        }
        sv->v = v;
        sv->cap = cap;
    }
    sv->v[sv->len++] = s;
    sv->v[sv->len] = NULL;
    return 0;
}

void pf__strv_free(pf__strv *sv)
{
    for (size_t i = 0; i < sv->len; i++)
        free(sv->v[i]);
    free(sv->v);
    memset(sv, 0, sizeof *sv);
}
