/*
 * proto.c - the RESP parser and writer (see proto.h).
 *
 * The parser is a small state machine over the caller's buffer: the header
 * of an array (*N), then N bulk strings ($len, the bytes, CRLF), or an
 * inline line split as Redis splits it (sdssplitargs: spaces separate,
 * "double quotes" with \n \r \t \b \a \\ \" \xHH escapes, 'single quotes'
 * with \'). Its errors are Redis's own texts, so clients and tests that know
 * Redis recognise them.
 */
#include "proto.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the writer */

/* Appends a type byte, a number and CRLF: "*3\r\n", ":-1\r\n". */
static void header(struct growbuf *b, char type, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%c%lld\r\n", type, v);
    growbuf_append(b, tmp, (size_t)n);
}

/* Appends type, s with any CR or LF turned into a space (a simple string
 * or an error cannot hold them), and CRLF. */
static void line(struct growbuf *b, char type, const char *s, size_t len)
{
    if (!growbuf_reserve(b, len + 3))
        return;
    b->data[b->len++] = type;
    for (size_t i = 0; i < len; i++)
        b->data[b->len++] = (s[i] == '\r' || s[i] == '\n') ? ' ' : s[i];
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
}

void resp_simple(struct growbuf *b, const char *s)
{
    line(b, '+', s, strlen(s));
}

void resp_ok(struct growbuf *b)
{
    growbuf_append(b, "+OK\r\n", 5);
}

void resp_error(struct growbuf *b, const char *msg)
{
    line(b, '-', msg, strlen(msg));
}

void resp_errorf(struct growbuf *b, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    resp_error(b, msg);
}

void resp_int(struct growbuf *b, long long v)
{
    header(b, ':', v);
}

void resp_bulk(struct growbuf *b, const void *data, size_t len)
{
    header(b, '$', (long long)len);
    if (!growbuf_reserve(b, len + 2))
        return;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
}

void resp_bulk_str(struct growbuf *b, const char *s)
{
    resp_bulk(b, s, strlen(s));
}

void resp_bulk_u64(struct growbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
    resp_bulk(b, tmp, (size_t)n);
}

void resp_null(struct growbuf *b, int proto)
{
    if (proto == RESP3)
        growbuf_append(b, "_\r\n", 3);
    else
        growbuf_append(b, "$-1\r\n", 5);
}

void resp_null_array(struct growbuf *b, int proto)
{
    if (proto == RESP3)
        growbuf_append(b, "_\r\n", 3);
    else
        growbuf_append(b, "*-1\r\n", 5);
}

void resp_array(struct growbuf *b, size_t n)
{
    header(b, '*', (long long)n);
}

void resp_map(struct growbuf *b, int proto, size_t n)
{
    if (proto == RESP3)
        header(b, '%', (long long)n);
    else
        header(b, '*', 2 * (long long)n);
}

void resp_set(struct growbuf *b, int proto, size_t n)
{
    header(b, proto == RESP3 ? '~' : '*', (long long)n);
}

void resp_bool(struct growbuf *b, int proto, bool v)
{
    if (proto == RESP3)
        growbuf_append(b, v ? "#t\r\n" : "#f\r\n", 4);
    else
        resp_int(b, v ? 1 : 0);
}

void resp_verbatim(struct growbuf *b, int proto, const char *text, size_t len)
{
    if (proto != RESP3) {
        resp_bulk(b, text, len);
        return;
    }
    header(b, '=', (long long)len + 4);
    growbuf_append(b, "txt:", 4);
    growbuf_append(b, text, len);
    growbuf_append(b, "\r\n", 2);
}

/* ---- the parser */

enum { ST_START, ST_BULK_HEADER, ST_BULK_BODY, ST_DONE };

void resp_parser_init(struct resp_parser *p, size_t max_args, uint64_t max_bulk)
{
    memset(p, 0, sizeof(*p));
    p->max_args = max_args;
    p->max_bulk = max_bulk;
}

void resp_parser_free(struct resp_parser *p)
{
    free(p->arg_off);
    free(p->arg_len);
    p->arg_off = p->arg_len = NULL;
    p->arg_cap = 0;
}

void resp_parser_next(struct resp_parser *p)
{
    p->state = ST_START;
    p->start = p->pos;
    p->argc = 0;
    p->want_args = 0;
    p->inline_cmd = false;
}

size_t resp_parser_keep_from(const struct resp_parser *p)
{
    return p->start;
}

void resp_parser_shift(struct resp_parser *p, size_t shift)
{
    p->start -= shift;
    p->pos -= shift;
    for (size_t i = 0; i < p->argc; i++)
        p->arg_off[i] -= shift;
}

static enum resp_parse_result fail(struct resp_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum resp_parse_result fail(struct resp_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof(p->error), fmt, ap);
    va_end(ap);
    return RESP_PARSE_ERROR;
}

/* Room for n arguments; the arrays grow as arguments arrive, so that a
 * header announcing a million of them costs nothing until they come. */
static bool reserve_args(struct resp_parser *p, size_t n)
{
    if (n <= p->arg_cap)
        return true;
    size_t cap = p->arg_cap ? p->arg_cap : 16;
    while (cap < n)
        cap *= 2;
    size_t *off = realloc(p->arg_off, cap * sizeof(*off));
    if (off == NULL)
        return false;
    p->arg_off = off;
    size_t *len = realloc(p->arg_len, cap * sizeof(*len));
    if (len == NULL)
        return false;
    p->arg_len = len;
    p->arg_cap = cap;
    return true;
}

/* A decimal integer with an optional minus sign and nothing else. */
static bool parse_ll(const char *s, size_t len, long long *out)
{
    size_t i = 0;
    bool neg = false;
    if (len > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len || len - i > 18)
        return false;
    long long v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

/* The offset of the CR of the first CRLF in buf[from..len), or 0 when there
 * is none yet (a CRLF is never at offset 0 of a header). */
static size_t find_crlf(const char *buf, size_t from, size_t len)
{
    const char *cr = from < len ? memchr(buf + from, '\r', len - from) : NULL;
    while (cr != NULL) {
        size_t at = (size_t)(cr - buf);
        if (at + 1 >= len)
            return 0; /* the LF has not arrived */
        if (buf[at + 1] == '\n')
            return at;
        cr = memchr(buf + at + 1, '\r', len - at - 1);
    }
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The escape after a backslash in double quotes: the byte it stands for,
 * and how many bytes of input it took (*used, past the backslash). */
static char unescape(const char *r, const char *end, size_t *used)
{
    if (end - r >= 3 && r[0] == 'x' && hex_digit(r[1]) >= 0 && hex_digit(r[2]) >= 0) {
        *used = 3;
        return (char)(hex_digit(r[1]) * 16 + hex_digit(r[2]));
    }
    *used = 1;
    switch (r[0]) {
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'b':
        return '\b';
    case 'a':
        return '\a';
    default:
        return r[0];
    }
}

/* Splits one inline line buf[from..end) in place into arguments, as Redis's
 * sdssplitargs does. Returns false for unbalanced quotes. */
static bool split_inline(struct resp_parser *p, char *buf, size_t from, size_t end)
{
    const char *r = buf + from;
    const char *stop = buf + end;
    char *w = buf + from;
    for (;;) {
        while (r < stop && isspace((unsigned char)*r))
            r++;
        if (r == stop)
            return true;
        if (!reserve_args(p, p->argc + 1))
            return false;
        char *arg = w;
        bool dq = false, sq = false, done = false;
        while (!done) {
            if (dq) {
                if (r == stop)
                    return false;
                if (*r == '\\' && r + 1 < stop) {
                    size_t used = 0;
                    *w++ = unescape(r + 1, stop, &used);
                    r += 1 + used;
                } else if (*r == '"') {
                    r++;
                    if (r < stop && !isspace((unsigned char)*r))
                        return false;
                    done = true;
                } else {
                    *w++ = *r++;
                }
            } else if (sq) {
                if (r == stop)
                    return false;
                if (*r == '\\' && r + 1 < stop && r[1] == '\'') {
                    *w++ = '\'';
                    r += 2;
                } else if (*r == '\'') {
                    r++;
                    if (r < stop && !isspace((unsigned char)*r))
                        return false;
                    done = true;
                } else {
                    *w++ = *r++;
                }
            } else if (r == stop || isspace((unsigned char)*r)) {
                done = true;
            } else if (*r == '"' && w == arg) {
                dq = true;
                r++;
            } else if (*r == '\'' && w == arg) {
                sq = true;
                r++;
            } else {
                *w++ = *r++;
            }
        }
        p->arg_off[p->argc] = (size_t)(arg - buf);
        p->arg_len[p->argc] = (size_t)(w - arg);
        p->argc++;
        if (p->argc > p->max_args)
            return false;
    }
}

static enum resp_parse_result parse_inline(struct resp_parser *p, char *buf, size_t len)
{
    const char *nl = memchr(buf + p->pos, '\n', len - p->pos);
    if (nl == NULL) {
        if (len - p->pos > RESP_INLINE_MAX)
            return fail(p, "ERR Protocol error: too big inline request");
        return RESP_PARSE_MORE;
    }
    size_t end = (size_t)(nl - buf);
    size_t next = end + 1;
    /* The same limit whether the line came in one piece or many. */
    if (end - p->pos > RESP_INLINE_MAX)
        return fail(p, "ERR Protocol error: too big inline request");
    if (end > p->pos && buf[end - 1] == '\r')
        end--;
    p->argc = 0;
    if (!split_inline(p, buf, p->pos, end)) {
        if (p->argc > p->max_args)
            return fail(p, "ERR Protocol error: invalid multibulk length");
        return fail(p, "ERR Protocol error: unbalanced quotes in request");
    }
    p->pos = next;
    if (p->argc == 0) { /* an empty line: nothing to run */
        resp_parser_next(p);
        return RESP_PARSE_MORE;
    }
    p->inline_cmd = true;
    p->state = ST_DONE;
    return RESP_PARSE_COMMAND;
}

static enum resp_parse_result parse_array_header(struct resp_parser *p, char *buf, size_t len)
{
    size_t cr = find_crlf(buf, p->pos, len);
    if ((cr == 0 ? len - p->pos : cr - p->pos) > RESP_INLINE_MAX)
        return fail(p, "ERR Protocol error: too big mbulk count string");
    if (cr == 0)
        return RESP_PARSE_MORE;
    long long n = 0;
    if (!parse_ll(buf + p->pos + 1, cr - p->pos - 1, &n) || n > (long long)p->max_args)
        return fail(p, "ERR Protocol error: invalid multibulk length");
    p->pos = cr + 2;
    if (n <= 0) { /* *0 and *-1 are skipped, as Redis does */
        resp_parser_next(p);
        return RESP_PARSE_MORE;
    }
    p->want_args = (size_t)n;
    p->argc = 0;
    p->state = ST_BULK_HEADER;
    return RESP_PARSE_MORE;
}

static enum resp_parse_result parse_bulk_header(struct resp_parser *p, char *buf, size_t len)
{
    if (buf[p->pos] != '$')
        return fail(p, "ERR Protocol error: expected '$', got '%c'",
                    isprint((unsigned char)buf[p->pos]) ? buf[p->pos] : '?');
    size_t cr = find_crlf(buf, p->pos, len);
    if ((cr == 0 ? len - p->pos : cr - p->pos) > RESP_INLINE_MAX)
        return fail(p, "ERR Protocol error: too big bulk count string");
    if (cr == 0)
        return RESP_PARSE_MORE;
    long long n = 0;
    if (!parse_ll(buf + p->pos + 1, cr - p->pos - 1, &n) || n < 0 || (uint64_t)n > p->max_bulk)
        return fail(p, "ERR Protocol error: invalid bulk length");
    if (!reserve_args(p, p->argc + 1))
        return fail(p, "ERR Protocol error: out of memory for the arguments");
    p->bulk_len = (uint64_t)n;
    p->pos = cr + 2;
    p->state = ST_BULK_BODY;
    return RESP_PARSE_MORE;
}

static enum resp_parse_result parse_bulk_body(struct resp_parser *p, const char *buf, size_t len,
                                              size_t *need)
{
    size_t have = len - p->pos;
    if (have < p->bulk_len + 2) {
        *need = (size_t)(p->bulk_len + 2 - have);
        return RESP_PARSE_MORE;
    }
    size_t end = p->pos + (size_t)p->bulk_len;
    if (buf[end] != '\r' || buf[end + 1] != '\n')
        return fail(p, "ERR Protocol error: bulk string not followed by CRLF");
    p->arg_off[p->argc] = p->pos;
    p->arg_len[p->argc] = (size_t)p->bulk_len;
    p->argc++;
    p->pos = end + 2;
    if (p->argc == p->want_args) {
        p->state = ST_DONE;
        return RESP_PARSE_COMMAND;
    }
    p->state = ST_BULK_HEADER;
    return RESP_PARSE_MORE;
}

enum resp_parse_result resp_parse(struct resp_parser *p, char *buf, size_t len, size_t *need)
{
    *need = 0;
    for (;;) {
        if (p->pos >= len && p->state != ST_BULK_BODY && p->state != ST_DONE)
            return RESP_PARSE_MORE;
        enum resp_parse_result r = RESP_PARSE_MORE;
        size_t before = p->pos;
        int state = p->state;
        switch (p->state) {
        case ST_START:
            p->start = p->pos;
            r = buf[p->pos] == '*' ? parse_array_header(p, buf, len) : parse_inline(p, buf, len);
            break;
        case ST_BULK_HEADER:
            r = parse_bulk_header(p, buf, len);
            break;
        case ST_BULK_BODY:
            r = parse_bulk_body(p, buf, len, need);
            break;
        default:
            return RESP_PARSE_COMMAND;
        }
        if (r != RESP_PARSE_MORE)
            return r;
        if (p->pos == before && p->state == state)
            return RESP_PARSE_MORE; /* waiting for bytes */
    }
}

/* ---- glob matching (Redis's stringmatchlen) */

static char fold(char c, bool nocase)
{
    return nocase ? (char)tolower((unsigned char)c) : c;
}

/* A bracket class at pat[0] == '['; *used is set to the bytes it spans. */
static bool class_match(const char *pat, size_t pat_len, char c, bool nocase, size_t *used)
{
    size_t i = 1;
    bool negate = false, match = false;
    if (i < pat_len && pat[i] == '^') {
        negate = true;
        i++;
    }
    while (i < pat_len && pat[i] != ']') {
        if (pat[i] == '\\' && i + 1 < pat_len) {
            i++;
            if (fold(pat[i], nocase) == fold(c, nocase))
                match = true;
            i++;
        } else if (i + 2 < pat_len && pat[i + 1] == '-' && pat[i + 2] != ']') {
            char lo = fold(pat[i], nocase), hi = fold(pat[i + 2], nocase), x = fold(c, nocase);
            if (lo > hi) {
                char t = lo;
                lo = hi;
                hi = t;
            }
            if (x >= lo && x <= hi)
                match = true;
            i += 3;
        } else {
            if (fold(pat[i], nocase) == fold(c, nocase))
                match = true;
            i++;
        }
    }
    *used = i < pat_len ? i + 1 : i; /* past the ']' (an open class runs to the end) */
    return negate ? !match : match;
}

bool resp_glob_match(const char *pat, size_t pat_len, const char *s, size_t len, bool nocase)
{
    /* Iterative, with one backtracking point for the last '*': linear in
     * practice, and no recursion for a hostile pattern to exhaust. */
    size_t p = 0, i = 0, star_p = SIZE_MAX, star_i = 0;
    while (i < len) {
        if (p < pat_len && pat[p] == '*') {
            while (p < pat_len && pat[p] == '*')
                p++;
            if (p == pat_len)
                return true;
            star_p = p;
            star_i = i;
            continue;
        }
        bool ok = false;
        size_t step = 1;
        if (p < pat_len) {
            if (pat[p] == '?') {
                ok = true;
            } else if (pat[p] == '[') {
                ok = class_match(pat + p, pat_len - p, s[i], nocase, &step);
            } else if (pat[p] == '\\' && p + 1 < pat_len) {
                ok = fold(pat[p + 1], nocase) == fold(s[i], nocase);
                step = 2;
            } else {
                ok = fold(pat[p], nocase) == fold(s[i], nocase);
            }
        }
        if (ok) {
            p += step;
            i++;
        } else if (star_p != SIZE_MAX) {
            p = star_p;
            i = ++star_i;
        } else {
            return false;
        }
    }
    while (p < pat_len && pat[p] == '*')
        p++;
    return p == pat_len;
}
