/*
 * test_ratelimit_http.c — rate limits over real HTTP (issue 6, spec 003 §5).
 *
 *  - a burst: 100 concurrent clients on ONE key (60 per minute) send 160
 *    requests as fast as they can, over the three API surfaces: exactly 60
 *    are admitted, the rest answer 429 in the surface's error envelope with
 *    Retry-After; every response carries X-RateLimit-Limit/-Remaining/-Reset,
 *    RateLimit-Policy and RateLimit, and the admitted responses' Remaining
 *    values are exactly {59..0}, each once;
 *  - the per-user day window is shared by every key of the user;
 *  - a key's own limit (`keys create --rate-limit N`, POST /api/v1/keys
 *    rate_limit_per_minute) replaces the default for that key only, 0 = none;
 *  - a limit of 0 turns its window off: no header fields for it;
 *  - the classic X-RateLimit-* triple follows the tightest window;
 *  - failed authentication (401) is not counted;
 *  - different keys have independent minute windows.
 *
 * The limiter is GCRA with burst = limit: after a burst, one request is
 * replenished every window/limit seconds (1 s at 60 per minute). The burst
 * test therefore needs all its requests answered within a second of the
 * first; a burst that took longer proves nothing and is tried again on a
 * fresh key (at most 3 times; the test fails if none fits).
 *
 * Each test starts its own promptd with the limits it needs (test servers
 * run with both limits off unless extra_env sets them).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "support/harness.h"

static pd_server S;

static void teardown(void) { pd_stop(&S); }

TestSuite(ratelimit_http, .fini = teardown, .timeout = 60);

/* Stop promptd with SIGTERM and require a clean exit (0): a crash on the way
 * out, or a sanitizer report in the SAN=1 build, fails the test here. */
static void stop_clean(void)
{
    if (S.pid <= 0)
        return;
    int rc = pd_kill_wait(&S, SIGTERM, 15000);
    if (rc != 0) {
        char *log = pd_read_file(S.log_path);
        size_t n = log ? strlen(log) : 0;
        cr_assert_eq(rc, 0, "promptd exited with %d after SIGTERM; the end of its log:\n%s", rc,
                     log ? log + (n > 4000 ? n - 4000 : 0) : "(none)");
        free(log);
    }
    pd_stop(&S);
}

/* ---------------------------------------------------------------- helpers */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start(const char *per_minute, const char *per_day)
{
    char m[64], d[64];
    snprintf(m, sizeof m, "PROMPTD_RATE_LIMIT_PER_MINUTE=%s", per_minute);
    snprintf(d, sizeof d, "PROMPTD_RATE_LIMIT_PER_DAY=%s", per_day);
    const char *env[] = {m, d, NULL};
    cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start");
}

static pd_resp call(const char *key, const char *method, const char *path, const char *body)
{
    pd_resp r;
    int rc = pd_req(&S, method, path, key, body, NULL, &r);
    cr_assert_eq(rc, 0, "%s %s: transfer failed: %s", method, path, r.error);
    return r;
}

/* A new key from `promptd keys create --org ORG [--rate-limit N]`. */
static void cli_key(const char *org, const char *rate, char *key, size_t keylen)
{
    const char *with_rate[] = {"keys", "create", "--org", org, "--rate-limit", rate, NULL};
    const char *plain[] = {"keys", "create", "--org", org, NULL};
    char out[512];
    cr_assert_eq(pd_cli(&S, rate ? with_rate : plain, out, sizeof out), 0, "keys create --org %s failed", org);
    size_t n = strcspn(out, " \r\n");
    cr_assert(n > 0 && n < keylen, "keys create printed: %s", out);
    memcpy(key, out, n);
    key[n] = '\0';
}

/* Header value as a long; -1 when absent or not a plain non-negative integer. */
static long header_long(const pd_resp *r, const char *name)
{
    const char *v = pd_header(r, name);
    if (!v || !*v)
        return -1;
    char *end;
    long n = strtol(v, &end, 10);
    return *end || n < 0 ? -1 : n;
}

static int has_rate_headers(const pd_resp *r)
{
    return pd_header(r, "X-RateLimit-Limit") || pd_header(r, "X-RateLimit-Remaining") ||
           pd_header(r, "X-RateLimit-Reset") || pd_header(r, "RateLimit-Policy") || pd_header(r, "RateLimit");
}

/* The X-RateLimit-* triple must be present and say limit / remaining. */
static void assert_triple(const pd_resp *r, long limit, long remaining, const char *what)
{
    cr_assert_eq(header_long(r, "X-RateLimit-Limit"), limit, "%s: X-RateLimit-Limit %s, want %ld\n%s", what,
                 pd_header(r, "X-RateLimit-Limit") ? pd_header(r, "X-RateLimit-Limit") : "(none)", limit, r->headers);
    cr_assert_eq(header_long(r, "X-RateLimit-Remaining"), remaining, "%s: X-RateLimit-Remaining %s, want %ld\n%s", what,
                 pd_header(r, "X-RateLimit-Remaining") ? pd_header(r, "X-RateLimit-Remaining") : "(none)", remaining,
                 r->headers);
    cr_assert_geq(header_long(r, "X-RateLimit-Reset"), 0, "%s: X-RateLimit-Reset missing\n%s", what, r->headers);
}

/* Header field equals want exactly. */
static void assert_header_eq(const pd_resp *r, const char *name, const char *want, const char *what)
{
    const char *v = pd_header(r, name);
    cr_assert(v && strcmp(v, want) == 0, "%s: %s is '%s', want '%s'\n%s", what, name, v ? v : "(none)", want,
              r->headers);
}

/* The 429 error envelope of each surface. */
enum surface { JARVIS, V1, OPENAI };

static enum surface surface_of(const char *path)
{
    if (strncmp(path, "/api/v1/", 8) == 0)
        return V1;
    if (strncmp(path, "/v1/", 4) == 0)
        return OPENAI;
    return JARVIS;
}

/* Returns NULL when r is a proper 429 of the surface, else a reason. */
static const char *bad_429(const pd_resp *r, enum surface s)
{
    if (r->status != 429)
        return "status is not 429";
    if (header_long(r, "Retry-After") < 1)
        return "no Retry-After >= 1";
    switch (s) {
    case JARVIS:
        if (!json_is_array(pd_json_at(r->json, "errors")))
            return "no JSON:API errors array";
        if (!pd_str_at(r->json, "errors.0.code") || strcmp(pd_str_at(r->json, "errors.0.code"), "rate_limited"))
            return "errors[0].code is not rate_limited";
        if (!pd_str_at(r->json, "errors.0.status") || strcmp(pd_str_at(r->json, "errors.0.status"), "429"))
            return "errors[0].status is not \"429\"";
        if (!pd_str_at(r->json, "errors.0.detail"))
            return "errors[0].detail missing";
        return NULL;
    case V1:
        if (!json_is_false(pd_json_at(r->json, "success")))
            return "success is not false";
        if (!pd_str_at(r->json, "error.code") || strcmp(pd_str_at(r->json, "error.code"), "RATE_LIMITED"))
            return "error.code is not RATE_LIMITED";
        if (!pd_str_at(r->json, "error.message"))
            return "error.message missing";
        return NULL;
    case OPENAI:
        if (pd_json_at(r->json, "errors") || pd_json_at(r->json, "success"))
            return "not the OpenAI envelope";
        if (!pd_str_at(r->json, "error.type") || strcmp(pd_str_at(r->json, "error.type"), "rate_limit_error"))
            return "error.type is not rate_limit_error";
        if (!pd_str_at(r->json, "error.message"))
            return "error.message missing";
        return NULL;
    }
    return "?";
}

static void assert_429(const pd_resp *r, const char *path, const char *what)
{
    const char *why = bad_429(r, surface_of(path));
    cr_assert_null(why, "%s: GET %s: %s (status %ld)\n%s\n%s", what, path, why ? why : "", r->status, r->headers,
                   r->body);
}

/* GET path with key: must be 2xx; returns the response (caller frees). */
static pd_resp get_ok(const char *key, const char *path)
{
    pd_resp r = call(key, "GET", path, NULL);
    cr_assert(r.status >= 200 && r.status < 300, "GET %s: want 2xx, got %ld\n%s\n%s", path, r.status, r.headers,
              r.body);
    return r;
}

/* ---------------------------------------------------------------- the burst */

#define BURST_CLIENTS 100
#define BURST_REQUESTS 160
#define BURST_LIMIT 60

static const char *const BURST_PATHS[] = {"/prompts", "/api/v1/users/me", "/v1/models"};

typedef struct burst_result {
    long status;
    long limit, remaining, reset, retry_after;
    char policy[128], state[128];
    const char *envelope_problem; /* for 429s: NULL when the surface's envelope is right */
    char transfer_error[CURL_ERROR_SIZE];
    int path_ix;
    long long done_ms;
} burst_result;

typedef struct burst {
    pd_server *s;
    const char *key;
    pthread_barrier_t start;
    atomic_int next;
    burst_result results[BURST_REQUESTS];
    int warm_failures;
} burst;

static void copy_header(const pd_resp *r, const char *name, char *dst, size_t cap)
{
    const char *v = pd_header(r, name);
    snprintf(dst, cap, "%s", v ? v : "");
}

static void *burst_client(void *arg)
{
    burst *b = arg;
    CURL *h = curl_easy_init();
    /* open the connection first (a public route, not counted), so the burst
     * itself does not wait for 100 TCP handshakes */
    pd_resp w = {0};
    if (!h || pd_req_on(h, b->s, "GET", "/health", NULL, NULL, NULL, &w) != 0 || w.status != 200)
        __atomic_add_fetch(&b->warm_failures, 1, __ATOMIC_SEQ_CST);
    pd_resp_free(&w);
    pthread_barrier_wait(&b->start);
    for (;;) {
        int i = atomic_fetch_add(&b->next, 1);
        if (i >= BURST_REQUESTS || !h)
            break;
        burst_result *res = &b->results[i];
        res->path_ix = i % 3;
        const char *path = BURST_PATHS[res->path_ix];
        pd_resp r;
        if (pd_req_on(h, b->s, "GET", path, b->key, NULL, NULL, &r) != 0)
            snprintf(res->transfer_error, sizeof res->transfer_error, "%s", r.error[0] ? r.error : "failed");
        res->done_ms = now_ms();
        res->status = r.status;
        res->limit = header_long(&r, "X-RateLimit-Limit");
        res->remaining = header_long(&r, "X-RateLimit-Remaining");
        res->reset = header_long(&r, "X-RateLimit-Reset");
        res->retry_after = header_long(&r, "Retry-After");
        copy_header(&r, "RateLimit-Policy", res->policy, sizeof res->policy);
        copy_header(&r, "RateLimit", res->state, sizeof res->state);
        if (r.status == 429)
            res->envelope_problem = bad_429(&r, surface_of(path));
        pd_resp_free(&r);
    }
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

/* One burst on key; returns its span in ms (first release to last answer). */
static long long run_burst(burst *b, const char *key)
{
    memset(b, 0, sizeof *b);
    b->s = &S;
    b->key = key;
    atomic_init(&b->next, 0);
    cr_assert_eq(pthread_barrier_init(&b->start, NULL, BURST_CLIENTS + 1), 0);
    pthread_t th[BURST_CLIENTS];
    for (int i = 0; i < BURST_CLIENTS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, burst_client, b), 0, "cannot start client thread %d", i);
    pthread_barrier_wait(&b->start);
    long long t0 = now_ms();
    for (int i = 0; i < BURST_CLIENTS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&b->start);
    long long last = t0;
    for (int i = 0; i < BURST_REQUESTS; i++)
        if (b->results[i].done_ms > last)
            last = b->results[i].done_ms;
    return last - t0;
}

Test(ratelimit_http, hundred_clients_one_key_admit_exactly_the_limit)
{
    start("60", "0");
    /* warm the curl globals in this thread before the clients start */
    pd_resp warm = get_ok(S.admin_key, "/health");
    pd_resp_free(&warm);

    static burst b; /* large: keep it off the stack */
    long long span = 0;
    int attempt;
    for (attempt = 1; attempt <= 3; attempt++) {
        char key[128];
        cli_key("default", NULL, key, sizeof key);
        span = run_burst(&b, key);
        cr_assert_eq(b.warm_failures, 0, "%d clients could not connect", b.warm_failures);
        if (span < 1000)
            break;
        fprintf(stderr,
                "ratelimit burst %d took %lld ms (over the 1 s in which GCRA replenishes nothing): "
                "inconclusive, trying again on a fresh key\n",
                attempt, span);
    }
    cr_assert_lt(span, 1000, "no burst of %d requests finished within 1 s (last took %lld ms)", BURST_REQUESTS, span);

    int admitted = 0, limited = 0, seen[BURST_LIMIT] = {0}, limited_by_surface[3] = {0};
    for (int i = 0; i < BURST_REQUESTS; i++) {
        const burst_result *r = &b.results[i];
        const char *path = BURST_PATHS[r->path_ix];
        cr_assert_eq(r->transfer_error[0], '\0', "request %d (GET %s) failed: %s", i, path, r->transfer_error);
        cr_assert(r->status == 200 || r->status == 429, "request %d GET %s: status %ld (want 200 or 429)", i, path,
                  r->status);
        /* every response carries all five fields, and they agree with each other */
        cr_assert_eq(r->limit, BURST_LIMIT, "request %d GET %s (%ld): X-RateLimit-Limit %ld", i, path, r->status,
                     r->limit);
        cr_assert(r->remaining >= 0 && r->remaining < BURST_LIMIT, "request %d GET %s (%ld): X-RateLimit-Remaining %ld",
                  i, path, r->status, r->remaining);
        cr_assert(r->reset >= 0 && r->reset <= 60, "request %d GET %s: X-RateLimit-Reset %ld", i, path, r->reset);
        cr_assert_str_eq(r->policy, "\"minute\";q=60;w=60", "request %d GET %s: RateLimit-Policy '%s'", i, path,
                         r->policy);
        char want_state[128];
        snprintf(want_state, sizeof want_state, "\"minute\";r=%ld;t=%ld", r->remaining, r->reset);
        cr_assert_str_eq(r->state, want_state, "request %d GET %s: RateLimit '%s' disagrees with X-RateLimit-*", i,
                         path, r->state);
        if (r->status == 200) {
            admitted++;
            cr_assert_eq(r->retry_after, -1, "request %d: an admitted response has Retry-After", i);
            cr_assert_eq(seen[r->remaining], 0, "X-RateLimit-Remaining %ld was given to two admitted requests",
                         r->remaining);
            seen[r->remaining] = 1;
            /* spent = 60 - remaining requests, 1 s each to replenish; the burst took < 1 s */
            long spent = BURST_LIMIT - r->remaining;
            cr_assert(r->reset <= spent && r->reset >= spent - 2,
                      "request %d: remaining %ld but X-RateLimit-Reset %ld (want about %ld)", i, r->remaining, r->reset,
                      spent);
        } else {
            limited++;
            limited_by_surface[r->path_ix]++;
            cr_assert_null(r->envelope_problem, "429 on GET %s: %s", path,
                           r->envelope_problem ? r->envelope_problem : "");
            cr_assert_eq(r->remaining, 0, "a 429 says X-RateLimit-Remaining %ld", r->remaining);
            cr_assert(r->retry_after >= 1 && r->retry_after <= 60, "429 Retry-After %ld", r->retry_after);
        }
    }
    cr_assert_eq(admitted, BURST_LIMIT, "%d of %d requests admitted, want exactly %d", admitted, BURST_REQUESTS,
                 BURST_LIMIT);
    cr_assert_eq(limited, BURST_REQUESTS - BURST_LIMIT);
    for (int i = 0; i < BURST_LIMIT; i++)
        cr_assert(seen[i], "no admitted response said X-RateLimit-Remaining %d", i);
    for (int s = 0; s < 3; s++)
        cr_assert_gt(limited_by_surface[s], 0, "no 429 seen on %s", BURST_PATHS[s]);
    fprintf(stderr, "ratelimit burst: %d clients, %d requests in %lld ms (attempt %d): %d admitted, %d limited\n",
            BURST_CLIENTS, BURST_REQUESTS, span, attempt, admitted, limited);
    stop_clean();
}

/* ---------------------------------------------------------------- day window */

Test(ratelimit_http, day_limit_is_per_user_and_shared_by_the_users_keys)
{
    start("0", "5");
    char k2[128], other[128];
    cli_key("default", NULL, k2, sizeof k2); /* the same admin user as the bootstrap key */
    cr_assert_eq(pd_new_org_key(&S, "other", other, sizeof other), 0);

    pd_resp r = get_ok(S.admin_key, "/api/v1/users/me");
    assert_triple(&r, 5, 4, "key 1, request 1");
    assert_header_eq(&r, "RateLimit-Policy", "\"day\";q=5;w=86400", "day only");
    char user[64];
    snprintf(user, sizeof user, "%s", pd_str_at(r.json, "data.uuid") ? pd_str_at(r.json, "data.uuid") : "");
    pd_resp_free(&r);

    r = get_ok(k2, "/api/v1/users/me");
    cr_assert_str_eq(pd_str_at(r.json, "data.uuid"), user, "the second key must belong to the same user");
    assert_triple(&r, 5, 3, "key 2, request 2 (the user's day window is shared)");
    pd_resp_free(&r);

    const char *order[] = {S.admin_key, k2, S.admin_key};
    for (int i = 0; i < 3; i++) {
        r = get_ok(order[i], "/prompts");
        assert_triple(&r, 5, 2 - i, "shared day window");
        char want[64];
        snprintf(want, sizeof want, "\"day\";r=%d;t=", 2 - i);
        cr_assert(pd_header(&r, "RateLimit") && strncmp(pd_header(&r, "RateLimit"), want, strlen(want)) == 0,
                  "RateLimit: %s", pd_header(&r, "RateLimit") ? pd_header(&r, "RateLimit") : "(none)");
        pd_resp_free(&r);
    }
    /* the user's 5 are spent: both keys are refused, on every surface */
    const char *paths[] = {"/prompts", "/api/v1/users/me", "/v1/models"};
    for (int i = 0; i < 3; i++) {
        r = call(i % 2 ? k2 : S.admin_key, "GET", paths[i], NULL);
        assert_429(&r, paths[i], "day limit spent");
        assert_triple(&r, 5, 0, "day limit spent");
        cr_assert_geq(header_long(&r, "Retry-After"), 60, "a day window of 5 refills one per 4.8 h: Retry-After %s",
                      pd_header(&r, "Retry-After"));
        pd_resp_free(&r);
    }
    /* another user (another organization's admin) has a window of their own */
    r = get_ok(other, "/prompts");
    assert_triple(&r, 5, 4, "another user");
    pd_resp_free(&r);
    stop_clean();
}

/* ---------------------------------------------------------------- a key's own limit */

Test(ratelimit_http, a_keys_own_limit_replaces_the_default_for_that_key_only)
{
    start("60", "0");
    char k3[128], unlimited[128];
    cli_key("default", "3", k3, sizeof k3);
    cli_key("default", "0", unlimited, sizeof unlimited);

    for (int i = 0; i < 3; i++) {
        pd_resp r = get_ok(k3, "/prompts");
        assert_triple(&r, 3, 2 - i, "key created with --rate-limit 3");
        assert_header_eq(&r, "RateLimit-Policy", "\"minute\";q=3;w=60", "key created with --rate-limit 3");
        pd_resp_free(&r);
    }
    pd_resp r = call(k3, "GET", "/prompts", NULL);
    assert_429(&r, "/prompts", "4th request of a key limited to 3");
    pd_resp_free(&r);

    /* the default key keeps the default */
    r = get_ok(S.admin_key, "/prompts");
    assert_triple(&r, 60, 59, "the bootstrap key");
    assert_header_eq(&r, "RateLimit-Policy", "\"minute\";q=60;w=60", "the bootstrap key");
    pd_resp_free(&r);

    /* the same through the API: rate_limit_per_minute on POST /api/v1/keys */
    r = call(S.admin_key, "POST", "/api/v1/keys", "{\"name\": \"two a minute\", \"rate_limit_per_minute\": 2}");
    cr_assert_eq(r.status, 201, "POST /api/v1/keys: %ld %s", r.status, r.body);
    cr_assert_eq(pd_int_at(r.json, "data.rate_limit_per_minute", -1), 2, "%s", r.body);
    char k2[128];
    snprintf(k2, sizeof k2, "%s", pd_str_at(r.json, "data.key") ? pd_str_at(r.json, "data.key") : "");
    pd_resp_free(&r);
    for (int i = 0; i < 2; i++) {
        r = get_ok(k2, "/api/v1/users/me");
        assert_triple(&r, 2, 1 - i, "key created with rate_limit_per_minute 2");
        pd_resp_free(&r);
    }
    r = call(k2, "GET", "/api/v1/users/me", NULL);
    assert_429(&r, "/api/v1/users/me", "3rd request of a key limited to 2");
    pd_resp_free(&r);

    /* --rate-limit 0: this key has no minute window at all */
    for (int i = 0; i < 70; i++) {
        r = get_ok(unlimited, "/v1/models");
        cr_assert(!has_rate_headers(&r), "request %d of an unlimited key carries rate limit fields:\n%s", i, r.headers);
        pd_resp_free(&r);
    }
    /* and the default key's window moved by one only */
    r = get_ok(S.admin_key, "/prompts");
    assert_triple(&r, 60, 57, "the bootstrap key after the POST");
    pd_resp_free(&r);
    stop_clean();
}

/* ---------------------------------------------------------------- windows off */

Test(ratelimit_http, zero_turns_a_window_off)
{
    /* both off: no rate limit field at all, and no limit */
    start("0", "0");
    for (int i = 0; i < 100; i++) {
        const char *path = BURST_PATHS[i % 3];
        pd_resp r = get_ok(S.admin_key, path);
        cr_assert(!has_rate_headers(&r), "GET %s with both windows off carries rate limit fields:\n%s", path,
                  r.headers);
        pd_resp_free(&r);
    }
    stop_clean();

    /* minute off, day on: only the day window is described */
    start("0", "7");
    pd_resp r = get_ok(S.admin_key, "/prompts");
    assert_header_eq(&r, "RateLimit-Policy", "\"day\";q=7;w=86400", "minute off");
    cr_assert(pd_header(&r, "RateLimit") && strncmp(pd_header(&r, "RateLimit"), "\"day\";r=6;t=", 12) == 0,
              "RateLimit: %s", pd_header(&r, "RateLimit") ? pd_header(&r, "RateLimit") : "(none)");
    cr_assert_null(strstr(r.headers, "minute"), "minute window described although off:\n%s", r.headers);
    assert_triple(&r, 7, 6, "minute off");
    pd_resp_free(&r);
    stop_clean();

    /* minute on, day off */
    start("4", "0");
    r = get_ok(S.admin_key, "/api/v1/users/me");
    assert_header_eq(&r, "RateLimit-Policy", "\"minute\";q=4;w=60", "day off");
    cr_assert(pd_header(&r, "RateLimit") && strncmp(pd_header(&r, "RateLimit"), "\"minute\";r=3;t=", 15) == 0,
              "RateLimit: %s", pd_header(&r, "RateLimit") ? pd_header(&r, "RateLimit") : "(none)");
    cr_assert_null(strstr(r.headers, "\"day\""), "day window described although off:\n%s", r.headers);
    assert_triple(&r, 4, 3, "day off");
    pd_resp_free(&r);
    stop_clean();
}

Test(ratelimit_http, both_windows_described_and_the_triple_follows_the_tightest)
{
    start("4", "10");
    pd_resp r = get_ok(S.admin_key, "/prompts");
    assert_header_eq(&r, "RateLimit-Policy", "\"minute\";q=4;w=60, \"day\";q=10;w=86400", "both windows");
    const char *st = pd_header(&r, "RateLimit");
    cr_assert(st && strncmp(st, "\"minute\";r=3;t=", 15) == 0 && strstr(st, ", \"day\";r=9;t="), "RateLimit: %s",
              st ? st : "(none)");
    assert_triple(&r, 4, 3, "minute is the tighter");
    pd_resp_free(&r);
    stop_clean();

    start("10", "3");
    r = get_ok(S.admin_key, "/prompts");
    assert_triple(&r, 3, 2, "day is the tighter");
    pd_resp_free(&r);
    r = get_ok(S.admin_key, "/prompts");
    assert_triple(&r, 3, 1, "day is the tighter");
    pd_resp_free(&r);
    r = get_ok(S.admin_key, "/prompts");
    assert_triple(&r, 3, 0, "day is the tighter");
    pd_resp_free(&r);
    r = call(S.admin_key, "GET", "/prompts", NULL);
    assert_429(&r, "/prompts", "day spent, minute not");
    assert_triple(&r, 3, 0, "the refused window");
    pd_resp_free(&r);
    stop_clean();
}

/* ---------------------------------------------------------------- 401s */

Test(ratelimit_http, failed_authentication_is_not_counted)
{
    start("5", "0");
    /* a key that looks like the real one: same shown prefix, wrong secret */
    char claimed[128];
    snprintf(claimed, sizeof claimed, "%.16sXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", S.admin_key);
    for (int i = 0; i < 100; i++) {
        char bogus[128], auth[200];
        snprintf(bogus, sizeof bogus, "pk_live_bogus%04dabcdefghijklmnopqrstuvwxyzABCDEF", i);
        pd_resp r;
        const char *path = BURST_PATHS[i % 3];
        int kind = i % 4;
        if (kind == 0) {
            r = call(bogus, "GET", path, NULL);
        } else if (kind == 1) {
            r = call(claimed, "GET", path, NULL);
        } else if (kind == 2) {
            r = call(NULL, "GET", path, NULL);
        } else {
            snprintf(auth, sizeof auth, "Authorization: Bearer %s", i % 8 == 3 ? claimed : "aaa.bbb.ccc");
            const char *h[] = {auth, NULL};
            cr_assert_eq(pd_req(&S, "GET", path, NULL, NULL, h, &r), 0, "%s", r.error);
        }
        cr_assert_eq(r.status, 401, "bad credentials #%d (kind %d) on %s: want 401, got %ld: %s", i, kind, path,
                     r.status, r.body);
        cr_assert_null(pd_header(&r, "Retry-After"), "a 401 carries Retry-After");
        pd_resp_free(&r);
    }
    /* the real key still has its whole window */
    for (int i = 0; i < 5; i++) {
        pd_resp r = get_ok(S.admin_key, BURST_PATHS[i % 3]);
        assert_triple(&r, 5, 4 - i, "after 100 failed authentications");
        pd_resp_free(&r);
    }
    pd_resp r = call(S.admin_key, "GET", "/prompts", NULL);
    assert_429(&r, "/prompts", "6th request of 5");
    pd_resp_free(&r);
    /* and bad credentials are still 401, not 429, once the real key is spent */
    r = call(claimed, "GET", "/prompts", NULL);
    cr_assert_eq(r.status, 401, "a claimed key after the real one is spent: %ld %s", r.status, r.body);
    pd_resp_free(&r);
    stop_clean();
}

/* ---------------------------------------------------------------- independence */

Test(ratelimit_http, keys_have_independent_minute_windows)
{
    start("3", "0");
    char k2[128], k3[128];
    cli_key("default", NULL, k2, sizeof k2);                     /* same user as the bootstrap key */
    cr_assert_eq(pd_new_org_key(&S, "other", k3, sizeof k3), 0); /* another organization */

    for (int i = 0; i < 3; i++) {
        pd_resp r = get_ok(S.admin_key, "/prompts");
        assert_triple(&r, 3, 2 - i, "key 1");
        pd_resp_free(&r);
    }
    pd_resp r = call(S.admin_key, "GET", "/prompts", NULL);
    assert_429(&r, "/prompts", "key 1 spent");
    pd_resp_free(&r);

    for (int i = 0; i < 3; i++) {
        r = get_ok(k2, "/api/v1/users/me");
        assert_triple(&r, 3, 2 - i, "key 2 (same user, own minute window)");
        pd_resp_free(&r);
    }
    r = call(k2, "GET", "/api/v1/users/me", NULL);
    assert_429(&r, "/api/v1/users/me", "key 2 spent");
    pd_resp_free(&r);

    r = get_ok(k3, "/v1/models");
    assert_triple(&r, 3, 2, "key 3 (another organization)");
    pd_resp_free(&r);

    /* key 1 is still refused: spending others did not refill it */
    r = call(S.admin_key, "GET", "/v1/models", NULL);
    assert_429(&r, "/v1/models", "key 1 still spent");
    pd_resp_free(&r);
    stop_clean();
}
