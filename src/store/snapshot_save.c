/*
 * snapshot_save.c - writing index.snapshot (format in snapshot.h).
 *
 * The file is streamed out through a 1 MiB buffer, not built whole in
 * memory: a snapshot is about as large as the index, and a store of a
 * hundred million keys must not need gigabytes more to save one. The CRC is
 * taken of each stretch as it is written. The read lock is held throughout,
 * so that the entries and the segment list agree (compaction moves entries
 * between segments under the write lock); writers are held off by append_mu
 * anyway.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "bloom.h"
#include "dict.h"
#include "index.h"
#include "io.h"
#include "logging.h"
#include "meta.h"
#include "record.h"
#include "rwlock.h"
#include "segment.h"
#include "snapshot.h"
#include "store.h"
#include "thread.h"
#include "write.h"

#define SNAP_WRITE_BUF (1u << 20)

_Static_assert(SNAP_WRITE_BUF >= SNAP_ENTRY_HEAD + UINT16_MAX + SNAP_EXPIRY_LEN,
               "an entry fits in the buffer");
_Static_assert(SNAP_WRITE_BUF >= SNAP_META_HEAD + UINT16_MAX + KV_MAX_META_LEN,
               "a META name fits in the buffer");

struct snap_writer {
    const struct kv_io *io;
    int fd;
    uint8_t *buf;
    size_t len;
    uint64_t off; /* bytes written to the file */
    uint32_t crc; /* of those bytes */
    int rc;       /* the first failed write's code */
    /* The key order: each entry's name in the file (see snapshot.h), by
     * its reference halved (entries are at least 2 units apart); NULL when
     * there was no memory for it, and the file goes without. */
    uint32_t *names;
    struct arena_plan plan;
    const struct index *ix; /* the index written: the expiries of its entries */
};

static int writer_flush(struct snap_writer *w)
{
    if (w->len == 0)
        return 0;
    int rc = kv__io_write_full(w->io, w->fd, w->buf, w->len, (off_t)w->off);
    if (rc != 0)
        return w->rc = rc;
    w->crc = record_crc_update(w->crc, w->buf, w->len);
    w->off += w->len;
    w->len = 0;
    return 0;
}

/* Room for n bytes (n <= SNAP_WRITE_BUF) at the end of the buffer, or NULL
 * when flushing failed (w->rc says why). */
static uint8_t *writer_take(struct snap_writer *w, size_t n)
{
    if (SNAP_WRITE_BUF - w->len < n && writer_flush(w) != 0)
        return NULL;
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

static int encode_entry(void *ctx, uint32_t ref, const struct index_entry *e)
{
    struct snap_writer *w = ctx;
    uint64_t expire_at = index_entry_expiry(w->ix, e);
    size_t tail = expire_at ? SNAP_EXPIRY_LEN : 0;
    uint8_t *p = writer_take(w, SNAP_ENTRY_HEAD + e->key_len + tail);
    if (!p)
        return w->rc;
    if (w->names)
        w->names[ref / 2] = arena_plan_next(&w->plan, e->key_len);
    struct kv_loc loc = index_entry_loc(e);
    put_u16(p, e->key_len);
    put_u32(p + 2, loc.seg);
    put_u32(p + 6, loc.off | (expire_at ? SNAP_OFF_EXPIRES : 0));
    put_u32(p + 10, loc.val_len);
    memcpy(p + SNAP_ENTRY_HEAD, e->key, e->key_len);
    if (expire_at)
        put_u64(p + SNAP_ENTRY_HEAD + e->key_len, expire_at);
    return 0;
}

/* The key order section: each entry's name, in key order. */
static int encode_order(void *ctx, uint32_t ref, const struct index_entry *e)
{
    (void)e;
    struct snap_writer *w = ctx;
    uint8_t *p = writer_take(w, 4);
    if (!p)
        return w->rc;
    put_u32(p, w->names[ref / 2]);
    return 0;
}

static int encode_bloom(const struct bloom *f, struct snap_writer *w)
{
    uint8_t *p = writer_take(w, SNAP_BLOOM_HEAD);
    if (!p)
        return w->rc;
    put_u32(p, f->k);
    put_u64(p + 4, f->capacity);
    put_u64(p + 12, f->inserted);
    put_u64(p + 20, f->nblocks);
    size_t words = f->nblocks * BLOOM_BLOCK_WORDS;
    for (size_t i = 0; i < words; i++) {
        if (!(p = writer_take(w, 8)))
            return w->rc;
        put_u64(p, f->blocks[i]);
    }
    return 0;
}

/* The newest META record of each name, with its value. */
static int encode_metas(const kv_store *s, struct snap_writer *w)
{
    uint8_t *p = writer_take(w, 4);
    if (!p)
        return w->rc;
    put_u32(p, (uint32_t)s->metas.n);
    for (size_t i = 0; i < s->metas.n; i++) {
        const struct kv_meta *e = &s->metas.v[i];
        if (!(p = writer_take(w, SNAP_META_HEAD + e->name_len + e->val_len)))
            return w->rc;
        put_u16(p, (uint16_t)e->name_len);
        put_u32(p + 2, e->seg);
        put_u32(p + 6, e->off);
        put_u32(p + 10, (uint32_t)e->val_len);
        memcpy(p + SNAP_META_HEAD, e->name, e->name_len);
        if (e->val_len)
            memcpy(p + SNAP_META_HEAD + e->name_len, e->val, e->val_len);
    }
    return 0;
}

/* The dictionaries the store has loaded. */
static int encode_dicts(kv_store *s, struct snap_writer *w)
{
    uint32_t *ids = NULL;
    size_t n = 0;
    int rc = kv__dict_ids(s, &ids, &n);
    uint8_t *p = rc == 0 ? writer_take(w, 4) : NULL;
    if (p)
        put_u32(p, (uint32_t)n);
    for (size_t i = 0; p && i < n; i++)
        if ((p = writer_take(w, 4)) != NULL)
            put_u32(p, ids[i]);
    free(ids);
    return rc != 0 ? rc : p ? 0 : w->rc;
}

/* Writes the whole file but its CRC; caller holds the read lock. */
static int encode_snapshot(kv_store *s, struct snap_writer *w)
{
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    uint8_t *p = writer_take(w, SNAP_HEADER_LEN);
    if (!p)
        return w->rc;
    memcpy(p, SNAP_MAGIC, SNAP_MAGIC_LEN);
    put_u32(p + 8, SNAP_VERSION);
    w->names = malloc((arena_units(&s->index.arena) / 2 + 1) * sizeof(*w->names));
    put_u32(p + 12, w->names ? SNAP_FLAG_KEY_ORDER : 0);
    put_u32(p + 16, (uint32_t)s->nsegs);
    put_u64(p + 20, s->index.count);
    put_u32(p + 28, s->active->id);
    put_u64(p + 32, atomic_load(&s->active->size));
    for (size_t i = 0; i < s->nsegs; i++) {
        if (!(p = writer_take(w, SNAP_SEG_LEN)))
            return w->rc;
        put_u32(p, s->segs[i]->id);
        put_u64(p + 4, atomic_load(&s->segs[i]->size));
    }
    int rc = encode_bloom(&s->bloom, w);
    if (rc == 0)
        rc = encode_metas(s, w);
    if (rc == 0)
        rc = encode_dicts(s, w);
    if (rc == 0)
        rc = index_for_each_by_hash(&s->index, encode_entry, w);
    if (rc == 0 && w->names)
        rc = index_for_each_in_order(&s->index, encode_order, w);
    free(w->names);
    w->names = NULL;
    return rc;
}

/* Streams the snapshot into index.snapshot.tmp, then fsync, rename and a
 * directory fsync; the .tmp file is removed on failure. */
static int write_snapshot(kv_store *s)
{
    char path[4096], tmp[4096];
    int rc = kv__join_path(s->dir, SNAPSHOT_NAME, path, sizeof(path));
    if (rc == 0 && (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        rc = KV_EINVAL;
    if (rc != 0)
        return rc;
    struct snap_writer w = {.io = s->io, .buf = malloc(SNAP_WRITE_BUF), .ix = &s->index};
    if (!w.buf)
        return KV_ENOMEM;
    w.fd = s->io->open(s->io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd < 0) {
        int err = errno;
        kv__log(s, KV_LOG_ERROR, "cannot create %s: %s", tmp, strerror(err));
        free(w.buf);
        return kv__errno_to_rc(err);
    }
    kv__rdlock(&s->rwlock);
    rc = encode_snapshot(s, &w);
    uint64_t keys = s->index.count;
    kv__unlock(&s->rwlock);
    int err = errno;
    if (rc == 0)
        rc = writer_flush(&w);
    if (rc == 0) {
        uint8_t crc[4];
        put_u32(crc, w.crc);
        rc = kv__io_write_full(s->io, w.fd, crc, sizeof(crc), (off_t)w.off);
    }
    if (rc == 0)
        rc = kv__fsync_counted(s, w.fd, false);
    if (rc != 0)
        err = errno;
    s->io->close(s->io->ctx, w.fd);
    free(w.buf);
    if (rc == 0 && s->io->rename(s->io->ctx, tmp, path) != 0) {
        err = errno;
        rc = kv__errno_to_rc(err);
    }
    if (rc == 0) {
        rc = kv__io_sync_dir(s->io, s->dir);
        err = errno;
        atomic_fetch_add(&s->n_fsyncs, 1);
    }
    if (rc != 0) {
        kv__log(s, KV_LOG_ERROR, "cannot write %s: %s", path,
                rc == KV_ENOMEM ? "out of memory" : strerror(err));
        s->io->unlink(s->io->ctx, tmp);
        return rc;
    }
    kv__log(s, KV_LOG_DEBUG, "snapshot saved: %llu keys", (unsigned long long)keys);
    return 0;
}

int kv__snapshot_save_locked(kv_store *s)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    /* The position it records must be durable, or a crash would leave the
     * snapshot naming bytes that are gone (it would then be ignored). */
    int rc = kv__sync_active(s);
    return rc != 0 ? rc : write_snapshot(s);
}

int kv_save_snapshot(kv_store *s)
{
    return s ? kv__append_path_run(s, kv__snapshot_save_locked) : KV_EINVAL;
}
