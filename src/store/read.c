/*
 * read.c - reading the record the index points at: finding it, pinning its
 * segment, and (after the rwlock is released) copying its value out of the
 * segment's mapping or by pread, checked against the record's checksum, and
 * decoded (expiry, decompression) when it is a SETX. kv_get, kv_stat and
 * kv_range read through here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "debug.h"
#include "bloom.h"
#include "compress.h"
#include "index.h"
#include "io.h"
#include "logging.h"
#include "read.h"
#include "record.h"
#include "rwlock.h"
#include "segment.h"
#include "store.h"

#define KEY_STACK_LEN 256

int kv__locate(kv_store *s, const void *key, size_t key_len, struct read_at *at)
{
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    uint64_t h = index_hash(key, key_len);
    /* The slot's cache miss overlaps the bloom filter's. */
    index_prefetch_slot(&s->index, h);
    if (!bloom_may_contain(&s->bloom, h)) {
        atomic_fetch_add_explicit(&s->n_bloom_negatives, 1, memory_order_relaxed);
        return KV_ENOTFOUND;
    }
    const struct index_entry *e = index_lookup(&s->index, h, key, key_len);
    if (!e) {
        if (s->bloom.blocks)
            atomic_fetch_add_explicit(&s->n_bloom_false_positives, 1, memory_order_relaxed);
        return KV_ENOTFOUND;
    }
    if (index_entry_expired(&s->index, e, kv__now_ms(s)))
        return KV_ENOTFOUND; /* absent, as the record would say */
    struct kv_loc loc = index_entry_loc(e);
    return kv__locate_loc(s, &loc, at);
}

int kv__locate_loc(kv_store *s, const struct kv_loc *loc, struct read_at *at)
{
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    at->loc = *loc;
    at->rec = NULL;
    at->fd = -1;
    at->seg = kv__segtab_find(s, at->loc.seg);
    if (NEVER(!at->seg)) {
        kv__log(s, KV_LOG_ERROR, "index names segment %u, which is not open", at->loc.seg);
        return KV_EIO;
    }
    return 0;
}

/* Checks the record read for key against its header and checksum: a SET or
 * SETX of key with the payload length the index has. *op receives its op;
 * with payload_crc, the CRC of the payload alone, from the same single pass
 * (computed apart and combined into the record's). */
static int verify_record(kv_store *s, const struct kv_loc *loc, const uint8_t *hdr,
                         const uint8_t *rec_key, const void *key, size_t key_len,
                         const void *payload, const uint8_t *trailer, uint8_t *op,
                         uint32_t *payload_crc)
{
    struct record_header h;
    bool ok = record_decode_header(hdr, &h) && (h.op == KV_OP_SET || h.op == KV_OP_SETX) &&
              h.key_len == key_len && h.val_len == loc->val_len &&
              memcmp(rec_key, key, key_len) == 0;
    if (ok && payload_crc) {
        uint32_t pcrc = record_crc_update(0, payload, loc->val_len);
        uint32_t crc =
            record_crc_combine(record_crc_head(hdr, rec_key, key_len), pcrc, loc->val_len);
        ok = crc == get_u32(trailer);
        *payload_crc = pcrc;
    } else if (ok) {
        uint32_t crc =
            record_crc_update(record_crc_head(hdr, rec_key, key_len), payload, loc->val_len);
        ok = crc == get_u32(trailer);
    }
    if (ok) {
        *op = h.op;
        return 0;
    }
    atomic_fetch_add(&s->n_checksum_errors, 1);
    kv__log(s, KV_LOG_ERROR, "segment %u offset %u: record failed its checksum on read", loc->seg,
            loc->off);
    return KV_ECORRUPT;
}

uint64_t kv__now_ms(const kv_store *s)
{
    return s->io->clock_ms(s->io->ctx);
}

/*
 * The value of a SETX whose payload (len bytes, CRC payload_crc) checked
 * out: a new buffer in *out (plus a zero byte) of *out_len bytes, and its
 * CRC-32 in *value_crc. An expired one is KV_ENOTFOUND; a compressed one is
 * decompressed and checked against its raw_crc (compress.c).
 */
static int setx_value(kv_store *s, const struct kv_loc *loc, const uint8_t *payload, size_t len,
                      uint32_t payload_crc, uint8_t **out, size_t *out_len, uint32_t *value_crc)
{
    struct record_attrs a;
    size_t alen;
    int rc = 0;
    if (!record_attrs_decode(payload, len, &a, &alen))
        rc = KV_ECORRUPT;
    else if ((a.flags & RECORD_ATTR_EXPIRES) && a.expire_at <= kv__now_ms(s))
        return KV_ENOTFOUND;
    else if (a.flags & RECORD_ATTR_ZSTD)
        rc = kv__value_decompress(s, &a, payload + alen, len - alen, out);
    if (rc == KV_ECORRUPT) {
        atomic_fetch_add(&s->n_checksum_errors, 1);
        kv__log(s, KV_LOG_ERROR,
                "segment %u offset %u: the value of a record does not decode to the bytes it "
                "records",
                loc->seg, loc->off);
    }
    if (rc != 0)
        return rc;
    if (a.flags & RECORD_ATTR_ZSTD) {
        *out_len = a.raw_len;
        if (value_crc)
            *value_crc = a.raw_crc;
        return 0;
    }
    size_t vlen = len - alen;
    uint8_t *buf = malloc(vlen + 1);
    if (!buf)
        return KV_ENOMEM;
    memcpy(buf, payload + alen, vlen);
    buf[vlen] = 0;
    *out = buf;
    *out_len = vlen;
    if (value_crc)
        *value_crc = record_value_crc(payload_crc, record_crc_update(0, payload, alen), vlen);
    return 0;
}

/* Whether reading the SETX whose payload (len bytes) this is needs the CRC
 * of the payload alone: only a value stored as it is derives its CRC from
 * the record's (a compressed one has raw_crc), and splitting the record's
 * checksum costs a crc32_combine per read. The flags byte is only a hint
 * here: the record's checksum, which covers it, is verified either way. */
static bool setx_needs_payload_crc(const uint8_t *payload, size_t len)
{
    return len == 0 || !(payload[0] & RECORD_ATTR_ZSTD);
}

/* Reads the value of the record at rec (a whole record in memory) into a
 * new buffer. A SET's value is copied before it is checked, so what the
 * caller gets is what the checksum covered; a SETX is checked in place and
 * then decoded (the bytes of a segment's mapping that an index entry names
 * never change, segment.c). */
static int copy_value(kv_store *s, const struct read_at *at, const uint8_t *rec, const void *key,
                      size_t key_len, uint8_t **out, size_t *out_len, uint32_t *value_crc)
{
    const uint8_t *rec_key = rec + RECORD_HEADER_LEN;
    const uint8_t *payload = rec_key + key_len;
    const uint8_t *trailer = payload + at->loc.val_len;
    uint8_t op;
    uint32_t pcrc = 0;
    if (rec[2] == KV_OP_SETX) {
        int rc = verify_record(s, &at->loc, rec, rec_key, key, key_len, payload, trailer, &op,
                               setx_needs_payload_crc(payload, at->loc.val_len) ? &pcrc : NULL);
        if (rc == 0 && op == KV_OP_SETX)
            rc = setx_value(s, &at->loc, payload, at->loc.val_len, pcrc, out, out_len, value_crc);
        return rc;
    }
    uint8_t *buf = malloc((size_t)at->loc.val_len + 1);
    if (!buf)
        return KV_ENOMEM;
    memcpy(buf, payload, at->loc.val_len);
    int rc = verify_record(s, &at->loc, rec, rec_key, key, key_len, buf, trailer, &op,
                           value_crc ? &pcrc : NULL);
    if (rc == 0 && op != KV_OP_SET)
        rc = KV_ECORRUPT; /* changed under us: no longer what the first byte said */
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[at->loc.val_len] = 0;
    *out = buf;
    *out_len = at->loc.val_len;
    if (value_crc)
        *value_crc = pcrc;
    return 0;
}

/* Reads the record at names through the segment's descriptor, straight
 * into a new value buffer; the segment is pinned. */
static int read_value(kv_store *s, const struct read_at *at, int fd, const void *key,
                      size_t key_len, uint8_t **out, size_t *out_len, uint32_t *value_crc)
{
    uint8_t hdr[RECORD_HEADER_LEN], trailer[RECORD_TRAILER_LEN];
    uint8_t key_stack[KEY_STACK_LEN];
    uint8_t *rec_key = key_len <= sizeof(key_stack) ? key_stack : malloc(key_len);
    uint8_t *buf = malloc((size_t)at->loc.val_len + 1);
    int rc = 0;
    if (!rec_key || !buf) {
        rc = KV_ENOMEM;
        goto out;
    }
    struct iovec iov[4] = {
        {.iov_base = hdr, .iov_len = sizeof(hdr)},
        {.iov_base = rec_key, .iov_len = key_len},
        {.iov_base = buf, .iov_len = at->loc.val_len},
        {.iov_base = trailer, .iov_len = sizeof(trailer)},
    };
    rc = kv__io_readv_full(s->io, fd, iov, 4, (off_t)at->loc.off);
    if (rc != 0) {
        kv__log(s, KV_LOG_ERROR, "read of segment %u offset %u failed: %s", at->loc.seg,
                at->loc.off, rc == KV_ECORRUPT ? "file too short" : strerror(errno));
        if (rc == KV_ECORRUPT)
            atomic_fetch_add(&s->n_checksum_errors, 1);
        goto out;
    }
    uint8_t op;
    uint32_t pcrc = 0;
    bool setx = hdr[2] == KV_OP_SETX;
    bool want_pcrc = setx ? setx_needs_payload_crc(buf, at->loc.val_len) : value_crc != NULL;
    rc = verify_record(s, &at->loc, hdr, rec_key, key, key_len, buf, trailer, &op,
                       want_pcrc ? &pcrc : NULL);
    if (rc == 0 && op == KV_OP_SETX) {
        rc = setx_value(s, &at->loc, buf, at->loc.val_len, pcrc, out, out_len, value_crc);
    } else if (rc == 0) {
        buf[at->loc.val_len] = 0;
        *out = buf;
        *out_len = at->loc.val_len;
        if (value_crc)
            *value_crc = pcrc;
        buf = NULL;
    }
out:
    if (rec_key != key_stack)
        free(rec_key);
    free(buf);
    return rc;
}

int kv__read_begin(kv_store *s, struct read_at *at, size_t key_len)
{
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    uint64_t len = record_size(key_len, at->loc.val_len);
    at->rec = kv__segment_view(s, at->seg, at->loc.off, len);
    at->fd = -1;
    kv__segment_pin(at->seg);
    if (at->rec)
        return 0;
    int rc = kv__segment_get_fd(s, at->seg, &at->fd);
    if (rc != 0) {
        kv__segment_unpin(at->seg);
        at->fd = -1;
    }
    return rc;
}

int kv__read_value(kv_store *s, const struct read_at *at, const void *key, size_t key_len,
                   uint8_t **out, size_t *out_len, uint32_t *value_crc)
{
    if (at->rec)
        return copy_value(s, at, at->rec, key, key_len, out, out_len, value_crc);
    return read_value(s, at, at->fd, key, key_len, out, out_len, value_crc);
}

/* Reads len bytes at off of the record (mapped or by descriptor). */
static int read_part(kv_store *s, const struct read_at *at, uint64_t off, void *buf, size_t len)
{
    if (at->rec) {
        memcpy(buf, at->rec + off, len);
        return 0;
    }
    int rc = kv__io_read_full(s->io, at->fd, buf, len, (off_t)(at->loc.off + off));
    if (rc != 0)
        kv__log(s, KV_LOG_ERROR, "read of segment %u offset %u failed: %s", at->loc.seg,
                at->loc.off, rc == KV_ECORRUPT ? "file too short" : strerror(errno));
    return rc;
}

int kv__stat_record(const uint8_t *head, size_t head_len, uint32_t record_crc, const void *key,
                    size_t key_len, uint64_t val_len, kv_stat_info *out)
{
    struct record_header h = {0};
    const uint8_t *rec_key = head + RECORD_HEADER_LEN;
    if (head_len < RECORD_HEADER_LEN + key_len || !record_decode_header(head, &h) ||
        h.key_len != key_len || h.val_len != val_len || memcmp(rec_key, key, key_len) != 0 ||
        (h.op != KV_OP_SET && h.op != KV_OP_SETX))
        return KV_ECORRUPT;
    struct record_attrs attrs = {0};
    size_t attr_len = 0;
    size_t avail = head_len - RECORD_HEADER_LEN - key_len;
    if (h.op == KV_OP_SETX &&
        !record_attrs_decode(rec_key + key_len, avail < val_len ? avail : val_len, &attrs,
                             &attr_len))
        return KV_EFORMAT;
    uint32_t head_crc =
        record_crc_update(record_crc_head(head, rec_key, key_len), rec_key + key_len, attr_len);
    kv_stat_info st = {.size = val_len - attr_len, .expire_at_ms = attrs.expire_at};
    st.value_crc = record_value_crc(record_crc, head_crc, st.size);
    if (attrs.flags & RECORD_ATTR_ZSTD) {
        st.size = attrs.raw_len;
        st.value_crc = attrs.raw_crc;
    }
    *out = st;
    return 0;
}

int kv__read_stat(kv_store *s, const struct read_at *at, const void *key, size_t key_len,
                  kv_stat_info *out)
{
    uint64_t val_len = at->loc.val_len;
    size_t attr_avail = val_len < RECORD_ATTRS_MAX ? (size_t)val_len : RECORD_ATTRS_MAX;
    size_t head_len = RECORD_HEADER_LEN + key_len + attr_avail;
    uint8_t stack[RECORD_HEADER_LEN + KEY_STACK_LEN + RECORD_ATTRS_MAX];
    uint8_t *head = head_len <= sizeof(stack) ? stack : malloc(head_len);
    uint8_t trailer[RECORD_TRAILER_LEN];
    if (!head)
        return KV_ENOMEM;
    int rc = read_part(s, at, 0, head, head_len);
    if (rc == 0)
        rc = read_part(s, at, RECORD_HEADER_LEN + key_len + val_len, trailer, sizeof(trailer));
    if (rc == 0)
        rc = kv__stat_record(head, head_len, get_u32(trailer), key, key_len, val_len, out);
    if (rc == KV_ECORRUPT) {
        atomic_fetch_add(&s->n_checksum_errors, 1);
        kv__log(s, KV_LOG_ERROR, "segment %u offset %u: the record does not match its index entry",
                at->loc.seg, at->loc.off);
    }
    if (head != stack)
        free(head);
    return rc;
}

/*
 * Pins the segment of position and takes its descriptor, under the rwlock:
 * KV_ENOTFOUND when the segment existed and a compaction has removed it
 * since, KV_EINVAL when no segment of that id ever existed (0, or newer
 * than the active one). *size receives the bytes written to it.
 */
static int pin_position(kv_store *s, uint32_t seg_id, struct segment **seg, int *fd, uint64_t *size)
{
    kv__rdlock(&s->rwlock);
    int rc = 0;
    *seg = kv__segtab_find(s, seg_id);
    if (!*seg) {
        rc = seg_id != 0 && s->active && seg_id < s->active->id ? KV_ENOTFOUND : KV_EINVAL;
    } else {
        *size = atomic_load(&(*seg)->size);
        kv__segment_pin(*seg);
        rc = kv__segment_get_fd(s, *seg, fd);
        if (rc != 0)
            kv__segment_unpin(*seg);
    }
    kv__unlock(&s->rwlock);
    return rc;
}

int kv__read_key_at(kv_store *s, uint64_t position, uint8_t **key, size_t *key_len)
{
    uint32_t seg_id = (uint32_t)(position >> KV_POSITION_OFF_BITS);
    uint64_t off = position & ((UINT64_C(1) << KV_POSITION_OFF_BITS) - 1);
    struct segment *seg;
    int fd = -1;
    uint64_t size = 0;
    int rc = pin_position(s, seg_id, &seg, &fd, &size);
    if (rc != 0)
        return rc;
    /* A segment never changes below its size, so the record is the one the
     * position was taken from, or (a number that was never a position) not
     * a record at all: its header must hold, inside the segment. */
    uint8_t hdr[RECORD_HEADER_LEN];
    struct record_header h = {0};
    uint8_t *buf = NULL;
    if (off + RECORD_OVERHEAD > size)
        rc = KV_EINVAL;
    else
        rc = kv__io_read_full(s->io, fd, hdr, sizeof(hdr), (off_t)off);
    if (rc == 0 && (!record_decode_header(hdr, &h) || (h.op != KV_OP_SET && h.op != KV_OP_SETX) ||
                    h.key_len == 0 || h.key_len > KV_MAX_KEY_LEN ||
                    off + record_size(h.key_len, h.val_len) > size))
        rc = KV_EINVAL;
    if (rc == 0 && !(buf = malloc((size_t)h.key_len + 1)))
        rc = KV_ENOMEM;
    if (rc == 0)
        rc = kv__io_read_full(s->io, fd, buf, h.key_len, (off_t)(off + RECORD_HEADER_LEN));
    kv__segment_put_fd(s, seg);
    kv__segment_unpin(seg);
    if (rc == KV_ECORRUPT)
        rc = KV_EINVAL; /* shorter than its size says: not a record of the store */
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[h.key_len] = 0;
    *key = buf;
    *key_len = h.key_len;
    return 0;
}

void kv__read_end(kv_store *s, struct read_at *at)
{
    if (!at->rec)
        kv__segment_put_fd(s, at->seg);
    kv__segment_unpin(at->seg);
}
