/*
 * compress.h - how a value is stored in its record (compress.c): as it is
 * (a SET), or in a SETX with attributes: its expiry, and its zstd frame with
 * the original value's length and CRC-32 and the dictionary it was
 * compressed with (docs/FORMAT.md).
 *
 * The write path encodes a value in the writer's own thread, before it
 * queues for group commit (never in the leader's critical section); reads
 * and compaction decode stored values. zstd contexts come from a small pool
 * per store (a decompression context with its own copy of the dictionary it
 * last used, laid out in front of its output); dictionaries from dict.c.
 */
#ifndef KV_STORE_COMPRESS_H
#define KV_STORE_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvstore.h"
#include "record.h"

struct kv_attrs;
struct kv_dict;

/* The payload a set record stores for a value, and what it holds on to. */
struct kv_setval {
    uint8_t op;           /* KV_OP_SET (the value as it is) or KV_OP_SETX */
    const void *data;     /* the record's payload: the value, or attributes then the value */
    size_t len;           /* its length */
    uint32_t value_crc;   /* KV_OP_SETX: the CRC-32 of the original value */
    uint8_t *owned;       /* the payload buffer when one was made */
    struct kv_dict *dict; /* the dictionary compressed with, held until the record is written */
};

/* The per-store codec: pools of zstd contexts. */
int kv__codec_init(kv_store *s);
void kv__codec_free(kv_store *s);

/*
 * Encodes val (val_len bytes) for a set record: a SET of the value itself
 * when no attribute applies (no expiry, and compression is off, or the value
 * is shorter than compression_min_size, or compressing does not save at
 * least 1/32 of it); else a SETX with the attribute block and the stored
 * value (the zstd frame, made with the newest dictionary, or the value).
 * expire_at_ms 0 means no expiry. Runs in the writer's thread. Release *out
 * with kv__setval_release once the record is written (or its write failed):
 * until then it holds the dictionary, which compaction waits for before it
 * seals the log (dict.c). Codes: KV_ENOMEM, KV_ETOOBIG.
 */
int kv__setval_encode(kv_store *s, const void *val, size_t val_len, uint64_t expire_at_ms,
                      struct kv_setval *out);
void kv__setval_release(kv_store *s, struct kv_setval *v);

/*
 * The original value of a SETX whose record checked out: attrs is its
 * attribute block, stored/stored_len the bytes after it. With ZSTD, the
 * frame is decompressed with the dictionary it names into *out (raw_len
 * bytes plus a zero byte, for kv_free), and checked against raw_crc: a frame
 * that does not decompress to exactly those bytes, or a dictionary that is
 * not loaded, is KV_ECORRUPT (logged with where), never wrong bytes. Without
 * ZSTD it is KV_EINVAL (nothing to decode). Codes: KV_ECORRUPT, KV_ENOMEM.
 */
int kv__value_decompress(kv_store *s, const struct record_attrs *attrs, const uint8_t *stored,
                         size_t stored_len, uint8_t **out);

/*
 * Compresses raw (raw_len bytes, whose CRC-32 is raw_crc) with dict (NULL:
 * no dictionary) into a SETX payload at out (capacity cap): attributes
 * (expire_at_ms when not 0, and ZSTD) then the frame, at the store's level
 * or, when dense (compaction), at kv__dense_level's with RECORD_ATTR_DENSE.
 * *len is its length, or 0 when compressing does not save at least 1/32 of
 * the value (store it raw). Codes: KV_ENOMEM, KV_EIO (zstd refused).
 */
int kv__compress_payload(kv_store *s, struct kv_dict *dict, bool dense, const void *raw,
                         size_t raw_len, uint32_t raw_crc, uint64_t expire_at_ms, uint8_t *out,
                         size_t cap, size_t *len);

/* What compaction does with a live set record (kv__value_recode). */
enum kv_recode {
    KV_RECODE_COPY,    /* copy it as it is */
    KV_RECODE_REWRITE, /* write a record of the new op and payload instead */
    KV_RECODE_EXPIRED  /* its expiry has passed: it is not copied */
};

struct kv_recoded {
    enum kv_recode verdict;
    uint8_t op;       /* REWRITE: KV_OP_SET or KV_OP_SETX */
    uint8_t *payload; /* REWRITE: the new payload (free()) */
    size_t len;
    uint32_t dict_id; /* the dictionary the record written names, 0 for none */
};

/*
 * Decides what compaction writes for a live SET or SETX record (op) whose
 * payload (len bytes) checked out. A SETX whose expiry is at or before
 * now_ms is EXPIRED. Otherwise, with compression on, a value stored raw that
 * compression shortens now, or one compressed by a writer (not DENSE), with
 * another dictionary than dict (the current one, NULL for none) or in a
 * frame with zstd's magic number (written by earlier versions), is
 * re-encoded densely with dict (or stored raw when that no longer saves
 * enough); anything else is copied as it is.
 * Codes: KV_ECORRUPT (a frame that does not decompress to its recorded
 * bytes: the record is damaged), KV_ENOMEM, KV_EIO.
 */
int kv__value_recode(kv_store *s, struct kv_dict *dict, uint64_t now_ms, uint8_t op,
                     const uint8_t *payload, size_t len, struct kv_recoded *out);

/* The index attributes of a SETX payload (its expiry) into *out; returns
 * out. A payload without an expiry (or that does not decode) gives none. */
struct kv_attrs *kv__payload_attrs(const void *payload, size_t len, struct kv_attrs *out);

/* Whether a value of raw_len bytes is one the store compresses. */
bool kv__compressible(const kv_store *s, size_t raw_len);

#endif /* KV_STORE_COMPRESS_H */
