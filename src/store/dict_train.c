/*
 * dict_train.c - training a compression dictionary from the store's own
 * values, at the start of a compaction (dict_train.h).
 *
 * Small values compress poorly alone: a 500-byte JSON document shares most
 * of its bytes (field names, common values) with its neighbours, not with
 * itself. A dictionary trained on a sample of them (zstd's
 * ZDICT_trainFromBuffer) gives each frame that shared context. The sample is
 * taken from the newest segments backwards, record by record (values of up
 * to TRAIN_VALUE_MAX bytes, compressed ones decompressed), until
 * TRAIN_SAMPLE_BYTES are gathered: what is written now says best what will
 * be written next. One sample in HOLDOUT is kept out of training and
 * compresses with both the new dictionary and the current one; the new one
 * is adopted only when it makes them ADOPT_PERCENT % of the size or less
 * (any gain when there is none yet), so that a compaction does not rewrite
 * every value for a dictionary no better than the last.
 */
#include "dict_train.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <zdict.h>
#include <zstd.h>

#include "compress.h"
#include "dict.h"
#include "logging.h"
#include "record.h"
#include "rwlock.h"
#include "segment.h"
#include "segment_scan.h"
#include "store.h"

#define TRAIN_DICT_CAP     (64u << 10)
#define TRAIN_VALUE_MAX    (16u << 10)
#define TRAIN_SAMPLE_BYTES (4u << 20)
#define TRAIN_MIN_BYTES    (8u * TRAIN_DICT_CAP / 4u)
#define TRAIN_MIN_SAMPLES  64u
#define HOLDOUT            8u
#define ADOPT_PERCENT      90u

struct sample {
    kv_store *s;
    uint8_t *buf;
    size_t len;
    size_t *sizes;
    size_t n, cap;
};

/* Adds one value to the sample; 1 when the sample is full (ends the scan). */
static int add_value(struct sample *sm, const uint8_t *val, size_t len)
{
    if (len < 8 || len > TRAIN_VALUE_MAX)
        return 0;
    if (sm->n == sm->cap) {
        size_t ncap = sm->cap ? 2 * sm->cap : 1024;
        size_t *grown = realloc(sm->sizes, ncap * sizeof(*grown));
        if (!grown)
            return KV_ENOMEM;
        sm->sizes = grown;
        sm->cap = ncap;
    }
    memcpy(sm->buf + sm->len, val, len);
    sm->len += len;
    sm->sizes[sm->n++] = len;
    return sm->len + TRAIN_VALUE_MAX > TRAIN_SAMPLE_BYTES ? 1 : 0;
}

/* Scan callback: the value of every set record that checks out. */
static int sample_record(const struct scan_record *r, void *arg)
{
    struct sample *sm = arg;
    if (r->status != KV_REC_OK || (r->op != KV_OP_SET && r->op != KV_OP_SETX) ||
        r->payload_len != r->val_len)
        return 0;
    if (r->op == KV_OP_SET)
        return add_value(sm, r->payload, r->val_len);
    const uint8_t *stored = r->payload + r->attrs_len;
    size_t stored_len = r->val_len - r->attrs_len;
    if (!(r->attrs.flags & RECORD_ATTR_ZSTD))
        return add_value(sm, stored, stored_len);
    if (r->attrs.raw_len > TRAIN_VALUE_MAX)
        return 0;
    uint8_t *raw = NULL;
    if (kv__value_decompress(sm->s, &r->attrs, stored, stored_len, &raw) != 0)
        return 0; /* a damaged value is no sample; the scan goes on */
    int rc = add_value(sm, raw, r->attrs.raw_len);
    free(raw);
    return rc;
}

/* Gathers the sample from the segments, newest first. */
static int gather(kv_store *s, struct sample *sm)
{
    kv__rdlock(&s->rwlock);
    size_t n = s->nsegs;
    uint32_t *ids = malloc((n ? n : 1) * sizeof(*ids));
    uint64_t *sizes = malloc((n ? n : 1) * sizeof(*sizes));
    for (size_t i = 0; ids && sizes && i < n; i++) {
        ids[i] = s->segs[i]->id;
        sizes[i] = atomic_load(&s->segs[i]->size);
    }
    kv__unlock(&s->rwlock);
    int rc = ids && sizes ? 0 : KV_ENOMEM;
    /* Segments leave the table only by compaction, which the caller is. */
    for (size_t i = n; rc == 0 && i-- > 0;) {
        char path[4096];
        rc = kv__segment_path(s->dir, ids[i], false, path, sizeof(path));
        int fd = rc == 0 ? s->io->open(s->io->ctx, path, O_RDONLY | O_CLOEXEC, 0) : -1;
        if (fd < 0) {
            rc = rc ? rc : kv__errno_to_rc(errno);
            break;
        }
        rc = kv__scan_segment(s->io, fd, sizes[i], 0, sample_record, sm);
        s->io->close(s->io->ctx, fd);
    }
    free(ids);
    free(sizes);
    return rc == 1 ? 0 : rc;
}

/* Bytes the n values of buf (of the given sizes) take compressed, each
 * alone, with cdict (NULL: with none, at level). */
static size_t compressed_size(const uint8_t *buf, const size_t *sizes, size_t n, ZSTD_CCtx *c,
                              const ZSTD_CDict *cdict, int level, uint8_t *out, size_t cap)
{
    size_t total = 0;
    for (size_t i = 0; i < n; buf += sizes[i++]) {
        size_t z = cdict ? ZSTD_compress_usingCDict(c, out, cap, buf, sizes[i], cdict)
                         : ZSTD_compressCCtx(c, out, cap, buf, sizes[i], level);
        total += ZSTD_isError(z) ? sizes[i] : z;
    }
    return total;
}

/* Moves the held-out samples (every HOLDOUT-th) behind the others, sizes
 * included (sm->sizes has room for 2 * n), and returns how many samples
 * are left in front: the training set. */
static size_t split_training_set(struct sample *sm, uint8_t *scratch)
{
    size_t train = 0, held = 0, at = 0, ntrain = 0, nheld = 0;
    size_t *held_sizes = sm->sizes + sm->n; /* room made by the caller */
    for (size_t i = 0; i < sm->n; at += sm->sizes[i++]) {
        if (i % HOLDOUT == HOLDOUT - 1) {
            memcpy(scratch + held, sm->buf + at, sm->sizes[i]);
            held += sm->sizes[i];
            held_sizes[nheld++] = sm->sizes[i];
        } else {
            memmove(sm->buf + train, sm->buf + at, sm->sizes[i]);
            train += sm->sizes[i];
            sm->sizes[ntrain++] = sm->sizes[i];
        }
    }
    memcpy(sm->buf + train, scratch, held);
    memmove(sm->sizes + ntrain, held_sizes, nheld * sizeof(*sm->sizes));
    return ntrain;
}

int kv__dict_train(kv_store *s)
{
    if (s->opts.compression != KV_COMPRESS_ZSTD)
        return 0;
    struct sample sm = {.s = s, .buf = malloc(TRAIN_SAMPLE_BYTES)};
    uint8_t *dict = malloc(TRAIN_DICT_CAP);
    uint8_t *scratch = malloc(TRAIN_SAMPLE_BYTES);
    int rc = sm.buf && dict && scratch ? gather(s, &sm) : KV_ENOMEM;
    if (rc == 0 && (sm.len < TRAIN_MIN_BYTES || sm.n < TRAIN_MIN_SAMPLES)) {
        kv__log(s, KV_LOG_DEBUG, "no dictionary trained: %zu values (%zu bytes) is too few", sm.n,
                sm.len);
        goto out;
    }
    /* The evaluation needs the samples in their original order, and the
     * trainer the training set alone at the front: keep the held-out ones
     * (every HOLDOUT-th) at the back. */
    size_t *sizes = rc == 0 ? realloc(sm.sizes, 2 * sm.n * sizeof(*sizes)) : NULL;
    if (rc == 0 && !sizes)
        rc = KV_ENOMEM;
    if (rc != 0)
        goto out;
    sm.sizes = sizes;
    size_t ntrain = split_training_set(&sm, scratch), nheld = sm.n - ntrain, train_bytes = 0;
    for (size_t i = 0; i < ntrain; i++)
        train_bytes += sm.sizes[i];
    size_t dlen = ZDICT_trainFromBuffer(dict, TRAIN_DICT_CAP, sm.buf, sm.sizes, (unsigned)ntrain);
    if (ZDICT_isError(dlen)) {
        kv__log(s, KV_LOG_DEBUG, "no dictionary trained: %s", ZDICT_getErrorName(dlen));
        goto out;
    }
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    ZSTD_CDict *fresh = ZSTD_createCDict(dict, dlen, s->opts.compression_level);
    struct kv_dict *cur = kv__dict_current(s);
    if (!cctx || !fresh) {
        rc = KV_ENOMEM;
    } else {
        const uint8_t *held = sm.buf + train_bytes;
        const size_t *held_sizes = sm.sizes + ntrain;
        size_t cap = ZSTD_compressBound(TRAIN_VALUE_MAX);
        int level = s->opts.compression_level;
        size_t with_new =
            compressed_size(held, held_sizes, nheld, cctx, fresh, level, scratch, cap);
        size_t with_cur = compressed_size(held, held_sizes, nheld, cctx, cur ? cur->cdict : NULL,
                                          level, scratch, cap);
        bool adopt =
            cur && cur->cdict ? with_new * 100 <= with_cur * ADOPT_PERCENT : with_new < with_cur;
        kv__log(s, KV_LOG_DEBUG,
                "dictionary of %zu bytes trained on %zu values: %zu held-out values take %zu "
                "bytes with it, %zu with %s",
                dlen, ntrain, nheld, with_new, with_cur, cur ? "the current one" : "none");
        uint32_t id;
        if (adopt)
            rc = kv__dict_install(s, dict, dlen, &id);
    }
    kv__dict_put(cur);
    ZSTD_freeCDict(fresh);
    ZSTD_freeCCtx(cctx);
out:
    free(sm.buf);
    free(sm.sizes);
    free(dict);
    free(scratch);
    return rc;
}
