/*
 * logship.c - the log as replication ships it: kv_log_end, kv_log_read and
 * kv_log_wait on a primary, kv_log_append on a replica (kvstore.h).
 *
 * A primary hands out raw records, whole, from the durable part of its log
 * only (logend.c publishes how far a sync reached): a record a replica holds
 * has been on the primary's disk before, so a primary that crashes and
 * recovers never lacks what it shipped. Each record is checked (magic,
 * lengths, CRC-32) before it leaves, so that a damaged record on the
 * primary's disk is named there rather than sent.
 *
 * A replica appends what it received as its own records, byte for byte,
 * then one META record with its position, in one unit under append_mu: one
 * pwritev, one fdatasync (whatever the sync mode: a replica acknowledges
 * only what is durable), then the same replay that recovery runs applies
 * the unit to the index, so that every record kind is applied exactly as
 * an open would apply it. The META record comes last: after a crash the
 * position names only records that are on disk, and records of a torn unit
 * that survived are stored again by the retry, which replays to the same
 * state (a later record of a key wins, and the retry repeats them in order).
 * With KV_LOG_DROP_CACHE the unit's pages are then let go (kv_io.drop_cache),
 * durable and indexed as they are: a replica catching up writes gigabytes
 * it will not read soon, and reusing the memory of the unit before costs
 * far less than growing the page cache by every unit (on a virtual machine
 * that hands free memory back to its host, each new page is a fault there).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "bloom.h"
#include "debug.h"
#include "index.h"
#include "io.h"
#include "keydir.h"
#include "logend.h"
#include "logging.h"
#include "record.h"
#include "recovery.h"
#include "rwlock.h"
#include "segment.h"
#include "store.h"
#include "thread.h"
#include "write.h"

int kv_log_end(kv_store *s, kv_log_pos *end)
{
    if (!s || !end)
        return KV_EINVAL;
    *end = kv__logend_get(s);
    return 0;
}

int kv_log_wait(kv_store *s, const kv_log_pos *pos, uint32_t timeout_ms)
{
    if (!s || !pos)
        return KV_EINVAL;
    kv__logend_wait(s, pos, timeout_ms);
    return 0;
}

/* Whether a record of this op may travel: every kind this version reads. */
static bool op_ships(uint8_t op)
{
    return op == KV_OP_SET || op == KV_OP_DELETE || op == KV_OP_SETX || op == KV_OP_BATCH ||
           op == KV_OP_META;
}

/* Checks the record at p (avail bytes): 0 and *len its size; 1 when it is
 * not whole within avail (*len its size when the header was readable, else
 * 0); KV_ECORRUPT when the magic, a length or the CRC is wrong; KV_EFORMAT
 * for a kind this version does not know. */
static int check_record(const uint8_t *p, size_t avail, uint64_t *len)
{
    struct record_header h;
    *len = 0;
    if (avail < RECORD_HEADER_LEN)
        return 1;
    /* A BATCH has no key (its payload is whole inner records, which its own
     * CRC covers); every other kind has one. */
    if (!record_decode_header(p, &h) || (h.key_len == 0) != (h.op == KV_OP_BATCH) ||
        (h.op == KV_OP_DELETE && h.val_len != 0))
        return KV_ECORRUPT;
    uint64_t n = record_size(h.key_len, h.val_len);
    *len = n;
    if (n > avail)
        return 1;
    if (!op_ships(h.op))
        return KV_EFORMAT;
    uint32_t crc = record_crc_update(0, p + 2, (size_t)n - 2 - RECORD_TRAILER_LEN);
    return crc == get_u32(p + n - RECORD_TRAILER_LEN) ? 0 : KV_ECORRUPT;
}

/* The segment to read from for *pos, under the rwlock: the one it names,
 * moving on to the next one while pos stands at the end of a sealed
 * segment. *limit is how far the segment is durable. NULL with *rc set
 * (KV_ENOTFOUND) when the log does not hold pos; NULL with rc 0 when pos is
 * the durable end. */
static struct segment *locate(kv_store *s, kv_log_pos *pos, uint64_t *limit, int *rc)
{
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    kv_log_pos end = kv__logend_get(s);
    *rc = 0;
    size_t i = 0;
    if (pos->seg == 0 && pos->off == 0) {
        if (s->nsegs == 0)
            return NULL;
        pos->seg = s->segs[0]->id;
    } else {
        while (i < s->nsegs && s->segs[i]->id < pos->seg)
            i++;
        bool here = i < s->nsegs && s->segs[i]->id == pos->seg;
        if (!here && i < s->nsegs && kv__logend_at_seal(s, pos)) {
            pos->seg = s->segs[i]->id;
            pos->off = 0;
        } else if (!here) {
            *rc = KV_ENOTFOUND;
            return NULL;
        }
    }
    for (;;) {
        struct segment *g = s->segs[i];
        uint64_t lim = g->id < end.seg ? atomic_load(&g->size) : g->id == end.seg ? end.off : 0;
        if (pos->off > lim) {
            *rc = KV_ENOTFOUND;
            return NULL;
        }
        if (pos->off < lim) {
            *limit = lim;
            return g;
        }
        if (g->id >= end.seg || i + 1 == s->nsegs)
            return NULL;
        i++;
        pos->seg = s->segs[i]->id;
        pos->off = 0;
    }
}

/* Reads [off, off + len) of a segment the caller found under the rwlock
 * (which it still holds; released here). */
static int read_bytes(kv_store *s, struct segment *g, uint64_t off, void *buf, size_t len)
{
    const uint8_t *v = kv__segment_view(s, g, off, len);
    int fd = -1, rc = 0;
    kv__segment_pin(g);
    if (!v)
        rc = kv__segment_get_fd(s, g, &fd);
    kv__unlock(&s->rwlock);
    if (v)
        memcpy(buf, v, len);
    else if (rc == 0) {
        rc = kv__io_read_full(s->io, fd, buf, len, (off_t)off);
        kv__segment_put_fd(s, g);
    }
    kv__segment_unpin(g);
    return rc;
}

int kv_log_read(kv_store *s, kv_log_pos *pos, void *buf, size_t cap, size_t *len, kv_log_pos *next)
{
    if (!s || !pos || !buf || cap == 0 || !len || !next)
        return KV_EINVAL;
    kv_log_pos at = *pos;
    uint64_t limit = 0;
    int rc;
    kv__rdlock(&s->rwlock);
    struct segment *g = locate(s, &at, &limit, &rc);
    if (!g) {
        kv__unlock(&s->rwlock);
        if (rc == 0) {
            *pos = at;
            *next = at;
            *len = 0;
        }
        return rc;
    }
    uint32_t id = g->id;
    size_t want = limit - at.off < cap ? (size_t)(limit - at.off) : cap;
    rc = read_bytes(s, g, at.off, buf, want);
    if (rc != 0)
        return rc;
    const uint8_t *p = buf;
    size_t used = 0;
    for (;;) {
        uint64_t n;
        if (used < want && p[used] == 0 && id < kv__logend_get(s).seg) {
            /* Zeros at the end of a sealed segment: space written ahead of
             * the log whose cut did not happen; the segment ends here. */
            if (used == 0) {
                *pos = (kv_log_pos){.seg = id, .off = limit};
                return kv_log_read(s, pos, buf, cap, len, next);
            }
            break;
        }
        rc = check_record(p + used, want - used, &n);
        if (rc == 1 && used == 0 && n > cap) {
            *len = (size_t)n;
            return KV_ETOOBIG;
        }
        if (rc == 1 || (rc < 0 && used > 0))
            break;
        if (rc < 0) {
            kv__log(s, KV_LOG_ERROR, "segment %u offset %llu: record not shipped: %s", id,
                    (unsigned long long)at.off, kv_strerror(rc));
            return rc == KV_EFORMAT ? KV_ECORRUPT : rc;
        }
        used += (size_t)n;
        if (used == want)
            break;
    }
    if (used == 0)
        return KV_ECORRUPT;
    *pos = at;
    *len = used;
    *next = (kv_log_pos){.seg = id, .off = at.off + used};
    return 0;
}

/* ---- the replica's side */

/* Counts the records of a checked unit and gathers the iovecs of those
 * written (every one but META). KV_ENOMEM. */
static int gather(const uint8_t *p, size_t len, struct iovec **iov, size_t *niov, size_t *nrec)
{
    size_t cap = 8, n = 0, recs = 0;
    struct iovec *v = malloc(cap * sizeof(*v));
    if (!v)
        return KV_ENOMEM;
    size_t off = 0;
    while (off < len) {
        uint64_t rl = record_size(get_u32(p + off + 3), get_u32(p + off + 7));
        bool meta = p[off + 2] == KV_OP_META;
        recs++;
        if (!meta && n > 0 && (uint8_t *)v[n - 1].iov_base + v[n - 1].iov_len == p + off) {
            v[n - 1].iov_len += (size_t)rl;
        } else if (!meta) {
            if (n + 1 == cap) {
                struct iovec *g = realloc(v, cap * 2 * sizeof(*v));
                if (!g) {
                    free(v);
                    return KV_ENOMEM;
                }
                v = g;
                cap *= 2;
            }
            v[n++] = (struct iovec){.iov_base = (void *)(p + off), .iov_len = (size_t)rl};
        }
        off += (size_t)rl;
    }
    *iov = v;
    *niov = n;
    *nrec = recs;
    return 0;
}

/* Writes the unit (iov, bytes long) at the end of the active segment and
 * makes it durable; on failure cuts it off again. append_mu held. */
static int write_unit(kv_store *s, struct iovec *iov, size_t n, uint64_t bytes, uint64_t *start)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct segment *a = s->active;
    uint64_t at = atomic_load(&a->size);
    if (at > 0 && at + bytes > s->opts.segment_size) {
        int rc = kv__rotate(s, a->id + 1);
        if (rc != 0)
            return rc;
        a = s->active;
        at = 0;
    }
    kv__prealloc_before_write(s, a, at, at + bytes);
    int rc = kv__io_writev_full(s->io, a->fd, iov, (int)n, (off_t)at);
    if (rc == 0) {
        kv__prealloc_after_write(s, a, at + bytes);
        atomic_store(&a->size, at + bytes);
        rc = kv__fsync_counted(s, a->fd, true);
        if (rc != 0)
            kv__log(s, KV_LOG_ERROR, "fdatasync of segment %u failed: %s", a->id, strerror(errno));
    } else {
        kv__log(s, KV_LOG_ERROR, "write to segment %u failed: %s", a->id, strerror(errno));
    }
    if (rc != 0) {
        /* Nothing of the unit was acknowledged: cut it off, or refuse every
         * later write when even that fails. */
        if (kv__prealloc_truncate(s, a, a->synced_size) != 0 ||
            kv__fsync_counted(s, a->fd, false) != 0) {
            atomic_store(&s->read_only, true);
            kv__log(s, KV_LOG_ERROR, "store is now read-only until reopened: %s",
                    "a failed replica write could not be cut off");
        } else {
            atomic_store(&a->size, a->synced_size);
        }
        return rc;
    }
    a->synced_size = at + bytes;
    kv__logend_publish(s, a->id, at + bytes);
    *start = at;
    return 0;
}

/* Checks every record of the unit. */
static int check_unit(kv_store *s, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        uint64_t n;
        int rc = check_record(p + off, len - off, &n);
        if (rc != 0) {
            kv__log(s, KV_LOG_WARN, "shipped record at byte %zu of %zu refused: %s", off, len,
                    rc == 1 ? "incomplete" : kv_strerror(rc));
            return rc == 1 ? KV_ECORRUPT : rc;
        }
        off += (size_t)n;
    }
    return 0;
}

/* Lets the pages of a unit just stored leave the page cache: advice, so a
 * failure changes nothing. append_mu held, the unit durable. */
static void drop_unit_cache(kv_store *s, uint64_t start, uint64_t bytes)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct segment *a = s->active;
    KV_ASSERT(start + bytes <= a->synced_size);
    if (s->io->drop_cache(s->io->ctx, a->fd, (off_t)start, (off_t)bytes) != 0)
        kv__log(s, KV_LOG_DEBUG, "segment %u: pages not dropped from the cache: %s", a->id,
                strerror(errno));
}

int kv_log_append(kv_store *s, const void *records, size_t len, const void *meta_name,
                  size_t meta_name_len, const void *meta, size_t meta_len)
{
    return kv_log_append_flags(s, records, len, meta_name, meta_name_len, meta, meta_len, 0);
}

int kv_log_append_flags(kv_store *s, const void *records, size_t len, const void *meta_name,
                        size_t meta_name_len, const void *meta, size_t meta_len, unsigned flags)
{
    if (!s || (!records && len > 0) || !meta_name || meta_name_len == 0 ||
        meta_name_len > KV_MAX_KEY_LEN || (!meta && meta_len > 0) ||
        (flags & ~KV_LOG_DROP_CACHE) != 0)
        return KV_EINVAL;
    if (meta_len > KV_MAX_META_LEN)
        return KV_ETOOBIG;
    int rc = check_unit(s, records, len);
    if (rc != 0)
        return rc;
    uint64_t mlen = record_size(meta_name_len, meta_len);
    uint8_t *mrec = malloc((size_t)mlen);
    struct iovec *iov = NULL;
    size_t niov = 0, nrec = 0;
    if (!mrec)
        return KV_ENOMEM;
    record_build(mrec, KV_OP_META, meta_name, (uint32_t)meta_name_len, meta, (uint32_t)meta_len);
    rc = gather(records, len, &iov, &niov, &nrec);
    if (rc != 0) {
        free(mrec);
        return rc;
    }
    iov[niov++] = (struct iovec){.iov_base = mrec, .iov_len = (size_t)mlen};
    uint64_t bytes = 0;
    for (size_t i = 0; i < niov; i++)
        bytes += iov[i].iov_len;

    kv__mutex_lock(&s->append_mu);
    kv__mutex_lock(&s->queue_mu);
    bool closing = s->closing;
    kv__mutex_unlock(&s->queue_mu);
    if (closing)
        rc = KV_EBUSY;
    else if (atomic_load(&s->read_only))
        rc = KV_EREADONLY;
    if (rc == 0) {
        kv__wrlock(&s->rwlock);
        if (index_needs_room(&s->index, nrec))
            rc = index_reserve(&s->index, nrec);
        kv__unlock(&s->rwlock);
    }
    uint64_t start = 0;
    if (rc == 0)
        rc = write_unit(s, iov, niov, bytes, &start);
    if (rc == 0) {
        kv__wrlock(&s->rwlock);
        rc = kv__replay_range(s, s->active, start, start + bytes);
        if (rc == 0 && bloom_is_full(&s->bloom))
            rc = kv__rebuild_bloom(s);
        kv__unlock(&s->rwlock);
        if (rc != 0) {
            atomic_store(&s->read_only, true);
            kv__log(s, KV_LOG_ERROR, "store is now read-only until reopened: %s",
                    "durable replica records could not be indexed");
        }
    }
    if (rc == 0 && (flags & KV_LOG_DROP_CACHE))
        drop_unit_cache(s, start, bytes);
    kv__mutex_unlock(&s->append_mu);
    free(iov);
    free(mrec);
    return rc;
}
