/*
 * compaction.c - rewrites the live records of every segment into new
 * segments and removes the old ones, beside live traffic.
 *
 * Only two short moments take append_mu: sealing the active segment at the
 * start, and writing the snapshot at the end. The rest runs while readers and
 * writers go on; the index is read and updated in short pieces under the
 * rwlock, and an entry moves to its copy only if it still names the record
 * that was copied, so a write made meanwhile wins. A reader that pinned a
 * segment being removed still reads it: its descriptor closes with its last
 * reader.
 *
 * Every step leaves a directory that opens to the same contents:
 *
 *   0. with compression on, a dictionary is trained from the store's values
 *      and, if it pays, becomes the current one (dict_train.c); writers
 *      that still hold the previous one finish first, so every record that
 *      names an older dictionary lies in an input;
 *   1. the free space is checked against the live bytes (not enough: the
 *      compaction is refused with KV_ENOSPC, nothing changed); the active
 *      segment H is sealed and writers move to segment H+1+R, so
 *      ids H+1 .. H+R are free for the outputs: inputs are every segment up
 *      to H, outputs sort after every input and before every new write;
 *   2. live records are copied into outputs written as .tmp files and fsynced
 *      (a crash here leaves .tmp files, removed at open; compaction_copy.c).
 *      The copy is driven by the index, not by a scan of the inputs:
 *      a. the index is walked a hash range per read-lock hold
 *         (kv__walk_index_shared: tens of microseconds each), and every
 *         entry that names an input is noted. Nothing live is missed though the index changes
 *         (and even grows) between two ranges: after step 1 no entry comes to
 *         name an input (writes go to segments after H), so the entries that
 *         name inputs only ever leave that set, by an overwrite (the key then
 *         lives in a newer segment) or a delete. A key's range is fixed by
 *         its hash, wherever its slot moves, and each range is read whole
 *         under one lock hold; so an entry that still names an input when
 *         its range is walked is noted, and one that no longer does needs no
 *         copy. Every entry naming an input at step 4 was thus noted;
 *      b. the notes are sorted by (segment, offset), and the inputs read in
 *         large reads that cover neighbouring live records and the short dead
 *         gaps between them (dead records are never checksummed);
 *      c. each record's header and checksum are verified before it is copied.
 *         One that fails is not copied: its key still names an input after
 *         step 4 and is dropped then, as when the record was found damaged
 *         by a scan. Tombstones are never in the index, so none is copied.
 *         A SETX is copied as it is, unless (compress.c, kv__value_recode)
 *         its expiry has passed: then it is dropped, and its key leaves the
 *         index at step 4 (if it still names that record). Every older
 *         record of the key is an input and goes too, so nothing comes back;
 *         but when inputs of an earlier compaction are still on disk (their
 *         unlink failed, and a replay of the whole log would read them), a
 *         tombstone takes its place in the outputs. With compression on, a
 *         value stored raw is compressed, and one compressed by a writer
 *         (at the store's level) or with another dictionary than the
 *         current is recompressed with it, at compaction's higher level
 *         (a dense frame, copied as it is from then on). The newest
 *         META record of each name in the inputs is copied too;
 *   3. outputs are renamed into place and the directory fsynced: they hold,
 *      for each key they hold, its newest value as of step 1, so replaying
 *      inputs and outputs together gives the same result;
 *   4. the index moves to the outputs (in batches under the write lock) and
 *      the snapshot is rewritten naming only segments that stay;
 *   5. inputs are unlinked oldest first, the directory fsynced after each,
 *      on a second thread while step 4 writes the snapshot: unlinking takes
 *      tens of milliseconds per segment (the kernel frees its cached pages),
 *      and the two need no order, since a snapshot that names a segment that
 *      is gone is refused at open, which then replays the whole log.
 *      Tombstones were dropped at step 2: that is safe because every segment
 *      older than them is an input too; and since a crash in step 5 leaves
 *      only the newest inputs behind, a deleted key's last record among them
 *      is still its tombstone, so no deleted key comes back. Inputs that
 *      cannot be removed are noted (stale_segs) and removed first by the
 *      next compaction;
 *   6. dictionaries that no record in the outputs names left the table
 *      after step 4, so the snapshot does not list them; their files are
 *      removed once that snapshot is durable and every input is gone.
 */
#include "compaction.h"
#include "compaction_copy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compress.h"
#include "debug.h"
#include "dict.h"
#include "dict_train.h"
#include "index.h"
#include "io.h"
#include "keydir.h"
#include "logging.h"
#include "meta.h"
#include "read.h"
#include "record.h"
#include "rwlock.h"
#include "segment.h"
#include "snapshot.h"
#include "store.h"
#include "thread.h"
#include "write.h"

/* Lookups of the relocation started ahead of the one being made. */
#define RELOCATE_AHEAD 8
#define SPACE_MARGIN   (1u << 20)
#define RELOCATE_BATCH 4096
/* Live data that makes a store with compression on and no dictionary worth
 * a compaction, to train one. */
#define DICT_TRIGGER_BYTES (8u << 20)

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Points each carried META name at its copy, unless a newer one was written
 * meanwhile. */
static void relocate_metas(struct compactor *c)
{
    kv_store *s = c->s;
    kv__wrlock(&s->rwlock);
    for (size_t i = 0; i < c->nmetas; i++) {
        const struct carried_meta *m = &c->metas[i];
        struct kv_meta *e = kv__meta_find(&s->metas, m->name, m->name_len);
        if (!e || e->seg != m->seg || e->off != m->off)
            continue;
        struct segment *from = kv__segtab_find(s, m->seg), *to = kv__segtab_find(s, m->new_seg);
        if (!ALWAYS(from && to))
            continue;
        from->live_bytes -= kv__meta_record_size(e);
        to->live_bytes += kv__meta_record_size(e);
        e->seg = m->new_seg;
        e->off = m->new_off;
    }
    kv__unlock(&s->rwlock);
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
    kv__wrlock(&s->rwlock);
    if (rc == 0)
        rc = grow((void **)&s->segs, &s->segs_cap, s->nsegs + c->nouts, sizeof(*s->segs));
    for (size_t i = 0; rc == 0 && i < c->nouts; i++)
        kv__segtab_add(s, outs[i]); /* cannot fail: room was made above */
    kv__unlock(&s->rwlock);
    if (rc != 0)
        for (size_t i = 0; outs && i < c->nouts; i++)
            free(outs[i]);
    free(outs);
    return rc;
}

/* Moves index entries to their copies, a batch per write-lock hold, so that
 * readers and writers wait microseconds, not the whole pass. The keys are
 * hashed before the lock is taken, and the lookups' slots and entries are
 * prefetched a few records ahead, so that their cache misses overlap. */
static void relocate(struct compactor *c)
{
    KV_ASSERT(!kv__rwlock_held(&c->s->rwlock));
    kv_store *s = c->s;
    uint64_t hashes[RELOCATE_BATCH];
    const uint8_t *keys[RELOCATE_BATCH];
    struct live *batch[RELOCATE_BATCH];
    const uint8_t *key = c->keys;
    size_t i = 0;
    while (i < c->nlive) {
        size_t n = 0;
        for (; i < c->nlive && n < RELOCATE_BATCH; i++) {
            if (!c->live[i].copied && !c->live[i].expired)
                continue;
            batch[n] = &c->live[i];
            keys[n] = key;
            hashes[n++] = index_hash(key, c->live[i].key_len);
            key += c->live[i].key_len;
        }
        struct segment *from = NULL, *to = NULL;
        kv__wrlock(&s->rwlock);
        for (size_t k = 0; k < n && k < 2 * RELOCATE_AHEAD; k++)
            index_prefetch_slot(&s->index, hashes[k]);
        for (size_t k = 0; k < n && k < RELOCATE_AHEAD; k++)
            index_prefetch_entry(&s->index, hashes[k]);
        for (size_t k = 0; k < n; k++) {
            if (k + 2 * RELOCATE_AHEAD < n)
                index_prefetch_slot(&s->index, hashes[k + 2 * RELOCATE_AHEAD]);
            if (k + RELOCATE_AHEAD < n)
                index_prefetch_entry(&s->index, hashes[k + RELOCATE_AHEAD]);
            const struct live *r = batch[k];
            struct index_entry *e = index_lookup(&s->index, hashes[k], keys[k], r->key_len);
            if (!e || e->loc.seg != r->seg || index_entry_loc(e).off != r->off)
                continue; /* written again meanwhile: the newer record wins */
            if (r->expired) {
                kv__apply_delete(s, hashes[k], keys[k], r->key_len);
                continue;
            }
            index_entry_move(
                e,
                &(struct kv_loc){.seg = r->new_seg, .off = r->new_off, .val_len = r->new_val_len});
            if (!from || from->id != r->seg)
                from = kv__segtab_find(s, r->seg);
            if (!to || to->id != r->new_seg)
                to = kv__segtab_find(s, r->new_seg);
            if (!ALWAYS(from && to)) /* inputs and outputs are in the table */
                continue;
            to->live_bytes += record_size(r->key_len, r->new_val_len);
            from->live_bytes -= live_size(r);
        }
        kv__unlock(&s->rwlock);
    }
}

/* Drops keys whose entry still names an input after relocation: their record
 * there failed its checksum, so no copy exists. Write lock held. */
static void drop_orphans(struct compactor *c)
{
    KV_ASSERT(kv__rwlock_held_write(&c->s->rwlock));
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

/* Takes the inputs out of the table, then rebuilds the bloom filter without
 * the keys that are gone. */
static void retire_inputs(struct compactor *c)
{
    KV_ASSERT(!kv__rwlock_held(&c->s->rwlock));
    kv_store *s = c->s;
    kv__wrlock(&s->rwlock);
    bool orphans = false;
    for (size_t i = 0; i < c->nin; i++)
        orphans |= c->inputs[i]->live_bytes != 0;
    if (orphans)
        drop_orphans(c);
    for (size_t i = 0; i < c->nin; i++)
        kv__segtab_remove(s, c->inputs[i]);
    kv__unlock(&s->rwlock);
    /* Unmapping takes milliseconds: not under the lock. */
    for (size_t i = 0; i < c->nin; i++)
        kv__segment_retire(s, c->inputs[i]);
    if (kv__rebuild_bloom_shared(s) != 0)
        kv__log(s, KV_LOG_WARN,
                "compaction: no memory to rebuild the bloom filter; the old one stays");
}

/* ---- step 5 */

/* Remembers the segments of ids as left on disk by a compaction: they are
 * out of the table, but a replay of the whole log would still read them.
 * Without the memory to note them, every later compaction acts as if some
 * were left. compact_mu held (by the compaction this helps). */
static void note_stale(kv_store *s, const uint32_t *ids, size_t n)
{
    uint32_t *grown = realloc(s->stale_segs, (s->nstale + n) * sizeof(*grown));
    if (!grown) {
        s->stale_unknown = true;
        return;
    }
    memcpy(grown + s->nstale, ids, n * sizeof(*ids));
    s->stale_segs = grown;
    s->nstale += n;
}

/* Unlinks segment id and fsyncs the directory; 0, or a code with errno. */
static int remove_segment(kv_store *s, uint32_t id)
{
    char path[4096];
    int rc = kv__segment_path(s->dir, id, false, path, sizeof(path));
    if (rc == 0 && s->io->unlink(s->io->ctx, path) != 0 && errno != ENOENT)
        rc = kv__errno_to_rc(errno);
    if (rc == 0)
        rc = kv__io_sync_dir(s->io, s->dir);
    return rc;
}

static void *unlink_inputs(void *arg)
{
    struct compactor *c = arg;
    kv_store *s = c->s;
    for (size_t i = 0; i < c->nin; i++) {
        if (remove_segment(s, c->in_ids[i]) != 0) {
            kv__log(s, KV_LOG_WARN,
                    "compaction: cannot remove segment %u: %s (it holds only older copies; the "
                    "next compaction tries again)",
                    c->in_ids[i], strerror(errno));
            note_stale(s, c->in_ids + i, c->nin - i);
            return NULL;
        }
    }
    return NULL;
}

/* Removes the segments earlier compactions left on disk, oldest first (so
 * that, as in step 5, those left are the newest); those that still resist
 * stay on the list. */
static void retry_stale(kv_store *s)
{
    size_t done = 0;
    while (done < s->nstale && remove_segment(s, s->stale_segs[done]) == 0)
        done++;
    if (done == 0)
        return;
    memmove(s->stale_segs, s->stale_segs + done, (s->nstale - done) * sizeof(*s->stale_segs));
    s->nstale -= done;
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
    if (c->in_fd >= 0)
        c->s->io->close(c->s->io->ctx, c->in_fd);
    free(c->live);
    free(c->wbuf);
    free(c->rbuf);
    free(c->keys);
    free(c->xbuf);
    free(c->named);
    for (size_t i = 0; i < c->nmetas; i++) {
        free(c->metas[i].name);
        free(c->metas[i].val);
    }
    free(c->metas);
    kv__dict_put(c->dict);
}

/* With compression on and no dictionary yet, a store that holds enough
 * live data to train one is compacted for it, though nothing is dead: that
 * is when a dictionary is trained and values recompressed with it. After an
 * attempt that gave none, not again until the live data has doubled. */
static bool dictionary_due(const kv_store *s, uint64_t live)
{
    if (s->opts.compression != KV_COMPRESS_ZSTD || live < DICT_TRIGGER_BYTES ||
        live < 2 * atomic_load(&s->dict_tried_live))
        return false;
    struct kv_dict *d = kv__dict_current((kv_store *)s);
    kv__dict_put(d);
    return d == NULL;
}

/* Whether the background trigger fires. Caller holds the rwlock. */
static bool worth_compacting(const kv_store *s)
{
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    uint64_t disk = 0, live = 0;
    for (size_t i = 0; i < s->nsegs; i++) {
        disk += atomic_load(&s->segs[i]->size);
        live += s->segs[i]->live_bytes;
    }
    uint64_t dead = disk > live ? disk - live : 0;
    if (dictionary_due(s, live))
        return true;
    if (dead == 0)
        return false;
    const kv_options *o = &s->opts;
    bool by_count = o->compaction_threshold > 0 && s->nsegs >= o->compaction_threshold &&
                    dead >= o->segment_size;
    bool by_ratio =
        o->compaction_dead_ratio > 0 && (double)dead >= o->compaction_dead_ratio * (double)disk;
    return by_count || by_ratio;
}

/* Whether a compaction would run: for the background trigger when it
 * fires; on demand unless the only segment holds nothing dead and
 * compression is off (with it on, a compaction also trains a dictionary and
 * recompresses). Caller holds the rwlock. */
static bool wanted_locked(const kv_store *s, bool background)
{
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    if (background)
        return worth_compacting(s);
    return s->opts.compression == KV_COMPRESS_ZSTD ||
           !(s->nsegs == 1 && s->segs[0]->live_bytes == atomic_load(&s->segs[0]->size));
}

/* Refuses a compaction whose live data would not fit the free space. */
static int check_free_space(const struct compactor *c)
{
    kv_store *s = c->s;
    uint64_t avail = 0;
    int rc = kv__io_free_space(s->io, s->dir, &avail);
    if (rc != 0) {
        kv__log(s, KV_LOG_ERROR, "compaction: cannot learn the free space of %s: %s", s->dir,
                kv_strerror(rc));
        return rc;
    }
    if (avail < c->live_in + SPACE_MARGIN) {
        kv__log(s, KV_LOG_WARN, "compaction needs %llu bytes free, %llu are: not started",
                (unsigned long long)c->live_in + SPACE_MARGIN, (unsigned long long)avail);
        return KV_ENOSPC;
    }
    return 0;
}

/* Step 1, under append_mu: chooses the inputs, checks that their live data
 * fits the free space, and seals the active segment, leaving ids free for
 * the outputs. The check comes before the seal, so that a compaction refused
 * for space changes nothing. *skip is set when there is nothing to do. */
static int begin(struct compactor *c, bool background, bool *skip)
{
    KV_ASSERT(kv__mutex_held(&c->s->append_mu));
    kv_store *s = c->s;
    *skip = false;
    if (atomic_load(&s->read_only))
        return KV_EREADONLY;
    kv__rdlock(&s->rwlock);
    bool wanted = wanted_locked(s, background);
    size_t n = s->nsegs;
    c->inputs = malloc(n * sizeof(*c->inputs));
    c->in_ids = malloc(n * sizeof(*c->in_ids));
    if (wanted && c->inputs && c->in_ids) {
        c->nin = n;
        memcpy(c->inputs, s->segs, n * sizeof(*c->inputs));
        for (size_t i = 0; i < n; i++) {
            c->in_ids[i] = c->inputs[i]->id;
            c->live_in += c->inputs[i]->live_bytes;
            c->disk_in += atomic_load(&c->inputs[i]->size);
        }
    }
    kv__unlock(&s->rwlock);
    if (!wanted) {
        *skip = true;
        return 0;
    }
    if (!c->inputs || !c->in_ids)
        return KV_ENOMEM;
    int rc = check_free_space(c);
    if (rc != 0)
        return rc;
    /* Each output holds at least one record and outputs are filled to the
     * segment size, so twice the inputs (plus slack) is more than enough. */
    uint32_t last = c->in_ids[n - 1];
    uint32_t reserve = (uint32_t)(2 * n + 16);
    c->next_id = last + 1;
    c->last_id = last + reserve;
    return kv__rotate(s, last + reserve + 1);
}

/* Before step 1, with compression on: a dictionary trained from the store's
 * values, installed if it pays (dict_train.c). Installing waits for the
 * writers that hold the previous one, so every record naming an older
 * dictionary lies before the seal of step 1: in an input. */
static void prepare_dictionary(struct compactor *c, bool background)
{
    kv_store *s = c->s;
    bool wanted = false;
    if (s->opts.compression == KV_COMPRESS_ZSTD) {
        kv__rdlock(&s->rwlock);
        wanted = wanted_locked(s, background);
        kv__unlock(&s->rwlock);
        int rc = wanted ? kv__dict_train(s) : 0;
        if (rc != 0)
            kv__log(s, KV_LOG_WARN, "compaction: no dictionary trained: %s", kv_strerror(rc));
    }
    c->dict = kv__dict_current(s);
    if (wanted && !c->dict) { /* dictionary_due waits for twice as much data */
        kv__rdlock(&s->rwlock);
        uint64_t live = 0;
        for (size_t i = 0; i < s->nsegs; i++)
            live += s->segs[i]->live_bytes;
        kv__unlock(&s->rwlock);
        atomic_store(&s->dict_tried_live, live);
    }
}

/* After step 4: the dictionaries no record in the outputs names leave the
 * table (every other record naming them was in an input, and no reader
 * still reads an input: retire_inputs waited for them). Their ids go to
 * *gone, for removal once no snapshot and no segment on disk names them. */
static void forget_dictionaries(struct compactor *c, uint32_t **gone, size_t *ngone)
{
    *gone = NULL;
    *ngone = 0;
    if (kv__dict_drop_except(c->s, c->named, c->nnamed, gone, ngone) != 0)
        *ngone = 0; /* out of memory: they stay, for the next compaction */
}

static int run(struct compactor *c, bool background)
{
    kv_store *s = c->s;
    bool skip;
    retry_stale(s);
    c->tombstones = s->nstale > 0 || s->stale_unknown;
    c->now_ms = kv__now_ms(s);
    prepare_dictionary(c, background);
    kv__mutex_lock(&s->append_mu);
    int rc = begin(c, background, &skip);
    kv__mutex_unlock(&s->append_mu);
    if (rc != 0 || skip)
        return rc;
    atomic_store(&s->compacting, true);
    c->wbuf = malloc(WRITE_BUF);
    if (!c->wbuf)
        rc = KV_ENOMEM;
    if (rc == 0)
        rc = kv__compaction_collect(c);
    if (rc == 0)
        rc = kv__compaction_copy(c);
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
    relocate_metas(c);
    retire_inputs(c);
    uint32_t *gone;
    size_t ngone;
    forget_dictionaries(c, &gone, &ngone);
    /* Steps 4 and 5 overlap: the inputs are unlinked on a second thread while
     * the snapshot is written (see the top comment). */
    pthread_t unlinker;
    bool threaded = pthread_create(&unlinker, NULL, unlink_inputs, c) == 0;
    kv__mutex_lock(&s->append_mu);
    int src = kv__snapshot_save_locked(s);
    kv__mutex_unlock(&s->append_mu);
    if (src != 0)
        kv__log(s, KV_LOG_WARN, "snapshot after compaction failed: %s", kv_strerror(src));
    if (threaded)
        pthread_join(unlinker, NULL);
    else
        unlink_inputs(c);
    /* A dictionary file goes once a snapshot that does not list it is
     * durable and no segment naming it is left on disk. */
    if (src == 0 && s->nstale == 0 && !s->stale_unknown)
        kv__dict_unlink(s, gone, ngone);
    free(gone);
    return 0;
}

static int compact(kv_store *s, bool background)
{
    kv__mutex_lock(&s->compact_mu);
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
        atomic_fetch_add(&s->compaction_reclaimed, c.disk_in - written);
        atomic_store(&s->last_compaction_ms, ms);
        atomic_store(&s->last_compaction_reclaimed, c.disk_in - written);
        kv__log(s, KV_LOG_INFO,
                "compaction: %zu segments (%llu bytes, %llu read) into %zu (%llu bytes) in %llu ms",
                c.nin, (unsigned long long)c.disk_in, (unsigned long long)c.bytes_in, c.nouts,
                (unsigned long long)written, (unsigned long long)ms);
    }
    /* A compaction that had nothing to do, or was cancelled by kv_close, is
     * no outcome: the last one that chose its inputs or failed stays. */
    if (c.nin > 0 || (rc != 0 && rc != KV_EBUSY))
        atomic_store(&s->last_compaction_error, rc);
    atomic_store(&s->compacting, false);
    compactor_free(&c);
    kv__mutex_unlock(&s->compact_mu);
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

static void compactor_task(void *arg)
{
    kv_store *s = arg;
    int rc = kv__compact_if_worthwhile(s);
    if (rc != 0 && rc != KV_EBUSY)
        kv__log(s, KV_LOG_WARN, "background compaction: %s", kv_strerror(rc));
}

int kv__start_compactor(kv_store *s)
{
    return kv__bgthread_start(&s->compactor, (uint64_t)s->opts.compaction_interval_secs * 1000u,
                              compactor_task, s);
}

void kv__stop_compactor(kv_store *s)
{
    atomic_store(&s->compact_cancel, true);
    kv__bgthread_stop(&s->compactor);
}
