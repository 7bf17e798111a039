/*
 * host.c - process memory from /proc, and directory walks with nftw (no
 * shell: a data directory name with a quote in it must not become a
 * command).
 */
#include "host.h"

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Parses "Name:   1234 kB" lines. */
static int kib_field(const char *line, const char *name, uint64_t *out)
{
    size_t n = strlen(name);
    if (strncmp(line, name, n) != 0 || line[n] != ':')
        return -1;
    char *end = NULL;
    unsigned long long v = strtoull(line + n + 1, &end, 10);
    if (end == line + n + 1)
        return -1;
    *out = (uint64_t)v * 1024u;
    return 0;
}

int host_rss(struct host_rss *out)
{
    memset(out, 0, sizeof(*out));
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    int seen = 0;
    while (fgets(line, sizeof(line), f)) {
        bool found = kib_field(line, "RssAnon", &out->anon_bytes) == 0 ||
                     kib_field(line, "RssFile", &out->file_bytes) == 0;
        seen += found;
    }
    fclose(f);
    return seen == 2 ? 0 : -1;
}

/* nftw has no context argument; the walks are short and the driver walks
 * from one thread at a time, so a file-scope accumulator is enough. */
static uint64_t walk_bytes;

static int add_size(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (type == FTW_F && S_ISREG(st->st_mode))
        walk_bytes += (uint64_t)st->st_size;
    return 0;
}

uint64_t host_dir_bytes(const char *dir)
{
    walk_bytes = 0;
    /* A walk that fails part-way (a file removed under it) still counts what
     * it saw: the figure is for a report, not for a decision. */
    (void)nftw(dir, add_size, 16, FTW_PHYS);
    return walk_bytes;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = type == FTW_DP ? rmdir(path) : unlink(path);
    return rc != 0 && errno != ENOENT ? -1 : 0;
}

int host_remove_tree(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
