/*
 * logfiles.c - a run's log files (--log-path): the launcher's log and one
 * per instance, named as run_cpu names them, never overwriting a file.
 */
#include "launch/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* mkdir -p: the parents of a log dir are created too. */
static int make_dirs(const char *dir)
{
    if (!*dir)
        return -ENOENT;
    char *path = strdup(dir);
    if (!path)
        return -ENOMEM;
    int rc = 0;
    for (char *p = path + 1; rc == 0; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !end)
            continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            rc = -errno;
        if (end)
            break;
        *p = '/';
    }
    free(path);
    return rc;
}

static char *instance_log_name(const char *dir, const char *prefix, const char *stamp,
                               const pf_instance *in)
{
    char *cpus = NULL;
    if (pf_cpulist_format(in->cpus, in->ncpus, &cpus) < 0)
        return NULL;
    for (char *p = cpus; *p; p++)
        if (*p == ',')
            *p = '_';
    char *name =
        pf__strdupf("%s/%s_%s_instance_%d_cores_%s.log", dir, prefix, stamp, in->index, cpus);
    free(cpus);
    return name;
}

static int create(const char *name)
{
    int fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    return fd >= 0 ? fd : -errno;
}

/*
 * Every file of one stamp, or none: -EEXIST if one exists.  On a failure
 * the files this call made are removed (made with O_EXCL, they are ours and
 * empty; a file that was there is not touched), so that neither a name
 * clash nor EMFILE halfway through leaves stray empty files.
 */
static int open_stamp(const char *dir, const char *prefix, const char *stamp, const pf_plan *plan,
                      int *main_fd, char **main_name, int *fds, char **names)
{
    size_t made = 0;
    *main_name = pf__strdupf("%s/%s_%s_instances.log", dir, prefix, stamp);
    int rc = *main_fd = *main_name ? create(*main_name) : -ENOMEM;
    for (; rc >= 0 && made < plan->ninstances; made++) {
        names[made] = instance_log_name(dir, prefix, stamp, &plan->instances[made]);
        rc = fds[made] = names[made] ? create(names[made]) : -ENOMEM;
    }
    if (rc >= 0)
        return 0;
    for (size_t k = 0; k < made; k++) {
        if (fds[k] >= 0) {
            close(fds[k]);
            unlink(names[k]);
        }
        fds[k] = -1;
        free(names[k]);
        names[k] = NULL;
    }
    if (*main_fd >= 0) {
        close(*main_fd);
        unlink(*main_name);
    }
    *main_fd = -1;
    free(*main_name);
    *main_name = NULL;
    return rc;
}

int pf__logs_open(const char *dir, const char *prefix, const pf_plan *plan, int *main_fd,
                  char **main_name, int *fds, char **names, char **why)
{
    int rc = make_dirs(dir);
    if (rc < 0)
        return pf__fail(why, rc, "cannot create log directory %s: %s", dir, strerror(-rc));
    char base[32];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(base, sizeof base, "%Y%m%d%H%M%S", &tm);
    for (int attempt = 1; attempt < 1000; attempt++) {
        char stamp[48];
        if (attempt == 1)
            snprintf(stamp, sizeof stamp, "%s", base);
        else
            snprintf(stamp, sizeof stamp, "%s_%d", base, attempt);
        rc = open_stamp(dir, prefix, stamp, plan, main_fd, main_name, fds, names);
        if (rc == 0)
            return 0;
        if (rc != -EEXIST)
            return pf__fail(why, rc, "cannot create a log file in %s: %s", dir, strerror(-rc));
    }
    return pf__fail(why, -EEXIST, "cannot find a new log file name in %s", dir);
}
