/*
 * test_v1_prompt.c — the v1 Prompt Execution API (spec 003) over real HTTP:
 * sync and async single prompts, status, cancel, retry with earlier
 * attempts, validation (GET and POST) and the matching 400s, batches,
 * idempotency keys, sessions, /users/me, another organization's ids, and
 * the crash test: kill -9 in the middle of 1,000 queued jobs, restart, and
 * every job still ends exactly once.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support/harness.h"
#include "support/mock_proc.h"

static pd_server S;
static mock_proc M;
static char config_dir[256];   /* holds the mock provider's config */
static char config_path[300]; /* the mock provider's config, kept for restarts */

static void setup(void) { cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start"); }
static void teardown(void) { pd_stop(&S); }

/* promptd with the mock as provider "mock" (one attempt per call: no hidden retries) */
static void setup_mock(void)
{
    cr_assert_eq(mock_proc_start(&M, NULL), 0, "mock did not start");
    char *cfg, *path = config_path;
    cr_assert_eq(pd_mkdtemp(config_dir, sizeof config_dir), 0);
    snprintf(path, sizeof config_path, "%s/promptd.json", config_dir);
    cfg = pd_pack("{s:[{s:s, s:s, s:s, s:i}], s:{s:i}}", "providers", "name", "mock", "type", "openai", "base_url",
                  "", "timeout_ms", 20000, "retry", "max_attempts", 1);
    json_t *j = json_loads(cfg, 0, NULL);
    char url[128];
    snprintf(url, sizeof url, "%s/v1", M.base_url);
    json_object_set_new(json_array_get(json_object_get(j, "providers"), 0), "base_url", json_string(url));
    cr_assert_eq(json_dump_file(j, path, 0), 0);
    json_decref(j);
    free(cfg);
    const char *args[] = {"--config", path, NULL};
    const char *env[] = {"PROMPTD_LEASE_MS=1500", NULL};
    cr_assert_eq(pd_start(&S, args, env), 0, "promptd did not start");
}
static void teardown_mock(void)
{
    pd_stop(&S);
    mock_proc_stop(&M);
    if (config_dir[0])
        pd_rmrf(config_dir);
}

TestSuite(v1, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(v1_mock, .init = setup_mock, .fini = teardown_mock, .timeout = 120);

static pd_resp call_key(const char *key, const char *method, const char *path, const char *body,
                        const char *const *headers)
{
    pd_resp r;
    const char *auth[4] = {NULL};
    char bearer[128];
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", key);
    auth[0] = "AppId:";
    auth[1] = bearer;
    if (headers && headers[0])
        auth[2] = headers[0];
    int rc = pd_req(&S, method, path, NULL, body, auth, &r);
    cr_assert_eq(rc, 0, "%s %s: transfer failed: %s", method, path, r.error);
    return r;
}

static pd_resp expect(long status, const char *method, const char *path, const char *body)
{
    pd_resp r = call_key(S.admin_key, method, path, body, NULL);
    cr_assert_eq(r.status, status, "%s %s: want %ld, got %ld: %s", method, path, status, r.status, r.body);
    return r;
}

/* Poll GET /api/v1/prompt/{id} until status is terminal; returns the last response. */
static pd_resp wait_terminal(const char *id, int timeout_ms)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/prompt/%s", id);
    for (int waited = 0;; waited += 50) {
        pd_resp r = expect(200, "GET", path, NULL);
        const char *st = pd_str_at(r.json, "data.status");
        if (st && (!strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "cancelled")))
            return r;
        cr_assert_lt(waited, timeout_ms, "request %s still %s", id, st ? st : "?");
        pd_resp_free(&r);
        usleep(50 * 1000);
    }
}

static void expect_v1_error(pd_resp *r, long status, const char *code, const char *field)
{
    cr_assert_eq(r->status, status, "want %ld, got %ld: %s", status, r->status, r->body);
    cr_assert(json_is_false(pd_json_at(r->json, "success")), "%s", r->body);
    cr_assert_str_eq(pd_str_at(r->json, "error.code"), code, "%s", r->body);
    cr_assert_not_null(pd_str_at(r->json, "message"));
    if (field)
        cr_assert_not_null(strstr(r->body, field), "error should name %s: %s", field, r->body);
}

/* ---------------------------------------------------------------- single prompts */

Test(v1, sync_prompt_answers_with_output_tokens_and_timings)
{
    pd_resp r = expect(200, "POST", "/api/v1/prompt", "{\"prompt\": \"Summarise the week\", \"metadata\": {\"user\": 5}}");
    cr_assert(json_is_true(pd_json_at(r.json, "success")));
    cr_assert_str_eq(pd_str_at(r.json, "status"), "completed");
    const char *id = pd_str_at(r.json, "request_id");
    cr_assert_not_null(id);
    cr_assert_str_eq(pd_str_at(r.json, "data.request_id"), id);
    cr_assert_str_eq(pd_str_at(r.json, "data.output"), "Summarise the week");
    cr_assert_gt(pd_int_at(r.json, "data.tokens.total", 0), 0);
    cr_assert_not_null(pd_json_at(r.json, "data.timings.duration_ms"));
    cr_assert_not_null(pd_str_at(r.json, "data.prompt_id"));
    char path[128];
    snprintf(path, sizeof path, "/api/v1/prompt/%s", id);
    pd_resp g = expect(200, "GET", path, NULL);
    cr_assert_str_eq(pd_str_at(g.json, "data.status"), "completed");
    cr_assert_str_eq(pd_str_at(g.json, "status"), "completed");
    cr_assert_str_eq(pd_str_at(g.json, "data.output"), "Summarise the week");
    cr_assert_eq(pd_int_at(g.json, "data.metadata.user", 0), 5);
    cr_assert_not_null(pd_str_at(g.json, "data.timings.completed_at"));
    pd_resp_free(&g);
    pd_resp_free(&r);
}

Test(v1, async_prompt_is_submitted_then_completes)
{
    pd_resp r = expect(202, "POST", "/api/v1/prompt", "{\"prompt\": \"Hello {{who}}\", \"variables\": {\"who\": \"team\"}, \"async\": true}");
    cr_assert_str_eq(pd_str_at(r.json, "status"), "submitted");
    const char *id = pd_str_at(r.json, "request_id");
    cr_assert_not_null(id);
    pd_resp g = wait_terminal(id, 10000);
    cr_assert_str_eq(pd_str_at(g.json, "data.status"), "completed");
    cr_assert_str_eq(pd_str_at(g.json, "data.output"), "Hello team");
    cr_assert_eq(json_is_true(pd_json_at(g.json, "data.async")), 1);
    pd_resp_free(&g);
    pd_resp_free(&r);
}

Test(v1, raw_prompt_text_is_recorded_once_as_a_prompt)
{
    pd_resp a = expect(200, "POST", "/api/v1/prompt", "{\"prompt\": \"Same text each time\"}");
    pd_resp b = expect(200, "POST", "/api/v1/prompt", "{\"prompt\": \"Same text each time\"}");
    cr_assert_str_eq(pd_str_at(a.json, "data.prompt_id"), pd_str_at(b.json, "data.prompt_id"));
    char path[128];
    snprintf(path, sizeof path, "/prompts/%s", pd_str_at(a.json, "data.prompt_id"));
    pd_resp p = expect(200, "GET", path, NULL);
    cr_assert_str_eq(pd_str_at(p.json, "data.attributes.name"), "Same text each time");
    snprintf(path, sizeof path, "/prompts/%s/executions", pd_str_at(a.json, "data.prompt_id"));
    pd_resp l = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(l.json, "meta.totalRecords", -1), 2);
    pd_resp_free(&l);
    pd_resp_free(&p);
    pd_resp_free(&a);
    pd_resp_free(&b);
}

Test(v1, stored_prompt_runs_by_prompt_id)
{
    char id[64], body[256];
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "greet", "Hi {{name}}!", id, sizeof id), 201);
    snprintf(body, sizeof body, "{\"prompt_id\": \"%s\", \"variables\": {\"name\": \"Ada\"}}", id);
    pd_resp r = expect(200, "POST", "/api/v1/prompt", body);
    cr_assert_str_eq(pd_str_at(r.json, "data.output"), "Hi Ada!");
    cr_assert_str_eq(pd_str_at(r.json, "data.prompt_id"), id);
    pd_resp_free(&r);
}

Test(v1, bad_requests_answer_400_naming_the_field_and_store_nothing)
{
    static const struct {
        const char *body, *field;
    } cases[] = {
        {"{}", "prompt"},
        {"{\"prompt\": \"\"}", "prompt"},
        {"{\"prompt\": \"   \"}", "prompt"},
        {"{\"prompt\": 42}", "prompt"},
        {"{\"prompt\": \"x\", \"async\": \"yes\"}", "async"},
        {"{\"prompt\": \"x\", \"metadata\": [1]}", "metadata"},
        {"{\"prompt\": \"Hello {{name\"}", "prompt"},
        {"{\"prompt\": \"Hello {{name}}\"}", "variables"},
        {"{\"prompt\": \"x\", \"model\": \"nowhere/none\"}", "model"},
        {"{\"prompt\": \"x\", \"temperature\": 3}", "temperature"},
        {"{\"prompt\": \"x\", \"temperature\": \"hot\"}", "temperature"},
        {"{\"prompt\": \"x\", \"max_tokens\": 0}", "max_tokens"},
        {"{\"prompt\": \"x\", \"variables\": [1]}", "variables"},
        {"{\"prompt_id\": \"not-a-uuid\"}", "prompt_id"},
        {"{\"prompt_id\": \"0190a0b0-1234-7abc-8def-0123456789ab\"}", "prompt_id"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pd_resp r = call_key(S.admin_key, "POST", "/api/v1/prompt", cases[i].body, NULL);
        expect_v1_error(&r, 400, "BAD_REQUEST", cases[i].field);
        cr_assert_not_null(pd_json_at(r.json, "error.details"), "%s", r.body);
        pd_resp_free(&r);
    }
    /* too long */
    size_t n = 100001;
    char *big = malloc(n + 32);
    strcpy(big, "{\"prompt\": \"");
    memset(big + 12, 'a', n);
    strcpy(big + 12 + n, "\"}");
    pd_resp r = call_key(S.admin_key, "POST", "/api/v1/prompt", big, NULL);
    expect_v1_error(&r, 400, "BAD_REQUEST", "prompt");
    cr_assert_not_null(strstr(r.body, "PROMPT_TOO_LONG"));
    pd_resp_free(&r);
    free(big);
    /* malformed JSON, non-JSON */
    r = call_key(S.admin_key, "POST", "/api/v1/prompt", "{\"prompt\": ", NULL);
    expect_v1_error(&r, 400, "BAD_REQUEST", NULL);
    pd_resp_free(&r);
    const char *text[] = {"Content-Type: text/plain", NULL};
    r = call_key(S.admin_key, "POST", "/api/v1/prompt", "hello", text);
    expect_v1_error(&r, 415, "UNSUPPORTED_MEDIA_TYPE", NULL);
    pd_resp_free(&r);
    /* nothing was stored */
    pd_resp l = expect(200, "GET", "/executions", NULL);
    cr_assert_eq(pd_int_at(l.json, "meta.totalRecords", -1), 0, "%s", l.body);
    pd_resp_free(&l);
}

Test(v1, unknown_ids_and_other_orgs_answer_404)
{
    pd_resp r = expect(200, "POST", "/api/v1/prompt", "{\"prompt\": \"mine\"}");
    char path[160], other[128];
    const char *id = pd_str_at(r.json, "request_id");
    cr_assert_eq(pd_new_org_key(&S, "other", other, sizeof other), 0);
    const char *routes[][2] = {{"GET", "/api/v1/prompt/%s"}, {"POST", "/api/v1/prompt/%s/cancel"},
                               {"POST", "/api/v1/prompt/%s/retry"}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, routes[i][1], id);
        pd_resp o = call_key(other, routes[i][0], path, NULL, NULL);
        expect_v1_error(&o, 404, "NOT_FOUND", NULL);
        pd_resp_free(&o);
        snprintf(path, sizeof path, routes[i][1], "nope");
        o = call_key(S.admin_key, routes[i][0], path, NULL, NULL);
        expect_v1_error(&o, 404, "NOT_FOUND", NULL);
        pd_resp_free(&o);
    }
    pd_resp me = call_key(S.admin_key, "GET", "/api/v1/users/me", NULL, NULL);
    snprintf(path, sizeof path, "/api/v1/sessions/%s", pd_str_at(me.json, "data.uuid"));
    pd_resp o = call_key(other, "GET", path, NULL, NULL);
    expect_v1_error(&o, 404, "NOT_FOUND", NULL);
    pd_resp_free(&o);
    o = call_key(S.admin_key, "GET", "/api/v1/sessions/999", NULL, NULL); /* a number no user has */
    expect_v1_error(&o, 404, "NOT_FOUND", NULL);
    pd_resp_free(&o);
    const char *bad[] = {"nope", "0", "-1", "1.5", "9007199254740992"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(path, sizeof path, "/api/v1/sessions/%s", bad[i]);
        o = call_key(S.admin_key, "GET", path, NULL, NULL);
        expect_v1_error(&o, 400, "BAD_REQUEST", "user_id");
        pd_resp_free(&o);
    }
    pd_resp_free(&me);
    pd_resp_free(&r);
}

Test(v1, unauthenticated_requests_get_the_v1_401)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, "POST", "/api/v1/prompt", NULL, "{\"prompt\": \"x\"}", NULL, &r), 0);
    expect_v1_error(&r, 401, "UNAUTHORIZED", NULL);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- validate */

Test(v1, validate_reports_variables_errors_and_tokens)
{
    pd_resp r = expect(200, "GET", "/api/v1/validate?prompt=Hello%20%7B%7Bname%7D%7D", NULL);
    cr_assert(json_is_true(pd_json_at(r.json, "success")));
    cr_assert(json_is_false(pd_json_at(r.json, "data.valid")), "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.variables.0"), "name");
    cr_assert_str_eq(pd_str_at(r.json, "data.missing_variables.0"), "name");
    cr_assert_gt(pd_int_at(r.json, "data.estimated_tokens", 0), 0);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/validate?prompt=Hello%20%7B%7Bname%7D%7D&variables=%7B%22name%22%3A%22x%22%7D", NULL);
    cr_assert(json_is_true(pd_json_at(r.json, "data.valid")), "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data.errors")), 0);
    pd_resp_free(&r);
    r = expect(200, "POST", "/api/v1/validate", "{\"prompt\": \"x {{\", \"temperature\": 9, \"model\": \"no/such\"}");
    cr_assert(json_is_false(pd_json_at(r.json, "data.valid")));
    cr_assert_geq(json_array_size(pd_json_at(r.json, "data.errors")), 3, "%s", r.body);
    cr_assert_not_null(strstr(r.body, "MALFORMED_TEMPLATE"));
    cr_assert_not_null(strstr(r.body, "UNKNOWN_MODEL"));
    cr_assert_not_null(strstr(r.body, "OUT_OF_RANGE"));
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/validate", NULL);
    cr_assert(json_is_false(pd_json_at(r.json, "data.valid")));
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/validate?prompt=ok&temperature=abc", NULL);
    cr_assert(json_is_false(pd_json_at(r.json, "data.valid")));
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- batches */

static pd_resp wait_batch(const char *batch_id, int timeout_ms)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/batches/%s", batch_id);
    for (int waited = 0;; waited += 50) {
        pd_resp r = expect(200, "GET", path, NULL);
        if (pd_int_at(r.json, "data.queued", -1) == 0 && pd_int_at(r.json, "data.processing", -1) == 0)
            return r;
        cr_assert_lt(waited, timeout_ms, "batch not done: %s", r.body);
        pd_resp_free(&r);
        usleep(50 * 1000);
    }
}

Test(v1, batch_runs_every_entry_in_order)
{
    pd_resp r = expect(202, "POST", "/api/v1/prompts/batch",
                       "{\"prompts\": [\"one\", {\"prompt\": \"two {{x}}\", \"variables\": {\"x\": \"2\"}}, \"three\"]}");
    cr_assert_str_eq(pd_str_at(r.json, "status"), "submitted");
    const char *batch = pd_str_at(r.json, "batch_id");
    cr_assert_not_null(batch);
    json_t *ids = pd_json_at(r.json, "request_ids");
    cr_assert_eq(json_array_size(ids), 3);
    pd_resp b = wait_batch(batch, 10000);
    cr_assert_eq(pd_int_at(b.json, "data.total", -1), 3);
    cr_assert_eq(pd_int_at(b.json, "data.completed", -1), 3);
    cr_assert_str_eq(pd_str_at(b.json, "data.status"), "completed");
    pd_resp_free(&b);
    const char *want[] = {"one", "two 2", "three"};
    for (size_t i = 0; i < 3; i++) {
        pd_resp g = wait_terminal(json_string_value(json_array_get(ids, i)), 5000);
        cr_assert_str_eq(pd_str_at(g.json, "data.output"), want[i]);
        cr_assert_str_eq(pd_str_at(g.json, "data.batch_id"), batch);
        pd_resp_free(&g);
    }
    pd_resp_free(&r);
}

Test(v1, batch_limits_and_bad_entries)
{
    pd_resp r = call_key(S.admin_key, "POST", "/api/v1/prompts/batch", "{\"prompts\": []}", NULL);
    expect_v1_error(&r, 400, "BAD_REQUEST", "prompts");
    pd_resp_free(&r);
    r = call_key(S.admin_key, "POST", "/api/v1/prompts/batch", "{\"prompts\": [\"ok\", 7, {\"prompt\": \"\"}]}", NULL);
    expect_v1_error(&r, 400, "BAD_REQUEST", "prompts[1]");
    cr_assert_not_null(strstr(r.body, "prompts[2].prompt"), "%s", r.body);
    pd_resp_free(&r);
    /* 1,001 entries */
    size_t cap = 1001 * 6 + 32, o = 0;
    char *big = malloc(cap);
    o += (size_t)sprintf(big, "{\"prompts\": [");
    for (int i = 0; i < 1001; i++)
        o += (size_t)sprintf(big + o, "%s\"p\"", i ? "," : "");
    strcpy(big + o, "]}");
    r = call_key(S.admin_key, "POST", "/api/v1/prompts/batch", big, NULL);
    expect_v1_error(&r, 413, "PAYLOAD_TOO_LARGE", "prompts");
    pd_resp_free(&r);
    free(big);
    pd_resp l = expect(200, "GET", "/executions", NULL);
    cr_assert_eq(pd_int_at(l.json, "meta.totalRecords", -1), 0, "nothing may be stored: %s", l.body);
    pd_resp_free(&l);
    r = call_key(S.admin_key, "GET", "/api/v1/batches/0190a0b0-1234-7abc-8def-0123456789ab", NULL, NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- idempotency */

Test(v1, idempotency_key_replays_the_first_answer)
{
    const char *h[] = {"Idempotency-Key: order-42", NULL};
    pd_resp a = call_key(S.admin_key, "POST", "/api/v1/prompt", "{\"prompt\": \"once\", \"async\": true}", h);
    pd_resp b = call_key(S.admin_key, "POST", "/api/v1/prompt", "{\"prompt\": \"once\", \"async\": true}", h);
    cr_assert_eq(a.status, 202, "%s", a.body);
    cr_assert_eq(b.status, 202, "%s", b.body);
    cr_assert_str_eq(pd_str_at(a.json, "request_id"), pd_str_at(b.json, "request_id"));
    cr_assert_str_eq(pd_header(&b, "Idempotent-Replayed"), "true");
    pd_resp c = call_key(S.admin_key, "POST", "/api/v1/prompt", "{\"prompt\": \"twice\", \"async\": true}", h);
    expect_v1_error(&c, 422, "VALIDATION_ERROR", "Idempotency-Key");
    /* batches too */
    const char *hb[] = {"Idempotency-Key: batch-1", NULL};
    pd_resp d = call_key(S.admin_key, "POST", "/api/v1/prompts/batch", "{\"prompts\": [\"a\", \"b\"]}", hb);
    pd_resp e = call_key(S.admin_key, "POST", "/api/v1/prompts/batch", "{\"prompts\": [\"a\", \"b\"]}", hb);
    cr_assert_eq(d.status, 202);
    cr_assert_str_eq(pd_str_at(d.json, "batch_id"), pd_str_at(e.json, "batch_id"));
    pd_resp_free(&a);
    pd_resp_free(&b);
    pd_resp_free(&c);
    pd_resp_free(&d);
    pd_resp_free(&e);
}

/* A member of the organization, with an API key of their own, into key. */
static void make_member(const char *email, char key[128])
{
    char body[256], path[160];
    snprintf(body, sizeof body, "{\"email\": \"%s\"}", email);
    pd_resp u = expect(201, "POST", "/api/v1/users", body);
    snprintf(path, sizeof path, "/api/v1/users/%s/api-keys", pd_str_at(u.json, "data.uuid"));
    pd_resp k = expect(201, "POST", path, NULL);
    snprintf(key, 128, "%s", pd_str_at(k.json, "data.key"));
    cr_assert(key[0], "%s", k.body);
    pd_resp_free(&u);
    pd_resp_free(&k);
}

Test(v1, idempotency_keys_belong_to_their_caller)
{
    char member[128];
    make_member("idem-member@example.com", member);
    const char *h[] = {"Idempotency-Key: nightly-1", NULL};
    const char *body = "{\"prompts\": [\"a\", \"b\"]}";
    pd_resp a = call_key(S.admin_key, "POST", "/api/v1/prompts/batch", body, h);
    cr_assert_eq(a.status, 202, "%s", a.body);
    /* the same key and body from another caller is that caller's own work, not the admin's answer */
    pd_resp m = call_key(member, "POST", "/api/v1/prompts/batch", body, h);
    cr_assert_eq(m.status, 202, "%s", m.body);
    cr_assert_null(pd_header(&m, "Idempotent-Replayed"), "a member got the admin's answer");
    cr_assert_str_neq(pd_str_at(m.json, "batch_id"), pd_str_at(a.json, "batch_id"));
    char path[160];
    snprintf(path, sizeof path, "/api/v1/batches/%s", pd_str_at(m.json, "batch_id"));
    pd_resp mb = call_key(member, "GET", path, NULL, NULL);
    cr_assert_eq(mb.status, 200, "the member's own batch: %s", mb.body);
    cr_assert_eq(pd_int_at(mb.json, "data.total", -1), 2, "%s", mb.body);
    /* each caller's repeat replays their own first answer; another body under it is still a 422 */
    pd_resp m2 = call_key(member, "POST", "/api/v1/prompts/batch", body, h);
    cr_assert_str_eq(pd_header(&m2, "Idempotent-Replayed"), "true");
    cr_assert_str_eq(pd_str_at(m2.json, "batch_id"), pd_str_at(m.json, "batch_id"));
    pd_resp a2 = call_key(S.admin_key, "POST", "/api/v1/prompts/batch", body, h);
    cr_assert_str_eq(pd_header(&a2, "Idempotent-Replayed"), "true");
    cr_assert_str_eq(pd_str_at(a2.json, "batch_id"), pd_str_at(a.json, "batch_id"));
    pd_resp m3 = call_key(member, "POST", "/api/v1/prompts/batch", "{\"prompts\": [\"c\"]}", h);
    expect_v1_error(&m3, 422, "VALIDATION_ERROR", "Idempotency-Key");
    pd_resp_free(&a);
    pd_resp_free(&m);
    pd_resp_free(&mb);
    pd_resp_free(&m2);
    pd_resp_free(&a2);
    pd_resp_free(&m3);
}

Test(v1, members_read_only_their_own_requests_and_batches)
{
    char member[128];
    make_member("reader-member@example.com", member);
    pd_resp a = expect(202, "POST", "/api/v1/prompt", "{\"prompt\": \"admin's\", \"async\": true}");
    pd_resp ab = expect(202, "POST", "/api/v1/prompts/batch", "{\"prompts\": [\"x\"]}");
    pd_resp m = call_key(member, "POST", "/api/v1/prompt", "{\"prompt\": \"member's\", \"async\": true}", NULL);
    cr_assert_eq(m.status, 202, "%s", m.body);
    pd_resp mb = call_key(member, "POST", "/api/v1/prompts/batch", "{\"prompts\": [\"y\"]}", NULL);
    cr_assert_eq(mb.status, 202, "%s", mb.body);
    char path[160];
    /* the admin's request and batch are not the member's to read, as they are not theirs to cancel */
    snprintf(path, sizeof path, "/api/v1/prompt/%s", pd_str_at(a.json, "request_id"));
    pd_resp r = call_key(member, "GET", path, NULL, NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/batches/%s", pd_str_at(ab.json, "batch_id"));
    r = call_key(member, "GET", path, NULL, NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
    /* their own they read; the admin reads both */
    snprintf(path, sizeof path, "/api/v1/prompt/%s", pd_str_at(m.json, "request_id"));
    r = call_key(member, "GET", path, NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", path, NULL);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/batches/%s", pd_str_at(mb.json, "batch_id"));
    r = call_key(member, "GET", path, NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", path, NULL);
    pd_resp_free(&r);
    pd_resp_free(&a);
    pd_resp_free(&ab);
    pd_resp_free(&m);
    pd_resp_free(&mb);
}

/* ---------------------------------------------------------------- sessions */

Test(v1, sessions_list_a_users_requests_newest_first)
{
    pd_resp me = expect(200, "GET", "/api/v1/users/me", NULL);
    const char *uid = pd_str_at(me.json, "data.uuid");
    cr_assert_not_null(uid);
    long long unum = pd_int_at(me.json, "data.user_id", -1);
    cr_assert_gt(unum, 0, "%s", me.body);
    cr_assert_str_eq(pd_str_at(me.json, "data.role"), "admin");
    pd_resp p1 = expect(200, "POST", "/api/v1/prompt", "{\"prompt\": \"first\"}");
    pd_resp p2 = expect(200, "POST", "/api/v1/prompt", "{\"prompt\": \"second\"}");
    pd_resp_free(&p1);
    pd_resp_free(&p2);
    char path[200];
    snprintf(path, sizeof path, "/api/v1/sessions/%s", uid);
    pd_resp s = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(s.json, "data.count", -1), 2, "%s", s.body);
    cr_assert_str_eq(pd_str_at(s.json, "data.items.0.prompt"), "second");
    cr_assert_str_eq(pd_str_at(s.json, "data.items.0.response"), "second");
    cr_assert_str_eq(pd_str_at(s.json, "data.items.1.prompt"), "first");
    cr_assert_eq(pd_int_at(s.json, "data.user_id", -1), unum, "%s", s.body);
    cr_assert_str_eq(pd_str_at(s.json, "data.user_uuid"), uid, "%s", s.body);
    pd_resp_free(&s);
    /* the user's number names them too (spec 002's integer user_id) */
    snprintf(path, sizeof path, "/api/v1/sessions/%lld", unum);
    s = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(s.json, "data.count", -1), 2, "%s", s.body);
    pd_resp_free(&s);
    snprintf(path, sizeof path, "/api/v1/sessions/%s?limit=1", uid);
    s = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(s.json, "data.count", -1), 1);
    pd_resp_free(&s);
    snprintf(path, sizeof path, "/api/v1/sessions/%s?from_date=2999-01-01", uid);
    s = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(s.json, "data.count", -1), 0);
    pd_resp_free(&s);
    snprintf(path, sizeof path, "/api/v1/sessions/%s?from_date=yesterday", uid);
    pd_resp bad = call_key(S.admin_key, "GET", path, NULL, NULL);
    expect_v1_error(&bad, 400, "BAD_REQUEST", "from_date");
    pd_resp_free(&bad);
    snprintf(path, sizeof path, "/api/v1/sessions/%s?limit=0", uid);
    bad = call_key(S.admin_key, "GET", path, NULL, NULL);
    expect_v1_error(&bad, 400, "BAD_REQUEST", "limit");
    pd_resp_free(&bad);
    pd_resp_free(&me);
}

/* ---------------------------------------------------------------- with a slow or failing provider */

Test(v1_mock, cancel_stops_a_request_and_it_stays_cancelled)
{
    pd_resp r = expect(202, "POST", "/api/v1/prompt",
                       "{\"prompt\": \"slow [mock:latency=1500]\", \"model\": \"mock/m\", \"async\": true}");
    char id[64], path[128];
    snprintf(id, sizeof id, "%s", pd_str_at(r.json, "request_id"));
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/prompt/%s/cancel", id);
    r = expect(200, "POST", path, NULL);
    cr_assert_str_eq(pd_str_at(r.json, "status"), "cancelled");
    pd_resp_free(&r);
    pd_resp again = call_key(S.admin_key, "POST", path, NULL, NULL);
    expect_v1_error(&again, 409, "CONFLICT", NULL);
    pd_resp_free(&again);
    usleep(2000 * 1000); /* the provider answers meanwhile: the answer is dropped */
    pd_resp g = wait_terminal(id, 1000);
    cr_assert_str_eq(pd_str_at(g.json, "data.status"), "cancelled");
    pd_resp_free(&g);
}

Test(v1_mock, retry_reruns_a_failed_request_and_keeps_the_attempt)
{
    pd_resp r = expect(202, "POST", "/api/v1/prompt",
                       "{\"prompt\": \"flaky [mock:fail_times=1]\", \"model\": \"mock/m\", \"async\": true}");
    char id[64], path[128];
    snprintf(id, sizeof id, "%s", pd_str_at(r.json, "request_id"));
    pd_resp_free(&r);
    pd_resp g = wait_terminal(id, 10000);
    cr_assert_str_eq(pd_str_at(g.json, "data.status"), "failed", "%s", g.body);
    cr_assert_not_null(pd_str_at(g.json, "data.error"));
    pd_resp_free(&g);
    snprintf(path, sizeof path, "/api/v1/prompt/%s/retry", id);
    r = expect(202, "POST", path, NULL);
    pd_resp_free(&r);
    g = wait_terminal(id, 10000);
    cr_assert_str_eq(pd_str_at(g.json, "data.status"), "completed", "%s", g.body);
    cr_assert_str_eq(pd_str_at(g.json, "data.output"), "mock reply: flaky");
    cr_assert_eq(pd_int_at(g.json, "data.retries", -1), 1);
    cr_assert_str_eq(pd_str_at(g.json, "data.attempts.0.status"), "failed");
    pd_resp_free(&g);
    pd_resp again = call_key(S.admin_key, "POST", path, NULL, NULL);
    expect_v1_error(&again, 409, "CONFLICT", NULL);
    pd_resp_free(&again);
}

Test(v1_mock, failed_sync_prompt_is_502_with_its_request_id)
{
    pd_resp r = call_key(S.admin_key, "POST", "/api/v1/prompt",
                         "{\"prompt\": \"boom [mock:status=500]\", \"model\": \"mock/m\"}", NULL);
    expect_v1_error(&r, 502, "UPSTREAM_ERROR", NULL);
    const char *id = pd_str_at(r.json, "request_id");
    cr_assert_not_null(id);
    pd_resp g = wait_terminal(id, 1000);
    cr_assert_str_eq(pd_str_at(g.json, "data.status"), "failed");
    pd_resp_free(&g);
    pd_resp_free(&r);
}

/* The crash test: 1,000 async jobs on a slow provider, kill -9 midway,
 * restart; every job must end exactly once (completed), none lost. */
Test(v1_mock, outcomes_the_store_refuses_are_written_once_it_recovers, .timeout = 120)
{
    /* leases long enough to outlive the held lock, so only the outcome writes fail */
    const char *args[] = {"--config", config_path, NULL};
    cr_assert_eq(pd_restart(&S, args, NULL), 0, "restart failed");
    pd_resp r = expect(202, "POST", "/api/v1/prompts/batch",
                       "{\"model\": \"mock/m\", \"prompts\": [\"a [mock:latency=800]\", \"b [mock:latency=800]\", "
                       "\"c [mock:latency=800]\", \"d [mock:latency=800]\"]}");
    char batch[64];
    snprintf(batch, sizeof batch, "%s", pd_str_at(r.json, "batch_id"));
    pd_resp_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/batches/%s", batch);
    for (int waited = 0;; waited += 10) { /* until all four are claimed and running */
        pd_resp b = expect(200, "GET", path, NULL);
        long queued = pd_int_at(b.json, "data.queued", -1), processing = pd_int_at(b.json, "data.processing", -1);
        pd_resp_free(&b);
        cr_assert_eq(queued + processing, 4, "a job ended before the lock was taken: raise its latency");
        if (queued == 0)
            break;
        cr_assert_lt(waited, 5000, "the jobs were not claimed");
        usleep(10 * 1000);
    }
    /* another process holds the database's write lock while the answers come back, longer than
     * promptd's busy timeout: every write of their outcomes fails for a while */
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(S.db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, &msg), SQLITE_OK, "%s", msg ? msg : "");
    sleep(12); /* past two busy timeouts (5 s): a poll's claim may wait out the first */
    cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, &msg), SQLITE_OK, "%s", msg ? msg : "");
    sqlite3_close(db);
    char *log = pd_read_file(S.log_path);
    cr_assert(log && strstr(log, "could not record"), "the outcome writes should have failed under the lock");
    free(log);
    /* once the lock is gone every job ends, without a restart */
    pd_resp b = wait_batch(batch, 30000);
    cr_assert_eq(pd_int_at(b.json, "data.completed", -1), 4, "%s", b.body);
    pd_resp_free(&b);
}

Test(v1_mock, kill_9_midway_loses_no_job, .timeout = 180)
{
    size_t cap = 1000 * 48 + 64, o = 0;
    char *big = malloc(cap);
    o += (size_t)sprintf(big, "{\"model\": \"mock/m\", \"prompts\": [");
    for (int i = 0; i < 1000; i++)
        o += (size_t)sprintf(big + o, "%s\"job %d [mock:latency=200]\"", i ? "," : "", i);
    strcpy(big + o, "]}");
    pd_resp r = expect(202, "POST", "/api/v1/prompts/batch", big);
    free(big);
    char batch[64], path[128];
    snprintf(batch, sizeof batch, "%s", pd_str_at(r.json, "batch_id"));
    json_t *ids = json_incref(pd_json_at(r.json, "request_ids"));
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/batches/%s", batch);
    /* wait until some, not all, have completed */
    for (int waited = 0;; waited += 20) {
        pd_resp b = expect(200, "GET", path, NULL);
        long done = pd_int_at(b.json, "data.completed", 0);
        pd_resp_free(&b);
        if (done >= 50)
            break;
        cr_assert_lt(waited, 30000, "nothing completed");
        usleep(20 * 1000);
    }
    cr_assert_eq(pd_kill_wait(&S, SIGKILL, 5000), -1, "promptd should die from SIGKILL");
    const char *args[] = {"--config", config_path, NULL};
    const char *env[] = {"PROMPTD_LEASE_MS=1500", NULL};
    cr_assert_eq(pd_restart(&S, args, env), 0, "restart failed");
    pd_resp b = wait_batch(batch, 120000);
    cr_assert_eq(pd_int_at(b.json, "data.total", -1), 1000);
    cr_assert_eq(pd_int_at(b.json, "data.completed", -1) + pd_int_at(b.json, "data.failed", -1), 1000, "%s", b.body);
    cr_assert_eq(pd_int_at(b.json, "data.queued", -1), 0);
    cr_assert_eq(pd_int_at(b.json, "data.processing", -1), 0);
    pd_resp_free(&b);
    /* each one reached exactly one terminal state; a completed one carries its own answer, a
     * failed one (an upstream call that timed out on a loaded machine) its error */
    long completed = 0;
    for (size_t i = 0; i < json_array_size(ids); i += 97) {
        pd_resp g = wait_terminal(json_string_value(json_array_get(ids, i)), 1000);
        if (!strcmp(pd_str_at(g.json, "data.status"), "completed")) {
            char want[64];
            snprintf(want, sizeof want, "mock reply: job %zu", i);
            cr_assert_str_eq(pd_str_at(g.json, "data.output"), want, "%s", g.body);
            completed++;
        } else {
            cr_assert_str_eq(pd_str_at(g.json, "data.status"), "failed", "%s", g.body);
            cr_assert_not_null(pd_str_at(g.json, "data.error"), "%s", g.body);
        }
        pd_resp_free(&g);
    }
    cr_assert_gt(completed, 0, "no sampled job completed");
    json_decref(ids);
}
