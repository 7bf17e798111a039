/*
 * test_cli_parse.c - the kvstore CLI's command-line tokenizer
 * (cmd/kvstore/parse.c, compiled into this test): words, quoting, escapes,
 * the rest-of-line value of set, and the errors a user can make.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* The tokenizer is a file of the kvstore program, not of the library: the
 * test compiles it in. */
#include "../../cmd/kvstore/parse.c" // NOLINT(bugprone-suspicious-include)

/* Splits line into words; returns their number, or -1 on a syntax error. */
static int split(const char *line, size_t len, cli_parser *p, cli_word *words, int max)
{
    assert_int_equal(cli_parser_init(p, line, len), 0);
    int n = 0;
    for (;;) {
        cli_word w = {0};
        int rc = cli_parser_next(p, &w);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return n;
        assert_true(n < max);
        words[n++] = w;
    }
}

static void assert_word(const cli_word *w, const void *bytes, size_t len)
{
    assert_int_equal(w->len, len);
    assert_memory_equal(w->data, bytes, len);
}

#define assert_word_str(w, s) assert_word((w), (s), strlen(s))

static void test_blanks_and_tabs_separate_bare_words(void **state)
{
    (void)state;
    cli_parser p;
    cli_word w[8];
    const char *line = "  set\tkey   value  ";
    assert_int_equal(split(line, strlen(line), &p, w, 8), 3);
    assert_word_str(&w[0], "set");
    assert_word_str(&w[1], "key");
    assert_word_str(&w[2], "value");
    cli_parser_free(&p);
}

static void test_empty_and_blank_lines_have_no_words(void **state)
{
    (void)state;
    cli_parser p;
    cli_word w[2];
    assert_int_equal(split("", 0, &p, w, 2), 0);
    cli_parser_free(&p);
    assert_int_equal(split(" \t ", 3, &p, w, 2), 0);
    cli_parser_free(&p);
}

static void test_double_quotes_keep_spaces_in_one_word(void **state)
{
    (void)state;
    cli_parser p;
    cli_word w[4];
    const char *line = "set \"my key\" \"a  value\"";
    assert_int_equal(split(line, strlen(line), &p, w, 4), 3);
    assert_word_str(&w[1], "my key");
    assert_word_str(&w[2], "a  value");
    cli_parser_free(&p);
}

static void test_escapes_inside_double_quotes_give_their_bytes(void **state)
{
    (void)state;
    cli_parser p;
    cli_word w[2];
    const char *line = "\"q\\\" b\\\\ s\\' n\\n r\\r t\\t z\\0 x\\x41\\xfF\"";
    assert_int_equal(split(line, strlen(line), &p, w, 2), 1);
    static const char want[] = "q\" b\\ s' n\n r\r t\t z\0 xA\xff";
    assert_word(&w[0], want, sizeof(want) - 1);
    cli_parser_free(&p);
}

static void test_single_quotes_take_backslashes_literally(void **state)
{
    (void)state;
    cli_parser p;
    cli_word w[2];
    const char *line = "'C:\\dir \\n \"x\"'";
    assert_int_equal(split(line, strlen(line), &p, w, 2), 1);
    assert_word_str(&w[0], "C:\\dir \\n \"x\"");
    cli_parser_free(&p);
}

static void test_bare_words_keep_inner_quotes_and_backslashes(void **state)
{
    (void)state;
    cli_parser p;
    cli_word w[3];
    const char *line = "it's a\\b";
    assert_int_equal(split(line, strlen(line), &p, w, 3), 2);
    assert_word_str(&w[0], "it's");
    assert_word_str(&w[1], "a\\b");
    cli_parser_free(&p);
}

static void test_empty_quotes_are_an_empty_word(void **state)
{
    (void)state;
    cli_parser p;
    cli_word w[3];
    const char *line = "get \"\" ''";
    assert_int_equal(split(line, strlen(line), &p, w, 3), 3);
    assert_int_equal(w[1].len, 0);
    assert_int_equal(w[2].len, 0);
    cli_parser_free(&p);
}

static void test_nul_bytes_in_bare_words_are_kept(void **state)
{
    (void)state;
    cli_parser p;
    cli_word w[2];
    static const char line[] = "a\0b c";
    assert_int_equal(split(line, sizeof(line) - 1, &p, w, 2), 2);
    assert_word(&w[0], "a\0b", 3);
    assert_word_str(&w[1], "c");
    cli_parser_free(&p);
}

static void test_words_stay_valid_while_later_ones_are_read(void **state)
{
    (void)state;
    cli_parser p;
    cli_word w[3];
    const char *line = "\"one\\n\" \"two\\t\" \"three\"";
    assert_int_equal(split(line, strlen(line), &p, w, 3), 3);
    assert_word_str(&w[0], "one\n");
    assert_word_str(&w[1], "two\t");
    assert_word_str(&w[2], "three");
    cli_parser_free(&p);
}

/* Expects a syntax error at byte offset at whose message contains what. */
static void assert_split_fails(const char *line, size_t at, const char *what)
{
    cli_parser p;
    cli_word w[4];
    assert_int_equal(split(line, strlen(line), &p, w, 4), -1);
    assert_non_null(p.error);
    if (!strstr(p.error, what))
        fail_msg("error \"%s\" does not mention \"%s\"", p.error, what);
    assert_int_equal(p.error_pos, at);
    cli_parser_free(&p);
}

static void test_syntax_errors_say_what_and_where(void **state)
{
    (void)state;
    assert_split_fails("get \"open", 4, "unterminated quote");
    assert_split_fails("get 'open", 4, "unterminated quote");
    assert_split_fails("get \"a\\", 6, "unterminated quote");
    assert_split_fails("get \"a\\q\"", 6, "unknown escape");
    assert_split_fails("get \"\\x4\"", 5, "two hex digits");
    assert_split_fails("get \"\\xg0\"", 5, "two hex digits");
    assert_split_fails("get \"a\"b", 7, "after a closing quote");
}

static void test_a_failed_read_does_not_move_the_cursor(void **state)
{
    (void)state;
    cli_parser p;
    cli_word w = {0};
    const char *line = "get \"open";
    assert_int_equal(cli_parser_init(&p, line, strlen(line)), 0);
    assert_int_equal(cli_parser_next(&p, &w), 1);
    size_t pos = p.pos;
    assert_int_equal(cli_parser_next(&p, &w), -1);
    assert_int_equal(p.pos, pos);
    cli_parser_free(&p);
}

/* Reads "set KEY" and then the rest of line as a value. */
static int rest_after_two_words(const char *line, cli_parser *p, cli_word *value)
{
    cli_word w = {0};
    assert_int_equal(cli_parser_init(p, line, strlen(line)), 0);
    assert_int_equal(cli_parser_next(p, &w), 1);
    assert_int_equal(cli_parser_next(p, &w), 1);
    return cli_parser_rest(p, value);
}

static void test_rest_is_the_raw_line_with_inner_spacing_kept(void **state)
{
    (void)state;
    cli_parser p;
    cli_word v = {0};
    assert_int_equal(rest_after_two_words("set k   hello   \"big\"  world \t", &p, &v), 1);
    assert_word_str(&v, "hello   \"big\"  world");
    cli_parser_free(&p);
}

static void test_rest_that_is_one_quoted_word_is_unquoted(void **state)
{
    (void)state;
    cli_parser p;
    cli_word v = {0};
    assert_int_equal(rest_after_two_words("set k \"  padded\\n \"  ", &p, &v), 1);
    assert_word_str(&v, "  padded\n ");
    cli_parser_free(&p);
}

static void test_rest_with_text_after_a_quoted_value_is_an_error(void **state)
{
    (void)state;
    cli_parser p;
    cli_word v = {0};
    assert_int_equal(rest_after_two_words("set k \"a\" b", &p, &v), -1);
    assert_non_null(strstr(p.error, "quoted value"));
    cli_parser_free(&p);
}

static void test_rest_of_nothing_is_no_value(void **state)
{
    (void)state;
    cli_parser p;
    cli_word v = {0};
    assert_int_equal(rest_after_two_words("set k   ", &p, &v), 0);
    cli_parser_free(&p);
}

static void test_free_twice_is_safe(void **state)
{
    (void)state;
    cli_parser p;
    assert_int_equal(cli_parser_init(&p, "x", 1), 0);
    cli_parser_free(&p);
    cli_parser_free(&p);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blanks_and_tabs_separate_bare_words),
        cmocka_unit_test(test_empty_and_blank_lines_have_no_words),
        cmocka_unit_test(test_double_quotes_keep_spaces_in_one_word),
        cmocka_unit_test(test_escapes_inside_double_quotes_give_their_bytes),
        cmocka_unit_test(test_single_quotes_take_backslashes_literally),
        cmocka_unit_test(test_bare_words_keep_inner_quotes_and_backslashes),
        cmocka_unit_test(test_empty_quotes_are_an_empty_word),
        cmocka_unit_test(test_nul_bytes_in_bare_words_are_kept),
        cmocka_unit_test(test_words_stay_valid_while_later_ones_are_read),
        cmocka_unit_test(test_syntax_errors_say_what_and_where),
        cmocka_unit_test(test_a_failed_read_does_not_move_the_cursor),
        cmocka_unit_test(test_rest_is_the_raw_line_with_inner_spacing_kept),
        cmocka_unit_test(test_rest_that_is_one_quoted_word_is_unquoted),
        cmocka_unit_test(test_rest_with_text_after_a_quoted_value_is_an_error),
        cmocka_unit_test(test_rest_of_nothing_is_no_value),
        cmocka_unit_test(test_free_twice_is_safe),
    };
    return tu_run_tests(tests, argc, argv);
}
