/*
 * io.c - the operating system's file I/O table, the completion of a user's
 * table with it, and the helpers every other module uses on top of a table:
 * full reads and writes that retry EINTR and short counts, directory fsync,
 * file size and free space.
 */
#include "io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/file.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static int os_open(void *ctx, const char *path, int flags, mode_t mode)
{
    (void)ctx;
    return open(path, flags, mode);
}

static int os_close(void *ctx, int fd)
{
    (void)ctx;
    return close(fd);
}

static ssize_t os_preadv(void *ctx, int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    (void)ctx;
    return preadv(fd, iov, iovcnt, off);
}

/* One buffer (a lone put's record) goes through pwrite: the kernel then
 * copies no iovec array in, which is over a tenth of a small write's
 * cost. */
static ssize_t os_pwritev(void *ctx, int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    (void)ctx;
    if (iovcnt == 1)
        return pwrite(fd, iov[0].iov_base, iov[0].iov_len, off);
    return pwritev(fd, iov, iovcnt, off);
}

static int os_fdatasync(void *ctx, int fd)
{
    (void)ctx;
    return fdatasync(fd);
}

static int os_fsync(void *ctx, int fd)
{
    (void)ctx;
    return fsync(fd);
}

static int os_ftruncate(void *ctx, int fd, off_t len)
{
    (void)ctx;
    return ftruncate(fd, len);
}

static int os_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return rename(from, to);
}

static int os_unlink(void *ctx, const char *path)
{
    (void)ctx;
    return unlink(path);
}

static void *os_map(void *ctx, int fd, size_t len)
{
    (void)ctx;
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

static int os_unmap(void *ctx, void *addr, size_t len)
{
    (void)ctx;
    return munmap(addr, len);
}

static uint64_t os_clock_ms(void *ctx)
{
    (void)ctx;
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static int os_drop_cache(void *ctx, int fd, off_t off, off_t len)
{
    (void)ctx;
    int err = posix_fadvise(fd, off, len, POSIX_FADV_DONTNEED);
    if (err == 0)
        return 0;
    errno = err;
    return -1;
}

static int os_link(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return link(from, to);
}

static int os_mkdir(void *ctx, const char *path, mode_t mode)
{
    (void)ctx;
    return mkdir(path, mode);
}

static int os_flock(void *ctx, int fd, int operation)
{
    (void)ctx;
    return flock(fd, operation);
}

static int os_fstat(void *ctx, int fd, struct stat *st)
{
    (void)ctx;
    return fstat(fd, st);
}

static int os_statvfs(void *ctx, const char *path, struct statvfs *st)
{
    (void)ctx;
    return statvfs(path, st);
}

static void *os_opendir(void *ctx, const char *path)
{
    (void)ctx;
    return opendir(path);
}

static const char *os_readdir(void *ctx, void *dir)
{
    (void)ctx;
    const struct dirent *de = readdir(dir);
    return de ? de->d_name : NULL;
}

static int os_closedir(void *ctx, void *dir)
{
    (void)ctx;
    return closedir(dir);
}

const struct kv_io kv__io_os = {
    .ctx = NULL,
    .open = os_open,
    .close = os_close,
    .preadv = os_preadv,
    .pwritev = os_pwritev,
    .fdatasync = os_fdatasync,
    .fsync = os_fsync,
    .ftruncate = os_ftruncate,
    .rename = os_rename,
    .unlink = os_unlink,
    .map = os_map,
    .unmap = os_unmap,
    .mkdir = os_mkdir,
    .flock = os_flock,
    .fstat = os_fstat,
    .statvfs = os_statvfs,
    .opendir = os_opendir,
    .readdir = os_readdir,
    .closedir = os_closedir,
    .link = os_link,
    .clock_ms = os_clock_ms,
    .drop_cache = os_drop_cache,
};

const struct kv_io *kv_io_default(void)
{
    return &kv__io_os;
}

/* Fills a NULL member of t with the operating system's. */
#define COMPLETE(t, member)                                                                        \
    do {                                                                                           \
        if (!(t)->member)                                                                          \
            (t)->member = kv__io_os.member;                                                        \
    } while (0)

int kv__io_complete(const struct kv_io *user, struct kv_io *out)
{
    if (!user) {
        *out = kv__io_os;
        return 0;
    }
    int dir_members = !!user->opendir + !!user->readdir + !!user->closedir;
    if ((dir_members != 0 && dir_members != 3) || !user->map != !user->unmap)
        return KV_EINVAL;
    struct kv_io t = *user;
    COMPLETE(&t, open);
    COMPLETE(&t, close);
    COMPLETE(&t, preadv);
    COMPLETE(&t, pwritev);
    COMPLETE(&t, fdatasync);
    COMPLETE(&t, fsync);
    COMPLETE(&t, ftruncate);
    COMPLETE(&t, rename);
    COMPLETE(&t, unlink);
    COMPLETE(&t, map);
    COMPLETE(&t, unmap);
    COMPLETE(&t, mkdir);
    COMPLETE(&t, flock);
    COMPLETE(&t, fstat);
    COMPLETE(&t, statvfs);
    COMPLETE(&t, opendir);
    COMPLETE(&t, readdir);
    COMPLETE(&t, closedir);
    COMPLETE(&t, link);
    COMPLETE(&t, clock_ms);
    COMPLETE(&t, drop_cache);
    *out = t;
    return 0;
}

/* Advances iov past n transferred bytes; returns the new first element. */
static struct iovec *iov_advance(struct iovec *iov, int *iovcnt, size_t n)
{
    while (*iovcnt > 0 && n >= iov->iov_len) {
        n -= iov->iov_len;
        iov++;
        (*iovcnt)--;
    }
    if (*iovcnt > 0) {
        iov->iov_base = (char *)iov->iov_base + n;
        iov->iov_len -= n;
    }
    return iov;
}

/* Reads or writes every byte of iov at off. The iovec array is consumed. */
static int transfer_full(const struct kv_io *io, int fd, struct iovec *iov, int iovcnt, off_t off,
                         bool write)
{
    while (iovcnt > 0 && iov->iov_len == 0) {
        iov++;
        iovcnt--;
    }
    while (iovcnt > 0) {
        int cnt = iovcnt < IOV_MAX ? iovcnt : IOV_MAX;
        ssize_t n = write ? io->pwritev(io->ctx, fd, iov, cnt, off)
                          : io->preadv(io->ctx, fd, iov, cnt, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return kv__errno_to_rc(errno);
        }
        if (n == 0) {
            /* A read past the end of the file, or a device that takes nothing. */
            errno = write ? EIO : 0;
            return write ? KV_EIO : KV_ECORRUPT;
        }
        off += n;
        iov = iov_advance(iov, &iovcnt, (size_t)n);
    }
    return 0;
}

int kv__io_readv_full(const struct kv_io *io, int fd, struct iovec *iov, int iovcnt, off_t off)
{
    return transfer_full(io, fd, iov, iovcnt, off, false);
}

int kv__io_writev_full(const struct kv_io *io, int fd, struct iovec *iov, int iovcnt, off_t off)
{
    return transfer_full(io, fd, iov, iovcnt, off, true);
}

int kv__io_read_full(const struct kv_io *io, int fd, void *buf, size_t len, off_t off)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    return transfer_full(io, fd, &iov, 1, off, false);
}

int kv__io_write_full(const struct kv_io *io, int fd, const void *buf, size_t len, off_t off)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return transfer_full(io, fd, &iov, 1, off, true);
}

int kv__join_path(const char *dir, const char *name, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? KV_EINVAL : 0;
}

int kv__io_sync_dir(const struct kv_io *io, const char *dir)
{
    int fd = io->open(io->ctx, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0)
        return kv__errno_to_rc(errno);
    int rc = 0;
    if (io->fsync(io->ctx, fd) != 0)
        rc = kv__errno_to_rc(errno);
    int saved = errno;
    io->close(io->ctx, fd);
    errno = saved;
    return rc;
}

int kv__io_file_size(const struct kv_io *io, int fd, uint64_t *size)
{
    struct stat st;
    if (io->fstat(io->ctx, fd, &st) != 0)
        return kv__errno_to_rc(errno);
    *size = (uint64_t)st.st_size;
    return 0;
}

int kv__io_free_space(const struct kv_io *io, const char *path, uint64_t *bytes)
{
    struct statvfs st;
    if (io->statvfs(io->ctx, path, &st) != 0)
        return kv__errno_to_rc(errno);
    *bytes = (uint64_t)st.f_bavail * (uint64_t)st.f_frsize;
    return 0;
}
