/*
 * ratelimit.h — request rate limits: GCRA behind a small backend interface.
 *
 * A limiter admits `limit` requests per `window_s` seconds per key, using
 * the generic cell rate algorithm (GCRA): each key keeps one number, its
 * theoretical arrival time (TAT). The burst equals the limit, so a fresh key
 * may spend its whole window at once; after that one request is replenished
 * every window_s/limit seconds. Check-and-consume is atomic per key, so
 * exactly `limit` requests are admitted per window however many threads
 * call at once. Arithmetic is exact (integers scaled by the limit): 7 per
 * minute admits 7, not 6 or 8, whatever the rounding of 60/7.
 *
 * Spec 003 uses two limiters: 60 per minute per API key ("key:<id>") and
 * 500 per day per user ("user:<id>"). A limit of 0 turns a window off.
 *
 * Backends: ratelimit_new_memory() keeps the TATs in this process (a hash
 * table under 64 striped mutexes; entries whose TAT has passed are evicted
 * lazily on insert, so memory follows the keys active in the last window).
 * A shared backend for several nodes (Redis) is another constructor behind
 * the same functions; callers never see which one they hold.
 *
 * Errors: every function that can fail returns a RATELIMIT_* code; a
 * rejected request is not an error (RATELIMIT_OK with out->allowed == 0).
 * Thread safety: one limiter may be used from any number of threads.
 */
#ifndef PROMPTD_AUTH_RATELIMIT_H
#define PROMPTD_AUTH_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit; /* opaque; thread-safe */

enum ratelimit_rc {
    RATELIMIT_OK = 0,
    RATELIMIT_ERR_ARG = 1,    /* NULL/empty key, key too long, limit or time out of range */
    RATELIMIT_ERR_NOMEM = 2,  /* allocation failed; nothing was consumed */
    RATELIMIT_ERR_BACKEND = 3 /* a shared backend could not be reached */
};

#define RATELIMIT_MAX_LIMIT 1000000L         /* largest limit (per window) accepted */
#define RATELIMIT_MAX_WINDOW_S 31622400L     /* longest window: 366 days */
#define RATELIMIT_KEY_MAX 512                /* longest key, bytes */
#define RATELIMIT_MAX_NOW_MS 4611686018427LL /* (2^63 / 2) / RATELIMIT_MAX_LIMIT: Unix ms up to 2116 */
#define RATELIMIT_UNLIMITED (-1L)            /* limit_override: no limit for this call */

typedef struct ratelimit_result {
    int allowed;        /* 1 admitted, 0 rejected (take); 1 if a take would be admitted (peek) */
    long limit;         /* the window's limit; 0 = window off (then every other field is 0
                           except allowed = 1 and window_s: send no headers for it) */
    long window_s;      /* the window, seconds */
    long remaining;     /* requests left in the window after this one (take), now (peek); >= 0 */
    long reset_s;       /* seconds until the window is fully replenished (X-RateLimit-Reset
                           semantics: a delta, rounded up); 0 when nothing is spent */
    long retry_after_s; /* when not allowed: seconds until one request would be admitted
                           (>= 1, rounded up); 0 when allowed */
} ratelimit_result;

/*
 * A limiter of `limit` requests per `window_s` seconds per key, state kept in
 * this process. limit 0 = unlimited (every take is allowed, nothing stored).
 * Returns NULL if limit is outside 0..RATELIMIT_MAX_LIMIT, window_s outside
 * 1..RATELIMIT_MAX_WINDOW_S, or memory is short. Free with ratelimit_free().
 */
ratelimit *ratelimit_new_memory(long limit, long window_s);

/*
 * Check-and-consume one request for `key` (any string up to RATELIMIT_KEY_MAX
 * bytes, e.g. "key:<id>" or "user:<id>"). limit_override > 0 replaces the
 * limiter's limit for this call (a per-key setting; it applies even when the
 * limiter's own limit is 0), RATELIMIT_UNLIMITED lifts it, 0 uses the
 * limiter's. A key keeps its debt when its limit changes.
 * now_ms is the time in milliseconds (tests control the clock with it); -1
 * uses the limiter's own clock, read inside the atomic check so concurrent
 * callers see time in the order they are served (the memory backend:
 * CLOCK_MONOTONIC, so a wall-clock step can neither open nor close a
 * window). Use one kind of clock per limiter; given times should not go
 * backwards and must lie in 0..RATELIMIT_MAX_NOW_MS (RATELIMIT_ERR_ARG
 * otherwise). Fills *out on RATELIMIT_OK; zeroes it on error.
 */
int ratelimit_take(ratelimit *rl, const char *key, long limit_override, int64_t now_ms, ratelimit_result *out);

/* As ratelimit_take without consuming: for the headers of responses that must not count. */
int ratelimit_peek(ratelimit *rl, const char *key, long limit_override, int64_t now_ms, ratelimit_result *out);

/*
 * Evict every key whose window is fully replenished at now_ms (-1 = the
 * limiter's clock). Never needed for correctness: inserts already sweep
 * lazily. Returns the number of keys evicted (0 for backends that expire
 * keys themselves).
 */
size_t ratelimit_sweep(ratelimit *rl, int64_t now_ms);

/* Keys currently held in this process (0 for shared backends). */
size_t ratelimit_size(ratelimit *rl);

/* Free the limiter and all its state. NULL is a no-op. */
void ratelimit_free(ratelimit *rl);

/* Human-readable text for a RATELIMIT_* code (static storage). */
const char *ratelimit_strerror(int rc);

/*
 * Header fields of draft-ietf-httpapi-ratelimit-headers-10 (September 2025),
 * the structured-field form, one list member per window:
 *
 *   RateLimit-Policy: "minute";q=60;w=60, "day";q=500;w=86400
 *   RateLimit: "minute";r=59;t=1, "day";r=499;t=173
 *
 * q = limit, w = window (s), r = remaining, t = reset (s, until the window is
 * fully replenished, as ratelimit_result.reset_s). Windows whose result has
 * limit 0 (off) are left out. Names must be 1..32 characters of
 * [A-Za-z0-9_.-] (they are written as sf-strings). Writes NUL-terminated
 * values into policy and state (either may be NULL to skip it); a value is
 * "" when every window is off (send no such header then). Returns
 * RATELIMIT_ERR_ARG for a bad name or a buffer too small (256 bytes hold
 * any two windows).
 */
typedef struct ratelimit_window {
    const char *name;               /* policy name, e.g. "minute", "day" */
    const ratelimit_result *result; /* from ratelimit_take/ratelimit_peek */
} ratelimit_window;

int ratelimit_format_headers(const ratelimit_window *w, size_t n, char *policy, size_t policy_cap, char *state,
                             size_t state_cap);

/*
 * The window that binds hardest among n results (the classic
 * X-RateLimit-Limit/-Remaining/-Reset triple describes one window): a
 * rejected one first, then the fewest remaining, then the longest reset.
 * Windows with limit 0 are skipped; NULL if every window is off.
 */
const ratelimit_result *ratelimit_tightest(const ratelimit_result *r, size_t n);

#endif
