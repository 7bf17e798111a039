/*
 * store.h - the handle every module of the engine works on (struct
 * kv_store), and a map of src/store.
 *
 * Its files, each calling only files below it (nothing calls into store.c,
 * and this header declares no function: each module has a header of its
 * own); the public API (include/kvstore.h) is implemented by those that name
 * kv_ functions:
 *
 *   backup.c        kv_backup, kv_backup_dir: consistent copies of a data
 *                   directory (it opens a copy with kv_open, to check it)
 *   store.c         kv_open, kv_close and the single-key operations: put,
 *                   get, exists, delete, sync, statistics; kv_meta_put and
 *                   kv_meta_get
 *   compaction.c    kv_compact and the background compactor
 *   compaction_copy.c  step 2 of a compaction: the live records copied
 *   recovery.c      rebuilding the index at open: snapshot, then log replay
 *   snapshot_save.c kv_save_snapshot: writing index.snapshot
 *   commit.c        kv_write, kv_write_async: the commit pipeline (queue,
 *                   commit thread, rounds of group commit, conditions)
 *   batch.c         a kv_write call's ops encoded as records, BATCH framing
 *   write.c         the append path: appending a round, rotation, interval
 *                   sync
 *   list.c          kv_range, kv_list: keys (and values) in order, between
 *                   bounds, by prefix, a page at a time
 *   logship.c       kv_log_read, kv_log_append...: the log shipped to replicas
 *   logend.c        the end of the durable log, published after each sync
 *   meta.c          the newest META record of each name, in memory
 *   inspect.c       kv_scan, kv_check_snapshot: reading a data directory
 *                   without opening it (the CLI's verify and dump)
 *   snapshot_load.c loading and checking index.snapshot (format: snapshot.h)
 *   read.c          reading a record the index points at: locate, pin,
 *                   copy and check its value
 *   keydir.c        the index and the bloom filter kept in step with the
 *                   log; the walks over the whole index
 *   segment.c       segment files, the segment table, descriptors, mappings
 *   segment_scan.c  the log's parser: a segment record by record, good or bad
 *   dirlock.c       the LOCK file: one owner of a directory at a time
 *   index.c         the index: a hash table and an ordered index over one
 *                   arena of entries, kept in step
 *   order.c         the ordered index: a B+tree of entry references
 *   arena.c         the entries: key -> segment, offset, value length
 *   bloom.c         the bloom filter in front of the index
 *   compress.c      how a value is stored: SET or SETX, zstd frames
 *   dict_train.c    training a compression dictionary at compaction
 *   dict.c          compression dictionaries: files and the table of them
 *   record.c        the on-disk record: encoding and CRC-32
 *   rwlock.c        the in-memory reader-writer lock of the index
 *   thread.c        mutexes that know their holder (debug builds); background
 *                   threads: a task every period, until stopped
 *   logging.c       diagnostic messages to the user's log callback
 *   io.c            the file-system table (struct kv_io) and its helpers
 *   errors.c        kv_strerror, kv_version; errno to KV_E... codes
 *
 * Locks, in the order they are taken:
 *   compact_mu  one compaction at a time; a backup holds it while it
 *               resolves the names of the files it takes.
 *   append_mu   the append path: writes to the active segment, rotation,
 *               sync, snapshot, compaction's start and end. Held by the
 *               committer for each round of group commit (commit.c).
 *   rwlock      the index, the bloom filter, the segment table and
 *               per-segment live-byte counts. Readers share it for a lookup
 *               and to pin the segment they read; the copy and checksum run
 *               after it is released. Writers (the committer, compaction)
 *               hold it for batches of index updates.
 *   seg_mu      the descriptor cache of segments and their first mapping.
 * The dictionary table's mutex (dict.c) and the zstd context pool's
 * (compress.c) are leaves: taken under any of these, or none, and nothing
 * under them. queue_mu guards the commit queue and the committer token
 * (commit.h); it is taken last, under append_mu by the committer, and under
 * no other lock. None is recursive.
 * Functions whose caller must hold a lock check it in debug builds
 * (debug.h): KV_ASSERT(kv__mutex_held(&s->append_mu)),
 * KV_ASSERT(kv__rwlock_held_write(&s->rwlock)) and the like.
 */
#ifndef KV_STORE_STORE_H
#define KV_STORE_STORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bloom.h"
#include "commit.h"
#include "index.h"
#include "io.h"
#include "kvstore.h"
#include "meta.h"
#include "rwlock.h"
#include "thread.h"

struct kv_codec;
struct kv_dicts;
struct kv_logend;
struct kv_prealloc;
struct segment;

struct kv_store {
    char *dir;
    kv_options opts;
    /* The file-system calls: opts.io completed with the operating system's
     * (io points at io_table). */
    struct kv_io io_table;
    const struct kv_io *io;
    int dir_lock_fd; /* the LOCK file (dirlock.c) */

    struct kv_mutex append_mu;
    struct kv_rwlock rwlock;
    struct kv_mutex seg_mu;
    struct kv_mutex queue_mu;

    struct index index;
    struct kv_metas metas;    /* the newest META record of each name (rwlock) */
    struct kv_dicts *dicts;   /* compression dictionaries (dict.c) */
    struct kv_logend *logend; /* the end of the durable log (logend.c) */
    struct kv_codec *codec;   /* pools of zstd contexts (compress.c) */
    struct bloom bloom;
    /* A filter being rebuilt beside traffic (kv__rebuild_bloom_shared):
     * writers add new keys to it too until it replaces bloom. */
    struct bloom *bloom_next;
    struct segment **segs; /* sorted by id; the last one is the active segment */
    size_t nsegs, segs_cap;
    struct segment *active;
    unsigned open_fds; /* seg_mu */
    uint64_t fd_clock; /* seg_mu */

    struct kv__commit commit; /* the commit queue and thread (commit.c) */
    atomic_size_t queue_len;  /* batches queued: written under queue_mu, read anywhere */
    bool closing;             /* queue_mu: kv_close has begun */
    uint64_t last_sync_ns;    /* duration of the last fdatasync (append_mu) */
    atomic_bool read_only;

    /* Zeros written ahead of the active segment (segment.c); NULL when off. */
    struct kv_prealloc *prealloc;

    /* Background fdatasync for KV_SYNC_INTERVAL. */
    struct kv_bgthread sync_thread;

    /* Compaction: one at a time (compact_mu, taken before append_mu), and
     * the background thread that triggers it. */
    struct kv_mutex compact_mu;
    struct kv_bgthread compactor;
    atomic_bool compact_cancel;
    /* Inputs of a compaction that could not be removed (compact_mu): out
     * of the table, still on disk until a later compaction removes them;
     * stale_unknown when there was no memory to note them. */
    uint32_t *stale_segs;
    size_t nstale;
    bool stale_unknown;
    /* Live bytes when a compaction last tried and trained no dictionary. */
    atomic_uint_fast64_t dict_tried_live;

    /* Counters reported by kv_get_stats. */
    atomic_uint_fast64_t n_puts, n_deletes, n_gets, n_fsyncs, n_checksum_errors;
    atomic_uint_fast64_t n_bloom_negatives, n_bloom_false_positives;
    atomic_uint_fast64_t n_compactions, compaction_read, compaction_written;
    atomic_uint_fast64_t compaction_reclaimed, last_compaction_ms;
    /* What kv_get_stats says of compaction: one running now, and the
     * outcome of the last one that ran (compaction.c). */
    atomic_bool compacting;
    atomic_int last_compaction_error;
    atomic_uint_fast64_t last_compaction_reclaimed;
    atomic_uint_fast64_t n_prealloc_syncs, n_prealloc_bytes;
    uint64_t torn_bytes_truncated, records_replayed;
    bool snapshot_loaded;
};

#endif /* KV_STORE_STORE_H */
