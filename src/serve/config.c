/*
 * config.c - TorchServe's config.properties, read into a pf_serve_config.
 *
 * Three steps.  properties.c turns the text into key-value lines.  Then the
 * lines are taken in file order, each key at its last occurrence (Java's
 * Properties keep the last value; the earlier ones get a warning): a key
 * pinfer reads is checked and stored, a key TorchServe knows and pinfer does
 * not use gets a note, any other key a warning.  Last, what depends on
 * other keys is resolved (a model version's response timeout defaults to
 * default_response_timeout, wherever that key stands).  The first error
 * stops everything; every message is one line "SOURCE:LINE: ...".
 *
 * TorchServe reads most values leniently (Boolean.parseBoolean makes "yes"
 * false; a model field <= 0 silently becomes the default): pinfer refuses
 * what it cannot read instead, saying what it expected (docs/serve.md).
 */
#include "serve/serve.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_INFERENCE "http://127.0.0.1:8080"
#define DEFAULT_MANAGEMENT "http://127.0.0.1:8081"
#define DEFAULT_METRICS "http://127.0.0.1:8082"
#define DEFAULT_JOB_QUEUE_SIZE 100
#define DEFAULT_RESPONSE_TIMEOUT 120
#define DEFAULT_MAX_SIZE 6553500
#define DEFAULT_BATCH_SIZE 1
#define DEFAULT_MAX_BATCH_DELAY 100
#define MAX_FILE_SIZE (16 << 20)
#define LOCATE_MAX (1 << 20) /* models values longer than this: errors name their first line */

typedef enum key_id {
    K_UNKNOWN = 0,
    K_INFERENCE_ADDRESS,
    K_MANAGEMENT_ADDRESS,
    K_METRICS_ADDRESS,
    K_MODEL_STORE,
    K_LOAD_MODELS,
    K_DEFAULT_WORKERS,
    K_JOB_QUEUE_SIZE,
    K_RESPONSE_TIMEOUT,
    K_MAX_REQUEST_SIZE,
    K_MAX_RESPONSE_SIZE,
    K_MODELS,
    K_CPU_LAUNCHER_ENABLE,
    K_CPU_LAUNCHER_ARGS,
    K_IPEX_ENABLE,
    K_KEPT,    /* read later by the server from cfg->properties (TLS files) */
    K_NOTE,    /* TorchServe's, not used by pinfer: a note */
    K_WARNING, /* TorchServe's, not applied, and that matters: a warning */
} key_id;

#define JAVA "a setting of TorchServe's Java front end; not used by pinfer"
#define GRPC "pinfer serves no gRPC; not used"
#define GPU "pinfer serves on CPUs; not used"
#define METRICS "pinfer's metrics address serves Prometheus text; not used"
#define CORS "pinfer sends no CORS headers; not used"
#define URLS "pinfer loads models from the model store only; not used"
#define SNAPSHOT "pinfer keeps no snapshots; not used (list the models in load_models and models)"
#define TOKEN "TorchServe's token authorization; not used by pinfer"
#define UNUSED "not used by pinfer"

static const struct key_def {
    const char *key;
    key_id id;
    const char *why; /* K_NOTE, K_WARNING: what the note or warning says after "KEY: " */
} KEYS[] = {
    {"inference_address", K_INFERENCE_ADDRESS, NULL},
    {"management_address", K_MANAGEMENT_ADDRESS, NULL},
    {"metrics_address", K_METRICS_ADDRESS, NULL},
    {"model_store", K_MODEL_STORE, NULL},
    {"load_models", K_LOAD_MODELS, NULL},
    {"default_workers_per_model", K_DEFAULT_WORKERS, NULL},
    {"job_queue_size", K_JOB_QUEUE_SIZE, NULL},
    {"default_response_timeout", K_RESPONSE_TIMEOUT, NULL},
    {"max_request_size", K_MAX_REQUEST_SIZE, NULL},
    {"max_response_size", K_MAX_RESPONSE_SIZE, NULL},
    {"models", K_MODELS, NULL},
    {"cpu_launcher_enable", K_CPU_LAUNCHER_ENABLE, NULL},
    {"cpu_launcher_args", K_CPU_LAUNCHER_ARGS, NULL},
    {"ipex_enable", K_IPEX_ENABLE, NULL},
    {"certificate_file", K_KEPT, NULL},
    {"private_key_file", K_KEPT, NULL},
    {"keystore", K_KEPT, NULL},
    {"keystore_pass", K_KEPT, NULL},
    {"keystore_type", K_KEPT, NULL},
    {"blacklist_env_vars", K_WARNING,
     "not applied: the workers see the whole environment pinfer gives them"},
    {"vmargs", K_NOTE, JAVA},
    {"number_of_netty_threads", K_NOTE, JAVA},
    {"netty_client_threads", K_NOTE, JAVA},
    {"use_native_io", K_NOTE, JAVA},
    {"io_ratio", K_NOTE, JAVA},
    {"prefer_direct_buffer", K_NOTE, JAVA},
    {"async_logging", K_NOTE, JAVA},
    {"model_server_home", K_NOTE, JAVA},
    {"grpc_inference_port", K_NOTE, GRPC},
    {"grpc_management_port", K_NOTE, GRPC},
    {"grpc_inference_address", K_NOTE, GRPC},
    {"grpc_management_address", K_NOTE, GRPC},
    {"grpc_inference_max_connection_age_ms", K_NOTE, GRPC},
    {"grpc_management_max_connection_age_ms", K_NOTE, GRPC},
    {"grpc_inference_max_connection_age_grace_ms", K_NOTE, GRPC},
    {"grpc_management_max_connection_age_grace_ms", K_NOTE, GRPC},
    {"enable_grpc_ssl", K_NOTE, GRPC},
    {"number_of_gpu", K_NOTE, GPU},
    {"ipex_gpu_enable", K_NOTE, GPU},
    {"enable_metrics_api", K_NOTE, METRICS},
    {"metrics_mode", K_NOTE, METRICS},
    {"metrics_format", K_NOTE, METRICS},
    {"metrics_config", K_NOTE, METRICS},
    {"metric_time_interval", K_NOTE, METRICS},
    {"model_metrics_auto_detect", K_NOTE, METRICS},
    {"disable_system_metrics", K_NOTE, METRICS},
    {"system_metrics_cmd", K_NOTE, METRICS},
    {"cors_allowed_origin", K_NOTE, CORS},
    {"cors_allowed_methods", K_NOTE, CORS},
    {"cors_allowed_headers", K_NOTE, CORS},
    {"allowed_urls", K_NOTE, URLS},
    {"use_env_allowed_urls", K_NOTE, URLS},
    {"model_snapshot", K_NOTE, SNAPSHOT},
    {"snapshot_store", K_NOTE, SNAPSHOT},
    {"disable_token_authorization", K_NOTE, TOKEN},
    {"token_expiration_min", K_NOTE, TOKEN},
    {"enable_model_api", K_NOTE, TOKEN},
    {"enable_envvars_config", K_NOTE, "pinfer reads no TS_* environment variables; not used"},
    {"install_py_dep_per_model", K_NOTE, "pinfer installs no Python packages; not used"},
    {"NUM_WORKERS", K_NOTE, "not used by pinfer (default_workers_per_model is)"},
    {"debug", K_NOTE, UNUSED},
    {"default_startup_timeout", K_NOTE, UNUSED},
    {"unregister_model_timeout", K_NOTE, UNUSED},
    {"decode_input_request", K_NOTE, UNUSED},
    {"default_service_handler", K_NOTE, UNUSED},
    {"service_envelope", K_NOTE, UNUSED},
    {"limit_max_image_pixels", K_NOTE, UNUSED},
    {"initial_worker_port", K_NOTE, UNUSED},
    {"initial_distribution_port", K_NOTE, UNUSED},
    {"workflow_store", K_NOTE, UNUSED},
    {"cpp_log_config", K_NOTE, UNUSED},
    {"ts_open_inference_protocol", K_NOTE, UNUSED},
    {"ts_header_key_sequence_id", K_NOTE, UNUSED},
    {"ts_header_key_sequence_start", K_NOTE, UNUSED},
    {"ts_header_key_sequence_end", K_NOTE, UNUSED},
    {"version", K_NOTE, UNUSED},
};
#define NKEYS (sizeof KEYS / sizeof *KEYS)

/* What reading one file carries along. */
typedef struct reader {
    const char *source;
    char *const *envp;
    pf_serve_config *cfg;
    pf__strv warnings;
    pf__strv notes;
    char **why;
} reader;

static const struct key_def *find_key(const char *key)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(KEYS[i].key, key) == 0)
            return &KEYS[i];
    return NULL;
}

/* Edit distance, for "did you mean": small strings only (keys). */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *closest_key(const char *key)
{
    const char *best = NULL;
    size_t best_d = 3; /* two edits at most */
    if (strlen(key) < 4)
        return NULL;
    for (size_t i = 0; i < NKEYS; i++) {
        size_t d = distance(key, KEYS[i].key);
        if (d < best_d) {
            best_d = d;
            best = KEYS[i].key;
        }
    }
    return best;
}

static int add_message(pf__strv *sv, const char *fmt, ...) PF__PRINTF(2, 3);
static int add_message(pf__strv *sv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = pf__vstrdupf(fmt, ap);
    va_end(ap);
    char *line = text ? pf_printable(text) : NULL;
    free(text);
    return pf__strv_take(sv, line);
}

/*
 * $$NAME$$ -> the value of NAME, as TorchServe's resolveEnvVarVals: the
 * pattern \$\$([^$]+[^$])\$\$ (a name of two or more characters without '$'),
 * found left to right; an unset variable is an error.
 */
static int substitute(reader *r, const pf__property *p, char **out, bool *changed)
{
    const char *v = p->value;
    pf__buf b = {0};
    *changed = false;
    for (size_t i = 0; v[i];) {
        if (v[i] == '$' && v[i + 1] == '$') {
            size_t j = i + 2;
            while (v[j] && v[j] != '$')
                j++;
            if (j - (i + 2) >= 2 && v[j] == '$' && v[j + 1] == '$') {
                char *name = strndup(v + i + 2, j - (i + 2));
                if (!name) {
                    pf__buf_free(&b);
                    return -ENOMEM;
                }
                const char *value = pf__envp_get(r->envp, name);
                if (!value) {
                    int rc = pf__serve_fail(r->why, -EINVAL,
                                            "%s:%d: %s: $$%s$$: environment variable %s is not set",
                                            r->source, p->line, p->key, name, name);
                    free(name);
                    pf__buf_free(&b);
                    return rc;
                }
                free(name);
                pf__buf_puts(&b, value);
                *changed = true;
                i = j + 2;
                continue;
            }
        }
        pf__buf_put(&b, v + i, 1);
        i++;
    }
    return pf__buf_take(&b, out);
}

/* ---- values ---- */

static int need_value(reader *r, const pf__property *p, const char *value)
{
    if (*value)
        return 0;
    return pf__serve_fail(r->why, -EINVAL, "%s:%d: %s has no value", r->source, p->line, p->key);
}

static int bool_value(reader *r, const pf__property *p, const char *value, bool *out)
{
    int rc = need_value(r, p, value);
    if (rc < 0)
        return rc;
    if (strcasecmp(value, "true") == 0)
        *out = true;
    else if (strcasecmp(value, "false") == 0)
        *out = false;
    else
        return pf__serve_fail(r->why, -EINVAL, "%s:%d: %s must be true or false, not '%s'",
                              r->source, p->line, p->key, value);
    return 0;
}

/* A whole number in [lo, INT_MAX], as TorchServe's Java ints. */
static int int_value(reader *r, const pf__property *p, const char *value, long lo, int *out)
{
    int rc = need_value(r, p, value);
    if (rc < 0)
        return rc;
    long v;
    rc = pf__parse_int(value, strlen(value), LONG_MIN, LONG_MAX, &v);
    if (rc == -EINVAL)
        return pf__serve_fail(r->why, -EINVAL, "%s:%d: %s must be a whole number, not '%s'",
                              r->source, p->line, p->key, value);
    if (rc == 0 && v < lo)
        return pf__serve_fail(r->why, -EINVAL, "%s:%d: %s is %s: it must be at least %ld",
                              r->source, p->line, p->key, value, lo);
    if (rc < 0 || v > INT_MAX)
        return pf__serve_fail(r->why, -EINVAL, "%s:%d: %s is %s: it must be at most %d", r->source,
                              p->line, p->key, value, INT_MAX);
    *out = (int)v;
    return 0;
}

static int address_value(reader *r, const pf__property *p, const char *value,
                         pf_serve_listener listener, pf_serve_address **slot)
{
    int rc = need_value(r, p, value);
    if (rc < 0)
        return rc;
    pf_serve_address *a = NULL;
    char *sub = NULL;
    rc = pf_serve_address_parse(value, listener, &a, &sub);
    if (rc == -EINVAL)
        rc = pf__serve_fail(r->why, rc, "%s:%d: %s: %s", r->source, p->line, p->key,
                            sub ? sub : "invalid address");
    free(sub);
    if (rc < 0)
        return rc;
    pf_serve_address_free(*slot);
    *slot = a;
    return 0;
}

/* ---- the `models` JSON ---- */

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number with a fraction";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return "null";
    }
}

typedef struct models_ctx {
    reader *r;
    const pf__property *p;
    const char *value;
    bool substituted; /* offsets in value no longer match the file */
    bool searchable;  /* small enough to search once per field (LOCATE_MAX) */
} models_ctx;

/*
 * Where "KEY" first appears in the value at or after `from`: the line of a
 * model, version or field in a models value written over many lines.  Not
 * found (a key written with JSON escapes), or a value too large to search
 * once per field: `from`.
 */
static size_t locate(const models_ctx *m, size_t from, const char *key)
{
    if (!m->searchable)
        return from;
    char *quoted = pf__strdupf("\"%s\"", key);
    const char *hit = quoted ? strstr(m->value + from, quoted) : NULL;
    free(quoted);
    return hit ? (size_t)(hit - m->value) : from;
}

static int line_at(const models_ctx *m, size_t off)
{
    return m->substituted ? m->p->line : pf__property_line_at(m->p, off);
}

/* A positive (or, lo 0, non-negative) integer field of a model version. */
static int int_field(const models_ctx *m, int line, const char *model, const char *version,
                     const char *field, const json_t *v, long lo, int *out)
{
    if (!json_is_integer(v))
        return pf__serve_fail(m->r->why, -EINVAL,
                              "%s:%d: models: \"%s\" \"%s\": %s must be an integer, not %s",
                              m->r->source, line, model, version, field, json_kind(v));
    json_int_t x = json_integer_value(v);
    if (x < lo || x > INT_MAX)
        return pf__serve_fail(m->r->why, -EINVAL,
                              "%s:%d: models: \"%s\" \"%s\": %s is %lld: it must be at %s %ld",
                              m->r->source, line, model, version, field, (long long)x,
                              x < lo ? "least" : "most", x < lo ? lo : (long)INT_MAX);
    *out = (int)x;
    return 0;
}

static int models_push(pf_serve_config *cfg, pf_serve_model_config **slot)
{
    pf_serve_model_config *v = realloc(cfg->models, (cfg->nmodels + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    cfg->models = v;
    *slot = &v[cfg->nmodels++];
    memset(*slot, 0, sizeof **slot);
    (*slot)->max_batch_delay = -1; /* absent; 0 is a delay */
    return 0;
}

static int version_fields(const models_ctx *m, size_t voff, const char *model, const char *version,
                          const json_t *fields, pf_serve_model_config *mc)
{
    reader *r = m->r;
    const char *field;
    json_t *v;
    json_object_foreach((json_t *)fields, field, v)
    {
        int line = line_at(m, locate(m, voff, field));
        int rc = 0;
        if (strcmp(field, "defaultVersion") == 0) {
            if (!json_is_boolean(v))
                return pf__serve_fail(r->why, -EINVAL,
                                      "%s:%d: models: \"%s\" \"%s\": defaultVersion must be true "
                                      "or false, not %s",
                                      r->source, line, model, version, json_kind(v));
            mc->default_version = json_is_true(v);
        } else if (strcmp(field, "marName") == 0) {
            if (!json_is_string(v))
                return pf__serve_fail(r->why, -EINVAL,
                                      "%s:%d: models: \"%s\" \"%s\": marName must be a string, "
                                      "not %s",
                                      r->source, line, model, version, json_kind(v));
            char *sub = NULL;
            free(mc->mar_name);
            mc->mar_name = NULL;
            rc = pf_serve_store_path(json_string_value(v), &mc->mar_name, &sub);
            if (rc == -EINVAL)
                rc = pf__serve_fail(r->why, rc, "%s:%d: models: \"%s\" \"%s\": marName: %s",
                                    r->source, line, model, version, sub ? sub : "");
            free(sub);
        } else if (strcmp(field, "minWorkers") == 0) {
            rc = int_field(m, line, model, version, field, v, 1, &mc->min_workers);
        } else if (strcmp(field, "maxWorkers") == 0) {
            rc = int_field(m, line, model, version, field, v, 1, &mc->max_workers);
        } else if (strcmp(field, "batchSize") == 0) {
            rc = int_field(m, line, model, version, field, v, 1, &mc->batch_size);
        } else if (strcmp(field, "maxBatchDelay") == 0) {
            rc = int_field(m, line, model, version, field, v, 0, &mc->max_batch_delay);
        } else if (strcmp(field, "responseTimeout") == 0) {
            rc = int_field(m, line, model, version, field, v, 1, &mc->response_timeout);
        } else if (strcmp(field, "startupTimeout") == 0 || strcmp(field, "runtimeType") == 0) {
            rc = add_message(&r->notes, "%s:%d: models: \"%s\" \"%s\": %s: %s", r->source, line,
                             model, version, field, UNUSED);
        } else {
            rc = add_message(&r->warnings,
                             "%s:%d: models: \"%s\" \"%s\": unknown field \"%s\" "
                             "(ignored)",
                             r->source, line, model, version, field);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_models(reader *r, const pf__property *p, const char *value, bool substituted)
{
    int rc = need_value(r, p, value);
    if (rc < 0)
        return rc;
    json_error_t err;
    json_t *root = json_loadb(value, strlen(value), JSON_REJECT_DUPLICATES, &err);
    models_ctx m = {r, p, value, substituted, strlen(value) <= LOCATE_MAX};
    if (!root) {
        size_t at = err.position > 0 ? (size_t)err.position - 1 : 0;
        return pf__serve_fail(r->why, -EINVAL, "%s:%d: models: not valid JSON: %s", r->source,
                              line_at(&m, at), err.text);
    }
    pf_serve_config *cfg = r->cfg;
    if (!json_is_object(root)) {
        rc = pf__serve_fail(r->why, -EINVAL,
                            "%s:%d: models: a JSON object {\"NAME\": {\"VERSION\": {...}}} is "
                            "expected, not %s",
                            r->source, p->line, json_kind(root));
        json_decref(root);
        return rc;
    }
    const char *model;
    json_t *versions;
    json_object_foreach(root, model, versions)
    {
        size_t moff = locate(&m, 0, model);
        int mline = line_at(&m, moff);
        char *sub = NULL;
        if ((rc = pf__serve_name_check("model name", model, &sub)) < 0) {
            if (rc == -EINVAL)
                rc = pf__serve_fail(r->why, rc, "%s:%d: models: %s", r->source, mline,
                                    sub ? sub : "");
            free(sub);
            break;
        }
        if (!json_is_object(versions) || json_object_size(versions) == 0) {
            rc = pf__serve_fail(r->why, -EINVAL,
                                "%s:%d: models: \"%s\": an object of versions "
                                "{\"VERSION\": {...}} is expected, not %s",
                                r->source, mline, model,
                                json_is_object(versions) ? "an empty one" : json_kind(versions));
            break;
        }
        const char *version, *first_default = NULL;
        json_t *fields;
        json_object_foreach(versions, version, fields)
        {
            size_t voff = locate(&m, moff, version);
            int vline = line_at(&m, voff);
            if ((rc = pf__serve_name_check("version", version, &sub)) < 0) {
                if (rc == -EINVAL)
                    rc = pf__serve_fail(r->why, rc, "%s:%d: models: \"%s\": %s", r->source, vline,
                                        model, sub ? sub : "");
                free(sub);
                break;
            }
            if (!json_is_object(fields)) {
                rc = pf__serve_fail(r->why, -EINVAL,
                                    "%s:%d: models: \"%s\" \"%s\": an object of settings is "
                                    "expected, not %s",
                                    r->source, vline, model, version, json_kind(fields));
                break;
            }
            pf_serve_model_config *mc;
            if ((rc = models_push(cfg, &mc)) < 0)
                break;
            mc->name = strdup(model);
            mc->version = strdup(version);
            mc->line = mline;
            if (!mc->name || !mc->version) {
                rc = -ENOMEM;
                break;
            }
            if ((rc = version_fields(&m, voff, model, version, fields, mc)) < 0)
                break;
            if (mc->min_workers && mc->max_workers && mc->max_workers < mc->min_workers) {
                rc = pf__serve_fail(r->why, -EINVAL,
                                    "%s:%d: models: \"%s\" \"%s\": maxWorkers (%d) is below "
                                    "minWorkers (%d)",
                                    r->source, vline, model, version, mc->max_workers,
                                    mc->min_workers);
                break;
            }
            if (mc->default_version && first_default) {
                rc = pf__serve_fail(r->why, -EINVAL,
                                    "%s:%d: models: \"%s\": versions \"%s\" and \"%s\" both have "
                                    "defaultVersion true",
                                    r->source, vline, model, first_default, version);
                break;
            }
            if (mc->default_version)
                first_default = version;
        }
        if (rc < 0)
            break;
    }
    json_decref(root);
    return rc;
}

/* ---- the keys ---- */

static int read_key(reader *r, const pf__property *p, const struct key_def *def, const char *value,
                    bool substituted)
{
    pf_serve_config *cfg = r->cfg;
    int rc = 0;
    char *sub = NULL;
    switch (def ? def->id : K_UNKNOWN) {
    case K_INFERENCE_ADDRESS:
        return address_value(r, p, value, PF_SERVE_INFERENCE, &cfg->inference_address);
    case K_MANAGEMENT_ADDRESS:
        return address_value(r, p, value, PF_SERVE_MANAGEMENT, &cfg->management_address);
    case K_METRICS_ADDRESS:
        return address_value(r, p, value, PF_SERVE_METRICS, &cfg->metrics_address);
    case K_MODEL_STORE:
        if ((rc = need_value(r, p, value)) < 0)
            return rc;
        free(cfg->model_store);
        cfg->model_store = strdup(value);
        return cfg->model_store ? 0 : -ENOMEM;
    case K_LOAD_MODELS:
        pf_serve_model_list_free(cfg->load_models, cfg->nload_models);
        cfg->load_models = NULL;
        cfg->nload_models = 0;
        rc = pf_serve_model_list_parse(value, &cfg->load_models, &cfg->nload_models, &sub);
        if (rc == -EINVAL)
            rc = pf__serve_fail(r->why, rc, "%s:%d: load_models: %s", r->source, p->line,
                                sub ? sub : "");
        free(sub);
        return rc;
    case K_DEFAULT_WORKERS: return int_value(r, p, value, 0, &cfg->default_workers_per_model);
    case K_JOB_QUEUE_SIZE: return int_value(r, p, value, 1, &cfg->job_queue_size);
    case K_RESPONSE_TIMEOUT: return int_value(r, p, value, 1, &cfg->default_response_timeout);
    case K_MAX_REQUEST_SIZE:
    case K_MAX_RESPONSE_SIZE: {
        int size;
        if ((rc = int_value(r, p, value, 1, &size)) < 0)
            return rc;
        *(def->id == K_MAX_REQUEST_SIZE ? &cfg->max_request_size : &cfg->max_response_size) =
            (size_t)size;
        return 0;
    }
    case K_MODELS: return parse_models(r, p, value, substituted);
    case K_CPU_LAUNCHER_ENABLE:
        if ((rc = bool_value(r, p, value, &cfg->cpu_launcher_enable)) < 0)
            return rc;
        if (!cfg->cpu_launcher_enable)
            return add_message(&r->notes,
                               "%s:%d: cpu_launcher_enable=false: pinfer pins the workers anyway "
                               "(--pinning none runs them unpinned)",
                               r->source, p->line);
        return 0;
    case K_CPU_LAUNCHER_ARGS: {
        char **argv = NULL;
        size_t argc = 0;
        rc = pf__shell_split(value, &argv, &argc, &sub);
        if (rc == -EINVAL)
            rc = pf__serve_fail(r->why, rc, "%s:%d: cpu_launcher_args: %s", r->source, p->line,
                                sub ? sub : "");
        free(sub);
        if (rc < 0)
            return rc;
        char *copy = strdup(value);
        if (!copy) {
            pf_strv_free(argv);
            return -ENOMEM;
        }
        free(cfg->cpu_launcher_args);
        pf_strv_free(cfg->cpu_launcher_argv);
        cfg->cpu_launcher_args = copy;
        cfg->cpu_launcher_argv = argv;
        cfg->cpu_launcher_argc = argc;
        return 0;
    }
    case K_IPEX_ENABLE: return bool_value(r, p, value, &cfg->ipex_enable);
    case K_KEPT: return 0;
    case K_NOTE:
        return add_message(&r->notes, "%s:%d: %s: %s", r->source, p->line, p->key, def->why);
    case K_WARNING:
        return add_message(&r->warnings, "%s:%d: %s: %s", r->source, p->line, p->key, def->why);
    case K_UNKNOWN:
    default: break;
    }
    if (!*p->key)
        return add_message(&r->warnings, "%s:%d: a value without a key (ignored)", r->source,
                           p->line);
    const char *near = closest_key(p->key);
    if (near)
        return add_message(&r->warnings, "%s:%d: unknown key '%s' (ignored): did you mean '%s'?",
                           r->source, p->line, p->key, near);
    return add_message(&r->warnings, "%s:%d: unknown key '%s' (ignored)", r->source, p->line,
                       p->key);
}

/* Properties sorted by key, then by position: repeated keys side by side. */
typedef struct keyed {
    const char *key;
    size_t index;
} keyed;

static int by_key(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/*
 * For each property, the line of the first property with its key when it
 * is not that first one (0 otherwise), and whether it is the last (the one
 * read).  O(n log n): a file may be large.
 */
static int find_repeats(const pf__properties *props, int *first_line, bool *last)
{
    size_t n = props->len;
    keyed *v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = (keyed){props->v[i].key, i};
    qsort(v, n, sizeof *v, by_key);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && strcmp(v[j + 1].key, v[i].key) == 0)
            j++;
        for (size_t k = i; k <= j; k++) {
            first_line[v[k].index] = k == i ? 0 : props->v[v[i].index].line;
            last[v[k].index] = k == j;
        }
        i = j + 1;
    }
    free(v);
    return 0;
}

static int new_config(const char *source, pf_serve_config **out)
{
    pf_serve_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return -ENOMEM;
    *out = cfg;
    cfg->source = strdup(source);
    cfg->job_queue_size = DEFAULT_JOB_QUEUE_SIZE;
    cfg->default_response_timeout = DEFAULT_RESPONSE_TIMEOUT;
    cfg->max_request_size = DEFAULT_MAX_SIZE;
    cfg->max_response_size = DEFAULT_MAX_SIZE;
    cfg->cpu_launcher_argv = calloc(1, sizeof *cfg->cpu_launcher_argv);
    if (!cfg->source || !cfg->cpu_launcher_argv ||
        pf_serve_address_parse(DEFAULT_INFERENCE, PF_SERVE_INFERENCE, &cfg->inference_address,
                               NULL) < 0 ||
        pf_serve_address_parse(DEFAULT_MANAGEMENT, PF_SERVE_MANAGEMENT, &cfg->management_address,
                               NULL) < 0 ||
        pf_serve_address_parse(DEFAULT_METRICS, PF_SERVE_METRICS, &cfg->metrics_address, NULL) < 0)
        return -ENOMEM;
    return 0;
}

/* Defaults that depend on other keys, once every key is read. */
static void resolve(pf_serve_config *cfg)
{
    for (size_t i = 0; i < cfg->nmodels; i++) {
        pf_serve_model_config *m = &cfg->models[i];
        if (!m->batch_size)
            m->batch_size = DEFAULT_BATCH_SIZE;
        if (!m->response_timeout)
            m->response_timeout = cfg->default_response_timeout;
        if (!m->max_workers)
            m->max_workers = m->min_workers;
        if (m->max_batch_delay < 0)
            m->max_batch_delay = DEFAULT_MAX_BATCH_DELAY;
    }
}

/* The lines of the file in order, each key read at its last occurrence. */
static int read_all(reader *r, const pf__properties *props)
{
    pf_serve_config *cfg = r->cfg;
    size_t n = props->len;
    int *first_line = calloc(n ? n : 1, sizeof *first_line);
    bool *last = calloc(n ? n : 1, sizeof *last);
    cfg->properties = calloc(n ? n : 1, sizeof *cfg->properties);
    int rc =
        first_line && last && cfg->properties ? find_repeats(props, first_line, last) : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const pf__property *p = &props->v[i];
        if (first_line[i])
            rc = add_message(&r->warnings,
                             "%s:%d: %s is set again (first on line %d): the last "
                             "value is used",
                             r->source, p->line, p->key, first_line[i]);
        if (rc < 0 || !last[i])
            continue;
        char *value = NULL;
        bool substituted = false;
        if ((rc = substitute(r, p, &value, &substituted)) < 0)
            break;
        rc = read_key(r, p, find_key(p->key), value, substituted);
        pf_serve_property *out = &cfg->properties[cfg->nproperties];
        out->key = strdup(p->key);
        out->value = value;
        out->line = p->line;
        cfg->nproperties++;
        if (rc == 0 && !out->key)
            rc = -ENOMEM;
    }
    free(first_line);
    free(last);
    return rc;
}

int pf_serve_config_parse(const char *text, size_t len, const char *source, char *const *envp,
                          pf_serve_config **out, char **why)
{
    if (!out || (!text && len))
        return -EINVAL;
    *out = NULL;
    if (!source)
        source = "config.properties";
    pf__properties props;
    int rc = pf__properties_parse(source, text ? text : "", len, &props, why);
    if (rc < 0)
        return rc;
    reader r = {.source = source, .envp = envp ? envp : environ, .why = why};
    rc = new_config(source, &r.cfg);
    if (rc == 0)
        rc = read_all(&r, &props);
    pf__properties_free(&props);
    if (rc == 0) {
        resolve(r.cfg);
        r.cfg->warnings = r.warnings.v;
        r.cfg->nwarnings = r.warnings.len;
        r.cfg->notes = r.notes.v;
        r.cfg->nnotes = r.notes.len;
        *out = r.cfg;
        return 0;
    }
    pf__strv_free(&r.warnings);
    pf__strv_free(&r.notes);
    pf_serve_config_free(r.cfg);
    return rc;
}

int pf_serve_config_load(const char *path, char *const *envp, pf_serve_config **out, char **why)
{
    if (!out || !path)
        return -EINVAL;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return pf__serve_fail(why, -err, "cannot read %s: %s", path, strerror(err));
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = errno;
        close(fd);
        return pf__serve_fail(why, -err, "cannot read %s: %s", path, strerror(err));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return pf__serve_fail(why, -EINVAL, "%s is a folder, not a config.properties file", path);
    }
    pf__buf b = {0};
    char chunk[65536];
    int rc = 0;
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int err = errno;
            rc = pf__serve_fail(why, -err, "cannot read %s: %s", path, strerror(err));
            break;
        }
        if (got == 0)
            break;
        if (b.len + (size_t)got > MAX_FILE_SIZE) {
            rc = pf__serve_fail(why, -EINVAL, "%s is larger than %d MiB: not a config.properties",
                                path, MAX_FILE_SIZE >> 20);
            break;
        }
        pf__buf_put(&b, chunk, (size_t)got);
    }
    close(fd);
    if (rc == 0 && b.failed)
        rc = -ENOMEM;
    if (rc == 0)
        rc = pf_serve_config_parse(b.s ? b.s : "", b.len, path, envp, out, why);
    pf__buf_free(&b);
    return rc;
}

void pf_serve_config_free(pf_serve_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->source);
    pf_serve_address_free(cfg->inference_address);
    pf_serve_address_free(cfg->management_address);
    pf_serve_address_free(cfg->metrics_address);
    free(cfg->model_store);
    pf_serve_model_list_free(cfg->load_models, cfg->nload_models);
    for (size_t i = 0; i < cfg->nmodels; i++) {
        free(cfg->models[i].name);
        free(cfg->models[i].version);
        free(cfg->models[i].mar_name);
    }
    free(cfg->models);
    free(cfg->cpu_launcher_args);
    pf_strv_free(cfg->cpu_launcher_argv);
    for (size_t i = 0; i < cfg->nproperties; i++) {
        free(cfg->properties[i].key);
        free(cfg->properties[i].value);
    }
    free(cfg->properties);
    pf_strv_free(cfg->warnings);
    pf_strv_free(cfg->notes);
    free(cfg);
}
