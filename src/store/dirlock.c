/*
 * dirlock.c - the data directory's LOCK file: an exclusive flock held for as
 * long as a store is open, so that a second open of the same directory, from
 * this process or another, fails with KV_ELOCKED instead of two writers
 * interleaving their records.
 *
 * flock locks belong to the open file description, so a second handle in
 * the same process conflicts too (fcntl locks would not). The file itself
 * holds nothing and is never removed: removing it would let a second opener
 * lock a new file while the first still holds the old one.
 */
#include "dirlock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>

#include "io.h"
#include "logging.h"
#include "store.h"

int kv__dirlock_take(kv_store *s)
{
    char path[4096];
    int rc = kv__join_path(s->dir, LOCK_NAME, path, sizeof(path));
    if (rc != 0)
        return rc;
    s->dir_lock_fd = s->io->open(s->io->ctx, path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (s->dir_lock_fd < 0) {
        int err = errno;
        kv__log(s, KV_LOG_ERROR, "cannot open %s: %s", path, strerror(err));
        return kv__errno_to_rc(err);
    }
    if (s->io->flock(s->io->ctx, s->dir_lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        kv__log(s, KV_LOG_ERROR, "%s is in use by another handle or process", s->dir);
        return err == EWOULDBLOCK ? KV_ELOCKED : kv__errno_to_rc(err);
    }
    return 0;
}

void kv__dirlock_release(kv_store *s)
{
    if (s->dir_lock_fd < 0)
        return;
    s->io->close(s->io->ctx, s->dir_lock_fd);
    s->dir_lock_fd = -1;
}
