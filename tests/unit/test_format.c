/*
 * test_format.c - the record kinds of the second generation as the engine
 * reads them everywhere: SETX (attributes before the value) and META
 * (engine metadata), through replay, the snapshot and compaction; the
 * records it refuses; expired records and compaction's tombstone rule; and
 * a store that uses no new feature staying in the original format.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "io.h"
#include "record.h"
#include "testutil.h"
#include "commit.h"

/* ---- helpers */

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static kv_options quiet_options(void)
{
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 64u * 1024;
    o.compaction_interval_secs = 0;
    return o;
}

/* Appends a SETX record with the given attributes to buf. */
static void append_setx(uint8_t **buf, size_t *len, const char *key, const struct record_attrs *a,
                        const void *stored, size_t stored_len)
{
    uint8_t payload[RECORD_ATTRS_MAX + 256];
    size_t alen = record_attrs_encode(payload, a);
    assert_true(stored_len <= 256);
    memcpy(payload + alen, stored, stored_len);
    tu_append_record(buf, len, KV_OP_SETX, key, strlen(key), payload, alen + stored_len);
}

static void write_segment(const char *dir, uint32_t id, const uint8_t *bytes, size_t len)
{
    mkdir(dir, 0755);
    char name[64];
    snprintf(name, sizeof(name), "segment-%u.dat", id);
    char *path = tu_path(dir, name);
    tu_write_file(path, bytes, len);
    free(path);
}

static void remove_snapshot(const char *dir)
{
    char *path = tu_path(dir, "index.snapshot");
    unlink(path);
    free(path);
}

static void assert_absent(kv_store *s, const char *key)
{
    void *v = NULL;
    size_t n = 0;
    assert_kv_rc(kv_get(s, key, strlen(key), &v, &n), KV_ENOTFOUND);
}

static void assert_meta(kv_store *s, const char *name, const char *want)
{
    void *v = NULL;
    size_t n = 0;
    int rc = kv_meta_get(s, name, strlen(name), &v, &n);
    if (!want) {
        assert_kv_rc(rc, KV_ENOTFOUND);
        return;
    }
    assert_kv_ok(rc);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(v, want, n);
    kv_free(v);
}

/* What kv_scan finds in a directory. */
struct census {
    size_t by_op[8];
    size_t not_ok; /* records or regions whose status is not OK */
    size_t deletes_of_key;
    const char *key; /* counts DELETE records of this key */
    size_t setx_expires, setx_zstd;
};

static int count_record(const kv_record_info *info, void *ctx)
{
    struct census *c = ctx;
    if (info->status != KV_REC_OK) {
        c->not_ok++;
        return 0;
    }
    c->by_op[info->op < 8 ? info->op : 0]++;
    if (info->op == KV_OP_SETX) {
        c->setx_expires += (info->attr_flags & KV_ATTR_EXPIRES) != 0;
        c->setx_zstd += (info->attr_flags & KV_ATTR_ZSTD) != 0;
    }
    if (info->op == KV_OP_DELETE && c->key && info->key_len == strlen(c->key) &&
        memcmp(info->key, c->key, info->key_len) == 0)
        c->deletes_of_key++;
    return 0;
}

static struct census census_of(const char *dir, const char *key)
{
    struct census c = {.key = key};
    assert_kv_ok(kv_scan(dir, count_record, &c));
    return c;
}

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

/* ---- SETX read from disk */

/* Hand-made records: a SETX whose expiry is ahead reads as its value (with
 * the value's own CRC), one whose expiry has passed reads as absent, and an
 * expired SETX over an older SET hides it; the same after a snapshot, after
 * compaction (which drops the expired ones) and after a replay of the
 * compacted log. */
static void
test_setx_with_expiry_reads_until_it_expires_through_snapshot_and_compaction(void **state)
{
    struct tu_fixture *f = *state;
    uint8_t *seg = NULL;
    size_t len = 0;
    struct record_attrs later = {.flags = RECORD_ATTR_EXPIRES, .expire_at = now_ms() + 3600000};
    struct record_attrs past = {.flags = RECORD_ATTR_EXPIRES, .expire_at = now_ms() - 1000};
    tu_append_record(&seg, &len, KV_OP_SET, "k1", 2, "old", 3);
    append_setx(&seg, &len, "k1", &later, "fresh", 5);
    append_setx(&seg, &len, "k2", &past, "gone", 4);
    tu_append_record(&seg, &len, KV_OP_SET, "k3", 2, "hidden", 6);
    append_setx(&seg, &len, "k3", &past, "x", 1);
    tu_append_record(&seg, &len, KV_OP_SET, "k4", 2, "plain", 5);
    write_segment(f->dir, 1, seg, len);
    free(seg);

    kv_options o = quiet_options();
    for (int round = 0; round < 4; round++) {
        kv_store *s = tu_open(f->dir, &o);
        kv_stats st;
        assert_kv_ok(kv_get_stats(s, &st));
        assert_int_equal(st.snapshot_loaded, round == 1);
        void *v = NULL;
        size_t n = 0;
        uint32_t crc = 0;
        assert_kv_ok(kv_get_crc(s, "k1", 2, &v, &n, &crc));
        assert_int_equal(n, 5);
        assert_memory_equal(v, "fresh", 5);
        assert_int_equal(crc, (uint32_t)crc32(0, (const Bytef *)"fresh", 5));
        kv_free(v);
        assert_absent(s, "k2");
        assert_absent(s, "k3");
        tu_assert_str(s, "k4", "plain");
        if (round == 2) {
            assert_kv_ok(kv_compact(s));
            struct census c = census_of(f->dir, NULL);
            assert_int_equal(c.by_op[KV_OP_SETX], 1); /* k1's; the expired are dropped */
            assert_int_equal(c.setx_expires, 1);
            assert_int_equal(c.by_op[KV_OP_DELETE], 0); /* no older segment is left */
        }
        assert_kv_ok(kv_close(s));
        if (round != 0)
            remove_snapshot(f->dir); /* round 1 loads it; the others replay */
    }
}

/* A SETX whose attribute flags this version does not know, or a META
 * longer than it reads, is not skipped: the open is refused. */
static void test_unknown_setx_flag_or_oversized_meta_refuses_the_open(void **state)
{
    struct tu_fixture *f = *state;
    for (int kind = 0; kind < 2; kind++) {
        uint8_t *seg = NULL;
        size_t len = 0;
        tu_append_record(&seg, &len, KV_OP_SET, "a", 1, "1", 1);
        if (kind == 0) {
            uint8_t payload[10] = {0x04, 1, 2, 3, 4, 5, 6, 7, 8, 9};
            tu_append_record(&seg, &len, KV_OP_SETX, "b", 1, payload, sizeof(payload));
        } else {
            size_t big = RECORD_META_MAX + 1;
            uint8_t *val = calloc(1, big);
            assert_non_null(val);
            tu_append_record(&seg, &len, KV_OP_META, "repl", 4, val, big);
            free(val);
        }
        tu_append_record(&seg, &len, KV_OP_SET, "c", 1, "3", 1);
        tu_rmtree(f->dir);
        write_segment(f->dir, 1, seg, len);
        free(seg);
        struct log_watch w = {.want = kind == 0 ? "attribute flags 0x04" : "META record"};
        kv_options o = quiet_options();
        o.log_fn = watch_log;
        o.log_ctx = &w;
        kv_store *s = NULL;
        assert_kv_rc(kv_open(f->dir, &o, &s), KV_EFORMAT);
        assert_null(s);
        assert_true(w.seen);
    }
}

/* ---- META */

/* The newest value of each name wins, through a replay, a snapshot, a
 * compaction (which carries it forward) and a replay of the compacted log;
 * names are not keys. */
static void test_meta_newest_value_wins_through_replay_snapshot_and_compaction(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = quiet_options();
    o.segment_size = 4096;
    kv_store *s = tu_open(f->dir, &o);
    assert_kv_ok(kv_meta_put(s, "repl", 4, "pos-1", 5));
    assert_kv_ok(kv_meta_put(s, "history", 7, "h-1", 3));
    char key[16], val[200];
    memset(val, 'v', sizeof(val));
    for (int i = 0; i < 100; i++) { /* several segments */
        snprintf(key, sizeof(key), "key-%03d", i);
        assert_kv_ok(kv_put(s, key, strlen(key), val, sizeof(val)));
    }
    assert_kv_ok(kv_meta_put(s, "repl", 4, "pos-2", 5));
    assert_kv_ok(kv_put(s, "repl", 4, "a key", 5)); /* a key of the same name */
    assert_meta(s, "repl", "pos-2");
    assert_meta(s, "nothing", NULL);
    assert_kv_ok(kv_close(s));

    for (int round = 0; round < 4; round++) {
        if (round == 0 || round == 3)
            remove_snapshot(f->dir);
        s = tu_open(f->dir, &o);
        kv_stats st;
        assert_kv_ok(kv_get_stats(s, &st));
        assert_int_equal(st.keys, 101);
        assert_int_equal(st.snapshot_loaded, round == 1 || round == 2);
        assert_meta(s, "repl", "pos-2");
        assert_meta(s, "history", round == 3 ? "h-2" : "h-1"); /* h-2 is written in round 2 */
        tu_assert_str(s, "repl", "a key");
        if (round == 2) {
            assert_kv_ok(kv_meta_put(s, "history", 7, "h-2", 3));
            assert_kv_ok(kv_compact(s));
            assert_meta(s, "history", "h-2");
            struct census c = census_of(f->dir, NULL);
            assert_int_equal(c.by_op[KV_OP_META], 2); /* one per name */
            assert_kv_ok(kv_get_stats(s, &st));
            assert_int_equal(st.dead_bytes, 0);
        }
        assert_kv_ok(kv_close(s));
    }
    s = tu_open(f->dir, &o);
    assert_meta(s, "history", "h-2");
    assert_kv_ok(kv_close(s));
}

static void test_meta_arguments_are_checked(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = quiet_options();
    kv_store *s = tu_open(f->dir, &o);
    void *v = NULL;
    size_t n = 0;
    assert_kv_rc(kv_meta_put(NULL, "a", 1, "b", 1), KV_EINVAL);
    assert_kv_rc(kv_meta_put(s, "a", 0, "b", 1), KV_EINVAL);
    assert_kv_rc(kv_meta_put(s, "a", 1, NULL, 1), KV_EINVAL);
    char *big = calloc(1, KV_MAX_META_LEN + 1);
    assert_non_null(big);
    assert_kv_rc(kv_meta_put(s, "a", 1, big, KV_MAX_META_LEN + 1), KV_ETOOBIG);
    assert_kv_ok(kv_meta_put(s, "a", 1, big, KV_MAX_META_LEN));
    assert_kv_ok(kv_meta_put(s, "empty", 5, NULL, 0));
    assert_meta(s, "empty", "");
    assert_kv_rc(kv_meta_get(s, "a", 1, NULL, &n), KV_EINVAL);
    assert_kv_ok(kv_meta_get(s, "a", 1, &v, &n));
    assert_int_equal(n, KV_MAX_META_LEN);
    kv_free(v);
    free(big);
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_int_equal(st.keys, 0);
    assert_kv_ok(kv_close(s));
    s = tu_open(f->dir, &o); /* the largest META reads back at open */
    assert_meta(s, "empty", "");
    assert_kv_ok(kv_close(s));
}

/* ---- torn records of the new kinds */

/* The newest segment cut at every byte of its last record, a SETX (with an
 * expiry) or a META: the open succeeds and the state is the one before that
 * record. */
static void test_log_cut_at_every_byte_of_a_setx_or_meta_record(void **state)
{
    struct tu_fixture *f = *state;
    for (int kind = 0; kind < 2; kind++) {
        tu_rmtree(f->dir);
        kv_options o = quiet_options();
        kv_store *s = tu_open(f->dir, &o);
        assert_kv_ok(kv_put(s, "k", 1, "before", 6));
        assert_kv_ok(kv_meta_put(s, "m", 1, "before", 6));
        kv_stats st;
        assert_kv_ok(kv_get_stats(s, &st));
        uint64_t rec_off = st.disk_bytes;
        if (kind == 0)
            assert_kv_ok(kv__write_set(s, "k", 1, "after", 5, now_ms() + 3600000, KV_IF_ANY, NULL));
        else
            assert_kv_ok(kv_meta_put(s, "m", 1, "after", 5));
        assert_kv_ok(kv_get_stats(s, &st));
        uint64_t full = st.disk_bytes;
        char name[64];
        snprintf(name, sizeof(name), "segment-%llu.dat", (unsigned long long)st.active_segment_id);
        assert_kv_ok(kv_close(s));
        remove_snapshot(f->dir);
        char *path = tu_path(f->dir, name);
        size_t got;
        uint8_t *pristine = tu_read_file(path, &got);
        assert_int_equal(got, full);
        assert_int_equal(pristine[rec_off + 2], kind == 0 ? KV_OP_SETX : KV_OP_META);
        for (uint64_t cut = rec_off; cut <= full; cut++) {
            tu_write_file(path, pristine, (size_t)cut);
            s = tu_open(f->dir, &o);
            bool whole = cut == full;
            tu_assert_str(s, "k", kind == 0 && whole ? "after" : "before");
            assert_meta(s, "m", kind == 1 && whole ? "after" : "before");
            tu_assert_log_ends_at(path, whole ? full : rec_off);
            assert_kv_ok(kv_close(s));
            remove_snapshot(f->dir);
        }
        free(pristine);
        free(path);
    }
}

/* ---- expiry at compaction */

/* Every older record of an expired key is an input of the compaction, so
 * the expired record is dropped with no tombstone, and a replay of the
 * compacted log does not bring the older value back. */
static void test_expired_record_is_dropped_at_compaction_and_nothing_comes_back(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = quiet_options();
    o.segment_size = 4096;
    kv_store *s = tu_open(f->dir, &o);
    char val[300];
    memset(val, 'o', sizeof(val));
    assert_kv_ok(kv_put(s, "victim", 6, val, sizeof(val)));
    for (int i = 0; i < 40; i++) {
        char key[16];
        snprintf(key, sizeof(key), "filler-%02d", i);
        assert_kv_ok(kv_put(s, key, strlen(key), val, sizeof(val)));
    }
    assert_kv_ok(kv__write_set(s, "victim", 6, "short-lived", 11, now_ms() - 1, KV_IF_ANY, NULL));
    assert_absent(s, "victim");
    assert_kv_ok(kv_compact(s));
    assert_absent(s, "victim");
    struct census c = census_of(f->dir, "victim");
    assert_int_equal(c.deletes_of_key, 0);
    assert_int_equal(c.by_op[KV_OP_SETX], 0);
    assert_kv_ok(kv_close(s));
    remove_snapshot(f->dir);
    s = tu_open(f->dir, &o);
    assert_absent(s, "victim");
    tu_assert_value(s, "filler-07", val, sizeof(val));
    assert_kv_ok(kv_close(s));
}

/* An I/O table whose unlink of segment files fails while armed. */
struct stubborn {
    struct kv_io io;
    bool armed;
    int refused;
};

static int stubborn_unlink(void *ctx, const char *path)
{
    struct stubborn *t = ctx;
    if (t->armed && strstr(path, "/segment-")) {
        t->refused++;
        errno = EACCES;
        return -1;
    }
    return kv__io_os.unlink(NULL, path);
}

/* When an earlier compaction could not remove its inputs, the older value of
 * an expired key survives outside the next compaction: that compaction
 * writes a tombstone where the expired record was, so that a replay of the
 * whole log (the snapshot lost) still finds the key absent. */
static void test_expired_record_over_a_leftover_segment_becomes_a_tombstone(void **state)
{
    struct tu_fixture *f = *state;
    struct stubborn t = {.io = {.unlink = stubborn_unlink}};
    t.io.ctx = &t;
    kv_options o = quiet_options();
    o.segment_size = 4096;
    o.io = &t.io;
    kv_store *s = tu_open(f->dir, &o);
    char val[300];
    memset(val, 'o', sizeof(val));
    assert_kv_ok(kv_put(s, "victim", 6, "old value", 9));
    for (int i = 0; i < 30; i++) {
        char key[16];
        snprintf(key, sizeof(key), "filler-%02d", i);
        assert_kv_ok(kv_put(s, key, strlen(key), val, sizeof(val)));
    }
    t.armed = true;
    assert_kv_ok(kv_compact(s)); /* its inputs stay on disk */
    assert_true(t.refused > 0);
    assert_kv_ok(kv__write_set(s, "victim", 6, "short-lived", 11, now_ms() - 1, KV_IF_ANY, NULL));
    assert_kv_ok(kv_compact(s)); /* they still cannot be removed */
    assert_absent(s, "victim");
    assert_true(census_of(f->dir, "victim").deletes_of_key >= 1);
    t.armed = false;
    assert_kv_ok(kv_close(s));
    remove_snapshot(f->dir); /* a replay of everything on disk */
    s = tu_open(f->dir, &o);
    assert_absent(s, "victim");
    tu_assert_value(s, "filler-07", val, sizeof(val));
    assert_kv_ok(kv_compact(s)); /* the leftovers are inputs now, and go */
    assert_absent(s, "victim");
    assert_kv_ok(kv_close(s));
}

/* ---- the original format */

/* A store that uses no new feature (no expiry, no compression, no META)
 * writes only SET and DELETE records, through overwrites, deletes,
 * rotation and compaction: the original implementations can read it. */
static void test_store_without_new_features_writes_only_set_and_delete(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = quiet_options();
    o.segment_size = 4096;
    kv_store *s = tu_open(f->dir, &o);
    char val[600];
    for (size_t i = 0; i < sizeof(val); i++)
        val[i] = "{\"name\": \"a\", "[i % 14]; /* compressible, were compression on */
    for (int i = 0; i < 60; i++) {
        char key[16];
        snprintf(key, sizeof(key), "key-%02d", i % 25);
        assert_kv_ok(kv_put(s, key, strlen(key), val, 50 + (size_t)i * 9));
        if (i % 7 == 0)
            assert_kv_ok(kv_delete(s, key, strlen(key)));
    }
    assert_kv_ok(kv_compact(s));
    assert_kv_ok(kv_put(s, "after", 5, val, sizeof(val)));
    assert_kv_ok(kv_close(s));
    struct census c = census_of(f->dir, NULL);
    assert_int_equal(c.not_ok, 0);
    assert_true(c.by_op[KV_OP_SET] > 0);
    assert_int_equal(c.by_op[KV_OP_SETX] + c.by_op[KV_OP_BATCH] + c.by_op[KV_OP_META] + c.by_op[0] +
                         c.by_op[6] + c.by_op[7],
                     0);
}

/* kv_scan gives a SETX's attributes and a META's name. */
static void test_scan_reports_setx_attributes_and_meta_names(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = quiet_options();
    kv_store *s = tu_open(f->dir, &o);
    uint64_t at = now_ms() + 60000;
    assert_kv_ok(kv__write_set(s, "x", 1, "val", 3, at, KV_IF_ANY, NULL));
    assert_kv_ok(kv_meta_put(s, "repl", 4, "pos", 3));
    assert_kv_ok(kv_close(s));
    struct census c = census_of(f->dir, NULL);
    assert_int_equal(c.by_op[KV_OP_SETX], 1);
    assert_int_equal(c.setx_expires, 1);
    assert_int_equal(c.setx_zstd, 0);
    assert_int_equal(c.by_op[KV_OP_META], 1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_setx_with_expiry_reads_until_it_expires_through_snapshot_and_compaction, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_setx_flag_or_oversized_meta_refuses_the_open,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_meta_newest_value_wins_through_replay_snapshot_and_compaction, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_meta_arguments_are_checked, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_log_cut_at_every_byte_of_a_setx_or_meta_record,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_expired_record_is_dropped_at_compaction_and_nothing_comes_back, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_expired_record_over_a_leftover_segment_becomes_a_tombstone, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_store_without_new_features_writes_only_set_and_delete,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_scan_reports_setx_attributes_and_meta_names, tu_setup,
                                        tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
