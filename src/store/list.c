/*
 * list.c - kv_range and kv_list: keys (and values) in byte order from the
 * ordered index, between bounds, with a prefix, a page at a time.
 *
 * A page is taken under one hold of the read lock: the cursor is placed
 * (O(log n)), and the keys that follow are copied out, with their records
 * pinned when values are wanted, up to KV_RANGE_PAGE keys or about 1 MiB.
 * The lock is released before the values are read and the callback runs,
 * so a slow callback holds up no writer. The next page starts after the
 * last key of the one before, found again from the root: the tree may have
 * changed in between.
 *
 * kv_key_at turns a key's position (its record's place in the log) back
 * into the key, so that a listing resumes after it from a number alone.
 */
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "read.h"
#include "rwlock.h"
#include "store.h"

#define PAGE_BYTES (1u << 20)
/* Entries read ahead of the one examined, so that their misses overlap. */
#define AHEAD 16

struct item {
    size_t key_off;
    uint16_t key_len;
    struct read_at at; /* pinned when values are read */
};

struct page {
    uint8_t *keys;
    size_t keys_len, keys_cap;
    struct item *items;
    size_t n, cap;
    bool last; /* the range ends with this page */
};

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return (alen > blen) - (alen < blen);
}

static bool has_prefix(const struct index_entry *e, const kv_range_opts *r)
{
    return e->key_len >= r->prefix_len && memcmp(e->key, r->prefix, r->prefix_len) == 0;
}

/* Whether e lies past the range: beyond its end, or after the keys with its
 * prefix (which all come together). */
static bool past_range(const struct index_entry *e, const kv_range_opts *r)
{
    if (r->prefix_len && !has_prefix(e, r))
        return true;
    return r->end_len && key_cmp(e->key, e->key_len, r->end, r->end_len) >= 0;
}

static int page_add_key(struct page *pg, const struct index_entry *e)
{
    if (pg->n == pg->cap) {
        size_t ncap = pg->cap ? 2 * pg->cap : 64;
        struct item *grown = realloc(pg->items, ncap * sizeof(*grown));
        if (!grown)
            return KV_ENOMEM;
        pg->items = grown;
        pg->cap = ncap;
    }
    if (!pg->keys || pg->keys_cap - pg->keys_len < e->key_len) {
        size_t ncap = pg->keys_cap ? 2 * pg->keys_cap : 4096;
        while (ncap - pg->keys_len < e->key_len)
            ncap *= 2;
        uint8_t *grown = realloc(pg->keys, ncap);
        if (!grown)
            return KV_ENOMEM;
        pg->keys = grown;
        pg->keys_cap = ncap;
    }
    memcpy(pg->keys + pg->keys_len, e->key, e->key_len);
    pg->items[pg->n] = (struct item){.key_off = pg->keys_len, .key_len = e->key_len};
    pg->keys_len += e->key_len;
    return 0;
}

/* Copies up to want keys from the cursor into pg, pinning their records
 * when values are wanted. Caller holds the read lock. */
static int fill_page(kv_store *s, const kv_range_opts *r, struct order_cursor *c, size_t want,
                     struct page *pg)
{
    const struct index *ix = &s->index;
    bool values = r->flags & KV_RANGE_VALUES;
    uint32_t refs[AHEAD];
    size_t bytes = 0;
    uint64_t now = kv__now_ms(s);
    while (pg->n < want && bytes < PAGE_BYTES) {
        size_t got = 0;
        while (got < AHEAD && got < want - pg->n && (refs[got] = order_next(c)) != 0)
            __builtin_prefetch(index_entry_at(ix, refs[got++]));
        if (got == 0) {
            pg->last = true;
            return 0;
        }
        for (size_t i = 0; i < got; i++) {
            const struct index_entry *e = index_entry_at(ix, refs[i]);
            if (past_range(e, r)) {
                pg->last = true;
                return 0;
            }
            if (index_entry_expired(ix, e, now))
                continue; /* absent: not listed, not counted in the limit */
            int rc = page_add_key(pg, e);
            struct read_at *at = &pg->items[pg->n].at;
            struct kv_loc loc = index_entry_loc(e);
            if (rc == 0 && values && (rc = kv__locate_loc(s, &loc, at)) == 0)
                rc = kv__read_begin(s, at, e->key_len);
            if (rc != 0)
                return rc;
            pg->n++;
            bytes += e->key_len + (values ? e->loc.val_len : 0);
            /* A page that ends early leaves the rest for the next one. */
            if (bytes >= PAGE_BYTES && i + 1 < got)
                return 0; /* the cursor moved past refs[i + 1...]: refetched */
        }
    }
    return 0;
}

/* Hands the page's keys (and values) to fn, ending every pinned read; with
 * rc not 0 (the page failed), only ends them. */
static int deliver(kv_store *s, const kv_range_opts *r, struct page *pg, kv_entry_fn fn, void *ctx,
                   int rc)
{
    bool values = r->flags & KV_RANGE_VALUES;
    for (size_t i = 0; i < pg->n; i++) {
        struct item *it = &pg->items[i];
        const uint8_t *key = pg->keys + it->key_off;
        if (rc == 0 && !values) {
            rc = fn(key, it->key_len, NULL, 0, ctx);
        } else if (rc == 0) {
            uint8_t *val = NULL;
            size_t val_len = 0;
            rc = kv__read_value(s, &it->at, key, it->key_len, &val, &val_len, NULL);
            if (rc == 0)
                rc = fn(key, it->key_len, val, val_len, ctx);
            else if (rc == KV_ENOTFOUND)
                rc = 0; /* expired since it was written: absent, as for kv_get */
            free(val);
        }
        if (values)
            kv__read_end(s, &it->at);
    }
    return rc;
}

static bool opts_valid(const kv_range_opts *r)
{
    return (r->start || !r->start_len) && (r->end || !r->end_len) &&
           (r->prefix || !r->prefix_len) && !(r->flags & ~(KV_RANGE_AFTER | KV_RANGE_VALUES));
}

int kv_range(kv_store *s, const kv_range_opts *r, kv_entry_fn fn, void *ctx)
{
    if (!s || !r || !fn || !opts_valid(r))
        return KV_EINVAL;
    /* Where the first page starts: the start, or the prefix when every key
     * with it comes after the start. */
    const uint8_t *from = r->start;
    size_t from_len = r->start_len;
    bool after = r->flags & KV_RANGE_AFTER;
    if (r->prefix_len &&
        (r->start_len == 0 || key_cmp(r->prefix, r->prefix_len, r->start, r->start_len) > 0)) {
        from = r->prefix;
        from_len = r->prefix_len;
        after = false;
    }
    struct page pg = {0};
    uint8_t *last = NULL; /* the previous page's last key */
    size_t left = r->limit ? r->limit : SIZE_MAX;
    int rc = 0;
    while (rc == 0 && left > 0) {
        size_t want = left < KV_RANGE_PAGE ? left : KV_RANGE_PAGE;
        pg.n = 0;
        pg.keys_len = 0;
        pg.last = false;
        kv__rdlock(&s->rwlock);
        struct order_cursor c;
        order_seek(&c, &s->index.order, &s->index.arena, from, from_len, after);
        rc = fill_page(s, r, &c, want, &pg);
        kv__unlock(&s->rwlock);
        rc = deliver(s, r, &pg, fn, ctx, rc);
        if (rc != 0 || pg.last || pg.n == 0)
            break;
        left -= pg.n;
        /* The next page starts after this one's last key. */
        const struct item *it = &pg.items[pg.n - 1];
        uint8_t *copy = malloc(it->key_len);
        if (!copy) {
            rc = KV_ENOMEM;
            break;
        }
        memcpy(copy, pg.keys + it->key_off, it->key_len);
        free(last);
        last = copy;
        from = last;
        from_len = it->key_len;
        after = true;
    }
    free(last);
    free(pg.keys);
    free(pg.items);
    return rc;
}

/* kv_list's callback, under kv_range's. */
struct list_ctx {
    kv_key_fn fn;
    void *ctx;
};

static int list_entry(const void *key, size_t key_len, const void *val, size_t val_len, void *ctx)
{
    (void)val;
    (void)val_len;
    const struct list_ctx *l = ctx;
    return l->fn(key, key_len, l->ctx);
}

int kv_list(kv_store *s, const void *prefix, size_t prefix_len, const void *after, size_t after_len,
            size_t limit, kv_key_fn fn, void *ctx)
{
    if (!s || !fn || (prefix_len && !prefix) || (after_len && !after))
        return KV_EINVAL;
    kv_range_opts r = {.start = after,
                       .start_len = after_len,
                       .prefix = prefix,
                       .prefix_len = prefix_len,
                       .limit = limit,
                       .flags = KV_RANGE_AFTER};
    struct list_ctx l = {.fn = fn, .ctx = ctx};
    return kv_range(s, &r, list_entry, &l);
}

int kv_key_at(kv_store *s, uint64_t position, void **key, size_t *key_len)
{
    if (!s || !key || !key_len || position >> 63)
        return KV_EINVAL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = kv__read_key_at(s, position, &buf, &len);
    if (rc == 0) {
        *key = buf;
        *key_len = len;
    }
    return rc;
}
