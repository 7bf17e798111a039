/*
 * commit.c - the commit pipeline: kv_write and kv_write_async queue batches
 * (units, batch.h), and one committer at a time writes them in rounds.
 *
 * A round takes every unit queued at the moment it starts (up to
 * ROUND_MAX_BYTES, and never across a segment boundary), decides their
 * conditions in log order, writes their records with one pwritev, makes them
 * durable with one fdatasync (sync mode always), applies them to the index
 * in log order under one hold of the write lock, and completes them in that
 * order. So N concurrent writers pay for about one fdatasync, not N, the
 * index only ever shows durable records, and a reader sees all of a batch
 * or none of it.
 *
 * Who commits (the token, commit.state under queue_mu):
 *  - a kv_write caller that finds nobody committing and nothing queued runs
 *    the round of its own batch on its own thread (INLINE): a lone writer
 *    pays no thread hop;
 *  - everything else is the commit thread's (THREAD): batches of
 *    kv_write_async, whose callbacks run there, and kv_write callers that
 *    find a round in progress, which sleep on their own semaphore until it
 *    posts their result. An inline committer that finds batches queued when
 *    its round ends hands them to the thread.
 *
 * Gathering. Every batch queued when a round starts is in it. But in sync
 * mode always the writers a round releases come back only after its
 * fdatasync; if the next round started at once, it would carry only those
 * that queued during the sync, the released ones would wait for the round
 * after, and the writers would settle into two halves taking turns, each
 * fdatasync carrying half of them. So before a round the commit thread
 * gathers (gather): until as many batches are queued as the most that were
 * in flight at a recent round's end (the writers that round released come
 * back), or until arrivals pause (quiet_ns: all that were coming are here),
 * or gather_cap_ns at most. Waiting for the released writers costs their
 * way back, but a writer left behind waits a whole round anyway. One round
 * for all takes a sync plus the way back (F + W) for all of them; two halves
 * taking turns take the longer of the sync and the way back of a half for
 * each half. While the way back is latency (an idle front end: a half comes
 * back no sooner than all), one round for all is never slower. When it is
 * the front end's CPU (a half comes back in W / 2) and W exceeds F, two
 * halves would carry more writes a second, at half the writes per
 * fdatasync. The whole round is kept (every writer waiting is in the next
 * sync, and the disk sees the fewest), so its rate is then at most
 * W / (F + W) of the rate without syncs (on a busy machine W is about the
 * CPU time per request, server's and client's, times the writers over the
 * cores; bench/write_bench.py reports that CPU time). A writer
 * that comes back wakes the thread only when it completes the count. No
 * pool of threads caps the batches in flight: a front end submits with
 * kv_write_async and is called back, so nothing bounds them but memory.
 *
 * Conditions (kv_op.cond, and whether a DEL finds its key) are decided
 * under the read lock in the round, against the index as the earlier rounds
 * left it and an overlay of the keys this round's earlier ops wrote. A unit
 * whose condition fails is left out whole (its overlay changes undone). Only
 * a committer changes the index's keys (compaction only moves records), so
 * nothing can change an outcome between the decision and the write.
 */
#include "commit.h"

#include <errno.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "bloom.h"
#include "compress.h"
#include "debug.h"
#include "index.h"
#include "io.h"
#include "keydir.h"
#include "logging.h"
#include "meta.h"
#include "record.h"
#include "rwlock.h"
#include "segment.h"
#include "store.h"
#include "read.h"
#include "thread.h"
#include "write.h"

#define ROUND_MAX_BYTES (8u << 20)

static const uint64_t writes_edges[] = {1,  2,  3,  4,   6,   8,   12,  16,  24,   32,
                                        48, 64, 96, 128, 192, 256, 384, 512, 1024, UINT64_MAX};
static const uint64_t wait_edges[] = {5,    10,   20,    50,    100,    200,     500,       1000,
                                      2000, 5000, 10000, 20000, 100000, 1000000, UINT64_MAX};
_Static_assert(sizeof(writes_edges) / sizeof(writes_edges[0]) <= KV_HIST_BUCKETS, "buckets");
_Static_assert(sizeof(wait_edges) / sizeof(wait_edges[0]) <= KV_HIST_BUCKETS, "buckets");

/* ---- figures */

static void hist_add(struct kv__hist *h, uint64_t v)
{
    size_t i = 0;
    while (i + 1 < h->n && v > h->le[i])
        i++;
    atomic_fetch_add_explicit(&h->count[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->total, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

static void hist_read(struct kv__hist *h, kv_histogram *out)
{
    memset(out, 0, sizeof(*out));
    out->n = h->n;
    for (size_t i = 0; i < h->n; i++) {
        out->le[i] = h->le[i];
        out->count[i] = atomic_load_explicit(&h->count[i], memory_order_relaxed);
        out->total += out->count[i];
    }
    out->sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
}

int kv_get_write_stats(kv_store *s, kv_write_stats *out)
{
    if (!s || !out)
        return KV_EINVAL;
    kv_write_stats st;
    memset(&st, 0, sizeof(st));
    st.rounds = atomic_load_explicit(&s->commit.rounds, memory_order_relaxed);
    st.batches = atomic_load_explicit(&s->commit.batches, memory_order_relaxed);
    hist_read(&s->commit.writes_per_sync, &st.writes_per_sync);
    hist_read(&s->commit.batch_wait_us, &st.batch_wait_us);
    *out = st;
    return 0;
}

/* ---- gathering (see the top comment) */

/* Batches queued. */
static size_t queued(const kv_store *s)
{
    return atomic_load_explicit(&s->queue_len, memory_order_relaxed);
}

static uint64_t clamp_ns(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Rounds in a window of the estimate of writers in flight; the last round
 * of each gathers without the estimate (see gather). */
#define WINDOW_ROUNDS 16

/* How long without an arrival tells the commit thread that the writers it
 * waits for are all back: twice the longest pause between two arrivals of
 * late (one that did not mean it: a writer came after it) or twice an
 * fdatasync, within bounds. */
static uint64_t quiet_ns(const struct kv__commit *c)
{
    uint64_t q = c->arrival_gap_ns > c->sync_ns ? c->arrival_gap_ns : c->sync_ns;
    return clamp_ns(2 * q, 50000u, 5000000u);
}

/* The longest a gathering thread waits after a round, whatever arrives:
 * long enough for many writers to come back through a busy front end, short
 * enough to bound the latency that a stream of new writers adds. */
static uint64_t gather_cap_ns(const struct kv__commit *c)
{
    return clamp_ns(16 * c->sync_ns, 2000000u, 20000000u);
}

/*
 * In the commit thread, queue_mu held: waits until the round may start.
 *
 * It starts when as many batches are queued as the most that were in flight
 * at the end of a recent round (c->writers: their writers, released by that
 * round, come back), or when no batch has arrived for quiet_ns (all that
 * were coming are here), or gather_cap_ns after the last round. The
 * estimate sees only the writers inside the engine: when the front end is
 * busy, many are on their way back (answered, reading the next request) at
 * a round's end, and rounds could settle at half of the writers. So the
 * last round of every window of WINDOW_ROUNDS waits for the quiet alone: it
 * gathers everyone that comes back, and the estimate grows to them.
 */
static void gather(kv_store *s)
{
    struct kv__commit *c = &s->commit;
    if (s->opts.sync_mode != KV_SYNC_ALWAYS)
        return;
    bool probe = c->window_rounds + 1 == WINDOW_ROUNDS;
    size_t target = probe ? SIZE_MAX : c->writers;
    uint64_t cap_at = c->round_end_ns + gather_cap_ns(c);
    c->gather_since = c->round_end_ns;
    while (queued(s) < target && !s->closing) {
        uint64_t last = c->last_arrival_ns > c->round_end_ns ? c->last_arrival_ns : c->round_end_ns;
        uint64_t until = last + quiet_ns(c) < cap_at ? last + quiet_ns(c) : cap_at;
        if (kv__now_ns() >= until)
            break;
        c->gather_target = target;
        kv__cond_wait_until(&c->cv, &s->queue_mu, until);
    }
    c->gather_target = 0;
}

/* After a round of count batches, with queued more behind it: the estimate
 * of the writers in flight. */
static void note_writers(struct kv__commit *c, size_t in_flight)
{
    if (in_flight > c->window_max)
        c->window_max = in_flight;
    if (++c->window_rounds == WINDOW_ROUNDS) {
        c->prev_window_max = c->window_max;
        c->window_max = 0;
        c->window_rounds = 0;
    }
    c->writers = c->prev_window_max > c->window_max ? c->prev_window_max : c->window_max;
    if (c->writers < in_flight)
        c->writers = in_flight;
}

/* ---- conditions: the round's overlay over the index */

static int overlay_prepare(struct overlay *ov, size_t ops)
{
    size_t cap = 16;
    while (cap < 2 * ops)
        cap *= 2;
    if (cap > ov->cap) {
        struct ov_slot *slots = calloc(cap, sizeof(*slots));
        if (!slots)
            return KV_ENOMEM;
        free(ov->slots);
        ov->slots = slots;
        ov->cap = cap;
    }
    if (ops > ov->undo_cap) {
        struct ov_undo *undo = malloc(ops * sizeof(*undo));
        if (!undo)
            return KV_ENOMEM;
        free(ov->undo);
        ov->undo = undo;
        ov->undo_cap = ops;
    }
    ov->nundo = 0;
    return 0;
}

static void overlay_clear(struct overlay *ov)
{
    if (ov->slots)
        memset(ov->slots, 0, ov->cap * sizeof(*ov->slots));
    ov->nundo = 0;
}

/* The slot of op's key: the one that holds it, or the empty one where it
 * would go. */
static size_t overlay_find(const struct overlay *ov, uint64_t hash, const kv_op *op)
{
    size_t i = (size_t)hash & (ov->cap - 1);
    for (;;) {
        const struct ov_slot *sl = &ov->slots[i];
        if (!sl->used || (sl->hash == hash && sl->key_len == op->key_len &&
                          memcmp(sl->key, op->key, op->key_len) == 0))
            return i;
        i = (i + 1) & (ov->cap - 1);
    }
}

static void overlay_set(struct overlay *ov, uint64_t hash, const kv_op *op, bool present,
                        uint64_t expire_at)
{
    size_t i = overlay_find(ov, hash, op);
    ov->undo[ov->nundo++] = (struct ov_undo){.slot = i, .prev = ov->slots[i]};
    ov->slots[i] = (struct ov_slot){.hash = hash,
                                    .key = op->key,
                                    .key_len = op->key_len,
                                    .put = present ? op : NULL,
                                    .expire_at = present ? expire_at : 0,
                                    .used = true,
                                    .present = present};
}

static void overlay_undo(struct overlay *ov, size_t mark)
{
    while (ov->nundo > mark) {
        const struct ov_undo *u = &ov->undo[--ov->nundo];
        ov->slots[u->slot] = u->prev;
    }
}

/* The CRC-32 of the value of the record e names, from the record's checksum
 * (no pass over the value): for a SETX, from its attribute block (a
 * compressed value's raw_crc). The rwlock is held. */
static int indexed_value_crc(kv_store *s, const struct index_entry *entry, const kv_op *op,
                             uint32_t *crc)
{
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    const struct kv_loc loc = index_entry_loc(entry);
    struct segment *seg = kv__segtab_find(s, loc.seg);
    if (NEVER(!seg))
        return KV_EIO;
    uint64_t len = record_size(op->key_len, loc.val_len);
    size_t attrs = loc.val_len < RECORD_ATTRS_MAX ? loc.val_len : RECORD_ATTRS_MAX;
    size_t head_len = RECORD_HEADER_LEN + op->key_len + attrs;
    uint8_t hdr[RECORD_HEADER_LEN + KV_MAX_KEY_LEN + RECORD_ATTRS_MAX];
    uint8_t trailer[RECORD_TRAILER_LEN];
    const uint8_t *rec = kv__segment_view(s, seg, loc.off, len);
    int rc = 0;
    if (rec) {
        memcpy(hdr, rec, head_len);
        memcpy(trailer, rec + len - RECORD_TRAILER_LEN, RECORD_TRAILER_LEN);
    } else {
        int fd = -1;
        kv__segment_pin(seg);
        rc = kv__segment_get_fd(s, seg, &fd);
        if (rc == 0) {
            rc = kv__io_read_full(s->io, fd, hdr, head_len, (off_t)loc.off);
            if (rc == 0)
                rc = kv__io_read_full(s->io, fd, trailer, RECORD_TRAILER_LEN,
                                      (off_t)(loc.off + len - RECORD_TRAILER_LEN));
            kv__segment_put_fd(s, seg);
        }
        kv__segment_unpin(seg);
        if (rc != 0)
            return rc;
    }
    struct record_header h;
    struct record_attrs a = {0};
    size_t alen = 0;
    const uint8_t *payload = hdr + RECORD_HEADER_LEN + op->key_len;
    bool ok = record_decode_header(hdr, &h) && (h.op == KV_OP_SET || h.op == KV_OP_SETX) &&
              h.key_len == op->key_len && h.val_len == loc.val_len &&
              memcmp(hdr + RECORD_HEADER_LEN, op->key, op->key_len) == 0;
    if (ok && h.op == KV_OP_SETX)
        ok = record_attrs_decode(payload, attrs, &a, &alen);
    if (!ok) {
        atomic_fetch_add(&s->n_checksum_errors, 1);
        kv__log(s, KV_LOG_ERROR, "segment %u offset %u: record does not match the index", loc.seg,
                loc.off);
        return KV_ECORRUPT;
    }
    if (a.flags & RECORD_ATTR_ZSTD) {
        *crc = a.raw_crc;
        return 0;
    }
    uint32_t head = record_crc_update(record_crc_head(hdr, op->key, op->key_len), payload, alen);
    *crc = record_value_crc(get_u32(trailer), head, loc.val_len - alen);
    return 0;
}

/* What a round's decision knows of a key just before an op. */
struct key_state {
    bool present;       /* in the store, its expiry (if any) after now */
    uint32_t crc;       /* the CRC-32 of its value, when asked for */
    uint64_t expire_at; /* its expiry, 0: none */
};

/* Whether op's key is in the store just before op, at time now (a key whose
 * expiry has passed is absent), its expiry, and (want_crc) the CRC of its
 * value then. The rwlock is held. */
static int key_state(kv_store *s, const struct overlay *ov, const struct op_rec *r, const kv_op *op,
                     bool want_crc, uint64_t now, struct key_state *ks)
{
    *ks = (struct key_state){0};
    size_t i = overlay_find(ov, r->hash, op);
    if (ov->slots[i].used) {
        const struct ov_slot *sl = &ov->slots[i];
        ks->present = sl->present && !(sl->expire_at != 0 && sl->expire_at <= now);
        ks->expire_at = ks->present ? sl->expire_at : 0;
        if (ks->present && want_crc)
            ks->crc = sl->put->value_crc;
        return 0;
    }
    const struct index_entry *e = NULL;
    if (bloom_may_contain(&s->bloom, r->hash))
        e = index_lookup(&s->index, r->hash, op->key, op->key_len);
    if (!e || index_entry_expired(&s->index, e, now))
        return 0;
    ks->present = true;
    ks->expire_at = index_entry_expiry(&s->index, e);
    return want_crc ? indexed_value_crc(s, e, op, &ks->crc) : 0;
}

static bool cond_holds(const kv_op *op, const struct key_state *ks)
{
    bool present = ks->present;
    uint32_t crc = ks->crc;
    switch (op->cond) {
    case KV_IF_ABSENT:
        return !present;
    case KV_IF_PRESENT:
        return present;
    case KV_IF_CRC:
        return present && crc == op->cond_crc;
    case KV_IF_EXPIRY:
        return present && ks->expire_at == op->expire_at_ms;
    case KV_IF_ANY:
        break;
    }
    return true;
}

/* A PUT's value_crc, for the ops after it that compare with it: taken now
 * when encoding did not (kv_put asks for none). */
static void ensure_value_crc(struct op_rec *r, kv_op *op)
{
    if (op->type == KV_WRITE_PUT && !r->crc_known) {
        op->value_crc = record_crc_update(0, op->val, op->val_len);
        r->crc_known = true;
    }
}

/* A PUT that keeps its key's expiry gets the one the key has now: its
 * record is encoded again when that is not the one it was encoded with. */
static int keep_expiry(kv_store *s, struct kv__unit *u, size_t i, const struct key_state *ks)
{
    if (!(u->ops[i].flags & KV_KEEP_EXPIRY) || u->recs[i].expire_at == ks->expire_at)
        return 0;
    return kv__unit_reencode(s, u, i, ks->expire_at);
}

/* Decides u's ops in order against the overlay, which they update, at time
 * now. A unit whose condition fails, or whose state cannot be read, or that
 * would write when the round cannot (write_rc, the round's preparation
 * failed), is left out: its changes to the overlay are undone and u->rc
 * says why. Counts the PUTs of a unit that goes ahead in *inserts. */
static void decide_unit(kv_store *s, struct overlay *ov, struct kv__unit *u, int write_rc,
                        uint64_t now, size_t *inserts)
{
    size_t mark = ov->nundo;
    bool failed = false;
    int err = 0;
    size_t puts = 0;
    for (size_t i = 0; i < u->n && err == 0; i++) {
        kv_op *op = &u->ops[i];
        struct op_rec *r = &u->recs[i];
        struct key_state ks = {0};
        ensure_value_crc(r, op);
        if (op->type != KV__WRITE_META)
            err = key_state(s, ov, r, op, op->cond == KV_IF_CRC, now, &ks);
        if (err == 0 && op->type == KV_WRITE_PUT)
            err = keep_expiry(s, u, i, &ks);
        if (err != 0)
            break;
        if (!cond_holds(op, &ks)) {
            op->rc = KV_ECONDITION;
            failed = true;
        }
        if (op->type == KV__WRITE_META) {
            r->written = true; /* no key: nothing to decide */
        } else if (op->type == KV_WRITE_PUT) {
            r->written = true;
            puts++;
            overlay_set(ov, r->hash, op, true, r->expire_at);
        } else if (op->type == KV_WRITE_DEL && ks.present) {
            r->written = true;
            overlay_set(ov, r->hash, op, false, 0);
        } else if (op->type == KV_WRITE_DEL && op->rc == 0) {
            op->rc = KV_ENOTFOUND;
        }
    }
    bool writes = false;
    for (size_t i = 0; i < u->n; i++)
        writes |= u->recs[i].written;
    if (!failed && err == 0 && writes && write_rc != 0)
        err = write_rc;
    if (!failed && err == 0) {
        *inserts += puts;
        return;
    }
    overlay_undo(ov, mark);
    u->rc = err != 0 ? err : KV_ECONDITION;
    for (size_t i = 0; i < u->n; i++) {
        u->recs[i].written = false;
        if (err != 0)
            u->ops[i].rc = err;
        else if (u->ops[i].rc != KV_ECONDITION)
            u->ops[i].rc = 0;
    }
}

/* Whether any op of the round needs a decision: a condition, or a DEL
 * (which writes only when its key is there). */
static bool round_has_decisions(const struct kv__unit *first, size_t *ops)
{
    bool any = false;
    *ops = 0;
    for (const struct kv__unit *u = first; u; u = u->next) {
        *ops += u->n;
        for (size_t i = 0; i < u->n; i++)
            any |= u->ops[i].cond != KV_IF_ANY || u->ops[i].type == KV_WRITE_DEL ||
                   u->ops[i].type == KV_WRITE_CHECK || (u->ops[i].flags & KV_KEEP_EXPIRY);
    }
    return any;
}

/* Decides which records of the round are written; when the round cannot
 * write (write_rc), only the units that write nothing may go ahead.
 * append_mu held. */
static int decide_round(kv_store *s, struct kv__unit *first, int write_rc, size_t *inserts)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    size_t ops = 0;
    *inserts = 0;
    if (!round_has_decisions(first, &ops)) {
        if (write_rc != 0)
            return write_rc;
        for (struct kv__unit *u = first; u; u = u->next) {
            for (size_t i = 0; i < u->n; i++)
                u->recs[i].written = true;
            *inserts += u->n;
        }
        return 0;
    }
    struct overlay *ov = &s->commit.ov;
    int rc = overlay_prepare(ov, ops);
    if (rc != 0)
        return rc;
    uint64_t now = kv__now_ms(s);
    kv__rdlock(&s->rwlock);
    for (struct kv__unit *u = first; u; u = u->next)
        decide_unit(s, ov, u, write_rc, now, inserts);
    kv__unlock(&s->rwlock);
    overlay_clear(ov);
    return 0;
}

/* ---- the round */

/* PUTs of the round's units that go ahead with an expiry. */
static size_t expiring_puts(const struct kv__unit *first)
{
    size_t n = 0;
    for (const struct kv__unit *u = first; u; u = u->next) {
        for (size_t i = 0; u->rc == 0 && i < u->n; i++)
            n += u->ops[i].type == KV_WRITE_PUT && u->recs[i].expire_at != 0;
    }
    return n;
}

/* Ops of a round whose index changes are loaded ahead (prefetch_index). */
#define PREFETCH_OPS 16
#define NEW_KEYS_MAX 8

/*
 * When the PUTs of late were mostly of new keys (a fill: c->new_keys, kept
 * by apply_round), starts loading what applying the round's first PUTs will
 * touch in the index and the bloom filter, so that those cache misses
 * overlap the write instead of following it, and has the ordered index keep
 * the path of the first (the first applied: nothing changes the tree
 * before it). An update touches only its slot and entry, which a lookup
 * here would only move, not hide. The rwlock is held.
 */
static void prefetch_index(kv_store *s, const struct kv__unit *first)
{
    KV_ASSERT(kv__rwlock_held(&s->rwlock));
    if (s->commit.new_keys < 0)
        return;
    size_t n = 0;
    for (const struct kv__unit *u = first; u && n < PREFETCH_OPS; u = u->next) {
        for (size_t i = 0; u->rc == 0 && i < u->n && n < PREFETCH_OPS; i++) {
            const struct op_rec *r = &u->recs[i];
            const kv_op *op = &u->ops[i];
            if (!r->written || op->type != KV_WRITE_PUT)
                continue;
            bloom_prefetch(&s->bloom, r->hash);
            index_prefetch_upsert(&s->index, r->hash, op->key, op->key_len, n == 0);
            n++;
        }
    }
}

/* Counts a PUT applied to the index into c->new_keys. */
static void note_put(struct kv__commit *c, bool was_present)
{
    if (!was_present && c->new_keys < NEW_KEYS_MAX)
        c->new_keys++;
    else if (was_present && c->new_keys > -NEW_KEYS_MAX)
        c->new_keys--;
}

/* Grows the index before the records become durable, so that applying them
 * cannot fail for its slots (nor for the expiries it keeps); readers keep
 * their lookups meanwhile. */
static int reserve_index(kv_store *s, const struct kv__unit *first, size_t inserts)
{
    size_t expiring = expiring_puts(first);
    kv__rdlock(&s->rwlock);
    prefetch_index(s, first);
    bool grow = index_needs_room(&s->index, inserts) ||
                s->index.expiries.count + expiring > s->index.expiries.cap * 3 / 4;
    kv__unlock(&s->rwlock);
    if (!grow)
        return 0;
    kv__wrlock(&s->rwlock);
    int rc = index_reserve(&s->index, inserts);
    if (rc == 0)
        rc = expiry_reserve(&s->index.expiries, expiring);
    kv__unlock(&s->rwlock);
    return rc;
}

/* Frames the units that go ahead, places their records at the end of the
 * active segment and writes them (write.c: one pwritev, one fdatasync).
 * *wrote tells whether anything was written. append_mu held. */
static int write_round(kv_store *s, struct kv__unit *first, bool *wrote)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct kv__commit *c = &s->commit;
    struct segment *a = s->active;
    uint64_t start = atomic_load(&a->size);
    uint64_t off = start;
    size_t need = 0;
    for (struct kv__unit *u = first; u; u = u->next) {
        if (u->rc == 0 && kv__unit_frame(u) > 0)
            need += kv__unit_iov_max(u);
    }
    *wrote = need > 0;
    if (need > c->iov_cap) {
        struct iovec *iov = realloc(c->iov, need * sizeof(*iov));
        if (!iov)
            return KV_ENOMEM;
        c->iov = iov;
        c->iov_cap = need;
    }
    size_t n = 0;
    for (struct kv__unit *u = first; u; u = u->next) {
        if (u->rc == 0 && u->nwritten > 0) {
            kv__unit_iov(u, c->iov, &n, a->id, off);
            off += u->nwritten > 1 ? u->payload + RECORD_OVERHEAD : u->payload;
        }
        u->info = (kv_commit_info){.seg = a->id, .end = off};
    }
    return *wrote ? kv__append(s, c->iov, n, start, off) : 0;
}

/* Applies the written records to the index, in log order, under one hold of
 * the write lock: readers see all of the round or none of it. */
static int apply_round(kv_store *s, struct kv__unit *first)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    int rc = 0;
    struct kv_attrs attrs;
    kv__wrlock(&s->rwlock);
    for (struct kv__unit *u = first; u && rc == 0; u = u->next) {
        if (u->rc != 0)
            continue;
        for (size_t i = 0; i < u->n && rc == 0; i++) {
            const struct op_rec *r = &u->recs[i];
            const kv_op *op = &u->ops[i];
            if (!r->written)
                continue;
            if (r->sv.op == KV_OP_SET || r->sv.op == KV_OP_SETX) {
                const struct kv_attrs *a = r->sv.op == KV_OP_SETX
                                               ? kv__payload_attrs(r->sv.data, r->sv.len, &attrs)
                                               : NULL;
                bool was_present = false;
                rc = kv__apply_set(s, r->hash, op->key, op->key_len, &r->loc, a, &was_present);
                note_put(&s->commit, was_present);
            } else if (r->sv.op == KV_OP_META)
                rc = kv__meta_apply(s, op->key, op->key_len, op->val, op->val_len, r->loc.seg,
                                    r->loc.off);
            else
                kv__apply_delete(s, r->hash, op->key, op->key_len);
        }
    }
    if (rc == 0 && bloom_is_full(&s->bloom))
        rc = kv__rebuild_bloom(s);
    kv__unlock(&s->rwlock);
    if (rc != 0)
        kv__set_read_only(s, "out of memory while indexing durable records");
    return rc;
}

/* Gives every unit of a failed round the round's code. */
static void fail_round(kv_store *s, struct kv__unit *first, int rc)
{
    struct segment *a = s->active;
    for (struct kv__unit *u = first; u; u = u->next) {
        u->rc = rc;
        u->info = (kv_commit_info){.seg = a ? a->id : 0, .end = a ? atomic_load(&a->size) : 0};
        for (size_t i = 0; i < u->n; i++)
            u->ops[i].rc = rc;
    }
}

static void count_writes(kv_store *s, const struct kv__unit *first)
{
    uint64_t puts = 0, dels = 0;
    for (const struct kv__unit *u = first; u; u = u->next) {
        for (size_t i = 0; u->rc == 0 && i < u->n; i++) {
            if (!u->recs[i].written)
                continue;
            if (u->ops[i].type == KV_WRITE_PUT)
                puts++;
            else if (u->ops[i].type == KV_WRITE_DEL)
                dels++;
        }
    }
    atomic_fetch_add_explicit(&s->n_puts, puts, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->n_deletes, dels, memory_order_relaxed);
}

/* Hands each unit its result, in log order. A waiting kv_write caller may
 * return (and its unit vanish) as soon as it is posted, so next is read
 * first; it lets go of its unit's encoding itself. */
static void complete_round(kv_store *s, struct kv__unit *first)
{
    struct kv__unit *u = first;
    while (u) {
        struct kv__unit *next = u->next;
        if (u->done) {
            kv__unit_release(s, u);
            u->done(u->ops, u->n, u->rc, &u->info, u->ctx);
            free(u);
        } else {
            sem_post(&u->wake);
        }
        u = next;
    }
}

/* The round of the count units from first (taken off the queue), with rc
 * the outcome of its preparation (read-only, rotation): decided, written,
 * applied, each unit's outcome set. Called holding append_mu, which it
 * releases; the caller then completes the units. */
static void run_round(kv_store *s, struct kv__unit *first, size_t count, int rc)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    struct kv__commit *c = &s->commit;
    /* A caller committing its own batch waited for nothing; and only sync
     * mode always gathers writers, so only it keeps the gathering figures. */
    bool gathers = s->opts.sync_mode == KV_SYNC_ALWAYS;
    uint64_t start = first->queued ? kv__now_ns() : 0;
    for (struct kv__unit *u = first; u; u = u->next) {
        hist_add(&c->batch_wait_us, u->queued ? (start - u->submit_ns) / 1000u : 0);
        u->rc = 0;
    }
    size_t inserts = 0;
    bool wrote = false;
    /* Decided even when the round cannot write (rc): a batch that writes
     * nothing, as a DEL of an absent key, still has its outcome. */
    rc = decide_round(s, first, rc, &inserts);
    if (rc == 0 && inserts > 0)
        rc = reserve_index(s, first, inserts);
    if (rc == 0)
        rc = write_round(s, first, &wrote);
    if (rc == 0 && wrote)
        rc = apply_round(s, first);
    if (rc != 0)
        fail_round(s, first, rc);
    else
        count_writes(s, first);
    if (wrote) {
        atomic_fetch_add_explicit(&c->rounds, 1, memory_order_relaxed);
        if (rc == 0 && s->opts.sync_mode == KV_SYNC_ALWAYS)
            hist_add(&c->writes_per_sync, count);
    }
    atomic_fetch_add_explicit(&c->batches, count, memory_order_relaxed);
    c->sync_ns = s->last_sync_ns;
    kv__mutex_unlock(&s->append_mu);
    if (gathers) {
        /* Before any writer is released: the batches in flight now are the
         * round's and those queued behind it. */
        kv__mutex_lock(&s->queue_mu);
        size_t in_flight = count + queued(s);
        c->arrival_gap_ns -= c->arrival_gap_ns / 8; /* forgets old pauses */
        kv__mutex_unlock(&s->queue_mu);
        note_writers(c, in_flight);
    }
}

/* Notes when the last round ended (its writers released): the gathering
 * waits from then. */
static void note_round_end(kv_store *s)
{
    if (s->opts.sync_mode != KV_SYNC_ALWAYS)
        return;
    kv__mutex_lock(&s->queue_mu);
    s->commit.round_end_ns = kv__now_ns();
    kv__mutex_unlock(&s->queue_mu);
}

/* Rotates first when even the first unit (first_bytes) does not fit the
 * active segment (a unit longer than a segment gets one of its own), and
 * gives the room left in it. append_mu held. */
static int make_room(kv_store *s, uint64_t first_bytes, uint64_t *room)
{
    KV_ASSERT(kv__mutex_held(&s->append_mu));
    uint64_t limit = s->opts.segment_size;
    uint64_t size = atomic_load(&s->active->size);
    if (size > 0 && size + first_bytes > limit) {
        int rc = kv__rotate(s, s->active->id + 1);
        if (rc != 0)
            return rc;
        size = 0;
    }
    *room = size < limit ? limit - size : 0;
    return 0;
}

/* Takes the next round off the queue: the head, and the units behind it
 * that fit room and ROUND_MAX_BYTES. queue_mu held. */
static size_t take_units(kv_store *s, uint64_t room)
{
    KV_ASSERT(kv__mutex_held(&s->queue_mu));
    struct kv__commit *c = &s->commit;
    struct kv__unit *last = c->head;
    uint64_t bytes = last->max_bytes;
    size_t n = 1;
    while (last->next) {
        uint64_t more = last->next->max_bytes;
        if (bytes + more > ROUND_MAX_BYTES || bytes + more > room)
            break;
        last = last->next;
        bytes += more;
        n++;
    }
    c->head = last->next;
    last->next = NULL;
    if (!c->head)
        c->tail = NULL;
    atomic_store_explicit(&s->queue_len, queued(s) - n, memory_order_relaxed);
    return n;
}

/* A round of the commit thread, on what is queued. */
static void thread_round(kv_store *s)
{
    struct kv__commit *c = &s->commit;
    kv__mutex_lock(&s->append_mu);
    /* Only the token holder takes units off the queue: the head stays. */
    kv__mutex_lock(&s->queue_mu);
    struct kv__unit *first = c->head;
    kv__mutex_unlock(&s->queue_mu);
    uint64_t room = 0;
    int rc = atomic_load(&s->read_only) ? KV_EREADONLY : make_room(s, first->max_bytes, &room);
    kv__mutex_lock(&s->queue_mu);
    size_t count = take_units(s, room);
    kv__mutex_unlock(&s->queue_mu);
    run_round(s, first, count, rc);
    complete_round(s, first);
    note_round_end(s);
}

/* Whether the commit thread keeps the token with nothing queued, to gather
 * the writers its last round released. queue_mu held. */
static bool keep_gathering(const kv_store *s)
{
    return s->opts.sync_mode == KV_SYNC_ALWAYS && s->commit.writers > 1 && !s->closing;
}

static void *commit_main(void *arg)
{
    kv_store *s = arg;
    struct kv__commit *c = &s->commit;
    kv__mutex_lock(&s->queue_mu);
    for (;;) {
        while (c->state != COMMIT_THREAD && !(s->closing && c->state == COMMIT_IDLE))
            kv__cond_wait(&c->cv, &s->queue_mu);
        if (c->state != COMMIT_THREAD)
            break; /* closing, and every accepted batch is complete */
        gather(s);
        if (queued(s) == 0) {
            c->state = COMMIT_IDLE;
            continue;
        }
        kv__mutex_unlock(&s->queue_mu);
        thread_round(s);
        kv__mutex_lock(&s->queue_mu);
        if (queued(s) == 0 && !keep_gathering(s))
            c->state = COMMIT_IDLE;
    }
    kv__mutex_unlock(&s->queue_mu);
    return NULL;
}

/* ---- submission */

/* Queues u, or gives the caller the token for u alone when nobody commits
 * and inline is allowed: 1 then, 0 when queued, KV_EBUSY when closing. */
static int submit(kv_store *s, struct kv__unit *u, bool inline_ok)
{
    struct kv__commit *c = &s->commit;
    u->next = NULL;
    kv__mutex_lock(&s->queue_mu);
    if (s->closing) {
        kv__mutex_unlock(&s->queue_mu);
        return KV_EBUSY;
    }
    KV_ASSERT(c->state != COMMIT_IDLE || queued(s) == 0);
    if (c->state == COMMIT_IDLE && inline_ok) {
        c->state = COMMIT_INLINE;
        kv__mutex_unlock(&s->queue_mu);
        return 1;
    }
    u->queued = true;
    u->submit_ns = kv__now_ns();
    if (!u->done)
        sem_init(&u->wake, 0, 0);
    if (c->tail)
        c->tail->next = u;
    else
        c->head = u;
    c->tail = u;
    atomic_store_explicit(&s->queue_len, queued(s) + 1, memory_order_relaxed);
    /* The longest gap between two arrivals while the thread gathers: a
     * pause that long did not mean that no more were coming (quiet_ns). */
    if (c->gather_target != 0 && c->last_arrival_ns > c->gather_since &&
        u->submit_ns - c->last_arrival_ns > c->arrival_gap_ns)
        c->arrival_gap_ns = u->submit_ns - c->last_arrival_ns;
    c->last_arrival_ns = u->submit_ns;
    if (c->state == COMMIT_IDLE) {
        c->state = COMMIT_THREAD;
        pthread_cond_signal(&c->cv);
    } else if (c->gather_target != 0 && queued(s) >= c->gather_target) {
        c->gather_target = 0;
        pthread_cond_signal(&c->cv);
    }
    kv__mutex_unlock(&s->queue_mu);
    return 0;
}

/* The round of a kv_write caller's own batch, on its thread; then the token
 * goes to the commit thread if batches queued meanwhile. */
static void commit_inline(kv_store *s, struct kv__unit *u)
{
    struct kv__commit *c = &s->commit;
    kv__mutex_lock(&s->append_mu);
    uint64_t room = 0;
    int rc = atomic_load(&s->read_only) ? KV_EREADONLY : make_room(s, u->max_bytes, &room);
    run_round(s, u, 1, rc); /* its outcome is in u: nothing to complete */
    note_round_end(s);
    kv__mutex_lock(&s->queue_mu);
    c->state = queued(s) > 0 ? COMMIT_THREAD : COMMIT_IDLE;
    /* The thread sleeps until it has work, or kv_close waits for it to
     * see that none is left: a wake-up otherwise would be a wasted one per
     * write. */
    if (c->state == COMMIT_THREAD || s->closing)
        pthread_cond_signal(&c->cv);
    kv__mutex_unlock(&s->queue_mu);
}

int kv__write_ops(kv_store *s, kv_op *ops, size_t n, bool want_crc)
{
    KV_ASSERT(!kv__rwlock_held(&s->rwlock) && !kv__mutex_held(&s->append_mu));
    struct kv__unit u;
    struct op_rec rec1;
    uint8_t buf1[UNIT_SMALL_RECORD];
    void *heap = NULL;
    int rc;
    memset(&u, 0, sizeof(u));
    if (n == 1) {
        rc = kv__unit_encode(s, &u, ops, n, &rec1, buf1, want_crc);
    } else {
        heap = malloc(kv__unit_storage(ops, n));
        struct op_rec *recs = heap;
        rc = heap ? kv__unit_encode(s, &u, ops, n, recs, (uint8_t *)(recs + n), want_crc)
                  : KV_ENOMEM;
    }
    if (rc == 0)
        rc = submit(s, &u, true);
    if (rc == 1) {
        commit_inline(s, &u);
        rc = u.rc;
    } else if (rc == 0) {
        /* Posted once, when the commit thread has completed the batch. */
        while (sem_wait(&u.wake) != 0)
            ;
        sem_destroy(&u.wake);
        rc = u.rc;
    } else {
        for (size_t i = 0; i < n; i++)
            ops[i].rc = rc;
    }
    if (u.recs)
        kv__unit_release(s, &u);
    free(heap);
    return rc;
}

int kv_write(kv_store *s, kv_op *ops, size_t n)
{
    if (!s)
        return KV_EINVAL;
    int rc = kv__unit_check(ops, n);
    return rc != 0 ? rc : kv__write_ops(s, ops, n, true);
}

int kv_write_async(kv_store *s, kv_op *ops, size_t n, kv_done_fn done, void *ctx)
{
    if (!s || !done)
        return KV_EINVAL;
    int rc = kv__unit_check(ops, n);
    if (rc != 0)
        return rc;
    if (atomic_load(&s->read_only))
        return KV_EREADONLY;
    /* The unit, its op_recs and the records' bytes in one allocation. */
    struct kv__unit *u = malloc(sizeof(*u) + kv__unit_storage(ops, n));
    if (!u)
        return KV_ENOMEM;
    memset(u, 0, sizeof(*u));
    struct op_rec *recs = (struct op_rec *)(void *)(u + 1);
    rc = kv__unit_encode(s, u, ops, n, recs, (uint8_t *)(recs + n), true);
    if (rc != 0) {
        free(u);
        return rc;
    }
    u->done = done;
    u->ctx = ctx;
    rc = submit(s, u, false);
    if (rc != 0) {
        kv__unit_release(s, u);
        free(u);
    }
    return rc;
}

int kv__write_set(kv_store *s, const void *key, size_t key_len, const void *val, size_t val_len,
                  uint64_t expire_at_ms, kv_cond cond, uint32_t *value_crc)
{
    kv_op op = {.type = KV_WRITE_PUT,
                .key = key,
                .key_len = key_len,
                .val = val,
                .val_len = val_len,
                .expire_at_ms = expire_at_ms,
                .cond = cond};
    int rc = kv__write_ops(s, &op, 1, value_crc != NULL);
    if (value_crc)
        *value_crc = op.value_crc;
    return rc != 0 ? rc : op.rc;
}

int kv__write_meta(kv_store *s, const void *name, size_t name_len, const void *val, size_t val_len)
{
    kv_op op = {
        .type = KV__WRITE_META, .key = name, .key_len = name_len, .val = val, .val_len = val_len};
    return kv__write_ops(s, &op, 1, false);
}

/* ---- life */

int kv__commit_init(kv_store *s)
{
    struct kv__commit *c = &s->commit;
    c->writes_per_sync.le = writes_edges;
    c->writes_per_sync.n = sizeof(writes_edges) / sizeof(writes_edges[0]);
    c->batch_wait_us.le = wait_edges;
    c->batch_wait_us.n = sizeof(wait_edges) / sizeof(wait_edges[0]);
    c->state = COMMIT_IDLE;
    return kv__cond_init(&c->cv);
}

int kv__commit_start(kv_store *s)
{
    if (pthread_create(&s->commit.thread, NULL, commit_main, s) != 0)
        return KV_ENOMEM;
    s->commit.thread_started = true;
    return 0;
}

void kv__commit_stop(kv_store *s)
{
    struct kv__commit *c = &s->commit;
    kv__mutex_lock(&s->queue_mu);
    s->closing = true;
    pthread_cond_signal(&c->cv);
    kv__mutex_unlock(&s->queue_mu);
    if (c->thread_started)
        pthread_join(c->thread, NULL);
    c->thread_started = false;
}

void kv__commit_free(kv_store *s)
{
    struct kv__commit *c = &s->commit;
    free(c->iov);
    free(c->ov.slots);
    free(c->ov.undo);
    pthread_cond_destroy(&c->cv);
}
