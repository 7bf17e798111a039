/*
 * engine_kvstore.c - the benchmark adapter for mini-kvstore itself (the
 * kvbench program). Fast mode is KV_SYNC_NONE, durable mode KV_SYNC_ALWAYS
 * (group commit); every other option keeps its default, background
 * compaction included, because that is what a user gets. --compression zstd
 * is KV_COMPRESS_ZSTD (its dictionary is trained at compaction).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "kvstore.h"

static int kvs_open(const struct bench_open_args *args, void **db)
{
    kv_options o;
    kv_options_init(&o);
    o.sync_mode = args->sync == BENCH_SYNC_DURABLE ? KV_SYNC_ALWAYS : KV_SYNC_NONE;
    o.compression = args->compress ? KV_COMPRESS_ZSTD : KV_COMPRESS_NONE;
    if (args->no_preallocate)
        o.segment_preallocate = 0;
    kv_store *s = NULL;
    int rc = kv_open(args->dir, &o, &s);
    if (rc != 0) {
        fprintf(stderr, "mini-kvstore: open %s: %s\n", args->dir, kv_strerror(rc));
        return -1;
    }
    *db = s;
    return 0;
}

static int kvs_close(void *db)
{
    int rc = kv_close(db);
    if (rc != 0) {
        fprintf(stderr, "mini-kvstore: close: %s\n", kv_strerror(rc));
        return -1;
    }
    return 0;
}

static const struct bench_engine engine;

static int kvs_put(void *db, void *t, const char *key, size_t key_len, const char *val,
                   size_t val_len)
{
    (void)t;
    int rc = kv_put(db, key, key_len, val, val_len);
    if (rc != 0) {
        bench_report_error(&engine, "kv_put", kv_strerror(rc));
        return BENCH_ERROR;
    }
    return 0;
}

static int kvs_get(void *db, void *t, const char *key, size_t key_len, const char *expect,
                   size_t expect_len)
{
    (void)t;
    void *val = NULL;
    size_t len = 0;
    int rc = kv_get(db, key, key_len, &val, &len);
    if (rc == KV_ENOTFOUND)
        return BENCH_NOTFOUND;
    if (rc != 0) {
        bench_report_error(&engine, "kv_get", kv_strerror(rc));
        return BENCH_ERROR;
    }
    bool same = !expect || (len == expect_len && memcmp(val, expect, len) == 0);
    kv_free(val);
    return same ? BENCH_FOUND : BENCH_MISMATCH;
}

static int kvs_del(void *db, void *t, const char *key, size_t key_len)
{
    (void)t;
    int rc = kv_delete(db, key, key_len);
    if (rc != 0 && rc != KV_ENOTFOUND) {
        bench_report_error(&engine, "kv_delete", kv_strerror(rc));
        return BENCH_ERROR;
    }
    return 0;
}

static int kvs_put_batch(void *db, void *t, int n, const char *const *keys, size_t key_len,
                         const char *const *vals, const size_t *val_lens)
{
    (void)t;
    kv_op ops[128];
    if (n > (int)(sizeof(ops) / sizeof(ops[0])))
        return BENCH_ERROR;
    for (int i = 0; i < n; i++)
        ops[i] = (kv_op){.type = KV_WRITE_PUT,
                         .key = keys[i],
                         .key_len = key_len,
                         .val = vals[i],
                         .val_len = val_lens[i]};
    int rc = kv_write(db, ops, (size_t)n);
    if (rc != 0) {
        bench_report_error(&engine, "kv_write", kv_strerror(rc));
        return BENCH_ERROR;
    }
    return 0;
}

struct scan_count {
    int n;
};

static int count_key(const void *key, size_t key_len, const void *val, size_t val_len, void *ctx)
{
    (void)key;
    (void)key_len;
    (void)val;
    (void)val_len;
    ((struct scan_count *)ctx)->n++;
    return 0;
}

static int kvs_scan(void *db, void *t, const char *start, size_t start_len, int count, int *found)
{
    (void)t;
    struct scan_count c = {0};
    kv_range_opts r = {.start = start, .start_len = start_len, .limit = (size_t)count};
    int rc = kv_range(db, &r, count_key, &c);
    if (rc != 0) {
        bench_report_error(&engine, "kv_range", kv_strerror(rc));
        return BENCH_ERROR;
    }
    *found = c.n;
    return 0;
}

static int kvs_compact(void *db)
{
    int rc = kv_compact(db);
    if (rc != 0) {
        fprintf(stderr, "mini-kvstore: kv_compact: %s\n", kv_strerror(rc));
        return -1;
    }
    return 0;
}

static int kvs_index_bytes(void *db, uint64_t *bytes)
{
    kv_stats st;
    if (kv_get_stats(db, &st) != 0)
        return -1;
    *bytes = st.index_bytes;
    return 0;
}

static int kvs_compaction_bytes(void *db, uint64_t *bytes)
{
    kv_stats st;
    if (kv_get_stats(db, &st) != 0)
        return -1;
    *bytes = st.compaction_bytes_written;
    return 0;
}

static int kvs_sync_calls(void *db, uint64_t *calls)
{
    kv_stats st;
    if (kv_get_stats(db, &st) != 0)
        return -1;
    *calls = st.fsyncs;
    return 0;
}

static int kvs_forget_snapshot(const char *dir)
{
    char path[4300];
    int n = snprintf(path, sizeof(path), "%s/index.snapshot", dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -1;
    if (unlink(path) != 0 && errno != ENOENT) {
        perror(path);
        return -1;
    }
    return 0;
}

static const struct bench_engine engine = {
    .name = "mini-kvstore",
    .settings = "defaults (64 MiB segments, 12-bit bloom filter, background compaction); "
                "fast: sync mode none; durable: sync mode always (fdatasync, group commit); "
                "compression zstd: KV_COMPRESS_ZSTD, level 3 (12 for what compaction "
                "compresses), values of 64 bytes or more, a 64 KiB dictionary trained at "
                "compaction",
    .open = kvs_open,
    .close = kvs_close,
    .put = kvs_put,
    .get = kvs_get,
    .del = kvs_del,
    .put_batch = kvs_put_batch,
    .scan = kvs_scan,
    .compact = kvs_compact,
    .compaction_bytes = kvs_compaction_bytes,
    .index_bytes = kvs_index_bytes,
    .sync_calls = kvs_sync_calls,
    .forget_snapshot = kvs_forget_snapshot,
};

int main(int argc, char **argv)
{
    return bench_main(argc, argv, &engine);
}
