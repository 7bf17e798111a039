/*
 * rwlock.h - the store's reader-writer lock (rwlock.c), which guards the
 * index, the bloom filter, the segment table and the segments' live-byte
 * counts. Readers count themselves in per-thread shards, one cache line
 * each, so that readers on different cores never write the same line; both
 * sides spin briefly before sleeping. Its holders keep it for a lookup or a
 * batch of index updates, well under a microsecond, while waking a thread
 * that went to sleep costs tens of microseconds on a virtual machine.
 *
 * Not recursive: a thread that holds it, either way, must not take it again.
 */
#ifndef KV_STORE_RWLOCK_H
#define KV_STORE_RWLOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "debug.h"

/* Reader shards, and the cache line each takes (segments' pin counts use
 * the same shards). */
#define READER_SHARDS 8
#define CACHE_LINE    64

struct kv_shard_count {
    _Alignas(CACHE_LINE) atomic_uint n;
};

struct kv_rwlock {
    struct kv_shard_count *readers; /* READER_SHARDS counters */
    atomic_bool writer_active;
    atomic_uint readers_waiting;
    pthread_mutex_t writer_mu;
};

int kv__rwlock_init(struct kv_rwlock *l);
/* Accepts a lock whose init failed or that was destroyed already. */
void kv__rwlock_destroy(struct kv_rwlock *l);
void kv__rdlock(struct kv_rwlock *l);
void kv__wrlock(struct kv_rwlock *l);
/* Releases the hold of the calling thread, whichever it is. */
void kv__unlock(struct kv_rwlock *l);

/* The reader shard of the calling thread, 0 .. READER_SHARDS-1. */
unsigned kv__thread_shard(void);

#ifdef KV_DEBUG
/* Whether the calling thread holds l, either way, or for writing. Debug
 * builds keep a per-thread count of read holds for this; release builds
 * know only the writer (which kv__unlock needs anyway). */
bool kv__rwlock_held(const struct kv_rwlock *l);
bool kv__rwlock_held_write(const struct kv_rwlock *l);
#endif

#endif /* KV_STORE_RWLOCK_H */
