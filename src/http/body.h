/*
 * body.h - request bodies in volume-server: their framing, their limits, and
 * the memory they take.
 *
 * Two limits apply: MAX_REQUEST_SIZE_MB per body (413 beyond it), and
 * MAX_BODY_MEMORY_MB for all the bodies being received at once (503 beyond
 * it), so that many large uploads together cannot exhaust memory. A body
 * announced by Content-Length is checked, and its buffer reserved, before a
 * byte of it is read; a chunked body is checked as it grows.
 */
#ifndef VS_BODY_H
#define VS_BODY_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* Whether body bytes follow the headers (Content-Length > 0, or a
 * Transfer-Encoding). */
bool body_announced(struct MHD_Connection *conn);

/* True when the request has two different Content-Length headers: where its
 * body ends would be ambiguous (the stuff of request smuggling). */
bool body_framing_conflicts(struct MHD_Connection *conn);

/* Reads Content-Length into r, checks it against the limit and reserves the
 * buffer of a body to keep (r->wants_body). On refusal sets r's response
 * (413, 503 with Retry-After, 500). */
void body_prepare(struct vs_request *r);

/* Takes the next n bytes of the body (kept when r->wants_body, counted
 * always). Returns 0, or -1 when the body must stop here: r->status then says
 * why (413, 503, 500) for body_refuse_now. */
int body_take(struct vs_request *r, const char *data, size_t n);

/* Sends the refusal decided by body_take straight to the client's socket,
 * with Connection: close, for the caller to close the connection. */
void body_refuse_now(struct vs_request *r);

/* Frees r's body and returns its memory to the budget. */
void body_release(struct vs_request *r);

#endif /* VS_BODY_H */
