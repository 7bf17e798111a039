/*
 * batch.c - the records of a kv_write call (see batch.h).
 *
 * Encoding runs in the caller's thread when the call is made, before the
 * unit is queued: every record gets its checksum there, so that the commit
 * round only places records, and the CPU work of many writers runs on their
 * own threads. The value's own CRC-32 (value_crc, the etag) comes from the
 * same pass, computed apart and combined into the record's checksum (a
 * short value is passed over twice instead: cheaper than a combination). A
 * PUT's value is encoded for its record there too (compress.c): as it is (a
 * SET), or compressed or with its expiry (a SETX, whose value_crc is the
 * original value's, taken by that encoding).
 *
 * A BATCH record's checksum is the CRC-32 of its header fields and of the
 * inner records back to back. Which records a batch writes is known only in
 * its round (a DEL of an absent key writes nothing), so the checksum is made
 * there: a record held whole in the unit (at most UNIT_SMALL_RECORD bytes)
 * is passed over again, and for a longer one, whose value stays the
 * caller's, its CRC-32 over all its bytes (full_crc) is taken at encoding
 * and combined in (CRC-32 is linear), without a second pass over the value.
 */
#include "batch.h"

#include <string.h>

#include "compress.h"
#include "index.h"
#include "record.h"

static bool key_ok(const kv_op *op)
{
    return op->key && op->key_len >= 1 && op->key_len <= KV_MAX_KEY_LEN;
}

int kv__unit_check(const kv_op *ops, size_t n)
{
    if (!ops || n == 0)
        return KV_EINVAL;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const kv_op *op = &ops[i];
        bool type_ok =
            op->type == KV_WRITE_PUT || op->type == KV_WRITE_DEL || op->type == KV_WRITE_CHECK;
        bool expiry_check = op->type == KV_WRITE_CHECK && op->cond == KV_IF_EXPIRY;
        bool cond_ok = op->cond == KV_IF_ANY || op->cond == KV_IF_ABSENT ||
                       op->cond == KV_IF_PRESENT || op->cond == KV_IF_CRC || expiry_check;
        /* An expiry is a PUT's (or what a CHECK compares with), and one
         * kept is not one given too. */
        bool put = op->type == KV_WRITE_PUT;
        bool expiry_ok = (op->flags & ~KV_KEEP_EXPIRY) == 0 && (put || op->flags == 0) &&
                         (put || expiry_check || op->expire_at_ms == 0) &&
                         !(op->expire_at_ms != 0 && (op->flags & KV_KEEP_EXPIRY));
        if (!type_ok || !cond_ok || !key_ok(op) || !expiry_ok)
            return KV_EINVAL;
        if (op->type == KV_WRITE_DEL)
            total += record_size(op->key_len, 0);
        if (!put)
            continue;
        if (!op->val && op->val_len > 0)
            return KV_EINVAL;
        if (op->val_len > KV_MAX_VALUE_LEN)
            return KV_ETOOBIG;
        total += record_size(op->key_len, op->val_len);
    }
    /* Several records travel as one BATCH record, whose payload has a 32-bit
     * length like any value. */
    if (n > 1 && total > KV_MAX_VALUE_LEN)
        return KV_ETOOBIG;
    return 0;
}

/* Whether a PUT's record may carry an expiry: one given, or one kept (the
 * round learns which, and may encode the record again with it). */
static bool may_expire(const kv_op *op)
{
    return op->expire_at_ms != 0 || (op->flags & KV_KEEP_EXPIRY);
}

/* The most bytes op's record may take: a PUT's value grows by an attribute
 * block when it has an expiry (compression only ever shortens it). */
static uint64_t op_record_size(const kv_op *op)
{
    switch (op->type) {
    case KV_WRITE_PUT:
        return record_size(op->key_len, op->val_len + (may_expire(op) ? RECORD_ATTRS_MAX : 0));
    case KV_WRITE_DEL:
        return record_size(op->key_len, 0);
    case KV_WRITE_CHECK:
        break;
    }
    if (op->type == KV__WRITE_META)
        return record_size(op->key_len, op->val_len);
    return 0;
}

/* Bytes of the unit's buffer one op takes. */
static size_t op_storage(const kv_op *op)
{
    uint64_t len = op_record_size(op);
    if (len == 0)
        return 0;
    return len <= UNIT_SMALL_RECORD ? (size_t)len : RECORD_OVERHEAD;
}

size_t kv__unit_storage(const kv_op *ops, size_t n)
{
    size_t bytes = n * sizeof(struct op_rec);
    for (size_t i = 0; i < n; i++)
        bytes += op_storage(&ops[i]);
    return bytes;
}

/* The record checksum over head (the CRC of op, lengths and key) and the
 * value. With value_crc, the value's own CRC too: a short value is passed
 * over twice, a longer one once, its CRC computed apart and combined into
 * the record's (RECORD_CRC_PASS_MAX). */
static uint32_t value_pass(uint32_t head, const void *val, size_t val_len, uint32_t *value_crc)
{
    if (!value_crc)
        return record_crc_update(head, val, val_len);
    *value_crc = record_crc_update(0, val, val_len);
    if (val_len <= RECORD_CRC_PASS_MAX)
        return record_crc_update(head, val, val_len);
    return record_crc_combine(head, *value_crc, val_len);
}

/* The CRC-32 of a whole record (magic, the checksummed part, trailer) from
 * its checksum: what the BATCH record's checksum is combined from, for a
 * record not held whole in the unit. */
static uint32_t full_record_crc(uint32_t crc, uint64_t len, const uint8_t trailer[4])
{
    static const uint8_t magic[2] = {RECORD_MAGIC0, RECORD_MAGIC1};
    uint32_t full = record_crc_update(0, magic, sizeof(magic));
    full = record_crc_combine(full, crc, len - 2 - RECORD_TRAILER_LEN);
    return record_crc_update(full, trailer, RECORD_TRAILER_LEN);
}

/* The payload of op's record into r->sv: a PUT's value as compress.c
 * encodes it (a SET, or a SETX with r->expire_at), a META's value, nothing
 * for a DEL. */
static int op_payload(kv_store *s, const kv_op *op, struct op_rec *r)
{
    if (op->type == KV_WRITE_PUT)
        return kv__setval_encode(s, op->val, op->val_len, r->expire_at, &r->sv);
    if (op->type == KV__WRITE_META)
        r->sv = (struct kv_setval){.op = KV_OP_META, .data = op->val, .len = op->val_len};
    else
        r->sv = (struct kv_setval){.op = KV_OP_DELETE};
    return 0;
}

/* Encodes op's record into r, using the buffer at buf; *used is the bytes
 * of buf it took. A PUT's value_crc is set when want_crc asks for it, or
 * when encoding its value took it anyway (a SETX). */
static int encode_op(kv_store *s, kv_op *op, struct op_rec *r, uint8_t *buf, bool framed,
                     bool want_crc, size_t *used)
{
    int rc = op_payload(s, op, r);
    if (rc != 0)
        return rc;
    const void *val = r->sv.data;
    size_t val_len = r->sv.len;
    bool setx = r->sv.op == KV_OP_SETX;
    r->hash = index_hash(op->key, op->key_len);
    r->len = record_size(op->key_len, val_len);
    r->bytes = buf;
    record_encode_header(buf, r->sv.op, (uint32_t)op->key_len, (uint32_t)val_len);
    uint32_t vcrc = 0;
    uint32_t *want = want_crc && op->type == KV_WRITE_PUT && !setx ? &vcrc : NULL;
    uint32_t crc;
    uint8_t *trailer;
    /* Whole when the buffer has room for the longest record op may take
     * (op_storage), whatever this one takes. */
    if (op_record_size(op) <= UNIT_SMALL_RECORD) {
        uint8_t *v = buf + RECORD_HEADER_LEN + op->key_len;
        memcpy(buf + RECORD_HEADER_LEN, op->key, op->key_len);
        if (val_len > 0)
            memcpy(v, val, val_len);
        crc = value_pass(record_crc_update(0, buf + 2, (size_t)(v - buf - 2)), v, val_len, want);
        trailer = v + val_len;
        r->whole = true;
        *used = (size_t)r->len;
    } else {
        crc = value_pass(record_crc_head(buf, op->key, op->key_len), val, val_len, want);
        trailer = buf + RECORD_HEADER_LEN;
        r->whole = false;
        *used = RECORD_OVERHEAD;
    }
    put_u32(trailer, crc);
    r->crc_known = want != NULL || setx;
    if (want)
        op->value_crc = vcrc;
    else if (setx)
        op->value_crc = r->sv.value_crc;
    if (framed && !r->whole)
        r->full_crc = full_record_crc(crc, r->len, trailer);
    return 0;
}

int kv__unit_encode(kv_store *s, struct kv__unit *u, kv_op *ops, size_t n, struct op_rec *recs,
                    uint8_t *buf, bool want_crc)
{
    memset(recs, 0, n * sizeof(*recs));
    u->ops = ops;
    u->n = n;
    u->recs = recs;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        ops[i].rc = 0;
        if (ops[i].type == KV_WRITE_CHECK) {
            recs[i].hash = index_hash(ops[i].key, ops[i].key_len);
            continue;
        }
        size_t used = 0;
        recs[i].expire_at = ops[i].expire_at_ms;
        int rc = encode_op(s, &ops[i], &recs[i], buf, n > 1, want_crc, &used);
        if (rc != 0) {
            kv__unit_release(s, u);
            return rc;
        }
        /* Each record keeps the room its longest form takes (op_storage):
         * a kept expiry may encode it again, longer, in place. */
        buf += op_storage(&ops[i]);
        bytes += ops[i].flags & KV_KEEP_EXPIRY ? op_record_size(&ops[i]) : recs[i].len;
    }
    u->max_bytes = n > 1 ? bytes + RECORD_OVERHEAD : bytes;
    return 0;
}

int kv__unit_reencode(kv_store *s, struct kv__unit *u, size_t i, uint64_t expire_at)
{
    struct op_rec *r = &u->recs[i];
    kv__setval_release(s, &r->sv);
    r->expire_at = expire_at;
    size_t used;
    int rc = encode_op(s, &u->ops[i], r, r->bytes, u->n > 1, true, &used);
    if (rc != 0)
        r->sv = (struct kv_setval){0}; /* nothing held: the unit fails */
    return rc;
}

void kv__unit_release(kv_store *s, struct kv__unit *u)
{
    for (size_t i = 0; i < u->n; i++)
        kv__setval_release(s, &u->recs[i].sv);
}

uint64_t kv__unit_frame(struct kv__unit *u)
{
    u->nwritten = 0;
    u->payload = 0;
    for (size_t i = 0; i < u->n; i++) {
        if (u->recs[i].written) {
            u->nwritten++;
            u->payload += u->recs[i].len;
        }
    }
    if (u->nwritten < 2)
        return u->payload;
    uint8_t *hdr = u->frame;
    record_encode_header(hdr, KV_OP_BATCH, 0, (uint32_t)u->payload);
    uint32_t crc = record_crc_update(0, hdr + 2, RECORD_HEADER_LEN - 2);
    for (size_t i = 0; i < u->n; i++) {
        const struct op_rec *r = &u->recs[i];
        if (!r->written)
            continue;
        crc = r->whole ? record_crc_update(crc, r->bytes, (size_t)r->len)
                       : record_crc_combine(crc, r->full_crc, r->len);
    }
    put_u32(hdr + RECORD_HEADER_LEN, crc);
    return u->payload + RECORD_OVERHEAD;
}

size_t kv__unit_iov_max(const struct kv__unit *u)
{
    return 4 * u->n + 2;
}

void kv__unit_iov(struct kv__unit *u, struct iovec *iov, size_t *n, uint32_t seg, uint64_t off)
{
    size_t k = *n;
    bool framed = u->nwritten > 1;
    if (framed) {
        iov[k++] = (struct iovec){.iov_base = u->frame, .iov_len = RECORD_HEADER_LEN};
        off += RECORD_HEADER_LEN;
    }
    for (size_t i = 0; i < u->n; i++) {
        struct op_rec *r = &u->recs[i];
        if (!r->written)
            continue;
        const kv_op *op = &u->ops[i];
        r->loc = (struct kv_loc){.seg = seg, .off = (uint32_t)off, .val_len = (uint32_t)r->sv.len};
        off += r->len;
        if (r->whole) {
            iov[k++] = (struct iovec){.iov_base = r->bytes, .iov_len = (size_t)r->len};
            continue;
        }
        iov[k++] = (struct iovec){.iov_base = r->bytes, .iov_len = RECORD_HEADER_LEN};
        iov[k++] = (struct iovec){.iov_base = (void *)op->key, .iov_len = op->key_len};
        if (r->sv.len > 0)
            iov[k++] = (struct iovec){.iov_base = (void *)r->sv.data, .iov_len = r->sv.len};
        iov[k++] =
            (struct iovec){.iov_base = r->bytes + RECORD_HEADER_LEN, .iov_len = RECORD_TRAILER_LEN};
    }
    if (framed)
        iov[k++] =
            (struct iovec){.iov_base = u->frame + RECORD_HEADER_LEN, .iov_len = RECORD_TRAILER_LEN};
    *n = k;
}
