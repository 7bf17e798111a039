/*
 * parse.h - splits one command line of the kvstore CLI into words.
 *
 * The grammar, in full:
 *
 *  - Words are separated by blanks (spaces and tabs).
 *  - A word that starts with a double quote runs to the matching double quote.
 *    Inside it a backslash starts an escape: \" \\ \' \n \r \t \0 and \xHH (two
 *    hex digits) stand for the byte they name; any other escape is an error.
 *  - A word that starts with a single quote runs to the next single quote and
 *    takes every byte in between literally (no escapes), as in the shell.
 *  - A closing quote must be followed by a blank or the end of the line.
 *  - Any other word is bare: it runs to the next blank and takes every byte
 *    literally, quotes and backslashes included ("it's" is one word).
 *
 * A command whose last argument is a value (set) takes it with
 * cli_parser_rest(): either one quoted word that ends the line, or the raw
 * rest of the line with its surrounding blanks trimmed, inner spacing kept.
 *
 * Words may hold any byte, NUL included: they carry a length, not a
 * terminator.
 */
#ifndef KVSTORE_CLI_PARSE_H
#define KVSTORE_CLI_PARSE_H

#include <stddef.h>

/* A word of a command line: len bytes at data, not NUL-terminated. */
typedef struct cli_word {
    const char *data;
    size_t len;
} cli_word;

/* A cursor over one line. Words it returns point into the line itself (bare
 * words) or into out, which it owns (quoted words, after unescaping); both
 * stay valid until cli_parser_free(), since the line must outlive the
 * parser. */
typedef struct cli_parser {
    const char *line; /* borrowed: must outlive the parser */
    size_t len;
    size_t pos;        /* next byte of line to read */
    char *out;         /* unescaped bytes of the words read so far */
    size_t out_len;    /* bytes of out in use */
    const char *error; /* after a -1 return: what is wrong (a static string) */
    size_t error_pos;  /* after a -1 return: byte offset in line where it is */
} cli_parser;

/* Prepares p to read the len bytes at line. Returns 0, or -1 when memory for
 * the words cannot be allocated. */
int cli_parser_init(cli_parser *p, const char *line, size_t len);

/* Releases what p holds. Safe on a zeroed parser and to call twice. */
void cli_parser_free(cli_parser *p);

/* Reads the next word into *w. Returns 1 when a word was read, 0 when only
 * blanks remain (nothing is read), -1 on a syntax error (p->error says which;
 * the cursor does not move). */
int cli_parser_next(cli_parser *p, cli_word *w);

/* Reads everything that remains as one value into *w (see the file comment).
 * Returns 1 when there is a value, 0 when only blanks remain, -1 on a syntax
 * error (an unterminated quote, or text after a quoted value). */
int cli_parser_rest(cli_parser *p, cli_word *w);

#endif /* KVSTORE_CLI_PARSE_H */
