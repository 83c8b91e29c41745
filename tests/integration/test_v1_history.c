/*
 * test_v1_history.c — spec 002 over HTTP: GET /api/v1/prompts/history (one
 * row per prompt with its latest execution, every filter, search, sort and
 * paging, 400 for each bad parameter), DELETE /api/v1/prompts/history,
 * GET /api/v1/prompts, the user_id rules (members vs admins), other
 * organizations' ids (404), and the Jarvis prompt fields workspace_id,
 * data_source_ids and tags. Executions are made with POST /prompts/:id/execute
 * (echo model; the mock provider for failures and slow runs).
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

static void setup(void) { cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start"); }
static void teardown(void) { pd_stop(&S); }

/* promptd with the mock provider as "mock" (for failed and slow executions) */
static void setup_mock(void)
{
    cr_assert_eq(mock_proc_start(&M, NULL), 0, "mock did not start");
    char dir[256], path[300], url[128];
    cr_assert_eq(pd_mkdtemp(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/promptd.json", dir);
    snprintf(url, sizeof url, "%s/v1", M.base_url);
    json_t *cfg = json_pack("{s:[{s:s, s:s, s:s, s:i}], s:{s:i}}", "providers", "name", "mock", "type", "openai",
                            "base_url", url, "timeout_ms", 20000, "retry", "max_attempts", 1);
    cr_assert_eq(json_dump_file(cfg, path, 0), 0);
    json_decref(cfg);
    const char *args[] = {"--config", path, NULL};
    cr_assert_eq(pd_start(&S, args, NULL), 0, "promptd did not start");
}
static void teardown_mock(void)
{
    pd_stop(&S);
    mock_proc_stop(&M);
}

TestSuite(history, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(history_mock, .init = setup_mock, .fini = teardown_mock, .timeout = 90);

/* ---------------------------------------------------------------- helpers */

/* A request with key as "Authorization: Bearer" (the spec's header). */
static pd_resp call(const char *key, const char *method, const char *path, const char *body)
{
    pd_resp r;
    char bearer[160];
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", key);
    const char *hdr[] = {bearer, NULL};
    cr_assert_eq(pd_req(&S, method, path, NULL, body, key ? hdr : NULL, &r), 0, "%s %s: %s", method, path, r.error);
    return r;
}

static pd_resp expect_key(const char *key, long status, const char *method, const char *path, const char *body)
{
    pd_resp r = call(key, method, path, body);
    cr_assert_eq(r.status, status, "%s %s: want %ld, got %ld: %s", method, path, status, r.status, r.body);
    return r;
}

static pd_resp expect(long status, const char *method, const char *path, const char *body)
{
    return expect_key(S.admin_key, status, method, path, body);
}

static void expect_v1_error(pd_resp *r, long status, const char *code, const char *field)
{
    cr_assert_eq(r->status, status, "want %ld, got %ld: %s", status, r->status, r->body);
    cr_assert(json_is_false(pd_json_at(r->json, "success")), "%s", r->body);
    cr_assert_str_eq(pd_str_at(r->json, "error.code"), code, "%s", r->body);
    cr_assert_not_null(pd_str_at(r->json, "message"), "%s", r->body);
    if (field)
        cr_assert_str_eq(pd_str_at(r->json, "error.field"), field, "%s", r->body);
}

/* A GET that must answer 400 BAD_REQUEST naming param. */
static void expect_bad_param(const char *path, const char *param)
{
    pd_resp r = call(S.admin_key, "GET", path, NULL);
    expect_v1_error(&r, 400, "BAD_REQUEST", param);
    pd_resp_free(&r);
}

/* POST /prompts with optional extra members (a JSON object text or NULL); the id into id. */
static void make_prompt(const char *key, const char *name, const char *content, const char *extra, char id[64])
{
    json_t *p = json_pack("{s:s, s:s}", "name", name, "content", content);
    if (extra) {
        json_t *x = json_loads(extra, 0, NULL);
        cr_assert_not_null(x, "bad extra: %s", extra);
        json_object_update(p, x);
        json_decref(x);
    }
    json_t *b = json_pack("{s:o}", "prompt", p);
    char *body = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    pd_resp r = expect_key(key, 201, "POST", "/prompts", body);
    snprintf(id, 64, "%s", pd_str_at(r.json, "data.id"));
    free(body);
    pd_resp_free(&r);
}

/* Run a prompt; the execution id into exec_id (may be NULL). Returns the HTTP status. */
static long run_prompt(const char *key, const char *prompt_id, const char *model, char exec_id[64])
{
    char path[128], body[128];
    snprintf(path, sizeof path, "/prompts/%s/execute", prompt_id);
    if (model)
        snprintf(body, sizeof body, "{\"model\": \"%s\"}", model);
    else
        snprintf(body, sizeof body, "{}");
    pd_resp r;
    cr_assert_eq(pd_req(&S, "POST", path, key, body, NULL, &r), 0, "%s", r.error);
    long st = r.status;
    if (exec_id) {
        const char *id = pd_str_at(r.json, "data.attributes.metadata.prompt_execution_id");
        if (!id)
            id = pd_str_at(r.json, "data.id");
        snprintf(exec_id, 64, "%s", id ? id : "");
    }
    pd_resp_free(&r);
    return st;
}

static void run_ok(const char *key, const char *prompt_id, char exec_id[64])
{
    cr_assert_eq(run_prompt(key, prompt_id, NULL, exec_id), 200, "execute %s", prompt_id);
}

/* A resource created over the v1 API; its UUID (data.uuid) into id, its number (data.id) returned. */
static long long make_v1(const char *key, const char *path, const char *body, char id[64])
{
    pd_resp r = expect_key(key, 201, "POST", path, body);
    cr_assert(json_is_true(pd_json_at(r.json, "success")), "%s", r.body);
    cr_assert(json_is_integer(pd_json_at(r.json, "data.id")), "the id is a number: %s", r.body);
    snprintf(id, 64, "%s", pd_str_at(r.json, "data.uuid"));
    long long num = pd_int_at(r.json, "data.id", -1);
    cr_assert_gt(num, 0, "%s", r.body);
    pd_resp_free(&r);
    return num;
}

/* A member user of the admin's organization with their own key. */
static void make_member(const char *email, char user_id[64], char key[128])
{
    char body[256], path[128];
    snprintf(body, sizeof body, "{\"email\": \"%s\", \"name\": \"M\", \"role\": \"member\"}", email);
    make_v1(S.admin_key, "/api/v1/users", body, user_id);
    snprintf(path, sizeof path, "/api/v1/users/%s/api-keys", user_id);
    pd_resp r = expect(201, "POST", path, "{\"name\": \"test\"}");
    snprintf(key, 128, "%s", pd_str_at(r.json, "data.key"));
    pd_resp_free(&r);
}

static size_t items_count(const pd_resp *r) { return json_array_size(pd_json_at(r->json, "data.items")); }

static const char *item_str(const pd_resp *r, size_t i, const char *field)
{
    char path[96];
    snprintf(path, sizeof path, "data.items.%zu.%s", i, field);
    return pd_str_at(r->json, path);
}

/* 1 if some item of the page has id. */
static int page_has(const pd_resp *r, const char *id)
{
    for (size_t i = 0; i < items_count(r); i++)
        if (strcmp(item_str(r, i, "uuid"), id) == 0)
            return 1;
    return 0;
}

/* The caller's UUID into id; their number returned. */
static long long my_user_id(const char *key, char id[64])
{
    pd_resp r = expect_key(key, 200, "GET", "/api/v1/users/me", NULL);
    const char *u = pd_str_at(r.json, "data.uuid");
    cr_assert_not_null(u, "%s", r.body);
    snprintf(id, 64, "%s", u);
    long long num = pd_int_at(r.json, "data.id", -1);
    cr_assert_gt(num, 0, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.user_id", -1), num, "%s", r.body);
    pd_resp_free(&r);
    return num;
}

static long long item_num(const pd_resp *r, size_t i, const char *field)
{
    char path[96];
    snprintf(path, sizeof path, "data.items.%zu.%s", i, field);
    json_t *v = pd_json_at(r->json, path);
    cr_assert(json_is_integer(v), "%s is not a number: %s", path, r->body);
    return (long long)json_integer_value(v);
}

/* Move a prompt's latest activity days back in time (the API cannot backdate). */
static void age_prompt(const char *prompt_id, int days)
{
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(S.db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char sql[512];
    long long back = (long long)days * 86400000LL;
    snprintf(sql, sizeof sql,
             "UPDATE prompts SET created_at = created_at - %lld, "
             "last_executed_at = last_executed_at - %lld WHERE id = '%s'",
             back, back, prompt_id);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* ---------------------------------------------------------------- the documented shape */

Test(history, example_from_the_spec_works_verbatim)
{
    char p[64], e[64];
    make_prompt(S.admin_key, "Sales Report", "Show me total sales by region", NULL, p);
    run_ok(S.admin_key, p, e);
    pd_resp r = expect(200, "GET",
                       "/api/v1/prompts/history?time_period=last_7_days&status=completed&page=1&page_size=20", NULL);
    cr_assert(json_is_true(pd_json_at(r.json, "success")), "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "message"), "Prompt history retrieved successfully");
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    json_t *it = pd_json_at(r.json, "data.items.0");
    const char *fields[] = {
        "id",      "name",         "prompt_text", "status", "execution_time_ms", "timestamp", "data_source_ids",
        "user_id", "workspace_id", NULL};
    for (int i = 0; fields[i]; i++)
        cr_assert_not_null(json_object_get(it, fields[i]), "item lacks %s: %s", fields[i], r.body);
    cr_assert_str_eq(pd_str_at(it, "uuid"), p);
    cr_assert(json_is_integer(json_object_get(it, "id")), "the id is a number: %s", r.body);
    cr_assert(json_is_integer(json_object_get(it, "user_id")), "user_id is a number: %s", r.body);
    cr_assert_str_eq(pd_str_at(it, "name"), "Sales Report");
    cr_assert_str_eq(pd_str_at(it, "prompt_text"), "Show me total sales by region");
    cr_assert_str_eq(pd_str_at(it, "status"), "completed");
    cr_assert(json_is_integer(json_object_get(it, "execution_time_ms")), "%s", r.body);
    const char *ts = pd_str_at(it, "timestamp");
    cr_assert(ts && strlen(ts) == 20 && ts[10] == 'T' && ts[19] == 'Z', "timestamp %s", ts ? ts : "(null)");
    cr_assert(json_is_array(json_object_get(it, "data_source_ids")));
    cr_assert(json_is_null(json_object_get(it, "workspace_id")));
    cr_assert_str_eq(pd_str_at(it, "latest_execution_id"), e);
    cr_assert_eq(pd_int_at(r.json, "data.pagination.page", -1), 1);
    cr_assert_eq(pd_int_at(r.json, "data.pagination.page_size", -1), 20);
    cr_assert_eq(pd_int_at(r.json, "data.pagination.total_items", -1), 1);
    cr_assert_eq(pd_int_at(r.json, "data.pagination.total_pages", -1), 1);
    pd_resp_free(&r);
}

Test(history, needs_credentials)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/api/v1/prompts/history", NULL, NULL, NULL, &r), 0);
    expect_v1_error(&r, 401, "UNAUTHORIZED", NULL);
    pd_resp_free(&r);
    r = call("pk_live_not_a_real_key_at_all_000000000000", "GET", "/api/v1/prompts/history", NULL);
    expect_v1_error(&r, 401, "UNAUTHORIZED", NULL);
    pd_resp_free(&r);
    cr_assert_eq(pd_req(&S, "DELETE", "/api/v1/prompts/history", NULL, NULL, NULL, &r), 0);
    expect_v1_error(&r, 401, "UNAUTHORIZED", NULL);
    pd_resp_free(&r);
}

Test(history, one_row_per_prompt_with_its_latest_execution)
{
    char p[64], q[64], e[64], last[64];
    make_prompt(S.admin_key, "Three runs", "hello there", NULL, p);
    make_prompt(S.admin_key, "Never run", "quiet", NULL, q);
    for (int i = 0; i < 3; i++)
        run_ok(S.admin_key, p, i == 2 ? last : e);
    pd_resp r = expect(200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 2, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.pagination.total_items", -1), 2);
    /* newest first: the executed one ran after the draft was made */
    cr_assert_str_eq(item_str(&r, 0, "uuid"), p);
    cr_assert_str_eq(item_str(&r, 0, "latest_execution_id"), last);
    cr_assert_str_eq(item_str(&r, 0, "status"), "completed");
    cr_assert_str_eq(item_str(&r, 1, "uuid"), q);
    cr_assert_str_eq(item_str(&r, 1, "status"), "draft");
    cr_assert(json_is_null(pd_json_at(r.json, "data.items.1.latest_execution_id")), "%s", r.body);
    cr_assert(json_is_null(pd_json_at(r.json, "data.items.1.execution_time_ms")), "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- filters */

Test(history, status_filter_and_draft)
{
    char p[64], q[64];
    make_prompt(S.admin_key, "Ran", "x", NULL, p);
    make_prompt(S.admin_key, "Drafted", "y", NULL, q);
    run_ok(S.admin_key, p, NULL);
    pd_resp r = expect(200, "GET", "/api/v1/prompts/history?status=completed", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), p);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?status=draft", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), q);
    pd_resp_free(&r);
    const char *none[] = {"failed", "processing", "queued", "cancelled"};
    for (size_t i = 0; i < 4; i++) {
        char path[96];
        snprintf(path, sizeof path, "/api/v1/prompts/history?status=%s", none[i]);
        r = expect(200, "GET", path, NULL);
        cr_assert_eq(items_count(&r), 0, "%s: %s", none[i], r.body);
        cr_assert_eq(pd_int_at(r.json, "data.pagination.total_items", -1), 0);
        cr_assert_eq(pd_int_at(r.json, "data.pagination.total_pages", -1), 0);
        pd_resp_free(&r);
    }
}

Test(history, workspace_and_data_source_filters)
{
    char w1[64], w2[64], d1[64], d2[64], a[64], b[64], c[64], body[512], path[256];
    long long w1n = make_v1(S.admin_key, "/api/v1/workspaces", "{\"name\": \"Sales\"}", w1);
    make_v1(S.admin_key, "/api/v1/workspaces", "{\"name\": \"Ops\"}", w2);
    make_v1(S.admin_key, "/api/v1/data-sources", "{\"name\": \"crm\", \"type\": \"postgresql\"}", d1);
    make_v1(S.admin_key, "/api/v1/data-sources", "{\"name\": \"logs\", \"type\": \"s3\"}", d2);
    snprintf(body, sizeof body, "{\"workspace_id\": \"%s\", \"data_source_ids\": [\"%s\", \"%s\"]}", w1, d1, d2);
    make_prompt(S.admin_key, "A", "alpha", body, a);
    snprintf(body, sizeof body, "{\"workspace_id\": \"%s\", \"data_source_ids\": [\"%s\"]}", w2, d2);
    make_prompt(S.admin_key, "B", "beta", body, b);
    make_prompt(S.admin_key, "C", "gamma", NULL, c);

    snprintf(path, sizeof path, "/api/v1/prompts/history?workspace_id=%s", w1);
    pd_resp r = expect(200, "GET", path, NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), a);
    cr_assert_eq(item_num(&r, 0, "workspace_id"), w1n, "%s", r.body);
    json_t *ds = pd_json_at(r.json, "data.items.0.data_source_ids");
    cr_assert_eq(json_array_size(ds), 2, "%s", r.body);
    pd_resp_free(&r);

    snprintf(path, sizeof path, "/api/v1/prompts/history?data_source_id=%s", d2);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(items_count(&r), 2, "%s", r.body);
    cr_assert(page_has(&r, a) && page_has(&r, b));
    pd_resp_free(&r);

    snprintf(path, sizeof path, "/api/v1/prompts/history?data_source_id=%s&workspace_id=%s", d2, w2);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), b);
    pd_resp_free(&r);

    /* an unknown id, and ids of another organization: 404 */
    r = call(S.admin_key, "GET", "/api/v1/prompts/history?workspace_id=01234567-89ab-7cde-8f01-23456789abcd", NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
    char other[128], ow[64], od[64];
    cr_assert_eq(pd_new_org_key(&S, "other-org", other, sizeof other), 0);
    make_v1(other, "/api/v1/workspaces", "{\"name\": \"Theirs\"}", ow);
    make_v1(other, "/api/v1/data-sources", "{\"name\": \"theirs\", \"type\": \"csv\"}", od);
    snprintf(path, sizeof path, "/api/v1/prompts/history?workspace_id=%s", ow);
    r = call(S.admin_key, "GET", path, NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/prompts/history?data_source_id=%s", od);
    r = call(S.admin_key, "GET", path, NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
    /* and the other organization sees none of ours */
    r = expect_key(other, 200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 0, "%s", r.body);
    pd_resp_free(&r);
    r = expect_key(other, 200, "GET", "/api/v1/prompts", NULL);
    cr_assert_eq(items_count(&r), 0, "%s", r.body);
    pd_resp_free(&r);
}

Test(history, time_period_filter)
{
    char fresh[64], month[64], old[64];
    make_prompt(S.admin_key, "Fresh", "now", NULL, fresh);
    make_prompt(S.admin_key, "Month", "then", NULL, month);
    make_prompt(S.admin_key, "Old", "long ago", NULL, old);
    run_ok(S.admin_key, fresh, NULL);
    run_ok(S.admin_key, month, NULL);
    age_prompt(month, 20);
    age_prompt(old, 60);
    struct {
        const char *period;
        size_t n;
    } cases[] = {{"last_7_days", 1}, {"last_30_days", 2}, {"last_90_days", 3}, {"all", 3}};
    for (size_t i = 0; i < 4; i++) {
        char path[96];
        snprintf(path, sizeof path, "/api/v1/prompts/history?time_period=%s", cases[i].period);
        pd_resp r = expect(200, "GET", path, NULL);
        cr_assert_eq(items_count(&r), cases[i].n, "%s: %s", cases[i].period, r.body);
        pd_resp_free(&r);
    }
    pd_resp r = expect(200, "GET", "/api/v1/prompts/history?time_period=last_30_days&status=draft", NULL);
    cr_assert_eq(items_count(&r), 0, "%s", r.body);
    pd_resp_free(&r);
}

Test(history, search_uses_words_of_name_or_text)
{
    char a[64], b[64], c[64];
    make_prompt(S.admin_key, "Sales Report", "Show me total sales by region", NULL, a);
    make_prompt(S.admin_key, "Churn", "Which customers left in Q3?", NULL, b);
    make_prompt(S.admin_key, "Mixed", "Regional SALES numbers", NULL, c);
    pd_resp r = expect(200, "GET", "/api/v1/prompts/history?search=sales", NULL);
    cr_assert_eq(items_count(&r), 2, "%s", r.body);
    cr_assert(page_has(&r, a) && page_has(&r, c));
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?search=churn", NULL); /* the name only */
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), b);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?search=regi", NULL); /* prefixes */
    cr_assert_eq(items_count(&r), 2, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?search=total%20region", NULL); /* every word */
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), a);
    pd_resp_free(&r);
    /* FTS syntax in the input is text, never an operator or an error */
    const char *hostile[] = {"%22",    "sales%20OR%20churn", "NEAR(sales", "*",     "sales%22%20OR%20%22x", "%27%3B--",
                             "-sales", "name%3Asales",       "%5E",        "%28%29"};
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/api/v1/prompts/history?search=%s", hostile[i]);
        r = expect(200, "GET", path, NULL);
        cr_assert(items_count(&r) <= 2, "%s: %s", hostile[i], r.body);
        pd_resp_free(&r);
    }
    r = expect(200, "GET", "/api/v1/prompts/history?search=sales%20OR%20churn", NULL);
    cr_assert_eq(items_count(&r), 0, "OR must not be an operator: %s", r.body);
    pd_resp_free(&r);
    /* renaming keeps the index right */
    char path[128];
    snprintf(path, sizeof path, "/prompts/%s", b);
    pd_resp u;
    cr_assert_eq(pd_req(&S, "PUT", path, S.admin_key, "{\"prompt\": {\"name\": \"Attrition\"}}", NULL, &u), 0);
    cr_assert_eq(u.status, 200, "%s", u.body);
    pd_resp_free(&u);
    r = expect(200, "GET", "/api/v1/prompts/history?search=attrition", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?search=churn", NULL);
    cr_assert_eq(items_count(&r), 0, "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- paging and sorting */

Test(history, paging)
{
    char id[64];
    for (int i = 0; i < 25; i++) {
        char name[32];
        snprintf(name, sizeof name, "P%02d", i);
        make_prompt(S.admin_key, name, "text", NULL, id);
    }
    long seen = 0;
    for (int page = 1; page <= 3; page++) {
        char path[96];
        snprintf(path, sizeof path, "/api/v1/prompts/history?page=%d&page_size=10", page);
        pd_resp r = expect(200, "GET", path, NULL);
        cr_assert_eq(items_count(&r), page < 3 ? 10 : 5, "%s", r.body);
        cr_assert_eq(pd_int_at(r.json, "data.pagination.page", -1), page);
        cr_assert_eq(pd_int_at(r.json, "data.pagination.page_size", -1), 10);
        cr_assert_eq(pd_int_at(r.json, "data.pagination.total_items", -1), 25);
        cr_assert_eq(pd_int_at(r.json, "data.pagination.total_pages", -1), 3);
        seen += (long)items_count(&r);
        pd_resp_free(&r);
    }
    cr_assert_eq(seen, 25);
    pd_resp r = expect(200, "GET", "/api/v1/prompts/history?page=4&page_size=10", NULL);
    cr_assert_eq(items_count(&r), 0, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.pagination.total_items", -1), 25);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 20, "default page_size is 20: %s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.pagination.page_size", -1), 20);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?page_size=100&page=1", NULL);
    cr_assert_eq(items_count(&r), 25, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?page_size=1", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.pagination.total_pages", -1), 25);
    pd_resp_free(&r);
}

Test(history, sort_by_timestamp_and_status)
{
    char a[64], b[64], c[64];
    make_prompt(S.admin_key, "First", "1", NULL, a);
    make_prompt(S.admin_key, "Second", "2", NULL, b);
    make_prompt(S.admin_key, "Third", "3", NULL, c);
    age_prompt(a, 3);
    age_prompt(b, 2);
    age_prompt(c, 1);
    run_ok(S.admin_key, b, NULL); /* b is now the most recent */
    pd_resp r = expect(200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), b);
    cr_assert_str_eq(item_str(&r, 1, "uuid"), c);
    cr_assert_str_eq(item_str(&r, 2, "uuid"), a);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?sort_by=timestamp&sort_order=asc", NULL);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), a);
    cr_assert_str_eq(item_str(&r, 1, "uuid"), c);
    cr_assert_str_eq(item_str(&r, 2, "uuid"), b);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?sort_by=status&sort_order=asc", NULL);
    cr_assert_str_eq(item_str(&r, 0, "status"), "completed", "%s", r.body);
    cr_assert_str_eq(item_str(&r, 2, "status"), "draft");
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?sort_by=status", NULL); /* desc */
    cr_assert_str_eq(item_str(&r, 0, "status"), "draft", "%s", r.body);
    cr_assert_str_eq(item_str(&r, 2, "status"), "completed");
    pd_resp_free(&r);
}

Test(history, every_bad_parameter_is_a_400_naming_it)
{
    const struct {
        const char *query, *param;
    } bad[] = {
        {"page=0", "page"},
        {"page=-1", "page"},
        {"page=abc", "page"},
        {"page=1.5", "page"},
        {"page=99999999999999999999", "page"},
        {"page_size=0", "page_size"},
        {"page_size=101", "page_size"},
        {"page_size=x", "page_size"},
        {"sort_by=name", "sort_by"},
        {"sort_by=TIMESTAMP", "sort_by"},
        {"sort_order=up", "sort_order"},
        {"status=done", "status"},
        {"status=published", "status"},
        {"time_period=yesterday", "time_period"},
        {"time_period=last_365_days", "time_period"},
        {"workspace_id=0", "workspace_id"},
        {"workspace_id=-1", "workspace_id"},
        {"workspace_id=abc", "workspace_id"},
        {"workspace_id=1.5", "workspace_id"},
        {"workspace_id=01", "workspace_id"},
        {"workspace_id=9007199254740992", "workspace_id"},
        {"workspace_id=99999999999999999999999", "workspace_id"},
        {"data_source_id=abc", "data_source_id"},
        {"data_source_id=0", "data_source_id"},
        {"data_source_id=%2B2", "data_source_id"},
        {"user_id=x5", "user_id"},
        {"user_id=-5", "user_id"},
        {"user_id=0", "user_id"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char path[160];
        snprintf(path, sizeof path, "/api/v1/prompts/history?%s", bad[i].query);
        expect_bad_param(path, bad[i].param);
        snprintf(path, sizeof path, "/api/v1/prompts?%s", bad[i].query);
        if (strcmp(bad[i].query, "sort_by=name") != 0) /* the list sorts by name */
            expect_bad_param(path, bad[i].param);
    }
    char path[700];
    int n = snprintf(path, sizeof path, "/api/v1/prompts/history?search=");
    for (int i = 0; i < 501; i++)
        path[n++] = 'a';
    path[n] = '\0';
    expect_bad_param(path, "search");
}

/* ---------------------------------------------------------------- users */

Test(history, user_id_defaults_to_the_caller_and_admins_may_look_at_others)
{
    char admin_id[64], mid[64], mkey[128], other_mid[64], other_mkey[128], mine[64], theirs[64], path[160];
    long long admin_num = my_user_id(S.admin_key, admin_id);
    make_member("member@example.com", mid, mkey);
    make_member("other@example.com", other_mid, other_mkey);
    char ignored[64];
    long long member_num = my_user_id(mkey, ignored);
    make_prompt(S.admin_key, "Admin's", "a", NULL, mine);
    make_prompt(mkey, "Member's", "m", NULL, theirs);
    run_ok(mkey, theirs, NULL);

    pd_resp r = expect(200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), mine);
    cr_assert_eq(item_num(&r, 0, "user_id"), admin_num, "%s", r.body);
    pd_resp_free(&r);
    r = expect_key(mkey, 200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), theirs);
    cr_assert_eq(item_num(&r, 0, "user_id"), member_num, "%s", r.body);
    pd_resp_free(&r);

    snprintf(path, sizeof path, "/api/v1/prompts/history?user_id=%s", mid);
    r = expect(200, "GET", path, NULL); /* an admin may */
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), theirs);
    pd_resp_free(&r);
    r = expect_key(mkey, 200, "GET", path, NULL); /* naming oneself is fine */
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?user_id=all", NULL);
    cr_assert_eq(items_count(&r), 2, "%s", r.body);
    pd_resp_free(&r);

    /* a member asking for someone else: 404, existing or not */
    snprintf(path, sizeof path, "/api/v1/prompts/history?user_id=%s", admin_id);
    r = call(other_mkey, "GET", path, NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/prompts/history?user_id=%s", mid);
    r = call(other_mkey, "GET", path, NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
    r = call(other_mkey, "GET", "/api/v1/prompts/history?user_id=all", NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
    /* an admin naming a user of another organization: 404 */
    char okey[128], oid[64];
    cr_assert_eq(pd_new_org_key(&S, "elsewhere", okey, sizeof okey), 0);
    my_user_id(okey, oid);
    snprintf(path, sizeof path, "/api/v1/prompts/history?user_id=%s", oid);
    r = call(S.admin_key, "GET", path, NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);

    /* the prompt list is organization-wide and takes any user of it */
    r = expect_key(other_mkey, 200, "GET", "/api/v1/prompts", NULL);
    cr_assert_eq(items_count(&r), 2, "%s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/prompts?user_id=%s", mid);
    r = expect_key(other_mkey, 200, "GET", path, NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), theirs);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- clearing */

Test(history, delete_clears_only_the_callers_executions)
{
    char mid[64], mkey[128], a[64], b[64], path[128];
    make_member("m@example.com", mid, mkey);
    make_prompt(S.admin_key, "Shared", "s", NULL, a);
    make_prompt(mkey, "Member only", "m", NULL, b);
    run_ok(S.admin_key, a, NULL);
    run_ok(S.admin_key, a, NULL);
    char member_exec[64];
    run_ok(mkey, a, member_exec); /* the member ran the admin's prompt last */
    run_ok(mkey, b, NULL);

    pd_resp r = expect(200, "DELETE", "/api/v1/prompts/history", NULL);
    cr_assert(json_is_true(pd_json_at(r.json, "success")), "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "message"), "Prompt history cleared successfully");
    cr_assert_eq(pd_int_at(r.json, "data.deleted", -1), 2, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.prompts_deleted", -1), 0, "stored prompts stay: %s", r.body);
    pd_resp_free(&r);

    /* the admin's history is empty; their stored prompt stays, with the member's run */
    r = expect(200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 0, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.pagination.total_items", -1), 0, "%s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/executions", a);
    pd_resp e;
    cr_assert_eq(pd_req(&S, "GET", path, S.admin_key, NULL, NULL, &e), 0);
    cr_assert_eq(pd_int_at(e.json, "meta.totalRecords", -1), 1, "%s", e.body);
    cr_assert_str_eq(pd_str_at(e.json, "data.0.id"), member_exec, "%s", e.body);
    pd_resp_free(&e);
    /* the member's history is untouched */
    r = expect_key(mkey, 200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), b);
    pd_resp_free(&r);

    /* the member clears theirs: the admin's prompt has no run left */
    r = expect_key(mkey, 200, "DELETE", "/api/v1/prompts/history", NULL);
    cr_assert_eq(pd_int_at(r.json, "data.deleted", -1), 2, "%s", r.body);
    pd_resp_free(&r);
    r = expect_key(mkey, 200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 0, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts?sort_by=name&sort_order=desc", NULL); /* not history: both stay */
    cr_assert_eq(items_count(&r), 2, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), a);
    cr_assert_str_eq(item_str(&r, 0, "status"), "draft", "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "DELETE", "/api/v1/prompts/history", NULL);
    cr_assert_eq(pd_int_at(r.json, "data.deleted", -1), 0, "%s", r.body);
    pd_resp_free(&r);
    /* a member may not clear someone else's, by UUID or number */
    char admin_id[64];
    long long admin_num = my_user_id(S.admin_key, admin_id);
    snprintf(path, sizeof path, "/api/v1/prompts/history?user_id=%s", admin_id);
    r = call(mkey, "DELETE", path, NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/prompts/history?user_id=%lld", admin_num);
    r = call(mkey, "DELETE", path, NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
    r = call(S.admin_key, "DELETE", "/api/v1/prompts/history?user_id=all", NULL);
    expect_v1_error(&r, 400, "BAD_REQUEST", "user_id");
    pd_resp_free(&r);
    r = call(S.admin_key, "DELETE", "/api/v1/prompts/history?user_id=0", NULL);
    expect_v1_error(&r, 400, "BAD_REQUEST", "user_id");
    pd_resp_free(&r);
}

/* A v1 submission; returns the prompt UUID it ran (data.prompt_id) into prompt_id. */
static void submit_v1(const char *key, const char *text, char prompt_id[64])
{
    char *body = pd_pack("{s:s}", "prompt", text);
    pd_resp r = expect_key(key, 200, "POST", "/api/v1/prompt", body);
    free(body);
    snprintf(prompt_id, 64, "%s", pd_str_at(r.json, "data.prompt_id") ? pd_str_at(r.json, "data.prompt_id") : "");
    pd_resp_free(&r);
}

static long jarvis_status(const char *key, const char *method, const char *path, const char *body)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, method, path, key, body, NULL, &r), 0, "%s", r.error);
    long st = r.status;
    pd_resp_free(&r);
    return st;
}

Test(history, clear_leaves_nothing_behind_and_keeps_stored_prompts)
{
    char mid[64], mkey[128], other[128], raw[64], adopted[64], stored[64], theirs[64], elsewhere[64], path[160];
    make_member("m@example.com", mid, mkey);
    cr_assert_eq(pd_new_org_key(&S, "other-org", other, sizeof other), 0);

    submit_v1(S.admin_key, "What were sales in March?", raw);
    submit_v1(S.admin_key, "Adopt me", adopted);
    make_prompt(S.admin_key, "Stored", "a stored prompt", NULL, stored);
    run_ok(S.admin_key, stored, NULL);
    submit_v1(mkey, "The member asks", theirs);
    submit_v1(other, "Another organization asks", elsewhere);
    cr_assert(*raw && *adopted && *theirs && *elsewhere);
    /* a raw prompt made a stored prompt (edited through the Jarvis API) is not v1's any more */
    snprintf(path, sizeof path, "/prompts/%s", adopted);
    cr_assert_eq(jarvis_status(S.admin_key, "PUT", path, "{\"prompt\": {\"name\": \"Adopted\"}}"), 200);

    pd_resp r = expect(200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 3, "%s", r.body);
    long long raw_num = -1;
    for (size_t i = 0; i < 3; i++)
        if (strcmp(item_str(&r, i, "uuid"), raw) == 0)
            raw_num = item_num(&r, i, "id");
    cr_assert_gt(raw_num, 0, "%s", r.body);
    pd_resp_free(&r);
    usleep(5 * 1000); /* the clear's time is after every row above */

    r = expect(200, "DELETE", "/api/v1/prompts/history", NULL);
    cr_assert_eq(pd_int_at(r.json, "data.deleted", -1), 3, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.prompts_deleted", -1), 1, "%s", r.body);
    pd_resp_free(&r);

    /* the caller's history is empty, in every view of it */
    const char *views[] = {"/api/v1/prompts/history",
                           "/api/v1/prompts/history?status=draft",
                           "/api/v1/prompts/history?status=completed",
                           "/api/v1/prompts/history?sort_by=status",
                           "/api/v1/prompts/history?sort_by=execution_time",
                           "/api/v1/prompts/history?search=sales"};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
        r = expect(200, "GET", views[i], NULL);
        cr_assert_eq(items_count(&r), 0, "%s: %s", views[i], r.body);
        cr_assert_eq(pd_int_at(r.json, "data.pagination.total_items", -1), 0, "%s: %s", views[i], r.body);
        pd_resp_free(&r);
    }
    /* and in an admin's view of everyone: only the member's row */
    r = expect(200, "GET", "/api/v1/prompts/history?user_id=all", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), theirs);
    pd_resp_free(&r);

    /* what v1 made is gone; stored prompts stay (they are not history) */
    snprintf(path, sizeof path, "/prompts/%s", raw);
    cr_assert_eq(jarvis_status(S.admin_key, "GET", path, NULL), 404, "the v1 prompt stays behind");
    snprintf(path, sizeof path, "/prompts/%s", stored);
    cr_assert_eq(jarvis_status(S.admin_key, "GET", path, NULL), 200, "the stored prompt went");
    snprintf(path, sizeof path, "/prompts/%s", adopted);
    cr_assert_eq(jarvis_status(S.admin_key, "GET", path, NULL), 200, "the adopted prompt went");
    r = expect(200, "GET", "/api/v1/prompts?user_id=me", NULL);
    cr_assert_eq(items_count(&r), 2, "%s", r.body);
    cr_assert(page_has(&r, stored) && page_has(&r, adopted) && !page_has(&r, raw), "%s", r.body);
    pd_resp_free(&r);
    char me[64];
    long long me_num = my_user_id(S.admin_key, me);
    snprintf(path, sizeof path, "/api/v1/sessions/%lld", me_num);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "data.total", -1), 0, "%s", r.body);
    pd_resp_free(&r);

    /* another user's and another organization's history are untouched */
    r = expect_key(mkey, 200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), theirs);
    pd_resp_free(&r);
    r = expect_key(other, 200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), elsewhere);
    pd_resp_free(&r);

    /* what happens after the clear is history again; a number is never given twice */
    char again[64], fresh[64];
    submit_v1(S.admin_key, "What were sales in March?", again);
    cr_assert_str_neq(again, raw, "the deleted prompt came back");
    make_prompt(S.admin_key, "Fresh draft", "new", NULL, fresh);
    run_ok(S.admin_key, stored, NULL);
    r = expect(200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 3, "%s", r.body);
    cr_assert(page_has(&r, again) && page_has(&r, fresh) && page_has(&r, stored), "%s", r.body);
    for (size_t i = 0; i < 3; i++)
        if (strcmp(item_str(&r, i, "uuid"), again) == 0)
            cr_assert_gt(item_num(&r, i, "id"), raw_num, "number reused: %s", r.body);
    pd_resp_free(&r);

    /* an admin may clear a member's history, naming them by number */
    long long mnum = my_user_id(mkey, mid);
    snprintf(path, sizeof path, "/api/v1/prompts/history?user_id=%lld", mnum);
    r = expect(200, "DELETE", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "data.deleted", -1), 1, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.prompts_deleted", -1), 1, "%s", r.body);
    pd_resp_free(&r);
    r = expect_key(mkey, 200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 0, "%s", r.body);
    pd_resp_free(&r);
    /* an admin naming a user of another organization by number: 404, nothing cleared */
    char oid[64];
    long long onum = my_user_id(other, oid);
    (void)onum;
    r = call(S.admin_key, "DELETE", "/api/v1/prompts/history?user_id=999", NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/prompts/history?user_id=%s", oid);
    r = call(S.admin_key, "DELETE", path, NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
    r = expect_key(other, 200, "GET", "/api/v1/prompts/history", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- the prompt list */

Test(history, prompt_list_has_the_documented_fields_and_filters)
{
    char w[64], d[64], p[64], q[64], body[256];
    make_v1(S.admin_key, "/api/v1/workspaces", "{\"name\": \"W\"}", w);
    long long dn = make_v1(S.admin_key, "/api/v1/data-sources", "{\"name\": \"D\", \"type\": \"csv\"}", d);
    snprintf(body, sizeof body, "{\"workspace_id\": \"%s\", \"data_source_ids\": [\"%s\"], \"tags\": [\"q4\"]}", w, d);
    make_prompt(S.admin_key, "Beta", "second", body, p);
    make_prompt(S.admin_key, "Alpha", "first", NULL, q);
    pd_resp r = expect(200, "GET", "/api/v1/prompts?sort_by=name&sort_order=asc", NULL);
    cr_assert_str_eq(pd_str_at(r.json, "message"), "Prompts retrieved successfully");
    cr_assert_eq(items_count(&r), 2, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), q);
    cr_assert_str_eq(item_str(&r, 1, "uuid"), p);
    json_t *it = pd_json_at(r.json, "data.items.1");
    const char *fields[] = {
        "id",      "name",         "prompt_text", "status",      "execution_time_ms", "timestamp", "data_source_ids",
        "user_id", "workspace_id", "tags",        "description", "created_at",        NULL};
    for (int i = 0; fields[i]; i++)
        cr_assert_not_null(json_object_get(it, fields[i]), "item lacks %s: %s", fields[i], r.body);
    cr_assert_str_eq(pd_str_at(it, "tags.0"), "q4");
    cr_assert_eq(pd_int_at(it, "data_source_ids.0", -1), dn, "%s", r.body);
    pd_resp_free(&r);
    char path[160];
    snprintf(path, sizeof path, "/api/v1/prompts?workspace_id=%s&search=second&status=draft", w);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.pagination.total_items", -1), 1);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- Jarvis prompt links */

Test(history, jarvis_prompts_carry_workspace_data_sources_and_tags)
{
    char w[64], d1[64], d2[64], p[64], body[512], path[128];
    make_v1(S.admin_key, "/api/v1/workspaces", "{\"name\": \"W\"}", w);
    make_v1(S.admin_key, "/api/v1/data-sources", "{\"name\": \"D1\", \"type\": \"csv\"}", d1);
    make_v1(S.admin_key, "/api/v1/data-sources", "{\"name\": \"D2\", \"type\": \"csv\"}", d2);
    snprintf(body, sizeof body,
             "{\"workspace_id\": \"%s\", \"data_source_ids\": [\"%s\"], \"tags\": [\"a\", \"a\", \"b\"]}", w, d1);
    make_prompt(S.admin_key, "Linked", "x", body, p);
    snprintf(path, sizeof path, "/prompts/%s", p);
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", path, S.admin_key, NULL, NULL, &r), 0);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.workspace_id"), w, "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data.attributes.tags")), 2, "duplicates dropped: %s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.data_source_ids.0"), d1);
    pd_resp_free(&r);

    /* update: replace the data sources, clear the workspace, keep the tags */
    snprintf(body, sizeof body, "{\"prompt\": {\"workspace_id\": null, \"data_source_ids\": [\"%s\", \"%s\"]}}", d1,
             d2);
    cr_assert_eq(pd_req(&S, "PUT", path, S.admin_key, body, NULL, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(json_is_null(pd_json_at(r.json, "data.attributes.workspace_id")), "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data.attributes.data_source_ids")), 2, "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data.attributes.tags")), 2, "%s", r.body);
    pd_resp_free(&r);

    /* a data source deleted goes from the prompt; a workspace deleted detaches it */
    char dpath[128];
    snprintf(dpath, sizeof dpath, "/api/v1/data-sources/%s", d2);
    r = expect(200, "DELETE", dpath, NULL);
    pd_resp_free(&r);
    cr_assert_eq(pd_req(&S, "GET", path, S.admin_key, NULL, NULL, &r), 0);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data.attributes.data_source_ids")), 1, "%s", r.body);
    pd_resp_free(&r);

    /* bad links: 422 naming the field */
    char other[128], ow[64];
    cr_assert_eq(pd_new_org_key(&S, "other", other, sizeof other), 0);
    make_v1(other, "/api/v1/workspaces", "{\"name\": \"Theirs\"}", ow);
    const struct {
        const char *links, *field;
    } bad[] = {
        {"\"workspace_id\": 7", "/prompt/workspace_id"},
        {"\"workspace_id\": \"nope\"", "/prompt/workspace_id"},
        {"\"workspace_id\": \"01234567-89ab-7cde-8f01-23456789abcd\"", "/prompt/workspace_id"},
        {"\"data_source_ids\": \"x\"", "/prompt/data_source_ids"},
        {"\"data_source_ids\": [999]", "/prompt/data_source_ids"},
        {"\"data_source_ids\": [0]", "/prompt/data_source_ids"},
        {"\"data_source_ids\": [-1]", "/prompt/data_source_ids"},
        {"\"data_source_ids\": [1.5]", "/prompt/data_source_ids"},
        {"\"data_source_ids\": [9007199254740992]", "/prompt/data_source_ids"},
        {"\"workspace_id\": 0", "/prompt/workspace_id"},
        {"\"workspace_id\": \"-1\"", "/prompt/workspace_id"},
        {"\"data_source_ids\": [\"01234567-89ab-7cde-8f01-23456789abcd\"]", "/prompt/data_source_ids"},
        {"\"tags\": \"x\"", "/prompt/tags"},
        {"\"tags\": [\"\"]", "/prompt/tags"},
        {"\"tags\": [3]", "/prompt/tags"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body, "{\"prompt\": {\"name\": \"n\", \"content\": \"c\", %s}}", bad[i].links);
        cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key, body, NULL, &r), 0);
        cr_assert_eq(r.status, 422, "%s: %s", bad[i].links, r.body);
        cr_assert_str_eq(pd_str_at(r.json, "errors.0.source.pointer"), bad[i].field, "%s", r.body);
        pd_resp_free(&r);
    }
    snprintf(body, sizeof body, "{\"prompt\": {\"workspace_id\": \"%s\"}}", ow);
    cr_assert_eq(pd_req(&S, "PUT", path, S.admin_key, body, NULL, &r), 0);
    cr_assert_eq(r.status, 422, "another organization's workspace: %s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- failures and durations (mock) */

Test(history_mock, failed_status_and_execution_time_sort)
{
    char ok[64], slow[64], bad[64];
    make_prompt(S.admin_key, "Quick", "quick", NULL, ok);
    make_prompt(S.admin_key, "Slow", "slow [mock:latency=400]", NULL, slow);
    make_prompt(S.admin_key, "Broken", "boom [mock:status=500]", NULL, bad);
    cr_assert_eq(run_prompt(S.admin_key, ok, "mock/m", NULL), 200);
    cr_assert_eq(run_prompt(S.admin_key, slow, "mock/m", NULL), 200);
    long st = run_prompt(S.admin_key, bad, "mock/m", NULL);
    cr_assert(st >= 500, "a failing provider: %ld", st);

    pd_resp r = expect(200, "GET", "/api/v1/prompts/history?status=failed", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), bad);
    cr_assert_str_eq(item_str(&r, 0, "status"), "failed");
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?sort_by=execution_time", NULL);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), slow, "%s", r.body);
    cr_assert_geq(pd_int_at(r.json, "data.items.0.execution_time_ms", 0), 400, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?sort_by=execution_time&sort_order=asc&status=completed", NULL);
    cr_assert_eq(items_count(&r), 2, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 1, "uuid"), slow, "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- integer ids both ways */

static void expect_same_body(const char *a, const char *b)
{
    pd_resp x = expect(200, "GET", a, NULL), y = expect(200, "GET", b, NULL);
    cr_assert_str_eq(x.body, y.body, "GET %s and GET %s differ", a, b);
    pd_resp_free(&x);
    pd_resp_free(&y);
}

Test(history, integer_ids_are_answered_and_taken_everywhere)
{
    char w1[64], w2[64], d1[64], d2[64], a[64], b[64], me[64], body[512], path[256];
    cr_assert_eq(make_v1(S.admin_key, "/api/v1/workspaces", "{\"name\": \"W1\"}", w1), 1);
    cr_assert_eq(make_v1(S.admin_key, "/api/v1/workspaces", "{\"name\": \"W2\"}", w2), 2);
    cr_assert_eq(make_v1(S.admin_key, "/api/v1/data-sources", "{\"name\": \"D1\", \"type\": \"csv\"}", d1), 1);
    /* a body may name the workspace by number */
    cr_assert_eq(
        make_v1(S.admin_key, "/api/v1/data-sources", "{\"name\": \"D2\", \"type\": \"csv\", \"workspace_id\": 2}", d2),
        2);
    long long me_num = my_user_id(S.admin_key, me);

    /* the Jarvis surface takes numbers in bodies and keeps answering UUIDs */
    snprintf(body, sizeof body, "{\"workspace_id\": 1, \"data_source_ids\": [1, \"%s\", 2]}", d2);
    make_prompt(S.admin_key, "Alpha", "first", body, a);
    make_prompt(S.admin_key, "Beta", "second", "{\"workspace_id\": \"2\", \"data_source_ids\": [\"2\"]}", b);
    snprintf(path, sizeof path, "/prompts/%s", a);
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", path, S.admin_key, NULL, NULL, &r), 0);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.workspace_id"), w1, "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data.attributes.data_source_ids")), 2, "%s", r.body);
    cr_assert_not_null(pd_str_at(r.json, "data.attributes.data_source_ids.0"), "Jarvis ids stay UUIDs: %s", r.body);
    cr_assert(json_is_string(pd_json_at(r.json, "data.id")), "%s", r.body);
    pd_resp_free(&r);

    /* the history answers numbers where the document shows them */
    r = expect(200, "GET", "/api/v1/prompts/history?sort_by=timestamp&sort_order=asc", NULL);
    cr_assert_eq(items_count(&r), 2, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), a);
    long long a_num = item_num(&r, 0, "id"), b_num = item_num(&r, 1, "id");
    cr_assert(a_num > 0 && b_num > a_num, "prompt numbers %lld %lld: %s", a_num, b_num, r.body);
    cr_assert_eq(item_num(&r, 0, "user_id"), me_num);
    cr_assert_eq(item_num(&r, 0, "workspace_id"), 1);
    cr_assert_eq(item_num(&r, 1, "workspace_id"), 2);
    cr_assert_eq(pd_int_at(r.json, "data.items.0.data_source_ids.0", -1), 1, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.items.0.data_source_ids.1", -1), 2, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.items.1.data_source_ids.0", -1), 2, "%s", r.body);
    pd_resp_free(&r);

    /* the document's own filters: workspace_id=1, data_source_id=2, user_id=<number> */
    r = expect(200, "GET", "/api/v1/prompts/history?workspace_id=1", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), a);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?data_source_id=2", NULL);
    cr_assert_eq(items_count(&r), 2, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts/history?data_source_id=1", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/prompts/history?user_id=%lld&workspace_id=2", me_num);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 0, "uuid"), b);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts?workspace_id=2&data_source_id=2", NULL);
    cr_assert_eq(items_count(&r), 1, "%s", r.body);
    pd_resp_free(&r);
    /* either form gives the same answer */
    char u1[300], u2[300];
    snprintf(u1, sizeof u1, "/api/v1/prompts/history?workspace_id=%s&data_source_id=%s&user_id=%s", w2, d2, me);
    snprintf(u2, sizeof u2, "/api/v1/prompts/history?workspace_id=2&data_source_id=2&user_id=%lld", me_num);
    expect_same_body(u1, u2);
    snprintf(u1, sizeof u1, "/api/v1/workspaces/%s", w1);
    expect_same_body(u1, "/api/v1/workspaces/1");
    snprintf(u1, sizeof u1, "/api/v1/data-sources/%s", d2);
    expect_same_body(u1, "/api/v1/data-sources/2");
    snprintf(u1, sizeof u1, "/api/v1/users/%s", me);
    snprintf(u2, sizeof u2, "/api/v1/users/%lld", me_num);
    expect_same_body(u1, u2);
    /* numbers nobody has: 404 */
    const char *unknown[] = {"/api/v1/prompts/history?workspace_id=3",
                             "/api/v1/prompts/history?data_source_id=99",
                             "/api/v1/prompts/history?user_id=99",
                             "/api/v1/prompts?user_id=99",
                             "/api/v1/workspaces/3",
                             "/api/v1/data-sources/3",
                             "/api/v1/users/99",
                             "/api/v1/sessions/99",
                             "/api/v1/data-sources?workspace_id=3"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        r = call(S.admin_key, "GET", unknown[i], NULL);
        expect_v1_error(&r, 404, "NOT_FOUND", NULL);
        pd_resp_free(&r);
    }
    /* bad numbers in paths: 400 naming the parameter */
    const char *bad_paths[] = {"/api/v1/workspaces/0", "/api/v1/data-sources/-2", "/api/v1/users/1e3",
                               "/api/v1/workspaces/9007199254740992", "/api/v1/sessions/0"};
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
        r = call(S.admin_key, "GET", bad_paths[i], NULL);
        expect_v1_error(&r, 400, "BAD_REQUEST", strstr(bad_paths[i], "sessions") ? "user_id" : "id");
        pd_resp_free(&r);
    }
    /* bad numbers in bodies: 422 naming the field, nothing created */
    const char *bad_bodies[] = {"{\"name\": \"x\", \"type\": \"csv\", \"workspace_id\": 0}",
                                "{\"name\": \"x\", \"type\": \"csv\", \"workspace_id\": -4}",
                                "{\"name\": \"x\", \"type\": \"csv\", \"workspace_id\": 1.0}",
                                "{\"name\": \"x\", \"type\": \"csv\", \"workspace_id\": 9007199254740992}",
                                "{\"name\": \"x\", \"type\": \"csv\", \"workspace_id\": \"two\"}",
                                "{\"name\": \"x\", \"type\": \"csv\", \"workspace_id\": true}",
                                "{\"name\": \"x\", \"type\": \"csv\", \"workspace_id\": 77}"};
    for (size_t i = 0; i < sizeof bad_bodies / sizeof bad_bodies[0]; i++) {
        r = call(S.admin_key, "POST", "/api/v1/data-sources", bad_bodies[i]);
        expect_v1_error(&r, 422, "VALIDATION_ERROR", "workspace_id");
        pd_resp_free(&r);
    }
    r = expect(200, "GET", "/api/v1/data-sources", NULL);
    cr_assert_eq(pd_int_at(r.json, "data.pagination.total_items", -1), 2, "%s", r.body);
    pd_resp_free(&r);
    /* a data source moves between workspaces by number */
    r = expect(200, "PATCH", "/api/v1/data-sources/1", "{\"workspace_id\": 2}");
    cr_assert_eq(pd_int_at(r.json, "data.workspace_id", -1), 2, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.id", -1), 1, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.uuid"), d1, "%s", r.body);
    pd_resp_free(&r);

    /* a v1 submission, a validation and a batch name a stored prompt by number */
    snprintf(body, sizeof body, "{\"prompt_id\": %lld}", a_num);
    r = expect(200, "POST", "/api/v1/prompt", body);
    cr_assert_str_eq(pd_str_at(r.json, "data.prompt_id"), a, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.output"), "first", "%s", r.body);
    pd_resp_free(&r);
    snprintf(body, sizeof body, "{\"prompt_id\": \"%lld\", \"async\": true}", b_num);
    r = expect(202, "POST", "/api/v1/prompt", body);
    cr_assert_str_eq(pd_str_at(r.json, "data.prompt_id"), b, "%s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/validate?prompt_id=%lld", a_num);
    r = expect(200, "GET", path, NULL);
    cr_assert(json_is_true(pd_json_at(r.json, "data.valid")), "%s", r.body);
    pd_resp_free(&r);
    snprintf(body, sizeof body, "{\"prompts\": [{\"prompt_id\": %lld}, {\"prompt_id\": \"%s\"}]}", a_num, b);
    r = expect(202, "POST", "/api/v1/prompts/batch", body);
    pd_resp_free(&r);
    const struct {
        const char *body, *code;
    } bad_refs[] = {{"{\"prompt_id\": 0}", "INVALID_TYPE"},   {"{\"prompt_id\": -1}", "INVALID_TYPE"},
                    {"{\"prompt_id\": 2.5}", "INVALID_TYPE"}, {"{\"prompt_id\": \"abc\"}", "INVALID_TYPE"},
                    {"{\"prompt_id\": 99999}", "NOT_FOUND"},  {"{\"prompt_id\": 9007199254740992}", "INVALID_TYPE"}};
    for (size_t i = 0; i < sizeof bad_refs / sizeof bad_refs[0]; i++) {
        r = call(S.admin_key, "POST", "/api/v1/prompt", bad_refs[i].body);
        cr_assert_eq(r.status, 400, "%s: %s", bad_refs[i].body, r.body);
        cr_assert_str_eq(pd_str_at(r.json, "error.details.0.field"), "prompt_id", "%s: %s", bad_refs[i].body, r.body);
        cr_assert_str_eq(pd_str_at(r.json, "error.details.0.code"), bad_refs[i].code, "%s: %s", bad_refs[i].body,
                         r.body);
        pd_resp_free(&r);
    }

    /* a deleted number is never given again */
    r = expect(200, "DELETE", "/api/v1/workspaces/2", NULL);
    cr_assert_eq(pd_int_at(r.json, "data.id", -1), 2, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.uuid"), w2, "%s", r.body);
    pd_resp_free(&r);
    char w3[64];
    cr_assert_eq(make_v1(S.admin_key, "/api/v1/workspaces", "{\"name\": \"W3\"}", w3), 3);
    r = call(S.admin_key, "GET", "/api/v1/workspaces/2", NULL);
    expect_v1_error(&r, 404, "NOT_FOUND", NULL);
    pd_resp_free(&r);
    /* the prompt of the deleted workspace answers workspace_id null */
    r = expect(200, "GET", "/api/v1/prompts/history?data_source_id=2&sort_by=timestamp&sort_order=asc", NULL);
    cr_assert_eq(items_count(&r), 2, "%s", r.body);
    cr_assert_str_eq(item_str(&r, 1, "uuid"), b, "%s", r.body);
    cr_assert(json_is_null(pd_json_at(r.json, "data.items.1.workspace_id")), "%s", r.body);
    cr_assert_eq(item_num(&r, 0, "workspace_id"), 1, "%s", r.body);
    pd_resp_free(&r);
}

/* Rows that exist when migration 0008 runs are numbered in creation order. */
Test(history, existing_rows_are_numbered_in_creation_order)
{
    char w[3][64], p[3][64], u[64], key[128];
    const char *names[] = {"First", "Second", "Third"};
    for (int i = 0; i < 3; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"name\": \"%s\"}", names[i]);
        make_v1(S.admin_key, "/api/v1/workspaces", body, w[i]);
        make_prompt(S.admin_key, names[i], "text", NULL, p[i]);
    }
    make_member("later@example.com", u, key);
    /* back to a database of schema 7, as an older promptd left it: no numbers, no counters; and made in
     * another order than inserted (the third workspace and prompt first). The migrations after 0008
     * are undone too, since all of them run again (0009 rebuilds idempotency_keys whatever it holds). */
    cr_assert_eq(pd_kill_wait(&S, SIGTERM, 10000), 0);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(S.db_path, &db), SQLITE_OK);
    const char *undo = "DROP TRIGGER users_num_ai; DROP TRIGGER workspaces_num_ai; DROP TRIGGER data_sources_num_ai;"
                       "DROP TRIGGER prompts_num_ai; DROP INDEX users_org_num; DROP INDEX workspaces_org_num;"
                       "DROP INDEX data_sources_org_num; DROP INDEX prompts_org_num; DROP TABLE org_counters;"
                       "ALTER TABLE users DROP COLUMN num; ALTER TABLE users DROP COLUMN history_cleared_at;"
                       "ALTER TABLE workspaces DROP COLUMN num; ALTER TABLE data_sources DROP COLUMN num;"
                       "ALTER TABLE prompts DROP COLUMN num; DROP TABLE rate_hits;"
                       "DROP INDEX users_idp_identity; ALTER TABLE users DROP COLUMN idp_issuer;"
                       "ALTER TABLE users DROP COLUMN idp_subject;"
                       "UPDATE workspaces SET created_at = created_at - 100000 WHERE name = 'Third';"
                       "UPDATE prompts SET created_at = created_at - 100000 WHERE name = 'Third';"
                       "PRAGMA user_version = 7;";
    cr_assert_eq(sqlite3_exec(db, undo, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    cr_assert_eq(pd_restart(&S, NULL, NULL), 0, "promptd did not restart");

    pd_resp r = expect(200, "GET", "/api/v1/workspaces", NULL); /* oldest first */
    const char *order[] = {"Third", "First", "Second"};
    for (int i = 0; i < 3; i++) {
        char at[64];
        snprintf(at, sizeof at, "data.items.%d.name", i);
        cr_assert_str_eq(pd_str_at(r.json, at), order[i], "%s", r.body);
        cr_assert_eq(item_num(&r, (size_t)i, "id"), i + 1, "%s", r.body);
    }
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/prompts?sort_by=created_at&sort_order=asc", NULL);
    for (int i = 0; i < 3; i++) {
        char at[64];
        snprintf(at, sizeof at, "data.items.%d.name", i);
        cr_assert_str_eq(pd_str_at(r.json, at), order[i], "%s", r.body);
        cr_assert_eq(item_num(&r, (size_t)i, "id"), i + 1, "%s", r.body);
    }
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/users", NULL);
    cr_assert_eq(item_num(&r, 0, "id"), 1, "the bootstrap admin: %s", r.body);
    cr_assert_eq(item_num(&r, 1, "id"), 2, "%s", r.body);
    pd_resp_free(&r);
    /* new rows go on from there */
    char w4[64], p4[64];
    cr_assert_eq(make_v1(S.admin_key, "/api/v1/workspaces", "{\"name\": \"Fourth\"}", w4), 4);
    make_prompt(S.admin_key, "Fourth", "text", NULL, p4);
    r = expect(200, "GET", "/api/v1/prompts?sort_by=created_at&sort_order=desc&page_size=1", NULL);
    cr_assert_eq(item_num(&r, 0, "id"), 4, "%s", r.body);
    pd_resp_free(&r);
}
