/*
 * log.h - volume-server's log: one line per event on standard error, with a
 * UTC timestamp and a level, filtered by LOG_LEVEL.
 *
 * Lines from different threads never interleave: each is formatted into a
 * local buffer and written with one call. Long lines are cut, not split.
 */
#ifndef VS_LOG_H
#define VS_LOG_H

#include <kvstore.h>

#include "config.h"

/* Sets the most verbose level written (enum vs_log_level). */
void vs_log_set_level(unsigned level);

/* True when a line of this level would be written: callers skip the work of
 * formatting a debug line when it would be dropped. */
int vs_log_enabled(unsigned level);

/* Writes one line (no trailing newline in fmt) at the given level. */
void vs_log(unsigned level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A kv_log_fn that passes the engine's lines to vs_log, marked "engine". */
void vs_log_engine(kv_log_level level, const char *msg, void *ctx);

#endif /* VS_LOG_H */
