/*
 * tools.c - verify and dump: the operator's view of a data directory, record
 * by record, as redis-check-aof and mdb_dump give for theirs.
 *
 * Both read the directory through kv_scan(), which opens files read-only and
 * takes no lock, so they work beside a process that has the store open (and
 * the CLI runs them without opening the store). A record being written at
 * that moment shows as an incomplete record at the end of the newest segment;
 * so does a write cut short by a crash, which the next open cuts off. Neither
 * is damage, so verify reports it without counting it. An incomplete record
 * at the end of any older segment is damage: sealed segments are never
 * written again. Zeros at the end of a segment are space preallocated ahead
 * of the log, not damage: dump shows them, verify says nothing of them.
 *
 * A batch (an atomic group of records, one BATCH record on disk) shows as
 * one line for the batch, then one for each record inside it, marked with a
 * "+" before its op. Records count the records of keys, inside batches or
 * not; batches are counted apart.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* Records seen so far, and the incomplete one at the end of the latest
 * segment, if any, until it is known whether a newer segment follows. */
struct tally {
    uint64_t segments; /* segment files, empty ones included */
    uint64_t records;  /* records and damaged regions, batches apart */
    uint64_t batches;
    uint64_t damaged;
    bool started;
    uint64_t segment_id;
    bool torn_pending;
    uint64_t torn_segment;
    uint64_t torn_offset;
    uint64_t torn_length;
};

/* Counts info and returns whether it opens a new segment (after one with an
 * incomplete last record, which makes that record damage). */
static bool tally_record(struct tally *t, const kv_record_info *info)
{
    bool new_segment = !t->started || info->segment_id != t->segment_id;
    t->started = true;
    t->segment_id = info->segment_id;
    if (info->status == KV_REC_ZERO_TAIL)
        return new_segment; /* no record, and no damage */
    if (info->op == KV_OP_BATCH && info->status == KV_REC_OK)
        t->batches++;
    else
        t->records++;
    if (info->status != KV_REC_OK && info->status != KV_REC_TORN)
        t->damaged++;
    return new_segment;
}

/* Counts the segment files of dir. kv_scan() reports records, so a segment
 * without any (a fresh active one) would otherwise go uncounted. */
static uint64_t count_segment_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    uint64_t n = 0;
    const struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (cli_is_segment_name(de->d_name))
            n++;
    closedir(d);
    return n;
}

static bool dir_readable(const struct cli *cli, const char *what)
{
    struct stat st;
    if (stat(cli->dir, &st) != 0) {
        cli_error(cli, "%s: cannot read %s: %s", what, cli->dir, strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_error(cli, "%s: %s is not a directory", what, cli->dir);
        return false;
    }
    return true;
}

static const char *op_name(uint8_t op)
{
    switch (op) {
    case KV_OP_SET:
        return "set";
    case KV_OP_DELETE:
        return "delete";
    case KV_OP_SETX:
        return "setx";
    case KV_OP_BATCH:
        return "batch";
    case KV_OP_META:
        return "meta";
    default:
        return NULL;
    }
}

/* "verify: 2 segments, 10 records, no damage", with ", 1 batch" after the
 * records when there are batches. */
static void print_summary(const char *what, const struct tally *t)
{
    printf("%s: %" PRIu64 " segment%s, %" PRIu64 " record%s, ", what, t->segments,
           t->segments == 1 ? "" : "s", t->records, t->records == 1 ? "" : "s");
    if (t->batches > 0)
        printf("%" PRIu64 " batch%s, ", t->batches, t->batches == 1 ? "" : "es");
    if (t->damaged == 0)
        printf("no damage\n");
    else
        printf("%" PRIu64 " damaged\n", t->damaged);
}

/* Runs fn over every record of the directory (kv_scan) for command what,
 * then counts the segment files. Returns -1 after reporting a failure or an
 * interruption. */
static int scan_directory(const struct cli *cli, const char *what, kv_record_fn fn, struct tally *t)
{
    int rc = kv_scan(cli->dir, fn, t);
    if (rc == 1) {
        cli_error(cli, "%s: interrupted", what);
        return -1;
    }
    if (rc != 0) {
        cli_error(cli, "%s: cannot read %s: %s", what, cli->dir, kv_strerror(rc));
        return -1;
    }
    t->segments = count_segment_files(cli->dir);
    return 0;
}

/* ---- verify */

static void report_torn(uint64_t segment, uint64_t offset, uint64_t length, bool newest)
{
    if (newest)
        printf("segment %" PRIu64 " offset %" PRIu64 ": incomplete record of %" PRIu64
               " bytes at the end of the newest segment (a write in progress or cut short by a "
               "crash; the next open removes it)\n",
               segment, offset, length);
    else
        printf("segment %" PRIu64 " offset %" PRIu64 ": incomplete record of %" PRIu64
               " bytes at the end of a sealed segment\n",
               segment, offset, length);
}

static void report_damage(const kv_record_info *info)
{
    printf("segment %" PRIu64 " offset %" PRIu64 ": ", info->segment_id, info->offset);
    switch (info->status) {
    case KV_REC_BAD_CHECKSUM:
        if (info->op == KV_OP_BATCH) {
            printf("checksum mismatch in a batch of %" PRIu64 " bytes (none of its records "
                   "is applied)",
                   info->length);
            break;
        }
        printf("checksum mismatch in a record of %" PRIu64 " bytes, key ", info->length);
        cli_print_quoted(stdout, info->key, info->key_len);
        break;
    case KV_REC_UNKNOWN_OP:
        if (info->op == KV_OP_SETX || info->op == KV_OP_META)
            printf("%s record this version cannot read, key ", op_name(info->op));
        else
            printf("record with unknown op code %u, key ", info->op);
        cli_print_quoted(stdout, info->key, info->key_len);
        printf(" (this version cannot open the directory)");
        break;
    default:
        printf("%" PRIu64 " bytes that are not a valid record (skipped to the next good one)",
               info->length);
        break;
    }
    printf("\n");
}

static int on_verify_record(const kv_record_info *info, void *arg)
{
    struct tally *t = arg;
    if (cli_interrupted)
        return 1;
    if (tally_record(t, info) && t->torn_pending) {
        report_torn(t->torn_segment, t->torn_offset, t->torn_length, false);
        t->damaged++;
        t->torn_pending = false;
    }
    if (info->status == KV_REC_ZERO_TAIL)
        return 0;
    if (info->status == KV_REC_TORN) {
        t->torn_pending = true;
        t->torn_segment = info->segment_id;
        t->torn_offset = info->offset;
        t->torn_length = info->length;
    } else if (info->status != KV_REC_OK) {
        report_damage(info);
    }
    return 0;
}

/* Reports the state of index.snapshot; returns whether it is damaged. */
static bool verify_snapshot(const struct cli *cli, bool *failed)
{
    kv_snapshot_status st;
    uint64_t keys = 0;
    char reason[256] = "";
    int rc = kv_check_snapshot(cli->dir, &st, &keys, reason, sizeof(reason));
    if (rc != 0) {
        cli_error(cli, "verify: cannot check the snapshot: %s", kv_strerror(rc));
        *failed = true;
        return false;
    }
    switch (st) {
    case KV_SNAPSHOT_VALID:
        printf("snapshot: valid, %" PRIu64 " key%s\n", keys, keys == 1 ? "" : "s");
        return false;
    case KV_SNAPSHOT_ABSENT:
        printf("snapshot: none (the next open replays the whole log)\n");
        return false;
    case KV_SNAPSHOT_FOREIGN:
        printf("snapshot: written by the Go implementation (ignored; the log is replayed)\n");
        return false;
    case KV_SNAPSHOT_INVALID:
        break;
    }
    printf("snapshot: invalid: %s (the next open ignores it and replays the whole log)\n",
           reason[0] ? reason : "no reason given");
    return true;
}

enum cli_status cli_verify(struct cli *cli)
{
    if (!dir_readable(cli, "verify"))
        return CLI_ERROR;
    struct tally t = {0};
    if (scan_directory(cli, "verify", on_verify_record, &t) != 0)
        return CLI_ERROR;
    if (t.torn_pending)
        report_torn(t.torn_segment, t.torn_offset, t.torn_length, true);
    bool failed = false;
    if (verify_snapshot(cli, &failed))
        t.damaged++;
    if (failed)
        return CLI_ERROR;
    print_summary("verify", &t);
    return t.damaged == 0 ? CLI_OK : CLI_NOTFOUND;
}

/* ---- dump */

/* A SETX's attributes after its key: " expires=<ms since the epoch>" and
 * " zstd raw_len=<n> raw_crc=<hex> dict=<id>", then " dense" for a frame a
 * compaction wrote. */
static void print_attributes(const kv_record_info *info)
{
    if (info->attr_flags & KV_ATTR_EXPIRES)
        printf(" expires=%" PRIu64, info->expire_at_ms);
    if (info->attr_flags & KV_ATTR_ZSTD)
        printf(" zstd raw_len=%" PRIu32 " raw_crc=%08" PRIx32 " dict=%" PRIu32 "%s", info->raw_len,
               info->raw_crc, info->dict_id, (info->attr_flags & KV_ATTR_DENSE) ? " dense" : "");
}

static int on_dump_record(const kv_record_info *info, void *arg)
{
    struct tally *t = arg;
    if (cli_interrupted)
        return 1;
    tally_record(t, info);
    printf("%-8" PRIu64 " %-10" PRIu64 " %-9" PRIu64 " ", info->segment_id, info->offset,
           info->length);
    if (!info->key) {
        /* A damaged region has no fields to show. */
        printf("%-7s %-10s %-9s %-13s -\n", "-", "-", "-", kv_record_status_name(info->status));
        return 0;
    }
    const char *name = op_name(info->op);
    char op[16];
    if (name)
        snprintf(op, sizeof(op), "%s%s", info->in_batch ? "+" : "", name);
    else
        snprintf(op, sizeof(op), "%sop%u", info->in_batch ? "+" : "", info->op);
    printf("%-7s %-10" PRIu64 " %08" PRIx32 "  %-13s ", op, info->value_len, info->checksum,
           kv_record_status_name(info->status));
    if (info->op == KV_OP_BATCH)
        printf("-");
    else
        cli_print_quoted(stdout, info->key, info->key_len);
    print_attributes(info);
    printf("\n");
    return 0;
}

enum cli_status cli_dump(struct cli *cli)
{
    if (!dir_readable(cli, "dump"))
        return CLI_ERROR;
    struct tally t = {0};
    printf("%-8s %-10s %-9s %-7s %-10s %-9s %-13s %s\n", "segment", "offset", "length", "op",
           "value_len", "checksum", "status", "key");
    if (scan_directory(cli, "dump", on_dump_record, &t) != 0)
        return CLI_ERROR;
    print_summary("dump", &t);
    return CLI_OK;
}
