/*
 * json.h - the library's one JSON writer: a document built in a pf__buf.
 *
 * Every JSON the project prints (`pinfer plan --json`, `pinfer topo --json`,
 * the Python package's dicts, later the server's replies) is written by a
 * serialiser in the library on top of this, so that two writers of one model
 * can never disagree.  Commas are placed automatically; strings are escaped
 * (UTF-8 passes through, control characters become \u00XX).
 */
#ifndef PF_JSON_H
#define PF_JSON_H

#include "base/util.h"

#include <stdbool.h>
#include <stddef.h>

#define PF__JSON_MAX_DEPTH 32

typedef struct pf__json {
    pf__buf out;
    int depth;
    bool need_comma[PF__JSON_MAX_DEPTH];
    bool after_key;
} pf__json;

void pf__json_init(pf__json *w);
void pf__json_begin_object(pf__json *w);
void pf__json_end_object(pf__json *w);
void pf__json_begin_array(pf__json *w);
void pf__json_end_array(pf__json *w);
void pf__json_key(pf__json *w, const char *key);
void pf__json_string(pf__json *w, const char *s); /* NULL writes null */
void pf__json_int(pf__json *w, long long v);
void pf__json_double(pf__json *w, double v); /* shortest exact text, 4.0, 2.5; not finite: null */
void pf__json_bool(pf__json *w, bool v);
void pf__json_null(pf__json *w);
/* A value already written as JSON (a document of the caller's), put in as it is. */
void pf__json_raw(pf__json *w, const char *json);
void pf__json_int_array(pf__json *w, const int *v, size_t n);
void pf__json_string_array(pf__json *w, char *const *v, size_t n);
/* A key and its value in one call. */
void pf__json_member_int(pf__json *w, const char *key, long long v);
void pf__json_member_string(pf__json *w, const char *key, const char *s);
/* End the document with a newline and hand it over: 0 or -ENOMEM. */
int pf__json_finish(pf__json *w, char **out);

#endif /* PF_JSON_H */
