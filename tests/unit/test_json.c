/*
 * test_json.c - the library's JSON writer (one for every document) and
 * pf_printable(): what user text becomes in a JSON string and in a message.
 */
#include "pf_test.h"

#include "base/json.h"
#include "base/util.h"

#include <stdlib.h>

static char *one_string(const char *s)
{
    pf__json w;
    pf__json_init(&w);
    pf__json_string(&w, s);
    char *out = NULL;
    assert_int_equal(pf__json_finish(&w, &out), 0);
    return out;
}

static void test_strings(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"plain", "\"plain\"\n"},
        {"q\"b\\s", "\"q\\\"b\\\\s\"\n"},
        {"tab\tnl\ncr\r", "\"tab\\tnl\\ncr\\r\"\n"},
        {"\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"\n"},
        /* UTF-8 passes through */
        {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"\n"},
        /* what is not UTF-8 becomes U+FFFD, a byte at a time */
        {"a\xff"
         "b",
         "\"a\\ufffdb\"\n"},
        {"\xc3", "\"\\ufffd\"\n"},                                  /* truncated */
        {"\xc0\xaf", "\"\\ufffd\\ufffd\"\n"},                       /* overlong */
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"\n"},            /* a surrogate */
        {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"\n"}, /* above U+10FFFF */
        {"\x80", "\"\\ufffd\"\n"},                                  /* a stray continuation byte */
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        char *got = one_string(rows[i].in);
        if (strcmp(got, rows[i].out) != 0)
            fail_msg("row %zu: got %s, want %s", i, got, rows[i].out);
        free(got);
    }
    char *null = one_string(NULL);
    assert_string_equal(null, "null\n");
    free(null);
}

static void test_document(void **state)
{
    (void)state;
    pf__json w;
    pf__json_init(&w);
    pf__json_begin_object(&w);
    pf__json_member_int(&w, "n", -3);
    pf__json_key(&w, "list");
    int v[] = {1, 2};
    pf__json_int_array(&w, v, 2);
    pf__json_key(&w, "empty");
    pf__json_begin_array(&w);
    pf__json_end_array(&w);
    pf__json_member_string(&w, "s", "x");
    pf__json_key(&w, "b");
    pf__json_bool(&w, false);
    pf__json_key(&w, "d");
    pf__json_double(&w, 0.5);
    pf__json_end_object(&w);
    char *out = NULL;
    assert_int_equal(pf__json_finish(&w, &out), 0);
    assert_string_equal(out,
                        "{\"n\": -3, \"list\": [1, 2], \"empty\": [], \"s\": \"x\", \"b\": false, "
                        "\"d\": 0.5}\n");
    free(out);
    char *err = NULL;
    assert_int_equal(pf_error_to_json("bad \"x\"\n", &err), 0);
    assert_string_equal(err, "{\"error\": \"bad \\\"x\\\"\\n\"}\n");
    free(err);
}

static void test_printable(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"plain text", "plain text"},
        {"two\nlines", "two\\nlines"},
        {"tab\there\r", "tab\\there\\r"},
        {"esc\x1b[31mred", "esc\\x1b[31mred"},
        {"back\\slash", "back\\slash"}, /* as it is: shell quoting keeps its meaning */
        {"\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        char *got = pf_printable(rows[i].in);
        assert_non_null(got);
        if (strcmp(got, rows[i].out) != 0)
            fail_msg("row %zu: got '%s', want '%s'", i, got, rows[i].out);
        free(got);
    }
}

/* Numbers: short where they can be, and always read back as the same double. */
static void test_numbers(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *text;
    } rows[] = {
        {400.0, "400.0"}, {2.5, "2.5"}, {0.1, "0.1"}, {1e20, "1e+20"}, {0, "0.0"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        char text[PF__DOUBLE_TEXT];
        pf__format_double(rows[i].v, text);
        if (strcmp(text, rows[i].text) != 0)
            fail_msg("row %zu: got '%s', want '%s'", i, text, rows[i].text);
        assert_true(strtod(text, NULL) == rows[i].v);
    }
    /* Round trips over many magnitudes: between 1e-4 and 0.1, 17 decimals in fixed
       notation are 13 to 16 significant digits, not always enough. */
    double v = 1.2345678901234567e-9;
    for (int i = 0; i < 400; i++, v *= 1.37) {
        char text[PF__DOUBLE_TEXT];
        pf__format_double(v, text);
        if (strtod(text, NULL) != v)
            fail_msg("%.17g written as '%s'", v, text);
    }
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_document),
        cmocka_unit_test(test_printable),
        cmocka_unit_test(test_numbers),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
