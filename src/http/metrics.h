/*
 * metrics.h - GET /, GET /health and GET /metrics (JSON, or the Prometheus
 * text exposition format).
 */
#ifndef VS_METRICS_H
#define VS_METRICS_H

#include <stdbool.h>

#include "http.h"

/* GET / and GET /health: {"status","volume_id","keys","segments","total_mb",
 * "uptime_secs"}. */
void metrics_health(struct vs_request *r);

/* GET /metrics; prometheus selects the text format. */
void metrics_reply(struct vs_request *r, bool prometheus);

#endif /* VS_METRICS_H */
