/* log.c - the library's messages: a level, a line, a sink the caller chooses. */
#include "launch/launch.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *pf_log_level_name(pf_log_level level)
{
    switch (level) {
    case PF_LOG_ERROR: return "error";
    case PF_LOG_WARNING: return "warning";
    default: return "info";
    }
}

char *pf__log_console_line(pf_log_level level, const char *text)
{
    char *printable = pf_printable(text);
    char *line =
        printable ? pf__strdupf("pinfer: %s: %s\n", pf_log_level_name(level), printable) : NULL;
    free(printable);
    return line;
}

void pf_log_stderr(void *ctx, pf_log_level level, const char *text)
{
    (void)ctx;
    char *line = pf__log_console_line(level, text);
    if (line)
        pf__write_all(STDERR_FILENO, line, strlen(line));
    free(line);
}

void pf__logf(pf_log_fn fn, void *ctx, pf_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = pf__vstrdupf(fmt, ap);
    va_end(ap);
    if (text)
        (fn ? fn : pf_log_stderr)(ctx, level, text);
    free(text);
}

char *pf__log_file_line(pf_log_level level, const char *text)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
    char *console = pf__log_console_line(level, text);
    char *line = console ? pf__strdupf("%s.%03ld %s", stamp, ts.tv_nsec / 1000000L, console) : NULL;
    free(console);
    return line;
}
