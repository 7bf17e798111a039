/*
 * conn.c - a RESP connection's life on its loop: accepting it (within
 * MAX_CONNECTIONS), reading and parsing its input, running its commands in
 * order, deferring those that wait for the disk, writing its replies in
 * order, and closing it (QUIT, malformed input, idle time, output over its
 * limit, the client gone, the server stopping).
 *
 * Invariants: a connection's memory is freed only once libuv has closed its
 * handle and no deferred command of it is on the pool or in the engine
 * (a write submitted always completes); replies reach the
 * socket in the order their commands arrived; input is read only while the
 * connection can act on it (no parsed command waits, and its unsent output
 * is below OUT_HIGH), so that a client that never reads its replies, or one
 * that pipelines faster than the disk syncs, holds bounded memory. An input
 * buffer larger than BUF_KEEP (a large value on its way, a long pipeline) is
 * taken from the budget of MAX_BODY_MEMORY_MB that HTTP bodies share.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "repl.h"
#include "server.h"

/* Unsent output above which a connection's commands wait (and its input is
 * not read) until the socket takes some. */
#define OUT_HIGH (1024u * 1024u)
/* Deferred commands one connection may have queued before the next waits. */
#define PENDING_MAX 1024u
/* Room offered to each read. */
#define READ_CHUNK (16u * 1024u)
/* A buffer larger than this is freed when it empties, so that an idle
 * connection holds little memory. */
#define BUF_KEEP (64u * 1024u)
/* A bulk at least this large gets a buffer of its exact size at once. */
#define BIG_BULK (32u * 1024u)

uint64_t resp_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t resp_mono_ms(void)
{
    return uv_hrtime() / 1000000u;
}

static void conn_process(struct resp_conn *conn);
static void conn_flush(struct resp_conn *conn);
static void protocol_error(struct resp_conn *conn, const char *msg);
static void conn_close(struct resp_conn *conn);

static size_t unsent(const struct resp_conn *conn)
{
    return conn->out.len + conn->sending.len;
}

/* ---- memory */

void resp_pending_free(struct resp_pending *p)
{
    if (p == NULL)
        return;
    growbuf_free(&p->reply);
    resp_tx_free(p->tx);
    free(p->ops);
    free(p);
}

/* Moves conn's input to a buffer of cap bytes (0: none), within the memory
 * budget; false when the budget cannot hold it (nothing changes then). */
static bool resize_input(struct resp_conn *conn, size_t cap)
{
    struct vs_app *app = conn->loop->srv->app;
    size_t counted = cap > BUF_KEEP ? cap : 0;
    if (counted > conn->reserved && !vs_app_reserve_body(app, counted - conn->reserved)) {
        conn->over_budget = true;
        return false;
    }
    char *moved = NULL;
    if (cap > 0) {
        moved = realloc(conn->in, cap);
        if (moved == NULL) {
            if (counted > conn->reserved)
                vs_app_release_body(app, counted - conn->reserved);
            return false;
        }
    } else {
        free(conn->in);
    }
    if (counted < conn->reserved)
        vs_app_release_body(app, conn->reserved - counted);
    conn->reserved = counted;
    conn->in = moved;
    conn->in_cap = cap;
    return true;
}

static void conn_free(struct resp_conn *conn)
{
    struct resp_loop *loop = conn->loop;
    struct resp_server *srv = loop->srv;
    pthread_mutex_lock(&loop->lock);
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        loop->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    pthread_mutex_unlock(&loop->lock);
    while (conn->pend_head != NULL) {
        struct resp_pending *p = conn->pend_head;
        conn->pend_head = p->next;
        resp_pending_free(p);
    }
    resp_multi_reset(conn);
    resp_parser_free(&conn->parser);
    growbuf_free(&conn->out);
    growbuf_free(&conn->sending);
    resize_input(conn, 0);
    free(conn->name);
    free(conn->lib_name);
    free(conn->lib_ver);
    free(conn);
    atomic_fetch_sub(&srv->app->resp.connections, 1);
    atomic_fetch_sub(&srv->open_conns, 1);
    if (atomic_load(&srv->stopping)) {
        pthread_mutex_lock(&srv->stop_lock);
        pthread_cond_broadcast(&srv->stop_cond);
        pthread_mutex_unlock(&srv->stop_lock);
    }
}

/* Frees conn once its handle is closed and nothing of it runs on the pool
 * or in the engine. */
static void conn_maybe_free(struct resp_conn *conn)
{
    if (conn->closing && conn->tcp.data == NULL && !conn->running && conn->n_writes == 0)
        conn_free(conn);
}

/* The handle is the first member of a connection. */
static void on_closed(uv_handle_t *h)
{
    struct resp_conn *conn = (struct resp_conn *)(void *)h;
    conn->tcp.data = NULL; /* the handle is closed */
    conn_maybe_free(conn);
}

/* For a connection refused or failed before it was set up. */
static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void conn_close(struct resp_conn *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    /* Deferred commands not yet on the pool or in the engine will never
     * run: their client is gone, and nobody will read their replies. */
    struct resp_pending **pp = &conn->pend_head;
    while (*pp != NULL) {
        struct resp_pending *p = *pp;
        if (!p->submitted || p->done) {
            *pp = p->next;
            resp_pending_free(p);
            conn->n_pending--;
        } else {
            pp = &p->next;
        }
    }
    conn->pend_tail = NULL;
    for (struct resp_pending *p = conn->pend_head; p != NULL; p = p->next)
        conn->pend_tail = p;
    uv_close((uv_handle_t *)&conn->tcp, on_closed);
}

/* ---- accepting */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void peer_names(struct resp_conn *conn)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof(ip));
            snprintf(conn->addr, sizeof(conn->addr), "[%s]:%u", ip, ntohs(a->sin6_port));
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof(ip));
            snprintf(conn->addr, sizeof(conn->addr), "%s:%u", ip, ntohs(a->sin_port));
        }
    }
    len = sizeof(ss);
    if (uv_tcp_getsockname(&conn->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof(ip));
            snprintf(conn->laddr, sizeof(conn->laddr), "[%s]:%u", ip, ntohs(a->sin6_port));
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof(ip));
            snprintf(conn->laddr, sizeof(conn->laddr), "%s:%u", ip, ntohs(a->sin_port));
        }
    }
}

static void on_refused_written(uv_write_t *req, int status)
{
    (void)status;
    uv_close((uv_handle_t *)req->handle, free_handle);
    free(req);
}

/* Over MAX_CONNECTIONS: Redis's error, then the connection closes. */
static void refuse(struct resp_loop *loop, uv_tcp_t *tcp)
{
    static char msg[] = "-ERR max number of clients reached\r\n";
    atomic_fetch_add(&loop->srv->app->resp.rejected, 1);
    uv_write_t *req = malloc(sizeof(*req));
    uv_buf_t b = uv_buf_init(msg, sizeof(msg) - 1);
    if (req == NULL || uv_write(req, (uv_stream_t *)tcp, &b, 1, on_refused_written) != 0) {
        free(req);
        uv_close((uv_handle_t *)tcp, free_handle);
    }
}

void resp_conn_accept(struct resp_loop *loop)
{
    struct resp_server *srv = loop->srv;
    struct resp_conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL)
        return;
    uv_tcp_init(&loop->uv, &conn->tcp);
    if (uv_accept((uv_stream_t *)&loop->listener, (uv_stream_t *)&conn->tcp) != 0) {
        uv_close((uv_handle_t *)&conn->tcp, free_handle);
        return;
    }
    if (atomic_load(&srv->open_conns) >= srv->cfg->max_connections || atomic_load(&srv->stopping)) {
        refuse(loop, &conn->tcp);
        return;
    }
    atomic_fetch_add(&srv->open_conns, 1);
    atomic_fetch_add(&srv->app->resp.connections, 1);
    atomic_fetch_add(&srv->app->resp.connections_total, 1);
    conn->tcp.data = conn;
    conn->loop = loop;
    conn->id = atomic_fetch_add(&srv->next_client_id, 1);
    conn->proto = RESP2;
    conn->authed = srv->cfg->auth_token[0] == '\0';
    conn->created_ms = resp_mono_ms();
    atomic_store(&conn->last_active_ms, conn->created_ms);
    resp_parser_init(&conn->parser, srv->cfg->resp_max_args, srv->max_bulk);
    uv_tcp_nodelay(&conn->tcp, 1);
    peer_names(conn);
    pthread_mutex_lock(&loop->lock);
    conn->next = loop->conns;
    if (loop->conns != NULL)
        loop->conns->prev = conn;
    loop->conns = conn;
    pthread_mutex_unlock(&loop->lock);
    conn->reading = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) == 0;
    if (!conn->reading)
        conn_close(conn);
}

/* ---- reading */

/* Whether conn can act on more input now. */
static bool can_run(const struct resp_conn *conn)
{
    return !conn->closing && !conn->close_after_write && !conn->have_cmd &&
           unsent(conn) < OUT_HIGH && conn->n_pending < PENDING_MAX;
}

static void update_reading(struct resp_conn *conn)
{
    bool want = can_run(conn) && !conn->draining;
    if (want && !conn->reading)
        conn->reading = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) == 0;
    else if (!want && conn->reading) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->reading = false;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct resp_conn *conn = h->data;
    (void)suggested;
    size_t room = conn->in_cap - conn->in_len;
    /* The rest of a large bulk comes into one buffer of its size; the rest
     * of a small one into the room there is, if it fits; anything else in
     * a chunk, the buffer doubling as a long command grows. */
    size_t want = conn->need >= BIG_BULK ? conn->need : READ_CHUNK;
    bool fits = conn->need > 0 && room >= conn->need;
    if (room < want && !fits) {
        size_t cap = conn->in_len + want;
        if (conn->need == 0 && cap < conn->in_cap * 2)
            cap = conn->in_cap * 2;
        if (!resize_input(conn, cap)) {
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
    }
    *buf = uv_buf_init(conn->in + conn->in_len, (unsigned)(conn->in_cap - conn->in_len > UINT32_MAX
                                                               ? UINT32_MAX
                                                               : conn->in_cap - conn->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct resp_conn *conn = s->data;
    (void)buf;
    if (nread == UV_ENOBUFS) {
        /* No room for the input: say why, and close once that is sent. */
        protocol_error(conn, conn->over_budget
                                 ? "ERR server busy: the memory for commands being received "
                                   "(MAX_BODY_MEMORY_MB) is in use; try again"
                                 : "ERR out of memory");
        update_reading(conn);
        conn_flush(conn);
        return;
    }
    if (nread < 0) {
        /* The client closed or vanished (its unsent pipeline is dropped);
         * writes already deferred still complete on the pool. */
        conn_close(conn);
        return;
    }
    if (nread == 0)
        return;
    conn->in_len += (size_t)nread;
    atomic_fetch_add_explicit(&conn->loop->srv->app->resp.bytes_received, (uint64_t)nread,
                              memory_order_relaxed);
    atomic_store_explicit(&conn->last_active_ms, resp_mono_ms(), memory_order_relaxed);
    conn_process(conn);
}

/* Drops the bytes of commands already run from the front of the buffer. */
static void compact_input(struct resp_conn *conn)
{
    size_t keep = resp_parser_keep_from(&conn->parser);
    if (keep == 0)
        return;
    if (keep >= conn->in_len) {
        resp_parser_shift(&conn->parser, keep);
        conn->in_len = 0;
        if (conn->in_cap > BUF_KEEP)
            resize_input(conn, 0);
        return;
    }
    /* Move the unfinished command down only when it is worth it: it is
     * small, or the space before it is most of the buffer. */
    if (conn->in_len - keep <= 4096 || keep >= conn->in_cap / 2) {
        memmove(conn->in, conn->in + keep, conn->in_len - keep);
        conn->in_len -= keep;
        resp_parser_shift(&conn->parser, keep);
        /* What is left is small: so is the buffer (and its share of the
         * budget). */
        if (conn->in_cap > BUF_KEEP && conn->in_len <= BUF_KEEP / 2)
            resize_input(conn, BUF_KEEP);
    }
}

/* The buffer sizes CLIENT LIST reads from other threads. */
static void publish_view(struct resp_conn *conn)
{
    atomic_store_explicit(&conn->view_qbuf, conn->in_len, memory_order_relaxed);
    atomic_store_explicit(&conn->view_qbuf_free, conn->in_cap - conn->in_len, memory_order_relaxed);
    atomic_store_explicit(&conn->view_pending, conn->n_pending, memory_order_relaxed);
    atomic_store_explicit(&conn->view_multi, conn->multi ? (long)conn->n_queued : -1L,
                          memory_order_relaxed);
    atomic_store_explicit(&conn->view_omem, conn->out.cap + conn->sending.cap,
                          memory_order_relaxed);
}

/* Replies with a protocol error and closes once it is sent: after malformed
 * input nothing that follows can be trusted. */
static void protocol_error(struct resp_conn *conn, const char *msg)
{
    struct resp_server *srv = conn->loop->srv;
    atomic_fetch_add(&srv->app->resp.protocol_errors, 1);
    vs_log(VS_LOG_DEBUG, "resp: client %llu (%s): %s; closing", (unsigned long long)conn->id,
           conn->addr, msg);
    if (conn->n_pending > 0) {
        /* After the replies of the commands before it. */
        struct growbuf reply = {0};
        resp_error(&reply, msg);
        resp_queue_answered(conn, &reply, VS_CMD_MAX);
    } else {
        resp_error(&conn->out, msg);
    }
    conn->close_after_write = true;
}

/* Parses and runs the commands in conn's input until it is used up or the
 * connection must wait; then writes what the replies produced. */
static void conn_process(struct resp_conn *conn)
{
    struct resp_server *srv = conn->loop->srv;
    while (!conn->closing && !conn->close_after_write) {
        if (!conn->have_cmd) {
            if (unsent(conn) >= OUT_HIGH || conn->n_pending >= PENDING_MAX)
                break;
            size_t need = 0;
            enum resp_parse_result r = resp_parse(&conn->parser, conn->in, conn->in_len, &need);
            conn->need = need;
            if (r == RESP_PARSE_MORE) {
                if (conn->in_len - resp_parser_keep_from(&conn->parser) > srv->query_limit)
                    protocol_error(conn, "ERR Protocol error: query buffer limit reached");
                break;
            }
            if (r == RESP_PARSE_ERROR) {
                protocol_error(conn, conn->parser.error);
                break;
            }
            conn->have_cmd = true;
            conn->cmd_start_ns = uv_hrtime();
        }
        struct resp_parser *p = &conn->parser;
        /* argv as pointers into the input: valid until the input moves,
         * which cannot happen while the command runs. */
        char *argv_small[16];
        char **argv = p->argc <= 16 ? argv_small : malloc(p->argc * sizeof(char *));
        if (argv == NULL) {
            protocol_error(conn, "ERR out of memory");
            break;
        }
        for (size_t i = 0; i < p->argc; i++)
            argv[i] = conn->in + p->arg_off[i];
        bool ran = resp_dispatch(conn, p->argc, argv, p->arg_len);
        if (argv != argv_small)
            free(argv);
        if (!ran)
            break; /* waits for the pending queue */
        conn->have_cmd = false;
        resp_parser_next(p);
    }
    if (!conn->closing) {
        compact_input(conn);
        publish_view(conn);
        if (conn->out.failed || unsent(conn) > srv->output_limit) {
            vs_log(VS_LOG_DEBUG, "resp: client %llu (%s): output over its limit; closing",
                   (unsigned long long)conn->id, conn->addr);
            conn_close(conn);
            return;
        }
        conn_flush(conn);
        if (!conn->closing)
            update_reading(conn);
    }
}

/* ---- writing */

static void on_written(uv_write_t *req, int status)
{
    struct resp_conn *conn = req->data;
    conn->writing = false;
    atomic_store_explicit(&conn->last_active_ms, resp_mono_ms(), memory_order_relaxed);
    atomic_fetch_add_explicit(&conn->loop->srv->app->resp.bytes_sent, conn->sending.len,
                              memory_order_relaxed);
    conn->sending.len = 0;
    if (conn->sending.cap > BUF_KEEP)
        growbuf_free(&conn->sending);
    if (status < 0 || conn->closing) {
        conn_close(conn);
        return;
    }
    if (conn->out.len > 0) {
        conn_flush(conn);
        return;
    }
    if (conn->close_after_write && conn->n_pending == 0) {
        conn_close(conn);
        return;
    }
    /* The socket took the output: commands that waited for room go on. */
    conn_process(conn);
}

/* Hands conn's output to the socket, one write at a time (two buffers: one
 * being written, one filling). */
static void conn_flush(struct resp_conn *conn)
{
    if (conn->writing || conn->closing)
        return;
    if (conn->out.len == 0) {
        /* Closed once every reply has gone, those still pending too. */
        if (conn->n_pending == 0 &&
            (conn->close_after_write || (conn->draining && !conn->have_cmd)))
            conn_close(conn);
        return;
    }
    struct growbuf t = conn->sending;
    conn->sending = conn->out;
    conn->out = t;
    conn->out.len = 0;
    uv_buf_t b = uv_buf_init(conn->sending.data, (unsigned)conn->sending.len);
    conn->wreq.data = conn;
    conn->writing = true;
    if (uv_write(&conn->wreq, (uv_stream_t *)&conn->tcp, &b, 1, on_written) != 0) {
        conn->writing = false;
        conn_close(conn);
    }
}

/* ---- deferred commands */

void resp_queue_answered(struct resp_conn *conn, struct growbuf *reply, size_t cmd)
{
    struct resp_pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        growbuf_free(reply);
        conn->close_after_write = true; /* the order can no longer be kept */
        return;
    }
    p->conn = conn;
    p->srv = conn->loop->srv;
    p->reply = *reply;
    p->cmd = cmd;
    p->start_ns = conn->cmd_start_ns;
    p->submitted = p->done = true;
    if (conn->pend_tail != NULL)
        conn->pend_tail->next = p;
    else
        conn->pend_head = p;
    conn->pend_tail = p;
    conn->n_pending++;
}

static void emit_done(struct resp_conn *conn);

void resp_pending_finished(struct resp_pending *p)
{
    struct resp_loop *loop = p->conn->loop;
    pthread_mutex_lock(&loop->lock);
    p->done_next = NULL;
    if (loop->done_tail != NULL)
        loop->done_tail->done_next = p;
    else
        loop->done_head = p;
    loop->done_tail = p;
    pthread_mutex_unlock(&loop->lock);
    uv_async_send(&loop->wake);
}

/* A write's reply once MIN_REPLICA_ACKS replicas hold it, or -NOREPLICAS
 * past REPLICA_ACK_TIMEOUT_MS (the write itself is durable here). */
static void replicas_answered(void *ctx, bool confirmed)
{
    struct resp_pending *p = ctx;
    if (!confirmed) {
        const struct vs_config *cfg = p->srv->cfg;
        p->reply.len = 0;
        resp_errorf(&p->reply,
                    "NOREPLICAS Not enough good replicas to write: the write is durable on the "
                    "primary, not confirmed by %u replica(s) within %u ms",
                    cfg->min_replica_acks, cfg->replica_ack_timeout_ms);
    }
    resp_pending_finished(p);
}

void resp_pending_replicate(struct resp_pending *p, bool wrote, uint64_t seg, uint64_t end)
{
    struct repl *rp = p->srv->app->repl;
    bool failed = p->reply.len > 0 && p->reply.data[0] == '-';
    if (wrote && !failed && repl_acks_needed(rp)) {
        repl_await(rp, seg, end, replicas_answered, p);
        return;
    }
    resp_pending_finished(p);
}

static void run_on_pool(struct vs_job *job)
{
    struct resp_pending *p =
        (struct resp_pending *)(void *)((char *)job - offsetof(struct resp_pending, job));
    p->run(p);
    /* A write run here (FLUSHDB) waits for the replicas without holding
     * this thread: its durable position is the log's end once it returned
     * (MIN_REPLICA_ACKS needs sync mode always). */
    kv_log_pos end = {0, 0};
    bool wrote = p->cmd < VS_CMD_MAX && (resp_commands[p->cmd].flags & CMD_WRITE) &&
                 kv_log_end(blob_kv(p->srv->app->store), &end) == 0;
    resp_pending_replicate(p, wrote, end.seg, end.off);
}

/* Starts what may start of conn's deferred commands, in order. A write is
 * submitted to the engine at once, behind the writes before it (the engine
 * sequences batches in submission order), unless a job before it has not
 * finished; a job (one at a time) runs only when everything before it is
 * done, so that it sees every earlier write of the connection. */
static void pump(struct resp_conn *conn)
{
    if (conn->closing)
        return;
    bool all_done = true;
    bool failed = false;
    for (struct resp_pending *p = conn->pend_head; p != NULL; p = p->next) {
        if (p->done)
            continue;
        if (p->submitted) {
            if (!p->is_write)
                break;
            all_done = false;
            continue;
        }
        if (p->is_write) {
            p->submitted = true;
            conn->n_writes++;
            /* Not accepted: its reply says why, and it comes back as any
             * completion does. */
            if (!resp_write_submit(p))
                resp_pending_finished(p);
            all_done = false;
            continue;
        }
        if (!all_done)
            break;
        p->submitted = true;
        conn->running = true;
        p->job.run = run_on_pool;
        if (vs_pool_submit(conn->loop->srv->pool, &p->job) != 0) {
            /* The pool has stopped (shutdown past its grace time): run it here. */
            p->run(p);
            p->done = true;
            conn->running = false;
            failed = true;
            continue;
        }
        break;
    }
    if (failed)
        emit_done(conn);
}

/* Moves the replies of finished commands at the head of the queue to the
 * output, in order, counting each command. */
static void emit_done(struct resp_conn *conn)
{
    struct resp_loop *loop = conn->loop;
    uint64_t now = uv_hrtime();
    while (conn->pend_head != NULL && conn->pend_head->done) {
        struct resp_pending *p = conn->pend_head;
        conn->pend_head = p->next;
        if (conn->pend_head == NULL)
            conn->pend_tail = NULL;
        conn->n_pending--;
        bool failed = p->reply.len > 0 && p->reply.data[0] == '-';
        if (p->reply.failed) {
            resp_error(&conn->out, "ERR out of memory");
            failed = true;
        } else {
            growbuf_append(&conn->out, p->reply.data, p->reply.len);
        }
        vs_cmd_count(loop->stats, p->cmd, (now - p->start_ns) / 1000u, failed);
        resp_pending_free(p);
    }
}

struct resp_pending *resp_pending_new(struct resp_ctx *c)
{
    struct resp_conn *conn = c->conn;
    size_t bytes = 0;
    for (size_t i = 0; i < c->argc; i++)
        bytes += c->argl[i];
    size_t head = sizeof(struct resp_pending) + c->argc * (sizeof(char *) + sizeof(size_t));
    struct resp_pending *p = calloc(1, head + bytes + 1);
    if (p == NULL) {
        resp_error(c->out, "ERR out of memory");
        return NULL;
    }
    p->conn = conn;
    p->srv = c->srv;
    p->proto = c->proto;
    p->cmd = c->cmd_index;
    p->start_ns = conn->cmd_start_ns;
    p->argc = c->argc;
    p->argv = (char **)(void *)(p + 1);
    p->argl = (size_t *)(void *)(p->argv + c->argc);
    char *data = (char *)(p->argl + c->argc);
    for (size_t i = 0; i < c->argc; i++) {
        memcpy(data, c->argv[i], c->argl[i]);
        p->argv[i] = data;
        p->argl[i] = c->argl[i];
        data += c->argl[i];
    }
    return p;
}

static void enqueue(struct resp_conn *conn, struct resp_pending *p)
{
    if (conn->pend_tail != NULL)
        conn->pend_tail->next = p;
    else
        conn->pend_head = p;
    conn->pend_tail = p;
    conn->n_pending++;
    pump(conn);
}

bool resp_defer(struct resp_ctx *c, void (*run)(struct resp_pending *p))
{
    struct resp_pending *p = resp_pending_new(c);
    if (p == NULL)
        return false;
    p->run = run;
    enqueue(c->conn, p);
    return true;
}

void resp_queue_write(struct resp_conn *conn, struct resp_pending *p)
{
    p->is_write = true;
    enqueue(conn, p);
}

void resp_loop_collect(struct resp_loop *loop)
{
    pthread_mutex_lock(&loop->lock);
    struct resp_pending *list = loop->done_head;
    loop->done_head = loop->done_tail = NULL;
    pthread_mutex_unlock(&loop->lock);
    while (list != NULL) {
        struct resp_pending *p = list;
        list = p->done_next;
        struct resp_conn *conn = p->conn;
        p->done = true;
        if (p->is_write)
            conn->n_writes--;
        else
            conn->running = false;
        /* The completions of one connection's pipeline tend to come
         * together: its replies go out once, after the last of them. */
        if (!conn->closing && list != NULL && list->conn == conn)
            continue;
        if (conn->closing) {
            /* Its client is gone: drop the reply, free what is left. */
            struct resp_pending **pp = &conn->pend_head;
            while (*pp != NULL && *pp != p)
                pp = &(*pp)->next;
            if (*pp == p)
                *pp = p->next;
            conn->pend_tail = NULL;
            for (struct resp_pending *q = conn->pend_head; q != NULL; q = q->next)
                conn->pend_tail = q;
            conn->n_pending--;
            resp_pending_free(p);
            conn_maybe_free(conn);
            continue;
        }
        emit_done(conn);
        pump(conn);
        /* A command that waited for the queue to drain may run now. */
        conn_process(conn);
    }
}

/* ---- sweeping */

void resp_loop_sweep_idle(struct resp_loop *loop, uint64_t now_ms)
{
    uint64_t limit_ms = (uint64_t)loop->srv->cfg->resp_idle_timeout_secs * 1000u;
    struct resp_conn *conn = loop->conns;
    while (conn != NULL) {
        struct resp_conn *next = conn->next;
        uint64_t last = atomic_load_explicit(&conn->last_active_ms, memory_order_relaxed);
        /* Idle: nothing read, and nothing of its replies taken, for the
         * whole time (a client that never reads its replies counts too). */
        if (!conn->closing && conn->n_pending == 0 && now_ms - last > limit_ms) {
            vs_log(VS_LOG_DEBUG, "resp: client %llu (%s) idle for %u s; closing",
                   (unsigned long long)conn->id, conn->addr,
                   loop->srv->cfg->resp_idle_timeout_secs);
            conn_close(conn);
        }
        conn = next;
    }
}

void resp_loop_drain(struct resp_loop *loop)
{
    for (struct resp_conn *conn = loop->conns; conn != NULL; conn = conn->next) {
        if (conn->closing)
            continue;
        conn->draining = true;
        update_reading(conn);
        conn_flush(conn);
    }
}

void resp_loop_close_all(struct resp_loop *loop)
{
    struct resp_conn *conn = loop->conns;
    while (conn != NULL) {
        struct resp_conn *next = conn->next;
        conn_close(conn);
        conn = next;
    }
}
