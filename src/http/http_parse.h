/*
 * http_parse.h - the pieces of HTTP that libmicrohttpd leaves to the
 * application: percent-encoding, query parameters, entity-tag lists, byte
 * ranges, bearer tokens, and UTF-8 validation of keys.
 *
 * Pure functions over (pointer, length) pairs: no allocation unless stated,
 * no dependency on the server, so that every edge case can be reasoned about
 * (and tested) in isolation.
 */
#ifndef VS_HTTP_PARSE_H
#define VS_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

/*
 * Decodes %XX escapes of in[0..in_len) into out, which has room for in_len
 * bytes (decoding never lengthens). With plus_is_space, '+' becomes ' ' (the
 * form encoding of query strings). Returns the decoded length, or -1 when an
 * escape is malformed ("%", "%4", "%zz").
 */
long http_percent_decode(const char *in, size_t in_len, bool plus_is_space, char *out);

/*
 * Encodes in[0..len) for use in a URL query value or a header: every byte
 * but A-Z a-z 0-9 - . _ ~ becomes %XX. out has out_len bytes; needs at most
 * 3 * len + 1. Returns the length written (NUL-terminated), or 0 when out is
 * too small.
 */
size_t http_percent_encode(const void *in, size_t len, char *out, size_t out_len);

/*
 * Finds parameter name in the query string q[0..q_len) ("a=1&b=x%20y") and
 * decodes its value into a new allocation (NUL-terminated, released with
 * free) at *value, of *value_len bytes. The first occurrence wins; "name"
 * without '=' has the empty value. Returns 1 when found, 0 when absent, -1
 * when the value is malformed, -2 when memory runs out.
 */
int http_query_param(const char *q, size_t q_len, const char *name, char **value,
                     size_t *value_len);

/* True when s[0..len) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
bool http_utf8_valid(const void *s, size_t len);

/*
 * Parses an If-Match or If-None-Match value ("*", or a list such as
 * "\"3e25960a\", W/\"0badf00d\"") into *out. Tags written without quotes are
 * accepted too, for hand-typed requests. weak_ok says whether W/ tags count
 * by their value (If-None-Match, weak comparison) or match nothing (If-Match,
 * strong comparison). Returns 0, or -1 when the value is malformed or names
 * more than BLOB_ETAG_LIST_MAX tags.
 */
int http_parse_etag_list(const char *value, bool weak_ok, struct blob_etag_list *out);

/* Writes an etag as 8 lower-case hex digits, quoted ("\"3e25960a\"") when
 * quoted is true, into out (at least 11 bytes). */
void http_format_etag(uint32_t etag, bool quoted, char *out, size_t out_len);

enum http_range {
    HTTP_RANGE_NONE,         /* no usable single byte range: serve it all */
    HTTP_RANGE_OK,           /* [*first, *last] lies within the blob */
    HTTP_RANGE_UNSATISFIABLE /* 416 */
};

/*
 * Interprets a Range header for a blob of size bytes. A header that is not a
 * single "bytes=" range (another unit, a list of ranges, bad syntax) is
 * ignored, as RFC 9110 section 14.2 allows.
 */
enum http_range http_parse_range(const char *value, uint64_t size, uint64_t *first, uint64_t *last);

/* True when an Authorization header value is "Bearer <token>" (the scheme in
 * any case). The token comparison takes the same time wherever it differs. */
bool http_bearer_matches(const char *value, const char *token);

#endif /* VS_HTTP_PARSE_H */
