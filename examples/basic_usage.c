/*
 * basic_usage.c - the engine's public API in a dozen calls: open a store, set,
 * get, delete, list, read statistics, compact, save the snapshot, close.
 *
 *   build/examples/basic_usage [DIR]      (default: build/examples/basic_usage-data)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvstore.h"

/* The store's directory when neither DIR nor KVSTORE_EXAMPLE_DIR is given.
 * The build names one inside the build directory, so that running an example
 * leaves nothing in the source tree. */
#ifndef KV_EXAMPLE_DATA_DIR
#define KV_EXAMPLE_DATA_DIR "basic_usage-data"
#endif

static int print_key(const void *key, size_t len, void *ctx)
{
    (void)ctx;
    printf("Key: %.*s\n", (int)len, (const char *)key);
    return 0;
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

    kv_store *store;
    if (check(kv_open(dir, NULL, &store), "open"))
        return 1;

    int rc = check(kv_put(store, "user:1:name", 11, "Alice", 5), "set name");
    if (!rc)
        rc = check(kv_put(store, "user:1:email", 12, "alice@example.com", 17), "set email");

    void *name = NULL;
    size_t name_len = 0;
    if (!rc && !check(kv_get(store, "user:1:name", 11, &name, &name_len), "get name")) {
        printf("Name: %.*s\n", (int)name_len, (const char *)name);
        kv_free(name);
    }

    if (!rc)
        rc = check(kv_delete(store, "user:1:email", 12), "delete email");
    if (!rc)
        rc = check(kv_list(store, NULL, 0, NULL, 0, 0, print_key, NULL), "list");

    kv_stats st;
    if (!rc && !check(kv_get_stats(store, &st), "stats"))
        printf("Keys: %llu, Segments: %llu\n", (unsigned long long)st.keys,
               (unsigned long long)st.segments);

    if (!rc)
        rc = check(kv_compact(store), "compact");
    if (!rc)
        rc = check(kv_save_snapshot(store), "snapshot");
    if (check(kv_close(store), "close") && !rc)
        rc = 1;
    return rc ? 1 : 0;
}
