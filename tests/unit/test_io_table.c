/*
 * test_io_table.c - the file-system table of kvstore.h (struct kv_io), used
 * as a program would: through the public API only.
 *
 *  - Every file-system call of a store's life goes through the table: a
 *    table that moves the store to a directory that does not exist, by
 *    rewriting paths, keeps it working, and each kind of call is seen.
 *  - Failures of the calls made before anything changes (the directory's
 *    creation, the LOCK file, compaction's free-space check) come back as
 *    the right code and leave nothing behind.
 *  - A log callback that changes errno does not change the code a failure
 *    returns: the engine reads errno before it logs.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "testutil.h"

static kv_options options_with(const struct kv_io *io)
{
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 4096;
    o.compaction_interval_secs = 0; /* only the test's calls */
    o.io = io;
    return o;
}

static void put_str(kv_store *s, const char *key, const char *val)
{
    int rc = kv_put(s, key, strlen(key), val, strlen(val));
    if (rc != 0)
        fail_msg("kv_put(%s) = %d (%s)", key, rc, kv_strerror(rc));
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- a table that moves the store: paths under `from` go to `to` */

enum call {
    C_OPEN,
    C_CLOSE,
    C_PREADV,
    C_PWRITEV,
    C_FDATASYNC,
    C_FSYNC,
    C_RENAME,
    C_UNLINK,
    C_MAP,
    C_UNMAP,
    C_MKDIR,
    C_FLOCK,
    C_FSTAT,
    C_STATVFS,
    C_OPENDIR,
    C_READDIR,
    C_CLOSEDIR,
    C_COUNT
};

static const char *const call_names[C_COUNT] = {
    "open",  "close", "preadv", "pwritev", "fdatasync", "fsync",   "rename",  "unlink",  "map",
    "unmap", "mkdir", "flock",  "fstat",   "statvfs",   "opendir", "readdir", "closedir"};

struct mover {
    struct kv_io io;
    char from[256]; /* a directory that does not exist */
    char to[256];   /* where its files really are */
    atomic_int calls[C_COUNT];
    atomic_int unmoved; /* paths outside `from` */
};

static const struct kv_io *os(void)
{
    return kv_io_default();
}

/* The real path of a path under m->from, into buf. */
static const char *moved(struct mover *m, const char *path, char *buf, size_t len)
{
    size_t n = strlen(m->from);
    if (strncmp(path, m->from, n) != 0 || (path[n] != '/' && path[n] != 0)) {
        m->unmoved++;
        return path;
    }
    snprintf(buf, len, "%s%s", m->to, path + n);
    return buf;
}

static struct mover *mover_of(void *ctx, enum call c)
{
    struct mover *m = ctx;
    m->calls[c]++;
    return m;
}

static int mv_open(void *ctx, const char *path, int flags, mode_t mode)
{
    char buf[4096];
    struct mover *m = mover_of(ctx, C_OPEN);
    return os()->open(NULL, moved(m, path, buf, sizeof(buf)), flags, mode);
}

static int mv_close(void *ctx, int fd)
{
    mover_of(ctx, C_CLOSE);
    return os()->close(NULL, fd);
}

static ssize_t mv_preadv(void *ctx, int fd, const struct iovec *iov, int n, off_t off)
{
    mover_of(ctx, C_PREADV);
    return os()->preadv(NULL, fd, iov, n, off);
}

static ssize_t mv_pwritev(void *ctx, int fd, const struct iovec *iov, int n, off_t off)
{
    mover_of(ctx, C_PWRITEV);
    return os()->pwritev(NULL, fd, iov, n, off);
}

static int mv_fdatasync(void *ctx, int fd)
{
    mover_of(ctx, C_FDATASYNC);
    return os()->fdatasync(NULL, fd);
}

static int mv_fsync(void *ctx, int fd)
{
    mover_of(ctx, C_FSYNC);
    return os()->fsync(NULL, fd);
}

static int mv_rename(void *ctx, const char *from, const char *to)
{
    char a[4096], b[4096];
    struct mover *m = mover_of(ctx, C_RENAME);
    return os()->rename(NULL, moved(m, from, a, sizeof(a)), moved(m, to, b, sizeof(b)));
}

static int mv_unlink(void *ctx, const char *path)
{
    char buf[4096];
    struct mover *m = mover_of(ctx, C_UNLINK);
    return os()->unlink(NULL, moved(m, path, buf, sizeof(buf)));
}

static void *mv_map(void *ctx, int fd, size_t len)
{
    mover_of(ctx, C_MAP);
    return os()->map(NULL, fd, len);
}

static int mv_unmap(void *ctx, void *addr, size_t len)
{
    mover_of(ctx, C_UNMAP);
    return os()->unmap(NULL, addr, len);
}

static int mv_mkdir(void *ctx, const char *path, mode_t mode)
{
    char buf[4096];
    struct mover *m = mover_of(ctx, C_MKDIR);
    return os()->mkdir(NULL, moved(m, path, buf, sizeof(buf)), mode);
}

static int mv_flock(void *ctx, int fd, int op)
{
    mover_of(ctx, C_FLOCK);
    return os()->flock(NULL, fd, op);
}

static int mv_fstat(void *ctx, int fd, struct stat *st)
{
    mover_of(ctx, C_FSTAT);
    return os()->fstat(NULL, fd, st);
}

static int mv_statvfs(void *ctx, const char *path, struct statvfs *st)
{
    char buf[4096];
    struct mover *m = mover_of(ctx, C_STATVFS);
    return os()->statvfs(NULL, moved(m, path, buf, sizeof(buf)), st);
}

static void *mv_opendir(void *ctx, const char *path)
{
    char buf[4096];
    struct mover *m = mover_of(ctx, C_OPENDIR);
    return os()->opendir(NULL, moved(m, path, buf, sizeof(buf)));
}

static const char *mv_readdir(void *ctx, void *dir)
{
    mover_of(ctx, C_READDIR);
    return os()->readdir(NULL, dir);
}

static int mv_closedir(void *ctx, void *dir)
{
    mover_of(ctx, C_CLOSEDIR);
    return os()->closedir(NULL, dir);
}

static void mover_init(struct mover *m, const char *from, const char *to)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->from, sizeof(m->from), "%s", from);
    snprintf(m->to, sizeof(m->to), "%s", to);
    m->io = (struct kv_io){.ctx = m,
                           .open = mv_open,
                           .close = mv_close,
                           .preadv = mv_preadv,
                           .pwritev = mv_pwritev,
                           .fdatasync = mv_fdatasync,
                           .fsync = mv_fsync,
                           .rename = mv_rename,
                           .unlink = mv_unlink,
                           .map = mv_map,
                           .unmap = mv_unmap,
                           .mkdir = mv_mkdir,
                           .flock = mv_flock,
                           .fstat = mv_fstat,
                           .statvfs = mv_statvfs,
                           .opendir = mv_opendir,
                           .readdir = mv_readdir,
                           .closedir = mv_closedir};
}

static void test_every_file_system_call_of_a_store_goes_through_the_table(void **state)
{
    struct tu_fixture *fx = *state;
    /* The store lives at <root>/virtual/db, a path that does not exist: a
     * call that went around the table would not find it. */
    char *virt = tu_path(fx->root, "virtual");
    char *vdir = tu_path(virt, "db");
    static struct mover m; /* outlives a failed assertion (teardown) */
    mover_init(&m, virt, fx->root);
    kv_options o = options_with(&m.io);

    kv_store *s = tu_open_tracked(vdir, &o);
    char key[32], val[600];
    memset(val, 'v', sizeof(val) - 1);
    val[sizeof(val) - 1] = 0;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 20; i++) {
            snprintf(key, sizeof(key), "key-%02d", i);
            put_str(s, key, val);
        }
    assert_int_equal(kv_delete(s, "key-00", 6), 0);
    assert_int_equal(kv_compact(s), 0);
    tu_assert_str(s, "key-01", val);
    assert_int_equal(kv_save_snapshot(s), 0);
    assert_int_equal(tu_close_tracked(s), 0);
    s = tu_open_tracked(vdir, &o);
    tu_assert_str(s, "key-19", val);
    assert_int_equal(kv_exists(s, "key-00", 6), KV_ENOTFOUND);
    assert_int_equal(tu_close_tracked(s), 0);

    assert_int_equal(m.unmoved, 0);
    assert_false(exists(virt));
    for (int c = 0; c < C_COUNT; c++)
        if (m.calls[c] == 0)
            fail_msg("no call of %s went through the table", call_names[c]);
    /* The files are where the table put them. */
    char *real = tu_path(fx->root, "db");
    kv_snapshot_status st;
    assert_int_equal(kv_check_snapshot(real, &st, NULL, NULL, 0), 0);
    assert_int_equal(st, KV_SNAPSHOT_VALID);
    free(real);
    free(vdir);
    free(virt);
}

/* ---- failures before anything changes */

/* Each errno field: the call fails with it (0: the call goes through). */
struct failing {
    struct kv_io io;
    int mkdir_errno;
    int flock_errno;
    const char *open_name; /* opens of the file of this name fail... */
    int open_errno;        /* ...with this */
    int opendir_errno;
    int ftruncate_errno;
    bool full_disk; /* statvfs reports no space available */
    atomic_int statvfs_calls;
};

static bool is_named(const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    return strcmp(slash ? slash + 1 : path, name) == 0;
}

static int fail_open(void *ctx, const char *path, int flags, mode_t mode)
{
    struct failing *f = ctx;
    if (f->open_errno && is_named(path, f->open_name)) {
        errno = f->open_errno;
        return -1;
    }
    return kv_io_default()->open(NULL, path, flags, mode);
}

static void *fail_opendir(void *ctx, const char *path)
{
    struct failing *f = ctx;
    if (f->opendir_errno) {
        errno = f->opendir_errno;
        return NULL;
    }
    return kv_io_default()->opendir(NULL, path);
}

static int fail_ftruncate(void *ctx, int fd, off_t len)
{
    struct failing *f = ctx;
    if (f->ftruncate_errno) {
        errno = f->ftruncate_errno;
        return -1;
    }
    return kv_io_default()->ftruncate(NULL, fd, len);
}

static int fail_mkdir(void *ctx, const char *path, mode_t mode)
{
    struct failing *f = ctx;
    if (f->mkdir_errno) {
        errno = f->mkdir_errno;
        return -1;
    }
    return kv_io_default()->mkdir(NULL, path, mode);
}

static int fail_flock(void *ctx, int fd, int op)
{
    struct failing *f = ctx;
    if (f->flock_errno) {
        errno = f->flock_errno;
        return -1;
    }
    return kv_io_default()->flock(NULL, fd, op);
}

static int fail_statvfs(void *ctx, const char *path, struct statvfs *st)
{
    struct failing *f = ctx;
    f->statvfs_calls++;
    int r = kv_io_default()->statvfs(NULL, path, st);
    if (r == 0 && f->full_disk)
        st->f_bavail = 0;
    return r;
}

/* A table that overrides only what it fails: the rest is the OS's. */
static void failing_init(struct failing *f)
{
    memset(f, 0, sizeof(*f));
    f->io = (struct kv_io){.ctx = f,
                           .open = fail_open,
                           .ftruncate = fail_ftruncate,
                           .mkdir = fail_mkdir,
                           .flock = fail_flock,
                           .statvfs = fail_statvfs,
                           /* the three go together */
                           .opendir = fail_opendir,
                           .readdir = kv_io_default()->readdir,
                           .closedir = kv_io_default()->closedir};
}

static void test_open_fails_with_the_code_of_a_failed_mkdir_and_creates_nothing(void **state)
{
    struct tu_fixture *fx = *state;
    static struct failing f;
    static const struct {
        int err, rc;
    } cases[] = {{EACCES, KV_EIO}, {ENOSPC, KV_ENOSPC}, {EDQUOT, KV_ENOSPC}, {ENOMEM, KV_ENOMEM}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        failing_init(&f);
        f.mkdir_errno = cases[i].err;
        kv_options o = options_with(&f.io);
        kv_store *s = NULL;
        int rc = kv_open(fx->dir, &o, &s);
        if (rc != cases[i].rc)
            fail_msg("mkdir failing with %s: kv_open = %d (%s), wanted %d", strerror(cases[i].err),
                     rc, kv_strerror(rc), cases[i].rc);
        assert_null(s);
        assert_false(exists(fx->dir));
    }
    /* A directory that exists already is no failure of mkdir. */
    assert_int_equal(mkdir(fx->dir, 0755), 0);
    failing_init(&f);
    f.mkdir_errno = EEXIST;
    kv_options o = options_with(&f.io);
    kv_store *s = tu_open_tracked(fx->dir, &o);
    put_str(s, "a", "alpha");
    assert_int_equal(tu_close_tracked(s), 0);
}

static void test_open_reports_a_lock_it_cannot_take_and_leaves_the_directory_free(void **state)
{
    struct tu_fixture *fx = *state;
    static struct failing f;
    /* Data first, so that a failed open has something to leave alone. */
    kv_store *s = tu_open_tracked(fx->dir, NULL);
    put_str(s, "a", "alpha");
    assert_int_equal(tu_close_tracked(s), 0);
    char *seg = tu_path(fx->dir, "segment-1.dat");
    size_t seg_size = tu_file_size(seg);

    static const struct {
        int flock_errno, open_errno, rc;
    } cases[] = {
        {EWOULDBLOCK, 0, KV_ELOCKED}, /* held by someone else */
        {ENOLCK, 0, KV_EIO},          /* the system cannot lock */
        {0, ENOSPC, KV_ENOSPC},       /* the LOCK file cannot be created */
        {0, EACCES, KV_EIO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        failing_init(&f);
        f.flock_errno = cases[i].flock_errno;
        f.open_name = "LOCK";
        f.open_errno = cases[i].open_errno;
        kv_options o = options_with(&f.io);
        s = NULL;
        int rc = kv_open(fx->dir, &o, &s);
        if (rc != cases[i].rc)
            fail_msg("case %zu: kv_open = %d (%s), wanted %d", i, rc, kv_strerror(rc), cases[i].rc);
        assert_null(s);
        assert_int_equal(tu_file_size(seg), seg_size);
        /* The failed open holds nothing: a plain open takes the lock. */
        s = tu_open_tracked(fx->dir, NULL);
        tu_assert_str(s, "a", "alpha");
        assert_int_equal(tu_close_tracked(s), 0);
    }
    free(seg);
}

/* The names and sizes of the files of dir, sorted, one "name size" a line. */
static void dir_listing(const char *dir, char *buf, size_t len)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    assert_true(n >= 0);
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char *path = tu_path(dir, names[i]->d_name);
            int w =
                snprintf(buf + used, len - used, "%s %zu\n", names[i]->d_name, tu_file_size(path));
            assert_true(w > 0 && (size_t)w < len - used);
            used += (size_t)w;
            free(path);
        }
        free(names[i]);
    }
    free(names);
}

static void test_compaction_refused_for_space_changes_nothing(void **state)
{
    struct tu_fixture *fx = *state;
    static struct failing f;
    failing_init(&f);
    f.full_disk = true;
    kv_options o = options_with(&f.io);
    kv_store *s = tu_open_tracked(fx->dir, &o);
    char key[32], val[300];
    memset(val, 'x', sizeof(val) - 1);
    val[sizeof(val) - 1] = 0;
    for (int round = 0; round < 4; round++)
        for (int i = 0; i < 30; i++) {
            snprintf(key, sizeof(key), "k%02d", i);
            val[0] = (char)('a' + round);
            put_str(s, key, val);
        }
    kv_stats before, after;
    assert_int_equal(kv_get_stats(s, &before), 0);
    assert_true(before.segments > 1);
    assert_true(before.dead_bytes > 0);
    char files_before[8192], files_after[8192];
    dir_listing(fx->dir, files_before, sizeof(files_before));

    assert_int_equal(kv_compact(s), KV_ENOSPC);
    assert_true(f.statvfs_calls > 0);

    dir_listing(fx->dir, files_after, sizeof(files_after));
    assert_string_equal(files_after, files_before); /* not even a new active segment */
    assert_int_equal(kv_get_stats(s, &after), 0);
    assert_int_equal(after.segments, before.segments);
    assert_int_equal(after.active_segment_id, before.active_segment_id);
    assert_int_equal(after.disk_bytes, before.disk_bytes);
    assert_int_equal(after.live_bytes, before.live_bytes);
    assert_int_equal(after.compactions, 0);
    assert_false(after.read_only);
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        tu_assert_str(s, key, val);
    }

    /* Once there is room, the same compaction runs. */
    f.full_disk = false;
    assert_int_equal(kv_compact(s), 0);
    assert_int_equal(kv_get_stats(s, &after), 0);
    assert_int_equal(after.compactions, 1);
    assert_true(after.disk_bytes < before.disk_bytes);
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        tu_assert_str(s, key, val);
    }
    assert_int_equal(tu_close_tracked(s), 0);
}

/* ---- errno and the log callback */

struct clobber {
    int err;          /* what the callback leaves in errno */
    atomic_int calls; /* lines it received */
};

static void clobbering_log(kv_log_level level, const char *msg, void *ctx)
{
    (void)level;
    (void)msg;
    struct clobber *c = ctx;
    c->calls++;
    errno = c->err;
}

/* A failure that the engine logs before it returns: the code must be the
 * failure's, not that of whatever errno the callback left behind. */
static void expect_code_despite_the_log(const char *what, int rc, int want, struct clobber *c)
{
    if (c->calls == 0)
        fail_msg("%s: the log callback never ran", what);
    if (rc != want)
        fail_msg("%s: %d (%s), wanted %d (%s)", what, rc, kv_strerror(rc), want, kv_strerror(want));
}

static void test_a_log_callback_that_changes_errno_does_not_change_the_code(void **state)
{
    struct tu_fixture *fx = *state;
    static struct failing f;
    static struct clobber c;
    kv_store *s = tu_open_tracked(fx->dir, NULL);
    put_str(s, "a", "alpha");
    assert_int_equal(tu_close_tracked(s), 0);

    /* Each case fails one call with an errno whose code differs from the
     * code of the errno the callback sets. */
    static const struct {
        const char *what;
        int mkdir_errno, flock_errno, opendir_errno, open_errno;
        const char *open_name;
        int want, clobber;
    } cases[] = {
        {"mkdir", EACCES, 0, 0, 0, NULL, KV_EIO, ENOSPC},
        {"LOCK open", 0, 0, 0, ENOSPC, "LOCK", KV_ENOSPC, EACCES},
        {"LOCK flock", 0, ENOLCK, 0, 0, NULL, KV_EIO, ENOSPC},
        {"opendir", 0, 0, ENOMEM, 0, NULL, KV_ENOMEM, ENOSPC},
        {"segment open", 0, 0, 0, EMFILE, "segment-1.dat", KV_EIO, ENOSPC},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        failing_init(&f);
        f.mkdir_errno = cases[i].mkdir_errno;
        f.flock_errno = cases[i].flock_errno;
        f.opendir_errno = cases[i].opendir_errno;
        f.open_errno = cases[i].open_errno;
        f.open_name = cases[i].open_name;
        c = (struct clobber){.err = cases[i].clobber};
        kv_options o = options_with(&f.io);
        o.log_fn = clobbering_log;
        o.log_ctx = &c;
        s = NULL;
        expect_code_despite_the_log(cases[i].what, kv_open(fx->dir, &o, &s), cases[i].want, &c);
        assert_null(s);
    }

    /* The snapshot's temporary file cannot be created. */
    failing_init(&f);
    c = (struct clobber){.err = EACCES};
    kv_options o = options_with(&f.io);
    o.log_fn = clobbering_log;
    o.log_ctx = &c;
    s = tu_open_tracked(fx->dir, &o);
    c.calls = 0;
    f.open_name = "index.snapshot.tmp";
    f.open_errno = ENOSPC;
    expect_code_despite_the_log("snapshot", kv_save_snapshot(s), KV_ENOSPC, &c);
    f.open_errno = 0;
    assert_int_equal(tu_close_tracked(s), 0);

    /* A torn tail that cannot be cut off. */
    char *seg = tu_path(fx->dir, "segment-1.dat");
    uint8_t *rec = NULL;
    size_t len = 0;
    tu_append_record(&rec, &len, KV_OP_SET, "torn", 4, "value", 5);
    size_t size = tu_file_size(seg);
    FILE *fp = fopen(seg, "ab");
    assert_non_null(fp);
    assert_int_equal(fwrite(rec, 1, len - 3, fp), len - 3);
    assert_int_equal(fclose(fp), 0);
    failing_init(&f);
    f.ftruncate_errno = EIO;
    c = (struct clobber){.err = ENOSPC};
    s = NULL;
    expect_code_despite_the_log("torn tail", kv_open(fx->dir, &o, &s), KV_EIO, &c);
    assert_null(s);
    assert_int_equal(tu_file_size(seg), size + len - 3);
    /* Without the fault, the open cuts it and goes on. */
    s = tu_open_tracked(fx->dir, NULL);
    tu_assert_str(s, "a", "alpha");
    assert_int_equal(tu_close_tracked(s), 0);
    assert_int_equal(tu_file_size(seg), size);
    free(rec);
    free(seg);
}

static void test_a_table_that_sets_only_half_of_a_pair_is_refused(void **state)
{
    struct tu_fixture *fx = *state;
    struct kv_io io = {.opendir = kv_io_default()->opendir};
    kv_options o = options_with(&io);
    kv_store *s = NULL;
    assert_int_equal(kv_open(fx->dir, &o, &s), KV_EINVAL);
    io = (struct kv_io){.map = kv_io_default()->map};
    assert_int_equal(kv_open(fx->dir, &o, &s), KV_EINVAL);
    assert_null(s);
    assert_false(exists(fx->dir));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_every_file_system_call_of_a_store_goes_through_the_table, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_open_fails_with_the_code_of_a_failed_mkdir_and_creates_nothing, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_open_reports_a_lock_it_cannot_take_and_leaves_the_directory_free, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_compaction_refused_for_space_changes_nothing, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_log_callback_that_changes_errno_does_not_change_the_code, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_a_table_that_sets_only_half_of_a_pair_is_refused,
                                        tu_setup, tu_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
