/*
 * storage.h - the blob layer of volume-server: blobs with an etag, a size and
 * a volume id, kept in a kv_store.
 *
 * The etag of a blob is the CRC-32 (zlib's crc32) of its bytes. The engine
 * computes it in the pass that checksums the blob's record, both when it is
 * written (kv_put_crc) and when it is read (kv_get_crc): the bytes are never
 * scanned twice.
 *
 * Conditional writes (create-only, compare-and-swap) are atomic: every write
 * of a key, conditional or not, holds the key's lock (one of a fixed table of
 * mutexes, chosen by a hash of the key) from the check to the durable write.
 * Reads take no lock. All functions are safe to call from any thread.
 */
#ifndef VS_STORAGE_H
#define VS_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kvstore.h>

/* Returned when a precondition of blob_put or blob_delete does not hold.
 * Outside the range of KV_E... codes. */
#define BLOB_EPRECONDITION (-100)

/* Most entity tags one If-Match or If-None-Match list may hold. */
#define BLOB_ETAG_LIST_MAX 32

/* One If-Match or If-None-Match header, parsed. */
struct blob_etag_list {
    bool present; /* the header was sent */
    bool any;     /* it was "*" */
    size_t count; /* etags in tags[] */
    uint32_t tags[BLOB_ETAG_LIST_MAX];
    /* Tags that are not etags of this server ("abc", W/"x") match nothing but
     * still make the list non-empty. */
    size_t foreign;
};

/* Preconditions of a write, as RFC 9110 section 13 defines them. */
struct blob_cond {
    struct blob_etag_list if_match;      /* holds when the blob exists and matches */
    struct blob_etag_list if_none_match; /* holds when the blob is absent or differs */
};

struct blob_store;

/* Opens the store in dir with opts (NULL: defaults). volume_id is copied.
 * Codes: those of kv_open, KV_ENOMEM. */
int blob_store_open(const char *dir, const kv_options *opts, const char *volume_id,
                    struct blob_store **out);

/* kv_close of the store and release of the layer; NULL is accepted. No call
 * may run or start once it is called. Returns kv_close's code. */
int blob_store_close(struct blob_store *bs);

/* The volume id given to blob_store_open. */
const char *blob_volume_id(const struct blob_store *bs);

/* The engine handle, for statistics, listing and maintenance. */
kv_store *blob_kv(struct blob_store *bs);

/*
 * Stores val (len bytes) under key if cond (NULL: none) holds, and sets
 * *etag to the blob's etag. Durable as kv_put is in the store's sync mode.
 * Codes: BLOB_EPRECONDITION, or kv_put's and kv_get's codes.
 */
int blob_put(struct blob_store *bs, const void *key, size_t key_len, const void *val, size_t len,
             const struct blob_cond *cond, uint32_t *etag);

/*
 * Reads the blob of key: *val is a kv_get allocation of *len bytes, released
 * with kv_free; *etag is its etag. Codes: KV_ENOTFOUND, and kv_get's codes.
 */
int blob_get(struct blob_store *bs, const void *key, size_t key_len, void **val, size_t *len,
             uint32_t *etag);

/*
 * The size and etag of the blob of key, without reading its bytes
 * (kv_stat): for HEAD and a conditional GET. Codes: KV_ENOTFOUND, and
 * kv_stat's codes.
 */
int blob_stat(struct blob_store *bs, const void *key, size_t key_len, uint64_t *size,
              uint32_t *etag);

/*
 * Deletes the blob of key if cond (NULL: none) holds. Deleting an absent blob
 * without a precondition succeeds. Codes: BLOB_EPRECONDITION, kv_delete's.
 */
int blob_delete(struct blob_store *bs, const void *key, size_t key_len,
                const struct blob_cond *cond);

/*
 * Deletes the blob of key and says whether it was there: 0 when it was
 * deleted, KV_ENOTFOUND when it was absent (decided by the engine, atomically
 * with the delete), or kv_delete's other codes.
 */
int blob_delete_existing(struct blob_store *bs, const void *key, size_t key_len);

/* True when an etag list holds etag (comparison of the value only, so weak
 * and strong tags compare equal: enough for If-None-Match on reads). */
bool blob_etag_list_has(const struct blob_etag_list *list, uint32_t etag);

/* The text of a BLOB_E... or KV_E... code. */
const char *blob_strerror(int rc);

#endif /* VS_STORAGE_H */
