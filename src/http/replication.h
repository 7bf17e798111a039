/*
 * replication.h - the HTTP endpoints of replication (replication.c):
 * GET /replication/log for a primary's replicas, POST /admin/promote, and
 * the figures /health and /metrics show (src/replication/ does the work).
 */
#ifndef VS_HTTP_REPLICATION_H
#define VS_HTTP_REPLICATION_H

#include <jansson.h>

#include "http.h"

/* GET /replication/log?id=&history=&seg=&off=[&ack_seg=&ack_off=]&wait_ms=
 * &max=[&resync=1][&staging=1]: the records after seg:off (the replica
 * acknowledges ack_seg:ack_off, by default seg:off) (raw, as the log
 * holds them: application/octet-stream), with X-Repl-History, X-Repl-Start,
 * X-Repl-Next, X-Repl-End ("seg:off") and X-Repl-Lag-Bytes; 409 when the
 * replica must resync in full; 403 on a replica. May wait (wait_ms). */
void repl_http_ship(struct vs_request *r);

/* GET /replication/ack?id=&history=&seg=&off=: a replica's acknowledgement
 * sent on its own (204; 409 when the history is not this primary's). */
void repl_http_ack(struct vs_request *r);

/* POST /admin/promote: 200 {"role":"primary","history",...}. */
void repl_http_promote(struct vs_request *r);

/*
 * After r's write became durable at log position (seg, end): true when its
 * reply must wait for MIN_REPLICA_ACKS replicas; then acked(r) runs once,
 * on another thread, when they hold it or REPLICA_ACK_TIMEOUT_MS passed
 * (then r->acks_missing is set). False: reply at once. Never blocks.
 */
bool repl_http_await(struct vs_request *r, uint64_t seg, uint64_t end,
                     void (*acked)(struct vs_request *r));

/* The 504 of a write that replicas did not confirm in time, in place of the
 * response built for it. */
void repl_http_reply_unconfirmed(struct vs_request *r);

/* 403 for a write sent to a replica, naming its primary. */
void repl_http_refuse_write(struct vs_request *r);

/* Adds role, and for a replica primary and lag_bytes, to a /health body. */
void repl_http_health(struct vs_app *app, json_t *body);

/* Adds replication's figures to a /metrics body: "role", a replica's
 * "primary", "replicas" (a primary's: id, name, lag_bytes, lag_ms, as the
 * status page reads them) and the whole "replication" object. */
void repl_http_metrics(struct vs_app *app, json_t *body);

#endif /* VS_HTTP_REPLICATION_H */
