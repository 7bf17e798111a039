/*
 * fuzz_cli_parse.c - the kvstore CLI's command-line tokenizer (parse.h).
 *
 * Every line is read word by word to the end, and from every word boundary
 * once more as a "rest" value. Besides not crashing: each call either reads
 * forward or fails without moving the cursor, words lie inside the parser's
 * buffer or the line and are no longer than the line, and an error names a position in it.
 */
#include <stdbool.h>

#include "fuzz_common.h"
#include "parse.h"

/* A word lies in the parser's buffer (unescaped words) or in the line
 * itself (bare words: parse.c returns them in place). */
static void check_word(const cli_parser *p, const cli_word *w, size_t len)
{
    FUZZ_CHECK(w->len <= len);
    bool in_out = w->data >= p->out && w->data + w->len <= p->out + p->out_len;
    bool in_line = w->data >= p->line && w->data + w->len <= p->line + p->len;
    FUZZ_CHECK(w->len == 0 || in_out || in_line);
}

static void check_error(const cli_parser *p, size_t pos_before, size_t len)
{
    FUZZ_CHECK(p->error != NULL && p->error_pos <= len);
    FUZZ_CHECK(p->pos == pos_before);
}

static void read_rest(const char *line, size_t len, size_t skip_words)
{
    cli_parser p;
    FUZZ_CHECK(cli_parser_init(&p, line, len) == 0);
    cli_word w;
    for (size_t i = 0; i < skip_words; i++)
        if (cli_parser_next(&p, &w) != 1)
            break;
    size_t before = p.pos;
    int rc = cli_parser_rest(&p, &w);
    FUZZ_CHECK(rc >= -1 && rc <= 1);
    if (rc == 1)
        check_word(&p, &w, len);
    else if (rc == -1)
        check_error(&p, before, len);
    cli_parser_free(&p);
    cli_parser_free(&p); /* documented as safe */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: the parser must not read past len. */
    char *line = malloc(size ? size : 1);
    FUZZ_CHECK(line != NULL);
    memcpy(line, data, size);
    cli_parser p;
    FUZZ_CHECK(cli_parser_init(&p, line, size) == 0);
    size_t words = 0;
    for (;;) {
        cli_word w;
        size_t before = p.pos;
        int rc = cli_parser_next(&p, &w);
        FUZZ_CHECK(rc >= -1 && rc <= 1);
        if (rc == -1) {
            check_error(&p, before, size);
            break;
        }
        if (rc == 0)
            break;
        FUZZ_CHECK(p.pos > before && p.pos <= size);
        check_word(&p, &w, size);
        words++;
    }
    cli_parser_free(&p);
    for (size_t i = 0; i <= words && i < 8; i++)
        read_rest(line, size, i);
    free(line);
    return 0;
}
