/*
 * test_clusters.c — spec 001 over real HTTP: entities, clusters, members,
 * cluster prompts, contexts, conversations and messages, the cluster
 * answering (echo model and the mock provider: persona, contexts, history,
 * a failing member, concurrency, SSE), integrity (cascades, counters,
 * idempotence) and another organization's ids answering 404 everywhere.
 * Every test has its own promptd (and mock provider where it needs one).
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "support/harness.h"
#include "support/mock_proc.h"

static pd_server S;
static mock_proc M;

static void setup(void) { cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start"); }
static void teardown(void) { pd_stop(&S); }

static void setup_mock(void)
{
    cr_assert_eq(mock_proc_start(&M, NULL), 0, "the mock provider did not start");
    char base[128];
    snprintf(base, sizeof base, "OPENAI_BASE_URL=%s/v1", M.base_url);
    const char *env[] = {base, "OPENAI_API_KEY=x", NULL};
    cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start");
}
static void teardown_mock(void)
{
    pd_stop(&S);
    mock_proc_stop(&M);
}

TestSuite(entities, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(clusters, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(conversations, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(replies, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(isolation, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(mock_replies, .init = setup_mock, .fini = teardown_mock, .timeout = 60);

#define NO_SUCH_ID "0190a0b0-1234-7abc-8def-0123456789ab"
#define ID_SIZE 64

/* ---------------------------------------------------------------- helpers */

/* A path built printf-style; 8 rotating buffers, so a few can be alive at once. */
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

/* One request with key that must answer `status`; returns the response (free it). */
static pd_resp expect_as(const char *key, long status, const char *method, const char *path, const char *body)
{
    pd_resp r;
    int rc = pd_req(&S, method, path, key, body, NULL, &r);
    cr_assert_eq(rc, 0, "%s %s: transfer failed: %s", method, path, r.error);
    cr_assert_eq(r.status, status, "%s %s: want %ld, got %ld: %s", method, path, status, r.status, r.body);
    return r;
}

static pd_resp expect(long status, const char *method, const char *path, const char *body)
{
    return expect_as(S.admin_key, status, method, path, body);
}

static void expect_free(long status, const char *method, const char *path, const char *body)
{
    pd_resp r = expect(status, method, path, body);
    pd_resp_free(&r);
}

/* Jarvis error: status, code, title (when given), source.pointer (when given). */
static void assert_error(const pd_resp *r, long status, const char *code, const char *title, const char *pointer)
{
    char want[8];
    snprintf(want, sizeof want, "%ld", status);
    cr_assert_eq(r->status, status, "want %ld, got %ld: %s", status, r->status, r->body);
    cr_assert_eq(json_array_size(pd_json_at(r->json, "errors")), 1, "%s", r->body);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.status"), want, "%s", r->body);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.code"), code, "%s", r->body);
    cr_assert_not_null(pd_str_at(r->json, "errors.0.detail"), "%s", r->body);
    if (title)
        cr_assert_str_eq(pd_str_at(r->json, "errors.0.title"), title, "%s", r->body);
    if (pointer) {
        const char *got = pd_str_at(r->json, "errors.0.source.pointer");
        cr_assert_str_eq(got ? got : "(none)", pointer, "%s", r->body);
    }
}

/* A request with the admin key that must fail this way. */
static void expect_error(long status, const char *code, const char *title, const char *pointer, const char *method,
                         const char *path, const char *body)
{
    pd_resp r = expect(status, method, path, body);
    assert_error(&r, status, code, title, pointer);
    pd_resp_free(&r);
}

static void expect_message(const char *method, const char *path, const char *message)
{
    pd_resp r = expect(200, method, path, NULL);
    cr_assert_str_eq(pd_str_at(r.json, "message"), message, "%s %s: %s", method, path, r.body);
    pd_resp_free(&r);
}

/* POST that must answer 201; the new id into id (ID_SIZE bytes, may be NULL). */
static void create(const char *path, const char *body, char *id)
{
    pd_resp r = expect(201, "POST", path, body);
    const char *got = pd_str_at(r.json, "data.id");
    cr_assert_not_null(got, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.unique_id"), got, "%s", r.body);
    if (id)
        snprintf(id, ID_SIZE, "%s", got);
    pd_resp_free(&r);
}

static void create_entity(const char *name, const char *persona, const char *model, char *id)
{
    char *body = pd_pack("{s:{s:s, s:s?, s:s?}}", "entity", "name", name, "persona", persona, "model", model);
    create("/entities", body, id);
    free(body);
}

static void create_cluster(const char *name, char *id)
{
    char *body = pd_pack("{s:{s:s}}", "cluster", "name", name);
    create("/clusters", body, id);
    free(body);
}

static void create_conversation(const char *cluster, const char *title, char *id)
{
    char *body = pd_pack("{s:{s:s}}", "conversation", "title", title);
    create(P("/clusters/%s/conversations", cluster), body, id);
    free(body);
}

static void add_member(const char *cluster, const char *entity)
{
    expect_message("POST", P("/clusters/%s/members/%s", cluster, entity), "Entity added to cluster successfully");
}

/* GET a JSON document's integer at path. */
static long long get_int(const char *path, const char *at)
{
    pd_resp r = expect(200, "GET", path, NULL);
    long long v = pd_int_at(r.json, at, -1);
    pd_resp_free(&r);
    return v;
}

/* POST a message; must answer 201. */
static pd_resp send_message(const char *cluster, const char *conv, const char *role, const char *content)
{
    char *body = pd_pack("{s:{s:s, s:s}}", "message", "role", role, "content", content);
    pd_resp r = expect(201, "POST", P("/clusters/%s/conversations/%s/messages", cluster, conv), body);
    free(body);
    return r;
}

/* The reply in `included` written by entity, or NULL. */
static json_t *reply_of(const pd_resp *r, const char *entity)
{
    json_t *inc = pd_json_at(r->json, "included");
    size_t i;
    json_t *m;
    json_array_foreach(inc, i, m)
    {
        const char *e = pd_str_at(m, "attributes.entity_id");
        if (e && strcmp(e, entity) == 0)
            return m;
    }
    return NULL;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- entities */

Test(entities, create_get_update_delete)
{
    char id[ID_SIZE];
    pd_resp r = expect(201, "POST", "/entities",
                       "{\"entity\": {\"name\": \"Ann\", \"description\": \"Sales lead\", \"persona\": \"You are Ann.\"}}");
    snprintf(id, sizeof id, "%s", pd_str_at(r.json, "data.id"));
    cr_assert_str_eq(pd_str_at(r.json, "data.type"), "entity");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.unique_id"), id);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Ann");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.description"), "Sales lead");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.persona"), "You are Ann.");
    cr_assert(json_is_null(pd_json_at(r.json, "data.attributes.model")), "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.clusters_count", -1), 0);
    cr_assert_not_null(pd_str_at(r.json, "data.attributes.created_at"));
    cr_assert_not_null(pd_str_at(r.json, "data.attributes.updated_at"));
    const char *loc = pd_header(&r, "Location");
    cr_assert(loc && strstr(loc, id), "Location: %s", loc ? loc : "(none)");
    pd_resp_free(&r);

    r = expect(200, "GET", P("/entities/%s", id), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Ann");
    pd_resp_free(&r);

    r = expect(200, "PUT", P("/entities/%s", id), "{\"entity\": {\"name\": \"Ann B\", \"model\": \"echo\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Ann B");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.model"), "echo");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.persona"), "You are Ann.", "unchanged fields stay");
    pd_resp_free(&r);

    r = expect(200, "PUT", P("/entities/%s", id), "{\"entity\": {\"model\": null}}");
    cr_assert(json_is_null(pd_json_at(r.json, "data.attributes.model")), "null model resets: %s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Ann B");
    pd_resp_free(&r);

    expect_free(204, "DELETE", P("/entities/%s", id), NULL);
    expect_error(404, "not_found", "Entity Not Found", NULL, "GET", P("/entities/%s", id), NULL);
    expect_error(404, "not_found", "Entity Not Found", NULL, "DELETE", P("/entities/%s", id), NULL);
    expect_error(404, "not_found", "Entity Not Found", NULL, "PUT", P("/entities/%s", id),
                 "{\"entity\": {\"name\": \"x\"}}");
}

Test(entities, list_pages)
{
    char id[3][ID_SIZE];
    create_entity("one", NULL, NULL, id[0]);
    create_entity("two", NULL, "echo", id[1]);
    create_entity("three", "p", NULL, id[2]);
    pd_resp r = expect(200, "GET", "/entities?page=1&records=2", NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 2, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 2);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 3);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.id"), id[0], "oldest first");
    pd_resp_free(&r);
    r = expect(200, "GET", "/entities?page=2&records=2", NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 1);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.name"), "three");
    pd_resp_free(&r);
    expect_error(400, "bad_request", NULL, NULL, "GET", "/entities?records=0", NULL);
}

Test(entities, bad_bodies)
{
    expect_error(422, "unprocessable_entity", NULL, "/entity", "POST", "/entities", "{}");
    expect_error(422, "unprocessable_entity", NULL, "/entity", "POST", "/entities", "{\"entity\": 3}");
    expect_error(422, "unprocessable_entity", NULL, "/entity/name", "POST", "/entities", "{\"entity\": {}}");
    expect_error(422, "unprocessable_entity", NULL, "/entity/name", "POST", "/entities",
                 "{\"entity\": {\"name\": \"  \"}}");
    expect_error(422, "unprocessable_entity", NULL, "/entity/name", "POST", "/entities",
                 "{\"entity\": {\"name\": 5}}");
    expect_error(422, "unprocessable_entity", NULL, "/entity/persona", "POST", "/entities",
                 "{\"entity\": {\"name\": \"a\", \"persona\": []}}");
    expect_error(422, "unprocessable_entity", NULL, "/entity/model", "POST", "/entities",
                 "{\"entity\": {\"name\": \"a\", \"model\": \"nosuchprovider/model-x\"}}");
    expect_error(400, "bad_request", NULL, NULL, "POST", "/entities", "{\"entity\": ");
    pd_resp r;
    const char *text[] = {"Content-Type: text/plain", NULL};
    cr_assert_eq(pd_req(&S, "POST", "/entities", S.admin_key, "name=a", text, &r), 0);
    assert_error(&r, 415, "unsupported_media_type", NULL, NULL);
    pd_resp_free(&r);

    char id[ID_SIZE];
    create_entity("a", NULL, NULL, id);
    expect_error(422, "unprocessable_entity", NULL, "/entity/name", "PUT", P("/entities/%s", id),
                 "{\"entity\": {\"name\": null}}");
    expect_error(422, "unprocessable_entity", NULL, "/entity/model", "PUT", P("/entities/%s", id),
                 "{\"entity\": {\"model\": \"nosuchprovider/m\"}}");
    expect_error(404, "not_found", "Entity Not Found", NULL, "GET", "/entities/not-a-uuid", NULL);
    expect_error(404, "not_found", "Entity Not Found", NULL, "GET", "/entities/" NO_SUCH_ID, NULL);
}

/* ---------------------------------------------------------------- clusters */

Test(clusters, spec_examples)
{
    /* POST /clusters, exactly as spec 001 shows it */
    pd_resp r = expect(201, "POST", "/clusters",
                       "{\n    \"cluster\": {\n      \"name\": \"Sales Team Entities\",\n      \"description\": "
                       "\"Digital twins for the sales department\"\n    }\n  }");
    char id[ID_SIZE];
    snprintf(id, sizeof id, "%s", pd_str_at(r.json, "data.id"));
    cr_assert_str_eq(pd_str_at(r.json, "data.type"), "cluster");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.unique_id"), id);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Sales Team Entities");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.description"), "Digital twins for the sales department");
    cr_assert_eq(pd_int_at(r.json, "data.attributes.members_count", -1), 0);
    cr_assert_not_null(pd_str_at(r.json, "data.attributes.created_at"));
    pd_resp_free(&r);

    r = expect(200, "GET", P("/clusters/%s", id), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.id"), id);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.members_count", -1), 0);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.prompts_count", -1), 0);
    cr_assert(json_is_array(pd_json_at(r.json, "data.relationships.members.data")), "%s", r.body);
    pd_resp_free(&r);

    r = expect(200, "GET", "/clusters?page=1&records=20", NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 1);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.unique_id"), id);
    cr_assert_eq(pd_int_at(r.json, "data.0.attributes.members_count", -1), 0);
    cr_assert_not_null(pd_str_at(r.json, "data.0.attributes.updated_at"));
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 1);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 1);
    pd_resp_free(&r);

    r = expect(200, "PUT", P("/clusters/%s", id),
               "{\"cluster\": {\"name\": \"Updated Sales Team\", \"description\": \"Updated description\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Updated Sales Team");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.description"), "Updated description");
    cr_assert_not_null(pd_str_at(r.json, "data.attributes.updated_at"));
    pd_resp_free(&r);

    r = expect(204, "DELETE", P("/clusters/%s", id), NULL);
    cr_assert_eq(r.len, 0);
    pd_resp_free(&r);
    /* the spec's error document, word for word */
    r = expect(404, "GET", P("/clusters/%s", id), NULL);
    assert_error(&r, 404, "not_found", "Cluster Not Found", NULL);
    cr_assert_str_eq(pd_str_at(r.json, "errors.0.detail"), "The requested cluster could not be found.");
    pd_resp_free(&r);
}

Test(clusters, list_pages_and_bad_input)
{
    char id[ID_SIZE];
    for (int i = 0; i < 3; i++)
        create_cluster(P("c%d", i), id);
    pd_resp r = expect(200, "GET", "/clusters?records=2&page=2", NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 1);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.name"), "c2");
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 2);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 3);
    pd_resp_free(&r);
    r = expect(200, "GET", "/clusters", NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 3, "default page size holds 3");
    pd_resp_free(&r);

    expect_error(422, "unprocessable_entity", NULL, "/cluster", "POST", "/clusters", "{}");
    expect_error(422, "unprocessable_entity", NULL, "/cluster/name", "POST", "/clusters", "{\"cluster\": {}}");
    expect_error(422, "unprocessable_entity", NULL, "/cluster/name", "POST", "/clusters",
                 "{\"cluster\": {\"name\": \"\"}}");
    expect_error(422, "unprocessable_entity", NULL, "/cluster/description", "POST", "/clusters",
                 "{\"cluster\": {\"name\": \"x\", \"description\": 1}}");
    expect_error(422, "unprocessable_entity", NULL, "/cluster/name", "PUT", P("/clusters/%s", id),
                 "{\"cluster\": {\"name\": null}}");
    expect_error(400, "bad_request", NULL, NULL, "POST", "/clusters", "{\"cluster\": {\"name\": }");
    pd_resp t;
    const char *text[] = {"Content-Type: text/plain", NULL};
    cr_assert_eq(pd_req(&S, "POST", "/clusters", S.admin_key, "{}", text, &t), 0);
    assert_error(&t, 415, "unsupported_media_type", NULL, NULL);
    pd_resp_free(&t);
    expect_error(404, "not_found", "Cluster Not Found", NULL, "GET", "/clusters/cluster-uuid-123", NULL);
    expect_error(404, "not_found", "Cluster Not Found", NULL, "PUT", "/clusters/cluster-uuid-123",
                 "{\"cluster\": {\"name\": \"x\"}}");
    expect_error(404, "not_found", "Cluster Not Found", NULL, "DELETE", "/clusters/" NO_SUCH_ID, NULL);
}

Test(clusters, members_add_remove_idempotent)
{
    char c[ID_SIZE], e1[ID_SIZE], e2[ID_SIZE];
    create_cluster("team", c);
    create_entity("Ann", NULL, NULL, e1);
    create_entity("Bob", NULL, NULL, e2);

    add_member(c, e1);
    add_member(c, e1); /* twice: the count moves once */
    cr_assert_eq(get_int(P("/clusters/%s", c), "data.attributes.members_count"), 1);
    add_member(c, e2);
    pd_resp r = expect(200, "GET", P("/clusters/%s", c), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.members_count", -1), 2);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data.relationships.members.data")), 2, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.relationships.members.data.0.id"), e1);
    cr_assert_str_eq(pd_str_at(r.json, "data.relationships.members.data.0.type"), "entity");
    cr_assert_str_eq(pd_str_at(r.json, "data.relationships.members.data.1.id"), e2);
    pd_resp_free(&r);
    r = expect(200, "GET", "/clusters", NULL);
    cr_assert_eq(pd_int_at(r.json, "data.0.attributes.members_count", -1), 2);
    pd_resp_free(&r);
    cr_assert_eq(get_int(P("/entities/%s", e1), "data.attributes.clusters_count"), 1);

    r = expect(200, "GET", P("/clusters/%s/members", c), NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 2);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.type"), "entity");
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.name"), "Ann");
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 2);
    pd_resp_free(&r);

    expect_message("DELETE", P("/clusters/%s/members/%s", c, e1), "Entity removed from cluster successfully");
    expect_message("DELETE", P("/clusters/%s/members/%s", c, e1), "Entity removed from cluster successfully");
    r = expect(200, "GET", P("/clusters/%s", c), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.members_count", -1), 1);
    cr_assert_str_eq(pd_str_at(r.json, "data.relationships.members.data.0.id"), e2);
    pd_resp_free(&r);
    cr_assert_eq(get_int(P("/entities/%s", e1), "data.attributes.clusters_count"), 0);

    expect_error(404, "not_found", "Entity Not Found", NULL, "POST", P("/clusters/%s/members/%s", c, NO_SUCH_ID),
                 NULL);
    expect_error(404, "not_found", "Entity Not Found", NULL, "POST", P("/clusters/%s/members/entity-uuid-456", c),
                 NULL);
    expect_error(404, "not_found", "Entity Not Found", NULL, "DELETE", P("/clusters/%s/members/%s", c, NO_SUCH_ID),
                 NULL);
    expect_error(404, "not_found", "Cluster Not Found", NULL, "POST", P("/clusters/%s/members/%s", NO_SUCH_ID, e1),
                 NULL);
    expect_error(404, "not_found", "Cluster Not Found", NULL, "GET", P("/clusters/%s/members", NO_SUCH_ID), NULL);
}

Test(clusters, prompts_add_list_remove)
{
    char c[ID_SIZE], p[ID_SIZE], p2[ID_SIZE];
    create_cluster("team", c);
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "Sales Pitch Generator", "Pitch {{product}}", p, sizeof p), 201);
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "Other", "Other {{x}}", p2, sizeof p2), 201);
    expect_free(200, "PUT", P("/prompts/%s", p), "{\"prompt\": {\"description\": \"Generates sales pitches\"}}");

    expect_message("POST", P("/clusters/%s/prompts/%s", c, p), "Prompt added to cluster successfully");
    expect_message("POST", P("/clusters/%s/prompts/%s", c, p), "Prompt added to cluster successfully");
    cr_assert_eq(get_int(P("/clusters/%s", c), "data.attributes.prompts_count"), 1);
    expect_message("POST", P("/clusters/%s/prompts/%s", c, p2), "Prompt added to cluster successfully");
    cr_assert_eq(get_int(P("/clusters/%s", c), "data.attributes.prompts_count"), 2);

    pd_resp r = expect(200, "GET", P("/clusters/%s/prompts", c), NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 2, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.id"), p);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.type"), "prompt");
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.unique_id"), p);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.name"), "Sales Pitch Generator");
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.description"), "Generates sales pitches");
    pd_resp_free(&r);

    expect_message("DELETE", P("/clusters/%s/prompts/%s", c, p2), "Prompt removed from cluster successfully");
    expect_message("DELETE", P("/clusters/%s/prompts/%s", c, p2), "Prompt removed from cluster successfully");
    cr_assert_eq(get_int(P("/clusters/%s", c), "data.attributes.prompts_count"), 1);

    /* deleting the prompt itself unlinks it */
    expect_free(204, "DELETE", P("/prompts/%s", p), NULL);
    cr_assert_eq(get_int(P("/clusters/%s", c), "data.attributes.prompts_count"), 0);
    r = expect(200, "GET", P("/clusters/%s/prompts", c), NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 0);
    pd_resp_free(&r);

    expect_error(404, "not_found", "Prompt Not Found", NULL, "POST", P("/clusters/%s/prompts/%s", c, p), NULL);
    expect_error(404, "not_found", "Prompt Not Found", NULL, "POST", P("/clusters/%s/prompts/prompt-uuid-789", c),
                 NULL);
    expect_error(404, "not_found", "Cluster Not Found", NULL, "POST", P("/clusters/%s/prompts/%s", NO_SUCH_ID, p2),
                 NULL);
    expect_error(404, "not_found", "Cluster Not Found", NULL, "GET", P("/clusters/%s/prompts", NO_SUCH_ID), NULL);
}

Test(clusters, contexts_crud)
{
    char c[ID_SIZE], x[ID_SIZE];
    create_cluster("team", c);
    pd_resp r = expect(201, "POST", P("/clusters/%s/contexts", c),
                       "{\"context\": {\"name\": \"Sales Guidelines\", \"content\": \"Follow the company sales "
                       "methodology. Always be consultative.\"}}");
    snprintf(x, sizeof x, "%s", pd_str_at(r.json, "data.id"));
    cr_assert_str_eq(pd_str_at(r.json, "data.type"), "context");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.unique_id"), x);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Sales Guidelines");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"),
                     "Follow the company sales methodology. Always be consultative.");
    cr_assert_not_null(pd_str_at(r.json, "data.attributes.created_at"));
    pd_resp_free(&r);
    create(P("/clusters/%s/contexts", c), "{\"context\": {\"content\": \"No name needed\"}}", NULL);

    r = expect(200, "GET", P("/clusters/%s/contexts", c), NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 2);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.id"), x);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.content"),
                     "Follow the company sales methodology. Always be consultative.");
    cr_assert_str_eq(pd_str_at(r.json, "data.1.attributes.name"), "");
    pd_resp_free(&r);
    cr_assert_eq(get_int(P("/clusters/%s", c), "data.attributes.contexts_count"), 2);

    r = expect(200, "PUT", P("/clusters/%s/contexts/%s", c, x), "{\"context\": {\"content\": \"Be brief.\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "Be brief.");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Sales Guidelines");
    pd_resp_free(&r);

    expect_error(422, "unprocessable_entity", NULL, "/context/content", "POST", P("/clusters/%s/contexts", c),
                 "{\"context\": {\"name\": \"n\"}}");
    expect_error(422, "unprocessable_entity", NULL, "/context/content", "POST", P("/clusters/%s/contexts", c),
                 "{\"context\": {\"content\": \"\"}}");
    expect_error(422, "unprocessable_entity", NULL, "/context", "POST", P("/clusters/%s/contexts", c), "{}");
    expect_error(422, "unprocessable_entity", NULL, "/context/content", "PUT", P("/clusters/%s/contexts/%s", c, x),
                 "{\"context\": {\"content\": null}}");
    expect_error(404, "not_found", "Cluster Not Found", NULL, "POST", P("/clusters/%s/contexts", NO_SUCH_ID),
                 "{\"context\": {\"content\": \"c\"}}");

    expect_free(204, "DELETE", P("/clusters/%s/contexts/%s", c, x), NULL);
    expect_error(404, "not_found", "Context Not Found", NULL, "DELETE", P("/clusters/%s/contexts/%s", c, x), NULL);
    expect_error(404, "not_found", "Context Not Found", NULL, "PUT", P("/clusters/%s/contexts/%s", c, x),
                 "{\"context\": {\"content\": \"c\"}}");
    expect_error(404, "not_found", "Context Not Found", NULL, "DELETE", P("/clusters/%s/contexts/context-uuid-456", c),
                 NULL);
    cr_assert_eq(get_int(P("/clusters/%s/contexts", c), "meta.totalRecords"), 1);
}

Test(clusters, delete_cascades_but_keeps_entities_and_prompts)
{
    char c[ID_SIZE], other[ID_SIZE], e[ID_SIZE], p[ID_SIZE], v[ID_SIZE], x[ID_SIZE];
    create_cluster("doomed", c);
    create_cluster("survivor", other);
    create_entity("Ann", NULL, NULL, e);
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "p", "hello", p, sizeof p), 201);
    add_member(c, e);
    add_member(other, e);
    expect_message("POST", P("/clusters/%s/prompts/%s", c, p), "Prompt added to cluster successfully");
    create(P("/clusters/%s/contexts", c), "{\"context\": {\"name\": \"n\", \"content\": \"c\"}}", x);
    create_conversation(c, "talk", v);
    pd_resp r = send_message(c, v, "user", "hello there");
    pd_resp_free(&r);
    cr_assert_eq(get_int(P("/entities/%s", e), "data.attributes.clusters_count"), 2);

    expect_free(204, "DELETE", P("/clusters/%s", c), NULL);

    expect_free(200, "GET", P("/entities/%s", e), NULL);
    expect_free(200, "GET", P("/prompts/%s", p), NULL);
    cr_assert_eq(get_int(P("/entities/%s", e), "data.attributes.clusters_count"), 1);
    cr_assert_eq(get_int(P("/clusters/%s", other), "data.attributes.members_count"), 1);
    expect_error(404, "not_found", "Cluster Not Found", NULL, "GET", P("/clusters/%s/conversations/%s", c, v), NULL);
    expect_error(404, "not_found", "Cluster Not Found", NULL, "GET",
                 P("/clusters/%s/conversations/%s/messages", c, v), NULL);
    expect_error(404, "not_found", "Cluster Not Found", NULL, "GET", P("/clusters/%s/contexts", c), NULL);
    expect_error(404, "not_found", "Cluster Not Found", NULL, "GET", P("/clusters/%s/members", c), NULL);
    /* re-created cluster starts empty: nothing of the old one lingers */
    create_cluster("doomed again", c);
    r = expect(200, "GET", P("/clusters/%s", c), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.members_count", -1), 0);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.prompts_count", -1), 0);
    pd_resp_free(&r);
    expect_message("POST", P("/clusters/%s/prompts/%s", c, p), "Prompt added to cluster successfully");
}

Test(clusters, deleting_an_entity_removes_its_memberships)
{
    char c[ID_SIZE], e1[ID_SIZE], e2[ID_SIZE], v[ID_SIZE];
    create_cluster("team", c);
    create_entity("Ann", NULL, NULL, e1);
    create_entity("Bob", NULL, NULL, e2);
    add_member(c, e1);
    add_member(c, e2);
    create_conversation(c, "t", v);
    pd_resp r = send_message(c, v, "user", "hi");
    pd_resp_free(&r);
    expect_free(204, "DELETE", P("/entities/%s", e1), NULL);
    r = expect(200, "GET", P("/clusters/%s", c), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.members_count", -1), 1);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data.relationships.members.data")), 1);
    cr_assert_str_eq(pd_str_at(r.json, "data.relationships.members.data.0.id"), e2);
    pd_resp_free(&r);
    /* its past reply stays, still naming it */
    r = expect(200, "GET", P("/clusters/%s/conversations/%s/messages", c, v), NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 3, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.1.attributes.entity_name"), "Ann");
    pd_resp_free(&r);
    /* the next message is answered by the remaining member only */
    r = send_message(c, v, "user", "again");
    cr_assert_eq(json_array_size(pd_json_at(r.json, "included")), 1, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "included.0.attributes.entity_id"), e2);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- conversations */

Test(conversations, lifecycle)
{
    char c[ID_SIZE], v[ID_SIZE], v2[ID_SIZE];
    create_cluster("team", c);
    pd_resp r = expect(201, "POST", P("/clusters/%s/conversations", c),
                       "{\n    \"conversation\": {\n      \"title\": \"Team Strategy Session\"\n    }\n  }");
    snprintf(v, sizeof v, "%s", pd_str_at(r.json, "data.id"));
    cr_assert_str_eq(pd_str_at(r.json, "data.type"), "conversation");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.unique_id"), v);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.title"), "Team Strategy Session");
    cr_assert_eq(pd_int_at(r.json, "data.attributes.messages_count", -1), 0);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.status"), "active");
    cr_assert_not_null(pd_str_at(r.json, "data.attributes.created_at"));
    pd_resp_free(&r);
    create_conversation(c, "Second", v2);
    cr_assert_eq(get_int(P("/clusters/%s", c), "data.attributes.conversations_count"), 2);

    r = expect(200, "GET", P("/clusters/%s/conversations", c), NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 2);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.id"), v2, "newest first");
    cr_assert_str_eq(pd_str_at(r.json, "data.1.attributes.title"), "Team Strategy Session");
    cr_assert_str_eq(pd_str_at(r.json, "data.1.attributes.status"), "active");
    cr_assert_eq(pd_int_at(r.json, "data.1.attributes.messages_count", -1), 0);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 2);
    pd_resp_free(&r);

    r = expect(200, "GET", P("/clusters/%s/conversations/%s", c, v), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.title"), "Team Strategy Session");
    pd_resp_free(&r);

    r = expect(200, "POST", P("/clusters/%s/conversations/%s/archive", c, v), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.status"), "archived");
    cr_assert_str_eq(pd_str_at(r.json, "message"), "Conversation archived successfully");
    pd_resp_free(&r);
    r = expect(200, "GET", P("/clusters/%s/conversations?status=archived", c), NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 1);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.id"), v);
    pd_resp_free(&r);
    cr_assert_eq(get_int(P("/clusters/%s/conversations?status=active", c), "meta.totalRecords"), 1);
    expect_error(400, "bad_request", NULL, NULL, "GET", P("/clusters/%s/conversations?status=gone", c), NULL);

    /* an archived conversation takes no messages until it is restored */
    char *body = pd_pack("{s:{s:s, s:s}}", "message", "role", "user", "content", "hello?");
    expect_error(409, "conflict", NULL, NULL, "POST", P("/clusters/%s/conversations/%s/messages", c, v), body);
    r = expect(200, "POST", P("/clusters/%s/conversations/%s/restore", c, v), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.status"), "active");
    cr_assert_str_eq(pd_str_at(r.json, "message"), "Conversation restored successfully");
    pd_resp_free(&r);
    expect_free(201, "POST", P("/clusters/%s/conversations/%s/messages", c, v), body);
    free(body);

    r = expect(200, "PUT", P("/clusters/%s/conversations/%s", c, v),
               "{\"conversation\": {\"title\": \"Renamed\", \"status\": \"archived\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.title"), "Renamed");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.status"), "archived");
    cr_assert_eq(pd_int_at(r.json, "data.attributes.messages_count", -1), 1);
    pd_resp_free(&r);

    expect_free(204, "DELETE", P("/clusters/%s/conversations/%s", c, v), NULL);
    expect_error(404, "not_found", "Conversation Not Found", NULL, "GET", P("/clusters/%s/conversations/%s", c, v),
                 NULL);
    expect_error(404, "not_found", "Conversation Not Found", NULL, "GET",
                 P("/clusters/%s/conversations/%s/messages", c, v), NULL);
    expect_error(404, "not_found", "Conversation Not Found", NULL, "POST",
                 P("/clusters/%s/conversations/%s/archive", c, v), NULL);
    expect_error(404, "not_found", "Conversation Not Found", NULL, "DELETE",
                 P("/clusters/%s/conversations/%s", c, v), NULL);
    cr_assert_eq(get_int(P("/clusters/%s", c), "data.attributes.conversations_count"), 1);
}

Test(conversations, bad_bodies_and_ids)
{
    char c[ID_SIZE], other[ID_SIZE], v[ID_SIZE];
    create_cluster("team", c);
    create_cluster("other", other);
    create_conversation(c, "t", v);
    const char *conv = P("/clusters/%s/conversations", c);
    expect_error(422, "unprocessable_entity", NULL, "/conversation", "POST", conv, "{}");
    expect_error(422, "unprocessable_entity", NULL, "/conversation/title", "POST", conv, "{\"conversation\": {}}");
    expect_error(422, "unprocessable_entity", NULL, "/conversation/title", "POST", conv,
                 "{\"conversation\": {\"title\": 7}}");
    expect_error(422, "unprocessable_entity", NULL, "/conversation/status", "PUT",
                 P("/clusters/%s/conversations/%s", c, v), "{\"conversation\": {\"status\": \"closed\"}}");
    expect_error(422, "unprocessable_entity", NULL, "/conversation/title", "PUT",
                 P("/clusters/%s/conversations/%s", c, v), "{\"conversation\": {\"title\": null}}");
    expect_error(400, "bad_request", NULL, NULL, "POST", conv, "{\"conversation\"");
    expect_error(404, "not_found", "Conversation Not Found", NULL, "GET",
                 P("/clusters/%s/conversations/conv-uuid-789", c), NULL);
    expect_error(404, "not_found", "Cluster Not Found", NULL, "POST",
                 P("/clusters/%s/conversations", NO_SUCH_ID), "{\"conversation\": {\"title\": \"t\"}}");
    /* a conversation is reached only through its own cluster */
    expect_error(404, "not_found", "Conversation Not Found", NULL, "GET",
                 P("/clusters/%s/conversations/%s", other, v), NULL);
    expect_error(404, "not_found", "Conversation Not Found", NULL, "POST",
                 P("/clusters/%s/conversations/%s/messages", other, v),
                 "{\"message\": {\"role\": \"user\", \"content\": \"x\"}}");

    const char *msgs = P("/clusters/%s/conversations/%s/messages", c, v);
    expect_error(422, "unprocessable_entity", NULL, "/message", "POST", msgs, "{}");
    expect_error(422, "unprocessable_entity", NULL, "/message/content", "POST", msgs,
                 "{\"message\": {\"role\": \"user\"}}");
    expect_error(422, "unprocessable_entity", NULL, "/message/content", "POST", msgs,
                 "{\"message\": {\"role\": \"user\", \"content\": \"   \"}}");
    expect_error(422, "unprocessable_entity", NULL, "/message/role", "POST", msgs,
                 "{\"message\": {\"role\": \"robot\", \"content\": \"x\"}}");
    expect_error(422, "unprocessable_entity", NULL, "/message/role", "POST", msgs,
                 "{\"message\": {\"role\": 1, \"content\": \"x\"}}");
    expect_error(400, "bad_request", NULL, NULL, "POST", msgs, "{\"message\": {");
    pd_resp r;
    const char *text[] = {"Content-Type: text/plain", NULL};
    cr_assert_eq(pd_req(&S, "POST", msgs, S.admin_key, "hello", text, &r), 0);
    assert_error(&r, 415, "unsupported_media_type", NULL, NULL);
    pd_resp_free(&r);
    cr_assert_eq(get_int(P("/clusters/%s/conversations/%s", c, v), "data.attributes.messages_count"), 0,
                 "rejected messages are not stored");
}

Test(conversations, messages_without_members)
{
    char c[ID_SIZE], v[ID_SIZE];
    create_cluster("empty", c);
    create_conversation(c, "Team Strategy Session", v);
    /* the spec's example, verbatim */
    pd_resp r = expect(201, "POST", P("/clusters/%s/conversations/%s/messages", c, v),
                       "{\n    \"message\": {\n      \"role\": \"user\",\n      \"content\": \"What is our Q1 sales "
                       "target?\"\n    }\n  }");
    char m[ID_SIZE];
    snprintf(m, sizeof m, "%s", pd_str_at(r.json, "data.id"));
    cr_assert_str_eq(pd_str_at(r.json, "data.type"), "message");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.unique_id"), m);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.role"), "user");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "What is our Q1 sales target?");
    cr_assert_not_null(pd_str_at(r.json, "data.attributes.created_at"));
    cr_assert_eq(json_array_size(pd_json_at(r.json, "included")), 0, "no members, no replies: %s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.replies_count", -1), 0);
    pd_resp_free(&r);

    /* other roles are stored without replies */
    r = send_message(c, v, "system", "Keep answers short.");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.role"), "system");
    pd_resp_free(&r);
    r = send_message(c, v, "assistant", "Noted.");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.role"), "assistant");
    pd_resp_free(&r);

    r = expect(200, "GET", P("/clusters/%s/conversations/%s/messages", c, v), NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 3, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.id"), m);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.type"), "message");
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.unique_id"), m);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.role"), "user");
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.content"), "What is our Q1 sales target?");
    cr_assert_not_null(pd_str_at(r.json, "data.0.attributes.created_at"));
    cr_assert_str_eq(pd_str_at(r.json, "data.1.attributes.role"), "system");
    cr_assert_str_eq(pd_str_at(r.json, "data.2.attributes.role"), "assistant");
    pd_resp_free(&r);
    cr_assert_eq(get_int(P("/clusters/%s/conversations/%s", c, v), "data.attributes.messages_count"), 3);

    r = expect(200, "GET", P("/clusters/%s/conversations/%s/messages/%s", c, v, m), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "What is our Q1 sales target?");
    pd_resp_free(&r);
    expect_error(404, "not_found", "Message Not Found", NULL, "GET",
                 P("/clusters/%s/conversations/%s/messages/%s", c, v, NO_SUCH_ID), NULL);

    /* paging */
    r = expect(200, "GET", P("/clusters/%s/conversations/%s/messages?records=2&page=2", c, v), NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 1);
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 2);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 3);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- replies (echo) */

Test(replies, every_member_replies)
{
    char c[ID_SIZE], e1[ID_SIZE], e2[ID_SIZE], v[ID_SIZE];
    create_cluster("team", c);
    create_entity("Ann", "You are Ann.", NULL, e1);
    create_entity("Bob", NULL, "echo", e2);
    add_member(c, e1);
    add_member(c, e2);
    create_conversation(c, "t", v);

    pd_resp r = send_message(c, v, "user", "What is our Q1 sales target?");
    const char *user_id = pd_str_at(r.json, "data.id");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.role"), "user");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "What is our Q1 sales target?");
    cr_assert_eq(json_array_size(pd_json_at(r.json, "included")), 2, "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data.relationships.replies.data")), 2, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.replies_count", -1), 2);
    cr_assert_eq(pd_int_at(r.json, "meta.failed_count", -1), 0);
    const char *ids[2] = {e1, e2}, *names[2] = {"Ann", "Bob"};
    for (int i = 0; i < 2; i++) {
        json_t *m = reply_of(&r, ids[i]);
        cr_assert_not_null(m, "no reply of %s: %s", names[i], r.body);
        cr_assert_str_eq(pd_str_at(m, "type"), "message");
        cr_assert_str_eq(pd_str_at(m, "attributes.role"), "assistant");
        cr_assert_str_eq(pd_str_at(m, "attributes.status"), "completed");
        cr_assert_str_eq(pd_str_at(m, "attributes.entity_name"), names[i]);
        cr_assert_str_eq(pd_str_at(m, "attributes.content"), "What is our Q1 sales target?", "echo answers");
        cr_assert_str_eq(pd_str_at(m, "attributes.model"), "echo");
        cr_assert_str_eq(pd_str_at(m, "relationships.entity.data.id"), ids[i]);
        cr_assert(json_is_null(pd_json_at(m, "attributes.error")));
        cr_assert(pd_int_at(m, "attributes.usage.total_tokens", 0) > 0);
        /* each reply is an execution too */
        const char *exec = pd_str_at(m, "attributes.execution_id");
        cr_assert_not_null(exec, "%s", r.body);
        pd_resp e = expect(200, "GET", P("/executions/%s", exec), NULL);
        cr_assert_str_eq(pd_str_at(e.json, "data.attributes.status"), "completed", "%s", e.body);
        cr_assert_str_eq(pd_str_at(e.json, "data.attributes.source"), "cluster", "%s", e.body);
        pd_resp_free(&e);
    }
    cr_assert_str_eq(pd_str_at(r.json, "included.0.attributes.entity_id"), e1, "replies keep the members' order");

    pd_resp l = expect(200, "GET", P("/clusters/%s/conversations/%s/messages", c, v), NULL);
    cr_assert_eq(json_array_size(pd_json_at(l.json, "data")), 3, "%s", l.body);
    cr_assert_str_eq(pd_str_at(l.json, "data.0.id"), user_id);
    cr_assert_str_eq(pd_str_at(l.json, "data.1.attributes.entity_id"), e1);
    cr_assert_str_eq(pd_str_at(l.json, "data.1.attributes.status"), "completed");
    cr_assert_str_eq(pd_str_at(l.json, "data.2.attributes.entity_id"), e2);
    pd_resp_free(&l);
    pd_resp_free(&r);
    cr_assert_eq(get_int(P("/clusters/%s/conversations/%s", c, v), "data.attributes.messages_count"), 3);
    r = send_message(c, v, "user", "and Q2?");
    pd_resp_free(&r);
    cr_assert_eq(get_int(P("/clusters/%s/conversations/%s", c, v), "data.attributes.messages_count"), 6);
    cr_assert_eq(get_int(P("/clusters/%s/conversations", c), "data.0.attributes.messages_count"), 6);
}

Test(replies, one_member_by_entity_id)
{
    char c[ID_SIZE], e1[ID_SIZE], e2[ID_SIZE], outsider[ID_SIZE], v[ID_SIZE];
    create_cluster("team", c);
    create_entity("Ann", NULL, NULL, e1);
    create_entity("Bob", NULL, NULL, e2);
    create_entity("Eve", NULL, NULL, outsider);
    add_member(c, e1);
    add_member(c, e2);
    create_conversation(c, "t", v);
    const char *msgs = P("/clusters/%s/conversations/%s/messages", c, v);

    char *body = pd_pack("{s:{s:s, s:s, s:s}}", "message", "role", "user", "content", "Bob only", "entity_id", e2);
    pd_resp r = expect(201, "POST", msgs, body);
    free(body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "included")), 1, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "included.0.attributes.entity_id"), e2);
    cr_assert_str_eq(pd_str_at(r.json, "included.0.attributes.entity_name"), "Bob");
    pd_resp_free(&r);

    /* top-level entity_id works too */
    body = pd_pack("{s:{s:s, s:s}, s:s}", "message", "role", "user", "content", "Ann only", "entity_id", e1);
    r = expect(201, "POST", msgs, body);
    free(body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "included")), 1, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "included.0.attributes.entity_id"), e1);
    pd_resp_free(&r);

    body = pd_pack("{s:{s:s, s:s, s:s}}", "message", "role", "user", "content", "x", "entity_id", outsider);
    expect_error(404, "not_found", "Entity Not Found", "/message/entity_id", "POST", msgs, body);
    free(body);
    body = pd_pack("{s:{s:s, s:s, s:s}}", "message", "role", "user", "content", "x", "entity_id", "bob");
    expect_error(404, "not_found", "Entity Not Found", NULL, "POST", msgs, body);
    free(body);
    expect_error(422, "unprocessable_entity", NULL, "/message/entity_id", "POST", msgs,
                 "{\"message\": {\"content\": \"x\", \"entity_id\": 12}}");
    cr_assert_eq(get_int(P("/clusters/%s/conversations/%s", c, v), "data.attributes.messages_count"), 4);

    /* an assistant message in a member's name: stored, attributed, no replies */
    body = pd_pack("{s:{s:s, s:s, s:s}}", "message", "role", "assistant", "content", "scripted", "entity_id", e1);
    r = expect(201, "POST", msgs, body);
    free(body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.entity_id"), e1);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "included")), 0);
    pd_resp_free(&r);
}

Test(replies, streamed)
{
    char c[ID_SIZE], e1[ID_SIZE], e2[ID_SIZE], v[ID_SIZE];
    create_cluster("team", c);
    create_entity("Ann", NULL, NULL, e1);
    create_entity("Bob", NULL, NULL, e2);
    add_member(c, e1);
    add_member(c, e2);
    create_conversation(c, "t", v);
    char *body = pd_pack("{s:{s:s, s:s}}", "message", "role", "user", "content", "three little words");
    pd_resp r = expect(200, "POST", P("/clusters/%s/conversations/%s/messages?stream=true", c, v), body);
    free(body);
    const char *ct = pd_header(&r, "Content-Type");
    cr_assert(ct && strstr(ct, "text/event-stream"), "Content-Type %s", ct ? ct : "(none)");
    cr_assert_eq(pd_count(r.body, "event: message\n"), 1, "%s", r.body);
    cr_assert_eq(pd_count(r.body, "event: reply\n"), 2, "%s", r.body);
    cr_assert(pd_count(r.body, "event: reply_chunk\n") >= 2, "%s", r.body);
    cr_assert_eq(pd_count(r.body, "event: done\n"), 1, "%s", r.body);
    cr_assert(strstr(r.body, e1) && strstr(r.body, e2), "%s", r.body);
    cr_assert(strstr(r.body, "\"completed_count\":2"), "%s", r.body);
    const char *done = strstr(r.body, "event: done\n");
    cr_assert(done && !strstr(done, "event: reply"), "done comes last: %s", r.body);
    pd_resp_free(&r);

    r = expect(200, "GET", P("/clusters/%s/conversations/%s/messages", c, v), NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 3);
    cr_assert_str_eq(pd_str_at(r.json, "data.1.attributes.status"), "completed");
    cr_assert_str_eq(pd_str_at(r.json, "data.1.attributes.content"), "three little words");
    cr_assert_str_eq(pd_str_at(r.json, "data.2.attributes.content"), "three little words");
    pd_resp_free(&r);

    /* no members: the message, then done */
    char lonely[ID_SIZE], lv[ID_SIZE];
    create_cluster("lonely", lonely);
    create_conversation(lonely, "t", lv);
    r = expect(200, "POST", P("/clusters/%s/conversations/%s/messages?stream=true", lonely, lv),
               "{\"message\": {\"role\": \"user\", \"content\": \"anyone?\"}}");
    cr_assert_eq(pd_count(r.body, "event: message\n"), 1, "%s", r.body);
    cr_assert_eq(pd_count(r.body, "event: reply\n"), 0, "%s", r.body);
    cr_assert_eq(pd_count(r.body, "event: done\n"), 1, "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- isolation */

Test(isolation, other_org_ids_are_404_everywhere)
{
    char c[ID_SIZE], e[ID_SIZE], p[ID_SIZE], x[ID_SIZE], v[ID_SIZE], m[ID_SIZE];
    create_cluster("ours", c);
    create_entity("Ann", NULL, NULL, e);
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "p", "hello", p, sizeof p), 201);
    add_member(c, e);
    expect_message("POST", P("/clusters/%s/prompts/%s", c, p), "Prompt added to cluster successfully");
    create(P("/clusters/%s/contexts", c), "{\"context\": {\"content\": \"secret\"}}", x);
    create_conversation(c, "t", v);
    pd_resp r = send_message(c, v, "user", "hi");
    snprintf(m, sizeof m, "%s", pd_str_at(r.json, "data.id"));
    pd_resp_free(&r);

    char theirs[128];
    cr_assert_eq(pd_new_org_key(&S, "other-org", theirs, sizeof theirs), 0);
    /* their own cluster, entity and conversation, to aim at our ids from */
    char tc[ID_SIZE], te[ID_SIZE], tv[ID_SIZE];
    pd_resp t = expect_as(theirs, 201, "POST", "/clusters", "{\"cluster\": {\"name\": \"theirs\"}}");
    snprintf(tc, sizeof tc, "%s", pd_str_at(t.json, "data.id"));
    pd_resp_free(&t);
    t = expect_as(theirs, 201, "POST", "/entities", "{\"entity\": {\"name\": \"Mallory\"}}");
    snprintf(te, sizeof te, "%s", pd_str_at(t.json, "data.id"));
    pd_resp_free(&t);
    t = expect_as(theirs, 201, "POST", P("/clusters/%s/conversations", tc), "{\"conversation\": {\"title\": \"t\"}}");
    snprintf(tv, sizeof tv, "%s", pd_str_at(t.json, "data.id"));
    pd_resp_free(&t);

    const char *msg = "{\"message\": {\"role\": \"user\", \"content\": \"x\"}}";
    struct {
        const char *method, *path, *body, *title;
    } routes[] = {
        {"GET", P("/entities/%s", e), NULL, "Entity Not Found"},
        {"PUT", P("/entities/%s", e), "{\"entity\": {\"name\": \"x\"}}", "Entity Not Found"},
        {"DELETE", P("/entities/%s", e), NULL, "Entity Not Found"},
        {"GET", P("/clusters/%s", c), NULL, "Cluster Not Found"},
        {"PUT", P("/clusters/%s", c), "{\"cluster\": {\"name\": \"x\"}}", "Cluster Not Found"},
        {"DELETE", P("/clusters/%s", c), NULL, "Cluster Not Found"},
        {"GET", P("/clusters/%s/members", c), NULL, "Cluster Not Found"},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        pd_resp q = expect_as(theirs, 404, routes[i].method, routes[i].path, routes[i].body);
        assert_error(&q, 404, "not_found", routes[i].title, NULL);
        pd_resp_free(&q);
    }
    /* the P() ring holds 8 paths: build the rest in batches */
    struct {
        const char *method, *path, *body, *title;
    } nested[] = {
        {"POST", P("/clusters/%s/members/%s", c, e), NULL, "Cluster Not Found"},
        {"DELETE", P("/clusters/%s/members/%s", c, e), NULL, "Cluster Not Found"},
        {"POST", P("/clusters/%s/members/%s", tc, e), NULL, "Entity Not Found"},
        {"GET", P("/clusters/%s/prompts", c), NULL, "Cluster Not Found"},
        {"POST", P("/clusters/%s/prompts/%s", c, p), NULL, "Cluster Not Found"},
        {"DELETE", P("/clusters/%s/prompts/%s", c, p), NULL, "Cluster Not Found"},
        {"POST", P("/clusters/%s/prompts/%s", tc, p), NULL, "Prompt Not Found"},
        {"GET", P("/clusters/%s/contexts", c), NULL, "Cluster Not Found"},
    };
    for (size_t i = 0; i < sizeof nested / sizeof nested[0]; i++) {
        pd_resp q = expect_as(theirs, 404, nested[i].method, nested[i].path, nested[i].body);
        assert_error(&q, 404, "not_found", nested[i].title, NULL);
        pd_resp_free(&q);
    }
    struct {
        const char *method, *path, *body, *title;
    } deeper[] = {
        {"POST", P("/clusters/%s/contexts", c), "{\"context\": {\"content\": \"x\"}}", "Cluster Not Found"},
        {"PUT", P("/clusters/%s/contexts/%s", c, x), "{\"context\": {\"content\": \"x\"}}", "Cluster Not Found"},
        {"DELETE", P("/clusters/%s/contexts/%s", c, x), NULL, "Cluster Not Found"},
        {"PUT", P("/clusters/%s/contexts/%s", tc, x), "{\"context\": {\"content\": \"x\"}}", "Context Not Found"},
        {"DELETE", P("/clusters/%s/contexts/%s", tc, x), NULL, "Context Not Found"},
        {"GET", P("/clusters/%s/conversations", c), NULL, "Cluster Not Found"},
        {"POST", P("/clusters/%s/conversations", c), "{\"conversation\": {\"title\": \"x\"}}", "Cluster Not Found"},
        {"GET", P("/clusters/%s/conversations/%s", c, v), NULL, "Cluster Not Found"},
    };
    for (size_t i = 0; i < sizeof deeper / sizeof deeper[0]; i++) {
        pd_resp q = expect_as(theirs, 404, deeper[i].method, deeper[i].path, deeper[i].body);
        assert_error(&q, 404, "not_found", deeper[i].title, NULL);
        pd_resp_free(&q);
    }
    struct {
        const char *method, *path, *body, *title;
    } deepest[] = {
        {"GET", P("/clusters/%s/conversations/%s", tc, v), NULL, "Conversation Not Found"},
        {"PUT", P("/clusters/%s/conversations/%s", c, v), "{\"conversation\": {\"title\": \"x\"}}",
         "Cluster Not Found"},
        {"DELETE", P("/clusters/%s/conversations/%s", c, v), NULL, "Cluster Not Found"},
        {"POST", P("/clusters/%s/conversations/%s/archive", c, v), NULL, "Cluster Not Found"},
        {"POST", P("/clusters/%s/conversations/%s/restore", tc, v), NULL, "Conversation Not Found"},
        {"GET", P("/clusters/%s/conversations/%s/messages", c, v), NULL, "Cluster Not Found"},
        {"POST", P("/clusters/%s/conversations/%s/messages", c, v), msg, "Cluster Not Found"},
        {"POST", P("/clusters/%s/conversations/%s/messages", tc, v), msg, "Conversation Not Found"},
    };
    for (size_t i = 0; i < sizeof deepest / sizeof deepest[0]; i++) {
        pd_resp q = expect_as(theirs, 404, deepest[i].method, deepest[i].path, deepest[i].body);
        assert_error(&q, 404, "not_found", deepest[i].title, NULL);
        pd_resp_free(&q);
    }
    struct {
        const char *method, *path, *body, *title;
    } last[] = {
        {"GET", P("/clusters/%s/conversations/%s/messages/%s", c, v, m), NULL, "Cluster Not Found"},
        {"GET", P("/clusters/%s/conversations/%s/messages/%s", tc, tv, m), NULL, "Message Not Found"},
        {"GET", P("/clusters/%s/conversations/%s/messages", tc, v), NULL, "Conversation Not Found"},
    };
    for (size_t i = 0; i < sizeof last / sizeof last[0]; i++) {
        pd_resp q = expect_as(theirs, 404, last[i].method, last[i].path, last[i].body);
        assert_error(&q, 404, "not_found", last[i].title, NULL);
        pd_resp_free(&q);
    }
    /* our entity as the one to answer in their conversation */
    char *body = pd_pack("{s:{s:s, s:s, s:s}}", "message", "role", "user", "content", "x", "entity_id", e);
    t = expect_as(theirs, 404, "POST", P("/clusters/%s/conversations/%s/messages", tc, tv), body);
    free(body);
    assert_error(&t, 404, "not_found", "Entity Not Found", NULL);
    pd_resp_free(&t);

    /* they see none of ours; ours is untouched */
    t = expect_as(theirs, 200, "GET", "/clusters", NULL);
    cr_assert_eq(pd_int_at(t.json, "meta.totalRecords", -1), 1, "%s", t.body);
    pd_resp_free(&t);
    t = expect_as(theirs, 200, "GET", "/entities", NULL);
    cr_assert_eq(pd_int_at(t.json, "meta.totalRecords", -1), 1, "%s", t.body);
    pd_resp_free(&t);
    r = expect(200, "GET", P("/clusters/%s", c), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.members_count", -1), 1);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.prompts_count", -1), 1);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.contexts_count", -1), 1);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "ours");
    pd_resp_free(&r);
    r = expect(200, "GET", P("/clusters/%s/conversations/%s", c, v), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.messages_count", -1), 2);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.status"), "active");
    pd_resp_free(&r);
    cr_assert_eq(get_int(P("/entities/%s", e), "data.attributes.clusters_count"), 1);
}

Test(isolation, needs_a_key)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/clusters", NULL, NULL, NULL, &r), 0);
    assert_error(&r, 401, "unauthorized", NULL, NULL);
    pd_resp_free(&r);
    cr_assert_eq(pd_req(&S, "POST", "/entities", "pk_wrong", "{\"entity\": {\"name\": \"x\"}}", NULL, &r), 0);
    assert_error(&r, 401, "unauthorized", NULL, NULL);
    pd_resp_free(&r);
    /* the spec's header pair, AppId: <key> + Authorization: Bearer <token> (an opaque
     * token that is not a JWT is not needed next to a key; JWTs are auth.c's tests) */
    char auth[160];
    snprintf(auth, sizeof auth, "AppId: %s", S.admin_key);
    const char *headers[] = {"Authorization: Bearer opaque-user-token", auth, NULL};
    cr_assert_eq(pd_req(&S, "GET", "/clusters?page=1&records=20", NULL, NULL, headers, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- replies (mock provider) */

/* The reply's content parsed as the JSON request the mock received (new reference). */
static json_t *echoed_request(json_t *reply)
{
    const char *content = pd_str_at(reply, "attributes.content");
    cr_assert_not_null(content);
    json_error_t err;
    json_t *req = json_loads(content, 0, &err);
    cr_assert_not_null(req, "the reply is not the echoed request: %s", content);
    return req;
}

Test(mock_replies, persona_contexts_and_history_reach_the_model)
{
    char c[ID_SIZE], e1[ID_SIZE], e2[ID_SIZE], v[ID_SIZE];
    create_cluster("team", c);
    create_entity("Ann", "PERSONA-ANN: you lead sales.", "openai/model-ann", e1);
    create_entity("Bob", "PERSONA-BOB: you count money.", "openai/model-bob", e2);
    add_member(c, e1);
    add_member(c, e2);
    create(P("/clusters/%s/contexts", c), "{\"context\": {\"name\": \"Guide\", \"content\": \"Be brief\"}}", NULL);
    create_conversation(c, "t", v);

    pd_resp first = send_message(c, v, "user", "first question");
    cr_assert_eq(pd_int_at(first.json, "meta.completed_count", -1), 2, "%s", first.body);
    json_t *bob_first = reply_of(&first, e2);
    cr_assert_not_null(bob_first);
    const char *bob_said = pd_str_at(bob_first, "attributes.content");
    cr_assert(bob_said && *bob_said, "%s", first.body);
    cr_assert_str_eq(pd_str_at(bob_first, "attributes.model"), "openai/model-bob", "%s", first.body);

    pd_resp second = send_message(c, v, "user", "[mock:echo_request] second question");
    json_t *req = echoed_request(reply_of(&second, e1));
    cr_assert_str_eq(pd_str_at(req, "model"), "model-ann");
    json_t *msgs = pd_json_at(req, "messages");
    size_t n = json_array_size(msgs);
    cr_assert_eq(n, 5, "system, first, Ann's reply, Bob's reply, second: %s", json_dumps(req, 0));
    cr_assert_str_eq(pd_str_at(msgs, "0.role"), "system");
    const char *system = pd_str_at(msgs, "0.content");
    cr_assert(strstr(system, "PERSONA-ANN: you lead sales."), "%s", system);
    cr_assert(!strstr(system, "PERSONA-BOB"), "%s", system);
    cr_assert(strstr(system, "Guide: Be brief"), "%s", system);
    cr_assert_str_eq(pd_str_at(msgs, "1.role"), "user");
    cr_assert_str_eq(pd_str_at(msgs, "1.content"), "first question");
    cr_assert_str_eq(pd_str_at(msgs, "2.role"), "assistant");
    cr_assert_str_eq(pd_str_at(msgs, "2.content"), pd_str_at(reply_of(&first, e1), "attributes.content"),
                     "Ann's own turn, unprefixed");
    cr_assert_str_eq(pd_str_at(msgs, "3.role"), "assistant");
    char prefixed[4096];
    snprintf(prefixed, sizeof prefixed, "Bob: %s", bob_said);
    cr_assert_str_eq(pd_str_at(msgs, "3.content"), prefixed, "another member's turn is named");
    cr_assert_str_eq(pd_str_at(msgs, "4.role"), "user");
    cr_assert(strstr(pd_str_at(msgs, "4.content"), "second question"));
    json_decref(req);

    req = echoed_request(reply_of(&second, e2));
    cr_assert_str_eq(pd_str_at(req, "model"), "model-bob");
    system = pd_str_at(req, "messages.0.content");
    cr_assert(strstr(system, "PERSONA-BOB") && strstr(system, "Guide: Be brief"), "%s", system);
    cr_assert(strncmp(pd_str_at(req, "messages.2.content"), "Ann: ", 5) == 0, "%s",
              pd_str_at(req, "messages.2.content"));
    json_decref(req);
    pd_resp_free(&first);
    pd_resp_free(&second);
}

Test(mock_replies, a_failing_member_does_not_stop_the_others)
{
    char c[ID_SIZE], good[ID_SIZE], bad[ID_SIZE], local[ID_SIZE], v[ID_SIZE];
    create_cluster("team", c);
    create_entity("Good", NULL, "openai/good-model", good);
    create_entity("Bad", NULL, "openai/bad-model", bad);
    create_entity("Local", NULL, "echo", local);
    add_member(c, good);
    add_member(c, bad);
    add_member(c, local);
    create_conversation(c, "t", v);

    pd_resp r = send_message(c, v, "user", "[mock:fail_model=bad-model] hello all");
    cr_assert_eq(json_array_size(pd_json_at(r.json, "included")), 3, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.failed_count", -1), 1, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.completed_count", -1), 2, "%s", r.body);
    json_t *g = reply_of(&r, good), *b = reply_of(&r, bad), *l = reply_of(&r, local);
    cr_assert_str_eq(pd_str_at(g, "attributes.status"), "completed");
    cr_assert(strlen(pd_str_at(g, "attributes.content")) > 0);
    cr_assert_str_eq(pd_str_at(l, "attributes.status"), "completed");
    cr_assert_str_eq(pd_str_at(b, "attributes.status"), "failed", "%s", r.body);
    char error[512];
    cr_assert(pd_str_at(b, "attributes.error") && *pd_str_at(b, "attributes.error"), "a failed reply says why: %s",
              r.body);
    snprintf(error, sizeof error, "%s", pd_str_at(b, "attributes.error"));
    cr_assert_str_eq(pd_str_at(b, "attributes.content"), "");
    const char *exec = pd_str_at(b, "attributes.execution_id");
    cr_assert_not_null(exec);
    pd_resp e = expect(200, "GET", P("/executions/%s", exec), NULL);
    cr_assert_str_eq(pd_str_at(e.json, "data.attributes.status"), "failed", "%s", e.body);
    pd_resp_free(&e);
    pd_resp_free(&r);

    r = expect(200, "GET", P("/clusters/%s/conversations/%s/messages", c, v), NULL);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 4);
    cr_assert_str_eq(pd_str_at(r.json, "data.2.attributes.entity_id"), bad);
    cr_assert_str_eq(pd_str_at(r.json, "data.2.attributes.status"), "failed");
    cr_assert_str_eq(pd_str_at(r.json, "data.2.attributes.error"), error);
    pd_resp_free(&r);

    /* an upstream 500 for everyone on OpenAI: the echo member still answers */
    r = send_message(c, v, "user", "[mock:status=500] again");
    cr_assert_eq(pd_int_at(r.json, "meta.failed_count", -1), 2, "%s", r.body);
    cr_assert_str_eq(pd_str_at(reply_of(&r, local), "attributes.status"), "completed");
    pd_resp_free(&r);
    cr_assert_eq(get_int(P("/clusters/%s/conversations/%s", c, v), "data.attributes.messages_count"), 8);

    /* the failed replies are left out of what the next call sees */
    r = send_message(c, v, "user", "[mock:echo_request] third");
    json_t *req = echoed_request(reply_of(&r, good));
    json_t *msgs = pd_json_at(req, "messages");
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *content = pd_str_at(m, "content");
        cr_assert(strncmp(content, "Bad: ", 5) != 0, "a failed reply was sent as history: %s", content);
    }
    json_decref(req);
    pd_resp_free(&r);
}

Test(mock_replies, members_reply_concurrently)
{
    char c[ID_SIZE], e[3][ID_SIZE], v[ID_SIZE];
    create_cluster("team", c);
    for (int i = 0; i < 3; i++) {
        create_entity(P("Member %d", i), NULL, P("openai/slow-%d", i), e[i]);
        add_member(c, e[i]);
    }
    create_conversation(c, "t", v);
    long long t0 = now_ms();
    pd_resp r = send_message(c, v, "user", "[mock:latency=1000] everyone at once");
    long long took = now_ms() - t0;
    cr_assert_eq(pd_int_at(r.json, "meta.completed_count", -1), 3, "%s", r.body);
    cr_assert(took >= 1000, "the mock's latency was not applied (%lld ms)", took);
    cr_assert(took < 2500, "3 members x 1 s took %lld ms: not concurrent", took);
    pd_resp_free(&r);

    /* streamed too */
    char *body = pd_pack("{s:{s:s, s:s}}", "message", "role", "user", "content", "[mock:latency=1000] stream it");
    t0 = now_ms();
    r = expect(200, "POST", P("/clusters/%s/conversations/%s/messages?stream=true", c, v), body);
    took = now_ms() - t0;
    free(body);
    cr_assert_eq(pd_count(r.body, "event: reply\n"), 3, "%s", r.body);
    cr_assert(pd_count(r.body, "event: reply_chunk\n") >= 3, "%s", r.body);
    cr_assert(strstr(r.body, "\"completed_count\":3"), "%s", r.body);
    cr_assert(took < 2500, "streamed replies took %lld ms: not concurrent", took);
    pd_resp_free(&r);
}

Test(replies, idempotency_key_replays_the_answer)
{
    char c[ID_SIZE], e[ID_SIZE], v[ID_SIZE];
    create_cluster("team", c);
    create_entity("Ann", NULL, NULL, e);
    add_member(c, e);
    create_conversation(c, "t", v);
    const char *path = P("/clusters/%s/conversations/%s/messages", c, v);
    const char *body = "{\"message\": {\"role\": \"user\", \"content\": \"only once\"}}";
    char auth[160];
    snprintf(auth, sizeof auth, "AppId: %s", S.admin_key);
    const char *headers[] = {"Content-Type: application/json", "Idempotency-Key: send-1", auth, NULL};
    pd_resp first, again;
    cr_assert_eq(pd_req(&S, "POST", path, NULL, body, headers, &first), 0);
    cr_assert_eq(first.status, 201, "%s", first.body);
    cr_assert_eq(pd_req(&S, "POST", path, NULL, body, headers, &again), 0);
    cr_assert_eq(again.status, 201, "%s", again.body);
    const char *replayed = pd_header(&again, "Idempotent-Replayed");
    cr_assert(replayed && strcmp(replayed, "true") == 0, "no Idempotent-Replayed header");
    cr_assert_str_eq(pd_str_at(again.json, "data.id"), pd_str_at(first.json, "data.id"));
    cr_assert_str_eq(pd_str_at(again.json, "included.0.id"), pd_str_at(first.json, "included.0.id"));
    pd_resp_free(&first);
    pd_resp_free(&again);
    cr_assert_eq(get_int(P("/clusters/%s/conversations/%s", c, v), "data.attributes.messages_count"), 2,
                 "the repeat stored nothing");
    /* the same key with another body */
    pd_resp other;
    cr_assert_eq(pd_req(&S, "POST", path, NULL, "{\"message\": {\"content\": \"different\"}}", headers, &other), 0);
    assert_error(&other, 422, "unprocessable_entity", NULL, NULL);
    pd_resp_free(&other);
}

/* ---- fan-out caps: members per cluster, replies per message, each reply counted ---- */

#define CAP_RATE 40 /* per minute per key in the tests below (setup_caps says it too) */

static void setup_caps(void)
{
    const char *env[] = {"PROMPTD_CLUSTER_MEMBERS_MAX=3", "PROMPTD_CLUSTER_REPLIES_MAX=2",
                         "PROMPTD_RATE_LIMIT_PER_MINUTE=40", NULL};
    cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start");
}

TestSuite(caps, .init = setup_caps, .fini = teardown, .timeout = 60);

/* A cluster of n echo members (ids into members, ID_SIZE each) and a conversation. */
static void cap_cluster(int n, char *cluster, char (*members)[ID_SIZE], char *conversation)
{
    create_cluster("capped", cluster);
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "M%d", i);
        create_entity(name, NULL, "echo", members[i]);
        add_member(cluster, members[i]);
    }
    create_conversation(cluster, "capped", conversation);
}

Test(caps, members_past_the_cap_are_refused_naming_the_field)
{
    char cluster[ID_SIZE], conversation[ID_SIZE], members[3][ID_SIZE], fourth[ID_SIZE];
    cap_cluster(3, cluster, members, conversation);
    create_entity("M3", NULL, "echo", fourth);
    expect_error(422, "unprocessable_entity", NULL, "/entity_id", "POST", P("/clusters/%s/members/%s", cluster, fourth),
                 NULL);
    expect_error(422, "unprocessable_entity", NULL, "/entity_id", "PUT", P("/clusters/%s/members/%s", cluster, fourth),
                 NULL);
    /* adding a member again is no new member; nothing changed */
    add_member(cluster, members[1]);
    pd_resp r = expect(200, "GET", P("/clusters/%s", cluster), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.members_count", -1), 3, "%s", r.body);
    pd_resp_free(&r);
    /* another organization's cluster is still 404, the cap says nothing of it */
    char other[128];
    cr_assert_eq(pd_new_org_key(&S, "other-org", other, sizeof other), 0);
    r = expect_as(other, 404, "POST", P("/clusters/%s/members/%s", cluster, fourth), NULL);
    pd_resp_free(&r);
    /* with a place free, the fourth fits */
    expect_message("DELETE", P("/clusters/%s/members/%s", cluster, members[0]),
                   "Entity removed from cluster successfully");
    add_member(cluster, fourth);
}

Test(caps, a_message_asking_more_replies_than_the_cap_is_refused)
{
    char cluster[ID_SIZE], conversation[ID_SIZE], members[3][ID_SIZE];
    cap_cluster(3, cluster, members, conversation);
    const char *path = P("/clusters/%s/conversations/%s/messages", cluster, conversation);
    long long before = 0;
    pd_resp r = expect(200, "GET", path, NULL);
    before = pd_int_at(r.json, "meta.totalRecords", -1);
    pd_resp_free(&r);
    expect_error(422, "unprocessable_entity", NULL, "/message/entity_id", "POST", path,
                 "{\"message\": {\"content\": \"all of you\"}}");
    r = expect(200, "GET", path, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), before, "a refused message was stored: %s", r.body);
    pd_resp_free(&r);
    /* one named member replies */
    char *body = pd_pack("{s:{s:s, s:s}}", "message", "content", "just you", "entity_id", members[2]);
    r = expect(201, "POST", path, body);
    cr_assert_eq(pd_int_at(r.json, "meta.replies_count", -1), 1, "%s", r.body);
    pd_resp_free(&r);
    free(body);
}

/* Each reply is one more request against the caller's window: with a window
 * of CAP_RATE, two-reply messages run out after about half as many as
 * one-reply messages would, and the one that does not fit is 429 with
 * Retry-After, stored nothing and called no model. */
Test(caps, each_reply_counts_against_the_rate_limit)
{
    char cluster[ID_SIZE], conversation[ID_SIZE], members[2][ID_SIZE];
    int sent = 0; /* requests this test made with the admin key */
    cap_cluster(2, cluster, members, conversation);
    sent += 1 + 2 * 2 + 1;
    const char *path = P("/clusters/%s/conversations/%s/messages", cluster, conversation);
    int ok = 0;
    pd_resp r = {0};
    for (int i = 0; i < CAP_RATE; i++) {
        pd_resp_free(&r);
        cr_assert_eq(pd_req(&S, "POST", path, S.admin_key, "{\"message\": {\"content\": \"both\"}}", NULL, &r), 0);
        sent++;
        if (r.status != 201)
            break;
        cr_assert_eq(pd_int_at(r.json, "meta.replies_count", -1), 2, "%s", r.body);
        ok++;
    }
    cr_assert_eq(r.status, 429, "two-reply messages never ran out: %ld %s", r.status, r.body);
    cr_assert_not_null(pd_header(&r, "Retry-After"), "429 without Retry-After");
    pd_resp_free(&r);
    /* each message is 2 admissions: at most (CAP_RATE - the others) / 2 fit */
    int others = sent - ok - 1;
    cr_assert_gt(ok, 0);
    cr_assert_leq(ok, (CAP_RATE - others) / 2, "%d two-reply messages ran in a window of %d (%d other requests)", ok,
                  CAP_RATE, others);
}
