/*
 * compaction.c - rewrites the live records of every segment into new
 * segments and removes the old ones, beside live traffic.
 *
 * Only two short moments take append_mu: sealing the active segment at the
 * start, and writing the snapshot at the end. The rest runs while readers and
 * writers go on; the index is updated in short batches under the write lock,
 * and an entry moves to its copy only if it still names the record that was
 * copied, so a write made meanwhile wins. A reader that pinned a segment being
 * removed still reads it: its descriptor closes with its last reader.
 *
 * Every step leaves a directory that opens to the same contents:
 *
 *   1. the active segment H is sealed and writers move to segment H+1+R, so
 *      ids H+1 .. H+R are free for the outputs: inputs are every segment up
 *      to H, outputs sort after every input and before every new write;
 *   2. live records are copied into outputs written as .tmp files and fsynced
 *      (a crash here leaves .tmp files, removed at open);
 *   3. outputs are renamed into place and the directory fsynced: they hold,
 *      for each key they hold, its newest value as of step 1, so replaying
 *      inputs and outputs together gives the same result;
 *   4. the index moves to the outputs and the snapshot is rewritten naming
 *      only segments that stay;
 *   5. inputs are unlinked oldest first, the directory fsynced after each.
 *      Tombstones were dropped at step 2: that is safe because every segment
 *      older than them is an input too; and since a crash in step 5 leaves
 *      only the newest inputs behind, a deleted key's last record among them
 *      is still its tombstone, so no deleted key comes back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "record.h"
#include "store.h"

#define WRITE_BUF      (1u << 20)
#define SPACE_MARGIN   (1u << 20)
#define RELOCATE_BATCH 4096

struct reloc {
    struct kv_loc old;
    struct kv_loc now;
    size_t key_off; /* into compactor.keys */
    uint16_t key_len;
};

#define STAGE_RECORDS 64
#define STAGE_BYTES   (256u << 10)

struct staged {
    uint64_t off; /* in the input */
    uint64_t len;
    uint64_t hash;
    size_t buf_off; /* into stage_buf: the whole record */
    uint32_t key_len, val_len;
};

struct compactor {
    kv_store *s;
    struct segment **inputs;
    uint32_t *in_ids;
    size_t nin;
    struct segment *in; /* the input being scanned */
    int in_fd;
    uint32_t next_id; /* the id the next output gets */
    uint32_t last_id; /* the last id reserved for outputs */
    uint32_t *outs;   /* ids of the outputs written, and their sizes */
    uint64_t *out_sizes;
    size_t nouts, outs_cap;
    int out_fd;
    uint64_t out_size; /* bytes of the current output, buffered ones included */
    uint8_t *wbuf;
    size_t wlen;
    uint8_t *rec; /* a record too large for the scanner's window */
    size_t rec_cap;
    struct reloc *relocs;
    size_t nrelocs, relocs_cap;
    /* Records waiting for their liveness check, checked a batch at a time so
     * that the index's cache misses overlap. */
    struct staged *staged;
    size_t nstaged;
    uint8_t *stage_buf;
    size_t stage_len;
    uint8_t *keys;
    size_t keys_len, keys_cap;
    uint64_t bytes_in, live_in;
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

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- step 2: copying */

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
    if (c->next_id > c->last_id) {
        kv__log(c->s, KV_LOG_ERROR, "compaction: outputs need more than the %u ids reserved",
                c->last_id - c->in_ids[c->nin - 1]);
        return KV_EIO;
    }
    size_t cap = c->outs_cap;
    int rc = grow((void **)&c->outs, &cap, c->nouts + 1, sizeof(*c->outs));
    if (rc == 0)
        rc = grow((void **)&c->out_sizes, &c->outs_cap, c->nouts + 1, sizeof(*c->out_sizes));
    char path[4096];
    if (rc == 0)
        rc = kv__segment_path(c->s->dir, c->next_id, true, path, sizeof(path));
    if (rc != 0)
        return rc;
    c->out_fd = c->s->io->open(c->s->io->ctx, path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (c->out_fd < 0)
        return kv__errno_to_rc(errno);
    c->out_sizes[c->nouts] = 0;
    c->outs[c->nouts++] = c->next_id++;
    c->out_size = 0;
    return 0;
}

/* Appends one record to the outputs, starting a new output when the current
 * one is full, and says where it landed. */
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
    if (c->wlen + len > WRITE_BUF)
        rc = flush_output(c);
    if (rc == 0 && len > WRITE_BUF)
        rc = kv__io_write_full(c->s->io, c->out_fd, rec, (size_t)len, (off_t)c->out_size);
    else if (rc == 0) {
        memcpy(c->wbuf + c->wlen, rec, (size_t)len);
        c->wlen += (size_t)len;
    }
    c->out_size += len;
    return rc;
}

/* Copies one live record to the outputs and notes where its key moved. */
static int copy_record(struct compactor *c, const uint8_t *rec, const struct staged *st)
{
    size_t keys_cap = c->keys_cap, relocs_cap = c->relocs_cap;
    int rc = grow((void **)&c->keys, &keys_cap, c->keys_len + st->key_len, 1);
    c->keys_cap = keys_cap;
    if (rc == 0)
        rc = grow((void **)&c->relocs, &relocs_cap, c->nrelocs + 1, sizeof(*c->relocs));
    c->relocs_cap = relocs_cap;
    if (rc != 0)
        return rc;
    struct reloc *rl = &c->relocs[c->nrelocs];
    rl->old = (struct kv_loc){.seg = c->in->id, .off = (uint32_t)st->off, .val_len = st->val_len};
    rl->key_off = c->keys_len;
    rl->key_len = (uint16_t)st->key_len;
    memcpy(c->keys + c->keys_len, rec + RECORD_HEADER_LEN, st->key_len);
    rc = emit(c, rec, st->len, &rl->now);
    if (rc != 0)
        return rc;
    rl->now.val_len = st->val_len;
    c->keys_len += st->key_len;
    c->nrelocs++;
    return 0;
}

/* Checks the staged records against the index in one read-lock hold, with
 * the lookups' memory prefetched, and copies the live ones. */
static int flush_staged(struct compactor *c)
{
    kv_store *s = c->s;
    bool live[STAGE_RECORDS] = {false};
    kv__rdlock(s);
    for (size_t i = 0; i < c->nstaged; i++)
        index_prefetch_slot(&s->index, c->staged[i].hash);
    for (size_t i = 0; i < c->nstaged; i++)
        index_prefetch_entry(&s->index, c->staged[i].hash);
    for (size_t i = 0; i < c->nstaged; i++) {
        const struct staged *st = &c->staged[i];
        const uint8_t *key = c->stage_buf + st->buf_off + RECORD_HEADER_LEN;
        const struct index_entry *e = index_lookup(&s->index, st->hash, key, st->key_len);
        live[i] = e && e->loc.seg == c->in->id && e->loc.off == st->off;
    }
    kv__unlock(s);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < c->nstaged; i++)
        if (live[i])
            rc = copy_record(c, c->stage_buf + c->staged[i].buf_off, &c->staged[i]);
    c->nstaged = 0;
    c->stage_len = 0;
    return rc;
}

/* Scanner callback: stages every good SET record (tombstones are dropped:
 * every older segment is an input; damaged records have nothing to copy). */
static int stage_record(const struct scan_record *r, void *arg)
{
    struct compactor *c = arg;
    if (atomic_load_explicit(&c->s->compact_cancel, memory_order_relaxed))
        return KV_EBUSY;
    if (r->status != KV_REC_OK || r->op != KV_OP_SET)
        return 0;
    int rc = 0;
    if (c->nstaged == STAGE_RECORDS || c->stage_len + r->len > STAGE_BYTES)
        rc = flush_staged(c);
    if (rc != 0)
        return rc;
    const uint8_t *bytes = r->raw;
    if (!bytes) {
        /* Larger than the scanner's window: read it whole. */
        rc = grow((void **)&c->rec, &c->rec_cap, (size_t)r->len, 1);
        if (rc == 0)
            rc = kv__io_read_full(c->s->io, c->in_fd, c->rec, (size_t)r->len, (off_t)r->off);
        if (rc != 0)
            return rc;
        bytes = c->rec;
    }
    struct staged st = {.off = r->off,
                        .len = r->len,
                        .hash = index_hash(r->key, r->key_len),
                        .key_len = r->key_len,
                        .val_len = r->val_len};
    if (r->len > STAGE_BYTES) {
        /* Too large to stage: check and copy it on its own. */
        kv__rdlock(c->s);
        const struct index_entry *e = index_lookup(&c->s->index, st.hash, r->key, r->key_len);
        bool live = e && e->loc.seg == c->in->id && e->loc.off == r->off;
        kv__unlock(c->s);
        return live ? copy_record(c, bytes, &st) : 0;
    }
    st.buf_off = c->stage_len;
    memcpy(c->stage_buf + c->stage_len, bytes, (size_t)r->len);
    c->stage_len += (size_t)r->len;
    c->staged[c->nstaged++] = st;
    return 0;
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
    uint64_t size = atomic_load(&in->size);
    rc = kv__scan_segment(c->s->io, c->in_fd, size, 0, stage_record, c);
    if (rc == 0)
        rc = flush_staged(c);
    c->nstaged = 0;
    c->stage_len = 0;
    c->s->io->close(c->s->io->ctx, c->in_fd);
    c->in_fd = -1;
    c->bytes_in += size;
    return rc;
}

/* ---- step 3: publishing, or discarding after a failure */

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
    if (c->nouts == 0)
        return 0;
    int rc = kv__io_sync_dir(c->s->io, c->s->dir);
    atomic_fetch_add(&c->s->n_fsyncs, 1);
    return rc;
}

/* ---- step 4: the index moves */

/* Adds the outputs to the segment table; nothing is changed on failure. */
static int add_outputs(struct compactor *c)
{
    kv_store *s = c->s;
    struct segment **outs = calloc(c->nouts ? c->nouts : 1, sizeof(*outs));
    int rc = outs ? 0 : KV_ENOMEM;
    for (size_t i = 0; rc == 0 && i < c->nouts; i++) {
        outs[i] = kv__segment_new(c->outs[i], -1, c->out_sizes[i]);
        if (!outs[i])
            rc = KV_ENOMEM;
    }
    kv__wrlock(s);
    if (rc == 0)
        rc = grow((void **)&s->segs, &s->segs_cap, s->nsegs + c->nouts, sizeof(*s->segs));
    for (size_t i = 0; rc == 0 && i < c->nouts; i++)
        kv__segtab_add(s, outs[i]); /* cannot fail: room was made above */
    kv__unlock(s);
    if (rc != 0)
        for (size_t i = 0; outs && i < c->nouts; i++)
            free(outs[i]);
    free(outs);
    return rc;
}

/* Moves index entries to their copies, a batch per write-lock hold, so that
 * readers and writers wait microseconds, not the whole pass. */
static void relocate(struct compactor *c)
{
    kv_store *s = c->s;
    for (size_t start = 0; start < c->nrelocs; start += RELOCATE_BATCH) {
        size_t end = start + RELOCATE_BATCH < c->nrelocs ? start + RELOCATE_BATCH : c->nrelocs;
        kv__wrlock(s);
        for (size_t i = start; i < end; i++) {
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
        kv__unlock(s);
    }
}

/* Inputs are exactly the segments with ids up to the last input's. */
static bool names_input(const struct compactor *c, uint32_t seg)
{
    return seg <= c->in_ids[c->nin - 1];
}

/* Drops keys whose entry still names an input after relocation: their record
 * there failed its checksum, so no copy exists. Write lock held. */
static void drop_orphans(struct compactor *c)
{
    kv_store *s = c->s;
    size_t cursor = 0;
    struct index_entry *e;
    while ((e = index_next(&s->index, &cursor)) != NULL) {
        if (!names_input(c, e->loc.seg))
            continue;
        kv__log(s, KV_LOG_ERROR,
                "compaction: the record of a key in segment %u is damaged; the key is dropped",
                e->loc.seg);
        kv__apply_delete(s, index_hash(e->key, e->key_len), e->key, e->key_len);
        cursor = 0; /* removal shifts later slots back */
    }
}

/* Takes the inputs out of the table and rebuilds the bloom filter. */
static void retire_inputs(struct compactor *c)
{
    kv_store *s = c->s;
    kv__wrlock(s);
    bool orphans = false;
    for (size_t i = 0; i < c->nin; i++)
        orphans |= c->inputs[i]->live_bytes != 0;
    if (orphans)
        drop_orphans(c);
    for (size_t i = 0; i < c->nin; i++)
        kv__segtab_remove(s, c->inputs[i]);
    if (kv__rebuild_bloom(s) != 0)
        kv__log(s, KV_LOG_WARN,
                "compaction: no memory to rebuild the bloom filter; the old "
                "one stays");
    kv__unlock(s);
}

/* ---- step 5 */

static void unlink_inputs(struct compactor *c)
{
    kv_store *s = c->s;
    for (size_t i = 0; i < c->nin; i++) {
        char path[4096];
        int rc = kv__segment_path(s->dir, c->in_ids[i], false, path, sizeof(path));
        if (rc == 0 && s->io->unlink(s->io->ctx, path) != 0)
            rc = kv__errno_to_rc(errno);
        if (rc == 0)
            rc = kv__io_sync_dir(s->io, s->dir);
        if (rc != 0) {
            kv__log(s, KV_LOG_WARN,
                    "compaction: cannot remove segment %u: %s (it holds only older copies; the "
                    "next compaction takes it again)",
                    c->in_ids[i], strerror(errno));
            return;
        }
    }
}

/* ---- the whole compaction */

static void compactor_free(struct compactor *c)
{
    if (c->out_fd >= 0)
        c->s->io->close(c->s->io->ctx, c->out_fd);
    free(c->inputs);
    free(c->in_ids);
    free(c->outs);
    free(c->out_sizes);
    free(c->wbuf);
    free(c->stage_buf);
    free(c->staged);
    free(c->rec);
    free(c->relocs);
    free(c->keys);
}

/* Whether the background trigger fires. Caller holds the rwlock. */
static bool worth_compacting(const kv_store *s)
{
    uint64_t disk = 0, live = 0;
    for (size_t i = 0; i < s->nsegs; i++) {
        disk += atomic_load(&s->segs[i]->size);
        live += s->segs[i]->live_bytes;
    }
    uint64_t dead = disk > live ? disk - live : 0;
    if (dead == 0)
        return false;
    const kv_options *o = &s->opts;
    bool by_count = o->compaction_threshold > 0 && s->nsegs >= o->compaction_threshold &&
                    dead >= o->segment_size;
    bool by_ratio =
        o->compaction_dead_ratio > 0 && (double)dead >= o->compaction_dead_ratio * (double)disk;
    return by_count || by_ratio;
}

/* Step 1, under append_mu: chooses the inputs and seals the active segment,
 * leaving ids free for the outputs. *skip is set when there is nothing to do. */
static int begin(struct compactor *c, bool background, bool *skip)
{
    kv_store *s = c->s;
    *skip = false;
    if (atomic_load(&s->read_only))
        return KV_EREADONLY;
    kv__rdlock(s);
    bool nothing = s->nsegs == 1 && s->segs[0]->live_bytes == atomic_load(&s->segs[0]->size);
    bool wanted = background ? worth_compacting(s) : !nothing;
    size_t n = s->nsegs;
    c->inputs = malloc(n * sizeof(*c->inputs));
    c->in_ids = malloc(n * sizeof(*c->in_ids));
    if (wanted && c->inputs && c->in_ids) {
        c->nin = n;
        memcpy(c->inputs, s->segs, n * sizeof(*c->inputs));
        for (size_t i = 0; i < n; i++) {
            c->in_ids[i] = c->inputs[i]->id;
            c->live_in += c->inputs[i]->live_bytes;
        }
    }
    kv__unlock(s);
    if (!wanted) {
        *skip = true;
        return 0;
    }
    if (!c->inputs || !c->in_ids)
        return KV_ENOMEM;
    /* Each output holds at least one record and outputs are filled to the
     * segment size, so twice the inputs (plus slack) is more than enough. */
    uint32_t last = c->in_ids[n - 1];
    uint32_t reserve = (uint32_t)(2 * n + 16);
    c->next_id = last + 1;
    c->last_id = last + reserve;
    return kv__rotate(s, last + reserve + 1);
}

static int run(struct compactor *c, bool background)
{
    kv_store *s = c->s;
    bool skip;
    pthread_mutex_lock(&s->append_mu);
    int rc = begin(c, background, &skip);
    pthread_mutex_unlock(&s->append_mu);
    if (rc != 0 || skip)
        return rc;
    uint64_t avail = 0;
    rc = kv__io_free_space(s->dir, &avail);
    if (rc == 0 && avail < c->live_in + SPACE_MARGIN) {
        kv__log(s, KV_LOG_WARN, "compaction needs %llu bytes free, %llu are: not started",
                (unsigned long long)c->live_in + SPACE_MARGIN, (unsigned long long)avail);
        rc = KV_ENOSPC;
    }
    if (rc == 0) {
        c->wbuf = malloc(WRITE_BUF);
        c->stage_buf = malloc(STAGE_BYTES);
        c->staged = malloc(STAGE_RECORDS * sizeof(*c->staged));
        if (!c->wbuf || !c->stage_buf || !c->staged)
            rc = KV_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < c->nin; i++)
        rc = copy_input(c, c->inputs[i]);
    if (rc == 0)
        rc = finish_output(c);
    if (rc == 0)
        rc = publish_outputs(c);
    if (rc == 0)
        rc = add_outputs(c);
    if (rc != 0) {
        discard_outputs(c);
        if (rc != KV_EBUSY)
            kv__log(s, KV_LOG_ERROR, "compaction failed: %s; nothing changed", kv_strerror(rc));
        return rc;
    }
    relocate(c);
    retire_inputs(c);
    pthread_mutex_lock(&s->append_mu);
    int src = kv__snapshot_save_locked(s);
    pthread_mutex_unlock(&s->append_mu);
    if (src != 0)
        kv__log(s, KV_LOG_WARN, "snapshot after compaction failed: %s", kv_strerror(src));
    unlink_inputs(c);
    return 0;
}

static int compact(kv_store *s, bool background)
{
    pthread_mutex_lock(&s->compact_mu);
    uint64_t t0 = now_ms();
    struct compactor c = {.s = s, .in_fd = -1, .out_fd = -1};
    int rc = atomic_load(&s->compact_cancel) ? KV_EBUSY : run(&c, background);
    if (rc == 0 && c.nin > 0) {
        uint64_t written = 0;
        for (size_t i = 0; i < c.nouts; i++)
            written += c.out_sizes[i];
        uint64_t ms = now_ms() - t0;
        atomic_fetch_add(&s->n_compactions, 1);
        atomic_fetch_add(&s->compaction_read, c.bytes_in);
        atomic_fetch_add(&s->compaction_written, written);
        atomic_fetch_add(&s->compaction_reclaimed, c.bytes_in - written);
        atomic_store(&s->last_compaction_ms, ms);
        kv__log(s, KV_LOG_INFO,
                "compaction: %zu segments (%llu bytes) into %zu (%llu bytes) in %llu ms", c.nin,
                (unsigned long long)c.bytes_in, c.nouts, (unsigned long long)written,
                (unsigned long long)ms);
    }
    compactor_free(&c);
    pthread_mutex_unlock(&s->compact_mu);
    return rc;
}

int kv__compact_if_worthwhile(kv_store *s)
{
    return compact(s, true);
}

int kv_compact(kv_store *s)
{
    if (!s)
        return KV_EINVAL;
    return compact(s, false);
}

/* ---- the background compactor */

static void *compactor_main(void *arg)
{
    kv_store *s = arg;
    pthread_mutex_lock(&s->bg_mu);
    while (!s->bg_stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)s->opts.compaction_interval_secs;
        pthread_cond_timedwait(&s->bg_cv, &s->bg_mu, &until);
        if (s->bg_stop)
            break;
        pthread_mutex_unlock(&s->bg_mu);
        int rc = kv__compact_if_worthwhile(s);
        if (rc != 0 && rc != KV_EBUSY)
            kv__log(s, KV_LOG_WARN, "background compaction: %s", kv_strerror(rc));
        pthread_mutex_lock(&s->bg_mu);
    }
    pthread_mutex_unlock(&s->bg_mu);
    return NULL;
}

int kv__start_compactor(kv_store *s)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int r = pthread_cond_init(&s->bg_cv, &attr);
    pthread_condattr_destroy(&attr);
    if (r != 0)
        return KV_ENOMEM;
    pthread_mutex_init(&s->bg_mu, NULL);
    s->bg_stop = false;
    if (pthread_create(&s->bg_thread, NULL, compactor_main, s) != 0) {
        pthread_cond_destroy(&s->bg_cv);
        pthread_mutex_destroy(&s->bg_mu);
        return KV_ENOMEM;
    }
    s->bg_running = true;
    return 0;
}

void kv__stop_compactor(kv_store *s)
{
    atomic_store(&s->compact_cancel, true);
    if (!s->bg_running)
        return;
    pthread_mutex_lock(&s->bg_mu);
    s->bg_stop = true;
    pthread_cond_signal(&s->bg_cv);
    pthread_mutex_unlock(&s->bg_mu);
    pthread_join(s->bg_thread, NULL);
    pthread_cond_destroy(&s->bg_cv);
    pthread_mutex_destroy(&s->bg_mu);
    s->bg_running = false;
}
