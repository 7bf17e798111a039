/*
 * output.c - how the CLI writes replies, values, keys and messages.
 *
 * Replies go to stdout and messages to stderr, so that a script can capture
 * one without the other. Values and keys are bytes: on a terminal their
 * control bytes are shown escaped, so that a stored value cannot move the
 * cursor, change colours or retitle the window of whoever reads it; anywhere
 * else they are written unchanged, so that output can be captured exactly.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli.h"

static bool is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Writes the escape for byte c, which needs one. */
static void put_escape(FILE *f, unsigned char c)
{
    switch (c) {
    case '\n':
        fputs("\\n", f);
        break;
    case '\r':
        fputs("\\r", f);
        break;
    case '\t':
        fputs("\\t", f);
        break;
    case '\0':
        fputs("\\0", f);
        break;
    case '"':
        fputs("\\\"", f);
        break;
    case '\\':
        fputs("\\\\", f);
        break;
    default:
        fprintf(f, "\\x%02x", c);
        break;
    }
}

/* Writes data with its control bytes escaped (and, when quoted, its quotes
 * and backslashes); the bytes in between go out in runs. */
static void put_bytes(FILE *f, const unsigned char *p, size_t len, bool quoted)
{
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        bool esc = is_control(p[i]) || (quoted && (p[i] == '"' || p[i] == '\\'));
        if (!esc)
            continue;
        fwrite(p + run, 1, i - run, f);
        put_escape(f, p[i]);
        run = i + 1;
    }
    fwrite(p + run, 1, len - run, f);
}

void cli_print_escaped(FILE *f, const void *data, size_t len)
{
    put_bytes(f, data, len, false);
}

void cli_print_quoted(FILE *f, const void *data, size_t len)
{
    fputc('"', f);
    put_bytes(f, data, len, true);
    fputc('"', f);
}

void cli_error(const struct cli *cli, const char *fmt, ...)
{
    /* stdout is buffered and stderr is not: flush replies first, so that a
     * terminal shows them in the order they were made. */
    fflush(stdout);
    switch (cli->mode) {
    case CLI_REPL:
        fputs("error: ", stderr);
        break;
    case CLI_SCRIPT:
        if (cli->line > 0) {
            fprintf(stderr, "kvstore: line %lu: ", cli->line);
            break;
        }
        fputs("kvstore: ", stderr);
        break;
    case CLI_ONESHOT:
        fputs("kvstore: ", stderr);
        break;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_not_found(const struct cli *cli)
{
    if (cli->mode == CLI_ONESHOT) {
        fflush(stdout);
        fputs("Key not found\n", stderr);
        return;
    }
    puts("Key not found");
}

void cli_print_value(const struct cli *cli, const void *val, size_t len)
{
    if (cli->out_tty) {
        cli_print_escaped(stdout, val, len);
        putchar('\n');
        return;
    }
    fwrite(val, 1, len, stdout);
    if (cli->mode != CLI_ONESHOT)
        putchar('\n');
}

void cli_print_key_line(const struct cli *cli, const void *key, size_t len)
{
    fputs("  ", stdout);
    if (cli->out_tty)
        cli_print_escaped(stdout, key, len);
    else
        fwrite(key, 1, len, stdout);
    putchar('\n');
}
