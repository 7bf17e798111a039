/*
 * test_compress.c - values stored as zstd frames (KV_COMPRESS_ZSTD): round
 * trips of every size around the threshold, incompressible values stored
 * as they are, the dictionary's life across compactions and reopens, and
 * damage: a compressed record that does not decode, a dictionary file that
 * is missing or damaged; frames compaction writes at its higher level
 * (dense); and frames as earlier versions wrote them (with zstd's magic
 * number).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "record.h"
#include "testutil.h"

#define THRESHOLD 100

static kv_options zstd_options(void)
{
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 256u * 1024;
    o.compaction_interval_secs = 0;
    o.sync_mode = KV_SYNC_NONE; /* durability is not what these tests are about */
    o.compression = KV_COMPRESS_ZSTD;
    o.compression_min_size = THRESHOLD;
    return o;
}

static uint32_t next_rand(uint32_t *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 8;
}

/* A JSON document of about len bytes with the field names and values of a
 * user record; style picks one of two unrelated vocabularies. */
static size_t json_doc(char *buf, size_t cap, uint32_t id, size_t len, int style)
{
    static const char *const first[] = {"Alice", "Bob", "Carol", "Dave", "Erin", "Frank"};
    static const char *const city[] = {"Lisbon", "Oslo", "Nairobi", "Lima", "Osaka", "Quebec"};
    static const char *const part[] = {"bolt-m6", "washer-8", "nut-m10", "gear-32t", "spring-s"};
    uint32_t seed = id * 2654435761u + 1;
    size_t n = 0;
    while (n + 120 < cap && n < len) {
        int w;
        if (style == 0)
            w = snprintf(buf + n, cap - n,
                         "{\"user_id\": %u, \"name\": \"%s\", \"email\": \"%s%u@example.com\", "
                         "\"city\": \"%s\", \"active\": %s},",
                         id, first[next_rand(&seed) % 6], first[next_rand(&seed) % 6],
                         next_rand(&seed) % 1000, city[next_rand(&seed) % 6],
                         next_rand(&seed) % 2 ? "true" : "false");
        else
            w = snprintf(buf + n, cap - n, "<item sku='%s' qty='%u' bin='R%02u-S%02u' lot='%08x'/>",
                         part[next_rand(&seed) % 5], next_rand(&seed) % 500, next_rand(&seed) % 40,
                         next_rand(&seed) % 20, next_rand(&seed));
        n += (size_t)w;
    }
    return n < len ? n : len;
}

/* Bytes no compressor shrinks: the top bits of the generator (its low bits
 * repeat every 2^16 steps). */
static void random_bytes(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(next_rand(&seed) >> 16);
}

static void remove_file(const char *dir, const char *name)
{
    char *path = tu_path(dir, name);
    unlink(path);
    free(path);
}

static bool file_exists(const char *dir, const char *name)
{
    char *path = tu_path(dir, name);
    bool there = access(path, F_OK) == 0;
    free(path);
    return there;
}

/* Records of the directory by kind; compressed ones by dictionary. */
struct census {
    size_t set, setx_zstd, by_dict[4], other;
};

static int count_record(const kv_record_info *info, void *ctx)
{
    struct census *c = ctx;
    if (info->status != KV_REC_OK || info->op == KV_OP_DELETE || info->op == KV_OP_META)
        return 0;
    if (info->op == KV_OP_SET) {
        c->set++;
    } else if (info->op == KV_OP_SETX && (info->attr_flags & KV_ATTR_ZSTD)) {
        c->setx_zstd++;
        c->by_dict[info->dict_id < 4 ? info->dict_id : 3]++;
    } else {
        c->other++;
    }
    return 0;
}

static struct census census_of(const char *dir)
{
    struct census c = {0};
    assert_kv_ok(kv_scan(dir, count_record, &c));
    return c;
}

static void assert_value_and_crc(kv_store *s, const char *key, const void *want, size_t len)
{
    void *got = NULL;
    size_t n = 0;
    uint32_t crc = 0;
    assert_kv_ok(kv_get_crc(s, key, strlen(key), &got, &n, &crc));
    assert_int_equal(n, len);
    assert_memory_equal(got, want, len);
    assert_int_equal(crc, (uint32_t)crc32(0, want, (uInt)len));
    kv_free(got);
}

/* ---- round trips */

/* Values of random sizes around the threshold, compressible and not, read
 * back exactly with their CRC-32, after a reopen (replay and snapshot) and
 * after a compaction; the ones at or above the threshold that compress are
 * stored as zstd frames, the others as SET records. */
static void test_values_of_sizes_around_the_threshold_round_trip(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = zstd_options();
    kv_store *s = tu_open(f->dir, &o);
    enum { N = 120 };
    static uint8_t vals[N][4 * THRESHOLD];
    size_t lens[N];
    uint32_t seed = 99;
    size_t want_zstd = 0, want_raw = 0;
    for (int i = 0; i < N; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%03d", i);
        lens[i] = i < 8 ? (size_t)(THRESHOLD - 4 + i) : 1 + next_rand(&seed) % (3 * THRESHOLD);
        bool text = i % 3 != 0;
        if (text)
            json_doc((char *)vals[i], sizeof(vals[i]), (uint32_t)i, lens[i], 0);
        else
            random_bytes(vals[i], lens[i], (uint32_t)i);
        uint32_t crc = 0;
        assert_kv_ok(kv_put_crc(s, key, strlen(key), vals[i], lens[i], &crc));
        assert_int_equal(crc, (uint32_t)crc32(0, vals[i], (uInt)lens[i]));
        if (text && lens[i] >= 2 * THRESHOLD)
            want_zstd++; /* two objects or more: their field names repeat */
        if (lens[i] < THRESHOLD || !text)
            want_raw++;
    }
    for (int round = 0; round < 4; round++) {
        if (round == 1 || round == 3) {
            assert_kv_ok(kv_close(s));
            if (round == 3)
                remove_file(f->dir, "index.snapshot");
            s = tu_open(f->dir, &o);
        }
        if (round == 2)
            assert_kv_ok(kv_compact(s));
        for (int i = 0; i < N; i++) {
            char key[16];
            snprintf(key, sizeof(key), "k%03d", i);
            assert_value_and_crc(s, key, vals[i], lens[i]);
        }
        struct census c = census_of(f->dir);
        assert_true(c.setx_zstd >= want_zstd);
        assert_true(c.set >= want_raw);
        assert_int_equal(c.set + c.setx_zstd, N);
    }
    assert_kv_ok(kv_close(s));
}

/* A value that does not shrink by 1/32 is stored as it is, in the original
 * format: random bytes, and text just above the threshold that a frame's
 * overhead would make longer. */
static void test_incompressible_values_are_stored_raw(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = zstd_options();
    kv_store *s = tu_open(f->dir, &o);
    static uint8_t noise[200000];
    random_bytes(noise, sizeof(noise), 5);
    const size_t sizes[] = {THRESHOLD, 4096, 65536, sizeof(noise)};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char key[16];
        snprintf(key, sizeof(key), "noise-%zu", i);
        assert_kv_ok(kv_put(s, key, strlen(key), noise, sizes[i]));
    }
    assert_kv_ok(kv_close(s));
    struct census c = census_of(f->dir);
    assert_int_equal(c.set, 4);
    assert_int_equal(c.setx_zstd, 0);
    s = tu_open(f->dir, &o);
    assert_value_and_crc(s, "noise-3", noise, sizeof(noise));
    assert_kv_ok(kv_close(s));
}

/* ---- the dictionary */

#define DOCS 3000

static void put_docs(kv_store *s, int style, size_t len)
{
    char doc[2048];
    for (uint32_t i = 0; i < DOCS; i++) {
        char key[16];
        snprintf(key, sizeof(key), "doc-%04u", i);
        size_t n = json_doc(doc, sizeof(doc), i + 7919u * (uint32_t)style, len, style);
        assert_kv_ok(kv_put(s, key, strlen(key), doc, n));
    }
}

static void assert_docs(kv_store *s, int style, size_t len)
{
    char doc[2048];
    for (uint32_t i = 0; i < DOCS; i += 7) {
        char key[16];
        snprintf(key, sizeof(key), "doc-%04u", i);
        size_t n = json_doc(doc, sizeof(doc), i + 7919u * (uint32_t)style, len, style);
        assert_value_and_crc(s, key, doc, n);
    }
}

/* Compaction trains dict-1 from the documents and recompresses them with
 * it, which makes them smaller; it survives reopen. Documents of another
 * kind make the next compaction train dict-2, recompress everything with it
 * and remove dict-1, which no record names any more. */
static void test_dictionary_is_trained_used_replaced_and_removed(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = zstd_options();
    kv_store *s = tu_open(f->dir, &o);
    put_docs(s, 0, 400);
    kv_stats before, after;
    assert_kv_ok(kv_get_stats(s, &before));
    assert_kv_ok(kv_compact(s));
    assert_kv_ok(kv_get_stats(s, &after));
    assert_true(file_exists(f->dir, "dict-1.zdict"));
    struct census c = census_of(f->dir);
    assert_int_equal(c.by_dict[1], DOCS);
    assert_true(after.disk_bytes * 10 < before.live_bytes * 7); /* < 70 % of plain zstd's */
    assert_docs(s, 0, 400);
    assert_kv_ok(kv_close(s));

    s = tu_open(f->dir, &o); /* with the snapshot */
    assert_docs(s, 0, 400);
    put_docs(s, 0, 600); /* written with dict-1 */
    assert_int_equal(census_of(f->dir).by_dict[1], 2 * DOCS);
    assert_kv_ok(kv_close(s));
    remove_file(f->dir, "index.snapshot");
    s = tu_open(f->dir, &o); /* by replay */
    assert_docs(s, 0, 600);

    put_docs(s, 1, 500); /* another vocabulary */
    assert_kv_ok(kv_compact(s));
    c = census_of(f->dir);
    assert_int_equal(c.by_dict[2], DOCS);
    assert_int_equal(c.by_dict[1], 0);
    assert_false(file_exists(f->dir, "dict-1.zdict"));
    assert_true(file_exists(f->dir, "dict-2.zdict"));
    assert_docs(s, 1, 500);
    assert_kv_ok(kv_close(s));
    remove_file(f->dir, "index.snapshot");
    s = tu_open(f->dir, &o);
    assert_docs(s, 1, 500);
    assert_kv_ok(kv_close(s));
}

/* Compressed values read back when the store is reopened with compression
 * off, and compaction then keeps them (and their dictionary) as they are. */
static void test_compressed_values_stay_readable_with_compression_off(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = zstd_options();
    kv_store *s = tu_open(f->dir, &o);
    put_docs(s, 0, 400);
    assert_kv_ok(kv_compact(s));
    assert_kv_ok(kv_close(s));
    o.compression = KV_COMPRESS_NONE;
    s = tu_open(f->dir, &o);
    assert_docs(s, 0, 400);
    assert_kv_ok(kv_put(s, "plain", 5, "{\"a\": 1}", 8));
    assert_kv_ok(kv_compact(s));
    assert_true(file_exists(f->dir, "dict-1.zdict"));
    assert_int_equal(census_of(f->dir).by_dict[1], DOCS);
    assert_docs(s, 0, 400);
    assert_kv_ok(kv_close(s));
}

/* ---- dense frames: compaction's level */

/* Compressed records by how they were written: [0] by a writer, [1] by a
 * compaction (dense); and the bytes each kind takes. */
struct frames {
    size_t n[2];
    uint64_t bytes[2];
};

static int count_dense(const kv_record_info *info, void *ctx)
{
    struct frames *fr = ctx;
    if (info->status != KV_REC_OK || info->op != KV_OP_SETX || !(info->attr_flags & KV_ATTR_ZSTD))
        return 0;
    int dense = (info->attr_flags & KV_ATTR_DENSE) != 0;
    fr->n[dense]++;
    fr->bytes[dense] += info->length;
    return 0;
}

static struct frames frames_of(const char *dir)
{
    struct frames fr = {{0, 0}, {0, 0}};
    assert_kv_ok(kv_scan(dir, count_dense, &fr));
    return fr;
}

/* Compaction writes every value it compresses as a dense frame, at its own
 * level: smaller than the same values in the writers' frames with the same
 * dictionary. It recompresses the writers' frames once, and copies its own
 * from then on; set to the writers' level, it keeps the writers' frames. */
static void test_compaction_writes_dense_frames_once_and_smaller(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = zstd_options();
    kv_store *s = tu_open(f->dir, &o);
    put_docs(s, 0, 400);
    assert_kv_ok(kv_compact(s)); /* trains dict-1, compresses every value with it */
    struct frames fr = frames_of(f->dir);
    assert_int_equal(fr.n[1], DOCS);
    assert_int_equal(fr.n[0], 0);
    uint64_t dense_bytes = fr.bytes[1];

    put_docs(s, 0, 400); /* the same values again, by writers, with dict-1 */
    fr = frames_of(f->dir);
    assert_int_equal(fr.n[0], DOCS);
    assert_int_equal(census_of(f->dir).by_dict[1], 2 * DOCS);
    assert_true(dense_bytes < fr.bytes[0]);
    assert_docs(s, 0, 400);

    assert_kv_ok(kv_compact(s));
    fr = frames_of(f->dir);
    assert_int_equal(fr.n[0], 0);
    assert_int_equal(fr.n[1], DOCS);
    assert_int_equal(fr.bytes[1], dense_bytes);
    assert_docs(s, 0, 400);
    assert_kv_ok(kv_put(s, "plain", 5, "x", 1));
    assert_kv_ok(kv_compact(s)); /* dense frames with the current dictionary stay */
    assert_int_equal(frames_of(f->dir).bytes[1], dense_bytes);
    assert_docs(s, 0, 400);
    assert_kv_ok(kv_close(s));

    /* Compaction at the writers' level keeps their frames as they are. */
    o.compaction_compression_level = o.compression_level;
    s = tu_open(f->dir, &o);
    put_docs(s, 0, 400);
    assert_kv_ok(kv_compact(s));
    fr = frames_of(f->dir);
    assert_int_equal(fr.n[0], DOCS);
    assert_int_equal(fr.n[1], 0);
    assert_docs(s, 0, 400);
    assert_kv_ok(kv_close(s));

    o.compaction_compression_level = 20;
    s = NULL;
    assert_kv_rc(kv_open(f->dir, &o, &s), KV_EINVAL);
    assert_null(s);
}

/* ---- damage */

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

/* Finds the one SETX record of the only segment; *payload_at is where its
 * payload starts. */
static size_t find_setx(const uint8_t *seg, size_t len, size_t *payload_at)
{
    size_t off = 0;
    while (off + RECORD_OVERHEAD <= len) {
        struct record_header h;
        assert_true(record_decode_header(seg + off, &h));
        if (h.op == KV_OP_SETX) {
            *payload_at = off + RECORD_HEADER_LEN + h.key_len;
            return off;
        }
        off += record_size(h.key_len, h.val_len);
    }
    fail_msg("no SETX record");
    return 0;
}

/* Flips mask into the byte back bytes before the trailer of the record at
 * off in seg (the end of its value); with forge, writes the checksum that
 * matches the damage, as if the record had been written so. */
static void damage_record(uint8_t *seg, size_t off, size_t back, uint8_t mask, bool forge)
{
    struct record_header h;
    assert_true(record_decode_header(seg + off, &h));
    size_t end = off + record_size(h.key_len, h.val_len);
    seg[end - RECORD_TRAILER_LEN - back] ^= mask;
    if (forge)
        put_u32(seg + end - RECORD_TRAILER_LEN,
                record_crc_update(0, seg + off + 2, end - RECORD_TRAILER_LEN - off - 2));
}

/* A compressed record whose bytes are damaged reads as KV_ECORRUPT, never
 * as wrong bytes: when its checksum catches it, and when the damage comes
 * with a checksum that matches (the frame then does not decode to the
 * recorded length and CRC-32). */
static void test_damaged_compressed_record_reads_as_corrupt(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = zstd_options();
    char doc[1024];
    size_t n = json_doc(doc, sizeof(doc), 1, 900, 0);
    for (int forged = 0; forged < 2; forged++) {
        tu_rmtree(f->dir);
        kv_store *s = tu_open(f->dir, &o);
        assert_kv_ok(kv_put(s, "k", 1, doc, n));
        assert_kv_ok(kv_put(s, "other", 5, "x", 1));
        assert_kv_ok(kv_close(s));
        char *path = tu_path(f->dir, "segment-1.dat");
        size_t len, payload;
        uint8_t *seg = tu_read_file(path, &len);
        size_t off = find_setx(seg, len, &payload);
        damage_record(seg, off, 3, 0x5a, forged); /* a byte of the frame */
        tu_write_file(path, seg, len);
        free(seg);
        free(path);
        s = tu_open(f->dir, &o);
        void *v = (void *)0x1;
        size_t vn = 7;
        assert_kv_rc(kv_get(s, "k", 1, &v, &vn), KV_ECORRUPT);
        assert_ptr_equal(v, (void *)0x1);
        kv_stats st;
        assert_kv_ok(kv_get_stats(s, &st));
        assert_true(st.checksum_errors >= 1);
        tu_assert_str(s, "other", "x");
        assert_kv_ok(kv_close(s));
    }
}

/* A dictionary file that is gone, or damaged, stops the open with
 * KV_ECORRUPT and a log line that names the file: with the snapshot (which
 * lists it) and without. */
static void test_missing_or_damaged_dictionary_stops_the_open(void **state)
{
    struct tu_fixture *f = *state;
    for (int damage = 0; damage < 2; damage++) {
        for (int snapshot = 0; snapshot < 2; snapshot++) {
            tu_rmtree(f->dir);
            kv_options o = zstd_options();
            kv_store *s = tu_open(f->dir, &o);
            put_docs(s, 0, 300);
            assert_kv_ok(kv_compact(s));
            assert_kv_ok(kv_close(s));
            if (!snapshot)
                remove_file(f->dir, "index.snapshot");
            char *dict = tu_path(f->dir, "dict-1.zdict");
            if (damage)
                tu_flip_byte(dict, 100);
            else
                unlink(dict);
            free(dict);
            struct log_watch w = {.want = "dict-1.zdict"};
            o.log_fn = watch_log;
            o.log_ctx = &w;
            s = NULL;
            assert_kv_rc(kv_open(f->dir, &o, &s), KV_ECORRUPT);
            assert_null(s);
            assert_true(w.seen);
        }
    }
}

/* A compressed record with a dictionary whose frame is damaged under a
 * checksum that matches reads as KV_ECORRUPT, never as wrong bytes; the
 * decoder it used goes on to read every other value right. */
static void test_damaged_record_compressed_with_a_dictionary_reads_as_corrupt(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = zstd_options();
    kv_store *s = tu_open(f->dir, &o);
    put_docs(s, 0, 400);
    assert_kv_ok(kv_compact(s));
    char doc[1024];
    size_t doc_len = json_doc(doc, sizeof(doc), 12345, 600, 0);
    assert_kv_ok(kv_put(s, "k", 1, doc, doc_len));
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_kv_ok(kv_close(s));
    /* The newest segment holds k's record alone: damage the last byte of
     * its frame and forge the checksum. */
    char name[64];
    snprintf(name, sizeof(name), "segment-%u.dat", (unsigned)st.active_segment_id);
    char *path = tu_path(f->dir, name);
    size_t len = 0, payload = 0;
    uint8_t *seg = tu_read_file(path, &len);
    size_t off = find_setx(seg, len, &payload);
    assert_true(payload > off && payload < len);
    struct record_header h;
    assert_true(record_decode_header(seg + off, &h));
    assert_int_equal(h.key_len, 1);
    assert_true(seg[payload] & RECORD_ATTR_ZSTD);
    assert_int_equal(get_u32(seg + payload + 9), 1); /* dict_id: dict-1 */
    damage_record(seg, off, 1, 0x21, true);
    tu_write_file(path, seg, len);
    free(seg);
    free(path);
    s = tu_open(f->dir, &o);
    for (int i = 0; i < 3; i++) {
        void *v = (void *)0x1;
        size_t vn = 7;
        assert_kv_rc(kv_get(s, "k", 1, &v, &vn), KV_ECORRUPT);
        assert_ptr_equal(v, (void *)0x1);
        assert_docs(s, 0, 400);
    }
    assert_kv_ok(kv_close(s));
}

/* Where the first dense frame of a directory is, and its key. */
struct dense_at {
    uint64_t seg, off;
    char key[16];
    bool found;
};

static int find_dense(const kv_record_info *info, void *ctx)
{
    struct dense_at *at = ctx;
    if (at->found || info->status != KV_REC_OK || !(info->attr_flags & KV_ATTR_DENSE) ||
        info->key_len >= sizeof(at->key))
        return 0;
    *at = (struct dense_at){.seg = info->segment_id, .off = info->offset, .found = true};
    memcpy(at->key, info->key, info->key_len);
    return 0;
}

/* A dense frame damaged under a checksum that matches reads as KV_ECORRUPT,
 * never as wrong bytes, and the other values read right. */
static void test_damaged_dense_frame_reads_as_corrupt(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = zstd_options();
    kv_store *s = tu_open(f->dir, &o);
    put_docs(s, 0, 400);
    assert_kv_ok(kv_compact(s));
    assert_kv_ok(kv_close(s));
    struct dense_at at = {0};
    assert_kv_ok(kv_scan(f->dir, find_dense, &at));
    assert_true(at.found);

    char name[64];
    snprintf(name, sizeof(name), "segment-%u.dat", (unsigned)at.seg);
    char *path = tu_path(f->dir, name);
    size_t len = 0;
    uint8_t *seg = tu_read_file(path, &len);
    struct record_header h;
    assert_true(record_decode_header(seg + at.off, &h));
    size_t payload = at.off + RECORD_HEADER_LEN + h.key_len;
    assert_int_equal(seg[payload], RECORD_ATTR_ZSTD | RECORD_ATTR_MAGICLESS | RECORD_ATTR_DENSE);
    damage_record(seg, at.off, 1, 0x21, true); /* the frame's last byte */
    tu_write_file(path, seg, len);
    free(seg);
    free(path);

    s = tu_open(f->dir, &o);
    void *v = (void *)0x1;
    size_t vn = 7;
    assert_kv_rc(kv_get(s, at.key, strlen(at.key), &v, &vn), KV_ECORRUPT);
    assert_ptr_equal(v, (void *)0x1);
    char doc[2048];
    for (uint32_t i = 0; i < DOCS; i++) {
        char key[16];
        snprintf(key, sizeof(key), "doc-%04u", i);
        if (strcmp(key, at.key) == 0)
            continue;
        size_t n = json_doc(doc, sizeof(doc), i, 400, 0);
        assert_value_and_crc(s, key, doc, n);
    }
    assert_kv_ok(kv_close(s));
}

/* ---- frames as earlier versions wrote them */

/* The payload of a SETX whose value is compressed as versions before
 * magicless frames did it: a zstd frame with its magic number, without
 * content size, checksum or dictionary id, with dict (dict_len bytes; NULL:
 * none), into a new buffer; *len is its length. */
static uint8_t *framed_payload(const char *val, size_t val_len, const void *dict, size_t dict_len,
                               uint32_t dict_id, size_t *len)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    assert_non_null(c);
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)));
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0)));
    if (dict)
        assert_false(ZSTD_isError(ZSTD_CCtx_loadDictionary(c, dict, dict_len)));
    size_t cap = RECORD_ATTRS_MAX + ZSTD_compressBound(val_len);
    uint8_t *payload = malloc(cap);
    assert_non_null(payload);
    struct record_attrs a = {.flags = RECORD_ATTR_ZSTD,
                             .raw_len = (uint32_t)val_len,
                             .raw_crc = (uint32_t)crc32(0, (const Bytef *)val, (uInt)val_len),
                             .dict_id = dict_id};
    size_t alen = record_attrs_encode(payload, &a);
    size_t n = ZSTD_compress2(c, payload + alen, cap - alen, val, val_len);
    assert_false(ZSTD_isError(n));
    assert_int_equal(get_u32(payload + alen), ZSTD_MAGICNUMBER);
    ZSTD_freeCCtx(c);
    *len = alen + n;
    return payload;
}

static void append_framed_setx(uint8_t **seg, size_t *len, const char *key, const char *val,
                               size_t val_len, const void *dict, size_t dict_len, uint32_t dict_id)
{
    size_t plen;
    uint8_t *payload = framed_payload(val, val_len, dict, dict_len, dict_id, &plen);
    tu_append_record(seg, len, KV_OP_SETX, key, strlen(key), payload, plen);
    free(payload);
}

/* Compressed records: [0] magicless frames, [1] frames with the magic. */
static int count_frames(const kv_record_info *info, void *ctx)
{
    size_t *n = ctx;
    if (info->status == KV_REC_OK && info->op == KV_OP_SETX && (info->attr_flags & KV_ATTR_ZSTD))
        n[(info->attr_flags & KV_ATTR_MAGICLESS) ? 0 : 1]++;
    return 0;
}

/* Values compressed into frames with zstd's magic number (as versions
 * before magicless frames wrote them), with the dictionary and without one,
 * short and longer than a decoder lays out behind its dictionary, read back
 * by replay; the next compaction rewrites them as magicless frames, which
 * read back the same. */
static void test_frames_with_the_zstd_magic_still_read_and_compaction_rewrites_them(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = zstd_options();
    kv_store *s = tu_open(f->dir, &o);
    put_docs(s, 0, 400);
    assert_kv_ok(kv_compact(s));
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_kv_ok(kv_close(s));
    size_t counts[2] = {0, 0};
    assert_kv_ok(kv_scan(f->dir, count_frames, counts));
    assert_int_equal(counts[0], DOCS); /* what this version writes */
    assert_int_equal(counts[1], 0);

    char *dpath = tu_path(f->dir, "dict-1.zdict");
    size_t dlen;
    uint8_t *dfile = tu_read_file(dpath, &dlen);
    free(dpath);
    assert_true(dlen > 20); /* the file's header, then the dictionary */
    static char big[40000];
    size_t big_len = json_doc(big, sizeof(big), 99, sizeof(big) - 200, 0);
    char small[2048];
    size_t small_len = json_doc(small, sizeof(small), 98, 700, 0);
    uint8_t *seg = NULL;
    size_t len = 0;
    append_framed_setx(&seg, &len, "old-dict", small, small_len, dfile + 20, dlen - 20, 1);
    append_framed_setx(&seg, &len, "old-big", big, big_len, dfile + 20, dlen - 20, 1);
    append_framed_setx(&seg, &len, "old-plain", small, small_len, NULL, 0, 0);
    free(dfile);
    char name[64];
    snprintf(name, sizeof(name), "segment-%u.dat", (unsigned)st.active_segment_id + 1);
    char *path = tu_path(f->dir, name);
    tu_write_file(path, seg, len);
    free(path);
    free(seg);
    remove_file(f->dir, "index.snapshot");

    for (int round = 0; round < 2; round++) {
        s = tu_open(f->dir, &o);
        assert_value_and_crc(s, "old-dict", small, small_len);
        assert_value_and_crc(s, "old-big", big, big_len);
        assert_value_and_crc(s, "old-plain", small, small_len);
        assert_docs(s, 0, 400);
        if (round == 0)
            assert_kv_ok(kv_compact(s));
        assert_kv_ok(kv_close(s));
    }
    counts[0] = counts[1] = 0;
    assert_kv_ok(kv_scan(f->dir, count_frames, counts));
    assert_int_equal(counts[0], DOCS + 3);
    assert_int_equal(counts[1], 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_values_of_sizes_around_the_threshold_round_trip,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_incompressible_values_are_stored_raw, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_dictionary_is_trained_used_replaced_and_removed,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_compressed_values_stay_readable_with_compression_off,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_compressed_record_reads_as_corrupt, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_missing_or_damaged_dictionary_stops_the_open, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_damaged_record_compressed_with_a_dictionary_reads_as_corrupt, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_frames_with_the_zstd_magic_still_read_and_compaction_rewrites_them, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_compaction_writes_dense_frames_once_and_smaller,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_damaged_dense_frame_reads_as_corrupt, tu_setup,
                                        tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
