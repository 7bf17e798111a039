/*
 * testutil.c - see testutil.h.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* ---- the runner */

/* One selected test: the program's entry, which the guard's setup and
 * teardown wrap. */
struct guard {
    const struct CMUnitTest *test;
};

/* Tests run one at a time, so the guard of the running test and the line
 * the alarm writes are the runner's only state. The line is composed when
 * the alarm is set, so that the signal handler only writes it. */
static const struct guard *g_running;
static unsigned g_timeout_secs = TU_TEST_TIMEOUT_SECS;
static char g_timeout_line[512];
static size_t g_timeout_len;

static void on_alarm(int sig)
{
    (void)sig;
    ssize_t w = write(STDERR_FILENO, g_timeout_line, g_timeout_len);
    (void)w;
    _exit(124);
}

static void arm_alarm(const char *name)
{
    if (g_timeout_secs == 0)
        return;
    int n = snprintf(g_timeout_line, sizeof(g_timeout_line),
                     "[ TIMEOUT  ] %s is still running after %u s (KV_TEST_TIMEOUT): stopping\n",
                     name, g_timeout_secs);
    g_timeout_len = n > 0 && (size_t)n < sizeof(g_timeout_line) ? (size_t)n : 0;
    alarm(g_timeout_secs);
}

static int guard_setup(void **state)
{
    const struct guard *g = *state;
    g_running = g;
    *state = g->test->initial_state;
    arm_alarm(g->test->name);
    int rc = g->test->setup_func != NULL ? g->test->setup_func(state) : 0;
    if (rc != 0)
        alarm(0); /* cmocka runs no teardown after a failed setup */
    return rc;
}

static int guard_teardown(void **state)
{
    const struct CMUnitTest *t = g_running->test;
    int rc = t->teardown_func != NULL ? t->teardown_func(state) : 0;
    alarm(0);
    g_running = NULL;
    return rc;
}

static bool selected(const char *name, char **patterns, int npatterns)
{
    if (npatterns == 0)
        return true;
    for (int i = 0; i < npatterns; i++) {
        if (fnmatch(patterns[i], name, 0) == 0)
            return true;
    }
    return false;
}

static int read_timeout(void)
{
    const char *text = getenv("KV_TEST_TIMEOUT");
    if (text == NULL || text[0] == '\0')
        return 0;
    char *end = NULL;
    unsigned long v = strtoul(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || v > 86400) {
        fprintf(stderr, "KV_TEST_TIMEOUT=%s: expected seconds from 0 to 86400\n", text);
        return -1;
    }
    g_timeout_secs = (unsigned)v;
    return 0;
}

int tu_run_tests_(const struct CMUnitTest *tests, size_t count, int argc, char **argv)
{
    const char *program = argc > 0 ? strrchr(argv[0], '/') : NULL;
    program = program != NULL ? program + 1 : (argc > 0 ? argv[0] : "tests");
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < count; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    char *env_filter = getenv("KV_TEST_FILTER");
    char **patterns = argc > 1 ? argv + 1 : &env_filter;
    int npatterns = argc > 1 ? argc - 1 : (env_filter != NULL && env_filter[0] != '\0');
    if (read_timeout() != 0)
        return 2;

    struct CMUnitTest *run = calloc(count, sizeof(*run));
    struct guard *guards = calloc(count, sizeof(*guards));
    assert_non_null(run);
    assert_non_null(guards);
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (!selected(tests[i].name, patterns, npatterns))
            continue;
        guards[n].test = &tests[i];
        run[n] = (struct CMUnitTest){.name = tests[i].name,
                                     .test_func = tests[i].test_func,
                                     .setup_func = guard_setup,
                                     .teardown_func = guard_teardown,
                                     .initial_state = &guards[n]};
        n++;
    }
    int failed = 2;
    if (n == 0) {
        fprintf(stderr, "%s: no test matches", program);
        for (int i = 0; i < npatterns; i++)
            fprintf(stderr, " '%s'", patterns[i]);
        fprintf(stderr, " (%s --list names them)\n", program);
    } else {
        signal(SIGALRM, on_alarm);
        failed = _cmocka_run_group_tests(program, run, n, NULL, NULL);
        alarm(0);
    }
    free(run);
    free(guards);
    return failed;
}

void tu_assert_kv_rc(int got, int want, const char *expr, const char *file, int line)
{
    if (got == want)
        return;
    print_error("%s returned %d (%s), expected %d (%s)\n", expr, got, kv_strerror(got), want,
                kv_strerror(want));
    _fail(file, line);
}

uint64_t tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void tu_pause_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

char *tu_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof(tmpl), "%s/kvtest-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    char *out = strdup(d);
    assert_non_null(out);
    return out;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rmtree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_path(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

int tu_setup(void **state)
{
    struct tu_fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->root = tu_mkdtemp();
    f->dir = tu_path(f->root, "db");
    *state = f;
    return 0;
}

/* The store a test has open through tu_open_tracked. */
static kv_store *g_tracked;

kv_store *tu_open_tracked(const char *dir, const kv_options *opts)
{
    g_tracked = tu_open(dir, opts);
    return g_tracked;
}

int tu_close_tracked(kv_store *s)
{
    if (s == g_tracked)
        g_tracked = NULL;
    return kv_close(s);
}

int tu_teardown(void **state)
{
    struct tu_fixture *f = *state;
    kv_close(g_tracked);
    g_tracked = NULL;
    tu_rmtree(f->root);
    free(f->dir);
    free(f->root);
    free(f);
    return 0;
}

kv_store *tu_open(const char *dir, const kv_options *opts)
{
    kv_options o;
    if (opts) {
        o = *opts;
    } else {
        kv_options_init(&o);
        o.segment_size = 64u * 1024;
    }
    kv_store *s = NULL;
    int rc = kv_open(dir, &o, &s);
    if (rc != 0)
        fail_msg("kv_open(%s) = %d (%s)", dir, rc, kv_strerror(rc));
    return s;
}

uint8_t *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

void tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

size_t tu_file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (size_t)st.st_size;
}

void tu_truncate(const char *path, size_t len)
{
    assert_int_equal(truncate(path, (off_t)len), 0);
}

void tu_flip_byte(const char *path, size_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x5A;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

void tu_assert_value(kv_store *s, const char *key, const void *value, size_t len)
{
    void *got = NULL;
    size_t got_len = 0;
    int rc = kv_get(s, key, strlen(key), &got, &got_len);
    if (rc != 0)
        fail_msg("kv_get(%s) = %d (%s), wanted %zu bytes", key, rc, kv_strerror(rc), len);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, value, len);
    kv_free(got);
}

void tu_assert_log_ends_at(const char *path, size_t off)
{
    size_t len;
    uint8_t *b = tu_read_file(path, &len);
    if (len < off)
        fail_msg("%s: %zu bytes, its log should end at %zu", path, len, off);
    for (size_t i = off; i < len; i++)
        if (b[i] != 0)
            fail_msg("%s: byte %zu of %zu is %u, after the log's end at %zu", path, i, len, b[i],
                     off);
    free(b);
}

void tu_append_record(uint8_t **buf, size_t *len, uint8_t op, const void *key, size_t key_len,
                      const void *val, size_t val_len)
{
    size_t n = 15 + key_len + val_len;
    *buf = realloc(*buf, *len + n);
    assert_non_null(*buf);
    uint8_t *p = *buf + *len;
    p[0] = 0xF0;
    p[1] = 0xF1;
    p[2] = op;
    for (int i = 0; i < 4; i++) {
        p[3 + i] = (uint8_t)(key_len >> (8 * i));
        p[7 + i] = (uint8_t)(val_len >> (8 * i));
    }
    memcpy(p + 11, key, key_len);
    if (val_len)
        memcpy(p + 11 + key_len, val, val_len);
    uLong crc = crc32(0, p + 2, (uInt)(9 + key_len + val_len));
    for (int i = 0; i < 4; i++)
        p[11 + key_len + val_len + i] = (uint8_t)(crc >> (8 * i));
    *len += n;
}

/* ---- fault injection */

static struct tu_faults *faults_of(void *ctx)
{
    return ctx;
}

static int f_open(void *ctx, const char *path, int flags, mode_t mode)
{
    (void)ctx;
    return kv__io_os.open(NULL, path, flags, mode);
}

static int f_close(void *ctx, int fd)
{
    (void)ctx;
    return kv__io_os.close(NULL, fd);
}

static ssize_t f_preadv(void *ctx, int fd, const struct iovec *iov, int n, off_t off)
{
    (void)ctx;
    return kv__io_os.preadv(NULL, fd, iov, n, off);
}

static ssize_t f_pwritev(void *ctx, int fd, const struct iovec *iov, int n, off_t off)
{
    struct tu_faults *f = faults_of(ctx);
    int nth = ++f->writes;
    int count = f->fail_write_count > 0 ? f->fail_write_count : 1;
    if (f->fail_write_at > 0 && nth >= f->fail_write_at && nth < f->fail_write_at + count) {
        if (f->short_write && iov[0].iov_len > 1) {
            struct iovec half = {.iov_base = iov[0].iov_base, .iov_len = iov[0].iov_len / 2};
            ssize_t r = kv__io_os.pwritev(NULL, fd, &half, 1, off);
            f->short_write = 0; /* the retry of the rest fails */
            if (r > 0)
                return r;
        }
        errno = f->write_errno ? f->write_errno : EIO;
        return -1;
    }
    return kv__io_os.pwritev(NULL, fd, iov, n, off);
}

static int f_sync(struct tu_faults *f, int fd, bool data)
{
    int nth = ++f->syncs;
    if (f->fail_sync_at > 0 && nth == f->fail_sync_at) {
        errno = f->sync_errno ? f->sync_errno : EIO;
        return -1;
    }
    return data ? kv__io_os.fdatasync(NULL, fd) : kv__io_os.fsync(NULL, fd);
}

static int f_fdatasync(void *ctx, int fd)
{
    return f_sync(faults_of(ctx), fd, true);
}

static int f_fsync(void *ctx, int fd)
{
    return f_sync(faults_of(ctx), fd, false);
}

static int f_ftruncate(void *ctx, int fd, off_t len)
{
    (void)ctx;
    return kv__io_os.ftruncate(NULL, fd, len);
}

static int f_rename(void *ctx, const char *a, const char *b)
{
    (void)ctx;
    return kv__io_os.rename(NULL, a, b);
}

static int f_unlink(void *ctx, const char *p)
{
    (void)ctx;
    return kv__io_os.unlink(NULL, p);
}

static void *f_map(void *ctx, int fd, size_t len)
{
    struct tu_faults *f = faults_of(ctx);
    if (++f->maps <= f->fail_maps) {
        errno = f->map_errno ? f->map_errno : ENOMEM;
        return NULL;
    }
    return kv__io_os.map(NULL, fd, len);
}

static int f_unmap(void *ctx, void *addr, size_t len)
{
    (void)ctx;
    return kv__io_os.unmap(NULL, addr, len);
}

void tu_faults_init(struct tu_faults *f)
{
    memset(f, 0, sizeof(*f));
    f->io = (struct kv_io){
        .ctx = f,
        .open = f_open,
        .close = f_close,
        .preadv = f_preadv,
        .pwritev = f_pwritev,
        .fdatasync = f_fdatasync,
        .fsync = f_fsync,
        .ftruncate = f_ftruncate,
        .rename = f_rename,
        .unlink = f_unlink,
        /* Reads go through the mapping, as with the operating system's
         * table, so that cut-backs after failed writes and syncs are checked
         * against mapped segments too. */
        .map = f_map,
        .unmap = f_unmap,
    };
}

void tu_log_count(kv_log_level level, const char *msg, void *ctx)
{
    (void)level;
    int *n = ctx;
    if (n && (strstr(msg, "damaged") || strstr(msg, "checksum")))
        (*n)++;
}
