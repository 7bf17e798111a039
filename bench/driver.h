/*
 * driver.h - the workload driver shared by every engine's benchmark program,
 * and the table of functions (an engine adapter) each engine provides.
 *
 * One program per engine (kvbench, kvbench-leveldb, kvbench-rocksdb,
 * kvbench-lmdb) so that each runs in its own process: memory figures are not
 * polluted by another engine's heap, and a peer library that is not installed
 * only removes its own program. Each adapter file ends in
 *
 *     int main(int argc, char **argv) { return bench_main(argc, argv, &adapter); }
 *
 * The driver runs the same workloads with the same keys, values, sizes and
 * thread counts against every adapter; the adapter only translates calls.
 */
#ifndef BENCH_DRIVER_H
#define BENCH_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How writes are acknowledged, in each engine's own terms. */
enum bench_sync {
    BENCH_SYNC_FAST,   /* no sync per write (the engine's "sync off") */
    BENCH_SYNC_DURABLE /* each acknowledged write is on stable storage */
};

/* What an adapter's open is told. */
struct bench_open_args {
    const char *dir; /* data directory; it may not exist yet */
    enum bench_sync sync;
    uint64_t num; /* keys the run will store, for engines that size a map */
    size_t key_size, value_size;
    bool compress; /* --compression zstd: the engine's zstd, with a dictionary if it has one */
    bool no_preallocate; /* --preallocate off (mini-kvstore only) */
};

/* Results of get. */
#define BENCH_FOUND    0
#define BENCH_NOTFOUND 1
#define BENCH_MISMATCH 2 /* found, but not the expected bytes */
#define BENCH_ERROR    (-1)

/*
 * An engine adapter. db is what open produced; t is what thread_begin
 * produced for the calling thread (NULL when thread_begin is NULL). Every
 * function but open may be called from many threads at once (each with its
 * own t), except close. Optional members are NULL when the engine has no such
 * thing; the driver then reports the workload as not supported.
 */
struct bench_engine {
    const char *name;     /* as the report prints it: "mini-kvstore", "leveldb", ... */
    const char *settings; /* one sentence: what FAST and DURABLE mean for it */

    /* Opens (creating) the store; 0, or -1 after printing why to stderr. */
    int (*open)(const struct bench_open_args *args, void **db);
    /* Closes what open returned; 0, or -1 after printing why. */
    int (*close)(void *db);

    void *(*thread_begin)(void *db);       /* optional */
    void (*thread_end)(void *db, void *t); /* optional */

    /* 0, or BENCH_ERROR. */
    int (*put)(void *db, void *t, const char *key, size_t key_len, const char *val, size_t val_len);
    /* BENCH_FOUND / BENCH_NOTFOUND / BENCH_ERROR; when expect is not NULL, a
     * found value is compared with it (BENCH_MISMATCH when it differs). */
    int (*get)(void *db, void *t, const char *key, size_t key_len, const char *expect,
               size_t expect_len);
    /* 0 whether or not the key was there, or BENCH_ERROR. */
    int (*del)(void *db, void *t, const char *key, size_t key_len);
    /* Optional. Puts n keys (each key_len bytes) as one atomic batch,
     * acknowledged as one write (durable in durable mode). 0 or BENCH_ERROR. */
    int (*put_batch)(void *db, void *t, int n, const char *const *keys, size_t key_len,
                     const char *const *vals, const size_t *val_lens);

    /* Optional. Reads, in key order, up to count keys from the first one at
     * or after start (fewer at the end of the store), as a range read or a
     * cursor does; *found receives how many it read. Keys only: values are
     * not read where the engine can avoid it. 0, or BENCH_ERROR. */
    int (*scan)(void *db, void *t, const char *start, size_t start_len, int count, int *found);
    /* Optional. Compacts the whole store, in the calling thread, while other
     * threads go on reading. 0 or -1. */
    int (*compact)(void *db);
    /* Optional. Bytes its compactions have written since open, as the engine
     * counts them (without it the driver uses the store's size at rest). */
    int (*compaction_bytes)(void *db, uint64_t *bytes);
    /* Optional. Bytes of memory the engine's own index holds. */
    int (*index_bytes)(void *db, uint64_t *bytes);
    /* Optional. fsync/fdatasync calls made since open. */
    int (*sync_calls)(void *db, uint64_t *calls);
    /* Optional. Removes what makes an open fast (mini-kvstore's snapshot),
     * so that the next open replays the whole log. 0 or -1. */
    int (*forget_snapshot)(const char *dir);
};

/* Parses the command line, runs the selected workloads against engine and
 * prints a row for each. Returns the process exit status: 0, 1 when an
 * operation failed or a read returned wrong bytes, 2 on a usage error. */
int bench_main(int argc, char **argv, const struct bench_engine *engine);

/* Adapters call this when an operation fails: it prints the first few
 * failures to stderr (a failing engine would otherwise print millions). */
void bench_report_error(const struct bench_engine *engine, const char *what, const char *detail);

#endif /* BENCH_DRIVER_H */
