/*
 * json_text.c - JSON text written into a growing buffer (json_text.h).
 */
#include "json_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for n more bytes; false (and t->failed) when there is none. */
static bool reserve(struct json_text *t, size_t n)
{
    if (t->failed)
        return false;
    if (t->cap - t->len >= n)
        return true;
    size_t cap = t->cap ? t->cap : 128;
    while (cap - t->len < n) {
        if (cap > SIZE_MAX / 2) {
            t->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *grown = realloc(t->buf, cap);
    if (grown == NULL) {
        t->failed = true;
        return false;
    }
    t->buf = grown;
    t->cap = cap;
    return true;
}

void json_text_raw(struct json_text *t, const char *s, size_t n)
{
    if (!reserve(t, n))
        return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
}

void json_text_string(struct json_text *t, const char *s, size_t n)
{
    /* At most 6 bytes ("\u00XX") for each byte, and the quotes. */
    if (n > (SIZE_MAX - 2) / 6 || !reserve(t, 6 * n + 2))
        return;
    static const char hex[] = "0123456789ABCDEF";
    char *o = t->buf + t->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *o++ = (char)c;
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    t->len = (size_t)(o - t->buf);
}

void json_text_uint(struct json_text *t, uint64_t v)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
    json_text_raw(t, digits, (size_t)n);
}

void json_text_member(struct json_text *t, const char *name)
{
    if (t->len > 0 && t->buf[t->len - 1] != '{')
        json_text_raw(t, ",", 1);
    json_text_string(t, name, strlen(name));
    json_text_raw(t, ":", 1);
}

char *json_text_take(struct json_text *t, size_t *len)
{
    char *buf = t->failed ? NULL : t->buf;
    *len = t->failed ? 0 : t->len;
    if (t->failed)
        free(t->buf);
    *t = (struct json_text){0};
    return buf;
}

void json_text_free(struct json_text *t)
{
    free(t->buf);
    *t = (struct json_text){0};
}
