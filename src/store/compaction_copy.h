/*
 * compaction_copy.h - the compactor's state, shared by compaction.c (the
 * steps around the copy: sealing, publishing, moving the index, removing
 * the inputs) and compaction_copy.c (step 2: finding the live records of
 * the inputs and copying them into the outputs). Nothing else includes it.
 */
#ifndef KV_STORE_COMPACTION_COPY_H
#define KV_STORE_COMPACTION_COPY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kvstore.h"
#include "record.h"
#include "store.h"

#define WRITE_BUF (1u << 20)
#define READ_BUF  (1u << 20)

/* A live record of an input, as the index names it, and where it went. */
struct live {
    uint32_t seg, off, val_len;
    uint32_t new_seg, new_off, new_val_len;
    uint16_t key_len;
    bool copied;  /* its checksum held and it is in an output */
    bool expired; /* its checksum held and its expiry has passed: not copied */
};

/* The newest META record of a name that lies in an input, carried forward. */
struct carried_meta {
    uint8_t *name, *val;
    size_t name_len, val_len;
    uint32_t seg, off, new_seg, new_off;
};

struct compactor {
    kv_store *s;
    struct segment **inputs;
    uint32_t *in_ids;
    size_t nin;
    struct live *live; /* sorted by (seg, off) once collected */
    size_t nlive, live_cap;
    int in_fd;
    uint32_t in_seg;  /* the input in_fd reads */
    uint32_t next_id; /* the id the next output gets */
    uint32_t last_id; /* the last id reserved for outputs */
    uint32_t *outs;   /* ids of the outputs written, and their sizes */
    uint64_t *out_sizes;
    size_t nouts, outs_cap;
    int out_fd;
    uint64_t out_size; /* bytes of the current output, buffered ones included */
    uint8_t *wbuf;
    size_t wlen;
    uint8_t *rbuf; /* a read of the inputs: READ_BUF, or one larger record */
    size_t rbuf_cap;
    uint8_t *keys; /* the keys of the copied records, in order */
    size_t keys_len, keys_cap;
    uint64_t bytes_in; /* input bytes read */
    uint64_t disk_in;  /* input bytes on disk */
    uint64_t live_in;
    uint64_t now_ms;      /* the wall clock expiry is judged by */
    bool tombstones;      /* older segments survive outside the compaction */
    uint64_t expired;     /* records dropped for their expiry */
    struct kv_dict *dict; /* the current dictionary, held: values are compressed with it */
    uint32_t *named;      /* dictionaries that records in the outputs name */
    size_t nnamed, named_cap;
    uint8_t *xbuf; /* a record rewritten for the outputs */
    size_t xbuf_cap;
    struct carried_meta *metas;
    size_t nmetas;
};

static inline int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    void *grown = realloc(*p, ncap * elem);
    if (!grown)
        return KV_ENOMEM;
    *p = grown;
    *cap = ncap;
    return 0;
}

static inline bool cancelled(const struct compactor *c)
{
    return atomic_load_explicit(&c->s->compact_cancel, memory_order_relaxed);
}

static inline uint64_t live_size(const struct live *r)
{
    return record_size(r->key_len, r->val_len);
}

/* Inputs are exactly the segments with ids up to the last input's. */
static inline bool names_input(const struct compactor *c, uint32_t seg)
{
    return seg <= c->in_ids[c->nin - 1];
}

/* Step 2a: notes every index entry that names an input, a hash range per
 * read-lock hold, and sorts the notes by (segment, offset). */
int kv__compaction_collect(struct compactor *c);

/* Step 2b: copies the live records into the outputs (.tmp files, fsynced),
 * as they are or re-encoded, drops the expired ones, and carries the
 * newest META of each name forward. */
int kv__compaction_copy(struct compactor *c);

#endif /* KV_STORE_COMPACTION_COPY_H */
