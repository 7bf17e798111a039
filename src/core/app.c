/*
 * app.c - the application's life: the store opened from the settings, the
 * limits the front ends enforce, the clock that uptime is measured on, and
 * the close that makes everything durable.
 */
#include "app.h"

#include <time.h>

#include <kvstore.h>

#include "log.h"

#define MIB (1024u * 1024u)

uint64_t vs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool vs_app_reserve_body(struct vs_app *app, uint64_t n)
{
    atomic_uint_fast64_t *used = &app->counters.body_bytes;
    uint_fast64_t cur = atomic_load(used);
    do {
        if (cur + n > app->body_budget)
            return false;
    } while (!atomic_compare_exchange_weak(used, &cur, cur + n));
    return true;
}

void vs_app_release_body(struct vs_app *app, uint64_t n)
{
    atomic_fetch_sub(&app->counters.body_bytes, n);
}

uint64_t vs_app_uptime_secs(const struct vs_app *app)
{
    return (vs_now_ns() - app->started_ns) / 1000000000u;
}

static kv_sync_mode engine_sync_mode(unsigned mode)
{
    switch (mode) {
    case VS_SYNC_INTERVAL:
        return KV_SYNC_INTERVAL;
    case VS_SYNC_NONE:
        return KV_SYNC_NONE;
    default:
        return KV_SYNC_ALWAYS;
    }
}

void vs_app_kv_options(const struct vs_config *cfg, kv_options *out)
{
    kv_options opts;
    kv_options_init(&opts);
    opts.sync_mode = engine_sync_mode(cfg->sync_mode);
    opts.segment_size = (uint64_t)cfg->segment_size_mb * MIB;
    opts.compression =
        cfg->compression == VS_COMPRESSION_ZSTD ? KV_COMPRESS_ZSTD : KV_COMPRESS_NONE;
    opts.compaction_threshold = cfg->compaction_threshold;
    opts.compaction_interval_secs = cfg->compaction_interval_secs;
    opts.log_fn = vs_log_engine;
    opts.log_level = (kv_log_level)cfg->log_level;
    *out = opts;
}

int vs_app_open(struct vs_app *app, const struct vs_config *cfg)
{
    kv_options opts;
    vs_app_kv_options(cfg, &opts);
    struct blob_store *store = NULL;
    int rc = blob_store_open(cfg->data_dir, &opts, cfg->volume_id, &store);
    if (rc != 0) {
        vs_log(VS_LOG_ERROR, "cannot open the store in DATA_DIR=%s: %s", cfg->data_dir,
               kv_strerror(rc));
        return rc;
    }
    app->store = store;
    app->cfg = cfg;
    app->body_limit = (uint64_t)cfg->max_request_size_mb * MIB;
    app->body_budget = (uint64_t)cfg->max_body_memory_mb * MIB;
    app->started_ns = vs_now_ns();
    atomic_store(&app->stopping, false);
    return 0;
}

int vs_app_close(struct vs_app *app)
{
    int rc = blob_store_close(app->store);
    app->store = NULL;
    vs_cmd_table_free(&app->resp_commands);
    return rc;
}
