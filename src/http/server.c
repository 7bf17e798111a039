/*
 * server.c - the life of a connection and of a request in volume-server.
 *
 * libmicrohttpd (MHD) runs in epoll mode with THREADS threads, each with its
 * own epoll set and connections. A request goes through these phases:
 *
 *   NEW    the request line and headers have arrived (the access handler's
 *          first call): route, authenticate, check Content-Length against
 *          MAX_REQUEST_SIZE_MB. Nothing is queued on this call, even for an
 *          error, unless a body is on its way: MHD 0.9.75 closes the
 *          connection after a response queued on the first call, which costs
 *          keep-alive (and most of the throughput) for every GET. When a
 *          body is on its way, an early error response is exactly what is
 *          wanted: the body is never read, and the connection is closed.
 *   BODY   body bytes arrive, are counted against MAX_REQUEST_SIZE_MB and
 *          kept in a buffer sized from Content-Length (grown for chunked
 *          bodies) within MAX_BODY_MEMORY_MB for all bodies (body.c).
 *   WAIT   the connection is suspended, and the HTTP thread serves others,
 *          while a blob write in sync mode "always" goes through the engine
 *          (kv_write_async: no thread waits for it), or an admin job runs on
 *          the pool.
 *   WRITTEN the engine completed the write: its callback, on the engine's
 *          commit thread, noted the outcome and resumed the connection; the
 *          response is built on the next call (or the write is submitted
 *          again, when the state its precondition was pinned to changed).
 *   REPLY  the response is ready; it is queued on the next call.
 *   SENT   the response is queued; any further body bytes are dropped.
 *
 * So nothing caps the writes in flight but memory (MAX_CONNECTIONS and the
 * body budget): every waiting writer is queued in the engine, where one
 * round of group commit takes them all.
 *
 * Invariants: a request lives from the URI callback to the completion
 * callback, and app->counters.in_flight counts those alive that began
 * before a stop was asked for; shutdown waits (bounded) for it to reach
 * zero. No connection is suspended when MHD_stop_daemon runs: the engine's
 * writes in flight are waited for (they always complete, durable or
 * failed), and the pool is drained.
 *
 * Stopping (vs_server_stop) drains, then closes:
 *
 *   drain  for up to the grace time (SHUTDOWN_GRACE_SECS), the server keeps
 *          accepting connections and reading requests, and answers every
 *          request that begins now 503 with Connection: close (before its
 *          body, which is never read); the requests that began before go
 *          on, and the drain ends as soon as the last of them completes.
 *   close  the writes submitted to the engine and the jobs on the pool run
 *          to their end (a write whose body had arrived is made durable,
 *          though its reply may not be sent; a request that begins meanwhile
 *          gets 503 as in the drain), every connection is closed, and then
 *          the listening socket (new connections are refused): a request
 *          still receiving its body is cut without a response, and nothing
 *          of it is stored.
 */
#include "server.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "body.h"
#include "handlers.h"
#include "listener.h"
#include "log.h"
#include "replication.h"
#include "response.h"

/* Memory MHD may use per connection for the request line, headers and read
 * buffer: headers larger than this get 431 from MHD. */
#define CONNECTION_MEMORY (32u * 1024u)
/* Threads for admin jobs (compaction, snapshot). */
#define POOL_THREADS 4u

enum phase { PHASE_NEW, PHASE_BODY, PHASE_WAIT, PHASE_WRITTEN, PHASE_REPLY, PHASE_SENT };

struct vs_server {
    struct vs_app *app;
    struct MHD_Daemon *daemon;
    int listen_fd;
    unsigned port;
    struct vs_pool *pool;
    atomic_bool started; /* MHD's messages after start are per-request noise */
    pthread_mutex_t idle_lock;
    /* signalled when in_flight or writes_in_flight reaches 0 while stopping */
    pthread_cond_t idle;
};

static enum vs_method parse_method(const char *m)
{
    static const struct {
        const char *name;
        enum vs_method method;
    } methods[] = {{"GET", VS_GET},
                   {"HEAD", VS_HEAD},
                   {"POST", VS_POST},
                   {"PUT", VS_PUT},
                   {"DELETE", VS_DELETE}};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(m, methods[i].name) == 0)
            return methods[i].method;
    }
    return VS_OTHER;
}

static void request_free(struct vs_request *r)
{
    if (r == NULL)
        return;
    if (r->response != NULL)
        MHD_destroy_response(r->response);
    body_release(r);
    free(r->key);
    free(r->uri);
    free(r);
}

/* The origin-form path of a request target: an absolute-form target
 * ("http://host/path", which RFC 9112 says servers must accept) loses its
 * scheme and authority. */
static const char *origin_form(const char *uri)
{
    const char *scheme_end = strstr(uri, "://");
    if (uri[0] == '/' || scheme_end == NULL)
        return uri;
    const char *path = strchr(scheme_end + 3, '/');
    return path != NULL ? path : "/";
}

/* MHD's URI callback: the request line has arrived. The request object is
 * born here, with the target as received (before MHD decodes it), since a
 * decoded path cannot tell "a%2Fb" from "a/b" or carry "%00". */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct vs_server *srv = cls;
    const char *target = origin_form(uri);
    size_t len = strlen(target);
    struct vs_request *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->uri = malloc(len + 1);
    if (r->uri == NULL) {
        free(r);
        return NULL;
    }
    memcpy(r->uri, target, len + 1);
    r->uri_len = len;
    const char *q = memchr(target, '?', len);
    r->path_len = q != NULL ? (size_t)(q - target) : len;
    r->app = srv->app;
    r->server = srv;
    r->conn = conn;
    r->start_ns = vs_now_ns();
    /* A request that begins during the drain gets 503 at once: the drain
     * does not wait for it. */
    r->drained = atomic_load(&srv->app->stopping);
    if (!r->drained)
        atomic_fetch_add(&srv->app->counters.in_flight, 1);
    return r;
}

/* Queues the prepared response. Returns MHD_NO (close the connection) when
 * there is none, which only happens when memory ran out. */
static enum MHD_Result send_reply(struct vs_request *r)
{
    r->phase = PHASE_SENT;
    if (r->response == NULL)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->response);
    MHD_destroy_response(r->response);
    r->response = NULL;
    return ret;
}

/*
 * Works around a missed end of stream in MHD 0.9.75's epoll mode: when a
 * client's last bytes and its FIN arrive together, MHD reads the bytes,
 * takes the short read to mean "no more until the next edge", and never
 * reads the end of stream, so the request waits for the rest of its body
 * until CONNECTION_TIMEOUT_SECS. When part of a body announced by
 * Content-Length is still expected, a peek at the socket tells whether the
 * client has finished sending; if so, suspending and resuming the connection
 * makes MHD read again (it marks resumed connections ready, since it may have
 * missed edges while they were suspended), and MHD itself then either
 * completes the request from what it holds or closes the connection as
 * incomplete. A resumed connection gets an extra call without data, which
 * on_access tells from the end of the body by the byte count; a chunked body
 * has no count, so it is never nudged (a chunked upload cut off this way
 * waits for the timeout).
 */
static void notice_client_gone(struct vs_request *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    char byte;
    if (ci == NULL || recv(ci->connect_fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 0)
        return; /* data waiting, nothing yet (EAGAIN), or an error MHD will see */
    MHD_suspend_connection(r->conn);
    MHD_resume_connection(r->conn);
}

static enum MHD_Result begin(struct vs_server *srv, struct vs_request *r,
                             struct MHD_Connection *conn, const char *method)
{
    r->conn = conn;
    r->method_name = method;
    r->method = parse_method(method);
    atomic_fetch_add_explicit(&srv->app->counters.requests, 1, memory_order_relaxed);
    if (atomic_load(&srv->app->stopping)) {
        vs_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Server is shutting down");
        vs_reply_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    } else if (body_framing_conflicts(conn)) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "Conflicting Content-Length headers");
    } else if (handlers_route(r) == 0) {
        body_prepare(r);
    }
    if (r->status != 0) {
        if (body_announced(conn))
            return send_reply(r); /* before the body: it is never read */
        r->phase = PHASE_REPLY;
        return MHD_YES;
    }
    r->phase = PHASE_BODY;
    if (r->length_known && r->content_length > 0)
        notice_client_gone(r);
    return MHD_YES;
}

static enum MHD_Result receive(struct vs_request *r, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    if (body_take(r, data, n) != 0) {
        /* MHD 0.9.75 takes no response in the middle of a body: the refusal
         * goes to the socket directly, and the connection is closed. */
        body_refuse_now(r);
        r->phase = PHASE_SENT;
        return MHD_NO;
    }
    if (r->length_known && r->body_in < r->content_length)
        notice_client_gone(r);
    return MHD_YES;
}

/* Runs on a pool thread while the connection is suspended. Resuming is the
 * last touch of r: the HTTP thread may free it right after. */
static void run_job(struct vs_job *job)
{
    struct vs_request *r =
        (struct vs_request *)(void *)((char *)job - offsetof(struct vs_request, job));
    handlers_run(r);
    r->phase = PHASE_REPLY;
    MHD_resume_connection(r->conn);
}

static void wake_stopper(struct vs_server *srv)
{
    pthread_mutex_lock(&srv->idle_lock);
    pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->idle_lock);
}

/* Under idle_lock: once the count reaches 0 a stopper (wait_writes) may
 * free srv, so nothing of it may be touched after the lock is let go. */
static void write_finished(struct vs_server *srv)
{
    pthread_mutex_lock(&srv->idle_lock);
    if (atomic_fetch_sub(&srv->app->counters.writes_in_flight, 1) == 1)
        pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->idle_lock);
}

/* The engine's callback, on its commit thread: the write is durable, or has
 * failed. Resuming is the last touch of r: the HTTP thread may free it right
 * after. */
static void written(struct vs_request *r)
{
    struct vs_server *srv = r->server;
    r->phase = PHASE_WRITTEN;
    MHD_resume_connection(r->conn);
    write_finished(srv);
}

/* A write that succeeded waits, still in flight, for MIN_REPLICA_ACKS
 * replicas to hold its position (replication.c), without holding this
 * thread; its reply is then built as for any write, or is the 504. */
static void on_write_done(kv_op *ops, size_t n, int rc, const kv_commit_info *info, void *ctx)
{
    struct vs_request *r = ctx;
    (void)ops;
    (void)n;
    r->write_rc = rc;
    if (rc == 0 && repl_http_await(r, info->seg, info->end, written))
        return;
    written(r);
}

/* Prepares r's blob write and hands it to the engine, the connection
 * suspended until the engine calls back. */
static enum MHD_Result submit_write(struct vs_server *srv, struct vs_request *r)
{
    if (handlers_write_prepare(r) != 0)
        return send_reply(r);
    r->phase = PHASE_WAIT;
    MHD_suspend_connection(r->conn);
    atomic_fetch_add(&srv->app->counters.writes_in_flight, 1);
    int rc = blob_write_submit(r->app->store, &r->write, on_write_done, r);
    if (rc == 0)
        return MHD_YES;
    /* Refused (the store is closing, out of memory): the callback will not
     * come; the response is queued on the call after resume. */
    write_finished(srv);
    handlers_write_done(r, rc);
    r->phase = PHASE_REPLY;
    MHD_resume_connection(r->conn);
    return MHD_YES;
}

static enum MHD_Result complete(struct vs_server *srv, struct vs_request *r)
{
    if (handlers_prepare(r) != 0)
        return send_reply(r);
    if (handlers_write_async(r))
        return submit_write(srv, r);
    if (handlers_may_block(r)) {
        r->phase = PHASE_WAIT;
        r->job.run = run_job;
        MHD_suspend_connection(r->conn);
        if (vs_pool_submit(srv->pool, &r->job) == 0)
            return MHD_YES;
        /* The pool has stopped (shutdown past its grace time): serve the
         * request here, and queue the response on the call after resume. */
        handlers_run(r);
        r->phase = PHASE_REPLY;
        MHD_resume_connection(r->conn);
        return MHD_YES;
    }
    handlers_run(r);
    return send_reply(r);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    struct vs_server *srv = cls;
    struct vs_request *r = *con_cls;
    (void)url;
    (void)version;
    if (r == NULL)
        return MHD_NO; /* the URI callback ran out of memory */
    switch (r->phase) {
    case PHASE_NEW:
        return begin(srv, r, conn, method);
    case PHASE_BODY:
        if (*upload_data_size > 0)
            return receive(r, upload_data, upload_data_size);
        if (r->length_known && r->body_in < r->content_length)
            return MHD_YES; /* the call after a resume, not the body's end */
        return complete(srv, r);
    case PHASE_WRITTEN:
        if (handlers_write_done(r, r->write_rc))
            return submit_write(srv, r);
        if (r->acks_missing)
            repl_http_reply_unconfirmed(r);
        return send_reply(r);
    case PHASE_REPLY:
        return send_reply(r);
    case PHASE_WAIT:
        return MHD_YES;
    case PHASE_SENT:
    default:
        *upload_data_size = 0;
        return MHD_YES;
    }
}

static const char *termination_name(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK:
        return "ok";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
        return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
        return "shutdown";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
        return "client closed";
    default:
        return "error";
    }
}

static void log_request(const struct vs_request *r, enum MHD_RequestTerminationCode toe)
{
    double ms = (double)(vs_now_ns() - r->start_ns) / 1e6;
    const char *method = r->method_name != NULL ? r->method_name : "-";
    vs_log(VS_LOG_DEBUG, "%s %.512s %u %llu %.3fms %s", method, r->uri, r->status,
           (unsigned long long)r->bytes_out, ms, termination_name(toe));
}

/* The kind of request r was, for its latency (latency.h); false for those
 * that are not counted (health, metrics, admin, the status page, errors of
 * routing). */
static bool latency_kind(const struct vs_request *r, enum vs_req_kind *kind)
{
    bool read = r->method == VS_GET || r->method == VS_HEAD;
    if (r->route == VS_ROUTE_LIST && read) {
        *kind = VS_REQ_HTTP_LIST;
        return true;
    }
    if (r->route != VS_ROUTE_BLOB || r->key == NULL)
        return false;
    if (read)
        *kind = VS_REQ_HTTP_GET;
    else if (r->method == VS_DELETE)
        *kind = VS_REQ_HTTP_DELETE;
    else
        *kind = VS_REQ_HTTP_PUT;
    return true;
}

/* MHD's completion callback: the request is over, one way or another. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct vs_server *srv = cls;
    struct vs_request *r = *con_cls;
    struct vs_counters *c = &srv->app->counters;
    (void)conn;
    if (r == NULL)
        return;
    *con_cls = NULL;
    if (r->status >= 100 && r->status < 600)
        atomic_fetch_add_explicit(&c->by_class[r->status / 100], 1, memory_order_relaxed);
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && r->method != VS_HEAD)
        atomic_fetch_add_explicit(&c->bytes_sent, r->bytes_out, memory_order_relaxed);
    enum vs_req_kind kind;
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && latency_kind(r, &kind))
        vs_latency_record(&srv->app->latency, kind, vs_now_ns() - r->start_ns);
    if (vs_log_enabled(VS_LOG_DEBUG))
        log_request(r, toe);
    bool counted = !r->drained;
    request_free(r);
    if (counted && atomic_fetch_sub(&c->in_flight, 1) == 1 && atomic_load(&srv->app->stopping))
        wake_stopper(srv);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct vs_server *srv = cls;
    (void)conn;
    (void)socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add_explicit(&srv->app->counters.connections, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&srv->app->counters.connections_total, 1, memory_order_relaxed);
    } else {
        atomic_fetch_sub_explicit(&srv->app->counters.connections, 1, memory_order_relaxed);
    }
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct vs_server *srv = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = '\0';
    /* After start, MHD's messages are about single misbehaving clients. */
    vs_log(atomic_load(&srv->started) ? VS_LOG_DEBUG : VS_LOG_WARN, "http: %s", msg);
}

static struct MHD_Daemon *start_daemon(struct vs_server *srv, const struct vs_config *cfg)
{
    unsigned flags =
        MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    /* A pool of one is MHD's single internal thread, which it refuses to be
     * asked for by THREAD_POOL_SIZE. */
    unsigned pool = cfg->threads > 1 ? cfg->threads : 0;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
        MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, MHD_OPTION_THREAD_POOL_SIZE, pool,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_secs,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_END);
}

int vs_server_start(struct vs_app *app, struct vs_server **out, char *err, size_t err_len)
{
    int rc = -1;
    const struct vs_config *cfg = app->cfg;
    struct vs_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    srv->app = app;
    srv->listen_fd = -1;
    pthread_mutex_init(&srv->idle_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->idle, &ca);
    pthread_condattr_destroy(&ca);
    if (listener_reserve_descriptors(cfg->max_connections, err, err_len) != 0)
        goto out;
    srv->listen_fd = listener_open(cfg, &srv->port, err, err_len);
    if (srv->listen_fd < 0)
        goto out;
    if (vs_pool_start(POOL_THREADS, &srv->pool) != 0) {
        snprintf(err, err_len, "cannot start %u threads: %s", POOL_THREADS, strerror(errno));
        goto out;
    }
    srv->daemon = start_daemon(srv, cfg);
    if (srv->daemon == NULL) {
        snprintf(err, err_len, "cannot start the HTTP server (THREADS=%u)", cfg->threads);
        goto out;
    }
    atomic_store(&srv->started, true);
    *out = srv;
    srv = NULL;
    rc = 0;
out:
    if (srv != NULL) {
        vs_pool_stop(srv->pool);
        if (srv->listen_fd >= 0)
            close(srv->listen_fd);
        pthread_cond_destroy(&srv->idle);
        pthread_mutex_destroy(&srv->idle_lock);
        free(srv);
    }
    return rc;
}

unsigned vs_server_port(const struct vs_server *srv)
{
    return srv->port;
}

/* Waits until no request that began before the stop is in progress, or
 * grace_ms have passed. */
static void wait_idle(struct vs_server *srv, unsigned grace_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += grace_ms / 1000;
    deadline.tv_nsec += (long)(grace_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&srv->idle_lock);
    while (atomic_load(&srv->app->counters.in_flight) > 0) {
        if (pthread_cond_timedwait(&srv->idle, &srv->idle_lock, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&srv->idle_lock);
    uint64_t left = atomic_load(&srv->app->counters.in_flight);
    if (left > 0)
        vs_log(VS_LOG_WARN,
               "shutdown: %llu request%s still in progress after %u ms (SHUTDOWN_GRACE_SECS); "
               "cutting %s",
               (unsigned long long)left, left == 1 ? "" : "s", grace_ms, left == 1 ? "it" : "them");
}

/* Waits until the engine has completed every write submitted: a suspended
 * connection must be resumed before MHD stops, and each write completes,
 * durable or failed, in the time its fdatasync takes. */
static void wait_writes(struct vs_server *srv)
{
    pthread_mutex_lock(&srv->idle_lock);
    while (atomic_load(&srv->app->counters.writes_in_flight) > 0)
        pthread_cond_wait(&srv->idle, &srv->idle_lock);
    pthread_mutex_unlock(&srv->idle_lock);
}

void vs_server_stop(struct vs_server *srv, unsigned grace_ms)
{
    if (srv == NULL)
        return;
    atomic_store(&srv->app->stopping, true);
    uint64_t busy = atomic_load(&srv->app->counters.in_flight);
    if (busy > 0 && grace_ms > 0)
        vs_log(VS_LOG_INFO,
               "shutdown: draining %llu request%s in progress for up to %u ms; new requests get "
               "503",
               (unsigned long long)busy, busy == 1 ? "" : "s", grace_ms);
    wait_idle(srv, grace_ms);
    /* The listening socket stays in MHD's hands until its threads are gone:
     * MHD_quiesce_daemon would take it out of their epoll sets, but in epoll
     * mode with a thread pool it races with the workers' own removal of it,
     * and MHD 0.9.75 aborts the process when it loses (libmicrohttpd's
     * "Failed to remove listen FD from epoll set"). Until the close below,
     * a new connection is served as during the drain: 503. */
    wait_writes(srv);
    vs_pool_stop(srv->pool); /* runs queued jobs, which resume their connections */
    MHD_stop_daemon(srv->daemon);
    close(srv->listen_fd);
    pthread_cond_destroy(&srv->idle);
    pthread_mutex_destroy(&srv->idle_lock);
    free(srv);
}
