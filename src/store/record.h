/*
 * record.h - the on-disk record, shared with the original Go and Rust
 * implementations:
 *
 *   magic F0 F1 | op u8 | key_len u32le | val_len u32le | key | value | crc32 u32le
 *
 * The checksum is zlib's CRC-32 over op, key_len, val_len, key and value.
 */
#ifndef KV_STORE_RECORD_H
#define KV_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Writes the 11-byte header. */
void record_encode_header(uint8_t out[RECORD_HEADER_LEN], uint8_t op, uint32_t key_len,
                          uint32_t val_len);

/* Parses a header; false when the magic is wrong. */
bool record_decode_header(const uint8_t in[RECORD_HEADER_LEN], struct record_header *h);

/* CRC-32 of op, lengths and key: the part of the checksum before the value. */
uint32_t record_crc_head(const uint8_t hdr[RECORD_HEADER_LEN], const void *key, size_t key_len);

/* CRC-32 of bytes, continuing crc (0 to start). */
uint32_t record_crc_update(uint32_t crc, const void *buf, size_t len);

/* The record checksum from the head CRC and the CRC of the value alone. */
uint32_t record_crc_combine(uint32_t head_crc, uint32_t value_crc, uint64_t val_len);

#endif /* KV_STORE_RECORD_H */
