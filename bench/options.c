/*
 * options.c - parses the benchmark programs' flags. Every number is checked
 * (strtoull with an end check and bounds): a typo must not become a run with
 * a default nobody asked for.
 */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyspace.h"

static const char usage[] =
    "  --num N             keys (default 1000000)\n"
    "  --key-size B        key bytes, 8..200 (default 16)\n"
    "  --value-size B      value bytes (default 100)\n"
    "  --threads LIST      reader threads for readrandom, readmissing, seekrandom,\n"
    "                      readwhilewriting\n"
    "                      (default 1,2)\n"
    "  --write-threads N   writer threads for fillrandom, overwrite, deleterandom (default 1)\n"
    "  --sync-threads LIST writer threads for fillsync (default 1,4,16,64)\n"
    "  --sync-num N        fillsync writes with up to 4 threads; with T > 4 threads,\n"
    "                      N*T/4 (default 2000); fillbatch: N batches of 100\n"
    "  --duration S        stop any workload after S seconds (default 60)\n"
    "  --sync-duration S   stop a fillsync or fillbatch run after S seconds (default 10)\n"
    "  --repeat N          run readrandom, readmissing, seekrandom, fillsync and fillbatch\n"
    "                      N times\n"
    "                      (1..9) and\n"
    "                      report the median run, with the spread (default 1)\n"
    "  --dir DIR           where to create the data directory DIR/kvbench-ENGINE-PID, which\n"
    "                      is removed at the end (default /tmp)\n"
    "  --benchmarks LIST   workloads to run (default all): " BENCH_ALL_WORKLOADS "\n"
    "  --json              print JSON lines instead of a table\n"
    "  --verify            compare every value read with the one written\n"
    "  --values KIND       random (default: value-size bytes that compress to about half)\n"
    "                      or json (each key its own JSON document of 200 B to 2 KiB)\n"
    "  --compression KIND  none (default) or zstd: the engine's zstd compression, with a\n"
    "                      dictionary where it has one\n"
    "  --preallocate on|off on (default): the engine's default; off: mini-kvstore writes no\n"
    "                      zeros ahead of its log (segment_preallocate 0), for comparison\n";

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

static int parse_secs(const char *flag, const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > 86400) {
        fprintf(stderr, "%s: expected seconds in (0, 86400], got '%s'\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* "1,4,16" into a list of thread counts. */
static int parse_threads(const char *flag, const char *s, struct thread_list *out)
{
    struct thread_list l = {.n = 0};
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[16];
        if (len == 0 || len >= sizeof(item) || l.n == BENCH_MAX_THREAD_COUNTS) {
            fprintf(stderr, "%s: expected up to %d comma-separated counts, got '%s'\n", flag,
                    BENCH_MAX_THREAD_COUNTS, s);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        uint64_t v;
        if (parse_u64(flag, item, 1, BENCH_MAX_THREADS, &v) != 0)
            return -1;
        l.count[l.n++] = (int)v;
        p = comma ? comma + 1 : p + len;
    }
    if (l.n == 0) {
        fprintf(stderr, "%s: empty list\n", flag);
        return -1;
    }
    *out = l;
    return 0;
}

/* Every name in --benchmarks must be a workload: a misspelt one would
 * silently run nothing. */
static int check_benchmarks(const char *list)
{
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        struct bench_options probe = {.benchmarks = BENCH_ALL_WORKLOADS};
        char name[32];
        if (len == 0 || len >= sizeof(name)) {
            fprintf(stderr, "--benchmarks: bad list '%s'\n", list);
            return -1;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        if (!options_wants(&probe, name)) {
            fprintf(stderr, "--benchmarks: unknown workload '%s' (known: %s)\n", name,
                    BENCH_ALL_WORKLOADS);
            return -1;
        }
        p = comma ? comma + 1 : p + len;
    }
    return 0;
}

static void set_defaults(struct bench_options *o)
{
    memset(o, 0, sizeof(*o));
    o->num = 1000000;
    o->key_size = 16;
    o->value_size = 100;
    o->read_threads = (struct thread_list){.count = {1, 2}, .n = 2};
    o->write_threads = 1;
    o->sync_threads = (struct thread_list){.count = {1, 4, 16, 64}, .n = 4};
    o->sync_num = 2000;
    o->duration = 60;
    o->sync_duration = 10;
    o->repeat = 1;
    snprintf(o->dir, sizeof(o->dir), "/tmp");
    o->benchmarks = BENCH_ALL_WORKLOADS;
}

/* The largest key count whose decimal form fits key_size digits. */
static uint64_t max_keys_for(size_t key_size)
{
    uint64_t limit = 1;
    for (size_t i = 0; i < key_size && limit < UINT64_MAX / 10; i++)
        limit *= 10;
    return limit;
}

static int apply(struct bench_options *o, int ch, const char *arg)
{
    uint64_t v = 0;
    switch (ch) {
    case 'n':
        return parse_u64("--num", arg, 1, 1000000000000ULL, &o->num);
    case 'k':
        if (parse_u64("--key-size", arg, KEYSPACE_MIN_KEY, KEYSPACE_MAX_KEY, &v) != 0)
            return -1;
        o->key_size = (size_t)v;
        return 0;
    case 'v':
        if (parse_u64("--value-size", arg, 0, 64u << 20, &v) != 0)
            return -1;
        o->value_size = (size_t)v;
        return 0;
    case 't':
        return parse_threads("--threads", arg, &o->read_threads);
    case 'w':
        if (parse_u64("--write-threads", arg, 1, BENCH_MAX_THREADS, &v) != 0)
            return -1;
        o->write_threads = (int)v;
        return 0;
    case 's':
        return parse_threads("--sync-threads", arg, &o->sync_threads);
    case 'S':
        return parse_u64("--sync-num", arg, 1, 1000000000ULL, &o->sync_num);
    case 'D':
        return parse_secs("--duration", arg, &o->duration);
    case 'Y':
        return parse_secs("--sync-duration", arg, &o->sync_duration);
    case 'r':
        if (parse_u64("--repeat", arg, 1, BENCH_MAX_REPEAT, &v) != 0)
            return -1;
        o->repeat = (int)v;
        return 0;
    case 'd':
        if (strlen(arg) == 0 || strlen(arg) >= sizeof(o->dir) - 64) {
            fprintf(stderr, "--dir: expected a path shorter than %zu bytes\n", sizeof(o->dir) - 64);
            return -1;
        }
        snprintf(o->dir, sizeof(o->dir), "%s", arg);
        return 0;
    case 'b':
        o->benchmarks = arg;
        return check_benchmarks(arg);
    case 'j':
        o->json = true;
        return 0;
    case 'V':
        o->verify = true;
        return 0;
    case 'J':
        if (strcmp(arg, "json") != 0 && strcmp(arg, "random") != 0) {
            fprintf(stderr, "--values: expected random or json, got '%s'\n", arg);
            return -1;
        }
        o->json_values = strcmp(arg, "json") == 0;
        return 0;
    case 'P':
        if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0) {
            fprintf(stderr, "--preallocate: expected on or off, got '%s'\n", arg);
            return -1;
        }
        o->no_preallocate = strcmp(arg, "off") == 0;
        return 0;
    case 'C':
        if (strcmp(arg, "zstd") != 0 && strcmp(arg, "none") != 0) {
            fprintf(stderr, "--compression: expected none or zstd, got '%s'\n", arg);
            return -1;
        }
        o->compression = strcmp(arg, "zstd") == 0;
        return 0;
    default:
        return -1;
    }
}

int options_parse(struct bench_options *o, int argc, char **argv)
{
    static const struct option longopts[] = {{"num", required_argument, NULL, 'n'},
                                             {"key-size", required_argument, NULL, 'k'},
                                             {"value-size", required_argument, NULL, 'v'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"write-threads", required_argument, NULL, 'w'},
                                             {"sync-threads", required_argument, NULL, 's'},
                                             {"sync-num", required_argument, NULL, 'S'},
                                             {"duration", required_argument, NULL, 'D'},
                                             {"sync-duration", required_argument, NULL, 'Y'},
                                             {"repeat", required_argument, NULL, 'r'},
                                             {"dir", required_argument, NULL, 'd'},
                                             {"benchmarks", required_argument, NULL, 'b'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"verify", no_argument, NULL, 'V'},
                                             {"values", required_argument, NULL, 'J'},
                                             {"compression", required_argument, NULL, 'C'},
                                             {"preallocate", required_argument, NULL, 'P'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    set_defaults(o);
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 'h') {
            printf("usage: %s [options]\n%s", argv[0], usage);
            return 1;
        }
        if (ch == '?' || apply(o, ch, optarg) != 0) {
            fprintf(stderr, "%s: --help lists the options\n", argv[0]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0], argv[optind]);
        return 2;
    }
    if (o->num > max_keys_for(o->key_size)) {
        fprintf(stderr, "--num %llu keys do not fit in %zu-digit keys\n",
                (unsigned long long)o->num, o->key_size);
        return 2;
    }
    return 0;
}

bool options_wants(const struct bench_options *o, const char *name)
{
    const char *p = o->benchmarks;
    size_t n = strlen(name);
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}
