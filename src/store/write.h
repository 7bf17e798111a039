/*
 * write.h - the append path below the commit pipeline (write.c): appending
 * records to the active segment, rotation, and the fdatasync of sync mode
 * interval.
 */
#ifndef KV_STORE_WRITE_H
#define KV_STORE_WRITE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kvstore.h"

/* Writes iov, bytes [start, end) of the active segment, at its end, and in
 * sync mode always makes them durable (fdatasync). On failure nothing of
 * them is left to trust: a failed write is cut off, a failed sync abandons
 * the unsynced tail for a fresh segment. Caller holds append_mu. */
int kv__append(kv_store *s, struct iovec *iov, size_t n, uint64_t start, uint64_t end);

/* Refuses writes from now on (KV_EREADONLY), logging why the first time. */
void kv__set_read_only(kv_store *s, const char *why);

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
