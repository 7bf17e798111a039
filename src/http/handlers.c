/*
 * handlers.c - routing and the endpoints of volume-server.
 *
 * The route table is the API of DESIGN.md section 5: each path, the methods
 * it accepts (anything else is 405 with Allow) and whether it needs the
 * bearer token. Blob keys are the rest of the path after /blobs/,
 * percent-decoded once (so "a%2Fb" and "a/b" are the same key), and must be
 * valid UTF-8 of 1 to 1024 bytes.
 */
#include "handlers.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_parse.h"
#include "metrics.h"
#include "replication.h"
#include "repl.h"
#include "response.h"
#include "ui.h"

#define KEY_MAX       1024 /* bytes of a blob key */
#define LIST_PAGE_MAX 1000 /* largest ?limit= of GET /blobs */
#define BLOBS_PREFIX  "/blobs/"

#define M(x) (1u << (x))

struct route {
    const char *path; /* exact path; NULL: the /blobs/{key} prefix */
    enum vs_route route;
    unsigned methods; /* bit per enum vs_method */
    const char *allow;
    bool open; /* served without the bearer token */
};

static const struct route routes[] = {
    {"/", VS_ROUTE_HEALTH, M(VS_GET) | M(VS_HEAD), "GET, HEAD", true},
    {"/health", VS_ROUTE_HEALTH, M(VS_GET) | M(VS_HEAD), "GET, HEAD", true},
    {"/metrics", VS_ROUTE_METRICS, M(VS_GET) | M(VS_HEAD), "GET, HEAD", false},
    {"/blobs", VS_ROUTE_LIST, M(VS_GET) | M(VS_HEAD), "GET, HEAD", false},
    {"/admin/compact", VS_ROUTE_COMPACT, M(VS_POST), "POST", false},
    {"/admin/snapshot", VS_ROUTE_SNAPSHOT, M(VS_POST), "POST", false},
    {"/admin/backup", VS_ROUTE_BACKUP, M(VS_POST), "POST", false},
    {"/admin/promote", VS_ROUTE_PROMOTE, M(VS_POST), "POST", false},
    {"/replication/log", VS_ROUTE_REPL_LOG, M(VS_GET), "GET", false},
    {"/replication/ack", VS_ROUTE_REPL_ACK, M(VS_GET), "GET", false},
    {NULL, VS_ROUTE_BLOB, M(VS_GET) | M(VS_HEAD) | M(VS_PUT) | M(VS_POST) | M(VS_DELETE),
     "GET, HEAD, PUT, POST, DELETE", false},
};

/* The status page and its files: public, as they hold no data (ui.h). */
static const struct route ui_route = {"/ui", VS_ROUTE_UI, M(VS_GET) | M(VS_HEAD), "GET, HEAD",
                                      true};

static const struct route *find_route(const char *path, size_t len)
{
    if (ui_path(path, len))
        return &ui_route;
    size_t prefix = strlen(BLOBS_PREFIX);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *rt = &routes[i];
        if (rt->path == NULL) {
            if (len >= prefix && memcmp(path, BLOBS_PREFIX, prefix) == 0)
                return rt;
        } else if (strlen(rt->path) == len && memcmp(rt->path, path, len) == 0) {
            return rt;
        }
    }
    return NULL;
}

static bool authorized(struct vs_request *r)
{
    const char *token = r->app->cfg->auth_token;
    if (token[0] == '\0')
        return true;
    const char *value =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    return value != NULL && http_bearer_matches(value, token);
}

/* Decodes and checks the key of a /blobs/{key} path. */
static int decode_key(struct vs_request *r)
{
    size_t prefix = strlen(BLOBS_PREFIX);
    const char *raw = r->uri + prefix;
    size_t raw_len = r->path_len - prefix;
    r->key = malloc(raw_len + 1);
    if (r->key == NULL) {
        vs_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
        return -1;
    }
    long n = http_percent_decode(raw, raw_len, false, r->key);
    if (n < 0) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "Invalid key: malformed percent-encoding");
        return -1;
    }
    r->key[n] = '\0';
    r->key_len = (size_t)n;
    if (r->key_len == 0 || r->key_len > KEY_MAX) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "Invalid key: must be 1 to %d bytes, not %zu",
                       KEY_MAX, r->key_len);
        return -1;
    }
    if (!http_utf8_valid(r->key, r->key_len)) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "Invalid key: not valid UTF-8");
        return -1;
    }
    return 0;
}

int handlers_route(struct vs_request *r)
{
    const struct route *rt = find_route(r->uri, r->path_len);
    if (rt == NULL) {
        vs_reply_error(r, MHD_HTTP_NOT_FOUND, "Not found");
        return -1;
    }
    r->route = rt->route;
    if (!rt->open && !authorized(r)) {
        vs_reply_error(r, MHD_HTTP_UNAUTHORIZED, "Unauthorized: a valid bearer token is required");
        vs_reply_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"volume-server\"");
        return -1;
    }
    if ((rt->methods & M(r->method)) == 0) {
        vs_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "Method not allowed");
        vs_reply_header(r, MHD_HTTP_HEADER_ALLOW, rt->allow);
        return -1;
    }
    if (rt->route == VS_ROUTE_BLOB && decode_key(r) != 0)
        return -1;
    if (rt->route == VS_ROUTE_BLOB && r->method != VS_GET && r->method != VS_HEAD &&
        !repl_writable(r->app->repl)) {
        repl_http_refuse_write(r);
        return -1;
    }
    r->wants_body = rt->route == VS_ROUTE_BLOB && (r->method == VS_PUT || r->method == VS_POST);
    return 0;
}

static const char *header(struct vs_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static int query_param(struct vs_request *r, const char *name, char **value, size_t *len);

/* The longest ?ttl= taken: about 100 years. */
#define TTL_MAX_SECS 3153600000ull

/* A PUT's ?ttl=SECONDS: r->expire_at_ms is then that many seconds from now.
 * Replies 400 and returns -1 for a ttl that is not a whole number of
 * seconds from 1 to TTL_MAX_SECS. */
static int parse_ttl(struct vs_request *r)
{
    char *text = NULL;
    size_t len = 0;
    if (query_param(r, "ttl", &text, &len) != 0)
        return -1;
    if (text == NULL)
        return 0;
    unsigned long long secs = 0;
    bool ok = len > 0 && len <= 10 && strspn(text, "0123456789") == len;
    if (ok)
        secs = strtoull(text, NULL, 10);
    free(text);
    if (!ok || secs == 0 || secs > TTL_MAX_SECS) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST,
                       "Invalid ttl: a whole number of seconds from 1 to %llu", TTL_MAX_SECS);
        return -1;
    }
    r->expire_at_ms = vs_wall_ms() + secs * 1000u;
    return 0;
}

/* An Expires header (RFC 9111 section 5.3, an IMF-fixdate) for a blob that
 * expires at expire_at_ms: the second it is gone by. */
static void add_expires_header(struct vs_request *r, uint64_t expire_at_ms)
{
    if (expire_at_ms == 0)
        return;
    time_t t = (time_t)(expire_at_ms / 1000u);
    struct tm tm;
    char text[64];
    if (gmtime_r(&t, &tm) && strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0)
        vs_reply_header(r, MHD_HTTP_HEADER_EXPIRES, text);
}

int handlers_prepare(struct vs_request *r)
{
    r->if_none_match = header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    r->range = header(r, MHD_HTTP_HEADER_RANGE);
    r->if_range = header(r, MHD_HTTP_HEADER_IF_RANGE);
    r->accept = header(r, MHD_HTTP_HEADER_ACCEPT);
    bool write = r->method == VS_PUT || r->method == VS_POST || r->method == VS_DELETE;
    if (r->route != VS_ROUTE_BLOB || !write)
        return 0;
    if (r->method != VS_DELETE && parse_ttl(r) != 0)
        return -1;
    const char *im = header(r, MHD_HTTP_HEADER_IF_MATCH);
    if (im != NULL && http_parse_etag_list(im, false, &r->cond.if_match) != 0) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "Malformed If-Match header");
        return -1;
    }
    if (r->if_none_match != NULL &&
        http_parse_etag_list(r->if_none_match, true, &r->cond.if_none_match) != 0) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "Malformed If-None-Match header");
        return -1;
    }
    return 0;
}

bool handlers_may_block(const struct vs_request *r)
{
    return r->route == VS_ROUTE_COMPACT || r->route == VS_ROUTE_SNAPSHOT ||
           r->route == VS_ROUTE_BACKUP || r->route == VS_ROUTE_PROMOTE ||
           r->route == VS_ROUTE_REPL_LOG;
}

static bool is_blob_write(const struct vs_request *r)
{
    return r->route == VS_ROUTE_BLOB && r->method != VS_GET && r->method != VS_HEAD;
}

/* In the other sync modes a write returns as soon as it is written: it runs
 * on the HTTP thread (handlers_run), as a read does. */
bool handlers_write_async(const struct vs_request *r)
{
    return is_blob_write(r) && r->app->cfg->sync_mode == VS_SYNC_ALWAYS;
}

static void add_etag_header(struct vs_request *r, uint32_t etag)
{
    char text[16];
    http_format_etag(etag, true, text, sizeof(text));
    vs_reply_header(r, MHD_HTTP_HEADER_ETAG, text);
}

/* True when an If-Range value allows the range: it must be our etag, by
 * strong comparison. A date or anything else means "send it all". */
static bool if_range_holds(const char *if_range, uint32_t etag)
{
    struct blob_etag_list list;
    if (if_range == NULL)
        return true;
    return http_parse_etag_list(if_range, false, &list) == 0 && !list.any && list.count == 1 &&
           list.foreign == 0 && list.tags[0] == etag;
}

/* Serves [first, last] of val as 206; the response frees val. */
static void reply_range(struct vs_request *r, void *val, size_t len, uint64_t first, uint64_t last)
{
    char content_range[80];
    snprintf(content_range, sizeof(content_range), "bytes %llu-%llu/%zu", (unsigned long long)first,
             (unsigned long long)last, len);
    vs_reply_bytes(r, MHD_HTTP_PARTIAL_CONTENT, (char *)val + first, (size_t)(last - first + 1),
                   "application/octet-stream", kv_free, val);
    vs_reply_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, content_range);
}

/* HEAD, and a GET whose If-None-Match names the blob's etag, need only its
 * size and etag: kv_stat, without reading the bytes. Returns true when that
 * answered the request. */
static bool blob_read_head(struct vs_request *r)
{
    struct blob_etag_list inm;
    bool conditional =
        r->if_none_match != NULL && http_parse_etag_list(r->if_none_match, true, &inm) == 0;
    if (r->method != VS_HEAD && !conditional)
        return false;
    uint64_t size = 0;
    uint32_t etag = 0;
    uint64_t expire_at = 0;
    int rc = blob_stat(r->app->store, r->key, r->key_len, &size, &etag, &expire_at);
    if (rc != 0) {
        vs_reply_store_error(r, rc);
        return true;
    }
    if (conditional && (inm.any || blob_etag_list_has(&inm, etag))) {
        /* MHD 0.9.75 adds "Content-Length: 0" to a 304 whatever is set. */
        vs_reply_empty(r, MHD_HTTP_NOT_MODIFIED);
        add_etag_header(r, etag);
        add_expires_header(r, expire_at);
        return true;
    }
    if (r->method != VS_HEAD)
        return false; /* a GET of a blob the list does not name: read it */
    vs_reply_head(r, MHD_HTTP_OK, size, "application/octet-stream");
    add_etag_header(r, etag);
    add_expires_header(r, expire_at);
    vs_reply_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    return true;
}

static void blob_read(struct vs_request *r)
{
    if (blob_read_head(r))
        return;
    void *val = NULL;
    size_t len = 0;
    uint32_t etag = 0;
    int rc = blob_get(r->app->store, r->key, r->key_len, &val, &len, &etag);
    if (rc != 0) {
        vs_reply_store_error(r, rc);
        return;
    }
    struct blob_etag_list inm;
    if (r->if_none_match != NULL && http_parse_etag_list(r->if_none_match, true, &inm) == 0 &&
        (inm.any || blob_etag_list_has(&inm, etag))) {
        /* It changed to a value the list names between the stat and now. */
        kv_free(val);
        vs_reply_empty(r, MHD_HTTP_NOT_MODIFIED);
        add_etag_header(r, etag);
        return;
    }
    uint64_t first = 0;
    uint64_t last = 0;
    enum http_range range = HTTP_RANGE_NONE;
    if (r->range != NULL && if_range_holds(r->if_range, etag))
        range = http_parse_range(r->range, len, &first, &last);
    if (range == HTTP_RANGE_UNSATISFIABLE) {
        char content_range[48];
        kv_free(val);
        snprintf(content_range, sizeof(content_range), "bytes */%zu", len);
        vs_reply_error(r, MHD_HTTP_RANGE_NOT_SATISFIABLE, "Range not satisfiable");
        vs_reply_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, content_range);
    } else if (range == HTTP_RANGE_OK) {
        reply_range(r, val, len, first, last);
    } else {
        vs_reply_bytes(r, MHD_HTTP_OK, val, len, "application/octet-stream", kv_free, val);
    }
    add_etag_header(r, etag);
    vs_reply_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    /* The expiry of the value read: its record's, when the stat finds the
     * same value (a write in between leaves the header out). */
    uint64_t size = 0, expire_at = 0;
    uint32_t now_etag = 0;
    if (blob_stat(r->app->store, r->key, r->key_len, &size, &now_etag, &expire_at) == 0 &&
        now_etag == etag && size == len)
        add_expires_header(r, expire_at);
}

/* The response of a put: 201 with the blob's etag, or the error. */
static void reply_put(struct vs_request *r, int rc, uint32_t etag)
{
    size_t size = r->body_len;
    if (rc != 0) {
        vs_reply_store_error(r, rc);
        return;
    }
    char text[16];
    http_format_etag(etag, false, text, sizeof(text));
    const char *volume_id = blob_volume_id(r->app->store);
    struct growbuf body = {0};
    growbuf_append(&body, "{", 1);
    json_text_member(&body, "key");
    json_text_string(&body, r->key, r->key_len);
    json_text_member(&body, "etag");
    json_text_string(&body, text, strlen(text));
    json_text_member(&body, "size");
    json_text_uint(&body, size);
    json_text_member(&body, "volume_id");
    json_text_string(&body, volume_id, strlen(volume_id));
    growbuf_append(&body, "}", 1);
    vs_reply_json_text(r, MHD_HTTP_CREATED, &body);
    add_etag_header(r, etag);
}

static void reply_delete(struct vs_request *r, int rc)
{
    if (rc != 0) {
        vs_reply_store_error(r, rc);
        return;
    }
    vs_reply_empty(r, MHD_HTTP_NO_CONTENT);
}

static void blob_write(struct vs_request *r)
{
    uint32_t etag = 0;
    int rc = blob_put_expiring(r->app->store, r->key, r->key_len, r->body, r->body_len, &r->cond,
                               r->expire_at_ms, &etag);
    reply_put(r, rc, etag);
}

static void blob_remove(struct vs_request *r)
{
    reply_delete(r, blob_delete(r->app->store, r->key, r->key_len, &r->cond));
}

int handlers_write_prepare(struct vs_request *r)
{
    bool del = r->method == VS_DELETE;
    int rc = blob_write_prepare(r->app->store, &r->write, del, r->key, r->key_len, r->body,
                                r->body_len, &r->cond);
    if (rc == 0) {
        r->write.op.expire_at_ms = del ? 0 : r->expire_at_ms;
        return 0;
    }
    if (del)
        reply_delete(r, rc);
    else
        reply_put(r, rc, 0);
    return -1;
}

bool handlers_write_done(struct vs_request *r, int rc)
{
    rc = blob_write_result(&r->write, rc);
    if (rc == BLOB_ERETRY)
        return true;
    if (r->method == VS_DELETE)
        reply_delete(r, rc);
    else
        reply_put(r, rc, r->write.op.value_crc);
    return false;
}

/* ---- GET /blobs: keys in byte order, a page at a time or all of them */

/* The query of GET /blobs. */
struct list_query {
    char *prefix, *start, *end, *after;
    size_t prefix_len, start_len, end_len, after_len;
    size_t limit; /* 0: the whole listing, streamed */
};

static void list_query_free(struct list_query *q)
{
    free(q->prefix);
    free(q->start);
    free(q->end);
    free(q->after);
}

/* The range of kv_range that the query asks for, from start or after. */
static kv_range_opts list_range(const struct list_query *q)
{
    kv_range_opts o = {.prefix = q->prefix,
                       .prefix_len = q->prefix_len,
                       .end = q->end,
                       .end_len = q->end_len,
                       .start = q->after ? q->after : q->start,
                       .start_len = q->after ? q->after_len : q->start_len,
                       .flags = q->after ? KV_RANGE_AFTER : 0};
    return o;
}

/* What a page of GET /blobs gathers from kv_range. */
struct listing {
    struct growbuf keys; /* the page's keys, as JSON strings with commas between */
    bool comma;          /* the next key goes after a comma */
    size_t limit;        /* the page's keys; one more tells whether another page follows */
    size_t seen;
    bool more;  /* a key beyond the page exists */
    char *last; /* the page's last key */
    size_t last_len;
    bool failed;
};

static int list_one(const void *key, size_t key_len, const void *val, size_t val_len, void *ctx)
{
    (void)val;
    (void)val_len;
    struct listing *l = ctx;
    if (l->limit != 0 && l->seen == l->limit) {
        l->more = true;
        return 1;
    }
    l->seen++;
    if (l->limit != 0 && l->seen == l->limit) {
        l->last = malloc(key_len + 1);
        if (l->last == NULL)
            goto fail;
        memcpy(l->last, key, key_len);
        l->last_len = key_len;
    }
    /* A key stored by other means than this API may not be UTF-8; JSON
     * cannot carry it, and no request of this API can name it: skip it. */
    if (!http_utf8_valid(key, key_len))
        return 0;
    if (l->comma)
        growbuf_append(&l->keys, ",", 1);
    json_text_string(&l->keys, key, key_len);
    l->comma = true;
    if (l->keys.failed)
        goto fail;
    return 0;
fail:
    l->failed = true;
    return 1;
}

/* Reads an optional query parameter; replies 400 and returns -1 when it is
 * malformed. */
static int query_param(struct vs_request *r, const char *name, char **value, size_t *len)
{
    *value = NULL;
    *len = 0;
    if (r->path_len >= r->uri_len)
        return 0;
    const char *q = r->uri + r->path_len + 1;
    int found = http_query_param(q, r->uri_len - r->path_len - 1, name, value, len);
    if (found == -2) {
        vs_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
        return -1;
    }
    if (found < 0) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "Malformed query parameter %s", name);
        return -1;
    }
    return 0;
}

static int parse_limit(struct vs_request *r, size_t *limit)
{
    char *text = NULL;
    size_t len = 0;
    *limit = 0;
    if (query_param(r, "limit", &text, &len) != 0)
        return -1;
    if (text == NULL)
        return 0;
    unsigned long long v = 0;
    bool ok = len > 0 && len <= 18 && strspn(text, "0123456789") == len;
    if (ok)
        v = strtoull(text, NULL, 10);
    free(text);
    if (!ok || v == 0 || v > LIST_PAGE_MAX) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST,
                       "Invalid limit: a page holds 1 to %d keys; page on with the after= that "
                       "X-Next-After gives, or leave limit out for every key",
                       LIST_PAGE_MAX);
        return -1;
    }
    *limit = (size_t)v;
    return 0;
}

static int parse_list_query(struct vs_request *r, struct list_query *q)
{
    if (parse_limit(r, &q->limit) != 0 ||
        query_param(r, "prefix", &q->prefix, &q->prefix_len) != 0 ||
        query_param(r, "start", &q->start, &q->start_len) != 0 ||
        query_param(r, "end", &q->end, &q->end_len) != 0 ||
        query_param(r, "after", &q->after, &q->after_len) != 0)
        return -1;
    if (q->start != NULL && q->after != NULL) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST,
                       "Use start= (from a key on) or after= (from the key after it), not both");
        return -1;
    }
    return 0;
}

static void set_next_after(struct vs_request *r, const struct listing *l)
{
    size_t cap = 3 * l->last_len + 1;
    char *encoded = malloc(cap);
    if (encoded != NULL && http_percent_encode(l->last, l->last_len, encoded, cap) > 0)
        vs_reply_header(r, "X-Next-After", encoded);
    free(encoded);
}

/* One page: a JSON array, and X-Next-After when more keys follow. */
static void list_page(struct vs_request *r, const struct list_query *q)
{
    struct listing l = {.limit = q->limit};
    growbuf_append(&l.keys, "[", 1);
    kv_range_opts o = list_range(q);
    o.limit = q->limit + 1;
    int rc = l.keys.failed ? 0 : kv_range(blob_kv(r->app->store), &o, list_one, &l);
    growbuf_append(&l.keys, "]", 1);
    if (l.failed || l.keys.failed) {
        vs_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
    } else if (rc < 0) {
        vs_reply_store_error(r, rc);
    } else {
        vs_reply_json_text(r, MHD_HTTP_OK, &l.keys);
        if (l.more && l.last != NULL)
            set_next_after(r, &l);
    }
    growbuf_free(&l.keys);
    free(l.last);
}

/*
 * The whole listing, streamed: a JSON array sent in chunks, each chunk a
 * page of kv_range (consistent by itself) taken when the connection can
 * take more, so that memory stays bounded whatever the number of keys.
 */
struct list_stream {
    kv_store *kv;
    struct list_query q;
    char *last; /* the last key read, where the next page starts after */
    size_t last_len;
    bool begun, ended, any; /* "[" sent; every key read; a key sent */
    char *text;             /* the JSON not sent yet: text[off, len) */
    size_t len, off;
};

static void list_stream_free(void *cls)
{
    struct list_stream *ls = cls;
    list_query_free(&ls->q);
    free(ls->last);
    free(ls->text);
    free(ls);
}

/* Reads the next page into ls->text. Returns 0, or -1 (out of memory or a
 * failure of the store). */
static int list_stream_fill(struct list_stream *ls)
{
    /* The next piece of the array: "[" before the first page, the page's
     * keys (after a comma when keys went before), "]" after the last. */
    struct listing l = {.limit = KV_RANGE_PAGE, .comma = ls->any};
    if (!ls->begun)
        growbuf_append(&l.keys, "[", 1);
    kv_range_opts o = list_range(&ls->q);
    if (ls->last != NULL) {
        o.start = ls->last;
        o.start_len = ls->last_len;
        o.flags = KV_RANGE_AFTER;
    }
    o.limit = KV_RANGE_PAGE + 1;
    int rc = kv_range(ls->kv, &o, list_one, &l);
    if (!l.more)
        growbuf_append(&l.keys, "]", 1);
    if (rc < 0 || l.failed || l.keys.failed) {
        growbuf_free(&l.keys);
        free(l.last);
        return -1;
    }
    ls->begun = true;
    ls->any = l.comma;
    ls->ended = !l.more;
    free(ls->text);
    ls->text = l.keys.data; /* the stream takes the page's text */
    ls->len = l.keys.len;
    ls->off = 0;
    free(ls->last);
    ls->last = l.last;
    ls->last_len = l.last_len;
    return 0;
}

static ssize_t list_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct list_stream *ls = cls;
    while (ls->off == ls->len) {
        if (ls->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (list_stream_fill(ls) != 0)
            return MHD_CONTENT_READER_END_WITH_ERROR; /* the client sees a cut body */
    }
    size_t n = ls->len - ls->off < max ? ls->len - ls->off : max;
    memcpy(buf, ls->text + ls->off, n);
    ls->off += n;
    return (ssize_t)n;
}

static void list_all(struct vs_request *r, struct list_query *q)
{
    struct list_stream *ls = calloc(1, sizeof(*ls));
    if (ls == NULL) {
        vs_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
        return;
    }
    ls->kv = blob_kv(r->app->store);
    ls->q = *q;
    memset(q, 0, sizeof(*q)); /* the stream owns the strings now */
    /* The first page is read now, so that a failure is still an error
     * status rather than a cut body. */
    if (list_stream_fill(ls) != 0) {
        list_stream_free(ls);
        vs_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Listing failed");
        return;
    }
    vs_reply_stream(r, MHD_HTTP_OK, "application/json", list_stream_read, ls, list_stream_free);
}

static void blob_list(struct vs_request *r)
{
    struct list_query q = {0};
    if (parse_list_query(r, &q) == 0) {
        if (q.limit != 0)
            list_page(r, &q);
        else
            list_all(r, &q);
    }
    list_query_free(&q);
}

static void admin_compact(struct vs_request *r)
{
    kv_store *kv = blob_kv(r->app->store);
    kv_stats before;
    kv_stats after;
    uint64_t t0 = vs_now_ns();
    int rc = kv_get_stats(kv, &before);
    if (rc == 0)
        rc = kv_compact(kv);
    if (rc == 0)
        rc = kv_get_stats(kv, &after);
    if (rc != 0) {
        vs_reply_store_error(r, rc);
        return;
    }
    uint64_t reclaimed =
        before.disk_bytes > after.disk_bytes ? before.disk_bytes - after.disk_bytes : 0;
    json_t *body = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "status", "compacted",
                             "volume_id", blob_volume_id(r->app->store), "keys",
                             (json_int_t)after.keys, "segments_before", (json_int_t)before.segments,
                             "segments_after", (json_int_t)after.segments, "total_bytes",
                             (json_int_t)after.disk_bytes, "reclaimed_bytes", (json_int_t)reclaimed,
                             "duration_ms", (json_int_t)((vs_now_ns() - t0) / 1000000u));
    vs_reply_json(r, MHD_HTTP_OK, body);
}

static void admin_snapshot(struct vs_request *r)
{
    kv_store *kv = blob_kv(r->app->store);
    kv_stats st;
    uint64_t t0 = vs_now_ns();
    int rc = kv_save_snapshot(kv);
    if (rc == 0)
        rc = kv_get_stats(kv, &st);
    if (rc != 0) {
        vs_reply_store_error(r, rc);
        return;
    }
    json_t *body = json_pack("{s:s,s:s,s:I,s:I}", "status", "saved", "volume_id",
                             blob_volume_id(r->app->store), "keys", (json_int_t)st.keys,
                             "duration_ms", (json_int_t)((vs_now_ns() - t0) / 1000000u));
    vs_reply_json(r, MHD_HTTP_OK, body);
}

/* GET /metrics speaks Prometheus when asked by ?format=prometheus, or by an
 * Accept header that names text/plain and not JSON (what scrapers send). */
static bool wants_prometheus(struct vs_request *r)
{
    char *format = NULL;
    size_t len = 0;
    if (query_param(r, "format", &format, &len) != 0)
        return false;
    if (format != NULL) {
        bool prom = strcmp(format, "prometheus") == 0 || strcmp(format, "text") == 0;
        free(format);
        return prom;
    }
    return r->accept != NULL && strcasestr(r->accept, "text/plain") != NULL &&
           strcasestr(r->accept, "application/json") == NULL;
}

void handlers_run(struct vs_request *r)
{
    switch (r->route) {
    case VS_ROUTE_HEALTH:
        metrics_health(r);
        return;
    case VS_ROUTE_METRICS: {
        bool prom = wants_prometheus(r);
        if (r->response == NULL)
            metrics_reply(r, prom);
        return;
    }
    case VS_ROUTE_LIST:
        blob_list(r);
        return;
    case VS_ROUTE_COMPACT:
        admin_compact(r);
        return;
    case VS_ROUTE_SNAPSHOT:
        admin_snapshot(r);
        return;
    case VS_ROUTE_BACKUP:
        handlers_backup(r);
        return;
    case VS_ROUTE_PROMOTE:
        repl_http_promote(r);
        return;
    case VS_ROUTE_REPL_LOG:
        repl_http_ship(r);
        return;
    case VS_ROUTE_REPL_ACK:
        repl_http_ack(r);
        return;
    case VS_ROUTE_UI:
        ui_serve(r);
        return;
    case VS_ROUTE_BLOB:
        if (r->method == VS_GET || r->method == VS_HEAD)
            blob_read(r);
        else if (r->method == VS_DELETE)
            blob_remove(r);
        else
            blob_write(r);
        return;
    case VS_ROUTE_NONE:
        break;
    }
    vs_reply_error(r, MHD_HTTP_NOT_FOUND, "Not found");
}
