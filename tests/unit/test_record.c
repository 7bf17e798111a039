/*
 * test_record.c - the record encoding shared by every record kind: the SETX
 * attribute block and the value's CRC-32 derived from a record's checksum.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "record.h"
#include "testutil.h"

static void test_attrs_round_trip_for_every_flag_combination(void **state)
{
    (void)state;
    for (unsigned flags = 1; flags <= RECORD_ATTR_KNOWN; flags++) {
        if ((flags & (RECORD_ATTR_MAGICLESS | RECORD_ATTR_DENSE)) && !(flags & RECORD_ATTR_ZSTD))
            continue; /* never written: refused below */
        struct record_attrs a = {.flags = flags,
                                 .expire_at = 0x0102030405060708ull,
                                 .raw_len = 70000,
                                 .raw_crc = 0xdeadbeef,
                                 .dict_id = 7};
        uint8_t buf[RECORD_ATTRS_MAX];
        size_t len = record_attrs_encode(buf, &a);
        assert_int_equal(len, record_attrs_len(flags));
        struct record_attrs b;
        size_t got = 0;
        assert_true(record_attrs_decode(buf, len, &b, &got));
        assert_int_equal(got, len);
        assert_int_equal(b.flags, flags);
        assert_int_equal(b.expire_at, (flags & RECORD_ATTR_EXPIRES) ? a.expire_at : 0);
        assert_int_equal(b.raw_len, (flags & RECORD_ATTR_ZSTD) ? a.raw_len : 0);
        assert_int_equal(b.raw_crc, (flags & RECORD_ATTR_ZSTD) ? a.raw_crc : 0);
        assert_int_equal(b.dict_id, (flags & RECORD_ATTR_ZSTD) ? a.dict_id : 0);
    }
    assert_int_equal(record_attrs_len(RECORD_ATTR_KNOWN), RECORD_ATTRS_MAX);
}

static void test_attrs_refuse_unknown_or_missing_flags_and_short_blocks(void **state)
{
    (void)state;
    uint8_t buf[RECORD_ATTRS_MAX] = {0};
    struct record_attrs a;
    size_t len;
    assert_false(record_attrs_decode(buf, sizeof(buf), &a, &len)); /* no flag */
    buf[0] = 0x10;
    assert_false(record_attrs_decode(buf, sizeof(buf), &a, &len)); /* unknown flag */
    buf[0] = RECORD_ATTR_MAGICLESS;
    assert_false(record_attrs_decode(buf, sizeof(buf), &a, &len)); /* a frame format, no frame */
    buf[0] = RECORD_ATTR_DENSE;
    assert_false(record_attrs_decode(buf, sizeof(buf), &a, &len)); /* a frame's level, no frame */
    buf[0] = RECORD_ATTR_EXPIRES | RECORD_ATTR_MAGICLESS;
    assert_false(record_attrs_decode(buf, sizeof(buf), &a, &len));
    buf[0] = RECORD_ATTR_EXPIRES | 0x80;
    assert_false(record_attrs_decode(buf, sizeof(buf), &a, &len));
    buf[0] = RECORD_ATTR_EXPIRES;
    assert_false(record_attrs_decode(buf, 8, &a, &len)); /* expire_at cut short */
    assert_false(record_attrs_decode(buf, 0, &a, &len));
    assert_true(record_attrs_decode(buf, 9, &a, &len));
    buf[0] = RECORD_ATTR_ZSTD;
    assert_false(record_attrs_decode(buf, 12, &a, &len));
}

/* The value's CRC comes out of a record's checksum for values of every
 * length, with and without an attribute block before it. */
static void test_value_crc_is_derived_from_the_record_checksum(void **state)
{
    (void)state;
    srand(7);
    for (size_t vlen = 0; vlen < 3000; vlen += 1 + vlen / 3) {
        uint8_t *val = malloc(vlen + 1);
        assert_non_null(val);
        for (size_t i = 0; i < vlen; i++)
            val[i] = (uint8_t)rand();
        uint8_t attrs[RECORD_ATTRS_MAX];
        struct record_attrs a = {.flags = RECORD_ATTR_EXPIRES, .expire_at = 1234567};
        for (int with_attrs = 0; with_attrs < 2; with_attrs++) {
            size_t alen = with_attrs ? record_attrs_encode(attrs, &a) : 0;
            uint8_t hdr[RECORD_HEADER_LEN];
            record_encode_header(hdr, with_attrs ? KV_OP_SETX : KV_OP_SET, 5,
                                 (uint32_t)(alen + vlen));
            uint32_t head = record_crc_update(record_crc_head(hdr, "hello", 5), attrs, alen);
            uint32_t record = record_crc_update(head, val, vlen);
            uint32_t want = (uint32_t)crc32(0, val, (uInt)vlen);
            if (record_value_crc(record, head, vlen) != want)
                fail_msg("value of %zu bytes (attributes: %d): derived %08x, want %08x", vlen,
                         with_attrs, record_value_crc(record, head, vlen), want);
        }
        free(val);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attrs_round_trip_for_every_flag_combination),
        cmocka_unit_test(test_attrs_refuse_unknown_or_missing_flags_and_short_blocks),
        cmocka_unit_test(test_value_crc_is_derived_from_the_record_checksum),
    };
    return tu_run_tests(tests, argc, argv);
}
