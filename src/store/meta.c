/*
 * meta.c - the newest META record of each name (meta.h).
 *
 * kv_meta_put (store.c) is a write like any other: one record through group
 * commit, durable as a kv_put is, applied here by the group-commit leader in
 * log order. The newest record of each name counts as live bytes of its
 * segment (so that compaction, which carries it forward, sees the rest as
 * dead).
 */
#include "meta.h"

#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "record.h"
#include "rwlock.h"
#include "segment.h"
#include "store.h"

uint64_t kv__meta_record_size(const struct kv_meta *e)
{
    return record_size(e->name_len, e->val_len);
}

struct kv_meta *kv__meta_find(const struct kv_metas *m, const void *name, size_t name_len)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].name_len == name_len && memcmp(m->v[i].name, name, name_len) == 0)
            return &m->v[i];
    return NULL;
}

static void add_live(kv_store *s, uint32_t seg, int64_t bytes)
{
    struct segment *g = kv__segtab_find(s, seg);
    if (ALWAYS(g))
        g->live_bytes += (uint64_t)bytes;
}

int kv__meta_apply(kv_store *s, const void *name, size_t name_len, const void *val, size_t val_len,
                   uint32_t seg, uint32_t off)
{
    KV_ASSERT(kv__rwlock_held_write(&s->rwlock));
    struct kv_metas *m = &s->metas;
    uint8_t *copy = malloc(val_len ? val_len : 1);
    if (!copy)
        return KV_ENOMEM;
    if (val_len)
        memcpy(copy, val, val_len);
    struct kv_meta *e = kv__meta_find(m, name, name_len);
    if (!e) {
        uint8_t *name_copy = malloc(name_len);
        if (name_copy && m->n == m->cap) {
            size_t ncap = m->cap ? m->cap * 2 : 4;
            struct kv_meta *grown = realloc(m->v, ncap * sizeof(*grown));
            if (grown) {
                m->v = grown;
                m->cap = ncap;
            }
        }
        if (!name_copy || m->n == m->cap) {
            free(name_copy);
            free(copy);
            return KV_ENOMEM;
        }
        memcpy(name_copy, name, name_len);
        e = &m->v[m->n++];
        *e = (struct kv_meta){.name = name_copy, .name_len = name_len};
    } else {
        add_live(s, e->seg, -(int64_t)kv__meta_record_size(e));
        free(e->val);
    }
    e->val = copy;
    e->val_len = val_len;
    e->seg = seg;
    e->off = off;
    add_live(s, seg, (int64_t)kv__meta_record_size(e));
    return 0;
}

void kv__metas_clear(struct kv_metas *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].name);
        free(m->v[i].val);
    }
    free(m->v);
    memset(m, 0, sizeof(*m));
}
