/*
 * logend.h - the end of the durable log, published for readers of the log
 * (logend.c): the write path moves it after every sync and rotation, and
 * kv_log_wait sleeps until it passes a position.
 */
#ifndef KV_STORE_LOGEND_H
#define KV_STORE_LOGEND_H

#include <stdbool.h>
#include <stdint.h>

#include "kvstore.h"

/* Sets the end at the active segment's synced length, once recovery has
 * run. KV_ENOMEM. */
int kv__logend_init(kv_store *s);

/* Releases what kv__logend_init made; safe on a store without it. */
void kv__logend_free(kv_store *s);

/* The durable log now ends at off in segment seg: wakes the waiters. Called
 * with append_mu held, by the write path after each sync and rotation. */
void kv__logend_publish(kv_store *s, uint32_t seg, uint64_t off);

/* The published end. */
kv_log_pos kv__logend_get(kv_store *s);

/*
 * Whether pos is the end of a segment that a compaction sealed when it
 * began (one of the last few): its last input. A reader that stands there
 * has every record the compaction read, so it may go on from the next
 * segment on disk even once that input is gone: the outputs hold copies of
 * records it has, and the writes after them follow.
 */
bool kv__logend_at_seal(kv_store *s, const kv_log_pos *pos);

/* Waits until the end passes pos, at most timeout_ms. */
void kv__logend_wait(kv_store *s, const kv_log_pos *pos, uint32_t timeout_ms);

#endif /* KV_STORE_LOGEND_H */
