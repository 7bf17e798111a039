/*
 * app.h - the main header of src/core/: what every front end of
 * volume-server shares.
 *
 * src/core/ owns the application a front end serves: the blob layer over the
 * engine (storage.h), the settings it was started with (src/config/), the
 * counters and the table of figures that metrics report (figures.h), the
 * log (log.h), the pool of threads for long admin jobs (pool.h),
 * and the application's life from open to close. Front ends (src/http/, and any
 * other protocol) include these headers; nothing here includes a front end's,
 * and only the engine's public header (kvstore.h) is reached below.
 */
#ifndef VS_APP_H
#define VS_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "storage.h"

/* Counters for /metrics, updated with relaxed atomics. */
struct vs_counters {
    atomic_uint_fast64_t requests;       /* requests that reached a handler */
    atomic_uint_fast64_t by_class[6];    /* responses by status / 100 (1 to 5) */
    atomic_uint_fast64_t bytes_received; /* request body bytes */
    atomic_uint_fast64_t bytes_sent;     /* response body bytes */
    atomic_uint_fast64_t connections;    /* open client connections */
    atomic_uint_fast64_t connections_total;
    atomic_uint_fast64_t in_flight;        /* requests begun and not complete */
    atomic_uint_fast64_t writes_in_flight; /* writes submitted to the engine, not complete */
    atomic_uint_fast64_t body_bytes;       /* memory held for request bodies */
};

struct vs_app {
    struct blob_store *store;
    const struct vs_config *cfg;
    uint64_t body_limit;  /* bytes: MAX_REQUEST_SIZE_MB in bytes */
    uint64_t body_budget; /* bytes: MAX_BODY_MEMORY_MB in bytes */
    uint64_t started_ns;  /* CLOCK_MONOTONIC at start, for uptime */
    atomic_bool stopping;
    struct vs_counters counters;
};

/*
 * Opens the store of cfg (DATA_DIR, SYNC_MODE, segment size, compaction, the
 * engine's log through vs_log) and fills *app for the front ends; cfg must
 * outlive app. Logs the reason and returns the engine's code on failure, when
 * nothing is left open.
 */
int vs_app_open(struct vs_app *app, const struct vs_config *cfg);

/*
 * Closes the store (fsync, snapshot). Every front end must have stopped
 * first. Returns kv_close's code; app->store is NULL after, so a second call
 * does nothing.
 */
int vs_app_close(struct vs_app *app);

/* Nanoseconds on CLOCK_MONOTONIC. */
uint64_t vs_now_ns(void);

/* Seconds since vs_app_open. */
uint64_t vs_app_uptime_secs(const struct vs_app *app);

#endif /* VS_APP_H */
