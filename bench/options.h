/*
 * options.h - the command line of the engine benchmark programs.
 */
#ifndef BENCH_OPTIONS_H
#define BENCH_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_THREAD_COUNTS 8
#define BENCH_MAX_THREADS       1024
#define BENCH_MAX_REPEAT        9

struct thread_list {
    int count[BENCH_MAX_THREAD_COUNTS];
    int n;
};

struct bench_options {
    uint64_t num;                    /* --num: keys */
    size_t key_size, value_size;     /* --key-size, --value-size */
    struct thread_list read_threads; /* --threads: readrandom, readmissing, readwhilewriting */
    int write_threads;               /* --write-threads: fillrandom, overwrite, deleterandom */
    struct thread_list sync_threads; /* --sync-threads: fillsync */
    uint64_t sync_num;               /* --sync-num: fillsync writes at up to 4 threads */
    double duration;                 /* --duration: cap on one workload, seconds */
    double sync_duration;            /* --sync-duration: cap on one fillsync run */
    int repeat;                      /* --repeat: runs of reads and fillsync; median shown */
    char dir[4096];                  /* --dir: where the data directory is made */
    const char *benchmarks;          /* --benchmarks: comma-separated names */
    bool json;                       /* --json: JSON lines instead of a table */
    bool verify;                     /* --verify: compare every value read */
    bool json_values;                /* --values json: the JSON corpus (corpus.c) */
    bool compression;                /* --compression zstd: the engine's zstd, with a dictionary */
    bool no_preallocate;             /* --preallocate off: no zeros written ahead of the log */
};

/* The workloads in the order they run; --benchmarks picks among them. */
#define BENCH_ALL_WORKLOADS                                                                        \
    "fillrandom,memory,overwrite,readrandom,readmissing,seekrandom,readwhilewriting,compact,"      \
    "readcompacted,open,deleterandom,fillseq,fillsync,fillbatch"

/* Fills *o from argv (defaults first). Returns 0 to run, 1 when --help was
 * printed, 2 on a usage error (already reported on stderr). */
int options_parse(struct bench_options *o, int argc, char **argv);

/* Whether workload name was selected by --benchmarks. */
bool options_wants(const struct bench_options *o, const char *name);

#endif /* BENCH_OPTIONS_H */
