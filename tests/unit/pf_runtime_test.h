/*
 * pf_runtime_test.h - what the runtime tests share: reading a thread's
 * allowed CPUs the way a user would check them (/proc/self/task/<tid>/status),
 * binding a thread for a test's set-up, re-running the test program in a
 * child with another affinity or environment, and naming the OpenMP runtime
 * in use.  The CPUs come from pf_test.h's cpu_at() and friends.
 */
#ifndef PF_RUNTIME_TEST_H
#define PF_RUNTIME_TEST_H

#include "pf_test.h"
#include "pinfer_runtime.h"

#include <dlfcn.h>
#include <omp.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static inline pid_t test_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* Cpus_allowed_list of a thread of this process, e.g. "0-1", in buf. */
static inline const char *task_cpus(pid_t tid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    snprintf(buf, size, "?");
    FILE *f = fopen(path, "r");
    if (!f)
        return buf;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
            char *s = line + 18;
            while (*s == ' ' || *s == '\t')
                s++;
            size_t len = strcspn(s, "\n");
            if (len >= size)
                len = size - 1;
            memcpy(buf, s, len);
            buf[len] = '\0';
            break;
        }
    }
    free(line);
    fclose(f);
    return buf;
}

/* The calling thread's Cpus_allowed_list. */
static inline const char *my_cpus(char *buf, size_t size)
{
    return task_cpus(test_gettid(), buf, size);
}

/* Bind the calling thread to these CPUs: 0 or -errno. */
static inline int bind_thread(const int *cpus, size_t n)
{
    int top = 0;
    for (size_t i = 0; i < n; i++)
        top = cpus[i] > top ? cpus[i] : top;
    cpu_set_t *set = CPU_ALLOC((size_t)top + 1);
    if (!set)
        return -ENOMEM;
    size_t size = CPU_ALLOC_SIZE((size_t)top + 1);
    CPU_ZERO_S(size, set);
    for (size_t i = 0; i < n; i++)
        CPU_SET_S((size_t)cpus[i], size, set);
    int rc = sched_setaffinity(0, size, set) == 0 ? 0 : -errno;
    CPU_FREE(set);
    return rc;
}

/* Bind the calling thread to these CPUs (test set-up, not the library). */
static inline void set_my_cpus(const int *cpus, size_t n)
{
    assert_int_equal(bind_thread(cpus, n), 0);
}

/* Bind the calling thread to every CPU this process may use. */
static inline void set_my_cpus_all(void)
{
    set_my_cpus(test_cpus()->ids, test_cpus()->n);
}

/* The file of the OpenMP runtime that serves omp_* calls: libgomp or libomp. */
static inline const char *openmp_runtime(void)
{
    Dl_info info;
    if (dladdr((void *)omp_get_num_threads, &info) && info.dli_fname)
        return info.dli_fname;
    return "?";
}

#define IOMP_PATH "/usr/lib/x86_64-linux-gnu/libiomp5.so"

/* ids as "3,5,7", the form PF_TEST_CPUS takes; malloc'd, NULL when out of memory. */
static inline char *cpus_env(const char *name, const int *ids, size_t n)
{
    size_t size = strlen(name) + 2 + n * 12, len = 0;
    char *s = malloc(size);
    if (!s)
        return NULL;
    len += (size_t)snprintf(s, size, "%s=", name);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, size - len, "%s%d", i ? "," : "", ids[i]);
    return s;
}

/*
 * Run this test program again as `self --child MODE` with the given extra
 * environment ("NAME=value", NULL-terminated) and, when cpu >= 0, the
 * affinity {cpu} set before exec, so that the library sees it at start-up.
 * The child is told the CPUs it starts with in PF_TEST_CPUS ({cpu}, or this
 * process's), and this process's in PF_TEST_PARENT_CPUS.
 * Returns the child's exit status (or 128 + signal).  Its stdout is dropped.
 */
static inline int run_child(const char *mode, int cpu, const char *const *env)
{
    const cpu_ids *mine = test_cpus();
    char *child_cpus =
        cpu >= 0 ? cpus_env("PF_TEST_CPUS", &cpu, 1) : cpus_env("PF_TEST_CPUS", mine->ids, mine->n);
    char *parent_cpus = cpus_env("PF_TEST_PARENT_CPUS", mine->ids, mine->n);
    if (!child_cpus || !parent_cpus)
        fail_msg("out of memory");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (cpu >= 0 && bind_thread(&cpu, 1) < 0)
            _exit(126);
        putenv(child_cpus);
        putenv(parent_cpus);
        for (size_t i = 0; env && env[i]; i++) {
            const char *eq = strchr(env[i], '=');
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(eq - env[i]), env[i]);
            setenv(name, eq + 1, 1);
            /* A sanitizer runtime must come first in the library list; a
               preloaded OpenMP comes before it, which is fine for these tests. */
            if (strcmp(name, "LD_PRELOAD") == 0)
                setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
        }
        /* Its cmocka summary would confuse the runner's count: failures
           are reported on stderr, and by the exit status. */
        if (!freopen("/dev/null", "w", stdout))
            _exit(125);
        /* readlink rather than exec of /proc/self/exe: under valgrind the
           latter is valgrind itself, the former this program. */
        char self[4096];
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        if (len <= 0)
            _exit(127);
        self[len] = '\0';
        execl(self, self, "--child", mode, (char *)NULL);
        _exit(127);
    }
    free(child_cpus);
    free(parent_cpus);
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The CPUs of the process that started this child (PF_TEST_PARENT_CPUS), or this one's. */
static inline cpu_ids parent_cpus(void)
{
    cpu_ids l = {0, NULL};
    const char *given = getenv("PF_TEST_PARENT_CPUS");
    if (given && cpu_ids_parse(given, &l) && l.n > 0)
        return l;
    free(l.ids);
    l = (cpu_ids){0, NULL};
    for (size_t i = 0; i < cpu_count(); i++)
        cpu_ids_add(&l, cpu_at(i));
    return l;
}

#endif /* PF_RUNTIME_TEST_H */
