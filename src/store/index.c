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
 * The entries live in the arena (arena.c); the ordered index (order.c) holds
 * the same references in key order, and every insertion and removal here
 * changes both, so that they always hold the same keys.
 *
 * A snapshot load is the one time millions of keys arrive at once, and it
 * has its own path: keys that arrive in ascending order of hash take their
 * slot without a probe (index_insert_new), and the snapshot is written in
 * that order (index_for_each_by_hash). The key order comes after them, as
 * the reference each entry got (the arena's plan says which, in advance) in
 * ascending key order, so that the ordered index is built at once, without
 * a sort or a lookup (index_order_load_add).
 */
#include "index.h"

#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "kvstore.h"

#define MIN_SLOTS 1024u
/* Grow past 80 % load, by half. */
#define MAX_LOAD_NUM 4u
#define MAX_LOAD_DEN 5u

_Static_assert(sizeof(struct index_slot) == 8, "slots are 8 bytes");

uint64_t index_hash(const void *key, size_t key_len)
{
    return XXH3_64bits(key, key_len);
}

static struct index_entry *arena_entry_of(const struct index *ix, uint32_t ref)
{
    return arena_entry(&ix->arena, ref);
}

int index_init(struct index *ix)
{
    memset(ix, 0, sizeof(*ix));
    ix->slots = calloc(MIN_SLOTS, sizeof(*ix->slots));
    if (!ix->slots || arena_init(&ix->arena) != 0 || order_init(&ix->order) != 0) {
        free(ix->slots);
        arena_destroy(&ix->arena);
        return KV_ENOMEM;
    }
    ix->cap = MIN_SLOTS;
    return 0;
}

void index_destroy(struct index *ix)
{
    if (!ix)
        return;
    free(ix->slots);
    arena_destroy(&ix->arena);
    order_destroy(&ix->order);
    expiry_destroy(&ix->expiries);
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
        if (sl->hash == h && entry_matches(arena_entry_of(ix, sl->ref), key, key_len))
            return i;
        i = next_slot(i, ix->cap);
    }
}

struct index_entry *index_lookup(const struct index *ix, uint64_t hash, const void *key,
                                 size_t key_len)
{
    size_t i = find_slot(ix, (uint32_t)hash, key, key_len);
    return ix->slots[i].ref ? arena_entry_of(ix, ix->slots[i].ref) : NULL;
}

void index_prefetch_slot(const struct index *ix, uint64_t hash)
{
    __builtin_prefetch(&ix->slots[home_of((uint32_t)hash, ix->cap)]);
}

void index_prefetch_entry(const struct index *ix, uint64_t hash)
{
    const struct index_slot *sl = &ix->slots[home_of((uint32_t)hash, ix->cap)];
    if (sl->ref && sl->hash == (uint32_t)hash)
        __builtin_prefetch(arena_entry_of(ix, sl->ref));
}

void index_prefetch_upsert(struct index *ix, uint64_t hash, const void *key, size_t key_len,
                           bool remember)
{
    index_prefetch_slot(ix, hash);
    order_prefetch(&ix->order, &ix->arena, key, key_len, remember);
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
    arena_prefault(ns, ncap * sizeof(*ns));
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
    return over_load(ix->count + n, ix->cap) || order_needs_room(&ix->order, n);
}

int index_reserve_load(struct index *ix, size_t n)
{
    return grow_for(ix, n);
}

int index_reserve(struct index *ix, size_t n)
{
    int rc = grow_for(ix, n);
    return rc != 0 ? rc : order_reserve(&ix->order, n);
}

/* Gives e the expiry at (0: none), its flag and its place in the side
 * table, which has room (expiry_reserve). */
static void entry_set_expiry(struct index *ix, struct index_entry *e, uint64_t at)
{
    if (at == 0) {
        if (e->loc.off & INDEX_OFF_EXPIRES)
            expiry_remove(&ix->expiries, e);
        e->loc.off &= ~INDEX_OFF_EXPIRES;
        return;
    }
    int rc = expiry_set(&ix->expiries, e, at);
    (void)rc; /* cannot fail: room was reserved */
    e->loc.off |= INDEX_OFF_EXPIRES;
}

int index_upsert(struct index *ix, uint64_t hash, const void *key, size_t key_len,
                 const struct kv_loc *loc, uint64_t expire_at_ms, struct kv_loc *old,
                 bool *replaced)
{
    uint32_t h = (uint32_t)hash;
    if (expire_at_ms != 0 && expiry_reserve(&ix->expiries, 1) != 0)
        return KV_ENOMEM;
    size_t i = find_slot(ix, h, key, key_len);
    if (ix->slots[i].ref) {
        struct index_entry *e = arena_entry_of(ix, ix->slots[i].ref);
        if (old)
            *old = index_entry_loc(e);
        uint32_t flag = e->loc.off & INDEX_OFF_EXPIRES;
        e->loc = *loc;
        e->loc.off |= flag;
        entry_set_expiry(ix, e, expire_at_ms);
        if (replaced)
            *replaced = true;
        return 0;
    }
    if (grow_for(ix, 1) != 0 || order_reserve(&ix->order, 1) != 0)
        return KV_ENOMEM;
    uint32_t ref = arena_new_entry(&ix->arena, key, key_len, loc);
    if (ref == 0)
        return KV_ENOMEM;
    entry_set_expiry(ix, arena_entry_of(ix, ref), expire_at_ms);
    i = find_slot(ix, h, key, key_len); /* the array may have grown */
    ix->slots[i].hash = h;
    ix->slots[i].ref = ref;
    ix->count++;
    order_insert(&ix->order, &ix->arena, ref);
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

/* A mixed, non-linear function of a reference: sums of it tell two lists
 * of references apart (one multiply, so that a million cost nothing to
 * speak of). */
static uint64_t ref_mix(uint32_t ref)
{
    uint64_t x = (ref + 0x9e3779b97f4a7c15ULL) * 0xbf58476d1ce4e5b9ULL;
    return x ^ (x >> 29);
}

int index_insert_new(struct index *ix, struct index_bulk *b, uint64_t hash, const void *key,
                     size_t key_len, const struct kv_loc *loc, uint64_t expire_at_ms, bool *present)
{
    size_t cap = ix->cap;
    /* Growing first means the slot found below stays valid. */
    if (grow_for(ix, 1) != 0)
        return KV_ENOMEM;
    if (expire_at_ms != 0 && expiry_reserve(&ix->expiries, 1) != 0)
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
    uint32_t ref = arena_append_entry(&ix->arena, key, key_len, loc);
    if (ref == 0)
        return KV_ENOMEM;
    entry_set_expiry(ix, arena_entry_of(ix, ref), expire_at_ms);
    b->added++;
    b->refs_sum += ref_mix(ref);
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
            rc = fn(ctx, run[j].ref, arena_entry_of(ix, run[j].ref));
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
    uint32_t ref = ix->slots[i].ref;
    struct index_entry *e = arena_entry_of(ix, ref);
    if (old)
        *old = index_entry_loc(e);
    /* An entry kept as a separator keeps its flag, never read again. */
    if (e->loc.off & INDEX_OFF_EXPIRES)
        expiry_remove(&ix->expiries, e);
    /* A key the ordered index keeps as a separator keeps its entry. */
    if (!order_remove(&ix->order, &ix->arena, ref))
        arena_release(&ix->arena, ref);
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
            __builtin_prefetch(arena_entry_of(ix, pf->ref));
        if (sl->ref == 0 && k >= span)
            break; /* past home_of(hi) and the end of its run */
        if (sl->ref && sl->hash >= lo && sl->hash <= hi) {
            int rc = fn(arena_entry_of(ix, sl->ref), arg);
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
            return arena_entry_of(ix, ix->slots[i].ref);
        }
    }
    *cursor = ix->cap;
    return NULL;
}

size_t index_memory(const struct index *ix)
{
    return ix->cap * sizeof(struct index_slot) + arena_memory(&ix->arena) +
           order_memory(&ix->order) + expiry_memory(&ix->expiries);
}

size_t index_order_memory(const struct index *ix)
{
    return order_memory(&ix->order);
}

/* ---- the key order after a bulk load */

void index_order_load_begin(struct index *ix, struct index_order_load *l)
{
    memset(l, 0, sizeof(*l));
    order_destroy(&ix->order);
    order_init(&ix->order);
    order_bulk_begin(&ix->order, &l->bulk);
}

void index_order_load_add(struct index *ix, struct index_order_load *l, const uint32_t *refs,
                          size_t n)
{
    size_t units = arena_units(&ix->arena);
    for (size_t i = 0; i < n; i++) {
        l->out_of_range |= refs[i] == 0 || refs[i] >= units;
        l->refs_sum += ref_mix(refs[i]);
    }
    l->named += n;
    if (!l->out_of_range)
        order_bulk_add(&ix->order, &l->bulk, refs, n);
}

int index_order_load_end(struct index *ix, struct index_order_load *l, const struct index_bulk *b)
{
    bool same = !l->out_of_range && l->named == b->added && l->refs_sum == b->refs_sum &&
                b->added == ix->count;
    int rc = order_bulk_end(&ix->order, &l->bulk);
    if (rc == 0 && !same)
        rc = 1;
    if (rc != 0) {
        order_destroy(&ix->order);
        order_init(&ix->order);
    }
    memset(l, 0, sizeof(*l));
    return rc;
}

static int entry_cmp(const struct index_entry *x, const struct index_entry *y)
{
    int c = memcmp(x->key, y->key, x->key_len < y->key_len ? x->key_len : y->key_len);
    return c != 0 ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Sorts refs[0, n) by key: a merge sort through tmp (n places). */
static void sort_refs(const struct index *ix, uint32_t *refs, uint32_t *tmp, size_t n)
{
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = entry_cmp(arena_entry_of(ix, refs[j]), arena_entry_of(ix, refs[i])) < 0
                               ? refs[j++]
                               : refs[i++];
            while (i < mid)
                tmp[k++] = refs[i++];
            while (j < hi)
                tmp[k++] = refs[j++];
        }
        memcpy(refs, tmp, n * sizeof(*refs));
    }
}

int index_order_rebuild(struct index *ix)
{
    order_destroy(&ix->order);
    order_init(&ix->order);
    size_t n = ix->count;
    uint32_t *refs = malloc((n ? n : 1) * sizeof(*refs));
    uint32_t *tmp = malloc((n ? n : 1) * sizeof(*tmp));
    int rc = refs && tmp ? 0 : KV_ENOMEM;
    if (rc == 0) {
        size_t k = 0;
        for (size_t i = 0; i < ix->cap && k < n; i++)
            if (ix->slots[i].ref)
                refs[k++] = ix->slots[i].ref;
        sort_refs(ix, refs, tmp, k);
        struct order_bulk b;
        order_bulk_begin(&ix->order, &b);
        order_bulk_add(&ix->order, &b, refs, k);
        rc = order_bulk_end(&ix->order, &b);
    }
    free(refs);
    free(tmp);
    return rc;
}

int index_for_each_in_order(const struct index *ix, index_entry_fn fn, void *ctx)
{
    struct order_cursor c;
    order_seek(&c, &ix->order, &ix->arena, NULL, 0, false);
    uint32_t ref;
    int rc = 0;
    while (rc == 0 && (ref = order_next(&c)) != 0)
        rc = fn(ctx, ref, arena_entry_of(ix, ref));
    return rc;
}
