/*
 * test_ratelimit.c — the exact sliding-log limiter (src/auth/ratelimit.h):
 * the memory backend, and the durable backend over a real SQLite store.
 *
 * Time is controlled through now_ms except where a test says it uses the
 * real clock. T0 is an arbitrary start far from 0.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/ratelimit.h"
#include "store/store.h"
#include "support/harness.h"
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

Test(ratelimit, burst_of_70_admits_60_then_nothing_until_a_window_after_the_first)
{
    ratelimit *rl = new_rl(60, 60);
    int admitted = 0;
    for (int i = 0; i < 70; i++) {
        ratelimit_result r = take(rl, "key:a", T0 + i); /* 70 requests over 70 ms */
        admitted += r.allowed;
        cr_assert_eq(r.allowed, i < 60, "request %d", i + 1);
        cr_assert_eq(r.remaining, i < 60 ? 59 - i : 0, "request %d: remaining %ld", i + 1, r.remaining);
        cr_assert_eq(r.limit, 60);
        cr_assert_eq(r.window_s, 60);
    }
    cr_assert_eq(admitted, 60);
    /* nothing at all until 60 s after the first admission (T0) */
    for (int64_t t = T0 + 100; t < T0 + 60000; t += 250)
        cr_assert_eq(take(rl, "key:a", t).allowed, 0, "admitted at T0 + %lld ms", (long long)(t - T0));
    cr_assert_eq(take(rl, "key:a", T0 + 59999).allowed, 0);
    /* then one slot per admission leaving the window: the first at T0, the next at T0 + 1 ms ... */
    cr_assert_eq(take(rl, "key:a", T0 + 60000).allowed, 1);
    cr_assert_eq(take(rl, "key:a", T0 + 60000).allowed, 0);
    cr_assert_eq(take(rl, "key:a", T0 + 60001).allowed, 1);
    cr_assert_eq(take(rl, "key:a", T0 + 60001).allowed, 0);
    /* ... and all 60 once the whole burst has left (T0 + 59 + 60000) */
    admitted = 0;
    for (int i = 0; i < 100; i++)
        admitted += take(rl, "key:a", T0 + 60059).allowed;
    cr_assert_eq(admitted, 60 - 2);
    ratelimit_free(rl);
}

/* Admission times must hold at most limit in ANY window: check every window
 * that starts at an admission (the fullest windows start at one). */
static void assert_no_window_over(const int64_t *times, int n, long limit, int64_t window_ms)
{
    for (int i = 0, j = 0; i < n; i++) {
        while (j < n && times[j] < times[i] + window_ms)
            j++;
        cr_assert_leq(j - i, limit, "%d admissions in [%lld, %lld + %lld ms)", j - i, (long long)times[i],
                      (long long)times[i], (long long)window_ms);
    }
}

Test(ratelimit, no_window_ever_holds_more_than_the_limit)
{
    /* an hour of random arrivals, bursty and sparse in turn, on a 7 per 10 s key */
    enum { MAXN = 100000 };
    static int64_t times[MAXN], refused[MAXN];
    ratelimit *rl = new_rl(7, 10);
    unsigned seed = 12345;
    int n = 0, nr = 0;
    for (int64_t t = T0; t < T0 + 3600000 && n < MAXN && nr < MAXN;) {
        seed = seed * 1103515245u + 12345u;
        t += (seed >> 16) % ((seed >> 8) % 4 ? 50 : 5000); /* mostly dense, now and then a gap */
        if (take(rl, "k", t).allowed)
            times[n++] = t;
        else
            refused[nr++] = t;
    }
    cr_assert_gt(n, 100);
    cr_assert_gt(nr, 100);
    assert_no_window_over(times, n, 7, 10000);
    /* and the other way: nothing was refused that could have been admitted
     * (the 10 s ending at each refusal already held 7 admissions) */
    for (int k = 0, i = 0; k < nr; k++) {
        while (i < n && times[i] <= refused[k] - 10000)
            i++;
        int in = 0;
        for (int j = i; j < n && times[j] <= refused[k]; j++)
            in++;
        cr_assert_eq(in, 7, "refused at %lld with only %d admissions in the window", (long long)refused[k], in);
    }
    ratelimit_free(rl);
}

Test(ratelimit, rolling_window_edges)
{
    /* one request a second for a minute, then the window rolls admission by admission */
    ratelimit *rl = new_rl(60, 60);
    for (int i = 0; i < 60; i++)
        cr_assert_eq(take(rl, "k", T0 + 1000 * i).allowed, 1, "second %d", i);
    ratelimit_result r = take(rl, "k", T0 + 59500);
    cr_assert_eq(r.allowed, 0);
    cr_assert_eq(r.retry_after_s, 1); /* the admission of T0 leaves at T0 + 60 s: 0.5 s, rounded up */
    cr_assert_eq(take(rl, "k", T0 + 59999).allowed, 0);
    cr_assert_eq(take(rl, "k", T0 + 60000).allowed, 1);
    cr_assert_eq(take(rl, "k", T0 + 60999).allowed, 0);
    cr_assert_eq(take(rl, "k", T0 + 61000).allowed, 1);
    /* a gap of a full window empties the log */
    r = peek(rl, "k", T0 + 61000 + 60000);
    cr_assert_eq(r.remaining, 60);
    cr_assert_eq(r.reset_s, 0);
    ratelimit_free(rl);
}

/* ---- the numbers the headers show ---- */

Test(ratelimit, remaining_reset_retry_after)
{
    ratelimit *rl = new_rl(60, 60);
    ratelimit_result r = take(rl, "key:a", T0);
    cr_assert_eq(r.allowed, 1);
    cr_assert_eq(r.remaining, 59);
    cr_assert_eq(r.reset_s, 60); /* the admission of T0 leaves the window in 60 s */
    cr_assert_eq(r.retry_after_s, 0);

    r = take(rl, "key:a", T0 + 10000);
    cr_assert_eq(r.remaining, 58);
    cr_assert_eq(r.reset_s, 50); /* still the oldest one's */
    for (int i = 0; i < 57; i++)
        r = take(rl, "key:a", T0 + 20000);
    cr_assert_eq(r.allowed, 1);
    cr_assert_eq(r.remaining, 1);
    r = take(rl, "key:a", T0 + 20000);
    cr_assert_eq(r.allowed, 1);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.reset_s, 40); /* full: the next admission, when T0's leaves */

    r = take(rl, "key:a", T0 + 20000);
    cr_assert_eq(r.allowed, 0);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.retry_after_s, 40);
    cr_assert_eq(r.reset_s, 40);

    /* 0.5 s before: retry rounds up to 1 */
    r = take(rl, "key:a", T0 + 59500);
    cr_assert_eq(r.allowed, 0);
    cr_assert_eq(r.retry_after_s, 1);
    /* the Retry-After given is honest: waiting it out is admitted */
    cr_assert_eq(take(rl, "key:a", T0 + 59500 + 1000).allowed, 1);
    /* now T0 + 10 s is the oldest that must leave: 9.5 s */
    r = take(rl, "key:a", T0 + 60500);
    cr_assert_eq(r.allowed, 0);
    cr_assert_eq(r.retry_after_s, 10);
    ratelimit_free(rl);
}

Test(ratelimit, daily_window_values)
{
    ratelimit *rl = new_rl(500, 86400);
    ratelimit_result r = take(rl, "user:u", T0);
    cr_assert_eq(r.remaining, 499);
    cr_assert_eq(r.reset_s, 86400);
    for (int i = 0; i < 499; i++)
        r = take(rl, "user:u", T0 + 1000);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.reset_s, 86399);
    r = take(rl, "user:u", T0 + 3600000);
    cr_assert_eq(r.allowed, 0);
    cr_assert_eq(r.retry_after_s, 82800); /* 23 h: the first request leaves at T0 + 24 h */
    cr_assert_eq(take(rl, "user:u", T0 + 86399999).allowed, 0);
    cr_assert_eq(take(rl, "user:u", T0 + 86400000).allowed, 1);
    cr_assert_eq(take(rl, "user:u", T0 + 86400999).allowed, 0); /* the other 499 leave at T0 + 1 s + 24 h */
    cr_assert_eq(take(rl, "user:u", T0 + 86401000).allowed, 1);
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
    r = peek(rl, "k", T0 + 40000);
    cr_assert_eq(r.allowed, 0);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.retry_after_s, 20);
    cr_assert_eq(r.reset_s, 20);
    ratelimit_free(rl);
}

Test(ratelimit, clock_going_back_counts_as_the_last_time)
{
    ratelimit *rl = new_rl(2, 60);
    cr_assert_eq(take(rl, "k", T0 + 5000).allowed, 1);
    cr_assert_eq(take(rl, "k", T0).allowed, 1); /* logged at T0 + 5 s */
    cr_assert_eq(take(rl, "k", T0 + 60000).allowed, 0);
    cr_assert_eq(take(rl, "k", T0 + 64999).allowed, 0);
    cr_assert_eq(take(rl, "k", T0 + 65000).allowed, 1);
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
    cr_assert_eq(r.retry_after_s, 60); /* nothing until the burst leaves the window */

    /* the key's 5 admissions still count when its limit goes up to 8 */
    admitted = 0;
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(ratelimit_take(rl, "key:small", 8, T0, &r), RATELIMIT_OK);
        admitted += r.allowed;
    }
    cr_assert_eq(admitted, 3);

    /* ... and under a lower limit it waits for enough of them to leave */
    cr_assert_eq(ratelimit_take(rl, "key:small", 2, T0 + 1000, &r), RATELIMIT_OK);
    cr_assert_eq(r.allowed, 0);
    cr_assert_eq(r.retry_after_s, 59);
    cr_assert_eq(ratelimit_take(rl, "key:small", 2, T0 + 60000, &r), RATELIMIT_OK);
    cr_assert_eq(r.allowed, 1);
    cr_assert_eq(r.remaining, 1);

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
    ratelimit *rl = new_rl(60, 10);
    char key[32];
    /* 10,000 keys over 100 s, one request each (each log empties 10 s later);
     * at 95 s, key:busy spends its whole window */
    for (int i = 0; i < 10000; i++) {
        int64_t t = T0 + 1000 * (i / 100);
        if (i == 9500)
            for (int j = 0; j < 60; j++)
                cr_assert_eq(take(rl, "key:busy", t).allowed, 1);
        snprintf(key, sizeof key, "other:%d", i);
        take(rl, key, t);
    }
    /* the lazy sweeps (one per window per stripe) dropped the early keys ... */
    size_t n = ratelimit_size(rl);
    cr_assert_lt(n, 4000, "table holds %zu keys", n);
    /* ... but not key:busy, refused until its burst leaves at 105 s */
    ratelimit_result r = peek(rl, "key:busy", T0 + 99000);
    cr_assert_eq(r.remaining, 0);
    cr_assert_eq(r.reset_s, 6);
    /* at 100 s the keys of 91..99 s and key:busy are left */
    ratelimit_sweep(rl, T0 + 100000);
    cr_assert_eq(ratelimit_size(rl), 901);
    ratelimit_sweep(rl, T0 + 109000);
    cr_assert_eq(ratelimit_size(rl), 0);
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
    cr_assert_str_eq(state, "\"minute\";r=59;t=60, \"day\";r=499;t=86400");

    /* a window that is off is left out; all off gives empty values */
    ratelimit *off = new_rl(0, 60);
    cr_assert_eq(ratelimit_take(off, "key:a", 0, T0, &res[0]), RATELIMIT_OK);
    cr_assert_eq(ratelimit_format_headers(w, 2, policy, sizeof policy, state, sizeof state), RATELIMIT_OK);
    cr_assert_str_eq(policy, "\"day\";q=500;w=86400");
    cr_assert_str_eq(state, "\"day\";r=499;t=86400");
    cr_assert_eq(ratelimit_format_headers(w, 1, policy, sizeof policy, state, sizeof state), RATELIMIT_OK);
    cr_assert_str_eq(policy, "");
    cr_assert_str_eq(state, "");

    /* either buffer may be skipped; too small or a bad name is an error */
    cr_assert_eq(ratelimit_format_headers(w, 2, NULL, 0, state, sizeof state), RATELIMIT_OK);
    cr_assert_str_eq(state, "\"day\";r=499;t=86400");
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

/* ---- the durable backend ---- */

static ratelimit *durable(store_t *st, long limit, long window_s, const char *scope)
{
    char err[256] = "";
    ratelimit *rl = ratelimit_new_durable(limit, window_s, st, scope, err, sizeof err);
    cr_assert_not_null(rl, "ratelimit_new_durable: %s", err);
    return rl;
}

Test(ratelimit, durable_windows_survive_a_restart)
{
    char dir[256], path[300], err[256];
    cr_assert_eq(pd_mkdtemp(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/rl.db", dir);
    store_t *st = NULL;
    cr_assert_eq(store_open(path, &st, err, sizeof err), STORE_OK, "%s", err);

    ratelimit *day = durable(st, 5, 86400, "day"), *sec = durable(st, 5, 1, "second");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(take(day, "user:a", -1).remaining, 4 - i);
    cr_assert_eq(take(day, "user:b", -1).remaining, 4);
    cr_assert_eq(take(sec, "user:a", -1).remaining, 4);
    ratelimit_free(day); /* writes what is queued */
    ratelimit_free(sec);

    /* a new limiter on the same store goes on where the old one stopped */
    day = durable(st, 5, 86400, "day");
    cr_assert_eq(ratelimit_size(day), 2);
    cr_assert_eq(take(day, "user:a", -1).remaining, 1);
    ratelimit_result r = take(day, "user:a", -1);
    cr_assert_eq(r.allowed, 1);
    cr_assert_eq(r.remaining, 0);
    r = take(day, "user:a", -1);
    cr_assert_eq(r.allowed, 0);
    /* loaded times are rounded up to the second: a slot may come back up to 1 s late, never early */
    cr_assert(r.retry_after_s > 86000 && r.retry_after_s <= 86401, "retry after %ld", r.retry_after_s);
    cr_assert_eq(peek(day, "user:b", -1).remaining, 4);
    /* scopes are separate, and a window that has passed is not loaded */
    usleep(2100 * 1000); /* the 1 s window, plus the rounding up of journaled times */
    sec = durable(st, 5, 1, "second");
    cr_assert_eq(ratelimit_size(sec), 0);
    cr_assert_eq(take(sec, "user:a", -1).remaining, 4);
    ratelimit_free(sec);
    ratelimit_free(day);

    /* many admissions from many threads are all written */
    day = durable(st, 1000, 86400, "day");
    cr_assert_eq(hammer_one_key(day, -1), 1000); /* 100 threads x 20 tries */
    ratelimit_free(day);
    day = durable(st, 1000, 86400, "day");
    cr_assert_eq(peek(day, "key:shared", -1).remaining, 0);
    ratelimit_free(day);

    /* bad arguments */
    cr_assert_null(ratelimit_new_durable(5, 60, NULL, "day", err, sizeof err));
    cr_assert_null(ratelimit_new_durable(5, 60, st, "", err, sizeof err));
    cr_assert_null(ratelimit_new_durable(-1, 60, st, "day", err, sizeof err));
    store_close(st);
    pd_rmrf(dir);
}
