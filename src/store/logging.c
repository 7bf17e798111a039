/*
 * logging.c - formats a diagnostic line and hands it to the user's log
 * callback. The library never writes to stdout or stderr itself.
 *
 * errno is saved before the callback runs and restored after it, so that a
 * caller that logs a failure and then maps errno to a return code gets the
 * failure's errno, whatever the callback did (callers save it first too).
 *
 * Also the one place that writes to stderr, in debug builds only: the report
 * of an invariant that does not hold (debug.h), just before the abort.
 */
#include "logging.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "debug.h"
#include "store.h"

__attribute__((format(printf, 3, 0))) static void log_line(const kv_options *o, kv_log_level level,
                                                           const char *fmt, va_list ap)
{
    if (!o || !o->log_fn || level > o->log_level)
        return;
    int saved = errno;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    o->log_fn(level, line, o->log_ctx);
    errno = saved;
}

void kv__log(const kv_store *s, kv_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(s ? &s->opts : NULL, level, fmt, ap);
    va_end(ap);
}

void kv__log_opts(const kv_options *opts, kv_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line(opts, level, fmt, ap);
    va_end(ap);
}

#ifdef KV_DEBUG
void kv__assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "kvstore: invariant does not hold: %s (%s:%d)\n", cond, file, line);
    abort();
}
#endif
