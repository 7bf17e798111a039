/*
 * test_basic.c - round trips of every public operation through the C API.
 */
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "testutil.h"

/* How far past the last named code (and above KV_OK) the strerror test
 * looks for codes that have a text. */
#define STRERROR_SCAN 1000

struct fixture {
    char *root;
    char *dir;
    kv_store *s;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->root = tu_mkdtemp();
    f->dir = tu_path(f->root, "db");
    f->s = tu_open(f->dir, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    kv_close(f->s);
    tu_rmtree(f->root);
    free(f->dir);
    free(f->root);
    free(f);
    return 0;
}

static void reopen(struct fixture *f)
{
    assert_kv_ok(kv_close(f->s));
    f->s = tu_open(f->dir, NULL);
}

static void test_put_then_get_returns_the_value(void **state)
{
    struct fixture *f = *state;
    assert_kv_ok(kv_put(f->s, "name", 4, "Alice", 5));
    tu_assert_str(f->s, "name", "Alice");
}

static void test_get_of_missing_key_is_not_found(void **state)
{
    struct fixture *f = *state;
    void *v = (void *)0x1;
    size_t n = 7;
    assert_kv_rc(kv_get(f->s, "nope", 4, &v, &n), KV_ENOTFOUND);
    assert_ptr_equal(v, (void *)0x1); /* outputs untouched on failure */
    assert_int_equal(n, 7);
}

static void test_overwrite_returns_newest_value(void **state)
{
    struct fixture *f = *state;
    assert_kv_ok(kv_put(f->s, "k", 1, "one", 3));
    assert_kv_ok(kv_put(f->s, "k", 1, "three", 5));
    tu_assert_str(f->s, "k", "three");
    reopen(f);
    tu_assert_str(f->s, "k", "three");
}

static void test_delete_removes_key_and_survives_reopen(void **state)
{
    struct fixture *f = *state;
    assert_kv_ok(kv_put(f->s, "k", 1, "v", 1));
    assert_kv_ok(kv_delete(f->s, "k", 1));
    assert_kv_rc(kv_exists(f->s, "k", 1), KV_ENOTFOUND);
    reopen(f);
    assert_kv_rc(kv_exists(f->s, "k", 1), KV_ENOTFOUND);
    assert_kv_rc(kv_delete(f->s, "k", 1), KV_ENOTFOUND);
}

static void test_binary_keys_and_values_round_trip(void **state)
{
    struct fixture *f = *state;
    uint8_t key[5] = {0, 0xFF, 0xF0, 0xF1, 0};
    uint8_t val[256];
    for (int i = 0; i < 256; i++)
        val[i] = (uint8_t)i;
    assert_kv_ok(kv_put(f->s, key, sizeof(key), val, sizeof(val)));
    reopen(f);
    void *got;
    size_t n;
    assert_kv_ok(kv_get(f->s, key, sizeof(key), &got, &n));
    assert_int_equal(n, sizeof(val));
    assert_memory_equal(got, val, sizeof(val));
    kv_free(got);
}

static void test_empty_value_is_stored_and_distinct_from_absent(void **state)
{
    struct fixture *f = *state;
    assert_kv_ok(kv_put(f->s, "e", 1, NULL, 0));
    assert_kv_ok(kv_exists(f->s, "e", 1));
    void *got = NULL;
    size_t n = 99;
    assert_kv_ok(kv_get(f->s, "e", 1, &got, &n));
    assert_int_equal(n, 0);
    assert_non_null(got);
    kv_free(got);
}

static void test_largest_key_round_trips_and_longer_is_refused(void **state)
{
    struct fixture *f = *state;
    size_t n = KV_MAX_KEY_LEN;
    uint8_t *key = malloc(n + 1);
    memset(key, 'k', n + 1);
    assert_kv_ok(kv_put(f->s, key, n, "v", 1));
    assert_kv_rc(kv_put(f->s, key, n + 1, "v", 1), KV_EINVAL);
    assert_kv_rc(kv_put(f->s, key, 0, "v", 1), KV_EINVAL);
    reopen(f);
    void *got;
    size_t len;
    assert_kv_ok(kv_get(f->s, key, n, &got, &len));
    assert_int_equal(len, 1);
    kv_free(got);
    free(key);
}

static void test_values_larger_than_a_segment_round_trip(void **state)
{
    struct fixture *f = *state;
    size_t n = 300u * 1024; /* segments are 64 KiB here */
    uint8_t *val = malloc(n);
    for (size_t i = 0; i < n; i++)
        val[i] = (uint8_t)(i * 7);
    assert_kv_ok(kv_put(f->s, "big", 3, val, n));
    assert_kv_ok(kv_put(f->s, "small", 5, "s", 1));
    tu_assert_value(f->s, "big", val, n);
    reopen(f);
    tu_assert_value(f->s, "big", val, n);
    tu_assert_str(f->s, "small", "s");
    free(val);
}

static void test_segments_rotate_at_the_configured_size(void **state)
{
    struct fixture *f = *state;
    char key[32], val[100];
    memset(val, 'v', sizeof(val));
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(key, sizeof(key), "key-%05d", i);
        assert_kv_ok(kv_put(f->s, key, (size_t)n, val, sizeof(val)));
    }
    kv_stats st;
    assert_kv_ok(kv_get_stats(f->s, &st));
    assert_true(st.segments >= 4); /* ~250 KB over 64 KiB segments */
    assert_int_equal(st.keys, 2000);
    reopen(f);
    for (int i = 0; i < 2000; i += 111) {
        snprintf(key, sizeof(key), "key-%05d", i);
        tu_assert_value(f->s, key, val, sizeof(val));
    }
}

static void test_invalid_arguments_are_refused(void **state)
{
    struct fixture *f = *state;
    void *v;
    size_t n;
    assert_kv_rc(kv_put(NULL, "k", 1, "v", 1), KV_EINVAL);
    assert_kv_rc(kv_put(f->s, NULL, 1, "v", 1), KV_EINVAL);
    assert_kv_rc(kv_put(f->s, "k", 1, NULL, 1), KV_EINVAL);
    assert_kv_rc(kv_get(f->s, "k", 1, NULL, &n), KV_EINVAL);
    assert_kv_rc(kv_get(f->s, "k", 0, &v, &n), KV_EINVAL);
    assert_kv_rc(kv_open(NULL, NULL, NULL), KV_EINVAL);
    assert_kv_ok(kv_close(NULL));
    kv_free(NULL);
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 10;
    kv_store *s2 = NULL;
    assert_kv_rc(kv_open(f->dir, &o, &s2), KV_EINVAL);
    assert_null(s2);
}

/* Codes from KV_OK down to the last one kv_strerror names: the header has no
 * sentinel for the last code, so the range ends where kv_strerror starts to
 * give the text of an unknown code. */
static int last_named_code(const char *unknown)
{
    int last = KV_OK;
    while (last > -STRERROR_SCAN && strcmp(kv_strerror(last - 1), unknown) != 0)
        last--;
    return last;
}

static void test_strerror_names_every_code(void **state)
{
    (void)state;
    const char *unknown = kv_strerror(INT_MIN);
    assert_string_equal(unknown, "unknown error");
    int last = last_named_code(unknown);
    assert_true(last <= KV_EBUSY); /* the range holds every code the header had when written */
    for (int rc = KV_OK; rc >= last; rc--) {
        assert_string_not_equal(kv_strerror(rc), unknown);
        assert_true(kv_strerror(rc)[0] != '\0');
        for (int other = rc - 1; other >= last; other--)
            assert_string_not_equal(kv_strerror(rc), kv_strerror(other));
    }
    /* No gap: a code named beyond the first unknown one would have been
     * skipped by the walk above. */
    for (int rc = last - 1; rc > last - STRERROR_SCAN; rc--)
        assert_string_equal(kv_strerror(rc), unknown);
    for (int rc = 1; rc < STRERROR_SCAN; rc++)
        assert_string_equal(kv_strerror(rc), unknown);
    assert_string_equal(kv_strerror(12345), "unknown error");
    assert_string_equal(kv_version(), KV_VERSION_STRING);
}

static void test_version_macros_and_kv_version_agree(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", KV_VERSION_MAJOR, KV_VERSION_MINOR, KV_VERSION_PATCH);
    assert_string_equal(KV_VERSION_STRING, want);
    assert_string_equal(kv_version(), want);
    assert_int_equal(KV_VERSION_NUMBER,
                     KV_VERSION_MAJOR * 10000 + KV_VERSION_MINOR * 100 + KV_VERSION_PATCH);
#if KV_VERSION_NUMBER < 100 /* usable in #if: 0.1.0 is 100 */
    fail_msg("KV_VERSION_NUMBER %d is below 0.1.0", KV_VERSION_NUMBER);
#endif
}

static void test_record_status_names_are_the_dump_names(void **state)
{
    (void)state;
    assert_string_equal(kv_record_status_name(KV_REC_OK), "ok");
    assert_string_equal(kv_record_status_name(KV_REC_BAD_CHECKSUM), "bad-checksum");
    assert_string_equal(kv_record_status_name(KV_REC_DAMAGED), "damaged");
    assert_string_equal(kv_record_status_name(KV_REC_TORN), "incomplete");
    assert_string_equal(kv_record_status_name(KV_REC_UNKNOWN_OP), "unknown-op");
    assert_string_equal(kv_record_status_name((kv_record_status)99), "?");
}

static void test_get_crc_returns_crc_of_the_value(void **state)
{
    struct fixture *f = *state;
    assert_kv_ok(kv_put(f->s, "user:123", 8, "Hello, World!", 13));
    void *v;
    size_t n;
    uint32_t crc = 0;
    assert_kv_ok(kv_get_crc(f->s, "user:123", 8, &v, &n, &crc));
    kv_free(v);
    assert_int_equal(crc, 0xec4ac3d0); /* crc32("Hello, World!") */
}

/* kv_put_crc gives the CRC-32 of the value, as zlib computes it and as
 * kv_get_crc gives it back: for a small record (encoded whole), a large one
 * (encoded in pieces), and an empty value. */
static void test_put_crc_returns_crc_of_the_value(void **state)
{
    struct fixture *f = *state;
    uint32_t crc = 1;
    assert_int_equal(kv_put_crc(f->s, "user:123", 8, "Hello, World!", 13, &crc), 0);
    assert_int_equal(crc, 0xec4ac3d0); /* crc32("Hello, World!") */

    size_t big_len = 100000;
    uint8_t *big = malloc(big_len);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (uint8_t)(i * 131 + 7);
    uint32_t want = (uint32_t)crc32(crc32(0L, Z_NULL, 0), big, (uInt)big_len);
    assert_int_equal(kv_put_crc(f->s, "big", 3, big, big_len, &crc), 0);
    assert_int_equal(crc, want);
    void *v;
    size_t n;
    uint32_t got = 0;
    assert_int_equal(kv_get_crc(f->s, "big", 3, &v, &n, &got), 0);
    assert_int_equal(got, want);
    assert_int_equal(n, big_len);
    assert_memory_equal(v, big, big_len);
    kv_free(v);
    free(big);

    assert_int_equal(kv_put_crc(f->s, "empty", 5, "", 0, &crc), 0);
    assert_int_equal(crc, 0);
    assert_int_equal(kv_put_crc(f->s, "nocrc", 5, "x", 1, NULL), 0);
    tu_assert_str(f->s, "nocrc", "x");
    /* A put that fails leaves *value_crc alone. */
    crc = 12345;
    assert_int_equal(kv_put_crc(f->s, "", 0, "x", 1, &crc), KV_EINVAL);
    assert_int_equal(crc, 12345);

    /* The records check out on their own: a reopen reads them back. */
    reopen(f);
    tu_assert_str(f->s, "user:123", "Hello, World!");
    tu_assert_str(f->s, "empty", "");
}

static void test_stats_count_keys_bytes_and_segments(void **state)
{
    struct fixture *f = *state;
    assert_kv_ok(kv_put(f->s, "a", 1, "1234", 4));
    assert_kv_ok(kv_put(f->s, "a", 1, "5678", 4));
    assert_kv_ok(kv_put(f->s, "b", 1, "xy", 2));
    kv_stats st;
    assert_kv_ok(kv_get_stats(f->s, &st));
    assert_int_equal(st.keys, 2);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.disk_bytes, 3 * 15 + 3 + 4 + 4 + 2);
    assert_int_equal(st.live_bytes, (15 + 1 + 4) + (15 + 1 + 2));
    assert_int_equal(st.dead_bytes, 15 + 1 + 4);
    assert_int_equal(st.puts, 3);
    assert_true(st.fsyncs >= 3);
    assert_int_equal(st.active_segment_id, st.oldest_segment_id);
    assert_true(st.index_bytes > 0);
}

struct collected {
    char keys[64][16];
    int n;
};

static int collect(const void *key, size_t len, void *ctx)
{
    struct collected *c = ctx;
    memcpy(c->keys[c->n], key, len);
    c->keys[c->n][len] = 0;
    c->n++;
    return 0;
}

static void test_list_is_sorted_with_prefix_after_and_limit(void **state)
{
    struct fixture *f = *state;
    const char *keys[] = {"b", "a/2", "a/1", "c", "a/10", "ab"};
    for (size_t i = 0; i < 6; i++)
        assert_kv_ok(kv_put(f->s, keys[i], strlen(keys[i]), "v", 1));
    struct collected c = {0};
    assert_kv_ok(kv_list(f->s, NULL, 0, NULL, 0, 0, collect, &c));
    assert_int_equal(c.n, 6);
    const char *want[] = {"a/1", "a/10", "a/2", "ab", "b", "c"};
    for (int i = 0; i < 6; i++)
        assert_string_equal(c.keys[i], want[i]);
    memset(&c, 0, sizeof(c));
    assert_kv_ok(kv_list(f->s, "a/", 2, NULL, 0, 0, collect, &c));
    assert_int_equal(c.n, 3);
    memset(&c, 0, sizeof(c));
    assert_kv_ok(kv_list(f->s, NULL, 0, "a/2", 3, 2, collect, &c));
    assert_int_equal(c.n, 2);
    assert_string_equal(c.keys[0], "ab");
    assert_string_equal(c.keys[1], "b");
}

static int stop_after_one(const void *key, size_t len, void *ctx)
{
    (void)key;
    (void)len;
    (*(int *)ctx)++;
    return 42;
}

static void test_list_stops_when_the_callback_asks(void **state)
{
    struct fixture *f = *state;
    assert_kv_ok(kv_put(f->s, "x", 1, "v", 1));
    assert_kv_ok(kv_put(f->s, "y", 1, "v", 1));
    int calls = 0;
    assert_kv_rc(kv_list(f->s, NULL, 0, NULL, 0, 0, stop_after_one, &calls), 42);
    assert_int_equal(calls, 1);
}

static void test_sync_and_snapshot_succeed(void **state)
{
    struct fixture *f = *state;
    assert_kv_ok(kv_put(f->s, "k", 1, "v", 1));
    assert_kv_ok(kv_sync(f->s));
    assert_kv_ok(kv_save_snapshot(f->s));
    kv_snapshot_status st;
    uint64_t keys = 0;
    char why[128];
    assert_kv_ok(kv_check_snapshot(f->dir, &st, &keys, why, sizeof(why)));
    assert_int_equal(st, KV_SNAPSHOT_VALID);
    assert_int_equal(keys, 1);
}

static void test_interval_and_none_sync_modes_keep_data_across_close(void **state)
{
    struct fixture *f = *state;
    kv_close(f->s);
    for (int mode = KV_SYNC_INTERVAL; mode <= KV_SYNC_NONE; mode++) {
        kv_options o;
        kv_options_init(&o);
        o.sync_mode = (kv_sync_mode)mode;
        o.sync_interval_ms = 5;
        f->s = tu_open(f->dir, &o);
        char key[8];
        snprintf(key, sizeof(key), "m%d", mode);
        assert_kv_ok(kv_put(f->s, key, strlen(key), "v", 1));
        assert_kv_ok(kv_close(f->s));
        f->s = tu_open(f->dir, NULL);
        tu_assert_str(f->s, key, "v");
        kv_close(f->s);
    }
    f->s = tu_open(f->dir, NULL);
}

static uint64_t fsyncs_of(kv_store *s)
{
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    return st.fsyncs;
}

/* The interval sync thread makes acknowledged writes durable while the store
 * stays open: the fsync count grows after each write without a kv_sync or a
 * close (which would sync whatever the thread did). Nothing else syncs here:
 * no compactor runs, and writes in interval mode do not sync by themselves,
 * so only the thread can make the count grow. */
static void test_interval_mode_syncs_writes_in_the_background_while_open(void **state)
{
    struct fixture *f = *state;
    kv_close(f->s);
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 64u * 1024;
    o.sync_mode = KV_SYNC_INTERVAL;
    o.sync_interval_ms = 5;
    o.compaction_interval_secs = 0;
    f->s = tu_open(f->dir, &o);
    for (int round = 0; round < 3; round++) {
        char key[16];
        snprintf(key, sizeof(key), "r%d", round);
        uint64_t before = fsyncs_of(f->s);
        assert_kv_ok(kv_put(f->s, key, strlen(key), "v", 1));
        uint64_t deadline = tu_now_ms() + TU_WAIT_MS;
        while (fsyncs_of(f->s) == before) {
            if (tu_now_ms() > deadline)
                fail_msg("round %d: no fsync within %d ms of a write in interval mode (every "
                         "%u ms)",
                         round, TU_WAIT_MS, o.sync_interval_ms);
            tu_pause_ms(1);
        }
    }
    tu_assert_str(f->s, "r2", "v");
}

static int open_descriptors(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void test_descriptor_cache_bounds_open_segment_files(void **state)
{
    struct fixture *f = *state;
    kv_close(f->s);
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 4096;
    o.max_open_files = 4;
    f->s = tu_open(f->dir, &o);
    char key[32], val[512];
    memset(val, 'v', sizeof(val));
    for (int i = 0; i < 200; i++) { /* about 25 segments */
        int n = snprintf(key, sizeof(key), "key-%03d", i);
        assert_kv_ok(kv_put(f->s, key, (size_t)n, val, sizeof(val)));
    }
    reopen(f);
    kv_close(f->s);
    int baseline = open_descriptors();
    f->s = tu_open(f->dir, &o);
    kv_stats st;
    assert_kv_ok(kv_get_stats(f->s, &st));
    assert_true(st.segments > 20);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 200; i++) {
            snprintf(key, sizeof(key), "key-%03d", i);
            tu_assert_value(f->s, key, val, sizeof(val));
        }
    }
    /* The directory lock and at most max_open_files segments. */
    int open_now = open_descriptors() - baseline;
    if (open_now > 1 + 4)
        fail_msg("%d descriptors open, expected at most 5", open_now);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_then_get_returns_the_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_of_missing_key_is_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overwrite_returns_newest_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_removes_key_and_survives_reopen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_binary_keys_and_values_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_value_is_stored_and_distinct_from_absent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_largest_key_round_trips_and_longer_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_values_larger_than_a_segment_round_trip, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_segments_rotate_at_the_configured_size, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments_are_refused, setup, teardown),
        cmocka_unit_test(test_strerror_names_every_code),
        cmocka_unit_test(test_version_macros_and_kv_version_agree),
        cmocka_unit_test(test_record_status_names_are_the_dump_names),
        cmocka_unit_test_setup_teardown(test_get_crc_returns_crc_of_the_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_crc_returns_crc_of_the_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_count_keys_bytes_and_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_is_sorted_with_prefix_after_and_limit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_stops_when_the_callback_asks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_and_snapshot_succeed, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_interval_mode_syncs_writes_in_the_background_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interval_and_none_sync_modes_keep_data_across_close,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_descriptor_cache_bounds_open_segment_files, setup,
                                        teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
