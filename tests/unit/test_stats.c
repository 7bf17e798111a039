/*
 * test_stats.c - what kv_get_stats and kv_get_segment_stats report beyond
 * the counters: each segment's size and live bytes, the free space of the
 * data directory's file system (through the I/O table), and compaction, while
 * it runs and after.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "testutil.h"

/* An I/O table whose statvfs answers what the test says, and whose open of
 * a compaction's output (segment-N.dat.tmp) can be held until released. */
struct disk {
    struct kv_io io;
    int statvfs_errno;        /* non-zero: statvfs fails with it */
    unsigned long bavail;     /* f_bavail */
    unsigned long blocks;     /* f_blocks */
    unsigned long frsize;     /* f_frsize */
    atomic_bool hold_outputs; /* opening a compaction output waits... */
    atomic_bool held;         /* ...says so here... */
    atomic_bool release;      /* ...until this is set */
};

static int disk_statvfs(void *ctx, const char *path, struct statvfs *st)
{
    struct disk *d = ctx;
    (void)path;
    if (d->statvfs_errno != 0) {
        errno = d->statvfs_errno;
        return -1;
    }
    memset(st, 0, sizeof(*st));
    st->f_bavail = d->bavail;
    st->f_blocks = d->blocks;
    st->f_frsize = d->frsize;
    st->f_bsize = d->frsize;
    return 0;
}

static bool is_compaction_output(const char *path)
{
    size_t len = strlen(path);
    return strstr(path, "/segment-") != NULL && len > 8 && strcmp(path + len - 8, ".dat.tmp") == 0;
}

static int disk_open(void *ctx, const char *path, int flags, mode_t mode)
{
    struct disk *d = ctx;
    if (atomic_load(&d->hold_outputs) && is_compaction_output(path)) {
        atomic_store(&d->held, true);
        uint64_t deadline = tu_now_ms() + TU_WAIT_MS;
        while (!atomic_load(&d->release) && tu_now_ms() < deadline)
            tu_pause_ms(1);
    }
    return kv_io_default()->open(NULL, path, flags, mode);
}

static void disk_init(struct disk *d)
{
    memset(d, 0, sizeof(*d));
    d->io.ctx = d;
    d->io.statvfs = disk_statvfs;
    d->io.open = disk_open;
    d->bavail = 1u << 20;
    d->blocks = 1u << 21;
    d->frsize = 4096;
}

static kv_store *open_on(const char *dir, struct disk *d, uint64_t segment_size)
{
    kv_options o;
    kv_options_init(&o);
    o.segment_size = segment_size;
    o.compaction_interval_secs = 0;
    o.io = &d->io;
    return tu_open_tracked(dir, &o);
}

static void put_numbered(kv_store *s, int i, size_t len)
{
    char key[32];
    char val[512];
    assert_true(len <= sizeof(val));
    memset(val, 'a' + i % 26, len);
    int n = snprintf(key, sizeof(key), "key-%05d", i);
    assert_kv_ok(kv_put(s, key, (size_t)n, val, len));
}

static void test_segment_stats_list_every_segment_in_order_and_add_up_to_kv_stats(void **state)
{
    struct tu_fixture *f = *state;
    struct disk d;
    disk_init(&d);
    kv_store *s = open_on(f->dir, &d, 8u * 1024);
    for (int i = 0; i < 200; i++)
        put_numbered(s, i % 120, 200); /* 80 overwrites: dead bytes */
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    kv_segment_stats segs[256];
    size_t n = 0;
    assert_kv_ok(kv_get_segment_stats(s, segs, 256, &n));
    assert_int_equal(n, st.segments);
    assert_true(n >= 4);
    uint64_t disk = 0, live = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            assert_true(segs[i].id > segs[i - 1].id);
        assert_true(segs[i].live_bytes <= segs[i].disk_bytes);
        assert_int_equal(segs[i].active, i == n - 1);
        disk += segs[i].disk_bytes;
        live += segs[i].live_bytes;
    }
    assert_int_equal(segs[0].id, st.oldest_segment_id);
    assert_int_equal(segs[n - 1].id, st.active_segment_id);
    assert_int_equal(disk, st.disk_bytes);
    assert_int_equal(live, st.live_bytes);
    assert_true(disk > live);
    tu_close_tracked(s);
}

static void test_an_overwritten_record_is_dead_bytes_of_its_segment(void **state)
{
    struct tu_fixture *f = *state;
    struct disk d;
    disk_init(&d);
    kv_store *s = open_on(f->dir, &d, 1u << 20);
    assert_kv_ok(kv_put(s, "k", 1, "first value", 11));
    kv_segment_stats before[4];
    size_t n = 0;
    assert_kv_ok(kv_get_segment_stats(s, before, 4, &n));
    assert_int_equal(n, 1);
    assert_int_equal(before[0].live_bytes, before[0].disk_bytes);
    assert_kv_ok(kv_put(s, "k", 1, "second", 6));
    kv_segment_stats after[4];
    assert_kv_ok(kv_get_segment_stats(s, after, 4, &n));
    assert_int_equal(n, 1);
    /* The first record (its whole size) is dead; the second is live. */
    assert_int_equal(after[0].disk_bytes - after[0].live_bytes, before[0].disk_bytes);
    assert_int_equal(after[0].live_bytes, after[0].disk_bytes - before[0].disk_bytes);
    tu_close_tracked(s);
}

static void test_segment_stats_give_the_count_when_the_array_is_short(void **state)
{
    struct tu_fixture *f = *state;
    struct disk d;
    disk_init(&d);
    kv_store *s = open_on(f->dir, &d, 8u * 1024);
    for (int i = 0; i < 100; i++)
        put_numbered(s, i, 200);
    size_t total = 0;
    assert_kv_ok(kv_get_segment_stats(s, NULL, 0, &total));
    assert_true(total >= 2);
    kv_segment_stats two[2];
    memset(two, 0xee, sizeof(two));
    size_t n = 0;
    assert_kv_ok(kv_get_segment_stats(s, two, 1, &n));
    assert_int_equal(n, total);
    assert_true(two[0].disk_bytes > 0 && two[0].disk_bytes < (1u << 20));
    assert_int_equal(two[1].id, 0xeeeeeeeeeeeeeeeeull); /* past max: untouched */
    tu_close_tracked(s);
}

static void test_segment_stats_refuse_null_arguments(void **state)
{
    struct tu_fixture *f = *state;
    struct disk d;
    disk_init(&d);
    kv_store *s = open_on(f->dir, &d, 1u << 20);
    kv_segment_stats one;
    size_t n = 0;
    assert_kv_rc(kv_get_segment_stats(NULL, &one, 1, &n), KV_EINVAL);
    assert_kv_rc(kv_get_segment_stats(s, &one, 1, NULL), KV_EINVAL);
    assert_kv_rc(kv_get_segment_stats(s, NULL, 1, &n), KV_EINVAL);
    tu_close_tracked(s);
}

static void test_stats_report_the_disk_that_the_io_table_reports(void **state)
{
    struct tu_fixture *f = *state;
    struct disk d;
    disk_init(&d);
    kv_store *s = open_on(f->dir, &d, 1u << 20);
    d.bavail = 250;
    d.blocks = 1000;
    d.frsize = 4096;
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_int_equal(st.disk_free_bytes, 250u * 4096u);
    assert_int_equal(st.disk_size_bytes, 1000u * 4096u);
    tu_close_tracked(s);
}

static void test_stats_report_no_disk_figures_when_statvfs_fails(void **state)
{
    struct tu_fixture *f = *state;
    struct disk d;
    disk_init(&d);
    kv_store *s = open_on(f->dir, &d, 1u << 20);
    assert_kv_ok(kv_put(s, "k", 1, "v", 1));
    d.statvfs_errno = EIO;
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_int_equal(st.disk_free_bytes, 0);
    assert_int_equal(st.disk_size_bytes, 0);
    assert_int_equal(st.keys, 1);
    tu_close_tracked(s);
}

struct compaction_run {
    kv_store *s;
    int rc;
};

static void *compact_thread(void *arg)
{
    struct compaction_run *run = arg;
    run->rc = kv_compact(run->s);
    return NULL;
}

static void test_compacting_is_reported_while_a_compaction_runs(void **state)
{
    struct tu_fixture *f = *state;
    struct disk d;
    disk_init(&d);
    kv_store *s = open_on(f->dir, &d, 8u * 1024);
    for (int i = 0; i < 200; i++)
        put_numbered(s, i % 20, 200);
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_false(st.compacting);
    assert_int_equal(st.last_compaction_reclaimed, 0);

    atomic_store(&d.hold_outputs, true);
    struct compaction_run run = {.s = s, .rc = -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, compact_thread, &run), 0);
    uint64_t deadline = tu_now_ms() + TU_WAIT_MS;
    while (!atomic_load(&d.held) && tu_now_ms() < deadline)
        tu_pause_ms(1);
    assert_true(atomic_load(&d.held));
    assert_kv_ok(kv_get_stats(s, &st));
    assert_true(st.compacting);
    atomic_store(&d.release, true);
    pthread_join(t, NULL);
    assert_kv_ok(run.rc);

    kv_stats after;
    assert_kv_ok(kv_get_stats(s, &after));
    assert_false(after.compacting);
    assert_int_equal(after.last_compaction_error, 0);
    assert_int_equal(after.compactions, 1);
    assert_true(after.last_compaction_reclaimed > 0);
    assert_int_equal(after.last_compaction_reclaimed, after.compaction_bytes_reclaimed);
    tu_close_tracked(s);
}

static void test_a_refused_compaction_is_the_last_result_until_one_succeeds(void **state)
{
    struct tu_fixture *f = *state;
    struct disk d;
    disk_init(&d);
    kv_store *s = open_on(f->dir, &d, 8u * 1024);
    for (int i = 0; i < 100; i++)
        put_numbered(s, i % 10, 200);
    d.bavail = 1; /* 4 KiB free: the live data does not fit */
    assert_kv_rc(kv_compact(s), KV_ENOSPC);
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_false(st.compacting);
    assert_int_equal(st.last_compaction_error, KV_ENOSPC);
    assert_int_equal(st.compactions, 0);

    d.bavail = 1u << 20;
    assert_kv_ok(kv_compact(s));
    assert_kv_ok(kv_get_stats(s, &st));
    assert_int_equal(st.last_compaction_error, 0);
    assert_true(st.last_compaction_reclaimed > 0);
    tu_close_tracked(s);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_segment_stats_list_every_segment_in_order_and_add_up_to_kv_stats, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_an_overwritten_record_is_dead_bytes_of_its_segment,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_segment_stats_give_the_count_when_the_array_is_short,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_segment_stats_refuse_null_arguments, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_stats_report_the_disk_that_the_io_table_reports,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_stats_report_no_disk_figures_when_statvfs_fails,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_compacting_is_reported_while_a_compaction_runs,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_refused_compaction_is_the_last_result_until_one_succeeds, tu_setup, tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
