/*
 * server.c - the RESP server: its listening sockets, one libuv loop per
 * thread, the pool for the commands that walk the store (KEYS, SCAN,
 * FLUSHDB, SAVE), and the orderly stop.
 *
 * Why libuv, and how it scales over the cores: each of THREADS loops owns a
 * listening socket of its own, all bound to RESP_PORT with SO_REUSEPORT, so
 * that the kernel spreads new connections over the loops and no lock is
 * shared on the accept path; a connection then stays on its loop. libuv
 * gives each loop epoll, non-blocking writes with their queues, timers and a
 * thread-safe wake-up (uv_async_send), which the engine's commit thread
 * (a completed write) and the pool (a finished job) use to hand a command
 * back to its connection's loop.
 *
 * Stopping: the loops close their listeners and stop reading; commands
 * already read are answered (a write in the engine completes and its reply
 * is sent) within the grace time; then the pool is drained, the writes
 * still in the engine complete, every connection is closed and the loops
 * end.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

#define MIB (1024u * 1024u)
/* Threads for SAVE, FLUSHDB and the like (writes need none: the engine
 * completes them). */
#define POOL_THREADS 4u
/* The bytes of an unfinished command beyond its largest bulk: Redis's
 * client-query-buffer-limit. */
#define QUERY_EXTRA (1024u * MIB)

static void on_connection(uv_stream_t *listener, int status)
{
    struct resp_loop *loop = listener->data;
    if (status < 0) {
        vs_log(VS_LOG_WARN, "resp: accept: %s", uv_strerror(status));
        return;
    }
    resp_conn_accept(loop);
}

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_tick(uv_timer_t *t)
{
    struct resp_loop *loop = t->data;
    struct resp_server *srv = loop->srv;
    resp_loop_sweep_idle(loop, resp_mono_ms());
    if (loop->index == 0) {
        struct vs_cmd_total total;
        vs_cmd_sum_all(&srv->app->resp_commands, &total);
        atomic_store(&srv->app->resp.commands, total.calls);
        atomic_store(&srv->app->resp.ops_per_sec, total.calls - loop->last_commands);
        loop->last_commands = total.calls;
        vs_cmd_tick(&srv->app->resp_commands, uv_hrtime());
    }
}

static void on_wake(uv_async_t *a)
{
    struct resp_loop *loop = a->data;
    struct resp_server *srv = loop->srv;
    resp_loop_collect(loop);
    if (atomic_load(&srv->stopping) && !loop->stop_seen) {
        loop->stop_seen = true;
        if (loop->listening) {
            uv_close((uv_handle_t *)&loop->listener, on_handle_closed);
            loop->listening = false;
        }
        resp_loop_drain(loop);
    }
    if (atomic_load(&srv->force_close)) {
        resp_loop_close_all(loop);
        if (!uv_is_closing((uv_handle_t *)&loop->tick)) {
            uv_close((uv_handle_t *)&loop->tick, on_handle_closed);
            uv_close((uv_handle_t *)&loop->wake, on_handle_closed);
        }
    }
}

static void *loop_main(void *arg)
{
    struct resp_loop *loop = arg;
    uv_run(&loop->uv, UV_RUN_DEFAULT);
    return NULL;
}

/* A socket bound to ai, sharing its port with the other loops' sockets. */
static int listen_on(const struct addrinfo *ai, unsigned port)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } addr;
    memset(&addr, 0, sizeof(addr));
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    if (addr.sa.sa_family == AF_INET6)
        addr.in6.sin6_port = htons((uint16_t)port);
    else
        addr.in.sin_port = htons((uint16_t)port);
    if (bind(fd, &addr.sa, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static unsigned bound_port(int fd)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Opens one listening socket per loop on HOST:RESP_PORT. */
static int open_listeners(struct resp_server *srv, char *err, size_t err_len)
{
    const struct vs_config *cfg = srv->cfg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(cfg->host, "0", &hints, &res);
    if (gai != 0) {
        snprintf(err, err_len, "HOST=%s: cannot resolve: %s", cfg->host, gai_strerror(gai));
        return -1;
    }
    int saved = EADDRNOTAVAIL;
    const struct addrinfo *ai = res;
    for (; ai != NULL; ai = ai->ai_next) {
        srv->loops[0].listen_fd = listen_on(ai, cfg->resp_port);
        if (srv->loops[0].listen_fd >= 0)
            break;
        saved = errno;
    }
    if (ai == NULL) {
        freeaddrinfo(res);
        snprintf(err, err_len, "cannot listen on HOST=%s RESP_PORT=%u: %s", cfg->host,
                 cfg->resp_port, strerror(saved));
        return -1;
    }
    srv->port = bound_port(srv->loops[0].listen_fd);
    for (unsigned i = 1; i < srv->n_loops; i++) {
        srv->loops[i].listen_fd = listen_on(ai, srv->port);
        if (srv->loops[i].listen_fd < 0) {
            snprintf(err, err_len, "cannot listen on HOST=%s RESP_PORT=%u (socket %u): %s",
                     cfg->host, srv->port, i + 1, strerror(errno));
            freeaddrinfo(res);
            return -1;
        }
    }
    freeaddrinfo(res);
    return 0;
}

/* Descriptors kept for the engine's segments and the process, beyond one
 * per connection (as the HTTP front end counts them). */
#define FD_RESERVE (256u + 64u)

/* Makes sure there are descriptors for MAX_CONNECTIONS connections of each
 * front end, HTTP's and this one's. */
static int reserve_descriptors(unsigned max_connections, char *err, size_t err_len)
{
    struct rlimit rl;
    rlim_t need = 2 * (rlim_t)max_connections + FD_RESERVE;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        snprintf(err, err_len,
                 "MAX_CONNECTIONS=%u for HTTP and for RESP needs %llu file descriptors, but the "
                 "limit is %llu (ulimit -Hn; or RESP_PORT=off)",
                 max_connections, (unsigned long long)need, (unsigned long long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        snprintf(err, err_len, "MAX_CONNECTIONS=%u: cannot raise the descriptor limit: %s",
                 max_connections, strerror(errno));
        return -1;
    }
    return 0;
}

static int loop_init(struct resp_server *srv, struct resp_loop *loop, unsigned index)
{
    loop->srv = srv;
    loop->index = index;
    loop->stats = srv->app->resp_commands.blocks[index];
    pthread_mutex_init(&loop->lock, NULL);
    int rc = uv_loop_init(&loop->uv);
    if (rc != 0)
        return rc;
    uv_tcp_init(&loop->uv, &loop->listener);
    loop->listener.data = loop;
    rc = uv_tcp_open(&loop->listener, loop->listen_fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&loop->listener, SOMAXCONN, on_connection);
    if (rc != 0)
        return rc;
    loop->listen_fd = -1; /* libuv owns it now */
    loop->listening = true;
    uv_async_init(&loop->uv, &loop->wake, on_wake);
    loop->wake.data = loop;
    uv_timer_init(&loop->uv, &loop->tick);
    loop->tick.data = loop;
    uv_timer_start(&loop->tick, on_tick, 1000, 1000);
    return 0;
}

static void make_run_id(char *out)
{
    unsigned char raw[20] = {0};
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        uint64_t t = uv_hrtime();
        memcpy(raw, &t, sizeof(t));
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static void server_free(struct resp_server *srv)
{
    if (srv == NULL)
        return;
    vs_pool_stop(srv->pool);
    for (unsigned i = 0; srv->loops != NULL && i < srv->n_loops; i++) {
        struct resp_loop *loop = &srv->loops[i];
        if (loop->listen_fd >= 0)
            close(loop->listen_fd);
        pthread_mutex_destroy(&loop->lock);
    }
    pthread_cond_destroy(&srv->stop_cond);
    pthread_mutex_destroy(&srv->stop_lock);
    free(srv->loops);
    free(srv);
}

/* Names of the commands, for the table of counters. */
static int register_commands(struct vs_app *app, unsigned threads)
{
    const char *names[VS_CMD_MAX];
    if (resp_n_commands > VS_CMD_MAX)
        return -1;
    for (size_t i = 0; i < resp_n_commands; i++)
        names[i] = resp_commands[i].name;
    return vs_cmd_table_init(&app->resp_commands, names, resp_n_commands, threads);
}

int resp_server_start(struct vs_app *app, struct resp_server **out, char *err, size_t err_len)
{
    const struct vs_config *cfg = app->cfg;
    unsigned started = 0;
    struct resp_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    srv->app = app;
    srv->cfg = cfg;
    srv->n_loops = cfg->threads > 0 ? cfg->threads : 1;
    srv->durable = cfg->sync_mode == VS_SYNC_ALWAYS;
    srv->max_bulk = (uint64_t)cfg->max_request_size_mb * MIB;
    srv->output_limit = (uint64_t)cfg->resp_output_limit_mb * MIB;
    srv->query_limit = srv->max_bulk + QUERY_EXTRA;
    atomic_init(&srv->next_client_id, 1);
    atomic_init(&srv->last_save_unix, resp_unix_ms() / 1000u);
    atomic_init(&srv->last_save_ok, 1);
    atomic_init(&srv->last_rewrite_ok, 1);
    pthread_mutex_init(&srv->stop_lock, NULL);
    pthread_cond_init(&srv->stop_cond, NULL);
    make_run_id(srv->run_id);
    srv->loops = calloc(srv->n_loops, sizeof(*srv->loops));
    if (srv->loops == NULL || register_commands(app, srv->n_loops) != 0) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < srv->n_loops; i++)
        srv->loops[i].listen_fd = -1;
    if (reserve_descriptors(cfg->max_connections, err, err_len) != 0 ||
        open_listeners(srv, err, err_len) != 0)
        goto fail;
    if (vs_pool_start(POOL_THREADS, &srv->pool) != 0) {
        snprintf(err, err_len, "cannot start %u threads: %s", POOL_THREADS, strerror(errno));
        goto fail;
    }
    for (; started < srv->n_loops; started++) {
        struct resp_loop *loop = &srv->loops[started];
        int rc = loop_init(srv, loop, started);
        if (rc == 0)
            rc = -pthread_create(&loop->thread, NULL, loop_main, loop);
        if (rc != 0) {
            snprintf(err, err_len, "cannot start the RESP loop %u: %s", started, uv_strerror(rc));
            uv_loop_close(&loop->uv);
            goto fail;
        }
    }
    atomic_store(&app->resp.port, srv->port);
    *out = srv;
    return 0;
fail:
    if (started > 0) {
        srv->n_loops = started;
        resp_server_stop(srv, 0);
        return -1;
    }
    server_free(srv);
    return -1;
}

unsigned resp_server_port(const struct resp_server *srv)
{
    return srv->port;
}

static void wake_all(struct resp_server *srv)
{
    for (unsigned i = 0; i < srv->n_loops; i++)
        uv_async_send(&srv->loops[i].wake);
}

/* Waits until every connection has closed, or grace_ms have passed. */
static void wait_closed(struct resp_server *srv, unsigned grace_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += grace_ms / 1000;
    deadline.tv_nsec += (long)(grace_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&srv->stop_lock);
    while (atomic_load(&srv->open_conns) > 0) {
        if (pthread_cond_timedwait(&srv->stop_cond, &srv->stop_lock, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&srv->stop_lock);
    uint64_t left = atomic_load(&srv->open_conns);
    if (left > 0)
        vs_log(VS_LOG_WARN, "resp: %llu connections still busy after %u ms; closing them",
               (unsigned long long)left, grace_ms);
}

void resp_server_stop(struct resp_server *srv, unsigned grace_ms)
{
    if (srv == NULL)
        return;
    atomic_store(&srv->stopping, true);
    wake_all(srv);
    if (grace_ms > 0)
        wait_closed(srv, grace_ms);
    /* Every deferred command finishes and reports to its loop, which is
     * still running. */
    vs_pool_stop(srv->pool);
    srv->pool = NULL;
    /* Every write in the engine completes (durable or failed) and hands its
     * command back to its loop, which is still running. */
    resp_writes_wait_idle(srv);
    atomic_store(&srv->force_close, true);
    wake_all(srv);
    for (unsigned i = 0; i < srv->n_loops; i++) {
        struct resp_loop *loop = &srv->loops[i];
        pthread_join(loop->thread, NULL);
        /* Handles closed in the last turn of the loop. */
        uv_run(&loop->uv, UV_RUN_NOWAIT);
        uv_loop_close(&loop->uv);
    }
    atomic_store(&srv->app->resp.port, 0);
    server_free(srv);
}
