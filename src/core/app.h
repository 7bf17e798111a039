/*
 * app.h - the main header of src/core/: what every front end of
 * volume-server shares.
 *
 * src/core/ owns the application a front end serves: the blob layer over the
 * engine (storage.h), the settings it was started with (src/config/), the
 * counters and the table of figures that metrics report (figures.h), the
 * latencies of requests by kind (latency.h), the log (log.h), the pool of
 * threads for long admin jobs and the Redis front end's commands (pool.h),
 * and the application's life from open to close. Front ends (src/http/, and
 * any other protocol) include these headers; nothing here includes a front
 * end's, and only the engine's public header (kvstore.h) is reached below.
 */
#ifndef VS_APP_H
#define VS_APP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cmdstats.h"
#include "config.h"
#include "latency.h"
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
    atomic_uint_fast64_t body_bytes;       /* memory held for requests being received
                                              (HTTP bodies, large RESP commands) */
};

/* Counters of the Redis-protocol front end (relaxed atomics). */
struct vs_resp_counters {
    atomic_uint_fast64_t connections;       /* open client connections */
    atomic_uint_fast64_t connections_total; /* accepted */
    atomic_uint_fast64_t rejected;          /* refused: MAX_CONNECTIONS reached */
    atomic_uint_fast64_t commands;          /* commands run */
    atomic_uint_fast64_t bytes_received;    /* bytes read from clients */
    atomic_uint_fast64_t bytes_sent;        /* bytes written to clients */
    atomic_uint_fast64_t keyspace_hits;     /* reads that found their key */
    atomic_uint_fast64_t keyspace_misses;   /* reads that did not */
    atomic_uint_fast64_t protocol_errors;   /* connections closed for malformed input */
    atomic_uint_fast64_t ops_per_sec;       /* commands per second, recent average */
    atomic_uint_fast64_t port;              /* the RESP port, 0 when off */
};

struct repl;

struct vs_app {
    struct blob_store *store;
    /* Replication (src/replication/repl.h), set by the program when it
     * starts it; NULL otherwise. Front ends ask it whether writes are
     * taken and wait on it for replicas' acknowledgements. */
    struct repl *repl;
    const struct vs_config *cfg;
    /* Every front end's requests, by kind. */
    struct vs_latency latency;
    uint64_t body_limit;  /* bytes: MAX_REQUEST_SIZE_MB in bytes */
    uint64_t body_budget; /* bytes: MAX_BODY_MEMORY_MB in bytes */
    uint64_t started_ns;  /* CLOCK_MONOTONIC at start, for uptime */
    atomic_bool stopping;
    struct vs_counters counters;
    struct vs_resp_counters resp;
    /* The RESP front end's per-command counters; n_names 0 while it is off.
     * Freed by vs_app_close, after every front end has stopped. */
    struct vs_cmd_table resp_commands;
};

/*
 * Opens the store of cfg (DATA_DIR, SYNC_MODE, segment size, compaction, the
 * engine's log through vs_log) and fills *app for the front ends; cfg must
 * outlive app. Logs the reason and returns the engine's code on failure, when
 * nothing is left open.
 */
int vs_app_open(struct vs_app *app, const struct vs_config *cfg);

/* The engine's options that vs_app_open uses for cfg (a replica opens the
 * copy it resyncs into with the same). */
void vs_app_kv_options(const struct vs_config *cfg, kv_options *opts);

/*
 * Closes the store (fsync, snapshot). Every front end must have stopped
 * first. Returns kv_close's code; app->store is NULL after, so a second call
 * does nothing.
 */
int vs_app_close(struct vs_app *app);

/* Takes n bytes from the memory budget of requests being received
 * (MAX_BODY_MEMORY_MB, shared by every front end); false when they do not
 * fit, and nothing is taken. */
bool vs_app_reserve_body(struct vs_app *app, uint64_t n);

/* Gives back n bytes taken by vs_app_reserve_body. */
void vs_app_release_body(struct vs_app *app, uint64_t n);

/* Nanoseconds on CLOCK_MONOTONIC. */
uint64_t vs_now_ns(void);

/* Seconds since vs_app_open. */
uint64_t vs_app_uptime_secs(const struct vs_app *app);

#endif /* VS_APP_H */
