/*
 * test_resp_proto.c - the Redis protocol's parser and writer (src/resp/proto.c):
 * arrays of bulk strings fed whole or a byte at a time, inline commands split
 * as Redis splits them, every malformed input refused with Redis's text, the
 * parser's place kept across a buffer that moves, the replies of RESP2 and
 * RESP3, and glob matching.
 */
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "testutil.h"

#define MAX_ARGS 64
#define MAX_BULK 1024

struct parsed {
    size_t count;         /* commands */
    size_t argc[16];      /* of each command */
    char args[16][8][64]; /* NUL-terminated copies of the first arguments */
    char error[128];      /* the parser's error, after RESP_PARSE_ERROR */
};

/* Feeds input to a parser step bytes at a time, collecting the commands;
 * returns the last result. */
static enum resp_parse_result feed(const char *input, size_t len, size_t step, struct parsed *out)
{
    struct resp_parser p;
    resp_parser_init(&p, MAX_ARGS, MAX_BULK);
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    size_t have = 0;
    enum resp_parse_result r = RESP_PARSE_MORE;
    memset(out, 0, sizeof(*out));
    while (have < len) {
        size_t n = len - have < step ? len - have : step;
        memcpy(buf + have, input + have, n);
        have += n;
        for (;;) {
            size_t need = 0;
            r = resp_parse(&p, buf, have, &need);
            if (r != RESP_PARSE_COMMAND)
                break;
            size_t c = out->count++;
            out->argc[c] = p.argc;
            for (size_t i = 0; i < p.argc && i < 8; i++) {
                size_t l = p.arg_len[i] < 63 ? p.arg_len[i] : 63;
                memcpy(out->args[c][i], buf + p.arg_off[i], l);
                out->args[c][i][l] = '\0';
            }
            resp_parser_next(&p);
        }
        if (r == RESP_PARSE_ERROR)
            break;
    }
    if (r == RESP_PARSE_ERROR)
        memcpy(out->error, p.error, sizeof(out->error));
    free(buf);
    resp_parser_free(&p);
    return r;
}

static void test_arrays_parse_whole_and_byte_by_byte(void **state)
{
    (void)state;
    static const char in[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nxy\r\n*1\r\n$4\r\nPING\r\n";
    for (size_t step = 1; step <= sizeof(in); step++) {
        struct parsed out;
        assert_int_equal(feed(in, sizeof(in) - 1, step, &out), RESP_PARSE_MORE);
        assert_int_equal(out.count, 2);
        assert_int_equal(out.argc[0], 3);
        assert_string_equal(out.args[0][0], "SET");
        assert_string_equal(out.args[0][2], "v\r\nxy");
        assert_int_equal(out.argc[1], 1);
        assert_string_equal(out.args[1][0], "PING");
    }
}

static void test_empty_bulks_and_empty_arrays(void **state)
{
    (void)state;
    static const char in[] = "*0\r\n*-1\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n";
    struct parsed out;
    assert_int_equal(feed(in, sizeof(in) - 1, 1, &out), RESP_PARSE_MORE);
    assert_int_equal(out.count, 1);
    assert_int_equal(out.argc[0], 2);
    assert_string_equal(out.args[0][1], "");
}

static void test_inline_commands_split_as_redis_does(void **state)
{
    (void)state;
    static const char in[] = "  set  \"a b\\x41\\n\" 'it\\'s'  \r\nPING\n\r\n\nGET \"\"\n";
    for (size_t step = 1; step <= 4; step++) {
        struct parsed out;
        assert_int_equal(feed(in, sizeof(in) - 1, step, &out), RESP_PARSE_MORE);
        assert_int_equal(out.count, 3);
        assert_int_equal(out.argc[0], 3);
        assert_string_equal(out.args[0][0], "set");
        assert_string_equal(out.args[0][1], "a bA\n");
        assert_string_equal(out.args[0][2], "it's");
        assert_string_equal(out.args[1][0], "PING");
        assert_int_equal(out.argc[2], 2);
        assert_string_equal(out.args[2][1], "");
    }
}

static void assert_refused(const char *in, size_t len, const char *error)
{
    struct parsed out;
    assert_int_equal(feed(in, len, len, &out), RESP_PARSE_ERROR);
    assert_string_equal(out.error, error);
}

static void test_malformed_input_is_refused_with_redis_errors(void **state)
{
    (void)state;
    assert_refused("*2\r\n$3\r\nGET\r\n:1\r\n", 18, "ERR Protocol error: expected '$', got ':'");
    assert_refused("*x\r\n", 4, "ERR Protocol error: invalid multibulk length");
    assert_refused("*65\r\n", 5, "ERR Protocol error: invalid multibulk length");
    assert_refused("*1\r\n$-1\r\n", 9, "ERR Protocol error: invalid bulk length");
    assert_refused("*1\r\n$1025\r\n", 11, "ERR Protocol error: invalid bulk length");
    assert_refused("*1\r\n$1x\r\n", 9, "ERR Protocol error: invalid bulk length");
    assert_refused("*1\r\n$2\r\nabcd", 12, "ERR Protocol error: bulk string not followed by CRLF");
    assert_refused("GET \"open\r\n", 11, "ERR Protocol error: unbalanced quotes in request");
    assert_refused("GET \"a\"b\r\n", 10, "ERR Protocol error: unbalanced quotes in request");
    char *big = malloc(RESP_INLINE_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', RESP_INLINE_MAX + 2);
    assert_refused(big, RESP_INLINE_MAX + 2, "ERR Protocol error: too big inline request");
    free(big);
}

static void test_the_largest_bulk_and_argument_count_are_accepted(void **state)
{
    (void)state;
    struct growbuf b = {0};
    resp_array(&b, MAX_ARGS);
    char *bulk = malloc(MAX_BULK);
    assert_non_null(bulk);
    memset(bulk, 'z', MAX_BULK);
    resp_bulk(&b, bulk, MAX_BULK);
    for (size_t i = 1; i < MAX_ARGS; i++)
        resp_bulk(&b, "a", 1);
    struct parsed out;
    assert_int_equal(feed(b.data, b.len, 7, &out), RESP_PARSE_MORE);
    assert_int_equal(out.count, 1);
    assert_int_equal(out.argc[0], MAX_ARGS);
    free(bulk);
    growbuf_free(&b);
}

/* The caller may drop the bytes before the unfinished command and move the
 * rest down; the parser keeps its place. */
static void test_the_parser_follows_a_buffer_that_shifts(void **state)
{
    (void)state;
    static const char in[] = "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
    struct resp_parser p;
    resp_parser_init(&p, MAX_ARGS, MAX_BULK);
    char buf[128];
    size_t have = 30, need = 0;
    memcpy(buf, in, have);
    assert_int_equal(resp_parse(&p, buf, have, &need), RESP_PARSE_COMMAND);
    resp_parser_next(&p);
    assert_int_equal(resp_parse(&p, buf, have, &need), RESP_PARSE_MORE);
    size_t keep = resp_parser_keep_from(&p);
    assert_int_equal(keep, 14);
    memmove(buf, buf + keep, have - keep);
    have -= keep;
    resp_parser_shift(&p, keep);
    memcpy(buf + have, in + 30, sizeof(in) - 1 - 30);
    have += sizeof(in) - 1 - 30;
    assert_int_equal(resp_parse(&p, buf, have, &need), RESP_PARSE_COMMAND);
    assert_int_equal(p.argc, 2);
    assert_memory_equal(buf + p.arg_off[1], "hello", 5);
    resp_parser_free(&p);
}

static void test_a_large_bulk_says_how_much_it_still_needs(void **state)
{
    (void)state;
    static const char in[] = "*2\r\n$3\r\nSET\r\n$1000\r\nabc";
    struct resp_parser p;
    resp_parser_init(&p, MAX_ARGS, MAX_BULK);
    char buf[64];
    memcpy(buf, in, sizeof(in) - 1);
    size_t need = 0;
    assert_int_equal(resp_parse(&p, buf, sizeof(in) - 1, &need), RESP_PARSE_MORE);
    assert_int_equal(need, 1000 - 3 + 2);
    resp_parser_free(&p);
}

static void assert_reply(struct growbuf *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
    b->len = 0;
}

static void test_replies_in_resp2_and_resp3(void **state)
{
    (void)state;
    struct growbuf b = {0};
    resp_ok(&b);
    assert_reply(&b, "+OK\r\n");
    resp_error(&b, "ERR bad\r\nline");
    assert_reply(&b, "-ERR bad  line\r\n");
    resp_int(&b, -42);
    assert_reply(&b, ":-42\r\n");
    resp_bulk(&b, "a\0b", 3);
    assert_int_equal(b.len, 9);
    assert_memory_equal(b.data, "$3\r\na\0b\r\n", 9);
    b.len = 0;
    resp_bulk(&b, "", 0);
    assert_reply(&b, "$0\r\n\r\n");
    resp_null(&b, RESP2);
    assert_reply(&b, "$-1\r\n");
    resp_null(&b, RESP3);
    assert_reply(&b, "_\r\n");
    resp_null_array(&b, RESP2);
    assert_reply(&b, "*-1\r\n");
    resp_map(&b, RESP2, 2);
    assert_reply(&b, "*4\r\n");
    resp_map(&b, RESP3, 2);
    assert_reply(&b, "%2\r\n");
    resp_set(&b, RESP3, 1);
    assert_reply(&b, "~1\r\n");
    resp_bool(&b, RESP3, true);
    assert_reply(&b, "#t\r\n");
    resp_bool(&b, RESP2, false);
    assert_reply(&b, ":0\r\n");
    resp_verbatim(&b, RESP3, "x", 1);
    assert_reply(&b, "=5\r\ntxt:x\r\n");
    resp_verbatim(&b, RESP2, "x", 1);
    assert_reply(&b, "$1\r\nx\r\n");
    resp_bulk_u64(&b, 18446744073709551615ull);
    assert_reply(&b, "$20\r\n18446744073709551615\r\n");
    growbuf_free(&b);
}

static bool match(const char *pat, const char *s)
{
    return resp_glob_match(pat, strlen(pat), s, strlen(s), false);
}

static void test_glob_patterns_match_as_in_redis(void **state)
{
    (void)state;
    assert_true(match("*", ""));
    assert_true(match("user:*", "user:1"));
    assert_false(match("user:*", "use"));
    assert_true(match("h?llo", "hello"));
    assert_false(match("h?llo", "hllo"));
    assert_true(match("h[ae]llo", "hallo"));
    assert_false(match("h[^e]llo", "hello"));
    assert_true(match("h[a-b]llo", "hbllo"));
    assert_true(match("h[b-a]llo", "hallo")); /* a reversed range, as Redis reads it */
    assert_true(match("a\\*b", "a*b"));
    assert_false(match("a\\*b", "axb"));
    assert_true(match("*a*b*c*", "xxaxxbxxcxx"));
    assert_false(match("*a*b*c*", "xxaxxcxxbxx"));
    assert_true(resp_glob_match("MAX*", 4, "maxclients", 10, true));
    /* A hostile pattern stays linear: no recursion to exhaust. */
    char s[4096];
    memset(s, 'a', sizeof(s) - 1);
    s[sizeof(s) - 1] = '\0';
    assert_false(match("*a*a*a*a*a*a*a*a*a*a*b", s));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arrays_parse_whole_and_byte_by_byte),
        cmocka_unit_test(test_empty_bulks_and_empty_arrays),
        cmocka_unit_test(test_inline_commands_split_as_redis_does),
        cmocka_unit_test(test_malformed_input_is_refused_with_redis_errors),
        cmocka_unit_test(test_the_largest_bulk_and_argument_count_are_accepted),
        cmocka_unit_test(test_the_parser_follows_a_buffer_that_shifts),
        cmocka_unit_test(test_a_large_bulk_says_how_much_it_still_needs),
        cmocka_unit_test(test_replies_in_resp2_and_resp3),
        cmocka_unit_test(test_glob_patterns_match_as_in_redis),
    };
    return tu_run_tests(tests, argc, argv);
}
