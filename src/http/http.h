/*
 * http.h - the main header of src/http/: one HTTP request in progress.
 *
 * src/http/ owns volume-server's HTTP front end: the libmicrohttpd glue and
 * the phases of a request (server.c), the listening socket (listener.c),
 * request bodies and their memory budget (body.c), routing and the endpoints
 * (handlers.c, metrics.c, backup.c, the status page in ui.c), the parsing that HTTP leaves to the
 * application (http_parse.c), and the building of responses (response.c).
 * It serves the application of src/core/ and depends on nothing but it, the
 * settings and the engine's public header, and only the program
 * (cmd/volume-server) and its tests include it.
 *
 * server.c owns the request's life (created when its request line arrives,
 * freed when libmicrohttpd reports it complete); body.c receives its body;
 * handlers.c decides what it means and builds its response, with the helpers
 * of response.c. A request is touched by one thread at a time: its HTTP
 * thread, or, while its connection is suspended, a pool thread (an admin
 * job) or the engine's commit thread (the completion of a write).
 */
#ifndef VS_HTTP_H
#define VS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <microhttpd.h>

#include "app.h"
#include "pool.h"
#include "storage.h"

struct vs_server;

enum vs_method { VS_GET, VS_HEAD, VS_POST, VS_PUT, VS_DELETE, VS_OTHER };

enum vs_route {
    VS_ROUTE_NONE,
    VS_ROUTE_HEALTH,
    VS_ROUTE_METRICS,
    VS_ROUTE_LIST,
    VS_ROUTE_BLOB,
    VS_ROUTE_COMPACT,
    VS_ROUTE_SNAPSHOT,
    VS_ROUTE_BACKUP,
    VS_ROUTE_PROMOTE,
    VS_ROUTE_REPL_LOG,
    VS_ROUTE_REPL_ACK,
    VS_ROUTE_UI
};

struct vs_request {
    struct vs_app *app;
    struct MHD_Connection *conn;
    uint64_t start_ns;
    bool drained; /* it began after a stop was asked for: it gets 503 */

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

    struct blob_write write; /* a blob write on its way through the engine */
    int write_rc;            /* the engine's code for it, once complete */
    struct vs_server *server;

    unsigned phase;                /* server.c's state of the request */
    unsigned status;               /* the response's status, once decided */
    struct MHD_Response *response; /* the response, until queued */
    uint64_t bytes_out;            /* bytes of the response body */
    struct vs_job job;             /* when the work runs on the pool */
    /* A write waiting for replicas' acknowledgements (replication.c):
     * what resumes the connection once they came or the time ran out. */
    void (*acked)(struct vs_request *r);
    bool acks_missing; /* the time ran out: the reply is 504 */
};

#endif /* VS_HTTP_H */
