/*
 * server.h - what the files of src/resp/ share: the server, its event
 * loops, a connection, a deferred command, and the command table.
 *
 * Threads. Each loop is one thread running a libuv loop; a connection lives
 * on one loop for its whole life and only that thread touches it, except
 * for the fields CLIENT LIST reads, which are written under the loop's lock
 * (or are atomics). A deferred command (a write waiting for its fdatasync,
 * a SAVE) runs on the job pool of src/core with its own copy of its
 * arguments, and comes back to its loop through the loop's done list and
 * uv_async_send; its reply is then placed in its connection's order.
 *
 * Order of replies. A connection's commands run in arrival order. A command
 * that is deferred takes a slot in the connection's queue of pending
 * commands; later writes queue behind it (they run in order, and their
 * replies fill their slots later), and any other command waits until the
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
    bool writes_wait;  /* SYNC_MODE=always: writes run on the pool */
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
    struct resp_buf out;     /* replies not yet handed to the socket */
    struct resp_buf sending; /* the bytes of the write in progress */
    uv_write_t wreq;
    bool writing;

    /* deferred commands, in arrival order */
    struct resp_pending *pend_head, *pend_tail;
    size_t n_pending;
    bool running; /* the first not-done pending command is on the pool */

    bool reading;
    bool closing;           /* uv_close was called */
    bool close_after_write; /* QUIT, a protocol error: close once out is sent */
    bool draining;          /* the server stops: no more input is read */
};

/* A command deferred to the pool: a copy of its arguments, and its reply. */
struct resp_pending {
    struct resp_pending *next;      /* in the connection's queue */
    struct resp_pending *done_next; /* in the loop's done list */
    struct resp_conn *conn;
    struct resp_server *srv;
    struct vs_job job;
    void (*run)(struct resp_pending *p); /* the engine work: fills reply */
    struct resp_buf reply;
    int proto;
    size_t cmd;
    uint64_t start_ns;
    bool submitted, done;
    size_t argc;
    char **argv;
    size_t *argl;
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
    struct resp_buf *out; /* where the reply goes */
    int proto;
};

enum resp_cmd_flags {
    CMD_WRITE = 1u << 0,    /* changes the store: may queue behind pending writes */
    CMD_READONLY = 1u << 1, /* reads the store */
    CMD_NOAUTH = 1u << 2,   /* allowed before AUTH */
    CMD_ADMIN = 1u << 3,
    CMD_FAST = 1u << 4,
    CMD_PENDING = 1u << 5, /* needs an engine feature not in this build */
};

struct resp_command {
    const char *name; /* lower case */
    int arity;        /* Redis's: n exactly, -n at least n (the name counts) */
    unsigned flags;
    int first_key, last_key, key_step;
    void (*fn)(struct resp_ctx *c);
    const char *group;
    const char *summary;
    const char *needs; /* CMD_PENDING: what the engine lacks */
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
void resp_queue_answered(struct resp_conn *conn, struct resp_buf *reply, size_t cmd);
/* Moves finished deferred commands of the loop into their connections. */
void resp_loop_collect(struct resp_loop *loop);
/* The loop's connections close: idle ones (tick) or all (stop). */
void resp_loop_sweep_idle(struct resp_loop *loop, uint64_t now_ms);
void resp_loop_drain(struct resp_loop *loop);
void resp_loop_close_all(struct resp_loop *loop);
/* Defers the command of c to the pool with run; its reply comes later, in
 * order. Returns false (and replies with an error) when memory runs out. */
bool resp_defer(struct resp_ctx *c, void (*run)(struct resp_pending *p));
/* Milliseconds on CLOCK_REALTIME / CLOCK_MONOTONIC. */
uint64_t resp_unix_ms(void);
uint64_t resp_mono_ms(void);

/* ---- info.c */
void resp_info(struct resp_ctx *c);

/* ---- helpers for commands (commands.c) */
bool resp_arg_is(const struct resp_ctx *c, size_t i, const char *word);
/* Parses argv[i] as a whole signed 64-bit number; false when it is not. */
bool resp_arg_ll(const struct resp_ctx *c, size_t i, long long *out);
/* Replies with the error of an engine code. */
void resp_reply_kv_error(struct resp_buf *out, int rc);
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
/* Replies with Redis's error for a RESP_EXPIRY_ code. */
void resp_reply_expiry_error(struct resp_ctx *c, int code);
/* The expiry options of a SET checked by cmd_set, read again where it runs. */
void resp_set_expiry_of(const struct resp_pending *p, uint64_t now, struct resp_expiry *e);
/* SET key value (arguments 1 and 2 of p) with expiry e; an engine code. */
int resp_put_expiring(struct resp_pending *p, const struct resp_expiry *e);

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
void cmd_pttl(struct resp_ctx *c);
void cmd_persist(struct resp_ctx *c);
void cmd_setex(struct resp_ctx *c);
void cmd_expire(struct resp_ctx *c);
void cmd_scan(struct resp_ctx *c);
void cmd_keys(struct resp_ctx *c);
void cmd_randomkey(struct resp_ctx *c);

#endif /* RESP_SERVER_H */
