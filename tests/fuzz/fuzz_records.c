/*
 * fuzz_records.c - the scanner, recovery, reads and compaction on segments
 * built of the second generation's record kinds.
 *
 * Random bytes rarely make a record whose checksum holds, so the input is a
 * list of instructions that build a segment: SET, DELETE, SETX with an
 * expiry in the past or the future, SETX holding a real zstd frame (its
 * raw_crc right or wrong, its dictionary present or not), SETX with an
 * attribute block of arbitrary bytes, META, runs of zeros, raw bytes, and a
 * flipped byte after any record. Then:
 *
 *  - kv_scan must tile the file, and every record it reports OK re-encodes
 *    to its bytes;
 *  - kv_open must succeed, or fail with KV_EFORMAT (a record this version
 *    cannot read) or KV_ECORRUPT (a missing dictionary);
 *  - every value a read serves is the value of an OK record of that key (a
 *    SET's payload, a SETX's stored bytes, or a frame's decompression whose
 *    length and CRC-32 are the recorded ones), and every META value the
 *    payload of an OK META record of that name;
 *  - the same after a compaction, and the store takes writes and closes.
 *
 * Instructions: a tag byte, then its fields (lengths are one byte each):
 *   tag % 8 == 0 raw      n, n bytes copied as they are
 *              1 SET      klen, vlen, key, value
 *              2 DELETE   klen, key
 *              3 SETX     klen, vlen, when (0 past, 1 future), key, value
 *              4 zstd     klen, vlen, bits (1: wrong raw_crc, 2: dict 1), key, value
 *              5 META     nlen, vlen, name, value
 *              6 SETX     klen, plen, key, payload (attributes included, as given)
 *              7 zeros    n: n * 16 zero bytes
 *   tag & 0x80: flip a byte of the record just built.
 */
#include <time.h>

#include <kvstore.h>
#include <zstd.h>

#include "fuzz_common.h"
#include "record.h"

#define SEG_MAX (256u << 10)

struct builder {
    uint8_t *seg;
    size_t len;
    const uint8_t *in;
    size_t left;
};

static int take(struct builder *b, size_t n, const uint8_t **out)
{
    if (b->left < n)
        return -1;
    *out = b->in;
    b->in += n;
    b->left -= n;
    return 0;
}

static int take_byte(struct builder *b, uint8_t *v)
{
    const uint8_t *p;
    if (take(b, 1, &p) != 0)
        return -1;
    *v = *p;
    return 0;
}

static void add_record(struct builder *b, uint8_t op, const uint8_t *key, size_t klen,
                       const uint8_t *payload, size_t plen)
{
    if (b->len + record_size(klen, plen) > SEG_MAX)
        return;
    record_build(b->seg + b->len, op, key, (uint32_t)klen, payload, (uint32_t)plen);
    b->len += (size_t)record_size(klen, plen);
}

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* A SETX payload: attributes then stored bytes, into out (room for it). */
static size_t setx_payload(uint8_t *out, const struct record_attrs *a, const void *stored,
                           size_t len)
{
    size_t alen = record_attrs_encode(out, a);
    memcpy(out + alen, stored, len);
    return alen + len;
}

/* Builds one instruction's bytes; -1 when the input ends. */
static int build_one(struct builder *b)
{
    uint8_t tag, l1 = 0, l2 = 0, extra = 0;
    const uint8_t *key = NULL, *val = NULL;
    uint8_t payload[RECORD_ATTRS_MAX + 512];
    size_t start = b->len;
    if (take_byte(b, &tag) != 0)
        return -1;
    switch (tag % 8) {
    case 0:
        if (take_byte(b, &l1) != 0 || take(b, l1, &val) != 0 || b->len + l1 > SEG_MAX)
            return -1;
        memcpy(b->seg + b->len, val, l1);
        b->len += l1;
        break;
    case 1:
    case 5:
        if (take_byte(b, &l1) != 0 || take_byte(b, &l2) != 0 || take(b, l1 % 32 + 1, &key) ||
            take(b, l2, &val) != 0)
            return -1;
        add_record(b, tag % 8 == 1 ? KV_OP_SET : KV_OP_META, key, l1 % 32 + 1, val, l2);
        break;
    case 2:
        if (take_byte(b, &l1) != 0 || take(b, l1 % 32 + 1, &key) != 0)
            return -1;
        add_record(b, KV_OP_DELETE, key, l1 % 32 + 1, NULL, 0);
        break;
    case 3: {
        if (take_byte(b, &l1) != 0 || take_byte(b, &l2) != 0 || take_byte(b, &extra) != 0 ||
            take(b, l1 % 32 + 1, &key) != 0 || take(b, l2, &val) != 0)
            return -1;
        struct record_attrs a = {.flags = RECORD_ATTR_EXPIRES,
                                 .expire_at = extra & 1 ? now_ms() + 3600000 : 1000};
        add_record(b, KV_OP_SETX, key, l1 % 32 + 1, payload, setx_payload(payload, &a, val, l2));
        break;
    }
    case 4: {
        if (take_byte(b, &l1) != 0 || take_byte(b, &l2) != 0 || take_byte(b, &extra) != 0 ||
            take(b, l1 % 32 + 1, &key) != 0 || take(b, l2, &val) != 0)
            return -1;
        uint8_t frame[512];
        size_t n = ZSTD_compress(frame, sizeof(frame), val, l2, 1);
        if (ZSTD_isError(n))
            break;
        struct record_attrs a = {.flags = RECORD_ATTR_ZSTD,
                                 .raw_len = l2,
                                 .raw_crc = record_crc_update(0, val, l2) ^ (extra & 1),
                                 .dict_id = extra & 2 ? 1 : 0};
        add_record(b, KV_OP_SETX, key, l1 % 32 + 1, payload, setx_payload(payload, &a, frame, n));
        break;
    }
    case 6:
        if (take_byte(b, &l1) != 0 || take_byte(b, &l2) != 0 || take(b, l1 % 32 + 1, &key) != 0 ||
            take(b, l2, &val) != 0)
            return -1;
        add_record(b, KV_OP_SETX, key, l1 % 32 + 1, val, l2);
        break;
    default:
        if (take_byte(b, &l1) != 0 || b->len + 16u * l1 > SEG_MAX)
            return -1;
        memset(b->seg + b->len, 0, 16u * l1);
        b->len += 16u * l1;
        break;
    }
    if ((tag & 0x80) && b->len > start) {
        uint8_t pos = 0;
        if (take_byte(b, &pos) == 0)
            b->seg[start + pos % (b->len - start)] ^= 0x20;
    }
    return 0;
}

/* ---- the checks */

struct scan_state {
    const uint8_t *data;
    size_t size;
    uint64_t next_off;
};

static int on_record(const kv_record_info *info, void *ctx)
{
    struct scan_state *st = ctx;
    FUZZ_CHECK(info->segment_id == 1);
    FUZZ_CHECK(info->offset == st->next_off);
    FUZZ_CHECK(info->length > 0 && info->offset + info->length <= st->size);
    st->next_off = info->offset + info->length;
    if (info->status == KV_REC_ZERO_TAIL) {
        for (uint64_t i = 0; i < info->length; i++)
            FUZZ_CHECK(st->data[info->offset + i] == 0);
        FUZZ_CHECK(st->next_off == st->size);
    }
    if (info->status != KV_REC_OK)
        return 0;
    FUZZ_CHECK(info->length == record_size(info->key_len, info->value_len));
    uint8_t *rec = malloc(info->length);
    FUZZ_CHECK(rec != NULL);
    record_build(rec, info->op, info->key, (uint32_t)info->key_len,
                 st->data + info->offset + RECORD_HEADER_LEN + info->key_len,
                 (uint32_t)info->value_len);
    FUZZ_CHECK(memcmp(rec, st->data + info->offset, info->length) == 0);
    free(rec);
    return 0;
}

/* Whether val is the value of an OK record of key (META: of name) in the
 * input. */
struct match {
    const void *key;
    size_t key_len;
    const void *val;
    size_t val_len;
    bool meta;
    const uint8_t *data;
    bool found;
};

static bool value_matches(const kv_record_info *info, const uint8_t *payload, const void *val,
                          size_t val_len)
{
    if (info->op == KV_OP_SET || info->op == KV_OP_META)
        return info->value_len == val_len && memcmp(payload, val, val_len) == 0;
    struct record_attrs a;
    size_t alen;
    if (!record_attrs_decode(payload, info->value_len, &a, &alen))
        return false;
    if (!(a.flags & RECORD_ATTR_ZSTD))
        return info->value_len - alen == val_len && memcmp(payload + alen, val, val_len) == 0;
    return a.raw_len == val_len && record_crc_update(0, val, val_len) == a.raw_crc;
}

static int on_match(const kv_record_info *info, void *ctx)
{
    struct match *m = ctx;
    bool kind = m->meta ? info->op == KV_OP_META : info->op == KV_OP_SET || info->op == KV_OP_SETX;
    if (info->status == KV_REC_OK && kind && info->key_len == m->key_len &&
        memcmp(info->key, m->key, m->key_len) == 0 &&
        value_matches(info, m->data + info->offset + RECORD_HEADER_LEN + info->key_len, m->val,
                      m->val_len))
        m->found = true;
    return 0;
}

static char g_dir[512], g_orig[512];

static bool recorded(const void *key, size_t key_len, const void *val, size_t val_len, bool meta,
                     const uint8_t *data)
{
    struct match m = {key, key_len, val, val_len, meta, data, false};
    FUZZ_CHECK(kv_scan(g_orig, on_match, &m) == 0);
    return m.found;
}

struct names {
    kv_store *s;
    const uint8_t *data;
};

/* Every key and META name of the input: what the store serves for it. */
static int check_served(const kv_record_info *info, void *ctx)
{
    struct names *n = ctx;
    if (info->status != KV_REC_OK || info->key_len == 0)
        return 0;
    void *val = NULL;
    size_t len = 0;
    bool meta = info->op == KV_OP_META;
    int rc = meta ? kv_meta_get(n->s, info->key, info->key_len, &val, &len)
                  : kv_get(n->s, info->key, info->key_len, &val, &len);
    FUZZ_CHECK(rc == 0 || rc == KV_ENOTFOUND || (!meta && rc == KV_ECORRUPT));
    if (rc == 0)
        FUZZ_CHECK(recorded(info->key, info->key_len, val, len, meta, n->data));
    kv_free(val);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t seg[SEG_MAX];
    struct builder b = {.seg = seg, .in = data, .left = size};
    while (build_one(&b) == 0)
        ;
    const char *dir = fuzz_workdir("records", g_dir, sizeof(g_dir));
    const char *orig = fuzz_workdir("records-orig", g_orig, sizeof(g_orig));
    fuzz_empty_dir(dir);
    fuzz_empty_dir(orig);
    fuzz_write_file(dir, "segment-1.dat", seg, b.len);
    fuzz_write_file(orig, "segment-1.dat", seg, b.len);

    struct scan_state st = {.data = seg, .size = b.len};
    FUZZ_CHECK(kv_scan(dir, on_record, &st) == 0);
    FUZZ_CHECK(st.next_off == b.len);

    kv_options o;
    kv_options_init(&o);
    o.compaction_interval_secs = 0;
    o.sync_mode = KV_SYNC_NONE;
    o.compression = KV_COMPRESS_ZSTD;
    o.compression_min_size = 16;
    kv_store *s = NULL;
    int rc = kv_open(dir, &o, &s);
    FUZZ_CHECK(rc == 0 || rc == KV_EFORMAT || rc == KV_ECORRUPT);
    if (rc != 0)
        return 0;
    struct names n = {.s = s, .data = seg};
    FUZZ_CHECK(kv_scan(orig, check_served, &n) == 0);
    rc = kv_compact(s);
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(kv_scan(orig, check_served, &n) == 0);
    static const char doc[] = "{\"compressible\": \"compressible\", \"again\": \"compressible\"}";
    FUZZ_CHECK(kv_put(s, "fuzz", 4, doc, sizeof(doc) - 1) == 0);
    FUZZ_CHECK(kv_meta_put(s, "fuzz", 4, "m", 1) == 0);
    FUZZ_CHECK(kv_close(s) == 0);
    return 0;
}
