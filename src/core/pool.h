/*
 * pool.h - a fixed set of threads that run jobs which may block (a
 * compaction, a snapshot, a backup, the Redis front end's commands that
 * wait for a disk), so that the front ends' event threads never wait for
 * them.
 *
 * The HTTP front end's durable writes do not come here: it submits them to
 * the engine with kv_write_async and is called back when they are on stable
 * storage, so that no thread waits per write in flight and the engine's
 * group commit sees every writer that waits.
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
