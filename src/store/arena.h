/*
 * arena.h - the index entries' arena (arena.c): every live key, with where
 * its newest record lies, packed in chunks of 8-byte units and addressed by
 * a stable 32-bit reference. Both indexes hold references, not pointers: the
 * hash index's slots (index.c) and the ordered index's nodes (order.c). An
 * entry never moves while it lives, so a reference stays valid until the
 * entry is released. Not thread-safe: the store guards it with its rwlock.
 */
#ifndef KV_STORE_ARENA_H
#define KV_STORE_ARENA_H

#include <stddef.h>
#include <stdint.h>

/* Where a record lies: segment, offset of its magic, and its value length. */
struct kv_loc {
    uint32_t seg;
    uint32_t off;
    uint32_t val_len;
};

/* One key's entry: 14 bytes, then the key. */
struct index_entry {
    struct kv_loc loc;
    uint16_t key_len;
    uint8_t key[];
};

#define ARENA_CHUNK_BITS  17u /* 2^17 units of 8 bytes: 1 MiB chunks */
#define ARENA_CHUNK_UNITS (1u << ARENA_CHUNK_BITS)
#define ARENA_MAX_CHUNKS  (1u << (32 - ARENA_CHUNK_BITS))
#define ARENA_ENTRY_HEAD  offsetof(struct index_entry, key)

struct arena {
    uint8_t **chunks;
    size_t nchunks;
    size_t chunk_used;    /* units used in the last chunk */
    uint32_t *free_heads; /* freed entries by size in units; 0 = none */
    size_t bytes;         /* in chunks */
};

int arena_init(struct arena *a);
void arena_destroy(struct arena *a);

/* The entry at ref (never 0: reference 0 means "none" everywhere). */
static inline struct index_entry *arena_entry(const struct arena *a, uint32_t ref)
{
    uint8_t *chunk = a->chunks[ref >> ARENA_CHUNK_BITS];
    return (struct index_entry *)(void *)(chunk + (size_t)(ref & (ARENA_CHUNK_UNITS - 1)) * 8);
}

/* A new entry holding key at loc; its reference, or 0 when memory runs
 * out. */
uint32_t arena_new_entry(struct arena *a, const void *key, size_t key_len,
                         const struct kv_loc *loc);

/*
 * The plan of a bulk load: the reference each entry gets when entries are
 * only appended to a fresh arena, in the order they come: an entry of u
 * units (ARENA_ENTRY_HEAD + key_len bytes, rounded up to 8) starts where the
 * one before ended, unit 1 of chunk 0 for the first, and at unit 0 of the
 * next chunk when the rest of a chunk is too short for it. The snapshot's
 * writer follows the plan to name the entries a load will make, and the
 * load follows it (arena_append_entry). Start from a zeroed plan.
 */
struct arena_plan {
    size_t nchunks;
    size_t used; /* units used in the last chunk */
};
uint32_t arena_plan_next(struct arena_plan *p, size_t key_len);

/* Appends an entry where the plan puts it: only on an arena that has never
 * had an entry released. 0 when memory runs out. */
uint32_t arena_append_entry(struct arena *a, const void *key, size_t key_len,
                            const struct kv_loc *loc);

/* Units the arena spans: every reference is below this. */
static inline size_t arena_units(const struct arena *a)
{
    return a->nchunks << ARENA_CHUNK_BITS;
}

/* Releases the entry at ref for reuse by an entry of its size. */
void arena_release(struct arena *a, uint32_t ref);

/* Maps the pages of a large fresh allocation in one call where the kernel
 * offers it, rather than one page fault per page as it is first written. A
 * hint: failure changes nothing. */
void arena_prefault(void *p, size_t len);

/* Bytes of memory the arena holds. */
size_t arena_memory(const struct arena *a);

#endif /* KV_STORE_ARENA_H */
