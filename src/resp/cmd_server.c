/*
 * cmd_server.c - the connection and server commands: PING ECHO QUIT HELLO
 * AUTH SELECT CLIENT RESET COMMAND CONFIG DBSIZE TIME LASTSAVE SAVE BGSAVE
 * BGREWRITEAOF FLUSHDB/FLUSHALL. Replies and errors are Redis's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "server.h"

/* The Redis version whose commands and replies this front end follows:
 * clients read it (INFO redis_version, HELLO version) to pick features. */
#define REDIS_COMPAT_VERSION "7.0.0"

void cmd_ping(struct resp_ctx *c)
{
    if (c->argc > 2) {
        resp_reply_arity(c);
        return;
    }
    if (c->argc == 2)
        resp_bulk(c->out, c->argv[1], c->argl[1]);
    else
        resp_simple(c->out, "PONG");
}

void cmd_echo(struct resp_ctx *c)
{
    resp_bulk(c->out, c->argv[1], c->argl[1]);
}

void cmd_quit(struct resp_ctx *c)
{
    resp_ok(c->out);
    c->conn->close_after_write = true;
}

/* Compares the password with AUTH_TOKEN in time that does not depend on
 * where they differ. */
static bool token_matches(const struct resp_ctx *c, const char *pass, size_t len)
{
    const char *token = c->srv->cfg->auth_token;
    size_t tlen = strlen(token);
    unsigned char diff = (unsigned char)(len != tlen);
    for (size_t i = 0; i < tlen; i++)
        diff |= (unsigned char)(token[i] ^ (i < len ? pass[i] : 0));
    return diff == 0;
}

static void set_authed(struct resp_conn *conn, bool authed)
{
    conn->authed = authed;
}

void cmd_auth(struct resp_ctx *c)
{
    if (c->argc > 3) {
        resp_reply_syntax(c);
        return;
    }
    if (c->srv->cfg->auth_token[0] == '\0') {
        resp_error(c->out, "ERR AUTH <password> called without any password configured for the "
                           "default user. Are you sure your configuration is correct?");
        return;
    }
    size_t i = c->argc - 1; /* AUTH pass, or AUTH user pass: any user name */
    if (!token_matches(c, c->argv[i], c->argl[i])) {
        resp_error(c->out, "WRONGPASS invalid username-password pair or user is disabled.");
        return;
    }
    set_authed(c->conn, true);
    resp_ok(c->out);
}

static void set_name(struct resp_conn *conn, char **field, const char *s, size_t len)
{
    char *copy = NULL;
    if (len > 0) {
        copy = malloc(len + 1);
        if (copy == NULL)
            return;
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    pthread_mutex_lock(&conn->loop->lock);
    free(*field);
    *field = copy;
    pthread_mutex_unlock(&conn->loop->lock);
}

static bool name_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '!' || s[i] > '~')
            return false;
    return true;
}

void cmd_hello(struct resp_ctx *c)
{
    struct resp_conn *conn = c->conn;
    int proto = conn->proto;
    size_t i = 1;
    if (c->argc >= 2) {
        long long v = 0;
        if (!resp_arg_ll(c, 1, &v)) {
            resp_error(c->out, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (v != 2 && v != 3) {
            resp_error(c->out, "NOPROTO unsupported protocol version");
            return;
        }
        proto = (int)v;
        i = 2;
    }
    bool authed = conn->authed;
    const char *name = NULL;
    size_t name_len = 0;
    for (; i < c->argc; i++) {
        if (resp_arg_is(c, i, "AUTH") && i + 2 < c->argc) {
            if (c->srv->cfg->auth_token[0] != '\0' &&
                !token_matches(c, c->argv[i + 2], c->argl[i + 2])) {
                resp_error(c->out, "WRONGPASS invalid username-password pair or user is disabled.");
                return;
            }
            authed = true;
            i += 2;
        } else if (resp_arg_is(c, i, "SETNAME") && i + 1 < c->argc) {
            name = c->argv[i + 1];
            name_len = c->argl[i + 1];
            if (!name_ok(name, name_len)) {
                resp_error(c->out, "ERR Client names cannot contain spaces, newlines or special "
                                   "characters.");
                return;
            }
            i++;
        } else {
            resp_errorf(c->out, "ERR Syntax error in HELLO option '%.64s'", c->argv[i]);
            return;
        }
    }
    if (!authed) {
        resp_error(c->out, "NOAUTH HELLO must be called with the client already authenticated, "
                           "otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
                           "authenticate the client and select the RESP protocol version at the "
                           "same time");
        return;
    }
    set_authed(conn, true);
    if (name != NULL)
        set_name(conn, &conn->name, name, name_len);
    pthread_mutex_lock(&conn->loop->lock);
    conn->proto = proto;
    pthread_mutex_unlock(&conn->loop->lock);
    c->proto = proto;
    resp_map(c->out, proto, 7);
    resp_bulk_str(c->out, "server");
    resp_bulk_str(c->out, "redis");
    resp_bulk_str(c->out, "version");
    resp_bulk_str(c->out, REDIS_COMPAT_VERSION);
    resp_bulk_str(c->out, "proto");
    resp_int(c->out, proto);
    resp_bulk_str(c->out, "id");
    resp_int(c->out, (long long)conn->id);
    resp_bulk_str(c->out, "mode");
    resp_bulk_str(c->out, "standalone");
    resp_bulk_str(c->out, "role");
    resp_bulk_str(c->out, "master");
    resp_bulk_str(c->out, "modules");
    resp_array(c->out, 0);
}

void cmd_reset(struct resp_ctx *c)
{
    struct resp_conn *conn = c->conn;
    set_name(conn, &conn->name, NULL, 0);
    pthread_mutex_lock(&conn->loop->lock);
    conn->proto = RESP2;
    pthread_mutex_unlock(&conn->loop->lock);
    set_authed(conn, c->srv->cfg->auth_token[0] == '\0');
    resp_multi_reset(conn);
    resp_simple(c->out, "RESET");
}

void cmd_select(struct resp_ctx *c)
{
    long long db = 0;
    if (!resp_arg_ll(c, 1, &db))
        resp_error(c->out, "ERR value is not an integer or out of range");
    else if (db != 0)
        resp_error(c->out, "ERR DB index is out of range");
    else
        resp_ok(c->out);
}

/* ---- CLIENT */

/* One line of CLIENT LIST for conn; the caller holds conn's loop lock. */
static void client_line(struct growbuf *b, const struct resp_conn *conn, uint64_t now_ms)
{
    char line[1024];
    unsigned last = atomic_load_explicit(&conn->last_cmd, memory_order_relaxed);
    uint64_t active = atomic_load_explicit(&conn->last_active_ms, memory_order_relaxed);
    size_t qbuf = atomic_load_explicit(&conn->view_qbuf, memory_order_relaxed);
    size_t qbuf_free = atomic_load_explicit(&conn->view_qbuf_free, memory_order_relaxed);
    size_t omem = atomic_load_explicit(&conn->view_omem, memory_order_relaxed);
    int n = snprintf(
        line, sizeof(line),
        "id=%llu addr=%s laddr=%s fd=-1 name=%s age=%llu idle=%llu flags=N db=0 sub=0 psub=0 "
        "ssub=0 multi=%ld qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 rbs=%zu rbp=0 obl=0 "
        "oll=%zu omem=%zu tot-mem=%zu events=r cmd=%s user=default redir=-1 resp=%d "
        "lib-name=%s lib-ver=%s\n",
        (unsigned long long)conn->id, conn->addr, conn->laddr, conn->name ? conn->name : "",
        (unsigned long long)((now_ms - conn->created_ms) / 1000u),
        (unsigned long long)((now_ms > active ? now_ms - active : 0) / 1000u),
        atomic_load_explicit(&conn->view_multi, memory_order_relaxed), qbuf, qbuf_free,
        qbuf + qbuf_free, atomic_load_explicit(&conn->view_pending, memory_order_relaxed), omem,
        qbuf + qbuf_free + omem, last > 0 ? resp_commands[last - 1].name : "NULL", conn->proto,
        conn->lib_name ? conn->lib_name : "", conn->lib_ver ? conn->lib_ver : "");
    if (n > 0)
        growbuf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void client_list(struct resp_ctx *c)
{
    struct growbuf text = {0};
    uint64_t now = resp_mono_ms();
    /* Every loop's connections, each list read under its loop's lock. The
     * numbers that the owning thread changes without the lock are a
     * moment's picture. */
    for (unsigned i = 0; i < c->srv->n_loops; i++) {
        struct resp_loop *loop = &c->srv->loops[i];
        pthread_mutex_lock(&loop->lock);
        for (const struct resp_conn *conn = loop->conns; conn != NULL; conn = conn->next)
            client_line(&text, conn, now);
        pthread_mutex_unlock(&loop->lock);
    }
    resp_verbatim(c->out, c->proto, text.data ? text.data : "", text.len);
    growbuf_free(&text);
}

void cmd_client(struct resp_ctx *c)
{
    struct resp_conn *conn = c->conn;
    if (resp_arg_is(c, 1, "ID") && c->argc == 2) {
        resp_int(c->out, (long long)conn->id);
    } else if (resp_arg_is(c, 1, "GETNAME") && c->argc == 2) {
        if (conn->name != NULL)
            resp_bulk_str(c->out, conn->name);
        else
            resp_null(c->out, c->proto);
    } else if (resp_arg_is(c, 1, "SETNAME") && c->argc == 3) {
        if (!name_ok(c->argv[2], c->argl[2])) {
            resp_error(c->out,
                       "ERR Client names cannot contain spaces, newlines or special characters.");
            return;
        }
        set_name(conn, &conn->name, c->argv[2], c->argl[2]);
        resp_ok(c->out);
    } else if (resp_arg_is(c, 1, "SETINFO") && c->argc == 4) {
        if (!name_ok(c->argv[3], c->argl[3])) {
            resp_errorf(c->out, "ERR %.*s cannot contain spaces, newlines or special characters.",
                        (int)c->argl[2], c->argv[2]);
        } else if (resp_arg_is(c, 2, "LIB-NAME")) {
            set_name(conn, &conn->lib_name, c->argv[3], c->argl[3]);
            resp_ok(c->out);
        } else if (resp_arg_is(c, 2, "LIB-VER")) {
            set_name(conn, &conn->lib_ver, c->argv[3], c->argl[3]);
            resp_ok(c->out);
        } else {
            resp_errorf(c->out, "ERR Unrecognized option '%.*s'", (int)c->argl[2], c->argv[2]);
        }
    } else if (resp_arg_is(c, 1, "LIST")) {
        client_list(c);
    } else if (resp_arg_is(c, 1, "INFO") && c->argc == 2) {
        struct growbuf text = {0};
        pthread_mutex_lock(&conn->loop->lock);
        client_line(&text, conn, resp_mono_ms());
        pthread_mutex_unlock(&conn->loop->lock);
        resp_verbatim(c->out, c->proto, text.data ? text.data : "", text.len);
        growbuf_free(&text);
    } else if ((resp_arg_is(c, 1, "NO-EVICT") || resp_arg_is(c, 1, "NO-TOUCH")) && c->argc == 3) {
        resp_ok(c->out);
    } else {
        resp_errorf(c->out,
                    "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                    "Try CLIENT HELP.",
                    (int)(c->argl[1] > 64 ? 64 : c->argl[1]), c->argv[1]);
    }
}

/* ---- COMMAND */

static void command_flags(struct growbuf *b, int proto, unsigned flags)
{
    const char *names[5];
    size_t n = 0;
    if (flags & CMD_WRITE)
        names[n++] = "write";
    if (flags & CMD_READONLY)
        names[n++] = "readonly";
    if (flags & CMD_ADMIN)
        names[n++] = "admin";
    if (flags & CMD_FAST)
        names[n++] = "fast";
    if (flags & CMD_NOAUTH)
        names[n++] = "no_auth";
    resp_set(b, proto, n);
    for (size_t i = 0; i < n; i++)
        resp_simple(b, names[i]);
}

/* Redis 7's ten fields: name, arity, flags, first key, last key, step, ACL
 * categories, tips, key specifications, subcommands. */
static void command_info(struct growbuf *b, int proto, const struct resp_command *cmd)
{
    resp_array(b, 10);
    resp_bulk_str(b, cmd->name);
    resp_int(b, cmd->arity);
    command_flags(b, proto, cmd->flags);
    resp_int(b, cmd->first_key);
    resp_int(b, cmd->last_key);
    resp_int(b, cmd->key_step);
    resp_set(b, proto, 0);
    resp_set(b, proto, 0);
    resp_array(b, 0);
    resp_array(b, 0);
}

static void command_docs_one(struct growbuf *b, int proto, const struct resp_command *cmd)
{
    resp_bulk_str(b, cmd->name);
    resp_map(b, proto, 3);
    resp_bulk_str(b, "summary");
    resp_bulk_str(b, cmd->summary);
    resp_bulk_str(b, "since");
    resp_bulk_str(b, "1.0.0");
    resp_bulk_str(b, "group");
    resp_bulk_str(b, cmd->group);
}

static void command_docs(struct resp_ctx *c)
{
    const struct resp_command *found[VS_CMD_MAX];
    size_t n = 0;
    if (c->argc == 2) {
        for (size_t i = 0; i < resp_n_commands; i++)
            found[n++] = &resp_commands[i];
    } else {
        for (size_t i = 2; i < c->argc && n < VS_CMD_MAX; i++) {
            const struct resp_command *cmd = resp_command_find(c->argv[i], c->argl[i]);
            if (cmd != NULL)
                found[n++] = cmd;
        }
    }
    resp_map(c->out, c->proto, n);
    for (size_t i = 0; i < n; i++)
        command_docs_one(c->out, c->proto, found[i]);
}

void cmd_command(struct resp_ctx *c)
{
    if (c->argc == 1) {
        resp_array(c->out, resp_n_commands);
        for (size_t i = 0; i < resp_n_commands; i++)
            command_info(c->out, c->proto, &resp_commands[i]);
    } else if (resp_arg_is(c, 1, "COUNT") && c->argc == 2) {
        resp_int(c->out, (long long)resp_n_commands);
    } else if (resp_arg_is(c, 1, "DOCS")) {
        command_docs(c);
    } else if (resp_arg_is(c, 1, "INFO")) {
        if (c->argc == 2) {
            resp_array(c->out, resp_n_commands);
            for (size_t i = 0; i < resp_n_commands; i++)
                command_info(c->out, c->proto, &resp_commands[i]);
            return;
        }
        resp_array(c->out, c->argc - 2);
        for (size_t i = 2; i < c->argc; i++) {
            const struct resp_command *cmd = resp_command_find(c->argv[i], c->argl[i]);
            if (cmd != NULL)
                command_info(c->out, c->proto, cmd);
            else
                resp_null_array(c->out, c->proto);
        }
    } else if (resp_arg_is(c, 1, "LIST") && c->argc == 2) {
        resp_array(c->out, resp_n_commands);
        for (size_t i = 0; i < resp_n_commands; i++)
            resp_bulk_str(c->out, resp_commands[i].name);
    } else {
        resp_errorf(c->out,
                    "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                    "Try COMMAND HELP.",
                    (int)(c->argl[1] > 64 ? 64 : c->argl[1]), c->argv[1]);
    }
}

/* ---- CONFIG GET */

struct config_param {
    const char *name;
    char value[VS_HOST_MAX + 1];
};

static size_t config_params(const struct resp_server *srv, struct config_param *p)
{
    const struct vs_config *cfg = srv->cfg;
    size_t n = 0;
    static const char *const fsync_names[] = {"always", "everysec", "no"};
    p[n] = (struct config_param){"maxclients", ""};
    snprintf(p[n++].value, sizeof(p[0].value), "%u", cfg->max_connections);
    p[n] = (struct config_param){"timeout", ""};
    snprintf(p[n++].value, sizeof(p[0].value), "%u", cfg->resp_idle_timeout_secs);
    p[n] = (struct config_param){"appendonly", "yes"};
    n++;
    p[n] = (struct config_param){"appendfsync", ""};
    snprintf(p[n++].value, sizeof(p[0].value), "%s",
             cfg->sync_mode <= VS_SYNC_NONE ? fsync_names[cfg->sync_mode] : "always");
    p[n] = (struct config_param){"save", ""};
    n++;
    p[n] = (struct config_param){"databases", "1"};
    n++;
    p[n] = (struct config_param){"port", ""};
    snprintf(p[n++].value, sizeof(p[0].value), "%u", srv->port);
    p[n] = (struct config_param){"bind", ""};
    snprintf(p[n++].value, sizeof(p[0].value), "%s", cfg->host);
    p[n] = (struct config_param){"proto-max-bulk-len", ""};
    snprintf(p[n++].value, sizeof(p[0].value), "%llu", (unsigned long long)srv->max_bulk);
    p[n] = (struct config_param){"client-query-buffer-limit", ""};
    snprintf(p[n++].value, sizeof(p[0].value), "%llu", (unsigned long long)srv->query_limit);
    p[n] = (struct config_param){"maxmemory", "0"};
    n++;
    p[n] = (struct config_param){"io-threads", ""};
    snprintf(p[n++].value, sizeof(p[0].value), "%u", srv->n_loops);
    return n;
}

void cmd_config(struct resp_ctx *c)
{
    if (!resp_arg_is(c, 1, "GET")) {
        if (resp_arg_is(c, 1, "SET") || resp_arg_is(c, 1, "REWRITE") ||
            resp_arg_is(c, 1, "RESETSTAT"))
            resp_errorf(c->out,
                        "ERR CONFIG %.*s is not supported: volume-server takes its settings "
                        "from its environment and flags",
                        (int)c->argl[1], c->argv[1]);
        else
            resp_errorf(c->out, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.",
                        (int)(c->argl[1] > 64 ? 64 : c->argl[1]), c->argv[1]);
        return;
    }
    if (c->argc < 3) {
        resp_errorf(c->out, "ERR wrong number of arguments for 'config|get' command");
        return;
    }
    struct config_param params[16];
    size_t n = config_params(c->srv, params);
    bool match[16] = {false};
    size_t matched = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t a = 2; a < c->argc && !match[i]; a++) {
            if (resp_glob_match(c->argv[a], c->argl[a], params[i].name, strlen(params[i].name),
                                true)) {
                match[i] = true;
                matched++;
            }
        }
    }
    resp_map(c->out, c->proto, matched);
    for (size_t i = 0; i < n; i++) {
        if (match[i]) {
            resp_bulk_str(c->out, params[i].name);
            resp_bulk_str(c->out, params[i].value);
        }
    }
}

/* ---- the store as a whole */

void cmd_dbsize(struct resp_ctx *c)
{
    kv_stats st;
    int rc = kv_get_stats(blob_kv(c->srv->app->store), &st);
    if (rc != 0)
        resp_reply_kv_error(c->out, rc);
    else
        resp_int(c->out, (long long)st.keys);
}

void cmd_time(struct resp_ctx *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    resp_array(c->out, 2);
    resp_bulk_u64(c->out, (uint64_t)ts.tv_sec);
    resp_bulk_u64(c->out, (uint64_t)ts.tv_nsec / 1000u);
}

void cmd_lastsave(struct resp_ctx *c)
{
    resp_int(c->out, (long long)atomic_load(&c->srv->last_save_unix));
}

static int save_snapshot(struct resp_server *srv)
{
    int rc = kv_save_snapshot(blob_kv(srv->app->store));
    atomic_store(&srv->last_save_ok, rc == 0);
    if (rc == 0) {
        atomic_store(&srv->last_save_unix, resp_unix_ms() / 1000u);
        atomic_store(&srv->changes_since_save, 0);
    } else {
        vs_log(VS_LOG_WARN, "resp: saving the index snapshot: %s", kv_strerror(rc));
    }
    return rc;
}

static void run_save(struct resp_pending *p)
{
    int rc = save_snapshot(p->srv);
    if (rc != 0)
        resp_reply_kv_error(&p->reply, rc);
    else
        resp_ok(&p->reply);
}

void cmd_save(struct resp_ctx *c)
{
    resp_defer(c, run_save);
}

static void run_bgsave(struct vs_job *job)
{
    struct resp_server *srv =
        (struct resp_server *)(void *)((char *)job - offsetof(struct resp_server, bgsave_job));
    save_snapshot(srv);
    atomic_store(&srv->bgsave_running, false);
}

void cmd_bgsave(struct resp_ctx *c)
{
    struct resp_server *srv = c->srv;
    if (c->argc > 2 || (c->argc == 2 && !resp_arg_is(c, 1, "SCHEDULE"))) {
        resp_reply_syntax(c);
        return;
    }
    if (atomic_exchange(&srv->bgsave_running, true)) {
        resp_error(c->out, "ERR Background save already in progress");
        return;
    }
    srv->bgsave_job.run = run_bgsave;
    if (vs_pool_submit(srv->pool, &srv->bgsave_job) != 0) {
        atomic_store(&srv->bgsave_running, false);
        resp_error(c->out, "ERR the server is shutting down");
        return;
    }
    resp_simple(c->out, "Background saving started");
}

static void run_rewrite(struct vs_job *job)
{
    struct resp_server *srv =
        (struct resp_server *)(void *)((char *)job - offsetof(struct resp_server, rewrite_job));
    int rc = kv_compact(blob_kv(srv->app->store));
    atomic_store(&srv->last_rewrite_ok, rc == 0);
    if (rc != 0)
        vs_log(VS_LOG_WARN, "resp: BGREWRITEAOF: compaction failed: %s", kv_strerror(rc));
    atomic_store(&srv->rewrite_running, false);
}

void cmd_bgrewriteaof(struct resp_ctx *c)
{
    struct resp_server *srv = c->srv;
    if (atomic_exchange(&srv->rewrite_running, true)) {
        resp_error(c->out, "ERR Background append only file rewriting already in progress");
        return;
    }
    srv->rewrite_job.run = run_rewrite;
    if (vs_pool_submit(srv->pool, &srv->rewrite_job) != 0) {
        atomic_store(&srv->rewrite_running, false);
        resp_error(c->out, "ERR the server is shutting down");
        return;
    }
    resp_simple(c->out, "Background append only file rewriting started");
}

/* FLUSHDB: every key deleted, a page of keys at a time, each page
 * starting after the last key of the one before. */
struct flush_page {
    size_t n;
    char **keys;
    size_t *lens;
};

static int collect_key(const void *key, size_t len, void *ctx)
{
    struct flush_page *page = ctx;
    char *copy = malloc(len);
    if (copy == NULL)
        return KV_ENOMEM;
    memcpy(copy, key, len);
    page->keys[page->n] = copy;
    page->lens[page->n++] = len;
    return 0;
}

#define FLUSH_PAGE 1024u

static void run_flush(struct resp_pending *p)
{
    kv_store *kv = blob_kv(p->srv->app->store);
    char *keys[FLUSH_PAGE];
    size_t lens[FLUSH_PAGE];
    char *after = NULL;
    size_t after_len = 0;
    int rc = 0;
    for (;;) {
        struct flush_page page = {0, keys, lens};
        rc = kv_list(kv, NULL, 0, after, after_len, FLUSH_PAGE, collect_key, &page);
        size_t deleted = 0;
        int drc =
            blob_delete_many(p->srv->app->store, (const void *const *)keys, lens, page.n, &deleted);
        if (drc != 0 && rc == 0)
            rc = drc;
        free(after);
        after = page.n > 0 ? keys[page.n - 1] : NULL;
        after_len = page.n > 0 ? lens[page.n - 1] : 0;
        for (size_t i = 0; i + 1 < page.n; i++)
            free(keys[i]);
        if (rc != 0 || page.n < FLUSH_PAGE)
            break;
    }
    free(after);
    atomic_fetch_add(&p->srv->changes_since_save, 1);
    if (rc != 0)
        resp_reply_kv_error(&p->reply, rc);
    else
        resp_ok(&p->reply);
}

void cmd_flushdb(struct resp_ctx *c)
{
    if (c->argc > 2 ||
        (c->argc == 2 && !resp_arg_is(c, 1, "ASYNC") && !resp_arg_is(c, 1, "SYNC"))) {
        resp_reply_syntax(c);
        return;
    }
    resp_defer(c, run_flush);
}
