/*
 * metrics.c - the health and metrics endpoints.
 *
 * One table of figures feeds both formats of /metrics, so that the JSON and
 * the Prometheus exposition can never disagree on what is reported. The
 * figures come from one kv_get_stats call (a consistent set) and from the
 * server's counters.
 */
#include "metrics.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "response.h"

#define MIB 1048576.0

/* FLAG: true/false in JSON, a 0/1 gauge in the exposition. */
enum metric_kind { GAUGE, COUNTER, FLAG };

struct metric {
    const char *json; /* name in the JSON document */
    const char *prom; /* name in the exposition, without the kvstore_ prefix */
    enum metric_kind kind;
    const char *help;
    uint64_t value;
};

/* Megabytes for people: three decimals, as 1.5 rather than 1.50000381. */
static double megabytes(uint64_t bytes)
{
    return (double)(uint64_t)((double)bytes / MIB * 1000.0 + 0.5) / 1000.0;
}

static uint64_t load(atomic_uint_fast64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* Fills m (room for max entries) from st and the counters; returns the
 * count. */
static size_t collect(struct vs_app *app, const kv_stats *st, struct metric *m, size_t max)
{
    struct vs_counters *c = &app->counters;
    /* clang-format off */
    const struct metric all[] = {
        {"total_keys", "keys", GAUGE, "Live keys in the volume.", st->keys},
        {"total_segments", "segments", GAUGE, "Segment files.", st->segments},
        {"total_bytes", "disk_bytes", GAUGE, "Bytes in segment files.", st->disk_bytes},
        {"live_bytes", "live_bytes", GAUGE, "Bytes of the records the index points at.", st->live_bytes},
        {"dead_bytes", "dead_bytes", GAUGE, "Bytes compaction can reclaim.", st->dead_bytes},
        {"active_segment_id", "active_segment_id", GAUGE, "Segment taking new writes.", st->active_segment_id},
        {"oldest_segment_id", "oldest_segment_id", GAUGE, "Lowest segment id on disk.", st->oldest_segment_id},
        {"uptime_secs", "uptime_seconds", GAUGE, "Seconds since the server started.", vs_app_uptime_secs(app)},
        {"index_bytes", "index_bytes", GAUGE, "Memory held by the index and bloom filter.", st->index_bytes},
        {"bloom_bytes", "bloom_bytes", GAUGE, "Memory held by the bloom filter.", st->bloom_bytes},
        {"bloom_capacity", "bloom_capacity", GAUGE, "Keys the bloom filter is sized for.", st->bloom_capacity},
        {"bloom_negatives", "bloom_negatives_total", COUNTER, "Lookups of absent keys the bloom filter answered.", st->bloom_negatives},
        {"bloom_false_positives", "bloom_false_positives_total", COUNTER, "Lookups the bloom filter passed that the index refused.", st->bloom_false_positives},
        {"checksum_errors", "checksum_errors_total", COUNTER, "Damaged records met by recovery and reads.", st->checksum_errors},
        {"torn_bytes_truncated", "torn_bytes_truncated", GAUGE, "Bytes cut off the newest segment at open.", st->torn_bytes_truncated},
        {"fsyncs", "fsyncs_total", COUNTER, "fdatasync and fsync calls.", st->fsyncs},
        {"puts", "puts_total", COUNTER, "Acknowledged writes.", st->puts},
        {"deletes", "deletes_total", COUNTER, "Acknowledged deletes.", st->deletes},
        {"gets", "gets_total", COUNTER, "Reads.", st->gets},
        {"records_replayed", "records_replayed", GAUGE, "Log records read at open.", st->records_replayed},
        {"compactions", "compactions_total", COUNTER, "Compactions completed.", st->compactions},
        {"compaction_bytes_read", "compaction_read_bytes_total", COUNTER, "Segment bytes compactions scanned.", st->compaction_bytes_read},
        {"compaction_bytes_written", "compaction_written_bytes_total", COUNTER, "Bytes compactions wrote.", st->compaction_bytes_written},
        {"compaction_bytes_reclaimed", "compaction_reclaimed_bytes_total", COUNTER, "Disk bytes compactions freed.", st->compaction_bytes_reclaimed},
        {"last_compaction_ms", "last_compaction_milliseconds", GAUGE, "Duration of the last compaction.", st->last_compaction_ms},
        {"snapshot_loaded", "snapshot_loaded", FLAG, "1 when the last open used index.snapshot.", st->snapshot_loaded ? 1 : 0},
        {"read_only", "read_only", FLAG, "1 when writes are refused after a failed fsync.", st->read_only ? 1 : 0},
        {"http_requests", "http_requests_total", COUNTER, "HTTP requests served.", load(&c->requests)},
        {"http_bytes_received", "http_received_bytes_total", COUNTER, "Request body bytes received.", load(&c->bytes_received)},
        {"http_bytes_sent", "http_sent_bytes_total", COUNTER, "Response body bytes sent.", load(&c->bytes_sent)},
        {"http_connections", "http_connections", GAUGE, "Open client connections.", load(&c->connections)},
        {"http_connections_total", "http_connections_total", COUNTER, "Client connections accepted.", load(&c->connections_total)},
        {"http_in_flight", "http_in_flight_requests", GAUGE, "Requests begun and not complete.", load(&c->in_flight)},
        {"http_body_bytes", "http_body_memory_bytes", GAUGE, "Memory held for request bodies.", load(&c->body_bytes)},
    };
    /* clang-format on */
    size_t n = sizeof(all) / sizeof(all[0]);
    if (n > max)
        n = max;
    memcpy(m, all, n * sizeof(all[0]));
    return n;
}

void metrics_health(struct vs_request *r)
{
    kv_stats st;
    int rc = kv_get_stats(blob_kv(r->app->store), &st);
    if (rc != 0) {
        vs_reply_store_error(r, rc);
        return;
    }
    json_t *body =
        json_pack("{s:s,s:s,s:I,s:I,s:f,s:I}", "status", st.read_only ? "degraded" : "healthy",
                  "volume_id", blob_volume_id(r->app->store), "keys", (json_int_t)st.keys,
                  "segments", (json_int_t)st.segments, "total_mb", megabytes(st.disk_bytes),
                  "uptime_secs", (json_int_t)vs_app_uptime_secs(r->app));
    if (body != NULL && st.read_only)
        json_object_set_new(body, "read_only", json_true());
    vs_reply_json(r, MHD_HTTP_OK, body);
}

static void reply_json_metrics(struct vs_request *r, const kv_stats *st, const struct metric *m,
                               size_t n)
{
    json_t *body = json_object();
    if (body == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        json_t *v = m[i].kind == FLAG ? json_boolean(m[i].value != 0)
                                      : json_integer((json_int_t)m[i].value);
        if (json_object_set_new(body, m[i].json, v) != 0)
            goto fail;
    }
    struct vs_counters *c = &r->app->counters;
    static const char *const class_names[] = {"",
                                              "http_responses_1xx",
                                              "http_responses_2xx",
                                              "http_responses_3xx",
                                              "http_responses_4xx",
                                              "http_responses_5xx"};
    for (size_t k = 1; k <= 5; k++)
        json_object_set_new(body, class_names[k], json_integer((json_int_t)load(&c->by_class[k])));
    double avg = st->keys > 0 ? (double)st->live_bytes / (double)st->keys : 0.0;
    json_object_set_new(body, "total_mb", json_real(megabytes(st->disk_bytes)));
    json_object_set_new(body, "avg_value_size_bytes", json_real(avg));
    json_object_set_new(body, "volume_id", json_string(blob_volume_id(r->app->store)));
    json_object_set_new(body, "sync_mode",
                        json_string(config_sync_mode_name(r->app->cfg->sync_mode)));
    vs_reply_json(r, MHD_HTTP_OK, body);
    return;
fail:
    json_decref(body);
    vs_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
}

/* A growing text buffer for the exposition format. */
struct text {
    char *buf;
    size_t len, cap;
    bool failed;
};

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_printf(struct text *t, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !t->failed; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *grown = realloc(t->buf, cap);
        if (grown == NULL) {
            t->failed = true;
            return;
        }
        t->buf = grown;
        t->cap = cap;
    }
}

static void reply_prometheus(struct vs_request *r, const kv_stats *st, const struct metric *m,
                             size_t n)
{
    const char *vol = blob_volume_id(r->app->store); /* [A-Za-z0-9._:-]: no escaping */
    struct text t = {.buf = malloc(8192), .cap = 8192};
    if (t.buf == NULL) {
        vs_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
        return;
    }
    t.buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *type = m[i].kind == COUNTER ? "counter" : "gauge";
        text_printf(
            &t, "# HELP kvstore_%s %s\n# TYPE kvstore_%s %s\nkvstore_%s{volume=\"%s\"} %llu\n",
            m[i].prom, m[i].help, m[i].prom, type, m[i].prom, vol, (unsigned long long)m[i].value);
    }
    double avg = st->keys > 0 ? (double)st->live_bytes / (double)st->keys : 0.0;
    text_printf(&t,
                "# HELP kvstore_avg_value_size_bytes Live bytes per key.\n"
                "# TYPE kvstore_avg_value_size_bytes gauge\n"
                "kvstore_avg_value_size_bytes{volume=\"%s\"} %.3f\n",
                vol, avg);
    text_printf(&t, "# HELP kvstore_http_responses_total HTTP responses by status class.\n"
                    "# TYPE kvstore_http_responses_total counter\n");
    for (size_t k = 1; k <= 5; k++)
        text_printf(&t, "kvstore_http_responses_total{volume=\"%s\",code=\"%zuxx\"} %llu\n", vol, k,
                    (unsigned long long)load(&r->app->counters.by_class[k]));
    if (t.failed) {
        free(t.buf);
        vs_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
        return;
    }
    vs_reply_bytes(r, MHD_HTTP_OK, t.buf, t.len, "text/plain; version=0.0.4; charset=utf-8", free,
                   t.buf);
}

void metrics_reply(struct vs_request *r, bool prometheus)
{
    kv_stats st;
    struct metric m[48];
    int rc = kv_get_stats(blob_kv(r->app->store), &st);
    if (rc != 0) {
        vs_reply_store_error(r, rc);
        return;
    }
    size_t n = collect(r->app, &st, m, sizeof(m) / sizeof(m[0]));
    if (prometheus)
        reply_prometheus(r, &st, m, n);
    else
        reply_json_metrics(r, &st, m, n);
}
