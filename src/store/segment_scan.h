/*
 * segment_scan.h - reading a segment record by record, good or bad
 * (segment_scan.c): the one parser of the log, used by recovery and by
 * kv_scan.
 */
#ifndef KV_STORE_SEGMENT_SCAN_H
#define KV_STORE_SEGMENT_SCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "kvstore.h"
#include "record.h"

/* Bytes of a record's payload that the scanner hands on with it (a META's
 * whole value, a SETX's attribute block): RECORD_META_MAX. */
#define SCAN_PAYLOAD_HEAD RECORD_META_MAX

/* One record, or one region of bytes that do not check out, or the zeros
 * that end a preallocated segment (KV_REC_ZERO_TAIL). A BATCH record that
 * checks out is reported, then each record inside it (in_batch). */
struct scan_record {
    uint64_t off;
    uint64_t len;
    kv_record_status status;
    bool at_tail;  /* nothing that checks out follows it in the segment */
    bool in_batch; /* a record inside the BATCH record reported before it */
    bool header;   /* its first bytes decode as a header (op and lengths are set) */
    uint8_t op;
    const uint8_t *key; /* into the reader's buffer: valid during the call */
    uint32_t key_len;
    uint32_t val_len;
    uint32_t crc;
    /* Status OK only: the first payload_len bytes of the payload (all of it
     * up to SCAN_PAYLOAD_HEAD bytes), in the reader's buffer like key; and
     * for a SETX its attribute block, decoded (attrs_len bytes of it). */
    const uint8_t *payload;
    uint32_t payload_len;
    struct record_attrs attrs;
    size_t attrs_len;
};

/* Return 0 to go on; anything else stops the scan and is returned. */
typedef int (*scan_fn)(const struct scan_record *r, void *ctx);

/* Calls fn for every record or damaged region of the size bytes of fd from
 * start on, reading through io. */
int kv__scan_segment(const struct kv_io *io, int fd, uint64_t size, uint64_t start, scan_fn fn,
                     void *ctx);

#endif /* KV_STORE_SEGMENT_SCAN_H */
