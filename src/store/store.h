/*
 * store.h - the engine's internal view of a store handle, shared by the
 * modules that implement kvstore.h.
 *
 * Locks, in the order they are taken:
 *   compact_mu  one compaction at a time.
 *   append_mu   the append path: writes to the active segment, rotation,
 *               sync, snapshot, compaction. Held by one group-commit leader.
 *   lock        (kv__rdlock/kv__wrlock) the index, the bloom filter, the
 *               segment table and per-segment live-byte counts. Readers
 *               share it for a lookup and to pin the segment they read; the
 *               copy and checksum run after it is released.
 *   seg_mu      the descriptor cache of segments and their first mapping.
 * queue_mu guards the writers' queue; it is taken last, under append_mu by
 * the group-commit leader, and under no other lock.
 */
#ifndef KV_STORE_STORE_H
#define KV_STORE_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bloom.h"
#include "index.h"
#include "io.h"
#include "kvstore.h"

#define SNAPSHOT_NAME "index.snapshot"
#define LOCK_NAME     "LOCK"

/* Readers count themselves in per-thread shards, one cache line each, so
 * that readers on different cores never write the same line (lock.c). */
#define READER_SHARDS 8
#define CACHE_LINE    64

struct kv_shard_count {
    _Alignas(CACHE_LINE) atomic_uint n;
};

struct segment {
    uint32_t id;
    int fd;                /* -1 while closed by the descriptor cache */
    _Atomic uint64_t size; /* bytes in the file */
    uint64_t synced_size;  /* bytes known durable (active segment; append_mu) */
    uint64_t live_bytes;   /* bytes of records the index points at (lock) */
    /* Reads in flight, per reader shard: a segment taken out of the table
     * is destroyed once they have all drained (kv__segment_retire). */
    struct kv_shard_count pins[READER_SHARDS];
    unsigned fd_users; /* reads using fd: it is not evicted (seg_mu) */
    bool writable;     /* the active segment: its descriptor is never evicted */
    uint64_t last_use; /* descriptor-cache clock (seg_mu) */
    /* The file mapped for reading, made on its first read: map_len bytes,
     * the whole segment size for the active segment (reads look only at
     * bytes written), else the file. Published with release order once. */
    const uint8_t *_Atomic map;
    size_t map_len;
    atomic_bool map_tried; /* mapped, or mapping failed for good */
    bool map_warned;       /* a failure to map was logged (seg_mu) */
};

struct write_req;

struct kv_store {
    char *dir;
    kv_options opts;
    const struct kv_io *io;
    int lock_fd;

    pthread_mutex_t append_mu;
    /* lock: see lock.c */
    struct kv_shard_count *reader_shards;
    atomic_bool writer_active;
    atomic_uint readers_waiting;
    pthread_mutex_t writer_mu;
    pthread_mutex_t seg_mu;
    pthread_mutex_t queue_mu;

    struct index index;
    struct bloom bloom;
    /* A filter being rebuilt beside traffic (kv__rebuild_bloom_shared):
     * writers add new keys to it too until it replaces bloom. */
    struct bloom *bloom_next;
    struct segment **segs; /* sorted by id; the last one is the active segment */
    size_t nsegs, segs_cap;
    struct segment *active;
    unsigned open_fds; /* seg_mu */
    uint64_t fd_clock; /* seg_mu */

    struct write_req *queue_head, *queue_tail;
    atomic_size_t queue_len; /* written under queue_mu */
    size_t round_writers;    /* writers in the last batch and queued behind it (queue_mu) */
    bool closing;            /* queue_mu */
    uint64_t last_sync_ns;   /* duration of the last fdatasync (append_mu) */
    atomic_bool read_only;

    /* Background fdatasync for KV_SYNC_INTERVAL. */
    pthread_t sync_thread;
    bool sync_thread_running;
    bool sync_stop; /* append_mu */
    pthread_cond_t sync_cv;

    /* Compaction: one at a time (compact_mu, taken before append_mu), and
     * the background thread that triggers it. */
    pthread_mutex_t compact_mu;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cv;
    pthread_t bg_thread;
    bool bg_running;
    bool bg_stop; /* bg_mu */
    atomic_bool compact_cancel;

    /* Counters reported by kv_get_stats. */
    atomic_uint_fast64_t n_puts, n_deletes, n_gets, n_fsyncs, n_checksum_errors;
    atomic_uint_fast64_t n_bloom_negatives, n_bloom_false_positives;
    atomic_uint_fast64_t n_compactions, compaction_read, compaction_written;
    atomic_uint_fast64_t compaction_reclaimed, last_compaction_ms;
    uint64_t torn_bytes_truncated, records_replayed;
    bool snapshot_loaded;
};

/* ---- lock.c: the store's reader-writer lock. Readers count themselves in
 * per-thread shards, so that they do not share a cache line; both sides spin
 * briefly before sleeping. Its holders keep it for a lookup or a batch of
 * index updates, well under a microsecond, while waking a thread that went
 * to sleep costs tens of microseconds on a virtual machine. */
int kv__lock_init(kv_store *s);
void kv__lock_destroy(kv_store *s);
void kv__rdlock(kv_store *s);
void kv__wrlock(kv_store *s);
void kv__unlock(kv_store *s);
/* The reader shard of the calling thread, 0 .. READER_SHARDS-1. */
unsigned kv__thread_shard(void);

/* ---- log.c */
void kv__log(const kv_store *s, kv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- segment.c: files, the segment table and the descriptor cache */
int kv__segment_path(const char *dir, uint32_t id, bool tmp, char *buf, size_t len);
int kv__join_path(const char *dir, const char *name, char *buf, size_t len);
/* Lists the segment ids in s->dir, ascending; with remove_tmp, also deletes
 * stale *.tmp files left by a crash. */
int kv__list_segments(const kv_store *s, bool remove_tmp, uint32_t **ids, size_t *n);
struct segment *kv__segment_new(uint32_t id, int fd, uint64_t size);
/* Creates segment-<id>.dat, fsyncs the directory, and returns it writable. */
int kv__segment_create(kv_store *s, uint32_t id, struct segment **out);
/* Closes and frees a segment from kv__segment_create that never entered the
 * table (its file stays for the caller to remove). */
void kv__segment_discard(kv_store *s, struct segment *seg);
/* Appends seg to the table (caller holds lock for writing). */
int kv__segtab_add(kv_store *s, struct segment *seg);
/* Finds a segment by id (caller holds lock). */
struct segment *kv__segtab_find(const kv_store *s, uint32_t id);
/* Takes seg out of the table (caller holds lock for writing). Once it has
 * released the lock, the caller hands seg to kv__segment_retire. */
void kv__segtab_remove(kv_store *s, struct segment *seg);
/* Waits for the reads that pinned seg before it left the table, then unmaps,
 * closes and frees it. Caller holds no lock. */
void kv__segment_retire(kv_store *s, struct segment *seg);
/* Pins seg for a read that goes on after the lock is released (caller holds
 * lock, so seg is in the table); kv__segment_unpin, without the lock, ends
 * it. The count is the calling thread's reader shard's. */
void kv__segment_pin(struct segment *seg);
void kv__segment_unpin(struct segment *seg);
/* The len bytes at off of seg straight from its mapping, made on the first
 * call, or NULL when it cannot be mapped or they lie outside the bytes
 * written. Caller holds lock; the bytes stay valid while seg is pinned. */
const uint8_t *kv__segment_view(kv_store *s, struct segment *seg, uint64_t off, uint64_t len);
/* The descriptor of a pinned segment, opened if the cache closed it, kept
 * open until kv__segment_put_fd (caller holds lock: the cache walks the
 * table). */
int kv__segment_get_fd(kv_store *s, struct segment *seg, int *fd);
void kv__segment_put_fd(kv_store *s, struct segment *seg);
/* Frees every segment (close). */
void kv__segtab_free(kv_store *s);
int kv__fsync_counted(kv_store *s, int fd, bool data_only);

/* ---- write.c: the group-commit append path */
int kv__write(kv_store *s, uint8_t op, const void *key, size_t key_len, const void *val,
              size_t val_len);
/* Seals the active segment and starts segment new_id (append_mu held). */
int kv__rotate(kv_store *s, uint32_t new_id);
/* fdatasync of the active segment if it has unsynced bytes (append_mu held). */
int kv__sync_active(kv_store *s);
int kv__start_sync_thread(kv_store *s);
void kv__stop_sync_thread(kv_store *s);

/* ---- apply (store.c): index updates shared by writes, recovery and compaction;
 * caller holds lock for writing. */
int kv__apply_set(kv_store *s, uint64_t hash, const void *key, size_t key_len,
                  const struct kv_loc *loc, bool *replaced);
void kv__apply_delete(kv_store *s, uint64_t hash, const void *key, size_t key_len);
/* Rebuilds the bloom filter from the index; caller holds lock for writing. */
int kv__rebuild_bloom(kv_store *s);
/* The same, holding the lock only for pieces of the index walk and the swap;
 * caller holds no lock (compaction). */
int kv__rebuild_bloom_shared(kv_store *s);
/* Calls fn for every entry of the index, a range of hashes per read-lock
 * hold, so that writers go on between ranges; a key that stays in the index
 * throughout is visited exactly once (index_walk_range). end_range(arg), if
 * not NULL, runs before each release of the lock. Stops at fn's first
 * non-zero return, which it returns. Caller holds no lock. */
int kv__walk_index_shared(kv_store *s, index_visit_fn fn, void (*end_range)(void *arg), void *arg);

/* ---- compaction.c: the background compactor */
int kv__start_compactor(kv_store *s);
/* One tick of the background compactor, run by the caller: compacts when the
 * trigger fires. Returns 0 when it did nothing too. */
int kv__compact_if_worthwhile(kv_store *s);
void kv__stop_compactor(kv_store *s);

/* ---- recovery.c */
int kv__recover(kv_store *s);

/* ---- snapshot.c */
/* Writes the snapshot; caller holds append_mu. */
int kv__snapshot_save_locked(kv_store *s);
/* Loads the snapshot into s->index if valid; pos_seg and pos_off receive the log
 * position it covers. Returns 0 when loaded, 1 when absent or unusable (the
 * reason logged), or a negative code on a hard failure. */
int kv__snapshot_load(kv_store *s, const uint32_t *ids, size_t nids, uint32_t *pos_seg,
                      uint64_t *pos_off);

/* ---- scan.c: reading a segment record by record */
struct scan_record {
    uint64_t off;
    uint64_t len;
    kv_record_status status;
    bool at_tail; /* nothing that checks out follows it in the segment */
    uint8_t op;
    const uint8_t *key;
    uint32_t key_len;
    uint32_t val_len;
    uint32_t crc;
};
typedef int (*scan_fn)(const struct scan_record *r, void *ctx);
int kv__scan_segment(const struct kv_io *io, int fd, uint64_t size, uint64_t start, scan_fn fn,
                     void *ctx);

#endif /* KV_STORE_STORE_H */
