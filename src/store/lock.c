/*
 * lock.c - the store's reader-writer lock, built so that readers on
 * different cores never write to the same cache line.
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
 * a while before sleeping on it, since it is held only for an index update.
 * kv__unlock tells a writer from a reader by the thread-local record of which
 * store the thread holds for writing.
 */
#include <sched.h>
#include <stdlib.h>

#include "store.h"

#define SPIN_TRIES  200
#define YIELD_EVERY 64
#define CACHE_LINE  64

struct kv_reader_shard {
    _Alignas(CACHE_LINE) atomic_uint readers;
};

/* The shard of this thread, assigned round robin on its first lock. */
static atomic_uint next_shard;
static _Thread_local unsigned my_shard = UINT32_MAX;
/* The store this thread holds for writing, if any. */
static _Thread_local const kv_store *writing;

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static atomic_uint *shard_of_thread(kv_store *s)
{
    if (my_shard == UINT32_MAX)
        my_shard = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % READER_SHARDS;
    return &s->reader_shards[my_shard].readers;
}

int kv__lock_init(kv_store *s)
{
    s->reader_shards = aligned_alloc(CACHE_LINE, READER_SHARDS * sizeof(*s->reader_shards));
    if (!s->reader_shards)
        return KV_ENOMEM;
    for (unsigned i = 0; i < READER_SHARDS; i++)
        atomic_init(&s->reader_shards[i].readers, 0);
    atomic_init(&s->writer_active, false);
    pthread_mutex_init(&s->writer_mu, NULL);
    return 0;
}

void kv__lock_destroy(kv_store *s)
{
    if (!s->reader_shards)
        return;
    free(s->reader_shards);
    s->reader_shards = NULL;
    pthread_mutex_destroy(&s->writer_mu);
}

void kv__rdlock(kv_store *s)
{
    atomic_uint *readers = shard_of_thread(s);
    for (;;) {
        atomic_fetch_add(readers, 1);
        if (!atomic_load(&s->writer_active))
            return;
        atomic_fetch_sub(readers, 1);
        for (int i = 0; i < SPIN_TRIES && atomic_load(&s->writer_active); i++)
            cpu_relax();
        if (atomic_load(&s->writer_active)) {
            /* Sleep until the writer is done with the lock. */
            pthread_mutex_lock(&s->writer_mu);
            pthread_mutex_unlock(&s->writer_mu);
        }
    }
}

void kv__wrlock(kv_store *s)
{
    int tries = 0;
    while (pthread_mutex_trylock(&s->writer_mu) != 0) {
        if (++tries == SPIN_TRIES) {
            pthread_mutex_lock(&s->writer_mu);
            break;
        }
        cpu_relax();
    }
    atomic_store(&s->writer_active, true);
    for (unsigned i = 0; i < READER_SHARDS; i++) {
        /* Readers hold the lock briefly, but one may have been preempted
         * while holding it: yield now and then rather than spin it out. */
        for (unsigned n = 1; atomic_load(&s->reader_shards[i].readers) != 0; n++) {
            if (n % YIELD_EVERY == 0)
                sched_yield();
            else
                cpu_relax();
        }
    }
    writing = s;
}

void kv__unlock(kv_store *s)
{
    if (writing == s) {
        writing = NULL;
        atomic_store(&s->writer_active, false);
        pthread_mutex_unlock(&s->writer_mu);
        return;
    }
    atomic_fetch_sub_explicit(shard_of_thread(s), 1, memory_order_release);
}
