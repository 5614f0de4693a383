/*
 * test_serve_config.c - TorchServe's config.properties, model specs,
 * listening addresses and the model-store rule (src/serve/).
 *
 * Tables: the properties syntax against what java.util.Properties reads,
 * every default, the seed document's examples verbatim, every error with its
 * exact message and line, model specs, addresses, names, word splitting.
 * Golden files: each tests/fixtures/serve/NAME.properties is read and
 * rendered, and the text must equal NAME.expected;
 * PF_UPDATE_GOLDEN=1 build/tests/test_serve_config rewrites them (review the
 * diff before committing).
 */
#include "pf_test.h"
#include "serve/serve.h"

#include <dirent.h>
#include <unistd.h>

/* The environment the tests give $$NAME$$. */
static char *const ENV[] = {"PF_TEST_STORE=/srv", "PF_TEST_MODEL=resnet-18", "A=never", NULL};

/* ---- rendering a config as text: one line per fact ---- */

static void put_address(pf__buf *b, const char *key, const pf_serve_address *a)
{
    pf__buf_printf(b, "%s: %s %s %d\n", key, a->https ? "https" : "http", a->host, a->port);
}

static char *render(const pf_serve_config *c)
{
    pf__buf b = {0};
    put_address(&b, "inference_address", c->inference_address);
    put_address(&b, "management_address", c->management_address);
    put_address(&b, "metrics_address", c->metrics_address);
    pf__buf_printf(&b, "model_store: %s\n", c->model_store ? c->model_store : "(not set)");
    if (c->nload_models == 0)
        pf__buf_puts(&b, "load_models: (none)\n");
    for (size_t i = 0; i < c->nload_models; i++) {
        const pf_serve_model_spec *s = &c->load_models[i];
        if (s->all)
            pf__buf_puts(&b, "load_models: all\n");
        else
            pf__buf_printf(&b, "load_models: %s=%s (%s)\n", s->name, s->file,
                           s->named ? "named" : "stem");
    }
    pf__buf_printf(&b, "default_workers_per_model: %d\n", c->default_workers_per_model);
    pf__buf_printf(&b, "job_queue_size: %d\n", c->job_queue_size);
    pf__buf_printf(&b, "default_response_timeout: %d\n", c->default_response_timeout);
    pf__buf_printf(&b, "max_request_size: %zu\n", c->max_request_size);
    pf__buf_printf(&b, "max_response_size: %zu\n", c->max_response_size);
    for (size_t i = 0; i < c->nmodels; i++) {
        const pf_serve_model_config *m = &c->models[i];
        pf__buf_printf(&b,
                       "models: %s %s default=%s mar=%s workers=%d-%d batch=%d delay=%d "
                       "timeout=%d line=%d\n",
                       m->name, m->version, m->default_version ? "yes" : "no",
                       m->mar_name ? m->mar_name : "(none)", m->min_workers, m->max_workers,
                       m->batch_size, m->max_batch_delay, m->response_timeout, m->line);
    }
    pf__buf_printf(&b, "cpu_launcher_enable: %s\n", c->cpu_launcher_enable ? "true" : "false");
    if (c->cpu_launcher_args)
        pf__buf_printf(&b, "cpu_launcher_args: [%s]\n", c->cpu_launcher_args);
    pf__buf_printf(&b, "cpu_launcher_argv: %zu", c->cpu_launcher_argc);
    for (size_t i = 0; c->cpu_launcher_argv[i]; i++)
        pf__buf_printf(&b, " [%s]", c->cpu_launcher_argv[i]);
    pf__buf_puts(&b, "\n");
    pf__buf_printf(&b, "ipex_enable: %s\n", c->ipex_enable ? "true" : "false");
    for (size_t i = 0; i < c->nproperties; i++)
        pf__buf_printf(&b, "property: %d %s=[%s]\n", c->properties[i].line, c->properties[i].key,
                       c->properties[i].value);
    for (size_t i = 0; i < c->nwarnings; i++)
        pf__buf_printf(&b, "warning: %s\n", c->warnings[i]);
    for (size_t i = 0; i < c->nnotes; i++)
        pf__buf_printf(&b, "note: %s\n", c->notes[i]);
    char *out = NULL;
    pf__buf_take(&b, &out);
    return out;
}

/* Parse text as "t.properties"; the rendering, or "error: WHY". */
static char *parse_render(const char *text, size_t len, const char *source)
{
    pf_serve_config *c = NULL;
    char *why = NULL;
    int rc = pf_serve_config_parse(text, len, source, ENV, &c, &why);
    if (rc < 0) {
        char *out = pf__strdupf("error %d: %s\n", rc, why ? why : "(no message)");
        free(why);
        return out;
    }
    assert_null(why);
    char *out = render(c);
    pf_serve_config_free(c);
    return out;
}

/* ---- the properties syntax, against java.util.Properties ---- */

typedef struct props_case {
    const char *text;
    size_t len;         /* 0: strlen(text) */
    const char *expect; /* "LINE key=[value]" lines, or "!message" */
} props_case;

static const props_case PROPS[] = {
    {"a=b", 0, "1 a=[b]"},
    {"a = b", 0, "1 a=[b]"},
    {"a:b", 0, "1 a=[b]"},
    {"a b", 0, "1 a=[b]"},
    {"a   =   b", 0, "1 a=[b]"},
    {"a\t:\tb", 0, "1 a=[b]"},
    {"\f a=b", 0, "1 a=[b]"},
    {"a =: b", 0, "1 a=[: b]"}, /* one separator after blanks; the second is value */
    {"a:=b", 0, "1 a=[=b]"},
    {"a==b", 0, "1 a=[=b]"},
    {"a\\=b=c", 0, "1 a=b=[c]"},
    {"a\\:b:c", 0, "1 a:b=[c]"},
    {"a\\ b c", 0, "1 a b=[c]"},
    {"\\#a=b", 0, "1 #a=[b]"},
    {"key", 0, "1 key=[]"},
    {"key=", 0, "1 key=[]"},
    {"=v", 0, "1 =[v]"},
    {":", 0, "1 =[]"},
    {"# comment\n! comment\n   # indented\na=b", 0, "4 a=[b]"},
    {"a=b # not a comment", 0, "1 a=[b # not a comment]"},
    {"a=b\\\n  c", 0, "1 a=[bc]"},
    {"a=b \\\n  c", 0, "1 a=[b c]"},
    {"a=x\\\n\\\n c", 0, "1 a=[xc]"},
    {"a\\\n  b=c", 0, "1 ab=[c]"},
    {"a=\\\n  b", 0, "1 a=[b]"},
    {"# comment \\\na=b", 0, "2 a=[b]"},     /* a comment never continues */
    {"a=b\\\n# x", 0, "1 a=[b# x]"},         /* a continuation is never a comment */
    {"a=b\\\n\nc=d", 0, "1 a=[b]\n3 c=[d]"}, /* an empty continuation ends the line */
    {"a=b\\\\\nc=d", 0, "1 a=[b\\]\n2 c=[d]"},
    {"a=b\\\\\\\nc", 0, "1 a=[b\\c]"},
    {"a=b\r\nc=d\re=f\n\ng=h", 0, "1 a=[b]\n2 c=[d]\n3 e=[f]\n5 g=[h]"},
    {"a=b\\\r\n  c", 0, "1 a=[bc]"},
    {"a=b\\", 0, "1 a=[b]"},
    {"a=b\\\n", 0, "1 a=[b]"},
    {"a=\\t\\n\\r\\f", 0, "1 a=[\t\n\r\f]"},
    {"a=\\q\\\\\\=\\:\\#\\!", 0, "1 a=[q\\=:#!]"},
    {"a=\\u0041\\u00e9\\u20AC", 0, "1 a=[A\xc3\xa9\xe2\x82\xac]"},
    {"a=\\uD83D\\uDE00", 0, "1 a=[\xf0\x9f\x98\x80]"},
    {"a=caf\xc3\xa9", 0, "1 a=[caf\xc3\xa9]"},
    {"\\u0061=b", 0, "1 a=[b]"},
    {"a=trailing \t ", 0, "1 a=[trailing]"},
    {"a=trailing\\ ", 0, "1 a=[trailing ]"},
    {"a=x\\t", 0, "1 a=[x\t]"},
    {"  \t\n\n", 0, ""},
    {"# \xff not UTF-8, in a comment\na=b", 0, "2 a=[b]"},
    {"a=1\na=2", 0, "1 a=[1]\n2 a=[2]"},
    {"a=\\u00G1", 0, "!t:1: malformed \\uXXXX escape (four hex digits)"},
    {"a=\\u12", 0, "!t:1: malformed \\uXXXX escape (four hex digits)"},
    {"x=1\n\ny=\\u12", 0, "!t:3: malformed \\uXXXX escape (four hex digits)"},
    {"x=1\\\n  \\u12", 0, "!t:2: malformed \\uXXXX escape (four hex digits)"},
    {"a=\\uD83D", 0,
     "!t:1: \\uD83D is half a surrogate pair (a \\uDC00-\\uDFFF escape must follow it)"},
    {"a=\\uD83Dx", 0,
     "!t:1: \\uD83D is half a surrogate pair (a \\uDC00-\\uDFFF escape must follow it)"},
    {"a=\\uDE00", 0,
     "!t:1: \\uDE00 is half a surrogate pair (no \\uD800-\\uDBFF escape before it)"},
    {"a=\\u0000", 0, "!t:1: \\u0000 (a NUL character) is not allowed"},
    {"a=1\nb=\xff", 0, "!t:2: not UTF-8 text (write other characters as \\uXXXX)"},
    {"a=\xc0\x80", 0, "!t:1: not UTF-8 text (write other characters as \\uXXXX)"},
    {"a=\xed\xa0\x80", 0, "!t:1: not UTF-8 text (write other characters as \\uXXXX)"},
    {"a=b\0c", 5, "!t:1: a NUL byte"},
};

static void test_properties_syntax(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof PROPS / sizeof *PROPS; i++) {
        const props_case *c = &PROPS[i];
        pf__properties props;
        char *why = NULL;
        size_t len = c->len ? c->len : strlen(c->text);
        int rc = pf__properties_parse("t", c->text, len, &props, &why);
        pf__buf b = {0};
        if (rc < 0) {
            pf__buf_printf(&b, "!%s", why ? why : "(no message)");
        } else {
            for (size_t k = 0; k < props.len; k++)
                pf__buf_printf(&b, "%s%d %s=[%s]", k ? "\n" : "", props.v[k].line, props.v[k].key,
                               props.v[k].value);
            pf__properties_free(&props);
        }
        char *got = NULL;
        pf__buf_take(&b, &got);
        if (strcmp(got, c->expect) != 0) {
            print_error("case %zu '%s':\n  expected '%s'\n  got      '%s'\n", i, c->text, c->expect,
                        got);
            failures++;
        }
        free(got);
        free(why);
    }
    assert_int_equal(failures, 0);
}

/* A value over several lines knows the line of each of its bytes. */
static void test_property_lines(void **state)
{
    (void)state;
    const char *text = "x=1\nmodels={\\\n  \"a\": {\\\n\nnext=1\n";
    pf__properties props;
    assert_int_equal(pf__properties_parse("t", text, strlen(text), &props, NULL), 0);
    assert_int_equal(props.len, 3);
    assert_int_equal(props.v[2].line, 5);
    const pf__property *p = &props.v[1];
    assert_string_equal(p->value, "{\"a\": {");
    assert_int_equal(pf__property_line_at(p, 0), 2);
    assert_int_equal(pf__property_line_at(p, 1), 3); /* '"' starts line 3 */
    assert_int_equal(pf__property_line_at(p, 6), 3);
    pf__properties_free(&props);
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    (void)state;
    const char *texts[] = {"", "# nothing\n\n! set\n"};
    for (size_t i = 0; i < 3; i++) {
        pf_serve_config *c = NULL;
        char *why = NULL;
        int rc = i < 2 ? pf_serve_config_parse(texts[i], strlen(texts[i]), NULL, ENV, &c, &why)
                       : pf_serve_config_parse(NULL, 0, NULL, NULL, &c, &why);
        assert_int_equal(rc, 0);
        assert_string_equal(c->source, "config.properties");
        assert_false(c->inference_address->https);
        assert_string_equal(c->inference_address->host, "127.0.0.1");
        assert_int_equal(c->inference_address->port, 8080);
        assert_false(c->management_address->https);
        assert_string_equal(c->management_address->host, "127.0.0.1");
        assert_int_equal(c->management_address->port, 8081);
        assert_false(c->metrics_address->https);
        assert_string_equal(c->metrics_address->host, "127.0.0.1");
        assert_int_equal(c->metrics_address->port, 8082);
        assert_null(c->model_store);
        assert_int_equal(c->nload_models, 0);
        assert_null(c->load_models);
        assert_int_equal(c->default_workers_per_model, 0);
        assert_int_equal(c->job_queue_size, 100);
        assert_int_equal(c->default_response_timeout, 120);
        assert_int_equal(c->max_request_size, 6553500);
        assert_int_equal(c->max_response_size, 6553500);
        assert_int_equal(c->nmodels, 0);
        assert_false(c->cpu_launcher_enable);
        assert_null(c->cpu_launcher_args);
        assert_non_null(c->cpu_launcher_argv);
        assert_null(c->cpu_launcher_argv[0]);
        assert_int_equal(c->cpu_launcher_argc, 0);
        assert_false(c->ipex_enable);
        assert_int_equal(c->nproperties, 0);
        assert_int_equal(c->nwarnings, 0);
        assert_int_equal(c->nnotes, 0);
        pf_serve_config_free(c);
    }
    pf_serve_config_free(NULL);
}

/* A model version's absent fields, once the file is read. */
static void test_model_defaults(void **state)
{
    (void)state;
    /* default_response_timeout after models= still applies to it. */
    const char *text =
        "models={\"m\": {\"1\": {}, \"2\": {\"minWorkers\": 3, \"maxBatchDelay\": 0}}}\n"
        "default_response_timeout=30\n";
    pf_serve_config *c = NULL;
    assert_int_equal(pf_serve_config_parse(text, strlen(text), "t", ENV, &c, NULL), 0);
    assert_int_equal(c->nmodels, 2);
    const pf_serve_model_config *a = &c->models[0], *b = &c->models[1];
    assert_string_equal(a->name, "m");
    assert_string_equal(a->version, "1");
    assert_false(a->default_version);
    assert_null(a->mar_name);
    assert_int_equal(a->min_workers, 0);
    assert_int_equal(a->max_workers, 0);
    assert_int_equal(a->batch_size, 1);
    assert_int_equal(a->max_batch_delay, 100);
    assert_int_equal(a->response_timeout, 30);
    assert_int_equal(b->min_workers, 3);
    assert_int_equal(b->max_workers, 3);
    assert_int_equal(b->max_batch_delay, 0);
    pf_serve_config_free(c);
}

/* ---- read configs: the lines of the rendering that must be there ---- */

typedef struct config_case {
    const char *text;
    const char *expect[8]; /* lines of render(), each must be present */
} config_case;

static const config_case CONFIGS[] = {
    /* The seed document's examples, verbatim (TorchServe with IPEX and the launcher). */
    {"ipex_enable=true\n", {"ipex_enable: true", "cpu_launcher_enable: false"}},
    {"ipex_enable=true\ncpu_launcher_enable=true\n",
     {"ipex_enable: true", "cpu_launcher_enable: true", "cpu_launcher_argv: 0"}},
    {"ipex_enable=true\ncpu_launcher_enable=true\ncpu_launcher_args=--disable_numactl\n",
     {"cpu_launcher_args: [--disable_numactl]", "cpu_launcher_argv: 1 [--disable_numactl]"}},
    {"ipex_enable=true\ncpu_launcher_enable=true\ncpu_launcher_args=--use_logical_core\n",
     {"cpu_launcher_argv: 1 [--use_logical_core]"}},
    {"ipex_enable=true\ncpu_launcher_enable=true\ncpu_launcher_args=--use_logical_core "
     "--disable_numactl \n",
     {"cpu_launcher_args: [--use_logical_core --disable_numactl]",
      "cpu_launcher_argv: 2 [--use_logical_core] [--disable_numactl]"}},
    {"cpu_launcher_enable=true", {"cpu_launcher_enable: true"}},
    /* TorchServe's own documentation examples. */
    {"inference_address=https://0.0.0.0:8443", {"inference_address: https 0.0.0.0 8443"}},
    {"inference_address=https://172.16.1.10:8080", {"inference_address: https 172.16.1.10 8080"}},
    {"inference_address=https://127.0.0.1", {"inference_address: https 127.0.0.1 443"}},
    {"inference_address=http://127.0.0.1", {"inference_address: http 127.0.0.1 80"}},
    {"management_address=https://127.0.0.1\nmetrics_address=HTTPS://127.0.0.1",
     {"management_address: https 127.0.0.1 8444", "metrics_address: https 127.0.0.1 8445"}},
    {"management_address=http://127.0.0.1\nmetrics_address=http://127.0.0.1/",
     {"management_address: http 127.0.0.1 8081", "metrics_address: http 127.0.0.1 8082"}},
    {"inference_address=http://[::1]:0", {"inference_address: http ::1 0"}},
    {"inference_address=http://localhost:8080", {"inference_address: http localhost 8080"}},
    {"load_models=all", {"load_models: all"}},
    {"load_models=ALL", {"load_models: all"}},
    {"load_models=model1.mar, model2.mar",
     {"load_models: model1=model1.mar (stem)", "load_models: model2=model2.mar (stem)"}},
    {"load_models=model1=model1.mar, model2=model2.mar",
     {"load_models: model1=model1.mar (named)", "load_models: model2=model2.mar (named)"}},
    {"load_models=", {"load_models: (none)"}},
    {"load_models=,, ,", {"load_models: (none)"}},
    {"model_store=/home/model-server/model-store", {"model_store: /home/model-server/model-store"}},
    {"model_store=$$PF_TEST_STORE$$/m", {"model_store: /srv/m"}},
    {"model_store=$$A$$", {"model_store: $$A$$"}},
    {"model_store=$$$PF_TEST_STORE$$", {"model_store: $/srv"}},
    {"model_store=$$PF_TEST_STORE$$$$PF_TEST_MODEL$$", {"model_store: /srvresnet-18"}},
    {"default_workers_per_model=0", {"default_workers_per_model: 0"}},
    {"default_workers_per_model=4", {"default_workers_per_model: 4"}},
    {"job_queue_size=2147483647", {"job_queue_size: 2147483647"}},
    {"default_response_timeout=1", {"default_response_timeout: 1"}},
    {"max_request_size=10485760\nmax_response_size=1",
     {"max_request_size: 10485760", "max_response_size: 1"}},
    {"cpu_launcher_enable=TRUE\nipex_enable=False",
     {"cpu_launcher_enable: true", "ipex_enable: false"}},
    {"cpu_launcher_args=", {"cpu_launcher_args: []", "cpu_launcher_argv: 0"}},
    {"cpu_launcher_args=--log-path \"/var/log/my logs\" --ninstances 2",
     {"cpu_launcher_argv: 4 [--log-path] [/var/log/my logs] [--ninstances] [2]"}},
    {"cpu_launcher_args=--core-list '0-3,8' a\\\\ b",
     {"cpu_launcher_argv: 3 [--core-list] [0-3,8] [a b]"}},
    {"models={}", {"cpu_launcher_enable: false"}},
    {"models={\"m\": {\"1.0\": {\"marName\": \"./sub//m.mar\", \"defaultVersion\": false}}}",
     {"models: m 1.0 default=no mar=sub/m.mar workers=0-0 batch=1 delay=100 timeout=120 line=1"}},
    {"certificate_file=c.pem", {"property: 1 certificate_file=[c.pem]"}},
    /* Notes and warnings. */
    {"cpu_launcher_enable=false",
     {"note: t.properties:1: cpu_launcher_enable=false: pinfer pins the workers anyway "
      "(--pinning none runs them unpinned)"}},
    {"number_of_netty_threads=4",
     {"note: t.properties:1: number_of_netty_threads: a setting of TorchServe's Java front end; "
      "not used by pinfer"}},
    {"grpc_inference_port=7070",
     {"note: t.properties:1: grpc_inference_port: pinfer serves no gRPC; not used"}},
    {"number_of_gpu=1", {"note: t.properties:1: number_of_gpu: pinfer serves on CPUs; not used"}},
    {"allowed_urls=https://s3.amazonaws.com/.*",
     {"note: t.properties:1: allowed_urls: pinfer loads models from the model store only; not "
      "used"}},
    {"blacklist_env_vars=.*PASSWORD.*",
     {"warning: t.properties:1: blacklist_env_vars: not applied: the workers see the whole "
      "environment pinfer gives them"}},
    {"x=1\nmodel_stor=/m",
     {"warning: t.properties:2: unknown key 'model_stor' (ignored): did you mean 'model_store'?"}},
    {"Model_Store=/m",
     {"warning: t.properties:1: unknown key 'Model_Store' (ignored): did you mean "
      "'model_store'?"}},
    {"zzz=1", {"warning: t.properties:1: unknown key 'zzz' (ignored)"}},
    {"key\\nwith\\nnewlines=1",
     {"warning: t.properties:1: unknown key 'key\\nwith\\nnewlines' (ignored)"}},
    {"=1", {"warning: t.properties:1: a value without a key (ignored)"}},
    {"job_queue_size=1\n\njob_queue_size=2",
     {"job_queue_size: 2",
      "warning: t.properties:3: job_queue_size is set again (first on line 1): the last value is "
      "used"}},
    {"job_queue_size=oops\njob_queue_size=5", {"job_queue_size: 5"}}, /* only the last is read */
    {"models={\"m\": {\"1\": {\"foo\": 1}}}",
     {"warning: t.properties:1: models: \"m\" \"1\": unknown field \"foo\" (ignored)"}},
    {"models={\"m\": {\"1\": {\"startupTimeout\": 1}}}",
     {"note: t.properties:1: models: \"m\" \"1\": startupTimeout: not used by pinfer"}},
};

static void test_configs(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof CONFIGS / sizeof *CONFIGS; i++) {
        const config_case *c = &CONFIGS[i];
        char *got = parse_render(c->text, strlen(c->text), "t.properties");
        for (size_t k = 0; k < 8 && c->expect[k]; k++) {
            char *line = pf__strdupf("%s\n", c->expect[k]);
            bool found = strncmp(got, line, strlen(line)) == 0;
            char *nl_line = pf__strdupf("\n%s\n", c->expect[k]);
            found = found || strstr(got, nl_line);
            if (!found) {
                print_error("case %zu '%s':\n  missing '%s'\n  in:\n%s\n", i, c->text, c->expect[k],
                            got);
                failures++;
            }
            free(line);
            free(nl_line);
        }
        free(got);
    }
    assert_int_equal(failures, 0);
}

/* ---- every error, its exact message and line ---- */

typedef struct error_case {
    const char *text;
    const char *why;
} error_case;

#define T "t.properties:"
static const error_case ERRORS[] = {
    /* syntax (properties.c) */
    {"a=1\nb=\\u00zz", T "2: malformed \\uXXXX escape (four hex digits)"},
    {"a=\xff", T "1: not UTF-8 text (write other characters as \\uXXXX)"},
    /* $$NAME$$ */
    {"\nmodel_store=$$PF_NOT_SET$$",
     T "2: model_store: $$PF_NOT_SET$$: environment variable PF_NOT_SET is not set"},
    {"unknown_key=$$PF_NOT_SET$$",
     T "1: unknown_key: $$PF_NOT_SET$$: environment variable PF_NOT_SET is not set"},
    /* addresses */
    {"inference_address=", T "1: inference_address has no value"},
    {"inference_address=127.0.0.1:8080",
     T "1: inference_address: '127.0.0.1:8080' has no scheme: write http://127.0.0.1:8080"},
    {"management_address=unix:/tmp/management.sock",
     T "1: management_address: 'unix:/tmp/management.sock': unix sockets are not supported: use "
       "http://HOST:PORT"},
    {"metrics_address=ftp://h:1", T "1: metrics_address: 'ftp://h:1': the scheme must be http or "
                                    "https"},
    {"inference_address=http://:8080", T "1: inference_address: 'http://:8080' has no host"},
    {"inference_address=http://", T "1: inference_address: 'http://' has no host"},
    {"inference_address=http://h:65536",
     T "1: inference_address: 'http://h:65536': the port must be a number from 0 to 65535"},
    {"inference_address=http://h:",
     T "1: inference_address: 'http://h:': the port must be a number from 0 to 65535"},
    {"inference_address=http://h:-1",
     T "1: inference_address: 'http://h:-1': the port must be a number from 0 to 65535"},
    {"inference_address=http://h:80/predictions",
     T "1: inference_address: 'http://h:80/predictions': an address has no path or query"},
    {"inference_address=http://h:80?x", T "1: inference_address: 'http://h:80?x': an address has "
                                          "no path or query"},
    {"inference_address=http://u@h:80",
     T "1: inference_address: 'http://u@h:80': an address has no user name"},
    {"inference_address=http://::1:80",
     T "1: inference_address: 'http://::1:80': write an IPv6 address in brackets "
       "(http://[::1]:8080)"},
    {"inference_address=http://[::1:80",
     T "1: inference_address: 'http://[::1:80': no ']' after the IPv6 address"},
    {"inference_address=http://[::1]x",
     T "1: inference_address: 'http://[::1]x': ':PORT' or nothing must follow ']'"},
    {"inference_address=http://[::g]:80",
     T "1: inference_address: 'http://[::g]:80': '::g' is not an IPv6 address"},
    {"inference_address=http://256.1.1.1",
     T "1: inference_address: 'http://256.1.1.1': '256.1.1.1' is not an IPv4 address"},
    {"inference_address=http://bad_host:1",
     T "1: inference_address: 'http://bad_host:1': 'bad_host' is not a host name or an IP "
       "address"},
    {"inference_address=http://-a.b:1",
     T "1: inference_address: 'http://-a.b:1': '-a.b' is not a host name or an IP address"},
    /* numbers and booleans */
    {"job_queue_size=", T "1: job_queue_size has no value"},
    {"job_queue_size=0", T "1: job_queue_size is 0: it must be at least 1"},
    {"job_queue_size=-5", T "1: job_queue_size is -5: it must be at least 1"},
    {"job_queue_size=ten", T "1: job_queue_size must be a whole number, not 'ten'"},
    {"job_queue_size=+5", T "1: job_queue_size must be a whole number, not '+5'"},
    {"job_queue_size=1 000", T "1: job_queue_size must be a whole number, not '1 000'"},
    {"default_workers_per_model=-1", T "1: default_workers_per_model is -1: it must be at least 0"},
    {"default_response_timeout=1.5", T "1: default_response_timeout must be a whole number, not "
                                       "'1.5'"},
    {"default_response_timeout=0", T "1: default_response_timeout is 0: it must be at least 1"},
    {"max_request_size=2147483648",
     T "1: max_request_size is 2147483648: it must be at most 2147483647"},
    {"max_response_size=99999999999999999999999",
     T "1: max_response_size is 99999999999999999999999: it must be at most 2147483647"},
    {"ipex_enable=yes", T "1: ipex_enable must be true or false, not 'yes'"},
    {"cpu_launcher_enable=", T "1: cpu_launcher_enable has no value"},
    {"cpu_launcher_enable=1", T "1: cpu_launcher_enable must be true or false, not '1'"},
    /* paths and models to load */
    {"model_store=", T "1: model_store has no value"},
    {"load_models=../x.mar",
     T "1: load_models: model file '../x.mar' leaves the model store ('..' is not allowed)"},
    {"load_models=a/../../x.mar",
     T "1: load_models: model file 'a/../../x.mar' leaves the model store ('..' is not allowed)"},
    {"load_models=/opt/x.mar",
     T "1: load_models: model file '/opt/x.mar' is an absolute path: name it relative to the "
       "model store"},
    {"load_models=https://torchserve.pytorch.org/mar_files/squeezenet1_1.mar",
     T "1: load_models: model file 'https://torchserve.pytorch.org/mar_files/squeezenet1_1.mar' "
       "is a URL: pinfer loads models from the model store only (download it there and name it "
       "relative to the store)"},
    {"load_models=m=s3://bucket/m.mar",
     T "1: load_models: model file 's3://bucket/m.mar' is a URL: pinfer loads models from the "
       "model store only (download it there and name it relative to the store)"},
    {"load_models=all,x.mar", T "1: load_models: 'all' loads every model of the store: it cannot "
                                "be listed with other models"},
    {"load_models=a=x.mar,a=y.mar",
     T "1: load_models: model name 'a' is given twice (x.mar and y.mar)"},
    {"load_models=x/m.mar,m.pt", T "1: load_models: model name 'm' is given twice (x/m.mar and "
                                   "m.pt)"},
    {"load_models=my\\ model.mar",
     T "1: load_models: model name 'my model': letters, digits, '_', '-' and '.' only, starting "
       "with a letter or a digit, from 'my model.mar' (name the model: NAME=my model.mar)"},
    {"load_models==x.mar", T "1: load_models: '=x.mar': no model name before '='"},
    {"load_models=a=", T "1: load_models: 'a=': no model file after '='"},
    {"load_models=a=.", T "1: load_models: model file '.' names the model store itself, not a "
                          "model in it"},
    {"load_models=x.mar\\n", T "1: load_models: model file 'x.mar\\n' holds a control character"},
    /* cpu_launcher_args */
    {"cpu_launcher_args=--log-path \"/var/log",
     T "1: cpu_launcher_args: no closing quotation (\")"},
    {"cpu_launcher_args=--log-path '/var/log", T "1: cpu_launcher_args: no closing quotation (')"},
    {"cpu_launcher_args=a\\\\",
     T "1: cpu_launcher_args: no escaped character after the last backslash"},
    /* models */
    {"models=", T "1: models has no value"},
    {"models={", T "1: models: not valid JSON: string or '}' expected near end of file"},
    {"models=[]", T "1: models: a JSON object {\"NAME\": {\"VERSION\": {...}}} is expected, not an "
                    "array"},
    {"models={\"m\": 1}", T "1: models: \"m\": an object of versions {\"VERSION\": {...}} is "
                            "expected, not an integer"},
    {"models={\"m\": {}}", T "1: models: \"m\": an object of versions {\"VERSION\": {...}} is "
                             "expected, not an empty one"},
    {"models={\"m\": {\"1\": []}}",
     T "1: models: \"m\" \"1\": an object of settings is expected, not an array"},
    {"models={\"a b\": {\"1\": {}}}",
     T "1: models: model name 'a b': letters, digits, '_', '-' and '.' only, starting with a "
       "letter or a digit"},
    {"models={\"m\": {\"v/1\": {}}}",
     T "1: models: \"m\": version 'v/1': letters, digits, '_', '-' and '.' only, starting with a "
       "letter or a digit"},
    {"models={\"m\": {\"1\": {}}, \"m\": {}}",
     T "1: models: not valid JSON: duplicate object key near '\"m\"'"},
    {"models={\"m\": {\"1\": {\"defaultVersion\": \"true\"}}}",
     T "1: models: \"m\" \"1\": defaultVersion must be true or false, not a string"},
    {"models={\"m\": {\"1\": {\"marName\": 5}}}",
     T "1: models: \"m\" \"1\": marName must be a string, not an integer"},
    {"models={\"m\": {\"1\": {\"marName\": \"/abs/m.mar\"}}}",
     T "1: models: \"m\" \"1\": marName: model file '/abs/m.mar' is an absolute path: name it "
       "relative to the model store"},
    {"models={\"m\": {\"1\": {\"marName\": \"\"}}}",
     T "1: models: \"m\" \"1\": marName: an empty model file name"},
    {"models={\"m\": {\"1\": {\"minWorkers\": 0}}}",
     T "1: models: \"m\" \"1\": minWorkers is 0: it must be at least 1"},
    {"models={\"m\": {\"1\": {\"maxWorkers\": -1}}}",
     T "1: models: \"m\" \"1\": maxWorkers is -1: it must be at least 1"},
    {"models={\"m\": {\"1\": {\"batchSize\": 4.0}}}",
     T "1: models: \"m\" \"1\": batchSize must be an integer, not a number with a fraction"},
    {"models={\"m\": {\"1\": {\"batchSize\": \"4\"}}}",
     T "1: models: \"m\" \"1\": batchSize must be an integer, not a string"},
    {"models={\"m\": {\"1\": {\"batchSize\": null}}}",
     T "1: models: \"m\" \"1\": batchSize must be an integer, not null"},
    {"models={\"m\": {\"1\": {\"maxBatchDelay\": -1}}}",
     T "1: models: \"m\" \"1\": maxBatchDelay is -1: it must be at least 0"},
    {"models={\"m\": {\"1\": {\"responseTimeout\": 2147483648}}}",
     T "1: models: \"m\" \"1\": responseTimeout is 2147483648: it must be at most 2147483647"},
    {"models={\"m\": {\"1\": {\"minWorkers\": 4, \"maxWorkers\": 2}}}",
     T "1: models: \"m\" \"1\": maxWorkers (2) is below minWorkers (4)"},
    {"models={\"m\": {\"1\": {\"defaultVersion\": true}, \"2\": {\"defaultVersion\": true}}}",
     T "1: models: \"m\": versions \"1\" and \"2\" both have defaultVersion true"},
    /* the line of an error inside a value over many lines */
    {"x=1\nmodels={\\\n  \"m\": {\\\n    \"1\": {\\\n      \"batchSize\": 0\\\n    }\\\n  }\\\n}",
     T "5: models: \"m\" \"1\": batchSize is 0: it must be at least 1"},
    {"models={\\\n  \"m\": {\\\n    \"1\": {},\\\n    \"v 2\": {}\\\n  }\\\n}",
     T "4: models: \"m\": version 'v 2': letters, digits, '_', '-' and '.' only, starting with a "
       "letter or a digit"},
    {"models={\\\n  \"m\": {\\\n    \"1\": {\\\n      \"batchSize\": 1,\\\n    }\\\n  }\\\n}",
     T "5: models: not valid JSON: string or '}' expected near '}'"},
    /* the first error in the file is the one reported */
    {"job_queue_size=0\nipex_enable=maybe", T "1: job_queue_size is 0: it must be at least 1"},
};
#undef T

static void test_errors(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof ERRORS / sizeof *ERRORS; i++) {
        const error_case *c = &ERRORS[i];
        pf_serve_config *cfg = (pf_serve_config *)&failures; /* must come back NULL */
        char *why = NULL;
        int rc = pf_serve_config_parse(c->text, strlen(c->text), "t.properties", ENV, &cfg, &why);
        if (rc != -EINVAL || cfg || !why || strcmp(why, c->why) != 0) {
            print_error("case %zu '%s':\n  expected -22 '%s'\n  got      %d '%s'\n", i, c->text,
                        c->why, rc, why ? why : "(none)");
            failures++;
        }
        if (rc == 0)
            pf_serve_config_free(cfg);
        free(why);
    }
    assert_int_equal(failures, 0);
}

/* Without why, errors are still returned. */
static void test_errors_without_why(void **state)
{
    (void)state;
    pf_serve_config *cfg = NULL;
    assert_int_equal(pf_serve_config_parse("ipex_enable=x", 13, NULL, ENV, &cfg, NULL), -EINVAL);
    assert_null(cfg);
    assert_int_equal(pf_serve_config_parse(NULL, 3, NULL, ENV, &cfg, NULL), -EINVAL);
    assert_int_equal(pf_serve_config_parse("", 0, NULL, ENV, NULL, NULL), -EINVAL);
}

/* ---- files ---- */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    pf__buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        pf__buf_put(&b, chunk, n);
    fclose(f);
    *len = b.len;
    char *out = NULL;
    pf__buf_take(&b, &out);
    return out;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Every fixture tests/fixtures/serve/NAME.properties against NAME.expected
 * (messages name the file "NAME.properties").  PF_UPDATE_GOLDEN=1 rewrites
 * the expected files instead.
 */
static void test_golden_fixtures(void **state)
{
    (void)state;
    const char *dir = fixture("serve");
    char folder[4096];
    snprintf(folder, sizeof folder, "%s", dir);
    DIR *d = opendir(folder);
    assert_non_null(d);
    char *names[256];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 256;) {
        size_t len = strlen(e->d_name);
        if (len > 11 && strcmp(e->d_name + len - 11, ".properties") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    assert_true(n >= 10);
    bool update = getenv("PF_UPDATE_GOLDEN") && strcmp(getenv("PF_UPDATE_GOLDEN"), "1") == 0;
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4200], expected_path[4200];
        snprintf(path, sizeof path, "%s/%s", folder, names[i]);
        snprintf(expected_path, sizeof expected_path, "%s/%.*s.expected", folder,
                 (int)(strlen(names[i]) - 11), names[i]);
        size_t len = 0, elen = 0;
        char *text = read_all(path, &len);
        assert_non_null(text);
        char *got = parse_render(text, len, names[i]);
        if (update) {
            FILE *f = fopen(expected_path, "w");
            assert_non_null(f);
            fputs(got, f);
            fclose(f);
        } else {
            char *want = read_all(expected_path, &elen);
            if (!want || strcmp(want, got) != 0) {
                print_error("%s: the rendering differs from %s:\n--- expected\n%s--- got\n%s",
                            names[i], expected_path, want ? want : "(missing)\n", got);
                failures++;
            }
            free(want);
        }
        free(got);
        free(text);
        free(names[i]);
    }
    assert_int_equal(failures, 0);
}

/* pf_serve_config_load: the file's path names it in messages. */
static void test_load(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s/models_multiline.properties", fixture("serve"));
    pf_serve_config *c = NULL;
    char *why = NULL;
    assert_int_equal(pf_serve_config_load(path, ENV, &c, &why), 0);
    assert_string_equal(c->source, path);
    assert_int_equal(c->nmodels, 3);
    pf_serve_config_free(c);

    snprintf(path, sizeof path, "%s/error_unix_socket.properties", fixture("serve"));
    assert_int_equal(pf_serve_config_load(path, ENV, &c, &why), -EINVAL);
    assert_null(c);
    char *want = pf__strdupf("%s:2: management_address: 'unix:/tmp/management.sock': unix "
                             "sockets are not supported: use http://HOST:PORT",
                             path);
    assert_string_equal(why, want);
    free(want);
    free(why);
    why = NULL;

    assert_int_equal(pf_serve_config_load("/nonexistent/config.properties", ENV, &c, &why),
                     -ENOENT);
    assert_string_equal(why,
                        "cannot read /nonexistent/config.properties: No such file or directory");
    free(why);
    why = NULL;

    assert_int_equal(pf_serve_config_load(fixture("serve"), ENV, &c, &why), -EINVAL);
    want = pf__strdupf("%s is a folder, not a config.properties file", fixture("serve"));
    assert_string_equal(why, want);
    free(want);
    free(why);
    assert_int_equal(pf_serve_config_load(NULL, ENV, &c, NULL), -EINVAL);
}

/* ---- model specs, names, the store rule ---- */

typedef struct spec_case {
    const char *text;
    const char *expect; /* "name|named|file", "all", or "!message" */
} spec_case;

static const spec_case SPECS[] = {
    {"resnet-18=resnet-18.mar", "resnet-18|named|resnet-18.mar"},
    {"resnet-18.mar", "resnet-18|stem|resnet-18.mar"},
    {" densenet161.tar.gz ", "densenet161|stem|densenet161.tar.gz"},
    {"x/y/model.pt", "model|stem|x/y/model.pt"},
    {"weights.pth", "weights|stem|weights.pth"},
    {"bert.model", "bert|stem|bert.model"},
    {"bundle.zip", "bundle|stem|bundle.zip"},
    {"./a//b.mar", "b|stem|a/b.mar"},
    {"squeezenet/", "squeezenet|stem|squeezenet"},
    {"model.v2.mar", "model.v2|stem|model.v2.mar"},
    {"model.onnx", "model.onnx|stem|model.onnx"},
    {"x/..y/m.mar", "m|stem|x/..y/m.mar"},
    {"all", "all"},
    {" ALL ", "all"},
    {"all=all.mar", "all|named|all.mar"},
    {"m=dir/./m.mar", "m|named|dir/m.mar"},
    {"", "!an empty model (write NAME=FILE, FILE or all)"},
    {"   ", "!an empty model (write NAME=FILE, FILE or all)"},
    {"=x.mar", "!'=x.mar': no model name before '='"},
    {"a=", "!'a=': no model file after '='"},
    {"a b=x.mar",
     "!model name 'a b': letters, digits, '_', '-' and '.' only, starting with a letter or a "
     "digit"},
    {"_x=x.mar",
     "!model name '_x': letters, digits, '_', '-' and '.' only, starting with a letter or a "
     "digit"},
    {".mar",
     "!model name '.mar': letters, digits, '_', '-' and '.' only, starting with a letter or a "
     "digit, from '.mar' (name the model: NAME=.mar)"},
    {"../x.mar", "!model file '../x.mar' leaves the model store ('..' is not allowed)"},
    {"a/..", "!model file 'a/..' leaves the model store ('..' is not allowed)"},
    {"/x.mar", "!model file '/x.mar' is an absolute path: name it relative to the model store"},
    {"http://h/x.mar", "!model file 'http://h/x.mar' is a URL: pinfer loads models from the model "
                       "store only (download it there and name it relative to the store)"},
    {"file:///x.mar", "!model file 'file:///x.mar' is a URL: pinfer loads models from the model "
                      "store only (download it there and name it relative to the store)"},
    {"./", "!model file './' names the model store itself, not a model in it"},
    {"a\tb.mar", "!model file 'a\\tb.mar' holds a control character"},
};

static void test_model_specs(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof SPECS / sizeof *SPECS; i++) {
        const spec_case *c = &SPECS[i];
        pf_serve_model_spec *s = NULL;
        char *why = NULL, *got;
        int rc = pf_serve_model_spec_parse(c->text, &s, &why);
        if (rc < 0)
            got = pf__strdupf("!%s", why ? why : "(none)");
        else if (s->all)
            got = pf__strdupf("all%s%s", s->name ? "?" : "", s->file ? "?" : "");
        else
            got = pf__strdupf("%s|%s|%s", s->name, s->named ? "named" : "stem", s->file);
        if (strcmp(got, c->expect) != 0 || (rc < 0 && (rc != -EINVAL || s))) {
            print_error("case %zu '%s':\n  expected '%s'\n  got      '%s'\n", i, c->text, c->expect,
                        got);
            failures++;
        }
        free(got);
        free(why);
        pf_serve_model_spec_free(s);
    }
    pf_serve_model_spec_free(NULL);
    assert_int_equal(pf_serve_model_spec_parse("x", NULL, NULL), -EINVAL);
    assert_int_equal(failures, 0);
}

static void test_model_lists(void **state)
{
    (void)state;
    pf_serve_model_spec *v = NULL;
    size_t n = 99;
    assert_int_equal(pf_serve_model_list_parse("", &v, &n, NULL), 0);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_int_equal(pf_serve_model_list_parse(NULL, &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_int_equal(pf_serve_model_list_parse(",a.mar, b=b/b.mar ,,A.mar,", &v, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].name, "a");
    assert_string_equal(v[1].name, "b");
    assert_true(v[1].named);
    assert_string_equal(v[1].file, "b/b.mar");
    assert_string_equal(v[2].name, "A"); /* names are case-sensitive, as URLs */
    pf_serve_model_list_free(v, n);
    char *why = NULL;
    assert_int_equal(pf_serve_model_list_parse("a.mar,../b.mar", &v, &n, &why), -EINVAL);
    assert_null(v);
    assert_int_equal(n, 0);
    assert_string_equal(why, "model file '../b.mar' leaves the model store ('..' is not allowed)");
    free(why);
    pf_serve_model_list_free(NULL, 0);
}

static void test_store_paths(void **state)
{
    (void)state;
    static const char *const ok[][2] = {
        {"m.mar", "m.mar"},
        {"./m.mar", "m.mar"},
        {"a//b///c.mar", "a/b/c.mar"},
        {"dir/", "dir"},
        {"a/./b", "a/b"},
        {"...", "..."},
        {"..m.mar", "..m.mar"},
        {"~/m.mar", "~/m.mar"},
        {"a\\..\\b", "a\\..\\b"},
        {"s3:bucket", "s3:bucket"},
        {"caf\xc3\xa9.mar", "caf\xc3\xa9.mar"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char *norm = NULL, *why = NULL;
        int rc = pf_serve_store_path(ok[i][0], &norm, &why);
        if (rc != 0)
            fail_msg("'%s': %s", ok[i][0], why);
        assert_string_equal(norm, ok[i][1]);
        free(norm);
    }
    static const char *const bad[] = {"",          "..",       "../m",   "a/../b",   "/m",
                                      "//m",       ".",        "././/",  "S3://b/m", "x+y.z://a",
                                      "a\x7f.mar", "a\nb.mar", "ftp://h"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *norm = (char *)"unchanged", *why = NULL;
        if (pf_serve_store_path(bad[i], &norm, &why) != -EINVAL || norm || !why)
            fail_msg("'%s' was accepted", bad[i]);
        assert_null(strchr(why, '\n'));
        free(why);
    }
    assert_int_equal(pf_serve_store_path(NULL, (char *[]){NULL}, NULL), -EINVAL);
    assert_int_equal(pf_serve_store_path("m", NULL, NULL), -EINVAL);
}

static void test_model_names(void **state)
{
    (void)state;
    char long_name[300];
    memset(long_name, 'a', sizeof long_name);
    long_name[255] = '\0';
    assert_int_equal(pf_serve_model_name_check(long_name, NULL), 0);
    long_name[255] = 'a';
    long_name[256] = '\0';
    char *why = NULL;
    assert_int_equal(pf_serve_model_name_check(long_name, &why), -EINVAL);
    assert_non_null(strstr(why, "is longer than 255 characters"));
    free(why);
    static const char *const ok[] = {"resnet-18", "a.b_c-d", "0", "Z9", "bert.v1"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        assert_int_equal(pf_serve_model_name_check(ok[i], NULL), 0);
    static const char *const bad[] = {"",    "_a",   "-a",          ".a", "a/b",
                                      "a b", "a%20", "caf\xc3\xa9", "a:b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(pf_serve_model_name_check(bad[i], NULL), -EINVAL);
    assert_int_equal(pf_serve_model_name_check(NULL, &why), -EINVAL);
    assert_string_equal(why, "an empty model name");
    free(why);
}

/* ---- addresses ---- */

static void test_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        pf_serve_listener listener;
        const char *expect; /* "scheme host port" */
    } ok[] = {
        {"http://127.0.0.1:8080", PF_SERVE_INFERENCE, "http 127.0.0.1 8080"},
        {"HTTP://LOCALHOST:8080", PF_SERVE_INFERENCE, "http LOCALHOST 8080"},
        {"Https://0.0.0.0", PF_SERVE_INFERENCE, "https 0.0.0.0 443"},
        {"http://0.0.0.0", PF_SERVE_INFERENCE, "http 0.0.0.0 80"},
        {"http://0.0.0.0", PF_SERVE_MANAGEMENT, "http 0.0.0.0 8081"},
        {"https://0.0.0.0", PF_SERVE_MANAGEMENT, "https 0.0.0.0 8444"},
        {"http://0.0.0.0", PF_SERVE_METRICS, "http 0.0.0.0 8082"},
        {"https://0.0.0.0", PF_SERVE_METRICS, "https 0.0.0.0 8445"},
        {"http://[::1]:8080", PF_SERVE_INFERENCE, "http ::1 8080"},
        {"http://[::]", PF_SERVE_INFERENCE, "http :: 80"},
        {"http://[fe80::1:2]:0/", PF_SERVE_INFERENCE, "http fe80::1:2 0"},
        {"http://0.0.0.0:0", PF_SERVE_INFERENCE, "http 0.0.0.0 0"},
        {"http://h:65535", PF_SERVE_INFERENCE, "http h 65535"},
        {"http://h:08080", PF_SERVE_INFERENCE, "http h 8080"},
        {"http://my-host.example.com:1", PF_SERVE_INFERENCE, "http my-host.example.com 1"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        pf_serve_address *a = NULL;
        char *why = NULL;
        if (pf_serve_address_parse(ok[i].text, ok[i].listener, &a, &why) != 0)
            fail_msg("'%s': %s", ok[i].text, why);
        char got[300];
        snprintf(got, sizeof got, "%s %s %d", a->https ? "https" : "http", a->host, a->port);
        assert_string_equal(got, ok[i].expect);
        pf_serve_address_free(a);
    }
    pf_serve_address_free(NULL);
    pf_serve_address *a = (pf_serve_address *)&a;
    char *why = NULL;
    assert_int_equal(pf_serve_address_parse("", PF_SERVE_INFERENCE, &a, &why), -EINVAL);
    assert_null(a);
    assert_string_equal(why, "an empty address (write http://HOST:PORT)");
    free(why);
    assert_int_equal(pf_serve_address_parse(NULL, PF_SERVE_INFERENCE, &a, NULL), -EINVAL);
    assert_int_equal(pf_serve_address_parse("http://h", PF_SERVE_INFERENCE, NULL, NULL), -EINVAL);
    /* A control character in the text stays on the message's one line. */
    assert_int_equal(pf_serve_address_parse("http://a\nb", PF_SERVE_INFERENCE, &a, &why), -EINVAL);
    assert_string_equal(why, "'http://a\\nb': 'a\\nb' is not a host name or an IP address");
    free(why);
}

/* ---- word splitting (cpu_launcher_args) ---- */

static void test_shell_split(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *expect; /* words as [w], or "!message" */
    } cases[] = {
        {"", ""},
        {"   \t ", ""},
        {"  a  b ", "[a][b]"},
        {"--use_logical_core --disable_numactl ", "[--use_logical_core][--disable_numactl]"},
        {"'a b' \"c d\"", "[a b][c d]"},
        {"a\\ b", "[a b]"},
        {"\"a\\\"b\"", "[a\"b]"},
        {"\"a\\\\b\"", "[a\\b]"},
        {"\"a\\nb\"", "[a\\nb]"},
        {"'a\\b'", "[a\\b]"},
        {"''", "[]"},
        {"'' \"\"", "[][]"},
        {"a'b'c\"d\"", "[abcd]"},
        {"a\\'b", "[a'b]"},
        {"$HOME ~ *", "[$HOME][~][*]"},
        {"a\nb", "[a][b]"},
        {"\"unterminated", "!no closing quotation (\")"},
        {"'x", "!no closing quotation (')"},
        {"a\\", "!no escaped character after the last backslash"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char **argv = NULL, *why = NULL;
        size_t argc = 99;
        int rc = pf__shell_split(cases[i].text, &argv, &argc, &why);
        pf__buf b = {0};
        pf__buf_put(&b, "", 0);
        if (rc < 0) {
            pf__buf_printf(&b, "!%s", why);
        } else {
            size_t k = 0;
            for (; argv[k]; k++)
                pf__buf_printf(&b, "[%s]", argv[k]);
            assert_int_equal(k, argc);
        }
        if (strcmp(b.s, cases[i].expect) != 0)
            fail_msg("'%s': expected '%s', got '%s'", cases[i].text, cases[i].expect, b.s);
        pf__buf_free(&b);
        pf_strv_free(argv);
        free(why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_properties_syntax),
        cmocka_unit_test(test_property_lines),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_model_defaults),
        cmocka_unit_test(test_configs),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errors_without_why),
        cmocka_unit_test(test_golden_fixtures),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_model_specs),
        cmocka_unit_test(test_model_lists),
        cmocka_unit_test(test_store_paths),
        cmocka_unit_test(test_model_names),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_shell_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
