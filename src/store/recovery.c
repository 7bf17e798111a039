/*
 * recovery.c - rebuilding the index when a store opens.
 *
 * The log is replayed in segment order, then file order; a later record wins.
 * When index.snapshot is valid, the index starts from it and only the log
 * after the position it covers is replayed. Damage is handled by where it is:
 *
 *  - in the newest segment, bytes at the end that do not check out are a
 *    write that was torn by a crash: they were never acknowledged (the write
 *    path acknowledges only what it synced), so they are cut off;
 *  - anywhere else, a damaged record is reported, counted and skipped, and
 *    every record after it is kept. A sealed segment is never rewritten.
 *
 * A record with an op code this version does not know stops the open with
 * KV_EFORMAT rather than silently skipping data.
 *
 * A BATCH record is applied whole or not at all: the scanner reports its
 * records only when all of them and the batch's own checksum check out
 * (segment_scan.c), and a batch that does not is one damaged region, cut
 * off whole at the tail of the newest segment (a torn batch) and skipped
 * whole elsewhere.
 */
#include "recovery.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "bloom.h"
#include "index.h"
#include "io.h"
#include "keydir.h"
#include "logging.h"
#include "rwlock.h"
#include "segment.h"
#include "segment_scan.h"
#include "snapshot.h"
#include "store.h"
#include "thread.h"
#include "write.h"

struct replay {
    kv_store *s;
    struct segment *seg;
    bool newest;
    bool truncate;
    uint64_t truncate_at;
};

static int replay_one(const struct scan_record *r, void *arg)
{
    struct replay *rp = arg;
    kv_store *s = rp->s;
    KV_ASSERT(kv__rwlock_held_write(&s->rwlock));
    if (r->status == KV_REC_UNKNOWN_OP) {
        kv__log(s, KV_LOG_ERROR,
                "segment %u offset %llu: record with unknown op code %u; this version cannot "
                "read this directory",
                rp->seg->id, (unsigned long long)r->off, r->op);
        return KV_EFORMAT;
    }
    if (r->status != KV_REC_OK) {
        if (rp->newest && r->at_tail) {
            rp->truncate = true;
            rp->truncate_at = r->off;
            return 0;
        }
        atomic_fetch_add(&s->n_checksum_errors, 1);
        kv__log(s, KV_LOG_WARN, "segment %u offset %llu: %llu bytes skipped (%s)", rp->seg->id,
                (unsigned long long)r->off, (unsigned long long)r->len,
                kv_record_status_name(r->status));
        return 0;
    }
    if (r->op == KV_OP_BATCH)
        return 0; /* it checked out whole: its records follow, in_batch */
    if (r->key_len == 0 || r->off > UINT32_MAX) {
        kv__log(s, KV_LOG_ERROR, "segment %u offset %llu: %s; this version cannot read it",
                rp->seg->id, (unsigned long long)r->off,
                r->key_len == 0 ? "record with an empty key" : "segment larger than 4 GiB");
        return KV_EFORMAT;
    }
    uint64_t h = index_hash(r->key, r->key_len);
    s->records_replayed++;
    if (r->op == KV_OP_DELETE) {
        kv__apply_delete(s, h, r->key, r->key_len);
        return 0;
    }
    struct kv_loc loc = {.seg = rp->seg->id, .off = (uint32_t)r->off, .val_len = r->val_len};
    return kv__apply_set(s, h, r->key, r->key_len, &loc, NULL);
}

/* Cuts the torn tail off the newest segment and makes the cut durable. */
static int cut_torn_tail(kv_store *s, struct segment *seg, uint64_t at)
{
    KV_ASSERT(kv__rwlock_held_write(&s->rwlock));
    uint64_t size = atomic_load(&seg->size);
    kv__log(s, KV_LOG_WARN, "segment %u: cutting %llu bytes of an incomplete write at offset %llu",
            seg->id, (unsigned long long)(size - at), (unsigned long long)at);
    if (s->io->ftruncate(s->io->ctx, seg->fd, (off_t)at) != 0 ||
        kv__fsync_counted(s, seg->fd, false) != 0) {
        int err = errno;
        kv__log(s, KV_LOG_ERROR, "cannot truncate segment %u: %s", seg->id, strerror(err));
        return kv__errno_to_rc(err);
    }
    s->torn_bytes_truncated += size - at;
    atomic_store(&seg->size, at);
    seg->synced_size = at;
    return 0;
}

static int replay_segment(kv_store *s, struct segment *seg, bool newest, uint64_t start)
{
    int fd = seg->fd;
    if (fd < 0) {
        char path[4096];
        int rc = kv__segment_path(s->dir, seg->id, false, path, sizeof(path));
        if (rc != 0)
            return rc;
        fd = s->io->open(s->io->ctx, path, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0) {
            int err = errno;
            kv__log(s, KV_LOG_ERROR, "cannot open %s: %s", path, strerror(err));
            return kv__errno_to_rc(err);
        }
    }
    struct replay rp = {.s = s, .seg = seg, .newest = newest};
    int rc = kv__scan_segment(s->io, fd, atomic_load(&seg->size), start, replay_one, &rp);
    if (fd != seg->fd)
        s->io->close(s->io->ctx, fd);
    if (rc == 0 && rp.truncate)
        rc = cut_torn_tail(s, seg, rp.truncate_at);
    return rc;
}

/* Builds the segment table from the files in the directory; the newest is
 * opened for writing and becomes the active segment. */
static int load_segment_table(kv_store *s, const uint32_t *ids, size_t n)
{
    KV_ASSERT(kv__rwlock_held_write(&s->rwlock));
    for (size_t i = 0; i < n; i++) {
        bool newest = i == n - 1;
        char path[4096];
        int rc = kv__segment_path(s->dir, ids[i], false, path, sizeof(path));
        if (rc != 0)
            return rc;
        int fd = s->io->open(s->io->ctx, path, (newest ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
        if (fd < 0) {
            int err = errno;
            kv__log(s, KV_LOG_ERROR, "cannot open %s: %s", path, strerror(err));
            return kv__errno_to_rc(err);
        }
        uint64_t size;
        rc = kv__io_file_size(s->io, fd, &size);
        struct segment *seg = rc == 0 ? kv__segment_new(ids[i], newest ? fd : -1, size) : NULL;
        if (!newest || !seg)
            s->io->close(s->io->ctx, fd);
        if (!seg)
            return rc ? rc : KV_ENOMEM;
        rc = kv__segtab_add(s, seg);
        if (rc != 0) {
            if (newest)
                s->io->close(s->io->ctx, fd);
            free(seg);
            return rc;
        }
        if (newest) {
            seg->writable = true;
            s->open_fds++;
            s->active = seg;
        }
    }
    return 0;
}

/* Forgets whatever a rejected snapshot put in the index. */
static int reset_index(kv_store *s)
{
    KV_ASSERT(kv__rwlock_held_write(&s->rwlock));
    index_destroy(&s->index);
    bloom_destroy(&s->bloom);
    for (size_t i = 0; i < s->nsegs; i++)
        s->segs[i]->live_bytes = 0;
    return index_init(&s->index);
}

int kv__recover(kv_store *s)
{
    KV_ASSERT(!kv__rwlock_held(&s->rwlock));
    uint32_t *ids = NULL;
    size_t n = 0;
    int rc = kv__list_segments(s->io, s->dir, s, true, &ids, &n);
    if (rc != 0)
        return rc;
    kv__wrlock(&s->rwlock);
    rc = load_segment_table(s, ids, n);
    uint32_t pos_seg = 0;
    uint64_t pos_off = 0;
    if (rc == 0 && n > 0) {
        int loaded = kv__snapshot_load(s, ids, n, &pos_seg, &pos_off);
        if (loaded < 0)
            rc = loaded;
        else if (loaded == 0)
            s->snapshot_loaded = true;
        else
            rc = reset_index(s);
    }
    for (size_t i = 0; rc == 0 && i < s->nsegs; i++) {
        struct segment *seg = s->segs[i];
        uint64_t start = 0;
        if (s->snapshot_loaded && seg->id < pos_seg)
            continue;
        if (s->snapshot_loaded && seg->id == pos_seg)
            start = pos_off;
        rc = replay_segment(s, seg, i == s->nsegs - 1, start);
    }
    kv__unlock(&s->rwlock);
    free(ids);
    if (rc != 0)
        return rc;
    if (!s->active) {
        struct segment *seg;
        rc = kv__segment_create(s, 1, &seg);
        if (rc != 0)
            return rc;
        kv__wrlock(&s->rwlock);
        rc = kv__segtab_add(s, seg);
        if (rc == 0)
            s->active = seg;
        kv__unlock(&s->rwlock);
        if (rc != 0) {
            kv__segment_discard(s, seg);
            return rc;
        }
    } else if (atomic_load(&s->active->size) >= s->opts.segment_size) {
        kv__mutex_lock(&s->append_mu);
        rc = kv__rotate(s, s->active->id + 1);
        kv__mutex_unlock(&s->append_mu);
    }
    return rc;
}
