/*
 * test_backup.c - kv_backup and kv_backup_dir, one thread at a time: what a
 * backup holds and what it leaves out, hard links and copies, the active
 * segment cut at its synced length, the destination rule, restore, a backup
 * of a directory another handle has open (torn tail, a compaction meanwhile),
 * and the cleanup after a failure. The backups under writer threads are in
 * test_backup_concurrent.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define NKEYS 400

static kv_options small_segments(void)
{
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 8u * 1024;
    o.compaction_interval_secs = 0; /* only the test's compactions */
    return o;
}

static void key_of(int i, char *buf, size_t len)
{
    snprintf(buf, len, "key-%04d", i);
}

/* The value of key i in version v: sizes vary, so records straddle
 * segment ends. */
static size_t value_of(int i, int v, char *buf, size_t len)
{
    int n = snprintf(buf, len, "value %d of key %d;", v, i);
    size_t size = (size_t)n * (size_t)(1 + (i * 7 + v) % 9);
    for (size_t at = (size_t)n; at < size && at < len; at++)
        buf[at] = buf[at % (size_t)n];
    return size < len ? size : len;
}

/* The model: version of each key, 0 = absent. */
struct model {
    int version[NKEYS];
};

static void put_version(kv_store *s, struct model *m, int i, int v)
{
    char key[32], val[512];
    key_of(i, key, sizeof(key));
    size_t n = value_of(i, v, val, sizeof(val));
    assert_kv_ok(kv_put(s, key, strlen(key), val, n));
    m->version[i] = v;
}

static void delete_key(kv_store *s, struct model *m, int i)
{
    char key[32];
    key_of(i, key, sizeof(key));
    assert_kv_ok(kv_delete(s, key, strlen(key)));
    m->version[i] = 0;
}

/* Writes every key, overwrites a third, deletes a tenth: many segments. */
static void fill(kv_store *s, struct model *m)
{
    for (int i = 0; i < NKEYS; i++)
        put_version(s, m, i, 1);
    for (int i = 0; i < NKEYS; i += 3)
        put_version(s, m, i, 2);
    for (int i = 5; i < NKEYS; i += 10)
        delete_key(s, m, i);
}

static void assert_matches_model(kv_store *s, const struct model *m)
{
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    uint64_t live = 0;
    for (int i = 0; i < NKEYS; i++) {
        char key[32], val[512];
        key_of(i, key, sizeof(key));
        if (m->version[i] == 0) {
            void *v = NULL;
            size_t n = 0;
            assert_kv_rc(kv_get(s, key, strlen(key), &v, &n), KV_ENOTFOUND);
            continue;
        }
        live++;
        size_t n = value_of(i, m->version[i], val, sizeof(val));
        tu_assert_value(s, key, val, n);
    }
    assert_int_equal(st.keys, live);
}

/* Opens the backup in dir and checks it against m. */
static void assert_backup_matches(const char *dir, const struct model *m)
{
    kv_options o = small_segments();
    kv_store *b = tu_open(dir, &o);
    assert_matches_model(b, m);
    assert_kv_ok(kv_close(b));
}

static bool file_exists(const char *dir, const char *name)
{
    char *p = tu_path(dir, name);
    struct stat st;
    bool yes = stat(p, &st) == 0;
    free(p);
    return yes;
}

static ino_t inode_of(const char *dir, const char *name)
{
    char *p = tu_path(dir, name);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    free(p);
    return st.st_ino;
}

/* The names in dir but . and .., counted. */
static size_t entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void segment_name(uint64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "segment-%llu.dat", (unsigned long long)id);
}

/* ---- kv_backup */

static void test_backup_of_an_open_store_holds_every_write_made_before_it(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = small_segments();
    kv_store *s = tu_open_tracked(f->dir, &o);
    struct model m = {0};
    fill(s, &m);
    assert_kv_ok(kv_save_snapshot(s));
    for (int i = 1; i < NKEYS; i += 4)
        put_version(s, &m, i, 3); /* after the snapshot: replayed from the log */
    char *dest = tu_path(f->root, "backup");
    kv_backup_info info;
    assert_kv_ok(kv_backup(s, dest, 0, &info));
    struct model at_backup = m;
    /* Writes after the backup are not in it. */
    for (int i = 0; i < 20; i++)
        put_version(s, &m, i, 9);
    delete_key(s, &m, 30);
    assert_false(file_exists(dest, "LOCK"));
    assert_backup_matches(dest, &at_backup);
    assert_matches_model(s, &m);

    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_true(st.segments > 3);
    assert_int_equal(info.attempts, 1);
    assert_int_equal(info.keys, 0);
    assert_true(info.files_linked >= 2); /* sealed segments and the snapshot */
    assert_true(info.files_copied >= 1); /* the active segment */
    assert_true(info.bytes_copied > 0);
    assert_kv_ok(tu_close_tracked(s));
    free(dest);
}

static void test_backup_links_sealed_segments_and_copies_the_active_one(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = small_segments();
    kv_store *s = tu_open_tracked(f->dir, &o);
    struct model m = {0};
    fill(s, &m);
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    char *linked = tu_path(f->root, "linked");
    char *copied = tu_path(f->root, "copied");
    kv_backup_info li, ci;
    assert_kv_ok(kv_backup(s, linked, 0, &li));
    assert_kv_ok(kv_backup(s, copied, KV_BACKUP_COPY, &ci));
    char name[64];
    for (uint64_t id = st.oldest_segment_id; id <= st.active_segment_id; id++) {
        segment_name(id, name, sizeof(name));
        if (!file_exists(f->dir, name))
            continue;
        bool sealed = id != st.active_segment_id;
        assert_true((inode_of(f->dir, name) == inode_of(linked, name)) == sealed);
        assert_true(inode_of(f->dir, name) != inode_of(copied, name));
    }
    assert_int_equal(li.files_linked + li.files_copied, ci.files_copied);
    assert_int_equal(ci.files_linked, 0);
    assert_false(file_exists(linked, "LOCK"));
    assert_backup_matches(linked, &m);
    assert_backup_matches(copied, &m);
    assert_kv_ok(tu_close_tracked(s));
    free(linked);
    free(copied);
}

static void test_backup_goes_only_into_a_new_or_empty_directory(void **state)
{
    struct tu_fixture *f = *state;
    kv_store *s = tu_open_tracked(f->dir, NULL);
    assert_kv_ok(kv_put(s, "k", 1, "v", 1));

    char *busy = tu_path(f->root, "busy");
    assert_int_equal(mkdir(busy, 0755), 0);
    char *keep = tu_path(busy, "keep-me");
    tu_write_file(keep, "precious", 8);
    assert_kv_rc(kv_backup(s, busy, 0, NULL), KV_EINVAL);
    assert_int_equal(entries(busy), 1);
    assert_int_equal(tu_file_size(keep), 8);
    assert_kv_rc(kv_backup(s, keep, 0, NULL), KV_EINVAL);   /* a file */
    assert_kv_rc(kv_backup(s, f->dir, 0, NULL), KV_EINVAL); /* the store itself */
    assert_kv_rc(kv_backup(s, "", 0, NULL), KV_EINVAL);
    assert_kv_rc(kv_backup(s, NULL, 0, NULL), KV_EINVAL);
    assert_kv_rc(kv_backup(NULL, busy, 0, NULL), KV_EINVAL);
    assert_kv_rc(kv_backup(s, busy, 0x80, NULL), KV_EINVAL);

    char *empty = tu_path(f->root, "empty");
    assert_int_equal(mkdir(empty, 0755), 0);
    assert_kv_ok(kv_backup(s, empty, 0, NULL));
    char *fresh = tu_path(f->root, "fresh");
    assert_kv_ok(kv_backup(s, fresh, 0, NULL));
    char *deep = tu_path(f->root, "no/such/parent");
    assert_kv_rc(kv_backup(s, deep, 0, NULL), KV_EIO);
    assert_kv_ok(tu_close_tracked(s));
    kv_store *b = tu_open(fresh, NULL);
    tu_assert_str(b, "k", "v");
    assert_kv_ok(kv_close(b));
    free(busy);
    free(keep);
    free(empty);
    free(fresh);
    free(deep);
}

static void test_backup_takes_every_file_but_the_lock_and_temporary_ones(void **state)
{
    struct tu_fixture *f = *state;
    kv_store *s = tu_open_tracked(f->dir, NULL);
    assert_kv_ok(kv_put(s, "k", 1, "v", 1));
    /* A dictionary as the compression code keeps them, a temporary file
     * left by a crash, and a directory someone made in there. */
    char *dict = tu_path(f->dir, "dict-7.zdict");
    tu_write_file(dict, "dictionary bytes", 16);
    char *tmp = tu_path(f->dir, "dict-8.zdict.tmp");
    tu_write_file(tmp, "half", 4);
    char *sub = tu_path(f->dir, "subdir");
    assert_int_equal(mkdir(sub, 0755), 0);
    char *dest = tu_path(f->root, "backup");
    assert_kv_ok(kv_backup(s, dest, 0, NULL));
    assert_true(file_exists(dest, "dict-7.zdict"));
    assert_int_equal(inode_of(dest, "dict-7.zdict"), inode_of(f->dir, "dict-7.zdict"));
    assert_false(file_exists(dest, "dict-8.zdict.tmp"));
    assert_false(file_exists(dest, "LOCK"));
    assert_false(file_exists(dest, "subdir"));

    char *copied = tu_path(f->root, "copied");
    assert_kv_ok(kv_backup(s, copied, KV_BACKUP_COPY, NULL));
    char *dict_copy = tu_path(copied, "dict-7.zdict");
    size_t len = 0;
    uint8_t *bytes = tu_read_file(dict_copy, &len);
    assert_int_equal(len, 16);
    assert_memory_equal(bytes, "dictionary bytes", 16);
    free(bytes);
    assert_kv_ok(tu_close_tracked(s));
    free(dict);
    free(tmp);
    free(sub);
    free(dest);
    free(copied);
    free(dict_copy);
}

/* The active segment's length as the store counts it: the bytes of its
 * records, without the zeros preallocation keeps written ahead of them. */
static size_t active_logical_size(kv_store *s)
{
    kv_segment_stats segs[64];
    size_t n = 0;
    assert_kv_ok(kv_get_segment_stats(s, segs, 64, &n));
    assert_true(n >= 1 && n <= 64);
    assert_true(segs[n - 1].active);
    return (size_t)segs[n - 1].disk_bytes;
}

static void test_backup_copies_the_active_segment_up_to_its_synced_length(void **state)
{
    struct tu_fixture *f = *state;
    kv_store *s = tu_open_tracked(f->dir, NULL);
    assert_kv_ok(kv_put(s, "a", 1, "1", 1));
    assert_kv_ok(kv_put(s, "b", 1, "2", 1));
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    char name[64];
    segment_name(st.active_segment_id, name, sizeof(name));
    char *active = tu_path(f->dir, name);
    size_t logical = active_logical_size(s);
    /* Zeros ahead of the log, as preallocation keeps them (its filler runs
     * in the background: make sure they are there). */
    if (tu_file_size(active) < logical + 65536)
        tu_truncate(active, logical + 65536);
    char *dest = tu_path(f->root, "backup");
    assert_kv_ok(kv_backup(s, dest, 0, NULL));
    char *copy = tu_path(dest, name);
    assert_int_equal(tu_file_size(copy), logical);
    assert_kv_ok(tu_close_tracked(s));
    kv_store *b = tu_open(dest, NULL);
    tu_assert_str(b, "a", "1");
    tu_assert_str(b, "b", "2");
    assert_kv_ok(kv_get_stats(b, &st));
    assert_int_equal(st.torn_bytes_truncated, 0);
    assert_kv_ok(kv_close(b));
    free(active);
    free(dest);
    free(copy);
}

static void test_backup_in_sync_mode_interval_holds_acknowledged_unsynced_writes(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = small_segments();
    o.sync_mode = KV_SYNC_INTERVAL;
    o.sync_interval_ms = 3600u * 1000u; /* no background sync during the test */
    kv_store *s = tu_open_tracked(f->dir, &o);
    struct model m = {0};
    fill(s, &m);
    kv_stats before, after;
    assert_kv_ok(kv_get_stats(s, &before));
    char *dest = tu_path(f->root, "backup");
    assert_kv_ok(kv_backup(s, dest, 0, NULL));
    assert_kv_ok(kv_get_stats(s, &after));
    assert_true(after.fsyncs > before.fsyncs); /* the active segment was synced first */
    assert_backup_matches(dest, &m);
    assert_kv_ok(tu_close_tracked(s));
    free(dest);
}

static void test_restore_copies_a_backup_that_then_serves_on_its_own(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = small_segments();
    kv_store *s = tu_open_tracked(f->dir, &o);
    struct model m = {0};
    fill(s, &m);
    char *backup = tu_path(f->root, "backup");
    assert_kv_ok(kv_backup(s, backup, 0, NULL));
    assert_kv_ok(tu_close_tracked(s));

    char *restored = tu_path(f->root, "restored");
    kv_backup_info info;
    assert_kv_ok(kv_backup_dir(backup, restored, NULL, KV_BACKUP_COPY, &info));
    assert_int_equal(info.files_linked, 0);
    assert_int_equal(info.attempts, 1);
    uint64_t live = 0;
    for (int i = 0; i < NKEYS; i++)
        live += m.version[i] != 0;
    assert_int_equal(info.keys, live);
    s = tu_open_tracked(restored, &o);
    assert_matches_model(s, &m);
    struct model later = m;
    put_version(s, &later, 1, 7);
    delete_key(s, &later, 2);
    assert_kv_ok(kv_compact(s));
    assert_matches_model(s, &later);
    assert_kv_ok(tu_close_tracked(s));
    /* The backup did not change with the restored store. */
    assert_backup_matches(backup, &m);
    free(backup);
    free(restored);
}

/* ---- kv_backup_dir beside an open store */

static void test_backup_dir_beside_an_open_store_cuts_a_write_in_progress(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = small_segments();
    kv_store *s = tu_open_tracked(f->dir, &o);
    struct model m = {0};
    fill(s, &m);
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    char name[64];
    segment_name(st.active_segment_id, name, sizeof(name));
    char *active = tu_path(f->dir, name);
    size_t logical = active_logical_size(s);
    /* The first half of a record being written at that moment, over the
     * zeros preallocation may keep ahead of the log. */
    uint8_t *rec = NULL;
    size_t len = 0;
    tu_append_record(&rec, &len, KV_OP_SET, "torn", 4, "never acknowledged", 18);
    int fd = open(active, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, rec, len / 2, (off_t)logical), (ssize_t)(len / 2));
    close(fd);

    char *dest = tu_path(f->root, "backup");
    kv_backup_info info;
    assert_kv_ok(kv_backup_dir(f->dir, dest, NULL, 0, &info)); /* s holds the LOCK */
    assert_int_equal(info.attempts, 1);
    assert_true(info.files_linked >= 1);
    char *copy = tu_path(dest, name);
    assert_int_equal(tu_file_size(copy), logical);
    assert_true(file_exists(dest, "index.snapshot")); /* written by the check */
    assert_true(file_exists(dest, "LOCK"));
    assert_backup_matches(dest, &m);
    /* The source is as it was: the backup cut its copy, not the source. */
    size_t now_len = 0;
    uint8_t *now = tu_read_file(active, &now_len);
    assert_true(now_len >= logical + len / 2);
    assert_memory_equal(now + logical, rec, len / 2);
    free(now);
    free(rec);
    assert_kv_ok(tu_close_tracked(s));
    free(active);
    free(dest);
    free(copy);
}

static void test_backup_dir_refuses_what_is_not_a_data_directory(void **state)
{
    struct tu_fixture *f = *state;
    char *empty = tu_path(f->root, "empty");
    assert_int_equal(mkdir(empty, 0755), 0);
    char *dest = tu_path(f->root, "backup");
    assert_kv_rc(kv_backup_dir(empty, dest, NULL, 0, NULL), KV_EINVAL);
    assert_int_equal(entries(dest), 0);
    char *missing = tu_path(f->root, "missing");
    assert_kv_rc(kv_backup_dir(missing, dest, NULL, 0, NULL), KV_EIO);
    assert_kv_rc(kv_backup_dir(NULL, dest, NULL, 0, NULL), KV_EINVAL);
    assert_kv_rc(kv_backup_dir(empty, NULL, NULL, 0, NULL), KV_EINVAL);
    free(empty);
    free(dest);
    free(missing);
}

/* A file-system table that changes the source under a backup, from inside
 * the backup's own calls: compacts the open store at the link of a segment,
 * or creates a file in it. */
struct meddler {
    struct kv_io io;
    kv_store *s;
    const char *dir;
    int compact_every_pass; /* compact at the first segment link of each pass */
    int compactions;
    bool add_file;                      /* create a file at the first segment link */
    bool compact_before_second_listing; /* once every file of pass 1 is taken */
    int opendirs;                       /* listings of the source: two per whole pass */
    int meddled_at;                     /* the value of opendirs when it last meddled */
};

static int meddle_link(void *ctx, const char *from, const char *to)
{
    struct meddler *md = ctx;
    /* A pass links its segments after its first listing of the source:
     * meddle once per listing. */
    if (strstr(from, "/segment-") && md->opendirs != md->meddled_at) {
        md->meddled_at = md->opendirs;
        if (md->compact_every_pass > 0 && md->compactions < md->compact_every_pass) {
            char key[32];
            snprintf(key, sizeof(key), "meddle-%d", md->compactions);
            assert_kv_ok(kv_put(md->s, key, strlen(key), "x", 1));
            assert_kv_ok(kv_compact(md->s));
            md->compactions++;
        }
        if (md->add_file) {
            char *p = tu_path(md->dir, "operator-notes.txt");
            tu_write_file(p, "new", 3);
            free(p);
            md->add_file = false;
        }
    }
    return kv_io_default()->link(NULL, from, to);
}

static void *meddle_opendir(void *ctx, const char *path)
{
    struct meddler *md = ctx;
    if (strcmp(path, md->dir) == 0 && ++md->opendirs == 2 && md->compact_before_second_listing) {
        assert_kv_ok(kv_put(md->s, "meddle-0", 8, "x", 1));
        assert_kv_ok(kv_compact(md->s));
        md->compactions++;
    }
    return kv_io_default()->opendir(NULL, path);
}

static const char *meddle_readdir(void *ctx, void *d)
{
    (void)ctx;
    return kv_io_default()->readdir(NULL, d);
}

static int meddle_closedir(void *ctx, void *d)
{
    (void)ctx;
    return kv_io_default()->closedir(NULL, d);
}

static kv_options meddling(struct meddler *md, kv_store *s, const char *dir)
{
    memset(md, 0, sizeof(*md));
    md->s = s;
    md->dir = dir;
    md->io = (struct kv_io){.ctx = md,
                            .link = meddle_link,
                            .opendir = meddle_opendir,
                            .readdir = meddle_readdir,
                            .closedir = meddle_closedir};
    kv_options o = small_segments();
    o.io = &md->io;
    return o;
}

static void test_backup_dir_starts_over_when_a_compaction_runs_during_a_pass(void **state)
{
    struct tu_fixture *f = *state;
    kv_options so = small_segments();
    kv_store *s = tu_open_tracked(f->dir, &so);
    struct model m = {0};
    fill(s, &m);
    struct meddler md;
    kv_options o = meddling(&md, s, f->dir);
    md.compact_every_pass = 1;
    char *dest = tu_path(f->root, "backup");
    kv_backup_info info;
    assert_kv_ok(kv_backup_dir(f->dir, dest, &o, 0, &info));
    assert_int_equal(md.compactions, 1);
    assert_int_equal(info.attempts, 2);
    kv_store *b = tu_open(dest, &so);
    tu_assert_str(b, "meddle-0", "x");
    assert_kv_ok(kv_delete(b, "meddle-0", 8));
    assert_matches_model(b, &m);
    assert_kv_ok(kv_close(b));
    assert_kv_ok(tu_close_tracked(s));
    free(dest);
}

static void test_backup_dir_keeps_what_it_took_when_a_compaction_removes_it_later(void **state)
{
    struct tu_fixture *f = *state;
    kv_options so = small_segments();
    kv_store *s = tu_open_tracked(f->dir, &so);
    struct model m = {0};
    fill(s, &m);
    struct meddler md;
    kv_options o = meddling(&md, s, f->dir);
    md.compact_before_second_listing = true;
    char *dest = tu_path(f->root, "backup");
    kv_backup_info info;
    assert_kv_ok(kv_backup_dir(f->dir, dest, &o, 0, &info));
    assert_int_equal(md.compactions, 1);
    assert_int_equal(info.attempts, 1); /* the links kept the removed segments */
    assert_true(info.files_linked > 1);
    kv_store *b = tu_open(dest, &so);
    void *v = NULL;
    size_t n = 0;
    assert_kv_rc(kv_get(b, "meddle-0", 8, &v, &n), KV_ENOTFOUND); /* written after */
    assert_matches_model(b, &m);
    assert_kv_ok(kv_close(b));
    assert_kv_ok(tu_close_tracked(s));
    free(dest);
}

static void test_backup_dir_starts_over_when_a_file_appears(void **state)
{
    struct tu_fixture *f = *state;
    kv_options so = small_segments();
    kv_store *s = tu_open_tracked(f->dir, &so);
    struct model m = {0};
    fill(s, &m);
    struct meddler md;
    kv_options o = meddling(&md, s, f->dir);
    md.add_file = true;
    char *dest = tu_path(f->root, "backup");
    kv_backup_info info;
    assert_kv_ok(kv_backup_dir(f->dir, dest, &o, 0, &info));
    assert_int_equal(info.attempts, 2);
    assert_true(file_exists(dest, "operator-notes.txt"));
    assert_backup_matches(dest, &m);
    assert_kv_ok(tu_close_tracked(s));
    free(dest);
}

static void test_backup_dir_gives_up_on_a_source_that_changes_during_every_pass(void **state)
{
    struct tu_fixture *f = *state;
    kv_options so = small_segments();
    kv_store *s = tu_open_tracked(f->dir, &so);
    struct model m = {0};
    fill(s, &m);
    struct meddler md;
    kv_options o = meddling(&md, s, f->dir);
    md.compact_every_pass = 1000;
    char *dest = tu_path(f->root, "backup");
    assert_kv_rc(kv_backup_dir(f->dir, dest, &o, 0, NULL), KV_EBUSY);
    assert_int_equal(entries(dest), 0);
    assert_int_equal(md.compactions, 8);
    assert_kv_ok(tu_close_tracked(s));
    free(dest);
}

static void test_a_failed_backup_leaves_the_destination_empty(void **state)
{
    struct tu_fixture *f = *state;
    kv_options so = small_segments();
    kv_store *s = tu_open_tracked(f->dir, &so);
    struct model m = {0};
    fill(s, &m);
    assert_kv_ok(tu_close_tracked(s));
    char *dest = tu_path(f->root, "backup");
    for (int nth = 1; nth <= 3; nth++) {
        struct tu_faults faults;
        tu_faults_init(&faults);
        faults.fail_write_at = nth;
        faults.write_errno = ENOSPC;
        kv_options o = small_segments();
        o.io = &faults.io;
        assert_kv_rc(kv_backup_dir(f->dir, dest, &o, KV_BACKUP_COPY, NULL), KV_ENOSPC);
        assert_int_equal(entries(dest), 0);
    }
    assert_kv_ok(kv_backup_dir(f->dir, dest, NULL, KV_BACKUP_COPY, NULL));
    assert_backup_matches(dest, &m);
    free(dest);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_backup_of_an_open_store_holds_every_write_made_before_it, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_backup_links_sealed_segments_and_copies_the_active_one,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_backup_goes_only_into_a_new_or_empty_directory,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_backup_takes_every_file_but_the_lock_and_temporary_ones, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_backup_copies_the_active_segment_up_to_its_synced_length, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_backup_in_sync_mode_interval_holds_acknowledged_unsynced_writes, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_restore_copies_a_backup_that_then_serves_on_its_own,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_backup_dir_beside_an_open_store_cuts_a_write_in_progress, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_backup_dir_refuses_what_is_not_a_data_directory,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_backup_dir_starts_over_when_a_compaction_runs_during_a_pass, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_backup_dir_keeps_what_it_took_when_a_compaction_removes_it_later, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_backup_dir_starts_over_when_a_file_appears, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_backup_dir_gives_up_on_a_source_that_changes_during_every_pass, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_backup_leaves_the_destination_empty, tu_setup,
                                        tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
