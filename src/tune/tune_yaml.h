/*
 * tune_yaml.h - what spacefile.c (--space files) and conf.c (hypertune's
 * configuration) share: libyaml's document tree with line numbers, and the
 * checks on values that both apply before a knob is set.
 */
#ifndef PF_TUNE_YAML_H
#define PF_TUNE_YAML_H

#include "pinfer.h"

#include <yaml.h>

/*
 * Load the first document of a YAML text into *doc (yaml_document_delete()
 * it after a success).  An empty text gives a document without a root node.
 * -EINVAL with *why "SOURCE:LINE: not valid YAML: ..." or -ENOMEM.
 */
int pf__tune_yaml_load(yaml_document_t *doc, const char *text, size_t len, const char *source,
                       char **why);
/* The 1-based line where a node starts. */
int pf__tune_yaml_line(const yaml_node_t *node);
/* A scalar's text, or NULL for another node or a scalar holding a NUL byte. */
const char *pf__tune_yaml_scalar(const yaml_node_t *node);
/* true for an empty plain scalar or "~" / "null" (YAML's null: `key:` with nothing after it). */
bool pf__tune_yaml_is_null(const yaml_node_t *node);
/* "a mapping", "a list", "a string", "nothing" (null): for "... is expected, not %s". */
const char *pf__tune_yaml_kind(const yaml_node_t *node);
/*
 * The first key of a mapping that repeats an earlier one (YAML says keys
 * are unique, libyaml does not check), or NULL.  Keys that are not scalars
 * are not compared.
 */
const yaml_node_t *pf__tune_yaml_repeated_key(yaml_document_t *doc, const yaml_node_t *map);

/*
 * Check one value of a knob as pf_tune_space_set() does and write its
 * canonical text to canon (numbers without leading zeros: "02x4" is
 * "2x4").  -EINVAL with *why "KNOB: 'VALUE' ..." (the value shortened and
 * made printable).
 */
#define PF__TUNE_VALUE_MAX 32
int pf__tune_value_check(pf_tune_knob knob, const char *value, char canon[PF__TUNE_VALUE_MAX],
                         char **why);

#endif /* PF_TUNE_YAML_H */
