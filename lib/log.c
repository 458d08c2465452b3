/* Single-write log records; over-long records are cut and marked, never split. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_RECORD_MAX 4096

static enum log_level min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};
static int timestamps;

void log_set_timestamps(int on)
{
    timestamps = on;
}

void log_set_level(enum log_level level)
{
    min_level = level;
}

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && strcasecmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    int saved_errno = errno; /* callers often log and then inspect errno */
    char buf[LOG_RECORD_MAX];
    int n = 0;
    if (timestamps) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = (int)strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ".%03ldZ ", ts.tv_nsec / 1000000);
    }
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s: ", level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len >= sizeof(buf) - 1) {
        static const char mark[] = "...[truncated]";
        len = sizeof(buf) - 1;
        memcpy(buf + len - (sizeof(mark) - 1), mark, sizeof(mark) - 1);
    }
    /* Newlines inside a record would forge extra records downstream. */
    for (size_t i = (size_t)n; i < len; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = ' ';
    buf[len++] = '\n';
    ssize_t w;
    do
        w = write(STDERR_FILENO, buf, len);
    while (w < 0 && errno == EINTR);
    errno = saved_errno;
}
