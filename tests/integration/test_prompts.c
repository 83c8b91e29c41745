/*
 * test_prompts.c — the Jarvis prompts API over real HTTP: create, get, list
 * (paging, status, search, sort), update with versions, delete, render,
 * publish, the social actions, and every validation error with its exact
 * status, envelope and field. Each test has its own promptd (fixtures).
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support/harness.h"

static pd_server S;

/* Last step of the tests that exercise the most code: promptd must exit 0 on
 * SIGTERM, which under SAN=1 also means no leak or sanitizer report. */
#define ASSERT_CLEAN_EXIT()                                                                                            \
    cr_assert_eq(pd_stop(&S), 0, "promptd did not exit 0 on SIGTERM (its log is above if a sanitizer spoke)")

static void setup(void) { cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start"); }
static void teardown(void) { pd_stop(&S); /* no-op when the test already stopped it */ }

TestSuite(prompts, .init = setup, .fini = teardown, .timeout = 60);

#define NO_SUCH_ID "0190a0b0-1234-7abc-8def-0123456789ab"

/* ---------------------------------------------------------------- helpers */

/* One request with the admin key; the transfer itself must succeed. */
static pd_resp call(const char *method, const char *path, const char *body)
{
    pd_resp r;
    int rc = pd_req(&S, method, path, S.admin_key, body, NULL, &r);
    cr_assert_eq(rc, 0, "%s %s: transfer failed: %s", method, path, r.error);
    return r;
}

/* call() that must answer `status`; returns the response (free it). */
static pd_resp expect(long status, const char *method, const char *path, const char *body)
{
    pd_resp r = call(method, path, body);
    cr_assert_eq(r.status, status, "%s %s: want %ld, got %ld: %s", method, path, status, r.status, r.body);
    return r;
}

static void expect_free(long status, const char *method, const char *path, const char *body)
{
    pd_resp r = expect(status, method, path, body);
    pd_resp_free(&r);
}

/* Create a prompt; its id into id (64 bytes). Returns the created resource's JSON (new reference). */
static json_t *create(const char *name, const char *description, const char *content, char *id)
{
    char *body = description ? pd_pack("{s:{s:s, s:s, s:s}}", "prompt", "name", name, "description", description,
                                       "content", content)
                             : pd_pack("{s:{s:s, s:s}}", "prompt", "name", name, "content", content);
    pd_resp r = expect(201, "POST", "/prompts", body);
    free(body);
    json_t *data = json_incref(pd_json_at(r.json, "data"));
    cr_assert_not_null(data, "%s", r.body);
    if (id)
        snprintf(id, 64, "%s", pd_str_at(data, "id"));
    pd_resp_free(&r);
    return data;
}

static void create_id(const char *name, const char *content, char *id) { json_decref(create(name, NULL, content, id)); }

/* GET /prompts/:id -> data (new reference). */
static json_t *get_prompt(const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/prompts/%s", id);
    pd_resp r = expect(200, "GET", path, NULL);
    json_t *data = json_incref(pd_json_at(r.json, "data"));
    pd_resp_free(&r);
    return data;
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

/* "YYYY-MM-DDTHH:MM:SSZ" within a minute of now. */
static void assert_recent_rfc3339(const char *s)
{
    cr_assert_not_null(s);
    cr_assert_eq(strlen(s), 20, "not RFC 3339 UTC seconds: %s", s);
    cr_assert_eq(s[19], 'Z', "does not end in Z: %s", s);
    struct tm tm = {0};
    char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cr_assert(end && *end == '\0', "not RFC 3339: %s", s);
    time_t t = timegm(&tm), now = time(NULL);
    cr_assert(t > now - 60 && t < now + 60, "%s is not now", s);
}

/* Jarvis error with status and code; optional pointer; the detail mentions `mention` if given. */
static void assert_error(const pd_resp *r, long status, const char *code, const char *pointer, const char *mention)
{
    char want[8];
    snprintf(want, sizeof want, "%ld", status);
    cr_assert_eq(r->status, status, "want %ld, got %ld: %s", status, r->status, r->body);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.status"), want, "%s", r->body);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.code"), code, "%s", r->body);
    cr_assert_not_null(pd_str_at(r->json, "errors.0.title"), "%s", r->body);
    const char *detail = pd_str_at(r->json, "errors.0.detail");
    cr_assert_not_null(detail, "%s", r->body);
    if (pointer)
        cr_assert_str_eq(pd_str_at(r->json, "errors.0.source.pointer") ? pd_str_at(r->json, "errors.0.source.pointer")
                                                                       : "(none)",
                         pointer, "%s", r->body);
    if (mention)
        cr_assert(strstr(detail, mention), "detail '%s' does not mention '%s'", detail, mention);
}

/* Names of the prompts in a list answer, joined with ',' into out. */
static void names_of(const json_t *root, char *out, size_t outlen)
{
    out[0] = '\0';
    json_t *data = pd_json_at(root, "data");
    size_t i;
    json_t *item;
    json_array_foreach(data, i, item)
    {
        const char *n = pd_str_at(item, "attributes.name");
        if (i)
            strncat(out, ",", outlen - strlen(out) - 1);
        strncat(out, n ? n : "?", outlen - strlen(out) - 1);
    }
}

static void assert_list_names(const char *query, const char *want)
{
    char path[256], got[1024];
    snprintf(path, sizeof path, "/prompts%s", query);
    pd_resp r = expect(200, "GET", path, NULL);
    names_of(r.json, got, sizeof got);
    cr_assert_str_eq(got, want, "GET %s", path);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- create / get */

Test(prompts, create_returns_the_resource)
{
    char *body = pd_pack("{s:{s:s, s:s, s:s}}", "prompt", "name", "Email writer", "description", "Writes emails",
                         "content", "Write a {{tone}} email about {{topic}}. Be {{tone}}.");
    pd_resp r = expect(201, "POST", "/prompts", body);
    free(body);
    json_t *d = pd_json_at(r.json, "data");
    cr_assert_str_eq(pd_str_at(d, "type"), "prompt");
    const char *id = pd_str_at(d, "id");
    cr_assert(is_uuid(id), "id is not a UUID: %s", id ? id : "(null)");
    cr_assert_str_eq(pd_str_at(d, "attributes.unique_id"), id);
    char location[128];
    snprintf(location, sizeof location, "/prompts/%s", id);
    cr_assert_str_eq(pd_header(&r, "Location") ? pd_header(&r, "Location") : "(none)", location);
    const char *ct = pd_header(&r, "Content-Type");
    cr_assert(ct && strncmp(ct, "application/json", 16) == 0, "Content-Type: %s", ct ? ct : "(none)");
    cr_assert_str_eq(pd_str_at(d, "attributes.name"), "Email writer");
    cr_assert_str_eq(pd_str_at(d, "attributes.description"), "Writes emails");
    cr_assert_str_eq(pd_str_at(d, "attributes.content"), "Write a {{tone}} email about {{topic}}. Be {{tone}}.");
    cr_assert_str_eq(pd_str_at(d, "attributes.status"), "draft");
    cr_assert_eq(pd_int_at(d, "attributes.versions_count", -1), 1);
    cr_assert_eq(pd_int_at(d, "attributes.likes_count", -1), 0);
    cr_assert_eq(pd_int_at(d, "attributes.saves_count", -1), 0);
    cr_assert_eq(pd_int_at(d, "attributes.followers_count", -1), 0);
    cr_assert(json_is_false(pd_json_at(d, "attributes.liked")));
    cr_assert(json_is_false(pd_json_at(d, "attributes.saved")));
    cr_assert(json_is_false(pd_json_at(d, "attributes.followed")));
    json_t *vars = json_pack("[s, s]", "tone", "topic");
    cr_assert(json_equal(pd_json_at(d, "attributes.variables"), vars), "variables: %s", r.body);
    json_decref(vars);
    const char *cv = pd_str_at(d, "attributes.current_version_id");
    cr_assert(is_uuid(cv), "current_version_id: %s", r.body);
    cr_assert_str_neq(cv, id);
    cr_assert(json_is_null(pd_json_at(d, "attributes.published_version_id")), "%s", r.body);
    assert_recent_rfc3339(pd_str_at(d, "attributes.created_at"));
    assert_recent_rfc3339(pd_str_at(d, "attributes.updated_at"));
    pd_resp_free(&r);
}

Test(prompts, create_without_description)
{
    json_t *d = create("Bare", NULL, "just text", NULL);
    cr_assert_str_eq(pd_str_at(d, "attributes.description"), "");
    cr_assert_eq(json_array_size(pd_json_at(d, "attributes.variables")), 0);
    json_decref(d);
}

Test(prompts, unicode_round_trips)
{
    char id[64];
    json_t *d =
        create("R\xc3\xa9sum\xc3\xa9 \xe2\x9c\x93", "\xe6\x97\xa5\xe6\x9c\xac", "Hola {{nombre}} \xf0\x9f\x98\x80", id);
    json_decref(d);
    d = get_prompt(id);
    cr_assert_str_eq(pd_str_at(d, "attributes.name"), "R\xc3\xa9sum\xc3\xa9 \xe2\x9c\x93");
    cr_assert_str_eq(pd_str_at(d, "attributes.description"), "\xe6\x97\xa5\xe6\x9c\xac");
    cr_assert_str_eq(pd_str_at(d, "attributes.content"), "Hola {{nombre}} \xf0\x9f\x98\x80");
    json_decref(d);
}

Test(prompts, get_returns_what_create_returned)
{
    char id[64];
    json_t *created = create("Same", "desc", "Hi {{a}}", id);
    json_t *got = get_prompt(id);
    char *a = json_dumps(created, JSON_SORT_KEYS), *b = json_dumps(got, JSON_SORT_KEYS);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    json_decref(created);
    json_decref(got);
}

Test(prompts, unknown_and_malformed_ids_are_404)
{
    char id[64], path[256];
    create_id("exists", "x {{v}}", id);
    const char *ids[] = {NO_SUCH_ID, "not-a-uuid", "12345", "0190a0b0-1234-7abc-8def-0123456789abX",
                         "0190a0b012347abc8def0123456789ab0000"};
    struct {
        const char *method, *fmt, *body;
    } routes[] = {
        {"GET", "/prompts/%s", NULL},
        {"PUT", "/prompts/%s", "{\"prompt\":{\"name\":\"n\"}}"},
        {"PATCH", "/prompts/%s", "{\"prompt\":{\"name\":\"n\"}}"},
        {"DELETE", "/prompts/%s", NULL},
        {"POST", "/prompts/%s/render", "{\"variables\":{}}"},
        {"GET", "/prompts/%s/versions", NULL},
        {"PUT", "/prompts/%s/like", NULL},
        {"DELETE", "/prompts/%s/dislike", NULL},
        {"PUT", "/prompts/%s/follow", NULL},
        {"DELETE", "/prompts/%s/unfollow", NULL},
        {"PUT", "/prompts/%s/save", NULL},
        {"DELETE", "/prompts/%s/unsave", NULL},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        for (size_t k = 0; k < sizeof routes / sizeof routes[0]; k++) {
            snprintf(path, sizeof path, routes[k].fmt, ids[i]);
            pd_resp r = call(routes[k].method, path, routes[k].body);
            assert_error(&r, 404, "not_found", NULL, NULL);
            pd_resp_free(&r);
        }
        /* publish: unknown prompt, or unknown version of a known prompt */
        snprintf(path, sizeof path, "/prompts/%s/versions/%s/publish", ids[i], NO_SUCH_ID);
        pd_resp r = call("POST", path, NULL);
        assert_error(&r, 404, "not_found", NULL, NULL);
        pd_resp_free(&r);
        snprintf(path, sizeof path, "/prompts/%s/versions/%s/publish", id, ids[i]);
        r = call("POST", path, NULL);
        assert_error(&r, 404, "not_found", NULL, NULL);
        pd_resp_free(&r);
    }
    /* the existing prompt is untouched */
    json_t *d = get_prompt(id);
    cr_assert_str_eq(pd_str_at(d, "attributes.status"), "draft");
    json_decref(d);
    ASSERT_CLEAN_EXIT();
}

Test(prompts, not_found_envelope_is_exact)
{
    pd_resp r = call("GET", "/prompts/" NO_SUCH_ID, NULL);
    assert_error(&r, 404, "not_found", NULL, NULL);
    cr_assert_str_eq(pd_str_at(r.json, "errors.0.title"), "Prompt Not Found");
    cr_assert_str_eq(pd_str_at(r.json, "errors.0.detail"), "The requested prompt could not be found.");
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- list */

Test(prompts, list_empty)
{
    pd_resp r = expect(200, "GET", "/prompts", NULL);
    cr_assert(json_is_array(pd_json_at(r.json, "data")));
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 0);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 0);
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 0);
    pd_resp_free(&r);
}

Test(prompts, list_pages_with_records)
{
    char id[64], name[32];
    for (int i = 0; i < 17; i++) {
        snprintf(name, sizeof name, "p%02d", i);
        create_id(name, "c", id);
    }
    struct {
        const char *query;
        size_t items;
        long pages;
    } cases[] = {
        {"", 15, 2},
        {"?page=1", 15, 2},
        {"?page=2", 2, 2},
        {"?page=3", 0, 2},
        {"?records=5", 5, 4},
        {"?records=5&page=4", 2, 4},
        {"?records=17", 17, 1},
        {"?records=100", 17, 1},
        {"?records=1&page=17", 1, 17},
        {"?page=2&records=10", 7, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/prompts%s", cases[i].query);
        pd_resp r = expect(200, "GET", path, NULL);
        cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), cases[i].items, "%s", path);
        cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 17, "%s", path);
        cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), cases[i].pages, "%s", path);
        json_t *first = pd_json_at(r.json, "data.0");
        if (first) {
            cr_assert_str_eq(pd_str_at(first, "type"), "prompt");
            cr_assert_str_eq(pd_str_at(first, "id"), pd_str_at(first, "attributes.unique_id"));
        }
        pd_resp_free(&r);
    }
    /* pages do not overlap and together hold every prompt once */
    pd_resp a = expect(200, "GET", "/prompts?records=10&page=1", NULL),
            b = expect(200, "GET", "/prompts?records=10&page=2", NULL);
    char na[512], nb[512];
    names_of(a.json, na, sizeof na);
    names_of(b.json, nb, sizeof nb);
    for (int i = 0; i < 17; i++) {
        snprintf(name, sizeof name, "p%02d", i);
        cr_assert_eq(pd_count(na, name) + pd_count(nb, name), 1, "%s in '%s' + '%s'", name, na, nb);
    }
    pd_resp_free(&a);
    pd_resp_free(&b);
    ASSERT_CLEAN_EXIT();
}

Test(prompts, list_filters_by_status)
{
    char a[64], b[64], c[64], path[256];
    create_id("alpha", "a", a);
    usleep(3000); /* distinct creation times for the default order */
    create_id("beta", "b", b);
    usleep(3000);
    create_id("gamma", "c", c);
    json_t *d = get_prompt(b);
    snprintf(path, sizeof path, "/prompts/%s/versions/%s/publish", b, pd_str_at(d, "attributes.current_version_id"));
    json_decref(d);
    expect_free(200, "POST", path, NULL);
    snprintf(path, sizeof path, "/prompts/%s", c);
    expect_free(200, "PUT", path, "{\"prompt\":{\"status\":\"archived\"}}");

    assert_list_names("?status=published", "beta");
    assert_list_names("?status=draft", "alpha");
    assert_list_names("?status=archived", "gamma");
    assert_list_names("?status=", "gamma,beta,alpha");
    pd_resp r = expect(200, "GET", "/prompts?status=draft", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 1);
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 1);
    pd_resp_free(&r);
}

Test(prompts, list_searches_name_description_content)
{
    char id[64];
    json_decref(create("Quarterly report", NULL, "Summarize {{quarter}} numbers", id));
    json_decref(create("Email helper", "Drafts marketing emails", "Write to {{person}}", id));
    json_decref(create("Translator", NULL, "Translate {{text}} into French", id));
    struct {
        const char *q, *want;
    } cases[] = {
        {"quarterly", "Quarterly report"},
        {"quart", "Quarterly report"}, /* prefix of a word in the name */
        {"report", "Quarterly report"},
        {"market", "Email helper"}, /* description */
        {"emails", "Email helper"},
        {"em", "Email helper"},   /* short prefix */
        {"french", "Translator"}, /* content */
        {"FRENCH", "Translator"}, /* case-insensitive */
        {"transl", "Translator"},
        {"summarize%20numbers", "Quarterly report"}, /* every word must match */
        {"numbers%20summarize", "Quarterly report"},
        {"report%20email", ""},
        {"arterly", ""}, /* not a word prefix */
        {"zzzz", ""},
        {"%22report%22", "Quarterly report"}, /* quotes and operators are plain text */
        {"report%20OR%20email", ""},
        {"%2A", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char q[128];
        snprintf(q, sizeof q, "?search=%s", cases[i].q);
        assert_list_names(q, cases[i].want);
    }
    pd_resp r = expect(200, "GET", "/prompts?search=e&records=1", NULL);
    long total = (long)pd_int_at(r.json, "meta.totalRecords", -1);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), total > 0 ? 1 : 0);
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), total);
    pd_resp_free(&r);
    /* empty search lists everything */
    r = expect(200, "GET", "/prompts?search=", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 3);
    pd_resp_free(&r);
    ASSERT_CLEAN_EXIT();
}

Test(prompts, list_search_follows_updates_and_deletes)
{
    char id[64], path[128];
    create_id("Old title", "nothing", id);
    assert_list_names("?search=old", "Old title");
    snprintf(path, sizeof path, "/prompts/%s", id);
    expect_free(200, "PUT", path, "{\"prompt\":{\"name\":\"Fresh title\",\"content\":\"brand new words\"}}");
    assert_list_names("?search=old", "");
    assert_list_names("?search=fresh", "Fresh title");
    assert_list_names("?search=brand", "Fresh title");
    expect_free(204, "DELETE", path, NULL);
    assert_list_names("?search=fresh", "");
}

Test(prompts, list_sorts)
{
    char id[64], banana[64];
    create_id("banana", "b", banana);
    usleep(5000);
    create_id("Apple", "a", id);
    usleep(5000);
    create_id("cherry", "c", id);
    assert_list_names("", "cherry,Apple,banana"); /* newest first by default */
    assert_list_names("?sort=-created_at", "cherry,Apple,banana");
    assert_list_names("?sort=created_at", "banana,Apple,cherry");
    assert_list_names("?sort=%2Bcreated_at", "banana,Apple,cherry");
    assert_list_names("?sort=name", "Apple,banana,cherry");
    assert_list_names("?sort=-name", "cherry,banana,Apple");
    char path[128];
    snprintf(path, sizeof path, "/prompts/%s/like", banana);
    expect_free(200, "PUT", path, NULL);
    pd_resp r = expect(200, "GET", "/prompts?sort=-likes_count&records=1", NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.name"), "banana");
    pd_resp_free(&r);
    usleep(5000);
    snprintf(path, sizeof path, "/prompts/%s", banana);
    expect_free(200, "PUT", path, "{\"prompt\":{\"description\":\"touched\"}}");
    r = expect(200, "GET", "/prompts?sort=-updated_at&records=1", NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.name"), "banana");
    pd_resp_free(&r);
}

Test(prompts, list_rejects_bad_query_values)
{
    struct {
        const char *query, *param;
    } cases[] = {
        {"page=0", "page"},        {"page=-1", "page"},        {"page=abc", "page"},       {"page=1.5", "page"},
        {"page=1x", "page"},       {"records=0", "records"},   {"records=101", "records"}, {"records=abc", "records"},
        {"records=-5", "records"}, {"sort=bogus", "sort"},     {"sort=-bogus", "sort"},    {"sort=name;drop", "sort"},
        {"sort=--name", "sort"},   {"status=bogus", "status"}, {"status=DRAFT", "status"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/prompts?%s", cases[i].query);
        pd_resp r = call("GET", path, NULL);
        assert_error(&r, 400, "bad_request", NULL, cases[i].param);
        pd_resp_free(&r);
    }
    /* the versions list shares the paging rules */
    char id[64], path[128];
    create_id("v", "c", id);
    snprintf(path, sizeof path, "/prompts/%s/versions?records=1000", id);
    pd_resp r = call("GET", path, NULL);
    assert_error(&r, 400, "bad_request", NULL, "records");
    pd_resp_free(&r);
    ASSERT_CLEAN_EXIT();
}

/* ---------------------------------------------------------------- update / versions */

Test(prompts, update_name_keeps_versions)
{
    char id[64], path[128];
    json_t *before = create("first", "d", "Body {{x}}", id);
    snprintf(path, sizeof path, "/prompts/%s", id);
    usleep(5000);
    pd_resp r = expect(200, "PUT", path, "{\"prompt\":{\"name\":\"second\"}}");
    json_t *d = pd_json_at(r.json, "data");
    cr_assert_str_eq(pd_str_at(d, "id"), id);
    cr_assert_str_eq(pd_str_at(d, "attributes.name"), "second");
    cr_assert_str_eq(pd_str_at(d, "attributes.description"), "d");
    cr_assert_str_eq(pd_str_at(d, "attributes.content"), "Body {{x}}");
    cr_assert_eq(pd_int_at(d, "attributes.versions_count", -1), 1);
    cr_assert_str_eq(pd_str_at(d, "attributes.current_version_id"), pd_str_at(before, "attributes.current_version_id"));
    cr_assert_str_eq(pd_str_at(d, "attributes.created_at"), pd_str_at(before, "attributes.created_at"));
    pd_resp_free(&r);
    /* same content again: still one version */
    r = expect(200, "PUT", path, "{\"prompt\":{\"content\":\"Body {{x}}\"}}");
    cr_assert_eq(pd_int_at(r.json, "data.attributes.versions_count", -1), 1);
    pd_resp_free(&r);
    /* PATCH is the same as PUT */
    r = expect(200, "PATCH", path, "{\"prompt\":{\"description\":\"\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.description"), "");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "second");
    cr_assert_eq(pd_int_at(r.json, "data.attributes.versions_count", -1), 1);
    pd_resp_free(&r);
    json_t *now = get_prompt(id);
    cr_assert_str_eq(pd_str_at(now, "attributes.name"), "second");
    json_decref(now);
    json_decref(before);
}

Test(prompts, update_content_adds_a_version)
{
    char id[64], path[128];
    json_t *before = create("versioned", NULL, "v1 {{a}}", id);
    const char *v1 = pd_str_at(before, "attributes.current_version_id");
    snprintf(path, sizeof path, "/prompts/%s", id);
    pd_resp r = expect(200, "PUT", path, "{\"prompt\":{\"content\":\"v2 {{a}} {{b}}\"}}");
    json_t *d = pd_json_at(r.json, "data");
    cr_assert_eq(pd_int_at(d, "attributes.versions_count", -1), 2);
    cr_assert_str_eq(pd_str_at(d, "attributes.content"), "v2 {{a}} {{b}}");
    json_t *vars = json_pack("[s, s]", "a", "b");
    cr_assert(json_equal(pd_json_at(d, "attributes.variables"), vars));
    json_decref(vars);
    char v2[64];
    snprintf(v2, sizeof v2, "%s", pd_str_at(d, "attributes.current_version_id"));
    cr_assert(is_uuid(v2));
    cr_assert_str_neq(v2, v1);
    cr_assert_str_eq(pd_str_at(d, "relationships.current_version.data.id"), v2);
    pd_resp_free(&r);

    expect_free(200, "PUT", path, "{\"prompt\":{\"content\":\"v3\",\"name\":\"renamed\"}}");

    snprintf(path, sizeof path, "/prompts/%s/versions", id);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 3);
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 1);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 3);
    const char *want_content[] = {"v3", "v2 {{a}} {{b}}", "v1 {{a}}"};
    for (int i = 0; i < 3; i++) {
        char p[64];
        snprintf(p, sizeof p, "data.%d", i);
        json_t *v = pd_json_at(r.json, p);
        cr_assert_str_eq(pd_str_at(v, "type"), "prompt_version");
        cr_assert(is_uuid(pd_str_at(v, "id")));
        cr_assert_str_eq(pd_str_at(v, "attributes.unique_id"), pd_str_at(v, "id"));
        cr_assert_eq(pd_int_at(v, "attributes.version_number", -1), 3 - i, "%s", r.body);
        cr_assert_str_eq(pd_str_at(v, "attributes.content"), want_content[i]);
        cr_assert_str_eq(pd_str_at(v, "attributes.prompt_id"), id);
        cr_assert(json_is_false(pd_json_at(v, "attributes.published")));
        assert_recent_rfc3339(pd_str_at(v, "attributes.created_at"));
    }
    cr_assert_str_eq(pd_str_at(r.json, "data.1.id"), v2);
    cr_assert_str_eq(pd_str_at(r.json, "data.2.id"), v1);
    pd_resp_free(&r);

    snprintf(path, sizeof path, "/prompts/%s/versions?records=1&page=2", id);
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 3);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 1);
    cr_assert_eq(pd_int_at(r.json, "data.0.attributes.version_number", -1), 2);
    pd_resp_free(&r);

    json_t *now = get_prompt(id);
    cr_assert_eq(pd_int_at(now, "attributes.versions_count", -1), 3);
    cr_assert_str_eq(pd_str_at(now, "attributes.name"), "renamed");
    json_decref(now);
    json_decref(before);
    ASSERT_CLEAN_EXIT();
}

Test(prompts, update_status)
{
    char id[64], path[128];
    create_id("s", "c", id);
    snprintf(path, sizeof path, "/prompts/%s", id);
    pd_resp r = expect(200, "PUT", path, "{\"prompt\":{\"status\":\"archived\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.status"), "archived");
    pd_resp_free(&r);
    r = call("PUT", path, "{\"prompt\":{\"status\":\"deleted\"}}");
    assert_error(&r, 422, "unprocessable_entity", "/prompt/status", "status");
    pd_resp_free(&r);
}

Test(prompts, update_validation_errors)
{
    char id[64], path[128];
    create_id("keep", "keep {{me}}", id);
    snprintf(path, sizeof path, "/prompts/%s", id);
    struct {
        const char *body, *pointer, *mention;
    } cases[] = {
        {"{}", "/prompt", "prompt"},
        {"{\"prompt\":\"x\"}", "/prompt", "prompt"},
        {"{\"prompt\":{\"name\":\"\"}}", "/prompt/name", "name"},
        {"{\"prompt\":{\"name\":\"  \"}}", "/prompt/name", "name"},
        {"{\"prompt\":{\"name\":3}}", "/prompt/name", "name"},
        {"{\"prompt\":{\"content\":\"\"}}", "/prompt/content", "content"},
        {"{\"prompt\":{\"content\":\"{{unclosed\"}}", "/prompt/content", "content"},
        {"{\"prompt\":{\"content\":true}}", "/prompt/content", "content"},
        {"{\"prompt\":{\"description\":[]}}", "/prompt/description", "description"},
        {"{\"prompt\":{\"status\":1}}", "/prompt/status", "status"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pd_resp r = call("PUT", path, cases[i].body);
        assert_error(&r, 422, "unprocessable_entity", cases[i].pointer, cases[i].mention);
        pd_resp_free(&r);
    }
    pd_resp r = call("PUT", path, "{\"prompt\":");
    assert_error(&r, 400, "bad_request", NULL, NULL);
    pd_resp_free(&r);
    json_t *d = get_prompt(id);
    cr_assert_str_eq(pd_str_at(d, "attributes.name"), "keep");
    cr_assert_str_eq(pd_str_at(d, "attributes.content"), "keep {{me}}");
    cr_assert_eq(pd_int_at(d, "attributes.versions_count", -1), 1);
    json_decref(d);
    ASSERT_CLEAN_EXIT();
}

/* ---------------------------------------------------------------- delete */

Test(prompts, delete_then_404)
{
    char id[64], other[64], path[128];
    create_id("doomed", "bye", id);
    create_id("survivor", "hi", other);
    snprintf(path, sizeof path, "/prompts/%s", id);
    pd_resp r = expect(204, "DELETE", path, NULL);
    cr_assert_eq(r.len, 0, "204 with a body: %s", r.body);
    pd_resp_free(&r);
    r = call("GET", path, NULL);
    assert_error(&r, 404, "not_found", NULL, NULL);
    pd_resp_free(&r);
    r = call("DELETE", path, NULL);
    assert_error(&r, 404, "not_found", NULL, NULL);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/versions", id);
    r = call("GET", path, NULL);
    assert_error(&r, 404, "not_found", NULL, NULL);
    pd_resp_free(&r);
    assert_list_names("", "survivor");
    ASSERT_CLEAN_EXIT();
}

/* ---------------------------------------------------------------- render */

Test(prompts, render_substitutes_values)
{
    char id[64], path[128];
    json_t *p = create("render", NULL,
                       "Hello {{name}}, you are {{ age }} ({{ratio}}). Active: {{active}} {{off}}. "
                       "Meta: {{meta}} {{list}}. {{gone}} {{nil}}. Again {{name}}.",
                       id);
    snprintf(path, sizeof path, "/prompts/%s/render", id);
    pd_resp r = expect(200, "POST", path,
                       "{\"variables\":{\"name\":\"Ann\",\"age\":42,\"ratio\":2.5,\"active\":true,\"off\":false,"
                       "\"meta\":{\"k\":\"v\"},\"list\":[1,\"a\"],\"nil\":null,\"unused\":\"x\"}}");
    json_t *a = pd_json_at(r.json, "data.attributes");
    cr_assert_str_eq(pd_str_at(a, "rendered_content"),
                     "Hello Ann, you are 42 (2.5). Active: true false. Meta: {\"k\":\"v\"} [1,\"a\"]. {{gone}} "
                     "{{nil}}. Again Ann.");
    json_t *used = json_pack("[s,s,s,s,s,s,s]", "name", "age", "ratio", "active", "off", "meta", "list");
    json_t *missing = json_pack("[s,s]", "gone", "nil");
    cr_assert(json_equal(pd_json_at(a, "variables_used"), used), "%s", r.body);
    cr_assert(json_equal(pd_json_at(a, "missing_variables"), missing), "%s", r.body);
    cr_assert_str_eq(pd_str_at(a, "version_id"), pd_str_at(p, "attributes.current_version_id"));
    json_decref(used);
    json_decref(missing);
    pd_resp_free(&r);
    json_decref(p);
    ASSERT_CLEAN_EXIT();
}

Test(prompts, render_without_variables)
{
    char id[64], path[128];
    create_id("r", "Dear {{who}}, \\{{literal}} stays", id);
    snprintf(path, sizeof path, "/prompts/%s/render", id);
    const char *bodies[] = {NULL, "{}", "{\"variables\":null}", "{\"variables\":{}}"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        pd_resp r = expect(200, "POST", path, bodies[i]);
        json_t *a = pd_json_at(r.json, "data.attributes");
        cr_assert_str_eq(pd_str_at(a, "rendered_content"), "Dear {{who}}, {{literal}} stays");
        cr_assert_eq(json_array_size(pd_json_at(a, "variables_used")), 0);
        json_t *missing = json_pack("[s]", "who");
        cr_assert(json_equal(pd_json_at(a, "missing_variables"), missing), "%s", r.body);
        json_decref(missing);
        pd_resp_free(&r);
    }
}

Test(prompts, render_value_is_not_reexpanded)
{
    char id[64], path[128];
    create_id("r", "[{{a}}] [{{b}}]", id);
    snprintf(path, sizeof path, "/prompts/%s/render", id);
    pd_resp r = expect(200, "POST", path, "{\"variables\":{\"a\":\"{{b}}\",\"b\":\"\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.rendered_content"), "[{{b}}] []");
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data.attributes.missing_variables")), 0);
    pd_resp_free(&r);
}

Test(prompts, render_an_older_version)
{
    char id[64], path[128], v1[64];
    json_t *p = create("old", NULL, "Version one for {{who}}", id);
    snprintf(v1, sizeof v1, "%s", pd_str_at(p, "attributes.current_version_id"));
    json_decref(p);
    snprintf(path, sizeof path, "/prompts/%s", id);
    expect_free(200, "PUT", path, "{\"prompt\":{\"content\":\"Version two for {{someone}}\"}}");

    snprintf(path, sizeof path, "/prompts/%s/render", id);
    char *body = pd_pack("{s:s, s:{s:s}}", "version_id", v1, "variables", "who", "Bo");
    pd_resp r = expect(200, "POST", path, body);
    free(body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.rendered_content"), "Version one for Bo");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.version_id"), v1);
    pd_resp_free(&r);

    r = expect(200, "POST", path, "{\"variables\":{\"who\":\"Bo\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.rendered_content"), "Version two for {{someone}}");
    json_t *missing = json_pack("[s]", "someone");
    cr_assert(json_equal(pd_json_at(r.json, "data.attributes.missing_variables"), missing));
    json_decref(missing);
    pd_resp_free(&r);
}

Test(prompts, render_errors)
{
    char id[64], other[64], path[128];
    create_id("r", "x {{y}}", id);
    json_t *o = create("other", NULL, "z", other);
    snprintf(path, sizeof path, "/prompts/%s/render", id);

    const char *bad_vars[] = {"{\"variables\":[1,2]}", "{\"variables\":\"a=b\"}", "{\"variables\":3}"};
    for (size_t i = 0; i < sizeof bad_vars / sizeof bad_vars[0]; i++) {
        pd_resp r = call("POST", path, bad_vars[i]);
        assert_error(&r, 422, "unprocessable_entity", "/variables", "variables");
        pd_resp_free(&r);
    }
    pd_resp r = call("POST", path, "{\"version_id\":5}");
    assert_error(&r, 422, "unprocessable_entity", "/version_id", "version_id");
    pd_resp_free(&r);

    const char *bad_versions[] = {NO_SUCH_ID, "nope", pd_str_at(o, "attributes.current_version_id")};
    for (size_t i = 0; i < sizeof bad_versions / sizeof bad_versions[0]; i++) {
        char *body = pd_pack("{s:s}", "version_id", bad_versions[i]);
        r = call("POST", path, body);
        assert_error(&r, 404, "not_found", NULL, NULL);
        pd_resp_free(&r);
        free(body);
    }
    r = call("POST", path, "{\"variables\":");
    assert_error(&r, 400, "bad_request", NULL, NULL);
    pd_resp_free(&r);
    json_decref(o);
    ASSERT_CLEAN_EXIT();
}

/* ---------------------------------------------------------------- publish */

Test(prompts, publish_a_version)
{
    char id[64], path[160], v1[64];
    json_t *p = create("pub", NULL, "first", id);
    snprintf(v1, sizeof v1, "%s", pd_str_at(p, "attributes.current_version_id"));
    json_decref(p);
    snprintf(path, sizeof path, "/prompts/%s", id);
    expect_free(200, "PUT", path, "{\"prompt\":{\"content\":\"second\"}}");

    snprintf(path, sizeof path, "/prompts/%s/versions/%s/publish", id, v1);
    pd_resp r = expect(200, "POST", path, NULL);
    cr_assert_str_eq(pd_str_at(r.json, "message"), "Version published successfully");
    json_t *d = pd_json_at(r.json, "data");
    cr_assert_str_eq(pd_str_at(d, "id"), id);
    cr_assert_str_eq(pd_str_at(d, "attributes.status"), "published");
    cr_assert_str_eq(pd_str_at(d, "attributes.published_version_id"), v1);
    cr_assert_str_eq(pd_str_at(d, "relationships.published_version.data.id"), v1);
    cr_assert_str_eq(pd_str_at(d, "attributes.content"), "second", "publishing changed the latest content");
    cr_assert_eq(pd_int_at(d, "attributes.versions_count", -1), 2);
    pd_resp_free(&r);

    json_t *now = get_prompt(id);
    cr_assert_str_eq(pd_str_at(now, "attributes.status"), "published");
    cr_assert_str_eq(pd_str_at(now, "attributes.published_version_id"), v1);
    json_decref(now);

    snprintf(path, sizeof path, "/prompts/%s/versions", id);
    r = expect(200, "GET", path, NULL);
    cr_assert(json_is_false(pd_json_at(r.json, "data.0.attributes.published")), "%s", r.body);
    cr_assert(json_is_true(pd_json_at(r.json, "data.1.attributes.published")), "%s", r.body);
    assert_recent_rfc3339(pd_str_at(r.json, "data.1.attributes.published_at"));
    cr_assert(json_is_null(pd_json_at(r.json, "data.0.attributes.published_at")), "%s", r.body);
    pd_resp_free(&r);
    ASSERT_CLEAN_EXIT();
}

Test(prompts, publish_a_version_of_another_prompt_is_404)
{
    char a[64], b[64], path[160];
    create_id("a", "a", a);
    json_t *pb = create("b", NULL, "b", b);
    snprintf(path, sizeof path, "/prompts/%s/versions/%s/publish", a, pd_str_at(pb, "attributes.current_version_id"));
    pd_resp r = call("POST", path, NULL);
    assert_error(&r, 404, "not_found", NULL, NULL);
    pd_resp_free(&r);
    json_t *d = get_prompt(a);
    cr_assert_str_eq(pd_str_at(d, "attributes.status"), "draft");
    cr_assert(json_is_null(pd_json_at(d, "attributes.published_version_id")));
    json_decref(d);
    json_decref(pb);
}

/* ---------------------------------------------------------------- social actions */

static void react(const char *method, const char *id, const char *action, const char *message)
{
    char path[128];
    snprintf(path, sizeof path, "/prompts/%s/%s", id, action);
    pd_resp r = expect(200, method, path, NULL);
    json_t *want = json_pack("{s:s}", "message", message);
    cr_assert(json_equal(r.json, want), "%s %s: %s", method, path, r.body);
    json_decref(want);
    pd_resp_free(&r);
}

static void assert_counts(const char *id, long likes, long saves, long followers)
{
    json_t *d = get_prompt(id);
    cr_assert_eq(pd_int_at(d, "attributes.likes_count", -1), likes);
    cr_assert_eq(pd_int_at(d, "attributes.saves_count", -1), saves);
    cr_assert_eq(pd_int_at(d, "attributes.followers_count", -1), followers);
    cr_assert_eq(json_is_true(pd_json_at(d, "attributes.liked")), likes > 0);
    cr_assert_eq(json_is_true(pd_json_at(d, "attributes.saved")), saves > 0);
    cr_assert_eq(json_is_true(pd_json_at(d, "attributes.followed")), followers > 0);
    json_decref(d);
}

Test(prompts, like_and_dislike)
{
    char id[64];
    create_id("likeable", "x", id);
    react("PUT", id, "like", "Prompt liked successfully");
    assert_counts(id, 1, 0, 0);
    react("PUT", id, "like", "Prompt liked successfully");
    assert_counts(id, 1, 0, 0);
    /* the list shows the viewer's flag too */
    pd_resp r = expect(200, "GET", "/prompts", NULL);
    cr_assert(json_is_true(pd_json_at(r.json, "data.0.attributes.liked")), "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.0.attributes.likes_count", -1), 1);
    pd_resp_free(&r);
    react("DELETE", id, "dislike", "Like removed successfully");
    assert_counts(id, 0, 0, 0);
    react("DELETE", id, "dislike", "Like removed successfully");
    assert_counts(id, 0, 0, 0);
    ASSERT_CLEAN_EXIT();
}

Test(prompts, follow_and_unfollow)
{
    char id[64];
    create_id("followable", "x", id);
    react("PUT", id, "follow", "Prompt followed successfully");
    assert_counts(id, 0, 0, 1);
    react("PUT", id, "follow", "Prompt followed successfully");
    assert_counts(id, 0, 0, 1);
    react("DELETE", id, "unfollow", "Prompt unfollowed successfully");
    assert_counts(id, 0, 0, 0);
    react("DELETE", id, "unfollow", "Prompt unfollowed successfully");
    assert_counts(id, 0, 0, 0);
}

Test(prompts, save_and_unsave)
{
    char id[64];
    create_id("saveable", "x", id);
    react("PUT", id, "save", "Prompt saved successfully");
    assert_counts(id, 0, 1, 0);
    react("PUT", id, "save", "Prompt saved successfully");
    assert_counts(id, 0, 1, 0);
    react("DELETE", id, "unsave", "Prompt unsaved successfully");
    assert_counts(id, 0, 0, 0);
    react("DELETE", id, "unsave", "Prompt unsaved successfully");
    assert_counts(id, 0, 0, 0);
}

Test(prompts, reactions_are_independent)
{
    char a[64], b[64];
    create_id("a", "x", a);
    create_id("b", "y", b);
    react("PUT", a, "like", "Prompt liked successfully");
    react("PUT", a, "save", "Prompt saved successfully");
    react("PUT", a, "follow", "Prompt followed successfully");
    react("PUT", b, "save", "Prompt saved successfully");
    assert_counts(a, 1, 1, 1);
    assert_counts(b, 0, 1, 0);
    react("DELETE", a, "unsave", "Prompt unsaved successfully");
    assert_counts(a, 1, 0, 1);
    assert_counts(b, 0, 1, 0);
}

Test(prompts, reaction_routes_have_fixed_methods)
{
    char id[64], path[128];
    create_id("m", "x", id);
    const char *wrong[][2] = {{"DELETE", "like"},  {"PUT", "dislike"}, {"POST", "follow"},
                              {"GET", "unfollow"}, {"DELETE", "save"}, {"PUT", "unsave"}};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        snprintf(path, sizeof path, "/prompts/%s/%s", id, wrong[i][1]);
        pd_resp r = call(wrong[i][0], path, NULL);
        assert_error(&r, 405, "method_not_allowed", NULL, NULL);
        cr_assert_not_null(pd_header(&r, "Allow"));
        pd_resp_free(&r);
    }
    assert_counts(id, 0, 0, 0);
}

/* ---------------------------------------------------------------- what a client may not set */

Test(prompts, server_fields_are_ignored_on_create)
{
    const char *body = "{\"prompt\":{\"name\":\"sneaky\",\"content\":\"c\","
                       "\"id\":\"" NO_SUCH_ID "\",\"unique_id\":\"" NO_SUCH_ID "\","
                       "\"likes_count\":99,\"saves_count\":5,\"followers_count\":7,\"versions_count\":12,"
                       "\"created_at\":\"2001-01-01T00:00:00Z\",\"updated_at\":\"2001-01-01T00:00:00Z\","
                       "\"org\":\"other\",\"org_id\":\"" NO_SUCH_ID "\",\"liked\":true,"
                       "\"current_version_id\":\"" NO_SUCH_ID "\",\"published_version_id\":\"" NO_SUCH_ID "\"},"
                       "\"id\":\"" NO_SUCH_ID "\"}";
    pd_resp r = expect(201, "POST", "/prompts", body);
    json_t *d = pd_json_at(r.json, "data");
    char id[64];
    snprintf(id, sizeof id, "%s", pd_str_at(d, "id"));
    cr_assert(is_uuid(id));
    cr_assert_str_neq(id, NO_SUCH_ID);
    cr_assert_str_eq(pd_str_at(d, "attributes.unique_id"), id);
    cr_assert_eq(pd_int_at(d, "attributes.likes_count", -1), 0);
    cr_assert_eq(pd_int_at(d, "attributes.saves_count", -1), 0);
    cr_assert_eq(pd_int_at(d, "attributes.followers_count", -1), 0);
    cr_assert_eq(pd_int_at(d, "attributes.versions_count", -1), 1);
    cr_assert(json_is_false(pd_json_at(d, "attributes.liked")));
    cr_assert_str_neq(pd_str_at(d, "attributes.current_version_id"), NO_SUCH_ID);
    cr_assert(json_is_null(pd_json_at(d, "attributes.published_version_id")));
    assert_recent_rfc3339(pd_str_at(d, "attributes.created_at"));
    assert_recent_rfc3339(pd_str_at(d, "attributes.updated_at"));
    pd_resp_free(&r);
    /* it belongs to the caller's organization, under the server's id */
    json_t *got = get_prompt(id);
    json_decref(got);
    r = call("GET", "/prompts/" NO_SUCH_ID, NULL);
    assert_error(&r, 404, "not_found", NULL, NULL);
    pd_resp_free(&r);
    ASSERT_CLEAN_EXIT();
}

Test(prompts, server_fields_are_ignored_on_update)
{
    char id[64], path[128];
    json_t *before = create("orig", NULL, "c", id);
    snprintf(path, sizeof path, "/prompts/%s", id);
    pd_resp r = expect(200, "PUT", path,
                       "{\"prompt\":{\"name\":\"renamed\",\"id\":\"" NO_SUCH_ID "\",\"unique_id\":\"x\","
                       "\"likes_count\":77,\"versions_count\":9,\"saves_count\":3,"
                       "\"created_at\":\"2001-01-01T00:00:00Z\",\"org\":\"other\",\"org_id\":\"" NO_SUCH_ID "\"}}");
    json_t *d = pd_json_at(r.json, "data");
    cr_assert_str_eq(pd_str_at(d, "id"), id);
    cr_assert_str_eq(pd_str_at(d, "attributes.unique_id"), id);
    cr_assert_str_eq(pd_str_at(d, "attributes.name"), "renamed");
    cr_assert_eq(pd_int_at(d, "attributes.likes_count", -1), 0);
    cr_assert_eq(pd_int_at(d, "attributes.saves_count", -1), 0);
    cr_assert_eq(pd_int_at(d, "attributes.versions_count", -1), 1);
    cr_assert_str_eq(pd_str_at(d, "attributes.created_at"), pd_str_at(before, "attributes.created_at"));
    pd_resp_free(&r);
    json_t *got = get_prompt(id);
    cr_assert_str_eq(pd_str_at(got, "attributes.name"), "renamed");
    cr_assert_eq(pd_int_at(got, "attributes.likes_count", -1), 0);
    json_decref(got);
    json_decref(before);
}

/* ---------------------------------------------------------------- validation */

Test(prompts, create_validation_errors)
{
    char longname[300];
    memset(longname, 'n', 256);
    longname[256] = '\0';
    char *too_long = pd_pack("{s:{s:s, s:s}}", "prompt", "name", longname, "content", "c");
    struct {
        const char *body, *pointer, *mention;
    } cases[] = {
        {"{}", "/prompt", "prompt"},
        {"{\"prompt\":\"x\"}", "/prompt", "prompt"},
        {"{\"prompt\":null}", "/prompt", "prompt"},
        {"{\"prompt\":[]}", "/prompt", "prompt"},
        {"{\"name\":\"n\",\"content\":\"c\"}", "/prompt", "prompt"},
        {"{\"prompt\":{\"content\":\"c\"}}", "/prompt/name", "name"},
        {"{\"prompt\":{\"name\":null,\"content\":\"c\"}}", "/prompt/name", "name"},
        {"{\"prompt\":{\"name\":\"n\"}}", "/prompt/content", "content"},
        {"{\"prompt\":{\"name\":5,\"content\":\"c\"}}", "/prompt/name", "name"},
        {"{\"prompt\":{\"name\":{},\"content\":\"c\"}}", "/prompt/name", "name"},
        {"{\"prompt\":{\"name\":\"n\",\"content\":[\"c\"]}}", "/prompt/content", "content"},
        {"{\"prompt\":{\"name\":\"n\",\"content\":\"c\",\"description\":7}}", "/prompt/description", "description"},
        {"{\"prompt\":{\"name\":\"\",\"content\":\"c\"}}", "/prompt/name", "name"},
        {"{\"prompt\":{\"name\":\" \\t\\n \",\"content\":\"c\"}}", "/prompt/name", "name"},
        {"{\"prompt\":{\"name\":\"n\",\"content\":\"\"}}", "/prompt/content", "content"},
        {"{\"prompt\":{\"name\":\"n\",\"content\":\"{{unclosed\"}}", "/prompt/content", "content"},
        {"{\"prompt\":{\"name\":\"n\",\"content\":\"Hi {{ }}\"}}", "/prompt/content", "content"},
        {"{\"prompt\":{\"name\":\"n\",\"content\":\"{{1abc}}\"}}", "/prompt/content", "content"},
        {"{\"prompt\":{\"name\":\"n\",\"content\":\"{{a b}}\"}}", "/prompt/content", "content"},
        {"{\"prompt\":{\"name\":\"n\",\"content\":\"ok {{a}} then {{b}\"}}", "/prompt/content", "content"},
        {too_long, "/prompt/name", "name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pd_resp r = call("POST", "/prompts", cases[i].body);
        assert_error(&r, 422, "unprocessable_entity", cases[i].pointer, cases[i].mention);
        pd_resp_free(&r);
    }
    free(too_long);
    pd_resp r = expect(200, "GET", "/prompts", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 0, "an invalid body created a prompt: %s", r.body);
    pd_resp_free(&r);
    ASSERT_CLEAN_EXIT();
}

Test(prompts, malformed_template_detail_names_the_problem)
{
    pd_resp r = call("POST", "/prompts", "{\"prompt\":{\"name\":\"n\",\"content\":\"abc {{unclosed\"}}");
    assert_error(&r, 422, "unprocessable_entity", "/prompt/content", "prompt.content");
    const char *detail = pd_str_at(r.json, "errors.0.detail");
    cr_assert(strstr(detail, "unclosed"), "%s", detail);
    cr_assert(strstr(detail, "offset 4"), "%s", detail);
    pd_resp_free(&r);
}

Test(prompts, name_at_the_length_limit_is_accepted)
{
    char name[256];
    memset(name, 'n', 255);
    name[255] = '\0';
    json_t *d = create(name, NULL, "c", NULL);
    cr_assert_str_eq(pd_str_at(d, "attributes.name"), name);
    json_decref(d);
}

Test(prompts, content_and_description_limits)
{
    size_t big = 200001;
    char *text = malloc(big + 1);
    cr_assert_not_null(text);
    memset(text, 'c', big);
    text[big] = '\0';
    char *body = pd_pack("{s:{s:s, s:s}}", "prompt", "name", "n", "content", text);
    pd_resp r = call("POST", "/prompts", body);
    assert_error(&r, 422, "unprocessable_entity", "/prompt/content", "content");
    pd_resp_free(&r);
    free(body);
    text[200000] = '\0'; /* exactly the limit */
    json_t *d = create("at the limit", NULL, text, NULL);
    cr_assert_eq(strlen(pd_str_at(d, "attributes.content")), 200000);
    json_decref(d);
    text[10001] = '\0';
    body = pd_pack("{s:{s:s, s:s, s:s}}", "prompt", "name", "n", "description", text, "content", "c");
    r = call("POST", "/prompts", body);
    assert_error(&r, 422, "unprocessable_entity", "/prompt/description", "description");
    pd_resp_free(&r);
    free(body);
    free(text);
    ASSERT_CLEAN_EXIT();
}
