/*
 * io.h - the one door through which the engine reaches the file system.
 *
 * Every call the engine makes on files and directories goes through a
 * struct kv_io table (include/kvstore.h documents each member): a store's
 * own, kv_options.io completed with the operating system's functions where
 * it has none, or kv__io_os for kv_scan and kv_check_snapshot. Nothing in
 * src/store calls open, mkdir, flock, fstat, statvfs, opendir and the rest
 * directly; io.c holds the only such calls.
 */
#ifndef KV_STORE_IO_H
#define KV_STORE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "kvstore.h"

/* The table that calls the operating system (kv_io_default()). */
extern const struct kv_io kv__io_os;

/* *out = user with every NULL member replaced by the operating system's (user
 * NULL: kv__io_os). KV_EINVAL when only some of opendir, readdir and closedir
 * or only one of map and unmap are set. */
int kv__io_complete(const struct kv_io *user, struct kv_io *out);

/*
 * Helpers over a table, with the engine's error convention (0 or a negative
 * KV_E... code; errno is kept for the log). They retry EINTR and short
 * transfers, so a short count from the table is retried, not reported.
 */
int kv__io_read_full(const struct kv_io *io, int fd, void *buf, size_t len, off_t off);
int kv__io_readv_full(const struct kv_io *io, int fd, struct iovec *iov, int iovcnt, off_t off);
int kv__io_writev_full(const struct kv_io *io, int fd, struct iovec *iov, int iovcnt, off_t off);
int kv__io_write_full(const struct kv_io *io, int fd, const void *buf, size_t len, off_t off);

/* dir/name into buf; KV_EINVAL when it does not fit len. */
int kv__join_path(const char *dir, const char *name, char *buf, size_t len);

/* Opens dir and fsyncs it, so that creations, renames and unlinks in it are
 * durable. */
int kv__io_sync_dir(const struct kv_io *io, const char *dir);

/* Size of an open file (fstat). */
int kv__io_file_size(const struct kv_io *io, int fd, uint64_t *size);

/* Bytes available to this user on the file system holding path (statvfs). */
int kv__io_free_space(const struct kv_io *io, const char *path, uint64_t *bytes);

/* Maps an errno value to a KV_E... code (ENOSPC/EDQUOT/EFBIG -> KV_ENOSPC,
 * ENOMEM -> KV_ENOMEM, anything else -> KV_EIO); errors.c. */
int kv__errno_to_rc(int err);

#endif /* KV_STORE_IO_H */
