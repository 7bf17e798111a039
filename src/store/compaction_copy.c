/*
 * compaction_copy.c - step 2 of a compaction (compaction.c has the whole
 * story): the live records of the inputs, found from the index, copied into
 * the outputs in large reads; each record verified, then copied as it is or
 * re-encoded (compress.c: recompressed with the current dictionary, or
 * dropped for its expiry); and the newest META of each name carried
 * forward.
 */
#include "compaction_copy.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "compress.h"
#include "debug.h"
#include "dict.h"
#include "index.h"
#include "io.h"
#include "keydir.h"
#include "logging.h"
#include "meta.h"
#include "rwlock.h"
#include "segment.h"
#include "thread.h"

/* Dead bytes between two live records that one read goes through rather than
 * paying a second read: copying 32 KiB from the page cache costs about what
 * a system call does. */
#define READ_GAP (32u << 10)

/* ---- step 2a: the live records of the inputs, from the index */

/* Walk visitor (read lock held): notes an entry that names an input. */
static int collect_entry(const struct index_entry *e, void *arg)
{
    struct compactor *c = arg;
    KV_ASSERT(kv__rwlock_held(&c->s->rwlock));
    if (cancelled(c))
        return KV_EBUSY;
    if (!names_input(c, e->loc.seg))
        return 0;
    int rc = grow((void **)&c->live, &c->live_cap, c->nlive + 1, sizeof(*c->live));
    if (rc != 0)
        return rc;
    struct kv_loc loc = index_entry_loc(e);
    c->live[c->nlive++] = (struct live){
        .seg = loc.seg, .off = loc.off, .val_len = loc.val_len, .key_len = e->key_len};
    return 0;
}

/* Walks the whole index a hash range per read-lock hold (see the top
 * comment for why nothing live is missed). */
static int collect(struct compactor *c)
{
    return kv__walk_index_shared(c->s, collect_entry, NULL, c);
}

static uint64_t sort_key(const struct live *r)
{
    return (uint64_t)r->seg << 32 | r->off;
}

/* Sorts the live records by (segment, offset): a least-significant-digit
 * radix sort, 16 bits a pass, that skips the digits all records share (the
 * high bits of segment ids, usually). */
static int sort_live(struct compactor *c)
{
    enum { DIGIT_BITS = 16, DIGITS = 64 / DIGIT_BITS, BUCKETS = 1 << DIGIT_BITS };
    if (c->nlive < 2)
        return 0;
    uint32_t *counts = calloc((size_t)DIGITS * BUCKETS, sizeof(*counts));
    struct live *tmp = malloc(c->nlive * sizeof(*tmp));
    if (!counts || !tmp) {
        free(counts);
        free(tmp);
        return KV_ENOMEM;
    }
    for (size_t i = 0; i < c->nlive; i++) {
        uint64_t k = sort_key(&c->live[i]);
        for (int d = 0; d < DIGITS; d++)
            counts[d * BUCKETS + ((k >> (d * DIGIT_BITS)) & (BUCKETS - 1))]++;
    }
    struct live *from = c->live, *to = tmp;
    for (int d = 0; d < DIGITS; d++) {
        uint32_t *cnt = counts + (size_t)d * BUCKETS;
        uint64_t k0 = sort_key(&from[0]);
        if (cnt[(k0 >> (d * DIGIT_BITS)) & (BUCKETS - 1)] == c->nlive)
            continue; /* every record has this digit */
        uint32_t sum = 0;
        for (size_t b = 0; b < BUCKETS; b++) {
            uint32_t n = cnt[b];
            cnt[b] = sum;
            sum += n;
        }
        for (size_t i = 0; i < c->nlive; i++)
            to[cnt[(sort_key(&from[i]) >> (d * DIGIT_BITS)) & (BUCKETS - 1)]++] = from[i];
        struct live *t = from;
        from = to;
        to = t;
    }
    if (from != c->live)
        memcpy(c->live, from, c->nlive * sizeof(*c->live));
    free(counts);
    free(tmp);
    return 0;
}

/* ---- step 2b: copying */

static int flush_output(struct compactor *c)
{
    if (c->wlen == 0)
        return 0;
    int rc =
        kv__io_write_full(c->s->io, c->out_fd, c->wbuf, c->wlen, (off_t)(c->out_size - c->wlen));
    c->wlen = 0;
    return rc;
}

static int finish_output(struct compactor *c)
{
    if (c->out_fd < 0)
        return 0;
    c->out_sizes[c->nouts - 1] = c->out_size;
    int rc = flush_output(c);
    if (rc == 0)
        rc = kv__fsync_counted(c->s, c->out_fd, true);
    c->s->io->close(c->s->io->ctx, c->out_fd);
    c->out_fd = -1;
    return rc;
}

static int start_output(struct compactor *c)
{
    if (c->next_id > c->last_id) {
        kv__log(c->s, KV_LOG_ERROR, "compaction: outputs need more than the %u ids reserved",
                c->last_id - c->in_ids[c->nin - 1]);
        return KV_EIO;
    }
    size_t cap = c->outs_cap;
    int rc = grow((void **)&c->outs, &cap, c->nouts + 1, sizeof(*c->outs));
    if (rc == 0)
        rc = grow((void **)&c->out_sizes, &c->outs_cap, c->nouts + 1, sizeof(*c->out_sizes));
    char path[4096];
    if (rc == 0)
        rc = kv__segment_path(c->s->dir, c->next_id, true, path, sizeof(path));
    if (rc != 0)
        return rc;
    c->out_fd = c->s->io->open(c->s->io->ctx, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (c->out_fd < 0)
        return kv__errno_to_rc(errno);
    c->out_sizes[c->nouts] = 0;
    c->outs[c->nouts++] = c->next_id++;
    c->out_size = 0;
    return 0;
}

/* Appends one record of len bytes to the outputs, starting a new output
 * when the current one is full, and gives where it landed. */
static int emit(struct compactor *c, const uint8_t *rec, uint64_t len, uint32_t *seg, uint32_t *off)
{
    int rc = 0;
    if (c->out_fd >= 0 && c->out_size > 0 && c->out_size + len > c->s->opts.segment_size)
        rc = finish_output(c);
    if (rc == 0 && c->out_fd < 0)
        rc = start_output(c);
    if (rc != 0)
        return rc;
    *seg = c->outs[c->nouts - 1];
    *off = (uint32_t)c->out_size;
    if (c->wlen + len > WRITE_BUF)
        rc = flush_output(c);
    if (rc == 0 && len > WRITE_BUF)
        rc = kv__io_write_full(c->s->io, c->out_fd, rec, (size_t)len, (off_t)c->out_size);
    else if (rc == 0) {
        memcpy(c->wbuf + c->wlen, rec, (size_t)len);
        c->wlen += (size_t)len;
    }
    c->out_size += len;
    return rc;
}

/* Whether the bytes at rec are the SET or SETX record the index describes,
 * checksum included; *op receives its op. */
static bool record_checks_out(const uint8_t *rec, const struct live *r, uint8_t *op)
{
    struct record_header h;
    if (!record_decode_header(rec, &h) || (h.op != KV_OP_SET && h.op != KV_OP_SETX) ||
        h.key_len != r->key_len || h.val_len != r->val_len)
        return false;
    uint64_t len = live_size(r);
    uint32_t crc = record_crc_update(0, rec + 2, (size_t)len - 2 - RECORD_TRAILER_LEN);
    *op = h.op;
    return crc == get_u32(rec + len - RECORD_TRAILER_LEN);
}

/* Notes that a record in the outputs names dictionary id. */
static int note_dict(struct compactor *c, uint32_t id)
{
    for (size_t i = 0; i < c->nnamed; i++)
        if (c->named[i] == id)
            return 0;
    int rc = grow((void **)&c->named, &c->named_cap, c->nnamed + 1, sizeof(*c->named));
    if (rc == 0)
        c->named[c->nnamed++] = id;
    return rc;
}

/* Builds a record of op, key and payload in c->xbuf. */
static int build_record(struct compactor *c, uint8_t op, const uint8_t *key, uint16_t key_len,
                        const void *payload, size_t len)
{
    int rc = grow((void **)&c->xbuf, &c->xbuf_cap, (size_t)record_size(key_len, len), 1);
    if (rc == 0)
        record_build(c->xbuf, op, key, key_len, payload, (uint32_t)len);
    return rc;
}

/* Writes what stands for an expired record in the outputs: nothing, since
 * every older record of its key is an input and goes with it; or, when
 * older segments survive outside the compaction (inputs of an earlier one
 * that could not be removed), a tombstone, so that replaying them can never
 * bring an older value back (DESIGN.md section 4). */
static int drop_expired(struct compactor *c, const uint8_t *key, struct live *r)
{
    r->expired = true;
    c->expired++;
    if (!c->tombstones)
        return 0;
    uint32_t seg, off;
    int rc = build_record(c, KV_OP_DELETE, key, r->key_len, NULL, 0);
    return rc != 0 ? rc : emit(c, c->xbuf, record_size(r->key_len, 0), &seg, &off);
}

/* Copies one live record that checks out (as it is, or re-encoded:
 * compress.c), or drops it for its expiry, and keeps its key for the
 * relocation. One that does not check out is left behind: its key still
 * names an input after relocation, and retire_inputs drops it. */
static int copy_record(struct compactor *c, const uint8_t *rec, struct live *r)
{
    uint8_t op;
    if (!record_checks_out(rec, r, &op))
        return 0;
    const uint8_t *key = rec + RECORD_HEADER_LEN;
    struct kv_recoded rv;
    int rc = kv__value_recode(c->s, c->dict, c->now_ms, op, key + r->key_len, r->val_len, &rv);
    if (rc == KV_ECORRUPT)
        return 0; /* damaged: left behind like a failed checksum */
    if (rc == 0)
        rc = grow((void **)&c->keys, &c->keys_cap, c->keys_len + r->key_len, 1);
    if (rc == 0 && rv.verdict == KV_RECODE_EXPIRED)
        rc = drop_expired(c, key, r);
    else if (rc == 0 && rv.verdict == KV_RECODE_REWRITE)
        rc = build_record(c, rv.op, key, r->key_len, rv.payload, rv.len);
    if (rc == 0 && rv.dict_id)
        rc = note_dict(c, rv.dict_id);
    if (rc == 0 && !r->expired) {
        bool rewrite = rv.verdict == KV_RECODE_REWRITE;
        r->new_val_len = rewrite ? (uint32_t)rv.len : r->val_len;
        rc = emit(c, rewrite ? c->xbuf : rec, record_size(r->key_len, r->new_val_len), &r->new_seg,
                  &r->new_off);
        r->copied = rc == 0;
    }
    free(rv.payload);
    if (rc != 0)
        return rc;
    memcpy(c->keys + c->keys_len, key, r->key_len);
    c->keys_len += r->key_len;
    return 0;
}

/* Points c->in_fd at input seg and returns that input's size. */
static int open_input(struct compactor *c, uint32_t seg, uint64_t *size)
{
    size_t lo = 0, hi = c->nin;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->in_ids[mid] < seg)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (NEVER(lo == c->nin || c->in_ids[lo] != seg))
        return KV_EIO; /* names_input holds, and the inputs are every such id */
    *size = atomic_load(&c->inputs[lo]->size);
    if (c->in_fd >= 0 && c->in_seg == seg)
        return 0;
    if (c->in_fd >= 0)
        c->s->io->close(c->s->io->ctx, c->in_fd);
    c->in_fd = -1;
    char path[4096];
    int rc = kv__segment_path(c->s->dir, seg, false, path, sizeof(path));
    if (rc != 0)
        return rc;
    c->in_fd = c->s->io->open(c->s->io->ctx, path, O_RDONLY | O_CLOEXEC, 0);
    if (c->in_fd < 0)
        return kv__errno_to_rc(errno);
    c->in_seg = seg;
    return 0;
}

/* The records [i, *end) of one read: same input, at most READ_GAP dead
 * bytes between two of them, READ_BUF in all (or one larger record). */
static size_t plan_read(const struct compactor *c, size_t i)
{
    const struct live *first = &c->live[i];
    uint64_t start = first->off, stop = start + live_size(first);
    size_t j = i + 1;
    for (; j < c->nlive && c->live[j].seg == first->seg; j++) {
        const struct live *r = &c->live[j];
        uint64_t r_end = (uint64_t)r->off + live_size(r);
        if (r->off < stop || r->off - stop > READ_GAP || r_end - start > READ_BUF)
            break;
        stop = r_end;
    }
    return j;
}

/* Reads the live records of the inputs, coalesced into large reads, and
 * copies those that check out. */
static int copy_live(struct compactor *c)
{
    int rc = 0;
    for (size_t i = 0, j; rc == 0 && i < c->nlive; i = j) {
        if (cancelled(c))
            return KV_EBUSY;
        j = plan_read(c, i);
        uint64_t start = c->live[i].off;
        uint64_t stop = (uint64_t)c->live[j - 1].off + live_size(&c->live[j - 1]);
        uint64_t in_size = 0;
        rc = open_input(c, c->live[i].seg, &in_size);
        if (rc == 0 && stop > in_size) {
            /* The index names bytes past the end of the file: a damaged
             * record, like one whose checksum fails. Copy the others. */
            while (j > i + 1 && (uint64_t)c->live[j - 1].off + live_size(&c->live[j - 1]) > in_size)
                j--;
            stop = (uint64_t)c->live[j - 1].off + live_size(&c->live[j - 1]);
            if (stop > in_size)
                continue;
        }
        if (rc == 0)
            rc = grow((void **)&c->rbuf, &c->rbuf_cap, (size_t)(stop - start), 1);
        if (rc == 0)
            rc =
                kv__io_read_full(c->s->io, c->in_fd, c->rbuf, (size_t)(stop - start), (off_t)start);
        c->bytes_in += stop - start;
        for (size_t k = i; rc == 0 && k < j; k++)
            rc = copy_record(c, c->rbuf + (c->live[k].off - start), &c->live[k]);
    }
    return rc;
}

/* Copies the newest META record of each name that lies in an input into
 * the outputs (written meanwhile, a newer one lies after them anyway). */
static int carry_metas(struct compactor *c)
{
    kv_store *s = c->s;
    kv__rdlock(&s->rwlock);
    size_t n = s->metas.n;
    c->metas = calloc(n ? n : 1, sizeof(*c->metas));
    int rc = c->metas ? 0 : KV_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const struct kv_meta *e = &s->metas.v[i];
        if (!names_input(c, e->seg))
            continue;
        struct carried_meta *m = &c->metas[c->nmetas];
        *m = (struct carried_meta){.name = malloc(e->name_len),
                                   .val = malloc(e->val_len ? e->val_len : 1),
                                   .name_len = e->name_len,
                                   .val_len = e->val_len,
                                   .seg = e->seg,
                                   .off = e->off};
        c->nmetas++;
        if (!m->name || !m->val) {
            rc = KV_ENOMEM;
            break;
        }
        memcpy(m->name, e->name, e->name_len);
        if (e->val_len)
            memcpy(m->val, e->val, e->val_len);
    }
    kv__unlock(&s->rwlock);
    for (size_t i = 0; rc == 0 && i < c->nmetas; i++) {
        struct carried_meta *m = &c->metas[i];
        rc = build_record(c, KV_OP_META, m->name, (uint16_t)m->name_len, m->val, m->val_len);
        if (rc == 0)
            rc = emit(c, c->xbuf, record_size(m->name_len, m->val_len), &m->new_seg, &m->new_off);
    }
    return rc;
}

int kv__compaction_collect(struct compactor *c)
{
    int rc = collect(c);
    return rc == 0 ? sort_live(c) : rc;
}

int kv__compaction_copy(struct compactor *c)
{
    int rc = copy_live(c);
    if (rc == 0)
        rc = carry_metas(c);
    if (rc == 0)
        rc = finish_output(c);
    return rc;
}
