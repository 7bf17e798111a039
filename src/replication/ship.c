/*
 * ship.c - a primary's answer to a replica's request for its log.
 *
 * A request names the history and the position the replica holds durably,
 * which is also its acknowledgement (acks.c). The answer is the records
 * after that position, as the engine keeps them (kv_log_read: whole records
 * only, already durable, each checked), up to max_bytes; when there is
 * nothing yet, the request waits up to wait_ms for the log to grow, so a
 * replica that is caught up hears of a write within a sync of it (a long
 * poll). A history that is not the primary's, or a position its log no
 * longer holds (compacted away) or never held, gets status 409: the
 * replica must resync in full.
 *
 * An answer is read into a buffer of the size asked for, which the HTTP
 * layer gives back once it is sent. A replica catching up asks for tens of
 * MiB at a time: the buffer of a full answer is kept for the next request,
 * since a new one costs a page fault (and a page cleared) for every 4 KiB
 * of it in every request, a third of the primary's work in a catch-up.
 */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The primary's history, taken (and stored) the first time a replica asks. */
static int ensure_history(struct repl *r, char out[REPL_HISTORY_LEN + 1])
{
    pthread_mutex_lock(&r->mu);
    bool fresh = r->history[0] == '\0';
    if (fresh)
        repl__new_history(r->history);
    memcpy(out, r->history, REPL_HISTORY_LEN + 1);
    pthread_mutex_unlock(&r->mu);
    if (!fresh)
        return 0;
    vs_log(VS_LOG_INFO, "replication: history %s begins (a replica asked for the log)", out);
    return repl__save_state(r, "primary", NULL);
}

/* An answer's buffer: its owner, its capacity, the bytes used. */
struct repl_ship_buf {
    struct repl *r;
    size_t cap, len;
    uint8_t data[];
};

/* A buffer of at least cap bytes: the one kept, when it is large enough. */
static struct repl_ship_buf *buf_take(struct repl *r, size_t cap)
{
    pthread_mutex_lock(&r->mu);
    struct repl_ship_buf *b = r->spare_buf;
    if (b != NULL && b->cap >= cap)
        r->spare_buf = NULL;
    else
        b = NULL;
    pthread_mutex_unlock(&r->mu);
    if (b == NULL && cap <= SIZE_MAX - sizeof(*b)) {
        b = malloc(sizeof(*b) + cap);
        if (b != NULL)
            *b = (struct repl_ship_buf){.r = r, .cap = cap};
    }
    if (b != NULL)
        b->len = 0;
    return b;
}

void repl_ship_release(void *buffer)
{
    struct repl_ship_buf *b = buffer;
    if (b == NULL)
        return;
    struct repl *r = b->r;
    struct repl_ship_buf *drop = b;
    pthread_mutex_lock(&r->mu);
    if (b->len > b->cap / 2) {
        /* Most of it used: a catch-up, which asks again at once. */
        drop = r->spare_buf;
        r->spare_buf = b;
    } else if (r->spare_buf != NULL) {
        /* A small answer: the replica keeps up, nothing to keep. */
        free(r->spare_buf);
        r->spare_buf = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    free(drop);
}

void repl__ship_free_spare(struct repl *r)
{
    pthread_mutex_lock(&r->mu);
    free(r->spare_buf);
    r->spare_buf = NULL;
    pthread_mutex_unlock(&r->mu);
}

static void fail(struct repl_ship_res *res, int status, const char *why)
{
    res->status = status;
    snprintf(res->error, sizeof(res->error), "%s", why);
}

/* Reads from *pos into the buffer *bp, growing it for a record longer than
 * it. */
static int read_some(struct repl *r, kv_log_pos *pos, struct repl_ship_buf **bp,
                     struct repl_ship_res *res)
{
    struct repl_ship_buf *b = *bp;
    size_t len = 0;
    int rc = kv_log_read(r->kv, pos, b->data, b->cap, &len, &res->next);
    if (rc == KV_ETOOBIG) {
        struct repl_ship_buf *big = buf_take(r, len);
        if (big == NULL)
            return KV_ENOMEM;
        free(b);
        *bp = b = big;
        rc = kv_log_read(r->kv, pos, b->data, b->cap, &len, &res->next);
    }
    if (rc == 0)
        b->len = len;
    return rc;
}

bool repl_ack(struct repl *r, const char *replica, const char *history, kv_log_pos pos)
{
    pthread_mutex_lock(&r->mu);
    bool same =
        atomic_load(&r->writable) && r->history[0] != '\0' && strcmp(history, r->history) == 0;
    pthread_mutex_unlock(&r->mu);
    if (same)
        repl__acked(r, replica, pos);
    return same;
}

void repl_ship(struct repl *r, const struct repl_ship_req *req, struct repl_ship_res *res)
{
    memset(res, 0, sizeof(*res));
    if (!atomic_load(&r->writable)) {
        fail(res, 403, "this volume is a replica; ask its primary");
        return;
    }
    if (ensure_history(r, res->history) != 0) {
        fail(res, 500, "cannot store the history id");
        return;
    }
    if (!req->resync && strcmp(req->history, res->history) != 0) {
        fail(res, 409, "history differs: resync in full");
        return;
    }
    kv_log_pos pos = req->resync ? (kv_log_pos){0, 0} : req->from;
    if (req->resync || req->staging)
        repl__forget(r, req->replica);
    else
        repl__acked(r, req->replica, req->acked);
    struct repl_ship_buf *b = buf_take(r, req->max_bytes ? req->max_bytes : 1);
    if (b == NULL) {
        fail(res, 500, "out of memory");
        return;
    }
    int rc = read_some(r, &pos, &b, res);
    if (rc == 0 && b->len == 0 && req->wait_ms > 0) {
        kv_log_wait(r->kv, &pos, req->wait_ms);
        rc = read_some(r, &pos, &b, res);
    }
    if (rc == KV_ENOTFOUND) {
        fail(res, 409, "position not in the log (compacted away, or past its end): resync in full");
    } else if (rc != 0) {
        vs_log(VS_LOG_ERROR, "replication: reading the log for %s: %s", req->replica,
               kv_strerror(rc));
        fail(res, 500, kv_strerror(rc));
    }
    if (rc != 0) {
        free(b);
        return;
    }
    res->buffer = b;
    res->records = b->data;
    res->len = b->len;
    res->status = 200;
    res->start = pos;
    kv_log_end(r->kv, &res->end);
    res->lag_bytes = repl__distance(r, res->next, res->end);
}
