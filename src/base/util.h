/*
 * util.h - small internal helpers shared by the library's files: error
 * messages, formatted strings, growable int arrays, strict number parsing.
 */
#ifndef PF_UTIL_H
#define PF_UTIL_H

#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#if defined(__GNUC__)
#define PF__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PF__PRINTF(f, a)
#endif

/* A malloc'd formatted string, or NULL when out of memory. */
char *pf__strdupf(const char *fmt, ...) PF__PRINTF(1, 2);
char *pf__vstrdupf(const char *fmt, va_list ap) PF__PRINTF(1, 0);

/*
 * Report a failure: when why is not NULL, *why receives the formatted message
 * (malloc'd; left NULL if that allocation fails).  Returns code, so that
 * callers can write `return pf__fail(why, -EINVAL, "...", ...);`.
 */
int pf__fail(char **why, int code, const char *fmt, ...) PF__PRINTF(3, 4);

/* A growable array of ints. */
typedef struct pf__ivec {
    int *v;
    size_t len;
    size_t cap;
} pf__ivec;

/* Append x; returns 0 or -ENOMEM. */
int pf__ivec_push(pf__ivec *vec, int x);
void pf__ivec_free(pf__ivec *vec);
/* Sort ascending and drop duplicates. */
void pf__ivec_sort_unique(pf__ivec *vec);
/* qsort comparator for ints. */
int pf__int_cmp(const void *a, const void *b);
/* true when the sorted array holds x. */
bool pf__sorted_has(const int *v, size_t n, int x);

/* The value of `name` in envp ("NAME=value" strings, NULL-terminated; NULL: none), or NULL. */
const char *pf__envp_get(char *const *envp, const char *name);

/*
 * The calling thread's affinity mask (sched_getaffinity(0)), in a buffer
 * grown until the kernel accepts its size (1024 CPUs' worth on most
 * machines, more on larger ones).  Returns the mask (CPU_FREE() it) with its
 * size in bytes, or NULL with *err set (ENOMEM, or the kernel's errno).
 */
cpu_set_t *pf__affinity_read(size_t *size, int *err);

/*
 * Parse all of [s, s + len) as a decimal integer in [lo, hi]: no sign unless
 * lo < 0, no spaces, no trailing characters.  Returns 0 or -EINVAL / -ERANGE.
 */
int pf__parse_int(const char *s, size_t len, long lo, long hi, long *out);

/*
 * A growable string.  Appends after a failed allocation do nothing and
 * `failed` stays set, so that a writer checks once, at the end.
 */
typedef struct pf__buf {
    char *s; /* NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
    bool failed;
} pf__buf;

void pf__buf_put(pf__buf *b, const char *text, size_t n);
void pf__buf_puts(pf__buf *b, const char *text);
void pf__buf_printf(pf__buf *b, const char *fmt, ...) PF__PRINTF(2, 3);
/* Hand the string over (malloc'd, "" when empty): 0, or -ENOMEM (and the buffer freed). */
int pf__buf_take(pf__buf *b, char **out);
void pf__buf_free(pf__buf *b);

/* Room for any text of pf__format_double. */
#define PF__DOUBLE_TEXT 48

/*
 * v as the shortest decimal text that reads back as v, with ".0" when it is
 * whole: 4 -> "4.0", 2.5 -> "2.5", 0.33333 -> "0.33333" (quotas in messages
 * and JSON).  Very large or small values use an exponent; not finite: "null".
 * buf holds PF__DOUBLE_TEXT bytes.
 */
void pf__format_double(double v, char *buf);

/* A NULL-terminated growable string array. */
typedef struct pf__strv {
    char **v;
    size_t len;
    size_t cap;
} pf__strv;

/* Append s (taken over: freed on failure); 0 or -ENOMEM.  s NULL: -ENOMEM. */
int pf__strv_take(pf__strv *sv, char *s);
void pf__strv_free(pf__strv *sv);

#endif /* PF_UTIL_H */
