/*
 * hex.h - the main header of src/util/: small pure helpers that every layer
 * may include (the kvstore CLI, the server's front ends), because they hold
 * no state and depend on nothing but the C library.
 *
 * Here: the value of one hexadecimal digit, for the parsers of escapes
 * ("\xHH" in the CLI, "%HH" in URLs).
 */
#ifndef KV_UTIL_HEX_H
#define KV_UTIL_HEX_H

/* The value (0 to 15) of the hexadecimal digit c, in either case; -1 when c
 * is not one. */
static inline int util_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif /* KV_UTIL_HEX_H */
