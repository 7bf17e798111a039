/*
 * metrics.c - the health and metrics endpoints: the table of figures of
 * src/core/figures.h rendered as JSON or as the Prometheus text exposition,
 * plus what each format adds (megabytes, the average value size, responses
 * by status class, the volume's name), and the engine's histograms of group
 * commit (writes per fdatasync, the wait for a round).
 */
#include "metrics.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "figures.h"
#include "response.h"

#define MIB 1048576.0

/* Megabytes for people: three decimals, as 1.5 rather than 1.50000381. */
static double megabytes(uint64_t bytes)
{
    return (double)(uint64_t)((double)bytes / MIB * 1000.0 + 0.5) / 1000.0;
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

/* A histogram as JSON: {"buckets": [[le, cumulative count], ...], "count",
 * "sum"}, the last bucket's le "+Inf", as Prometheus counts them. */
static json_t *histogram_json(const kv_histogram *h)
{
    json_t *buckets = json_array();
    uint64_t cum = 0;
    for (size_t i = 0; buckets != NULL && i < h->n; i++) {
        cum += h->count[i];
        json_t *le =
            h->le[i] == UINT64_MAX ? json_string("+Inf") : json_integer((json_int_t)h->le[i]);
        json_array_append_new(buckets, json_pack("[o,I]", le, (json_int_t)cum));
    }
    return json_pack("{s:o,s:I,s:I}", "buckets", buckets, "count", (json_int_t)h->total, "sum",
                     (json_int_t)h->sum);
}

/* How writes shared their fdatasyncs (kv_get_write_stats). */
static void add_write_stats_json(json_t *body, const kv_write_stats *ws)
{
    json_object_set_new(body, "write_rounds", json_integer((json_int_t)ws->rounds));
    json_object_set_new(body, "write_batches", json_integer((json_int_t)ws->batches));
    json_object_set_new(body, "writes_per_sync_histogram", histogram_json(&ws->writes_per_sync));
    json_object_set_new(body, "batch_wait_us_histogram", histogram_json(&ws->batch_wait_us));
}

static void reply_json_metrics(struct vs_request *r, const kv_stats *st, const kv_write_stats *ws,
                               const struct vs_figure *m, size_t n)
{
    json_t *body = json_object();
    if (body == NULL)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        json_t *v = m[i].kind == VS_FIGURE_FLAG ? json_boolean(m[i].value != 0)
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
        json_object_set_new(body, class_names[k],
                            json_integer((json_int_t)vs_counter_load(&c->by_class[k])));
    double avg = st->keys > 0 ? (double)st->live_bytes / (double)st->keys : 0.0;
    json_object_set_new(body, "total_mb", json_real(megabytes(st->disk_bytes)));
    json_object_set_new(body, "avg_value_size_bytes", json_real(avg));
    json_object_set_new(body, "volume_id", json_string(blob_volume_id(r->app->store)));
    json_object_set_new(body, "sync_mode",
                        json_string(config_sync_mode_name(r->app->cfg->sync_mode)));
    add_write_stats_json(body, ws);
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

/* A histogram in the exposition format; scale divides the edges and the
 * sum (microseconds to seconds). */
static void text_histogram(struct text *t, const char *vol, const char *name, const char *help,
                           const kv_histogram *h, double scale)
{
    text_printf(t, "# HELP kvstore_%s %s\n# TYPE kvstore_%s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i < h->n; i++) {
        cum += h->count[i];
        if (h->le[i] == UINT64_MAX)
            text_printf(t, "kvstore_%s_bucket{volume=\"%s\",le=\"+Inf\"} %llu\n", name, vol,
                        (unsigned long long)cum);
        else
            text_printf(t, "kvstore_%s_bucket{volume=\"%s\",le=\"%g\"} %llu\n", name, vol,
                        (double)h->le[i] / scale, (unsigned long long)cum);
    }
    text_printf(t, "kvstore_%s_sum{volume=\"%s\"} %g\nkvstore_%s_count{volume=\"%s\"} %llu\n", name,
                vol, (double)h->sum / scale, name, vol, (unsigned long long)h->total);
}

static void reply_prometheus(struct vs_request *r, const kv_stats *st, const kv_write_stats *ws,
                             const struct vs_figure *m, size_t n)
{
    const char *vol = blob_volume_id(r->app->store); /* [A-Za-z0-9._:-]: no escaping */
    struct text t = {.buf = malloc(8192), .cap = 8192};
    if (t.buf == NULL) {
        vs_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
        return;
    }
    t.buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *type = m[i].kind == VS_FIGURE_COUNTER ? "counter" : "gauge";
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
                    (unsigned long long)vs_counter_load(&r->app->counters.by_class[k]));
    text_printf(&t,
                "# HELP kvstore_write_rounds_total Rounds of group commit that wrote to the log.\n"
                "# TYPE kvstore_write_rounds_total counter\n"
                "kvstore_write_rounds_total{volume=\"%s\"} %llu\n",
                vol, (unsigned long long)ws->rounds);
    text_histogram(&t, vol, "writes_per_sync",
                   "Writes made durable by each fdatasync of group commit.", &ws->writes_per_sync,
                   1.0);
    text_histogram(&t, vol, "write_batch_wait_seconds",
                   "Time from a write's submission to the start of its round of group commit.",
                   &ws->batch_wait_us, 1e6);
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
    kv_write_stats ws;
    struct vs_figure m[48];
    int rc = kv_get_stats(blob_kv(r->app->store), &st);
    if (rc == 0)
        rc = kv_get_write_stats(blob_kv(r->app->store), &ws);
    if (rc != 0) {
        vs_reply_store_error(r, rc);
        return;
    }
    size_t n = vs_figures_collect(r->app, &st, m, sizeof(m) / sizeof(m[0]));
    if (prometheus)
        reply_prometheus(r, &st, &ws, m, n);
    else
        reply_json_metrics(r, &st, &ws, m, n);
}
