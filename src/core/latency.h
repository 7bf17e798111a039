/*
 * latency.h - how long requests take, by kind, for every front end: one
 * histogram (histogram.h) of nanoseconds per kind of request.
 *
 * A front end measures a request from its arrival to its last byte handed
 * to the socket and calls vs_latency_record with the kind it was: a call
 * from any thread, without a lock. /metrics reports every kind's rate and
 * percentiles (src/core/figures.c) in JSON and the Prometheus exposition.
 */
#ifndef VS_LATENCY_H
#define VS_LATENCY_H

#include <stdint.h>

#include "histogram.h"

enum vs_req_kind {
    VS_REQ_HTTP_GET,    /* GET and HEAD of /blobs/{key} */
    VS_REQ_HTTP_PUT,    /* PUT and POST of /blobs/{key} */
    VS_REQ_HTTP_DELETE, /* DELETE of /blobs/{key} */
    VS_REQ_HTTP_LIST,   /* GET and HEAD of /blobs */
    VS_REQ_RESP_READ,   /* Redis-protocol commands that only read */
    VS_REQ_RESP_WRITE,  /* Redis-protocol commands that write */
    VS_REQ_KINDS
};

/* Zeroed memory is empty. */
struct vs_latency {
    struct vs_histogram by_kind[VS_REQ_KINDS];
};

/* Counts one request of kind that took ns nanoseconds. */
void vs_latency_record(struct vs_latency *l, enum vs_req_kind kind, uint64_t ns);

/* The name of a kind in /metrics: "http_get", "http_put", "http_delete",
 * "http_list", "resp_read", "resp_write". */
const char *vs_req_kind_name(enum vs_req_kind kind);

#endif /* VS_LATENCY_H */
