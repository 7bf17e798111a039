/*
 * cmd_keys.c - the string and key commands over the store: GET SET MGET
 * STRLEN GETRANGE GETEX DEL UNLINK EXISTS TYPE TTL PTTL PERSIST SCAN KEYS
 * RANDOMKEY. Every value is a string; a key is any byte string of 1 to
 * 65,535 bytes, the blob of the same name over HTTP.
 *
 * Writes go through the blob layer (src/core/storage.h), so that they are
 * ordered with HTTP's conditional writes of the same key. With
 * SYNC_MODE=always a write runs on the pool and its reply waits for its
 * fdatasync; otherwise it runs here, at once. Listings (SCAN, KEYS,
 * RANDOMKEY) walk the whole index and run on the pool, so that one of them
 * never stalls the other connections of its loop.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "server.h"

static kv_store *store_of(const struct resp_ctx *c)
{
    return blob_kv(c->srv->app->store);
}

static void count_read(const struct resp_ctx *c, bool hit)
{
    atomic_fetch_add_explicit(hit ? &c->srv->app->resp.keyspace_hits
                                  : &c->srv->app->resp.keyspace_misses,
                              1, memory_order_relaxed);
}

/* Runs a write: on the pool when it must wait for the disk or for the
 * connection's earlier commands, else here. */
static void write_cmd(struct resp_ctx *c, void (*run)(struct resp_pending *p))
{
    if (c->srv->writes_wait || c->conn->n_pending > 0) {
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

/* The reply to an option that needs an engine feature this build lacks. */
static void reply_needs(struct resp_ctx *c, const char *what, const char *feature)
{
    resp_errorf(c->out, "ERR %s %s is not available in this build: it needs the engine's %s",
                c->cmd->name, what, feature);
}

/* ---- reads */

void cmd_get(struct resp_ctx *c)
{
    void *val = NULL;
    size_t len = 0;
    int rc = kv_get(store_of(c), c->argv[1], c->argl[1], &val, &len);
    if (rc == 0) {
        resp_bulk(c->out, val, len);
        kv_free(val);
    } else if (rc == KV_ENOTFOUND || rc == KV_EINVAL) {
        resp_null(c->out, c->proto); /* an empty key cannot exist */
    } else {
        resp_reply_kv_error(c->out, rc);
    }
    count_read(c, rc == 0);
}

void cmd_mget(struct resp_ctx *c)
{
    resp_array(c->out, c->argc - 1);
    for (size_t i = 1; i < c->argc; i++) {
        void *val = NULL;
        size_t len = 0;
        int rc = kv_get(store_of(c), c->argv[i], c->argl[i], &val, &len);
        if (rc == 0) {
            resp_bulk(c->out, val, len);
            kv_free(val);
        } else {
            resp_null(c->out, c->proto); /* MGET answers nil for anything not there */
        }
        count_read(c, rc == 0);
    }
}

void cmd_strlen(struct resp_ctx *c)
{
    void *val = NULL;
    size_t len = 0;
    int rc = kv_get(store_of(c), c->argv[1], c->argl[1], &val, &len);
    kv_free(val);
    if (rc == 0 || rc == KV_ENOTFOUND || rc == KV_EINVAL)
        resp_int(c->out, rc == 0 ? (long long)len : 0);
    else
        resp_reply_kv_error(c->out, rc);
}

void cmd_getrange(struct resp_ctx *c)
{
    long long start = 0, end = 0;
    if (!resp_arg_ll(c, 2, &start) || !resp_arg_ll(c, 3, &end)) {
        resp_error(c->out, "ERR value is not an integer or out of range");
        return;
    }
    void *val = NULL;
    size_t len = 0;
    int rc = kv_get(store_of(c), c->argv[1], c->argl[1], &val, &len);
    if (rc != 0 && rc != KV_ENOTFOUND && rc != KV_EINVAL) {
        resp_reply_kv_error(c->out, rc);
        return;
    }
    long long n = (long long)len;
    /* Redis's rules: negative offsets count from the end, both are clamped,
     * and an empty range is an empty string. */
    if (start < 0 && end < 0 && start > end) {
        resp_bulk(c->out, "", 0);
    } else {
        if (start < 0)
            start += n;
        if (end < 0)
            end += n;
        if (start < 0)
            start = 0;
        if (end < 0)
            end = 0;
        if (end >= n)
            end = n - 1;
        if (n == 0 || start > end)
            resp_bulk(c->out, "", 0);
        else
            resp_bulk(c->out, (const char *)val + start, (size_t)(end - start + 1));
    }
    kv_free(val);
}

void cmd_getex(struct resp_ctx *c)
{
    if (c->argc > 2) {
        if (c->argc == 3 && resp_arg_is(c, 2, "PERSIST")) {
            /* No key has an expiry in this build: PERSIST changes nothing. */
        } else if (resp_arg_is(c, 2, "EX") || resp_arg_is(c, 2, "PX") ||
                   resp_arg_is(c, 2, "EXAT") || resp_arg_is(c, 2, "PXAT")) {
            reply_needs(c, "with an expiry", "key expiry");
            return;
        } else {
            resp_reply_syntax(c);
            return;
        }
    }
    cmd_get(c);
}

/* ---- writes */

static void run_set(struct resp_pending *p)
{
    uint32_t etag = 0;
    int rc =
        blob_put(p->srv->app->store, p->argv[1], p->argl[1], p->argv[2], p->argl[2], NULL, &etag);
    if (rc != 0) {
        resp_reply_kv_error(&p->reply, rc);
        return;
    }
    atomic_fetch_add_explicit(&p->srv->changes_since_save, 1, memory_order_relaxed);
    resp_ok(&p->reply);
}

void cmd_set(struct resp_ctx *c)
{
    for (size_t i = 3; i < c->argc; i++) {
        if (resp_arg_is(c, i, "KEEPTTL"))
            continue; /* no key has an expiry in this build: nothing to keep */
        if (resp_arg_is(c, i, "EX") || resp_arg_is(c, i, "PX") || resp_arg_is(c, i, "EXAT") ||
            resp_arg_is(c, i, "PXAT")) {
            if (i + 1 >= c->argc) {
                resp_reply_syntax(c);
                return;
            }
            reply_needs(c, "with an expiry", "key expiry");
            return;
        }
        if (resp_arg_is(c, i, "NX") || resp_arg_is(c, i, "XX") || resp_arg_is(c, i, "GET")) {
            reply_needs(c, "with NX, XX or GET", "conditional writes");
            return;
        }
        resp_reply_syntax(c);
        return;
    }
    if (c->argl[1] == 0 || c->argl[1] > KV_MAX_KEY_LEN) {
        resp_reply_kv_error(c->out, KV_EINVAL);
        return;
    }
    write_cmd(c, run_set);
}

static void run_del(struct resp_pending *p)
{
    /* One batch of deletes, as Redis runs DEL: atomically. A key of a
     * length no key has cannot exist: it is left out. */
    const void **keys = malloc(p->argc * sizeof(*keys));
    size_t *lens = malloc(p->argc * sizeof(*lens));
    size_t n = 0, done = 0;
    int rc = keys && lens ? 0 : KV_ENOMEM;
    for (size_t i = 1; rc == 0 && i < p->argc; i++) {
        if (p->argl[i] == 0 || p->argl[i] > KV_MAX_KEY_LEN)
            continue;
        keys[n] = p->argv[i];
        lens[n++] = p->argl[i];
    }
    if (rc == 0)
        rc = blob_delete_many(p->srv->app->store, keys, lens, n, &done);
    free(keys);
    free(lens);
    if (rc != 0) {
        resp_reply_kv_error(&p->reply, rc);
        return;
    }
    long long deleted = (long long)done;
    if (deleted > 0)
        atomic_fetch_add_explicit(&p->srv->changes_since_save, (uint64_t)deleted,
                                  memory_order_relaxed);
    resp_int(&p->reply, deleted);
}

void cmd_del(struct resp_ctx *c)
{
    write_cmd(c, run_del);
}

/* ---- keys */

void cmd_exists(struct resp_ctx *c)
{
    long long n = 0;
    for (size_t i = 1; i < c->argc; i++) {
        int rc = kv_exists(store_of(c), c->argv[i], c->argl[i]);
        if (rc == 0) {
            n++;
        } else if (rc != KV_ENOTFOUND && rc != KV_EINVAL) {
            resp_reply_kv_error(c->out, rc);
            return;
        }
    }
    resp_int(c->out, n);
}

/* 0 when the key exists, 1 when not, -1 after replying with an error. */
static int key_state(struct resp_ctx *c)
{
    int rc = kv_exists(store_of(c), c->argv[1], c->argl[1]);
    if (rc == 0)
        return 0;
    if (rc == KV_ENOTFOUND || rc == KV_EINVAL)
        return 1;
    resp_reply_kv_error(c->out, rc);
    return -1;
}

void cmd_type(struct resp_ctx *c)
{
    int st = key_state(c);
    if (st >= 0)
        resp_simple(c->out, st == 0 ? "string" : "none");
}

/* No key has an expiry in this build: -1 for a key, -2 for none. */
void cmd_ttl(struct resp_ctx *c)
{
    int st = key_state(c);
    if (st >= 0)
        resp_int(c->out, st == 0 ? -1 : -2);
}

void cmd_pttl(struct resp_ctx *c)
{
    cmd_ttl(c);
}

void cmd_persist(struct resp_ctx *c)
{
    if (key_state(c) >= 0)
        resp_int(c->out, 0); /* nothing had an expiry to remove */
}

/* ---- listings */

/* Keys gathered by a kv_list callback, in order. */
struct key_list {
    const char *pat; /* MATCH pattern, NULL for all */
    size_t pat_len;
    bool type_ok; /* SCAN TYPE names "string" (or no TYPE) */
    size_t n, cap;
    char **keys;
    size_t *lens;
    bool track_last; /* SCAN: keep the last key visited, matched or not */
    void *last;
    size_t last_len;
    size_t visited;
};

static bool list_push(struct key_list *l, const void *key, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **keys = realloc(l->keys, cap * sizeof(*keys));
        if (keys == NULL)
            return false;
        l->keys = keys;
        size_t *lens = realloc(l->lens, cap * sizeof(*lens));
        if (lens == NULL)
            return false;
        l->lens = lens;
        l->cap = cap;
    }
    char *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        return false;
    memcpy(copy, key, len);
    l->keys[l->n] = copy;
    l->lens[l->n++] = len;
    return true;
}

static void list_free(struct key_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i]);
    free(l->keys);
    free(l->lens);
    free(l->last);
}

static int on_key(const void *key, size_t len, void *ctx)
{
    struct key_list *l = ctx;
    l->visited++;
    if (l->track_last) {
        void *last = realloc(l->last, len > 0 ? len : 1);
        if (last == NULL)
            return KV_ENOMEM;
        memcpy(last, key, len);
        l->last = last;
        l->last_len = len;
    }
    if (!l->type_ok)
        return 0;
    if (l->pat != NULL && !resp_glob_match(l->pat, l->pat_len, key, len, false))
        return 0;
    return list_push(l, key, len) ? 0 : KV_ENOMEM;
}

static void reply_keys(struct resp_buf *out, const struct key_list *l)
{
    resp_array(out, l->n);
    for (size_t i = 0; i < l->n; i++)
        resp_bulk(out, l->keys[i], l->lens[i]);
}

/* The literal start of a glob pattern (before any * ? [ or \), which
 * kv_list can use as a prefix. */
static size_t literal_prefix(const char *pat, size_t len)
{
    size_t i = 0;
    while (i < len && pat[i] != '*' && pat[i] != '?' && pat[i] != '[' && pat[i] != '\\')
        i++;
    return i;
}

static void run_keys(struct resp_pending *p)
{
    struct key_list l = {.pat = p->argv[1], .pat_len = p->argl[1], .type_ok = true};
    size_t prefix = literal_prefix(l.pat, l.pat_len);
    int rc = kv_list(blob_kv(p->srv->app->store), l.pat, prefix, NULL, 0, 0, on_key, &l);
    if (rc != 0)
        resp_reply_kv_error(&p->reply, rc);
    else
        reply_keys(&p->reply, &l);
    list_free(&l);
}

void cmd_keys(struct resp_ctx *c)
{
    resp_defer(c, run_keys);
}

/* SCAN's options, checked on the loop (so that a syntax error is answered
 * at once) and read again on the pool. */
struct scan_opts {
    uint64_t cursor;
    long long count;
    const char *pat;
    size_t pat_len;
    bool type_ok;
};

static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t next = v * 10 + (uint64_t)(s[i] - '0');
        if (next / 10 != v)
            return false;
        v = next;
    }
    *out = v;
    return true;
}

/* Returns NULL, or the error to reply with. */
static const char *scan_parse(size_t argc, char **argv, size_t *argl, struct scan_opts *o)
{
    struct resp_ctx c = {.argc = argc, .argv = argv, .argl = argl};
    *o = (struct scan_opts){.count = 10, .type_ok = true};
    if (!parse_u64(argv[1], argl[1], &o->cursor))
        return "ERR invalid cursor";
    for (size_t i = 2; i < argc; i += 2) {
        if (i + 1 >= argc)
            return "ERR syntax error";
        if (resp_arg_is(&c, i, "COUNT")) {
            if (!resp_arg_ll(&c, i + 1, &o->count))
                return "ERR value is not an integer or out of range";
            if (o->count < 1)
                return "ERR syntax error";
        } else if (resp_arg_is(&c, i, "MATCH")) {
            o->pat = argv[i + 1];
            o->pat_len = argl[i + 1];
        } else if (resp_arg_is(&c, i, "TYPE")) {
            o->type_ok = resp_arg_is(&c, i + 1, "string");
        } else {
            return "ERR syntax error";
        }
    }
    return NULL;
}

static void run_scan(struct resp_pending *p)
{
    struct scan_opts o;
    scan_parse(p->argc, p->argv, p->argl, &o);
    void *after = NULL;
    size_t after_len = 0;
    if (o.cursor != 0 && resp_cursor_load(p->srv->cursors, o.cursor, &after, &after_len) != 0) {
        resp_error(&p->reply, "ERR invalid cursor: unknown or expired (a cursor lives until "
                              "65,536 newer ones or a restart); start again from 0");
        return;
    }
    /* COUNT is the work done, as in Redis: that many keys are visited, and
     * MATCH and TYPE filter what they return. */
    struct key_list l = {
        .pat = o.pat, .pat_len = o.pat_len, .type_ok = o.type_ok, .track_last = true};
    size_t limit = o.count > 100000 ? 100000 : (size_t)o.count;
    int rc = kv_list(blob_kv(p->srv->app->store), NULL, 0, after, after_len, limit, on_key, &l);
    free(after);
    if (rc != 0) {
        resp_reply_kv_error(&p->reply, rc);
        list_free(&l);
        return;
    }
    /* A full page may have more after it; a short one was the end. */
    uint64_t next = 0;
    if (l.visited == limit && l.last != NULL) {
        next = resp_cursor_save(p->srv->cursors, l.last, l.last_len);
        if (next == 0) {
            resp_error(&p->reply, "ERR out of memory");
            list_free(&l);
            return;
        }
    }
    resp_array(&p->reply, 2);
    resp_bulk_u64(&p->reply, next);
    reply_keys(&p->reply, &l);
    list_free(&l);
}

void cmd_scan(struct resp_ctx *c)
{
    struct scan_opts o;
    const char *err = scan_parse(c->argc, c->argv, c->argl, &o);
    if (err != NULL) {
        resp_error(c->out, err);
        return;
    }
    resp_defer(c, run_scan);
}

static void run_randomkey(struct resp_pending *p)
{
    kv_store *kv = blob_kv(p->srv->app->store);
    unsigned char after[8] = {0};
    if (getrandom(after, sizeof(after), 0) != (ssize_t)sizeof(after))
        memset(after, 0x80, sizeof(after));
    struct key_list l = {.type_ok = true};
    int rc = kv_list(kv, NULL, 0, after, sizeof(after), 1, on_key, &l);
    if (rc == 0 && l.n == 0) /* past the last key: wrap to the first */
        rc = kv_list(kv, NULL, 0, NULL, 0, 1, on_key, &l);
    if (rc != 0)
        resp_reply_kv_error(&p->reply, rc);
    else if (l.n == 0)
        resp_null(&p->reply, p->proto);
    else
        resp_bulk(&p->reply, l.keys[0], l.lens[0]);
    list_free(&l);
}

void cmd_randomkey(struct resp_ctx *c)
{
    resp_defer(c, run_randomkey);
}
