/*
 * logging.h - diagnostic messages to the user's log callback (logging.c).
 * Not to be confused with the log the engine keeps its data in (segments).
 */
#ifndef KV_STORE_LOGGING_H
#define KV_STORE_LOGGING_H

#include "kvstore.h"

/* Formats one line and passes it to s's log callback when s has one and
 * level is within its log_level. s may be NULL (nothing is logged). errno is
 * the same after the call as before it, whatever the callback does; a
 * caller that needs errno still saves it before logging. */
void kv__log(const kv_store *s, kv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* kv__log for work done without a store (kv_backup_dir): through the log
 * callback of opts, which may be NULL. */
void kv__log_opts(const kv_options *opts, kv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* KV_STORE_LOGGING_H */
