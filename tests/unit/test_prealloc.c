/*
 * test_prealloc.c - zeros written ahead of the active segment: they are
 * there while the store is open, cut off when a segment is sealed and at
 * close; and how the log's end is read after a crash: a zero tail is not
 * damage, a record torn inside preallocated space is a torn record, and
 * zeros followed by records are damage, never the end of the log.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "record.h"
#include "testutil.h"

static kv_options prealloc_options(void)
{
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 64u * 1024;
    o.segment_preallocate = 16u * 1024;
    o.compaction_interval_secs = 0;
    return o;
}

static char *segment_path(const char *dir, uint64_t id)
{
    char name[64];
    snprintf(name, sizeof(name), "segment-%llu.dat", (unsigned long long)id);
    return tu_path(dir, name);
}

static kv_stats stats_of(kv_store *s)
{
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    return st;
}

/* What kv_scan reports, in order: one letter per region (o ok, b
 * bad-checksum, d damaged, t incomplete, z zero tail), and the zero tail's
 * length. */
struct trace {
    char kinds[512];
    size_t n;
    uint64_t zero_len;
};

static int trace_record(const kv_record_info *info, void *ctx)
{
    struct trace *t = ctx;
    static const char letter[] = {'o', 'b', 'd', 't', 'u', 'z'};
    if (t->n + 1 < sizeof(t->kinds))
        t->kinds[t->n++] = info->status <= KV_REC_ZERO_TAIL ? letter[info->status] : '?';
    if (info->status == KV_REC_ZERO_TAIL)
        t->zero_len = info->length;
    return 0;
}

static struct trace trace_of(const char *dir)
{
    struct trace t = {0};
    assert_kv_ok(kv_scan(dir, trace_record, &t));
    return t;
}

/* A directory of one segment: the given records, then zeros. */
static void write_segment(const char *dir, const uint8_t *bytes, size_t len, size_t zeros)
{
    mkdir(dir, 0755);
    uint8_t *b = calloc(1, len + zeros);
    assert_non_null(b);
    memcpy(b, bytes, len);
    char *path = segment_path(dir, 1);
    tu_write_file(path, b, len + zeros);
    free(path);
    free(b);
}

/* While the store is open, its active segment's file reaches past its
 * records, with zeros; a sealed segment and, at close, the active one are
 * cut back to their records. */
static void test_zeros_go_ahead_of_the_log_and_are_cut_at_seal_and_close(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = prealloc_options();
    kv_store *s = tu_open(f->dir, &o);
    char val[1000];
    memset(val, 'v', sizeof(val));
    assert_kv_ok(kv_put(s, "first", 5, val, sizeof(val)));
    char *seg1 = segment_path(f->dir, 1);
    uint64_t until = tu_now_ms() + TU_WAIT_MS;
    while (tu_file_size(seg1) <= stats_of(s).disk_bytes && tu_now_ms() < until)
        tu_pause_ms(1);
    kv_stats st = stats_of(s);
    assert_true(tu_file_size(seg1) > st.disk_bytes); /* zeros ahead */
    tu_assert_log_ends_at(seg1, (size_t)st.disk_bytes);
    assert_true(st.prealloc_bytes > 0 && st.prealloc_syncs > 0);

    for (int i = 0; stats_of(s).active_segment_id == 1; i++) {
        char key[16];
        snprintf(key, sizeof(key), "key-%03d", i);
        assert_kv_ok(kv_put(s, key, strlen(key), val, sizeof(val)));
    }
    char *seg2 = segment_path(f->dir, 2);
    until = tu_now_ms() + TU_WAIT_MS;
    while (tu_file_size(seg2) <= stats_of(s).disk_bytes - tu_file_size(seg1) && tu_now_ms() < until)
        tu_pause_ms(1);
    struct trace t = trace_of(f->dir);
    assert_null(strchr(t.kinds, 'd'));
    assert_null(strchr(t.kinds, 'b'));
    size_t sealed = tu_file_size(seg1);
    assert_int_equal(t.kinds[t.n - 1], 'z'); /* the active segment's */
    assert_kv_ok(kv_close(s));

    assert_int_equal(tu_file_size(seg1), sealed); /* cut when sealed */
    t = trace_of(f->dir);
    assert_null(strchr(t.kinds, 'z')); /* and the active one at close */
    assert_int_equal(t.n, (size_t)stats_of((s = tu_open(f->dir, &o))).keys);
    assert_kv_ok(kv_close(s));
    free(seg1);
    free(seg2);
}

/* After a crash with zeros at the end of the log: kv_scan reports them as a
 * zero tail, not damage; the open cuts them without counting them as torn
 * or damaged, and every record is kept. */
static void test_zero_tail_after_a_crash_is_cut_and_is_not_damage(void **state)
{
    struct tu_fixture *f = *state;
    uint8_t *b = NULL;
    size_t len = 0;
    tu_append_record(&b, &len, KV_OP_SET, "a", 1, "alpha", 5);
    tu_append_record(&b, &len, KV_OP_SET, "b", 1, "bravo", 5);
    write_segment(f->dir, b, len, 40000);
    struct trace t = trace_of(f->dir);
    assert_string_equal(t.kinds, "ooz");
    assert_int_equal(t.zero_len, 40000);

    kv_options o = prealloc_options();
    o.segment_preallocate = 0;
    kv_store *s = tu_open(f->dir, &o);
    kv_stats st = stats_of(s);
    assert_int_equal(st.checksum_errors, 0);
    assert_int_equal(st.torn_bytes_truncated, 0);
    tu_assert_str(s, "a", "alpha");
    tu_assert_str(s, "b", "bravo");
    char *path = segment_path(f->dir, 1);
    assert_int_equal(tu_file_size(path), len);
    assert_kv_ok(kv_close(s));
    free(path);
    free(b);
}

/* A record torn inside preallocated space (its first bytes written, the
 * rest still zeros) is a torn record: cut, with the zeros after it. */
static void test_record_torn_inside_preallocated_space_is_a_torn_record(void **state)
{
    struct tu_fixture *f = *state;
    uint8_t *b = NULL;
    size_t len = 0;
    tu_append_record(&b, &len, KV_OP_SET, "a", 1, "alpha", 5);
    size_t good = len;
    char val[3000];
    memset(val, 'x', sizeof(val));
    tu_append_record(&b, &len, KV_OP_SET, "torn", 4, val, sizeof(val));
    size_t written = good + 1000; /* a page-sized piece of it made it */
    write_segment(f->dir, b, written, (len - written) + 20000);
    struct trace t = trace_of(f->dir);
    assert_string_equal(t.kinds, "otz");

    kv_options o = prealloc_options();
    o.segment_preallocate = 0;
    kv_store *s = tu_open(f->dir, &o);
    assert_int_equal(stats_of(s).torn_bytes_truncated, written - good);
    tu_assert_str(s, "a", "alpha");
    void *v = NULL;
    size_t n = 0;
    assert_kv_rc(kv_get(s, "torn", 4, &v, &n), KV_ENOTFOUND);
    char *path = segment_path(f->dir, 1);
    assert_int_equal(tu_file_size(path), good);
    assert_kv_ok(kv_close(s));
    free(path);
    free(b);
}

/* Zeros in the middle of the log, with records after them, are damage (a
 * zeroed block), not the end of the log: the records after them are kept,
 * the damage counted; and a damaged record before a zero tail is damage
 * too. */
static void test_zeros_followed_by_records_are_damage_not_the_end_of_the_log(void **state)
{
    struct tu_fixture *f = *state;
    uint8_t *b = NULL;
    size_t len = 0;
    tu_append_record(&b, &len, KV_OP_SET, "a", 1, "alpha", 5);
    size_t hole_at = len;
    tu_append_record(&b, &len, KV_OP_SET, "b", 1, "bravo", 5);
    size_t hole_end = len;
    tu_append_record(&b, &len, KV_OP_SET, "c", 1, "charlie", 7);
    size_t damaged_at = len;
    tu_append_record(&b, &len, KV_OP_SET, "d", 1, "delta", 5);
    memset(b + hole_at, 0, hole_end - hole_at);        /* b's record zeroed */
    b[damaged_at + RECORD_HEADER_LEN + 1 + 2] ^= 0x40; /* d's value */
    write_segment(f->dir, b, len, 5000);
    struct trace t = trace_of(f->dir);
    assert_string_equal(t.kinds, "odobz");

    kv_options o = prealloc_options();
    o.segment_preallocate = 0;
    kv_store *s = tu_open(f->dir, &o);
    tu_assert_str(s, "a", "alpha");
    tu_assert_str(s, "c", "charlie");
    void *v = NULL;
    size_t n = 0;
    assert_kv_rc(kv_get(s, "b", 1, &v, &n), KV_ENOTFOUND);
    assert_kv_rc(kv_get(s, "d", 1, &v, &n), KV_ENOTFOUND); /* torn: the last record */
    kv_stats st = stats_of(s);
    assert_int_equal(st.checksum_errors, 1); /* the zeroed record */
    assert_int_equal(st.torn_bytes_truncated, len - damaged_at);
    assert_kv_ok(kv_close(s));
    free(b);
}

/* A zero tail in a sealed segment (a cut that never happened) is ignored,
 * not damage, and the sealed segment is not rewritten. */
static void test_zero_tail_of_a_sealed_segment_is_ignored(void **state)
{
    struct tu_fixture *f = *state;
    uint8_t *b = NULL;
    size_t len = 0;
    tu_append_record(&b, &len, KV_OP_SET, "a", 1, "alpha", 5);
    write_segment(f->dir, b, len, 3000);
    uint8_t *b2 = NULL;
    size_t len2 = 0;
    tu_append_record(&b2, &len2, KV_OP_SET, "b", 1, "bravo", 5);
    char *seg2 = segment_path(f->dir, 2);
    tu_write_file(seg2, b2, len2);
    kv_options o = prealloc_options();
    kv_store *s = tu_open(f->dir, &o);
    kv_stats st = stats_of(s);
    assert_int_equal(st.checksum_errors, 0);
    tu_assert_str(s, "a", "alpha");
    tu_assert_str(s, "b", "bravo");
    char *seg1 = segment_path(f->dir, 1);
    assert_int_equal(tu_file_size(seg1), len + 3000);
    assert_kv_ok(kv_close(s));
    free(seg1);
    free(seg2);
    free(b);
    free(b2);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_zeros_go_ahead_of_the_log_and_are_cut_at_seal_and_close, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_zero_tail_after_a_crash_is_cut_and_is_not_damage,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_record_torn_inside_preallocated_space_is_a_torn_record,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_zeros_followed_by_records_are_damage_not_the_end_of_the_log, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_zero_tail_of_a_sealed_segment_is_ignored, tu_setup,
                                        tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
