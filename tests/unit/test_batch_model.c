/*
 * test_batch_model.c - kv_write checked against an in-memory model: random
 * batches of puts, deletes and checks, with random conditions (some that
 * hold, some that fail), over a few dozen keys, in small segments so that
 * batches cross rotations. The model decides each batch as the engine must
 * (ops in order, each condition against the state the ops before it left;
 * any failure writes nothing), and every outcome is compared: the call's
 * code, each op's rc and value_crc. At random points the store is reopened
 * (from its snapshot, or replaying the whole log, or after a compaction),
 * and then it must hold exactly the model.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record.h"
#include "testutil.h"

#define KEYS      40
#define VAL_MAX   160
#define OPS_MAX   7
#define STEPS     3000
#define SEED_BASE 20261203u

struct model {
    bool live[KEYS];
    size_t len[KEYS];
    uint8_t val[KEYS][VAL_MAX];
};

/* A xorshift generator: the runs are reproducible from the seed. */
static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void key_of(int i, char *buf, size_t len)
{
    snprintf(buf, len, "key-%02d", i);
}

static uint32_t crc_of(const uint8_t *v, size_t len)
{
    return record_crc_update(0, v, len);
}

/* One op of a batch, with the storage its key and value point at. */
struct op_buf {
    int key;
    char name[16];
    uint8_t val[VAL_MAX];
};

static void random_op(const struct model *m, kv_op *op, struct op_buf *b)
{
    b->key = (int)rnd(KEYS);
    key_of(b->key, b->name, sizeof(b->name));
    memset(op, 0, sizeof(*op));
    op->key = b->name;
    op->key_len = strlen(b->name);
    uint32_t kind = rnd(10);
    op->type = kind < 6 ? KV_WRITE_PUT : kind < 9 ? KV_WRITE_DEL : KV_WRITE_CHECK;
    if (op->type == KV_WRITE_PUT) {
        op->val_len = rnd(VAL_MAX + 1);
        for (size_t j = 0; j < op->val_len; j++)
            b->val[j] = (uint8_t)rnd(256);
        op->val = b->val;
    }
    uint32_t c = rnd(8);
    op->cond = c < 4 ? KV_IF_ANY : c == 4 ? KV_IF_ABSENT : c == 5 ? KV_IF_PRESENT : KV_IF_CRC;
    if (op->cond == KV_IF_CRC) {
        /* Mostly the CRC the key has now, so that many hold. */
        op->cond_crc = m->live[b->key] && rnd(3) != 0 ? crc_of(m->val[b->key], m->len[b->key])
                                                      : (uint32_t)rnd(UINT32_MAX);
    }
}

struct expect {
    int rc;
    int op_rc[OPS_MAX];
};

/* Decides the batch on a copy of the model; applies it to m when it goes
 * ahead. */
static struct expect decide(struct model *m, const kv_op *ops, const struct op_buf *bufs, size_t n)
{
    struct expect e = {0};
    struct model *t = malloc(sizeof(*t));
    assert_non_null(t);
    *t = *m;
    bool failed = false;
    for (size_t i = 0; i < n; i++) {
        int k = bufs[i].key;
        bool present = t->live[k];
        uint32_t crc = present ? crc_of(t->val[k], t->len[k]) : 0;
        bool holds = ops[i].cond == KV_IF_ANY || (ops[i].cond == KV_IF_ABSENT && !present) ||
                     (ops[i].cond == KV_IF_PRESENT && present) ||
                     (ops[i].cond == KV_IF_CRC && present && crc == ops[i].cond_crc);
        if (!holds) {
            e.op_rc[i] = KV_ECONDITION;
            failed = true;
        }
        if (ops[i].type == KV_WRITE_PUT) {
            t->live[k] = true;
            t->len[k] = ops[i].val_len;
            memcpy(t->val[k], ops[i].val, ops[i].val_len);
        } else if (ops[i].type == KV_WRITE_DEL) {
            if (!present && holds)
                e.op_rc[i] = KV_ENOTFOUND;
            t->live[k] = false;
        }
    }
    if (failed) {
        e.rc = KV_ECONDITION;
        for (size_t i = 0; i < n; i++)
            if (e.op_rc[i] != KV_ECONDITION)
                e.op_rc[i] = 0;
    } else {
        *m = *t;
    }
    free(t);
    return e;
}

static void assert_store_is_model(kv_store *s, const struct model *m, int step)
{
    uint64_t live = 0;
    for (int i = 0; i < KEYS; i++) {
        char k[16];
        key_of(i, k, sizeof(k));
        void *v = NULL;
        size_t len = 0;
        int rc = kv_get(s, k, strlen(k), &v, &len);
        if (!m->live[i]) {
            if (rc != KV_ENOTFOUND)
                fail_msg("step %d: %s should be absent, kv_get = %d", step, k, rc);
            continue;
        }
        live++;
        if (rc != 0 || len != m->len[i] || memcmp(v, m->val[i], len) != 0)
            fail_msg("step %d: %s reads back wrong (rc %d, %zu bytes, want %zu)", step, k, rc, len,
                     m->len[i]);
        kv_free(v);
    }
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    assert_int_equal(st.keys, live);
    assert_int_equal(st.checksum_errors, 0);
}

static kv_store *reopen(kv_store *s, const char *dir, const kv_options *o)
{
    switch (rnd(3)) {
    case 0: /* from the snapshot */
        assert_kv_ok(tu_close_tracked(s));
        break;
    case 1: { /* replaying every batch from the log */
        assert_kv_ok(tu_close_tracked(s));
        char *snap = tu_path(dir, "index.snapshot");
        unlink(snap);
        free(snap);
        break;
    }
    default: /* batches copied out as plain records */
        assert_kv_ok(kv_compact(s));
        assert_kv_ok(tu_close_tracked(s));
        break;
    }
    return tu_open_tracked(dir, o);
}

static void run_model(const char *dir, uint64_t seed)
{
    rng_state = seed;
    kv_options o;
    kv_options_init(&o);
    o.sync_mode = KV_SYNC_NONE;
    o.segment_size = 4096;
    o.compaction_interval_secs = 0;
    kv_store *s = tu_open_tracked(dir, &o);
    struct model *m = calloc(1, sizeof(*m));
    assert_non_null(m);
    for (int step = 0; step < STEPS; step++) {
        kv_op ops[OPS_MAX];
        struct op_buf bufs[OPS_MAX];
        size_t n = 1 + rnd(OPS_MAX);
        for (size_t i = 0; i < n; i++)
            random_op(m, &ops[i], &bufs[i]);
        struct expect e = decide(m, ops, bufs, n);
        int rc = kv_write(s, ops, n);
        if (rc != e.rc)
            fail_msg("step %d (seed %llu): kv_write = %d, the model says %d", step,
                     (unsigned long long)seed, rc, e.rc);
        for (size_t i = 0; i < n; i++) {
            if (ops[i].rc != e.op_rc[i])
                fail_msg("step %d: op %zu rc = %d, the model says %d", step, i, ops[i].rc,
                         e.op_rc[i]);
            if (ops[i].type == KV_WRITE_PUT)
                assert_int_equal(ops[i].value_crc, crc_of(ops[i].val, ops[i].val_len));
        }
        if (rnd(100) < 3) {
            s = reopen(s, dir, &o);
            assert_store_is_model(s, m, step);
        }
    }
    assert_store_is_model(s, m, STEPS);
    s = reopen(s, dir, &o);
    assert_store_is_model(s, m, STEPS);
    assert_kv_ok(tu_close_tracked(s));
    free(m);
}

static void test_random_batches_match_the_model_across_reopens(void **state)
{
    struct tu_fixture *fx = *state;
    const char *env = getenv("KV_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : SEED_BASE;
    run_model(fx->dir, seed ? seed : 1);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_random_batches_match_the_model_across_reopens,
                                        tu_setup, tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
