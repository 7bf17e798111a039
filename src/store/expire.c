/*
 * expire.c - expiry beyond a PUT's own: kv_set_expiry, which changes a
 * key's expiry and keeps its value, and the sweep of expired keys.
 *
 * kv_set_expiry writes the key's record again with the new expiry: it
 * reads the value, its CRC-32 and its expiry, then submits a batch of a
 * CHECK that the key still has that expiry and a PUT of the same value with
 * the new one, conditioned on the value's CRC. Both are decided when the
 * batch is sequenced, so a write of the key made between the read and the
 * write (of its value or of its expiry) fails the batch, which then reads
 * again; a change is never lost and a flag's condition (NX, XX, GT, LT) is
 * judged against the state the write replaces. Every failure means another
 * write of the key succeeded, so the loop ends.
 *
 * The sweep. A key whose expiry has passed is absent at once for every read
 * (the index keeps expiries: index.h), but its entry holds memory until the
 * sweep removes it, which also makes its record dead for compaction. The
 * sweep writes no tombstone: the key's record stays in the log until a
 * compaction, whose inputs hold every older record of the key too, drops
 * them together; a replay meanwhile finds the record expired and leaves
 * the key out. The one case that argument misses is a segment an earlier
 * compaction could not remove (stale_segs): it is no input of later ones,
 * and would survive a tombstone-less drop with an older value in it. So
 * the sweep holds compact_mu (no compaction runs meanwhile) and does
 * nothing while such segments remain; compaction then drops expired
 * records itself, with a tombstone (compaction_copy.c).
 */
#include "expire.h"

#include <stdlib.h>

#include "batch.h"
#include "debug.h"
#include "index.h"
#include "keydir.h"
#include "read.h"
#include "rwlock.h"
#include "store.h"
#include "thread.h"
#include "write.h"

/* Entries removed per hold of the write lock. */
#define SWEEP_BATCH 256

#define EXPIRY_FLAGS (KV_EXPIRY_NX | KV_EXPIRY_XX | KV_EXPIRY_GT | KV_EXPIRY_LT)

static bool flags_valid(unsigned flags)
{
    if (flags & ~EXPIRY_FLAGS)
        return false;
    if ((flags & KV_EXPIRY_NX) && (flags & (KV_EXPIRY_XX | KV_EXPIRY_GT | KV_EXPIRY_LT)))
        return false;
    return !((flags & KV_EXPIRY_GT) && (flags & KV_EXPIRY_LT));
}

/* Whether the flags let expiry at replace expiry cur (0: none, which GT and
 * LT take as later than any time). */
static bool flags_allow(unsigned flags, uint64_t cur, uint64_t at)
{
    if ((flags & KV_EXPIRY_NX) && cur != 0)
        return false;
    if ((flags & KV_EXPIRY_XX) && cur == 0)
        return false;
    if ((flags & KV_EXPIRY_GT) && (cur == 0 || at == 0 || at <= cur))
        return false;
    if ((flags & KV_EXPIRY_LT) && cur != 0 && (at == 0 || at >= cur))
        return false;
    return !(at == 0 && cur == 0); /* nothing to remove */
}

/* One try: read the key, decide, write conditioned on what was read. */
static int set_expiry_once(kv_store *s, const void *key, size_t key_len, uint64_t at,
                           unsigned flags)
{
    kv_stat_info st;
    int rc = kv_stat(s, key, key_len, &st);
    if (rc != 0)
        return rc;
    if (!flags_allow(flags, st.expire_at_ms, at))
        return KV_ECONDITION;
    void *val = NULL;
    size_t val_len = 0;
    uint32_t crc = 0;
    bool removes = at != 0 && at <= kv__now_ms(s);
    if (!removes && (rc = kv_get_crc(s, key, key_len, &val, &val_len, &crc)) != 0)
        return rc;
    kv_op ops[2] = {
        {.type = KV_WRITE_CHECK,
         .key = key,
         .key_len = key_len,
         .cond = KV_IF_EXPIRY,
         .expire_at_ms = st.expire_at_ms},
        {.type = removes ? KV_WRITE_DEL : KV_WRITE_PUT,
         .key = key,
         .key_len = key_len,
         .val = val,
         .val_len = val_len,
         .expire_at_ms = removes ? 0 : at,
         .cond = KV_IF_CRC,
         .cond_crc = removes ? st.value_crc : crc},
    };
    rc = kv__write_ops(s, ops, 2, false);
    free(val);
    return rc == KV_ECONDITION ? 1 : rc;
}

int kv_set_expiry(kv_store *s, const void *key, size_t key_len, uint64_t expire_at_ms,
                  unsigned flags)
{
    if (!s || !key || key_len < 1 || key_len > KV_MAX_KEY_LEN || !flags_valid(flags))
        return KV_EINVAL;
    int rc;
    while ((rc = set_expiry_once(s, key, key_len, expire_at_ms, flags)) == 1)
        ; /* the key changed between the read and the write: again */
    return rc;
}

/* ---- the sweep */

/* Removes up to SWEEP_BATCH expired keys from *cursor on; *done is set once
 * the walk of the side table is over. */
static size_t sweep_some(kv_store *s, uint64_t now, size_t *cursor, bool *done)
{
    const struct index_entry *batch[SWEEP_BATCH];
    kv__wrlock(&s->rwlock);
    size_t n = expiry_collect(&s->index.expiries, now, cursor, batch, SWEEP_BATCH);
    for (size_t i = 0; i < n; i++) {
        const struct index_entry *e = batch[i];
        kv__apply_delete(s, index_hash(e->key, e->key_len), e->key, e->key_len);
    }
    kv__unlock(&s->rwlock);
    *done = *cursor == 0;
    return n;
}

int kv_sweep_expired(kv_store *s, uint64_t *removed)
{
    if (!s)
        return KV_EINVAL;
    uint64_t total = 0;
    kv__mutex_lock(&s->compact_mu);
    if (s->nstale == 0 && !s->stale_unknown) {
        /* A removal may shift an entry behind the cursor: passes go on
         * until one removes nothing. */
        uint64_t now = kv__now_ms(s);
        uint64_t pass = 1;
        while (pass > 0 && !atomic_load(&s->compact_cancel)) {
            size_t cursor = 0;
            bool done = false;
            pass = 0;
            while (!done && !atomic_load(&s->compact_cancel))
                pass += sweep_some(s, now, &cursor, &done);
            total += pass;
        }
    }
    kv__mutex_unlock(&s->compact_mu);
    atomic_fetch_add(&s->n_expired_swept, total);
    if (removed)
        *removed = total;
    return 0;
}

static void sweeper_task(void *arg)
{
    kv_sweep_expired(arg, NULL);
}

int kv__start_sweeper(kv_store *s)
{
    return kv__bgthread_start(&s->sweeper, s->opts.expiry_sweep_interval_ms, sweeper_task, s);
}

void kv__stop_sweeper(kv_store *s)
{
    kv__bgthread_stop(&s->sweeper);
}
