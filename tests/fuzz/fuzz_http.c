/*
 * fuzz_http.c - the volume server's parsers of request text (http_parse.h):
 * percent-decoding of keys and query values, UTF-8 validation of keys, query
 * parameters, If-Match/If-None-Match lists, Range headers and bearer tokens.
 *
 * The first byte picks the blob size for Range; the rest is the text. Besides
 * not crashing (buffers are sized exactly, so ASan sees any overrun): decoding
 * never lengthens, encoding then decoding gives the bytes back, and a
 * satisfiable range lies within the blob, and a key written as a JSON string
 * (json_text.h) reads back through jansson as the same bytes.
 */
#include <jansson.h>

#include "fuzz_common.h"
#include "http_parse.h"
#include "json_text.h"

static void check_percent(const char *text, size_t len)
{
    char *out = malloc(len + 1);
    FUZZ_CHECK(out != NULL);
    for (int plus = 0; plus < 2; plus++) {
        long n = http_percent_decode(text, len, plus, out);
        FUZZ_CHECK(n >= -1 && n <= (long)len);
        if (n >= 0)
            (void)http_utf8_valid(out, (size_t)n);
    }
    size_t cap = 3 * len + 1;
    char *enc = malloc(cap);
    FUZZ_CHECK(enc != NULL);
    size_t elen = http_percent_encode(text, len, enc, cap);
    FUZZ_CHECK(elen == strlen(enc) && elen < cap);
    char *back = malloc(elen + 1);
    FUZZ_CHECK(back != NULL);
    long blen = http_percent_decode(enc, elen, false, back);
    FUZZ_CHECK(blen == (long)len && memcmp(back, text, len) == 0);
    /* Too small a buffer gives 0, never a cut-off encoding. */
    size_t small = http_percent_encode(text, len, enc, 3);
    FUZZ_CHECK(small == (elen + 1 <= 3 ? elen : 0));
    free(back);
    free(enc);
    free(out);
}

static void check_query(const char *text, size_t len)
{
    static const char *names[] = {"prefix", "limit", "after", "format", ""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *val = NULL;
        size_t val_len = 0;
        int rc = http_query_param(text, len, names[i], &val, &val_len);
        FUZZ_CHECK(rc >= -2 && rc <= 1);
        if (rc == 1) {
            FUZZ_CHECK(val != NULL && val_len <= len && val[val_len] == '\0');
            free(val);
        }
    }
}

static void check_headers(const char *cstr, uint64_t size)
{
    for (int weak = 0; weak < 2; weak++) {
        struct blob_etag_list list;
        memset(&list, 0, sizeof(list));
        if (http_parse_etag_list(cstr, weak, &list) == 0)
            FUZZ_CHECK(list.count <= BLOB_ETAG_LIST_MAX);
    }
    uint64_t first = 0, last = 0;
    enum http_range r = http_parse_range(cstr, size, &first, &last);
    FUZZ_CHECK(r == HTTP_RANGE_NONE || r == HTTP_RANGE_OK || r == HTTP_RANGE_UNSATISFIABLE);
    if (r == HTTP_RANGE_OK)
        FUZZ_CHECK(first <= last && last < size);
    (void)http_bearer_matches(cstr, "s3cr3t-token");
}

/* Keys are UTF-8 (the server refuses others): as a JSON string they read
 * back whole, embedded zeros included. */
static void check_json_string(const char *text, size_t len)
{
    if (!http_utf8_valid(text, len))
        return;
    struct growbuf t = {0};
    growbuf_append(&t, "[", 1);
    json_text_string(&t, text, len);
    growbuf_append(&t, "]", 1);
    FUZZ_CHECK(!t.failed && t.data != NULL);
    json_error_t err;
    json_t *v = json_loadb(t.data, t.len, JSON_ALLOW_NUL, &err);
    FUZZ_CHECK(v != NULL && json_array_size(v) == 1);
    json_t *s = json_array_get(v, 0);
    FUZZ_CHECK(json_string_length(s) == len && memcmp(json_string_value(s), text, len) == 0);
    json_decref(v);
    growbuf_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const uint64_t sizes[] = {0, 1, 2, 10, 100, 4096, 1u << 20, UINT64_MAX / 2};
    uint64_t blob_size = sizes[data[0] % (sizeof(sizes) / sizeof(sizes[0]))];
    size_t len = size - 1;
    char *text = malloc(len + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data + 1, len);
    text[len] = '\0';
    check_percent(text, len);
    check_query(text, len);
    check_headers(text, blob_size);
    check_json_string(text, len);
    free(text);
    return 0;
}
