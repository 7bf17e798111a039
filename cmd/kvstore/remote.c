/*
 * remote.c - the store of a session on a running volume-server, reached over
 * the Redis protocol with hiredis (`kvstore --connect HOST:PORT`).
 *
 * Each function does what its engine call does for a local store, through
 * the server's commands: SET, GET, DEL, EXISTS, SCAN (which the server
 * answers in key order, so `list` prints sorted keys as it does locally),
 * DBSIZE, INFO kvstore (every figure of kv_stats, for `stats`), SAVE, and
 * BGREWRITEAOF followed by INFO until the compaction is over. The codes are
 * the engine's (0, KV_ENOTFOUND), or CLI_REMOTE_ERROR with the server's
 * error text, or the reason the connection failed, in cli->remote_error.
 *
 * AUTH_TOKEN in the environment, the server's own variable, authenticates
 * the connection when it is set.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* How often `compact` asks whether the compaction is over. */
#define COMPACT_POLL_MS 50

static void set_error(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(struct cli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cli->remote_error, sizeof(cli->remote_error), fmt, ap);
    va_end(ap);
}

/* Splits "host:port" (or "[v6]:port", or ":port" for localhost). */
static int split_address(const char *spec, char *host, size_t host_len, int *port)
{
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon[1] == '\0')
        return -1;
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || p < 1 || p > 65535)
        return -1;
    const char *h = spec;
    size_t len = (size_t)(colon - spec);
    if (len >= 2 && h[0] == '[' && h[len - 1] == ']') {
        h++;
        len -= 2;
    }
    if (len == 0) {
        h = "127.0.0.1";
        len = strlen(h);
    }
    if (len >= host_len)
        return -1;
    memcpy(host, h, len);
    host[len] = '\0';
    *port = (int)p;
    return 0;
}

/* Sends one command of argc arguments and returns its reply (NULL when the
 * connection failed: cli->remote_error says why). */
static redisReply *call(struct cli *cli, int argc, const char **argv, const size_t *argl)
{
    redisReply *r = redisCommandArgv(cli->remote, argc, argv, argl);
    if (r == NULL)
        set_error(cli, "connection to the server lost: %s",
                  cli->remote->errstr[0] ? cli->remote->errstr : "closed");
    return r;
}

/* The code of a reply that is an error (its text kept), or 0. */
static int error_of(struct cli *cli, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ERROR)
        return 0;
    snprintf(cli->remote_error, sizeof(cli->remote_error), "%.*s", (int)r->len, r->str);
    return CLI_REMOTE_ERROR;
}

/* A reply of a type the command never gives: the peer is not volume-server. */
static int unexpected(struct cli *cli, const char *what)
{
    set_error(cli, "unexpected reply to %s", what);
    return CLI_REMOTE_ERROR;
}

int remote_open(struct cli *cli)
{
    char host[256];
    int port = 0;
    if (split_address(cli->connect, host, sizeof(host), &port) != 0) {
        set_error(cli, "--connect %s: expected HOST:PORT", cli->connect);
        return CLI_REMOTE_ERROR;
    }
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (c == NULL || c->err) {
        snprintf(cli->remote_error, sizeof(cli->remote_error), "cannot connect to %s: %s",
                 cli->connect, c ? c->errstr : "out of memory");
        redisFree(c);
        return CLI_REMOTE_ERROR;
    }
    cli->remote = c;
    const char *token = getenv("AUTH_TOKEN");
    if (token != NULL && token[0] != '\0') {
        const char *argv[] = {"AUTH", token};
        size_t argl[] = {4, strlen(token)};
        redisReply *r = call(cli, 2, argv, argl);
        int rc = r == NULL ? CLI_REMOTE_ERROR : error_of(cli, r);
        freeReplyObject(r);
        if (rc != 0) {
            remote_close(cli);
            return rc;
        }
    }
    return 0;
}

void remote_close(struct cli *cli)
{
    redisFree(cli->remote);
    cli->remote = NULL;
}

int remote_put(struct cli *cli, const void *key, size_t key_len, const void *val, size_t len)
{
    const char *argv[] = {"SET", key, val};
    size_t argl[] = {3, key_len, len};
    redisReply *r = call(cli, 3, argv, argl);
    if (r == NULL)
        return CLI_REMOTE_ERROR;
    int rc = error_of(cli, r);
    if (rc == 0 && r->type != REDIS_REPLY_STATUS)
        rc = unexpected(cli, "SET");
    freeReplyObject(r);
    return rc;
}

int remote_put_ttl(struct cli *cli, const void *key, size_t key_len, const void *val, size_t len,
                   uint64_t secs)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRIu64, secs);
    const char *argv[] = {"SET", key, val, "EX", num};
    size_t argl[] = {3, key_len, len, 2, (size_t)n};
    redisReply *r = call(cli, 5, argv, argl);
    if (r == NULL)
        return CLI_REMOTE_ERROR;
    int rc = error_of(cli, r);
    if (rc == 0 && r->type != REDIS_REPLY_STATUS)
        rc = unexpected(cli, "SET");
    freeReplyObject(r);
    return rc;
}

int remote_get(struct cli *cli, const void *key, size_t key_len, void **val, size_t *len)
{
    const char *argv[] = {"GET", key};
    size_t argl[] = {3, key_len};
    redisReply *r = call(cli, 2, argv, argl);
    if (r == NULL)
        return CLI_REMOTE_ERROR;
    int rc = error_of(cli, r);
    if (rc == 0 && r->type == REDIS_REPLY_NIL) {
        rc = KV_ENOTFOUND;
    } else if (rc == 0 && r->type == REDIS_REPLY_STRING) {
        void *copy = malloc(r->len > 0 ? r->len : 1);
        if (copy == NULL) {
            rc = KV_ENOMEM;
        } else {
            memcpy(copy, r->str, r->len);
            *val = copy;
            *len = r->len;
        }
    } else if (rc == 0) {
        rc = unexpected(cli, "GET");
    }
    freeReplyObject(r);
    return rc;
}

/* Runs a one-key command whose reply is an integer; *n is it. */
static int integer_command(struct cli *cli, const char *cmd, const void *key, size_t key_len,
                           long long *n)
{
    const char *argv[] = {cmd, key};
    size_t argl[] = {strlen(cmd), key_len};
    redisReply *r = call(cli, key ? 2 : 1, argv, argl);
    if (r == NULL)
        return CLI_REMOTE_ERROR;
    int rc = error_of(cli, r);
    if (rc == 0 && r->type != REDIS_REPLY_INTEGER)
        rc = unexpected(cli, cmd);
    else if (rc == 0)
        *n = r->integer;
    freeReplyObject(r);
    return rc;
}

int remote_delete(struct cli *cli, const void *key, size_t key_len)
{
    long long n = 0;
    int rc = integer_command(cli, "DEL", key, key_len, &n);
    return rc != 0 ? rc : n == 0 ? KV_ENOTFOUND : 0;
}

int remote_exists(struct cli *cli, const void *key, size_t key_len)
{
    long long n = 0;
    int rc = integer_command(cli, "EXISTS", key, key_len, &n);
    return rc != 0 ? rc : n == 0 ? KV_ENOTFOUND : 0;
}

int remote_ttl(struct cli *cli, const void *key, size_t key_len, uint64_t *ms)
{
    long long n = 0;
    int rc = integer_command(cli, "PTTL", key, key_len, &n);
    if (rc != 0)
        return rc;
    if (n == -2)
        return KV_ENOTFOUND;
    *ms = n < 0 ? 0 : (uint64_t)n;
    return 0;
}

int remote_count(struct cli *cli, uint64_t *count)
{
    long long n = 0;
    int rc = integer_command(cli, "DBSIZE", NULL, 0, &n);
    if (rc == 0)
        *count = (uint64_t)n;
    return rc;
}

/* A glob pattern that matches exactly the keys starting with prefix. */
static char *prefix_pattern(const char *prefix, size_t len, size_t *out_len)
{
    char *pat = malloc(2 * len + 2);
    if (pat == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (strchr("*?[]\\", prefix[i]) != NULL)
            pat[n++] = '\\';
        pat[n++] = prefix[i];
    }
    pat[n++] = '*';
    *out_len = n;
    return pat;
}

int remote_list(struct cli *cli, const void *prefix, size_t prefix_len, size_t limit, kv_key_fn fn,
                void *ctx)
{
    size_t pat_len = 0;
    char *pat = prefix_pattern(prefix ? prefix : "", prefix ? prefix_len : 0, &pat_len);
    if (pat == NULL)
        return KV_ENOMEM;
    char cursor[32] = "0";
    size_t seen = 0;
    bool enough = false;
    int rc = 0;
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", pat, "COUNT", "1000"};
        size_t argl[] = {4, strlen(cursor), 5, pat_len, 5, 4};
        redisReply *r = call(cli, 6, argv, argl);
        if (r == NULL) {
            rc = CLI_REMOTE_ERROR;
            break;
        }
        rc = error_of(cli, r);
        if (rc == 0 &&
            (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
             r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(cursor) ||
             r->element[1]->type != REDIS_REPLY_ARRAY))
            rc = unexpected(cli, "SCAN");
        if (rc == 0) {
            memcpy(cursor, r->element[0]->str, r->element[0]->len);
            cursor[r->element[0]->len] = '\0';
            const redisReply *keys = r->element[1];
            for (size_t i = 0; i < keys->elements && rc == 0 && !enough; i++) {
                rc = fn(keys->element[i]->str, keys->element[i]->len, ctx);
                enough = limit > 0 && ++seen >= limit;
            }
        }
        freeReplyObject(r);
    } while (rc == 0 && !enough && strcmp(cursor, "0") != 0);
    free(pat);
    return rc;
}

/* The value of field in INFO text, or 0 when it is not there. */
static uint64_t info_field(const char *text, const char *field)
{
    size_t len = strlen(field);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, field, len) == 0 && p[len] == ':')
            return strtoull(p + len + 1, NULL, 10);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return 0;
}

/* INFO section as text; *text must be freed with freeReplyObject(*reply). */
static int info(struct cli *cli, const char *section, redisReply **reply)
{
    const char *argv[] = {"INFO", section};
    size_t argl[] = {4, strlen(section)};
    redisReply *r = call(cli, 2, argv, argl);
    if (r == NULL)
        return CLI_REMOTE_ERROR;
    int rc = error_of(cli, r);
    if (rc == 0 && r->type != REDIS_REPLY_STRING)
        rc = unexpected(cli, "INFO");
    if (rc != 0) {
        freeReplyObject(r);
        return rc;
    }
    *reply = r;
    return 0;
}

int remote_stats(struct cli *cli, kv_stats *st)
{
    redisReply *r = NULL;
    int rc = info(cli, "kvstore", &r);
    if (rc != 0)
        return rc;
    const char *t = r->str;
    memset(st, 0, sizeof(*st));
    st->keys = info_field(t, "keys");
    st->segments = info_field(t, "segments");
    st->disk_bytes = info_field(t, "disk_bytes");
    st->live_bytes = info_field(t, "live_bytes");
    st->dead_bytes = info_field(t, "dead_bytes");
    st->active_segment_id = info_field(t, "active_segment_id");
    st->oldest_segment_id = info_field(t, "oldest_segment_id");
    st->index_bytes = info_field(t, "index_bytes");
    st->bloom_bytes = info_field(t, "bloom_bytes");
    st->bloom_capacity = info_field(t, "bloom_capacity");
    st->bloom_negatives = info_field(t, "bloom_negatives");
    st->bloom_false_positives = info_field(t, "bloom_false_positives");
    st->checksum_errors = info_field(t, "checksum_errors");
    st->torn_bytes_truncated = info_field(t, "torn_bytes_truncated");
    st->fsyncs = info_field(t, "fsyncs");
    st->puts = info_field(t, "puts");
    st->deletes = info_field(t, "deletes");
    st->gets = info_field(t, "gets");
    st->records_replayed = info_field(t, "records_replayed");
    st->compactions = info_field(t, "compactions");
    st->compaction_bytes_read = info_field(t, "compaction_bytes_read");
    st->compaction_bytes_written = info_field(t, "compaction_bytes_written");
    st->compaction_bytes_reclaimed = info_field(t, "compaction_bytes_reclaimed");
    st->last_compaction_ms = info_field(t, "last_compaction_ms");
    st->snapshot_loaded = info_field(t, "snapshot_loaded") != 0;
    st->read_only = info_field(t, "read_only") != 0;
    freeReplyObject(r);
    return 0;
}

int remote_snapshot(struct cli *cli)
{
    const char *argv[] = {"SAVE"};
    size_t argl[] = {4};
    redisReply *r = call(cli, 1, argv, argl);
    if (r == NULL)
        return CLI_REMOTE_ERROR;
    int rc = error_of(cli, r);
    freeReplyObject(r);
    return rc;
}

/* Waits until no compaction runs on the server; *ok is its outcome. */
static int wait_compaction(struct cli *cli, bool *ok)
{
    for (;;) {
        redisReply *r = NULL;
        int rc = info(cli, "persistence", &r);
        if (rc != 0)
            return rc;
        bool running = info_field(r->str, "aof_rewrite_in_progress") != 0;
        *ok = strstr(r->str, "aof_last_bgrewrite_status:ok") != NULL;
        freeReplyObject(r);
        if (!running)
            return 0;
        if (cli_interrupted) {
            set_error(cli, "%s", "interrupted (the compaction goes on in the server)");
            return CLI_REMOTE_ERROR;
        }
        struct timespec ts = {0, COMPACT_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int remote_compact(struct cli *cli)
{
    const char *argv[] = {"BGREWRITEAOF"};
    size_t argl[] = {12};
    bool ok = false;
    for (int attempt = 0; attempt < 2; attempt++) {
        redisReply *r = call(cli, 1, argv, argl);
        if (r == NULL)
            return CLI_REMOTE_ERROR;
        int rc = error_of(cli, r);
        bool busy = rc != 0 && strstr(cli->remote_error, "already in progress") != NULL;
        freeReplyObject(r);
        if (rc != 0 && !busy)
            return rc;
        /* One started by someone else: wait for it, then start ours. */
        rc = wait_compaction(cli, &ok);
        if (rc != 0)
            return rc;
        if (!busy)
            break;
    }
    if (!ok) {
        set_error(cli, "%s", "the compaction failed (see the server's log)");
        return CLI_REMOTE_ERROR;
    }
    return 0;
}
