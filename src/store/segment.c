/*
 * segment.c - segment files and the store's table of them.
 *
 * The table (s->segs, sorted by id, the active segment last) changes only
 * under the store's rwlock held for writing. A reader pins the segment it is
 * about to read while it still holds the rwlock, in its own reader shard's
 * count (so readers on different cores write different cache lines), and
 * reads after releasing it. A segment that compaction takes out of the table
 * is retired: once the pins taken before have drained, it is unmapped, its
 * descriptor closed and its memory freed.
 *
 * Reads copy records out of a shared read-only mapping of the file, made on
 * a segment's first read: no system call. That is safe because no byte a
 * read looks at ever changes: sealed segments are immutable, the active one
 * only grows, and the only truncations (a failed write or fdatasync cut back
 * in write.c, a torn tail at open) remove bytes no index entry points at. A
 * segment that cannot be mapped (or a table of file calls without map, or a
 * record beyond the mapping) is read with preadv. Descriptors are opened on
 * demand and the least recently used idle ones closed when more than
 * opts.max_open_files are open; a mapping does not hold one.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segment.h"

#include "debug.h"
#include "io.h"
#include "logging.h"
#include "rwlock.h"
#include "store.h"
#include "thread.h"

int kv__segment_path(const char *dir, uint32_t id, bool tmp, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/segment-%u.dat%s", dir, id, tmp ? ".tmp" : "");
    return n < 0 || (size_t)n >= len ? KV_EINVAL : 0;
}

/* Parses "segment-<N>.dat"; false for any other name. */
static bool parse_segment_name(const char *name, uint64_t *id)
{
    static const char prefix[] = "segment-";
    static const char suffix[] = ".dat";
    size_t len = strlen(name);
    size_t plen = sizeof(prefix) - 1, slen = sizeof(suffix) - 1;
    if (len <= plen + slen || strncmp(name, prefix, plen) != 0 ||
        strcmp(name + len - slen, suffix) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = plen; i < len - slen; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *id = v;
    return true;
}

bool kv__segment_name_id(const char *name, uint64_t *id)
{
    return parse_segment_name(name, id);
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    return n >= m && strcmp(name + n - m, suffix) == 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int kv__list_segments(const struct kv_io *io, const char *dir, const kv_store *log, bool remove_tmp,
                      uint32_t **ids, size_t *n)
{
    void *d = io->opendir(io->ctx, dir);
    if (!d) {
        int err = errno;
        kv__log(log, KV_LOG_ERROR, "cannot read directory %s: %s", dir, strerror(err));
        return kv__errno_to_rc(err);
    }
    uint32_t *out = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    const char *name;
    char path[4096];
    for (errno = 0; (name = io->readdir(io->ctx, d)) != NULL; errno = 0) {
        uint64_t id;
        if (has_suffix(name, ".tmp")) {
            if (remove_tmp && kv__join_path(dir, name, path, sizeof(path)) == 0 &&
                io->unlink(io->ctx, path) == 0)
                kv__log(log, KV_LOG_INFO, "removed stale temporary file %s", name);
            continue;
        }
        if (!parse_segment_name(name, &id))
            continue;
        if (id > UINT32_MAX - 1024) {
            kv__log(log, KV_LOG_ERROR, "%s: segment number too large for this version", name);
            rc = KV_EFORMAT;
            break;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            uint32_t *grown = realloc(out, ncap * sizeof(*grown));
            if (!grown) {
                rc = KV_ENOMEM;
                break;
            }
            out = grown;
            cap = ncap;
        }
        out[count++] = (uint32_t)id;
    }
    if (rc == 0 && errno != 0) {
        int err = errno;
        kv__log(log, KV_LOG_ERROR, "cannot read directory %s: %s", dir, strerror(err));
        rc = kv__errno_to_rc(err);
    }
    io->closedir(io->ctx, d);
    if (rc != 0) {
        free(out);
        return rc;
    }
    if (count > 0)
        qsort(out, count, sizeof(*out), cmp_u32);
    *ids = out;
    *n = count;
    return 0;
}

struct segment *kv__segment_new(uint32_t id, int fd, uint64_t size)
{
    /* Aligned for the per-shard pin counts, one cache line each. */
    struct segment *seg = aligned_alloc(CACHE_LINE, sizeof(*seg));
    if (!seg)
        return NULL;
    memset(seg, 0, sizeof(*seg));
    seg->id = id;
    seg->fd = fd;
    for (unsigned i = 0; i < READER_SHARDS; i++)
        atomic_init(&seg->pins[i].n, 0);
    atomic_init(&seg->map, NULL);
    atomic_init(&seg->map_tried, false);
    atomic_init(&seg->size, size);
    seg->synced_size = size;
    return seg;
}

int kv__segment_create(kv_store *s, uint32_t id, struct segment **out)
{
    char path[4096];
    int rc = kv__segment_path(s->dir, id, false, path, sizeof(path));
    if (rc != 0)
        return rc;
    int fd = s->io->open(s->io->ctx, path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = kv__errno_to_rc(errno);
        kv__log(s, KV_LOG_ERROR, "cannot create %s: %s", path, strerror(errno));
        return rc;
    }
    rc = kv__io_sync_dir(s->io, s->dir);
    if (rc == 0)
        atomic_fetch_add(&s->n_fsyncs, 1);
    struct segment *seg = rc == 0 ? kv__segment_new(id, fd, 0) : NULL;
    if (!seg) {
        if (rc == 0)
            rc = KV_ENOMEM;
        else
            kv__log(s, KV_LOG_ERROR, "cannot sync directory %s: %s", s->dir, strerror(errno));
        s->io->close(s->io->ctx, fd);
        s->io->unlink(s->io->ctx, path);
        return rc;
    }
    seg->writable = true;
    kv__mutex_lock(&s->seg_mu);
    s->open_fds++;
    kv__mutex_unlock(&s->seg_mu);
    *out = seg;
    return 0;
}

int kv__segtab_add(kv_store *s, struct segment *seg)
{
    KV_ASSERT(kv__rwlock_held_write(&s->rwlock));
    if (s->nsegs == s->segs_cap) {
        size_t ncap = s->segs_cap ? s->segs_cap * 2 : 16;
        struct segment **grown = realloc(s->segs, ncap * sizeof(*grown));
        if (!grown)
            return KV_ENOMEM;
        s->segs = grown;
        s->segs_cap = ncap;
    }
    size_t i = s->nsegs;
    while (i > 0 && s->segs[i - 1]->id > seg->id) {
        s->segs[i] = s->segs[i - 1];
        i--;
    }
    s->segs[i] = seg;
    s->nsegs++;
    return 0;
}

struct segment *kv__segtab_find(const kv_store *s, uint32_t id)
{
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    size_t lo = 0, hi = s->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t mid_id = s->segs[mid]->id;
        if (mid_id == id)
            return s->segs[mid];
        if (mid_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Unmaps, closes and frees seg; seg_mu held. */
static void segment_destroy_locked(kv_store *s, struct segment *seg)
{
    KV_ASSERT(kv__mutex_held(&s->seg_mu));
    const uint8_t *map = atomic_load(&seg->map);
    if (map)
        s->io->unmap(s->io->ctx, (void *)map, seg->map_len);
    if (seg->fd >= 0) {
        s->io->close(s->io->ctx, seg->fd);
        s->open_fds--;
    }
    free(seg);
}

void kv__segtab_remove(kv_store *s, struct segment *seg)
{
    KV_ASSERT(kv__rwlock_held_write(&s->rwlock));
    for (size_t i = 0; i < s->nsegs; i++) {
        if (s->segs[i] != seg)
            continue;
        memmove(&s->segs[i], &s->segs[i + 1], (s->nsegs - i - 1) * sizeof(*s->segs));
        s->nsegs--;
        break;
    }
}

/* Closes idle sealed descriptors, least recently used first, until at most
 * max_open_files are open. seg_mu held; the caller holds the rwlock, so the
 * table is stable. */
static void evict_idle(kv_store *s)
{
    KV_ASSERT(kv__mutex_held(&s->seg_mu));
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    while (s->open_fds > s->opts.max_open_files) {
        struct segment *victim = NULL;
        for (size_t i = 0; i < s->nsegs; i++) {
            struct segment *g = s->segs[i];
            if (g->fd < 0 || g->fd_users > 0 || g->writable)
                continue;
            if (!victim || g->last_use < victim->last_use)
                victim = g;
        }
        if (!victim)
            return;
        s->io->close(s->io->ctx, victim->fd);
        victim->fd = -1;
        s->open_fds--;
    }
}

/* Opens seg's descriptor if the cache closed it; seg_mu held. The caller
 * runs evict_idle once it has what it needs from the descriptor. */
static int open_fd_locked(kv_store *s, struct segment *seg)
{
    KV_ASSERT(kv__mutex_held(&s->seg_mu));
    if (seg->fd >= 0)
        return 0;
    char path[4096];
    int rc = kv__segment_path(s->dir, seg->id, false, path, sizeof(path));
    if (rc != 0)
        return rc;
    seg->fd = s->io->open(s->io->ctx, path, O_RDONLY | O_CLOEXEC, 0);
    if (seg->fd < 0) {
        rc = kv__errno_to_rc(errno);
        kv__log(s, KV_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
        return rc;
    }
    s->open_fds++;
    return 0;
}

/* Maps seg, or finds it cannot be for good (a shortage of descriptors or
 * memory is tried again on a later read, and logged once); map_tried is
 * published last, with release order, so that a reader that sees it sees map
 * too. seg_mu held, and the rwlock, so that writable is stable. */
static void map_locked(kv_store *s, struct segment *seg)
{
    KV_ASSERT(kv__mutex_held(&s->seg_mu));
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    if (atomic_load_explicit(&seg->map_tried, memory_order_relaxed))
        return;
    uint64_t size = atomic_load(&seg->size);
    uint64_t len = seg->writable && s->opts.segment_size > size ? s->opts.segment_size : size;
    bool retry = false;
    if (s->io->map && len > 0 && len <= SIZE_MAX) {
        /* Out of descriptors or memory may pass: try again on a later read. */
        retry = open_fd_locked(s, seg) != 0;
        void *p = retry ? NULL : s->io->map(s->io->ctx, seg->fd, (size_t)len);
        if (p) {
            seg->last_use = ++s->fd_clock;
            seg->map_len = (size_t)len;
            atomic_store_explicit(&seg->map, (const uint8_t *)p, memory_order_relaxed);
        } else if (!retry) {
            int err = errno;
            retry = err == ENOMEM || err == EAGAIN || err == EMFILE || err == ENFILE;
            if (!seg->map_warned)
                kv__log(s, KV_LOG_WARN, "cannot map segment %u, reading it with preadv: %s",
                        seg->id, strerror(err));
            seg->map_warned = true;
        }
        evict_idle(s);
    }
    if (!retry)
        atomic_store_explicit(&seg->map_tried, true, memory_order_release);
}

void kv__segment_pin(struct segment *seg)
{
    atomic_fetch_add_explicit(&seg->pins[kv__thread_shard()].n, 1, memory_order_relaxed);
}

void kv__segment_unpin(struct segment *seg)
{
    atomic_fetch_sub_explicit(&seg->pins[kv__thread_shard()].n, 1, memory_order_release);
}

void kv__segment_discard(kv_store *s, struct segment *seg)
{
    kv__mutex_lock(&s->seg_mu);
    segment_destroy_locked(s, seg);
    kv__mutex_unlock(&s->seg_mu);
}

/* Pins are only taken under the lock while seg is in the table, so once it
 * is out and the lock released, the counts only fall. */
void kv__segment_retire(kv_store *s, struct segment *seg)
{
    KV_ASSERT(!kv__rwlock_held(&s->rwlock));
    for (unsigned i = 0; i < READER_SHARDS; i++)
        while (atomic_load_explicit(&seg->pins[i].n, memory_order_acquire) != 0)
            sched_yield();
    kv__segment_discard(s, seg);
}

const uint8_t *kv__segment_view(kv_store *s, struct segment *seg, uint64_t off, uint64_t len)
{
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    if (!atomic_load_explicit(&seg->map_tried, memory_order_acquire)) {
        kv__mutex_lock(&s->seg_mu);
        map_locked(s, seg);
        kv__mutex_unlock(&s->seg_mu);
    }
    const uint8_t *map = atomic_load_explicit(&seg->map, memory_order_relaxed);
    uint64_t end = off + len;
    if (!map || end < off || end > seg->map_len || end > atomic_load(&seg->size))
        return NULL;
    return map + off;
}

int kv__segment_get_fd(kv_store *s, struct segment *seg, int *fd)
{
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    kv__mutex_lock(&s->seg_mu);
    int rc = open_fd_locked(s, seg);
    if (rc == 0) {
        seg->fd_users++;
        seg->last_use = ++s->fd_clock;
        *fd = seg->fd;
        evict_idle(s);
    }
    kv__mutex_unlock(&s->seg_mu);
    return rc;
}

void kv__segment_put_fd(kv_store *s, struct segment *seg)
{
    kv__mutex_lock(&s->seg_mu);
    KV_ASSERT(seg->fd_users > 0);
    seg->fd_users--;
    kv__mutex_unlock(&s->seg_mu);
}

void kv__segtab_free(kv_store *s)
{
    kv__mutex_lock(&s->seg_mu);
    for (size_t i = 0; i < s->nsegs; i++)
        segment_destroy_locked(s, s->segs[i]);
    kv__mutex_unlock(&s->seg_mu);
    free(s->segs);
    s->segs = NULL;
    s->nsegs = s->segs_cap = 0;
    s->active = NULL;
}

int kv__fsync_counted(kv_store *s, int fd, bool data_only)
{
    int r = data_only ? s->io->fdatasync(s->io->ctx, fd) : s->io->fsync(s->io->ctx, fd);
    atomic_fetch_add(&s->n_fsyncs, 1);
    return r == 0 ? 0 : kv__errno_to_rc(errno);
}

/* ---- preallocation (segment.h) */

/* The first fill of a segment is short, since the first writes to it wait
 * for it; later ones keep opts.segment_preallocate bytes ahead. */
#define PREALLOC_FIRST (64u << 10)
#define ZERO_BUF       (1u << 20)

struct kv_prealloc {
    pthread_mutex_t mu;
    pthread_cond_t kick_cv; /* the thread waits for work */
    pthread_cond_t done_cv; /* a leader waits for the fill it overlaps */
    pthread_t thread;
    bool stop, kicked;
    struct segment *seg;           /* the segment zeros go ahead of; NULL while sealing */
    uint64_t alloc_end;            /* seg's bytes below it are written: records or synced zeros */
    uint64_t file_end;             /* how far seg's file may reach */
    uint64_t claim_from, claim_to; /* the fill in progress (empty when equal) */
    uint64_t inflight_end;         /* the end of the leader's write in progress, or 0 */
    bool failed;                   /* a fill failed: none until the next segment */
    uint8_t *zeros;                /* ZERO_BUF zero bytes */
};

static bool filling(const struct kv_prealloc *p)
{
    return p->claim_to > p->claim_from;
}

static void wait_for_fill(struct kv_prealloc *p)
{
    while (filling(p))
        pthread_cond_wait(&p->done_cv, &p->mu);
}

/* Writes zeros over [from, to) of fd and makes them durable; counted apart
 * from the writes' syncs. */
static int write_zeros(kv_store *s, struct kv_prealloc *p, int fd, uint64_t from, uint64_t to)
{
    while (from < to) {
        size_t n = to - from > ZERO_BUF ? ZERO_BUF : (size_t)(to - from);
        int rc = kv__io_write_full(s->io, fd, p->zeros, n, (off_t)from);
        if (rc != 0)
            return rc;
        atomic_fetch_add(&s->n_prealloc_bytes, n);
        from += n;
    }
    atomic_fetch_add(&s->n_prealloc_syncs, 1);
    return s->io->fdatasync(s->io->ctx, fd) == 0 ? 0 : kv__errno_to_rc(errno);
}

/* The range the next fill covers, or false when none is due. mu held. */
static bool next_fill(const kv_store *s, const struct kv_prealloc *p, uint64_t *from, uint64_t *to)
{
    if (!p->seg || p->failed || filling(p))
        return false;
    uint64_t size = atomic_load(&p->seg->size);
    uint64_t start = p->alloc_end;
    if (p->inflight_end > start)
        start = p->inflight_end;
    if (size > start)
        start = size;
    uint64_t end = size + s->opts.segment_preallocate;
    if (end > s->opts.segment_size)
        end = s->opts.segment_size;
    if (start < PREALLOC_FIRST && end > PREALLOC_FIRST)
        end = PREALLOC_FIRST;
    *from = start;
    *to = end;
    return end > start;
}

static void *prealloc_main(void *arg)
{
    kv_store *s = arg;
    struct kv_prealloc *p = s->prealloc;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        uint64_t from, to;
        if (!p->kicked) {
            pthread_cond_wait(&p->kick_cv, &p->mu);
            continue;
        }
        p->kicked = false;
        if (!next_fill(s, p, &from, &to))
            continue;
        struct segment *seg = p->seg;
        p->claim_from = from;
        p->claim_to = to;
        if (to > p->file_end)
            p->file_end = to;
        pthread_mutex_unlock(&p->mu);
        /* The active segment's descriptor is never closed while it is the
         * one zeros go ahead of: sealing waits for this fill. */
        int rc = write_zeros(s, p, seg->fd, from, to);
        int err = errno;
        pthread_mutex_lock(&p->mu);
        p->claim_from = p->claim_to = 0;
        if (rc == 0 && to > p->alloc_end)
            p->alloc_end = to;
        if (rc != 0) {
            p->failed = true;
            kv__log(s, KV_LOG_WARN,
                    "segment %u: cannot write zeros ahead of the log (%s); writes go on without",
                    seg->id, strerror(err));
        }
        pthread_cond_broadcast(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void kick(struct kv_prealloc *p)
{
    p->kicked = true;
    pthread_cond_signal(&p->kick_cv);
}

void kv__prealloc_activate(kv_store *s, struct segment *seg)
{
    struct kv_prealloc *p = s->prealloc;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->seg = seg;
    p->alloc_end = p->file_end = atomic_load(&seg->size);
    p->inflight_end = 0;
    p->failed = false;
    kick(p);
    pthread_mutex_unlock(&p->mu);
}

int kv__prealloc_start(kv_store *s)
{
    if (s->opts.segment_preallocate == 0 || s->opts.sync_mode == KV_SYNC_NONE)
        return 0;
    struct kv_prealloc *p = calloc(1, sizeof(*p));
    if (!p)
        return KV_ENOMEM;
    p->zeros = calloc(1, ZERO_BUF);
    if (!p->zeros) {
        free(p);
        return KV_ENOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->kick_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    s->prealloc = p;
    if (pthread_create(&p->thread, NULL, prealloc_main, s) != 0) {
        s->prealloc = NULL;
        pthread_cond_destroy(&p->kick_cv);
        pthread_cond_destroy(&p->done_cv);
        pthread_mutex_destroy(&p->mu);
        free(p->zeros);
        free(p);
        return KV_ENOMEM;
    }
    kv__prealloc_activate(s, s->active);
    return 0;
}

/* Cuts seg's file back to its logical size when zeros lie beyond it, and
 * makes the cut durable. */
static int cut_zeros(kv_store *s, struct segment *seg, uint64_t file_end)
{
    uint64_t size = atomic_load(&seg->size);
    if (file_end <= size)
        return 0;
    if (s->io->ftruncate(s->io->ctx, seg->fd, (off_t)size) != 0 ||
        kv__fsync_counted(s, seg->fd, false) != 0) {
        int err = errno;
        kv__log(s, KV_LOG_ERROR, "cannot cut the preallocated space off segment %u: %s", seg->id,
                strerror(err));
        return kv__errno_to_rc(err);
    }
    return 0;
}

int kv__prealloc_seal(kv_store *s, struct segment *seg)
{
    struct kv_prealloc *p = s->prealloc;
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    wait_for_fill(p);
    uint64_t file_end = p->seg == seg ? p->file_end : 0;
    if (p->seg == seg)
        p->seg = NULL;
    pthread_mutex_unlock(&p->mu);
    return cut_zeros(s, seg, file_end);
}

int kv__prealloc_stop(kv_store *s)
{
    struct kv_prealloc *p = s->prealloc;
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->kick_cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    int rc = p->seg ? cut_zeros(s, p->seg, p->file_end) : 0;
    s->prealloc = NULL;
    pthread_cond_destroy(&p->kick_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    free(p->zeros);
    free(p);
    return rc;
}

void kv__prealloc_before_write(kv_store *s, struct segment *seg, uint64_t start, uint64_t end)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct kv_prealloc *p = s->prealloc;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    while (p->seg == seg && filling(p) && end > p->claim_from && start < p->claim_to)
        pthread_cond_wait(&p->done_cv, &p->mu);
    p->inflight_end = end;
    pthread_mutex_unlock(&p->mu);
}

void kv__prealloc_after_write(kv_store *s, struct segment *seg, uint64_t end)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct kv_prealloc *p = s->prealloc;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->inflight_end = 0;
    if (p->seg == seg) {
        if (end > p->alloc_end)
            p->alloc_end = end;
        if (end > p->file_end)
            p->file_end = end;
        uint64_t low = end + s->opts.segment_preallocate / 2;
        if (!p->failed && !filling(p) && p->alloc_end < s->opts.segment_size && p->alloc_end < low)
            kick(p);
    }
    pthread_mutex_unlock(&p->mu);
}

int kv__prealloc_truncate(kv_store *s, struct segment *seg, uint64_t len)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct kv_prealloc *p = s->prealloc;
    if (p) {
        pthread_mutex_lock(&p->mu);
        wait_for_fill(p);
        p->inflight_end = 0;
    }
    int rc = s->io->ftruncate(s->io->ctx, seg->fd, (off_t)len) == 0 ? 0 : -1;
    int err = errno;
    if (p) {
        if (p->seg == seg && rc == 0) {
            if (p->alloc_end > len)
                p->alloc_end = len;
            p->file_end = len;
        }
        pthread_mutex_unlock(&p->mu);
    }
    errno = err;
    return rc;
}
