/*
 * test_recovery.c - what kv_open makes of a directory after a crash or after
 * damage: torn tails are cut, damaged records in sealed segments are skipped
 * and reported, snapshots are trusted only when everything agrees, foreign and
 * unknown data are recognised, and the directory lock keeps a second owner out.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "record.h"
#include "testutil.h"

/* ---- the model: what every key must read back as */

#define MODEL_KEYS 256
#define MODEL_VMAX 128

struct model {
    int nkeys;
    bool live[MODEL_KEYS];
    size_t len[MODEL_KEYS];
    uint8_t val[MODEL_KEYS][MODEL_VMAX];
};

static void key_of(int i, char *buf, size_t len)
{
    snprintf(buf, len, "key-%03d", i);
}

/* A value that depends on (i, version) and never holds a 0xF0 byte, so that no
 * magic appears inside a record by chance. */
static void value_of(int i, int version, size_t len, uint8_t *out)
{
    for (size_t j = 0; j < len; j++)
        out[j] = (uint8_t)('a' + ((size_t)(i * 7 + version * 13) + j) % 26);
}

static void model_put(kv_store *s, struct model *m, int i, int version, size_t vlen)
{
    char k[16];
    assert_true(i < MODEL_KEYS);
    assert_true(vlen <= MODEL_VMAX);
    key_of(i, k, sizeof(k));
    value_of(i, version, vlen, m->val[i]);
    assert_kv_ok(kv_put(s, k, strlen(k), m->val[i], vlen));
    m->live[i] = true;
    m->len[i] = vlen;
    if (i >= m->nkeys)
        m->nkeys = i + 1;
}

static void model_delete(kv_store *s, struct model *m, int i)
{
    char k[16];
    key_of(i, k, sizeof(k));
    assert_kv_rc(kv_delete(s, k, strlen(k)), m->live[i] ? 0 : KV_ENOTFOUND);
    m->live[i] = false;
}

static void assert_absent(kv_store *s, const char *key)
{
    void *v = NULL;
    size_t n = 0;
    int rc = kv_get(s, key, strlen(key), &v, &n);
    if (rc == 0)
        kv_free(v);
    assert_kv_rc(rc, KV_ENOTFOUND);
}

static uint64_t model_live_count(const struct model *m)
{
    uint64_t n = 0;
    for (int i = 0; i < m->nkeys; i++)
        n += m->live[i];
    return n;
}

/* Every key of the model reads back exactly, every other one is absent, and
 * the store holds no key the model does not. */
static void assert_matches_model(kv_store *s, const struct model *m)
{
    char k[16];
    for (int i = 0; i < m->nkeys; i++) {
        key_of(i, k, sizeof(k));
        if (m->live[i])
            tu_assert_value(s, k, m->val[i], m->len[i]);
        else
            assert_absent(s, k);
    }
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_int_equal(st.keys, model_live_count(m));
}

/* ---- files and directories */

static char *segment_file(const char *dir, uint64_t id)
{
    char name[64];
    snprintf(name, sizeof(name), "segment-%llu.dat", (unsigned long long)id);
    return tu_path(dir, name);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void remove_file(const char *dir, const char *name)
{
    char *p = tu_path(dir, name);
    if (unlink(p) != 0)
        assert_int_equal(errno, ENOENT);
    free(p);
}

/* Copies every regular file of src but LOCK into dst (created), the way a
 * crash leaves a directory: what was written is there, the lock is not. */
static void copy_dir(const char *src, const char *dst)
{
    assert_int_equal(mkdir(dst, 0755), 0);
    DIR *d = opendir(src);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "LOCK") == 0)
            continue;
        char *from = tu_path(src, de->d_name), *to = tu_path(dst, de->d_name);
        size_t n;
        uint8_t *bytes = tu_read_file(from, &n);
        tu_write_file(to, bytes, n);
        free(bytes);
        free(from);
        free(to);
    }
    closedir(d);
}

static kv_options small_segments(uint64_t size)
{
    kv_options o;
    kv_options_init(&o);
    o.segment_size = size;
    return o;
}

static kv_stats stats_of(kv_store *s)
{
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    return st;
}

static kv_snapshot_status snapshot_status(const char *dir)
{
    kv_snapshot_status st = KV_SNAPSHOT_ABSENT;
    char why[160] = "";
    assert_kv_ok(kv_check_snapshot(dir, &st, NULL, why, sizeof(why)));
    return st;
}

/* ---- kv_scan results */

struct rec {
    uint64_t seg, off, len;
    kv_record_status status;
    uint8_t op;
    char key[64];
    size_t key_len;
    uint64_t value_len;
    uint32_t checksum;
};

struct recs {
    struct rec *v;
    size_t n, cap;
};

static int collect_rec(const kv_record_info *info, void *ctx)
{
    struct recs *r = ctx;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        r->v = realloc(r->v, r->cap * sizeof(*r->v));
        assert_non_null(r->v);
    }
    struct rec *x = &r->v[r->n++];
    memset(x, 0, sizeof(*x));
    x->seg = info->segment_id;
    x->off = info->offset;
    x->len = info->length;
    x->status = info->status;
    x->op = info->op;
    x->key_len = info->key_len;
    if (info->key)
        memcpy(x->key, info->key, info->key_len < sizeof(x->key) ? info->key_len : 63);
    x->value_len = info->value_len;
    x->checksum = info->checksum;
    return 0;
}

static struct recs scan_dir(const char *dir)
{
    struct recs r = {0};
    assert_kv_ok(kv_scan(dir, collect_rec, &r));
    return r;
}

/* ---- 1. torn tail */

#define TORN_KEYS 16
#define TORN_VLEN 32

static void test_reopen_after_torn_tail_keeps_every_acked_write(void **state)
{
    struct tu_fixture *f = *state;
    const char *dir = f->dir;
    struct model m = {0};
    kv_store *s = tu_open(dir, NULL);
    for (int i = 0; i < TORN_KEYS; i++)
        model_put(s, &m, i, 1, TORN_VLEN);
    uint64_t seg_id = stats_of(s).active_segment_id;
    assert_int_equal(stats_of(s).segments, 1);
    assert_kv_ok(kv_close(s));

    char *seg = segment_file(dir, seg_id);
    char *snap = tu_path(dir, "index.snapshot");
    size_t full, snap_len;
    uint8_t *pristine = tu_read_file(seg, &full);
    uint8_t *pristine_snap = tu_read_file(snap, &snap_len);
    struct recs r = scan_dir(dir);
    assert_int_equal(r.n, TORN_KEYS);
    const struct rec *last = &r.v[r.n - 1];
    assert_int_equal(last->seg, seg_id);
    assert_int_equal(last->off + last->len, full);
    size_t rec_off = (size_t)last->off;
    char cut_key[16];
    key_of(TORN_KEYS - 1, cut_key, sizeof(cut_key));
    assert_string_equal(last->key, cut_key);

    for (int with_snapshot = 0; with_snapshot <= 1; with_snapshot++) {
        for (size_t p = rec_off; p <= full; p++) {
            tu_write_file(seg, pristine, p);
            if (with_snapshot) {
                tu_write_file(snap, pristine_snap, snap_len);
                /* The snapshot records the full length: any cut makes it
                 * name bytes that are gone. */
                kv_snapshot_status ss;
                char why[160] = "";
                assert_kv_ok(kv_check_snapshot(dir, &ss, NULL, why, sizeof(why)));
                assert_int_equal(ss, p == full ? KV_SNAPSHOT_VALID : KV_SNAPSHOT_INVALID);
                if (p != full)
                    assert_non_null(strstr(why, "shorter"));
            } else {
                remove_file(dir, "index.snapshot");
            }

            s = tu_open(dir, NULL);
            kv_stats st = stats_of(s);
            assert_int_equal(st.torn_bytes_truncated, p == full ? 0 : p - rec_off);
            assert_int_equal(st.snapshot_loaded, with_snapshot && p == full);
            tu_assert_log_ends_at(seg, p == full ? full : rec_off);
            for (int i = 0; i < TORN_KEYS - 1; i++) {
                char k[16];
                key_of(i, k, sizeof(k));
                tu_assert_value(s, k, m.val[i], m.len[i]);
            }
            if (p == full)
                tu_assert_value(s, cut_key, m.val[TORN_KEYS - 1], m.len[TORN_KEYS - 1]);
            else
                assert_absent(s, cut_key);

            assert_kv_ok(kv_put(s, "after-cut", 9, "fresh", 5));
            assert_kv_ok(kv_close(s));
            s = tu_open(dir, NULL);
            tu_assert_str(s, "after-cut", "fresh");
            for (int i = 0; i < TORN_KEYS - 1; i++) {
                char k[16];
                key_of(i, k, sizeof(k));
                tu_assert_value(s, k, m.val[i], m.len[i]);
            }
            if (p != full)
                assert_absent(s, cut_key);
            assert_int_equal(stats_of(s).torn_bytes_truncated, 0);
            assert_kv_ok(kv_close(s));
        }
    }

    free(r.v);
    free(pristine);
    free(pristine_snap);
    free(seg);
    free(snap);
}

/* A crash after a snapshot: the snapshot still holds (the segment is longer
 * than it records), only the log after it is replayed, and the torn record at
 * the end is cut all the same. */
static void test_torn_tail_after_stale_snapshot_is_cut_and_snapshot_used(void **state)
{
    struct tu_fixture *f = *state;
    const char *dir = f->dir;
    struct model m = {0};
    kv_store *s = tu_open(dir, NULL);
    for (int i = 0; i < 10; i++)
        model_put(s, &m, i, 1, TORN_VLEN);
    assert_kv_ok(kv_save_snapshot(s));
    char *snap = tu_path(dir, "index.snapshot");
    size_t snap_len;
    uint8_t *stale = tu_read_file(snap, &snap_len);
    for (int i = 10; i < 15; i++)
        model_put(s, &m, i, 1, TORN_VLEN);
    model_delete(s, &m, 2);
    model_put(s, &m, 15, 1, TORN_VLEN); /* the record that will be torn */
    char *seg = segment_file(dir, stats_of(s).active_segment_id);
    assert_kv_ok(kv_close(s));
    size_t full;
    uint8_t *pristine = tu_read_file(seg, &full);
    size_t rec_off = full - (RECORD_OVERHEAD + 7 + TORN_VLEN);
    m.live[15] = false;

    for (size_t p = rec_off; p < full; p++) {
        tu_write_file(seg, pristine, p);
        tu_write_file(snap, stale, snap_len);
        assert_int_equal(snapshot_status(dir), KV_SNAPSHOT_VALID);
        s = tu_open(dir, NULL);
        kv_stats st = stats_of(s);
        assert_true(st.snapshot_loaded);
        assert_int_equal(st.records_replayed, 6); /* 5 puts and a delete after it */
        assert_int_equal(st.torn_bytes_truncated, p - rec_off);
        tu_assert_log_ends_at(seg, rec_off);
        assert_matches_model(s, &m);
        assert_kv_ok(kv_close(s));
    }

    free(pristine);
    free(stale);
    free(seg);
    free(snap);
}

/* ---- 2. damage inside a sealed segment */

#define SEALED_KEYS 200
#define SEALED_VLEN 60
#define VICTIM      10 /* written in the first segment, overwritten later */

static void test_flipped_byte_in_middle_of_sealed_segment_loses_only_that_record(void **state)
{
    struct tu_fixture *f = *state;
    const char *dir = f->dir;
    kv_options o = small_segments(4096);
    struct model m = {0};
    uint8_t victim_v1[SEALED_VLEN];
    kv_store *s = tu_open(dir, &o);
    for (int i = 0; i < SEALED_KEYS; i++) {
        model_put(s, &m, i, 1, SEALED_VLEN);
        if (i == 75) { /* the middle of the second segment (49 records each) */
            memcpy(victim_v1, m.val[VICTIM], SEALED_VLEN);
            model_put(s, &m, VICTIM, 2, SEALED_VLEN);
        }
    }
    kv_stats st = stats_of(s);
    assert_true(st.segments >= 4);
    uint64_t newest = st.active_segment_id;
    assert_kv_ok(kv_close(s));
    remove_file(dir, "index.snapshot");

    /* Find the overwrite of the victim in the scan. */
    struct recs r = scan_dir(dir);
    char vkey[16];
    key_of(VICTIM, vkey, sizeof(vkey));
    size_t victim = r.n;
    for (size_t i = 0; i < r.n; i++) {
        assert_int_equal(r.v[i].status, KV_REC_OK);
        if (strcmp(r.v[i].key, vkey) == 0)
            victim = i; /* the last record of the key */
    }
    assert_true(victim < r.n);
    const struct rec vr = r.v[victim];
    free(r.v);
    assert_true(vr.seg < newest); /* a sealed segment */
    assert_true(vr.off > 0);      /* not its first record */
    char *seg = segment_file(dir, vr.seg);
    size_t seg_size = tu_file_size(seg);
    assert_true(vr.off + vr.len < seg_size); /* not its last record */
    size_t value_at = (size_t)vr.off + 11 + vr.key_len + SEALED_VLEN / 2;
    tu_flip_byte(seg, value_at);

    int logged = 0;
    kv_options lo = o;
    lo.log_fn = tu_log_count;
    lo.log_ctx = &logged;
    s = tu_open(dir, &lo);
    st = stats_of(s);
    assert_true(st.checksum_errors >= 1);
    assert_true(logged >= 1);
    assert_int_equal(st.torn_bytes_truncated, 0);
    assert_int_equal(tu_file_size(seg), seg_size);

    /* The damaged key: absent or its previous value, never the damaged bytes. */
    void *got = NULL;
    size_t got_len = 0;
    int rc = kv_get(s, vkey, strlen(vkey), &got, &got_len);
    if (rc == 0) {
        assert_int_equal(got_len, SEALED_VLEN);
        assert_memory_equal(got, victim_v1, SEALED_VLEN);
        kv_free(got);
    } else {
        assert_kv_rc(rc, KV_ENOTFOUND);
    }
    for (int i = 0; i < SEALED_KEYS; i++) {
        char k[16];
        key_of(i, k, sizeof(k));
        if (i != VICTIM)
            tu_assert_value(s, k, m.val[i], m.len[i]);
    }
    assert_kv_ok(kv_close(s));
    assert_int_equal(tu_file_size(seg), seg_size);

    r = scan_dir(dir);
    size_t bad = 0;
    for (size_t i = 0; i < r.n; i++) {
        if (r.v[i].status == KV_REC_OK)
            continue;
        bad++;
        assert_int_equal(r.v[i].seg, vr.seg);
        assert_int_equal(r.v[i].off, vr.off);
        assert_int_equal(r.v[i].len, vr.len);
        assert_int_equal(r.v[i].status, KV_REC_BAD_CHECKSUM);
    }
    assert_int_equal(bad, 1);

    free(r.v);
    free(seg);
}

/* Counts the warnings and errors the library logs. */
static void count_warnings(kv_log_level level, const char *msg, void *ctx)
{
    (void)msg;
    if (level <= KV_LOG_WARN)
        (*(int *)ctx)++;
}

/* The last record of a sealed segment is not a torn write: damaged or cut
 * short, it is reported and skipped, and the file is left as it is. */
static void test_damaged_tail_of_sealed_segment_is_skipped_never_cut(void **state)
{
    struct tu_fixture *f = *state;
    const char *dir = f->dir;
    kv_options o = small_segments(4096);
    struct model m = {0};
    kv_store *s = tu_open(dir, &o);
    for (int i = 0; i < 120; i++)
        model_put(s, &m, i, 1, SEALED_VLEN);
    uint64_t newest = stats_of(s).active_segment_id;
    assert_kv_ok(kv_close(s));

    struct recs r = scan_dir(dir);
    uint64_t sealed = r.v[0].seg;
    assert_true(sealed < newest);
    size_t last = 0;
    while (last + 1 < r.n && r.v[last + 1].seg == sealed)
        last++;
    const struct rec lr = r.v[last];
    free(r.v);
    char *seg = segment_file(dir, sealed);
    size_t seg_size = tu_file_size(seg);
    assert_int_equal(lr.off + lr.len, seg_size);
    int victim = (int)strtol(lr.key + 4, NULL, 10);
    m.live[victim] = false;

    for (int cut = 0; cut <= 1; cut++) {
        if (cut) { /* the end of the file is lost */
            seg_size -= 10;
            tu_truncate(seg, seg_size);
        } else { /* a byte of the value rots */
            tu_flip_byte(seg, (size_t)lr.off + 11 + lr.key_len + 5);
        }
        remove_file(dir, "index.snapshot");
        int warnings = 0;
        kv_options lo = o;
        lo.log_fn = count_warnings;
        lo.log_ctx = &warnings;
        s = tu_open(dir, &lo);
        kv_stats st = stats_of(s);
        assert_int_equal(tu_file_size(seg), seg_size);
        assert_int_equal(st.torn_bytes_truncated, 0);
        assert_true(st.checksum_errors >= 1);
        assert_true(warnings >= 1);
        assert_matches_model(s, &m);
        assert_kv_ok(kv_close(s));
        assert_int_equal(tu_file_size(seg), seg_size);

        r = scan_dir(dir);
        size_t bad = 0;
        for (size_t i = 0; i < r.n; i++) {
            if (r.v[i].status == KV_REC_OK)
                continue;
            bad++;
            assert_int_equal(r.v[i].seg, sealed);
            assert_int_equal(r.v[i].off, lr.off);
            assert_int_equal(r.v[i].len, seg_size - lr.off);
            assert_int_equal(r.v[i].status, cut ? KV_REC_TORN : KV_REC_BAD_CHECKSUM);
        }
        assert_int_equal(bad, 1);
        free(r.v);
    }

    free(seg);
}

/* ---- 3. reads verify */

static void test_flipped_byte_read_without_reopen_is_corrupt_not_wrong_bytes(void **state)
{
    struct tu_fixture *f = *state;
    const char *dir = f->dir;
    kv_store *s = tu_open(dir, NULL);
    assert_kv_ok(kv_put(s, "k", 1, "the-value", 9));
    char *seg = segment_file(dir, stats_of(s).active_segment_id);
    tu_flip_byte(seg, 11 + 1 + 4); /* a byte of the value */

    void *v = (void *)0x1;
    size_t n = 7;
    assert_kv_rc(kv_get(s, "k", 1, &v, &n), KV_ECORRUPT);
    assert_ptr_equal(v, (void *)0x1);
    assert_int_equal(n, 7);
    assert_true(stats_of(s).checksum_errors >= 1);

    kv_close(s);
    free(seg);
}

/* ---- 4. bytes after the last record of the newest segment */

static void check_appended_bytes_are_cut(bool zeros)
{
    static const size_t lengths[] = {1, 10, 11, 15, 16, 300, 5000};
    char *root = tu_mkdtemp();
    char *dir = tu_path(root, "db");
    struct model m = {0};
    kv_store *s = tu_open(dir, NULL);
    for (int i = 0; i < 20; i++)
        model_put(s, &m, i, 1, (size_t)i * 5);
    model_delete(s, &m, 3);
    char *seg = segment_file(dir, stats_of(s).active_segment_id);
    assert_kv_ok(kv_close(s));
    remove_file(dir, "index.snapshot");
    size_t good;
    uint8_t *pristine = tu_read_file(seg, &good);

    uint32_t rng = 12345;
    for (size_t t = 0; t < sizeof(lengths) / sizeof(lengths[0]); t++) {
        size_t extra = lengths[t];
        uint8_t *bytes = malloc(good + extra);
        assert_non_null(bytes);
        memcpy(bytes, pristine, good);
        for (size_t j = 0; j < extra; j++) {
            rng = rng * 1103515245u + 12345u;
            bytes[good + j] = zeros ? 0 : (uint8_t)(rng >> 16);
        }
        /* Zeros at a record boundary are preallocated space, not a torn
         * write: cut all the same, but not counted as torn bytes. */
        tu_write_file(seg, bytes, good + extra);
        s = tu_open(dir, NULL);
        tu_assert_log_ends_at(seg, good);
        assert_int_equal(stats_of(s).torn_bytes_truncated, zeros ? 0 : extra);
        free(bytes);
        assert_matches_model(s, &m);
        assert_kv_ok(kv_close(s));
        tu_write_file(seg, pristine, good);
        remove_file(dir, "index.snapshot");
    }

    free(pristine);
    free(seg);
    tu_rmtree(root);
    free(dir);
    free(root);
}

static void test_garbage_appended_to_newest_segment_is_cut(void **state)
{
    (void)state;
    check_appended_bytes_are_cut(false);
}

static void test_zero_bytes_appended_to_newest_segment_are_cut(void **state)
{
    (void)state;
    check_appended_bytes_are_cut(true);
}

/* ---- 5. snapshot doubts */

struct crashed {
    char *root;
    char *dir;   /* the original, closed */
    char *crash; /* its copy taken while it was open */
    struct model m;
    uint64_t ops_after_snapshot;
};

/* Writes, saves a snapshot, writes more, syncs, and copies the directory
 * while the store is still open: the copy is what a kill -9 leaves. */
static void make_crashed_dir(struct crashed *c)
{
    memset(c, 0, sizeof(*c));
    c->root = tu_mkdtemp();
    c->dir = tu_path(c->root, "db");
    c->crash = tu_path(c->root, "crash");
    kv_options o = small_segments(4096);
    kv_store *s = tu_open(c->dir, &o);
    for (int i = 0; i < 80; i++)
        model_put(s, &c->m, i, 1, 40);
    for (int i = 0; i < 80; i += 9)
        model_delete(s, &c->m, i);
    assert_kv_ok(kv_save_snapshot(s));
    uint64_t puts = stats_of(s).puts, deletes = stats_of(s).deletes;
    for (int i = 0; i < 80; i += 4)
        model_put(s, &c->m, i, 2, 50); /* overwrites, and brings some deleted back */
    for (int i = 1; i < 80; i += 7)
        model_delete(s, &c->m, i);
    for (int i = 80; i < 130; i++)
        model_put(s, &c->m, i, 1, 30);
    assert_kv_ok(kv_sync(s));
    kv_stats st = stats_of(s);
    c->ops_after_snapshot = st.puts - puts + st.deletes - deletes;
    copy_dir(c->dir, c->crash);
    assert_kv_ok(kv_close(s));
}

static void free_crashed(struct crashed *c)
{
    tu_rmtree(c->root);
    free(c->crash);
    free(c->dir);
    free(c->root);
}

/* Opens dir and checks it holds exactly the model; returns whether the
 * snapshot was used. */
static bool open_and_match(const char *dir, const struct model *m, uint64_t *replayed)
{
    kv_options o = small_segments(4096);
    kv_store *s = tu_open(dir, &o);
    assert_matches_model(s, m);
    kv_stats st = stats_of(s);
    if (replayed)
        *replayed = st.records_replayed;
    assert_kv_ok(kv_close(s));
    return st.snapshot_loaded;
}

static void test_stale_snapshot_is_used_and_later_writes_replayed(void **state)
{
    (void)state;
    struct crashed c;
    make_crashed_dir(&c);
    assert_int_equal(snapshot_status(c.crash), KV_SNAPSHOT_VALID);
    uint64_t replayed = 0;
    assert_true(open_and_match(c.crash, &c.m, &replayed));
    assert_int_equal(replayed, c.ops_after_snapshot); /* only the log after it */
    /* The closed original agrees. */
    assert_true(open_and_match(c.dir, &c.m, NULL));
    free_crashed(&c);
}

static void test_truncated_snapshot_is_ignored_with_same_result(void **state)
{
    (void)state;
    struct crashed c;
    make_crashed_dir(&c);
    char *snap = tu_path(c.crash, "index.snapshot");
    size_t len;
    uint8_t *orig = tu_read_file(snap, &len);
    const size_t cuts[] = {0, 7, 39, 44, len / 2, len - 4, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        tu_write_file(snap, orig, cuts[i]);
        assert_int_equal(snapshot_status(c.crash), KV_SNAPSHOT_INVALID);
        uint64_t replayed = 0;
        assert_false(open_and_match(c.crash, &c.m, &replayed));
        assert_true(replayed > c.ops_after_snapshot); /* the whole log */
    }
    free(orig);
    free(snap);
    free_crashed(&c);
}

static void test_corrupt_snapshot_is_ignored_with_same_result(void **state)
{
    (void)state;
    struct crashed c;
    make_crashed_dir(&c);
    char *snap = tu_path(c.crash, "index.snapshot");
    size_t len;
    uint8_t *orig = tu_read_file(snap, &len);
    /* The magic, the version, the position, the segment list, an entry, the CRC. */
    const size_t offsets[] = {0, 8, 28, 32, 44, len / 2, len - 20, len - 1};
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        tu_write_file(snap, orig, len);
        tu_flip_byte(snap, offsets[i]);
        assert_int_equal(snapshot_status(c.crash), KV_SNAPSHOT_INVALID);
        assert_false(open_and_match(c.crash, &c.m, NULL));
    }
    free(orig);
    free(snap);
    free_crashed(&c);
}

static void test_snapshot_naming_missing_segment_is_ignored(void **state)
{
    struct tu_fixture *f = *state;
    const char *dir = f->dir;
    char *snap = tu_path(dir, "index.snapshot");
    struct model m = {0};
    kv_options o = small_segments(4096);
    kv_store *s = tu_open(dir, &o);
    for (int i = 0; i < 100; i++)
        model_put(s, &m, i, 1, 40);
    for (int i = 0; i < 100; i += 3)
        model_put(s, &m, i, 2, 40);
    assert_kv_ok(kv_save_snapshot(s));
    size_t old_len;
    uint8_t *old = tu_read_file(snap, &old_len);
    /* Compaction removes every segment the old snapshot names; a crash
     * before the new snapshot would leave the old one beside its outputs. */
    assert_kv_ok(kv_compact(s));
    for (int i = 0; i < 100; i += 5)
        model_delete(s, &m, i);
    assert_kv_ok(kv_close(s));
    assert_int_equal(snapshot_status(dir), KV_SNAPSHOT_VALID);
    tu_write_file(snap, old, old_len);

    kv_snapshot_status st;
    char why[160] = "";
    assert_kv_ok(kv_check_snapshot(dir, &st, NULL, why, sizeof(why)));
    assert_int_equal(st, KV_SNAPSHOT_INVALID);
    assert_non_null(strstr(why, "missing"));
    assert_false(open_and_match(dir, &m, NULL));

    free(old);
    free(snap);
}

/* A snapshot many times the loader's read window (256 KiB), with keys of
 * many lengths up to the largest, so that entries straddle every refill. */
#define BIG_KEYS 12000

static size_t big_key(int i, char *buf)
{
    size_t len = i == 0 ? KV_MAX_KEY_LEN : 10 + (size_t)(i % 97) * 3 + (i % 1000 == 1 ? 5000 : 0);
    int n = snprintf(buf, len + 1, "big-%06d", i);
    for (size_t j = (size_t)n; j < len; j++)
        buf[j] = (char)('a' + (size_t)(i + (int)j) % 26);
    return len;
}

static void big_value(int i, char *buf, size_t *len)
{
    *len = (size_t)snprintf(buf, 64, "value-%d-%d", i, i * 31);
}

static void write_big_store(const char *dir)
{
    kv_options o;
    kv_options_init(&o);
    o.sync_mode = KV_SYNC_NONE;
    o.segment_size = 4u << 20;
    o.compaction_interval_secs = 0;
    kv_store *s = tu_open(dir, &o);
    char *k = malloc(KV_MAX_KEY_LEN + 1), v[64];
    assert_non_null(k);
    for (int i = 0; i < BIG_KEYS; i++) {
        size_t vlen, klen = big_key(i, k);
        big_value(i, v, &vlen);
        assert_kv_ok(kv_put(s, k, klen, v, vlen));
    }
    for (int i = 0; i < BIG_KEYS; i += 11) {
        size_t klen = big_key(i, k);
        assert_kv_ok(kv_delete(s, k, klen));
    }
    free(k);
    assert_kv_ok(kv_close(s)); /* saves the snapshot */
}

/* Whether the library logged a line holding want. */
struct log_watch {
    const char *want;
    bool seen;
};

static void watch_log(kv_log_level level, const char *msg, void *ctx)
{
    (void)level;
    struct log_watch *w = ctx;
    if (strstr(msg, w->want))
        w->seen = true;
}

/* Opens dir, checks every key of write_big_store, and returns the stats; w
 * (may be NULL) watches the log. */
static kv_stats open_big_store_with(const char *dir, struct log_watch *w, uint32_t bloom_bits)
{
    kv_options o;
    kv_options_init(&o);
    o.compaction_interval_secs = 0;
    o.bloom_bits_per_key = bloom_bits;
    if (w) {
        o.log_fn = watch_log;
        o.log_ctx = w;
    }
    kv_store *s = tu_open(dir, &o);
    char *k = malloc(KV_MAX_KEY_LEN + 1), v[64];
    assert_non_null(k);
    for (int i = 0; i < BIG_KEYS; i++) {
        size_t vlen, klen = big_key(i, k);
        big_value(i, v, &vlen);
        void *got = NULL;
        size_t got_len = 0;
        int rc = kv_get(s, k, klen, &got, &got_len);
        if (i % 11 == 0) {
            assert_kv_rc(rc, KV_ENOTFOUND);
            continue;
        }
        assert_kv_ok(rc);
        assert_int_equal(got_len, vlen);
        assert_memory_equal(got, v, vlen);
        kv_free(got);
    }
    free(k);
    kv_stats st = stats_of(s);
    assert_int_equal(st.keys, BIG_KEYS - (BIG_KEYS + 10) / 11);
    assert_kv_ok(kv_close(s));
    return st;
}

static kv_stats open_big_store(const char *dir, struct log_watch *w)
{
    kv_options o;
    kv_options_init(&o);
    return open_big_store_with(dir, w, o.bloom_bits_per_key);
}

static void assert_snapshot_invalid_because(const char *dir, const char *why)
{
    kv_snapshot_status st;
    char reason[160] = "";
    assert_kv_ok(kv_check_snapshot(dir, &st, NULL, reason, sizeof(reason)));
    assert_int_equal(st, KV_SNAPSHOT_INVALID);
    if (!strstr(reason, why))
        fail_msg("snapshot rejected for \"%s\", expected \"%s\"", reason, why);
}

static void test_snapshot_larger_than_read_window_loads_exactly(void **state)
{
    struct tu_fixture *f = *state;
    write_big_store(f->dir);
    char *snap = tu_path(f->dir, "index.snapshot");
    assert_true(tu_file_size(snap) > 4 * (256u << 10));
    assert_int_equal(snapshot_status(f->dir), KV_SNAPSHOT_VALID);
    kv_stats st = open_big_store(f->dir, NULL);
    assert_true(st.snapshot_loaded);
    assert_int_equal(st.records_replayed, 0);
    /* Saved again by that close, in the same order: still whole. */
    st = open_big_store(f->dir, NULL);
    assert_true(st.snapshot_loaded);
    free(snap);
}

/* Damage past the first window is found as surely as in it: the whole-file
 * CRC decides, even though entries reach the index before it is known. */
static void test_damage_deep_in_large_snapshot_is_found_and_replayed(void **state)
{
    struct tu_fixture *f = *state;
    write_big_store(f->dir);
    char *snap = tu_path(f->dir, "index.snapshot");
    size_t len;
    uint8_t *orig = tu_read_file(snap, &len);
    const size_t flips[] = {len / 2, len - 4096, len - 5};
    for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
        tu_write_file(snap, orig, len);
        tu_flip_byte(snap, flips[i]);
        assert_snapshot_invalid_because(f->dir, "checksum mismatch");
        kv_stats st = open_big_store(f->dir, NULL); /* saves a good snapshot again */
        assert_false(st.snapshot_loaded);
        assert_true(st.records_replayed > 0);
    }
    const size_t cuts[] = {300000, len / 2, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        tu_write_file(snap, orig, cuts[i]);
        assert_snapshot_invalid_because(f->dir, "");
        assert_false(open_big_store(f->dir, NULL).snapshot_loaded);
    }
    free(orig);
    free(snap);
}

/* Where a version 5 snapshot's bloom filter section starts (after the
 * 40-byte header and the segment list), and its length in bytes. Of keys
 * without an expiry, it is laid out as version 4. */
static size_t snap_bloom_at(const uint8_t *b)
{
    assert_int_equal(get_u32(b + 8), 5);
    return 40 + 12 * (size_t)get_u32(b + 16);
}

/* Where a snapshot of len bytes ends its entries: before its key order
 * section (flag 0x1: 4 bytes per key) and its CRC. */
static size_t snap_entries_end(const uint8_t *b, size_t len)
{
    size_t order = get_u32(b + 12) & 1u ? 4 * (size_t)get_u64(b + 20) : 0;
    return len - 4 - order;
}

static size_t snap_bloom_len(const uint8_t *b)
{
    return 28 + 64 * (size_t)get_u64(b + snap_bloom_at(b) + 20);
}

/* The snapshot carries the bloom filter: a load with the same density takes
 * it as saved (its capacity is the saved one, not the 2 x keys a rebuild
 * gives), and it still answers "maybe" for every key; a load with another
 * density rebuilds it from the keys. */
static void test_snapshot_bloom_filter_is_taken_as_saved_or_rebuilt(void **state)
{
    struct tu_fixture *f = *state;
    write_big_store(f->dir);
    kv_stats saved = open_big_store(f->dir, NULL);
    assert_true(saved.snapshot_loaded);
    uint64_t keys = BIG_KEYS - (BIG_KEYS + 10) / 11;
    kv_stats st = open_big_store(f->dir, NULL);
    assert_true(st.snapshot_loaded);
    assert_int_equal(st.bloom_capacity, saved.bloom_capacity);
    assert_int_equal(st.bloom_bytes, saved.bloom_bytes);
    /* Its bits are the saved ones: the deleted keys were added before they
     * were deleted, so the filter passes every one of them (the index then
     * refuses it), where a filter built from the index would refuse them. */
    uint64_t deleted = (BIG_KEYS + 10) / 11;
    assert_true(st.bloom_false_positives >= deleted);
    st = open_big_store_with(f->dir, NULL, 6);
    assert_true(st.snapshot_loaded);
    assert_int_equal(st.bloom_capacity, 2 * keys);
    assert_true(st.bloom_bytes < saved.bloom_bytes);
    assert_true(st.bloom_negatives > deleted * 9 / 10);
    st = open_big_store_with(f->dir, NULL, 0); /* no filter at all */
    assert_true(st.snapshot_loaded);
    assert_int_equal(st.bloom_bytes, 0);
}

/* Rewrites a version 5 snapshot of a store without META names or
 * dictionaries as version 3 (without its key order and the flag that
 * announces it), version 2 (without the two empty counts after the filter
 * either) or version 1 (without the filter either). The CRC is left for the
 * caller. */
static void snap_downgrade(uint8_t *b, size_t *len, uint32_t version)
{
    size_t at = snap_bloom_at(b), bloom_len = snap_bloom_len(b);
    size_t counts_at = at + bloom_len;
    assert_int_equal(get_u32(b + 12), 1); /* the key order is there */
    size_t entries_end = snap_entries_end(b, *len);
    memmove(b + entries_end, b + *len - 4, 4);
    *len = entries_end + 4;
    put_u32(b + 12, 0);
    assert_int_equal(get_u32(b + counts_at), 0);     /* no META names */
    assert_int_equal(get_u32(b + counts_at + 4), 0); /* no dictionaries */
    size_t drop_at = version == 1 ? at : counts_at;
    size_t drop = version == 1 ? bloom_len + 8 : version == 2 ? 8 : 0;
    memmove(b + drop_at, b + drop_at + drop, *len - drop_at - drop);
    *len -= drop;
    put_u32(b + 8, version);
}

/* A listing's keys: how many, and whether each came after the one before. */
struct order_walk {
    uint64_t n;
    bool out_of_order;
    size_t prev_len;
    char prev[KV_MAX_KEY_LEN];
};

static int count_in_order(const void *key, size_t len, void *ctx)
{
    struct order_walk *w = ctx;
    size_t common = len < w->prev_len ? len : w->prev_len;
    int c = memcmp(w->prev, key, common);
    if (w->n > 0 && (c > 0 || (c == 0 && w->prev_len >= len)))
        w->out_of_order = true;
    memcpy(w->prev, key, len);
    w->prev_len = len;
    w->n++;
    return 0;
}

/* A snapshot of version 3 (no key order) still loads, and the ordered index
 * is built from its keys: a listing reads them all, in order. */
static void test_version_3_snapshot_loads_and_sorts_its_keys(void **state)
{
    struct tu_fixture *f = *state;
    write_big_store(f->dir);
    char *snap = tu_path(f->dir, "index.snapshot");
    size_t len;
    uint8_t *b = tu_read_file(snap, &len);
    snap_downgrade(b, &len, 3);
    put_u32(b + len - 4, record_crc_update(0, b, len - 4));
    tu_write_file(snap, b, len);
    assert_int_equal(snapshot_status(f->dir), KV_SNAPSHOT_VALID);
    kv_store *s = tu_open(f->dir, NULL);
    kv_stats st = stats_of(s);
    assert_true(st.snapshot_loaded);
    assert_int_equal(st.records_replayed, 0);
    struct order_walk *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    assert_kv_ok(kv_list(s, NULL, 0, NULL, 0, 0, count_in_order, w));
    assert_false(w->out_of_order);
    assert_int_equal(w->n, st.keys);
    assert_kv_ok(kv_close(s));
    free(w);
    free(b);
    free(snap);
}

/* A version 3 snapshot that sets a flag (the key order came with version
 * 4) is not trusted: the log is replayed. */
static void test_version_3_snapshot_with_a_flag_is_refused(void **state)
{
    struct tu_fixture *f = *state;
    write_big_store(f->dir);
    char *snap = tu_path(f->dir, "index.snapshot");
    size_t len;
    uint8_t *b = tu_read_file(snap, &len);
    put_u32(b + 8, 3);
    put_u32(b + len - 4, record_crc_update(0, b, len - 4));
    tu_write_file(snap, b, len);
    assert_snapshot_invalid_because(f->dir, "unknown flags");
    assert_false(open_big_store(f->dir, NULL).snapshot_loaded);
    free(b);
    free(snap);
}

/* A snapshot of version 2 (no META names, no dictionaries) still loads. */
static void test_version_2_snapshot_loads(void **state)
{
    struct tu_fixture *f = *state;
    write_big_store(f->dir);
    char *snap = tu_path(f->dir, "index.snapshot");
    size_t len;
    uint8_t *b = tu_read_file(snap, &len);
    snap_downgrade(b, &len, 2);
    put_u32(b + len - 4, record_crc_update(0, b, len - 4));
    tu_write_file(snap, b, len);
    assert_int_equal(snapshot_status(f->dir), KV_SNAPSHOT_VALID);
    kv_stats st = open_big_store(f->dir, NULL);
    assert_true(st.snapshot_loaded);
    assert_int_equal(st.records_replayed, 0);
    free(b);
    free(snap);
}

/* A snapshot of version 1 (no bloom filter section) still loads. */
static void test_version_1_snapshot_loads_and_builds_the_filter(void **state)
{
    struct tu_fixture *f = *state;
    write_big_store(f->dir);
    char *snap = tu_path(f->dir, "index.snapshot");
    size_t len;
    uint8_t *b = tu_read_file(snap, &len);
    snap_downgrade(b, &len, 1);
    put_u32(b + len - 4, record_crc_update(0, b, len - 4));
    tu_write_file(snap, b, len);
    assert_int_equal(snapshot_status(f->dir), KV_SNAPSHOT_VALID);
    kv_stats st = open_big_store(f->dir, NULL);
    assert_true(st.snapshot_loaded);
    assert_int_equal(st.records_replayed, 0);
    assert_int_equal(st.bloom_capacity, 2 * st.keys);
    free(b);
    free(snap);
}

/* A flipped bit in the filter section is caught by the CRC like any other:
 * were it trusted, a key could go missing behind a false negative. */
static void test_damaged_bloom_filter_in_snapshot_is_refused(void **state)
{
    struct tu_fixture *f = *state;
    write_big_store(f->dir);
    char *snap = tu_path(f->dir, "index.snapshot");
    size_t len;
    uint8_t *b = tu_read_file(snap, &len);
    size_t at = snap_bloom_at(b);
    const size_t flips[] = {at, at + 4, at + 20, at + 28, at + snap_bloom_len(b) - 1};
    for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
        tu_write_file(snap, b, len);
        tu_flip_byte(snap, flips[i]);
        assert_snapshot_invalid_because(f->dir, "");
        kv_stats st = open_big_store(f->dir, NULL); /* every key found: by replay */
        assert_false(st.snapshot_loaded);
    }
    free(b);
    free(snap);
}

/* A snapshot whose CRC checks out but which names a key twice, far into the
 * file (as only a bug or a forgery could write it), is not loaded. (Only the
 * load builds an index to find it; kv_check_snapshot does not.) */
static void test_key_twice_deep_in_large_snapshot_is_refused(void **state)
{
    struct tu_fixture *f = *state;
    write_big_store(f->dir);
    char *snap = tu_path(f->dir, "index.snapshot");
    size_t len;
    uint8_t *b = tu_read_file(snap, &len);
    /* Past the header, the segment list, the bloom filter section and the
     * two empty counts (META names, dictionaries). */
    size_t p = snap_bloom_at(b) + snap_bloom_len(b) + 8, prev = 0;
    bool forged = false;
    size_t end = snap_entries_end(b, len);
    while (p + 14 <= end && !forged) {
        size_t klen = get_u16(b + p);
        if (p > end / 2 && prev && get_u16(b + prev) == klen) {
            memcpy(b + p, b + prev, 14 + klen);
            forged = true;
        }
        prev = p;
        p += 14 + klen;
    }
    assert_true(forged);
    put_u32(b + len - 4, record_crc_update(0, b, len - 4));
    tu_write_file(snap, b, len);
    struct log_watch w = {.want = "a key appears twice"};
    kv_stats st = open_big_store(f->dir, &w);
    assert_false(st.snapshot_loaded);
    assert_true(w.seen);
    free(b);
    free(snap);
}

/* ---- 6. one owner */

/* Forks a child that tries to open dir and exits with -rc. */
static int open_in_child(const char *dir)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        kv_store *c = NULL;
        int rc = kv_open(dir, NULL, &c);
        if (rc == 0)
            rc = kv_close(c);
        _exit(rc <= 0 ? -rc : 100);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return -WEXITSTATUS(status);
}

static void test_second_open_of_same_directory_fails_with_locked(void **state)
{
    struct tu_fixture *f = *state;
    const char *dir = f->dir;
    kv_store *s = tu_open(dir, NULL);
    assert_kv_ok(kv_put(s, "k", 1, "v", 1));

    kv_store *second = (kv_store *)0x1;
    assert_kv_rc(kv_open(dir, NULL, &second), KV_ELOCKED);
    assert_ptr_equal(second, (kv_store *)0x1);
    assert_kv_rc(open_in_child(dir), KV_ELOCKED);
    tu_assert_str(s, "k", "v"); /* the failed opens did not disturb the owner */

    assert_kv_ok(kv_close(s));
    assert_kv_ok(open_in_child(dir));
    s = tu_open(dir, NULL);
    tu_assert_str(s, "k", "v");
    assert_kv_ok(kv_close(s));
}

/* ---- 7. the original Go implementation's directory */

static void put_le(uint8_t **buf, size_t *len, uint64_t v, int bytes)
{
    *buf = realloc(*buf, *len + (size_t)bytes);
    assert_non_null(*buf);
    for (int i = 0; i < bytes; i++)
        (*buf)[(*len)++] = (uint8_t)(v >> (8 * i));
}

static void put_bytes(uint8_t **buf, size_t *len, const void *p, size_t n)
{
    *buf = realloc(*buf, *len + n);
    assert_non_null(*buf);
    memcpy(*buf + *len, p, n);
    *len += n;
}

static void write_record_file(const char *dir, const char *name, const void *buf, size_t len)
{
    char *p = tu_path(dir, name);
    tu_write_file(p, buf, len);
    free(p);
}

static void test_directory_in_original_go_format_opens(void **state)
{
    struct tu_fixture *f = *state;
    const char *dir = f->dir;
    assert_int_equal(mkdir(dir, 0755), 0);

    uint8_t *b = NULL;
    size_t n = 0;
    tu_append_record(&b, &n, KV_OP_SET, "alpha", 5, "one", 3);
    tu_append_record(&b, &n, KV_OP_SET, "beta", 4, "two", 3);
    tu_append_record(&b, &n, KV_OP_SET, "gamma", 5, "three", 5);
    tu_append_record(&b, &n, KV_OP_SET, "empty", 5, NULL, 0);
    write_record_file(dir, "segment-0.dat", b, n);
    free(b);
    b = NULL;
    n = 0;
    tu_append_record(&b, &n, KV_OP_SET, "alpha", 5, "uno-again", 9);
    tu_append_record(&b, &n, KV_OP_DELETE, "beta", 4, NULL, 0);
    tu_append_record(&b, &n, KV_OP_SET, "delta", 5, "four", 4);
    write_record_file(dir, "segment-1.dat", b, n);
    free(b);
    write_record_file(dir, "segment-2.dat", "", 0);

    /* Go's index.snapshot: offset 0 for every key, which must never be used. */
    static const char *const go_keys[] = {"alpha", "gamma", "empty", "delta"};
    static const uint64_t go_segs[] = {1, 0, 0, 1};
    b = NULL;
    n = 0;
    put_bytes(&b, &n, "KVINDEX1", 8);
    put_le(&b, &n, 4, 8);
    for (int i = 0; i < 4; i++) {
        put_le(&b, &n, strlen(go_keys[i]), 4);
        put_bytes(&b, &n, go_keys[i], strlen(go_keys[i]));
        put_le(&b, &n, go_segs[i], 8);
        put_le(&b, &n, 0, 8);
    }
    write_record_file(dir, "index.snapshot", b, n);
    free(b);

    assert_int_equal(snapshot_status(dir), KV_SNAPSHOT_FOREIGN);
    kv_store *s = tu_open(dir, NULL);
    kv_stats st = stats_of(s);
    assert_false(st.snapshot_loaded);
    assert_int_equal(st.keys, 4);
    assert_int_equal(st.checksum_errors, 0);
    assert_int_equal(st.torn_bytes_truncated, 0);
    tu_assert_str(s, "alpha", "uno-again");
    assert_absent(s, "beta");
    tu_assert_str(s, "gamma", "three");
    tu_assert_str(s, "empty", "");
    tu_assert_str(s, "delta", "four");
    /* It stays writable and reopens the same. */
    assert_kv_ok(kv_put(s, "epsilon", 7, "five", 4));
    assert_kv_ok(kv_close(s));
    s = tu_open(dir, NULL);
    tu_assert_str(s, "alpha", "uno-again");
    assert_absent(s, "beta");
    tu_assert_str(s, "gamma", "three");
    tu_assert_str(s, "delta", "four");
    tu_assert_str(s, "epsilon", "five");
    assert_kv_ok(kv_close(s));
}

/* ---- 8. unknown op codes */

static void test_unknown_op_code_refuses_open(void **state)
{
    struct tu_fixture *f = *state;
    const char *dir = f->dir;
    assert_int_equal(mkdir(dir, 0755), 0);
    uint8_t *b = NULL;
    size_t n1 = 0, n2 = 0;
    tu_append_record(&b, &n1, KV_OP_SET, "a", 1, "1", 1);
    tu_append_record(&b, &n1, 7, "future", 6, "feature", 7);
    tu_append_record(&b, &n1, KV_OP_SET, "b", 1, "2", 1);
    write_record_file(dir, "segment-1.dat", b, n1);
    free(b);
    /* The newest segment ends in a torn record: it must not be cut either. */
    b = NULL;
    tu_append_record(&b, &n2, KV_OP_SET, "c", 1, "3", 1);
    tu_append_record(&b, &n2, KV_OP_SET, "torn", 4, "never-acked", 11);
    n2 -= 5;
    write_record_file(dir, "segment-2.dat", b, n2);
    free(b);

    kv_store *s = NULL;
    assert_kv_rc(kv_open(dir, NULL, &s), KV_EFORMAT);
    assert_null(s);
    char *seg1 = segment_file(dir, 1), *seg2 = segment_file(dir, 2), *seg3 = segment_file(dir, 3);
    assert_int_equal(tu_file_size(seg1), n1);
    assert_int_equal(tu_file_size(seg2), n2);
    assert_false(file_exists(seg3));
    char *snap = tu_path(dir, "index.snapshot");
    assert_false(file_exists(snap));

    /* Alone in the newest segment, at its end, it is refused just the same. */
    b = NULL;
    n2 = 0;
    tu_append_record(&b, &n2, KV_OP_SET, "c", 1, "3", 1);
    tu_append_record(&b, &n2, 7, "future", 6, "feature", 7);
    write_record_file(dir, "segment-2.dat", b, n2);
    free(b);
    remove_file(dir, "segment-1.dat");
    assert_kv_rc(kv_open(dir, NULL, &s), KV_EFORMAT);
    assert_null(s);
    assert_int_equal(tu_file_size(seg2), n2);
    assert_false(file_exists(seg3));

    free(snap);
    free(seg1);
    free(seg2);
    free(seg3);
}

/* ---- 9. leftovers of interrupted writes */

static void test_stale_tmp_files_are_removed_at_open(void **state)
{
    struct tu_fixture *f = *state;
    const char *dir = f->dir;
    kv_store *s = tu_open(dir, NULL);
    assert_kv_ok(kv_put(s, "k", 1, "v", 1));
    assert_kv_ok(kv_close(s));

    char *seg_tmp = tu_path(dir, "segment-9.dat.tmp");
    char *snap_tmp = tu_path(dir, "index.snapshot.tmp");
    uint8_t *b = NULL;
    size_t n = 0;
    tu_append_record(&b, &n, KV_OP_SET, "k", 1, "from-an-unfinished-compaction", 29);
    tu_write_file(seg_tmp, b, n);
    tu_write_file(snap_tmp, "half a snapshot", 15);
    free(b);

    s = tu_open(dir, NULL);
    assert_false(file_exists(seg_tmp));
    assert_false(file_exists(snap_tmp));
    tu_assert_str(s, "k", "v");
    assert_int_equal(stats_of(s).segments, 1);
    assert_kv_ok(kv_close(s));

    free(seg_tmp);
    free(snap_tmp);
}

/* ---- 10. kv_scan */

struct written {
    uint8_t op;
    char key[16];
    size_t val_len;
    uint32_t crc;
};

static void test_scan_reports_every_record_in_log_order(void **state)
{
    struct tu_fixture *f = *state;
    const char *dir = f->dir;
    kv_options o = small_segments(4096);
    kv_store *s = tu_open(dir, &o);
    struct written w[300];
    size_t nw = 0;
    uint8_t val[MODEL_VMAX];
    for (int i = 0; i < 300; i++) {
        struct written *x = &w[nw++];
        key_of(i % 70, x->key, sizeof(x->key));
        uint8_t *b = NULL;
        size_t n = 0;
        if (i % 11 == 10 && kv_exists(s, x->key, strlen(x->key)) == 0) {
            x->op = KV_OP_DELETE;
            x->val_len = 0;
            assert_kv_ok(kv_delete(s, x->key, strlen(x->key)));
            tu_append_record(&b, &n, KV_OP_DELETE, x->key, strlen(x->key), NULL, 0);
        } else {
            x->op = KV_OP_SET;
            x->val_len = (size_t)(i * 37) % MODEL_VMAX;
            value_of(i, 3, x->val_len, val);
            assert_kv_ok(kv_put(s, x->key, strlen(x->key), val, x->val_len));
            tu_append_record(&b, &n, KV_OP_SET, x->key, strlen(x->key), val, x->val_len);
        }
        x->crc = (uint32_t)b[n - 4] | (uint32_t)b[n - 3] << 8 | (uint32_t)b[n - 2] << 16 |
                 (uint32_t)b[n - 1] << 24;
        free(b);
    }
    kv_stats st = stats_of(s);
    assert_true(st.segments >= 3);
    assert_kv_ok(kv_close(s));

    struct recs r = scan_dir(dir);
    assert_int_equal(r.n, nw);
    uint64_t segments = 0;
    for (size_t i = 0; i < r.n; i++) {
        const struct rec *x = &r.v[i];
        assert_int_equal(x->status, KV_REC_OK);
        assert_int_equal(x->op, w[i].op);
        assert_int_equal(x->key_len, strlen(w[i].key));
        assert_string_equal(x->key, w[i].key);
        assert_int_equal(x->value_len, w[i].val_len);
        assert_int_equal(x->len, RECORD_OVERHEAD + x->key_len + x->value_len);
        assert_int_equal(x->checksum, w[i].crc);
        if (i == 0 || x->seg != r.v[i - 1].seg) {
            /* A new segment: a higher id, starting at offset 0, and the
             * previous one ends at its last record. */
            assert_int_equal(x->off, 0);
            if (i > 0) {
                assert_true(x->seg > r.v[i - 1].seg);
                char *prev = segment_file(dir, r.v[i - 1].seg);
                assert_int_equal(tu_file_size(prev), r.v[i - 1].off + r.v[i - 1].len);
                free(prev);
            }
            segments++;
        } else {
            assert_int_equal(x->off, r.v[i - 1].off + r.v[i - 1].len);
        }
    }
    char *last = segment_file(dir, r.v[r.n - 1].seg);
    assert_int_equal(tu_file_size(last), r.v[r.n - 1].off + r.v[r.n - 1].len);
    assert_int_equal(segments, st.segments);

    free(last);
    free(r.v);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reopen_after_torn_tail_keeps_every_acked_write,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_torn_tail_after_stale_snapshot_is_cut_and_snapshot_used, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_flipped_byte_in_middle_of_sealed_segment_loses_only_that_record, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_tail_of_sealed_segment_is_skipped_never_cut,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_flipped_byte_read_without_reopen_is_corrupt_not_wrong_bytes, tu_setup,
            tu_teardown),
        cmocka_unit_test(test_garbage_appended_to_newest_segment_is_cut),
        cmocka_unit_test(test_zero_bytes_appended_to_newest_segment_are_cut),
        cmocka_unit_test(test_stale_snapshot_is_used_and_later_writes_replayed),
        cmocka_unit_test(test_truncated_snapshot_is_ignored_with_same_result),
        cmocka_unit_test(test_corrupt_snapshot_is_ignored_with_same_result),
        cmocka_unit_test_setup_teardown(test_snapshot_naming_missing_segment_is_ignored, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_larger_than_read_window_loads_exactly,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_damage_deep_in_large_snapshot_is_found_and_replayed,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_key_twice_deep_in_large_snapshot_is_refused, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_second_open_of_same_directory_fails_with_locked,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_bloom_filter_is_taken_as_saved_or_rebuilt,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_version_3_snapshot_loads_and_sorts_its_keys, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_version_3_snapshot_with_a_flag_is_refused, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_version_2_snapshot_loads, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_version_1_snapshot_loads_and_builds_the_filter,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_bloom_filter_in_snapshot_is_refused, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_directory_in_original_go_format_opens, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_op_code_refuses_open, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_stale_tmp_files_are_removed_at_open, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_scan_reports_every_record_in_log_order, tu_setup,
                                        tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
