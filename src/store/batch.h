/*
 * batch.h - one kv_write or kv_write_async call as a unit of group commit
 * (batch.c): its ops checked, encoded as log records in the caller's thread,
 * and, once the commit round has decided which of them are written, framed
 * as one plain record or one BATCH record.
 *
 * A BATCH record (op KV_OP_BATCH, key_len 0) holds the complete records of
 * its ops back to back as its payload; its checksum covers them all, so that
 * a batch torn or damaged anywhere is refused whole (docs/FORMAT.md). Each
 * inner record keeps its own magic, header and checksum, and the index
 * points at it directly.
 */
#ifndef KV_STORE_BATCH_H
#define KV_STORE_BATCH_H

#include <semaphore.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "compress.h"
#include "index.h"
#include "kvstore.h"
#include "record.h"

/* An op of the engine's own, never in a kv_write call: kv_meta_put's META
 * record (key: the name, val: the value). It carries no condition, is
 * always written alone (never inside a BATCH) and changes no key. */
#define KV__WRITE_META ((kv_write_type)100)

/* A record of at most this many bytes is copied whole into the unit (one
 * iovec, one CRC pass); a longer one keeps only its header and trailer
 * there, and its key and value stay the caller's. */
#define UNIT_SMALL_RECORD 256u

/* The encoded record of one op. */
struct op_rec {
    uint64_t hash;       /* index_hash of the key */
    uint64_t len;        /* bytes of the record; 0 for a CHECK */
    struct kv_setval sv; /* a PUT's payload (compress.c: a SET, or a SETX), a META's value */
    uint64_t expire_at;  /* the expiry sv carries (0: none) */
    uint32_t full_crc;   /* CRC-32 of all its bytes, magic to trailer (units of several
                            ops, a record not held whole) */
    uint8_t *bytes;      /* the whole record, or its header with the trailer after it */
    bool whole;          /* bytes hold the whole record */
    bool crc_known;      /* a PUT's value_crc was taken at encoding */
    bool written;        /* decided by the round: the record goes to the log */
    struct kv_loc loc;   /* where it went */
};

struct kv__unit {
    kv_op *ops;
    size_t n;
    struct op_rec *recs;
    uint64_t max_bytes; /* log bytes when every record is written, framing included */

    /* Decided by the round that takes it. */
    size_t nwritten;                                       /* records it writes */
    uint64_t payload;                                      /* their bytes */
    uint8_t frame[RECORD_HEADER_LEN + RECORD_TRAILER_LEN]; /* BATCH header, then trailer */
    int rc;
    kv_commit_info info;

    /* How it completes: done (kv_write_async), or a post of wake to the
     * thread waiting in kv_write; or neither when that thread committed it
     * itself (not queued). */
    kv_done_fn done;
    void *ctx;
    sem_t wake;  /* initialised when a kv_write's unit is queued */
    bool queued; /* it went through the queue (submit_ns is set) */
    uint64_t submit_ns;
    struct kv__unit *next;
};

/* Checks the ops of a kv_write call: 0, KV_EINVAL or KV_ETOOBIG. */
int kv__unit_check(const kv_op *ops, size_t n);

/* Bytes of op_rec array and record storage the unit of ops needs. */
size_t kv__unit_storage(const kv_op *ops, size_t n);

/* Fills u for ops (checked), with recs (n entries) and buf (at least
 * kv__unit_storage - n * sizeof(struct op_rec) bytes) as its storage: every
 * PUT's value encoded for its record (compress.c: compressed, or with its
 * expiry, into a SETX), every record encoded with its checksum and each
 * op's rc zeroed; with want_crc, each PUT's value_crc set too. Codes:
 * KV_ENOMEM, KV_ETOOBIG, KV_EIO (zstd refused); nothing is held then.
 * Otherwise kv__unit_release lets go of what it holds once the unit is
 * written or has failed. */
int kv__unit_encode(kv_store *s, struct kv__unit *u, kv_op *ops, size_t n, struct op_rec *recs,
                    uint8_t *buf, bool want_crc);
void kv__unit_release(kv_store *s, struct kv__unit *u);

/* Encodes the PUT of u's op i again with expiry expire_at, in the place
 * its record already has (sized for an expiry: KV_KEEP_EXPIRY), value_crc
 * included: the round's answer to a kept expiry. Codes as kv__unit_encode;
 * the unit must then fail (its op holds nothing more to release). */
int kv__unit_reencode(kv_store *s, struct kv__unit *u, size_t i, uint64_t expire_at);

/* Given the written flags of u's records, sets nwritten and payload, and
 * the BATCH framing when it writes more than one. Returns the log bytes it
 * takes. */
uint64_t kv__unit_frame(struct kv__unit *u);

/* Appends u's iovecs for the log (records written, in order, framed) to iov
 * at *n (room for kv__unit_iov_max), and places its records at off in
 * segment seg. */
void kv__unit_iov(struct kv__unit *u, struct iovec *iov, size_t *n, uint32_t seg, uint64_t off);

/* Most iovecs kv__unit_iov appends for u. */
size_t kv__unit_iov_max(const struct kv__unit *u);

#endif /* KV_STORE_BATCH_H */
