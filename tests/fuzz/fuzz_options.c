/*
 * fuzz_options.c - libFuzzer target for the whole way from a command line
 * to a launch specification: the option parser of the tool (run and plan,
 * both spellings, --opt=value), the PINFER_* / LOCAL_* numbers, the
 * planner, the LD_PRELOAD merge with an environment of the input's making,
 * the command line and the plan's JSON.
 *
 * The input is NUL-separated words.  The first byte picks the command and a
 * topology (synthetic, loaded once: no file is ever read from the input);
 * words "E:NAME=value" become the instances' starting environment, words
 * "V:NAME=value" set one of the variables the parser reads; the rest is
 * argv.  Nothing may crash or leak; a refusal must come with a message; a
 * spec must hold what the parser asked for.
 */
#include "options.h"
#include "pinfer.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_WORDS 64

static const char *const TOPOLOGIES[] = {
    "synthetic:pack:2 numa:2 core:4 pu:2",
    "synthetic:pack:1 core:2 pu:1",
    "synthetic:pack:2 core:3 pu:2",
    "synthetic:pack:4 numa:1 core:2 pu:1",
};
#define NTOPOLOGIES (sizeof TOPOLOGIES / sizeof *TOPOLOGIES)

/* The variables the parser reads that an input may set. */
static const char *const PARSER_VARS[] = {"LOCAL_RANK", "LOCAL_WORLD_SIZE", "PINFER_GRACE_MS"};
#define NPARSER_VARS (sizeof PARSER_VARS / sizeof *PARSER_VARS)

static pf_topology *topology(size_t k)
{
    static pf_topology *loaded[NTOPOLOGIES];
    if (!loaded[k] && pf_topology_load(TOPOLOGIES[k], &loaded[k], NULL) < 0)
        abort();
    return loaded[k];
}

static bool allowed_var(const char *word)
{
    for (size_t i = 0; i < NPARSER_VARS; i++) {
        size_t n = strlen(PARSER_VARS[i]);
        if (strncmp(word, PARSER_VARS[i], n) == 0 && word[n] == '=')
            return true;
    }
    return false;
}

static void check_spec(const tool_options *o, const pf_launch_spec *spec)
{
    if (!spec->plan || spec->plan->ninstances == 0 || !spec->env || !spec->envp)
        abort();
    if ((o->program != NULL) != (spec->argv != NULL))
        abort();
    for (size_t i = 0; i < spec->plan->ninstances; i++)
        if (!spec->envp[i] || !spec->binding[i])
            abort();
    char *doc = NULL;
    if (pf_launch_spec_to_json(spec, &doc) == 0) {
        size_t n = strlen(doc);
        if (n < 3 || doc[0] != '{' || doc[n - 2] != '}' || doc[n - 1] != '\n')
            abort();
    }
    free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    char *copy = malloc(size + 1);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    char *argv[MAX_WORDS + 2], *environ_in[MAX_WORDS + 1];
    size_t argc = 1, nenv = 0;
    argv[0] = (data[0] & 1) ? "run" : "plan";
    for (size_t i = 0; i < NPARSER_VARS; i++)
        unsetenv(PARSER_VARS[i]);
    unsetenv("PINFER_TOPOLOGY");
    for (char *w = copy; w < copy + size - 1 && argc < MAX_WORDS; w += strlen(w) + 1) {
        if (strncmp(w, "E:", 2) == 0 && strchr(w, '='))
            environ_in[nenv++] = w + 2;
        else if (strncmp(w, "V:", 2) == 0 && allowed_var(w + 2))
            putenv(w + 2);
        else
            argv[argc++] = w;
    }
    argv[argc] = NULL;
    environ_in[nenv] = NULL;
    tool_command command = (data[0] & 1) ? CMD_RUN : CMD_PLAN;
    tool_options o;
    char *why = NULL;
    int rc = tool_parse_options(command, (int)argc, argv, &o, &why);
    if (rc < 0 && !why)
        abort();
    free(why);
    why = NULL;
    if (rc == 0 && !o.help) {
        pf_launch_request r;
        tool_launch_request(&o, &r);
        r.topo = topology((data[0] >> 1) % NTOPOLOGIES);
        r.require_live = false;
        r.environ = environ_in;
        r.python = "/usr/bin/python3"; /* no PATH search per input */
        pf_launch_spec *spec = NULL;
        rc = pf_launch_spec_create(&r, &spec, &why);
        if (rc < 0 && !why && rc != -ENOMEM)
            abort();
        if (rc == 0)
            check_spec(&o, spec);
        pf_launch_spec_free(spec);
        free(why);
    }
    for (size_t i = 0; i < NPARSER_VARS; i++)
        unsetenv(PARSER_VARS[i]); /* putenv's strings live in copy */
    free(copy);
    return 0;
}
