/*
 * http_parse.c - percent-encoding, query parameters, entity tags, ranges,
 * bearer tokens and UTF-8 checks for volume-server.
 *
 * Every parser here reads within the lengths it is given and treats its input
 * as hostile: numbers are checked for overflow, lists are bounded, and
 * anything malformed is reported rather than guessed at.
 */
#include "http_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hex.h"

long http_percent_decode(const char *in, size_t in_len, bool plus_is_space, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < in_len; i++) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in_len)
                return -1;
            int hi = util_hex_value(in[i + 1]);
            int lo = util_hex_value(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out[o++] = ' ';
        } else {
            out[o++] = c;
        }
    }
    return (long)o;
}

size_t http_percent_encode(const void *in, size_t len, char *out, size_t out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = in;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            if (o + 2 > out_len)
                return 0;
            out[o++] = (char)c;
        } else {
            if (o + 4 > out_len)
                return 0;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o + 1 > out_len)
        return 0;
    out[o] = '\0';
    return o;
}

int http_query_param(const char *q, size_t q_len, const char *name, char **value, size_t *value_len)
{
    size_t name_len = strlen(name);
    size_t pos = 0;
    while (pos < q_len) {
        const char *pair = q + pos;
        const char *amp = memchr(pair, '&', q_len - pos);
        size_t pair_len = amp != NULL ? (size_t)(amp - pair) : q_len - pos;
        pos += pair_len + 1;
        const char *eq = memchr(pair, '=', pair_len);
        size_t key_len = eq != NULL ? (size_t)(eq - pair) : pair_len;
        /* Parameter names of this API are plain words: compare them raw. */
        if (key_len != name_len || memcmp(pair, name, name_len) != 0)
            continue;
        const char *raw = eq != NULL ? eq + 1 : pair + pair_len;
        size_t raw_len = (size_t)(pair + pair_len - raw);
        char *buf = malloc(raw_len + 1);
        if (buf == NULL)
            return -2;
        long n = http_percent_decode(raw, raw_len, true, buf);
        if (n < 0) {
            free(buf);
            return -1;
        }
        buf[n] = '\0';
        *value = buf;
        *value_len = (size_t)n;
        return 1;
    }
    return 0;
}

/* Length of the UTF-8 sequence that starts with byte c, or 0 if c cannot
 * start one. */
static size_t utf8_sequence_length(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

bool http_utf8_valid(const void *s, size_t len)
{
    const unsigned char *p = s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_sequence_length(p[i]);
        if (n == 0 || n > len - i)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
        }
        /* The second byte's range rules out overlong forms (E0, F0),
         * surrogates (ED) and code points above U+10FFFF (F4). */
        if ((p[i] == 0xe0 && p[i + 1] < 0xa0) || (p[i] == 0xed && p[i + 1] > 0x9f) ||
            (p[i] == 0xf0 && p[i + 1] < 0x90) || (p[i] == 0xf4 && p[i + 1] > 0x8f))
            return false;
        i += n;
    }
    return true;
}

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Reads one entity tag at *pp, advancing past it. Sets *weak, and *tag when
 * the opaque part is 8 hex digits (an etag this server made). Returns 1 for
 * one of ours, 0 for a foreign tag, -1 when malformed. */
static int read_etag(const char **pp, bool *weak, uint32_t *tag)
{
    const char *p = *pp;
    *weak = false;
    if (p[0] == 'W' && p[1] == '/') {
        *weak = true;
        p += 2;
    }
    const char *start = p;
    const char *end = NULL;
    if (*p == '"') {
        start = ++p;
        end = strchr(p, '"');
        if (end == NULL)
            return -1;
        *pp = end + 1;
    } else {
        end = p + strcspn(p, ", \t");
        if (end == p)
            return -1;
        *pp = end;
    }
    size_t len = (size_t)(end - start);
    if (len != 8)
        return 0;
    uint32_t v = 0;
    for (size_t i = 0; i < 8; i++) {
        int h = util_hex_value(start[i]);
        if (h < 0)
            return 0;
        v = v << 4 | (uint32_t)h;
    }
    *tag = v;
    return 1;
}

int http_parse_etag_list(const char *value, bool weak_ok, struct blob_etag_list *out)
{
    memset(out, 0, sizeof(*out));
    out->present = true;
    const char *p = skip_space(value);
    if (p[0] == '*' && *skip_space(p + 1) == '\0') {
        out->any = true;
        return 0;
    }
    while (*p != '\0') {
        if (*p == ',' || *p == ' ' || *p == '\t') {
            p++;
            continue;
        }
        bool weak = false;
        uint32_t tag = 0;
        int r = read_etag(&p, &weak, &tag);
        if (r < 0)
            return -1;
        if (out->count + out->foreign >= BLOB_ETAG_LIST_MAX)
            return -1;
        if (r == 1 && (!weak || weak_ok))
            out->tags[out->count++] = tag;
        else
            out->foreign++;
        p = skip_space(p);
        if (*p != '\0' && *p != ',')
            return -1;
    }
    return out->count + out->foreign > 0 ? 0 : -1;
}

void http_format_etag(uint32_t etag, bool quoted, char *out, size_t out_len)
{
    snprintf(out, out_len, quoted ? "\"%08x\"" : "%08x", etag);
}

/* Reads decimal digits at *pp; saturates at UINT64_MAX. Returns the number
 * of digits read. */
static size_t read_number(const char **pp, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;
    size_t digits = 0;
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        uint64_t d = (uint64_t)(*p - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *pp = p;
    *out = v;
    return digits;
}

enum http_range http_parse_range(const char *value, uint64_t size, uint64_t *first, uint64_t *last)
{
    const char *p = skip_space(value);
    if (strncasecmp(p, "bytes", 5) != 0)
        return HTTP_RANGE_NONE;
    p = skip_space(p + 5);
    if (*p != '=')
        return HTTP_RANGE_NONE;
    p = skip_space(p + 1);
    if (strchr(p, ',') != NULL)
        return HTTP_RANGE_NONE; /* several ranges: the whole blob is simpler */
    uint64_t a = 0;
    uint64_t b = 0;
    size_t a_digits = read_number(&p, &a);
    if (*p != '-')
        return HTTP_RANGE_NONE;
    p++;
    size_t b_digits = read_number(&p, &b);
    if (*skip_space(p) != '\0' || (a_digits == 0 && b_digits == 0))
        return HTTP_RANGE_NONE;
    if (a_digits == 0) { /* "-n": the last n bytes */
        if (b == 0 || size == 0)
            return HTTP_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return HTTP_RANGE_OK;
    }
    if (b_digits > 0 && b < a)
        return HTTP_RANGE_NONE; /* invalid, so ignored */
    if (a >= size)
        return HTTP_RANGE_UNSATISFIABLE;
    *first = a;
    *last = b_digits == 0 || b >= size ? size - 1 : b;
    return HTTP_RANGE_OK;
}

bool http_bearer_matches(const char *value, const char *token)
{
    const char *p = skip_space(value);
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return false;
    p = skip_space(p + 6);
    size_t len = strcspn(p, " \t");
    if (*skip_space(p + len) != '\0')
        return false;
    size_t token_len = strlen(token);
    /* Every byte of the expected token is compared, whatever the input, so
     * the time taken does not tell where a guess went wrong. */
    unsigned char diff = (unsigned char)(len != token_len);
    for (size_t i = 0; i < token_len; i++)
        diff |= (unsigned char)(token[i] ^ (i < len ? p[i] : 0));
    return diff == 0;
}
