/*
 * commands.c - the command table, its lookup, and the dispatch of one
 * command: the checks every command goes through (known, arity, AUTH, in
 * this build), the order of its reply among the connection's pending ones,
 * and its count in the statistics.
 *
 * A command with a prog may be queued inside
 * MULTI: that is how it runs inside EXEC (write.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "repl.h"
#include "server.h"

/* clang-format off */
const struct resp_command resp_commands[] = {
    /* connection and server */
    {"ping", -1, CMD_NOAUTH | CMD_FAST, 0, 0, 0, cmd_ping, "connection", "Returns the server's liveliness response.", prog_ping},
    {"echo", 2, CMD_FAST, 0, 0, 0, cmd_echo, "connection", "Returns the given string.", prog_echo},
    {"quit", -1, CMD_NOAUTH | CMD_FAST | CMD_TXCTL, 0, 0, 0, cmd_quit, "connection", "Closes the connection.", NULL},
    {"hello", -1, CMD_NOAUTH | CMD_FAST, 0, 0, 0, cmd_hello, "connection", "Handshakes with the server.", NULL},
    {"auth", -2, CMD_NOAUTH | CMD_FAST, 0, 0, 0, cmd_auth, "connection", "Authenticates the connection.", NULL},
    {"select", 2, CMD_FAST, 0, 0, 0, cmd_select, "connection", "Changes the selected database (only 0 exists).", NULL},
    {"client", -2, 0, 0, 0, 0, cmd_client, "connection", "SETNAME, GETNAME, SETINFO, ID, LIST, INFO.", NULL},
    {"reset", 1, CMD_NOAUTH | CMD_FAST | CMD_TXCTL, 0, 0, 0, cmd_reset, "connection", "Resets the connection.", NULL},
    {"command", -1, 0, 0, 0, 0, cmd_command, "server", "Returns detailed information about all commands.", NULL},
    {"info", -1, 0, 0, 0, 0, cmd_info, "server", "Returns information and statistics about the server.", NULL},
    {"config", -2, CMD_ADMIN, 0, 0, 0, cmd_config, "server", "CONFIG GET: the values of settings.", NULL},
    {"dbsize", 1, CMD_READONLY | CMD_FAST, 0, 0, 0, cmd_dbsize, "server", "Returns the number of keys.", NULL},
    {"time", 1, CMD_FAST, 0, 0, 0, cmd_time, "server", "Returns the server time.", NULL},
    {"lastsave", 1, CMD_FAST, 0, 0, 0, cmd_lastsave, "server", "Returns the Unix time of the last index snapshot.", NULL},
    {"save", 1, CMD_ADMIN, 0, 0, 0, cmd_save, "server", "Saves the index snapshot.", NULL},
    {"bgsave", -1, CMD_ADMIN, 0, 0, 0, cmd_bgsave, "server", "Saves the index snapshot in the background.", NULL},
    {"bgrewriteaof", 1, CMD_ADMIN, 0, 0, 0, cmd_bgrewriteaof, "server", "Compacts the log in the background.", NULL},
    {"flushdb", -1, CMD_WRITE, 0, 0, 0, cmd_flushdb, "server", "Removes every key.", NULL},
    {"flushall", -1, CMD_WRITE, 0, 0, 0, cmd_flushdb, "server", "Removes every key.", NULL},
    /* strings */
    {"get", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, cmd_get, "string", "Returns the value of a key.", prog_get},
    {"set", -3, CMD_WRITE, 1, 1, 1, cmd_set, "string", "Sets the value of a key.", prog_set},
    {"mget", -2, CMD_READONLY | CMD_FAST, 1, -1, 1, cmd_mget, "string", "Returns the values of keys.", prog_mget},
    {"strlen", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, cmd_strlen, "string", "Returns the length of a value.", prog_strlen},
    {"getrange", 4, CMD_READONLY, 1, 1, 1, cmd_getrange, "string", "Returns a substring of a value.", prog_getrange},
    {"substr", 4, CMD_READONLY, 1, 1, 1, cmd_getrange, "string", "Returns a substring of a value.", prog_getrange},
    {"getex", -2, CMD_WRITE | CMD_RMW | CMD_FAST, 1, 1, 1, cmd_getex, "string", "Returns the value of a key and sets its expiry.", prog_getex},
    {"setnx", 3, CMD_WRITE, 1, 1, 1, cmd_setnx, "string", "Sets a key only when it is absent.", prog_setnx},
    {"setex", 4, CMD_WRITE, 1, 1, 1, cmd_setex, "string", "Sets a key with an expiry in seconds.", prog_setex},
    {"psetex", 4, CMD_WRITE, 1, 1, 1, cmd_setex, "string", "Sets a key with an expiry in milliseconds.", prog_setex},
    {"getset", 3, CMD_WRITE | CMD_RMW, 1, 1, 1, resp_run_program, "string", "Sets a key and returns its old value.", prog_getset},
    {"getdel", 2, CMD_WRITE | CMD_RMW, 1, 1, 1, resp_run_program, "string", "Returns a key's value and deletes it.", prog_getdel},
    {"mset", -3, CMD_WRITE, 1, -1, 2, cmd_mset, "string", "Sets several keys atomically.", prog_mset},
    {"msetnx", -3, CMD_WRITE, 1, -1, 2, cmd_msetnx, "string", "Sets several absent keys atomically.", prog_msetnx},
    {"incr", 2, CMD_WRITE | CMD_RMW | CMD_FAST, 1, 1, 1, resp_run_program, "string", "Increments a number by one.", prog_incr},
    {"incrby", 3, CMD_WRITE | CMD_RMW | CMD_FAST, 1, 1, 1, resp_run_program, "string", "Increments a number.", prog_incrby},
    {"decr", 2, CMD_WRITE | CMD_RMW | CMD_FAST, 1, 1, 1, resp_run_program, "string", "Decrements a number by one.", prog_decr},
    {"decrby", 3, CMD_WRITE | CMD_RMW | CMD_FAST, 1, 1, 1, resp_run_program, "string", "Decrements a number.", prog_decrby},
    {"append", 3, CMD_WRITE | CMD_RMW, 1, 1, 1, resp_run_program, "string", "Appends to a value.", prog_append},
    /* keys */
    {"del", -2, CMD_WRITE, 1, -1, 1, cmd_del, "generic", "Deletes keys.", prog_del},
    {"unlink", -2, CMD_WRITE | CMD_FAST, 1, -1, 1, cmd_del, "generic", "Deletes keys.", prog_del},
    {"exists", -2, CMD_READONLY | CMD_FAST, 1, -1, 1, cmd_exists, "generic", "Counts the keys that exist.", prog_exists},
    {"type", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, cmd_type, "generic", "Returns the type of a key.", prog_type},
    {"ttl", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, cmd_ttl, "generic", "Returns the time to live of a key, in seconds.", prog_ttl},
    {"pttl", 2, CMD_READONLY | CMD_FAST, 1, 1, 1, cmd_ttl, "generic", "Returns the time to live of a key, in milliseconds.", prog_ttl},
    {"persist", 2, CMD_WRITE | CMD_RMW | CMD_FAST, 1, 1, 1, resp_run_program, "generic", "Removes the expiry of a key.", prog_persist},
    {"expire", -3, CMD_WRITE | CMD_RMW | CMD_FAST, 1, 1, 1, resp_run_program, "generic", "Sets a key's expiry in seconds.", prog_expire},
    {"pexpire", -3, CMD_WRITE | CMD_RMW | CMD_FAST, 1, 1, 1, resp_run_program, "generic", "Sets a key's expiry in milliseconds.", prog_expire},
    {"expireat", -3, CMD_WRITE | CMD_RMW | CMD_FAST, 1, 1, 1, resp_run_program, "generic", "Sets a key's expiry as a Unix time.", prog_expire},
    {"pexpireat", -3, CMD_WRITE | CMD_RMW | CMD_FAST, 1, 1, 1, resp_run_program, "generic", "Sets a key's expiry as a Unix time in milliseconds.", prog_expire},
    {"scan", -2, CMD_READONLY, 0, 0, 0, cmd_scan, "generic", "Iterates over the keys.", NULL},
    {"keys", 2, CMD_READONLY, 0, 0, 0, cmd_keys, "generic", "Returns the keys that match a pattern.", NULL},
    {"randomkey", 1, CMD_READONLY, 0, 0, 0, cmd_randomkey, "generic", "Returns a random key.", NULL},
    {"rename", 3, CMD_WRITE | CMD_RMW, 1, 2, 1, resp_run_program, "generic", "Renames a key.", prog_rename},
    /* transactions */
    {"multi", 1, CMD_FAST | CMD_TXCTL, 0, 0, 0, cmd_multi, "transactions", "Starts a transaction.", NULL},
    {"exec", 1, CMD_TXCTL, 0, 0, 0, cmd_exec, "transactions", "Runs a transaction as one atomic batch.", NULL},
    {"discard", 1, CMD_FAST | CMD_TXCTL, 0, 0, 0, cmd_discard, "transactions", "Discards a transaction.", NULL},
    {"watch", -2, CMD_FAST | CMD_TXCTL, 1, -1, 1, cmd_watch, "transactions", "Watches keys for a transaction.", NULL},
    {"unwatch", 1, CMD_FAST, 0, 0, 0, cmd_unwatch, "transactions", "Forgets watched keys.", prog_unwatch},
};
/* clang-format on */
const size_t resp_n_commands = sizeof(resp_commands) / sizeof(resp_commands[0]);

/* ---- lookup: a sorted index, built once */

static size_t sorted[sizeof(resp_commands) / sizeof(resp_commands[0])];
static pthread_once_t sorted_once = PTHREAD_ONCE_INIT;

static int by_name(const void *a, const void *b)
{
    return strcmp(resp_commands[*(const size_t *)a].name, resp_commands[*(const size_t *)b].name);
}

static void sort_names(void)
{
    for (size_t i = 0; i < resp_n_commands; i++)
        sorted[i] = i;
    qsort(sorted, resp_n_commands, sizeof(sorted[0]), by_name);
}

const struct resp_command *resp_command_find(const char *name, size_t len)
{
    char lower[24];
    if (len == 0 || len >= sizeof(lower))
        return NULL;
    for (size_t i = 0; i < len; i++)
        lower[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    lower[len] = '\0';
    pthread_once(&sorted_once, sort_names);
    size_t lo = 0, hi = resp_n_commands;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(lower, resp_commands[sorted[mid]].name);
        if (c == 0)
            return &resp_commands[sorted[mid]];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ---- helpers */

bool resp_arg_is(const struct resp_ctx *c, size_t i, const char *word)
{
    size_t n = strlen(word);
    return i < c->argc && c->argl[i] == n && strncasecmp(c->argv[i], word, n) == 0;
}

bool resp_parse_ll(const char *s, size_t len, long long *out)
{
    if (len == 0 || len > 20)
        return false;
    char tmp[24];
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end = NULL;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno != 0 || end != tmp + len || tmp[0] == ' ' || tmp[0] == '+' ||
        (tmp[0] == '0' && len > 1) || (tmp[0] == '-' && (len == 1 || tmp[1] == '0')))
        return false;
    *out = v;
    return true;
}

bool resp_arg_ll(const struct resp_ctx *c, size_t i, long long *out)
{
    return i < c->argc && resp_parse_ll(c->argv[i], c->argl[i], out);
}

void resp_reply_kv_error(struct growbuf *out, int rc)
{
    switch (rc) {
    case KV_EINVAL:
        resp_error(out, "ERR invalid key: keys are 1 to 65535 bytes");
        break;
    case KV_ETOOBIG:
        resp_error(out, "ERR value too large");
        break;
    case KV_ENOSPC:
        resp_error(out, "ERR disk full: the write was not stored");
        break;
    case KV_EREADONLY:
        resp_error(out, "READONLY the store is read-only after a failed fsync");
        break;
    case KV_EBUSY:
        resp_error(out, "ERR the server is shutting down");
        break;
    default:
        resp_errorf(out, "ERR %s", kv_strerror(rc));
        break;
    }
}

void resp_reply_arity(struct resp_ctx *c)
{
    resp_errorf(c->out, "ERR wrong number of arguments for '%s' command", c->cmd->name);
}

void resp_reply_syntax(struct resp_ctx *c)
{
    resp_error(c->out, "ERR syntax error");
}

/* Redis's reply to an unknown command: its name and the start of its
 * arguments, quoted. */
static void reply_unknown(struct growbuf *out, size_t argc, char **argv, size_t *argl)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "ERR unknown command '%.*s', with args beginning with: ",
                     (int)(argl[0] > 128 ? 128 : argl[0]), argv[0]);
    size_t used = n > 0 ? (size_t)n : 0;
    for (size_t i = 1; i < argc && used + 2 < sizeof(msg); i++) {
        n = snprintf(msg + used, sizeof(msg) - used, "'%.*s' ",
                     (int)(argl[i] > 128 ? 128 : argl[i]), argv[i]);
        if (n < 0)
            break;
        used += (size_t)n < sizeof(msg) - used ? (size_t)n : sizeof(msg) - used - 1;
    }
    /* Arguments are client bytes: keep the line printable. */
    for (size_t i = 0; i < used; i++)
        if ((unsigned char)msg[i] < 0x20)
            msg[i] = ' ';
    resp_error(out, msg);
}

static bool arity_ok(const struct resp_command *cmd, size_t argc)
{
    if (cmd->arity >= 0)
        return argc == (size_t)cmd->arity;
    return argc >= (size_t)-cmd->arity;
}

/* The checks before a command runs; false when one failed and replied. */
static bool admit(struct resp_ctx *c, size_t argc, char **argv, size_t *argl)
{
    const struct resp_command *cmd = c->cmd;
    if (cmd == NULL) {
        reply_unknown(c->out, argc, argv, argl);
        return false;
    }
    if (!arity_ok(cmd, argc)) {
        resp_reply_arity(c);
        return false;
    }
    if (!c->conn->authed && !(cmd->flags & CMD_NOAUTH)) {
        resp_error(c->out, "NOAUTH Authentication required.");
        return false;
    }
    if ((cmd->flags & CMD_WRITE) && !repl_writable(c->srv->app->repl)) {
        resp_errorf(c->out,
                    "READONLY You can't write against a read only replica. Its primary "
                    "is %s",
                    repl_primary(c->srv->app->repl));
        return false;
    }
    return true;
}

bool resp_dispatch(struct resp_conn *conn, size_t argc, char **argv, size_t *argl)
{
    struct resp_server *srv = conn->loop->srv;
    const struct resp_command *cmd = resp_command_find(argv[0], argl[0]);
    /* A command other than a write waits until the connection's pending
     * writes are done: it may read what they wrote. */
    if (conn->n_pending > 0 && (cmd == NULL || !(cmd->flags & CMD_WRITE) || (cmd->flags & CMD_RMW)))
        return false;
    size_t index = cmd != NULL ? (size_t)(cmd - resp_commands) : VS_CMD_MAX;
    struct growbuf queued = {0};
    bool behind = conn->n_pending > 0;
    struct resp_ctx c = {.srv = srv,
                         .conn = conn,
                         .cmd = cmd,
                         .cmd_index = index,
                         .argc = argc,
                         .argv = argv,
                         .argl = argl,
                         .out = behind ? &queued : &conn->out,
                         .proto = conn->proto};
    size_t before = c.out->len;
    size_t pending_before = conn->n_pending;
    if (cmd != NULL)
        atomic_store_explicit(&conn->last_cmd, (unsigned)index + 1, memory_order_relaxed);
    /* admit refuses an unknown command (cmd NULL) with its error. */
    if (!admit(&c, argc, argv, argl) || cmd == NULL) {
        if (conn->multi)
            conn->multi_dirty = true; /* as in Redis: EXEC will abort */
    } else if (conn->multi && !(cmd->flags & CMD_TXCTL)) {
        resp_multi_queue(&c);
    } else {
        cmd->fn(&c);
    }
    bool deferred = conn->n_pending > pending_before;
    if (behind) {
        if (queued.len > 0)
            resp_queue_answered(conn, &queued, index);
        else
            growbuf_free(&queued);
    } else if (!deferred && cmd != NULL) {
        bool failed = c.out->len > before && c.out->data[before] == '-';
        vs_cmd_count(conn->loop->stats, index, (uv_hrtime() - conn->cmd_start_ns) / 1000u, failed);
    }
    return true;
}
