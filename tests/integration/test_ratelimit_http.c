/*
 * test_ratelimit_http.c — rate limits over real HTTP (spec 003 §5).
 *
 *  - a burst: 100 concurrent clients on ONE key (60 per minute) send 160
 *    requests as fast as they can, over the three API surfaces: exactly 60
 *    are admitted, the rest answer 429 in the surface's error envelope with
 *    Retry-After; every response carries X-RateLimit-Limit/-Remaining/-Reset,
 *    RateLimit-Policy and RateLimit, and the admitted responses' Remaining
 *    values are exactly {59..0}, each once;
 *  - the window is exact: a burst of 70 admits 60, and nothing more is
 *    admitted until 60 s after the first (a real minute), then the slots come
 *    back; with a short window, Retry-After is honest to the second;
 *  - the key and day windows survive a restart and a kill -9;
 *  - requests that do not authenticate (401, 404, 405, 413, 400) are limited
 *    per client address: they carry that window's fields, and once it is
 *    spent every request needing credentials from that address is 429;
 *  - every answer carries X-Request-Id (the client's when sane, else a new
 *    one) and the fields of the window that applied; logs name the id;
 *  - the per-user day window is shared by every key of the user;
 *  - a key's own limit (`keys create --rate-limit N`, POST /api/v1/keys
 *    rate_limit_per_minute) replaces the default for that key only, 0 = none;
 *  - a limit of 0 turns its window off: no header fields for it;
 *  - the classic X-RateLimit-* triple follows the tightest window;
 *  - failed authentication (401) is not counted;
 *  - different keys have independent minute windows.
 *
 * The limiter is an exact sliding log: at most `limit` admissions in any
 * window, nothing replenished until an admission leaves it, so the burst
 * test holds however long the burst takes (under a minute).
 *
 * Each test starts its own promptd with the limits it needs (test servers
 * run with both limits off unless extra_env sets them).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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
    char key[128];
    cli_key("default", NULL, key, sizeof key);
    long long span = run_burst(&b, key);
    cr_assert_eq(b.warm_failures, 0, "%d clients could not connect", b.warm_failures);
    cr_assert_lt(span, 50000, "the burst took %lld ms: part of it may have left the minute", span);
    long span_s = (long)((span + 999) / 1000);

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
            /* the next slot frees when the burst's first admission leaves the minute */
            cr_assert(r->reset <= 60 && r->reset >= 60 - span_s - 1,
                      "request %d: X-RateLimit-Reset %ld (want 60 - the burst's %ld s)", i, r->reset, span_s);
        } else {
            limited++;
            limited_by_surface[r->path_ix]++;
            cr_assert_null(r->envelope_problem, "429 on GET %s: %s", path,
                           r->envelope_problem ? r->envelope_problem : "");
            cr_assert_eq(r->remaining, 0, "a 429 says X-RateLimit-Remaining %ld", r->remaining);
            cr_assert(r->retry_after >= 60 - span_s - 1 && r->retry_after <= 60, "429 Retry-After %ld", r->retry_after);
            cr_assert_eq(r->retry_after, r->reset, "a 429's Retry-After %ld and X-RateLimit-Reset %ld disagree",
                         r->retry_after, r->reset);
        }
    }
    cr_assert_eq(admitted, BURST_LIMIT, "%d of %d requests admitted, want exactly %d", admitted, BURST_REQUESTS,
                 BURST_LIMIT);
    cr_assert_eq(limited, BURST_REQUESTS - BURST_LIMIT);
    for (int i = 0; i < BURST_LIMIT; i++)
        cr_assert(seen[i], "no admitted response said X-RateLimit-Remaining %d", i);
    for (int s = 0; s < 3; s++)
        cr_assert_gt(limited_by_surface[s], 0, "no 429 seen on %s", BURST_PATHS[s]);
    fprintf(stderr, "ratelimit burst: %d clients, %d requests in %lld ms: %d admitted, %d limited\n", BURST_CLIENTS,
            BURST_REQUESTS, span, admitted, limited);
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

/* ---------------------------------------------------------------- exact windows */

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* the server's durable windows run on the wall clock */
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start_env(const char *const *env)
{
    cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start");
}

/* The documents' promise to the letter, in real time: 60 a minute. */
Test(ratelimit_http, burst_of_70_admits_60_then_nothing_until_a_minute_after_the_first, .timeout = 150)
{
    start("60", "0");
    CURL *h = curl_easy_init();
    cr_assert_not_null(h);
    long long first_sent = 0, last_admitted_recv = 0;
    int admitted = 0;
    for (int i = 0; i < 70; i++) {
        pd_resp r;
        long long sent = wall_ms();
        cr_assert_eq(pd_req_on(h, &S, "GET", "/prompts", S.admin_key, NULL, NULL, &r), 0, "%s", r.error);
        long long recv = wall_ms();
        if (i == 0)
            first_sent = sent;
        cr_assert(r.status == 200 || r.status == 429, "burst request %d: %ld", i, r.status);
        if (r.status == 200) {
            admitted++;
            last_admitted_recv = recv;
            assert_triple(&r, 60, 60 - admitted, "burst");
        } else {
            assert_429(&r, "/prompts", "the 61st to 70th");
            assert_triple(&r, 60, 0, "refused");
        }
        pd_resp_free(&r);
    }
    cr_assert_eq(admitted, 60, "a burst of 70 admitted %d", admitted);
    /* the first admission happened at or after first_sent: until first_sent +
     * 60 s every request must be refused, and say when to come back */
    int polls = 0, crossing = 0;
    for (;;) {
        usleep(2000 * 1000);
        pd_resp r;
        cr_assert_eq(pd_req_on(h, &S, "GET", "/api/v1/users/me", S.admin_key, NULL, NULL, &r), 0, "%s", r.error);
        long long recv = wall_ms();
        if (recv >= first_sent + 60000) {
            crossing = r.status == 200; /* it may have come after the first admission left: then it took a slot */
            pd_resp_free(&r);
            break;
        }
        polls++;
        assert_429(&r, "/api/v1/users/me", "within the minute of the first admission");
        long retry = header_long(&r, "Retry-After");
        long long earliest = first_sent + 60000 - recv; /* ms until the earliest the first can leave */
        /* at most: until the burst's last admission leaves, plus rounding and this poll's own time */
        cr_assert(retry * 1000 >= earliest && retry * 1000 <= earliest + (last_admitted_recv - first_sent) + 5000,
                  "Retry-After %ld with %lld ms left of the first admission's minute", retry, earliest);
        pd_resp_free(&r);
    }
    cr_assert_gt(polls, 10, "only %d polls inside the minute", polls);
    /* once the whole burst has left the minute, 60 are admitted again */
    long long wait = last_admitted_recv + 60000 - wall_ms();
    if (wait > 0)
        usleep((useconds_t)(wait + 50) * 1000);
    admitted = 0;
    for (int i = 0; i < 61; i++) {
        pd_resp r;
        cr_assert_eq(pd_req_on(h, &S, "GET", "/v1/models", S.admin_key, NULL, NULL, &r), 0, "%s", r.error);
        admitted += r.status == 200;
        pd_resp_free(&r);
    }
    /* the polls inside the minute were refused, so they are not in the window */
    cr_assert_eq(admitted, 60 - crossing, "after the minute: %d admitted of 61 (%d taken at the crossing)", admitted,
                 crossing);
    curl_easy_cleanup(h);
    stop_clean();
}

Test(ratelimit_http, retry_after_is_honest_on_a_short_window)
{
    const char *env[] = {"PROMPTD_RATE_LIMIT_PER_MINUTE=3", "PROMPTD_RATE_LIMIT_KEY_WINDOW=3", NULL};
    start_env(env);
    for (int i = 0; i < 3; i++) {
        pd_resp r = get_ok(S.admin_key, "/prompts");
        assert_triple(&r, 3, 2 - i, "a window of 3 s");
        char want[64];
        snprintf(want, sizeof want, "\"3s\";q=3;w=3");
        assert_header_eq(&r, "RateLimit-Policy", want, "a window of 3 s is named by its length");
        pd_resp_free(&r);
    }
    pd_resp r = call(S.admin_key, "GET", "/prompts", NULL);
    assert_429(&r, "/prompts", "4th in 3 s");
    long retry = header_long(&r, "Retry-After");
    cr_assert(retry >= 1 && retry <= 3, "Retry-After %ld", retry);
    cr_assert_eq(header_long(&r, "X-RateLimit-Reset"), retry);
    pd_resp_free(&r);
    usleep((useconds_t)retry * 1000 * 1000);
    r = get_ok(S.admin_key, "/prompts"); /* waiting Retry-After is enough */
    pd_resp_free(&r);
    stop_clean();
}

/* ---------------------------------------------------------------- restarts */

Test(ratelimit_http, key_and_day_counts_survive_a_restart_and_a_kill_9)
{
    start("6", "10");
    for (int i = 0; i < 3; i++) {
        pd_resp r = get_ok(S.admin_key, "/prompts");
        pd_resp_free(&r);
    }
    const char *env[] = {"PROMPTD_RATE_LIMIT_PER_MINUTE=6", "PROMPTD_RATE_LIMIT_PER_DAY=10", NULL};
    cr_assert_eq(pd_restart(&S, NULL, env), 0, "restart failed");
    pd_resp r = get_ok(S.admin_key, "/prompts");
    const char *st = pd_header(&r, "RateLimit");
    cr_assert(st && strncmp(st, "\"minute\";r=2;t=", 15) == 0 && strstr(st, "\"day\";r=6;t="),
              "after a clean restart: RateLimit %s", st ? st : "(none)");
    pd_resp_free(&r);

    r = get_ok(S.admin_key, "/prompts");
    pd_resp_free(&r);
    usleep(1000 * 1000); /* the journal commits within milliseconds; a crash loses only the last few */
    cr_assert_eq(pd_kill_wait(&S, SIGKILL, 5000), -1, "kill -9");
    cr_assert_eq(pd_restart(&S, NULL, env), 0, "restart after kill -9 failed");
    r = get_ok(S.admin_key, "/prompts");
    st = pd_header(&r, "RateLimit");
    cr_assert(st && strncmp(st, "\"minute\";r=0;t=", 15) == 0 && strstr(st, "\"day\";r=4;t="),
              "after kill -9: RateLimit %s", st ? st : "(none)");
    assert_triple(&r, 6, 0, "the minute is spent");
    pd_resp_free(&r);
    r = call(S.admin_key, "GET", "/prompts", NULL);
    assert_429(&r, "/prompts", "7th in the minute, across two restarts");
    pd_resp_free(&r);
    stop_clean();
}

/* ---------------------------------------------------------------- the address brake */

/* The per-address window's fields: limit and remaining. */
static void assert_address(const pd_resp *r, long limit, long remaining, const char *what)
{
    char want[64];
    snprintf(want, sizeof want, "\"address\";q=%ld;w=", limit);
    const char *p = pd_header(r, "RateLimit-Policy");
    cr_assert(p && strncmp(p, want, strlen(want)) == 0, "%s (%ld): RateLimit-Policy %s\n%s", what, r->status,
              p ? p : "(none)", r->headers);
    snprintf(want, sizeof want, "\"address\";r=%ld;t=", remaining);
    p = pd_header(r, "RateLimit");
    cr_assert(p && strncmp(p, want, strlen(want)) == 0, "%s (%ld): RateLimit %s, want r=%ld\n%s", what, r->status,
              p ? p : "(none)", remaining, r->headers);
    assert_triple(r, limit, remaining, what);
}

Test(ratelimit_http, requests_without_valid_credentials_are_limited_per_address)
{
    const char *env[] = {"PROMPTD_RATE_LIMIT_PER_MINUTE=100", "PROMPTD_RATE_LIMIT_PER_ADDRESS=5",
                         "PROMPTD_RATE_LIMIT_ADDRESS_WINDOW=3", "PROMPTD_BODY_LIMIT=1024", NULL};
    start_env(env);
    /* authenticated requests are not charged to the address */
    for (int i = 0; i < 10; i++) {
        pd_resp r = get_ok(S.admin_key, "/prompts");
        assert_triple(&r, 100, 99 - i, "a valid key");
        cr_assert_null(strstr(r.headers, "address"), "a valid key's answer describes the address window");
        pd_resp_free(&r);
    }
    pd_resp r = get_ok(NULL, "/health"); /* public: shows the window, not charged */
    assert_address(&r, 5, 5, "/health");
    pd_resp_free(&r);

    char big[2048];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    struct {
        const char *method, *path, *key, *body;
        const char *const *headers;
        long status;
    } bad[] = {
        {"GET", "/prompts", "pk_live_not_a_key_at_all_0123456789abcdef", NULL, NULL, 401},
        {"GET", "/no/such/path", NULL, NULL, NULL, 404},
        {"DELETE", "/health", NULL, NULL, NULL, 405},
        {"POST", "/prompts", S.admin_key, big, NULL, 413},
        {"POST", "/prompts", S.admin_key, big, chunked, 413},
    };
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(pd_req(&S, bad[i].method, bad[i].path, bad[i].key, bad[i].body, bad[i].headers, &r), 0, "%s",
                     r.error);
        cr_assert_eq(r.status, bad[i].status, "%s %s: %ld %s", bad[i].method, bad[i].path, r.status, r.body);
        assert_address(&r, 5, 4 - i, bad[i].path);
        cr_assert_null(pd_header(&r, "Retry-After"), "%s %s has Retry-After", bad[i].method, bad[i].path);
        pd_resp_free(&r);
    }
    /* spent: the next bad request is 429, and so is a VALID key from this
     * address (its credentials are not even checked), on every surface */
    const char *paths[] = {"/prompts", "/api/v1/users/me", "/v1/models", "/nothing/here"};
    const char *keys[] = {"pk_live_wrong_key_abcdefghijklmnopqrstuvwxyz", S.admin_key, S.admin_key, NULL};
    for (int i = 0; i < 4; i++) {
        r = call(keys[i], "GET", paths[i], NULL);
        if (i < 3)
            assert_429(&r, paths[i], "address spent");
        else
            cr_assert_eq(r.status, 429, "unknown path after the address is spent: %ld", r.status);
        assert_address(&r, 5, 0, "address spent");
        long retry = header_long(&r, "Retry-After");
        cr_assert(retry >= 1 && retry <= 3, "Retry-After %ld", retry);
        pd_resp_free(&r);
    }
    r = get_ok(NULL, "/health"); /* never refused */
    assert_address(&r, 5, 0, "/health when spent");
    cr_assert_null(pd_header(&r, "Retry-After"));
    pd_resp_free(&r);
    /* the window rolls: 3 s later the valid key works again, with its own fields */
    usleep(3100 * 1000);
    r = get_ok(S.admin_key, "/prompts");
    assert_triple(&r, 100, 89, "the valid key after the brake");
    pd_resp_free(&r);
    stop_clean();
}

/* ---------------------------------------------------------------- X-Request-Id */

static int looks_like_uuid(const char *s) { return s && strlen(s) == 36 && s[8] == '-' && s[13] == '-'; }

Test(ratelimit_http, every_answer_carries_a_request_id_and_the_limit_that_applied)
{
    const char *env[] = {"PROMPTD_RATE_LIMIT_PER_MINUTE=50", "PROMPTD_RATE_LIMIT_PER_DAY=500",
                         "PROMPTD_RATE_LIMIT_PER_ADDRESS=40", "PROMPTD_BODY_LIMIT=1024", "PROMPTD_LOG_LEVEL=debug",
                         NULL};
    start_env(env);
    char one[128];
    cli_key("default", "1", one, sizeof one);
    char big[2048];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *text[] = {"Content-Type: text/plain", NULL};
    enum { KEYED, ADDRESS };
    struct {
        const char *method, *path, *key, *body;
        const char *const *headers;
        long status;
        int window;
    } c[] = {
        {"GET", "/prompts", S.admin_key, NULL, NULL, 200, KEYED},
        {"GET", "/prompts/7b2f0c1e-8d4a-4c6b-9e3f-1a2b3c4d5e6f", S.admin_key, NULL, NULL, 404, KEYED},
        {"POST", "/prompts", S.admin_key, "{\"prompt\": ", NULL, 400, KEYED},
        {"POST", "/prompts", S.admin_key, "{}", text, 415, KEYED},
        {"GET", "/api/v1/users/me", one, NULL, NULL, 200, KEYED},
        {"GET", "/api/v1/users/me", one, NULL, NULL, 429, KEYED},
        {"GET", "/prompts", NULL, NULL, NULL, 401, ADDRESS},
        {"GET", "/v1/models", "sk-wrong", NULL, NULL, 401, ADDRESS},
        {"GET", "/nowhere", NULL, NULL, NULL, 404, ADDRESS},
        {"PUT", "/health", NULL, NULL, NULL, 405, ADDRESS},
        {"POST", "/prompts", S.admin_key, big, NULL, 413, ADDRESS},
        {"GET", "/prompts/%C3%28", S.admin_key, NULL, NULL, 400, ADDRESS},
        {"GET", "/health", NULL, NULL, NULL, 200, ADDRESS},
    };
    const size_t n = sizeof c / sizeof c[0];
    char seen[sizeof c / sizeof c[0]][3][64];
    for (size_t i = 0; i < n; i++) {
        /* three ways: a sane id is echoed; no id and a bad id get a new one */
        char sent[64], hdr[160];
        snprintf(sent, sizeof sent, "req-%zu_client.side:42", i);
        const char *bad_ids[] = {"has space", "\xc3\xa9t\xc3\xa9",
                                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
        for (int way = 0; way < 3; way++) {
            const char *h[4] = {0};
            int nh = 0;
            if (c[i].headers)
                h[nh++] = c[i].headers[0];
            if (way == 0)
                snprintf(hdr, sizeof hdr, "X-Request-Id: %s", sent), h[nh++] = hdr;
            else if (way == 2)
                snprintf(hdr, sizeof hdr, "X-Request-Id: %s", bad_ids[i % 3]), h[nh++] = hdr;
            pd_resp r;
            cr_assert_eq(pd_req(&S, c[i].method, c[i].path, c[i].key, c[i].body, h, &r), 0, "%s", r.error);
            long want = c[i].status;
            if (c[i].status == 429 || (c[i].key == one && way > 0))
                want = 429; /* the key limited to 1 a minute is spent after its first answer */
            cr_assert_eq(r.status, want, "%s %s (way %d): %ld %s", c[i].method, c[i].path, way, r.status, r.body);
            const char *id = pd_header(&r, "X-Request-Id");
            cr_assert_not_null(id, "%s %s -> %ld has no X-Request-Id\n%s", c[i].method, c[i].path, r.status,
                               r.headers);
            if (way == 0)
                cr_assert_str_eq(id, sent, "the client's id is not echoed");
            else
                cr_assert(looks_like_uuid(id), "way %d: a new id, not '%s'", way, id);
            snprintf(seen[i][way], sizeof seen[i][way], "%s", id);
            cr_assert_eq(pd_count(r.headers, "X-Request-Id:") + pd_count(r.headers, "x-request-id:"), 1,
                         "one X-Request-Id only\n%s", r.headers);
            if (c[i].window == ADDRESS) {
                const char *p = pd_header(&r, "RateLimit-Policy");
                cr_assert(p && strncmp(p, "\"address\";q=40;w=60", 19) == 0, "%s %s -> %ld: RateLimit-Policy %s",
                          c[i].method, c[i].path, r.status, p ? p : "(none)");
            } else {
                const char *p = pd_header(&r, "RateLimit-Policy");
                long q = c[i].key == one ? 1 : 50;
                char want_p[80];
                snprintf(want_p, sizeof want_p, "\"minute\";q=%ld;w=60, \"day\";q=500;w=86400", q);
                cr_assert(p && strcmp(p, want_p) == 0, "%s %s -> %ld: RateLimit-Policy %s", c[i].method, c[i].path,
                          r.status, p ? p : "(none)");
            }
            cr_assert_geq(header_long(&r, "X-RateLimit-Limit"), 1, "%s %s: no X-RateLimit-Limit", c[i].method,
                          c[i].path);
            cr_assert_geq(header_long(&r, "X-RateLimit-Remaining"), 0);
            cr_assert_geq(header_long(&r, "X-RateLimit-Reset"), 0);
            if (r.status == 429)
                cr_assert_geq(header_long(&r, "Retry-After"), 1);
            pd_resp_free(&r);
        }
        cr_assert_str_neq(seen[i][1], seen[i][2], "two requests got the same new id");
    }
    /* the log lines of a request name its id (the access log, at debug level) */
    usleep(100 * 1000);
    char *log = pd_read_file(S.log_path);
    cr_assert_not_null(log);
    for (size_t i = 0; i < n; i++) {
        char want[128];
        snprintf(want, sizeof want, "\"request_id\":\"req-%zu_client.side:42\"", i);
        const char *line = strstr(log, want);
        cr_assert_not_null(line, "no log line names %s", want);
        const char *start = line;
        while (start > log && start[-1] != '\n')
            start--;
        cr_assert(strstr(start, c[i].method) && strstr(start, "-> ") && strstr(start, "-> ") < line,
                  "the line naming %s is not this request's access line", want);
    }
    free(log);
    stop_clean();
}

/* The raw answers promptd writes before a request exists still name one. */
Test(ratelimit_http, a_request_target_too_long_still_gets_a_request_id)
{
    start("10", "0");
    /* by hand: the harness's URLs are shorter than the server's limit */
    static char req[6000], resp[2048];
    int n = snprintf(req, sizeof req, "GET /prompts?q=%05000d HTTP/1.1\r\nHost: x\r\nX-Request-Id: mine\r\n\r\n", 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect");
    cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    size_t got = 0;
    ssize_t k;
    while (got < sizeof resp - 1 && (k = recv(fd, resp + got, sizeof resp - 1 - got, 0)) > 0)
        got += (size_t)k;
    resp[got] = '\0';
    close(fd);
    cr_assert(strncmp(resp, "HTTP/1.1 414 ", 13) == 0, "%s", resp);
    const char *id = strstr(resp, "\r\nX-Request-Id: ");
    cr_assert_not_null(id, "414 without X-Request-Id:\n%s", resp);
    char val[64] = "";
    sscanf(id + 16, "%63[^\r]", val);
    cr_assert(looks_like_uuid(val), "X-Request-Id '%s'", val);
    stop_clean();
}

/* ---------------------------------------------------------------- settings */

Test(ratelimit_http, bad_rate_limit_settings_stop_the_start_with_a_message)
{
    char dir[256], db[300], cfg[300];
    cr_assert_eq(pd_mkdtemp(dir, sizeof dir), 0);
    snprintf(db, sizeof db, "%s/p.db", dir);
    snprintf(cfg, sizeof cfg, "%s/c.json", dir);
    const char *args[] = {"serve", "--listen", "127.0.0.1:0", "--db", db, NULL};
    const char *bad[][2] = {
        {"PROMPTD_RATE_LIMIT_PER_ADDRESS=-1", "PROMPTD_RATE_LIMIT_PER_ADDRESS"},
        {"PROMPTD_RATE_LIMIT_PER_ADDRESS=lots", "PROMPTD_RATE_LIMIT_PER_ADDRESS"},
        {"PROMPTD_RATE_LIMIT_KEY_WINDOW=0", "PROMPTD_RATE_LIMIT_KEY_WINDOW"},
        {"PROMPTD_RATE_LIMIT_USER_WINDOW=31622401", "PROMPTD_RATE_LIMIT_USER_WINDOW"},
        {"PROMPTD_RATE_LIMIT_ADDRESS_WINDOW=-5", "PROMPTD_RATE_LIMIT_ADDRESS_WINDOW"},
    };
    char err[2048];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *env[] = {bad[i][0], NULL};
        int rc = pd_run(args, env, 20000, NULL, 0, err, sizeof err);
        cr_assert_neq(rc, 0, "%s: promptd started", bad[i][0]);
        cr_assert_not_null(strstr(err, bad[i][1]), "%s: the message does not name the setting:\n%s", bad[i][0], err);
    }
    /* the config file's keys are checked too */
    FILE *f = fopen(cfg, "w");
    cr_assert_not_null(f);
    fputs("{\"rate_limit_address_window_s\": 0}", f);
    fclose(f);
    char with_cfg[320];
    snprintf(with_cfg, sizeof with_cfg, "PROMPTD_CONFIG=%s", cfg);
    const char *env[] = {with_cfg, NULL};
    cr_assert_neq(pd_run(args, env, 20000, NULL, 0, err, sizeof err), 0, "promptd started");
    cr_assert_not_null(strstr(err, "rate_limit_address_window_s"), "%s", err);
    pd_rmrf(dir);
}
