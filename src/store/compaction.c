/*
 * compaction.c - kv_compact: rewrites the live records of every segment into
 * new segments and removes the old ones.
 *
 * Writers wait (append_mu) while it runs; readers go on, and a reader that
 * pinned a segment being removed still reads it, since the descriptor closes
 * only with its last reader. Every step leaves a directory that opens to the
 * same contents:
 *
 *   1. the active segment is synced and sealed with the others: inputs are
 *      every segment, ids up to H;
 *   2. live records are copied into outputs with ids H+1, H+2, ... written as
 *      .tmp files and fsynced (a crash here leaves .tmp files, removed at open);
 *   3. outputs are renamed into place and the directory fsynced (outputs sort
 *      after the inputs and hold the newest value of each key they hold, so
 *      replaying both gives the same result);
 *   4. a fresh active segment is created after the outputs, the index moves
 *      each key whose entry still names its old place, and the snapshot is
 *      written naming only outputs and the new active segment;
 *   5. inputs are unlinked oldest first, the directory fsynced after each. A
 *      tombstone is dropped at step 2 only because every older segment is an
 *      input too; unlinking oldest first means that whatever inputs a crash
 *      leaves behind are the newest ones, so a key's last record among them
 *      is still its tombstone and no deleted key comes back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "store.h"

#define WRITE_BUF    (1u << 20)
#define SPACE_MARGIN (1u << 20)

struct reloc {
    struct kv_loc old;
    struct kv_loc now;
    size_t key_off; /* into compactor.keys */
    uint16_t key_len;
};

struct compactor {
    kv_store *s;
    struct segment *in; /* the input being scanned */
    int in_fd;
    uint32_t next_id;    /* the id the next output gets */
    uint32_t *outs;      /* ids of the outputs written */
    uint64_t *out_sizes; /* and their final sizes */
    size_t nouts, outs_cap;
    int out_fd;
    uint64_t out_size; /* bytes written to the current output, buffered included */
    uint8_t *wbuf;
    size_t wlen;
    uint8_t *rec; /* one record copied from an input */
    size_t rec_cap;
    struct reloc *relocs;
    size_t nrelocs, relocs_cap;
    uint8_t *keys;
    size_t keys_len, keys_cap;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    void *grown = realloc(*p, ncap * elem);
    if (!grown)
        return KV_ENOMEM;
    *p = grown;
    *cap = ncap;
    return 0;
}

static int flush_output(struct compactor *c)
{
    if (c->wlen == 0)
        return 0;
    int rc =
        kv__io_write_full(c->s->io, c->out_fd, c->wbuf, c->wlen, (off_t)(c->out_size - c->wlen));
    c->wlen = 0;
    return rc;
}

static int finish_output(struct compactor *c)
{
    if (c->out_fd < 0)
        return 0;
    c->out_sizes[c->nouts - 1] = c->out_size;
    int rc = flush_output(c);
    if (rc == 0)
        rc = kv__fsync_counted(c->s, c->out_fd, true);
    c->s->io->close(c->s->io->ctx, c->out_fd);
    c->out_fd = -1;
    return rc;
}

static int start_output(struct compactor *c)
{
    char path[4096];
    size_t cap = c->outs_cap;
    int rc = grow((void **)&c->outs, &cap, c->nouts + 1, sizeof(*c->outs));
    if (rc == 0)
        rc = grow((void **)&c->out_sizes, &c->outs_cap, c->nouts + 1, sizeof(*c->out_sizes));
    if (rc != 0)
        return rc;
    rc = kv__segment_path(c->s->dir, c->next_id, true, path, sizeof(path));
    if (rc != 0)
        return rc;
    c->out_fd = c->s->io->open(c->s->io->ctx, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (c->out_fd < 0)
        return kv__errno_to_rc(errno);
    c->outs[c->nouts++] = c->next_id++;
    c->out_size = 0;
    return 0;
}

/* Appends one record's bytes to the outputs, starting a new output when the
 * current one is full. Returns where it landed. */
static int emit(struct compactor *c, const uint8_t *rec, uint64_t len, struct kv_loc *at)
{
    int rc = 0;
    if (c->out_fd >= 0 && c->out_size > 0 && c->out_size + len > c->s->opts.segment_size)
        rc = finish_output(c);
    if (rc == 0 && c->out_fd < 0)
        rc = start_output(c);
    if (rc != 0)
        return rc;
    at->seg = c->outs[c->nouts - 1];
    at->off = (uint32_t)c->out_size;
    if (c->wlen + len > WRITE_BUF) {
        rc = flush_output(c);
        if (rc == 0 && len > WRITE_BUF) {
            rc = kv__io_write_full(c->s->io, c->out_fd, rec, len, (off_t)c->out_size);
            c->out_size += len;
            return rc;
        }
    }
    memcpy(c->wbuf + c->wlen, rec, len);
    c->wlen += len;
    c->out_size += len;
    return rc;
}

static bool still_live(kv_store *s, const struct scan_record *r, uint32_t seg)
{
    uint64_t h = index_hash(r->key, r->key_len);
    pthread_rwlock_rdlock(&s->lock);
    const struct index_entry *e = index_lookup(&s->index, h, r->key, r->key_len);
    bool live = e && e->loc.seg == seg && e->loc.off == r->off;
    pthread_rwlock_unlock(&s->lock);
    return live;
}

static int copy_if_live(const struct scan_record *r, void *arg)
{
    struct compactor *c = arg;
    if (r->status != KV_REC_OK || r->op != KV_OP_SET || !still_live(c->s, r, c->in->id))
        return 0; /* dead, a tombstone (every older segment is an input), or damaged */
    size_t keys_cap = c->keys_cap, relocs_cap = c->relocs_cap;
    int rc = grow((void **)&c->keys, &keys_cap, c->keys_len + r->key_len, 1);
    if (rc == 0)
        rc = grow((void **)&c->relocs, &relocs_cap, c->nrelocs + 1, sizeof(*c->relocs));
    c->keys_cap = keys_cap;
    c->relocs_cap = relocs_cap;
    if (rc == 0)
        rc = grow((void **)&c->rec, &c->rec_cap, (size_t)r->len, 1);
    if (rc != 0)
        return rc;
    struct reloc *rl = &c->relocs[c->nrelocs];
    rl->old = (struct kv_loc){.seg = c->in->id, .off = (uint32_t)r->off, .val_len = r->val_len};
    rl->key_off = c->keys_len;
    rl->key_len = (uint16_t)r->key_len;
    memcpy(c->keys + c->keys_len, r->key, r->key_len);
    rc = kv__io_read_full(c->s->io, c->in_fd, c->rec, (size_t)r->len, (off_t)r->off);
    if (rc == 0)
        rc = emit(c, c->rec, r->len, &rl->now);
    if (rc == 0) {
        rl->now.val_len = r->val_len;
        c->keys_len += r->key_len;
        c->nrelocs++;
    }
    return rc;
}

static int copy_input(struct compactor *c, struct segment *in)
{
    char path[4096];
    int rc = kv__segment_path(c->s->dir, in->id, false, path, sizeof(path));
    if (rc != 0)
        return rc;
    c->in = in;
    c->in_fd = c->s->io->open(c->s->io->ctx, path, O_RDONLY, 0);
    if (c->in_fd < 0)
        return kv__errno_to_rc(errno);
    rc = kv__scan_segment(c->s->io, c->in_fd, atomic_load(&in->size), 0, copy_if_live, c);
    c->s->io->close(c->s->io->ctx, c->in_fd);
    c->in_fd = -1;
    return rc;
}

/* Removes every output, renamed or not, after a failure. */
static void discard_outputs(struct compactor *c)
{
    for (size_t i = 0; i < c->nouts; i++) {
        char path[4096];
        for (int tmp = 0; tmp < 2; tmp++)
            if (kv__segment_path(c->s->dir, c->outs[i], tmp, path, sizeof(path)) == 0)
                c->s->io->unlink(c->s->io->ctx, path);
    }
    kv__io_sync_dir(c->s->io, c->s->dir);
}

static int publish_outputs(struct compactor *c)
{
    for (size_t i = 0; i < c->nouts; i++) {
        char from[4096], to[4096];
        int rc = kv__segment_path(c->s->dir, c->outs[i], true, from, sizeof(from));
        if (rc == 0)
            rc = kv__segment_path(c->s->dir, c->outs[i], false, to, sizeof(to));
        if (rc != 0)
            return rc;
        if (c->s->io->rename(c->s->io->ctx, from, to) != 0)
            return kv__errno_to_rc(errno);
    }
    int rc = kv__io_sync_dir(c->s->io, c->s->dir);
    atomic_fetch_add(&c->s->n_fsyncs, 1);
    return rc;
}

/* Drops the keys whose entry still names an input after the relocations:
 * their record there failed its checksum, so no copy of it exists. */
static void drop_orphans(kv_store *s, struct segment **inputs, size_t nin)
{
    size_t cursor = 0;
    struct index_entry *e;
    while ((e = index_next(&s->index, &cursor, NULL)) != NULL) {
        bool orphan = false;
        for (size_t j = 0; j < nin && !orphan; j++)
            orphan = e->loc.seg == inputs[j]->id;
        if (!orphan)
            continue;
        kv__log(s, KV_LOG_ERROR,
                "compaction: a key's record in segment %u is damaged; the key "
                "is dropped",
                e->loc.seg);
        index_remove(&s->index, index_hash(e->key, e->key_len), e->key, e->key_len, NULL);
        cursor = 0; /* removal shifts later slots back */
    }
}

/* Step 4 under the write lock: outputs and the new active segment join the
 * table, keys move, inputs leave. Everything that can fail (allocation) is
 * done before the first change, so table and index stay consistent. */
static int switch_over(struct compactor *c, struct segment **inputs, size_t nin,
                       struct segment *fresh)
{
    kv_store *s = c->s;
    struct segment **outs = calloc(c->nouts ? c->nouts : 1, sizeof(*outs));
    int rc = outs ? 0 : KV_ENOMEM;
    for (size_t i = 0; rc == 0 && i < c->nouts; i++) {
        outs[i] = kv__segment_new(c->outs[i], -1, c->out_sizes[i]);
        if (!outs[i])
            rc = KV_ENOMEM;
    }
    pthread_rwlock_wrlock(&s->lock);
    if (rc == 0)
        rc = grow((void **)&s->segs, &s->segs_cap, s->nsegs + c->nouts + 1, sizeof(*s->segs));
    if (rc != 0) {
        pthread_rwlock_unlock(&s->lock);
        for (size_t i = 0; outs && i < c->nouts; i++)
            free(outs[i]);
        free(outs);
        return rc;
    }
    for (size_t i = 0; i < c->nouts; i++)
        kv__segtab_add(s, outs[i]);
    kv__segtab_add(s, fresh);
    bool orphans = false;
    for (size_t i = 0; i < c->nrelocs; i++) {
        const struct reloc *rl = &c->relocs[i];
        const uint8_t *key = c->keys + rl->key_off;
        struct index_entry *e =
            index_lookup(&s->index, index_hash(key, rl->key_len), key, rl->key_len);
        if (!e || e->loc.seg != rl->old.seg || e->loc.off != rl->old.off)
            continue; /* written again meanwhile: the newer record wins */
        uint64_t len = record_size(rl->key_len, rl->now.val_len);
        e->loc = rl->now;
        kv__segtab_find(s, rl->now.seg)->live_bytes += len;
        kv__segtab_find(s, rl->old.seg)->live_bytes -= len;
    }
    for (size_t i = 0; i < nin; i++)
        orphans |= inputs[i]->live_bytes != 0;
    if (orphans)
        drop_orphans(s, inputs, nin);
    for (size_t i = 0; i < nin; i++)
        kv__segtab_remove(s, inputs[i]);
    s->active = fresh;
    if (kv__rebuild_bloom(s) != 0)
        kv__log(s, KV_LOG_WARN,
                "compaction: out of memory rebuilding the bloom filter; the old "
                "one stays");
    pthread_rwlock_unlock(&s->lock);
    free(outs);
    return 0;
}

static void compactor_free(struct compactor *c)
{
    if (c->out_fd >= 0)
        c->s->io->close(c->s->io->ctx, c->out_fd);
    free(c->outs);
    free(c->out_sizes);
    free(c->wbuf);
    free(c->rec);
    free(c->relocs);
    free(c->keys);
}

static int unlink_inputs(kv_store *s, const uint32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        int rc = kv__segment_path(s->dir, ids[i], false, path, sizeof(path));
        if (rc == 0 && s->io->unlink(s->io->ctx, path) != 0)
            rc = kv__errno_to_rc(errno);
        if (rc == 0)
            rc = kv__io_sync_dir(s->io, s->dir);
        if (rc != 0) {
            kv__log(s, KV_LOG_WARN,
                    "compaction: cannot remove segment %u: %s (it holds only "
                    "older copies; the next compaction retries)",
                    ids[i], strerror(errno));
            return rc;
        }
    }
    return 0;
}

/* The whole compaction; append_mu held. */
static int compact_locked(kv_store *s)
{
    int rc = kv__sync_active(s);
    if (rc != 0)
        return rc;
    pthread_rwlock_rdlock(&s->lock);
    size_t nin = s->nsegs;
    uint64_t live = 0, disk = 0;
    struct segment **inputs = malloc(nin * sizeof(*inputs));
    uint32_t *in_ids = malloc(nin * sizeof(*in_ids));
    if (inputs && in_ids) {
        memcpy(inputs, s->segs, nin * sizeof(*inputs));
        for (size_t i = 0; i < nin; i++) {
            in_ids[i] = inputs[i]->id;
            live += inputs[i]->live_bytes;
            disk += atomic_load(&inputs[i]->size);
        }
    }
    uint32_t next_id = s->active->id + 1;
    pthread_rwlock_unlock(&s->lock);
    struct compactor c = {.s = s, .in_fd = -1, .out_fd = -1, .next_id = next_id};
    uint64_t avail = 0;
    struct segment *fresh = NULL;
    if (!inputs || !in_ids || !(c.wbuf = malloc(WRITE_BUF))) {
        rc = KV_ENOMEM;
        goto out;
    }
    if (nin == 1 && live == disk)
        goto out; /* nothing to reclaim */
    rc = kv__io_free_space(s->dir, &avail);
    if (rc == 0 && avail < live + SPACE_MARGIN) {
        kv__log(s, KV_LOG_WARN, "compaction needs %llu bytes free, %llu are: not started",
                (unsigned long long)live + SPACE_MARGIN, (unsigned long long)avail);
        rc = KV_ENOSPC;
    }
    for (size_t i = 0; rc == 0 && i < nin; i++)
        rc = copy_input(&c, inputs[i]);
    if (rc == 0)
        rc = finish_output(&c);
    if (rc == 0)
        rc = publish_outputs(&c);
    if (rc == 0)
        rc = kv__segment_create(s, c.next_id, &fresh);
    if (rc == 0)
        rc = switch_over(&c, inputs, nin, fresh);
    if (rc != 0) {
        if (fresh) {
            char path[4096];
            s->io->close(s->io->ctx, fresh->fd);
            if (kv__segment_path(s->dir, fresh->id, false, path, sizeof(path)) == 0)
                s->io->unlink(s->io->ctx, path);
            free(fresh);
        }
        discard_outputs(&c);
        kv__log(s, KV_LOG_ERROR, "compaction failed: %s; nothing changed", kv_strerror(rc));
        goto out;
    }
    int src = kv__snapshot_save_locked(s);
    if (src != 0)
        kv__log(s, KV_LOG_WARN, "snapshot after compaction failed: %s", kv_strerror(src));
    unlink_inputs(s, in_ids, nin);
    kv__log(s, KV_LOG_INFO, "compaction: %zu segments (%llu bytes) into %zu (%llu live bytes)", nin,
            (unsigned long long)disk, c.nouts, (unsigned long long)live);
out:
    compactor_free(&c);
    free(inputs);
    free(in_ids);
    return rc;
}

int kv_compact(kv_store *s)
{
    if (!s)
        return KV_EINVAL;
    pthread_mutex_lock(&s->append_mu);
    int rc = atomic_load(&s->read_only) ? KV_EREADONLY : compact_locked(s);
    pthread_mutex_unlock(&s->append_mu);
    return rc;
}
