/*
 * dict.c - compression dictionaries: their files, and the store's table of
 * them (format and rules in dict.h).
 *
 * The table's mutex is a leaf: it is taken under the rwlock (recovery, the
 * snapshot) and under no lock (reads, writers), and nothing is taken under
 * it. A dictionary leaves the table only in kv__dict_drop_except (after a
 * compaction rewrote every record that named it); one still held by a
 * reader lives on until that reader lets go.
 */
#include "dict.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "io.h"
#include "logging.h"
#include "record.h"
#include "segment.h"
#include "store.h"
#include "thread.h"

struct kv_dicts {
    struct kv_mutex mu;
    struct kv_dict **v; /* ascending id */
    size_t n, cap;
    struct kv_dict *current; /* the highest id, or NULL */
};

int kv__dict_path(const char *dir, uint32_t id, bool tmp, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/dict-%u.zdict%s", dir, id, tmp ? ".tmp" : "");
    return n < 0 || (size_t)n >= len ? KV_EINVAL : 0;
}

/* Parses "dict-<N>.zdict" with 1 <= N <= UINT32_MAX; false for any other. */
static bool parse_dict_name(const char *name, uint32_t *id)
{
    static const char prefix[] = "dict-", suffix[] = ".zdict";
    size_t len = strlen(name), plen = sizeof(prefix) - 1, slen = sizeof(suffix) - 1;
    if (len <= plen + slen || strncmp(name, prefix, plen) != 0 ||
        strcmp(name + len - slen, suffix) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = plen; i < len - slen; i++) {
        if (name[i] < '0' || name[i] > '9' || v > UINT32_MAX)
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    if (v == 0 || v > UINT32_MAX)
        return false;
    *id = (uint32_t)v;
    return true;
}

static void dict_free(struct kv_dict *d)
{
    ZSTD_freeCDict(d->cdict);
    ZSTD_freeCDict(d->cdict_dense);
    ZSTD_freeDDict(d->ddict);
    free(d->bytes);
    free(d);
}

void kv__dict_put(struct kv_dict *d)
{
    if (d && atomic_fetch_sub(&d->refs, 1) == 1)
        dict_free(d);
}

/* A dictionary object from its bytes, held once (the table's hold); the
 * compression side only when it is to be the current one. */
static int dict_make(kv_store *s, uint32_t id, const void *bytes, size_t len, bool compress,
                     struct kv_dict **out)
{
    struct kv_dict *d = calloc(1, sizeof(*d));
    if (!d)
        return KV_ENOMEM;
    d->id = id;
    atomic_init(&d->refs, 1);
    atomic_init(&d->writers, 0);
    d->bytes = malloc(len ? len : 1);
    if (d->bytes) {
        if (len)
            memcpy(d->bytes, bytes, len);
        d->len = len;
        d->ddict = ZSTD_createDDict(bytes, len);
    }
    if (d->ddict && compress) {
        d->cdict = ZSTD_createCDict(bytes, len, s->opts.compression_level);
        d->cdict_dense = ZSTD_createCDict(bytes, len, kv__dense_level(&s->opts));
    }
    if (!d->ddict || (compress && (!d->cdict || !d->cdict_dense))) {
        dict_free(d);
        return KV_ENOMEM;
    }
    *out = d;
    return 0;
}

/* Adds d to the table in id order; the highest id becomes current. mu held. */
static int table_add(struct kv_dicts *t, struct kv_dict *d)
{
    KV_ASSERT(kv__mutex_held(&t->mu));
    if (t->n == t->cap) {
        size_t ncap = t->cap ? 2 * t->cap : 4;
        struct kv_dict **grown = realloc(t->v, ncap * sizeof(*grown));
        if (!grown)
            return KV_ENOMEM;
        t->v = grown;
        t->cap = ncap;
    }
    size_t i = t->n;
    while (i > 0 && t->v[i - 1]->id > d->id) {
        t->v[i] = t->v[i - 1];
        i--;
    }
    t->v[i] = d;
    t->n++;
    if (!t->current || d->id > t->current->id)
        t->current = d;
    return 0;
}

/* Reads and checks the file of id; *bytes (malloc'd) and *len are the
 * dictionary. A file that does not check out is KV_ECORRUPT, logged. */
static int read_dict_file(kv_store *s, uint32_t id, uint8_t **bytes, size_t *len)
{
    char path[4096];
    int rc = kv__dict_path(s->dir, id, false, path, sizeof(path));
    if (rc != 0)
        return rc;
    int fd = s->io->open(s->io->ctx, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) {
        int err = errno;
        kv__log(s, KV_LOG_ERROR, "cannot open dictionary %s: %s", path, strerror(err));
        return err == ENOENT ? KV_ECORRUPT : kv__errno_to_rc(err);
    }
    uint64_t size = 0;
    uint8_t *buf = NULL;
    const char *why = NULL;
    rc = kv__io_file_size(s->io, fd, &size);
    if (rc == 0 && (size < DICT_FILE_HEAD_LEN || size > DICT_FILE_HEAD_LEN + DICT_MAX_LEN))
        why = "its size is wrong";
    if (rc == 0 && !why && !(buf = malloc((size_t)size)))
        rc = KV_ENOMEM;
    if (rc == 0 && !why)
        rc = kv__io_read_full(s->io, fd, buf, (size_t)size, 0);
    int err = errno;
    s->io->close(s->io->ctx, fd);
    if (rc == 0 && !why) {
        uint32_t dlen = get_u32(buf + 12);
        if (memcmp(buf, DICT_FILE_MAGIC, 8) != 0)
            why = "not a dictionary file";
        else if (get_u32(buf + 8) != id)
            why = "its id differs from its name";
        else if ((uint64_t)dlen != size - DICT_FILE_HEAD_LEN)
            why = "its length is wrong";
        else if (record_crc_update(0, buf + DICT_FILE_HEAD_LEN, dlen) != get_u32(buf + 16))
            why = "checksum mismatch";
    }
    if (rc == 0 && why) {
        kv__log(s, KV_LOG_ERROR,
                "dictionary %s is damaged (%s); the records compressed with it "
                "cannot be read",
                path, why);
        rc = KV_ECORRUPT;
    } else if (rc != 0 && rc != KV_ENOMEM) {
        kv__log(s, KV_LOG_ERROR, "cannot read dictionary %s: %s", path, strerror(err));
    }
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *len = (size_t)size - DICT_FILE_HEAD_LEN;
    memmove(buf, buf + DICT_FILE_HEAD_LEN, *len);
    *bytes = buf;
    return 0;
}

/* The ids of the dictionary files in the store's directory, ascending. */
static int list_dict_files(kv_store *s, uint32_t **ids, size_t *n)
{
    void *d = s->io->opendir(s->io->ctx, s->dir);
    if (!d) {
        int err = errno;
        kv__log(s, KV_LOG_ERROR, "cannot read directory %s: %s", s->dir, strerror(err));
        return kv__errno_to_rc(err);
    }
    uint32_t *out = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    const char *name;
    for (errno = 0; rc == 0 && (name = s->io->readdir(s->io->ctx, d)) != NULL; errno = 0) {
        uint32_t id;
        if (!parse_dict_name(name, &id))
            continue;
        if (count == cap) {
            size_t ncap = cap ? 2 * cap : 4;
            uint32_t *grown = realloc(out, ncap * sizeof(*grown));
            if (!grown) {
                rc = KV_ENOMEM;
                break;
            }
            out = grown;
            cap = ncap;
        }
        size_t i = count++;
        while (i > 0 && out[i - 1] > id) {
            out[i] = out[i - 1];
            i--;
        }
        out[i] = id;
    }
    if (rc == 0 && errno != 0)
        rc = kv__errno_to_rc(errno);
    s->io->closedir(s->io->ctx, d);
    if (rc != 0) {
        free(out);
        return rc;
    }
    *ids = out;
    *n = count;
    return 0;
}

int kv__dicts_open(kv_store *s)
{
    struct kv_dicts *t = calloc(1, sizeof(*t));
    if (!t)
        return KV_ENOMEM;
    kv__mutex_init(&t->mu);
    s->dicts = t;
    uint32_t *ids = NULL;
    size_t n = 0;
    int rc = list_dict_files(s, &ids, &n);
    kv__mutex_lock(&t->mu);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        struct kv_dict *d = NULL;
        rc = read_dict_file(s, ids[i], &bytes, &len);
        bool newest = i == n - 1;
        if (rc == 0)
            rc = dict_make(s, ids[i], bytes, len, newest && s->opts.compression != KV_COMPRESS_NONE,
                           &d);
        free(bytes);
        if (rc == 0 && (rc = table_add(t, d)) != 0)
            dict_free(d);
    }
    kv__mutex_unlock(&t->mu);
    free(ids);
    if (rc == 0 && n > 0)
        kv__log(s, KV_LOG_DEBUG, "%zu compression dictionaries, the newest dict-%u.zdict", n,
                t->current->id);
    return rc;
}

void kv__dicts_close(kv_store *s)
{
    struct kv_dicts *t = s->dicts;
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        kv__dict_put(t->v[i]);
    free(t->v);
    kv__mutex_destroy(&t->mu);
    free(t);
    s->dicts = NULL;
}

struct kv_dict *kv__dict_get(kv_store *s, uint32_t id)
{
    struct kv_dicts *t = s->dicts;
    struct kv_dict *found = NULL;
    kv__mutex_lock(&t->mu);
    for (size_t i = 0; i < t->n && !found; i++)
        if (t->v[i]->id == id)
            found = t->v[i];
    if (found)
        atomic_fetch_add(&found->refs, 1);
    kv__mutex_unlock(&t->mu);
    return found;
}

struct kv_dict *kv__dict_current(kv_store *s)
{
    struct kv_dicts *t = s->dicts;
    kv__mutex_lock(&t->mu);
    struct kv_dict *d = t->current;
    if (d)
        atomic_fetch_add(&d->refs, 1);
    kv__mutex_unlock(&t->mu);
    return d;
}

struct kv_dict *kv__dict_for_writer(kv_store *s)
{
    struct kv_dicts *t = s->dicts;
    kv__mutex_lock(&t->mu);
    struct kv_dict *d = t->current;
    if (d) {
        atomic_fetch_add(&d->refs, 1);
        atomic_fetch_add(&d->writers, 1);
    }
    kv__mutex_unlock(&t->mu);
    return d;
}

void kv__dict_writer_done(struct kv_dict *d)
{
    if (!d)
        return;
    atomic_fetch_sub(&d->writers, 1);
    kv__dict_put(d);
}

/* Writes the dictionary file of id: .tmp, fsync, rename, directory fsync. */
static int write_dict_file(kv_store *s, uint32_t id, const void *bytes, size_t len)
{
    char tmp[4096], path[4096];
    int rc = kv__dict_path(s->dir, id, true, tmp, sizeof(tmp));
    if (rc == 0)
        rc = kv__dict_path(s->dir, id, false, path, sizeof(path));
    if (rc != 0)
        return rc;
    uint8_t head[DICT_FILE_HEAD_LEN];
    memcpy(head, DICT_FILE_MAGIC, 8);
    put_u32(head + 8, id);
    put_u32(head + 12, (uint32_t)len);
    put_u32(head + 16, record_crc_update(0, bytes, len));
    int fd = s->io->open(s->io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        rc = kv__errno_to_rc(errno);
    struct iovec iov[2] = {{.iov_base = head, .iov_len = sizeof(head)},
                           {.iov_base = (void *)bytes, .iov_len = len}};
    if (rc == 0)
        rc = kv__io_writev_full(s->io, fd, iov, 2, 0);
    if (rc == 0)
        rc = kv__fsync_counted(s, fd, false);
    int err = errno;
    if (fd >= 0)
        s->io->close(s->io->ctx, fd);
    if (rc == 0 && s->io->rename(s->io->ctx, tmp, path) != 0) {
        err = errno;
        rc = kv__errno_to_rc(err);
    }
    if (rc == 0) {
        rc = kv__io_sync_dir(s->io, s->dir);
        err = errno;
        atomic_fetch_add(&s->n_fsyncs, 1);
    }
    if (rc != 0) {
        kv__log(s, KV_LOG_ERROR, "cannot write dictionary %s: %s", path,
                rc == KV_ENOMEM ? "out of memory" : strerror(err));
        s->io->unlink(s->io->ctx, tmp);
    }
    return rc;
}

int kv__dict_install(kv_store *s, const void *bytes, size_t len, uint32_t *id)
{
    struct kv_dicts *t = s->dicts;
    kv__mutex_lock(&t->mu);
    uint32_t next = t->current ? t->current->id + 1 : 1;
    kv__mutex_unlock(&t->mu);
    if (next == 0)
        return KV_EFORMAT; /* 2^32 - 1 dictionaries made: no id left */
    struct kv_dict *d = NULL;
    int rc = dict_make(s, next, bytes, len, true, &d);
    if (rc == 0)
        rc = write_dict_file(s, next, bytes, len);
    if (rc != 0) {
        if (d)
            dict_free(d);
        return rc;
    }
    kv__mutex_lock(&t->mu);
    struct kv_dict *old = t->current;
    if (old)
        atomic_fetch_add(&old->refs, 1);
    rc = table_add(t, d);
    kv__mutex_unlock(&t->mu);
    if (rc != 0) {
        kv__dict_put(old);
        dict_free(d);
        return rc;
    }
    /* Writers take the current dictionary under the mutex and hold it until
     * their record is written: once the old one's count has drained, every
     * record naming it is in the log before whatever the caller seals next. */
    while (old && atomic_load(&old->writers) != 0)
        sched_yield();
    kv__dict_put(old);
    *id = next;
    kv__log(s, KV_LOG_INFO, "trained compression dictionary dict-%u.zdict (%zu bytes)", next, len);
    return 0;
}

int kv__dict_ids(kv_store *s, uint32_t **ids, size_t *n)
{
    struct kv_dicts *t = s->dicts;
    kv__mutex_lock(&t->mu);
    uint32_t *out = malloc((t->n ? t->n : 1) * sizeof(*out));
    for (size_t i = 0; out && i < t->n; i++)
        out[i] = t->v[i]->id;
    size_t count = t->n;
    kv__mutex_unlock(&t->mu);
    if (!out)
        return KV_ENOMEM;
    *ids = out;
    *n = count;
    return 0;
}

static bool contains(const uint32_t *ids, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

int kv__dict_drop_except(kv_store *s, const uint32_t *keep, size_t nkeep, uint32_t **gone,
                         size_t *ngone)
{
    struct kv_dicts *t = s->dicts;
    kv__mutex_lock(&t->mu);
    uint32_t *out = malloc((t->n ? t->n : 1) * sizeof(*out));
    size_t count = 0, kept = 0;
    for (size_t i = 0; out && i < t->n; i++) {
        struct kv_dict *d = t->v[i];
        if (d == t->current || contains(keep, nkeep, d->id)) {
            t->v[kept++] = d;
            continue;
        }
        out[count++] = d->id;
        kv__dict_put(d);
    }
    if (out)
        t->n = kept;
    kv__mutex_unlock(&t->mu);
    if (!out)
        return KV_ENOMEM;
    *gone = out;
    *ngone = count;
    return 0;
}

void kv__dict_unlink(kv_store *s, const uint32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        if (kv__dict_path(s->dir, ids[i], false, path, sizeof(path)) != 0)
            continue;
        if (s->io->unlink(s->io->ctx, path) != 0)
            kv__log(s, KV_LOG_WARN, "cannot remove %s: %s (no record names it)", path,
                    strerror(errno));
        else
            kv__log(s, KV_LOG_INFO, "removed dictionary dict-%u.zdict: no record names it", ids[i]);
    }
    if (n > 0 && kv__io_sync_dir(s->io, s->dir) == 0)
        atomic_fetch_add(&s->n_fsyncs, 1);
}
