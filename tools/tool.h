/*
 * tool.h - what the commands of the `pinfer` tool share: the command table's
 * row type and the way errors are reported.  Each command is one file,
 * cmd_<name>.c, defining one tool_command_def; main.c lists them, and the
 * help is made from that list and the option table (options.c).
 */
#ifndef PF_TOOL_H
#define PF_TOOL_H

#include "options.h"

#include <stdbool.h>

#define EXIT_USAGE 2

typedef struct tool_command_def {
    const char *name;
    tool_command id;
    const char *args;    /* what follows the options in the usage line */
    const char *summary; /* one line, for `pinfer --help` */
    const char *about;   /* a paragraph, for `pinfer NAME --help` */
    int (*run)(const tool_options *opts);
} tool_command_def;

extern const tool_command_def tool_cmd_run;
extern const tool_command_def tool_cmd_plan;
extern const tool_command_def tool_cmd_topo;
extern const tool_command_def tool_cmd_serve;
extern const tool_command_def tool_cmd_check;
extern const tool_command_def tool_cmd_bench;
extern const tool_command_def tool_cmd_tune;

/*
 * Report a failure as "pinfer: error: <why>" (and {"error": ...} on stdout
 * with --json); free why.  Returns the exit status: 2 for what the user
 * asked, 1 for what the machine could not do (no memory, hwloc failing).
 */
int tool_fail(bool json, int rc, char *why);

/* The launch spec of run's and plan's options: 0, or the exit status of the failure (reported). */
int tool_launch_spec(const tool_options *opts, pf_launch_spec **spec);

/* "1 CPU", "2 CPUs": the word for n. */
const char *tool_plural(size_t n, const char *one, const char *many);

#endif /* PF_TOOL_H */
