/*
 * pool.c - the job pool: a FIFO queue of intrusive jobs under one mutex and
 * a condition variable, served by a fixed set of threads.
 *
 * Invariant: once stopping is set no job enters the queue, and the threads
 * leave only when the queue is empty, so every accepted job runs exactly
 * once before vs_pool_stop returns.
 */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/* Pool threads only run engine calls: a small stack is plenty, and keeps
 * dozens of threads cheap. */
#define POOL_STACK_SIZE (256u * 1024u)

struct vs_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct vs_job *head, *tail;
    bool stopping;
    unsigned n_threads;
    pthread_t *threads;
};

static void *pool_main(void *arg)
{
    struct vs_pool *pool = arg;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (pool->head == NULL && !pool->stopping)
            pthread_cond_wait(&pool->wake, &pool->lock);
        struct vs_job *job = pool->head;
        if (job == NULL)
            break; /* stopping and drained */
        pool->head = job->next;
        if (pool->head == NULL)
            pool->tail = NULL;
        pthread_mutex_unlock(&pool->lock);
        job->run(job);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

static void pool_join(struct vs_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    pool->n_threads = 0;
}

int vs_pool_start(unsigned threads, struct vs_pool **out)
{
    int rc = -1;
    pthread_attr_t attr;
    bool attr_ok = false;
    struct vs_pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        goto out;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->threads = calloc(threads, sizeof(pthread_t));
    if (pool->threads == NULL)
        goto out;
    if (pthread_attr_init(&attr) != 0)
        goto out;
    attr_ok = true;
    pthread_attr_setstacksize(&attr, POOL_STACK_SIZE);
    for (unsigned i = 0; i < threads; i++) {
        int err = pthread_create(&pool->threads[i], &attr, pool_main, pool);
        if (err != 0) {
            errno = err;
            goto out;
        }
        pool->n_threads++;
    }
    *out = pool;
    pool = NULL;
    rc = 0;
out:
    if (attr_ok)
        pthread_attr_destroy(&attr);
    if (pool != NULL) {
        int saved = errno;
        vs_pool_stop(pool);
        errno = saved;
    }
    return rc;
}

int vs_pool_submit(struct vs_pool *pool, struct vs_job *job)
{
    int rc = 0;
    job->next = NULL;
    pthread_mutex_lock(&pool->lock);
    if (pool->stopping) {
        rc = -1;
    } else {
        if (pool->tail != NULL)
            pool->tail->next = job;
        else
            pool->head = job;
        pool->tail = job;
        pthread_cond_signal(&pool->wake);
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

void vs_pool_stop(struct vs_pool *pool)
{
    if (pool == NULL)
        return;
    pool_join(pool);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool);
}
