/*
 * log.c - writes volume-server's log lines to standard error.
 *
 * The level is the one piece of process-wide state here: it is set once at
 * start, before any thread exists, and read with relaxed atomics after.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static atomic_uint log_level = VS_LOG_INFO;

void vs_log_set_level(unsigned level)
{
    atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

int vs_log_enabled(unsigned level)
{
    return level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* Writes "2025-01-02T03:04:05.678Z level " into buf; returns its length. */
static size_t format_prefix(unsigned level, char *buf, size_t buf_len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, buf_len, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(buf + n, buf_len - n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000L,
                     config_log_level_name(level));
    return m > 0 && (size_t)m < buf_len - n ? n + (size_t)m : n;
}

/* Makes the line safe for a terminal and a log collector: one line, no
 * control characters (a request path may carry them). */
static void sanitize(char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            s[i] = '?';
    }
}

void vs_log(unsigned level, const char *fmt, ...)
{
    if (!vs_log_enabled(level))
        return;
    char line[LOG_LINE_MAX];
    size_t n = format_prefix(level, line, sizeof(line));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t body = (size_t)m < sizeof(line) - n - 1 ? (size_t)m : sizeof(line) - n - 2;
    sanitize(line + n, body);
    n += body;
    line[n++] = '\n';
    /* One write per line, so that lines of concurrent threads stay whole. A
     * failed write to stderr has nowhere to be reported. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void vs_log_engine(kv_log_level level, const char *msg, void *ctx)
{
    (void)ctx;
    unsigned l = VS_LOG_DEBUG;
    switch (level) {
    case KV_LOG_ERROR:
        l = VS_LOG_ERROR;
        break;
    case KV_LOG_WARN:
        l = VS_LOG_WARN;
        break;
    case KV_LOG_INFO:
        l = VS_LOG_INFO;
        break;
    case KV_LOG_DEBUG:
        l = VS_LOG_DEBUG;
        break;
    }
    vs_log(l, "engine: %s", msg);
}
