/*
 * lock.c - the store's rwlock with a bounded spin before blocking (see
 * store.h for why). The spin uses the try operations, so a thread that is
 * spinning is not registered as a waiter and does not hold others up.
 */
#include "store.h"

#define SPIN_TRIES 200

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void kv__rdlock(kv_store *s)
{
    for (int i = 0; i < SPIN_TRIES; i++) {
        if (pthread_rwlock_tryrdlock(&s->lock) == 0)
            return;
        cpu_relax();
    }
    pthread_rwlock_rdlock(&s->lock);
}

void kv__wrlock(kv_store *s)
{
    for (int i = 0; i < SPIN_TRIES; i++) {
        if (pthread_rwlock_trywrlock(&s->lock) == 0)
            return;
        cpu_relax();
    }
    pthread_rwlock_wrlock(&s->lock);
}

void kv__unlock(kv_store *s)
{
    pthread_rwlock_unlock(&s->lock);
}
