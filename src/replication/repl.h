/*
 * repl.h - the main header of src/replication/: a volume's replication, as
 * DESIGN.md section 12 fixes it. A replica follows one primary by shipping
 * the primary's log; a primary answers its replicas and, with
 * MIN_REPLICA_ACKS, holds each write's reply until enough replicas hold the
 * write durably.
 *
 * src/replication/ uses src/core (the application, its store and log),
 * src/config and the engine's public API; the front ends (src/http,
 * src/resp) use it: they ask whether writes are taken (repl_writable), hand
 * each durable write's log position to repl_await and send its reply from
 * the callback, and serve the endpoints the primary and the operator need
 * (the log to replicas, promotion, the figures).
 *
 *   state.c     role, history id and position, kept in the store as the
 *               META record "repl"; opening, promotion, figures
 *   acks.c      the replicas a primary knows and what each holds; the
 *               writes waiting for acknowledgements, released in log order
 *   ship.c      a primary's answer to one request of a replica for its log
 *   follower.c  a replica's thread: fetches the log over HTTP (libcurl),
 *               stores it, and resyncs in full when it must
 *   resync.c    the full copy: staged beside the data directory, swapped
 *               in with one atomic exchange
 */
#ifndef VS_REPL_H
#define VS_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kvstore.h>

#include "app.h"

struct repl;

/* The name of the META record that holds a volume's replication state. */
#define REPL_META_NAME "repl"

/* A history id: 32 lower-case hex digits (128 random bits); "" for none. */
#define REPL_HISTORY_LEN 32

/*
 * Reads the replication state from app's store and the settings
 * (REPLICA_OF, MIN_REPLICA_ACKS, REPLICA_ACK_TIMEOUT_MS) and sets
 * app->repl. A volume without REPLICA_OF whose store says it was a replica
 * becomes a primary with a history of its own (as a promotion does). Starts
 * the acknowledgement timer and, on a replica, the follower. Returns 0, or
 * a KV_E... code with the reason logged.
 */
int repl_start(struct vs_app *app);

/* Stops the follower and the timer; writes still waiting are answered as
 * timed out. app->repl is NULL after. Safe on an app without it. */
void repl_stop(struct vs_app *app);

/* True when this volume takes writes (a primary). */
bool repl_writable(const struct repl *r);

/* The primary's address (REPLICA_OF) of a replica; NULL on a primary. */
const char *repl_primary(const struct repl *r);

/* ---- semi-synchronous replies */

/* Runs once for a write handed to repl_await: confirmed is true when
 * MIN_REPLICA_ACKS replicas hold it, false when the timeout passed first.
 * It runs on whichever thread decided (the caller's, a thread answering a
 * replica, or the timer) and must not block. */
typedef void (*repl_ack_fn)(void *ctx, bool confirmed);

/* True when writes must wait for replicas (a primary, MIN_REPLICA_ACKS > 0). */
bool repl_acks_needed(const struct repl *r);

/* Calls fn(ctx, ...) once the durable log position (seg, end) of a write
 * is held by MIN_REPLICA_ACKS replicas, or after REPLICA_ACK_TIMEOUT_MS;
 * at once (on this thread) when it already is, or when no acks are needed.
 * Never blocks. */
void repl_await(struct repl *r, uint64_t seg, uint64_t end, repl_ack_fn fn, void *ctx);

/* At the start of a shutdown: every write waiting for replicas is answered
 * now as not confirmed, and so is every later one, so that the front ends
 * can send those replies before they stop. Safe on NULL. */
void repl_stop_waiting(struct repl *r);

/* MIN_REPLICA_ACKS. */
unsigned repl_min_acks(const struct repl *r);

/* ---- the primary's side of shipping */

struct repl_ship_req {
    const char *replica; /* the replica's id (its VOLUME_ID) */
    bool staging;        /* a full copy being made: it acknowledges nothing,
                            and what the replica acknowledged before counts
                            no more */
    const char *history; /* the history its position belongs to; "" for none */
    kv_log_pos from;     /* where to read from */
    kv_log_pos acked;    /* its durable position: what it acknowledges */
    bool resync;         /* a full copy from the start, any history */
    uint32_t wait_ms;    /* how long to wait for records when none is there */
    size_t max_bytes;    /* most bytes to send */
};

struct repl_ship_res {
    int status;      /* 200; 409 resync; 403 not a primary; 500 */
    char error[160]; /* the reason, when status is not 200 */
    char history[REPL_HISTORY_LEN + 1];
    uint8_t *records; /* len bytes, in buffer */
    size_t len;
    void *buffer; /* the caller gives it back with repl_ship_release */
    kv_log_pos start, next, end;
    uint64_t lag_bytes; /* the log between next and end */
};

/* Answers one request of a replica for the primary's log (blocks up to
 * req->wait_ms: call it on a thread that may wait). */
void repl_ship(struct repl *r, const struct repl_ship_req *req, struct repl_ship_res *res);

/* Gives back an answer's buffer (res->buffer; NULL is ignored) once it
 * has been sent: from any thread, before repl_stop. The buffer of a large
 * answer is kept for the next request (a replica catching up asks for
 * tens of MiB each time, and new memory costs page faults in every
 * request); a small answer's buffer is freed, and so is the one kept. */
void repl_ship_release(void *buffer);

/* A replica's acknowledgement on its own (GET /replication/ack): it holds
 * the log up to pos of history. False when history is not this primary's. */
bool repl_ack(struct repl *r, const char *replica, const char *history, kv_log_pos pos);

/* ---- operators */

/* POST /admin/promote: a replica becomes a primary at once, with a history
 * of its own; a primary is left as it is. Returns 0 or a KV_E... code. */
int repl_promote(struct repl *r);

/* One replica as its primary sees it. */
struct repl_replica_figures {
    char id[72];
    kv_log_pos acked;    /* the position it acknowledged last */
    uint64_t lag_bytes;  /* the primary's durable log beyond it */
    uint64_t lag_ms;     /* how long it has been behind (0: caught up) */
    uint64_t since_secs; /* since its last request */
};

#define REPL_FIGURES_REPLICAS 16

/* What /health, /metrics and INFO replication show. */
struct repl_figures {
    bool replica;
    const char *primary; /* a replica's REPLICA_OF */
    char history[REPL_HISTORY_LEN + 1];
    kv_log_pos position;      /* a replica: its position in the primary's log; a primary: its end */
    uint64_t lag_bytes;       /* a replica: bytes of the primary's log it lacks (last known) */
    uint64_t lag_ms;          /* a replica: how long it has been behind (0: caught up) */
    bool connected;           /* a replica: its last request to the primary succeeded */
    bool resyncing;           /* a replica: a full copy is being made */
    uint64_t full_resyncs;    /* begun since the process started */
    uint64_t refused_batches; /* batches that failed their checks and were fetched again */
    uint64_t bytes_received;
    unsigned min_acks;
    uint64_t acks_waited, acks_timed_out, acks_pending;
    size_t nreplicas;
    struct repl_replica_figures replicas[REPL_FIGURES_REPLICAS];
};

void repl_figures(struct repl *r, struct repl_figures *out);

/* ---- the swap after a full resync (resync.c) */

/* True when a full copy waits in the staging directory for the program to
 * swap it in: the program stops its front ends, closes the store, calls
 * repl_swap_in, and starts again. */
bool repl_swap_ready(const struct repl *r);

/* Exchanges DATA_DIR with the complete copy staged beside it (one atomic
 * rename), then removes the old data. Called with the store closed.
 * Returns 0 or a KV_E... code (logged). */
int repl_swap_in(const struct vs_config *cfg);

/* Removes what a full resync left beside DATA_DIR (a copy it did not
 * finish, or old data it did not remove): called before the store opens. */
void repl_clean_staging(const struct vs_config *cfg);

#endif /* VS_REPL_H */
