/*
 * test_lscpu.c - the lscpu sources: both formats, the rules of docs/topology.md
 * (lscpu), and every malformed input (an error naming file and line).
 */
#include "pf_test.h"
#include "topology/topology.h"

typedef struct lscpu_case {
    const char *name;
    const char *text;
    /* "cpus|cores|sockets|nodes|siblings|ecores" summary, or "!message part" */
    const char *expect;
} lscpu_case;

static const lscpu_case CASES[] = {
    {"csv with header", "# CPU,Core,Socket,Node\n0,0,0,0\n1,1,0,0\n2,0,0,0\n3,1,0,0\n",
     "0-3|2|1|0|2-3|-"},
    {"csv without header", "0,0,0,0\n1,0,0,0\n", "0-1|1|1|0|1|-"},
    {"csv, node absent", "# CPU,Core,Socket\n0,0,0\n1,1,1\n", "0-1|2|2|0-1|-|-"},
    {"csv, node absent, no header", "0,0,0\n1,1,1\n", "0-1|2|2|0-1|-|-"},
    {"csv, node empty", "# CPU,Core,Socket,Node\n0,0,0,\n1,1,1,\n", "0-1|2|2|0-1|-|-"},
    {"csv, other column order", "# Socket,Node,CPU,Core\n0,0,1,0\n0,0,0,0\n", "0-1|1|1|0|1|-"},
    {"csv, lscpu -p default columns",
     "# CPU,Core,Socket,Node,,L1d,L1i,L2,L3\n0,0,0,0,,0,0,0,0\n1,1,0,0,,1,1,1,0\n",
     "0-1|2|1|0|-|-"},
    {"csv, large node ids read whole", "0,0,0,12\n1,1,0,12\n2,2,1,130\n", "0-2|3|2|12,130|-|-"},
    {"csv, offline rows", "# CPU,Core,Socket,Node\n0,0,0,0\n1,,,\n2,2,0,0\n", "0,2|2|1|0|-|-"},
    {"csv, Online column", "# CPU,Core,Socket,Node,Online\n0,0,0,0,Y\n1,1,0,0,N\n", "0|1|1|0|-|-"},
    {"csv, CRLF and blank lines", "# CPU,Core,Socket,Node\r\n\r\n0,0,0,0\r\n1,1,0,0\r\n",
     "0-1|2|1|0|-|-"},
    {"csv, global core ids reused across sockets",
     "# CPU,Core,Socket,Node\n0,0,0,0\n1,0,1,1\n2,0,0,0\n3,0,1,1\n", "0-3|2|2|0-1|2-3|-"},
    {"csv, siblings next to each other", "0,0,0,0\n1,0,0,0\n2,1,0,0\n3,1,0,0\n", "0-3|2|1|0|1,3|-"},
    {"table",
     "CPU NODE SOCKET CORE L1d:L1i:L2:L3 ONLINE MAXMHZ MINMHZ\n"
     "  0    0      0    0 0:0:0:0          yes 3400.0000 800.0000\n"
     "  1    0      0    1 1:1:1:0          yes 3400.0000 800.0000\n",
     "0-1|2|1|0|-|-"},
    {"table, offline row", "CPU NODE SOCKET CORE ONLINE\n0 0 0 0 yes\n1 - - - no\n2 0 0 2 yes\n",
     "0,2|2|1|0|-|-"},
    {"table, no NODE column", "CPU SOCKET CORE\n0 0 0\n1 1 1\n", "0-1|2|2|0-1|-|-"},
    {"table, lower case", "cpu socket core node\n0 0 0 0\n", "0|1|1|0|-|-"},
    {"table, E-cores from MAXMHZ",
     "CPU NODE SOCKET CORE MAXMHZ\n0 0 0 0 5000\n1 0 0 0 5000\n2 0 0 1 5000\n3 0 0 1 5000\n"
     "4 0 0 2 3800\n5 0 0 3 3800\n",
     "0-5|4|1|0|1,3|4-5"},
    {"table, three tiers: all below the highest step",
     "CPU SOCKET CORE MAXMHZ\n0 0 0 5000\n1 0 1 3800\n2 0 2 2500\n", "0-2|3|1|0|-|1-2"},
    {"table, small steps are not E-cores",
     "CPU SOCKET CORE MAXMHZ\n0 0 0 5800\n1 0 1 5400\n2 0 2 5000\n", "0-2|3|1|0|-|-"},
    {"table, MAXMHZ unknown", "CPU SOCKET CORE MAXMHZ\n0 0 0 -\n1 0 1 -\n", "0-1|2|1|0|-|-"},
    /* malformed input: an error naming the input and the line */
    {"empty", "", "!no CPU rows"},
    {"only comments", "# nothing\n#\n", "!no CPU rows"},
    {"not lscpu", "hello world\n", "!t:1: not lscpu output"},
    {"bad cpu", "0,0,0,0\nx,1,0,0\n", "!t:2: CPU 'x'"},
    {"negative core", "0,-1,0,0\n", "!t:1: core '-1'"},
    {"bad node", "0,0,0,n\n", "!t:1: node 'n'"},
    {"fraction", "0,1.5,0,0\n", "!t:1: core '1.5'"},
    {"huge id", "99999999999,0,0,0\n", "!t:1: CPU '99999999999' is not in range"},
    {"too many fields", "# CPU,Core,Socket,Node\n0,0,0,0,7\n",
     "!t:2: 5 fields where the header names 4"},
    {"too few fields", "# CPU,Core,Socket,Node\n0,0\n", "!t:2: 2 fields"},
    {"duplicate cpu", "0,0,0,0\n0,1,0,0\n", "!t:2: CPU 0 is listed twice"},
    {"core in two nodes", "0,0,0,0\n1,0,0,1\n", "!core 0 of socket 0 is in node 0 and in node 1"},
    {"header without CORE", "# CPU,Socket,Node\n0,0,0\n", "!t:1: the header has no Core column"},
    {"table without SOCKET", "CPU CORE\n0 0\n", "!t:1: the header has no Socket column"},
    {"table row too long", "CPU SOCKET CORE\n0 0 0 9\n", "!t:2: 4 fields"},
    {"bad MAXMHZ", "CPU SOCKET CORE MAXMHZ\n0 0 0 fast\n", "!t:2: MAXMHZ 'fast'"},
    {"bad cache", "CPU SOCKET CORE L1d:L1i:L2:L3\n0 0 0 0:0\n", "!t:2: cache field '0:0'"},
    {"empty CPU", "# CPU,Core,Socket,Node\n,0,0,0\n", "!t:2: the CPU field is empty"},
    {"all offline", "# CPU,Core,Socket,Node\n0,,,\n", "!no online CPU"},
    /* plain lscpu (the summary): say which two commands give what is read */
    {"plain lscpu", "Architecture:        x86_64\nCPU op-mode(s):      32-bit, 64-bit\n",
     "!t:1: this is plain lscpu's summary, which does not say which core each CPU is on: give "
     "the output of `lscpu --parse=CPU,Core,Socket,Node` or `lscpu -e`"},
    {"plain lscpu in German, after a comment", "# lscpu\nArchitektur:  x86_64\n",
     "!t:2: this is plain lscpu's summary"},
    {"no header names the commands", "hello world\n",
     "!(as the output of `lscpu --parse=CPU,Core,Socket,Node` or `lscpu -e` does)"},
    /* the header: every column it names once, CPU, Core and Socket among them */
    {"csv header without CPU", "# Core,Socket,Node\n0,0,0\n1,0,0\n",
     "!t:1: the header has no CPU column: it must name CPU, Core and Socket"},
    {"csv header without CPU after lscpu's prose",
     "# The following is the parsable format, which can be fed to other\n"
     "# programs. Each different item in every column has an unique ID\n"
     "# starting from zero.\n# Core,Socket,Node\n0,0,0\n",
     "!t:4: the header has no CPU column"},
    {"csv header without Core and Socket", "# CPU,Node\n0,0\n",
     "!t:1: the header has no Core and Socket columns"},
    {"csv header with CPU twice", "# CPU,CPU,Core,Socket\n0,1,0,0\n",
     "!t:1: the header names the CPU column twice"},
    {"csv header with Core twice, in other cases", "# CPU,Core,Socket,core\n0,0,0,1\n",
     "!t:1: the header names the core column twice"},
    {"csv header with an unused column twice", "# CPU,Core,Socket,Book,Book\n0,0,0,0,0\n",
     "!t:1: the header names the Book column twice"},
    {"table header with CORE twice", "CPU CORE SOCKET CORE\n0 0 0 1\n",
     "!t:1: the header names the CORE column twice"},
    {"lscpu -p as printed, prose and all",
     "# The following is the parsable format, which can be fed to other\n"
     "# programs. Each different item in every column has an unique ID\n"
     "# starting from zero.\n# CPU,Core,Socket,Node,,L1d,L1i,L2,L3\n0,0,0,0,,0,0,0,0\n"
     "1,0,0,0,,0,0,0,0\n",
     "0-1|1|1|0|1|-"},
    {"a comment that names no column is not a header", "# generated by hand\n# v2\n0,0,0,0\n",
     "0|1|1|0|-|-"},
    /* a UTF-8 byte order mark, as editors on Windows write it */
    {"csv after a byte order mark", "\xef\xbb\xbf# CPU,Core,Socket,Node\n0,0,0,0\n1,1,0,0\n",
     "0-1|2|1|0|-|-"},
    {"csv without header after a byte order mark",
     "\xef\xbb\xbf"
     "0,0,0,0\n1,0,0,0\n",
     "0-1|1|1|0|1|-"},
    {"table after a byte order mark",
     "\xef\xbb\xbf"
     "CPU SOCKET CORE\n0 0 0\n",
     "0|1|1|0|-|-"},
    {"a byte order mark only at the start",
     "0,0,0,0\n\xef\xbb\xbf"
     "1,0,0,0\n",
     "!t:2: CPU '"},
    {"no rows names the commands", "# nothing\n",
     "!no CPU rows (expected the output of `lscpu --parse=CPU,Core,Socket,Node` or `lscpu -e`)"},
};

static char *list_of(const pf_topology *t, int what)
{
    size_t n;
    const pf_cpu_info *c = pf_topology_cpus(t, &n);
    int *ids = malloc((n + 1) * sizeof *ids);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool take = what == 0 || (what == 1 && c[i].smt_rank > 0) || (what == 2 && c[i].efficiency);
        if (take)
            ids[k++] = c[i].cpu;
    }
    char *text;
    if (what == 3) {
        size_t nn;
        const int *nodes = pf_topology_nodes(t, &nn);
        pf_cpulist_format(nodes, nn, &text);
    } else {
        pf_cpulist_format(ids, k, &text);
    }
    free(ids);
    if (!*text) {
        free(text);
        text = strdup("-");
    }
    return text;
}

static char *summary(const pf_topology *t)
{
    char *cpus = list_of(t, 0), *sib = list_of(t, 1), *e = list_of(t, 2), *nodes = list_of(t, 3);
    char buf[512];
    snprintf(buf, sizeof buf, "%s|%zu|%zu|%s|%s|%s", cpus, pf_topology_ncores(t),
             pf_topology_nsockets(t), nodes, sib, e);
    free(cpus);
    free(sib);
    free(e);
    free(nodes);
    return strdup(buf);
}

static void test_lscpu_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        const lscpu_case *c = &CASES[i];
        pf_topology *t = NULL;
        char *why = NULL;
        int rc = pf__topology_parse_lscpu("t", c->text, strlen(c->text), &t, &why);
        if (c->expect[0] == '!') {
            if (rc != -EINVAL || !why || !strstr(why, c->expect + 1)) {
                print_error("%s: expected error '%s', got %d '%s'\n", c->name, c->expect + 1, rc,
                            why ? why : "");
                failures++;
            }
        } else if (rc != 0) {
            print_error("%s: expected %s, got error %s\n", c->name, c->expect, why ? why : "");
            failures++;
        } else {
            char *got = summary(t);
            if (strcmp(got, c->expect) != 0) {
                print_error("%s: expected %s, got %s\n", c->name, c->expect, got);
                failures++;
            }
            free(got);
        }
        free(why);
        pf_topology_free(t);
    }
    assert_int_equal(failures, 0);
}

/* The first thread of each core is its lowest id; siblings follow in order. */
static void test_smt_ranks(void **state)
{
    (void)state;
    const char *text = "# CPU,Core,Socket,Node\n5,0,0,0\n1,0,0,0\n9,0,0,0\n2,1,0,0\n";
    pf_topology *t;
    assert_int_equal(pf__topology_parse_lscpu("t", text, strlen(text), &t, NULL), 0);
    assert_int_equal(pf_topology_cpu(t, 1)->smt_rank, 0);
    assert_int_equal(pf_topology_cpu(t, 5)->smt_rank, 1);
    assert_int_equal(pf_topology_cpu(t, 9)->smt_rank, 2);
    assert_int_equal(pf_topology_cpu(t, 9)->core_first, 1);
    assert_int_equal(pf_topology_cpu(t, 2)->core_first, 2);
    assert_null(pf_topology_cpu(t, 3));
    assert_true(pf_topology_cpu(t, 2)->allowed);
    assert_false(pf_topology_is_live(t));
    assert_string_equal(pf_topology_source(t), "t");
    pf_topology_free(t);
}

/* Last-level cache groups are named by their lowest CPU. */
static void test_llc_groups(void **state)
{
    (void)state;
    const char *text = "CPU SOCKET CORE L1d:L1i:L2:L3\n0 0 0 0:0:0:7\n1 0 1 1:1:1:3\n"
                       "2 0 2 2:2:2:7\n3 0 3 3:3:3:3\n";
    pf_topology *t;
    assert_int_equal(pf__topology_parse_lscpu("t", text, strlen(text), &t, NULL), 0);
    assert_int_equal(pf_topology_cpu(t, 0)->llc, 0);
    assert_int_equal(pf_topology_cpu(t, 2)->llc, 0);
    assert_int_equal(pf_topology_cpu(t, 1)->llc, 1);
    assert_int_equal(pf_topology_cpu(t, 3)->llc, 1);
    pf_topology_free(t);
}

/* Files: read whole, told apart by content, errors name the file. */
static void test_files(void **state)
{
    (void)state;
    pf_topology *t = load_fixture("hybrid_8p8e.lscpu-e");
    size_t n;
    pf_topology_cpus(t, &n);
    assert_int_equal(n, 24); /* the offline CPU 24 is skipped */
    assert_true(pf_topology_cpu(t, 16)->efficiency);
    assert_false(pf_topology_cpu(t, 15)->efficiency);
    pf_topology_free(t);

    char *why = NULL;
    assert_int_equal(pf_topology_load(fixture("no-such-file"), &t, &why), -ENOENT);
    assert_non_null(strstr(why, "no-such-file"));
    free(why);
    why = NULL;
    assert_int_equal(pf_topology_load(fixture("bad_cpu.lscpu"), &t, &why), -EINVAL);
    assert_non_null(strstr(why, "bad_cpu.lscpu:4:"));
    free(why);
    why = NULL;
    assert_int_equal(pf_topology_load(PF_SOURCE_DIR "/tests", &t, &why) < 0, 1);
    free(why);
    assert_int_equal(pf_topology_load("", &t, NULL), -EINVAL);
    assert_int_equal(pf_topology_load(NULL, NULL, NULL), -EINVAL);
    pf_topology_free(NULL);
}

/* Bytes that are not text, inside a line, are an error, not a crash. */
static void test_binary(void **state)
{
    (void)state;
    const char text[] = "# CPU,Core,Socket,Node\n0,0\0,0,0\n";
    pf_topology *t = NULL;
    char *why = NULL;
    assert_int_equal(pf__topology_parse_lscpu("t", text, sizeof text - 1, &t, &why), -EINVAL);
    assert_non_null(strstr(why, "t:2:"));
    free(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lscpu_table), cmocka_unit_test(test_smt_ranks),
        cmocka_unit_test(test_llc_groups),  cmocka_unit_test(test_files),
        cmocka_unit_test(test_binary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
