/*
 * workers.c - the timed loops. Each thread owns its histogram and counters
 * and only the group's creator reads them, after joining: nothing is shared
 * while the clock runs but the engine itself and the stop flag.
 *
 * One clock read per operation: the end of one operation is the start of
 * the next, so latencies include the few nanoseconds of choosing and
 * formatting the key, and throughput is not lowered by a second clock read.
 */
#include "workers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct worker {
    const struct bench_target *target;
    const struct work_spec *spec;
    int index;
    uint64_t first, count; /* operation numbers [first, first + count) */
    pthread_t tid;
    bool started;
    struct work_result res;
};

struct work_group {
    struct work_spec spec; /* a copy: the caller's may go out of scope */
    struct worker *workers;
    int n;
    uint64_t t0;
};

static uint64_t key_of(const struct work_spec *spec, const struct keyspace *ks, uint64_t seed,
                       uint64_t i)
{
    switch (spec->keys) {
    case KEYS_SEQUENTIAL:
        return i % ks->num;
    case KEYS_PERMUTED:
        return keyspace_permute(ks, i % ks->num);
    case KEYS_RANDOM:
    default:
        return keyspace_mix(seed + i) % ks->num;
    }
}

/* One batch of WORK_BATCH_KEYS puts from operation number i on. */
static int put_batch(struct worker *w, void *t, uint64_t seed, uint64_t i)
{
    const struct bench_target *tg = w->target;
    const struct keyspace *ks = tg->ks;
    static _Thread_local char keys[WORK_BATCH_KEYS][KEYSPACE_MAX_KEY];
    const char *kp[WORK_BATCH_KEYS], *vp[WORK_BATCH_KEYS];
    size_t vl[WORK_BATCH_KEYS];
    for (int j = 0; j < WORK_BATCH_KEYS; j++) {
        uint64_t k = key_of(w->spec, ks, seed, w->first + i + (uint64_t)j);
        keyspace_key(ks, k, false, keys[j]);
        kp[j] = keys[j];
        vp[j] = keyspace_value(ks, k);
        vl[j] = keyspace_value_len(ks, k);
    }
    return tg->engine->put_batch(tg->db, t, WORK_BATCH_KEYS, kp, ks->key_size, vp, vl);
}

/* Does one operation on key k; updates the counters. */
static void do_op(struct worker *w, void *t, uint64_t k, char *key)
{
    const struct bench_target *tg = w->target;
    const struct bench_engine *e = tg->engine;
    const struct keyspace *ks = tg->ks;
    enum work_op op = w->spec->op;
    keyspace_key(ks, k, op == WORK_GET_MISSING, key);
    int rc;
    switch (op) {
    case WORK_PUT:
        rc = e->put(tg->db, t, key, ks->key_size, keyspace_value(ks, k), keyspace_value_len(ks, k));
        break;
    case WORK_DELETE:
        rc = e->del(tg->db, t, key, ks->key_size);
        break;
    case WORK_PUT_BATCH: /* worker_main calls put_batch */
    case WORK_SCAN: {
        /* Keys are numbers in byte order: from key k there are num - k. */
        int found = 0;
        uint64_t left = ks->num - k;
        int want = left < WORK_SCAN_KEYS ? (int)left : WORK_SCAN_KEYS;
        rc = e->scan(tg->db, t, key, ks->key_size, WORK_SCAN_KEYS, &found);
        w->res.found += (uint64_t)found;
        if (rc == 0 && found != want)
            w->res.mismatches++;
        break;
    }
    case WORK_GET:
    case WORK_GET_MISSING:
    default:
        rc = e->get(tg->db, t, key, ks->key_size, tg->verify ? keyspace_value(ks, k) : NULL,
                    keyspace_value_len(ks, k));
        if (rc == BENCH_FOUND || rc == BENCH_MISMATCH)
            w->res.found++;
        if (rc == BENCH_MISMATCH || (rc == BENCH_FOUND && op == WORK_GET_MISSING))
            w->res.mismatches++;
        if (rc >= 0)
            rc = 0;
        break;
    }
    if (rc != 0)
        w->res.errors++;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const struct bench_target *tg = w->target;
    const struct work_spec *spec = w->spec;
    void *t = tg->engine->thread_begin ? tg->engine->thread_begin(tg->db) : NULL;
    char key[KEYSPACE_MAX_KEY];
    uint64_t seed = keyspace_mix(spec->seed * 1000003u + (uint64_t)w->index);
    uint64_t start = hist_now_ns();
    uint64_t deadline = start + (uint64_t)(spec->max_secs * 1e9);
    uint64_t prev = start;
    uint64_t step = spec->op == WORK_PUT_BATCH ? WORK_BATCH_KEYS : 1;
    for (uint64_t i = 0; spec->stop || i < w->count; i += step) {
        if (spec->stop && atomic_load_explicit(spec->stop, memory_order_relaxed))
            break;
        if (spec->op == WORK_PUT_BATCH) {
            if (put_batch(w, t, seed, i) != 0)
                w->res.errors++;
        } else {
            do_op(w, t, key_of(spec, tg->ks, seed, w->first + i), key);
        }
        uint64_t now = hist_now_ns();
        hist_add(&w->res.lat, now - prev);
        w->res.ops += step;
        prev = now;
        if (now >= deadline)
            break;
    }
    if (tg->engine->thread_end)
        tg->engine->thread_end(tg->db, t);
    return NULL;
}

int work_start(const struct bench_target *target, const struct work_spec *spec,
               struct work_group **out)
{
    struct work_group *g = calloc(1, sizeof(*g));
    if (!g)
        return -1;
    g->spec = *spec;
    g->n = spec->threads > 0 ? spec->threads : 1;
    g->workers = calloc((size_t)g->n, sizeof(*g->workers));
    if (!g->workers) {
        free(g);
        return -1;
    }
    g->t0 = hist_now_ns();
    for (int i = 0; i < g->n; i++) {
        struct worker *w = &g->workers[i];
        w->target = target;
        w->spec = &g->spec;
        w->index = i;
        w->first = spec->ops * (uint64_t)i / (uint64_t)g->n;
        w->count = spec->ops * (uint64_t)(i + 1) / (uint64_t)g->n - w->first;
        if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
            fprintf(stderr, "kvbench: cannot start thread %d of %d\n", i + 1, g->n);
            if (g->spec.stop)
                atomic_store(g->spec.stop, 1);
            struct work_result ignored;
            work_wait(g, &ignored);
            return -1;
        }
        w->started = true;
    }
    *out = g;
    return 0;
}

void work_wait(struct work_group *g, struct work_result *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < g->n; i++) {
        struct worker *w = &g->workers[i];
        if (!w->started)
            continue;
        pthread_join(w->tid, NULL);
        hist_merge(&out->lat, &w->res.lat);
        out->ops += w->res.ops;
        out->found += w->res.found;
        out->errors += w->res.errors;
        out->mismatches += w->res.mismatches;
    }
    out->secs = (double)(hist_now_ns() - g->t0) / 1e9;
    free(g->workers);
    free(g);
}

int work_run(const struct bench_target *target, const struct work_spec *spec,
             struct work_result *out)
{
    struct work_group *g;
    if (work_start(target, spec, &g) != 0)
        return -1;
    work_wait(g, out);
    return 0;
}
