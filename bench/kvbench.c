/*
 * kvbench.c - workloads in the style of LevelDB's db_bench, run against
 * libkvstore through its public API.
 *
 *   kvbench [--num N] [--key-size B] [--value-size B] [--threads T]
 *           [--dir DIR] [--benchmarks a,b,c] [--json]
 *
 * Workloads: fillseq, fillrandom, overwrite, readrandom, readmissing,
 * deleterandom, fillsync (sync mode always; with --threads writers), compact,
 * open (reopen via the snapshot and via full replay), memory (index bytes and
 * RSS growth per key). Each prints throughput and latency percentiles from a
 * log-bucketed histogram. Nothing here asserts a number.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvstore.h"

struct config {
    uint64_t num;
    size_t key_size, value_size;
    int threads;
    char dir[4096];
    const char *benchmarks;
    bool json;
};

/* ---- latency histogram: buckets of 1/8 octave over nanoseconds */

#define HIST_BUCKETS 400

struct hist {
    uint64_t count[HIST_BUCKETS];
    uint64_t n;
};

static int bucket_of(uint64_t ns)
{
    if (ns < 8)
        return (int)ns;
    int lg = 63 - __builtin_clzll(ns);
    int sub = (int)((ns >> (lg - 3)) & 7);
    int b = 8 + (lg - 3) * 8 + sub;
    return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

static uint64_t bucket_upper(int b)
{
    if (b < 8)
        return (uint64_t)b;
    int lg = (b - 8) / 8 + 3, sub = (b - 8) % 8;
    return ((uint64_t)(8 + sub + 1)) << (lg - 3);
}

static void hist_add(struct hist *h, uint64_t ns)
{
    h->count[bucket_of(ns)]++;
    h->n++;
}

static void hist_merge(struct hist *into, const struct hist *from)
{
    for (int i = 0; i < HIST_BUCKETS; i++)
        into->count[i] += from->count[i];
    into->n += from->n;
}

static double hist_pct(const struct hist *h, double p)
{
    uint64_t want = (uint64_t)(p / 100.0 * (double)h->n), seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen > want)
            return (double)bucket_upper(i) / 1000.0;
    }
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- keys and values */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Key i as key_size bytes: a decimal number, zero-padded (fillseq order is
 * also sort order). Missing keys use a different first byte. */
static void make_key(const struct config *c, uint64_t i, char *buf, bool missing)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%020llu", (unsigned long long)i);
    size_t len = c->key_size;
    memset(buf, '0', len);
    size_t take = (size_t)n < len ? (size_t)n : len;
    memcpy(buf + len - take, tmp + n - take, take);
    if (missing)
        buf[0] = 'x';
}

struct run {
    const struct config *c;
    kv_store *s;
    const char *name;
    int op; /* what each thread does */
    uint64_t per_thread;
    int thread;
    struct hist h;
    uint64_t found, errors;
    const char *value;
};

enum { OP_FILLSEQ, OP_FILLRANDOM, OP_READ, OP_READMISSING, OP_DELETE };

static void *worker(void *arg)
{
    struct run *r = arg;
    const struct config *c = r->c;
    char key[256];
    uint64_t seed = mix((uint64_t)r->thread + 1);
    for (uint64_t i = 0; i < r->per_thread; i++) {
        uint64_t k = r->op == OP_FILLSEQ ? r->thread * r->per_thread + i : mix(seed + i) % c->num;
        make_key(c, k, key, r->op == OP_READMISSING);
        uint64_t t0 = now_ns();
        int rc;
        if (r->op == OP_FILLSEQ || r->op == OP_FILLRANDOM) {
            rc = kv_put(r->s, key, c->key_size, r->value, c->value_size);
        } else if (r->op == OP_DELETE) {
            rc = kv_delete(r->s, key, c->key_size);
            rc = rc == KV_ENOTFOUND ? 0 : rc;
        } else {
            void *v;
            size_t n;
            rc = kv_get(r->s, key, c->key_size, &v, &n);
            if (rc == 0) {
                r->found++;
                kv_free(v);
            }
            rc = rc == KV_ENOTFOUND ? 0 : rc;
        }
        hist_add(&r->h, now_ns() - t0);
        if (rc != 0)
            r->errors++;
    }
    return NULL;
}

static void report(const struct config *c, const char *name, int threads, uint64_t ops, uint64_t ns,
                   const struct hist *h, const char *extra)
{
    double secs = (double)ns / 1e9;
    double rate = secs > 0 ? (double)ops / secs : 0;
    if (c->json) {
        printf("{\"engine\":\"mini-kvstore\",\"workload\":\"%s\",\"threads\":%d,\"ops\":%llu,"
               "\"ops_per_sec\":%.0f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f%s%s}\n",
               name, threads, (unsigned long long)ops, rate, hist_pct(h, 50), hist_pct(h, 99),
               hist_pct(h, 99.9), extra && *extra ? "," : "", extra ? extra : "");
    } else {
        printf("%-14s %3d thr %10.0f ops/s   p50 %8.2f us  p99 %8.2f us  p99.9 %8.2f us  %s\n",
               name, threads, rate, hist_pct(h, 50), hist_pct(h, 99), hist_pct(h, 99.9),
               extra ? extra : "");
    }
    fflush(stdout);
}

static uint64_t run_threads(const struct config *c, kv_store *s, const char *name, int op,
                            int threads, uint64_t total, uint64_t *found)
{
    struct run *runs = calloc((size_t)threads, sizeof(*runs));
    pthread_t *tids = calloc((size_t)threads, sizeof(*tids));
    char *value = malloc(c->value_size + 1);
    for (size_t i = 0; i < c->value_size; i++)
        value[i] = (char)('a' + i % 26);
    uint64_t t0 = now_ns();
    for (int t = 0; t < threads; t++) {
        runs[t] = (struct run){.c = c,
                               .s = s,
                               .name = name,
                               .op = op,
                               .thread = t,
                               .per_thread = total / (uint64_t)threads,
                               .value = value};
        pthread_create(&tids[t], NULL, worker, &runs[t]);
    }
    struct hist h = {0};
    uint64_t errors = 0, f = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        hist_merge(&h, &runs[t].h);
        errors += runs[t].errors;
        f += runs[t].found;
    }
    uint64_t ns = now_ns() - t0;
    char extra[96] = "";
    if (errors)
        snprintf(extra, sizeof(extra), "errors=%llu", (unsigned long long)errors);
    report(c, name, threads, h.n, ns, &h, extra);
    if (found)
        *found = f;
    free(runs);
    free(tids);
    free(value);
    return ns;
}

static kv_store *open_store(const struct config *c, kv_sync_mode mode, bool fresh)
{
    if (fresh) {
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "kvbench: could not clear %s\n", c->dir);
    }
    kv_options o;
    kv_options_init(&o);
    o.sync_mode = mode;
    kv_store *s = NULL;
    int rc = kv_open(c->dir, &o, &s);
    if (rc != 0) {
        fprintf(stderr, "kvbench: open %s: %s\n", c->dir, kv_strerror(rc));
        exit(1);
    }
    return s;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    char line[128] = "";
    if (f) {
        if (!fgets(line, sizeof(line), f))
            line[0] = 0;
        fclose(f);
    }
    char *end;
    strtol(line, &end, 10); /* total pages, then resident pages */
    long resident = strtol(end, NULL, 10);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static bool wants(const struct config *c, const char *name)
{
    const char *p = c->benchmarks;
    size_t n = strlen(name);
    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

static void bench_open(const struct config *c)
{
    char path[4200];
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            snprintf(path, sizeof(path), "%s/index.snapshot", c->dir);
            unlink(path);
        }
        uint64_t t0 = now_ns();
        kv_store *s = open_store(c, KV_SYNC_NONE, false);
        uint64_t ns = now_ns() - t0;
        kv_stats st;
        kv_get_stats(s, &st);
        struct hist h = {0};
        hist_add(&h, ns);
        char extra[128];
        snprintf(extra, sizeof(extra), "keys=%llu open_ms=%.1f", (unsigned long long)st.keys,
                 (double)ns / 1e6);
        report(c, pass == 0 ? "open-snapshot" : "open-replay", 1, 1, ns, &h, extra);
        kv_close(s);
    }
}

int main(int argc, char **argv)
{
    struct config c = {.num = 1000000,
                       .key_size = 16,
                       .value_size = 100,
                       .threads = 1,
                       .benchmarks = "fillseq,fillrandom,overwrite,readrandom,readmissing,"
                                     "deleterandom,fillsync,compact,open,memory"};
    snprintf(c.dir, sizeof(c.dir), "/tmp/kvbench-%d", (int)getpid());
    static const struct option longopts[] = {{"num", required_argument, 0, 'n'},
                                             {"key-size", required_argument, 0, 'k'},
                                             {"value-size", required_argument, 0, 'v'},
                                             {"threads", required_argument, 0, 't'},
                                             {"dir", required_argument, 0, 'd'},
                                             {"benchmarks", required_argument, 0, 'b'},
                                             {"json", no_argument, 0, 'j'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            c.num = strtoull(optarg, NULL, 10);
            break;
        case 'k':
            c.key_size = strtoul(optarg, NULL, 10);
            break;
        case 'v':
            c.value_size = strtoul(optarg, NULL, 10);
            break;
        case 't':
            c.threads = (int)strtol(optarg, NULL, 10);
            break;
        case 'd':
            snprintf(c.dir, sizeof(c.dir), "%s", optarg);
            break;
        case 'b':
            c.benchmarks = optarg;
            break;
        case 'j':
            c.json = true;
            break;
        default:
            fprintf(stderr, "usage: kvbench [--num N] [--key-size B] [--value-size B] "
                            "[--threads T] [--dir DIR] [--benchmarks a,b] [--json]\n");
            return ch == 'h' ? 0 : 2;
        }
    }
    if (c.num == 0 || c.key_size < 8 || c.key_size > 200 || c.threads < 1) {
        fprintf(stderr, "kvbench: --num > 0, --key-size 8..200, --threads >= 1\n");
        return 2;
    }
    if (!c.json)
        printf("kvbench: %llu keys, %zu-byte keys, %zu-byte values, dir %s\n",
               (unsigned long long)c.num, c.key_size, c.value_size, c.dir);

    long rss0 = rss_kib();
    kv_store *s = open_store(&c, KV_SYNC_NONE, true);
    if (wants(&c, "fillseq"))
        run_threads(&c, s, "fillseq", OP_FILLSEQ, 1, c.num, NULL);
    if (wants(&c, "fillrandom")) {
        kv_close(s);
        s = open_store(&c, KV_SYNC_NONE, true);
        run_threads(&c, s, "fillrandom", OP_FILLRANDOM, c.threads, c.num, NULL);
        /* Random fill leaves some keys unwritten; top up so reads hit. */
        run_threads(&c, s, "(fill)", OP_FILLSEQ, 1, c.num, NULL);
    }
    if (wants(&c, "memory")) {
        kv_stats st;
        kv_get_stats(s, &st);
        long rss = rss_kib();
        char extra[160];
        snprintf(extra, sizeof(extra),
                 "keys=%llu index_bytes_per_key=%.1f bloom_bytes_per_key=%.1f "
                 "rss_bytes_per_key=%.1f",
                 (unsigned long long)st.keys, (double)st.index_bytes / (double)st.keys,
                 (double)st.bloom_bytes / (double)st.keys,
                 (double)(rss - rss0) * 1024.0 / (double)st.keys);
        struct hist h = {0};
        report(&c, "memory", 1, 0, 0, &h, extra);
    }
    if (wants(&c, "overwrite"))
        run_threads(&c, s, "overwrite", OP_FILLRANDOM, c.threads, c.num, NULL);
    if (wants(&c, "readrandom"))
        run_threads(&c, s, "readrandom", OP_READ, c.threads, c.num, NULL);
    if (wants(&c, "readmissing"))
        run_threads(&c, s, "readmissing", OP_READMISSING, c.threads, c.num, NULL);
    if (wants(&c, "compact")) {
        kv_stats before, after;
        kv_get_stats(s, &before);
        uint64_t t0 = now_ns();
        int rc = kv_compact(s);
        uint64_t ns = now_ns() - t0;
        kv_get_stats(s, &after);
        char extra[200];
        snprintf(extra, sizeof(extra),
                 "rc=%d before_mb=%.1f after_mb=%.1f secs=%.2f live_mb_per_s=%.0f", rc,
                 (double)before.disk_bytes / 1048576.0, (double)after.disk_bytes / 1048576.0,
                 (double)ns / 1e9, (double)after.disk_bytes / 1048576.0 / ((double)ns / 1e9));
        struct hist h = {0};
        hist_add(&h, ns);
        report(&c, "compact", 1, 1, ns, &h, extra);
    }
    if (wants(&c, "deleterandom"))
        run_threads(&c, s, "deleterandom", OP_DELETE, c.threads, c.num / 10, NULL);
    kv_close(s);
    if (wants(&c, "open"))
        bench_open(&c);
    if (wants(&c, "fillsync")) {
        static const int counts[] = {1, 4, 16, 64};
        for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
            s = open_store(&c, KV_SYNC_ALWAYS, true);
            uint64_t n = c.num / 100 < 2000 ? c.num / 100 : 2000;
            n = n * (uint64_t)counts[i] / (counts[i] > 4 ? 4 : 1);
            if (n < (uint64_t)counts[i])
                n = (uint64_t)counts[i];
            kv_stats st0, st1;
            kv_get_stats(s, &st0);
            run_threads(&c, s, "fillsync", OP_FILLRANDOM, counts[i], n, NULL);
            kv_get_stats(s, &st1);
            printf("%-14s %3d thr %10.2f writes per fdatasync\n", "", counts[i],
                   (double)(st1.puts - st0.puts) / (double)(st1.fsyncs - st0.fsyncs));
            kv_close(s);
        }
    }
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c.dir);
    return system(cmd) == 0 ? 0 : 1;
}
