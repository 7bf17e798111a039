/*
 * store.c - the handle's life (open, close) and the single-key operations:
 * put, get, exists, delete, sync, statistics.
 *
 * Reads take the rwlock only to look the key up and pin its segment; the
 * copy (out of the segment's mapping, or by pread) and the checksum run
 * without any lock (read.c), so readers never wait for a writer's
 * fdatasync, and writers wait for readers only during the few instructions
 * of a lookup.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "debug.h"
#include "bloom.h"
#include "commit.h"
#include "compaction.h"
#include "compress.h"
#include "dict.h"
#include "dirlock.h"
#include "expire.h"
#include "index.h"
#include "io.h"
#include "keydir.h"
#include "logend.h"
#include "logging.h"
#include "meta.h"
#include "read.h"
#include "record.h"
#include "recovery.h"
#include "rwlock.h"
#include "segment.h"
#include "snapshot.h"
#include "store.h"
#include "thread.h"
#include "write.h"

#define MIN_SEGMENT_SIZE (4u << 10)
#define MAX_SEGMENT_SIZE (2ull << 30)

void kv_options_init(kv_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->sync_mode = KV_SYNC_ALWAYS;
    opts->sync_interval_ms = 100;
    opts->segment_size = 64ull << 20;
    opts->max_open_files = 256;
    opts->bloom_bits_per_key = 12;
    opts->compaction_interval_secs = 60;
    opts->compaction_threshold = 5;
    opts->compaction_dead_ratio = 0.5;
    opts->compression = KV_COMPRESS_NONE;
    opts->compression_min_size = 64;
    opts->compression_level = 3;
    opts->compaction_compression_level = DICT_DENSE_LEVEL;
    opts->segment_preallocate = 4ull << 20;
    opts->expiry_sweep_interval_ms = 1000;
    opts->log_level = KV_LOG_INFO;
}

static bool options_valid(const kv_options *o)
{
    return (o->sync_mode == KV_SYNC_ALWAYS || o->sync_mode == KV_SYNC_INTERVAL ||
            o->sync_mode == KV_SYNC_NONE) &&
           (o->sync_mode != KV_SYNC_INTERVAL || o->sync_interval_ms > 0) &&
           o->segment_size >= MIN_SEGMENT_SIZE && o->segment_size <= MAX_SEGMENT_SIZE &&
           o->max_open_files >= 4 && o->bloom_bits_per_key <= 64 && o->compaction_dead_ratio >= 0 &&
           o->compaction_dead_ratio <= 1 &&
           (o->compression == KV_COMPRESS_NONE || o->compression == KV_COMPRESS_ZSTD) &&
           o->compression_min_size >= 1 && o->compression_level >= 1 &&
           o->compression_level <= 19 && o->compaction_compression_level >= 0 &&
           o->compaction_compression_level <= 19 && o->segment_preallocate <= MAX_SEGMENT_SIZE;
}

static bool key_valid(const void *key, size_t key_len)
{
    return key && key_len >= 1 && key_len <= KV_MAX_KEY_LEN;
}

/* ---- open and close */

/* Creates the data directory (one level) unless it exists. */
static int make_dir(kv_store *s)
{
    if (s->io->mkdir(s->io->ctx, s->dir, 0755) == 0 || errno == EEXIST)
        return 0;
    int err = errno;
    kv__log(s, KV_LOG_ERROR, "cannot create directory %s: %s", s->dir, strerror(err));
    return kv__errno_to_rc(err);
}

static int init_sync(kv_store *s)
{
    int rc = kv__rwlock_init(&s->rwlock);
    if (rc == 0)
        rc = kv__commit_init(s);
    if (rc != 0)
        return rc;
    kv__mutex_init(&s->append_mu);
    kv__mutex_init(&s->seg_mu);
    kv__mutex_init(&s->queue_mu);
    kv__mutex_init(&s->compact_mu);
    return 0;
}

/* Frees everything s holds; the directory lock goes last. */
static void store_free(kv_store *s)
{
    kv__segtab_free(s);
    kv__dicts_close(s);
    kv__codec_free(s);
    free(s->stale_segs);
    index_destroy(&s->index);
    bloom_destroy(&s->bloom);
    kv__metas_clear(&s->metas);
    kv__logend_free(s);
    kv__rwlock_destroy(&s->rwlock);
    kv__commit_free(s);
    kv__mutex_destroy(&s->append_mu);
    kv__mutex_destroy(&s->seg_mu);
    kv__mutex_destroy(&s->queue_mu);
    kv__mutex_destroy(&s->compact_mu);
    kv__dirlock_release(s);
    free(s->dir);
    free(s);
}

int kv_open(const char *dir, const kv_options *opts, kv_store **out)
{
    if (!dir || !*dir || !out)
        return KV_EINVAL;
    kv_options defaults;
    kv_options_init(&defaults);
    if (!opts)
        opts = &defaults;
    struct kv_io io;
    if (!options_valid(opts) || kv__io_complete(opts->io, &io) != 0)
        return KV_EINVAL;
    kv_store *s = calloc(1, sizeof(*s));
    if (!s)
        return KV_ENOMEM;
    s->opts = *opts;
    s->io_table = io;
    s->io = &s->io_table;
    s->dir_lock_fd = -1;
    s->dir = strdup(dir);
    if (!s->dir || init_sync(s) != 0) {
        free(s->dir);
        free(s);
        return KV_ENOMEM;
    }
    int rc = index_init(&s->index);
    if (rc == 0)
        rc = kv__codec_init(s);
    if (rc == 0)
        rc = make_dir(s);
    if (rc == 0)
        rc = kv__dirlock_take(s);
    if (rc == 0)
        rc = kv__dicts_open(s);
    if (rc == 0)
        rc = kv__recover(s);
    /* A snapshot sizes the filter before loading; a full replay cannot know
     * the key count in advance, so the filter is built after it. */
    if (rc == 0 && (!s->snapshot_loaded || bloom_is_full(&s->bloom))) {
        kv__wrlock(&s->rwlock);
        rc = kv__rebuild_bloom(s);
        kv__unlock(&s->rwlock);
    }
    if (rc == 0)
        rc = kv__logend_init(s);
    if (rc == 0)
        rc = kv__prealloc_start(s);
    if (rc == 0)
        rc = kv__commit_start(s);
    if (rc == 0 && s->opts.sync_mode == KV_SYNC_INTERVAL)
        rc = kv__start_sync_thread(s);
    if (rc == 0 && s->opts.compaction_interval_secs > 0)
        rc = kv__start_compactor(s);
    if (rc == 0 && s->opts.expiry_sweep_interval_ms > 0)
        rc = kv__start_sweeper(s);
    if (rc != 0) {
        kv__stop_sweeper(s);
        kv__stop_compactor(s);
        kv__commit_stop(s);
        kv__stop_sync_thread(s);
        kv__prealloc_stop(s);
        store_free(s);
        return rc;
    }
    kv__log(s, KV_LOG_INFO, "opened %s: %zu keys in %zu segments%s", dir, s->index.count, s->nsegs,
            s->snapshot_loaded ? " (index from snapshot)" : "");
    *out = s;
    return 0;
}

int kv_close(kv_store *s)
{
    if (!s)
        return 0;
    /* Every accepted batch completes first, its callback included. */
    kv__commit_stop(s);
    kv__stop_compactor(s); /* first: a sweep waits for a compaction */
    kv__stop_sweeper(s);
    kv__stop_sync_thread(s);
    int rc = 0;
    kv__mutex_lock(&s->append_mu);
    /* A snapshot only after a successful sync: it records a log position,
     * which must be durable. */
    if (!atomic_load(&s->read_only)) {
        rc = kv__sync_active(s);
        if (rc == 0)
            rc = kv__snapshot_save_locked(s);
    }
    /* A closed directory holds only records: the zeros ahead go. */
    int prc = kv__prealloc_stop(s);
    if (rc == 0 && !atomic_load(&s->read_only))
        rc = prc;
    kv__mutex_unlock(&s->append_mu);
    store_free(s);
    return rc;
}

/* ---- single-key operations */

int kv_put_crc(kv_store *s, const void *key, size_t key_len, const void *val, size_t val_len,
               uint32_t *value_crc)
{
    if (!s || !key_valid(key, key_len) || (!val && val_len > 0))
        return KV_EINVAL;
    if (val_len > KV_MAX_VALUE_LEN)
        return KV_ETOOBIG;
    kv_op op = {
        .type = KV_WRITE_PUT, .key = key, .key_len = key_len, .val = val, .val_len = val_len};
    int rc = kv__write_ops(s, &op, 1, value_crc != NULL);
    if (rc == 0 && value_crc)
        *value_crc = op.value_crc;
    return rc;
}

int kv_put(kv_store *s, const void *key, size_t key_len, const void *val, size_t val_len)
{
    return kv_put_crc(s, key, key_len, val, val_len, NULL);
}

int kv_exists(kv_store *s, const void *key, size_t key_len)
{
    if (!s || !key_valid(key, key_len))
        return KV_EINVAL;
    uint64_t h = index_hash(key, key_len);
    uint64_t now = kv__now_ms(s);
    kv__rdlock(&s->rwlock);
    const struct index_entry *e =
        bloom_may_contain(&s->bloom, h) ? index_lookup(&s->index, h, key, key_len) : NULL;
    bool found = e && !index_entry_expired(&s->index, e, now);
    kv__unlock(&s->rwlock);
    return found ? 0 : KV_ENOTFOUND;
}

int kv_delete(kv_store *s, const void *key, size_t key_len)
{
    if (!s || !key_valid(key, key_len))
        return KV_EINVAL;
    /* Whether the key exists is decided with the write, in its round
     * (commit.c): a delete of an absent key writes nothing. */
    kv_op op = {.type = KV_WRITE_DEL, .key = key, .key_len = key_len};
    int rc = kv__write_ops(s, &op, 1, false);
    return rc != 0 ? rc : op.rc;
}

int kv_get_crc(kv_store *s, const void *key, size_t key_len, void **val, size_t *val_len,
               uint32_t *value_crc)
{
    if (!s || !key_valid(key, key_len) || !val || !val_len)
        return KV_EINVAL;
    atomic_fetch_add_explicit(&s->n_gets, 1, memory_order_relaxed);
    struct read_at at;
    uint8_t *buf = NULL;
    size_t len = 0;
    uint32_t vcrc = 0;
    kv__rdlock(&s->rwlock);
    int rc = kv__locate(s, key, key_len, &at);
    if (rc == 0)
        rc = kv__read_begin(s, &at, key_len);
    kv__unlock(&s->rwlock);
    if (rc != 0)
        return rc;
    rc = kv__read_value(s, &at, key, key_len, &buf, &len, value_crc ? &vcrc : NULL);
    kv__read_end(s, &at);
    if (rc != 0)
        return rc;
    *val = buf;
    *val_len = len;
    if (value_crc)
        *value_crc = vcrc;
    return 0;
}

int kv_stat(kv_store *s, const void *key, size_t key_len, kv_stat_info *out)
{
    if (!s || !key_valid(key, key_len) || !out)
        return KV_EINVAL;
    struct read_at at;
    kv__rdlock(&s->rwlock);
    int rc = kv__locate(s, key, key_len, &at);
    if (rc == 0)
        rc = kv__read_begin(s, &at, key_len);
    kv__unlock(&s->rwlock);
    if (rc != 0)
        return rc;
    kv_stat_info st;
    rc = kv__read_stat(s, &at, key, key_len, &st);
    kv__read_end(s, &at);
    if (rc == 0 && st.expire_at_ms != 0 && st.expire_at_ms <= kv__now_ms(s))
        rc = KV_ENOTFOUND; /* as kv_get finds it */
    if (rc == 0) {
        st.position = kv__position_of(&at.loc);
        *out = st;
    }
    return rc;
}

int kv_get(kv_store *s, const void *key, size_t key_len, void **val, size_t *val_len)
{
    return kv_get_crc(s, key, key_len, val, val_len, NULL);
}

void kv_free(void *p)
{
    free(p);
}

int kv_sync(kv_store *s)
{
    return s ? kv__append_path_run(s, kv__sync_active) : KV_EINVAL;
}

int kv_get_stats(kv_store *s, kv_stats *out)
{
    if (!s || !out)
        return KV_EINVAL;
    kv_stats st;
    memset(&st, 0, sizeof(st));
    uint64_t now = kv__now_ms(s);
    kv__rdlock(&s->rwlock);
    /* Expired keys not swept yet are absent: counted out here. */
    size_t passed = expiry_count_passed(&s->index.expiries, now);
    st.keys = s->index.count - passed;
    st.expiring_keys = s->index.expiries.count - passed;
    st.segments = s->nsegs;
    for (size_t i = 0; i < s->nsegs; i++) {
        st.disk_bytes += atomic_load(&s->segs[i]->size);
        st.live_bytes += s->segs[i]->live_bytes;
    }
    st.active_segment_id = s->active ? s->active->id : 0;
    st.oldest_segment_id = s->nsegs ? s->segs[0]->id : 0;
    st.bloom_bytes = bloom_memory(&s->bloom);
    st.index_bytes = index_memory(&s->index) + st.bloom_bytes;
    st.bloom_capacity = s->bloom.capacity;
    kv__unlock(&s->rwlock);
    st.dead_bytes = st.disk_bytes > st.live_bytes ? st.disk_bytes - st.live_bytes : 0;
    st.bloom_negatives = atomic_load(&s->n_bloom_negatives);
    st.bloom_false_positives = atomic_load(&s->n_bloom_false_positives);
    st.checksum_errors = atomic_load(&s->n_checksum_errors);
    st.torn_bytes_truncated = s->torn_bytes_truncated;
    st.fsyncs = atomic_load(&s->n_fsyncs);
    st.prealloc_syncs = atomic_load(&s->n_prealloc_syncs);
    st.prealloc_bytes = atomic_load(&s->n_prealloc_bytes);
    st.puts = atomic_load(&s->n_puts);
    st.deletes = atomic_load(&s->n_deletes);
    st.gets = atomic_load(&s->n_gets);
    st.expired_swept = atomic_load(&s->n_expired_swept);
    st.records_replayed = s->records_replayed;
    st.compactions = atomic_load(&s->n_compactions);
    st.compaction_bytes_read = atomic_load(&s->compaction_read);
    st.compaction_bytes_written = atomic_load(&s->compaction_written);
    st.compaction_bytes_reclaimed = atomic_load(&s->compaction_reclaimed);
    st.last_compaction_ms = atomic_load(&s->last_compaction_ms);
    st.snapshot_loaded = s->snapshot_loaded;
    st.read_only = atomic_load(&s->read_only);
    st.compacting = atomic_load(&s->compacting);
    st.last_compaction_error = atomic_load(&s->last_compaction_error);
    st.last_compaction_reclaimed = atomic_load(&s->last_compaction_reclaimed);
    struct statvfs fs;
    if (s->io->statvfs(s->io->ctx, s->dir, &fs) == 0) {
        st.disk_free_bytes = (uint64_t)fs.f_bavail * (uint64_t)fs.f_frsize;
        st.disk_size_bytes = (uint64_t)fs.f_blocks * (uint64_t)fs.f_frsize;
    }
    *out = st;
    return 0;
}

int kv_get_segment_stats(kv_store *s, kv_segment_stats *out, size_t max, size_t *count)
{
    if (!s || !count || (!out && max > 0))
        return KV_EINVAL;
    kv__rdlock(&s->rwlock);
    size_t n = s->nsegs;
    for (size_t i = 0; i < n && i < max; i++) {
        const struct segment *seg = s->segs[i];
        out[i] = (kv_segment_stats){.id = seg->id,
                                    .disk_bytes = atomic_load(&seg->size),
                                    .live_bytes = seg->live_bytes,
                                    .active = seg == s->active};
    }
    kv__unlock(&s->rwlock);
    *count = n;
    return 0;
}

/* ---- engine metadata (meta.c keeps the table) */

int kv_meta_put(kv_store *s, const void *name, size_t name_len, const void *val, size_t val_len)
{
    if (!s || !name || name_len < 1 || name_len > KV_MAX_KEY_LEN || (!val && val_len > 0))
        return KV_EINVAL;
    if (val_len > KV_MAX_META_LEN)
        return KV_ETOOBIG;
    return kv__write_meta(s, name, name_len, val, val_len);
}

int kv_meta_get(kv_store *s, const void *name, size_t name_len, void **val, size_t *val_len)
{
    if (!s || !name || name_len < 1 || name_len > KV_MAX_KEY_LEN || !val || !val_len)
        return KV_EINVAL;
    kv__rdlock(&s->rwlock);
    const struct kv_meta *e = kv__meta_find(&s->metas, name, name_len);
    uint8_t *copy = e ? malloc(e->val_len + 1) : NULL;
    size_t len = e ? e->val_len : 0;
    if (copy) {
        memcpy(copy, e->val, len);
        copy[len] = 0;
    }
    kv__unlock(&s->rwlock);
    if (!e)
        return KV_ENOTFOUND;
    if (!copy)
        return KV_ENOMEM;
    *val = copy;
    *val_len = len;
    return 0;
}
