/*
 * expiry.h - the index's side table of expiries (expiry.c): for each entry
 * whose key has an expiry, that expiry. A key without one costs nothing
 * here: its entry carries no field for it, only a clear flag bit
 * (INDEX_OFF_EXPIRES, index.h), and an index whose keys have none holds no
 * table at all. Keyed by the entry's address, which never changes while the
 * entry lives (arena.h). Not thread-safe: the store guards it with its
 * rwlock, as the rest of the index.
 */
#ifndef KV_STORE_EXPIRY_H
#define KV_STORE_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

struct index_entry;

struct expiry_slot {
    const struct index_entry *entry; /* NULL: empty */
    uint64_t at;                     /* ms since the Unix epoch, never 0 */
};

struct expiry_table {
    struct expiry_slot *slots;
    size_t cap; /* a power of two, or 0 before the first expiry */
    size_t count;
};

/* The table starts empty (zeroed) and holds no memory. */
void expiry_destroy(struct expiry_table *t);

/* Makes room for n more entries without an allocation while they are added;
 * KV_ENOMEM on failure (the table is unchanged). */
int expiry_reserve(struct expiry_table *t, size_t n);

/* Sets e's expiry to at (not 0), adding e when absent; KV_ENOMEM leaves the
 * table unchanged. */
int expiry_set(struct expiry_table *t, const struct index_entry *e, uint64_t at);

/* e's expiry, or 0 when it has none. */
uint64_t expiry_get(const struct expiry_table *t, const struct index_entry *e);

/* Removes e's expiry; an entry without one is no error. */
void expiry_remove(struct expiry_table *t, const struct index_entry *e);

/* Up to max entries whose expiry is at or before now, into out, looking
 * at no more than 16 * max slots from slot *cursor on (start it at 0) and
 * leaving *cursor where the next call goes on; returns how many, and sets
 * *cursor to 0 once the end is reached. Removals between calls may move an entry behind the cursor:
 * a walk of calls may then miss it (the next walk finds it). */
size_t expiry_collect(const struct expiry_table *t, uint64_t now, size_t *cursor,
                      const struct index_entry **out, size_t max);

/* How many entries have an expiry at or before now. */
size_t expiry_count_passed(const struct expiry_table *t, uint64_t now);

/* Bytes of memory the table holds. */
size_t expiry_memory(const struct expiry_table *t);

#endif /* KV_STORE_EXPIRY_H */
