/*
 * logend.c - the end of the durable log (logend.h).
 *
 * One 64-bit word holds the position (segment id in the high half, offset
 * in the low: a segment is at most 2 GiB), so readers of the log learn how
 * far it is durable without taking append_mu, which a group-commit leader
 * holds through its fdatasync. Waiters sleep on a condition variable of
 * their own (CLOCK_MONOTONIC), taken under no other lock; the write path
 * broadcasts only when someone waits.
 */
#include "logend.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "debug.h"
#include "segment.h"
#include "store.h"

/* Compaction seal points remembered (see kv__logend_at_seal). */
#define SEALS 8

struct kv_logend {
    _Atomic uint64_t end;  /* seg << 32 | off */
    uint64_t seals[SEALS]; /* mu */
    unsigned nseals;       /* mu; seals[nseals % SEALS] is the next */
    atomic_uint waiters;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static uint64_t pack(uint64_t seg, uint64_t off)
{
    return seg << 32 | (off & 0xffffffffu);
}

int kv__logend_init(kv_store *s)
{
    struct kv_logend *e = calloc(1, sizeof(*e));
    if (!e)
        return KV_ENOMEM;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, &attr);
    pthread_condattr_destroy(&attr);
    kv__mutex_lock(&s->append_mu);
    atomic_store(&e->end, pack(s->active->id, s->active->synced_size));
    s->logend = e;
    kv__mutex_unlock(&s->append_mu);
    return 0;
}

void kv__logend_free(kv_store *s)
{
    struct kv_logend *e = s->logend;
    if (!e)
        return;
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
    s->logend = NULL;
}

void kv__logend_publish(kv_store *s, uint32_t seg, uint64_t off)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct kv_logend *e = s->logend;
    if (!e) /* recovery, before kv_open has set it up */
        return;
    uint64_t was = atomic_load(&e->end);
    if (seg > (was >> 32) + 1) {
        /* Writers jumped ahead: a compaction sealed the active segment and
         * keeps the ids between for its outputs. */
        pthread_mutex_lock(&e->mu);
        e->seals[e->nseals++ % SEALS] = was;
        pthread_mutex_unlock(&e->mu);
    }
    atomic_store(&e->end, pack(seg, off));
    if (atomic_load(&e->waiters) == 0)
        return;
    pthread_mutex_lock(&e->mu);
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

kv_log_pos kv__logend_get(kv_store *s)
{
    uint64_t v = atomic_load(&s->logend->end);
    return (kv_log_pos){.seg = v >> 32, .off = v & 0xffffffffu};
}

bool kv__logend_at_seal(kv_store *s, const kv_log_pos *pos)
{
    struct kv_logend *e = s->logend;
    uint64_t p = pack(pos->seg, pos->off);
    bool found = false;
    pthread_mutex_lock(&e->mu);
    for (unsigned i = 0; i < SEALS && i < e->nseals; i++)
        found = found || e->seals[i] == p;
    pthread_mutex_unlock(&e->mu);
    return found;
}

void kv__logend_wait(kv_store *s, const kv_log_pos *pos, uint32_t timeout_ms)
{
    struct kv_logend *e = s->logend;
    uint64_t want = pack(pos->seg, pos->off);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->mu);
    atomic_fetch_add(&e->waiters, 1);
    int rc = 0;
    /* The publisher stores the end before it looks at waiters, and this
     * thread counts itself before it looks at the end, under mu: a publish
     * either sees the waiter or is seen here. */
    while (atomic_load(&e->end) <= want && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&e->cv, &e->mu, &until);
    atomic_fetch_sub(&e->waiters, 1);
    pthread_mutex_unlock(&e->mu);
}
