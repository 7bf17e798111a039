/*
 * limits.c - kvbench-limits: what the machine allows, measured in the same
 * run as the engines, so that every figure of theirs can be read as a
 * fraction of it.
 *
 *   fdatasync-append    small appends to a growing file, each followed by
 *                       fdatasync: the ceiling of one-sync-per-write logging
 *                       (the file system must also commit the new size)
 *   fdatasync-overwrite the same over a file written and synced beforehand:
 *                       only data blocks change, the journal stays quiet
 *   seqwrite            --seq-mb MiB in 1 MiB writes, then one fdatasync
 *   memcpy              copies between two 64 MiB buffers (caches defeated)
 *   zstd-decompress     --docs JSON documents of the compression corpus
 *                       (corpus.c), each its own zstd frame as the engine's
 *                       compaction writes them, decompressed one at a time
 *                       in a random order: zstd's own cost of a
 *                       compressed read, without the store around it
 *
 *   kvbench-limits [--dir DIR] [--syncs N] [--record B] [--seq-mb M]
 *                  [--docs D] [--duration S] [--repeat N] [--json]
 *
 * With --repeat N each disk test runs N times and the decompression test
 * 3N passes; the fastest is reported, with the spread of the runs.
 *
 * The files are made in a fresh directory inside DIR (default /tmp), which
 * should be on the disk under test, and removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* For the frame format parameter (ZSTD_c_format, ZSTD_d_format), which the
 * stable ZSTD_CCtx_setParameter sets, as in the engine. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zdict.h>
#include <zstd.h>

#include "corpus.h"
#include "hist.h"
#include "host.h"
#include "keyspace.h"
#include "report.h"

#define MIB              (1024u * 1024u)
#define MEMCPY_BUF_BYTES (64u * MIB)

struct limits_options {
    char dir[4096];
    uint64_t syncs;  /* fdatasync calls per sync test */
    uint64_t record; /* bytes written before each of them */
    uint64_t seq_mb; /* size of the sequential write */
    uint64_t docs;   /* documents the decompression test decompresses */
    double duration; /* cap on each sync test, seconds */
    int repeat;      /* runs of each disk test; the median is reported */
    bool json;
};

static int write_all(int fd, const char *buf, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* One run of a disk test: operations (syncs, or MiB written) and time. */
struct measure {
    uint64_t ops;
    double secs;
    struct hist lat;
};

typedef int (*disk_test_fn)(const struct limits_options *o, const char *path, bool variant,
                            struct measure *m);

/* Writes record bytes and syncs, syncs times or until the deadline.
 * overwrite: the file is first written to its full size and synced. */
static int sync_test(const struct limits_options *o, const char *path, bool overwrite,
                     struct measure *m)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror(path);
        return -1;
    }
    char *buf = calloc(1, o->record);
    int rc = buf ? 0 : -1;
    if (rc == 0 && overwrite) {
        for (uint64_t i = 0; rc == 0 && i < o->syncs; i++)
            rc = write_all(fd, buf, o->record, (off_t)(i * o->record));
        rc = rc == 0 ? fsync(fd) : rc;
    }
    uint64_t t0 = hist_now_ns(), prev = t0;
    uint64_t deadline = t0 + (uint64_t)(o->duration * 1e9);
    while (rc == 0 && m->ops < o->syncs) {
        memset(buf, (int)('a' + m->ops % 26), o->record);
        rc = write_all(fd, buf, o->record, (off_t)(m->ops * o->record));
        rc = rc == 0 ? fdatasync(fd) : rc;
        uint64_t now = hist_now_ns();
        hist_add(&m->lat, now - prev);
        prev = now;
        m->ops++;
        if (now >= deadline)
            break;
    }
    m->secs = (double)(prev - t0) / 1e9;
    if (rc != 0)
        perror(path);
    free(buf);
    close(fd);
    unlink(path);
    return rc;
}

/* seq_mb MiB in 1 MiB writes, then one fdatasync; ops counts MiB. */
static int seqwrite_test(const struct limits_options *o, const char *path, bool unused,
                         struct measure *m)
{
    (void)unused;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror(path);
        return -1;
    }
    char *buf = malloc(MIB);
    int rc = buf ? 0 : -1;
    uint64_t t0 = hist_now_ns(), prev = t0;
    for (uint64_t i = 0; rc == 0 && i < o->seq_mb; i++) {
        memset(buf, (int)('a' + i % 26), MIB);
        rc = write_all(fd, buf, MIB, (off_t)(i * MIB));
        uint64_t now = hist_now_ns();
        hist_add(&m->lat, now - prev);
        prev = now;
        m->ops++;
    }
    rc = rc == 0 ? fdatasync(fd) : rc;
    m->secs = (double)(hist_now_ns() - t0) / 1e9;
    if (rc != 0)
        perror(path);
    free(buf);
    close(fd);
    unlink(path);
    return rc;
}

static double rate_of(const struct measure *m)
{
    return m->secs > 0 ? (double)m->ops / m->secs : 0;
}

/* Runs a disk test --repeat times and prints the fastest run, with the
 * spread of the runs. The fastest, not the median: a limit is what the
 * machine can do, and on a shared machine other work only lowers it. */
static int run_disk_test(const struct limits_options *o, const char *name, const char *path,
                         disk_test_fn fn, bool variant)
{
    struct measure *runs = calloc((size_t)o->repeat, sizeof(*runs));
    if (!runs) {
        fprintf(stderr, "kvbench-limits: out of memory\n");
        return -1;
    }
    int rc = 0, n = 0;
    while (rc == 0 && n < o->repeat)
        rc = fn(o, path, variant, &runs[n++]);
    for (int i = 1; i < n; i++) /* insertion sort by rate: n is small */
        for (int j = i; j > 0 && rate_of(&runs[j - 1]) > rate_of(&runs[j]); j--) {
            struct measure t = runs[j];
            runs[j] = runs[j - 1];
            runs[j - 1] = t;
        }
    const struct measure *best = &runs[n - 1];
    struct report_row row = {.engine = "machine",
                             .workload = name,
                             .threads = 1,
                             .ops = best->ops,
                             .secs = best->secs,
                             .lat = &best->lat,
                             .errors = rc != 0};
    if (fn == seqwrite_test) {
        report_add(&row, "mb_per_s", rate_of(best));
        report_add(&row, "write_bytes", (double)MIB);
    } else {
        report_add(&row, "record_bytes", (double)o->record);
    }
    if (n > 1) {
        report_add(&row, "runs", n);
        double mid = rate_of(&runs[n / 2]);
        report_add(&row, "spread_pct",
                   mid > 0 ? 100.0 * (rate_of(&runs[n - 1]) - rate_of(&runs[0])) / mid : 0);
    }
    report_print(&row, o->json);
    free(runs);
    return rc;
}

static int memcpy_test(const struct limits_options *o)
{
    char *a = malloc(MEMCPY_BUF_BYTES), *b = malloc(MEMCPY_BUF_BYTES);
    if (!a || !b) {
        free(a);
        free(b);
        fprintf(stderr, "kvbench-limits: out of memory\n");
        return -1;
    }
    memset(a, 1, MEMCPY_BUF_BYTES);
    memset(b, 2, MEMCPY_BUF_BYTES);
    const int rounds = 16;
    uint64_t t0 = hist_now_ns();
    for (int i = 0; i < rounds; i++) {
        if (i % 2 == 0)
            memcpy(b, a, MEMCPY_BUF_BYTES);
        else
            memcpy(a, b, MEMCPY_BUF_BYTES);
    }
    double secs = (double)(hist_now_ns() - t0) / 1e9;
    /* Read a byte back so the copies cannot be optimised away. */
    volatile char sink = a[MEMCPY_BUF_BYTES / 2];
    (void)sink;
    double mb = (double)rounds * (double)MEMCPY_BUF_BYTES / MIB;
    struct report_row row = {
        .engine = "machine", .workload = "memcpy", .threads = 1, .ops = 0, .secs = secs};
    report_add(&row, "mb_per_s", secs > 0 ? mb / secs : 0);
    report_add(&row, "buffer_bytes", (double)MEMCPY_BUF_BYTES);
    report_print(&row, o->json);
    free(a);
    free(b);
    return 0;
}

/* The engine's compression, as compaction applies it with its defaults
 * (src/store: DICT_DENSE_LEVEL, TRAIN_DICT_CAP, TRAIN_SAMPLE_BYTES, and the
 * frame parameters of compress.c), so that the figure is what a read of a
 * compacted value pays zstd. */
#define ZSTD_LEVEL        12
#define ZSTD_DICT_CAP     (64u << 10)
#define ZSTD_SAMPLE_BYTES (4u << 20)
#define ZSTD_DOC_ROOM     (CORPUS_MAX_DOC + 64u)

/* The documents, each its own frame: frames[off[i], off[i + 1]) decompresses
 * to raw_len[i] bytes. */
struct zstd_corpus {
    uint8_t *frames;
    size_t *off;
    uint32_t *raw_len;
    size_t n;
};

/* A dictionary trained on a sample of documents other than the n measured:
 * its length, or 0. */
static size_t zstd_train(uint64_t n, uint8_t *dict)
{
    size_t count = ZSTD_SAMPLE_BYTES / CORPUS_MIN_DOC, len = 0, k = 0;
    uint8_t *buf = malloc(ZSTD_SAMPLE_BYTES + CORPUS_MAX_DOC);
    size_t *sizes = malloc(count * sizeof(*sizes));
    while (buf && sizes && len < ZSTD_SAMPLE_BYTES && k < count) {
        sizes[k] = corpus_doc(n + k, (char *)buf + len);
        len += sizes[k++];
    }
    size_t dlen =
        buf && sizes ? ZDICT_trainFromBuffer(dict, ZSTD_DICT_CAP, buf, sizes, (unsigned)k) : 0;
    free(buf);
    free(sizes);
    return ZDICT_isError(dlen) ? 0 : dlen;
}

static int zstd_compress_all(const struct limits_options *o, const ZSTD_CDict *cdict,
                             struct zstd_corpus *z)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    z->n = (size_t)o->docs;
    z->frames = malloc(z->n * ZSTD_DOC_ROOM);
    z->off = malloc((z->n + 1) * sizeof(*z->off));
    z->raw_len = malloc(z->n * sizeof(*z->raw_len));
    if (!c || !z->frames || !z->off || !z->raw_len) {
        ZSTD_freeCCtx(c);
        return -1;
    }
    size_t bad = ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0)) ||
                 ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0)) ||
                 ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0)) ||
                 ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_format, ZSTD_f_zstd1_magicless)) ||
                 ZSTD_isError(ZSTD_CCtx_refCDict(c, cdict));
    char doc[CORPUS_MAX_DOC];
    z->off[0] = 0;
    for (size_t i = 0; !bad && i < z->n; i++) {
        z->raw_len[i] = (uint32_t)corpus_doc(i, doc);
        size_t w = ZSTD_compress2(c, z->frames + z->off[i], ZSTD_DOC_ROOM, doc, z->raw_len[i]);
        bad = ZSTD_isError(w);
        z->off[i + 1] = z->off[i] + (bad ? 0 : w);
    }
    ZSTD_freeCCtx(c);
    return bad ? -1 : 0;
}

/* One pass: n documents drawn at random (a hash of the step), as
 * readrandom draws its keys. */
static int zstd_pass(const struct zstd_corpus *z, ZSTD_DCtx *d, const ZSTD_DDict *ddict,
                     uint8_t *out, struct measure *m)
{
    uint64_t t0 = hist_now_ns();
    for (size_t k = 0; k < z->n; k++) {
        size_t i = (size_t)(keyspace_mix(k) % z->n);
        size_t got = ZSTD_decompress_usingDDict(d, out, ZSTD_DOC_ROOM, z->frames + z->off[i],
                                                z->off[i + 1] - z->off[i], ddict);
        if (ZSTD_isError(got) || got != z->raw_len[i])
            return -1;
    }
    m->secs = (double)(hist_now_ns() - t0) / 1e9;
    m->ops = z->n;
    return 0;
}

/* Decompression as the engine's reader does it (compress.c): the output
 * goes right behind a copy of the dictionary, which zstd then reads as the
 * prefix of the output, its fastest path. */
static int zstd_test(const struct limits_options *o)
{
    uint8_t *dict = malloc(ZSTD_DICT_CAP + ZSTD_DOC_ROOM);
    size_t dlen = dict ? zstd_train(o->docs, dict) : 0;
    ZSTD_CDict *cdict = dlen ? ZSTD_createCDict(dict, dlen, ZSTD_LEVEL) : NULL;
    ZSTD_DDict *ddict = dlen ? ZSTD_createDDict_byReference(dict, dlen) : NULL;
    ZSTD_DCtx *d = ZSTD_createDCtx();
    struct zstd_corpus z = {0};
    int passes = 3 * o->repeat, rc = -1;
    double rates[3 * 9] = {0}; /* --repeat is at most 9 */
    struct measure m = {0};
    if (cdict && ddict && d && zstd_compress_all(o, cdict, &z) == 0 &&
        !ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_format, ZSTD_f_zstd1_magicless))) {
        rc = 0;
        for (int p = 0; rc == 0 && p < passes; p++) {
            struct measure pass = {0};
            rc = zstd_pass(&z, d, ddict, dict + dlen, &pass);
            if (rc == 0 && rate_of(&pass) > rate_of(&m))
                m = pass;
            rates[p] = rate_of(&pass);
            for (int j = p; j > 0 && rates[j - 1] > rates[j]; j--) { /* sorted: p is small */
                double t = rates[j];
                rates[j] = rates[j - 1];
                rates[j - 1] = t;
            }
        }
    }
    if (rc == 0) {
        double raw = 0;
        for (size_t i = 0; i < z.n; i++)
            raw += z.raw_len[i];
        struct report_row row = {.engine = "machine",
                                 .workload = "zstd-decompress",
                                 .threads = 1,
                                 .ops = m.ops,
                                 .secs = m.secs};
        report_add(&row, "doc_bytes", raw / (double)z.n);
        report_add(&row, "frame_bytes", (double)z.off[z.n] / (double)z.n);
        report_add(&row, "level", ZSTD_LEVEL);
        report_add(&row, "dict_bytes", (double)dlen);
        report_add(&row, "runs", passes);
        double mid = rates[passes / 2];
        report_add(&row, "spread_pct", mid > 0 ? 100.0 * (rates[passes - 1] - rates[0]) / mid : 0);
        report_print(&row, o->json);
    } else {
        fprintf(stderr, "kvbench-limits: the zstd test failed (%s)\n",
                dlen ? "compressing or decompressing" : "no dictionary trained");
    }
    free(z.frames);
    free(z.off);
    free(z.raw_len);
    ZSTD_freeDCtx(d);
    ZSTD_freeDDict(ddict);
    ZSTD_freeCDict(cdict);
    free(dict);
    return rc;
}

static int parse_u64(const char *flag, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "%s: expected a whole number in [%llu, %llu], got '%s'\n", flag,
                (unsigned long long)lo, (unsigned long long)hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(struct limits_options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},    {"syncs", required_argument, NULL, 's'},
        {"record", required_argument, NULL, 'r'}, {"seq-mb", required_argument, NULL, 'm'},
        {"docs", required_argument, NULL, 'n'},   {"duration", required_argument, NULL, 'D'},
        {"json", no_argument, NULL, 'j'},         {"repeat", required_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    static const char usage[] = "usage: kvbench-limits [--dir DIR] [--syncs N] [--record B] "
                                "[--seq-mb M] [--docs D] [--duration S] [--repeat N] "
                                "[--json]\n";
    *o = (struct limits_options){
        .syncs = 5000, .record = 128, .seq_mb = 256, .docs = 50000, .duration = 3, .repeat = 1};
    snprintf(o->dir, sizeof(o->dir), "/tmp");
    uint64_t secs = 0, repeat = 1;
    int ch, rc = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(o->dir) - 64)
                rc = -1;
            else
                snprintf(o->dir, sizeof(o->dir), "%s", optarg);
            break;
        case 's':
            rc = parse_u64("--syncs", optarg, 1, 10000000, &o->syncs);
            break;
        case 'r':
            rc = parse_u64("--record", optarg, 1, 1u << 20, &o->record);
            break;
        case 'm':
            rc = parse_u64("--seq-mb", optarg, 1, 1u << 20, &o->seq_mb);
            break;
        case 'n':
            rc = parse_u64("--docs", optarg, 1, 10000000, &o->docs);
            break;
        case 'D':
            rc = parse_u64("--duration", optarg, 1, 3600, &secs);
            o->duration = (double)secs;
            break;
        case 'R':
            rc = parse_u64("--repeat", optarg, 1, 9, &repeat);
            o->repeat = (int)repeat;
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        default:
            rc = -1;
        }
    }
    if (rc != 0 || optind < argc) {
        fputs(usage, stderr);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct limits_options o;
    int rc = parse_args(&o, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    char dir[4200], path[4300];
    snprintf(dir, sizeof(dir), "%s/kvbench-limits-%d", o.dir, (int)getpid());
    if (mkdir(dir, 0755) != 0) {
        perror(dir);
        return 1;
    }
    int failures = 0;
    snprintf(path, sizeof(path), "%s/append.dat", dir);
    failures += run_disk_test(&o, "fdatasync-append", path, sync_test, false) != 0;
    snprintf(path, sizeof(path), "%s/overwrite.dat", dir);
    failures += run_disk_test(&o, "fdatasync-overwrite", path, sync_test, true) != 0;
    snprintf(path, sizeof(path), "%s/seq.dat", dir);
    failures += run_disk_test(&o, "seqwrite", path, seqwrite_test, false) != 0;
    failures += memcpy_test(&o) != 0;
    failures += zstd_test(&o) != 0;
    if (host_remove_tree(dir) != 0) {
        perror(dir);
        failures++;
    }
    return failures ? 1 : 0;
}
