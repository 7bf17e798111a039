/*
 * storage.c - the blob layer: etags, preconditions and per-key write locks
 * over the engine.
 *
 * Invariant: between the check of a precondition and the write that depends
 * on it, no other write of the same key can happen, because every write of a
 * key holds the stripe lock of that key for the whole sequence. Unconditional
 * writes take the lock too; otherwise one could land between another
 * request's check and its write, and a compare-and-swap would overwrite a
 * value it never saw. Different keys rarely share a stripe, so writers of
 * different keys still reach the engine together and share its fdatasync.
 */
#include "storage.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#define STRIPES 1024 /* a power of two */

struct blob_store {
    kv_store *kv;
    char *volume_id;
    pthread_mutex_t stripes[STRIPES];
};

int blob_store_open(const char *dir, const kv_options *opts, const char *volume_id,
                    struct blob_store **out)
{
    int rc = 0;
    size_t inited = 0;
    struct blob_store *bs = calloc(1, sizeof(*bs));
    if (bs == NULL) {
        rc = KV_ENOMEM;
        goto out;
    }
    bs->volume_id = strdup(volume_id);
    if (bs->volume_id == NULL) {
        rc = KV_ENOMEM;
        goto out;
    }
    for (; inited < STRIPES; inited++) {
        if (pthread_mutex_init(&bs->stripes[inited], NULL) != 0) {
            rc = KV_ENOMEM;
            goto out;
        }
    }
    rc = kv_open(dir, opts, &bs->kv);
    if (rc != 0)
        goto out;
    *out = bs;
    bs = NULL;
out:
    if (bs != NULL) {
        for (size_t i = 0; i < inited; i++)
            pthread_mutex_destroy(&bs->stripes[i]);
        free(bs->volume_id);
        free(bs);
    }
    return rc;
}

int blob_store_close(struct blob_store *bs)
{
    if (bs == NULL)
        return 0;
    int rc = kv_close(bs->kv);
    for (size_t i = 0; i < STRIPES; i++)
        pthread_mutex_destroy(&bs->stripes[i]);
    free(bs->volume_id);
    free(bs);
    return rc;
}

const char *blob_volume_id(const struct blob_store *bs)
{
    return bs->volume_id;
}

kv_store *blob_kv(struct blob_store *bs)
{
    return bs->kv;
}

static pthread_mutex_t *stripe_of(struct blob_store *bs, const void *key, size_t key_len)
{
    return &bs->stripes[XXH3_64bits(key, key_len) & (STRIPES - 1)];
}

bool blob_etag_list_has(const struct blob_etag_list *list, uint32_t etag)
{
    for (size_t i = 0; i < list->count; i++) {
        if (list->tags[i] == etag)
            return true;
    }
    return false;
}

static bool needs_etag(const struct blob_etag_list *list)
{
    return list->present && !list->any;
}

/*
 * Learns whether key exists and, when a list names etags, its etag. A
 * missing key is not an error here. Returns 0 or an engine code.
 */
static int current_state(struct blob_store *bs, const void *key, size_t key_len,
                         const struct blob_cond *cond, bool *exists, uint32_t *etag)
{
    int rc = 0;
    *exists = false;
    if (needs_etag(&cond->if_match) || needs_etag(&cond->if_none_match)) {
        void *val = NULL;
        size_t len = 0;
        rc = kv_get_crc(bs->kv, key, key_len, &val, &len, etag);
        kv_free(val);
    } else {
        rc = kv_exists(bs->kv, key, key_len);
    }
    if (rc == 0)
        *exists = true;
    return rc == KV_ENOTFOUND ? 0 : rc;
}

/* Evaluates cond against the current blob, in the order of RFC 9110
 * section 13.2.2: If-Match first, then If-None-Match. The caller holds the
 * key's stripe lock. Returns 0, BLOB_EPRECONDITION or an engine code. */
static int check_cond(struct blob_store *bs, const void *key, size_t key_len,
                      const struct blob_cond *cond)
{
    if (cond == NULL || (!cond->if_match.present && !cond->if_none_match.present))
        return 0;
    bool exists = false;
    uint32_t etag = 0;
    int rc = current_state(bs, key, key_len, cond, &exists, &etag);
    if (rc != 0)
        return rc;
    const struct blob_etag_list *im = &cond->if_match;
    if (im->present && !(exists && (im->any || blob_etag_list_has(im, etag))))
        return BLOB_EPRECONDITION;
    const struct blob_etag_list *inm = &cond->if_none_match;
    if (inm->present && exists && (inm->any || blob_etag_list_has(inm, etag)))
        return BLOB_EPRECONDITION;
    return 0;
}

int blob_put(struct blob_store *bs, const void *key, size_t key_len, const void *val, size_t len,
             const struct blob_cond *cond, uint32_t *etag)
{
    /* The etag comes from the engine, which takes the body's CRC-32 in the
     * pass that checksums its record: the body is read once. */
    uint32_t crc = 0;
    pthread_mutex_t *lock = stripe_of(bs, key, key_len);
    pthread_mutex_lock(lock);
    int rc = check_cond(bs, key, key_len, cond);
    if (rc == 0)
        rc = kv_put_crc(bs->kv, key, key_len, val, len, &crc);
    pthread_mutex_unlock(lock);
    if (rc == 0)
        *etag = crc;
    return rc;
}

int blob_get(struct blob_store *bs, const void *key, size_t key_len, void **val, size_t *len,
             uint32_t *etag)
{
    return kv_get_crc(bs->kv, key, key_len, val, len, etag);
}

int blob_stat(struct blob_store *bs, const void *key, size_t key_len, uint64_t *size,
              uint32_t *etag)
{
    kv_stat_info st;
    int rc = kv_stat(bs->kv, key, key_len, &st);
    if (rc == 0) {
        *size = st.size;
        *etag = st.value_crc;
    }
    return rc;
}

int blob_delete(struct blob_store *bs, const void *key, size_t key_len,
                const struct blob_cond *cond)
{
    pthread_mutex_t *lock = stripe_of(bs, key, key_len);
    pthread_mutex_lock(lock);
    int rc = check_cond(bs, key, key_len, cond);
    if (rc == 0)
        rc = kv_delete(bs->kv, key, key_len);
    pthread_mutex_unlock(lock);
    return rc == KV_ENOTFOUND ? 0 : rc;
}

int blob_delete_existing(struct blob_store *bs, const void *key, size_t key_len)
{
    pthread_mutex_t *lock = stripe_of(bs, key, key_len);
    pthread_mutex_lock(lock);
    int rc = kv_delete(bs->kv, key, key_len);
    pthread_mutex_unlock(lock);
    return rc;
}

const char *blob_strerror(int rc)
{
    if (rc == BLOB_EPRECONDITION)
        return "precondition failed";
    return kv_strerror(rc);
}
