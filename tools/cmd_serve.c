/*
 * cmd_serve.c - `pinfer serve`: read config.properties, apply the command
 * line over it (cpu_launcher_args first, then the options given), start the
 * server, say where it listens, and run it until SIGTERM or SIGINT
 * (docs/serve.md).
 */
#include "tool.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

static void say(const char *level, const char *text)
{
    char *printable = pf_printable(text);
    fprintf(stderr, "pinfer: %s: %s\n", level, printable ? printable : text);
    free(printable);
}

static void say_all(const char *level, char *const *lines, size_t n)
{
    for (size_t i = 0; i < n && lines && lines[i]; i++)
        say(level, lines[i]);
}

/* The command line again, with cpu_launcher_args' words first, so that the options given win. */
static int reparse(const tool_options *o, const pf_serve_config *cfg, tool_options *out,
                   char ***words)
{
    char **kept = NULL, **notes = NULL;
    char *why = NULL;
    int rc = tool_filter_launcher_args(cfg->cpu_launcher_argv, &kept, &notes, &why);
    if (rc < 0)
        return tool_fail(false, rc, why);
    for (size_t i = 0; notes[i]; i++) {
        say("info", notes[i]);
        free(notes[i]);
    }
    free(notes);
    size_t nkept = 0;
    while (kept[nkept])
        nkept++;
    char **argv = calloc(nkept + (size_t)o->argc + 1, sizeof *argv);
    if (!argv) {
        free(kept);
        return tool_fail(false, -ENOMEM, NULL);
    }
    argv[0] = o->argv[0];
    memcpy(argv + 1, kept, nkept * sizeof *argv);
    memcpy(argv + 1 + nkept, o->argv + 1, (size_t)(o->argc - 1) * sizeof *argv);
    free(kept);
    *words = argv; /* out points into it: freed by the caller when done */
    rc = tool_parse_options(CMD_SERVE, (int)nkept + o->argc, argv, out, &why);
    if (rc < 0)
        return tool_fail(false, rc, why);
    return 0;
}

/* The command line's settings over the file's. */
static int merge(const tool_options *o, pf_serve_config *cfg)
{
    char *why = NULL;
    if (o->serve.model_store) {
        char *store = strdup(o->serve.model_store);
        if (!store)
            return tool_fail(false, -ENOMEM, NULL);
        free(cfg->model_store);
        cfg->model_store = store;
    }
    pf_serve_address **slots[3] = {&cfg->inference_address, &cfg->management_address,
                                   &cfg->metrics_address};
    for (int i = 0; i < 3; i++) {
        if (!o->serve.addresses[i])
            continue;
        pf_serve_address *addr = NULL;
        int rc = pf_serve_address_parse(o->serve.addresses[i], (pf_serve_listener)i, &addr, &why);
        if (rc < 0)
            return tool_fail(false, rc, why);
        pf_serve_address_free(*slots[i]);
        *slots[i] = addr;
    }
    if (o->serve.nmodels > 0) {
        pf_serve_model_spec *all = NULL;
        size_t n = 0;
        for (int i = 0; i < o->serve.nmodels; i++) {
            pf_serve_model_spec *specs = NULL;
            size_t count = 0;
            int rc = pf_serve_model_list_parse(o->serve.models[i], &specs, &count, &why);
            pf_serve_model_spec *grown =
                rc == 0 ? realloc(all, (n + count + 1) * sizeof *all) : NULL;
            if (rc == 0 && !grown)
                rc = -ENOMEM;
            if (rc < 0) {
                pf_serve_model_list_free(specs, count);
                pf_serve_model_list_free(all, n);
                return tool_fail(false, rc, why);
            }
            all = grown;
            memcpy(all + n, specs, count * sizeof *all);
            n += count;
            free(specs); /* the items moved to all */
        }
        pf_serve_model_list_free(cfg->load_models, cfg->nload_models);
        cfg->load_models = all;
        cfg->nload_models = n;
    }
    return 0;
}

static int fail_with(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_with(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *why = NULL;
    if (vasprintf(&why, fmt, ap) < 0)
        why = NULL;
    va_end(ap);
    return tool_fail(false, rc, why);
}

/* The token of --management-token-file: its first line, not empty. */
static int read_token(const char *path, char **token)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return fail_with(-errno, "--management-token-file %s: %s", path, strerror(errno));
    char line[4096];
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (got)
        line[strcspn(line, "\r\n")] = '\0';
    if (!got || !line[0])
        return fail_with(-EINVAL, "--management-token-file %s: the file holds no token", path);
    *token = strdup(line);
    return *token ? 0 : tool_fail(false, -ENOMEM, NULL);
}

static void print_address(const char *what, const pf_serve_address *addr, int port)
{
    bool v6 = strchr(addr->host, ':') != NULL;
    printf("%s: http://%s%s%s:%d\n", what, v6 ? "[" : "", addr->host, v6 ? "]" : "", port);
}

/* Run until stopped; the exit status. */
static int run_server(pf_server *srv)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    bool announced = false;
    int status = 0;
    int signals = 0;
    while (!pf_server_finished(srv)) {
        struct pollfd fds[2] = {{pf_server_fd(srv), POLLIN, 0}, {sfd, POLLIN, 0}};
        int rc = poll(fds, 2, pf_server_timeout(srv));
        if (rc < 0 && errno != EINTR)
            break;
        struct signalfd_siginfo si;
        while ((fds[1].revents & POLLIN) && read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
            signals++;
            say("info", signals == 1 ? "stopping: finishing the requests in flight (a second "
                                       "signal stops at once)"
                                     : "stopping now");
            pf_server_shutdown(srv, signals > 1);
        }
        pf_server_step(srv);
        char *why = NULL;
        int up = announced ? 1 : pf_server_startup(srv, &why);
        if (up < 0) {
            say("error", why);
            free(why);
            status = 1;
            announced = true;
            pf_server_shutdown(srv, true);
        } else if (up == 1 && !announced) {
            announced = true;
            printf("ready\n");
            fflush(stdout);
        }
    }
    close(sfd);
    return status;
}

static int cmd_serve(const tool_options *given)
{
    char *why = NULL;
    pf_serve_config *cfg = NULL;
    int rc = given->serve.ts_config ? pf_serve_config_load(given->serve.ts_config, NULL, &cfg, &why)
                                    : pf_serve_config_parse("", 0, NULL, NULL, &cfg, &why);
    if (rc < 0)
        return tool_fail(false, rc, why);
    say_all("warning", cfg->warnings, cfg->nwarnings);
    say_all("info", cfg->notes, cfg->nnotes);
    tool_options o;
    char **words = NULL;
    int status = reparse(given, cfg, &o, &words);
    if (status == 0)
        status = merge(&o, cfg);
    char *token = NULL;
    if (status == 0 && o.serve.token_file)
        status = read_token(o.serve.token_file, &token);
    pf_server *srv = NULL;
    if (status == 0) {
        pf_server_options so;
        pf_server_options_init(&so);
        so.config = cfg;
        tool_launch_request(&o, &so.launch);
        so.launch.program = NULL;
        so.launch.python = o.serve.python;
        so.pinning = o.serve.pinning;
        so.workers = o.serve.workers;
        so.batch_size = o.serve.batch_size;
        so.max_batch_delay = o.serve.max_batch_delay;
        so.response_timeout = o.serve.response_timeout;
        so.job_queue_size = o.serve.job_queue_size;
        so.frontend_cpus = o.serve.frontend_cpus;
        so.token = token;
        so.log_dir = o.log_dir;
        so.grace_ms = o.grace_ms;
        for (int i = 0; i < o.nnotes; i++)
            say("warning", o.notes[i]);
        rc = pf_server_create(&so, &srv, &why);
        if (rc < 0)
            status = tool_fail(false, rc, why);
    }
    if (status == 0) {
        signal(SIGPIPE, SIG_IGN);
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        print_address("inference", cfg->inference_address, pf_server_port(srv, PF_SERVE_INFERENCE));
        print_address("management", cfg->management_address,
                      pf_server_port(srv, PF_SERVE_MANAGEMENT));
        print_address("metrics", cfg->metrics_address, pf_server_port(srv, PF_SERVE_METRICS));
        fflush(stdout);
        status = run_server(srv);
    }
    pf_server_free(srv);
    free(words);
    free(token);
    pf_serve_config_free(cfg);
    return status;
}

const tool_command_def tool_cmd_serve = {
    .name = "serve",
    .id = CMD_SERVE,
    .args = "[OPTIONS] [--model-store DIR] [--models SPEC...] [--ts-config FILE]",
    .summary = "serve models over HTTP with pinned workers",
    .about = "Serve TorchScript models and TorchServe archives over TorchServe's inference,\n"
             "management and metrics APIs and KServe's v1 and v2 protocols.  Each worker is\n"
             "a Python process planned, bound and supervised like an instance of `pinfer run`.\n"
             "Prints the addresses it listens on, then `ready` once every model has a worker;\n"
             "SIGTERM or SIGINT finishes the requests in flight and exits 0.",
    .run = cmd_serve,
};
