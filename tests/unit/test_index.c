/*
 * test_index.c - the hash index and the bloom filter against simple models:
 * random inserts, overwrites and removals checked after every step.
 */
#include <stdlib.h>
#include <string.h>

#include "bloom.h"
#include "index.h"
#include "testutil.h"

#define KEYS 5000

struct model {
    bool present[KEYS];
    struct kv_loc loc[KEYS];
};

/* Key i: its 4 bytes, then 0 to 39 filler bytes, so that entries of many
 * sizes share the arena. */
static size_t key_of(int i, char *buf)
{
    size_t extra = (size_t)(i * 7919) % 40;
    memcpy(buf, &i, sizeof(i));
    for (size_t j = 0; j < extra; j++)
        buf[sizeof(i) + j] = (char)('a' + (i + (int)j * 31) % 26);
    return sizeof(i) + extra;
}

static void check_all(const struct index *ix, const struct model *m)
{
    size_t count = 0;
    for (int i = 0; i < KEYS; i++) {
        char k[64];
        size_t len = key_of(i, k);
        const struct index_entry *e = index_lookup(ix, index_hash(k, len), k, len);
        if (!m->present[i]) {
            if (e)
                fail_msg("key %d found after removal", i);
            continue;
        }
        count++;
        if (!e) {
            fail_msg("key %d lost", i);
            return; /* fail_msg ends the test; the analyzer does not know */
        }
        assert_int_equal(e->loc.seg, m->loc[i].seg);
        assert_int_equal(e->loc.off, m->loc[i].off);
        assert_int_equal(e->key_len, len);
        assert_memory_equal(e->key, k, len);
    }
    assert_int_equal(ix->count, count);
    const char *err = order_check(&ix->order, &ix->arena, count);
    if (err)
        fail_msg("ordered index: %s", err);
    size_t cursor = 0, seen = 0;
    while (index_next(ix, &cursor))
        seen++;
    assert_int_equal(seen, count);
}

static void test_index_matches_a_model_through_growth_and_removals(void **state)
{
    (void)state;
    struct index ix;
    assert_int_equal(index_init(&ix), 0);
    struct model *m = calloc(1, sizeof(*m));
    uint64_t x = 12345;
    for (int step = 0; step < 60000; step++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int i = (int)((x >> 33) % KEYS);
        char k[64];
        size_t len = key_of(i, k);
        uint64_t h = index_hash(k, len);
        if ((x >> 20) % 3 == 0) {
            struct kv_loc old;
            int rc = index_remove(&ix, h, k, len, &old);
            assert_kv_rc(rc, m->present[i] ? 0 : KV_ENOTFOUND);
            if (rc == 0)
                assert_int_equal(old.off, m->loc[i].off);
            m->present[i] = false;
        } else {
            struct kv_loc loc = {.seg = (uint32_t)step, .off = (uint32_t)(x >> 40), .val_len = 1};
            bool replaced = true;
            assert_int_equal(index_upsert(&ix, h, k, len, &loc, 0, NULL, &replaced), 0);
            assert_int_equal(replaced, m->present[i]);
            m->present[i] = true;
            m->loc[i] = loc;
        }
        if (step % 997 == 0)
            check_all(&ix, m);
    }
    check_all(&ix, m);
    /* Remove everything: every removal must leave the others findable. */
    for (int i = 0; i < KEYS; i++) {
        char k[64];
        size_t len = key_of(i, k);
        int rc = index_remove(&ix, index_hash(k, len), k, len, NULL);
        assert_kv_rc(rc, m->present[i] ? 0 : KV_ENOTFOUND);
        m->present[i] = false;
        if (i % 500 == 0)
            check_all(&ix, m);
    }
    assert_int_equal(ix.count, 0);
    free(m);
    index_destroy(&ix);
}

static int stop_at_third(const struct index_entry *e, void *arg)
{
    (void)e;
    int *calls = arg;
    return ++*calls == 3 ? KV_ENOMEM : 0;
}

/* ---- walking by hash range while the index changes */

#define WALK_KEYS 20000

struct walk {
    unsigned visits[WALK_KEYS];
};

static int count_visit(const struct index_entry *e, void *arg)
{
    struct walk *w = arg;
    int i;
    memcpy(&i, e->key, sizeof(i));
    assert_true(i >= 0 && i < WALK_KEYS);
    w->visits[i]++;
    return 0;
}

static void upsert_key(struct index *ix, int i)
{
    char k[64];
    size_t len = key_of(i, k);
    struct kv_loc loc = {.seg = 1, .off = (uint32_t)i, .val_len = 1};
    assert_int_equal(index_upsert(ix, index_hash(k, len), k, len, &loc, 0, NULL, NULL), 0);
}

static void remove_key(struct index *ix, int i)
{
    char k[64];
    size_t len = key_of(i, k);
    assert_int_equal(index_remove(ix, index_hash(k, len), k, len, NULL), 0);
}

/* Between two ranges, keys are removed (slots shift back over the walk's
 * position), added, and enough added at once that the slot array grows; a
 * key present throughout must be visited exactly once, and no key twice. */
static void test_walk_by_hash_range_sees_each_lasting_key_once_while_index_changes(void **state)
{
    (void)state;
    struct index ix;
    assert_int_equal(index_init(&ix), 0);
    struct walk *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    /* Keys below WALK_KEYS / 2 are there from the start; even ones among
     * them stay, odd ones are removed during the walk. Keys above are added
     * during the walk. */
    int half = WALK_KEYS / 2;
    for (int i = 0; i < half; i++)
        upsert_key(&ix, i);
    int removed = 1, added = half;
    uint64_t lo = 0;
    for (int piece = 0; lo <= UINT32_MAX; piece++) {
        uint64_t hi = lo + (UINT64_C(1) << 32) / 61 - 1;
        if (hi > UINT32_MAX)
            hi = UINT32_MAX;
        assert_int_equal(index_walk_range(&ix, (uint32_t)lo, (uint32_t)hi, count_visit, w), 0);
        lo = hi + 1;
        for (int n = 0; n < 80 && removed < half; n++, removed += 2)
            remove_key(&ix, removed);
        int burst = piece == 20 ? 3 * half : 60; /* growth, once */
        for (int n = 0; n < burst && added < WALK_KEYS; n++)
            upsert_key(&ix, added++);
    }
    assert_true(ix.cap > 2 * (size_t)half); /* it grew during the walk */
    for (int i = 0; i < WALK_KEYS; i++) {
        if (w->visits[i] > 1)
            fail_msg("key %d visited %u times", i, w->visits[i]);
        if (i < half && i % 2 == 0 && w->visits[i] != 1)
            fail_msg("key %d, there throughout, was not visited", i);
    }
    free(w);
    index_destroy(&ix);
}

static void test_walk_stops_at_the_visitors_error(void **state)
{
    (void)state;
    struct index ix;
    assert_int_equal(index_init(&ix), 0);
    for (int i = 0; i < 100; i++)
        upsert_key(&ix, i);
    int calls = 0;
    assert_kv_rc(index_walk_range(&ix, 0, UINT32_MAX, stop_at_third, &calls), KV_ENOMEM);
    assert_int_equal(calls, 3);
    index_destroy(&ix);
}

static void test_index_memory_per_key_stays_small(void **state)
{
    (void)state;
    struct index ix;
    assert_int_equal(index_init(&ix), 0);
    char k[16];
    size_t n = 1000000; /* the figure the benchmarks report */
    for (size_t i = 0; i < n; i++) {
        memset(k, 'k', sizeof(k));
        memcpy(k, &i, sizeof(i));
        struct kv_loc loc = {.seg = 1, .off = (uint32_t)i, .val_len = 100};
        assert_int_equal(index_upsert(&ix, index_hash(k, 16), k, 16, &loc, 0, NULL, NULL), 0);
    }
    double per_key = (double)index_memory(&ix) / (double)n;
    /* 32 bytes of entry, at most 8 / 0.53 of slots, about 9 of the ordered
     * index, plus arena slack. */
    if (per_key > 16 + 40)
        fail_msg("index uses %.1f bytes per 16-byte key, over key length + 40", per_key);
    index_destroy(&ix);
}

static void test_bloom_has_no_false_negatives_and_few_false_positives(void **state)
{
    (void)state;
    struct bloom b;
    uint64_t n = 100000;
    assert_int_equal(bloom_init(&b, n, 12), 0);
    for (uint64_t i = 0; i < n; i++)
        bloom_add(&b, index_hash(&i, sizeof(i)));
    for (uint64_t i = 0; i < n; i++)
        assert_true(bloom_may_contain(&b, index_hash(&i, sizeof(i))));
    uint64_t fp = 0;
    for (uint64_t i = n; i < 2 * n; i++)
        fp += bloom_may_contain(&b, index_hash(&i, sizeof(i)));
    double rate = (double)fp / (double)n;
    if (rate > 0.01)
        fail_msg("false-positive rate %.4f at full load, over 1 %%", rate);
    assert_false(bloom_is_full(&b));
    bloom_add(&b, 1);
    assert_true(bloom_is_full(&b));
    bloom_destroy(&b);
}

/* ---- bulk loads (snapshots) */

struct keyed {
    uint32_t hash;
    int i;
};

static int by_hash(const void *a, const void *b)
{
    uint32_t x = ((const struct keyed *)a)->hash, y = ((const struct keyed *)b)->hash;
    return (x > y) - (x < y);
}

enum order { ASCENDING, ROTATED, SHUFFLED };

/* The keys 0..KEYS-1 in the given order of hash, each third one twice. */
static struct keyed *load_order(enum order order, size_t *n)
{
    struct keyed *v = calloc(KEYS + (KEYS + 2) / 3, sizeof(*v));
    assert_non_null(v);
    for (int i = 0; i < KEYS; i++) {
        char k[64];
        size_t len = key_of(i, k);
        v[i] = (struct keyed){.hash = (uint32_t)index_hash(k, len), .i = i};
    }
    *n = KEYS;
    for (int i = 0; i < KEYS; i += 3)
        v[(*n)++] = v[i];
    qsort(v, *n, sizeof(*v), by_hash); /* each duplicate next to its first */
    uint64_t x = 99;
    if (order == ROTATED) { /* as a snapshot starts: a high-hash run first */
        struct keyed *r = malloc(*n * sizeof(*r));
        assert_non_null(r);
        size_t cut = *n - *n / 50;
        memcpy(r, v + cut, (*n - cut) * sizeof(*r));
        memcpy(r + (*n - cut), v, cut * sizeof(*r));
        free(v);
        v = r;
    } else if (order == SHUFFLED) {
        for (size_t j = *n - 1; j > 0; j--) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t o = (size_t)(x >> 33) % (j + 1);
            struct keyed t = v[j];
            v[j] = v[o];
            v[o] = t;
        }
    }
    return v;
}

/* Loads the keys in the given order through index_insert_new, then keeps
 * using the index as usual: every key is found, each duplicate is reported,
 * and nothing is lost whether the quick path held or not. */
static void check_bulk_load(enum order order, bool reserve)
{
    struct index ix;
    assert_int_equal(index_init(&ix), 0);
    if (reserve)
        assert_int_equal(index_reserve_load(&ix, KEYS), 0);
    struct model *m = calloc(1, sizeof(*m));
    size_t n;
    struct keyed *v = load_order(order, &n);
    struct index_bulk bulk = {0};
    for (size_t j = 0; j < n; j++) {
        char k[64];
        int i = v[j].i;
        size_t len = key_of(i, k);
        struct kv_loc loc = {.seg = 1, .off = (uint32_t)j, .val_len = 2};
        bool present = false;
        assert_int_equal(
            index_insert_new(&ix, &bulk, index_hash(k, len), k, len, &loc, 0, &present), 0);
        if (present != m->present[i])
            fail_msg("key %d: reported present=%d, model %d", i, present, m->present[i]);
        if (!present) {
            m->present[i] = true;
            m->loc[i] = loc;
        }
    }
    /* A load ends by building the key order (here: by sorting). */
    assert_int_equal(index_order_rebuild(&ix), 0);
    check_all(&ix, m);
    /* Ordinary use after the load. */
    for (int i = 0; i < KEYS; i += 2) {
        char k[64];
        size_t len = key_of(i, k);
        assert_int_equal(index_remove(&ix, index_hash(k, len), k, len, NULL), 0);
        m->present[i] = false;
    }
    for (int i = 0; i < KEYS; i += 4) {
        char k[64];
        size_t len = key_of(i, k);
        struct kv_loc loc = {.seg = 2, .off = (uint32_t)i, .val_len = 3};
        assert_int_equal(index_upsert(&ix, index_hash(k, len), k, len, &loc, 0, NULL, NULL), 0);
        m->present[i] = true;
        m->loc[i] = loc;
    }
    check_all(&ix, m);
    free(v);
    free(m);
    index_destroy(&ix);
}

static void test_bulk_load_in_hash_order_finds_every_key_and_duplicate(void **state)
{
    (void)state;
    check_bulk_load(ASCENDING, true);
    check_bulk_load(ROTATED, true);
}

static void test_bulk_load_in_any_order_or_through_growth_is_still_right(void **state)
{
    (void)state;
    check_bulk_load(SHUFFLED, true);
    check_bulk_load(ASCENDING, false); /* the slot array grows during the load */
    check_bulk_load(SHUFFLED, false);
}

struct visit {
    bool *seen;
    size_t n, descents;
    uint32_t last;
};

static int visit_entry(void *ctx, uint32_t ref, const struct index_entry *e)
{
    (void)ref;
    struct visit *v = ctx;
    int i;
    memcpy(&i, e->key, sizeof(i));
    assert_true(i >= 0 && i < KEYS);
    assert_false(v->seen[i]);
    v->seen[i] = true;
    uint32_t h = (uint32_t)index_hash(e->key, e->key_len);
    if (v->n++ > 0 && h < v->last)
        v->descents++;
    v->last = h;
    return 0;
}

/* The snapshot's order: every entry once, in ascending hash but for one
 * step down where the run that wraps around the end of the array begins. */
static void test_walk_by_hash_visits_each_entry_once_in_ascending_order(void **state)
{
    (void)state;
    struct index ix;
    assert_int_equal(index_init(&ix), 0);
    for (int i = 0; i < KEYS; i++) {
        char k[64];
        size_t len = key_of(i, k);
        struct kv_loc loc = {.seg = 1, .off = (uint32_t)i, .val_len = 1};
        assert_int_equal(index_upsert(&ix, index_hash(k, len), k, len, &loc, 0, NULL, NULL), 0);
    }
    struct visit v = {.seen = calloc(KEYS, sizeof(bool))};
    assert_int_equal(index_for_each_by_hash(&ix, visit_entry, &v), 0);
    assert_int_equal(v.n, KEYS);
    if (v.descents > 1)
        fail_msg("%zu steps down in hash order, at most 1 expected", v.descents);
    free(v.seen);
    index_destroy(&ix);
}

/* Keys without an expiry cost the index nothing for expiries: no table is
 * made until a key has one (a reservation of room for none included), and
 * an entry's location reads back without the flag of one that has. */
static void test_expiries_take_memory_only_for_keys_that_have_one(void **state)
{
    (void)state;
    struct index ix;
    assert_int_equal(index_init(&ix), 0);
    assert_int_equal(expiry_reserve(&ix.expiries, 0), 0);
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof(k), "plain-%d", i);
        struct kv_loc loc = {.seg = 1, .off = (uint32_t)i * 64, .val_len = 1};
        assert_int_equal(
            index_upsert(&ix, index_hash(k, strlen(k)), k, strlen(k), &loc, 0, NULL, NULL), 0);
    }
    assert_int_equal(expiry_memory(&ix.expiries), 0);
    struct kv_loc loc = {.seg = 2, .off = 0x7ffffff0u, .val_len = 3};
    assert_int_equal(index_upsert(&ix, index_hash("x", 1), "x", 1, &loc, 12345, NULL, NULL), 0);
    const struct index_entry *e = index_lookup(&ix, index_hash("x", 1), "x", 1);
    assert_int_equal(index_entry_expiry(&ix, e), 12345);
    assert_int_equal(index_entry_loc(e).off, 0x7ffffff0u);
    assert_true(index_entry_expired(&ix, e, 12345));
    assert_false(index_entry_expired(&ix, e, 12344));
    assert_true(expiry_memory(&ix.expiries) > 0);
    /* Cleared by a write without one, and gone with the key. */
    assert_int_equal(index_upsert(&ix, index_hash("x", 1), "x", 1, &loc, 0, NULL, NULL), 0);
    assert_int_equal(index_entry_expiry(&ix, e), 0);
    assert_int_equal(ix.expiries.count, 0);
    assert_int_equal(index_upsert(&ix, index_hash("x", 1), "x", 1, &loc, 99, NULL, NULL), 0);
    assert_int_equal(index_remove(&ix, index_hash("x", 1), "x", 1, NULL), 0);
    assert_int_equal(ix.expiries.count, 0);
    index_destroy(&ix);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_matches_a_model_through_growth_and_removals),
        cmocka_unit_test(test_expiries_take_memory_only_for_keys_that_have_one),
        cmocka_unit_test(test_walk_by_hash_range_sees_each_lasting_key_once_while_index_changes),
        cmocka_unit_test(test_walk_stops_at_the_visitors_error),
        cmocka_unit_test(test_bulk_load_in_hash_order_finds_every_key_and_duplicate),
        cmocka_unit_test(test_bulk_load_in_any_order_or_through_growth_is_still_right),
        cmocka_unit_test(test_walk_by_hash_visits_each_entry_once_in_ascending_order),
        cmocka_unit_test(test_index_memory_per_key_stays_small),
        cmocka_unit_test(test_bloom_has_no_false_negatives_and_few_false_positives),
    };
    return tu_run_tests(tests, argc, argv);
}
