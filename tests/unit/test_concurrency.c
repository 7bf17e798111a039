/*
 * test_concurrency.c - many threads on one handle at once, checked against
 * models: writers on their own keys, readers beside writers, compaction and
 * snapshots, and writers racing on the same key.
 *
 * Threads never call cmocka's assertions (they unwind with longjmp into the
 * main thread's frame); each records what went wrong in its own struct, and
 * the main thread asserts after joining. Every thread runs a fixed number of
 * operations: nothing waits on time, and no sleep synchronises anything.
 */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "rwlock.h"
#include "store.h"
#include "testutil.h"

static kv_options options(kv_sync_mode mode, uint64_t segment_size)
{
    kv_options o;
    kv_options_init(&o);
    o.sync_mode = mode;
    o.segment_size = segment_size;
    return o;
}

static kv_stats stats_of(kv_store *s)
{
    kv_stats st;
    assert_kv_ok(kv_get_stats(s, &st));
    return st;
}

static uint64_t rnd_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* What a thread saw go wrong: a count and the first message. */
struct problems {
    int count;
    char first[256];
};

static void problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct problems *p, const char *fmt, ...)
{
    if (p->count++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->first, sizeof(p->first), fmt, ap);
        va_end(ap);
    }
}

static void assert_no_problems(const struct problems *p, const char *who)
{
    if (p->count != 0)
        fail_msg("%s: %d problem(s), the first: %s", who, p->count, p->first);
}

static void run_threads(int n, void *(*fn)(void *), void *args, size_t arg_size)
{
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    assert_non_null(t);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * arg_size), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    free(t);
}

/* Collects every key kv_list gives, as NUL-terminated strings. */
struct key_list {
    char (*keys)[32];
    size_t n, cap;
    int too_long;
};

static int collect_key(const void *key, size_t len, void *ctx)
{
    struct key_list *l = ctx;
    if (len >= sizeof(l->keys[0])) {
        l->too_long++;
        return 0;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->keys = realloc(l->keys, l->cap * sizeof(*l->keys));
        if (!l->keys)
            return -1;
    }
    memcpy(l->keys[l->n], key, len);
    l->keys[l->n][len] = 0;
    l->n++;
    return 0;
}

static struct key_list list_keys(kv_store *s, const char *prefix)
{
    struct key_list l = {0};
    size_t plen = prefix ? strlen(prefix) : 0;
    assert_kv_ok(kv_list(s, prefix, plen, NULL, 0, 0, collect_key, &l));
    assert_int_equal(l.too_long, 0);
    return l;
}

/* ---- 1: writers on disjoint keys */

#define DJ_THREADS 8
#define DJ_KEYS    40
#define DJ_VAL_MAX 300

struct dj_model {
    bool live[DJ_KEYS];
    uint16_t len[DJ_KEYS];
    uint8_t val[DJ_KEYS][DJ_VAL_MAX];
};

/* Writers' progress, for a compactor to pace itself by. */
struct dj_shared {
    atomic_uint ops_done;
    atomic_int writers_running;
};

struct dj_thread {
    kv_store *s;
    struct dj_shared *sh;
    int id;
    int ops;
    struct dj_model m;
    uint64_t puts, deletes; /* acknowledged */
    struct problems p;
};

static void dj_key(int thread, int i, char *buf, size_t len)
{
    snprintf(buf, len, "t%d/k%03d", thread, i);
}

static void *dj_main(void *arg)
{
    struct dj_thread *t = arg;
    uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(t->id + 1);
    uint8_t val[DJ_VAL_MAX];
    char k[32];
    for (int op = 0; op < t->ops && t->p.count == 0; op++, atomic_fetch_add(&t->sh->ops_done, 1)) {
        uint64_t r = rnd_next(&x);
        int i = (int)((r >> 8) % DJ_KEYS);
        dj_key(t->id, i, k, sizeof(k));
        unsigned kind = (unsigned)(r % 100);
        if (kind < 60) {
            size_t len = (size_t)((r >> 24) % DJ_VAL_MAX); /* 0 included */
            for (size_t j = 0; j < len; j++)
                val[j] = (uint8_t)rnd_next(&x);
            int rc = kv_put(t->s, k, strlen(k), val, len);
            if (rc != 0) {
                problem(&t->p, "kv_put(%s) = %d (%s)", k, rc, kv_strerror(rc));
                continue;
            }
            t->m.live[i] = true;
            t->m.len[i] = (uint16_t)len;
            memcpy(t->m.val[i], val, len);
            t->puts++;
        } else if (kind < 85) {
            int rc = kv_delete(t->s, k, strlen(k));
            int want = t->m.live[i] ? 0 : KV_ENOTFOUND;
            if (rc != want) {
                problem(&t->p, "kv_delete(%s) = %d (%s), wanted %d", k, rc, kv_strerror(rc), want);
                continue;
            }
            if (rc == 0) {
                t->m.live[i] = false;
                t->deletes++;
            }
        } else {
            /* Read-your-writes: this thread is the only writer of k. */
            void *got = NULL;
            size_t n = 0;
            int rc = kv_get(t->s, k, strlen(k), &got, &n);
            if (!t->m.live[i]) {
                if (rc != KV_ENOTFOUND)
                    problem(&t->p, "kv_get(%s) of a deleted key = %d", k, rc);
            } else if (rc != 0) {
                problem(&t->p, "kv_get(%s) = %d (%s)", k, rc, kv_strerror(rc));
            } else if (n != t->m.len[i] || memcmp(got, t->m.val[i], n) != 0) {
                problem(&t->p, "kv_get(%s): %zu bytes, not the %u written", k, n, t->m.len[i]);
            }
            kv_free(got);
        }
    }
    atomic_fetch_sub(&t->sh->writers_running, 1);
    return NULL;
}

struct dj_compactor {
    kv_store *s;
    struct dj_shared *sh;
    int compactions;
    unsigned total_ops;
    int done;
    struct problems p;
};

/* Compacts `compactions` times, spread over the writers' progress. */
static void *dj_compactor_main(void *arg)
{
    struct dj_compactor *c = arg;
    for (int n = 0; n < c->compactions && c->p.count == 0; n++) {
        unsigned due = (unsigned)((uint64_t)n * c->total_ops / (unsigned)c->compactions);
        while (atomic_load(&c->sh->ops_done) < due && atomic_load(&c->sh->writers_running) > 0)
            sched_yield();
        int rc = kv_compact(c->s);
        if (rc != 0)
            problem(&c->p, "kv_compact #%d = %d (%s)", n, rc, kv_strerror(rc));
        else
            c->done++;
    }
    return NULL;
}

/* The store holds exactly the union of the threads' models. */
static void dj_check(kv_store *s, const struct dj_thread *t)
{
    size_t live = 0;
    for (int th = 0; th < DJ_THREADS; th++) {
        size_t thread_live = 0;
        for (int i = 0; i < DJ_KEYS; i++) {
            char k[32];
            dj_key(th, i, k, sizeof(k));
            if (!t[th].m.live[i]) {
                if (kv_exists(s, k, strlen(k)) != KV_ENOTFOUND)
                    fail_msg("deleted key %s is present", k);
                continue;
            }
            thread_live++;
            tu_assert_value(s, k, t[th].m.val[i], t[th].m.len[i]);
        }
        /* The thread's prefix lists exactly its live keys. */
        char prefix[16];
        snprintf(prefix, sizeof(prefix), "t%d/", th);
        struct key_list l = list_keys(s, prefix);
        assert_int_equal(l.n, thread_live);
        for (size_t j = 0; j < l.n; j++) {
            int i = (int)strtol(l.keys[j] + strlen(prefix) + 1, NULL, 10);
            assert_true(i >= 0 && i < DJ_KEYS);
            if (!t[th].m.live[i])
                fail_msg("kv_list names %s, which is not live", l.keys[j]);
        }
        free(l.keys);
        live += thread_live;
    }
    struct key_list all = list_keys(s, NULL);
    assert_int_equal(all.n, live);
    for (size_t j = 1; j < all.n; j++)
        assert_true(strcmp(all.keys[j - 1], all.keys[j]) < 0);
    free(all.keys);
    assert_int_equal(stats_of(s).keys, live);
}

/* DJ_THREADS writers of `ops` operations each, and with compactions > 0 a
 * thread that compacts that many times while they write. */
static void run_disjoint_writers(const char *dir, kv_sync_mode mode, uint64_t segment_size, int ops,
                                 int compactions)
{
    kv_options o = options(mode, segment_size);
    kv_store *s = tu_open_tracked(dir, &o);
    struct dj_shared sh;
    atomic_init(&sh.ops_done, 0);
    atomic_init(&sh.writers_running, DJ_THREADS);
    struct dj_thread *t = calloc(DJ_THREADS, sizeof(*t));
    assert_non_null(t);
    for (int i = 0; i < DJ_THREADS; i++) {
        t[i].s = s;
        t[i].sh = &sh;
        t[i].id = i;
        t[i].ops = ops;
    }
    struct dj_compactor c = {
        .s = s, .sh = &sh, .compactions = compactions, .total_ops = (unsigned)(DJ_THREADS * ops)};
    pthread_t ct;
    if (compactions > 0)
        assert_int_equal(pthread_create(&ct, NULL, dj_compactor_main, &c), 0);
    run_threads(DJ_THREADS, dj_main, t, sizeof(*t));
    if (compactions > 0) {
        assert_int_equal(pthread_join(ct, NULL), 0);
        assert_no_problems(&c.p, "compactor");
        assert_int_equal(c.done, compactions);
    }
    uint64_t puts = 0, deletes = 0;
    for (int i = 0; i < DJ_THREADS; i++) {
        char who[32];
        snprintf(who, sizeof(who), "writer %d", i);
        assert_no_problems(&t[i].p, who);
        puts += t[i].puts;
        deletes += t[i].deletes;
    }
    dj_check(s, t);
    kv_stats st = stats_of(s);
    assert_int_equal(st.puts, puts);
    assert_int_equal(st.deletes, deletes);
    assert_int_equal(st.checksum_errors, 0);
    assert_false(st.read_only);
    if (mode == KV_SYNC_ALWAYS) {
        /* Group commit: concurrent writers share fdatasyncs. Only the bound
         * is asserted, never how much sharing there was. */
        if (st.fsyncs > puts + deletes)
            fail_msg("%llu fsyncs for %llu writes", (unsigned long long)st.fsyncs,
                     (unsigned long long)(puts + deletes));
    }
    assert_kv_ok(tu_close_tracked(s));

    /* Reopen with the snapshot, then from the log alone. */
    for (int pass = 0; pass < 2; pass++) {
        s = tu_open_tracked(dir, &o);
        st = stats_of(s);
        assert_int_equal(st.snapshot_loaded, pass == 0);
        assert_int_equal(st.torn_bytes_truncated, 0);
        assert_int_equal(st.checksum_errors, 0);
        dj_check(s, t);
        assert_kv_ok(tu_close_tracked(s));
        char *snap = tu_path(dir, "index.snapshot");
        assert_int_equal(remove(snap), 0);
        free(snap);
    }
    free(t);
}

static void test_concurrent_writers_on_disjoint_keys_all_acknowledged_writes_visible(void **state)
{
    struct tu_fixture *fx = *state;
    char *none = tu_path(fx->root, "db-none");
    char *always = tu_path(fx->root, "db-always");
    /* Small segments: writers cross segment boundaries while racing. */
    run_disjoint_writers(none, KV_SYNC_NONE, 64u * 1024, 2000, 0);
    /* Large segments, so that the fsync count is the data syncs. */
    run_disjoint_writers(always, KV_SYNC_ALWAYS, 64u << 20, 200, 0);
    free(none);
    free(always);
}

/* Compaction runs beside writers (it seals the active segment and lets them
 * go on in a new one): puts, overwrites and deletes made meanwhile all win
 * over the copies it makes, and no deleted key comes back after a reopen. */
static void test_compaction_beside_writers_and_deleters_keeps_every_model(void **state)
{
    struct tu_fixture *fx = *state;
    char *none = tu_path(fx->root, "db-none");
    char *always = tu_path(fx->root, "db-always");
    run_disjoint_writers(none, KV_SYNC_NONE, 16u * 1024, 2000, 30);
    run_disjoint_writers(always, KV_SYNC_ALWAYS, 16u * 1024, 200, 10);
    free(none);
    free(always);
}

/* ---- 2: readers beside writers, compaction and snapshots
 *
 * A value is self-describing, so a reader can tell a right value from wrong
 * bytes without knowing which version it will get:
 *
 *   key (8 bytes, "key-NNN\0") | version u32 | pad_len u16 | pad | crc32 u32
 *
 * where pad is a pattern of (key, version) and the CRC covers everything
 * before it. Every eighth key has values over 64 KiB, larger than a segment
 * here, so that readers also take the preadv path (a record beyond the
 * active segment's mapping), while compactions retire segments. */

#define RC_KEYS        32
#define RC_WRITERS     4
#define RC_READERS     4
#define RC_WRITES      1500 /* per writer */
#define RC_READS       6000 /* per reader at least; more while writers run */
#define RC_READS_MAX   2000000
#define RC_COMPACTIONS 24
#define RC_PAD_MAX     600
#define RC_BIG_PAD     (66u * 1024)
#define RC_VAL_MAX     (8 + 4 + 2 + RC_BIG_PAD + 97 + 4)

static void rc_key(int i, char key[8])
{
    memset(key, 0, 8);
    snprintf(key, 8, "key-%03d", i);
}

static size_t rc_value(int i, uint32_t version, uint8_t *buf)
{
    char key[8];
    rc_key(i, key);
    size_t pad = 20 + (size_t)((uint32_t)i * 7919u + version * 104729u) % (RC_PAD_MAX - 20);
    if (i % 8 == 0)
        pad = RC_BIG_PAD + version % 97;
    size_t n = 0;
    memcpy(buf, key, 8);
    n += 8;
    for (int b = 0; b < 4; b++)
        buf[n++] = (uint8_t)(version >> (8 * b));
    buf[n++] = (uint8_t)pad;
    buf[n++] = (uint8_t)(pad >> 8);
    for (size_t j = 0; j < pad; j++)
        buf[n++] = (uint8_t)(i * 31 + version * 17 + j);
    uLong crc = crc32(0, buf, (uInt)n);
    for (int b = 0; b < 4; b++)
        buf[n++] = (uint8_t)(crc >> (8 * b));
    return n;
}

/* The version a value of key i encodes, or -1 when it is not a well-formed
 * value of key i. */
static int64_t rc_decode(int i, const uint8_t *v, size_t len)
{
    if (len < 8 + 4 + 2 + 4)
        return -1;
    uint32_t version =
        (uint32_t)v[8] | (uint32_t)v[9] << 8 | (uint32_t)v[10] << 16 | (uint32_t)v[11] << 24;
    uint8_t want[RC_VAL_MAX];
    size_t want_len = rc_value(i, version, want);
    if (want_len != len || memcmp(want, v, len) != 0)
        return -1;
    return version;
}

struct rc_shared {
    kv_store *s;
    /* The newest version of each key whose kv_put has returned. */
    _Atomic uint32_t acked[RC_KEYS];
    /* Writers' progress, which paces the readers and the compactor. */
    atomic_uint writes_acked;
    atomic_int writers_running;
};

struct rc_thread {
    struct rc_shared *sh;
    int id;
    uint32_t last_version[RC_KEYS]; /* writers: the last version written */
    uint64_t reads, compactions, snapshots;
    struct problems p;
};

static void *rc_writer(void *arg)
{
    struct rc_thread *t = arg;
    uint8_t buf[RC_VAL_MAX];
    char key[8];
    for (int n = 0; n < RC_WRITES && t->p.count == 0; n++) {
        /* Writer w owns the keys i with i % RC_WRITERS == w. */
        int i = t->id + RC_WRITERS * (n % (RC_KEYS / RC_WRITERS));
        uint32_t version = t->last_version[i] + 1;
        size_t len = rc_value(i, version, buf);
        rc_key(i, key);
        int rc = kv_put(t->sh->s, key, 8, buf, len);
        if (rc != 0) {
            problem(&t->p, "kv_put(%s v%u) = %d (%s)", key, version, rc, kv_strerror(rc));
            continue;
        }
        t->last_version[i] = version;
        atomic_store_explicit(&t->sh->acked[i], version, memory_order_release);
        atomic_fetch_add(&t->sh->writes_acked, 1);
    }
    atomic_fetch_sub(&t->sh->writers_running, 1);
    return NULL;
}

static void *rc_reader(void *arg)
{
    struct rc_thread *t = arg;
    uint64_t x = 0xD1B54A32D192ED03ull * (uint64_t)(t->id + 1);
    uint32_t seen[RC_KEYS] = {0};
    char key[8];
    /* At least RC_READS reads, and on for as long as writers write. */
    for (int n = 0; (n < RC_READS || atomic_load(&t->sh->writers_running) > 0) &&
                    n < RC_READS_MAX && t->p.count == 0;
         n++) {
        int i = (int)(rnd_next(&x) % RC_KEYS);
        rc_key(i, key);
        uint32_t floor = atomic_load_explicit(&t->sh->acked[i], memory_order_acquire);
        void *v = NULL;
        size_t len = 0;
        uint32_t crc = 0;
        int rc = kv_get_crc(t->sh->s, key, 8, &v, &len, &crc);
        t->reads++;
        if (rc != 0) {
            problem(&t->p, "kv_get(%s) = %d (%s)", key, rc, kv_strerror(rc));
            continue;
        }
        int64_t version = rc_decode(i, v, len);
        if (version < 0)
            problem(&t->p, "kv_get(%s): %zu bytes that are not a value of this key", key, len);
        else if ((uint32_t)version < floor)
            problem(&t->p, "kv_get(%s): version %lld, but version %u was acknowledged before", key,
                    (long long)version, floor);
        else if ((uint32_t)version < seen[i])
            problem(&t->p, "kv_get(%s): version %lld after version %u was read", key,
                    (long long)version, seen[i]);
        else if (crc != (uint32_t)crc32(0, v, (uInt)len))
            problem(&t->p, "kv_get_crc(%s): value_crc %08x is not the value's", key, crc);
        else
            seen[i] = (uint32_t)version;
        kv_free(v);
    }
    return NULL;
}

static int count_key(const void *key, size_t len, void *ctx)
{
    (void)key;
    (void)len;
    (*(size_t *)ctx)++;
    return 0;
}

static void *rc_compactor(void *arg)
{
    struct rc_thread *t = arg;
    for (int n = 0; n < RC_COMPACTIONS && t->p.count == 0; n++) {
        /* Compaction n starts once the writers are n/RC_COMPACTIONS of the
         * way through (or done), so that compactions spread over the whole
         * write phase. Paced by progress, not by time. */
        unsigned due = (unsigned)((uint64_t)n * RC_WRITERS * RC_WRITES / RC_COMPACTIONS);
        while (atomic_load(&t->sh->writes_acked) < due && atomic_load(&t->sh->writers_running) > 0)
            sched_yield();
        int rc = kv_compact(t->sh->s);
        if (rc != 0)
            problem(&t->p, "kv_compact #%d = %d (%s)", n, rc, kv_strerror(rc));
        else
            t->compactions++;
        if (n % 2 == 0) {
            rc = kv_save_snapshot(t->sh->s);
            if (rc != 0)
                problem(&t->p, "kv_save_snapshot #%d = %d (%s)", n, rc, kv_strerror(rc));
            else
                t->snapshots++;
        }
        size_t keys = 0;
        rc = kv_list(t->sh->s, NULL, 0, NULL, 0, 0, count_key, &keys);
        if (rc != 0 || keys != RC_KEYS)
            problem(&t->p, "kv_list = %d with %zu keys, wanted %d", rc, keys, RC_KEYS);
        kv_stats st;
        if (kv_get_stats(t->sh->s, &st) != 0 || st.checksum_errors != 0 || st.keys != RC_KEYS)
            problem(&t->p, "stats: %llu checksum errors, %llu keys",
                    (unsigned long long)st.checksum_errors, (unsigned long long)st.keys);
    }
    return NULL;
}

enum { RC_ROLE_WRITER, RC_ROLE_READER, RC_ROLE_COMPACTOR };

struct rc_runner {
    int role;
    struct rc_thread t;
};

static void *rc_main(void *arg)
{
    struct rc_runner *r = arg;
    if (r->role == RC_ROLE_WRITER)
        return rc_writer(&r->t);
    if (r->role == RC_ROLE_READER)
        return rc_reader(&r->t);
    return rc_compactor(&r->t);
}

static void rc_check(kv_store *s, const uint32_t *final)
{
    uint8_t buf[RC_VAL_MAX];
    for (int i = 0; i < RC_KEYS; i++) {
        char key[8];
        rc_key(i, key);
        size_t len = rc_value(i, final[i], buf);
        void *v = NULL;
        size_t n = 0;
        int rc = kv_get(s, key, 8, &v, &n); /* the key's NUL is part of it */
        if (rc != 0)
            fail_msg("kv_get(%s) = %d (%s)", key, rc, kv_strerror(rc));
        assert_int_equal(n, len);
        assert_memory_equal(v, buf, len);
        kv_free(v);
    }
    size_t keys = 0;
    assert_kv_ok(kv_list(s, NULL, 0, NULL, 0, 0, count_key, &keys));
    assert_int_equal(keys, RC_KEYS);
}

static void test_readers_never_see_torn_or_foreign_values(void **state)
{
    struct tu_fixture *fx = *state;
    kv_options o = options(KV_SYNC_NONE, 16u * 1024);
    o.max_open_files = 8; /* readers open and evict descriptors as they go */
    kv_store *s = tu_open_tracked(fx->dir, &o);
    struct rc_shared sh = {.s = s};
    atomic_init(&sh.writes_acked, 0);
    atomic_init(&sh.writers_running, RC_WRITERS);
    uint32_t final[RC_KEYS];
    uint8_t buf[RC_VAL_MAX];
    for (int i = 0; i < RC_KEYS; i++) {
        char key[8];
        rc_key(i, key);
        size_t len = rc_value(i, 1, buf);
        assert_kv_ok(kv_put(s, key, 8, buf, len));
        atomic_init(&sh.acked[i], 1);
    }

    enum { N = RC_WRITERS + RC_READERS + 1 };
    struct rc_runner *r = calloc(N, sizeof(*r));
    assert_non_null(r);
    for (int i = 0; i < N; i++) {
        r[i].role = i < RC_WRITERS                ? RC_ROLE_WRITER
                    : i < RC_WRITERS + RC_READERS ? RC_ROLE_READER
                                                  : RC_ROLE_COMPACTOR;
        r[i].t.sh = &sh;
        r[i].t.id = i < RC_WRITERS ? i : i - RC_WRITERS;
        for (int k = 0; k < RC_KEYS; k++)
            r[i].t.last_version[k] = 1;
    }
    run_threads(N, rc_main, r, sizeof(*r));

    uint64_t reads = 0;
    for (int i = 0; i < N; i++) {
        char who[32];
        snprintf(who, sizeof(who), "%s %d",
                 r[i].role == RC_ROLE_WRITER   ? "writer"
                 : r[i].role == RC_ROLE_READER ? "reader"
                                               : "compactor",
                 r[i].t.id);
        assert_no_problems(&r[i].t.p, who);
        reads += r[i].t.reads;
    }
    assert_true(reads >= (uint64_t)RC_READERS * RC_READS);
    assert_int_equal(r[N - 1].t.compactions, RC_COMPACTIONS);
    for (int i = 0; i < RC_KEYS; i++)
        final[i] = r[i % RC_WRITERS].t.last_version[i];
    for (int i = 0; i < RC_KEYS; i++)
        assert_int_equal(final[i], 1 + RC_WRITES / (RC_KEYS / RC_WRITERS) +
                                       (i / RC_WRITERS < RC_WRITES % (RC_KEYS / RC_WRITERS)));
    free(r);

    rc_check(s, final);
    kv_stats st = stats_of(s);
    assert_int_equal(st.checksum_errors, 0);
    assert_int_equal(st.puts, RC_KEYS + RC_WRITERS * RC_WRITES);
    assert_true(st.compactions >= 1);
    assert_false(st.read_only);
    assert_kv_ok(tu_close_tracked(s));

    s = tu_open_tracked(fx->dir, &o);
    st = stats_of(s);
    assert_int_equal(st.torn_bytes_truncated, 0);
    assert_int_equal(st.checksum_errors, 0);
    rc_check(s, final);
    /* Once more from the log alone, without the snapshot. */
    assert_kv_ok(tu_close_tracked(s));
    char *snap = tu_path(fx->dir, "index.snapshot");
    assert_int_equal(remove(snap), 0);
    free(snap);
    s = tu_open_tracked(fx->dir, &o);
    assert_false(stats_of(s).snapshot_loaded);
    rc_check(s, final);
    assert_kv_ok(tu_close_tracked(s));
}

/* ---- 3: writers racing on the same keys */

#define SK_THREADS 6
#define SK_KEYS    3

struct sk_thread {
    kv_store *s;
    int id;
    int rounds;
    int last_seq[SK_KEYS]; /* the seq of this thread's last acknowledged write, -1: none */
    struct problems p;
};

static void sk_key(int k, char *buf, size_t len)
{
    snprintf(buf, len, "shared-%d", k);
}

static size_t sk_value(int thread, int k, int seq, char *buf, size_t len)
{
    /* Lengths differ between writers, so that a mix-up shows in the length
     * too. */
    int n = snprintf(buf, len, "thread=%d key=%d seq=%06d %.*s", thread, k, seq, thread * 7,
                     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    return (size_t)n;
}

static void *sk_main(void *arg)
{
    struct sk_thread *t = arg;
    char key[32], val[128];
    for (int k = 0; k < SK_KEYS; k++)
        t->last_seq[k] = -1;
    for (int seq = 0; seq < t->rounds && t->p.count == 0; seq++) {
        for (int j = 0; j < SK_KEYS; j++) {
            int k = (j + t->id + seq) % SK_KEYS; /* a different order per thread */
            sk_key(k, key, sizeof(key));
            size_t len = sk_value(t->id, k, seq, val, sizeof(val));
            int rc = kv_put(t->s, key, strlen(key), val, len);
            if (rc != 0)
                problem(&t->p, "kv_put(%s) = %d (%s)", key, rc, kv_strerror(rc));
            else
                t->last_seq[k] = seq;
        }
    }
    return NULL;
}

/* Reads key k and returns which thread's last write it is; fails unless it
 * is exactly some thread's last acknowledged value. */
static int sk_winner(kv_store *s, const struct sk_thread *t, int k, char *out, size_t out_len)
{
    char key[32], want[128];
    sk_key(k, key, sizeof(key));
    void *v = NULL;
    size_t len = 0;
    int rc = kv_get(s, key, strlen(key), &v, &len);
    if (rc != 0)
        fail_msg("kv_get(%s) = %d (%s)", key, rc, kv_strerror(rc));
    int winner = -1;
    for (int th = 0; th < SK_THREADS && winner < 0; th++) {
        size_t n = sk_value(th, k, t[th].last_seq[k], want, sizeof(want));
        if (n == len && memcmp(v, want, n) == 0)
            winner = th;
    }
    if (winner < 0)
        fail_msg("%s holds \"%.*s\", which is no writer's last value", key, (int)len,
                 (const char *)v);
    assert_true(len < out_len);
    memcpy(out, v, len);
    out[len] = 0;
    kv_free(v);
    return winner;
}

static void run_same_key_writers(const char *dir, kv_sync_mode mode, int rounds)
{
    kv_options o = options(mode, 8u * 1024);
    kv_store *s = tu_open_tracked(dir, &o);
    struct sk_thread t[SK_THREADS];
    memset(t, 0, sizeof(t));
    for (int i = 0; i < SK_THREADS; i++) {
        t[i].s = s;
        t[i].id = i;
        t[i].rounds = rounds;
    }
    run_threads(SK_THREADS, sk_main, t, sizeof(t[0]));
    for (int i = 0; i < SK_THREADS; i++) {
        char who[32];
        snprintf(who, sizeof(who), "writer %d", i);
        assert_no_problems(&t[i].p, who);
        for (int k = 0; k < SK_KEYS; k++)
            assert_int_equal(t[i].last_seq[k], rounds - 1);
    }
    char before[SK_KEYS][128], after[SK_KEYS][128];
    for (int k = 0; k < SK_KEYS; k++)
        sk_winner(s, t, k, before[k], sizeof(before[k]));
    kv_stats st = stats_of(s);
    assert_int_equal(st.puts, (uint64_t)SK_THREADS * SK_KEYS * rounds);
    assert_int_equal(st.keys, SK_KEYS);
    assert_kv_ok(tu_close_tracked(s));

    /* The log's order is the order the index applied: a replay (with the
     * snapshot, then without it) ends on the same values. */
    for (int pass = 0; pass < 2; pass++) {
        s = tu_open_tracked(dir, &o);
        assert_int_equal(stats_of(s).snapshot_loaded, pass == 0);
        for (int k = 0; k < SK_KEYS; k++) {
            sk_winner(s, t, k, after[k], sizeof(after[k]));
            assert_string_equal(after[k], before[k]);
        }
        assert_kv_ok(tu_close_tracked(s));
        char *snap = tu_path(dir, "index.snapshot");
        assert_int_equal(remove(snap), 0);
        free(snap);
    }
}

static void test_same_key_concurrent_writes_last_acknowledged_order_is_consistent(void **state)
{
    struct tu_fixture *fx = *state;
    char *none = tu_path(fx->root, "db-none");
    char *always = tu_path(fx->root, "db-always");
    run_same_key_writers(none, KV_SYNC_NONE, 400);
    run_same_key_writers(always, KV_SYNC_ALWAYS, 40);
    free(none);
    free(always);
}

/* ---- 4: the store's lock
 *
 * A writer that takes the lock again the moment it lets go (as compaction's
 * relocation batches do) must not keep readers out: a reader that went to
 * sleep behind it enters before the writer's next turn. The writer holds the
 * lock nearly all the time, for up to WS_ROUNDS turns or until the reader is
 * done; the reader asks WS_READS times, each time once the writer has started
 * a new turn, and counts the write turns it waited. A reader kept out waits
 * for all of them; one let in waits a turn or two, more only while the
 * machine does not run it (the bound leaves room for a loaded CI machine). */

#define WS_ROUNDS    4000
#define WS_READS     20
#define WS_TURNS_MAX (WS_ROUNDS / 4)
#define WS_HOLD_NS   200000

struct write_storm {
    kv_store *s;
    atomic_int rounds;
    atomic_bool reader_done, writer_done;
};

static void hold_for(long ns)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < ns);
}

static void *ws_writer(void *arg)
{
    struct write_storm *w = arg;
    for (int n = 0; n < WS_ROUNDS && !atomic_load(&w->reader_done); n++) {
        kv__wrlock(&w->s->rwlock);
        atomic_fetch_add(&w->rounds, 1);
        hold_for(WS_HOLD_NS);
        kv__unlock(&w->s->rwlock);
    }
    atomic_store(&w->writer_done, true);
    return NULL;
}

static void test_readers_get_in_between_back_to_back_write_locks(void **state)
{
    struct tu_fixture *fx = *state;
    kv_store *s = tu_open_tracked(fx->dir, NULL);
    struct write_storm w = {.s = s};
    atomic_init(&w.rounds, 0);
    atomic_init(&w.reader_done, false);
    atomic_init(&w.writer_done, false);
    pthread_t writer;
    assert_int_equal(pthread_create(&writer, NULL, ws_writer, &w), 0);
    while (atomic_load(&w.rounds) < 2)
        sched_yield();
    int waited = 0;
    for (int i = 0; i < WS_READS && !atomic_load(&w.writer_done); i++) {
        /* Ask while the writer is inside a turn of its own. */
        int seen = atomic_load(&w.rounds);
        while (atomic_load(&w.rounds) == seen && !atomic_load(&w.writer_done))
            sched_yield();
        int asked = atomic_load(&w.rounds);
        kv__rdlock(&s->rwlock);
        waited += atomic_load(&w.rounds) - asked;
        kv__unlock(&s->rwlock);
    }
    atomic_store(&w.reader_done, true);
    pthread_join(writer, NULL);
    if (waited > WS_TURNS_MAX)
        fail_msg("%d reads waited %d write turns", WS_READS, waited);
    assert_kv_ok(tu_close_tracked(s));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_concurrent_writers_on_disjoint_keys_all_acknowledged_writes_visible, tu_setup,
            tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_compaction_beside_writers_and_deleters_keeps_every_model, tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_readers_get_in_between_back_to_back_write_locks,
                                        tu_setup, tu_teardown),
        cmocka_unit_test_setup_teardown(test_readers_never_see_torn_or_foreign_values, tu_setup,
                                        tu_teardown),
        cmocka_unit_test_setup_teardown(
            test_same_key_concurrent_writes_last_acknowledged_order_is_consistent, tu_setup,
            tu_teardown),
    };
    return tu_run_tests(tests, argc, argv);
}
