/*
 * figures.c - the table of figures (see figures.h): every figure's JSON name,
 * exposition name, kind and meaning, next to where its value comes from.
 */
#include "figures.h"

#include <string.h>

uint64_t vs_counter_load(atomic_uint_fast64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

size_t vs_figures_collect(struct vs_app *app, const kv_stats *st, struct vs_figure *out, size_t max)
{
    struct vs_counters *c = &app->counters;
    struct vs_resp_counters *r = &app->resp;
    /* clang-format off */
    const struct vs_figure all[] = {
        {"total_keys", "keys", VS_FIGURE_GAUGE, "Live keys in the volume.", st->keys},
        {"total_segments", "segments", VS_FIGURE_GAUGE, "Segment files.", st->segments},
        {"total_bytes", "disk_bytes", VS_FIGURE_GAUGE, "Bytes in segment files.", st->disk_bytes},
        {"live_bytes", "live_bytes", VS_FIGURE_GAUGE, "Bytes of the records the index points at.", st->live_bytes},
        {"dead_bytes", "dead_bytes", VS_FIGURE_GAUGE, "Bytes compaction can reclaim.", st->dead_bytes},
        {"active_segment_id", "active_segment_id", VS_FIGURE_GAUGE, "Segment taking new writes.", st->active_segment_id},
        {"oldest_segment_id", "oldest_segment_id", VS_FIGURE_GAUGE, "Lowest segment id on disk.", st->oldest_segment_id},
        {"uptime_secs", "uptime_seconds", VS_FIGURE_GAUGE, "Seconds since the server started.", vs_app_uptime_secs(app)},
        {"index_bytes", "index_bytes", VS_FIGURE_GAUGE, "Memory held by the index and bloom filter.", st->index_bytes},
        {"bloom_bytes", "bloom_bytes", VS_FIGURE_GAUGE, "Memory held by the bloom filter.", st->bloom_bytes},
        {"bloom_capacity", "bloom_capacity", VS_FIGURE_GAUGE, "Keys the bloom filter is sized for.", st->bloom_capacity},
        {"bloom_negatives", "bloom_negatives_total", VS_FIGURE_COUNTER, "Lookups of absent keys the bloom filter answered.", st->bloom_negatives},
        {"bloom_false_positives", "bloom_false_positives_total", VS_FIGURE_COUNTER, "Lookups the bloom filter passed that the index refused.", st->bloom_false_positives},
        {"checksum_errors", "checksum_errors_total", VS_FIGURE_COUNTER, "Damaged records met by recovery and reads.", st->checksum_errors},
        {"torn_bytes_truncated", "torn_bytes_truncated", VS_FIGURE_GAUGE, "Bytes cut off the newest segment at open.", st->torn_bytes_truncated},
        {"fsyncs", "fsyncs_total", VS_FIGURE_COUNTER, "fdatasync and fsync calls.", st->fsyncs},
        {"puts", "puts_total", VS_FIGURE_COUNTER, "Acknowledged writes.", st->puts},
        {"deletes", "deletes_total", VS_FIGURE_COUNTER, "Acknowledged deletes.", st->deletes},
        {"gets", "gets_total", VS_FIGURE_COUNTER, "Reads.", st->gets},
        {"records_replayed", "records_replayed", VS_FIGURE_GAUGE, "Log records read at open.", st->records_replayed},
        {"compactions", "compactions_total", VS_FIGURE_COUNTER, "Compactions completed.", st->compactions},
        {"compaction_bytes_read", "compaction_read_bytes_total", VS_FIGURE_COUNTER, "Segment bytes compactions scanned.", st->compaction_bytes_read},
        {"compaction_bytes_written", "compaction_written_bytes_total", VS_FIGURE_COUNTER, "Bytes compactions wrote.", st->compaction_bytes_written},
        {"compaction_bytes_reclaimed", "compaction_reclaimed_bytes_total", VS_FIGURE_COUNTER, "Disk bytes compactions freed.", st->compaction_bytes_reclaimed},
        {"last_compaction_ms", "last_compaction_milliseconds", VS_FIGURE_GAUGE, "Duration of the last compaction.", st->last_compaction_ms},
        {"last_compaction_reclaimed_bytes", "last_compaction_reclaimed_bytes", VS_FIGURE_GAUGE, "Disk bytes the last successful compaction freed.", st->last_compaction_reclaimed},
        {"last_compaction_failed", "last_compaction_failed", VS_FIGURE_FLAG, "1 when the last compaction that ran failed.", st->last_compaction_error != 0 ? 1 : 0},
        {"compacting", "compacting", VS_FIGURE_FLAG, "1 while a compaction runs.", st->compacting ? 1 : 0},
        {"disk_free_bytes", "disk_free_bytes", VS_FIGURE_GAUGE, "Free space of the data directory's file system (0: unknown).", st->disk_free_bytes},
        {"disk_size_bytes", "disk_size_bytes", VS_FIGURE_GAUGE, "Size of the data directory's file system (0: unknown).", st->disk_size_bytes},
        {"snapshot_loaded", "snapshot_loaded", VS_FIGURE_FLAG, "1 when the last open used index.snapshot.", st->snapshot_loaded ? 1 : 0},
        {"read_only", "read_only", VS_FIGURE_FLAG, "1 when writes are refused after a failed fsync.", st->read_only ? 1 : 0},
        {"http_requests", "http_requests_total", VS_FIGURE_COUNTER, "HTTP requests served.", vs_counter_load(&c->requests)},
        {"http_bytes_received", "http_received_bytes_total", VS_FIGURE_COUNTER, "Request body bytes received.", vs_counter_load(&c->bytes_received)},
        {"http_bytes_sent", "http_sent_bytes_total", VS_FIGURE_COUNTER, "Response body bytes sent.", vs_counter_load(&c->bytes_sent)},
        {"http_connections", "http_connections", VS_FIGURE_GAUGE, "Open client connections.", vs_counter_load(&c->connections)},
        {"http_connections_total", "http_connections_total", VS_FIGURE_COUNTER, "Client connections accepted.", vs_counter_load(&c->connections_total)},
        {"http_in_flight", "http_in_flight_requests", VS_FIGURE_GAUGE, "Requests begun and not complete.", vs_counter_load(&c->in_flight)},
        {"http_writes_in_flight", "http_writes_in_flight", VS_FIGURE_GAUGE, "Writes submitted to the engine and not yet complete.", vs_counter_load(&c->writes_in_flight)},
        {"http_body_bytes", "http_body_memory_bytes", VS_FIGURE_GAUGE, "Memory held for requests being received (HTTP bodies, large RESP commands).", vs_counter_load(&c->body_bytes)},
        {"resp_port", "resp_port", VS_FIGURE_GAUGE, "The Redis protocol's port (0: off).", vs_counter_load(&r->port)},
        {"resp_connections", "resp_connections", VS_FIGURE_GAUGE, "Open Redis-protocol connections.", vs_counter_load(&r->connections)},
        {"resp_connections_total", "resp_connections_total", VS_FIGURE_COUNTER, "Redis-protocol connections accepted.", vs_counter_load(&r->connections_total)},
        {"resp_rejected_connections", "resp_rejected_connections_total", VS_FIGURE_COUNTER, "Redis-protocol connections refused at MAX_CONNECTIONS.", vs_counter_load(&r->rejected)},
        {"resp_commands", "resp_commands_all_total", VS_FIGURE_COUNTER, "Redis-protocol commands run (as of the last second).", vs_counter_load(&r->commands)},
        {"resp_ops_per_sec", "resp_ops_per_second", VS_FIGURE_GAUGE, "Redis-protocol commands in the last second.", vs_counter_load(&r->ops_per_sec)},
        {"resp_bytes_received", "resp_received_bytes_total", VS_FIGURE_COUNTER, "Bytes read from Redis-protocol clients.", vs_counter_load(&r->bytes_received)},
        {"resp_bytes_sent", "resp_sent_bytes_total", VS_FIGURE_COUNTER, "Bytes written to Redis-protocol clients.", vs_counter_load(&r->bytes_sent)},
        {"resp_keyspace_hits", "resp_keyspace_hits_total", VS_FIGURE_COUNTER, "Redis-protocol reads that found their key.", vs_counter_load(&r->keyspace_hits)},
        {"resp_keyspace_misses", "resp_keyspace_misses_total", VS_FIGURE_COUNTER, "Redis-protocol reads that did not.", vs_counter_load(&r->keyspace_misses)},
        {"resp_protocol_errors", "resp_protocol_errors_total", VS_FIGURE_COUNTER, "Redis-protocol connections closed for malformed input.", vs_counter_load(&r->protocol_errors)},
    };
    /* clang-format on */
    _Static_assert(sizeof(all) / sizeof(all[0]) <= VS_FIGURES_MAX, "VS_FIGURES_MAX is too small");
    size_t n = sizeof(all) / sizeof(all[0]);
    if (n > max)
        n = max;
    memcpy(out, all, n * sizeof(all[0]));
    return n;
}

size_t vs_hist_figures_collect(struct vs_app *app, struct vs_hist_figure *out, size_t max)
{
    size_t n = 0;
    for (unsigned k = 0; k < VS_REQ_KINDS && n < max; k++) {
        out[n++] = (struct vs_hist_figure){
            .group = "latency_us",
            .json = vs_req_kind_name((enum vs_req_kind)k),
            .prom = "request_duration_seconds",
            .label = "kind",
            .label_value = vs_req_kind_name((enum vs_req_kind)k),
            .unit = VS_HIST_NANOSECONDS,
            .help = "Time from a request's arrival to its last byte sent, by kind.",
            .hist = &app->latency.by_kind[k],
        };
    }
    return n;
}
