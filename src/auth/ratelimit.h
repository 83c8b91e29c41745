/*
 * ratelimit.h — exact request rate limits (a sliding log) behind a small
 * backend interface.
 *
 * The contract: a limiter of `limit` per `window_s` seconds admits, per key,
 * at most `limit` requests in ANY window of window_s seconds (any half-open
 * interval [s, s + window_s*1000) of millisecond times), however many
 * threads call at once. Nothing is replenished gradually: a key that spent
 * its limit at t0 is refused until t0 + window_s exactly.
 *
 * How: each key keeps the log of its admissions still inside the window
 * (times in ms, runs of equal times merged). A request at t is admitted iff
 * fewer than `limit` logged admissions lie in (t - window, t]; admissions
 * at or before t - window have left the window and are dropped. The check
 * and the append are one atomic step per key. Memory per key is at most one
 * entry per distinct admission time in the window (a burst in one
 * millisecond is one entry), and a key whose log is empty is freed.
 *
 * What the results say (all in whole seconds, rounded up, so a client that
 * waits that long is admitted):
 *   remaining      limit - admissions in the window (after this one, for a take);
 *   retry_after_s  when refused: until the next request will be admitted;
 *   reset_s        until the window next frees a slot: when remaining is 0,
 *                  until the next request will be admitted (= retry_after_s
 *                  of a refused one); else until the oldest logged admission
 *                  leaves the window; 0 when the window holds none.
 *
 * Spec 003 uses two limiters: 60 per minute per API key ("key:<id>") and
 * 500 per day per user ("user:<id>"); promptd adds a brake per client
 * address for requests that do not authenticate. A limit of 0 turns a
 * window off.
 *
 * Backends:
 *  - ratelimit_new_memory(): the logs live in this process (a hash table
 *    under 64 striped mutexes), timed by CLOCK_MONOTONIC, so a wall-clock
 *    step can neither open nor close a window. Gone on exit.
 *  - ratelimit_new_durable() (ratelimit_store.c): the same logs, timed by the
 *    wall clock, and every admission is also written to the store (store.h,
 *    table rate_hits) by a background thread in group commits; on start the
 *    admissions still inside the window are loaded back, so a restart (or
 *    a crash) does not give a key a fresh window. No caller waits on the
 *    database. What a crash can lose is stated there.
 * A shared backend for several nodes (Redis: a sorted set per key, trimmed
 * and counted in one Lua script) is another constructor behind the same
 * functions; callers never see which one they hold.
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
#define RATELIMIT_MAX_NOW_MS 4611686018427LL /* Unix ms up to 2116: far from any overflow */
#define RATELIMIT_UNLIMITED (-1L)            /* limit_override: no limit for this call */

typedef struct ratelimit_result {
    int allowed;        /* 1 admitted, 0 rejected (take); 1 if a take would be admitted (peek) */
    long limit;         /* the window's limit; 0 = window off (then every other field is 0
                           except allowed = 1 and window_s: send no headers for it) */
    long window_s;      /* the window, seconds */
    long remaining;     /* requests left in the window after this one (take), now (peek); >= 0 */
    long reset_s;       /* seconds until the window next frees a slot (see the top: a delta,
                           rounded up; with remaining 0, until the next admission); 0 when
                           the window holds no admission */
    long retry_after_s; /* when not allowed: seconds until the next request will be admitted
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
 * As ratelimit_new_memory, and durable: admissions are also written to
 * `store` under `scope` (1..32 characters naming this limiter's table rows,
 * e.g. "day"), and the admissions of the last window_s seconds found there
 * are loaded first (a blocking read: call it at start-up, not on a request).
 * Times are wall-clock milliseconds (they must mean the same after a
 * restart). The store must outlive the limiter; ratelimit_free() writes what
 * is still queued before it returns. NULL with a message in err on failure.
 */
struct store;
ratelimit *ratelimit_new_durable(long limit, long window_s, struct store *store, const char *scope, char *err,
                                 size_t errlen);

/*
 * Check-and-consume one request for `key` (any string up to RATELIMIT_KEY_MAX
 * bytes, e.g. "key:<id>" or "user:<id>"). limit_override > 0 replaces the
 * limiter's limit for this call (a per-key setting; it applies even when the
 * limiter's own limit is 0), RATELIMIT_UNLIMITED lifts it, 0 uses the
 * limiter's. A key keeps its logged admissions when its limit changes: a
 * lower limit refuses it until enough of them have left the window.
 * now_ms is the time in milliseconds (tests control the clock with it); -1
 * uses the limiter's own clock, read inside the atomic check so concurrent
 * callers see time in the order they are served (the memory backend:
 * CLOCK_MONOTONIC, so a wall-clock step can neither open nor close a
 * window; the durable backend: the wall clock). Use one kind of clock per
 * limiter; given times must lie in 0..RATELIMIT_MAX_NOW_MS (RATELIMIT_ERR_ARG
 * otherwise), and one earlier than the key's latest admission counts as
 * that admission's time (the log stays ordered; a clock that steps back
 * only makes the window last longer). Fills *out on RATELIMIT_OK; zeroes it on error.
 */
int ratelimit_take(ratelimit *rl, const char *key, long limit_override, int64_t now_ms, ratelimit_result *out);

/* As ratelimit_take without consuming: for the headers of responses that must not count. */
int ratelimit_peek(ratelimit *rl, const char *key, long limit_override, int64_t now_ms, ratelimit_result *out);

/*
 * Evict every key whose log is empty at now_ms (-1 = the limiter's clock). Never needed for correctness: inserts already sweep
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
 *   RateLimit: "minute";r=59;t=60, "day";r=499;t=86400
 *
 * q = limit, w = window (s), r = remaining, t = reset (s, as
 * ratelimit_result.reset_s). Windows whose result has
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
