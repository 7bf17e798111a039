/*
 * response.c - helpers that turn results into libmicrohttpd responses, and
 * the one table that maps engine codes to HTTP statuses.
 */
#include "response.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_response(struct vs_request *r, unsigned status, struct MHD_Response *resp,
                         size_t body_len)
{
    if (r->response != NULL)
        MHD_destroy_response(r->response);
    r->response = resp;
    r->status = status;
    r->bytes_out = body_len;
}

void vs_reply_bytes(struct vs_request *r, unsigned status, const void *data, size_t len,
                    const char *content_type, void (*release)(void *), void *release_cls)
{
    static const char empty[1] = "";
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback_cls(
        len, (void *)(data != NULL ? data : empty), release, release_cls);
    if (resp == NULL) {
        if (release != NULL)
            release(release_cls);
        set_response(r, status, NULL, 0);
        return;
    }
    if (content_type != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    set_response(r, status, resp, len);
}

/* libmicrohttpd never reads the body of a response to HEAD; were it to,
 * the body would be zeros. */
static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    memset(buf, 0, max);
    return (ssize_t)max;
}

void vs_reply_head(struct vs_request *r, unsigned status, uint64_t len, const char *content_type)
{
    struct MHD_Response *resp = MHD_create_response_from_callback(len, 1024, no_body, NULL, NULL);
    if (resp != NULL && content_type != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    set_response(r, status, resp, 0);
}

void vs_reply_stream(struct vs_request *r, unsigned status, const char *content_type,
                     MHD_ContentReaderCallback read, void *cls,
                     MHD_ContentReaderFreeCallback free_cls)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, read, cls, free_cls);
    if (resp == NULL) {
        free_cls(cls);
        set_response(r, status, NULL, 0);
        return;
    }
    if (content_type != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    set_response(r, status, resp, 0);
}

void vs_reply_empty(struct vs_request *r, unsigned status)
{
    vs_reply_bytes(r, status, NULL, 0, NULL, NULL, NULL);
}

void vs_reply_json(struct vs_request *r, unsigned status, json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(body);
    if (text == NULL) {
        set_response(r, status, NULL, 0);
        return;
    }
    size_t len = strlen(text);
    vs_reply_bytes(r, status, text, len, "application/json", free, text);
}

void vs_reply_json_text(struct vs_request *r, unsigned status, struct growbuf *b)
{
    char *text = b->failed ? NULL : b->data;
    size_t len = b->len;
    if (text == NULL) {
        growbuf_free(b);
        *b = (struct growbuf){0};
        set_response(r, status, NULL, 0);
        return;
    }
    *b = (struct growbuf){0};
    vs_reply_bytes(r, status, text, len, "application/json", free, text);
}

void vs_reply_error(struct vs_request *r, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* json_string refuses text that is not UTF-8; a message quoting client
     * input could be, so fall back to the bytes-safe constructor. */
    json_t *s = json_string(msg);
    if (s == NULL)
        s = json_string("request failed");
    vs_reply_json(r, status, json_pack("{s:o}", "error", s));
}

void vs_reply_store_error(struct vs_request *r, int rc)
{
    switch (rc) {
    case BLOB_EPRECONDITION:
        vs_reply_error(r, MHD_HTTP_PRECONDITION_FAILED, "Precondition failed");
        return;
    case KV_ENOTFOUND:
        vs_reply_error(r, MHD_HTTP_NOT_FOUND, "Blob not found");
        return;
    case KV_ENOSPC:
        vs_reply_error(r, MHD_HTTP_INSUFFICIENT_STORAGE, "Disk full: %s", kv_strerror(rc));
        return;
    case KV_ETOOBIG:
        vs_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "Too large for the store: %s",
                       kv_strerror(rc));
        return;
    case KV_EBUSY:
    case KV_EREADONLY:
        vs_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "Store unavailable: %s", kv_strerror(rc));
        return;
    default:
        vs_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Storage error: %s", blob_strerror(rc));
        return;
    }
}

void vs_reply_header(struct vs_request *r, const char *name, const char *value)
{
    if (r->response != NULL)
        MHD_add_response_header(r->response, name, value);
}
