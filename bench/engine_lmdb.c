/*
 * engine_lmdb.c - the benchmark adapter for LMDB (lmdb.h, Debian's
 * liblmdb-dev). Every put and delete is its own write transaction, as every
 * other engine here acknowledges each write on its own; batching many writes
 * per transaction would make LMDB much faster and is not what the other
 * engines are measured doing. Fast mode opens the environment with
 * MDB_NOSYNC | MDB_NOMETASYNC (commits are written, not synced); durable mode
 * uses LMDB's default, a sync of the data pages and of the meta page at every
 * commit (LMDB has no group commit: writers take turns). Reads use one
 * read-only transaction per thread, reset and renewed around each get, the
 * idiom LMDB's documentation gives for fast repeated reads; the value is
 * copied out of the map, as a caller that keeps it past the transaction must.
 * A scan is a cursor in the same kind of transaction, each key copied out.
 * LMDB has no compaction (a B+tree reuses its free pages in place).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lmdb.h>

#include "driver.h"
#include "options.h"

struct lmdb_db {
    MDB_env *env;
    MDB_dbi dbi;
    bool fast;
    size_t value_size;
};

struct lthread {
    MDB_txn *read;    /* NULL until the thread's first get */
    MDB_cursor *scan; /* NULL until the thread's first scan; renewed with read */
    char *buf;        /* where a value read is copied */
    size_t cap;
    char keys[256]; /* where a scan copies each key */
};

static const struct bench_engine engine;

/* Room for num records of this size in a B+tree filled to about half after
 * random inserts, twice over (LMDB keeps old pages until no reader needs
 * them), plus slack. The map is address space, not disk. */
static size_t map_size(const struct bench_open_args *args)
{
    uint64_t per_key = (uint64_t)args->key_size + args->value_size + 64;
    uint64_t bytes = args->num * per_key * 4 + (256u << 20);
    return bytes > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)bytes;
}

static int fail_open(struct lmdb_db *l, const char *dir, const char *what, int rc)
{
    fprintf(stderr, "lmdb: %s %s: %s\n", what, dir, mdb_strerror(rc));
    if (l->env)
        mdb_env_close(l->env);
    free(l);
    return -1;
}

static int lm_open(const struct bench_open_args *args, void **db)
{
    struct lmdb_db *l = calloc(1, sizeof(*l));
    if (!l) {
        fprintf(stderr, "lmdb: out of memory\n");
        return -1;
    }
    l->fast = args->sync == BENCH_SYNC_FAST;
    l->value_size = args->value_size;
    if (mkdir(args->dir, 0755) != 0 && errno != EEXIST)
        return fail_open(l, args->dir, "mkdir", errno);
    int rc = mdb_env_create(&l->env);
    if (rc != 0)
        return fail_open(l, args->dir, "mdb_env_create", rc);
    rc = mdb_env_set_mapsize(l->env, map_size(args));
    if (rc == 0)
        rc = mdb_env_set_maxreaders(l->env, BENCH_MAX_THREADS + 16);
    if (rc != 0)
        return fail_open(l, args->dir, "mdb_env_set", rc);
    unsigned flags = MDB_NOTLS | (l->fast ? MDB_NOSYNC | MDB_NOMETASYNC : 0);
    rc = mdb_env_open(l->env, args->dir, flags, 0644);
    if (rc != 0)
        return fail_open(l, args->dir, "mdb_env_open", rc);
    MDB_txn *txn = NULL;
    rc = mdb_txn_begin(l->env, NULL, 0, &txn);
    if (rc != 0)
        return fail_open(l, args->dir, "mdb_txn_begin", rc);
    rc = mdb_dbi_open(txn, NULL, 0, &l->dbi);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return fail_open(l, args->dir, "mdb_dbi_open", rc);
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0)
        return fail_open(l, args->dir, "mdb_txn_commit", rc);
    *db = l;
    return 0;
}

static int lm_close(void *db)
{
    struct lmdb_db *l = db;
    int rc = 0;
    /* mini-kvstore syncs at close in every mode; so does this, so that the
     * reopen that follows finds the same state on disk. */
    if (l->fast)
        rc = mdb_env_sync(l->env, 1);
    if (rc != 0)
        fprintf(stderr, "lmdb: mdb_env_sync: %s\n", mdb_strerror(rc));
    mdb_env_close(l->env);
    free(l);
    return rc == 0 ? 0 : -1;
}

static void *lm_thread_begin(void *db)
{
    struct lmdb_db *l = db;
    struct lthread *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->cap = l->value_size > 0 ? l->value_size : 1;
    t->buf = malloc(t->cap);
    if (!t->buf) {
        free(t);
        return NULL;
    }
    return t;
}

static void lm_thread_end(void *db, void *tp)
{
    (void)db;
    struct lthread *t = tp;
    if (!t)
        return;
    if (t->scan)
        mdb_cursor_close(t->scan);
    if (t->read)
        mdb_txn_abort(t->read);
    free(t->buf);
    free(t);
}

static int failed(const char *what, int rc)
{
    bench_report_error(&engine, what, mdb_strerror(rc));
    return BENCH_ERROR;
}

/* One write transaction: put (del false) or delete key. */
static int write_one(struct lmdb_db *l, const char *key, size_t key_len, const char *val,
                     size_t val_len, bool del)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(l->env, NULL, 0, &txn);
    if (rc != 0)
        return failed("mdb_txn_begin", rc);
    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    MDB_val v = {.mv_size = val_len, .mv_data = (void *)val};
    rc = del ? mdb_del(txn, l->dbi, &k, NULL) : mdb_put(txn, l->dbi, &k, &v, 0);
    if (rc == MDB_NOTFOUND && del) {
        mdb_txn_abort(txn);
        return 0;
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return failed(del ? "mdb_del" : "mdb_put", rc);
    }
    rc = mdb_txn_commit(txn);
    return rc == 0 ? 0 : failed("mdb_txn_commit", rc);
}

static int lm_put(void *db, void *t, const char *key, size_t key_len, const char *val,
                  size_t val_len)
{
    (void)t;
    return write_one(db, key, key_len, val, val_len, false);
}

/* One write transaction of n puts. */
static int lm_put_batch(void *db, void *t, int n, const char *const *keys, size_t key_len,
                        const char *const *vals, const size_t *val_lens)
{
    (void)t;
    struct lmdb_db *l = db;
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(l->env, NULL, 0, &txn);
    if (rc != 0)
        return failed("mdb_txn_begin", rc);
    for (int i = 0; i < n; i++) {
        MDB_val k = {.mv_size = key_len, .mv_data = (void *)keys[i]};
        MDB_val v = {.mv_size = val_lens[i], .mv_data = (void *)vals[i]};
        rc = mdb_put(txn, l->dbi, &k, &v, 0);
        if (rc != 0) {
            mdb_txn_abort(txn);
            return failed("mdb_put", rc);
        }
    }
    rc = mdb_txn_commit(txn);
    return rc == 0 ? 0 : failed("mdb_txn_commit", rc);
}

static int lm_del(void *db, void *t, const char *key, size_t key_len)
{
    (void)t;
    return write_one(db, key, key_len, NULL, 0, true);
}

static int lm_get(void *db, void *tp, const char *key, size_t key_len, const char *expect,
                  size_t expect_len)
{
    struct lmdb_db *l = db;
    struct lthread *t = tp;
    if (!t)
        return failed("thread setup", ENOMEM);
    int rc = t->read ? mdb_txn_renew(t->read) : mdb_txn_begin(l->env, NULL, MDB_RDONLY, &t->read);
    if (rc != 0) {
        t->read = NULL;
        return failed("mdb_txn_begin(read)", rc);
    }
    MDB_val k = {.mv_size = key_len, .mv_data = (void *)key};
    MDB_val v;
    rc = mdb_get(t->read, l->dbi, &k, &v);
    int result = BENCH_FOUND;
    if (rc == MDB_NOTFOUND) {
        result = BENCH_NOTFOUND;
    } else if (rc != 0) {
        result = failed("mdb_get", rc);
    } else {
        size_t n = v.mv_size < t->cap ? v.mv_size : t->cap;
        memcpy(t->buf, v.mv_data, n);
        if (expect && (v.mv_size != expect_len || memcmp(t->buf, expect, n) != 0))
            result = BENCH_MISMATCH;
    }
    mdb_txn_reset(t->read);
    return result;
}

/* A cursor in the thread's read transaction: MDB_SET_RANGE to the start,
 * then MDB_NEXT, each key copied out as a caller that keeps it must. */
static int lm_scan(void *db, void *tp, const char *start, size_t start_len, int count, int *found)
{
    struct lmdb_db *l = db;
    struct lthread *t = tp;
    if (!t)
        return failed("thread setup", ENOMEM);
    int rc = t->read ? mdb_txn_renew(t->read) : mdb_txn_begin(l->env, NULL, MDB_RDONLY, &t->read);
    if (rc != 0) {
        t->read = NULL;
        return failed("mdb_txn_begin(read)", rc);
    }
    rc = t->scan ? mdb_cursor_renew(t->read, t->scan) : mdb_cursor_open(t->read, l->dbi, &t->scan);
    if (rc != 0) {
        t->scan = NULL;
        mdb_txn_reset(t->read);
        return failed("mdb_cursor_open", rc);
    }
    MDB_val k = {.mv_size = start_len, .mv_data = (void *)start};
    MDB_val v;
    int n = 0;
    rc = mdb_cursor_get(t->scan, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && n < count) {
        size_t len = k.mv_size < sizeof(t->keys) ? k.mv_size : sizeof(t->keys);
        memcpy(t->keys, k.mv_data, len);
        n++;
        if (n < count)
            rc = mdb_cursor_get(t->scan, &k, &v, MDB_NEXT);
    }
    mdb_txn_reset(t->read);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return failed("mdb_cursor_get", rc);
    *found = n;
    return 0;
}

static const struct bench_engine engine = {
    .name = "lmdb",
    .settings = "one write transaction per put; fast: MDB_NOSYNC|MDB_NOMETASYNC; durable: "
                "default (data and meta page synced at every commit, no group commit); reads "
                "renew a per-thread read-only transaction and copy the value out",
    .open = lm_open,
    .close = lm_close,
    .thread_begin = lm_thread_begin,
    .thread_end = lm_thread_end,
    .put = lm_put,
    .put_batch = lm_put_batch,
    .get = lm_get,
    .del = lm_del,
    .scan = lm_scan,
};

int main(int argc, char **argv)
{
    return bench_main(argc, argv, &engine);
}
