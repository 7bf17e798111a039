/*
 * expire.h - expiry beyond a PUT's own (expire.c): kv_set_expiry, and the
 * sweep that takes keys whose expiry has passed out of the index.
 */
#ifndef KV_STORE_EXPIRE_H
#define KV_STORE_EXPIRE_H

#include "kvstore.h"

/* Starts the background sweep (expiry_sweep_interval_ms > 0). */
int kv__start_sweeper(kv_store *s);

/* Stops it; no sweep starts afterwards. Safe when none was started. */
void kv__stop_sweeper(kv_store *s);

#endif /* KV_STORE_EXPIRE_H */
