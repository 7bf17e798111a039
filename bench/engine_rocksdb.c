/*
 * engine_rocksdb.c - the benchmark adapter for RocksDB, through its C API
 * (rocksdb/c.h, Debian's librocksdb-dev). Options are RocksDB's defaults
 * (64 MiB write buffer, block-based tables with Snappy, its default block
 * cache) with background threads sized to the machine
 * (IncreaseParallelism, what RocksDB's tuning guide asks for first) and a
 * 10-bit bloom filter, as for LevelDB. Fast mode is WriteOptions.sync = false
 * (WAL written, not synced); durable mode is sync = true (RocksDB's write
 * group shares one WAL sync among concurrent writers). --compression zstd
 * sets zstd with a dictionary (set_zstd_with_dictionary).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "driver.h"

struct rdb {
    rocksdb_t *db;
    rocksdb_options_t *options;
    rocksdb_block_based_table_options_t *table;
    rocksdb_writeoptions_t *write;
    rocksdb_readoptions_t *read;
};

static const struct bench_engine engine;

static void rdb_free(struct rdb *r)
{
    if (r->db)
        rocksdb_close(r->db);
    if (r->options)
        rocksdb_options_destroy(r->options);
    if (r->table)
        rocksdb_block_based_options_destroy(r->table);
    if (r->write)
        rocksdb_writeoptions_destroy(r->write);
    if (r->read)
        rocksdb_readoptions_destroy(r->read);
    free(r);
}

/* zstd at level 3 for every level, with a 64 KiB dictionary per file
 * trained on 100 times as much of its data (zstd's trainer), as RocksDB's
 * wiki suggests for small values; the same sizes as mini-kvstore's. */
static void set_zstd_with_dictionary(rocksdb_options_t *o)
{
    enum { LEVEL = 3, DICT = 64 << 10, TRAIN = 100 * DICT };
    rocksdb_options_set_compression(o, rocksdb_zstd_compression);
    rocksdb_options_set_compression_options(o, -14, LEVEL, 0, DICT);
    rocksdb_options_set_compression_options_zstd_max_train_bytes(o, TRAIN);
    rocksdb_options_set_bottommost_compression(o, rocksdb_zstd_compression);
    rocksdb_options_set_bottommost_compression_options(o, -14, LEVEL, 0, DICT, 1);
    rocksdb_options_set_bottommost_compression_options_zstd_max_train_bytes(o, TRAIN, 1);
}

static int rdb_open(const struct bench_open_args *args, void **db)
{
    struct rdb *r = calloc(1, sizeof(*r));
    if (!r) {
        fprintf(stderr, "rocksdb: out of memory\n");
        return -1;
    }
    r->options = rocksdb_options_create();
    r->table = rocksdb_block_based_options_create();
    r->write = rocksdb_writeoptions_create();
    r->read = rocksdb_readoptions_create();
    if (!r->options || !r->table || !r->write || !r->read) {
        fprintf(stderr, "rocksdb: out of memory\n");
        rdb_free(r);
        return -1;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    rocksdb_options_increase_parallelism(r->options, cpus > 0 ? (int)cpus : 2);
    rocksdb_options_set_create_if_missing(r->options, 1);
    /* The table options take ownership of the filter policy. */
    rocksdb_block_based_options_set_filter_policy(r->table, rocksdb_filterpolicy_create_bloom(10));
    if (args->compress)
        set_zstd_with_dictionary(r->options);
    rocksdb_options_set_block_based_table_factory(r->options, r->table);
    rocksdb_writeoptions_set_sync(r->write, args->sync == BENCH_SYNC_DURABLE);
    char *err = NULL;
    r->db = rocksdb_open(r->options, args->dir, &err);
    if (err) {
        fprintf(stderr, "rocksdb: open %s: %s\n", args->dir, err);
        rocksdb_free(err);
        r->db = NULL;
        rdb_free(r);
        return -1;
    }
    *db = r;
    return 0;
}

static int rdb_close(void *db)
{
    rdb_free(db);
    return 0;
}

static int failed(const char *what, char *err)
{
    bench_report_error(&engine, what, err);
    rocksdb_free(err);
    return BENCH_ERROR;
}

static int rdb_put(void *db, void *t, const char *key, size_t key_len, const char *val,
                   size_t val_len)
{
    (void)t;
    struct rdb *r = db;
    char *err = NULL;
    rocksdb_put(r->db, r->write, key, key_len, val, val_len, &err);
    return err ? failed("rocksdb_put", err) : 0;
}

static int rdb_put_batch(void *db, void *t, int n, const char *const *keys, size_t key_len,
                         const char *const *vals, const size_t *val_lens)
{
    (void)t;
    struct rdb *r = db;
    rocksdb_writebatch_t *batch = rocksdb_writebatch_create();
    if (!batch) {
        bench_report_error(&engine, "rocksdb_writebatch_create", "out of memory");
        return BENCH_ERROR;
    }
    for (int i = 0; i < n; i++)
        rocksdb_writebatch_put(batch, keys[i], key_len, vals[i], val_lens[i]);
    char *err = NULL;
    rocksdb_write(r->db, r->write, batch, &err);
    rocksdb_writebatch_destroy(batch);
    return err ? failed("rocksdb_write", err) : 0;
}

static int rdb_get(void *db, void *t, const char *key, size_t key_len, const char *expect,
                   size_t expect_len)
{
    (void)t;
    struct rdb *r = db;
    char *err = NULL;
    size_t len = 0;
    char *val = rocksdb_get(r->db, r->read, key, key_len, &len, &err);
    if (err)
        return failed("rocksdb_get", err);
    if (!val)
        return BENCH_NOTFOUND;
    bool same = !expect || (len == expect_len && memcmp(val, expect, len) == 0);
    rocksdb_free(val);
    return same ? BENCH_FOUND : BENCH_MISMATCH;
}

static int rdb_del(void *db, void *t, const char *key, size_t key_len)
{
    (void)t;
    struct rdb *r = db;
    char *err = NULL;
    rocksdb_delete(r->db, r->write, key, key_len, &err);
    return err ? failed("rocksdb_delete", err) : 0;
}

/* An iterator per scan, as a caller of the C API makes one: seek to the
 * start, then next, each key copied out. */
static int rdb_scan(void *db, void *t, const char *start, size_t start_len, int count, int *found)
{
    (void)t;
    struct rdb *r = db;
    rocksdb_iterator_t *it = rocksdb_create_iterator(r->db, r->read);
    if (!it) {
        bench_report_error(&engine, "rocksdb_create_iterator", "out of memory");
        return BENCH_ERROR;
    }
    char copy[256];
    int n = 0;
    for (rocksdb_iter_seek(it, start, start_len); n < count && rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t len = 0;
        const char *key = rocksdb_iter_key(it, &len);
        memcpy(copy, key, len < sizeof(copy) ? len : sizeof(copy));
        n++;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err)
        return failed("rocksdb_iter", err);
    *found = n;
    return 0;
}

static int rdb_compact(void *db)
{
    struct rdb *r = db;
    rocksdb_compact_range(r->db, NULL, 0, NULL, 0);
    return 0;
}

static const struct bench_engine engine = {
    .name = "rocksdb",
    .settings = "defaults (64 MiB write buffer, Snappy, default block cache), "
                "IncreaseParallelism(cores) and a 10-bit bloom filter; fast: sync=false; "
                "durable: sync=true (write groups share a WAL sync); compression zstd: zstd "
                "level 3 at every level with a 64 KiB dictionary per file, trained on 6.4 MB",
    .open = rdb_open,
    .close = rdb_close,
    .put = rdb_put,
    .put_batch = rdb_put_batch,
    .get = rdb_get,
    .del = rdb_del,
    .scan = rdb_scan,
    .compact = rdb_compact,
};

int main(int argc, char **argv)
{
    return bench_main(argc, argv, &engine);
}
