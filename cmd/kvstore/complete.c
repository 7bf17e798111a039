/*
 * complete.c - tab completion in the REPL. The first word completes to a
 * command name; the argument of a command that takes a key (get, delete, set,
 * ...) completes to the keys of the store that start with what is typed.
 *
 * The line up to the cursor is read as the parser reads it (parse.h): a word
 * may be bare, or open with a double or a single quote, which it may not have
 * closed yet ("set \"my k<TAB>" completes to "set \"my key\" "), and inside
 * double quotes the escapes stand for their bytes. What is typed is that
 * decoded text; a word the parser would refuse, or one whose quote is closed,
 * completes to nothing.
 *
 * One candidate is inserted whole, followed by a space; several are completed
 * as far as they agree, and listed below the line when they agree no further.
 * A bare word is extended as typed when the key reads back as a bare word;
 * otherwise (the key holds a blank or a control byte, or starts with a quote),
 * and always in a quoted word, the typed word is replaced by the key in
 * quotes, left open while several candidates remain. At most MAX_CANDIDATES
 * keys are considered, so a tab on a large store stays quick.
 */
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "hex.h"
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

/* Characters (not bytes) in the n bytes at s, as libedit counts them. */
static int chars_in(const char *s, size_t n)
{
    mbstate_t st;
    memset(&st, 0, sizeof(st));
    int chars = 0;
    size_t i = 0;
    while (i < n) {
        size_t len = mbrlen(s + i, n - i, &st);
        if (len == 0 || len > n - i) { /* NUL, or a broken sequence: a byte */
            len = 1;
            memset(&st, 0, sizeof(st));
        }
        i += len;
        chars++;
    }
    return chars;
}

/* Replaces the typed word (the typed bytes before the cursor, its quote
 * included) with key (len bytes) in double quotes, closed and followed by a
 * space when close, else left open. */
static unsigned char insert_quoted(EditLine *el, const char *word, size_t typed, const char *key,
                                   size_t len, bool close)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f)
        return CC_ERROR;
    cli_print_quoted(f, key, len);
    if (close)
        fputc(' ', f);
    if (fclose(f) != 0) {
        free(text);
        return CC_ERROR;
    }
    if (!close && size > 0)
        text[size - 1] = '\0'; /* the closing quote: more is to come */
    el_deletestr(el, chars_in(word, typed));
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

/* The word the cursor ends, as the parser would read it. */
struct word {
    size_t index;   /* 0: the command, 1: its first argument, ... */
    size_t start;   /* offset of its first byte (its quote, if quoted) */
    char quote;     /* 0, '"' or '\'' */
    bool closed;    /* its quote is closed: nothing to complete */
    char *text;     /* its bytes so far, unescaped */
    size_t len;     /* bytes in text */
    size_t cmd_len; /* the command word, when index > 0 and it is bare */
    const char *cmd;
};

/* Reads the escape at buf[*i] (a backslash) of a double-quoted word into
 * *out; false when the line is cut short or it is not an escape. */
static bool read_escape(const char *buf, size_t end, size_t *i, char *out)
{
    static const char from[] = "\"\\'nrt0", to[] = "\"\\'\n\r\t";
    if (*i + 1 >= end)
        return false;
    char c = buf[*i + 1];
    const char *at = strchr(from, c);
    if (c != 'x' && (c == '\0' || !at))
        return false;
    if (c == 'x') {
        int hi = *i + 2 < end ? util_hex_value(buf[*i + 2]) : -1;
        int lo = *i + 3 < end ? util_hex_value(buf[*i + 3]) : -1;
        if (hi < 0 || lo < 0)
            return false;
        *out = (char)(hi * 16 + lo);
        *i += 4;
        return true;
    }
    *out = c == '0' ? '\0' : to[at - from];
    *i += 2;
    return true;
}

static bool is_quote(char c)
{
    return c == '"' || c == '\'';
}

/* Reads buf[0..end) into *w: the words before the cursor, and the one it
 * ends (empty when a blank precedes it). false when the parser would refuse
 * the line or memory runs out. w->text is released with free. */
static bool word_at_cursor(const char *buf, size_t end, struct word *w)
{
    memset(w, 0, sizeof(*w));
    w->text = malloc(end + 1);
    if (!w->text)
        return false;
    size_t i = 0;
    bool first = true;
    for (;;) {
        while (i < end && is_blank(buf[i]))
            i++;
        if (!first)
            w->index++;
        first = false;
        w->start = i;
        w->quote = i < end && is_quote(buf[i]) ? buf[i] : 0;
        w->closed = false;
        w->len = 0;
        if (w->quote)
            i++;
        while (i < end && (w->quote ? buf[i] != w->quote : !is_blank(buf[i]))) {
            char byte = buf[i];
            if (w->quote == '"' && byte == '\\') {
                if (!read_escape(buf, end, &i, &byte))
                    return false;
            } else {
                i++;
            }
            w->text[w->len++] = byte;
        }
        if (w->quote && i < end) { /* the closing quote */
            w->closed = true;
            if (++i < end && !is_blank(buf[i]))
                return false; /* text right after a closing quote */
        }
        if (w->index == 0 && !w->quote) {
            w->cmd = buf + w->start;
            w->cmd_len = i - w->start;
        }
        if (i >= end)
            return true;
    }
}

static unsigned char complete(EditLine *el, const struct candidates *c, const struct word *w,
                              const char *buf, size_t typed)
{
    if (c->n == 0)
        return CC_ERROR;
    if (c->n == 1 && !c->more) {
        if (w->quote || !bare_word_ok(c->text[0], c->len[0]))
            return insert_quoted(el, buf + w->start, typed, c->text[0], c->len[0], true);
        el_insertstr(el, c->text[0] + w->len);
        el_insertstr(el, " ");
        return CC_REFRESH;
    }
    size_t common = common_prefix(c);
    if (common > w->len) {
        if (w->quote || !bare_word_ok(c->text[0], common))
            return insert_quoted(el, buf + w->start, typed, c->text[0], common, false);
        char *part = strndup(c->text[0] + w->len, common - w->len);
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
    struct word w;
    struct candidates c;
    memset(&c, 0, sizeof(c));
    if (!word_at_cursor(buf, cursor, &w)) {
        free(w.text);
        return CC_ERROR;
    }
    if (w.closed)
        ; /* a finished quoted word: nothing to add */
    else if (w.index == 0 && !w.quote)
        find_commands(&c, w.text, w.len);
    else if (w.index == 1 && w.cmd && cli_command_takes_key(w.cmd, w.cmd_len))
        find_keys(&c, cli, w.text, w.len);
    unsigned char rc = c.failed ? CC_ERROR : complete(el, &c, &w, buf, cursor - w.start);
    candidates_free(&c);
    free(w.text);
    return rc;
}
