/*
 * storage.h - the blob layer of volume-server: blobs with an etag, a size and
 * a volume id, kept in a kv_store.
 *
 * The etag of a blob is the CRC-32 (zlib's crc32) of its bytes. The engine
 * computes it in the pass that checksums the blob's record, both when it is
 * written (kv_put_crc) and when it is read (kv_get_crc): the bytes are never
 * scanned twice.
 *
 * Conditional writes (create-only, compare-and-swap) are atomic because the
 * engine decides them with the write (kv_op conditions, in log order): the
 * blob layer holds no lock of its own. A precondition the engine cannot say
 * in one condition (a list of several etags) is pinned to the state it was
 * checked against (absent, or this etag); if that state changed before the
 * write was sequenced, the write is prepared again from the new state.
 * Every function is safe to call from any thread.
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
/* blob_write_result: the state a precondition was pinned to changed before
 * the write: prepare it again. */
#define BLOB_ERETRY (-101)

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
 * *etag to the blob's etag. Durable as kv_put is in the store's sync mode;
 * waits for it (a front end that must not wait uses blob_write_submit).
 * Codes: BLOB_EPRECONDITION, or kv_write's and kv_get's codes.
 */
int blob_put(struct blob_store *bs, const void *key, size_t key_len, const void *val, size_t len,
             const struct blob_cond *cond, uint32_t *etag);

/* blob_put of a blob that expires at expire_at_ms (ms since the Unix epoch;
 * 0: never): absent everywhere from then on. */
int blob_put_expiring(struct blob_store *bs, const void *key, size_t key_len, const void *val,
                      size_t len, const struct blob_cond *cond, uint64_t expire_at_ms,
                      uint32_t *etag);

/*
 * A write of a blob (a put or a delete) on its way through the engine, for a
 * front end that waits for it asynchronously (blob_write_submit); blob_put
 * and blob_delete are the same steps, waiting. Its key, value and cond are
 * the caller's and must stay valid and unchanged until the write completes.
 */
struct blob_write {
    kv_op op;        /* the engine op: PUT or DEL, with the condition */
    bool optimistic; /* the condition pins the state the precondition was checked on */
};

/*
 * Prepares w: a put of val (len bytes) under key, or with is_delete a delete
 * of key, if cond (NULL: none) holds when the write is sequenced. Returns 0,
 * BLOB_EPRECONDITION (it does not hold now, so it cannot then), or an engine
 * code (reading the blob's state failed).
 */
int blob_write_prepare(struct blob_store *bs, struct blob_write *w, bool is_delete, const void *key,
                       size_t key_len, const void *val, size_t len, const struct blob_cond *cond);

/* Submits w to the engine (kv_write_async): done runs once, on the engine's
 * commit thread, when it is durable or has failed (kv_done_fn's rules), and
 * rc is then blob_write_result's to read. Returns kv_write_async's code. */
int blob_write_submit(struct blob_store *bs, struct blob_write *w, kv_done_fn done, void *ctx);

/* The outcome of w, whose engine code was rc: 0 (a delete of an absent blob
 * without a precondition included), BLOB_EPRECONDITION, BLOB_ERETRY (prepare
 * and submit it again), or an engine code. A put's etag is w->op.value_crc. */
int blob_write_result(const struct blob_write *w, int rc);

/*
 * Reads the blob of key: *val is a kv_get allocation of *len bytes, released
 * with kv_free; *etag is its etag. Codes: KV_ENOTFOUND, and kv_get's codes.
 */
int blob_get(struct blob_store *bs, const void *key, size_t key_len, void **val, size_t *len,
             uint32_t *etag);

/*
 * The size, etag and expiry (ms since the Unix epoch, 0: none) of the blob
 * of key, without reading its bytes (kv_stat): for HEAD and a conditional
 * GET. expire_at_ms may be NULL. Codes: KV_ENOTFOUND, and kv_stat's codes.
 */
int blob_stat(struct blob_store *bs, const void *key, size_t key_len, uint64_t *size,
              uint32_t *etag, uint64_t *expire_at_ms);

/*
 * Deletes the blob of key if cond (NULL: none) holds. Deleting an absent blob
 * without a precondition succeeds. Codes: BLOB_EPRECONDITION, kv_delete's.
 */
int blob_delete(struct blob_store *bs, const void *key, size_t key_len,
                const struct blob_cond *cond);

/*
 * Deletes the blobs of keys[0 .. n) (lens[i] bytes each, valid keys) in one
 * atomic batch: the engine decides, with the write, which of them exist (a
 * reader sees all of the deletes or none), and *deleted is how many did.
 * Codes: kv_write's.
 */
int blob_delete_many(struct blob_store *bs, const void *const *keys, const size_t *lens, size_t n,
                     size_t *deleted);

/* True when an etag list holds etag (comparison of the value only, so weak
 * and strong tags compare equal: enough for If-None-Match on reads). */
bool blob_etag_list_has(const struct blob_etag_list *list, uint32_t etag);

/* The text of a BLOB_E... or KV_E... code. */
const char *blob_strerror(int rc);

#endif /* VS_STORAGE_H */
