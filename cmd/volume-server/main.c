/*
 * volume-server - the blob server of mini-kvstore: HTTP, and the Redis
 * protocol (RESP) on RESP_PORT, over one store.
 *
 * Reads the configuration, opens the store, serves HTTP and RESP until
 * SIGTERM or SIGINT, then stops in order: new requests answered 503 (HTTP)
 * while the ones in progress finish (for up to SHUTDOWN_GRACE_SECS), the
 * connections closed, the store closed (fsync and snapshot), exit 0.
 *
 * Signals are blocked in every thread and taken by sigwait() in the main
 * thread, so shutdown runs as ordinary code, not in a signal handler.
 *
 * Replication (src/replication/) starts with the store. When a replica has
 * a complete full copy of its primary ready (SIGUSR1 from its follower), the
 * main thread stops the front ends and the store, swaps the copy in, and
 * starts them again on the same ports: the only moment a replica that
 * resyncs does not answer.
 *
 * Exit status: 0 after a clean stop, 1 when the server cannot start or the
 * store fails to close cleanly, 2 for an invalid configuration.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <kvstore.h>

#include "app.h"
#include "config.h"
#include "log.h"
#include "repl.h"
#include "resp.h"
#include "server.h"

/* Blocks the stop signals in this thread and every thread it creates, and
 * ignores SIGPIPE (a client that goes away is not a reason to die). */
static void take_signals(sigset_t *stop)
{
    sigemptyset(stop);
    sigaddset(stop, SIGTERM);
    sigaddset(stop, SIGINT);
    sigaddset(stop, SIGUSR1); /* a replica's full copy is ready to swap in */
    pthread_sigmask(SIG_BLOCK, stop, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* What serve_once ended with. */
enum served { SERVED_FAILED, SERVED_STOPPED, SERVED_SWAP };

/* Serves until a stop signal (or a full copy ready to swap in, which
 * stops at once): the front ends, replication and the store, in order.
 * cfg->port and cfg->resp_port become the ports bound, so that a start
 * after a swap takes the same ones. */
static enum served serve_once(struct vs_config *cfg, const sigset_t *stop)
{
    enum served outcome = SERVED_FAILED;
    struct vs_server *srv = NULL;
    struct resp_server *resp = NULL;
    struct vs_app app = {0};
    char err[512] = "";
    char settings[2048];
    int sig = 0;

    repl_clean_staging(cfg);
    if (vs_app_open(&app, cfg) != 0)
        goto out;
    if (repl_start(&app) != 0)
        goto out;
    /* RESP first: its table of counters is complete before /metrics can
     * read it. */
    if (cfg->resp_port != VS_PORT_OFF && resp_server_start(&app, &resp, err, sizeof(err)) != 0) {
        vs_log(VS_LOG_ERROR, "%s", err);
        goto out;
    }
    if (vs_server_start(&app, &srv, err, sizeof(err)) != 0) {
        vs_log(VS_LOG_ERROR, "%s", err);
        goto out;
    }
    config_describe(cfg, settings, sizeof(settings));
    bool ipv6 = strchr(cfg->host, ':') != NULL; /* an address that needs brackets in a URL */
    if (resp != NULL)
        vs_log(VS_LOG_INFO, "volume-server %s speaks RESP on %s%s%s:%u", KV_VERSION_STRING,
               ipv6 ? "[" : "", cfg->host, ipv6 ? "]" : "", resp_server_port(resp));
    vs_log(VS_LOG_INFO, "volume-server %s listening on http://%s%s%s:%u (%s)", KV_VERSION_STRING,
           ipv6 ? "[" : "", cfg->host, ipv6 ? "]" : "", vs_server_port(srv), settings);
    unsigned http_port = vs_server_port(srv);
    unsigned resp_port = resp != NULL ? resp_server_port(resp) : cfg->resp_port;

    for (;;) {
        sigwait(stop, &sig);
        if (sig != SIGUSR1 || repl_swap_ready(app.repl))
            break;
    }
    unsigned grace = sig == SIGUSR1 ? 0 : cfg->shutdown_grace_secs * 1000u;
    if (sig == SIGUSR1)
        vs_log(VS_LOG_INFO, "replication: stopping to swap in the full copy");
    else
        vs_log(VS_LOG_INFO, "received %s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    /* Writes waiting for replicas get their answer while the front ends can
     * still send it. */
    repl_stop_waiting(app.repl);
    resp_server_stop(resp, grace);
    resp = NULL;
    vs_server_stop(srv, grace);
    srv = NULL;
    outcome = sig == SIGUSR1 ? SERVED_SWAP : SERVED_STOPPED;
    /* The front ends have stopped: nothing reads the settings now. */
    cfg->port = http_port;
    cfg->resp_port = resp_port;
out:
    resp_server_stop(resp, 0);
    vs_server_stop(srv, 0);
    repl_stop(&app);
    if (app.store != NULL) {
        int rc = vs_app_close(&app);
        if (rc != 0) {
            vs_log(VS_LOG_ERROR, "closing the store: %s", kv_strerror(rc));
            outcome = SERVED_FAILED;
        } else if (outcome == SERVED_STOPPED) {
            vs_log(VS_LOG_INFO, "store closed (synced, snapshot saved); stopped");
        }
    }
    return outcome;
}

static int serve(const struct vs_config *given)
{
    struct vs_config cfg = *given;
    sigset_t stop;
    take_signals(&stop);
    for (;;) {
        enum served outcome = serve_once(&cfg, &stop);
        if (outcome == SERVED_STOPPED)
            return 0;
        if (outcome == SERVED_FAILED)
            return 1;
        if (repl_swap_in(&cfg) != 0)
            return 1;
    }
}

int main(int argc, char **argv)
{
    struct vs_config cfg;
    char err[512] = "";
    switch (config_load(&cfg, argc, argv, err, sizeof(err))) {
    case VS_CONFIG_HELP:
        config_print_help(stdout, "volume-server");
        return 0;
    case VS_CONFIG_VERSION:
        printf("volume-server %s (libkvstore %s, libmicrohttpd %s)\n", KV_VERSION_STRING,
               kv_version(), MHD_get_version());
        return 0;
    case VS_CONFIG_ERROR:
        fprintf(stderr, "volume-server: %s\n", err);
        return 2;
    case VS_CONFIG_OK:
        break;
    }
    vs_log_set_level(cfg.log_level);
    return serve(&cfg);
}
