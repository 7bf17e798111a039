/*
 * expiry.c - the side table of expiries (expiry.h): open addressing with
 * linear probing over 16-byte slots keyed by the entry's address, a power
 * of two of them, at most three quarters full, so a key with an expiry
 * costs 21 to 32 bytes here; deletion shifts the following members back
 * (no tombstones). Only entries flagged INDEX_OFF_EXPIRES are looked up,
 * so a read of a key without an expiry never comes here.
 */
#include "expiry.h"

#include <stdbool.h>
#include <stdlib.h>

#include "kvstore.h"

#define MIN_SLOTS 16u

static size_t home_of(const struct expiry_table *t, const struct index_entry *e)
{
    uint64_t x = (uint64_t)(uintptr_t)e * 0x9e3779b97f4a7c15ULL;
    return (size_t)(x >> 32) & (t->cap - 1);
}

static size_t find(const struct expiry_table *t, const struct index_entry *e)
{
    size_t i = home_of(t, e);
    while (t->slots[i].entry && t->slots[i].entry != e)
        i = (i + 1) & (t->cap - 1);
    return i;
}

void expiry_destroy(struct expiry_table *t)
{
    if (!t)
        return;
    free(t->slots);
    t->slots = NULL;
    t->cap = 0;
    t->count = 0;
}

static bool fits(size_t count, size_t cap)
{
    return count * 4 <= cap * 3;
}

int expiry_reserve(struct expiry_table *t, size_t n)
{
    size_t need = t->count + n;
    if (n == 0 || (t->cap && fits(need, t->cap)))
        return 0; /* no expiry yet: no table */
    size_t ncap = t->cap ? t->cap : MIN_SLOTS;
    while (!fits(need, ncap)) {
        if (ncap > SIZE_MAX / 2 / sizeof(struct expiry_slot))
            return KV_ENOMEM;
        ncap *= 2;
    }
    struct expiry_slot *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return KV_ENOMEM;
    struct expiry_table grown = {.slots = ns, .cap = ncap, .count = t->count};
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i].entry)
            ns[find(&grown, t->slots[i].entry)] = t->slots[i];
    }
    free(t->slots);
    *t = grown;
    return 0;
}

int expiry_set(struct expiry_table *t, const struct index_entry *e, uint64_t at)
{
    if (t->cap) {
        size_t i = find(t, e);
        if (t->slots[i].entry) {
            t->slots[i].at = at;
            return 0;
        }
    }
    if (expiry_reserve(t, 1) != 0)
        return KV_ENOMEM;
    size_t i = find(t, e);
    t->slots[i] = (struct expiry_slot){.entry = e, .at = at};
    t->count++;
    return 0;
}

uint64_t expiry_get(const struct expiry_table *t, const struct index_entry *e)
{
    if (t->count == 0)
        return 0;
    size_t i = find(t, e);
    return t->slots[i].entry ? t->slots[i].at : 0;
}

void expiry_remove(struct expiry_table *t, const struct index_entry *e)
{
    if (t->count == 0)
        return;
    size_t i = find(t, e);
    if (!t->slots[i].entry)
        return;
    size_t mask = t->cap - 1, hole = i, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->slots[j].entry)
            break;
        size_t home = home_of(t, t->slots[j].entry);
        /* It stays when its home lies after the hole, up to j (cyclically). */
        if (((home - hole - 1) & mask) < ((j - hole) & mask))
            continue;
        t->slots[hole] = t->slots[j];
        hole = j;
    }
    t->slots[hole] = (struct expiry_slot){0};
    t->count--;
}

size_t expiry_collect(const struct expiry_table *t, uint64_t now, size_t *cursor,
                      const struct index_entry **out, size_t max)
{
    size_t n = 0, i = *cursor;
    size_t stop = t->cap - i > 16 * max ? i + 16 * max : t->cap;
    for (; i < stop && n < max; i++) {
        if (t->slots[i].entry && t->slots[i].at <= now)
            out[n++] = t->slots[i].entry;
    }
    *cursor = i < t->cap ? i : 0;
    return n;
}

size_t expiry_count_passed(const struct expiry_table *t, uint64_t now)
{
    size_t n = 0, seen = 0;
    for (size_t i = 0; i < t->cap && seen < t->count; i++) {
        if (t->slots[i].entry) {
            seen++;
            n += t->slots[i].at <= now;
        }
    }
    return n;
}

size_t expiry_memory(const struct expiry_table *t)
{
    return t->cap * sizeof(struct expiry_slot);
}
