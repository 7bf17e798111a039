/*
 * histogram.h - a histogram of 64-bit values (latencies in nanoseconds,
 * batch sizes) that any number of threads record into at once without a
 * lock, and the percentiles read from it.
 *
 * The buckets are log-linear, as HdrHistogram's: each value below 16 has a
 * bucket of its own, and above that each power of two is cut into 8 buckets
 * of equal width, so that a bucket is at most an eighth of its lowest value
 * wide (12.5 %) and a percentile interpolated inside one is closer than
 * that. Every power of two from 16 to 2^39 is the low edge of a bucket; the
 * last bucket, from 15 * 2^36, also takes every value of 2^40 (18 minutes,
 * in nanoseconds) and more.
 *
 * Recording is two relaxed atomic additions, the value's bucket and the sum:
 * no lock, no allocation, safe from any thread. The count is the sum of the
 * buckets, so that a reader's count and buckets always agree; the sum may be
 * a record ahead of or behind them, as figures read while traffic flows are.
 */
#ifndef VS_HISTOGRAM_H
#define VS_HISTOGRAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define VS_HIST_SUB_BITS 3 /* 8 buckets per power of two */
#define VS_HIST_SUB      (1u << VS_HIST_SUB_BITS)
#define VS_HIST_TOP_BITS 40 /* values from 2^40 go to the last bucket */
#define VS_HIST_BUCKETS  ((VS_HIST_TOP_BITS - VS_HIST_SUB_BITS + 1) * VS_HIST_SUB)

/* Zeroed memory is an empty histogram. */
struct vs_histogram {
    atomic_uint_fast64_t buckets[VS_HIST_BUCKETS];
    atomic_uint_fast64_t sum;
};

/* A histogram's figures at one moment, for a reader to work on. */
struct vs_histogram_snapshot {
    uint64_t count; /* the sum of the buckets */
    uint64_t sum;   /* of the values recorded */
    uint64_t buckets[VS_HIST_BUCKETS];
};

/* Counts one value. */
void vs_histogram_record(struct vs_histogram *h, uint64_t value);

/* Copies h into *out. */
void vs_histogram_read(const struct vs_histogram *h, struct vs_histogram_snapshot *out);

/* The bucket of a value, and the values bucket i holds: from
 * vs_histogram_bucket_low(i) up to, not including, vs_histogram_bucket_high(i)
 * (the last bucket holds everything above its low end too). */
size_t vs_histogram_bucket(uint64_t value);
uint64_t vs_histogram_bucket_low(size_t i);
uint64_t vs_histogram_bucket_high(size_t i);

/*
 * The value below which the fraction q (0 < q <= 1) of the values of s lie:
 * the bucket that holds that rank, with the rank interpolated linearly
 * between the lowest and highest value the bucket can hold (exact for the
 * one-value buckets below 16). 0 when s is empty.
 */
double vs_histogram_percentile(const struct vs_histogram_snapshot *s, double q);

/* How many values of s are below bound, which must be a bucket's low edge
 * (any value below 16, or a power of two up to 2^39). */
uint64_t vs_histogram_count_below(const struct vs_histogram_snapshot *s, uint64_t bound);

#endif /* VS_HISTOGRAM_H */
