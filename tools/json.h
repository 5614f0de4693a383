/*
 * json.h - a minimal streaming JSON writer for the tool's --json output.
 * Commas are placed automatically; strings are escaped (UTF-8 passes
 * through, control characters become \u00XX).
 */
#ifndef PF_TOOL_JSON_H
#define PF_TOOL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

typedef struct json_writer {
    FILE *out;
    int depth;
    bool need_comma[JSON_MAX_DEPTH];
    bool after_key;
} json_writer;

void json_init(json_writer *w, FILE *out);
void json_begin_object(json_writer *w);
void json_end_object(json_writer *w);
void json_begin_array(json_writer *w);
void json_end_array(json_writer *w);
void json_key(json_writer *w, const char *key);
void json_string(json_writer *w, const char *s); /* NULL writes null */
void json_int(json_writer *w, long long v);
void json_bool(json_writer *w, bool v);
void json_null(json_writer *w);
void json_int_array(json_writer *w, const int *v, size_t n);
/* Ends the document with a newline. */
void json_finish(json_writer *w);

#endif /* PF_TOOL_JSON_H */
