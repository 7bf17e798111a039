/*
 * thread.h - the engine's mutexes and background threads (thread.c).
 *
 * struct kv_mutex is a pthread mutex that, in debug builds, knows the thread
 * that holds it, so that a function whose caller must hold it can check
 * (KV_ASSERT(kv__mutex_held(&s->append_mu))). Release builds keep only the
 * pthread mutex, and lock and unlock are the plain pthread calls.
 *
 * struct kv_bgthread runs a task every period, on the monotonic clock, until
 * it is stopped: the interval fdatasync and the compaction trigger.
 */
#ifndef KV_STORE_THREAD_H
#define KV_STORE_THREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "debug.h"

/* ---- mutexes */

struct kv_mutex {
    pthread_mutex_t mu;
#ifdef KV_DEBUG
    atomic_uintptr_t owner; /* kv__thread_id() of the holder; 0 when free */
#endif
};

#ifdef KV_DEBUG
/* A number that tells the calling thread from every other live thread. */
uintptr_t kv__thread_id(void);

/* Whether the calling thread holds m. Only the holder ever stores its own
 * id, so a relaxed load is exact for the question "is it me". */
static inline bool kv__mutex_held(const struct kv_mutex *m)
{
    return atomic_load_explicit(&m->owner, memory_order_relaxed) == kv__thread_id();
}
#endif

static inline void kv__mutex_init(struct kv_mutex *m)
{
    pthread_mutex_init(&m->mu, NULL);
#ifdef KV_DEBUG
    atomic_init(&m->owner, 0);
#endif
}

static inline void kv__mutex_destroy(struct kv_mutex *m)
{
    pthread_mutex_destroy(&m->mu);
}

static inline void kv__mutex_lock(struct kv_mutex *m)
{
    KV_ASSERT(!kv__mutex_held(m)); /* not recursive */
    pthread_mutex_lock(&m->mu);
#ifdef KV_DEBUG
    atomic_store_explicit(&m->owner, kv__thread_id(), memory_order_relaxed);
#endif
}

static inline void kv__mutex_unlock(struct kv_mutex *m)
{
    KV_ASSERT(kv__mutex_held(m));
#ifdef KV_DEBUG
    atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
#endif
    pthread_mutex_unlock(&m->mu);
}

/* ---- condition variables on a kv_mutex, on CLOCK_MONOTONIC */

/* Initialises cv to wait on the monotonic clock. KV_ENOMEM on failure. */
int kv__cond_init(pthread_cond_t *cv);

/* pthread_cond_wait on m, which the caller holds (and holds again after). */
void kv__cond_wait(pthread_cond_t *cv, struct kv_mutex *m);

/* The same, until the CLOCK_MONOTONIC time until_ns at the latest. */
void kv__cond_wait_until(pthread_cond_t *cv, struct kv_mutex *m, uint64_t until_ns);

/* Nanoseconds on CLOCK_MONOTONIC. */
uint64_t kv__now_ns(void);

/* ---- background threads */

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
