/*
 * acks.c - semi-synchronous replies: the replicas a primary knows, the
 * position each has acknowledged, and the writes waiting until
 * MIN_REPLICA_ACKS of them hold their records.
 *
 * A replica acknowledges by asking: each request for the log names the
 * position it holds durably (ship.c). The waiting writes form one queue
 * ordered by log position, so an acknowledgement releases a prefix of it:
 * every write at or before the position that N replicas have reached (the
 * N-th highest acknowledged position), as many writes as it covers, with
 * one pass. Writes share acknowledgements as they share fdatasyncs. A timer
 * thread answers the writes whose REPLICA_ACK_TIMEOUT_MS has passed; the
 * queue is in position order, which is also the order the writes became
 * durable, so the oldest deadline is at its head. Callbacks run after the
 * lock is released, and never on the event loops' threads unless the
 * answer is known at once.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* The position MIN_REPLICA_ACKS replicas hold, or false when fewer are
 * known. mu held. */
static bool quorum_pos(const struct repl *r, kv_log_pos *out)
{
    unsigned need = r->cfg->min_replica_acks;
    kv_log_pos best[REPL_MAX_REPLICAS];
    unsigned n = 0;
    for (size_t i = 0; i < REPL_MAX_REPLICAS; i++) {
        if (!r->peers[i].used)
            continue;
        /* Insertion into a descending list. */
        unsigned j = n++;
        while (j > 0 && repl__pos_cmp(best[j - 1], r->peers[i].acked) < 0) {
            best[j] = best[j - 1];
            j--;
        }
        best[j] = r->peers[i].acked;
    }
    if (need == 0 || n < need)
        return false;
    *out = best[need - 1];
    return true;
}

/* Takes off the queue every waiter that q covers; mu held. */
static struct repl_waiter *take_covered(struct repl *r, kv_log_pos q)
{
    struct repl_waiter *first = r->wait_head, *last = NULL;
    struct repl_waiter *w = first;
    while (w != NULL && repl__pos_cmp(w->pos, q) <= 0) {
        last = w;
        w = w->next;
    }
    if (last == NULL)
        return NULL;
    r->wait_head = w;
    if (w == NULL)
        r->wait_tail = NULL;
    last->next = NULL;
    return first;
}

static void answer(struct repl *r, struct repl_waiter *w, bool confirmed)
{
    while (w != NULL) {
        struct repl_waiter *next = w->next;
        atomic_fetch_sub(&r->acks_pending, 1);
        if (!confirmed)
            atomic_fetch_add(&r->acks_timed_out, 1);
        w->fn(w->ctx, confirmed);
        free(w);
        w = next;
    }
}

static struct repl_peer *peer_of(struct repl *r, const char *id, uint64_t now)
{
    struct repl_peer *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < REPL_MAX_REPLICAS; i++) {
        struct repl_peer *p = &r->peers[i];
        if (p->used && strcmp(p->id, id) == 0)
            return p;
        if (!p->used && free_slot == NULL)
            free_slot = p;
        if (p->used && (oldest == NULL || p->seen_ns < oldest->seen_ns))
            oldest = p;
    }
    struct repl_peer *p = free_slot ? free_slot : oldest;
    memset(p, 0, sizeof(*p));
    p->used = true;
    p->seen_ns = now;
    snprintf(p->id, sizeof(p->id), "%s", id);
    return p;
}

void repl__acked(struct repl *r, const char *id, kv_log_pos pos)
{
    uint64_t now = vs_now_ns();
    kv_log_pos end = {0, 0};
    kv_log_end(r->kv, &end);
    pthread_mutex_lock(&r->mu);
    struct repl_peer *p = peer_of(r, id, now);
    p->seen_ns = now;
    /* Acknowledgements may arrive out of order (one on its own, one with
     * the next request): a position only moves forward, until the replica
     * starts over (repl__forget). */
    if (repl__pos_cmp(pos, p->acked) > 0)
        p->acked = pos;
    if (repl__pos_cmp(p->acked, end) >= 0)
        p->behind_ns = 0;
    else if (p->behind_ns == 0)
        p->behind_ns = now;
    kv_log_pos q;
    struct repl_waiter *done = quorum_pos(r, &q) ? take_covered(r, q) : NULL;
    pthread_mutex_unlock(&r->mu);
    answer(r, done, true);
}

void repl__forget(struct repl *r, const char *id)
{
    pthread_mutex_lock(&r->mu);
    struct repl_peer *p = peer_of(r, id, vs_now_ns());
    p->acked = (kv_log_pos){0, 0};
    p->behind_ns = 0;
    pthread_mutex_unlock(&r->mu);
}

void repl_stop_waiting(struct repl *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop_waiting = true;
    struct repl_waiter *all = r->wait_head;
    r->wait_head = r->wait_tail = NULL;
    pthread_mutex_unlock(&r->mu);
    answer(r, all, false);
}

bool repl_acks_needed(const struct repl *r)
{
    return r != NULL && r->cfg->min_replica_acks > 0 && atomic_load(&r->writable);
}

void repl_await(struct repl *r, uint64_t seg, uint64_t end, repl_ack_fn fn, void *ctx)
{
    if (!repl_acks_needed(r)) {
        fn(ctx, true);
        return;
    }
    atomic_fetch_add(&r->acks_waited, 1);
    kv_log_pos pos = {seg, end};
    struct repl_waiter *w = malloc(sizeof(*w));
    pthread_mutex_lock(&r->mu);
    kv_log_pos q;
    bool covered = quorum_pos(r, &q) && repl__pos_cmp(pos, q) <= 0;
    if (covered || w == NULL || r->stop || r->stop_waiting) {
        pthread_mutex_unlock(&r->mu);
        free(w);
        if (!covered)
            atomic_fetch_add(&r->acks_timed_out, 1);
        fn(ctx, covered);
        return;
    }
    *w = (struct repl_waiter){.pos = pos,
                              .deadline_ns =
                                  vs_now_ns() + (uint64_t)r->cfg->replica_ack_timeout_ms * 1000000u,
                              .fn = fn,
                              .ctx = ctx};
    atomic_fetch_add(&r->acks_pending, 1);
    /* In position order: writes complete in log order, so this is nearly
     * always the tail. */
    if (r->wait_tail == NULL || repl__pos_cmp(r->wait_tail->pos, pos) <= 0) {
        if (r->wait_tail)
            r->wait_tail->next = w;
        else
            r->wait_head = w;
        r->wait_tail = w;
    } else {
        struct repl_waiter **at = &r->wait_head;
        while (repl__pos_cmp((*at)->pos, pos) <= 0)
            at = &(*at)->next;
        w->next = *at;
        *at = w;
    }
    /* Under mu: once it is let go, an acknowledgement may answer this write
     * and the server may stop and free r. */
    if (r->wait_head == w)
        pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Takes off the queue the waiters whose deadline passed; mu held. */
static struct repl_waiter *take_expired(struct repl *r, uint64_t now)
{
    struct repl_waiter *out = NULL, **tail = &out;
    struct repl_waiter **at = &r->wait_head, *prev = NULL;
    while (*at != NULL) {
        struct repl_waiter *w = *at;
        if (w->deadline_ns <= now) {
            *at = w->next;
            w->next = NULL;
            *tail = w;
            tail = &w->next;
        } else {
            prev = w;
            at = &w->next;
        }
    }
    r->wait_tail = prev;
    return out;
}

static void *timer_main(void *arg)
{
    struct repl *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        if (r->wait_head == NULL) {
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        uint64_t now = vs_now_ns();
        uint64_t deadline = r->wait_head->deadline_ns;
        if (deadline > now) {
            struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000u),
                                  .tv_nsec = (long)(deadline % 1000000000u)};
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
            continue;
        }
        struct repl_waiter *expired = take_expired(r, now);
        pthread_mutex_unlock(&r->mu);
        answer(r, expired, false);
        pthread_mutex_lock(&r->mu);
    }
    struct repl_waiter *rest = r->wait_head;
    r->wait_head = r->wait_tail = NULL;
    pthread_mutex_unlock(&r->mu);
    answer(r, rest, false);
    return NULL;
}

int repl__timer_start(struct repl *r)
{
    int err = pthread_create(&r->timer, NULL, timer_main, r);
    if (err != 0) {
        vs_log(VS_LOG_ERROR, "replication: cannot start the acknowledgement timer: %s",
               strerror(err));
        return KV_ENOMEM;
    }
    r->timer_started = true;
    return 0;
}

void repl__timer_stop(struct repl *r)
{
    if (!r->timer_started)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->timer, NULL);
    r->timer_started = false;
}
