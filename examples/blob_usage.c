/*
 * blob_usage.c - a blob layer over the engine's public API, as volume-server
 * uses it: put returns the blob's metadata (etag = CRC-32 of the value in
 * lower-case hex, size), get returns the bytes with their etag, delete removes
 * the blob. The etag comes from the record checksum the engine computes on
 * every write (kv_put_crc) and verifies on every read (kv_get_crc), so it
 * costs no second pass over the bytes.
 *
 *   build/examples/blob_usage [DIR]      (default: build/examples/blob_usage-data)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvstore.h"

/* The store's directory when neither DIR nor KVSTORE_EXAMPLE_DIR is given.
 * The build names one inside the build directory, so that running an example
 * leaves nothing in the source tree. */
#ifndef KV_EXAMPLE_DATA_DIR
#define KV_EXAMPLE_DATA_DIR "blob_usage-data"
#endif

typedef struct blob_storage {
    kv_store *store;
    const char *volume_id;
} blob_storage;

typedef struct blob_meta {
    char etag[9]; /* 8 lower-case hex digits and a zero byte */
    size_t size;
} blob_meta;

static void set_meta(blob_meta *meta, uint32_t crc, size_t size)
{
    snprintf(meta->etag, sizeof meta->etag, "%08" PRIx32, crc);
    meta->size = size;
}

static int blob_open(blob_storage *bs, const char *dir, const char *volume_id)
{
    bs->volume_id = volume_id;
    return kv_open(dir, NULL, &bs->store);
}

static int blob_close(blob_storage *bs)
{
    return kv_close(bs->store);
}

static int blob_put(blob_storage *bs, const char *key, const void *data, size_t size,
                    blob_meta *meta)
{
    uint32_t crc;
    int rc = kv_put_crc(bs->store, key, strlen(key), data, size, &crc);
    if (rc == 0)
        set_meta(meta, crc, size);
    return rc;
}

/* On success *data is the caller's, released with kv_free(). */
static int blob_get(blob_storage *bs, const char *key, void **data, blob_meta *meta)
{
    size_t size;
    uint32_t crc;
    int rc = kv_get_crc(bs->store, key, strlen(key), data, &size, &crc);
    if (rc == 0)
        set_meta(meta, crc, size);
    return rc;
}

/* Deleting an absent blob is not an error, as in the HTTP API (204). */
static int blob_delete(blob_storage *bs, const char *key)
{
    int rc = kv_delete(bs->store, key, strlen(key));
    return rc == KV_ENOTFOUND ? 0 : rc;
}

static int check(int rc, const char *what)
{
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", what, kv_strerror(rc));
    return rc;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : getenv("KVSTORE_EXAMPLE_DIR");
    if (!dir)
        dir = KV_EXAMPLE_DATA_DIR;

    blob_storage bs;
    if (check(blob_open(&bs, dir, "vol-1"), "open"))
        return 1;

    static const char image[] = "<binary data>";
    blob_meta put_meta = {0}, get_meta = {0};
    int rc = check(blob_put(&bs, "image:123", image, sizeof image - 1, &put_meta), "put");
    if (!rc)
        printf("Stored on %s: etag=%s, size=%zu\n", bs.volume_id, put_meta.etag, put_meta.size);

    void *data = NULL;
    if (!rc && !(rc = check(blob_get(&bs, "image:123", &data, &get_meta), "get"))) {
        printf("Retrieved %zu bytes, etag=%s\n", get_meta.size, get_meta.etag);
        if (get_meta.size != sizeof image - 1 || memcmp(data, image, get_meta.size) != 0 ||
            strcmp(get_meta.etag, put_meta.etag) != 0) {
            fprintf(stderr, "get: the blob read back differs from the one stored\n");
            rc = 1;
        }
        kv_free(data);
    }

    if (!rc)
        rc = check(blob_delete(&bs, "image:123"), "delete");
    if (!rc) {
        rc = blob_get(&bs, "image:123", &data, &get_meta);
        if (rc == KV_ENOTFOUND) {
            printf("Deleted image:123\n");
            rc = 0;
        } else {
            if (rc == 0)
                kv_free(data);
            fprintf(stderr, "delete: image:123 is still there (%s)\n", kv_strerror(rc));
            rc = 1;
        }
    }

    if (check(blob_close(&bs), "close") && !rc)
        rc = 1;
    return rc ? 1 : 0;
}
