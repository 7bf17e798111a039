/*
 * backup.c - backup and restore: a data directory copied into a new one by
 * kv_backup_dir, which reads the source's files only and takes no lock, so
 * that a backup can be made beside a running server (which holds the
 * directory's LOCK) and the session's own store.
 *
 *   backup SRC DEST     sealed segments hard-linked where the file system
 *                       allows, the rest copied; the copy opened once to
 *                       check it
 *   restore SRC DEST    the same with every file copied, so that the store
 *                       restored and the backup share nothing
 *
 * Both refuse a DEST that exists and is not an empty directory; neither
 * reads --data-dir.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

/* A path argument as a string; NULL after reporting one with a NUL byte. */
static char *path_arg(const struct cli *cli, const char *what, const cli_word *w)
{
    if (memchr(w->data, '\0', w->len) != NULL) {
        cli_error(cli, "%s: a path cannot hold a NUL byte", what);
        return NULL;
    }
    char *p = strndup(w->data, w->len);
    if (!p)
        cli_error(cli, "%s: %s", what, kv_strerror(KV_ENOMEM));
    return p;
}

static bool dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    const struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

/* Says what is wrong with src or dest, if anything. */
static bool paths_ok(const struct cli *cli, const char *what, const char *src, const char *dest)
{
    struct stat st;
    if (stat(src, &st) != 0) {
        cli_error(cli, "%s: %s: %s", what, src,
                  errno == ENOENT ? "no such directory" : strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_error(cli, "%s: %s is not a directory", what, src);
        return false;
    }
    if (stat(dest, &st) == 0 && (!S_ISDIR(st.st_mode) || !dir_is_empty(dest))) {
        cli_error(cli,
                  "%s: %s exists and is not an empty directory (the copy goes into a new or "
                  "empty one)",
                  what, dest);
        return false;
    }
    return true;
}

static const char *plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

static enum cli_status copy_directory(struct cli *cli, const char *what, const cli_word *args,
                                      unsigned flags)
{
    enum cli_status st = CLI_ERROR;
    char *src = path_arg(cli, what, &args[0]);
    char *dest = src ? path_arg(cli, what, &args[1]) : NULL;
    if (!src || !dest || !paths_ok(cli, what, src, dest))
        goto out;
    kv_options opts;
    cli_engine_options(cli, &opts);
    kv_backup_info info;
    /* The check opens the copy, whose threads must leave the session's
     * signals to the main thread. */
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &cli->engine_blocked, &old);
    int rc = kv_backup_dir(src, dest, &opts, flags, &info);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        cli_error(cli, "%s: %s into %s failed: %s%s", what, src, dest, kv_strerror(rc),
                  rc == KV_EBUSY ? " (compactions kept changing it; try again)" : "");
        goto out;
    }
    if (flags & KV_BACKUP_COPY)
        printf("Restored %s into %s: %" PRIu64 " key%s\n", src, dest, info.keys, plural(info.keys));
    else
        printf("Backed up %s into %s: %" PRIu64 " key%s; %" PRIu64 " file%s linked, %" PRIu64
               " copied (%" PRIu64 " bytes)\n",
               src, dest, info.keys, plural(info.keys), info.files_linked,
               plural(info.files_linked), info.files_copied, info.bytes_copied);
    st = CLI_OK;
out:
    free(src);
    free(dest);
    return st;
}

enum cli_status cli_backup(struct cli *cli, const cli_word *args, size_t n)
{
    (void)n;
    return copy_directory(cli, "backup", args, 0);
}

enum cli_status cli_restore(struct cli *cli, const cli_word *args, size_t n)
{
    (void)n;
    return copy_directory(cli, "restore", args, KV_BACKUP_COPY);
}
