/*
 * bloom.c - a cache-line-blocked bloom filter.
 *
 * A key's hash picks one 512-bit block, and k bits inside it by double
 * hashing. A lookup costs one cache miss at most, against k misses for a
 * classic filter; the price is a slightly higher false-positive rate at the
 * same size, which 12 bits per key keeps under 1 % at full load. The block
 * is chosen from the high half of the hash and the bits from a remix of it,
 * so the filter stays independent of the index, which uses the low half.
 */
#include "bloom.h"

#include <stdlib.h>
#include <string.h>

#include "kvstore.h"

#define BLOCK_BITS  512u
#define BLOCK_WORDS BLOOM_BLOCK_WORDS
_Static_assert(BLOCK_BITS == 64u * BLOOM_BLOCK_WORDS, "a block is 8 words");

size_t bloom_blocks_for(uint64_t capacity, unsigned bits_per_key, unsigned *k)
{
    *k = 0;
    if (bits_per_key == 0)
        return 0;
    if (capacity < 1024)
        capacity = 1024;
    /* k = bits_per_key * ln 2, the optimum for a classic filter. */
    unsigned kk = (bits_per_key * 69 + 50) / 100;
    *k = kk < 1 ? 1 : (kk > 16 ? 16 : kk);
    uint64_t bits = capacity * bits_per_key;
    return (size_t)((bits + BLOCK_BITS - 1) / BLOCK_BITS);
}

int bloom_init(struct bloom *b, uint64_t capacity, unsigned bits_per_key)
{
    memset(b, 0, sizeof(*b));
    if (bits_per_key == 0)
        return 0;
    unsigned k;
    size_t nblocks = bloom_blocks_for(capacity, bits_per_key, &k);
    b->blocks = aligned_alloc(64, nblocks * BLOCK_WORDS * sizeof(uint64_t));
    if (!b->blocks)
        return KV_ENOMEM;
    memset(b->blocks, 0, nblocks * BLOCK_WORDS * sizeof(uint64_t));
    b->nblocks = nblocks;
    b->k = k;
    b->capacity = capacity < 1024 ? 1024 : capacity;
    return 0;
}

void bloom_destroy(struct bloom *b)
{
    if (!b)
        return;
    free(b->blocks);
    memset(b, 0, sizeof(*b));
}

static uint64_t *block_of(const struct bloom *b, uint64_t hash)
{
    size_t i = (size_t)(((hash >> 32) * (uint64_t)b->nblocks) >> 32);
    return b->blocks + i * BLOCK_WORDS;
}

static uint64_t remix(uint64_t hash)
{
    hash ^= hash >> 33;
    hash *= 0xff51afd7ed558ccdULL;
    hash ^= hash >> 33;
    return hash;
}

void bloom_add(struct bloom *b, uint64_t hash)
{
    if (!b->blocks)
        return;
    uint64_t *block = block_of(b, hash);
    uint64_t g = remix(hash);
    uint32_t h1 = (uint32_t)g, h2 = (uint32_t)(g >> 32) | 1u;
    for (unsigned i = 0; i < b->k; i++) {
        uint32_t bit = (h1 + i * h2) % BLOCK_BITS;
        block[bit / 64] |= 1ULL << (bit % 64);
    }
    b->inserted++;
}

bool bloom_may_contain(const struct bloom *b, uint64_t hash)
{
    if (!b->blocks)
        return true;
    const uint64_t *block = block_of(b, hash);
    uint64_t g = remix(hash);
    uint32_t h1 = (uint32_t)g, h2 = (uint32_t)(g >> 32) | 1u;
    for (unsigned i = 0; i < b->k; i++) {
        uint32_t bit = (h1 + i * h2) % BLOCK_BITS;
        if (!(block[bit / 64] & (1ULL << (bit % 64))))
            return false;
    }
    return true;
}

void bloom_prefetch(const struct bloom *b, uint64_t hash)
{
    if (b->blocks)
        __builtin_prefetch(block_of(b, hash), 1);
}

bool bloom_is_full(const struct bloom *b)
{
    return b->blocks && b->inserted > b->capacity;
}

size_t bloom_memory(const struct bloom *b)
{
    return b->nblocks * BLOCK_WORDS * sizeof(uint64_t);
}
