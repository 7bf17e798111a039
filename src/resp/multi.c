/*
 * multi.c - MULTI, EXEC, DISCARD, WATCH and UNWATCH: a connection's
 * transaction state.
 *
 * Between MULTI and EXEC a command is checked (known, arity, allowed in a
 * transaction: it has a prog) and queued with a copy of its arguments;
 * one that is refused makes EXEC answer EXECABORT, as in Redis. EXEC runs
 * the queue as one atomic batch (write.c). WATCH records each key's state
 * (absent, or the CRC-32 of its value) as the connection sees it; EXEC's
 * batch then begins with a CHECK of each, so that if one changed before the
 * batch is sequenced nothing is written and EXEC answers a null array.
 * EXEC and DISCARD forget the watched keys, as UNWATCH does.
 */
#include <stdlib.h>
#include <string.h>

#include "server.h"

/* Bytes of arguments one transaction may queue. */
#define QUEUED_BYTES_MAX (1024u * 1024u * 1024u)

static void free_watched(struct resp_conn *conn)
{
    for (size_t i = 0; i < conn->n_watched; i++)
        free(conn->watched[i].key);
    free(conn->watched);
    conn->watched = NULL;
    conn->n_watched = 0;
}

void resp_multi_reset(struct resp_conn *conn)
{
    for (size_t i = 0; i < conn->n_queued; i++)
        free(conn->queued[i].argv);
    free(conn->queued);
    conn->queued = NULL;
    conn->n_queued = conn->queued_cap = conn->queued_bytes = 0;
    conn->multi = conn->multi_dirty = false;
    free_watched(conn);
}

void cmd_multi(struct resp_ctx *c)
{
    if (c->conn->multi) {
        resp_error(c->out, "ERR MULTI calls can not be nested");
        return;
    }
    c->conn->multi = true;
    c->conn->multi_dirty = false;
    resp_ok(c->out);
}

/* A refusal while queueing: its error, and EXEC will abort. */
static void refuse(struct resp_ctx *c, const char *msg)
{
    resp_error(c->out, msg);
    c->conn->multi_dirty = true;
}

void resp_multi_queue(struct resp_ctx *c)
{
    struct resp_conn *conn = c->conn;
    if (c->cmd->prog == NULL) {
        resp_errorf(c->out, "ERR '%s' is not allowed inside MULTI by this server", c->cmd->name);
        conn->multi_dirty = true;
        return;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < c->argc; i++)
        bytes += c->argl[i];
    if (bytes > QUEUED_BYTES_MAX - conn->queued_bytes) {
        refuse(c, "ERR the transaction is too large (1 GiB of queued arguments at most)");
        return;
    }
    if (conn->n_queued == conn->queued_cap) {
        size_t cap = conn->queued_cap ? conn->queued_cap * 2 : 8;
        struct resp_tx_cmd *grown = realloc(conn->queued, cap * sizeof(*grown));
        if (grown == NULL) {
            refuse(c, "ERR out of memory");
            return;
        }
        conn->queued = grown;
        conn->queued_cap = cap;
    }
    /* argv, argl and the bytes in one allocation, freed through argv. */
    char **argv = malloc(c->argc * (sizeof(char *) + sizeof(size_t)) + bytes + 1);
    if (argv == NULL) {
        refuse(c, "ERR out of memory");
        return;
    }
    size_t *argl = (size_t *)(void *)(argv + c->argc);
    char *data = (char *)(argl + c->argc);
    for (size_t i = 0; i < c->argc; i++) {
        memcpy(data, c->argv[i], c->argl[i]);
        argv[i] = data;
        argl[i] = c->argl[i];
        data += c->argl[i];
    }
    conn->queued[conn->n_queued++] =
        (struct resp_tx_cmd){.prog = c->cmd->prog, .argc = c->argc, .argv = argv, .argl = argl};
    conn->queued_bytes += bytes;
    resp_simple(c->out, "QUEUED");
}

void cmd_exec(struct resp_ctx *c)
{
    struct resp_conn *conn = c->conn;
    if (!conn->multi) {
        resp_error(c->out, "ERR EXEC without MULTI");
        return;
    }
    if (conn->multi_dirty) {
        resp_multi_reset(conn);
        resp_error(c->out, "EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    resp_run_exec(c);
}

void cmd_discard(struct resp_ctx *c)
{
    if (!c->conn->multi) {
        resp_error(c->out, "ERR DISCARD without MULTI");
        return;
    }
    resp_multi_reset(c->conn);
    resp_ok(c->out);
}

/* Records key's state now; false when it could not be read (after
 * replying with the error). */
static bool watch_key(struct resp_ctx *c, size_t i)
{
    struct resp_conn *conn = c->conn;
    if (c->argl[i] == 0 || c->argl[i] > KV_MAX_KEY_LEN)
        return true; /* no key of that length can exist, or change */
    void *val = NULL;
    size_t len = 0;
    uint32_t crc = 0;
    int rc = kv_get_crc(blob_kv(c->srv->app->store), c->argv[i], c->argl[i], &val, &len, &crc);
    kv_free(val);
    if (rc != 0 && rc != KV_ENOTFOUND) {
        resp_reply_kv_error(c->out, rc);
        return false;
    }
    struct resp_watch *grown = realloc(conn->watched, (conn->n_watched + 1) * sizeof(*grown));
    char *key = malloc(c->argl[i]);
    if (grown != NULL)
        conn->watched = grown;
    if (grown == NULL || key == NULL) {
        free(key);
        resp_error(c->out, "ERR out of memory");
        return false;
    }
    memcpy(key, c->argv[i], c->argl[i]);
    conn->watched[conn->n_watched++] =
        (struct resp_watch){.key = key, .len = c->argl[i], .present = rc == 0, .crc = crc};
    return true;
}

void cmd_watch(struct resp_ctx *c)
{
    if (c->conn->multi) {
        resp_error(c->out, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    for (size_t i = 1; i < c->argc; i++) {
        if (!watch_key(c, i))
            return;
    }
    resp_ok(c->out);
}

void cmd_unwatch(struct resp_ctx *c)
{
    free_watched(c->conn);
    resp_ok(c->out);
}

/* UNWATCH inside EXEC: Redis queues it, and it changes nothing there. */
void prog_unwatch(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    (void)argv;
    (void)argl;
    resp_ok(resp_tx_out(t));
}
