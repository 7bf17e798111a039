/*
 * server.h - volume-server's HTTP server: libmicrohttpd in epoll mode with a
 * pool of threads, the limits on connections, headers and bodies, durable
 * writes through the engine's asynchronous submission, the pool for admin
 * jobs, and the orderly shutdown.
 */
#ifndef VS_SERVER_H
#define VS_SERVER_H

#include <stddef.h>

#include "http.h"

struct vs_server;

/*
 * Binds HOST:PORT of app->cfg and starts serving app. On failure returns -1
 * and writes the reason (naming the setting at fault) into err.
 */
int vs_server_start(struct vs_app *app, struct vs_server **out, char *err, size_t err_len);

/* The port the server listens on (PORT, or the one chosen for PORT=0). */
unsigned vs_server_port(const struct vs_server *srv);

/*
 * Stops: for up to grace_ms, answers every request that begins 503 (with
 * Connection: close), on new connections as on open ones, while the
 * requests in progress complete; then refuses new connections, runs the
 * pool's jobs to their end, closes every connection (cutting a request
 * still receiving its body) and frees the server. After it returns no
 * handler runs, so the store may be closed. NULL is accepted.
 */
void vs_server_stop(struct vs_server *srv, unsigned grace_ms);

#endif /* VS_SERVER_H */
