/*
 * config.h - the main header of src/config/: the settings of volume-server,
 * read from environment variables and command-line flags.
 *
 * src/config/ owns the table of settings and nothing else: it knows no front
 * end and no store, so that every part of the server (and a test) can read
 * the settings the same way.
 *
 * Every setting is an environment variable (PORT, DATA_DIR, ...) and also a
 * flag (--port, --data-dir, ...); a flag wins over the environment, which
 * wins over the default. One table in config.c holds each setting's name,
 * type, bounds, default and help text. An invalid value is an error that
 * names the variable: there is never a silent fallback to the default.
 */
#ifndef VS_CONFIG_H
#define VS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define VS_HOST_MAX       255  /* bytes of HOST */
#define VS_VOLUME_ID_MAX  64   /* bytes of VOLUME_ID */
#define VS_DATA_DIR_MAX   4095 /* bytes of DATA_DIR */
#define VS_AUTH_TOKEN_MAX 256  /* bytes of AUTH_TOKEN */

enum vs_sync_mode { VS_SYNC_ALWAYS = 0, VS_SYNC_INTERVAL = 1, VS_SYNC_NONE = 2 };
enum vs_log_level { VS_LOG_ERROR = 0, VS_LOG_WARN = 1, VS_LOG_INFO = 2, VS_LOG_DEBUG = 3 };
enum vs_compression { VS_COMPRESSION_NONE = 0, VS_COMPRESSION_ZSTD = 1 };

struct vs_config {
    char host[VS_HOST_MAX + 1];
    unsigned port; /* 0: any free port */
    char volume_id[VS_VOLUME_ID_MAX + 1];
    char data_dir[VS_DATA_DIR_MAX + 1];
    unsigned compaction_threshold;     /* segments; 0: no count trigger */
    unsigned compaction_interval_secs; /* 0: no background compaction */
    unsigned max_request_size_mb;      /* largest accepted body, MiB */
    unsigned max_body_memory_mb;       /* all bodies being received together, MiB */
    unsigned sync_mode;                /* enum vs_sync_mode */
    unsigned segment_size_mb;
    unsigned compression;                   /* enum vs_compression */
    unsigned threads;                       /* HTTP worker threads */
    char auth_token[VS_AUTH_TOKEN_MAX + 1]; /* "" when AUTH_TOKEN is unset */
    unsigned log_level;                     /* enum vs_log_level */
    unsigned max_connections;
    unsigned connection_timeout_secs;
    unsigned shutdown_grace_secs;     /* the drain after SIGTERM */
    unsigned resp_port;               /* 0: any free port; VS_PORT_OFF: no RESP listener */
    unsigned resp_idle_timeout_secs;  /* a RESP connection idle this long is closed */
    unsigned resp_max_args;           /* most arguments in one RESP command */
    unsigned resp_output_limit_mb;    /* unsent replies one RESP client may hold, MiB */
    char replica_of[VS_HOST_MAX + 8]; /* "host:port" of the primary; "" for a primary */
    unsigned min_replica_acks;        /* replicas that must hold a write before its reply */
    unsigned replica_ack_timeout_ms;  /* how long a write waits for them */
};

/* resp_port when RESP_PORT=off. */
#define VS_PORT_OFF 0xffffffffu

/* What config_load found on the command line besides settings. */
enum vs_config_result {
    VS_CONFIG_OK = 0,      /* *cfg holds the settings: start the server */
    VS_CONFIG_HELP = 1,    /* --help was given: print config_print_help() */
    VS_CONFIG_VERSION = 2, /* --version was given */
    VS_CONFIG_ERROR = -1   /* err holds a message naming the setting */
};

/*
 * Fills *cfg from the defaults, then the environment (through getenv), then
 * argv[1..argc-1]. Flags take the forms --name=value and --name value.
 * On VS_CONFIG_ERROR, err (err_len bytes, NUL-terminated) says which variable
 * or flag is wrong and why; *cfg is then unspecified.
 */
enum vs_config_result config_load(struct vs_config *cfg, int argc, char *const argv[], char *err,
                                  size_t err_len);

/* Writes the usage text, one line per setting with its variable, flag,
 * default and meaning, to out. */
void config_print_help(FILE *out, const char *program);

/* Writes the effective settings as "name=value" pairs separated by spaces
 * into buf (buf_len bytes, NUL-terminated, truncated if needed). The auth
 * token is shown as "set" or "unset", never its value. */
void config_describe(const struct vs_config *cfg, char *buf, size_t buf_len);

/* The names used by SYNC_MODE and LOG_LEVEL, for messages. */
const char *config_sync_mode_name(unsigned mode);
const char *config_log_level_name(unsigned level);

#endif /* VS_CONFIG_H */
