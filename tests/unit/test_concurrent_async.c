/*
 * test_concurrent_async.c - kv_write_async's contract: the callback runs
 * exactly once per accepted batch, on the store's commit thread (never the
 * submitter's), in the order batches were sequenced, after the batch is
 * readable; under load from several threads mixing asynchronous and
 * synchronous writes; at kv_close, which completes every accepted batch;
 * and a callback may submit the next batch.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define SUBMITTERS    4
#define PER_SUBMITTER 400
#define CLOSE_BATCHES 1000
#define CHAIN_LENGTH  200

/* One asynchronous write and what its callback saw. */
struct job {
    struct shared *sh;
    char key[24];
    char val[24];
    kv_op op;
    atomic_int calls;
    int rc;
    kv_commit_info info;
    pthread_t submitter;
    bool readable; /* the value read back inside the callback */
};

struct shared {
    kv_store *s;
    atomic_int done;
    pthread_mutex_t mu;
    bool have_thread;
    pthread_t commit_thread;
    atomic_int wrong_thread; /* callbacks on a submitter's or a second thread */
    atomic_int bad_args;     /* callbacks given other ops than their batch's */
};

static void note_thread(struct shared *sh, struct job *j)
{
    pthread_t self = pthread_self();
    pthread_mutex_lock(&sh->mu);
    if (!sh->have_thread) {
        sh->have_thread = true;
        sh->commit_thread = self;
    }
    if (!pthread_equal(sh->commit_thread, self) || pthread_equal(j->submitter, self))
        atomic_fetch_add(&sh->wrong_thread, 1);
    pthread_mutex_unlock(&sh->mu);
}

static void on_done(kv_op *ops, size_t n, int rc, const kv_commit_info *info, void *ctx)
{
    struct job *j = ctx;
    /* cmocka's assertions work on the test's thread only: count, check after. */
    if (ops != &j->op || n != 1 || info == NULL) {
        atomic_fetch_add(&j->sh->bad_args, 1);
        atomic_fetch_add(&j->sh->done, 1);
        return;
    }
    note_thread(j->sh, j);
    j->rc = rc;
    j->info = *info;
    void *v = NULL;
    size_t len = 0;
    /* Reads may be called from a callback, and see the batch. */
    if (kv_get(j->sh->s, j->key, strlen(j->key), &v, &len) == 0) {
        j->readable = len == strlen(j->val) && memcmp(v, j->val, len) == 0;
        kv_free(v);
    }
    atomic_fetch_add(&j->calls, 1);
    atomic_fetch_add(&j->sh->done, 1);
}

static void job_init(struct job *j, struct shared *sh, const char *prefix, int i)
{
    j->sh = sh;
    snprintf(j->key, sizeof(j->key), "%s-%d", prefix, i);
    snprintf(j->val, sizeof(j->val), "value-%d", i);
    j->op = (kv_op){.type = KV_WRITE_PUT,
                    .key = j->key,
                    .key_len = strlen(j->key),
                    .val = j->val,
                    .val_len = strlen(j->val)};
    atomic_init(&j->calls, 0);
    j->submitter = pthread_self();
}

static void wait_done(struct shared *sh, int want)
{
    uint64_t until = tu_now_ms() + TU_WAIT_MS;
    while (atomic_load(&sh->done) < want) {
        if (tu_now_ms() > until)
            fail_msg("%d of %d callbacks after %d ms", atomic_load(&sh->done), want, TU_WAIT_MS);
        tu_pause_ms(1);
    }
}

static void shared_init(struct shared *sh, kv_store *s)
{
    memset(sh, 0, sizeof(*sh));
    sh->s = s;
    pthread_mutex_init(&sh->mu, NULL);
}

/* ---- under load */

struct submitter {
    struct shared *sh;
    struct job *jobs;
    int index;
    int sync_rc;
    pthread_t thread;
};

static void *submit_main(void *arg)
{
    struct submitter *t = arg;
    char prefix[16];
    snprintf(prefix, sizeof(prefix), "t%d", t->index);
    for (int i = 0; i < PER_SUBMITTER; i++) {
        struct job *j = &t->jobs[i];
        job_init(j, t->sh, prefix, i);
        int rc = kv_write_async(t->sh->s, &j->op, 1, on_done, j);
        if (rc != 0) {
            t->sync_rc = rc;
            return NULL;
        }
        /* Synchronous writes mixed in: they share the rounds. */
        if (i % 10 == 0) {
            char k[32];
            snprintf(k, sizeof(k), "sync-%d-%d", t->index, i);
            rc = kv_put(t->sh->s, k, strlen(k), "s", 1);
            if (rc != 0) {
                t->sync_rc = rc;
                return NULL;
            }
        }
    }
    return NULL;
}

static void test_each_callback_runs_once_on_the_commit_thread_under_load(void **state)
{
    struct tu_fixture *fx = *state;
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 64u * 1024;
    o.compaction_interval_secs = 0;
    struct shared sh;
    shared_init(&sh, tu_open_tracked(fx->dir, &o));
    struct submitter t[SUBMITTERS];
    for (int i = 0; i < SUBMITTERS; i++) {
        t[i] = (struct submitter){.sh = &sh, .index = i};
        t[i].jobs = calloc(PER_SUBMITTER, sizeof(struct job));
        assert_non_null(t[i].jobs);
        assert_int_equal(pthread_create(&t[i].thread, NULL, submit_main, &t[i]), 0);
    }
    for (int i = 0; i < SUBMITTERS; i++) {
        pthread_join(t[i].thread, NULL);
        assert_kv_ok(t[i].sync_rc);
    }
    wait_done(&sh, SUBMITTERS * PER_SUBMITTER);
    assert_int_equal(atomic_load(&sh.bad_args), 0);
    assert_int_equal(atomic_load(&sh.wrong_thread), 0);
    for (int i = 0; i < SUBMITTERS; i++) {
        kv_commit_info prev = {0};
        for (int k = 0; k < PER_SUBMITTER; k++) {
            struct job *j = &t[i].jobs[k];
            assert_int_equal(atomic_load(&j->calls), 1);
            assert_kv_ok(j->rc);
            assert_kv_ok(j->op.rc);
            assert_true(j->readable);
            /* One thread's batches are sequenced in its order, each ending
             * further along the log. */
            assert_true(j->info.seg > prev.seg ||
                        (j->info.seg == prev.seg && j->info.end > prev.end));
            prev = j->info;
            tu_assert_str(sh.s, j->key, j->val);
        }
    }
    kv_write_stats ws;
    assert_kv_ok(kv_get_write_stats(sh.s, &ws));
    assert_true(ws.batches >= (uint64_t)SUBMITTERS * PER_SUBMITTER);
    assert_true(ws.writes_per_sync.total > 0);
    assert_kv_ok(tu_close_tracked(sh.s));
    /* The callbacks were called once more nowhere. */
    for (int i = 0; i < SUBMITTERS; i++) {
        for (int k = 0; k < PER_SUBMITTER; k++)
            assert_int_equal(atomic_load(&t[i].jobs[k].calls), 1);
        free(t[i].jobs);
    }
    pthread_mutex_destroy(&sh.mu);
}

/* ---- at close */

static void test_close_completes_every_accepted_batch(void **state)
{
    struct tu_fixture *fx = *state;
    kv_options o;
    kv_options_init(&o);
    o.compaction_interval_secs = 0;
    struct shared sh;
    shared_init(&sh, tu_open_tracked(fx->dir, &o));
    struct job *jobs = calloc(CLOSE_BATCHES, sizeof(*jobs));
    assert_non_null(jobs);
    for (int i = 0; i < CLOSE_BATCHES; i++) {
        job_init(&jobs[i], &sh, "close", i);
        assert_kv_ok(kv_write_async(sh.s, &jobs[i].op, 1, on_done, &jobs[i]));
    }
    assert_kv_ok(tu_close_tracked(sh.s));
    /* kv_close returned: every callback has run, once. */
    assert_int_equal(atomic_load(&sh.done), CLOSE_BATCHES);
    assert_int_equal(atomic_load(&sh.bad_args), 0);
    for (int i = 0; i < CLOSE_BATCHES; i++) {
        assert_int_equal(atomic_load(&jobs[i].calls), 1);
        assert_kv_ok(jobs[i].rc);
    }
    kv_store *s = tu_open_tracked(fx->dir, &o);
    for (int i = 0; i < CLOSE_BATCHES; i++)
        tu_assert_str(s, jobs[i].key, jobs[i].val);
    assert_kv_ok(tu_close_tracked(s));
    free(jobs);
    pthread_mutex_destroy(&sh.mu);
}

/* ---- a callback that submits the next batch */

struct chain {
    kv_store *s;
    char key[24];
    char val[24];
    kv_op op;
    int next;  /* links made so far */
    int limit; /* stop after this many; 0: never */
    atomic_int calls;
    atomic_int busy; /* submissions refused with KV_EBUSY */
    atomic_int failures;
    atomic_bool over;
};

static void chain_next(kv_op *ops, size_t n, int rc, const kv_commit_info *info, void *ctx);

static int chain_submit(struct chain *c)
{
    snprintf(c->key, sizeof(c->key), "link-%d", c->next);
    snprintf(c->val, sizeof(c->val), "%d", c->next);
    /* Each link is created only if absent: the chain never repeats one. */
    c->op = (kv_op){.type = KV_WRITE_PUT,
                    .key = c->key,
                    .key_len = strlen(c->key),
                    .val = c->val,
                    .val_len = strlen(c->val),
                    .cond = KV_IF_ABSENT};
    c->next++;
    return kv_write_async(c->s, &c->op, 1, chain_next, c);
}

static void chain_next(kv_op *ops, size_t n, int rc, const kv_commit_info *info, void *ctx)
{
    struct chain *c = ctx;
    (void)ops;
    (void)n;
    (void)info;
    atomic_fetch_add(&c->calls, 1);
    if (rc != 0)
        atomic_fetch_add(&c->failures, 1);
    if (c->limit != 0 && c->next == c->limit) {
        atomic_store(&c->over, true);
        return;
    }
    int r = chain_submit(c);
    if (r == KV_EBUSY) {
        atomic_fetch_add(&c->busy, 1);
        atomic_store(&c->over, true);
    } else if (r != 0) {
        atomic_fetch_add(&c->failures, 1);
        atomic_store(&c->over, true);
    }
}

static void test_a_callback_may_submit_the_next_batch(void **state)
{
    struct tu_fixture *fx = *state;
    kv_options o;
    kv_options_init(&o);
    o.sync_mode = KV_SYNC_NONE;
    o.compaction_interval_secs = 0;
    struct chain *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->s = tu_open_tracked(fx->dir, &o);
    c->limit = CHAIN_LENGTH;
    assert_kv_ok(chain_submit(c));
    uint64_t until = tu_now_ms() + TU_WAIT_MS;
    while (!atomic_load(&c->over)) {
        if (tu_now_ms() > until)
            fail_msg("the chain stopped at %d links", atomic_load(&c->calls));
        tu_pause_ms(1);
    }
    assert_int_equal(atomic_load(&c->calls), CHAIN_LENGTH);
    assert_int_equal(atomic_load(&c->failures), 0);
    for (int i = 0; i < CHAIN_LENGTH; i++) {
        char k[24], v[24];
        snprintf(k, sizeof(k), "link-%d", i);
        snprintf(v, sizeof(v), "%d", i);
        tu_assert_str(c->s, k, v);
    }
    assert_kv_ok(tu_close_tracked(c->s));
    free(c);
}

static void test_a_callback_submitting_during_close_is_refused_and_close_returns(void **state)
{
    struct tu_fixture *fx = *state;
    kv_options o;
    kv_options_init(&o);
    o.sync_mode = KV_SYNC_NONE;
    o.compaction_interval_secs = 0;
    struct chain *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->s = tu_open_tracked(fx->dir, &o);
    c->limit = 0; /* for ever, until refused */
    assert_kv_ok(chain_submit(c));
    uint64_t until = tu_now_ms() + TU_WAIT_MS;
    while (atomic_load(&c->calls) < 50) {
        if (tu_now_ms() > until)
            fail_msg("the chain stopped at %d links", atomic_load(&c->calls));
        tu_pause_ms(1);
    }
    assert_kv_ok(tu_close_tracked(c->s));
    assert_true(atomic_load(&c->over));
    assert_int_equal(atomic_load(&c->busy), 1);
    assert_int_equal(atomic_load(&c->failures), 0);
    /* Every link accepted was completed: the refused one is the last made. */
    assert_int_equal(atomic_load(&c->calls), c->next - 1);
    c->s = tu_open_tracked(fx->dir, &o);
    char k[24];
    snprintf(k, sizeof(k), "link-%d", c->next - 2);
    assert_kv_ok(kv_exists(c->s, k, strlen(k)));
    snprintf(k, sizeof(k), "link-%d", c->next - 1);
    assert_kv_rc(kv_exists(c->s, k, strlen(k)), KV_ENOTFOUND);
    assert_kv_ok(tu_close_tracked(c->s));
    free(c);
}

static void test_refused_submissions_never_call_back(void **state)
{
    struct tu_fixture *fx = *state;
    kv_store *s = tu_open_tracked(fx->dir, NULL);
    struct shared sh;
    shared_init(&sh, s);
    struct job j;
    job_init(&j, &sh, "bad", 0);
    j.op.key_len = 0;
    assert_kv_rc(kv_write_async(s, &j.op, 1, on_done, &j), KV_EINVAL);
    job_init(&j, &sh, "bad", 1);
    assert_kv_rc(kv_write_async(s, &j.op, 1, NULL, &j), KV_EINVAL);
    assert_kv_rc(kv_write_async(s, &j.op, 0, on_done, &j), KV_EINVAL);
    assert_kv_ok(tu_close_tracked(s));
    assert_int_equal(atomic_load(&j.calls), 0);
    pthread_mutex_destroy(&sh.mu);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_each_callback_runs_once_on_the_commit_thread_under_load, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_close_completes_every_accepted_batch, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_a_callback_may_submit_the_next_batch, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_callback_submitting_during_close_is_refused_and_close_returns, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_refused_submissions_never_call_back, tu_setup,
                                        tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
