/*
 * json_text.h - JSON text written straight into a growing buffer, for the
 * responses a busy server sends most (a put's reply, pages of keys), where
 * building a jansson tree to dump it at once costs more than the request.
 * Other replies use jansson (response.h).
 */
#ifndef VS_JSON_TEXT_H
#define VS_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_text {
    char *buf; /* malloc'd; not terminated */
    size_t len, cap;
    bool failed; /* memory ran out: every later append is ignored */
};

/* Appends n bytes as they are (JSON punctuation, or text already JSON). */
void json_text_raw(struct json_text *t, const char *s, size_t n);

/* Appends s (n bytes of UTF-8) as a JSON string: quoted, with '"', '\' and
 * control characters escaped, as jansson writes them. */
void json_text_string(struct json_text *t, const char *s, size_t n);

/* Appends v in decimal. */
void json_text_uint(struct json_text *t, uint64_t v);

/* Appends "name": (a member's quoted name and its colon), after a comma
 * unless the text so far ends an object's opening brace. */
void json_text_member(struct json_text *t, const char *name);

/* Hands over the buffer (NULL when memory ran out, or nothing was
 * appended) and empties t. */
char *json_text_take(struct json_text *t, size_t *len);

void json_text_free(struct json_text *t);

#endif /* VS_JSON_TEXT_H */
