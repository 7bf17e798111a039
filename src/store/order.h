/*
 * order.h - the ordered index (order.c): every key's arena reference in key
 * byte order (memcmp, shorter first on a tie), in a B+tree whose leaves hold
 * the references themselves, so that keys can be read in order from any
 * position at O(log n + page) cost. It lives beside the hash index, inside
 * struct index, and changes with it (index.c). Not thread-safe: the store
 * guards it with its rwlock; readers (order_seek, order_next) only read.
 */
#ifndef KV_STORE_ORDER_H
#define KV_STORE_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"

/* Levels of inner nodes at most: far more than 2^32 keys need. */
#define ORDER_MAX_HEIGHT 24

/* Keys a leaf holds at most. */
#define ORDER_LEAF_KEYS 60

/* Keys up to this long have their path kept by order_prefetch. */
#define ORDER_AHEAD_KEY_MAX 64

/* The nodes from the root to a leaf, with each node's fences (the
 * separators around it in its parent; 0: none). */
struct order_path {
    uint32_t node[ORDER_MAX_HEIGHT + 1];
    uint16_t child[ORDER_MAX_HEIGHT + 1]; /* at level L >= 1: the child taken */
    uint32_t lo[ORDER_MAX_HEIGHT + 1], hi[ORDER_MAX_HEIGHT + 1];
};

struct order_tree {
    /* The node pool: chunks of fixed-size nodes addressed by 32-bit ids
     * (chunk in the high bits); id 0 means "none". */
    uint8_t **chunks;
    size_t nchunks;
    uint32_t fresh;     /* nodes handed out of the last chunk */
    uint32_t free_head; /* released nodes, threaded through their first word */
    size_t nfree;       /* nodes to be had without allocating */
    uint32_t root;      /* 0 while empty */
    unsigned height;    /* inner levels above the leaves */
    /* Rebalancing after removals, counted (tests check both ran). */
    uint64_t merges, rotations;
    /* What full leaves did instead of splitting in two, counted: lent keys
     * to a sibling, split two leaves into three, split off a key beyond
     * every other at an edge (order.c). */
    uint64_t redistributions, splits3, edge_splits;
    /* The path order_prefetch found to where ahead_key would go, for the
     * order_insert of that key which follows it; any change to the tree
     * forgets it. order_prefetch writes them holding only the read lock, so
     * one caller at a time may (the store's committer); order_insert and
     * order_remove use and forget them under the write lock. */
    struct order_path ahead;
    uint8_t ahead_key[ORDER_AHEAD_KEY_MAX];
    uint16_t ahead_len;
    bool ahead_valid;
};

int order_init(struct order_tree *t);
void order_destroy(struct order_tree *t);

/* Whether inserts more insertions could need a node the pool does not
 * hold; order_reserve then allocates them (KV_ENOMEM when it cannot), so
 * that the insertions themselves cannot fail. */
bool order_needs_room(const struct order_tree *t, size_t inserts);
int order_reserve(struct order_tree *t, size_t inserts);

/* Adds the entry at ref, whose key is not in the tree yet. The pool must
 * hold the room order_reserve(t, 1) makes. */
void order_insert(struct order_tree *t, struct arena *a, uint32_t ref);

/* Brings the nodes an insertion of key would change into the cache: reads
 * the inner nodes down to its leaf and starts loading the leaf, so that an
 * order_insert soon after finds them there. With remember, it also keeps
 * the path, and an order_insert of key before any other change to the tree
 * descends no more. It only reads the nodes, so readers may search the tree
 * meanwhile, but one caller at a time (it writes the path it keeps). */
void order_prefetch(struct order_tree *t, const struct arena *a, const void *key, size_t key_len,
                    bool remember);

/* Removes the entry at ref. Returns true when the tree keeps its key as a
 * separator between two nodes: the caller must then leave the entry in the
 * arena, which the tree releases when it drops the separator. */
bool order_remove(struct order_tree *t, struct arena *a, uint32_t ref);

/* ---- building a tree at once from references in key order (a snapshot
 * load): order_bulk_begin on an empty tree, order_bulk_add for the keys in
 * ascending order, a piece at a time, then order_bulk_end. Its nodes get
 * their hints when a write first changes them; until then a search reads
 * keys. On KV_ENOMEM the tree is left empty. */
struct order_bulk {
    uint32_t *leaves; /* ids, in order */
    uint32_t *firsts; /* the first key of each */
    size_t nleaves, cap;
    int rc;
};
void order_bulk_begin(struct order_tree *t, struct order_bulk *b);
void order_bulk_add(struct order_tree *t, struct order_bulk *b, const uint32_t *refs, size_t n);
int order_bulk_end(struct order_tree *t, struct order_bulk *b);

/* ---- reading in order: a cursor holds a position between two keys. It
 * stays valid only while the tree does not change. */
struct order_cursor {
    const struct order_tree *t;
    uint32_t node[ORDER_MAX_HEIGHT + 1]; /* [0] the leaf, [height] the root */
    uint16_t pos[ORDER_MAX_HEIGHT + 1];  /* key in the leaf; child in an inner node */
    bool end;
};

/* Places c before the first key >= key (after: > key); key_len 0 (key may
 * be NULL) places it before the first key of all. */
void order_seek(struct order_cursor *c, const struct order_tree *t, const struct arena *a,
                const void *key, size_t key_len, bool after);

/* The reference of the key after the cursor, moving past it; 0 at the end. */
uint32_t order_next(struct order_cursor *c);

/* Bytes of memory the tree holds. */
size_t order_memory(const struct order_tree *t);

/* What the tree's memory holds: its leaves and the keys in them, its inner
 * nodes, and the nodes of the pool that hold neither (free or never handed
 * out). A walk over every node: for tests and measurements. */
struct order_shape {
    size_t leaves, keys, inners, spare;
};
void order_shape(const struct order_tree *t, struct order_shape *s);

/* Checks the tree's invariants against the arena (keys in strict order, in
 * their nodes' key ranges, hints agreeing with the keys, every leaf at one
 * depth) and that it holds count keys. 0, or a description of the first
 * fault (a static string). For tests. */
const char *order_check(const struct order_tree *t, const struct arena *a, size_t count);

#endif /* KV_STORE_ORDER_H */
