/*
 * test_spawn.c - pf_spawn(): a bound child started safely from a threaded
 * program, exec failures reported through the pipe, signal dispositions
 * reset, stdio, the /bin/sh fallback, the parent-death signal.
 */
#include "pf_proc_test.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

static int spawn_argv(char *const *argv, pf_spawn_options *so, char **why)
{
    so->file = argv[0];
    so->argv = argv;
    int pid = 0;
    int rc = pf_spawn(so, &pid, why);
    return rc < 0 ? rc : pid;
}

static void test_exit_status(void **state)
{
    (void)state;
    char *argv[] = {"/bin/sh", "-c", "exit 3", NULL};
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    int pid = spawn_argv(argv, &so, NULL);
    assert_true(pid > 0);
    int st = wait_for(pid, 5000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 3);
}

/* The exec error comes back through the pipe; the child is reaped, nothing is left. */
static void test_exec_failure(void **state)
{
    (void)state;
    char *argv[] = {"/nonexistent/program", "x", NULL};
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    char *why = NULL;
    assert_int_equal(spawn_argv(argv, &so, &why), -ENOENT);
    assert_non_null(why);
    assert_non_null(strstr(why, "cannot run /nonexistent/program"));
    free(why);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);

    char *dir[] = {"/tmp", NULL};
    assert_int_equal(spawn_argv(dir, &so, NULL), -EACCES);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
}

static void test_invalid(void **state)
{
    (void)state;
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    int pid;
    assert_int_equal(pf_spawn(&so, &pid, NULL), -EINVAL);
    assert_int_equal(pf_spawn(NULL, &pid, NULL), -EINVAL);
}

/* A file without #! runs with /bin/sh, as execvp runs it. */
static void test_script_without_shebang(void **state)
{
    (void)state;
    char path[] = "/tmp/pf_spawn_script.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char body[] = "exit 7\n";
    assert_int_equal(write(fd, body, sizeof body - 1), (ssize_t)(sizeof body - 1));
    fchmod(fd, 0755);
    close(fd);
    char *argv[] = {path, NULL};
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    int pid = spawn_argv(argv, &so, NULL);
    int st = pid > 0 ? wait_for(pid, 5000) : -1;
    unlink(path);
    assert_true(pid > 0);
    assert_int_equal(WEXITSTATUS(st), 7);
}

/* Output through a pipe, stdin from /dev/null. */
static void test_stdio(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    char *argv[] = {"/bin/sh", "-c", "cat; echo out; echo err >&2", NULL};
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    so.stdio[0] = PF_SPAWN_DEVNULL;
    so.stdio[1] = so.stdio[2] = fds[1];
    int pid = spawn_argv(argv, &so, NULL);
    close(fds[1]);
    assert_true(pid > 0);
    char buf[64] = {0};
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    close(fds[0]);
    assert_string_equal(buf, "out\nerr\n");
    assert_int_equal(WEXITSTATUS(wait_for(pid, 5000)), 0);
}

/* The child runs on the CPU it was given (one chosen from those allowed here). */
static void test_cpu_binding(void **state)
{
    (void)state;
    int cpus[1024];
    size_t n;
    allowed_cpus(cpus, 1024, &n);
    int chosen = cpus[n - 1];
    char *argv[] = {"/bin/sleep", "5", NULL};
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    so.cpus = &chosen;
    so.ncpus = 1;
    int pid = spawn_argv(argv, &so, NULL);
    assert_true(pid > 0);
    char want[16];
    snprintf(want, sizeof want, "%d", chosen);
    assert_string_equal(proc_status_field(pid, "Cpus_allowed_list"), want);
    kill(pid, SIGKILL);
    wait_for(pid, 5000);
}

/* Dispositions and the mask are reset: SIGINT ignored here is not ignored there. */
static void test_signals_reset(void **state)
{
    (void)state;
    struct sigaction ign = {.sa_handler = SIG_IGN}, saved_int, saved_term;
    sigaction(SIGINT, &ign, &saved_int);
    sigaction(SIGTERM, &ign, &saved_term);
    sigset_t block, saved_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &block, &saved_mask);
    char *argv[] = {"/bin/sleep", "5", NULL};
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    int pid = spawn_argv(argv, &so, NULL);
    pthread_sigmask(SIG_SETMASK, &saved_mask, NULL);
    sigaction(SIGINT, &saved_int, NULL);
    sigaction(SIGTERM, &saved_term, NULL);
    assert_true(pid > 0);
    const char *ign_mask = proc_status_field(pid, "SigIgn");
    assert_non_null(ign_mask);
    unsigned long long bits = strtoull(ign_mask, NULL, 16);
    assert_int_equal(bits & (1ull << (SIGINT - 1)), 0);
    assert_int_equal(bits & (1ull << (SIGTERM - 1)), 0);
    unsigned long long blocked = strtoull(proc_status_field(pid, "SigBlk"), NULL, 16);
    assert_int_equal(blocked, 0);
    kill(pid, SIGINT);
    int st = wait_for(pid, 5000);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGINT);
}

/* Threads that allocate all the time while others spawn: no child ever hangs. */
typedef struct churn {
    atomic_bool stop;
} churn;

static void *allocate(void *arg)
{
    churn *c = arg;
    while (!atomic_load(&c->stop)) {
        void *p[64];
        for (int i = 0; i < 64; i++)
            p[i] = malloc((size_t)(16 + i * 97));
        for (int i = 0; i < 64; i++)
            free(p[i]);
    }
    return NULL;
}

#define SPAWNS_PER_THREAD 40

static void *spawn_many(void *arg)
{
    (void)arg;
    char *argv[] = {"/bin/true", NULL};
    for (int i = 0; i < SPAWNS_PER_THREAD; i++) {
        pf_spawn_options so;
        pf_spawn_options_init(&so);
        int pid = spawn_argv(argv, &so, NULL);
        if (pid <= 0 || wait_for(pid, 10000) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_threaded(void **state)
{
    (void)state;
    churn c = {false};
    pthread_t alloc[2], spawners[3];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&alloc[i], NULL, allocate, &c), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&spawners[i], NULL, spawn_many, NULL), 0);
    bool ok = true;
    for (int i = 0; i < 3; i++) {
        void *res;
        pthread_join(spawners[i], &res);
        ok = ok && res == NULL;
    }
    atomic_store(&c.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(alloc[i], NULL);
    assert_true(ok);
}

/* The death signal fires when the spawning thread ends. */
static void *spawn_and_exit(void *arg)
{
    int *pid = arg;
    char *argv[] = {"/bin/sleep", "30", NULL};
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    so.death_signal = SIGKILL;
    *pid = spawn_argv(argv, &so, NULL);
    return NULL;
}

static void test_death_signal(void **state)
{
    (void)state;
    int pid = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, spawn_and_exit, &pid), 0);
    pthread_join(t, NULL);
    assert_true(pid > 0);
    int st = wait_for(pid, 5000);
    assert_true(st != -1);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
}

static void test_new_group(void **state)
{
    (void)state;
    char *argv[] = {"/bin/sleep", "5", NULL};
    pf_spawn_options so;
    pf_spawn_options_init(&so);
    so.new_group = true;
    int pid = spawn_argv(argv, &so, NULL);
    assert_true(pid > 0);
    assert_int_equal(getpgid(pid), pid);
    kill(-pid, SIGKILL);
    wait_for(pid, 5000);
}

static void test_memory_probe(void **state)
{
    (void)state;
    int node = 0;
    int rc = pf_memory_binding_probe(&node, 1);
    /* Allowed here or refused by the kernel (a container): never anything else. */
    assert_true(rc == 0 || rc == -EPERM || rc == -EINVAL || rc == -ENOSYS);
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_status),
        cmocka_unit_test(test_exec_failure),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_script_without_shebang),
        cmocka_unit_test(test_stdio),
        cmocka_unit_test(test_cpu_binding),
        cmocka_unit_test(test_signals_reset),
        cmocka_unit_test(test_threaded),
        cmocka_unit_test(test_death_signal),
        cmocka_unit_test(test_new_group),
        cmocka_unit_test(test_memory_probe),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
