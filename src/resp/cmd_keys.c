/*
 * cmd_keys.c - the string and key commands over the store: GET SET MGET
 * STRLEN GETRANGE DEL UNLINK EXISTS TYPE TTL PTTL SCAN KEYS RANDOMKEY (the
 * expiry commands, and SET's expiry options, are cmd_expire.c's). Every value is a string; a key is
 * any byte string of 1 to 65,535 bytes, the blob of the same name over HTTP.
 *
 * Writes are batches submitted to the engine without waiting (write.c): SET
 * and DEL are blind (the ops come from the arguments, NX and XX are engine
 * conditions), SET ... GET runs as a program that reads and writes in one
 * batch. The prog_ functions are how these commands run inside EXEC.
 * What a key is (STRLEN, EXISTS, TYPE, TTL) comes from kv_stat, which reads
 * a record's head, never its value. Listings (SCAN, KEYS, RANDOMKEY) read
 * the ordered index with kv_range and run on the pool, so that a long one
 * never stalls the other connections of its loop.
 *
 * SCAN's cursor is a key's position in the log (kv_stat_info.position: its
 * record's segment and offset, below 2^63, as clients that parse cursors as
 * numbers need): the next page starts after the key the record holds
 * (kv_key_at). A segment never changes below its size, so the key comes
 * back exact however the store changed meanwhile, and a key present for the
 * whole scan is never missed; no table of cursors is kept, and a cursor
 * outlives a restart. Once a compaction has removed the record's segment
 * the place is lost, and the scan starts over from the first key: Redis's
 * SCAN may return a key more than once, never miss one.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* kv_stat of argument i: 0, or 1 when the key is not there (an empty or
 * overlong key cannot be), or -1 after replying with an error. */
static int stat_arg(struct resp_ctx *c, size_t i, kv_stat_info *st)
{
    int rc = kv_stat(store_of(c), c->argv[i], c->argl[i], st);
    if (rc == 0)
        return 0;
    if (rc == KV_ENOTFOUND || rc == KV_EINVAL)
        return 1;
    resp_reply_kv_error(c->out, rc);
    return -1;
}

void cmd_strlen(struct resp_ctx *c)
{
    kv_stat_info st;
    int state = stat_arg(c, 1, &st);
    if (state >= 0)
        resp_int(c->out, state == 0 ? (long long)st.size : 0);
}

/* GETRANGE's reply: bytes start to end of val (len bytes, 0 when the key
 * is absent), by Redis's rules: negative offsets count from the end, both
 * are clamped, and an empty range is an empty string. */
static void reply_range(struct growbuf *out, const char *val, size_t len, long long start,
                        long long end)
{
    long long n = (long long)len;
    if (start < 0 && end < 0 && start > end) {
        resp_bulk(out, "", 0);
        return;
    }
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
        resp_bulk(out, "", 0);
    else
        resp_bulk(out, val + start, (size_t)(end - start + 1));
}

static const char not_integer[] = "ERR value is not an integer or out of range";

void cmd_getrange(struct resp_ctx *c)
{
    long long start = 0, end = 0;
    if (!resp_arg_ll(c, 2, &start) || !resp_arg_ll(c, 3, &end)) {
        resp_error(c->out, not_integer);
        return;
    }
    void *val = NULL;
    size_t len = 0;
    int rc = kv_get(store_of(c), c->argv[1], c->argl[1], &val, &len);
    if (rc != 0 && rc != KV_ENOTFOUND && rc != KV_EINVAL)
        resp_reply_kv_error(c->out, rc);
    else
        reply_range(c->out, val, len, start, end);
    kv_free(val);
}

void prog_getrange(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    long long start = 0, end = 0;
    const char *val = NULL;
    size_t len = 0;
    if (!resp_parse_ll(argv[2], argl[2], &start) || !resp_parse_ll(argv[3], argl[3], &end)) {
        resp_error(resp_tx_out(t), not_integer);
        return;
    }
    int rc = resp_tx_get(t, argv[1], argl[1], &val, &len);
    if (rc < 0)
        resp_reply_kv_error(resp_tx_out(t), rc);
    else
        reply_range(resp_tx_out(t), val, rc > 0 ? len : 0, start, end);
}

/* ---- writes */

/* SET's options, parsed in one place for the command and for its run
 * inside EXEC. */
struct set_opts {
    bool nx, xx;           /* only when the key is absent / present */
    bool get;              /* reply with the old value */
    struct resp_expiry ex; /* EX PX EXAT PXAT KEEPTTL (cmd_expire.c) */
};

static bool word_is(const char *arg, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp(arg, word, len) == 0;
}

/* Parses the options of SET key value [...] in argv[3 ..]; returns NULL,
 * or the error to reply with. */
static const char *set_parse(size_t argc, char **argv, const size_t *argl, struct set_opts *o)
{
    *o = (struct set_opts){0};
    /* The expiry options are read from a context that only reads them. */
    const struct resp_ctx args = {.argc = argc, .argv = argv, .argl = (size_t *)argl};
    uint64_t now = resp_unix_ms();
    for (size_t i = 3; i < argc; i++) {
        const char *a = argv[i];
        size_t n = argl[i];
        int took = resp_set_expiry_option(&args, i, now, &o->ex);
        if (took == RESP_EXPIRY_NOT_INTEGER)
            return "ERR value is not an integer or out of range";
        if (took == RESP_EXPIRY_INVALID)
            return "ERR invalid expire time in 'set' command";
        if (took < 0)
            return "ERR syntax error";
        if (took > 0) {
            i += (size_t)took - 1;
            continue;
        }
        if (word_is(a, n, "NX") && !o->xx)
            o->nx = true;
        else if (word_is(a, n, "XX") && !o->nx)
            o->xx = true;
        else if (word_is(a, n, "GET"))
            o->get = true;
        else
            return "ERR syntax error";
    }
    return NULL;
}

/* SET without GET: one PUT, NX and XX as its engine condition. */
static void finish_set(struct resp_pending *p, int rc)
{
    if (rc == 0) {
        atomic_fetch_add_explicit(&p->srv->changes_since_save, 1, memory_order_relaxed);
        resp_ok(&p->reply);
    } else if (rc == KV_ECONDITION) {
        resp_null(&p->reply, p->proto);
    } else {
        resp_reply_kv_error(&p->reply, rc);
    }
}

void cmd_set(struct resp_ctx *c)
{
    struct set_opts o;
    const char *err = set_parse(c->argc, c->argv, c->argl, &o);
    if (err != NULL) {
        resp_error(c->out, err);
        return;
    }
    if (c->argl[1] == 0 || c->argl[1] > KV_MAX_KEY_LEN) {
        resp_reply_kv_error(c->out, KV_EINVAL);
        return;
    }
    if (o.get) {
        resp_run_program(c); /* the old value and the write, one batch */
        return;
    }
    resp_put_blind(c, 2, o.nx ? KV_IF_ABSENT : o.xx ? KV_IF_PRESENT : KV_IF_ANY, &o.ex);
}

void resp_put_blind(struct resp_ctx *c, size_t val_arg, kv_cond cond, const struct resp_expiry *ex)
{
    struct resp_pending *p = resp_pending_new(c);
    kv_op *op = p != NULL ? calloc(1, sizeof(*op)) : NULL;
    if (op == NULL) {
        if (p != NULL)
            resp_error(c->out, "ERR out of memory");
        resp_pending_free(p);
        return;
    }
    *op = (kv_op){.type = KV_WRITE_PUT,
                  .key = p->argv[1],
                  .key_len = p->argl[1],
                  .val = p->argv[val_arg],
                  .val_len = p->argl[val_arg],
                  .cond = cond,
                  .expire_at_ms = ex->keep ? 0 : ex->at_ms,
                  .flags = ex->keep ? KV_KEEP_EXPIRY : 0};
    p->ops = op;
    p->n_ops = 1;
    p->finish = finish_set;
    resp_write_blind(c, p);
}

void prog_set(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    struct growbuf *out = resp_tx_out(t);
    struct set_opts o;
    const char *err = set_parse(argc, argv, argl, &o);
    if (err != NULL) {
        resp_error(out, err);
        return;
    }
    const char *old = NULL;
    size_t old_len = 0;
    int rc = o.get || o.nx || o.xx ? resp_tx_get(t, argv[1], argl[1], &old, &old_len) : 0;
    if (rc < 0) {
        resp_reply_kv_error(out, rc);
        return;
    }
    /* The old value is copied before the write may free it. */
    struct growbuf reply = {0};
    if (o.get) {
        if (rc == 1)
            resp_bulk(&reply, old, old_len);
        else
            resp_null(&reply, resp_tx_proto(t));
    }
    if ((o.nx && rc == 1) || (o.xx && rc == 0)) {
        if (!o.get)
            resp_null(&reply, resp_tx_proto(t));
    } else {
        int wrc = resp_tx_put_expiring(t, argv[1], argl[1], argv[2], argl[2], false, o.ex.at_ms,
                                       o.ex.keep);
        if (wrc != 0) {
            growbuf_free(&reply);
            resp_reply_kv_error(out, wrc);
            return;
        }
        if (!o.get)
            resp_ok(&reply);
    }
    growbuf_append(out, reply.data, reply.len);
    growbuf_free(&reply);
}

/* DEL: one batch of deletes, as Redis runs it: atomically. The engine says
 * which keys existed (an absent key's op has rc KV_ENOTFOUND). */
static void finish_del(struct resp_pending *p, int rc)
{
    if (rc != 0) {
        resp_reply_kv_error(&p->reply, rc);
        return;
    }
    long long deleted = 0;
    for (size_t i = 0; i < p->n_ops; i++)
        deleted += p->ops[i].rc == 0;
    if (deleted > 0)
        atomic_fetch_add_explicit(&p->srv->changes_since_save, (uint64_t)deleted,
                                  memory_order_relaxed);
    resp_int(&p->reply, deleted);
}

void cmd_del(struct resp_ctx *c)
{
    struct resp_pending *p = resp_pending_new(c);
    kv_op *ops = p != NULL ? calloc(c->argc, sizeof(*ops)) : NULL;
    if (ops == NULL) {
        if (p != NULL)
            resp_error(c->out, "ERR out of memory");
        resp_pending_free(p);
        return;
    }
    /* A key of a length no key has cannot exist: it is left out. */
    size_t n = 0;
    for (size_t i = 1; i < p->argc; i++) {
        if (p->argl[i] == 0 || p->argl[i] > KV_MAX_KEY_LEN)
            continue;
        ops[n++] = (kv_op){.type = KV_WRITE_DEL, .key = p->argv[i], .key_len = p->argl[i]};
    }
    if (n == 0) {
        free(ops);
        resp_pending_free(p);
        resp_int(c->out, 0);
        return;
    }
    p->ops = ops;
    p->n_ops = n;
    p->finish = finish_del;
    resp_write_blind(c, p);
}

void prog_del(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    long long deleted = 0;
    for (size_t i = 1; i < argc; i++) {
        const char *val = NULL;
        size_t len = 0;
        int rc = resp_tx_get(t, argv[i], argl[i], &val, &len);
        if (rc == 1)
            rc = resp_tx_del(t, argv[i], argl[i]);
        else if (rc == 0)
            continue;
        if (rc < 0) {
            resp_reply_kv_error(resp_tx_out(t), rc);
            return;
        }
        deleted++;
    }
    resp_int(resp_tx_out(t), deleted);
}

/* ---- reads inside EXEC: from the transaction's view */

void prog_get(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    const char *val = NULL;
    size_t len = 0;
    int rc = resp_tx_get(t, argv[1], argl[1], &val, &len);
    if (rc == 1)
        resp_bulk(resp_tx_out(t), val, len);
    else if (rc == 0)
        resp_null(resp_tx_out(t), resp_tx_proto(t));
    else
        resp_reply_kv_error(resp_tx_out(t), rc);
}

void prog_mget(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    struct growbuf *out = resp_tx_out(t);
    resp_array(out, argc - 1);
    for (size_t i = 1; i < argc; i++) {
        const char *val = NULL;
        size_t len = 0;
        if (resp_tx_get(t, argv[i], argl[i], &val, &len) == 1)
            resp_bulk(out, val, len);
        else
            resp_null(out, resp_tx_proto(t)); /* MGET answers nil for anything not there */
    }
}

void prog_strlen(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    const char *val = NULL;
    size_t len = 0;
    int rc = resp_tx_get(t, argv[1], argl[1], &val, &len);
    if (rc < 0)
        resp_reply_kv_error(resp_tx_out(t), rc);
    else
        resp_int(resp_tx_out(t), rc == 1 ? (long long)len : 0);
}

void prog_exists(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    long long n = 0;
    for (size_t i = 1; i < argc; i++) {
        const char *val = NULL;
        size_t len = 0;
        int rc = resp_tx_get(t, argv[i], argl[i], &val, &len);
        if (rc < 0) {
            resp_reply_kv_error(resp_tx_out(t), rc);
            return;
        }
        n += rc;
    }
    resp_int(resp_tx_out(t), n);
}

void prog_type(struct resp_tx *t, size_t argc, char **argv, const size_t *argl)
{
    (void)argc;
    const char *val = NULL;
    size_t len = 0;
    int rc = resp_tx_get(t, argv[1], argl[1], &val, &len);
    if (rc < 0)
        resp_reply_kv_error(resp_tx_out(t), rc);
    else
        resp_simple(resp_tx_out(t), rc == 1 ? "string" : "none");
}

/* ---- keys */

void cmd_exists(struct resp_ctx *c)
{
    long long n = 0;
    for (size_t i = 1; i < c->argc; i++) {
        kv_stat_info st;
        int state = stat_arg(c, i, &st);
        if (state < 0)
            return;
        n += state == 0;
    }
    resp_int(c->out, n);
}

void cmd_type(struct resp_ctx *c)
{
    kv_stat_info st;
    int state = stat_arg(c, 1, &st);
    if (state >= 0)
        resp_simple(c->out, state == 0 ? "string" : "none");
}

/* TTL and PTTL, from the key's header */
void cmd_ttl(struct resp_ctx *c)
{
    kv_stat_info st;
    int state = stat_arg(c, 1, &st);
    if (state >= 0)
        resp_reply_ttl(c->out, state == 0, state == 0 ? st.expire_at_ms : 0, c->argl[0] == 3);
}

/* ---- listings */

/* Keys gathered by a kv_range callback, in order. */
struct key_list {
    const char *pat; /* MATCH pattern, NULL for all */
    size_t pat_len;
    bool type_ok; /* SCAN TYPE names "string" (or no TYPE) */
    size_t n, cap;
    char **keys;
    size_t *lens;
    struct key_list *visited; /* SCAN: every key read, matched or not */
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
    *l = (struct key_list){0};
}

static int on_key(const void *key, size_t len, const void *val, size_t val_len, void *ctx)
{
    (void)val;
    (void)val_len;
    struct key_list *l = ctx;
    if (l->visited != NULL && !list_push(l->visited, key, len))
        return KV_ENOMEM;
    if (!l->type_ok)
        return 0;
    if (l->pat != NULL && !resp_glob_match(l->pat, l->pat_len, key, len, false))
        return 0;
    return list_push(l, key, len) ? 0 : KV_ENOMEM;
}

static void reply_keys(struct growbuf *out, const struct key_list *l)
{
    resp_array(out, l->n);
    for (size_t i = 0; i < l->n; i++)
        resp_bulk(out, l->keys[i], l->lens[i]);
}

/* The literal start of a glob pattern (before any * ? [ or \), which
 * kv_range can use as a prefix. */
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
    kv_range_opts r = {.prefix = l.pat, .prefix_len = literal_prefix(l.pat, l.pat_len)};
    int rc = kv_range(blob_kv(p->srv->app->store), &r, on_key, &l);
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

/* Where a SCAN page starts: after the key of the cursor's position (*key,
 * to free), or (*key NULL) at the first key, for cursor 0 and for a position
 * a compaction has removed. 0, or the code to reply with. */
static int scan_start(kv_store *kv, uint64_t cursor, void **key, size_t *len)
{
    *key = NULL;
    *len = 0;
    if (cursor == 0)
        return 0;
    int rc = kv_key_at(kv, cursor, key, len);
    return rc == KV_ENOTFOUND ? 0 : rc;
}

/*
 * The cursor after a full page: the position of its last key, or, when
 * that key was deleted since the page was read, of the last one still
 * there (every key after it comes after them all). When none is left, the
 * page's own cursor: the next call reads what follows from the same place.
 */
static int scan_next(kv_store *kv, const struct key_list *visited, uint64_t cursor, uint64_t *next)
{
    for (size_t i = visited->n; i-- > 0;) {
        kv_stat_info st;
        int rc = kv_stat(kv, visited->keys[i], visited->lens[i], &st);
        if (rc == 0) {
            *next = st.position;
            return 0;
        }
        if (rc != KV_ENOTFOUND)
            return rc;
    }
    *next = cursor;
    return 0;
}

static void run_scan(struct resp_pending *p)
{
    kv_store *kv = blob_kv(p->srv->app->store);
    struct scan_opts o;
    scan_parse(p->argc, p->argv, p->argl, &o);
    void *after = NULL;
    size_t after_len = 0;
    int rc = scan_start(kv, o.cursor, &after, &after_len);
    if (rc == KV_EINVAL) {
        resp_error(&p->reply, "ERR invalid cursor: it names no place in this store (a cursor "
                              "is 0 or one that SCAN returned)");
        return;
    }
    /* COUNT is the work done, as in Redis: that many keys are visited, and
     * MATCH and TYPE filter what they return. */
    struct key_list visited = {0};
    struct key_list l = {
        .pat = o.pat, .pat_len = o.pat_len, .type_ok = o.type_ok, .visited = &visited};
    size_t limit = o.count > 100000 ? 100000 : (size_t)o.count;
    kv_range_opts r = {.start = after,
                       .start_len = after_len,
                       .limit = limit,
                       .flags = after != NULL ? KV_RANGE_AFTER : 0};
    if (rc == 0)
        rc = kv_range(kv, &r, on_key, &l);
    /* A full page may have more after it; a short one was the end. A page
     * that started over (o.cursor named a compacted record) has no cursor
     * of its own to fall back on but 0's, which would end the scan: it
     * must hold a key that is still there. */
    uint64_t next = 0;
    if (rc == 0 && visited.n == limit)
        rc = scan_next(kv, &visited, after != NULL ? o.cursor : 0, &next);
    if (rc == 0 && visited.n == limit && next == 0)
        rc = KV_EBUSY;
    free(after);
    if (rc == KV_EBUSY) {
        resp_error(&p->reply, "ERR SCAN lost its place: every key of the page was deleted "
                              "while it was read; call it again with the same cursor");
    } else if (rc != 0) {
        resp_reply_kv_error(&p->reply, rc);
    } else {
        resp_array(&p->reply, 2);
        resp_bulk_u64(&p->reply, next);
        reply_keys(&p->reply, &l);
    }
    list_free(&l);
    list_free(&visited);
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
    kv_range_opts r = {.start = after, .start_len = sizeof(after), .limit = 1};
    int rc = kv_range(kv, &r, on_key, &l);
    if (rc == 0 && l.n == 0) { /* past the last key: wrap to the first */
        r = (kv_range_opts){.limit = 1};
        rc = kv_range(kv, &r, on_key, &l);
    }
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
