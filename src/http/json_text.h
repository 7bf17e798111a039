/*
 * json_text.h - JSON text written straight into a growing buffer
 * (growbuf.h), for the responses a busy server sends most (a put's reply,
 * pages of keys), where building a jansson tree to dump it at once costs
 * more than the request. Other replies use jansson (response.h).
 */
#ifndef VS_JSON_TEXT_H
#define VS_JSON_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "growbuf.h"

/* Appends s (n bytes of UTF-8) as a JSON string: quoted, with '"', '\' and
 * control characters escaped, as jansson writes them. */
void json_text_string(struct growbuf *b, const char *s, size_t n);

/* Appends v in decimal. */
void json_text_uint(struct growbuf *b, uint64_t v);

/* Appends "name": (a member's quoted name and its colon), after a comma
 * unless the text so far ends an object's opening brace. */
void json_text_member(struct growbuf *b, const char *name);

#endif /* VS_JSON_TEXT_H */
