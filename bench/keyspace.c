/*
 * keyspace.c - key formatting, the fill permutation and the value buffer.
 * Everything here runs inside timed loops, so keys are formatted by hand
 * (a snprintf per key would cost as much as a hash-index lookup).
 */
#include "keyspace.h"

#include <stdlib.h>
#include <string.h>

#include "corpus.h"

/* 1 MiB of values, as db_bench: each value_size is read at an offset inside. */
#define VALUE_BUF_MIN (1u << 20)

uint64_t keyspace_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Fills buf with pieces of 100 bytes whose first half is random printable
 * bytes and whose second half repeats it: compressors find about 50 %, as
 * db_bench's default compression ratio. */
static void fill_values(char *buf, size_t len)
{
    uint64_t state = 301;
    for (size_t at = 0; at < len; at += 100) {
        size_t piece = len - at < 100 ? len - at : 100;
        for (size_t j = 0; j < piece; j++) {
            if (j < 50) {
                state = keyspace_mix(state);
                buf[at + j] = (char)(' ' + (state % 95));
            } else {
                buf[at + j] = buf[at + j - 50];
            }
        }
    }
}

/* Makes every key's JSON document, back to back. */
static int make_corpus(struct keyspace *ks)
{
    ks->doc_offsets = malloc((ks->num + 1) * sizeof(*ks->doc_offsets));
    size_t cap = (size_t)ks->num * 1200 + CORPUS_MAX_DOC, len = 0;
    ks->values = malloc(cap);
    if (!ks->doc_offsets || !ks->values)
        return -1;
    for (uint64_t i = 0; i < ks->num; i++) {
        if (cap - len < CORPUS_MAX_DOC) {
            char *grown = realloc(ks->values, cap * 2);
            if (!grown)
                return -1;
            ks->values = grown;
            cap *= 2;
        }
        ks->doc_offsets[i] = len;
        len += corpus_doc(i, ks->values + len);
    }
    ks->doc_offsets[ks->num] = len;
    ks->value_buf_size = len;
    return 0;
}

int keyspace_init(struct keyspace *ks, uint64_t num, size_t key_size, size_t value_size, bool json)
{
    memset(ks, 0, sizeof(*ks));
    if (num == 0 || key_size < KEYSPACE_MIN_KEY || key_size > KEYSPACE_MAX_KEY)
        return -1;
    ks->num = num;
    ks->key_size = key_size;
    ks->value_size = value_size;
    unsigned bits = 2;
    while (bits < 64 && (1ULL << bits) < num)
        bits += 2;
    ks->half_bits = bits / 2;
    for (int r = 0; r < 4; r++)
        ks->round_keys[r] = keyspace_mix(0x5eed0000u + (uint64_t)r);
    if (json)
        return make_corpus(ks);
    ks->value_buf_size = value_size * 2 + VALUE_BUF_MIN;
    if (ks->value_buf_size < value_size) /* overflow */
        return -1;
    ks->values = malloc(ks->value_buf_size);
    if (!ks->values)
        return -1;
    fill_values(ks->values, ks->value_buf_size);
    return 0;
}

void keyspace_free(struct keyspace *ks)
{
    free(ks->values);
    free(ks->doc_offsets);
    ks->values = NULL;
    ks->doc_offsets = NULL;
}

void keyspace_key(const struct keyspace *ks, uint64_t i, bool missing, char *buf)
{
    size_t pos = ks->key_size;
    while (pos > 0) {
        buf[--pos] = (char)('0' + i % 10);
        i /= 10;
    }
    if (missing)
        buf[0] = 'x';
}

size_t keyspace_value_len(const struct keyspace *ks, uint64_t i)
{
    if (ks->doc_offsets)
        return (size_t)(ks->doc_offsets[i + 1] - ks->doc_offsets[i]);
    return ks->value_size;
}

const char *keyspace_value(const struct keyspace *ks, uint64_t i)
{
    if (ks->doc_offsets)
        return ks->values + ks->doc_offsets[i];
    size_t span = ks->value_buf_size - ks->value_size;
    return ks->values + (size_t)(keyspace_mix(i) % span);
}

/* One pass of a four-round Feistel network on 2 * half_bits bits: a
 * bijection of [0, 2^(2 * half_bits)). */
static uint64_t feistel(const struct keyspace *ks, uint64_t x)
{
    unsigned h = ks->half_bits;
    uint64_t mask = (1ULL << h) - 1;
    uint64_t left = (x >> h) & mask, right = x & mask;
    for (int r = 0; r < 4; r++) {
        uint64_t next = left ^ (keyspace_mix(right ^ ks->round_keys[r]) & mask);
        left = right;
        right = next;
    }
    return (left << h) | right;
}

uint64_t keyspace_permute(const struct keyspace *ks, uint64_t i)
{
    /* Cycle-walking: the network permutes a range less than four times num,
     * so stepping on until the value falls inside [0, num) ends after a few
     * steps and keeps the mapping a bijection. */
    uint64_t x = i;
    do {
        x = feistel(ks, x);
    } while (x >= ks->num);
    return x;
}
