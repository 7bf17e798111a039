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
        {"snapshot_loaded", "snapshot_loaded", VS_FIGURE_FLAG, "1 when the last open used index.snapshot.", st->snapshot_loaded ? 1 : 0},
        {"read_only", "read_only", VS_FIGURE_FLAG, "1 when writes are refused after a failed fsync.", st->read_only ? 1 : 0},
        {"http_requests", "http_requests_total", VS_FIGURE_COUNTER, "HTTP requests served.", vs_counter_load(&c->requests)},
        {"http_bytes_received", "http_received_bytes_total", VS_FIGURE_COUNTER, "Request body bytes received.", vs_counter_load(&c->bytes_received)},
        {"http_bytes_sent", "http_sent_bytes_total", VS_FIGURE_COUNTER, "Response body bytes sent.", vs_counter_load(&c->bytes_sent)},
        {"http_connections", "http_connections", VS_FIGURE_GAUGE, "Open client connections.", vs_counter_load(&c->connections)},
        {"http_connections_total", "http_connections_total", VS_FIGURE_COUNTER, "Client connections accepted.", vs_counter_load(&c->connections_total)},
        {"http_in_flight", "http_in_flight_requests", VS_FIGURE_GAUGE, "Requests begun and not complete.", vs_counter_load(&c->in_flight)},
        {"http_writes_in_flight", "http_writes_in_flight", VS_FIGURE_GAUGE, "Writes submitted to the engine and not yet complete.", vs_counter_load(&c->writes_in_flight)},
        {"http_body_bytes", "http_body_memory_bytes", VS_FIGURE_GAUGE, "Memory held for request bodies.", vs_counter_load(&c->body_bytes)},
    };
    /* clang-format on */
    _Static_assert(sizeof(all) / sizeof(all[0]) <= VS_FIGURES_MAX, "VS_FIGURES_MAX is too small");
    size_t n = sizeof(all) / sizeof(all[0]);
    if (n > max)
        n = max;
    memcpy(out, all, n * sizeof(all[0]));
    return n;
}
