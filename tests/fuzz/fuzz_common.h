/*
 * fuzz_common.h - helpers shared by the libFuzzer targets: a private working
 * directory per process, emptied before each input.
 */
#ifndef KV_FUZZ_COMMON_H
#define KV_FUZZ_COMMON_H

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reports a broken invariant the way libFuzzer records a crash. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static inline void fuzz_empty_dir(const char *dir);

/* The working directories made so far, removed when the fuzzer exits. */
static const char *fuzz_dirs[8];
static size_t fuzz_ndirs;

static inline void fuzz_remove_dirs(void)
{
    for (size_t i = 0; i < fuzz_ndirs; i++) {
        fuzz_empty_dir(fuzz_dirs[i]);
        rmdir(fuzz_dirs[i]);
    }
}

/* Makes "$TMPDIR/kvfuzz-<tag>-<pid>" (once) into dir[len]; returns dir. */
static inline const char *fuzz_workdir(const char *tag, char *dir, size_t len)
{
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, len, "%s/kvfuzz-%s-%d", tmp && *tmp ? tmp : "/tmp", tag, (int)getpid());
        mkdir(dir, 0755);
        if (fuzz_ndirs == 0)
            atexit(fuzz_remove_dirs);
        if (fuzz_ndirs < sizeof(fuzz_dirs) / sizeof(fuzz_dirs[0]))
            fuzz_dirs[fuzz_ndirs++] = dir;
    }
    return dir;
}

/* Removes every file of dir (it holds no subdirectories). */
static inline void fuzz_empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char path[1024];
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

static inline void fuzz_write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(len == 0 || write(fd, data, len) == (ssize_t)len);
    close(fd);
}

#endif
