/*
 * report.h - one line of benchmark output, as a table row for people or, with
 * --json, as a JSON object per line for bench/report.py. Every program of the
 * suite (the engine drivers and kvbench-limits) prints through it, so that
 * the report script reads one format.
 */
#ifndef BENCH_REPORT_H
#define BENCH_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "hist.h"

#define REPORT_MAX_FIELDS 10

struct report_field {
    const char *name; /* a static identifier, [a-z0-9_] */
    double value;
};

struct report_row {
    const char *engine;   /* "mini-kvstore", "leveldb", ..., "machine" */
    const char *workload; /* "fillrandom", ... */
    int threads;
    uint64_t ops;           /* operations timed */
    double secs;            /* wall-clock time they took */
    const struct hist *lat; /* per-operation latencies; NULL: none */
    uint64_t errors;        /* operations that failed */
    const char *note;       /* a static remark ("not supported"); NULL: none */
    struct report_field fields[REPORT_MAX_FIELDS];
    int n_fields;
};

/* Adds a named figure to the row; past REPORT_MAX_FIELDS it is dropped. */
void report_add(struct report_row *r, const char *name, double value);

/* Prints the row to stdout (a table line, or a JSON line when json). */
void report_print(const struct report_row *r, bool json);

#endif /* BENCH_REPORT_H */
