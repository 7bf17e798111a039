/*
 * cursor.c - SCAN's cursors.
 *
 * SCAN walks the keys in byte order, a page at a time, each page starting
 * strictly after the last key of the one before: a key present for the
 * whole walk is never missed, whatever is written meanwhile. Redis's clients
 * need the cursor to be a number (redis-cli and redis-py parse it as one),
 * and a key does not fit in a number, so the server keeps the last key of
 * each page in a table and hands out the entry's number.
 *
 * A cursor number is the process's random epoch (23 bits) above a sequence
 * number (40 bits): entries are a ring indexed by sequence, so a lookup is
 * one slot; a cursor from another run of the server (a different epoch) or
 * one overwritten by CURSOR_SLOTS newer ones is unknown, and SCAN says so
 * rather than resuming from a wrong place. The keys the table holds are
 * bounded by CURSOR_BYTES: past it the oldest cursors are forgotten first.
 * Numbers stay below 2^63, so that Java's long holds them.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "server.h"

#define CURSOR_SLOTS (64u * 1024u)
#define CURSOR_BYTES (64u * 1024u * 1024u)
#define SEQ_BITS     40u
#define SEQ_MASK     ((UINT64_C(1) << SEQ_BITS) - 1)
#define EPOCH_MASK   ((UINT64_C(1) << 23) - 1)

struct cursor_slot {
    uint64_t seq; /* 0: empty */
    void *key;
    size_t len;
};

struct resp_cursors {
    pthread_mutex_t lock;
    uint64_t epoch;
    uint64_t next_seq;   /* the next sequence number; starts at 1 */
    uint64_t oldest_seq; /* the oldest that may still be held */
    size_t bytes;
    struct cursor_slot slots[CURSOR_SLOTS];
};

int resp_cursors_new(struct resp_cursors **out)
{
    struct resp_cursors *cs = calloc(1, sizeof(*cs));
    if (cs == NULL)
        return -1;
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint32_t)uv_hrtime();
    cs->epoch = (r & EPOCH_MASK) | 1u; /* never 0: cursor 0 starts a scan */
    cs->next_seq = 1;
    cs->oldest_seq = 1;
    pthread_mutex_init(&cs->lock, NULL);
    *out = cs;
    return 0;
}

void resp_cursors_free(struct resp_cursors *cs)
{
    if (cs == NULL)
        return;
    for (size_t i = 0; i < CURSOR_SLOTS; i++)
        free(cs->slots[i].key);
    pthread_mutex_destroy(&cs->lock);
    free(cs);
}

static void forget(struct resp_cursors *cs, struct cursor_slot *s)
{
    cs->bytes -= s->len;
    free(s->key);
    s->key = NULL;
    s->len = 0;
    s->seq = 0;
}

uint64_t resp_cursor_save(struct resp_cursors *cs, const void *key, size_t len)
{
    void *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, key, len);
    pthread_mutex_lock(&cs->lock);
    uint64_t seq = cs->next_seq++ & SEQ_MASK;
    if (seq == 0)
        seq = cs->next_seq++ & SEQ_MASK;
    struct cursor_slot *s = &cs->slots[seq % CURSOR_SLOTS];
    if (s->seq != 0)
        forget(cs, s);
    s->seq = seq;
    s->key = copy;
    s->len = len;
    cs->bytes += len;
    /* Over the byte budget: forget the oldest until under it. */
    while (cs->bytes > CURSOR_BYTES && cs->oldest_seq < seq) {
        struct cursor_slot *old = &cs->slots[cs->oldest_seq % CURSOR_SLOTS];
        if (old->seq == cs->oldest_seq)
            forget(cs, old);
        cs->oldest_seq++;
    }
    if (cs->oldest_seq + CURSOR_SLOTS <= seq)
        cs->oldest_seq = seq - CURSOR_SLOTS + 1;
    pthread_mutex_unlock(&cs->lock);
    return (cs->epoch << SEQ_BITS) | seq;
}

int resp_cursor_load(struct resp_cursors *cs, uint64_t cursor, void **key, size_t *len)
{
    int rc = -1;
    uint64_t seq = cursor & SEQ_MASK;
    if ((cursor >> SEQ_BITS) != cs->epoch || seq == 0)
        return -1;
    pthread_mutex_lock(&cs->lock);
    const struct cursor_slot *s = &cs->slots[seq % CURSOR_SLOTS];
    if (s->seq == seq) {
        void *copy = malloc(s->len > 0 ? s->len : 1);
        if (copy != NULL) {
            memcpy(copy, s->key, s->len);
            *key = copy;
            *len = s->len;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&cs->lock);
    return rc;
}
