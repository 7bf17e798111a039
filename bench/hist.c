/*
 * hist.c - the latency histogram. A bucket index is the position of the
 * highest set bit and the three bits below it, so that adding a sample costs
 * a count-leading-zeros and an increment: cheap enough to time every
 * operation of a run that does millions of them per second.
 */
#include "hist.h"

#include <time.h>

static int bucket_of(uint64_t ns)
{
    if (ns < 8)
        return (int)ns;
    int lg = 63 - __builtin_clzll(ns);
    int sub = (int)((ns >> (lg - 3)) & 7);
    int b = 8 + (lg - 3) * 8 + sub;
    return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

/* The largest value bucket b holds. */
static uint64_t bucket_upper(int b)
{
    if (b < 8)
        return (uint64_t)b;
    int lg = (b - 8) / 8 + 3;
    int sub = (b - 8) % 8;
    return ((uint64_t)(8 + sub + 1) << (lg - 3)) - 1;
}

void hist_add(struct hist *h, uint64_t ns)
{
    h->count[bucket_of(ns)]++;
    h->n++;
}

void hist_merge(struct hist *into, const struct hist *from)
{
    for (int i = 0; i < HIST_BUCKETS; i++)
        into->count[i] += from->count[i];
    into->n += from->n;
}

double hist_percentile_us(const struct hist *h, double p)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)(p / 100.0 * (double)h->n);
    uint64_t seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen > want)
            return (double)bucket_upper(i) / 1000.0;
    }
    return (double)bucket_upper(HIST_BUCKETS - 1) / 1000.0;
}

uint64_t hist_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
