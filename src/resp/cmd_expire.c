/*
 * cmd_expire.c - the expiry commands: SET's EX, PX, EXAT, PXAT and KEEPTTL
 * options (parsed here, for cmd_set), SETEX, PSETEX, GETEX, EXPIRE,
 * PEXPIRE, EXPIREAT, PEXPIREAT (with NX, XX, GT, LT), PERSIST, TTL and
 * PTTL, with Redis's replies and errors.
 *
 * A key's expiry is the engine's (kv_op.expire_at_ms): an expired key is
 * absent for every command at once, however it is read. Each command is a
 * program over the transaction view (write.c), alone as inside EXEC:
 * changing only the expiry of a key writes its record again with the value
 * read, and the batch carries the conditions that the value and the expiry
 * are still the ones read (KV_IF_CRC, KV_IF_EXPIRY), so that a write in
 * between is never undone and NX, XX, GT and LT are judged against the
 * state the write replaces. Times are on the wall clock (resp_unix_ms), as
 * the engine's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

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
    bool before_epoch = ms < 0 && (ms == INT64_MIN || -ms >= (long long)now);
    long long abs_ms = at ? ms : before_epoch ? 0 : (long long)now + ms;
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

/* Redis's error for a RESP_EXPIRY_ code of command name. */
static void expiry_error(struct growbuf *out, int code, const char *name)
{
    if (code == RESP_EXPIRY_SYNTAX)
        resp_error(out, "ERR syntax error");
    else if (code == RESP_EXPIRY_NOT_INTEGER)
        resp_error(out, "ERR value is not an integer or out of range");
    else
        resp_errorf(out, "ERR invalid expire time in '%s' command", name);
}

/* ---- programs */

/* The arguments of a program as a context the argument helpers read (no
 * reply goes through it). */
static struct resp_ctx args_of(size_t argc, char **argv, const size_t *argl)
{
    return (struct resp_ctx){.argc = argc, .argv = argv, .argl = (size_t *)argl};
}

/* The expiry of SETEX key seconds value or PSETEX key ms value into *at;
 * false after replying with Redis's error. */
static bool setex_time(const struct resp_ctx *a, struct growbuf *out, uint64_t *at)
{
    bool seconds = a->argl[0] == 5; /* SETEX, not PSETEX */
    const char *name = seconds ? "setex" : "psetex";
    long long n = 0;
    if (!resp_arg_ll(a, 2, &n)) {
        expiry_error(out, RESP_EXPIRY_NOT_INTEGER, name);
        return false;
    }
    if (n <= 0 || !absolute_ms(n, seconds, false, resp_unix_ms(), at)) {
        expiry_error(out, RESP_EXPIRY_INVALID, name);
        return false;
    }
    return true;
}

/* SETEX alone: a blind write, as SET's */
void cmd_setex(struct resp_ctx *c)
{
    struct resp_expiry ex = {.given = true};
    if (!setex_time(c, c->out, &ex.at_ms))
        return;
    if (c->argl[1] == 0 || c->argl[1] > KV_MAX_KEY_LEN)
        resp_reply_kv_error(c->out, KV_EINVAL);
    else
        resp_put_blind(c, 3, KV_IF_ANY, &ex);
}

void prog_setex(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    struct resp_ctx a = args_of(argc, argv, argl);
    struct growbuf *out = resp_tx_out(t);
    uint64_t at = 0;
    if (!setex_time(&a, out, &at))
        return;
    int rc = resp_tx_put_expiring(t, argv[1], argl[1], argv[3], argl[3], false, at, false);
    if (rc != 0)
        resp_reply_kv_error(out, rc);
    else
        resp_ok(out);
}

/* GETEX's option (argument 2 on): *persist, or *at_ms; 0, or a
 * RESP_EXPIRY_ code. No option: GET. */
static int getex_option(const struct resp_ctx *c, uint64_t now, bool *persist, uint64_t *at_ms)
{
    *persist = false;
    *at_ms = 0;
    if (c->argc == 2)
        return 0;
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

/* GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]: the value, and its
 * expiry changed in the same batch. */
void prog_getex(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    struct resp_ctx a = args_of(argc, argv, argl);
    struct growbuf *out = resp_tx_out(t);
    bool persist;
    uint64_t at;
    int code = getex_option(&a, resp_unix_ms(), &persist, &at);
    if (code == RESP_EXPIRY_SYNTAX) {
        expiry_error(out, code, "getex");
        return;
    }
    const char *val = NULL;
    size_t len = 0;
    int rc = resp_tx_get(t, argv[1], argl[1], &val, &len);
    if (rc <= 0) {
        if (rc < 0)
            resp_reply_kv_error(out, rc);
        else
            resp_null(out, resp_tx_proto(t));
        return;
    }
    if (code != 0) { /* as Redis: the time is judged once the key is found */
        expiry_error(out, code, "getex");
        return;
    }
    /* The value is copied before a write may free it. */
    struct growbuf reply = {0};
    resp_bulk(&reply, val, len);
    uint64_t cur = 0;
    if (persist)
        rc = resp_tx_expiry(t, argv[1], argl[1], &cur);
    if (rc > 0 && (at != 0 || (persist && cur != 0)))
        rc = resp_tx_set_expiry(t, argv[1], argl[1], at);
    if (rc < 0)
        resp_reply_kv_error(out, rc);
    else
        growbuf_append(out, reply.data, reply.len);
    growbuf_free(&reply);
}

/* GETEX key alone is GET; with an option, the program. */
void cmd_getex(struct resp_ctx *c)
{
    if (c->argc == 2)
        cmd_get(c);
    else
        resp_run_program(c);
}

/* The unit of an EXPIRE command: seconds (EXPIRE, EXPIREAT) and absolute
 * (...AT). */
static void expire_unit(const char *name, size_t len, bool *seconds, bool *at)
{
    *seconds = name[0] == 'e' || name[0] == 'E';
    *at = len >= 2 && (name[len - 2] == 'a' || name[len - 2] == 'A');
}

/* EXPIRE's flags: when the expiry is changed. */
enum { EXPIRE_NX = 1, EXPIRE_XX = 2, EXPIRE_GT = 4, EXPIRE_LT = 8 };

/* The flags of arguments 3 on (NX, XX, GT, LT) into *flags; false after
 * replying with Redis's error for one it does not know or a pair it does
 * not allow. */
static bool expire_flags(const struct resp_ctx *c, struct growbuf *out, unsigned *flags)
{
    static const struct {
        const char *name;
        unsigned flag;
    } names[] = {{"NX", EXPIRE_NX}, {"XX", EXPIRE_XX}, {"GT", EXPIRE_GT}, {"LT", EXPIRE_LT}};
    *flags = 0;
    for (size_t i = 3; i < c->argc; i++) {
        size_t k = 0;
        while (k < sizeof(names) / sizeof(names[0]) && !resp_arg_is(c, i, names[k].name))
            k++;
        if (k == sizeof(names) / sizeof(names[0])) {
            resp_errorf(out, "ERR Unsupported option %.*s",
                        (int)(c->argl[i] > 64 ? 64 : c->argl[i]), c->argv[i]);
            return false;
        }
        *flags |= names[k].flag;
    }
    if ((*flags & EXPIRE_NX) && (*flags & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT))) {
        resp_error(out, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return false;
    }
    if ((*flags & EXPIRE_GT) && (*flags & EXPIRE_LT)) {
        resp_error(out, "ERR GT and LT options at the same time are not compatible");
        return false;
    }
    return true;
}

/* Whether the flags let expiry at replace expiry cur (0: none, which GT and
 * LT take as later than any time, as Redis does). */
static bool flags_allow(unsigned flags, uint64_t cur, uint64_t at)
{
    if ((flags & EXPIRE_NX) && cur != 0)
        return false;
    if ((flags & EXPIRE_XX) && cur == 0)
        return false;
    if ((flags & EXPIRE_GT) && (cur == 0 || at <= cur))
        return false;
    return !((flags & EXPIRE_LT) && cur != 0 && at >= cur);
}

/* Sets key's expiry to at when it has a value and allow says so: replies 1
 * when it did, 0 when not. */
static void change_expiry(struct resp_tx *t, const char *key, size_t len, unsigned flags,
                          uint64_t at)
{
    struct growbuf *out = resp_tx_out(t);
    uint64_t cur = 0;
    int rc = resp_tx_expiry(t, key, len, &cur);
    bool change = rc > 0 && (at != 0 ? flags_allow(flags, cur, at) : cur != 0);
    if (change) {
        rc = resp_tx_set_expiry(t, key, len, at);
        if (rc == KV_ENOTFOUND) {
            /* Gone between the read of its expiry and the read of its
             * value: absent, as the later read says (the batch checks
             * both, so a transaction runs again). */
            change = false;
            rc = 0;
        }
    }
    if (rc < 0)
        resp_reply_kv_error(out, rc);
    else
        resp_int(out, change ? 1 : 0);
}

/* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT key n [NX|XX|GT|LT ...] */
void prog_expire(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    struct resp_ctx a = args_of(argc, argv, argl);
    struct growbuf *out = resp_tx_out(t);
    bool seconds, at;
    expire_unit(argv[0], argl[0], &seconds, &at);
    const char *name = seconds ? (at ? "expireat" : "expire") : (at ? "pexpireat" : "pexpire");
    long long n = 0;
    uint64_t when = 0;
    unsigned flags = 0;
    if (!resp_arg_ll(&a, 2, &n)) {
        expiry_error(out, RESP_EXPIRY_NOT_INTEGER, name);
        return;
    }
    if (!absolute_ms(n, seconds, at, resp_unix_ms(), &when)) {
        expiry_error(out, RESP_EXPIRY_INVALID, name);
        return;
    }
    if (expire_flags(&a, out, &flags))
        change_expiry(t, argv[1], argl[1], flags, when);
}

/* PERSIST key */
void prog_persist(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    change_expiry(t, argv[1], argl[1], 0, 0);
}

void resp_reply_ttl(struct growbuf *out, int present, uint64_t at_ms, bool seconds)
{
    long long ms = -2;
    if (present && at_ms == 0) {
        ms = -1;
    } else if (present) {
        uint64_t now = resp_unix_ms();
        ms = at_ms > now ? (long long)(at_ms - now) : 0;
        if (seconds)
            ms = (ms + 500) / 1000; /* Redis rounds to the nearest second */
    }
    resp_int(out, ms);
}

/* TTL key, PTTL key */
void prog_ttl(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    uint64_t at = 0;
    int rc = resp_tx_expiry(t, argv[1], argl[1], &at);
    if (rc < 0)
        resp_reply_kv_error(resp_tx_out(t), rc);
    else
        resp_reply_ttl(resp_tx_out(t), rc, at, argl[0] == 3);
}
