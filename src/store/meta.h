/*
 * meta.h - the engine's metadata records (meta.c): the newest META record of
 * each name, kept in memory with its value and where it lies.
 *
 * A META record (op KV_OP_META, docs/FORMAT.md) carries engine metadata that
 * must be as durable as the writes it rides with (replication's position and
 * history id): its key is a name, its payload opaque bytes, and the newest
 * record of a name wins. Names are not keys: never in the index, listings or
 * counts. The table is small (a few names), guarded by the store's rwlock
 * like the index; recovery, the write path, the snapshot and compaction keep
 * it in step with the log.
 */
#ifndef KV_STORE_META_H
#define KV_STORE_META_H

#include <stddef.h>
#include <stdint.h>

#include "kvstore.h"

struct kv_meta {
    uint8_t *name;
    size_t name_len;
    uint8_t *val;
    size_t val_len;
    uint32_t seg, off; /* the record: segment and offset of its magic */
};

struct kv_metas {
    struct kv_meta *v;
    size_t n, cap;
};

/* Makes val (val_len bytes) the value of name, as the record at seg/off
 * says, replacing an older one, and moves the record's bytes between the
 * segments' live counts. KV_ENOMEM leaves the table as it was. Caller holds
 * the rwlock for writing. */
int kv__meta_apply(kv_store *s, const void *name, size_t name_len, const void *val, size_t val_len,
                   uint32_t seg, uint32_t off);

/* The entry of name, or NULL. Caller holds the rwlock. */
struct kv_meta *kv__meta_find(const struct kv_metas *m, const void *name, size_t name_len);

/* Bytes of the record that holds e. */
uint64_t kv__meta_record_size(const struct kv_meta *e);

/* Frees every entry; the table is empty and usable afterwards. */
void kv__metas_clear(struct kv_metas *m);

#endif /* KV_STORE_META_H */
