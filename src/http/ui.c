/*
 * ui.c - serving the status page's embedded files (see ui.h).
 *
 * Each file is sent with its Content-Type, a strong ETag and
 * "Cache-Control: no-cache": a browser keeps its copy and asks again each
 * time, and an unchanged file costs a 304. The page itself carries a Content
 * Security Policy that lets it load and fetch from its own origin only, so
 * that it can never reach out to the network, even by mistake.
 */
#include "ui.h"

#include <string.h>

#include "response.h"

#define UI_PATH "/ui"
#define UI_PAGE "index.html"

/* No source but the volume itself; no inline script or style, no frames. */
#define PAGE_CSP                                                                                   \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

bool ui_path(const char *path, size_t len)
{
    size_t n = strlen(UI_PATH);
    return len >= n && memcmp(path, UI_PATH, n) == 0 && (len == n || path[n] == '/');
}

static const struct ui_asset *find_asset(const char *name, size_t len)
{
    for (size_t i = 0; i < ui_asset_count; i++) {
        if (strlen(ui_assets[i].name) == len && memcmp(ui_assets[i].name, name, len) == 0)
            return &ui_assets[i];
    }
    return NULL;
}

/* True when If-None-Match names the file's ETag (a browser sends back the
 * one it was given), or is "*". */
static bool not_modified(const struct vs_request *r, const struct ui_asset *a)
{
    const char *inm = r->if_none_match;
    if (inm == NULL)
        return false;
    inm += strspn(inm, " \t");
    return strcmp(inm, "*") == 0 || strstr(inm, a->etag) != NULL;
}

static void add_headers(struct vs_request *r, const struct ui_asset *a)
{
    vs_reply_header(r, MHD_HTTP_HEADER_ETAG, a->etag);
    vs_reply_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    vs_reply_header(r, "X-Content-Type-Options", "nosniff");
    if (strcmp(a->name, UI_PAGE) == 0) {
        vs_reply_header(r, "Content-Security-Policy", PAGE_CSP);
        vs_reply_header(r, "Referrer-Policy", "no-referrer");
    }
}

void ui_serve(struct vs_request *r)
{
    size_t n = strlen(UI_PATH);
    const char *rest = r->uri + n;
    size_t rest_len = r->path_len - n;
    if (rest_len == 1) { /* "/ui/": the page's relative URLs need "/ui" */
        vs_reply_empty(r, MHD_HTTP_PERMANENT_REDIRECT);
        vs_reply_header(r, MHD_HTTP_HEADER_LOCATION, "../ui");
        return;
    }
    const struct ui_asset *a =
        rest_len == 0 ? find_asset(UI_PAGE, strlen(UI_PAGE)) : find_asset(rest + 1, rest_len - 1);
    if (a == NULL || (rest_len > 0 && strcmp(a->name, UI_PAGE) == 0)) {
        vs_reply_error(r, MHD_HTTP_NOT_FOUND, "Not found");
        return;
    }
    if (not_modified(r, a)) {
        vs_reply_empty(r, MHD_HTTP_NOT_MODIFIED);
    } else {
        vs_reply_bytes(r, MHD_HTTP_OK, a->data, a->len, a->content_type, NULL, NULL);
    }
    add_headers(r, a);
}
