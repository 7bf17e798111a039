/*
 * handlers.h - what volume-server does with a request: routing, checks, and
 * one handler per endpoint (DESIGN.md section 5).
 *
 * A request passes through three steps, called by server.c:
 *   handlers_route    when its headers have arrived, on its HTTP thread;
 *   (the body is received)
 *   handlers_prepare  when the body is complete, on its HTTP thread;
 *   handlers_run      on its HTTP thread, or on a pool thread when
 *                     handlers_may_block says so.
 * A blob write that waits for the disk (handlers_write_async) takes the
 * place of handlers_run with two steps on its HTTP thread, between which
 * the engine writes it and no thread waits:
 *   handlers_write_prepare  its precondition and engine op (r->write);
 *   (server.c submits it; the engine's callback resumes the connection)
 *   handlers_write_done     its response from the engine's code.
 * Any step may decide the response (r->response); later steps are then
 * skipped. handlers_run only reads fields of r, never the connection, so
 * that it can run on any thread.
 */
#ifndef VS_HANDLERS_H
#define VS_HANDLERS_H

#include <stdbool.h>

#include "http.h"

/* Finds the endpoint of r (path and method), checks the bearer token and
 * decodes the key. On a problem, sets r->response (404, 405, 401, 400, or
 * NULL with r->status 500 when memory runs out) and returns -1. Sets
 * r->wants_body when the body is the blob to store. */
int handlers_route(struct vs_request *r);

/* Reads the headers that handlers_run needs (preconditions). Returns -1
 * with a response set (400) when one is malformed. */
int handlers_prepare(struct vs_request *r);

/* True when handlers_run for r may wait for a long maintenance job, and so
 * belongs on the pool. */
bool handlers_may_block(const struct vs_request *r);

/* True when r is a blob write that waits for the disk (sync mode always):
 * it goes through the engine asynchronously, with the two steps below. */
bool handlers_write_async(const struct vs_request *r);

/* Prepares r's write (r->write): returns 0 when it is to be submitted, or -1
 * with the response set (412 when its precondition fails now, or an error). */
int handlers_write_prepare(struct vs_request *r);

/* Sets the response of r's completed write from the engine's code rc.
 * Returns true, with no response set, when the write must be prepared and
 * submitted again (the state its precondition was pinned to changed). */
bool handlers_write_done(struct vs_request *r, int rc);

/* Serves r: sets r->response and r->status. */
void handlers_run(struct vs_request *r);

/* POST /admin/backup (backup.c). */
void handlers_backup(struct vs_request *r);

#endif /* VS_HANDLERS_H */
