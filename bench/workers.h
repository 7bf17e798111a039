/*
 * workers.h - runs one kind of operation from a group of threads against an
 * engine adapter, timing every operation into a histogram.
 */
#ifndef BENCH_WORKERS_H
#define BENCH_WORKERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "driver.h"
#include "hist.h"
#include "keyspace.h"

/* The store under test, as every worker sees it. */
struct bench_target {
    const struct bench_engine *engine;
    void *db;
    const struct keyspace *ks;
    bool verify; /* compare every value read */
};

enum work_op { WORK_PUT, WORK_PUT_BATCH, WORK_GET, WORK_GET_MISSING, WORK_DELETE, WORK_SCAN };

/* Keys a WORK_SCAN operation reads from its start key. */
#define WORK_SCAN_KEYS 100
/* Puts in one WORK_PUT_BATCH operation; each counts as an operation, the
 * batch as one latency sample. */
#define WORK_BATCH_KEYS 100

enum work_keys {
    KEYS_SEQUENTIAL, /* operation i uses key i */
    KEYS_PERMUTED,   /* key keyspace_permute(i): each key once, in random order */
    KEYS_RANDOM      /* keys drawn at random, with repeats */
};

struct work_spec {
    enum work_op op;
    enum work_keys keys;
    int threads;
    uint64_t ops;     /* operations across all threads (ignored with stop) */
    double max_secs;  /* each thread stops after this long, whatever ops says */
    atomic_int *stop; /* NULL, or run until it is set (KEYS_RANDOM only) */
    uint64_t seed;    /* separates the random streams of different workloads */
};

struct work_result {
    struct hist lat;
    uint64_t ops;        /* operations done */
    uint64_t found;      /* gets that found their key; keys scans read */
    uint64_t errors;     /* operations the engine failed */
    uint64_t mismatches; /* gets that returned other bytes than were written, scans
                            that read another number of keys than the store holds */
    double secs;         /* from the first thread's start to the last one's end */
};

struct work_group;

/* Starts spec->threads threads. Returns 0, or -1 (nothing left running) when
 * memory or a thread could not be had. */
int work_start(const struct bench_target *target, const struct work_spec *spec,
               struct work_group **out);

/* Waits for every thread of g, sums their figures into *out and frees g. */
void work_wait(struct work_group *g, struct work_result *out);

/* work_start then work_wait. */
int work_run(const struct bench_target *target, const struct work_spec *spec,
             struct work_result *out);

#endif /* BENCH_WORKERS_H */
