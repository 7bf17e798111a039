/*
 * corpus.c - JSON documents for the compression benchmark (corpus.h).
 *
 * Each document is a user record of a web application: ids, names, emails,
 * timestamps, a nested address, tags, counters and a free-text bio whose
 * length brings the document to a size drawn from 200 bytes to 2 KiB. The
 * field names repeat across documents, as in real stores of JSON, and the
 * values are drawn from vocabularies of realistic size, so a compressor
 * finds what it would find in such data: shared structure across records,
 * little repetition inside a short one.
 */
#include "corpus.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "keyspace.h"

static const char *const first_names[] = {"Olivia", "Liam",   "Emma",  "Noah",  "Amelia", "Oliver",
                                          "Sophia", "Elijah", "Mia",   "Lucas", "Ava",    "Mateo",
                                          "Isla",   "Hugo",   "Chloe", "Arjun", "Yuki",   "Fatima",
                                          "Ingrid", "Tomasz", "Aisha", "Diego", "Mei",    "Kwame"};
static const char *const last_names[] = {
    "Smith",  "Garcia", "Kowalski",  "Nguyen", "Müller", "Rossi", "Silva",  "Tanaka",
    "Okafor", "Dubois", "Johansson", "Patel",  "Kim",    "Novak", "Haddad", "Costa"};
static const char *const domains[] = {"example.com", "mail.example.org", "corp.example.net",
                                      "users.example.io"};
static const char *const cities[] = {"Lisbon", "Oslo",   "Nairobi", "Lima",    "Osaka",
                                     "Quebec", "Krakow", "Austin",  "Chennai", "Lyon",
                                     "Bergen", "Porto",  "Seoul",   "Accra",   "Denver"};
static const char *const countries[] = {"PT", "NO", "KE", "PE", "JP", "CA", "PL",
                                        "US", "IN", "FR", "KR", "GH", "DE", "BR"};
static const char *const streets[] = {"Main St",     "Oak Avenue", "Harbour Road", "Rua Augusta",
                                      "Station Way", "Elm Street", "Park Lane",    "Mill Road"};
static const char *const plans[] = {"free", "pro", "team", "enterprise"};
static const char *const locales[] = {"en-US", "en-GB", "fr-FR", "pt-PT", "de-DE", "ja-JP"};
static const char *const tags[] = {"beta",     "newsletter",    "admin",     "mobile",  "desktop",
                                   "verified", "trial",         "vip",       "support", "api",
                                   "billing",  "early-adopter", "churn-risk"};
static const char *const words[] = {
    "building", "tools",       "for",     "teams",  "who",         "ship",     "software",
    "and",      "love",        "coffee",  "hiking", "open",        "source",   "data",
    "the",      "of",          "a",       "in",     "with",        "engineer", "designer",
    "product",  "manager",     "writing", "about",  "distributed", "systems",  "music",
    "travel",   "photography", "at",      "home",   "city",        "weekend",  "projects",
    "learning", "rust",        "python",  "cloud",  "mentor",      "runner",   "reader",
    "gardener", "chess",       "cooking", "is",     "my",          "on"};

#define PICK(arr, r) ((arr)[(r) % (sizeof(arr) / sizeof((arr)[0]))])

struct gen {
    char *buf;
    size_t len;
    uint64_t state;
};

static uint64_t next(struct gen *g)
{
    g->state = keyspace_mix(g->state);
    return g->state;
}

static void put(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct gen *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g->buf + g->len, CORPUS_MAX_DOC - g->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        g->len += (size_t)n < CORPUS_MAX_DOC - g->len ? (size_t)n : CORPUS_MAX_DOC - 1 - g->len;
}

/* buf is written through g.buf (put), which the analyser does not follow. */
size_t corpus_doc(uint64_t i, char *buf) // NOLINT(readability-non-const-parameter)
{
    struct gen g = {.buf = buf, .state = i * 0x9e3779b97f4a7c15ull + 7};
    size_t target = CORPUS_MIN_DOC + (size_t)(next(&g) % (CORPUS_MAX_DOC - CORPUS_MIN_DOC - 64));
    const char *first = PICK(first_names, next(&g)), *last = PICK(last_names, next(&g));
    uint64_t r = next(&g);
    put(&g, "{\"id\":%llu,\"uuid\":\"%08x-%04x-4%03x-%04x-%012llx\",\"username\":\"%s.%s%u\"",
        (unsigned long long)i, (unsigned)(r >> 32), (unsigned)(r >> 16) & 0xffff,
        (unsigned)r & 0xfff, (unsigned)(next(&g) & 0x3fff) | 0x8000,
        (unsigned long long)(next(&g) & 0xffffffffffffull), first, last,
        (unsigned)(next(&g) % 100));
    put(&g, ",\"email\":\"%s.%s@%s\",\"created_at\":\"20%02u-%02u-%02uT%02u:%02u:%02uZ\"", first,
        last, PICK(domains, next(&g)), (unsigned)(18 + next(&g) % 7), (unsigned)(1 + next(&g) % 12),
        (unsigned)(1 + next(&g) % 28), (unsigned)(next(&g) % 24), (unsigned)(next(&g) % 60),
        (unsigned)(next(&g) % 60));
    if (target > 400)
        put(&g,
            ",\"name\":{\"first\":\"%s\",\"last\":\"%s\"},\"plan\":\"%s\",\"active\":%s,"
            "\"score\":%u.%02u,\"locale\":\"%s\"",
            first, last, PICK(plans, next(&g)), next(&g) % 5 ? "true" : "false",
            (unsigned)(next(&g) % 100), (unsigned)(next(&g) % 100), PICK(locales, next(&g)));
    if (target > 600) {
        put(&g,
            ",\"address\":{\"street\":\"%u %s\",\"city\":\"%s\",\"country\":\"%s\","
            "\"postcode\":\"%05u\"},\"login_count\":%u,\"tags\":[",
            (unsigned)(1 + next(&g) % 300), PICK(streets, next(&g)), PICK(cities, next(&g)),
            PICK(countries, next(&g)), (unsigned)(next(&g) % 100000), (unsigned)(next(&g) % 5000));
        unsigned n = (unsigned)(1 + next(&g) % 4);
        for (unsigned k = 0; k < n; k++)
            put(&g, "%s\"%s\"", k ? "," : "", PICK(tags, next(&g)));
        put(&g, "]");
    }
    put(&g, ",\"bio\":\"");
    while (g.len + 2 < target) /* a word may pass the target: at most 2 KiB anyway */
        put(&g, "%s%s", PICK(words, next(&g)), g.len + 12 < target ? " " : "");
    put(&g, "\"}");
    return g.len;
}
