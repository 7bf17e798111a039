/*
 * arena.c - the entries' arena: chunks of 8-byte units, entries packed with
 * no per-allocation header. An entry is its location (12 bytes), the key
 * length (2) and the key, rounded up to 8 bytes: a 16-byte key costs 32
 * bytes.
 *
 * References count 8-byte units: chunk number in the high bits, unit within
 * the chunk in the low ARENA_CHUNK_BITS. Unit 0 of chunk 0 is never handed
 * out, so that reference 0 means "none". Released entries are kept on a list
 * per size (in units), threaded through their first 4 bytes, and reused by
 * entries of the same size.
 */
#include "arena.h"

#include <sys/mman.h>

#include <stdlib.h>
#include <string.h>

#include "kvstore.h"

#define MAX_ENTRY_UNITS ((ARENA_ENTRY_HEAD + KV_MAX_KEY_LEN + 7) / 8)

_Static_assert(ARENA_ENTRY_HEAD == 14, "entry head is 14 bytes");
_Static_assert(MAX_ENTRY_UNITS < ARENA_CHUNK_UNITS, "an entry fits in a chunk");

static size_t entry_units(size_t key_len)
{
    return (ARENA_ENTRY_HEAD + key_len + 7) / 8;
}

/* On a virtual machine a page fault costs about a microsecond, and a
 * snapshot load writes tens of megabytes at once. */
void arena_prefault(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
    const size_t page = 4096;
    if (!p)
        return;
    size_t head = (page - (size_t)((uintptr_t)p % page)) % page;
    if (len <= head + page)
        return;
    madvise((char *)p + head, (len - head) / page * page, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)len;
#endif
}

int arena_init(struct arena *a)
{
    memset(a, 0, sizeof(*a));
    a->free_heads = calloc(MAX_ENTRY_UNITS + 1, sizeof(*a->free_heads));
    return a->free_heads ? 0 : KV_ENOMEM;
}

void arena_destroy(struct arena *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->nchunks; i++)
        free(a->chunks[i]);
    free(a->chunks);
    free(a->free_heads);
    memset(a, 0, sizeof(*a));
}

static void free_units(struct arena *a, uint32_t ref, size_t units)
{
    memcpy(arena_entry(a, ref), &a->free_heads[units], sizeof(uint32_t));
    a->free_heads[units] = ref;
}

void arena_release(struct arena *a, uint32_t ref)
{
    free_units(a, ref, entry_units(arena_entry(a, ref)->key_len));
}

static int new_chunk(struct arena *a)
{
    if (a->nchunks == ARENA_MAX_CHUNKS)
        return KV_ENOMEM;
    uint8_t **chunks = realloc(a->chunks, (a->nchunks + 1) * sizeof(*chunks));
    if (!chunks)
        return KV_ENOMEM;
    a->chunks = chunks;
    uint8_t *chunk = malloc((size_t)ARENA_CHUNK_UNITS * 8);
    arena_prefault(chunk, (size_t)ARENA_CHUNK_UNITS * 8);
    if (!chunk)
        return KV_ENOMEM;
    chunks[a->nchunks++] = chunk;
    a->bytes += (size_t)ARENA_CHUNK_UNITS * 8;
    a->chunk_used = a->nchunks == 1 ? 1 : 0;
    return 0;
}

/* Returns a reference to units free units, or 0 when memory runs out. */
static uint32_t alloc_units(struct arena *a, size_t units)
{
    uint32_t ref = a->free_heads[units];
    if (ref) {
        memcpy(&a->free_heads[units], arena_entry(a, ref), sizeof(uint32_t));
        return ref;
    }
    if (a->nchunks == 0 || a->chunk_used + units > ARENA_CHUNK_UNITS) {
        if (a->nchunks > 0 && a->chunk_used < ARENA_CHUNK_UNITS) {
            /* Keep the tail of the full chunk for entries of its size. */
            size_t rest = ARENA_CHUNK_UNITS - a->chunk_used;
            uint32_t tail = (uint32_t)(((a->nchunks - 1) << ARENA_CHUNK_BITS) | a->chunk_used);
            if (rest <= MAX_ENTRY_UNITS)
                free_units(a, tail, rest);
            a->chunk_used = ARENA_CHUNK_UNITS;
        }
        if (new_chunk(a) != 0)
            return 0;
    }
    ref = (uint32_t)(((a->nchunks - 1) << ARENA_CHUNK_BITS) | a->chunk_used);
    a->chunk_used += units;
    return ref;
}

uint32_t arena_new_entry(struct arena *a, const void *key, size_t key_len, const struct kv_loc *loc)
{
    uint32_t ref = alloc_units(a, entry_units(key_len));
    if (ref == 0)
        return 0;
    struct index_entry *e = arena_entry(a, ref);
    e->loc = *loc;
    e->key_len = (uint16_t)key_len;
    memcpy(e->key, key, key_len);
    return ref;
}

uint32_t arena_plan_next(struct arena_plan *p, size_t key_len)
{
    size_t units = entry_units(key_len);
    if (p->nchunks == 0) {
        p->nchunks = 1;
        p->used = 1;
    } else if (p->used + units > ARENA_CHUNK_UNITS) {
        p->nchunks++;
        p->used = 0;
    }
    if (p->nchunks > ARENA_MAX_CHUNKS)
        return 0;
    uint32_t ref = (uint32_t)(((p->nchunks - 1) << ARENA_CHUNK_BITS) | p->used);
    p->used += units;
    return ref;
}

uint32_t arena_append_entry(struct arena *a, const void *key, size_t key_len,
                            const struct kv_loc *loc)
{
    struct arena_plan plan = {.nchunks = a->nchunks, .used = a->chunk_used};
    uint32_t ref = arena_plan_next(&plan, key_len);
    if (ref == 0)
        return 0;
    if (plan.nchunks > a->nchunks && new_chunk(a) != 0)
        return 0;
    a->chunk_used = plan.used;
    struct index_entry *e = arena_entry(a, ref);
    e->loc = *loc;
    e->key_len = (uint16_t)key_len;
    memcpy(e->key, key, key_len);
    return ref;
}

size_t arena_memory(const struct arena *a)
{
    return a->bytes + (MAX_ENTRY_UNITS + 1) * sizeof(uint32_t) + a->nchunks * sizeof(uint8_t *);
}
