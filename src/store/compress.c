/*
 * compress.c - how a value is stored in its record (compress.h): the
 * encoding of a value for a set record (in the writer's thread), and the
 * decoding of a stored zstd frame back to the original bytes.
 *
 * Frames are made for one value each, with the newest dictionary (dict.c),
 * at the store's level by writers and at a higher one by compaction (dense
 * frames, RECORD_ATTR_DENSE, which the next compaction copies as they are
 * while the dictionary stays), and carry none of the fields the record
 * already has: no content size
 * (raw_len), no checksum (raw_crc), no dictionary id (dict_id). A value is
 * stored compressed only when that saves at least 1/32 of it: less is not
 * worth a decompression on every read. Decompression always checks the
 * result against raw_crc, so a frame that is damaged in a way its record
 * checksum missed, or a wrong dictionary, gives KV_ECORRUPT, never wrong
 * bytes.
 *
 * New frames are written in zstd's magicless format (RECORD_ATTR_MAGICLESS):
 * the record already says what its payload is, so the 4-byte magic number
 * would be 4 bytes per value for nothing. Frames written with the magic (by
 * earlier versions) read as before, and compaction rewrites them.
 *
 * zstd contexts are costly to make (hundreds of KiB each), so the store
 * keeps a few of each kind in a pool, guarded by a leaf mutex; a caller
 * takes one, uses it without any lock, and gives it back.
 *
 * A decoder (a decompression context) also keeps a copy of the last
 * dictionary it used with room for a value right behind it. A small value
 * decompressed there finds the dictionary contiguous with its own output,
 * so its matches into the dictionary are plain copies inside one buffer;
 * decompressed into a buffer of its own, every such match (most of them, in
 * a short value) goes through zstd's slower external-dictionary path. The
 * value is then copied out once: cheaper than what that saves.
 */
#include "compress.h"

#include <stdlib.h>
#include <string.h>

/* For the frame format parameter (ZSTD_c_format, ZSTD_d_format): set through
 * the stable ZSTD_CCtx_setParameter, so the shared library serves it. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>

#include "dict.h"
#include "keydir.h"
#include "logging.h"
#include "record.h"
#include "store.h"
#include "thread.h"

#define POOL_MAX 8
/* Values up to this long decompress behind the decoder's dictionary copy. */
#define DECODER_VALUE_MAX (32u << 10)
/* Slack after the value, so that zstd's last copies need not be careful. */
#define DECODER_SLACK 64u

/* A decompression context, and the dictionary laid out for it: buf holds
 * dict's bytes, then room for DECODER_VALUE_MAX + DECODER_SLACK bytes;
 * prefix is a DDict over buf's copy (by reference). */
struct kv_decoder {
    ZSTD_DCtx *dctx;
    bool magicless;       /* the frame format dctx is set to */
    struct kv_dict *dict; /* held, or NULL */
    ZSTD_DDict *prefix;
    uint8_t *buf;
};

struct kv_codec {
    struct kv_mutex mu;
    ZSTD_CCtx *c[POOL_MAX];
    size_t nc;
    struct kv_decoder *d[POOL_MAX];
    size_t nd;
};

static void decoder_free(struct kv_decoder *dec)
{
    if (!dec)
        return;
    ZSTD_freeDCtx(dec->dctx);
    ZSTD_freeDDict(dec->prefix);
    kv__dict_put(dec->dict);
    free(dec->buf);
    free(dec);
}

int kv__codec_init(kv_store *s)
{
    struct kv_codec *k = calloc(1, sizeof(*k));
    if (!k)
        return KV_ENOMEM;
    kv__mutex_init(&k->mu);
    s->codec = k;
    return 0;
}

void kv__codec_free(kv_store *s)
{
    struct kv_codec *k = s->codec;
    if (!k)
        return;
    for (size_t i = 0; i < k->nc; i++)
        ZSTD_freeCCtx(k->c[i]);
    for (size_t i = 0; i < k->nd; i++)
        decoder_free(k->d[i]);
    kv__mutex_destroy(&k->mu);
    free(k);
    s->codec = NULL;
}

/* A compression context with the store's frame parameters, from the pool or
 * new; NULL when out of memory. */
static ZSTD_CCtx *cctx_take(kv_store *s)
{
    struct kv_codec *k = s->codec;
    ZSTD_CCtx *c = NULL;
    kv__mutex_lock(&k->mu);
    if (k->nc > 0)
        c = k->c[--k->nc];
    kv__mutex_unlock(&k->mu);
    if (c)
        return c;
    c = ZSTD_createCCtx();
    if (!c)
        return NULL;
    if (ZSTD_isError(
            ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, s->opts.compression_level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_format, ZSTD_f_zstd1_magicless))) {
        ZSTD_freeCCtx(c);
        return NULL;
    }
    return c;
}

static void cctx_give(kv_store *s, ZSTD_CCtx *c)
{
    struct kv_codec *k = s->codec;
    kv__mutex_lock(&k->mu);
    if (k->nc < POOL_MAX) {
        k->c[k->nc++] = c;
        c = NULL;
    }
    kv__mutex_unlock(&k->mu);
    ZSTD_freeCCtx(c);
}

static struct kv_decoder *decoder_take(kv_store *s)
{
    struct kv_codec *k = s->codec;
    struct kv_decoder *dec = NULL;
    kv__mutex_lock(&k->mu);
    if (k->nd > 0)
        dec = k->d[--k->nd];
    kv__mutex_unlock(&k->mu);
    if (dec)
        return dec;
    dec = calloc(1, sizeof(*dec));
    if (dec && !(dec->dctx = ZSTD_createDCtx())) {
        free(dec);
        dec = NULL;
    }
    return dec;
}

static void decoder_give(kv_store *s, struct kv_decoder *dec)
{
    struct kv_codec *k = s->codec;
    kv__mutex_lock(&k->mu);
    if (k->nd < POOL_MAX) {
        k->d[k->nd++] = dec;
        dec = NULL;
    }
    kv__mutex_unlock(&k->mu);
    decoder_free(dec);
}

/* Lays d out in dec's buffer (unless it is there already); false when out
 * of memory, and dec then holds no dictionary. */
static bool decoder_use_dict(struct kv_decoder *dec, struct kv_dict *d)
{
    if (dec->dict == d)
        return true;
    ZSTD_freeDDict(dec->prefix);
    kv__dict_put(dec->dict);
    free(dec->buf);
    dec->prefix = NULL;
    dec->dict = NULL;
    dec->buf = malloc(d->len + DECODER_VALUE_MAX + DECODER_SLACK);
    if (!dec->buf)
        return false;
    memcpy(dec->buf, d->bytes, d->len);
    dec->prefix = ZSTD_createDDict_byReference(dec->buf, d->len);
    if (!dec->prefix)
        return false;
    atomic_fetch_add(&d->refs, 1);
    dec->dict = d;
    return true;
}

/* Decompresses the frame (stored_len bytes, magicless or not) into out,
 * which has room for raw_len bytes; d is its dictionary (NULL: none). The
 * number of bytes it decompressed to, or a zstd error code. */
static size_t decoder_run(struct kv_decoder *dec, struct kv_dict *d, bool magicless,
                          const uint8_t *stored, size_t stored_len, uint8_t *out, size_t raw_len)
{
    if (dec->magicless != magicless) {
        size_t r = ZSTD_DCtx_setParameter(dec->dctx, ZSTD_d_format,
                                          magicless ? ZSTD_f_zstd1_magicless : ZSTD_f_zstd1);
        if (ZSTD_isError(r))
            return r;
        dec->magicless = magicless;
    }
    if (!d || raw_len > DECODER_VALUE_MAX || !decoder_use_dict(dec, d))
        return ZSTD_decompress_usingDDict(dec->dctx, out, raw_len, stored, stored_len,
                                          d ? d->ddict : NULL);
    /* Output right behind the dictionary's last byte: zstd then sees the
     * dictionary as the prefix of this output. */
    uint8_t *at = dec->buf + d->len;
    size_t n = ZSTD_decompress_usingDDict(dec->dctx, at, raw_len + DECODER_SLACK, stored,
                                          stored_len, dec->prefix);
    if (!ZSTD_isError(n) && n == raw_len)
        memcpy(out, at, n);
    return n;
}

struct kv_attrs *kv__payload_attrs(const void *payload, size_t len, struct kv_attrs *out)
{
    struct record_attrs a;
    size_t alen;
    *out = (struct kv_attrs){0};
    if (record_attrs_decode(payload, len, &a, &alen) && (a.flags & RECORD_ATTR_EXPIRES))
        out->expire_at_ms = a.expire_at;
    return out;
}

bool kv__compressible(const kv_store *s, size_t raw_len)
{
    return s->opts.compression == KV_COMPRESS_ZSTD && raw_len > 0 &&
           raw_len >= s->opts.compression_min_size;
}

int kv__compress_payload(kv_store *s, struct kv_dict *dict, bool dense, const void *raw,
                         size_t raw_len, uint32_t raw_crc, uint64_t expire_at_ms, uint8_t *out,
                         size_t cap, size_t *len)
{
    struct record_attrs a = {.flags = RECORD_ATTR_ZSTD | RECORD_ATTR_MAGICLESS |
                                      (dense ? RECORD_ATTR_DENSE : 0u),
                             .expire_at = expire_at_ms,
                             .raw_len = (uint32_t)raw_len,
                             .raw_crc = raw_crc,
                             .dict_id = dict && dict->cdict ? dict->id : 0};
    if (expire_at_ms)
        a.flags |= RECORD_ATTR_EXPIRES;
    size_t alen = record_attrs_len(a.flags);
    /* The payload must save at least 1/32 of the value. */
    size_t most = raw_len - raw_len / 32 - 1;
    *len = 0;
    if (raw_len > UINT32_MAX || raw_len < 32 || most <= alen || cap <= alen)
        return 0;
    size_t frame_cap = (most < cap ? most : cap) - alen;
    ZSTD_CCtx *c = cctx_take(s);
    if (!c)
        return KV_ENOMEM;
    /* A compression that stopped for want of room leaves the context in
     * mid-frame: a new session starts clean (the parameters stay). The
     * level is the context's without a dictionary, else the CDict's. */
    int level = dense ? kv__dense_level(&s->opts) : s->opts.compression_level;
    size_t n = ZSTD_CCtx_reset(c, ZSTD_reset_session_only);
    if (!ZSTD_isError(n))
        n = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(n))
        n = ZSTD_CCtx_refCDict(c, a.dict_id ? (dense ? dict->cdict_dense : dict->cdict) : NULL);
    if (!ZSTD_isError(n))
        n = ZSTD_compress2(c, out + alen, frame_cap, raw, raw_len);
    cctx_give(s, c);
    if (ZSTD_isError(n)) {
        if (ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall)
            return 0; /* it would not save enough */
        kv__log(s, KV_LOG_ERROR, "zstd cannot compress a value: %s", ZSTD_getErrorName(n));
        return ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation ? KV_ENOMEM : KV_EIO;
    }
    record_attrs_encode(out, &a);
    *len = alen + n;
    return 0;
}

int kv__setval_encode(kv_store *s, const void *val, size_t val_len, uint64_t expire_at_ms,
                      struct kv_setval *out)
{
    *out = (struct kv_setval){.op = KV_OP_SET, .data = val, .len = val_len};
    bool compress = kv__compressible(s, val_len);
    if (!compress && expire_at_ms == 0)
        return 0;
    uint32_t crc = record_crc_update(0, val, val_len);
    if (compress) {
        struct kv_dict *d = kv__dict_for_writer(s);
        size_t cap = val_len, len = 0;
        uint8_t *buf = malloc(cap);
        int rc =
            buf ? kv__compress_payload(s, d, false, val, val_len, crc, expire_at_ms, buf, cap, &len)
                : KV_ENOMEM;
        if (rc == 0 && len > 0) {
            /* The frame names d only when d could compress (dict_id). */
            bool named = d && d->cdict;
            *out = (struct kv_setval){.op = KV_OP_SETX,
                                      .data = buf,
                                      .len = len,
                                      .value_crc = crc,
                                      .owned = buf,
                                      .dict = named ? d : NULL};
            if (!named)
                kv__dict_writer_done(d);
            return 0;
        }
        free(buf);
        kv__dict_writer_done(d);
        if (rc != 0)
            return rc;
        if (expire_at_ms == 0)
            return 0;
    }
    struct record_attrs a = {.flags = RECORD_ATTR_EXPIRES, .expire_at = expire_at_ms};
    size_t alen = record_attrs_len(a.flags);
    if (val_len > UINT32_MAX - alen)
        return KV_ETOOBIG;
    uint8_t *buf = malloc(alen + val_len);
    if (!buf)
        return KV_ENOMEM;
    record_attrs_encode(buf, &a);
    if (val_len)
        memcpy(buf + alen, val, val_len);
    *out = (struct kv_setval){
        .op = KV_OP_SETX, .data = buf, .len = alen + val_len, .value_crc = crc, .owned = buf};
    return 0;
}

void kv__setval_release(kv_store *s, struct kv_setval *v)
{
    (void)s;
    free(v->owned);
    kv__dict_writer_done(v->dict);
    v->owned = NULL;
    v->dict = NULL;
}

int kv__value_decompress(kv_store *s, const struct record_attrs *attrs, const uint8_t *stored,
                         size_t stored_len, uint8_t **out)
{
    if (!(attrs->flags & RECORD_ATTR_ZSTD))
        return KV_EINVAL;
    struct kv_dict *d = attrs->dict_id ? kv__dict_get(s, attrs->dict_id) : NULL;
    if (attrs->dict_id && !d) {
        kv__log(s, KV_LOG_ERROR, "a record names dictionary dict-%u.zdict, which is not loaded",
                attrs->dict_id);
        return KV_ECORRUPT;
    }
    uint8_t *buf = malloc((size_t)attrs->raw_len + 1);
    struct kv_decoder *dec = buf ? decoder_take(s) : NULL;
    int rc = dec ? 0 : KV_ENOMEM;
    if (rc == 0) {
        size_t n = decoder_run(dec, d, (attrs->flags & RECORD_ATTR_MAGICLESS) != 0, stored,
                               stored_len, buf, attrs->raw_len);
        if (ZSTD_isError(n) && ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation)
            rc = KV_ENOMEM;
        else if (ZSTD_isError(n) || n != attrs->raw_len ||
                 record_crc_update(0, buf, n) != attrs->raw_crc)
            rc = KV_ECORRUPT;
        decoder_give(s, dec);
    }
    kv__dict_put(d);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[attrs->raw_len] = 0;
    *out = buf;
    return 0;
}

/* A payload for raw (raw_len bytes, CRC raw_crc) with an expiry (0: none):
 * compressed densely with dict when that saves enough, else the value as it is (a
 * SET, or a SETX with only the expiry). */
static int encode_for_compaction(kv_store *s, struct kv_dict *dict, const uint8_t *raw,
                                 size_t raw_len, uint32_t raw_crc, uint64_t expire_at,
                                 struct kv_recoded *out)
{
    size_t cap = raw_len + RECORD_ATTRS_MAX, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return KV_ENOMEM;
    int rc = kv__compressible(s, raw_len) ? kv__compress_payload(s, dict, true, raw, raw_len,
                                                                 raw_crc, expire_at, buf, cap, &len)
                                          : 0;
    if (rc != 0) {
        free(buf);
        return rc;
    }
    if (len > 0) {
        *out = (struct kv_recoded){.verdict = KV_RECODE_REWRITE,
                                   .op = KV_OP_SETX,
                                   .payload = buf,
                                   .len = len,
                                   .dict_id = dict && dict->cdict ? dict->id : 0};
        return 0;
    }
    size_t alen = 0;
    if (expire_at) {
        struct record_attrs a = {.flags = RECORD_ATTR_EXPIRES, .expire_at = expire_at};
        alen = record_attrs_encode(buf, &a);
    }
    memcpy(buf + alen, raw, raw_len);
    *out = (struct kv_recoded){.verdict = KV_RECODE_REWRITE,
                               .op = expire_at ? KV_OP_SETX : KV_OP_SET,
                               .payload = buf,
                               .len = alen + raw_len};
    return 0;
}

int kv__value_recode(kv_store *s, struct kv_dict *dict, uint64_t now_ms, uint8_t op,
                     const uint8_t *payload, size_t len, struct kv_recoded *out)
{
    struct record_attrs a = {0};
    size_t alen = 0;
    *out = (struct kv_recoded){.verdict = KV_RECODE_COPY};
    if (op == KV_OP_SETX && !record_attrs_decode(payload, len, &a, &alen))
        return KV_ECORRUPT;
    uint64_t expire_at = (a.flags & RECORD_ATTR_EXPIRES) ? a.expire_at : 0;
    if (expire_at && expire_at <= now_ms) {
        out->verdict = KV_RECODE_EXPIRED;
        return 0;
    }
    uint32_t current = dict && dict->cdict ? dict->id : 0;
    bool zstd = (a.flags & RECORD_ATTR_ZSTD) != 0;
    out->dict_id = zstd ? a.dict_id : 0;
    /* A writer's frame stays when compaction would use the writer's level. */
    bool settled =
        (a.flags & RECORD_ATTR_MAGICLESS) &&
        ((a.flags & RECORD_ATTR_DENSE) || kv__dense_level(&s->opts) == s->opts.compression_level);
    if (s->opts.compression != KV_COMPRESS_ZSTD || (zstd && settled && a.dict_id == current))
        return 0;
    if (!zstd) {
        const uint8_t *raw = payload + alen;
        size_t raw_len = len - alen, cap = raw_len + RECORD_ATTRS_MAX, plen = 0;
        if (!kv__compressible(s, raw_len))
            return 0;
        uint8_t *buf = malloc(cap);
        if (!buf)
            return KV_ENOMEM;
        int rc =
            kv__compress_payload(s, dict, true, raw, raw_len, record_crc_update(0, raw, raw_len),
                                 expire_at, buf, cap, &plen);
        if (rc != 0 || plen == 0) {
            free(buf); /* as it was, unless compression saves enough now */
            return rc;
        }
        *out = (struct kv_recoded){.verdict = KV_RECODE_REWRITE,
                                   .op = KV_OP_SETX,
                                   .payload = buf,
                                   .len = plen,
                                   .dict_id = current};
        return 0;
    }
    uint8_t *raw = NULL;
    int rc = kv__value_decompress(s, &a, payload + alen, len - alen, &raw);
    if (rc == 0)
        rc = encode_for_compaction(s, dict, raw, a.raw_len, a.raw_crc, expire_at, out);
    free(raw);
    return rc;
}
