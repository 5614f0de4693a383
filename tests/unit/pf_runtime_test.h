/*
 * pf_runtime_test.h - what the runtime tests share: reading a thread's
 * allowed CPUs the way a user would check them (/proc/self/task/<tid>/status),
 * re-running the test program in a child with another affinity or
 * environment, and naming the OpenMP runtime in use.
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
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    snprintf(buf, size, "?");
    FILE *f = fopen(path, "r");
    if (!f)
        return buf;
    while (fgets(line, sizeof line, f)) {
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
    fclose(f);
    return buf;
}

/* The calling thread's Cpus_allowed_list. */
static inline const char *my_cpus(char *buf, size_t size)
{
    return task_cpus(test_gettid(), buf, size);
}

/* Bind the calling thread to these CPUs (test set-up, not the library). */
static inline void set_my_cpus(const int *cpus, size_t n)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (size_t i = 0; i < n; i++)
        CPU_SET(cpus[i], &set);
    assert_int_equal(sched_setaffinity(0, sizeof set, &set), 0);
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

/*
 * Run this test program again as `self --child MODE` with the given extra
 * environment ("NAME=value", NULL-terminated) and, when cpu >= 0, the
 * affinity {cpu} set before exec, so that the library sees it at start-up.
 * Returns the child's exit status (or 128 + signal).  Its stdout is dropped.
 */
static inline int run_child(const char *mode, int cpu, const char *const *env)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu >= 0 ? cpu : 0, &set);
        if (cpu >= 0 && sched_setaffinity(0, sizeof set, &set) < 0)
            _exit(126);
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
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#endif /* PF_RUNTIME_TEST_H */
