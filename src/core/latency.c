/*
 * latency.c - request latencies by kind (see latency.h).
 */
#include "latency.h"

void vs_latency_record(struct vs_latency *l, enum vs_req_kind kind, uint64_t ns)
{
    if ((unsigned)kind < VS_REQ_KINDS)
        vs_histogram_record(&l->by_kind[kind], ns);
}

const char *vs_req_kind_name(enum vs_req_kind kind)
{
    static const char *const names[VS_REQ_KINDS] = {"http_get",  "http_put",  "http_delete",
                                                    "http_list", "resp_read", "resp_write"};
    return (unsigned)kind < VS_REQ_KINDS ? names[kind] : "?";
}
