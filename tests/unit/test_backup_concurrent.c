/*
 * test_backup_concurrent.c - backups beside writer threads and compactions:
 * kv_backup and kv_backup_dir taken while writers put and delete, each
 * checked to hold every write acknowledged before it began, with its exact
 * value, and no key deleted before it began; and backups asked for in the
 * middle of a compaction.
 *
 * Threads never call cmocka's assertions; they record what went wrong and
 * the main thread asserts after joining. Every thread runs a fixed number
 * of operations; waits are for a condition, with a generous bound.
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

#define WRITERS 4
#define STEPS   600 /* per writer */
#define BACKUPS 6

struct problems {
    int count;
    char first[256];
};

static void problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct problems *p, const char *fmt, ...)
{
    if (p->count++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->first, sizeof(p->first), fmt, ap);
        va_end(ap);
    }
}

static void assert_no_problems(const struct problems *p, const char *who)
{
    if (p->count != 0)
        fail_msg("%s: %d problem(s), the first: %s", who, p->count, p->first);
}

static kv_options options(void)
{
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 16u * 1024;
    o.compaction_interval_secs = 0;
    return o;
}

static void key_of(int w, int i, char *buf, size_t len)
{
    snprintf(buf, len, "w%d/%05d", w, i);
}

static size_t value_of(int w, int i, char *buf, size_t len)
{
    int n = snprintf(buf, len, "writer %d step %d|", w, i);
    size_t size = (size_t)n * (size_t)(1 + (w + i) % 7);
    for (size_t at = (size_t)n; at < size && at < len; at++)
        buf[at] = buf[at % (size_t)n];
    return size < len ? size : len;
}

/*
 * A writer's steps: step i puts key i; every fourth step (i % 4 == 3) also
 * deletes key i - 1. progress is the number of steps whose writes were all
 * acknowledged.
 */
struct writer {
    kv_store *s;
    int id;
    atomic_int progress;
    struct problems p;
};

static void *write_steps(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < STEPS; i++) {
        char key[32], val[256];
        key_of(w->id, i, key, sizeof(key));
        size_t n = value_of(w->id, i, val, sizeof(val));
        int rc = kv_put(w->s, key, strlen(key), val, n);
        if (rc != 0)
            problem(&w->p, "put %s: %s", key, kv_strerror(rc));
        if (i % 4 == 3) {
            key_of(w->id, i - 1, key, sizeof(key));
            rc = kv_delete(w->s, key, strlen(key));
            if (rc != 0)
                problem(&w->p, "delete %s: %s", key, kv_strerror(rc));
        }
        atomic_store_explicit(&w->progress, i + 1, memory_order_release);
    }
    return NULL;
}

/* Checks the store in dir against the writers' steps, given the progress
 * each had made before the backup began: every key of an earlier step is
 * there with its value, unless its delete was acknowledged before too (or
 * may have been); a later key may be there or not, but only with its
 * value. */
static void check_backup(const char *dir, const int *progress, struct problems *p)
{
    kv_options o = options();
    kv_store *b = NULL;
    int rc = kv_open(dir, &o, &b);
    if (rc != 0) {
        problem(p, "the backup in %s does not open: %s", dir, kv_strerror(rc));
        return;
    }
    for (int w = 0; w < WRITERS; w++) {
        for (int i = 0; i < STEPS; i++) {
            char key[32], want[256];
            key_of(w, i, key, sizeof(key));
            size_t want_len = value_of(w, i, want, sizeof(want));
            /* A key that step i + 1 deletes was present from step i to
             * that delete: when step i + 1 was under way as the backup
             * began, its delete may have been acknowledged already. */
            bool deleted_later = i % 4 == 2;
            bool deleted_before = deleted_later && i + 1 < progress[w];
            bool acked = i < progress[w] && !(deleted_later && i + 1 == progress[w]);
            void *val = NULL;
            size_t len = 0;
            rc = kv_get(b, key, strlen(key), &val, &len);
            if (rc == KV_ENOTFOUND) {
                if (acked && !deleted_before)
                    problem(p, "%s: %s acknowledged before the backup, missing", dir, key);
                continue;
            }
            if (rc != 0)
                problem(p, "%s: get %s: %s", dir, key, kv_strerror(rc));
            else if (deleted_before)
                problem(p, "%s: %s deleted before the backup, present", dir, key);
            else if (len != want_len || memcmp(val, want, len) != 0)
                problem(p, "%s: %s has a wrong value", dir, key);
            kv_free(val);
        }
    }
    rc = kv_close(b);
    if (rc != 0)
        problem(p, "closing the backup in %s: %s", dir, kv_strerror(rc));
}

static int total_progress(struct writer *ws)
{
    int sum = 0;
    for (int w = 0; w < WRITERS; w++)
        sum += atomic_load_explicit(&ws[w].progress, memory_order_acquire);
    return sum;
}

/* Waits until the writers together have made at least n steps, or have all
 * finished. */
static void wait_progress(struct writer *ws, int n)
{
    uint64_t deadline = tu_now_ms() + TU_WAIT_MS;
    while (total_progress(ws) < n && total_progress(ws) < WRITERS * STEPS) {
        if (tu_now_ms() > deadline)
            fail_msg("the writers made %d steps, not %d", total_progress(ws), n);
        tu_pause_ms(1);
    }
}

struct compactor {
    kv_store *s;
    struct writer *ws;
    int runs;
    struct problems p;
};

/* Compacts whenever the writers have made another slice of their steps. */
static void *compact_while_writing(void *arg)
{
    struct compactor *c = arg;
    int slice = WRITERS * STEPS / 12;
    for (int next = slice; next < WRITERS * STEPS; next += slice) {
        while (total_progress(c->ws) < next)
            sched_yield();
        int rc = kv_compact(c->s);
        if (rc != 0)
            problem(&c->p, "kv_compact: %s", kv_strerror(rc));
        c->runs++;
    }
    return NULL;
}

static void test_backups_beside_writers_and_compactions_hold_every_acknowledged_write(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o = options();
    kv_store *s = tu_open_tracked(f->dir, &o);
    struct writer ws[WRITERS];
    pthread_t threads[WRITERS + 1];
    for (int w = 0; w < WRITERS; w++) {
        memset(&ws[w], 0, sizeof(ws[w]));
        ws[w].s = s;
        ws[w].id = w;
        atomic_init(&ws[w].progress, 0);
        assert_int_equal(pthread_create(&threads[w], NULL, write_steps, &ws[w]), 0);
    }
    struct compactor c = {.s = s, .ws = ws};
    assert_int_equal(pthread_create(&threads[WRITERS], NULL, compact_while_writing, &c), 0);

    int progress[BACKUPS][WRITERS];
    char *dirs[BACKUPS];
    int busy = 0;
    struct problems p = {0};
    for (int k = 0; k < BACKUPS; k++) {
        wait_progress(ws, (k + 1) * WRITERS * STEPS / (BACKUPS + 1));
        for (int w = 0; w < WRITERS; w++)
            progress[k][w] = atomic_load_explicit(&ws[w].progress, memory_order_acquire);
        char name[32];
        snprintf(name, sizeof(name), "backup-%d", k);
        dirs[k] = tu_path(f->root, name);
        /* The handle's backup, and every other one a backup of the directory
         * as another process would take it. */
        int rc = k % 2 == 0 ? kv_backup(s, dirs[k], 0, NULL)
                            : kv_backup_dir(f->dir, dirs[k], NULL, 0, NULL);
        if (rc == KV_EBUSY && k % 2 == 1) {
            busy++; /* compactions during all of its passes: allowed, said */
            free(dirs[k]);
            dirs[k] = NULL;
        } else if (rc != 0) {
            problem(&p, "backup %d: %s", k, kv_strerror(rc));
        }
    }
    for (int t = 0; t < WRITERS + 1; t++)
        assert_int_equal(pthread_join(threads[t], NULL), 0);
    for (int w = 0; w < WRITERS; w++)
        assert_no_problems(&ws[w].p, "writer");
    assert_no_problems(&c.p, "compactor");
    assert_no_problems(&p, "backups");
    assert_true(c.runs > 0);
    assert_true(busy < BACKUPS / 2);
    for (int k = 0; k < BACKUPS; k++) {
        if (!dirs[k])
            continue;
        check_backup(dirs[k], progress[k], &p);
        free(dirs[k]);
    }
    assert_no_problems(&p, "backup contents");
    assert_kv_ok(tu_close_tracked(s));
}

/* ---- backups in the middle of a compaction */

/* A table whose rename (compaction publishing an output) runs a hook once:
 * the compaction is then under way, its inputs still on disk. */
struct at_publish {
    struct kv_io io;
    void (*hook)(struct at_publish *ap);
    atomic_bool fired;
    const char *dir;
    const char *dest;
    kv_store *s;
    atomic_bool backup_called;
    pthread_t thread;
    bool started;
    atomic_int rc;
};

static int publish_rename(void *ctx, const char *from, const char *to)
{
    struct at_publish *ap = ctx;
    size_t n = strlen(from);
    if (n > 8 && strcmp(from + n - 8, ".dat.tmp") == 0 && !atomic_exchange(&ap->fired, true))
        ap->hook(ap);
    return kv_io_default()->rename(NULL, from, to);
}

static kv_options at_publish_options(struct at_publish *ap)
{
    ap->io = (struct kv_io){.ctx = ap, .rename = publish_rename};
    kv_options o = options();
    o.io = &ap->io;
    return o;
}

/* Runs the steps of every writer, one writer after the other. */
static void write_all(kv_store *s)
{
    struct writer w = {.s = s, .id = 0};
    atomic_init(&w.progress, 0);
    write_steps(&w);
    assert_no_problems(&w.p, "writer");
    for (int i = 1; i < WRITERS; i++) {
        struct writer other = {.s = s, .id = i};
        atomic_init(&other.progress, 0);
        write_steps(&other);
        assert_no_problems(&other.p, "writer");
    }
}

static void *backup_thread(void *arg)
{
    struct at_publish *ap = arg;
    atomic_store(&ap->backup_called, true);
    atomic_store(&ap->rc, kv_backup(ap->s, ap->dest, 0, NULL));
    return NULL;
}

/* In the compaction's thread: have a second thread ask for a backup, and go
 * on once it has (it then waits for this compaction to end). */
static void ask_for_backup(struct at_publish *ap)
{
    if (pthread_create(&ap->thread, NULL, backup_thread, ap) != 0)
        return;
    ap->started = true;
    uint64_t deadline = tu_now_ms() + TU_WAIT_MS;
    while (!atomic_load(&ap->backup_called) && tu_now_ms() < deadline)
        tu_pause_ms(1);
}

static void test_a_backup_asked_for_during_a_compaction_holds_every_write(void **state)
{
    struct tu_fixture *f = *state;
    struct at_publish ap = {.hook = ask_for_backup};
    atomic_init(&ap.fired, false);
    atomic_init(&ap.backup_called, false);
    kv_options o = at_publish_options(&ap);
    kv_store *s = tu_open_tracked(f->dir, &o);
    ap.s = s;
    char *dest = tu_path(f->root, "backup");
    ap.dest = dest;
    atomic_init(&ap.rc, 1);
    write_all(s);
    assert_kv_ok(kv_compact(s));
    assert_true(atomic_load(&ap.fired));
    assert_true(ap.started);
    /* A second backup, after the compaction, beside the first. */
    char *second = tu_path(f->root, "second");
    assert_kv_ok(kv_backup(s, second, 0, NULL));
    assert_int_equal(pthread_join(ap.thread, NULL), 0);
    assert_kv_ok(atomic_load(&ap.rc));
    int all[WRITERS];
    for (int w = 0; w < WRITERS; w++)
        all[w] = STEPS;
    struct problems p = {0};
    check_backup(dest, all, &p);
    check_backup(second, all, &p);
    assert_no_problems(&p, "backup contents");
    assert_kv_ok(tu_close_tracked(s));
    free(dest);
    free(second);
}

/* In the compaction's thread, outputs about to be published and inputs
 * still there: a backup of the directory, as another process takes it. */
static void backup_directory_now(struct at_publish *ap)
{
    atomic_store(&ap->rc, kv_backup_dir(ap->dir, ap->dest, NULL, 0, NULL));
}

static void test_a_backup_of_the_directory_mid_compaction_holds_every_write(void **state)
{
    struct tu_fixture *f = *state;
    struct at_publish ap = {.hook = backup_directory_now};
    atomic_init(&ap.fired, false);
    kv_options o = at_publish_options(&ap);
    kv_store *s = tu_open_tracked(f->dir, &o);
    char *dest = tu_path(f->root, "backup");
    ap.dir = f->dir;
    ap.dest = dest;
    atomic_init(&ap.rc, 1);
    write_all(s);
    assert_kv_ok(kv_compact(s));
    assert_true(atomic_load(&ap.fired));
    assert_kv_ok(atomic_load(&ap.rc));
    int all[WRITERS];
    for (int w = 0; w < WRITERS; w++)
        all[w] = STEPS;
    struct problems p = {0};
    check_backup(dest, all, &p);
    assert_no_problems(&p, "backup contents");
    assert_kv_ok(tu_close_tracked(s));
    free(dest);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_backups_beside_writers_and_compactions_hold_every_acknowledged_write, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_backup_asked_for_during_a_compaction_holds_every_write, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_backup_of_the_directory_mid_compaction_holds_every_write, tu_setup, tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
