/*
 * rwlock.c - the store's in-memory reader-writer lock (rwlock.h), built so
 * that readers on different cores never write to the same cache line.
 *
 * A get holds the lock for an index lookup and the copy of a small record:
 * a fraction of a microsecond. With a single reader count (pthread_rwlock),
 * every get writes that count's cache line, which then moves between the
 * cores on every get: two reader threads did barely more than one. Here each
 * thread counts itself in one of READER_SHARDS counters, each on its own
 * cache line, chosen once per thread.
 *
 * A reader increments its counter, then looks at the writer flag; a writer
 * raises the flag, then waits for every counter to drop to zero. Both sides
 * use sequentially consistent operations, so at least one of them sees the
 * other: a reader that finds the flag raised takes its count back and waits
 * for the writer on writer_mu; a writer never enters while a count it could
 * have missed is held. Writers are serialised by writer_mu, which they try
 * a while before sleeping on it, since it is held only for an index update;
 * a writer first lets in the readers that went to sleep on it.
 * kv__unlock tells a writer from a reader by the thread-local record of which
 * lock the thread holds for writing.
 */
#include <sched.h>
#include <stdlib.h>

#include "rwlock.h"

#include "kvstore.h"

#define SPIN_TRIES  200
#define YIELD_EVERY 64

/* The shard of this thread, assigned round robin on its first lock. */
static atomic_uint next_shard;
static _Thread_local unsigned my_shard = UINT32_MAX;
/* The lock this thread holds for writing, if any. */
static _Thread_local const struct kv_rwlock *writing;

#ifdef KV_DEBUG
/* Debug builds: the read holds of this thread, by lock. A thread holds a
 * few stores' locks at most (tests open several stores). */
#define HELD_MAX 16
static _Thread_local struct {
    const struct kv_rwlock *lock;
    unsigned reads;
} held[HELD_MAX];

static unsigned *reads_of(const struct kv_rwlock *l, bool add)
{
    for (unsigned i = 0; i < HELD_MAX; i++)
        if (held[i].lock == l)
            return &held[i].reads;
    for (unsigned i = 0; add && i < HELD_MAX; i++)
        if (held[i].reads == 0) {
            held[i].lock = l;
            return &held[i].reads;
        }
    KV_ASSERT(!add); /* more locks held at once than HELD_MAX */
    return NULL;
}

bool kv__rwlock_held_write(const struct kv_rwlock *l)
{
    return writing == l;
}

bool kv__rwlock_held(const struct kv_rwlock *l)
{
    const unsigned *n = reads_of(l, false);
    return writing == l || (n && *n > 0);
}
#endif

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

unsigned kv__thread_shard(void)
{
    if (my_shard == UINT32_MAX)
        my_shard = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % READER_SHARDS;
    return my_shard;
}

static atomic_uint *shard_of_thread(struct kv_rwlock *l)
{
    return &l->readers[kv__thread_shard()].n;
}

/* Yields now and then, else pauses: for waits on a thread that holds on for
 * well under a microsecond unless it was preempted. */
static void back_off(unsigned n)
{
    if (n % YIELD_EVERY == 0)
        sched_yield();
    else
        cpu_relax();
}

int kv__rwlock_init(struct kv_rwlock *l)
{
    l->readers = aligned_alloc(CACHE_LINE, READER_SHARDS * sizeof(*l->readers));
    if (!l->readers)
        return KV_ENOMEM;
    for (unsigned i = 0; i < READER_SHARDS; i++)
        atomic_init(&l->readers[i].n, 0);
    atomic_init(&l->writer_active, false);
    atomic_init(&l->readers_waiting, 0);
    pthread_mutex_init(&l->writer_mu, NULL);
    return 0;
}

void kv__rwlock_destroy(struct kv_rwlock *l)
{
    if (!l->readers)
        return;
    free(l->readers);
    l->readers = NULL;
    pthread_mutex_destroy(&l->writer_mu);
}

void kv__rdlock(struct kv_rwlock *l)
{
#ifdef KV_DEBUG
    KV_ASSERT(!kv__rwlock_held(l)); /* not recursive: a writer in between would deadlock */
    ++*reads_of(l, true);
#endif
    atomic_uint *readers = shard_of_thread(l);
    for (;;) {
        atomic_fetch_add(readers, 1);
        if (!atomic_load(&l->writer_active))
            return;
        atomic_fetch_sub(readers, 1);
        for (int i = 0; i < SPIN_TRIES && atomic_load(&l->writer_active); i++)
            cpu_relax();
        if (atomic_load(&l->writer_active))
            break;
    }
    /* Sleep until the writer is done, then enter while holding writer_mu, so
     * that no writer can be active; the next writer lets the readers that
     * slept go first (readers_waiting), or a writer that takes the lock back
     * to back would keep them out for good. */
    atomic_fetch_add(&l->readers_waiting, 1);
    pthread_mutex_lock(&l->writer_mu);
    atomic_fetch_add(readers, 1);
    atomic_fetch_sub(&l->readers_waiting, 1);
    pthread_mutex_unlock(&l->writer_mu);
}

void kv__wrlock(struct kv_rwlock *l)
{
    KV_ASSERT(!kv__rwlock_held(l));
    for (unsigned n = 1; atomic_load(&l->readers_waiting) != 0; n++)
        back_off(n);
    int tries = 0;
    while (pthread_mutex_trylock(&l->writer_mu) != 0) {
        if (++tries == SPIN_TRIES) {
            pthread_mutex_lock(&l->writer_mu);
            break;
        }
        cpu_relax();
    }
    atomic_store(&l->writer_active, true);
    /* Readers hold the lock briefly, but one may have been preempted while
     * holding it: yield now and then rather than spin it out. */
    for (unsigned i = 0; i < READER_SHARDS; i++)
        for (unsigned n = 1; atomic_load(&l->readers[i].n) != 0; n++)
            back_off(n);
    writing = l;
}

void kv__unlock(struct kv_rwlock *l)
{
    if (writing == l) {
        writing = NULL;
        atomic_store(&l->writer_active, false);
        pthread_mutex_unlock(&l->writer_mu);
        return;
    }
#ifdef KV_DEBUG
    unsigned *n = reads_of(l, false);
    KV_ASSERT(n && *n > 0);
    --*n;
#endif
    atomic_fetch_sub_explicit(shard_of_thread(l), 1, memory_order_release);
}
