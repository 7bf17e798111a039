/*
 * figures.h - the table of figures that a volume reports about itself: the
 * engine's statistics and the application's counters, each with its names
 * and meaning.
 *
 * One table feeds every format a front end renders (JSON, the Prometheus
 * exposition, a status page), so that they can never disagree on what is
 * reported or on what it means.
 */
#ifndef VS_FIGURES_H
#define VS_FIGURES_H

#include <stddef.h>
#include <stdint.h>

#include <kvstore.h>

#include "app.h"

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

/* A counter's value (relaxed: figures are a moment's picture, not a fence). */
uint64_t vs_counter_load(atomic_uint_fast64_t *counter);

#endif /* VS_FIGURES_H */
