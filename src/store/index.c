/*
 * index.c - the hash index: open addressing with linear probing over 8-byte
 * slots, and key entries packed in an arena.
 *
 * Memory per key is what users of a Bitcask design care about most, since
 * every key lives in RAM. A slot holds 32 bits of the key's hash and a 32-bit
 * reference into the arena, so probing compares hashes without touching the
 * entries, and most lookups of absent keys never leave the slot array. An
 * entry is its location (12 bytes), the key length (2) and the key, rounded
 * up to 8 bytes, with no per-allocation header: a 16-byte key costs 32 bytes
 * of arena plus its share of the slots. The slot array may have any size (a
 * hash maps to its home slot by multiply-shift, not by a mask), so it grows
 * by half, not by doubling, and stays between 53 % and 80 % full: about 12
 * bytes of slots per key instead of 16 on average. Deletion shifts following
 * entries back (no tombstones), so probe sequences stay short after many
 * deletes.
 *
 * Arena references count 8-byte units: chunk number in the high bits, unit
 * within the chunk in the low ARENA_CHUNK_BITS. Freed entries are kept on a
 * list per size (in units) and reused by entries of the same size.
 *
 * A snapshot load is the one time millions of keys arrive at once, and it
 * has its own path: keys that arrive in ascending order of hash take their
 * slot without a probe (index_insert_new), and the snapshot is written in
 * that order (index_for_each_by_hash).
 */
#include "index.h"

#include <sys/mman.h>

#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "kvstore.h"

#define ARENA_CHUNK_BITS  17u /* 2^17 units of 8 bytes: 1 MiB chunks */
#define ARENA_CHUNK_UNITS (1u << ARENA_CHUNK_BITS)
#define ARENA_MAX_CHUNKS  (1u << (32 - ARENA_CHUNK_BITS))
#define ENTRY_HEAD_LEN    offsetof(struct index_entry, key)
#define MAX_ENTRY_UNITS   ((ENTRY_HEAD_LEN + KV_MAX_KEY_LEN + 7) / 8)
#define MIN_SLOTS         1024u
/* Grow past 80 % load, by half. */
#define MAX_LOAD_NUM 4u
#define MAX_LOAD_DEN 5u

_Static_assert(sizeof(struct index_slot) == 8, "slots are 8 bytes");
_Static_assert(offsetof(struct index_entry, key) == 14, "entry head is 14 bytes");
_Static_assert(MAX_ENTRY_UNITS < ARENA_CHUNK_UNITS, "an entry fits in a chunk");

uint64_t index_hash(const void *key, size_t key_len)
{
    return XXH3_64bits(key, key_len);
}

static size_t entry_units(size_t key_len)
{
    return (ENTRY_HEAD_LEN + key_len + 7) / 8;
}

/* Maps the pages of a large fresh allocation in one call, where the kernel
 * offers it, rather than one page fault per page as it is first written: on
 * a virtual machine a fault costs about a microsecond, and a snapshot load
 * writes tens of megabytes at once. A hint: failure changes nothing. */
static void prefault(void *p, size_t len)
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

static struct index_entry *arena_entry(const struct index *ix, uint32_t ref)
{
    uint8_t *chunk = ix->chunks[ref >> ARENA_CHUNK_BITS];
    return (struct index_entry *)(void *)(chunk + (size_t)(ref & (ARENA_CHUNK_UNITS - 1)) * 8);
}

static void arena_free(struct index *ix, uint32_t ref, size_t units)
{
    struct index_entry *e = arena_entry(ix, ref);
    memcpy(e, &ix->free_heads[units], sizeof(uint32_t));
    ix->free_heads[units] = ref;
}

static int arena_new_chunk(struct index *ix)
{
    if (ix->nchunks == ARENA_MAX_CHUNKS)
        return KV_ENOMEM;
    uint8_t **chunks = realloc(ix->chunks, (ix->nchunks + 1) * sizeof(*chunks));
    if (!chunks)
        return KV_ENOMEM;
    ix->chunks = chunks;
    uint8_t *chunk = malloc((size_t)ARENA_CHUNK_UNITS * 8);
    prefault(chunk, (size_t)ARENA_CHUNK_UNITS * 8);
    if (!chunk)
        return KV_ENOMEM;
    chunks[ix->nchunks++] = chunk;
    ix->arena_bytes += (size_t)ARENA_CHUNK_UNITS * 8;
    /* Unit 0 of chunk 0 is never handed out: reference 0 means "empty". */
    ix->chunk_used = ix->nchunks == 1 ? 1 : 0;
    return 0;
}

/* Returns a reference to units free units, or 0 when memory runs out. */
static uint32_t arena_alloc(struct index *ix, size_t units)
{
    uint32_t ref = ix->free_heads[units];
    if (ref) {
        memcpy(&ix->free_heads[units], arena_entry(ix, ref), sizeof(uint32_t));
        return ref;
    }
    if (ix->nchunks == 0 || ix->chunk_used + units > ARENA_CHUNK_UNITS) {
        if (ix->nchunks > 0 && ix->chunk_used < ARENA_CHUNK_UNITS) {
            /* Keep the tail of the full chunk for entries of its size. */
            size_t rest = ARENA_CHUNK_UNITS - ix->chunk_used;
            uint32_t tail = (uint32_t)(((ix->nchunks - 1) << ARENA_CHUNK_BITS) | ix->chunk_used);
            if (rest <= MAX_ENTRY_UNITS)
                arena_free(ix, tail, rest);
            ix->chunk_used = ARENA_CHUNK_UNITS;
        }
        if (arena_new_chunk(ix) != 0)
            return 0;
    }
    ref = (uint32_t)(((ix->nchunks - 1) << ARENA_CHUNK_BITS) | ix->chunk_used);
    ix->chunk_used += units;
    return ref;
}

int index_init(struct index *ix)
{
    memset(ix, 0, sizeof(*ix));
    ix->slots = calloc(MIN_SLOTS, sizeof(*ix->slots));
    ix->free_heads = calloc(MAX_ENTRY_UNITS + 1, sizeof(*ix->free_heads));
    if (!ix->slots || !ix->free_heads) {
        free(ix->slots);
        free(ix->free_heads);
        return KV_ENOMEM;
    }
    ix->cap = MIN_SLOTS;
    return 0;
}

void index_destroy(struct index *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->nchunks; i++)
        free(ix->chunks[i]);
    free(ix->chunks);
    free(ix->slots);
    free(ix->free_heads);
    memset(ix, 0, sizeof(*ix));
}

static bool entry_matches(const struct index_entry *e, const void *key, size_t key_len)
{
    return e->key_len == key_len && memcmp(e->key, key, key_len) == 0;
}

static size_t home_of(uint32_t h, size_t cap)
{
    return (size_t)(((uint64_t)h * cap) >> 32);
}

static size_t next_slot(size_t i, size_t cap)
{
    return i + 1 == cap ? 0 : i + 1;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find_slot(const struct index *ix, uint32_t h, const void *key, size_t key_len)
{
    size_t i = home_of(h, ix->cap);
    for (;;) {
        const struct index_slot *sl = &ix->slots[i];
        if (sl->ref == 0)
            return i;
        if (sl->hash == h && entry_matches(arena_entry(ix, sl->ref), key, key_len))
            return i;
        i = next_slot(i, ix->cap);
    }
}

struct index_entry *index_lookup(const struct index *ix, uint64_t hash, const void *key,
                                 size_t key_len)
{
    size_t i = find_slot(ix, (uint32_t)hash, key, key_len);
    return ix->slots[i].ref ? arena_entry(ix, ix->slots[i].ref) : NULL;
}

void index_prefetch_slot(const struct index *ix, uint64_t hash)
{
    __builtin_prefetch(&ix->slots[home_of((uint32_t)hash, ix->cap)]);
}

void index_prefetch_entry(const struct index *ix, uint64_t hash)
{
    const struct index_slot *sl = &ix->slots[home_of((uint32_t)hash, ix->cap)];
    if (sl->ref && sl->hash == (uint32_t)hash)
        __builtin_prefetch(arena_entry(ix, sl->ref));
}

static bool over_load(size_t count, size_t cap)
{
    return count * MAX_LOAD_DEN > cap * MAX_LOAD_NUM;
}

/* Grows the slot array so that count + extra keys stay under the maximum
 * load. */
static int grow_for(struct index *ix, size_t extra)
{
    size_t need = ix->count + extra;
    if (!over_load(need, ix->cap))
        return 0;
    size_t ncap = ix->cap;
    while (over_load(need, ncap)) {
        if (ncap > SIZE_MAX / 3 / sizeof(struct index_slot))
            return KV_ENOMEM;
        ncap += ncap / 2;
    }
    if (ncap > ((size_t)1 << 32))
        return KV_ENOMEM; /* homes come from 32 bits of hash */
    struct index_slot *ns = calloc(ncap, sizeof(*ns));
    prefault(ns, ncap * sizeof(*ns));
    if (!ns)
        return KV_ENOMEM;
    for (size_t i = 0; i < ix->cap; i++) {
        struct index_slot sl = ix->slots[i];
        if (sl.ref == 0)
            continue;
        size_t j = home_of(sl.hash, ncap);
        while (ns[j].ref != 0)
            j = next_slot(j, ncap);
        ns[j] = sl;
    }
    free(ix->slots);
    ix->slots = ns;
    ix->cap = ncap;
    return 0;
}

bool index_needs_room(const struct index *ix, size_t n)
{
    return over_load(ix->count + n, ix->cap);
}

int index_reserve(struct index *ix, size_t n)
{
    return grow_for(ix, n);
}

/* An arena entry holding key at loc; its reference, or 0 out of memory. */
static uint32_t new_entry(struct index *ix, const void *key, size_t key_len,
                          const struct kv_loc *loc)
{
    uint32_t ref = arena_alloc(ix, entry_units(key_len));
    if (ref == 0)
        return 0;
    struct index_entry *e = arena_entry(ix, ref);
    e->loc = *loc;
    e->key_len = (uint16_t)key_len;
    memcpy(e->key, key, key_len);
    return ref;
}

int index_upsert(struct index *ix, uint64_t hash, const void *key, size_t key_len,
                 const struct kv_loc *loc, struct kv_loc *old, bool *replaced)
{
    uint32_t h = (uint32_t)hash;
    size_t i = find_slot(ix, h, key, key_len);
    if (ix->slots[i].ref) {
        struct index_entry *e = arena_entry(ix, ix->slots[i].ref);
        if (old)
            *old = e->loc;
        e->loc = *loc;
        if (replaced)
            *replaced = true;
        return 0;
    }
    if (grow_for(ix, 1) != 0)
        return KV_ENOMEM;
    uint32_t ref = new_entry(ix, key, key_len, loc);
    if (ref == 0)
        return KV_ENOMEM;
    i = find_slot(ix, h, key, key_len); /* the array may have grown */
    ix->slots[i].hash = h;
    ix->slots[i].ref = ref;
    ix->count++;
    if (replaced)
        *replaced = false;
    return 0;
}

/* Where a key of home slot home goes on the quick path of a bulk load, or
 * SIZE_MAX when only a probe can say. The quick path holds while every key
 * inserted so far has a lower hash (so none is this key, and none has a later
 * home) and none wrapped past the end of the array: then every occupied slot
 * lies at or before the frontier, the highest one used, and every slot from
 * this key's home to the frontier is occupied (a key at the frontier fills
 * the run from its own home, which is not after this one's). The first free
 * slot from home on is therefore the one after the frontier, or home. */
static size_t bulk_slot(const struct index *ix, const struct index_bulk *b, uint32_t h, size_t home)
{
    if (b->off || (b->any && h <= b->max_hash))
        return SIZE_MAX;
    size_t at = b->any && home <= b->frontier ? b->frontier + 1 : home;
    return at < ix->cap ? at : SIZE_MAX;
}

int index_insert_new(struct index *ix, struct index_bulk *b, uint64_t hash, const void *key,
                     size_t key_len, const struct kv_loc *loc, bool *present)
{
    size_t cap = ix->cap;
    /* Growing first means the slot found below stays valid. */
    if (grow_for(ix, 1) != 0)
        return KV_ENOMEM;
    /* The hints describe this load's keys in this array only. */
    if (ix->cap != cap || (!b->any && ix->count > 0))
        b->off = true;
    uint32_t h = (uint32_t)hash;
    size_t home = home_of(h, ix->cap);
    size_t i = bulk_slot(ix, b, h, home);
    if (i == SIZE_MAX) {
        i = find_slot(ix, h, key, key_len);
        *present = ix->slots[i].ref != 0;
        if (*present)
            return 0;
    }
    *present = false;
    uint32_t ref = new_entry(ix, key, key_len, loc);
    if (ref == 0)
        return KV_ENOMEM;
    ix->slots[i].hash = h;
    ix->slots[i].ref = ref;
    ix->count++;
    if (i < home)
        b->off = true; /* the probe wrapped past the end */
    if (!b->any || i > b->frontier)
        b->frontier = i;
    if (!b->any || h > b->max_hash)
        b->max_hash = h;
    b->any = true;
    return 0;
}

static int slot_cmp(const void *a, const void *b)
{
    uint32_t x = ((const struct index_slot *)a)->hash, y = ((const struct index_slot *)b)->hash;
    return (x > y) - (x < y);
}

/* Sorts a run of slots by hash: insertion sort for the short runs of a table
 * at most 80 % full, qsort for a long one. */
static void sort_run(struct index_slot *run, size_t n)
{
    if (n > 16) {
        qsort(run, n, sizeof(*run), slot_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        struct index_slot x = run[i];
        size_t j = i;
        for (; j > 0 && run[j - 1].hash > x.hash; j--)
            run[j] = run[j - 1];
        run[j] = x;
    }
}

/*
 * A key's home lies in the run of occupied slots (cluster) that holds it, so
 * walking the clusters in slot order and each one sorted gives ascending
 * hashes; starting after an empty slot means no cluster is cut by the end of
 * the array, and only the keys whose home precedes that slot come out of
 * order (at the end).
 */
int index_for_each_by_hash(const struct index *ix, index_entry_fn fn, void *ctx)
{
    size_t start = 0;
    while (start < ix->cap && ix->slots[start].ref)
        start++;
    if (start == ix->cap)
        start = 0; /* cannot happen below the maximum load */
    struct index_slot *run = NULL;
    size_t n = 0, run_cap = 0;
    int rc = 0;
    for (size_t k = 1; rc == 0 && k <= ix->cap; k++) {
        size_t i = start + k < ix->cap ? start + k : start + k - ix->cap;
        if (ix->slots[i].ref) {
            if (n == run_cap) {
                size_t ncap = run_cap ? 2 * run_cap : 64;
                struct index_slot *grown = realloc(run, ncap * sizeof(*run));
                if (!grown) {
                    rc = KV_ENOMEM;
                    break;
                }
                run = grown;
                run_cap = ncap;
            }
            run[n++] = ix->slots[i];
            if (k < ix->cap)
                continue;
        }
        sort_run(run, n);
        for (size_t j = 0; rc == 0 && j < n; j++)
            rc = fn(ctx, arena_entry(ix, run[j].ref));
        n = 0;
    }
    free(run);
    return rc;
}

int index_remove(struct index *ix, uint64_t hash, const void *key, size_t key_len,
                 struct kv_loc *old)
{
    size_t i = find_slot(ix, (uint32_t)hash, key, key_len);
    if (ix->slots[i].ref == 0)
        return KV_ENOTFOUND;
    struct index_entry *e = arena_entry(ix, ix->slots[i].ref);
    if (old)
        *old = e->loc;
    arena_free(ix, ix->slots[i].ref, entry_units(e->key_len));
    ix->count--;
    /* Backward-shift deletion: move a later member of the run into the hole
     * unless its home lies after the hole (cyclically, up to itself): moving
     * it would put it before its home, where lookups never look. */
    size_t hole = i;
    size_t j = i;
    for (;;) {
        j = next_slot(j, ix->cap);
        if (ix->slots[j].ref == 0)
            break;
        size_t home = home_of(ix->slots[j].hash, ix->cap);
        size_t to_home = (home + ix->cap - hole) % ix->cap;
        size_t to_j = (j + ix->cap - hole) % ix->cap;
        bool stays = to_home >= 1 && to_home <= to_j;
        if (stays)
            continue;
        ix->slots[hole] = ix->slots[j];
        hole = j;
    }
    ix->slots[hole].ref = 0;
    ix->slots[hole].hash = 0;
    return 0;
}

/*
 * Linear probing keeps every entry in the run of occupied slots that starts
 * at its home, and home_of is monotone in the hash: so the entries with a
 * hash in [lo, hi] lie in slots from home_of(lo) up to the first empty slot
 * after home_of(hi), cyclically (a run may wrap past the last slot). Other
 * hashes met on the way are skipped.
 */
int index_walk_range(const struct index *ix, uint32_t lo, uint32_t hi, index_visit_fn fn, void *arg)
{
    enum { AHEAD = 16 }; /* entries prefetched ahead of the visit */
    size_t first = home_of(lo, ix->cap);
    size_t span = home_of(hi, ix->cap) - first + 1;
    size_t i = first, ahead = first;
    for (size_t k = 0; k < AHEAD; k++)
        ahead = next_slot(ahead, ix->cap);
    for (size_t k = 0; k < ix->cap; k++) {
        const struct index_slot *sl = &ix->slots[i];
        const struct index_slot *pf = &ix->slots[ahead];
        if (pf->ref && pf->hash >= lo && pf->hash <= hi)
            __builtin_prefetch(arena_entry(ix, pf->ref));
        if (sl->ref == 0 && k >= span)
            break; /* past home_of(hi) and the end of its run */
        if (sl->ref && sl->hash >= lo && sl->hash <= hi) {
            int rc = fn(arena_entry(ix, sl->ref), arg);
            if (rc != 0)
                return rc;
        }
        i = next_slot(i, ix->cap);
        ahead = next_slot(ahead, ix->cap);
    }
    return 0;
}

struct index_entry *index_next(const struct index *ix, size_t *cursor)
{
    for (size_t i = *cursor; i < ix->cap; i++) {
        if (ix->slots[i].ref) {
            *cursor = i + 1;
            return arena_entry(ix, ix->slots[i].ref);
        }
    }
    *cursor = ix->cap;
    return NULL;
}

size_t index_memory(const struct index *ix)
{
    return ix->cap * sizeof(struct index_slot) + ix->arena_bytes +
           (MAX_ENTRY_UNITS + 1) * sizeof(uint32_t) + ix->nchunks * sizeof(uint8_t *);
}
