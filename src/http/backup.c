/*
 * backup.c - POST /admin/backup?dir=PATH: a backup of the volume, made by
 * kv_backup beside the traffic, into a directory on the server's file
 * system.
 *
 * PATH (percent-encoded like any query value) must be absolute, and must not
 * exist or be an empty directory whose parent exists: the server creates one
 * level, as it does for DATA_DIR, and never writes into a directory that
 * holds anything. Those are checked here first, so that a mistake gets a
 * message that says which (400, 409); the engine checks again when it
 * creates the directory. The answer is 200 with what was linked and copied.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "handlers.h"
#include "http_parse.h"
#include "response.h"

/* The value of ?dir=, or NULL after replying 400. */
static char *backup_dir_param(struct vs_request *r)
{
    char *dir = NULL;
    size_t len = 0;
    int found = 0;
    if (r->path_len < r->uri_len)
        found = http_query_param(r->uri + r->path_len + 1, r->uri_len - r->path_len - 1, "dir",
                                 &dir, &len);
    if (found == -2) {
        vs_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
        return NULL;
    }
    if (found != 1 || len == 0 || strlen(dir) != len) {
        free(dir);
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST,
                       "Give the directory to back up into as ?dir=PATH (an absolute path on the "
                       "server, percent-encoded)");
        return NULL;
    }
    if (!http_utf8_valid(dir, len)) {
        free(dir);
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "dir must be valid UTF-8");
        return NULL;
    }
    if (dir[0] != '/') {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "dir must be an absolute path, not \"%.200s\"",
                       dir);
        free(dir);
        return NULL;
    }
    return dir;
}

/* Whether dir holds nothing but . and .. (false when it cannot be read). */
static bool dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    const struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

/* Replies 409 or 400 when dir cannot take a backup; 0 when it can. */
static int check_destination(struct vs_request *r, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode) || !dir_is_empty(dir)) {
            vs_reply_error(r, MHD_HTTP_CONFLICT,
                           "%.200s exists and is not an empty directory: a backup goes into a "
                           "new or empty one",
                           dir);
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST, "%.200s: %s", dir, strerror(errno));
        return -1;
    }
    char *parent = strdup(dir);
    if (parent == NULL) {
        vs_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory");
        return -1;
    }
    char *slash = strrchr(parent, '/');
    if (slash == parent)
        slash[1] = '\0'; /* "/x": the root */
    else
        *slash = '\0';
    bool ok = stat(parent, &st) == 0 && S_ISDIR(st.st_mode);
    free(parent);
    if (!ok) {
        vs_reply_error(r, MHD_HTTP_BAD_REQUEST,
                       "The parent directory of %.200s does not exist (the server creates only "
                       "the last level)",
                       dir);
        return -1;
    }
    return 0;
}

void handlers_backup(struct vs_request *r)
{
    char *dir = backup_dir_param(r);
    if (dir == NULL)
        return;
    if (check_destination(r, dir) != 0) {
        free(dir);
        return;
    }
    uint64_t t0 = vs_now_ns();
    kv_backup_info info;
    int rc = kv_backup(blob_kv(r->app->store), dir, 0, &info);
    if (rc == KV_EINVAL) {
        /* Made meanwhile by someone else. */
        vs_reply_error(r, MHD_HTTP_CONFLICT, "%.200s is not an empty directory", dir);
    } else if (rc != 0) {
        vs_reply_store_error(r, rc);
    } else {
        json_t *body =
            json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "status", "backed up", "volume_id",
                      blob_volume_id(r->app->store), "dir", dir, "files_linked",
                      (json_int_t)info.files_linked, "files_copied", (json_int_t)info.files_copied,
                      "bytes_copied", (json_int_t)info.bytes_copied, "duration_ms",
                      (json_int_t)((vs_now_ns() - t0) / 1000000u));
        vs_reply_json(r, MHD_HTTP_OK, body);
    }
    free(dir);
}
