/*
 * test_compact.c - kv_compact: it reclaims space, keeps every live value,
 * never brings a deleted key back, and every step of it is safe to crash in.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "record.h"
#include "compaction.h"
#include "rwlock.h"
#include "store.h"
#include "testutil.h"

#define NKEYS 300

struct fixture {
    char *root;
    char *dir;
    kv_store *s;
    /* The model: value version of each key; 0 = deleted or never written. */
    int version[NKEYS];
};

static kv_options small_segments(void)
{
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 8u * 1024;
    return o;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->root = tu_mkdtemp();
    f->dir = tu_path(f->root, "db");
    kv_options o = small_segments();
    f->s = tu_open(f->dir, &o);
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

static void make_key(int i, char *buf, size_t len)
{
    snprintf(buf, len, "key-%04d", i);
}

static void make_value(int i, int version, char *buf, size_t len)
{
    snprintf(buf, len, "value-%04d-v%03d-%040d", i, version, i * version);
}

static void model_put(struct fixture *f, int i, int version)
{
    char k[32], v[96];
    make_key(i, k, sizeof(k));
    make_value(i, version, v, sizeof(v));
    assert_kv_ok(kv_put(f->s, k, strlen(k), v, strlen(v)));
    f->version[i] = version;
}

static void model_delete(struct fixture *f, int i)
{
    char k[32];
    make_key(i, k, sizeof(k));
    int rc = kv_delete(f->s, k, strlen(k));
    assert_kv_rc(rc, f->version[i] ? 0 : KV_ENOTFOUND);
    f->version[i] = 0;
}

static void assert_matches_model(const struct fixture *f, kv_store *s)
{
    uint64_t live = 0;
    for (int i = 0; i < NKEYS; i++) {
        char k[32], v[96];
        make_key(i, k, sizeof(k));
        if (f->version[i] == 0) {
            if (kv_exists(s, k, strlen(k)) != KV_ENOTFOUND)
                fail_msg("deleted key %s came back", k);
            continue;
        }
        live++;
        make_value(i, f->version[i], v, sizeof(v));
        tu_assert_str(s, k, v);
    }
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_int_equal(st.keys, live);
}

static void reopen(struct fixture *f)
{
    assert_kv_ok(kv_close(f->s));
    kv_options o = small_segments();
    f->s = tu_open(f->dir, &o);
}

static void test_compaction_of_overwrites_falls_to_about_live_size(void **state)
{
    struct fixture *f = *state;
    for (int round = 1; round <= 5; round++)
        for (int i = 0; i < NKEYS; i++)
            model_put(f, i, round);
    kv_stats before, after;
    assert_kv_ok(kv_get_stats(f->s, &before));
    assert_kv_ok(kv_compact(f->s));
    assert_kv_ok(kv_get_stats(f->s, &after));
    assert_true(before.disk_bytes > 4 * before.live_bytes);
    assert_int_equal(after.dead_bytes, 0);
    assert_int_equal(after.disk_bytes, before.live_bytes);
    assert_true(after.segments < before.segments);
    assert_matches_model(f, f->s);
    reopen(f);
    assert_matches_model(f, f->s);
}

static void test_compaction_keeps_deleted_keys_deleted_across_reopen(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < NKEYS; i++)
        model_put(f, i, 1);
    for (int i = 0; i < NKEYS; i += 3)
        model_delete(f, i);
    assert_kv_ok(kv_compact(f->s));
    assert_matches_model(f, f->s);
    reopen(f);
    assert_matches_model(f, f->s);
}

static void test_compaction_of_an_empty_store_is_harmless(void **state)
{
    struct fixture *f = *state;
    assert_kv_ok(kv_compact(f->s));
    assert_kv_ok(kv_compact(f->s));
    assert_matches_model(f, f->s);
    model_put(f, 1, 1);
    reopen(f);
    assert_matches_model(f, f->s);
}

static void test_compaction_of_only_tombstones_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 50; i++)
        model_put(f, i, 1);
    for (int i = 0; i < 50; i++)
        model_delete(f, i);
    assert_kv_ok(kv_compact(f->s));
    kv_stats st;
    assert_kv_ok(kv_get_stats(f->s, &st));
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.disk_bytes, 0);
    reopen(f);
    assert_matches_model(f, f->s);
}

static void test_compaction_when_every_record_is_live_keeps_all(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < NKEYS; i++)
        model_put(f, i, 1);
    kv_stats before, after;
    assert_kv_ok(kv_get_stats(f->s, &before));
    assert_kv_ok(kv_compact(f->s));
    assert_kv_ok(kv_get_stats(f->s, &after));
    assert_int_equal(after.disk_bytes, before.disk_bytes);
    assert_matches_model(f, f->s);
}

static void test_repeated_compaction_is_idempotent_on_contents(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < NKEYS; i++)
        model_put(f, i, 1 + i % 3);
    for (int i = 0; i < NKEYS; i += 7)
        model_delete(f, i);
    for (int k = 0; k < 3; k++) {
        assert_kv_ok(kv_compact(f->s));
        assert_matches_model(f, f->s);
    }
    reopen(f);
    assert_matches_model(f, f->s);
}

static void test_writes_after_compaction_win_over_compacted_copies(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < NKEYS; i++)
        model_put(f, i, 1);
    assert_kv_ok(kv_compact(f->s));
    for (int i = 0; i < NKEYS; i += 2)
        model_put(f, i, 2);
    for (int i = 1; i < NKEYS; i += 4)
        model_delete(f, i);
    reopen(f);
    assert_matches_model(f, f->s);
    assert_kv_ok(kv_compact(f->s));
    reopen(f);
    assert_matches_model(f, f->s);
}

/* A record the index names but whose checksum fails (bit rot after open)
 * has no good copy: compaction drops its key, as recovery would skip the
 * record, and copies every other one. */
static void test_compaction_drops_a_key_whose_record_is_damaged_and_keeps_the_rest(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < NKEYS; i++)
        model_put(f, i, 1);
    for (int i = 0; i < NKEYS; i += 2)
        model_put(f, i, 2);
    assert_kv_ok(kv_sync(f->s));
    const int victim = 77;
    char k[32];
    make_key(victim, k, sizeof(k));
    struct kv_loc loc;
    kv__rdlock(&f->s->rwlock);
    const struct index_entry *e =
        index_lookup(&f->s->index, index_hash(k, strlen(k)), k, strlen(k));
    assert_non_null(e);
    loc = e->loc;
    kv__unlock(&f->s->rwlock);
    char name[64];
    snprintf(name, sizeof(name), "segment-%u.dat", loc.seg);
    char *path = tu_path(f->dir, name);
    tu_flip_byte(path, loc.off + RECORD_HEADER_LEN + strlen(k) + loc.val_len / 2);
    free(path);
    void *v = NULL;
    size_t vlen = 0;
    assert_kv_rc(kv_get(f->s, k, strlen(k), &v, &vlen), KV_ECORRUPT);

    assert_kv_ok(kv_compact(f->s));
    f->version[victim] = 0;
    assert_matches_model(f, f->s);
    kv_stats st;
    assert_kv_ok(kv_get_stats(f->s, &st));
    assert_int_equal(st.dead_bytes, 0);
    reopen(f);
    assert_matches_model(f, f->s);
}

/* ---- crash at every step: the directory as a crash would leave it after
 * each step is rebuilt from copies of the files, and opened. */

struct dir_copy {
    char names[64][256];
    uint8_t *data[64];
    size_t len[64];
    int n;
};

static void snapshot_dir(const char *dir, struct dir_copy *c)
{
    memset(c, 0, sizeof(*c));
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strcmp(de->d_name, "LOCK") == 0)
            continue;
        assert_true(c->n < 64);
        snprintf(c->names[c->n], sizeof(c->names[0]), "%s", de->d_name);
        char *p = tu_path(dir, de->d_name);
        c->data[c->n] = tu_read_file(p, &c->len[c->n]);
        free(p);
        c->n++;
    }
    closedir(d);
}

static void restore_dir(const char *dir, const struct dir_copy *c, bool (*keep)(const char *))
{
    mkdir(dir, 0755);
    for (int i = 0; i < c->n; i++) {
        if (keep && !keep(c->names[i]))
            continue;
        char *p = tu_path(dir, c->names[i]);
        tu_write_file(p, c->data[i], c->len[i]);
        free(p);
    }
}

static void free_copy(struct dir_copy *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->data[i]);
}

static const struct dir_copy *g_before;

/* Keeps a file of the "after" directory only if it was not in "before":
 * combined with restoring "before", this builds every mixture of old and new
 * files that the steps of compaction pass through. */
static bool is_new(const char *name)
{
    for (int i = 0; i < g_before->n; i++)
        if (strcmp(g_before->names[i], name) == 0)
            return false;
    return true;
}

static bool segment_id_of(const char *name, unsigned *id)
{
    if (strncmp(name, "segment-", 8) != 0 || strstr(name, ".tmp") != NULL)
        return false;
    char *end;
    unsigned long v = strtoul(name + 8, &end, 10);
    if (end == name + 8 || strcmp(end, ".dat") != 0)
        return false;
    *id = (unsigned)v;
    return true;
}

static void check_crash_dir(struct fixture *f, const char *dir)
{
    kv_options o = small_segments();
    kv_store *s = tu_open(dir, &o);
    assert_matches_model(f, s);
    kv_close(s);
    tu_rmtree(dir);
}

static void test_crash_after_each_compaction_step_loses_nothing(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < NKEYS; i++)
        model_put(f, i, 1);
    for (int i = 0; i < NKEYS; i += 2)
        model_put(f, i, 2);
    for (int i = 0; i < NKEYS; i += 5)
        model_delete(f, i);
    assert_kv_ok(kv_save_snapshot(f->s));
    assert_kv_ok(kv_sync(f->s));
    struct dir_copy before, after;
    snapshot_dir(f->dir, &before);
    assert_kv_ok(kv_compact(f->s));
    snapshot_dir(f->dir, &after);
    g_before = &before;
    char *crash = tu_path(f->root, "crash");

    /* Step 2: outputs exist only as .tmp files. */
    restore_dir(crash, &before, NULL);
    for (int i = 0; i < after.n; i++) {
        unsigned id;
        if (is_new(after.names[i]) && segment_id_of(after.names[i], &id)) {
            char name[300], *p;
            snprintf(name, sizeof(name), "%s.tmp", after.names[i]);
            p = tu_path(crash, name);
            tu_write_file(p, after.data[i], after.len[i]);
            free(p);
        }
    }
    check_crash_dir(f, crash);

    /* Step 3: outputs renamed in, one at a time, inputs all present, old
     * snapshot still in place. */
    unsigned max_new = 0;
    for (int i = 0; i < after.n; i++) {
        unsigned id;
        if (is_new(after.names[i]) && segment_id_of(after.names[i], &id) && id > max_new)
            max_new = id;
    }
    for (int upto = 0; upto < after.n; upto++) {
        unsigned id;
        if (!is_new(after.names[upto]) || !segment_id_of(after.names[upto], &id) || id == max_new)
            continue;
        restore_dir(crash, &before, NULL);
        for (int i = 0; i < after.n; i++) {
            unsigned other;
            if (is_new(after.names[i]) && segment_id_of(after.names[i], &other) && other <= id) {
                char *p = tu_path(crash, after.names[i]);
                tu_write_file(p, after.data[i], after.len[i]);
                free(p);
            }
        }
        check_crash_dir(f, crash);
    }

    /* Step 4: every new file in place (new snapshot included), inputs all
     * still present; then step 5: inputs removed oldest first, one by one. */
    unsigned in_ids[64] = {0};
    int nin = 0;
    for (int i = 0; i < before.n; i++) {
        unsigned id;
        if (segment_id_of(before.names[i], &id))
            in_ids[nin++] = id;
    }
    for (int a = 0; a < nin; a++)
        for (int b = a + 1; b < nin; b++)
            if (in_ids[b] < in_ids[a]) {
                unsigned t = in_ids[a];
                in_ids[a] = in_ids[b];
                in_ids[b] = t;
            }
    for (int removed = 0; removed <= nin; removed++) {
        restore_dir(crash, &before, NULL);
        for (int i = 0; i < after.n; i++) {
            char *p = tu_path(crash, after.names[i]);
            tu_write_file(p, after.data[i], after.len[i]);
            free(p);
        }
        for (int r = 0; r < removed; r++) {
            char name[64];
            snprintf(name, sizeof(name), "segment-%u.dat", in_ids[r]);
            char *p = tu_path(crash, name);
            remove(p);
            free(p);
        }
        check_crash_dir(f, crash);
    }
    free(crash);
    free_copy(&before);
    free_copy(&after);
}

static void test_background_trigger_fires_only_when_worthwhile(void **state)
{
    struct fixture *f = *state;
    kv_close(f->s);
    kv_options o = small_segments();
    o.compaction_interval_secs = 0; /* no thread: the test runs the tick */
    o.compaction_threshold = 0;
    o.compaction_dead_ratio = 0.5;
    f->s = tu_open(f->dir, &o);
    for (int i = 0; i < NKEYS; i++)
        model_put(f, i, 1);
    kv_stats st;
    assert_kv_ok(kv__compact_if_worthwhile(f->s));
    assert_kv_ok(kv_get_stats(f->s, &st));
    assert_int_equal(st.compactions, 0); /* nothing dead */
    for (int i = 0; i < NKEYS / 4; i++)
        model_put(f, i, 2);
    assert_kv_ok(kv__compact_if_worthwhile(f->s));
    assert_kv_ok(kv_get_stats(f->s, &st));
    assert_int_equal(st.compactions, 0); /* 20 % dead, under the ratio */
    for (int round = 3; round < 6; round++)
        for (int i = 0; i < NKEYS; i++)
            model_put(f, i, round);
    kv_stats before;
    assert_kv_ok(kv_get_stats(f->s, &before));
    assert_kv_ok(kv__compact_if_worthwhile(f->s));
    assert_kv_ok(kv_get_stats(f->s, &st));
    assert_int_equal(st.compactions, 1);
    /* It reads the live records (and short gaps between them), not the
     * dead ones; it reclaims what the disk no longer holds. */
    assert_true(st.compaction_bytes_read >= st.compaction_bytes_written);
    assert_true(st.compaction_bytes_read < before.disk_bytes / 2);
    assert_int_equal(st.compaction_bytes_written, before.live_bytes);
    assert_int_equal(st.compaction_bytes_reclaimed, before.disk_bytes - st.disk_bytes);
    assert_true(st.dead_bytes < st.disk_bytes / 10);
    assert_matches_model(f, f->s);
}

static void test_segment_count_trigger_needs_a_segment_of_dead_bytes(void **state)
{
    struct fixture *f = *state;
    kv_close(f->s);
    kv_options o = small_segments();
    o.compaction_interval_secs = 0;
    o.compaction_threshold = 3;
    o.compaction_dead_ratio = 0;
    f->s = tu_open(f->dir, &o);
    for (int i = 0; i < NKEYS; i++)
        model_put(f, i, 1);
    model_put(f, 0, 2); /* a few dead bytes, many segments */
    kv_stats st;
    assert_kv_ok(kv__compact_if_worthwhile(f->s));
    assert_kv_ok(kv_get_stats(f->s, &st));
    assert_true(st.segments >= 3);
    assert_int_equal(st.compactions, 0);
    for (int i = 0; i < NKEYS / 2; i++)
        model_put(f, i, 3);
    assert_kv_ok(kv__compact_if_worthwhile(f->s));
    assert_kv_ok(kv_get_stats(f->s, &st));
    assert_int_equal(st.compactions, 1);
    assert_matches_model(f, f->s);
}

/* ---- writes that land while compaction copies */

struct midway {
    struct kv_io io;
    struct fixture *f;
    int fired;
};

static struct midway g_midway;

static int midway_open(void *ctx, const char *path, int flags, mode_t mode)
{
    (void)ctx;
    size_t n = strlen(path);
    if (!g_midway.fired && n > 8 && strcmp(path + n - 8, ".dat.tmp") == 0) {
        /* Compaction has chosen its inputs and is about to write its first
         * output: overwrite one key, delete another, add a third. */
        g_midway.fired = 1;
        model_put(g_midway.f, 1, 9);
        model_delete(g_midway.f, 2);
        model_put(g_midway.f, NKEYS - 1, 9);
    }
    return kv__io_os.open(NULL, path, flags, mode);
}

static void test_writes_during_compaction_win_over_its_copies(void **state)
{
    struct fixture *f = *state;
    kv_close(f->s);
    g_midway = (struct midway){.io = kv__io_os, .f = f};
    g_midway.io.open = midway_open;
    kv_options o = small_segments();
    o.io = &g_midway.io;
    f->s = tu_open(f->dir, &o);
    for (int i = 0; i < NKEYS - 1; i++)
        model_put(f, i, 1);
    for (int i = 0; i < NKEYS - 1; i += 2)
        model_put(f, i, 2);
    assert_kv_ok(kv_compact(f->s));
    assert_int_equal(g_midway.fired, 1);
    assert_matches_model(f, f->s);
    reopen(f);
    assert_matches_model(f, f->s);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_compaction_of_overwrites_falls_to_about_live_size,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_keeps_deleted_keys_deleted_across_reopen,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_compaction_of_an_empty_store_is_harmless, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_compaction_of_only_tombstones_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_compaction_when_every_record_is_live_keeps_all, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_repeated_compaction_is_idempotent_on_contents, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_writes_after_compaction_win_over_compacted_copies,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_compaction_drops_a_key_whose_record_is_damaged_and_keeps_the_rest, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_each_compaction_step_loses_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_background_trigger_fires_only_when_worthwhile, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_segment_count_trigger_needs_a_segment_of_dead_bytes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes_during_compaction_win_over_its_copies, setup,
                                        teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
