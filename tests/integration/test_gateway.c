/*
 * test_gateway.c — the OpenAI-compatible gateway over real HTTP:
 * POST /v1/chat/completions (plain and stream: true, with and without
 * stream_options.include_usage), content given as an array of text parts,
 * promptd keys as "Authorization: Bearer", every call recorded as an
 * execution (source "chat", X-Execution-Id), errors in OpenAI's envelope
 * {"error": {"message", "type", "param", "code"}}, upstream failures as
 * 502/504, GET /v1/models listing echo and the configured providers (and
 * GET /v1/models/{id} retrieving one),
 * Server-Timing (the model's share and the total), and answers many times
 * the engine's receive buffer arriving whole.
 *
 * Each test starts its own promptd (and mock LLM provider when it needs one).
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "support/harness.h"
#include "support/mock_proc.h"

static pd_server S;
static mock_proc M;
static char CFGDIR[256];

static void teardown(void)
{
    pd_stop(&S);
    mock_proc_stop(&M);
    if (CFGDIR[0]) {
        pd_rmrf(CFGDIR);
        CFGDIR[0] = '\0';
    }
}

TestSuite(gateway, .fini = teardown, .timeout = 60);

/* ---------------------------------------------------------------- helpers */

static void start_echo(void) { cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start"); }

/* mock + promptd with it as providers "openai" and "anthropic". */
static void start_with_mock(void)
{
    cr_assert_eq(mock_proc_start(&M, NULL), 0, "mock did not start");
    static char oa[160], an[160];
    snprintf(oa, sizeof oa, "OPENAI_BASE_URL=%s/v1", M.base_url);
    snprintf(an, sizeof an, "ANTHROPIC_BASE_URL=%s", M.base_url);
    const char *env[] = {oa, "OPENAI_API_KEY=x", an, "ANTHROPIC_API_KEY=x", NULL};
    cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start");
}

/* mock + promptd --config: provider "mock" (OpenAI wire), one attempt, a timeout, an alias, plus env openai. */
static void start_with_config(long timeout_ms)
{
    cr_assert_eq(mock_proc_start(&M, NULL), 0, "mock did not start");
    cr_assert_eq(pd_mkdtemp(CFGDIR, sizeof CFGDIR), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/promptd.json", CFGDIR);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"providers\":[{\"name\":\"mock\",\"type\":\"openai\",\"base_url\":\"%s/v1\",\"api_key\":\"x\","
            "\"timeout_ms\":%ld}],\"aliases\":{\"fast\":\"mock/quick\"},"
            "\"retry\":{\"max_attempts\":1,\"base_delay_ms\":10,\"max_delay_ms\":20}}",
            M.base_url, timeout_ms);
    fclose(f);
    static char oa[160];
    snprintf(oa, sizeof oa, "OPENAI_BASE_URL=%s/v1", M.base_url);
    const char *args[] = {"--config", path, NULL};
    const char *env[] = {oa, "OPENAI_API_KEY=x", NULL};
    cr_assert_eq(pd_start(&S, args, env), 0, "promptd did not start");
}

/* A gateway request with "Authorization: Bearer <key>" (key NULL: no credentials). */
static pd_resp gw(const char *method, const char *path, const char *key, const char *body)
{
    char bearer[200];
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", key ? key : "");
    const char *hdrs[] = {bearer, NULL};
    pd_resp r;
    int rc = pd_req(&S, method, path, NULL, body, key ? hdrs : NULL, &r);
    cr_assert_eq(rc, 0, "%s %s: transfer failed: %s", method, path, r.error);
    return r;
}

static pd_resp chat(const char *body) { return gw("POST", "/v1/chat/completions", S.admin_key, body); }

/* OpenAI's error envelope: exactly {"error": {message, type, param, code}}. */
static void assert_oai_error(const pd_resp *r, long status, const char *type, const char *param)
{
    cr_assert_eq(r->status, status, "want %ld, got %ld: %s", status, r->status, r->body);
    cr_assert(json_is_object(r->json) && json_object_size(r->json) == 1, "only 'error' at the top: %s", r->body);
    json_t *e = json_object_get(r->json, "error");
    cr_assert(json_is_object(e), "%s", r->body);
    const char *msg = json_string_value(json_object_get(e, "message"));
    cr_assert(msg && *msg, "error.message: %s", r->body);
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")) ? json_string_value(json_object_get(e, "type"))
                                                                   : "(none)",
                     type, "%s", r->body);
    json_t *p = json_object_get(e, "param"), *c = json_object_get(e, "code");
    cr_assert(p && (json_is_string(p) || json_is_null(p)), "error.param present: %s", r->body);
    cr_assert(c && (json_is_string(c) || json_is_null(c)), "error.code present: %s", r->body);
    if (param)
        cr_assert_str_eq(json_string_value(p) ? json_string_value(p) : "(null)", param, "%s", r->body);
    else
        cr_assert(json_is_null(p), "param should be null: %s", r->body);
}

static void expect_oai_error(const char *body, long status, const char *type, const char *param)
{
    pd_resp r = chat(body);
    assert_oai_error(&r, status, type, param);
    pd_resp_free(&r);
}

static json_t *upstream_body(const char *body);
static long total_executions(void);

static long long est_tokens(size_t bytes)
{
    long long t = (long long)(bytes / 4 + (bytes % 4 != 0));
    return t < 1 ? 1 : t;
}

/* GET /executions/:id (attributes, new reference). */
static json_t *get_exec(const char *eid)
{
    char path[128];
    snprintf(path, sizeof path, "/executions/%s", eid);
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", path, S.admin_key, NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *a = json_incref(pd_json_at(r.json, "data.attributes"));
    pd_resp_free(&r);
    return a;
}

/* ---- SSE in OpenAI's shape: "data: {chunk}" ... "data: [DONE]" ---- */

typedef struct oai_stream {
    json_t *chunks; /* array of parsed chunk objects (the [DONE] marker excluded) */
    int done;       /* "data: [DONE]" was the last event */
    int after_done; /* events after [DONE] */
    char text[8192];
} oai_stream;

static void oai_stream_read(const char *body, oai_stream *os)
{
    memset(os, 0, sizeof *os);
    os->chunks = json_array();
    const char *p = body;
    while (*p) {
        const char *end = strstr(p, "\n\n");
        size_t blen = end ? (size_t)(end - p) : strlen(p);
        if (blen >= 6 && strncmp(p, "data: ", 6) == 0) {
            char *data = strndup(p + 6, blen - 6);
            if (os->done)
                os->after_done++;
            if (strcmp(data, "[DONE]") == 0) {
                os->done = 1;
            } else {
                json_t *j = json_loads(data, 0, NULL);
                cr_assert_not_null(j, "a chunk is not JSON: %s", data);
                json_array_append_new(os->chunks, j);
                const char *c = pd_str_at(j, "choices.0.delta.content");
                if (c)
                    strncat(os->text, c, sizeof os->text - strlen(os->text) - 1);
            }
            free(data);
        } else if (blen > 0) {
            cr_assert(p[0] == ':', "unexpected SSE block: %.*s", (int)blen, p);
        }
        p = end ? end + 2 : p + blen;
    }
}

/* ---------------------------------------------------------------- completions */

Test(gateway, chat_completion_on_echo_is_recorded)
{
    start_echo();
    pd_resp r = chat("{\"model\":\"echo\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                     "{\"role\":\"user\",\"content\":\"hello there\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    const char *ct = pd_header(&r, "Content-Type");
    cr_assert(ct && !strncmp(ct, "application/json", 16), "%s", ct ? ct : "(none)");
    cr_assert_str_eq(pd_str_at(r.json, "object"), "chat.completion", "%s", r.body);
    const char *id = pd_str_at(r.json, "id");
    cr_assert(id && !strncmp(id, "chatcmpl-", 9), "%s", r.body);
    cr_assert(json_is_integer(pd_json_at(r.json, "created")), "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "model"), "echo", "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "choices")), 1, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "choices.0.index", -1), 0, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "choices.0.message.role"), "assistant", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "choices.0.message.content"), "hello there", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "choices.0.finish_reason"), "stop", "%s", r.body);
    long long pt = est_tokens(strlen("be brief") + strlen("hello there")), ctk = est_tokens(strlen("hello there"));
    cr_assert_eq(pd_int_at(r.json, "usage.prompt_tokens", -1), pt, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "usage.completion_tokens", -1), ctk, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "usage.total_tokens", -1), pt + ctk, "%s", r.body);
    const char *xh = pd_header(&r, "X-Execution-Id");
    cr_assert(xh && strlen(xh) == 36, "X-Execution-Id: %s", xh ? xh : "(none)");
    char eid[64];
    snprintf(eid, sizeof eid, "%s", xh);
    pd_resp_free(&r);

    /* recorded, across prompts, with source "chat" */
    pd_resp l;
    cr_assert_eq(pd_req(&S, "GET", "/executions", S.admin_key, NULL, NULL, &l), 0);
    cr_assert_eq(l.status, 200, "%s", l.body);
    cr_assert_eq(pd_int_at(l.json, "meta.totalRecords", -1), 1, "%s", l.body);
    cr_assert_str_eq(pd_str_at(l.json, "data.0.id"), eid, "%s", l.body);
    cr_assert_str_eq(pd_str_at(l.json, "data.0.attributes.source"), "chat", "%s", l.body);
    pd_resp_free(&l);
    json_t *a = get_exec(eid);
    char *dump = json_dumps(a, JSON_COMPACT);
    cr_assert_str_eq(pd_str_at(a, "status"), "completed", "%s", dump);
    cr_assert_str_eq(pd_str_at(a, "model"), "echo", "%s", dump);
    cr_assert_str_eq(pd_str_at(a, "output"), "hello there", "%s", dump);
    cr_assert_str_eq(pd_str_at(a, "rendered_prompt"), "hello there", "%s", dump);
    cr_assert_eq(pd_int_at(a, "tokens_used", -1), pt + ctk, "%s", dump);
    cr_assert(json_is_null(json_object_get(a, "prompt_id")), "%s", dump);
    cr_assert(json_is_null(json_object_get(a, "error")), "%s", dump);
    free(dump);
    json_decref(a);

    /* AppId works as well as Bearer; the default model is echo */
    cr_assert_eq(pd_req(&S, "POST", "/v1/chat/completions", S.admin_key,
                        "{\"messages\":[{\"role\":\"user\",\"content\":\"via appid\"}]}", NULL, &r),
                 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "choices.0.message.content"), "via appid", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "model"), "echo", "%s", r.body);
    pd_resp_free(&r);
}

Test(gateway, chat_completion_through_providers)
{
    start_with_mock();
    static const char *const models[] = {"openai/gpt-x", "anthropic/claude-x"};
    for (int i = 0; i < 2; i++) {
        char *body = pd_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}], s:i}", "model", models[i],
                             "messages", "role", "system", "content", "be brief", "role", "user", "content",
                             "first question", "role", "assistant", "content", "first answer", "role", "user",
                             "content", "hello there", "max_completion_tokens", 50);
        pd_resp r = chat(body);
        free(body);
        cr_assert_eq(r.status, 200, "%s: %s", models[i], r.body);
        cr_assert_str_eq(pd_str_at(r.json, "choices.0.message.content"), "mock reply: hello there", "%s", r.body);
        /* the mock counts words: 2 + 2 + 2 + 2 in, 4 out */
        cr_assert_eq(pd_int_at(r.json, "usage.prompt_tokens", -1), 8, "%s", r.body);
        cr_assert_eq(pd_int_at(r.json, "usage.completion_tokens", -1), 4, "%s", r.body);
        cr_assert_eq(pd_int_at(r.json, "usage.total_tokens", -1), 12, "%s", r.body);
        cr_assert_str_eq(pd_str_at(r.json, "model"), models[i], "%s", r.body);
        char eid[64];
        snprintf(eid, sizeof eid, "%s", pd_header(&r, "X-Execution-Id") ? pd_header(&r, "X-Execution-Id") : "?");
        pd_resp_free(&r);
        json_t *a = get_exec(eid);
        cr_assert_str_eq(pd_str_at(a, "model"), models[i]);
        cr_assert_str_eq(pd_str_at(a, "output"), "mock reply: hello there");
        cr_assert_str_eq(pd_str_at(a, "source"), "chat");
        json_decref(a);
    }

    /* max_completion_tokens reaches an OpenAI upstream under its own name (newer OpenAI models
     * refuse max_tokens), an Anthropic one as its max_tokens */
    pd_resp r = chat("{\"model\":\"openai/gpt-x\",\"max_completion_tokens\":77,"
                     "\"messages\":[{\"role\":\"user\",\"content\":\"[mock:echo_request] mct\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *up = json_loads(pd_str_at(r.json, "choices.0.message.content"), 0, NULL);
    cr_assert_not_null(up, "%s", r.body);
    cr_assert_eq(pd_int_at(up, "max_completion_tokens", -1), 77, "%s", r.body);
    cr_assert_null(json_object_get(up, "max_tokens"), "%s", r.body);
    json_decref(up);
    pd_resp_free(&r);
    r = chat("{\"model\":\"anthropic/claude-x\",\"max_completion_tokens\":77,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"[mock:echo_request] mct\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    up = json_loads(pd_str_at(r.json, "choices.0.message.content"), 0, NULL);
    cr_assert_not_null(up, "%s", r.body);
    cr_assert_eq(pd_int_at(up, "max_tokens", -1), 77, "%s", r.body);
    json_decref(up);
    pd_resp_free(&r);
}

Test(gateway, content_as_array_of_text_parts)
{
    start_echo();
    pd_resp r = chat("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hello\"},"
                     "{\"type\":\"text\",\"text\":\"world\"}]}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "choices.0.message.content"), "hello\nworld", "%s", r.body);
    pd_resp_free(&r);
    /* an image part adds no text for echo (the model it is meant for gets it: see images_reach_the_upstream) */
    r = chat("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
             "{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x/y.png\"}}]}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "choices.0.message.content"), "look", "%s", r.body);
    pd_resp_free(&r);
    expect_oai_error("{\"messages\":[{\"role\":\"user\",\"content\":42}]}", 400, "invalid_request_error", "messages");
    /* a part with neither text nor a type; an image without its url; an image outside a user message */
    expect_oai_error("{\"messages\":[{\"role\":\"user\",\"content\":[{\"image_url\":{\"url\":\"http://x\"}}]}]}", 400,
                     "invalid_request_error", "messages");
    expect_oai_error("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]}",
                     400, "invalid_request_error", "messages");
    expect_oai_error("{\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
                     "{\"url\":\"http://x/y.png\"}}]},{\"role\":\"user\",\"content\":\"hi\"}]}",
                     400, "invalid_request_error", "messages");
}

Test(gateway, content_parts_reach_the_upstream)
{
    start_with_mock();
    pd_resp r = chat("{\"model\":\"openai/gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":"
                     "[{\"type\":\"text\",\"text\":\"part one\"},{\"type\":\"text\",\"text\":\"part two\"}]}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "choices.0.message.content"), "mock reply: part one\npart two", "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "usage.prompt_tokens", -1), 4, "%s", r.body);
    pd_resp_free(&r);
}

Test(gateway, images_reach_the_upstream)
{
    start_with_mock();
    /* an OpenAI-compatible model gets the parts as sent */
    json_t *up =
        upstream_body("{\"model\":\"openai/gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":["
                      "{\"type\":\"text\",\"text\":\"[mock:echo_request] what is it\"},{\"type\":\"image_url\","
                      "\"image_url\":{\"url\":\"https://example.com/cat.jpg\",\"detail\":\"low\"}}]}]}");
    json_t *want = json_loads("[{\"type\":\"text\",\"text\":\"[mock:echo_request] what is it\"},{\"type\":"
                              "\"image_url\",\"image_url\":{\"url\":\"https://example.com/cat.jpg\",\"detail\":"
                              "\"low\"}}]",
                              0, NULL);
    cr_assert(json_equal(pd_json_at(up, "messages.0.content"), want), "%s", json_dumps(up, JSON_COMPACT));
    json_decref(want);
    json_decref(up);

    /* an Anthropic model gets image blocks: base64 from a data: URL, or the URL */
    up = upstream_body("{\"model\":\"anthropic/claude-x\",\"messages\":[{\"role\":\"user\",\"content\":["
                       "{\"type\":\"text\",\"text\":\"[mock:echo_request]\"},{\"type\":\"image_url\",\"image_url\":"
                       "{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},{\"type\":\"image_url\",\"image_url\":"
                       "{\"url\":\"https://example.com/cat.jpg\"}}]}]}");
    want = json_loads("[{\"type\":\"text\",\"text\":\"[mock:echo_request]\"},{\"type\":\"image\",\"source\":"
                      "{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},{\"type\":"
                      "\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/cat.jpg\"}}]",
                      0, NULL);
    cr_assert(json_equal(pd_json_at(up, "messages.0.content"), want), "%s", json_dumps(up, JSON_COMPACT));
    json_decref(want);
    json_decref(up);

    /* the record keeps the text as its rendered prompt */
    pd_resp r = chat("{\"model\":\"openai/gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                     "\"text\",\"text\":\"describe\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
                     "\"https://example.com/cat.jpg\"}}]}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "choices.0.message.content"), "mock reply: describe", "%s", r.body);
    json_t *a = get_exec(pd_header(&r, "X-Execution-Id"));
    cr_assert_str_eq(pd_str_at(a, "rendered_prompt"), "describe");
    json_decref(a);
    pd_resp_free(&r);

    /* what Anthropic cannot take is a 400 before anything is recorded */
    long before = total_executions();
    expect_oai_error("{\"model\":\"anthropic/claude-x\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                     "\"input_audio\",\"input_audio\":{\"data\":\"AAAA\",\"format\":\"wav\"}}]}]}",
                     400, "invalid_request_error", "messages");
    expect_oai_error("{\"model\":\"anthropic/claude-x\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                     "\"image_url\",\"image_url\":{\"url\":\"ftp://example.com/cat.jpg\"}}]}]}",
                     400, "invalid_request_error", "messages");
    cr_assert_eq(total_executions(), before);
}

/* ---------------------------------------------------------------- streaming */

static void check_stream(const char *body, const char *want_text, const char *want_model, int with_usage, long long pt,
                         long long ctk)
{
    oai_stream os;
    oai_stream_read(body, &os);
    cr_assert(os.done, "the stream ends with data: [DONE]: %s", body);
    cr_assert_eq(os.after_done, 0, "%s", body);
    size_t n = json_array_size(os.chunks);
    cr_assert_geq(n, (size_t)(with_usage ? 3 : 2), "%s", body);
    cr_assert_str_eq(os.text, want_text, "%s", body);
    const char *id = pd_str_at(json_array_get(os.chunks, 0), "id");
    cr_assert(id && !strncmp(id, "chatcmpl-", 9), "%s", body);
    cr_assert_str_eq(pd_str_at(json_array_get(os.chunks, 0), "choices.0.delta.role"), "assistant",
                     "the first chunk names the role: %s", body);
    size_t content_chunks = 0, finish_at = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(os.chunks, i);
        cr_assert_str_eq(pd_str_at(c, "object"), "chat.completion.chunk", "%s", body);
        cr_assert_str_eq(pd_str_at(c, "id"), id, "one id for every chunk: %s", body);
        cr_assert_str_eq(pd_str_at(c, "model"), want_model, "%s", body);
        if (pd_str_at(c, "choices.0.delta.content"))
            content_chunks++;
        json_t *fr = pd_json_at(c, "choices.0.finish_reason");
        if (json_is_string(fr)) {
            cr_assert_eq(finish_at, (size_t)-1, "one finish_reason: %s", body);
            finish_at = i;
            cr_assert_str_eq(json_string_value(fr), "stop", "%s", body);
        } else if (json_array_size(pd_json_at(c, "choices")) > 0) {
            cr_assert(json_is_null(fr), "finish_reason null before the end: %s", body);
        }
    }
    cr_assert_gt(content_chunks, 1, "the text comes in pieces: %s", body);
    cr_assert_neq(finish_at, (size_t)-1, "no chunk with a finish_reason: %s", body);
    json_t *last = json_array_get(os.chunks, n - 1);
    if (with_usage) {
        cr_assert_eq(finish_at, n - 2, "the usage chunk follows the finish chunk: %s", body);
        cr_assert(json_is_array(pd_json_at(last, "choices")) && json_array_size(pd_json_at(last, "choices")) == 0,
                  "usage chunk has empty choices: %s", body);
        cr_assert_eq(pd_int_at(last, "usage.prompt_tokens", -1), pt, "%s", body);
        cr_assert_eq(pd_int_at(last, "usage.completion_tokens", -1), ctk, "%s", body);
        cr_assert_eq(pd_int_at(last, "usage.total_tokens", -1), pt + ctk, "%s", body);
    } else {
        cr_assert_eq(finish_at, n - 1, "%s", body);
        for (size_t i = 0; i < n; i++) {
            json_t *u = json_object_get(json_array_get(os.chunks, i), "usage");
            cr_assert(!u || json_is_null(u), "no usage unless asked: %s", body);
        }
    }
    json_decref(os.chunks);
}

Test(gateway, stream_on_echo_and_providers)
{
    start_with_mock();
    const char *text = "one two three four";
    long long pt = est_tokens(strlen(text)), ctk = est_tokens(strlen(text));
    for (int usage = 0; usage < 2; usage++) {
        char *body = pd_pack("{s:s, s:b, s:{s:b}, s:[{s:s, s:s}]}", "model", "echo", "stream", 1, "stream_options",
                             "include_usage", usage, "messages", "role", "user", "content", text);
        pd_resp r = chat(body);
        free(body);
        cr_assert_eq(r.status, 200, "%s", r.body);
        const char *ct = pd_header(&r, "Content-Type");
        cr_assert(ct && !strncmp(ct, "text/event-stream", 17), "%s", ct ? ct : "(none)");
        const char *xh = pd_header(&r, "X-Execution-Id");
        cr_assert(xh && strlen(xh) == 36, "%s", r.headers);
        char eid[64];
        snprintf(eid, sizeof eid, "%s", xh);
        check_stream(r.body, text, "echo", usage, pt, ctk);
        pd_resp_free(&r);
        json_t *a = get_exec(eid);
        cr_assert_str_eq(pd_str_at(a, "status"), "completed");
        cr_assert_str_eq(pd_str_at(a, "output"), text);
        cr_assert_str_eq(pd_str_at(a, "source"), "chat");
        json_decref(a);
    }
    static const char *const models[] = {"openai/gpt-x", "anthropic/claude-x"};
    for (int i = 0; i < 2; i++) {
        char *body = pd_pack("{s:s, s:b, s:{s:b}, s:[{s:s, s:s}]}", "model", models[i], "stream", 1, "stream_options",
                             "include_usage", 1, "messages", "role", "user", "content", "stream this please");
        pd_resp r = chat(body);
        free(body);
        cr_assert_eq(r.status, 200, "%s", r.body);
        check_stream(r.body, "mock reply: stream this please", models[i], 1, 3, 5);
        pd_resp_free(&r);
    }
}

/* Server-Timing: "upstream;dur=<ms>, total;dur=<ms>" on a complete answer
 * that called a model; no header on anything else, streams included (their
 * headers leave before their end). Returns 0 and the two values, -1 when the
 * header is missing or malformed. */
static int server_timing(const pd_resp *r, double *upstream, double *total)
{
    const char *h = pd_header(r, "Server-Timing");
    int n = 0;
    *upstream = *total = -1;
    if (h && sscanf(h, "upstream;dur=%lf, total;dur=%lf%n", upstream, total, &n) == 2 && h[n] == '\0')
        return 0;
    return -1;
}

Test(gateway, server_timing_tells_the_model_share_from_promptd_own)
{
    start_with_mock();
    double up, total;
    /* the mock holds this answer 300 ms: the upstream share is about that (its timer and promptd's
     * clock may disagree by a fraction of a millisecond: seen 299.85), the total more */
    pd_resp r = chat("{\"model\":\"openai/gpt-x\",\"messages\":[{\"role\":\"user\","
                     "\"content\":\"[mock:latency=300] slow one\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(server_timing(&r, &up, &total), 0, "Server-Timing: %s", pd_header(&r, "Server-Timing"));
    cr_assert(up >= 295.0 && total >= up, "upstream %.3f ms, total %.3f ms", up, total);
    pd_resp_free(&r);

    /* echo is a model too, answered at once */
    r = chat("{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(server_timing(&r, &up, &total), 0, "Server-Timing: %s", pd_header(&r, "Server-Timing"));
    cr_assert(up >= 0.0 && up < 1000.0 && total >= up, "upstream %.3f ms, total %.3f ms", up, total);
    pd_resp_free(&r);

    /* a failed call still says what the upstream took (the provider's 400, passed on) */
    r = chat("{\"model\":\"openai/gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":\"[mock:status=400] no\"}]}");
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert_eq(server_timing(&r, &up, &total), 0, "Server-Timing: %s", pd_header(&r, "Server-Timing"));
    cr_assert(up >= 0.0 && total >= up);
    pd_resp_free(&r);

    /* no model, no header: a plain read, a failed key check, a request refused before the call */
    r = gw("GET", "/v1/models", S.admin_key, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_null(pd_header(&r, "Server-Timing"), "%s", pd_header(&r, "Server-Timing"));
    pd_resp_free(&r);
    r = gw("GET", "/v1/models", "pk_live_wrong", NULL);
    cr_assert_eq(r.status, 401);
    cr_assert_null(pd_header(&r, "Server-Timing"), "%s", pd_header(&r, "Server-Timing"));
    pd_resp_free(&r);
    r = chat("{\"model\":\"no-such-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    cr_assert_null(pd_header(&r, "Server-Timing"), "%s", pd_header(&r, "Server-Timing"));
    pd_resp_free(&r);

    /* a stream: none */
    r = chat("{\"model\":\"echo\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_null(pd_header(&r, "Server-Timing"), "%s", pd_header(&r, "Server-Timing"));
    pd_resp_free(&r);
}

/* An answer far larger than the engine's 1 KiB receive buffer arrives in
 * many reads and must come through whole, sync and streamed, on both wire
 * formats. */
Test(gateway, large_answers_arrive_whole)
{
    start_with_mock();
    size_t n = 60000;
    char *text = malloc(n + 1);
    cr_assert_not_null(text);
    for (size_t i = 0; i < n; i++)
        text[i] = (i % 7 == 6) ? ' ' : (char)('a' + (int)(i % 26));
    text[n] = '\0';
    char *want = malloc(n + 32);
    cr_assert_not_null(want);
    snprintf(want, n + 32, "mock reply: %s", text);
    static const char *const models[] = {"openai/gpt-x", "anthropic/claude-x"};
    for (int i = 0; i < 2; i++) {
        /* max_tokens: the Messages API needs one, and promptd's default (1024) would cut the mock's reply */
        char *body = pd_pack("{s:s, s:i, s:[{s:s, s:s}]}", "model", models[i], "max_tokens", 20000, "messages", "role",
                             "user", "content", text);
        pd_resp r = chat(body);
        free(body);
        cr_assert_eq(r.status, 200, "%s: %.300s", models[i], r.body);
        const char *got = pd_str_at(r.json, "choices.0.message.content");
        cr_assert(got && strcmp(got, want) == 0, "%s: the answer is not whole (%zu bytes, want %zu)", models[i],
                  got ? strlen(got) : 0, strlen(want));
        pd_resp_free(&r);

        body = pd_pack("{s:s, s:i, s:b, s:[{s:s, s:s}]}", "model", models[i], "max_tokens", 20000, "stream", 1,
                       "messages", "role", "user", "content", text);
        r = chat(body);
        free(body);
        cr_assert_eq(r.status, 200, "%s: %.300s", models[i], r.body);
        char eid[64];
        snprintf(eid, sizeof eid, "%s", pd_header(&r, "X-Execution-Id") ? pd_header(&r, "X-Execution-Id") : "?");
        pd_resp_free(&r);
        json_t *a = get_exec(eid); /* the stream's text, as recorded */
        cr_assert_str_eq(pd_str_at(a, "status"), "completed");
        const char *out = pd_str_at(a, "output");
        cr_assert(out && strcmp(out, want) == 0, "%s: streamed output not whole (%zu bytes)", models[i],
                  out ? strlen(out) : 0);
        json_decref(a);
    }
    free(text);
    free(want);
}

/* ---------------------------------------------------------------- errors */

Test(gateway, request_errors_use_the_openai_envelope)
{
    start_echo();
    expect_oai_error("{\"model\":\"echo\"}", 400, "invalid_request_error", "messages");
    expect_oai_error("{\"messages\":[]}", 400, "invalid_request_error", "messages");
    expect_oai_error("{\"messages\":\"hi\"}", 400, "invalid_request_error", "messages");
    expect_oai_error("{\"messages\":[{\"role\":\"robot\",\"content\":\"hi\"}]}", 400, "invalid_request_error",
                     "messages");
    expect_oai_error("{\"messages\":[{\"content\":\"hi\"}]}", 400, "invalid_request_error", "messages");
    expect_oai_error("{\"messages\":[\"hi\"]}", 400, "invalid_request_error", "messages");
    expect_oai_error("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":\"yes\"}", 400,
                     "invalid_request_error", "stream");
    static const char *const bad_n[] = {"0", "17", "-1", "1.5", "\"2\"", "true"};
    for (size_t i = 0; i < sizeof bad_n / sizeof bad_n[0]; i++) {
        char body[160];
        snprintf(body, sizeof body, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"n\":%s}", bad_n[i]);
        expect_oai_error(body, 400, "invalid_request_error", "n");
    }
    expect_oai_error("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_completion_tokens\":0}", 400,
                     "invalid_request_error", "max_completion_tokens");
    /* not JSON */
    pd_resp r = chat("{\"messages\":");
    assert_oai_error(&r, 400, "invalid_request_error", NULL);
    pd_resp_free(&r);
    /* nothing was recorded */
    cr_assert_eq(pd_req(&S, "GET", "/executions", S.admin_key, NULL, NULL, &r), 0);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 0, "%s", r.body);
    pd_resp_free(&r);
}

/* max_tokens and temperature are the same kind of parameter as max_completion_tokens and n,
 * which this surface rejects with 400 like OpenAI does; they must not answer differently. */
Test(gateway, parameter_errors_are_400_like_the_rest_of_the_surface)
{
    start_echo();
    expect_oai_error("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":0}", 400,
                     "invalid_request_error", "max_tokens");
    expect_oai_error("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":\"9\"}", 400,
                     "invalid_request_error", "max_tokens");
    expect_oai_error("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":5}", 400,
                     "invalid_request_error", "temperature");
    expect_oai_error("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":\"warm\"}", 400,
                     "invalid_request_error", "temperature");
}

Test(gateway, unknown_model_is_not_found_like_openai)
{
    start_echo();
    static const char *const names[] = {"gpt-4o", "openai/gpt-4o", "ghost/model"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *body = pd_pack("{s:s, s:[{s:s, s:s}]}", "model", names[i], "messages", "role", "user", "content", "hi");
        pd_resp r = chat(body);
        free(body);
        /* as OpenAI: 404, invalid_request_error, code model_not_found (the SDKs raise NotFoundError) */
        assert_oai_error(&r, 404, "invalid_request_error", "model");
        cr_assert_str_eq(pd_str_at(r.json, "error.code"), "model_not_found", "%s", r.body);
        cr_assert(strstr(pd_str_at(r.json, "error.message"), names[i]), "the message names the model: %s", r.body);
        pd_resp_free(&r);
    }
}

Test(gateway, authentication_errors)
{
    start_echo();
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    pd_resp r = gw("POST", "/v1/chat/completions", NULL, body);
    assert_oai_error(&r, 401, "authentication_error", NULL);
    cr_assert_not_null(pd_header(&r, "WWW-Authenticate"), "%s", r.headers);
    pd_resp_free(&r);
    r = gw("POST", "/v1/chat/completions", "pd_not_a_real_key_0123456789", body);
    assert_oai_error(&r, 401, "authentication_error", NULL);
    pd_resp_free(&r);
    r = gw("GET", "/v1/models", NULL, NULL);
    assert_oai_error(&r, 401, "authentication_error", NULL);
    pd_resp_free(&r);
    /* another organization's key works, and sees only its own executions */
    char other[128];
    cr_assert_eq(pd_new_org_key(&S, "elsewhere", other, sizeof other), 0);
    r = gw("POST", "/v1/chat/completions", other, body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    char eid[64];
    snprintf(eid, sizeof eid, "%s", pd_header(&r, "X-Execution-Id") ? pd_header(&r, "X-Execution-Id") : "?");
    pd_resp_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/executions/%s", eid);
    cr_assert_eq(pd_req(&S, "GET", path, S.admin_key, NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 404, "another organization's execution: %s", r.body);
    pd_resp_free(&r);
    cr_assert_eq(pd_req(&S, "GET", path, other, NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    pd_resp_free(&r);
}

Test(gateway, upstream_failures_are_502_and_504)
{
    start_with_config(1000);
    pd_resp r = chat("{\"model\":\"mock/m\",\"messages\":[{\"role\":\"user\",\"content\":\"[mock:status=500] x\"}]}");
    assert_oai_error(&r, 502, "api_error", NULL);
    const char *xh = pd_header(&r, "X-Execution-Id");
    cr_assert(xh && strlen(xh) == 36, "a failed call names its execution: %s", r.headers);
    char eid[64];
    snprintf(eid, sizeof eid, "%s", xh);
    pd_resp_free(&r);
    json_t *a = get_exec(eid);
    cr_assert_str_eq(pd_str_at(a, "status"), "failed");
    cr_assert(pd_str_at(a, "error") && *pd_str_at(a, "error"));
    cr_assert_str_eq(pd_str_at(a, "model"), "mock/m");
    json_decref(a);

    r = chat("{\"model\":\"mock/m\",\"messages\":[{\"role\":\"user\",\"content\":\"[mock:latency=4000] slow\"}]}");
    cr_assert_eq(r.status, 504, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "error.type") ? pd_str_at(r.json, "error.type") : "(none)", "timeout_error",
                     "%s", r.body);
    pd_resp_free(&r);

    r = chat("{\"model\":\"mock/m\",\"messages\":[{\"role\":\"user\",\"content\":\"[mock:malformed] x\"}]}");
    assert_oai_error(&r, 502, "api_error", NULL);
    pd_resp_free(&r);

    /* a streamed failure: an error object, then [DONE] */
    r = chat("{\"model\":\"mock/m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
             "\"[mock:drop] one two three\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    oai_stream os;
    oai_stream_read(r.body, &os);
    cr_assert(os.done, "%s", r.body);
    json_t *last = json_array_get(os.chunks, json_array_size(os.chunks) - 1);
    cr_assert(json_is_object(pd_json_at(last, "error")), "the last chunk is an error: %s", r.body);
    cr_assert(pd_str_at(last, "error.message") && *pd_str_at(last, "error.message"), "%s", r.body);
    cr_assert_not_null(pd_str_at(last, "error.type"), "%s", r.body);
    json_decref(os.chunks);
    pd_resp_free(&r);

    /* still serving, through an alias */
    r = chat("{\"model\":\"fast\",\"messages\":[{\"role\":\"user\",\"content\":\"ok now\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "choices.0.message.content"), "mock reply: ok now", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "model"), "mock/quick", "%s", r.body);
    pd_resp_free(&r);

    /* all of them recorded as chat executions */
    cr_assert_eq(pd_req(&S, "GET", "/executions?status=failed", S.admin_key, NULL, NULL, &r), 0);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 4, "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- models */

static json_t *find_model(json_t *data, const char *id)
{
    size_t i;
    json_t *m;
    json_array_foreach(data, i, m)
    {
        if (pd_str_at(m, "id") && !strcmp(pd_str_at(m, "id"), id))
            return m;
    }
    return NULL;
}

Test(gateway, models_lists_echo_only_by_default)
{
    start_echo();
    pd_resp r = gw("GET", "/v1/models", S.admin_key, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "object"), "list", "%s", r.body);
    json_t *data = pd_json_at(r.json, "data");
    cr_assert_eq(json_array_size(data), 1, "%s", r.body);
    json_t *m = find_model(data, "echo");
    cr_assert_not_null(m, "%s", r.body);
    cr_assert_str_eq(pd_str_at(m, "object"), "model", "%s", r.body);
    cr_assert_not_null(pd_str_at(m, "owned_by"), "%s", r.body);
    pd_resp_free(&r);
}

Test(gateway, models_lists_configured_providers_and_aliases)
{
    start_with_config(5000);
    pd_resp r = gw("GET", "/v1/models", S.admin_key, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *data = pd_json_at(r.json, "data");
    static const char *const ids[] = {"echo", "fast", "mock/quick", "mock/*", "openai/*"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        json_t *m = find_model(data, ids[i]);
        cr_assert_not_null(m, "%s missing from %s", ids[i], r.body);
        cr_assert_str_eq(pd_str_at(m, "object"), "model", "%s", r.body);
    }
    cr_assert_str_eq(pd_str_at(find_model(data, "fast"), "owned_by"), "mock", "%s", r.body);
    cr_assert_str_eq(pd_str_at(find_model(data, "openai/*"), "owned_by"), "openai", "%s", r.body);
    pd_resp_free(&r);
}

/* One model by id, as the SDKs' models.retrieve asks: every name a completion
 * takes, slashes in it and all, and a 404 in OpenAI's envelope otherwise. */
Test(gateway, models_can_be_retrieved_by_id)
{
    start_with_config(5000);
    static const struct {
        const char *path, *id, *owner;
    } ok[] = {{"/v1/models/echo", "echo", "promptd"},
              {"/v1/models/fast", "fast", "mock"},
              {"/v1/models/mock/quick", "mock/quick", "mock"},
              {"/v1/models/mock/any-name-at-all", "mock/any-name-at-all", "mock"},
              {"/v1/models/openai/gpt-4o", "openai/gpt-4o", "openai"},
              {"/v1/models/openai%2Fgpt-4o-mini", "openai/gpt-4o-mini", "openai"}};
    pd_resp list = gw("GET", "/v1/models", S.admin_key, NULL);
    cr_assert_eq(list.status, 200, "%s", list.body);
    json_int_t created =
        json_integer_value(json_object_get(find_model(pd_json_at(list.json, "data"), "echo"), "created"));
    cr_assert_gt(created, 1700000000, "a model's created is a Unix time: %s", list.body);
    pd_resp_free(&list);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        pd_resp r = gw("GET", ok[i].path, S.admin_key, NULL);
        cr_assert_eq(r.status, 200, "%s: %s", ok[i].path, r.body);
        cr_assert_str_eq(pd_str_at(r.json, "id"), ok[i].id, "%s", r.body);
        cr_assert_str_eq(pd_str_at(r.json, "object"), "model", "%s", r.body);
        cr_assert_str_eq(pd_str_at(r.json, "owned_by"), ok[i].owner, "%s", r.body);
        cr_assert_eq(json_integer_value(json_object_get(r.json, "created")), created, "%s", r.body);
        pd_resp_free(&r);
    }
    static const char *const missing[] = {"/v1/models/nope", "/v1/models/anthropic/claude", "/v1/models/other/x"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        pd_resp r = gw("GET", missing[i], S.admin_key, NULL);
        assert_oai_error(&r, 404, "invalid_request_error", "model");
        cr_assert_str_eq(pd_str_at(r.json, "error.code"), "model_not_found", "%s", r.body);
        pd_resp_free(&r);
    }
    pd_resp r = gw("GET", "/v1/models/echo", NULL, NULL);
    assert_oai_error(&r, 401, "authentication_error", NULL);
    pd_resp_free(&r);
    r = gw("POST", "/v1/models/echo", S.admin_key, "{}");
    cr_assert_eq(r.status, 405, "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- logprobs and n */

/* "logprobs": the model's log probabilities come back as it sent them; each
 * streamed text chunk carries its own. Without the option, null. */
Test(gateway, logprobs_come_back_from_openai_compatible_models)
{
    start_with_mock();
    pd_resp r = chat("{\"model\":\"openai/gpt-x\",\"logprobs\":true,\"top_logprobs\":2,"
                     "\"messages\":[{\"role\":\"user\",\"content\":\"alpha beta\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *content = pd_json_at(r.json, "choices.0.logprobs.content");
    char joined[256] = "";
    size_t i;
    json_t *e;
    cr_assert_eq(json_array_size(content), 4, "%s", r.body);
    json_array_foreach(content, i, e)
    {
        strcat(joined, pd_str_at(e, "token"));
        cr_assert_float_eq(json_real_value(json_object_get(e, "logprob")), -0.25 * (double)(i + 1), 1e-9, "%s", r.body);
    }
    cr_assert_str_eq(joined, pd_str_at(r.json, "choices.0.message.content"), "%s", r.body);
    json_t *sent = upstream_body("{\"model\":\"openai/gpt-x\",\"logprobs\":true,\"top_logprobs\":2,"
                                 "\"messages\":[{\"role\":\"user\",\"content\":\"[mock:echo_request]\"}]}");
    cr_assert(json_is_true(json_object_get(sent, "logprobs")), "the option reached the model");
    cr_assert_eq(json_integer_value(json_object_get(sent, "top_logprobs")), 2);
    json_decref(sent);
    pd_resp_free(&r);

    r = chat("{\"model\":\"openai/gpt-x\",\"logprobs\":true,\"stream\":true,"
             "\"messages\":[{\"role\":\"user\",\"content\":\"alpha beta\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    oai_stream os;
    oai_stream_read(r.body, &os);
    cr_assert(os.done, "%s", r.body);
    size_t with_text = 0;
    json_t *c;
    json_array_foreach(os.chunks, i, c)
    {
        const char *piece = pd_str_at(c, "choices.0.delta.content");
        cr_assert(json_object_get(json_array_get(json_object_get(c, "choices"), 0), "logprobs"),
                  "every chunk has logprobs, null or not: %s", r.body);
        if (!piece || !*piece) {
            cr_assert(json_is_null(pd_json_at(c, "choices.0.logprobs")), "%s", r.body);
            continue;
        }
        cr_assert_str_eq(pd_str_at(c, "choices.0.logprobs.content.0.token"), piece, "%s", r.body);
        with_text++;
    }
    cr_assert_eq(with_text, 4, "%s", r.body);
    cr_assert_str_eq(os.text, "mock reply: alpha beta");
    json_decref(os.chunks);
    pd_resp_free(&r);

    r = chat("{\"model\":\"openai/gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":\"alpha\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(json_is_null(pd_json_at(r.json, "choices.0.logprobs")), "%s", r.body);
    pd_resp_free(&r);
    /* an Anthropic model cannot give them: a 400 naming the field */
    r = chat(
        "{\"model\":\"anthropic/claude-x\",\"logprobs\":true,\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}");
    assert_oai_error(&r, 400, "invalid_request_error", "logprobs");
    pd_resp_free(&r);
}

/* Split "id1,id2,..." into ids (at most max); returns the count. */
static size_t split_ids(const char *header, char ids[][64], size_t max)
{
    size_t n = 0;
    char tmp[1024], *save = NULL;
    snprintf(tmp, sizeof tmp, "%s", header ? header : "");
    for (char *t = strtok_r(tmp, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
        snprintf(ids[n++], 64, "%s", t);
    return n;
}

/* n choices: n model calls, n executions, one answer with every choice. */
Test(gateway, n_choices_are_each_a_call_and_an_execution)
{
    start_with_mock();
    pd_resp r = chat("{\"model\":\"echo\",\"n\":3,\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *choices = pd_json_at(r.json, "choices");
    cr_assert_eq(json_array_size(choices), 3, "%s", r.body);
    for (int i = 0; i < 3; i++) {
        json_t *ch = json_array_get(choices, (size_t)i);
        cr_assert_eq(pd_int_at(ch, "index", -1), i, "%s", r.body);
        cr_assert_str_eq(pd_str_at(ch, "message.content"), "hello there", "%s", r.body);
        cr_assert_str_eq(pd_str_at(ch, "finish_reason"), "stop", "%s", r.body);
    }
    cr_assert_eq(pd_int_at(r.json, "usage.prompt_tokens", -1), 3 * 3, "the calls' usage, summed: %s", r.body);
    cr_assert_eq(pd_int_at(r.json, "usage.total_tokens", -1), 3 * 6, "%s", r.body);
    char ids[8][64];
    cr_assert_eq(split_ids(pd_header(&r, "X-Execution-Id"), ids, 8), 3, "%s", pd_header(&r, "X-Execution-Id"));
    for (int i = 0; i < 3; i++) {
        json_t *a = get_exec(ids[i]);
        cr_assert_str_eq(pd_str_at(a, "status"), "completed");
        cr_assert_str_eq(pd_str_at(a, "source"), "chat");
        cr_assert_str_eq(pd_str_at(a, "output"), "hello there");
        json_decref(a);
    }
    cr_assert(strcmp(ids[0], ids[1]) && strcmp(ids[1], ids[2]) && strcmp(ids[0], ids[2]));
    pd_resp_free(&r);

    /* streamed from an upstream: the choices' chunks told apart by index */
    cr_assert_eq(pd_mock_stat(M.base_url, "requests"), 0, "echo calls no upstream");
    r = chat("{\"model\":\"openai/gpt-x\",\"n\":3,\"stream\":true,\"stream_options\":{\"include_usage\":true},"
             "\"messages\":[{\"role\":\"user\",\"content\":\"one two three [mock:drip=5]\"}]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(pd_mock_stat(M.base_url, "requests"), 3, "three upstream calls");
    oai_stream os;
    oai_stream_read(r.body, &os);
    cr_assert(os.done && os.after_done == 0, "%s", r.body);
    char text[3][256] = {"", "", ""};
    int roles[3] = {0}, finishes[3] = {0};
    size_t k;
    json_t *c, *usage = NULL;
    json_array_foreach(os.chunks, k, c)
    {
        if (json_array_size(json_object_get(c, "choices")) == 0) {
            usage = json_object_get(c, "usage");
            continue;
        }
        json_int_t idx = pd_int_at(c, "choices.0.index", -1);
        cr_assert(idx >= 0 && idx < 3, "%s", r.body);
        if (pd_str_at(c, "choices.0.delta.role"))
            roles[idx]++;
        if (pd_str_at(c, "choices.0.delta.content"))
            strcat(text[idx], pd_str_at(c, "choices.0.delta.content"));
        if (pd_str_at(c, "choices.0.finish_reason"))
            finishes[idx]++;
    }
    for (int i = 0; i < 3; i++) {
        cr_assert_str_eq(text[i], "mock reply: one two three", "choice %d: %s", i, r.body);
        cr_assert_eq(roles[i], 1, "choice %d opens once: %s", i, r.body);
        cr_assert_eq(finishes[i], 1, "choice %d finishes once: %s", i, r.body);
    }
    cr_assert_not_null(usage, "one usage chunk: %s", r.body);
    cr_assert_eq(pd_int_at(usage, "completion_tokens", -1), 3 * 5, "%s", r.body);
    cr_assert_eq(split_ids(pd_header(&r, "X-Execution-Id"), ids, 8), 3, "%s", pd_header(&r, "X-Execution-Id"));
    for (int i = 0; i < 3; i++) {
        json_t *a = get_exec(ids[i]);
        cr_assert_str_eq(pd_str_at(a, "status"), "completed");
        cr_assert_str_eq(pd_str_at(a, "output"), "mock reply: one two three");
        json_decref(a);
    }
    json_decref(os.chunks);
    pd_resp_free(&r);
}

/* One choice fails, the other answers: the complete answer is the failure,
 * the stream an error event next to the good choice; both are recorded. */
Test(gateway, a_failed_choice_fails_the_answer_and_both_are_recorded)
{
    start_with_config(5000);
    for (int streaming = 0; streaming < 2; streaming++) {
        char body[300];
        snprintf(body, sizeof body,
                 "{\"model\":\"mock/m\",\"n\":2,\"stream\":%s,\"messages\":[{\"role\":\"user\",\"content\":"
                 "\"fails once %d [mock:fail_times=1]\"}]}",
                 streaming ? "true" : "false", streaming);
        pd_resp r = chat(body);
        char ids[8][64];
        cr_assert_eq(split_ids(pd_header(&r, "X-Execution-Id"), ids, 8), 2, "%s", r.body);
        if (!streaming) {
            assert_oai_error(&r, 502, "api_error", NULL);
        } else {
            cr_assert_eq(r.status, 200, "%s", r.body);
            oai_stream os;
            oai_stream_read(r.body, &os);
            cr_assert(os.done, "%s", r.body);
            int errors = 0, finishes = 0;
            size_t k;
            json_t *c;
            json_array_foreach(os.chunks, k, c)
            {
                errors += json_object_get(c, "error") != NULL;
                finishes += pd_str_at(c, "choices.0.finish_reason") != NULL;
            }
            cr_assert_eq(errors, 1, "%s", r.body);
            cr_assert_eq(finishes, 1, "%s", r.body);
            json_decref(os.chunks);
        }
        int completed = 0, failed = 0;
        for (int i = 0; i < 2; i++) {
            json_t *a = get_exec(ids[i]);
            completed += !strcmp(pd_str_at(a, "status"), "completed");
            failed += !strcmp(pd_str_at(a, "status"), "failed");
            json_decref(a);
        }
        cr_assert(completed == 1 && failed == 1, "one of each: %d completed, %d failed", completed, failed);
        pd_resp_free(&r);
    }
}

/* ---------------------------------------------------------------- client gone */

typedef struct leaver {
    char exec_id[256]; /* the X-Execution-Id header: n ids, comma-separated */
    int writes;
} leaver;

static size_t leaver_header(char *data, size_t size, size_t n, void *ud)
{
    leaver *l = ud;
    size_t len = size * n;
    static const char name[] = "x-execution-id:";
    if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        const char *v = data + sizeof name - 1;
        size_t vl = len - (sizeof name - 1);
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        snprintf(l->exec_id, sizeof l->exec_id, "%.*s", (int)vl, v);
    }
    return len;
}

static size_t leaver_write(char *data, size_t size, size_t n, void *ud)
{
    (void)data;
    (void)size;
    (void)n;
    ((leaver *)ud)->writes++;
    return 0; /* hang up after the first piece */
}

/* The client hangs up after the first piece, with one choice or three: every
 * execution still completes with its whole answer, and promptd serves on. */
Test(gateway, stream_client_leaving_early_still_completes)
{
    start_with_mock();
    char url[200], bearer[200];
    snprintf(url, sizeof url, "%s/v1/chat/completions", S.base_url);
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", S.admin_key);
    const char *words = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen";
    char content[256];
    snprintf(content, sizeof content, "[mock:drip=100] %s", words);
    for (int n = 1; n <= 3; n += 2) {
        char *body = pd_pack("{s:s, s:b, s:i, s:[{s:s, s:s}]}", "model", "openai/gpt-x", "stream", 1, "n", n,
                             "messages", "role", "user", "content", content);
        CURL *h = curl_easy_init();
        struct curl_slist *hl = curl_slist_append(NULL, bearer);
        hl = curl_slist_append(hl, "Content-Type: application/json");
        leaver l = {{0}, 0};
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, leaver_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, &l);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, leaver_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &l);
        CURLcode cc = curl_easy_perform(h);
        curl_easy_cleanup(h);
        curl_slist_free_all(hl);
        free(body);
        cr_assert_eq(cc, CURLE_WRITE_ERROR, "%s", curl_easy_strerror(cc));
        cr_assert_eq(l.writes, 1);
        char ids[4][64];
        cr_assert_eq(split_ids(l.exec_id, ids, 4), (size_t)n, "X-Execution-Id: %s", l.exec_id);

        char want[256];
        snprintf(want, sizeof want, "mock reply: %s", words);
        for (int k = 0; k < n; k++) {
            cr_assert_eq(strlen(ids[k]), 36, "X-Execution-Id: %s", l.exec_id);
            json_t *a = NULL;
            for (int i = 0; i < 100; i++) {
                a = get_exec(ids[k]);
                if (strcmp(pd_str_at(a, "status"), "processing") != 0)
                    break;
                json_decref(a);
                a = NULL;
                usleep(100 * 1000);
            }
            cr_assert_not_null(a, "the execution never finished");
            cr_assert_str_eq(pd_str_at(a, "status"), "completed");
            cr_assert_str_eq(pd_str_at(a, "output"), want);
            json_decref(a);
        }
        pd_resp r = chat("{\"model\":\"openai/gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":\"still there\"}]}");
        cr_assert_eq(r.status, 200, "%s", r.body);
        pd_resp_free(&r);
    }
}

/* ---------------------------------------------------------------- tools and other options */

/* The upstream request body the mock received ([mock:echo_request] answers it as the text). */
static json_t *upstream_body(const char *body)
{
    pd_resp r = chat(body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *up = json_loads(pd_str_at(r.json, "choices.0.message.content"), 0, NULL);
    cr_assert_not_null(up, "%s", r.body);
    pd_resp_free(&r);
    return up;
}

static long total_executions(void)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/executions", S.admin_key, NULL, NULL, &r), 0);
    long n = (long)pd_int_at(r.json, "meta.totalRecords", -1);
    pd_resp_free(&r);
    return n;
}

/* Every member of want is in got, equal. */
static void assert_members(json_t *got, json_t *want)
{
    const char *key;
    json_t *v;
    json_object_foreach(want, key, v)
    {
        cr_assert(json_equal(json_object_get(got, key), v), "'%s' is not as expected in %s", key,
                  json_dumps(got, JSON_COMPACT));
    }
}

#define GET_TOOL                                                                                                       \
    "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather of a city\","             \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}"

Test(gateway, options_reach_openai_compatible_upstreams_as_sent)
{
    start_with_mock();
    json_t *up = upstream_body(
        "{\"model\":\"openai/gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":\"[mock:echo_request]\"}],"
        "\"tools\":[" GET_TOOL "],\"tool_choice\":\"auto\",\"parallel_tool_calls\":false,\"top_p\":0.5,"
        "\"stop\":[\"END\"],\"seed\":7,\"response_format\":{\"type\":\"json_object\"},\"user\":\"u-1\","
        "\"top_k\":40,\"repetition_penalty\":1.1,\"temperature\":0.2}");
    json_t *want = json_loads("{\"tools\":[" GET_TOOL "],\"tool_choice\":\"auto\",\"parallel_tool_calls\":false,"
                              "\"top_p\":0.5,\"stop\":[\"END\"],\"seed\":7,\"response_format\":{\"type\":"
                              "\"json_object\"},\"user\":\"u-1\",\"top_k\":40,\"repetition_penalty\":1.1}",
                              0, NULL);
    assert_members(up, want);
    cr_assert_str_eq(pd_str_at(up, "model"), "gpt-x");
    cr_assert(json_real_value(json_object_get(up, "temperature")) > 0.19, "temperature kept");
    json_decref(want);
    json_decref(up);

    /* what promptd reads itself is not passed on */
    up = upstream_body("{\"model\":\"openai/gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"[mock:echo_request]\"}],\"variables\":{\"a\":\"b\"},\"n\":1,\"max_tokens\":5}");
    want = json_loads("{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":\"[mock:echo_request]\"}],"
                      "\"stream\":false,\"max_tokens\":5}",
                      0, NULL);
    cr_assert(json_equal(up, want), "%s", json_dumps(up, JSON_COMPACT));
    json_decref(want);
    json_decref(up);
}

Test(gateway, options_are_translated_for_anthropic_models)
{
    start_with_mock();
    json_t *up = upstream_body(
        "{\"model\":\"anthropic/claude-x\",\"messages\":[{\"role\":\"user\",\"content\":\"[mock:echo_request]\"}],"
        "\"tools\":[" GET_TOOL ",{\"type\":\"function\",\"function\":{\"name\":\"noop\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},"
        "\"parallel_tool_calls\":false,\"top_p\":0.5,\"stop\":\"END\",\"user\":\"u-1\"}");
    json_t *want = json_loads(
        "{\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather of a city\",\"input_schema\":{\"type\":"
        "\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}},{\"name\":\"noop\",\"input_schema\":{\"type\":"
        "\"object\",\"properties\":{}}}],\"tool_choice\":{\"type\":\"tool\",\"name\":\"get_weather\","
        "\"disable_parallel_tool_use\":true},\"top_p\":0.5,\"stop_sequences\":[\"END\"],\"metadata\":{\"user_id\":"
        "\"u-1\"}}",
        0, NULL);
    assert_members(up, want);
    cr_assert_null(json_object_get(up, "user"));
    json_decref(want);
    json_decref(up);

    /* "required" is Anthropic's "any" */
    up = upstream_body("{\"model\":\"anthropic/claude-x\",\"messages\":[{\"role\":\"user\",\"content\":"
                       "\"[mock:echo_request]\"}],\"tools\":[" GET_TOOL "],\"tool_choice\":\"required\"}");
    cr_assert_str_eq(pd_str_at(up, "tool_choice.type"), "any");
    json_decref(up);

    /* an assistant's tool calls and the tool results, in Anthropic's blocks */
    up = upstream_body(
        "{\"model\":\"anthropic/claude-x\",\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":"
        "{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}},{\"id\":\"c2\",\"type\":"
        "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"cold\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"warm\"},"
        "{\"role\":\"user\",\"content\":\"[mock:echo_request]\"}],\"tools\":[" GET_TOOL "]}");
    want = json_loads(
        "[{\"role\":\"user\",\"content\":\"weather?\"},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\","
        "\"id\":\"c1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Oslo\"}},{\"type\":\"tool_use\",\"id\":\"c2\","
        "\"name\":\"get_weather\",\"input\":{\"city\":\"Rome\"}}]},{\"role\":\"user\",\"content\":[{\"type\":"
        "\"tool_result\",\"tool_use_id\":\"c1\",\"content\":\"cold\"},{\"type\":\"tool_result\",\"tool_use_id\":"
        "\"c2\",\"content\":\"warm\"}]},{\"role\":\"user\",\"content\":\"[mock:echo_request]\"}]",
        0, NULL);
    cr_assert(json_equal(json_object_get(up, "messages"), want), "%s", json_dumps(up, JSON_COMPACT));
    json_decref(want);
    json_decref(up);

    /* what the Messages API cannot express is a 400 naming it, and nothing is recorded */
    long before = total_executions();
    expect_oai_error("{\"model\":\"anthropic/claude-x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                     "\"seed\":1}",
                     400, "invalid_request_error", "seed");
    expect_oai_error("{\"model\":\"anthropic/claude-x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                     "\"response_format\":{\"type\":\"json_object\"}}",
                     400, "invalid_request_error", "response_format");
    expect_oai_error("{\"model\":\"anthropic/claude-x\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":"
                     "[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]},"
                     "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"x\"}]}",
                     400, "invalid_request_error", "messages");
    cr_assert_eq(total_executions(), before);
}

Test(gateway, tool_and_option_errors_are_400_naming_the_field)
{
    start_echo();
    const char *msg = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";
    char body[600];
    static const struct {
        const char *extra, *param;
    } cases[] = {
        {"\"tools\":{}", "tools"},
        {"\"tools\":[{\"type\":\"function\"}]", "tools"},
        {"\"tools\":[{\"type\":\"retrieval\",\"function\":{\"name\":\"f\"}}]", "tools"},
        {"\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"\"}}]", "tools"},
        {"\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":[]}}]", "tools"},
        {"\"tool_choice\":\"always\"", "tool_choice"},
        {"\"tool_choice\":{\"type\":\"function\"}", "tool_choice"},
        {"\"parallel_tool_calls\":\"no\"", "parallel_tool_calls"},
        {"\"top_p\":2", "top_p"},
        {"\"stop\":5", "stop"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(body, sizeof body, "{%s,%s}", msg, cases[i].extra);
        expect_oai_error(body, 400, "invalid_request_error", cases[i].param);
    }
    /* tool messages: an id to answer, tool_calls only on the assistant's, in their shape */
    expect_oai_error("{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", 400, "invalid_request_error",
                     "messages");
    expect_oai_error("{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[{\"id\":\"c\",\"type\":"
                     "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]}",
                     400, "invalid_request_error", "messages");
    expect_oai_error("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"function\":"
                     "{\"name\":\"f\"}}]}]}",
                     400, "invalid_request_error", "messages");
    expect_oai_error("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":{}}]}", 400, "invalid_request_error",
                     "messages");
    cr_assert_eq(total_executions(), 0, "nothing recorded");

    /* an assistant turn that only calls tools may leave out its content */
    pd_resp ok = chat("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"tool_calls\":"
                      "[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
                      "{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"r\"}]}");
    cr_assert_eq(ok.status, 200, "%s", ok.body);
    cr_assert_str_eq(pd_str_at(ok.json, "choices.0.message.content"), "q", "%s", ok.body);
    pd_resp_free(&ok);

    /* echo ignores tools and options: it still answers the last user message */
    pd_resp r = chat("{\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}],\"tools\":[" GET_TOOL "],"
                     "\"seed\":1,\"top_p\":0.3}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "choices.0.message.content"), "hi there", "%s", r.body);
    cr_assert_null(pd_json_at(r.json, "choices.0.message.tool_calls"), "%s", r.body);
    pd_resp_free(&r);
}

/* The mock calls the first tool with {"text": <the last user message>} and answers a tool
 * result with "mock reply: tool said <result>". */
Test(gateway, tool_calls_round_trip_on_both_wire_formats)
{
    start_with_mock();
    static const char *const models[] = {"openai/gpt-x", "anthropic/claude-x"};
    for (int i = 0; i < 2; i++) {
        char *body = pd_pack("{s:s, s:[{s:s, s:s}], s:[{s:s, s:{s:s, s:{s:s}}}]}", "model", models[i], "messages",
                             "role", "user", "content", "weather in Oslo", "tools", "type", "function", "function",
                             "name", "get_weather", "parameters", "type", "object");
        pd_resp r = chat(body);
        free(body);
        cr_assert_eq(r.status, 200, "%s: %s", models[i], r.body);
        cr_assert_str_eq(pd_str_at(r.json, "choices.0.finish_reason"), "tool_calls", "%s", r.body);
        cr_assert(json_is_null(pd_json_at(r.json, "choices.0.message.content")), "content null: %s", r.body);
        json_t *calls = pd_json_at(r.json, "choices.0.message.tool_calls");
        cr_assert(json_is_array(calls) && json_array_size(calls) == 1, "%s", r.body);
        cr_assert_str_eq(pd_str_at(calls, "0.type"), "function");
        cr_assert_str_eq(pd_str_at(calls, "0.function.name"), "get_weather");
        const char *call_id = pd_str_at(calls, "0.id");
        cr_assert(call_id && *call_id, "%s", r.body);
        json_t *args = json_loads(pd_str_at(calls, "0.function.arguments"), 0, NULL);
        cr_assert_str_eq(pd_str_at(args, "text"), "weather in Oslo", "%s", r.body);
        json_decref(args);

        /* recorded with the execution */
        json_t *a = get_exec(pd_header(&r, "X-Execution-Id"));
        cr_assert(json_equal(json_object_get(a, "tool_calls"), calls), "record: %s", json_dumps(a, JSON_COMPACT));
        cr_assert_str_eq(pd_str_at(a, "status"), "completed");
        json_decref(a);

        /* the app answers the call; the model gets the result */
        char *next = pd_pack("{s:s, s:[{s:s, s:s}, {s:s, s:n, s:O}, {s:s, s:s, s:s}], s:[{s:s, s:{s:s}}]}", "model",
                             models[i], "messages", "role", "user", "content", "weather in Oslo", "role", "assistant",
                             "content", "tool_calls", calls, "role", "tool", "tool_call_id", call_id, "content",
                             "cold and clear", "tools", "type", "function", "function", "name", "get_weather");
        pd_resp r2 = chat(next);
        free(next);
        cr_assert_eq(r2.status, 200, "%s: %s", models[i], r2.body);
        cr_assert_str_eq(pd_str_at(r2.json, "choices.0.message.content"), "mock reply: tool said cold and clear", "%s",
                         r2.body);
        cr_assert_str_eq(pd_str_at(r2.json, "choices.0.finish_reason"), "stop", "%s", r2.body);
        cr_assert_null(pd_json_at(r2.json, "choices.0.message.tool_calls"), "%s", r2.body);
        a = get_exec(pd_header(&r2, "X-Execution-Id"));
        cr_assert_null(json_object_get(a, "tool_calls"), "no tool calls recorded: %s", json_dumps(a, JSON_COMPACT));
        json_decref(a);
        pd_resp_free(&r2);
        pd_resp_free(&r);
    }
}

Test(gateway, tool_calls_stream_as_deltas)
{
    start_with_mock();
    static const char *const models[] = {"openai/gpt-x", "anthropic/claude-x"};
    for (int i = 0; i < 2; i++) {
        char *body = pd_pack("{s:s, s:b, s:[{s:s, s:s}], s:[{s:s, s:{s:s}}]}", "model", models[i], "stream", 1,
                             "messages", "role", "user", "content", "weather in Oslo please", "tools", "type",
                             "function", "function", "name", "get_weather");
        pd_resp r = chat(body);
        free(body);
        cr_assert_eq(r.status, 200, "%s: %s", models[i], r.body);
        oai_stream os;
        oai_stream_read(r.body, &os);
        cr_assert(os.done && os.after_done == 0, "%s", r.body);
        cr_assert_str_eq(os.text, "", "no text: %s", r.body);
        char args[512] = "", id[128] = "", name[128] = "", finish[32] = "";
        size_t k, pieces = 0;
        json_t *c;
        json_array_foreach(os.chunks, k, c)
        {
            json_t *tc = pd_json_at(c, "choices.0.delta.tool_calls");
            if (pd_str_at(c, "choices.0.finish_reason"))
                snprintf(finish, sizeof finish, "%s", pd_str_at(c, "choices.0.finish_reason"));
            if (!tc)
                continue;
            cr_assert_eq(json_array_size(tc), 1, "%s", r.body);
            cr_assert_eq(pd_int_at(tc, "0.index", -1), 0, "%s", r.body);
            if (pd_str_at(tc, "0.id"))
                snprintf(id, sizeof id, "%s", pd_str_at(tc, "0.id"));
            if (pd_str_at(tc, "0.function.name"))
                snprintf(name, sizeof name, "%s", pd_str_at(tc, "0.function.name"));
            if (pd_str_at(tc, "0.function.arguments"))
                strncat(args, pd_str_at(tc, "0.function.arguments"), sizeof args - strlen(args) - 1);
            pieces++;
        }
        cr_assert_geq(pieces, 3, "the call arrives in pieces: %s", r.body);
        cr_assert(id[0], "%s", r.body);
        cr_assert_str_eq(name, "get_weather", "%s", r.body);
        cr_assert_str_eq(finish, "tool_calls", "%s", r.body);
        json_t *parsed = json_loads(args, 0, NULL);
        cr_assert_str_eq(pd_str_at(parsed, "text"), "weather in Oslo please", "joined arguments: %s", args);
        json_decref(parsed);

        /* the record holds the whole call, its pieces joined */
        json_t *a = get_exec(pd_header(&r, "X-Execution-Id"));
        cr_assert_str_eq(pd_str_at(a, "status"), "completed");
        cr_assert_str_eq(pd_str_at(a, "tool_calls.0.id"), id);
        cr_assert_str_eq(pd_str_at(a, "tool_calls.0.function.name"), "get_weather");
        cr_assert_str_eq(pd_str_at(a, "tool_calls.0.function.arguments"), args);
        json_decref(a);
        json_decref(os.chunks);
        pd_resp_free(&r);
    }
}

/* What a client does with streamed tool-call pieces: join them by index. */
static void join_delta(json_t *calls, json_t *d)
{
    size_t idx = (size_t)pd_int_at(d, "index", -1);
    cr_assert_lt(idx, 16, "index: %s", json_dumps(d, JSON_COMPACT));
    while (json_array_size(calls) <= idx)
        json_array_append_new(calls, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", "", "type", "function", "function",
                                               "name", "", "arguments", ""));
    json_t *call = json_array_get(calls, idx), *fn = json_object_get(call, "function");
    if (pd_str_at(d, "id"))
        json_object_set_new(call, "id", json_string(pd_str_at(d, "id")));
    if (pd_str_at(d, "function.name"))
        json_object_set_new(fn, "name", json_string(pd_str_at(d, "function.name")));
    const char *piece = pd_str_at(d, "function.arguments");
    if (piece && *piece) {
        char *joined = NULL;
        cr_assert_geq(asprintf(&joined, "%s%s", json_string_value(json_object_get(fn, "arguments")), piece), 0);
        json_object_set_new(fn, "arguments", json_string(joined));
        free(joined);
    }
}

/* Parallel calls with some text before them ([mock:tool_calls=3] [mock:tool_text]): every call
 * arrives whole and in order, streamed or not, on both wire formats, and is recorded. */
Test(gateway, parallel_tool_calls_after_some_text)
{
    start_with_mock();
    static const char *const models[] = {"openai/gpt-x", "anthropic/claude-x"};
    for (int i = 0; i < 4; i++) {
        int stream = i >= 2;
        char *body = pd_pack("{s:s, s:b, s:[{s:s, s:s}], s:[{s:s, s:{s:s}}]}", "model", models[i % 2], "stream", stream,
                             "messages", "role", "user", "content", "[mock:tool_calls=3] [mock:tool_text] weather",
                             "tools", "type", "function", "function", "name", "get_weather");
        pd_resp r = chat(body);
        free(body);
        cr_assert_eq(r.status, 200, "%s: %s", models[i % 2], r.body);
        json_t *calls = json_array();
        char text[sizeof(((oai_stream *)0)->text)] = "";
        if (stream) {
            oai_stream os;
            oai_stream_read(r.body, &os);
            cr_assert(os.done, "%s", r.body);
            snprintf(text, sizeof text, "%s", os.text);
            size_t k;
            json_t *c;
            json_array_foreach(os.chunks, k, c)
            {
                size_t j;
                json_t *d;
                json_array_foreach(pd_json_at(c, "choices.0.delta.tool_calls"), j, d) join_delta(calls, d);
            }
            json_decref(os.chunks);
        } else {
            snprintf(text, sizeof text, "%s", pd_str_at(r.json, "choices.0.message.content"));
            json_array_extend(calls, pd_json_at(r.json, "choices.0.message.tool_calls"));
        }
        cr_assert_str_eq(text, "Let me check.", "%s: %s", models[i % 2], r.body);
        cr_assert_eq(json_array_size(calls), 3, "%s: %s", models[i % 2], r.body);
        for (size_t k = 0; k < 3; k++) {
            json_t *args = json_loads(pd_str_at(json_array_get(calls, k), "function.arguments"), 0, NULL);
            cr_assert_not_null(args, "call %zu: %s", k, r.body);
            cr_assert_eq(pd_int_at(args, "n", -1), (long long)k + 1, "calls in order: %s", r.body);
            cr_assert_str_eq(pd_str_at(args, "text"), "weather");
            json_decref(args);
            cr_assert_str_eq(pd_str_at(json_array_get(calls, k), "function.name"), "get_weather");
        }
        json_t *a = get_exec(pd_header(&r, "X-Execution-Id"));
        cr_assert_str_eq(pd_str_at(a, "output"), "Let me check.");
        cr_assert(json_equal(json_object_get(a, "tool_calls"), calls), "record %s vs %s",
                  json_dumps(json_object_get(a, "tool_calls"), JSON_COMPACT), json_dumps(calls, JSON_COMPACT));
        json_decref(a);
        json_decref(calls);
        pd_resp_free(&r);
    }
}

/* A tool call cut off after its first piece: the client already has that piece, so the call is
 * not tried again; the stream ends in an error and [DONE], and the record is failed, without
 * a half call in it. */
Test(gateway, tool_call_stream_cut_off_fails_cleanly)
{
    start_with_mock();
    static const char *const models[] = {"openai/gpt-x", "anthropic/claude-x"};
    for (int i = 0; i < 2; i++) {
        char *body = pd_pack("{s:s, s:b, s:[{s:s, s:s}], s:[{s:s, s:{s:s}}]}", "model", models[i], "stream", 1,
                             "messages", "role", "user", "content", "[mock:drop] weather", "tools", "type", "function",
                             "function", "name", "get_weather");
        pd_resp r = chat(body);
        free(body);
        cr_assert_eq(r.status, 200, "%s: %s", models[i], r.body);
        oai_stream os;
        oai_stream_read(r.body, &os);
        cr_assert(os.done, "%s", r.body);
        size_t n = json_array_size(os.chunks), pieces = 0;
        for (size_t k = 0; k < n; k++)
            pieces += pd_json_at(json_array_get(os.chunks, k), "choices.0.delta.tool_calls") != NULL;
        cr_assert_geq(pieces, 1, "the first piece reached the client: %s", r.body);
        cr_assert(json_is_object(pd_json_at(json_array_get(os.chunks, n - 1), "error")), "%s", r.body);
        json_t *a = get_exec(pd_header(&r, "X-Execution-Id"));
        cr_assert_str_eq(pd_str_at(a, "status"), "failed", "%s", json_dumps(a, JSON_COMPACT));
        cr_assert_eq(pd_int_at(a, "attempts", -1), 1, "not retried after a piece was delivered");
        cr_assert_null(json_object_get(a, "tool_calls"), "%s", json_dumps(a, JSON_COMPACT));
        json_decref(a);
        json_decref(os.chunks);
        pd_resp_free(&r);
    }
}
