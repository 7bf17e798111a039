/*
 * segment_scan.c - reads a segment record by record, good or bad: the one
 * parser of the log, used by recovery and kv_scan().
 *
 * A record "checks out" when its magic, lengths and CRC-32 agree. Bytes that
 * do not check out are reported as one region reaching to the next position
 * where a record checks out again (resynchronisation on the magic), so one
 * damaged record never hides the records after it. Every record is verified
 * in full, values included, in windows of WINDOW bytes, so memory stays
 * bounded whatever the size of a value. The statuses it gives have one set of
 * names, kv_record_status_name(), for the log and for the tools alike.
 *
 * A record that checks out is one this version can read when its op code is
 * known and, for a SETX, its attribute block decodes (no unknown flag) and,
 * for a META, its payload is at most RECORD_META_MAX bytes; any other is
 * reported as KV_REC_UNKNOWN_OP, which recovery refuses (KV_EFORMAT) rather
 * than skip data it does not understand.
 *
 * A zero byte where a magic should be, followed by nothing but zeros to the
 * end of the file, is the preallocated space of an active segment (written
 * zeros ahead of the log, docs/FORMAT.md): one KV_REC_ZERO_TAIL region ends
 * the scan. Zeros followed by anything else are damage like any other bytes
 * that do not parse, and a record torn inside preallocated space (its header
 * written, the rest still zeros) fails its checksum: a torn record, not a
 * zero tail.
 *
 * A BATCH record checks out only when its own checksum holds and its payload
 * is exactly a run of complete records (SET, DELETE, SETX) that each check
 * out; it is reported, then each of them (in_batch). A batch that does not
 * check out must never show any of its records, though each inner record
 * looks like a plain one: resynchronising inside it would apply part of the
 * batch. So a damaged region that starts with a batch header reaches to the
 * batch's end: where its length field says (cut at the end of the file: a
 * torn batch), or, when that field is the damage, where the chain of records
 * behind the header ends and the four bytes there are the checksum such a
 * batch would have. And a record found by resynchronising after damage that
 * begins a chain of records followed by exactly that checksum was the inside
 * of a batch whose header was damaged: the region takes the batch whole.
 */
#include "segment_scan.h"

#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "record.h"

#define WINDOW (1u << 20)
/* Zeros after a torn record that count as preallocated space. */
#define ZERO_RUN_MIN 4096u
#define WINDOW_CAP   (WINDOW + RECORD_HEADER_LEN + KV_MAX_KEY_LEN + RECORD_TRAILER_LEN)

struct reader {
    const struct kv_io *io;
    int fd;
    uint64_t size;
    uint8_t *buf;
    uint64_t buf_off;
    size_t buf_len;
};

/* Makes bytes [off, off + len) readable at *out; len <= WINDOW_CAP and the
 * range lies inside the file. */
static int reader_peek(struct reader *r, uint64_t off, size_t len, const uint8_t **out)
{
    if (off >= r->buf_off && off + len <= r->buf_off + r->buf_len) {
        *out = r->buf + (off - r->buf_off);
        return 0;
    }
    size_t want = WINDOW_CAP;
    if (want > r->size - off)
        want = (size_t)(r->size - off);
    r->buf_len = 0;
    int rc = kv__io_read_full(r->io, r->fd, r->buf, want, (off_t)off);
    if (rc != 0)
        return rc;
    r->buf_off = off;
    r->buf_len = want;
    *out = r->buf;
    return 0;
}

enum probe {
    PROBE_OK,
    PROBE_UNKNOWN_OP,
    PROBE_BAD_CRC,
    PROBE_BAD_BATCH, /* a batch whose checksum holds but whose records do not parse */
    PROBE_INCOMPLETE,
    PROBE_GARBAGE
};

/* Record kinds a batch may hold. */
static bool op_inner(uint8_t op)
{
    return op == KV_OP_SET || op == KV_OP_DELETE || op == KV_OP_SETX;
}

/* The checksum over the record at pos (header h, complete in the file) and
 * the one stored in it, reading its value in windows. */
static int record_crcs(struct reader *r, uint64_t pos, const struct record_header *h, uint32_t *crc,
                       uint32_t *stored)
{
    const uint8_t *p;
    int rc = reader_peek(r, pos, RECORD_HEADER_LEN + h->key_len, &p);
    if (rc != 0)
        return rc;
    uint32_t c = record_crc_head(p, p + RECORD_HEADER_LEN, h->key_len);
    uint64_t voff = pos + RECORD_HEADER_LEN + h->key_len;
    for (uint64_t done = 0; done < h->val_len;) {
        size_t chunk = h->val_len - done > WINDOW ? WINDOW : (size_t)(h->val_len - done);
        rc = reader_peek(r, voff + done, chunk, &p);
        if (rc != 0)
            return rc;
        c = record_crc_update(c, p, chunk);
        done += chunk;
    }
    rc = reader_peek(r, voff + h->val_len, RECORD_TRAILER_LEN, &p);
    if (rc != 0)
        return rc;
    *crc = c;
    *stored = get_u32(p);
    return 0;
}

/* Whether a record of a kind a batch may hold starts at pos, lies before
 * limit and checks out; if so its length, and the CRC-32 of all its bytes
 * (magic to trailer) in *full. */
static int inner_record(struct reader *r, uint64_t pos, uint64_t limit, bool *ok, uint64_t *len,
                        uint32_t *full)
{
    static const uint8_t magic[2] = {RECORD_MAGIC0, RECORD_MAGIC1};
    const uint8_t *p;
    struct record_header h;
    *ok = false;
    if (limit < pos || limit - pos < RECORD_OVERHEAD + 1)
        return 0;
    int rc = reader_peek(r, pos, RECORD_HEADER_LEN, &p);
    if (rc != 0)
        return rc;
    if (!record_decode_header(p, &h) || !op_inner(h.op) || h.key_len == 0 ||
        h.key_len > KV_MAX_KEY_LEN || record_size(h.key_len, h.val_len) > limit - pos)
        return 0;
    uint32_t crc, stored;
    rc = record_crcs(r, pos, &h, &crc, &stored);
    if (rc != 0 || crc != stored)
        return rc;
    *ok = true;
    *len = record_size(h.key_len, h.val_len);
    uint8_t trailer[RECORD_TRAILER_LEN];
    put_u32(trailer, stored);
    uint32_t f = record_crc_update(0, magic, sizeof(magic));
    f = record_crc_combine(f, crc, *len - sizeof(magic) - RECORD_TRAILER_LEN);
    *full = record_crc_update(f, trailer, RECORD_TRAILER_LEN);
    return 0;
}

/* Walks the records that lie back to back from `from`, each checking out
 * and ending by limit: *end is where the chain stops, *crc the CRC-32 of its
 * bytes. */
static int walk_chain(struct reader *r, uint64_t from, uint64_t limit, uint64_t *end, uint32_t *crc)
{
    uint64_t pos = from;
    uint32_t c = 0;
    for (;;) {
        bool ok;
        uint64_t len = 0;
        uint32_t full = 0;
        int rc = inner_record(r, pos, limit, &ok, &len, &full);
        if (rc != 0)
            return rc;
        if (!ok)
            break;
        c = record_crc_combine(c, full, len);
        pos += len;
    }
    *end = pos;
    *crc = c;
    return 0;
}

/* The checksum of a BATCH record whose payload is payload_len bytes with
 * CRC-32 payload_crc. */
static uint32_t batch_crc(uint64_t payload_len, uint32_t payload_crc)
{
    uint8_t hdr[RECORD_HEADER_LEN];
    record_encode_header(hdr, KV_OP_BATCH, 0, (uint32_t)payload_len);
    uint32_t c = record_crc_update(0, hdr + 2, RECORD_HEADER_LEN - 2);
    return record_crc_combine(c, payload_crc, payload_len);
}

/* Whether the chain of records from `from` (it ends at *chain_end) is
 * followed by the checksum of a batch that holds exactly it: the inside of a
 * batch whose header begins 11 bytes before from. *end is then the batch's
 * end. */
static int batch_behind(struct reader *r, uint64_t from, bool *found, uint64_t *end,
                        uint64_t *chain_end_out)
{
    *found = false;
    uint64_t chain_end;
    uint32_t chain_crc;
    int rc = walk_chain(r, from, r->size, &chain_end, &chain_crc);
    *chain_end_out = rc == 0 ? chain_end : from;
    if (rc != 0 || chain_end == from || r->size - chain_end < RECORD_TRAILER_LEN ||
        chain_end - from > KV_MAX_VALUE_LEN)
        return rc;
    const uint8_t *p;
    rc = reader_peek(r, chain_end, RECORD_TRAILER_LEN, &p);
    if (rc != 0)
        return rc;
    if (get_u32(p) == batch_crc(chain_end - from, chain_crc)) {
        *found = true;
        *end = chain_end + RECORD_TRAILER_LEN;
    }
    return 0;
}

/* A BATCH record at pos whose header h is complete: its payload must be
 * exactly a chain of inner records, and its checksum hold. */
static int probe_batch(struct reader *r, uint64_t pos, const struct record_header *h,
                       uint32_t *stored, enum probe *out)
{
    uint64_t start = pos + RECORD_HEADER_LEN, stop = start + h->val_len;
    uint64_t chain_end;
    uint32_t chain_crc;
    int rc = walk_chain(r, start, stop, &chain_end, &chain_crc);
    const uint8_t *p;
    if (rc == 0)
        rc = reader_peek(r, stop, RECORD_TRAILER_LEN, &p);
    if (rc != 0)
        return rc;
    *stored = get_u32(p);
    if (chain_end == stop) {
        *out = batch_crc(h->val_len, chain_crc) == *stored ? PROBE_OK : PROBE_BAD_CRC;
        return 0;
    }
    /* The payload does not parse: tell a damaged batch from one written
     * wrong by the checksum over all of it. */
    uint32_t c = chain_crc;
    for (uint64_t done = chain_end; done < stop;) {
        size_t chunk = stop - done > WINDOW ? WINDOW : (size_t)(stop - done);
        rc = reader_peek(r, done, chunk, &p);
        if (rc != 0)
            return rc;
        uint32_t piece = record_crc_update(0, p, chunk);
        c = record_crc_combine(c, piece, chunk);
        done += chunk;
    }
    *out = batch_crc(h->val_len, c) == *stored ? PROBE_BAD_BATCH : PROBE_BAD_CRC;
    return 0;
}

/* Whether this version can read a record that checks out: a known op code,
 * a SETX whose attribute block decodes (its attributes go into rec), a META
 * no longer than RECORD_META_MAX. */
static bool readable(struct scan_record *rec)
{
    switch (rec->op) {
    case KV_OP_SET:
    case KV_OP_DELETE:
        return true;
    case KV_OP_SETX:
        return record_attrs_decode(rec->payload, rec->payload_len, &rec->attrs, &rec->attrs_len);
    case KV_OP_META:
        return rec->val_len <= RECORD_META_MAX;
    default:
        return false;
    }
}

/* Tries to read one record at pos. Whenever its header decodes, rec holds
 * its op and lengths; on PROBE_OK, UNKNOWN_OP, BAD_CRC and BAD_BATCH, also
 * its offset, length and checksum, with rec->key pointing into the reader's
 * window. */
static int probe(struct reader *r, uint64_t pos, struct scan_record *rec, enum probe *out)
{
    const uint8_t *p;
    struct record_header h;
    if (r->size - pos < RECORD_HEADER_LEN) {
        *out = PROBE_INCOMPLETE;
        return 0;
    }
    int rc = reader_peek(r, pos, RECORD_HEADER_LEN, &p);
    if (rc != 0)
        return rc;
    if (!record_decode_header(p, &h) || h.key_len > KV_MAX_KEY_LEN ||
        (h.op == KV_OP_BATCH && h.key_len != 0)) {
        *out = PROBE_GARBAGE;
        return 0;
    }
    rec->header = true;
    rec->op = h.op;
    rec->key_len = h.key_len;
    rec->val_len = h.val_len;
    uint64_t len = record_size(h.key_len, h.val_len);
    if (len > r->size - pos) {
        *out = PROBE_INCOMPLETE;
        return 0;
    }
    uint32_t crc = 0, stored = 0;
    if (h.op == KV_OP_BATCH)
        rc = probe_batch(r, pos, &h, &stored, out);
    else
        rc = record_crcs(r, pos, &h, &crc, &stored);
    if (rc != 0)
        return rc;
    /* Reading the value may have moved the window: bring the key, and the
     * head of the payload (none for a batch: its records are read apart),
     * back. */
    uint32_t head = h.op == KV_OP_BATCH             ? 0
                    : h.val_len < SCAN_PAYLOAD_HEAD ? h.val_len
                                                    : SCAN_PAYLOAD_HEAD;
    rc = reader_peek(r, pos, RECORD_HEADER_LEN + h.key_len + head, &p);
    if (rc != 0)
        return rc;
    rec->off = pos;
    rec->len = len;
    rec->key = p + RECORD_HEADER_LEN;
    rec->crc = stored;
    rec->payload = rec->key + h.key_len;
    rec->payload_len = head;
    if (h.op == KV_OP_BATCH)
        return 0;
    *out = crc != stored ? PROBE_BAD_CRC : readable(rec) ? PROBE_OK : PROBE_UNKNOWN_OP;
    return 0;
}

const char *kv_record_status_name(kv_record_status status)
{
    switch (status) {
    case KV_REC_OK:
        return "ok";
    case KV_REC_BAD_CHECKSUM:
        return "bad-checksum";
    case KV_REC_DAMAGED:
        return "damaged";
    case KV_REC_TORN:
        return "incomplete";
    case KV_REC_UNKNOWN_OP:
        return "unknown-op";
    case KV_REC_ZERO_TAIL:
        return "zero-tail";
    }
    return "?";
}

static bool probe_good(enum probe p)
{
    return p == PROBE_OK || p == PROBE_UNKNOWN_OP;
}

/* The first position at or after from where a record checks out, or the end
 * of the file. */
static int find_next_good(struct reader *r, uint64_t from, uint64_t *next)
{
    static const uint8_t magic[2] = {RECORD_MAGIC0, RECORD_MAGIC1};
    uint64_t pos = from;
    while (pos < r->size && r->size - pos >= RECORD_HEADER_LEN) {
        size_t n = r->size - pos > WINDOW ? WINDOW : (size_t)(r->size - pos);
        const uint8_t *p;
        int rc = reader_peek(r, pos, n, &p);
        if (rc != 0)
            return rc;
        const uint8_t *hit = memmem(p, n, magic, sizeof(magic));
        if (!hit) {
            pos += n - 1; /* the last byte may begin a magic */
            continue;
        }
        uint64_t cand = pos + (uint64_t)(hit - p);
        struct scan_record rec;
        enum probe pr;
        rc = probe(r, cand, &rec, &pr);
        if (rc != 0)
            return rc;
        if (probe_good(pr)) {
            *next = cand;
            return 0;
        }
        pos = cand + 1;
    }
    *next = r->size;
    return 0;
}

static kv_record_status region_status(enum probe pr, uint64_t len, const struct scan_record *rec,
                                      bool at_tail)
{
    if (pr == PROBE_BAD_CRC && len == rec->len)
        return KV_REC_BAD_CHECKSUM;
    if (at_tail && (pr == PROBE_INCOMPLETE || pr == PROBE_BAD_CRC))
        return KV_REC_TORN;
    return KV_REC_DAMAGED;
}

/* The end of a damaged region that starts with the header of a batch (rec):
 * the batch's whole extent, so that none of its records shows on its own. */
static int batch_region_end(struct reader *r, uint64_t pos, const struct scan_record *rec,
                            uint64_t *next)
{
    bool found;
    uint64_t end, chain_end;
    int rc = batch_behind(r, pos + RECORD_HEADER_LEN, &found, &end, &chain_end);
    if (rc != 0)
        return rc;
    if (found) {
        *next = end; /* only the header was damaged (its length) */
        return 0;
    }
    uint64_t claimed = pos + record_size(0, rec->val_len);
    *next = claimed < r->size ? claimed : r->size;
    if (*next < chain_end)
        *next = chain_end;
    return 0;
}

/* Where the damaged region that starts at pos (rec: what its header said,
 * if it decoded) ends: the batch's end for a batch header; else the next
 * record that checks out, unless that is the inside of a batch whose header
 * lay in the region (then the batch's end). */
static int region_end(struct reader *r, uint64_t pos, const struct scan_record *rec, uint64_t *next)
{
    if (rec->header && rec->op == KV_OP_BATCH)
        return batch_region_end(r, pos, rec, next);
    int rc = find_next_good(r, pos + 1, next);
    if (rc != 0 || *next >= r->size || *next < pos + RECORD_HEADER_LEN)
        return rc;
    bool found;
    uint64_t end, chain_end;
    rc = batch_behind(r, *next, &found, &end, &chain_end);
    if (rc == 0 && found)
        *next = end;
    return rc;
}

/* Reports the records inside batch, which checked out. */
static int report_inner(struct reader *r, const struct scan_record *batch, scan_fn fn, void *ctx)
{
    uint64_t pos = batch->off + RECORD_HEADER_LEN;
    uint64_t stop = batch->off + batch->len - RECORD_TRAILER_LEN;
    while (pos < stop) {
        const uint8_t *p;
        struct record_header h;
        int rc = reader_peek(r, pos, RECORD_HEADER_LEN, &p);
        if (rc != 0)
            return rc;
        record_decode_header(p, &h);
        uint64_t len = record_size(h.key_len, h.val_len);
        rc = reader_peek(r, pos + len - RECORD_TRAILER_LEN, RECORD_TRAILER_LEN, &p);
        if (rc != 0)
            return rc;
        uint32_t stored = get_u32(p);
        uint32_t head = h.val_len < SCAN_PAYLOAD_HEAD ? h.val_len : SCAN_PAYLOAD_HEAD;
        rc = reader_peek(r, pos, RECORD_HEADER_LEN + h.key_len + head, &p);
        if (rc != 0)
            return rc;
        struct scan_record in = {
            .off = pos,
            .len = len,
            .in_batch = true,
            .header = true,
            .op = h.op,
            .key = p + RECORD_HEADER_LEN,
            .key_len = h.key_len,
            .val_len = h.val_len,
            .crc = stored,
            .payload = p + RECORD_HEADER_LEN + h.key_len,
            .payload_len = head,
        };
        in.status = readable(&in) ? KV_REC_OK : KV_REC_UNKNOWN_OP;
        rc = fn(&in, ctx);
        if (rc != 0)
            return rc;
        pos += len;
    }
    return 0;
}

/* Whether every byte from pos to the end of the file is zero. */
static int zero_to_end(struct reader *r, uint64_t pos, bool *zero)
{
    *zero = false;
    while (pos < r->size) {
        size_t n = r->size - pos > WINDOW ? WINDOW : (size_t)(r->size - pos);
        const uint8_t *p;
        int rc = reader_peek(r, pos, n, &p);
        if (rc != 0)
            return rc;
        if (p[0] != 0 || memcmp(p, p + 1, n - 1) != 0)
            return 0;
        pos += n;
    }
    *zero = true;
    return 0;
}

/* The offset just after the last non-zero byte at or after from (from
 * itself when there is none). */
static int nonzero_end(struct reader *r, uint64_t from, uint64_t *end)
{
    uint64_t hi = r->size;
    while (hi > from) {
        size_t n = hi - from > WINDOW ? WINDOW : (size_t)(hi - from);
        const uint8_t *p;
        int rc = reader_peek(r, hi - n, n, &p);
        if (rc != 0)
            return rc;
        for (size_t i = n; i > 0; i--) {
            if (p[i - 1] != 0) {
                *end = hi - n + i;
                return 0;
            }
        }
        hi -= n;
    }
    *end = from;
    return 0;
}

/* Reports the zero tail at pos, if the file ends in one there; *tail says
 * whether it did. */
static int scan_zero_tail(struct reader *r, uint64_t pos, scan_fn fn, void *ctx, bool *tail)
{
    const uint8_t *b;
    *tail = false;
    int rc = reader_peek(r, pos, 1, &b);
    if (rc != 0 || b[0] != 0)
        return rc;
    rc = zero_to_end(r, pos, tail);
    if (rc != 0 || !*tail)
        return rc;
    struct scan_record rec = {
        .off = pos, .len = r->size - pos, .status = KV_REC_ZERO_TAIL, .at_tail = true};
    return fn(&rec, ctx);
}

int kv__scan_segment(const struct kv_io *io, int fd, uint64_t size, uint64_t start, scan_fn fn,
                     void *ctx)
{
    struct reader r = {.io = io, .fd = fd, .size = size};
    r.buf = malloc(WINDOW_CAP);
    if (!r.buf)
        return KV_ENOMEM;
    int rc = 0;
    uint64_t pos = start;
    while (rc == 0 && pos < size) {
        bool tail;
        rc = scan_zero_tail(&r, pos, fn, ctx, &tail);
        if (rc != 0 || tail)
            break;
        struct scan_record rec;
        enum probe pr = PROBE_GARBAGE;
        memset(&rec, 0, sizeof(rec));
        rc = probe(&r, pos, &rec, &pr);
        if (rc != 0)
            break;
        if (probe_good(pr)) {
            rec.status = pr == PROBE_OK ? KV_REC_OK : KV_REC_UNKNOWN_OP;
            rec.at_tail = pos + rec.len == size;
            pos += rec.len;
            rc = fn(&rec, ctx);
            if (rc == 0 && rec.op == KV_OP_BATCH && rec.status == KV_REC_OK)
                rc = report_inner(&r, &rec, fn, ctx);
            continue;
        }
        uint64_t next = size;
        rc = region_end(&r, pos, &rec, &next);
        if (rc != 0)
            break;
        /* A batch torn inside preallocated space ends where its header
         * says, with nothing but zeros after it: the log's tail too. */
        rec.at_tail = next == size;
        if (!rec.at_tail) {
            rc = zero_to_end(&r, next, &rec.at_tail);
            if (rc != 0)
                break;
        }
        if (rec.at_tail) {
            /* A record torn inside preallocated space: a page or more of
             * zeros after its last written byte is the zero tail, reported
             * apart (a shorter run may be the record's own bytes). */
            uint64_t end;
            rc = nonzero_end(&r, pos + 1, &end);
            if (rc != 0)
                break;
            if (size - end >= ZERO_RUN_MIN)
                next = end;
        }
        rec.status = region_status(pr, next - pos, &rec, rec.at_tail);
        rec.payload = NULL;
        rec.payload_len = 0;
        if (rec.status != KV_REC_BAD_CHECKSUM) {
            rec.key = NULL;
            rec.key_len = 0;
        } else {
            /* region_end moved the window: point the key at it again. */
            const uint8_t *p;
            rc = reader_peek(&r, pos, RECORD_HEADER_LEN + rec.key_len, &p);
            if (rc != 0)
                break;
            rec.key = p + RECORD_HEADER_LEN;
        }
        rec.off = pos;
        rec.len = next - pos;
        pos = next;
        rc = fn(&rec, ctx);
    }
    free(r.buf);
    return rc;
}
