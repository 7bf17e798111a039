/*
 * compact_overwrites.c - the figure compaction is judged by: a store of N keys
 * each written R times (so all but one version of each is dead), then one
 * kv_compact. Prints the disk usage before and after, the time, and the
 * rates at which it read its input and wrote the live data.
 *
 *   build/bench/kvbench-compact [--num N] [--rounds R] [--dir DIR]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvstore.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "kvbench-compact: %s: %s\n", what, kv_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    unsigned long long num = 1000000, rounds = 5;
    char dir[4096];
    snprintf(dir, sizeof(dir), "/tmp/kvbench-compact-%d", (int)getpid());
    static const struct option longopts[] = {{"num", required_argument, NULL, 'n'},
                                             {"rounds", required_argument, NULL, 'r'},
                                             {"dir", required_argument, NULL, 'd'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 'n')
            num = strtoull(optarg, NULL, 10);
        else if (ch == 'r')
            rounds = strtoull(optarg, NULL, 10);
        else if (ch == 'd')
            snprintf(dir, sizeof(dir), "%s/kvbench-compact-%d", optarg, (int)getpid());
        else {
            fprintf(stderr, "usage: kvbench-compact [--num N] [--rounds R] [--dir DIR]\n");
            return 2;
        }
    }
    if (num == 0 || num > 9999999999999999ULL || rounds == 0)
        return fail("--num and --rounds", KV_EINVAL);

    kv_options o;
    kv_options_init(&o);
    o.sync_mode = KV_SYNC_NONE;
    o.compaction_interval_secs = 0; /* only the compaction measured */
    kv_store *s;
    int rc = kv_open(dir, &o, &s);
    if (rc != 0)
        return fail("open", rc);
    char key[24], val[100];
    memset(val, 'v', sizeof(val));
    for (unsigned long long r = 0; r < rounds && rc == 0; r++) {
        for (unsigned long long i = 0; i < num && rc == 0; i++) {
            snprintf(key, sizeof(key), "%016llu", i);
            val[0] = (char)('0' + r % 10);
            rc = kv_put(s, key, 16, val, sizeof(val));
        }
    }
    kv_stats before, after;
    if (rc == 0)
        rc = kv_sync(s);
    if (rc == 0)
        rc = kv_get_stats(s, &before);
    double t0 = now();
    if (rc == 0)
        rc = kv_compact(s);
    double secs = now() - t0;
    if (rc == 0)
        rc = kv_get_stats(s, &after);
    if (rc != 0) {
        kv_close(s);
        return fail("fill or compact", rc);
    }
    const double mb = 1024.0 * 1024.0;
    printf("keys %llu, each written %llu times\n", num, rounds);
    printf("disk before %.1f MB (live %.1f MB), after %.1f MB; reclaimed %.1f MB\n",
           (double)before.disk_bytes / mb, (double)before.live_bytes / mb,
           (double)after.disk_bytes / mb, (double)after.compaction_bytes_reclaimed / mb);
    printf("compaction %.2f s: read %.0f MB/s, wrote the live data at %.0f MB/s\n", secs,
           (double)after.compaction_bytes_read / mb / secs,
           (double)after.compaction_bytes_written / mb / secs);
    rc = kv_close(s);
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "kvbench-compact: could not remove %s\n", dir);
    return rc == 0 ? 0 : fail("close", rc);
}
