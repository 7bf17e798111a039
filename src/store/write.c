/*
 * write.c - the append path below the commit pipeline (commit.c): appending
 * a round's records to the active segment and making them durable, rotation
 * of the active segment, and the fdatasync of sync mode interval.
 *
 * A failed write (ENOSPC, EIO, a short write) cuts the round's bytes off the
 * segment again: the round fails, nothing of it is acknowledged or indexed,
 * and the next write may succeed. A failed fdatasync fails the round it
 * covered; since the kernel may have dropped those pages and a retried fsync
 * can falsely succeed, the engine never trusts that tail again: it cuts the
 * segment back to its last synced length, seals it, and continues in a fresh
 * segment. If that cleanup fails too, or the failed sync covered writes that
 * were already acknowledged (sync modes interval and none), the store turns
 * read-only (KV_EREADONLY) until it is reopened.
 */
#include "write.h"

#include <errno.h>
#include <string.h>

#include "debug.h"
#include "io.h"
#include "logend.h"
#include "logging.h"
#include "rwlock.h"
#include "segment.h"
#include "store.h"
#include "thread.h"

void kv__set_read_only(kv_store *s, const char *why)
{
    if (!atomic_exchange(&s->read_only, true))
        kv__log(s, KV_LOG_ERROR, "store is now read-only until reopened: %s", why);
}

/* fdatasync of the active segment's unsynced bytes; append_mu held. */
static int sync_active(kv_store *s)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct segment *a = s->active;
    uint64_t size = atomic_load(&a->size);
    if (a->synced_size == size)
        return 0;
    uint64_t start = kv__now_ns();
    int rc = kv__fsync_counted(s, a->fd, true);
    if (rc != 0) {
        kv__log(s, KV_LOG_ERROR, "fdatasync of segment %u failed: %s", a->id, strerror(errno));
        return rc;
    }
    s->last_sync_ns = kv__now_ns() - start;
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
        kv__set_read_only(s, "an fdatasync of acknowledged writes failed");
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
        kv__set_read_only(s, "the unsynced tail of a segment could not be cut off");
        return;
    }
    if (kv__rotate(s, a->id + 1) != 0)
        kv__set_read_only(s, "no fresh segment could be started after a failed fdatasync");
}

/* Writes iov (bytes [start, end) of the active segment) at the end of the
 * active segment and, in sync mode always, makes it durable. On failure the
 * bytes are cut off again (see the top comment). append_mu held. */
int kv__append(kv_store *s, struct iovec *iov, size_t n, uint64_t start, uint64_t end)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct segment *a = s->active;
    KV_ASSERT(atomic_load(&a->size) == start);
    kv__prealloc_before_write(s, a, start, end);
    int rc = kv__io_writev_full(s->io, a->fd, iov, (int)n, (off_t)start);
    int err = errno;
    if (rc == 0)
        kv__prealloc_after_write(s, a, end);
    if (rc != 0) {
        kv__log(s, KV_LOG_ERROR, "write to segment %u failed: %s", a->id, strerror(err));
        if (truncate_active(s, start) != 0)
            kv__set_read_only(s, "a failed write could not be cut off the segment");
        return rc;
    }
    atomic_store(&a->size, end);
    if (s->opts.sync_mode != KV_SYNC_ALWAYS)
        return 0;
    rc = sync_active(s);
    if (rc != 0)
        abandon_unsynced_tail(s);
    return rc;
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
