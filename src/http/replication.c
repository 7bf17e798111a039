/*
 * replication.c - the HTTP endpoints of replication (replication.h): the
 * request of a replica for its primary's log, promotion, the answer to a
 * write sent to a replica, and the figures of /health and /metrics.
 */
#include "replication.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"
#include "log.h"
#include "repl.h"
#include "response.h"

#define SHIP_MAX_BYTES (64u << 20) /* most bytes one answer carries */
#define SHIP_MAX_WAIT  5000u       /* ms */

/* Parameter name of r's query as an unsigned number (def when absent);
 * false (and a 400 reply) when it is malformed. */
static bool query_u64(struct vs_request *r, const char *name, uint64_t def, uint64_t *out)
{
    *out = def;
    if (r->path_len >= r->uri_len)
        return true;
    char *v = NULL;
    size_t len = 0;
    int found =
        http_query_param(r->uri + r->path_len + 1, r->uri_len - r->path_len - 1, name, &v, &len);
    if (found == 1) {
        char *end = NULL;
        unsigned long long n = strtoull(v, &end, 10);
        bool ok = len > 0 && *end == '\0' && v[0] != '-';
        free(v);
        if (!ok) {
            vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "Malformed query parameter %s", name);
            return false;
        }
        *out = n;
        return true;
    }
    free(v);
    if (found < 0) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "Malformed query parameter %s", name);
        return false;
    }
    return true;
}

/* Parameter name as a string (an empty one when absent), copied into buf. */
static bool query_str(struct vs_request *r, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    if (r->path_len >= r->uri_len)
        return true;
    char *v = NULL;
    size_t vl = 0;
    int found =
        http_query_param(r->uri + r->path_len + 1, r->uri_len - r->path_len - 1, name, &v, &vl);
    if (found == 1 && vl < len && memchr(v, '\0', vl) == NULL)
        memcpy(buf, v, vl + 1);
    free(v);
    if (found < 0 || (found == 1 && vl >= len)) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "Malformed query parameter %s", name);
        return false;
    }
    return true;
}

static void pos_header(struct vs_request *r, const char *name, kv_log_pos p)
{
    char text[48];
    snprintf(text, sizeof(text), "%" PRIu64 ":%" PRIu64, p.seg, p.off);
    vs_reply_header(r, name, text);
}

void repl_http_ship(struct vs_request *r)
{
    char id[72], history[REPL_HISTORY_LEN + 1];
    uint64_t seg, off, ack_seg, ack_off, wait_ms, max, resync, staging;
    if (!query_str(r, "id", id, sizeof(id)) || !query_str(r, "history", history, sizeof(history)) ||
        !query_u64(r, "seg", 0, &seg) || !query_u64(r, "off", 0, &off) ||
        !query_u64(r, "ack_seg", seg, &ack_seg) || !query_u64(r, "ack_off", off, &ack_off) ||
        !query_u64(r, "wait_ms", 0, &wait_ms) || !query_u64(r, "max", 1u << 20, &max) ||
        !query_u64(r, "resync", 0, &resync) || !query_u64(r, "staging", 0, &staging))
        return;
    if (id[0] == '\0') {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "Missing query parameter id");
        return;
    }
    struct repl_ship_req req = {.replica = id,
                                .history = history,
                                .from = {seg, off},
                                .acked = {ack_seg, ack_off},
                                .resync = resync != 0,
                                .wait_ms =
                                    (uint32_t)(wait_ms > SHIP_MAX_WAIT ? SHIP_MAX_WAIT : wait_ms),
                                .max_bytes = (size_t)(max == 0               ? 1
                                                      : max > SHIP_MAX_BYTES ? SHIP_MAX_BYTES
                                                                             : max)};
    struct repl_ship_res res;
    req.staging = staging != 0;
    repl_ship(r->app->repl, &req, &res);
    if (res.status != 200) {
        vs_reply_error(r, (unsigned)res.status, "%s", res.error);
        if (res.history[0] != '\0')
            vs_reply_header(r, "X-Repl-History", res.history);
        return;
    }
    vs_reply_bytes(r, MHD_HTTP_OK, res.records, res.len, "application/octet-stream",
                   repl_ship_release, res.buffer);
    vs_reply_header(r, "X-Repl-History", res.history);
    pos_header(r, "X-Repl-Start", res.start);
    pos_header(r, "X-Repl-Next", res.next);
    pos_header(r, "X-Repl-End", res.end);
    char lag[24];
    snprintf(lag, sizeof(lag), "%" PRIu64, res.lag_bytes);
    vs_reply_header(r, "X-Repl-Lag-Bytes", lag);
}

void repl_http_ack(struct vs_request *r)
{
    char id[72], history[REPL_HISTORY_LEN + 1];
    uint64_t seg, off;
    if (!query_str(r, "id", id, sizeof(id)) || !query_str(r, "history", history, sizeof(history)) ||
        !query_u64(r, "seg", 0, &seg) || !query_u64(r, "off", 0, &off))
        return;
    if (id[0] == '\0') {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "Missing query parameter id");
        return;
    }
    if (!repl_ack(r->app->repl, id, history, (kv_log_pos){seg, off})) {
        vs_reply_error(r, MHD_HTTP_CONFLICT, "history differs");
        return;
    }
    vs_reply_empty(r, MHD_HTTP_NO_CONTENT);
}

void repl_http_promote(struct vs_request *r)
{
    struct repl *rp = r->app->repl;
    bool was_replica = !repl_writable(rp);
    int rc = repl_promote(rp);
    if (rc != 0) {
        vs_reply_store_error(r, rc);
        return;
    }
    struct repl_figures f;
    repl_figures(rp, &f);
    vs_reply_json(r, MHD_HTTP_OK,
                  json_pack("{s:s,s:s,s:b}", "role", "primary", "history", f.history, "promoted",
                            was_replica));
}

void repl_http_reply_unconfirmed(struct vs_request *r)
{
    const struct vs_config *cfg = r->app->cfg;
    if (r->response != NULL) {
        MHD_destroy_response(r->response);
        r->response = NULL;
    }
    vs_reply_error(r, MHD_HTTP_GATEWAY_TIMEOUT,
                   "The write is durable on the primary but not confirmed by %u replica(s) "
                   "within %u ms (MIN_REPLICA_ACKS, REPLICA_ACK_TIMEOUT_MS)",
                   cfg->min_replica_acks, cfg->replica_ack_timeout_ms);
}

/* What the queue of acknowledgements calls back. */
static void on_acks(void *ctx, bool confirmed)
{
    struct vs_request *r = ctx;
    r->acks_missing = !confirmed;
    r->acked(r);
}

bool repl_http_await(struct vs_request *r, uint64_t seg, uint64_t end,
                     void (*acked)(struct vs_request *r))
{
    struct repl *rp = r->app->repl;
    r->acks_missing = false;
    if (!repl_acks_needed(rp))
        return false;
    r->acked = acked;
    repl_await(rp, seg, end, on_acks, r);
    return true;
}

void repl_http_refuse_write(struct vs_request *r)
{
    const char *primary = repl_primary(r->app->repl);
    vs_reply_json(r, MHD_HTTP_FORBIDDEN,
                  json_pack("{s:s+,s:s}", "error",
                            "This volume is a read-only replica; write to its primary at ",
                            primary ? primary : "?", "primary", primary ? primary : ""));
}

void repl_http_health(struct vs_app *app, json_t *body)
{
    if (app->repl == NULL || body == NULL)
        return;
    struct repl_figures f;
    repl_figures(app->repl, &f);
    json_object_set_new(body, "role", json_string(f.replica ? "replica" : "primary"));
    if (f.replica) {
        json_object_set_new(body, "primary", json_string(f.primary));
        json_object_set_new(body, "lag_bytes", json_integer((json_int_t)f.lag_bytes));
    }
}

static json_t *pos_json(kv_log_pos p)
{
    return json_pack("{s:I,s:I}", "segment", (json_int_t)p.seg, "offset", (json_int_t)p.off);
}

static json_t *metrics_object(struct vs_app *app)
{
    struct repl_figures f;
    repl_figures(app->repl, &f);
    json_t *o = json_pack(
        "{s:s,s:s,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "role", f.replica ? "replica" : "primary",
        "history", f.history, "position", pos_json(f.position), "min_replica_acks",
        (json_int_t)f.min_acks, "acks_waited", (json_int_t)f.acks_waited, "acks_timed_out",
        (json_int_t)f.acks_timed_out, "acks_pending", (json_int_t)f.acks_pending, "full_resyncs",
        (json_int_t)f.full_resyncs, "refused_batches", (json_int_t)f.refused_batches,
        "bytes_received", (json_int_t)f.bytes_received);
    if (o == NULL)
        return json_null();
    if (f.replica) {
        json_object_set_new(o, "primary", json_string(f.primary));
        json_object_set_new(o, "lag_bytes", json_integer((json_int_t)f.lag_bytes));
        json_object_set_new(o, "lag_ms", json_integer((json_int_t)f.lag_ms));
        json_object_set_new(o, "connected", json_boolean(f.connected));
        json_object_set_new(o, "resyncing", json_boolean(f.resyncing));
    }
    json_t *reps = json_array();
    for (size_t i = 0; reps != NULL && i < f.nreplicas; i++) {
        const struct repl_replica_figures *p = &f.replicas[i];
        json_array_append_new(
            reps, json_pack("{s:s,s:o,s:I,s:I,s:I}", "id", p->id, "position", pos_json(p->acked),
                            "lag_bytes", (json_int_t)p->lag_bytes, "lag_ms", (json_int_t)p->lag_ms,
                            "last_seen_secs", (json_int_t)p->since_secs));
    }
    json_object_set_new(o, "replicas", reps ? reps : json_null());
    return o;
}

void repl_http_metrics(struct vs_app *app, json_t *body)
{
    if (app->repl == NULL || body == NULL)
        return;
    json_t *o = metrics_object(app);
    json_object_set(body, "role", json_object_get(o, "role"));
    if (json_object_get(o, "primary") != NULL)
        json_object_set(body, "primary", json_object_get(o, "primary"));
    json_t *reps = json_array();
    json_t *all = json_object_get(o, "replicas");
    size_t i;
    json_t *p;
    json_array_foreach(all, i, p)
    {
        json_array_append_new(reps, json_pack("{s:O,s:O,s:O}", "name", json_object_get(p, "id"),
                                              "lag_bytes", json_object_get(p, "lag_bytes"),
                                              "lag_ms", json_object_get(p, "lag_ms")));
    }
    json_object_set_new(body, "replicas", reps);
    json_object_set_new(body, "replication", o);
}
