/*
 * thread.c - background threads that run a task every period, and the
 * thread identity of the debug builds' lock checks (thread.h).
 *
 * The wait is a condition variable on CLOCK_MONOTONIC, so that a change of
 * the wall clock neither fires a task early nor holds it back, and so that a
 * stop wakes the thread at once instead of after the rest of its period.
 */
#include "thread.h"

#include <errno.h>
#include <time.h>

#include "kvstore.h"

#ifdef KV_DEBUG
/* Its address differs between every two threads that are alive at once. */
static _Thread_local char thread_marker;

uintptr_t kv__thread_id(void)
{
    return (uintptr_t)&thread_marker;
}
#endif

int kv__cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int r = pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
    return r == 0 ? 0 : KV_ENOMEM;
}

/* While the thread sleeps in the wait, it does not hold m: the debug
 * builds' owner is cleared for the wait and set again after it. */
void kv__cond_wait(pthread_cond_t *cv, struct kv_mutex *m)
{
    KV_ASSERT(kv__mutex_held(m));
#ifdef KV_DEBUG
    atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
#endif
    pthread_cond_wait(cv, &m->mu);
#ifdef KV_DEBUG
    atomic_store_explicit(&m->owner, kv__thread_id(), memory_order_relaxed);
#endif
}

void kv__cond_wait_until(pthread_cond_t *cv, struct kv_mutex *m, uint64_t until_ns)
{
    KV_ASSERT(kv__mutex_held(m));
    struct timespec until = {.tv_sec = (time_t)(until_ns / 1000000000u),
                             .tv_nsec = (long)(until_ns % 1000000000u)};
#ifdef KV_DEBUG
    atomic_store_explicit(&m->owner, 0, memory_order_relaxed);
#endif
    pthread_cond_timedwait(cv, &m->mu, &until);
#ifdef KV_DEBUG
    atomic_store_explicit(&m->owner, kv__thread_id(), memory_order_relaxed);
#endif
}

uint64_t kv__now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void *bgthread_main(void *arg)
{
    struct kv_bgthread *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + t->period_ms * 1000000u;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        int r = 0;
        while (!t->stop && r != ETIMEDOUT)
            r = pthread_cond_timedwait(&t->cv, &t->mu, &until);
        if (t->stop)
            break;
        pthread_mutex_unlock(&t->mu);
        t->task(t->arg);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int kv__bgthread_start(struct kv_bgthread *t, uint64_t period_ms, void (*task)(void *arg),
                       void *arg)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int r = pthread_cond_init(&t->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (r != 0)
        return KV_ENOMEM;
    pthread_mutex_init(&t->mu, NULL);
    t->period_ms = period_ms;
    t->task = task;
    t->arg = arg;
    t->stop = false;
    if (pthread_create(&t->thread, NULL, bgthread_main, t) != 0) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        return KV_ENOMEM;
    }
    t->running = true;
    return 0;
}

void kv__bgthread_stop(struct kv_bgthread *t)
{
    if (!t->running)
        return;
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    t->running = false;
}
