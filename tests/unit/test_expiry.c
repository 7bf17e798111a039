/*
 * test_expiry.c - expiry end to end through the public API, on a clock the
 * test moves (kv_io.clock_ms): a model-based test (random puts with and
 * without an expiry, puts that keep it, deletes, expiry changes, the clock
 * moving, reopen through the snapshot and through a full replay,
 * compaction, sweeps) that compares every read with an in-memory model;
 * conditions on expired keys; KV_KEEP_EXPIRY; kv_set_expiry's flags;
 * the snapshot and the sweep; and compaction never bringing an older value
 * of an expired key back, with that older value in a segment left outside
 * the compaction.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"
#include "testutil.h"

#define T0 1700000000000ull /* the test clock's start, ms since the epoch */

/* An I/O table with a clock the test sets, and segment unlinks that fail
 * while armed (a compaction's inputs then stay on disk). */
struct test_io {
    struct kv_io io;
    atomic_uint_fast64_t now;
    bool refuse_unlink;
    int refused;
};

static uint64_t test_clock(void *ctx)
{
    return atomic_load(&((struct test_io *)ctx)->now);
}

static int test_unlink(void *ctx, const char *path)
{
    struct test_io *t = ctx;
    if (t->refuse_unlink && strstr(path, "/segment-")) {
        t->refused++;
        errno = EACCES;
        return -1;
    }
    return kv__io_os.unlink(NULL, path);
}

static void test_io_init(struct test_io *t)
{
    memset(t, 0, sizeof(*t));
    t->io.ctx = t;
    t->io.clock_ms = test_clock;
    t->io.unlink = test_unlink;
    atomic_store(&t->now, T0);
}

static kv_options test_options(struct test_io *t)
{
    kv_options o;
    kv_options_init(&o);
    o.segment_size = 4096;
    o.compaction_interval_secs = 0;
    o.expiry_sweep_interval_ms = 0; /* sweeps only when the test asks */
    o.io = &t->io;
    return o;
}

static int put_exp(kv_store *s, const char *key, const char *val, uint64_t at)
{
    kv_op op = {.type = KV_WRITE_PUT,
                .key = key,
                .key_len = strlen(key),
                .val = val,
                .val_len = strlen(val),
                .expire_at_ms = at};
    return kv_write(s, &op, 1);
}

static void remove_snapshot(const char *dir)
{
    char *path = tu_path(dir, "index.snapshot");
    unlink(path);
    free(path);
}

static void assert_absent(kv_store *s, const char *key)
{
    void *v = NULL;
    size_t n = 0;
    size_t len = strlen(key);
    assert_kv_rc(kv_get(s, key, len, &v, &n), KV_ENOTFOUND);
    assert_kv_rc(kv_exists(s, key, len), KV_ENOTFOUND);
    kv_stat_info st;
    assert_kv_rc(kv_stat(s, key, len, &st), KV_ENOTFOUND);
}

static uint64_t expiry_of(kv_store *s, const char *key)
{
    kv_stat_info st;
    assert_kv_ok(kv_stat(s, key, strlen(key), &st));
    return st.expire_at_ms;
}

static int count_key(const void *key, size_t key_len, void *ctx)
{
    (void)key;
    (void)key_len;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t listed(kv_store *s)
{
    size_t n = 0;
    assert_kv_ok(kv_list(s, NULL, 0, NULL, 0, 0, count_key, &n));
    return n;
}

/* ---- the model */

#define NKEYS 48

struct model {
    bool present[NKEYS];
    char val[NKEYS][32];
    uint64_t expire_at[NKEYS];
};

static uint64_t rng(uint64_t *x)
{
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return *x >> 17;
}

static bool live(const struct model *m, size_t i, uint64_t now)
{
    return m->present[i] && (m->expire_at[i] == 0 || m->expire_at[i] > now);
}

struct listing {
    const struct model *m;
    uint64_t now;
    size_t n;
};

static int check_listed(const void *key, size_t key_len, const void *val, size_t val_len, void *ctx)
{
    struct listing *l = ctx;
    char k[16];
    assert_true(key_len < sizeof(k));
    memcpy(k, key, key_len);
    k[key_len] = 0;
    size_t i = (size_t)strtoul(k + 1, NULL, 10);
    assert_true(live(l->m, i, l->now));
    if (val) {
        assert_int_equal(val_len, strlen(l->m->val[i]));
        assert_memory_equal(val, l->m->val[i], val_len);
    }
    l->n++;
    return 0;
}

/* Every read of every key agrees with the model at the clock's time. */
static void check_model(kv_store *s, const struct model *m, uint64_t now)
{
    size_t n_live = 0, n_expiring = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%02zu", i);
        if (!live(m, i, now)) {
            assert_absent(s, key);
            continue;
        }
        n_live++;
        n_expiring += m->expire_at[i] != 0;
        tu_assert_str(s, key, m->val[i]);
        assert_kv_ok(kv_exists(s, key, strlen(key)));
        assert_int_equal(expiry_of(s, key), m->expire_at[i]);
    }
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_int_equal(st.keys, n_live);
    assert_int_equal(st.expiring_keys, n_expiring);
    struct listing l = {.m = m, .now = now};
    kv_range_opts r = {0};
    assert_kv_ok(kv_range(s, &r, check_listed, &l));
    assert_int_equal(l.n, n_live);
    l.n = 0;
    r.flags = KV_RANGE_VALUES;
    assert_kv_ok(kv_range(s, &r, check_listed, &l));
    assert_int_equal(l.n, n_live);
    /* A limit counts only live keys. */
    size_t got = 0;
    assert_kv_ok(kv_list(s, NULL, 0, NULL, 0, n_live ? n_live : 1, count_key, &got));
    assert_int_equal(got, n_live);
}

/* One random change, applied to the store and the model alike. */
static void random_step(kv_store *s, struct model *m, struct test_io *t, uint64_t *x)
{
    uint64_t now = atomic_load(&t->now);
    size_t i = rng(x) % NKEYS;
    char key[16];
    snprintf(key, sizeof(key), "k%02zu", i);
    size_t klen = strlen(key);
    unsigned what = (unsigned)(rng(x) % 100);
    if (what < 25) { /* a put without expiry */
        snprintf(m->val[i], sizeof(m->val[i]), "v%llu", (unsigned long long)rng(x));
        assert_kv_ok(kv_put(s, key, klen, m->val[i], strlen(m->val[i])));
        m->present[i] = true;
        m->expire_at[i] = 0;
    } else if (what < 50) { /* a put with one, some in the past */
        snprintf(m->val[i], sizeof(m->val[i]), "e%llu", (unsigned long long)rng(x));
        uint64_t at = now - 5 + rng(x) % 60;
        assert_kv_ok(put_exp(s, key, m->val[i], at));
        m->present[i] = true;
        m->expire_at[i] = at;
    } else if (what < 60) { /* a put that keeps the expiry */
        bool was = live(m, i, now);
        snprintf(m->val[i], sizeof(m->val[i]), "p%llu", (unsigned long long)rng(x));
        kv_op op = {.type = KV_WRITE_PUT,
                    .key = key,
                    .key_len = klen,
                    .val = m->val[i],
                    .val_len = strlen(m->val[i]),
                    .flags = KV_KEEP_EXPIRY};
        assert_kv_ok(kv_write(s, &op, 1));
        m->expire_at[i] = was ? m->expire_at[i] : 0;
        m->present[i] = true;
    } else if (what < 70) { /* a delete */
        assert_kv_rc(kv_delete(s, key, klen), live(m, i, now) ? 0 : KV_ENOTFOUND);
        m->present[i] = false;
    } else if (what < 80) { /* an expiry set or removed, the value kept */
        uint64_t at = rng(x) % 4 == 0 ? 0 : now - 3 + rng(x) % 60;
        int want = !live(m, i, now)                    ? KV_ENOTFOUND
                   : (at == 0 && m->expire_at[i] == 0) ? KV_ECONDITION
                                                       : 0;
        assert_kv_rc(kv_set_expiry(s, key, klen, at, 0), want);
        if (want == 0)
            m->expire_at[i] = at;
    } else if (what < 90) { /* time passes */
        atomic_fetch_add(&t->now, rng(x) % 20);
    } else if (what < 93) {
        assert_kv_ok(kv_compact(s));
    } else if (what < 96) {
        uint64_t removed = 0;
        assert_kv_ok(kv_sweep_expired(s, &removed));
    } else {
        assert_kv_ok(kv_save_snapshot(s));
    }
}

static void test_every_read_agrees_with_a_model_as_time_passes(void **state)
{
    struct tu_fixture *f = *state;
    struct test_io t;
    test_io_init(&t);
    kv_options o = test_options(&t);
    kv_store *s = tu_open_tracked(f->dir, &o);
    struct model *m = calloc(1, sizeof(*m));
    uint64_t x = 42;
    for (int round = 0; round < 12; round++) {
        for (int step = 0; step < 150; step++) {
            random_step(s, m, &t, &x);
            if (step % 10 == 0)
                check_model(s, m, atomic_load(&t.now));
        }
        check_model(s, m, atomic_load(&t.now));
        /* Reopen: through the snapshot, or (every third) a replay of all. */
        assert_kv_ok(tu_close_tracked(s));
        if (round % 3 == 2)
            remove_snapshot(f->dir);
        s = tu_open_tracked(f->dir, &o);
        check_model(s, m, atomic_load(&t.now));
    }
    assert_kv_ok(tu_close_tracked(s));
    free(m);
}

/* ---- one behaviour each */

static void test_expired_key_is_absent_for_every_read_and_condition(void **state)
{
    struct tu_fixture *f = *state;
    struct test_io t;
    test_io_init(&t);
    kv_options o = test_options(&t);
    kv_store *s = tu_open_tracked(f->dir, &o);
    assert_kv_ok(put_exp(s, "k", "soon gone", T0 + 100));
    assert_kv_ok(kv_exists(s, "k", 1));
    assert_int_equal(expiry_of(s, "k"), T0 + 100);
    atomic_store(&t.now, T0 + 100); /* at the expiry: gone */
    assert_absent(s, "k");
    assert_int_equal(listed(s), 0);
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_int_equal(st.keys, 0);
    /* Conditions take it as absent. */
    kv_op present = {.type = KV_WRITE_PUT, .key = "k", .key_len = 1, .cond = KV_IF_PRESENT};
    assert_kv_rc(kv_write(s, &present, 1), KV_ECONDITION);
    assert_kv_rc(kv_delete(s, "k", 1), KV_ENOTFOUND);
    kv_op absent = {.type = KV_WRITE_PUT,
                    .key = "k",
                    .key_len = 1,
                    .val = "new",
                    .val_len = 3,
                    .cond = KV_IF_ABSENT};
    assert_kv_ok(kv_write(s, &absent, 1));
    tu_assert_str(s, "k", "new");
    assert_int_equal(expiry_of(s, "k"), 0); /* a plain put clears it */
    assert_kv_ok(tu_close_tracked(s));
}

static void test_put_keeping_expiry_keeps_it_and_a_plain_put_clears_it(void **state)
{
    struct tu_fixture *f = *state;
    struct test_io t;
    test_io_init(&t);
    kv_options o = test_options(&t);
    kv_store *s = tu_open_tracked(f->dir, &o);
    assert_kv_ok(put_exp(s, "k", "one", T0 + 1000));
    kv_op keep[2] = {
        {.type = KV_WRITE_PUT,
         .key = "k",
         .key_len = 1,
         .val = "two",
         .val_len = 3,
         .flags = KV_KEEP_EXPIRY},
        {.type = KV_WRITE_PUT,
         .key = "j",
         .key_len = 1,
         .val = "none",
         .val_len = 4,
         .flags = KV_KEEP_EXPIRY},
    };
    assert_kv_ok(kv_write(s, keep, 2));
    tu_assert_str(s, "k", "two");
    assert_int_equal(expiry_of(s, "k"), T0 + 1000);
    assert_int_equal(expiry_of(s, "j"), 0);
    /* Kept from an earlier op of the same batch. */
    kv_op chain[2] = {
        {.type = KV_WRITE_PUT,
         .key = "j",
         .key_len = 1,
         .val = "a",
         .val_len = 1,
         .expire_at_ms = T0 + 5000},
        {.type = KV_WRITE_PUT,
         .key = "j",
         .key_len = 1,
         .val = "b",
         .val_len = 1,
         .flags = KV_KEEP_EXPIRY},
    };
    assert_kv_ok(kv_write(s, chain, 2));
    tu_assert_str(s, "j", "b");
    assert_int_equal(expiry_of(s, "j"), T0 + 5000);
    assert_kv_ok(kv_put(s, "k", 1, "three", 5));
    assert_int_equal(expiry_of(s, "k"), 0);
    atomic_store(&t.now, T0 + 5000);
    tu_assert_str(s, "k", "three");
    assert_absent(s, "j");
    assert_kv_ok(tu_close_tracked(s));
}

/* KV_IF_EXPIRY: a CHECK that the key has the expiry it was read with, decided
 * with the batch, against the batch's own earlier ops too. */
static void test_a_check_of_the_expiry_holds_only_for_the_expiry_the_key_has(void **state)
{
    struct tu_fixture *f = *state;
    struct test_io t;
    test_io_init(&t);
    kv_options o = test_options(&t);
    kv_store *s = tu_open_tracked(f->dir, &o);
    assert_kv_ok(put_exp(s, "k", "v", T0 + 1000));
    assert_kv_ok(kv_put(s, "p", 1, "v", 1));
    kv_op check = {.type = KV_WRITE_CHECK,
                   .key = "k",
                   .key_len = 1,
                   .cond = KV_IF_EXPIRY,
                   .expire_at_ms = T0 + 1000};
    kv_op put = {.type = KV_WRITE_PUT, .key = "k", .key_len = 1, .val = "w", .val_len = 1};
    kv_op ops[2] = {check, put};
    assert_kv_ok(kv_write(s, ops, 2));
    tu_assert_str(s, "k", "w"); /* the plain put cleared the expiry */
    ops[0] = check;
    ops[1] = put;
    assert_kv_rc(kv_write(s, ops, 2), KV_ECONDITION);
    assert_kv_rc(ops[0].rc, KV_ECONDITION);
    kv_op none = {.type = KV_WRITE_CHECK, .key = "p", .key_len = 1, .cond = KV_IF_EXPIRY};
    assert_kv_ok(kv_write(s, &none, 1));
    kv_op absent = {.type = KV_WRITE_CHECK, .key = "x", .key_len = 1, .cond = KV_IF_EXPIRY};
    assert_kv_rc(kv_write(s, &absent, 1), KV_ECONDITION);
    /* Against an earlier op of the same batch. */
    kv_op chain[2] = {{.type = KV_WRITE_PUT,
                       .key = "p",
                       .key_len = 1,
                       .val = "v",
                       .val_len = 1,
                       .expire_at_ms = T0 + 7},
                      {.type = KV_WRITE_CHECK,
                       .key = "p",
                       .key_len = 1,
                       .cond = KV_IF_EXPIRY,
                       .expire_at_ms = T0 + 7}};
    assert_kv_ok(kv_write(s, chain, 2));
    assert_int_equal(expiry_of(s, "p"), T0 + 7);
    /* Only a CHECK compares expiries. */
    kv_op on_put = put;
    on_put.cond = KV_IF_EXPIRY;
    assert_kv_rc(kv_write(s, &on_put, 1), KV_EINVAL);
    kv_op on_del = {.type = KV_WRITE_DEL, .key = "p", .key_len = 1, .cond = KV_IF_EXPIRY};
    assert_kv_rc(kv_write(s, &on_del, 1), KV_EINVAL);
    kv_op crc_with_expiry = {.type = KV_WRITE_CHECK,
                             .key = "p",
                             .key_len = 1,
                             .cond = KV_IF_PRESENT,
                             .expire_at_ms = T0 + 7};
    assert_kv_rc(kv_write(s, &crc_with_expiry, 1), KV_EINVAL);
    assert_kv_ok(tu_close_tracked(s));
}

static void test_set_expiry_follows_the_flags_and_keeps_the_value(void **state)
{
    struct tu_fixture *f = *state;
    struct test_io t;
    test_io_init(&t);
    kv_options o = test_options(&t);
    kv_store *s = tu_open_tracked(f->dir, &o);
    assert_kv_rc(kv_set_expiry(s, "k", 1, T0 + 10, 0), KV_ENOTFOUND);
    assert_kv_ok(kv_put(s, "k", 1, "value", 5));
    assert_kv_rc(kv_set_expiry(s, "k", 1, 0, 0), KV_ECONDITION); /* nothing to remove */
    assert_kv_rc(kv_set_expiry(s, "k", 1, T0 + 10, KV_EXPIRY_XX), KV_ECONDITION);
    assert_kv_rc(kv_set_expiry(s, "k", 1, T0 + 10, KV_EXPIRY_GT), KV_ECONDITION);
    assert_kv_ok(kv_set_expiry(s, "k", 1, T0 + 100, KV_EXPIRY_LT));
    assert_kv_rc(kv_set_expiry(s, "k", 1, T0 + 50, KV_EXPIRY_NX), KV_ECONDITION);
    assert_kv_rc(kv_set_expiry(s, "k", 1, T0 + 50, KV_EXPIRY_GT), KV_ECONDITION);
    assert_kv_ok(kv_set_expiry(s, "k", 1, T0 + 200, KV_EXPIRY_GT | KV_EXPIRY_XX));
    assert_int_equal(expiry_of(s, "k"), T0 + 200);
    tu_assert_str(s, "k", "value");
    assert_kv_ok(kv_set_expiry(s, "k", 1, 0, 0)); /* PERSIST */
    assert_int_equal(expiry_of(s, "k"), 0);
    assert_kv_rc(kv_set_expiry(s, "k", 1, T0 + 1, KV_EXPIRY_NX | KV_EXPIRY_XX), KV_EINVAL);
    assert_kv_rc(kv_set_expiry(s, "k", 1, T0 + 1, KV_EXPIRY_GT | KV_EXPIRY_LT), KV_EINVAL);
    /* An expiry in the past deletes the key. */
    assert_kv_ok(kv_set_expiry(s, "k", 1, T0 - 1, 0));
    assert_absent(s, "k");
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_int_equal(st.deletes, 1);
    assert_kv_ok(tu_close_tracked(s));
}

static void test_snapshot_carries_expiries(void **state)
{
    struct tu_fixture *f = *state;
    struct test_io t;
    test_io_init(&t);
    kv_options o = test_options(&t);
    kv_store *s = tu_open_tracked(f->dir, &o);
    assert_kv_ok(put_exp(s, "short", "s", T0 + 10));
    assert_kv_ok(put_exp(s, "long", "l", T0 + 10000));
    assert_kv_ok(kv_put(s, "never", 5, "n", 1));
    assert_kv_ok(tu_close_tracked(s));
    s = tu_open_tracked(f->dir, &o);
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_true(st.snapshot_loaded);
    assert_int_equal(st.expiring_keys, 2);
    assert_int_equal(expiry_of(s, "long"), T0 + 10000);
    atomic_store(&t.now, T0 + 10);
    assert_absent(s, "short");
    assert_int_equal(listed(s), 2);
    assert_kv_ok(tu_close_tracked(s));
}

static void test_sweep_returns_the_memory_of_expired_keys(void **state)
{
    struct tu_fixture *f = *state;
    struct test_io t;
    test_io_init(&t);
    kv_options o = test_options(&t);
    kv_store *s = tu_open_tracked(f->dir, &o);
    kv_stats before;
    assert_kv_ok(kv_get_stats(s, &before));
    for (int i = 0; i < 2000; i++) {
        char key[32];
        snprintf(key, sizeof(key), "expiring-key-%05d", i);
        assert_kv_ok(put_exp(s, key, "v", T0 + 10 + (uint64_t)(i % 2) * 1000));
    }
    atomic_store(&t.now, T0 + 10);
    kv_stats mid;
    assert_kv_ok(kv_get_stats(s, &mid));
    assert_int_equal(mid.keys, 1000);
    uint64_t removed = 0;
    assert_kv_ok(kv_sweep_expired(s, &removed));
    assert_int_equal(removed, 1000);
    kv_stats after;
    assert_kv_ok(kv_get_stats(s, &after));
    assert_int_equal(after.keys, 1000);
    assert_int_equal(after.expired_swept, 1000);
    assert_true(after.live_bytes < mid.live_bytes);
    assert_kv_ok(kv_sweep_expired(s, &removed));
    assert_int_equal(removed, 0);
    assert_kv_ok(tu_close_tracked(s));
}

/* The background sweep runs by itself: a key expires, and the sweep takes
 * it out of the index without being asked. */
static void test_background_sweep_removes_expired_keys(void **state)
{
    struct tu_fixture *f = *state;
    struct test_io t;
    test_io_init(&t);
    kv_options o = test_options(&t);
    o.expiry_sweep_interval_ms = 10;
    kv_store *s = tu_open_tracked(f->dir, &o);
    assert_kv_ok(put_exp(s, "k", "v", T0 + 1));
    atomic_store(&t.now, T0 + 1);
    kv_stats st;
    uint64_t deadline = tu_now_ms() + TU_WAIT_MS;
    do {
        tu_pause_ms(5);
        assert_kv_ok(kv_get_stats(s, &st));
    } while (st.expired_swept == 0 && tu_now_ms() < deadline);
    assert_int_equal(st.expired_swept, 1);
    assert_kv_ok(tu_close_tracked(s));
}

/*
 * The older value of a key lies in segments an earlier compaction could
 * not remove; the key is then given an expiry through the public API, the
 * expiry passes, and the next compaction (whose inputs those segments are
 * not) drops it. Neither the sweep nor that compaction may let the older
 * value come back, even when the whole log is replayed.
 */
static void test_compaction_never_brings_back_the_older_value_of_an_expired_key(void **state)
{
    struct tu_fixture *f = *state;
    struct test_io t;
    test_io_init(&t);
    kv_options o = test_options(&t);
    kv_store *s = tu_open_tracked(f->dir, &o);
    char val[300];
    memset(val, 'o', sizeof(val));
    assert_kv_ok(kv_put(s, "victim", 6, "old value", 9));
    assert_kv_ok(kv_put(s, "other", 5, "old other", 9));
    for (int i = 0; i < 30; i++) {
        char key[16];
        snprintf(key, sizeof(key), "filler-%02d", i);
        assert_kv_ok(kv_put(s, key, strlen(key), val, sizeof(val)));
    }
    t.refuse_unlink = true;
    assert_kv_ok(kv_compact(s)); /* its inputs, the old values with them, stay */
    assert_true(t.refused > 0);
    assert_kv_ok(put_exp(s, "victim", "short-lived", T0 + 50));
    assert_kv_ok(kv_set_expiry(s, "other", 5, T0 + 50, 0));
    atomic_store(&t.now, T0 + 50);
    uint64_t removed = 1;
    assert_kv_ok(kv_sweep_expired(s, &removed));
    assert_int_equal(removed, 0); /* not while those segments remain */
    assert_kv_ok(kv_compact(s));
    assert_absent(s, "victim");
    assert_absent(s, "other");
    t.refuse_unlink = false;
    assert_kv_ok(tu_close_tracked(s));
    remove_snapshot(f->dir);  /* a replay of everything on disk */
    atomic_store(&t.now, T0); /* even before the expiry: the tombstone stands */
    s = tu_open_tracked(f->dir, &o);
    assert_absent(s, "victim");
    assert_absent(s, "other");
    tu_assert_value(s, "filler-07", val, sizeof(val));
    assert_kv_ok(tu_close_tracked(s));
}

/* After a sweep (no leftover segments), compaction drops the key's records
 * together, and a full replay does not bring the old value back. */
static void test_swept_key_stays_gone_through_compaction_and_replay(void **state)
{
    struct tu_fixture *f = *state;
    struct test_io t;
    test_io_init(&t);
    kv_options o = test_options(&t);
    kv_store *s = tu_open_tracked(f->dir, &o);
    char val[300];
    memset(val, 'o', sizeof(val));
    assert_kv_ok(kv_put(s, "victim", 6, "old value", 9));
    for (int i = 0; i < 30; i++) {
        char key[16];
        snprintf(key, sizeof(key), "filler-%02d", i);
        assert_kv_ok(kv_put(s, key, strlen(key), val, sizeof(val)));
    }
    assert_kv_ok(put_exp(s, "victim", "short-lived", T0 + 50));
    atomic_store(&t.now, T0 + 50);
    uint64_t removed = 0;
    assert_kv_ok(kv_sweep_expired(s, &removed));
    assert_int_equal(removed, 1);
    assert_kv_ok(kv_compact(s));
    assert_kv_ok(tu_close_tracked(s));
    remove_snapshot(f->dir);
    s = tu_open_tracked(f->dir, &o);
    assert_absent(s, "victim");
    tu_assert_value(s, "filler-07", val, sizeof(val));
    assert_kv_ok(tu_close_tracked(s));
}

static void test_expiry_costs_no_index_memory_for_keys_without_one(void **state)
{
    struct tu_fixture *f = *state;
    struct test_io t;
    test_io_init(&t);
    kv_options o = test_options(&t);
    o.bloom_bits_per_key = 0;
    kv_store *s = tu_open_tracked(f->dir, &o);
    kv_stats plain, expiring;
    for (int i = 0; i < 4096; i++) {
        char key[17];
        snprintf(key, sizeof(key), "key-%012d", i); /* 16 bytes */
        assert_kv_ok(kv_put(s, key, 16, "v", 1));
    }
    assert_kv_ok(kv_get_stats(s, &plain));
    for (int i = 0; i < 4096; i++) {
        char key[17];
        snprintf(key, sizeof(key), "key-%012d", i);
        assert_kv_ok(put_exp(s, key, "v", T0 + 1000000));
    }
    assert_kv_ok(kv_get_stats(s, &expiring));
    /* The same keys with an expiry: only the side table is added. */
    assert_true(expiring.index_bytes > plain.index_bytes);
    assert_true(expiring.index_bytes - plain.index_bytes <= 4096 * 32);
    /* Without any: what the index cost before expiries existed, no more. */
    for (int i = 0; i < 4096; i++) {
        char key[17];
        snprintf(key, sizeof(key), "key-%012d", i);
        assert_kv_ok(kv_put(s, key, 16, "v", 1));
    }
    kv_stats cleared;
    assert_kv_ok(kv_get_stats(s, &cleared));
    assert_int_equal(cleared.expiring_keys, 0);
    assert_kv_ok(tu_close_tracked(s));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_read_agrees_with_a_model_as_time_passes,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_expired_key_is_absent_for_every_read_and_condition,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_put_keeping_expiry_keeps_it_and_a_plain_put_clears_it,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_check_of_the_expiry_holds_only_for_the_expiry_the_key_has, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_set_expiry_follows_the_flags_and_keeps_the_value,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_carries_expiries, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_sweep_returns_the_memory_of_expired_keys, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_background_sweep_removes_expired_keys, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_compaction_never_brings_back_the_older_value_of_an_expired_key, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_swept_key_stays_gone_through_compaction_and_replay,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_expiry_costs_no_index_memory_for_keys_without_one,
                                        tu_setup, tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
