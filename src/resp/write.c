/*
 * write.c - RESP's writes through the engine, with no thread waiting for
 * them: a write is one batch handed to kv_write_async by its connection's
 * loop; the engine's commit thread runs the completion, which makes the
 * reply and gives the command back to its loop (resp_pending_finished), so
 * that with SYNC_MODE=always the reply leaves after the batch's fdatasync,
 * and the writes of every connection, pipelined or not, share fdatasyncs.
 *
 * Two kinds of write. A blind write (SET, SET NX/XX, SETNX, MSET, MSETNX,
 * DEL) is ops made from the arguments, with engine conditions where the
 * command has one (KV_IF_ABSENT for NX), and a finish function that reads
 * the outcome. A program (GETSET, INCR, APPEND, RENAME, SET ... GET, and
 * every command of EXEC) runs against a view of the store (struct
 * resp_tx): its reads are recorded, and its writes kept in the view, so
 * that a later command of the same transaction sees them. The batch is
 * then the view's final state of each key written (PUT or DEL) plus a
 * condition for each key read that the store still holds what was read
 * (KV_IF_CRC of the value, KV_IF_EXPIRY of an expiry read, or
 * KV_IF_ABSENT), plus EXEC's WATCH checks first.
 * If one of the read conditions fails, some other write of those keys was
 * sequenced in between: the completion (on the commit thread, where every
 * batch sequenced before has completed and is visible) runs the program
 * again on the new state and submits again. A batch that loses at most to
 * the writes sequenced with it before the retry is sequenced again right
 * behind them, so a retry waits for the contenders of one round at most;
 * TX_ATTEMPTS_MAX bounds it anyway. A failed WATCH check is not retried:
 * EXEC answers a null array.
 *
 * One exception: when the store does not sync each write (SYNC_MODE other
 * than always), a blind write of a connection that has nothing pending and
 * no further command buffered runs here with kv_write, which returns once
 * the batch is in the log: a lone write gains nothing from company, and the
 * trip through the commit thread and back would cost it two thread
 * switches. A pipeline still goes through kv_write_async.
 *
 * srv->writes_in_flight counts the writes in the engine, so that the
 * server's stop waits for every completion before the loops end.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

/* Runs of a program whose reads changed under it before it gives up. */
#define TX_ATTEMPTS_MAX 1000u

/* A key the view knows: as the store had it (when read), and as the
 * transaction's writes left it. */
struct tx_entry {
    const char *key;
    size_t len;
    bool read; /* the store's state was read: the batch checks it is unchanged */
    bool base_present;
    uint32_t base_crc;
    bool known;   /* present/val hold the key's state in the view */
    bool present; /* ... the key has a value in the view */
    bool written; /* the transaction wrote it: the batch writes its final state */
    const char *val;
    size_t vlen;
    void *owned; /* the buffer val points into, when the view owns it */
    bool owned_kv;
    uint64_t expire_at_ms;    /* the written value's expiry (0 none) */
    bool keep_expiry;         /* ... or the one the key has (KV_KEEP_EXPIRY) */
    bool expiry_read;         /* the store's expiry was read: the batch checks it is unchanged */
    bool base_expiry_present; /* ... the key was there, with expiry base_expire_at_ms (0 none) */
    uint64_t base_expire_at_ms;
};

struct resp_tx {
    kv_store *kv;
    int proto;
    bool exec; /* EXEC: the reply is an array of the commands' replies */
    bool own_args;
    struct resp_tx_cmd *cmds;
    size_t n_cmds;
    struct resp_watch *watch;
    size_t n_watch;
    struct tx_entry *e;
    size_t n_e, cap_e;
    size_t *slots; /* open addressing over e: index + 1, 0 empty */
    size_t n_slots;
    struct growbuf reply;
    int error;       /* a view operation failed (no memory): the whole answer is this */
    uint64_t writes; /* keys the batch writes */
};

/* ---- the view */

static uint64_t key_hash(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void entry_release(struct tx_entry *e)
{
    if (e->owned_kv)
        kv_free(e->owned);
    else
        free(e->owned);
    e->owned = NULL;
    e->owned_kv = false;
}

static bool slots_grow(struct resp_tx *t)
{
    size_t n = t->n_slots ? t->n_slots * 2 : 16;
    size_t *slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return false;
    for (size_t i = 0; i < t->n_e; i++) {
        size_t j = key_hash(t->e[i].key, t->e[i].len) & (n - 1);
        while (slots[j] != 0)
            j = (j + 1) & (n - 1);
        slots[j] = i + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->n_slots = n;
    return true;
}

/* The entry of key, made when create; NULL when absent or out of memory
 * (then t->error is set). */
static struct tx_entry *entry_find(struct resp_tx *t, const char *key, size_t len)
{
    if ((t->n_e + 1) * 2 > t->n_slots && !slots_grow(t)) {
        t->error = KV_ENOMEM;
        return NULL;
    }
    size_t j = key_hash(key, len) & (t->n_slots - 1);
    while (t->slots[j] != 0) {
        struct tx_entry *e = &t->e[t->slots[j] - 1];
        if (e->len == len && memcmp(e->key, key, len) == 0)
            return e;
        j = (j + 1) & (t->n_slots - 1);
    }
    if (t->n_e == t->cap_e) {
        size_t cap = t->cap_e ? t->cap_e * 2 : 8;
        struct tx_entry *grown = realloc(t->e, cap * sizeof(*grown));
        if (grown == NULL) {
            t->error = KV_ENOMEM;
            return NULL;
        }
        t->e = grown;
        t->cap_e = cap;
    }
    struct tx_entry *e = &t->e[t->n_e++];
    *e = (struct tx_entry){.key = key, .len = len};
    t->slots[j] = t->n_e;
    return e;
}

static bool key_valid(size_t len)
{
    return len > 0 && len <= KV_MAX_KEY_LEN;
}

int resp_tx_get(struct resp_tx *t, const char *key, size_t len, const char **val, size_t *vlen)
{
    if (!key_valid(len))
        return 0; /* no key of that length exists */
    struct tx_entry *e = entry_find(t, key, len);
    if (e == NULL)
        return KV_ENOMEM;
    if (!e->known) {
        void *v = NULL;
        size_t n = 0;
        uint32_t crc = 0;
        int rc = kv_get_crc(t->kv, key, len, &v, &n, &crc);
        if (rc != 0 && rc != KV_ENOTFOUND)
            return rc;
        e->read = e->known = true;
        e->base_present = e->present = rc == 0;
        e->base_crc = crc;
        e->owned = v;
        e->owned_kv = true;
        e->val = v != NULL ? v : "";
        e->vlen = n;
    }
    if (!e->present)
        return 0;
    *val = e->val;
    *vlen = e->vlen;
    return 1;
}

/* Sets key's state in the view to val (present) or absent. */
static int view_write(struct resp_tx *t, const char *key, size_t len, bool present, const char *val,
                      size_t vlen, bool copy)
{
    if (!key_valid(len))
        return KV_EINVAL;
    char *dup = NULL;
    if (present && copy) {
        dup = malloc(vlen > 0 ? vlen : 1);
        if (dup == NULL) {
            t->error = KV_ENOMEM;
            return KV_ENOMEM;
        }
        memcpy(dup, val, vlen);
    }
    struct tx_entry *e = entry_find(t, key, len);
    if (e == NULL) {
        free(dup);
        return KV_ENOMEM;
    }
    entry_release(e);
    e->known = e->written = true;
    e->present = present;
    e->owned = dup;
    e->val = !present ? NULL : dup != NULL ? dup : val;
    e->vlen = present ? vlen : 0;
    return 0;
}

int resp_tx_put(struct resp_tx *t, const char *key, size_t len, const char *val, size_t vlen,
                bool copy)
{
    return resp_tx_put_expiring(t, key, len, val, vlen, copy, 0, false);
}

int resp_tx_put_expiring(struct resp_tx *t, const char *key, size_t len, const char *val,
                         size_t vlen, bool copy, uint64_t expire_at_ms, bool keep)
{
    if (keep && key_valid(len)) {
        /* The expiry kept is the one the transaction gave the key, when it
         * wrote the key: none after a delete. */
        const struct tx_entry *e = entry_find(t, key, len);
        if (e == NULL)
            return KV_ENOMEM;
        if (e->written && !(e->present && e->keep_expiry)) {
            expire_at_ms = e->present ? e->expire_at_ms : 0;
            keep = false;
        }
    }
    int rc = view_write(t, key, len, true, val, vlen, copy);
    if (rc == 0) {
        struct tx_entry *e = entry_find(t, key, len);
        e->expire_at_ms = keep ? 0 : expire_at_ms;
        e->keep_expiry = keep;
    }
    return rc;
}

int resp_tx_del(struct resp_tx *t, const char *key, size_t len)
{
    return view_write(t, key, len, false, NULL, 0, false);
}

int resp_tx_expiry(struct resp_tx *t, const char *key, size_t len, uint64_t *at_ms)
{
    *at_ms = 0;
    if (!key_valid(len))
        return 0;
    struct tx_entry *e = entry_find(t, key, len);
    if (e == NULL)
        return KV_ENOMEM;
    if (e->known && !e->present)
        return 0;
    if (e->written && !e->keep_expiry) {
        *at_ms = e->expire_at_ms;
        return 1;
    }
    if (!e->expiry_read) {
        /* The header's expiry, not the value: TTL of a large value reads
         * a few bytes. */
        kv_stat_info st;
        int rc = kv_stat(t->kv, key, len, &st);
        if (rc != 0 && rc != KV_ENOTFOUND)
            return rc;
        if (rc == KV_ENOTFOUND && !e->known) {
            /* read as absent: the batch checks that it still is */
            e->read = e->known = true;
            e->base_present = e->present = false;
            return 0;
        }
        e->expiry_read = true;
        e->base_expiry_present = rc == 0;
        e->base_expire_at_ms = rc == 0 ? st.expire_at_ms : 0;
    }
    *at_ms = e->base_expire_at_ms;
    return 1;
}

int resp_tx_set_expiry(struct resp_tx *t, const char *key, size_t len, uint64_t at_ms)
{
    const char *val = NULL;
    size_t vlen = 0;
    int rc = resp_tx_get(t, key, len, &val, &vlen); /* the value, to write it again */
    if (rc <= 0)
        return rc < 0 ? rc : KV_ENOTFOUND;
    if (at_ms != 0 && at_ms <= resp_unix_ms())
        return resp_tx_del(t, key, len); /* passed already: Redis deletes the key */
    struct tx_entry *e = entry_find(t, key, len);
    if (e == NULL)
        return KV_ENOMEM;
    e->written = true;
    e->expire_at_ms = at_ms;
    e->keep_expiry = false;
    return 0;
}

struct growbuf *resp_tx_out(struct resp_tx *t)
{
    return &t->reply;
}

int resp_tx_proto(const struct resp_tx *t)
{
    return t->proto;
}

static void view_clear(struct resp_tx *t)
{
    for (size_t i = 0; i < t->n_e; i++)
        entry_release(&t->e[i]);
    t->n_e = 0;
    if (t->slots != NULL)
        memset(t->slots, 0, t->n_slots * sizeof(*t->slots));
    t->reply.len = 0;
    t->reply.failed = false;
    t->error = 0;
    t->writes = 0;
}

void resp_tx_free(struct resp_tx *t)
{
    if (t == NULL)
        return;
    view_clear(t);
    free(t->e);
    free(t->slots);
    growbuf_free(&t->reply);
    if (t->own_args) {
        for (size_t i = 0; i < t->n_cmds; i++)
            free(t->cmds[i].argv); /* one allocation with argl and the bytes */
    }
    free(t->cmds);
    for (size_t i = 0; i < t->n_watch; i++)
        free(t->watch[i].key);
    free(t->watch);
    free(t);
}

/* ---- running a transaction */

static kv_cond cond_of(bool present)
{
    return present ? KV_IF_CRC : KV_IF_ABSENT;
}

/* The batch of the view: the WATCH checks, then for each key the
 * transaction touched, its final state, conditional on what was read. */
static int build_ops(struct resp_tx *t, kv_op **out, size_t *n_out)
{
    size_t n = t->n_watch;
    for (size_t i = 0; i < t->n_e; i++)
        n += (size_t)(t->e[i].read || t->e[i].written) + t->e[i].expiry_read;
    *out = NULL;
    *n_out = 0;
    if (n == 0)
        return 0;
    kv_op *ops = calloc(n, sizeof(*ops));
    if (ops == NULL)
        return KV_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < t->n_watch; i++) {
        const struct resp_watch *w = &t->watch[i];
        ops[k++] = (kv_op){.type = KV_WRITE_CHECK,
                           .key = w->key,
                           .key_len = w->len,
                           .cond = cond_of(w->present),
                           .cond_crc = w->crc};
    }
    for (size_t i = 0; i < t->n_e; i++) {
        const struct tx_entry *e = &t->e[i];
        if (e->expiry_read) {
            /* before the key's own op: against the store as read */
            ops[k++] = (kv_op){.type = KV_WRITE_CHECK,
                               .key = e->key,
                               .key_len = e->len,
                               .cond = e->base_expiry_present ? KV_IF_EXPIRY : KV_IF_ABSENT,
                               .expire_at_ms = e->base_expiry_present ? e->base_expire_at_ms : 0};
        }
        if (!e->read && !e->written)
            continue;
        kv_op *op = &ops[k++];
        *op = (kv_op){.key = e->key, .key_len = e->len};
        if (e->read) {
            op->cond = cond_of(e->base_present);
            op->cond_crc = e->base_crc;
        }
        if (!e->written || (!e->present && e->read && !e->base_present)) {
            op->type = KV_WRITE_CHECK; /* read only, or absent before and after */
        } else if (e->present) {
            op->type = KV_WRITE_PUT;
            op->val = e->val;
            op->val_len = e->vlen;
            op->expire_at_ms = e->expire_at_ms;
            op->flags = e->keep_expiry ? KV_KEEP_EXPIRY : 0;
            t->writes++;
        } else {
            op->type = KV_WRITE_DEL;
            t->writes++;
        }
    }
    *out = ops;
    *n_out = k;
    return 0;
}

/* Runs p's transaction against the store as it is now: its reply (as it
 * stands if the batch goes through) in t->reply, its batch in p->ops. */
static void tx_run(struct resp_pending *p)
{
    struct resp_tx *t = p->tx;
    view_clear(t);
    free(p->ops);
    p->ops = NULL;
    p->n_ops = 0;
    if (t->exec)
        resp_array(&t->reply, t->n_cmds);
    for (size_t i = 0; i < t->n_cmds && t->error == 0; i++)
        t->cmds[i].prog(t, t->cmds[i].argc, t->cmds[i].argv, t->cmds[i].argl);
    int rc = t->error != 0 ? t->error : build_ops(t, &p->ops, &p->n_ops);
    if (rc != 0 || t->reply.failed) {
        free(p->ops);
        p->ops = NULL;
        p->n_ops = 0;
        t->reply.len = 0;
        t->reply.failed = false;
        resp_reply_kv_error(&t->reply, rc != 0 ? rc : KV_ENOMEM);
    }
}

static void count_changes(struct resp_server *srv, uint64_t n)
{
    if (n > 0)
        atomic_fetch_add_explicit(&srv->changes_since_save, n, memory_order_relaxed);
}

static void on_write_done(kv_op *ops, size_t n, int rc, const kv_commit_info *info, void *ctx);

/* The outcome of a transaction's batch. Returns true when it was submitted
 * again (its reads had changed), false when p's reply is final. */
static bool tx_finish(struct resp_pending *p, int rc)
{
    struct resp_tx *t = p->tx;
    if (rc == 0) {
        growbuf_free(&p->reply);
        p->reply = t->reply;
        t->reply = (struct growbuf){0};
        count_changes(p->srv, t->writes);
        return false;
    }
    if (rc != KV_ECONDITION) {
        resp_reply_kv_error(&p->reply, rc);
        return false;
    }
    for (size_t i = 0; i < t->n_watch; i++) {
        if (p->ops[i].rc == KV_ECONDITION) {
            resp_null_array(&p->reply, p->proto); /* a watched key changed */
            return false;
        }
    }
    if (++p->attempts >= TX_ATTEMPTS_MAX) {
        resp_errorf(&p->reply,
                    "ERR the keys of this command changed under it %u times in a row; try again",
                    TX_ATTEMPTS_MAX);
        return false;
    }
    tx_run(p);
    if (p->n_ops == 0)
        return tx_finish(p, 0);
    rc = kv_write_async(t->kv, p->ops, p->n_ops, on_write_done, p);
    if (rc == 0)
        return true;
    resp_reply_kv_error(&p->reply, rc);
    return false;
}

static void on_write_done(kv_op *ops, size_t n, int rc, const kv_commit_info *info, void *ctx)
{
    (void)ops;
    (void)n;
    struct resp_pending *p = ctx;
    struct resp_server *srv = p->srv;
    if (p->tx != NULL) {
        if (tx_finish(p, rc))
            return;
    } else {
        p->finish(p, rc);
    }
    /* After this the loop may free p. */
    resp_pending_replicate(p, rc == 0, info->seg, info->end);
    /* The count drops under the lock the stopper waits with: once it sees
     * zero it may free srv, so nothing here may read srv after the unlock. */
    pthread_mutex_lock(&srv->stop_lock);
    if (atomic_fetch_sub(&srv->writes_in_flight, 1) == 1)
        pthread_cond_broadcast(&srv->stop_cond);
    pthread_mutex_unlock(&srv->stop_lock);
}

bool resp_write_submit(struct resp_pending *p)
{
    struct resp_server *srv = p->srv;
    atomic_fetch_add(&srv->writes_in_flight, 1);
    int rc = kv_write_async(blob_kv(srv->app->store), p->ops, p->n_ops, on_write_done, p);
    if (rc == 0)
        return true;
    atomic_fetch_sub(&srv->writes_in_flight, 1);
    growbuf_free(&p->reply);
    resp_reply_kv_error(&p->reply, rc);
    return false;
}

void resp_writes_wait_idle(struct resp_server *srv)
{
    pthread_mutex_lock(&srv->stop_lock);
    while (atomic_load(&srv->writes_in_flight) > 0) {
        /* Every write completes (durable, or failed); the bound only
         * guards against a wake-up lost to the order of the atomics. */
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 100 * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&srv->stop_cond, &srv->stop_lock, &t);
    }
    pthread_mutex_unlock(&srv->stop_lock);
}

void resp_write_blind(struct resp_ctx *c, struct resp_pending *p)
{
    const struct resp_conn *conn = c->conn;
    if (c->srv->durable || conn->n_pending > 0 || conn->parser.pos < conn->in_len) {
        resp_queue_write(c->conn, p);
        return;
    }
    /* Without an fdatasync to wait for, kv_write returns once the batch is
     * in the log: cheaper here than a trip through the commit thread and
     * back. */
    p->finish(p, kv_write(blob_kv(c->srv->app->store), p->ops, p->n_ops));
    growbuf_append(c->out, p->reply.data, p->reply.len);
    resp_pending_free(p);
}

/* Runs p's transaction now, on the loop: its reply goes to c->out at once
 * when it needs no batch (nothing written, and what it read is as current
 * as a read can be: nothing of the connection is pending), else p is
 * queued as a write. */
static void start_tx(struct resp_ctx *c, struct resp_pending *p)
{
    tx_run(p);
    struct resp_tx *t = p->tx;
    bool answered =
        p->n_ops == 0 || (!t->exec && t->writes == 0 && t->n_watch == 0 && c->conn->n_pending == 0);
    if (answered) {
        growbuf_append(c->out, t->reply.data, t->reply.len);
        resp_pending_free(p);
        return;
    }
    resp_queue_write(c->conn, p);
}

static struct resp_tx *tx_new(struct resp_ctx *c)
{
    struct resp_tx *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->kv = blob_kv(c->srv->app->store);
    t->proto = c->proto;
    return t;
}

void resp_run_program(struct resp_ctx *c)
{
    struct resp_pending *p = resp_pending_new(c);
    if (p == NULL)
        return;
    struct resp_tx *t = tx_new(c);
    struct resp_tx_cmd *cmd = calloc(1, sizeof(*cmd));
    if (t == NULL || cmd == NULL) {
        free(t);
        free(cmd);
        resp_pending_free(p);
        resp_error(c->out, "ERR out of memory");
        return;
    }
    *cmd = (struct resp_tx_cmd){
        .prog = c->cmd->prog, .argc = p->argc, .argv = p->argv, .argl = p->argl};
    t->cmds = cmd;
    t->n_cmds = 1;
    p->tx = t;
    start_tx(c, p);
}

void resp_run_exec(struct resp_ctx *c)
{
    struct resp_conn *conn = c->conn;
    struct resp_pending *p = resp_pending_new(c);
    struct resp_tx *t = p != NULL ? tx_new(c) : NULL;
    if (t == NULL) {
        if (p != NULL)
            resp_error(c->out, "ERR out of memory");
        resp_pending_free(p);
        resp_multi_reset(conn);
        return;
    }
    t->exec = true;
    t->own_args = true;
    t->cmds = conn->queued;
    t->n_cmds = conn->n_queued;
    t->watch = conn->watched;
    t->n_watch = conn->n_watched;
    conn->queued = NULL;
    conn->n_queued = conn->queued_cap = conn->queued_bytes = 0;
    conn->watched = NULL;
    conn->n_watched = 0;
    resp_multi_reset(conn);
    p->tx = t;
    start_tx(c, p);
}
