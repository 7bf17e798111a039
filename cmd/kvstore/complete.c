/*
 * complete.c - tab completion in the REPL. The first word completes to a
 * command name; the argument of a command that takes a key (get, delete, set,
 * ...) completes to the keys of the store that start with what is typed.
 *
 * One candidate is inserted whole, followed by a space; several are completed
 * as far as they agree, and listed below the line when they agree no further.
 * A key that the parser would not read back as a bare word (it holds a blank
 * or a control byte, or starts with a quote) is inserted quoted. At most
 * MAX_CANDIDATES keys are considered, so a tab on a large store stays quick.
 */
#include <stdlib.h>
#include <string.h>

#include "repl.h"

#define MAX_CANDIDATES 100
#define LIST_WIDTH     78

struct candidates {
    char *text[MAX_CANDIDATES + 1];
    size_t len[MAX_CANDIDATES + 1];
    size_t n;
    bool more; /* there were more than MAX_CANDIDATES */
    bool failed;
};

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void candidates_free(struct candidates *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->text[i]);
    c->n = 0;
}

/* Copies a candidate, NUL-terminated for libedit. */
static void candidates_add(struct candidates *c, const void *s, size_t len)
{
    if (c->n == MAX_CANDIDATES) {
        c->more = true;
        return;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        c->failed = true;
        return;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    c->text[c->n] = copy;
    c->len[c->n] = len;
    c->n++;
}

static void find_commands(struct candidates *c, const char *word, size_t len)
{
    const char *name;
    for (size_t i = 0; (name = cli_command_name(i)) != NULL; i++)
        if (strncmp(name, word, len) == 0 && (strlen(name) > len || name[len] == '\0'))
            candidates_add(c, name, strlen(name));
}

static int on_key(const void *key, size_t len, void *arg)
{
    struct candidates *c = arg;
    candidates_add(c, key, len);
    return c->failed ? 1 : 0;
}

static void find_keys(struct candidates *c, struct cli *cli, const char *word, size_t len)
{
    /* One more than we show tells whether there are more. */
    if (cli->remote != NULL)
        remote_list(cli, word, len, MAX_CANDIDATES + 1, on_key, c);
    else if (cli->store != NULL)
        kv_list(cli->store, word, len, NULL, 0, MAX_CANDIDATES + 1, on_key, c);
}

/* Whether the parser reads key back as one bare word. */
static bool bare_word_ok(const char *key, size_t len)
{
    if (len == 0 || key[0] == '"' || key[0] == '\'')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)key[i];
        if (b < 0x20 || b == 0x7f || b == ' ')
            return false;
    }
    return true;
}

/* Replaces the typed word (typed bytes before the cursor) with key, quoted,
 * and a space. */
static unsigned char insert_quoted(EditLine *el, size_t typed, const char *key, size_t len)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f)
        return CC_ERROR;
    cli_print_quoted(f, key, len);
    fputc(' ', f);
    if (fclose(f) != 0) {
        free(text);
        return CC_ERROR;
    }
    el_deletestr(el, (int)typed);
    el_insertstr(el, text);
    free(text);
    return CC_REFRESH;
}

static size_t common_prefix(const struct candidates *c)
{
    size_t n = c->len[0];
    for (size_t i = 1; i < c->n; i++) {
        size_t j = 0;
        while (j < n && j < c->len[i] && c->text[i][j] == c->text[0][j])
            j++;
        n = j;
    }
    return n;
}

/* Prints the candidates below the line, as many to a line as fit. */
static unsigned char list_candidates(const struct candidates *c)
{
    size_t col = 0;
    fputc('\n', stdout);
    for (size_t i = 0; i < c->n; i++) {
        if (col > 0 && col + c->len[i] + 2 > LIST_WIDTH) {
            fputc('\n', stdout);
            col = 0;
        }
        cli_print_escaped(stdout, c->text[i], c->len[i]);
        fputs("  ", stdout);
        col += c->len[i] + 2;
    }
    if (c->more)
        fputs("\n(more: type more of the key)", stdout);
    fputc('\n', stdout);
    fflush(stdout);
    return CC_REDISPLAY;
}

static unsigned char complete(EditLine *el, const struct candidates *c, size_t typed)
{
    if (c->n == 0)
        return CC_ERROR;
    if (c->n == 1 && !c->more) {
        if (!bare_word_ok(c->text[0], c->len[0]))
            return insert_quoted(el, typed, c->text[0], c->len[0]);
        el_insertstr(el, c->text[0] + typed);
        el_insertstr(el, " ");
        return CC_REFRESH;
    }
    size_t common = common_prefix(c);
    if (common > typed && bare_word_ok(c->text[0], common)) {
        char *part = strndup(c->text[0] + typed, common - typed);
        if (!part)
            return CC_ERROR;
        el_insertstr(el, part);
        free(part);
        return CC_REFRESH;
    }
    return list_candidates(c);
}

unsigned char complete_at_cursor(EditLine *el, struct cli *cli)
{
    const LineInfo *li = el_line(el);
    const char *buf = li->buffer;
    size_t cursor = (size_t)(li->cursor - buf);
    size_t start = cursor;
    while (start > 0 && !is_blank(buf[start - 1]))
        start--;
    size_t first = 0;
    while (first < start && is_blank(buf[first]))
        first++;
    size_t first_end = first;
    while (first_end < start && !is_blank(buf[first_end]))
        first_end++;
    size_t gap = first_end;
    while (gap < start && is_blank(buf[gap]))
        gap++;

    struct candidates c;
    memset(&c, 0, sizeof(c));
    const char *word = buf + start;
    size_t typed = cursor - start;
    if (first == start)
        find_commands(&c, word, typed);
    else if (gap == start && cli_command_takes_key(buf + first, first_end - first) &&
             (typed == 0 || (word[0] != '"' && word[0] != '\'')))
        find_keys(&c, cli, word, typed);
    unsigned char rc = c.failed ? CC_ERROR : complete(el, &c, typed);
    candidates_free(&c);
    return rc;
}
