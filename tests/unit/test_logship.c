/*
 * test_logship.c - the log as replication ships it: kv_log_read hands out
 * whole, durable records from any position; kv_log_append stores them in a
 * second store, which then holds the same keys and values, survives a
 * reopen with its position, refuses a damaged record whole, and is told
 * when a compaction removed the position it asks for; with
 * KV_LOG_DROP_CACHE a unit leaves the page cache only once a sync covered
 * it (an I/O table records what each sync covered).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "testutil.h"

#define CAP (1u << 20)

static kv_options opts_small(void)
{
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 16u * 1024;
    o.compaction_interval_secs = 0;
    return o;
}

static char *second_dir(const struct tu_fixture *f)
{
    return tu_path(f->root, "replica");
}

/* Copies everything from *pos on from src into dst, META position named
 * "repl", with kv_log_append_flags and flags; returns the number of calls. */
static int ship_all_flags(kv_store *src, kv_store *dst, kv_log_pos *pos, unsigned flags)
{
    uint8_t *buf = malloc(CAP);
    assert_non_null(buf);
    int units = 0;
    for (;;) {
        size_t len = 0;
        kv_log_pos next;
        assert_kv_ok(kv_log_read(src, pos, buf, CAP, &len, &next));
        if (len == 0)
            break;
        char meta[64];
        int m = snprintf(meta, sizeof(meta), "%llu:%llu", (unsigned long long)next.seg,
                         (unsigned long long)next.off);
        if (flags == 0)
            assert_kv_ok(kv_log_append(dst, buf, len, "repl", 4, meta, (size_t)m));
        else
            assert_kv_ok(kv_log_append_flags(dst, buf, len, "repl", 4, meta, (size_t)m, flags));
        *pos = next;
        units++;
    }
    free(buf);
    return units;
}

static int ship_all(kv_store *src, kv_store *dst, kv_log_pos *pos)
{
    return ship_all_flags(src, dst, pos, 0);
}

/* An I/O table that records, per descriptor, how far writes reached and how
 * far the last successful fdatasync/fsync covered, and checks every
 * drop_cache against it. */
#define REC_FDS 4096

struct recorder {
    struct kv_io io;
    pthread_mutex_t mu;
    uint64_t written[REC_FDS];
    uint64_t synced[REC_FDS];
    int drops;          /* drop_cache calls */
    int drops_unsynced; /* ... naming bytes no sync covered */
    uint64_t dropped;   /* bytes named */
    bool fail_drops;    /* drop_cache fails with EIO */
};

static struct recorder *rec_of(void *ctx, int fd)
{
    assert_true(fd >= 0 && fd < REC_FDS);
    return ctx;
}

static int rec_open(void *ctx, const char *path, int flags, mode_t mode)
{
    int fd = kv_io_default()->open(NULL, path, flags, mode);
    if (fd >= 0) {
        struct recorder *r = rec_of(ctx, fd);
        pthread_mutex_lock(&r->mu);
        r->written[fd] = r->synced[fd] = 0;
        pthread_mutex_unlock(&r->mu);
    }
    return fd;
}

static ssize_t rec_pwritev(void *ctx, int fd, const struct iovec *iov, int n, off_t off)
{
    ssize_t w = kv_io_default()->pwritev(NULL, fd, iov, n, off);
    if (w > 0) {
        struct recorder *r = rec_of(ctx, fd);
        pthread_mutex_lock(&r->mu);
        if ((uint64_t)off + (uint64_t)w > r->written[fd])
            r->written[fd] = (uint64_t)off + (uint64_t)w;
        pthread_mutex_unlock(&r->mu);
    }
    return w;
}

/* A sync covers what was written before it began. */
static int rec_sync(struct recorder *r, int fd, int (*sync)(void *, int))
{
    pthread_mutex_lock(&r->mu);
    uint64_t covers = r->written[fd];
    pthread_mutex_unlock(&r->mu);
    int rc = sync(NULL, fd);
    if (rc == 0) {
        pthread_mutex_lock(&r->mu);
        if (covers > r->synced[fd])
            r->synced[fd] = covers;
        pthread_mutex_unlock(&r->mu);
    }
    return rc;
}

static int rec_fdatasync(void *ctx, int fd)
{
    return rec_sync(rec_of(ctx, fd), fd, kv_io_default()->fdatasync);
}

static int rec_fsync(void *ctx, int fd)
{
    return rec_sync(rec_of(ctx, fd), fd, kv_io_default()->fsync);
}

static int rec_drop_cache(void *ctx, int fd, off_t off, off_t len)
{
    struct recorder *r = rec_of(ctx, fd);
    pthread_mutex_lock(&r->mu);
    r->drops++;
    r->dropped += (uint64_t)len;
    if ((uint64_t)off + (uint64_t)len > r->synced[fd])
        r->drops_unsynced++;
    bool fail = r->fail_drops;
    pthread_mutex_unlock(&r->mu);
    if (fail) {
        errno = EIO;
        return -1;
    }
    return kv_io_default()->drop_cache(NULL, fd, off, len);
}

static void recorder_init(struct recorder *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    r->io = (struct kv_io){.ctx = r,
                           .open = rec_open,
                           .pwritev = rec_pwritev,
                           .fdatasync = rec_fdatasync,
                           .fsync = rec_fsync,
                           .drop_cache = rec_drop_cache};
}

static int same_key(const void *key, size_t key_len, void *ctx)
{
    kv_store **pair = ctx;
    void *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    assert_kv_ok(kv_get(pair[0], key, key_len, &a, &al));
    assert_kv_ok(kv_get(pair[1], key, key_len, &b, &bl));
    assert_int_equal(al, bl);
    assert_memory_equal(a, b, al);
    kv_free(a);
    kv_free(b);
    return 0;
}

/* The position r keeps in its META "repl" record is pos. */
static void assert_stored_position(kv_store *r, kv_log_pos pos)
{
    void *meta = NULL;
    size_t mlen = 0;
    assert_kv_ok(kv_meta_get(r, "repl", 4, &meta, &mlen));
    char want[64];
    snprintf(want, sizeof(want), "%llu:%llu", (unsigned long long)pos.seg,
             (unsigned long long)pos.off);
    assert_string_equal((char *)meta, want);
    kv_free(meta);
}

static void assert_same_contents(kv_store *a, kv_store *b)
{
    kv_stats sa, sb;
    assert_kv_ok(kv_get_stats(a, &sa));
    assert_kv_ok(kv_get_stats(b, &sb));
    assert_int_equal(sa.keys, sb.keys);
    kv_store *pair[2] = {a, b};
    assert_kv_ok(kv_list(a, NULL, 0, NULL, 0, 0, same_key, pair));
}

static void fill(kv_store *s, int from, int to)
{
    for (int i = from; i < to; i++) {
        char key[32];
        snprintf(key, sizeof(key), "key-%05d", i % 700);
        size_t n = (size_t)(i * 37) % 3000;
        char *val = malloc(n + 1);
        assert_non_null(val);
        memset(val, 'a' + i % 26, n);
        if (i % 11 == 5) {
            int rc = kv_delete(s, key, strlen(key));
            assert_true(rc == 0 || rc == KV_ENOTFOUND);
        } else
            assert_kv_ok(kv_put(s, key, strlen(key), val, n));
        free(val);
    }
}

static void test_a_second_store_fed_the_log_holds_the_same_contents(void **state)
{
    struct tu_fixture *f = *state;
    char *rdir = second_dir(f);
    kv_options o = opts_small();
    kv_store *p = tu_open_tracked(f->dir, &o);
    fill(p, 0, 2000);
    assert_kv_ok(kv_put(p, "empty", 5, "", 0));
    kv_store *r = tu_open(rdir, &o);
    kv_log_pos pos = {0, 0};
    assert_true(ship_all(p, r, &pos) > 1);
    kv_log_pos end;
    assert_kv_ok(kv_log_end(p, &end));
    assert_int_equal(pos.seg, end.seg);
    assert_int_equal(pos.off, end.off);
    assert_same_contents(p, r);

    /* From behind: more writes, shipped from where the replica stopped. */
    fill(p, 2000, 2600);
    ship_all(p, r, &pos);
    assert_same_contents(p, r);

    /* The position survives a reopen, and no META shows as a key. */
    assert_kv_ok(kv_close(r));
    r = tu_open(rdir, &o);
    assert_stored_position(r, pos);
    assert_same_contents(p, r);
    assert_kv_ok(kv_close(r));
    assert_kv_ok(tu_close_tracked(p));
    free(rdir);
}

static void test_batches_and_compressed_values_arrive_whole(void **state)
{
    struct tu_fixture *f = *state;
    char *rdir = second_dir(f);
    kv_options o = opts_small();
    o.compression = KV_COMPRESS_ZSTD;
    kv_store *p = tu_open_tracked(f->dir, &o);
    char big[4000];
    memset(big, 'z', sizeof(big));
    assert_kv_ok(kv_put(p, "gone", 4, "x", 1));
    kv_op ops[3] = {
        {.type = KV_WRITE_PUT, .key = "b1", .key_len = 2, .val = "one", .val_len = 3},
        {.type = KV_WRITE_PUT, .key = "b2", .key_len = 2, .val = big, .val_len = sizeof(big)},
        {.type = KV_WRITE_DEL, .key = "gone", .key_len = 4},
    };
    assert_kv_ok(kv_write(p, ops, 3));
    uint8_t buf[65536];
    size_t len;
    kv_log_pos pos = {0, 0}, next;
    assert_kv_ok(kv_log_read(p, &pos, buf, sizeof(buf), &len, &next));
    /* The batch is one record: a read that cannot take it whole takes
     * nothing of it. */
    size_t first = 15 + 4 + 1;
    kv_log_pos after_first = {pos.seg, pos.off + first};
    size_t blen;
    assert_kv_rc(kv_log_read(p, &after_first, buf, 64, &blen, &next), KV_ETOOBIG);
    assert_true(blen > 64);
    kv_store *r = tu_open(rdir, &o);
    assert_kv_ok(kv_log_read(p, &pos, buf, sizeof(buf), &len, &next));
    assert_int_equal(buf[first + 2], KV_OP_BATCH);
    assert_int_equal(len, first + blen);
    assert_kv_ok(kv_log_append(r, buf, len, "repl", 4, "x", 1));
    tu_assert_value(r, "b1", "one", 3);
    tu_assert_value(r, "b2", big, sizeof(big));
    void *v = NULL;
    size_t vl;
    assert_kv_rc(kv_get(r, "gone", 4, &v, &vl), KV_ENOTFOUND);
    assert_same_contents(p, r);
    assert_kv_ok(kv_close(r));
    assert_kv_ok(tu_close_tracked(p));
    free(rdir);
}

static void test_a_damaged_record_is_refused_and_nothing_of_its_unit_is_stored(void **state)
{
    struct tu_fixture *f = *state;
    char *rdir = second_dir(f);
    kv_options o = opts_small();
    kv_store *p = tu_open_tracked(f->dir, &o);
    assert_kv_ok(kv_put(p, "a", 1, "one", 3));
    assert_kv_ok(kv_put(p, "b", 1, "two", 3));
    uint8_t buf[4096];
    size_t len;
    kv_log_pos pos = {0, 0}, next;
    assert_kv_ok(kv_log_read(p, &pos, buf, sizeof(buf), &len, &next));
    assert_int_equal(len, 2 * (15 + 1 + 3));
    kv_store *r = tu_open(rdir, &o);
    buf[len - 6] ^= 0x20; /* a byte of b's value */
    assert_kv_rc(kv_log_append(r, buf, len, "repl", 4, "x", 1), KV_ECORRUPT);
    void *v = NULL;
    size_t vl;
    assert_kv_rc(kv_get(r, "a", 1, &v, &vl), KV_ENOTFOUND);
    buf[len - 6] ^= 0x20;
    assert_kv_rc(kv_log_append(r, buf, len - 1, "repl", 4, "x", 1), KV_ECORRUPT);
    assert_kv_ok(kv_log_append(r, buf, len, "repl", 4, "x", 1));
    tu_assert_value(r, "b", "two", 3);
    assert_kv_ok(kv_close(r));
    assert_kv_ok(tu_close_tracked(p));
    free(rdir);
}

static void test_a_unit_leaves_the_page_cache_only_once_a_sync_covered_it(void **state)
{
    struct tu_fixture *f = *state;
    char *rdir = second_dir(f);
    kv_options o = opts_small();
    kv_store *p = tu_open_tracked(f->dir, &o);
    fill(p, 0, 2000);
    struct recorder rec;
    recorder_init(&rec);
    kv_options ro = opts_small();
    ro.io = &rec.io;
    /* Zeros written and synced ahead would count as covered here. */
    ro.segment_preallocate = 0;
    kv_store *r = tu_open(rdir, &ro);
    kv_log_pos pos = {0, 0};
    int units = ship_all_flags(p, r, &pos, KV_LOG_DROP_CACHE);
    assert_true(units > 1);
    kv_stats st;
    assert_kv_ok(kv_get_stats(p, &st));
    /* One drop per unit, each over bytes a sync had covered: its records
     * and the META record after them. */
    assert_int_equal(rec.drops, units);
    assert_int_equal(rec.drops_unsynced, 0);
    assert_true(rec.dropped > st.disk_bytes);
    assert_same_contents(p, r);

    /* Without the flag nothing is dropped; an unknown flag is refused. */
    fill(p, 2000, 2300);
    ship_all(p, r, &pos);
    assert_int_equal(rec.drops, units);
    assert_kv_rc(kv_log_append_flags(r, "", 0, "repl", 4, "x", 1, 0x80), KV_EINVAL);

    /* A drop that fails is advice not taken: the unit is stored. */
    rec.fail_drops = true;
    fill(p, 2300, 2600);
    ship_all_flags(p, r, &pos, KV_LOG_DROP_CACHE);
    assert_true(rec.drops > units);
    assert_int_equal(rec.drops_unsynced, 0);
    assert_same_contents(p, r);

    /* And all of it, with its position, survives a reopen. */
    assert_kv_ok(kv_close(r));
    r = tu_open(rdir, &ro);
    assert_stored_position(r, pos);
    assert_same_contents(p, r);
    assert_kv_ok(kv_close(r));
    assert_kv_ok(tu_close_tracked(p));
    pthread_mutex_destroy(&rec.mu);
    free(rdir);
}

static void test_reads_stop_at_whole_records_and_say_when_one_does_not_fit(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = opts_small();
    kv_store *p = tu_open_tracked(f->dir, &o);
    char val[1000];
    memset(val, 'v', sizeof(val));
    for (int i = 0; i < 5; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%d", i);
        assert_kv_ok(kv_put(p, key, strlen(key), val, sizeof(val)));
    }
    uint8_t buf[2500];
    size_t len = 0, rec = 15 + 2 + sizeof(val);
    kv_log_pos pos = {0, 0}, next;
    assert_kv_ok(kv_log_read(p, &pos, buf, sizeof(buf), &len, &next));
    assert_int_equal(len, 2 * rec);
    assert_int_equal(next.off, pos.off + 2 * rec);
    assert_kv_rc(kv_log_read(p, &next, buf, 100, &len, &pos), KV_ETOOBIG);
    assert_int_equal(len, rec);
    /* At the end: nothing yet, and a wait that times out says so. */
    kv_log_pos end;
    assert_kv_ok(kv_log_end(p, &end));
    assert_kv_ok(kv_log_read(p, &end, buf, sizeof(buf), &len, &next));
    assert_int_equal(len, 0);
    assert_kv_ok(kv_log_wait(p, &end, 10));
    /* Past the end: the log never held it. */
    kv_log_pos beyond = {end.seg, end.off + 1};
    assert_kv_rc(kv_log_read(p, &beyond, buf, sizeof(buf), &len, &next), KV_ENOTFOUND);
    assert_kv_ok(tu_close_tracked(p));
}

static void test_a_position_that_compaction_removed_is_not_found(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = opts_small();
    kv_store *p = tu_open_tracked(f->dir, &o);
    fill(p, 0, 1500);
    uint8_t *buf = malloc(CAP);
    size_t len;
    kv_log_pos pos = {0, 0}, next;
    assert_kv_ok(kv_log_read(p, &pos, buf, CAP, &len, &next));
    assert_kv_ok(kv_compact(p));
    assert_kv_rc(kv_log_read(p, &next, buf, CAP, &len, &pos), KV_ENOTFOUND);
    /* A position at the end of the log stays good across a compaction that
     * removes its segment: the reader goes on from the next segment. */
    kv_log_pos end;
    assert_kv_ok(kv_log_end(p, &end));
    assert_kv_ok(kv_compact(p));
    assert_kv_ok(kv_put(p, "after", 5, "x", 1));
    assert_kv_ok(kv_log_read(p, &end, buf, CAP, &len, &next));
    assert_true(len > 0);
    assert_true(end.seg > pos.seg);
    free(buf);
    assert_kv_ok(tu_close_tracked(p));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_second_store_fed_the_log_holds_the_same_contents,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_batches_and_compressed_values_arrive_whole, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_damaged_record_is_refused_and_nothing_of_its_unit_is_stored, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_unit_leaves_the_page_cache_only_once_a_sync_covered_it, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_reads_stop_at_whole_records_and_say_when_one_does_not_fit, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_a_position_that_compaction_removed_is_not_found,
                                        tu_setup, tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
