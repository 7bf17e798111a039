/*
 * proto.h - the Redis serialization protocol: a parser of commands (arrays
 * of bulk strings, and inline commands as telnet and redis-cli send them)
 * and a writer of replies in RESP2 or RESP3.
 *
 * The parser is incremental: it reads what has arrived of a command, keeps
 * its place, and never copies a bulk. Arguments are offsets into the
 * caller's input buffer, so the buffer may grow (move) between calls; the
 * caller tells the parser when it shifts the bytes (resp_parser_shift).
 */
#ifndef RESP_PROTO_H
#define RESP_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "growbuf.h"

/* ---- replies */

/* Replies are written into a struct growbuf (growbuf.h): a failed
 * allocation sets its failed flag, and the connection that owns it is
 * closed. */

/* RESP versions a connection speaks (HELLO). */
enum { RESP2 = 2, RESP3 = 3 };

void resp_simple(struct growbuf *b, const char *s);  /* +s */
void resp_ok(struct growbuf *b);                     /* +OK */
void resp_error(struct growbuf *b, const char *msg); /* -msg: "ERR ...", "NOAUTH ..." */
void resp_errorf(struct growbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void resp_int(struct growbuf *b, long long v); /* :v */
void resp_bulk(struct growbuf *b, const void *data, size_t len);
void resp_bulk_str(struct growbuf *b, const char *s);
void resp_bulk_u64(struct growbuf *b, uint64_t v);     /* a number as a bulk string */
void resp_null(struct growbuf *b, int proto);          /* $-1 or _ */
void resp_null_array(struct growbuf *b, int proto);    /* *-1 or _ */
void resp_array(struct growbuf *b, size_t n);          /* *n, n elements follow */
void resp_map(struct growbuf *b, int proto, size_t n); /* %n, or *2n in RESP2 */
void resp_set(struct growbuf *b, int proto, size_t n); /* ~n, or *n in RESP2 */
void resp_bool(struct growbuf *b, int proto, bool v);  /* #t/#f, or :1/:0 */
/* Text for people (INFO, CLIENT LIST): a verbatim string "txt" in RESP3, a
 * bulk string in RESP2. */
void resp_verbatim(struct growbuf *b, int proto, const char *text, size_t len);

/* ---- commands */

/* Longest line of an inline command, or of a count or length header
 * (Redis's PROTO_INLINE_MAX_SIZE). */
#define RESP_INLINE_MAX (64u * 1024u)

enum resp_parse_result {
    RESP_PARSE_MORE = 0,    /* the command is not complete yet */
    RESP_PARSE_COMMAND = 1, /* a command is complete: argc, arg_off, arg_len */
    RESP_PARSE_ERROR = -1   /* malformed: error holds the reply text */
};

struct resp_parser {
    /* limits */
    size_t max_args;
    uint64_t max_bulk;
    /* the command being read */
    int state;         /* proto.c's */
    size_t start;      /* offset of the command's first byte */
    size_t pos;        /* offset of the next byte to read */
    size_t want_args;  /* arguments the header announced */
    uint64_t bulk_len; /* length of the bulk being read */
    size_t argc;       /* arguments complete */
    size_t *arg_off;   /* offsets of the arguments in the buffer */
    size_t *arg_len;
    size_t arg_cap;
    bool inline_cmd; /* the command came as an inline line */
    char error[128];
};

/* A parser with the given limits; resp_parser_free releases it. */
void resp_parser_init(struct resp_parser *p, size_t max_args, uint64_t max_bulk);
void resp_parser_free(struct resp_parser *p);

/*
 * Reads from buf[p->pos .. len). On RESP_PARSE_COMMAND the arguments are
 * buf + arg_off[i], arg_len[i] bytes each (an inline command's were
 * unquoted in place); the caller runs it, then calls resp_parser_next. On
 * RESP_PARSE_MORE, *need is how many bytes past len the command needs at
 * least (0 when unknown), so that the caller can make room for a large bulk
 * at once. On RESP_PARSE_ERROR the input cannot be trusted any more: the
 * caller replies with p->error and closes the connection.
 */
enum resp_parse_result resp_parse(struct resp_parser *p, char *buf, size_t len, size_t *need);

/* Forgets the command just run; parsing goes on at the byte after it. */
void resp_parser_next(struct resp_parser *p);

/* The first byte of the input the parser still needs (the unfinished
 * command's start): everything before it may be dropped. */
size_t resp_parser_keep_from(const struct resp_parser *p);

/* The caller moved its buffer's bytes down by shift. */
void resp_parser_shift(struct resp_parser *p, size_t shift);

/* Glob-style match of Redis's KEYS and SCAN MATCH (* ? [abc] [^a-z] \x),
 * binary safe. nocase compares ASCII letters without case. */
bool resp_glob_match(const char *pat, size_t pat_len, const char *s, size_t len, bool nocase);

#endif /* RESP_PROTO_H */
