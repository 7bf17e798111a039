/*
 * test_faults.c - injected I/O failures through the tu_faults table: ENOSPC,
 * EIO and short writes, failed fdatasync and fsync, segments that cannot be
 * mapped.
 *
 * What every test checks, in the words of write.c and DESIGN.md section 4: a
 * failed write is neither acknowledged nor visible to readers, its partial
 * record is cut off the segment, no acknowledged write is ever lost, and the
 * store goes on taking writes (or turns read-only, where write.c says it
 * must); a reopen without faults gives back exactly what was acknowledged.
 *
 * kv_open performs writes and fsyncs of its own, so every fault is placed
 * relative to the counters as they stand after the open.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* ---- helpers */

static kv_options plain_options(kv_sync_mode mode, uint64_t segment_size)
{
    kv_options o;
    kv_options_init(&o);
    o.sync_mode = mode;
    o.segment_size = segment_size;
    /* No background compaction, and no zeros written ahead of the log:
     * either would write and sync through the fault table from another
     * thread, at a time of its choosing. */
    o.compaction_interval_secs = 0;
    o.segment_preallocate = 0;
    return o;
}

static kv_options fault_options(struct tu_faults *faults, kv_sync_mode mode, uint64_t segment_size)
{
    kv_options o = plain_options(mode, segment_size);
    o.io = &faults->io;
    return o;
}

static kv_stats stats_of(kv_store *s)
{
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    return st;
}

static char *segment_path(const char *dir, uint64_t id)
{
    char name[64];
    snprintf(name, sizeof(name), "segment-%llu.dat", (unsigned long long)id);
    return tu_path(dir, name);
}

static void put_str(kv_store *s, const char *key, const char *val)
{
    int rc = kv_put(s, key, strlen(key), val, strlen(val));
    if (rc != 0)
        fail_msg("kv_put(%s) = %d (%s)", key, rc, kv_strerror(rc));
}

static void assert_absent(kv_store *s, const char *key)
{
    void *v = NULL;
    size_t n = 0;
    int rc = kv_get(s, key, strlen(key), &v, &n);
    if (rc != KV_ENOTFOUND)
        fail_msg("kv_get(%s) = %d (%s), wanted KV_ENOTFOUND", key, rc, kv_strerror(rc));
    assert_kv_rc(kv_exists(s, key, strlen(key)), KV_ENOTFOUND);
}

/* After a reopen: recovery found nothing torn and nothing damaged. */
static void assert_clean_recovery(kv_store *s)
{
    kv_stats st = stats_of(s);
    assert_int_equal(st.torn_bytes_truncated, 0);
    assert_int_equal(st.checksum_errors, 0);
    assert_false(st.read_only);
}

struct key_count {
    const char *key;
    int records; /* records of key, any op */
    int bad;     /* records or regions that do not check out */
};

static int count_records(const kv_record_info *info, void *ctx)
{
    struct key_count *c = ctx;
    if (info->status != KV_REC_OK) {
        c->bad++;
        return 0;
    }
    if (info->key_len == strlen(c->key) && memcmp(info->key, c->key, info->key_len) == 0)
        c->records++;
    return 0;
}

/* Asserts that no record of key is left anywhere on disk, and that every
 * byte of every segment parses as a good record. */
static void assert_no_record_on_disk(const char *dir, const char *key)
{
    struct key_count c = {.key = key};
    assert_kv_ok(kv_scan(dir, count_records, &c));
    assert_int_equal(c.records, 0);
    assert_int_equal(c.bad, 0);
}

/* The segment files (segment-N.dat) and leftover *.tmp files of dir, sorted
 * and joined by '\n', in buf. Returns how many *.tmp files there are. */
static int dir_files(const char *dir, char *buf, size_t len)
{
    char names[256][64];
    int n = 0, tmp = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        bool is_tmp = l > 4 && strcmp(de->d_name + l - 4, ".tmp") == 0;
        if (!is_tmp && strncmp(de->d_name, "segment-", 8) != 0)
            continue;
        tmp += is_tmp;
        assert_true(n < 256);
        assert_true(l < sizeof(names[0]));
        memcpy(names[n++], de->d_name, l + 1);
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char t[64];
                memcpy(t, names[i], sizeof(t));
                memcpy(names[i], names[j], sizeof(t));
                memcpy(names[j], t, sizeof(t));
            }
    buf[0] = 0;
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        int w = snprintf(buf + used, len - used, "%s\n", names[i]);
        assert_true(w > 0 && (size_t)w < len - used);
        used += (size_t)w;
    }
    return tmp;
}

/* strcmp of two names given as lines ending in '\n' (b of length blen). */
static int strcmp_line(const char *a, const char *b, size_t blen)
{
    size_t alen = strcspn(a, "\n");
    char x[128], y[128];
    snprintf(x, sizeof(x), "%.*s", (int)alen, a);
    snprintf(y, sizeof(y), "%.*s", (int)(blen - 1), b);
    return strcmp(x, y);
}

/* Asserts that the listing `got` (from dir_files) is `want` plus, when
 * extra is not NULL, the line extra. */
static void assert_files_are(const char *got, const char *want, const char *extra)
{
    char expect[8192];
    size_t n = 0;
    bool added = extra == NULL;
    const char *p = want;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p) + 1;
        if (!added && strcmp_line(extra, p, len) < 0) {
            n += (size_t)snprintf(expect + n, sizeof(expect) - n, "%s", extra);
            added = true;
        }
        assert_true(n + len < sizeof(expect));
        memcpy(expect + n, p, len);
        n += len;
        p = nl + 1;
    }
    if (!added)
        n += (size_t)snprintf(expect + n, sizeof(expect) - n, "%s", extra);
    expect[n] = 0;
    assert_string_equal(got, expect);
}

/* ---- a model of the store for the sequences below: keys "key-NN" */

#define MODEL_KEYS    48
#define MODEL_VAL_MAX 1024

struct model {
    bool live[MODEL_KEYS];
    size_t len[MODEL_KEYS];
    uint8_t val[MODEL_KEYS][MODEL_VAL_MAX];
};

static void model_key(int i, char *buf, size_t len)
{
    snprintf(buf, len, "key-%02d", i);
}

/* A value of len bytes that differs for every (seed, position). */
static void fill_value(uint8_t *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

struct list_check {
    const struct model *m;
    int listed;
    int foreign; /* keys listed that the model does not hold */
};

static int list_against_model(const void *key, size_t len, void *ctx)
{
    struct list_check *c = ctx;
    c->listed++;
    char buf[16];
    int i = -1;
    if (len == 6 && memcmp(key, "key-", 4) == 0) {
        memcpy(buf, key, len);
        buf[len] = 0;
        i = (int)strtol(buf + 4, NULL, 10);
    }
    if (i < 0 || i >= MODEL_KEYS || !c->m->live[i])
        c->foreign++;
    return 0;
}

/* The store holds exactly the model: every live key with its value, no
 * other key (kv_list), and the key count agrees. */
static void assert_store_equals_model(kv_store *s, const struct model *m)
{
    int live = 0;
    for (int i = 0; i < MODEL_KEYS; i++) {
        char k[16];
        model_key(i, k, sizeof(k));
        if (!m->live[i]) {
            assert_absent(s, k);
            continue;
        }
        live++;
        tu_assert_value(s, k, m->val[i], m->len[i]);
    }
    struct list_check c = {.m = m};
    assert_kv_ok(kv_list(s, NULL, 0, NULL, 0, 0, list_against_model, &c));
    assert_int_equal(c.foreign, 0);
    assert_int_equal(c.listed, live);
    assert_int_equal(stats_of(s).keys, (uint64_t)live);
}

static int model_put(kv_store *s, struct model *m, int i, size_t len, uint32_t seed)
{
    char k[16];
    uint8_t v[MODEL_VAL_MAX];
    assert_true(len <= sizeof(v));
    model_key(i, k, sizeof(k));
    fill_value(v, len, seed);
    int rc = kv_put(s, k, strlen(k), v, len);
    if (rc == 0) {
        m->live[i] = true;
        m->len[i] = len;
        memcpy(m->val[i], v, len);
    }
    return rc;
}

static int model_delete(kv_store *s, struct model *m, int i)
{
    char k[16];
    model_key(i, k, sizeof(k));
    int rc = kv_delete(s, k, strlen(k));
    if (!m->live[i]) {
        assert_kv_rc(rc, KV_ENOTFOUND);
        return 0; /* nothing written, nothing to fail */
    }
    if (rc == 0)
        m->live[i] = false;
    return rc;
}

/* ---- 1, 2: a write that fails with an errno */

static void check_failed_write(struct tu_fixture *fx, int err, int want_rc)
{
    static struct tu_faults f; /* outlives a failed assertion (teardown) */
    tu_faults_init(&f);
    kv_options o = fault_options(&f, KV_SYNC_ALWAYS, 64u * 1024);
    kv_store *s = tu_open_tracked(fx->dir, &o);
    put_str(s, "a", "alpha");
    put_str(s, "b", "bravo");
    put_str(s, "c", "charlie");
    kv_stats before = stats_of(s);
    char *seg = segment_path(fx->dir, before.active_segment_id);
    size_t size_before = tu_file_size(seg);

    /* A new key. */
    f.fail_write_at = f.writes + 1;
    f.write_errno = err;
    assert_kv_rc(kv_put(s, "lost", 4, "never-acknowledged", 18), want_rc);
    assert_int_equal(f.writes, f.fail_write_at); /* the fault fired */
    assert_absent(s, "lost");
    tu_assert_str(s, "a", "alpha");
    tu_assert_str(s, "b", "bravo");
    tu_assert_str(s, "c", "charlie");
    assert_int_equal(tu_file_size(seg), size_before);

    /* An overwrite: the old value stays. */
    f.fail_write_at = f.writes + 1;
    assert_kv_rc(kv_put(s, "a", 1, "changed", 7), want_rc);
    tu_assert_str(s, "a", "alpha");
    assert_int_equal(tu_file_size(seg), size_before);

    /* A delete: the key stays. */
    f.fail_write_at = f.writes + 1;
    assert_kv_rc(kv_delete(s, "b", 1), want_rc);
    tu_assert_str(s, "b", "bravo");
    assert_int_equal(tu_file_size(seg), size_before);

    kv_stats after = stats_of(s);
    assert_int_equal(after.puts, before.puts);
    assert_int_equal(after.deletes, before.deletes);
    assert_int_equal(after.keys, 3);
    assert_int_equal(after.disk_bytes, before.disk_bytes);
    assert_int_equal(after.active_segment_id, before.active_segment_id);
    assert_false(after.read_only);

    /* Space came back: the next write goes through. */
    f.fail_write_at = 0;
    put_str(s, "d", "delta");
    tu_assert_str(s, "d", "delta");
    assert_int_equal(tu_file_size(seg), size_before + 15 + 1 + 5);
    assert_kv_ok(tu_close_tracked(s));

    s = tu_open_tracked(fx->dir, NULL); /* the operating system's I/O, no faults */
    assert_clean_recovery(s);
    tu_assert_str(s, "a", "alpha");
    tu_assert_str(s, "b", "bravo");
    tu_assert_str(s, "c", "charlie");
    tu_assert_str(s, "d", "delta");
    assert_absent(s, "lost");
    assert_int_equal(stats_of(s).keys, 4);
    assert_kv_ok(tu_close_tracked(s));
    assert_no_record_on_disk(fx->dir, "lost");
    free(seg);
}

static void test_enospc_on_write_fails_that_put_and_next_put_succeeds(void **state)
{
    check_failed_write(*state, ENOSPC, KV_ENOSPC);
}

static void test_eio_on_write_fails_with_eio_and_store_stays_usable(void **state)
{
    check_failed_write(*state, EIO, KV_EIO);
}

/* ---- 3: short writes */

static void test_short_write_then_error_cuts_partial_record(void **state)
{
    struct tu_fixture *fx = *state;
    static struct tu_faults f; /* outlives a failed assertion (teardown) */
    tu_faults_init(&f);
    kv_options o = fault_options(&f, KV_SYNC_ALWAYS, 64u * 1024);
    kv_store *s = tu_open_tracked(fx->dir, &o);
    put_str(s, "a", "alpha");
    put_str(s, "b", "bravo");
    kv_stats before = stats_of(s);
    char *seg = segment_path(fx->dir, before.active_segment_id);
    size_t size_before = tu_file_size(seg);

    /* Half of the first iovec lands on disk; the engine retries the rest
     * (io.h), and that retry fails too: hence two failing writes. */
    uint8_t val[100];
    fill_value(val, sizeof(val), 7);
    f.fail_write_at = f.writes + 1;
    f.fail_write_count = 2;
    f.short_write = 1;
    f.write_errno = EIO;
    assert_kv_rc(kv_put(s, "torn", 4, val, sizeof(val)), KV_EIO);
    assert_int_equal(f.short_write, 0); /* the half write did happen */
    assert_int_equal(f.writes, f.fail_write_at + 1);
    assert_int_equal(tu_file_size(seg), size_before);
    assert_absent(s, "torn");
    tu_assert_str(s, "a", "alpha");
    tu_assert_str(s, "b", "bravo");
    assert_false(stats_of(s).read_only);

    f.fail_write_at = 0;
    put_str(s, "c", "charlie");
    assert_kv_ok(tu_close_tracked(s));

    s = tu_open_tracked(fx->dir, NULL);
    assert_clean_recovery(s);
    assert_absent(s, "torn");
    tu_assert_str(s, "a", "alpha");
    tu_assert_str(s, "b", "bravo");
    tu_assert_str(s, "c", "charlie");
    assert_kv_ok(tu_close_tracked(s));
    assert_no_record_on_disk(fx->dir, "torn");
    free(seg);
}

static void test_short_write_is_retried_to_completion(void **state)
{
    struct tu_fixture *fx = *state;
    static struct tu_faults f; /* outlives a failed assertion (teardown) */
    tu_faults_init(&f);
    kv_options o = fault_options(&f, KV_SYNC_ALWAYS, 64u * 1024);
    kv_store *s = tu_open_tracked(fx->dir, &o);
    put_str(s, "a", "alpha");
    uint8_t val[300];
    fill_value(val, sizeof(val), 11);
    /* One short count and no error: the engine must finish the write. */
    f.fail_write_at = f.writes + 1;
    f.short_write = 1;
    assert_kv_ok(kv_put(s, "whole", 5, val, sizeof(val)));
    assert_int_equal(f.short_write, 0);
    assert_true(f.writes >= f.fail_write_at + 1);
    tu_assert_value(s, "whole", val, sizeof(val));
    assert_kv_ok(tu_close_tracked(s));

    s = tu_open_tracked(fx->dir, NULL);
    assert_clean_recovery(s);
    tu_assert_value(s, "whole", val, sizeof(val));
    tu_assert_str(s, "a", "alpha");
    assert_kv_ok(tu_close_tracked(s));
}

/* ---- mapping segments for reads */

/* Key i and its value. */
static void key_value(int i, char key[16], char val[64])
{
    snprintf(key, 16, "k%04d", i);
    snprintf(val, 64, "value of %d", i);
}

static void put_keys(kv_store *s, int n)
{
    for (int i = 0; i < n; i++) {
        char key[16], val[64];
        key_value(i, key, val);
        put_str(s, key, val);
    }
}

/* Every get must return the value, mapped or not. */
static void read_keys(kv_store *s, int n)
{
    for (int i = 0; i < n; i++) {
        char key[16], val[64];
        key_value(i, key, val);
        tu_assert_str(s, key, val);
    }
}

static void test_reads_fall_back_to_preadv_and_map_once_memory_returns(void **state)
{
    struct tu_fixture *fx = *state;
    static struct tu_faults f;
    tu_faults_init(&f);
    f.fail_maps = 3; /* ENOMEM: a shortage that may pass */
    kv_options o = fault_options(&f, KV_SYNC_NONE, 4096);
    kv_store *s = tu_open_tracked(fx->dir, &o);
    put_keys(s, 200); /* many 4 KiB segments */
    read_keys(s, 200);
    int maps = f.maps;
    assert_true(maps > 3); /* tried again after the failures, and mapped */
    /* Every segment is mapped now: reading again maps nothing more. */
    read_keys(s, 200);
    read_keys(s, 200);
    assert_int_equal(f.maps, maps);
    assert_kv_ok(tu_close_tracked(s));
}

static void test_reads_stop_trying_to_map_a_segment_that_cannot_be(void **state)
{
    struct tu_fixture *fx = *state;
    static struct tu_faults f;
    tu_faults_init(&f);
    f.fail_maps = 1000000;
    f.map_errno = ENODEV; /* the file system cannot map: for good */
    kv_options o = fault_options(&f, KV_SYNC_NONE, 1u << 20);
    kv_store *s = tu_open_tracked(fx->dir, &o);
    put_keys(s, 50); /* one segment */
    read_keys(s, 50);
    read_keys(s, 50);
    assert_int_equal(f.maps, 1);
    assert_kv_ok(tu_close_tracked(s));
}

/* ---- 4: a failed fdatasync in sync mode always */

static void test_failed_fdatasync_fails_the_write_and_moves_to_a_fresh_segment(void **state)
{
    struct tu_fixture *fx = *state;
    static struct tu_faults f; /* outlives a failed assertion (teardown) */
    tu_faults_init(&f);
    kv_options o = fault_options(&f, KV_SYNC_ALWAYS, 64u * 1024);
    kv_store *s = tu_open_tracked(fx->dir, &o);
    put_str(s, "a", "alpha");
    put_str(s, "b", "bravo");
    kv_stats before = stats_of(s);
    char *old_seg = segment_path(fx->dir, before.active_segment_id);
    size_t old_size = tu_file_size(old_seg);

    f.fail_sync_at = f.syncs + 1;
    assert_kv_rc(kv_put(s, "lost", 4, "not-durable", 11), KV_EIO);
    assert_true(f.syncs >= f.fail_sync_at); /* the fault fired */
    assert_absent(s, "lost");
    tu_assert_str(s, "a", "alpha");
    tu_assert_str(s, "b", "bravo");

    kv_stats after = stats_of(s);
    assert_true(after.active_segment_id > before.active_segment_id);
    assert_false(after.read_only);
    assert_int_equal(after.puts, before.puts);
    /* The unsynced tail is cut off the old segment, which is sealed. */
    assert_int_equal(tu_file_size(old_seg), old_size);

    put_str(s, "c", "charlie");
    put_str(s, "a", "alpha-2");
    assert_int_equal(stats_of(s).active_segment_id, after.active_segment_id);
    tu_assert_str(s, "c", "charlie");
    tu_assert_str(s, "a", "alpha-2");
    assert_kv_ok(tu_close_tracked(s));

    s = tu_open_tracked(fx->dir, NULL);
    assert_clean_recovery(s);
    assert_absent(s, "lost");
    tu_assert_str(s, "a", "alpha-2");
    tu_assert_str(s, "b", "bravo");
    tu_assert_str(s, "c", "charlie");
    assert_int_equal(stats_of(s).keys, 3);
    assert_kv_ok(tu_close_tracked(s));
    assert_no_record_on_disk(fx->dir, "lost");
    free(old_seg);
}

/* ---- 5: a failed fsync of acknowledged writes turns the store read-only */

static void check_failed_sync_makes_read_only(const char *dir, kv_sync_mode mode)
{
    static struct tu_faults f; /* outlives a failed assertion (teardown) */
    tu_faults_init(&f);
    kv_options o = fault_options(&f, mode, 64u * 1024);
    /* Interval mode: a period far beyond the test, so that only kv_sync
     * syncs (no background fdatasync touches the counters). */
    o.sync_interval_ms = 3600u * 1000;
    kv_store *s = tu_open_tracked(dir, &o);
    put_str(s, "a", "alpha");
    put_str(s, "b", "bravo"); /* acknowledged, not yet synced */

    f.fail_sync_at = f.syncs + 1;
    assert_kv_rc(kv_sync(s), KV_EIO);
    assert_true(f.syncs >= f.fail_sync_at);
    f.fail_sync_at = 0;
    assert_true(stats_of(s).read_only);

    assert_kv_rc(kv_put(s, "c", 1, "charlie", 7), KV_EREADONLY);
    assert_kv_rc(kv_delete(s, "a", 1), KV_EREADONLY);
    assert_kv_rc(kv_sync(s), KV_EREADONLY); /* never trusts a retried fsync */
    assert_kv_rc(kv_compact(s), KV_EREADONLY);
    assert_kv_rc(kv_save_snapshot(s), KV_EREADONLY);
    /* Reads go on. */
    tu_assert_str(s, "a", "alpha");
    tu_assert_str(s, "b", "bravo");
    assert_absent(s, "c");
    assert_int_equal(stats_of(s).keys, 2);
    tu_close_tracked(s);

    s = tu_open_tracked(dir, NULL);
    assert_false(stats_of(s).read_only);
    put_str(s, "c", "charlie");
    tu_assert_str(s, "a", "alpha");
    tu_assert_str(s, "b", "bravo");
    tu_assert_str(s, "c", "charlie");
    assert_kv_ok(tu_close_tracked(s));
}

static void test_failed_fsync_in_interval_mode_makes_store_read_only(void **state)
{
    struct tu_fixture *fx = *state;
    char *none = tu_path(fx->root, "db-none");
    char *interval = tu_path(fx->root, "db-interval");
    check_failed_sync_makes_read_only(none, KV_SYNC_NONE);
    check_failed_sync_makes_read_only(interval, KV_SYNC_INTERVAL);
    free(none);
    free(interval);
}

/* write.c: a failed sync that covered acknowledged writes (modes interval
 * and none) turns the store read-only, whoever asked for the sync. Here the
 * sync is the one kv_save_snapshot and kv_compact make first. */
static void check_failed_sync_in(const char *dir, int (*op)(kv_store *), const char *name)
{
    static struct tu_faults f; /* outlives a failed assertion (teardown) */
    tu_faults_init(&f);
    kv_options o = fault_options(&f, KV_SYNC_NONE, 64u * 1024);
    kv_store *s = tu_open_tracked(dir, &o);
    put_str(s, "a", "alpha");
    put_str(s, "a", "alpha-2"); /* something for compaction to reclaim */
    f.fail_sync_at = f.syncs + 1;
    int rc = op(s);
    if (rc != KV_EIO && rc != KV_EREADONLY)
        fail_msg("%s with a failed fdatasync = %d (%s), wanted KV_EIO or KV_EREADONLY", name, rc,
                 kv_strerror(rc));
    f.fail_sync_at = 0;
    if (!stats_of(s).read_only)
        fail_msg("%s: fdatasync of acknowledged writes failed, yet the store is not read-only",
                 name);
    rc = kv_sync(s);
    if (rc != KV_EREADONLY)
        fail_msg("%s: kv_sync after a failed fdatasync = %d (%s), wanted KV_EREADONLY: a "
                 "retried fsync must not be trusted",
                 name, rc, kv_strerror(rc));
    tu_assert_str(s, "a", "alpha-2");
    tu_close_tracked(s);
}

static void test_failed_fsync_before_a_snapshot_makes_store_read_only(void **state)
{
    struct tu_fixture *fx = *state;
    check_failed_sync_in(fx->dir, kv_save_snapshot, "kv_save_snapshot");
}

static void test_failed_fsync_when_compaction_seals_makes_store_read_only(void **state)
{
    struct tu_fixture *fx = *state;
    check_failed_sync_in(fx->dir, kv_compact, "kv_compact");
}

/* ---- 6, 8: a fixed sequence of puts and deletes, with the Nth write (or
 * sync) failing, for every N */

#define SEQ_OPS  32
#define SEQ_KEYS 10

struct seq_op {
    bool del;
    int key;
    size_t len;
};

static void make_sequence(struct seq_op *ops)
{
    uint32_t x = 2463534242u;
    for (int i = 0; i < SEQ_OPS; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        ops[i].del = i > 4 && x % 100 < 30;
        ops[i].key = (int)((x >> 8) % SEQ_KEYS);
        ops[i].len = 1 + (x >> 16) % 900; /* 4 KiB segments rotate every few ops */
    }
}

enum fault_kind {
    FAULT_WRITE,       /* the Nth write fails with nothing written */
    FAULT_SHORT_WRITE, /* the Nth write stores half its first iovec, the retry fails */
    FAULT_SYNC         /* the Nth fdatasync or fsync fails */
};

struct seq_result {
    int total_writes, total_syncs; /* counted from after the open */
};

/* Runs the sequence in a fresh directory with fault n (0: none) of the given
 * kind, checks the store against the model after every operation, closes,
 * reopens without faults and checks again. */
static struct seq_result run_sequence(const char *root, kv_sync_mode mode, enum fault_kind kind,
                                      int n)
{
    char name[64];
    snprintf(name, sizeof(name), "seq-%d-%d-%d", (int)mode, (int)kind, n);
    char *dir = tu_path(root, name);
    struct seq_op ops[SEQ_OPS];
    make_sequence(ops);
    struct model *m = calloc(1, sizeof(*m));
    assert_non_null(m);

    static struct tu_faults f; /* outlives a failed assertion (teardown) */
    tu_faults_init(&f);
    kv_options o = fault_options(&f, mode, 4096);
    kv_store *s = tu_open_tracked(dir, &o);
    int writes0 = f.writes, syncs0 = f.syncs;
    if (n > 0 && kind != FAULT_SYNC) {
        f.fail_write_at = f.writes + n;
        f.write_errno = EIO;
        f.short_write = kind == FAULT_SHORT_WRITE;
        f.fail_write_count = kind == FAULT_SHORT_WRITE ? 2 : 1;
    } else if (n > 0) {
        f.fail_sync_at = f.syncs + n;
    }
    int failed = 0, read_only = 0;
    for (int i = 0; i < SEQ_OPS; i++) {
        int rc = ops[i].del ? model_delete(s, m, ops[i].key)
                            : model_put(s, m, ops[i].key, ops[i].len, (uint32_t)(i + 1));
        if (rc != 0 && rc != KV_EIO && rc != KV_EREADONLY)
            fail_msg("op %d (fault %d) = %d (%s)", i, n, rc, kv_strerror(rc));
        failed += rc == KV_EIO;
        read_only += rc == KV_EREADONLY;
        assert_store_equals_model(s, m); /* readers see the store as it was */
    }
    bool fired_before_close =
        n > 0 && (kind == FAULT_SYNC ? f.syncs >= f.fail_sync_at : f.writes >= f.fail_write_at);
    if (kind != FAULT_SYNC || mode == KV_SYNC_ALWAYS) {
        /* One failed write or data sync fails exactly one operation, and the
         * store goes on: nothing turns read-only. */
        assert_int_equal(read_only, 0);
        assert_int_equal(failed, fired_before_close ? 1 : 0);
    }
    int rc = tu_close_tracked(s);
    if (rc != 0 && rc != KV_EIO)
        fail_msg("kv_close (fault %d) = %d (%s)", n, rc, kv_strerror(rc));
    struct seq_result res = {f.writes - writes0, f.syncs - syncs0};

    kv_options plain = plain_options(mode, 4096);
    s = tu_open_tracked(dir, &plain);
    assert_clean_recovery(s);
    assert_store_equals_model(s, m);
    assert_kv_ok(tu_close_tracked(s));
    tu_rmtree(dir);
    free(dir);
    free(m);
    return res;
}

static void test_write_failures_at_every_position_never_lose_acked_data(void **state)
{
    struct tu_fixture *fx = *state;
    kv_sync_mode modes[] = {KV_SYNC_ALWAYS, KV_SYNC_NONE};
    enum fault_kind kinds[] = {FAULT_WRITE, FAULT_SHORT_WRITE};
    for (size_t mi = 0; mi < 2; mi++) {
        struct seq_result clean = run_sequence(fx->root, modes[mi], FAULT_WRITE, 0);
        assert_true(clean.total_writes >= 20);
        for (size_t ki = 0; ki < 2; ki++)
            for (int n = 1; n <= clean.total_writes + 1; n++)
                run_sequence(fx->root, modes[mi], kinds[ki], n);
    }
}

static void test_sync_failures_at_every_position_never_lose_acked_data(void **state)
{
    struct tu_fixture *fx = *state;
    kv_sync_mode modes[] = {KV_SYNC_ALWAYS, KV_SYNC_NONE};
    for (size_t mi = 0; mi < 2; mi++) {
        struct seq_result clean = run_sequence(fx->root, modes[mi], FAULT_SYNC, 0);
        assert_true(clean.total_syncs >= 2);
        for (int n = 1; n <= clean.total_syncs + 1; n++)
            run_sequence(fx->root, modes[mi], FAULT_SYNC, n);
    }
}

/* ---- 7: failures during compaction */

#define COMPACT_KEYS 40

/* Overwrites and deletes enough to spread over several 4 KiB segments. */
static void compaction_fill(kv_store *s, struct model *m)
{
    for (int round = 0; round < 4; round++)
        for (int i = 0; i < COMPACT_KEYS; i++)
            assert_int_equal(model_put(s, m, i, 60 + (size_t)(i * 37 + round * 11) % 200,
                                       (uint32_t)(round * 1000 + i)),
                             0);
    for (int i = 0; i < COMPACT_KEYS; i += 5)
        assert_int_equal(model_delete(s, m, i), 0);
    assert_kv_ok(kv_sync(s));
}

struct compact_result {
    int rc;
    int writes, syncs; /* made by kv_compact */
};

static struct compact_result run_compaction(const char *root, enum fault_kind kind, int n)
{
    char name[64];
    snprintf(name, sizeof(name), "compact-%d-%d", (int)kind, n);
    char *dir = tu_path(root, name);
    struct model *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    static struct tu_faults f; /* outlives a failed assertion (teardown) */
    tu_faults_init(&f);
    kv_options o = fault_options(&f, KV_SYNC_NONE, 4096);
    kv_store *s = tu_open_tracked(dir, &o);
    compaction_fill(s, m);
    kv_stats before = stats_of(s);
    assert_true(before.segments >= 4);
    char files_before[8192], files_after[8192];
    assert_int_equal(dir_files(dir, files_before, sizeof(files_before)), 0);

    int writes0 = f.writes, syncs0 = f.syncs;
    if (n > 0 && kind != FAULT_SYNC) {
        f.fail_write_at = f.writes + n;
        f.write_errno = ENOSPC;
        f.short_write = kind == FAULT_SHORT_WRITE;
        f.fail_write_count = kind == FAULT_SHORT_WRITE ? 2 : 1;
    } else if (n > 0) {
        f.fail_sync_at = f.syncs + n;
    }
    struct compact_result res = {.rc = kv_compact(s)};
    res.writes = f.writes - writes0;
    res.syncs = f.syncs - syncs0;
    f.fail_write_at = f.fail_sync_at = 0;
    if (res.rc != 0) {
        if (kind != FAULT_SYNC && res.rc != KV_ENOSPC && res.rc != KV_EIO)
            fail_msg("kv_compact with write %d failing = %d (%s)", n, res.rc, kv_strerror(res.rc));
        if (kind == FAULT_SYNC && res.rc != KV_EIO)
            fail_msg("kv_compact with sync %d failing = %d (%s)", n, res.rc, kv_strerror(res.rc));
        /* Nothing changed: every segment is still there, and no output is
         * left over. Compaction seals the active segment before it starts,
         * so the one new file allowed is the new active segment. */
        assert_int_equal(dir_files(dir, files_after, sizeof(files_after)), 0);
        kv_stats after = stats_of(s);
        char *active = segment_path(dir, after.active_segment_id);
        char active_line[128];
        snprintf(active_line, sizeof(active_line), "%s\n", strrchr(active, '/') + 1);
        free(active);
        assert_files_are(files_after, files_before,
                         after.active_segment_id != before.active_segment_id ? active_line : NULL);
        assert_int_equal(after.keys, before.keys);
        assert_int_equal(after.live_bytes, before.live_bytes);
        assert_int_equal(after.disk_bytes, before.disk_bytes);
    }
    /* Whatever happened: no temporary file, the same contents, writable. */
    assert_int_equal(dir_files(dir, files_after, sizeof(files_after)), 0);
    assert_false(stats_of(s).read_only);
    assert_store_equals_model(s, m);
    assert_int_equal(model_put(s, m, COMPACT_KEYS, 33, 4242), 0);
    assert_int_equal(model_delete(s, m, 1), 0);
    assert_store_equals_model(s, m);
    assert_kv_ok(tu_close_tracked(s));

    kv_options plain = plain_options(KV_SYNC_NONE, 4096);
    s = tu_open_tracked(dir, &plain);
    assert_clean_recovery(s);
    assert_store_equals_model(s, m);
    /* And the store can still be compacted once the fault is gone. */
    assert_kv_ok(kv_compact(s));
    assert_store_equals_model(s, m);
    assert_kv_ok(tu_close_tracked(s));
    s = tu_open_tracked(dir, &plain);
    assert_store_equals_model(s, m);
    assert_kv_ok(tu_close_tracked(s));
    assert_int_equal(dir_files(dir, files_after, sizeof(files_after)), 0);
    tu_rmtree(dir);
    free(dir);
    free(m);
    return res;
}

static void test_enospc_during_compaction_changes_nothing(void **state)
{
    struct tu_fixture *fx = *state;
    struct compact_result clean = run_compaction(fx->root, FAULT_WRITE, 0);
    assert_int_equal(clean.rc, 0);
    assert_true(clean.writes >= 2); /* at least one output and the snapshot */
    /* The first write of a compaction is an output's: it must fail it. */
    struct compact_result first = run_compaction(fx->root, FAULT_WRITE, 1);
    assert_kv_rc(first.rc, KV_ENOSPC);
    first = run_compaction(fx->root, FAULT_SHORT_WRITE, 1); /* half an output, then ENOSPC */
    assert_kv_rc(first.rc, KV_ENOSPC);
    for (int n = 2; n <= clean.writes; n++) {
        run_compaction(fx->root, FAULT_WRITE, n);
        run_compaction(fx->root, FAULT_SHORT_WRITE, n);
    }
}

static void test_sync_failures_during_compaction_change_nothing(void **state)
{
    struct tu_fixture *fx = *state;
    struct compact_result clean = run_compaction(fx->root, FAULT_SYNC, 0);
    assert_int_equal(clean.rc, 0);
    assert_true(clean.syncs >= 3);
    struct compact_result first = run_compaction(fx->root, FAULT_SYNC, 1);
    assert_kv_rc(first.rc, KV_EIO); /* an output's fdatasync */
    for (int n = 2; n <= clean.syncs; n++)
        run_compaction(fx->root, FAULT_SYNC, n);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_enospc_on_write_fails_that_put_and_next_put_succeeds,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_eio_on_write_fails_with_eio_and_store_stays_usable,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_short_write_then_error_cuts_partial_record, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_short_write_is_retried_to_completion, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_reads_fall_back_to_preadv_and_map_once_memory_returns,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_reads_stop_trying_to_map_a_segment_that_cannot_be,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_failed_fdatasync_fails_the_write_and_moves_to_a_fresh_segment, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_failed_fsync_in_interval_mode_makes_store_read_only,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_failed_fsync_before_a_snapshot_makes_store_read_only,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_failed_fsync_when_compaction_seals_makes_store_read_only, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_write_failures_at_every_position_never_lose_acked_data,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_sync_failures_at_every_position_never_lose_acked_data,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_enospc_during_compaction_changes_nothing, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_sync_failures_during_compaction_change_nothing,
                                        tu_setup, tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
