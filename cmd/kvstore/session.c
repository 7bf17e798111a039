/*
 * session.c - the store of a kvstore session: opened when a command first
 * needs it (so that help, verify and dump work on a directory in use), or
 * reached on a server (--connect, remote.c), closed at the end, and the
 * engine's log lines on the way.
 *
 * The commands, the REPL and main() all call down into this file; it calls
 * nothing of theirs.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

volatile sig_atomic_t cli_interrupted;

/* Engine log lines at warning level or above go to stderr. While the store
 * opens, errors are held instead, so that a failed open is explained once. */
static void on_engine_log(kv_log_level level, const char *msg, void *ctx)
{
    struct cli_log *log = ctx;
    pthread_mutex_lock(&log->mu);
    if (log->holding && level == KV_LOG_ERROR) {
        size_t used = strlen(log->held);
        snprintf(log->held + used, sizeof(log->held) - used, "kvstore: %s\n", msg);
    } else {
        fflush(stdout);
        fprintf(stderr, "kvstore: %s%s\n", level == KV_LOG_ERROR ? "" : "warning: ", msg);
    }
    pthread_mutex_unlock(&log->mu);
}

/* Stops holding engine errors; those held stay in log->held. */
static void release_log(struct cli_log *log)
{
    pthread_mutex_lock(&log->mu);
    log->holding = false;
    pthread_mutex_unlock(&log->mu);
}

static void report_open_failure(const struct cli *cli, int rc)
{
    fflush(stdout);
    if (rc == KV_ELOCKED) {
        fprintf(stderr, "kvstore: %s is in use by another process\n", cli->dir);
        return;
    }
    fputs(cli->log.held, stderr);
    fprintf(stderr, "kvstore: cannot open %s: %s\n", cli->dir, kv_strerror(rc));
}

void cli_engine_options(struct cli *cli, kv_options *opts)
{
    kv_options_init(opts);
    opts->log_fn = on_engine_log;
    opts->log_ctx = &cli->log;
    opts->log_level = KV_LOG_WARN;
}

bool cli_is_segment_name(const char *name)
{
    static const char prefix[] = "segment-", suffix[] = ".dat";
    if (strncmp(name, prefix, sizeof(prefix) - 1) != 0)
        return false;
    const char *p = name + sizeof(prefix) - 1;
    const char *digits = p;
    while (*p >= '0' && *p <= '9')
        p++;
    return p > digits && strcmp(p, suffix) == 0;
}

static bool holds_segments(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    const struct dirent *de;
    bool found = false;
    while (!found && (de = readdir(d)) != NULL)
        found = cli_is_segment_name(de->d_name);
    closedir(d);
    return found;
}

/* For a command that reads: whether the data directory holds a store, so
 * that opening it creates nothing. Says why not. */
static bool store_exists(const struct cli *cli, const char *what)
{
    struct stat st;
    const char *why = NULL;
    if (stat(cli->dir, &st) != 0)
        why = errno == ENOENT ? "no such directory" : strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        why = "not a directory";
    else if (!holds_segments(cli->dir))
        why = "no store there (no segment files)";
    if (!why)
        return true;
    cli_error(cli, "%s: %s: %s; %s reads a store and creates none (set creates one)", what,
              cli->dir, why, what);
    return false;
}

kv_store *cli_store(struct cli *cli, const char *what, enum cli_store_use use)
{
    if (cli->store || cli->open_failed)
        return cli->store;
    if (use == STORE_READ && !store_exists(cli, what))
        return NULL;
    kv_options opts;
    cli_engine_options(cli, &opts);
    cli->log.holding = true;
    cli->log.held[0] = '\0';
    /* The engine's threads inherit this mask. */
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &cli->engine_blocked, &old);
    int rc = kv_open(cli->dir, &opts, &cli->store);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    release_log(&cli->log);
    if (rc != 0) {
        cli->open_failed = true;
        report_open_failure(cli, rc);
        return NULL;
    }
    /* Errors the engine met but recovered from (a damaged record skipped). */
    if (cli->log.held[0]) {
        fflush(stdout);
        fputs(cli->log.held, stderr);
    }
    return cli->store;
}

bool cli_ready(struct cli *cli, const char *what, enum cli_store_use use)
{
    if (cli->connect == NULL)
        return cli_store(cli, what, use) != NULL;
    if (cli->remote != NULL)
        return true;
    if (cli->open_failed)
        return false;
    if (remote_open(cli) != 0) {
        cli->open_failed = true;
        fflush(stdout);
        fprintf(stderr, "kvstore: %s\n", cli->remote_error);
        return false;
    }
    return true;
}

int cli_store_close(struct cli *cli)
{
    if (cli->remote != NULL)
        remote_close(cli);
    if (!cli->store)
        return 0;
    int rc = kv_close(cli->store);
    cli->store = NULL;
    if (rc != 0) {
        fflush(stdout);
        fprintf(stderr, "kvstore: closing %s: %s\n", cli->dir, kv_strerror(rc));
    }
    return rc;
}
