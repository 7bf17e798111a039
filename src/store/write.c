/*
 * write.c - the append path: every put and delete becomes a record appended
 * to the active segment by a group-commit leader.
 *
 * Writers queue up; the writer at the head of the queue becomes the leader,
 * takes as many queued records as fit (BATCH_MAX_*, and never across a
 * segment boundary), writes them with one pwritev, makes them durable with one
 * fdatasync (sync mode always), applies them to the index in log order, and
 * hands each waiting writer its result. So N concurrent writers pay for about
 * one fdatasync, not N, and the index only ever shows durable records.
 *
 * A write may carry a condition (enum kv__write_cond: kv_delete's "the key
 * exists"). The leader decides the conditions of its batch when it has taken
 * it, in log order, under the lock it holds anyway to size the index: each
 * against the index as the earlier batches left it and against the earlier
 * writes of the same key in this batch. A write whose condition fails is
 * left out of the batch: it writes nothing and gets the condition's code.
 * Since only a leader changes the index's keys (under append_mu), nothing can
 * change the outcome between the decision and the write.
 *
 * Each waiting writer sleeps on its own semaphore, posted exactly once: when
 * its write is done, or when it becomes the head of the queue. The leader
 * takes its batch off the queue before writing it and promotes the next
 * writer at once, so that writer's wake-up overlaps this batch's fdatasync;
 * it then waits for append_mu, and in sync mode always briefly for the
 * writers this batch releases (await_writers), before it plans its own.
 *
 * A failed write (ENOSPC, EIO, a short write) cuts the batch's bytes off the
 * segment again: the batch fails, nothing of it is acknowledged or indexed,
 * and the next write may succeed. A failed fdatasync fails the batch it
 * covered; since the kernel may have dropped those pages and a retried fsync
 * can falsely succeed, the engine never trusts that tail again: it cuts the
 * segment back to its last synced length, seals it, and continues in a fresh
 * segment. If that cleanup fails too, or the failed sync covered writes that
 * were already acknowledged (sync modes interval and none), the store turns
 * read-only (KV_EREADONLY) until it is reopened.
 */
#include "write.h"

#include <errno.h>
#include <sched.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bloom.h"
#include "compress.h"
#include "debug.h"
#include "index.h"
#include "io.h"
#include "keydir.h"
#include "logend.h"
#include "logging.h"
#include "meta.h"
#include "record.h"
#include "rwlock.h"
#include "segment.h"
#include "store.h"
#include "thread.h"

#define BATCH_MAX_RECORDS 256
#define BATCH_MAX_BYTES   (4u << 20)
#define SMALL_RECORD_MAX  256u
#define STACK_IOVS        64

struct write_req {
    uint8_t op;
    uint8_t cond; /* enum kv__write_cond */
    bool skip;    /* its condition failed: left out of the batch, rc says why */
    const void *key;
    size_t key_len;
    const void *val;
    size_t val_len;
    uint64_t hash;
    /* The encoded record, as iovecs over buf and the caller's key and value:
     * a small record is copied whole into buf (one piece, one CRC pass), a
     * larger one keeps its header and trailer there. */
    uint8_t buf[SMALL_RECORD_MAX];
    struct iovec iov[4];
    int niov;
    struct kv_loc loc; /* where the leader placed it */
    int rc;
    bool done;
    sem_t wake; /* posted once: done, or promoted to leader */
    struct write_req *next;
};

static uint64_t req_size(const struct write_req *w)
{
    return record_size(w->key_len, w->val_len);
}

static void set_read_only(kv_store *s, const char *why)
{
    if (!atomic_exchange(&s->read_only, true))
        kv__log(s, KV_LOG_ERROR, "store is now read-only until reopened: %s", why);
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* fdatasync of the active segment's unsynced bytes; append_mu held. */
static int sync_active(kv_store *s)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct segment *a = s->active;
    uint64_t size = atomic_load(&a->size);
    if (a->synced_size == size)
        return 0;
    uint64_t start = now_ns();
    int rc = kv__fsync_counted(s, a->fd, true);
    if (rc != 0) {
        kv__log(s, KV_LOG_ERROR, "fdatasync of segment %u failed: %s", a->id, strerror(errno));
        return rc;
    }
    s->last_sync_ns = now_ns() - start;
    a->synced_size = size;
    kv__logend_publish(s, a->id, size);
    return 0;
}

int kv__sync_active(kv_store *s)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    /* Outside the append path, unsynced bytes are acknowledged writes (sync
     * modes interval and none): if they cannot be made durable, no later
     * fsync can be trusted to have done it either. */
    int rc = sync_active(s);
    if (rc != 0)
        set_read_only(s, "an fdatasync of acknowledged writes failed");
    return rc;
}

int kv__rotate(kv_store *s, uint32_t new_id)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct segment *old = s->active;
    int rc = kv__sync_active(s);
    if (rc != 0)
        return KV_EREADONLY;
    rc = kv__prealloc_seal(s, old);
    if (rc != 0)
        return rc;
    struct segment *seg;
    rc = kv__segment_create(s, new_id, &seg);
    if (rc != 0)
        return rc;
    kv__wrlock(&s->rwlock);
    rc = kv__segtab_add(s, seg);
    if (rc == 0) {
        s->active = seg;
        old->writable = false;
    }
    kv__unlock(&s->rwlock);
    if (rc != 0) {
        char path[4096];
        kv__segment_discard(s, seg);
        if (kv__segment_path(s->dir, new_id, false, path, sizeof(path)) == 0)
            s->io->unlink(s->io->ctx, path);
        return rc;
    }
    kv__prealloc_activate(s, seg);
    kv__logend_publish(s, new_id, 0);
    kv__log(s, KV_LOG_DEBUG, "sealed segment %u, writing to segment %u", old->id, new_id);
    return 0;
}

/* Cuts the active segment back to len after a failed write or sync. */
static int truncate_active(kv_store *s, uint64_t len)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct segment *a = s->active;
    if (kv__prealloc_truncate(s, a, len) != 0) {
        int err = errno;
        kv__log(s, KV_LOG_ERROR, "cannot cut segment %u back to %llu bytes: %s", a->id,
                (unsigned long long)len, strerror(err));
        return kv__errno_to_rc(err);
    }
    atomic_store(&a->size, len);
    return 0;
}

/* After a failed fdatasync in sync mode always: forget the unsynced tail and
 * move to a fresh segment. */
static void abandon_unsynced_tail(kv_store *s)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct segment *a = s->active;
    if (truncate_active(s, a->synced_size) != 0 || kv__fsync_counted(s, a->fd, false) != 0) {
        set_read_only(s, "the unsynced tail of a segment could not be cut off");
        return;
    }
    if (kv__rotate(s, a->id + 1) != 0)
        set_read_only(s, "no fresh segment could be started after a failed fdatasync");
}

/* Takes the batch [first, *last] off the queue: the records after first that
 * fit the segment (size bytes used, limit) and the batch limits, none when
 * alone is set. The writer behind the batch becomes the next leader at once:
 * it wakes up while this batch is written and synced, and is ready to take
 * append_mu the moment this leader lets go. Also notes how many writers this
 * round involved, for await_writers. */
static void take_batch(kv_store *s, struct write_req *first, uint64_t size, uint64_t limit,
                       bool alone, struct write_req **last, size_t *count)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    uint64_t bytes = req_size(first);
    struct write_req *w = first;
    size_t n = 1;
    kv__mutex_lock(&s->queue_mu);
    while (!alone && w->next && n < BATCH_MAX_RECORDS) {
        uint64_t more = req_size(w->next);
        if (bytes + more > BATCH_MAX_BYTES || size + bytes + more > limit)
            break;
        w = w->next;
        bytes += more;
        n++;
    }
    struct write_req *next = w->next;
    w->next = NULL;
    s->queue_head = next;
    size_t left = atomic_load_explicit(&s->queue_len, memory_order_relaxed) - n;
    atomic_store_explicit(&s->queue_len, left, memory_order_relaxed);
    if (!next)
        s->queue_tail = NULL;
    s->round_writers = n + left;
    if (next)
        sem_post(&next->wake);
    kv__mutex_unlock(&s->queue_mu);
    *last = w;
    *count = n;
}

/* Chooses and takes the batch that starts at first, rotating first when even
 * the first record does not fit the active segment (a record longer than a
 * segment gets a segment of its own). On failure the batch is first alone,
 * and fails. append_mu held. */
static int plan_batch(kv_store *s, struct write_req *first, struct write_req **last, size_t *count)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    uint64_t limit = s->opts.segment_size;
    uint64_t size = atomic_load(&s->active->size);
    int rc = atomic_load(&s->read_only) ? KV_EREADONLY : 0;
    if (rc == 0 && size > 0 && size + req_size(first) > limit) {
        rc = kv__rotate(s, s->active->id + 1);
        size = 0;
    }
    take_batch(s, first, size, limit, rc != 0, last, count);
    return rc;
}

/* Writes the batch at the end of the active segment. append_mu held. */
static int write_batch(kv_store *s, struct write_req *first, size_t count)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct segment *a = s->active;
    uint64_t start = atomic_load(&a->size);
    struct iovec stack_iov[STACK_IOVS];
    struct iovec *iov = stack_iov;
    if (count * 4 > STACK_IOVS) {
        iov = malloc(count * 4 * sizeof(*iov));
        if (!iov)
            return KV_ENOMEM;
    }
    int n = 0;
    uint64_t off = start;
    struct write_req *w = first;
    for (size_t i = 0; i < count; i++, w = w->next) {
        if (w->skip)
            continue;
        w->loc.seg = a->id;
        w->loc.off = (uint32_t)off;
        w->loc.val_len = (uint32_t)w->val_len;
        for (int j = 0; j < w->niov; j++)
            iov[n++] = w->iov[j];
        off += req_size(w);
    }
    kv__prealloc_before_write(s, a, start, off);
    int rc = kv__io_writev_full(s->io, a->fd, iov, n, (off_t)start);
    int err = errno;
    if (rc == 0)
        kv__prealloc_after_write(s, a, off);
    if (iov != stack_iov)
        free(iov);
    if (rc != 0) {
        kv__log(s, KV_LOG_ERROR, "write to segment %u failed: %s", a->id, strerror(err));
        if (truncate_active(s, start) != 0)
            set_read_only(s, "a failed write could not be cut off the segment");
        return rc;
    }
    atomic_store(&a->size, off);
    if (s->opts.sync_mode != KV_SYNC_ALWAYS)
        return 0;
    rc = sync_active(s);
    if (rc != 0)
        abandon_unsynced_tail(s);
    return rc;
}

/* Applies a written batch to the index, in log order. append_mu held. */
static int apply_batch(kv_store *s, struct write_req *first, size_t count)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    int rc = 0;
    struct kv_attrs attrs;
    kv__wrlock(&s->rwlock);
    struct write_req *w = first;
    for (size_t i = 0; i < count && rc == 0; i++, w = i < count ? w->next : w) {
        if (w->skip)
            continue;
        if (w->op == KV_OP_SET)
            rc = kv__apply_set(s, w->hash, w->key, w->key_len, &w->loc, NULL, NULL);
        else if (w->op == KV_OP_SETX)
            rc = kv__apply_set(s, w->hash, w->key, w->key_len, &w->loc,
                               kv__payload_attrs(w->val, w->val_len, &attrs), NULL);
        else if (w->op == KV_OP_META)
            rc = kv__meta_apply(s, w->key, w->key_len, w->val, w->val_len, w->loc.seg, w->loc.off);
        else
            kv__apply_delete(s, w->hash, w->key, w->key_len);
    }
    if (rc == 0 && bloom_is_full(&s->bloom))
        rc = kv__rebuild_bloom(s);
    kv__unlock(&s->rwlock);
    if (rc != 0)
        set_read_only(s, "out of memory while indexing durable records");
    return rc;
}

/*
 * In sync mode always, waits a little for the writers of the previous round
 * to queue their next writes before this batch is planned. append_mu held.
 *
 * Each writer has one write in flight, and the previous batch's writers are
 * woken only after its fdatasync; without the wait they come back just after
 * the next batch has started, so the writers split into two halves that take
 * turns and an fdatasync carries about half of them. Waking 15 writers takes
 * this machine ~80 us, an fdatasync ~150 us: waiting for them doubles the
 * batch for half again the time. The wait ends as soon as as many writers are
 * queued as took part in the previous round (so a lone writer never waits),
 * and after half the last fdatasync's duration at most, which bounds the loss
 * when they do not come back.
 */
static void await_writers(kv_store *s)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    if (s->opts.sync_mode != KV_SYNC_ALWAYS || s->last_sync_ns == 0)
        return;
    kv__mutex_lock(&s->queue_mu);
    size_t want = s->round_writers;
    kv__mutex_unlock(&s->queue_mu);
    if (atomic_load_explicit(&s->queue_len, memory_order_relaxed) >= want)
        return;
    uint64_t until = now_ns() + s->last_sync_ns / 2;
    /* Yielding, not sleeping: the writers to wait for are runnable and need
     * this CPU, and a sleep would cost a wake-up as long as the wait. */
    do
        sched_yield();
    while (atomic_load_explicit(&s->queue_len, memory_order_relaxed) < want && now_ns() < until);
}

/* Whether w's key is in the store just before w: as the last earlier write
 * of the same key in the batch left it, or else as the index has it. The
 * rwlock is held. */
static bool present_before(kv_store *s, const struct write_req *first, const struct write_req *w)
{
    const struct write_req *last = NULL;
    for (const struct write_req *r = first; r != w; r = r->next)
        if (!r->skip && r->op != KV_OP_META && r->hash == w->hash && r->key_len == w->key_len &&
            memcmp(r->key, w->key, w->key_len) == 0)
            last = r;
    if (last)
        return last->op != KV_OP_DELETE;
    return bloom_may_contain(&s->bloom, w->hash) &&
           index_lookup(&s->index, w->hash, w->key, w->key_len) != NULL;
}

/* 0 when w's condition holds, else the code w fails with. */
static int cond_check(const struct write_req *w, bool present)
{
    switch ((enum kv__write_cond)w->cond) {
    case KV_COND_PRESENT:
        return present ? 0 : KV_ENOTFOUND;
    case KV_COND_NONE:
        break;
    }
    return 0;
}

/* Decides the conditions of the batch [first, count) in log order, leaving
 * out (skip, with its code in rc) each write whose condition fails; returns
 * how many writes are left. append_mu and the rwlock are held. */
static size_t settle_conditions(kv_store *s, struct write_req *first, size_t count)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu) && kv__rwlock_held(&s->rwlock));
    size_t left = count;
    struct write_req *w = first;
    for (size_t i = 0; i < count; i++, w = w->next) {
        if (w->cond == KV_COND_NONE)
            continue;
        int rc = cond_check(w, present_before(s, first, w));
        if (rc != 0) {
            w->skip = true;
            w->rc = rc;
            left--;
        }
    }
    return left;
}

/* The leader's work for the batch that starts at first (the queue's head). */
static int lead_batch(kv_store *s, struct write_req *first)
{
    size_t count = 1;
    struct write_req *last = first;
    kv__mutex_lock(&s->append_mu);
    await_writers(s);
    int rc = plan_batch(s, first, &last, &count);
    /* One read-lock hold decides the conditions and whether the index must
     * grow for the writes left. It grows before the records become durable,
     * so that applying them cannot fail for memory; the write lock is taken
     * only then, and readers keep their lookups meanwhile. */
    kv__rdlock(&s->rwlock);
    size_t writes = settle_conditions(s, first, count);
    bool grow = rc == 0 && writes > 0 && index_needs_room(&s->index, writes);
    kv__unlock(&s->rwlock);
    if (grow) {
        kv__wrlock(&s->rwlock);
        rc = index_reserve(&s->index, writes);
        kv__unlock(&s->rwlock);
    }
    if (rc == 0 && writes > 0)
        rc = write_batch(s, first, count);
    if (rc == 0 && writes > 0)
        rc = apply_batch(s, first, count);
    kv__mutex_unlock(&s->append_mu);
    return rc;
}

/* Hands every follower of the batch its result: rc, or the code of its
 * failed condition. A follower may return (and its request vanish) as soon
 * as it is posted, so next is read first. */
static void finish_batch(struct write_req *first, int rc)
{
    struct write_req *r = first->next;
    while (r) {
        struct write_req *next = r->next;
        if (!r->skip)
            r->rc = rc;
        r->done = true;
        sem_post(&r->wake);
        r = next;
    }
}

/* The record checksum over head (the CRC of op, lengths and key) and the
 * value. With value_crc, the value's own CRC too, from the same single pass
 * over it: computed apart and combined into the record's. */
static uint32_t record_crc(uint32_t head, const void *val, size_t val_len, uint32_t *value_crc)
{
    if (!value_crc)
        return record_crc_update(head, val, val_len);
    *value_crc = record_crc_update(0, val, val_len);
    return record_crc_combine(head, *value_crc, val_len);
}

/* Encodes the record of w into its iovecs, checksum included; with
 * value_crc, also gives the CRC of the value alone. */
static void encode_request(struct write_req *w, uint32_t *value_crc)
{
    uint8_t *p = w->buf;
    record_encode_header(p, w->op, (uint32_t)w->key_len, (uint32_t)w->val_len);
    uint64_t len = req_size(w);
    if (len <= sizeof(w->buf)) {
        uint8_t *v = p + RECORD_HEADER_LEN + w->key_len;
        memcpy(p + RECORD_HEADER_LEN, w->key, w->key_len);
        if (w->val_len > 0)
            memcpy(v, w->val, w->val_len);
        uint32_t crc = value_crc ? record_crc(record_crc_update(0, p + 2, (size_t)(v - p - 2)), v,
                                              w->val_len, value_crc)
                                 : record_crc_update(0, p + 2, len - 2 - RECORD_TRAILER_LEN);
        put_u32(p + len - RECORD_TRAILER_LEN, crc);
        w->iov[0] = (struct iovec){.iov_base = p, .iov_len = len};
        w->niov = 1;
        return;
    }
    uint8_t *trailer = p + RECORD_HEADER_LEN;
    uint32_t crc =
        record_crc(record_crc_head(p, w->key, w->key_len), w->val, w->val_len, value_crc);
    put_u32(trailer, crc);
    int n = 0;
    w->iov[n++] = (struct iovec){.iov_base = p, .iov_len = RECORD_HEADER_LEN};
    w->iov[n++] = (struct iovec){.iov_base = (void *)w->key, .iov_len = w->key_len};
    if (w->val_len > 0)
        w->iov[n++] = (struct iovec){.iov_base = (void *)w->val, .iov_len = w->val_len};
    w->iov[n++] = (struct iovec){.iov_base = trailer, .iov_len = RECORD_TRAILER_LEN};
    w->niov = n;
}

/* Queues one record and waits for its batch: the write path proper. */
static int submit(kv_store *s, uint8_t op, const void *key, size_t key_len, const void *val,
                  size_t val_len, enum kv__write_cond cond, uint32_t *value_crc)
{
    KV_ASSERT(!kv__rwlock_held(&s->rwlock) && !kv__mutex_held(&s->append_mu));
    struct write_req w = {.op = op,
                          .cond = (uint8_t)cond,
                          .key = key,
                          .key_len = key_len,
                          .val = val,
                          .val_len = val_len};
    w.hash = index_hash(key, key_len);
    encode_request(&w, value_crc);
    sem_init(&w.wake, 0, 0);

    kv__mutex_lock(&s->queue_mu);
    if (s->closing) {
        kv__mutex_unlock(&s->queue_mu);
        sem_destroy(&w.wake);
        return KV_EBUSY;
    }
    /* The request lives on this stack frame: it leaves the queue (under
     * queue_mu) before this function returns. */
    if (s->queue_tail)
        s->queue_tail->next = &w;
    else
        s->queue_head = &w; // cppcheck-suppress autoVariables
    s->queue_tail = &w;     // cppcheck-suppress autoVariables
    atomic_store_explicit(&s->queue_len,
                          atomic_load_explicit(&s->queue_len, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    bool lead = s->queue_head == &w;
    kv__mutex_unlock(&s->queue_mu);

    /* Posted once: either this write is done, or it heads the queue now. */
    if (!lead) {
        while (sem_wait(&w.wake) != 0)
            ;
    }
    if (w.done) {
        sem_destroy(&w.wake);
        return w.rc;
    }
    int rc = lead_batch(s, &w);
    finish_batch(&w, rc);
    sem_destroy(&w.wake);
    return w.skip ? w.rc : rc;
}

/* A set's value is encoded for its record here, in the writer's thread
 * before it queues: as it is (SET), or into a SETX with its expiry and
 * compressed (compress.c). The leader then only copies bytes. */
int kv__write_set(kv_store *s, const void *key, size_t key_len, const void *val, size_t val_len,
                  uint64_t expire_at_ms, enum kv__write_cond cond, uint32_t *value_crc)
{
    struct kv_setval sv;
    int rc = kv__setval_encode(s, val, val_len, expire_at_ms, &sv);
    if (rc != 0)
        return rc;
    bool setx = sv.op == KV_OP_SETX;
    rc = submit(s, sv.op, key, key_len, sv.data, sv.len, cond, setx ? NULL : value_crc);
    if (setx && value_crc)
        *value_crc = sv.value_crc;
    kv__setval_release(s, &sv);
    return rc;
}

int kv__write(kv_store *s, uint8_t op, const void *key, size_t key_len, const void *val,
              size_t val_len, enum kv__write_cond cond, uint32_t *value_crc)
{
    if (op == KV_OP_SET)
        return kv__write_set(s, key, key_len, val, val_len, 0, cond, value_crc);
    return submit(s, op, key, key_len, val, val_len, cond, value_crc);
}

int kv__append_path_run(kv_store *s, int (*fn)(kv_store *s))
{
    kv__mutex_lock(&s->append_mu);
    int rc = atomic_load(&s->read_only) ? KV_EREADONLY : fn(s);
    kv__mutex_unlock(&s->append_mu);
    return rc;
}

/* ---- KV_SYNC_INTERVAL: a thread that makes the active segment durable every
 * sync_interval_ms. */

static void sync_task(void *arg)
{
    kv_store *s = arg;
    kv__mutex_lock(&s->append_mu);
    if (!atomic_load(&s->read_only))
        kv__sync_active(s);
    kv__mutex_unlock(&s->append_mu);
}

int kv__start_sync_thread(kv_store *s)
{
    return kv__bgthread_start(&s->sync_thread, s->opts.sync_interval_ms, sync_task, s);
}

void kv__stop_sync_thread(kv_store *s)
{
    kv__bgthread_stop(&s->sync_thread);
}
