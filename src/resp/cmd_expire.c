/*
 * cmd_expire.c - the expiry commands over the store: SET's EX, PX, EXAT,
 * PXAT and KEEPTTL options (parsed here, for cmd_set), SETEX, PSETEX,
 * GETEX, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with NX, XX, GT, LT) and
 * PERSIST, with Redis's replies and errors.
 *
 * A key's expiry is the engine's (kv_op.expire_at_ms, kv_set_expiry): an
 * expired key is absent for every command at once, however it is read.
 * Changing only the expiry of a key writes its record again (kv_set_expiry
 * reads the value and writes it back under conditions, so that a write in
 * between is never undone). The writes run as cmd_keys.c's do: on the pool
 * when SYNC_MODE=always makes them wait for an fdatasync, else at once.
 * Times are on the wall clock (resp_unix_ms), as the engine's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static kv_store *store_of(struct blob_store *bs)
{
    return blob_kv(bs);
}

/* The arguments of a deferred command, as a context the argument helpers
 * read (no reply goes through it). */
static struct resp_ctx args_of(const struct resp_pending *p)
{
    return (struct resp_ctx){.argc = p->argc, .argv = p->argv, .argl = p->argl};
}

/* Runs a write as cmd_keys.c's write_cmd does: on the pool when it must
 * wait for the disk or for the connection's earlier commands, else here. */
static void run_write(struct resp_ctx *c, void (*run)(struct resp_pending *p))
{
    if (c->srv->durable || c->conn->n_pending > 0) {
        resp_defer(c, run);
        return;
    }
    struct resp_pending p = {.conn = c->conn,
                             .srv = c->srv,
                             .reply = *c->out,
                             .proto = c->proto,
                             .argc = c->argc,
                             .argv = c->argv,
                             .argl = c->argl};
    run(&p);
    *c->out = p.reply;
}

static void count_change(struct resp_pending *p)
{
    atomic_fetch_add_explicit(&p->srv->changes_since_save, 1, memory_order_relaxed);
}

/* ---- times */

/* The absolute expiry (ms since the epoch) of amount in the unit of an
 * option: EX/EXPIRE seconds from now, PX/PEXPIRE ms from now, EXAT/EXPIREAT
 * a Unix time in seconds, PXAT/PEXPIREAT in ms. False when it overflows.
 * A time at or before the epoch is 1: already passed, never "none". */
static bool absolute_ms(long long amount, bool seconds, bool at, uint64_t now, uint64_t *out)
{
    long long ms = amount;
    if (seconds && (amount > INT64_MAX / 1000 || amount < INT64_MIN / 1000))
        return false;
    if (seconds)
        ms = amount * 1000;
    if (!at && ms > 0 && (uint64_t)ms > INT64_MAX - now)
        return false;
    long long abs_ms = at ? ms : (ms < 0 && -ms >= (long long)now ? 0 : (long long)now + ms);
    *out = abs_ms > 0 ? (uint64_t)abs_ms : 1;
    return true;
}

/* ---- SET's options */

/* What argument i of SET says of the expiry, into *e: the number of
 * arguments it takes (EX n and the like 2, KEEPTTL 1), 0 when it is no
 * expiry option, or RESP_EXPIRY_SYNTAX / RESP_EXPIRY_INVALID. */
int resp_set_expiry_option(const struct resp_ctx *c, size_t i, uint64_t now, struct resp_expiry *e)
{
    static const struct {
        const char *name;
        bool seconds, at;
    } units[] = {
        {"EX", true, false}, {"PX", false, false}, {"EXAT", true, true}, {"PXAT", false, true}};
    if (resp_arg_is(c, i, "KEEPTTL")) {
        if (e->given)
            return RESP_EXPIRY_SYNTAX;
        e->given = e->keep = true;
        return 1;
    }
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (!resp_arg_is(c, i, units[u].name))
            continue;
        long long n = 0;
        if (e->given || i + 1 >= c->argc)
            return RESP_EXPIRY_SYNTAX;
        if (!resp_arg_ll(c, i + 1, &n))
            return RESP_EXPIRY_NOT_INTEGER;
        if (n <= 0 || !absolute_ms(n, units[u].seconds, units[u].at, now, &e->at_ms))
            return RESP_EXPIRY_INVALID;
        e->given = true;
        return 2;
    }
    return 0;
}

void resp_reply_expiry_error(struct resp_ctx *c, int code)
{
    if (code == RESP_EXPIRY_SYNTAX)
        resp_reply_syntax(c);
    else if (code == RESP_EXPIRY_NOT_INTEGER)
        resp_error(c->out, "ERR value is not an integer or out of range");
    else
        resp_errorf(c->out, "ERR invalid expire time in '%s' command", c->cmd->name);
}

void resp_set_expiry_of(const struct resp_pending *p, uint64_t now, struct resp_expiry *e)
{
    struct resp_ctx a = args_of(p);
    *e = (struct resp_expiry){0};
    for (size_t i = 3; i < a.argc; i++) {
        int took = resp_set_expiry_option(&a, i, now, e);
        if (took > 0)
            i += (size_t)took - 1;
    }
}

int resp_put_expiring(struct resp_pending *p, const struct resp_expiry *e)
{
    if (!e->keep) {
        uint32_t etag = 0;
        return blob_put_expiring(p->srv->app->store, p->argv[1], p->argl[1], p->argv[2], p->argl[2],
                                 NULL, e->at_ms, &etag);
    }
    kv_op op = {.type = KV_WRITE_PUT,
                .key = p->argv[1],
                .key_len = p->argl[1],
                .val = p->argv[2],
                .val_len = p->argl[2],
                .flags = KV_KEEP_EXPIRY};
    return kv_write(store_of(p->srv->app->store), &op, 1);
}

/* ---- SETEX, PSETEX */

static void run_setex(struct resp_pending *p)
{
    struct resp_ctx a = args_of(p);
    long long n = 0;
    resp_arg_ll(&a, 2, &n); /* checked by cmd_setex */
    struct resp_expiry e = {.given = true};
    bool seconds = p->argl[0] == 5; /* SETEX, not PSETEX */
    absolute_ms(n, seconds, false, resp_unix_ms(), &e.at_ms);
    uint32_t etag = 0;
    int rc = blob_put_expiring(p->srv->app->store, p->argv[1], p->argl[1], p->argv[3], p->argl[3],
                               NULL, e.at_ms, &etag);
    if (rc != 0) {
        resp_reply_kv_error(&p->reply, rc);
        return;
    }
    count_change(p);
    resp_ok(&p->reply);
}

void cmd_setex(struct resp_ctx *c)
{
    long long n = 0;
    uint64_t at = 0;
    bool seconds = c->argl[0] == 5;
    if (!resp_arg_ll(c, 2, &n)) {
        resp_reply_expiry_error(c, RESP_EXPIRY_NOT_INTEGER);
        return;
    }
    if (n <= 0 || !absolute_ms(n, seconds, false, resp_unix_ms(), &at)) {
        resp_reply_expiry_error(c, RESP_EXPIRY_INVALID);
        return;
    }
    if (c->argl[1] == 0 || c->argl[1] > KV_MAX_KEY_LEN) {
        resp_reply_kv_error(c->out, KV_EINVAL);
        return;
    }
    run_write(c, run_setex);
}

/* ---- GETEX */

/* GETEX's option (argument 2 on): *persist, or *at_ms; 0, or a
 * RESP_EXPIRY_ code. */
static int getex_option(const struct resp_ctx *c, uint64_t now, bool *persist, uint64_t *at_ms)
{
    *persist = false;
    *at_ms = 0;
    if (c->argc == 3 && resp_arg_is(c, 2, "PERSIST")) {
        *persist = true;
        return 0;
    }
    struct resp_expiry e = {0};
    int took = c->argc == 4 ? resp_set_expiry_option(c, 2, now, &e) : RESP_EXPIRY_SYNTAX;
    if (took == 0 || e.keep)
        took = RESP_EXPIRY_SYNTAX;
    if (took < 0)
        return took;
    *at_ms = e.at_ms;
    return 0;
}

static void run_getex(struct resp_pending *p)
{
    struct resp_ctx a = args_of(p);
    bool persist;
    uint64_t at;
    if (getex_option(&a, resp_unix_ms(), &persist, &at) != 0)
        return; /* checked by cmd_getex: cannot happen */
    kv_store *s = store_of(p->srv->app->store);
    void *val = NULL;
    size_t len = 0;
    int rc = kv_get(s, p->argv[1], p->argl[1], &val, &len);
    if (rc == 0) {
        int set = kv_set_expiry(s, p->argv[1], p->argl[1], persist ? 0 : at, 0);
        if (set == 0)
            count_change(p);
        else if (set != KV_ECONDITION && set != KV_ENOTFOUND)
            rc = set;
    }
    if (rc == 0)
        resp_bulk(&p->reply, val, len);
    else if (rc == KV_ENOTFOUND)
        resp_null(&p->reply, p->proto);
    else
        resp_reply_kv_error(&p->reply, rc);
    kv_free(val);
}

void cmd_getex(struct resp_ctx *c)
{
    if (c->argc == 2) {
        cmd_get(c);
        return;
    }
    bool persist;
    uint64_t at;
    int code = getex_option(c, resp_unix_ms(), &persist, &at);
    if (code != 0) {
        resp_reply_expiry_error(c, code);
        return;
    }
    if (c->argl[1] == 0 || c->argl[1] > KV_MAX_KEY_LEN) {
        resp_null(c->out, c->proto); /* no such key can exist */
        return;
    }
    run_write(c, run_getex);
}

/* ---- EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, PERSIST */

/* The unit of c's command: seconds (EXPIRE, EXPIREAT) and absolute (…AT). */
static void expire_unit(const char *name, size_t len, bool *seconds, bool *at)
{
    *seconds = name[0] == 'e' || name[0] == 'E';
    *at = len >= 2 && (name[len - 2] == 'a' || name[len - 2] == 'A');
}

/* The flags of arguments 3 on (NX, XX, GT, LT) into *flags: 0, or the
 * index of an argument that is none of them (*flags then 0). */
static size_t expire_flags(const struct resp_ctx *c, unsigned *flags)
{
    static const struct {
        const char *name;
        unsigned flag;
    } names[] = {
        {"NX", KV_EXPIRY_NX}, {"XX", KV_EXPIRY_XX}, {"GT", KV_EXPIRY_GT}, {"LT", KV_EXPIRY_LT}};
    *flags = 0;
    for (size_t i = 3; i < c->argc; i++) {
        size_t k = 0;
        while (k < sizeof(names) / sizeof(names[0]) && !resp_arg_is(c, i, names[k].name))
            k++;
        if (k == sizeof(names) / sizeof(names[0])) {
            *flags = 0;
            return i;
        }
        *flags |= names[k].flag;
    }
    return 0;
}

/* Checks EXPIRE's flags as Redis does; false after replying with its
 * error. */
static bool expire_flags_ok(struct resp_ctx *c, unsigned *flags)
{
    size_t bad = expire_flags(c, flags);
    if (bad != 0) {
        resp_errorf(c->out, "ERR Unsupported option %.*s",
                    (int)(c->argl[bad] > 64 ? 64 : c->argl[bad]), c->argv[bad]);
        return false;
    }
    if ((*flags & KV_EXPIRY_NX) && (*flags & (KV_EXPIRY_XX | KV_EXPIRY_GT | KV_EXPIRY_LT))) {
        resp_error(c->out, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return false;
    }
    if ((*flags & KV_EXPIRY_GT) && (*flags & KV_EXPIRY_LT)) {
        resp_error(c->out, "ERR GT and LT options at the same time are not compatible");
        return false;
    }
    return true;
}

/* 1 when the engine changed the expiry, 0 when the key is absent or a flag
 * refused it; otherwise an error reply. */
static void reply_changed(struct resp_pending *p, int rc)
{
    if (rc == 0) {
        count_change(p);
        resp_int(&p->reply, 1);
    } else if (rc == KV_ENOTFOUND || rc == KV_ECONDITION || rc == KV_EINVAL) {
        resp_int(&p->reply, 0);
    } else {
        resp_reply_kv_error(&p->reply, rc);
    }
}

static void run_expire(struct resp_pending *p)
{
    struct resp_ctx a = args_of(p);
    long long n = 0;
    unsigned flags = 0;
    bool seconds, at;
    uint64_t when = 0;
    expire_unit(p->argv[0], p->argl[0], &seconds, &at);
    resp_arg_ll(&a, 2, &n); /* checked by cmd_expire */
    expire_flags(&a, &flags);
    absolute_ms(n, seconds, at, resp_unix_ms(), &when);
    reply_changed(p,
                  kv_set_expiry(store_of(p->srv->app->store), p->argv[1], p->argl[1], when, flags));
}

void cmd_expire(struct resp_ctx *c)
{
    long long n = 0;
    unsigned flags = 0;
    bool seconds, at;
    uint64_t when = 0;
    expire_unit(c->argv[0], c->argl[0], &seconds, &at);
    if (!resp_arg_ll(c, 2, &n)) {
        resp_reply_expiry_error(c, RESP_EXPIRY_NOT_INTEGER);
        return;
    }
    if (!absolute_ms(n, seconds, at, resp_unix_ms(), &when)) {
        resp_reply_expiry_error(c, RESP_EXPIRY_INVALID);
        return;
    }
    if (!expire_flags_ok(c, &flags))
        return;
    run_write(c, run_expire);
}

static void run_persist(struct resp_pending *p)
{
    reply_changed(p, kv_set_expiry(store_of(p->srv->app->store), p->argv[1], p->argl[1], 0, 0));
}

void cmd_persist(struct resp_ctx *c)
{
    run_write(c, run_persist);
}
