/*
 * test_proc.c - the /proc reader (src/proc/): each parser on text, the
 * reader on captured trees (tests/fixtures/proc/README.md says where they
 * come from), and on the live /proc: this process, and a pid that does not
 * exist.
 */
#include "pf_test.h"

#include "proc/proc.h"

#include <unistd.h>

static pf_proc_thread blank(void)
{
    pf_proc_thread t;
    memset(&t, 0, sizeof t);
    t.cpu = -1;
    t.utime = t.stime = t.nr_migrations = t.exec_ns = t.run_ns = t.wait_ns = -1;
    return t;
}

static void test_stat(void **state)
{
    (void)state;
    pf_proc_thread t = blank();
    const char *s = "77 (we)ird ) name) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 "
                    "22 23 24 25 26 27 28 29 30 31 32 33 34 35 5 0 0\n";
    assert_int_equal(pf__proc_parse_stat(s, strlen(s), &t), 0);
    assert_string_equal(t.name, "we)ird ) name");
    assert_int_equal(t.state, 'R');
    assert_int_equal(t.utime, 11);
    assert_int_equal(t.stime, 12);
    assert_int_equal(t.cpu, 5);
    /* An old kernel's shorter line: the times, no CPU. */
    t = blank();
    const char *old = "9 (x) S 1 2 3 4 5 6 7 8 9 10 100 200 13 14 15 16";
    assert_int_equal(pf__proc_parse_stat(old, strlen(old), &t), 0);
    assert_int_equal(t.utime, 100);
    assert_int_equal(t.cpu, -1);
    t = blank();
    assert_int_equal(pf__proc_parse_stat("9 x S", 5, &t), -EINVAL);
    assert_int_equal(pf__proc_parse_stat("9 (x) S 1", 9, &t), -EINVAL);
}

static void test_sched_and_schedstat(void **state)
{
    (void)state;
    pf_proc_thread t = blank();
    const char *s = "python3 (1, #threads: 3)\n-----\nse.exec_start : 1.5\n"
                    "se.sum_exec_runtime                          :          1234.567890\n"
                    "se.nr_migrations                             :                   42\n";
    pf__proc_parse_sched(s, strlen(s), &t);
    assert_int_equal(t.nr_migrations, 42);
    assert_int_equal(t.exec_ns, 1234567890LL);
    t = blank();
    pf__proc_parse_sched("se.nr_migrationsX : 5\n", 22, &t);
    assert_int_equal(t.nr_migrations, -1);
    assert_int_equal(pf__proc_parse_schedstat("759829462 304785879 673\n", 24, &t), 0);
    assert_int_equal(t.run_ns, 759829462LL);
    assert_int_equal(t.wait_ns, 304785879LL);
    assert_int_equal(pf__proc_parse_schedstat("12\n", 3, &t), -EINVAL);
}

static void test_status(void **state)
{
    (void)state;
    const char *s = "Name:\tx\nCpus_allowed:\tff\nCpus_allowed_list:\t0-3,8\n"
                    "Mems_allowed_list:\t1\nVmRSS:\t  2048 kB\n"
                    "voluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t9\n";
    pf__ivec cpus = {0}, mems = {0};
    long long vol = -1, invol = -1, rss = -1;
    pf__proc_parse_status(s, strlen(s), &cpus, &mems, &vol, &invol, &rss);
    assert_int_equal(cpus.len, 5);
    assert_int_equal(cpus.v[4], 8);
    assert_int_equal(mems.len, 1);
    assert_int_equal(mems.v[0], 1);
    assert_int_equal(vol, 7);
    assert_int_equal(invol, 9);
    assert_int_equal(rss, 2048);
    /* A list that is not one reads as empty. */
    const char *bad = "Cpus_allowed_list:\t3-1\n";
    pf__proc_parse_status(bad, strlen(bad), &cpus, NULL, NULL, NULL, NULL);
    assert_int_equal(cpus.len, 0);
    pf__ivec_free(&cpus);
    pf__ivec_free(&mems);
}

static void test_numa_maps(void **state)
{
    (void)state;
    const char *s = "55e4 default file=/x mapped=2 N0=2 kernelpagesize_kB=4\n"
                    "7f00 bind:1 anon=4 dirty=4 N1=4 kernelpagesize_kB=2048\n"
                    "7f01 default anon=3 N0=1 N1=2\n"
                    "7f02 default N9=5 Nx=3 N1=-4 N=2 N1=7z\n";
    unsigned long long bytes[4] = {0}, other = 0;
    pf__proc_parse_numa_maps(s, strlen(s), bytes, 4, &other);
    assert_true(bytes[0] == (2 + 1) * 4096ULL);
    assert_true(bytes[1] == 4 * 2048 * 1024ULL + 2 * 4096ULL);
    assert_true(other == 5 * 4096ULL); /* node 9 is beyond the array */
}

static void test_cgroup(void **state)
{
    (void)state;
    const char *v1 = "9:name=systemd:/\n3:cpuset,cpu:/docker/abc\n0::/\n";
    char *path = pf__proc_parse_cgroup(v1, strlen(v1));
    assert_string_equal(path, "/"); /* the v2 line wins */
    free(path);
    const char *only_v1 = "4:memory:/m\n3:cpuacct,cpuset:/docker/abc\n";
    path = pf__proc_parse_cgroup(only_v1, strlen(only_v1));
    assert_string_equal(path, "/docker/abc");
    free(path);
    assert_null(pf__proc_parse_cgroup("garbage", 7));
}

static char *fixture_root(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/proc/%s", PF_SOURCE_DIR, name);
    return path;
}

/* What numa_maps says per node, summed here with sscanf: a second reading of the file. */
static void numa_expected(const char *root, int pid, unsigned long long out[2])
{
    char path[4200], line[8192];
    snprintf(path, sizeof path, "%s/%d/numa_maps", root, pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    out[0] = out[1] = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb = 4;
        char *k = strstr(line, "kernelpagesize_kB=");
        if (k)
            sscanf(k + 18, "%llu", &kb);
        char *save = NULL;
        for (char *w = strtok_r(line, " \n", &save); w; w = strtok_r(NULL, " \n", &save)) {
            unsigned node;
            unsigned long long pages;
            if (sscanf(w, "N%u=%llu", &node, &pages) == 2 && node < 2)
                out[node] += pages * kb * 1024;
        }
    }
    fclose(f);
}

static void test_read_captured(void **state)
{
    (void)state;
    const char *root = fixture_root("live2cpu");
    pf_proc_process *p = NULL;
    char *why = NULL;
    assert_int_equal(pf_proc_read(root, 21535, &p, &why), 0);
    assert_int_equal(p->nthreads, 3);
    assert_int_equal(p->threads[0].tid, 21535);
    assert_int_equal(p->threads[2].tid, 21537);
    assert_string_equal(p->threads[1].name, "python3");
    assert_int_equal(p->threads[1].run_ns, 759829462LL);
    assert_int_equal(p->threads[1].wait_ns, 304785879LL);
    assert_true(p->threads[1].nr_migrations >= 0);
    assert_int_equal(p->ncpus_allowed, 2);
    assert_int_equal(p->nmems_allowed, 1);
    assert_true(p->rss_kb > 0);
    assert_non_null(strstr(p->command, "python3 -c"));
    /* Only the variables that shape threads: PATH and HOME are not kept. */
    assert_non_null(p->env);
    assert_string_equal(p->env[0], "OMP_NUM_THREADS=2");
    assert_string_equal(p->env[1], "KMP_AFFINITY=granularity=fine,compact");
    assert_null(p->env[2]);
    unsigned long long want[2];
    numa_expected(root, 21535, want);
    assert_int_equal(p->nnodes, 1);
    assert_true(p->memory_by_node[0] == want[0] && want[0] > 0);
    assert_string_equal(p->cgroup, "/");
    assert_non_null(pf_proc_thread_of(p, 21536));
    assert_null(pf_proc_thread_of(p, 1));
    pf_proc_process_free(p);
}

static void test_read_two_sockets(void **state)
{
    (void)state;
    const char *root = fixture_root("twosocket");
    pf_proc_process *p = NULL;
    char *why = NULL;
    assert_int_equal(pf_proc_read(root, 4242, &p, &why), 0);
    assert_int_equal(p->ncpus_allowed, 56);
    assert_int_equal(p->nmems_allowed, 2);
    assert_int_equal(p->threads[0].ncpus_allowed, 56);
    const pf_proc_thread *t = pf_proc_thread_of(p, 4244);
    assert_non_null(t);
    assert_int_equal(t->cpu, 30);
    assert_int_equal(t->nr_migrations, -1); /* its kernel has no such field */
    assert_true(t->exec_ns > 0);
    unsigned long long want[2];
    numa_expected(root, 4242, want);
    assert_int_equal(p->nnodes, 2);
    assert_true(p->memory_by_node[0] == want[0]);
    assert_true(p->memory_by_node[1] == want[1]);
    assert_true(want[1] >= 4 * 2048 * 1024ULL);
    assert_string_equal(p->cgroup, "/kubepods.slice/pod42.slice/cri-42.scope");
    pf_proc_process_free(p);
}

static void test_read_unreadable_files(void **state)
{
    (void)state;
    pf_proc_process *p = NULL;
    char *why = NULL;
    assert_int_equal(pf_proc_read(fixture_root("noenv"), 4242, &p, &why), 0);
    assert_null(p->env);
    assert_null(p->memory_by_node);
    assert_int_equal(p->nthreads, 3);
    pf_proc_process_free(p);
}

static void test_read_live(void **state)
{
    (void)state;
    pf_proc_process *p = NULL;
    char *why = NULL;
    assert_int_equal(pf_proc_read(NULL, (int)getpid(), &p, &why), 0);
    assert_true(p->nthreads >= 1);
    assert_non_null(pf_proc_thread_of(p, (int)getpid()));
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    assert_int_equal(p->ncpus_allowed, (size_t)CPU_COUNT(&set));
    for (size_t i = 0; i < p->ncpus_allowed; i++)
        assert_true(CPU_ISSET(p->cpus_allowed[i], &set));
    assert_non_null(p->env);
    assert_non_null(p->memory_by_node);
    pf_proc_process_free(p);
    /* A pid that does not exist (pid_max is at most 2^22). */
    assert_int_equal(pf_proc_read(NULL, (1 << 22) + 7, &p, &why), -ENOENT);
    assert_null(p);
    assert_non_null(strstr(why, "no process"));
    free(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stat),
        cmocka_unit_test(test_sched_and_schedstat),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_numa_maps),
        cmocka_unit_test(test_cgroup),
        cmocka_unit_test(test_read_captured),
        cmocka_unit_test(test_read_two_sockets),
        cmocka_unit_test(test_read_unreadable_files),
        cmocka_unit_test(test_read_live),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
