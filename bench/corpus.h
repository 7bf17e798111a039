/*
 * corpus.h - a corpus of JSON documents for the compression benchmark
 * (corpus.c): one document per key, 200 bytes to 2 KiB, with the field names
 * and kinds of values of a web application's user records.
 */
#ifndef BENCH_CORPUS_H
#define BENCH_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#define CORPUS_MIN_DOC 200
#define CORPUS_MAX_DOC 2048

/* Writes the document of key i (deterministic: the same i gives the same
 * bytes) into buf, which holds CORPUS_MAX_DOC bytes; returns its length,
 * CORPUS_MIN_DOC to CORPUS_MAX_DOC. Valid JSON, no terminating zero. */
size_t corpus_doc(uint64_t i, char *buf);

#endif /* BENCH_CORPUS_H */
