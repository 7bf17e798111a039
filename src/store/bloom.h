/*
 * bloom.h - a blocked bloom filter over key hashes, consulted before the
 * index so that most lookups of absent keys touch one cache line. Never a
 * false negative. Not thread-safe: the store guards it with its rwlock.
 */
#ifndef KV_STORE_BLOOM_H
#define KV_STORE_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bloom {
    uint64_t *blocks; /* nblocks blocks of 8 words (one 64-byte cache line each) */
    size_t nblocks;
    unsigned k;        /* bits set per key */
    uint64_t capacity; /* keys it is sized for */
    uint64_t inserted; /* keys added since it was built */
};

/* Sizes the filter for capacity keys at bits_per_key. bits_per_key 0 gives an
 * empty filter that answers "maybe" to everything. */
int bloom_init(struct bloom *b, uint64_t capacity, unsigned bits_per_key);
/* The blocks and k that bloom_init(capacity, bits_per_key) gives, without
 * allocating them. */
size_t bloom_blocks_for(uint64_t capacity, unsigned bits_per_key, unsigned *k);

/* Bytes in one block: the unit of the filter's bit array (b->blocks holds
 * nblocks * BLOOM_BLOCK_WORDS words). */
#define BLOOM_BLOCK_WORDS 8u
void bloom_destroy(struct bloom *b);

void bloom_add(struct bloom *b, uint64_t hash);
bool bloom_may_contain(const struct bloom *b, uint64_t hash);

/* Starts loading the block hash maps to (for batched adds or lookups). */
void bloom_prefetch(const struct bloom *b, uint64_t hash);

/* True when more keys were added than it was sized for: time to rebuild. */
bool bloom_is_full(const struct bloom *b);

size_t bloom_memory(const struct bloom *b);

#endif /* KV_STORE_BLOOM_H */
