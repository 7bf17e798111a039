/*
 * test_concurrent_deletes.c - a delete's "the key exists" is decided with
 * its write, by the group-commit leader, in log order.
 *
 * To put writes of one key into one batch, a first writer is held inside its
 * fdatasync (a gate in the file-system table) while the next writers queue
 * behind it; once they all wait, the gate opens and the head of the queue
 * leads them as one batch. Each test checks from the table's pwritev calls
 * that they were one batch: one write of exactly the records that batch had
 * to make.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "testutil.h"

/* Waits for conditions the threads reach: generous, since the machines
 * running the tests are often loaded; a test that needs it fails. */
#define WAIT_SECS 60

static bool past(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

static struct timespec deadline_in(int secs)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += secs;
    return t;
}

/* ---- the gate: holds the first fdatasync after it is armed */

#define MAX_WRITES 16

struct gate {
    struct kv_io io;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool armed, entered, open;
    size_t writes[MAX_WRITES]; /* bytes of each pwritev since armed */
    int nwrites;
};

static struct gate g_gate;

static ssize_t gate_pwritev(void *ctx, int fd, const struct iovec *iov, int n, off_t off)
{
    struct gate *g = ctx;
    ssize_t r = kv_io_default()->pwritev(NULL, fd, iov, n, off);
    pthread_mutex_lock(&g->mu);
    if (g->armed && r > 0 && g->nwrites < MAX_WRITES)
        g->writes[g->nwrites++] = (size_t)r;
    pthread_mutex_unlock(&g->mu);
    return r;
}

static int gate_fdatasync(void *ctx, int fd)
{
    struct gate *g = ctx;
    pthread_mutex_lock(&g->mu);
    if (g->armed && !g->entered) {
        g->entered = true;
        pthread_cond_broadcast(&g->cv);
        /* Bounded, so that a test that fails early cannot hang here. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += WAIT_SECS;
        while (!g->open && pthread_cond_timedwait(&g->cv, &g->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&g->mu);
    return kv_io_default()->fdatasync(NULL, fd);
}

static void gate_init(struct gate *g)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->io = (struct kv_io){.ctx = g, .pwritev = gate_pwritev, .fdatasync = gate_fdatasync};
}

static void gate_destroy(struct gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

/* ---- writers on threads */

enum kind { PUT, DEL };

struct op {
    enum kind kind;
    const char *key;
    const char *val;
    kv_store *s;
    int rc;
    pthread_t thread;
};

static void *run_op(void *arg)
{
    struct op *o = arg;
    size_t klen = strlen(o->key);
    o->rc = o->kind == PUT ? kv_put(o->s, o->key, klen, o->val, strlen(o->val))
                           : kv_delete(o->s, o->key, klen);
    return NULL;
}

static size_t queued(kv_store *s)
{
    return atomic_load(&s->queue_len);
}

static void wait_queued(kv_store *s, size_t n)
{
    struct timespec deadline = deadline_in(WAIT_SECS);
    while (queued(s) < n) {
        if (past(&deadline))
            fail_msg("%zu writers queued after %d s, wanted %zu", queued(s), WAIT_SECS, n);
        struct timespec pause = {.tv_nsec = 1000000};
        nanosleep(&pause, NULL);
    }
}

static size_t record_bytes(const struct op *o)
{
    return 15 + strlen(o->key) + (o->kind == PUT ? strlen(o->val) : 0);
}

/*
 * Runs ops[0..n) as one batch: a first put ("gate") is held in its
 * fdatasync, the ops queue behind it in order, and the gate opens. Fills
 * each op's rc, and checks that the batch was one write of the records of
 * the ops listed in `written` (a string of '1' and '0', one per op).
 */
static void run_batch(kv_store *s, struct op *ops, int n, const char *written)
{
    struct gate *g = &g_gate;
    pthread_mutex_lock(&g->mu);
    g->armed = true;
    pthread_mutex_unlock(&g->mu);
    struct op first = {.kind = PUT, .key = "gate", .val = "held", .s = s};
    assert_int_equal(pthread_create(&first.thread, NULL, run_op, &first), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_SECS;
    pthread_mutex_lock(&g->mu);
    while (!g->entered && pthread_cond_timedwait(&g->cv, &g->mu, &until) != ETIMEDOUT)
        ;
    bool entered = g->entered;
    pthread_mutex_unlock(&g->mu);
    if (!entered)
        fail_msg("the first write did not reach its fdatasync in %d s", WAIT_SECS);

    for (int i = 0; i < n; i++) {
        ops[i].s = s;
        assert_int_equal(pthread_create(&ops[i].thread, NULL, run_op, &ops[i]), 0);
        wait_queued(s, (size_t)i + 1);
    }
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(first.thread, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(ops[i].thread, NULL);
    assert_int_equal(first.rc, 0);

    size_t want = 0;
    for (int i = 0; i < n; i++)
        if (written[i] == '1')
            want += record_bytes(&ops[i]);
    pthread_mutex_lock(&g->mu);
    int nwrites = g->nwrites;
    size_t batch = nwrites == 2 ? g->writes[1] : 0;
    g->armed = false;
    pthread_mutex_unlock(&g->mu);
    if (nwrites != 2 || batch != want)
        fail_msg("the ops were not one batch: %d writes (the gate's and theirs wanted), %zu "
                 "bytes written by theirs, wanted %zu",
                 nwrites, batch, want);
}

/* ---- the records of a key on disk, in log order: "S" set, "D" delete */

struct history {
    const char *key;
    char ops[16];
    size_t n;
};

static int note_record(const kv_record_info *info, void *ctx)
{
    struct history *h = ctx;
    if (info->status == KV_REC_OK && info->key_len == strlen(h->key) &&
        memcmp(info->key, h->key, info->key_len) == 0 && h->n + 1 < sizeof(h->ops))
        h->ops[h->n++] = info->op == KV_OP_SET ? 'S' : 'D';
    return 0;
}

static void assert_history(const char *dir, const char *key, const char *want)
{
    struct history h = {.key = key};
    assert_int_equal(kv_scan(dir, note_record, &h), 0);
    assert_string_equal(h.ops, want);
}

/* ---- fixture */

static kv_store *open_gated(const char *dir)
{
    gate_init(&g_gate);
    kv_options o;
    kv_options_init(&o);
    o.compaction_interval_secs = 0;
    o.segment_preallocate = 0; /* the gate counts the leader's writes only */
    o.io = &g_gate.io;
    return tu_open_tracked(dir, &o);
}

static int teardown(void **state)
{
    int rc = tu_teardown(state);
    gate_destroy(&g_gate);
    return rc;
}

static kv_stats stats_of(kv_store *s)
{
    kv_stats st;
    assert_int_equal(kv_get_stats(s, &st), 0);
    return st;
}

/* ---- tests */

static void test_a_delete_of_an_absent_key_writes_and_syncs_nothing(void **state)
{
    struct tu_fixture *fx = *state;
    kv_store *s = open_gated(fx->dir);
    assert_int_equal(kv_put(s, "a", 1, "alpha", 5), 0);
    kv_stats before = stats_of(s);
    assert_int_equal(kv_delete(s, "b", 1), KV_ENOTFOUND);
    kv_stats after = stats_of(s);
    assert_int_equal(after.disk_bytes, before.disk_bytes);
    assert_int_equal(after.fsyncs, before.fsyncs);
    assert_int_equal(after.deletes, 0);
    assert_int_equal(kv_delete(s, "a", 1), 0);
    assert_int_equal(stats_of(s).deletes, 1);
    assert_int_equal(kv_delete(s, "a", 1), KV_ENOTFOUND);
    assert_int_equal(stats_of(s).deletes, 1);
    assert_int_equal(tu_close_tracked(s), 0);
    assert_history(fx->dir, "a", "SD");
    assert_history(fx->dir, "b", "");
}

static void test_a_delete_sees_a_put_of_its_key_earlier_in_its_batch(void **state)
{
    struct tu_fixture *fx = *state;
    kv_store *s = open_gated(fx->dir);
    struct op ops[] = {{.kind = PUT, .key = "k", .val = "v1"}, {.kind = DEL, .key = "k"}};
    run_batch(s, ops, 2, "11");
    assert_int_equal(ops[0].rc, 0);
    assert_int_equal(ops[1].rc, 0);
    assert_int_equal(kv_exists(s, "k", 1), KV_ENOTFOUND);
    assert_int_equal(stats_of(s).deletes, 1);
    assert_int_equal(tu_close_tracked(s), 0);
    assert_history(fx->dir, "k", "SD");
    s = tu_open_tracked(fx->dir, NULL);
    assert_int_equal(kv_exists(s, "k", 1), KV_ENOTFOUND);
    assert_int_equal(tu_close_tracked(s), 0);
}

static void test_of_two_deletes_of_a_key_in_one_batch_only_the_first_writes(void **state)
{
    struct tu_fixture *fx = *state;
    kv_store *s = open_gated(fx->dir);
    assert_int_equal(kv_put(s, "k", 1, "v1", 2), 0);
    struct op ops[] = {{.kind = DEL, .key = "k"},
                       {.kind = DEL, .key = "k"},
                       {.kind = PUT, .key = "m", .val = "marker"}};
    run_batch(s, ops, 3, "101");
    assert_int_equal(ops[0].rc, 0);
    assert_int_equal(ops[1].rc, KV_ENOTFOUND);
    assert_int_equal(ops[2].rc, 0);
    assert_int_equal(kv_exists(s, "k", 1), KV_ENOTFOUND);
    assert_int_equal(stats_of(s).deletes, 1);
    assert_int_equal(tu_close_tracked(s), 0);
    assert_history(fx->dir, "k", "SD");
}

static void test_a_delete_before_a_put_of_its_key_in_its_batch_finds_nothing(void **state)
{
    struct tu_fixture *fx = *state;
    kv_store *s = open_gated(fx->dir);
    struct op ops[] = {{.kind = DEL, .key = "k"},
                       {.kind = PUT, .key = "k", .val = "v1"},
                       {.kind = PUT, .key = "m", .val = "marker"}};
    run_batch(s, ops, 3, "011");
    assert_int_equal(ops[0].rc, KV_ENOTFOUND);
    assert_int_equal(ops[1].rc, 0);
    assert_int_equal(ops[2].rc, 0);
    tu_assert_str(s, "k", "v1");
    assert_int_equal(stats_of(s).deletes, 0);
    assert_int_equal(tu_close_tracked(s), 0);
    assert_history(fx->dir, "k", "S");
}

/* put, delete, delete, put of one key in one batch: each decided in order
 * against the state the writes before it left. */
static void test_the_writes_of_a_batch_are_decided_in_log_order(void **state)
{
    struct tu_fixture *fx = *state;
    kv_store *s = open_gated(fx->dir);
    struct op ops[] = {{.kind = PUT, .key = "k", .val = "v1"},
                       {.kind = DEL, .key = "k"},
                       {.kind = DEL, .key = "k"},
                       {.kind = PUT, .key = "k", .val = "v2"},
                       {.kind = DEL, .key = "other"}};
    run_batch(s, ops, 5, "11010");
    assert_int_equal(ops[0].rc, 0);
    assert_int_equal(ops[1].rc, 0);
    assert_int_equal(ops[2].rc, KV_ENOTFOUND);
    assert_int_equal(ops[3].rc, 0);
    assert_int_equal(ops[4].rc, KV_ENOTFOUND);
    tu_assert_str(s, "k", "v2");
    assert_int_equal(tu_close_tracked(s), 0);
    assert_history(fx->dir, "k", "SDS");
    s = tu_open_tracked(fx->dir, NULL);
    tu_assert_str(s, "k", "v2");
    assert_int_equal(tu_close_tracked(s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_delete_of_an_absent_key_writes_and_syncs_nothing,
                                        tu_setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_delete_sees_a_put_of_its_key_earlier_in_its_batch,
                                        tu_setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_of_two_deletes_of_a_key_in_one_batch_only_the_first_writes, tu_setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_delete_before_a_put_of_its_key_in_its_batch_finds_nothing, tu_setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_writes_of_a_batch_are_decided_in_log_order,
                                        tu_setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
