/*
 * segment.h - segment files and the store's table of them (segment.c): the
 * sorted table of open segments, each segment's descriptor (opened on
 * demand, the least recently used closed past max_open_files) and its
 * read-only mapping, pins that keep a segment alive for the reads that
 * began before compaction took it out of the table, and the listing of a
 * directory's segment files.
 */
#ifndef KV_STORE_SEGMENT_H
#define KV_STORE_SEGMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvstore.h"
#include "rwlock.h"

struct segment {
    uint32_t id;
    int fd;                /* -1 while closed by the descriptor cache */
    _Atomic uint64_t size; /* bytes in the file */
    uint64_t synced_size;  /* bytes known durable (active segment; append_mu) */
    uint64_t live_bytes;   /* bytes of records the index points at (rwlock) */
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

/* ---- files */

/* dir/segment-<id>.dat, with ".tmp" appended when tmp. KV_EINVAL when it
 * does not fit len. */
int kv__segment_path(const char *dir, uint32_t id, bool tmp, char *buf, size_t len);

/* Whether name is a segment file's, "segment-<N>.dat"; *id is N. */
bool kv__segment_name_id(const char *name, uint64_t *id);

/* Lists the segment ids in dir, ascending, through io; with remove_tmp, also
 * deletes stale *.tmp files left by a crash. Problems are logged to log (a
 * store, or NULL for none). *ids is released with free(). */
int kv__list_segments(const struct kv_io *io, const char *dir, const kv_store *log, bool remove_tmp,
                      uint32_t **ids, size_t *n);

/* Creates segment-<id>.dat, fsyncs the directory, and returns it writable
 * (not yet in the table). */
int kv__segment_create(kv_store *s, uint32_t id, struct segment **out);

/* fsync (or fdatasync when data_only) of fd through the I/O table, counted
 * in the store's statistics. */
int kv__fsync_counted(kv_store *s, int fd, bool data_only);

/* ---- segments and the table */

/* A segment of size bytes; fd may be -1 (opened on demand). NULL when out of
 * memory. */
struct segment *kv__segment_new(uint32_t id, int fd, uint64_t size);

/* Closes and frees a segment that never entered the table (its file stays
 * for the caller to remove). */
void kv__segment_discard(kv_store *s, struct segment *seg);

/* Adds seg to the table, in id order. Caller holds the rwlock for writing. */
int kv__segtab_add(kv_store *s, struct segment *seg);

/* The segment of that id, or NULL. Caller holds the rwlock. */
struct segment *kv__segtab_find(const kv_store *s, uint32_t id);

/* Takes seg out of the table. Caller holds the rwlock for writing; once it
 * has released it, the caller hands seg to kv__segment_retire. */
void kv__segtab_remove(kv_store *s, struct segment *seg);

/* Waits for the reads that pinned seg before it left the table, then unmaps,
 * closes and frees it. Caller holds no lock. */
void kv__segment_retire(kv_store *s, struct segment *seg);

/* Closes and frees every segment of the table. */
void kv__segtab_free(kv_store *s);

/* ---- reading */

/* Pins seg for a read that goes on after the rwlock is released (caller
 * holds the rwlock, so seg is in the table); kv__segment_unpin, without the
 * lock, ends it. The count is the calling thread's reader shard's. */
void kv__segment_pin(struct segment *seg);
void kv__segment_unpin(struct segment *seg);

/* The len bytes at off of seg straight from its mapping, made on the first
 * call, or NULL when it cannot be mapped or they lie outside the bytes
 * written. Caller holds the rwlock; the bytes stay valid while seg is
 * pinned. */
const uint8_t *kv__segment_view(kv_store *s, struct segment *seg, uint64_t off, uint64_t len);

/* The descriptor of a pinned segment, opened if the cache closed it, kept
 * open until kv__segment_put_fd. Caller holds the rwlock (the cache walks the
 * table). */
int kv__segment_get_fd(kv_store *s, struct segment *seg, int *fd);
void kv__segment_put_fd(kv_store *s, struct segment *seg);

/* ---- preallocation: zeros written ahead of the active segment's end
 *
 * A durable write that overwrites blocks already written and synced costs
 * one data flush; an append that grows the file also commits its new size
 * and blocks to the file system's journal, which on this project's disks
 * makes fdatasync about 1.6 times slower. So a background thread keeps
 * opts.segment_preallocate bytes of written, synced zeros ahead of the
 * active segment's end, and the group-commit leader writes into them. The
 * log ends at the first zero where a magic should be (segment_scan.c);
 * a sealed segment, and the active one at kv_close, is cut back to its
 * logical size. The leader never writes where the thread is writing: it
 * waits for a fill it would overlap, which only happens when writes
 * outrun the thread (a fill runs well ahead of them). */

/* Starts the thread (when opts.segment_preallocate is not 0 and the sync
 * mode is not none) and aims it at the active segment. */
int kv__prealloc_start(kv_store *s);

/* Stops the thread and cuts the active segment's zeros off (ftruncate and
 * fsync), so that a closed directory holds only records. Caller holds
 * append_mu, or is kv_close. */
int kv__prealloc_stop(kv_store *s);

/* Around the leader's write of [start, end) in seg: before, waits for a
 * fill it would overlap and marks the range in flight; after, notes what
 * the write allocated and wakes the thread when the zeros ahead run low.
 * Caller holds append_mu. */
void kv__prealloc_before_write(kv_store *s, struct segment *seg, uint64_t start, uint64_t end);
void kv__prealloc_after_write(kv_store *s, struct segment *seg, uint64_t end);

/* Seals seg for preallocation: waits for a fill in progress, then cuts its
 * zeros off and makes the cut durable. Caller holds append_mu. */
int kv__prealloc_seal(kv_store *s, struct segment *seg);

/* Makes seg (the new active segment) the one zeros are written ahead of. */
void kv__prealloc_activate(kv_store *s, struct segment *seg);

/* ftruncate of the active segment to len (a failed write or sync cut off),
 * after any fill in progress: 0, or -1 with errno set. Caller holds
 * append_mu. */
int kv__prealloc_truncate(kv_store *s, struct segment *seg, uint64_t len);

#endif /* KV_STORE_SEGMENT_H */
