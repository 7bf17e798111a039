/*
 * storage.c - the blob layer: etags and preconditions over the engine.
 *
 * A precondition is made atomic with its write by the engine: it becomes the
 * condition of the write's kv_op (If-None-Match: * is KV_IF_ABSENT, If-Match:
 * * is KV_IF_PRESENT, If-Match with one etag is KV_IF_CRC), decided when the
 * write is sequenced, after every write before it. A precondition that no
 * single condition says (lists of etags, both headers at once) is checked
 * against the blob's state as read now, and the write is made conditional on
 * that state not changing (KV_IF_ABSENT, or KV_IF_CRC of the etag read): if
 * it changed meanwhile, the engine refuses the write and it is prepared again
 * from the new state (BLOB_ERETRY). Each retry means another write of the key
 * went through, so retries end. No lock of this layer is held at any time.
 */
#include "storage.h"

#include <stdlib.h>
#include <string.h>

struct blob_store {
    kv_store *kv;
    char *volume_id;
};

int blob_store_open(const char *dir, const kv_options *opts, const char *volume_id,
                    struct blob_store **out)
{
    struct blob_store *bs = calloc(1, sizeof(*bs));
    if (bs == NULL)
        return KV_ENOMEM;
    bs->volume_id = strdup(volume_id);
    int rc = bs->volume_id == NULL ? KV_ENOMEM : kv_open(dir, opts, &bs->kv);
    if (rc != 0) {
        free(bs->volume_id);
        free(bs);
        return rc;
    }
    *out = bs;
    return 0;
}

int blob_store_close(struct blob_store *bs)
{
    if (bs == NULL)
        return 0;
    int rc = kv_close(bs->kv);
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

bool blob_etag_list_has(const struct blob_etag_list *list, uint32_t etag)
{
    for (size_t i = 0; i < list->count; i++) {
        if (list->tags[i] == etag)
            return true;
    }
    return false;
}

/* Learns whether key exists and its etag. A missing key is not an error
 * here. Returns 0 or an engine code. */
static int current_state(struct blob_store *bs, const void *key, size_t key_len, bool *exists,
                         uint32_t *etag)
{
    void *val = NULL;
    size_t len = 0;
    int rc = kv_get_crc(bs->kv, key, key_len, &val, &len, etag);
    kv_free(val);
    *exists = rc == 0;
    return rc == KV_ENOTFOUND ? 0 : rc;
}

/* Evaluates cond against the current blob, in the order of RFC 9110
 * section 13.2.2: If-Match first, then If-None-Match. */
static bool cond_holds(const struct blob_cond *cond, bool exists, uint32_t etag)
{
    const struct blob_etag_list *im = &cond->if_match;
    if (im->present && !(exists && (im->any || blob_etag_list_has(im, etag))))
        return false;
    const struct blob_etag_list *inm = &cond->if_none_match;
    return !(inm->present && exists && (inm->any || blob_etag_list_has(inm, etag)));
}

/* Sets op's condition to cond when one engine condition says it exactly;
 * false when it takes the blob's current state. */
static bool exact_condition(const struct blob_cond *cond, kv_op *op)
{
    const struct blob_etag_list *im = &cond->if_match;
    const struct blob_etag_list *inm = &cond->if_none_match;
    if (!im->present && !inm->present) {
        op->cond = KV_IF_ANY;
        return true;
    }
    if (im->present && inm->present)
        return false;
    if (inm->present) {
        if (!inm->any)
            return false;
        op->cond = KV_IF_ABSENT;
        return true;
    }
    if (im->any) {
        op->cond = KV_IF_PRESENT;
        return true;
    }
    if (im->count == 1 && im->foreign == 0) {
        op->cond = KV_IF_CRC;
        op->cond_crc = im->tags[0];
        return true;
    }
    return false;
}

int blob_write_prepare(struct blob_store *bs, struct blob_write *w, bool is_delete, const void *key,
                       size_t key_len, const void *val, size_t len, const struct blob_cond *cond)
{
    memset(w, 0, sizeof(*w));
    w->op.type = is_delete ? KV_WRITE_DEL : KV_WRITE_PUT;
    w->op.key = key;
    w->op.key_len = key_len;
    w->op.val = is_delete ? NULL : val;
    w->op.val_len = is_delete ? 0 : len;
    static const struct blob_cond none;
    if (cond == NULL)
        cond = &none;
    if (exact_condition(cond, &w->op))
        return 0;
    bool exists = false;
    uint32_t etag = 0;
    int rc = current_state(bs, key, key_len, &exists, &etag);
    if (rc != 0)
        return rc;
    if (!cond_holds(cond, exists, etag))
        return BLOB_EPRECONDITION;
    w->optimistic = true;
    w->op.cond = exists ? KV_IF_CRC : KV_IF_ABSENT;
    w->op.cond_crc = etag;
    return 0;
}

int blob_write_submit(struct blob_store *bs, struct blob_write *w, kv_done_fn done, void *ctx)
{
    return kv_write_async(bs->kv, &w->op, 1, done, ctx);
}

int blob_write_result(const struct blob_write *w, int rc)
{
    if (rc == KV_ECONDITION)
        return w->optimistic ? BLOB_ERETRY : BLOB_EPRECONDITION;
    if (rc != 0)
        return rc;
    /* DELETE of an absent blob is 204, as in the original. */
    return w->op.rc == KV_ENOTFOUND ? 0 : w->op.rc;
}

/* A write, waiting for it: prepared again for as long as the state it was
 * pinned to changes under it. */
static int write_and_wait(struct blob_store *bs, struct blob_write *w, bool is_delete,
                          const void *key, size_t key_len, const void *val, size_t len,
                          const struct blob_cond *cond, uint64_t expire_at_ms)
{
    for (;;) {
        int rc = blob_write_prepare(bs, w, is_delete, key, key_len, val, len, cond);
        if (rc != 0)
            return rc;
        w->op.expire_at_ms = expire_at_ms;
        rc = blob_write_result(w, kv_write(bs->kv, &w->op, 1));
        if (rc != BLOB_ERETRY)
            return rc;
    }
}

int blob_put(struct blob_store *bs, const void *key, size_t key_len, const void *val, size_t len,
             const struct blob_cond *cond, uint32_t *etag)
{
    return blob_put_expiring(bs, key, key_len, val, len, cond, 0, etag);
}

int blob_put_expiring(struct blob_store *bs, const void *key, size_t key_len, const void *val,
                      size_t len, const struct blob_cond *cond, uint64_t expire_at_ms,
                      uint32_t *etag)
{
    /* The etag comes from the engine, which takes the body's CRC-32 in the
     * pass that checksums its record: the body is read once. */
    struct blob_write w;
    int rc = write_and_wait(bs, &w, false, key, key_len, val, len, cond, expire_at_ms);
    if (rc == 0)
        *etag = w.op.value_crc;
    return rc;
}

int blob_get(struct blob_store *bs, const void *key, size_t key_len, void **val, size_t *len,
             uint32_t *etag)
{
    return kv_get_crc(bs->kv, key, key_len, val, len, etag);
}

int blob_stat(struct blob_store *bs, const void *key, size_t key_len, uint64_t *size,
              uint32_t *etag, uint64_t *expire_at_ms)
{
    kv_stat_info st;
    int rc = kv_stat(bs->kv, key, key_len, &st);
    if (rc == 0) {
        *size = st.size;
        *etag = st.value_crc;
        if (expire_at_ms)
            *expire_at_ms = st.expire_at_ms;
    }
    return rc;
}

int blob_delete(struct blob_store *bs, const void *key, size_t key_len,
                const struct blob_cond *cond)
{
    struct blob_write w;
    return write_and_wait(bs, &w, true, key, key_len, NULL, 0, cond, 0);
}

int blob_delete_many(struct blob_store *bs, const void *const *keys, const size_t *lens, size_t n,
                     size_t *deleted)
{
    *deleted = 0;
    if (n == 0)
        return 0;
    kv_op *ops = calloc(n, sizeof(*ops));
    if (!ops)
        return KV_ENOMEM;
    for (size_t i = 0; i < n; i++)
        ops[i] = (kv_op){.type = KV_WRITE_DEL, .key = keys[i], .key_len = lens[i]};
    int rc = kv_write(bs->kv, ops, n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        *deleted += ops[i].rc == 0;
    free(ops);
    return rc;
}

const char *blob_strerror(int rc)
{
    if (rc == BLOB_EPRECONDITION)
        return "precondition failed";
    return kv_strerror(rc);
}
