/*
 * pinfer - plan, launch and supervise pinned inference instances.
 *
 * The command table: `pinfer NAME ...` runs the command called NAME, and
 * `pinfer --help` / `pinfer NAME --help` are made from this table and the
 * option table.  A new command is a new cmd_<name>.c and a row here.
 * Built on the public API of libpinfer only (the build gives the tools no
 * other header).
 */
#include "tool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const tool_command_def *const COMMANDS[] = {
    &tool_cmd_run,   &tool_cmd_plan,  &tool_cmd_topo, &tool_cmd_serve,
    &tool_cmd_check, &tool_cmd_bench, &tool_cmd_tune};
#define NCOMMANDS (sizeof COMMANDS / sizeof *COMMANDS)

int tool_fail(bool json, int rc, char *why)
{
    const char *msg = why ? why : pf_strerror(rc);
    char *printable = pf_printable(msg);
    fprintf(stderr, "pinfer: error: %s\n", printable ? printable : msg);
    free(printable);
    char *doc = NULL;
    if (json && pf_error_to_json(msg, &doc) == 0) {
        fputs(doc, stdout);
        fflush(stdout);
    }
    free(doc);
    free(why);
    /* Failures of the machine rather than of the input are not usage errors. */
    return rc == -ENOMEM || rc == -ENOTSUP || rc == -EIO ? 1 : EXIT_USAGE;
}

int tool_launch_spec(const tool_options *o, pf_launch_spec **spec)
{
    pf_launch_request req;
    tool_launch_request(o, &req);
    char *why = NULL;
    int rc = pf_launch_spec_create(&req, spec, &why);
    return rc < 0 ? tool_fail(o->json, rc, why) : 0;
}

const char *tool_plural(size_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static void usage_lines(FILE *out)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "%s pinfer %-5s %s\n", i ? "      " : "usage:", COMMANDS[i]->name,
                COMMANDS[i]->args);
}

static void general_help(FILE *out)
{
    usage_lines(out);
    fputs("\nPlan instances over physical cores and NUMA nodes, set OpenMP and the\n"
          "allocator up, bind CPUs and memory, launch and supervise.  A drop-in for\n"
          "`python -m torch.backends.xeon.run_cpu` and `ipexrun`: same options, in\n"
          "their dash and underscore spellings.\n\nCommands:\n",
          out);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-6s %s\n", COMMANDS[i]->name, COMMANDS[i]->summary);
    fputs("\n`pinfer COMMAND --help` lists a command's options.  See pinfer(1).\n", out);
}

static void command_help(const tool_command_def *c, FILE *out)
{
    fprintf(out, "usage: pinfer %s %s\n\n%s\n", c->name, c->args, c->about);
    tool_options_help(c->id, out);
    fputs(
        "\nOptions also take run_cpu's and ipexrun's underscore spellings (--ncores_per_instance)\n"
        "and --opt=value.  See pinfer(1).\n",
        out);
}

static const tool_command_def *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(COMMANDS[i]->name, name) == 0)
            return COMMANDS[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        general_help(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
        general_help(stdout);
        return 0;
    }
    if (strcmp(name, "help") == 0) {
        const tool_command_def *c = argc > 2 ? find_command(argv[2]) : NULL;
        if (c)
            command_help(c, stdout);
        else
            general_help(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("pinfer %s\n", PINFER_VERSION);
        return 0;
    }
    const tool_command_def *c = find_command(name);
    if (!c) {
        char *printable = pf_printable(name);
        fprintf(stderr,
                "pinfer: error: unknown command '%s' (commands:", printable ? printable : "?");
        free(printable);
        for (size_t i = 0; i < NCOMMANDS; i++)
            fprintf(stderr, "%s %s", i ? "," : "", COMMANDS[i]->name);
        fputs(")\n", stderr);
        return EXIT_USAGE;
    }
    tool_options opts;
    char *why = NULL;
    int rc = tool_parse_options(c->id, argc - 1, argv + 1, &opts, &why);
    if (rc == 0 && opts.help) {
        command_help(c, stdout);
        return 0;
    }
    if (rc < 0)
        return tool_fail(c->id != CMD_RUN && tool_options_want_json(argc - 1, argv + 1), rc, why);
    return c->run(&opts);
}
