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
 * The newest segment may end in zeros written ahead of the log (preallocated
 * space, segment.c): the log ends at the first zero where a magic should be,
 * and the zeros are cut off with the torn tail, if any, before them. They
 * are not damage, anywhere.
 *
 * Every kind of record is applied: SET and SETX point the key at the record
 * (a SETX's expiry goes to the index with it), DELETE removes it, META
 * becomes the newest value of its name (meta.c). A record this version
 * cannot read (an op code or a SETX flag it does not know) stops the open
 * with KV_EFORMAT rather than silently skipping data.
 *
 * A BATCH record is applied whole or not at all: the scanner reports its
 * records only when all of them and the batch's own checksum check out
 * (segment_scan.c), and a batch that does not is one damaged region, cut
 * off whole at the tail of the newest segment (a torn batch, also when
 * preallocated zeros follow it) and skipped whole elsewhere.
 */
#include "recovery.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "bloom.h"
#include "dict.h"
#include "index.h"
#include "io.h"
#include "keydir.h"
#include "logging.h"
#include "meta.h"
#include "record.h"
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
    uint64_t truncate_at; /* where the log ends: a torn record, or the zeros */
    uint64_t zeros_at;    /* where the zero tail begins (the file's size: none) */
    uint32_t dict_seen;   /* the last dictionary id found loaded */
    bool at_open;         /* kv_stats.records_replayed counts it (an open's replay) */
};

/* A compressed SETX names a dictionary that must be loaded: without it the
 * value cannot be read, and the open stops, naming the file. */
static int check_dict(struct replay *rp, const struct scan_record *r)
{
    uint32_t id = r->attrs.dict_id;
    if (!(r->attrs.flags & RECORD_ATTR_ZSTD) || id == 0 || id == rp->dict_seen)
        return 0;
    struct kv_dict *d = kv__dict_get(rp->s, id);
    if (!d) {
        kv__log(rp->s, KV_LOG_ERROR,
                "segment %u offset %llu: a record is compressed with dictionary dict-%u.zdict, "
                "which is missing from %s",
                rp->seg->id, (unsigned long long)r->off, id, rp->s->dir);
        return KV_ECORRUPT;
    }
    kv__dict_put(d);
    rp->dict_seen = id;
    return 0;
}

/* Refuses a record that checks out but that this version cannot read. */
static int unreadable(const struct replay *rp, const struct scan_record *r)
{
    kv_store *s = rp->s;
    if (r->op == KV_OP_SETX)
        kv__log(s, KV_LOG_ERROR,
                "segment %u offset %llu: SETX record with attribute flags 0x%02x this version "
                "does not know; it cannot read this directory",
                rp->seg->id, (unsigned long long)r->off, r->payload_len ? r->payload[0] : 0);
    else if (r->op == KV_OP_META)
        kv__log(s, KV_LOG_ERROR,
                "segment %u offset %llu: META record of %u bytes, more than this version "
                "reads; it cannot read this directory",
                rp->seg->id, (unsigned long long)r->off, r->val_len);
    else
        kv__log(s, KV_LOG_ERROR,
                "segment %u offset %llu: record with unknown op code %u; this version cannot "
                "read this directory",
                rp->seg->id, (unsigned long long)r->off, r->op);
    return KV_EFORMAT;
}

/* A region at the end of a segment that is no record: in the newest one the
 * log ends there; elsewhere a zero tail is harmless and anything else is
 * damage. Returns whether it was taken care of. */
static bool at_log_end(struct replay *rp, const struct scan_record *r)
{
    if (r->status == KV_REC_ZERO_TAIL) {
        rp->zeros_at = r->off;
        if (!rp->newest)
            kv__log(rp->s, KV_LOG_INFO,
                    "segment %u ends in %llu zero bytes of preallocated space; ignored",
                    rp->seg->id, (unsigned long long)r->len);
    }
    if (!rp->newest || !r->at_tail)
        return r->status == KV_REC_ZERO_TAIL;
    if (!rp->truncate) {
        rp->truncate = true;
        rp->truncate_at = r->off;
    }
    return true;
}

static int replay_one(const struct scan_record *r, void *arg)
{
    struct replay *rp = arg;
    kv_store *s = rp->s;
    KV_ASSERT(kv__rwlock_held_write(&s->rwlock));
    if (r->status == KV_REC_UNKNOWN_OP)
        return unreadable(rp, r);
    if (r->status != KV_REC_OK) {
        if (at_log_end(rp, r))
            return 0;
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
    if (rp->at_open)
        s->records_replayed++;
    if (r->op == KV_OP_META)
        return kv__meta_apply(s, r->key, r->key_len, r->payload, r->val_len, rp->seg->id,
                              (uint32_t)r->off);
    uint64_t h = index_hash(r->key, r->key_len);
    if (r->op == KV_OP_DELETE) {
        kv__apply_delete(s, h, r->key, r->key_len);
        return 0;
    }
    struct kv_loc loc = {.seg = rp->seg->id, .off = (uint32_t)r->off, .val_len = r->val_len};
    struct kv_attrs attrs = {0};
    if (r->op == KV_OP_SETX) {
        int rc = check_dict(rp, r);
        if (rc != 0)
            return rc;
        if (r->attrs.flags & RECORD_ATTR_EXPIRES)
            attrs.expire_at_ms = r->attrs.expire_at;
    }
    return kv__apply_set(s, h, r->key, r->key_len, &loc, &attrs, NULL);
}

/* Cuts the end of the newest segment off at rp->truncate_at (a torn write,
 * then the zero tail if any) and makes the cut durable. */
static int cut_log_end(kv_store *s, struct segment *seg, const struct replay *rp)
{
    KV_ASSERT(kv__rwlock_held_write(&s->rwlock));
    uint64_t size = atomic_load(&seg->size), at = rp->truncate_at;
    uint64_t torn = rp->zeros_at - at;
    if (torn > 0)
        kv__log(s, KV_LOG_WARN,
                "segment %u: cutting %llu bytes of an incomplete write at offset %llu", seg->id,
                (unsigned long long)torn, (unsigned long long)at);
    if (size > rp->zeros_at)
        kv__log(s, KV_LOG_DEBUG, "segment %u: cutting %llu bytes of preallocated space", seg->id,
                (unsigned long long)(size - rp->zeros_at));
    if (s->io->ftruncate(s->io->ctx, seg->fd, (off_t)at) != 0 ||
        kv__fsync_counted(s, seg->fd, false) != 0) {
        int err = errno;
        kv__log(s, KV_LOG_ERROR, "cannot truncate segment %u: %s", seg->id, strerror(err));
        return kv__errno_to_rc(err);
    }
    s->torn_bytes_truncated += torn;
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
    uint64_t size = atomic_load(&seg->size);
    struct replay rp = {.s = s, .seg = seg, .newest = newest, .zeros_at = size, .at_open = true};
    int rc = kv__scan_segment(s->io, fd, size, start, replay_one, &rp);
    if (fd != seg->fd)
        s->io->close(s->io->ctx, fd);
    if (rc == 0 && rp.truncate)
        rc = cut_log_end(s, seg, &rp);
    return rc;
}

/* Replay of a range the caller has just checked: anything but a record that
 * checks out means the bytes changed on their way to the disk. */
static int replay_checked(const struct scan_record *r, void *arg)
{
    struct replay *rp = arg;
    if (r->status != KV_REC_OK && r->status != KV_REC_UNKNOWN_OP) {
        kv__log(rp->s, KV_LOG_ERROR, "segment %u offset %llu: a record just written reads back %s",
                rp->seg->id, (unsigned long long)r->off, kv_record_status_name(r->status));
        return KV_ECORRUPT;
    }
    return replay_one(r, arg);
}

int kv__replay_range(kv_store *s, struct segment *seg, uint64_t start, uint64_t end)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu) && kv__rwlock_held_write(&s->rwlock));
    struct replay rp = {.s = s, .seg = seg, .newest = false, .zeros_at = end};
    return kv__scan_segment(s->io, seg->fd, end, start, replay_checked, &rp);
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
    kv__metas_clear(&s->metas);
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
