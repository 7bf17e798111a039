/*
 * report.c - prints benchmark rows. The JSON form is written by hand because
 * every string in it is one of the suite's own identifiers or notes (no
 * escaping needed) and the suite must not depend on a JSON library the
 * engine does not need.
 */
#include "report.h"

#include <stdio.h>

void report_add(struct report_row *r, const char *name, double value)
{
    if (r->n_fields >= REPORT_MAX_FIELDS)
        return;
    r->fields[r->n_fields].name = name;
    r->fields[r->n_fields].value = value;
    r->n_fields++;
}

static double rate_of(const struct report_row *r)
{
    return r->secs > 0 ? (double)r->ops / r->secs : 0;
}

static void print_json(const struct report_row *r)
{
    printf("{\"engine\":\"%s\",\"workload\":\"%s\",\"threads\":%d,\"ops\":%llu,\"secs\":%.6f,"
           "\"ops_per_sec\":%.1f,\"errors\":%llu",
           r->engine, r->workload, r->threads, (unsigned long long)r->ops, r->secs, rate_of(r),
           (unsigned long long)r->errors);
    if (r->lat && r->lat->n > 0)
        printf(",\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f", hist_percentile_us(r->lat, 50),
               hist_percentile_us(r->lat, 99), hist_percentile_us(r->lat, 99.9));
    if (r->note)
        printf(",\"note\":\"%s\"", r->note);
    for (int i = 0; i < r->n_fields; i++)
        printf(",\"%s\":%.6g", r->fields[i].name, r->fields[i].value);
    printf("}\n");
}

static void print_text(const struct report_row *r)
{
    printf("%-12s %-20s %3d thr", r->engine, r->workload, r->threads);
    if (r->ops > 0)
        printf(" %11.0f ops/s", rate_of(r));
    else
        printf(" %17s", "");
    if (r->lat && r->lat->n > 0)
        printf("  p50 %9.2f  p99 %9.2f  p99.9 %9.2f us", hist_percentile_us(r->lat, 50),
               hist_percentile_us(r->lat, 99), hist_percentile_us(r->lat, 99.9));
    if (r->errors)
        printf("  errors=%llu", (unsigned long long)r->errors);
    if (r->note)
        printf("  (%s)", r->note);
    for (int i = 0; i < r->n_fields; i++)
        printf("  %s=%.6g", r->fields[i].name, r->fields[i].value);
    printf("\n");
}

void report_print(const struct report_row *r, bool json)
{
    if (json)
        print_json(r);
    else
        print_text(r);
    fflush(stdout);
}
