/*
 * test_concurrent_batches.c - readers never see part of a batch.
 *
 * Two writers each own a group of keys and write generation after
 * generation of it, every key of the group set to the generation number in
 * one kv_write (their batches share rounds of group commit), while a
 * compactor moves records between segments. Readers read a group's keys one
 * after the other in a random order. Since a batch becomes visible all at
 * once, a key read later can never hold an older generation than a key read
 * before it: the generations a reader sees, in the order it reads them,
 * never go down. A batch applied in parts would show a key of generation g
 * followed by one of g - 1.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define GROUPS      2
#define GROUP_KEYS  8
#define GENERATIONS 1500
#define READERS     2

struct shared {
    kv_store *s;
    atomic_int writers_left;
    atomic_int failures;
    char failure[256];
    pthread_mutex_t mu;
};

static void key_of(int group, int i, char *buf, size_t len)
{
    snprintf(buf, len, "g%d-key-%d", group, i);
}

static void record_failure(struct shared *sh, const char *msg)
{
    pthread_mutex_lock(&sh->mu);
    if (atomic_fetch_add(&sh->failures, 1) == 0)
        snprintf(sh->failure, sizeof(sh->failure), "%s", msg);
    pthread_mutex_unlock(&sh->mu);
}

/* Writes generation g of a group: every key set to g, in one batch. */
static int write_generation(kv_store *s, int group, unsigned g)
{
    char keys[GROUP_KEYS][24];
    char vals[GROUP_KEYS][16];
    kv_op ops[GROUP_KEYS];
    for (int i = 0; i < GROUP_KEYS; i++) {
        key_of(group, i, keys[i], sizeof(keys[i]));
        /* Values of different lengths, so the records differ in size. */
        snprintf(vals[i], sizeof(vals[i]), "%0*u", 6 + i, g);
        ops[i] = (kv_op){.type = KV_WRITE_PUT,
                         .key = keys[i],
                         .key_len = strlen(keys[i]),
                         .val = vals[i],
                         .val_len = strlen(vals[i])};
    }
    return kv_write(s, ops, GROUP_KEYS);
}

struct writer {
    struct shared *sh;
    int group;
    pthread_t thread;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (unsigned g = 2; g <= GENERATIONS; g++) {
        int rc = write_generation(w->sh->s, w->group, g);
        if (rc != 0) {
            char msg[128];
            snprintf(msg, sizeof(msg), "kv_write of generation %u: %s", g, kv_strerror(rc));
            record_failure(w->sh, msg);
            break;
        }
    }
    atomic_fetch_sub(&w->sh->writers_left, 1);
    return NULL;
}

struct reader {
    struct shared *sh;
    unsigned seed;
    unsigned long reads;
    pthread_t thread;
};

/* One pass over a group's keys in a random order; false on a failure. */
static bool read_group(struct reader *r, int group)
{
    int order[GROUP_KEYS];
    for (int i = 0; i < GROUP_KEYS; i++)
        order[i] = i;
    for (int i = GROUP_KEYS - 1; i > 0; i--) {
        int j = (int)(rand_r(&r->seed) % (unsigned)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    unsigned long last = 0;
    for (int i = 0; i < GROUP_KEYS; i++) {
        char k[24];
        key_of(group, order[i], k, sizeof(k));
        void *v = NULL;
        size_t len = 0;
        int rc = kv_get(r->sh->s, k, strlen(k), &v, &len);
        if (rc != 0) {
            char msg[128];
            snprintf(msg, sizeof(msg), "kv_get(%s) = %s", k, kv_strerror(rc));
            record_failure(r->sh, msg);
            return false;
        }
        unsigned long g = strtoul(v, NULL, 10);
        kv_free(v);
        r->reads++;
        if (g < last) {
            char msg[160];
            snprintf(msg, sizeof(msg),
                     "group %d: %s read generation %lu after a key of generation %lu: part of "
                     "a batch was visible",
                     group, k, g, last);
            record_failure(r->sh, msg);
            return false;
        }
        last = g;
    }
    return true;
}

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    while (atomic_load(&r->sh->writers_left) > 0 && atomic_load(&r->sh->failures) == 0) {
        if (!read_group(r, (int)(rand_r(&r->seed) % GROUPS)))
            break;
    }
    return NULL;
}

static void *compactor_main(void *arg)
{
    struct shared *sh = arg;
    while (atomic_load(&sh->writers_left) > 0 && atomic_load(&sh->failures) == 0) {
        int rc = kv_compact(sh->s);
        if (rc != 0) {
            record_failure(sh, "kv_compact failed");
            break;
        }
        tu_pause_ms(5);
    }
    return NULL;
}

static void test_readers_never_see_part_of_a_batch(void **state)
{
    struct tu_fixture *fx = *state;
    kv_options o;
    kv_options_init(&o);
    o.sync_mode = KV_SYNC_NONE;
    o.segment_size = 16u * 1024;
    o.compaction_interval_secs = 0;
    struct shared sh = {.s = tu_open_tracked(fx->dir, &o)};
    pthread_mutex_init(&sh.mu, NULL);
    for (int grp = 0; grp < GROUPS; grp++)
        assert_kv_ok(write_generation(sh.s, grp, 1));
    atomic_store(&sh.writers_left, GROUPS);

    struct writer w[GROUPS];
    struct reader r[READERS];
    pthread_t compactor;
    for (int i = 0; i < READERS; i++) {
        r[i] = (struct reader){.sh = &sh, .seed = 7u + (unsigned)i};
        assert_int_equal(pthread_create(&r[i].thread, NULL, reader_main, &r[i]), 0);
    }
    assert_int_equal(pthread_create(&compactor, NULL, compactor_main, &sh), 0);
    for (int i = 0; i < GROUPS; i++) {
        w[i] = (struct writer){.sh = &sh, .group = i};
        assert_int_equal(pthread_create(&w[i].thread, NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < GROUPS; i++)
        pthread_join(w[i].thread, NULL);
    pthread_join(compactor, NULL);
    unsigned long reads = 0;
    for (int i = 0; i < READERS; i++) {
        pthread_join(r[i].thread, NULL);
        reads += r[i].reads;
    }
    if (atomic_load(&sh.failures) > 0)
        fail_msg("%s", sh.failure);
    assert_true(reads > 0);

    /* Every key ends at the last generation, after a reopen too. */
    assert_kv_ok(tu_close_tracked(sh.s));
    sh.s = tu_open_tracked(fx->dir, &o);
    char want[GROUP_KEYS][16];
    for (int i = 0; i < GROUP_KEYS; i++)
        snprintf(want[i], sizeof(want[i]), "%0*u", 6 + i, (unsigned)GENERATIONS);
    for (int grp = 0; grp < GROUPS; grp++) {
        for (int i = 0; i < GROUP_KEYS; i++) {
            char k[24];
            key_of(grp, i, k, sizeof(k));
            tu_assert_str(sh.s, k, want[i]);
        }
    }
    assert_kv_ok(tu_close_tracked(sh.s));
    pthread_mutex_destroy(&sh.mu);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_readers_never_see_part_of_a_batch, tu_setup,
                                        tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
