/*
 * inspect.c - reading a data directory without opening it, for operators'
 * tools (the CLI's verify and dump): kv_scan, every record of every segment,
 * good or bad, in replay order; and kv_check_snapshot, the verdict an open
 * would reach on index.snapshot. Read-only and lock-free, so they can
 * inspect a directory that a running process has open. Files are reached
 * through the operating system's I/O table.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

#include "io.h"
#include "kvstore.h"
#include "segment.h"
#include "segment_scan.h"
#include "snapshot.h"

/* Opens segment id of dir read-only and gives its size. */
static int open_segment(const struct kv_io *io, const char *dir, uint32_t id, int *fd,
                        uint64_t *size)
{
    char path[4096];
    int rc = kv__segment_path(dir, id, false, path, sizeof(path));
    if (rc != 0)
        return rc;
    *fd = io->open(io->ctx, path, O_RDONLY | O_CLOEXEC, 0);
    if (*fd < 0)
        return kv__errno_to_rc(errno);
    rc = kv__io_file_size(io, *fd, size);
    if (rc != 0)
        io->close(io->ctx, *fd);
    return rc;
}

/* ---- kv_scan */

struct scan_ctx {
    uint32_t segment_id;
    kv_record_fn fn;
    void *ctx;
};

static int forward_record(const struct scan_record *r, void *arg)
{
    const struct scan_ctx *sc = arg;
    kv_record_info info = {
        .segment_id = sc->segment_id,
        .offset = r->off,
        .length = r->len,
        .status = r->status,
        .op = r->op,
        .key = r->key,
        .key_len = r->key ? r->key_len : 0,
        .value_len = r->key ? r->val_len : 0,
        .checksum = r->key ? r->crc : 0,
        .in_batch = r->in_batch,
    };
    if (r->status == KV_REC_OK && r->op == KV_OP_SETX) {
        info.attr_flags = r->attrs.flags;
        info.expire_at_ms = r->attrs.expire_at;
        info.raw_len = r->attrs.raw_len;
        info.raw_crc = r->attrs.raw_crc;
        info.dict_id = r->attrs.dict_id;
    }
    return sc->fn(&info, sc->ctx);
}

int kv_scan(const char *dir, kv_record_fn fn, void *ctx)
{
    if (!dir || !fn)
        return KV_EINVAL;
    const struct kv_io *io = &kv__io_os;
    uint32_t *ids = NULL;
    size_t n = 0;
    int rc = kv__list_segments(io, dir, NULL, false, &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int fd = -1;
        uint64_t size = 0;
        rc = open_segment(io, dir, ids[i], &fd, &size);
        if (rc != 0)
            break;
        struct scan_ctx sc = {.segment_id = ids[i], .fn = fn, .ctx = ctx};
        rc = kv__scan_segment(io, fd, size, 0, forward_record, &sc);
        io->close(io->ctx, fd);
    }
    free(ids);
    return rc;
}

/* ---- kv_check_snapshot */

int kv_check_snapshot(const char *dir, kv_snapshot_status *status, uint64_t *keys, char *reason,
                      size_t reason_len)
{
    if (!dir || !status)
        return KV_EINVAL;
    const struct kv_io *io = &kv__io_os;
    uint32_t *ids = NULL;
    uint64_t *sizes = NULL;
    size_t n = 0;
    int rc = kv__list_segments(io, dir, NULL, false, &ids, &n);
    if (rc == 0 && !(sizes = malloc((n ? n : 1) * sizeof(*sizes))))
        rc = KV_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int fd = -1;
        rc = open_segment(io, dir, ids[i], &fd, &sizes[i]);
        if (rc == 0)
            io->close(io->ctx, fd);
    }
    if (rc == 0)
        rc = kv__snapshot_check(io, dir, ids, sizes, n, status, keys, reason, reason_len);
    free(ids);
    free(sizes);
    return rc;
}
