/*
 * write.h - the append path (write.c): group commit, rotation of the active
 * segment, and the fdatasync of sync mode interval.
 */
#ifndef KV_STORE_WRITE_H
#define KV_STORE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "kvstore.h"

/* A condition on a write, decided by the group-commit leader when it plans
 * the batch, in log order: against the index as the earlier batches left it
 * and the earlier writes of the same key in the batch. A write whose
 * condition fails writes nothing and returns the condition's code. */
enum kv__write_cond {
    KV_COND_NONE = 0,
    KV_COND_PRESENT, /* the key is in the store; else KV_ENOTFOUND */
};

/* Appends one record (op KV_OP_SET, KV_OP_DELETE or KV_OP_META) through
 * group commit and applies it to the index (META: to the metadata table),
 * if cond holds; durable when it returns 0 in sync mode always. A SET's
 * value is first encoded for its record (compress.c: it may become a
 * compressed SETX). value_crc, when not NULL, receives the CRC-32 of val,
 * from the pass that checksums the record or compresses it (set whatever
 * the outcome). Caller holds no lock. */
int kv__write(kv_store *s, uint8_t op, const void *key, size_t key_len, const void *val,
              size_t val_len, enum kv__write_cond cond, uint32_t *value_crc);

/* kv__write of a SET whose key expires at expire_at_ms (0: never;
 * absolute, ms since the Unix epoch): a SETX with the expiry. */
int kv__write_set(kv_store *s, const void *key, size_t key_len, const void *val, size_t val_len,
                  uint64_t expire_at_ms, enum kv__write_cond cond, uint32_t *value_crc);

/* Seals the active segment and starts segment new_id. Caller holds
 * append_mu. */
int kv__rotate(kv_store *s, uint32_t new_id);

/* fdatasync of the active segment if it has unsynced bytes; a failure turns
 * the store read-only. Caller holds append_mu. */
int kv__sync_active(kv_store *s);

/* Runs fn(s) on the append path, holding append_mu, or returns KV_EREADONLY
 * when the store refuses writes: kv_sync and kv_save_snapshot. Caller holds
 * no lock. */
int kv__append_path_run(kv_store *s, int (*fn)(kv_store *s));

/* The background fdatasync of KV_SYNC_INTERVAL. Stopping one that never
 * started is a no-op. */
int kv__start_sync_thread(kv_store *s);
void kv__stop_sync_thread(kv_store *s);

#endif /* KV_STORE_WRITE_H */
