/*
 * cmd_strings.c - the string commands that read before they write, or
 * write several keys at once: SETNX GETSET GETDEL INCR INCRBY DECR DECRBY
 * APPEND MSET MSETNX RENAME, and PING and ECHO as they run inside EXEC.
 *
 * SETNX, MSET and MSETNX are blind batches: their ops come from the
 * arguments, MSETNX with KV_IF_ABSENT on every key, so the engine decides
 * them atomically. The others are programs (write.c): they read the key
 * through the transaction's view, compute, and write; the batch carries the
 * condition that what was read is still there (KV_IF_CRC of the value, or
 * KV_IF_ABSENT), and a conflict runs them again. The same prog_ functions
 * run them inside EXEC.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static void count_changes(struct resp_pending *p, uint64_t n)
{
    atomic_fetch_add_explicit(&p->srv->changes_since_save, n, memory_order_relaxed);
}

static bool keys_valid(const struct resp_ctx *c, size_t first, size_t step)
{
    for (size_t i = first; i < c->argc; i += step) {
        if (c->argl[i] == 0 || c->argl[i] > KV_MAX_KEY_LEN)
            return false;
    }
    return true;
}

/* A blind batch of PUTs of the key-value pairs from argv[1], each with
 * cond, and finish to reply. */
static void put_pairs(struct resp_ctx *c, kv_cond cond, void (*finish)(struct resp_pending *, int))
{
    if ((c->argc - 1) % 2 != 0) {
        resp_reply_arity(c);
        return;
    }
    if (!keys_valid(c, 1, 2)) {
        resp_reply_kv_error(c->out, KV_EINVAL);
        return;
    }
    size_t n = (c->argc - 1) / 2;
    struct resp_pending *p = resp_pending_new(c);
    kv_op *ops = p != NULL ? calloc(n, sizeof(*ops)) : NULL;
    if (ops == NULL) {
        if (p != NULL)
            resp_error(c->out, "ERR out of memory");
        resp_pending_free(p);
        return;
    }
    for (size_t i = 0; i < n; i++)
        ops[i] = (kv_op){.type = KV_WRITE_PUT,
                         .key = p->argv[1 + 2 * i],
                         .key_len = p->argl[1 + 2 * i],
                         .val = p->argv[2 + 2 * i],
                         .val_len = p->argl[2 + 2 * i],
                         .cond = cond};
    p->ops = ops;
    p->n_ops = n;
    p->finish = finish;
    resp_write_blind(c, p);
}

static void finish_ok(struct resp_pending *p, int rc)
{
    if (rc != 0) {
        resp_reply_kv_error(&p->reply, rc);
        return;
    }
    count_changes(p, p->n_ops);
    resp_ok(&p->reply);
}

/* 1 when the batch went through, 0 when a key existed. */
static void finish_nx(struct resp_pending *p, int rc)
{
    if (rc != 0 && rc != KV_ECONDITION) {
        resp_reply_kv_error(&p->reply, rc);
        return;
    }
    if (rc == 0)
        count_changes(p, p->n_ops);
    resp_int(&p->reply, rc == 0 ? 1 : 0);
}

void cmd_setnx(struct resp_ctx *c)
{
    put_pairs(c, KV_IF_ABSENT, finish_nx);
}

void cmd_mset(struct resp_ctx *c)
{
    put_pairs(c, KV_IF_ANY, finish_ok);
}

void cmd_msetnx(struct resp_ctx *c)
{
    put_pairs(c, KV_IF_ABSENT, finish_nx);
}

/* ---- programs */

static void reply_error_rc(struct resp_tx *t, int rc)
{
    resp_reply_kv_error(resp_tx_out(t), rc);
}

static void reply_arity(struct resp_tx *t, const char *name)
{
    resp_errorf(resp_tx_out(t), "ERR wrong number of arguments for '%s' command", name);
}

void prog_setnx(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    const char *val = NULL;
    size_t len = 0;
    int rc = resp_tx_get(t, argv[1], argl[1], &val, &len);
    if (rc == 1) {
        resp_int(resp_tx_out(t), 0); /* it exists: nothing written */
        return;
    }
    if (rc == 0)
        rc = resp_tx_put(t, argv[1], argl[1], argv[2], argl[2], false);
    if (rc < 0)
        reply_error_rc(t, rc);
    else
        resp_int(resp_tx_out(t), 1);
}

void prog_getset(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    struct growbuf *out = resp_tx_out(t);
    const char *val = NULL;
    size_t len = 0;
    int rc = resp_tx_get(t, argv[1], argl[1], &val, &len);
    if (rc < 0) {
        reply_error_rc(t, rc);
        return;
    }
    /* The reply first: the write frees the old value. */
    size_t mark = out->len;
    if (rc == 1)
        resp_bulk(out, val, len);
    else
        resp_null(out, resp_tx_proto(t));
    rc = resp_tx_put(t, argv[1], argl[1], argv[2], argl[2], false);
    if (rc < 0) {
        out->len = mark;
        reply_error_rc(t, rc);
    }
}

void prog_getdel(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    struct growbuf *out = resp_tx_out(t);
    const char *val = NULL;
    size_t len = 0;
    int rc = resp_tx_get(t, argv[1], argl[1], &val, &len);
    if (rc < 0) {
        reply_error_rc(t, rc);
        return;
    }
    if (rc == 0) {
        resp_null(out, resp_tx_proto(t));
        return;
    }
    size_t mark = out->len;
    resp_bulk(out, val, len);
    rc = resp_tx_del(t, argv[1], argl[1]);
    if (rc < 0) {
        out->len = mark;
        reply_error_rc(t, rc);
    }
}

/* The number stored under key plus delta, written back; Redis's errors. */
static void incr_by(struct resp_tx *t, const char *key, size_t key_len, long long delta)
{
    struct growbuf *out = resp_tx_out(t);
    const char *val = NULL;
    size_t len = 0;
    long long v = 0;
    int rc = resp_tx_get(t, key, key_len, &val, &len);
    if (rc < 0) {
        reply_error_rc(t, rc);
        return;
    }
    if (rc == 1 && !resp_parse_ll(val, len, &v)) {
        resp_error(out, "ERR value is not an integer or out of range");
        return;
    }
    if ((delta > 0 && v > LLONG_MAX - delta) || (delta < 0 && v < LLONG_MIN - delta)) {
        resp_error(out, "ERR increment or decrement would overflow");
        return;
    }
    v += delta;
    char num[24];
    int n = snprintf(num, sizeof(num), "%lld", v);
    rc = resp_tx_put_expiring(t, key, key_len, num, (size_t)n, true, 0, true);
    if (rc < 0)
        reply_error_rc(t, rc);
    else
        resp_int(out, v);
}

void prog_incr(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    incr_by(t, argv[1], argl[1], 1);
}

void prog_decr(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    incr_by(t, argv[1], argl[1], -1);
}

void prog_incrby(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    long long delta = 0;
    if (!resp_parse_ll(argv[2], argl[2], &delta)) {
        resp_error(resp_tx_out(t), "ERR value is not an integer or out of range");
        return;
    }
    incr_by(t, argv[1], argl[1], delta);
}

void prog_decrby(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    long long delta = 0;
    if (!resp_parse_ll(argv[2], argl[2], &delta)) {
        resp_error(resp_tx_out(t), "ERR value is not an integer or out of range");
        return;
    }
    if (delta == LLONG_MIN) {
        resp_error(resp_tx_out(t), "ERR decrement would overflow");
        return;
    }
    incr_by(t, argv[1], argl[1], -delta);
}

void prog_append(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    const char *val = NULL;
    size_t len = 0;
    int rc = resp_tx_get(t, argv[1], argl[1], &val, &len);
    if (rc < 0) {
        reply_error_rc(t, rc);
        return;
    }
    if (rc == 0)
        len = 0;
    if (argl[2] > KV_MAX_VALUE_LEN - len) {
        resp_error(resp_tx_out(t), "ERR string exceeds maximum allowed size");
        return;
    }
    size_t total = len + argl[2];
    char *joined = malloc(total > 0 ? total : 1);
    if (joined == NULL) {
        reply_error_rc(t, KV_ENOMEM);
        return;
    }
    if (len > 0)
        memcpy(joined, val, len);
    memcpy(joined + len, argv[2], argl[2]);
    rc = resp_tx_put_expiring(t, argv[1], argl[1], joined, total, true, 0, true);
    free(joined);
    if (rc < 0)
        reply_error_rc(t, rc);
    else
        resp_int(resp_tx_out(t), (long long)total);
}

void prog_mset(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    if ((argc - 1) % 2 != 0) {
        reply_arity(t, "mset");
        return;
    }
    for (size_t i = 1; i + 1 < argc; i += 2) {
        int rc = resp_tx_put(t, argv[i], argl[i], argv[i + 1], argl[i + 1], false);
        if (rc < 0) {
            reply_error_rc(t, rc);
            return;
        }
    }
    resp_ok(resp_tx_out(t));
}

void prog_msetnx(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    if ((argc - 1) % 2 != 0) {
        reply_arity(t, "msetnx");
        return;
    }
    for (size_t i = 1; i + 1 < argc; i += 2) {
        const char *val = NULL;
        size_t len = 0;
        int rc = resp_tx_get(t, argv[i], argl[i], &val, &len);
        if (rc != 0) {
            if (rc < 0)
                reply_error_rc(t, rc);
            else
                resp_int(resp_tx_out(t), 0);
            return;
        }
    }
    for (size_t i = 1; i + 1 < argc; i += 2) {
        int rc = resp_tx_put(t, argv[i], argl[i], argv[i + 1], argl[i + 1], false);
        if (rc < 0) {
            reply_error_rc(t, rc);
            return;
        }
    }
    resp_int(resp_tx_out(t), 1);
}

/* RENAME: the source's value and expiry put under the destination and the
 * source deleted, in one batch conditional on the source as read. */
void prog_rename(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    const char *val = NULL;
    size_t len = 0;
    int rc = resp_tx_get(t, argv[1], argl[1], &val, &len);
    if (rc < 0) {
        reply_error_rc(t, rc);
        return;
    }
    if (rc == 0) {
        resp_error(resp_tx_out(t), "ERR no such key");
        return;
    }
    if (argl[1] == argl[2] && memcmp(argv[1], argv[2], argl[1]) == 0) {
        resp_ok(resp_tx_out(t));
        return;
    }
    uint64_t at = 0;
    rc = resp_tx_expiry(t, argv[1], argl[1], &at);
    /* Copied: deleting the source frees what val points at. */
    if (rc >= 0) /* the key is there: 1 */
        rc = resp_tx_put_expiring(t, argv[2], argl[2], val, len, true, at, false);
    if (rc == 0)
        rc = resp_tx_del(t, argv[1], argl[1]);
    if (rc < 0)
        reply_error_rc(t, rc);
    else
        resp_ok(resp_tx_out(t));
}

void prog_ping(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    if (argc > 2)
        reply_arity(t, "ping");
    else if (argc == 2)
        resp_bulk(resp_tx_out(t), argv[1], argl[1]);
    else
        resp_simple(resp_tx_out(t), "PONG");
}

void prog_echo(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    resp_bulk(resp_tx_out(t), argv[1], argl[1]);
}
