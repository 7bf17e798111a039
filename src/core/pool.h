/*
 * pool.h - a fixed set of threads that run jobs which may block, so that the
 * HTTP threads never wait for a disk.
 *
 * In sync mode "always" a write returns only after fdatasync; the engine
 * shares one fdatasync among all the writers that are waiting at that moment
 * (group commit). The HTTP threads are few (one per core), so writes are
 * handed to this pool, whose many threads wait in the engine together and
 * batch their syncs, while the HTTP threads go on serving other connections.
 */
#ifndef VS_POOL_H
#define VS_POOL_H

/* A job is embedded in the caller's structure; the pool never allocates. */
struct vs_job {
    void (*run)(struct vs_job *job);
    struct vs_job *next;
};

struct vs_pool;

/* Starts threads threads. Returns 0, or -1 with errno set. */
int vs_pool_start(unsigned threads, struct vs_pool **out);

/* Queues job to run on a pool thread. Returns 0, or -1 once vs_pool_stop has
 * begun (the job will not run). */
int vs_pool_submit(struct vs_pool *pool, struct vs_job *job);

/* Refuses new jobs, runs every job already queued, joins the threads and
 * frees the pool. NULL is accepted. */
void vs_pool_stop(struct vs_pool *pool);

#endif /* VS_POOL_H */
