/*
 * snapshot.c - index.snapshot: the index as of a log position, so that an
 * open replays only what was written after it.
 *
 * Layout (little-endian), followed by a CRC-32 of everything before it:
 *
 *   "MKVSNAP\0" | version u32 = 1 | flags u32 = 0 | segments u32 | keys u64
 *   | position: segment u32, offset u64
 *   | per segment: id u32, size u64          (every segment the index may name)
 *   | per key: key_len u16, segment u32, offset u32, value_len u32, key
 *
 * A snapshot is trusted only when everything agrees: magic, version, CRC,
 * every listed segment present and at least as long as listed, every entry
 * inside its segment, no key twice. Otherwise it is ignored (and the reason
 * logged) and the whole log is replayed; the result is the same, only slower.
 * The original Go implementation's snapshot (magic "KVINDEX1") stores offset
 * 0 for every key and is always ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record.h"
#include "store.h"

#define SNAP_MAGIC      "MKVSNAP"
#define SNAP_MAGIC_LEN  8
#define SNAP_GO_MAGIC   "KVINDEX1"
#define SNAP_VERSION    1u
#define SNAP_HEADER_LEN 40u
#define SNAP_SEG_LEN    12u
#define SNAP_ENTRY_HEAD 14u
#define SNAP_MAX_FILE   (64ull << 30)

/* ---- writing */

struct buf {
    uint8_t *data;
    size_t len, cap;
};

static uint8_t *buf_extend(struct buf *b, size_t n)
{
    if (b->cap - b->len < n) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap - b->len < n)
            ncap *= 2;
        uint8_t *grown = realloc(b->data, ncap);
        if (!grown)
            return NULL;
        b->data = grown;
        b->cap = ncap;
    }
    uint8_t *p = b->data + b->len;
    b->len += n;
    return p;
}

/* Serialises the index and segment table; caller holds lock (read). */
static int encode_snapshot(const kv_store *s, struct buf *b)
{
    uint8_t *p = buf_extend(b, SNAP_HEADER_LEN + s->nsegs * SNAP_SEG_LEN);
    if (!p)
        return KV_ENOMEM;
    memcpy(p, SNAP_MAGIC, SNAP_MAGIC_LEN);
    put_u32(p + 8, SNAP_VERSION);
    put_u32(p + 12, 0);
    put_u32(p + 16, (uint32_t)s->nsegs);
    put_u64(p + 20, s->index.count);
    put_u32(p + 28, s->active->id);
    put_u64(p + 32, atomic_load(&s->active->size));
    p += SNAP_HEADER_LEN;
    for (size_t i = 0; i < s->nsegs; i++, p += SNAP_SEG_LEN) {
        put_u32(p, s->segs[i]->id);
        put_u64(p + 4, atomic_load(&s->segs[i]->size));
    }
    size_t cursor = 0;
    const struct index_entry *e;
    while ((e = index_next(&s->index, &cursor)) != NULL) {
        p = buf_extend(b, SNAP_ENTRY_HEAD + e->key_len);
        if (!p)
            return KV_ENOMEM;
        put_u16(p, e->key_len);
        put_u32(p + 2, e->loc.seg);
        put_u32(p + 6, e->loc.off);
        put_u32(p + 10, e->loc.val_len);
        memcpy(p + SNAP_ENTRY_HEAD, e->key, e->key_len);
    }
    uint32_t crc = record_crc_update(0, b->data, b->len);
    p = buf_extend(b, 4);
    if (!p)
        return KV_ENOMEM;
    put_u32(p, crc);
    return 0;
}

/* Writes data to dir/name through a .tmp file: fsync, rename, fsync dir. */
static int write_file_atomically(kv_store *s, const char *name, const uint8_t *data, size_t len)
{
    char path[4096], tmp[4096];
    int rc = kv__join_path(s->dir, name, path, sizeof(path));
    if (rc == 0 && (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        rc = KV_EINVAL;
    if (rc != 0)
        return rc;
    int fd = s->io->open(s->io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        kv__log(s, KV_LOG_ERROR, "cannot create %s: %s", tmp, strerror(errno));
        return kv__errno_to_rc(errno);
    }
    rc = kv__io_write_full(s->io, fd, data, len, 0);
    if (rc == 0)
        rc = kv__fsync_counted(s, fd, false);
    int err = errno;
    s->io->close(s->io->ctx, fd);
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
        kv__log(s, KV_LOG_ERROR, "cannot write %s: %s", path, strerror(err));
        s->io->unlink(s->io->ctx, tmp);
    }
    return rc;
}

int kv__snapshot_save_locked(kv_store *s)
{
    /* The position it records must be durable, or a crash would leave the
     * snapshot naming bytes that are gone (it would then be ignored). */
    int rc = kv__sync_active(s);
    if (rc != 0)
        return rc;
    struct buf b = {0};
    kv__rdlock(s);
    rc = encode_snapshot(s, &b);
    uint64_t keys = s->index.count;
    kv__unlock(s);
    if (rc == 0)
        rc = write_file_atomically(s, SNAPSHOT_NAME, b.data, b.len);
    free(b.data);
    if (rc == 0)
        kv__log(s, KV_LOG_DEBUG, "snapshot saved: %llu keys", (unsigned long long)keys);
    return rc;
}

int kv_save_snapshot(kv_store *s)
{
    if (!s)
        return KV_EINVAL;
    pthread_mutex_lock(&s->append_mu);
    int rc = atomic_load(&s->read_only) ? KV_EREADONLY : kv__snapshot_save_locked(s);
    pthread_mutex_unlock(&s->append_mu);
    return rc;
}

/* ---- reading */

struct snap_view {
    const uint8_t *data;
    size_t len;
    uint32_t nsegs;
    uint64_t nkeys;
    uint32_t pos_seg;
    uint64_t pos_off;
    const uint8_t *segs;
    const uint8_t *entries;
};

static kv_snapshot_status fail(char *reason, size_t rlen, const char *why)
{
    if (reason && rlen)
        snprintf(reason, rlen, "%s", why);
    return KV_SNAPSHOT_INVALID;
}

/* Checks the framing of a snapshot file's bytes and fills *v. */
static kv_snapshot_status parse(const uint8_t *data, size_t len, struct snap_view *v, char *reason,
                                size_t rlen)
{
    if (len >= SNAP_MAGIC_LEN && memcmp(data, SNAP_GO_MAGIC, SNAP_MAGIC_LEN) == 0) {
        if (reason && rlen)
            snprintf(reason, rlen,
                     "written by the original Go implementation (offsets not "
                     "recorded)");
        return KV_SNAPSHOT_FOREIGN;
    }
    if (len < SNAP_HEADER_LEN + 4 || memcmp(data, SNAP_MAGIC, SNAP_MAGIC_LEN) != 0)
        return fail(reason, rlen, "not a snapshot file");
    if (record_crc_update(0, data, len - 4) != get_u32(data + len - 4))
        return fail(reason, rlen, "checksum mismatch");
    if (get_u32(data + 8) != SNAP_VERSION)
        return fail(reason, rlen, "unknown version");
    v->data = data;
    v->len = len;
    v->nsegs = get_u32(data + 16);
    v->nkeys = get_u64(data + 20);
    v->pos_seg = get_u32(data + 28);
    v->pos_off = get_u64(data + 32);
    if (v->nsegs > (len - SNAP_HEADER_LEN - 4) / SNAP_SEG_LEN)
        return fail(reason, rlen, "segment list longer than the file");
    if (v->nkeys > (len - SNAP_HEADER_LEN - 4) / (SNAP_ENTRY_HEAD + 1))
        return fail(reason, rlen, "more keys than the file can hold");
    v->segs = data + SNAP_HEADER_LEN;
    v->entries = v->segs + (size_t)v->nsegs * SNAP_SEG_LEN;
    return KV_SNAPSHOT_VALID;
}

/* The size a snapshot lists for segment id, or false when it does not list it. */
static bool listed_size(const struct snap_view *v, uint32_t id, uint64_t *size)
{
    for (uint32_t i = 0; i < v->nsegs; i++) {
        if (get_u32(v->segs + (size_t)i * SNAP_SEG_LEN) == id) {
            *size = get_u64(v->segs + (size_t)i * SNAP_SEG_LEN + 4);
            return true;
        }
    }
    return false;
}

/* Checks every listed segment against the files found (ids/sizes). */
static kv_snapshot_status check_segments(const struct snap_view *v, const uint32_t *ids,
                                         const uint64_t *sizes, size_t n, char *reason, size_t rlen)
{
    uint64_t pos_size;
    if (!listed_size(v, v->pos_seg, &pos_size) || pos_size != v->pos_off)
        return fail(reason, rlen, "its log position is not among its segments");
    for (uint32_t i = 0; i < v->nsegs; i++) {
        uint32_t id = get_u32(v->segs + (size_t)i * SNAP_SEG_LEN);
        uint64_t size = get_u64(v->segs + (size_t)i * SNAP_SEG_LEN + 4);
        size_t j = 0;
        while (j < n && ids[j] != id)
            j++;
        if (j == n) {
            if (reason && rlen)
                snprintf(reason, rlen, "segment %u it names is missing", id);
            return KV_SNAPSHOT_INVALID;
        }
        if (sizes[j] < size) {
            if (reason && rlen)
                snprintf(reason, rlen, "segment %u is shorter than it records", id);
            return KV_SNAPSHOT_INVALID;
        }
    }
    return KV_SNAPSHOT_VALID;
}

typedef int (*entry_fn)(void *ctx, const uint8_t *key, uint16_t key_len, const struct kv_loc *loc);

/* Walks the entries, checking each lies inside a listed segment. */
static kv_snapshot_status walk_entries(const struct snap_view *v, entry_fn fn, void *ctx,
                                       int *fn_rc, char *reason, size_t rlen)
{
    const uint8_t *p = v->entries, *end = v->data + v->len - 4;
    for (uint64_t i = 0; i < v->nkeys; i++) {
        if ((size_t)(end - p) < SNAP_ENTRY_HEAD)
            return fail(reason, rlen, "entries run past the end of the file");
        uint16_t klen = get_u16(p);
        struct kv_loc loc = {
            .seg = get_u32(p + 2), .off = get_u32(p + 6), .val_len = get_u32(p + 10)};
        uint64_t seg_size;
        if (klen == 0 || (size_t)(end - p) - SNAP_ENTRY_HEAD < klen)
            return fail(reason, rlen, "an entry has a bad key length");
        if (!listed_size(v, loc.seg, &seg_size) ||
            (uint64_t)loc.off + record_size(klen, loc.val_len) > seg_size)
            return fail(reason, rlen, "an entry points outside its segment");
        if (fn && (*fn_rc = fn(ctx, p + SNAP_ENTRY_HEAD, klen, &loc)) != 0)
            return fail(reason, rlen, *fn_rc == 1 ? "a key appears twice" : "out of memory");
        p += SNAP_ENTRY_HEAD + klen;
    }
    if (p != end)
        return fail(reason, rlen, "bytes after the last entry");
    return KV_SNAPSHOT_VALID;
}

/* Reads dir/index.snapshot whole. *data NULL (and 0) when there is none. */
static int read_snapshot_file(const struct kv_io *io, const char *dir, uint8_t **data, size_t *len)
{
    char path[4096];
    *data = NULL;
    *len = 0;
    int rc = kv__join_path(dir, SNAPSHOT_NAME, path, sizeof(path));
    if (rc != 0)
        return rc;
    int fd = io->open(io->ctx, path, O_RDONLY, 0);
    if (fd < 0)
        return errno == ENOENT ? 0 : kv__errno_to_rc(errno);
    uint64_t size;
    rc = kv__io_file_size(fd, &size);
    if (rc == 0 && size > SNAP_MAX_FILE)
        rc = KV_ENOMEM;
    uint8_t *buf = rc == 0 ? malloc(size ? (size_t)size : 1) : NULL;
    if (rc == 0 && !buf)
        rc = KV_ENOMEM;
    if (rc == 0)
        rc = kv__io_read_full(io, fd, buf, (size_t)size, 0);
    io->close(io->ctx, fd);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *data = buf;
    *len = (size_t)size;
    return 0;
}

/* Loads entries a batch at a time, prefetching the slots each will land in,
 * so that the cache misses of a batch overlap. */
#define LOAD_BATCH 32

struct loader {
    kv_store *s;
    size_t n;
    struct {
        const uint8_t *key;
        uint16_t key_len;
        uint64_t hash;
        struct kv_loc loc;
    } e[LOAD_BATCH];
};

/* Returns 0, 1 for a key that appears twice, 2 when memory runs out. */
static int load_flush(struct loader *l)
{
    for (size_t i = 0; i < l->n; i++) {
        index_prefetch_slot(&l->s->index, l->e[i].hash);
        bloom_prefetch(&l->s->bloom, l->e[i].hash);
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        bool twice = false;
        if (kv__apply_set(l->s, l->e[i].hash, l->e[i].key, l->e[i].key_len, &l->e[i].loc, &twice) !=
            0)
            rc = 2;
        else if (twice)
            rc = 1;
    }
    l->n = 0;
    return rc;
}

static int load_entry(void *ctx, const uint8_t *key, uint16_t key_len, const struct kv_loc *loc)
{
    struct loader *l = ctx;
    l->e[l->n].key = key;
    l->e[l->n].key_len = key_len;
    l->e[l->n].hash = index_hash(key, key_len);
    l->e[l->n].loc = *loc;
    return ++l->n == LOAD_BATCH ? load_flush(l) : 0;
}

int kv__snapshot_load(kv_store *s, const uint32_t *ids, size_t nids, uint32_t *pos_seg,
                      uint64_t *pos_off)
{
    uint8_t *data;
    size_t len;
    char reason[160] = "";
    int rc = read_snapshot_file(s->io, s->dir, &data, &len);
    if (rc != 0) {
        kv__log(s, KV_LOG_WARN, "cannot read %s (%s): replaying the whole log", SNAPSHOT_NAME,
                kv_strerror(rc));
        return 1;
    }
    if (!data)
        return 1;
    uint64_t *sizes = malloc(nids * sizeof(*sizes));
    if (!sizes) {
        free(data);
        return KV_ENOMEM;
    }
    for (size_t i = 0; i < nids; i++)
        sizes[i] = atomic_load(&kv__segtab_find(s, ids[i])->size);
    struct snap_view v;
    int fn_rc = 0;
    kv_snapshot_status st = parse(data, len, &v, reason, sizeof(reason));
    if (st == KV_SNAPSHOT_VALID)
        st = check_segments(&v, ids, sizes, nids, reason, sizeof(reason));
    /* Index and bloom filter are sized once, not grown step by step. */
    if (st == KV_SNAPSHOT_VALID) {
        bloom_destroy(&s->bloom);
        if (index_reserve(&s->index, v.nkeys) != 0 ||
            bloom_init(&s->bloom, 2 * v.nkeys, s->opts.bloom_bits_per_key) != 0)
            fn_rc = 2;
    }
    struct loader *ld = NULL;
    if (st == KV_SNAPSHOT_VALID && fn_rc == 0 && !(ld = calloc(1, sizeof(*ld))))
        fn_rc = 2;
    if (st == KV_SNAPSHOT_VALID && fn_rc == 0) {
        ld->s = s;
        st = walk_entries(&v, load_entry, ld, &fn_rc, reason, sizeof(reason));
        if (st == KV_SNAPSHOT_VALID && (fn_rc = load_flush(ld)) != 0)
            st = fail(reason, sizeof(reason), fn_rc == 1 ? "a key appears twice" : "out of memory");
        *pos_seg = v.pos_seg;
        *pos_off = v.pos_off;
    }
    free(ld);
    free(sizes);
    free(data);
    if (fn_rc == 2)
        return KV_ENOMEM;
    if (st != KV_SNAPSHOT_VALID) {
        kv__log(s, st == KV_SNAPSHOT_FOREIGN ? KV_LOG_INFO : KV_LOG_WARN,
                "ignoring %s: %s; replaying the whole log", SNAPSHOT_NAME, reason);
        return 1;
    }
    return 0;
}

/* ---- kv_check_snapshot: the same checks, on a directory that may be in use */

static int sizes_of_dir(const char *dir, const uint32_t *ids, size_t n, uint64_t *sizes)
{
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        int rc = kv__segment_path(dir, ids[i], false, path, sizeof(path));
        if (rc != 0)
            return rc;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return kv__errno_to_rc(errno);
        rc = kv__io_file_size(fd, &sizes[i]);
        close(fd);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int kv_check_snapshot(const char *dir, kv_snapshot_status *status, uint64_t *keys, char *reason,
                      size_t reason_len)
{
    if (!dir || !status)
        return KV_EINVAL;
    kv_store probe = {.dir = (char *)dir, .io = &kv__io_os};
    uint8_t *data = NULL;
    size_t len = 0;
    uint32_t *ids = NULL;
    uint64_t *sizes = NULL;
    size_t n = 0;
    int rc = read_snapshot_file(&kv__io_os, dir, &data, &len);
    if (rc == 0 && !data) {
        *status = KV_SNAPSHOT_ABSENT;
        if (reason && reason_len)
            snprintf(reason, reason_len, "no %s", SNAPSHOT_NAME);
        return 0;
    }
    if (rc == 0)
        rc = kv__list_segments(&probe, false, &ids, &n);
    if (rc == 0 && !(sizes = malloc((n ? n : 1) * sizeof(*sizes))))
        rc = KV_ENOMEM;
    if (rc == 0)
        rc = sizes_of_dir(dir, ids, n, sizes);
    if (rc == 0) {
        struct snap_view v;
        int fn_rc = 0;
        kv_snapshot_status st = parse(data, len, &v, reason, reason_len);
        if (st == KV_SNAPSHOT_VALID)
            st = check_segments(&v, ids, sizes, n, reason, reason_len);
        if (st == KV_SNAPSHOT_VALID)
            st = walk_entries(&v, NULL, NULL, &fn_rc, reason, reason_len);
        if (st == KV_SNAPSHOT_VALID) {
            if (keys)
                *keys = v.nkeys;
            if (reason && reason_len)
                snprintf(reason, reason_len, "valid");
        }
        *status = st;
    }
    free(data);
    free(ids);
    free(sizes);
    return rc;
}
