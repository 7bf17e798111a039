/*
 * driver.c - the workloads, in the style of LevelDB's db_bench, run in one
 * fixed order against one engine adapter:
 *
 *   fillrandom        every key once, in random order, into a fresh store
 *   memory            resident memory and index bytes per key after that fill
 *   overwrite         random keys again (now the store holds dead data)
 *   readrandom        random keys that are present (per --threads count)
 *   readmissing       keys that are absent (per --threads count)
 *   seekrandom        a range read from a random key: the 100 keys from it
 *                     in order (per --threads count)
 *   readwhilewriting  readrandom while one more thread overwrites
 *   compact           a full compaction, and readwhilecompacting: the read
 *                     latency of one reader during it against before it
 *   readcompacted     readrandom again, after that compaction (with
 *                     compression, the values it recompressed)
 *   open              close and reopen (mini-kvstore: via its snapshot, then
 *                     open-replay: via the whole log)
 *   deleterandom      a tenth of the keys, at random
 *   fillseq           every key in order, into a fresh store
 *   fillsync          random writes, each durable, per --sync-threads count
 *   fillbatch         random writes from one thread in durable batches of
 *                     100 (an atomic batch, a write transaction), counted
 *                     per put: what batching buys over fillsync at 1 thread
 *
 * Every workload except fillsync and fillbatch runs with writes in the engine's fast mode.
 * Workloads that need a filled store fill one first (unreported) when
 * fillrandom was not selected. Numbers are reported, never judged: the exit
 * status says only whether every operation succeeded and returned the bytes
 * written.
 */
#include "driver.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"
#include "keyspace.h"
#include "options.h"
#include "report.h"
#include "workers.h"

/* The baseline for readwhilecompacting reads for at most this long. */
#define COMPACT_BASELINE_SECS 2.0

struct bench {
    const struct bench_engine *engine;
    const struct bench_options *o;
    struct keyspace ks;
    char dir[4200]; /* the data directory, inside o->dir */
    void *db;       /* NULL while closed */
    bool filled;    /* the open store holds every key */
    struct host_rss rss_start;
    int failures; /* failed operations, wrong reads, failed opens */
};

static atomic_int errors_printed;

void bench_report_error(const struct bench_engine *engine, const char *what, const char *detail)
{
    int n = atomic_fetch_add(&errors_printed, 1);
    if (n < 5)
        fprintf(stderr, "%s: %s failed: %s\n", engine->name, what, detail ? detail : "");
    else if (n == 5)
        fprintf(stderr, "%s: further failures are counted, not printed\n", engine->name);
}

static struct bench_target target_of(const struct bench *b)
{
    return (struct bench_target){
        .engine = b->engine, .db = b->db, .ks = &b->ks, .verify = b->o->verify};
}

static int close_db(struct bench *b)
{
    if (!b->db)
        return 0;
    int rc = b->engine->close(b->db);
    b->db = NULL;
    if (rc != 0)
        b->failures++;
    return rc;
}

/* Opens the store in the given mode; fresh removes its data first. */
static int open_db(struct bench *b, enum bench_sync sync, bool fresh)
{
    close_db(b);
    if (fresh) {
        if (host_remove_tree(b->dir) != 0) {
            perror(b->dir);
            b->failures++;
            return -1;
        }
        b->filled = false;
    }
    struct bench_open_args args = {.dir = b->dir,
                                   .sync = sync,
                                   .num = b->o->num,
                                   .key_size = b->o->key_size,
                                   .value_size = b->o->value_size,
                                   .compress = b->o->compression,
                                   .no_preallocate = b->o->no_preallocate};
    if (b->engine->open(&args, &b->db) != 0) {
        b->db = NULL;
        b->failures++;
        return -1;
    }
    return 0;
}

static struct report_row row_of(const struct bench *b, const char *workload, int threads)
{
    return (struct report_row){.engine = b->engine->name, .workload = workload, .threads = threads};
}

/* Prints the row of a timed workload and counts its failures. */
static void emit(struct bench *b, struct report_row *row, const struct work_result *r)
{
    row->ops = r->ops;
    row->secs = r->secs;
    row->lat = &r->lat;
    row->errors = r->errors + r->mismatches;
    if (r->mismatches)
        report_add(row, "wrong_reads", (double)r->mismatches);
    b->failures += r->errors + r->mismatches > 0;
    report_print(row, b->o->json);
}

static void emit_unsupported(const struct bench *b, const char *workload)
{
    struct report_row row = row_of(b, workload, 1);
    row.note = "not supported";
    report_print(&row, b->o->json);
}

static int run(struct bench *b, const struct work_spec *spec, struct work_result *r)
{
    struct bench_target tg = target_of(b);
    if (work_run(&tg, spec, r) != 0) {
        b->failures++;
        return -1;
    }
    return 0;
}

/* Runs a workload of one kind and prints its row. */
static void run_simple(struct bench *b, const char *name, const struct work_spec *spec)
{
    struct work_result r;
    if (run(b, spec, &r) != 0)
        return;
    struct report_row row = row_of(b, name, spec->threads);
    if (spec->op == WORK_GET || spec->op == WORK_GET_MISSING)
        report_add(&row, "found_pct", r.ops ? 100.0 * (double)r.found / (double)r.ops : 0);
    emit(b, &row, &r);
}

static double rate_of(const struct work_result *r)
{
    return r->secs > 0 ? (double)r->ops / r->secs : 0;
}

/* The index of the median of n runs by throughput. With more than one run,
 * adds their number and spread ((fastest - slowest) / median) to the row:
 * on a shared machine the spread says how far to trust the figure. Failures
 * of the runs not reported are counted here. */
static int median_run(struct bench *b, const struct work_result *runs, int n,
                      struct report_row *row)
{
    int order[BENCH_MAX_REPEAT] = {0};
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort: n is at most 9 */
        for (int j = i; j > 0 && rate_of(&runs[order[j - 1]]) > rate_of(&runs[order[j]]); j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int median = order[n / 2];
    for (int i = 0; i < n; i++)
        if (i != median)
            b->failures += runs[i].errors + runs[i].mismatches > 0;
    if (n > 1) {
        double mid = rate_of(&runs[median]);
        report_add(row, "runs", n);
        report_add(row, "spread_pct",
                   mid > 0 ? 100.0 * (rate_of(&runs[order[n - 1]]) - rate_of(&runs[order[0]])) / mid
                           : 0);
    }
    return median;
}

/* Runs a read workload --repeat times and prints the median run's row. */
static void run_repeated(struct bench *b, const char *name, const struct work_spec *spec)
{
    struct work_result *runs = calloc((size_t)b->o->repeat, sizeof(*runs));
    if (!runs) {
        fprintf(stderr, "%s: out of memory\n", b->engine->name);
        b->failures++;
        return;
    }
    int n = 0;
    while (n < b->o->repeat && run(b, spec, &runs[n]) == 0)
        n++;
    if (n == b->o->repeat) {
        struct report_row row = row_of(b, name, spec->threads);
        int m = median_run(b, runs, n, &row);
        double per_op = runs[m].ops ? (double)runs[m].found / (double)runs[m].ops : 0;
        if (spec->op == WORK_SCAN)
            report_add(&row, "keys_per_scan", per_op);
        else
            report_add(&row, "found_pct", 100.0 * per_op);
        emit(b, &row, &runs[m]);
    }
    free(runs);
}

/* Writes every key once in random order; reported as fillrandom or not. */
static int fill(struct bench *b, bool reported)
{
    if (open_db(b, BENCH_SYNC_FAST, true) != 0)
        return -1;
    struct work_spec spec = {.op = WORK_PUT,
                             .keys = KEYS_PERMUTED,
                             .threads = b->o->write_threads,
                             .ops = b->o->num,
                             .max_secs = b->o->duration,
                             .seed = 1};
    if (reported) {
        run_simple(b, "fillrandom", &spec);
    } else {
        struct work_result r;
        if (run(b, &spec, &r) != 0)
            return -1;
        b->failures += r.errors > 0;
    }
    b->filled = true;
    return 0;
}

static int ensure_filled(struct bench *b)
{
    if (b->db && b->filled)
        return 0;
    return fill(b, false);
}

static void workload_memory(struct bench *b)
{
    struct host_rss now;
    struct report_row row = row_of(b, "memory", 1);
    double keys = (double)b->o->num;
    if (host_rss(&now) == 0) {
        report_add(&row, "rss_anon_bytes_per_key",
                   ((double)now.anon_bytes - (double)b->rss_start.anon_bytes) / keys);
        report_add(&row, "rss_file_bytes_per_key",
                   ((double)now.file_bytes - (double)b->rss_start.file_bytes) / keys);
    }
    uint64_t index_bytes;
    if (b->engine->index_bytes && b->engine->index_bytes(b->db, &index_bytes) == 0)
        report_add(&row, "index_bytes_per_key", (double)index_bytes / keys);
    report_add(&row, "disk_bytes_per_key", (double)host_dir_bytes(b->dir) / keys);
    report_add(&row, "keys", keys);
    report_print(&row, b->o->json);
}

static void workload_reads(struct bench *b, const char *name, enum work_op op, uint64_t seed)
{
    for (int i = 0; i < b->o->read_threads.n; i++) {
        struct work_spec spec = {.op = op,
                                 .keys = KEYS_RANDOM,
                                 .threads = b->o->read_threads.count[i],
                                 .ops = b->o->num,
                                 .max_secs = b->o->duration,
                                 .seed = seed + (uint64_t)i};
        run_repeated(b, name, &spec);
    }
}

/* Readers as readrandom, plus one writer overwriting random keys until the
 * readers are done. The row is the readers'; the writer's rate is a field. */
static void workload_readwhilewriting(struct bench *b)
{
    for (int i = 0; i < b->o->read_threads.n; i++) {
        atomic_int stop = 0;
        struct bench_target tg = target_of(b);
        struct work_spec wspec = {.op = WORK_PUT,
                                  .keys = KEYS_RANDOM,
                                  .threads = 1,
                                  .max_secs = b->o->duration,
                                  .stop = &stop,
                                  .seed = 600 + (uint64_t)i};
        struct work_spec rspec = {.op = WORK_GET,
                                  .keys = KEYS_RANDOM,
                                  .threads = b->o->read_threads.count[i],
                                  .ops = b->o->num,
                                  .max_secs = b->o->duration,
                                  .seed = 700 + (uint64_t)i};
        struct work_group *writer;
        if (work_start(&tg, &wspec, &writer) != 0) {
            b->failures++;
            return;
        }
        struct work_result reads, writes;
        int rc = run(b, &rspec, &reads);
        atomic_store(&stop, 1);
        work_wait(writer, &writes);
        if (rc != 0)
            return;
        struct report_row row = row_of(b, "readwhilewriting", rspec.threads);
        report_add(&row, "found_pct",
                   reads.ops ? 100.0 * (double)reads.found / (double)reads.ops : 0);
        report_add(&row, "writes_per_sec", writes.secs > 0 ? (double)writes.ops / writes.secs : 0);
        b->failures += writes.errors > 0;
        emit(b, &row, &reads);
    }
}

/* A full compaction, timed, with one reader beside it; the reader's latency
 * is compared with the same reader's before the compaction. */
static void workload_compact(struct bench *b)
{
    if (!b->engine->compact) {
        emit_unsupported(b, "compact");
        emit_unsupported(b, "readwhilecompacting");
        return;
    }
    double base_secs =
        b->o->duration < COMPACT_BASELINE_SECS ? b->o->duration : COMPACT_BASELINE_SECS;
    struct work_spec base_spec = {.op = WORK_GET,
                                  .keys = KEYS_RANDOM,
                                  .threads = 1,
                                  .ops = b->o->num,
                                  .max_secs = base_secs,
                                  .seed = 800};
    struct work_result base;
    if (run(b, &base_spec, &base) != 0)
        return;

    atomic_int stop = 0;
    struct bench_target tg = target_of(b);
    struct work_spec spec = {.op = WORK_GET,
                             .keys = KEYS_RANDOM,
                             .threads = 1,
                             .max_secs = b->o->duration * 4,
                             .stop = &stop,
                             .seed = 900};
    struct work_group *reader;
    if (work_start(&tg, &spec, &reader) != 0) {
        b->failures++;
        return;
    }
    uint64_t before = host_dir_bytes(b->dir);
    uint64_t written0 = 0, written1 = 0;
    bool counted =
        b->engine->compaction_bytes && b->engine->compaction_bytes(b->db, &written0) == 0;
    uint64_t t0 = hist_now_ns();
    int rc = b->engine->compact(b->db);
    double secs = (double)(hist_now_ns() - t0) / 1e9;
    atomic_store(&stop, 1);
    struct work_result during;
    work_wait(reader, &during);
    counted = counted && b->engine->compaction_bytes(b->db, &written1) == 0;
    /* The size at rest: LSM engines keep files that a concurrent read still
     * referenced until their next compaction or open, so reopen first. */
    if (close_db(b) != 0 || open_db(b, BENCH_SYNC_FAST, false) != 0)
        return;
    uint64_t after = host_dir_bytes(b->dir);
    /* The live data moved: what the engine says its compaction wrote, or
     * else the size at rest, about what a full compaction writes last. */
    double moved_mb = (double)(counted ? written1 - written0 : after) / 1048576.0;

    struct report_row row = row_of(b, "compact", 1);
    row.secs = secs;
    row.errors = rc != 0;
    b->failures += rc != 0;
    report_add(&row, "before_mb", (double)before / 1048576.0);
    report_add(&row, "after_mb", (double)after / 1048576.0);
    if (counted)
        report_add(&row, "written_mb", moved_mb);
    report_add(&row, "live_mb_per_s", secs > 0 ? moved_mb / secs : 0);
    report_print(&row, b->o->json);

    struct report_row rrow = row_of(b, "readwhilecompacting", 1);
    double p99 = hist_percentile_us(&during.lat, 99);
    double p99_base = hist_percentile_us(&base.lat, 99);
    report_add(&rrow, "p99_baseline_us", p99_base);
    report_add(&rrow, "p99_ratio", p99_base > 0 ? p99 / p99_base : 0);
    report_add(&rrow, "baseline_ops_per_sec", base.secs > 0 ? (double)base.ops / base.secs : 0);
    emit(b, &rrow, &during);
}

static void report_open(struct bench *b, const char *name, double secs)
{
    struct report_row row = row_of(b, name, 1);
    row.secs = secs;
    report_add(&row, "open_ms", secs * 1000.0);
    report_print(&row, b->o->json);
}

/* Reopens the filled store, timing the open: via whatever the engine keeps
 * for it, then (engines with a snapshot) via the whole log. */
static void workload_open(struct bench *b)
{
    if (close_db(b) != 0)
        return;
    uint64_t t0 = hist_now_ns();
    if (open_db(b, BENCH_SYNC_FAST, false) != 0)
        return;
    report_open(b, "open", (double)(hist_now_ns() - t0) / 1e9);
    if (!b->engine->forget_snapshot)
        return;
    if (close_db(b) != 0)
        return;
    if (b->engine->forget_snapshot(b->dir) != 0) {
        b->failures++;
        return;
    }
    t0 = hist_now_ns();
    if (open_db(b, BENCH_SYNC_FAST, false) != 0)
        return;
    report_open(b, "open-replay", (double)(hist_now_ns() - t0) / 1e9);
}

static void workload_fillseq(struct bench *b)
{
    if (open_db(b, BENCH_SYNC_FAST, true) != 0)
        return;
    struct work_spec spec = {.op = WORK_PUT,
                             .keys = KEYS_SEQUENTIAL,
                             .threads = 1,
                             .ops = b->o->num,
                             .max_secs = b->o->duration,
                             .seed = 3};
    run_simple(b, "fillseq", &spec);
    close_db(b);
}

/* One fillsync run into a fresh store; *per_sync gets writes per sync call
 * (0 when the engine does not count its syncs). */
static int fillsync_once(struct bench *b, const struct work_spec *spec, struct work_result *r,
                         double *per_sync)
{
    *per_sync = 0;
    if (open_db(b, BENCH_SYNC_DURABLE, true) != 0)
        return -1;
    uint64_t syncs0 = 0, syncs1 = 0;
    bool counted = b->engine->sync_calls && b->engine->sync_calls(b->db, &syncs0) == 0;
    int rc = run(b, spec, r);
    counted = counted && b->engine->sync_calls(b->db, &syncs1) == 0;
    if (rc == 0 && counted && syncs1 > syncs0)
        *per_sync = (double)r->ops / (double)(syncs1 - syncs0);
    close_db(b);
    return rc;
}

/* Durable random writes into a fresh store, for each thread count: shows
 * whether concurrent writers share their syncs (group commit). */
static void workload_fillsync(struct bench *b)
{
    struct work_result *runs = calloc((size_t)b->o->repeat, sizeof(*runs));
    if (!runs) {
        fprintf(stderr, "%s: out of memory\n", b->engine->name);
        b->failures++;
        return;
    }
    for (int i = 0; i < b->o->sync_threads.n; i++) {
        int threads = b->o->sync_threads.count[i];
        uint64_t ops = b->o->sync_num * (uint64_t)(threads > 4 ? threads / 4 : 1);
        struct work_spec spec = {.op = WORK_PUT,
                                 .keys = KEYS_RANDOM,
                                 .threads = threads,
                                 .ops = ops < (uint64_t)threads ? (uint64_t)threads : ops,
                                 .max_secs = b->o->sync_duration,
                                 .seed = 1000 + (uint64_t)i};
        double per_sync[BENCH_MAX_REPEAT] = {0};
        int n = 0;
        while (n < b->o->repeat && fillsync_once(b, &spec, &runs[n], &per_sync[n]) == 0)
            n++;
        if (n < b->o->repeat)
            break;
        struct report_row row = row_of(b, "fillsync", threads);
        int m = median_run(b, runs, n, &row);
        if (per_sync[m] > 0)
            report_add(&row, "writes_per_sync", per_sync[m]);
        emit(b, &row, &runs[m]);
    }
    free(runs);
}

/* Durable batches of WORK_BATCH_KEYS random puts from one thread into a
 * fresh store: --sync-num batches at most, --sync-duration seconds. */
static void workload_fillbatch(struct bench *b)
{
    if (!b->engine->put_batch) {
        emit_unsupported(b, "fillbatch");
        return;
    }
    struct work_result runs[BENCH_MAX_REPEAT] = {0};
    double per_sync[BENCH_MAX_REPEAT] = {0};
    struct work_spec spec = {.op = WORK_PUT_BATCH,
                             .keys = KEYS_RANDOM,
                             .threads = 1,
                             .ops = b->o->sync_num * WORK_BATCH_KEYS,
                             .max_secs = b->o->sync_duration,
                             .seed = 2000};
    int n = 0;
    while (n < b->o->repeat && fillsync_once(b, &spec, &runs[n], &per_sync[n]) == 0)
        n++;
    if (n < b->o->repeat)
        return;
    struct report_row row = row_of(b, "fillbatch", 1);
    int m = median_run(b, runs, n, &row);
    if (per_sync[m] > 0)
        report_add(&row, "writes_per_sync", per_sync[m]);
    report_add(&row, "batch_keys", WORK_BATCH_KEYS);
    emit(b, &row, &runs[m]);
}

static void print_config(const struct bench *b)
{
    struct report_row row = row_of(b, "config", 0);
    row.note = b->engine->settings;
    report_add(&row, "num", (double)b->o->num);
    report_add(&row, "key_size", (double)b->o->key_size);
    double value_size = b->o->json_values ? (double)b->ks.value_buf_size / (double)b->o->num
                                          : (double)b->o->value_size;
    report_add(&row, "value_size", value_size);
    report_add(&row, "json_values", b->o->json_values);
    report_add(&row, "compression", b->o->compression);
    report_add(&row, "preallocate", !b->o->no_preallocate);
    report_print(&row, b->o->json);
}

/* Runs the selected workloads in their fixed order. */
static void run_all(struct bench *b)
{
    const struct bench_options *o = b->o;
    if (options_wants(o, "fillrandom"))
        fill(b, true);
    if (options_wants(o, "memory") && ensure_filled(b) == 0)
        workload_memory(b);
    if (options_wants(o, "overwrite") && ensure_filled(b) == 0) {
        struct work_spec spec = {.op = WORK_PUT,
                                 .keys = KEYS_RANDOM,
                                 .threads = o->write_threads,
                                 .ops = o->num,
                                 .max_secs = o->duration,
                                 .seed = 2};
        run_simple(b, "overwrite", &spec);
    }
    if (options_wants(o, "readrandom") && ensure_filled(b) == 0)
        workload_reads(b, "readrandom", WORK_GET, 100);
    if (options_wants(o, "readmissing") && ensure_filled(b) == 0)
        workload_reads(b, "readmissing", WORK_GET_MISSING, 200);
    if (options_wants(o, "seekrandom") && ensure_filled(b) == 0) {
        if (b->engine->scan)
            workload_reads(b, "seekrandom", WORK_SCAN, 300);
        else
            emit_unsupported(b, "seekrandom");
    }
    if (options_wants(o, "readwhilewriting") && ensure_filled(b) == 0)
        workload_readwhilewriting(b);
    if (options_wants(o, "compact") && ensure_filled(b) == 0)
        workload_compact(b);
    if (options_wants(o, "readcompacted") && ensure_filled(b) == 0)
        workload_reads(b, "readcompacted", WORK_GET, 300);
    if (options_wants(o, "open") && ensure_filled(b) == 0)
        workload_open(b);
    if (options_wants(o, "deleterandom") && ensure_filled(b) == 0) {
        struct work_spec spec = {.op = WORK_DELETE,
                                 .keys = KEYS_RANDOM,
                                 .threads = o->write_threads,
                                 .ops = o->num / 10 > 0 ? o->num / 10 : 1,
                                 .max_secs = o->duration,
                                 .seed = 4};
        run_simple(b, "deleterandom", &spec);
    }
    close_db(b);
    if (options_wants(o, "fillseq"))
        workload_fillseq(b);
    if (options_wants(o, "fillsync"))
        workload_fillsync(b);
    if (options_wants(o, "fillbatch"))
        workload_fillbatch(b);
}

int bench_main(int argc, char **argv, const struct bench_engine *engine)
{
    struct bench_options o;
    int rc = options_parse(&o, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    struct bench b = {.engine = engine, .o = &o};
    if (keyspace_init(&b.ks, o.num, o.key_size, o.value_size, o.json_values) != 0) {
        fprintf(stderr, "%s: out of memory\n", engine->name);
        return 1;
    }
    if (mkdir(o.dir, 0755) != 0 && access(o.dir, W_OK) != 0) {
        perror(o.dir);
        keyspace_free(&b.ks);
        return 1;
    }
    snprintf(b.dir, sizeof(b.dir), "%s/kvbench-%s-%d", o.dir, engine->name, (int)getpid());
    host_rss(&b.rss_start);
    print_config(&b);
    run_all(&b);
    if (host_remove_tree(b.dir) != 0) {
        perror(b.dir);
        b.failures++;
    }
    keyspace_free(&b.ks);
    return b.failures ? 1 : 0;
}
