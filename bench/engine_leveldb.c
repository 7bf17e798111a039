/*
 * engine_leveldb.c - the benchmark adapter for LevelDB, through its C API
 * (leveldb/c.h, Debian's libleveldb-dev). Options are LevelDB's defaults
 * (4 MiB write buffer, 8 MiB block cache, Snappy) plus a 10-bit bloom filter
 * per table, the setting LevelDB's documentation recommends for point
 * lookups: without it every absent key would cost a read per level. Fast
 * mode is WriteOptions.sync = false (the log is written, not synced);
 * durable mode is sync = true (LevelDB groups concurrent writers into one
 * log write and one sync).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <leveldb/c.h>

#include "driver.h"

struct ldb {
    leveldb_t *db;
    leveldb_options_t *options;
    leveldb_filterpolicy_t *bloom;
    leveldb_writeoptions_t *write;
    leveldb_readoptions_t *read;
};

static const struct bench_engine engine;

static void ldb_free(struct ldb *l)
{
    if (l->db)
        leveldb_close(l->db);
    if (l->options)
        leveldb_options_destroy(l->options);
    if (l->bloom)
        leveldb_filterpolicy_destroy(l->bloom);
    if (l->write)
        leveldb_writeoptions_destroy(l->write);
    if (l->read)
        leveldb_readoptions_destroy(l->read);
    free(l);
}

static int ldb_open(const struct bench_open_args *args, void **db)
{
    struct ldb *l = calloc(1, sizeof(*l));
    if (!l) {
        fprintf(stderr, "leveldb: out of memory\n");
        return -1;
    }
    l->options = leveldb_options_create();
    l->bloom = leveldb_filterpolicy_create_bloom(10);
    l->write = leveldb_writeoptions_create();
    l->read = leveldb_readoptions_create();
    if (!l->options || !l->bloom || !l->write || !l->read) {
        fprintf(stderr, "leveldb: out of memory\n");
        ldb_free(l);
        return -1;
    }
    leveldb_options_set_create_if_missing(l->options, 1);
    leveldb_options_set_filter_policy(l->options, l->bloom);
    leveldb_writeoptions_set_sync(l->write, args->sync == BENCH_SYNC_DURABLE);
    char *err = NULL;
    l->db = leveldb_open(l->options, args->dir, &err);
    if (err) {
        fprintf(stderr, "leveldb: open %s: %s\n", args->dir, err);
        leveldb_free(err);
        l->db = NULL;
        ldb_free(l);
        return -1;
    }
    *db = l;
    return 0;
}

static int ldb_close(void *db)
{
    ldb_free(db);
    return 0;
}

static int failed(const char *what, char *err)
{
    bench_report_error(&engine, what, err);
    leveldb_free(err);
    return BENCH_ERROR;
}

static int ldb_put(void *db, void *t, const char *key, size_t key_len, const char *val,
                   size_t val_len)
{
    (void)t;
    struct ldb *l = db;
    char *err = NULL;
    leveldb_put(l->db, l->write, key, key_len, val, val_len, &err);
    return err ? failed("leveldb_put", err) : 0;
}

static int ldb_get(void *db, void *t, const char *key, size_t key_len, const char *expect,
                   size_t expect_len)
{
    (void)t;
    struct ldb *l = db;
    char *err = NULL;
    size_t len = 0;
    char *val = leveldb_get(l->db, l->read, key, key_len, &len, &err);
    if (err)
        return failed("leveldb_get", err);
    if (!val)
        return BENCH_NOTFOUND;
    bool same = !expect || (len == expect_len && memcmp(val, expect, len) == 0);
    leveldb_free(val);
    return same ? BENCH_FOUND : BENCH_MISMATCH;
}

static int ldb_del(void *db, void *t, const char *key, size_t key_len)
{
    (void)t;
    struct ldb *l = db;
    char *err = NULL;
    leveldb_delete(l->db, l->write, key, key_len, &err);
    return err ? failed("leveldb_delete", err) : 0;
}

static int ldb_put_batch(void *db, void *t, int n, const char *const *keys, size_t key_len,
                         const char *const *vals, const size_t *val_lens)
{
    (void)t;
    struct ldb *l = db;
    leveldb_writebatch_t *batch = leveldb_writebatch_create();
    if (!batch) {
        bench_report_error(&engine, "leveldb_writebatch_create", "out of memory");
        return BENCH_ERROR;
    }
    for (int i = 0; i < n; i++)
        leveldb_writebatch_put(batch, keys[i], key_len, vals[i], val_lens[i]);
    char *err = NULL;
    leveldb_write(l->db, l->write, batch, &err);
    leveldb_writebatch_destroy(batch);
    return err ? failed("leveldb_write", err) : 0;
}

/* An iterator per scan, as a caller of the C API makes one: seek to the
 * start, then next, each key copied out. */
static int ldb_scan(void *db, void *t, const char *start, size_t start_len, int count, int *found)
{
    (void)t;
    struct ldb *l = db;
    leveldb_iterator_t *it = leveldb_create_iterator(l->db, l->read);
    if (!it) {
        bench_report_error(&engine, "leveldb_create_iterator", "out of memory");
        return BENCH_ERROR;
    }
    char copy[256];
    int n = 0;
    for (leveldb_iter_seek(it, start, start_len); n < count && leveldb_iter_valid(it);
         leveldb_iter_next(it)) {
        size_t len = 0;
        const char *key = leveldb_iter_key(it, &len);
        memcpy(copy, key, len < sizeof(copy) ? len : sizeof(copy));
        n++;
    }
    char *err = NULL;
    leveldb_iter_get_error(it, &err);
    leveldb_iter_destroy(it);
    if (err)
        return failed("leveldb_iter", err);
    *found = n;
    return 0;
}

static int ldb_compact(void *db)
{
    struct ldb *l = db;
    leveldb_compact_range(l->db, NULL, 0, NULL, 0);
    return 0;
}

static const struct bench_engine engine = {
    .name = "leveldb",
    .settings = "defaults (4 MiB write buffer, 8 MiB block cache, Snappy) and a 10-bit bloom "
                "filter; fast: sync=false; durable: sync=true (writers grouped per log sync)",
    .open = ldb_open,
    .close = ldb_close,
    .put = ldb_put,
    .get = ldb_get,
    .del = ldb_del,
    .put_batch = ldb_put_batch,
    .scan = ldb_scan,
    .compact = ldb_compact,
};

int main(int argc, char **argv)
{
    return bench_main(argc, argv, &engine);
}
