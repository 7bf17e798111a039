/*
 * commit.h - the commit pipeline (commit.c): kv_write, kv_write_async, and
 * the group commit that writes every queued batch in rounds of one pwritev
 * and one fdatasync.
 */
#ifndef KV_STORE_COMMIT_H
#define KV_STORE_COMMIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kvstore.h"

struct kv__unit;

/* Who runs rounds now (the committer token). */
enum kv__commit_state {
    COMMIT_IDLE,   /* nobody: the queue is empty */
    COMMIT_INLINE, /* a kv_write caller, for its own batch alone */
    COMMIT_THREAD  /* the commit thread */
};

/* A histogram of kv_histogram's shape, filled with relaxed atomics. */
struct kv__hist {
    const uint64_t *le;
    size_t n;
    atomic_uint_fast64_t count[KV_HIST_BUCKETS];
    atomic_uint_fast64_t total, sum;
};

/* What a round knows of a key after the ops before the one it decides. */
struct ov_slot {
    uint64_t hash;
    const void *key;
    size_t key_len;
    const kv_op *put;   /* the PUT that set it, when present (its value_crc) */
    uint64_t expire_at; /* the expiry that PUT gave it (0: none) */
    bool used, present;
};

struct ov_undo {
    size_t slot;
    struct ov_slot prev;
};

/* The round's overlay: the keys its earlier ops wrote, over the index. */
struct overlay {
    struct ov_slot *slots;
    size_t cap; /* a power of two, or 0 */
    struct ov_undo *undo;
    size_t nundo, undo_cap;
};

struct kv__commit {
    /* queue_mu */
    struct kv__unit *head, *tail; /* their count is kv_store.queue_len */
    enum kv__commit_state state;
    size_t gather_target;     /* the commit thread waits for this many queued; 0: not waiting */
    pthread_cond_t cv;        /* the commit thread's wait, on queue_mu */
    uint64_t last_arrival_ns; /* when the last batch was queued */
    uint64_t gather_since;    /* the commit thread gathers arrivals since then */
    uint64_t arrival_gap_ns;  /* longest gap between two arrivals while it gathers, of late */

    /* The token holder's. */
    size_t writers;         /* the most batches in flight at a round's end, of late */
    size_t window_max;      /* the most in this window of rounds... */
    size_t prev_window_max; /* ...and in the window before */
    unsigned window_rounds; /* rounds so far in this window */
    uint64_t round_end_ns;  /* when the last round completed */
    uint64_t sync_ns;       /* its fdatasync's duration */
    struct iovec *iov;
    size_t iov_cap;
    struct overlay ov;
    int new_keys; /* PUTs of new keys, less those of present ones, of late (-8..8) */

    pthread_t thread;
    bool thread_started;

    atomic_uint_fast64_t rounds, batches;
    struct kv__hist writes_per_sync, batch_wait_us;
};

/* Sets up s->commit (before recovery) and starts the commit thread (after
 * it). */
int kv__commit_init(kv_store *s);
int kv__commit_start(kv_store *s);

/* kv_close's first step: refuses new batches (KV_EBUSY), completes every
 * batch accepted, and joins the commit thread. Then kv__commit_free. */
void kv__commit_stop(kv_store *s);
void kv__commit_free(kv_store *s);

/* kv_write without the argument checks of the public function, for
 * kv_put, kv_put_crc and kv_delete; want_crc sets PUTs' value_crc. */
int kv__write_ops(kv_store *s, kv_op *ops, size_t n, bool want_crc);

/* One PUT whose key expires at expire_at_ms (0: never; absolute, ms since
 * the Unix epoch), written as a SETX with the expiry; kv_write refuses an
 * expiry until the index keeps one. value_crc (not NULL) receives the
 * value's CRC-32. */
int kv__write_set(kv_store *s, const void *key, size_t key_len, const void *val, size_t val_len,
                  uint64_t expire_at_ms, kv_cond cond, uint32_t *value_crc);

/* kv_meta_put's write: one META record (meta.h) through the pipeline. */
int kv__write_meta(kv_store *s, const void *name, size_t name_len, const void *val, size_t val_len);

#endif /* KV_STORE_COMMIT_H */
