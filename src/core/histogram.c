/*
 * histogram.c - the log-linear histogram of histogram.h: bucket arithmetic,
 * lock-free recording, and percentiles from a copy.
 */
#include "histogram.h"

#include <string.h>

size_t vs_histogram_bucket(uint64_t value)
{
    if (value < VS_HIST_SUB)
        return (size_t)value;
    unsigned top = 63u - (unsigned)__builtin_clzll(value); /* the highest bit set */
    if (top >= VS_HIST_TOP_BITS)
        return VS_HIST_BUCKETS - 1;
    /* The bits below the highest one pick the bucket within its power of
     * two; for 8 to 15 this is the value itself, as below 8. */
    size_t sub = (size_t)(value >> (top - VS_HIST_SUB_BITS)) & (VS_HIST_SUB - 1);
    return (size_t)(top - VS_HIST_SUB_BITS + 1) * VS_HIST_SUB + sub;
}

uint64_t vs_histogram_bucket_low(size_t i)
{
    if (i < VS_HIST_SUB)
        return i;
    size_t group = i / VS_HIST_SUB;
    uint64_t sub = i % VS_HIST_SUB;
    return (VS_HIST_SUB + sub) << (group - 1);
}

uint64_t vs_histogram_bucket_high(size_t i)
{
    return vs_histogram_bucket_low(i + 1);
}

void vs_histogram_record(struct vs_histogram *h, uint64_t value)
{
    atomic_fetch_add_explicit(&h->buckets[vs_histogram_bucket(value)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, value, memory_order_relaxed);
}

void vs_histogram_read(const struct vs_histogram *h, struct vs_histogram_snapshot *out)
{
    uint64_t count = 0;
    for (size_t i = 0; i < VS_HIST_BUCKETS; i++) {
        out->buckets[i] = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        count += out->buckets[i];
    }
    out->count = count;
    out->sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
}

double vs_histogram_percentile(const struct vs_histogram_snapshot *s, double q)
{
    if (s->count == 0)
        return 0.0;
    if (q > 1.0)
        q = 1.0;
    double rank = q * (double)s->count;
    uint64_t before = 0;
    size_t last = 0;
    for (size_t i = 0; i < VS_HIST_BUCKETS; i++) {
        if (s->buckets[i] == 0)
            continue;
        last = i;
        if ((double)(before + s->buckets[i]) >= rank) {
            double frac = (rank - (double)before) / (double)s->buckets[i];
            if (frac < 0.0)
                frac = 0.0;
            double low = (double)vs_histogram_bucket_low(i);
            double top = (double)(vs_histogram_bucket_high(i) - 1); /* the highest value it holds */
            return low + (top - low) * frac;
        }
        before += s->buckets[i];
    }
    return (double)vs_histogram_bucket_high(last) - 1.0; /* rounding: the highest bucket */
}

uint64_t vs_histogram_count_below(const struct vs_histogram_snapshot *s, uint64_t bound)
{
    size_t end = vs_histogram_bucket(bound);
    uint64_t n = 0;
    for (size_t i = 0; i < end; i++)
        n += s->buckets[i];
    return n;
}
