/*
 * resync.c - a replica's full resync: a consistent copy of the primary's
 * live data, made beside the data directory while the replica goes on
 * serving what it has, then swapped in.
 *
 * The copy is the primary's log as its disk holds it now, from its oldest
 * segment on: replaying it gives the primary's live data, exactly as the
 * primary's own open would (a compaction's outputs and later writes follow
 * in order; tombstones that still matter are kept by compaction). It is
 * stored with kv_log_append into a fresh store in DATA_DIR.resync, position
 * and history included, until it reaches the end of the primary's log. If
 * the primary's compaction removes a segment the copy has not read yet,
 * the copy starts over: compaction never waits for a replica.
 *
 * The swap: the copy's store is closed (synced, snapshot saved), the
 * program stops its front ends and closes the live store, and one
 * renameat2(RENAME_EXCHANGE) exchanges DATA_DIR and DATA_DIR.resync, then
 * the parent directory is fsynced and the old data removed. A crash at any
 * step leaves DATA_DIR holding either the old data or the complete copy,
 * never a mix; whatever is left at DATA_DIR.resync (a copy not finished, or
 * old data not yet removed) is removed when the server starts.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define PAUSE_MS 200u

/* Full resyncs begun since the process started: a swap restarts
 * replication (struct repl) but not the process, and the figure must not
 * fall back to 0 then. */
static atomic_uint_fast64_t resyncs_begun;

uint64_t repl__full_resyncs(void)
{
    return atomic_load(&resyncs_begun);
}

static void staging_path(const struct vs_config *cfg, char *buf, size_t len)
{
    snprintf(buf, len, "%s.resync", cfg->data_dir);
}

/* rm -r of a directory of plain files (a data directory). */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    char path[VS_DATA_DIR_MAX + 300];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) != 0 && errno == EISDIR)
            remove_dir(path);
    }
    closedir(d);
    rmdir(dir);
}

void repl_clean_staging(const struct vs_config *cfg)
{
    char staged[VS_DATA_DIR_MAX + 16];
    staging_path(cfg, staged, sizeof(staged));
    struct stat st;
    if (stat(staged, &st) != 0)
        return;
    vs_log(VS_LOG_INFO, "replication: removing %s, left by a full resync", staged);
    remove_dir(staged);
}

static void sync_parent(const char *path)
{
    char parent[VS_DATA_DIR_MAX + 16];
    snprintf(parent, sizeof(parent), "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash == NULL)
        snprintf(parent, sizeof(parent), ".");
    else if (slash == parent)
        slash[1] = '\0';
    else
        *slash = '\0';
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int repl_swap_in(const struct vs_config *cfg)
{
    char staged[VS_DATA_DIR_MAX + 16];
    staging_path(cfg, staged, sizeof(staged));
    if (renameat2(AT_FDCWD, staged, AT_FDCWD, cfg->data_dir, RENAME_EXCHANGE) != 0) {
        vs_log(VS_LOG_ERROR, "replication: cannot exchange %s and %s: %s", staged, cfg->data_dir,
               strerror(errno));
        return KV_EIO;
    }
    sync_parent(cfg->data_dir);
    remove_dir(staged);
    vs_log(VS_LOG_INFO, "replication: the full copy is now %s", cfg->data_dir);
    return 0;
}

bool repl_swap_ready(const struct repl *r)
{
    return r != NULL && atomic_load(&r->swap_ready);
}

/* Opens a fresh store in the staging directory. */
static int open_staged(struct repl *r, const char *staged, kv_store **out)
{
    remove_dir(staged);
    kv_options opts;
    vs_app_kv_options(r->cfg, &opts);
    opts.compaction_interval_secs = 0; /* the copy holds no garbage until it is done */
    int rc = kv_open(staged, &opts, out);
    if (rc != 0)
        vs_log(VS_LOG_ERROR, "replication: cannot open %s for a full resync: %s", staged,
               kv_strerror(rc));
    return rc;
}

/* Copies the primary's log into kv from the start to its end. 0 when the
 * copy is complete; 1 to start over; -1 when stopped. */
static int copy_log(struct repl *r, struct repl_fetch *f, kv_store *kv)
{
    char history[REPL_HISTORY_LEN + 1] = "";
    kv_log_pos pos = {0, 0};
    bool first = true;
    while (!atomic_load(&r->follower_stop)) {
        repl__fetch(r, f, history, pos, pos, first, true);
        if (f->status == 409)
            return 1;
        if (f->status != 200) {
            vs_log(VS_LOG_DEBUG, "replication: full resync: %s", f->error);
            repl__pause(r, PAUSE_MS);
            continue;
        }
        if (f->len > 0) {
            char meta[160];
            size_t n = repl__state_text(meta, sizeof(meta), "replica", f->history, &f->next);
            /* More to come: a copy keeps none of it in the page cache. */
            int rc =
                kv_log_append_flags(kv, f->body, f->len, REPL_META_NAME, strlen(REPL_META_NAME),
                                    meta, n, f->lag_bytes > 0 ? KV_LOG_DROP_CACHE : 0);
            if (rc == KV_ECORRUPT)
                atomic_fetch_add(&r->refused_batches, 1);
            if (rc != 0) {
                vs_log(VS_LOG_WARN, "replication: full resync: a batch not stored: %s",
                       kv_strerror(rc));
                repl__pause(r, PAUSE_MS);
                continue;
            }
        }
        if (first)
            memcpy(history, f->history, sizeof(history));
        first = false;
        pos = f->next;
        pthread_mutex_lock(&r->mu);
        r->lag_bytes = f->lag_bytes;
        pthread_mutex_unlock(&r->mu);
        if (repl__pos_cmp(pos, f->end) >= 0) {
            /* Caught up: a history is only known once the primary answered,
             * and the copy must hold one even when the log was empty. */
            if (f->len == 0) {
                char meta[160];
                size_t n = repl__state_text(meta, sizeof(meta), "replica", history, &pos);
                if (kv_meta_put(kv, REPL_META_NAME, strlen(REPL_META_NAME), meta, n) != 0)
                    continue;
            }
            return 0;
        }
    }
    return -1;
}

void repl__resync_full(struct repl *r, struct repl_fetch *f)
{
    char staged[VS_DATA_DIR_MAX + 16];
    staging_path(r->cfg, staged, sizeof(staged));
    pthread_mutex_lock(&r->mu);
    r->resyncing = true;
    pthread_mutex_unlock(&r->mu);
    atomic_fetch_add(&resyncs_begun, 1);
    vs_log(VS_LOG_INFO,
           "replication: full resync from %s into %s; serving the old data until "
           "it is complete",
           r->cfg->replica_of, staged);
    int outcome = 1;
    while (outcome == 1 && !atomic_load(&r->follower_stop)) {
        kv_store *kv = NULL;
        if (open_staged(r, staged, &kv) != 0) {
            repl__pause(r, PAUSE_MS * 5);
            continue;
        }
        outcome = copy_log(r, f, kv);
        int rc = kv_close(kv);
        if (outcome == 0 && rc != 0) {
            vs_log(VS_LOG_ERROR, "replication: closing the full copy: %s", kv_strerror(rc));
            outcome = 1;
        }
        if (outcome == 1)
            vs_log(VS_LOG_INFO, "replication: the primary's log moved under the full copy; "
                                "starting it over");
    }
    if (outcome != 0)
        return;
    sync_parent(staged);
    vs_log(VS_LOG_INFO, "replication: full copy complete; swapping it in");
    atomic_store(&r->swap_ready, true);
    /* The program's main thread takes it from here (volume-server's
     * sigwait): it stops the front ends and the store, and swaps. */
    kill(getpid(), SIGUSR1);
}
