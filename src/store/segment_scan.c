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

enum probe { PROBE_OK, PROBE_UNKNOWN_OP, PROBE_BAD_CRC, PROBE_INCOMPLETE, PROBE_GARBAGE };

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

/* Tries to read one record at pos. On PROBE_OK, UNKNOWN_OP and BAD_CRC, rec
 * holds its fields, with rec->key pointing into the reader's window. */
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
    if (!record_decode_header(p, &h) || h.key_len > KV_MAX_KEY_LEN) {
        *out = PROBE_GARBAGE;
        return 0;
    }
    uint64_t len = record_size(h.key_len, h.val_len);
    if (len > r->size - pos) {
        *out = PROBE_INCOMPLETE;
        return 0;
    }
    rc = reader_peek(r, pos, RECORD_HEADER_LEN + h.key_len, &p);
    if (rc != 0)
        return rc;
    uint32_t crc = record_crc_head(p, p + RECORD_HEADER_LEN, h.key_len);
    uint64_t voff = pos + RECORD_HEADER_LEN + h.key_len;
    for (uint64_t done = 0; done < h.val_len;) {
        size_t chunk = h.val_len - done > WINDOW ? WINDOW : (size_t)(h.val_len - done);
        rc = reader_peek(r, voff + done, chunk, &p);
        if (rc != 0)
            return rc;
        crc = record_crc_update(crc, p, chunk);
        done += chunk;
    }
    rc = reader_peek(r, voff + h.val_len, RECORD_TRAILER_LEN, &p);
    if (rc != 0)
        return rc;
    uint32_t stored = get_u32(p);
    /* Reading the value may have moved the window: bring the key, and the
     * head of the payload, back. */
    uint32_t head = h.val_len < SCAN_PAYLOAD_HEAD ? h.val_len : SCAN_PAYLOAD_HEAD;
    rc = reader_peek(r, pos, RECORD_HEADER_LEN + h.key_len + head, &p);
    if (rc != 0)
        return rc;
    rec->off = pos;
    rec->len = len;
    rec->op = h.op;
    rec->key = p + RECORD_HEADER_LEN;
    rec->key_len = h.key_len;
    rec->val_len = h.val_len;
    rec->crc = stored;
    rec->payload = rec->key + h.key_len;
    rec->payload_len = head;
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
            continue;
        }
        uint64_t next = size;
        rc = find_next_good(&r, pos + 1, &next);
        if (rc != 0)
            break;
        rec.at_tail = next == size;
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
            /* find_next_good moved the window: point the key at it again. */
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
