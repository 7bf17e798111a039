/*
 * test_concurrent_conditions.c - conditions (KV_IF_ABSENT, PRESENT, CRC) are
 * decided in log order, atomically with the write, also among the batches of
 * one round of group commit: each sees the index as the earlier rounds left
 * it and the batches sequenced before it in its own round.
 *
 * To put batches into one round, a first write is held inside its fdatasync
 * (a gate in the file-system table) while the next batches are submitted
 * with kv_write_async; once they are all queued the gate opens, and the next
 * round takes them all. The table's pwritev calls show that it was one round:
 * one write of exactly the records that round had to make.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "record.h"
#include "store.h"
#include "testutil.h"

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
        until.tv_sec += TU_WAIT_MS / 1000;
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

/* ---- batches submitted asynchronously */

#define MAX_OPS 4

struct batch {
    kv_op ops[MAX_OPS];
    size_t n;
    atomic_int calls;
    int rc;
};

static atomic_int g_done;

static void on_done(kv_op *ops, size_t n, int rc, const kv_commit_info *info, void *ctx)
{
    struct batch *b = ctx;
    (void)ops;
    (void)n;
    (void)info;
    b->rc = rc;
    atomic_fetch_add(&b->calls, 1);
    atomic_fetch_add(&g_done, 1);
}

static kv_op op(kv_write_type type, const char *key, const char *val, kv_cond cond, uint32_t crc)
{
    return (kv_op){.type = type,
                   .key = key,
                   .key_len = strlen(key),
                   .val = val,
                   .val_len = val ? strlen(val) : 0,
                   .cond = cond,
                   .cond_crc = crc};
}

static uint32_t crc_of(const char *s)
{
    return record_crc_update(0, s, strlen(s));
}

static void wait_until(bool (*cond)(void *), void *arg, const char *what)
{
    uint64_t until = tu_now_ms() + TU_WAIT_MS;
    while (!cond(arg)) {
        if (tu_now_ms() > until)
            fail_msg("%s: not reached after %d ms", what, TU_WAIT_MS);
        tu_pause_ms(1);
    }
}

static bool gate_entered(void *arg)
{
    struct gate *g = arg;
    pthread_mutex_lock(&g->mu);
    bool e = g->entered;
    pthread_mutex_unlock(&g->mu);
    return e;
}

struct want_done {
    int n;
};

static bool all_done(void *arg)
{
    return atomic_load(&g_done) >= ((struct want_done *)arg)->n;
}

static size_t record_len(const kv_op *o)
{
    return record_size(o->key_len, o->type == KV_WRITE_PUT ? o->val_len : 0);
}

/*
 * Holds a first batch (first) in its fdatasync, submits batches[0..n) while
 * it is held, opens the gate, and checks that they were one round: one
 * pwritev of want_bytes.
 */
static void run_one_round(kv_store *s, struct batch *first, struct batch *batches, int n,
                          size_t want_bytes)
{
    struct gate *g = &g_gate;
    atomic_store(&g_done, 0);
    pthread_mutex_lock(&g->mu);
    g->armed = true;
    pthread_mutex_unlock(&g->mu);
    assert_kv_ok(kv_write_async(s, first->ops, first->n, on_done, first));
    wait_until(gate_entered, g, "the first round's fdatasync");
    for (int i = 0; i < n; i++)
        assert_kv_ok(kv_write_async(s, batches[i].ops, batches[i].n, on_done, &batches[i]));
    assert_int_equal(atomic_load(&s->queue_len), (size_t)n);
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    struct want_done w = {.n = n + 1};
    wait_until(all_done, &w, "the callbacks");
    pthread_mutex_lock(&g->mu);
    int nwrites = g->nwrites;
    size_t round = nwrites == 2 ? g->writes[1] : 0;
    g->armed = false;
    pthread_mutex_unlock(&g->mu);
    if (nwrites != 2 || round != want_bytes)
        fail_msg("the batches were not one round: %d writes (the first's and theirs wanted), "
                 "%zu bytes written by theirs, wanted %zu",
                 nwrites, round, want_bytes);
    assert_kv_ok(first->rc);
}

static void test_conditions_see_the_batches_before_them_in_their_round(void **state)
{
    struct tu_fixture *fx = *state;
    gate_init(&g_gate);
    kv_options o;
    kv_options_init(&o);
    o.compaction_interval_secs = 0;
    o.segment_preallocate = 0; /* its zeros are pwritevs and fdatasyncs of their own */
    o.io = &g_gate.io;
    kv_store *s = tu_open_tracked(fx->dir, &o);
    assert_kv_ok(kv_put(s, "k", 1, "v0", 2));

    struct batch first = {.ops = {op(KV_WRITE_PUT, "k", "v1", KV_IF_ANY, 0)}, .n = 1};
    struct batch b[] = {
        /* 0: v1 is durable and indexed by now: holds. */
        {.ops = {op(KV_WRITE_PUT, "k", "v2", KV_IF_CRC, crc_of("v1"))}, .n = 1},
        /* 1: batch 0 made it v2 within this round: fails. */
        {.ops = {op(KV_WRITE_PUT, "k", "v3", KV_IF_CRC, crc_of("v1"))}, .n = 1},
        /* 2: present (v2): holds; deletes it. */
        {.ops = {op(KV_WRITE_DEL, "k", NULL, KV_IF_PRESENT, 0)}, .n = 1},
        /* 3: absent since batch 2: holds. */
        {.ops = {op(KV_WRITE_PUT, "k", "v5", KV_IF_ABSENT, 0)}, .n = 1},
        /* 4: a check that batch 3 makes fail. */
        {.ops = {op(KV_WRITE_CHECK, "k", NULL, KV_IF_ABSENT, 0)}, .n = 1},
        /* 5: a put guarded by a check of another key: both hold. */
        {.ops = {op(KV_WRITE_PUT, "j", "x", KV_IF_ANY, 0),
                 op(KV_WRITE_CHECK, "k", NULL, KV_IF_CRC, crc_of("v5"))},
         .n = 2},
        /* 6: the same guard failing: the put of j is not made. */
        {.ops = {op(KV_WRITE_PUT, "j", "y", KV_IF_ANY, 0),
                 op(KV_WRITE_CHECK, "k", NULL, KV_IF_ABSENT, 0)},
         .n = 2},
        /* 7: the second delete of k in the round finds nothing. */
        {.ops = {op(KV_WRITE_DEL, "k", NULL, KV_IF_ANY, 0),
                 op(KV_WRITE_DEL, "k", NULL, KV_IF_ANY, 0)},
         .n = 2},
    };
    int n = (int)(sizeof(b) / sizeof(b[0]));
    size_t want = record_len(&b[0].ops[0]) + record_len(&b[2].ops[0]) + record_len(&b[3].ops[0]) +
                  record_len(&b[5].ops[0]) + record_len(&b[7].ops[0]);
    run_one_round(s, &first, b, n, want);

    int want_rc[] = {0, KV_ECONDITION, 0, 0, KV_ECONDITION, 0, KV_ECONDITION, 0};
    for (int i = 0; i < n; i++) {
        assert_int_equal(atomic_load(&b[i].calls), 1);
        if (b[i].rc != want_rc[i])
            fail_msg("batch %d: rc %d (%s), wanted %d", i, b[i].rc, kv_strerror(b[i].rc),
                     want_rc[i]);
    }
    assert_int_equal(b[1].ops[0].rc, KV_ECONDITION);
    assert_int_equal(b[4].ops[0].rc, KV_ECONDITION);
    assert_int_equal(b[6].ops[0].rc, 0);
    assert_int_equal(b[6].ops[1].rc, KV_ECONDITION);
    assert_int_equal(b[7].ops[0].rc, 0);
    assert_int_equal(b[7].ops[1].rc, KV_ENOTFOUND);
    assert_kv_rc(kv_exists(s, "k", 1), KV_ENOTFOUND);
    tu_assert_str(s, "j", "x");

    /* The same outcome after the log is replayed. */
    assert_kv_ok(tu_close_tracked(s));
    s = tu_open_tracked(fx->dir, &o);
    assert_kv_rc(kv_exists(s, "k", 1), KV_ENOTFOUND);
    tu_assert_str(s, "j", "x");
    assert_kv_ok(tu_close_tracked(s));
}

static void test_of_many_creates_of_one_key_in_a_round_exactly_one_wins(void **state)
{
    struct tu_fixture *fx = *state;
    gate_init(&g_gate);
    kv_options o;
    kv_options_init(&o);
    o.compaction_interval_secs = 0;
    o.segment_preallocate = 0; /* its zeros are pwritevs and fdatasyncs of their own */
    o.io = &g_gate.io;
    kv_store *s = tu_open_tracked(fx->dir, &o);
    struct batch first = {.ops = {op(KV_WRITE_PUT, "other", "x", KV_IF_ANY, 0)}, .n = 1};
    static const char *vals[] = {"a", "b", "c", "d", "e", "f"};
    struct batch b[6];
    for (int i = 0; i < 6; i++)
        b[i] = (struct batch){.ops = {op(KV_WRITE_PUT, "new", vals[i], KV_IF_ABSENT, 0)}, .n = 1};
    run_one_round(s, &first, b, 6, record_len(&b[0].ops[0]));
    assert_kv_ok(b[0].rc);
    for (int i = 1; i < 6; i++)
        assert_int_equal(b[i].rc, KV_ECONDITION);
    tu_assert_str(s, "new", "a");
    assert_kv_ok(tu_close_tracked(s));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conditions_see_the_batches_before_them_in_their_round,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_of_many_creates_of_one_key_in_a_round_exactly_one_wins,
                                        tu_setup, tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
