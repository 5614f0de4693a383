/*
 * hwloc_xml.h - the check an hwloc XML topology passes before hwloc reads it.
 *
 * hwloc's XML importer trusts its input: hwloc 2.9 dereferences NULL on
 * well-formed files that merely omit what its own exports always write.  So
 * pinfer reads the file first, with a small strict reader of the XML that
 * hwloc 2.x writes, and refuses whatever breaks an invariant the importer
 * relies on.  The rules are in hwloc_xml.c and docs/topology.md.
 */
#ifndef PF_HWLOC_XML_H
#define PF_HWLOC_XML_H

#include <stddef.h>

/*
 * Check xml[0, len) (NUL bytes are refused, so no terminator is needed).
 * `name` names the file in messages.  Returns 0 when hwloc may read it;
 * -EINVAL with *why = "<name>: line N: <what is wrong>" (one line) when not;
 * -ENOMEM.  No I/O, no global state: safe from any thread.
 *
 * The caller must load the accepted text with the flags of
 * pf__topology_load_hwloc() (HWLOC_TOPOLOGY_FLAG_NO_DISTANCES and
 * HWLOC_TOPOLOGY_FLAG_NO_MEMATTRS where hwloc has them): distances and memory
 * attributes are checked for form and references here, not for every
 * combination hwloc's core would have to resolve.
 */
int pf__hwloc_xml_check(const char *name, const char *xml, size_t len, char **why);

#endif /* PF_HWLOC_XML_H */
