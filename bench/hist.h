/*
 * hist.h - a latency histogram for the benchmarks: fixed memory, lock-free
 * because each thread fills its own and the driver merges them afterwards.
 */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

/* Buckets of an eighth of an octave over nanoseconds: percentiles are read
 * to within 12.5 %, from 1 ns to far beyond any run. */
#define HIST_BUCKETS 400

struct hist {
    uint64_t count[HIST_BUCKETS];
    uint64_t n;
};

/* Counts one sample of ns nanoseconds. */
void hist_add(struct hist *h, uint64_t ns);

/* Adds every sample of from into into. */
void hist_merge(struct hist *into, const struct hist *from);

/* The p-th percentile (0 < p < 100) in microseconds: the upper edge of the
 * bucket that holds it. 0 for an empty histogram. */
double hist_percentile_us(const struct hist *h, double p);

/* Monotonic clock in nanoseconds. */
uint64_t hist_now_ns(void);

#endif /* BENCH_HIST_H */
