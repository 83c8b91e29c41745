/*
 * test_mock_llm.c — checks the mock LLM provider (tests/mock/) itself, so
 * that provider tests built on it can trust it: OpenAI and Anthropic wire
 * formats (plain and streamed), auth, stats, every [mock:...] directive,
 * many concurrent waiting requests, and a clean exit on SIGTERM.
 *
 * Each test starts its own mock through mock_proc (PROMPTD_MOCK_BIN) and
 * talks to it with plain libcurl easy/multi calls.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support/mock_proc.h"

/* ---- HTTP helpers ------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len;
} buf;

typedef struct http_resp {
    CURLcode cc;
    long status;
    buf body;
    buf headers;
    double secs;
} http_resp;

static mock_proc M;

static size_t buf_write(char *data, size_t size, size_t n, void *userdata)
{
    buf *b = userdata;
    size_t add = size * n;
    char *p = realloc(b->p, b->len + add + 1);

    if (p == NULL)
        return 0;
    memcpy(p + b->len, data, add);
    b->len += add;
    p[b->len] = '\0';
    b->p = p;
    return add;
}

static void resp_free(http_resp *r)
{
    free(r->body.p);
    free(r->headers.p);
    memset(r, 0, sizeof(*r));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Prepares an easy handle for M; hdrs is a NULL-terminated list of extra
 * header lines, or NULL. The header list is returned in *hl to be freed. */
static CURL *easy_new(const char *path, const char *body, const char *const *hdrs, http_resp *r, struct curl_slist **hl)
{
    char url[256];
    CURL *e = curl_easy_init();

    cr_assert_not_null(e);
    snprintf(url, sizeof(url), "%s%s", M.base_url, path);
    *hl = NULL;
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
        *hl = curl_slist_append(*hl, hdrs[i]);
    *hl = curl_slist_append(*hl, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hl);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, buf_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, buf_write);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &r->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    if (body != NULL)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    return e;
}

/* GET when body is NULL, else POST. */
static http_resp call(const char *path, const char *body, const char *const *hdrs)
{
    http_resp r;
    struct curl_slist *hl;
    double t0 = now_s();

    memset(&r, 0, sizeof(r));
    CURL *e = easy_new(path, body, hdrs, &r, &hl);
    r.cc = curl_easy_perform(e);
    r.secs = now_s() - t0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(e);
    curl_slist_free_all(hl);
    return r;
}

static const char *const ANTHROPIC_HDRS[] = {"anthropic-version: 2023-06-01", NULL};

/* POST an OpenAI chat completion whose last user message is user. */
static http_resp openai(const char *user, const char *extra_fields)
{
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"model\":\"gpt-mock\",%s\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
             "{\"role\":\"user\",\"content\":\"%s\"}]}",
             extra_fields ? extra_fields : "", user);
    return call("/v1/chat/completions", body, NULL);
}

static http_resp anthropic(const char *user, const char *extra_fields)
{
    char body[2048];
    snprintf(body, sizeof(body),
             "{\"model\":\"claude-mock\",\"max_tokens\":100,\"system\":\"be brief\",%s"
             "\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             extra_fields ? extra_fields : "", user);
    return call("/v1/messages", body, ANTHROPIC_HDRS);
}

static json_t *parse(const http_resp *r)
{
    json_t *j = json_loads(r->body.p ? r->body.p : "", 0, NULL);
    cr_assert_not_null(j, "body is not JSON: %s", r->body.p ? r->body.p : "(none)");
    return j;
}

/* Value at a path like "choices.0.message.content". Borrowed. */
static json_t *at(json_t *j, const char *path)
{
    char tmp[256], *save = NULL;
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *k = strtok_r(tmp, ".", &save); k != NULL && j != NULL; k = strtok_r(NULL, ".", &save)) {
        if (json_is_array(j))
            j = json_array_get(j, strtoul(k, NULL, 10));
        else
            j = json_object_get(j, k);
    }
    return j;
}

static const char *str_at(json_t *j, const char *path)
{
    const char *s = json_string_value(at(j, path));
    return s ? s : "(not a string)";
}

static long long int_at(json_t *j, const char *path)
{
    json_t *v = at(j, path);
    cr_assert(json_is_integer(v), "%s is not an integer", path);
    return json_integer_value(v);
}

static bool has_header(const http_resp *r, const char *line)
{
    return r->headers.p != NULL && strcasestr(r->headers.p, line) != NULL;
}

/* ---- SSE helpers -------------------------------------------------------- */

typedef struct sse_event {
    char name[64]; /* "" when the event has no "event:" line */
    char *data;
} sse_event;

/* Splits an SSE body into events (at most max). */
static size_t sse_parse(const char *body, sse_event *ev, size_t max)
{
    size_t n = 0;
    const char *p = body;

    while (p != NULL && *p != '\0' && n < max) {
        const char *end = strstr(p, "\n\n");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *block = strndup(p, len), *save = NULL;
        memset(&ev[n], 0, sizeof(ev[n]));
        for (char *line = strtok_r(block, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (strncmp(line, "event: ", 7) == 0)
                snprintf(ev[n].name, sizeof(ev[n].name), "%s", line + 7);
            else if (strncmp(line, "data: ", 6) == 0)
                ev[n].data = strdup(line + 6);
        }
        free(block);
        n++;
        p = end ? end + 2 : NULL;
    }
    return n;
}

static void sse_free(sse_event *ev, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ev[i].data);
}

/* Concatenation of the streamed text (OpenAI delta.content or Anthropic
 * text_delta) over all events; counts pieces and unparseable data lines. */
static void sse_text(sse_event *ev, size_t n, char *out, size_t size, int *pieces, int *broken)
{
    *out = '\0';
    *pieces = *broken = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].data == NULL || strcmp(ev[i].data, "[DONE]") == 0)
            continue;
        json_t *j = json_loads(ev[i].data, 0, NULL);
        if (j == NULL) {
            (*broken)++;
            continue;
        }
        const char *t = json_string_value(at(j, "choices.0.delta.content"));
        if (t == NULL && strcmp(ev[i].name, "content_block_delta") == 0)
            t = json_string_value(at(j, "delta.text"));
        if (t != NULL) {
            strncat(out, t, size - strlen(out) - 1);
            (*pieces)++;
        }
        json_decref(j);
    }
}

/* ---- fixtures ----------------------------------------------------------- */

static void start_with(const char *const *args)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    cr_assert_eq(mock_proc_start(&M, args), 0, "cannot start the mock (PROMPTD_MOCK_BIN=%s)",
                 getenv("PROMPTD_MOCK_BIN") ? getenv("PROMPTD_MOCK_BIN") : "unset");
}

static void setup(void) { start_with(NULL); }

static void teardown(void)
{
    mock_proc_stop(&M);
    curl_global_cleanup();
}

TestSuite(mock_llm, .init = setup, .fini = teardown, .timeout = 15);
TestSuite(mock_llm_opts, .fini = teardown, .timeout = 15);

/* ---- OpenAI ------------------------------------------------------------- */

Test(mock_llm, openai_plain)
{
    http_resp r = openai("hello world", "\"temperature\":0.2,");
    json_t *j = parse(&r);

    cr_assert_eq(r.status, 200);
    cr_assert(has_header(&r, "Content-Type: application/json"));
    cr_assert_str_eq(str_at(j, "object"), "chat.completion");
    cr_assert_str_eq(str_at(j, "model"), "gpt-mock");
    cr_assert(strncmp(str_at(j, "id"), "chatcmpl-", 9) == 0);
    cr_assert(int_at(j, "created") > 1600000000);
    cr_assert_str_eq(str_at(j, "choices.0.message.role"), "assistant");
    cr_assert_str_eq(str_at(j, "choices.0.message.content"), "mock reply: hello world");
    cr_assert_str_eq(str_at(j, "choices.0.finish_reason"), "stop");
    cr_assert_eq(int_at(j, "usage.prompt_tokens"), 4); /* "be brief" + "hello world" */
    cr_assert_eq(int_at(j, "usage.completion_tokens"), 4);
    cr_assert_eq(int_at(j, "usage.total_tokens"), 8);
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, openai_max_tokens_truncates)
{
    http_resp r = openai("one two three", "\"max_tokens\":3,");
    json_t *j = parse(&r);

    cr_assert_str_eq(str_at(j, "choices.0.message.content"), "mock reply: one");
    cr_assert_str_eq(str_at(j, "choices.0.finish_reason"), "length");
    cr_assert_eq(int_at(j, "usage.completion_tokens"), 3);
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, openai_stream)
{
    http_resp r = openai("alpha  beta gamma", "\"stream\":true,\"stream_options\":{\"include_usage\":true},");
    sse_event ev[32];
    size_t n = sse_parse(r.body.p, ev, 32);
    char text[256];
    int pieces, broken;

    cr_assert_eq(r.status, 200);
    cr_assert(has_header(&r, "Content-Type: text/event-stream"));
    sse_text(ev, n, text, sizeof(text), &pieces, &broken);
    cr_assert_str_eq(text, "mock reply: alpha  beta gamma");
    cr_assert_eq(pieces, 5);
    cr_assert_eq(broken, 0);
    cr_assert_eq(n, 8, "5 pieces + finish + usage + [DONE], got %zu", n);
    json_t *first = json_loads(ev[0].data, 0, NULL), *fin = json_loads(ev[5].data, 0, NULL),
           *usage = json_loads(ev[6].data, 0, NULL);
    cr_assert_str_eq(str_at(first, "object"), "chat.completion.chunk");
    cr_assert_str_eq(str_at(first, "choices.0.delta.role"), "assistant");
    cr_assert(json_is_null(at(first, "choices.0.finish_reason")));
    cr_assert_eq(json_object_size(at(fin, "choices.0.delta")), 0);
    cr_assert_str_eq(str_at(fin, "choices.0.finish_reason"), "stop");
    cr_assert_eq(json_array_size(at(usage, "choices")), 0);
    cr_assert_eq(int_at(usage, "usage.prompt_tokens"), 5);
    cr_assert_eq(int_at(usage, "usage.completion_tokens"), 5);
    cr_assert_str_eq(ev[7].data, "[DONE]");
    json_decref(first);
    json_decref(fin);
    json_decref(usage);
    sse_free(ev, n);
    resp_free(&r);
}

Test(mock_llm, openai_stream_without_usage_option)
{
    http_resp r = openai("hi", "\"stream\":true,");
    cr_assert_eq(r.status, 200);
    cr_assert_null(strstr(r.body.p, "\"usage\""));
    cr_assert_not_null(strstr(r.body.p, "data: [DONE]\n\n"));
    resp_free(&r);
}

/* ---- Anthropic ---------------------------------------------------------- */

Test(mock_llm, anthropic_plain)
{
    http_resp r = anthropic("hello there world", NULL);
    json_t *j = parse(&r);

    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(str_at(j, "type"), "message");
    cr_assert_str_eq(str_at(j, "role"), "assistant");
    cr_assert_str_eq(str_at(j, "model"), "claude-mock");
    cr_assert(strncmp(str_at(j, "id"), "msg_", 4) == 0);
    cr_assert_str_eq(str_at(j, "content.0.type"), "text");
    cr_assert_str_eq(str_at(j, "content.0.text"), "mock reply: hello there world");
    cr_assert_str_eq(str_at(j, "stop_reason"), "end_turn");
    cr_assert(json_is_null(at(j, "stop_sequence")));
    cr_assert_eq(int_at(j, "usage.input_tokens"), 5); /* system counts */
    cr_assert_eq(int_at(j, "usage.output_tokens"), 5);
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, anthropic_needs_version_header)
{
    http_resp r = call("/v1/messages",
                       "{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL);
    json_t *j = parse(&r);

    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(str_at(j, "type"), "error");
    cr_assert_str_eq(str_at(j, "error.type"), "invalid_request_error");
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, anthropic_stream)
{
    static const char *const names[] = {"message_start",       "content_block_start", "content_block_delta",
                                        "content_block_delta", "content_block_delta", "content_block_stop",
                                        "message_delta",       "message_stop"};
    http_resp r = anthropic("a b", "\"stream\":true,");
    sse_event ev[32];
    size_t n = sse_parse(r.body.p, ev, 32);
    char text[256];
    int pieces, broken;

    cr_assert_eq(r.status, 200);
    cr_assert(has_header(&r, "Content-Type: text/event-stream"));
    cr_assert_eq(n, 9, "got %zu events", n); /* 4 pieces: mock, reply:, a, b */
    sse_text(ev, n, text, sizeof(text), &pieces, &broken);
    cr_assert_str_eq(text, "mock reply: a b");
    cr_assert_eq(pieces, 4);
    for (size_t i = 0; i < 2; i++)
        cr_assert_str_eq(ev[i].name, names[i]);
    cr_assert_str_eq(ev[6].name, "content_block_stop");
    cr_assert_str_eq(ev[7].name, "message_delta");
    cr_assert_str_eq(ev[8].name, "message_stop");
    json_t *start = json_loads(ev[0].data, 0, NULL), *delta = json_loads(ev[2].data, 0, NULL),
           *md = json_loads(ev[7].data, 0, NULL);
    cr_assert_eq(int_at(start, "message.usage.input_tokens"), 4);
    cr_assert_str_eq(str_at(delta, "delta.type"), "text_delta");
    cr_assert_eq(int_at(delta, "index"), 0);
    cr_assert_str_eq(str_at(md, "delta.stop_reason"), "end_turn");
    cr_assert_eq(int_at(md, "usage.output_tokens"), 4);
    json_decref(start);
    json_decref(delta);
    json_decref(md);
    sse_free(ev, n);
    resp_free(&r);
}

Test(mock_llm, anthropic_max_tokens_stop_reason)
{
    http_resp r = call("/v1/messages",
                       "{\"model\":\"c\",\"max_tokens\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x y\"}]}",
                       ANTHROPIC_HDRS);
    json_t *j = parse(&r);

    cr_assert_str_eq(str_at(j, "content.0.text"), "mock reply:");
    cr_assert_str_eq(str_at(j, "stop_reason"), "max_tokens");
    cr_assert_eq(int_at(j, "usage.output_tokens"), 2);
    json_decref(j);
    resp_free(&r);
}

/* ---- other routes ------------------------------------------------------- */

Test(mock_llm, models_stats_reset)
{
    http_resp r = call("/v1/models", NULL, NULL);
    json_t *j = parse(&r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(str_at(j, "object"), "list");
    cr_assert_str_eq(str_at(j, "data.0.id"), "mock-1");
    json_decref(j);
    resp_free(&r);

    r = openai("one", NULL);
    resp_free(&r);
    r = anthropic("two", NULL);
    resp_free(&r);
    r = call("/_mock/stats", NULL, NULL);
    j = parse(&r);
    cr_assert_eq(int_at(j, "requests"), 2);
    cr_assert_eq(int_at(j, "in_flight"), 0);
    cr_assert_eq(int_at(j, "max_in_flight"), 1);
    json_decref(j);
    resp_free(&r);

    r = call("/_mock/reset", "", NULL);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
    r = call("/_mock/stats", NULL, NULL);
    j = parse(&r);
    cr_assert_eq(int_at(j, "requests"), 0);
    cr_assert_eq(int_at(j, "max_in_flight"), 0);
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm_opts, require_key)
{
    static const char *const args[] = {"--require-key", "sekrit", NULL};
    static const char *const oa_good[] = {"Authorization: Bearer sekrit", NULL};
    static const char *const an_bad[] = {"anthropic-version: 2023-06-01", "x-api-key: nope", NULL};
    static const char *const an_good[] = {"anthropic-version: 2023-06-01", "x-api-key: sekrit", NULL};
    const char *oa = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    const char *an = "{\"model\":\"m\",\"max_tokens\":9,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

    start_with(args);
    http_resp r = call("/v1/chat/completions", oa, NULL);
    json_t *j = parse(&r);
    cr_assert_eq(r.status, 401);
    cr_assert_str_eq(str_at(j, "error.code"), "invalid_api_key");
    cr_assert(json_is_string(at(j, "error.message")));
    json_decref(j);
    resp_free(&r);

    r = call("/v1/chat/completions", oa, oa_good);
    cr_assert_eq(r.status, 200);
    resp_free(&r);

    r = call("/v1/messages", an, an_bad);
    j = parse(&r);
    cr_assert_eq(r.status, 401);
    cr_assert_str_eq(str_at(j, "type"), "error");
    cr_assert_str_eq(str_at(j, "error.type"), "authentication_error");
    json_decref(j);
    resp_free(&r);

    r = call("/v1/messages", an, an_good);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
}

/* ---- directives --------------------------------------------------------- */

Test(mock_llm_opts, global_latency)
{
    static const char *const args[] = {"--latency-ms", "250", NULL};

    start_with(args);
    http_resp r = openai("slow", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert(r.secs >= 0.24, "answered after %.3f s", r.secs);
    resp_free(&r);
    r = call("/_mock/stats", NULL, NULL); /* control routes do not wait */
    cr_assert(r.secs < 0.2, "stats took %.3f s", r.secs);
    resp_free(&r);
}

Test(mock_llm, latency_directive_and_cleanup)
{
    http_resp r = openai("[mock:latency=300] slow [mock:no_such_thing] one  two", NULL);
    json_t *j = parse(&r);

    cr_assert(r.secs >= 0.29, "answered after %.3f s", r.secs);
    cr_assert_str_eq(str_at(j, "choices.0.message.content"), "mock reply: slow one  two");
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, status_and_retry_after)
{
    http_resp r = openai("x [mock:status=429] [mock:retry_after=7]", NULL);
    json_t *j = parse(&r);
    cr_assert_eq(r.status, 429);
    cr_assert(has_header(&r, "Retry-After: 7"));
    cr_assert(json_is_string(at(j, "error.message")));
    cr_assert(json_is_string(at(j, "error.type")));
    cr_assert_not_null(at(j, "error.code"));
    json_decref(j);
    resp_free(&r);

    r = anthropic("x [mock:status=529]", NULL);
    j = parse(&r);
    cr_assert_eq(r.status, 529);
    cr_assert(!has_header(&r, "Retry-After"));
    cr_assert_str_eq(str_at(j, "type"), "error");
    cr_assert_str_eq(str_at(j, "error.type"), "overloaded_error");
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, fail_times)
{
    long want[] = {500, 500, 200, 200};
    http_resp r;

    for (size_t i = 0; i < 4; i++) {
        r = openai("retry me [mock:fail_times=2]", NULL);
        cr_assert_eq(r.status, want[i], "attempt %zu: %ld", i, r.status);
        resp_free(&r);
    }
    r = openai("other text [mock:fail_times=2]", NULL); /* its own counter */
    cr_assert_eq(r.status, 500);
    resp_free(&r);
    r = call("/_mock/reset", "", NULL);
    resp_free(&r);
    r = anthropic("retry me [mock:fail_times=2]", NULL);
    json_t *j = parse(&r);
    cr_assert_eq(r.status, 500);
    cr_assert_str_eq(str_at(j, "error.type"), "api_error");
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, fail_model)
{
    http_resp r = openai("x [mock:fail_model=gpt-mock]", NULL);
    cr_assert_eq(r.status, 500);
    resp_free(&r);
    r = openai("x [mock:fail_model=other-model]", NULL);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
}

Test(mock_llm, malformed)
{
    http_resp r = openai("x [mock:malformed]", NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_null(json_loads(r.body.p, 0, NULL));
    resp_free(&r);

    r = anthropic("x [mock:malformed]", "\"stream\":true,");
    sse_event ev[32];
    size_t n = sse_parse(r.body.p, ev, 32);
    char text[256];
    int pieces, broken;
    sse_text(ev, n, text, sizeof(text), &pieces, &broken);
    cr_assert_eq(broken, 1);
    sse_free(ev, n);
    resp_free(&r);
}

Test(mock_llm, no_usage)
{
    http_resp r = openai("x [mock:no_usage]", NULL);
    json_t *j = parse(&r);
    cr_assert_null(at(j, "usage"));
    cr_assert_str_eq(str_at(j, "choices.0.message.content"), "mock reply: x");
    json_decref(j);
    resp_free(&r);

    r = openai("x [mock:no_usage]", "\"stream\":true,\"stream_options\":{\"include_usage\":true},");
    cr_assert_null(strstr(r.body.p, "usage"));
    resp_free(&r);

    r = anthropic("x [mock:no_usage]", "\"stream\":true,");
    cr_assert_null(strstr(r.body.p, "usage"));
    resp_free(&r);
}

Test(mock_llm, bad_types)
{
    http_resp r = openai("x [mock:bad_types]", NULL);
    json_t *j = parse(&r);
    cr_assert_eq(r.status, 200);
    cr_assert(json_is_integer(at(j, "choices.0.message.content")));
    cr_assert(json_is_string(at(j, "usage.prompt_tokens")));
    json_decref(j);
    resp_free(&r);

    r = anthropic("x [mock:bad_types]", NULL);
    j = parse(&r);
    cr_assert(json_is_integer(at(j, "content.0.text")));
    cr_assert(json_is_string(at(j, "usage.output_tokens")));
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, drop)
{
    http_resp r = openai("x [mock:drop]", NULL);
    cr_assert_eq(r.cc, CURLE_GOT_NOTHING, "curl said %s", curl_easy_strerror(r.cc));
    resp_free(&r);

    r = openai("x y z [mock:drop]", "\"stream\":true,");
    cr_assert_neq(r.cc, CURLE_OK);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(r.body.p);
    cr_assert_not_null(strstr(r.body.p, "\"content\":\"mock \""));
    cr_assert_null(strstr(r.body.p, "reply:"));
    resp_free(&r);

    r = openai("still alive", NULL);
    cr_assert_eq(r.status, 200);
    resp_free(&r);
}

Test(mock_llm, drip)
{
    http_resp r = anthropic("a b [mock:drip=150]", "\"stream\":true,");
    sse_event ev[32];
    size_t n = sse_parse(r.body.p, ev, 32);
    char text[256];
    int pieces, broken;

    sse_text(ev, n, text, sizeof(text), &pieces, &broken);
    cr_assert_str_eq(text, "mock reply: a b");
    cr_assert(r.secs >= 0.44, "4 pieces 150 ms apart took %.3f s", r.secs);
    cr_assert(r.secs < 2.0, "took %.3f s", r.secs);
    sse_free(ev, n);
    resp_free(&r);

    r = openai("a [mock:drip=500]", NULL); /* ignored without stream */
    cr_assert(r.secs < 0.4);
    resp_free(&r);
}

Test(mock_llm, echo_request)
{
    http_resp r = openai("show me [mock:echo_request]", "\"temperature\":0.5,");
    json_t *j = parse(&r);
    json_t *echo = json_loads(str_at(j, "choices.0.message.content"), 0, NULL);

    cr_assert_not_null(echo);
    cr_assert_str_eq(str_at(echo, "model"), "gpt-mock");
    cr_assert_str_eq(str_at(echo, "messages.0.content"), "be brief");
    cr_assert_str_eq(str_at(echo, "messages.1.content"), "show me [mock:echo_request]");
    cr_assert(json_real_value(at(echo, "temperature")) == 0.5);
    json_decref(echo);
    json_decref(j);
    resp_free(&r);
}

/* ---- scale and lifecycle ------------------------------------------------ */

Test(mock_llm, many_waiting_requests)
{
    enum { N = 300 };
    static http_resp rs[N];
    struct curl_slist *hl[N];
    CURL *es[N];
    CURLM *multi = curl_multi_init();
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"wait [mock:latency=700]\"}]}";
    double t0 = now_s();
    int running = 0, ok = 0;

    cr_assert_not_null(multi);
    for (int i = 0; i < N; i++) {
        es[i] = easy_new("/v1/chat/completions", body, NULL, &rs[i], &hl[i]);
        curl_multi_add_handle(multi, es[i]);
    }
    do {
        cr_assert_eq(curl_multi_perform(multi, &running), CURLM_OK);
        if (running)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    } while (running);
    double secs = now_s() - t0;
    for (int i = 0; i < N; i++) {
        long status = 0;
        curl_easy_getinfo(es[i], CURLINFO_RESPONSE_CODE, &status);
        ok += status == 200;
        curl_multi_remove_handle(multi, es[i]);
        curl_easy_cleanup(es[i]);
        curl_slist_free_all(hl[i]);
        resp_free(&rs[i]);
    }
    curl_multi_cleanup(multi);
    cr_assert_eq(ok, N);
    cr_assert(secs < 3.0, "%d requests of 0.7 s took %.2f s", N, secs);

    http_resp r = call("/_mock/stats", NULL, NULL);
    json_t *j = parse(&r);
    cr_assert_eq(int_at(j, "requests"), N);
    cr_assert(int_at(j, "max_in_flight") >= N - 10, "max_in_flight %lld", int_at(j, "max_in_flight"));
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, sigterm_with_waiting_requests_exits_zero)
{
    http_resp r;
    struct curl_slist *hl;
    CURLM *multi = curl_multi_init();
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"[mock:latency=20000]\"}]}";
    CURL *e;
    int running = 1, status = -1;

    memset(&r, 0, sizeof(r));
    e = easy_new("/v1/chat/completions", body, NULL, &r, &hl);
    curl_multi_add_handle(multi, e);
    for (int i = 0; i < 5; i++) { /* let the request reach the mock */
        curl_multi_perform(multi, &running);
        curl_multi_poll(multi, NULL, 0, 50, NULL);
    }
    double t0 = now_s();
    cr_assert_eq(kill(M.pid, SIGTERM), 0);
    cr_assert_eq(waitpid(M.pid, &status, 0), M.pid);
    M.pid = 0; /* reaped here; nothing left for mock_proc_stop */
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
    cr_assert(now_s() - t0 < 2.0);
    curl_multi_remove_handle(multi, e);
    curl_easy_cleanup(e);
    curl_slist_free_all(hl);
    curl_multi_cleanup(multi);
    resp_free(&r);
}
