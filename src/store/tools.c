/*
 * tools.c - kv_scan: every record of a data directory, good or bad, in replay
 * order, for operators' tools (verify, dump). Read-only and lock-free, so it
 * can inspect a directory that a running process has open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

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
    };
    return sc->fn(&info, sc->ctx);
}

int kv_scan(const char *dir, kv_record_fn fn, void *ctx)
{
    if (!dir || !fn)
        return KV_EINVAL;
    kv_store probe = {.dir = (char *)dir, .io = &kv__io_os};
    uint32_t *ids = NULL;
    size_t n = 0;
    int rc = kv__list_segments(&probe, false, &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[4096];
        rc = kv__segment_path(dir, ids[i], false, path, sizeof(path));
        if (rc != 0)
            break;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = kv__errno_to_rc(errno);
            break;
        }
        uint64_t size;
        rc = kv__io_file_size(fd, &size);
        struct scan_ctx sc = {.segment_id = ids[i], .fn = fn, .ctx = ctx};
        if (rc == 0)
            rc = kv__scan_segment(&kv__io_os, fd, size, 0, forward_record, &sc);
        close(fd);
    }
    free(ids);
    return rc;
}
