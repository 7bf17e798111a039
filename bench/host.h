/*
 * host.h - what the benchmarks ask of the operating system beside the
 * engines: the process's resident memory, the bytes in a data directory, and
 * removing a data directory between runs.
 */
#ifndef BENCH_HOST_H
#define BENCH_HOST_H

#include <stdint.h>

struct host_rss {
    uint64_t anon_bytes; /* heap and anonymous mappings (RssAnon) */
    uint64_t file_bytes; /* file pages mapped into the process (RssFile) */
};

/* Reads /proc/self/status. Returns 0, or -1 (fields left 0). */
int host_rss(struct host_rss *out);

/* Sum of the sizes of the regular files under dir (recursively); 0 when
 * it does not exist. */
uint64_t host_dir_bytes(const char *dir);

/* Removes dir and everything under it, without following symbolic links.
 * A missing dir is not an error. Returns 0 or -1 (errno set). */
int host_remove_tree(const char *dir);

#endif /* BENCH_HOST_H */
