/*
 * test_range_concurrency.c - ranges read while other threads write and
 * compact: each range comes in ascending order, reads every key that stays
 * in the store throughout exactly once with its value, and never a key
 * that was never written. Run under TSan too (make test-sanitize).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define STABLE 3000 /* keys written before the readers start, never changed */
#define CHURN  3000 /* keys written and deleted while they read */

struct shared {
    kv_store *s;
    atomic_int stop;
    atomic_int writes;
};

/* Stable key i is "k<i*2>", churning key i "k<i*2+1>", both zero-padded:
 * the two sets interleave in key order. */
static size_t key_of(size_t n, char *buf)
{
    return (size_t)snprintf(buf, 16, "k%06zu", n);
}

static void *writer(void *arg)
{
    struct shared *sh = arg;
    uint64_t x = 99;
    while (!atomic_load(&sh->stop)) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        char k[16];
        size_t len = key_of(2 * ((x >> 33) % CHURN) + 1, k);
        int rc = (x >> 20) % 2 ? kv_put(sh->s, k, len, "churn", 5) : kv_delete(sh->s, k, len);
        if (rc != 0 && rc != KV_ENOTFOUND)
            fail_msg("a write failed: %s", kv_strerror(rc));
        atomic_fetch_add(&sh->writes, 1);
    }
    return NULL;
}

static void *compactor(void *arg)
{
    struct shared *sh = arg;
    while (!atomic_load(&sh->stop)) {
        int rc = kv_compact(sh->s);
        if (rc != 0)
            fail_msg("kv_compact: %s", kv_strerror(rc));
    }
    return NULL;
}

struct seen {
    unsigned stable[STABLE];
    size_t n;
    char last[16];
    size_t last_len;
    bool bad_order, bad_key, bad_value;
};

static int check_entry(const void *key, size_t key_len, const void *val, size_t val_len, void *ctx)
{
    struct seen *sn = ctx;
    if (sn->n > 0 && (memcmp(sn->last, key, key_len < sn->last_len ? key_len : sn->last_len) > 0 ||
                      (key_len == sn->last_len && memcmp(sn->last, key, key_len) == 0)))
        sn->bad_order = true;
    memcpy(sn->last, key, key_len);
    sn->last_len = key_len;
    sn->n++;
    char buf[16];
    memcpy(buf, key, key_len);
    buf[key_len] = 0;
    long n = strtol(buf + 1, NULL, 10);
    if (key_len != 7 || buf[0] != 'k' || n < 0 || n >= 2 * STABLE) {
        sn->bad_key = true;
    } else if (n % 2 == 0) {
        sn->stable[n / 2]++;
        sn->bad_value |= val_len != 6 || memcmp(val, "stable", 6) != 0;
    } else {
        sn->bad_value |= val_len != 5 || memcmp(val, "churn", 5) != 0;
    }
    return 0;
}

static void test_ranges_read_while_writing_and_compacting_see_every_lasting_key_once(void **state)
{
    struct tu_fixture *f = *state;
    kv_options o;
    kv_options_init(&o);
    o.sync_mode = KV_SYNC_NONE;
    o.segment_size = 64 << 10;
    o.compaction_interval_secs = 0;
    struct shared sh = {.s = tu_open_tracked(f->dir, &o)};
    for (size_t i = 0; i < STABLE; i++) {
        char k[16];
        size_t len = key_of(2 * i, k);
        assert_kv_ok(kv_put(sh.s, k, len, "stable", 6));
    }
    pthread_t w, c;
    assert_int_equal(pthread_create(&w, NULL, writer, &sh), 0);
    assert_int_equal(pthread_create(&c, NULL, compactor, &sh), 0);
    struct seen *sn = malloc(sizeof(*sn));
    int rounds = 0;
    uint64_t until = tu_now_ms() + TU_WAIT_MS;
    /* Enough rounds that writes happen during them (bounded in time on a
     * slow machine). */
    while (rounds < 200 || (atomic_load(&sh.writes) < 1000 && tu_now_ms() < until)) {
        memset(sn, 0, sizeof(*sn));
        kv_range_opts r = {.flags = rounds % 2 ? KV_RANGE_VALUES : 0};
        assert_kv_ok(kv_range(sh.s, &r, check_entry, sn));
        if (!(r.flags & KV_RANGE_VALUES))
            sn->bad_value = false;
        if (sn->bad_order || sn->bad_key || sn->bad_value)
            fail_msg("round %d: order %d, key %d, value %d", rounds, sn->bad_order, sn->bad_key,
                     sn->bad_value);
        for (size_t i = 0; i < STABLE; i++)
            if (sn->stable[i] != 1)
                fail_msg("round %d: stable key %zu read %u times", rounds, i, sn->stable[i]);
        rounds++;
    }
    atomic_store(&sh.stop, 1);
    pthread_join(w, NULL);
    pthread_join(c, NULL);
    free(sn);
    assert_kv_ok(tu_close_tracked(sh.s));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_ranges_read_while_writing_and_compacting_see_every_lasting_key_once, tu_setup,
            tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
