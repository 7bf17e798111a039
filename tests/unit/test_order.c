/*
 * test_order.c - the ordered index against a sorted model: random inserts,
 * removals and overwrites through the index (which keeps the hash table and
 * the tree in step), bulk loads from a key order and by sorting, and every
 * range read checked against the model: from any key, inclusive or after,
 * for any length, with the tree's invariants (order_check) checked as it
 * goes.
 */
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "testutil.h"

/* A fixed universe of candidate keys, sorted once; the model is a flag per
 * key. */
struct universe {
    size_t n;
    uint8_t (*key)[48];
    size_t *len;
    size_t *rank; /* rank[i]: i's place in key order */
    size_t *by_rank;
};

static uint64_t rng(uint64_t *x)
{
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return *x >> 17;
}

static int raw_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

static const struct universe *sorting_universe;

static int rank_cmp(const void *a, const void *b)
{
    const struct universe *u = sorting_universe;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return raw_cmp(u->key[x], u->len[x], u->key[y], u->len[y]);
}

/* Keys that stress the hints: decimal numbers of one width (long shared
 * prefixes), short keys over a 4-letter alphabet with 0x00 and 0xFF (keys
 * that are prefixes of others, hints padded with zeros), and random binary
 * keys. Duplicates are dropped. */
static void universe_init(struct universe *u, size_t n, uint64_t seed)
{
    u->key = calloc(n, sizeof(*u->key));
    u->len = calloc(n, sizeof(*u->len));
    u->rank = calloc(n, sizeof(*u->rank));
    u->by_rank = calloc(n, sizeof(*u->by_rank));
    assert_non_null(u->key);
    static const uint8_t alphabet[4] = {0x00, 'a', 'b', 0xFF};
    uint64_t x = seed;
    for (size_t i = 0; i < n; i++) {
        switch (i % 3) {
        case 0: {
            char buf[32];
            snprintf(buf, sizeof(buf), "%016llu", (unsigned long long)(rng(&x) % (n * 4)));
            u->len[i] = 16;
            memcpy(u->key[i], buf, 16);
            break;
        }
        case 1:
            u->len[i] = 1 + rng(&x) % 12;
            for (size_t j = 0; j < u->len[i]; j++)
                u->key[i][j] = alphabet[rng(&x) % 4];
            break;
        default:
            u->len[i] = 1 + rng(&x) % 47;
            for (size_t j = 0; j < u->len[i]; j++)
                u->key[i][j] = (uint8_t)rng(&x);
            break;
        }
        u->by_rank[i] = i;
    }
    sorting_universe = u;
    qsort(u->by_rank, n, sizeof(size_t), rank_cmp);
    /* Drop duplicates: keep the first of each run. */
    size_t out = 0;
    for (size_t r = 0; r < n; r++) {
        size_t i = u->by_rank[r];
        if (out > 0) {
            size_t p = u->by_rank[out - 1];
            if (raw_cmp(u->key[p], u->len[p], u->key[i], u->len[i]) == 0)
                continue;
        }
        u->by_rank[out++] = i;
    }
    /* Renumber: key i is now the i-th smallest. */
    uint8_t(*keys)[48] = calloc(out, sizeof(*keys));
    size_t *lens = calloc(out, sizeof(*lens));
    for (size_t r = 0; r < out; r++) {
        memcpy(keys[r], u->key[u->by_rank[r]], sizeof(keys[r]));
        lens[r] = u->len[u->by_rank[r]];
        u->rank[r] = r;
        u->by_rank[r] = r;
    }
    free(u->key);
    free(u->len);
    u->key = keys;
    u->len = lens;
    u->n = out;
}

static void universe_free(struct universe *u)
{
    free(u->key);
    free(u->len);
    free(u->rank);
    free(u->by_rank);
}

struct model {
    const struct universe *u;
    bool *present;
    size_t count;
};

static void model_upsert(struct index *ix, struct model *m, size_t i, uint32_t tag)
{
    const struct universe *u = m->u;
    struct kv_loc loc = {.seg = 1, .off = tag, .val_len = (uint32_t)i};
    bool replaced = false;
    assert_int_equal(index_upsert(ix, index_hash(u->key[i], u->len[i]), u->key[i], u->len[i], &loc,
                                  0, NULL, &replaced),
                     0);
    assert_int_equal(replaced, m->present[i]);
    if (!m->present[i])
        m->count++;
    m->present[i] = true;
}

static void model_remove(struct index *ix, struct model *m, size_t i)
{
    const struct universe *u = m->u;
    int rc = index_remove(ix, index_hash(u->key[i], u->len[i]), u->key[i], u->len[i], NULL);
    assert_kv_rc(rc, m->present[i] ? 0 : KV_ENOTFOUND);
    if (m->present[i])
        m->count--;
    m->present[i] = false;
}

static void check_tree(const struct index *ix, const struct model *m)
{
    assert_int_equal(ix->count, m->count);
    const char *err = order_check(&ix->order, &ix->arena, m->count);
    if (err)
        fail_msg("ordered index: %s", err);
}

/* Reads up to len keys from start (a universe key, or a key made by
 * changing one: absent, between others) and compares them with the
 * model's. */
static void check_range(const struct index *ix, const struct model *m, const uint8_t *start,
                        size_t start_len, bool after, size_t len)
{
    const struct universe *u = m->u;
    struct order_cursor c;
    order_seek(&c, &ix->order, &ix->arena, start, start_len, after);
    /* The model's first key at or after start. */
    size_t r = 0;
    if (start_len > 0) {
        size_t lo = 0, hi = u->n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            int cmp = raw_cmp(u->key[mid], u->len[mid], start, start_len);
            if (cmp < 0 || (cmp == 0 && after))
                lo = mid + 1;
            else
                hi = mid;
        }
        r = lo;
    }
    for (size_t k = 0; k < len; k++) {
        while (r < u->n && !m->present[r])
            r++;
        uint32_t ref = order_next(&c);
        if (r == u->n) {
            if (ref != 0)
                fail_msg("the tree reads on past the model's last key");
            return;
        }
        if (ref == 0)
            fail_msg("the tree ends before the model (%zu keys read of %zu)", k, len);
        const struct index_entry *e = index_entry_at(ix, ref);
        if (raw_cmp(e->key, e->key_len, u->key[r], u->len[r]) != 0)
            fail_msg("key %zu of a range differs from the model's", k);
        assert_int_equal(e->loc.val_len, r);
        r++;
    }
}

/* A few ranges from random places: from universe keys and from keys that
 * lie between them, inclusive and exclusive, short and long. */
static void check_some_ranges(const struct index *ix, const struct model *m, uint64_t *x)
{
    const struct universe *u = m->u;
    check_range(ix, m, NULL, 0, false, 50);
    for (int q = 0; q < 8; q++) {
        size_t i = rng(x) % u->n;
        uint8_t k[49];
        size_t len = u->len[i];
        memcpy(k, u->key[i], len);
        switch (q % 4) {
        case 1: /* just after key i: append a zero byte */
            k[len++] = 0;
            break;
        case 2: /* a prefix of key i */
            len = 1 + rng(x) % len;
            break;
        case 3: /* key i with its last byte raised */
            if (k[len - 1] < 0xFF)
                k[len - 1]++;
            break;
        default:
            break;
        }
        check_range(ix, m, k, len, q % 2 == 1, 1 + rng(x) % 200);
    }
}

static void test_random_changes_keep_the_order_of_a_sorted_model(void **state)
{
    (void)state;
    struct universe u;
    universe_init(&u, 6000, 7);
    struct index ix;
    assert_int_equal(index_init(&ix), 0);
    struct model m = {.u = &u, .present = calloc(u.n, sizeof(bool))};
    uint64_t x = 42;
    for (int step = 0; step < 120000; step++) {
        size_t i = rng(&x) % u.n;
        /* Phases: mostly inserts, then mostly removals, then mixed. */
        int phase = step / 40000;
        unsigned remove_pct = phase == 0 ? 20 : phase == 1 ? 75 : 45;
        if (rng(&x) % 100 < remove_pct)
            model_remove(&ix, &m, i);
        else
            model_upsert(&ix, &m, i, (uint32_t)step);
        if (step % 3001 == 0) {
            check_tree(&ix, &m);
            check_some_ranges(&ix, &m, &x);
        }
    }
    check_tree(&ix, &m);
    check_range(&ix, &m, NULL, 0, false, u.n + 1);
    for (size_t i = 0; i < u.n; i++)
        model_remove(&ix, &m, i);
    check_tree(&ix, &m);
    check_range(&ix, &m, NULL, 0, false, 10);
    free(m.present);
    index_destroy(&ix);
    universe_free(&u);
}

/* Many keys in a deep tree, then nearly all removed: nodes merge and take
 * separators from full siblings, and separators whose keys left the store
 * stay readable until their nodes go. */
static void test_a_deep_tree_emptied_at_random_stays_ordered(void **state)
{
    (void)state;
    struct universe u;
    universe_init(&u, 150000, 11);
    struct index ix;
    assert_int_equal(index_init(&ix), 0);
    struct model m = {.u = &u, .present = calloc(u.n, sizeof(bool))};
    uint64_t x = 5;
    size_t *perm = malloc(u.n * sizeof(*perm));
    for (size_t i = 0; i < u.n; i++)
        perm[i] = i;
    for (size_t i = u.n - 1; i > 0; i--) {
        size_t j = rng(&x) % (i + 1);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t k = 0; k < u.n; k++)
        model_upsert(&ix, &m, perm[k], 1);
    check_tree(&ix, &m);
    assert_true(ix.order.height >= 2);
    uint64_t merges = ix.order.merges;
    check_some_ranges(&ix, &m, &x);
    for (size_t k = 0; k < u.n; k++) {
        model_remove(&ix, &m, perm[(k * 7919) % u.n]);
        /* Put some back: keys equal to separators that left. */
        if (k % 10 == 0)
            model_upsert(&ix, &m, perm[(k * 7919) % u.n], 2);
        if (k % 15000 == 0) {
            check_tree(&ix, &m);
            check_some_ranges(&ix, &m, &x);
        }
    }
    check_tree(&ix, &m);
    check_range(&ix, &m, NULL, 0, false, u.n + 1);
    assert_true(ix.order.merges > merges);
    free(perm);
    free(m.present);
    index_destroy(&ix);
    universe_free(&u);
}

/* Keys per leaf, on average, as a fraction of what a leaf holds. */
static double leaf_fill(const struct index *ix)
{
    struct order_shape shape;
    order_shape(&ix->order, &shape);
    assert_true(shape.leaves > 0);
    return (double)shape.keys / ((double)shape.leaves * ORDER_LEAF_KEYS);
}

/* Inserts in ascending and descending order: every insertion at one edge
 * of the tree, where nodes lack a fence. Each key starts a leaf of its own
 * at that edge when the leaf there is full, which stays full: the leaves
 * end up full, not half full. */
static void test_keys_inserted_in_order_or_reverse_read_back_in_order(void **state)
{
    (void)state;
    struct universe u;
    universe_init(&u, 30000, 3);
    for (int reverse = 0; reverse < 2; reverse++) {
        struct index ix;
        assert_int_equal(index_init(&ix), 0);
        struct model m = {.u = &u, .present = calloc(u.n, sizeof(bool))};
        for (size_t k = 0; k < u.n; k++)
            model_upsert(&ix, &m, reverse ? u.n - 1 - k : k, 1);
        check_tree(&ix, &m);
        check_range(&ix, &m, NULL, 0, false, u.n + 1);
        double fill = leaf_fill(&ix);
        if (fill < 0.98)
            fail_msg("leaves %.3f full after %s inserts, want 0.98 at least", fill,
                     reverse ? "descending" : "ascending");
        assert_true(ix.order.edge_splits > 0);
        uint64_t x = 9;
        check_some_ranges(&ix, &m, &x);
        for (size_t k = 0; k < u.n; k += 2)
            model_remove(&ix, &m, reverse ? k : u.n - 1 - k);
        check_tree(&ix, &m);
        check_some_ranges(&ix, &m, &x);
        free(m.present);
        index_destroy(&ix);
    }
    universe_free(&u);
}

/* Keys inserted in descending order leave the leftmost inner node full;
 * removing them in descending order then empties the inner node next to it,
 * which cannot merge with a full sibling and takes a child from it instead.
 * Tried at several sizes, so that the sibling is full at that moment. */
static void test_an_inner_node_emptied_beside_a_full_one_takes_a_child_from_it(void **state)
{
    (void)state;
    struct universe u = {.n = 4000};
    u.key = calloc(u.n, sizeof(*u.key));
    u.len = calloc(u.n, sizeof(*u.len));
    for (size_t i = 0; i < u.n; i++) {
        u.len[i] = 16;
        char buf[32];
        snprintf(buf, sizeof(buf), "%016zu", i);
        memcpy(u.key[i], buf, 16);
    }
    uint64_t rotations = 0;
    uint64_t x = 1;
    for (size_t n = 2000; n < 2700; n += 29) {
        struct index ix;
        assert_int_equal(index_init(&ix), 0);
        struct model m = {.u = &u, .present = calloc(u.n, sizeof(bool))};
        for (size_t k = n; k-- > 0;)
            model_upsert(&ix, &m, k, 1);
        for (size_t k = n; k-- > 0;) {
            model_remove(&ix, &m, k);
            if (k % 97 == 0) {
                check_tree(&ix, &m);
                check_some_ranges(&ix, &m, &x);
            }
        }
        check_tree(&ix, &m);
        rotations += ix.order.rotations;
        free(m.present);
        index_destroy(&ix);
    }
    assert_true(rotations > 0);
    free(u.key);
    free(u.len);
}

static void shuffle(size_t *perm, size_t n, uint64_t *x)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rng(x) % (i + 1);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* A full leaf lends keys to a sibling with room, or splits with a full
 * one into three: random inserts leave leaves over 78 % full, where
 * splitting in two leaves them near 69 %. */
static void test_random_inserts_leave_leaves_four_fifths_full(void **state)
{
    (void)state;
    struct universe u;
    universe_init(&u, 90000, 13);
    struct index ix;
    assert_int_equal(index_init(&ix), 0);
    struct model m = {.u = &u, .present = calloc(u.n, sizeof(bool))};
    uint64_t x = 3;
    size_t *perm = calloc(u.n, sizeof(*perm));
    assert_non_null(perm);
    shuffle(perm, u.n, &x);
    for (size_t k = 0; k < u.n; k++) {
        model_upsert(&ix, &m, perm[k], 1);
        if (k % 10007 == 0)
            check_some_ranges(&ix, &m, &x);
    }
    check_tree(&ix, &m);
    check_range(&ix, &m, NULL, 0, false, u.n + 1);
    double fill = leaf_fill(&ix);
    if (fill < 0.78)
        fail_msg("leaves %.3f full after random inserts, want 0.78 at least", fill);
    assert_true(ix.order.redistributions > 0);
    assert_true(ix.order.splits3 > 0);
    free(perm);
    free(m.present);
    index_destroy(&ix);
    universe_free(&u);
}

/* Keys removed and others inserted at random in a tree whose leaves are
 * full: keys move between leaves and separators change, among them
 * separators whose keys left the store, which the tree releases as it
 * replaces them; the entries they free are taken by new keys. The tree
 * stays in step with the model throughout. */
static void test_churn_among_full_leaves_keeps_the_order(void **state)
{
    (void)state;
    struct universe u;
    universe_init(&u, 40000, 17);
    size_t half = u.n / 2, absent = u.n - half;
    if (half == 0 || absent == 0) {
        universe_free(&u);
        fail_msg("a universe of %zu keys", u.n);
        return;
    }
    struct index ix;
    assert_int_equal(index_init(&ix), 0);
    struct model m = {.u = &u, .present = calloc(u.n, sizeof(bool))};
    uint64_t x = 8;
    size_t *perm = calloc(u.n, sizeof(*perm));
    assert_non_null(perm);
    shuffle(perm, u.n, &x);
    for (size_t k = 0; k < half; k++)
        model_upsert(&ix, &m, perm[k], 1);
    uint64_t lent = ix.order.redistributions, split = ix.order.splits3;
    for (int step = 0; step < 200000; step++) {
        /* perm[0, half) present, the rest absent: swap one of each. */
        size_t out = rng(&x) % half, in = half + rng(&x) % absent;
        model_remove(&ix, &m, perm[out]);
        model_upsert(&ix, &m, perm[in], (uint32_t)step);
        size_t t = perm[out];
        perm[out] = perm[in];
        perm[in] = t;
        if (step % 20011 == 0) {
            check_tree(&ix, &m);
            check_some_ranges(&ix, &m, &x);
        }
    }
    check_tree(&ix, &m);
    check_range(&ix, &m, NULL, 0, false, u.n + 1);
    assert_true(ix.order.redistributions > lent);
    assert_true(ix.order.splits3 > split);
    free(perm);
    free(m.present);
    index_destroy(&ix);
    universe_free(&u);
}

/* Loads the present keys as a snapshot does: through index_insert_new (in
 * universe order, as good as any), then the key order as the names the
 * arena's plan gives the entries, or (with sort) by sorting. */
static void bulk_load(struct index *ix, const struct model *m, bool sort)
{
    const struct universe *u = m->u;
    struct index_bulk bulk = {0};
    struct arena_plan plan = {0};
    uint32_t *names = calloc(u->n, sizeof(*names));
    assert_int_equal(index_reserve_load(ix, m->count), 0);
    for (size_t i = 0; i < u->n; i++) {
        if (!m->present[i])
            continue;
        struct kv_loc loc = {.seg = 1, .off = 0, .val_len = (uint32_t)i};
        bool present;
        assert_int_equal(index_insert_new(ix, &bulk, index_hash(u->key[i], u->len[i]), u->key[i],
                                          u->len[i], &loc, 0, &present),
                         0);
        assert_false(present);
        names[i] = arena_plan_next(&plan, u->len[i]);
    }
    if (sort) {
        assert_int_equal(index_order_rebuild(ix), 0);
    } else {
        struct index_order_load l;
        index_order_load_begin(ix, &l);
        uint32_t piece[37];
        size_t n = 0;
        for (size_t i = 0; i < u->n; i++) { /* the universe is in key order */
            if (!m->present[i])
                continue;
            piece[n++] = names[i];
            if (n == sizeof(piece) / sizeof(piece[0])) {
                index_order_load_add(ix, &l, piece, n);
                n = 0;
            }
        }
        index_order_load_add(ix, &l, piece, n);
        assert_int_equal(index_order_load_end(ix, &l, &bulk), 0);
    }
    free(names);
}

static void test_a_bulk_loaded_tree_reads_and_changes_like_a_built_one(void **state)
{
    (void)state;
    struct universe u;
    universe_init(&u, 40000, 21);
    for (int sort = 0; sort < 2; sort++) {
        struct model m = {.u = &u, .present = calloc(u.n, sizeof(bool))};
        uint64_t x = 77 + (uint64_t)sort;
        for (size_t i = 0; i < u.n; i++)
            if (rng(&x) % 3 != 0) {
                m.present[i] = true;
                m.count++;
            }
        struct index ix;
        assert_int_equal(index_init(&ix), 0);
        bulk_load(&ix, &m, sort);
        check_tree(&ix, &m);
        check_some_ranges(&ix, &m, &x);
        /* Reopens in the middle of a life: keep changing it. */
        for (int step = 0; step < 40000; step++) {
            size_t i = rng(&x) % u.n;
            if (rng(&x) % 2)
                model_remove(&ix, &m, i);
            else
                model_upsert(&ix, &m, i, (uint32_t)step);
            if (step % 9999 == 0) {
                check_tree(&ix, &m);
                check_some_ranges(&ix, &m, &x);
            }
        }
        check_tree(&ix, &m);
        /* And load what it became, as the next open would. */
        struct index again;
        assert_int_equal(index_init(&again), 0);
        bulk_load(&again, &m, false);
        check_tree(&again, &m);
        check_range(&again, &m, NULL, 0, false, u.n + 1);
        index_destroy(&again);
        index_destroy(&ix);
        free(m.present);
    }
    universe_free(&u);
}

/* An upsert after index_prefetch_upsert (which keeps the ordered index's
 * path for the key's insertion) leaves the same tree as one without: also
 * when another key is inserted or removed in between (the kept path is
 * forgotten), when the prefetched key is not the one inserted, and on a
 * bulk-loaded tree, whose nodes the kept path leaves to be framed. */
static void test_an_insert_after_a_prefetch_keeps_the_order_whatever_came_between(void **state)
{
    (void)state;
    struct universe u;
    universe_init(&u, 30000, 33);
    for (int bulk = 0; bulk < 2; bulk++) {
        struct model m = {.u = &u, .present = calloc(u.n, sizeof(bool))};
        uint64_t x = 5 + (uint64_t)bulk;
        struct index ix;
        assert_int_equal(index_init(&ix), 0);
        if (bulk) {
            for (size_t i = 0; i < u.n; i++)
                if (rng(&x) % 2 == 0) {
                    m.present[i] = true;
                    m.count++;
                }
            bulk_load(&ix, &m, false);
        }
        for (int step = 0; step < 60000; step++) {
            size_t i = rng(&x) % u.n;
            assert_int_equal(index_reserve(&ix, 2), 0);
            index_prefetch_upsert(&ix, index_hash(u.key[i], u.len[i]), u.key[i], u.len[i], true);
            size_t other = rng(&x) % u.n;
            switch (rng(&x) % 4) {
            case 0: /* a change in between */
                if (m.present[other])
                    model_remove(&ix, &m, other);
                else
                    model_upsert(&ix, &m, other, (uint32_t)step);
                model_upsert(&ix, &m, i, (uint32_t)step);
                break;
            case 1: /* another key than the one prefetched */
                model_upsert(&ix, &m, other, (uint32_t)step);
                break;
            case 2: /* none, and then a removal */
                model_remove(&ix, &m, other);
                break;
            default:
                model_upsert(&ix, &m, i, (uint32_t)step);
                break;
            }
            if (step % 7919 == 0) {
                check_tree(&ix, &m);
                check_some_ranges(&ix, &m, &x);
            }
        }
        check_tree(&ix, &m);
        check_range(&ix, &m, NULL, 0, false, u.n + 1);
        index_destroy(&ix);
        free(m.present);
    }
    universe_free(&u);
}

/* A key order that names an entry twice, a name no entry has, or not every
 * entry, is refused and leaves the ordered index empty; the right one is
 * taken. */
static void test_a_key_order_that_does_not_match_the_keys_is_refused(void **state)
{
    (void)state;
    const char *keys[3] = {"b", "a", "c"};
    uint32_t name[3]; /* by key: a, b, c */
    struct arena_plan plan = {0};
    uint32_t twice[3], unknown[3], short_of_one[2], right[3];
    for (int attempt = 0; attempt < 4; attempt++) {
        struct index ix;
        assert_int_equal(index_init(&ix), 0);
        struct index_bulk bulk = {0};
        plan = (struct arena_plan){0};
        for (int i = 0; i < 3; i++) {
            struct kv_loc loc = {.seg = 1};
            bool present;
            assert_int_equal(
                index_insert_new(&ix, &bulk, index_hash(keys[i], 1), keys[i], 1, &loc, 0, &present),
                0);
            name[keys[i][0] - 'a'] = arena_plan_next(&plan, 1);
        }
        memcpy(right, name, sizeof(right));
        memcpy(twice, (uint32_t[3]){name[0], name[1], name[1]}, sizeof(twice));
        memcpy(unknown, (uint32_t[3]){name[0], name[1], name[2] + 1}, sizeof(unknown));
        memcpy(short_of_one, name, sizeof(short_of_one));
        const uint32_t *order[4] = {twice, unknown, short_of_one, right};
        size_t lens[4] = {3, 3, 2, 3};
        struct index_order_load l;
        index_order_load_begin(&ix, &l);
        index_order_load_add(&ix, &l, order[attempt], lens[attempt]);
        int rc = index_order_load_end(&ix, &l, &bulk);
        if (attempt < 3) {
            assert_int_equal(rc, 1);
            assert_int_equal(ix.order.root, 0);
        } else {
            assert_int_equal(rc, 0);
            assert_null(order_check(&ix.order, &ix.arena, 3));
            struct order_cursor c;
            order_seek(&c, &ix.order, &ix.arena, NULL, 0, false);
            for (int k = 0; k < 3; k++)
                assert_int_equal(index_entry_at(&ix, order_next(&c))->key[0], 'a' + k);
        }
        index_destroy(&ix);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_changes_keep_the_order_of_a_sorted_model),
        cmocka_unit_test(test_a_deep_tree_emptied_at_random_stays_ordered),
        cmocka_unit_test(test_keys_inserted_in_order_or_reverse_read_back_in_order),
        cmocka_unit_test(test_an_inner_node_emptied_beside_a_full_one_takes_a_child_from_it),
        cmocka_unit_test(test_random_inserts_leave_leaves_four_fifths_full),
        cmocka_unit_test(test_churn_among_full_leaves_keeps_the_order),
        cmocka_unit_test(test_a_bulk_loaded_tree_reads_and_changes_like_a_built_one),
        cmocka_unit_test(test_a_key_order_that_does_not_match_the_keys_is_refused),
        cmocka_unit_test(test_an_insert_after_a_prefetch_keeps_the_order_whatever_came_between),
    };
    return tu_run_tests(tests, argc, argv);
}
