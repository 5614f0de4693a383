/*
 * program.c - which file a command name runs, with execvp's rules, decided
 * once before anything starts: a missing program is one clear error, not
 * one per instance, and the child never searches (it only calls execve).
 */
#include "base/util.h"

#include "pinfer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 0 when `file` is an executable regular file, else -ENOENT / -EACCES / -EISDIR. */
static int check_executable(const char *file)
{
    struct stat st;
    if (stat(file, &st) != 0)
        return errno == ENOENT || errno == ENOTDIR ? -ENOENT : -errno;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    return access(file, X_OK) == 0 && S_ISREG(st.st_mode) ? 0 : -EACCES;
}

/* The program named with its path: it must be executable as it is. */
static int take_as_given(const char *name, char **file)
{
    int rc = *name ? check_executable(name) : -ENOENT;
    if (rc == 0 && !(*file = strdup(name)))
        rc = -ENOMEM;
    return rc;
}

/*
 * The first executable file called `name` on path_list; a file found but
 * not executable is reported only if nothing better comes later.
 */
static int search_list(const char *path_list, const char *name, char **file)
{
    int rc = -ENOENT;
    for (const char *p = path_list; rc != 0 && rc != -ENOMEM;) {
        size_t len = strcspn(p, ":");
        char *candidate = pf__strdupf("%.*s%s%s", (int)len, p, len ? "/" : "", name);
        int found = candidate ? check_executable(candidate) : -ENOMEM;
        if (found == 0 || found == -ENOMEM)
            rc = found;
        else if (found != -ENOENT && found != -EISDIR)
            rc = found; /* not executable: remember */
        if (found == 0)
            *file = candidate;
        else
            free(candidate);
        if (!p[len])
            break;
        p += len + 1;
    }
    return rc;
}

int pf_find_program(const char *name, const char *path_list, char **path)
{
    if (!name || !path)
        return -EINVAL;
    if (strchr(name, '/'))
        return take_as_given(name, path);
    if (!*name)
        return -ENOENT;
    if (!path_list)
        path_list = getenv("PATH");
    if (!path_list)
        path_list = "/usr/local/bin:/usr/bin:/bin"; /* execvp's default, near enough */
    return search_list(path_list, name, path);
}
