/*
 * keydir.h - the index and the bloom filter kept in step with the log
 * (keydir.c): the one place where a key's location changes, and the walks
 * over the whole index.
 */
#ifndef KV_STORE_KEYDIR_H
#define KV_STORE_KEYDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "kvstore.h"

/* What a set record (SET, SETX) says of its key besides where it lies: the
 * attributes the index keeps. Compression needs none: a read finds it in
 * the record. */
struct kv_attrs {
    uint64_t expire_at_ms; /* absolute, ms since the Unix epoch; 0 = none */
};

/* Points key at loc (a SET or SETX record) with attrs (NULL: none), adding
 * it to the filter when new, and moves its bytes between the segments' live
 * counts. *was_present (if not NULL) tells whether the key was there.
 * KV_ENOMEM leaves everything as it was. Caller holds the rwlock for
 * writing. */
int kv__apply_set(kv_store *s, uint64_t hash, const void *key, size_t key_len,
                  const struct kv_loc *loc, const struct kv_attrs *attrs, bool *was_present);

/* Removes key (a DELETE record); a key that is absent is no error. Caller
 * holds the rwlock for writing. */
void kv__apply_delete(kv_store *s, uint64_t hash, const void *key, size_t key_len);

/* Rebuilds the bloom filter from the index; caller holds the rwlock for
 * writing. */
int kv__rebuild_bloom(kv_store *s);

/* The same, holding the rwlock only for pieces of the index walk and for the
 * swap, so that reads and writes go on; caller holds no lock (compaction). */
int kv__rebuild_bloom_shared(kv_store *s);

/* Calls fn for every entry of the index, a range of hashes per read-lock
 * hold, so that writers go on between ranges; a key that stays in the index
 * throughout is visited exactly once (index_walk_range). end_range(arg), if
 * not NULL, runs before each release of the lock. Stops at fn's first
 * non-zero return, which it returns. Caller holds no lock. */
int kv__walk_index_shared(kv_store *s, index_visit_fn fn, void (*end_range)(void *arg), void *arg);

#endif /* KV_STORE_KEYDIR_H */
