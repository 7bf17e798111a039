/*
 * io.h - the one door through which the engine reaches the file system.
 *
 * Every open, read, write, sync, truncate, rename, unlink and mapping of the
 * engine goes through a struct kv_io table. The default table calls the operating system;
 * tests pass their own (kv_options.io) to make the Nth write fail with ENOSPC,
 * EIO or a short count, to fail an fsync, or to record what each fsync covered.
 * Each function follows its POSIX namesake: -1 with errno set on failure.
 */
#ifndef KV_STORE_IO_H
#define KV_STORE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct kv_io {
    void *ctx; /* passed as the first argument of every call */
    int (*open)(void *ctx, const char *path, int flags, mode_t mode);
    int (*close)(void *ctx, int fd);
    ssize_t (*preadv)(void *ctx, int fd, const struct iovec *iov, int iovcnt, off_t off);
    ssize_t (*pwritev)(void *ctx, int fd, const struct iovec *iov, int iovcnt, off_t off);
    int (*fdatasync)(void *ctx, int fd);
    int (*fsync)(void *ctx, int fd); /* files that were renamed, and directories */
    int (*ftruncate)(void *ctx, int fd, off_t len);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    /* A read-only shared mapping of len bytes of fd from offset 0, or NULL
     * (errno set). Optional: a table without it (NULL) makes every read go
     * through preadv. */
    void *(*map)(void *ctx, int fd, size_t len);
    int (*unmap)(void *ctx, void *addr, size_t len);
};

/* The table that calls the operating system. */
extern const struct kv_io kv__io_os;

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
int kv__io_file_size(int fd, uint64_t *size);

/* Bytes available to this user on the file system holding path (statvfs). */
int kv__io_free_space(const char *path, uint64_t *bytes);

/* Maps an errno value to a KV_E... code (ENOSPC/EDQUOT -> KV_ENOSPC, ENOMEM ->
 * KV_ENOMEM, anything else -> KV_EIO). */
int kv__errno_to_rc(int err);

#endif /* KV_STORE_IO_H */
