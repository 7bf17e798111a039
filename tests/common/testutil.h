/*
 * testutil.h - helpers shared by the unit tests: the runner every test
 * program's main() calls (tests by name, a time limit per test), assertions
 * on return codes, fresh temporary directories, file helpers, and a
 * fault-injecting I/O table.
 */
#ifndef KV_TESTUTIL_H
#define KV_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <stdatomic.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "io.h"
#include "kvstore.h"

/*
 * Runs the tests of a unit-test program as its command line asks:
 *
 *   test_x                 every test
 *   test_x PATTERN...      the tests whose names match one of the shell
 *                          patterns (test_x 'test_reopen_*')
 *   test_x --list          the tests' names, one a line
 *
 * With no PATTERN, KV_TEST_FILTER=PATTERN selects as one would. Each test
 * (its setup and teardown included) runs under an alarm of KV_TEST_TIMEOUT
 * seconds (default TU_TEST_TIMEOUT_SECS, 0 for none): a test still running
 * then is named on standard error and the program exits with status 124, so
 * that a hang points at its test instead of at the whole program. Returns
 * what main() should return: the number of failed tests, or 2 for a pattern
 * that matches nothing or a malformed KV_TEST_TIMEOUT.
 */
#define TU_TEST_TIMEOUT_SECS 120
#define tu_run_tests(tests, argc, argv)                                                            \
    tu_run_tests_((tests), sizeof(tests) / sizeof((tests)[0]), (argc), (argv))
int tu_run_tests_(const struct CMUnitTest *tests, size_t count, int argc, char **argv);

/*
 * Asserts that a call returned the code want (0 or a KV_E... code). On a
 * mismatch the message names the call and both codes with their
 * kv_strerror text ("kv_get(s, \"k\", 1, &v, &n) returned -2 (key not
 * found), expected 0 (success)") at the caller's line.
 */
#define assert_kv_rc(expr, want) tu_assert_kv_rc((expr), (want), #expr, __FILE__, __LINE__)
#define assert_kv_ok(expr)       tu_assert_kv_rc((expr), KV_OK, #expr, __FILE__, __LINE__)
void tu_assert_kv_rc(int got, int want, const char *expr, const char *file, int line);

/* Waiting for a condition that another thread brings about: poll it every
 * millisecond or so until TU_WAIT_MS have passed, a bound generous enough for
 * a loaded machine (never a duration the test asserts). */
#define TU_WAIT_MS 30000
uint64_t tu_now_ms(void); /* CLOCK_MONOTONIC */
void tu_pause_ms(unsigned ms);

/* A fresh directory under $TMPDIR (or /tmp); the caller removes it with
 * tu_rmtree and frees the string. The store directory is "<dir>/db". */
char *tu_mkdtemp(void);
void tu_rmtree(const char *dir);
char *tu_path(const char *dir, const char *name); /* malloc'd "dir/name" */

/* A test's fixture: a fresh temporary directory root (removed by
 * tu_teardown) and the store directory dir = root/db. For
 * cmocka_unit_test_setup_teardown(test, tu_setup, tu_teardown). */
struct tu_fixture {
    char *root;
    char *dir;
};
int tu_setup(void **state);
int tu_teardown(void **state);

/* tu_open that tu_teardown closes if an assertion ends the test while the
 * store is still open; tu_close_tracked closes it normally. */
kv_store *tu_open_tracked(const char *dir, const kv_options *opts);
int tu_close_tracked(kv_store *s);

/* Opens dir with small segments and silent logging unless opts is given. */
kv_store *tu_open(const char *dir, const kv_options *opts);

/* Reads/writes a whole file; tu_read_file returns malloc'd bytes. */
uint8_t *tu_read_file(const char *path, size_t *len);
void tu_write_file(const char *path, const void *data, size_t len);
size_t tu_file_size(const char *path);
void tu_truncate(const char *path, size_t len);
void tu_flip_byte(const char *path, size_t off);

/* Asserts that the log of the segment file at path ends at off: the file
 * is off bytes long, or longer with only zeros after off (space written
 * ahead of the log of an open store). */
void tu_assert_log_ends_at(const char *path, size_t off);

/* Asserts that key reads back as exactly value. */
void tu_assert_value(kv_store *s, const char *key, const void *value, size_t len);
#define tu_assert_str(s, key, str) tu_assert_value((s), (key), (str), strlen(str))

/* Appends a raw record in the on-disk format to buf (at *len, growing it). */
void tu_append_record(uint8_t **buf, size_t *len, uint8_t op, const void *key, size_t key_len,
                      const void *val, size_t val_len);

/*
 * A fault-injecting I/O table over the operating system's. Counters start at
 * zero when installed; fail_write_at = N makes pwritev calls N .. N +
 * fail_write_count - 1 (1-based) fail with write_errno. With short_write the
 * first of them writes half its first buffer and reports that short count
 * instead; the engine retries the rest, which is the next call (so a short
 * write followed by an error needs fail_write_count = 2). fail_sync_at
 * likewise fails the Nth fdatasync/fsync with sync_errno.
 */
struct tu_faults {
    struct kv_io io;
    atomic_int writes, syncs; /* compaction syncs on two threads */
    int fail_write_at;
    int fail_write_count; /* how many consecutive writes fail (default 1) */
    int write_errno;
    int short_write;
    int fail_sync_at;
    int sync_errno;
    atomic_int maps; /* calls of map */
    int fail_maps;   /* the first fail_maps calls of map fail... */
    int map_errno;   /* ...with this errno (default ENOMEM) */
};
void tu_faults_init(struct tu_faults *f);

/* A silent log callback that counts lines containing "damaged"/"checksum". */
void tu_log_count(kv_log_level level, const char *msg, void *ctx);

#endif
