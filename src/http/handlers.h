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

/* True when handlers_run for r may wait for a disk sync or a long
 * maintenance job, and so belongs on the pool. */
bool handlers_may_block(const struct vs_request *r);

/* True when r was a blob write (PUT, POST, DELETE) that succeeded. */
bool handlers_wrote(const struct vs_request *r);

/* Serves r: sets r->response and r->status. */
void handlers_run(struct vs_request *r);

/* POST /admin/backup (backup.c). */
void handlers_backup(struct vs_request *r);

#endif /* VS_HANDLERS_H */
