/*
 * resp.h - the main header of src/resp/: volume-server's Redis protocol
 * front end (RESP2 and RESP3, inline commands, pipelining) over the same
 * store as HTTP.
 *
 * src/resp/ owns the RESP listener and its event loops (server.c, over
 * libuv), connections, their limits and the order of their replies
 * (conn.c), the protocol's parser and writer (proto.c), the command table
 * and its dispatch (commands.c), the commands (cmd_server.c, cmd_keys.c,
 * cmd_strings.c), writes through the engine without waiting and the view
 * of a transaction (write.c), MULTI/EXEC/WATCH (multi.c) and INFO
 * (info.c). It serves the application of src/core/ and depends on nothing
 * but it, the settings and the engine's public header; only the program
 * (cmd/volume-server) and its tests include it.
 */
#ifndef VS_RESP_H
#define VS_RESP_H

#include <stddef.h>

#include "app.h"

struct resp_server;

/*
 * Listens on HOST:RESP_PORT of app->cfg (RESP_PORT=0: a port the kernel
 * picks) with one event loop per THREADS, and serves app. On failure returns
 * -1 and writes the reason (naming the setting at fault) into err.
 */
int resp_server_start(struct vs_app *app, struct resp_server **out, char *err, size_t err_len);

/* The port the server listens on. */
unsigned resp_server_port(const struct resp_server *srv);

/*
 * Stops: no new connections; commands already read are answered (writes in
 * progress complete, bounded by grace_ms), then every connection is closed
 * and the loops end. After it returns no command runs, so the store may be
 * closed. NULL is accepted.
 */
void resp_server_stop(struct resp_server *srv, unsigned grace_ms);

#endif /* VS_RESP_H */
