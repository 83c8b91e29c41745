/*
 * test_jarvis_sdk_paths.c — over real HTTP, what the official Jarvis SDK
 * (@23blocks/block-jarvis) needs from the Jarvis surface, each success with
 * its bad input (the SDK itself drives every method in tests/sdk; another
 * organization's ids on every new route are in test_cross_org.c):
 *   ids the SDK accepts (UUIDv4), list meta under both names, render's
 *   placeholders, comments' content, executions' input/tokens/duration,
 *   conversations' name; clusters per user (/users/:uid/clusters...),
 *   conversations by id (/conversations...), /identities/:uid/conversations,
 *   entity registration, cancelling an execution, a version's runs, comments
 *   on a prompt, replies, comment reactions, and who may change a comment.
 */
#include <criterion/criterion.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/harness.h"

static pd_server S;
static char USER[64]; /* the admin user's id */

static void setup(void)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/api/v1/users/me", S.admin_key, NULL, NULL, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(USER, sizeof USER, "%s", pd_str_at(r.json, "data.uuid"));
    pd_resp_free(&r);
}
static void teardown(void) { pd_stop(&S); }

TestSuite(sdk_names, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(sdk_clusters, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(sdk_conversations, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(sdk_entities, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(sdk_executions, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(sdk_comments, .init = setup, .fini = teardown, .timeout = 60);

#define NO_SUCH_ID "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
#define ID_SIZE 64

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

/* A Jarvis error answer: status, title (when given), source.pointer (when given). */
static void expect_error_as(const char *key, long status, const char *title, const char *pointer, const char *method,
                            const char *path, const char *body)
{
    pd_resp r = expect_as(key, status, method, path, body);
    char want[8];
    snprintf(want, sizeof want, "%ld", status);
    cr_assert_str_eq(pd_str_at(r.json, "errors.0.status"), want, "%s", r.body);
    if (title)
        cr_assert_str_eq(pd_str_at(r.json, "errors.0.title"), title, "%s", r.body);
    if (pointer) { /* a field path "a.b" is the JSON pointer "/a/b" */
        char want_ptr[160];
        snprintf(want_ptr, sizeof want_ptr, "/%s", pointer);
        for (char *p = want_ptr; *p; p++)
            if (*p == '.')
                *p = '/';
        const char *got = pd_str_at(r.json, "errors.0.source.pointer");
        cr_assert_str_eq(got ? got : "(none)", want_ptr, "%s", r.body);
    }
    pd_resp_free(&r);
}

static void expect_error(long status, const char *title, const char *pointer, const char *method, const char *path,
                         const char *body)
{
    expect_error_as(S.admin_key, status, title, pointer, method, path, body);
}

/* The check the SDK's assertUuid makes: version 1-5, RFC 4122 variant. */
static void assert_sdk_uuid(const char *id)
{
    regex_t re;
    cr_assert_eq(regcomp(&re, "^[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
                         REG_EXTENDED | REG_ICASE | REG_NOSUB),
                 0);
    cr_assert(id && regexec(&re, id, 0, NULL, 0) == 0, "the SDK would refuse the id %s", id ? id : "(null)");
    regfree(&re);
}

/* POST answering 201 (or `status`); the new data.id into id. */
static void create_status(long status, const char *path, const char *body, char *id)
{
    pd_resp r = expect(status, "POST", path, body);
    const char *got = pd_str_at(r.json, "data.id");
    assert_sdk_uuid(got);
    if (id)
        snprintf(id, ID_SIZE, "%s", got);
    pd_resp_free(&r);
}

static void create(const char *path, const char *body, char *id) { create_status(201, path, body, id); }

static void make_prompt(const char *content, char *id)
{
    char *body = pd_pack("{s:{s:s, s:s}}", "prompt", "name", "p", "content", content);
    create("/prompts", body, id);
    free(body);
}

static void make_execution(const char *prompt_id, char *id)
{
    pd_resp r = expect(200, "POST", P("/prompts/%s/execute", prompt_id), "{\"variables\": {\"who\": \"Ada\"}}");
    snprintf(id, ID_SIZE, "%s", pd_str_at(r.json, "data.id"));
    assert_sdk_uuid(id);
    pd_resp_free(&r);
}

/* A member user of the organization and an API key of theirs. */
static void make_member(char *key, size_t keylen)
{
    pd_resp r = expect(201, "POST", "/api/v1/users", "{\"email\": \"member@example.com\", \"name\": \"Member\"}");
    char uid[ID_SIZE];
    snprintf(uid, sizeof uid, "%s", pd_str_at(r.json, "data.uuid"));
    pd_resp_free(&r);
    r = expect(201, "POST", P("/api/v1/users/%s/api-keys", uid), "{\"name\": \"member key\"}");
    const char *k = pd_str_at(r.json, "data.key");
    cr_assert_not_null(k, "%s", r.body);
    snprintf(key, keylen, "%s", k);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- names */

Test(sdk_names, new_ids_pass_the_sdk_check)
{
    char prompt[ID_SIZE], exec[ID_SIZE], cluster[ID_SIZE];
    make_prompt("hello {{who}}", prompt);
    make_execution(prompt, exec);
    create("/clusters", "{\"cluster\": {\"name\": \"c\"}}", cluster);
    create(P("/clusters/%s/conversations", cluster), "{\"conversation\": {\"title\": \"t\"}}", NULL);
    create("/entities", "{\"entity\": {\"name\": \"e\"}}", NULL);
    pd_resp r = expect(200, "GET", P("/prompts/%s/versions", prompt), NULL);
    assert_sdk_uuid(pd_str_at(r.json, "data.0.id"));
    pd_resp_free(&r);
}

Test(sdk_names, list_meta_has_both_names)
{
    for (int i = 0; i < 3; i++)
        make_prompt("x", NULL);
    pd_resp r = expect(200, "GET", "/prompts?page=2&records=2", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalPages", -1), 2, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 3, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.current_page", -1), 2, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.total_pages", -1), 2, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 3, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.per_page", -1), 2, "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 1, "%s", r.body);
    pd_resp_free(&r);
    /* every Jarvis list, e.g. the entities' (empty) */
    r = expect(200, "GET", "/entities", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 0, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.per_page", -1), 15, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.current_page", -1), 1, "%s", r.body);
    pd_resp_free(&r);
}

Test(sdk_names, prompts_take_abstract_and_answer_the_sdk_names)
{
    pd_resp r =
        expect(201, "POST", "/prompts", "{\"prompt\": {\"name\": \"n\", \"abstract\": \"a\", \"content\": \"c\"}}");
    char id[ID_SIZE];
    snprintf(id, sizeof id, "%s", pd_str_at(r.json, "data.id"));
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.description"), "a", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.abstract"), "a", "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.version", -1), 1, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.likes", -1), 0, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.user_unique_id"), USER, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "PUT", P("/prompts/%s", id), "{\"prompt\": {\"abstract\": \"b\", \"content\": \"c2\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.description"), "b", "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.version", -1), 2, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "PUT", P("/prompts/%s/like", id), NULL);
    pd_resp_free(&r);
    r = expect(200, "GET", P("/prompts/%s", id), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.likes", -1), 1, "%s", r.body);
    pd_resp_free(&r);
    expect_error(422, NULL, "prompt.abstract", "POST", "/prompts",
                 "{\"prompt\": {\"name\": \"n\", \"abstract\": 1, \"content\": \"c\"}}");
}

Test(sdk_names, render_takes_placeholders)
{
    char prompt[ID_SIZE];
    make_prompt("Hi {{who}} at {{place}}", prompt);
    pd_resp r = expect(200, "POST", P("/prompts/%s/render", prompt), "{\"placeholders\": {\"who\": \"Ada\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.rendered_content"), "Hi Ada at {{place}}", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.meta.placeholders_provided.0"), "who", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.meta.placeholders_missing.0"), "place", "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data.meta.all_placeholders")), 2, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.prompt_unique_id"), prompt, "%s", r.body);
    pd_resp_free(&r);
    /* "variables" still wins when both are sent */
    r = expect(200, "POST", P("/prompts/%s/render", prompt),
               "{\"variables\": {\"who\": \"Bo\"}, \"placeholders\": {\"who\": \"Ada\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.rendered_content"), "Hi Bo at {{place}}", "%s", r.body);
    pd_resp_free(&r);
    expect_error(422, NULL, "placeholders", "POST", P("/prompts/%s/render", prompt), "{\"placeholders\": [\"who\"]}");
}

Test(sdk_names, executions_answer_input_tokens_duration)
{
    char prompt[ID_SIZE], exec[ID_SIZE];
    make_prompt("hello {{who}}", prompt);
    pd_resp r = expect(200, "POST", P("/prompts/%s/execute", prompt), "{\"variables\": {\"who\": \"Ada\"}}");
    snprintf(exec, sizeof exec, "%s", pd_str_at(r.json, "data.id"));
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.execution_unique_id"), exec, "%s", r.body);
    cr_assert(json_is_integer(pd_json_at(r.json, "data.attributes.duration")), "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", P("/executions/%s", exec), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.input"), "hello Ada", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.rendered_prompt"), "hello Ada", "%s", r.body);
    long long tokens = pd_int_at(r.json, "data.attributes.tokens", -1);
    cr_assert_gt(tokens, 0, "%s", r.body);
    cr_assert_eq(tokens, pd_int_at(r.json, "data.attributes.tokens_used", -2), "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.duration", -1),
                 pd_int_at(r.json, "data.attributes.duration_ms", -2), "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.prompt_unique_id"), prompt, "%s", r.body);
    cr_assert_not_null(pd_str_at(r.json, "data.attributes.completed_at"), "%s", r.body);
    pd_resp_free(&r);
}

Test(sdk_names, comments_take_content_and_answer_both)
{
    char prompt[ID_SIZE], exec[ID_SIZE];
    make_prompt("hello {{who}}", prompt);
    make_execution(prompt, exec);
    char path[512];
    snprintf(path, sizeof path, "%s", P("/prompts/%s/executions/%s/comments", prompt, exec));
    pd_resp r = expect(201, "POST", path, "{\"comment\": {\"content\": \"nice\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.body"), "nice", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "nice", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.execution_unique_id"), exec, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.user_unique_id"), USER, "%s", r.body);
    pd_resp_free(&r);
    /* body still wins when both are sent */
    r = expect(201, "POST", path, "{\"comment\": {\"body\": \"b\", \"content\": \"c\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "b", "%s", r.body);
    pd_resp_free(&r);
    expect_error(422, NULL, "comment.body", "POST", path, "{\"comment\": {}}");
    expect_error(422, NULL, "comment.content", "POST", path, "{\"comment\": {\"content\": 7}}");
    expect_error(422, NULL, "comment.content", "POST", path, "{\"comment\": {\"content\": \"  \"}}");
}

Test(sdk_names, conversations_take_name_and_answer_both)
{
    char cluster[ID_SIZE], conv[ID_SIZE];
    create("/clusters", "{\"cluster\": {\"name\": \"c\"}}", cluster);
    pd_resp r =
        expect(201, "POST", P("/clusters/%s/conversations", cluster), "{\"conversation\": {\"name\": \"Plan\"}}");
    snprintf(conv, sizeof conv, "%s", pd_str_at(r.json, "data.id"));
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Plan", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.title"), "Plan", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.agent_unique_id"), cluster, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.user_unique_id"), USER, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "PUT", P("/clusters/%s/conversations/%s", cluster, conv),
               "{\"conversation\": {\"name\": \"Plan B\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.title"), "Plan B", "%s", r.body);
    pd_resp_free(&r);
    expect_error(422, NULL, "conversation.title", "POST", P("/clusters/%s/conversations", cluster),
                 "{\"conversation\": {}}");
    expect_error(422, NULL, "conversation.name", "POST", P("/clusters/%s/conversations", cluster),
                 "{\"conversation\": {\"name\": 3}}");
    expect_error(422, NULL, "conversation.user_unique_id", "POST", P("/clusters/%s/conversations", cluster),
                 "{\"conversation\": {\"name\": \"x\", \"user_unique_id\": \"" NO_SUCH_ID "\"}}");
}

/* ---------------------------------------------------------------- clusters per user */

Test(sdk_clusters, crud_under_the_user)
{
    char cluster[ID_SIZE];
    create(P("/users/%s/clusters", USER), "{\"cluster\": {\"name\": \"Team\", \"description\": \"d\"}}", cluster);
    pd_resp r = expect(200, "GET", P("/users/%s/clusters/%s", USER, cluster), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Team", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.user_unique_id"), USER, "%s", r.body);
    pd_resp_free(&r);
    /* the same cluster on the organization's path */
    r = expect(200, "GET", P("/clusters/%s", cluster), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Team", "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "PUT", P("/users/%s/clusters/%s", USER, cluster), "{\"cluster\": {\"name\": \"Team 2\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Team 2", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.description"), "d", "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", P("/users/%s/clusters", USER), NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 1, "%s", r.body);
    pd_resp_free(&r);
    r = expect(204, "DELETE", P("/users/%s/clusters/%s", USER, cluster), NULL);
    pd_resp_free(&r);
    expect_error(404, "Cluster Not Found", NULL, "GET", P("/clusters/%s", cluster), NULL);
}

Test(sdk_clusters, lists_only_that_users_clusters)
{
    char member_key[128], mine[ID_SIZE];
    make_member(member_key, sizeof member_key);
    create("/clusters", "{\"cluster\": {\"name\": \"admin's\"}}", mine);
    pd_resp r = expect_as(member_key, 201, "POST", "/clusters", "{\"cluster\": {\"name\": \"member's\"}}");
    char theirs[ID_SIZE];
    snprintf(theirs, sizeof theirs, "%s", pd_str_at(r.json, "data.id"));
    pd_resp_free(&r);
    r = expect(200, "GET", P("/users/%s/clusters", USER), NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 1, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.id"), mine, "%s", r.body);
    pd_resp_free(&r);
    /* a cluster the user did not create is not under that user */
    expect_error(404, "Cluster Not Found", NULL, "GET", P("/users/%s/clusters/%s", USER, theirs), NULL);
    expect_error(404, "Cluster Not Found", NULL, "DELETE", P("/users/%s/clusters/%s", USER, theirs), NULL);
    r = expect(200, "GET", P("/clusters/%s", theirs), NULL); /* still there */
    pd_resp_free(&r);
}

Test(sdk_clusters, bad_input)
{
    expect_error(404, "User Not Found", NULL, "GET", "/users/not-a-uuid/clusters", NULL);
    expect_error(404, "User Not Found", NULL, "GET", "/users/" NO_SUCH_ID "/clusters", NULL);
    expect_error(404, "User Not Found", NULL, "POST", "/users/" NO_SUCH_ID "/clusters",
                 "{\"cluster\": {\"name\": \"x\"}}");
    expect_error(422, NULL, "cluster", "POST", P("/users/%s/clusters", USER), "{\"name\": \"x\"}");
    expect_error(422, NULL, "cluster.name", "POST", P("/users/%s/clusters", USER), "{\"cluster\": {}}");
    expect_error(400, NULL, "records", "GET", P("/users/%s/clusters?records=0", USER), NULL);
    expect_error(404, "Cluster Not Found", NULL, "GET", P("/users/%s/clusters/%s", USER, NO_SUCH_ID), NULL);
    pd_resp r = expect(200, "GET", P("/users/%s/clusters", USER), NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 0, "nothing was created: %s", r.body);
    pd_resp_free(&r);
}

Test(sdk_clusters, assign_a_prompt)
{
    char cluster[ID_SIZE], prompt[ID_SIZE];
    create(P("/users/%s/clusters", USER), "{\"cluster\": {\"name\": \"Team\"}}", cluster);
    make_prompt("x", prompt);
    char path[512];
    snprintf(path, sizeof path, "%s", P("/users/%s/clusters/%s/prompts", USER, cluster));
    char *body = pd_pack("{s:{s:s}}", "prompt", "unique_id", prompt);
    pd_resp r = expect(200, "POST", path, body);
    cr_assert_str_eq(pd_str_at(r.json, "data.id"), cluster, "the cluster answers: %s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.prompts_count", -1), 1, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "POST", path, body); /* idempotent */
    cr_assert_eq(pd_int_at(r.json, "data.attributes.prompts_count", -1), 1, "%s", r.body);
    pd_resp_free(&r);
    free(body);
    expect_error(422, NULL, "prompt.unique_id", "POST", path, "{\"prompt\": {}}");
    expect_error(422, NULL, "prompt.unique_id", "POST", path, "{\"prompt\": {\"unique_id\": \"nope\"}}");
    expect_error(404, "Prompt Not Found", NULL, "POST", path, "{\"prompt\": {\"unique_id\": \"" NO_SUCH_ID "\"}}");
}

Test(sdk_clusters, a_context_is_a_conversation_the_members_answer)
{
    char cluster[ID_SIZE], entity[ID_SIZE], ctx[ID_SIZE];
    create(P("/users/%s/clusters", USER), "{\"cluster\": {\"name\": \"Team\"}}", cluster);
    create("/entities", "{\"entity\": {\"name\": \"Ada\", \"model\": \"echo\"}}", entity);
    pd_resp r = expect(200, "POST", P("/clusters/%s/members/%s", cluster, entity), NULL);
    pd_resp_free(&r);
    char contexts[512];
    snprintf(contexts, sizeof contexts, "%s", P("/users/%s/clusters/%s/contexts", USER, cluster));
    r = expect(201, "POST", contexts, "{\"context\": {\"name\": \"Planning\"}}");
    snprintf(ctx, sizeof ctx, "%s", pd_str_at(r.json, "data.id"));
    cr_assert_str_eq(pd_str_at(r.json, "data.type"), "conversation", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Planning", "%s", r.body);
    pd_resp_free(&r);
    /* no body: a conversation still (the SDK sends {} without data) */
    create(contexts, NULL, NULL);
    r = expect(201, "POST", P("/users/%s/clusters/%s/contexts/%s/messages", USER, cluster, ctx),
               "{\"message\": {\"role\": \"user\", \"content\": \"What next?\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "message.content"), "What next?", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "response.role"), "assistant", "%s", r.body);
    cr_assert_not_null(strstr(pd_str_at(r.json, "response.content"), "What next?"), "echo answers: %s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "response.entity_id"), entity, "%s", r.body);
    assert_sdk_uuid(pd_str_at(r.json, "execution_unique_id"));
    cr_assert_gt(pd_int_at(r.json, "tokens", 0), 0, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", P("/clusters/%s/conversations/%s/messages", cluster, ctx), NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 2, "%s", r.body);
    pd_resp_free(&r);
    expect_error(422, NULL, "context.unique_id", "POST", contexts,
                 "{\"context\": {\"unique_id\": \"" NO_SUCH_ID "\"}}");
    expect_error(422, NULL, "context", "POST", contexts, "{\"context\": 5}");
    expect_error(422, NULL, "message.content", "POST",
                 P("/users/%s/clusters/%s/contexts/%s/messages", USER, cluster, ctx),
                 "{\"message\": {\"role\": \"user\"}}");
    expect_error(404, "Conversation Not Found", NULL, "POST",
                 P("/users/%s/clusters/%s/contexts/%s/messages", USER, cluster, NO_SUCH_ID),
                 "{\"message\": {\"content\": \"x\"}}");
}

/* ---------------------------------------------------------------- conversations by id */

Test(sdk_conversations, the_whole_life_by_id)
{
    char cluster[ID_SIZE], entity[ID_SIZE], conv[ID_SIZE];
    create("/clusters", "{\"cluster\": {\"name\": \"Team\"}}", cluster);
    create("/entities", "{\"entity\": {\"name\": \"Ada\", \"model\": \"echo\"}}", entity);
    pd_resp r = expect(200, "POST", P("/clusters/%s/members/%s", cluster, entity), NULL);
    pd_resp_free(&r);
    char *body = pd_pack("{s:{s:s, s:s}}", "conversation", "agent_unique_id", cluster, "name", "Standup");
    create("/conversations", body, conv);
    free(body);
    r = expect(200, "GET", P("/conversations/%s", conv), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Standup", "%s", r.body);
    pd_resp_free(&r);
    r = expect(201, "POST", P("/conversations/%s/messages", conv), "{\"message\": {\"content\": \"Status?\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "message.role"), "user", "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", P("/conversations/%s/messages", conv), NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 2, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "PUT", P("/conversations/%s/rename", conv), "{\"name\": \"Daily\"}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Daily", "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "PUT", P("/conversations/%s/archive", conv), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.status"), "archived", "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "PUT", P("/conversations/%s/restore", conv), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.status"), "active", "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "POST", P("/conversations/%s/clear", conv), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.messages_count", -1), 0, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", P("/clusters/%s/conversations/%s/messages", cluster, conv), NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 0, "%s", r.body);
    pd_resp_free(&r);
    r = expect(204, "DELETE", P("/conversations/%s", conv), NULL);
    pd_resp_free(&r);
    expect_error(404, "Conversation Not Found", NULL, "GET", P("/conversations/%s", conv), NULL);
}

Test(sdk_conversations, lists_filter_by_cluster_user_status)
{
    char a[ID_SIZE], b[ID_SIZE], member_key[128];
    create("/clusters", "{\"cluster\": {\"name\": \"A\"}}", a);
    create("/clusters", "{\"cluster\": {\"name\": \"B\"}}", b);
    create(P("/clusters/%s/conversations", a), "{\"conversation\": {\"name\": \"a1\"}}", NULL);
    create(P("/clusters/%s/conversations", a), "{\"conversation\": {\"name\": \"a2\"}}", NULL);
    char conv_b[ID_SIZE];
    create(P("/clusters/%s/conversations", b), "{\"conversation\": {\"name\": \"b1\"}}", conv_b);
    pd_resp r = expect(200, "POST", P("/conversations/%s/clear", conv_b), NULL);
    pd_resp_free(&r);
    r = expect(200, "PUT", P("/conversations/%s/archive", conv_b), NULL);
    pd_resp_free(&r);
    make_member(member_key, sizeof member_key);
    r = expect_as(member_key, 201, "POST", P("/clusters/%s/conversations", a), "{\"conversation\": {\"name\": \"m\"}}");
    pd_resp_free(&r);

    r = expect(200, "GET", "/conversations", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 4, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.name"), "m", "newest first: %s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", P("/conversations?agent_unique_id=%s", a), NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 3, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", "/conversations?status=archived", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 1, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.name"), "b1", "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", P("/identities/%s/conversations", USER), NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 3, "the admin's, not the member's: %s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", P("/conversations?user_unique_id=%s&records=2", USER), NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 3, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "meta.total_pages", -1), 2, "%s", r.body);
    pd_resp_free(&r);
    expect_error(400, NULL, "status", "GET", "/conversations?status=gone", NULL);
    expect_error(404, "User Not Found", NULL, "GET", "/identities/" NO_SUCH_ID "/conversations", NULL);
}

Test(sdk_conversations, bad_input)
{
    char cluster[ID_SIZE], conv[ID_SIZE];
    create("/clusters", "{\"cluster\": {\"name\": \"A\"}}", cluster);
    expect_error(422, NULL, "conversation.agent_unique_id", "POST", "/conversations",
                 "{\"conversation\": {\"name\": \"x\"}}");
    expect_error(422, NULL, "conversation.agent_unique_id", "POST", "/conversations",
                 "{\"conversation\": {\"agent_unique_id\": \"nope\", \"name\": \"x\"}}");
    expect_error(404, "Cluster Not Found", NULL, "POST", "/conversations",
                 "{\"conversation\": {\"agent_unique_id\": \"" NO_SUCH_ID "\", \"name\": \"x\"}}");
    char *body = pd_pack("{s:{s:s}}", "conversation", "agent_unique_id", cluster);
    expect_error(422, NULL, "conversation.title", "POST", "/conversations", body);
    free(body);
    expect_error(422, NULL, "conversation", "POST", "/conversations", "{}");
    create(P("/clusters/%s/conversations", cluster), "{\"conversation\": {\"name\": \"c\"}}", conv);
    expect_error(422, NULL, "name", "PUT", P("/conversations/%s/rename", conv), "{}");
    expect_error(422, NULL, "conversation.name", "PUT", P("/conversations/%s/rename", conv), "{\"name\": \"\"}");
    expect_error(404, "Conversation Not Found", NULL, "POST", "/conversations/" NO_SUCH_ID "/clear", NULL);
    expect_error(404, "Conversation Not Found", NULL, "PUT", "/conversations/not-an-id/archive", NULL);
    pd_resp r = expect(200, "GET", "/conversations", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 1, "nothing else was created: %s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.0.attributes.name"), "c", "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- entities */

Test(sdk_entities, register_creates_then_updates)
{
    const char *id = "3f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
    pd_resp r = expect(201, "POST", P("/entities/%s/register", id),
                       "{\"entity\": {\"entity_alias\": \"Ada\", \"instructions\": \"You are Ada.\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.id"), id, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Ada", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.persona"), "You are Ada.", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.instructions"), "You are Ada.", "%s", r.body);
    cr_assert_not_null(pd_header(&r, "Location"));
    pd_resp_free(&r);
    r = expect(200, "POST", P("/entities/%s/register", id), "{\"entity\": {\"content\": \"mathematician\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Ada", "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.description"), "mathematician", "%s", r.body);
    pd_resp_free(&r);
    /* the same id spelled in capitals is the same entity */
    r = expect(200, "POST", "/entities/3F1C2A3B-4D5E-4F60-8A7B-9C0D1E2F3A4B/register", "{\"entity\": {}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.id"), id, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", "/entities", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 1, "%s", r.body);
    pd_resp_free(&r);
    /* the SDK's update sends the same words */
    r = expect(200, "PUT", P("/entities/%s", id), "{\"entity\": {\"instructions\": \"You are Ada Lovelace.\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.persona"), "You are Ada Lovelace.", "%s", r.body);
    pd_resp_free(&r);
}

Test(sdk_entities, register_bad_input)
{
    const char *path = "/entities/" NO_SUCH_ID "/register"; /* a literal: not one of P()'s buffers */
    expect_error(404, "Entity Not Found", NULL, "POST", "/entities/not-a-uuid/register",
                 "{\"entity\": {\"name\": \"x\"}}");
    expect_error(422, NULL, "entity", "POST", path, "{}");
    expect_error(422, NULL, "entity.name", "POST", path, "{\"entity\": {}}");
    expect_error(422, NULL, "entity.name", "POST", path, "{\"entity\": {\"name\": \"\"}}");
    expect_error(422, NULL, "entity.entity_alias", "POST", path, "{\"entity\": {\"entity_alias\": 7}}");
    expect_error(422, NULL, "entity.model", "POST", path, "{\"entity\": {\"name\": \"x\", \"model\": \"nowhere/x\"}}");
    expect_error(404, "Entity Not Found", NULL, "GET", "/entities/" NO_SUCH_ID, NULL);
}

/* ---------------------------------------------------------------- executions */

Test(sdk_executions, cancel_and_version_runs)
{
    char prompt[ID_SIZE], exec[ID_SIZE], v1[ID_SIZE];
    make_prompt("one {{who}}", prompt);
    pd_resp r = expect(200, "GET", P("/prompts/%s/versions", prompt), NULL);
    snprintf(v1, sizeof v1, "%s", pd_str_at(r.json, "data.0.id"));
    pd_resp_free(&r);
    make_execution(prompt, exec);
    r = expect(200, "PUT", P("/prompts/%s", prompt), "{\"prompt\": {\"content\": \"two {{who}}\"}}");
    pd_resp_free(&r);
    make_execution(prompt, exec);
    r = expect(200, "POST", P("/prompts/%s/versions/%s/execute", prompt, v1), "{\"variables\": {\"who\": \"x\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "one x", "version 1 ran: %s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", P("/prompts/%s/versions/%s/executions", prompt, v1), NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 2, "the two runs of version 1: %s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", P("/prompts/%s/executions", prompt), NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 3, "%s", r.body);
    pd_resp_free(&r);
    expect_error(404, "Version Not Found", NULL, "GET", P("/prompts/%s/versions/%s/executions", prompt, NO_SUCH_ID),
                 NULL);
    expect_error(404, "Version Not Found", NULL, "POST", P("/prompts/%s/versions/%s/execute", prompt, NO_SUCH_ID),
                 "{\"variables\": {\"who\": \"x\"}}");
    /* a synchronous run has ended: it cannot be cancelled */
    expect_error(409, "Execution Not Cancellable", NULL, "POST", P("/executions/%s/cancel", exec), NULL);
    expect_error(404, "Execution Not Found", NULL, "POST", "/executions/" NO_SUCH_ID "/cancel", NULL);
    r = expect(200, "GET", P("/executions/%s", exec), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.status"), "completed", "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- comments */

Test(sdk_comments, on_a_prompt_with_replies_and_reactions)
{
    char prompt[ID_SIZE], c1[ID_SIZE], reply[ID_SIZE];
    make_prompt("x", prompt);
    char base[512];
    snprintf(base, sizeof base, "%s", P("/prompts/%s/comments", prompt));
    create(base, "{\"comment\": {\"content\": \"first\"}}", c1);
    create(P("/prompts/%s/comments/%s/reply", prompt, c1), "{\"comment\": {\"body\": \"re\"}}", reply);
    pd_resp r = expect(200, "GET", P("/prompts/%s/comments/%s", prompt, reply), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.parent_unique_id"), c1, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.prompt_unique_id"), prompt, "%s", r.body);
    cr_assert(json_is_null(pd_json_at(r.json, "data.attributes.execution_unique_id")), "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", base, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 2, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", P("%s?parent_unique_id=%s", base, c1), NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 1, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "PUT", P("/prompts/%s/comments/%s/like", prompt, c1), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.likes_count", -1), 1, "%s", r.body);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.replies_count", -1), 1, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "PUT", P("/prompts/%s/comments/%s/like", prompt, c1), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.likes_count", -1), 1, "idempotent: %s", r.body);
    pd_resp_free(&r);
    r = expect(200, "PUT", P("/prompts/%s/comments/%s/save", prompt, c1), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.saves_count", -1), 1, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "PUT", P("/prompts/%s/comments/%s/follow", prompt, c1), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.followers_count", -1), 1, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "DELETE", P("/prompts/%s/comments/%s/dislike", prompt, c1), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.likes_count", -1), 0, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "DELETE", P("/prompts/%s/comments/%s/unsave", prompt, c1), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.saves_count", -1), 0, "%s", r.body);
    pd_resp_free(&r);
    r = expect(200, "DELETE", P("/prompts/%s/comments/%s/unfollow", prompt, c1), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.followers_count", -1), 0, "%s", r.body);
    pd_resp_free(&r);
    /* deleting the reply moves its parent's count back; deleting the parent takes any reply with it */
    r = expect(204, "DELETE", P("/prompts/%s/comments/%s", prompt, reply), NULL);
    pd_resp_free(&r);
    r = expect(200, "GET", P("/prompts/%s/comments/%s", prompt, c1), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.replies_count", -1), 0, "%s", r.body);
    pd_resp_free(&r);
    create(P("/prompts/%s/comments/%s/reply", prompt, c1), "{\"comment\": {\"body\": \"re 2\"}}", reply);
    r = expect(204, "DELETE", P("/prompts/%s/comments/%s", prompt, c1), NULL);
    pd_resp_free(&r);
    expect_error(404, "Comment Not Found", NULL, "GET", P("/prompts/%s/comments/%s", prompt, reply), NULL);
    r = expect(200, "GET", base, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 0, "%s", r.body);
    pd_resp_free(&r);
    /* the prompt's comments go with the prompt */
    create(base, "{\"comment\": {\"body\": \"last\"}}", NULL);
    r = expect(204, "DELETE", P("/prompts/%s", prompt), NULL);
    pd_resp_free(&r);
    expect_error(404, "Prompt Not Found", NULL, "GET", base, NULL);
}

Test(sdk_comments, execution_comment_actions_and_counts)
{
    char prompt[ID_SIZE], exec[ID_SIZE], c1[ID_SIZE];
    make_prompt("hi {{who}}", prompt);
    make_execution(prompt, exec);
    char base[512];
    snprintf(base, sizeof base, "%s", P("/prompts/%s/executions/%s/comments", prompt, exec));
    create(base, "{\"comment\": {\"content\": \"one\"}}", c1);
    create(P("%s/%s/reply", base, c1), "{\"comment\": {\"content\": \"two\"}}", NULL);
    pd_resp r = expect(200, "GET", P("/executions/%s", exec), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.comments_count", -1), 2, "replies count too: %s", r.body);
    pd_resp_free(&r);
    r = expect(200, "PATCH", P("%s/%s", base, c1), "{\"comment\": {\"content\": \"one, edited\"}}");
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.content"), "one, edited", "%s", r.body);
    pd_resp_free(&r);
    r = expect(204, "DELETE", P("%s/%s", base, c1), NULL);
    pd_resp_free(&r);
    r = expect(200, "GET", P("/executions/%s", exec), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.comments_count", -1), 0, "the reply went too: %s", r.body);
    pd_resp_free(&r);
}

Test(sdk_comments, bad_input_and_who_may_change)
{
    char prompt[ID_SIZE], c1[ID_SIZE], member_key[128];
    make_prompt("x", prompt);
    char base[512];
    snprintf(base, sizeof base, "%s", P("/prompts/%s/comments", prompt));
    create(base, "{\"comment\": {\"body\": \"admin's\"}}", c1);
    expect_error(422, NULL, "comment.body", "POST", base, "{\"comment\": {}}");
    expect_error(422, NULL, "comment", "POST", base, "{\"body\": \"x\"}");
    expect_error(400, NULL, "parent_unique_id", "GET", P("%s?parent_unique_id=nope", base), NULL);
    expect_error(404, "Comment Not Found", NULL, "POST", P("%s/%s/reply", base, NO_SUCH_ID),
                 "{\"comment\": {\"body\": \"x\"}}");
    expect_error(404, "Comment Not Found", NULL, "GET", P("%s/%s", base, NO_SUCH_ID), NULL);
    expect_error(404, "Comment Not Found", NULL, "PUT", P("%s/%s/like", base, NO_SUCH_ID), NULL);
    expect_error(404, "Prompt Not Found", NULL, "GET", "/prompts/" NO_SUCH_ID "/comments", NULL);
    expect_error(422, NULL, "comment.body", "PUT", P("%s/%s", base, c1), "{\"comment\": {\"body\": \"\"}}");
    /* another member may read and react, not change or delete */
    make_member(member_key, sizeof member_key);
    pd_resp r = expect_as(member_key, 200, "GET", P("%s/%s", base, c1), NULL);
    pd_resp_free(&r);
    r = expect_as(member_key, 200, "PUT", P("%s/%s/like", base, c1), NULL);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.likes_count", -1), 1, "%s", r.body);
    pd_resp_free(&r);
    expect_error_as(member_key, 404, "Comment Not Found", NULL, "PUT", P("%s/%s", base, c1),
                    "{\"comment\": {\"body\": \"mine now\"}}");
    expect_error_as(member_key, 404, "Comment Not Found", NULL, "DELETE", P("%s/%s", base, c1), NULL);
    r = expect(200, "GET", P("%s/%s", base, c1), NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.body"), "admin's", "unchanged: %s", r.body);
    pd_resp_free(&r);
    r = expect(200, "GET", base, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.total_count", -1), 1, "nothing else was created: %s", r.body);
    pd_resp_free(&r);
}
