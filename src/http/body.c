/*
 * body.c - framing checks, limits, buffers and the memory budget of request
 * bodies.
 *
 * Invariant: app->counters.body_bytes is the sum of body_cap over the
 * requests alive; memory is reserved from the budget before it is allocated
 * and returned when the request is freed.
 */
#include "body.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "response.h"

/* First buffer of a chunked body; it doubles up to the limit. */
#define CHUNKED_INITIAL (64u * 1024u)

static bool parse_length(const char *s, uint64_t *out)
{
    if (s == NULL || s[0] < '0' || s[0] > '9' || strlen(s) > 19)
        return false;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0')
        return false;
    *out = v;
    return true;
}

bool body_announced(struct MHD_Connection *conn)
{
    uint64_t len = 0;
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (parse_length(cl, &len))
        return len > 0;
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) !=
           NULL;
}

struct length_headers {
    unsigned count;
    const char *first;
    bool differ;
};

static enum MHD_Result count_length_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                           const char *value)
{
    struct length_headers *lh = cls;
    (void)kind;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0 || value == NULL)
        return MHD_YES;
    if (lh->count++ == 0)
        lh->first = value;
    else if (strcmp(lh->first, value) != 0)
        lh->differ = true;
    return MHD_YES;
}

/* MHD 0.9.75 would use the first of two Content-Length headers; RFC 9112
 * section 6.3 asks for the request to be refused. */
bool body_framing_conflicts(struct MHD_Connection *conn)
{
    struct length_headers lh = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_length_header, &lh);
    return lh.differ;
}

static bool reserve(struct vs_app *app, size_t n)
{
    return vs_app_reserve_body(app, n);
}

static void unreserve(struct vs_app *app, size_t n)
{
    vs_app_release_body(app, n);
}

/* The message of a refusal with status. */
static void refusal(const struct vs_request *r, unsigned status, char *buf, size_t len)
{
    if (status == MHD_HTTP_CONTENT_TOO_LARGE)
        snprintf(buf, len, "Request body too large: the limit is %llu bytes",
                 (unsigned long long)r->app->body_limit);
    else if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        snprintf(buf, len, "Server busy: request bodies hold all of MAX_BODY_MEMORY_MB; retry");
    else
        snprintf(buf, len, "Out of memory for the request body");
}

static void refuse(struct vs_request *r, unsigned status)
{
    char msg[160];
    refusal(r, status, msg, sizeof(msg));
    vs_reply_error(r, status, "%s", msg);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        vs_reply_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
}

void body_prepare(struct vs_request *r)
{
    uint64_t len = 0;
    const char *cl =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    r->length_known = parse_length(cl, &len);
    r->content_length = len;
    if (r->length_known && len > r->app->body_limit) {
        refuse(r, MHD_HTTP_CONTENT_TOO_LARGE);
        return;
    }
    if (!r->wants_body)
        return;
    if (!r->length_known)
        len = r->app->body_limit < CHUNKED_INITIAL ? r->app->body_limit : CHUNKED_INITIAL;
    size_t cap = len > 0 ? (size_t)len : 1;
    if (!reserve(r->app, cap)) {
        refuse(r, MHD_HTTP_SERVICE_UNAVAILABLE);
        return;
    }
    r->body = malloc(cap);
    if (r->body == NULL) {
        unreserve(r->app, cap);
        refuse(r, MHD_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }
    r->body_cap = cap;
}

/* Makes room for need bytes of a body whose length was not announced.
 * Returns 0, or the status to refuse the body with. */
static unsigned grow(struct vs_request *r, size_t need)
{
    size_t cap = r->body_cap;
    while (cap < need)
        cap *= 2;
    if (cap > r->app->body_limit)
        cap = (size_t)r->app->body_limit;
    if (!reserve(r->app, cap - r->body_cap))
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    char *grown = realloc(r->body, cap);
    if (grown == NULL) {
        unreserve(r->app, cap - r->body_cap);
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
    r->body = grown;
    r->body_cap = cap;
    return 0;
}

int body_take(struct vs_request *r, const char *data, size_t n)
{
    r->body_in += n;
    atomic_fetch_add_explicit(&r->app->counters.bytes_received, n, memory_order_relaxed);
    if (r->body_in > r->app->body_limit) {
        r->status = MHD_HTTP_CONTENT_TOO_LARGE;
        return -1;
    }
    if (!r->wants_body)
        return 0;
    if (r->body_len + n > r->body_cap) {
        unsigned status = grow(r, r->body_len + n);
        if (status != 0) {
            r->status = status;
            return -1;
        }
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    return 0;
}

/*
 * MHD 0.9.75 accepts a response only before the body or after all of it, so
 * this one small response is written to the socket directly: nothing else
 * has been written for this request (at most MHD's "100 Continue"), and the
 * previous response on the connection was sent before this request was read.
 */
void body_refuse_now(struct vs_request *r)
{
    char msg[160];
    char head[512];
    refusal(r, r->status, msg, sizeof(msg));
    json_t *doc = json_pack("{s:s}", "error", msg);
    char *body = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\nConnection: close\r\n%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     r->status, MHD_get_reason_phrase_for(r->status),
                     r->status == MHD_HTTP_SERVICE_UNAVAILABLE ? "Retry-After: 1\r\n" : "",
                     body != NULL ? strlen(body) : 0, body != NULL ? body : "");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci != NULL && n > 0 && (size_t)n < sizeof(head)) {
        /* Best effort: a client that is gone gets nothing, as it would
         * anyway. The FIN after the response tells the client it is all. */
        ssize_t w = send(ci->connect_fd, head, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        shutdown(ci->connect_fd, SHUT_WR);
        r->bytes_out = body != NULL ? strlen(body) : 0;
    }
    free(body);
}

void body_release(struct vs_request *r)
{
    if (r->body_cap > 0)
        unreserve(r->app, r->body_cap);
    free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
}
