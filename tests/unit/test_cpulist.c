/* test_cpulist.c - parsing and formatting CPU lists. */
#include "pf_test.h"

typedef struct list_case {
    const char *text;
    const char *expect; /* formatted result, or "!text" for an error holding text */
} list_case;

static const list_case CASES[] = {
    {"0", "0"},
    {"0-3,8, 10-11", "0-3,8,10-11"},
    {" 0-3 , 8 ,10-11 ", "0-3,8,10-11"},
    {"0-3,", "0-3"},
    {"0-3, ", "0-3"},
    {"8,0-3,2,2,3", "0-3,8"},
    {"3,2,1,0", "0-3"},
    {"0 - 3", "0-3"},
    {"5-5", "5"},
    {"1,3,5", "1,3,5"},
    {"0-1,1-2,2-3", "0-3"},
    {"1023-1025", "1023-1025"},
    {"4194303", "4194303"},
    {"\t7\n", "7"},
    {"", "!empty"},
    {"  ", "!empty"},
    {",", "!empty item"},
    {"0,,1", "!empty item"},
    {",0", "!empty item"},
    {"3-0", "!runs backwards"},
    {"0-", "!not an id"},
    {"-3", "!not an id"},
    {"a", "!not an id"},
    {"1.5", "!not an id"},
    {"0x1", "!not an id"},
    {"+1", "!not an id"},
    {"1-2-3", "!not an id"},
    {"4194304", "!out of range"},
    {"99999999999999999999", "!out of range"},
    {"0-3,a", "!'a'"},
};

static void test_parse_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        int *ids = NULL;
        size_t n = 0;
        char *why = NULL, *text = NULL;
        int rc = pf_cpulist_parse(CASES[i].text, &ids, &n, &why);
        const char *want = CASES[i].expect;
        if (want[0] == '!') {
            if (rc != -EINVAL || !why || !strstr(why, want + 1)) {
                print_error("'%s': expected error '%s', got %d '%s'\n", CASES[i].text, want + 1, rc,
                            why ? why : "");
                failures++;
            }
        } else if (rc != 0 || pf_cpulist_format(ids, n, &text) != 0 || strcmp(text, want)) {
            print_error("'%s': expected %s, got %d '%s'\n", CASES[i].text, want, rc,
                        text ? text : (why ? why : ""));
            failures++;
        }
        free(ids);
        free(why);
        free(text);
    }
    assert_int_equal(failures, 0);
}

/* No 1024-CPU limit: a large list parses whole. */
static void test_large(void **state)
{
    (void)state;
    int *ids;
    size_t n;
    assert_int_equal(pf_cpulist_parse("0-8191,100000", &ids, &n, NULL), 0);
    assert_int_equal(n, 8193);
    assert_int_equal(ids[8191], 8191);
    assert_int_equal(ids[8192], 100000);
    char *text;
    assert_int_equal(pf_cpulist_format(ids, n, &text), 0);
    assert_string_equal(text, "0-8191,100000");
    free(text);
    free(ids);
    /* A range repeated many times costs the size of the result. */
    char big[20000] = "";
    for (int i = 0; i < 1000; i++)
        memcpy(big + i * 10, "0-4194303,", 11);
    assert_int_equal(pf_cpulist_parse(big, &ids, &n, NULL), 0);
    assert_int_equal(n, 4194304);
    free(ids);
}

static void test_format(void **state)
{
    (void)state;
    char *text;
    int unsorted[] = {11, 10, 3, 2, 1, 0, 8, 8};
    assert_int_equal(pf_cpulist_format(unsorted, 8, &text), 0);
    assert_string_equal(text, "0-3,8,10-11");
    free(text);
    assert_int_equal(pf_cpulist_format(NULL, 0, &text), 0);
    assert_string_equal(text, "");
    free(text);
    int negative[] = {1, -1};
    assert_int_equal(pf_cpulist_format(negative, 2, &text), -EINVAL);
    assert_int_equal(pf_cpulist_format(NULL, 1, &text), -EINVAL);
    int *ids;
    size_t n;
    assert_int_equal(pf_cpulist_parse(NULL, &ids, &n, NULL), -EINVAL);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(pf_strerror(0), "success");
    assert_string_equal(pf_strerror(-EINVAL), "invalid argument");
    assert_string_equal(pf_strerror(-ENOMEM), "out of memory");
    assert_non_null(pf_strerror(-12345));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
