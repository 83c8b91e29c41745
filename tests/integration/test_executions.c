/*
 * test_executions.c — executing stored prompts and the executions API (spec
 * 000) over real HTTP: POST /prompts/:id/execute and /execute/stream on the
 * built-in echo model (and on the mock provider where the test needs a real
 * upstream), every field of the PromptExecution model, listing with paging,
 * status filter and sort, GET /executions across prompts, older versions,
 * parameter validation (422 naming the field), like/dislike/save/unsave with
 * the spec's messages, comments moving comments_count, another
 * organization's key seeing nothing (404 everywhere, nothing changes), and a
 * streaming client that leaves early while the execution still completes.
 *
 * Each test starts its own promptd (and mock, when it needs one).
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <math.h>
#include <signal.h>
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

static void teardown(void)
{
    pd_stop(&S);
    mock_proc_stop(&M);
}

TestSuite(executions, .fini = teardown, .timeout = 60);

#define NO_SUCH_ID "0190a0b0-1234-7abc-8def-0123456789ab"

/* ---------------------------------------------------------------- helpers */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* promptd on the echo model only. */
static void start_echo(void) { cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start"); }

/* mock + promptd with the mock as provider "openai" (model openai/<anything>). */
static void start_with_mock(void)
{
    cr_assert_eq(mock_proc_start(&M, NULL), 0, "mock did not start");
    char url[128];
    snprintf(url, sizeof url, "OPENAI_BASE_URL=%s/v1", M.base_url);
    const char *env[] = {url, "OPENAI_API_KEY=x", NULL};
    cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start");
}

static pd_resp call_k(const char *key, const char *method, const char *path, const char *body)
{
    pd_resp r;
    int rc = pd_req(&S, method, path, key, body, NULL, &r);
    cr_assert_eq(rc, 0, "%s %s: transfer failed: %s", method, path, r.error);
    return r;
}

static pd_resp expect_k(const char *key, long status, const char *method, const char *path, const char *body)
{
    pd_resp r = call_k(key, method, path, body);
    cr_assert_eq(r.status, status, "%s %s: want %ld, got %ld: %s", method, path, status, r.status, r.body);
    return r;
}

static pd_resp expect(long status, const char *method, const char *path, const char *body)
{
    return expect_k(S.admin_key, status, method, path, body);
}

static void expect_free(long status, const char *method, const char *path, const char *body)
{
    pd_resp r = expect(status, method, path, body);
    pd_resp_free(&r);
}

static int is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

static void assert_recent_rfc3339(const char *s)
{
    cr_assert_not_null(s);
    cr_assert_eq(strlen(s), 20, "not RFC 3339 UTC seconds: %s", s);
    struct tm tm = {0};
    char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cr_assert(end && *end == '\0', "not RFC 3339: %s", s);
    time_t t = timegm(&tm), now = time(NULL);
    cr_assert(t > now - 60 && t < now + 60, "%s is not now", s);
}

/* Jarvis error: status, code, optional pointer, detail mentioning `mention`. */
static void assert_error(const pd_resp *r, long status, const char *code, const char *pointer, const char *mention)
{
    char want[8];
    snprintf(want, sizeof want, "%ld", status);
    cr_assert_eq(r->status, status, "want %ld, got %ld: %s", status, r->status, r->body);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.status") ? pd_str_at(r->json, "errors.0.status") : "(none)", want,
                     "%s", r->body);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.code") ? pd_str_at(r->json, "errors.0.code") : "(none)", code, "%s",
                     r->body);
    cr_assert_not_null(pd_str_at(r->json, "errors.0.title"), "%s", r->body);
    const char *detail = pd_str_at(r->json, "errors.0.detail");
    cr_assert_not_null(detail, "%s", r->body);
    if (pointer) {
        const char *p = pd_str_at(r->json, "errors.0.source.pointer");
        cr_assert_str_eq(p ? p : "(none)", pointer, "%s", r->body);
    }
    if (mention)
        cr_assert(strstr(detail, mention), "detail '%s' does not mention '%s'", detail, mention);
}

/* The spec's 404 for an execution. */
static void assert_exec_404(const pd_resp *r)
{
    assert_error(r, 404, "not_found", NULL, NULL);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.title"), "Execution Not Found", "%s", r->body);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.detail"), "The requested execution could not be found.", "%s",
                     r->body);
}

static void create_prompt(const char *name, const char *content, char *id)
{
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, name, content, id, 64), 201, "create prompt %s", name);
}

/* POST /prompts/:id/execute with body; must answer 200; returns the response. */
static pd_resp execute_ok(const char *prompt_id, const char *body)
{
    char path[128];
    snprintf(path, sizeof path, "/prompts/%s/execute", prompt_id);
    return expect(200, "POST", path, body);
}

/* Execute and copy the execution id into exec_id (64 bytes). */
static void execute_id(const char *prompt_id, const char *body, char *exec_id)
{
    pd_resp r = execute_ok(prompt_id, body);
    const char *id = pd_str_at(r.json, "data.attributes.metadata.prompt_execution_id");
    cr_assert(is_uuid(id), "%s", r.body);
    snprintf(exec_id, 64, "%s", id);
    pd_resp_free(&r);
}

/* GET /prompts/:pid/executions/:eid -> data (new reference). */
static json_t *get_exec(const char *prompt_id, const char *exec_id)
{
    char path[200];
    snprintf(path, sizeof path, "/prompts/%s/executions/%s", prompt_id, exec_id);
    pd_resp r = expect(200, "GET", path, NULL);
    json_t *d = json_incref(pd_json_at(r.json, "data"));
    cr_assert_not_null(d, "%s", r.body);
    pd_resp_free(&r);
    return d;
}

static long long exec_count(const char *prompt_id, const char *exec_id, const char *field)
{
    json_t *d = get_exec(prompt_id, exec_id);
    char path[64];
    snprintf(path, sizeof path, "attributes.%s", field);
    long long v = pd_int_at(d, path, -1);
    json_decref(d);
    return v;
}

/* Poll the execution until its status is `want` (or timeout_ms passes); returns data (new ref). */
static json_t *wait_exec_status(const char *prompt_id, const char *exec_id, const char *want, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        json_t *d = get_exec(prompt_id, exec_id);
        const char *st = pd_str_at(d, "attributes.status");
        if ((st && strcmp(st, want) == 0) || now_ms() > deadline)
            return d;
        json_decref(d);
        usleep(100 * 1000);
    }
}

/* The echo model's documented token estimate: ceil(bytes / 4), at least 1. */
static long long est_tokens(size_t bytes)
{
    long long t = (long long)(bytes / 4 + (bytes % 4 != 0));
    return t < 1 ? 1 : t;
}

/* ---- SSE ---- */

typedef struct sse_ev {
    char event[32]; /* "" for the default event */
    char *data;
} sse_ev;

typedef struct sse_list {
    sse_ev ev[512];
    size_t n;
} sse_list;

/* Split a text/event-stream body into events (comments and empty blocks skipped). */
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
                size_t vl = llen - (size_t)(v - line);
                snprintf(ev.event, sizeof ev.event, "%.*s", (int)vl, v);
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

/* ---------------------------------------------------------------- execute (sync) */

Test(executions, execute_echo_returns_chat_response)
{
    start_echo();
    char pid[64];
    create_prompt("Email", "Write a {{tone}} email about {{topic}}.", pid);
    pd_resp r = execute_ok(pid, "{\"variables\":{\"tone\":\"formal\",\"topic\":\"Q4 results\"}}");
    const char *rendered = "Write a formal email about Q4 results.";
    json_t *d = pd_json_at(r.json, "data");
    cr_assert_str_eq(pd_str_at(d, "type"), "chat_response", "%s", r.body);
    cr_assert_str_eq(pd_str_at(d, "attributes.content"), rendered, "%s", r.body);
    const char *eid = pd_str_at(d, "attributes.metadata.prompt_execution_id");
    cr_assert(is_uuid(eid), "%s", r.body);
    cr_assert_str_eq(pd_str_at(d, "id"), eid, "%s", r.body);
    long long pt = pd_int_at(d, "attributes.metadata.usage.prompt_tokens", -1);
    long long ct = pd_int_at(d, "attributes.metadata.usage.completion_tokens", -1);
    long long tt = pd_int_at(d, "attributes.metadata.usage.total_tokens", -1);
    cr_assert_eq(pt, est_tokens(strlen(rendered)), "%s", r.body);
    cr_assert_eq(ct, est_tokens(strlen(rendered)), "%s", r.body);
    cr_assert_eq(tt, pt + ct, "%s", r.body);
    cr_assert_str_eq(pd_str_at(d, "attributes.metadata.model"), "echo", "%s", r.body);
    /* the model's share and the whole, in milliseconds */
    const char *timing = pd_header(&r, "Server-Timing");
    double up = -1, total = -1;
    cr_assert(timing && sscanf(timing, "upstream;dur=%lf, total;dur=%lf", &up, &total) == 2 && up >= 0 && total >= up,
              "Server-Timing: %s", timing ? timing : "(none)");
    pd_resp_free(&r);
}

Test(executions, execution_record_has_every_spec_field)
{
    start_echo();
    char pid[64], eid[64];
    create_prompt("Email", "Write a {{tone}} email about {{topic}}.", pid);
    const char *body = "{\"variables\":{\"tone\":\"formal\",\"topic\":\"Q4 results\"},\"temperature\":0.5,"
                       "\"max_tokens\":100}";
    execute_id(pid, body, eid);
    const char *rendered = "Write a formal email about Q4 results.";

    char path[200];
    snprintf(path, sizeof path, "/prompts/%s", pid);
    pd_resp pr = expect(200, "GET", path, NULL);
    char version_id[64];
    snprintf(version_id, sizeof version_id, "%s", pd_str_at(pr.json, "data.attributes.current_version_id"));
    pd_resp_free(&pr);

    json_t *d = get_exec(pid, eid);
    char *dump = json_dumps(d, JSON_COMPACT);
    cr_assert_str_eq(pd_str_at(d, "id"), eid, "%s", dump);
    cr_assert_str_eq(pd_str_at(d, "type"), "prompt_execution", "%s", dump);
    json_t *a = pd_json_at(d, "attributes");
    cr_assert_not_null(a);
    /* every field of the spec's PromptExecution model */
    static const char *const fields[] = {"unique_id",      "version_id",  "version_number", "rendered_prompt",
                                         "output",         "variables",   "model",          "temperature",
                                         "tokens_used",    "duration_ms", "likes_count",    "saves_count",
                                         "comments_count", "created_at",  "status",         "error"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        cr_assert_not_null(json_object_get(a, fields[i]), "field %s missing: %s", fields[i], dump);
    cr_assert_str_eq(pd_str_at(a, "unique_id"), eid, "%s", dump);
    cr_assert_str_eq(pd_str_at(a, "version_id"), version_id, "%s", dump);
    cr_assert_eq(pd_int_at(a, "version_number", -1), 1, "%s", dump);
    cr_assert_str_eq(pd_str_at(a, "rendered_prompt"), rendered, "%s", dump);
    cr_assert_str_eq(pd_str_at(a, "output"), rendered, "%s", dump);
    json_t *want_vars = json_pack("{s:s, s:s}", "tone", "formal", "topic", "Q4 results");
    cr_assert(json_equal(json_object_get(a, "variables"), want_vars), "variables: %s", dump);
    json_decref(want_vars);
    cr_assert_str_eq(pd_str_at(a, "model"), "echo", "%s", dump);
    json_t *temp = json_object_get(a, "temperature");
    cr_assert(json_is_number(temp) && fabs(json_number_value(temp) - 0.5) < 1e-9, "temperature: %s", dump);
    long long tokens = est_tokens(strlen(rendered)) * 2;
    cr_assert_eq(pd_int_at(a, "tokens_used", -1), tokens, "%s", dump);
    cr_assert(json_is_integer(json_object_get(a, "duration_ms")) && pd_int_at(a, "duration_ms", -1) >= 0, "%s", dump);
    cr_assert_eq(pd_int_at(a, "likes_count", -1), 0, "%s", dump);
    cr_assert_eq(pd_int_at(a, "saves_count", -1), 0, "%s", dump);
    cr_assert_eq(pd_int_at(a, "comments_count", -1), 0, "%s", dump);
    assert_recent_rfc3339(pd_str_at(a, "created_at"));
    cr_assert_str_eq(pd_str_at(a, "status"), "completed", "%s", dump);
    cr_assert(json_is_null(json_object_get(a, "error")), "error: %s", dump);
    free(dump);
    json_decref(d);

    /* the same record through /executions/:id */
    snprintf(path, sizeof path, "/executions/%s", eid);
    pd_resp r = expect(200, "GET", path, NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.unique_id"), eid, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.output"), rendered, "%s", r.body);
    pd_resp_free(&r);
}

Test(executions, temperature_is_null_when_not_sent_and_variables_empty_object)
{
    start_echo();
    char pid[64], eid[64];
    create_prompt("Plain", "no variables here", pid);
    execute_id(pid, "{}", eid);
    json_t *d = get_exec(pid, eid);
    char *dump = json_dumps(d, JSON_COMPACT);
    cr_assert(json_is_null(pd_json_at(d, "attributes.temperature")), "%s", dump);
    json_t *vars = pd_json_at(d, "attributes.variables");
    cr_assert(json_is_object(vars) && json_object_size(vars) == 0, "%s", dump);
    cr_assert_str_eq(pd_str_at(d, "attributes.output"), "no variables here", "%s", dump);
    free(dump);
    json_decref(d);
}

Test(executions, older_version_executes_its_own_text)
{
    start_echo();
    char pid[64], path[200], v1[64], eid[64];
    create_prompt("Versioned", "first {{x}}", pid);
    snprintf(path, sizeof path, "/prompts/%s", pid);
    pd_resp r = expect(200, "GET", path, NULL);
    snprintf(v1, sizeof v1, "%s", pd_str_at(r.json, "data.attributes.current_version_id"));
    pd_resp_free(&r);
    expect_free(200, "PUT", path, "{\"prompt\":{\"content\":\"second {{x}}\"}}");

    /* the current version by default */
    r = execute_ok(pid, "{\"variables\":{\"x\":\"run\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "second run", "%s", r.body);
    snprintf(eid, sizeof eid, "%s", pd_str_at(r.json, "data.attributes.metadata.prompt_execution_id"));
    pd_resp_free(&r);
    json_t *d = get_exec(pid, eid);
    cr_assert_eq(pd_int_at(d, "attributes.version_number", -1), 2);
    cr_assert_str_neq(pd_str_at(d, "attributes.version_id"), v1);
    json_decref(d);

    /* the older version on request */
    char *body = pd_pack("{s:{s:s}, s:s}", "variables", "x", "run", "version_id", v1);
    r = execute_ok(pid, body);
    free(body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "first run", "%s", r.body);
    snprintf(eid, sizeof eid, "%s", pd_str_at(r.json, "data.attributes.metadata.prompt_execution_id"));
    pd_resp_free(&r);
    d = get_exec(pid, eid);
    cr_assert_str_eq(pd_str_at(d, "attributes.version_id"), v1);
    cr_assert_eq(pd_int_at(d, "attributes.version_number", -1), 1);
    cr_assert_str_eq(pd_str_at(d, "attributes.rendered_prompt"), "first run");
    json_decref(d);

    /* a version id that is not this prompt's */
    body = pd_pack("{s:{s:s}, s:s}", "variables", "x", "run", "version_id", NO_SUCH_ID);
    snprintf(path, sizeof path, "/prompts/%s/execute", pid);
    r = call_k(S.admin_key, "POST", path, body);
    free(body);
    assert_error(&r, 404, "not_found", NULL, NULL);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- validation */

static void assert_execute_422(const char *pid, const char *body, const char *pointer)
{
    char path[128];
    snprintf(path, sizeof path, "/prompts/%s/execute", pid);
    pd_resp r = call_k(S.admin_key, "POST", path, body);
    assert_error(&r, 422, "unprocessable_entity", pointer, NULL);
    pd_resp_free(&r);
}

Test(executions, bad_parameters_are_422_naming_the_field)
{
    start_echo();
    char pid[64], path[200];
    create_prompt("V", "Hello {{name}}", pid);
    assert_execute_422(pid, "{}", "/variables");
    assert_execute_422(pid, "{\"variables\":{\"other\":\"x\"}}", "/variables");
    assert_execute_422(pid, "{\"variables\":\"name\"}", "/variables");
    assert_execute_422(pid, "{\"variables\":{\"name\":\"a\"},\"model\":\"no-such-model\"}", "/model");
    assert_execute_422(pid, "{\"variables\":{\"name\":\"a\"},\"model\":\"openai/gpt-4o\"}", "/model");
    assert_execute_422(pid, "{\"variables\":{\"name\":\"a\"},\"model\":\"ghost/x\"}", "/model");
    assert_execute_422(pid, "{\"variables\":{\"name\":\"a\"},\"model\":42}", "/model");
    assert_execute_422(pid, "{\"variables\":{\"name\":\"a\"},\"temperature\":2.5}", "/temperature");
    assert_execute_422(pid, "{\"variables\":{\"name\":\"a\"},\"temperature\":-0.1}", "/temperature");
    assert_execute_422(pid, "{\"variables\":{\"name\":\"a\"},\"temperature\":\"hot\"}", "/temperature");
    assert_execute_422(pid, "{\"variables\":{\"name\":\"a\"},\"max_tokens\":0}", "/max_tokens");
    assert_execute_422(pid, "{\"variables\":{\"name\":\"a\"},\"max_tokens\":1.5}", "/max_tokens");
    assert_execute_422(pid, "{\"variables\":{\"name\":\"a\"},\"max_tokens\":\"ten\"}", "/max_tokens");
    assert_execute_422(pid, "{\"variables\":{\"name\":\"a\"},\"version_id\":\"v1\"}", "/version_id");

    /* the missing variable is named */
    snprintf(path, sizeof path, "/prompts/%s/execute", pid);
    pd_resp r = call_k(S.admin_key, "POST", path, "{\"variables\":{}}");
    assert_error(&r, 422, "unprocessable_entity", "/variables", "name");
    pd_resp_free(&r);

    /* the stream endpoint validates the same way, before any stream starts */
    snprintf(path, sizeof path, "/prompts/%s/execute/stream", pid);
    r = call_k(S.admin_key, "POST", path, "{\"variables\":{\"name\":\"a\"},\"model\":\"no-such-model\"}");
    assert_error(&r, 422, "unprocessable_entity", "/model", NULL);
    pd_resp_free(&r);
    r = call_k(S.admin_key, "POST", path, "{}");
    assert_error(&r, 422, "unprocessable_entity", "/variables", NULL);
    pd_resp_free(&r);

    /* not JSON */
    snprintf(path, sizeof path, "/prompts/%s/execute", pid);
    r = call_k(S.admin_key, "POST", path, "{not json");
    assert_error(&r, 400, "bad_request", NULL, NULL);
    pd_resp_free(&r);

    /* unknown prompt */
    r = call_k(S.admin_key, "POST", "/prompts/" NO_SUCH_ID "/execute", "{}");
    assert_error(&r, 404, "not_found", NULL, NULL);
    pd_resp_free(&r);
    r = call_k(S.admin_key, "POST", "/prompts/not-a-uuid/execute", "{}");
    assert_error(&r, 404, "not_found", NULL, NULL);
    pd_resp_free(&r);

    /* no key */
    pd_resp nk;
    cr_assert_eq(pd_req(&S, "POST", path, NULL, "{\"variables\":{\"name\":\"a\"}}", NULL, &nk), 0);
    assert_error(&nk, 401, "unauthorized", NULL, NULL);
    pd_resp_free(&nk);

    /* nothing was recorded by any of the rejected calls */
    snprintf(path, sizeof path, "/prompts/%s/executions", pid);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 0, "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- listing */

/* ids of a list answer joined with ',' */
static void ids_of(const json_t *root, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t i;
    json_t *item;
    json_array_foreach(pd_json_at(root, "data"), i, item)
    {
        if (i)
            strncat(out, ",", outlen - strlen(out) - 1);
        const char *id = pd_str_at(item, "id");
        strncat(out, id ? id : "?", outlen - strlen(out) - 1);
    }
}

Test(executions, list_paging_status_filter_and_sort)
{
    start_with_mock();
    char pid[64], other[64], e_short[64], e_mid[64], e_long[64], e_fail[64], path[256], got[1024], want[1024];
    create_prompt("Lister", "{{text}}", pid);
    create_prompt("Other", "other prompt", other);
    /* a few ms apart, so created_at orders them */
    execute_id(pid, "{\"variables\":{\"text\":\"mid sized text here\"}}", e_mid);
    usleep(5000);
    execute_id(pid, "{\"variables\":{\"text\":\"short\"}}", e_short);
    usleep(5000);
    execute_id(pid, "{\"variables\":{\"text\":\"a much longer text that uses many more tokens than the others do\"}}",
               e_long);
    usleep(5000);
    char oe[64];
    execute_id(other, "{}", oe);
    usleep(5000);

    /* one failed execution, through the mock (400 is never retried, and is passed on as the provider's 400) */
    snprintf(path, sizeof path, "/prompts/%s/execute", pid);
    pd_resp r = call_k(S.admin_key, "POST", path,
                       "{\"variables\":{\"text\":\"[mock:status=400] fail please\"},\"model\":\"openai/m\"}");
    assert_error(&r, 400, "bad_request", NULL, NULL);
    pd_resp_free(&r);

    /* all four, newest first by default */
    snprintf(path, sizeof path, "/prompts/%s/executions", pid);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 4, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 1, "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 4, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.3.id"), e_mid, "oldest last: %s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.type"), "prompt_execution", "%s", r.body);
    pd_resp_free(&r);

    /* status filter */
    snprintf(path, sizeof path, "/prompts/%s/executions?status=failed", pid);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 1, "%s", r.body);
    snprintf(e_fail, sizeof e_fail, "%s", pd_str_at(r.json, "data.0.id"));
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.status"), "failed", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.model"), "openai/m", "%s", r.body);
    const char *err = pd_str_at(r.json, "data.0.attributes.error");
    cr_assert(err && *err, "a failed execution records its error: %s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/executions?status=completed", pid);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 3, "%s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/executions?status=processing", pid);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 0, "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 0, "%s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/executions?status=bogus", pid);
    r = call_k(S.admin_key, "GET", path, NULL);
    assert_error(&r, 400, "bad_request", "/status", NULL);
    pd_resp_free(&r);

    /* sort by tokens (the failed one used none) */
    snprintf(path, sizeof path, "/prompts/%s/executions?status=completed&sort=tokens_used", pid);
    r = expect(200, "GET", path, NULL);
    ids_of(r.json, got, sizeof got);
    snprintf(want, sizeof want, "%s,%s,%s", e_short, e_mid, e_long);
    cr_assert_str_eq(got, want, "%s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/executions?status=completed&sort=-tokens_used", pid);
    r = expect(200, "GET", path, NULL);
    ids_of(r.json, got, sizeof got);
    snprintf(want, sizeof want, "%s,%s,%s", e_long, e_mid, e_short);
    cr_assert_str_eq(got, want, "%s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/executions?sort=created_at", pid);
    r = expect(200, "GET", path, NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.id"), e_mid, "oldest first: %s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/executions?sort=nonsense", pid);
    r = call_k(S.admin_key, "GET", path, NULL);
    assert_error(&r, 400, "bad_request", "/sort", NULL);
    pd_resp_free(&r);

    /* paging: records=3 -> 2 pages */
    snprintf(path, sizeof path, "/prompts/%s/executions?page=1&records=3", pid);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 3, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 2, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 4, "%s", r.body);
    char page1[1024];
    ids_of(r.json, page1, sizeof page1);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/executions?page=2&records=3", pid);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 1, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 2, "%s", r.body);
    cr_assert(!strstr(page1, pd_str_at(r.json, "data.0.id")), "page 2 repeats page 1: %s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/executions?page=3&records=3", pid);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 0, "%s", r.body);
    pd_resp_free(&r);

    /* across prompts */
    r = expect(200, "GET", "/executions", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 5, "%s", r.body);
    ids_of(r.json, got, sizeof got);
    cr_assert(strstr(got, oe) && strstr(got, e_fail) && strstr(got, e_long), "%s", got);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/executions?prompt_id=%s", other);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 1, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.id"), oe, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.prompt_id"), other, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", "/executions?status=failed", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 1, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.id"), e_fail, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", "/executions?records=2&page=1", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 3, "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 2, "%s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/executions/%s", oe);
    r = expect(200, "GET", path, NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.output"), "other prompt", "%s", r.body);
    pd_resp_free(&r);
    r = call_k(S.admin_key, "GET", "/executions/" NO_SUCH_ID, NULL);
    assert_exec_404(&r);
    pd_resp_free(&r);

    /* an execution under the wrong prompt is not found */
    snprintf(path, sizeof path, "/prompts/%s/executions/%s", other, e_mid);
    r = call_k(S.admin_key, "GET", path, NULL);
    assert_exec_404(&r);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- social */

static void expect_message(const char *method, const char *path, const char *message)
{
    pd_resp r = expect(200, method, path, NULL);
    cr_assert_str_eq(pd_str_at(r.json, "message") ? pd_str_at(r.json, "message") : "(none)", message, "%s %s: %s",
                     method, path, r.body);
    pd_resp_free(&r);
}

Test(executions, like_dislike_save_unsave_messages_and_idempotent_counters)
{
    start_echo();
    char pid[64], eid[64], path[256];
    create_prompt("Social", "be social", pid);
    execute_id(pid, "{}", eid);

    snprintf(path, sizeof path, "/prompts/%s/executions/%s/like", pid, eid);
    expect_message("PUT", path, "Execution liked successfully");
    cr_assert_eq(exec_count(pid, eid, "likes_count"), 1);
    expect_message("PUT", path, "Execution liked successfully");
    cr_assert_eq(exec_count(pid, eid, "likes_count"), 1, "liking twice counts once");
    json_t *d = get_exec(pid, eid);
    cr_assert(json_is_true(pd_json_at(d, "attributes.liked")));
    json_decref(d);

    snprintf(path, sizeof path, "/prompts/%s/executions/%s/dislike", pid, eid);
    expect_message("DELETE", path, "Like removed successfully");
    cr_assert_eq(exec_count(pid, eid, "likes_count"), 0);
    expect_message("DELETE", path, "Like removed successfully");
    cr_assert_eq(exec_count(pid, eid, "likes_count"), 0, "never below zero");

    snprintf(path, sizeof path, "/prompts/%s/executions/%s/save", pid, eid);
    expect_message("PUT", path, "Execution saved successfully");
    expect_message("PUT", path, "Execution saved successfully");
    cr_assert_eq(exec_count(pid, eid, "saves_count"), 1);
    d = get_exec(pid, eid);
    cr_assert(json_is_true(pd_json_at(d, "attributes.saved")));
    json_decref(d);
    snprintf(path, sizeof path, "/prompts/%s/executions/%s/unsave", pid, eid);
    expect_message("DELETE", path, "Execution unsaved successfully");
    cr_assert_eq(exec_count(pid, eid, "saves_count"), 0);
    expect_message("DELETE", path, "Execution unsaved successfully");
    cr_assert_eq(exec_count(pid, eid, "saves_count"), 0);
    cr_assert_eq(exec_count(pid, eid, "likes_count"), 0);

    /* unknown execution */
    snprintf(path, sizeof path, "/prompts/%s/executions/%s/like", pid, NO_SUCH_ID);
    pd_resp r = call_k(S.admin_key, "PUT", path, NULL);
    assert_exec_404(&r);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/executions/%s/save", NO_SUCH_ID, eid);
    r = call_k(S.admin_key, "PUT", path, NULL);
    assert_exec_404(&r);
    pd_resp_free(&r);
}

Test(executions, comments_move_comments_count)
{
    start_echo();
    char pid[64], eid[64], path[256], cid[64], cid2[64];
    create_prompt("Commented", "say something", pid);
    execute_id(pid, "{}", eid);

    snprintf(path, sizeof path, "/prompts/%s/executions/%s/comments", pid, eid);
    pd_resp r = expect(200, "GET", path, NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 0, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 0, "%s", r.body);
    pd_resp_free(&r);

    r = expect(201, "POST", path, "{\"comment\":{\"body\":\"Great output\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.type"), "comment", "%s", r.body);
    snprintf(cid, sizeof cid, "%s", pd_str_at(r.json, "data.id"));
    cr_assert(is_uuid(cid), "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.unique_id"), cid, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.body"), "Great output", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.execution_id"), eid, "%s", r.body);
    assert_recent_rfc3339(pd_str_at(r.json, "data.attributes.created_at"));
    pd_resp_free(&r);
    cr_assert_eq(exec_count(pid, eid, "comments_count"), 1);

    r = expect(201, "POST", path, "{\"comment\":{\"body\":\"Second thought\"}}");
    snprintf(cid2, sizeof cid2, "%s", pd_str_at(r.json, "data.id"));
    pd_resp_free(&r);
    cr_assert_eq(exec_count(pid, eid, "comments_count"), 2);

    r = expect(200, "GET", path, NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 2, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 2, "%s", r.body);
    cr_assert(strstr(r.body, "Great output") && strstr(r.body, "Second thought"), "%s", r.body);
    pd_resp_free(&r);

    /* validation */
    r = call_k(S.admin_key, "POST", path, "{\"comment\":{}}");
    assert_error(&r, 422, "unprocessable_entity", "/comment/body", NULL);
    pd_resp_free(&r);
    r = call_k(S.admin_key, "POST", path, "{\"comment\":{\"body\":\"\"}}");
    cr_assert(r.status == 422 || r.status == 400, "empty body: %ld %s", r.status, r.body);
    pd_resp_free(&r);
    cr_assert_eq(exec_count(pid, eid, "comments_count"), 2);

    /* delete */
    char dpath[320];
    snprintf(dpath, sizeof dpath, "%s/%s", path, cid);
    r = expect(204, "DELETE", dpath, NULL);
    cr_assert_eq(r.len, 0, "204 has no body: %s", r.body);
    pd_resp_free(&r);
    cr_assert_eq(exec_count(pid, eid, "comments_count"), 1);
    r = call_k(S.admin_key, "DELETE", dpath, NULL);
    assert_error(&r, 404, "not_found", NULL, NULL);
    pd_resp_free(&r);
    cr_assert_eq(exec_count(pid, eid, "comments_count"), 1);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 1, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.id"), cid2, "%s", r.body);
    pd_resp_free(&r);

    /* comments of an unknown execution */
    snprintf(path, sizeof path, "/prompts/%s/executions/%s/comments", pid, NO_SUCH_ID);
    r = call_k(S.admin_key, "POST", path, "{\"comment\":{\"body\":\"x\"}}");
    assert_error(&r, 404, "not_found", NULL, NULL);
    pd_resp_free(&r);
    r = call_k(S.admin_key, "GET", path, NULL);
    assert_error(&r, 404, "not_found", NULL, NULL);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- tenancy */

Test(executions, another_organization_sees_nothing_and_changes_nothing)
{
    start_echo();
    char pid[64], eid[64], cid[64], path[320], other[128];
    create_prompt("Private", "secret {{x}}", pid);
    execute_id(pid, "{\"variables\":{\"x\":\"stuff\"}}", eid);
    snprintf(path, sizeof path, "/prompts/%s/executions/%s/like", pid, eid);
    expect_free(200, "PUT", path, NULL);
    snprintf(path, sizeof path, "/prompts/%s/executions/%s/comments", pid, eid);
    pd_resp r = expect(201, "POST", path, "{\"comment\":{\"body\":\"mine\"}}");
    snprintf(cid, sizeof cid, "%s", pd_str_at(r.json, "data.id"));
    pd_resp_free(&r);
    cr_assert_eq(pd_new_org_key(&S, "intruders", other, sizeof other), 0);

    struct {
        const char *method, *fmt, *body;
    } routes[] = {
        {"POST", "/prompts/%1$s/execute", "{\"variables\":{\"x\":\"y\"}}"},
        {"POST", "/prompts/%1$s/execute/stream", "{\"variables\":{\"x\":\"y\"}}"},
        {"GET", "/prompts/%1$s/executions", NULL},
        {"GET", "/prompts/%1$s/executions/%2$s", NULL},
        {"PUT", "/prompts/%1$s/executions/%2$s/like", NULL},
        {"DELETE", "/prompts/%1$s/executions/%2$s/dislike", NULL},
        {"PUT", "/prompts/%1$s/executions/%2$s/save", NULL},
        {"DELETE", "/prompts/%1$s/executions/%2$s/unsave", NULL},
        {"GET", "/prompts/%1$s/executions/%2$s/comments", NULL},
        {"POST", "/prompts/%1$s/executions/%2$s/comments", "{\"comment\":{\"body\":\"theirs\"}}"},
        {"DELETE", "/prompts/%1$s/executions/%2$s/comments/%3$s", NULL},
        {"GET", "/executions/%2$s", NULL},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        snprintf(path, sizeof path, routes[i].fmt, pid, eid, cid);
#pragma GCC diagnostic pop
        r = call_k(other, routes[i].method, path, routes[i].body);
        cr_assert_eq(r.status, 404, "%s %s by another organization: want 404, got %ld: %s", routes[i].method, path,
                     r.status, r.body);
        cr_assert_str_eq(pd_str_at(r.json, "errors.0.status") ? pd_str_at(r.json, "errors.0.status") : "(none)", "404",
                         "%s %s: %s", routes[i].method, path, r.body);
        pd_resp_free(&r);
    }
    /* the collection across prompts is simply empty for them */
    r = expect_k(other, 200, "GET", "/executions", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 0, "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 0, "%s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/executions?prompt_id=%s", pid);
    r = call_k(other, "GET", path, NULL);
    cr_assert(r.status == 200 || r.status == 404, "%s", r.body);
    if (r.status == 200)
        cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 0, "%s", r.body);
    pd_resp_free(&r);

    /* and nothing changed for the owner */
    json_t *d = get_exec(pid, eid);
    cr_assert_eq(pd_int_at(d, "attributes.likes_count", -1), 1);
    cr_assert_eq(pd_int_at(d, "attributes.saves_count", -1), 0);
    cr_assert_eq(pd_int_at(d, "attributes.comments_count", -1), 1);
    json_decref(d);
    snprintf(path, sizeof path, "/prompts/%s/executions", pid);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 1, "no execution was added: %s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/executions/%s/comments", pid, eid);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 1, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.body"), "mine", "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- streaming */

Test(executions, stream_echo_sends_pieces_and_done)
{
    start_echo();
    char pid[64], path[200];
    create_prompt("Streamer", "one two three {{x}} five six", pid);
    snprintf(path, sizeof path, "/prompts/%s/execute/stream", pid);
    pd_resp r = expect(200, "POST", path, "{\"variables\":{\"x\":\"four\"}}");
    const char *want = "one two three four five six";
    const char *ct = pd_header(&r, "Content-Type");
    cr_assert(ct && strncmp(ct, "text/event-stream", 17) == 0, "Content-Type: %s", ct ? ct : "(none)");
    const char *xh = pd_header(&r, "X-Execution-Id");
    cr_assert(is_uuid(xh), "X-Execution-Id: %s", xh ? xh : "(none)");
    char eid[64];
    snprintf(eid, sizeof eid, "%s", xh);

    sse_list ev;
    sse_parse(r.body, &ev);
    cr_assert_geq(ev.n, 3, "%s", r.body);
    char text[512] = "";
    size_t pieces = 0;
    for (size_t i = 0; i + 1 < ev.n; i++) {
        cr_assert_str_eq(ev.ev[i].event, "", "only data events before the end: %s", r.body);
        json_t *j = json_loads(ev.ev[i].data, 0, NULL);
        cr_assert(json_is_string(json_object_get(j, "content")), "%s", ev.ev[i].data);
        strncat(text, json_string_value(json_object_get(j, "content")), sizeof text - strlen(text) - 1);
        json_decref(j);
        pieces++;
    }
    cr_assert_gt(pieces, 1, "the text arrives in pieces: %s", r.body);
    cr_assert_str_eq(text, want, "%s", r.body);
    sse_ev *last = &ev.ev[ev.n - 1];
    cr_assert_str_eq(last->event, "done", "%s", r.body);
    json_t *done = json_loads(last->data, 0, NULL);
    cr_assert_not_null(done, "%s", last->data);
    cr_assert_str_eq(pd_str_at(done, "prompt_execution_id"), eid, "%s", last->data);
    cr_assert_str_eq(pd_str_at(done, "status"), "completed", "%s", last->data);
    long long n = est_tokens(strlen(want));
    cr_assert_eq(pd_int_at(done, "usage.prompt_tokens", -1), n, "%s", last->data);
    cr_assert_eq(pd_int_at(done, "usage.completion_tokens", -1), n, "%s", last->data);
    cr_assert_eq(pd_int_at(done, "usage.total_tokens", -1), 2 * n, "%s", last->data);
    json_decref(done);
    sse_free(&ev);
    pd_resp_free(&r);

    json_t *d = get_exec(pid, eid);
    cr_assert_str_eq(pd_str_at(d, "attributes.status"), "completed");
    cr_assert_str_eq(pd_str_at(d, "attributes.output"), want);
    cr_assert_str_eq(pd_str_at(d, "attributes.rendered_prompt"), want);
    cr_assert_eq(pd_int_at(d, "attributes.tokens_used", -1), 2 * n);
    json_decref(d);
}

/* A client that reads the headers and the first piece, then hangs up. */
typedef struct leaver {
    char exec_id[64];
    size_t got;
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
    leaver *l = ud;
    l->got += size * n;
    l->writes++;
    return 0; /* abort the transfer: the client goes away after the first piece */
}

Test(executions, stream_client_leaving_early_still_completes_the_execution)
{
    start_with_mock();
    char pid[64], path[256], url[400];
    const char *words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
                        "oscar papa quebec romeo sierra tango";
    char content[512];
    snprintf(content, sizeof content, "[mock:drip=100] %s", words);
    create_prompt("Dripping", content, pid);
    snprintf(path, sizeof path, "/prompts/%s/execute/stream", pid);
    snprintf(url, sizeof url, "%s%s", S.base_url, path);

    CURL *h = curl_easy_init();
    cr_assert_not_null(h);
    struct curl_slist *hl = NULL;
    char keyh[200];
    snprintf(keyh, sizeof keyh, "AppId: %s", S.admin_key);
    hl = curl_slist_append(hl, keyh);
    hl = curl_slist_append(hl, "Content-Type: application/json");
    leaver l = {{0}, 0, 0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{\"model\":\"openai/drip\"}");
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, leaver_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &l);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, leaver_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &l);
    long long t0 = now_ms();
    CURLcode cc = curl_easy_perform(h);
    long long left_after = now_ms() - t0;
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h); /* closes the connection */
    curl_slist_free_all(hl);
    cr_assert_eq(cc, CURLE_WRITE_ERROR, "the client aborted: %s", curl_easy_strerror(cc));
    cr_assert_eq(status, 200);
    cr_assert_eq(l.writes, 1);
    cr_assert_gt(l.got, 0);
    cr_assert(is_uuid(l.exec_id), "X-Execution-Id: %s", l.exec_id);
    cr_assert_lt(left_after, 1500, "the client left after the first piece (%lld ms)", left_after);

    /* the run goes on without the client */
    json_t *d = wait_exec_status(pid, l.exec_id, "completed", 10000);
    char *dump = json_dumps(d, JSON_COMPACT);
    cr_assert_str_eq(pd_str_at(d, "attributes.status"), "completed", "%s", dump);
    char want[512];
    snprintf(want, sizeof want, "mock reply: %s", words);
    cr_assert_str_eq(pd_str_at(d, "attributes.output"), want, "%s", dump);
    cr_assert_str_eq(pd_str_at(d, "attributes.model"), "openai/drip", "%s", dump);
    cr_assert_eq(pd_int_at(d, "attributes.tokens_used", -1), 21 + 22,
                 "mock usage (21 prompt words, 22 reply words): %s", dump);
    cr_assert(json_is_null(pd_json_at(d, "attributes.error")), "%s", dump);
    free(dump);
    json_decref(d);

    /* and the server keeps serving */
    char p2[64];
    create_prompt("After", "still here", p2);
    pd_resp r = execute_ok(p2, "{}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "still here");
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- clean exit */

/* Executions of every kind, then SIGTERM: promptd must exit 0. Under
 * `make SAN=1` this also proves those paths leak nothing (LeakSanitizer
 * turns a leak into a non-zero exit code). */
Test(executions, server_exits_cleanly_after_executions)
{
    start_echo();
    char pid[64], path[200];
    create_prompt("Plain", "no variables at all", pid);
    pd_resp r = execute_ok(pid, "{}");
    pd_resp_free(&r);
    r = execute_ok(pid, "{\"model\":\"echo\"}");
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/execute/stream", pid);
    r = expect(200, "POST", path, "{}");
    pd_resp_free(&r);
    create_prompt("Vars", "with {{v}}", pid);
    r = execute_ok(pid, "{\"variables\":{\"v\":\"variables\"}}");
    pd_resp_free(&r);
    int code = pd_kill_wait(&S, SIGTERM, 15000);
    cr_assert_eq(code, 0, "promptd exited with %d after SIGTERM (a sanitizer report in its log?)", code);
}
