/*
 * commands.c - the command table of the kvstore CLI, the dispatch of a line or
 * of the program's arguments to a command, and the commands that work on an
 * open store.
 *
 * Every command returns a cli_status; the dispatcher checks the number of
 * arguments and opens the store before calling it, so a command only checks
 * what is specific to it (a key's length). Replies follow the original
 * implementation word for word (OK, Key not found, Deleted, Compaction
 * finished, the Store Statistics block); what it did not have replies in the
 * same short style. With --connect each store call goes to the server
 * instead (remote.c), and the replies and statuses are the same.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* The most arguments any command takes. */
#define MAX_ARGS 2

/* Stores smaller than this show no index memory per key (see print_stats). */
#define PER_KEY_MIN_KEYS 4096

typedef enum cli_status (*command_fn)(struct cli *cli, const cli_word *args, size_t n);
typedef enum cli_status (*bare_command_fn)(struct cli *cli);

struct command {
    const char *name;
    const char *args; /* for the usage line and help */
    const char *help;
    unsigned min_args, max_args;
    bool value_last;          /* the last argument is the rest of the line */
    bool key_first;           /* the first argument is a key (for completion) */
    bool ttl_option;          /* may start with --ttl SECS (cli->ttl_secs) */
    enum cli_store_use store; /* what the command needs of the session's store */
    command_fn run;           /* a command with arguments... */
    bare_command_fn run_bare; /* ...or one without (max_args 0) */
};

/* ---- helpers */

/* Keys are 1 to KV_MAX_KEY_LEN bytes; saying so beats the engine's EINVAL. */
static bool key_ok(const struct cli *cli, const cli_word *key)
{
    if (key->len == 0) {
        cli_error(cli, "a key cannot be empty");
        return false;
    }
    if (key->len > KV_MAX_KEY_LEN) {
        cli_error(cli, "a key is at most %u bytes; this one has %zu", KV_MAX_KEY_LEN, key->len);
        return false;
    }
    return true;
}

/* Reports an engine failure of command what and says how serious it was. */
static enum cli_status engine_error(const struct cli *cli, const char *what, int rc)
{
    if (rc == CLI_REMOTE_ERROR) {
        cli_error(cli, "%s: %s", what, cli->remote_error);
        return CLI_ERROR;
    }
    cli_error(cli, "%s: %s", what, kv_strerror(rc));
    return rc == KV_EINVAL || rc == KV_ETOOBIG ? CLI_USAGE : CLI_ERROR;
}

/* Reads all of standard input (the value of `set KEY -`) into a new buffer. */
static int read_stdin(char **out, size_t *out_len)
{
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return KV_ENOMEM;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            /* Room for one byte past the largest value tells a value that is
             * too big from one that just fits. */
            size_t limit = (size_t)KV_MAX_VALUE_LEN + 1;
            if (cap == limit) {
                rc = KV_ETOOBIG;
                goto out;
            }
            size_t grown = cap * 2 > limit ? limit : cap * 2;
            char *bigger = realloc(buf, grown);
            if (!bigger) {
                rc = KV_ENOMEM;
                goto out;
            }
            buf = bigger;
            cap = grown;
        }
        ssize_t n = read(STDIN_FILENO, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = KV_EIO;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
out:
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/* Milliseconds since the Unix epoch: the clock expiries are set against. */
static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The longest --ttl taken: about 100 years, as the server's ?ttl=. */
#define TTL_MAX_SECS 3153600000ull

/* Reads the seconds of --ttl into cli->ttl_secs: a whole number from 1 to
 * TTL_MAX_SECS. */
static bool ttl_ok(struct cli *cli, const cli_word *w)
{
    uint64_t secs = 0;
    bool ok = w->len > 0 && w->len <= 10;
    for (size_t i = 0; ok && i < w->len; i++) {
        ok = w->data[i] >= '0' && w->data[i] <= '9';
        secs = secs * 10 + (uint64_t)(w->data[i] - '0');
    }
    if (!ok || secs == 0 || secs > TTL_MAX_SECS) {
        cli_error(cli, "--ttl takes a whole number of seconds from 1 to %llu", TTL_MAX_SECS);
        return false;
    }
    cli->ttl_secs = secs;
    return true;
}

static bool is_ttl_option(const char *data, size_t len)
{
    return len == 5 && memcmp(data, "--ttl", 5) == 0;
}

/* ---- the commands */

static enum cli_status cmd_set(struct cli *cli, const cli_word *args, size_t n)
{
    (void)n;
    if (!key_ok(cli, &args[0]))
        return CLI_USAGE;
    const char *val = args[1].data;
    size_t val_len = args[1].len;
    char *from_stdin = NULL;
    /* Only a one-shot run has a standard input free to carry the value; in a
     * session or a script, "-" is just a one-byte value. */
    if (cli->mode == CLI_ONESHOT && val_len == 1 && val[0] == '-') {
        int rc = read_stdin(&from_stdin, &val_len);
        if (rc != 0)
            return engine_error(cli, "set: reading the value from standard input", rc);
        val = from_stdin;
    }
    int rc;
    if (cli->remote) {
        rc = cli->ttl_secs
                 ? remote_put_ttl(cli, args[0].data, args[0].len, val, val_len, cli->ttl_secs)
                 : remote_put(cli, args[0].data, args[0].len, val, val_len);
    } else {
        kv_op op = {.type = KV_WRITE_PUT,
                    .key = args[0].data,
                    .key_len = args[0].len,
                    .val = val,
                    .val_len = val_len,
                    .expire_at_ms = cli->ttl_secs ? wall_ms() + cli->ttl_secs * 1000u : 0};
        rc = kv_write(cli->store, &op, 1);
    }
    free(from_stdin);
    if (rc != 0)
        return engine_error(cli, "set", rc);
    puts("OK");
    return CLI_OK;
}

static enum cli_status cmd_get(struct cli *cli, const cli_word *args, size_t n)
{
    (void)n;
    if (!key_ok(cli, &args[0]))
        return CLI_USAGE;
    void *val = NULL;
    size_t len = 0;
    int rc = cli->remote ? remote_get(cli, args[0].data, args[0].len, &val, &len)
                         : kv_get(cli->store, args[0].data, args[0].len, &val, &len);
    if (rc == KV_ENOTFOUND) {
        cli_not_found(cli);
        return CLI_NOTFOUND;
    }
    if (rc != 0)
        return engine_error(cli, "get", rc);
    cli_print_value(cli, val, len);
    if (cli->remote)
        free(val);
    else
        kv_free(val);
    return CLI_OK;
}

static enum cli_status cmd_delete(struct cli *cli, const cli_word *args, size_t n)
{
    (void)n;
    if (!key_ok(cli, &args[0]))
        return CLI_USAGE;
    int rc = cli->remote ? remote_delete(cli, args[0].data, args[0].len)
                         : kv_delete(cli->store, args[0].data, args[0].len);
    if (rc == KV_ENOTFOUND) {
        cli_not_found(cli);
        return CLI_NOTFOUND;
    }
    if (rc != 0)
        return engine_error(cli, "delete", rc);
    puts("Deleted");
    return CLI_OK;
}

/* ttl: the seconds left before key expires (rounded as Redis's TTL does),
 * "no expiry", or not found. */
static enum cli_status cmd_ttl(struct cli *cli, const cli_word *args, size_t n)
{
    (void)n;
    if (!key_ok(cli, &args[0]))
        return CLI_USAGE;
    uint64_t left_ms = 0;
    int rc;
    if (cli->remote) {
        rc = remote_ttl(cli, args[0].data, args[0].len, &left_ms);
    } else {
        kv_stat_info st;
        rc = kv_stat(cli->store, args[0].data, args[0].len, &st);
        uint64_t now = wall_ms();
        if (rc == 0 && st.expire_at_ms != 0)
            left_ms = st.expire_at_ms > now ? st.expire_at_ms - now : 0;
        if (rc == 0 && st.expire_at_ms != 0 && left_ms == 0)
            rc = KV_ENOTFOUND; /* expired between the stat and now */
    }
    if (rc == KV_ENOTFOUND) {
        cli_not_found(cli);
        return CLI_NOTFOUND;
    }
    if (rc != 0)
        return engine_error(cli, "ttl", rc);
    if (left_ms == 0)
        puts("no expiry");
    else
        printf("%" PRIu64 "\n", (left_ms + 500) / 1000);
    return CLI_OK;
}

static enum cli_status cmd_exists(struct cli *cli, const cli_word *args, size_t n)
{
    (void)n;
    if (!key_ok(cli, &args[0]))
        return CLI_USAGE;
    int rc = cli->remote ? remote_exists(cli, args[0].data, args[0].len)
                         : kv_exists(cli->store, args[0].data, args[0].len);
    if (rc == KV_ENOTFOUND) {
        puts("false");
        return CLI_NOTFOUND;
    }
    if (rc != 0)
        return engine_error(cli, "exists", rc);
    puts("true");
    return CLI_OK;
}

struct key_walk {
    const struct cli *cli;
    bool print;
    uint64_t count;
};

static int on_key(const void *key, size_t len, void *arg);

/* kv_range's callback: keys only, as kv_list's. */
static int on_range_key(const void *key, size_t len, const void *val, size_t val_len, void *arg)
{
    (void)val;
    (void)val_len;
    return on_key(key, len, arg);
}

static int on_key(const void *key, size_t len, void *arg)
{
    struct key_walk *w = arg;
    /* Ctrl-C in the REPL stops a long listing rather than the program. */
    if (cli_interrupted)
        return 1;
    if (w->print)
        cli_print_key_line(w->cli, key, len);
    w->count++;
    return 0;
}

/* Byte order of keys: memcmp, the shorter first when one begins the other. */
static int key_cmp(const void *a, size_t a_len, const void *b, size_t b_len)
{
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (c != 0)
        return c;
    return a_len < b_len ? -1 : a_len > b_len;
}

/* A range over --connect: the server's SCAN hands the keys of the prefix
 * over in byte order; those before start are passed over, and the walk
 * stops at end. */
struct remote_range_walk {
    const kv_range_opts *r;
    struct key_walk *w;
};

#define RANGE_PAST_END 2

static int on_remote_range_key(const void *key, size_t len, void *arg)
{
    const struct remote_range_walk *rw = arg;
    const kv_range_opts *r = rw->r;
    if (r->end_len && key_cmp(key, len, r->end, r->end_len) >= 0)
        return RANGE_PAST_END;
    if (r->start_len && key_cmp(key, len, r->start, r->start_len) < 0)
        return 0;
    return on_key(key, len, rw->w);
}

static int remote_range(struct cli *cli, const kv_range_opts *r, struct key_walk *w)
{
    struct remote_range_walk rw = {.r = r, .w = w};
    int rc = remote_list(cli, r->prefix, r->prefix_len, 0, on_remote_range_key, &rw);
    return rc == RANGE_PAST_END ? 0 : rc;
}

/* Lists (print) or counts the keys of range r, in order. */
static enum cli_status walk_range(struct cli *cli, const char *what, const kv_range_opts *r,
                                  bool print, uint64_t *count)
{
    struct key_walk w = {.cli = cli, .print = print};
    int rc = cli->remote ? remote_range(cli, r, &w) : kv_range(cli->store, r, on_range_key, &w);
    if (rc == 1) {
        cli_error(cli, "%s: interrupted", what);
        return CLI_ERROR;
    }
    if (rc != 0)
        return engine_error(cli, what, rc);
    /* An empty reply on a terminal looks like a hang; in a pipe it is the
     * right answer. */
    if (print && w.count == 0 && cli->out_tty)
        puts("(no keys)");
    if (count)
        *count = w.count;
    return CLI_OK;
}

/* Lists (print) or counts the keys that start with prefix, in order. */
static enum cli_status walk_keys(struct cli *cli, const char *what, const cli_word *prefix,
                                 bool print, uint64_t *count)
{
    kv_range_opts r = {.prefix = prefix ? prefix->data : NULL,
                       .prefix_len = prefix ? prefix->len : 0};
    return walk_range(cli, what, &r, print, count);
}

static enum cli_status cmd_list(struct cli *cli)
{
    return walk_keys(cli, "list", NULL, true, NULL);
}

static enum cli_status cmd_scan(struct cli *cli, const cli_word *args, size_t n)
{
    (void)n;
    return walk_keys(cli, "scan", &args[0], true, NULL);
}

/* The keys from start on, up to end when given (not included). */
static enum cli_status cmd_range(struct cli *cli, const cli_word *args, size_t n)
{
    kv_range_opts r = {.start = args[0].data, .start_len = args[0].len};
    if (n == 2) {
        r.end = args[1].data;
        r.end_len = args[1].len;
    }
    return walk_range(cli, "range", &r, true, NULL);
}

static enum cli_status cmd_count(struct cli *cli, const cli_word *args, size_t n)
{
    uint64_t count = 0;
    if (n == 1) {
        enum cli_status st = walk_keys(cli, "count", &args[0], false, &count);
        if (st != CLI_OK)
            return st;
    } else if (cli->remote) {
        int rc = remote_count(cli, &count);
        if (rc != 0)
            return engine_error(cli, "count", rc);
    } else {
        kv_stats st;
        int rc = kv_get_stats(cli->store, &st);
        if (rc != 0)
            return engine_error(cli, "count", rc);
        count = st.keys;
    }
    printf("%" PRIu64 "\n", count);
    return CLI_OK;
}

static const char *yes_no(bool b)
{
    return b ? "yes" : "no";
}

static void print_stats(const kv_stats *st)
{
    /* The first six lines are the original's, byte for byte. */
    printf("Store Statistics:\n");
    printf("  Keys: %" PRIu64 "\n", st->keys);
    printf("  Segments: %" PRIu64 "\n", st->segments);
    printf("  Total size: %.2f MB\n", (double)st->disk_bytes / (1024.0 * 1024.0));
    printf("  Active segment: %" PRIu64 "\n", st->active_segment_id);
    printf("  Oldest segment: %" PRIu64 "\n", st->oldest_segment_id);
    printf("  Disk bytes: %" PRIu64 " (live %" PRIu64 ", dead %" PRIu64 ")\n", st->disk_bytes,
           st->live_bytes, st->dead_bytes);
    /* The figure is what the index and the bloom filter have allocated, and
     * they allocate ahead of the keys, in large steps: below a few thousand
     * keys it is mostly their first allocation, and a per-key figure would
     * mislead. */
    printf("  Index memory: %" PRIu64 " bytes reserved", st->index_bytes);
    if (st->keys >= PER_KEY_MIN_KEYS)
        printf(" (%.1f bytes per key)\n", (double)st->index_bytes / (double)st->keys);
    else
        printf(" (allocated ahead of the keys, in steps)\n");
    printf("  Bloom filter: %" PRIu64 " bytes for %" PRIu64 " keys, %" PRIu64
           " misses answered alone, %" PRIu64 " false positives\n",
           st->bloom_bytes, st->bloom_capacity, st->bloom_negatives, st->bloom_false_positives);
    printf("  Checksum errors: %" PRIu64 "\n", st->checksum_errors);
    printf("  Torn bytes cut at open: %" PRIu64 "\n", st->torn_bytes_truncated);
    printf("  Records replayed at open: %" PRIu64 " (snapshot used: %s)\n", st->records_replayed,
           yes_no(st->snapshot_loaded));
    printf("  Compactions: %" PRIu64 " (last %" PRIu64 " ms; read %" PRIu64 ", wrote %" PRIu64
           ", reclaimed %" PRIu64 " bytes)\n",
           st->compactions, st->last_compaction_ms, st->compaction_bytes_read,
           st->compaction_bytes_written, st->compaction_bytes_reclaimed);
    printf("  Operations: %" PRIu64 " puts, %" PRIu64 " deletes, %" PRIu64 " gets, %" PRIu64
           " fsyncs\n",
           st->puts, st->deletes, st->gets, st->fsyncs);
    printf("  Read-only: %s\n", yes_no(st->read_only));
}

static enum cli_status cmd_stats(struct cli *cli)
{
    kv_stats st;
    int rc = cli->remote ? remote_stats(cli, &st) : kv_get_stats(cli->store, &st);
    if (rc != 0)
        return engine_error(cli, "stats", rc);
    print_stats(&st);
    return CLI_OK;
}

/* Runs a maintenance call of the engine, or of the server (command what),
 * and says done. */
static enum cli_status maintain(struct cli *cli, const char *what, int (*call)(kv_store *),
                                int (*remote_call)(struct cli *), const char *done)
{
    int rc = cli->remote ? remote_call(cli) : call(cli->store);
    if (rc != 0)
        return engine_error(cli, what, rc);
    puts(done);
    return CLI_OK;
}

static enum cli_status cmd_compact(struct cli *cli)
{
    return maintain(cli, "compact", kv_compact, remote_compact, "Compaction finished");
}

static enum cli_status cmd_snapshot(struct cli *cli)
{
    return maintain(cli, "snapshot", kv_save_snapshot, remote_snapshot, "Snapshot saved");
}

static enum cli_status cmd_help(struct cli *cli)
{
    (void)cli;
    cli_print_commands(stdout);
    return CLI_OK;
}

static enum cli_status cmd_quit(struct cli *cli)
{
    cli->quit = true;
    return CLI_OK;
}

static const struct command commands[] = {
    {"set", "<key> <value>",
     "store value under key (the value is the rest of the line); set --ttl <secs> <key> <value> "
     "expires it",
     2, 2, true, true, true, STORE_WRITE, cmd_set, NULL},
    {"get", "<key>", "print the value of key", 1, 1, false, true, false, STORE_READ, cmd_get, NULL},
    {"delete", "<key>", "remove key", 1, 1, false, true, false, STORE_WRITE, cmd_delete, NULL},
    {"exists", "<key>", "print true if key is in the store, false if not", 1, 1, false, true, false,
     STORE_READ, cmd_exists, NULL},
    {"ttl", "<key>", "print the seconds before key expires, or no expiry", 1, 1, false, true, false,
     STORE_READ, cmd_ttl, NULL},
    {"list", "", "print every key, sorted", 0, 0, false, false, false, STORE_READ, NULL, cmd_list},
    {"scan", "<prefix>", "print the keys that start with prefix, sorted", 1, 1, false, true, false,
     STORE_READ, cmd_scan, NULL},
    {"range", "<start> [end]", "print the keys from start up to end (not included), sorted", 1, 2,
     false, true, false, STORE_READ, cmd_range, NULL},
    {"count", "[prefix]", "print the number of keys (that start with prefix)", 0, 1, false, true,
     false, STORE_READ, cmd_count, NULL},
    {"stats", "", "show the store's statistics", 0, 0, false, false, false, STORE_READ, NULL,
     cmd_stats},
    {"compact", "", "rewrite live records and reclaim the space of dead ones", 0, 0, false, false,
     false, STORE_READ, NULL, cmd_compact},
    {"snapshot", "", "save the index snapshot now (quit saves it too)", 0, 0, false, false, false,
     STORE_READ, NULL, cmd_snapshot},
    {"verify", "", "check every record and the snapshot; list the damaged ones", 0, 0, false, false,
     false, STORE_NONE, NULL, cli_verify},
    {"dump", "", "list every record in log order, with its checksum status", 0, 0, false, false,
     false, STORE_NONE, NULL, cli_dump},
    {"backup", "<src> <dest>", "copy data directory src into dest, also beside a running server", 2,
     2, false, false, false, STORE_NONE, cli_backup, NULL},
    {"restore", "<src> <dest>", "copy backup src into dest, a data directory to serve from", 2, 2,
     false, false, false, STORE_NONE, cli_restore, NULL},
    {"help", "", "show this list", 0, 0, false, false, false, STORE_NONE, NULL, cmd_help},
    {"quit", "", "save the snapshot and leave (Ctrl-D too)", 0, 0, false, false, false, STORE_NONE,
     NULL, cmd_quit},
    {"exit", "", "the same as quit", 0, 0, false, false, false, STORE_NONE, NULL, cmd_quit},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Command names are matched without regard to case, as in redis-cli. */
static const struct command *find_command(const char *name, size_t len)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strlen(commands[i].name) == len && strncasecmp(commands[i].name, name, len) == 0)
            return &commands[i];
    return NULL;
}

const char *cli_command_name(size_t i)
{
    return i < NCOMMANDS ? commands[i].name : NULL;
}

bool cli_command_takes_key(const char *name, size_t len)
{
    const struct command *cmd = find_command(name, len);
    return cmd && cmd->key_first;
}

/* "get <key>", or "list" for a command without arguments. */
static const char *syntax_of(const struct command *cmd, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%s", cmd->name, cmd->args[0] ? " " : "", cmd->args);
    return buf;
}

void cli_print_commands(FILE *f)
{
    fprintf(f, "Commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char syntax[64];
        fprintf(f, "  %-20s %s\n", syntax_of(&commands[i], syntax, sizeof(syntax)),
                commands[i].help);
    }
    fprintf(f, "Quote keys and values that hold spaces: set \"my key\" \"a value\". Inside double\n"
               "quotes, \\\" \\\\ \\n \\t \\r \\0 and \\xHH are escapes; single quotes take "
               "text as it is.\n");
}

static enum cli_status usage(const struct cli *cli, const struct command *cmd)
{
    char syntax[64];
    syntax_of(cmd, syntax, sizeof(syntax));
    if (cli->mode == CLI_ONESHOT) {
        cli_error(cli, "usage: kvstore [--data-dir DIR] %s", syntax);
    } else if (cli->mode == CLI_SCRIPT) {
        cli_error(cli, "usage: %s", syntax);
    } else {
        /* At the prompt a usage line is help, not an error. */
        fflush(stdout);
        fprintf(stderr, "usage: %s\n", syntax);
    }
    return CLI_USAGE;
}

static const struct command *lookup(const struct cli *cli, const char *name, size_t len)
{
    const struct command *cmd = find_command(name, len);
    if (!cmd)
        cli_error(cli, "unknown command '%.*s' (%s)", (int)(len > 40 ? 40 : len), name,
                  cli->mode == CLI_ONESHOT ? "kvstore --help lists them"
                                           : "type help for the list");
    return cmd;
}

/* Runs cmd once its n arguments are known to fit it. */
static enum cli_status run(struct cli *cli, const struct command *cmd, const cli_word *args,
                           size_t n)
{
    if (cmd->store != STORE_NONE && !cli_ready(cli, cmd->name, cmd->store))
        return CLI_ERROR;
    return cmd->run_bare != NULL ? cmd->run_bare(cli) : cmd->run(cli, args, n);
}

/* Reads the arguments of cmd from p into args; returns their number, or -1
 * after reporting a syntax error or a wrong count. */
static int read_args(const struct cli *cli, const struct command *cmd, cli_parser *p,
                     cli_word *args)
{
    size_t n = 0;
    while (n < cmd->max_args) {
        bool rest = cmd->value_last && n + 1 == cmd->max_args;
        int rc = rest ? cli_parser_rest(p, &args[n]) : cli_parser_next(p, &args[n]);
        if (rc < 0) {
            cli_error(cli, "%s (column %zu)", p->error, p->error_pos + 1);
            return -1;
        }
        if (rc == 0)
            break;
        n++;
    }
    cli_word extra;
    if (n < cmd->min_args || (n == cmd->max_args && cli_parser_next(p, &extra) != 0)) {
        usage(cli, cmd);
        return -1;
    }
    return (int)n;
}

static bool blank_or_comment(const char *line, size_t len)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    return i == len || line[i] == '#';
}

enum cli_status cli_run_line(struct cli *cli, const char *line, size_t len)
{
    if (blank_or_comment(line, len))
        return CLI_OK;
    cli_parser p;
    if (cli_parser_init(&p, line, len) != 0) {
        cli_error(cli, "%s", kv_strerror(KV_ENOMEM));
        return CLI_ERROR;
    }
    enum cli_status st = CLI_USAGE;
    cli_word name;
    cli_word args[MAX_ARGS];
    int rc = cli_parser_next(&p, &name);
    if (rc < 0) {
        cli_error(cli, "%s (column %zu)", p.error, p.error_pos + 1);
        goto out;
    }
    const struct command *cmd = lookup(cli, name.data, name.len);
    if (!cmd)
        goto out;
    if (cmd->ttl_option) {
        /* "--ttl SECS" before the arguments; anything else is the key. */
        size_t pos = p.pos, out_len = p.out_len;
        cli_word opt, secs;
        if (cli_parser_next(&p, &opt) == 1 && is_ttl_option(opt.data, opt.len)) {
            if (cli_parser_next(&p, &secs) != 1) {
                usage(cli, cmd);
                goto out;
            }
            if (!ttl_ok(cli, &secs))
                goto out;
        } else {
            p.pos = pos;
            p.out_len = out_len;
        }
    }
    int n = read_args(cli, cmd, &p, args);
    if (n < 0)
        goto out;
    st = run(cli, cmd, args, (size_t)n);
out:
    cli->ttl_secs = 0;
    cli_parser_free(&p);
    return st;
}

/* Joins words[0..n-1] with single spaces into a new buffer. */
static char *join_words(char **words, int n, size_t *out_len)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += strlen(words[i]) + (i > 0);
    char *buf = malloc(len + 1);
    if (!buf)
        return NULL;
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0)
            buf[at++] = ' ';
        size_t w = strlen(words[i]);
        memcpy(buf + at, words[i], w);
        at += w;
    }
    buf[at] = '\0';
    *out_len = at;
    return buf;
}

enum cli_status cli_run_argv(struct cli *cli, int n, char **words)
{
    const struct command *cmd = lookup(cli, words[0], strlen(words[0]));
    if (!cmd)
        return CLI_USAGE;
    if (cmd->ttl_option && n > 1 && is_ttl_option(words[1], strlen(words[1]))) {
        if (n < 3)
            return usage(cli, cmd);
        cli_word secs = {.data = words[2], .len = strlen(words[2])};
        if (!ttl_ok(cli, &secs))
            return CLI_USAGE;
        words[2] = words[0]; /* the command's name, then its arguments */
        enum cli_status st = cli_run_argv(cli, n - 2, words + 2);
        cli->ttl_secs = 0;
        return st;
    }
    size_t nargs = (size_t)n - 1;
    bool joins = cmd->value_last && nargs > cmd->max_args;
    if (nargs < cmd->min_args || (nargs > cmd->max_args && !joins))
        return usage(cli, cmd);
    cli_word args[MAX_ARGS];
    size_t count = joins ? cmd->max_args : nargs;
    for (size_t i = 0; i < count; i++)
        args[i] = (cli_word){.data = words[i + 1], .len = strlen(words[i + 1])};
    char *joined = NULL;
    if (joins) {
        /* `kvstore set k hello world` stores "hello world", as echo would print it. */
        size_t last = cmd->max_args - 1;
        joined = join_words(words + 1 + last, (int)(nargs - last), &args[last].len);
        if (!joined) {
            cli_error(cli, "%s", kv_strerror(KV_ENOMEM));
            return CLI_ERROR;
        }
        args[last].data = joined;
    }
    enum cli_status st = run(cli, cmd, args, count);
    free(joined);
    return st;
}
