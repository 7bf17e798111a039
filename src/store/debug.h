/*
 * debug.h - checks of the engine's invariants, in the manner of SQLite's
 * assert(), ALWAYS() and NEVER().
 *
 * In debug builds (NDEBUG undefined: CMAKE_BUILD_TYPE=Debug, which the
 * sanitizer builds of `make test-sanitize` use) a check that fails reports
 * the condition, file and line on stderr and aborts: an invariant that does
 * not hold is a bug of the engine, never a consequence of its input. In
 * release builds they cost nothing: KV_ASSERT compiles to nothing, and
 * ALWAYS(x) and NEVER(x) to the plain condition, so that the code written
 * after them still recovers (with an error code) from what "cannot happen".
 *
 *   KV_ASSERT(x)  x holds; nothing to recover (typically: "caller holds ...")
 *   ALWAYS(x)     x is true; `if (!ALWAYS(x)) return KV_EIO;` recovers
 *   NEVER(x)      x is false; `if (NEVER(x)) return KV_EIO;` recovers
 *
 * KV_DEBUG is defined in debug builds, for the bookkeeping the checks need
 * (which thread holds which lock) and that release builds go without.
 */
#ifndef KV_STORE_DEBUG_H
#define KV_STORE_DEBUG_H

#ifndef NDEBUG
#define KV_DEBUG 1
#endif

#ifdef KV_DEBUG
_Noreturn void kv__assert_fail(const char *cond, const char *file, int line);
#define KV_ASSERT(x) ((x) ? (void)0 : kv__assert_fail(#x, __FILE__, __LINE__))
#define ALWAYS(x)    ((x) ? 1 : (kv__assert_fail(#x, __FILE__, __LINE__), 0))
#define NEVER(x)     ((x) ? (kv__assert_fail(#x, __FILE__, __LINE__), 1) : 0)
#else
#define KV_ASSERT(x) ((void)0)
#define ALWAYS(x)    (x)
#define NEVER(x)     (x)
#endif

#endif /* KV_STORE_DEBUG_H */
