/*
 * snapshot_load.c - reading index.snapshot (format in snapshot.h): loading
 * it into the index at open, and checking it for kv_check_snapshot.
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

#include "debug.h"
#include "bloom.h"
#include "dict.h"
#include "index.h"
#include "io.h"
#include "logging.h"
#include "meta.h"
#include "record.h"
#include "segment.h"
#include "snapshot.h"
#include "store.h"

/* ---- reading
 *
 * The file is read through a window that slides along it, not whole: read
 * into one buffer, a 1M-key snapshot costs 30 MB of fresh memory (a page
 * fault every 4 KiB) and a copy that no cache still holds when it is parsed,
 * a third of the load. The window is reused; each stretch is checksummed as
 * it arrives and parsed while it is still in cache. The price is that entries
 * reach the index before the whole-file CRC is known: a snapshot that turns
 * out bad leaves an index for the caller to discard (recovery.c resets it).
 * So that a damaged file gets the verdict it got when the CRC was checked
 * first, a failure found after the magic reads the rest of the file and
 * yields to "checksum mismatch" when the CRC disagrees.
 */
#define SNAP_WINDOW    (256u << 10)
#define SNAP_MAX_TABLE (1u << 16) /* direct segment table: ids it may span */

_Static_assert(SNAP_WINDOW >= 2 * (SNAP_ENTRY_HEAD + UINT16_MAX), "the window holds any entry");

struct snap_reader {
    const struct kv_io *io;
    int fd;
    uint64_t file_len;
    uint64_t body_len; /* bytes the CRC covers: all but the last 4 */
    uint64_t read_off; /* body bytes read into the window so far */
    uint32_t crc;      /* of those bytes */
    uint8_t *win;
    size_t cap;       /* window size: SNAP_WINDOW, or the file's when smaller */
    size_t pos, fill; /* win[pos, fill) is read and not yet parsed */
    bool framed;      /* the magic is ours: the CRC has the last word */
    bool crc_ok;      /* set by settle() */
    int io_rc;        /* a read failed: the verdict is "cannot read" */
};

/* A segment the snapshot lists, and the bytes of records a load points at in it. */
struct listed_seg {
    uint32_t id;
    uint64_t size;
    uint64_t live;
};

struct snap_view {
    uint32_t version;
    uint32_t flags;
    uint32_t nsegs;
    uint64_t nkeys;
    uint32_t pos_seg;
    uint64_t pos_off;
    struct listed_seg *segs;
    /* Entries find their segment through by_id[id - min_id] (position in
     * segs + 1; 0 = not listed) when the ids span little, which they do in a
     * store's life; otherwise by a scan of segs. */
    uint32_t *by_id;
    uint32_t min_id;
    size_t by_id_len;
};

static kv_snapshot_status fail(char *reason, size_t rlen, const char *why)
{
    if (reason && rlen)
        snprintf(reason, rlen, "%s", why);
    return KV_SNAPSHOT_INVALID;
}

/* Opens dir/index.snapshot. Returns 0, 1 when there is none, or a negative
 * code. */
static int reader_open(struct snap_reader *r, const struct kv_io *io, const char *dir)
{
    char path[4096];
    memset(r, 0, sizeof(*r));
    r->io = io;
    r->fd = -1;
    int rc = kv__join_path(dir, SNAPSHOT_NAME, path, sizeof(path));
    if (rc != 0)
        return rc;
    r->fd = io->open(io->ctx, path, O_RDONLY | O_CLOEXEC, 0);
    if (r->fd < 0)
        return errno == ENOENT ? 1 : kv__errno_to_rc(errno);
    rc = kv__io_file_size(io, r->fd, &r->file_len);
    if (rc != 0)
        return rc;
    r->cap = r->file_len < SNAP_WINDOW ? (size_t)r->file_len : SNAP_WINDOW;
    r->win = malloc(r->cap ? r->cap : 1);
    return r->win ? 0 : KV_ENOMEM;
}

static void reader_close(struct snap_reader *r)
{
    if (r->fd >= 0)
        r->io->close(r->io->ctx, r->fd);
    free(r->win);
    r->fd = -1;
    r->win = NULL;
}

/* Moves the unparsed bytes to the front of the window and fills the rest
 * with the next bytes of the body. */
static int reader_refill(struct snap_reader *r)
{
    size_t keep = r->fill - r->pos;
    memmove(r->win, r->win + r->pos, keep);
    r->pos = 0;
    r->fill = keep;
    uint64_t left = r->body_len - r->read_off;
    size_t n = r->cap - keep < left ? r->cap - keep : (size_t)left;
    if (n == 0)
        return 0;
    int rc = kv__io_read_full(r->io, r->fd, r->win + keep, n, (off_t)r->read_off);
    if (rc != 0) {
        r->io_rc = rc;
        return rc;
    }
    r->crc = record_crc_update(r->crc, r->win + keep, n);
    r->read_off += n;
    r->fill += n;
    return 0;
}

/* Consumes n bytes (n <= cap); NULL when the body ends first or a read fails. */
static const uint8_t *reader_take(struct snap_reader *r, size_t n)
{
    if (r->fill - r->pos < n && reader_refill(r) != 0)
        return NULL;
    if (r->fill - r->pos < n)
        return NULL;
    const uint8_t *p = r->win + r->pos;
    r->pos += n;
    return p;
}

/* Reads the rest of the body and the CRC after it; true when they agree. */
static bool reader_crc_matches(struct snap_reader *r)
{
    while (r->io_rc == 0 && r->read_off < r->body_len) {
        r->pos = r->fill; /* parsing is over: the window only feeds the CRC */
        reader_refill(r);
    }
    uint8_t tail[4];
    if (r->io_rc == 0)
        r->io_rc = kv__io_read_full(r->io, r->fd, tail, sizeof(tail), (off_t)r->body_len);
    return r->io_rc == 0 && get_u32(tail) == r->crc;
}

/* The verdict on a framed snapshot whose checks ended in st: a doubt found on
 * the way yields to a checksum mismatch, and a clean walk still needs the CRC
 * to agree. r->io_rc says when the file could not be read to its end. */
static kv_snapshot_status settle(struct snap_reader *r, kv_snapshot_status st, char *reason,
                                 size_t rlen)
{
    if (!r->framed)
        return st;
    r->crc_ok = reader_crc_matches(r);
    if (r->io_rc != 0)
        return fail(reason, rlen, "cannot read it");
    if (!r->crc_ok)
        return fail(reason, rlen, "checksum mismatch");
    return st;
}

/* Builds v->by_id when the listed ids span little; duplicates keep the
 * first, as a scan would. */
static int index_listed(struct snap_view *v)
{
    if (v->nsegs == 0)
        return 0;
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t i = 0; i < v->nsegs; i++) {
        lo = v->segs[i].id < lo ? v->segs[i].id : lo;
        hi = v->segs[i].id > hi ? v->segs[i].id : hi;
    }
    if (hi - lo >= SNAP_MAX_TABLE)
        return 0;
    v->min_id = lo;
    v->by_id_len = (size_t)(hi - lo) + 1;
    v->by_id = calloc(v->by_id_len, sizeof(*v->by_id));
    if (!v->by_id)
        return KV_ENOMEM;
    for (uint32_t i = v->nsegs; i-- > 0;)
        v->by_id[v->segs[i].id - lo] = i + 1;
    return 0;
}

/* The listed segment id, or NULL. */
static struct listed_seg *find_listed(const struct snap_view *v, uint32_t id)
{
    if (v->by_id) {
        size_t i = (size_t)id - v->min_id; /* wraps for ids below min_id */
        return id >= v->min_id && i < v->by_id_len && v->by_id[i] ? &v->segs[v->by_id[i] - 1]
                                                                  : NULL;
    }
    for (uint32_t i = 0; i < v->nsegs; i++)
        if (v->segs[i].id == id)
            return &v->segs[i];
    return NULL;
}

static void view_free(struct snap_view *v)
{
    free(v->segs);
    free(v->by_id);
    memset(v, 0, sizeof(*v));
}

/* Reads the magic, the header and the segment list into *v. */
static kv_snapshot_status read_head(struct snap_reader *r, struct snap_view *v, int *err,
                                    char *reason, size_t rlen)
{
    uint8_t magic[SNAP_MAGIC_LEN];
    if (r->file_len >= SNAP_MAGIC_LEN &&
        (r->io_rc = kv__io_read_full(r->io, r->fd, magic, sizeof(magic), 0)) != 0)
        return fail(reason, rlen, "cannot read it");
    if (r->file_len >= SNAP_MAGIC_LEN && memcmp(magic, SNAP_GO_MAGIC, SNAP_MAGIC_LEN) == 0) {
        if (reason && rlen)
            snprintf(reason, rlen,
                     "written by the original Go implementation (offsets not "
                     "recorded)");
        return KV_SNAPSHOT_FOREIGN;
    }
    if (r->file_len < SNAP_HEADER_LEN + 4 || memcmp(magic, SNAP_MAGIC, SNAP_MAGIC_LEN) != 0)
        return fail(reason, rlen, "not a snapshot file");
    r->framed = true;
    r->body_len = r->file_len - 4;
    const uint8_t *p = reader_take(r, SNAP_HEADER_LEN);
    if (!p)
        return fail(reason, rlen, "cannot read it");
    v->version = get_u32(p + 8);
    if (v->version < 1 || v->version > SNAP_VERSION)
        return fail(reason, rlen, "unknown version");
    v->flags = get_u32(p + 12);
    if (v->flags & ~(v->version >= 4 ? SNAP_FLAG_KEY_ORDER : 0u))
        return fail(reason, rlen, "unknown flags");
    v->nsegs = get_u32(p + 16);
    v->nkeys = get_u64(p + 20);
    v->pos_seg = get_u32(p + 28);
    v->pos_off = get_u64(p + 32);
    if (v->nsegs > (r->body_len - SNAP_HEADER_LEN) / SNAP_SEG_LEN)
        return fail(reason, rlen, "segment list longer than the file");
    if (v->nkeys > (r->body_len - SNAP_HEADER_LEN) / (SNAP_ENTRY_HEAD + 1))
        return fail(reason, rlen, "more keys than the file can hold");
    v->segs = malloc((v->nsegs ? v->nsegs : 1) * sizeof(*v->segs));
    if (!v->segs) {
        *err = KV_ENOMEM;
        return fail(reason, rlen, "out of memory");
    }
    for (uint32_t i = 0; i < v->nsegs; i++) {
        if (!(p = reader_take(r, SNAP_SEG_LEN)))
            return fail(reason, rlen, "cannot read it");
        v->segs[i] = (struct listed_seg){.id = get_u32(p), .size = get_u64(p + 4)};
    }
    if ((*err = index_listed(v)) != 0)
        return fail(reason, rlen, "out of memory");
    return KV_SNAPSHOT_VALID;
}

/*
 * Reads the bloom filter section of a version 2 snapshot. When into is not
 * NULL and the stored filter has the shape bits_per_key gives its capacity,
 * *into becomes that filter and *used is set; otherwise the section is only
 * read past (and the caller builds the filter from the keys).
 */
static kv_snapshot_status read_bloom(struct snap_reader *r, const struct snap_view *v,
                                     struct bloom *into, unsigned bits_per_key, bool *used,
                                     int *err, char *reason, size_t rlen)
{
    *used = false;
    if (v->version < 2)
        return KV_SNAPSHOT_VALID;
    const uint8_t *p = reader_take(r, SNAP_BLOOM_HEAD);
    if (!p)
        return fail(reason, rlen, "cannot read it");
    unsigned k = get_u32(p);
    uint64_t capacity = get_u64(p + 4), inserted = get_u64(p + 12), nblocks = get_u64(p + 20);
    uint64_t left = r->body_len - r->read_off + (r->fill - r->pos);
    if (nblocks > left / (BLOOM_BLOCK_WORDS * 8))
        return fail(reason, rlen, "bloom filter longer than the file");
    unsigned want_k = 0;
    bool fits = into && nblocks > 0 && capacity <= (UINT64_C(1) << 40) &&
                bloom_blocks_for(capacity, bits_per_key, &want_k) == nblocks && want_k == k;
    if (fits) {
        bloom_destroy(into);
        if ((*err = bloom_init(into, capacity, bits_per_key)) != 0)
            return fail(reason, rlen, "out of memory");
        into->inserted = inserted;
    }
    uint64_t words = nblocks * BLOOM_BLOCK_WORDS;
    for (uint64_t done = 0; done < words;) {
        size_t n = words - done < 8192 ? (size_t)(words - done) : 8192;
        if (!(p = reader_take(r, n * 8)))
            return fail(reason, rlen, "cannot read it");
        for (size_t i = 0; fits && i < n; i++)
            into->blocks[done + i] = get_u64(p + 8 * i);
        done += n;
    }
    *used = fits;
    return KV_SNAPSHOT_VALID;
}

/*
 * Reads the META names of a version 3 snapshot, each of which must lie
 * inside a listed segment; into s's table when s is not NULL.
 */
static kv_snapshot_status read_metas(struct snap_reader *r, const struct snap_view *v, kv_store *s,
                                     int *err, char *reason, size_t rlen)
{
    if (v->version < 3)
        return KV_SNAPSHOT_VALID;
    const uint8_t *p = reader_take(r, 4);
    if (!p)
        return fail(reason, rlen, "cannot read it");
    uint32_t n = get_u32(p);
    for (uint32_t i = 0; i < n; i++) {
        if (!(p = reader_take(r, SNAP_META_HEAD)))
            return fail(reason, rlen, "META names run past the end of the file");
        size_t name_len = get_u16(p), val_len = get_u32(p + 10);
        uint32_t seg = get_u32(p + 2), off = get_u32(p + 6);
        const struct listed_seg *ls = find_listed(v, seg);
        if (name_len == 0 || val_len > KV_MAX_META_LEN)
            return fail(reason, rlen, "a META name has a bad length");
        if (!ls || (uint64_t)off + record_size(name_len, val_len) > ls->size)
            return fail(reason, rlen, "a META name points outside its segment");
        if (!(p = reader_take(r, name_len + val_len)))
            return fail(reason, rlen, "META names run past the end of the file");
        if (s && (*err = kv__meta_apply(s, p, name_len, p + name_len, val_len, seg, off)) != 0)
            return fail(reason, rlen, "out of memory");
    }
    return KV_SNAPSHOT_VALID;
}

/*
 * Reads the dictionaries of a version 3 snapshot: each must be loaded in s,
 * or (s NULL) its file present in dir.
 */
static kv_snapshot_status read_dicts(struct snap_reader *r, const struct snap_view *v, kv_store *s,
                                     const char *dir, char *reason, size_t rlen)
{
    if (v->version < 3)
        return KV_SNAPSHOT_VALID;
    const uint8_t *p = reader_take(r, 4);
    if (!p)
        return fail(reason, rlen, "cannot read it");
    uint32_t n = get_u32(p);
    for (uint32_t i = 0; i < n; i++) {
        if (!(p = reader_take(r, 4)))
            return fail(reason, rlen, "dictionaries run past the end of the file");
        uint32_t id = get_u32(p);
        bool present;
        if (s) {
            struct kv_dict *d = kv__dict_get(s, id);
            present = d != NULL;
            kv__dict_put(d);
        } else {
            char path[4096];
            int fd = kv__dict_path(dir, id, false, path, sizeof(path)) == 0
                         ? r->io->open(r->io->ctx, path, O_RDONLY | O_CLOEXEC, 0)
                         : -1;
            present = fd >= 0;
            if (present)
                r->io->close(r->io->ctx, fd);
        }
        if (!present) {
            if (reason && rlen)
                snprintf(reason, rlen, "dictionary dict-%u.zdict it names is missing", id);
            return KV_SNAPSHOT_INVALID;
        }
    }
    return KV_SNAPSHOT_VALID;
}

/* Checks every listed segment against the files found (ids/sizes). */
static kv_snapshot_status check_segments(const struct snap_view *v, const uint32_t *ids,
                                         const uint64_t *sizes, size_t n, char *reason, size_t rlen)
{
    const struct listed_seg *pos = find_listed(v, v->pos_seg);
    if (!pos || pos->size != v->pos_off)
        return fail(reason, rlen, "its log position is not among its segments");
    for (uint32_t i = 0; i < v->nsegs; i++) {
        size_t j = 0;
        while (j < n && ids[j] != v->segs[i].id)
            j++;
        if (j == n) {
            if (reason && rlen)
                snprintf(reason, rlen, "segment %u it names is missing", v->segs[i].id);
            return KV_SNAPSHOT_INVALID;
        }
        if (sizes[j] < v->segs[i].size) {
            if (reason && rlen)
                snprintf(reason, rlen, "segment %u is shorter than it records", v->segs[i].id);
            return KV_SNAPSHOT_INVALID;
        }
    }
    return KV_SNAPSHOT_VALID;
}

/* Entries are handed on a batch at a time, all inside the window (valid
 * until the next refill), so that a loader can overlap their cache misses. */
#define LOAD_BATCH 32

struct snap_entry {
    const uint8_t *key;
    uint16_t key_len;
    struct kv_loc loc;
    uint64_t expire_at; /* 0: none */
    struct listed_seg *seg;
};

/* Returns 0, 1 for a key that appears twice, 2 when memory runs out. */
typedef int (*batch_fn)(void *ctx, const struct snap_entry *batch, size_t n);

/* Parses up to max complete entries from the window into batch, checking
 * each lies inside a listed segment. *n = 0 when the window holds none. */
static kv_snapshot_status take_entries(struct snap_reader *r, const struct snap_view *v,
                                       struct snap_entry *batch, size_t max, size_t *n,
                                       char *reason, size_t rlen)
{
    *n = 0;
    while (*n < max) {
        const uint8_t *p = r->win + r->pos;
        size_t avail = r->fill - r->pos;
        if (avail < SNAP_ENTRY_HEAD || avail - SNAP_ENTRY_HEAD < get_u16(p))
            break;
        struct snap_entry *e = &batch[*n];
        e->key_len = get_u16(p);
        e->loc = (struct kv_loc){
            .seg = get_u32(p + 2), .off = get_u32(p + 6), .val_len = get_u32(p + 10)};
        e->key = p + SNAP_ENTRY_HEAD;
        e->expire_at = 0;
        size_t tail = 0;
        if (v->version >= 5 && (e->loc.off & SNAP_OFF_EXPIRES)) {
            tail = SNAP_EXPIRY_LEN;
            if (avail - SNAP_ENTRY_HEAD - e->key_len < tail)
                break;
            e->loc.off &= ~SNAP_OFF_EXPIRES;
            e->expire_at = get_u64(p + SNAP_ENTRY_HEAD + e->key_len);
            if (e->expire_at == 0)
                return fail(reason, rlen, "an entry has an expiry of 0");
        }
        if (e->key_len == 0)
            return fail(reason, rlen, "an entry has a bad key length");
        e->seg = find_listed(v, e->loc.seg);
        if (!e->seg ||
            (uint64_t)e->loc.off + record_size(e->key_len, e->loc.val_len) > e->seg->size)
            return fail(reason, rlen, "an entry points outside its segment");
        r->pos += SNAP_ENTRY_HEAD + e->key_len + tail;
        (*n)++;
    }
    return KV_SNAPSHOT_VALID;
}

/* Walks the entries, handing them to fn (when not NULL) a batch at a time. */
static kv_snapshot_status walk_entries(struct snap_reader *r, const struct snap_view *v,
                                       batch_fn fn, void *ctx, int *fn_rc, char *reason,
                                       size_t rlen)
{
    struct snap_entry batch[LOAD_BATCH];
    uint64_t left = v->nkeys;
    while (left > 0) {
        size_t n;
        size_t max = left < LOAD_BATCH ? (size_t)left : LOAD_BATCH;
        kv_snapshot_status st = take_entries(r, v, batch, max, &n, reason, rlen);
        if (st != KV_SNAPSHOT_VALID)
            return st;
        if (n == 0) {
            size_t had = r->fill - r->pos;
            if (reader_refill(r) != 0)
                return fail(reason, rlen, "cannot read it");
            if (r->fill - r->pos > had)
                continue;
            /* The body ends inside this entry. */
            return fail(reason, rlen,
                        had < SNAP_ENTRY_HEAD ? "entries run past the end of the file"
                                              : "an entry has a bad key length");
        }
        if (fn && (*fn_rc = fn(ctx, batch, n)) != 0)
            return fail(reason, rlen, *fn_rc == 1 ? "a key appears twice" : "out of memory");
        left -= n;
    }
    return KV_SNAPSHOT_VALID;
}

/* Bytes of the body not parsed yet. */
static uint64_t body_left(const struct snap_reader *r)
{
    return r->body_len - r->read_off + (r->fill - r->pos);
}

/* References of the key order handed over a piece at a time. */
#define ORDER_PIECE 1024u

/*
 * Reads the key order section, when the snapshot has one, into the ordered
 * index of ix (NULL: only read past it), checking it against the entries of
 * the load b; without one, ix's ordered index is built by sorting. Then
 * nothing may follow.
 */
static kv_snapshot_status read_key_order(struct snap_reader *r, const struct snap_view *v,
                                         struct index *ix, const struct index_bulk *b, int *err,
                                         char *reason, size_t rlen)
{
    if (!(v->flags & SNAP_FLAG_KEY_ORDER)) {
        if (body_left(r) != 0)
            return fail(reason, rlen, "bytes after the last entry");
        if (ix && (*err = index_order_rebuild(ix)) != 0)
            return fail(reason, rlen, "out of memory");
        return KV_SNAPSHOT_VALID;
    }
    if (body_left(r) != 4 * v->nkeys)
        return fail(reason, rlen, "its key order does not have one entry per key");
    struct index_order_load load;
    if (ix)
        index_order_load_begin(ix, &load);
    uint32_t refs[ORDER_PIECE];
    for (uint64_t left = v->nkeys; left > 0;) {
        size_t n = left < ORDER_PIECE ? (size_t)left : ORDER_PIECE;
        const uint8_t *p = reader_take(r, 4 * n);
        if (!p) {
            if (ix)
                index_order_load_end(ix, &load, b);
            return fail(reason, rlen, "cannot read it");
        }
        for (size_t i = 0; i < n; i++)
            refs[i] = get_u32(p + 4 * i);
        if (ix)
            index_order_load_add(ix, &load, refs, n);
        left -= n;
    }
    int rc = ix ? index_order_load_end(ix, &load, b) : 0;
    if (rc == KV_ENOMEM) {
        *err = rc;
        return fail(reason, rlen, "out of memory");
    }
    return rc == 0 ? KV_SNAPSHOT_VALID
                   : fail(reason, rlen, "its key order does not name its entries");
}

struct loader {
    kv_store *s;
    struct index_bulk bulk;
    bool bloom_loaded; /* the snapshot's filter is in place: add no key to it */
};

/* Adds a batch to the index and the bloom filter: hashes first, and the
 * filter block of each prefetched, so that the batch's cache misses overlap.
 * Entries arrive in about ascending order of hash, so nearly all take their
 * slot without a probe, filling the slot array front to back. */
static int load_batch(void *ctx, const struct snap_entry *batch, size_t n)
{
    struct loader *l = ctx;
    kv_store *s = l->s;
    uint64_t hash[LOAD_BATCH];
    for (size_t i = 0; i < n; i++) {
        hash[i] = index_hash(batch[i].key, batch[i].key_len);
        if (!l->bloom_loaded)
            bloom_prefetch(&s->bloom, hash[i]);
    }
    for (size_t i = 0; i < n; i++) {
        const struct snap_entry *e = &batch[i];
        bool present;
        if (index_insert_new(&s->index, &l->bulk, hash[i], e->key, e->key_len, &e->loc,
                             e->expire_at, &present) != 0)
            return 2;
        if (present)
            return 1;
        if (!l->bloom_loaded)
            bloom_add(&s->bloom, hash[i]);
        e->seg->live += record_size(e->key_len, e->loc.val_len);
    }
    return 0;
}

/* Sizes the index once for the keys a snapshot holds, and the filter when
 * the snapshot's own is not taken. */
static int reserve_for(kv_store *s, uint64_t nkeys, bool bloom_loaded)
{
    if (index_reserve_load(&s->index, nkeys) != 0)
        return KV_ENOMEM;
    if (bloom_loaded)
        return 0;
    bloom_destroy(&s->bloom);
    return bloom_init(&s->bloom, 2 * nkeys, s->opts.bloom_bits_per_key);
}

int kv__snapshot_load(kv_store *s, const uint32_t *ids, size_t nids, uint32_t *pos_seg,
                      uint64_t *pos_off)
{
    KV_ASSERT(kv__rwlock_held_write(&s->rwlock));
    struct snap_reader r;
    struct snap_view v = {0};
    char reason[160] = "";
    int rc = reader_open(&r, s->io, s->dir);
    uint64_t *sizes = rc == 0 ? malloc((nids ? nids : 1) * sizeof(*sizes)) : NULL;
    if (rc == 0 && !sizes)
        rc = KV_ENOMEM;
    if (rc != 0) {
        reader_close(&r);
        if (rc == 1)
            return 1;
        kv__log(s, KV_LOG_WARN, "cannot read %s (%s): replaying the whole log", SNAPSHOT_NAME,
                kv_strerror(rc));
        return rc == KV_ENOMEM ? rc : 1;
    }
    for (size_t i = 0; i < nids; i++)
        sizes[i] = atomic_load(&kv__segtab_find(s, ids[i])->size);
    int err = 0, fn_rc = 0;
    kv_snapshot_status st = read_head(&r, &v, &err, reason, sizeof(reason));
    if (st == KV_SNAPSHOT_VALID)
        st = check_segments(&v, ids, sizes, nids, reason, sizeof(reason));
    struct loader ld = {.s = s};
    if (st == KV_SNAPSHOT_VALID)
        st = read_bloom(&r, &v, &s->bloom, s->opts.bloom_bits_per_key, &ld.bloom_loaded, &err,
                        reason, sizeof(reason));
    if (st == KV_SNAPSHOT_VALID)
        st = read_metas(&r, &v, s, &err, reason, sizeof(reason));
    if (st == KV_SNAPSHOT_VALID)
        st = read_dicts(&r, &v, s, s->dir, reason, sizeof(reason));
    if (st == KV_SNAPSHOT_VALID && (err = reserve_for(s, v.nkeys, ld.bloom_loaded)) != 0)
        st = fail(reason, sizeof(reason), "out of memory");
    if (st == KV_SNAPSHOT_VALID)
        st = walk_entries(&r, &v, load_batch, &ld, &fn_rc, reason, sizeof(reason));
    if (fn_rc == 2)
        err = KV_ENOMEM;
    if (st == KV_SNAPSHOT_VALID)
        st = read_key_order(&r, &v, &s->index, &ld.bulk, &err, reason, sizeof(reason));
    st = settle(&r, st, reason, sizeof(reason));
    for (uint32_t i = 0; st == KV_SNAPSHOT_VALID && i < v.nsegs; i++)
        if (v.segs[i].live)
            kv__segtab_find(s, v.segs[i].id)->live_bytes += v.segs[i].live;
    if (st == KV_SNAPSHOT_VALID) {
        *pos_seg = v.pos_seg;
        *pos_off = v.pos_off;
    }
    int io_rc = r.io_rc;
    /* Memory that runs out while loading a snapshot that checks out is a
     * failure of the open; for a damaged one it is one more reason to
     * replay. */
    bool oom = err != 0 && r.crc_ok;
    reader_close(&r);
    view_free(&v);
    free(sizes);
    if (oom)
        return KV_ENOMEM;
    if (io_rc != 0) {
        kv__log(s, KV_LOG_WARN, "cannot read %s (%s): replaying the whole log", SNAPSHOT_NAME,
                kv_strerror(io_rc));
        return 1;
    }
    if (st != KV_SNAPSHOT_VALID) {
        kv__log(s, st == KV_SNAPSHOT_FOREIGN ? KV_LOG_INFO : KV_LOG_WARN,
                "ignoring %s: %s; replaying the whole log", SNAPSHOT_NAME, reason);
        return 1;
    }
    return 0;
}

/* ---- the same checks without loading (kv_check_snapshot, inspect.c) */

int kv__snapshot_check(const struct kv_io *io, const char *dir, const uint32_t *ids,
                       const uint64_t *sizes, size_t n, kv_snapshot_status *status, uint64_t *keys,
                       char *reason, size_t reason_len)
{
    struct snap_reader r;
    struct snap_view v = {0};
    int rc = reader_open(&r, io, dir);
    if (rc == 1) {
        reader_close(&r);
        *status = KV_SNAPSHOT_ABSENT;
        if (reason && reason_len)
            snprintf(reason, reason_len, "no %s", SNAPSHOT_NAME);
        return 0;
    }
    if (rc == 0) {
        int fn_rc = 0;
        kv_snapshot_status st = read_head(&r, &v, &rc, reason, reason_len);
        if (st == KV_SNAPSHOT_VALID)
            st = check_segments(&v, ids, sizes, n, reason, reason_len);
        bool unused;
        if (st == KV_SNAPSHOT_VALID)
            st = read_bloom(&r, &v, NULL, 0, &unused, &rc, reason, reason_len);
        if (st == KV_SNAPSHOT_VALID)
            st = read_metas(&r, &v, NULL, &rc, reason, reason_len);
        if (st == KV_SNAPSHOT_VALID)
            st = read_dicts(&r, &v, NULL, dir, reason, reason_len);
        if (st == KV_SNAPSHOT_VALID)
            st = walk_entries(&r, &v, NULL, NULL, &fn_rc, reason, reason_len);
        if (st == KV_SNAPSHOT_VALID)
            st = read_key_order(&r, &v, NULL, NULL, &rc, reason, reason_len);
        st = settle(&r, st, reason, reason_len);
        if (rc == 0)
            rc = r.io_rc;
        if (rc == 0 && st == KV_SNAPSHOT_VALID) {
            if (keys)
                *keys = v.nkeys;
            if (reason && reason_len)
                snprintf(reason, reason_len, "valid");
        }
        if (rc == 0)
            *status = st;
    }
    reader_close(&r);
    view_free(&v);
    return rc;
}
