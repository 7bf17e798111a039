/*
 * parse.c - the command-line tokenizer of the kvstore CLI (grammar in
 * parse.h).
 *
 * Unescaping never makes a word longer than its source text, so one buffer of
 * the line's length holds every word of the line; words are appended to it and
 * never move, which keeps earlier words valid while later ones are read.
 */
#include "parse.h"

#include <stdbool.h>
#include <stdlib.h>

#include "hex.h"

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void skip_blanks(cli_parser *p)
{
    while (p->pos < p->len && is_blank(p->line[p->pos]))
        p->pos++;
}

static int syntax_error(cli_parser *p, const char *why, size_t at)
{
    p->error = why;
    p->error_pos = at;
    return -1;
}

int cli_parser_init(cli_parser *p, const char *line, size_t len)
{
    *p = (cli_parser){.line = line, .len = len};
    /* One spare byte so that an empty line still gets a valid buffer. */
    p->out = malloc(len + 1);
    return p->out ? 0 : -1;
}

void cli_parser_free(cli_parser *p)
{
    free(p->out);
    p->out = NULL;
    p->out_len = 0;
}

/* Decodes the escape whose backslash is at *at; on success appends its byte to
 * out and moves *at past the escape. */
static int read_escape(cli_parser *p, size_t *at, size_t *n)
{
    size_t i = *at + 1;
    if (i >= p->len)
        return syntax_error(p, "unterminated quote", *at);
    char c = p->line[i];
    char byte;
    switch (c) {
    case '"':
    case '\\':
    case '\'':
        byte = c;
        break;
    case 'n':
        byte = '\n';
        break;
    case 'r':
        byte = '\r';
        break;
    case 't':
        byte = '\t';
        break;
    case '0':
        byte = '\0';
        break;
    case 'x': {
        int hi = i + 1 < p->len ? util_hex_value(p->line[i + 1]) : -1;
        int lo = i + 2 < p->len ? util_hex_value(p->line[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return syntax_error(p, "\\x needs two hex digits", *at);
        byte = (char)(hi * 16 + lo);
        i += 2;
        break;
    }
    default:
        return syntax_error(p, "unknown escape (use \\\\ for a backslash)", *at);
    }
    p->out[p->out_len + (*n)++] = byte;
    *at = i + 1;
    return 0;
}

/* Reads the quoted word that starts at p->pos into *w. */
static int read_quoted(cli_parser *p, cli_word *w)
{
    char quote = p->line[p->pos];
    size_t i = p->pos + 1;
    size_t n = 0;
    for (;;) {
        if (i >= p->len)
            return syntax_error(p, "unterminated quote", p->pos);
        char c = p->line[i];
        if (c == quote)
            break;
        if (c == '\\' && quote == '"') {
            if (read_escape(p, &i, &n) != 0)
                return -1;
            continue;
        }
        p->out[p->out_len + n++] = c;
        i++;
    }
    i++; /* the closing quote */
    if (i < p->len && !is_blank(p->line[i]))
        return syntax_error(p, "text right after a closing quote", i);
    *w = (cli_word){.data = p->out + p->out_len, .len = n};
    p->out_len += n;
    p->pos = i;
    return 1;
}

static int read_bare(cli_parser *p, cli_word *w)
{
    size_t start = p->pos;
    while (p->pos < p->len && !is_blank(p->line[p->pos]))
        p->pos++;
    *w = (cli_word){.data = p->line + start, .len = p->pos - start};
    return 1;
}

static bool starts_quote(const cli_parser *p)
{
    return p->line[p->pos] == '"' || p->line[p->pos] == '\'';
}

int cli_parser_next(cli_parser *p, cli_word *w)
{
    size_t saved = p->pos;
    skip_blanks(p);
    if (p->pos >= p->len)
        return 0;
    int rc = starts_quote(p) ? read_quoted(p, w) : read_bare(p, w);
    if (rc < 0)
        p->pos = saved;
    return rc;
}

int cli_parser_rest(cli_parser *p, cli_word *w)
{
    size_t saved = p->pos;
    skip_blanks(p);
    if (p->pos >= p->len)
        return 0;
    if (starts_quote(p)) {
        if (read_quoted(p, w) < 0) {
            p->pos = saved;
            return -1;
        }
        skip_blanks(p);
        if (p->pos < p->len) {
            size_t at = p->pos;
            p->pos = saved;
            return syntax_error(p, "text after a quoted value (quote all of it or none)", at);
        }
        return 1;
    }
    size_t end = p->len;
    while (end > p->pos && is_blank(p->line[end - 1]))
        end--;
    *w = (cli_word){.data = p->line + p->pos, .len = end - p->pos};
    p->pos = p->len;
    return 1;
}
