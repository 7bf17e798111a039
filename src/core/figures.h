/*
 * figures.h - the table of figures that a volume reports about itself: the
 * engine's statistics and the application's counters, each with its names
 * and meaning.
 *
 * One table feeds every format a front end renders (JSON, the Prometheus
 * exposition, a status page), so that they can never disagree on what is
 * reported or on what it means; a second table does the same for the
 * histograms (latencies by kind of request).
 */
#ifndef VS_FIGURES_H
#define VS_FIGURES_H

#include <stddef.h>
#include <stdint.h>

#include <kvstore.h>

#include "app.h"
#include "histogram.h"

/* How a figure is reported. A flag is true/false in JSON and a 0/1 gauge in
 * the exposition. */
enum vs_figure_kind { VS_FIGURE_GAUGE, VS_FIGURE_COUNTER, VS_FIGURE_FLAG };

struct vs_figure {
    const char *json; /* name in a JSON document */
    const char *prom; /* name in the exposition, without the kvstore_ prefix */
    enum vs_figure_kind kind;
    const char *help; /* one sentence: what the figure counts */
    uint64_t value;
};

/* Room that vs_figures_collect needs for the whole table. */
#define VS_FIGURES_MAX 64

/* Fills out (room for max entries) from st, one kv_get_stats of app's store
 * (a consistent set), and from app's counters; returns how many it wrote. */
size_t vs_figures_collect(struct vs_app *app, const kv_stats *st, struct vs_figure *out,
                          size_t max);

/* How a histogram's values read: the unit of its JSON figures and of the
 * exposition's le bounds. */
enum vs_hist_unit {
    VS_HIST_NANOSECONDS, /* JSON in microseconds; the exposition in seconds */
    VS_HIST_COUNT        /* whole numbers, as they are */
};

/* A histogram of the table: in JSON an object (count, sum, p50, p99, p999
 * and the non-empty buckets) named json inside the object group (NULL: at
 * the top level); in the exposition a histogram family prom, one series per
 * label value when label is set. */
struct vs_hist_figure {
    const char *group;
    const char *json;
    const char *prom;        /* without the kvstore_ prefix */
    const char *label;       /* label name, or NULL */
    const char *label_value; /* its value for this histogram */
    enum vs_hist_unit unit;
    const char *help; /* one sentence, the same for the whole family */
    const struct vs_histogram *hist;
};

/* Room that vs_hist_figures_collect needs for the whole table. */
#define VS_HIST_FIGURES_MAX 16

/* Fills out (room for max entries) with the histograms of app, a family's
 * entries next to each other; returns how many it wrote. */
size_t vs_hist_figures_collect(struct vs_app *app, struct vs_hist_figure *out, size_t max);

/* A counter's value (relaxed: figures are a moment's picture, not a fence). */
uint64_t vs_counter_load(atomic_uint_fast64_t *counter);

#endif /* VS_FIGURES_H */
