/*
 * cmdstats.c - per-command counters (see cmdstats.h): the histogram's
 * buckets, the owner-only updates, and the sums readers take.
 */
#include "cmdstats.h"

#include <stdlib.h>
#include <string.h>

int vs_cmd_table_init(struct vs_cmd_table *t, const char *const *names, size_t n, size_t threads)
{
    memset(t, 0, sizeof(*t));
    if (n > VS_CMD_MAX || threads > VS_CMD_THREADS_MAX)
        return -1;
    for (size_t i = 0; i < threads; i++) {
        t->blocks[i] = calloc(1, sizeof(struct vs_cmd_block));
        if (t->blocks[i] == NULL) {
            vs_cmd_table_free(t);
            return -1;
        }
        t->n_blocks++;
    }
    memcpy(t->names, names, n * sizeof(names[0]));
    t->n_names = n;
    return 0;
}

void vs_cmd_table_free(struct vs_cmd_table *t)
{
    for (size_t i = 0; i < t->n_blocks; i++)
        free(t->blocks[i]);
    memset(t, 0, sizeof(*t));
}

/* Bucket of a latency: 4 per power of two, so that a percentile is known to
 * within 19 %. */
static size_t bucket_of(uint64_t usec)
{
    if (usec < 2)
        return 0;
    unsigned msb = 63u - (unsigned)__builtin_clzll(usec);
    /* The two bits below the highest one pick the quarter. */
    size_t quarter =
        msb >= 2 ? (size_t)((usec >> (msb - 2)) & 3u) : (size_t)((usec << (2 - msb)) & 3u);
    size_t b = (size_t)msb * VS_LAT_SUB + quarter;
    return b < VS_LAT_BUCKETS ? b : VS_LAT_BUCKETS - 1;
}

uint64_t vs_cmd_bucket_bound(size_t i)
{
    size_t msb = i / VS_LAT_SUB;
    uint64_t quarter = i % VS_LAT_SUB;
    uint64_t base = (uint64_t)1 << msb;
    /* [base + quarter*base/4, base + (quarter+1)*base/4) */
    uint64_t bound = base + ((quarter + 1) * base) / VS_LAT_SUB;
    return bound > base ? bound : base + 1;
}

static void bump(atomic_uint_fast64_t *c, uint64_t by)
{
    /* Only the owning thread writes: a plain load and store suffice, and
     * readers on other threads still see whole values. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

void vs_cmd_count(struct vs_cmd_block *block, size_t cmd, uint64_t usec, bool failed)
{
    if (block == NULL || cmd >= VS_CMD_MAX)
        return;
    struct vs_cmd_counters *c = &block->cmd[cmd];
    bump(&c->calls, 1);
    if (failed)
        bump(&c->failed, 1);
    bump(&c->usec, usec);
    bump(&c->hist[bucket_of(usec)], 1);
}

static void add_block(const struct vs_cmd_counters *c, struct vs_cmd_total *out)
{
    out->calls += atomic_load_explicit(&c->calls, memory_order_relaxed);
    out->failed += atomic_load_explicit(&c->failed, memory_order_relaxed);
    out->usec += atomic_load_explicit(&c->usec, memory_order_relaxed);
    for (size_t b = 0; b < VS_LAT_BUCKETS; b++)
        out->hist[b] += atomic_load_explicit(&c->hist[b], memory_order_relaxed);
}

void vs_cmd_sum(const struct vs_cmd_table *t, size_t cmd, struct vs_cmd_total *out)
{
    memset(out, 0, sizeof(*out));
    if (cmd >= t->n_names)
        return;
    for (size_t i = 0; i < t->n_blocks; i++)
        add_block(&t->blocks[i]->cmd[cmd], out);
}

void vs_cmd_sum_all(const struct vs_cmd_table *t, struct vs_cmd_total *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < t->n_blocks; i++)
        for (size_t cmd = 0; cmd < t->n_names; cmd++)
            add_block(&t->blocks[i]->cmd[cmd], out);
}

uint64_t vs_cmd_percentile(const struct vs_cmd_total *total, double q)
{
    uint64_t n = 0;
    for (size_t b = 0; b < VS_LAT_BUCKETS; b++)
        n += total->hist[b];
    if (n == 0)
        return 0;
    uint64_t want = (uint64_t)((double)n * q + 0.999999);
    if (want == 0)
        want = 1;
    uint64_t seen = 0;
    for (size_t b = 0; b < VS_LAT_BUCKETS; b++) {
        seen += total->hist[b];
        if (seen >= want)
            return vs_cmd_bucket_bound(b);
    }
    return vs_cmd_bucket_bound(VS_LAT_BUCKETS - 1);
}

void vs_cmd_tick(struct vs_cmd_table *t, uint64_t now_ns)
{
    uint64_t elapsed = now_ns - t->last_tick_ns;
    bool first = t->last_tick_ns == 0;
    t->last_tick_ns = now_ns;
    for (size_t cmd = 0; cmd < t->n_names; cmd++) {
        uint64_t calls = 0;
        for (size_t i = 0; i < t->n_blocks; i++)
            calls += atomic_load_explicit(&t->blocks[i]->cmd[cmd].calls, memory_order_relaxed);
        uint64_t rate = 0;
        if (!first && elapsed > 0)
            rate = (uint64_t)((double)(calls - t->last_calls[cmd]) * 1e9 / (double)elapsed + 0.5);
        t->last_calls[cmd] = calls;
        atomic_store_explicit(&t->per_sec[cmd], rate, memory_order_relaxed);
    }
}
