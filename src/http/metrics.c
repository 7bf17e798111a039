/*
 * metrics.c - the health and metrics endpoints: the tables of figures and
 * histograms of src/core/figures.h rendered as JSON or as the Prometheus
 * text exposition, plus what each format adds (megabytes, the average value
 * size, responses by status class, the volume's name; in JSON each
 * segment's live and dead bytes, and the last compaction's error), and the
 * engine's histograms of group commit (writes per fdatasync, the wait for a
 * round: kv_get_write_stats).
 */
#include "metrics.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "figures.h"
#include "replication.h"
#include "repl.h"
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
    repl_http_health(r->app, body);
    vs_reply_json(r, MHD_HTTP_OK, body);
}

/* Rounds to three decimals: a figure for people, not 85.23456789. */
static double three_decimals(double v)
{
    return (double)(uint64_t)(v * 1000.0 + 0.5) / 1000.0;
}

/* A value of a histogram in the unit of its JSON figures. */
static double json_unit(const struct vs_hist_figure *f, double v)
{
    return three_decimals(f->unit == VS_HIST_NANOSECONDS ? v / 1000.0 : v);
}

/* {"count","sum","p50","p99","p999","buckets":[[low,high,count],...]}: the
 * buckets that hold values, so that a reader can take the difference of
 * two readings and the percentiles of that interval. */
static json_t *histogram_json(const struct vs_hist_figure *f)
{
    struct vs_histogram_snapshot s;
    vs_histogram_read(f->hist, &s);
    json_t *buckets = json_array();
    for (size_t i = 0; buckets != NULL && i < VS_HIST_BUCKETS; i++) {
        if (s.buckets[i] == 0)
            continue;
        double low = json_unit(f, (double)vs_histogram_bucket_low(i));
        double high = json_unit(f, (double)vs_histogram_bucket_high(i));
        if (json_array_append_new(buckets,
                                  json_pack("[f,f,I]", low, high, (json_int_t)s.buckets[i])) != 0) {
            json_decref(buckets);
            buckets = NULL;
        }
    }
    if (buckets == NULL)
        return NULL;
    return json_pack("{s:I,s:f,s:f,s:f,s:f,s:o}", "count", (json_int_t)s.count, "sum",
                     json_unit(f, (double)s.sum), "p50",
                     json_unit(f, vs_histogram_percentile(&s, 0.5)), "p99",
                     json_unit(f, vs_histogram_percentile(&s, 0.99)), "p999",
                     json_unit(f, vs_histogram_percentile(&s, 0.999)), "buckets", buckets);
}

/* Every histogram of the table, each in its group's object. */
static int histograms_json(struct vs_app *app, json_t *body)
{
    struct vs_hist_figure h[VS_HIST_FIGURES_MAX];
    size_t n = vs_hist_figures_collect(app, h, VS_HIST_FIGURES_MAX);
    for (size_t i = 0; i < n; i++) {
        json_t *parent = body;
        if (h[i].group != NULL) {
            parent = json_object_get(body, h[i].group);
            if (parent == NULL) {
                parent = json_object();
                if (json_object_set_new(body, h[i].group, parent) != 0)
                    return -1;
            }
        }
        if (json_object_set_new(parent, h[i].json, histogram_json(&h[i])) != 0)
            return -1;
    }
    return 0;
}

/* "segments": each segment's id, size, live and dead bytes, and whether it
 * is the active one, oldest first. */
static json_t *segments_json(kv_store *kv)
{
    kv_segment_stats few[64];
    kv_segment_stats *segs = few;
    size_t n = 0;
    json_t *all = NULL;
    if (kv_get_segment_stats(kv, few, 64, &n) != 0)
        return NULL;
    if (n > 64) {
        /* Room for a few more segments than a moment ago. */
        size_t room = n + 16;
        segs = malloc(room * sizeof(*segs));
        if (segs == NULL || kv_get_segment_stats(kv, segs, room, &n) != 0)
            goto out;
        if (n > room)
            n = room;
    }
    all = json_array();
    for (size_t i = 0; all != NULL && i < n; i++) {
        uint64_t dead = segs[i].disk_bytes - segs[i].live_bytes;
        json_t *seg =
            json_pack("{s:I,s:I,s:I,s:I,s:b}", "id", (json_int_t)segs[i].id, "disk_bytes",
                      (json_int_t)segs[i].disk_bytes, "live_bytes", (json_int_t)segs[i].live_bytes,
                      "dead_bytes", (json_int_t)dead, "active", segs[i].active);
        if (json_array_append_new(all, seg) != 0) {
            json_decref(all);
            all = NULL;
        }
    }
out:
    if (segs != few)
        free(segs);
    return all;
}

/* The Redis protocol's commands that ran, by name: calls, failures, time
 * and latency percentiles (microseconds). */
static json_t *resp_commands_json(struct vs_app *app)
{
    const struct vs_cmd_table *t = &app->resp_commands;
    json_t *all = json_object();
    for (size_t i = 0; all != NULL && i < t->n_names; i++) {
        struct vs_cmd_total ct;
        vs_cmd_sum(t, i, &ct);
        if (ct.calls == 0)
            continue;
        json_object_set_new(all, t->names[i],
                            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "per_sec",
                                      (json_int_t)vs_counter_load(&app->resp_commands.per_sec[i]),
                                      "calls", (json_int_t)ct.calls, "failed",
                                      (json_int_t)ct.failed, "usec", (json_int_t)ct.usec,
                                      "p50_usec", (json_int_t)vs_cmd_percentile(&ct, 0.5),
                                      "p99_usec", (json_int_t)vs_cmd_percentile(&ct, 0.99),
                                      "p999_usec", (json_int_t)vs_cmd_percentile(&ct, 0.999)));
    }
    return all;
}

/* An engine histogram's bucket i as the values it holds, from low up to,
 * not including, high: its values are whole numbers greater than the edge
 * below and at most its own. The last, open above, is drawn as reaching
 * twice its low end. */
static void kv_bucket_range(const kv_histogram *h, size_t i, double *low, double *high)
{
    *low = i == 0 ? 0.0 : (double)h->le[i - 1] + 1.0;
    *high = h->le[i] == UINT64_MAX ? 2.0 * (*low > 1.0 ? *low : 1.0) : (double)h->le[i] + 1.0;
}

/* The value below which the fraction q of h's values lie, interpolated in
 * its bucket; 0 when h is empty. */
static double kv_hist_percentile(const kv_histogram *h, double q)
{
    double rank = q * (double)h->total, seen = 0.0;
    for (size_t i = 0; h->total > 0 && i < h->n; i++) {
        if (h->count[i] == 0)
            continue;
        if (seen + (double)h->count[i] >= rank) {
            double low, high;
            kv_bucket_range(h, i, &low, &high);
            double frac = (rank - seen) / (double)h->count[i];
            return low + (high - low) * (frac > 0.0 ? frac : 0.0);
        }
        seen += (double)h->count[i];
    }
    return 0.0;
}

/* An engine histogram (kv_get_write_stats) in the shape of the table's:
 * {"count","sum","p50","p99","p999","buckets":[[low,high,count],...]}, the
 * buckets that hold values. */
static json_t *kv_histogram_json(const kv_histogram *h)
{
    json_t *buckets = json_array();
    for (size_t i = 0; buckets != NULL && i < h->n; i++) {
        if (h->count[i] == 0)
            continue;
        double low, high;
        kv_bucket_range(h, i, &low, &high);
        if (json_array_append_new(buckets,
                                  json_pack("[f,f,I]", low, high, (json_int_t)h->count[i])) != 0) {
            json_decref(buckets);
            buckets = NULL;
        }
    }
    if (buckets == NULL)
        return NULL;
    return json_pack("{s:I,s:I,s:f,s:f,s:f,s:o}", "count", (json_int_t)h->total, "sum",
                     (json_int_t)h->sum, "p50", three_decimals(kv_hist_percentile(h, 0.5)), "p99",
                     three_decimals(kv_hist_percentile(h, 0.99)), "p999",
                     three_decimals(kv_hist_percentile(h, 0.999)), "buckets", buckets);
}

/* How writes shared their fdatasyncs: writes_per_fsync at the top level,
 * and the wait for a round as latency_us.batch_wait, beside the requests'
 * latencies (the status page draws both). */
static int write_stats_json(json_t *body, const kv_write_stats *ws)
{
    json_t *lat = json_object_get(body, "latency_us");
    if (lat == NULL) {
        lat = json_object();
        if (json_object_set_new(body, "latency_us", lat) != 0)
            return -1;
    }
    if (json_object_set_new(body, "write_rounds", json_integer((json_int_t)ws->rounds)) != 0 ||
        json_object_set_new(body, "write_batches", json_integer((json_int_t)ws->batches)) != 0 ||
        json_object_set_new(body, "writes_per_fsync", kv_histogram_json(&ws->writes_per_sync)) !=
            0 ||
        json_object_set_new(lat, "batch_wait", kv_histogram_json(&ws->batch_wait_us)) != 0)
        return -1;
    return 0;
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
    if (histograms_json(r->app, body) != 0 ||
        json_object_set_new(body, "segments", segments_json(blob_kv(r->app->store))) != 0 ||
        json_object_set_new(body, "last_compaction_error",
                            st->last_compaction_error != 0
                                ? json_string(kv_strerror(st->last_compaction_error))
                                : json_null()) != 0)
        goto fail;
    double avg = st->keys > 0 ? (double)st->live_bytes / (double)st->keys : 0.0;
    json_object_set_new(body, "total_mb", json_real(megabytes(st->disk_bytes)));
    json_object_set_new(body, "avg_value_size_bytes", json_real(avg));
    json_object_set_new(body, "volume_id", json_string(blob_volume_id(r->app->store)));
    json_object_set_new(body, "sync_mode",
                        json_string(config_sync_mode_name(r->app->cfg->sync_mode)));
    json_object_set_new(body, "resp_commands_by_name", resp_commands_json(r->app));
    if (write_stats_json(body, ws) != 0)
        goto fail;
    repl_http_metrics(r->app, body);
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

/* One histogram of a family: cumulative buckets at each power of two (in
 * seconds for durations: 4 us to 34 s; as whole numbers for counts: le = 1,
 * 3, 7 ... 65535, the values below each power of two), then +Inf, the sum
 * and the count. */
static void prometheus_histogram(struct text *t, const struct vs_hist_figure *f, const char *vol)
{
    struct vs_histogram_snapshot s;
    vs_histogram_read(f->hist, &s);
    char labels[160];
    if (f->label != NULL)
        snprintf(labels, sizeof(labels), "volume=\"%s\",%s=\"%s\"", vol, f->label, f->label_value);
    else
        snprintf(labels, sizeof(labels), "volume=\"%s\"", vol);
    bool ns = f->unit == VS_HIST_NANOSECONDS;
    for (unsigned p = ns ? 12 : 1; p <= (ns ? 35u : 16u); p++) {
        uint64_t bound = (uint64_t)1 << p;
        double le = ns ? (double)bound / 1e9 : (double)(bound - 1);
        text_printf(t, "kvstore_%s_bucket{%s,le=\"%.9g\"} %llu\n", f->prom, labels, le,
                    (unsigned long long)vs_histogram_count_below(&s, bound));
    }
    text_printf(t, "kvstore_%s_bucket{%s,le=\"+Inf\"} %llu\n", f->prom, labels,
                (unsigned long long)s.count);
    if (ns)
        text_printf(t, "kvstore_%s_sum{%s} %.9f\n", f->prom, labels, (double)s.sum / 1e9);
    else
        text_printf(t, "kvstore_%s_sum{%s} %llu\n", f->prom, labels, (unsigned long long)s.sum);
    text_printf(t, "kvstore_%s_count{%s} %llu\n", f->prom, labels, (unsigned long long)s.count);
}

/* Every histogram of the table, with HELP and TYPE once per family. */
static void prometheus_histograms(struct text *t, struct vs_app *app, const char *vol)
{
    struct vs_hist_figure h[VS_HIST_FIGURES_MAX];
    size_t n = vs_hist_figures_collect(app, h, VS_HIST_FIGURES_MAX);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(h[i].prom, h[i - 1].prom) != 0)
            text_printf(t, "# HELP kvstore_%s %s\n# TYPE kvstore_%s histogram\n", h[i].prom,
                        h[i].help, h[i].prom);
        prometheus_histogram(t, &h[i], vol);
    }
}

/* The Redis protocol's commands by name: calls, failures, time, and a
 * latency histogram with a bucket at each power of two microseconds. */
static void prometheus_resp_commands(struct text *t, struct vs_app *app, const char *vol)
{
    const struct vs_cmd_table *tab = &app->resp_commands;
    if (tab->n_names == 0)
        return;
    text_printf(t, "# HELP kvstore_resp_commands_total Redis-protocol commands run, by name.\n"
                   "# TYPE kvstore_resp_commands_total counter\n"
                   "# HELP kvstore_resp_command_errors_total Redis-protocol commands answered "
                   "with an error, by name.\n"
                   "# TYPE kvstore_resp_command_errors_total counter\n"
                   "# HELP kvstore_resp_command_rate Redis-protocol commands per second over the "
                   "last second, by name.\n"
                   "# TYPE kvstore_resp_command_rate gauge\n"
                   "# HELP kvstore_resp_command_seconds Time from a command's arrival to its "
                   "reply, by name.\n"
                   "# TYPE kvstore_resp_command_seconds histogram\n");
    for (size_t i = 0; i < tab->n_names; i++) {
        struct vs_cmd_total ct;
        vs_cmd_sum(tab, i, &ct);
        if (ct.calls == 0)
            continue;
        const char *name = tab->names[i];
        text_printf(t, "kvstore_resp_commands_total{volume=\"%s\",cmd=\"%s\"} %llu\n", vol, name,
                    (unsigned long long)ct.calls);
        text_printf(t, "kvstore_resp_command_errors_total{volume=\"%s\",cmd=\"%s\"} %llu\n", vol,
                    name, (unsigned long long)ct.failed);
        text_printf(t, "kvstore_resp_command_rate{volume=\"%s\",cmd=\"%s\"} %llu\n", vol, name,
                    (unsigned long long)vs_counter_load(&app->resp_commands.per_sec[i]));
        uint64_t cum = 0;
        for (size_t b = 0; b < VS_LAT_BUCKETS; b++) {
            cum += ct.hist[b];
            if ((b + 1) % VS_LAT_SUB != 0)
                continue;
            text_printf(t,
                        "kvstore_resp_command_seconds_bucket{volume=\"%s\",cmd=\"%s\",le=\"%g\"} "
                        "%llu\n",
                        vol, name, (double)vs_cmd_bucket_bound(b) / 1e6, (unsigned long long)cum);
        }
        text_printf(t,
                    "kvstore_resp_command_seconds_bucket{volume=\"%s\",cmd=\"%s\",le=\"+Inf\"} "
                    "%llu\n"
                    "kvstore_resp_command_seconds_sum{volume=\"%s\",cmd=\"%s\"} %.6f\n"
                    "kvstore_resp_command_seconds_count{volume=\"%s\",cmd=\"%s\"} %llu\n",
                    vol, name, (unsigned long long)ct.calls, vol, name, (double)ct.usec / 1e6, vol,
                    name, (unsigned long long)ct.calls);
    }
}

/* Replication: this volume's role and position, and on a primary each
 * replica's position and lag. */
static void prometheus_replication(struct text *t, struct vs_app *app, const char *vol)
{
    if (app->repl == NULL)
        return;
    struct repl_figures f;
    repl_figures(app->repl, &f);
    text_printf(t,
                "# HELP kvstore_replication_replica 1 on a replica, 0 on a primary.\n"
                "# TYPE kvstore_replication_replica gauge\n"
                "kvstore_replication_replica{volume=\"%s\"} %d\n"
                "# HELP kvstore_replication_acks_waited_total Writes that waited for replicas.\n"
                "# TYPE kvstore_replication_acks_waited_total counter\n"
                "kvstore_replication_acks_waited_total{volume=\"%s\"} %llu\n"
                "# HELP kvstore_replication_acks_timed_out_total Writes answered before enough "
                "replicas held them (504, -NOREPLICAS).\n"
                "# TYPE kvstore_replication_acks_timed_out_total counter\n"
                "kvstore_replication_acks_timed_out_total{volume=\"%s\"} %llu\n"
                "# HELP kvstore_replication_full_resyncs_total Full copies this replica made.\n"
                "# TYPE kvstore_replication_full_resyncs_total counter\n"
                "kvstore_replication_full_resyncs_total{volume=\"%s\"} %llu\n"
                "# HELP kvstore_replication_refused_batches_total Shipped batches that failed "
                "their checks and were fetched again.\n"
                "# TYPE kvstore_replication_refused_batches_total counter\n"
                "kvstore_replication_refused_batches_total{volume=\"%s\"} %llu\n",
                vol, f.replica ? 1 : 0, vol, (unsigned long long)f.acks_waited, vol,
                (unsigned long long)f.acks_timed_out, vol, (unsigned long long)f.full_resyncs, vol,
                (unsigned long long)f.refused_batches);
    if (f.replica)
        text_printf(t,
                    "# HELP kvstore_replication_lag_bytes Bytes of the primary's log this "
                    "replica lacks.\n"
                    "# TYPE kvstore_replication_lag_bytes gauge\n"
                    "kvstore_replication_lag_bytes{volume=\"%s\"} %llu\n"
                    "# HELP kvstore_replication_lag_ms How long this replica has been behind.\n"
                    "# TYPE kvstore_replication_lag_ms gauge\n"
                    "kvstore_replication_lag_ms{volume=\"%s\"} %llu\n",
                    vol, (unsigned long long)f.lag_bytes, vol, (unsigned long long)f.lag_ms);
    if (f.nreplicas == 0)
        return;
    text_printf(t, "# HELP kvstore_replica_position_bytes A replica's acknowledged offset in "
                   "its segment (label segment).\n"
                   "# TYPE kvstore_replica_position_bytes gauge\n"
                   "# HELP kvstore_replica_lag_bytes Bytes of this log a replica lacks.\n"
                   "# TYPE kvstore_replica_lag_bytes gauge\n"
                   "# HELP kvstore_replica_lag_ms How long a replica has been behind.\n"
                   "# TYPE kvstore_replica_lag_ms gauge\n");
    for (size_t i = 0; i < f.nreplicas; i++) {
        const struct repl_replica_figures *p = &f.replicas[i];
        text_printf(t,
                    "kvstore_replica_position_bytes{volume=\"%s\",replica=\"%s\",segment=\"%llu\"}"
                    " %llu\n"
                    "kvstore_replica_lag_bytes{volume=\"%s\",replica=\"%s\"} %llu\n"
                    "kvstore_replica_lag_ms{volume=\"%s\",replica=\"%s\"} %llu\n",
                    vol, p->id, (unsigned long long)p->acked.seg, (unsigned long long)p->acked.off,
                    vol, p->id, (unsigned long long)p->lag_bytes, vol, p->id,
                    (unsigned long long)p->lag_ms);
    }
}

/* An engine histogram in the exposition format; scale divides the edges
 * and the sum (microseconds to seconds). */
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
    prometheus_histograms(&t, r->app, vol);
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
    prometheus_resp_commands(&t, r->app, vol);
    text_printf(&t,
                "# HELP kvstore_write_rounds_total Rounds of group commit that wrote to the log.\n"
                "# TYPE kvstore_write_rounds_total counter\n"
                "kvstore_write_rounds_total{volume=\"%s\"} %llu\n",
                vol, (unsigned long long)ws->rounds);
    text_histogram(&t, vol, "writes_per_fsync",
                   "Writes made durable by each fdatasync of group commit.", &ws->writes_per_sync,
                   1.0);
    text_histogram(&t, vol, "write_batch_wait_seconds",
                   "Time from a write's submission to the start of its round of group commit.",
                   &ws->batch_wait_us, 1e6);
    prometheus_replication(&t, r->app, vol);
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
    struct vs_figure m[VS_FIGURES_MAX];
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
