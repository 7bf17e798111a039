/*
 * response.h - building the responses of volume-server.
 *
 * Each helper creates the response of a request (r->response, r->status,
 * r->bytes_out). When memory runs out r->response stays NULL and the server
 * closes the connection: there is no response to send without memory.
 */
#ifndef VS_RESPONSE_H
#define VS_RESPONSE_H

#include <jansson.h>

#include "http.h"
#include "json_text.h"

/* A JSON body (compact) with Content-Type application/json. Takes ownership
 * of body, even on failure. */
void vs_reply_json(struct vs_request *r, unsigned status, json_t *body);

/* The JSON text b holds (json_text.h), as for vs_reply_json; the response
 * takes b's bytes, and b is left empty, even on failure. */
void vs_reply_json_text(struct vs_request *r, unsigned status, struct growbuf *b);

/* {"error": "<message>"}; the message is formatted (and bounded). */
void vs_reply_error(struct vs_request *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The response to an engine or blob-layer failure: 404, 412, 503, 507, or
 * 500 with the reason. */
void vs_reply_store_error(struct vs_request *r, int rc);

/* A body of len bytes at data; release(release_cls) is called when the
 * response is done with it (release may be NULL for static data). On failure
 * release is called at once. */
void vs_reply_bytes(struct vs_request *r, unsigned status, const void *data, size_t len,
                    const char *content_type, void (*release)(void *), void *release_cls);

/* The headers of a body of len bytes, for a HEAD request: Content-Length
 * says len, and no body is ever produced. */
void vs_reply_head(struct vs_request *r, unsigned status, uint64_t len, const char *content_type);

/* A body of unknown length, sent in chunks as read(cls, pos, buf, max)
 * produces it (libmicrohttpd's content reader: bytes written, or
 * MHD_CONTENT_READER_END_OF_STREAM); free_cls(cls) runs when the response
 * is done. On failure free_cls is called at once. */
void vs_reply_stream(struct vs_request *r, unsigned status, const char *content_type,
                     MHD_ContentReaderCallback read, void *cls,
                     MHD_ContentReaderFreeCallback free_cls);

/* A response without a body (204, 304). */
void vs_reply_empty(struct vs_request *r, unsigned status);

/* Adds a header to the response, if there is one. */
void vs_reply_header(struct vs_request *r, const char *name, const char *value);

#endif /* VS_RESPONSE_H */
