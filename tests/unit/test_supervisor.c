/*
 * test_supervisor.c - the supervisor object: driven from a poll loop, its
 * callbacks, exit statuses, leftover processes, the grace period, restarts
 * with back-off, several supervisors in one process, one driven from
 * another thread.  Instances are /bin/sh scripts on CPUs chosen from those
 * this test may use.
 */
#include "pf_proc_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>

#define MAX_CPUS 1024

/*
 * A spec running `sh -c script` as `ninstances` instances, one CPU each,
 * on the first CPUs this process may use; NULL (the test skipped) when
 * there are fewer CPUs than instances.
 */
static pf_launch_spec *shell_spec(const char *script, int ninstances)
{
    int cpus[MAX_CPUS];
    size_t n;
    allowed_cpus(cpus, MAX_CPUS, &n);
    if ((size_t)ninstances > n)
        return NULL;
    char *list = NULL;
    assert_int_equal(pf_cpulist_format(cpus, (size_t)ninstances, &list), 0);
    static char *program[4];
    program[0] = "/bin/sh";
    program[1] = "-c";
    program[2] = (char *)script;
    program[3] = NULL;
    pf_launch_request req;
    pf_launch_request_init(&req);
    req.plan.core_list = list;
    req.plan.ninstances = ninstances;
    req.no_python = true;
    req.allocator = PF_ALLOCATOR_DEFAULT;
    req.omp = PF_OMP_DEFAULT;
    req.program = program;
    pf_launch_spec *spec = NULL;
    char *why = NULL;
    int rc = pf_launch_spec_create(&req, &spec, &why);
    free(list);
    if (rc < 0)
        fail_msg("spec: %s", why ? why : pf_strerror(rc));
    return spec;
}

/* What the callbacks saw. */
typedef struct seen {
    char lines[16][128];
    size_t nlines;
    int exits;
    int last_status;
    int restart_ms[16];
    int infos, warnings, errors;
    char last_log[256];
} seen;

static void on_output(void *ctx, size_t i, const char *line, size_t len)
{
    seen *s = ctx;
    if (s->nlines < 16)
        snprintf(s->lines[s->nlines++], 128, "%zu:%.*s", i, (int)len, line);
}

static void on_exit_cb(void *ctx, size_t i, int status, int restart_ms)
{
    (void)i;
    seen *s = ctx;
    if (s->exits < 16)
        s->restart_ms[s->exits] = restart_ms;
    s->exits++;
    s->last_status = status;
}

static void on_log(void *ctx, pf_log_level level, const char *text)
{
    seen *s = ctx;
    s->infos += level == PF_LOG_INFO;
    s->warnings += level == PF_LOG_WARNING;
    s->errors += level == PF_LOG_ERROR;
    snprintf(s->last_log, sizeof s->last_log, "%s", text);
}

static pf_supervisor *make_supervisor(const pf_launch_spec *spec, seen *s, pf_restart restart)
{
    pf_supervisor_options o;
    pf_supervisor_options_init(&o);
    o.capture = true;
    o.on_output = on_output;
    o.on_exit = on_exit_cb;
    o.log = on_log;
    o.log_ctx = s;
    o.ctx = s;
    o.restart = restart;
    o.grace_ms = 300;
    pf_supervisor *sup = NULL;
    char *why = NULL;
    int rc = pf_supervisor_create(spec, &o, &sup, &why);
    if (rc < 0)
        fail_msg("supervisor: %s", why ? why : pf_strerror(rc));
    rc = pf_supervisor_start(sup, &why);
    if (rc < 0)
        fail_msg("start: %s", why ? why : pf_strerror(rc));
    return sup;
}

/* An event loop of the test's own: poll the fd with the supervisor's timeout. */
static bool drive(pf_supervisor **sups, size_t n, int timeout_ms)
{
    double end = test_now_ms() + timeout_ms;
    for (;;) {
        bool all = true;
        for (size_t k = 0; k < n; k++)
            all = all && pf_supervisor_finished(sups[k]);
        if (all)
            return true;
        if (test_now_ms() > end)
            return false;
        struct pollfd fds[8];
        int wait = 100;
        for (size_t k = 0; k < n; k++) {
            fds[k] = (struct pollfd){.fd = pf_supervisor_fd(sups[k]), .events = POLLIN};
            int t = pf_supervisor_timeout(sups[k]);
            if (t >= 0 && t < wait)
                wait = t;
        }
        poll(fds, n, wait);
        for (size_t k = 0; k < n; k++)
            assert_int_equal(pf_supervisor_step(sups[k]), 0);
    }
}

static void test_output_and_status(void **state)
{
    (void)state;
    pf_launch_spec *spec = shell_spec("echo hello; echo world >&2; exit 3", 1);
    seen s = {0};
    pf_supervisor *sup = make_supervisor(spec, &s, PF_RESTART_NEVER);
    assert_true(drive(&sup, 1, 10000));
    assert_int_equal(s.nlines, 2);
    assert_string_equal(s.lines[0], "0:hello");
    assert_string_equal(s.lines[1], "0:world");
    assert_int_equal(s.exits, 1);
    assert_int_equal(s.restart_ms[0], -1);
    assert_int_equal(WEXITSTATUS(s.last_status), 3);
    /* Reported when it happened, once: "instance 0 exited 3 after 0.0 s". */
    assert_int_equal(s.errors, 1);
    assert_non_null(strstr(s.last_log, "instance 0 exited 3 after "));
    assert_int_equal(pf_supervisor_exit_status(sup), 3);
    assert_int_equal(pf_supervisor_exit_status(sup), 3);
    assert_int_equal(s.errors, 1);
    assert_true(s.infos >= 2); /* the instance's binding and command, its environment */
    pf_supervisor_free(sup);
    pf_launch_spec_free(spec);
}

/* Two instances at once, each reported. */
static void test_two_instances(void **state)
{
    (void)state;
    pf_launch_spec *spec = shell_spec("echo line; exit 4", 2);
    if (!spec)
        skip();
    seen s = {0};
    pf_supervisor *sup = make_supervisor(spec, &s, PF_RESTART_NEVER);
    assert_int_equal(pf_supervisor_pid(sup, 0) > 0, true);
    assert_int_equal(pf_supervisor_pid(sup, 1) > 0, true);
    assert_true(drive(&sup, 1, 10000));
    assert_int_equal(s.nlines, 2);
    assert_int_equal(s.exits, 2);
    assert_int_equal(pf_supervisor_exit_status(sup), 4);
    assert_int_equal(s.errors, 2);
    pf_supervisor_free(sup);
    pf_launch_spec_free(spec);
}

/* What an instance left in its group dies with it. */
static void test_leftovers_killed(void **state)
{
    (void)state;
    pf_launch_spec *spec = shell_spec("sleep 60 & echo $!; exit 0", 1);
    seen s = {0};
    pf_supervisor *sup = make_supervisor(spec, &s, PF_RESTART_NEVER);
    assert_true(drive(&sup, 1, 10000));
    assert_int_equal(s.nlines, 1);
    int leftover = (int)strtol(s.lines[0] + 2, NULL, 10);
    assert_true(leftover > 0);
    double end = test_now_ms() + 5000;
    while (process_alive(leftover) && test_now_ms() < end)
        usleep(5000);
    assert_false(process_alive(leftover));
    assert_int_equal(pf_supervisor_exit_status(sup), 0);
    pf_supervisor_free(sup);
    pf_launch_spec_free(spec);
}

/* A signal passed on; an instance that ignores it is killed after the grace period. */
static void test_grace_period(void **state)
{
    (void)state;
    pf_launch_spec *spec = shell_spec("trap '' TERM; echo ready; while :; do sleep 0.05; done", 1);
    seen s = {0};
    pf_supervisor *sup = make_supervisor(spec, &s, PF_RESTART_ALWAYS);
    double end = test_now_ms() + 5000;
    while (s.nlines == 0 && test_now_ms() < end) {
        struct pollfd p = {.fd = pf_supervisor_fd(sup), .events = POLLIN};
        poll(&p, 1, 50);
        pf_supervisor_step(sup);
    }
    assert_int_equal(s.nlines, 1);
    double t0 = test_now_ms();
    pf_supervisor_signal(sup, SIGTERM, "stopping");
    assert_string_equal(s.last_log, "stopping");
    assert_true(drive(&sup, 1, 10000));
    double took = test_now_ms() - t0;
    assert_true(took >= 250); /* the grace period, 300 ms */
    assert_int_equal(s.exits, 1);
    assert_int_equal(s.restart_ms[0], -1); /* stopping: not restarted */
    assert_true(WIFSIGNALED(s.last_status));
    assert_int_equal(WTERMSIG(s.last_status), SIGKILL);
    assert_int_equal(pf_supervisor_exit_status(sup), 128 + SIGKILL);
    assert_true(s.warnings >= 1); /* "still running ... killing them" */
    pf_supervisor_free(sup);
    pf_launch_spec_free(spec);
}

/* A server's worker: restarted with a doubling back-off, until stopped. */
static void test_restart_backoff(void **state)
{
    (void)state;
    pf_launch_spec *spec = shell_spec("echo up; exit 1", 1);
    seen s = {0};
    pf_supervisor *sup = make_supervisor(spec, &s, PF_RESTART_ON_FAILURE);
    double end = test_now_ms() + 10000;
    while (s.exits < 4 && test_now_ms() < end) {
        struct pollfd p = {.fd = pf_supervisor_fd(sup), .events = POLLIN};
        poll(&p, 1, pf_supervisor_timeout(sup));
        assert_int_equal(pf_supervisor_step(sup), 0);
    }
    assert_int_equal(s.exits, 4);
    assert_int_equal(s.restart_ms[0], 100);
    assert_int_equal(s.restart_ms[1], 200);
    assert_int_equal(s.restart_ms[2], 400);
    assert_int_equal(s.restart_ms[3], 800);
    assert_int_equal(pf_supervisor_restarts(sup, 0), 3);
    assert_true(s.nlines >= 3);
    assert_false(pf_supervisor_finished(sup)); /* a restart is due */
    pf_supervisor_signal(sup, SIGTERM, NULL);
    assert_true(drive(&sup, 1, 5000));
    assert_int_equal(pf_supervisor_exit_status(sup), 1);
    pf_supervisor_free(sup);
    pf_launch_spec_free(spec);
}

/* ON_FAILURE: an instance that exits 0 stays down. */
static void test_restart_on_failure_only(void **state)
{
    (void)state;
    pf_launch_spec *spec = shell_spec("exit 0", 1);
    seen s = {0};
    pf_supervisor *sup = make_supervisor(spec, &s, PF_RESTART_ON_FAILURE);
    assert_true(drive(&sup, 1, 5000));
    assert_int_equal(s.exits, 1);
    assert_int_equal(s.restart_ms[0], -1);
    assert_int_equal(pf_supervisor_restarts(sup, 0), 0);
    pf_supervisor_free(sup);
    pf_launch_spec_free(spec);
}

/* Two supervisors in one loop, and a child of the program's own that neither reaps. */
static void test_many_supervisors(void **state)
{
    (void)state;
    pf_launch_spec *a = shell_spec("exit 5", 1), *b = shell_spec("sleep 0.2; exit 6", 1);
    pid_t mine = fork();
    if (mine == 0) {
        usleep(100000);
        _exit(9);
    }
    seen sa = {0}, sb = {0};
    pf_supervisor *sups[2] = {make_supervisor(a, &sa, PF_RESTART_NEVER),
                              make_supervisor(b, &sb, PF_RESTART_NEVER)};
    assert_true(drive(sups, 2, 10000));
    assert_int_equal(pf_supervisor_exit_status(sups[0]), 5);
    assert_int_equal(pf_supervisor_exit_status(sups[1]), 6);
    int st = wait_for(mine, 5000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 9);
    pf_supervisor_free(sups[0]);
    pf_supervisor_free(sups[1]);
    pf_launch_spec_free(a);
    pf_launch_spec_free(b);
}

/* Driven from a thread of its own, as a server would. */
static void *drive_in_thread(void *arg)
{
    pf_supervisor *sup = arg;
    return (void *)(intptr_t)pf_supervisor_run(sup, 10000);
}

static void test_thread(void **state)
{
    (void)state;
    pf_launch_spec *spec = shell_spec("echo from-thread; exit 2", 1);
    seen s = {0};
    pf_supervisor *sup = make_supervisor(spec, &s, PF_RESTART_NEVER);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, drive_in_thread, sup), 0);
    void *res;
    pthread_join(t, &res);
    assert_int_equal((int)(intptr_t)res, 0);
    assert_string_equal(s.lines[0], "0:from-thread");
    assert_int_equal(pf_supervisor_exit_status(sup), 2);
    pf_supervisor_free(sup);
    pf_launch_spec_free(spec);
}

/* fail-fast: the first instance that fails stops the other one. */
static void test_fail_fast(void **state)
{
    (void)state;
    pf_launch_spec *a = shell_spec("sleep 30", 1);
    pf_launch_spec *spec =
        shell_spec("if [ \"$PINFER_INSTANCE\" = 1 ]; then exit 4; fi; sleep 30", 2);
    pf_launch_spec_free(a);
    if (!spec)
        skip();
    seen s = {0};
    pf_supervisor_options o;
    pf_supervisor_options_init(&o);
    o.log = on_log;
    o.log_ctx = &s;
    o.fail_fast = true;
    o.grace_ms = 2000;
    pf_supervisor *sup = NULL;
    assert_int_equal(pf_supervisor_create(spec, &o, &sup, NULL), 0);
    assert_int_equal(pf_supervisor_start(sup, NULL), 0);
    double t0 = test_now_ms();
    assert_true(drive(&sup, 1, 10000));
    assert_true(test_now_ms() - t0 < 5000); /* not the 30 s of the sleep */
    /* instance 0 was stopped by SIGTERM; the status is that of the failure that stopped
       it (instance 1's 4), not the lowest index's 143: that was the launcher's own SIGTERM */
    assert_int_equal(pf_supervisor_exit_status(sup), 4);
    assert_int_equal(s.errors, 2);
    pf_supervisor_free(sup);
    pf_launch_spec_free(spec);
}

/* Remove a directory and the files in it. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

/*
 * A console nobody reads, with log files: the supervisor never blocks,
 * drops the console copy (the log files have it all), and says how much.
 */
static void test_slow_console(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char dir[] = "/tmp/pf_test_supervisor_XXXXXX";
    assert_non_null(mkdtemp(dir));
    pf_launch_spec *spec = shell_spec("yes 0123456789 | head -n 150000", 1);
    seen s = {0};
    pf_supervisor_options o;
    pf_supervisor_options_init(&o);
    o.capture = true;
    o.console_fd = fds[1];
    o.log_dir = dir;
    o.grace_ms = 300; /* how long the end waits for the console */
    o.log = on_log;
    o.log_ctx = &s;
    pf_supervisor *sup = NULL;
    assert_int_equal(pf_supervisor_create(spec, &o, &sup, NULL), 0);
    assert_int_equal(pf_supervisor_start(sup, NULL), 0);
    /* 1.65 MB against a 64 kB pipe: a blocking write would hang here */
    assert_true(drive(&sup, 1, 20000));
    assert_int_equal(pf_supervisor_exit_status(sup), 0);
    /* read the pipe: what was held comes out after that */
    char buf[65536];
    size_t got = 0;
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    for (int round = 0; round < 400; round++) {
        ssize_t r = read(fds[0], buf, sizeof buf);
        if (r > 0)
            got += (size_t)r;
        struct pollfd p = {.fd = pf_supervisor_fd(sup), .events = POLLIN};
        poll(&p, 1, 5);
        pf_supervisor_step(sup);
    }
    assert_true(got >= 65536);
    /* more than the console buffer (1 MiB): the rest was dropped, and said */
    assert_true(got < 1650000);
    assert_non_null(strstr(s.last_log, "the console could not keep up"));
    pf_supervisor_free(sup);
    close(fds[0]);
    close(fds[1]);
    remove_dir(dir);
    pf_launch_spec_free(spec);
}

/*
 * A slow console without log files: its copy is the only one, so nothing is
 * dropped; the instance waits (its output is not read meanwhile) until the
 * console has taken it, and the supervisor still never blocks.
 */
static void test_slow_console_without_logs(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pf_launch_spec *spec = shell_spec("yes 0123456789 | head -n 150000", 1);
    seen s = {0};
    pf_supervisor_options o;
    pf_supervisor_options_init(&o);
    o.capture = true;
    o.console_fd = fds[1];
    o.log = on_log;
    o.log_ctx = &s;
    pf_supervisor *sup = NULL;
    assert_int_equal(pf_supervisor_create(spec, &o, &sup, NULL), 0);
    assert_int_equal(pf_supervisor_start(sup, NULL), 0);
    double t0 = test_now_ms();
    assert_false(drive(&sup, 1, 300)); /* held back: steps return, the instance waits */
    assert_true(test_now_ms() - t0 < 1000);
    assert_true(pf_supervisor_pid(sup, 0) > 0);
    char buf[65536];
    size_t got = 0;
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    for (int round = 0; round < 4000 && !pf_supervisor_finished(sup); round++) {
        ssize_t r = read(fds[0], buf, sizeof buf);
        if (r > 0)
            got += (size_t)r;
        struct pollfd p = {.fd = pf_supervisor_fd(sup), .events = POLLIN};
        poll(&p, 1, 5);
        pf_supervisor_step(sup);
    }
    assert_true(pf_supervisor_finished(sup));
    ssize_t r;
    while ((r = read(fds[0], buf, sizeof buf)) > 0)
        got += (size_t)r;
    assert_int_equal(got, 150000 * 11); /* every byte */
    assert_int_equal(pf_supervisor_exit_status(sup), 0);
    assert_int_equal(s.warnings, 0); /* nothing dropped, nothing said */
    pf_supervisor_free(sup);
    close(fds[0]);
    close(fds[1]);
    pf_launch_spec_free(spec);
}

/* Freeing a supervisor with instances running kills them: nothing is left behind. */
static void test_free_kills(void **state)
{
    (void)state;
    pf_launch_spec *spec = shell_spec("sleep 60", 1);
    seen s = {0};
    pf_supervisor *sup = make_supervisor(spec, &s, PF_RESTART_NEVER);
    int pid = pf_supervisor_pid(sup, 0);
    assert_true(pid > 0);
    pf_supervisor_free(sup);
    assert_false(process_alive(pid));
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1); /* reaped */
    pf_launch_spec_free(spec);
}

/* A program that cannot be found: one clear error at create, nothing started. */
static void test_program_missing(void **state)
{
    (void)state;
    pf_launch_spec *spec = shell_spec("exit 0", 1);
    free(spec->argv[0]);
    spec->argv[0] = strdup("/nonexistent/prog");
    pf_supervisor *sup = NULL;
    char *why = NULL;
    seen s = {0};
    pf_supervisor_options o;
    pf_supervisor_options_init(&o);
    o.log = on_log;
    o.log_ctx = &s;
    assert_int_equal(pf_supervisor_create(spec, &o, &sup, &why), -ENOENT);
    assert_null(sup);
    assert_non_null(strstr(why, "cannot run /nonexistent/prog"));
    free(why);
    pf_launch_spec_free(spec);
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_and_status),
        cmocka_unit_test(test_two_instances),
        cmocka_unit_test(test_leftovers_killed),
        cmocka_unit_test(test_grace_period),
        cmocka_unit_test(test_restart_backoff),
        cmocka_unit_test(test_restart_on_failure_only),
        cmocka_unit_test(test_many_supervisors),
        cmocka_unit_test(test_thread),
        cmocka_unit_test(test_fail_fast),
        cmocka_unit_test(test_slow_console),
        cmocka_unit_test(test_slow_console_without_logs),
        cmocka_unit_test(test_free_kills),
        cmocka_unit_test(test_program_missing),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
