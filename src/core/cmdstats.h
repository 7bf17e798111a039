/*
 * cmdstats.h - per-command counters of a front end that serves named
 * commands (the Redis protocol): calls, failures, time spent and a latency
 * histogram per command, for INFO and /metrics.
 *
 * The front end registers its command names once, at start, and gets one
 * block of counters per thread that runs commands. A block is written only by
 * its own thread (a relaxed load and store, no locked instruction on the hot
 * path) and read by any thread, which sums the blocks: a figure is a moment's
 * picture, never a fence. The table lives in struct vs_app and outlives every
 * front end, so that /metrics can read it while the front end stops.
 */
#ifndef VS_CMDSTATS_H
#define VS_CMDSTATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most commands one table holds. */
#define VS_CMD_MAX 96
/* Most threads that run commands. */
#define VS_CMD_THREADS_MAX 256
/* Latency buckets: four per power of two of microseconds, from 1 us to
 * about 67 s (2^26 us); the last bucket takes everything longer. */
#define VS_LAT_SUB     4
#define VS_LAT_BUCKETS (26 * VS_LAT_SUB)

struct vs_cmd_counters {
    atomic_uint_fast64_t calls;
    atomic_uint_fast64_t failed; /* replied with an error */
    atomic_uint_fast64_t usec;   /* time from the command's arrival to its reply */
    atomic_uint_fast64_t hist[VS_LAT_BUCKETS];
};

/* The counters one thread writes. */
struct vs_cmd_block {
    struct vs_cmd_counters cmd[VS_CMD_MAX];
};

struct vs_cmd_table {
    size_t n_names;
    const char *names[VS_CMD_MAX]; /* static strings, lower case */
    size_t n_blocks;
    struct vs_cmd_block *blocks[VS_CMD_THREADS_MAX];
    /* Calls per second of each command over the last interval between two
     * vs_cmd_tick calls, and the totals the next tick subtracts. */
    atomic_uint_fast64_t per_sec[VS_CMD_MAX];
    uint64_t last_calls[VS_CMD_MAX]; /* the ticking thread's own */
    uint64_t last_tick_ns;
};

/* One command's counters summed over every thread. */
struct vs_cmd_total {
    uint64_t calls, failed, usec;
    uint64_t hist[VS_LAT_BUCKETS];
};

/*
 * Registers names (n of them, static strings) and allocates threads blocks
 * of counters. Called once, before any command runs. Returns 0, or -1 when
 * n or threads is too large or memory runs out (nothing is kept then).
 */
int vs_cmd_table_init(struct vs_cmd_table *t, const char *const *names, size_t n, size_t threads);

/* Frees the blocks; the table is empty after, and may be initialised again. */
void vs_cmd_table_free(struct vs_cmd_table *t);

/* Counts one call of command cmd that took usec microseconds, on the thread
 * that owns block. */
void vs_cmd_count(struct vs_cmd_block *block, size_t cmd, uint64_t usec, bool failed);

/* Sums command cmd over every block into *out. */
void vs_cmd_sum(const struct vs_cmd_table *t, size_t cmd, struct vs_cmd_total *out);

/* Sums every command into *out (the histogram too). */
void vs_cmd_sum_all(const struct vs_cmd_table *t, struct vs_cmd_total *out);

/* Updates per_sec from the calls since the last tick; now_ns is a monotonic
 * clock. One thread calls it, about once a second. */
void vs_cmd_tick(struct vs_cmd_table *t, uint64_t now_ns);

/* The latency in microseconds below which the fraction q (0 < q <= 1) of
 * the calls of total fell (the upper bound of the bucket that holds it); 0
 * when there were no calls. */
uint64_t vs_cmd_percentile(const struct vs_cmd_total *total, double q);

/* The upper bound, in microseconds, of latency bucket i. */
uint64_t vs_cmd_bucket_bound(size_t i);

#endif /* VS_CMDSTATS_H */
