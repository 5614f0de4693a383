/*
 * test_serve_multipart.c - multipart/form-data bodies (src/serve/multipart.c).
 *
 * Tables: Content-Type values and the boundary they give (or the exact
 * error); bodies and the parts read from them, each rendered as one line
 * per part ("name|filename|content type|body"), or the exact error.  Every
 * part must point into the body it came from (zero-copy).
 */
#include "pf_test.h"
#include "base/util.h"
#include "serve/multipart.h"

typedef struct boundary_case {
    const char *content_type;
    const char *boundary; /* NULL: an error */
    const char *error;
} boundary_case;

static const boundary_case BOUNDARY_CASES[] = {
    {"multipart/form-data; boundary=abc", "abc", NULL},
    {"Multipart/Form-Data;boundary=abc", "abc", NULL},
    {"multipart/form-data ; charset=utf-8; BOUNDARY=\"a b:c\" ", "a b:c", NULL},
    {"multipart/form-data; boundary=\"----WebKitFormBoundary7MA4YWxkTrZu0gW\"",
     "----WebKitFormBoundary7MA4YWxkTrZu0gW", NULL},
    {"multipart/form-data; boundary=----------------------------4ebf00fbcf09",
     "----------------------------4ebf00fbcf09", NULL},
    {"multipart/form-data; boundary=123456789012345678901234567890123456789012345678901234567890"
     "1234567890",
     "1234567890123456789012345678901234567890123456789012345678901234567890", NULL},
    {"multipart/form-data; boundary=123456789012345678901234567890123456789012345678901234567890"
     "12345678901",
     NULL, "Content-Type: a boundary of 71 characters (1 to 70)"},
    {"multipart/form-data; boundary=", NULL, "Content-Type: a boundary of 0 characters (1 to 70)"},
    {"multipart/form-data; boundary=\"\"", NULL,
     "Content-Type: a boundary of 0 characters (1 to 70)"},
    {"multipart/form-data", NULL, "Content-Type: no boundary"},
    {"multipart/form-data; charset=utf-8", NULL, "Content-Type: no boundary"},
    {"multipart/mixed; boundary=abc", NULL,
     "the content type \"multipart/mixed\" is not multipart/form-data"},
    {"application/json", NULL, "the content type \"application/json\" is not multipart/form-data"},
    {"multipart/form-data; boundary=a; boundary=b", NULL,
     "Content-Type: the boundary is given twice"},
    {"multipart/form-data; boundary=\"abc", NULL, "Content-Type: no closing quote"},
    {"multipart/form-data; boundary=\"a\\\"b\"", NULL,
     "Content-Type: a backslash in a quoted boundary"},
    {"multipart/form-data; boundary=\"a b \"", NULL,
     "Content-Type: the boundary ends with a space"},
    {"multipart/form-data; boundary=\"a@b\"", NULL,
     "Content-Type: the boundary holds a character not allowed (0x40)"},
    {"multipart/form-data; boundary=a b", NULL, "Content-Type: a ';' expected before \"b\""},
    {"multipart/form-data; boundary", NULL, "Content-Type: a parameter that is not name=value"},
};

static void test_boundary(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BOUNDARY_CASES / sizeof BOUNDARY_CASES[0]; i++) {
        const boundary_case *c = &BOUNDARY_CASES[i];
        const char *b = NULL;
        size_t n = 0;
        char *why = NULL;
        int rc = pf__multipart_boundary(c->content_type, strlen(c->content_type), &b, &n, &why);
        if (c->boundary) {
            if (rc != 0 || n != strlen(c->boundary) || memcmp(b, c->boundary, n) != 0)
                fail_msg("case %zu: rc %d, %s", i, rc, why ? why : "");
            assert_true(b >= c->content_type && b + n <= c->content_type + strlen(c->content_type));
        } else if (rc != -EINVAL || !why || strcmp(why, c->error) != 0 || b) {
            fail_msg("case %zu: rc %d, \"%s\", wanted \"%s\"", i, rc, why ? why : "(null)",
                     c->error);
        }
        free(why);
    }
}

typedef struct body_case {
    const char *body;
    const char *parts; /* "name|filename|type|body\n" per part; NULL: an error */
    const char *error;
} body_case;

#define CD "Content-Disposition: form-data; name="

static const body_case BODY_CASES[] = {
    /* one part, with and without preamble and epilogue */
    {"--XB\r\n" CD "\"data\"\r\n\r\nhello\r\n--XB--", "data|-|-|hello\n", NULL},
    {"--XB\r\n" CD "\"data\"\r\n\r\nhello\r\n--XB--\r\n", "data|-|-|hello\n", NULL},
    {"preamble\r\nmore\r\n--XB\r\n" CD "data\r\n\r\nhi\r\n--XB--\r\nepilogue --XB junk",
     "data|-|-|hi\n", NULL},
    /* several parts, filenames, content types, binary and CRLFs in bodies */
    {"--XB\r\n" CD "\"a\"; filename=\"kitten.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8"
     "\r\n\r\n--XB\r\ncontent-disposition: FORM-DATA; filename=\"x.bin\"; NAME=\"b\"\r\n"
     "X-Other: 1\r\n\r\n--X\r\n-XB\r\n--XB--",
     "a|kitten.jpg|image/jpeg|\xff\xd8\r\n\nb|x.bin|-|--X\r\n-XB\n", NULL},
    /* empty bodies, blanks after a boundary, a quoted name with an escape kept */
    {"--XB  \t\r\n" CD "\"e\"\r\n\r\n\r\n--XB\r\n" CD "\"q\\\"x\"\r\nContent-Type:  text/plain ;"
     " charset=utf-8 \r\n\r\nv\r\n--XB--",
     "e|-|-|\nq\\\"x|-|text/plain ; charset=utf-8|v\n", NULL},
    /* errors */
    {"", NULL, "no boundary \"--XB\" in the body"},
    {"hello", NULL, "no boundary \"--XB\" in the body"},
    /* a boundary not at the start of a line is not one */
    {"x--XB\r\n" CD "a\r\n\r\nv\r\n--XB--", NULL, "no part before the final boundary"},
    {"--XB", NULL, "the body ends without its final boundary"},
    {"--XB\r\n" CD "a\r\n\r\nv", NULL, "the body ends without its final boundary"},
    {"--XB\r\n" CD "a\r\n\r\nv\r\n--XB", NULL, "the body ends without its final boundary"},
    {"--XB\r\n" CD "a\r\n\r\nv\r\n--XB-", NULL, "a boundary line not ended by CRLF"},
    {"--XB\n" CD "a\n\nv\n--XB--", NULL, "a boundary line not ended by CRLF"},
    {"--XBY\r\n" CD "a\r\n\r\nv\r\n--XB--", NULL, "a boundary line not ended by CRLF"},
    {"--XB--", NULL, "no part before the final boundary"},
    /* the boundary inside a body, as a longer line: RFC 2046 forbids it */
    {"--XB\r\n" CD "a\r\n\r\nv\r\n--XBX\r\n--XB--", NULL, "a boundary line not ended by CRLF"},
    {"--XB\r\n" CD "a\r\nv\r\n--XB--", NULL, "part 1: headers not ended by a blank line"},
    {"--XB\r\n\r\nv\r\n--XB--", NULL, "part 1: no Content-Disposition"},
    {"--XB\r\nContent-Type: text/plain\r\n\r\nv\r\n--XB--", NULL, "part 1: no Content-Disposition"},
    {"--XB\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--XB--", NULL,
     "part 1: Content-Disposition is not form-data"},
    {"--XB\r\nContent-Disposition: form-data; filename=a\r\n\r\nv\r\n--XB--", NULL,
     "part 1: Content-Disposition: no name"},
    {"--XB\r\n" CD "a; name=b\r\n\r\nv\r\n--XB--", NULL,
     "part 1: Content-Disposition: name given twice"},
    {"--XB\r\n" CD "\"a\r\n\r\nv\r\n--XB--", NULL, "part 1: Content-Disposition: no closing quote"},
    {"--XB\r\n" CD "a\r\n" CD "a\r\n\r\nv\r\n--XB--", NULL,
     "part 1: Content-Disposition given twice"},
    {"--XB\r\n" CD "a\r\n\r\nv\r\n--XB\r\n" CD "b\r\n folded\r\n\r\nv\r\n--XB--", NULL,
     "part 2: a header line that is not Name: value"},
    {"--XB\r\n" CD "a\r\nNo colon\r\n\r\nv\r\n--XB--", NULL,
     "part 1: a header line that is not Name: value"},
    {"--XB\r\n" CD "a\r\nX: a\nb\r\n\r\nv\r\n--XB--", NULL,
     "part 1: a header holds a bare CR, LF or NUL"},
    {"--XB\r\n" CD "a\r\nContent-Type: a\r\nContent-Type: b\r\n\r\nv\r\n--XB--", NULL,
     "part 1: Content-Type given twice"},
};

static void put(pf__buf *b, const char *s, size_t n)
{
    if (s)
        pf__buf_put(b, s, n);
    else
        pf__buf_puts(b, "-");
}

static void test_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof BODY_CASES / sizeof BODY_CASES[0]; i++) {
        const body_case *c = &BODY_CASES[i];
        size_t len = strlen(c->body);
        pf__multipart_part *parts = NULL;
        size_t n = 0;
        char *why = NULL;
        int rc = pf__multipart_parse("XB", 2, c->body, len, &parts, &n, &why);
        if (!c->parts) {
            if (rc != -EINVAL || !why || strcmp(why, c->error) != 0 || parts || n)
                fail_msg("case %zu: rc %d, \"%s\", wanted \"%s\"", i, rc, why ? why : "(null)",
                         c->error);
            free(why);
            continue;
        }
        if (rc != 0)
            fail_msg("case %zu: rc %d, %s", i, rc, why ? why : "");
        pf__buf b = {0};
        for (size_t k = 0; k < n; k++) {
            const pf__multipart_part *p = &parts[k];
            const char *fields[] = {p->name, p->filename, p->content_type, (const char *)p->body};
            size_t lens[] = {p->name_len, p->filename_len, p->content_type_len, p->body_len};
            for (size_t f = 0; f < 4; f++) {
                if (fields[f])
                    assert_true(fields[f] >= c->body && fields[f] + lens[f] <= c->body + len);
                put(&b, f == 3 ? (const char *)p->body : fields[f], lens[f]);
                pf__buf_puts(&b, f == 3 ? "\n" : "|");
            }
        }
        char *got = NULL;
        assert_int_equal(pf__buf_take(&b, &got), 0);
        if (strcmp(got, c->parts) != 0)
            fail_msg("case %zu:\n%s\nwanted\n%s", i, got, c->parts);
        free(got);
        free(parts);
    }
}

/* The boundary of a Content-Type, then the body it splits. */
static void test_boundary_then_body(void **state)
{
    (void)state;
    const char *ct = "multipart/form-data; boundary=\"b 1\"";
    const char *body = "--b 1\r\n" CD "data; filename=\"f\"\r\n\r\n{\"x\": 1}\r\n--b 1--\r\n";
    const char *b;
    size_t bl;
    assert_int_equal(pf__multipart_boundary(ct, strlen(ct), &b, &bl, NULL), 0);
    pf__multipart_part *parts;
    size_t n;
    assert_int_equal(pf__multipart_parse(b, bl, body, strlen(body), &parts, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_int_equal(parts[0].body_len, 8);
    assert_memory_equal(parts[0].body, "{\"x\": 1}", 8);
    free(parts);
    char *why = NULL;
    assert_int_equal(pf__multipart_parse("", 0, body, strlen(body), &parts, &n, &why), -EINVAL);
    assert_string_equal(why, "a boundary of 0 characters (1 to 70)");
    free(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundary),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_boundary_then_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
