/*
 * index.h - the in-memory hash index: every live key and where its newest
 * record lies. Not thread-safe: the store guards it with its rwlock.
 */
#ifndef KV_STORE_INDEX_H
#define KV_STORE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where a record lies: segment, offset of its magic, and its value length. */
struct kv_loc {
    uint32_t seg;
    uint32_t off;
    uint32_t val_len;
};

/* One key's entry, stored in the index's arena: 14 bytes, then the key. */
struct index_entry {
    struct kv_loc loc;
    uint16_t key_len;
    uint8_t key[];
};

struct index_slot {
    uint32_t hash; /* low 32 bits of the key's hash */
    uint32_t ref;  /* the entry's place in the arena; 0 = empty slot */
};

struct index {
    struct index_slot *slots;
    size_t cap; /* slot count: any size, so that growth can be 1.5x */
    size_t count;
    /* The arena: chunks of 8-byte units; freed entries go to per-size lists. */
    uint8_t **chunks;
    size_t nchunks;
    size_t chunk_used;    /* units used in the last chunk */
    uint32_t *free_heads; /* by size in units; 0 = none */
    size_t arena_bytes;
};

uint64_t index_hash(const void *key, size_t key_len);

int index_init(struct index *ix);
void index_destroy(struct index *ix);

/* The entry of key, or NULL. */
struct index_entry *index_lookup(const struct index *ix, uint64_t hash, const void *key,
                                 size_t key_len);

/*
 * Points key at loc, adding it when absent. When it was present, *old (if not
 * NULL) receives the previous location and *replaced is set. On KV_ENOMEM the
 * index is unchanged.
 */
int index_upsert(struct index *ix, uint64_t hash, const void *key, size_t key_len,
                 const struct kv_loc *loc, struct kv_loc *old, bool *replaced);

/*
 * A bulk load: keys that are expected to be new, arriving in about ascending
 * order of hash (a snapshot writes them so). Start with a zeroed struct
 * index_bulk on an empty index, after index_reserve, and change the index
 * only through index_insert_new until the load is done. Each key that hashes
 * higher than every one before it then takes its slot without a probe (see
 * bulk_slot in index.c); any other takes the ordinary probe, so any order and
 * any duplicate are still handled right, only slower.
 */
struct index_bulk {
    uint32_t max_hash; /* highest hash inserted */
    size_t frontier;   /* highest slot used */
    bool any;          /* a key was inserted */
    bool off;          /* the quick path no longer holds: probe every key */
};

/*
 * Adds key at loc. When key is already present, *present is set and the
 * index is unchanged. On KV_ENOMEM the index is unchanged.
 */
int index_insert_new(struct index *ix, struct index_bulk *b, uint64_t hash, const void *key,
                     size_t key_len, const struct kv_loc *loc, bool *present);

/* Removes key; *old (if not NULL) receives its location. 0 or KV_ENOTFOUND. */
int index_remove(struct index *ix, uint64_t hash, const void *key, size_t key_len,
                 struct kv_loc *old);

/* Starts loading the memory a lookup of hash will touch: call it for a batch
 * of keys, then look them up, so that their cache misses overlap. The slot
 * stage needs nothing; the entry stage reads the slot the first one loaded. */
void index_prefetch_slot(const struct index *ix, uint64_t hash);
void index_prefetch_entry(const struct index *ix, uint64_t hash);

/* Makes room for n more keys without reallocating; KV_ENOMEM on failure. */
int index_reserve(struct index *ix, size_t n);

/* Whether n more keys would make the slot array grow. */
bool index_needs_room(const struct index *ix, size_t n);

/*
 * Walk by hash range: calls fn(entry, arg) for every entry whose slot hash
 * (the low 32 bits of its key's hash) lies in [lo, hi], and stops at fn's
 * first non-zero return, which it returns; 0 when all were visited.
 *
 * Unlike index_next, a walk made of ranges that cover [0, 2^32) visits every
 * key that stays in the index throughout exactly once even when the index
 * changes between two ranges (insertions, removals, growth): a key belongs
 * to the range of its hash wherever its slot moves. fn must not change the
 * index. Time is about the slots the range covers: (hi - lo + 1) * cap / 2^32
 * plus one probe run.
 */
typedef int (*index_visit_fn)(const struct index_entry *e, void *arg);
int index_walk_range(const struct index *ix, uint32_t lo, uint32_t hi, index_visit_fn fn,
                     void *arg);

/* Iteration: start *cursor at 0; returns the next entry or NULL at the end.
 * The index must not change during an iteration. */
struct index_entry *index_next(const struct index *ix, size_t *cursor);

/* Calls fn for every entry, in about ascending order of hash (the order
 * index_insert_new's bulk load is quick with), until fn returns non-zero,
 * which is returned; KV_ENOMEM when memory runs out. The index must not
 * change meanwhile. */
typedef int (*index_entry_fn)(void *ctx, const struct index_entry *e);
int index_for_each_by_hash(const struct index *ix, index_entry_fn fn, void *ctx);

/* Bytes of memory the index holds. */
size_t index_memory(const struct index *ix);

#endif /* KV_STORE_INDEX_H */
