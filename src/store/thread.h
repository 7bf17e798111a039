/*
 * thread.h - the engine's background threads (thread.c): a thread that runs
 * a task every period, on the monotonic clock, until it is stopped. The
 * interval fdatasync and the compaction trigger are two of them.
 */
#ifndef KV_STORE_THREAD_H
#define KV_STORE_THREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct kv_bgthread {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* waits on CLOCK_MONOTONIC: a clock change moves nothing */
    uint64_t period_ms;
    void (*task)(void *arg);
    void *arg;
    bool stop; /* mu */
    bool running;
};

/* Starts a thread that calls task(arg) every period_ms (the first time one
 * period after the start), without holding t's mutex. KV_ENOMEM when the
 * thread cannot be made. */
int kv__bgthread_start(struct kv_bgthread *t, uint64_t period_ms, void (*task)(void *arg),
                       void *arg);

/* Wakes the thread, waits for a task in progress to end, and joins it; no
 * task starts afterwards. A no-op when the thread is not running. */
void kv__bgthread_stop(struct kv_bgthread *t);

#endif /* KV_STORE_THREAD_H */
