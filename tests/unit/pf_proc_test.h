/*
 * pf_proc_test.h - what the process tests share: the CPUs this test may
 * use (chosen from its affinity mask, never assumed), reading a child's
 * /proc status, and waiting for a pid with a deadline.
 */
#ifndef PF_PROC_TEST_H
#define PF_PROC_TEST_H

#include "pf_test.h"

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The CPUs this process may use, ascending, in ids[0..*n) (at most max). */
static inline void allowed_cpus(int *ids, size_t max, size_t *n)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    *n = 0;
    for (int c = 0; c < CPU_SETSIZE && *n < max; c++)
        if (CPU_ISSET(c, &set))
            ids[(*n)++] = c;
    assert_true(*n >= 1);
}

/* The value of field `name` in /proc/<pid>/status (a static buffer), or NULL. */
static inline const char *proc_status_field(int pid, const char *name)
{
    static char value[1024];
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    const char *found = NULL;
    size_t len = strlen(name);
    while (!found && fgets(line, sizeof line, f))
        if (strncmp(line, name, len) == 0 && line[len] == ':') {
            const char *v = line + len + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(value, sizeof value, "%s", v);
            value[strcspn(value, "\n")] = '\0';
            found = value;
        }
    fclose(f);
    return found;
}

static inline double test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* waitpid with a deadline: the wait status, or -1 on timeout (the child is then killed). */
static inline int wait_for(int pid, int timeout_ms)
{
    double end = test_now_ms() + timeout_ms;
    int status = 0;
    while (test_now_ms() < end) {
        int got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            return status;
        assert_true(got == 0);
        usleep(2000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Is pid alive (not a zombie, not gone)? */
static inline bool process_alive(int pid)
{
    const char *state = proc_status_field(pid, "State");
    return state && state[0] != 'Z' && state[0] != 'X';
}

#endif /* PF_PROC_TEST_H */
