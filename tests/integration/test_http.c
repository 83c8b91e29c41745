/*
 * test_http.c — the HTTP edge over real connections: keep-alive, the public
 * health probe, HEAD, unknown routes in both envelopes, 405 with Allow, body
 * parsing errors (400 / 415), the body limit (413, declared and chunked),
 * 100 concurrent clients, the header deadline against slow clients
 * (PROMPTD_HEADER_TIMEOUT), and requests that become readable 128 at a time
 * (at the end). Every test has its own promptd (fixtures).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "support/harness.h"
#include "support/mock_proc.h"

static pd_server S;

/* Last step of the tests that exercise the most code: promptd must exit 0 on
 * SIGTERM, which under SAN=1 also means no leak or sanitizer report. */
#define ASSERT_CLEAN_EXIT()                                                                                            \
    cr_assert_eq(pd_stop(&S), 0, "promptd did not exit 0 on SIGTERM (its log is above if a sanitizer spoke)")

static void start_default(void) { cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start"); }
static void start_small_limit(void)
{
    const char *args[] = {"--body-limit", "1024", NULL};
    cr_assert_eq(pd_start(&S, args, NULL), 0, "promptd did not start");
}
static void stop(void) { pd_stop(&S); /* no-op when the test already stopped it */ }

TestSuite(http, .init = start_default, .fini = stop, .timeout = 60);
TestSuite(limits, .init = start_small_limit, .fini = stop, .timeout = 60);

/* Assert a Jarvis error envelope with this status and code. */
static void assert_jarvis_error(const pd_resp *r, long status, const char *code)
{
    char want[8];
    snprintf(want, sizeof want, "%ld", status);
    cr_assert_eq(r->status, status, "want %ld, got %ld: %s", status, r->status, r->body);
    cr_assert_not_null(r->json, "error body is not JSON: %s", r->body);
    cr_assert(json_is_array(pd_json_at(r->json, "errors")), "no errors array: %s", r->body);
    cr_assert_eq(json_array_size(pd_json_at(r->json, "errors")), 1);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.status"), want, "%s", r->body);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.code"), code, "%s", r->body);
    cr_assert_not_null(pd_str_at(r->json, "errors.0.title"), "%s", r->body);
    cr_assert_not_null(pd_str_at(r->json, "errors.0.detail"), "%s", r->body);
    const char *ct = pd_header(r, "Content-Type");
    cr_assert(ct && strstr(ct, "json"), "Content-Type of an error: %s", ct ? ct : "(none)");
}

/* ---------------------------------------------------------------- basics */

Test(http, health_is_public)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/health", NULL, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "status"), "ok");
    cr_assert_not_null(pd_str_at(r.json, "version"), "%s", r.body);
    pd_resp_free(&r);
}

Test(http, head_works)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, "HEAD", "/health", NULL, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 0, "HEAD answered with a body");
    pd_resp_free(&r);

    cr_assert_eq(pd_req(&S, "HEAD", "/prompts", S.admin_key, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.len, 0);
    pd_resp_free(&r);

    cr_assert_eq(pd_req(&S, "HEAD", "/prompts", NULL, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 401, "HEAD without a key: %ld", r.status);
    pd_resp_free(&r);

    cr_assert_eq(pd_req(&S, "HEAD", "/no/such/route", NULL, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 404);
    pd_resp_free(&r);
}

Test(http, keep_alive_is_kept)
{
    CURL *h = curl_easy_init();
    cr_assert_not_null(h);
    char id[64] = "", path[128];
    const char *const text[] = {"Content-Type: text/plain", NULL};
    const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
    struct {
        const char *method, *path, *key, *body;
        const char *const *headers;
        long status;
    } steps[] = {
        {"GET", "/health", NULL, NULL, NULL, 200},
        {"POST", "/prompts", S.admin_key, "{\"prompt\":{\"name\":\"ka\",\"content\":\"hi {{x}}\"}}", NULL, 201},
        {"GET", NULL /* the prompt */, S.admin_key, NULL, NULL, 200},
        {"GET", "/prompts", S.admin_key, NULL, NULL, 200},
        {"GET", "/no/such/route", S.admin_key, NULL, NULL, 404},
        {"GET", "/prompts", NULL, NULL, NULL, 401},
        {"POST", "/prompts", NULL, "{\"prompt\":{\"name\":\"nokey\",\"content\":\"x\"}}", NULL, 401},
        {"POST", "/prompts", S.admin_key, "{\"prompt\":{\"name\":\"x\",\"content\":\"y\"}}", text, 415},
        {"POST", "/prompts", S.admin_key, "{\"prompt\":{\"name\":\"chunked\",\"content\":\"y\"}}", chunked, 201},
        {"PATCH", "/prompts", S.admin_key, "{}", NULL, 405},
        {"POST", "/prompts", S.admin_key, "{\"prompt\":", NULL, 400},
        {"POST", "/prompts", S.admin_key, "{}", NULL, 422},
        {"DELETE", NULL, S.admin_key, NULL, NULL, 204},
        {"HEAD", "/health", NULL, NULL, NULL, 200},
        {"GET", "/health", NULL, NULL, NULL, 200},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        pd_resp r;
        const char *p = steps[i].path;
        if (!p) {
            snprintf(path, sizeof path, "/prompts/%s", id);
            p = path;
        }
        cr_assert_eq(pd_req_on(h, &S, steps[i].method, p, steps[i].key, steps[i].body, steps[i].headers, &r), 0,
                     "step %zu: %s", i, r.error);
        cr_assert_eq(r.status, steps[i].status, "step %zu %s %s: want %ld got %ld %s", i, steps[i].method, p,
                     steps[i].status, r.status, r.body);
        if (i == 1)
            snprintf(id, sizeof id, "%s", pd_str_at(r.json, "data.id") ? pd_str_at(r.json, "data.id") : "");
        if (i > 0)
            cr_expect_eq(r.num_connects, 0, "step %zu %s %s (%ld) opened a new connection", i, steps[i].method, p,
                         r.status);
        const char *conn = pd_header(&r, "Connection");
        cr_expect(!conn || strcasecmp(conn, "close") != 0, "step %zu %s %s (%ld) answered Connection: close", i,
                  steps[i].method, p, r.status);
        pd_resp_free(&r);
    }
    curl_easy_cleanup(h);
    ASSERT_CLEAN_EXIT();
}

/* ---------------------------------------------------------------- routes */

Test(http, unknown_route_is_jarvis_404)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/nope", S.admin_key, NULL, NULL, &r), 0, "%s", r.error);
    assert_jarvis_error(&r, 404, "not_found");
    pd_resp_free(&r);
    /* unknown routes answer 404 before asking for credentials */
    cr_assert_eq(pd_req(&S, "POST", "/prompts/x/y/z/w", NULL, "{}", NULL, &r), 0, "%s", r.error);
    assert_jarvis_error(&r, 404, "not_found");
    pd_resp_free(&r);
}

Test(http, unknown_v1_route_uses_v1_envelope)
{
    const char *paths[] = {"/api/v1/nothing-here", "/api/v1/prompts/x/y/z", "/api/v1"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        pd_resp r;
        cr_assert_eq(pd_req(&S, "GET", paths[i], NULL, NULL, NULL, &r), 0, "%s", r.error);
        cr_assert_eq(r.status, 404, "%s: %ld %s", paths[i], r.status, r.body);
        cr_assert_not_null(r.json, "%s", r.body);
        cr_assert(json_is_false(pd_json_at(r.json, "success")), "%s", r.body);
        cr_assert_str_eq(pd_str_at(r.json, "error.code"), "NOT_FOUND", "%s", r.body);
        cr_assert_not_null(pd_str_at(r.json, "error.message"), "%s", r.body);
        cr_assert_not_null(pd_str_at(r.json, "message"), "%s", r.body);
        cr_assert_null(pd_json_at(r.json, "errors"), "v1 answer in the Jarvis envelope: %s", r.body);
        pd_resp_free(&r);
    }
}

Test(http, method_not_allowed_lists_allow)
{
    struct {
        const char *method, *path;
        const char *must[4];
    } cases[] = {
        {"PATCH", "/prompts", {"GET", "POST", NULL}},
        {"DELETE", "/prompts", {"GET", "POST", NULL}},
        {"PUT", "/prompts", {"GET", "POST", NULL}},
        {"POST", "/prompts/0190a0b0-0000-7000-8000-000000000000", {"GET", "PUT", "DELETE", NULL}},
        {"POST", "/health", {"GET", NULL}},
        {"GET", "/prompts/0190a0b0-0000-7000-8000-000000000000/like", {"PUT", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pd_resp r;
        cr_assert_eq(pd_req(&S, cases[i].method, cases[i].path, S.admin_key, NULL, NULL, &r), 0, "%s", r.error);
        assert_jarvis_error(&r, 405, "method_not_allowed");
        const char *allow = pd_header(&r, "Allow");
        cr_assert_not_null(allow, "%s %s: no Allow header", cases[i].method, cases[i].path);
        for (size_t k = 0; cases[i].must[k]; k++)
            cr_assert(strstr(allow, cases[i].must[k]), "%s %s: Allow '%s' lacks %s", cases[i].method, cases[i].path,
                      allow, cases[i].must[k]);
        cr_assert_null(strstr(allow, cases[i].method), "%s %s: Allow '%s' lists the refused method", cases[i].method,
                       cases[i].path, allow);
        pd_resp_free(&r);
    }
    ASSERT_CLEAN_EXIT();
}

Test(http, trailing_slash_and_empty_segments)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/prompts/", S.admin_key, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(json_is_array(pd_json_at(r.json, "data")));
    pd_resp_free(&r);
    cr_assert_eq(pd_req(&S, "GET", "/health/", NULL, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200, "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- body parsing */

Test(http, malformed_json_is_400)
{
    const char *bodies[] = {"{\"prompt\": ", "{prompt: 1}", "not json at all", "{\"prompt\":{\"name\":\"a\",}}",
                            "{\"a\":1} trailing"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        pd_resp r;
        cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key, bodies[i], NULL, &r), 0, "%s", r.error);
        assert_jarvis_error(&r, 400, "bad_request");
        pd_resp_free(&r);
    }
    ASSERT_CLEAN_EXIT();
}

Test(http, duplicate_keys_are_400)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key,
                        "{\"prompt\":{\"name\":\"a\",\"name\":\"b\",\"content\":\"c\"}}", NULL, &r),
                 0, "%s", r.error);
    assert_jarvis_error(&r, 400, "bad_request");
    pd_resp_free(&r);
    cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key,
                        "{\"prompt\":{\"name\":\"a\",\"content\":\"c\"},\"prompt\":{\"name\":\"b\",\"content\":\"d\"}}",
                        NULL, &r),
                 0, "%s", r.error);
    assert_jarvis_error(&r, 400, "bad_request");
    pd_resp_free(&r);
    ASSERT_CLEAN_EXIT();
}

Test(http, invalid_utf8_is_400)
{
    const char *bodies[] = {"{\"prompt\":{\"name\":\"\xff\xfe\",\"content\":\"c\"}}",
                            "{\"prompt\":{\"name\":\"ok\",\"content\":\"bad \xc3\x28 byte\"}}",
                            "{\"prompt\":{\"name\":\"overlong \xc0\xaf\",\"content\":\"c\"}}"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        pd_resp r;
        cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key, bodies[i], NULL, &r), 0, "%s", r.error);
        assert_jarvis_error(&r, 400, "bad_request");
        pd_resp_free(&r);
    }
    ASSERT_CLEAN_EXIT();
}

Test(http, non_json_content_type_is_415)
{
    struct {
        const char *const headers[2];
        const char *body;
    } cases[] = {
        {{"Content-Type: text/plain", NULL}, "{\"prompt\":{\"name\":\"a\",\"content\":\"b\"}}"},
        {{"Content-Type: application/xml", NULL}, "{\"prompt\":{\"name\":\"a\",\"content\":\"b\"}}"},
        {{"Content-Type: multipart/form-data; boundary=x", NULL}, "{\"prompt\":{\"name\":\"a\",\"content\":\"b\"}}"},
        {{"Content-Type: application/jsonx", NULL}, "{\"prompt\":{\"name\":\"a\",\"content\":\"b\"}}"},
        {{"Content-Type: application/x-www-form-urlencoded", NULL}, "prompt[name]=a&prompt[content]=b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pd_resp r;
        cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key, cases[i].body, cases[i].headers, &r), 0, "%s",
                     r.error);
        assert_jarvis_error(&r, 415, "unsupported_media_type");
        pd_resp_free(&r);
    }
    /* nothing was created */
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/prompts", S.admin_key, NULL, NULL, &r), 0);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 0, "%s", r.body);
    pd_resp_free(&r);
    ASSERT_CLEAN_EXIT();
}

Test(http, json_content_types_are_accepted)
{
    const char *const types[][2] = {{"Content-Type: application/json; charset=utf-8", NULL},
                                    {"Content-Type: application/vnd.api+json", NULL},
                                    {"Content-Type: APPLICATION/JSON", NULL}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        pd_resp r;
        cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key, "{\"prompt\":{\"name\":\"a\",\"content\":\"b\"}}",
                            types[i], &r),
                     0, "%s", r.error);
        cr_assert_eq(r.status, 201, "%s: %ld %s", types[i][0], r.status, r.body);
        pd_resp_free(&r);
    }
}

/* `curl -d '{...}'` labels its body application/x-www-form-urlencoded: a JSON object body is taken. */
Test(http, curl_d_form_label_with_a_json_object_is_accepted)
{
    const char *const form[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    pd_resp r;
    cr_assert_eq(
        pd_req(&S, "POST", "/prompts", S.admin_key, "{\"prompt\":{\"name\":\"a\",\"content\":\"b\"}}", form, &r), 0,
        "%s", r.error);
    cr_assert_eq(r.status, 201, "%ld %s", r.status, r.body);
    pd_resp_free(&r);
}

Test(http, body_that_is_not_an_object_is_422)
{
    const char *bodies[] = {"[1,2]", "\"text\"", "42", "null"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        pd_resp r;
        cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key, bodies[i], NULL, &r), 0, "%s", r.error);
        assert_jarvis_error(&r, 422, "unprocessable_entity");
        pd_resp_free(&r);
    }
}

/* Odd requests of every kind: each gets a 4xx (or 2xx), never a 5xx, and the server stays up. */
Test(http, never_a_5xx)
{
    char longpath[3000];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    char deep[256] = "";
    for (int i = 0; i < 20; i++)
        strcat(deep, "/x");
    const char *const garbage_ct[] = {"Content-Type: ;;;", NULL};
    const char *const no_ct[] = {"Content-Type:", NULL};
    struct {
        const char *method, *path, *key, *body;
        const char *const *headers;
    } cases[] = {
        {"GET", longpath, S.admin_key, NULL, NULL},
        {"GET", deep, S.admin_key, NULL, NULL},
        {"GET", "/prompts/%00", S.admin_key, NULL, NULL},
        {"GET", "/prompts/..%2F..%2Fetc%2Fpasswd", S.admin_key, NULL, NULL},
        {"GET", "/prompts?page=%FF&records=%00", S.admin_key, NULL, NULL},
        {"GET", "/prompts?search=%22%2A%3A()%5E-OR-NEAR", S.admin_key, NULL, NULL},
        {"GET", "/prompts?search=***", S.admin_key, NULL, NULL},
        {"GET", "/prompts?search=a%20AND%20b%20NOT%20c", S.admin_key, NULL, NULL},
        {"GET", "/prompts?page=99999999999999999999", S.admin_key, NULL, NULL},
        {"GET", "/prompts?records=-1", S.admin_key, NULL, NULL},
        {"POST", "/prompts", S.admin_key, "{\"prompt\":{\"name\":\"a\",\"content\":\"b\"}}", garbage_ct},
        {"POST", "/prompts", S.admin_key, "{\"prompt\":{\"name\":\"a\",\"content\":\"b\"}}", no_ct},
        {"POST", "/prompts", S.admin_key, "{\"prompt\":{\"name\":\"a\\u0000b\",\"content\":\"b\"}}", NULL},
        {"POST", "/prompts", S.admin_key, "{\"prompt\":{\"name\":1e999,\"content\":\"b\"}}", NULL},
        {"POST", "/prompts", S.admin_key,
         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", NULL},
        {"POST", "/prompts", S.admin_key, "   ", NULL},
        {"POST", "/prompts/0190a0b0-0000-7000-8000-000000000000/render", S.admin_key, "{\"variables\":[1]}", NULL},
        {"PUT", "/prompts/not-a-uuid", S.admin_key, "{\"prompt\":{}}", NULL},
        {"DELETE", "/prompts/ZZZZZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZZZZZZZZZ", S.admin_key, NULL, NULL},
        {"GET", "/prompts", "\x01\x02", NULL, NULL},
        {"GET", "/prompts", "pk_live_", NULL, NULL},
        {"OPTIONS", "/prompts", S.admin_key, NULL, NULL},
        {"TRACE", "/prompts", S.admin_key, NULL, NULL},
        {"BREW", "/prompts", S.admin_key, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pd_resp r;
        int rc = pd_req(&S, cases[i].method, cases[i].path, cases[i].key, cases[i].body, cases[i].headers, &r);
        if (rc == 0)
            cr_expect(r.status >= 200 && r.status < 500, "case %zu %s %.60s: got %ld %s", i, cases[i].method,
                      cases[i].path, r.status, r.body);
        pd_resp_free(&r);
    }
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/health", NULL, NULL, NULL, &r), 0, "server died: %s", r.error);
    cr_assert_eq(r.status, 200);
    pd_resp_free(&r);
    ASSERT_CLEAN_EXIT();
}

/* ---------------------------------------------------------------- body limit */

/* {"prompt":{"name":"big","content":"xxxx..."}} of exactly total bytes. */
static char *body_of_size(size_t total)
{
    static const char head[] = "{\"prompt\":{\"name\":\"big\",\"content\":\"", tail[] = "\"}}";
    size_t fixed = sizeof head - 1 + sizeof tail - 1;
    cr_assert(total > fixed);
    char *b = malloc(total + 1);
    cr_assert_not_null(b);
    memcpy(b, head, sizeof head - 1);
    memset(b + sizeof head - 1, 'x', total - fixed);
    memcpy(b + total - (sizeof tail - 1), tail, sizeof tail);
    cr_assert_eq(strlen(b), total);
    return b;
}

static void assert_still_serving(void)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/health", NULL, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200);
    pd_resp_free(&r);
    char id[64];
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "after", "still {{ok}}", id, sizeof id), 201);
}

Test(limits, body_at_the_limit_is_accepted)
{
    char *b = body_of_size(1024);
    pd_resp r;
    cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key, b, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 201, "%ld %s", r.status, r.body);
    pd_resp_free(&r);
    free(b);
    ASSERT_CLEAN_EXIT();
}

Test(limits, declared_length_over_the_limit_is_413)
{
    const size_t sizes[] = {1025, 4096, 300000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *b = body_of_size(sizes[i]);
        pd_resp r;
        cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key, b, NULL, &r), 0, "size %zu: %s", sizes[i], r.error);
        assert_jarvis_error(&r, 413, "payload_too_large");
        pd_resp_free(&r);
        /* without Expect: 100-continue the body is on its way when the answer comes */
        const char *const no_expect[] = {"Expect:", NULL};
        cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key, b, no_expect, &r), 0, "size %zu: %s", sizes[i],
                     r.error);
        assert_jarvis_error(&r, 413, "payload_too_large");
        pd_resp_free(&r);
        free(b);
    }
    assert_still_serving();
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/prompts", S.admin_key, NULL, NULL, &r), 0);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 1, "an oversized body created a prompt: %s", r.body);
    pd_resp_free(&r);
    ASSERT_CLEAN_EXIT();
}

Test(limits, chunked_body_over_the_limit_is_413)
{
    const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
    const size_t sizes[] = {1025, 5000, 200000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *b = body_of_size(sizes[i]);
        pd_resp r;
        cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key, b, chunked, &r), 0, "size %zu: %s", sizes[i], r.error);
        assert_jarvis_error(&r, 413, "payload_too_large");
        pd_resp_free(&r);
        free(b);
    }
    /* a small chunked body is fine */
    pd_resp r;
    char *small = body_of_size(900);
    cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key, small, chunked, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 201, "%ld %s", r.status, r.body);
    pd_resp_free(&r);
    free(small);
    assert_still_serving();
    ASSERT_CLEAN_EXIT();
}

Test(limits, connection_survives_a_chunked_413)
{
    CURL *h = curl_easy_init();
    const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
    char *b = body_of_size(3000);
    pd_resp r;
    cr_assert_eq(pd_req_on(h, &S, "POST", "/prompts", S.admin_key, b, chunked, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 413);
    pd_resp_free(&r);
    cr_assert_eq(pd_req_on(h, &S, "GET", "/health", NULL, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200);
    pd_resp_free(&r);
    free(b);
    curl_easy_cleanup(h);
    ASSERT_CLEAN_EXIT();
}

/* ---------------------------------------------------------------- concurrency */

#define NCLIENTS 100

typedef struct client {
    pthread_t t;
    int n;
    long status;
    char id[64];
    char error[CURL_ERROR_SIZE];
} client;

static void *client_run(void *arg)
{
    client *c = arg;
    char name[32];
    snprintf(name, sizeof name, "concurrent %d", c->n);
    char *body = pd_pack("{s:{s:s, s:s}}", "prompt", "name", name, "content", "Hello {{who}}");
    pd_resp r;
    if (pd_req(&S, "POST", "/prompts", S.admin_key, body, NULL, &r) == 0) {
        c->status = r.status;
        const char *id = pd_str_at(r.json, "data.id");
        snprintf(c->id, sizeof c->id, "%s", id ? id : "");
    } else {
        c->status = -1;
        snprintf(c->error, sizeof c->error, "%s", r.error);
    }
    pd_resp_free(&r);
    free(body);
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

Test(http, hundred_concurrent_creates)
{
    static client clients[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        clients[i].n = i;
        cr_assert_eq(pthread_create(&clients[i].t, NULL, client_run, &clients[i]), 0);
    }
    for (int i = 0; i < NCLIENTS; i++)
        pthread_join(clients[i].t, NULL);
    char *ids[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        cr_expect_eq(clients[i].status, 201, "client %d: %ld %s", i, clients[i].status, clients[i].error);
        ids[i] = clients[i].id;
    }
    qsort(ids, NCLIENTS, sizeof ids[0], cmp_str);
    for (int i = 1; i < NCLIENTS; i++)
        cr_assert_str_neq(ids[i - 1], ids[i], "two creates got the same id");

    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/prompts?records=100", S.admin_key, NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), NCLIENTS, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 1);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), NCLIENTS);
    pd_resp_free(&r);
    ASSERT_CLEAN_EXIT();
}

/* ---------------------------------------------------------------- header deadline
 *
 * promptd with PROMPTD_HEADER_TIMEOUT=2 (and the mock provider, for requests
 * that wait on a model). These clients speak raw HTTP over a socket, so the
 * test decides when every byte goes out. Rule under test (server.c, "header
 * deadline"): a request's headers must be complete 2 s after its connection
 * was accepted, or, on a keep-alive connection, after the bytes of the new
 * request are first seen (between 2 and 4 s after its first byte); an idle
 * keep-alive connection is left to the idle timeout (30 s); once the headers
 * are complete the request is never cut by this deadline.
 */

#define HDR_LIMIT_MS 2000
#define HDR_SCAN_MS 500 /* the watchdog's period (HTTP_HEADER_SCAN_MS) */

static mock_proc M;

static void start_header_deadline(void)
{
    cr_assert_eq(mock_proc_start(&M, NULL), 0, "mock did not start");
    static char oa[160];
    snprintf(oa, sizeof oa, "OPENAI_BASE_URL=%s/v1", M.base_url);
    const char *env[] = {"PROMPTD_HEADER_TIMEOUT=2", oa, "OPENAI_API_KEY=x", NULL};
    cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start");
}
static void stop_header_deadline(void)
{
    pd_stop(&S);
    mock_proc_stop(&M);
}

TestSuite(header_deadline, .init = start_header_deadline, .fini = stop_header_deadline, .timeout = 60);
TestSuite(header_deadline_off, .fini = stop, .timeout = 60);

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Extra time allowed for promptd to react: it runs 10x slower under `make valgrind`. */
static long long react_ms(long long ms)
{
    const char *vg = getenv("PD_VALGRIND");
    return vg && *vg ? ms * 10 : ms;
}

static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s", strerror(errno));
    return fd;
}

static void raw_send(int fd, const char *s)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t w = send(fd, s + off, len - off, MSG_NOSIGNAL);
        cr_assert_gt(w, 0, "send: %s", strerror(errno));
        off += (size_t)w;
    }
}

/* Send one byte of drip (cycling) every interval_ms (none when drip is NULL)
 * until the server ends the connection or max_ms pass. Returns the ms from
 * start_ms to the end of the connection, or -1 if it stayed open. What the
 * server sent goes to got (NUL-terminated). */
static long long wait_cut(int fd, const char *drip, int interval_ms, long long start_ms, long long max_ms, char *got,
                          size_t cap)
{
    size_t n = 0, di = 0;
    got[0] = '\0';
    long long next = mono_ms();
    for (;;) {
        long long now = mono_ms();
        if (now - start_ms >= max_ms)
            return -1;
        if (drip && now >= next) {
            ssize_t w = send(fd, drip + di, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                return mono_ms() - start_ms; /* EPIPE / ECONNRESET: the server is gone */
            di = drip[di + 1] ? di + 1 : 0;
            next = now + interval_ms;
        }
        long long wait = (drip ? next : start_ms + max_ms) - mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, wait > 0 ? (int)wait : 0);
        if (pr < 0 && errno != EINTR)
            cr_assert_fail("poll: %s", strerror(errno));
        if (pr > 0) {
            char buf[1024];
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0)
                return mono_ms() - start_ms; /* end of stream or reset */
            size_t k = (size_t)r < cap - 1 - n ? (size_t)r : cap - 1 - n;
            memcpy(got + n, buf, k);
            n += k;
            got[n] = '\0';
        }
    }
}

/* Read one complete answer (headers + Content-Length body) within timeout_ms; its status, 0 if none. */
static long raw_answer(int fd, int timeout_ms)
{
    char buf[8192] = "";
    size_t n = 0;
    long long until = mono_ms() + timeout_ms;
    for (;;) {
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            long status = 0;
            size_t clen = 0;
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (cl)
                clen = (size_t)strtoul(cl + 17, NULL, 10);
            if (n >= (size_t)(end + 4 - buf) + clen) {
                cr_assert_eq(n, (size_t)(end + 4 - buf) + clen, "more than one answer: %s", buf);
                if (sscanf(buf, "HTTP/1.1 %ld", &status) != 1)
                    status = 0;
                return status;
            }
        }
        long long left = until - mono_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0 || n >= sizeof buf - 1)
            return 0;
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r <= 0)
            return 0;
        n += (size_t)r;
        buf[n] = '\0';
    }
}

static void assert_health_ok(void)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/health", NULL, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200, "%s", r.body);
    pd_resp_free(&r);
}

/* A cut connection may have been sent a 408 first (best effort), never anything else. */
static void assert_only_408(const char *got)
{
    if (got[0])
        cr_assert(strncmp(got, "HTTP/1.1 408 ", 13) == 0, "the server answered a cut request: %s", got);
}

/* slowloris: the request line, then one header byte every 300 ms */
Test(header_deadline, slow_headers_are_cut)
{
    int fd = raw_connect();
    long long t0 = mono_ms();
    raw_send(fd, "GET /health HTTP/1.1\r\n");
    char got[2048];
    long long cut = wait_cut(fd, "X-Slow: a-header-that-never-ends-", 300, t0, 20000, got, sizeof got);
    close(fd);
    cr_log_info("slowloris on a new connection cut after %lld ms (limit %d ms)", cut, HDR_LIMIT_MS);
    cr_assert_neq(cut, -1, "a client dripping its headers was still connected after 20 s");
    cr_assert_geq(cut, HDR_LIMIT_MS - 100, "cut after %lld ms, before the %d ms deadline", cut, HDR_LIMIT_MS);
    cr_assert_leq(cut, HDR_LIMIT_MS + react_ms(1500), "cut only after %lld ms", cut);
    assert_only_408(got);
    assert_health_ok();
    char *log = pd_read_file(S.log_path);
    cr_assert(log && strstr(log, "to send a request's headers"), "the cut is not logged:\n%s", log ? log : "");
    free(log);
    ASSERT_CLEAN_EXIT();
}

/* The clock starts at the accept: a connection that never sends a byte is cut as well. */
Test(header_deadline, silent_new_connection_is_cut)
{
    long long t0 = mono_ms();
    int fd = raw_connect();
    char got[2048];
    long long cut = wait_cut(fd, NULL, 0, t0, 20000, got, sizeof got);
    close(fd);
    cr_log_info("silent new connection cut after %lld ms", cut);
    cr_assert_neq(cut, -1, "a connection that sent nothing was still open after 20 s");
    cr_assert_geq(cut, HDR_LIMIT_MS - 100, "cut after %lld ms", cut);
    cr_assert_leq(cut, HDR_LIMIT_MS + react_ms(1500), "cut only after %lld ms", cut);
    assert_only_408(got);
    assert_health_ok();
}

/* Headers that arrive in pieces, all within the deadline, are served. */
Test(header_deadline, headers_in_pieces_within_the_deadline)
{
    const char *pieces[] = {"GET /hea", "lth HTTP/1.1\r\n", "Host: 127.0.0.1\r\nX-A: 1", "\r\nX-B: 2\r\n", "\r\n"};
    int fd = raw_connect();
    long long t0 = mono_ms();
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        if (i)
            usleep(350 * 1000); /* 1.4 s in all */
        raw_send(fd, pieces[i]);
    }
    long status = raw_answer(fd, (int)react_ms(5000));
    cr_log_info("headers sent over %lld ms: %ld", mono_ms() - t0, status);
    cr_assert_eq(status, 200, "headers sent in pieces within the deadline: got %ld", status);
    close(fd);
}

/* A keep-alive connection idle for longer than the header deadline (but not
 * the idle timeout) is idle, not slow: its next request is served on it. */
Test(header_deadline, idle_keep_alive_outlives_the_header_deadline)
{
    CURL *h = curl_easy_init();
    cr_assert_not_null(h);
    pd_resp r;
    cr_assert_eq(pd_req_on(h, &S, "GET", "/health", NULL, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200);
    pd_resp_free(&r);
    for (int round = 0; round < 2; round++) {
        usleep((HDR_LIMIT_MS + 2 * HDR_SCAN_MS + 500) * 1000); /* 3.5 s: past the deadline and a scan after */
        cr_assert_eq(pd_req_on(h, &S, "GET", "/health", NULL, NULL, NULL, &r), 0, "round %d: %s", round, r.error);
        cr_assert_eq(r.status, 200, "round %d: %s", round, r.body);
        cr_assert_eq(r.num_connects, 0, "round %d: the idle keep-alive connection was closed", round);
        pd_resp_free(&r);
    }
    curl_easy_cleanup(h);
}

/* A slow request on a kept-alive connection is cut too: its clock starts when
 * the watchdog first sees its bytes, at most one deadline after they came. */
Test(header_deadline, slow_headers_on_a_kept_alive_connection_are_cut)
{
    int fd = raw_connect();
    raw_send(fd, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    cr_assert_eq(raw_answer(fd, (int)react_ms(5000)), 200);
    long long t0 = mono_ms();
    raw_send(fd, "GET /health HTTP/1.1\r\n");
    char got[2048];
    long long cut = wait_cut(fd, "X-Slow: a-header-that-never-ends-", 300, t0, 30000, got, sizeof got);
    close(fd);
    cr_log_info("slowloris on a kept-alive connection cut after %lld ms", cut);
    cr_assert_neq(cut, -1, "a kept-alive client dripping its headers was still connected after 30 s");
    cr_assert_geq(cut, HDR_LIMIT_MS - 100, "cut after %lld ms, before the deadline", cut);
    cr_assert_leq(cut, 2 * HDR_LIMIT_MS + react_ms(1500), "cut only after %lld ms", cut);
    assert_only_408(got);
    assert_health_ok();
}

/* Once the headers are in, the deadline is over: a request suspended on a
 * slow model, and an answer streamed for longer than the deadline, finish. */
Test(header_deadline, suspended_and_streaming_requests_are_not_cut)
{
    char pid[64];
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "msg", "{{msg}}", pid, sizeof pid), 201);
    char path[160];
    snprintf(path, sizeof path, "/prompts/%s/execute", pid);
    long long t0 = mono_ms();
    pd_resp r;
    cr_assert_eq(pd_req(&S, "POST", path, S.admin_key,
                        "{\"model\":\"openai/m\",\"variables\":{\"msg\":\"[mock:latency=3000] take your time\"}}", NULL,
                        &r),
                 0, "%s", r.error);
    long long took = mono_ms() - t0;
    cr_log_info("suspended request answered after %lld ms", took);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "mock reply: take your time", "%s", r.body);
    cr_assert_geq(took, 3000, "the request did not outlive the deadline (%lld ms)", took);
    pd_resp_free(&r);

    snprintf(path, sizeof path, "/prompts/%s/execute/stream", pid);
    t0 = mono_ms();
    cr_assert_eq(pd_req(&S, "POST", path, S.admin_key,
                        "{\"model\":\"openai/m\",\"variables\":{\"msg\":\"[mock:drip=600] one two three four five\"}}",
                        NULL, &r),
                 0, "%s", r.error);
    took = mono_ms() - t0;
    cr_log_info("streamed answer complete after %lld ms", took);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(strstr(r.body, "event: done"), "the stream did not finish: %s", r.body);
    cr_assert_geq(took, HDR_LIMIT_MS + HDR_SCAN_MS, "the stream did not outlive the deadline (%lld ms)", took);
    pd_resp_free(&r);
    ASSERT_CLEAN_EXIT();
}

/* PROMPTD_HEADER_TIMEOUT=0: no header deadline (the idle timeout alone, which each byte resets). */
Test(header_deadline_off, zero_turns_it_off)
{
    const char *env[] = {"PROMPTD_HEADER_TIMEOUT=0", "PROMPTD_IDLE_TIMEOUT=30", NULL};
    cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start");
    int fd = raw_connect();
    long long t0 = mono_ms();
    raw_send(fd, "GET /health HTTP/1.1\r\n");
    char got[2048];
    long long cut = wait_cut(fd, "X-Slow: abc", 300, t0, 3000, got, sizeof got);
    cr_assert_eq(cut, -1, "cut after %lld ms with the header deadline off", cut);
    raw_send(fd, "\r\n\r\n");
    cr_assert_eq(raw_answer(fd, (int)react_ms(5000)), 200);
    close(fd);
    ASSERT_CLEAN_EXIT();
}

Test(header_deadline_off, bad_values_are_refused)
{
    const char *bad[] = {"PROMPTD_HEADER_TIMEOUT=ten", "PROMPTD_HEADER_TIMEOUT=-1", "PROMPTD_HEADER_TIMEOUT=86401",
                         "PROMPTD_HEADER_TIMEOUT=5s"};
    char dir[256], db[300];
    cr_assert_eq(pd_mkdtemp(dir, sizeof dir), 0);
    snprintf(db, sizeof db, "%s/promptd.db", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *env[] = {bad[i], NULL};
        const char *args[] = {"serve", "--listen", "127.0.0.1:0", "--db", db, NULL};
        char err[1024];
        int rc = pd_run(args, env, 20000, NULL, 0, err, sizeof err);
        cr_assert_neq(rc, 0, "%s: promptd started", bad[i]);
        cr_assert(strstr(err, "PROMPTD_HEADER_TIMEOUT"), "%s: %s", bad[i], err);
    }
    pd_rmrf(dir);
}

/* ---------------------------------------------------------------- many requests ready at once
 *
 * libmicrohttpd 0.9.75's own epoll loop collects events 128 at a time, and
 * after an epoll_wait() that filled all 128 entries it waits again, with the
 * blocking timeout it computed before anything was ready (up to the 30 s idle
 * timeout), before it handles the connections that batch marked ready. So
 * when exactly 128, 256, ... requests arrive together and nothing follows,
 * they sit unread. SIGSTOP makes them arrive together: idle keep-alive
 * connections get their next request while promptd is stopped, and its first
 * wait after SIGCONT reports them all at once. One server thread
 * (PROMPTD_THREADS=1) puts every connection in the same epoll set.
 */

static void start_one_thread(void)
{
    const char *env[] = {"PROMPTD_THREADS=1", NULL};
    cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start");
}

TestSuite(ready_at_once, .init = start_one_thread, .fini = stop, .timeout = 60);

typedef struct raw_resp {
    char buf[2048];
    size_t len;
    int done;
    long status; /* -1: closed, reset, or an answer larger than buf */
} raw_resp;

/* Read one complete answer (headers + Content-Length body) on each of the n
 * connections within timeout_ms; returns how many arrived. */
static int read_answers(const int *fds, raw_resp *rs, int n, int timeout_ms)
{
    static struct pollfd p[512];
    static int idx[512];
    long long until = mono_ms() + timeout_ms;
    int done = 0;
    cr_assert_leq(n, 512);
    memset(rs, 0, (size_t)n * sizeof *rs);
    while (done < n) {
        long long left = until - mono_ms();
        int m = 0;
        if (left <= 0)
            break;
        for (int i = 0; i < n; i++) {
            if (!rs[i].done) {
                p[m] = (struct pollfd){.fd = fds[i], .events = POLLIN};
                idx[m++] = i;
            }
        }
        int k = poll(p, (nfds_t)m, (int)left);
        cr_assert(k >= 0 || errno == EINTR, "poll: %s", strerror(errno));
        for (int j = 0; j < m && k > 0; j++) {
            raw_resp *r = &rs[idx[j]];
            if (!p[j].revents)
                continue;
            ssize_t got = recv(fds[idx[j]], r->buf + r->len, sizeof r->buf - 1 - r->len, 0);
            if (got <= 0) {
                r->status = -1;
                r->done = 1;
                done++;
                continue;
            }
            r->len += (size_t)got;
            r->buf[r->len] = '\0';
            const char *end = strstr(r->buf, "\r\n\r\n"), *cl = strcasestr(r->buf, "\r\nContent-Length:");
            if (end && cl && r->len >= (size_t)(end + 4 - r->buf) + strtoul(cl + 17, NULL, 10)) {
                if (sscanf(r->buf, "HTTP/1.1 %ld", &r->status) != 1)
                    r->status = 0;
                r->done = 1;
                done++;
            }
        }
    }
    return done;
}

Test(ready_at_once, batches_of_128_requests_are_served)
{
    enum { N = 256 };
    static const int counts[] = {128, 256, 128, 256};
    static int fds[N];
    static raw_resp rs[N];
    const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

    for (int i = 0; i < N; i++)
        fds[i] = raw_connect();
    /* a first request on each: afterwards every connection is accepted and
     * idle in promptd, waiting for its next request */
    for (int i = 0; i < N; i++)
        raw_send(fds[i], req);
    cr_assert_eq(read_answers(fds, rs, N, (int)react_ms(10000)), N);
    for (size_t round = 0; round < sizeof counts / sizeof counts[0]; round++) {
        int n = counts[round], sent = 0;
        /* nothing may abort between SIGSTOP and SIGCONT: a stopped promptd
         * would not exit on the teardown's SIGTERM */
        int stopped = kill(S.pid, SIGSTOP);
        for (int i = 0; i < n; i++)
            sent += send(fds[i], req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1);
        usleep(100 * 1000); /* every request is in promptd's socket buffers */
        int cont = kill(S.pid, SIGCONT);
        cr_assert_eq(stopped, 0, "SIGSTOP: %s", strerror(errno));
        cr_assert_eq(cont, 0, "SIGCONT: %s", strerror(errno));
        cr_assert_eq(sent, n);
        long long t0 = mono_ms();
        int got = read_answers(fds, rs, n, (int)react_ms(2000));
        cr_log_info("round %zu: %d of %d requests answered in %lld ms", round, got, n, mono_ms() - t0);
        cr_assert_eq(got, n, "round %zu: %d of %d requests ready at once answered within 2 s", round, got, n);
        for (int i = 0; i < n; i++)
            cr_assert_eq(rs[i].status, 200, "round %zu, connection %d: %.200s", round, i, rs[i].buf);
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
    ASSERT_CLEAN_EXIT();
}
