/*
 * server.h - what the files of src/resp/ share: the server, its event
 * loops, a connection, a deferred command, and the command table.
 *
 * Threads. Each loop is one thread running a libuv loop; a connection lives
 * on one loop for its whole life and only that thread touches it, except
 * for the fields CLIENT LIST reads, which are written under the loop's lock
 * (or are atomics). A deferred command keeps its own copy of its arguments
 * and is one of two kinds: a write, submitted to the engine with
 * kv_write_async (no thread waits for it; its completion runs on the
 * engine's commit thread, write.c), or a job (SAVE, FLUSHDB, KEYS, SCAN)
 * run on the job pool of src/core. Either comes back to its loop through
 * the loop's done list and uv_async_send; its reply is then placed in its
 * connection's order.
 *
 * Order of replies. A connection's commands run in arrival order. A command
 * that is deferred takes a slot in the connection's queue of pending
 * commands; later writes queue behind it (writes are submitted at once, and
 * the engine sequences them in submission order; a job waits until
 * everything before it is done), and any other command waits until the
 * queue is empty, so that a read sees the connection's own writes. Replies
 * leave strictly in the order the commands came.
 */
#ifndef RESP_SERVER_H
#define RESP_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "app.h"
#include "pool.h"
#include "proto.h"
#include "resp.h"

struct resp_conn;
struct resp_pending;
struct resp_tx;

struct resp_loop {
    struct resp_server *srv;
    unsigned index;
    uv_loop_t uv;
    uv_tcp_t listener;
    uv_async_t wake; /* completions arrived, or the server is stopping */
    uv_timer_t tick; /* once a second: idle connections, rates */
    pthread_t thread;
    int listen_fd;
    bool listening;
    bool stop_seen;             /* the loop has acted on srv->stopping */
    struct vs_cmd_block *stats; /* this loop's command counters */
    pthread_mutex_t lock;       /* done list; conns list; conn->name */
    struct resp_pending *done_head, *done_tail;
    struct resp_conn *conns; /* every open connection of the loop */
    uint64_t last_commands;  /* loop 0: commands at the last tick, for ops/sec */
};

struct resp_server {
    struct vs_app *app;
    const struct vs_config *cfg;
    unsigned port;
    unsigned n_loops;
    struct resp_loop *loops;
    struct vs_pool *pool;
    atomic_uint_fast64_t writes_in_flight; /* deferred writes not yet back from the engine */
    bool durable;      /* SYNC_MODE=always: a write's reply waits for its fdatasync */
    uint64_t max_bulk; /* MAX_REQUEST_SIZE_MB in bytes */
    uint64_t output_limit;
    uint64_t query_limit; /* bytes one unfinished command may take */
    atomic_uint_fast64_t next_client_id;
    atomic_uint_fast64_t open_conns;
    atomic_bool stopping;
    atomic_bool force_close;
    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond; /* a connection closed while stopping */
    /* background jobs (BGSAVE, BGREWRITEAOF) */
    atomic_bool bgsave_running, rewrite_running;
    struct vs_job bgsave_job, rewrite_job;
    atomic_uint_fast64_t last_save_unix; /* seconds since the epoch of the last snapshot */
    atomic_int last_save_ok;
    atomic_int last_rewrite_ok;
    atomic_uint_fast64_t changes_since_save;
    char run_id[41];
};

struct resp_conn {
    uv_tcp_t tcp;
    struct resp_loop *loop;
    struct resp_conn *prev, *next; /* in loop->conns, under loop->lock */
    uint64_t id;
    char addr[64];  /* the peer, "ip:port" */
    char laddr[64]; /* our end */
    uint64_t created_ms;
    atomic_uint_fast64_t last_active_ms;
    atomic_uint last_cmd; /* command index + 1 of the last command, 0 none */
    char *name;           /* CLIENT SETNAME, under loop->lock */
    char *lib_name, *lib_ver;
    int proto; /* written under loop->lock */
    /* What CLIENT LIST shows of the buffers, as of the last time the
     * connection ran (its own fields are its loop's alone). */
    atomic_size_t view_qbuf, view_qbuf_free, view_pending, view_omem;
    atomic_long view_multi; /* commands queued inside MULTI, -1 outside one */
    bool authed;

    /* input */
    char *in;
    size_t in_len, in_cap;
    size_t need;      /* bytes the unfinished command still needs, when known */
    size_t reserved;  /* of MAX_BODY_MEMORY_MB: in_cap when over BUF_KEEP, else 0 */
    bool over_budget; /* the input could not grow within that budget */
    struct resp_parser parser;
    bool have_cmd; /* a parsed command waits for the pending queue to drain */
    uint64_t cmd_start_ns;

    /* output */
    struct growbuf out;     /* replies not yet handed to the socket */
    struct growbuf sending; /* the bytes of the write in progress */
    uv_write_t wreq;
    bool writing;

    /* deferred commands, in arrival order */
    struct resp_pending *pend_head, *pend_tail;
    size_t n_pending;
    bool running;    /* a pending job is on the pool */
    size_t n_writes; /* pending writes submitted to the engine, not yet back */

    /* MULTI ... EXEC, and WATCH (multi.c) */
    bool multi;       /* between MULTI and EXEC or DISCARD */
    bool multi_dirty; /* a command was refused while queueing: EXEC aborts */
    struct resp_tx_cmd *queued;
    size_t n_queued, queued_cap, queued_bytes;
    struct resp_watch *watched;
    size_t n_watched;

    bool reading;
    bool closing;           /* uv_close was called */
    bool close_after_write; /* QUIT, a protocol error: close once out is sent */
    bool draining;          /* the server stops: no more input is read */
};

/* A deferred command: a copy of its arguments, and its reply. */
struct resp_pending {
    struct resp_pending *next;      /* in the connection's queue */
    struct resp_pending *done_next; /* in the loop's done list */
    struct resp_conn *conn;
    struct resp_server *srv;
    struct vs_job job;
    void (*run)(struct resp_pending *p); /* a job: the work on the pool, fills reply */
    struct growbuf reply;
    int proto;
    size_t cmd;
    uint64_t start_ns;
    bool submitted, done;
    size_t argc;
    char **argv;
    size_t *argl;
    /* A write (write.c): ops go to kv_write_async as one batch; finish
     * makes the reply from the outcome, or a transaction view (tx) runs its
     * commands again when a condition it read failed. */
    bool is_write;
    kv_op *ops;
    size_t n_ops;
    void (*finish)(struct resp_pending *p, int rc);
    struct resp_tx *tx;
    unsigned attempts;
};

/* A command of a transaction, or a write command run as one (write.c): its
 * arguments (one allocation, owned) and the function that runs it against
 * the transaction's view of the store. */
typedef void (*resp_prog_fn)(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
struct resp_tx_cmd {
    resp_prog_fn prog;
    size_t argc;
    char **argv;
    size_t *argl;
};

/* A key watched by WATCH: its state then (absent, or the CRC-32 of its
 * value). */
struct resp_watch {
    char *key;
    size_t len;
    bool present;
    uint32_t crc;
};

/* One command being run on its loop. */
struct resp_ctx {
    struct resp_server *srv;
    struct resp_conn *conn;
    const struct resp_command *cmd;
    size_t cmd_index;
    size_t argc;
    char **argv; /* argv[i] is argl[i] bytes, not NUL-terminated */
    size_t *argl;
    struct growbuf *out; /* where the reply goes */
    int proto;
};

enum resp_cmd_flags {
    CMD_WRITE = 1u << 0,    /* changes the store: may queue behind pending writes */
    CMD_READONLY = 1u << 1, /* reads the store */
    CMD_NOAUTH = 1u << 2,   /* allowed before AUTH */
    CMD_ADMIN = 1u << 3,
    CMD_FAST = 1u << 4,
    CMD_RMW = 1u << 6,   /* reads before it writes: waits for the pending queue, as a read */
    CMD_TXCTL = 1u << 7, /* runs at once inside MULTI (EXEC DISCARD MULTI WATCH QUIT RESET) */
};

struct resp_command {
    const char *name; /* lower case */
    int arity;        /* Redis's: n exactly, -n at least n (the name counts) */
    unsigned flags;
    int first_key, last_key, key_step;
    void (*fn)(struct resp_ctx *c);
    const char *group;
    const char *summary;
    resp_prog_fn prog; /* how it runs inside EXEC; NULL: not allowed in MULTI */
};

/* ---- commands.c */
extern const struct resp_command resp_commands[];
extern const size_t resp_n_commands;
/* The command named name (any case), or NULL. */
const struct resp_command *resp_command_find(const char *name, size_t len);
/* Runs one parsed command of conn; returns false when it cannot run yet
 * (it must wait for the pending queue), true when it ran. */
bool resp_dispatch(struct resp_conn *conn, size_t argc, char **argv, size_t *argl);

/* ---- conn.c */
void resp_conn_accept(struct resp_loop *loop);
/* Appends an answered command (its reply taken from *reply) to conn's
 * queue, behind the pending ones, so that its reply keeps its place; cmd is
 * its index for the statistics (VS_CMD_MAX: none). */
void resp_queue_answered(struct resp_conn *conn, struct growbuf *reply, size_t cmd);
/* Moves finished deferred commands of the loop into their connections. */
void resp_loop_collect(struct resp_loop *loop);
/* The loop's connections close: idle ones (tick) or all (stop). */
void resp_loop_sweep_idle(struct resp_loop *loop, uint64_t now_ms);
void resp_loop_drain(struct resp_loop *loop);
void resp_loop_close_all(struct resp_loop *loop);
/* Defers the command of c to the pool with run; its reply comes later, in
 * order. Returns false (and replies with an error) when memory runs out. */
bool resp_defer(struct resp_ctx *c, void (*run)(struct resp_pending *p));
/* A pending command holding a copy of c's arguments, not yet queued (NULL,
 * after replying with an error, when memory runs out). */
struct resp_pending *resp_pending_new(struct resp_ctx *c);
void resp_pending_free(struct resp_pending *p);
/* Queues p, a write (is_write, with ops or tx), behind conn's pending
 * commands and submits it as soon as nothing before it forbids. */
void resp_queue_write(struct resp_conn *conn, struct resp_pending *p);
/* From any thread: p is done (its reply set); its loop takes it back. */
void resp_pending_finished(struct resp_pending *p);
/* From any thread: p is done; when it wrote (its batch ends at seg, end in
 * the log) and MIN_REPLICA_ACKS asks for it, its reply waits for the
 * replicas (-NOREPLICAS past the timeout), without holding the thread. */
void resp_pending_replicate(struct resp_pending *p, bool wrote, uint64_t seg, uint64_t end);

/* ---- write.c: writes through the engine's kv_write_async */

/* Submits p's batch (p->ops, or the ops of p->tx); on failure to submit,
 * sets p's reply and returns false (p is then done). */
bool resp_write_submit(struct resp_pending *p);
/* Waits until no deferred write of srv is in the engine. */
void resp_writes_wait_idle(struct resp_server *srv);
/* Runs p, a blind write of c (ops and finish set), and replies: at once
 * here when the store does not sync each write and the connection neither
 * waits for anything nor has more commands buffered (a lone write gains
 * nothing from waiting for company), else through resp_queue_write. */
void resp_write_blind(struct resp_ctx *c, struct resp_pending *p);
/* Runs c's command as a transaction of one command (its prog), so that
 * what it reads and what it writes are one atomic batch. */
void resp_run_program(struct resp_ctx *c);
/* Runs the queued commands of c's connection as one atomic batch (EXEC),
 * with CHECKs for its watched keys; the lists move into the write. */
void resp_run_exec(struct resp_ctx *c);
void resp_tx_free(struct resp_tx *t);

/* The view a command of a transaction has: the store as it was when the
 * transaction ran, with the transaction's own earlier writes. A read is
 * recorded, so that the batch carries a condition that the key is still as
 * read when the batch is sequenced. Keys and values passed in must live as
 * long as the transaction (its commands' arguments do). */
/* 1 and *val, *len (valid until the key is written again) when the key has
 * a value, 0 when not (or the key has no valid length), or a KV_E... code. */
int resp_tx_get(struct resp_tx *t, const char *key, size_t len, const char **val, size_t *vlen);
/* Sets key to val; with copy the bytes are copied (else borrowed). Returns
 * 0, KV_EINVAL (a key of no valid length) or KV_ENOMEM. */
int resp_tx_put(struct resp_tx *t, const char *key, size_t len, const char *val, size_t vlen,
                bool copy);
/* resp_tx_put with an expiry: expire_at_ms (ms since the epoch, 0 none), or
 * with keep the expiry the key has (as INCR and APPEND keep it). */
int resp_tx_put_expiring(struct resp_tx *t, const char *key, size_t len, const char *val,
                         size_t vlen, bool copy, uint64_t expire_at_ms, bool keep);
/* Deletes key. Returns 0, KV_EINVAL or KV_ENOMEM. */
int resp_tx_del(struct resp_tx *t, const char *key, size_t len);
/* 1 and the key's expiry in *at_ms (ms since the epoch, 0 none) when the
 * key has a value, 0 when not, or a KV_E... code. Reads the store's expiry
 * (not the value) unless the view wrote one; the batch checks it. */
int resp_tx_expiry(struct resp_tx *t, const char *key, size_t len, uint64_t *at_ms);
/* Sets the expiry of key (which must have a value: else KV_ENOTFOUND) to
 * at_ms, 0 none, and keeps its value; a time that has passed deletes the
 * key, as in Redis. Returns 0 or a KV_E... code. */
int resp_tx_set_expiry(struct resp_tx *t, const char *key, size_t len, uint64_t at_ms);
/* Where the command's reply goes, and the protocol of the connection. */
struct growbuf *resp_tx_out(struct resp_tx *t);
int resp_tx_proto(const struct resp_tx *t);

/* ---- multi.c: MULTI EXEC DISCARD WATCH UNWATCH */

/* Queues c's command inside MULTI (its reply is +QUEUED, or an error that
 * makes EXEC abort). */
void resp_multi_queue(struct resp_ctx *c);
/* Forgets the connection's transaction and watched keys. */
void resp_multi_reset(struct resp_conn *conn);
/* Milliseconds on CLOCK_REALTIME / CLOCK_MONOTONIC. */
uint64_t resp_unix_ms(void);
uint64_t resp_mono_ms(void);

/* ---- info.c */
void resp_info(struct resp_ctx *c);

/* ---- helpers for commands (commands.c) */
bool resp_arg_is(const struct resp_ctx *c, size_t i, const char *word);
/* Parses argv[i] as a whole signed 64-bit number; false when it is not. */
bool resp_arg_ll(const struct resp_ctx *c, size_t i, long long *out);
/* The same for len bytes at s (Redis's string2ll: no spaces, no +, no
 * leading zeros). */
bool resp_parse_ll(const char *s, size_t len, long long *out);
/* Replies with the error of an engine code. */
void resp_reply_kv_error(struct growbuf *out, int rc);
/* Replies "wrong number of arguments" for c's command. */
void resp_reply_arity(struct resp_ctx *c);
void resp_reply_syntax(struct resp_ctx *c);

/* ---- expiry (cmd_expire.c) */

/* What SET's expiry options say. */
struct resp_expiry {
    uint64_t at_ms; /* absolute, ms since the epoch; 0: none */
    bool keep;      /* KEEPTTL */
    bool given;     /* an expiry option was seen (a second is a syntax error) */
};
#define RESP_EXPIRY_SYNTAX      (-1)
#define RESP_EXPIRY_INVALID     (-2) /* "invalid expire time" */
#define RESP_EXPIRY_NOT_INTEGER (-3)

/* Argument i of c as one of SET's expiry options (EX, PX, EXAT, PXAT with
 * their number, KEEPTTL), into *e, at time now: the arguments it takes (1
 * or 2), 0 when it is none of them, or a RESP_EXPIRY_ code. Replies
 * nothing. */
int resp_set_expiry_option(const struct resp_ctx *c, size_t i, uint64_t now, struct resp_expiry *e);
/* A write of key argument 1 to the value of argument val_arg with no read
 * (SET without GET, SETEX): one PUT under cond with expiry ex; replies +OK,
 * or a null when cond fails. */
void resp_put_blind(struct resp_ctx *c, size_t val_arg, kv_cond cond, const struct resp_expiry *ex);
/* TTL's reply (PTTL's when !seconds): -2 when the key is not present, -1
 * when it has no expiry (at_ms 0), else the time left. */
void resp_reply_ttl(struct growbuf *out, int present, uint64_t at_ms, bool seconds);

/* ---- the command functions (cmd_server.c, cmd_keys.c, cmd_expire.c) */
void cmd_ping(struct resp_ctx *c);
void cmd_echo(struct resp_ctx *c);
void cmd_quit(struct resp_ctx *c);
void cmd_hello(struct resp_ctx *c);
void cmd_auth(struct resp_ctx *c);
void cmd_select(struct resp_ctx *c);
void cmd_client(struct resp_ctx *c);
void cmd_command(struct resp_ctx *c);
void cmd_info(struct resp_ctx *c);
void cmd_config(struct resp_ctx *c);
void cmd_dbsize(struct resp_ctx *c);
void cmd_time(struct resp_ctx *c);
void cmd_save(struct resp_ctx *c);
void cmd_bgsave(struct resp_ctx *c);
void cmd_bgrewriteaof(struct resp_ctx *c);
void cmd_flushdb(struct resp_ctx *c);
void cmd_lastsave(struct resp_ctx *c);
void cmd_reset(struct resp_ctx *c);

void cmd_get(struct resp_ctx *c);
void cmd_set(struct resp_ctx *c);
void cmd_mget(struct resp_ctx *c);
void cmd_strlen(struct resp_ctx *c);
void cmd_getrange(struct resp_ctx *c);
void cmd_getex(struct resp_ctx *c);
void cmd_del(struct resp_ctx *c);
void cmd_exists(struct resp_ctx *c);
void cmd_type(struct resp_ctx *c);
void cmd_ttl(struct resp_ctx *c);
void cmd_setex(struct resp_ctx *c);
void cmd_scan(struct resp_ctx *c);
void cmd_keys(struct resp_ctx *c);
void cmd_randomkey(struct resp_ctx *c);
void cmd_setnx(struct resp_ctx *c);
void cmd_mset(struct resp_ctx *c);
void cmd_msetnx(struct resp_ctx *c);
void cmd_multi(struct resp_ctx *c);
void cmd_exec(struct resp_ctx *c);
void cmd_discard(struct resp_ctx *c);
void cmd_watch(struct resp_ctx *c);
void cmd_unwatch(struct resp_ctx *c);

/* ---- the commands as they run inside a transaction (cmd_keys.c,
 * cmd_strings.c) */
void prog_get(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_mget(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_strlen(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_exists(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_type(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_set(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_setnx(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_getset(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_getdel(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_incr(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_incrby(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_decr(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_decrby(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_append(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_mset(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_msetnx(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_del(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_rename(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_getrange(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_getex(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_setex(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_expire(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_persist(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_ttl(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_ping(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_echo(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);
void prog_unwatch(struct resp_tx *t, size_t argc, char **argv, const size_t *argl);

#endif /* RESP_SERVER_H */
