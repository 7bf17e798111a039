/*
 * fuzz_resp_parse.c - the Redis protocol's parser (src/resp/proto.h).
 *
 * The input is parsed twice: whole, and fed in pieces whose sizes the input's
 * first byte picks. Besides not crashing: every argument lies inside what was
 * received, argument counts and bulk lengths stay within the limits, and the
 * two runs agree on every command (its arguments, byte for byte) and on how
 * the input ends (a command cut short, or the same error), as a server must
 * whatever way the network cuts the bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "proto.h"

#define MAX_ARGS 32
#define MAX_BULK 4096

/* What one run saw: the commands' arguments, flattened with their lengths,
 * and how it ended. */
struct trace {
    unsigned char *bytes;
    size_t len, cap;
    int end; /* the last resp_parse result */
    char error[128];
};

static void trace_add(struct trace *t, const void *data, size_t n)
{
    if (t->len + n > t->cap) {
        size_t cap = (t->len + n) * 2 + 64;
        unsigned char *grown = realloc(t->bytes, cap);
        FUZZ_CHECK(grown != NULL);
        t->bytes = grown;
        t->cap = cap;
    }
    memcpy(t->bytes + t->len, data, n);
    t->len += n;
}

static void run(const uint8_t *data, size_t size, size_t step, struct trace *t)
{
    struct resp_parser p;
    resp_parser_init(&p, MAX_ARGS, MAX_BULK);
    char *buf = malloc(size + 1);
    FUZZ_CHECK(buf != NULL);
    size_t have = 0;
    enum resp_parse_result r = RESP_PARSE_MORE;
    memset(t, 0, sizeof(*t));
    while (have < size && r != RESP_PARSE_ERROR) {
        size_t n = size - have < step ? size - have : step;
        memcpy(buf + have, data + have, n);
        have += n;
        for (;;) {
            size_t need = 0;
            r = resp_parse(&p, buf, have, &need);
            if (r != RESP_PARSE_COMMAND)
                break;
            FUZZ_CHECK(p.argc >= 1 && p.argc <= MAX_ARGS);
            trace_add(t, &p.argc, sizeof(p.argc));
            for (size_t i = 0; i < p.argc; i++) {
                FUZZ_CHECK(p.arg_len[i] <= MAX_BULK || p.inline_cmd);
                FUZZ_CHECK(p.arg_off[i] <= have && p.arg_len[i] <= have - p.arg_off[i]);
                trace_add(t, &p.arg_len[i], sizeof(p.arg_len[i]));
                trace_add(t, buf + p.arg_off[i], p.arg_len[i]);
            }
            resp_parser_next(&p);
            FUZZ_CHECK(resp_parser_keep_from(&p) <= have);
        }
    }
    t->end = r;
    if (r == RESP_PARSE_ERROR)
        memcpy(t->error, p.error, sizeof(t->error));
    free(buf);
    resp_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 17) + 1;
    data++;
    size--;
    struct trace whole, pieces;
    run(data, size, size > 0 ? size : 1, &whole);
    run(data, size, step, &pieces);
    FUZZ_CHECK(whole.end == pieces.end);
    FUZZ_CHECK(whole.len == pieces.len);
    FUZZ_CHECK(whole.len == 0 || memcmp(whole.bytes, pieces.bytes, whole.len) == 0);
    FUZZ_CHECK(strcmp(whole.error, pieces.error) == 0);
    free(whole.bytes);
    free(pieces.bytes);
    return 0;
}
