/*
 * test_stat.c - kv_stat: the size, CRC-32 and expiry of a key's value
 * without reading the value, through the public API for SET records (from
 * the mapping and through descriptors, after overwrites, reopens and
 * compaction), for compressed values (kv_range's values too), the
 * position it gives (kv_key_at), and
 * kv__stat_record on hand-made SETX records (expiry,
 * compression, unknown attributes) and records that do not match.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "read.h"
#include "record.h"
#include "testutil.h"

static void assert_stat_matches_value(kv_store *s, const void *key, size_t key_len, const void *val,
                                      size_t val_len)
{
    kv_stat_info st;
    assert_kv_ok(kv_stat(s, key, key_len, &st));
    assert_int_equal(st.size, val_len);
    uint32_t crc = (uint32_t)crc32(0, val, (uInt)val_len);
    assert_int_equal(st.value_crc, crc);
    assert_int_equal(st.expire_at_ms, 0);
    void *got;
    size_t got_len;
    uint32_t got_crc;
    assert_kv_ok(kv_get_crc(s, key, key_len, &got, &got_len, &got_crc));
    assert_int_equal(got_crc, st.value_crc);
    kv_free(got);
}

/* Values of several sizes, the empty one included, under a short key and
 * one longer than the stack buffer a stat reads into. */
static void put_and_check_sizes(kv_store *s)
{
    static uint8_t big[100001]; /* values start at big or big + 1 */
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + i / 251);
    char long_key[300];
    memset(long_key, 'k', sizeof(long_key));
    size_t sizes[] = {0, 1, 20, 21, 22, 4096, sizeof(big) - 1};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        long_key[0] = (char)('a' + i);
        assert_kv_ok(kv_put(s, long_key, sizeof(long_key), big, sizes[i]));
        assert_stat_matches_value(s, long_key, sizeof(long_key), big, sizes[i]);
        assert_kv_ok(kv_put(s, long_key, 2, big + 1, sizes[i]));
        assert_stat_matches_value(s, long_key, 2, big + 1, sizes[i]);
    }
}

static void test_stat_gives_the_size_and_crc_of_a_value_without_reading_it(void **state)
{
    struct tu_fixture *f = *state;
    kv_store *s = tu_open_tracked(f->dir, NULL);
    put_and_check_sizes(s);
    assert_kv_ok(kv_put(s, "k", 1, "first", 5));
    assert_stat_matches_value(s, "k", 1, "first", 5);
    assert_kv_ok(kv_put(s, "k", 1, "second!", 7));
    assert_stat_matches_value(s, "k", 1, "second!", 7);
    assert_kv_ok(tu_close_tracked(s));
    s = tu_open_tracked(f->dir, NULL);
    assert_stat_matches_value(s, "k", 1, "second!", 7);
    assert_kv_ok(kv_compact(s));
    assert_stat_matches_value(s, "k", 1, "second!", 7);
    assert_kv_ok(kv_delete(s, "k", 1));
    kv_stat_info st;
    assert_kv_rc(kv_stat(s, "k", 1, &st), KV_ENOTFOUND);
    assert_kv_ok(tu_close_tracked(s));
}

/* Segments that cannot be mapped are read by descriptor. */
static void test_stat_reads_through_descriptors_when_segments_are_not_mapped(void **state)
{
    struct tu_fixture *f = *state;
    struct tu_faults faults;
    tu_faults_init(&faults);
    faults.fail_maps = 1 << 30;
    faults.map_errno = ENODEV;
    kv_options o;
    kv_options_init(&o);
    o.io = &faults.io;
    kv_store *s = tu_open_tracked(f->dir, &o);
    put_and_check_sizes(s);
    assert_true(atomic_load(&faults.maps) > 0);
    assert_kv_ok(tu_close_tracked(s));
}

static void test_stat_refuses_bad_arguments(void **state)
{
    struct tu_fixture *f = *state;
    kv_store *s = tu_open_tracked(f->dir, NULL);
    kv_stat_info st;
    assert_kv_rc(kv_stat(NULL, "k", 1, &st), KV_EINVAL);
    assert_kv_rc(kv_stat(s, NULL, 1, &st), KV_EINVAL);
    assert_kv_rc(kv_stat(s, "k", 0, &st), KV_EINVAL);
    assert_kv_rc(kv_stat(s, "k", 1, NULL), KV_EINVAL);
    assert_kv_rc(kv_stat(s, "k", 1, &st), KV_ENOTFOUND);
    assert_kv_ok(tu_close_tracked(s));
}

/* A record in memory: header, key, payload (attributes and value), and
 * its checksum apart. */
struct rec {
    uint8_t bytes[512];
    size_t len; /* header, key and payload */
    uint32_t crc;
    uint64_t val_len; /* the payload's length */
};

static void make_record(struct rec *r, uint8_t op, const char *key, const struct record_attrs *a,
                        const void *val, size_t val_len)
{
    size_t key_len = strlen(key), attr_len = a ? record_attrs_len(a->flags) : 0;
    r->val_len = attr_len + val_len;
    record_encode_header(r->bytes, op, (uint32_t)key_len, (uint32_t)r->val_len);
    memcpy(r->bytes + RECORD_HEADER_LEN, key, key_len);
    uint8_t *p = r->bytes + RECORD_HEADER_LEN + key_len;
    if (a)
        p += record_attrs_encode(p, a);
    memcpy(p, val, val_len);
    r->len = (size_t)(p + val_len - r->bytes);
    r->crc = record_crc_update(0, r->bytes + 2, r->len - 2);
}

/* kv__stat_record given what kv_stat reads: the head (at most the header,
 * key and RECORD_ATTRS_MAX bytes of payload) and the checksum. */
static int stat_of(const struct rec *r, const char *key, kv_stat_info *st)
{
    size_t key_len = strlen(key);
    size_t payload = r->val_len < RECORD_ATTRS_MAX ? (size_t)r->val_len : RECORD_ATTRS_MAX;
    return kv__stat_record(r->bytes, RECORD_HEADER_LEN + key_len + payload, r->crc, key, key_len,
                           r->val_len, st);
}

static void test_stat_of_setx_records_reads_their_attributes(void **state)
{
    (void)state;
    const char *value = "a value whose CRC the stat derives";
    size_t vlen = strlen(value);
    uint32_t crc = (uint32_t)crc32(0, (const Bytef *)value, (uInt)vlen);
    struct rec r;
    kv_stat_info st;

    /* Expiry: the value follows 9 bytes of attributes. */
    struct record_attrs exp = {.flags = RECORD_ATTR_EXPIRES, .expire_at = 1893456000123ull};
    make_record(&r, KV_OP_SETX, "key", &exp, value, vlen);
    assert_kv_ok(stat_of(&r, "key", &st));
    assert_int_equal(st.size, vlen);
    assert_int_equal(st.value_crc, crc);
    assert_int_equal(st.expire_at_ms, exp.expire_at);

    /* Compressed: size and CRC are the original value's, kept in the
     * attributes, whatever the stored bytes. */
    struct record_attrs z = {.flags = RECORD_ATTR_ZSTD | RECORD_ATTR_EXPIRES,
                             .expire_at = 7,
                             .raw_len = 123456,
                             .raw_crc = 0xdeadbeef,
                             .dict_id = 3};
    make_record(&r, KV_OP_SETX, "key", &z, "zstd frame", 10);
    assert_kv_ok(stat_of(&r, "key", &st));
    assert_int_equal(st.size, 123456);
    assert_int_equal(st.value_crc, 0xdeadbeef);
    assert_int_equal(st.expire_at_ms, 7);

    /* An empty value after the attributes. */
    make_record(&r, KV_OP_SETX, "key", &exp, "", 0);
    assert_kv_ok(stat_of(&r, "key", &st));
    assert_int_equal(st.size, 0);
    assert_int_equal(st.value_crc, 0);

    /* A plain SET, for comparison. */
    make_record(&r, KV_OP_SET, "key", NULL, value, vlen);
    assert_kv_ok(stat_of(&r, "key", &st));
    assert_int_equal(st.size, vlen);
    assert_int_equal(st.value_crc, crc);
    assert_int_equal(st.expire_at_ms, 0);
}

static void test_stat_of_a_record_that_does_not_match_is_refused(void **state)
{
    (void)state;
    struct rec r;
    kv_stat_info st;
    make_record(&r, KV_OP_SET, "key", NULL, "v", 1);
    assert_kv_rc(stat_of(&r, "kez", &st), KV_ECORRUPT);
    assert_kv_rc(kv__stat_record(r.bytes, r.len, r.crc, "key", 3, 2, &st), KV_ECORRUPT);
    make_record(&r, KV_OP_DELETE, "key", NULL, "", 0);
    assert_kv_rc(stat_of(&r, "key", &st), KV_ECORRUPT);
    make_record(&r, KV_OP_SET, "key", NULL, "v", 1);
    r.bytes[0] = 0;
    assert_kv_rc(stat_of(&r, "key", &st), KV_ECORRUPT);
    /* Attributes this version does not know, or cut short. */
    struct record_attrs exp = {.flags = RECORD_ATTR_EXPIRES, .expire_at = 1};
    make_record(&r, KV_OP_SETX, "key", &exp, "v", 1);
    r.bytes[RECORD_HEADER_LEN + 3] |= 0x80;
    assert_kv_rc(stat_of(&r, "key", &st), KV_EFORMAT);
    make_record(&r, KV_OP_SETX, "key", &exp, "", 0);
    r.val_len = 4; /* the header says 9 bytes of payload; the index 4 */
    assert_kv_rc(stat_of(&r, "key", &st), KV_ECORRUPT);
    /* A payload shorter than its attributes say. */
    make_record(&r, KV_OP_SETX, "key", &exp, "", 0);
    r.val_len = 5;
    record_encode_header(r.bytes, KV_OP_SETX, 3, 5);
    assert_kv_rc(stat_of(&r, "key", &st), KV_EFORMAT);
}

/* kv_range's callback: the one key's value, copied. */
struct one_value {
    size_t n;
    size_t len;
    uint8_t *val;
};

static int take_value(const void *key, size_t key_len, const void *val, size_t val_len, void *ctx)
{
    (void)key;
    (void)key_len;
    struct one_value *v = ctx;
    v->n++;
    free(v->val);
    v->val = malloc(val_len + 1);
    assert_non_null(v->val);
    memcpy(v->val, val, val_len);
    v->len = val_len;
    return 0;
}

/* A value the store keeps compressed (a SETX record with a zstd frame):
 * kv_stat gives the original's size and CRC, and kv_range hands over the
 * original bytes, as kv_get does; so it stays after a reopen and a
 * compaction. */
static void test_stat_and_range_of_a_compressed_value_give_the_original(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o;
    kv_options_init(&o);
    o.compression = KV_COMPRESS_ZSTD;
    o.compaction_interval_secs = 0;
    char val[8192];
    for (size_t i = 0; i < sizeof(val); i++)
        val[i] = (char)('a' + (i / 64) % 4);
    kv_store *s = tu_open_tracked(f->dir, &o);
    assert_kv_ok(kv_put(s, "zipped", 6, val, sizeof(val)));
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_true(st.live_bytes < sizeof(val)); /* it is stored compressed */
    for (int round = 0; round < 3; round++) {
        assert_stat_matches_value(s, "zipped", 6, val, sizeof(val));
        struct one_value got = {0};
        kv_range_opts r = {.start = "zipped", .start_len = 6, .flags = KV_RANGE_VALUES};
        assert_kv_ok(kv_range(s, &r, take_value, &got));
        assert_int_equal(got.n, 1);
        assert_int_equal(got.len, sizeof(val));
        assert_memory_equal(got.val, val, sizeof(val));
        free(got.val);
        if (round == 0) {
            assert_kv_ok(tu_close_tracked(s));
            s = tu_open_tracked(f->dir, &o);
        } else {
            assert_kv_ok(kv_compact(s));
        }
    }
    assert_kv_ok(tu_close_tracked(s));
}

static void assert_key_at(kv_store *s, uint64_t position, const char *want)
{
    void *key = NULL;
    size_t len = 0;
    assert_kv_ok(kv_key_at(s, position, &key, &len));
    assert_int_equal(len, strlen(want));
    assert_memory_equal(key, want, len);
    kv_free(key);
}

static void assert_no_key_at(kv_store *s, uint64_t position, int want_rc)
{
    void *key = NULL;
    size_t len = 0;
    assert_kv_rc(kv_key_at(s, position, &key, &len), want_rc);
    assert_null(key);
}

/* A key's position gives the key back while the record is in the log:
 * after the key is overwritten and deleted, and after a reopen; once a
 * compaction has removed its segment, it is KV_ENOTFOUND. A number that is
 * no position of the store is KV_EINVAL. */
static void test_a_position_gives_its_key_back_until_compaction(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o;
    kv_options_init(&o);
    o.compaction_interval_secs = 0;
    kv_store *s = tu_open_tracked(f->dir, &o);
    assert_kv_ok(kv_put(s, "before", 6, "x", 1));
    assert_kv_ok(kv_put(s, "named", 5, "first value", 11));
    kv_stat_info st;
    assert_kv_ok(kv_stat(s, "named", 5, &st));
    uint64_t pos = st.position;
    assert_true(pos != 0 && pos < (UINT64_C(1) << 63));
    assert_key_at(s, pos, "named");
    assert_kv_ok(kv_put(s, "named", 5, "second", 6));
    assert_kv_ok(kv_stat(s, "named", 5, &st));
    assert_true(st.position != pos);
    assert_key_at(s, st.position, "named");
    assert_key_at(s, pos, "named");
    assert_kv_ok(kv_delete(s, "named", 5));
    assert_key_at(s, pos, "named");
    assert_kv_ok(tu_close_tracked(s));
    s = tu_open_tracked(f->dir, &o);
    assert_key_at(s, pos, "named");
    /* Numbers that name no record: segment 0, a segment newer than any,
     * the middle of a record, past the end of the segment, 2^63 and up. */
    uint64_t seg = pos >> 31;
    assert_no_key_at(s, 12345, KV_EINVAL);
    assert_no_key_at(s, (seg + 100) << 31, KV_EINVAL);
    assert_no_key_at(s, pos + 1, KV_EINVAL);
    assert_no_key_at(s, (seg << 31) | ((UINT64_C(1) << 31) - 1), KV_EINVAL);
    assert_no_key_at(s, UINT64_C(1) << 63, KV_EINVAL);
    void *key = NULL;
    size_t len = 0;
    assert_kv_rc(kv_key_at(NULL, pos, &key, &len), KV_EINVAL);
    assert_kv_rc(kv_key_at(s, pos, NULL, &len), KV_EINVAL);
    assert_kv_rc(kv_key_at(s, pos, &key, NULL), KV_EINVAL);
    assert_kv_ok(kv_compact(s));
    assert_no_key_at(s, pos, KV_ENOTFOUND);
    assert_kv_ok(kv_stat(s, "before", 6, &st));
    assert_key_at(s, st.position, "before");
    assert_kv_ok(tu_close_tracked(s));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_stat_gives_the_size_and_crc_of_a_value_without_reading_it, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_stat_reads_through_descriptors_when_segments_are_not_mapped, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_stat_refuses_bad_arguments, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_stat_and_range_of_a_compressed_value_give_the_original,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_a_position_gives_its_key_back_until_compaction,
                                        tu_setup, tu_teardown),
        cmocka_unit_test(test_stat_of_setx_records_reads_their_attributes),
        cmocka_unit_test(test_stat_of_a_record_that_does_not_match_is_refused),
    };
    return tu_run_tests(tests, argc, argv);
}
