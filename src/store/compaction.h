/*
 * compaction.h - rewriting the live records into new segments beside live
 * traffic (compaction.c), on demand (kv_compact) and from a background
 * thread when a trigger fires.
 */
#ifndef KV_STORE_COMPACTION_H
#define KV_STORE_COMPACTION_H

#include "kvstore.h"

/* Starts the background compactor (compaction_interval_secs > 0). */
int kv__start_compactor(kv_store *s);

/* One tick of the background compactor, run by the caller: compacts when the
 * trigger fires. Returns 0 when it did nothing too. Caller holds no lock. */
int kv__compact_if_worthwhile(kv_store *s);

/* Cancels a compaction in progress and stops the background compactor; no
 * compaction starts afterwards. Safe when none was started. */
void kv__stop_compactor(kv_store *s);

#endif /* KV_STORE_COMPACTION_H */
