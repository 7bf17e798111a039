/*
 * recovery.h - rebuilding the index when a store opens (recovery.c).
 */
#ifndef KV_STORE_RECOVERY_H
#define KV_STORE_RECOVERY_H

#include "kvstore.h"

/* Builds the segment table from the directory, loads the snapshot when it is
 * valid and replays the log after it (all of it otherwise), cuts a torn tail
 * off the newest segment, and leaves an active segment to write to. Caller
 * holds no lock and is the only user of s. */
int kv__recover(kv_store *s);

#endif /* KV_STORE_RECOVERY_H */
