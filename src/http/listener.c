/*
 * listener.c - the listening socket of volume-server and the descriptor
 * budget its connections need.
 *
 * The socket is made here rather than by libmicrohttpd so that a failure
 * names the setting at fault (HOST, PORT) with the system's reason, so that
 * PORT=0 can report the port the kernel chose, and so that shutdown can stop
 * the kernel from queueing new connections (see vs_server_stop).
 */
#include "listener.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* Descriptors kept for the engine's segments (its max_open_files) and for
 * the process itself, beyond one per connection. */
#define FD_RESERVE (256u + 64u)

/* Makes sure there are descriptors for every allowed connection. */
int listener_reserve_descriptors(unsigned max_connections, char *err, size_t err_len)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)max_connections + FD_RESERVE;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        snprintf(err, err_len,
                 "MAX_CONNECTIONS=%u needs %llu file descriptors, but the limit is %llu "
                 "(ulimit -Hn)",
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

/* The port a listening socket is bound to. */
static unsigned bound_port(int fd)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
        struct sockaddr_storage storage;
    } addr;
    memset(&addr, 0, sizeof(addr));
    socklen_t len = sizeof(addr);
    if (getsockname(fd, &addr.sa, &len) != 0)
        return 0;
    return ntohs(addr.sa.sa_family == AF_INET6 ? addr.in6.sin6_port : addr.in.sin_port);
}

/* A non-blocking socket bound to ai and listening, or -1 with errno set. */
static int listen_on(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int listener_open(const struct vs_config *cfg, unsigned *port_out, char *err, size_t err_len)
{
    int fd = -1;
    char port[8];
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    snprintf(port, sizeof(port), "%u", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, err_len, "HOST=%s: cannot resolve: %s", cfg->host, gai_strerror(gai));
        return -1;
    }
    int saved = EADDRNOTAVAIL;
    for (const struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = listen_on(ai);
        if (fd < 0)
            saved = errno;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, err_len, "cannot listen on HOST=%s PORT=%u: %s", cfg->host, cfg->port,
                 strerror(saved));
        return -1;
    }
    *port_out = bound_port(fd);
    return fd;
}
