/*
 * list.c - kv_list: keys in sorted order, with a prefix, a start-after key
 * and a limit (what `list` and paged listings need).
 *
 * The index is a hash table, so order costs a pass over it. With a limit L
 * the pass keeps only the L smallest qualifying keys in a max-heap, so a page
 * costs O(n log L) time and O(L) memory, not a sort of the whole store. The
 * keys are copied out under the read lock and the callback runs without it.
 */
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "rwlock.h"
#include "store.h"

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return (alen > blen) - (alen < blen);
}

static int entry_cmp(const struct index_entry *a, const struct index_entry *b)
{
    return key_cmp(a->key, a->key_len, b->key, b->key_len);
}

static int entry_qsort_cmp(const void *a, const void *b)
{
    return entry_cmp(*(const struct index_entry *const *)a, *(const struct index_entry *const *)b);
}

/* Max-heap on key order, so heap[0] is the largest key kept. */
static void sift_down(const struct index_entry **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && entry_cmp(h[l], h[m]) > 0)
            m = l;
        if (r < n && entry_cmp(h[r], h[m]) > 0)
            m = r;
        if (m == i)
            return;
        const struct index_entry *t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(const struct index_entry **h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (entry_cmp(h[i], h[p]) <= 0)
            return;
        const struct index_entry *t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

struct selection {
    const struct index_entry **items;
    size_t n, cap, limit;
};

static int select_add(struct selection *sel, const struct index_entry *e)
{
    if (sel->limit && sel->n == sel->limit) {
        if (entry_cmp(e, sel->items[0]) >= 0)
            return 0;
        sel->items[0] = e;
        sift_down(sel->items, sel->n, 0);
        return 0;
    }
    if (sel->n == sel->cap) {
        size_t ncap = sel->cap ? sel->cap * 2 : 64;
        const struct index_entry **grown = realloc(sel->items, ncap * sizeof(*grown));
        if (!grown)
            return KV_ENOMEM;
        sel->items = grown;
        sel->cap = ncap;
    }
    sel->items[sel->n++] = e;
    if (sel->limit)
        sift_up(sel->items, sel->n - 1);
    return 0;
}

/* Copies the selected keys into one buffer: [u16 len][key]... */
static int copy_keys(const struct selection *sel, uint8_t **out)
{
    size_t total = 0;
    for (size_t i = 0; i < sel->n; i++)
        total += 2 + sel->items[i]->key_len;
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf)
        return KV_ENOMEM;
    uint8_t *p = buf;
    for (size_t i = 0; i < sel->n; i++) {
        uint16_t len = sel->items[i]->key_len;
        memcpy(p, &len, 2);
        memcpy(p + 2, sel->items[i]->key, len);
        p += 2 + len;
    }
    *out = buf;
    return 0;
}

int kv_list(kv_store *s, const void *prefix, size_t prefix_len, const void *after, size_t after_len,
            size_t limit, kv_key_fn fn, void *ctx)
{
    if (!s || !fn || (prefix_len && !prefix) || (after_len && !after))
        return KV_EINVAL;
    struct selection sel = {.limit = limit};
    uint8_t *keys = NULL;
    int rc = 0;
    kv__rdlock(&s->rwlock);
    size_t cursor = 0;
    const struct index_entry *e;
    while (rc == 0 && (e = index_next(&s->index, &cursor)) != NULL) {
        if (prefix_len && (e->key_len < prefix_len || memcmp(e->key, prefix, prefix_len) != 0))
            continue;
        if (after_len && key_cmp(e->key, e->key_len, after, after_len) <= 0)
            continue;
        rc = select_add(&sel, e);
    }
    if (rc == 0 && sel.n > 0) {
        qsort(sel.items, sel.n, sizeof(*sel.items), entry_qsort_cmp);
        rc = copy_keys(&sel, &keys);
    }
    kv__unlock(&s->rwlock);
    const uint8_t *p = keys;
    for (size_t i = 0; rc == 0 && i < sel.n; i++) {
        uint16_t len;
        memcpy(&len, p, 2);
        rc = fn(p + 2, len, ctx);
        p += 2 + len;
    }
    free(sel.items);
    free(keys);
    return rc;
}
