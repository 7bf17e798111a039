/*
 * follower.c - a replica's thread: it fetches its primary's log over HTTP
 * with libcurl and stores it.
 *
 * Each request (GET /replication/log on REPLICA_OF) names the history and
 * the position this replica holds durably, which acknowledges them; the
 * primary answers with the records after it, at once when there are some
 * and after up to WAIT_MS of waiting when there are none (a long poll on a
 * kept-alive connection: a replica that is caught up hears of a write as
 * soon as it is durable on the primary). The records are stored with
 * kv_log_append_flags, which checks every record's CRC first and stores
 * the batch and the new position (META "repl") in one durable unit; a batch
 * that fails its checks (damaged on the way) is refused whole and fetched
 * again. The next request then acknowledges it.
 *
 * A replica without a history (new, or a primary before) whose store is
 * empty catches up in place from the start of the primary's log. Any other
 * mismatch (status 409: another history, or a position the primary no
 * longer holds) leads to a full resync (resync.c), during which this
 * volume keeps serving what it has.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "log.h"

#define WAIT_MS      500u         /* a long poll's wait on the primary */
#define MAX_BYTES    (32u << 20)  /* most bytes asked for at once */
#define RECV_BUFFER  (512L << 10) /* bytes libcurl reads from the socket at once */
#define PAUSE_MIN_MS 50u
#define PAUSE_MAX_MS 1000u

void repl__pause(struct repl *r, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t until = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + ms * 1000000ull;
    ts.tv_sec = (time_t)(until / 1000000000u);
    ts.tv_nsec = (long)(until % 1000000000u);
    pthread_mutex_lock(&r->mu);
    if (!atomic_load(&r->follower_stop))
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    pthread_mutex_unlock(&r->mu);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct repl_fetch *f = arg;
    size_t add = size * n;
    if (f->len + add > f->cap) {
        size_t cap = f->cap ? f->cap : 64 * 1024;
        while (cap < f->len + add)
            cap *= 2;
        uint8_t *grown = realloc(f->body, cap);
        if (grown == NULL)
            return 0; /* aborts the transfer */
        f->body = grown;
        f->cap = cap;
    }
    memcpy(f->body + f->len, data, add);
    f->len += add;
    return add;
}

static bool header_pos(const char *line, size_t len, const char *name, kv_log_pos *out)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0)
        return false;
    char buf[64];
    size_t vl = len - nl < sizeof(buf) - 1 ? len - nl : sizeof(buf) - 1;
    memcpy(buf, line + nl, vl);
    buf[vl] = '\0';
    char *colon = NULL, *end = NULL;
    uint64_t seg = strtoull(buf, &colon, 10);
    if (colon == buf || *colon != ':')
        return false;
    uint64_t off = strtoull(colon + 1, &end, 10);
    if (end == colon + 1)
        return false;
    *out = (kv_log_pos){seg, off};
    return true;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    struct repl_fetch *f = arg;
    size_t len = size * n;
    static const char hist[] = "X-Repl-History:", lag[] = "X-Repl-Lag-Bytes:";
    if (len > sizeof(hist) && strncasecmp(line, hist, sizeof(hist) - 1) == 0) {
        sscanf(line + sizeof(hist) - 1, " %32s", f->history);
    } else if (len > sizeof(lag) && strncasecmp(line, lag, sizeof(lag) - 1) == 0) {
        f->lag_bytes = strtoull(line + sizeof(lag) - 1, NULL, 10);
    } else if (!header_pos(line, len, "X-Repl-Start:", &f->start) &&
               !header_pos(line, len, "X-Repl-Next:", &f->next)) {
        header_pos(line, len, "X-Repl-End:", &f->end);
    }
    return len;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    struct repl *r = arg;
    return atomic_load(&r->follower_stop) ? 1 : 0;
}

void repl__fetch(struct repl *r, struct repl_fetch *f, const char *history, kv_log_pos pos,
                 kv_log_pos acked, bool resync, bool staging)
{
    CURL *c = f->curl;
    f->len = 0;
    f->status = 0;
    f->history[0] = '\0';
    f->start = f->next = f->end = (kv_log_pos){0, 0};
    f->lag_bytes = 0;
    f->error[0] = '\0';
    char url[1024];
    char *id = curl_easy_escape(c, r->cfg->volume_id, 0);
    snprintf(url, sizeof(url),
             "http://%s/replication/log?id=%s&history=%s&seg=%" PRIu64 "&off=%" PRIu64
             "&ack_seg=%" PRIu64 "&ack_off=%" PRIu64 "&wait_ms=%u&max=%u%s%s",
             r->cfg->replica_of, id ? id : "", history, pos.seg, pos.off, acked.seg, acked.off,
             WAIT_MS, MAX_BYTES, resync ? "&resync=1" : "", staging ? "&staging=1" : "");
    curl_free(id);
    char auth[VS_AUTH_TOKEN_MAX + 32];
    struct curl_slist *headers = NULL;
    if (r->cfg->auth_token[0] != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->cfg->auth_token);
        headers = curl_slist_append(headers, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    /* A stalled primary: less than one byte a second for ten seconds. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 10L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    /* Reads of the socket as large as libcurl takes: with its default of
     * 16 KiB, a catch-up spends as much in receiving (a system call and a
     * window update for each read) as in storing. */
    curl_easy_setopt(c, CURLOPT_BUFFERSIZE, RECV_BUFFER);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    if (cc != CURLE_OK) {
        snprintf(f->error, sizeof(f->error), "%s", curl_easy_strerror(cc));
        return;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
    if (f->status != 200) {
        size_t n = f->len < sizeof(f->error) - 1 ? f->len : sizeof(f->error) - 1;
        memcpy(f->error, f->body ? (const char *)f->body : "", n);
        f->error[n] = '\0';
    }
    atomic_fetch_add(&r->bytes_received, f->len);
}

/* Notes what the primary said of the replica's distance. */
static void note_lag(struct repl *r, const struct repl_fetch *f, bool connected)
{
    pthread_mutex_lock(&r->mu);
    r->connected = connected;
    if (connected) {
        r->lag_bytes = f->lag_bytes;
        if (f->lag_bytes == 0)
            r->behind_ns = 0;
        else if (r->behind_ns == 0)
            r->behind_ns = vs_now_ns();
    }
    pthread_mutex_unlock(&r->mu);
}

/* Stores one answer in the live store; false when it was refused. A batch
 * with more behind it is part of a catch-up: its pages leave the page cache
 * once it is durable, so that the next batches reuse that memory (growing
 * the cache by gigabytes bounded catch-up, and the replica will not read
 * most of it soon); the last batch, and those of a replica that keeps up,
 * stay cached. */
static bool store_batch(struct repl *r, const struct repl_fetch *f)
{
    char meta[160];
    size_t n = repl__state_text(meta, sizeof(meta), "replica", f->history, &f->next);
    int rc = kv_log_append_flags(r->kv, f->body, f->len, REPL_META_NAME, strlen(REPL_META_NAME),
                                 meta, n, f->lag_bytes > 0 ? KV_LOG_DROP_CACHE : 0);
    if (rc == KV_ECORRUPT)
        atomic_fetch_add(&r->refused_batches, 1);
    if (rc != 0) {
        vs_log(VS_LOG_WARN, "replication: %zu bytes at %" PRIu64 ":%" PRIu64 " not stored: %s",
               f->len, f->start.seg, f->start.off, kv_strerror(rc));
        return false;
    }
    pthread_mutex_lock(&r->mu);
    memcpy(r->history, f->history, sizeof(r->history));
    r->pos = f->next;
    pthread_mutex_unlock(&r->mu);
    return true;
}

/*
 * The storer: a second thread that stores one batch while the follower
 * fetches the next, so that a replica far behind keeps both its primary's
 * reads and its own disk busy. One batch at a time, handed over under mu.
 */
struct storer {
    struct repl *r;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct repl_fetch *batch; /* being stored; NULL when idle */
    bool stored;              /* the outcome of the last batch */
    bool stop;
    /* The next request is already on its way with an older position: the
     * storer acknowledges what it stored at once, on its own connection,
     * so that writes waiting for it on the primary need not wait for the
     * request after. */
    bool ack_now;
    CURL *curl;
};

/* libcurl's write callback type fixes the parameter as char *. */
static size_t discard_body(char *data, // NOLINT(readability-non-const-parameter)
                           size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

/* GET /replication/ack: tells the primary at once what is stored here. */
static void send_ack(struct storer *st, const char *history, kv_log_pos pos)
{
    struct repl *r = st->r;
    if (st->curl == NULL)
        return;
    char url[1024];
    char *id = curl_easy_escape(st->curl, r->cfg->volume_id, 0);
    snprintf(url, sizeof(url),
             "http://%s/replication/ack?id=%s&history=%s&seg=%" PRIu64 "&off=%" PRIu64,
             r->cfg->replica_of, id ? id : "", history, pos.seg, pos.off);
    curl_free(id);
    char auth[VS_AUTH_TOKEN_MAX + 32];
    struct curl_slist *headers = NULL;
    if (r->cfg->auth_token[0] != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->cfg->auth_token);
        headers = curl_slist_append(headers, auth);
    }
    curl_easy_setopt(st->curl, CURLOPT_URL, url);
    curl_easy_setopt(st->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(st->curl, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(st->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(st->curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(st->curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(st->curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_perform(st->curl); /* a lost ack is repeated by the next request */
    curl_easy_setopt(st->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
}

static void *storer_main(void *arg)
{
    struct storer *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (st->batch == NULL && !st->stop)
            pthread_cond_wait(&st->cv, &st->mu);
        if (st->batch == NULL)
            break;
        struct repl_fetch *f = st->batch;
        pthread_mutex_unlock(&st->mu);
        bool ok = store_batch(st->r, f);
        pthread_mutex_lock(&st->mu);
        if (ok && st->ack_now) {
            pthread_mutex_unlock(&st->mu);
            send_ack(st, f->history, f->next);
            pthread_mutex_lock(&st->mu);
        }
        st->stored = ok;
        st->batch = NULL;
        pthread_cond_broadcast(&st->cv);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* Waits until the storer is idle; returns how its last batch went. */
static bool storer_wait(struct storer *st)
{
    pthread_mutex_lock(&st->mu);
    while (st->batch != NULL)
        pthread_cond_wait(&st->cv, &st->mu);
    bool ok = st->stored;
    st->stored = true;
    pthread_mutex_unlock(&st->mu);
    return ok;
}

static void storer_give(struct storer *st, struct repl_fetch *f, bool ack_now)
{
    pthread_mutex_lock(&st->mu);
    st->batch = f;
    st->ack_now = ack_now;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* The position stored last (the storer moves it). */
static kv_log_pos stored_pos(struct repl *r)
{
    pthread_mutex_lock(&r->mu);
    kv_log_pos p = r->pos;
    pthread_mutex_unlock(&r->mu);
    return p;
}

/* A replica without a history may catch up in place when its store is
 * empty: there is nothing old to keep serving. */
static bool may_follow_in_place(struct repl *r)
{
    kv_stats st;
    return kv_get_stats(r->kv, &st) == 0 && st.keys == 0;
}

/* Where the follower stands: what is durable here, and where the next
 * fetch reads from (past a batch still being stored). */
struct cursor {
    kv_log_pos durable, next;
    char history[REPL_HISTORY_LEN + 1];
};

/* Handles one answer of the primary. Returns false when the loop must
 * leave for a full resync. */
static bool take_answer(struct repl *r, struct storer *st, struct repl_fetch *f, struct cursor *c,
                        unsigned *pause)
{
    if (f->status == 409) {
        storer_wait(st);
        vs_log(VS_LOG_WARN, "replication: the primary says: %s", f->error);
        return false;
    }
    if (f->status != 200) {
        if (!atomic_load(&r->follower_stop))
            vs_log(*pause == PAUSE_MIN_MS ? VS_LOG_WARN : VS_LOG_DEBUG,
                   "replication: fetching from %s: %s%s", r->cfg->replica_of,
                   f->status ? "HTTP error: " : "", f->error);
        note_lag(r, f, false);
        storer_wait(st);
        c->durable = c->next = stored_pos(r);
        repl__pause(r, *pause);
        *pause = *pause * 2 > PAUSE_MAX_MS ? PAUSE_MAX_MS : *pause * 2;
        return true;
    }
    *pause = PAUSE_MIN_MS;
    /* The batch before this one must be stored before this one is. */
    if (!storer_wait(st)) {
        c->next = c->durable = stored_pos(r);
        repl__pause(r, PAUSE_MIN_MS);
        return true;
    }
    c->durable = stored_pos(r);
    memcpy(c->history, f->history, sizeof(c->history));
    note_lag(r, f, true);
    if (f->len == 0) {
        /* Nothing new, but the position may have moved on from the end of
         * a sealed segment to the start of the next: the same place. */
        c->next = f->next;
        pthread_mutex_lock(&r->mu);
        if (repl__pos_cmp(f->next, r->pos) > 0)
            r->pos = f->next;
        pthread_mutex_unlock(&r->mu);
        c->durable = c->next;
        return true;
    }
    /* Caught up: store it before asking again, so that the next request
     * acknowledges it at once (a write may be waiting for that). Behind:
     * fetch the next batch while this one is stored, which the storer
     * then acknowledges on its own. */
    storer_give(st, f, f->lag_bytes > 0);
    c->next = f->next;
    if (f->lag_bytes == 0) {
        if (storer_wait(st))
            c->durable = stored_pos(r);
        else
            c->next = c->durable;
    }
    return true;
}

static void follow(struct repl *r, struct storer *st, struct repl_fetch f[2])
{
    unsigned pause = PAUSE_MIN_MS;
    kv_log_pos at = stored_pos(r);
    struct cursor c = {.durable = at, .next = at};
    memcpy(c.history, r->history, sizeof(c.history));
    int cur = 0;
    while (!atomic_load(&r->follower_stop)) {
        bool from_start = c.history[0] == '\0';
        if (from_start && !may_follow_in_place(r)) {
            repl__resync_full(r, &f[cur]);
            return;
        }
        repl__fetch(r, &f[cur], c.history, c.next, c.durable, from_start, false);
        if (!take_answer(r, st, &f[cur], &c, &pause)) {
            repl__resync_full(r, &f[cur]);
            return;
        }
        cur ^= 1;
    }
    storer_wait(st);
}

static void *follower_main(void *arg)
{
    struct repl *r = arg;
    struct repl_fetch f[2] = {{0}};
    struct storer st = {.r = r, .stored = true, .curl = curl_easy_init()};
    CURL *curl = curl_easy_init();
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cv, NULL);
    int err = curl ? pthread_create(&st.thread, NULL, storer_main, &st) : -1;
    if (err != 0) {
        vs_log(VS_LOG_ERROR, "replication: cannot start following %s (%s)", r->cfg->replica_of,
               curl ? strerror(err) : "libcurl");
    } else {
        f[0].curl = f[1].curl = curl;
        follow(r, &st, f);
        pthread_mutex_lock(&st.mu);
        st.stop = true;
        pthread_cond_broadcast(&st.cv);
        pthread_mutex_unlock(&st.mu);
        pthread_join(st.thread, NULL);
    }
    if (curl)
        curl_easy_cleanup(curl);
    if (st.curl)
        curl_easy_cleanup(st.curl);
    free(f[0].body);
    free(f[1].body);
    pthread_cond_destroy(&st.cv);
    pthread_mutex_destroy(&st.mu);
    return NULL;
}

static void curl_setup(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int repl__follower_start(struct repl *r)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_setup);
    atomic_store(&r->follower_stop, false);
    int err = pthread_create(&r->follower, NULL, follower_main, r);
    if (err != 0) {
        vs_log(VS_LOG_ERROR, "replication: cannot start the follower: %s", strerror(err));
        return KV_ENOMEM;
    }
    r->follower_started = true;
    return 0;
}

void repl__follower_stop(struct repl *r)
{
    if (!r->follower_started)
        return;
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->follower_stop, true);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->follower, NULL);
    r->follower_started = false;
}
