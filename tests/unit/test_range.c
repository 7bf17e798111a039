/*
 * test_range.c - kv_range and kv_list through the public API against a
 * sorted model: random puts, overwrites and deletes, reopens through the
 * snapshot and through a full replay, compactions, and every kind of range
 * (start or after, end, prefix, limit, keys or values) checked against the
 * model after each phase; values and their checksums; the callback calling
 * back into the store; bad arguments.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define NKEYS 3000

/* The candidate keys, sorted once: key i is the i-th smallest. */
struct keys {
    char k[NKEYS][24];
    size_t len[NKEYS];
};

static int raw_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

/* strcmp orders NUL-free strings as raw_cmp does (bytes unsigned, the
 * shorter first when one begins the other). */
static int by_key(const void *a, const void *b)
{
    return strcmp(a, b);
}

static uint64_t rng(uint64_t *x)
{
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return *x >> 17;
}

/* Keys in a few "directories" (prefixes to list), with lengths that make
 * some keys prefixes of others, and a few bytes outside ASCII. */
static struct keys *keys_make(void)
{
    struct keys *ks = calloc(1, sizeof(*ks));
    static const char *dirs[] = {"a/", "a/b/", "b/", "", "photos/2024/", "\xff"};
    uint64_t x = 3;
    for (size_t i = 0; i < NKEYS; i++) {
        int n;
        do {
            const char *d = dirs[rng(&x) % 6];
            n = snprintf(ks->k[i], sizeof(ks->k[i]), "%s%llu", d,
                         (unsigned long long)(rng(&x) % (NKEYS * 3)));
            ks->len[i] = (size_t)n;
            /* Unique: regenerate a duplicate. */
            for (size_t j = 0; j < i && n > 0; j++)
                if (raw_cmp(ks->k[j], ks->len[j], ks->k[i], ks->len[i]) == 0)
                    n = -1;
        } while (n < 0);
    }
    qsort(ks->k, NKEYS, sizeof(ks->k[0]), by_key);
    for (size_t i = 0; i < NKEYS; i++)
        ks->len[i] = strlen(ks->k[i]);
    return ks;
}

struct model {
    const struct keys *ks;
    uint32_t version[NKEYS]; /* 0: absent; else the value's version */
};

/* The value of key i at version v: its length varies with both. */
static size_t value_of(size_t i, uint32_t v, char *buf)
{
    int n = snprintf(buf, 64, "v%u-of-%zu", v, i);
    size_t len = (size_t)n + (i + v) % 23;
    memset(buf + n, 'x', len - (size_t)n);
    return len;
}

struct got {
    size_t n;
    size_t key[NKEYS + 1];
    bool value_ok[NKEYS + 1];
    const struct model *m;
    size_t stop_after; /* 0: never */
};

static size_t find_key(const struct keys *ks, const void *key, size_t len)
{
    size_t lo = 0, hi = NKEYS;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (raw_cmp(ks->k[mid], ks->len[mid], key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int collect(const void *key, size_t key_len, const void *val, size_t val_len, void *ctx)
{
    struct got *g = ctx;
    size_t i = find_key(g->m->ks, key, key_len);
    if (i == NKEYS || raw_cmp(g->m->ks->k[i], g->m->ks->len[i], key, key_len) != 0)
        fail_msg("kv_range gave a key the model never had");
    g->key[g->n] = i;
    if (val) {
        char want[64];
        size_t wlen = value_of(i, g->m->version[i], want);
        g->value_ok[g->n] = val_len == wlen && memcmp(val, want, wlen) == 0;
    }
    g->n++;
    return g->stop_after && g->n == g->stop_after ? 7 : 0;
}

/* The model's answer to r: the indexes of the keys it reads. */
static size_t model_range(const struct model *m, const kv_range_opts *r, size_t *out)
{
    const struct keys *ks = m->ks;
    size_t n = 0;
    for (size_t i = 0; i < NKEYS; i++) {
        if (!m->version[i])
            continue;
        if (r->start_len) {
            int c = raw_cmp(ks->k[i], ks->len[i], r->start, r->start_len);
            if (c < 0 || (c == 0 && (r->flags & KV_RANGE_AFTER)))
                continue;
        }
        if (r->end_len && raw_cmp(ks->k[i], ks->len[i], r->end, r->end_len) >= 0)
            continue;
        if (r->prefix_len &&
            (ks->len[i] < r->prefix_len || memcmp(ks->k[i], r->prefix, r->prefix_len) != 0))
            continue;
        if (r->limit && n == r->limit)
            break;
        out[n++] = i;
    }
    return n;
}

static void check_one_range(kv_store *s, const struct model *m, const kv_range_opts *r)
{
    static size_t want[NKEYS];
    static struct got g;
    memset(&g, 0, sizeof(g));
    g.m = m;
    size_t n = model_range(m, r, want);
    assert_kv_ok(kv_range(s, r, collect, &g));
    if (g.n != n)
        fail_msg("kv_range read %zu keys, the model %zu (start %zu bytes, end %zu, prefix %zu, "
                 "limit %zu, flags %u)",
                 g.n, n, r->start_len, r->end_len, r->prefix_len, r->limit, r->flags);
    for (size_t k = 0; k < n; k++) {
        if (g.key[k] != want[k])
            fail_msg("key %zu of a range is key %zu, the model's %zu", k, g.key[k], want[k]);
        if ((r->flags & KV_RANGE_VALUES) && !g.value_ok[k])
            fail_msg("key %zu of a range came with the wrong value", k);
    }
}

/* A bound near key i: the key, a prefix of it, or the key with a byte
 * added. */
static size_t bound_near(const struct keys *ks, size_t i, uint64_t *x, char *buf)
{
    size_t len = ks->len[i];
    memcpy(buf, ks->k[i], len);
    switch (rng(x) % 3) {
    case 1:
        return 1 + rng(x) % len;
    case 2:
        buf[len] = (char)(rng(x) % 3 == 0 ? 0 : '5');
        return len + 1;
    default:
        return len;
    }
}

static void check_ranges(kv_store *s, const struct model *m, uint64_t *x, int count)
{
    const struct keys *ks = m->ks;
    static const char *prefixes[] = {"a/",   "a/b/", "b/", "photos/", "photos/2024/1",
                                     "\xff", "1",    "zzz"};
    kv_range_opts all = {0};
    check_one_range(s, m, &all);
    for (int q = 0; q < count; q++) {
        char start[32], end[32];
        kv_range_opts r = {0};
        if (rng(x) % 4 != 0) {
            r.start = start;
            r.start_len = bound_near(ks, rng(x) % NKEYS, x, start);
        }
        if (rng(x) % 3 == 0) {
            r.end = end;
            r.end_len = bound_near(ks, rng(x) % NKEYS, x, end);
        }
        if (rng(x) % 3 == 0) {
            r.prefix = prefixes[rng(x) % 8];
            r.prefix_len = strlen(r.prefix);
        }
        uint64_t l = rng(x) % 5;
        r.limit = l == 0 ? 0 : l == 1 ? 1 : l == 2 ? 1 + rng(x) % 10 : 1 + rng(x) % 2000;
        r.flags = (unsigned)(rng(x) % 4);
        check_one_range(s, m, &r);
    }
}

static void put_version(kv_store *s, struct model *m, size_t i, uint32_t v)
{
    char val[64];
    size_t len = value_of(i, v, val);
    assert_kv_ok(kv_put(s, m->ks->k[i], m->ks->len[i], val, len));
    m->version[i] = v;
}

static void random_changes(kv_store *s, struct model *m, uint64_t *x, int steps, int remove_pct)
{
    for (int step = 0; step < steps; step++) {
        size_t i = rng(x) % NKEYS;
        if ((int)(rng(x) % 100) < remove_pct) {
            assert_kv_rc(kv_delete(s, m->ks->k[i], m->ks->len[i]),
                         m->version[i] ? 0 : KV_ENOTFOUND);
            m->version[i] = 0;
        } else {
            put_version(s, m, i, m->version[i] + 1);
        }
    }
}

static kv_options small_options(void)
{
    kv_options o;
    kv_options_init(&o);
    o.sync_mode = KV_SYNC_NONE;
    o.segment_size = 64 << 10;
    o.compaction_interval_secs = 0;
    return o;
}

static void test_ranges_match_a_sorted_model_through_reopens_and_compactions(void **state)
{
    struct tu_fixture *f = *state;
    struct keys *ks = keys_make();
    struct model *m = calloc(1, sizeof(*m));
    m->ks = ks;
    kv_options o = small_options();
    kv_store *s = tu_open_tracked(f->dir, &o);
    uint64_t x = 11;
    for (int phase = 0; phase < 8; phase++) {
        random_changes(s, m, &x, 2500, phase % 3 == 2 ? 70 : 25);
        check_ranges(s, m, &x, 60);
        switch (phase % 4) {
        case 0: /* reopen through the snapshot */
            assert_kv_ok(tu_close_tracked(s));
            s = tu_open_tracked(f->dir, &o);
            break;
        case 1: /* reopen replaying the whole log */
            assert_kv_ok(tu_close_tracked(s));
            {
                char *snap = tu_path(f->dir, "index.snapshot");
                assert_int_equal(unlink(snap), 0);
                free(snap);
            }
            s = tu_open_tracked(f->dir, &o);
            break;
        case 2:
            assert_kv_ok(kv_compact(s));
            break;
        default: /* a snapshot, then more writes replayed over it */
            assert_kv_ok(kv_save_snapshot(s));
            random_changes(s, m, &x, 500, 40);
            assert_kv_ok(tu_close_tracked(s));
            s = tu_open_tracked(f->dir, &o);
            break;
        }
        check_ranges(s, m, &x, 60);
    }
    assert_kv_ok(tu_close_tracked(s));
    free(m);
    free(ks);
}

/* A range longer than a page, read through pages: every key once, in
 * order, with its value. */
static void test_a_range_longer_than_a_page_reads_every_key_once(void **state)
{
    struct tu_fixture *f = *state;
    struct keys *ks = keys_make();
    struct model *m = calloc(1, sizeof(*m));
    m->ks = ks;
    kv_options o = small_options();
    kv_store *s = tu_open_tracked(f->dir, &o);
    for (size_t i = 0; i < NKEYS; i++)
        put_version(s, m, i, 1);
    assert_true(NKEYS > 2 * KV_RANGE_PAGE);
    kv_range_opts r = {.flags = KV_RANGE_VALUES};
    check_one_range(s, m, &r);
    r.limit = KV_RANGE_PAGE + 1;
    check_one_range(s, m, &r);
    assert_kv_ok(tu_close_tracked(s));
    free(m);
    free(ks);
}

static void test_the_callback_stops_a_range_and_its_code_is_returned(void **state)
{
    struct tu_fixture *f = *state;
    struct keys *ks = keys_make();
    struct model *m = calloc(1, sizeof(*m));
    m->ks = ks;
    kv_store *s = tu_open_tracked(f->dir, NULL);
    for (size_t i = 0; i < 50; i++)
        put_version(s, m, i, 1);
    static struct got g;
    memset(&g, 0, sizeof(g));
    g.m = m;
    g.stop_after = 3;
    kv_range_opts r = {.flags = KV_RANGE_VALUES};
    assert_kv_rc(kv_range(s, &r, collect, &g), 7);
    assert_int_equal(g.n, 3);
    assert_kv_ok(tu_close_tracked(s));
    free(m);
    free(ks);
}

/* fn runs with no lock held: it may read and write the store. */
static int write_back(const void *key, size_t key_len, const void *val, size_t val_len, void *ctx)
{
    kv_store *s = ctx;
    void *v;
    size_t n;
    assert_kv_ok(kv_get(s, key, key_len, &v, &n));
    assert_int_equal(n, val_len);
    kv_free(v);
    char copy[64];
    memcpy(copy, key, key_len);
    copy[key_len] = '~';
    assert_kv_ok(kv_put(s, copy, key_len + 1, val, val_len));
    return 0;
}

static void test_the_callback_may_read_and_write_the_store(void **state)
{
    struct tu_fixture *f = *state;
    kv_store *s = tu_open_tracked(f->dir, NULL);
    assert_kv_ok(kv_put(s, "k1", 2, "one", 3));
    assert_kv_ok(kv_put(s, "k2", 2, "two", 3));
    kv_range_opts r = {.end = "k3", .end_len = 2, .flags = KV_RANGE_VALUES};
    assert_kv_ok(kv_range(s, &r, write_back, s));
    tu_assert_str(s, "k1~", "one");
    tu_assert_str(s, "k2~", "two");
    assert_kv_ok(tu_close_tracked(s));
}

static int count_keys(const void *key, size_t key_len, const void *val, size_t val_len, void *ctx)
{
    (void)key;
    (void)key_len;
    (void)val;
    (void)val_len;
    (*(size_t *)ctx)++;
    return 0;
}

/* A damaged record stops a range with values at that key, after the keys
 * before it; a range of keys only does not read values and is not
 * stopped. */
static void test_a_damaged_value_stops_a_range_with_values_at_its_key(void **state)
{
    struct tu_fixture *f = *state;
    kv_store *s = tu_open_tracked(f->dir, NULL);
    assert_kv_ok(kv_put(s, "a", 1, "first", 5));
    assert_kv_ok(kv_put(s, "b", 1, "second", 6));
    assert_kv_ok(kv_put(s, "c", 1, "third", 5));
    assert_kv_ok(tu_close_tracked(s));
    /* The value of "b": after the first record (11 + 1 + 5 + 4 bytes), its
     * header (11) and key (1). */
    char *seg = tu_path(f->dir, "segment-1.dat");
    tu_flip_byte(seg, 21 + 11 + 1 + 2);
    free(seg);
    s = tu_open_tracked(f->dir, NULL);
    size_t n = 0;
    kv_range_opts values = {.flags = KV_RANGE_VALUES};
    assert_kv_rc(kv_range(s, &values, count_keys, &n), KV_ECORRUPT);
    assert_int_equal(n, 1);
    n = 0;
    kv_range_opts keys = {0};
    assert_kv_ok(kv_range(s, &keys, count_keys, &n));
    assert_int_equal(n, 3);
    assert_kv_ok(tu_close_tracked(s));
}

static void test_range_refuses_bad_arguments(void **state)
{
    struct tu_fixture *f = *state;
    kv_store *s = tu_open_tracked(f->dir, NULL);
    size_t n = 0;
    kv_range_opts ok = {0};
    assert_kv_rc(kv_range(NULL, &ok, count_keys, &n), KV_EINVAL);
    assert_kv_rc(kv_range(s, NULL, count_keys, &n), KV_EINVAL);
    assert_kv_rc(kv_range(s, &ok, NULL, &n), KV_EINVAL);
    kv_range_opts bad[] = {{.start_len = 1}, {.end_len = 1}, {.prefix_len = 1}, {.flags = 0x80}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_kv_rc(kv_range(s, &bad[i], count_keys, &n), KV_EINVAL);
    assert_kv_ok(kv_range(s, &ok, count_keys, &n));
    assert_int_equal(n, 0);
    assert_kv_ok(tu_close_tracked(s));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_ranges_match_a_sorted_model_through_reopens_and_compactions, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(test_a_range_longer_than_a_page_reads_every_key_once,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_the_callback_stops_a_range_and_its_code_is_returned,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_the_callback_may_read_and_write_the_store, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(test_a_damaged_value_stops_a_range_with_values_at_its_key,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_range_refuses_bad_arguments, tu_setup, tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
