/*
 * test_power_cut.c - simulated power cuts in sync mode always.
 *
 * A kill -9 only proves what reached the page cache. Here an I/O table
 * (kv_options.io) records, per file, the size covered by its last successful
 * fdatasync/fsync, and which directory entries a directory fsync made durable
 * (created, renamed and unlinked names). Several threads write, overwrite and
 * delete their own keys through one store, with small segments (rotation) and
 * a few on-demand compactions (renames and unlinks). At some fdatasync calls,
 * before the sync runs, the table freezes all I/O and copies the directory
 * with that bookkeeping and the model's state: per key, the last acknowledged
 * value and the value of the operation in flight.
 *
 * Each copy is then turned into power-cut images: every file back to the
 * bytes its last sync covered, names whose creation no directory fsync
 * covered removed (or, for freshly created files, left empty), unlinks no
 * directory fsync covered undone; and, file by file, the bytes written since
 * that sync kept up to every record boundary and a few offsets inside
 * records, over the synced bytes. The synced bytes are kept whole, not just
 * counted: with preallocation a segment's synced bytes end in zeros that
 * later writes overwrite, so a cut leaves records, then a torn one, then
 * zeros. Each image must open, and every key must read back as its
 * acknowledged value or its in-flight one: nothing acknowledged is lost,
 * nothing deleted comes back. The workload runs with preallocation on and
 * off.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "record.h"
#include "testutil.h"

#define THREADS         4
#define KEYS_PER_THREAD 16
#define NKEYS           (THREADS * KEYS_PER_THREAD)
#define OPS_PER_THREAD  400
#define CUT_EVERY       12 /* fdatasync calls between two copies */
#define MAX_CUTS        64
#define MAX_FILES       512
#define MAX_FDS         4096

/* ---- the model: value ids per key (0 = absent) ---- */

struct key_state {
    uint32_t acked;    /* id of the last acknowledged operation's value */
    uint32_t inflight; /* id of the operation in flight, if has_inflight */
    bool has_inflight;
};

/* ---- the recording I/O table ---- */

enum entry_state {
    E_LIVE,           /* the name exists */
    E_UNLINK_PENDING, /* unlinked, but no directory fsync since */
    E_GONE            /* unlinked and the directory synced */
};

struct entry {
    char name[128];
    enum entry_state state;
    bool durable_name;     /* a directory fsync covered this name */
    bool fresh;            /* created by open (not renamed into place) */
    uint64_t synced;       /* bytes covered by the last fdatasync/fsync */
    uint8_t *synced_bytes; /* what they were then (synced of them) */
    char grave[4096];      /* hard link keeping an unlinked file's bytes */
};

struct file_copy {
    char name[128];
    bool durable_name, fresh;
    uint64_t synced;
    uint8_t *synced_bytes;
    uint8_t *bytes;
    size_t len;
};

struct cut {
    struct key_state keys[NKEYS];
    struct file_copy files[MAX_FILES];
    size_t nfiles;
};

struct recorder {
    struct kv_io io;
    const char *dir;       /* the store's directory */
    const char *grave;     /* where unlinked files are kept until the dir sync */
    pthread_rwlock_t gate; /* I/O calls share it; a copy takes it alone */
    pthread_mutex_t mu;    /* the entries and fd map */
    struct entry entries[MAX_FILES];
    size_t nentries;
    int fd_entry[MAX_FDS]; /* -1 none, -2 the directory, else entry index */
    unsigned long datasyncs;
    unsigned graves;
    int link_failures; /* checked by the test: cmocka asserts only on its thread */

    pthread_mutex_t model_mu;
    struct key_state keys[NKEYS];

    struct cut *cuts[MAX_CUTS];
    size_t ncuts;
};

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static struct entry *find_live(struct recorder *r, const char *name)
{
    for (size_t i = 0; i < r->nentries; i++)
        if (r->entries[i].state == E_LIVE && strcmp(r->entries[i].name, name) == 0)
            return &r->entries[i];
    return NULL;
}

static struct entry *add_entry(struct recorder *r, const char *name, bool fresh)
{
    assert_true(r->nentries < MAX_FILES);
    struct entry *e = &r->entries[r->nentries++];
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->state = E_LIVE;
    e->fresh = fresh;
    return e;
}

static int rec_open(void *ctx, const char *path, int flags, mode_t mode)
{
    struct recorder *r = ctx;
    pthread_rwlock_rdlock(&r->gate);
    bool is_dir = strcmp(path, r->dir) == 0;
    bool existed = access(path, F_OK) == 0;
    int fd = kv__io_os.open(NULL, path, flags, mode);
    if (fd >= 0 && fd < MAX_FDS) {
        pthread_mutex_lock(&r->mu);
        if (is_dir) {
            r->fd_entry[fd] = -2;
        } else {
            struct entry *e = find_live(r, base_name(path));
            if (!e) {
                e = add_entry(r, base_name(path), !existed);
                e->durable_name = existed; /* only the initial open's files */
            }
            r->fd_entry[fd] = (int)(e - r->entries);
        }
        pthread_mutex_unlock(&r->mu);
    }
    pthread_rwlock_unlock(&r->gate);
    return fd;
}

static int rec_close(void *ctx, int fd)
{
    struct recorder *r = ctx;
    pthread_rwlock_rdlock(&r->gate);
    if (fd >= 0 && fd < MAX_FDS) {
        pthread_mutex_lock(&r->mu);
        r->fd_entry[fd] = -1;
        pthread_mutex_unlock(&r->mu);
    }
    int rc = kv__io_os.close(NULL, fd);
    pthread_rwlock_unlock(&r->gate);
    return rc;
}

static ssize_t rec_preadv(void *ctx, int fd, const struct iovec *iov, int n, off_t off)
{
    struct recorder *r = ctx;
    pthread_rwlock_rdlock(&r->gate);
    ssize_t got = kv__io_os.preadv(NULL, fd, iov, n, off);
    pthread_rwlock_unlock(&r->gate);
    return got;
}

static ssize_t rec_pwritev(void *ctx, int fd, const struct iovec *iov, int n, off_t off)
{
    struct recorder *r = ctx;
    pthread_rwlock_rdlock(&r->gate);
    ssize_t put = kv__io_os.pwritev(NULL, fd, iov, n, off);
    pthread_rwlock_unlock(&r->gate);
    return put;
}

static int rec_ftruncate(void *ctx, int fd, off_t len)
{
    struct recorder *r = ctx;
    pthread_rwlock_rdlock(&r->gate);
    int rc = kv__io_os.ftruncate(NULL, fd, len);
    if (rc == 0 && fd >= 0 && fd < MAX_FDS) {
        /* A cut below the synced size is itself unsynced until the next
         * sync; the bytes it dropped cannot come back, so count from len. */
        pthread_mutex_lock(&r->mu);
        int i = r->fd_entry[fd];
        if (i >= 0 && r->entries[i].synced > (uint64_t)len)
            r->entries[i].synced = (uint64_t)len; /* synced_bytes: a prefix still */
        pthread_mutex_unlock(&r->mu);
    }
    pthread_rwlock_unlock(&r->gate);
    return rc;
}

static void copy_directory(struct recorder *r);

static int rec_sync(struct recorder *r, int fd, bool data_only)
{
    if (data_only) {
        pthread_mutex_lock(&r->mu);
        bool cut = ++r->datasyncs % CUT_EVERY == 0 && r->ncuts < MAX_CUTS - 1;
        pthread_mutex_unlock(&r->mu);
        if (cut)
            copy_directory(r); /* the batch is written, not yet synced */
    }
    pthread_rwlock_rdlock(&r->gate);
    struct stat st;
    bool sized = fstat(fd, &st) == 0;
    int rc = data_only ? kv__io_os.fdatasync(NULL, fd) : kv__io_os.fsync(NULL, fd);
    if (rc == 0 && fd >= 0 && fd < MAX_FDS) {
        pthread_mutex_lock(&r->mu);
        int i = r->fd_entry[fd];
        if (i == -2) {
            for (size_t k = 0; k < r->nentries; k++) {
                struct entry *e = &r->entries[k];
                if (e->state == E_LIVE) {
                    e->durable_name = true;
                } else if (e->state == E_UNLINK_PENDING) {
                    unlink(e->grave);
                    e->state = E_GONE;
                }
            }
        } else if (i >= 0 && sized) {
            struct entry *e = &r->entries[i];
            char *path = tu_path(r->dir, e->name);
            uint8_t *now = malloc((size_t)st.st_size + 1);
            int rfd = e->state == E_LIVE ? open(path, O_RDONLY) : -1;
            ssize_t got = rfd >= 0 && now ? pread(rfd, now, (size_t)st.st_size, 0) : -1;
            if (rfd >= 0)
                close(rfd);
            if (got >= 0) {
                free(e->synced_bytes);
                e->synced_bytes = now;
                e->synced = (uint64_t)got;
            } else {
                free(now);
                r->link_failures++; /* checked by the test thread */
            }
            free(path);
        }
        pthread_mutex_unlock(&r->mu);
    }
    pthread_rwlock_unlock(&r->gate);
    return rc;
}

static int rec_fdatasync(void *ctx, int fd)
{
    return rec_sync(ctx, fd, true);
}

static int rec_fsync(void *ctx, int fd)
{
    return rec_sync(ctx, fd, false);
}

static int rec_rename(void *ctx, const char *from, const char *to)
{
    struct recorder *r = ctx;
    pthread_rwlock_rdlock(&r->gate);
    int rc = kv__io_os.rename(NULL, from, to);
    if (rc == 0) {
        pthread_mutex_lock(&r->mu);
        struct entry *old = find_live(r, base_name(to));
        if (old)
            old->state = E_GONE; /* replaced: its bytes are not kept */
        struct entry *e = find_live(r, base_name(from));
        if (e) {
            snprintf(e->name, sizeof(e->name), "%s", base_name(to));
            e->durable_name = false;
            e->fresh = false;
        }
        pthread_mutex_unlock(&r->mu);
    }
    pthread_rwlock_unlock(&r->gate);
    return rc;
}

static int rec_unlink(void *ctx, const char *path)
{
    struct recorder *r = ctx;
    pthread_rwlock_rdlock(&r->gate);
    pthread_mutex_lock(&r->mu);
    struct entry *e = find_live(r, base_name(path));
    if (e && e->durable_name) {
        snprintf(e->grave, sizeof(e->grave), "%s/%u", r->grave, r->graves++);
        if (link(path, e->grave) != 0)
            r->link_failures++;
    }
    int rc = kv__io_os.unlink(NULL, path);
    if (rc == 0 && e)
        e->state = e->durable_name ? E_UNLINK_PENDING : E_GONE;
    else if (rc != 0 && e && e->durable_name)
        unlink(e->grave);
    pthread_mutex_unlock(&r->mu);
    pthread_rwlock_unlock(&r->gate);
    return rc;
}

/* Copies every file that a power cut could leave, with what is known of it,
 * and the model, while no I/O runs. */
static void copy_directory(struct recorder *r)
{
    struct cut *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    pthread_rwlock_wrlock(&r->gate);
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nentries; i++) {
        struct entry *e = &r->entries[i];
        if (e->state == E_GONE || strcmp(e->name, "LOCK") == 0)
            continue;
        char *path = e->state == E_LIVE ? tu_path(r->dir, e->name) : strdup(e->grave);
        assert_non_null(path);
        struct file_copy *f = &c->files[c->nfiles++];
        snprintf(f->name, sizeof(f->name), "%s", e->name);
        f->durable_name = e->durable_name;
        f->fresh = e->fresh && e->state == E_LIVE;
        f->synced = e->synced;
        f->synced_bytes = malloc(e->synced ? e->synced : 1);
        assert_non_null(f->synced_bytes);
        if (e->synced)
            memcpy(f->synced_bytes, e->synced_bytes, e->synced);
        f->bytes = tu_read_file(path, &f->len);
        free(path);
    }
    pthread_mutex_lock(&r->model_mu);
    memcpy(c->keys, r->keys, sizeof(c->keys));
    pthread_mutex_unlock(&r->model_mu);
    r->cuts[r->ncuts++] = c;
    pthread_mutex_unlock(&r->mu);
    pthread_rwlock_unlock(&r->gate);
}

static struct recorder *recorder_new(const char *dir, const char *grave)
{
    struct recorder *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->io = (struct kv_io){.ctx = r,
                           .open = rec_open,
                           .close = rec_close,
                           .preadv = rec_preadv,
                           .pwritev = rec_pwritev,
                           .fdatasync = rec_fdatasync,
                           .fsync = rec_fsync,
                           .ftruncate = rec_ftruncate,
                           .rename = rec_rename,
                           .unlink = rec_unlink};
    r->dir = dir;
    r->grave = grave;
    pthread_rwlock_init(&r->gate, NULL);
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->model_mu, NULL);
    for (int i = 0; i < MAX_FDS; i++)
        r->fd_entry[i] = -1;
    return r;
}

static void recorder_free(struct recorder *r)
{
    for (size_t i = 0; i < r->ncuts; i++) {
        for (size_t k = 0; k < r->cuts[i]->nfiles; k++) {
            free(r->cuts[i]->files[k].bytes);
            free(r->cuts[i]->files[k].synced_bytes);
        }
        free(r->cuts[i]);
    }
    for (size_t i = 0; i < r->nentries; i++)
        free(r->entries[i].synced_bytes);
    pthread_rwlock_destroy(&r->gate);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->model_mu);
    free(r);
}

/* ---- the workload ---- */

static void key_name(int k, char *buf, size_t len)
{
    snprintf(buf, len, "t%d/key-%02d", k / KEYS_PER_THREAD, k % KEYS_PER_THREAD);
}

/* The value of id for key k: deterministic, of a length from 1 to ~700. */
static size_t value_of(int k, uint32_t id, uint8_t *buf, size_t cap)
{
    size_t len = 1 + (id * 2654435761u + (uint32_t)k) % 700;
    assert_true(len <= cap);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(id * 31u + (uint32_t)k * 7u + i);
    return len;
}

struct worker {
    kv_store *s;
    struct recorder *r;
    int thread;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    uint32_t seed = (uint32_t)w->thread * 7919u + 17u;
    uint8_t val[1024];
    for (int op = 0; op < OPS_PER_THREAD; op++) {
        seed = seed * 1103515245u + 12345u;
        int k = w->thread * KEYS_PER_THREAD + (int)((seed >> 8) % KEYS_PER_THREAD);
        bool del = (seed >> 20) % 5 == 0;
        uint32_t id = del ? 0 : (uint32_t)(w->thread * OPS_PER_THREAD + op + 1);
        char key[32];
        key_name(k, key, sizeof(key));
        pthread_mutex_lock(&w->r->model_mu);
        w->r->keys[k].inflight = id;
        w->r->keys[k].has_inflight = true;
        pthread_mutex_unlock(&w->r->model_mu);
        int rc;
        if (del) {
            rc = kv_delete(w->s, key, strlen(key));
            if (rc == KV_ENOTFOUND)
                rc = 0;
        } else {
            size_t len = value_of(k, id, val, sizeof(val));
            rc = kv_put(w->s, key, strlen(key), val, len);
        }
        if (rc != 0) {
            w->failures++;
            continue; /* stays in flight: either outcome allowed */
        }
        pthread_mutex_lock(&w->r->model_mu);
        w->r->keys[k].acked = id;
        w->r->keys[k].has_inflight = false;
        pthread_mutex_unlock(&w->r->model_mu);
        /* Thread 0 also compacts now and then: renames and unlinks. */
        if (w->thread == 0 && op % 100 == 99 && kv_compact(w->s) != 0)
            w->failures++;
    }
    return NULL;
}

/* ---- building and checking power-cut images ---- */

struct image {
    const struct cut *c;
    bool fresh_empty;     /* fresh unsynced names left empty rather than removed */
    size_t extended;      /* index of the file keeping part of its tail, or SIZE_MAX */
    uint64_t extended_to; /* its length */
};

static bool name_survives(const struct file_copy *f, const struct image *im)
{
    return f->durable_name || (f->fresh && im->fresh_empty);
}

/* The bytes of f in an image: those its last sync covered, with, when it is
 * the extended file, the bytes written since up to extended_to over them. */
static uint8_t *image_bytes(const struct file_copy *f, const struct image *im, bool extended,
                            size_t *len)
{
    size_t synced = (size_t)f->synced;
    if (!f->durable_name && f->fresh && !extended)
        synced = 0;
    size_t upto = extended ? (size_t)im->extended_to : 0;
    *len = upto > synced ? upto : synced;
    uint8_t *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    if (synced)
        memcpy(b, f->synced_bytes, synced);
    if (upto)
        memcpy(b, f->bytes, upto);
    return b;
}

static void write_image(const struct image *im, const char *dir)
{
    assert_int_equal(mkdir(dir, 0755), 0);
    for (size_t i = 0; i < im->c->nfiles; i++) {
        const struct file_copy *f = &im->c->files[i];
        bool extended = i == im->extended;
        if (!extended && !name_survives(f, im))
            continue;
        size_t len;
        uint8_t *bytes = image_bytes(f, im, extended, &len);
        char *path = tu_path(dir, f->name);
        tu_write_file(path, bytes, len);
        free(path);
        free(bytes);
    }
}

static int g_points;

static void check_image(const struct image *im, const char *root, size_t cut_no)
{
    char *dir = tu_path(root, "image");
    write_image(im, dir);
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 16u * 1024;
    o.compaction_interval_secs = 0;
    kv_store *s = NULL;
    int rc = kv_open(dir, &o, &s);
    if (rc != 0)
        fail_msg("cut %zu (file %zu at %llu, fresh %s): kv_open = %d (%s)", cut_no, im->extended,
                 (unsigned long long)im->extended_to, im->fresh_empty ? "empty" : "removed", rc,
                 kv_strerror(rc));
    uint8_t want[1024];
    for (int k = 0; k < NKEYS; k++) {
        char key[32];
        key_name(k, key, sizeof(key));
        void *got = NULL;
        size_t got_len = 0;
        rc = kv_get(s, key, strlen(key), &got, &got_len);
        const struct key_state *ks = &im->c->keys[k];
        bool ok = false;
        uint32_t ids[2] = {ks->acked, ks->inflight};
        for (int j = 0; j < (ks->has_inflight ? 2 : 1) && !ok; j++) {
            if (ids[j] == 0) {
                ok = rc == KV_ENOTFOUND;
            } else if (rc == 0) {
                size_t len = value_of(k, ids[j], want, sizeof(want));
                ok = got_len == len && memcmp(got, want, len) == 0;
            }
        }
        if (!ok)
            fail_msg("cut %zu (file %zu at %llu, fresh %s): %s: kv_get = %d, %zu bytes; "
                     "acknowledged id %u, in flight %s%u",
                     cut_no, im->extended, (unsigned long long)im->extended_to,
                     im->fresh_empty ? "empty" : "removed", key, rc, got_len, ks->acked,
                     ks->has_inflight ? "" : "none ", ks->inflight);
        kv_free(got);
    }
    /* The store takes writes again. */
    assert_kv_ok(kv_put(s, "after", 5, "cut", 3));
    assert_kv_ok(kv_close(s));
    tu_rmtree(dir);
    free(dir);
    g_points++;
}

/* Where the bytes written since the last sync begin: the first that
 * differs from the synced ones, or the end of those. */
static uint64_t unsynced_from(const struct file_copy *f)
{
    uint64_t n = f->synced < f->len ? f->synced : f->len;
    for (uint64_t i = 0; i < n; i++)
        if (f->bytes[i] != f->synced_bytes[i])
            return i;
    return f->synced;
}

/* Offsets in (from, to] worth cutting at: every record boundary, and a few
 * offsets inside records (in the header, in the key/value, in the trailer). */
static size_t cut_points(const struct file_copy *f, uint64_t *out, size_t cap)
{
    size_t n = 0;
    uint64_t from = unsynced_from(f), to = f->len;
    uint64_t off = 0;
    while (off + RECORD_HEADER_LEN <= to && n + 4 <= cap) {
        struct record_header h;
        if (!record_decode_header(f->bytes + off, &h))
            break;
        uint64_t end = off + record_size(h.key_len, h.val_len);
        if (end > to)
            break;
        if (end > from) {
            uint64_t inner[3] = {off + 1, off + RECORD_HEADER_LEN + 1, end - 1};
            for (int i = 0; i < 3; i++)
                if (inner[i] > from && inner[i] < end)
                    out[n++] = inner[i];
            out[n++] = end;
        }
        off = end;
    }
    if (n == 0 || out[n - 1] != to)
        out[n++] = to; /* the whole tail, even if it does not parse */
    return n;
}

static void check_cut(const struct cut *c, const char *root, size_t cut_no)
{
    for (int fresh_empty = 0; fresh_empty < 2; fresh_empty++) {
        struct image im = {.c = c, .fresh_empty = fresh_empty, .extended = SIZE_MAX};
        check_image(&im, root, cut_no);
    }
    uint64_t points[4096];
    for (size_t i = 0; i < c->nfiles; i++) {
        const struct file_copy *f = &c->files[i];
        if (unsynced_from(f) >= f->len && f->durable_name)
            continue;
        size_t n = cut_points(f, points, sizeof(points) / sizeof(points[0]));
        for (size_t p = 0; p < n; p++) {
            struct image im = {.c = c, .extended = i, .extended_to = points[p]};
            check_image(&im, root, cut_no);
        }
    }
}

static void run_power_cuts(uint64_t preallocate)
{
    g_points = 0;
    char *root = tu_mkdtemp();
    char *dir = tu_path(root, "db");
    char *grave = tu_path(root, "grave");
    assert_int_equal(mkdir(grave, 0755), 0);
    struct recorder *r = recorder_new(dir, grave);

    kv_options o;
    kv_options_init(&o);
    o.sync_mode = KV_SYNC_ALWAYS;
    o.segment_size = 16u * 1024;
    o.segment_preallocate = preallocate;
    o.compaction_interval_secs = 0;
    o.io = &r->io;
    kv_store *s = NULL;
    assert_kv_ok(kv_open(dir, &o, &s));

    pthread_t tids[THREADS];
    struct worker w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (struct worker){.s = s, .r = r, .thread = t};
        assert_int_equal(pthread_create(&tids[t], NULL, worker_main, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(tids[t], NULL), 0);
        assert_int_equal(w[t].failures, 0);
    }
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    /* The final state is a cut too: everything acknowledged. */
    copy_directory(r);
    assert_kv_ok(kv_close(s));
    assert_int_equal(r->link_failures, 0);
    assert_true(st.active_segment_id > 3); /* rotation happened */
    assert_true(st.compactions > 0);
    assert_true(r->ncuts >= 10);

    size_t unsynced = 0, overwrites = 0;
    for (size_t i = 0; i < r->ncuts; i++) {
        for (size_t k = 0; k < r->cuts[i]->nfiles; k++) {
            const struct file_copy *f = &r->cuts[i]->files[k];
            unsynced += unsynced_from(f) < f->len;
            overwrites += unsynced_from(f) < f->synced; /* over synced zeros */
        }
        check_cut(r->cuts[i], root, i);
    }
    /* Copies taken inside fdatasync must have seen unsynced writes: with
     * preallocation, over zeros that were synced before. */
    assert_true(unsynced > 0);
    if (preallocate)
        assert_true(overwrites > 0);
    else
        assert_int_equal(overwrites, 0);
    print_message("power cut (preallocate %llu): %lu datasyncs, %zu copies, %zu unsynced tails, "
                  "%d images opened and checked\n",
                  (unsigned long long)preallocate, r->datasyncs, r->ncuts, unsynced, g_points);

    recorder_free(r);
    tu_rmtree(root);
    free(grave);
    free(dir);
    free(root);
}

static void test_power_cut_in_sync_always_loses_no_acknowledged_write(void **state)
{
    (void)state;
    run_power_cuts(0);
}

/* The same with zeros written ahead of the log: a cut leaves records, a
 * torn one, then zeros, in a file whose size was synced long before. */
static void test_power_cut_in_preallocated_segments_loses_no_acknowledged_write(void **state)
{
    (void)state;
    run_power_cuts(8u * 1024);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_cut_in_sync_always_loses_no_acknowledged_write),
        cmocka_unit_test(test_power_cut_in_preallocated_segments_loses_no_acknowledged_write),
    };
    return tu_run_tests(tests, argc, argv);
}
