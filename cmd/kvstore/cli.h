/*
 * cli.h - what the parts of the kvstore program share: the session state, the
 * status every command returns (which is also the exit status of a one-shot
 * run), and the functions each file offers the others.
 *
 *   main.c      arguments, the three ways to run (REPL, script, one-shot)
 *   repl.c      the interactive loop: libedit, history, signals
 *   complete.c  tab completion of command names and keys
 *   commands.c  the command table, dispatch, and each store command
 *   tools.c     verify and dump, which read a directory without opening it
 *   backup.c    backup and restore, which copy a directory without opening
 *               it (beside a running server)
 *   session.c   the store of the session: opened on first use, closed at the
 *               end, and the engine's log
 *   remote.c    the store of a running volume-server (--connect), over RESP
 *   output.c    how replies, values and messages are written
 *   parse.c     the command-line tokenizer
 *
 * Calls go down that list, never back up: main.c runs the REPL, the REPL
 * runs commands, and commands use the session, the output and the parser.
 */
#ifndef KVSTORE_CLI_H
#define KVSTORE_CLI_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kvstore.h"
#include "parse.h"

/* The outcome of a command, ordered by severity: a script exits with the
 * highest it met, a one-shot run with the one it got. */
enum cli_status {
    CLI_OK = 0,
    CLI_NOTFOUND = 1, /* a missing key, exists -> false, damage found by verify */
    CLI_USAGE = 2,    /* unknown command, wrong arguments, bad quoting */
    CLI_ERROR = 3     /* the store failed or could not be opened */
};

enum cli_mode {
    CLI_REPL,   /* standard input is a terminal: prompt, line editing */
    CLI_SCRIPT, /* commands read from a pipe or file, no prompt */
    CLI_ONESHOT /* one command from the program's arguments */
};

/* Engine log lines held back while the store opens, so that a failed open can
 * say why in one line instead of echoing the engine's report first. */
struct cli_log {
    pthread_mutex_t mu;
    bool holding;
    char held[512];
};

/* A code of the remote functions: the server answered with an error, or the
 * connection failed; cli->remote_error has the text. */
#define CLI_REMOTE_ERROR (-1000)

struct redisContext;

struct cli {
    const char *dir;             /* the data directory */
    const char *connect;         /* --connect HOST:PORT: the store of a running server */
    struct redisContext *remote; /* the connection to it, once open */
    char remote_error[512];
    enum cli_mode mode; /* how commands arrive */
    kv_store *store;    /* NULL until a command needs it (cli_store) */
    bool open_failed;   /* opening was tried and failed: do not try again */
    bool quit;          /* quit or exit ran */
    bool out_tty;       /* stdout is a terminal: values are shown escaped */
    unsigned long line; /* in a script: the line being run, for messages */
    uint64_t ttl_secs;  /* set --ttl SECS: the command being run's, 0: none */
    struct cli_log log;
    sigset_t engine_blocked; /* signals the engine's threads must not take */
};

/* Set from the SIGINT handler in the REPL; long listings poll it to stop
 * early. A program-wide flag because a signal handler can reach no other;
 * defined in session.c, below both its writer and its readers. */
extern volatile sig_atomic_t cli_interrupted;

/* ---- session.c */

/* What a command needs of the session's store. */
enum cli_store_use {
    STORE_NONE,  /* nothing: help, verify, dump, backup */
    STORE_READ,  /* a store that exists: reads never create one */
    STORE_WRITE, /* a store, created (directory and all) when missing */
};

/* Opens the store on first use and returns it, or prints why it cannot and
 * returns NULL. For STORE_READ, a directory that is missing or holds no
 * segment file is refused (naming the directory and command what) without
 * being created, and a later command may still create it. The engine's
 * threads start with cli->engine_blocked blocked. */
kv_store *cli_store(struct cli *cli, const char *what, enum cli_store_use use);

/* Whether name is a segment file's: segment-<N>.dat (DESIGN.md section 3). */
bool cli_is_segment_name(const char *name);

/* Closes the store if it is open (which saves the snapshot), or the
 * connection to the server. Returns kv_close's code, after printing why it
 * failed. */
int cli_store_close(struct cli *cli);

/* The options the CLI gives the engine: the defaults, with the engine's
 * warnings and errors written to stderr. */
void cli_engine_options(struct cli *cli, kv_options *opts);

/* The store is usable: opened as cli_store opens it for use, or, with --connect, the server
 * connected. Prints why not and returns false. */
bool cli_ready(struct cli *cli, const char *what, enum cli_store_use use);

/* ---- remote.c: each does what the engine call of its name does, on the
 * server of --connect; codes are the engine's or CLI_REMOTE_ERROR. */
int remote_open(struct cli *cli);
void remote_close(struct cli *cli);
int remote_put(struct cli *cli, const void *key, size_t key_len, const void *val, size_t len);

/* SET key val EX secs: a value that expires secs seconds later. */
int remote_put_ttl(struct cli *cli, const void *key, size_t key_len, const void *val, size_t len,
                   uint64_t secs);

/* PTTL key: *ms is the time left (ms), or 0 for a key without an expiry;
 * KV_ENOTFOUND for an absent key. */
int remote_ttl(struct cli *cli, const void *key, size_t key_len, uint64_t *ms);
/* *val is malloc'ed (free, not kv_free). */
int remote_get(struct cli *cli, const void *key, size_t key_len, void **val, size_t *len);
int remote_delete(struct cli *cli, const void *key, size_t key_len);
int remote_exists(struct cli *cli, const void *key, size_t key_len);
int remote_count(struct cli *cli, uint64_t *count);
/* Calls fn for the keys that start with prefix, in order, at most limit (0:
 * all); returns fn's non-zero value if it stops. */
int remote_list(struct cli *cli, const void *prefix, size_t prefix_len, size_t limit, kv_key_fn fn,
                void *ctx);
int remote_stats(struct cli *cli, kv_stats *st);
int remote_snapshot(struct cli *cli);
int remote_compact(struct cli *cli);

/* ---- commands.c */

/* Runs one command line (without its newline). Empty lines and lines whose
 * first non-blank byte is # do nothing. */
enum cli_status cli_run_line(struct cli *cli, const char *line, size_t len);

/* Runs the command named by args[0] with args[1..n-1] as its arguments,
 * which are taken as they are (no quote processing). Extra arguments of a
 * command that takes a value join the value, separated by one space. */
enum cli_status cli_run_argv(struct cli *cli, int n, char **args);

/* The name of the i-th command (for completion), NULL past the last. */
const char *cli_command_name(size_t i);

/* Whether the command's first argument is a key (for completion). */
bool cli_command_takes_key(const char *name, size_t len);

/* Prints the list of commands to f. */
void cli_print_commands(FILE *f);

/* ---- tools.c */

enum cli_status cli_verify(struct cli *cli);
enum cli_status cli_dump(struct cli *cli);

/* ---- backup.c: args[0] is the directory to copy, args[1] the new one */

enum cli_status cli_backup(struct cli *cli, const cli_word *args, size_t n);
enum cli_status cli_restore(struct cli *cli, const cli_word *args, size_t n);

/* ---- output.c */

/* An error or warning for the user, on stderr, prefixed as the mode wants
 * ("error: " in the REPL, "kvstore: line N: " in a script, "kvstore: " in a
 * one-shot run). */
void cli_error(const struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The reply to a lookup that found nothing: "Key not found" on stdout, as the
 * original, except in a one-shot run, where stdout is for values only and the
 * reply goes to stderr. */
void cli_not_found(const struct cli *cli);

/* Writes a value read from the store. On a terminal: control bytes escaped
 * (\n, \t, \xHH) and a newline after it. Otherwise the bytes unchanged, and a
 * newline after them except in a one-shot run (so that a value round-trips
 * through `kvstore get k > file`). */
void cli_print_value(const struct cli *cli, const void *val, size_t len);

/* Writes a key on a line of its own after two spaces (the original's list
 * format), escaped on a terminal as values are. */
void cli_print_key_line(const struct cli *cli, const void *key, size_t len);

/* Writes bytes between double quotes in the syntax the parser reads back:
 * " and \ escaped, control bytes as \n \r \t \0 \xHH. */
void cli_print_quoted(FILE *f, const void *data, size_t len);

/* Writes bytes with control bytes escaped as in cli_print_quoted, no quotes. */
void cli_print_escaped(FILE *f, const void *data, size_t len);

#endif /* KVSTORE_CLI_H */
