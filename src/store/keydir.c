/*
 * keydir.c - the keydir: the index and the bloom filter kept in step with the
 * log. Every change of a key's location goes through here, from the write
 * path, recovery and compaction alike, so that the live-byte count of each
 * segment and the filter always agree with the index. Also the walks over
 * the whole index: the filter rebuilds and compaction's scan of live
 * records.
 *
 * The filter is rebuilt with its hashes computed a batch ahead and their
 * blocks prefetched, so that its cache misses overlap (the index walk
 * prefetches the entries). A rebuild beside traffic (compaction) publishes
 * the new filter in bloom_next while it is filled, so that writers add the
 * keys they insert meanwhile to it too.
 */
#include "keydir.h"

#include <stdint.h>

#include "debug.h"
#include "bloom.h"
#include "index.h"
#include "record.h"
#include "rwlock.h"
#include "segment.h"
#include "store.h"

static void sub_live(kv_store *s, const struct kv_loc *loc, size_t key_len)
{
    struct segment *seg = kv__segtab_find(s, loc->seg);
    if (ALWAYS(seg))
        seg->live_bytes -= record_size(key_len, loc->val_len);
}

int kv__apply_set(kv_store *s, uint64_t hash, const void *key, size_t key_len,
                  const struct kv_loc *loc, const struct kv_attrs *attrs, bool *was_present)
{
    KV_ASSERT(kv__rwlock_held_write(&s->rwlock));
    struct kv_loc old;
    bool replaced = false;
    int rc = index_upsert(&s->index, hash, key, key_len, loc, attrs ? attrs->expire_at_ms : 0, &old,
                          &replaced);
    if (rc != 0)
        return rc;
    if (was_present)
        *was_present = replaced;
    if (replaced) {
        sub_live(s, &old, key_len);
    } else {
        bloom_add(&s->bloom, hash);
        if (s->bloom_next)
            bloom_add(s->bloom_next, hash);
    }
    struct segment *seg = kv__segtab_find(s, loc->seg);
    if (ALWAYS(seg))
        seg->live_bytes += record_size(key_len, loc->val_len);
    return 0;
}

void kv__apply_delete(kv_store *s, uint64_t hash, const void *key, size_t key_len)
{
    KV_ASSERT(kv__rwlock_held_write(&s->rwlock));
    struct kv_loc old;
    if (index_remove(&s->index, hash, key, key_len, &old) == 0)
        sub_live(s, &old, key_len);
}

/* Bloom rebuild: hashes are computed a batch ahead and their blocks
 * prefetched, so that the filter's cache misses overlap (and the index walk
 * prefetches the entries). */
struct bloom_fill {
    struct bloom *b;
    uint64_t hashes[32];
    size_t n;
};

static void bloom_fill_flush(struct bloom_fill *f)
{
    for (size_t i = 0; i < f->n; i++)
        bloom_add(f->b, f->hashes[i]);
    f->n = 0;
}

static int bloom_fill_visit(const struct index_entry *e, void *arg)
{
    struct bloom_fill *f = arg;
    f->hashes[f->n] = index_hash(e->key, e->key_len);
    bloom_prefetch(f->b, f->hashes[f->n++]);
    if (f->n == sizeof(f->hashes) / sizeof(f->hashes[0]))
        bloom_fill_flush(f);
    return 0;
}

static void bloom_fill_end_range(void *arg)
{
    bloom_fill_flush(arg);
}

int kv__rebuild_bloom(kv_store *s)
{
    KV_ASSERT(kv__rwlock_held_write(&s->rwlock));
    struct bloom fresh;
    uint64_t capacity = 2 * (uint64_t)s->index.count;
    int rc = bloom_init(&fresh, capacity, s->opts.bloom_bits_per_key);
    if (rc != 0)
        return rc;
    struct bloom_fill f = {.b = &fresh};
    index_walk_range(&s->index, 0, UINT32_MAX, bloom_fill_visit, &f);
    bloom_fill_flush(&f);
    fresh.inserted = s->index.count;
    bloom_destroy(&s->bloom);
    s->bloom = fresh;
    return 0;
}

/* Slots of the index one read-lock hold of a shared walk covers: tens of
 * microseconds. */
#define WALK_SLOTS 8192

int kv__walk_index_shared(kv_store *s, index_visit_fn fn, void (*end_range)(void *arg), void *arg)
{
    KV_ASSERT(!kv__rwlock_held(&s->rwlock));
    uint64_t lo = 0;
    while (lo <= UINT32_MAX) {
        kv__rdlock(&s->rwlock);
        uint64_t width = ((uint64_t)WALK_SLOTS << 32) / s->index.cap;
        uint64_t hi = lo + (width ? width : 1) - 1;
        if (hi > UINT32_MAX)
            hi = UINT32_MAX;
        int rc = index_walk_range(&s->index, (uint32_t)lo, (uint32_t)hi, fn, arg);
        if (end_range)
            end_range(arg);
        kv__unlock(&s->rwlock);
        if (rc != 0)
            return rc;
        lo = hi + 1;
    }
    return 0;
}

/* The new filter takes the keys of the walk, and writers add the keys they
 * insert meanwhile: a key inserted behind the walk is still in it, one
 * removed meanwhile is a false positive at worst. Only the walk (under the
 * read lock) and writers (under the write lock) touch it, never at once. */
int kv__rebuild_bloom_shared(kv_store *s)
{
    KV_ASSERT(!kv__rwlock_held(&s->rwlock));
    kv__rdlock(&s->rwlock);
    uint64_t capacity = 2 * (uint64_t)s->index.count;
    kv__unlock(&s->rwlock);
    struct bloom fresh;
    int rc = bloom_init(&fresh, capacity, s->opts.bloom_bits_per_key);
    if (rc != 0)
        return rc;
    kv__wrlock(&s->rwlock);
    s->bloom_next = &fresh; // cppcheck-suppress autoVariables ; reset below
    kv__unlock(&s->rwlock);
    struct bloom_fill f = {.b = &fresh};
    kv__walk_index_shared(s, bloom_fill_visit, bloom_fill_end_range, &f);
    struct bloom old;
    kv__wrlock(&s->rwlock);
    s->bloom_next = NULL;
    fresh.inserted = s->index.count;
    old = s->bloom;
    s->bloom = fresh;
    kv__unlock(&s->rwlock);
    bloom_destroy(&old);
    return 0;
}
