/*
 * read.h - reading the record the index points at (read.c). A read finds
 * the record and pins its segment under the rwlock, then copies and checks
 * the value without it:
 *
 *   rdlock; kv__locate (or kv__locate_loc); kv__read_begin; unlock;
 *   kv__read_value; kv__read_end
 *
 * A pinned segment stays readable even when compaction removes it meanwhile,
 * so the value read is the one the index named under the lock.
 */
#ifndef KV_STORE_READ_H
#define KV_STORE_READ_H

#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "kvstore.h"

struct segment;

/* Where a read finds its record. */
struct read_at {
    struct kv_loc loc;
    struct segment *seg;
    const uint8_t *rec; /* the record in the segment's mapping, or NULL: read by fd */
    int fd;
};

/* Looks key up (bloom filter, then index) and finds its segment: 0 or
 * KV_ENOTFOUND (KV_EIO when the index names a segment that is not open).
 * Caller holds the rwlock. */
int kv__locate(kv_store *s, const void *key, size_t key_len, struct read_at *at);

/* The same for a location taken from the index. Caller holds the rwlock. */
int kv__locate_loc(kv_store *s, const struct kv_loc *loc, struct read_at *at);

/* Pins the record's segment and maps (or opens) it, for a record whose key
 * is key_len bytes. On failure nothing is left pinned. Caller holds the
 * rwlock. */
int kv__read_begin(kv_store *s, struct read_at *at, size_t key_len);

/* Copies the value of the record into a new buffer (*out, *out_len bytes
 * and a zero byte after them) once its header matches key and its checksum
 * holds, decompressed when the record says so; value_crc, when not NULL,
 * receives the value's own CRC-32. KV_ENOTFOUND when the record's expiry
 * has passed; KV_ECORRUPT, KV_EIO or KV_ENOMEM otherwise. Caller holds no
 * lock. */
int kv__read_value(kv_store *s, const struct read_at *at, const void *key, size_t key_len,
                   uint8_t **out, size_t *out_len, uint32_t *value_crc);

/* The wall clock expiry is measured against: ms since the Unix epoch
 * (struct kv_io's clock_ms: CLOCK_REALTIME unless a test sets its own). */
uint64_t kv__now_ms(const kv_store *s);

/*
 * kv_stat's reading of a record: the head of a record of key whose value is
 * val_len bytes (header, key, and at least the first RECORD_ATTRS_MAX bytes
 * of the value, or all of it when shorter: head_len bytes) and its stored
 * checksum give the value's size, CRC-32 and expiry, without the value: the
 * checksum covers the head and the value, and CRC-32 is linear
 * (record_value_crc); a compressed value's size and CRC are in its
 * attributes. KV_ECORRUPT when the head is not that of a SET or SETX of key
 * with that length, KV_EFORMAT for attributes this version does not know.
 */
int kv__stat_record(const uint8_t *head, size_t head_len, uint32_t record_crc, const void *key,
                    size_t key_len, uint64_t val_len, kv_stat_info *out);

/* Fills *out from the record's header, key, attributes and checksum,
 * without reading its value (kv_stat). Caller holds no lock. */
int kv__read_stat(kv_store *s, const struct read_at *at, const void *key, size_t key_len,
                  kv_stat_info *out);

/* A key's position (kv_stat_info.position): its record's segment above its
 * offset, which is below 2^31 (segments are at most 2 GiB). */
#define KV_POSITION_OFF_BITS 31u
static inline uint64_t kv__position_of(const struct kv_loc *loc)
{
    return (uint64_t)loc->seg << KV_POSITION_OFF_BITS | loc->off;
}

/* The key of the record at position (kv_key_at). Takes the rwlock. */
int kv__read_key_at(kv_store *s, uint64_t position, uint8_t **key, size_t *key_len);

/* Ends a read that kv__read_begin started. Caller holds no lock. */
void kv__read_end(kv_store *s, struct read_at *at);

#endif /* KV_STORE_READ_H */
