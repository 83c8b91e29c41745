/*
 * test_upstream_errors.c — honest stream starts and a provider's refusals,
 * over real HTTP against the mock provider, on every surface that runs a
 * model: the OpenAI gateway (POST /v1/chat/completions, sync and stream),
 * POST /prompts/:id/execute[/stream], cluster replies (sync and
 * ?stream=true) and POST /api/v1/prompt.
 *
 *  - A stream that cannot start (connection refused, upstream 5xx, a timeout
 *    before the first byte, the provider's 4xx) is a plain error answer with
 *    a real status in the surface's envelope, not a 200 followed by an error
 *    event; its execution is recorded failed.
 *  - A stream that fails after its first byte ends with an error event and
 *    its end marker ([DONE] / "done"), its execution failed.
 *  - The provider's 4xx reaches the client as that status with its message
 *    (OpenAI's envelope keeps its type, code and param; the Jarvis envelope
 *    has them in errors[0].meta.upstream, v1 in error.upstream); the
 *    provider's 401/403 (promptd's credentials) and 429 (its load) stay 502.
 *  - Another organization's key cannot read the executions these name.
 *
 * Providers (one attempt each, so every failure is final at once): "mock"
 * (OpenAI wire, 1.5 s timeout), "amock" (Anthropic wire) and "down" (OpenAI
 * wire on a port where nothing listens: connection refused).
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/harness.h"
#include "support/mock_proc.h"

static pd_server S;
static mock_proc M;
static char CFGDIR[256];
static char OTHER[128]; /* a key of another organization */

#define CTX_MSG "This model's maximum context length is 8 tokens. However, you requested 9 tokens."
/* a message whose model call the mock refuses with OpenAI's context_length_exceeded 400 */
#define CTX_400                                                                                                        \
    "[mock:status=400] [mock:error_message=" CTX_MSG "] [mock:error_code=context_length_exceeded] "                    \
    "[mock:error_param=messages] too long"

static void setup(void)
{
    cr_assert_eq(mock_proc_start(&M, NULL), 0, "mock did not start");
    cr_assert_eq(pd_mkdtemp(CFGDIR, sizeof CFGDIR), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/promptd.json", CFGDIR);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"providers\":["
            "{\"name\":\"mock\",\"type\":\"openai\",\"base_url\":\"%s/v1\",\"api_key\":\"x\",\"timeout_ms\":1500},"
            "{\"name\":\"amock\",\"type\":\"anthropic\",\"base_url\":\"%s\",\"api_key\":\"x\",\"timeout_ms\":1500},"
            "{\"name\":\"down\",\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:1/v1\",\"api_key\":\"x\","
            "\"timeout_ms\":1500,\"connect_timeout_ms\":1000}],"
            "\"retry\":{\"max_attempts\":1,\"base_delay_ms\":10,\"max_delay_ms\":20}}",
            M.base_url, M.base_url);
    fclose(f);
    const char *args[] = {"--config", path, NULL};
    cr_assert_eq(pd_start(&S, args, NULL), 0, "promptd did not start");
    cr_assert_eq(pd_new_org_key(&S, "other-org", OTHER, sizeof OTHER), 0);
}

static void teardown(void)
{
    pd_stop(&S);
    mock_proc_stop(&M);
    if (CFGDIR[0]) {
        pd_rmrf(CFGDIR);
        CFGDIR[0] = '\0';
    }
}

TestSuite(stream_start, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(upstream_4xx, .init = setup, .fini = teardown, .timeout = 60);

/* ---------------------------------------------------------------- helpers */

static const char *P(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *P(const char *fmt, ...)
{
    static __thread char bufs[8][512];
    static __thread int next;
    char *b = bufs[next++ % 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof bufs[0], fmt, ap);
    va_end(ap);
    return b;
}

/* A request with "Authorization: Bearer key" (gateway and v1). */
static pd_resp bearer(const char *key, const char *method, const char *path, const char *body)
{
    char h[200];
    snprintf(h, sizeof h, "Authorization: Bearer %s", key);
    const char *hdrs[] = {h, NULL};
    pd_resp r;
    cr_assert_eq(pd_req(&S, method, path, NULL, body, hdrs, &r), 0, "%s %s: transfer failed: %s", method, path,
                 r.error);
    return r;
}

/* A Jarvis request with the admin key (AppId). */
static pd_resp jarvis(const char *method, const char *path, const char *body)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, method, path, S.admin_key, body, NULL, &r), 0, "%s %s: transfer failed: %s", method, path,
                 r.error);
    return r;
}

/* POST /v1/chat/completions for one user message. */
static pd_resp chat(const char *model, int stream, int n, const char *content)
{
    char *body = pd_pack("{s:s, s:b, s:i, s:[{s:s, s:s}]}", "model", model, "stream", stream, "n", n, "messages",
                         "role", "user", "content", content);
    pd_resp r = bearer(S.admin_key, "POST", "/v1/chat/completions", body);
    free(body);
    return r;
}

/* A plain JSON error answer, not a stream: the status line told the truth. */
static void assert_not_a_stream(const pd_resp *r)
{
    const char *ct = pd_header(r, "Content-Type");
    cr_assert(ct && !strncmp(ct, "application/json", 16), "Content-Type %s: %s", ct ? ct : "(none)", r->body);
    cr_assert_null(strstr(r->body, "data:"), "no event was sent: %s", r->body);
    cr_assert_not_null(r->json, "%s", r->body);
}

/* OpenAI's envelope with this status and type; code and param as given (NULL: JSON null). */
static void assert_oai(const pd_resp *r, long status, const char *type, const char *code, const char *param)
{
    cr_assert_eq(r->status, status, "want %ld, got %ld: %s", status, r->status, r->body);
    cr_assert_eq(json_object_size(r->json), 1, "only 'error': %s", r->body);
    const char *msg = pd_str_at(r->json, "error.message");
    cr_assert(msg && *msg, "%s", r->body);
    cr_assert_str_eq(pd_str_at(r->json, "error.type") ? pd_str_at(r->json, "error.type") : "(none)", type, "%s",
                     r->body);
    json_t *c = pd_json_at(r->json, "error.code"), *p = pd_json_at(r->json, "error.param");
    cr_assert(c && p, "code and param present: %s", r->body);
    if (code)
        cr_assert_str_eq(json_string_value(c) ? json_string_value(c) : "(null)", code, "%s", r->body);
    if (param)
        cr_assert_str_eq(json_string_value(p) ? json_string_value(p) : "(null)", param, "%s", r->body);
    else
        cr_assert(json_is_null(p), "%s", r->body);
}

/* Jarvis envelope with this status and code. */
static void assert_jarvis(const pd_resp *r, long status, const char *code)
{
    cr_assert_eq(r->status, status, "want %ld, got %ld: %s", status, r->status, r->body);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.status"), P("%ld", status), "%s", r->body);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.code") ? pd_str_at(r->json, "errors.0.code") : "(none)", code, "%s",
                     r->body);
    const char *d = pd_str_at(r->json, "errors.0.detail");
    cr_assert(d && *d, "%s", r->body);
}

/* The execution's attributes (new reference); another organization's key gets 404 for it. */
static json_t *execution(const char *id)
{
    pd_resp r = jarvis("GET", P("/executions/%s", id), NULL);
    cr_assert_eq(r.status, 200, "%s: %s", id, r.body);
    json_t *a = json_incref(pd_json_at(r.json, "data.attributes"));
    pd_resp_free(&r);
    cr_assert_eq(pd_req(&S, "GET", P("/executions/%s", id), OTHER, NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 404, "another organization reads %s: %s", id, r.body);
    pd_resp_free(&r);
    return a;
}

/* The execution named by the X-Execution-Id header is failed, its error mentioning `mention` (when given). */
static void assert_failed_execution(const pd_resp *r, const char *mention)
{
    const char *xh = pd_header(r, "X-Execution-Id");
    cr_assert(xh && strlen(xh) == 36, "X-Execution-Id: %s", r->headers);
    char id[64];
    snprintf(id, sizeof id, "%s", xh);
    json_t *a = execution(id);
    cr_assert_str_eq(pd_str_at(a, "status"), "failed", "%s", id);
    const char *err = pd_str_at(a, "error");
    cr_assert(err && *err, "a failed execution records why");
    if (mention)
        cr_assert(strstr(err, mention), "error '%s' does not say '%s'", err, mention);
    json_decref(a);
}

/* "data: ..." events of an OpenAI stream: the chunks (new reference) and whether [DONE] ended it. */
static json_t *oai_chunks(const char *body, int *done)
{
    json_t *chunks = json_array();
    *done = 0;
    for (const char *p = body; (p = strstr(p, "data: ")) != NULL;) {
        p += 6;
        const char *end = strstr(p, "\n\n");
        cr_assert_not_null(end, "an unterminated event: %s", body);
        char *data = strndup(p, (size_t)(end - p));
        cr_assert_eq(*done, 0, "an event after [DONE]: %s", body);
        if (!strcmp(data, "[DONE]"))
            *done = 1;
        else {
            json_t *j = json_loads(data, 0, NULL);
            cr_assert_not_null(j, "not JSON: %s", data);
            json_array_append_new(chunks, j);
        }
        free(data);
        p = end;
    }
    return chunks;
}

/* "event: NAME\ndata: JSON" events: the names (a space-joined list into names) and the last data (new reference). */
static json_t *named_events(const char *body, char *names, size_t names_len)
{
    json_t *last = NULL;
    names[0] = '\0';
    for (const char *p = body; *p;) {
        const char *end = strstr(p, "\n\n");
        size_t blen = end ? (size_t)(end - p) : strlen(p);
        char *block = strndup(p, blen);
        const char *ev = strncmp(block, "event: ", 7) == 0 ? block + 7 : "message";
        const char *data = strstr(block, "data: ");
        size_t elen = strcspn(ev, "\n");
        if (data) {
            snprintf(names + strlen(names), names_len - strlen(names), "%s%.*s", names[0] ? " " : "", (int)elen,
                     ev[0] == '{' ? "message" : ev);
            json_decref(last);
            last = json_loads(data + 6, 0, NULL);
        }
        free(block);
        p = end ? end + 2 : p + blen;
    }
    return last;
}

/* A prompt whose whole content is {{msg}}; its id into id (64 bytes). */
static void create_prompt(char *id) { cr_assert_eq(pd_create_prompt(&S, S.admin_key, "msg", "{{msg}}", id, 64), 201); }

/* ================================================================ the gateway */

/* Each way a call can fail before its first byte: the stream answers what the
 * complete call answers, as a real status the SDKs raise on. */
Test(stream_start, gateway_stream_that_cannot_start_is_a_real_status)
{
    struct {
        const char *model, *content;
        long status;
        const char *type, *code, *param, *mention;
    } cases[] = {
        {"down/m", "refused", 502, "api_error", "upstream_error", NULL, "down/m"},
        {"mock/m", "[mock:status=500] broken", 502, "api_error", "upstream_error", NULL, "HTTP 500"},
        {"mock/m", "[mock:status=503] overloaded", 502, "api_error", "upstream_error", NULL, "HTTP 503"},
        {"mock/m", "[mock:latency=5000] slow", 504, "timeout_error", "upstream_timeout", NULL, "1500 ms"},
        {"mock/m", CTX_400, 400, "invalid_request_error", "context_length_exceeded", "messages", CTX_MSG},
        {"amock/c", "[mock:status=404] [mock:error_message=model: c] gone", 404, "not_found_error", NULL, NULL,
         "model: c"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int stream = 0; stream < 2; stream++) {
            pd_resp r = chat(cases[i].model, stream, 1, cases[i].content);
            cr_assert_eq(r.status, cases[i].status, "%s stream=%d: want %ld, got %ld: %s", cases[i].content, stream,
                         cases[i].status, r.status, r.body);
            assert_not_a_stream(&r);
            assert_oai(&r, cases[i].status, cases[i].type, cases[i].code, cases[i].param);
            assert_failed_execution(&r, cases[i].mention);
            pd_resp_free(&r);
        }
    }
}

/* A model that routes nowhere never reaches a provider: refused before anything
 * is recorded, streamed or not, as the complete call is. */
Test(stream_start, unknown_model_streams_are_refused_like_complete_calls)
{
    for (int stream = 0; stream < 2; stream++) {
        pd_resp r = chat("nowhere/x", stream, 1, "hi");
        assert_not_a_stream(&r);
        assert_oai(&r, 404, "invalid_request_error", "model_not_found", "model");
        cr_assert_null(pd_header(&r, "X-Execution-Id"), "nothing was recorded: %s", r.headers);
        pd_resp_free(&r);
    }
    char pid[64];
    create_prompt(pid);
    for (int stream = 0; stream < 2; stream++) {
        char *body = pd_pack("{s:s, s:{s:s}}", "model", "nowhere/x", "variables", "msg", "hi");
        pd_resp r = jarvis("POST", P("/prompts/%s/execute%s", pid, stream ? "/stream" : ""), body);
        free(body);
        assert_not_a_stream(&r);
        assert_jarvis(&r, 422, "unprocessable_entity");
        cr_assert_null(pd_header(&r, "X-Execution-Id"), "nothing was recorded: %s", r.headers);
        pd_resp_free(&r);
    }
}

Test(stream_start, gateway_stream_failing_after_its_first_byte_ends_with_an_error_and_done)
{
    const char *contents[] = {"[mock:drop] one two three four", "[mock:malformed] one two three four"};
    const char *models[] = {"mock/m", "amock/c"};
    for (size_t m = 0; m < 2; m++)
        for (size_t i = 0; i < 2; i++) {
            pd_resp r = chat(models[m], 1, 1, contents[i]);
            cr_assert_eq(r.status, 200, "%s via %s: %s", contents[i], models[m], r.body);
            const char *ct = pd_header(&r, "Content-Type");
            cr_assert(ct && strstr(ct, "text/event-stream"), "%s", ct ? ct : "(none)");
            int done;
            json_t *chunks = oai_chunks(r.body, &done);
            cr_assert(done, "the stream ends with [DONE]: %s", r.body);
            size_t n = json_array_size(chunks);
            cr_assert_geq(n, 3, "role, a piece, the error: %s", r.body);
            cr_assert_str_eq(pd_str_at(json_array_get(chunks, 0), "choices.0.delta.role"), "assistant", "%s", r.body);
            cr_assert_str_eq(pd_str_at(json_array_get(chunks, 1), "choices.0.delta.content"), "mock ", "%s", r.body);
            json_t *last = json_array_get(chunks, n - 1);
            cr_assert(pd_str_at(last, "error.message") && *pd_str_at(last, "error.message"), "%s", r.body);
            cr_assert_str_eq(pd_str_at(last, "error.code"), "upstream_error", "%s", r.body);
            json_decref(chunks);
            assert_failed_execution(&r, NULL);
            pd_resp_free(&r);
        }
}

/* n = 2: the stream opens with the first piece of either choice; a choice that
 * fails before any piece is an error chunk after the role chunks; only when
 * both fail first is the answer an error status. */
Test(stream_start, gateway_two_choices_when_one_or_both_fail_first)
{
    /* both refused by the provider: its 400, both executions failed */
    pd_resp r = chat("mock/m", 1, 2, CTX_400);
    assert_not_a_stream(&r);
    assert_oai(&r, 400, "invalid_request_error", "context_length_exceeded", "messages");
    cr_assert_str_eq(pd_str_at(r.json, "error.message"), CTX_MSG, "%s", r.body);
    const char *xh = pd_header(&r, "X-Execution-Id");
    cr_assert(xh && strlen(xh) == 73 && xh[36] == ',', "both executions named: %s", r.headers);
    char ids[2][40];
    snprintf(ids[0], sizeof ids[0], "%.36s", xh);
    snprintf(ids[1], sizeof ids[1], "%.36s", xh + 37);
    pd_resp_free(&r);
    for (int i = 0; i < 2; i++) {
        json_t *a = execution(ids[i]);
        cr_assert_str_eq(pd_str_at(a, "status"), "failed");
        cr_assert(strstr(pd_str_at(a, "error"), CTX_MSG), "%s", pd_str_at(a, "error"));
        json_decref(a);
    }

    /* one fails at once (the first request with this text gets a 500), the other
     * answers 500 ms later: 200, the failure's error chunk, the other's text, [DONE] */
    r = chat("mock/m", 1, 2, "[mock:fail_times=1] [mock:latency=500] [mock:error_latency=0] second one answers");
    cr_assert_eq(r.status, 200, "%s", r.body);
    int done;
    json_t *chunks = oai_chunks(r.body, &done);
    cr_assert(done, "%s", r.body);
    int roles = 0, errors = 0, finishes = 0;
    size_t k, first_error = 0, last_role = 0, first_text = 0;
    json_t *c;
    json_array_foreach(chunks, k, c)
    {
        const char *text = pd_str_at(c, "choices.0.delta.content");
        if (text && *text && !first_text)
            first_text = k;
        if (pd_str_at(c, "choices.0.delta.role")) {
            roles++;
            last_role = k;
        }
        if (pd_json_at(c, "error") && !errors++)
            first_error = k;
        finishes += pd_str_at(c, "choices.0.finish_reason") != NULL;
    }
    cr_assert_eq(roles, 2, "%s", r.body);
    cr_assert_eq(errors, 1, "%s", r.body);
    cr_assert_eq(finishes, 1, "%s", r.body);
    cr_assert_gt(first_error, last_role, "the early failure comes after the role chunks: %s", r.body);
    cr_assert_lt(first_error, first_text, "and before the other choice's first piece, which opened the stream: %s",
                 r.body);
    json_decref(chunks);
    pd_resp_free(&r);
}

/* ================================================================ execute/stream */

static pd_resp execute(const char *pid, int stream, const char *model, const char *msg)
{
    char *body = pd_pack("{s:s, s:{s:s}}", "model", model, "variables", "msg", msg);
    pd_resp r = jarvis("POST", P("/prompts/%s/execute%s", pid, stream ? "/stream" : ""), body);
    free(body);
    return r;
}

Test(stream_start, execute_stream_that_cannot_start_is_a_real_status)
{
    char pid[64];
    create_prompt(pid);
    struct {
        const char *model, *msg;
        long status;
        const char *code;
    } cases[] = {
        {"down/m", "refused", 502, "upstream_error"},
        {"mock/m", "[mock:status=500] broken", 502, "upstream_error"},
        {"mock/m", "[mock:latency=5000] slow", 504, "upstream_timeout"},
        {"mock/m", CTX_400, 400, "bad_request"},
        {"amock/c", "[mock:status=413] [mock:error_message=Request too large.] big", 413, "payload_too_large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int stream = 0; stream < 2; stream++) {
            pd_resp r = execute(pid, stream, cases[i].model, cases[i].msg);
            assert_not_a_stream(&r);
            assert_jarvis(&r, cases[i].status, cases[i].code);
            assert_failed_execution(&r, NULL);
            pd_resp_free(&r);
        }
    }
}

Test(stream_start, execute_stream_failing_after_its_first_byte_ends_with_an_error_event)
{
    char pid[64];
    create_prompt(pid);
    pd_resp r = execute(pid, 1, "mock/m", "[mock:drop] one two three four");
    cr_assert_eq(r.status, 200, "%s", r.body);
    char names[256];
    json_t *last = named_events(r.body, names, sizeof names);
    cr_assert_str_eq(names, "message error", "a piece, then the error: %s", r.body);
    cr_assert_str_eq(pd_str_at(last, "status"), "failed", "%s", r.body);
    cr_assert_eq(pd_int_at(last, "http_status", -1), 502, "%s", r.body);
    cr_assert_str_eq(pd_str_at(last, "prompt_execution_id"), pd_header(&r, "X-Execution-Id"), "%s", r.body);
    json_decref(last);
    assert_failed_execution(&r, NULL);
    pd_resp_free(&r);
}

/* ================================================================ cluster streams */

static void create_at(const char *path, const char *body, char *id)
{
    pd_resp r = jarvis("POST", path, body);
    cr_assert_eq(r.status, 201, "%s: %s", path, r.body);
    snprintf(id, 64, "%s", pd_str_at(r.json, "data.id"));
    pd_resp_free(&r);
}

/* A cluster whose members reply with these models, and a conversation of it. */
static void cluster_with(const char *const *models, size_t n, char *cluster, char *conv)
{
    create_at("/clusters", "{\"cluster\":{\"name\":\"team\"}}", cluster);
    for (size_t i = 0; i < n; i++) {
        char eid[64];
        char *body = pd_pack("{s:{s:s, s:s}}", "entity", "name", P("Member %zu", i), "model", models[i]);
        create_at("/entities", body, eid);
        free(body);
        pd_resp r = jarvis("POST", P("/clusters/%s/members/%s", cluster, eid), NULL);
        cr_assert_eq(r.status, 200, "%s", r.body);
        pd_resp_free(&r);
    }
    create_at(P("/clusters/%s/conversations", cluster), "{\"conversation\":{\"title\":\"t\"}}", conv);
}

static pd_resp say(const char *cluster, const char *conv, int stream, const char *content)
{
    char *body = pd_pack("{s:{s:s, s:s}}", "message", "role", "user", "content", content);
    pd_resp r = jarvis(
        "POST", P("/clusters/%s/conversations/%s/messages%s", cluster, conv, stream ? "?stream=true" : ""), body);
    free(body);
    return r;
}

/* The conversation's messages: their count, and the status of the last. */
static size_t conversation_messages(const char *cluster, const char *conv, char *last_status, size_t len)
{
    pd_resp r = jarvis("GET", P("/clusters/%s/conversations/%s/messages", cluster, conv), NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    size_t n = json_array_size(pd_json_at(r.json, "data"));
    snprintf(last_status, len, "%s",
             n ? pd_str_at(json_array_get(pd_json_at(r.json, "data"), n - 1), "attributes.status") : "");
    pd_resp_free(&r);
    return n;
}

Test(stream_start, cluster_stream_that_cannot_start_is_a_real_status)
{
    struct {
        const char *model, *content;
        long status;
        const char *code;
    } cases[] = {
        {"down/m", "refused", 502, "upstream_error"},
        {"mock/m", "[mock:status=500] broken", 502, "upstream_error"},
        {"mock/m", "[mock:latency=5000] slow", 504, "upstream_timeout"},
        {"mock/m", CTX_400, 400, "bad_request"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int stream = 0; stream < 2; stream++) {
            char c[64], v[64], st[32];
            const char *models[] = {cases[i].model};
            cluster_with(models, 1, c, v);
            pd_resp r = say(c, v, stream, cases[i].content);
            assert_not_a_stream(&r);
            assert_jarvis(&r, cases[i].status, cases[i].code);
            if (cases[i].status == 400) {
                cr_assert_str_eq(pd_str_at(r.json, "errors.0.meta.upstream.code"), "context_length_exceeded", "%s",
                                 r.body);
                cr_assert(strstr(pd_str_at(r.json, "errors.0.detail"), CTX_MSG), "%s", r.body);
            }
            pd_resp_free(&r);
            /* what happened stays in the conversation: the message and its failed reply */
            cr_assert_eq(conversation_messages(c, v, st, sizeof st), 2);
            cr_assert_str_eq(st, "failed");
        }
    }
}

/* Two members, one failing before any byte: the stream opens with the other's
 * first piece and carries the failed reply too. */
Test(stream_start, cluster_stream_opens_with_any_members_first_piece)
{
    char c[64], v[64];
    const char *models[] = {"down/m", "mock/m"};
    cluster_with(models, 2, c, v);
    pd_resp r = say(c, v, 1, "[mock:latency=300] hello both");
    cr_assert_eq(r.status, 200, "%s", r.body);
    char names[512];
    json_t *last = named_events(r.body, names, sizeof names);
    cr_assert(!strncmp(names, "message reply", 13), "the user message, then the early failure: %s", names);
    cr_assert_str_eq(names + strlen(names) - 10, "reply done", "%s", names);
    cr_assert_eq(pd_int_at(last, "failed_count", -1), 1, "%s", r.body);
    cr_assert_eq(pd_int_at(last, "completed_count", -1), 1, "%s", r.body);
    json_decref(last);
    pd_resp_free(&r);

    /* sync: a mixed outcome is still 201 */
    r = say(c, v, 0, "hello again");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.failed_count", -1), 1, "%s", r.body);
    pd_resp_free(&r);
}

Test(stream_start, cluster_stream_failing_after_its_first_byte_ends_with_done)
{
    char c[64], v[64], st[32];
    const char *models[] = {"mock/m"};
    cluster_with(models, 1, c, v);
    pd_resp r = say(c, v, 1, "[mock:drop] one two three four");
    cr_assert_eq(r.status, 200, "%s", r.body);
    char names[256];
    json_t *last = named_events(r.body, names, sizeof names);
    cr_assert_str_eq(names, "message reply_chunk reply done", "%s", r.body);
    cr_assert_eq(pd_int_at(last, "failed_count", -1), 1, "%s", r.body);
    json_decref(last);
    const char *reply = strstr(r.body, "event: reply\ndata: ");
    cr_assert_not_null(reply);
    json_t *rj = json_loadb(reply + 19, strcspn(reply + 19, "\n"), 0, NULL);
    cr_assert_str_eq(pd_str_at(rj, "data.attributes.status"), "failed", "%s", r.body);
    char eid[64];
    snprintf(eid, sizeof eid, "%s", pd_str_at(rj, "data.attributes.execution_id"));
    json_decref(rj);
    pd_resp_free(&r);
    json_t *a = execution(eid);
    cr_assert_str_eq(pd_str_at(a, "status"), "failed");
    json_decref(a);
    cr_assert_eq(conversation_messages(c, v, st, sizeof st), 2);
    cr_assert_str_eq(st, "failed");
}

/* ================================================================ a provider's 4xx */

Test(upstream_4xx, gateway_passes_the_providers_refusal_on)
{
    for (int stream = 0; stream < 2; stream++) {
        pd_resp r = chat("mock/m", stream, 1, CTX_400);
        assert_oai(&r, 400, "invalid_request_error", "context_length_exceeded", "messages");
        cr_assert_str_eq(pd_str_at(r.json, "error.message"), CTX_MSG, "the provider's own words: %s", r.body);
        assert_failed_execution(&r, CTX_MSG);
        pd_resp_free(&r);

        /* OpenAI's 404 for a model it does not have */
        r = chat("mock/no-such", stream, 1, "[mock:status=404] which model?");
        assert_oai(&r, 404, "invalid_request_error", "model_not_found", NULL);
        pd_resp_free(&r);

        /* a 422 with a bad parameter */
        r = chat("mock/m", stream, 1,
                 "[mock:status=422] [mock:error_message=top_k is not supported] [mock:error_param=top_k] x");
        assert_oai(&r, 422, "invalid_request_error", NULL, "top_k");
        cr_assert_str_eq(pd_str_at(r.json, "error.message"), "top_k is not supported", "%s", r.body);
        pd_resp_free(&r);

        /* Anthropic's 413: its type, no code */
        r = chat("amock/c", stream, 1, "[mock:status=413] big");
        assert_oai(&r, 413, "request_too_large", NULL, NULL);
        cr_assert(json_is_null(pd_json_at(r.json, "error.code")), "%s", r.body);
        cr_assert_str_eq(pd_str_at(r.json, "error.message"), "Request exceeds the maximum allowed size.", "%s", r.body);
        pd_resp_free(&r);
    }
}

/* 401/403 are promptd's own credentials at the provider, 429 its load: never
 * the client's mistake, so an outage (502), recorded with the provider's words. */
Test(upstream_4xx, credentials_and_rate_limits_stay_502)
{
    const char *contents[] = {"[mock:status=401] key", "[mock:status=403] forbidden", "[mock:status=429] busy"};
    const char *mention[] = {"HTTP 401", "HTTP 403", "HTTP 429"};
    for (size_t i = 0; i < 3; i++) {
        for (int stream = 0; stream < 2; stream++) {
            pd_resp r = chat("mock/m", stream, 1, contents[i]);
            assert_oai(&r, 502, "api_error", "upstream_error", NULL);
            assert_not_a_stream(&r);
            assert_failed_execution(&r, mention[i]);
            if (i < 2) /* promptd's credentials, said so: not the caller's key */
                cr_assert(strstr(pd_str_at(r.json, "error.message"), "promptd's own credentials"), "%s", r.body);
            pd_resp_free(&r);
        }
    }
    char pid[64];
    create_prompt(pid);
    pd_resp r = execute(pid, 0, "mock/m", "[mock:status=401] key");
    assert_jarvis(&r, 502, "upstream_error");
    cr_assert_null(pd_json_at(r.json, "errors.0.meta"), "%s", r.body);
    pd_resp_free(&r);
}

Test(upstream_4xx, execute_passes_the_providers_refusal_on)
{
    char pid[64];
    create_prompt(pid);
    for (int stream = 0; stream < 2; stream++) {
        pd_resp r = execute(pid, stream, "mock/m", CTX_400);
        assert_jarvis(&r, 400, "bad_request");
        cr_assert(strstr(pd_str_at(r.json, "errors.0.detail"), CTX_MSG), "%s", r.body);
        cr_assert_str_eq(pd_str_at(r.json, "errors.0.meta.upstream.code"), "context_length_exceeded", "%s", r.body);
        cr_assert_str_eq(pd_str_at(r.json, "errors.0.meta.upstream.type"), "invalid_request_error", "%s", r.body);
        cr_assert_str_eq(pd_str_at(r.json, "errors.0.meta.upstream.param"), "messages", "%s", r.body);
        assert_failed_execution(&r, CTX_MSG);
        pd_resp_free(&r);
    }
}

Test(upstream_4xx, v1_prompt_passes_the_providers_refusal_on)
{
    char *body = pd_pack("{s:s, s:s}", "prompt", CTX_400, "model", "mock/m");
    pd_resp r = bearer(S.admin_key, "POST", "/api/v1/prompt", body);
    free(body);
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert(json_is_false(pd_json_at(r.json, "success")), "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "error.code"), "BAD_REQUEST", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "error.message"), CTX_MSG, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "error.upstream.code"), "context_length_exceeded", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "error.upstream.param"), "messages", "%s", r.body);
    char id[64];
    snprintf(id, sizeof id, "%s", pd_str_at(r.json, "request_id"));
    pd_resp_free(&r);

    r = bearer(S.admin_key, "GET", P("/api/v1/prompt/%s", id), NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.status"), "failed", "%s", r.body);
    cr_assert(strstr(pd_str_at(r.json, "data.error"), CTX_MSG), "%s", r.body);
    pd_resp_free(&r);
    r = bearer(OTHER, "GET", P("/api/v1/prompt/%s", id), NULL);
    cr_assert_eq(r.status, 404, "another organization's request: %s", r.body);
    pd_resp_free(&r);
}
