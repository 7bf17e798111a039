/*
 * recovery.h - rebuilding the index when a store opens (recovery.c).
 */
#ifndef KV_STORE_RECOVERY_H
#define KV_STORE_RECOVERY_H

#include <stdint.h>

#include "kvstore.h"

/* Builds the segment table from the directory, loads the snapshot when it is
 * valid and replays the log after it (all of it otherwise), cuts a torn tail
 * off the newest segment, and leaves an active segment to write to. Caller
 * holds no lock and is the only user of s. */
int kv__recover(kv_store *s);

struct segment;

/* Applies the records in [start, end) of seg, just written and synced, to
 * the index and the metadata table as replay does (kv_log_append). A
 * record that does not check out is KV_ECORRUPT. Caller holds append_mu
 * and the rwlock for writing. */
int kv__replay_range(kv_store *s, struct segment *seg, uint64_t start, uint64_t end);

#endif /* KV_STORE_RECOVERY_H */
