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
 */
#include "internal.h"

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

static void fail(struct repl_ship_res *res, int status, const char *why)
{
    res->status = status;
    snprintf(res->error, sizeof(res->error), "%s", why);
}

/* Reads from *pos into res->records, growing it for a record longer than
 * it. */
static int read_some(struct repl *r, kv_log_pos *pos, size_t max, struct repl_ship_res *res)
{
    size_t len = 0;
    int rc = kv_log_read(r->kv, pos, res->records, max, &len, &res->next);
    if (rc == KV_ETOOBIG) {
        uint8_t *big = realloc(res->records, len);
        if (big == NULL)
            return KV_ENOMEM;
        res->records = big;
        rc = kv_log_read(r->kv, pos, res->records, len, &len, &res->next);
    }
    if (rc == 0)
        res->len = len;
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
    size_t max = req->max_bytes ? req->max_bytes : 1;
    res->records = malloc(max);
    if (res->records == NULL) {
        fail(res, 500, "out of memory");
        return;
    }
    int rc = read_some(r, &pos, max, res);
    if (rc == 0 && res->len == 0 && req->wait_ms > 0) {
        kv_log_wait(r->kv, &pos, req->wait_ms);
        rc = read_some(r, &pos, max, res);
    }
    if (rc == KV_ENOTFOUND) {
        fail(res, 409, "position not in the log (compacted away, or past its end): resync in full");
    } else if (rc != 0) {
        vs_log(VS_LOG_ERROR, "replication: reading the log for %s: %s", req->replica,
               kv_strerror(rc));
        fail(res, 500, kv_strerror(rc));
    }
    if (rc != 0) {
        free(res->records);
        res->records = NULL;
        res->len = 0;
        return;
    }
    res->status = 200;
    res->start = pos;
    kv_log_end(r->kv, &res->end);
    res->lag_bytes = repl__distance(r, res->next, res->end);
}
