/*
 * listener.h - the listening socket of volume-server.
 */
#ifndef VS_LISTENER_H
#define VS_LISTENER_H

#include <stddef.h>

#include "config.h"

/* Raises the soft RLIMIT_NOFILE so that max_connections connections, the
 * engine's segment files and the process's own descriptors fit. Returns -1
 * with a message naming MAX_CONNECTIONS in err when the hard limit is too
 * low. */
int listener_reserve_descriptors(unsigned max_connections, char *err, size_t err_len);

/* Binds HOST:PORT of cfg (the first address of HOST that works) and listens,
 * non-blocking. Returns the socket and sets *port to the bound port (useful
 * with PORT=0), or returns -1 with a message naming HOST or PORT in err. */
int listener_open(const struct vs_config *cfg, unsigned *port, char *err, size_t err_len);

#endif /* VS_LISTENER_H */
