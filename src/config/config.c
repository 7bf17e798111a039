/*
 * config.c - the table of volume-server's settings and the code that reads
 * them from defaults, the environment and the command line.
 *
 * The table below is the one place where a setting is defined: its
 * environment variable (the flag is derived from it: DATA_DIR gives
 * --data-dir), its type, its bounds, its default and its help text. Defaults
 * are written as text and go through the same parser as user input, so a
 * default can never be out of its own bounds unnoticed. Every value is
 * checked in full: "9002x", "-1", " 5" and overflowing numbers are errors.
 * The command line is read by getopt_long, with long options generated from
 * the same table, so that --help and the parser cannot disagree.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvstore.h>

enum opt_type {
    OPT_UINT,
    OPT_STRING,
    OPT_CHOICE,
    OPT_PORT_OR_OFF /* a port as OPT_UINT, or "off" (stored as VS_PORT_OFF) */
};

/* A check beyond type and bounds; returns 0 or writes why (a clause such as
 * "must not contain spaces") and returns -1. */
typedef int (*opt_check_fn)(const char *value, char *why, size_t why_len);

struct opt {
    const char *env; /* the environment variable; the flag is derived */
    enum opt_type type;
    size_t offset; /* of the field in struct vs_config */
    size_t size;   /* of the field (strings: the buffer, with its NUL) */
    /* OPT_UINT: smallest and largest value; OPT_STRING: length in bytes */
    unsigned long long min, max;
    const char *const *choices; /* OPT_CHOICE: the names, by value */
    const char *def;            /* default as text; NULL: see compute_default */
    unsigned (*compute_default)(void);
    opt_check_fn check;
    const char *help;
};

static const char *const sync_mode_names[] = {"always", "interval", "none", NULL};
static const char *const log_level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const compression_names[] = {"none", "zstd", NULL};

static unsigned default_threads(void);
static int check_host(const char *value, char *why, size_t why_len);
static int check_volume_id(const char *value, char *why, size_t why_len);
static int check_auth_token(const char *value, char *why, size_t why_len);
static int check_host_port(const char *value, char *why, size_t why_len);
static int parse_uint(const char *s, unsigned long long *out);

#define FIELD(name) offsetof(struct vs_config, name), sizeof(((struct vs_config *)0)->name)

/* clang-format off */
static const struct opt options[] = {
    {"HOST", OPT_STRING, FIELD(host), 1, VS_HOST_MAX, NULL, "127.0.0.1", NULL, check_host,
     "address to listen on (an IPv4 or IPv6 address or a host name)"},
    {"PORT", OPT_UINT, FIELD(port), 0, 65535, NULL, "9002", NULL, NULL,
     "TCP port to listen on (0: any free port, shown in the start line)"},
    {"VOLUME_ID", OPT_STRING, FIELD(volume_id), 1, VS_VOLUME_ID_MAX, NULL, "vol-1", NULL,
     check_volume_id, "name of this volume in responses and metrics ([A-Za-z0-9._:-])"},
    {"DATA_DIR", OPT_STRING, FIELD(data_dir), 1, VS_DATA_DIR_MAX, NULL, "data", NULL, NULL,
     "directory of the store (created if missing)"},
    {"COMPACTION_THRESHOLD", OPT_UINT, FIELD(compaction_threshold), 0, 1000000, NULL, "5", NULL,
     NULL, "segments that trigger background compaction (0: never by count)"},
    {"COMPACTION_INTERVAL_SECS", OPT_UINT, FIELD(compaction_interval_secs), 0, 86400 * 365, NULL,
     "60", NULL, NULL, "seconds between background compaction checks (0: off)"},
    {"MAX_REQUEST_SIZE_MB", OPT_UINT, FIELD(max_request_size_mb), 1, 4095, NULL, "100", NULL, NULL,
     "largest request body accepted, in MiB (larger: 413)"},
    {"MAX_BODY_MEMORY_MB", OPT_UINT, FIELD(max_body_memory_mb), 1, 1048576, NULL, "1024", NULL,
     NULL, "memory all request bodies being received may take together, in MiB (beyond: 503)"},
    {"SYNC_MODE", OPT_CHOICE, FIELD(sync_mode), 0, 0, sync_mode_names, "always", NULL, NULL,
     "always: a 201 means the blob is on stable storage; interval: synced every 100 ms; "
     "none: the OS decides"},
    {"SEGMENT_SIZE_MB", OPT_UINT, FIELD(segment_size_mb), 1, 2048, NULL, "64", NULL, NULL,
     "size at which the active segment is sealed, in MiB"},
    {"COMPRESSION", OPT_CHOICE, FIELD(compression), 0, 0, compression_names, "none", NULL, NULL,
     "zstd: blobs of 64 bytes or more are stored compressed when that saves space, with a "
     "dictionary trained at compaction (slower puts and gets); none: as they are"},
    {"THREADS", OPT_UINT, FIELD(threads), 1, 256, NULL, NULL, default_threads, NULL,
     "HTTP worker threads (default: the number of cores)"},
    {"AUTH_TOKEN", OPT_STRING, FIELD(auth_token), 1, VS_AUTH_TOKEN_MAX, NULL, NULL, NULL,
     check_auth_token,
     "when set, every request but health and /ui needs 'Authorization: Bearer <token>'"},
    {"LOG_LEVEL", OPT_CHOICE, FIELD(log_level), 0, 0, log_level_names, "info", NULL, NULL,
     "error, warn, info, or debug (debug: one line per request)"},
    {"MAX_CONNECTIONS", OPT_UINT, FIELD(max_connections), 1, 1000000, NULL, "4096", NULL, NULL,
     "simultaneous client connections; more wait in the listen queue"},
    {"CONNECTION_TIMEOUT_SECS", OPT_UINT, FIELD(connection_timeout_secs), 1, 86400, NULL, "60",
     NULL, NULL, "a connection idle (or stalled mid-request) this long is closed"},
    {"SHUTDOWN_GRACE_SECS", OPT_UINT, FIELD(shutdown_grace_secs), 0, 3600, NULL, "10", NULL, NULL,
     "seconds requests in progress get to finish after SIGTERM (new ones get 503 meanwhile)"},
    {"RESP_PORT", OPT_PORT_OR_OFF, FIELD(resp_port), 0, 65535, NULL, "6380", NULL, NULL,
     "TCP port of the Redis protocol on HOST (0: any free port, shown in the start line; "
     "off: none)"},
    {"RESP_IDLE_TIMEOUT_SECS", OPT_UINT, FIELD(resp_idle_timeout_secs), 1, 86400 * 365, NULL,
     "300", NULL, NULL, "a Redis-protocol connection idle this long is closed"},
    {"RESP_MAX_ARGS", OPT_UINT, FIELD(resp_max_args), 16, 16777216, NULL, "1048576", NULL, NULL,
     "most arguments one Redis-protocol command may have (more: an error, and the connection "
     "closes)"},
    {"RESP_OUTPUT_LIMIT_MB", OPT_UINT, FIELD(resp_output_limit_mb), 1, 65536, NULL, "256", NULL,
     NULL,
     "unsent replies one Redis-protocol client may hold, in MiB (more: the connection closes)"},
    {"REPLICA_OF", OPT_STRING, FIELD(replica_of), 1, VS_HOST_MAX + 7, NULL, NULL, NULL,
     check_host_port,
     "host:port of the primary's HTTP address: this volume is a read-only replica of it "
     "(unset: a primary)"},
    {"MIN_REPLICA_ACKS", OPT_UINT, FIELD(min_replica_acks), 0, 64, NULL, "0", NULL, NULL,
     "a write is answered only once this many replicas hold it durably"},
    {"REPLICA_ACK_TIMEOUT_MS", OPT_UINT, FIELD(replica_ack_timeout_ms), 1, 3600000, NULL, "1000",
     NULL, NULL,
     "how long a write waits for MIN_REPLICA_ACKS replicas (then HTTP 504, RESP -NOREPLICAS)"},
};
/* clang-format on */

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

/* Most settings one command line may give. A setting may be repeated: each
 * value is checked, in order, and the last one stays. */
#define FLAGS_MAX 128

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > 256 ? 256 : (unsigned)n;
}

static int check_host(const char *value, char *why, size_t why_len)
{
    for (const char *p = value; *p != '\0'; p++) {
        if (!isgraph((unsigned char)*p)) {
            snprintf(why, why_len, "must not contain spaces or control characters");
            return -1;
        }
    }
    return 0;
}

static int check_volume_id(const char *value, char *why, size_t why_len)
{
    for (const char *p = value; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && strchr("._:-", *p) == NULL) {
            snprintf(why, why_len, "may only contain letters, digits and . _ : -");
            return -1;
        }
    }
    return 0;
}

/* The token travels in an Authorization header: visible ASCII only. */
static int check_auth_token(const char *value, char *why, size_t why_len)
{
    for (const char *p = value; *p != '\0'; p++) {
        if (*p < 0x21 || *p > 0x7e) {
            snprintf(why, why_len, "may only contain visible ASCII characters (no spaces)");
            return -1;
        }
    }
    return 0;
}

/* host:port, the port a number from 1 to 65535; an IPv6 address in
 * brackets ("[::1]:9002"). */
static int check_host_port(const char *value, char *why, size_t why_len)
{
    const char *colon = strrchr(value, ':');
    unsigned long long port = 0;
    if (colon == NULL || colon == value || parse_uint(colon + 1, &port) != 0 || port == 0 ||
        port > 65535) {
        snprintf(why, why_len, "must be host:port with a port from 1 to 65535");
        return -1;
    }
    for (const char *p = value; p < colon; p++) {
        if (*p < 0x21 || *p > 0x7e || *p == '/' || *p == '@' || *p == '?' || *p == '#') {
            snprintf(why, why_len, "must be host:port, without spaces, a scheme or a path");
            return -1;
        }
    }
    return 0;
}

/* Writes the flag of o ("--data-dir") into buf. */
static void flag_name(const struct opt *o, char *buf, size_t buf_len)
{
    size_t n = 0;
    if (buf_len < 3)
        return;
    buf[n++] = '-';
    buf[n++] = '-';
    for (const char *p = o->env; *p != '\0' && n + 1 < buf_len; p++)
        buf[n++] = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
    buf[n] = '\0';
}

/* Parses a decimal number with nothing around it: no sign, no spaces. */
static int parse_uint(const char *s, unsigned long long *out)
{
    if (!isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Stores value into the field of o, or explains in why what is wrong. */
static int set_value(struct vs_config *cfg, const struct opt *o, const char *value, char *why,
                     size_t why_len)
{
    char *field = (char *)cfg + o->offset;
    size_t len = strlen(value);

    switch (o->type) {
    case OPT_PORT_OR_OFF:
        if (strcmp(value, "off") == 0) {
            *(unsigned *)(void *)field = VS_PORT_OFF;
            return 0;
        }
        __attribute__((fallthrough)); /* a port */
    case OPT_UINT: {
        unsigned long long v = 0;
        if (parse_uint(value, &v) != 0 || v < o->min || v > o->max) {
            snprintf(why, why_len, "expected a whole number from %llu to %llu%s", o->min, o->max,
                     o->type == OPT_PORT_OR_OFF ? ", or off" : "");
            return -1;
        }
        *(unsigned *)(void *)field = (unsigned)v;
        return 0;
    }
    case OPT_CHOICE:
        for (unsigned i = 0; o->choices[i] != NULL; i++) {
            if (strcmp(value, o->choices[i]) == 0) {
                *(unsigned *)(void *)field = i;
                return 0;
            }
        }
        snprintf(why, why_len, "expected one of:");
        for (unsigned i = 0; o->choices[i] != NULL; i++) {
            size_t used = strlen(why);
            snprintf(why + used, why_len - used, "%s %s", i == 0 ? "" : ",", o->choices[i]);
        }
        return -1;
    case OPT_STRING:
        if (len < o->min || len > o->max || len + 1 > o->size) {
            snprintf(why, why_len, "expected %llu to %llu bytes", o->min, o->max);
            return -1;
        }
        if (o->check != NULL && o->check(value, why, why_len) != 0)
            return -1;
        memcpy(field, value, len + 1);
        return 0;
    }
    snprintf(why, why_len, "unknown setting type");
    return -1;
}

/* Sets o from value and, on failure, writes the full message into err. */
static int apply(struct vs_config *cfg, const struct opt *o, const char *value, const char *source,
                 char *err, size_t err_len)
{
    char why[160] = "";
    if (set_value(cfg, o, value, why, sizeof(why)) == 0)
        return 0;
    /* A bad token is not echoed: it may be close to the real one. */
    if (strcmp(o->env, "AUTH_TOKEN") == 0)
        snprintf(err, err_len, "invalid %s (from %s): %s", o->env, source, why);
    else
        snprintf(err, err_len, "invalid %s=\"%.64s%s\" (from %s): %s", o->env, value,
                 strlen(value) > 64 ? "..." : "", source, why);
    return -1;
}

static int apply_defaults(struct vs_config *cfg, char *err, size_t err_len)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct opt *o = &options[i];
        if (o->def != NULL) {
            if (apply(cfg, o, o->def, "the default", err, err_len) != 0)
                return -1;
        } else if (o->compute_default != NULL) {
            *(unsigned *)(void *)((char *)cfg + o->offset) = o->compute_default();
        }
    }
    return 0;
}

static int apply_environment(struct vs_config *cfg, char *err, size_t err_len)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *value = getenv(options[i].env);
        if (value != NULL && apply(cfg, &options[i], value, "the environment", err, err_len) != 0)
            return -1;
    }
    return 0;
}

/* getopt_long's value for the i-th setting: above every character, so that
 * no setting can be taken for -h or -V. */
#define FLAG_VAL_BASE 256
#define FLAG_NAME_MAX 64

/* The long options, generated from the table: --help can never list a flag
 * that parsing does not know, or the other way round. */
struct flag_table {
    char names[N_OPTIONS][FLAG_NAME_MAX]; /* "data-dir": the flag without "--" */
    struct option longopts[N_OPTIONS + 3];
};

static void flag_table_init(struct flag_table *ft)
{
    memset(ft, 0, sizeof(*ft));
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char flag[FLAG_NAME_MAX + 2];
        flag_name(&options[i], flag, sizeof(flag));
        memcpy(ft->names[i], flag + 2, strlen(flag + 2) + 1);
        ft->longopts[i] =
            (struct option){ft->names[i], required_argument, NULL, FLAG_VAL_BASE + (int)i};
    }
    ft->longopts[N_OPTIONS] = (struct option){"help", no_argument, NULL, 'h'};
    ft->longopts[N_OPTIONS + 1] = (struct option){"version", no_argument, NULL, 'V'};
    ft->longopts[N_OPTIONS + 2] = (struct option){NULL, 0, NULL, 0};
}

/* The settings given on the command line, in order, kept until the defaults
 * and the environment have been applied (flags win over both). */
struct flag_values {
    const struct opt *opt[FLAGS_MAX];
    const char *value[FLAGS_MAX];
    size_t count;
    bool help, version;
    char error[256]; /* the first mistake on the command line, "" if none */
};

/* Writes the message of the mistake getopt_long reported with c into why. */
static void flag_mistake(int c, char *const argv[], char *why, size_t why_len)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    if (c == ':' && optopt >= FLAG_VAL_BASE) {
        const struct opt *o = &options[optopt - FLAG_VAL_BASE];
        char flag[FLAG_NAME_MAX + 2];
        flag_name(o, flag, sizeof(flag));
        snprintf(why, why_len, "%s (%s) needs a value", flag, o->env);
    } else if (strncmp(arg, "--", 2) != 0 && optopt > 0 && optopt < FLAG_VAL_BASE) {
        snprintf(why, why_len, "unknown flag \"-%c\" (see --help)", optopt);
    } else {
        snprintf(why, why_len, "unknown flag \"%.64s\" (see --help)", arg);
    }
}

/* Reads argv with getopt_long into *fv. Flags take the forms --name=value
 * and --name value; the first argument that is not a flag is a mistake. */
static void read_flags(int argc, char *const argv[], struct flag_values *fv)
{
    struct flag_table ft;
    flag_table_init(&ft);
    memset(fv, 0, sizeof(*fv));
    opterr = 0;
    optind = 0; /* a fresh scan, also when called more than once */
    int c;
    /* "+": stop at the first argument that is not a flag; ":": tell a
     * missing value from an unknown flag. */
    while ((c = getopt_long(argc, argv, "+:hV", ft.longopts, NULL)) != -1) {
        if (c == 'h') {
            fv->help = true;
        } else if (c == 'V') {
            fv->version = true;
        } else if (c >= FLAG_VAL_BASE && fv->count < FLAGS_MAX) {
            fv->opt[fv->count] = &options[c - FLAG_VAL_BASE];
            fv->value[fv->count++] = optarg;
        } else if (c >= FLAG_VAL_BASE) {
            if (fv->error[0] == '\0')
                snprintf(fv->error, sizeof(fv->error), "more than %d flags", FLAGS_MAX);
        } else if (fv->error[0] == '\0') {
            flag_mistake(c, argv, fv->error, sizeof(fv->error));
        }
    }
    if (optind < argc && fv->error[0] == '\0')
        snprintf(fv->error, sizeof(fv->error), "unexpected argument \"%.64s\" (see --help)",
                 argv[optind]);
}

static int apply_flags(struct vs_config *cfg, const struct flag_values *fv, char *err,
                       size_t err_len)
{
    if (fv->error[0] != '\0') {
        snprintf(err, err_len, "%s", fv->error);
        return -1;
    }
    for (size_t i = 0; i < fv->count; i++) {
        char source[FLAG_NAME_MAX + 2];
        flag_name(fv->opt[i], source, sizeof(source));
        if (apply(cfg, fv->opt[i], fv->value[i], source, err, err_len) != 0)
            return -1;
    }
    return 0;
}

/* Checks the settings that bound each other. */
static int check_together(const struct vs_config *cfg, char *err, size_t err_len)
{
    /* A write's position is known to be durable, and so comparable with
     * what replicas acknowledge, only once its fdatasync is done. */
    if (cfg->min_replica_acks > 0 && cfg->sync_mode != VS_SYNC_ALWAYS) {
        snprintf(err, err_len,
                 "invalid MIN_REPLICA_ACKS=%u: replicas acknowledge durable writes, which needs "
                 "SYNC_MODE=always",
                 cfg->min_replica_acks);
        return -1;
    }
    if (cfg->resp_port != VS_PORT_OFF && cfg->resp_port != 0 && cfg->resp_port == cfg->port) {
        snprintf(err, err_len, "invalid RESP_PORT=%u: PORT is %u already", cfg->resp_port,
                 cfg->port);
        return -1;
    }
    if (cfg->resp_output_limit_mb < cfg->max_request_size_mb) {
        snprintf(err, err_len,
                 "invalid RESP_OUTPUT_LIMIT_MB=%u: below MAX_REQUEST_SIZE_MB=%u, so the largest "
                 "value could never be sent",
                 cfg->resp_output_limit_mb, cfg->max_request_size_mb);
        return -1;
    }
    if (cfg->max_body_memory_mb < cfg->max_request_size_mb) {
        snprintf(err, err_len,
                 "invalid MAX_BODY_MEMORY_MB=%u: below MAX_REQUEST_SIZE_MB=%u, so the largest "
                 "allowed body could never be received",
                 cfg->max_body_memory_mb, cfg->max_request_size_mb);
        return -1;
    }
    return 0;
}

enum vs_config_result config_load(struct vs_config *cfg, int argc, char *const argv[], char *err,
                                  size_t err_len)
{
    struct flag_values fv;
    read_flags(argc, argv, &fv);
    /* --help and --version answer even when the environment or another flag
     * is invalid. */
    if (fv.help)
        return VS_CONFIG_HELP;
    if (fv.version)
        return VS_CONFIG_VERSION;
    if (apply_defaults(cfg, err, err_len) != 0 || apply_environment(cfg, err, err_len) != 0 ||
        apply_flags(cfg, &fv, err, err_len) != 0 || check_together(cfg, err, err_len) != 0)
        return VS_CONFIG_ERROR;
    return VS_CONFIG_OK;
}

static void describe_default(const struct opt *o, char *buf, size_t buf_len)
{
    if (o->def != NULL)
        snprintf(buf, buf_len, "%s", o->def);
    else if (o->compute_default != NULL)
        snprintf(buf, buf_len, "%u", o->compute_default());
    else
        snprintf(buf, buf_len, "unset");
}

void config_print_help(FILE *out, const char *program)
{
    fprintf(out,
            "Usage: %s [--flag value]...\n"
            "\n"
            "volume-server %s: an HTTP and Redis-protocol blob server over the mini-kvstore\n"
            "engine.\n"
            "Each setting is an environment variable and a flag; a flag wins.\n"
            "\n",
            program, KV_VERSION_STRING);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char flag[64];
        char def[32];
        flag_name(&options[i], flag, sizeof(flag));
        describe_default(&options[i], def, sizeof(def));
        fprintf(out, "  %-26s %-28s default %s\n      %s\n", options[i].env, flag, def,
                options[i].help);
    }
    fprintf(out, "\n  --help      this text\n  --version   the version\n");
}

const char *config_sync_mode_name(unsigned mode)
{
    return mode <= VS_SYNC_NONE ? sync_mode_names[mode] : "?";
}

const char *config_log_level_name(unsigned level)
{
    return level <= VS_LOG_DEBUG ? log_level_names[level] : "?";
}

void config_describe(const struct vs_config *cfg, char *buf, size_t buf_len)
{
    size_t used = 0;
    if (buf_len == 0)
        return;
    buf[0] = '\0';
    for (size_t i = 0; i < N_OPTIONS && used + 1 < buf_len; i++) {
        const struct opt *o = &options[i];
        const char *field = (const char *)cfg + o->offset;
        unsigned v = o->type == OPT_STRING ? 0 : *(const unsigned *)(const void *)field;
        const char *sep = i == 0 ? "" : " ";
        int n = 0;
        if (strcmp(o->env, "AUTH_TOKEN") == 0)
            n = snprintf(buf + used, buf_len - used, "%s%s=%s", sep, o->env,
                         field[0] != '\0' ? "set" : "unset");
        else if (o->type == OPT_STRING)
            n = snprintf(buf + used, buf_len - used, "%s%s=%s", sep, o->env, field);
        else if (o->type == OPT_CHOICE)
            n = snprintf(buf + used, buf_len - used, "%s%s=%s", sep, o->env, o->choices[v]);
        else if (o->type == OPT_PORT_OR_OFF && v == VS_PORT_OFF)
            n = snprintf(buf + used, buf_len - used, "%s%s=off", sep, o->env);
        else
            n = snprintf(buf + used, buf_len - used, "%s%s=%u", sep, o->env, v);
        if (n < 0)
            return;
        used += (size_t)n < buf_len - used ? (size_t)n : buf_len - used - 1;
    }
}
