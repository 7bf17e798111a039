/*
 * growbuf.h - a growing byte buffer whose appends never fail visibly: a
 * failed allocation sets failed, every later append is ignored, and the
 * owner checks failed once at the end (a reply that cannot be built is not
 * sent). The RESP writer and the HTTP server's JSON text build on it.
 */
#ifndef KV_UTIL_GROWBUF_H
#define KV_UTIL_GROWBUF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct growbuf {
    char *data; /* malloc'd; not terminated */
    size_t len, cap;
    bool failed;
};

static inline void growbuf_free(struct growbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Makes room for n more bytes; false (and failed) when memory runs out. */
static inline bool growbuf_reserve(struct growbuf *b, size_t n)
{
    if (b->failed)
        return false;
    if (b->cap - b->len >= n)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *grown = realloc(b->data, cap);
    if (grown == NULL) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->cap = cap;
    return true;
}

static inline void growbuf_append(struct growbuf *b, const void *data, size_t n)
{
    if (n == 0 || !growbuf_reserve(b, n))
        return;
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

#endif /* KV_UTIL_GROWBUF_H */
