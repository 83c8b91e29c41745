/*
 * test_ratelimit.c — the GCRA limiter (src/auth/ratelimit.h), memory backend.
 *
 * Time is controlled through now_ms except where a test says it uses the
 * real clock. T0 is an arbitrary start far from 0.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "auth/ratelimit.h"

/* One timeout for every suite (see test_engine.c on Criterion's runner). */
TestSuite(ratelimit, .timeout = 60);

#define T0 1700000000000LL

static ratelimit *new_rl(long limit, long window_s)
{
    ratelimit *rl = ratelimit_new_memory(limit, window_s);
    cr_assert_not_null(rl);
    return rl;
}

static ratelimit_result take(ratelimit *rl, const char *key, int64_t now)
{
    ratelimit_result r;
    cr_assert_eq(ratelimit_take(rl, key, 0, now, &r), RATELIMIT_OK);
    return r;
}

static ratelimit_result peek(ratelimit *rl, const char *key, int64_t now)
{
    ratelimit_result r;
    cr_assert_eq(ratelimit_peek(rl, key, 0, now, &r), RATELIMIT_OK);
    return r;
}

/* ---- admission ---- */

Test(ratelimit, exact_admission_at_boundary)
{
    ratelimit *rl = new_rl(60, 60);
    for (int i = 0; i < 60; i++) {
        ratelimit_result r = take(rl, "key:a", T0);
        cr_assert_eq(r.allowed, 1, "request %d", i + 1);
        cr_assert_eq(r.remaining, 59 - i);
        cr_assert_eq(r.limit, 60);
        cr_assert_eq(r.window_s, 60);
    }
    for (int i = 0; i < 5; i++) {
        ratelimit_result r = take(rl, "key:a", T0);
        cr_assert_eq(r.allowed, 0);
        cr_assert_eq(r.remaining, 0);
    }
    /* one emission interval (1000 ms) later, exactly one more */
    cr_assert_eq(take(rl, "key:a", T0 + 999).allowed, 0);
    cr_assert_eq(take(rl, "key:a", T0 + 1000).allowed, 1);
    cr_assert_eq(take(rl, "key:a", T0 + 1000).allowed, 0);
    ratelimit_free(rl);
}

Test(ratelimit, replenishment_one_per_interval)
{
    ratelimit *rl = new_rl(60, 60);
    int admitted = 0;
    /* ten minutes, a request every 100 ms: the burst of 60, then one per second */
    for (int64_t t = 0; t <= 600000; t += 100)
        admitted += take(rl, "key:a", T0 + t).allowed;
    cr_assert_eq(admitted, 60 + 600);

    /* after a full window of silence the whole burst is back */
    int64_t t1 = T0 + 600000 + 60000;
    admitted = 0;
    for (int i = 0; i < 100; i++)
        admitted += take(rl, "key:a", t1).allowed;
    cr_assert_eq(admitted, 60);
    ratelimit_free(rl);
}

Test(ratelimit, exact_with_uneven_interval)
{
    /* 7 per minute: interval 8571.43 ms, which no integer ms represents */
    ratelimit *rl = new_rl(7, 60);
    int admitted = 0;
    for (int i = 0; i < 10; i++)
        admitted += take(rl, "k", T0).allowed;
    cr_assert_eq(admitted, 7);
    cr_assert_eq(take(rl, "k", T0 + 8571).allowed, 0);
    cr_assert_eq(take(rl, "k", T0 + 8572).allowed, 1);

    /* an hour of attempts every 10 ms on a fresh key */
    admitted = 0;
    for (int64_t t = 0; t < 3600000; t += 10)
        admitted += take(rl, "k2", T0 + t).allowed;
    /* the burst of 7, then one at each k * 60000/7 ms for k = 1..419
     * (419 * 8571.43 = 3591428.6 < 3600000 <= 420 * 8571.43) */
    cr_assert_eq(admitted, 7 + 419);
    ratelimit_free(rl);
}

/* ---- the numbers the headers show ---- */

Test(ratelimit, remaining_reset_retry_after)
{
    ratelimit *rl = new_rl(60, 60);
    ratelimit_result r = take(rl, "key:a", T0);
    cr_assert_eq(r.allowed, 1);
    cr_assert_eq(r.remaining, 59);
    cr_assert_eq(r.reset_s, 1);
    cr_assert_eq(r.retry_after_s, 0);

    for (int i = 0; i < 59; i++)
        r = take(rl, "key:a", T0);
    cr_assert_eq(r.allowed, 1);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.reset_s, 60);

    r = take(rl, "key:a", T0);
    cr_assert_eq(r.allowed, 0);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.reset_s, 60);
    cr_assert_eq(r.retry_after_s, 1);

    /* half an interval later: still rejected, retry rounds 0.5 s up to 1 */
    r = take(rl, "key:a", T0 + 500);
    cr_assert_eq(r.allowed, 0);
    cr_assert_eq(r.retry_after_s, 1);
    cr_assert_eq(r.reset_s, 60); /* 59.5 s rounds up */

    /* 2.5 s later: two requests replenished (the peek does not spend them) */
    r = peek(rl, "key:a", T0 + 2500);
    cr_assert_eq(r.allowed, 1);
    cr_assert_eq(r.remaining, 2);
    cr_assert_eq(r.reset_s, 58); /* 57.5 s rounds up */
    cr_assert_eq(r.retry_after_s, 0);
    ratelimit_free(rl);
}

Test(ratelimit, daily_window_values)
{
    ratelimit *rl = new_rl(500, 86400);
    ratelimit_result r = take(rl, "user:u", T0);
    cr_assert_eq(r.remaining, 499);
    cr_assert_eq(r.reset_s, 173); /* 172.8 s per request, rounded up */
    for (int i = 0; i < 499; i++)
        r = take(rl, "user:u", T0);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.reset_s, 86400);
    r = take(rl, "user:u", T0);
    cr_assert_eq(r.allowed, 0);
    cr_assert_eq(r.retry_after_s, 173);
    cr_assert_eq(take(rl, "user:u", T0 + 172799).allowed, 0);
    cr_assert_eq(take(rl, "user:u", T0 + 172800).allowed, 1);
    ratelimit_free(rl);
}

Test(ratelimit, peek_does_not_consume)
{
    ratelimit *rl = new_rl(3, 60);
    ratelimit_result r = peek(rl, "fresh", T0);
    cr_assert_eq(r.allowed, 1);
    cr_assert_eq(r.remaining, 3);
    cr_assert_eq(r.reset_s, 0);
    cr_assert_eq(ratelimit_size(rl), 0); /* a peek stores nothing */
    for (int i = 0; i < 100; i++)
        peek(rl, "k", T0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(take(rl, "k", T0).allowed, 1);
    r = peek(rl, "k", T0);
    cr_assert_eq(r.allowed, 0);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.retry_after_s, 20);
    cr_assert_eq(r.reset_s, 60);
    ratelimit_free(rl);
}

/* ---- configuration ---- */

Test(ratelimit, limit_zero_is_unlimited)
{
    ratelimit *rl = new_rl(0, 60);
    for (int i = 0; i < 10000; i++) {
        ratelimit_result r = take(rl, "key:a", T0);
        cr_assert_eq(r.allowed, 1);
        cr_assert_eq(r.limit, 0);
        cr_assert_eq(r.remaining, 0);
        cr_assert_eq(r.retry_after_s, 0);
    }
    cr_assert_eq(ratelimit_size(rl), 0);
    ratelimit_free(rl);
}

Test(ratelimit, per_call_override)
{
    ratelimit *rl = new_rl(60, 60);
    ratelimit_result r;
    int admitted = 0;
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(ratelimit_take(rl, "key:small", 5, T0, &r), RATELIMIT_OK);
        admitted += r.allowed;
        cr_assert_eq(r.limit, 5);
    }
    cr_assert_eq(admitted, 5);
    cr_assert_eq(r.retry_after_s, 12); /* 60 s / 5 */

    /* the key's debt (5 spent) carries over when its limit goes up to 8 */
    admitted = 0;
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(ratelimit_take(rl, "key:small", 8, T0, &r), RATELIMIT_OK);
        admitted += r.allowed;
    }
    cr_assert_eq(admitted, 3);

    /* ... and a lower limit leaves it full, not in debt beyond a window */
    cr_assert_eq(ratelimit_take(rl, "key:small", 2, T0, &r), RATELIMIT_OK);
    cr_assert_eq(r.allowed, 0);
    cr_assert_eq(r.retry_after_s, 30);

    /* a key with an override is unaffected by others using the default */
    admitted = 0;
    for (int i = 0; i < 100; i++)
        admitted += take(rl, "key:big", T0).allowed;
    cr_assert_eq(admitted, 60);

    /* RATELIMIT_UNLIMITED lifts the limit for one call */
    cr_assert_eq(ratelimit_take(rl, "key:big", RATELIMIT_UNLIMITED, T0, &r), RATELIMIT_OK);
    cr_assert_eq(r.allowed, 1);
    cr_assert_eq(r.limit, 0);
    ratelimit_free(rl);

    /* an override applies even when the limiter's own window is off */
    rl = new_rl(0, 60);
    admitted = 0;
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(ratelimit_take(rl, "key:x", 4, T0, &r), RATELIMIT_OK);
        admitted += r.allowed;
    }
    cr_assert_eq(admitted, 4);
    ratelimit_free(rl);
}

Test(ratelimit, bad_arguments)
{
    ratelimit *rl = new_rl(60, 60);
    ratelimit_result r;
    char longkey[RATELIMIT_KEY_MAX + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';

    cr_assert_eq(ratelimit_take(rl, NULL, 0, T0, &r), RATELIMIT_ERR_ARG);
    cr_assert_eq(ratelimit_take(rl, "", 0, T0, &r), RATELIMIT_ERR_ARG);
    cr_assert_eq(ratelimit_take(rl, longkey, 0, T0, &r), RATELIMIT_ERR_ARG);
    longkey[RATELIMIT_KEY_MAX] = '\0';
    cr_assert_eq(ratelimit_take(rl, longkey, 0, T0, &r), RATELIMIT_OK);
    cr_assert_eq(ratelimit_take(rl, "k", -2, T0, &r), RATELIMIT_ERR_ARG);
    cr_assert_eq(ratelimit_take(rl, "k", RATELIMIT_MAX_LIMIT + 1, T0, &r), RATELIMIT_ERR_ARG);
    cr_assert_eq(ratelimit_take(rl, "k", 0, -5, &r), RATELIMIT_ERR_ARG);
    cr_assert_eq(ratelimit_take(rl, "k", 0, INT64_MAX, &r), RATELIMIT_ERR_ARG);
    cr_assert_eq(ratelimit_take(rl, "k", 0, RATELIMIT_MAX_NOW_MS + 1, &r), RATELIMIT_ERR_ARG);
    cr_assert_eq(r.allowed, 0); /* zeroed on error */
    cr_assert_eq(r.limit, 0);
    /* the far end of the clock with the largest limit still computes */
    cr_assert_eq(ratelimit_take(rl, "k", RATELIMIT_MAX_LIMIT, RATELIMIT_MAX_NOW_MS, &r), RATELIMIT_OK);
    cr_assert_eq(r.allowed, 1);
    cr_assert_eq(r.remaining, RATELIMIT_MAX_LIMIT - 1);
    cr_assert_eq(ratelimit_take(NULL, "k", 0, T0, &r), RATELIMIT_ERR_ARG);
    cr_assert_eq(ratelimit_take(rl, "k", 0, T0, NULL), RATELIMIT_ERR_ARG);
    cr_assert_eq(ratelimit_peek(rl, NULL, 0, T0, &r), RATELIMIT_ERR_ARG);

    cr_assert_null(ratelimit_new_memory(-1, 60));
    cr_assert_null(ratelimit_new_memory(RATELIMIT_MAX_LIMIT + 1, 60));
    cr_assert_null(ratelimit_new_memory(60, 0));
    cr_assert_null(ratelimit_new_memory(60, RATELIMIT_MAX_WINDOW_S + 1));

    /* the largest limit and window still compute exactly */
    ratelimit *big = new_rl(RATELIMIT_MAX_LIMIT, RATELIMIT_MAX_WINDOW_S);
    r = take(big, "k", T0);
    cr_assert_eq(r.allowed, 1);
    cr_assert_eq(r.remaining, RATELIMIT_MAX_LIMIT - 1);
    ratelimit_free(big);

    cr_assert_str_eq(ratelimit_strerror(RATELIMIT_ERR_NOMEM), "out of memory");
    ratelimit_free(NULL);
    ratelimit_free(rl);
}

Test(ratelimit, real_clock)
{
    ratelimit *rl = new_rl(60, 3600); /* replenishes one per minute */
    int admitted = 0;
    for (int i = 0; i < 100; i++)
        admitted += take(rl, "key:a", -1).allowed;
    cr_assert_eq(admitted, 60);
    cr_assert_eq(ratelimit_sweep(rl, -1), 0);
    cr_assert_eq(ratelimit_size(rl), 1);
    ratelimit_free(rl);
}

/* ---- concurrency ---- */

typedef struct hammer {
    ratelimit *rl;
    pthread_barrier_t *start;
    int64_t now; /* -1 = real clock */
    const char *key;
    atomic_int *admitted;
    atomic_int *errors;
} hammer;

static void *hammer_run(void *arg)
{
    hammer *h = arg;
    pthread_barrier_wait(h->start);
    for (int i = 0; i < 20; i++) {
        ratelimit_result r;
        if (ratelimit_take(h->rl, h->key, 0, h->now, &r) != RATELIMIT_OK)
            atomic_fetch_add(h->errors, 1);
        else if (r.allowed)
            atomic_fetch_add(h->admitted, 1);
    }
    return NULL;
}

static int hammer_one_key(ratelimit *rl, int64_t now)
{
    enum { N = 100 };
    pthread_t th[N];
    hammer h[N];
    pthread_barrier_t start;
    atomic_int admitted = 0, errors = 0;

    pthread_barrier_init(&start, NULL, N);
    for (int i = 0; i < N; i++) {
        h[i] = (hammer){rl, &start, now, "key:shared", &admitted, &errors};
        cr_assert_eq(pthread_create(&th[i], NULL, hammer_run, &h[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    cr_assert_eq(errors, 0);
    return admitted;
}

Test(ratelimit, hundred_threads_one_key_fixed_clock)
{
    ratelimit *rl = new_rl(60, 60);
    cr_assert_eq(hammer_one_key(rl, T0), 60);
    ratelimit_free(rl);
}

Test(ratelimit, hundred_threads_one_key_real_clock)
{
    ratelimit *rl = new_rl(60, 86400); /* one per 24 min: the run is far shorter */
    cr_assert_eq(hammer_one_key(rl, -1), 60);
    ratelimit_free(rl);
}

/* ---- keys ---- */

Test(ratelimit, keys_are_independent)
{
    ratelimit *rl = new_rl(3, 60);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(take(rl, "key:a", T0).allowed, 1);
    cr_assert_eq(take(rl, "key:a", T0).allowed, 0);
    ratelimit_result r = take(rl, "key:b", T0);
    cr_assert_eq(r.allowed, 1);
    cr_assert_eq(r.remaining, 2);
    cr_assert_eq(take(rl, "user:a", T0).allowed, 1);
    /* keys that share a prefix, or differ only past a NUL, are distinct / the same */
    cr_assert_eq(take(rl, "key:aa", T0).remaining, 2);
    cr_assert_eq(take(rl, "key:a\0zzz", T0).allowed, 0);
    cr_assert_eq(ratelimit_size(rl), 4);
    ratelimit_free(rl);
}

Test(ratelimit, many_keys_then_eviction_bounds_the_table)
{
    enum { KEYS = 100000 };
    ratelimit *rl = new_rl(10, 1);
    char key[32];
    for (int i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        cr_assert_eq(take(rl, key, T0).allowed, 1);
    }
    cr_assert_eq(ratelimit_size(rl), KEYS);
    /* every key is still inside its window: a sweep keeps them all */
    cr_assert_eq(ratelimit_sweep(rl, T0 + 50), 0);
    cr_assert_eq(take(rl, "key:7", T0 + 50).remaining, 8);

    /* two windows later, inserting new keys sweeps the drained ones away */
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "new:%d", i);
        cr_assert_eq(take(rl, key, T0 + 2000).allowed, 1);
    }
    size_t n = ratelimit_size(rl);
    cr_assert_lt(n, 2000, "table holds %zu keys", n);
    cr_assert_geq(n, 1000);

    /* an explicit sweep later empties it */
    ratelimit_sweep(rl, T0 + 5000);
    cr_assert_eq(ratelimit_size(rl), 0);

    /* an evicted key starts over with a full window */
    cr_assert_eq(take(rl, "key:7", T0 + 5000).remaining, 9);
    ratelimit_free(rl);
}

Test(ratelimit, eviction_keeps_live_state)
{
    ratelimit *rl = new_rl(60, 60);
    char key[32];
    /* 10,000 keys over 100 s, one request each (each drains in 1 s); halfway,
     * key:busy spends its whole window, so it owes 60 s from T0 + 50 s */
    for (int i = 0; i < 10000; i++) {
        int64_t t = T0 + 1000 * (i / 100);
        if (i == 5000)
            for (int j = 0; j < 60; j++)
                cr_assert_eq(take(rl, "key:busy", t).allowed, 1);
        snprintf(key, sizeof key, "other:%d", i);
        take(rl, key, t);
    }
    /* the lazy sweeps (one per window per stripe) dropped the early keys ... */
    size_t n = ratelimit_size(rl);
    cr_assert_lt(n, 5000, "table holds %zu keys", n);
    /* ... but not key:busy: 49 s of its debt replenished 49 requests */
    ratelimit_result r = peek(rl, "key:busy", T0 + 99000);
    cr_assert_eq(r.remaining, 49);
    cr_assert_eq(r.reset_s, 11);
    /* at T0 + 100 s every other key has drained */
    ratelimit_sweep(rl, T0 + 100000);
    cr_assert_eq(ratelimit_size(rl), 1);
    ratelimit_free(rl);
}

/* ---- header fields ---- */

Test(ratelimit, headers_draft10)
{
    ratelimit *minute = new_rl(60, 60), *day = new_rl(500, 86400);
    ratelimit_result res[2];
    char policy[256], state[256];

    cr_assert_eq(ratelimit_take(minute, "key:a", 0, T0, &res[0]), RATELIMIT_OK);
    cr_assert_eq(ratelimit_take(day, "user:u", 0, T0, &res[1]), RATELIMIT_OK);
    ratelimit_window w[2] = {{"minute", &res[0]}, {"day", &res[1]}};
    cr_assert_eq(ratelimit_format_headers(w, 2, policy, sizeof policy, state, sizeof state), RATELIMIT_OK);
    cr_assert_str_eq(policy, "\"minute\";q=60;w=60, \"day\";q=500;w=86400");
    cr_assert_str_eq(state, "\"minute\";r=59;t=1, \"day\";r=499;t=173");

    /* a window that is off is left out; all off gives empty values */
    ratelimit *off = new_rl(0, 60);
    cr_assert_eq(ratelimit_take(off, "key:a", 0, T0, &res[0]), RATELIMIT_OK);
    cr_assert_eq(ratelimit_format_headers(w, 2, policy, sizeof policy, state, sizeof state), RATELIMIT_OK);
    cr_assert_str_eq(policy, "\"day\";q=500;w=86400");
    cr_assert_str_eq(state, "\"day\";r=499;t=173");
    cr_assert_eq(ratelimit_format_headers(w, 1, policy, sizeof policy, state, sizeof state), RATELIMIT_OK);
    cr_assert_str_eq(policy, "");
    cr_assert_str_eq(state, "");

    /* either buffer may be skipped; too small or a bad name is an error */
    cr_assert_eq(ratelimit_format_headers(w, 2, NULL, 0, state, sizeof state), RATELIMIT_OK);
    cr_assert_str_eq(state, "\"day\";r=499;t=173");
    cr_assert_eq(ratelimit_format_headers(w, 2, policy, 10, state, sizeof state), RATELIMIT_ERR_ARG);
    cr_assert_str_eq(policy, "");
    ratelimit_window bad[1] = {{"a\"b", &res[1]}};
    cr_assert_eq(ratelimit_format_headers(bad, 1, policy, sizeof policy, state, sizeof state), RATELIMIT_ERR_ARG);
    ratelimit_window empty[1] = {{"", &res[1]}};
    cr_assert_eq(ratelimit_format_headers(empty, 1, policy, sizeof policy, state, sizeof state), RATELIMIT_ERR_ARG);

    ratelimit_free(minute);
    ratelimit_free(day);
    ratelimit_free(off);
}

Test(ratelimit, tightest_window)
{
    ratelimit_result r[3] = {
        {.allowed = 1, .limit = 60, .window_s = 60, .remaining = 10, .reset_s = 50},
        {.allowed = 1, .limit = 500, .window_s = 86400, .remaining = 3, .reset_s = 86000},
        {.allowed = 1, .limit = 0, .window_s = 60},
    };
    cr_assert_eq(ratelimit_tightest(r, 3), &r[1]);
    r[0].allowed = 0;
    r[0].remaining = 0;
    cr_assert_eq(ratelimit_tightest(r, 3), &r[0]);
    r[1].allowed = 0;
    r[1].remaining = 0;
    cr_assert_eq(ratelimit_tightest(r, 3), &r[1]); /* both rejected: the longer reset */
    cr_assert_null(ratelimit_tightest(&r[2], 1));
    cr_assert_null(ratelimit_tightest(NULL, 0));
}
