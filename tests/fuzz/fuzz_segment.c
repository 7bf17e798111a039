/*
 * fuzz_segment.c - the segment scanner and record decoder, and recovery.
 *
 * The input is written as the only segment of a directory. kv_scan must not
 * crash, its regions must tile the file in order, and every record it reports
 * OK must re-encode to exactly the bytes it came from (header, key, value,
 * checksum), the records inside a batch included, which must tile the batch's
 * payload. kv_open on the directory must succeed, and every key it indexes
 * must read back as the value of an OK record of that key: recovery keeps
 * what checks out and never serves damaged bytes.
 */
#include <kvstore.h>

#include "fuzz_common.h"
#include "record.h"

struct scan_state {
    const uint8_t *data;
    size_t size;
    uint64_t next_off;   /* where the next region must start */
    uint64_t inner_next; /* where the next record inside the last batch must start */
    uint64_t inner_end;  /* where the last batch's records end */
    size_t ok;
};

static int on_record(const kv_record_info *info, void *ctx)
{
    struct scan_state *st = ctx;
    FUZZ_CHECK(info->segment_id == 1);
    FUZZ_CHECK(info->length > 0 && info->offset + info->length <= st->size);
    if (info->in_batch) {
        /* The records of a batch tile its payload, in order. */
        FUZZ_CHECK(info->offset == st->inner_next);
        FUZZ_CHECK(info->offset + info->length <= st->inner_end);
        st->inner_next = info->offset + info->length;
    } else {
        FUZZ_CHECK(st->inner_next == st->inner_end);
        FUZZ_CHECK(info->offset >= st->next_off);
        st->next_off = info->offset + info->length;
        if (info->status == KV_REC_OK && info->op == KV_OP_BATCH) {
            st->inner_next = info->offset + RECORD_HEADER_LEN;
            st->inner_end = info->offset + info->length - RECORD_TRAILER_LEN;
        }
    }
    if (info->status != KV_REC_OK)
        return 0;
    st->ok++;
    const uint8_t *rec = st->data + info->offset;
    FUZZ_CHECK(info->length == record_size(info->key_len, info->value_len));
    uint8_t hdr[RECORD_HEADER_LEN];
    record_encode_header(hdr, info->op, (uint32_t)info->key_len, (uint32_t)info->value_len);
    FUZZ_CHECK(memcmp(hdr, rec, RECORD_HEADER_LEN) == 0);
    FUZZ_CHECK(info->key_len == 0 ||
               memcmp(info->key, rec + RECORD_HEADER_LEN, info->key_len) == 0);
    uint32_t crc = record_crc_head(hdr, info->key, info->key_len);
    if (info->value_len > 0)
        crc = record_crc_update(crc, rec + RECORD_HEADER_LEN + info->key_len, info->value_len);
    FUZZ_CHECK(crc == info->checksum);
    FUZZ_CHECK(crc == get_u32(rec + info->length - RECORD_TRAILER_LEN));
    return 0;
}

static char g_dir[512], g_orig[512];

struct found {
    const void *key;
    size_t key_len;
    const void *val;
    size_t val_len;
    const uint8_t *data;
    int match;
};

static int on_match(const kv_record_info *info, void *ctx)
{
    struct found *f = ctx;
    if (info->status == KV_REC_OK && info->op == KV_OP_SET && info->key_len == f->key_len &&
        info->value_len == f->val_len && memcmp(info->key, f->key, f->key_len) == 0 &&
        memcmp(f->data + info->offset + RECORD_HEADER_LEN + info->key_len, f->val, f->val_len) == 0)
        f->match = 1;
    return 0;
}

/* True when val is the value of an OK SET record of key in the input (kept
 * in g_orig: open may have cut a torn tail off the working copy). */
static int served_value_is_recorded(const void *key, size_t key_len, const void *val,
                                    size_t val_len, const uint8_t *data)
{
    struct found f = {key, key_len, val, val_len, data, 0};
    FUZZ_CHECK(kv_scan(g_orig, on_match, &f) == 0);
    return f.match;
}

struct list_state {
    kv_store *s;
    const uint8_t *data;
    size_t size;
    size_t keys;
};

static int on_key(const void *key, size_t key_len, void *ctx)
{
    struct list_state *ls = ctx;
    void *val = NULL;
    size_t val_len = 0;
    int rc = kv_get(ls->s, key, key_len, &val, &val_len);
    FUZZ_CHECK(rc == 0 || rc == KV_ECORRUPT);
    if (rc == 0)
        FUZZ_CHECK(served_value_is_recorded(key, key_len, val, val_len, ls->data));
    kv_free(val);
    ls->keys++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_workdir("segment", g_dir, sizeof(g_dir));
    const char *orig = fuzz_workdir("segment-orig", g_orig, sizeof(g_orig));
    fuzz_empty_dir(dir);
    fuzz_empty_dir(orig);
    fuzz_write_file(dir, "segment-1.dat", data, size);
    fuzz_write_file(orig, "segment-1.dat", data, size);

    struct scan_state st = {.data = data, .size = size};
    FUZZ_CHECK(kv_scan(dir, on_record, &st) == 0);
    FUZZ_CHECK(st.next_off <= size);
    FUZZ_CHECK(st.inner_next == st.inner_end);

    kv_options o;
    kv_options_init(&o);
    o.compaction_interval_secs = 0;
    kv_store *s = NULL;
    int rc = kv_open(dir, &o, &s);
    FUZZ_CHECK(rc == 0);
    struct list_state ls = {.s = s, .data = data, .size = size};
    FUZZ_CHECK(kv_list(s, NULL, 0, NULL, 0, 0, on_key, &ls) == 0);
    FUZZ_CHECK(ls.keys <= st.ok);
    FUZZ_CHECK(kv_put(s, "fuzz", 4, "ok", 2) == 0);
    FUZZ_CHECK(kv_close(s) == 0);
    return 0;
}
