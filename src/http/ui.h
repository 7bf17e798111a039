/*
 * ui.h - GET /ui: the status page (DESIGN.md section 13), served from the
 * binary itself.
 *
 * The page's files (src/http/ui/: index.html, style.css, app.js) and the
 * chart library (Debian's libjs-chart.js) are turned into a C source at
 * build time (ui/embed.cmake), so that nothing is read from disk or fetched
 * from a network when the page loads. They are public, as /health is: they
 * hold no data, and the page must load to ask for the token. Every figure it
 * shows comes from /metrics, which needs the bearer token when AUTH_TOKEN is
 * set; the page sends it as "Authorization: Bearer".
 *
 *   GET /ui           the page (index.html)
 *   GET /ui/<name>    style.css, app.js, chart.min.js
 *   GET /ui/          a redirect to ../ui, so that the page's relative URLs
 *                     resolve (the page works under a prefix, /vol-1/ui)
 */
#ifndef VS_UI_H
#define VS_UI_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* One embedded file (the table is generated: ui_assets.c). */
struct ui_asset {
    const char *name;         /* "index.html", "app.js", ... */
    const char *content_type; /* with its charset */
    const char *etag;         /* strong, quoted: from the file's SHA-256 */
    const unsigned char *data;
    size_t len;
};

extern const struct ui_asset ui_assets[];
extern const size_t ui_asset_count;

/* True when path (len bytes, no query) is /ui or under /ui/. */
bool ui_path(const char *path, size_t len);

/* Serves GET or HEAD of a /ui path: the file with its Content-Type, ETag and
 * caching headers (304 when If-None-Match names its ETag), a redirect for
 * /ui/, or 404. */
void ui_serve(struct vs_request *r);

#endif /* VS_UI_H */
