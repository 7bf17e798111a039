/*
 * fill.c - writes a store for the HTTP listing benchmark: the keys of the
 * shared key space (keyspace.h: key i is i in decimal, zero-padded), every
 * one once in the random order kvbench's fillrandom uses, with their
 * values, in sync mode none, then closes it (saving the snapshot) so that a
 * volume-server opens it at once.
 *
 *   build/bench/kvbench-fill --dir DIR [--num N] [--key-size B] [--value-size B]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "keyspace.h"
#include "kvstore.h"

static int usage(void)
{
    fprintf(stderr, "usage: kvbench-fill --dir DIR [--num N] [--key-size B] [--value-size B]\n");
    return 2;
}

static int parse_count(const char *s, unsigned long long lo, unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (!end || *end != '\0' || s[0] == '-' || v < lo)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long long num = 1000000, key_size = 16, value_size = 100;
    const char *dir = NULL;
    static const struct option longopts[] = {{"dir", required_argument, NULL, 'd'},
                                             {"num", required_argument, NULL, 'n'},
                                             {"key-size", required_argument, NULL, 'k'},
                                             {"value-size", required_argument, NULL, 'v'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int bad = 0;
        if (ch == 'd')
            dir = optarg;
        else if (ch == 'n')
            bad = parse_count(optarg, 1, &num);
        else if (ch == 'k')
            bad = parse_count(optarg, KEYSPACE_MIN_KEY, &key_size);
        else if (ch == 'v')
            bad = parse_count(optarg, 0, &value_size);
        else
            return usage();
        if (bad)
            return usage();
    }
    if (!dir || optind != argc)
        return usage();
    struct keyspace ks;
    if (keyspace_init(&ks, num, key_size, value_size, false) != 0) {
        fprintf(stderr, "kvbench-fill: bad sizes or out of memory\n");
        return 1;
    }
    kv_options o;
    kv_options_init(&o);
    o.sync_mode = KV_SYNC_NONE;
    o.compaction_interval_secs = 0;
    kv_store *s = NULL;
    int rc = kv_open(dir, &o, &s);
    char key[KEYSPACE_MAX_KEY];
    for (uint64_t i = 0; rc == 0 && i < num; i++) {
        uint64_t k = keyspace_permute(&ks, i);
        keyspace_key(&ks, k, false, key);
        rc = kv_put(s, key, key_size, keyspace_value(&ks, k), value_size);
    }
    int crc = kv_close(s);
    keyspace_free(&ks);
    if (rc == 0)
        rc = crc;
    if (rc != 0) {
        fprintf(stderr, "kvbench-fill: %s: %s\n", dir, kv_strerror(rc));
        return 1;
    }
    return 0;
}
