/*
 * test_v1_resources.c — the organization resources behind spec 002's filters,
 * over HTTP: /api/v1/workspaces, /api/v1/data-sources and /api/v1/users
 * (create 201, list with the pagination object, get, PUT/PATCH, delete),
 * their rules (unique names and emails 409, the last admin 409, members read
 * but do not change 403, a deleted user's keys stop working), bad input (400,
 * 422 naming the field) and other organizations' ids (404).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/harness.h"

static pd_server S;

static void setup(void) { cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start"); }
static void teardown(void) { pd_stop(&S); }

TestSuite(resources, .init = setup, .fini = teardown, .timeout = 60);

/* ---------------------------------------------------------------- helpers */

static pd_resp call(const char *key, const char *method, const char *path, const char *body)
{
    pd_resp r;
    char bearer[160];
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", key ? key : "");
    const char *hdr[] = {bearer, NULL};
    cr_assert_eq(pd_req(&S, method, path, NULL, body, key ? hdr : NULL, &r), 0, "%s %s: %s", method, path, r.error);
    return r;
}

static pd_resp expect_key(const char *key, long status, const char *method, const char *path, const char *body)
{
    pd_resp r = call(key, method, path, body);
    cr_assert_eq(r.status, status, "%s %s: want %ld, got %ld: %s", method, path, status, r.status, r.body);
    if (status < 300)
        cr_assert(json_is_true(pd_json_at(r.json, "success")), "%s", r.body);
    return r;
}

static pd_resp expect(long status, const char *method, const char *path, const char *body)
{
    return expect_key(S.admin_key, status, method, path, body);
}

/* An error in the v1 envelope with this status, code and (if not NULL) field. */
static void expect_error_key(const char *key, long status, const char *code, const char *field, const char *method,
                             const char *path, const char *body)
{
    pd_resp r = call(key, method, path, body);
    cr_assert_eq(r.status, status, "%s %s: want %ld, got %ld: %s", method, path, status, r.status, r.body);
    cr_assert(json_is_false(pd_json_at(r.json, "success")), "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "error.code"), code, "%s %s: %s", method, path, r.body);
    cr_assert_not_null(pd_str_at(r.json, "message"), "%s", r.body);
    if (field)
        cr_assert_str_eq(pd_str_at(r.json, "error.field"), field, "%s %s: %s", method, path, r.body);
    pd_resp_free(&r);
}

static void expect_error(long status, const char *code, const char *field, const char *method, const char *path,
                         const char *body)
{
    expect_error_key(S.admin_key, status, code, field, method, path, body);
}

/* An integer member as text (a thread-local buffer), NULL when it is not an integer. */
static const char *num_at(const json_t *root, const char *path)
{
    static _Thread_local char buf[8][32];
    static _Thread_local int next;
    json_t *v = pd_json_at(root, path);
    if (!json_is_integer(v))
        return NULL;
    char *b = buf[next++ % 8];
    snprintf(b, 32, "%lld", (long long)json_integer_value(v));
    return b;
}

/* Create; the number (data.id, as text) into id and the UUID (data.uuid) into uuid (may be NULL). */
static void make2(const char *key, const char *path, const char *body, char id[64], char uuid[64])
{
    pd_resp r = expect_key(key, 201, "POST", path, body);
    cr_assert_not_null(num_at(r.json, "data.id"), "the id is a number: %s", r.body);
    snprintf(id, 64, "%s", num_at(r.json, "data.id"));
    const char *u = pd_str_at(r.json, "data.uuid");
    cr_assert(u && strlen(u) == 36 && u[8] == '-', "uuid: %s", r.body);
    if (uuid)
        snprintf(uuid, 64, "%s", u);
    const char *loc = pd_header(&r, "Location"), *slash = loc ? strrchr(loc, '/') : NULL;
    cr_assert(slash && strcmp(slash + 1, id) == 0, "Location: %s", loc ? loc : "(none)");
    pd_resp_free(&r);
}

static void make(const char *key, const char *path, const char *body, char id[64]) { make2(key, path, body, id, NULL); }

static void make_member(const char *email, char user_id[64], char key[128])
{
    char body[256], path[128];
    snprintf(body, sizeof body, "{\"email\": \"%s\"}", email);
    make(S.admin_key, "/api/v1/users", body, user_id);
    snprintf(path, sizeof path, "/api/v1/users/%s/api-keys", user_id);
    pd_resp r = expect(201, "POST", path, NULL);
    snprintf(key, 128, "%s", pd_str_at(r.json, "data.key"));
    pd_resp_free(&r);
}

static void check_pagination(const pd_resp *r, long page, long page_size, long total, long pages)
{
    cr_assert_eq(pd_int_at(r->json, "data.pagination.page", -1), page, "%s", r->body);
    cr_assert_eq(pd_int_at(r->json, "data.pagination.page_size", -1), page_size, "%s", r->body);
    cr_assert_eq(pd_int_at(r->json, "data.pagination.total_items", -1), total, "%s", r->body);
    cr_assert_eq(pd_int_at(r->json, "data.pagination.total_pages", -1), pages, "%s", r->body);
}

#define NO_SUCH_ID "01234567-89ab-7cde-8f01-23456789abcd"

/* ---------------------------------------------------------------- workspaces */

Test(resources, workspace_crud)
{
    char w[64], path[128];
    make(S.admin_key, "/api/v1/workspaces", "{\"name\": \"Sales\", \"description\": \"the sales team\"}", w);
    snprintf(path, sizeof path, "/api/v1/workspaces/%s", w);
    pd_resp r = expect(200, "GET", path, NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.name"), "Sales");
    cr_assert_str_eq(pd_str_at(r.json, "data.description"), "the sales team");
    cr_assert_eq(pd_int_at(r.json, "data.prompts_count", -1), 0);
    cr_assert_not_null(pd_str_at(r.json, "data.created_at"));
    pd_resp_free(&r);

    r = expect(200, "PUT", path, "{\"name\": \"Sales EMEA\"}");
    cr_assert_str_eq(pd_str_at(r.json, "data.name"), "Sales EMEA");
    cr_assert_str_eq(pd_str_at(r.json, "data.description"), "the sales team", "PUT keeps what it is not given");
    pd_resp_free(&r);
    r = expect(200, "PATCH", path, "{\"description\": \"\"}");
    cr_assert_str_eq(pd_str_at(r.json, "data.description"), "");
    pd_resp_free(&r);

    char w2[64];
    make(S.admin_key, "/api/v1/workspaces", "{\"name\": \"Ops\"}", w2);
    expect_error(409, "CONFLICT", "name", "POST", "/api/v1/workspaces", "{\"name\": \"Ops\"}");
    expect_error(409, "CONFLICT", "name", "PUT", path, "{\"name\": \"Ops\"}");

    r = expect(200, "GET", "/api/v1/workspaces?page=1&page_size=1", NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data.items")), 1, "%s", r.body);
    cr_assert_str_eq(num_at(r.json, "data.items.0.id"), w, "oldest first");
    check_pagination(&r, 1, 1, 2, 2);
    pd_resp_free(&r);
    r = expect(200, "GET", "/api/v1/workspaces", NULL);
    check_pagination(&r, 1, 20, 2, 1);
    pd_resp_free(&r);

    r = expect(200, "DELETE", path, NULL);
    cr_assert(json_is_true(pd_json_at(r.json, "data.deleted")), "%s", r.body);
    pd_resp_free(&r);
    expect_error(404, "NOT_FOUND", NULL, "GET", path, NULL);
    expect_error(404, "NOT_FOUND", NULL, "DELETE", path, NULL);
    expect_error(404, "NOT_FOUND", NULL, "PUT", path, "{\"name\": \"x\"}");
}

Test(resources, workspace_bad_input)
{
    expect_error(422, "VALIDATION_ERROR", "name", "POST", "/api/v1/workspaces", "{}");
    expect_error(422, "VALIDATION_ERROR", "name", "POST", "/api/v1/workspaces", "{\"name\": \"  \"}");
    expect_error(422, "VALIDATION_ERROR", "name", "POST", "/api/v1/workspaces", "{\"name\": 5}");
    expect_error(422, "VALIDATION_ERROR", "description", "POST", "/api/v1/workspaces",
                 "{\"name\": \"a\", \"description\": []}");
    expect_error(400, "BAD_REQUEST", NULL, "POST", "/api/v1/workspaces", "{\"name\": ");
    expect_error(422, "VALIDATION_ERROR", NULL, "POST", "/api/v1/workspaces", "[1]");
    expect_error(400, "BAD_REQUEST", "page_size", "GET", "/api/v1/workspaces?page_size=101", NULL);
    expect_error(400, "BAD_REQUEST", "page", "GET", "/api/v1/workspaces?page=0", NULL);
    expect_error(404, "NOT_FOUND", NULL, "GET", "/api/v1/workspaces/12", NULL);
    expect_error(404, "NOT_FOUND", NULL, "GET", "/api/v1/workspaces/" NO_SUCH_ID, NULL);
    char big[400];
    memset(big, 'x', sizeof big);
    char body[600];
    snprintf(body, sizeof body, "{\"name\": \"%.*s\"}", 300, big);
    expect_error(422, "VALIDATION_ERROR", "name", "POST", "/api/v1/workspaces", body);
}

Test(resources, workspace_of_another_organization_is_404)
{
    char other[128], w[64], path[128];
    cr_assert_eq(pd_new_org_key(&S, "other", other, sizeof other), 0);
    make(other, "/api/v1/workspaces", "{\"name\": \"Theirs\"}", w);
    snprintf(path, sizeof path, "/api/v1/workspaces/%s", w);
    expect_error(404, "NOT_FOUND", NULL, "GET", path, NULL);
    expect_error(404, "NOT_FOUND", NULL, "PUT", path, "{\"name\": \"Mine\"}");
    expect_error(404, "NOT_FOUND", NULL, "PATCH", path, "{\"name\": \"Mine\"}");
    expect_error(404, "NOT_FOUND", NULL, "DELETE", path, NULL);
    pd_resp r = expect(200, "GET", "/api/v1/workspaces", NULL);
    check_pagination(&r, 1, 20, 0, 0);
    pd_resp_free(&r);
    /* the same name is fine in another organization */
    char mine[64];
    make(S.admin_key, "/api/v1/workspaces", "{\"name\": \"Theirs\"}", mine);
    r = expect_key(other, 200, "GET", path, NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.name"), "Theirs");
    pd_resp_free(&r);
}

Test(resources, members_read_but_do_not_change)
{
    char mid[64], mkey[128], w[64], d[64], path[128];
    make_member("reader@example.com", mid, mkey);
    make(S.admin_key, "/api/v1/workspaces", "{\"name\": \"W\"}", w);
    make(S.admin_key, "/api/v1/data-sources", "{\"name\": \"D\", \"type\": \"csv\"}", d);
    pd_resp r = expect_key(mkey, 200, "GET", "/api/v1/workspaces", NULL);
    check_pagination(&r, 1, 20, 1, 1);
    pd_resp_free(&r);
    r = expect_key(mkey, 200, "GET", "/api/v1/data-sources", NULL);
    check_pagination(&r, 1, 20, 1, 1);
    pd_resp_free(&r);
    r = expect_key(mkey, 200, "GET", "/api/v1/users", NULL);
    check_pagination(&r, 1, 20, 2, 1);
    pd_resp_free(&r);
    expect_error_key(mkey, 403, "FORBIDDEN", NULL, "POST", "/api/v1/workspaces", "{\"name\": \"X\"}");
    snprintf(path, sizeof path, "/api/v1/workspaces/%s", w);
    expect_error_key(mkey, 403, "FORBIDDEN", NULL, "PUT", path, "{\"name\": \"X\"}");
    expect_error_key(mkey, 403, "FORBIDDEN", NULL, "DELETE", path, NULL);
    expect_error_key(mkey, 403, "FORBIDDEN", NULL, "POST", "/api/v1/data-sources",
                     "{\"name\": \"X\", \"type\": \"t\"}");
    snprintf(path, sizeof path, "/api/v1/data-sources/%s", d);
    expect_error_key(mkey, 403, "FORBIDDEN", NULL, "PATCH", path, "{\"name\": \"X\"}");
    expect_error_key(mkey, 403, "FORBIDDEN", NULL, "DELETE", path, NULL);
    expect_error_key(mkey, 403, "FORBIDDEN", NULL, "POST", "/api/v1/users", "{\"email\": \"x@example.com\"}");
    expect_error_key(NULL, 401, "UNAUTHORIZED", NULL, "GET", "/api/v1/workspaces", NULL);
    expect_error_key(NULL, 401, "UNAUTHORIZED", NULL, "GET", "/api/v1/data-sources", NULL);
    expect_error_key(NULL, 401, "UNAUTHORIZED", NULL, "GET", "/api/v1/users", NULL);
}

/* ---------------------------------------------------------------- data sources */

Test(resources, data_source_crud_and_workspaces)
{
    char w[64], d[64], d2[64], path[128], body[256];
    make(S.admin_key, "/api/v1/workspaces", "{\"name\": \"W\"}", w);
    snprintf(body, sizeof body, "{\"name\": \"crm\", \"type\": \"postgresql\", \"workspace_id\": \"%s\"}", w);
    make(S.admin_key, "/api/v1/data-sources", body, d);
    make(S.admin_key, "/api/v1/data-sources", "{\"name\": \"files\", \"type\": \"s3\", \"description\": \"raw\"}", d2);
    snprintf(path, sizeof path, "/api/v1/data-sources/%s", d);
    pd_resp r = expect(200, "GET", path, NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.name"), "crm");
    cr_assert_str_eq(pd_str_at(r.json, "data.type"), "postgresql");
    cr_assert_str_eq(num_at(r.json, "data.workspace_id"), w);
    pd_resp_free(&r);

    char wpath[160];
    snprintf(wpath, sizeof wpath, "/api/v1/data-sources?workspace_id=%s", w);
    r = expect(200, "GET", wpath, NULL);
    check_pagination(&r, 1, 20, 1, 1);
    cr_assert_str_eq(num_at(r.json, "data.items.0.id"), d);
    pd_resp_free(&r);
    snprintf(wpath, sizeof wpath, "/api/v1/workspaces/%s", w);
    r = expect(200, "GET", wpath, NULL);
    cr_assert_eq(pd_int_at(r.json, "data.data_sources_count", -1), 1, "%s", r.body);
    pd_resp_free(&r);

    r = expect(200, "PATCH", path, "{\"workspace_id\": null, \"type\": \"mysql\"}");
    cr_assert(json_is_null(pd_json_at(r.json, "data.workspace_id")), "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.type"), "mysql");
    cr_assert_str_eq(pd_str_at(r.json, "data.name"), "crm");
    pd_resp_free(&r);
    snprintf(body, sizeof body, "{\"workspace_id\": \"%s\"}", w);
    r = expect(200, "PUT", path, body);
    cr_assert_str_eq(num_at(r.json, "data.workspace_id"), w);
    pd_resp_free(&r);

    /* deleting the workspace detaches the data source */
    r = expect(200, "DELETE", wpath, NULL);
    pd_resp_free(&r);
    r = expect(200, "GET", path, NULL);
    cr_assert(json_is_null(pd_json_at(r.json, "data.workspace_id")), "%s", r.body);
    pd_resp_free(&r);

    expect_error(409, "CONFLICT", "name", "POST", "/api/v1/data-sources", "{\"name\": \"files\", \"type\": \"s3\"}");
    expect_error(409, "CONFLICT", "name", "PATCH", path, "{\"name\": \"files\"}");
    r = expect(200, "DELETE", path, NULL);
    pd_resp_free(&r);
    expect_error(404, "NOT_FOUND", NULL, "GET", path, NULL);
    r = expect(200, "GET", "/api/v1/data-sources", NULL);
    check_pagination(&r, 1, 20, 1, 1);
    pd_resp_free(&r);
}

Test(resources, data_source_bad_input_and_other_organizations)
{
    char other[128], ow[64], od[64], path[128], body[256];
    expect_error(422, "VALIDATION_ERROR", "name", "POST", "/api/v1/data-sources", "{\"type\": \"csv\"}");
    expect_error(422, "VALIDATION_ERROR", "type", "POST", "/api/v1/data-sources", "{\"name\": \"n\"}");
    expect_error(422, "VALIDATION_ERROR", "type", "POST", "/api/v1/data-sources", "{\"name\": \"n\", \"type\": 1}");
    expect_error(422, "VALIDATION_ERROR", "workspace_id", "POST", "/api/v1/data-sources",
                 "{\"name\": \"n\", \"type\": \"t\", \"workspace_id\": 3}");
    expect_error(422, "VALIDATION_ERROR", "workspace_id", "POST", "/api/v1/data-sources",
                 "{\"name\": \"n\", \"type\": \"t\", \"workspace_id\": \"" NO_SUCH_ID "\"}");
    expect_error(400, "BAD_REQUEST", "workspace_id", "GET", "/api/v1/data-sources?workspace_id=x", NULL);
    expect_error(404, "NOT_FOUND", NULL, "GET", "/api/v1/data-sources?workspace_id=" NO_SUCH_ID, NULL);

    cr_assert_eq(pd_new_org_key(&S, "other", other, sizeof other), 0);
    make(other, "/api/v1/workspaces", "{\"name\": \"W\"}", ow);
    make(other, "/api/v1/data-sources", "{\"name\": \"D\", \"type\": \"csv\"}", od);
    snprintf(body, sizeof body, "{\"name\": \"n\", \"type\": \"t\", \"workspace_id\": \"%s\"}", ow);
    expect_error(422, "VALIDATION_ERROR", "workspace_id", "POST", "/api/v1/data-sources", body);
    snprintf(path, sizeof path, "/api/v1/data-sources/%s", od);
    expect_error(404, "NOT_FOUND", NULL, "GET", path, NULL);
    expect_error(404, "NOT_FOUND", NULL, "PUT", path, "{\"name\": \"x\"}");
    expect_error(404, "NOT_FOUND", NULL, "DELETE", path, NULL);
    snprintf(path, sizeof path, "/api/v1/data-sources?workspace_id=%s", ow);
    expect_error(404, "NOT_FOUND", NULL, "GET", path, NULL);
    char mine[64];
    make(S.admin_key, "/api/v1/data-sources", "{\"name\": \"mine\", \"type\": \"csv\"}", mine);
    snprintf(path, sizeof path, "/api/v1/data-sources/%s", mine);
    snprintf(body, sizeof body, "{\"workspace_id\": \"%s\"}", ow);
    expect_error(422, "VALIDATION_ERROR", "workspace_id", "PUT", path, body);
}

/* ---------------------------------------------------------------- users */

Test(resources, user_crud)
{
    char u[64], path[128];
    make(S.admin_key, "/api/v1/users", "{\"email\": \"Ada@Example.com\", \"name\": \"Ada\"}", u);
    snprintf(path, sizeof path, "/api/v1/users/%s", u);
    pd_resp r = expect(200, "GET", path, NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.email"), "ada@example.com");
    cr_assert_str_eq(pd_str_at(r.json, "data.name"), "Ada");
    cr_assert_str_eq(pd_str_at(r.json, "data.role"), "member", "members by default");
    cr_assert_eq(pd_int_at(r.json, "data.api_keys_count", -1), 0);
    pd_resp_free(&r);
    expect_error(409, "CONFLICT", "email", "POST", "/api/v1/users", "{\"email\": \"ADA@example.com\"}");

    r = expect(200, "PUT", path, "{\"name\": \"Ada L.\", \"role\": \"admin\"}");
    cr_assert_str_eq(pd_str_at(r.json, "data.name"), "Ada L.");
    cr_assert_str_eq(pd_str_at(r.json, "data.role"), "admin");
    cr_assert_str_eq(pd_str_at(r.json, "data.email"), "ada@example.com");
    pd_resp_free(&r);
    r = expect(200, "PATCH", path, "{\"role\": \"member\"}");
    cr_assert_str_eq(pd_str_at(r.json, "data.role"), "member");
    pd_resp_free(&r);

    char u2[64];
    make(S.admin_key, "/api/v1/users", "{\"email\": \"bob@example.com\", \"role\": \"member\"}", u2);
    expect_error(409, "CONFLICT", "email", "PATCH", path, "{\"email\": \"bob@example.com\"}");
    r = expect(200, "GET", "/api/v1/users?page=2&page_size=2", NULL);
    check_pagination(&r, 2, 2, 3, 2);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data.items")), 1, "%s", r.body);
    pd_resp_free(&r);

    r = expect(200, "DELETE", path, NULL);
    pd_resp_free(&r);
    expect_error(404, "NOT_FOUND", NULL, "GET", path, NULL);
    expect_error(404, "NOT_FOUND", NULL, "DELETE", path, NULL);
    r = expect(200, "GET", "/api/v1/users", NULL);
    check_pagination(&r, 1, 20, 2, 1);
    pd_resp_free(&r);
}

Test(resources, user_bad_input)
{
    expect_error(422, "VALIDATION_ERROR", "email", "POST", "/api/v1/users", "{}");
    expect_error(422, "VALIDATION_ERROR", "email", "POST", "/api/v1/users", "{\"email\": \"not-an-email\"}");
    expect_error(422, "VALIDATION_ERROR", "email", "POST", "/api/v1/users", "{\"email\": \"a@b@c\"}");
    expect_error(422, "VALIDATION_ERROR", "email", "POST", "/api/v1/users", "{\"email\": 4}");
    expect_error(422, "VALIDATION_ERROR", "role", "POST", "/api/v1/users",
                 "{\"email\": \"x@example.com\", \"role\": \"owner\"}");
    expect_error(422, "VALIDATION_ERROR", "name", "POST", "/api/v1/users",
                 "{\"email\": \"x@example.com\", \"name\": false}");
    expect_error(400, "BAD_REQUEST", NULL, "POST", "/api/v1/users", "{");
    expect_error(400, "BAD_REQUEST", "page_size", "GET", "/api/v1/users?page_size=0", NULL);
    expect_error(404, "NOT_FOUND", NULL, "GET", "/api/v1/users/42", NULL);
    expect_error(404, "NOT_FOUND", NULL, "GET", "/api/v1/users/" NO_SUCH_ID, NULL);
}

Test(resources, the_last_admin_stays)
{
    pd_resp r = expect(200, "GET", "/api/v1/users/me", NULL);
    char me[64], path[128];
    snprintf(me, sizeof me, "%s", num_at(r.json, "data.id"));
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/users/%s", me);
    expect_error(409, "CONFLICT", "role", "PATCH", path, "{\"role\": \"member\"}");
    expect_error(409, "CONFLICT", NULL, "DELETE", path, NULL);
    /* with a second admin, the first may step down */
    char u[64];
    make(S.admin_key, "/api/v1/users", "{\"email\": \"second@example.com\", \"role\": \"admin\"}", u);
    r = expect(200, "PATCH", "/api/v1/users/me", "{\"role\": \"member\"}");
    cr_assert_str_eq(pd_str_at(r.json, "data.role"), "member");
    pd_resp_free(&r);
    /* and is a member at once: no more user management */
    expect_error(403, "FORBIDDEN", NULL, "POST", "/api/v1/users", "{\"email\": \"third@example.com\"}");
}

Test(resources, members_manage_only_themselves)
{
    char mid[64], mkey[128], oid[64], okey[128], path[128], muuid[64];
    make_member("self@example.com", mid, mkey);
    snprintf(path, sizeof path, "/api/v1/users/%s", mid);
    pd_resp u = expect(200, "GET", path, NULL);
    snprintf(muuid, sizeof muuid, "%s", pd_str_at(u.json, "data.uuid"));
    pd_resp_free(&u);
    make_member("peer@example.com", oid, okey);
    pd_resp r = expect_key(mkey, 200, "PATCH", "/api/v1/users/me", "{\"name\": \"Me Myself\"}");
    cr_assert_str_eq(pd_str_at(r.json, "data.name"), "Me Myself");
    pd_resp_free(&r);
    r = expect_key(mkey, 200, "PATCH", "/api/v1/users/me", "{\"role\": \"member\"}"); /* no change: fine */
    pd_resp_free(&r);
    expect_error_key(mkey, 403, "FORBIDDEN", "role", "PATCH", "/api/v1/users/me", "{\"role\": \"admin\"}");
    snprintf(path, sizeof path, "/api/v1/users/%s", oid);
    expect_error_key(mkey, 403, "FORBIDDEN", NULL, "PATCH", path, "{\"name\": \"hacked\"}");
    expect_error_key(mkey, 403, "FORBIDDEN", NULL, "DELETE", path, NULL);
    snprintf(path, sizeof path, "/api/v1/users/%s/api-keys", oid);
    expect_error_key(mkey, 403, "FORBIDDEN", NULL, "POST", path, NULL);
    /* a member may issue a key for themselves */
    r = expect_key(mkey, 201, "POST", "/api/v1/users/me/api-keys", "{\"name\": \"laptop\"}");
    const char *k2 = pd_str_at(r.json, "data.key");
    cr_assert(k2 && strncmp(k2, "pk_live_", 8) == 0, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.user_id"), muuid, "an API key names its user by UUID");
    char key2[128];
    snprintf(key2, sizeof key2, "%s", k2);
    pd_resp_free(&r);
    r = expect_key(key2, 200, "GET", "/api/v1/users/me", NULL);
    cr_assert_str_eq(num_at(r.json, "data.id"), mid);
    cr_assert_str_eq(pd_str_at(r.json, "data.uuid"), muuid);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/users/%s", mid);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "data.api_keys_count", -1), 2, "%s", r.body);
    pd_resp_free(&r);
}

Test(resources, deleting_a_user_stops_their_keys_and_keeps_their_prompts)
{
    char mid[64], mkey[128], path[128], pid[64];
    make_member("leaver@example.com", mid, mkey);
    cr_assert_eq(pd_create_prompt(&S, mkey, "Left behind", "text", pid, sizeof pid), 201);
    snprintf(path, sizeof path, "/api/v1/users/%s", mid);
    pd_resp r = expect(200, "DELETE", path, NULL);
    pd_resp_free(&r);
    expect_error_key(mkey, 401, "UNAUTHORIZED", NULL, "GET", "/api/v1/workspaces", NULL);
    r = expect(200, "GET", "/api/v1/prompts", NULL);
    cr_assert_eq(pd_int_at(r.json, "data.pagination.total_items", -1), 1, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.items.0.uuid"), pid);
    cr_assert(json_is_null(pd_json_at(r.json, "data.items.0.user_id")), "the owner is gone: %s", r.body);
    cr_assert_not_null(num_at(r.json, "data.items.0.id"), "%s", r.body);
    pd_resp_free(&r);
    /* the deleted user's number is not given again */
    char next[64];
    make(S.admin_key, "/api/v1/users", "{\"email\": \"next@example.com\"}", next);
    cr_assert_gt(atoll(next), atoll(mid), "number %s after deleted %s", next, mid);
    snprintf(path, sizeof path, "/api/v1/users/%s", mid);
    expect_error(404, "NOT_FOUND", NULL, "GET", path, NULL);
    /* keys for a user who is gone, or of another organization: 404 */
    snprintf(path, sizeof path, "/api/v1/users/%s/api-keys", mid);
    expect_error(404, "NOT_FOUND", NULL, "POST", path, NULL);
    char other[128];
    cr_assert_eq(pd_new_org_key(&S, "other", other, sizeof other), 0);
    r = expect_key(other, 200, "GET", "/api/v1/users/me", NULL);
    char oid[64]; /* their UUID: their number is one of ours too (numbers are per organization) */
    snprintf(oid, sizeof oid, "%s", pd_str_at(r.json, "data.uuid"));
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/users/%s", oid);
    expect_error(404, "NOT_FOUND", NULL, "GET", path, NULL);
    expect_error(404, "NOT_FOUND", NULL, "PATCH", path, "{\"name\": \"x\"}");
    expect_error(404, "NOT_FOUND", NULL, "DELETE", path, NULL);
    snprintf(path, sizeof path, "/api/v1/users/%s/api-keys", oid);
    expect_error(404, "NOT_FOUND", NULL, "POST", path, NULL);
}

/* ---------------------------------------------------------------- numbers under concurrency */

#define RACE_THREADS 8
#define RACE_EACH 6

typedef struct race_arg {
    int t;
    long long nums[RACE_EACH];
    long status[RACE_EACH];
} race_arg;

/* No Criterion assertion off the test's thread: results go back in the argument. */
static void *race_create(void *p)
{
    race_arg *a = p;
    char bearer[160], body[96];
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", S.admin_key);
    const char *hdr[] = {bearer, NULL};
    for (int i = 0; i < RACE_EACH; i++) {
        pd_resp r;
        snprintf(body, sizeof body, "{\"name\": \"race-%d-%d\", \"type\": \"csv\"}", a->t, i);
        a->status[i] = pd_req(&S, "POST", "/api/v1/data-sources", NULL, body, hdr, &r) == 0 ? r.status : -1;
        a->nums[i] = pd_int_at(r.json, "data.id", -1);
        pd_resp_free(&r);
    }
    return NULL;
}

Test(resources, concurrent_creations_get_distinct_numbers_in_order)
{
    pthread_t th[RACE_THREADS];
    race_arg args[RACE_THREADS];
    for (int t = 0; t < RACE_THREADS; t++) {
        memset(&args[t], 0, sizeof args[t]);
        args[t].t = t;
        cr_assert_eq(pthread_create(&th[t], NULL, race_create, &args[t]), 0);
    }
    for (int t = 0; t < RACE_THREADS; t++)
        pthread_join(th[t], NULL);
    int seen[RACE_THREADS * RACE_EACH + 1] = {0};
    for (int t = 0; t < RACE_THREADS; t++)
        for (int i = 0; i < RACE_EACH; i++) {
            cr_assert_eq(args[t].status[i], 201, "thread %d create %d: %ld", t, i, args[t].status[i]);
            long long n = args[t].nums[i];
            cr_assert(n >= 1 && n <= RACE_THREADS * RACE_EACH, "number %lld out of 1..%d", n, RACE_THREADS * RACE_EACH);
            cr_assert_eq(seen[n], 0, "number %lld given twice", n);
            seen[n] = 1;
            /* one thread's own creations are sequential: its numbers grow */
            if (i > 0)
                cr_assert_gt(n, args[t].nums[i - 1], "thread %d got %lld after %lld", t, n, args[t].nums[i - 1]);
        }
    /* the list (oldest first) shows them in number order */
    pd_resp r = expect(200, "GET", "/api/v1/data-sources?page_size=100", NULL);
    check_pagination(&r, 1, 100, RACE_THREADS * RACE_EACH, 1);
    long long prev = 0;
    for (int i = 0; i < RACE_THREADS * RACE_EACH; i++) {
        char at[48];
        snprintf(at, sizeof at, "data.items.%d.id", i);
        long long n = pd_int_at(r.json, at, -1);
        cr_assert_gt(n, prev, "%s", r.body);
        prev = n;
    }
    pd_resp_free(&r);
}
