/*
 * keyspace.h - the keys and values every engine is given, so that all of
 * them store and look up exactly the same bytes in the same order.
 *
 * Key i (0 <= i < num) is i in decimal, zero-padded on the left to key_size
 * bytes: sequential order is also byte order, as db_bench's keys. A missing
 * key is the same with its first byte replaced by 'x', a byte no present key
 * has, so it sorts after every present key and is never found. The value of
 * key i is value_size bytes of a fixed pseudo-random buffer that compresses
 * to about half (as db_bench's), chosen by i, so a read can be checked; or,
 * with the JSON corpus, key i's own JSON document of 200 bytes to 2 KiB
 * (corpus.c), all made once at the start.
 */
#ifndef BENCH_KEYSPACE_H
#define BENCH_KEYSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYSPACE_MIN_KEY 8
#define KEYSPACE_MAX_KEY 200

struct keyspace {
    uint64_t num;
    size_t key_size, value_size;
    unsigned half_bits; /* the permutation works on 2 * half_bits bits */
    uint64_t round_keys[4];
    char *values; /* value_buf_size bytes */
    size_t value_buf_size;
    uint64_t *doc_offsets; /* JSON corpus: key i's document is values[off[i], off[i + 1]) */
};

/* Prepares the key space; json: values are the JSON corpus (value_size is
 * then unused). Returns 0, or -1 when out of memory or the sizes are out of
 * range (key_size outside [KEYSPACE_MIN_KEY, KEYSPACE_MAX_KEY]). */
int keyspace_init(struct keyspace *ks, uint64_t num, size_t key_size, size_t value_size, bool json);

void keyspace_free(struct keyspace *ks);

/* Writes key i (missing: its never-present twin) into buf, which holds at
 * least key_size bytes. No terminating zero. */
void keyspace_key(const struct keyspace *ks, uint64_t i, bool missing, char *buf);

/* The value stored under key i, valid until keyspace_free, and its length
 * (value_size, or the JSON document's). */
const char *keyspace_value(const struct keyspace *ks, uint64_t i);
size_t keyspace_value_len(const struct keyspace *ks, uint64_t i);

/* A bijection of [0, num): the order fillrandom writes the keys in, so that
 * a random fill writes every key exactly once. */
uint64_t keyspace_permute(const struct keyspace *ks, uint64_t i);

/* A well-mixed 64-bit function of x (splitmix64), for random key choice. */
uint64_t keyspace_mix(uint64_t x);

#endif /* BENCH_KEYSPACE_H */
