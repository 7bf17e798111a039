/*
 * dirlock.h - the data directory's LOCK file (dirlock.c): one owner at a
 * time, across handles and processes.
 */
#ifndef KV_STORE_DIRLOCK_H
#define KV_STORE_DIRLOCK_H

#include "kvstore.h"

#define LOCK_NAME "LOCK"

/* Takes an exclusive lock on s->dir/LOCK, creating the file if needed; the
 * descriptor is kept in s->dir_lock_fd. KV_ELOCKED when another handle or
 * process holds it. */
int kv__dirlock_take(kv_store *s);

/* Releases it (closing the descriptor); a no-op when it is not held. */
void kv__dirlock_release(kv_store *s);

#endif /* KV_STORE_DIRLOCK_H */
