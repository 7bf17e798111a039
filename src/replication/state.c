/*
 * state.c - a volume's replication state: its role, its history id and, on
 * a replica, its position in the primary's log.
 *
 * The state lives in the store, as the META record "repl" (text:
 * "role=replica history=<id> seg=<n> off=<n>", or "role=primary
 * history=<id>"), so that it is exactly as durable as the records it
 * describes: a replica writes it in the same unit as the records it stores
 * (kv_log_append), and it survives restarts, snapshots and compactions.
 *
 * A history id names one line of writes. A primary takes one the first time
 * a replica asks for its log (a store that never had a replica writes no
 * META record at all) and keeps it across restarts; a promotion gives the
 * new primary a fresh one. A replica's position means something only in
 * the history it names: a replica that asks with another history (an old
 * primary coming back after its replica was promoted) is told to resync in
 * full, so it never keeps a write the new primary lacks.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "storage.h"

void repl__new_history(char out[REPL_HISTORY_LEN + 1])
{
    uint8_t raw[REPL_HISTORY_LEN / 2];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (errno != EINTR) {
            /* No entropy source: the clock and the process make it unique
             * enough for one machine. */
            struct timespec t;
            clock_gettime(CLOCK_REALTIME, &t);
            uint64_t mix = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 20) ^ (uint64_t)getpid();
            for (size_t i = got; i < sizeof(raw); i++, mix = mix * 6364136223846793005u + 1)
                raw[i] = (uint8_t)(mix >> 56);
            got = sizeof(raw);
        }
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[REPL_HISTORY_LEN] = '\0';
}

size_t repl__state_text(char *buf, size_t len, const char *role, const char *history,
                        const kv_log_pos *pos)
{
    int n = pos ? snprintf(buf, len, "role=%s history=%s seg=%" PRIu64 " off=%" PRIu64, role,
                           history, pos->seg, pos->off)
                : snprintf(buf, len, "role=%s history=%s", role, history);
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

int repl__save_state(struct repl *r, const char *role, const kv_log_pos *pos)
{
    char text[160];
    size_t n = repl__state_text(text, sizeof(text), role, r->history, pos);
    int rc = kv_meta_put(r->kv, REPL_META_NAME, strlen(REPL_META_NAME), text, n);
    if (rc != 0)
        vs_log(VS_LOG_ERROR, "replication: cannot store the state (%s): %s", text, kv_strerror(rc));
    return rc;
}

/* The stored state; *role is "" when there is none. */
static void load_state(struct repl *r, char *role, size_t role_len)
{
    role[0] = '\0';
    void *val = NULL;
    size_t len = 0;
    if (kv_meta_get(r->kv, REPL_META_NAME, strlen(REPL_META_NAME), &val, &len) != 0)
        return;
    char rl[16] = "", hist[REPL_HISTORY_LEN + 1] = "";
    int n = sscanf(val, "role=%15s history=%32s", rl, hist);
    const char *seg = strstr(val, " seg="), *off = strstr(val, " off=");
    bool has_pos = seg != NULL && off != NULL;
    kv_log_pos pos = {0, 0};
    if (has_pos) {
        char *end = NULL;
        pos.seg = strtoull(seg + 5, &end, 10);
        has_pos = end != seg + 5;
        pos.off = strtoull(off + 5, &end, 10);
        has_pos = has_pos && end != off + 5;
    }
    kv_free(val);
    if (n < 2 || strlen(hist) != REPL_HISTORY_LEN) {
        vs_log(VS_LOG_WARN, "replication: the stored state is unreadable; it is ignored");
        return;
    }
    snprintf(role, role_len, "%s", rl);
    memcpy(r->history, hist, sizeof(hist));
    if (has_pos)
        r->pos = pos;
}

int repl_start(struct vs_app *app)
{
    struct repl *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return KV_ENOMEM;
    r->app = app;
    r->cfg = app->cfg;
    r->kv = blob_kv(app->store);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);

    char role[16];
    load_state(r, role, sizeof(role));
    int rc = 0;
    r->replica = r->cfg->replica_of[0] != '\0';
    if (r->replica && strcmp(role, "replica") != 0) {
        /* A primary before, or never replicated: its history is its own, so
         * its data cannot be trusted to be a prefix of the primary's. */
        r->history[0] = '\0';
        r->pos = (kv_log_pos){0, 0};
    } else if (!r->replica && strcmp(role, "replica") == 0) {
        repl__new_history(r->history);
        rc = repl__save_state(r, "primary", NULL);
        vs_log(VS_LOG_INFO,
               "replication: started without REPLICA_OF after being a replica: "
               "a primary now, history %s",
               r->history);
    }
    atomic_store(&r->writable, !r->replica);
    if (rc == 0)
        rc = repl__timer_start(r);
    app->repl = r;
    if (rc == 0 && r->replica) {
        /* Before the follower starts: it changes the position. */
        vs_log(VS_LOG_INFO,
               "replication: a replica of %s (history %s, position %" PRIu64 ":%" PRIu64 ")",
               r->cfg->replica_of, r->history[0] ? r->history : "none", r->pos.seg, r->pos.off);
        rc = repl__follower_start(r);
    }
    if (rc != 0) {
        repl_stop(app);
        return rc;
    }
    return 0;
}

void repl_stop(struct vs_app *app)
{
    struct repl *r = app->repl;
    if (r == NULL)
        return;
    repl__follower_stop(r);
    repl__timer_stop(r);
    repl__ship_free_spare(r);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
    app->repl = NULL;
}

bool repl_writable(const struct repl *r)
{
    return r == NULL || atomic_load(&r->writable);
}

const char *repl_primary(const struct repl *r)
{
    return r != NULL && !atomic_load(&r->writable) ? r->cfg->replica_of : NULL;
}

unsigned repl_min_acks(const struct repl *r)
{
    return r ? r->cfg->min_replica_acks : 0;
}

int repl_promote(struct repl *r)
{
    if (atomic_load(&r->writable))
        return 0;
    repl__follower_stop(r);
    pthread_mutex_lock(&r->mu);
    repl__new_history(r->history);
    r->replica = false;
    r->resyncing = false;
    pthread_mutex_unlock(&r->mu);
    int rc = repl__save_state(r, "primary", NULL);
    if (rc != 0)
        return rc;
    atomic_store(&r->writable, true);
    vs_log(VS_LOG_INFO, "replication: promoted to primary (was a replica of %s), history %s",
           r->cfg->replica_of, r->history);
    return 0;
}

/* Bytes of the log between a and b (a before b), from the segments' sizes. */
static uint64_t log_distance(kv_store *kv, kv_log_pos a, kv_log_pos b)
{
    if (repl__pos_cmp(a, b) >= 0)
        return 0;
    if (a.seg == b.seg)
        return b.off - a.off;
    kv_segment_stats segs[256];
    size_t n = 0;
    if (kv_get_segment_stats(kv, segs, 256, &n) != 0)
        return 0;
    uint64_t bytes = b.off;
    for (size_t i = 0; i < n && i < 256; i++) {
        if (segs[i].id == a.seg)
            bytes += segs[i].disk_bytes > a.off ? segs[i].disk_bytes - a.off : 0;
        else if (segs[i].id > a.seg && segs[i].id < b.seg)
            bytes += segs[i].disk_bytes;
    }
    return bytes;
}

uint64_t repl__distance(struct repl *r, kv_log_pos a, kv_log_pos b)
{
    return log_distance(r->kv, a, b);
}

void repl_figures(struct repl *r, struct repl_figures *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t now = vs_now_ns();
    kv_log_pos end = {0, 0};
    kv_log_end(r->kv, &end);
    pthread_mutex_lock(&r->mu);
    out->replica = !atomic_load(&r->writable);
    out->primary = out->replica ? r->cfg->replica_of : NULL;
    memcpy(out->history, r->history, sizeof(out->history));
    out->min_acks = r->cfg->min_replica_acks;
    if (out->replica) {
        out->position = r->pos;
        out->lag_bytes = r->lag_bytes;
        out->lag_ms = r->behind_ns ? (now - r->behind_ns) / 1000000u : 0;
        out->connected = r->connected;
        out->resyncing = r->resyncing;
    } else {
        out->position = end;
    }
    kv_log_pos acked[REPL_FIGURES_REPLICAS] = {{0, 0}};
    for (size_t i = 0; i < REPL_MAX_REPLICAS && out->nreplicas < REPL_FIGURES_REPLICAS; i++) {
        const struct repl_peer *p = &r->peers[i];
        if (!p->used)
            continue;
        struct repl_replica_figures *f = &out->replicas[out->nreplicas];
        memcpy(f->id, p->id, sizeof(f->id));
        f->acked = p->acked;
        f->lag_ms = p->behind_ns ? (now - p->behind_ns) / 1000000u : 0;
        f->since_secs = (now - p->seen_ns) / 1000000000u;
        acked[out->nreplicas++] = p->acked;
    }
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < out->nreplicas; i++)
        out->replicas[i].lag_bytes = log_distance(r->kv, acked[i], end);
    out->full_resyncs = repl__full_resyncs();
    out->refused_batches = atomic_load(&r->refused_batches);
    out->bytes_received = atomic_load(&r->bytes_received);
    out->acks_waited = atomic_load(&r->acks_waited);
    out->acks_timed_out = atomic_load(&r->acks_timed_out);
    out->acks_pending = atomic_load(&r->acks_pending);
}
