/*
 * test_batch.c - atomic batches on disk: what kv_write writes (one BATCH
 * record for several records, a plain record for one, nothing for none),
 * what kv_scan shows of it, and recovery applying a batch whole or not at
 * all: cut at every byte of it (a crash, also inside preallocated zeros), or
 * damaged at every byte of it; compressed values (SETX) inside a batch.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "record.h"
#include "testutil.h"

static kv_op put_op(const char *key, const char *val)
{
    return (kv_op){.type = KV_WRITE_PUT,
                   .key = key,
                   .key_len = strlen(key),
                   .val = val,
                   .val_len = strlen(val)};
}

static kv_op del_op(const char *key)
{
    return (kv_op){.type = KV_WRITE_DEL, .key = key, .key_len = strlen(key)};
}

static kv_options quick_options(void)
{
    kv_options o;
    kv_options_init(&o);
    o.sync_mode = KV_SYNC_NONE;
    o.segment_size = 64u * 1024;
    o.compaction_interval_secs = 0;
    return o;
}

static void assert_absent(kv_store *s, const char *key)
{
    assert_kv_rc(kv_exists(s, key, strlen(key)), KV_ENOTFOUND);
}

/* ---- what kv_scan reports */

#define MAX_SEEN 64

struct seen {
    size_t n;
    struct {
        uint64_t segment, offset, length;
        kv_record_status status;
        uint8_t op;
        bool in_batch;
        uint8_t attr_flags;
        char key[32];
    } r[MAX_SEEN];
};

static int on_record(const kv_record_info *info, void *ctx)
{
    struct seen *sn = ctx;
    assert_true(sn->n < MAX_SEEN);
    sn->r[sn->n].segment = info->segment_id;
    sn->r[sn->n].offset = info->offset;
    sn->r[sn->n].length = info->length;
    sn->r[sn->n].status = info->status;
    sn->r[sn->n].op = info->op;
    sn->r[sn->n].in_batch = info->in_batch;
    sn->r[sn->n].attr_flags = info->attr_flags;
    size_t kl = info->key && info->key_len < 31 ? info->key_len : 0;
    if (kl)
        memcpy(sn->r[sn->n].key, info->key, kl);
    sn->r[sn->n].key[kl] = 0;
    sn->n++;
    return 0;
}

static void scan(const char *dir, struct seen *sn)
{
    memset(sn, 0, sizeof(*sn));
    assert_kv_ok(kv_scan(dir, on_record, sn));
}

static void test_several_ops_are_one_batch_record_with_their_records_inside(void **state)
{
    struct tu_fixture *fx = *state;
    kv_options o = quick_options();
    kv_store *s = tu_open_tracked(fx->dir, &o);
    assert_kv_ok(kv_put(s, "old", 3, "x", 1));
    kv_op ops[] = {put_op("a", "alpha"), put_op("b", "bravo"), del_op("old"), put_op("a", "again")};
    assert_kv_ok(kv_write(s, ops, 4));
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(ops[i].rc, 0);
    assert_int_equal(ops[0].value_crc, record_crc_update(0, "alpha", 5));
    tu_assert_str(s, "a", "again");
    tu_assert_str(s, "b", "bravo");
    assert_absent(s, "old");
    assert_kv_ok(tu_close_tracked(s));

    struct seen sn;
    scan(fx->dir, &sn);
    assert_int_equal(sn.n, 6);
    assert_int_equal(sn.r[0].op, KV_OP_SET);
    assert_false(sn.r[0].in_batch);
    assert_int_equal(sn.r[1].op, KV_OP_BATCH);
    assert_int_equal(sn.r[1].status, KV_REC_OK);
    assert_false(sn.r[1].in_batch);
    const char *keys[] = {"a", "b", "old", "a"};
    const uint8_t ops_on_disk[] = {KV_OP_SET, KV_OP_SET, KV_OP_DELETE, KV_OP_SET};
    uint64_t off = sn.r[1].offset + RECORD_HEADER_LEN;
    for (size_t i = 0; i < 4; i++) {
        assert_true(sn.r[2 + i].in_batch);
        assert_int_equal(sn.r[2 + i].status, KV_REC_OK);
        assert_int_equal(sn.r[2 + i].op, ops_on_disk[i]);
        assert_string_equal(sn.r[2 + i].key, keys[i]);
        assert_int_equal(sn.r[2 + i].offset, off);
        off += sn.r[2 + i].length;
    }
    assert_int_equal(off + RECORD_TRAILER_LEN, sn.r[1].offset + sn.r[1].length);

    /* Replayed without the snapshot, the batch applies as it did. */
    char *snap = tu_path(fx->dir, "index.snapshot");
    unlink(snap);
    free(snap);
    s = tu_open_tracked(fx->dir, &o);
    tu_assert_str(s, "a", "again");
    tu_assert_str(s, "b", "bravo");
    assert_absent(s, "old");
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_int_equal(st.keys, 2);
    assert_int_equal(st.checksum_errors, 0);
    assert_kv_ok(tu_close_tracked(s));
}

/* Records short enough to be held whole in the unit and longer ones whose
 * values stay the caller's (the two ways their checksums are made), of
 * every length around the limits between them, in one batch: each value's
 * CRC is its own, and the batch replays from the log without a checksum
 * error. */
static void test_a_batch_of_short_and_long_values_checks_out_on_replay(void **state)
{
    struct tu_fixture *fx = *state;
    kv_options o = quick_options();
    o.segment_size = 1u << 20;
    kv_store *s = tu_open_tracked(fx->dir, &o);
    static const size_t lens[] = {0,   1,   200,  230,  231,  232,  240,  255,
                                  256, 300, 1023, 1024, 1025, 4096, 20000};
    enum { N = sizeof(lens) / sizeof(lens[0]) };
    static char vals[N][20001];
    char keys[N][16];
    kv_op ops[N];
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < lens[i]; j++)
            vals[i][j] = (char)('a' + (i * 7 + j * 13) % 26);
        snprintf(keys[i], sizeof(keys[i]), "k%02zu", i);
        ops[i] = (kv_op){.type = KV_WRITE_PUT,
                         .key = keys[i],
                         .key_len = strlen(keys[i]),
                         .val = vals[i],
                         .val_len = lens[i]};
    }
    assert_kv_ok(kv_write(s, ops, N));
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(ops[i].rc, 0);
        assert_int_equal(ops[i].value_crc, record_crc_update(0, vals[i], lens[i]));
    }
    assert_kv_ok(tu_close_tracked(s));

    char *snap = tu_path(fx->dir, "index.snapshot");
    unlink(snap);
    free(snap);
    s = tu_open_tracked(fx->dir, &o);
    for (size_t i = 0; i < N; i++) {
        void *v = NULL;
        size_t len = 0;
        assert_kv_ok(kv_get(s, keys[i], strlen(keys[i]), &v, &len));
        assert_int_equal(len, lens[i]);
        assert_memory_equal(v, vals[i], lens[i] ? lens[i] : 1);
        kv_free(v);
    }
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_int_equal(st.keys, N);
    assert_int_equal(st.checksum_errors, 0);
    assert_kv_ok(tu_close_tracked(s));
}

static void test_a_batch_that_writes_one_record_is_that_plain_record(void **state)
{
    struct tu_fixture *fx = *state;
    kv_options o = quick_options();
    kv_store *s = tu_open_tracked(fx->dir, &o);
    /* The DEL finds nothing: only the PUT is written. */
    kv_op ops[] = {del_op("absent"), put_op("k", "v")};
    assert_kv_ok(kv_write(s, ops, 2));
    assert_kv_rc(ops[0].rc, KV_ENOTFOUND);
    assert_int_equal(ops[1].rc, 0);
    assert_kv_ok(tu_close_tracked(s));
    struct seen sn;
    scan(fx->dir, &sn);
    assert_int_equal(sn.n, 1);
    assert_int_equal(sn.r[0].op, KV_OP_SET);
    assert_false(sn.r[0].in_batch);
    assert_string_equal(sn.r[0].key, "k");
}

static void test_a_batch_that_writes_nothing_leaves_the_log_alone(void **state)
{
    struct tu_fixture *fx = *state;
    kv_options o = quick_options();
    kv_store *s = tu_open_tracked(fx->dir, &o);
    assert_kv_ok(kv_put(s, "k", 1, "v", 1));
    kv_stats before, after;
    assert_kv_ok(kv_get_stats(s, &before));
    kv_op ops[] = {del_op("absent"),
                   {.type = KV_WRITE_CHECK, .key = "k", .key_len = 1, .cond = KV_IF_PRESENT}};
    assert_kv_ok(kv_write(s, ops, 2));
    assert_kv_rc(ops[0].rc, KV_ENOTFOUND);
    assert_int_equal(ops[1].rc, 0);
    assert_kv_ok(kv_get_stats(s, &after));
    assert_int_equal(after.disk_bytes, before.disk_bytes);
    assert_kv_ok(tu_close_tracked(s));
}

static void test_bad_ops_are_refused_before_anything_is_written(void **state)
{
    struct tu_fixture *fx = *state;
    kv_options o = quick_options();
    kv_store *s = tu_open_tracked(fx->dir, &o);
    kv_op ok = put_op("k", "v");
    assert_kv_rc(kv_write(NULL, &ok, 1), KV_EINVAL);
    assert_kv_rc(kv_write(s, NULL, 1), KV_EINVAL);
    assert_kv_rc(kv_write(s, &ok, 0), KV_EINVAL);
    kv_op bad[] = {put_op("k", "v"), put_op("", "v")};
    assert_kv_rc(kv_write(s, bad, 2), KV_EINVAL);
    kv_op bad_type = {.type = 9, .key = "k", .key_len = 1};
    assert_kv_rc(kv_write(s, &bad_type, 1), KV_EINVAL);
    kv_op cond = put_op("k", "v");
    cond.cond = 7;
    assert_kv_rc(kv_write(s, &cond, 1), KV_EINVAL);
    kv_op null_val = {.type = KV_WRITE_PUT, .key = "k", .key_len = 1, .val_len = 3};
    assert_kv_rc(kv_write(s, &null_val, 1), KV_EINVAL);
    /* An expiry is a PUT's; one kept is not one given too. */
    kv_op both = put_op("k", "v");
    both.expire_at_ms = 1;
    both.flags = KV_KEEP_EXPIRY;
    assert_kv_rc(kv_write(s, &both, 1), KV_EINVAL);
    kv_op del_expiring = {.type = KV_WRITE_DEL, .key = "k", .key_len = 1, .expire_at_ms = 1};
    assert_kv_rc(kv_write(s, &del_expiring, 1), KV_EINVAL);
    kv_op unknown_flag = put_op("k", "v");
    unknown_flag.flags = 0x80;
    assert_kv_rc(kv_write(s, &unknown_flag, 1), KV_EINVAL);
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_int_equal(st.disk_bytes, 0);
    assert_kv_ok(tu_close_tracked(s));
}

/* ---- a crash at every byte of a batch */

/* The directory holds "a"=1 and "b"=2 plain, then one batch: a=A, DEL b,
 * c=C, d=D (values long enough that the batch spans some hundred bytes).
 * *batch_off and *batch_end delimit the batch in segment-1.dat. */
static void write_batch_dir(const char *dir, uint64_t *batch_off, uint64_t *batch_end)
{
    kv_options o = quick_options();
    kv_store *s = tu_open(dir, &o);
    assert_kv_ok(kv_put(s, "a", 1, "1", 1));
    assert_kv_ok(kv_put(s, "b", 1, "2", 1));
    kv_op ops[] = {put_op("a", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), del_op("b"),
                   put_op("c", "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"),
                   put_op("d", "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDD")};
    assert_kv_ok(kv_write(s, ops, 4));
    assert_kv_ok(kv_close(s));
    struct seen sn;
    scan(dir, &sn);
    assert_int_equal(sn.n, 7);
    assert_int_equal(sn.r[2].op, KV_OP_BATCH);
    *batch_off = sn.r[2].offset;
    *batch_end = sn.r[2].offset + sn.r[2].length;
}

static void assert_before_batch(kv_store *s)
{
    tu_assert_str(s, "a", "1");
    tu_assert_str(s, "b", "2");
    assert_absent(s, "c");
    assert_absent(s, "d");
}

static void assert_after_batch(kv_store *s)
{
    tu_assert_str(s, "a", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_absent(s, "b");
    tu_assert_str(s, "c", "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCC");
    tu_assert_str(s, "d", "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDD");
}

/* A fresh directory whose only segment is bytes[0, len). */
static char *dir_with_segment(const char *root, const char *name, const uint8_t *bytes, size_t len)
{
    char *dir = tu_path(root, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    char *seg = tu_path(dir, "segment-1.dat");
    tu_write_file(seg, bytes, len);
    free(seg);
    return dir;
}

static void test_a_batch_cut_at_any_byte_is_recovered_all_or_nothing(void **state)
{
    struct tu_fixture *fx = *state;
    uint64_t off, end;
    write_batch_dir(fx->dir, &off, &end);
    char *seg = tu_path(fx->dir, "segment-1.dat");
    size_t len = 0;
    uint8_t *bytes = tu_read_file(seg, &len);
    assert_int_equal(len, end);
    kv_options o = quick_options();
    for (uint64_t cut = off; cut <= end; cut++) {
        char name[32];
        snprintf(name, sizeof(name), "cut-%llu", (unsigned long long)cut);
        char *dir = dir_with_segment(fx->root, name, bytes, (size_t)cut);
        kv_store *s = tu_open_tracked(dir, &o);
        kv_stats st;
        assert_kv_ok(kv_get_stats(s, &st));
        if (cut == end) {
            assert_after_batch(s);
            assert_int_equal(st.torn_bytes_truncated, 0);
        } else {
            assert_before_batch(s);
            assert_int_equal(st.torn_bytes_truncated, cut - off);
        }
        assert_int_equal(st.checksum_errors, 0);
        assert_kv_ok(tu_close_tracked(s));
        /* Once cut, the store opens again to the same contents. */
        s = tu_open_tracked(dir, &o);
        if (cut == end)
            assert_after_batch(s);
        else
            assert_before_batch(s);
        assert_kv_ok(tu_close_tracked(s));
        tu_rmtree(dir);
        free(dir);
    }
    free(bytes);
    free(seg);
}

/* ---- damage at every byte of a batch, in a sealed segment */

static void test_a_batch_damaged_at_any_byte_is_skipped_whole(void **state)
{
    struct tu_fixture *fx = *state;
    uint64_t off, end;
    write_batch_dir(fx->dir, &off, &end);
    char *seg = tu_path(fx->dir, "segment-1.dat");
    size_t len = 0;
    uint8_t *bytes = tu_read_file(seg, &len);
    /* A record after the batch, which must survive the batch's damage. */
    uint8_t *grown = NULL;
    size_t grown_len = 0;
    tu_append_record(&grown, &grown_len, KV_OP_SET, "e", 1, "after", 5);
    uint8_t *all = malloc(len + grown_len);
    assert_non_null(all);
    memcpy(all, bytes, len);
    memcpy(all + len, grown, grown_len);
    kv_options o = quick_options();
    for (uint64_t at = off; at < end; at++) {
        for (int bit = 0; bit < 8; bit += 7) {
            char name[32];
            snprintf(name, sizeof(name), "flip-%llu-%d", (unsigned long long)at, bit);
            all[at] ^= (uint8_t)(1u << bit);
            char *dir = dir_with_segment(fx->root, name, all, len + grown_len);
            all[at] ^= (uint8_t)(1u << bit);
            /* A newer segment seals segment 1: damage there is skipped. */
            char *seg2 = tu_path(dir, "segment-2.dat");
            tu_write_file(seg2, "", 0);
            free(seg2);
            kv_store *s = tu_open_tracked(dir, &o);
            assert_before_batch(s);
            tu_assert_str(s, "e", "after");
            kv_stats st;
            assert_kv_ok(kv_get_stats(s, &st));
            if (st.checksum_errors == 0)
                fail_msg("damage at offset %llu (bit %d) of the batch was not reported",
                         (unsigned long long)at, bit);
            assert_int_equal(st.keys, 3);
            assert_kv_ok(tu_close_tracked(s));

            /* kv_scan shows none of the batch's records either. */
            struct seen sn;
            scan(dir, &sn);
            for (size_t i = 0; i < sn.n; i++) {
                if (sn.r[i].status == KV_REC_OK && sn.r[i].offset >= off && sn.r[i].offset < end)
                    fail_msg("damage at offset %llu: kv_scan reports a record at %llu inside "
                             "the damaged batch",
                             (unsigned long long)at, (unsigned long long)sn.r[i].offset);
            }
            tu_rmtree(dir);
            free(dir);
        }
    }
    free(all);
    free(grown);
    free(bytes);
    free(seg);
}

/* ---- a crash inside preallocated space */

/* The batch's first cut bytes made it to a segment whose space ahead was
 * preallocated: the rest of the batch, and more, are zeros. The batch is
 * torn: cut off whole, with the zeros, and counted as torn, not damage. */
static void test_a_batch_torn_inside_preallocated_space_is_cut_whole(void **state)
{
    struct tu_fixture *fx = *state;
    uint64_t off, end;
    write_batch_dir(fx->dir, &off, &end);
    char *seg = tu_path(fx->dir, "segment-1.dat");
    size_t len = 0;
    uint8_t *bytes = tu_read_file(seg, &len);
    size_t size = (size_t)end + 20000;
    uint8_t *file = calloc(1, size);
    assert_non_null(file);
    kv_options o = quick_options();
    for (uint64_t cut = off; cut < end; cut++) {
        char name[32];
        snprintf(name, sizeof(name), "zeros-%llu", (unsigned long long)cut);
        memset(file, 0, size);
        memcpy(file, bytes, (size_t)cut);
        char *dir = dir_with_segment(fx->root, name, file, size);
        struct seen sn;
        scan(dir, &sn);
        for (size_t i = 0; i < sn.n; i++) {
            if (sn.r[i].in_batch || (sn.r[i].op == KV_OP_BATCH && sn.r[i].status == KV_REC_OK))
                fail_msg("cut at %llu: kv_scan reports part of the torn batch",
                         (unsigned long long)cut);
        }
        assert_int_equal(sn.r[sn.n - 1].status, KV_REC_ZERO_TAIL);
        kv_store *s = tu_open_tracked(dir, &o);
        assert_before_batch(s);
        kv_stats st;
        assert_kv_ok(kv_get_stats(s, &st));
        assert_true(st.torn_bytes_truncated <= cut - off);
        assert_int_equal(st.checksum_errors, 0);
        assert_kv_ok(tu_close_tracked(s));
        char *path = tu_path(dir, "segment-1.dat");
        assert_int_equal(tu_file_size(path), off);
        free(path);
        tu_rmtree(dir);
        free(dir);
    }
    free(file);
    free(bytes);
    free(seg);
}

/* ---- the record kinds of compression inside a batch */

static kv_options zstd_options(void)
{
    kv_options o = quick_options();
    o.compression = KV_COMPRESS_ZSTD;
    o.compression_min_size = 64;
    return o;
}

/* A batch's PUTs are encoded as any put is: a compressible value becomes a
 * compressed SETX inside the BATCH record, whose etag is the original
 * value's CRC; conditions compare with that etag; replay applies it, and
 * compaction copies it out of the batch as a plain record. */
static void test_compressed_values_ride_inside_a_batch(void **state)
{
    struct tu_fixture *fx = *state;
    kv_options o = zstd_options();
    kv_store *s = tu_open_tracked(fx->dir, &o);
    char big[2000];
    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = "compressible text "[i % 18];
    big[sizeof(big) - 1] = 0;
    uint32_t big_crc = record_crc_update(0, big, strlen(big));
    assert_kv_ok(kv_put(s, "old", 3, "x", 1));
    kv_op ops[] = {put_op("z", big), put_op("b", "bravo"), del_op("old")};
    assert_kv_ok(kv_write(s, ops, 3));
    assert_int_equal(ops[0].value_crc, big_crc);
    tu_assert_str(s, "z", big);
    tu_assert_str(s, "b", "bravo");

    /* A condition on the compressed value's etag, in another batch. */
    kv_op wrong[] = {put_op("b", "never"), put_op("z", "never")};
    wrong[1].cond = KV_IF_CRC;
    wrong[1].cond_crc = big_crc ^ 1;
    assert_kv_rc(kv_write(s, wrong, 2), KV_ECONDITION);
    assert_int_equal(wrong[1].rc, KV_ECONDITION);
    tu_assert_str(s, "b", "bravo");
    kv_op check[] = {
        {.type = KV_WRITE_CHECK, .key = "z", .key_len = 1, .cond = KV_IF_CRC, .cond_crc = big_crc},
        put_op("c", "charlie")};
    assert_kv_ok(kv_write(s, check, 2));
    assert_kv_ok(tu_close_tracked(s));

    struct seen sn;
    scan(fx->dir, &sn);
    assert_int_equal(sn.n, 6); /* old, the batch and its three, then c */
    assert_int_equal(sn.r[1].op, KV_OP_BATCH);
    assert_int_equal(sn.r[2].op, KV_OP_SETX);
    assert_true(sn.r[2].in_batch);
    assert_int_equal(sn.r[2].attr_flags, KV_ATTR_ZSTD | KV_ATTR_MAGICLESS);
    assert_string_equal(sn.r[2].key, "z");
    assert_int_equal(sn.r[3].op, KV_OP_SET);
    assert_int_equal(sn.r[4].op, KV_OP_DELETE);
    assert_true(sn.r[4].in_batch);

    /* Replayed from the log alone. */
    char *snap = tu_path(fx->dir, "index.snapshot");
    unlink(snap);
    s = tu_open_tracked(fx->dir, &o);
    tu_assert_str(s, "z", big);
    tu_assert_str(s, "b", "bravo");
    tu_assert_str(s, "c", "charlie");
    assert_absent(s, "old");

    /* Compaction copies the records out of the batch. */
    assert_kv_ok(kv_compact(s));
    tu_assert_str(s, "z", big);
    tu_assert_str(s, "b", "bravo");
    assert_kv_ok(tu_close_tracked(s));
    scan(fx->dir, &sn);
    bool setx = false;
    for (size_t i = 0; i < sn.n; i++) {
        assert_int_not_equal(sn.r[i].op, KV_OP_BATCH);
        assert_false(sn.r[i].in_batch);
        setx |= sn.r[i].op == KV_OP_SETX &&
                sn.r[i].attr_flags == (KV_ATTR_ZSTD | KV_ATTR_MAGICLESS | KV_ATTR_DENSE);
    }
    assert_true(setx);
    unlink(snap);
    free(snap);
    s = tu_open_tracked(fx->dir, &o);
    tu_assert_str(s, "z", big);
    tu_assert_str(s, "c", "charlie");
    assert_kv_ok(tu_close_tracked(s));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_several_ops_are_one_batch_record_with_their_records_inside, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_of_short_and_long_values_checks_out_on_replay,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_that_writes_one_record_is_that_plain_record,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_that_writes_nothing_leaves_the_log_alone,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_bad_ops_are_refused_before_anything_is_written,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_cut_at_any_byte_is_recovered_all_or_nothing,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_damaged_at_any_byte_is_skipped_whole, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_a_batch_torn_inside_preallocated_space_is_cut_whole,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_compressed_values_ride_inside_a_batch, tu_setup,
                                        tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
