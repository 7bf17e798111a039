/*
 * order.c - the ordered index: a B+tree of arena references, kept in key
 * byte order beside the hash index.
 *
 * Memory decides the shape. A leaf is 384 bytes: up to 60 keys, each a
 * 4-byte reference and a 2-byte hint, so that a key costs about 7.8 bytes of
 * leaf at the 82 % fill random inserts leave (a full leaf makes room in a
 * sibling before it splits: see "a full leaf" below), 6.4 when keys come in
 * order, 6.9 when loaded in bulk. Inner
 * nodes hold up to 29 separators with 4-byte hints, and 30 children (4-byte
 * node ids). A separator is itself a reference: the first key of the node to
 * its right when it was made. No key is copied. When a separator's key is
 * removed from the store, the tree keeps its entry alive (order_remove tells
 * the caller, and the node's "owned" bit records it) and releases it when
 * the separator goes.
 *
 * Comparing keys means reading the arena, a cache miss per key on a large
 * store, so a search compares hints instead and reads a key only when two
 * hints tie. A node's hints are a monotone function of its keys, its frame:
 * every key that can reach the node shares its first plen bytes (the common
 * prefix of the node's fences, the separators around it in its parent), and
 * the hint reads the bytes after them as the digits of a number whose radix
 * at each place is the range of values the node's keys have there
 * (frame_hint). Keys in order have hints in order; a tie only says "read
 * the key". A frame stays valid while the node's key range only narrows (a
 * split), and is remade when it widens (a merge) or when its hints tie. The
 * nodes on the tree's left and right edges lack a fence: they frame their
 * own first and last key instead, and a search first checks the key's
 * prefix against the first (flag check).
 *
 * A tree built in bulk (a snapshot load) has no hints yet: searches read
 * keys until a write to the node frames it.
 */
#include "order.h"

#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "kvstore.h"

#define NODE_BYTES 384u
/* Node ids: chunk in the high bits, node within it in the low CHUNK_BITS.
 * The first chunk holds FIRST_CHUNK_NODES nodes (a small store takes 24
 * KiB), every later one CHUNK_NODES (384 KiB: few allocations for a large
 * store, and half a chunk unused on average is under 0.2 bytes a key at a
 * million keys). */
#define CHUNK_BITS        10u
#define CHUNK_NODES       (1u << CHUNK_BITS)
#define FIRST_CHUNK_NODES 64u
#define MAX_CHUNKS        (1u << (32 - CHUNK_BITS))
#define LEAF_CAP          ((unsigned)ORDER_LEAF_KEYS)
#define INNER_CAP         29u /* separators; one child more */
#define LEAF_MIN          (LEAF_CAP / 4)
#define INNER_MIN         (INNER_CAP / 4)
/* A node under its minimum merges with a sibling when the two fit in this. */
#define LEAF_MERGE  (LEAF_CAP * 3 / 4)
#define INNER_MERGE (INNER_CAP * 3 / 4)
/* Keys per leaf, children per inner node in a bulk build. */
#define BULK_LEAF  (LEAF_CAP - 4)
#define BULK_INNER (INNER_CAP - 2)

/* Bytes of a key past the prefix a frame reads at most. */
#define FRAME_BYTES 8

struct node_head {
    uint16_t n;                /* keys (leaf) or separators (inner node) */
    uint8_t framed;            /* the hints follow the frame */
    uint8_t check;             /* compare the first plen bytes with element 0 first */
    uint16_t plen;             /* the frame: the prefix every key here shares, */
    uint8_t wide;              /* 32-bit hints (inner nodes), else 16-bit (leaves) */
    uint8_t nbytes;            /* and for bytes plen.. plen + nbytes - 1: */
    uint8_t low[FRAME_BYTES];  /* the lowest value seen at each, */
    uint8_t span[FRAME_BYTES]; /* and how far above it the values reach */
};

struct leaf {
    struct node_head h;
    uint16_t hint[LEAF_CAP];
    uint32_t ref[LEAF_CAP];
};

struct inner {
    struct node_head h;
    uint64_t owned; /* bit i: sep[i]'s entry left the store; the tree releases it */
    uint32_t hint[INNER_CAP];
    uint32_t sep[INNER_CAP];
    uint32_t child[INNER_CAP + 1];
};

_Static_assert(sizeof(struct leaf) <= NODE_BYTES, "a leaf fits its node");
_Static_assert(sizeof(struct inner) <= NODE_BYTES, "an inner node fits its node");
_Static_assert(INNER_CAP <= 64, "owned bits fit a word");

/* A key read from the arena. */
struct key {
    const uint8_t *p;
    size_t len;
};

static struct key key_at(const struct arena *a, uint32_t ref)
{
    const struct index_entry *e = arena_entry(a, ref);
    return (struct key){.p = e->key, .len = e->key_len};
}

static int key_cmp(struct key x, struct key y)
{
    int c = memcmp(x.p, y.p, x.len < y.len ? x.len : y.len);
    if (c != 0)
        return c;
    return (x.len > y.len) - (x.len < y.len);
}

static size_t key_lcp(struct key x, struct key y)
{
    size_t n = x.len < y.len ? x.len : y.len, i = 0;
    while (i < n && x.p[i] == y.p[i])
        i++;
    return i;
}

/* ---- the node pool */

static struct node_head *node(const struct order_tree *t, uint32_t id)
{
    return (struct node_head *)(void *)(t->chunks[id >> CHUNK_BITS] +
                                        (size_t)(id & (CHUNK_NODES - 1)) * NODE_BYTES);
}

static struct leaf *leaf_of(const struct order_tree *t, uint32_t id)
{
    return (struct leaf *)node(t, id);
}

static struct inner *inner_of(const struct order_tree *t, uint32_t id)
{
    return (struct inner *)node(t, id);
}

int order_init(struct order_tree *t)
{
    memset(t, 0, sizeof(*t));
    return 0;
}

void order_destroy(struct order_tree *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nchunks; i++)
        free(t->chunks[i]);
    free(t->chunks);
    memset(t, 0, sizeof(*t));
}

/* Adds a chunk of fresh nodes. The nodes the last chunk has not handed out
 * yet move to the free list first, so that only the newest chunk hands out
 * fresh ones. */
static uint32_t chunk_nodes(size_t chunk)
{
    return chunk == 0 ? FIRST_CHUNK_NODES : CHUNK_NODES;
}

static int add_chunk(struct order_tree *t)
{
    if (t->nchunks == MAX_CHUNKS)
        return KV_ENOMEM;
    uint8_t **chunks = realloc(t->chunks, (t->nchunks + 1) * sizeof(*chunks));
    if (!chunks)
        return KV_ENOMEM;
    t->chunks = chunks;
    uint32_t nodes = chunk_nodes(t->nchunks);
    uint8_t *chunk = malloc((size_t)nodes * NODE_BYTES);
    if (!chunk)
        return KV_ENOMEM;
    arena_prefault(chunk, (size_t)nodes * NODE_BYTES);
    if (t->nchunks > 0) {
        for (uint32_t i = t->fresh; i < chunk_nodes(t->nchunks - 1); i++) {
            uint32_t id = (uint32_t)(((t->nchunks - 1) << CHUNK_BITS) | i);
            memcpy(node(t, id), &t->free_head, sizeof(uint32_t));
            t->free_head = id; /* still counted in nfree */
        }
    }
    chunks[t->nchunks++] = chunk;
    t->fresh = t->nchunks == 1 ? 1 : 0; /* node 0 means "none" */
    t->nfree += nodes - t->fresh;
    return 0;
}

static size_t nodes_for(const struct order_tree *t, size_t inserts)
{
    /* An insertion splits at most every level and adds a root. */
    return inserts * (t->height + 2);
}

bool order_needs_room(const struct order_tree *t, size_t inserts)
{
    return t->nfree < nodes_for(t, inserts);
}

int order_reserve(struct order_tree *t, size_t inserts)
{
    size_t need = nodes_for(t, inserts);
    while (t->nfree < need)
        if (add_chunk(t) != 0)
            return KV_ENOMEM;
    return 0;
}

static uint32_t node_alloc(struct order_tree *t)
{
    KV_ASSERT(t->nfree > 0);
    t->nfree--;
    uint32_t id;
    if (t->free_head) {
        id = t->free_head;
        memcpy(&t->free_head, node(t, id), sizeof(uint32_t));
    } else {
        id = (uint32_t)(((t->nchunks - 1) << CHUNK_BITS) | t->fresh++);
    }
    memset(node(t, id), 0, NODE_BYTES);
    return id;
}

static void node_free(struct order_tree *t, uint32_t id)
{
    memcpy(node(t, id), &t->free_head, sizeof(uint32_t));
    t->free_head = id;
    t->nfree++;
}

size_t order_memory(const struct order_tree *t)
{
    size_t nodes = t->nchunks ? FIRST_CHUNK_NODES + (t->nchunks - 1) * (size_t)CHUNK_NODES : 0;
    return nodes * NODE_BYTES + t->nchunks * sizeof(uint8_t *);
}

static void shape_of(const struct order_tree *t, uint32_t id, unsigned depth, struct order_shape *s)
{
    if (depth == t->height) {
        s->leaves++;
        s->keys += leaf_of(t, id)->h.n;
        return;
    }
    const struct inner *in = inner_of(t, id);
    s->inners++;
    for (size_t i = 0; i <= in->h.n; i++)
        shape_of(t, in->child[i], depth + 1, s);
}

void order_shape(const struct order_tree *t, struct order_shape *s)
{
    memset(s, 0, sizeof(*s));
    if (t->root)
        shape_of(t, t->root, 0, s);
    size_t nodes = t->nchunks ? FIRST_CHUNK_NODES + (t->nchunks - 1) * (size_t)CHUNK_NODES : 0;
    s->spare = nodes - s->leaves - s->inners - (t->nchunks > 0); /* node 0 is never used */
}

/* ---- frames and hints */

/*
 * The hint of k under h's frame: its bytes past the prefix as the digits of
 * a number whose radix at each place is the number of values the node's
 * keys have there, so that bytes every key shares cost nothing and decimal
 * digits cost a tenth of a byte's range. A byte outside its place's values
 * saturates it, and every place after it, at the low or high end: the hint
 * stays a monotone function of the key. 16 bits in a leaf, 32 in an inner
 * node.
 */
/* The FRAME_BYTES bytes of k from p on, big-endian, zeros past its end: in
 * a register, without a copy through memory. */
static uint64_t key_word(struct key k, size_t p)
{
    uint64_t v;
    if (p + 8 <= k.len) {
        memcpy(&v, k.p + p, 8);
        return __builtin_bswap64(v);
    }
    if (p >= k.len)
        return 0;
    if (k.len >= 8) { /* the key's last 8 bytes, moved up to start at p */
        memcpy(&v, k.p + k.len - 8, 8);
        return __builtin_bswap64(v) << (8 * (p - (k.len - 8)));
    }
    v = 0;
    for (size_t i = p; i < k.len; i++)
        v |= (uint64_t)k.p[i] << (56 - 8 * (i - p));
    return v;
}

_Static_assert(FRAME_BYTES == 8, "a frame's places are one word");

static uint32_t frame_hint(const struct node_head *h, struct key k)
{
    uint64_t w = key_word(k, h->plen);
    uint32_t code = 0;
    size_t i = 0, n = h->nbytes;
    for (; i < n; i++, w <<= 8) {
        unsigned d = (unsigned)(w >> 56) - h->low[i]; /* wraps when below */
        if (d > h->span[i])
            break;
        code = code * (h->span[i] + 1u) + d;
    }
    if (i == n)
        return code;
    bool above = (w >> 56) > h->low[i];
    for (; i < n; i++)
        code = code * (h->span[i] + 1u) + (above ? h->span[i] : 0);
    return code;
}

static uint32_t hint_get(const struct node_head *h, const void *hints, size_t i)
{
    return h->wide ? ((const uint32_t *)hints)[i] : ((const uint16_t *)hints)[i];
}

static void hint_put(const struct node_head *h, void *hints, size_t i, uint32_t v)
{
    if (h->wide)
        ((uint32_t *)hints)[i] = v;
    else
        ((uint16_t *)hints)[i] = (uint16_t)v;
}

/* Widens the byte ranges of a frame being built to take in k. */
static void frame_take(uint8_t lo[FRAME_BYTES], uint8_t hi[FRAME_BYTES], size_t p, struct key k)
{
    uint64_t w = key_word(k, p);
    for (size_t i = 0; i < FRAME_BYTES; i++, w <<= 8) {
        uint8_t b = (uint8_t)(w >> 56);
        lo[i] = b < lo[i] ? b : lo[i];
        hi[i] = b > hi[i] ? b : hi[i];
    }
}

/*
 * Frames h for the keys of elems[0, n) and its fences lo and hi (NULL:
 * none): every key routed to the node shares the fences' common prefix
 * (with check, which has no fences: the first and last key's, compared by
 * searches), and the frame's places are the bytes after it, as many as the
 * hints' width holds, with the ranges of values the keys and fences have
 * there. The keys are loaded ahead.
 */
static void frame_set(struct node_head *h, const uint32_t *elems, size_t n, const struct arena *a,
                      const struct key *lo, const struct key *hi, bool check)
{
    for (size_t i = 0; i < n; i++)
        __builtin_prefetch(arena_entry(a, elems[i]));
    size_t p = 0;
    if (check && n > 0)
        p = key_lcp(key_at(a, elems[0]), key_at(a, elems[n - 1]));
    else if (lo && hi)
        p = key_lcp(*lo, *hi);
    uint8_t low[FRAME_BYTES], high[FRAME_BYTES];
    memset(low, 0xFF, sizeof(low));
    memset(high, 0, sizeof(high));
    for (size_t i = 0; i < n; i++)
        frame_take(low, high, p, key_at(a, elems[i]));
    if (lo)
        frame_take(low, high, p, *lo);
    if (hi)
        frame_take(low, high, p, *hi);
    uint64_t limit = h->wide ? UINT32_MAX : 0xFFFF, product = 1;
    size_t nbytes = 0, used = 0; /* used: up to the last place that tells keys apart */
    while (nbytes < FRAME_BYTES && low[nbytes] <= high[nbytes] &&
           product * ((uint64_t)high[nbytes] - low[nbytes] + 1) - 1 <= limit) {
        product *= (uint64_t)high[nbytes] - low[nbytes] + 1;
        h->low[nbytes] = low[nbytes];
        h->span[nbytes] = (uint8_t)(high[nbytes] - low[nbytes]);
        if (h->span[nbytes] > 0)
            used = nbytes + 1;
        nbytes++;
    }
    nbytes = used;
    h->plen = (uint16_t)p;
    h->nbytes = (uint8_t)nbytes;
    h->check = check;
    h->framed = 1;
}

/* Hints of elems[from, to) under h's frame. */
static void hint_range(const struct node_head *h, void *hints, const uint32_t *elems, size_t from,
                       size_t to, const struct arena *a)
{
    for (size_t i = from; i < to; i++)
        hint_put(h, hints, i, frame_hint(h, key_at(a, elems[i])));
}

/* Frames a leaf for its keys and fences (0: none), checked when it lacks
 * one, and computes its hints. */
static void leaf_frame(struct leaf *l, const struct arena *a, uint32_t lo, uint32_t hi)
{
    if (lo && hi) {
        struct key klo = key_at(a, lo), khi = key_at(a, hi);
        frame_set(&l->h, l->ref, l->h.n, a, &klo, &khi, false);
    } else {
        frame_set(&l->h, l->ref, l->h.n, a, NULL, NULL, true);
    }
    hint_range(&l->h, l->hint, l->ref, 0, l->h.n, a);
}

/* Frames an inner node: by its fences when it has both, else by its own
 * first and last separators (checked). */
static void inner_frame(struct inner *in, const struct arena *a, uint32_t lo, uint32_t hi)
{
    in->h.wide = 1;
    if (lo && hi) {
        struct key klo = key_at(a, lo), khi = key_at(a, hi);
        frame_set(&in->h, in->sep, in->h.n, a, &klo, &khi, false);
    } else if (in->h.n > 0) {
        frame_set(&in->h, in->sep, in->h.n, a, NULL, NULL, true);
    } else {
        in->h.framed = 0;
        return;
    }
    hint_range(&in->h, in->hint, in->sep, 0, in->h.n, a);
}

/* Whether two neighbouring hints tie: the frame no longer tells the keys
 * apart, and a narrower one (after a split) may. */
static bool hints_tie(const struct node_head *h, const void *hints)
{
    for (size_t i = 1; i < h->n; i++)
        if (hint_get(h, hints, i) == hint_get(h, hints, i - 1))
            return true;
    return false;
}

/* ---- searching a node */

/* The number of hints below hk. The hints are sorted, so this is where hk
 * would go; counting them all, 8 or 4 at a time in vector registers,
 * issues every load at once, where a binary search waits for one load
 * after another. */
typedef uint16_t u16x8 __attribute__((vector_size(16)));
typedef int16_t i16x8 __attribute__((vector_size(16)));
typedef uint32_t u32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

static size_t hints_below(const struct node_head *h, const void *hints, uint32_t hk)
{
    size_t n = h->n, i = 0, count = 0;
    if (h->wide) {
        const uint32_t *v = hints;
        u32x4 key = {hk, hk, hk, hk};
        i32x4 acc = {0, 0, 0, 0};
        for (; i + 4 <= n; i += 4) {
            u32x4 x;
            memcpy(&x, v + i, sizeof(x));
            acc += (i32x4)(x < key); /* -1 in each lane below */
        }
        count = (size_t) - (acc[0] + acc[1] + acc[2] + acc[3]);
        for (; i < n; i++)
            count += v[i] < hk;
        return count;
    }
    const uint16_t *v = hints;
    uint16_t k16 = (uint16_t)hk;
    u16x8 key = {k16, k16, k16, k16, k16, k16, k16, k16};
    i16x8 acc = {0, 0, 0, 0, 0, 0, 0, 0};
    for (; i + 8 <= n; i += 8) {
        u16x8 x;
        memcpy(&x, v + i, sizeof(x));
        acc += (i16x8)(x < key);
    }
    int sum = 0;
    for (int j = 0; j < 8; j++)
        sum -= acc[j];
    count = (size_t)sum;
    for (; i < n; i++)
        count += v[i] < k16;
    return count;
}

/* The number of elements below key (upper: not above it). */
static size_t node_rank(const struct node_head *h, const void *hints, const uint32_t *elems,
                        const struct arena *a, struct key k, bool upper)
{
    size_t lo = 0, hi = h->n;
    if (!h->framed) {
        while (lo < hi) {
            size_t m = (lo + hi) / 2;
            int c = key_cmp(key_at(a, elems[m]), k);
            if (c < 0 || (c == 0 && upper))
                lo = m + 1;
            else
                hi = m;
        }
        return lo;
    }
    if (h->check && hi > 0) {
        struct key first = key_at(a, elems[0]);
        size_t p = h->plen, m = k.len < p ? k.len : p;
        int c = memcmp(k.p, first.p, m);
        if (c < 0 || (c == 0 && k.len < p))
            return 0;
        if (c > 0)
            return hi;
    }
    uint32_t hk = frame_hint(h, k);
    size_t i = hints_below(h, hints, hk);
    /* The keys whose hints tie with k's, in order: read until one is above. */
    for (; i < hi && hint_get(h, hints, i) == hk; i++) {
        int c = key_cmp(key_at(a, elems[i]), k);
        if (c > 0 || (c == 0 && !upper))
            break;
    }
    return i;
}

static size_t leaf_rank(const struct leaf *l, const struct arena *a, struct key k, bool upper)
{
    return node_rank(&l->h, l->hint, l->ref, a, k, upper);
}

/* The child of in that holds keys equal to k. */
static size_t inner_child(const struct inner *in, const struct arena *a, struct key k)
{
    return node_rank(&in->h, in->hint, in->sep, a, k, true);
}

/* Where ref lies in l: among the keys whose hint is its key's, found by
 * comparing references, not keys. */
static size_t leaf_find(const struct leaf *l, const struct arena *a, uint32_t ref)
{
    size_t i = 0, n = l->h.n;
    if (l->h.framed) {
        uint32_t hk = frame_hint(&l->h, key_at(a, ref));
        size_t hi = n;
        while (i < hi) {
            size_t m = (i + hi) / 2;
            if (l->hint[m] < hk)
                i = m + 1;
            else
                hi = m;
        }
        while (i < n && l->hint[i] == hk && l->ref[i] != ref)
            i++;
        if (i < n && l->ref[i] == ref)
            return i;
        i = 0; /* cannot happen: the hints agree with the keys */
    }
    while (i < n && l->ref[i] != ref)
        i++;
    return i;
}

/* ---- paths: the nodes from the root to a leaf, with each node's fences */

static void node_prefetch(const struct order_tree *t, uint32_t id)
{
    const uint8_t *p = (const uint8_t *)node(t, id);
    for (size_t off = 0; off < NODE_BYTES; off += 64)
        __builtin_prefetch(p + off);
}

/* Descends to the leaf where k belongs; with frame, framing the inner nodes
 * on the way that were built without hints (without, it only reads). Each
 * node's lines are loaded at once, as soon as its id is known. */
static void descend(struct order_tree *t, const struct arena *a, struct key k, struct order_path *p,
                    bool frame)
{
    uint32_t id = t->root, lo = 0, hi = 0;
    node_prefetch(t, id);
    for (unsigned level = t->height; level > 0; level--) {
        struct inner *in = inner_of(t, id);
        if (frame && !in->h.framed)
            inner_frame(in, a, lo, hi);
        size_t c = inner_child(in, a, k);
        p->node[level] = id;
        p->child[level] = (uint16_t)c;
        p->lo[level] = lo;
        p->hi[level] = hi;
        if (c > 0)
            lo = in->sep[c - 1];
        if (c < in->h.n)
            hi = in->sep[c];
        id = in->child[c];
        node_prefetch(t, id);
    }
    p->node[0] = id;
    p->lo[0] = lo;
    p->hi[0] = hi;
}

/* ---- insertion */

static size_t count_of(const struct order_tree *t, uint32_t id)
{
    return node(t, id)->n;
}

/* The fences of child c of the inner node at level + 1 on p. */
static void child_fences(const struct order_tree *t, const struct order_path *p, unsigned level,
                         size_t c, uint32_t *lo, uint32_t *hi)
{
    const struct inner *parent = inner_of(t, p->node[level + 1]);
    *lo = c > 0 ? parent->sep[c - 1] : p->lo[level + 1];
    *hi = c < parent->h.n ? parent->sep[c] : p->hi[level + 1];
}

/* Refreshes the hint of separator k after it changed. */
static void inner_rehint_one(struct inner *in, size_t k, const struct arena *a, uint32_t lo,
                             uint32_t hi)
{
    if (in->h.check)
        inner_frame(in, a, lo, hi);
    else if (in->h.framed)
        in->hint[k] = frame_hint(&in->h, key_at(a, in->sep[k]));
}

/* Whether k has the prefix of a checked frame, which element 0 holds. */
static bool has_frame_prefix(const struct node_head *h, const uint32_t *elems,
                             const struct arena *a, struct key k)
{
    size_t p = h->plen;
    return h->n == 0 || (k.len >= p && memcmp(k.p, key_at(a, elems[0]).p, p) == 0);
}

static void leaf_insert_at(struct leaf *l, size_t i, uint32_t ref, const struct arena *a)
{
    size_t n = l->h.n;
    struct key k = key_at(a, ref);
    /* A checked frame needs every key to have its prefix. */
    bool reframe = l->h.check && !has_frame_prefix(&l->h, l->ref, a, k);
    memmove(&l->ref[i + 1], &l->ref[i], (n - i) * sizeof(l->ref[0]));
    memmove(&l->hint[i + 1], &l->hint[i], (n - i) * sizeof(l->hint[0]));
    l->ref[i] = ref;
    l->hint[i] = l->h.framed ? (uint16_t)frame_hint(&l->h, k) : 0;
    l->h.n++;
    if (reframe)
        leaf_frame(l, a, 0, 0);
}

/* The owned bits after inserting bit at i, or removing the one at i (i is
 * below INNER_CAP, so no shift reaches 64). */
static uint64_t bits_insert(uint64_t bits, size_t i, bool bit)
{
    uint64_t low = bits & ((UINT64_C(1) << i) - 1);
    return low | ((bits >> i) << (i + 1)) | ((uint64_t)bit << i);
}

static uint64_t bits_remove(uint64_t bits, size_t i)
{
    uint64_t low = bits & ((UINT64_C(1) << i) - 1);
    return low | ((bits >> (i + 1)) << i);
}

/* Puts separator sep (owned or not) at i and child right after it. */
static void inner_insert_at(struct inner *in, size_t i, uint32_t sep, bool owned, uint32_t child,
                            const struct arena *a)
{
    size_t n = in->h.n;
    memmove(&in->sep[i + 1], &in->sep[i], (n - i) * sizeof(in->sep[0]));
    memmove(&in->hint[i + 1], &in->hint[i], (n - i) * sizeof(in->hint[0]));
    memmove(&in->child[i + 2], &in->child[i + 1], (n - i) * sizeof(in->child[0]));
    in->sep[i] = sep;
    in->child[i + 1] = child;
    in->owned = bits_insert(in->owned, i, owned);
    in->hint[i] = in->h.framed ? frame_hint(&in->h, key_at(a, sep)) : 0;
    in->h.n++;
}

/* After a split, a half keeps the frame it had, valid for its narrower
 * range, unless its hints tie: then it is framed anew, its keys read once,
 * together, rather than one at a time on ties later. A checked frame (a
 * node at an edge of the tree) is always remade, since it follows the
 * node's own keys. */
static void leaf_reframe_if_tied(struct leaf *l, const struct arena *a, uint32_t lo, uint32_t hi)
{
    if (l->h.check || !lo || !hi || hints_tie(&l->h, l->hint))
        leaf_frame(l, a, lo, hi);
}

static void inner_reframe(struct inner *in, const struct arena *a, uint32_t lo, uint32_t hi)
{
    if (in->h.check || !lo || !hi || hints_tie(&in->h, in->hint))
        inner_frame(in, a, lo, hi);
}

/* Splits a full leaf: the upper half moves to a new right sibling, whose
 * first key becomes the separator. */
static uint32_t leaf_split(struct order_tree *t, struct leaf *l, const struct arena *a, uint32_t lo,
                           uint32_t hi, uint32_t *sep)
{
    uint32_t rid = node_alloc(t);
    struct leaf *r = leaf_of(t, rid);
    size_t m = l->h.n / 2, rn = l->h.n - m;
    r->h = l->h;
    r->h.n = (uint16_t)rn;
    memcpy(r->ref, &l->ref[m], rn * sizeof(r->ref[0]));
    memcpy(r->hint, &l->hint[m], rn * sizeof(r->hint[0]));
    l->h.n = (uint16_t)m;
    *sep = r->ref[0];
    leaf_reframe_if_tied(l, a, lo, *sep);
    leaf_reframe_if_tied(r, a, *sep, hi);
    return rid;
}

/* Splits a full inner node around its middle separator, which moves up
 * (with its owned bit). */
static uint32_t inner_split(struct order_tree *t, struct inner *in, const struct arena *a,
                            uint32_t lo, uint32_t hi, uint32_t *up, bool *up_owned)
{
    uint32_t rid = node_alloc(t);
    struct inner *r = inner_of(t, rid);
    size_t m = in->h.n / 2, rn = in->h.n - m - 1;
    r->h = in->h;
    r->h.n = (uint16_t)rn;
    memcpy(r->sep, &in->sep[m + 1], rn * sizeof(r->sep[0]));
    memcpy(r->hint, &in->hint[m + 1], rn * sizeof(r->hint[0]));
    memcpy(r->child, &in->child[m + 1], (rn + 1) * sizeof(r->child[0]));
    r->owned = in->owned >> (m + 1);
    *up = in->sep[m];
    *up_owned = (in->owned >> m) & 1;
    in->owned &= m ? UINT64_MAX >> (64 - m) : 0;
    in->h.n = (uint16_t)m;
    inner_reframe(in, a, lo, *up);
    inner_reframe(r, a, *up, hi);
    return rid;
}

/* Hands the separator sep and the new node right (after child c) to the
 * inner node at level of p, splitting upward as far as needed. */
static void insert_upward(struct order_tree *t, const struct arena *a, struct order_path *p,
                          unsigned level, uint32_t sep, bool owned, uint32_t right)
{
    for (; level <= t->height; level++) {
        struct inner *in = inner_of(t, p->node[level]);
        size_t c = p->child[level];
        uint32_t lo = p->lo[level], hi = p->hi[level];
        if (in->h.n < INNER_CAP) {
            inner_insert_at(in, c, sep, owned, right, a);
            if (in->h.check)
                inner_frame(in, a, lo, hi);
            return;
        }
        uint32_t up;
        bool up_owned;
        uint32_t rid = inner_split(t, in, a, lo, hi, &up, &up_owned);
        size_t m = in->h.n;
        if (c <= m) {
            inner_insert_at(in, c, sep, owned, right, a);
            if (in->h.check)
                inner_frame(in, a, lo, up);
        } else {
            struct inner *r = inner_of(t, rid);
            inner_insert_at(r, c - m - 1, sep, owned, right, a);
            if (r->h.check)
                inner_frame(r, a, up, hi);
        }
        sep = up;
        owned = up_owned;
        right = rid;
    }
    /* The root split: a new root above it. */
    uint32_t nid = node_alloc(t);
    struct inner *root = inner_of(t, nid);
    root->child[0] = t->root;
    root->child[1] = right;
    root->sep[0] = sep;
    root->owned = owned;
    root->h.n = 1;
    inner_frame(root, a, 0, 0);
    t->root = nid;
    t->height++;
}

/* ---- a full leaf: room from a sibling before a split
 *
 * Splitting a full leaf in two leaves two leaves 50 % full, and random
 * inserts then settle near 69 %. A full leaf first lends keys to the
 * sibling with more room (when it has LEAF_ROOM free places at least), and
 * when both are about full the leaf and one of them become three leaves,
 * each about 2/3 full (a B*-tree's split): random inserts then keep leaves
 * about 82 % full. At the tree's right edge, a key above every other (keys
 * inserted in ascending order) starts a leaf of its own and leaves the full
 * one full, and at the left edge one below every other likewise, so that
 * keys inserted in order fill their leaves. Only leaves do this: inner
 * nodes are a few percent of the tree.
 */
#define LEAF_ROOM (LEAF_CAP / 6)

/* The keys of two neighbouring leaves x and y and the one being inserted,
 * in order, with the hints they had and the frames those were made under,
 * to be dealt out again. Key k came from x below y_from, from y from there
 * on, except the new key, at at. */
struct deal {
    uint32_t ref[2 * LEAF_CAP + 1];
    uint16_t hint[2 * LEAF_CAP + 1];
    struct node_head frame[2];
    size_t n, at, y_from;
    uint8_t new_side; /* the leaf whose range the new key lies in */
};

static void deal_gather(struct deal *d, const struct leaf *x, const struct leaf *y, size_t at,
                        uint32_t ref, uint8_t new_side)
{
    size_t nx = x->h.n, ny = y->h.n;
    d->frame[0] = x->h;
    d->frame[1] = y->h;
    memcpy(d->ref, x->ref, nx * sizeof(d->ref[0]));
    memcpy(&d->ref[nx], y->ref, ny * sizeof(d->ref[0]));
    memcpy(d->hint, x->hint, nx * sizeof(d->hint[0]));
    memcpy(&d->hint[nx], y->hint, ny * sizeof(d->hint[0]));
    memmove(&d->ref[at + 1], &d->ref[at], (nx + ny - at) * sizeof(d->ref[0]));
    memmove(&d->hint[at + 1], &d->hint[at], (nx + ny - at) * sizeof(d->hint[0]));
    d->ref[at] = ref;
    d->hint[at] = 0;
    d->n = nx + ny + 1;
    d->at = at;
    d->y_from = at <= nx ? nx + 1 : nx;
    d->new_side = new_side;
}

/* Which of the two leaves' ranges key k of the deal lies in. */
static uint8_t deal_side(const struct deal *d, size_t k)
{
    return k == d->at ? d->new_side : k >= d->y_from;
}

/* Whether hints made under frame f hold under g. */
static bool frames_equal(const struct node_head *f, const struct node_head *g)
{
    return f->framed && g->framed && f->plen == g->plen && f->nbytes == g->nbytes &&
           f->wide == g->wide && f->check == g->check && memcmp(f->low, g->low, f->nbytes) == 0 &&
           memcmp(f->span, g->span, f->nbytes) == 0;
}

/* Computes the hints of l's keys [from, to) under its frame, reading the
 * keys (loaded ahead, together). */
static void leaf_rehint(struct leaf *l, const struct arena *a, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        __builtin_prefetch(arena_entry(a, l->ref[i]));
    for (size_t i = from; i < to; i++)
        l->hint[i] = (uint16_t)frame_hint(&l->h, key_at(a, l->ref[i]));
}

/*
 * Makes l hold the keys d->ref[from, from + n), between fences lo and hi.
 * The frame l has still holds when every key of its new range shares its
 * prefix: when the range only narrowed (narrowed), or when its fences share
 * the prefix. The hints made under it, or under an equal frame, are kept
 * then, and only the others are computed, reading those keys. Else, or
 * when the computed hints tie, l is framed anew, reading every key.
 */
static void leaf_take(struct leaf *l, const struct deal *d, size_t from, size_t n,
                      const struct arena *a, uint32_t lo, uint32_t hi, bool narrowed)
{
    bool keep = l->h.framed && !l->h.check && lo && hi &&
                (narrowed || key_lcp(key_at(a, lo), key_at(a, hi)) >= l->h.plen);
    l->h.n = (uint16_t)n;
    memcpy(l->ref, &d->ref[from], n * sizeof(l->ref[0]));
    if (!keep) {
        leaf_frame(l, a, lo, hi);
        return;
    }
    memcpy(l->hint, &d->hint[from], n * sizeof(l->hint[0]));
    /* The keys from x are [0, split) here, from y [split, n), and the new
     * key at at, if it is here. */
    size_t to = from + n;
    size_t split = d->y_from < from ? 0 : d->y_from > to ? n : d->y_from - from;
    bool computed = false;
    if (split > 0 && !frames_equal(&d->frame[0], &l->h)) {
        leaf_rehint(l, a, 0, split);
        computed = true;
    }
    if (split < n && !frames_equal(&d->frame[1], &l->h)) {
        leaf_rehint(l, a, split, n);
        computed = true;
    }
    if (d->at >= from && d->at < to) {
        leaf_rehint(l, a, d->at - from, d->at - from + 1);
        computed = true;
    }
    if (computed && hints_tie(&l->h, l->hint))
        leaf_frame(l, a, lo, hi);
}

/* Replaces separator k of in, releasing the entry of the one it had when
 * the tree owned it. */
static void inner_replace_sep(struct inner *in, size_t k, uint32_t sep, struct arena *a,
                              uint32_t lo, uint32_t hi)
{
    if (in->sep[k] == sep)
        return;
    if ((in->owned >> k) & 1)
        arena_release(a, in->sep[k]);
    in->owned &= ~(UINT64_C(1) << k);
    in->sep[k] = sep;
    inner_rehint_one(in, k, a, lo, hi);
}

/*
 * Deals the keys of the leaves j and j + 1 of the parent on p, with ref
 * (which goes at i of child p->child[1]), out again: over the two, or, with
 * three, over three, a new leaf between them. A leaf keeps its frame where
 * it can; the new one starts from the frame of the leaf its middle key
 * comes from. Both neighbours stay under the same parent, whose separator
 * between them changes (and with three, one is added).
 */
static bool leaves_deal(struct order_tree *t, struct arena *a, struct order_path *p, size_t j,
                        bool three, size_t i, uint32_t ref)
{
    struct inner *parent = inner_of(t, p->node[1]);
    struct leaf *x = leaf_of(t, parent->child[j]), *y = leaf_of(t, parent->child[j + 1]);
    struct deal d;
    bool into_y = p->child[1] != j;
    deal_gather(&d, x, y, into_y ? x->h.n + i : i, ref, into_y);
    uint32_t lo, hi, unused;
    child_fences(t, p, 0, j, &lo, &unused);
    child_fences(t, p, 0, j + 1, &unused, &hi);
    /* Both leaves were full, or one was: d.n > LEAF_CAP, and each part gets
     * keys. */
    size_t nx = three ? d.n / 3 : (d.n + 1) / 2;
    size_t ym = three ? nx + (d.n - nx) / 2 : nx; /* where y's keys start */
    if (NEVER(ym >= d.n || nx == 0))
        return false;
    uint32_t sep_m = d.ref[nx], sep_y = d.ref[ym];
    /* The keys the leaves' frames are checked against, loaded at once. */
    uint32_t fences[4] = {lo, hi, sep_m, sep_y};
    for (size_t f = 0; f < 4; f++)
        if (fences[f])
            __builtin_prefetch(arena_entry(a, fences[f]));
    leaf_take(x, &d, 0, nx, a, lo, sep_m, deal_side(&d, nx) == 0);
    if (three) {
        uint32_t mid = node_alloc(t);
        struct leaf *m = leaf_of(t, mid);
        m->h = d.frame[deal_side(&d, (nx + ym) / 2)];
        leaf_take(m, &d, nx, ym - nx, a, sep_m, sep_y, false);
        leaf_take(y, &d, ym, d.n - ym, a, sep_y, hi, deal_side(&d, ym) == 1);
        inner_replace_sep(parent, j, sep_y, a, p->lo[1], p->hi[1]);
        p->child[1] = (uint16_t)j;
        t->splits3++;
        insert_upward(t, a, p, 1, sep_m, false, mid);
        return true;
    }
    leaf_take(y, &d, nx, d.n - nx, a, sep_y, hi, deal_side(&d, nx) == 1);
    inner_replace_sep(parent, j, sep_y, a, p->lo[1], p->hi[1]);
    t->redistributions++;
    return true;
}

/* At an edge of the tree, a key beyond every other takes a new leaf of its
 * own beside the full leaf l, which stays full. */
static void leaf_split_edge(struct order_tree *t, struct arena *a, struct order_path *p,
                            struct leaf *l, bool right, uint32_t ref)
{
    uint32_t rid = node_alloc(t);
    struct leaf *r = leaf_of(t, rid);
    uint32_t sep;
    if (right) {
        r->h.n = 1;
        r->ref[0] = ref;
        sep = ref;
        leaf_frame(r, a, sep, p->hi[0]);
        leaf_reframe_if_tied(l, a, p->lo[0], sep);
    } else { /* the keys move right, and ref stays alone on the left */
        r->h = l->h;
        memcpy(r->ref, l->ref, l->h.n * sizeof(r->ref[0]));
        memcpy(r->hint, l->hint, l->h.n * sizeof(r->hint[0]));
        sep = r->ref[0];
        l->h.n = 1;
        l->ref[0] = ref;
        leaf_frame(l, a, p->lo[0], sep);
        leaf_reframe_if_tied(r, a, sep, p->hi[0]);
    }
    t->edge_splits++;
    insert_upward(t, a, p, 1, sep, false, rid);
}

/* Inserts ref at i of the full leaf at the foot of p. */
static void leaf_insert_full(struct order_tree *t, struct arena *a, struct order_path *p, size_t i,
                             uint32_t ref)
{
    struct leaf *l = leaf_of(t, p->node[0]);
    if ((p->hi[0] == 0 && i == l->h.n) || (p->lo[0] == 0 && i == 0)) {
        leaf_split_edge(t, a, p, l, i > 0, ref);
        return;
    }
    if (t->height > 0) {
        const struct inner *parent = inner_of(t, p->node[1]);
        size_t c = p->child[1];
        /* The siblings' counts together, then the one dealt with whole. */
        if (c > 0)
            __builtin_prefetch(node(t, parent->child[c - 1]));
        if (c < parent->h.n)
            __builtin_prefetch(node(t, parent->child[c + 1]));
        size_t left = c > 0 ? count_of(t, parent->child[c - 1]) : LEAF_CAP;
        size_t right = c < parent->h.n ? count_of(t, parent->child[c + 1]) : LEAF_CAP;
        bool lend = (left < right ? left : right) + LEAF_ROOM <= LEAF_CAP;
        size_t j = lend ? (left < right ? c - 1 : c) : (c < parent->h.n ? c : c - 1);
        node_prefetch(t, parent->child[j == c ? c + 1 : j]);
        bool dealt = leaves_deal(t, a, p, j, !lend, i, ref);
        if (dealt)
            return;
    }
    /* The root leaf: split in two. */
    uint32_t sep;
    uint32_t rid = leaf_split(t, l, a, p->lo[0], p->hi[0], &sep);
    if (i <= l->h.n)
        leaf_insert_at(l, i, ref, a);
    else
        leaf_insert_at(leaf_of(t, rid), i - l->h.n, ref, a);
    insert_upward(t, a, p, 1, sep, false, rid);
}

void order_insert(struct order_tree *t, struct arena *a, uint32_t ref)
{
    struct key k = key_at(a, ref);
    if (!t->root) {
        t->root = node_alloc(t);
        struct leaf *l = leaf_of(t, t->root);
        l->h.n = 1;
        l->ref[0] = ref;
        leaf_frame(l, a, 0, 0);
        return;
    }
    struct order_path p;
    if (t->ahead_valid && t->ahead_len == k.len && memcmp(t->ahead_key, k.p, k.len) == 0) {
        p = t->ahead; /* order_prefetch's descent, which framed nothing */
        for (unsigned level = t->height; level > 0; level--) {
            struct inner *in = inner_of(t, p.node[level]);
            if (!in->h.framed)
                inner_frame(in, a, p.lo[level], p.hi[level]);
        }
    } else {
        descend(t, a, k, &p, true);
    }
    t->ahead_valid = false;
    struct leaf *l = leaf_of(t, p.node[0]);
    if (!l->h.framed)
        leaf_frame(l, a, p.lo[0], p.hi[0]);
    size_t i = leaf_rank(l, a, k, true);
    if (l->h.n < LEAF_CAP)
        leaf_insert_at(l, i, ref, a);
    else
        leaf_insert_full(t, a, &p, i, ref);
}

void order_prefetch(struct order_tree *t, const struct arena *a, const void *key, size_t key_len,
                    bool remember)
{
    if (!t->root)
        return;
    struct key k = {.p = key, .len = key_len};
    remember = remember && key_len <= ORDER_AHEAD_KEY_MAX;
    if (remember) {
        descend(t, a, k, &t->ahead, false);
        memcpy(t->ahead_key, key, key_len);
        t->ahead_len = (uint16_t)key_len;
        t->ahead_valid = true;
        return;
    }
    uint32_t id = t->root;
    for (unsigned level = t->height; level > 0; level--) {
        const struct inner *in = inner_of(t, id);
        id = in->child[inner_child(in, a, k)];
        node_prefetch(t, id);
    }
}

/* ---- removal */

static void leaf_remove_at(struct leaf *l, size_t i)
{
    size_t n = l->h.n;
    memmove(&l->ref[i], &l->ref[i + 1], (n - i - 1) * sizeof(l->ref[0]));
    memmove(&l->hint[i], &l->hint[i + 1], (n - i - 1) * sizeof(l->hint[0]));
    l->h.n--;
}

/* Removes separator i and the child after it; an owned separator's entry is
 * released unless keep (it moves into a merged node). */
static void inner_remove_at(struct inner *in, size_t i, struct arena *a, bool keep)
{
    size_t n = in->h.n;
    if (!keep && ((in->owned >> i) & 1))
        arena_release(a, in->sep[i]);
    memmove(&in->sep[i], &in->sep[i + 1], (n - i - 1) * sizeof(in->sep[0]));
    memmove(&in->hint[i], &in->hint[i + 1], (n - i - 1) * sizeof(in->hint[0]));
    memmove(&in->child[i + 1], &in->child[i + 2], (n - i - 1) * sizeof(in->child[0]));
    in->owned = bits_remove(in->owned, i);
    in->h.n--;
}

/* Merges leaf r into its left sibling l: the pair's fences are lo and hi. */
static void leaf_merge(struct leaf *l, const struct leaf *r, const struct arena *a, uint32_t lo,
                       uint32_t hi)
{
    memcpy(&l->ref[l->h.n], r->ref, r->h.n * sizeof(r->ref[0]));
    l->h.n = (uint16_t)(l->h.n + r->h.n);
    leaf_frame(l, a, lo, hi);
}

/* Merges inner node r into its left sibling l, with their parent's
 * separator sep between them. */
static void inner_merge(struct inner *l, const struct inner *r, uint32_t sep, bool owned,
                        const struct arena *a, uint32_t lo, uint32_t hi)
{
    size_t n = l->h.n;
    l->sep[n] = sep;
    memcpy(&l->sep[n + 1], r->sep, r->h.n * sizeof(r->sep[0]));
    memcpy(&l->child[n + 1], r->child, (r->h.n + 1) * sizeof(r->child[0]));
    l->owned |= (uint64_t)owned << n;
    l->owned |= r->owned << (n + 1);
    l->h.n = (uint16_t)(n + 1 + r->h.n);
    inner_frame(l, a, lo, hi);
}

/* Gives the inner node at level, left without a separator, a child of a
 * sibling too full to merge with it, through their parent's separator. */
static void rotate_into(struct order_tree *t, const struct arena *a, const struct order_path *p,
                        unsigned level)
{
    struct inner *parent = inner_of(t, p->node[level + 1]);
    size_t c = p->child[level + 1];
    struct inner *x = inner_of(t, p->node[level]);
    bool from_left = c > 0;
    size_t k = from_left ? c - 1 : c; /* the parent's separator between them */
    uint32_t sid = parent->child[from_left ? c - 1 : c + 1];
    struct inner *sib = inner_of(t, sid);
    bool k_owned = (parent->owned >> k) & 1;
    x->sep[0] = parent->sep[k];
    x->owned = k_owned;
    if (from_left) {
        size_t last = sib->h.n - 1;
        x->child[1] = x->child[0];
        x->child[0] = sib->child[last + 1];
        parent->sep[k] = sib->sep[last];
        parent->owned =
            (parent->owned & ~(UINT64_C(1) << k)) | ((uint64_t)((sib->owned >> last) & 1) << k);
        sib->owned &= ~(UINT64_C(1) << last);
        sib->h.n--;
    } else {
        x->child[1] = sib->child[0];
        parent->sep[k] = sib->sep[0];
        parent->owned = (parent->owned & ~(UINT64_C(1) << k)) | ((uint64_t)(sib->owned & 1) << k);
        memmove(&sib->child[0], &sib->child[1], sib->h.n * sizeof(sib->child[0]));
        memmove(&sib->sep[0], &sib->sep[1], (sib->h.n - 1) * sizeof(sib->sep[0]));
        memmove(&sib->hint[0], &sib->hint[1], (sib->h.n - 1) * sizeof(sib->hint[0]));
        sib->owned >>= 1;
        sib->h.n--;
    }
    x->h.n = 1;
    t->rotations++;
    inner_rehint_one(parent, k, a, p->lo[level + 1], p->hi[level + 1]);
    uint32_t lo, hi;
    child_fences(t, p, level, c, &lo, &hi);
    inner_frame(x, a, lo, hi);
    size_t sc = from_left ? c - 1 : c + 1;
    child_fences(t, p, level, sc, &lo, &hi);
    if (sib->h.check)
        inner_frame(sib, a, lo, hi);
}

/* The node at level (under its minimum) merges with a sibling when the two
 * fit; returns whether the parent lost a separator. An inner node left
 * without a separator that cannot merge takes a child from its sibling. */
static bool merge_at(struct order_tree *t, struct arena *a, const struct order_path *p,
                     unsigned level)
{
    struct inner *parent = inner_of(t, p->node[level + 1]);
    size_t c = p->child[level + 1];
    size_t k = c > 0 ? c - 1 : c; /* separator between the pair */
    if (k >= parent->h.n)
        return false; /* an only child */
    uint32_t lid = parent->child[k], rid = parent->child[k + 1];
    size_t total = count_of(t, lid) + count_of(t, rid);
    bool empty = count_of(t, p->node[level]) == 0;
    uint32_t lo = k > 0 ? parent->sep[k - 1] : p->lo[level + 1];
    uint32_t hi = k + 1 < parent->h.n ? parent->sep[k + 1] : p->hi[level + 1];
    if (level == 0) {
        if (total > (empty ? LEAF_CAP : LEAF_MERGE))
            return false;
        leaf_merge(leaf_of(t, lid), leaf_of(t, rid), a, lo, hi);
        inner_remove_at(parent, k, a, false);
    } else {
        if (total + 1 > (empty ? INNER_CAP : INNER_MERGE)) {
            if (empty)
                rotate_into(t, a, p, level);
            return false;
        }
        bool owned = (parent->owned >> k) & 1;
        inner_merge(inner_of(t, lid), inner_of(t, rid), parent->sep[k], owned, a, lo, hi);
        inner_remove_at(parent, k, a, true);
    }
    node_free(t, rid);
    t->merges++;
    if (parent->h.check) /* its separators changed */
        inner_frame(parent, a, p->lo[level + 1], p->hi[level + 1]);
    return true;
}

/* Shrinks the tree while its root is an inner node with a single child. */
static void collapse_root(struct order_tree *t)
{
    while (t->height > 0 && inner_of(t, t->root)->h.n == 0) {
        uint32_t old = t->root;
        t->root = inner_of(t, old)->child[0];
        t->height--;
        node_free(t, old);
    }
    if (t->height == 0 && leaf_of(t, t->root)->h.n == 0) {
        node_free(t, t->root);
        t->root = 0;
    }
}

bool order_remove(struct order_tree *t, struct arena *a, uint32_t ref)
{
    if (!ALWAYS(t->root))
        return false;
    struct key k = key_at(a, ref);
    struct order_path p;
    t->ahead_valid = false;
    descend(t, a, k, &p, true);
    bool kept = false;
    for (unsigned level = 1; level <= t->height; level++) {
        struct inner *in = inner_of(t, p.node[level]);
        size_t c = p.child[level];
        if (c > 0 && in->sep[c - 1] == ref) {
            in->owned |= UINT64_C(1) << (c - 1);
            kept = true;
        }
    }
    struct leaf *l = leaf_of(t, p.node[0]);
    size_t i = leaf_find(l, a, ref);
    if (!ALWAYS(i < l->h.n))
        return kept;
    leaf_remove_at(l, i);
    for (unsigned level = 0; level < t->height; level++) {
        size_t min = level == 0 ? LEAF_MIN : INNER_MIN;
        if (count_of(t, p.node[level]) >= min || !merge_at(t, a, &p, level))
            break;
    }
    collapse_root(t);
    return kept;
}

/* ---- bulk build */

void order_bulk_begin(struct order_tree *t, struct order_bulk *b)
{
    (void)t;
    KV_ASSERT(!t->root);
    memset(b, 0, sizeof(*b));
}

static int bulk_new_leaf(struct order_tree *t, struct order_bulk *b)
{
    if (b->nleaves == b->cap) {
        size_t ncap = b->cap ? 2 * b->cap : 64;
        uint32_t *grown = realloc(b->leaves, ncap * sizeof(*grown));
        if (!grown)
            return KV_ENOMEM;
        b->leaves = grown;
        grown = realloc(b->firsts, ncap * sizeof(*grown));
        if (!grown)
            return KV_ENOMEM;
        b->firsts = grown;
        b->cap = ncap;
    }
    if (order_reserve(t, 1) != 0)
        return KV_ENOMEM;
    b->leaves[b->nleaves++] = node_alloc(t);
    return 0;
}

void order_bulk_add(struct order_tree *t, struct order_bulk *b, const uint32_t *refs, size_t n)
{
    while (n > 0 && b->rc == 0) {
        if ((b->nleaves == 0 || leaf_of(t, b->leaves[b->nleaves - 1])->h.n == BULK_LEAF) &&
            (b->rc = bulk_new_leaf(t, b)) != 0)
            return;
        struct leaf *l = leaf_of(t, b->leaves[b->nleaves - 1]);
        size_t take = BULK_LEAF - l->h.n < n ? BULK_LEAF - l->h.n : n;
        if (l->h.n == 0)
            b->firsts[b->nleaves - 1] = refs[0];
        memcpy(&l->ref[l->h.n], refs, take * sizeof(*refs));
        l->h.n = (uint16_t)(l->h.n + take);
        refs += take;
        n -= take;
    }
}

/* Builds one level of inner nodes over ids (in order, with the first key
 * under each in firsts), replacing them with the new level's; returns how
 * many. */
static size_t bulk_level(struct order_tree *t, uint32_t *ids, uint32_t *firsts, size_t n)
{
    size_t groups = (n + BULK_INNER - 1) / BULK_INNER, at = 0;
    for (size_t g = 0; g < groups; g++) {
        size_t take = (n - at) / (groups - g); /* spread evenly */
        uint32_t id = node_alloc(t);
        struct inner *in = inner_of(t, id);
        in->child[0] = ids[at];
        for (size_t j = 1; j < take; j++) {
            in->child[j] = ids[at + j];
            in->sep[j - 1] = firsts[at + j];
        }
        in->h.n = (uint16_t)(take - 1);
        ids[g] = id;
        firsts[g] = firsts[at];
        at += take;
    }
    return groups;
}

int order_bulk_end(struct order_tree *t, struct order_bulk *b)
{
    int rc = b->rc;
    size_t n = b->nleaves;
    if (rc == 0 && n > 1) {
        /* The last leaf takes half of the one before when it is short. */
        struct leaf *last = leaf_of(t, b->leaves[n - 1]), *prev = leaf_of(t, b->leaves[n - 2]);
        if (last->h.n < LEAF_MIN) {
            size_t move = (prev->h.n - last->h.n) / 2;
            memmove(&last->ref[move], last->ref, last->h.n * sizeof(last->ref[0]));
            memcpy(last->ref, &prev->ref[prev->h.n - move], move * sizeof(last->ref[0]));
            prev->h.n = (uint16_t)(prev->h.n - move);
            last->h.n = (uint16_t)(last->h.n + move);
            b->firsts[n - 1] = last->ref[0];
        }
        size_t inner = 0;
        for (size_t m = n; m > 1; m = (m + BULK_INNER - 1) / BULK_INNER)
            inner += (m + BULK_INNER - 1) / BULK_INNER;
        if (t->nfree < inner)
            while (t->nfree < inner && rc == 0)
                rc = add_chunk(t);
    }
    if (rc == 0 && n > 0) {
        unsigned level = 0;
        for (; n > 1; level++)
            n = bulk_level(t, b->leaves, b->firsts, n);
        t->root = b->leaves[0];
        t->height = level;
    }
    if (rc != 0) {
        order_destroy(t);
        order_init(t);
    }
    free(b->leaves);
    free(b->firsts);
    memset(b, 0, sizeof(*b));
    return rc;
}

/* ---- cursors */

static void cursor_descend_first(struct order_cursor *c, unsigned level, uint32_t id)
{
    for (; level > 0; level--) {
        c->node[level] = id;
        c->pos[level] = 0;
        id = inner_of(c->t, id)->child[0];
    }
    c->node[0] = id;
    c->pos[0] = 0;
}

void order_seek(struct order_cursor *c, const struct order_tree *t, const struct arena *a,
                const void *key, size_t key_len, bool after)
{
    c->t = t;
    c->end = t->root == 0;
    if (c->end)
        return;
    if (key_len == 0) {
        cursor_descend_first(c, t->height, t->root);
        return;
    }
    struct key k = {.p = key, .len = key_len};
    uint32_t id = t->root;
    for (unsigned level = t->height; level > 0; level--) {
        const struct inner *in = inner_of(t, id);
        size_t ch = inner_child(in, a, k);
        c->node[level] = id;
        c->pos[level] = (uint16_t)ch;
        id = in->child[ch];
    }
    c->node[0] = id;
    c->pos[0] = (uint16_t)leaf_rank(leaf_of(t, id), a, k, after);
}

uint32_t order_next(struct order_cursor *c)
{
    if (c->end)
        return 0;
    const struct order_tree *t = c->t;
    while (c->pos[0] >= leaf_of(t, c->node[0])->h.n) {
        unsigned level = 1;
        while (level <= t->height && c->pos[level] >= inner_of(t, c->node[level])->h.n)
            level++;
        if (level > t->height) {
            c->end = true;
            return 0;
        }
        c->pos[level]++;
        cursor_descend_first(c, level - 1, inner_of(t, c->node[level])->child[c->pos[level]]);
    }
    return leaf_of(t, c->node[0])->ref[c->pos[0]++];
}

/* ---- invariants, for tests */

struct check {
    const struct order_tree *t;
    const struct arena *a;
    size_t keys;
    unsigned leaf_depth;
    bool leaf_seen;
    uint32_t last; /* the last key seen, in order */
};

static const char *check_hints(const struct node_head *h, const void *hints, const uint32_t *elems,
                               const struct arena *a)
{
    if (!h->framed)
        return NULL;
    for (size_t i = 0; i < h->n; i++) {
        struct key k = key_at(a, elems[i]);
        if (h->check && memcmp(k.p, key_at(a, elems[0]).p, h->plen) != 0)
            return "a key of a checked node lacks its prefix";
        if (hint_get(h, hints, i) != frame_hint(h, k))
            return "a hint disagrees with its key";
    }
    return NULL;
}

static const char *in_range(const struct check *ck, uint32_t ref, uint32_t lo, uint32_t hi)
{
    struct key k = key_at(ck->a, ref);
    if (lo && key_cmp(key_at(ck->a, lo), k) > 0)
        return "a key lies below its node's range";
    if (hi && key_cmp(k, key_at(ck->a, hi)) >= 0)
        return "a key lies above its node's range";
    return NULL;
}

/* The shared prefix a fenced frame relies on. */
static const char *check_frame_prefix(const struct check *ck, const struct node_head *h,
                                      uint32_t elem, uint32_t lo, uint32_t hi)
{
    if (!h->framed || h->check)
        return NULL;
    if (h->plen > 0 && (!lo || !hi))
        return "an unfenced node has a prefix";
    if (lo && hi && key_lcp(key_at(ck->a, lo), key_at(ck->a, elem)) < h->plen)
        return "a key does not share its node's prefix";
    return NULL;
}

static const char *check_node(struct check *ck, uint32_t id, unsigned depth, uint32_t lo,
                              uint32_t hi)
{
    const struct order_tree *t = ck->t;
    const char *err;
    if (depth == t->height) {
        const struct leaf *l = leaf_of(t, id);
        if (l->h.n == 0 && t->height > 0)
            return "an empty leaf";
        for (size_t i = 0; i < l->h.n; i++) {
            if ((err = in_range(ck, l->ref[i], lo, hi)) != NULL ||
                (err = check_frame_prefix(ck, &l->h, l->ref[i], lo, hi)) != NULL)
                return err;
            if (ck->last && key_cmp(key_at(ck->a, ck->last), key_at(ck->a, l->ref[i])) >= 0)
                return "keys out of order";
            ck->last = l->ref[i];
            ck->keys++;
        }
        return check_hints(&l->h, l->hint, l->ref, ck->a);
    }
    const struct inner *in = inner_of(t, id);
    if ((err = check_hints(&in->h, in->hint, in->sep, ck->a)) != NULL)
        return err;
    if ((in->owned >> in->h.n) != 0)
        return "owned bits past the separators";
    if (in->h.n == 0 && id != t->root)
        return "an inner node without a separator";
    for (size_t i = 0; i < in->h.n; i++) {
        if ((err = in_range(ck, in->sep[i], lo, hi)) != NULL ||
            (err = check_frame_prefix(ck, &in->h, in->sep[i], lo, hi)) != NULL)
            return err;
        if (i > 0 && key_cmp(key_at(ck->a, in->sep[i - 1]), key_at(ck->a, in->sep[i])) >= 0)
            return "separators out of order";
    }
    for (size_t i = 0; i <= in->h.n; i++) {
        uint32_t clo = i > 0 ? in->sep[i - 1] : lo, chi = i < in->h.n ? in->sep[i] : hi;
        if ((err = check_node(ck, in->child[i], depth + 1, clo, chi)) != NULL)
            return err;
    }
    return NULL;
}

const char *order_check(const struct order_tree *t, const struct arena *a, size_t count)
{
    if (!t->root)
        return count == 0 ? NULL : "an empty tree for a non-empty index";
    if (t->height > ORDER_MAX_HEIGHT)
        return "too tall";
    struct check ck = {.t = t, .a = a};
    const char *err = check_node(&ck, t->root, 0, 0, 0);
    if (err)
        return err;
    return ck.keys == count ? NULL : "the tree holds another number of keys";
}
