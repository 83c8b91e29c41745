/*
 * test_mock_llm.c — checks the mock LLM provider (tests/mock/) itself, so
 * that provider tests built on it can trust it: OpenAI and Anthropic wire
 * formats (plain and streamed), tool calls (one or several, with or
 * without a text part before them) and tool results in both, auth,
 * stats, every [mock:...] directive,
 * many concurrent waiting requests, a stress run of 2,000 concurrent mixed
 * requests (streams, drips, errors, clients that give up), 128 requests
 * arriving at the same instant, and a clean exit on SIGTERM.
 *
 * Each test starts its own mock through mock_proc (PROMPTD_MOCK_BIN) and
 * talks to it with plain libcurl easy/multi calls.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

/* Concatenation of a streamed tool call's arguments (OpenAI
 * choices.0.delta.tool_calls.0.function.arguments, Anthropic input_json_delta
 * partial_json) over all events; counts the non-empty pieces and the
 * unparseable data lines. */
static void sse_tool_args(sse_event *ev, size_t n, char *out, size_t size, int *pieces, int *broken)
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
        const char *t = json_string_value(at(j, "choices.0.delta.tool_calls.0.function.arguments"));
        if (t == NULL && strcmp(str_at(j, "delta.type"), "input_json_delta") == 0)
            t = json_string_value(at(j, "delta.partial_json"));
        if (t != NULL && *t != '\0') {
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

/* "logprobs": true: an entry per word piece whose tokens join to the text,
 * in the body and one per text chunk in a stream; null without it. */
Test(mock_llm, openai_logprobs)
{
    http_resp r = openai("alpha beta", "\"logprobs\":true,\"top_logprobs\":2,");
    json_t *j = parse(&r);
    json_t *content = at(j, "choices.0.logprobs.content");
    char joined[256] = "";

    cr_assert_eq(r.status, 200);
    cr_assert_eq(json_array_size(content), 4, "%s", r.body.p);
    for (size_t i = 0; i < json_array_size(content); i++) {
        json_t *e = json_array_get(content, i);
        strcat(joined, str_at(e, "token"));
        cr_assert_float_eq(json_real_value(at(e, "logprob")), -0.25 * (double)(i + 1), 1e-9);
        cr_assert_eq(json_array_size(at(e, "bytes")), strlen(str_at(e, "token")));
        cr_assert(json_is_array(at(e, "top_logprobs")));
    }
    cr_assert_str_eq(joined, "mock reply: alpha beta");
    cr_assert_str_eq(str_at(j, "choices.0.logprobs.content.0.token"), "mock ");
    cr_assert_eq(int_at(j, "choices.0.logprobs.content.0.bytes.0"), 'm');
    json_decref(j);
    resp_free(&r);

    r = openai("alpha beta", "\"logprobs\":true,\"stream\":true,");
    sse_event ev[32];
    size_t n = sse_parse(r.body.p, ev, 32);
    cr_assert_eq(n, 6, "4 pieces + finish + [DONE], got %zu", n);
    for (size_t i = 0; i < 4; i++) {
        json_t *c = json_loads(ev[i].data, 0, NULL);
        cr_assert_str_eq(str_at(c, "choices.0.logprobs.content.0.token"), str_at(c, "choices.0.delta.content"));
        cr_assert_float_eq(json_real_value(at(c, "choices.0.logprobs.content.0.logprob")), -0.25 * (double)(i + 1),
                           1e-9);
        json_decref(c);
    }
    json_t *fin = json_loads(ev[4].data, 0, NULL);
    cr_assert(json_is_null(at(fin, "choices.0.logprobs")));
    json_decref(fin);
    sse_free(ev, n);
    resp_free(&r);

    r = openai("alpha beta", NULL);
    j = parse(&r);
    cr_assert(json_is_null(at(j, "choices.0.logprobs")), "%s", r.body.p);
    json_decref(j);
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

/* --threads N: N daemons on the one port (SO_REUSEPORT), each run by its own
 * loop; waiting requests on every one of them are resumed and counted in
 * the one set of statistics. */
Test(mock_llm_opts, threads)
{
    static const char *const args[] = {"--threads", "3", NULL};
    enum { N = 60 };
    static http_resp rs[N];
    struct curl_slist *hl[N];
    CURL *es[N];
    CURLM *multi;
    const char *body = "{\"model\":\"m\",\"stream\":true,"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"a [mock:latency=200] [mock:drip=20]\"}]}";
    int running = 1, ok = 0;

    start_with(args);
    multi = curl_multi_init();
    cr_assert_not_null(multi);
    for (int i = 0; i < N; i++) {
        es[i] = easy_new("/v1/chat/completions", body, NULL, &rs[i], &hl[i]);
        cr_assert_eq(curl_easy_setopt(es[i], CURLOPT_TIMEOUT_MS, 3000L), CURLE_OK);
        cr_assert_eq(curl_multi_add_handle(multi, es[i]), CURLM_OK);
    }
    while (running) {
        cr_assert_eq(curl_multi_perform(multi, &running), CURLM_OK);
        if (running)
            cr_assert_eq(curl_multi_poll(multi, NULL, 0, 100, NULL), CURLM_OK);
    }
    for (int i = 0; i < N; i++) {
        long status = 0;
        curl_easy_getinfo(es[i], CURLINFO_RESPONSE_CODE, &status);
        ok += status == 200 && rs[i].body.p != NULL && strstr(rs[i].body.p, "[DONE]") != NULL;
        curl_multi_remove_handle(multi, es[i]);
        curl_easy_cleanup(es[i]);
        curl_slist_free_all(hl[i]);
        resp_free(&rs[i]);
    }
    curl_multi_cleanup(multi);
    cr_assert_eq(ok, N);

    http_resp r = call("/_mock/stats", NULL, NULL);
    json_t *j = parse(&r);
    cr_assert_eq(int_at(j, "requests"), N);
    cr_assert_eq(int_at(j, "in_flight"), 0);
    json_decref(j);
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

Test(mock_llm, error_fields)
{
    http_resp r = openai("x [mock:status=400] [mock:error_message=This model's maximum context length is 8 tokens.] "
                         "[mock:error_code=context_length_exceeded] [mock:error_param=messages]",
                         NULL);
    json_t *j = parse(&r);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(str_at(j, "error.message"), "This model's maximum context length is 8 tokens.");
    cr_assert_str_eq(str_at(j, "error.type"), "invalid_request_error");
    cr_assert_str_eq(str_at(j, "error.code"), "context_length_exceeded");
    cr_assert_str_eq(str_at(j, "error.param"), "messages");
    json_decref(j);
    resp_free(&r);

    /* without them: the defaults as before (param and code null for a 400) */
    r = openai("x [mock:status=400]", NULL);
    j = parse(&r);
    cr_assert_eq(r.status, 400);
    cr_assert(json_is_null(at(j, "error.param")));
    cr_assert(json_is_null(at(j, "error.code")));
    json_decref(j);
    resp_free(&r);

    /* they need a status: alone they are only removed from the text */
    r = openai("x [mock:error_code=nope]", NULL);
    j = parse(&r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(str_at(j, "choices.0.message.content"), "mock reply: x");
    json_decref(j);
    resp_free(&r);

    r = anthropic("x [mock:status=413] [mock:error_type=request_too_large] [mock:error_message=Too big.] "
                  "[mock:error_code=ignored]",
                  NULL);
    j = parse(&r);
    cr_assert_eq(r.status, 413);
    cr_assert_str_eq(str_at(j, "type"), "error");
    cr_assert_str_eq(str_at(j, "error.type"), "request_too_large");
    cr_assert_str_eq(str_at(j, "error.message"), "Too big.");
    cr_assert_null(at(j, "error.code"));
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, error_latency)
{
    /* an error answer takes error_latency instead of latency */
    http_resp r = openai("x [mock:status=500] [mock:latency=3000] [mock:error_latency=0]", NULL);
    cr_assert_eq(r.status, 500);
    cr_assert(r.secs < 1.5, "answered after %.3f s", r.secs);
    resp_free(&r);
    r = openai("x [mock:fail_times=1] [mock:latency=0] [mock:error_latency=300]", NULL);
    cr_assert_eq(r.status, 500);
    cr_assert(r.secs >= 0.29, "answered after %.3f s", r.secs);
    resp_free(&r);
    /* a good answer keeps latency */
    r = openai("y [mock:latency=300] [mock:error_latency=0]", NULL);
    json_t *j = parse(&r);
    cr_assert_eq(r.status, 200);
    cr_assert(r.secs >= 0.29, "answered after %.3f s", r.secs);
    cr_assert_str_eq(str_at(j, "choices.0.message.content"), "mock reply: y");
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

/* ---- tools -------------------------------------------------------------- */

/* Two tools: the mock always calls the first. */
#define OPENAI_TOOLS                                                                                                   \
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}," \
    "{\"type\":\"function\",\"function\":{\"name\":\"other\",\"parameters\":{}}}],"
#define ANTHROPIC_TOOLS                                                                                                \
    "\"tools\":[{\"name\":\"get_weather\",\"input_schema\":{\"type\":\"object\"}},"                                    \
    "{\"name\":\"other\",\"input_schema\":{}}],"

Test(mock_llm, openai_tool_call)
{
    http_resp r = openai("[mock:latency=200] weather  in Paris", OPENAI_TOOLS);
    json_t *j = parse(&r);
    json_t *msg = at(j, "choices.0.message");

    cr_assert_eq(r.status, 200);
    cr_assert(r.secs >= 0.19, "directives apply: answered after %.3f s", r.secs);
    cr_assert_str_eq(str_at(j, "object"), "chat.completion");
    cr_assert_eq(json_object_size(msg), 3, "role, content, tool_calls");
    cr_assert_str_eq(str_at(msg, "role"), "assistant");
    cr_assert(json_is_null(at(msg, "content")));
    cr_assert_eq(json_array_size(at(msg, "tool_calls")), 1);
    cr_assert_eq(json_object_size(at(msg, "tool_calls.0")), 3, "id, type, function");
    cr_assert_str_eq(str_at(msg, "tool_calls.0.id"), "call_mock_1");
    cr_assert_str_eq(str_at(msg, "tool_calls.0.type"), "function");
    cr_assert_eq(json_object_size(at(msg, "tool_calls.0.function")), 2, "name, arguments");
    cr_assert_str_eq(str_at(msg, "tool_calls.0.function.name"), "get_weather");
    cr_assert_str_eq(str_at(msg, "tool_calls.0.function.arguments"), "{\"text\":\"weather  in Paris\"}");
    cr_assert_str_eq(str_at(j, "choices.0.finish_reason"), "tool_calls");
    cr_assert_eq(int_at(j, "usage.prompt_tokens"), 6); /* "be brief" + 4 words, the directive one of them */
    cr_assert_eq(int_at(j, "usage.completion_tokens"), 3, "words of ARGS");
    cr_assert_eq(int_at(j, "usage.total_tokens"), 9);
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, openai_tool_call_stream)
{
    const char *args = "{\"text\":\"héllo wörld ñ\"}";
    http_resp r = openai("héllo wörld ñ", "\"stream\":true,\"stream_options\":{\"include_usage\":true}," OPENAI_TOOLS);
    sse_event ev[32];
    size_t n = sse_parse(r.body.p, ev, 32);
    char got[256];
    int pieces, broken;

    cr_assert_eq(r.status, 200);
    cr_assert(has_header(&r, "Content-Type: text/event-stream"));
    sse_tool_args(ev, n, got, sizeof(got), &pieces, &broken);
    cr_assert_str_eq(got, args);
    cr_assert_geq(pieces, 2);
    cr_assert_eq(broken, 0);
    cr_assert_eq(n, (size_t)pieces + 4, "start + %d pieces + finish + usage + [DONE], got %zu", pieces, n);

    json_t *first = json_loads(ev[0].data, 0, NULL);
    cr_assert_not_null(first);
    const char *id = str_at(first, "id");
    json_t *delta = at(first, "choices.0.delta");
    cr_assert_str_eq(str_at(first, "object"), "chat.completion.chunk");
    cr_assert_str_eq(str_at(delta, "role"), "assistant");
    cr_assert(json_is_null(at(delta, "content")));
    cr_assert_eq(json_array_size(at(delta, "tool_calls")), 1);
    cr_assert_eq(int_at(delta, "tool_calls.0.index"), 0);
    cr_assert_str_eq(str_at(delta, "tool_calls.0.id"), "call_mock_1");
    cr_assert_str_eq(str_at(delta, "tool_calls.0.type"), "function");
    cr_assert_str_eq(str_at(delta, "tool_calls.0.function.name"), "get_weather");
    cr_assert_str_eq(str_at(delta, "tool_calls.0.function.arguments"), "");
    cr_assert(json_is_null(at(first, "choices.0.finish_reason")));
    for (size_t i = 1; i <= (size_t)pieces; i++) {
        json_t *c = json_loads(ev[i].data, 0, NULL);
        cr_assert_not_null(c);
        cr_assert_str_eq(str_at(c, "id"), id);
        cr_assert_str_eq(str_at(c, "model"), "gpt-mock");
        cr_assert_eq(int_at(c, "created"), int_at(first, "created"));
        cr_assert_eq(json_object_size(at(c, "choices.0.delta")), 1, "tool_calls only");
        cr_assert_eq(int_at(c, "choices.0.delta.tool_calls.0.index"), 0);
        cr_assert_eq(json_object_size(at(c, "choices.0.delta.tool_calls.0")), 2, "index, function");
        cr_assert_eq(json_object_size(at(c, "choices.0.delta.tool_calls.0.function")), 1, "arguments only");
        cr_assert(json_is_null(at(c, "choices.0.finish_reason")));
        json_decref(c);
    }
    json_t *fin = json_loads(ev[pieces + 1].data, 0, NULL), *usage = json_loads(ev[pieces + 2].data, 0, NULL);
    cr_assert_not_null(fin);
    cr_assert_not_null(usage);
    cr_assert_str_eq(str_at(fin, "id"), id);
    cr_assert_eq(json_object_size(at(fin, "choices.0.delta")), 0);
    cr_assert_str_eq(str_at(fin, "choices.0.finish_reason"), "tool_calls");
    cr_assert_eq(json_array_size(at(usage, "choices")), 0);
    cr_assert_eq(int_at(usage, "usage.prompt_tokens"), 5);
    cr_assert_eq(int_at(usage, "usage.completion_tokens"), 3);
    cr_assert_str_eq(ev[pieces + 3].data, "[DONE]");
    json_decref(first);
    json_decref(fin);
    json_decref(usage);
    sse_free(ev, n);
    resp_free(&r);
}

Test(mock_llm, anthropic_tool_call)
{
    http_resp r = anthropic("weather in Paris [mock:no_such_thing]", ANTHROPIC_TOOLS);
    json_t *j = parse(&r);

    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(str_at(j, "type"), "message");
    cr_assert_str_eq(str_at(j, "role"), "assistant");
    cr_assert_eq(json_array_size(at(j, "content")), 1);
    cr_assert_eq(json_object_size(at(j, "content.0")), 4, "type, id, name, input");
    cr_assert_str_eq(str_at(j, "content.0.type"), "tool_use");
    cr_assert_str_eq(str_at(j, "content.0.id"), "toolu_mock_1");
    cr_assert_str_eq(str_at(j, "content.0.name"), "get_weather");
    cr_assert(json_is_object(at(j, "content.0.input")));
    cr_assert_eq(json_object_size(at(j, "content.0.input")), 1);
    cr_assert_str_eq(str_at(j, "content.0.input.text"), "weather in Paris");
    cr_assert_str_eq(str_at(j, "stop_reason"), "tool_use");
    cr_assert(json_is_null(at(j, "stop_sequence")));
    cr_assert_eq(int_at(j, "usage.input_tokens"), 6); /* system + 4 words, the unknown directive counts */
    cr_assert_eq(int_at(j, "usage.output_tokens"), 3);
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, anthropic_tool_call_stream)
{
    const char *args = "{\"text\":\"weather in Paris\"}";
    http_resp r = anthropic("weather in Paris", "\"stream\":true," ANTHROPIC_TOOLS);
    sse_event ev[32];
    size_t n = sse_parse(r.body.p, ev, 32);
    char got[256];
    int pieces, broken;

    cr_assert_eq(r.status, 200);
    cr_assert(has_header(&r, "Content-Type: text/event-stream"));
    sse_tool_args(ev, n, got, sizeof(got), &pieces, &broken);
    cr_assert_str_eq(got, args);
    cr_assert_geq(pieces, 2);
    cr_assert_eq(broken, 0);
    cr_assert_eq(n, (size_t)pieces + 5, "got %zu events for %d pieces", n, pieces);
    cr_assert_str_eq(ev[0].name, "message_start");
    cr_assert_str_eq(ev[1].name, "content_block_start");
    for (size_t i = 2; i < 2 + (size_t)pieces; i++) {
        json_t *d = json_loads(ev[i].data, 0, NULL);
        cr_assert_str_eq(ev[i].name, "content_block_delta");
        cr_assert_str_eq(str_at(d, "type"), "content_block_delta");
        cr_assert_eq(int_at(d, "index"), 0);
        cr_assert_str_eq(str_at(d, "delta.type"), "input_json_delta");
        cr_assert_eq(json_object_size(at(d, "delta")), 2, "type, partial_json");
        json_decref(d);
    }
    cr_assert_str_eq(ev[pieces + 2].name, "content_block_stop");
    cr_assert_str_eq(ev[pieces + 3].name, "message_delta");
    cr_assert_str_eq(ev[pieces + 4].name, "message_stop");
    json_t *start = json_loads(ev[1].data, 0, NULL), *md = json_loads(ev[pieces + 3].data, 0, NULL);
    cr_assert_not_null(start);
    cr_assert_not_null(md);
    cr_assert_eq(int_at(start, "index"), 0);
    cr_assert_str_eq(str_at(start, "content_block.type"), "tool_use");
    cr_assert_str_eq(str_at(start, "content_block.id"), "toolu_mock_1");
    cr_assert_str_eq(str_at(start, "content_block.name"), "get_weather");
    cr_assert(json_is_object(at(start, "content_block.input")));
    cr_assert_eq(json_object_size(at(start, "content_block.input")), 0);
    cr_assert_str_eq(str_at(md, "delta.stop_reason"), "tool_use");
    cr_assert_eq(int_at(md, "usage.output_tokens"), 3);
    json_decref(start);
    json_decref(md);
    sse_free(ev, n);
    resp_free(&r);
}

Test(mock_llm, openai_tool_result)
{
    /* directives come from the last role "user" message, before the result */
    http_resp r = call("/v1/chat/completions",
                       "{\"model\":\"gpt-mock\"," OPENAI_TOOLS "\"messages\":["
                       "{\"role\":\"user\",\"content\":\"weather? [mock:no_usage]\"},"
                       "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_mock_1\","
                       "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},"
                       "{\"role\":\"tool\",\"tool_call_id\":\"call_mock_1\",\"content\":\"sunny, 22 C\"}]}",
                       NULL);
    json_t *j = parse(&r);

    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(str_at(j, "choices.0.message.content"), "mock reply: tool said sunny, 22 C");
    cr_assert_null(at(j, "choices.0.message.tool_calls"));
    cr_assert_str_eq(str_at(j, "choices.0.finish_reason"), "stop");
    cr_assert_null(at(j, "usage"));
    json_decref(j);
    resp_free(&r);

    /* content as text parts, no tools in the request */
    r = call(
        "/v1/chat/completions",
        "{\"model\":\"gpt-mock\",\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_mock_1\",\"content\":[{\"type\":\"text\",\"text\":\"rain\"}]}]}",
        NULL);
    j = parse(&r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(str_at(j, "choices.0.message.content"), "mock reply: tool said rain");
    cr_assert_eq(int_at(j, "usage.prompt_tokens"), 2);
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, anthropic_tool_result)
{
    http_resp r = call("/v1/messages",
                       "{\"model\":\"claude-mock\",\"max_tokens\":100," ANTHROPIC_TOOLS "\"messages\":["
                       "{\"role\":\"user\",\"content\":\"weather?\"},"
                       "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_mock_1\","
                       "\"name\":\"get_weather\",\"input\":{\"text\":\"weather?\"}}]},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_mock_1\","
                       "\"content\":\"sunny\"}]}]}",
                       ANTHROPIC_HDRS);
    json_t *j = parse(&r);

    cr_assert_eq(r.status, 200);
    cr_assert_eq(json_array_size(at(j, "content")), 1);
    cr_assert_str_eq(str_at(j, "content.0.type"), "text");
    cr_assert_str_eq(str_at(j, "content.0.text"), "mock reply: tool said sunny");
    cr_assert_str_eq(str_at(j, "stop_reason"), "end_turn");
    json_decref(j);
    resp_free(&r);

    /* result content as text parts, a text block with a directive next to
     * it, no tools; streamed */
    r = call("/v1/messages",
             "{\"model\":\"claude-mock\",\"max_tokens\":100,\"stream\":true,\"messages\":["
             "{\"role\":\"user\",\"content\":\"weather?\"},"
             "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_mock_1\","
             "\"content\":[{\"type\":\"text\",\"text\":\"cold\"},{\"type\":\"text\",\"text\":\"and wet\"}]},"
             "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_other\",\"content\":\"ignored\"},"
             "{\"type\":\"text\",\"text\":\"go on [mock:no_usage]\"}]}]}",
             ANTHROPIC_HDRS);
    sse_event ev[32];
    size_t n = sse_parse(r.body.p, ev, 32);
    char text[256];
    int pieces, broken;

    cr_assert_eq(r.status, 200);
    sse_text(ev, n, text, sizeof(text), &pieces, &broken);
    cr_assert_str_eq(text, "mock reply: tool said cold\nand wet");
    cr_assert_eq(broken, 0);
    cr_assert_null(strstr(r.body.p, "usage"));
    cr_assert_not_null(strstr(r.body.p, "\"stop_reason\":\"end_turn\""));
    sse_free(ev, n);
    resp_free(&r);
}

Test(mock_llm, tool_without_name_is_400)
{
    http_resp r = openai("x", "\"tools\":[{\"type\":\"function\",\"function\":{\"parameters\":{}}}],");
    json_t *j = parse(&r);

    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(str_at(j, "error.type"), "invalid_request_error");
    cr_assert(json_is_string(at(j, "error.message")));
    json_decref(j);
    resp_free(&r);

    r = anthropic("x", "\"tools\":[{\"name\":7,\"input_schema\":{}}],");
    j = parse(&r);
    cr_assert_eq(r.status, 400);
    cr_assert_str_eq(str_at(j, "type"), "error");
    cr_assert_str_eq(str_at(j, "error.type"), "invalid_request_error");
    json_decref(j);
    resp_free(&r);

    r = openai("x", "\"tools\":[],"); /* no tools: a text answer */
    j = parse(&r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(str_at(j, "choices.0.message.content"), "mock reply: x");
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, echo_request_with_tools)
{
    http_resp r = openai("show me [mock:echo_request]", OPENAI_TOOLS);
    json_t *j = parse(&r);
    json_t *echo = json_loads(str_at(j, "choices.0.message.content"), 0, NULL);

    cr_assert_eq(r.status, 200);
    cr_assert_null(at(j, "choices.0.message.tool_calls"));
    cr_assert_str_eq(str_at(j, "choices.0.finish_reason"), "stop");
    cr_assert_not_null(echo);
    cr_assert_str_eq(str_at(echo, "tools.0.function.name"), "get_weather");
    cr_assert_str_eq(str_at(echo, "messages.1.content"), "show me [mock:echo_request]");
    json_decref(echo);
    json_decref(j);
    resp_free(&r);

    r = anthropic("show me [mock:echo_request]", ANTHROPIC_TOOLS);
    j = parse(&r);
    echo = json_loads(str_at(j, "content.0.text"), 0, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(str_at(j, "content.0.type"), "text");
    cr_assert_str_eq(str_at(j, "stop_reason"), "end_turn");
    cr_assert_not_null(echo);
    cr_assert_str_eq(str_at(echo, "tools.1.name"), "other");
    json_decref(echo);
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, tool_call_directives)
{
    http_resp r = openai("x [mock:status=503]", OPENAI_TOOLS);
    cr_assert_eq(r.status, 503);
    resp_free(&r);

    r = openai("x [mock:malformed]", OPENAI_TOOLS);
    cr_assert_eq(r.status, 200);
    cr_assert_null(json_loads(r.body.p, 0, NULL));
    resp_free(&r);

    /* drop: the tool call's first chunk and first piece, then nothing */
    sse_event ev[32];
    size_t n;
    char got[256];
    int pieces, broken;
    r = openai("x y z [mock:drop]", "\"stream\":true," OPENAI_TOOLS);
    cr_assert_neq(r.cc, CURLE_OK);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(r.body.p);
    n = sse_parse(r.body.p, ev, 32);
    sse_tool_args(ev, n, got, sizeof(got), &pieces, &broken);
    cr_assert_not_null(strstr(r.body.p, "\"id\":\"call_mock_1\""));
    cr_assert_eq(pieces, 1);
    cr_assert_null(strstr(r.body.p, "[DONE]"));
    sse_free(ev, n);
    resp_free(&r);

    /* malformed stream: one broken repeat of the first piece */
    r = anthropic("x y [mock:malformed]", "\"stream\":true," ANTHROPIC_TOOLS);
    n = sse_parse(r.body.p, ev, 32);
    sse_tool_args(ev, n, got, sizeof(got), &pieces, &broken);
    cr_assert_eq(broken, 1);
    cr_assert_str_eq(got, "{\"text\":\"x y\"}");
    sse_free(ev, n);
    resp_free(&r);

    /* drip: 3 pieces, 2 gaps */
    r = anthropic("a b [mock:drip=150]", "\"stream\":true," ANTHROPIC_TOOLS);
    n = sse_parse(r.body.p, ev, 32);
    sse_tool_args(ev, n, got, sizeof(got), &pieces, &broken);
    cr_assert_str_eq(got, "{\"text\":\"a b\"}");
    cr_assert_eq(pieces, 3);
    cr_assert(r.secs >= 0.29, "3 pieces 150 ms apart took %.3f s", r.secs);
    cr_assert(r.secs < 2.0, "took %.3f s", r.secs);
    sse_free(ev, n);
    resp_free(&r);
}

/* ---- several tool calls, text before them ------------------------------- */

/* One streamed tool call (or Anthropic content block) put back together. */
typedef struct sse_call {
    bool seen;
    char type[16]; /* OpenAI "function"; Anthropic content_block.type */
    char id[32];
    char name[32];
    char args[256];     /* its argument pieces joined */
    int starts;         /* start chunks / content_block_start events */
    int pieces;         /* non-empty argument pieces */
    size_t first, last; /* positions of its first and last event */
} sse_call;

static void copy_str(char *dst, size_t size, json_t *v)
{
    if (json_is_string(v))
        snprintf(dst, size, "%s", json_string_value(v));
}

/* Groups a stream's events by tool-call index (OpenAI
 * choices.0.delta.tool_calls[0].index) or content block index (Anthropic
 * content_block_* events). Returns the highest index seen + 1. */
static size_t sse_calls(sse_event *ev, size_t n, sse_call *calls, size_t max)
{
    size_t count = 0;

    memset(calls, 0, max * sizeof(*calls));
    for (size_t i = 0; i < n; i++) {
        json_t *j = ev[i].data != NULL ? json_loads(ev[i].data, 0, NULL) : NULL;
        json_t *tc = at(j, "choices.0.delta.tool_calls");
        json_t *item = NULL, *idx = NULL, *args = NULL;
        bool start = false;

        if (json_is_array(tc)) {
            cr_assert_eq(json_array_size(tc), 1, "one call per chunk: %s", ev[i].data);
            item = json_array_get(tc, 0);
            idx = json_object_get(item, "index");
            start = json_object_get(item, "id") != NULL;
            args = at(item, "function.arguments");
        } else if (strncmp(ev[i].name, "content_block_", 14) == 0) {
            idx = json_object_get(j, "index");
            start = strcmp(ev[i].name, "content_block_start") == 0;
            item = start ? json_object_get(j, "content_block") : NULL;
            if (strcmp(str_at(j, "delta.type"), "input_json_delta") == 0)
                args = at(j, "delta.partial_json");
        }
        if (json_is_integer(idx)) {
            size_t k = (size_t)json_integer_value(idx);
            cr_assert_lt(k, max, "index %zu", k);
            sse_call *c = &calls[k];
            if (!c->seen)
                c->first = i;
            c->seen = true;
            c->last = i;
            if (start) {
                c->starts++;
                copy_str(c->type, sizeof(c->type), json_object_get(item, "type"));
                copy_str(c->id, sizeof(c->id), json_object_get(item, "id"));
                copy_str(c->name, sizeof(c->name),
                         json_object_get(item, "name") ? json_object_get(item, "name") : at(item, "function.name"));
            }
            if (json_is_string(args) && *json_string_value(args) != '\0') {
                strncat(c->args, json_string_value(args), sizeof(c->args) - strlen(c->args) - 1);
                c->pieces++;
            }
            if (k + 1 > count)
                count = k + 1;
        }
        json_decref(j);
    }
    return count;
}

/* "{"text":TEXT,"n":K}", the ARGS of call K with [mock:tool_calls=N]. */
static const char *args_k(char *out, size_t size, const char *text, int k)
{
    snprintf(out, size, "{\"text\":\"%s\",\"n\":%d}", text, k);
    return out;
}

Test(mock_llm, openai_tool_calls)
{
    http_resp r = openai("weather in Paris [mock:tool_calls=3]", OPENAI_TOOLS);
    json_t *j = parse(&r);
    json_t *msg = at(j, "choices.0.message");
    char path[64], want[128];

    cr_assert_eq(r.status, 200);
    cr_assert_eq(json_object_size(msg), 3, "role, content, tool_calls");
    cr_assert(json_is_null(at(msg, "content")));
    cr_assert_eq(json_array_size(at(msg, "tool_calls")), 3);
    for (int k = 1; k <= 3; k++) {
        snprintf(path, sizeof(path), "tool_calls.%d", k - 1);
        snprintf(want, sizeof(want), "call_mock_%d", k);
        json_t *call = at(msg, path);
        cr_assert_eq(json_object_size(call), 3, "id, type, function");
        cr_assert_str_eq(str_at(call, "id"), want);
        cr_assert_str_eq(str_at(call, "type"), "function");
        cr_assert_str_eq(str_at(call, "function.name"), "get_weather");
        cr_assert_str_eq(str_at(call, "function.arguments"), args_k(want, sizeof(want), "weather in Paris", k));
    }
    cr_assert_str_eq(str_at(j, "choices.0.finish_reason"), "tool_calls");
    cr_assert_eq(int_at(j, "usage.prompt_tokens"), 6);
    cr_assert_eq(int_at(j, "usage.completion_tokens"), 9, "3 words in each of 3 ARGS");
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, openai_tool_calls_stream)
{
    http_resp r = openai("héllo wörld [mock:tool_calls=3]",
                         "\"stream\":true,\"stream_options\":{\"include_usage\":true}," OPENAI_TOOLS);
    sse_event ev[64];
    size_t n = sse_parse(r.body.p, ev, 64);
    sse_call calls[8];
    size_t nc = sse_calls(ev, n, calls, 8);
    char want[128];
    int pieces = 0;

    cr_assert_eq(r.status, 200);
    cr_assert_eq(nc, 3);
    for (int k = 1; k <= 3; k++) {
        sse_call *c = &calls[k - 1];
        snprintf(want, sizeof(want), "call_mock_%d", k);
        cr_assert_str_eq(c->id, want);
        cr_assert_str_eq(c->type, "function");
        cr_assert_str_eq(c->name, "get_weather");
        cr_assert_eq(c->starts, 1);
        cr_assert_geq(c->pieces, 2);
        cr_assert_str_eq(c->args, args_k(want, sizeof(want), "héllo wörld", k));
        if (k > 1)
            cr_assert_lt(calls[k - 2].last, c->first, "call %d starts after call %d ends", k, k - 1);
        /* the start chunk comes first; it is the stream's first event only
         * for call 1, which alone carries the role and content: null */
        json_t *s = json_loads(ev[c->first].data, 0, NULL);
        json_t *delta = at(s, "choices.0.delta");
        cr_assert_str_eq(str_at(delta, "tool_calls.0.function.arguments"), "");
        cr_assert_eq(json_object_size(delta), k == 1 ? 3 : 1, "call %d: %s", k, ev[c->first].data);
        if (k == 1) {
            cr_assert_eq(c->first, 0);
            cr_assert_str_eq(str_at(delta, "role"), "assistant");
            cr_assert(json_is_null(at(delta, "content")));
        }
        json_decref(s);
        pieces += c->pieces;
    }
    cr_assert_eq(n, (size_t)pieces + 3 + 3, "3 starts + %d pieces + finish + usage + [DONE], got %zu", pieces, n);
    json_t *fin = json_loads(ev[n - 3].data, 0, NULL), *usage = json_loads(ev[n - 2].data, 0, NULL);
    cr_assert_str_eq(str_at(fin, "choices.0.finish_reason"), "tool_calls");
    cr_assert_eq(int_at(usage, "usage.completion_tokens"), 6, "2 words in each of 3 ARGS");
    cr_assert_str_eq(ev[n - 1].data, "[DONE]");
    json_decref(fin);
    json_decref(usage);
    sse_free(ev, n);
    resp_free(&r);
}

Test(mock_llm, anthropic_tool_calls)
{
    http_resp r = anthropic("weather in Paris [mock:tool_calls=3]", ANTHROPIC_TOOLS);
    json_t *j = parse(&r);
    char path[64], want[32];

    cr_assert_eq(r.status, 200);
    cr_assert_eq(json_array_size(at(j, "content")), 3);
    for (int k = 1; k <= 3; k++) {
        snprintf(path, sizeof(path), "content.%d", k - 1);
        snprintf(want, sizeof(want), "toolu_mock_%d", k);
        json_t *b = at(j, path);
        cr_assert_eq(json_object_size(b), 4, "type, id, name, input");
        cr_assert_str_eq(str_at(b, "type"), "tool_use");
        cr_assert_str_eq(str_at(b, "id"), want);
        cr_assert_str_eq(str_at(b, "name"), "get_weather");
        cr_assert_eq(json_object_size(at(b, "input")), 2);
        cr_assert_str_eq(str_at(b, "input.text"), "weather in Paris");
        cr_assert_eq(int_at(b, "input.n"), k);
    }
    cr_assert_str_eq(str_at(j, "stop_reason"), "tool_use");
    cr_assert_eq(int_at(j, "usage.output_tokens"), 9);
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, anthropic_tool_calls_stream)
{
    http_resp r = anthropic("weather in Paris [mock:tool_calls=3]", "\"stream\":true," ANTHROPIC_TOOLS);
    sse_event ev[64];
    size_t n = sse_parse(r.body.p, ev, 64);
    sse_call calls[8];
    size_t nc = sse_calls(ev, n, calls, 8);
    char want[128];
    int pieces = 0, broken;

    cr_assert_eq(r.status, 200);
    cr_assert_eq(nc, 3, "block indices 0..2");
    cr_assert_str_eq(ev[0].name, "message_start");
    for (int k = 1; k <= 3; k++) {
        sse_call *c = &calls[k - 1];
        snprintf(want, sizeof(want), "toolu_mock_%d", k);
        cr_assert_str_eq(c->type, "tool_use");
        cr_assert_str_eq(c->id, want);
        cr_assert_str_eq(c->name, "get_weather");
        cr_assert_eq(c->starts, 1);
        cr_assert_geq(c->pieces, 2);
        cr_assert_str_eq(c->args, args_k(want, sizeof(want), "weather in Paris", k));
        cr_assert_str_eq(ev[c->first].name, "content_block_start");
        cr_assert_str_eq(ev[c->last].name, "content_block_stop");
        cr_assert_eq(c->last - c->first, (size_t)c->pieces + 1, "start, pieces, stop");
        if (k > 1)
            cr_assert_eq(calls[k - 2].last + 1, c->first);
        pieces += c->pieces;
    }
    cr_assert_eq(calls[0].first, 1);
    cr_assert_eq(n, (size_t)pieces + 3 * 2 + 3, "got %zu events", n);
    cr_assert_str_eq(ev[n - 2].name, "message_delta");
    cr_assert_str_eq(ev[n - 1].name, "message_stop");
    json_t *md = json_loads(ev[n - 2].data, 0, NULL);
    cr_assert_str_eq(str_at(md, "delta.stop_reason"), "tool_use");
    cr_assert_eq(int_at(md, "usage.output_tokens"), 9);
    json_decref(md);
    sse_text(ev, n, want, sizeof(want), &pieces, &broken);
    cr_assert_str_eq(want, "", "no text block");
    sse_free(ev, n);
    resp_free(&r);
}

Test(mock_llm, openai_tool_text)
{
    http_resp r = openai("weather in Paris [mock:tool_text]", OPENAI_TOOLS);
    json_t *j = parse(&r);
    json_t *msg = at(j, "choices.0.message");

    cr_assert_eq(r.status, 200);
    cr_assert_eq(json_object_size(msg), 3, "role, content, tool_calls");
    cr_assert_str_eq(str_at(msg, "content"), "Let me check.");
    cr_assert_eq(json_array_size(at(msg, "tool_calls")), 1);
    cr_assert_str_eq(str_at(msg, "tool_calls.0.id"), "call_mock_1");
    cr_assert_str_eq(str_at(msg, "tool_calls.0.function.arguments"), "{\"text\":\"weather in Paris\"}");
    cr_assert_str_eq(str_at(j, "choices.0.finish_reason"), "tool_calls");
    cr_assert_eq(int_at(j, "usage.completion_tokens"), 3 + 3, "the text's words + ARGS' words");
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, openai_tool_text_stream)
{
    http_resp r = openai("a b [mock:tool_text] [mock:tool_calls=2]",
                         "\"stream\":true,\"stream_options\":{\"include_usage\":true}," OPENAI_TOOLS);
    sse_event ev[64];
    size_t n = sse_parse(r.body.p, ev, 64);
    sse_call calls[8];
    size_t nc = sse_calls(ev, n, calls, 8);
    char text[128], want[64];
    int pieces, broken;

    cr_assert_eq(r.status, 200);
    sse_text(ev, n, text, sizeof(text), &pieces, &broken);
    cr_assert_str_eq(text, "Let me check.");
    cr_assert_eq(pieces, 1, "one content delta");
    cr_assert_eq(broken, 0);
    json_t *first = json_loads(ev[0].data, 0, NULL);
    cr_assert_eq(json_object_size(at(first, "choices.0.delta")), 2, "role, content");
    cr_assert_str_eq(str_at(first, "choices.0.delta.role"), "assistant");
    cr_assert_str_eq(str_at(first, "choices.0.delta.content"), "Let me check.");
    json_decref(first);
    cr_assert_eq(nc, 2);
    cr_assert_eq(calls[0].first, 1, "the first call right after the text");
    for (int k = 1; k <= 2; k++) {
        json_t *s = json_loads(ev[calls[k - 1].first].data, 0, NULL);
        snprintf(want, sizeof(want), "call_mock_%d", k);
        cr_assert_str_eq(calls[k - 1].id, want);
        cr_assert_str_eq(calls[k - 1].args, args_k(want, sizeof(want), "a b", k));
        cr_assert_eq(json_object_size(at(s, "choices.0.delta")), 1, "tool_calls only: %s", ev[calls[k - 1].first].data);
        json_decref(s);
    }
    cr_assert_lt(calls[0].last, calls[1].first);
    json_t *usage = json_loads(ev[n - 2].data, 0, NULL);
    cr_assert_eq(int_at(usage, "usage.completion_tokens"), 3 + 2 + 2);
    json_decref(usage);
    sse_free(ev, n);
    resp_free(&r);
}

Test(mock_llm, anthropic_tool_text)
{
    http_resp r = anthropic("weather in Paris [mock:tool_text][mock:tool_calls=2]", ANTHROPIC_TOOLS);
    json_t *j = parse(&r);

    cr_assert_eq(r.status, 200);
    cr_assert_eq(json_array_size(at(j, "content")), 3);
    cr_assert_eq(json_object_size(at(j, "content.0")), 2, "type, text");
    cr_assert_str_eq(str_at(j, "content.0.type"), "text");
    cr_assert_str_eq(str_at(j, "content.0.text"), "Let me check.");
    cr_assert_str_eq(str_at(j, "content.1.type"), "tool_use");
    cr_assert_str_eq(str_at(j, "content.1.id"), "toolu_mock_1");
    cr_assert_eq(int_at(j, "content.1.input.n"), 1);
    cr_assert_str_eq(str_at(j, "content.2.type"), "tool_use");
    cr_assert_str_eq(str_at(j, "content.2.id"), "toolu_mock_2");
    cr_assert_eq(int_at(j, "content.2.input.n"), 2);
    cr_assert_str_eq(str_at(j, "content.2.input.text"), "weather in Paris");
    cr_assert_str_eq(str_at(j, "stop_reason"), "tool_use");
    cr_assert_eq(int_at(j, "usage.output_tokens"), 3 + 3 + 3);
    json_decref(j);
    resp_free(&r);

    /* with one call (no tool_calls directive) its ARGS have no "n" */
    r = anthropic("hi [mock:tool_text]", ANTHROPIC_TOOLS);
    j = parse(&r);
    cr_assert_eq(json_array_size(at(j, "content")), 2);
    cr_assert_str_eq(str_at(j, "content.0.text"), "Let me check.");
    cr_assert_str_eq(str_at(j, "content.1.id"), "toolu_mock_1");
    cr_assert_eq(json_object_size(at(j, "content.1.input")), 1);
    cr_assert_str_eq(str_at(j, "content.1.input.text"), "hi");
    cr_assert_eq(int_at(j, "usage.output_tokens"), 3 + 1);
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, anthropic_tool_text_stream)
{
    http_resp r = anthropic("weather in Paris [mock:tool_text]", "\"stream\":true," ANTHROPIC_TOOLS);
    sse_event ev[64];
    size_t n = sse_parse(r.body.p, ev, 64);
    sse_call calls[8];
    size_t nc = sse_calls(ev, n, calls, 8);
    char text[128];
    int pieces, broken;

    cr_assert_eq(r.status, 200);
    cr_assert_eq(nc, 2, "a text block and a tool_use block");
    sse_text(ev, n, text, sizeof(text), &pieces, &broken);
    cr_assert_str_eq(text, "Let me check.");
    cr_assert_eq(pieces, 1, "one text_delta");
    cr_assert_eq(broken, 0);
    /* block 0: content_block_start (empty text), text_delta, content_block_stop */
    cr_assert_str_eq(calls[0].type, "text");
    cr_assert_eq(calls[0].first, 1);
    cr_assert_eq(calls[0].last, 3);
    cr_assert_str_eq(ev[1].name, "content_block_start");
    cr_assert_not_null(strstr(ev[1].data, "\"content_block\":{\"type\":\"text\",\"text\":\"\"}"));
    cr_assert_str_eq(ev[2].name, "content_block_delta");
    cr_assert_not_null(strstr(ev[2].data, "\"index\":0"));
    cr_assert_str_eq(ev[3].name, "content_block_stop");
    /* block 1: the tool call */
    cr_assert_str_eq(calls[1].type, "tool_use");
    cr_assert_str_eq(calls[1].id, "toolu_mock_1");
    cr_assert_eq(calls[1].first, 4);
    cr_assert_str_eq(calls[1].args, "{\"text\":\"weather in Paris\"}");
    cr_assert_str_eq(ev[calls[1].last].name, "content_block_stop");
    cr_assert_eq(n, calls[1].last + 3, "then message_delta, message_stop");
    json_t *md = json_loads(ev[n - 2].data, 0, NULL);
    cr_assert_str_eq(str_at(md, "delta.stop_reason"), "tool_use");
    cr_assert_eq(int_at(md, "usage.output_tokens"), 3 + 3);
    json_decref(md);
    sse_free(ev, n);
    resp_free(&r);
}

Test(mock_llm, tool_calls_ignored)
{
    static const char *const bad[] = {"0", "9", "-1", "2x", ""};
    char user[64];

    /* out of range or not a number: one call, ARGS without "n" */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(user, sizeof(user), "hi [mock:tool_calls=%s]", bad[i]);
        http_resp r = openai(user, OPENAI_TOOLS);
        json_t *j = parse(&r);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(json_array_size(at(j, "choices.0.message.tool_calls")), 1, "tool_calls=%s", bad[i]);
        cr_assert_str_eq(str_at(j, "choices.0.message.tool_calls.0.function.arguments"), "{\"text\":\"hi\"}");
        cr_assert(json_is_null(at(j, "choices.0.message.content")));
        json_decref(j);
        resp_free(&r);
    }
    http_resp r = anthropic("hi [mock:tool_calls=100]", "\"stream\":true," ANTHROPIC_TOOLS);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(strstr(r.body.p, "\"id\":\"toolu_mock_1\""));
    cr_assert_null(strstr(r.body.p, "toolu_mock_2"));
    resp_free(&r);

    /* no tool-call answer: both directives do nothing */
    r = openai("hi [mock:tool_calls=3] [mock:tool_text]", NULL);
    json_t *j = parse(&r);
    cr_assert_str_eq(str_at(j, "choices.0.message.content"), "mock reply: hi");
    cr_assert_null(at(j, "choices.0.message.tool_calls"));
    json_decref(j);
    resp_free(&r);

    r = anthropic("hi [mock:tool_calls=3] [mock:tool_text] [mock:echo_request]", ANTHROPIC_TOOLS);
    j = parse(&r);
    cr_assert_eq(json_array_size(at(j, "content")), 1);
    cr_assert_str_eq(str_at(j, "content.0.type"), "text");
    cr_assert_str_eq(str_at(j, "stop_reason"), "end_turn");
    json_decref(j);
    resp_free(&r);
}

Test(mock_llm, tool_calls_with_other_directives)
{
    /* bad_types: every call's ARGS (and the text) become numbers */
    http_resp r = openai("hi [mock:tool_calls=2] [mock:tool_text] [mock:bad_types]", OPENAI_TOOLS);
    json_t *j = parse(&r);
    cr_assert(json_is_integer(at(j, "choices.0.message.content")));
    cr_assert(json_is_integer(at(j, "choices.0.message.tool_calls.0.function.arguments")));
    cr_assert(json_is_integer(at(j, "choices.0.message.tool_calls.1.function.arguments")));
    json_decref(j);
    resp_free(&r);

    /* malformed stream: one broken repeat of the stream's first piece only */
    sse_event ev[64];
    size_t n;
    char got[256];
    int pieces, broken;
    r = anthropic("hi [mock:tool_calls=2] [mock:malformed]", "\"stream\":true," ANTHROPIC_TOOLS);
    n = sse_parse(r.body.p, ev, 64);
    sse_tool_args(ev, n, got, sizeof(got), &pieces, &broken);
    cr_assert_eq(broken, 1);
    cr_assert_str_eq(got, "{\"text\":\"hi\",\"n\":1}{\"text\":\"hi\",\"n\":2}");
    sse_free(ev, n);
    resp_free(&r);

    /* drop: the text part is the first piece; the connection closes after it */
    r = openai("hi [mock:tool_text] [mock:tool_calls=2] [mock:drop]", "\"stream\":true," OPENAI_TOOLS);
    cr_assert_neq(r.cc, CURLE_OK);
    cr_assert_not_null(r.body.p);
    cr_assert_not_null(strstr(r.body.p, "Let me check."));
    cr_assert_null(strstr(r.body.p, "call_mock_1"));
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

/* ---- raw sockets (for exact control over when requests arrive) --------- */

static int tcp_connect(int port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One HTTP response read from a raw socket; status -1: closed first. */
typedef struct raw_resp {
    char buf[4096];
    size_t len;
    bool done;
    int status;
} raw_resp;

/* True once buf holds the headers and Content-Length bytes of body (the
 * mock's non-stream answers always carry Content-Length). */
static bool raw_complete(raw_resp *r)
{
    char *end = strstr(r->buf, "\r\n\r\n");
    char *cl;

    if (end == NULL)
        return false;
    *end = '\0'; /* so that the header search stays in the headers */
    cl = strcasestr(r->buf, "\r\nContent-Length:");
    *end = '\r';
    if (cl == NULL || sscanf(r->buf, "HTTP/1.%*d %d", &r->status) != 1)
        return false;
    return r->len >= (size_t)(end + 4 - r->buf) + strtoul(cl + 17, NULL, 10);
}

/* Reads one response on each of fds[0..n) until all have one or timeout_ms
 * has passed. Returns how many are complete. */
static int read_responses(const int *fds, raw_resp *rs, int n, int timeout_ms)
{
    struct pollfd *p = calloc((size_t)n, sizeof(*p));
    int *idx = calloc((size_t)n, sizeof(*idx));
    double end = now_s() + timeout_ms / 1000.0;
    int done = 0;

    cr_assert(p != NULL && idx != NULL);
    memset(rs, 0, (size_t)n * sizeof(*rs));
    while (done < n) {
        int m = 0, left = (int)((end - now_s()) * 1000.0);
        if (left <= 0)
            break;
        for (int i = 0; i < n; i++) {
            if (!rs[i].done) {
                p[m] = (struct pollfd){.fd = fds[i], .events = POLLIN};
                idx[m++] = i;
            }
        }
        int k = poll(p, (nfds_t)m, left);
        cr_assert(k >= 0 || errno == EINTR, "poll: %s", strerror(errno));
        for (int j = 0; j < m && k > 0; j++) {
            raw_resp *r = &rs[idx[j]];
            if (p[j].revents == 0)
                continue;
            ssize_t got = recv(fds[idx[j]], r->buf + r->len, sizeof(r->buf) - 1 - r->len, 0);
            if (got <= 0) { /* closed, reset, or a response larger than buf: all wrong here */
                r->status = -1;
                r->done = true;
                done++;
                continue;
            }
            r->len += (size_t)got;
            r->buf[r->len] = '\0';
            if (raw_complete(r)) {
                r->done = true;
                done++;
            }
        }
    }
    free(idx);
    free(p);
    return done;
}

/* libmicrohttpd 0.9.75's own epoll loop (which the mock no longer uses, see
 * mock_loop.c) left requests unread for up to a minute when exactly 128
 * sockets became readable together. SIGSTOP makes that happen on demand:
 * 128 idle keep-alive connections get their next request while the mock is
 * stopped, so its first wait after SIGCONT reports all 128 at once. */
Test(mock_llm, exactly_128_requests_at_once, .timeout = 30)
{
    enum { N = 128, ROUNDS = 5 };
    static int fds[N];
    static raw_resp rs[N];
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    char req[512];
    int len = snprintf(req, sizeof(req),
                       "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       strlen(body), body);

    for (int i = 0; i < N; i++) {
        fds[i] = tcp_connect(M.port);
        cr_assert(fds[i] >= 0, "connect: %s", strerror(errno));
    }
    /* a first request on each: afterwards every connection is accepted and
     * waits in the mock for its next request */
    for (int i = 0; i < N; i++)
        cr_assert_eq(send_all(fds[i], req, (size_t)len), 0, "send: %s", strerror(errno));
    cr_assert_eq(read_responses(fds, rs, N, 5000), N);
    for (int round = 0; round < ROUNDS; round++) {
        int sent = 0;
        /* nothing may abort between SIGSTOP and SIGCONT: a stopped mock
         * would not exit on the teardown's SIGTERM */
        cr_assert_eq(kill(M.pid, SIGSTOP), 0);
        for (int i = 0; i < N; i++)
            sent += send_all(fds[i], req, (size_t)len) == 0;
        usleep(100 * 1000); /* every request is in the mock's socket buffers */
        int cont = kill(M.pid, SIGCONT);
        cr_assert_eq(cont, 0);
        cr_assert_eq(sent, N);
        int got = read_responses(fds, rs, N, 2000);
        cr_assert_eq(got, N, "round %d: %d of %d requests answered within 2 s", round, got, N);
        for (int i = 0; i < N; i++)
            cr_assert_eq(rs[i].status, 200, "round %d, connection %d: %.200s", round, i, rs[i].buf);
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
}

/* ---- stress ------------------------------------------------------------- */

typedef enum stress_kind {
    SK_PLAIN,        /* answer after latency */
    SK_STREAM,       /* SSE after latency */
    SK_DRIP,         /* SSE after latency, pieces drip ms apart */
    SK_ERROR,        /* 429 / 503 with Retry-After after latency */
    SK_FAIL_TIMES,   /* fail_times=1, first (only) try: 500 after latency */
    SK_DROP,         /* closed without an answer after latency */
    SK_ABANDON_WAIT, /* the client gives up while the mock waits */
    SK_ABANDON_DRIP, /* the client gives up in the middle of a drip stream */
} stress_kind;

typedef struct stress_req {
    CURL *e;
    struct curl_slist *hl;
    http_resp r;
    char body[512];
    char tag[32];
    stress_kind kind;
    bool anthropic;
    bool stream;
    long want_status;
    long budget_ms; /* answer complete within this long; 0: abandoned, anything goes */
} stress_req;

/* Deterministic pseudo-random numbers in [0, n). */
static uint32_t stress_rand(uint64_t *s, uint32_t n)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((*s >> 33) % n);
}

static void stress_prepare(stress_req *q, int round, int i, uint64_t *seed)
{
    uint32_t pick = stress_rand(seed, 100);
    long latency = (long)stress_rand(seed, 301), drip = 0, abandon = 0;
    char user[256];

    memset(q, 0, sizeof(*q));
    snprintf(q->tag, sizeof(q->tag), "tag%d_%04d", round, i);
    q->anthropic = stress_rand(seed, 2) == 1;
    q->want_status = 200;
    if (pick < 40) {
        q->kind = SK_PLAIN;
        snprintf(user, sizeof(user), "%s [mock:latency=%ld]", q->tag, latency);
    } else if (pick < 55) {
        q->kind = SK_STREAM;
        q->stream = true;
        snprintf(user, sizeof(user), "%s x y [mock:latency=%ld]", q->tag, latency);
    } else if (pick < 65) {
        q->kind = SK_DRIP;
        q->stream = true;
        drip = 5 + (long)stress_rand(seed, 26);
        snprintf(user, sizeof(user), "%s x y [mock:latency=%ld] [mock:drip=%ld]", q->tag, latency, drip);
    } else if (pick < 75) {
        q->kind = SK_ERROR;
        q->want_status = stress_rand(seed, 2) ? 429 : 503;
        snprintf(user, sizeof(user), "%s [mock:latency=%ld] [mock:status=%ld] [mock:retry_after=1]", q->tag, latency,
                 q->want_status);
    } else if (pick < 80) {
        q->kind = SK_FAIL_TIMES; /* the tag makes the text unique: this is its first try */
        q->want_status = 500;
        snprintf(user, sizeof(user), "%s [mock:latency=%ld] [mock:fail_times=1]", q->tag, latency);
    } else if (pick < 85) {
        q->kind = SK_DROP;
        snprintf(user, sizeof(user), "%s [mock:latency=%ld] [mock:drop]", q->tag, latency);
    } else if (pick < 95) {
        q->kind = SK_ABANDON_WAIT;
        abandon = 1 + (long)stress_rand(seed, (uint32_t)latency + 100);
        snprintf(user, sizeof(user), "%s [mock:latency=%ld]", q->tag, latency + 200);
    } else {
        q->kind = SK_ABANDON_DRIP;
        q->stream = true;
        drip = 30 + (long)stress_rand(seed, 21);
        abandon = latency + 1 + (long)stress_rand(seed, 4 * (uint32_t)drip);
        snprintf(user, sizeof(user), "%s a b c d e f g [mock:latency=%ld] [mock:drip=%ld]", q->tag, latency, drip);
    }
    /* "mock reply: TAG x y" streams as 5 pieces: 4 drip gaps */
    q->budget_ms = abandon > 0 ? 0 : latency + 4 * drip + 2000;
    if (q->anthropic)
        snprintf(
            q->body, sizeof(q->body),
            "{\"model\":\"claude-mock\",\"max_tokens\":100,%s\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
            q->stream ? "\"stream\":true," : "", user);
    else
        snprintf(q->body, sizeof(q->body),
                 "{\"model\":\"gpt-mock\",%s\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
                 q->stream ? "\"stream\":true," : "", user);
    q->e = easy_new(q->anthropic ? "/v1/messages" : "/v1/chat/completions", q->body,
                    q->anthropic ? ANTHROPIC_HDRS : NULL, &q->r, &q->hl);
    cr_assert_eq(curl_easy_setopt(q->e, CURLOPT_TIMEOUT_MS, abandon > 0 ? abandon : q->budget_ms), CURLE_OK);
    cr_assert_eq(curl_easy_setopt(q->e, CURLOPT_PRIVATE, q), CURLE_OK);
    /* on a reused connection curl answers a drop by sending the request again
     * on a new one ("Connection died, retrying"), and under this load that
     * retry can fail as "Failed sending data to the peer" */
    if (q->kind == SK_DROP)
        cr_assert_eq(curl_easy_setopt(q->e, CURLOPT_FRESH_CONNECT, 1L), CURLE_OK);
}

/* Writes into why what is wrong with q's outcome; returns false if anything. */
static bool stress_ok(stress_req *q, CURLcode cc, char *why, size_t size)
{
    long status = 0;
    double secs = 0;

    if (q->budget_ms == 0)
        return true; /* abandoned: whatever happened */
    curl_easy_getinfo(q->e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(q->e, CURLINFO_TOTAL_TIME, &secs);
    snprintf(why, size, "%s (kind %d, %.200s, budget %ld ms): curl %s, status %ld after %.3f s, body %.120s", q->tag,
             (int)q->kind, q->body, q->budget_ms, curl_easy_strerror(cc), status, secs,
             q->r.body.p ? q->r.body.p : "(none)");
    if (q->kind == SK_DROP)
        return cc == CURLE_GOT_NOTHING;
    if (cc != CURLE_OK || status != q->want_status)
        return false;
    if (status != 200)
        return has_header(&q->r, "Retry-After: 1") == (q->kind == SK_ERROR);
    if (q->r.body.p == NULL || strstr(q->r.body.p, q->tag) == NULL)
        return false;
    return !q->stream || strstr(q->r.body.p, q->anthropic ? "message_stop" : "[DONE]") != NULL;
}

static void stress_free(stress_req *q, CURLM *multi)
{
    curl_multi_remove_handle(multi, q->e);
    curl_easy_cleanup(q->e);
    curl_slist_free_all(q->hl);
    resp_free(&q->r);
}

/* 2,000 requests at once, latencies 0-300 ms, a third of them streamed
 * (some dripping), errors, drops, and clients that give up while the mock
 * waits or in the middle of a stream; three rounds over the same keep-alive
 * connections. Every request that was not abandoned must be fully answered
 * within its latency (plus drip gaps) + 2 s, and afterwards nothing may be
 * left in flight in the mock (no waiting connection was lost). */
Test(mock_llm, stress_2000_concurrent, .timeout = 90)
{
    enum { N = 2000, ROUNDS = 3, MAX_REPORTED = 5 };
    static stress_req qs[N];
    struct rlimit rl;
    CURLM *multi = curl_multi_init();
    int failures = 0, abandoned = 0;
    char first[MAX_REPORTED][1024];

    cr_assert_not_null(multi);
    /* a descriptor per connection in this process too */
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 2 * N && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max < 2 * N ? rl.rlim_max : 2 * N;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "setrlimit: %s", strerror(errno));
    }
    cr_assert_geq(rl.rlim_cur, N + 64, "RLIMIT_NOFILE %llu is too low for %d connections",
                  (unsigned long long)rl.rlim_cur, N);
    /* keep every connection for the next round, as promptd does */
    cr_assert_eq(curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)N), CURLM_OK);
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(round + 1);
        int running = 1, left;
        CURLMsg *msg;

        for (int i = 0; i < N; i++) {
            stress_prepare(&qs[i], round, i, &seed);
            abandoned += qs[i].budget_ms == 0;
            cr_assert_eq(curl_multi_add_handle(multi, qs[i].e), CURLM_OK);
        }
        while (running) {
            cr_assert_eq(curl_multi_perform(multi, &running), CURLM_OK);
            while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
                stress_req *q = NULL;
                char why[1024];
                if (msg->msg != CURLMSG_DONE)
                    continue;
                cr_assert_eq(curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&q), CURLE_OK);
                if (!stress_ok(q, msg->data.result, why, sizeof(why)) && failures++ < MAX_REPORTED)
                    snprintf(first[failures - 1], sizeof(first[0]), "%s", why);
            }
            if (running)
                cr_assert_eq(curl_multi_poll(multi, NULL, 0, 100, NULL), CURLM_OK);
        }
        for (int i = 0; i < N; i++)
            stress_free(&qs[i], multi);
    }
    curl_multi_cleanup(multi);
    for (int i = 0; i < failures && i < MAX_REPORTED; i++)
        cr_log_error("%s", first[i]);
    cr_assert_eq(failures, 0, "%d of %d requests went wrong, e.g. %s", failures, ROUNDS * N - abandoned,
                 failures ? first[0] : "");
    cr_assert_gt(abandoned, ROUNDS * N / 10, "the mix should abandon some requests");

    /* the abandoned ones end once their wait is over and the mock finds the
     * connection closed: at most ~0.8 s after the round */
    long long in_flight = -1;
    for (double t0 = now_s(); now_s() - t0 < 3.0; usleep(50 * 1000)) {
        http_resp r = call("/_mock/stats", NULL, NULL);
        json_t *j = parse(&r);
        in_flight = int_at(j, "in_flight");
        json_decref(j);
        resp_free(&r);
        if (in_flight == 0)
            break;
    }
    cr_assert_eq(in_flight, 0, "requests still in flight in the mock: %lld", in_flight);
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
