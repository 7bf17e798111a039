/*
 * json_text.c - JSON text written into a growing buffer (json_text.h).
 */
#include "json_text.h"

#include <stdio.h>

void json_text_string(struct growbuf *b, const char *s, size_t n)
{
    /* At most 6 bytes ("\u00XX") for each byte, and the quotes. */
    if (n > (SIZE_MAX - 2) / 6) {
        b->failed = true;
        return;
    }
    if (!growbuf_reserve(b, 6 * n + 2))
        return;
    static const char hex[] = "0123456789ABCDEF";
    char *o = b->data + b->len;
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
    b->len = (size_t)(o - b->data);
}

void json_text_uint(struct growbuf *b, uint64_t v)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
    growbuf_append(b, digits, (size_t)n);
}

void json_text_member(struct growbuf *b, const char *name)
{
    if (b->len > 0 && b->data[b->len - 1] != '{')
        growbuf_append(b, ",", 1);
    json_text_string(b, name, strlen(name));
    growbuf_append(b, ":", 1);
}
