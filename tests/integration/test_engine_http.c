/*
 * test_engine_http.c — promptd against real upstreams (the mock LLM provider
 * in tests/mock/) over real HTTP:
 *
 *   providers  OpenAI-compatible and Anthropic, sync and stream: the mock's
 *              text and usage come back, the execution records the
 *              provider/model name, keys/temperature/max_tokens/system are
 *              forwarded (checked with [mock:echo_request] and a mock that
 *              requires a key), aliases and the default model route.
 *   failures   5xx -> 502 and a failed execution with its error; a provider
 *              timeout -> 504; broken bodies, odd types, dropped connections
 *              -> clean 502s while the server keeps serving; missing usage is
 *              estimated (documented below); retries with backoff, Retry-After
 *              honoured, bounded attempts; fallbacks; streamed failures end
 *              with "event: error"; the per-provider concurrency cap.
 *   scale      2,000 requests in flight at once on a 1 s upstream.
 *   shutdown   SIGTERM lets in-flight requests finish (exit 0); a request
 *              that outlives the 10 s drain is answered 503, never dropped.
 *
 * Each test starts its own mock and promptd; configuration files go into a
 * temp dir removed at the end.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
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

TestSuite(providers, .fini = teardown, .timeout = 120);
TestSuite(failures, .fini = teardown, .timeout = 120);
TestSuite(scale, .fini = teardown, .timeout = 120);
TestSuite(shutdown, .fini = teardown, .timeout = 120);

/* ---------------------------------------------------------------- helpers */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start_mock(const char *const *args) { cr_assert_eq(mock_proc_start(&M, args), 0, "mock did not start"); }

/* Environment with OPENAI_* and ANTHROPIC_* pointing at the mock (key k); static storage. */
static const char *const *env_providers(const char *key)
{
    static char oa[160], an[160], ok[160], ak[160];
    static const char *env[5];
    snprintf(oa, sizeof oa, "OPENAI_BASE_URL=%s/v1", M.base_url);
    snprintf(an, sizeof an, "ANTHROPIC_BASE_URL=%s", M.base_url);
    snprintf(ok, sizeof ok, "OPENAI_API_KEY=%s", key);
    snprintf(ak, sizeof ak, "ANTHROPIC_API_KEY=%s", key);
    env[0] = oa, env[1] = an, env[2] = ok, env[3] = ak, env[4] = NULL;
    return env;
}

/* promptd with OPENAI_* and ANTHROPIC_* pointing at the mock (key k). */
static void start_env_providers(const char *key)
{
    cr_assert_eq(pd_start(&S, NULL, env_providers(key)), 0, "promptd did not start");
}

/* Write a config file (printf format) into CFGDIR; its path into out (300 bytes). */
static void write_config(char *out, const char *fmt, ...)
{
    if (!CFGDIR[0])
        cr_assert_eq(pd_mkdtemp(CFGDIR, sizeof CFGDIR), 0);
    snprintf(out, 300, "%s/promptd.json", CFGDIR);
    FILE *f = fopen(out, "w");
    cr_assert_not_null(f);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

/* promptd with --config: provider "mock" (OpenAI wire) at the mock, plus `more` (JSON members, may be ""). */
static void start_config(int max_attempts, long timeout_ms, int max_concurrency, const char *more)
{
    char path[300];
    write_config(path,
                 "{\"providers\":[{\"name\":\"mock\",\"type\":\"openai\",\"base_url\":\"%s/v1\",\"api_key\":\"x\","
                 "\"timeout_ms\":%ld,\"connect_timeout_ms\":2000,\"max_concurrency\":%d},"
                 "{\"name\":\"amock\",\"type\":\"anthropic\",\"base_url\":\"%s\",\"api_key\":\"x\","
                 "\"timeout_ms\":%ld}],"
                 "\"retry\":{\"max_attempts\":%d,\"base_delay_ms\":10,\"max_delay_ms\":40}%s%s}",
                 M.base_url, timeout_ms, max_concurrency, M.base_url, timeout_ms, max_attempts,
                 more && *more ? "," : "", more ? more : "");
    const char *args[] = {"--config", path, NULL};
    cr_assert_eq(pd_start(&S, args, NULL), 0, "promptd did not start with its config");
}

static pd_resp call(const char *method, const char *path, const char *body)
{
    pd_resp r;
    int rc = pd_req(&S, method, path, S.admin_key, body, NULL, &r);
    cr_assert_eq(rc, 0, "%s %s: transfer failed: %s", method, path, r.error);
    return r;
}

static pd_resp expect(long status, const char *method, const char *path, const char *body)
{
    pd_resp r = call(method, path, body);
    cr_assert_eq(r.status, status, "%s %s: want %ld, got %ld: %s", method, path, status, r.status, r.body);
    return r;
}

/* Jarvis error envelope with this status and code. */
static void assert_error(const pd_resp *r, long status, const char *code)
{
    char want[8];
    snprintf(want, sizeof want, "%ld", status);
    cr_assert_eq(r->status, status, "want %ld, got %ld: %s", status, r->status, r->body);
    const char *st = pd_str_at(r->json, "errors.0.status"), *c = pd_str_at(r->json, "errors.0.code");
    cr_assert_str_eq(st ? st : "(none)", want, "%s", r->body);
    cr_assert_str_eq(c ? c : "(none)", code, "%s", r->body);
    const char *d = pd_str_at(r->json, "errors.0.detail");
    cr_assert(d && *d, "%s", r->body);
}

/* A prompt whose whole content is {{msg}}; its id into id (64 bytes). */
static void create_msg_prompt(char *id)
{
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "msg", "{{msg}}", id, 64), 201);
}

/* POST /prompts/:id/execute[/stream] {"variables":{"msg"}, "model", extra members...}. */
static pd_resp run(const char *pid, int stream, const char *model, const char *msg, const char *extra)
{
    json_t *b = json_pack("{s:{s:s}}", "variables", "msg", msg);
    if (model)
        json_object_set_new(b, "model", json_string(model));
    if (extra) {
        json_t *e = json_loads(extra, 0, NULL);
        cr_assert_not_null(e, "bad extra JSON %s", extra);
        json_object_update(b, e);
        json_decref(e);
    }
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    char path[160];
    snprintf(path, sizeof path, "/prompts/%s/execute%s", pid, stream ? "/stream" : "");
    pd_resp r = call("POST", path, body);
    free(body);
    return r;
}

static json_t *get_exec(const char *pid, const char *eid)
{
    char path[200];
    snprintf(path, sizeof path, "/prompts/%s/executions/%s", pid, eid);
    pd_resp r = expect(200, "GET", path, NULL);
    json_t *d = json_incref(pd_json_at(r.json, "data.attributes"));
    cr_assert_not_null(d, "%s", r.body);
    pd_resp_free(&r);
    return d;
}

/* The only failed execution of prompt pid (attributes, new reference). */
static json_t *only_failed(const char *pid)
{
    char path[200];
    snprintf(path, sizeof path, "/prompts/%s/executions?status=failed", pid);
    pd_resp r = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 1, "%s", r.body);
    json_t *a = json_incref(pd_json_at(r.json, "data.0.attributes"));
    pd_resp_free(&r);
    return a;
}

static void assert_failed_record(json_t *a, const char *model, const char *mention)
{
    char *dump = json_dumps(a, JSON_COMPACT);
    cr_assert_str_eq(pd_str_at(a, "status"), "failed", "%s", dump);
    const char *err = pd_str_at(a, "error");
    cr_assert(err && *err, "a failed execution records its error: %s", dump);
    if (mention)
        cr_assert(strcasestr(err, mention), "error '%s' does not mention '%s'", err, mention);
    if (model)
        cr_assert_str_eq(pd_str_at(a, "model"), model, "%s", dump);
    free(dump);
}

/* The server still executes normally. */
static void assert_still_serving(const char *pid, const char *model)
{
    pd_resp r = run(pid, 0, model, "are you ok", NULL);
    cr_assert_eq(r.status, 200, "the server stopped serving: %ld %s", r.status, r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"),
                     model && strcmp(model, "echo") ? "mock reply: are you ok" : "are you ok", "%s", r.body);
    pd_resp_free(&r);
}

/* GET /_mock/stats -> the counter `name`. */
static long long mock_stat(const char *name)
{
    long long v = pd_mock_stat(M.base_url, name);
    cr_assert_geq(v, 0, "mock stats: %s unreadable", name);
    return v;
}

/* Wait until the mock has no request in flight (no connection left hanging). */
static void assert_mock_idle(void)
{
    long long deadline = now_ms() + 3000;
    while (mock_stat("in_flight") != 0 && now_ms() < deadline)
        usleep(20 * 1000);
    cr_assert_eq(mock_stat("in_flight"), 0, "requests left hanging at the upstream");
}

/* ---- SSE ---- */

typedef struct sse_ev {
    char event[32];
    char *data;
} sse_ev;

typedef struct sse_list {
    sse_ev ev[512];
    size_t n;
} sse_list;

static void sse_parse(const char *body, sse_list *out)
{
    out->n = 0;
    const char *p = body;
    while (*p && out->n < sizeof out->ev / sizeof out->ev[0]) {
        const char *end = strstr(p, "\n\n");
        size_t blen = end ? (size_t)(end - p) : strlen(p);
        sse_ev ev = {{0}, NULL};
        size_t dlen = 0;
        const char *line = p;
        while (line < p + blen) {
            const char *nl = memchr(line, '\n', (size_t)(p + blen - line));
            size_t llen = nl ? (size_t)(nl - line) : (size_t)(p + blen - line);
            if (llen >= 6 && strncmp(line, "event:", 6) == 0) {
                const char *v = line + 6;
                while (*v == ' ')
                    v++;
                snprintf(ev.event, sizeof ev.event, "%.*s", (int)(llen - (size_t)(v - line)), v);
            } else if (llen >= 5 && strncmp(line, "data:", 5) == 0) {
                const char *v = line + 5;
                if (*v == ' ')
                    v++;
                size_t vl = llen - (size_t)(v - line);
                char *nd = realloc(ev.data, dlen + vl + 2);
                cr_assert_not_null(nd);
                ev.data = nd;
                if (dlen)
                    ev.data[dlen++] = '\n';
                memcpy(ev.data + dlen, v, vl);
                dlen += vl;
                ev.data[dlen] = '\0';
            }
            line += llen + 1;
        }
        if (ev.data || ev.event[0])
            out->ev[out->n++] = ev;
        p = end ? end + 2 : p + blen;
    }
}

static void sse_free(sse_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ev[i].data);
    l->n = 0;
}

/* A Jarvis stream: concatenated data contents into text; the last event (name + parsed data). */
typedef struct jstream {
    char text[8192];
    size_t pieces;
    char last_event[32];
    json_t *last;       /* parsed data of the last event */
} jstream;

static void jstream_read(const pd_resp *r, jstream *js)
{
    memset(js, 0, sizeof *js);
    sse_list ev;
    sse_parse(r->body, &ev);
    cr_assert_gt(ev.n, 0, "empty stream: %s", r->body);
    for (size_t i = 0; i + 1 < ev.n; i++) {
        cr_assert_str_eq(ev.ev[i].event, "", "only data events before the final one: %s", r->body);
        json_t *j = json_loads(ev.ev[i].data, 0, NULL);
        const char *c = json_string_value(json_object_get(j, "content"));
        cr_assert_not_null(c, "piece without content: %s", ev.ev[i].data);
        strncat(js->text, c, sizeof js->text - strlen(js->text) - 1);
        js->pieces++;
        json_decref(j);
    }
    snprintf(js->last_event, sizeof js->last_event, "%s", ev.ev[ev.n - 1].event);
    js->last = json_loads(ev.ev[ev.n - 1].data ? ev.ev[ev.n - 1].data : "null", 0, NULL);
    sse_free(&ev);
}

/* ================================================================ providers */

Test(providers, openai_sync_and_stream)
{
    start_mock(NULL);
    start_env_providers("x");
    char pid[64];
    create_msg_prompt(pid);

    pd_resp r = run(pid, 0, "openai/gpt-test", "Say hello world", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *d = pd_json_at(r.json, "data");
    cr_assert_str_eq(pd_str_at(d, "type"), "chat_response", "%s", r.body);
    cr_assert_str_eq(pd_str_at(d, "attributes.content"), "mock reply: Say hello world", "%s", r.body);
    cr_assert_eq(pd_int_at(d, "attributes.metadata.usage.prompt_tokens", -1), 3, "%s", r.body);
    cr_assert_eq(pd_int_at(d, "attributes.metadata.usage.completion_tokens", -1), 5, "%s", r.body);
    cr_assert_eq(pd_int_at(d, "attributes.metadata.usage.total_tokens", -1), 8, "%s", r.body);
    cr_assert_str_eq(pd_str_at(d, "attributes.metadata.model"), "openai/gpt-test", "%s", r.body);
    cr_assert_eq(pd_int_at(d, "attributes.metadata.attempts", -1), 1, "%s", r.body);
    char eid[64];
    snprintf(eid, sizeof eid, "%s", pd_str_at(d, "attributes.metadata.prompt_execution_id"));
    pd_resp_free(&r);
    json_t *a = get_exec(pid, eid);
    cr_assert_str_eq(pd_str_at(a, "model"), "openai/gpt-test");
    cr_assert_str_eq(pd_str_at(a, "output"), "mock reply: Say hello world");
    cr_assert_str_eq(pd_str_at(a, "status"), "completed");
    cr_assert_eq(pd_int_at(a, "tokens_used", -1), 8);
    json_decref(a);

    r = run(pid, 1, "openai/gpt-test", "Say hello world again", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    const char *xh = pd_header(&r, "X-Execution-Id");
    cr_assert_not_null(xh);
    snprintf(eid, sizeof eid, "%s", xh);
    jstream js;
    jstream_read(&r, &js);
    cr_assert_str_eq(js.text, "mock reply: Say hello world again", "%s", r.body);
    cr_assert_gt(js.pieces, 1, "%s", r.body);
    cr_assert_str_eq(js.last_event, "done", "%s", r.body);
    cr_assert_str_eq(pd_str_at(js.last, "prompt_execution_id"), eid);
    cr_assert_str_eq(pd_str_at(js.last, "model"), "openai/gpt-test", "%s", r.body);
    cr_assert_eq(pd_int_at(js.last, "usage.prompt_tokens", -1), 4, "%s", r.body);
    cr_assert_eq(pd_int_at(js.last, "usage.completion_tokens", -1), 6, "%s", r.body);
    cr_assert_eq(pd_int_at(js.last, "usage.total_tokens", -1), 10, "%s", r.body);
    json_decref(js.last);
    pd_resp_free(&r);
    a = get_exec(pid, eid);
    cr_assert_str_eq(pd_str_at(a, "status"), "completed");
    cr_assert_str_eq(pd_str_at(a, "output"), "mock reply: Say hello world again");
    cr_assert_str_eq(pd_str_at(a, "model"), "openai/gpt-test");
    cr_assert_eq(pd_int_at(a, "tokens_used", -1), 10);
    json_decref(a);

    /* duration_ms covers the upstream's latency */
    r = run(pid, 0, "openai/gpt-test", "[mock:latency=300] take your time", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_geq(pd_int_at(r.json, "data.attributes.metadata.duration_ms", -1), 300, "%s", r.body);
    snprintf(eid, sizeof eid, "%s", pd_str_at(r.json, "data.attributes.metadata.prompt_execution_id"));
    pd_resp_free(&r);
    a = get_exec(pid, eid);
    cr_assert_geq(pd_int_at(a, "duration_ms", -1), 300);
    cr_assert_lt(pd_int_at(a, "duration_ms", -1), 10000);
    json_decref(a);

    /* max_tokens truncates upstream: finish_reason "length" */
    r = run(pid, 0, "openai/gpt-test", "one two three four five", "{\"max_tokens\":3}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "mock reply: one", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.metadata.finish_reason"), "length", "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.metadata.usage.completion_tokens", -1), 3, "%s", r.body);
    pd_resp_free(&r);
}

Test(providers, anthropic_sync_and_stream)
{
    start_mock(NULL);
    start_env_providers("x");
    char pid[64];
    create_msg_prompt(pid);

    pd_resp r = run(pid, 0, "anthropic/claude-test", "Say hello world", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *d = pd_json_at(r.json, "data");
    cr_assert_str_eq(pd_str_at(d, "attributes.content"), "mock reply: Say hello world", "%s", r.body);
    cr_assert_eq(pd_int_at(d, "attributes.metadata.usage.prompt_tokens", -1), 3, "%s", r.body);
    cr_assert_eq(pd_int_at(d, "attributes.metadata.usage.completion_tokens", -1), 5, "%s", r.body);
    cr_assert_eq(pd_int_at(d, "attributes.metadata.usage.total_tokens", -1), 8, "%s", r.body);
    cr_assert_str_eq(pd_str_at(d, "attributes.metadata.model"), "anthropic/claude-test", "%s", r.body);
    cr_assert_str_eq(pd_str_at(d, "attributes.metadata.finish_reason"), "stop", "end_turn maps to stop: %s", r.body);
    char eid[64];
    snprintf(eid, sizeof eid, "%s", pd_str_at(d, "attributes.metadata.prompt_execution_id"));
    pd_resp_free(&r);
    json_t *a = get_exec(pid, eid);
    cr_assert_str_eq(pd_str_at(a, "model"), "anthropic/claude-test");
    cr_assert_str_eq(pd_str_at(a, "output"), "mock reply: Say hello world");
    cr_assert_eq(pd_int_at(a, "tokens_used", -1), 8);
    json_decref(a);

    r = run(pid, 1, "anthropic/claude-test", "Say hello world again", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    const char *ct = pd_header(&r, "Content-Type");
    cr_assert(ct && !strncmp(ct, "text/event-stream", 17), "%s", ct ? ct : "(none)");
    snprintf(eid, sizeof eid, "%s", pd_header(&r, "X-Execution-Id") ? pd_header(&r, "X-Execution-Id") : "");
    jstream js;
    jstream_read(&r, &js);
    cr_assert_str_eq(js.text, "mock reply: Say hello world again", "%s", r.body);
    cr_assert_gt(js.pieces, 1, "%s", r.body);
    cr_assert_str_eq(js.last_event, "done", "%s", r.body);
    cr_assert_str_eq(pd_str_at(js.last, "prompt_execution_id"), eid, "%s", r.body);
    cr_assert_eq(pd_int_at(js.last, "usage.prompt_tokens", -1), 4, "%s", r.body);
    cr_assert_eq(pd_int_at(js.last, "usage.completion_tokens", -1), 6, "%s", r.body);
    cr_assert_eq(pd_int_at(js.last, "usage.total_tokens", -1), 10, "%s", r.body);
    json_decref(js.last);
    pd_resp_free(&r);
    a = get_exec(pid, eid);
    cr_assert_str_eq(pd_str_at(a, "status"), "completed");
    cr_assert_str_eq(pd_str_at(a, "output"), "mock reply: Say hello world again");
    cr_assert_str_eq(pd_str_at(a, "model"), "anthropic/claude-test");
    json_decref(a);
}

/* The request body the mock received, parsed from an [mock:echo_request] answer. */
static json_t *echoed(const pd_resp *r)
{
    cr_assert_eq(r->status, 200, "%s", r->body);
    const char *c = pd_str_at(r->json, "data.attributes.content");
    cr_assert_not_null(c, "%s", r->body);
    json_t *j = json_loads(c, 0, NULL);
    cr_assert(json_is_object(j), "the mock did not echo the request: %s", c);
    return j;
}

Test(providers, parameters_and_keys_are_forwarded)
{
    /* the mock refuses requests without this key, in both wire formats */
    const char *margs[] = {"--require-key", "sk-test-123", NULL};
    start_mock(margs);
    start_env_providers("sk-test-123");
    char pid[64];
    create_msg_prompt(pid);

    pd_resp r =
        run(pid, 0, "openai/gpt-test", "[mock:echo_request] check", "{\"temperature\":0.25,\"max_tokens\":300}");
    json_t *req = echoed(&r);
    char *dump = json_dumps(req, JSON_COMPACT);
    cr_assert_str_eq(pd_str_at(req, "model"), "gpt-test", "%s", dump);
    cr_assert(fabs(json_number_value(json_object_get(req, "temperature")) - 0.25) < 1e-9, "%s", dump);
    cr_assert_eq(pd_int_at(req, "max_tokens", -1), 300, "%s", dump);
    cr_assert(!json_is_true(json_object_get(req, "stream")), "%s", dump);
    cr_assert_str_eq(pd_str_at(req, "messages.0.role"), "user", "%s", dump);
    cr_assert_str_eq(pd_str_at(req, "messages.0.content"), "[mock:echo_request] check", "%s", dump);
    cr_assert_eq(json_array_size(json_object_get(req, "messages")), 1, "%s", dump);
    free(dump);
    json_decref(req);
    pd_resp_free(&r);

    r = run(pid, 0, "anthropic/claude-test", "[mock:echo_request] check", "{\"temperature\":1.5,\"max_tokens\":300}");
    req = echoed(&r);
    dump = json_dumps(req, JSON_COMPACT);
    cr_assert_str_eq(pd_str_at(req, "model"), "claude-test", "%s", dump);
    cr_assert(fabs(json_number_value(json_object_get(req, "temperature")) - 1.5) < 1e-9, "%s", dump);
    cr_assert_eq(pd_int_at(req, "max_tokens", -1), 300, "%s", dump);
    cr_assert_str_eq(pd_str_at(req, "messages.0.content"), "[mock:echo_request] check", "%s", dump);
    free(dump);
    json_decref(req);
    pd_resp_free(&r);

    /* without max_tokens: Anthropic still gets one (it is required there); OpenAI gets none */
    r = run(pid, 0, "anthropic/claude-test", "[mock:echo_request] defaults", NULL);
    req = echoed(&r);
    cr_assert_gt(pd_int_at(req, "max_tokens", -1), 0);
    cr_assert_null(json_object_get(req, "temperature"), "no temperature unless asked");
    json_decref(req);
    pd_resp_free(&r);
    r = run(pid, 0, "openai/gpt-test", "[mock:echo_request] defaults", NULL);
    req = echoed(&r);
    cr_assert_null(json_object_get(req, "max_tokens"));
    cr_assert_null(json_object_get(req, "temperature"));
    json_decref(req);
    pd_resp_free(&r);

    /* system messages (through the gateway, which takes whole conversations) */
    static const char *const models[] = {"openai/gpt-test", "anthropic/claude-test"};
    char bearer[200];
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", S.admin_key);
    const char *hdrs[] = {bearer, NULL};
    for (int i = 0; i < 2; i++) {
        char *body = pd_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:f, s:i}", "model", models[i], "messages", "role",
                             "system", "content", "You are terse.", "role", "user", "content",
                             "[mock:echo_request] sys", "temperature", 0.5, "max_tokens", 400);
        pd_resp g;
        cr_assert_eq(pd_req(&S, "POST", "/v1/chat/completions", NULL, body, hdrs, &g), 0);
        free(body);
        cr_assert_eq(g.status, 200, "%s", g.body);
        json_t *up = json_loads(pd_str_at(g.json, "choices.0.message.content"), 0, NULL);
        cr_assert_not_null(up, "%s", g.body);
        dump = json_dumps(up, JSON_COMPACT);
        if (i == 0) {
            cr_assert_str_eq(pd_str_at(up, "messages.0.role"), "system", "%s", dump);
            cr_assert_str_eq(pd_str_at(up, "messages.0.content"), "You are terse.", "%s", dump);
            cr_assert_str_eq(pd_str_at(up, "messages.1.role"), "user", "%s", dump);
        } else {
            cr_assert_str_eq(pd_str_at(up, "system"), "You are terse.", "system lifted out: %s", dump);
            cr_assert_eq(json_array_size(json_object_get(up, "messages")), 1, "%s", dump);
            cr_assert_str_eq(pd_str_at(up, "messages.0.role"), "user", "%s", dump);
        }
        cr_assert(fabs(json_number_value(json_object_get(up, "temperature")) - 0.5) < 1e-9, "%s", dump);
        cr_assert_eq(pd_int_at(up, "max_tokens", -1), 400, "%s", dump);
        free(dump);
        json_decref(up);
        pd_resp_free(&g);
    }

    /* a stream asks the upstream for a stream (and, on OpenAI, for usage) */
    r = run(pid, 1, "openai/gpt-test", "[mock:echo_request] streamed", "{\"max_tokens\":300}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    jstream js;
    jstream_read(&r, &js);
    cr_assert_str_eq(js.last_event, "done", "%s", r.body);
    json_decref(js.last);
    req = json_loads(js.text, 0, NULL);
    cr_assert_not_null(req, "%s", js.text);
    cr_assert(json_is_true(json_object_get(req, "stream")), "%s", js.text);
    cr_assert(json_is_true(pd_json_at(req, "stream_options.include_usage")), "%s", js.text);
    json_decref(req);
    pd_resp_free(&r);
}

Test(providers, wrong_upstream_key_is_a_502_not_retried)
{
    const char *margs[] = {"--require-key", "sk-right", NULL};
    start_mock(margs);
    start_env_providers("sk-wrong");
    char pid[64];
    create_msg_prompt(pid);
    pd_resp r = run(pid, 0, "openai/gpt-test", "hello", NULL);
    assert_error(&r, 502, "upstream_error");
    pd_resp_free(&r);
    cr_assert_eq(mock_stat("requests"), 1, "a 401 from the upstream is not retried");
    json_t *a = only_failed(pid);
    assert_failed_record(a, "openai/gpt-test", NULL);
    json_decref(a);
    r = run(pid, 0, "anthropic/claude-test", "hello", NULL);
    assert_error(&r, 502, "upstream_error");
    pd_resp_free(&r);
    assert_still_serving(pid, "echo");
}

Test(providers, aliases_default_model_and_named_providers)
{
    start_mock(NULL);
    char path[300];
    write_config(path,
                 "{\"default_model\":\"fast\","
                 "\"providers\":[{\"name\":\"local\",\"type\":\"openai\",\"base_url\":\"%s/v1\"},"
                 "{\"name\":\"claude\",\"type\":\"anthropic\",\"base_url\":\"%s\",\"api_key\":\"k\"}],"
                 "\"aliases\":{\"fast\":\"local/llama3.2\",\"smart\":\"claude/opus\"}}",
                 M.base_url, M.base_url);
    const char *args[] = {"--config", path, NULL};
    cr_assert_eq(pd_start(&S, args, NULL), 0);
    char pid[64];
    create_msg_prompt(pid);

    /* no model: the default (an alias) */
    pd_resp r = run(pid, 0, NULL, "default route", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "mock reply: default route", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.metadata.model"), "local/llama3.2", "%s", r.body);
    char eid[64];
    snprintf(eid, sizeof eid, "%s", pd_str_at(r.json, "data.attributes.metadata.prompt_execution_id"));
    pd_resp_free(&r);
    json_t *a = get_exec(pid, eid);
    cr_assert_str_eq(pd_str_at(a, "model"), "local/llama3.2");
    json_decref(a);

    r = run(pid, 0, "smart", "[mock:echo_request] alias", NULL);
    json_t *req = echoed(&r);
    cr_assert_str_eq(pd_str_at(req, "model"), "opus");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.metadata.model"), "claude/opus", "%s", r.body);
    json_decref(req);
    pd_resp_free(&r);

    /* a model with slashes goes to the provider named before the first one */
    r = run(pid, 0, "local/library/llama3:8b", "[mock:echo_request] slashes", NULL);
    req = echoed(&r);
    cr_assert_str_eq(pd_str_at(req, "model"), "library/llama3:8b");
    json_decref(req);
    pd_resp_free(&r);

    r = run(pid, 0, "echo", "plain echo", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "plain echo", "%s", r.body);
    pd_resp_free(&r);

    /* PROMPTD_DEFAULT_MODEL overrides the file */
    pd_stop(&S);
    const char *env[] = {"PROMPTD_DEFAULT_MODEL=smart", NULL};
    cr_assert_eq(pd_start(&S, args, env), 0);
    create_msg_prompt(pid);
    r = run(pid, 0, NULL, "env default", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.metadata.model"), "claude/opus", "%s", r.body);
    pd_resp_free(&r);
}

/* ================================================================ failures */

Test(failures, upstream_500_is_502_and_a_failed_execution)
{
    start_mock(NULL);
    start_config(1, 5000, 64, NULL);
    char pid[64];
    create_msg_prompt(pid);
    pd_resp r = run(pid, 0, "mock/m", "[mock:status=500] boom", NULL);
    assert_error(&r, 502, "upstream_error");
    pd_resp_free(&r);
    cr_assert_eq(mock_stat("requests"), 1, "max_attempts 1: no retry");
    json_t *a = only_failed(pid);
    assert_failed_record(a, "mock/m", NULL);
    cr_assert_eq(pd_int_at(a, "attempts", -1), 1);
    json_decref(a);

    /* the same through Anthropic's wire format */
    r = run(pid, 0, "amock/c", "[mock:status=503] boom", NULL);
    assert_error(&r, 502, "upstream_error");
    pd_resp_free(&r);
    assert_still_serving(pid, "mock/m");
    assert_mock_idle();
}

Test(failures, timeout_is_504_and_a_failed_execution)
{
    start_mock(NULL);
    start_config(3, 1000, 64, NULL);
    char pid[64];
    create_msg_prompt(pid);
    long long t0 = now_ms();
    pd_resp r = run(pid, 0, "mock/m", "[mock:latency=5000] too slow", NULL);
    long long took = now_ms() - t0;
    assert_error(&r, 504, "upstream_timeout");
    pd_resp_free(&r);
    cr_assert_lt(took, 4000, "a 1000 ms timeout answered after %lld ms (a timeout after sending is not retried)", took);
    json_t *a = only_failed(pid);
    assert_failed_record(a, "mock/m", NULL);
    json_decref(a);

    /* streamed: a timeout before the first piece is the same 504 (the status line waits for the model) */
    r = run(pid, 1, "mock/m", "[mock:latency=5000] too slow stream", NULL);
    assert_error(&r, 504, "upstream_timeout");
    cr_assert_not_null(pd_header(&r, "X-Execution-Id"), "%s", r.headers);
    pd_resp_free(&r);
    assert_still_serving(pid, "mock/m");
}

/* Each broken answer: a clean 502 with the execution failed, then the server serves on. */
Test(failures, broken_answers_are_clean_502s)
{
    start_mock(NULL);
    start_config(1, 5000, 64, NULL);
    static const char *const msgs[] = {"[mock:malformed] broken json", "[mock:bad_types] odd types",
                                       "[mock:drop] hang up", "[mock:status=401] not our key"};
    static const char *const models[] = {"mock/m", "amock/c"};
    for (size_t m = 0; m < 2; m++) {
        for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
            char pid[64];
            create_msg_prompt(pid);
            pd_resp r = run(pid, 0, models[m], msgs[i], NULL);
            cr_assert_eq(r.status, 502, "%s via %s: want 502, got %ld: %s", msgs[i], models[m], r.status, r.body);
            assert_error(&r, 502, "upstream_error");
            pd_resp_free(&r);
            json_t *a = only_failed(pid);
            assert_failed_record(a, models[m], NULL);
            json_decref(a);
            assert_still_serving(pid, models[m]);
        }
    }
    assert_mock_idle();
}

/* Documented behaviour: an answer without usage is NOT an error; promptd
 * completes the execution and estimates the tokens like the echo model,
 * ceil(bytes / 4) of the prompt and of the output. */
Test(failures, missing_usage_is_estimated)
{
    start_mock(NULL);
    start_config(1, 5000, 64, NULL);
    char pid[64];
    create_msg_prompt(pid);
    const char *msg = "[mock:no_usage] count me please";
    const char *out = "mock reply: count me please";
    long long pt = (long long)(strlen(msg) + 3) / 4, ct = (long long)(strlen(out) + 3) / 4;
    static const char *const models[] = {"mock/m", "amock/c"};
    for (int i = 0; i < 2; i++) {
        for (int stream = 0; stream < 2; stream++) {
            pd_resp r = run(pid, stream, models[i], msg, NULL);
            cr_assert_eq(r.status, 200, "%s", r.body);
            json_t *usage;
            jstream js = {0};
            if (stream) {
                jstream_read(&r, &js);
                cr_assert_str_eq(js.last_event, "done", "%s", r.body);
                cr_assert_str_eq(js.text, out, "%s", r.body);
                usage = pd_json_at(js.last, "usage");
            } else {
                cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), out, "%s", r.body);
                usage = pd_json_at(r.json, "data.attributes.metadata.usage");
            }
            cr_assert_eq(pd_int_at(usage, "prompt_tokens", -1), pt, "%s %s: %s", models[i], stream ? "stream" : "sync",
                         r.body);
            cr_assert_eq(pd_int_at(usage, "completion_tokens", -1), ct, "%s", r.body);
            cr_assert_eq(pd_int_at(usage, "total_tokens", -1), pt + ct, "%s", r.body);
            json_decref(js.last);
            pd_resp_free(&r);
        }
    }
}

/* A stream that broke after its first piece ends with an error event; one
 * that broke before any piece is a plain error answer (the status line waits
 * for the model). Either way the execution is failed. */
Test(failures, streamed_failures_end_with_an_error_event)
{
    start_mock(NULL);
    start_config(1, 5000, 64, NULL);
    static const char *const msgs[] = {"[mock:malformed] broken stream here", "[mock:drop] dropped stream here",
                                       "[mock:status=500] refused stream", "[mock:bad_types] odd stream"};
    static const int after_first_piece[] = {1, 1, 0, 0};
    static const char *const models[] = {"mock/m", "amock/c"};
    for (size_t m = 0; m < 2; m++) {
        for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
            char pid[64];
            create_msg_prompt(pid);
            pd_resp r = run(pid, 1, models[m], msgs[i], NULL);
            const char *xh = pd_header(&r, "X-Execution-Id");
            cr_assert_not_null(xh, "%s", r.headers);
            char eid[64];
            snprintf(eid, sizeof eid, "%s", xh);
            if (after_first_piece[i]) {
                cr_assert_eq(r.status, 200, "%s via %s: %s", msgs[i], models[m], r.body);
                jstream js;
                jstream_read(&r, &js);
                cr_assert_str_eq(js.last_event, "error", "%s via %s: %s", msgs[i], models[m], r.body);
                cr_assert_eq(pd_int_at(js.last, "http_status", -1), 502, "%s", r.body);
                cr_assert_str_eq(pd_str_at(js.last, "prompt_execution_id"), eid, "%s", r.body);
                const char *err = pd_str_at(js.last, "error");
                cr_assert(err && *err, "%s", r.body);
                cr_assert(*js.text, "the first piece was sent: %s", r.body);
                json_decref(js.last);
            } else {
                assert_error(&r, 502, "upstream_error");
                cr_assert(strstr(pd_str_at(r.json, "errors.0.detail"), eid), "the error names its execution: %s",
                          r.body);
            }
            pd_resp_free(&r);
            json_t *a = get_exec(pid, eid);
            assert_failed_record(a, models[m], NULL);
            json_decref(a);
            assert_still_serving(pid, models[m]);
        }
    }
    assert_mock_idle();
}

Test(failures, retries_then_success_reports_attempts)
{
    start_mock(NULL);
    start_config(3, 5000, 64, NULL);
    char pid[64];
    create_msg_prompt(pid);
    pd_resp r = run(pid, 0, "mock/m", "[mock:fail_times=2] third time lucky", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "mock reply: third time lucky", "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.metadata.attempts", -1), 3, "%s", r.body);
    char eid[64];
    snprintf(eid, sizeof eid, "%s", pd_str_at(r.json, "data.attributes.metadata.prompt_execution_id"));
    pd_resp_free(&r);
    cr_assert_eq(mock_stat("requests"), 3);
    json_t *a = get_exec(pid, eid);
    cr_assert_str_eq(pd_str_at(a, "status"), "completed");
    cr_assert_eq(pd_int_at(a, "attempts", -1), 3);
    json_decref(a);

    /* bounded: 5 failures with 3 attempts is a failure after exactly 3 requests */
    r = run(pid, 0, "mock/m", "[mock:fail_times=5] never lucky", NULL);
    assert_error(&r, 502, "upstream_error");
    pd_resp_free(&r);
    cr_assert_eq(mock_stat("requests"), 6);
    a = only_failed(pid);
    assert_failed_record(a, "mock/m", NULL);
    cr_assert_eq(pd_int_at(a, "attempts", -1), 3);
    json_decref(a);

    /* a 4xx other than 429 is never retried (and a 400 is the provider's, passed on) */
    r = run(pid, 0, "mock/m", "[mock:status=400] bad request", NULL);
    assert_error(&r, 400, "bad_request");
    pd_resp_free(&r);
    cr_assert_eq(mock_stat("requests"), 7);

    /* a stream that failed before its first piece is retried, and the client sees the text once */
    r = run(pid, 1, "mock/m", "[mock:fail_times=1] stream retry", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    jstream js;
    jstream_read(&r, &js);
    cr_assert_str_eq(js.last_event, "done", "%s", r.body);
    cr_assert_str_eq(js.text, "mock reply: stream retry", "%s", r.body);
    json_decref(js.last);
    pd_resp_free(&r);

    /* a stream that broke after a piece reached the client is not spliced with a retry */
    r = run(pid, 1, "mock/m", "[mock:drop] spliced stream", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    jstream_read(&r, &js);
    cr_assert_str_eq(js.last_event, "error", "%s", r.body);
    cr_assert_leq(pd_count(js.text, "mock"), 1, "the first piece was sent twice: '%s'", js.text);
    json_decref(js.last);
    pd_resp_free(&r);
    assert_mock_idle();
}

Test(failures, retry_after_is_honoured)
{
    start_mock(NULL);
    start_config(2, 5000, 64, NULL);
    char pid[64];
    create_msg_prompt(pid);
    long long t0 = now_ms();
    pd_resp r = run(pid, 0, "mock/m", "[mock:status=429][mock:retry_after=1] slow down", NULL);
    long long took = now_ms() - t0;
    assert_error(&r, 502, "upstream_error");
    pd_resp_free(&r);
    cr_assert_eq(mock_stat("requests"), 2, "429 is retried up to max_attempts");
    /* backoff alone is at most 40 ms here: only Retry-After explains a full second */
    cr_assert_geq(took, 1000, "Retry-After: 1 not honoured (%lld ms)", took);
    cr_assert_lt(took, 8000, "%lld ms", took);
    printf("retry_after: 2 attempts with Retry-After: 1 took %lld ms\n", took);
    json_t *a = only_failed(pid);
    assert_failed_record(a, "mock/m", NULL);
    cr_assert_eq(pd_int_at(a, "attempts", -1), 2);
    json_decref(a);
}

Test(failures, fallback_model_answers)
{
    start_mock(NULL);
    start_config(1, 5000, 64, "\"fallbacks\":{\"mock/a\":[\"mock/b\"],\"mock/x\":[\"amock/y\",\"echo\"]}");
    char pid[64];
    create_msg_prompt(pid);
    pd_resp r = run(pid, 0, "mock/a", "[mock:fail_model=a] fall back", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "mock reply: fall back", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.metadata.model"), "mock/b", "%s", r.body);
    char eid[64];
    snprintf(eid, sizeof eid, "%s", pd_str_at(r.json, "data.attributes.metadata.prompt_execution_id"));
    pd_resp_free(&r);
    json_t *a = get_exec(pid, eid);
    cr_assert_str_eq(pd_str_at(a, "model"), "mock/b");
    cr_assert_str_eq(pd_str_at(a, "status"), "completed");
    json_decref(a);

    /* streamed too */
    r = run(pid, 1, "mock/a", "[mock:fail_model=a] fall back streaming", NULL);
    jstream js;
    jstream_read(&r, &js);
    cr_assert_str_eq(js.last_event, "done", "%s", r.body);
    cr_assert_str_eq(js.text, "mock reply: fall back streaming", "%s", r.body);
    cr_assert_str_eq(pd_str_at(js.last, "model"), "mock/b", "%s", r.body);
    json_decref(js.last);
    pd_resp_free(&r);

    /* the whole chain fails: 502, the last error kept */
    r = run(pid, 0, "mock/a", "[mock:status=500] everyone fails", NULL);
    assert_error(&r, 502, "upstream_error");
    pd_resp_free(&r);

    /* a chain ending in echo always answers */
    r = run(pid, 0, "mock/x", "[mock:status=500] down to echo", NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.metadata.model"), "echo", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "[mock:status=500] down to echo", "%s", r.body);
    pd_resp_free(&r);
}

/* A sync client that gives up while its request waits on the upstream: the
 * execution still completes, nothing crashes, the server serves on. */
Test(failures, sync_client_leaving_early)
{
    start_mock(NULL);
    start_config(1, 10000, 64, NULL);
    char pid[64], path[160], url[400], keyh[200];
    create_msg_prompt(pid);
    snprintf(path, sizeof path, "/prompts/%s/execute", pid);
    snprintf(url, sizeof url, "%s%s", S.base_url, path);
    snprintf(keyh, sizeof keyh, "AppId: %s", S.admin_key);
    CURL *h = curl_easy_init();
    struct curl_slist *hl = curl_slist_append(NULL, keyh);
    hl = curl_slist_append(hl, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS,
                     "{\"model\":\"mock/m\",\"variables\":{\"msg\":\"[mock:latency=1200] nobody waits\"}}");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 300L);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    cr_assert_eq(cc, CURLE_OPERATION_TIMEDOUT, "%s", curl_easy_strerror(cc));

    /* the execution finishes without its client */
    char lpath[200];
    snprintf(lpath, sizeof lpath, "/prompts/%s/executions", pid);
    long long deadline = now_ms() + 10000;
    const char *st = NULL;
    pd_resp r = {0};
    for (;;) {
        r = expect(200, "GET", lpath, NULL);
        cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 1, "%s", r.body);
        st = pd_str_at(r.json, "data.0.attributes.status");
        if ((st && strcmp(st, "processing") != 0) || now_ms() > deadline)
            break;
        pd_resp_free(&r);
        usleep(100 * 1000);
    }
    cr_assert_str_eq(st, "completed", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.output"), "mock reply: nobody waits", "%s", r.body);
    pd_resp_free(&r);
    assert_still_serving(pid, "mock/m");
    assert_mock_idle();
}

/* ---- concurrent requests with libcurl multi ---- */

typedef struct mreq {
    CURL *h;
    struct curl_slist *hl;
    char *body;
    char *resp;
    size_t len;
    long status;
    CURLcode cc;
    int done;
} mreq;

static size_t mreq_write(char *data, size_t size, size_t n, void *ud)
{
    mreq *q = ud;
    size_t add = size * n;
    char *p = realloc(q->resp, q->len + add + 1);
    if (!p)
        return 0;
    memcpy(p + q->len, data, add);
    q->len += add;
    p[q->len] = '\0';
    q->resp = p;
    return add;
}

/* POST base+path with q[i].body for i < n, all at once; returns the wall time in ms. */
static long long multi_post_to(const char *base, const char *path, int n, mreq *q, long timeout_ms)
{
    CURLM *multi = curl_multi_init();
    cr_assert_not_null(multi);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)n + 16);
    char url[256], bearer[200];
    snprintf(url, sizeof url, "%s%s", base, path);
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", S.admin_key);
    for (int i = 0; i < n; i++) {
        q[i].h = curl_easy_init();
        cr_assert_not_null(q[i].h);
        q[i].hl = curl_slist_append(NULL, bearer);
        q[i].hl = curl_slist_append(q[i].hl, "Content-Type: application/json");
        curl_easy_setopt(q[i].h, CURLOPT_URL, url);
        curl_easy_setopt(q[i].h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(q[i].h, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(q[i].h, CURLOPT_HTTPHEADER, q[i].hl);
        curl_easy_setopt(q[i].h, CURLOPT_POSTFIELDS, q[i].body);
        curl_easy_setopt(q[i].h, CURLOPT_WRITEFUNCTION, mreq_write);
        curl_easy_setopt(q[i].h, CURLOPT_WRITEDATA, &q[i]);
        curl_easy_setopt(q[i].h, CURLOPT_PRIVATE, &q[i]);
        curl_easy_setopt(q[i].h, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(q[i].h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
        curl_easy_setopt(q[i].h, CURLOPT_FORBID_REUSE, 1L);
        curl_multi_add_handle(multi, q[i].h);
    }
    long long t0 = now_ms();
    int running = 1, left = n;
    while (left > 0) {
        CURLMcode mc = curl_multi_perform(multi, &running);
        cr_assert_eq(mc, CURLM_OK, "%s", curl_multi_strerror(mc));
        CURLMsg *msg;
        int queued;
        while ((msg = curl_multi_info_read(multi, &queued))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            mreq *one = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&one);
            one->cc = msg->data.result;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &one->status);
            one->done = 1;
            left--;
        }
        if (left > 0)
            curl_multi_poll(multi, NULL, 0, 200, NULL);
        cr_assert_lt(now_ms() - t0, timeout_ms + 10000, "the multi loop never finished");
    }
    long long took = now_ms() - t0;
    for (int i = 0; i < n; i++) {
        curl_multi_remove_handle(multi, q[i].h);
        curl_easy_cleanup(q[i].h);
        curl_slist_free_all(q[i].hl);
    }
    curl_multi_cleanup(multi);
    return took;
}

static long long multi_post(const char *path, int n, mreq *q, long timeout_ms)
{
    return multi_post_to(S.base_url, path, n, q, timeout_ms);
}

static void mreq_free(mreq *q, int n)
{
    for (int i = 0; i < n; i++) {
        free(q[i].body);
        free(q[i].resp);
    }
    free(q);
}

Test(failures, per_provider_concurrency_cap)
{
    start_mock(NULL);
    start_config(1, 10000, 2, NULL);
    enum { N = 6 };
    mreq *q = calloc(N, sizeof *q);
    for (int i = 0; i < N; i++)
        q[i].body = pd_pack("{s:s, s:[{s:s, s:s}]}", "model", "mock/m", "messages", "role", "user", "content",
                            "[mock:latency=400] capped");
    long long took = multi_post("/v1/chat/completions", N, q, 20000);
    for (int i = 0; i < N; i++)
        cr_assert_eq(q[i].status, 200, "request %d: %ld %s", i, q[i].status, q[i].resp ? q[i].resp : "");
    long long peak = mock_stat("max_in_flight");
    cr_assert_eq(peak, 2, "max_concurrency 2, yet %lld upstream requests were in flight at once", peak);
    cr_assert_geq(took, 3 * 400 - 50, "6 requests 2 at a time on a 400 ms upstream took only %lld ms", took);
    mreq_free(q, N);
}

/* ================================================================ scale */

Test(scale, two_thousand_requests_in_flight_at_once)
{
    enum { N = 2000 };
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    cr_assert_geq(rl.rlim_cur, N + 200, "RLIMIT_NOFILE %lu is too low for %d connections", (unsigned long)rl.rlim_cur,
                  N);

    const char *margs[] = {"--latency-ms", "1000", NULL};
    start_mock(margs);
    start_config(1, 60000, 4096, NULL);
    mreq *q = calloc(N, sizeof *q);
    cr_assert_not_null(q);
    for (int i = 0; i < N; i++) {
        char content[64];
        snprintf(content, sizeof content, "request number %d", i);
        q[i].body = pd_pack("{s:s, s:[{s:s, s:s}]}", "model", "mock/m", "messages", "role", "user", "content", content);
    }
    /* the same load straight at the mock: what the client and the upstream alone need */
    mreq *dq = calloc(N, sizeof *dq);
    cr_assert_not_null(dq);
    for (int i = 0; i < N; i++)
        dq[i].body = pd_pack("{s:s, s:[{s:s, s:s}]}", "model", "m", "messages", "role", "user", "content", "direct");
    long long direct = multi_post_to(M.base_url, "/v1/chat/completions", N, dq, 60000);
    for (int i = 0; i < N; i++)
        cr_assert_eq(dq[i].status, 200, "direct request %d: %ld", i, dq[i].status);
    long long direct_peak = mock_stat("max_in_flight");
    mreq_free(dq, N);
    pd_server ms = {0};
    snprintf(ms.base_url, sizeof ms.base_url, "%s", M.base_url);
    pd_resp rr;
    cr_assert_eq(pd_req(&ms, "POST", "/_mock/reset", NULL, NULL, NULL, &rr), 0);
    pd_resp_free(&rr);
    printf("scale: %d requests straight at the mock: %lld ms, peak in flight %lld\n", N, direct, direct_peak);
    fprintf(stderr, "scale: %d requests straight at the mock: %lld ms, peak in flight %lld\n", N, direct, direct_peak);

    long long took = multi_post("/v1/chat/completions", N, q, 60000);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(q[i].cc, CURLE_OK, "request %d: %s", i, curl_easy_strerror(q[i].cc));
        cr_assert_eq(q[i].status, 200, "request %d: %ld %s", i, q[i].status, q[i].resp ? q[i].resp : "");
        json_t *j = json_loads(q[i].resp, 0, NULL);
        char want[80];
        snprintf(want, sizeof want, "mock reply: request number %d", i);
        const char *got = pd_str_at(j, "choices.0.message.content");
        cr_assert_str_eq(got ? got : "(none)", want, "request %d: %s", i, q[i].resp);
        json_decref(j);
        ok++;
    }
    long long peak = mock_stat("max_in_flight"), reqs = mock_stat("requests");
    printf("scale: %d/%d requests answered 200 in %lld ms on a 1000 ms upstream; upstream peak in flight %lld\n", ok, N,
           took, peak);
    fprintf(stderr,
            "scale: %d/%d requests answered 200 in %lld ms on a 1000 ms upstream; upstream peak in flight %lld\n", ok,
            N, took, peak);
    cr_assert_eq(reqs, N);
    cr_assert_geq(took, 1000, "faster than the upstream's latency?");
    /* a thread-per-request server with a few threads would need N / threads seconds */
#if defined(__SANITIZE_ADDRESS__)
    const long long bound = 30000; /* AddressSanitizer slows everything down */
#else
    const long long bound = 20000;
#endif
    cr_assert_lt(took, bound, "2,000 requests on a 1 s upstream took %lld ms", took);
    cr_assert_geq(peak, 100, "only %lld upstream requests were ever in flight at once", peak);
    mreq_free(q, N);

    /* every one of them was recorded */
    pd_resp r = expect(200, "GET", "/executions?status=completed&records=1", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), N, "%s", r.body);
    pd_resp_free(&r);
}

/* ================================================================ shutdown */

typedef struct bg_req {
    pd_server *s;
    const char *method, *path, *body;
    pd_resp r;
    int rc;
    long long done_at;
} bg_req;

static void *bg_run(void *ud)
{
    bg_req *b = ud;
    b->rc = pd_req(b->s, b->method, b->path, b->s->admin_key, b->body, NULL, &b->r);
    b->done_at = now_ms();
    return NULL;
}

static void wait_mock_in_flight(long long want, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    while (mock_stat("in_flight") < want && now_ms() < deadline)
        usleep(10 * 1000);
    cr_assert_geq(mock_stat("in_flight"), want, "the requests never reached the upstream");
}

Test(shutdown, sigterm_lets_in_flight_requests_finish)
{
    start_mock(NULL);
    start_env_providers("x");
    char pid[64], sync_path[160], stream_path[160];
    create_msg_prompt(pid);
    snprintf(sync_path, sizeof sync_path, "/prompts/%s/execute", pid);
    snprintf(stream_path, sizeof stream_path, "/prompts/%s/execute/stream", pid);
    bg_req a = {
        &S,  "POST", sync_path, "{\"model\":\"openai/m\",\"variables\":{\"msg\":\"[mock:latency=2000] finish me\"}}",
        {0}, -1,     0};
    bg_req b = {&S,
                "POST",
                stream_path,
                "{\"model\":\"anthropic/c\",\"variables\":{\"msg\":\"[mock:latency=2000] stream me\"}}",
                {0},
                -1,
                0};
    long long t0 = now_ms();
    pthread_t ta, tb;
    cr_assert_eq(pthread_create(&ta, NULL, bg_run, &a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, bg_run, &b), 0);
    wait_mock_in_flight(2, 3000);
    long long since = now_ms() - t0;
    if (since < 300)
        usleep((useconds_t)(300 - since) * 1000);
    long long sig_at = now_ms();
    int code = pd_kill_wait(&S, SIGTERM, 15000);
    long long exited = now_ms();
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);

    cr_assert_eq(a.rc, 0, "the in-flight request lost its connection: %s", a.r.error);
    cr_assert_eq(a.r.status, 200, "%s", a.r.body);
    cr_assert_str_eq(pd_str_at(a.r.json, "data.attributes.content"), "mock reply: finish me", "%s", a.r.body);
    cr_assert_eq(b.rc, 0, "the in-flight stream lost its connection: %s", b.r.error);
    cr_assert_eq(b.r.status, 200, "%s", b.r.body);
    jstream js;
    jstream_read(&b.r, &js);
    cr_assert_str_eq(js.last_event, "done", "%s", b.r.body);
    cr_assert_str_eq(js.text, "mock reply: stream me", "%s", b.r.body);
    json_decref(js.last);
    cr_assert_eq(code, 0, "promptd exited with %d after SIGTERM", code);
    cr_assert_leq(a.done_at, exited + 50, "answered before the process exited");
    cr_assert_gt(exited - sig_at, 500, "exited before its in-flight requests were done (%lld ms)", exited - sig_at);
    pd_resp_free(&a.r);
    pd_resp_free(&b.r);

    /* both executions were recorded as completed */
    cr_assert_eq(pd_restart(&S, NULL, env_providers("x")), 0);
    char lpath[200];
    snprintf(lpath, sizeof lpath, "/prompts/%s/executions?status=completed", pid);
    pd_resp r = expect(200, "GET", lpath, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 2, "%s", r.body);
    pd_resp_free(&r);
}

Test(shutdown, requests_outliving_the_drain_get_503)
{
    start_mock(NULL);
    start_env_providers("x");
    char pid[64], path[160];
    create_msg_prompt(pid);
    snprintf(path, sizeof path, "/prompts/%s/execute", pid);
    char spath[160];
    snprintf(spath, sizeof spath, "/prompts/%s/execute/stream", pid);
    bg_req a = {&S,  "POST", path, "{\"model\":\"openai/m\",\"variables\":{\"msg\":\"[mock:latency=30000] too long\"}}",
                {0}, -1,     0};
    bg_req b = {&S,    "POST",
                spath, "{\"model\":\"anthropic/m\",\"variables\":{\"msg\":\"[mock:latency=30000] too long stream\"}}",
                {0},   -1,
                0};
    pthread_t ta, tb;
    cr_assert_eq(pthread_create(&ta, NULL, bg_run, &a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, bg_run, &b), 0);
    wait_mock_in_flight(2, 3000);
    long long sig_at = now_ms();
    int code = pd_kill_wait(&S, SIGTERM, 20000);
    long long exited = now_ms();
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_eq(a.rc, 0, "the suspended request was dropped without an answer: %s", a.r.error);
    assert_error(&a.r, 503, "service_unavailable");
    pd_resp_free(&a.r);
    cr_assert_eq(b.rc, 0, "the stream was dropped without an end: %s", b.r.error);
    /* the stream had sent nothing yet: its status line is the 503 */
    assert_error(&b.r, 503, "service_unavailable");
    pd_resp_free(&b.r);
    cr_assert_eq(code, 0, "exit code %d", code);
    cr_assert_lt(exited - sig_at, 14000, "the drain is bounded (took %lld ms)", exited - sig_at);
    printf("shutdown: drained with a 30 s upstream call in flight in %lld ms\n", exited - sig_at);

    /* the execution is failed, not left "processing" */
    cr_assert_eq(pd_restart(&S, NULL, env_providers("x")), 0);
    char lpath[200];
    snprintf(lpath, sizeof lpath, "/prompts/%s/executions", pid);
    pd_resp r = expect(200, "GET", lpath, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 2, "%s", r.body);
    for (int i = 0; i < 2; i++) {
        char sp[64], ep[64];
        snprintf(sp, sizeof sp, "data.%d.attributes.status", i);
        snprintf(ep, sizeof ep, "data.%d.attributes.error", i);
        cr_assert_str_eq(pd_str_at(r.json, sp), "failed", "%s", r.body);
        const char *err = pd_str_at(r.json, ep);
        cr_assert(err && *err, "%s", r.body);
    }
    pd_resp_free(&r);
}
