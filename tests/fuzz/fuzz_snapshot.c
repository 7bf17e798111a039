/*
 * fuzz_snapshot.c - the snapshot loader.
 *
 * A small valid store (a few segments; keys written, overwritten, deleted) is
 * made once; each input becomes its index.snapshot, as given and once more
 * with its trailing CRC made to match (so the fuzzer reaches the entries past
 * the checksum). kv_check_snapshot and kv_open must not crash, open must
 * succeed (a bad snapshot is ignored, never fatal), and every value served
 * must be one that was written for that key: a snapshot, however forged, never
 * makes the store serve wrong bytes.
 *
 * With KV_FUZZ_WRITE_SEED=path, the template's own snapshot is written there
 * (how the seed corpus was made).
 */
#include <kvstore.h>

#include "fuzz_common.h"
#include "record.h"

#define NKEYS  24
#define ROUNDS 3
#define NFILES 16

struct tpl_file {
    char name[64];
    uint8_t *data;
    size_t len;
};

static struct tpl_file g_files[NFILES];
static size_t g_nfiles;
static char g_tpl[512], g_dir[512];

static void value_of(int k, int round, char *buf, size_t len)
{
    snprintf(buf, len, "value-%d-%d-%0*d", k, round, 40 + k * 7, round);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    FUZZ_CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    FUZZ_CHECK(buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void make_template(void)
{
    const char *tpl = fuzz_workdir("snaptpl", g_tpl, sizeof(g_tpl));
    fuzz_empty_dir(tpl);
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 4096;
    o.compaction_interval_secs = 0;
    kv_store *s = NULL;
    FUZZ_CHECK(kv_open(tpl, &o, &s) == 0);
    char key[32], val[512];
    for (int round = 0; round < ROUNDS; round++) {
        for (int k = 0; k < NKEYS; k++) {
            snprintf(key, sizeof(key), "key-%02d", k);
            if (round == ROUNDS - 1 && k % 4 == 0) {
                FUZZ_CHECK(kv_delete(s, key, strlen(key)) == 0);
                continue;
            }
            value_of(k, round, val, sizeof(val));
            FUZZ_CHECK(kv_put(s, key, strlen(key), val, strlen(val)) == 0);
        }
    }
    FUZZ_CHECK(kv_close(s) == 0);
    DIR *d = opendir(tpl);
    FUZZ_CHECK(d != NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "segment-", 8) != 0 && strcmp(de->d_name, "index.snapshot") != 0)
            continue;
        FUZZ_CHECK(g_nfiles < NFILES);
        struct tpl_file *f = &g_files[g_nfiles++];
        snprintf(f->name, sizeof(f->name), "%s", de->d_name);
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", tpl, de->d_name);
        f->data = read_all(path, &f->len);
    }
    closedir(d);
    const char *seed = getenv("KV_FUZZ_WRITE_SEED");
    for (size_t i = 0; seed && i < g_nfiles; i++) {
        if (strcmp(g_files[i].name, "index.snapshot") != 0)
            continue;
        FILE *out = fopen(seed, "wb");
        FUZZ_CHECK(out && fwrite(g_files[i].data, 1, g_files[i].len, out) == g_files[i].len);
        fclose(out);
    }
}

/* True when val is a value written for key (only key-NN keys exist). */
static int was_written(const void *key, size_t key_len, const void *val, size_t val_len)
{
    char want[512];
    int k;
    char kbuf[32];
    if (key_len >= sizeof(kbuf))
        return 0;
    memcpy(kbuf, key, key_len);
    kbuf[key_len] = 0;
    char *end;
    if (strncmp(kbuf, "key-", 4) != 0)
        return 0;
    k = (int)strtol(kbuf + 4, &end, 10);
    if (end == kbuf + 4 || *end != 0 || k < 0 || k >= NKEYS)
        return 0;
    for (int round = 0; round < ROUNDS; round++) {
        value_of(k, round, want, sizeof(want));
        if (strlen(want) == val_len && memcmp(want, val, val_len) == 0)
            return 1;
    }
    return 0;
}

static int on_key(const void *key, size_t key_len, void *ctx)
{
    kv_store *s = ctx;
    void *val = NULL;
    size_t val_len = 0;
    int rc = kv_get(s, key, key_len, &val, &val_len);
    FUZZ_CHECK(rc == 0 || rc == KV_ECORRUPT || rc == KV_ENOTFOUND);
    if (rc == 0)
        FUZZ_CHECK(was_written(key, key_len, val, val_len));
    kv_free(val);
    return 0;
}

static void run_one(const uint8_t *snap, size_t len)
{
    const char *dir = fuzz_workdir("snapshot", g_dir, sizeof(g_dir));
    fuzz_empty_dir(dir);
    for (size_t i = 0; i < g_nfiles; i++)
        if (strcmp(g_files[i].name, "index.snapshot") != 0)
            fuzz_write_file(dir, g_files[i].name, g_files[i].data, g_files[i].len);
    fuzz_write_file(dir, "index.snapshot", snap, len);

    kv_snapshot_status status;
    uint64_t keys = 0;
    char reason[256];
    FUZZ_CHECK(kv_check_snapshot(dir, &status, &keys, reason, sizeof(reason)) == 0);

    kv_options o;
    kv_options_init(&o);
    o.segment_size = 4096;
    o.compaction_interval_secs = 0;
    kv_store *s = NULL;
    FUZZ_CHECK(kv_open(dir, &o, &s) == 0);
    FUZZ_CHECK(kv_list(s, NULL, 0, NULL, 0, 0, on_key, s) == 0);
    char key[32];
    for (int k = 0; k < NKEYS; k++) {
        snprintf(key, sizeof(key), "key-%02d", k);
        on_key(key, strlen(key), s);
    }
    FUZZ_CHECK(kv_close(s) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_nfiles == 0)
        make_template();
    run_one(data, size);
    if (size >= 8) {
        uint8_t *fixed = malloc(size);
        FUZZ_CHECK(fixed != NULL);
        memcpy(fixed, data, size);
        put_u32(fixed + size - 4, record_crc_update(0, fixed, size - 4));
        run_one(fixed, size);
        free(fixed);
    }
    return 0;
}
