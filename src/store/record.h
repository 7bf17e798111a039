/*
 * record.h - the on-disk record, shared with the original Go and Rust
 * implementations:
 *
 *   magic F0 F1 | op u8 | key_len u32le | val_len u32le | key | value | crc32 u32le
 *
 * The checksum is zlib's CRC-32 over op, key_len, val_len, key and value.
 * docs/FORMAT.md describes every kind (SET, DELETE, SETX, BATCH, META) byte
 * by byte.
 */
#ifndef KV_STORE_RECORD_H
#define KV_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvstore.h"

#define RECORD_MAGIC0      0xF0
#define RECORD_MAGIC1      0xF1
#define RECORD_HEADER_LEN  11u
#define RECORD_TRAILER_LEN 4u
#define RECORD_OVERHEAD    (RECORD_HEADER_LEN + RECORD_TRAILER_LEN)

struct record_header {
    uint8_t op;
    uint32_t key_len;
    uint32_t val_len;
};

static inline uint64_t record_size(uint64_t key_len, uint64_t val_len)
{
    return RECORD_OVERHEAD + key_len + val_len;
}

static inline void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

/*
 * Attributes of a SETX record: the first bytes of its payload, before the
 * stored value (docs/FORMAT.md):
 *
 *   flags u8 | [expire_at u64le] if EXPIRES | [raw_len u32le, raw_crc u32le,
 *   dict_id u32le] if ZSTD
 *
 * MAGICLESS and DENSE add no field: they say how the ZSTD frame was
 * written, and are never set without ZSTD.
 *
 * A SETX with no flag set is never written (it would be a SET); a flag this
 * version does not know makes the record unreadable (KV_EFORMAT at open).
 */
#define RECORD_ATTR_EXPIRES 0x01u /* expire_at: absolute, ms since the Unix epoch */
#define RECORD_ATTR_ZSTD    0x02u /* the stored value is a zstd frame of raw_len bytes */
#define RECORD_ATTR_MAGICLESS                                                                      \
    0x04u /* with ZSTD: the frame is in zstd's magicless format (no 4-byte magic number) */
#define RECORD_ATTR_DENSE                                                                          \
    0x08u /* with ZSTD: compressed by a compaction, at its level (compress.c) */
_Static_assert(RECORD_ATTR_EXPIRES == KV_ATTR_EXPIRES && RECORD_ATTR_ZSTD == KV_ATTR_ZSTD &&
                   RECORD_ATTR_MAGICLESS == KV_ATTR_MAGICLESS && RECORD_ATTR_DENSE == KV_ATTR_DENSE,
               "the public flags are the format's");
#define RECORD_ATTR_KNOWN                                                                          \
    (RECORD_ATTR_EXPIRES | RECORD_ATTR_ZSTD | RECORD_ATTR_MAGICLESS | RECORD_ATTR_DENSE)
#define RECORD_ATTRS_MAX 21u /* flags, expire_at, raw_len, raw_crc, dict_id */

/* The longest META payload this version writes and reads (a longer one is a
 * record it cannot read, KV_EFORMAT at open). */
#define RECORD_META_MAX 65536u

struct record_attrs {
    uint8_t flags;
    uint64_t expire_at;
    uint32_t raw_len; /* ZSTD: the original value's length */
    uint32_t raw_crc; /* ZSTD: the original value's CRC-32 */
    uint32_t dict_id; /* ZSTD: the dictionary, 0 for none */
};

/* Bytes the attribute block with these flags takes. */
size_t record_attrs_len(uint8_t flags);

/* Writes the attribute block of a (flags != 0) to out, which has room for
 * RECORD_ATTRS_MAX bytes; returns its length. */
size_t record_attrs_encode(uint8_t *out, const struct record_attrs *a);

/* Parses the attribute block at the start of a SETX payload of avail bytes.
 * False when a flag is unknown, no flag is set, or the block does not fit;
 * *len receives its length on success. */
bool record_attrs_decode(const uint8_t *p, uint64_t avail, struct record_attrs *a, size_t *len);

/* The CRC-32 of a record's value alone, from the record's checksum and the
 * CRC-32 of everything the checksum covers before the value (op, lengths,
 * key and, for SETX, the attribute block): CRC-32 is linear, so no pass over
 * the value is needed. */
uint32_t record_value_crc(uint32_t record_crc, uint32_t head_crc, uint64_t value_len);

/* Writes the 11-byte header. */
void record_encode_header(uint8_t out[RECORD_HEADER_LEN], uint8_t op, uint32_t key_len,
                          uint32_t val_len);

/* Parses a header; false when the magic is wrong. */
bool record_decode_header(const uint8_t in[RECORD_HEADER_LEN], struct record_header *h);

/* CRC-32 of op, lengths and key: the part of the checksum before the value. */
uint32_t record_crc_head(const uint8_t hdr[RECORD_HEADER_LEN], const void *key, size_t key_len);

/* Writes a whole record (header, key, payload, checksum) of
 * record_size(key_len, len) bytes to out. */
void record_build(uint8_t *out, uint8_t op, const void *key, uint32_t key_len, const void *payload,
                  uint32_t len);

/* CRC-32 of bytes, continuing crc (0 to start). */
uint32_t record_crc_update(uint32_t crc, const void *buf, size_t len);

/* Up to this many bytes, a CRC pass over them costs less than one
 * record_crc_combine (zlib's crc32_combine: about 90 ns whatever the length,
 * against 50 ns for a 256-byte pass and 106 ns for 1 KiB on this project's
 * machines): below it, checksums are made by passes, not combined. */
#define RECORD_CRC_PASS_MAX 1024u

/* The record checksum from the head CRC and the CRC of the value alone. */
uint32_t record_crc_combine(uint32_t head_crc, uint32_t value_crc, uint64_t val_len);

#endif /* KV_STORE_RECORD_H */
