/*
 * volume.h - the state shared by volume-server's parts: the application
 * (store, settings, counters) and one HTTP request in progress.
 *
 * server.c owns the request's life (created when its request line arrives,
 * freed when libmicrohttpd reports it complete); body.c receives its body;
 * handlers.c decides what it means and builds its response, with the helpers
 * of response.c. A request is touched by one thread at a time: its HTTP
 * thread, or a pool thread while its connection is suspended.
 */
#ifndef VS_VOLUME_H
#define VS_VOLUME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "../config/config.h"
#include "pool.h"
#include "storage.h"

/* Counters for /metrics, updated with relaxed atomics. */
struct vs_counters {
    atomic_uint_fast64_t requests;       /* requests that reached a handler */
    atomic_uint_fast64_t by_class[6];    /* responses by status / 100 (1 to 5) */
    atomic_uint_fast64_t bytes_received; /* request body bytes */
    atomic_uint_fast64_t bytes_sent;     /* response body bytes */
    atomic_uint_fast64_t connections;    /* open client connections */
    atomic_uint_fast64_t connections_total;
    atomic_uint_fast64_t in_flight;  /* requests begun and not complete */
    atomic_uint_fast64_t body_bytes; /* memory held for request bodies */
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

enum vs_method { VS_GET, VS_HEAD, VS_POST, VS_PUT, VS_DELETE, VS_OTHER };

enum vs_route {
    VS_ROUTE_NONE,
    VS_ROUTE_HEALTH,
    VS_ROUTE_METRICS,
    VS_ROUTE_LIST,
    VS_ROUTE_BLOB,
    VS_ROUTE_COMPACT,
    VS_ROUTE_SNAPSHOT
};

struct vs_request {
    struct vs_app *app;
    struct MHD_Connection *conn;
    uint64_t start_ns;

    char *uri;       /* the request target as received (path and query) */
    size_t uri_len;  /* bytes of uri */
    size_t path_len; /* bytes of the path; the query follows a '?' */
    const char *method_name;
    enum vs_method method;
    enum vs_route route;
    char *key; /* ROUTE_BLOB: the percent-decoded key, NUL-terminated */
    size_t key_len;
    struct blob_cond cond; /* the preconditions of a write */
    /* Request headers that the handlers use, read on the HTTP thread; the
     * strings belong to libmicrohttpd and live as long as the request. */
    const char *if_none_match, *range, *if_range, *accept;

    bool wants_body;         /* a PUT or POST of a blob: the body is kept */
    char *body;              /* the body received so far */
    size_t body_len;         /* bytes in body */
    size_t body_cap;         /* bytes allocated for body */
    uint64_t body_in;        /* bytes received, kept or not */
    bool length_known;       /* Content-Length was sent... */
    uint64_t content_length; /* ...with this value */

    unsigned phase;                /* server.c's state of the request */
    unsigned status;               /* the response's status, once decided */
    struct MHD_Response *response; /* the response, until queued */
    uint64_t bytes_out;            /* bytes of the response body */
    struct vs_job job;             /* when the work runs on the pool */
};

/* Nanoseconds on CLOCK_MONOTONIC. */
uint64_t vs_now_ns(void);

#endif /* VS_VOLUME_H */
