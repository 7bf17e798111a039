/*
 * backup.c - consistent copies of a data directory: kv_backup, of a store
 * open in this process, beside its traffic; kv_backup_dir, of a directory
 * that another process may have open, by reading its files only.
 *
 * Both rest on what never changes in a data directory: a sealed segment is
 * immutable until compaction unlinks it, and index.snapshot and every other
 * file the engine keeps beside the segments (a compression dictionary) is
 * written to a .tmp file and renamed, never rewritten in place. Such a file
 * is hard-linked into the backup when the file system allows (the backup
 * then costs no space and no copying; the link keeps the data alive once the
 * source unlinks its name), and copied otherwise. The newest segment is the
 * only one that grows: it is copied up to a position, and a prefix of the log
 * up to a record boundary is a state the store was in.
 *
 * kv_backup takes that position from the store itself: under compact_mu (no
 * compaction runs, so no segment is unlinked and no dictionary removed while
 * names are resolved) it holds append_mu just long enough to read the active
 * segment's synced length (after an fdatasync in sync modes interval and
 * none, so that every acknowledged write is below it), the segment table,
 * and the snapshot as it stands (snapshots are saved under append_mu, so the
 * one taken covers a position at or before that length). Links are made and
 * the files to copy opened before compact_mu is released; the bytes are
 * copied afterwards from those descriptors, without any lock: writers go on
 * appending past the position, and a segment compaction unlinks meanwhile
 * stays readable through its descriptor.
 *
 * kv_backup_dir cannot lock anything, so it relies on what the engine's
 * crash safety already gives: the directory at any instant, a compaction
 * half-done included, opens to the store as it was then. So a pass takes
 * the snapshot first (the log it covers is then older than any segment
 * listed after it), lists the directory (one getdents call for a directory
 * of this size, which the kernel keeps atomic with renames and unlinks),
 * and takes every file of that listing, the oldest segments first (the
 * order in which compaction unlinks them), the newest segment last and as
 * far as it is written. A file it takes may vanish afterwards: the link or
 * the open descriptor keeps it. A file that vanished before it could be
 * taken means the listing is no longer a state it can copy: the backup is
 * emptied and the pass starts over, after a pause that doubles each time
 * (a compaction removes its inputs over tens of milliseconds each), at most
 * BACKUP_PASSES times. A second listing guards against a listing that was
 * not atomic after all: a compaction's output or a dictionary that appeared
 * meanwhile (a segment older than the newest taken, or a file that is no
 * segment) starts the pass over too; a newer segment does not (the copy is
 * a prefix of the log without it). The copy is then opened once: recovery
 * cuts the newest segment after its last record that checks out (a write
 * in progress when it was read) and checks every record it replays, and
 * the close writes a snapshot that matches the copy.
 *
 * Internally a helper returns KV_ENOTFOUND for "a file of the source is
 * gone"; kv_backup_dir starts over on it, kv_backup reports it as KV_EIO.
 * A failed backup removes every file it made in the destination.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "debug.h"
#include "dirlock.h"
#include "io.h"
#include "kvstore.h"
#include "logging.h"
#include "rwlock.h"
#include "segment.h"
#include "snapshot.h"
#include "store.h"
#include "thread.h"
#include "write.h"

#define COPY_BUF      (1u << 20)
#define BACKUP_PASSES 8u

struct backup {
    const struct kv_io *io;
    const kv_options *opts; /* the log callback */
    const char *src;
    const char *dest;
    bool links; /* hard links are worth trying */
    uint8_t *buf;
    kv_backup_info info;
};

/* A file to copy from a descriptor opened while its name was safe to
 * resolve: len bytes, or up to its end when to_end (the newest segment of a
 * directory being written, which may shrink when a failed write is cut off). */
struct pending {
    char *name;
    int fd;
    uint64_t len;
    bool to_end;
};

struct plan {
    struct pending *files;
    size_t n, cap;
};

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    return n >= m && strcmp(name + n - m, suffix) == 0;
}

/* Names that are never part of a backup: the directory's own entries, the
 * lock (the copy's opener makes its own), temporary files (removed at open). */
static bool never_copied(const char *name)
{
    return strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, LOCK_NAME) == 0 ||
           has_suffix(name, ".tmp");
}

static int join(const char *dir, const char *name, char *buf, size_t len)
{
    return kv__join_path(dir, name, buf, len);
}

/* ---- the destination */

/* Creates dest (one level) unless it exists, and refuses one that holds
 * anything. */
static int prepare_dest(struct backup *b)
{
    const struct kv_io *io = b->io;
    if (io->mkdir(io->ctx, b->dest, 0755) != 0 && errno != EEXIST) {
        int err = errno;
        kv__log_opts(b->opts, KV_LOG_ERROR, "backup: cannot create %s: %s", b->dest, strerror(err));
        return kv__errno_to_rc(err);
    }
    void *d = io->opendir(io->ctx, b->dest);
    if (!d) {
        int err = errno;
        kv__log_opts(b->opts, KV_LOG_ERROR, "backup: cannot read %s: %s", b->dest, strerror(err));
        return err == ENOTDIR ? KV_EINVAL : kv__errno_to_rc(err);
    }
    const char *name;
    bool empty = true;
    while (empty && (name = io->readdir(io->ctx, d)) != NULL)
        empty = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
    io->closedir(io->ctx, d);
    if (!empty) {
        kv__log_opts(b->opts, KV_LOG_ERROR,
                     "backup: %s is not empty; a backup goes into a new or empty directory",
                     b->dest);
        return KV_EINVAL;
    }
    return 0;
}

/* Removes every file of dest: all of them are the backup's, since dest was
 * empty when it began. */
static void clear_dest(struct backup *b)
{
    const struct kv_io *io = b->io;
    void *d = io->opendir(io->ctx, b->dest);
    if (!d)
        return;
    const char *name;
    char path[4096];
    while ((name = io->readdir(io->ctx, d)) != NULL)
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
            join(b->dest, name, path, sizeof(path)) == 0)
            io->unlink(io->ctx, path);
    io->closedir(io->ctx, d);
    kv__io_sync_dir(io, b->dest);
}

/* ---- linking and copying one file */

static bool link_unsupported(int err)
{
    /* ENOTSUP is EOPNOTSUPP on Linux. */
    return err == EXDEV || err == EPERM || err == EMLINK || err == ENOTSUP || err == ENOSYS;
}

/* Hard-links src/name as dest/name. 1 when the file must be copied instead
 * (links do not work here, or were not asked for), 0 when linked,
 * KV_ENOTFOUND when the source is gone, or another code. */
static int try_link(struct backup *b, const char *name)
{
    if (!b->links)
        return 1;
    char from[4096], to[4096];
    int rc = join(b->src, name, from, sizeof(from));
    if (rc == 0)
        rc = join(b->dest, name, to, sizeof(to));
    if (rc != 0)
        return rc;
    if (b->io->link(b->io->ctx, from, to) == 0) {
        b->info.files_linked++;
        return 0;
    }
    int err = errno;
    if (err == ENOENT)
        return KV_ENOTFOUND;
    if (link_unsupported(err)) {
        /* One failure says it for every file of this pair of directories. */
        kv__log_opts(b->opts, KV_LOG_INFO, "backup: no hard link from %s to %s (%s): copying",
                     b->src, b->dest, strerror(err));
        b->links = false;
        return 1;
    }
    kv__log_opts(b->opts, KV_LOG_ERROR, "backup: cannot link %s to %s: %s", from, to,
                 strerror(err));
    return kv__errno_to_rc(err);
}

/* Opens src/name for reading, with its size and whether it is a regular
 * file: KV_ENOTFOUND when it is gone. */
static int open_source(struct backup *b, const char *name, int *fd, uint64_t *size, bool *regular)
{
    char path[4096];
    int rc = join(b->src, name, path, sizeof(path));
    if (rc != 0)
        return rc;
    *fd = b->io->open(b->io->ctx, path, O_RDONLY | O_CLOEXEC, 0);
    if (*fd < 0) {
        int err = errno;
        if (err == ENOENT)
            return KV_ENOTFOUND;
        kv__log_opts(b->opts, KV_LOG_ERROR, "backup: cannot open %s: %s", path, strerror(err));
        return kv__errno_to_rc(err);
    }
    struct stat st;
    if (b->io->fstat(b->io->ctx, *fd, &st) != 0) {
        int err = errno;
        b->io->close(b->io->ctx, *fd);
        *fd = -1;
        return kv__errno_to_rc(err);
    }
    *size = (uint64_t)st.st_size;
    *regular = S_ISREG(st.st_mode);
    return 0;
}

/* Copies p's bytes into dest/p->name (a new file) and fsyncs it. */
static int copy_pending(struct backup *b, const struct pending *p)
{
    const struct kv_io *io = b->io;
    char path[4096];
    int rc = join(b->dest, p->name, path, sizeof(path));
    if (rc != 0)
        return rc;
    int out = io->open(io->ctx, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        int err = errno;
        kv__log_opts(b->opts, KV_LOG_ERROR, "backup: cannot create %s: %s", path, strerror(err));
        return kv__errno_to_rc(err);
    }
    uint64_t off = 0;
    while (rc == 0 && off < p->len) {
        size_t want = p->len - off < COPY_BUF ? (size_t)(p->len - off) : COPY_BUF;
        struct iovec iov = {.iov_base = b->buf, .iov_len = want};
        ssize_t n = io->preadv(io->ctx, p->fd, &iov, 1, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = kv__errno_to_rc(errno);
        } else if (n == 0) {
            /* Shorter than it was: the newest segment of a directory being
             * written lost a failed write's bytes; anything else changed
             * under the backup. */
            if (!p->to_end)
                rc = KV_ECORRUPT;
            break;
        } else {
            rc = kv__io_write_full(io, out, b->buf, (size_t)n, (off_t)off);
            off += (uint64_t)n;
        }
    }
    if (rc == 0 && io->fsync(io->ctx, out) != 0)
        rc = kv__errno_to_rc(errno);
    int err = errno;
    io->close(io->ctx, out);
    if (rc != 0) {
        kv__log_opts(b->opts, KV_LOG_ERROR, "backup: copying %s/%s failed: %s", b->src, p->name,
                     rc == KV_ECORRUPT ? "it grew shorter while it was copied" : strerror(err));
        return rc;
    }
    b->info.files_copied++;
    b->info.bytes_copied += off;
    return 0;
}

/* ---- the plan: files opened now, copied later */

static int plan_add(struct plan *p, const char *name, int fd, uint64_t len, bool to_end)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        struct pending *grown = realloc(p->files, cap * sizeof(*grown));
        if (!grown)
            return KV_ENOMEM;
        p->files = grown;
        p->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return KV_ENOMEM;
    p->files[p->n++] = (struct pending){.name = copy, .fd = fd, .len = len, .to_end = to_end};
    return 0;
}

static void plan_free(struct backup *b, struct plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->files[i].fd >= 0)
            b->io->close(b->io->ctx, p->files[i].fd);
        free(p->files[i].name);
    }
    free(p->files);
    *p = (struct plan){0};
}

static int plan_copy(struct backup *b, struct plan *p)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < p->n; i++)
        rc = copy_pending(b, &p->files[i]);
    return rc;
}

/* How take_file takes a file. */
enum take {
    TAKE_LINK_OR_COPY, /* a file that never changes: linked if it can be */
    TAKE_PREFIX,       /* copied, len bytes of it (the active segment) */
    TAKE_TO_END        /* copied as far as it goes (the newest segment of a
                          directory another process writes) */
};

/* Takes src/name into the backup: linked now, or opened now and planned
 * for copying (len bytes; UINT64_MAX: the size it has now). A file that is
 * not a regular one is left out. KV_ENOTFOUND when it is gone. */
static int take_file(struct backup *b, struct plan *p, const char *name, uint64_t len,
                     enum take how)
{
    int fd = -1;
    uint64_t size = 0;
    bool regular = false;
    int rc = open_source(b, name, &fd, &size, &regular);
    if (rc != 0)
        return rc;
    if (!regular) {
        b->io->close(b->io->ctx, fd);
        return 0;
    }
    rc = how == TAKE_LINK_OR_COPY ? try_link(b, name) : 1;
    if (rc == 1) {
        rc = plan_add(p, name, fd, len == UINT64_MAX ? size : len, how == TAKE_TO_END);
        if (rc == 0)
            return 0; /* the plan has fd */
    }
    b->io->close(b->io->ctx, fd);
    return rc;
}

static void backup_init(struct backup *b, const struct kv_io *io, const kv_options *opts,
                        const char *src, const char *dest, unsigned flags)
{
    *b = (struct backup){
        .io = io, .opts = opts, .src = src, .dest = dest, .links = !(flags & KV_BACKUP_COPY)};
}

/* ---- kv_backup */

/* The segments the backup takes, and the active one's length. */
struct position {
    uint32_t *ids;
    uint64_t *sizes; /* the active segment's: its synced length */
    size_t n;
};

/* Under append_mu: makes acknowledged writes durable (sync modes interval
 * and none), notes the segment table with the active segment's synced
 * length, and takes the snapshot as it stands (linked, or opened to be
 * copied). */
static int take_position(kv_store *s, struct backup *b, struct plan *p, struct position *pos)
{
    KV_ASSERT(kv__mutex_held(&s->compact_mu));
    kv__mutex_lock(&s->append_mu);
    int rc = 0;
    if (s->opts.sync_mode != KV_SYNC_ALWAYS && !atomic_load(&s->read_only))
        rc = kv__sync_active(s);
    if (rc == 0) {
        kv__rdlock(&s->rwlock);
        pos->n = s->nsegs;
        pos->ids = malloc(pos->n * sizeof(*pos->ids));
        pos->sizes = malloc(pos->n * sizeof(*pos->sizes));
        if (pos->ids && pos->sizes) {
            for (size_t i = 0; i < pos->n; i++) {
                pos->ids[i] = s->segs[i]->id;
                pos->sizes[i] = s->segs[i] == s->active ? s->active->synced_size
                                                        : atomic_load(&s->segs[i]->size);
            }
        } else {
            rc = KV_ENOMEM;
        }
        kv__unlock(&s->rwlock);
    }
    if (rc == 0) {
        rc = take_file(b, p, SNAPSHOT_NAME, UINT64_MAX, TAKE_LINK_OR_COPY);
        if (rc == KV_ENOTFOUND)
            rc = 0; /* no snapshot yet: the copy's first open replays it all */
    }
    kv__mutex_unlock(&s->append_mu);
    return rc;
}

/* Links the sealed segments and the other files, and opens what must be
 * copied. The caller holds compact_mu, so that none of them is unlinked
 * meanwhile. */
static int take_files(struct backup *b, struct plan *p, const struct position *pos)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < pos->n; i++) {
        char name[64];
        snprintf(name, sizeof(name), "segment-%u.dat", pos->ids[i]);
        bool active = i + 1 == pos->n;
        rc = take_file(b, p, name, pos->sizes[i], active ? TAKE_PREFIX : TAKE_LINK_OR_COPY);
    }
    void *d = rc == 0 ? b->io->opendir(b->io->ctx, b->src) : NULL;
    if (rc == 0 && !d)
        rc = kv__errno_to_rc(errno);
    const char *name;
    uint64_t id;
    while (rc == 0 && (name = b->io->readdir(b->io->ctx, d)) != NULL) {
        if (never_copied(name) || strcmp(name, SNAPSHOT_NAME) == 0 ||
            kv__segment_name_id(name, &id))
            continue; /* segments come from the table, taken above */
        rc = take_file(b, p, name, UINT64_MAX, TAKE_LINK_OR_COPY);
    }
    if (d)
        b->io->closedir(b->io->ctx, d);
    return rc;
}

int kv_backup(kv_store *s, const char *dest, unsigned flags, kv_backup_info *info)
{
    if (!s || !dest || !*dest || (flags & ~KV_BACKUP_COPY))
        return KV_EINVAL;
    struct backup b;
    backup_init(&b, s->io, &s->opts, s->dir, dest, flags);
    int rc = prepare_dest(&b);
    if (rc != 0)
        return rc;
    b.buf = malloc(COPY_BUF);
    if (!b.buf)
        return KV_ENOMEM;
    struct plan p = {0};
    struct position pos = {0};
    kv__mutex_lock(&s->compact_mu);
    rc = take_position(s, &b, &p, &pos);
    if (rc == 0)
        rc = take_files(&b, &p, &pos);
    kv__mutex_unlock(&s->compact_mu);
    if (rc == 0)
        rc = plan_copy(&b, &p);
    if (rc == 0)
        rc = kv__io_sync_dir(b.io, dest);
    plan_free(&b, &p);
    free(pos.ids);
    free(pos.sizes);
    free(b.buf);
    if (rc == KV_ENOTFOUND) {
        kv__log(s, KV_LOG_ERROR, "backup: a file of %s vanished while the store had it open",
                s->dir);
        rc = KV_EIO;
    }
    if (rc != 0) {
        clear_dest(&b);
        return rc;
    }
    b.info.attempts = 1;
    kv__log(s, KV_LOG_INFO, "backup of %s into %s: %llu files linked, %llu copied (%llu bytes)",
            s->dir, dest, (unsigned long long)b.info.files_linked,
            (unsigned long long)b.info.files_copied, (unsigned long long)b.info.bytes_copied);
    if (info)
        *info = b.info;
    return 0;
}

/* ---- kv_backup_dir */

/* The names of a directory listing. */
struct listing {
    char **names;
    size_t n, cap;
};

static void listing_free(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    *l = (struct listing){0};
}

static bool listing_has(const struct listing *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0)
            return true;
    return false;
}

/* Lists the names of src a backup takes: not the lock, the temporary files
 * or the snapshot (taken on its own, first). */
static int list_source(struct backup *b, struct listing *l)
{
    const struct kv_io *io = b->io;
    void *d = io->opendir(io->ctx, b->src);
    if (!d) {
        int err = errno;
        kv__log_opts(b->opts, KV_LOG_ERROR, "backup: cannot read %s: %s", b->src, strerror(err));
        return kv__errno_to_rc(err);
    }
    int rc = 0;
    const char *name;
    for (errno = 0; rc == 0 && (name = io->readdir(io->ctx, d)) != NULL; errno = 0) {
        if (never_copied(name) || strcmp(name, SNAPSHOT_NAME) == 0)
            continue;
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 32;
            char **grown = realloc(l->names, cap * sizeof(*grown));
            if (!grown) {
                rc = KV_ENOMEM;
                break;
            }
            l->names = grown;
            l->cap = cap;
        }
        l->names[l->n] = strdup(name);
        if (!l->names[l->n])
            rc = KV_ENOMEM;
        else
            l->n++;
    }
    if (rc == 0 && errno != 0)
        rc = kv__errno_to_rc(errno);
    io->closedir(io->ctx, d);
    return rc;
}

/* The highest segment id of a listing; false when it has none. */
static bool newest_segment(const struct listing *l, uint64_t *newest)
{
    bool any = false;
    for (size_t i = 0; i < l->n; i++) {
        uint64_t id;
        if (kv__segment_name_id(l->names[i], &id) && (!any || id > *newest)) {
            *newest = id;
            any = true;
        }
    }
    return any;
}

/* KV_ENOTFOUND when the second listing shows a name the first did not,
 * other than a segment newer than the newest taken: the first listing may
 * then have caught a compaction halfway without being atomic. */
static int compare_listings(const struct listing *before, const struct listing *after,
                            uint64_t newest)
{
    for (size_t i = 0; i < after->n; i++) {
        uint64_t id;
        if (listing_has(before, after->names[i]))
            continue;
        if (!kv__segment_name_id(after->names[i], &id) || id < newest)
            return KV_ENOTFOUND;
    }
    return 0;
}

/* Segments first, oldest first (the order compaction unlinks them in), then
 * the other files by name. */
static int take_order(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    uint64_t ix, iy;
    bool sx = kv__segment_name_id(x, &ix), sy = kv__segment_name_id(y, &iy);
    if (sx != sy)
        return sx ? -1 : 1;
    if (sx)
        return (ix > iy) - (ix < iy);
    return strcmp(x, y);
}

/* One pass of kv_backup_dir: 0, KV_ENOTFOUND when the source changed under
 * it (start over), or a failure. */
static int backup_pass(struct backup *b)
{
    struct plan p = {0};
    struct listing before = {0}, after = {0};
    /* The snapshot first: the log it covers is then older than any segment
     * listed after it, and the copy's open can use it. */
    int rc = take_file(b, &p, SNAPSHOT_NAME, UINT64_MAX, TAKE_LINK_OR_COPY);
    if (rc == KV_ENOTFOUND)
        rc = 0;
    if (rc == 0)
        rc = list_source(b, &before);
    uint64_t newest = 0;
    if (rc == 0 && before.n > 1)
        qsort(before.names, before.n, sizeof(*before.names), take_order);
    if (rc == 0 && !newest_segment(&before, &newest)) {
        kv__log_opts(b->opts, KV_LOG_ERROR,
                     "backup: %s holds no segment file: not a data directory", b->src);
        rc = KV_EINVAL;
    }
    for (size_t i = 0; rc == 0 && i < before.n; i++) {
        uint64_t id;
        bool is_newest = kv__segment_name_id(before.names[i], &id) && id == newest;
        if (!is_newest)
            rc = take_file(b, &p, before.names[i], UINT64_MAX, TAKE_LINK_OR_COPY);
    }
    if (rc == 0) {
        char name[64];
        snprintf(name, sizeof(name), "segment-%llu.dat", (unsigned long long)newest);
        rc = take_file(b, &p, name, UINT64_MAX, TAKE_TO_END);
    }
    if (rc == 0)
        rc = plan_copy(b, &p);
    if (rc == 0)
        rc = list_source(b, &after);
    if (rc == 0)
        rc = compare_listings(&before, &after, newest);
    plan_free(b, &p);
    listing_free(&before);
    listing_free(&after);
    return rc;
}

static void pause_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Opens the copy once: recovery checks what it replays and cuts the newest
 * segment after its last whole record; the close saves the snapshot. */
static int check_copy(struct backup *b)
{
    kv_options o = *b->opts;
    o.compaction_interval_secs = 0;
    kv_store *copy = NULL;
    int rc = kv_open(b->dest, &o, &copy);
    if (rc != 0) {
        kv__log_opts(b->opts, KV_LOG_ERROR, "backup: the copy in %s does not open: %s", b->dest,
                     kv_strerror(rc));
        return rc;
    }
    kv_stats st;
    rc = kv_get_stats(copy, &st);
    if (rc == 0)
        b->info.keys = st.keys;
    int crc = kv_close(copy);
    return rc != 0 ? rc : crc;
}

int kv_backup_dir(const char *src, const char *dest, const kv_options *opts, unsigned flags,
                  kv_backup_info *info)
{
    if (!src || !*src || !dest || !*dest || (flags & ~KV_BACKUP_COPY))
        return KV_EINVAL;
    kv_options o;
    kv_options_init(&o);
    if (opts)
        o = *opts;
    struct kv_io io;
    if (kv__io_complete(o.io, &io) != 0)
        return KV_EINVAL;
    o.io = &io;
    struct backup b;
    backup_init(&b, &io, &o, src, dest, flags);
    int rc = prepare_dest(&b);
    if (rc != 0)
        return rc;
    b.buf = malloc(COPY_BUF);
    if (!b.buf)
        return KV_ENOMEM;
    bool links = b.links;
    for (uint32_t pass = 1;; pass++) {
        b.info = (kv_backup_info){.attempts = pass};
        b.links = links;
        if (pass > 1)
            pause_ms(5u << (pass - 2)); /* 5, 10, 20 ... 320 ms: 635 ms in all */
        rc = backup_pass(&b);
        if (rc != KV_ENOTFOUND)
            break;
        clear_dest(&b);
        if (pass == BACKUP_PASSES) {
            kv__log_opts(&o, KV_LOG_ERROR,
                         "backup: %s changed during each of %u passes (compactions?); try again",
                         src, BACKUP_PASSES);
            rc = KV_EBUSY;
            break;
        }
        kv__log_opts(&o, KV_LOG_INFO,
                     "backup: %s changed during the copy (a compaction ran): "
                     "starting over",
                     src);
    }
    free(b.buf);
    if (rc == 0)
        rc = check_copy(&b);
    if (rc != 0) {
        clear_dest(&b);
        return rc;
    }
    if (info)
        *info = b.info;
    return 0;
}
