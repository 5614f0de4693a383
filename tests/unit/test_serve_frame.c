/*
 * test_serve_frame.c - the worker protocol's frames (src/serve/frame.c).
 *
 * Tables: every header error with its exact message, found on the 16 header
 * bytes alone; body errors (JSON not UTF-8, not valid, not an object) and
 * the connection ending inside a frame.  A stream of several frames is fed
 * split at every byte boundary, one byte at a time and all at once, and must
 * come out the same.  The integration test starts the real Python worker
 * (python -m pinfer.serve.worker) with pf_spawn, its fd 3 one end of a
 * socketpair, on a TorchScript identity model made here, and speaks the
 * protocol to it: READY, a BATCH of v2 requests and its RESULT, STOP and
 * exit status 0.  It is skipped when torch cannot be imported.
 */
#include "pf_test.h"
#include "serve/frame.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- helpers ---- */

static void header(uint8_t *out, const char *magic, uint32_t kind, uint32_t json_len,
                   uint32_t data_len)
{
    memcpy(out, magic, 4);
    uint32_t v[3] = {kind, json_len, data_len};
    for (int i = 0; i < 3; i++)
        for (int b = 0; b < 4; b++)
            out[4 + 4 * i + b] = (uint8_t)(v[i] >> (8 * b));
}

/* Append one encoded frame to a growing stream. */
static void append(uint8_t **stream, size_t *len, uint32_t kind, const char *json, const void *data,
                   size_t data_len)
{
    uint8_t *f = NULL;
    size_t n = 0;
    char *why = NULL;
    assert_int_equal(pf__frame_encode(kind, json, strlen(json), data, data_len, &f, &n, &why), 0);
    assert_null(why);
    *stream = realloc(*stream, *len + n);
    assert_non_null(*stream);
    memcpy(*stream + *len, f, n);
    *len += n;
    free(f);
}

/*
 * Feed [p, p + n) and take every whole frame into frames[*nframes...].
 * Returns the last feed's code (0, or an error).
 */
static int feed_all(pf__frame_decoder *d, const uint8_t *p, size_t n, pf__frame *frames,
                    size_t *nframes, size_t max, char **why)
{
    for (;;) {
        size_t used = 0;
        int rc = pf__frame_decoder_feed(d, p, n, &used, why);
        assert_true(used <= n);
        if (rc < 0)
            return rc;
        p += used;
        n -= used;
        if (rc == 0) {
            assert_int_equal(n, 0);
            return 0;
        }
        assert_true(*nframes < max);
        assert_int_equal(pf__frame_decoder_take(d, &frames[*nframes]), 1);
        (*nframes)++;
    }
}

/* ---- header errors ---- */

typedef struct header_case {
    const char *magic;
    uint32_t kind, json_len, data_len;
    const char *error; /* NULL: the header is accepted (more bytes wanted) */
} header_case;

static const header_case HEADER_CASES[] = {
    {"XFW1", 1, 2, 0, "bad magic \"XFW1\" (expected \"PFW1\")"},
    {"pfw1", 1, 2, 0, "bad magic \"pfw1\" (expected \"PFW1\")"},
    {"\x00\xffW\"", 1, 2, 0, "bad magic \"\\x00\\xffW\\x22\" (expected \"PFW1\")"},
    {"PFW2", 1, 2, 0, "bad magic \"PFW2\" (expected \"PFW1\")"},
    {"PFW1", 0, 2, 0, "unknown frame kind 0"},
    {"PFW1", 7, 2, 0, "unknown frame kind 7"},
    {"PFW1", 0xffffffffu, 2, 0, "unknown frame kind 4294967295"},
    {"PFW1", 2, 2, 0, "unexpected BATCH frame"},
    {"PFW1", 4, 2, 0, "unexpected PIN frame"},
    {"PFW1", 6, 2, 0, "unexpected STOP frame"},
    {"PFW1", 1, (16u << 20) + 1, 0, "JSON of 16777217 bytes (the limit is 16777216)"},
    {"PFW1", 3, 0xffffffffu, 0, "JSON of 4294967295 bytes (the limit is 16777216)"},
    {"PFW1", 3, 2, (1u << 30) + 1, "data of 1073741825 bytes (the limit is 1073741824)"},
    {"PFW1", 5, 2, 0xffffffffu, "data of 4294967295 bytes (the limit is 1073741824)"},
    /* the magic first, then the kind, then the lengths */
    {"XXXX", 9, 0xffffffffu, 0xffffffffu, "bad magic \"XXXX\" (expected \"PFW1\")"},
    {"PFW1", 9, 0xffffffffu, 0xffffffffu, "unknown frame kind 9"},
    {"PFW1", 2, 0xffffffffu, 0xffffffffu, "unexpected BATCH frame"},
    {"PFW1", 1, 0xffffffffu, 0xffffffffu, "JSON of 4294967295 bytes (the limit is 16777216)"},
    /* at the limits: accepted, nothing allocated until bytes come */
    {"PFW1", 1, 16u << 20, 1u << 30, NULL},
    {"PFW1", 3, 2, 1u << 30, NULL},
    {"PFW1", 5, 16u << 20, 0, NULL},
};

static void test_header_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof HEADER_CASES / sizeof HEADER_CASES[0]; i++) {
        const header_case *c = &HEADER_CASES[i];
        uint8_t head[16 + 8];
        header(head, c->magic, c->kind, c->json_len, c->data_len);
        memcpy(head + 16, "{}trail", 8); /* bytes after the header: never read on an error */
        pf__frame_decoder d;
        pf__frame_decoder_init(&d, PF__FRAME_FROM_WORKER);
        /* one byte short of the header: nothing judged yet */
        size_t used = 0;
        char *why = NULL;
        assert_int_equal(pf__frame_decoder_feed(&d, head, 15, &used, &why), 0);
        assert_int_equal(used, 15);
        assert_null(why);
        int rc = pf__frame_decoder_feed(&d, head + 15, c->error ? 9 : 1, &used, &why);
        if (!c->error) {
            if (rc != 0 || why)
                fail_msg("case %zu: rc %d, %s", i, rc, why ? why : "");
            assert_int_equal(used, 1);
            assert_null(d.cur.json);
            assert_null(d.cur.data);
            pf__frame_decoder_free(&d);
            continue;
        }
        if (rc != -EPROTO || !why || strcmp(why, c->error) != 0)
            fail_msg("case %zu: rc %d, \"%s\", wanted \"%s\"", i, rc, why ? why : "(null)",
                     c->error);
        assert_int_equal(used, 1); /* stopped at the end of the header */
        free(why);
        why = NULL;
        /* final: the same answer again, nothing consumed */
        assert_int_equal(pf__frame_decoder_feed(&d, "PFW1", 4, &used, &why), -EPROTO);
        assert_int_equal(used, 0);
        assert_string_equal(why, c->error);
        assert_string_equal(pf__frame_decoder_error(&d), c->error);
        free(why);
        why = NULL;
        assert_int_equal(pf__frame_decoder_finish(&d, &why), -EPROTO);
        assert_string_equal(why, c->error);
        free(why);
        pf__frame_decoder_free(&d);
    }
}

/* ---- body errors and the end of the connection ---- */

typedef struct body_case {
    const char *bytes; /* after a READY header with json_len = strlen(bytes) + extra */
    size_t len;
    uint32_t json_len, data_len;
    bool finish; /* the connection ends after the bytes */
    const char *error;
} body_case;

#define S(s) s, sizeof s - 1

static const body_case BODY_CASES[] = {
    {S("{\"a\":\"\xff\"}"), 9, 0, false, "the JSON of the frame is not UTF-8"},
    {S("{\"a\":\"\xed\xa0\x80\"}"), 11, 0, false, "the JSON of the frame is not UTF-8"},
    {S("[1, 2]"), 6, 0, false, "the JSON of the frame is a list, not an object"},
    {S("\"x\""), 3, 0, false, "the JSON of the frame is a str, not an object"},
    {S("7"), 1, 0, false, "the JSON of the frame is a int, not an object"},
    {S("null"), 4, 0, false, "the JSON of the frame is a NoneType, not an object"},
    {S("{\"a\": NaN}"), 10, 0, false, "the JSON of the frame is not valid: "},
    {S("{\"a\": Infinity}"), 15, 0, false, "the JSON of the frame is not valid: "},
    {S("{\"a\": 1"), 7, 0, false, "the JSON of the frame is not valid: "},
    {S("{} {}"), 5, 0, false, "the JSON of the frame is not valid: "},
    {S(""), 0, 0, false, "the JSON of the frame is not valid: "},
    {S(""), 0, 4, false, NULL}, /* JSON not whole yet: no error */
    {S("{"), 2, 0, true, "the connection closed inside a frame (JSON: 1 of 2 bytes)"},
    {S(""), 2, 0, true, "the connection closed inside a frame (JSON: 0 of 2 bytes)"},
    {S("{}ab"), 2, 5, true, "the connection closed inside a frame (data: 2 of 5 bytes)"},
    {S("{}"), 2, 1, true, "the connection closed inside a frame (data: 0 of 1 bytes)"},
    {S("{\"a\":\"\\u0000\"}"), 14, 0, true, NULL}, /* whole: the end is between frames */
};

static void test_body_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BODY_CASES / sizeof BODY_CASES[0]; i++) {
        const body_case *c = &BODY_CASES[i];
        uint8_t buf[64];
        header(buf, "PFW1", PF__FRAME_RESULT, c->json_len, c->data_len);
        memcpy(buf + 16, c->bytes, c->len);
        pf__frame_decoder d;
        pf__frame_decoder_init(&d, PF__FRAME_FROM_WORKER);
        pf__frame frames[2];
        size_t n = 0;
        char *why = NULL;
        int rc = feed_all(&d, buf, 16 + c->len, frames, &n, 2, &why);
        if (c->finish && rc == 0)
            rc = pf__frame_decoder_finish(&d, &why);
        if (!c->error) {
            if (rc != 0 || why)
                fail_msg("case %zu: rc %d, %s", i, rc, why ? why : "");
        } else if (rc != -EPROTO || !why || strncmp(why, c->error, strlen(c->error)) != 0 ||
                   strchr(why, '\n')) {
            fail_msg("case %zu: rc %d, \"%s\", wanted \"%s\"", i, rc, why ? why : "(null)",
                     c->error);
        }
        free(why);
        for (size_t k = 0; k < n; k++)
            pf__frame_release(&frames[k]);
        pf__frame_decoder_free(&d);
    }
}

/* A header one byte short, then the end. */
static void test_end_inside_a_header(void **state)
{
    (void)state;
    uint8_t head[16];
    header(head, "PFW1", 1, 2, 0);
    for (size_t k = 0; k <= 16; k++) {
        pf__frame_decoder d;
        pf__frame_decoder_init(&d, PF__FRAME_FROM_WORKER);
        size_t used;
        char *why = NULL;
        assert_int_equal(pf__frame_decoder_feed(&d, head, k, &used, &why), 0);
        int rc = pf__frame_decoder_finish(&d, &why);
        if (k == 0) {
            assert_int_equal(rc, 0);
            assert_null(why);
        } else if (k < 16) {
            char want[128];
            snprintf(want, sizeof want,
                     "the connection closed inside a frame header (%zu of 16 bytes)", k);
            assert_int_equal(rc, -EPROTO);
            assert_string_equal(why, want);
        } else {
            assert_int_equal(rc, -EPROTO);
            assert_string_equal(why, "the connection closed inside a frame (JSON: 0 of 2 bytes)");
        }
        free(why);
        pf__frame_decoder_free(&d);
    }
}

/* ---- encoding ---- */

static void test_encode(void **state)
{
    (void)state;
    uint8_t *f = NULL;
    size_t n = 0;
    char *why = NULL;
    assert_int_equal(pf__frame_encode(PF__FRAME_BATCH, "{}", 2, "xyz", 3, &f, &n, &why), 0);
    assert_int_equal(n, 21);
    assert_memory_equal(f, "PFW1\x02\0\0\0\x02\0\0\0\x03\0\0\0{}xyz", 21);
    free(f);
    assert_int_equal(pf__frame_encode(0, "{}", 2, NULL, 0, &f, &n, &why), -EINVAL);
    assert_string_equal(why, "unknown frame kind 0");
    assert_null(f);
    free(why);
    uint8_t head[16];
    assert_int_equal(pf__frame_header(head, 3, (16u << 20) + 1, 0, &why), -EINVAL);
    assert_string_equal(why, "JSON of 16777217 bytes (the limit is 16777216)");
    free(why);
    assert_int_equal(pf__frame_header(head, 3, 0, (1u << 30) + 1, &why), -EINVAL);
    assert_string_equal(why, "data of 1073741825 bytes (the limit is 1073741824)");
    free(why);
    assert_int_equal(pf__frame_header(head, 6, 16u << 20, 1u << 30, NULL), 0);
    assert_string_equal(pf__frame_kind_name(PF__FRAME_PINNED), "PINNED");
    assert_null(pf__frame_kind_name(7));
}

/* ---- several frames, split anywhere ---- */

static const uint8_t DATA[] = {0, 1, 2, 0xff, 'P', 'F', 'W', '1', 0, 0};

static uint8_t *three_frames(size_t *len)
{
    uint8_t *s = NULL;
    *len = 0;
    append(&s, len, PF__FRAME_READY, "{\"pid\": 12, \"model\": \"m\"}", NULL, 0);
    append(&s, len, PF__FRAME_RESULT, "{\"batch\":1,\"responses\":[{\"id\":\"\xc3\xa9\"}]}", DATA,
           sizeof DATA);
    append(&s, len, PF__FRAME_PINNED, "{}", NULL, 0);
    return s;
}

static void check_three(pf__frame *f, size_t n)
{
    assert_int_equal(n, 3);
    assert_int_equal(f[0].kind, PF__FRAME_READY);
    assert_int_equal(json_integer_value(json_object_get(f[0].obj, "pid")), 12);
    assert_string_equal(f[0].json, "{\"pid\": 12, \"model\": \"m\"}");
    assert_null(f[0].data);
    assert_int_equal(f[0].data_len, 0);
    assert_int_equal(f[1].kind, PF__FRAME_RESULT);
    assert_int_equal(f[1].data_len, sizeof DATA);
    assert_memory_equal(f[1].data, DATA, sizeof DATA);
    json_t *r = json_array_get(json_object_get(f[1].obj, "responses"), 0);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "\xc3\xa9");
    assert_int_equal(f[2].kind, PF__FRAME_PINNED);
    assert_int_equal(json_object_size(f[2].obj), 0);
    for (size_t i = 0; i < n; i++)
        pf__frame_release(&f[i]);
}

static void test_split_at_every_byte(void **state)
{
    (void)state;
    size_t len;
    uint8_t *s = three_frames(&len);
    for (size_t k = 0; k <= len; k++) {
        for (size_t k2 = k; k2 <= len; k2 += (k2 < len ? 7 : 1)) {
            pf__frame_decoder d;
            pf__frame_decoder_init(&d, PF__FRAME_FROM_WORKER);
            pf__frame f[4];
            size_t n = 0;
            assert_int_equal(feed_all(&d, s, k, f, &n, 4, NULL), 0);
            assert_int_equal(feed_all(&d, s + k, k2 - k, f, &n, 4, NULL), 0);
            assert_int_equal(feed_all(&d, s + k2, len - k2, f, &n, 4, NULL), 0);
            assert_int_equal(pf__frame_decoder_finish(&d, NULL), 0);
            check_three(f, n);
            pf__frame_decoder_free(&d);
        }
    }
    /* one byte at a time */
    pf__frame_decoder d;
    pf__frame_decoder_init(&d, PF__FRAME_FROM_WORKER);
    pf__frame f[4];
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        assert_int_equal(feed_all(&d, s + i, 1, f, &n, 4, NULL), 0);
    check_three(f, n);
    pf__frame_decoder_free(&d);
    free(s);
}

/* All at once: the frames come out one by one; a whole frame waits to be taken. */
static void test_several_frames_in_one_feed(void **state)
{
    (void)state;
    size_t len;
    uint8_t *s = three_frames(&len);
    pf__frame_decoder d;
    pf__frame_decoder_init(&d, PF__FRAME_FROM_WORKER);
    size_t used = 0;
    assert_int_equal(pf__frame_decoder_feed(&d, s, len, &used, NULL), 1);
    size_t first = used;
    assert_true(first > 16 && first < len);
    /* not taken yet: nothing more consumed */
    assert_int_equal(pf__frame_decoder_feed(&d, s + first, len - first, &used, NULL), 1);
    assert_int_equal(used, 0);
    pf__frame f[4];
    size_t n = 0;
    assert_int_equal(pf__frame_decoder_take(&d, &f[n++]), 1);
    assert_int_equal(pf__frame_decoder_take(&d, &f[n]), 0);
    assert_int_equal(feed_all(&d, s + first, len - first, f, &n, 4, NULL), 0);
    check_three(f, n);
    /* a bad frame after good ones: the good ones come out first */
    uint8_t *t = NULL;
    size_t tlen = 0;
    append(&t, &tlen, PF__FRAME_READY, "{}", NULL, 0);
    append(&t, &tlen, PF__FRAME_STOP, "{}", NULL, 0);
    n = 0;
    char *why = NULL;
    assert_int_equal(feed_all(&d, t, tlen, f, &n, 4, &why), -EPROTO);
    assert_int_equal(n, 1);
    assert_string_equal(why, "unexpected STOP frame");
    pf__frame_release(&f[0]);
    free(why);
    free(t);
    pf__frame_decoder_free(&d);
    free(s);
}

/* ---- the real worker ---- */

#define DEADLINE_MS 120000

static int run_quiet(const char *command)
{
    int rc = system(command);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        assert_true(poll(&pfd, 1, DEADLINE_MS) == 1);
        ssize_t w = write(fd, p, n);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

/* The next frame from the non-blocking fd, read in small pieces; 0, or -1 at the end. */
static int read_frame(int fd, pf__frame_decoder *d, pf__frame *out)
{
    static uint8_t buf[1000];
    static size_t have, at;
    long long until = now_ms() + DEADLINE_MS;
    for (;;) {
        size_t used = 0;
        char *why = NULL;
        int rc = pf__frame_decoder_feed(d, buf + at, have - at, &used, &why);
        if (rc < 0)
            fail_msg("protocol error: %s", why ? why : "?");
        at += used;
        if (rc == 1) {
            assert_int_equal(pf__frame_decoder_take(d, out), 1);
            return 0;
        }
        have = at = 0;
        struct pollfd pfd = {fd, POLLIN, 0};
        long long left = until - now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) != 1)
            fail_msg("no frame from the worker within %d s", DEADLINE_MS / 1000);
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        assert_true(r >= 0);
        if (r == 0) {
            assert_int_equal(pf__frame_decoder_finish(d, &why), 0);
            return -1;
        }
        have = (size_t)r;
    }
}

static void send_frame(int fd, uint32_t kind, const char *json, const void *data, size_t len)
{
    uint8_t *f = NULL;
    size_t n = 0;
    assert_int_equal(pf__frame_encode(kind, json, strlen(json), data, len, &f, &n, NULL), 0);
    write_all(fd, f, n);
    free(f);
}

/* Start the worker, its fd 3 the child end of the socket pair. */
static int start_worker(int child_end, char **envp, int *pid)
{
    /* Put the child's end on our fd 3 (inherited: no close-on-exec) for the spawn. */
    int saved = fcntl(3, F_DUPFD_CLOEXEC, 10);
    bool had3 = saved >= 0;
    assert_true(dup2(child_end, 3) == 3);
    char *const argv[] = {"/usr/bin/python3", "-u", "-m", "pinfer.serve.worker", NULL};
    pf_spawn_options o;
    pf_spawn_options_init(&o);
    o.file = argv[0];
    o.argv = argv;
    o.envp = envp;
    o.stdio[0] = PF_SPAWN_DEVNULL;
    o.stdio[1] = PF_SPAWN_DEVNULL;
    o.stdio[2] = PF_SPAWN_INHERIT;
    char *why = NULL;
    int rc = pf_spawn(&o, pid, &why);
    if (rc < 0)
        print_error("pf_spawn: %s\n", why ? why : pf_strerror(rc));
    free(why);
    if (had3) {
        assert_true(dup3(saved, 3, O_CLOEXEC) == 3);
        close(saved);
    } else {
        close(3);
    }
    return rc;
}

static const char V2[] = "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[2],"
                         "\"data\":[1.5,-2.0]}]}"
                         "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1,3],"
                         "\"data\":[3.0,4.0,5.0]}]}";

static void check_output(const pf__frame *f, size_t i, const char *want)
{
    json_t *r = json_array_get(json_object_get(f->obj, "responses"), i);
    assert_non_null(r);
    char id[8];
    snprintf(id, sizeof id, "r%zu", i);
    assert_string_equal(json_string_value(json_object_get(r, "id")), id);
    if (json_integer_value(json_object_get(r, "status")) != 200)
        fail_msg("response %zu: %s", i, f->json);
    size_t off = (size_t)json_integer_value(json_object_get(r, "offset"));
    size_t len = (size_t)json_integer_value(json_object_get(r, "length"));
    assert_true(off <= f->data_len && len <= f->data_len - off);
    json_t *body = json_loadb((const char *)f->data + off, len, 0, NULL);
    assert_non_null(body);
    json_t *out = json_array_get(json_object_get(body, "outputs"), 0);
    char *data = json_dumps(json_object_get(out, "data"), JSON_COMPACT);
    assert_string_equal(data, want);
    free(data);
    json_decref(body);
}

static void test_real_worker(void **state)
{
    (void)state;
    if (run_quiet("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
        SKIP_BECAUSE("torch cannot be imported by /usr/bin/python3");
    if (run_quiet("make -s -C '" PF_SOURCE_DIR "' python >/dev/null") != 0)
        fail_msg("make python failed");
    char dir[] = "/tmp/pf-frame-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import sys, torch; "
             "torch.jit.script(torch.nn.Identity()).save(sys.argv[1])' %s/identity.pt",
             dir);
    assert_int_equal(run_quiet(cmd), 0);

    char pythonpath[4096 + 16], config[4096 + 128];
    snprintf(pythonpath, sizeof pythonpath, "PYTHONPATH=%s/python", PF_SOURCE_DIR);
    snprintf(config, sizeof config,
             "PINFER_WORKER_CONFIG={\"path\": \"%s/identity.pt\", \"model\": \"ident\", "
             "\"version\": \"2.0\", \"unpack_dir\": \"%s\"}",
             dir, dir);
    size_t nenv = 0;
    while (environ[nenv])
        nenv++;
    char **envp = calloc(nenv + 3, sizeof *envp);
    assert_non_null(envp);
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++)
        if (strncmp(environ[i], "PYTHONPATH=", 11) != 0 &&
            strncmp(environ[i], "PINFER_WORKER_CONFIG=", 21) != 0)
            envp[k++] = environ[i];
    envp[k++] = pythonpath;
    envp[k++] = config;

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int pid = -1;
    assert_int_equal(start_worker(sv[1], envp, &pid), 0);
    close(sv[1]);
    free(envp);
    int fd = sv[0];
    assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);

    pf__frame_decoder d;
    pf__frame_decoder_init(&d, PF__FRAME_FROM_WORKER);
    pf__frame f;
    assert_int_equal(read_frame(fd, &d, &f), 0);
    assert_int_equal(f.kind, PF__FRAME_READY);
    if (json_object_get(f.obj, "error"))
        fail_msg("READY: %s", f.json);
    assert_int_equal(json_integer_value(json_object_get(f.obj, "pid")), pid);
    assert_string_equal(json_string_value(json_object_get(f.obj, "model")), "ident");
    assert_string_equal(json_string_value(json_object_get(f.obj, "platform")),
                        "pytorch_torchscript");
    pf__frame_release(&f);

    size_t first = strchr(V2 + 1, '}') - V2; /* the end of the first body */
    while (V2[first + 1] != '{')
        first++;
    first++;
    char batch[512];
    snprintf(batch, sizeof batch,
             "{\"batch\": 7, \"requests\": ["
             "{\"id\": \"r0\", \"api\": \"v2\", \"content_type\": \"application/json\", "
             "\"offset\": 0, \"length\": %zu},"
             "{\"id\": \"r1\", \"api\": \"v2\", \"offset\": %zu, \"length\": %zu}]}",
             first, first, sizeof V2 - 1 - first);
    send_frame(fd, PF__FRAME_BATCH, batch, V2, sizeof V2 - 1);
    assert_int_equal(read_frame(fd, &d, &f), 0);
    assert_int_equal(f.kind, PF__FRAME_RESULT);
    assert_int_equal(json_integer_value(json_object_get(f.obj, "batch")), 7);
    assert_int_equal(json_array_size(json_object_get(f.obj, "responses")), 2);
    check_output(&f, 0, "[1.5,-2.0]");
    check_output(&f, 1, "[3.0,4.0,5.0]");
    pf__frame_release(&f);

    send_frame(fd, PF__FRAME_STOP, "{}", NULL, 0);
    assert_int_equal(read_frame(fd, &d, &f), -1); /* the end, between frames */
    pf__frame_decoder_free(&d);
    close(fd);
    int status = 0;
    long long until = now_ms() + DEADLINE_MS;
    int w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < until)
        usleep(10000);
    if (w != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("the worker did not exit after STOP");
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(run_quiet(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_body_errors),
        cmocka_unit_test(test_end_inside_a_header),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_split_at_every_byte),
        cmocka_unit_test(test_several_frames_in_one_feed),
        cmocka_unit_test(test_real_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
