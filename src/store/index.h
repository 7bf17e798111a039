/*
 * index.h - the in-memory index: every live key and where its newest record
 * lies. Entries live in an arena (arena.h); a hash table over them answers
 * lookups, and an ordered index (order.h) of the same entries answers reads
 * in key order. Every change goes through the functions here, which keep the
 * two in step. Not thread-safe: the store guards it with its rwlock.
 */
#ifndef KV_STORE_INDEX_H
#define KV_STORE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "expiry.h"
#include "order.h"

struct index_slot {
    uint32_t hash; /* low 32 bits of the key's hash */
    uint32_t ref;  /* the entry's place in the arena; 0 = empty slot */
};

struct index {
    struct index_slot *slots;
    size_t cap; /* slot count: any size, so that growth can be 1.5x */
    size_t count;
    struct arena arena;      /* the entries */
    struct order_tree order; /* the same entries in key order */
    /* The expiries of the entries flagged INDEX_OFF_EXPIRES, and only of
     * those: a key without an expiry pays no memory for it. */
    struct expiry_table expiries;
};

/*
 * An entry whose key has an expiry has this bit set in its loc.off (free:
 * a record starts below 2^31, segments being at most 2 GiB), and the
 * expiry in the index's side table (expiry.h). Read an entry's location
 * with index_entry_loc, which clears it.
 */
#define INDEX_OFF_EXPIRES 0x80000000u

static inline struct kv_loc index_entry_loc(const struct index_entry *e)
{
    struct kv_loc loc = e->loc;
    loc.off &= ~INDEX_OFF_EXPIRES;
    return loc;
}

/* The expiry of e's key (ms since the Unix epoch), or 0 when it has none. */
static inline uint64_t index_entry_expiry(const struct index *ix, const struct index_entry *e)
{
    return (e->loc.off & INDEX_OFF_EXPIRES) ? expiry_get(&ix->expiries, e) : 0;
}

/* Whether e's key has an expiry at or before now (it is absent then). */
static inline bool index_entry_expired(const struct index *ix, const struct index_entry *e,
                                       uint64_t now)
{
    uint64_t at = index_entry_expiry(ix, e);
    return at != 0 && at <= now;
}

uint64_t index_hash(const void *key, size_t key_len);

int index_init(struct index *ix);
void index_destroy(struct index *ix);

/* The entry of key, or NULL. */
struct index_entry *index_lookup(const struct index *ix, uint64_t hash, const void *key,
                                 size_t key_len);

/*
 * Points key at loc (whose off is below 2^31) with expiry expire_at_ms (0:
 * none, which clears one it had), adding it when absent (to both the hash
 * table and the ordered index). When it was present, *old (if not NULL)
 * receives the previous location and *replaced is set. On KV_ENOMEM the
 * index is unchanged.
 */
int index_upsert(struct index *ix, uint64_t hash, const void *key, size_t key_len,
                 const struct kv_loc *loc, uint64_t expire_at_ms, struct kv_loc *old,
                 bool *replaced);

/* Points e (an entry of the index) at loc, keeping its expiry: a record
 * moved by compaction. */
static inline void index_entry_move(struct index_entry *e, const struct kv_loc *loc)
{
    uint32_t flag = e->loc.off & INDEX_OFF_EXPIRES;
    e->loc = *loc;
    e->loc.off |= flag;
}

/*
 * A bulk load: keys that are expected to be new, arriving in about ascending
 * order of hash (a snapshot writes them so). Start with a zeroed struct
 * index_bulk on an empty index, after index_reserve_load, and change the
 * index only through index_insert_new until the load is done. Each key that
 * hashes higher than every one before it then takes its slot without a probe
 * (see bulk_slot in index.c); any other takes the ordinary probe, so any
 * order and any duplicate are still handled right, only slower. Entries are
 * appended to the arena as its plan says (arena_plan_next), so that their
 * references are known in advance.
 *
 * The keys go into the hash table only: the load ends with index_order_load
 * (the key order the snapshot recorded) or, failing that,
 * index_order_rebuild, before the index is used otherwise.
 */
struct index_bulk {
    uint32_t max_hash; /* highest hash inserted */
    size_t frontier;   /* highest slot used */
    bool any;          /* a key was inserted */
    bool off;          /* the quick path no longer holds: probe every key */
    size_t added;      /* entries the load made */
    uint64_t refs_sum; /* and a sum of their references, mixed */
};

/*
 * Adds key at loc with expiry expire_at_ms (0: none). When key is already
 * present, *present is set and the index is unchanged. On KV_ENOMEM the
 * index is unchanged.
 */
int index_insert_new(struct index *ix, struct index_bulk *b, uint64_t hash, const void *key,
                     size_t key_len, const struct kv_loc *loc, uint64_t expire_at_ms,
                     bool *present);

/*
 * Builds the ordered index from the references of every entry of the bulk
 * load b, in ascending key order (as the arena's plan names them), handed
 * over in pieces of any size: index_order_load_add for each piece, then
 * index_order_load_end, which returns 0, 1 when the references are not
 * those of the load's entries, each once (the ordered index is left empty),
 * or KV_ENOMEM. The check compares their number and a sum of their mixed
 * values, without a lookup per reference: a list that is not a permutation
 * of the entries passes it with a chance of about 2^-64.
 */
struct index_order_load {
    struct order_bulk bulk;
    size_t named;
    uint64_t refs_sum;
    bool out_of_range;
};
void index_order_load_begin(struct index *ix, struct index_order_load *l);
void index_order_load_add(struct index *ix, struct index_order_load *l, const uint32_t *refs,
                          size_t n);
int index_order_load_end(struct index *ix, struct index_order_load *l, const struct index_bulk *b);

/* Removes key from both; *old (if not NULL) receives its location. 0 or
 * KV_ENOTFOUND. */
int index_remove(struct index *ix, uint64_t hash, const void *key, size_t key_len,
                 struct kv_loc *old);

/* Starts loading the memory a lookup of hash will touch: call it for a batch
 * of keys, then look them up, so that their cache misses overlap. The slot
 * stage needs nothing; the entry stage reads the slot the first one loaded. */
void index_prefetch_slot(const struct index *ix, uint64_t hash);
void index_prefetch_entry(const struct index *ix, uint64_t hash);

/* Loads what an index_upsert of a new key will touch, ahead of it: its
 * slot, and the ordered index's path to where it would go (walked while the
 * slot loads, so that the two cache misses overlap), which with remember
 * the ordered index keeps for that upsert (order_prefetch). For a key that
 * is there, the walk was for nothing. Only reads what readers read, and
 * may run beside them, but one caller at a time (the kept path is
 * written). */
void index_prefetch_upsert(struct index *ix, uint64_t hash, const void *key, size_t key_len,
                           bool remember);

/* Makes room for n more keys, in the slot array and the ordered index,
 * without allocating while they are added; KV_ENOMEM on failure. */
int index_reserve(struct index *ix, size_t n);

/* Sizes the slot array for a bulk load of n keys (index_insert_new). */
int index_reserve_load(struct index *ix, size_t n);

/* Whether n more keys would need an allocation (index_reserve). */
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
typedef int (*index_entry_fn)(void *ctx, uint32_t ref, const struct index_entry *e);
int index_for_each_by_hash(const struct index *ix, index_entry_fn fn, void *ctx);

/* ---- the key order */

/* Builds the ordered index by sorting the keys: for a snapshot that did not
 * record their order. 0 or KV_ENOMEM (the ordered index is left empty). */
int index_order_rebuild(struct index *ix);

/* Calls fn for every entry in ascending key order, until fn returns
 * non-zero, which is returned. The entries are not read ahead: a caller
 * that only wants their references pays no cache miss for them. */
int index_for_each_in_order(const struct index *ix, index_entry_fn fn, void *ctx);

/* The entry of ref (from the ordered index). */
static inline const struct index_entry *index_entry_at(const struct index *ix, uint32_t ref)
{
    return arena_entry(&ix->arena, ref);
}

/* Bytes of memory the index holds (the side table of expiries included),
 * and of that the ordered index. */
size_t index_memory(const struct index *ix);
size_t index_order_memory(const struct index *ix);

#endif /* KV_STORE_INDEX_H */
