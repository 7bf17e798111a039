/*
 * internal.h - struct repl, shared by the files of src/replication/ (repl.h
 * is what the rest of the server sees).
 *
 * Locks: mu guards the role, the history, the replica table and the queue
 * of writes waiting for acknowledgements; it is a leaf (no other lock is
 * taken under it, and callbacks run after it is released). The follower's
 * own figures are atomics.
 */
#ifndef VS_REPL_INTERNAL_H
#define VS_REPL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "repl.h"

#define REPL_MAX_REPLICAS 64

struct repl_peer {
    char id[72];
    kv_log_pos acked;
    uint64_t seen_ns;   /* last request */
    uint64_t behind_ns; /* when it was last seen caught up; 0: it is */
    bool used;
};

struct repl_waiter {
    kv_log_pos pos;
    uint64_t deadline_ns;
    repl_ack_fn fn;
    void *ctx;
    struct repl_waiter *next;
};

struct repl {
    struct vs_app *app;
    kv_store *kv;
    const struct vs_config *cfg;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* the timer's sleep; the follower's pauses */
    bool stop;
    bool stop_waiting; /* a shutdown began: writes wait for no replica (mu) */
    bool replica;      /* mu; atomic reads through repl_writable */
    atomic_bool writable;
    char history[REPL_HISTORY_LEN + 1];

    /* A primary's view of its replicas and the writes waiting on them. */
    struct repl_peer peers[REPL_MAX_REPLICAS];
    struct repl_waiter *wait_head, *wait_tail;
    atomic_uint_fast64_t acks_waited, acks_timed_out, acks_pending;
    struct repl_ship_buf *spare_buf; /* mu: the buffer kept by repl_ship_release */
    pthread_t timer;
    bool timer_started;

    /* A replica's position in its primary's log (follower thread; mu for
     * readers of the figures). */
    kv_log_pos pos;
    uint64_t lag_bytes;
    uint64_t behind_ns;
    bool connected, resyncing;
    atomic_uint_fast64_t refused_batches, bytes_received;
    pthread_t follower;
    bool follower_started;
    atomic_bool follower_stop;
    atomic_bool swap_ready;
};

/* ship.c: frees the buffer repl_ship_release kept (repl_stop). */
void repl__ship_free_spare(struct repl *r);

/* acks.c: notes that replica id holds the log up to pos, and releases the
 * writes it completes. Caller holds no lock. */
void repl__acked(struct repl *r, const char *id, kv_log_pos pos);

/* acks.c: replica id starts over from nothing (a full copy): what it
 * acknowledged before counts no more. */
void repl__forget(struct repl *r, const char *id);

/* acks.c: the acknowledgement timer; started by repl_start. */
int repl__timer_start(struct repl *r);
void repl__timer_stop(struct repl *r);

/* state.c: writes the state META record (history, and a replica's position
 * when pos is not NULL). */
int repl__save_state(struct repl *r, const char *role, const kv_log_pos *pos);

/* state.c: a fresh history id (32 hex digits). */
void repl__new_history(char out[REPL_HISTORY_LEN + 1]);

/* state.c: the META text of a state, for kv_log_append. Returns its length. */
size_t repl__state_text(char *buf, size_t len, const char *role, const char *history,
                        const kv_log_pos *pos);

/* state.c: bytes of the primary's log between a and b (0 unless a < b). */
uint64_t repl__distance(struct repl *r, kv_log_pos a, kv_log_pos b);

/* follower.c: one request for the log and its answer. */
struct repl_fetch {
    void *curl;    /* CURL *, reused: one kept-alive connection */
    uint8_t *body; /* the records received */
    size_t len, cap;
    long status; /* HTTP status; 0 when the request failed */
    char history[REPL_HISTORY_LEN + 1];
    kv_log_pos start, next, end;
    uint64_t lag_bytes;
    char error[256];
};

/* Asks the primary for its log after pos in history, acknowledging acked
 * (what this replica holds durably: pos, or less while the batch before pos
 * is being stored); resync: from its start, any history; staging: a full
 * copy, no acknowledgement. */
void repl__fetch(struct repl *r, struct repl_fetch *f, const char *history, kv_log_pos pos,
                 kv_log_pos acked, bool resync, bool staging);

/* Pauses the follower for ms, or less when it is stopped. */
void repl__pause(struct repl *r, unsigned ms);

/* resync.c: makes a full copy of the primary's live data in the staging
 * directory and, once it is complete, asks the program to swap it in.
 * Returns when the follower must stop (the copy is ready, or a stop). */
void repl__resync_full(struct repl *r, struct repl_fetch *f);

/* resync.c: full resyncs begun since the process started. */
uint64_t repl__full_resyncs(void);

/* follower.c */
int repl__follower_start(struct repl *r);
void repl__follower_stop(struct repl *r);

/* Positions compare as (seg, off). */
static inline int repl__pos_cmp(kv_log_pos a, kv_log_pos b)
{
    if (a.seg != b.seg)
        return a.seg < b.seg ? -1 : 1;
    return a.off < b.off ? -1 : a.off > b.off ? 1 : 0;
}

#endif /* VS_REPL_INTERNAL_H */
