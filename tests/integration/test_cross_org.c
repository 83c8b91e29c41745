/*
 * test_cross_org.c — the cross-organization matrix (issue 6, item 4).
 *
 * Organization A gets one of everything: a prompt with two versions, an
 * execution (echo model) with a comment, an entity, a cluster with that
 * entity as member, the prompt, a context, a conversation and a message, a
 * v1 request, a batch, a workspace, a data source, a member user and a second
 * API key. Then organization B's admin key calls EVERY route that takes an
 * id, with every method it has, with A's ids (and with B's own parent and A's
 * child, and the other way round). Every call must answer 404 in its
 * surface's error envelope (never 2xx, 403 or 5xx; HEAD too where GET is
 * served), must say nothing another
 * random id would not (the body equals the one for fresh random ids, ids
 * aside), must not echo A's data, and afterwards every GET of A's objects
 * with A's key answers exactly as before.
 *
 * The matrix is a table of {route, path template, body}: adding a route is
 * one line. The test checks that the table covers every route with a path
 * parameter: the list ROUTES_WITH_PARAMS below, made when this file was
 * written, and, when the test runs from the source tree (as `make
 * integration` does), the api_route() calls in the sources of src/api themselves, so a
 * new route without a row fails here. To regenerate the list, from the
 * repository root:
 *
 *   grep -ho 'api_route(a, "[A-Z]*", "[^"]*:[^"]*"' src/api/[a-z]*.c \
 *     | sed 's/api_route(a, "\([A-Z]*\)", "\([^"]*\)"/"\1 \2",/' | sort
 *
 * A second, smaller table sends A's ids inside bodies and query strings
 * (version_id, prompt_id, user_id, workspace_id, data_source_ids,
 * entity_id), each with the statuses its endpoint documents.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "support/harness.h"

static pd_server S;

static void teardown(void) { pd_stop(&S); }

TestSuite(cross_org, .fini = teardown, .timeout = 120);

/* A marker in A's data: no answer to B may contain it. */
#define MARK "SECRET-A-7f3e"

/* ---------------------------------------------------------------- routes */

/* Every route with a path parameter, from the grep in the top comment. */
static const char *const ROUTES_WITH_PARAMS[] = {
    "DELETE /api/v1/data-sources/:id",
    "DELETE /api/v1/keys/:key",
    "DELETE /api/v1/users/:id",
    "DELETE /api/v1/workspaces/:id",
    "DELETE /clusters/:id",
    "DELETE /clusters/:id/contexts/:context_id",
    "DELETE /clusters/:id/conversations/:conversation_id",
    "DELETE /clusters/:id/members/:entity_id",
    "DELETE /clusters/:id/prompts/:prompt_id",
    "DELETE /conversations/:conversation_id",
    "DELETE /entities/:id",
    "DELETE /prompts/:id",
    "DELETE /prompts/:id/comments/:comment_id",
    "DELETE /prompts/:id/comments/:comment_id/dislike",
    "DELETE /prompts/:id/comments/:comment_id/unfollow",
    "DELETE /prompts/:id/comments/:comment_id/unsave",
    "DELETE /prompts/:id/dislike",
    "DELETE /prompts/:id/executions/:exec_id/comments/:comment_id",
    "DELETE /prompts/:id/executions/:exec_id/comments/:comment_id/dislike",
    "DELETE /prompts/:id/executions/:exec_id/comments/:comment_id/unfollow",
    "DELETE /prompts/:id/executions/:exec_id/comments/:comment_id/unsave",
    "DELETE /prompts/:id/executions/:exec_id/dislike",
    "DELETE /prompts/:id/executions/:exec_id/unsave",
    "DELETE /prompts/:id/unfollow",
    "DELETE /prompts/:id/unsave",
    "DELETE /users/:uid/clusters/:id",
    "GET /api/v1/batches/:id",
    "GET /api/v1/data-sources/:id",
    "GET /api/v1/prompt/:id",
    "GET /api/v1/sessions/:user_id",
    "GET /api/v1/users/:id",
    "GET /api/v1/workspaces/:id",
    "GET /clusters/:id",
    "GET /clusters/:id/contexts",
    "GET /clusters/:id/conversations",
    "GET /clusters/:id/conversations/:conversation_id",
    "GET /clusters/:id/conversations/:conversation_id/messages",
    "GET /clusters/:id/conversations/:conversation_id/messages/:message_id",
    "GET /clusters/:id/members",
    "GET /clusters/:id/prompts",
    "GET /conversations/:conversation_id",
    "GET /conversations/:conversation_id/messages",
    "GET /entities/:id",
    "GET /executions/:id",
    "GET /identities/:uid/conversations",
    "GET /prompts/:id",
    "GET /prompts/:id/comments",
    "GET /prompts/:id/comments/:comment_id",
    "GET /prompts/:id/executions",
    "GET /prompts/:id/executions/:exec_id",
    "GET /prompts/:id/executions/:exec_id/comments",
    "GET /prompts/:id/executions/:exec_id/comments/:comment_id",
    "GET /prompts/:id/versions",
    "GET /prompts/:id/versions/:version_id/executions",
    "GET /users/:uid/clusters",
    "GET /users/:uid/clusters/:id",
    "PATCH /api/v1/data-sources/:id",
    "PATCH /api/v1/users/:id",
    "PATCH /api/v1/workspaces/:id",
    "PATCH /clusters/:id",
    "PATCH /clusters/:id/contexts/:context_id",
    "PATCH /clusters/:id/conversations/:conversation_id",
    "PATCH /entities/:id",
    "PATCH /prompts/:id",
    "PATCH /prompts/:id/comments/:comment_id",
    "PATCH /prompts/:id/executions/:exec_id/comments/:comment_id",
    "PATCH /users/:uid/clusters/:id",
    "POST /api/v1/prompt/:id/cancel",
    "POST /api/v1/prompt/:id/retry",
    "POST /api/v1/users/:id/api-keys",
    "POST /clusters/:id/contexts",
    "POST /clusters/:id/conversations",
    "POST /clusters/:id/conversations/:conversation_id/archive",
    "POST /clusters/:id/conversations/:conversation_id/messages",
    "POST /clusters/:id/conversations/:conversation_id/restore",
    "POST /clusters/:id/members/:entity_id",
    "POST /clusters/:id/prompts/:prompt_id",
    "POST /conversations/:conversation_id/clear",
    "POST /conversations/:conversation_id/messages",
    "POST /executions/:id/cancel",
    "POST /prompts/:id/comments",
    "POST /prompts/:id/comments/:comment_id/reply",
    "POST /prompts/:id/execute",
    "POST /prompts/:id/execute/stream",
    "POST /prompts/:id/executions/:exec_id/comments",
    "POST /prompts/:id/executions/:exec_id/comments/:comment_id/reply",
    "POST /prompts/:id/render",
    "POST /prompts/:id/versions/:version_id/execute",
    "POST /prompts/:id/versions/:version_id/execute/stream",
    "POST /prompts/:id/versions/:version_id/publish",
    "POST /users/:uid/clusters",
    "POST /users/:uid/clusters/:id/contexts",
    "POST /users/:uid/clusters/:id/contexts/:conversation_id/messages",
    "POST /users/:uid/clusters/:id/prompts",
    "PUT /api/v1/data-sources/:id",
    "PUT /api/v1/users/:id",
    "PUT /api/v1/workspaces/:id",
    "PUT /clusters/:id",
    "PUT /clusters/:id/contexts/:context_id",
    "PUT /clusters/:id/conversations/:conversation_id",
    "PUT /clusters/:id/members/:entity_id",
    "PUT /clusters/:id/prompts/:prompt_id",
    "PUT /conversations/:conversation_id/archive",
    "PUT /conversations/:conversation_id/rename",
    "PUT /conversations/:conversation_id/restore",
    "PUT /entities/:id",
    "PUT /prompts/:id",
    "PUT /prompts/:id/comments/:comment_id",
    "PUT /prompts/:id/comments/:comment_id/follow",
    "PUT /prompts/:id/comments/:comment_id/like",
    "PUT /prompts/:id/comments/:comment_id/save",
    "PUT /prompts/:id/executions/:exec_id/comments/:comment_id",
    "PUT /prompts/:id/executions/:exec_id/comments/:comment_id/follow",
    "PUT /prompts/:id/executions/:exec_id/comments/:comment_id/like",
    "PUT /prompts/:id/executions/:exec_id/comments/:comment_id/save",
    "PUT /prompts/:id/executions/:exec_id/like",
    "PUT /prompts/:id/executions/:exec_id/save",
    "PUT /prompts/:id/follow",
    "PUT /prompts/:id/like",
    "PUT /prompts/:id/save",
    "PUT /users/:uid/clusters/:id",
};
#define N_ROUTES (sizeof ROUTES_WITH_PARAMS / sizeof ROUTES_WITH_PARAMS[0])

/* Routes whose path id is the client's choice, so a fresh random id there is
 * a create, not a 404 (the Jarvis SDK's entity registration): they are out of
 * the matrix's "A's ids answer as random ids" comparison, and REFS checks
 * that A's id answers 404 there and changes nothing. */
static const char *const CLIENT_ID_ROUTES[] = {
    "POST /entities/:id/register",
};
#define N_CLIENT_ID (sizeof CLIENT_ID_ROUTES / sizeof CLIENT_ID_ROUTES[0])

/*
 * Placeholders: A's ids in capitals, B's own in lower case.
 *   {P} prompt  {V} version  {E} execution  {CM} comment  {X} entity  {C} cluster
 *   {CX} context  {CV} conversation  {MS} message  {R} v1 request  {BT} batch
 *   {W} workspace  {D} data source  {U} member user  {UA} admin user
 *   {KP} second key's prefix  {KI} its id
 *   {PC} a comment on the prompt itself
 *   {p} {v} {e} {x} {c} {cv} {d}: B's prompt, version, execution, entity,
 *   cluster, conversation, data source; {ub} B's admin user
 */
typedef struct matrix_row {
    const char *route; /* "METHOD /pattern" exactly as registered */
    const char *path;  /* with placeholders */
    const char *body;  /* with placeholders, or NULL */
} matrix_row;

#define PROMPT_BODY "{\"prompt\": {\"name\": \"hijacked\", \"content\": \"pwned {{who}}\", \"status\": \"archived\"}}"
#define ENTITY_BODY "{\"entity\": {\"name\": \"hijacked\", \"persona\": \"pwned\"}}"
#define CLUSTER_BODY "{\"cluster\": {\"name\": \"hijacked\", \"description\": \"pwned\"}}"
#define CONTEXT_BODY "{\"context\": {\"name\": \"hijacked\", \"content\": \"pwned\"}}"
#define CONV_BODY "{\"conversation\": {\"title\": \"hijacked\"}}"
#define MESSAGE_BODY "{\"message\": {\"role\": \"user\", \"content\": \"pwned\"}}"
#define COMMENT_BODY "{\"comment\": {\"body\": \"pwned\"}}"
#define NAME_BODY "{\"name\": \"hijacked\"}"
#define RUN_BODY "{\"variables\": {\"who\": \"B\"}}"
#define V1_NAME_BODY "{\"name\": \"hijacked\", \"description\": \"pwned\"}"
#define USER_BODY "{\"name\": \"hijacked\", \"role\": \"admin\"}"

static const matrix_row MATRIX[] = {
    /* prompts */
    {"GET /prompts/:id", "/prompts/{P}", NULL},
    {"PUT /prompts/:id", "/prompts/{P}", PROMPT_BODY},
    {"PATCH /prompts/:id", "/prompts/{P}", PROMPT_BODY},
    {"DELETE /prompts/:id", "/prompts/{P}", NULL},
    {"POST /prompts/:id/render", "/prompts/{P}/render", RUN_BODY},
    {"POST /prompts/:id/render", "/prompts/{P}/render", "{\"variables\": {\"who\": \"B\"}, \"version_id\": \"{V}\"}"},
    {"GET /prompts/:id/versions", "/prompts/{P}/versions", NULL},
    {"POST /prompts/:id/versions/:version_id/publish", "/prompts/{P}/versions/{V}/publish", NULL},
    {"POST /prompts/:id/versions/:version_id/publish", "/prompts/{p}/versions/{V}/publish", NULL},
    {"POST /prompts/:id/versions/:version_id/publish", "/prompts/{P}/versions/{v}/publish", NULL},
    {"PUT /prompts/:id/like", "/prompts/{P}/like", NULL},
    {"DELETE /prompts/:id/dislike", "/prompts/{P}/dislike", NULL},
    {"PUT /prompts/:id/follow", "/prompts/{P}/follow", NULL},
    {"DELETE /prompts/:id/unfollow", "/prompts/{P}/unfollow", NULL},
    {"PUT /prompts/:id/save", "/prompts/{P}/save", NULL},
    {"DELETE /prompts/:id/unsave", "/prompts/{P}/unsave", NULL},
    /* executing */
    {"POST /prompts/:id/execute", "/prompts/{P}/execute", RUN_BODY},
    {"POST /prompts/:id/execute", "/prompts/{P}/execute", "{\"variables\": {\"who\": \"B\"}, \"version_id\": \"{V}\"}"},
    {"POST /prompts/:id/execute/stream", "/prompts/{P}/execute/stream", RUN_BODY},
    /* executions */
    {"GET /prompts/:id/executions", "/prompts/{P}/executions", NULL},
    {"GET /prompts/:id/executions/:exec_id", "/prompts/{P}/executions/{E}", NULL},
    {"GET /prompts/:id/executions/:exec_id", "/prompts/{p}/executions/{E}", NULL},
    {"GET /prompts/:id/executions/:exec_id", "/prompts/{P}/executions/{e}", NULL},
    {"PUT /prompts/:id/executions/:exec_id/like", "/prompts/{P}/executions/{E}/like", NULL},
    {"PUT /prompts/:id/executions/:exec_id/like", "/prompts/{p}/executions/{E}/like", NULL},
    {"DELETE /prompts/:id/executions/:exec_id/dislike", "/prompts/{P}/executions/{E}/dislike", NULL},
    {"DELETE /prompts/:id/executions/:exec_id/dislike", "/prompts/{p}/executions/{E}/dislike", NULL},
    {"PUT /prompts/:id/executions/:exec_id/save", "/prompts/{P}/executions/{E}/save", NULL},
    {"PUT /prompts/:id/executions/:exec_id/save", "/prompts/{p}/executions/{E}/save", NULL},
    {"DELETE /prompts/:id/executions/:exec_id/unsave", "/prompts/{P}/executions/{E}/unsave", NULL},
    {"DELETE /prompts/:id/executions/:exec_id/unsave", "/prompts/{p}/executions/{E}/unsave", NULL},
    {"GET /executions/:id", "/executions/{E}", NULL},
    /* comments */
    {"GET /prompts/:id/executions/:exec_id/comments", "/prompts/{P}/executions/{E}/comments", NULL},
    {"GET /prompts/:id/executions/:exec_id/comments", "/prompts/{p}/executions/{E}/comments", NULL},
    {"POST /prompts/:id/executions/:exec_id/comments", "/prompts/{P}/executions/{E}/comments", COMMENT_BODY},
    {"POST /prompts/:id/executions/:exec_id/comments", "/prompts/{p}/executions/{E}/comments", COMMENT_BODY},
    {"POST /prompts/:id/executions/:exec_id/comments", "/prompts/{P}/executions/{e}/comments", COMMENT_BODY},
    {"DELETE /prompts/:id/executions/:exec_id/comments/:comment_id", "/prompts/{P}/executions/{E}/comments/{CM}", NULL},
    {"DELETE /prompts/:id/executions/:exec_id/comments/:comment_id", "/prompts/{p}/executions/{e}/comments/{CM}", NULL},
    /* entities */
    {"GET /entities/:id", "/entities/{X}", NULL},
    {"PUT /entities/:id", "/entities/{X}", ENTITY_BODY},
    {"PATCH /entities/:id", "/entities/{X}", ENTITY_BODY},
    {"DELETE /entities/:id", "/entities/{X}", NULL},
    /* clusters */
    {"GET /clusters/:id", "/clusters/{C}", NULL},
    {"PUT /clusters/:id", "/clusters/{C}", CLUSTER_BODY},
    {"PATCH /clusters/:id", "/clusters/{C}", CLUSTER_BODY},
    {"DELETE /clusters/:id", "/clusters/{C}", NULL},
    {"GET /clusters/:id/members", "/clusters/{C}/members", NULL},
    {"POST /clusters/:id/members/:entity_id", "/clusters/{C}/members/{X}", NULL},
    {"POST /clusters/:id/members/:entity_id", "/clusters/{c}/members/{X}", NULL},
    {"POST /clusters/:id/members/:entity_id", "/clusters/{C}/members/{x}", NULL},
    {"PUT /clusters/:id/members/:entity_id", "/clusters/{C}/members/{X}", NULL},
    {"PUT /clusters/:id/members/:entity_id", "/clusters/{c}/members/{X}", NULL},
    {"PUT /clusters/:id/members/:entity_id", "/clusters/{C}/members/{x}", NULL},
    {"DELETE /clusters/:id/members/:entity_id", "/clusters/{C}/members/{X}", NULL},
    {"DELETE /clusters/:id/members/:entity_id", "/clusters/{c}/members/{X}", NULL},
    {"GET /clusters/:id/prompts", "/clusters/{C}/prompts", NULL},
    {"POST /clusters/:id/prompts/:prompt_id", "/clusters/{C}/prompts/{P}", NULL},
    {"POST /clusters/:id/prompts/:prompt_id", "/clusters/{c}/prompts/{P}", NULL},
    {"POST /clusters/:id/prompts/:prompt_id", "/clusters/{C}/prompts/{p}", NULL},
    {"PUT /clusters/:id/prompts/:prompt_id", "/clusters/{C}/prompts/{P}", NULL},
    {"PUT /clusters/:id/prompts/:prompt_id", "/clusters/{c}/prompts/{P}", NULL},
    {"DELETE /clusters/:id/prompts/:prompt_id", "/clusters/{C}/prompts/{P}", NULL},
    {"DELETE /clusters/:id/prompts/:prompt_id", "/clusters/{c}/prompts/{P}", NULL},
    /* contexts */
    {"GET /clusters/:id/contexts", "/clusters/{C}/contexts", NULL},
    {"POST /clusters/:id/contexts", "/clusters/{C}/contexts", CONTEXT_BODY},
    {"PUT /clusters/:id/contexts/:context_id", "/clusters/{C}/contexts/{CX}", CONTEXT_BODY},
    {"PUT /clusters/:id/contexts/:context_id", "/clusters/{c}/contexts/{CX}", CONTEXT_BODY},
    {"PATCH /clusters/:id/contexts/:context_id", "/clusters/{C}/contexts/{CX}", CONTEXT_BODY},
    {"PATCH /clusters/:id/contexts/:context_id", "/clusters/{c}/contexts/{CX}", CONTEXT_BODY},
    {"DELETE /clusters/:id/contexts/:context_id", "/clusters/{C}/contexts/{CX}", NULL},
    {"DELETE /clusters/:id/contexts/:context_id", "/clusters/{c}/contexts/{CX}", NULL},
    /* conversations and messages */
    {"GET /clusters/:id/conversations", "/clusters/{C}/conversations", NULL},
    {"POST /clusters/:id/conversations", "/clusters/{C}/conversations", CONV_BODY},
    {"GET /clusters/:id/conversations/:conversation_id", "/clusters/{C}/conversations/{CV}", NULL},
    {"GET /clusters/:id/conversations/:conversation_id", "/clusters/{c}/conversations/{CV}", NULL},
    {"PUT /clusters/:id/conversations/:conversation_id", "/clusters/{C}/conversations/{CV}", CONV_BODY},
    {"PUT /clusters/:id/conversations/:conversation_id", "/clusters/{c}/conversations/{CV}", CONV_BODY},
    {"PATCH /clusters/:id/conversations/:conversation_id", "/clusters/{C}/conversations/{CV}", CONV_BODY},
    {"PATCH /clusters/:id/conversations/:conversation_id", "/clusters/{c}/conversations/{CV}", CONV_BODY},
    {"DELETE /clusters/:id/conversations/:conversation_id", "/clusters/{C}/conversations/{CV}", NULL},
    {"DELETE /clusters/:id/conversations/:conversation_id", "/clusters/{c}/conversations/{CV}", NULL},
    {"POST /clusters/:id/conversations/:conversation_id/archive", "/clusters/{C}/conversations/{CV}/archive", NULL},
    {"POST /clusters/:id/conversations/:conversation_id/archive", "/clusters/{c}/conversations/{CV}/archive", NULL},
    {"POST /clusters/:id/conversations/:conversation_id/restore", "/clusters/{C}/conversations/{CV}/restore", NULL},
    {"POST /clusters/:id/conversations/:conversation_id/restore", "/clusters/{c}/conversations/{CV}/restore", NULL},
    {"GET /clusters/:id/conversations/:conversation_id/messages", "/clusters/{C}/conversations/{CV}/messages", NULL},
    {"GET /clusters/:id/conversations/:conversation_id/messages", "/clusters/{c}/conversations/{CV}/messages", NULL},
    {"POST /clusters/:id/conversations/:conversation_id/messages", "/clusters/{C}/conversations/{CV}/messages",
     MESSAGE_BODY},
    {"POST /clusters/:id/conversations/:conversation_id/messages", "/clusters/{c}/conversations/{CV}/messages",
     MESSAGE_BODY},
    {"GET /clusters/:id/conversations/:conversation_id/messages/:message_id",
     "/clusters/{C}/conversations/{CV}/messages/{MS}", NULL},
    {"GET /clusters/:id/conversations/:conversation_id/messages/:message_id",
     "/clusters/{c}/conversations/{cv}/messages/{MS}", NULL},
    /* comments on the prompt itself, and the rest of an execution comment's routes */
    {"GET /prompts/:id/comments", "/prompts/{P}/comments", NULL},
    {"POST /prompts/:id/comments", "/prompts/{P}/comments", COMMENT_BODY},
    {"GET /prompts/:id/comments/:comment_id", "/prompts/{P}/comments/{PC}", NULL},
    {"GET /prompts/:id/comments/:comment_id", "/prompts/{p}/comments/{PC}", NULL},
    {"PUT /prompts/:id/comments/:comment_id", "/prompts/{P}/comments/{PC}", COMMENT_BODY},
    {"PUT /prompts/:id/comments/:comment_id", "/prompts/{p}/comments/{PC}", COMMENT_BODY},
    {"PATCH /prompts/:id/comments/:comment_id", "/prompts/{P}/comments/{PC}", COMMENT_BODY},
    {"PATCH /prompts/:id/comments/:comment_id", "/prompts/{p}/comments/{PC}", COMMENT_BODY},
    {"DELETE /prompts/:id/comments/:comment_id", "/prompts/{P}/comments/{PC}", NULL},
    {"DELETE /prompts/:id/comments/:comment_id", "/prompts/{p}/comments/{PC}", NULL},
    {"POST /prompts/:id/comments/:comment_id/reply", "/prompts/{P}/comments/{PC}/reply", COMMENT_BODY},
    {"POST /prompts/:id/comments/:comment_id/reply", "/prompts/{p}/comments/{PC}/reply", COMMENT_BODY},
    {"PUT /prompts/:id/comments/:comment_id/like", "/prompts/{P}/comments/{PC}/like", NULL},
    {"PUT /prompts/:id/comments/:comment_id/like", "/prompts/{p}/comments/{PC}/like", NULL},
    {"DELETE /prompts/:id/comments/:comment_id/dislike", "/prompts/{P}/comments/{PC}/dislike", NULL},
    {"DELETE /prompts/:id/comments/:comment_id/dislike", "/prompts/{p}/comments/{PC}/dislike", NULL},
    {"PUT /prompts/:id/comments/:comment_id/follow", "/prompts/{P}/comments/{PC}/follow", NULL},
    {"PUT /prompts/:id/comments/:comment_id/follow", "/prompts/{p}/comments/{PC}/follow", NULL},
    {"DELETE /prompts/:id/comments/:comment_id/unfollow", "/prompts/{P}/comments/{PC}/unfollow", NULL},
    {"DELETE /prompts/:id/comments/:comment_id/unfollow", "/prompts/{p}/comments/{PC}/unfollow", NULL},
    {"PUT /prompts/:id/comments/:comment_id/save", "/prompts/{P}/comments/{PC}/save", NULL},
    {"PUT /prompts/:id/comments/:comment_id/save", "/prompts/{p}/comments/{PC}/save", NULL},
    {"DELETE /prompts/:id/comments/:comment_id/unsave", "/prompts/{P}/comments/{PC}/unsave", NULL},
    {"DELETE /prompts/:id/comments/:comment_id/unsave", "/prompts/{p}/comments/{PC}/unsave", NULL},
    {"GET /prompts/:id/executions/:exec_id/comments/:comment_id", "/prompts/{P}/executions/{E}/comments/{CM}", NULL},
    {"GET /prompts/:id/executions/:exec_id/comments/:comment_id", "/prompts/{p}/executions/{e}/comments/{CM}", NULL},
    {"PUT /prompts/:id/executions/:exec_id/comments/:comment_id", "/prompts/{P}/executions/{E}/comments/{CM}",
     COMMENT_BODY},
    {"PUT /prompts/:id/executions/:exec_id/comments/:comment_id", "/prompts/{p}/executions/{e}/comments/{CM}",
     COMMENT_BODY},
    {"PATCH /prompts/:id/executions/:exec_id/comments/:comment_id", "/prompts/{P}/executions/{E}/comments/{CM}",
     COMMENT_BODY},
    {"PATCH /prompts/:id/executions/:exec_id/comments/:comment_id", "/prompts/{p}/executions/{e}/comments/{CM}",
     COMMENT_BODY},
    {"POST /prompts/:id/executions/:exec_id/comments/:comment_id/reply",
     "/prompts/{P}/executions/{E}/comments/{CM}/reply", COMMENT_BODY},
    {"POST /prompts/:id/executions/:exec_id/comments/:comment_id/reply",
     "/prompts/{p}/executions/{e}/comments/{CM}/reply", COMMENT_BODY},
    {"PUT /prompts/:id/executions/:exec_id/comments/:comment_id/like", "/prompts/{P}/executions/{E}/comments/{CM}/like",
     NULL},
    {"PUT /prompts/:id/executions/:exec_id/comments/:comment_id/like", "/prompts/{p}/executions/{e}/comments/{CM}/like",
     NULL},
    {"DELETE /prompts/:id/executions/:exec_id/comments/:comment_id/dislike",
     "/prompts/{P}/executions/{E}/comments/{CM}/dislike", NULL},
    {"DELETE /prompts/:id/executions/:exec_id/comments/:comment_id/dislike",
     "/prompts/{p}/executions/{e}/comments/{CM}/dislike", NULL},
    {"PUT /prompts/:id/executions/:exec_id/comments/:comment_id/follow",
     "/prompts/{P}/executions/{E}/comments/{CM}/follow", NULL},
    {"PUT /prompts/:id/executions/:exec_id/comments/:comment_id/follow",
     "/prompts/{p}/executions/{e}/comments/{CM}/follow", NULL},
    {"DELETE /prompts/:id/executions/:exec_id/comments/:comment_id/unfollow",
     "/prompts/{P}/executions/{E}/comments/{CM}/unfollow", NULL},
    {"DELETE /prompts/:id/executions/:exec_id/comments/:comment_id/unfollow",
     "/prompts/{p}/executions/{e}/comments/{CM}/unfollow", NULL},
    {"PUT /prompts/:id/executions/:exec_id/comments/:comment_id/save", "/prompts/{P}/executions/{E}/comments/{CM}/save",
     NULL},
    {"PUT /prompts/:id/executions/:exec_id/comments/:comment_id/save", "/prompts/{p}/executions/{e}/comments/{CM}/save",
     NULL},
    {"DELETE /prompts/:id/executions/:exec_id/comments/:comment_id/unsave",
     "/prompts/{P}/executions/{E}/comments/{CM}/unsave", NULL},
    {"DELETE /prompts/:id/executions/:exec_id/comments/:comment_id/unsave",
     "/prompts/{p}/executions/{e}/comments/{CM}/unsave", NULL},
    /* executions: cancel, a version's runs, running a version */
    {"POST /executions/:id/cancel", "/executions/{E}/cancel", NULL},
    {"POST /executions/:id/cancel", "/executions/{R}/cancel", NULL},
    {"GET /prompts/:id/versions/:version_id/executions", "/prompts/{P}/versions/{V}/executions", NULL},
    {"GET /prompts/:id/versions/:version_id/executions", "/prompts/{p}/versions/{V}/executions", NULL},
    {"POST /prompts/:id/versions/:version_id/execute", "/prompts/{P}/versions/{V}/execute", RUN_BODY},
    {"POST /prompts/:id/versions/:version_id/execute", "/prompts/{p}/versions/{V}/execute", RUN_BODY},
    {"POST /prompts/:id/versions/:version_id/execute/stream", "/prompts/{P}/versions/{V}/execute/stream", RUN_BODY},
    {"POST /prompts/:id/versions/:version_id/execute/stream", "/prompts/{p}/versions/{V}/execute/stream", RUN_BODY},
    /* clusters per user (the Jarvis SDK's paths) */
    {"GET /users/:uid/clusters", "/users/{UA}/clusters", NULL},
    {"GET /users/:uid/clusters", "/users/{U}/clusters", NULL},
    {"POST /users/:uid/clusters", "/users/{UA}/clusters", CLUSTER_BODY},
    {"GET /users/:uid/clusters/:id", "/users/{UA}/clusters/{C}", NULL},
    {"GET /users/:uid/clusters/:id", "/users/{ub}/clusters/{C}", NULL},
    {"PUT /users/:uid/clusters/:id", "/users/{UA}/clusters/{C}", CLUSTER_BODY},
    {"PUT /users/:uid/clusters/:id", "/users/{ub}/clusters/{C}", CLUSTER_BODY},
    {"PATCH /users/:uid/clusters/:id", "/users/{UA}/clusters/{C}", CLUSTER_BODY},
    {"PATCH /users/:uid/clusters/:id", "/users/{ub}/clusters/{C}", CLUSTER_BODY},
    {"DELETE /users/:uid/clusters/:id", "/users/{UA}/clusters/{C}", NULL},
    {"DELETE /users/:uid/clusters/:id", "/users/{ub}/clusters/{C}", NULL},
    {"POST /users/:uid/clusters/:id/prompts", "/users/{UA}/clusters/{C}/prompts",
     "{\"prompt\": {\"unique_id\": \"{P}\"}}"},
    {"POST /users/:uid/clusters/:id/prompts", "/users/{ub}/clusters/{C}/prompts",
     "{\"prompt\": {\"unique_id\": \"{p}\"}}"},
    {"POST /users/:uid/clusters/:id/contexts", "/users/{UA}/clusters/{C}/contexts", CONTEXT_BODY},
    {"POST /users/:uid/clusters/:id/contexts", "/users/{ub}/clusters/{C}/contexts", CONTEXT_BODY},
    {"POST /users/:uid/clusters/:id/contexts/:conversation_id/messages",
     "/users/{UA}/clusters/{C}/contexts/{CV}/messages", MESSAGE_BODY},
    {"POST /users/:uid/clusters/:id/contexts/:conversation_id/messages",
     "/users/{ub}/clusters/{C}/contexts/{CV}/messages", MESSAGE_BODY},
    {"POST /users/:uid/clusters/:id/contexts/:conversation_id/messages",
     "/users/{ub}/clusters/{c}/contexts/{CV}/messages", MESSAGE_BODY},
    /* conversations by id alone */
    {"GET /conversations/:conversation_id", "/conversations/{CV}", NULL},
    {"DELETE /conversations/:conversation_id", "/conversations/{CV}", NULL},
    {"GET /conversations/:conversation_id/messages", "/conversations/{CV}/messages", NULL},
    {"POST /conversations/:conversation_id/messages", "/conversations/{CV}/messages", MESSAGE_BODY},
    {"POST /conversations/:conversation_id/clear", "/conversations/{CV}/clear", NULL},
    {"PUT /conversations/:conversation_id/rename", "/conversations/{CV}/rename", NAME_BODY},
    {"PUT /conversations/:conversation_id/archive", "/conversations/{CV}/archive", NULL},
    {"PUT /conversations/:conversation_id/restore", "/conversations/{CV}/restore", NULL},
    {"GET /identities/:uid/conversations", "/identities/{UA}/conversations", NULL},
    {"GET /identities/:uid/conversations", "/identities/{U}/conversations", NULL},
    /* v1: requests, batches, sessions */
    {"GET /api/v1/prompt/:id", "/api/v1/prompt/{R}", NULL},
    {"POST /api/v1/prompt/:id/cancel", "/api/v1/prompt/{R}/cancel", NULL},
    {"POST /api/v1/prompt/:id/retry", "/api/v1/prompt/{R}/retry", NULL},
    {"GET /api/v1/batches/:id", "/api/v1/batches/{BT}", NULL},
    {"GET /api/v1/sessions/:user_id", "/api/v1/sessions/{UA}", NULL},
    {"GET /api/v1/sessions/:user_id", "/api/v1/sessions/{U}", NULL},
    /* v1: workspaces, data sources, users, keys */
    {"GET /api/v1/workspaces/:id", "/api/v1/workspaces/{W}", NULL},
    {"PUT /api/v1/workspaces/:id", "/api/v1/workspaces/{W}", V1_NAME_BODY},
    {"PATCH /api/v1/workspaces/:id", "/api/v1/workspaces/{W}", V1_NAME_BODY},
    {"DELETE /api/v1/workspaces/:id", "/api/v1/workspaces/{W}", NULL},
    {"GET /api/v1/data-sources/:id", "/api/v1/data-sources/{D}", NULL},
    {"PUT /api/v1/data-sources/:id", "/api/v1/data-sources/{D}", V1_NAME_BODY},
    {"PATCH /api/v1/data-sources/:id", "/api/v1/data-sources/{D}", "{\"workspace_id\": null}"},
    {"DELETE /api/v1/data-sources/:id", "/api/v1/data-sources/{D}", NULL},
    {"GET /api/v1/users/:id", "/api/v1/users/{U}", NULL},
    {"GET /api/v1/users/:id", "/api/v1/users/{UA}", NULL},
    {"PUT /api/v1/users/:id", "/api/v1/users/{U}", USER_BODY},
    {"PATCH /api/v1/users/:id", "/api/v1/users/{U}", USER_BODY},
    {"PATCH /api/v1/users/:id", "/api/v1/users/{UA}", "{\"email\": \"taken-over@b.example\"}"},
    {"DELETE /api/v1/users/:id", "/api/v1/users/{U}", NULL},
    {"DELETE /api/v1/users/:id", "/api/v1/users/{UA}", NULL},
    {"POST /api/v1/users/:id/api-keys", "/api/v1/users/{U}/api-keys", "{\"name\": \"backdoor\"}"},
    {"POST /api/v1/users/:id/api-keys", "/api/v1/users/{UA}/api-keys", "{\"name\": \"backdoor\"}"},
    {"DELETE /api/v1/keys/:key", "/api/v1/keys/{KP}", NULL},
    {"DELETE /api/v1/keys/:key", "/api/v1/keys/{KI}", NULL},
};
#define N_MATRIX (sizeof MATRIX / sizeof MATRIX[0])

/* A's ids inside bodies and query strings: the statuses each endpoint documents. */
typedef struct ref_row {
    const char *method, *path, *body;
    long allowed[3]; /* 0-terminated */
    const char *why;
} ref_row;

static const ref_row REFS[] = {
    {"POST",
     "/prompts/{p}/execute",
     "{\"variables\": {\"who\": \"B\"}, \"version_id\": \"{V}\"}",
     {404},
     "another organization's version is not found"},
    {"POST",
     "/prompts/{p}/execute/stream",
     "{\"variables\": {\"who\": \"B\"}, \"version_id\": \"{V}\"}",
     {404},
     "another organization's version is not found"},
    {"POST",
     "/prompts/{p}/render",
     "{\"variables\": {\"who\": \"B\"}, \"version_id\": \"{V}\"}",
     {404},
     "another organization's version is not found"},
    {"POST", "/api/v1/prompt", "{\"prompt_id\": \"{P}\"}", {404, 400, 422}, "prompt_id of another organization"},
    {"POST",
     "/api/v1/prompt",
     "{\"prompt_id\": \"{P}\", \"async\": true}",
     {404, 400, 422},
     "prompt_id of another organization (async)"},
    {"POST",
     "/api/v1/prompts/batch",
     "{\"prompts\": [{\"prompt_id\": \"{P}\"}]}",
     {400, 404, 422},
     "one bad entry rejects the batch"},
    {"POST",
     "/api/v1/validate",
     "{\"prompt_id\": \"{P}\"}",
     {200, 400, 422},
     "validation may answer 200 with the problem listed, but must not see A's prompt"},
    {"GET",
     "/api/v1/validate?prompt_id={P}",
     NULL,
     {200, 400, 422},
     "validation may answer 200 with the problem listed, but must not see A's prompt"},
    {"POST", "/api/v1/keys", "{\"name\": \"backdoor\", \"user_id\": \"{U}\"}", {404}, "a key for A's user"},
    {"POST", "/api/v1/keys", "{\"name\": \"backdoor\", \"user_id\": \"{UA}\"}", {404}, "a key for A's admin"},
    {"POST",
     "/prompts",
     "{\"prompt\": {\"name\": \"b\", \"content\": \"b\", \"workspace_id\": \"{W}\"}}",
     {422},
     "workspace_id of another organization: 422 naming the field (prompt_links.c)"},
    {"POST",
     "/prompts",
     "{\"prompt\": {\"name\": \"b\", \"content\": \"b\", \"data_source_ids\": [\"{D}\"]}}",
     {422},
     "data_source_ids of another organization: 422 naming the field (prompt_links.c)"},
    {"PUT", "/prompts/{p}", "{\"prompt\": {\"workspace_id\": \"{W}\"}}", {422}, "moving B's prompt into A's workspace"},
    {"POST",
     "/api/v1/data-sources",
     "{\"name\": \"b-ds\", \"type\": \"csv\", \"workspace_id\": \"{W}\"}",
     {422},
     "workspace_id of another organization: 422 naming the field (v1_data_sources.c)"},
    {"PUT",
     "/api/v1/data-sources/{d}",
     "{\"workspace_id\": \"{W}\"}",
     {422},
     "moving B's data source into A's workspace"},
    {"POST",
     "/clusters/{c}/conversations/{cv}/messages",
     "{\"message\": {\"role\": \"user\", \"content\": \"x\", \"entity_id\": \"{X}\"}}",
     {404, 422},
     "A's entity asked to reply in B's conversation"},
    {"POST", "/entities/{X}/register", ENTITY_BODY, {404}, "registering under another organization's entity id"},
    {"POST", "/entities/{X}/register", "{\"entity\": {}}", {404, 422}, "registering A's entity id without a name"},
    {"POST",
     "/conversations",
     "{\"conversation\": {\"agent_unique_id\": \"{C}\", \"name\": \"hijacked\"}}",
     {404},
     "a conversation in another organization's cluster"},
    {"POST",
     "/users/{ub}/clusters/{c}/prompts",
     "{\"prompt\": {\"unique_id\": \"{P}\"}}",
     {404},
     "assigning another organization's prompt"},
    {"GET",
     "/conversations?agent_unique_id={C}",
     NULL,
     {200},
     "filtering by another organization's cluster finds nothing"},
    {"GET",
     "/conversations?user_unique_id={UA}",
     NULL,
     {200},
     "filtering by another organization's user finds nothing"},
    {"GET", "/prompts/{p}/comments?parent_unique_id={PC}", NULL, {200}, "replies to A's comment: none on B's prompt"},
    {"GET", "/api/v1/prompts/history?workspace_id={W}", NULL, {404}, "v1_history.c: another organization's id is 404"},
    {"GET",
     "/api/v1/prompts/history?data_source_id={D}",
     NULL,
     {404},
     "v1_history.c: another organization's id is 404"},
    {"GET", "/api/v1/prompts/history?user_id={U}", NULL, {404}, "v1_history.c: another organization's id is 404"},
    {"GET", "/api/v1/prompts?user_id={UA}", NULL, {404}, "v1_history.c: another organization's id is 404"},
    {"GET", "/api/v1/prompts?workspace_id={W}", NULL, {404}, "v1_history.c: another organization's id is 404"},
};
#define N_REFS (sizeof REFS / sizeof REFS[0])

/* ---------------------------------------------------------------- ids */

typedef struct id_slot {
    const char *name;
    char value[80];
    char random[80]; /* a fresh id of the same shape, for the "says no more than a random id" check */
} id_slot;

#define SLOT(n)                                                                                                        \
    {                                                                                                                  \
        .name = n                                                                                                      \
    }
static id_slot IDS[] = {SLOT("P"),  SLOT("V"),  SLOT("E"),  SLOT("CM"), SLOT("X"), SLOT("C"), SLOT("CX"),
                        SLOT("CV"), SLOT("MS"), SLOT("R"),  SLOT("BT"), SLOT("W"), SLOT("D"), SLOT("U"),
                        SLOT("UA"), SLOT("KP"), SLOT("KI"), SLOT("p"),  SLOT("v"), SLOT("e"), SLOT("x"),
                        SLOT("c"),  SLOT("cv"), SLOT("d"),  SLOT("PC"), SLOT("ub")};
#undef SLOT
#define N_IDS (sizeof IDS / sizeof IDS[0])

static id_slot *slot(const char *name)
{
    for (size_t i = 0; i < N_IDS; i++)
        if (strcmp(IDS[i].name, name) == 0)
            return &IDS[i];
    cr_assert_fail("no id slot %s", name);
    return NULL;
}

static void set_id(const char *name, const char *value)
{
    cr_assert(value && *value && strlen(value) < 80, "no id for {%s}", name);
    snprintf(slot(name)->value, sizeof slot(name)->value, "%s", value);
}

static void random_uuid(char out[37])
{
    unsigned char b[16];
    cr_assert_eq(getrandom(b, sizeof b, 0), (ssize_t)sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x70);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* A's slots are named in capitals; only they get random twins in the comparison (B's stay B's). */
static int is_a(const id_slot *s) { return s->name[0] >= 'A' && s->name[0] <= 'Z'; }

/* Give every slot a random twin: a UUID, or for the key prefix a prefix-shaped string. */
static void make_random_twins(void)
{
    for (size_t i = 0; i < N_IDS; i++) {
        if (strcmp(IDS[i].name, "KP") == 0) {
            char u[37];
            random_uuid(u);
            snprintf(IDS[i].random, sizeof IDS[i].random, "pk_live_%.8s", u);
        } else {
            random_uuid(IDS[i].random);
        }
    }
}

/* Replace {NAME} placeholders by the slots' values (or, for A's, their random twins). malloc'd. */
static char *expand(const char *tmpl, int random)
{
    if (!tmpl)
        return NULL;
    size_t cap = strlen(tmpl) + 1024, n = 0;
    char *out = malloc(cap);
    for (const char *p = tmpl; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (close && close - p > 1 && close - p <= 3) {
            char name[8];
            snprintf(name, sizeof name, "%.*s", (int)(close - p - 1), p + 1);
            int known = 0;
            for (size_t i = 0; i < N_IDS; i++)
                if (strcmp(IDS[i].name, name) == 0)
                    known = 1;
            if (known) {
                const id_slot *s = slot(name);
                const char *v = random && is_a(s) ? s->random : s->value;
                cr_assert(*v, "{%s} has no value", name);
                n += (size_t)snprintf(out + n, cap - n, "%s", v);
                p = close + 1;
                continue;
            }
        }
        out[n++] = *p++;
        out[n] = '\0';
    }
    out[n] = '\0';
    return out;
}

/* Replace every occurrence of each slot's value (or A's random twin) in s by {NAME}. malloc'd. */
static char *normalise_ids(const char *s, int random)
{
    char *cur = strdup(s ? s : "");
    for (size_t i = 0; i < N_IDS; i++) {
        const char *v = random && is_a(&IDS[i]) ? IDS[i].random : IDS[i].value;
        if (!*v)
            continue;
        char tag[16];
        snprintf(tag, sizeof tag, "{%s}", IDS[i].name);
        size_t vl = strlen(v), tl = strlen(tag);
        int count = pd_count(cur, v);
        if (!count)
            continue;
        char *next = malloc(strlen(cur) + (size_t)count * tl + 1), *o = next;
        for (const char *p = cur; *p;) {
            if (strncmp(p, v, vl) == 0) {
                memcpy(o, tag, tl);
                o += tl;
                p += vl;
            } else {
                *o++ = *p++;
            }
        }
        *o = '\0';
        free(cur);
        cur = next;
    }
    return cur;
}

/* ---------------------------------------------------------------- HTTP */

static pd_resp call(const char *key, const char *method, const char *path, const char *body)
{
    pd_resp r;
    int rc = pd_req(&S, method, path, key, body, NULL, &r);
    cr_assert_eq(rc, 0, "%s %s: transfer failed: %s", method, path, r.error);
    return r;
}

static pd_resp expect(const char *key, long status, const char *method, const char *path, const char *body)
{
    pd_resp r = call(key, method, path, body);
    cr_assert_eq(r.status, status, "%s %s: want %ld, got %ld: %s", method, path, status, r.status, r.body);
    return r;
}

/* POST/PUT expecting status; returns the string at `at` in the answer into out. */
static void make(const char *key, long status, const char *method, const char *path, const char *body, const char *at,
                 const char *name)
{
    pd_resp r = expect(key, status, method, path, body);
    if (at && name)
        set_id(name, pd_str_at(r.json, at));
    pd_resp_free(&r);
}

/* Is r a 404 in its surface's envelope? NULL if so, else what is wrong. */
static const char *not_404_envelope(const pd_resp *r, const char *path)
{
    if (r->status != 404)
        return "status is not 404";
    if (strncmp(path, "/api/v1/", 8) == 0) {
        if (!json_is_false(pd_json_at(r->json, "success")))
            return "v1 envelope: success is not false";
        const char *c = pd_str_at(r->json, "error.code");
        if (!c || strcmp(c, "NOT_FOUND") != 0)
            return "v1 envelope: error.code is not NOT_FOUND";
        return NULL;
    }
    if (strncmp(path, "/v1/", 4) == 0) {
        if (!pd_str_at(r->json, "error.message") || !pd_str_at(r->json, "error.type"))
            return "OpenAI envelope: no error.message / error.type";
        return NULL;
    }
    const char *st = pd_str_at(r->json, "errors.0.status"), *code = pd_str_at(r->json, "errors.0.code");
    if (!st || strcmp(st, "404") != 0 || !code || strcmp(code, "not_found") != 0)
        return "Jarvis envelope: errors[0] is not status \"404\" / code not_found";
    return NULL;
}

/* Failures are collected, so one run reports every hole at once. */
static char *failures;
static size_t failures_len;
static int nfailures;

static void fail(const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t ll = strlen(line);
    failures = realloc(failures, failures_len + ll + 2);
    memcpy(failures + failures_len, line, ll);
    failures_len += ll;
    failures[failures_len++] = '\n';
    failures[failures_len] = '\0';
    nfailures++;
}

/* Stop promptd with SIGTERM: it must exit 0 (a crash on the way out, or a
 * sanitizer report in the SAN=1 build, is a failure). */
static void stop_collect(void)
{
    if (S.pid <= 0)
        return;
    int rc = pd_kill_wait(&S, SIGTERM, 15000);
    if (rc != 0) {
        char *log = pd_read_file(S.log_path);
        size_t n = log ? strlen(log) : 0;
        fail("promptd exited with %d after SIGTERM; the end of its log:\n%s", rc,
             log ? log + (n > 1500 ? n - 1500 : 0) : "(none)");
        free(log);
    }
}

/* ---------------------------------------------------------------- snapshots */

static const char *const SNAPSHOT_PATHS[] = {
    "/prompts",
    "/prompts/{P}",
    "/prompts/{P}/versions",
    "/prompts/{P}/executions",
    "/prompts/{P}/executions/{E}",
    "/prompts/{P}/executions/{E}/comments",
    "/prompts/{P}/executions/{E}/comments/{CM}",
    "/prompts/{P}/comments",
    "/prompts/{P}/comments/{PC}",
    "/prompts/{P}/versions/{V}/executions",
    "/users/{UA}/clusters",
    "/conversations",
    "/conversations/{CV}",
    "/conversations/{CV}/messages",
    "/executions",
    "/executions/{E}",
    "/entities",
    "/entities/{X}",
    "/clusters",
    "/clusters/{C}",
    "/clusters/{C}/members",
    "/clusters/{C}/prompts",
    "/clusters/{C}/contexts",
    "/clusters/{C}/conversations",
    "/clusters/{C}/conversations/{CV}",
    "/clusters/{C}/conversations/{CV}/messages",
    "/clusters/{C}/conversations/{CV}/messages/{MS}",
    "/api/v1/prompt/{R}",
    "/api/v1/batches/{BT}",
    "/api/v1/workspaces",
    "/api/v1/workspaces/{W}",
    "/api/v1/data-sources",
    "/api/v1/data-sources/{D}",
    "/api/v1/users",
    "/api/v1/users/{U}",
    "/api/v1/users/{UA}",
    "/api/v1/keys",
    "/api/v1/sessions/{UA}",
    "/api/v1/prompts/history?user_id=all",
    "/api/v1/prompts",
};
#define N_SNAP (sizeof SNAPSHOT_PATHS / sizeof SNAPSHOT_PATHS[0])

typedef struct snapshot {
    long status[N_SNAP];
    char *body[N_SNAP];
} snapshot;

/* GET every snapshot path with key; must_ok: each must answer 200 (the "before" pictures). */
static void take_snapshot(const char *key, snapshot *s, int must_ok)
{
    for (size_t i = 0; i < N_SNAP; i++) {
        char *path = expand(SNAPSHOT_PATHS[i], 0);
        pd_resp r = call(key, "GET", path, NULL);
        if (must_ok)
            cr_assert_eq(r.status, 200, "snapshot GET %s with A's key: %ld %s", path, r.status, r.body);
        s->status[i] = r.status;
        s->body[i] = strdup(r.body);
        pd_resp_free(&r);
        free(path);
    }
}

static void free_snapshot(snapshot *s)
{
    for (size_t i = 0; i < N_SNAP; i++)
        free(s->body[i]);
}

static int snapshots_equal(const snapshot *a, const snapshot *b, size_t *which)
{
    for (size_t i = 0; i < N_SNAP; i++) {
        if (a->status[i] != b->status[i] || strcmp(a->body[i], b->body[i]) != 0) {
            *which = i;
            return 0;
        }
    }
    return 1;
}

/* A snapshot that holds still: take them until two in a row agree (replies, batches settle). */
static void stable_snapshot(const char *key, snapshot *out)
{
    snapshot prev;
    take_snapshot(key, &prev, 1);
    for (int i = 0; i < 50; i++) {
        usleep(100 * 1000);
        take_snapshot(key, out, 1);
        size_t w;
        if (snapshots_equal(&prev, out, &w)) {
            free_snapshot(&prev);
            return;
        }
        free_snapshot(&prev);
        prev = *out;
    }
    cr_assert_fail("organization A's data does not settle");
}

/* ---------------------------------------------------------------- setup */

static char A_KEY2[128];

/* Poll until a v1 batch has finished. */
static void wait_batch(const char *key, const char *batch_id)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/batches/%s", batch_id);
    for (int i = 0; i < 200; i++) {
        pd_resp r = expect(key, 200, "GET", path, NULL);
        const char *st = pd_str_at(r.json, "data.status");
        int done = st && (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
                          strcmp(st, "partially_failed") == 0 || strcmp(st, "cancelled") == 0);
        long long left = pd_int_at(r.json, "data.counts.queued", -1) + pd_int_at(r.json, "data.counts.processing", -1);
        pd_resp_free(&r);
        if (done || left == 0)
            return;
        usleep(50 * 1000);
    }
    cr_assert_fail("batch %s did not finish", batch_id);
}

static void build_org_a(void)
{
    const char *a = S.admin_key;
    char path[512], *p;
    make(a, 201, "POST", "/prompts",
         "{\"prompt\": {\"name\": \"" MARK " prompt\", \"description\": \"" MARK "\", \"content\": \"" MARK
         " hello {{who}}\"}}",
         "data.id", "P");
    /* a second version */
    p = expand("/prompts/{P}", 0);
    make(a, 200, "PUT", p, "{\"prompt\": {\"content\": \"" MARK " v2 hello {{who}}\"}}", NULL, NULL);
    free(p);
    p = expand("/prompts/{P}/versions", 0);
    make(a, 200, "GET", p, NULL, "data.0.id", "V");
    free(p);
    p = expand("/prompts/{P}/execute", 0);
    make(a, 200, "POST", p, "{\"variables\": {\"who\": \"A\"}}", "data.id", "E");
    free(p);
    p = expand("/prompts/{P}/executions/{E}/comments", 0);
    make(a, 201, "POST", p, "{\"comment\": {\"body\": \"" MARK " comment\"}}", "data.id", "CM");
    free(p);
    p = expand("/prompts/{P}/comments", 0);
    make(a, 201, "POST", p, "{\"comment\": {\"content\": \"" MARK " prompt comment\"}}", "data.id", "PC");
    free(p);
    p = expand("/prompts/{P}/comments/{PC}/like", 0);
    make(a, 200, "PUT", p, NULL, NULL, NULL);
    free(p);
    /* social state B must not be able to flip */
    p = expand("/prompts/{P}/like", 0);
    make(a, 200, "PUT", p, NULL, NULL, NULL);
    free(p);
    p = expand("/prompts/{P}/executions/{E}/save", 0);
    make(a, 200, "PUT", p, NULL, NULL, NULL);
    free(p);

    make(a, 201, "POST", "/entities",
         "{\"entity\": {\"name\": \"" MARK " entity\", \"persona\": \"" MARK "\", \"model\": \"echo\"}}", "data.id",
         "X");
    make(a, 201, "POST", "/clusters", "{\"cluster\": {\"name\": \"" MARK " cluster\", \"description\": \"" MARK "\"}}",
         "data.id", "C");
    p = expand("/clusters/{C}/prompts/{P}", 0);
    pd_resp r = call(a, "POST", p, NULL);
    cr_assert(r.status == 200 || r.status == 201, "POST %s: %ld %s", p, r.status, r.body);
    pd_resp_free(&r);
    free(p);
    p = expand("/clusters/{C}/contexts", 0);
    make(a, 201, "POST", p, "{\"context\": {\"name\": \"" MARK "\", \"content\": \"" MARK " context\"}}", "data.id",
         "CX");
    free(p);
    p = expand("/clusters/{C}/conversations", 0);
    make(a, 201, "POST", p, "{\"conversation\": {\"title\": \"" MARK " conversation\"}}", "data.id", "CV");
    free(p);
    p = expand("/clusters/{C}/members/{X}", 0);
    r = call(a, "POST", p, NULL);
    cr_assert(r.status == 200 || r.status == 201, "POST %s: %ld %s", p, r.status, r.body);
    pd_resp_free(&r);
    free(p);
    p = expand("/clusters/{C}/conversations/{CV}/messages", 0);
    make(a, 201, "POST", p, "{\"message\": {\"role\": \"user\", \"content\": \"" MARK " message\"}}", "data.id", "MS");
    free(p);

    make(a, 200, "POST", "/api/v1/prompt", "{\"prompt\": \"" MARK " v1 request\"}", "request_id", "R");
    make(a, 202, "POST", "/api/v1/prompts/batch", "{\"prompts\": [\"" MARK " batch one\", \"" MARK " batch two\"]}",
         "batch_id", "BT");
    wait_batch(a, slot("BT")->value);
    /* v1 objects by UUID here (data.uuid): their numbers are per organization, so B has numbers of its own
     * that equal A's; numbers_are_per_organization checks those */
    make(a, 201, "POST", "/api/v1/workspaces", "{\"name\": \"" MARK " workspace\", \"description\": \"" MARK "\"}",
         "data.uuid", "W");
    snprintf(path, sizeof path, "{\"name\": \"" MARK " source\", \"type\": \"csv\", \"workspace_id\": \"%s\"}",
             slot("W")->value);
    make(a, 201, "POST", "/api/v1/data-sources", path, "data.uuid", "D");
    make(a, 201, "POST", "/api/v1/users", "{\"email\": \"member@a.example\", \"name\": \"" MARK " member\"}",
         "data.uuid", "U");
    make(a, 200, "GET", "/api/v1/users/me", NULL, "data.uuid", "UA");
    r = expect(a, 201, "POST", "/api/v1/keys", "{\"name\": \"" MARK " second key\"}");
    set_id("KP", pd_str_at(r.json, "data.prefix"));
    set_id("KI", pd_str_at(r.json, "data.id"));
    snprintf(A_KEY2, sizeof A_KEY2, "%s", pd_str_at(r.json, "data.key"));
    pd_resp_free(&r);
}

static void build_org_b(const char *b)
{
    char *p;
    make(b, 201, "POST", "/prompts", "{\"prompt\": {\"name\": \"b prompt\", \"content\": \"b {{who}}\"}}", "data.id",
         "p");
    p = expand("/prompts/{p}/versions", 0);
    make(b, 200, "GET", p, NULL, "data.0.id", "v");
    free(p);
    p = expand("/prompts/{p}/execute", 0);
    make(b, 200, "POST", p, "{\"variables\": {\"who\": \"B\"}}", "data.id", "e");
    free(p);
    make(b, 201, "POST", "/entities", "{\"entity\": {\"name\": \"b entity\", \"model\": \"echo\"}}", "data.id", "x");
    make(b, 201, "POST", "/clusters", "{\"cluster\": {\"name\": \"b cluster\"}}", "data.id", "c");
    p = expand("/clusters/{c}/conversations", 0);
    make(b, 201, "POST", p, "{\"conversation\": {\"title\": \"b conversation\"}}", "data.id", "cv");
    free(p);
    make(b, 201, "POST", "/api/v1/data-sources", "{\"name\": \"b source\", \"type\": \"csv\"}", "data.uuid", "d");
    make(b, 200, "GET", "/api/v1/users/me", NULL, "data.uuid", "ub");
}

/* ---------------------------------------------------------------- coverage */

static int in_routes(const char *route)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        if (strcmp(ROUTES_WITH_PARAMS[i], route) == 0)
            return 1;
    return 0;
}

static int in_client_id(const char *route)
{
    for (size_t i = 0; i < N_CLIENT_ID; i++)
        if (strcmp(CLIENT_ID_ROUTES[i], route) == 0)
            return 1;
    return 0;
}

static int in_matrix(const char *route)
{
    for (size_t i = 0; i < N_MATRIX; i++)
        if (strcmp(MATRIX[i].route, route) == 0)
            return 1;
    return 0;
}

/* The api_route() calls with a path parameter in the sources of src/api, if the sources are here.
 * Returns the number found (0 when the sources are not reachable). */
static size_t scan_sources(char found[][160], size_t cap)
{
    DIR *d = opendir("src/api");
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 3 || strcmp(de->d_name + l - 2, ".c") != 0)
            continue;
        char path[600];
        snprintf(path, sizeof path, "src/api/%s", de->d_name);
        char *text = pd_read_file(path);
        for (const char *q = text ? strstr(text, "api_route(a, \"") : NULL; q; q = strstr(q + 1, "api_route(a, \"")) {
            char method[16], pattern[128];
            if (sscanf(q, "api_route(a, \"%15[A-Z]\", \"%127[^\"]\"", method, pattern) != 2)
                continue;
            if (!strchr(pattern, ':') || n >= cap)
                continue;
            snprintf(found[n++], 160, "%s %s", method, pattern);
        }
        free(text);
    }
    closedir(d);
    return n;
}

Test(cross_org, the_matrix_covers_every_route_with_a_path_parameter)
{
    for (size_t i = 0; i < N_MATRIX; i++)
        cr_assert(in_routes(MATRIX[i].route), "matrix row %zu names an unknown route '%s'", i, MATRIX[i].route);
    for (size_t i = 0; i < N_ROUTES; i++)
        cr_assert(in_matrix(ROUTES_WITH_PARAMS[i]), "no matrix row for %s", ROUTES_WITH_PARAMS[i]);

    static char found[512][160];
    size_t n = scan_sources(found, 512);
    if (n == 0) {
        fprintf(stderr, "cross_org: src/api is not reachable from the working directory; "
                        "checked the built-in route list only\n");
        return;
    }
    for (size_t i = 0; i < n; i++)
        cr_assert((in_routes(found[i]) && in_matrix(found[i])) || in_client_id(found[i]),
                  "src/api registers %s, which the cross-organization matrix does not cover: add a row to MATRIX "
                  "(and regenerate ROUTES_WITH_PARAMS, see the top comment)",
                  found[i]);
    for (size_t i = 0; i < N_ROUTES; i++) {
        int there = 0;
        for (size_t j = 0; j < n; j++)
            there |= strcmp(found[j], ROUTES_WITH_PARAMS[i]) == 0;
        cr_assert(there, "ROUTES_WITH_PARAMS lists %s, which src/api no longer registers", ROUTES_WITH_PARAMS[i]);
    }
    for (size_t i = 0; i < N_CLIENT_ID; i++) {
        int there = 0;
        for (size_t j = 0; j < n; j++)
            there |= strcmp(found[j], CLIENT_ID_ROUTES[i]) == 0;
        cr_assert(there, "CLIENT_ID_ROUTES lists %s, which src/api no longer registers", CLIENT_ID_ROUTES[i]);
    }
}

/* ---------------------------------------------------------------- the matrix */

static const char *method_of(const char *route, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.*s", (int)strcspn(route, " "), route);
    return buf;
}

Test(cross_org, another_organizations_ids_are_404_everywhere_and_change_nothing)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    char b_key[128];
    cr_assert_eq(pd_new_org_key(&S, "orgb", b_key, sizeof b_key), 0);
    build_org_a();
    build_org_b(b_key);
    make_random_twins();

    snapshot before, after;
    stable_snapshot(S.admin_key, &before);

    int calls = 0;
    for (size_t i = 0; i < N_MATRIX; i++) {
        char mbuf[16];
        const char *method = method_of(MATRIX[i].route, mbuf, sizeof mbuf);
        char *path = expand(MATRIX[i].path, 0), *body = expand(MATRIX[i].body, 0);
        char *rpath = expand(MATRIX[i].path, 1), *rbody = expand(MATRIX[i].body, 1);
        pd_resp r = call(b_key, method, path, body);
        calls++;
        const char *why = not_404_envelope(&r, path);
        if (why)
            fail("%s %s (row %zu, %s)%s%s: want 404 in the surface's envelope, got %ld (%s): %.400s", method,
                 MATRIX[i].path, i, MATRIX[i].route, body ? " body " : "", body ? MATRIX[i].body : "", r.status, why,
                 r.body);
        if (strstr(r.body, MARK))
            fail("%s %s: the answer shows A's data: %.400s", method, MATRIX[i].path, r.body);
        /* no more information than for an id that does not exist anywhere */
        pd_resp rr = call(b_key, method, rpath, rbody);
        calls++;
        char *n1 = normalise_ids(r.body, 0), *n2 = normalise_ids(rr.body, 1);
        if (r.status != rr.status || strcmp(n1, n2) != 0)
            fail("%s %s: A's ids answer differently from random ids: %ld %.300s  vs  %ld %.300s", method,
                 MATRIX[i].path, r.status, n1, rr.status, n2);
        free(n1);
        free(n2);
        if (strcmp(method, "GET") == 0) { /* HEAD is served by every GET route */
            pd_resp h = call(b_key, "HEAD", path, NULL);
            calls++;
            if (h.status != 404)
                fail("HEAD %s (row %zu): want 404, got %ld", MATRIX[i].path, i, h.status);
            pd_resp_free(&h);
        }
        pd_resp_free(&rr);
        pd_resp_free(&r);
        free(path);
        free(body);
        free(rpath);
        free(rbody);
    }

    for (size_t i = 0; i < N_REFS; i++) {
        char *path = expand(REFS[i].path, 0), *body = expand(REFS[i].body, 0);
        pd_resp r = call(b_key, REFS[i].method, path, body);
        calls++;
        int ok = 0;
        for (int k = 0; k < 3 && REFS[i].allowed[k]; k++)
            ok |= r.status == REFS[i].allowed[k];
        if (!ok)
            fail("%s %s%s%s (%s): got %ld, allowed %ld%s%s: %.400s", REFS[i].method, REFS[i].path,
                 REFS[i].body ? " body " : "", REFS[i].body ? REFS[i].body : "", REFS[i].why, r.status,
                 REFS[i].allowed[0], REFS[i].allowed[1] ? " or another listed status" : "", "", r.body);
        if (strstr(r.body, MARK))
            fail("%s %s: the answer shows A's data: %.400s", REFS[i].method, REFS[i].path, r.body);
        pd_resp_free(&r);
        free(path);
        free(body);
    }

    /* A is exactly as before */
    take_snapshot(S.admin_key, &after, 0);
    for (size_t i = 0; i < N_SNAP; i++)
        if (before.status[i] != after.status[i] || strcmp(before.body[i], after.body[i]) != 0)
            fail("A's GET %s changed after B's calls:\n  before: %.600s\n  after:  %.600s", SNAPSHOT_PATHS[i],
                 before.body[i], after.body[i]);
    free_snapshot(&before);
    free_snapshot(&after);
    /* A's second key still works (B could not revoke it) */
    pd_resp r = call(A_KEY2, "GET", "/api/v1/users/me", NULL);
    if (r.status != 200)
        fail("A's second key answers %ld after B's DELETE /api/v1/keys: %.300s", r.status, r.body);
    pd_resp_free(&r);
    /* B got nothing of A's: its lists hold only its own */
    r = expect(b_key, 200, "GET", "/prompts", NULL);
    if (pd_int_at(r.json, "meta.totalRecords", -1) != 1)
        fail("B's /prompts holds %lld prompts, want 1: %.300s", pd_int_at(r.json, "meta.totalRecords", -1), r.body);
    pd_resp_free(&r);
    r = expect(b_key, 200, "GET", "/api/v1/keys", NULL);
    if (strstr(r.body, MARK) || strstr(r.body, slot("KP")->value))
        fail("B's key list shows A's keys: %.300s", r.body);
    pd_resp_free(&r);

    stop_collect();
    fprintf(stderr, "cross_org: %zu matrix rows over %zu routes, %zu id references, %d calls, %d failures\n", N_MATRIX,
            N_ROUTES, N_REFS, calls, nfailures);
    cr_assert_eq(nfailures, 0, "%d cross-organization failures:\n%s", nfailures, failures ? failures : "");
    free(failures);
}

/* ---------------------------------------------------------------- integer ids */

/* Spec 002's integer ids are numbers per organization: A's number 3 names nothing in B, which has only 1
 * of each, and B's 1 is B's own. Every call of B naming 3 answers as for a number nobody has. */
Test(cross_org, numbers_are_per_organization)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    const char *a = S.admin_key;
    char b[128], body[256];
    cr_assert_eq(pd_new_org_key(&S, "orgb", b, sizeof b), 0);
    for (int i = 1; i <= 3; i++) {
        snprintf(body, sizeof body, "{\"name\": \"" MARK " w%d\"}", i);
        pd_resp r = expect(a, 201, "POST", "/api/v1/workspaces", body);
        cr_assert_eq(pd_int_at(r.json, "data.id", -1), i, "%s", r.body);
        pd_resp_free(&r);
        snprintf(body, sizeof body, "{\"name\": \"" MARK " d%d\", \"type\": \"csv\"}", i);
        r = expect(a, 201, "POST", "/api/v1/data-sources", body);
        cr_assert_eq(pd_int_at(r.json, "data.id", -1), i, "%s", r.body);
        pd_resp_free(&r);
        snprintf(body, sizeof body, "{\"prompt\": {\"name\": \"" MARK " p%d\", \"content\": \"" MARK "\"}}", i);
        r = expect(a, 201, "POST", "/prompts", body);
        pd_resp_free(&r);
        if (i > 1) { /* the admin is user 1 */
            snprintf(body, sizeof body, "{\"email\": \"u%d@a.example\", \"name\": \"" MARK "\"}", i);
            r = expect(a, 201, "POST", "/api/v1/users", body);
            cr_assert_eq(pd_int_at(r.json, "data.id", -1), i, "%s", r.body);
            pd_resp_free(&r);
        }
    }
    pd_resp r = expect(b, 201, "POST", "/api/v1/workspaces", "{\"name\": \"b w\"}");
    cr_assert_eq(pd_int_at(r.json, "data.id", -1), 1, "B's numbers start at 1: %s", r.body);
    pd_resp_free(&r);
    r = expect(b, 201, "POST", "/api/v1/data-sources", "{\"name\": \"b d\", \"type\": \"csv\"}");
    cr_assert_eq(pd_int_at(r.json, "data.id", -1), 1, "%s", r.body);
    pd_resp_free(&r);

    const char *a_paths[] = {"/api/v1/workspaces/3",
                             "/api/v1/data-sources/3",
                             "/api/v1/users/3",
                             "/api/v1/sessions/3",
                             "/api/v1/prompts/history?user_id=all",
                             "/api/v1/prompts"};
    char *before[6];
    for (size_t i = 0; i < 6; i++) {
        r = expect(a, 200, "GET", a_paths[i], NULL);
        before[i] = strdup(r.body);
        pd_resp_free(&r);
    }

    const struct {
        const char *method, *path, *body;
        long status;
    } calls[] = {
        {"GET", "/api/v1/workspaces/3", NULL, 404},
        {"PUT", "/api/v1/workspaces/3", "{\"name\": \"taken\"}", 404},
        {"PATCH", "/api/v1/workspaces/3", "{\"name\": \"taken\"}", 404},
        {"DELETE", "/api/v1/workspaces/3", NULL, 404},
        {"GET", "/api/v1/data-sources/3", NULL, 404},
        {"PUT", "/api/v1/data-sources/3", "{\"name\": \"taken\"}", 404},
        {"PATCH", "/api/v1/data-sources/3", "{\"workspace_id\": null}", 404},
        {"DELETE", "/api/v1/data-sources/3", NULL, 404},
        {"GET", "/api/v1/users/3", NULL, 404},
        {"PUT", "/api/v1/users/3", "{\"name\": \"taken\"}", 404},
        {"PATCH", "/api/v1/users/3", "{\"name\": \"taken\"}", 404},
        {"DELETE", "/api/v1/users/3", NULL, 404},
        {"POST", "/api/v1/users/3/api-keys", "{\"name\": \"backdoor\"}", 404},
        {"GET", "/api/v1/sessions/3", NULL, 404},
        {"GET", "/api/v1/prompts/history?workspace_id=3", NULL, 404},
        {"GET", "/api/v1/prompts/history?data_source_id=3", NULL, 404},
        {"GET", "/api/v1/prompts/history?user_id=3", NULL, 404},
        {"DELETE", "/api/v1/prompts/history?user_id=3", NULL, 404},
        {"GET", "/api/v1/prompts?user_id=3", NULL, 404},
        {"GET", "/api/v1/prompts?workspace_id=3", NULL, 404},
        {"GET", "/api/v1/data-sources?workspace_id=3", NULL, 404},
        {"POST", "/api/v1/keys", "{\"name\": \"backdoor\", \"user_id\": 3}", 404},
        {"POST", "/api/v1/data-sources", "{\"name\": \"x\", \"type\": \"csv\", \"workspace_id\": 3}", 422},
        {"PUT", "/api/v1/data-sources/1", "{\"workspace_id\": 3}", 422},
        {"POST", "/prompts", "{\"prompt\": {\"name\": \"b\", \"content\": \"b\", \"workspace_id\": 3}}", 422},
        {"POST", "/prompts", "{\"prompt\": {\"name\": \"b\", \"content\": \"b\", \"data_source_ids\": [1, 3]}}", 422},
        {"POST", "/api/v1/prompt", "{\"prompt_id\": 3}", 400},
        {"POST", "/api/v1/prompt", "{\"prompt_id\": \"3\", \"async\": true}", 400},
        {"POST", "/api/v1/prompts/batch", "{\"prompts\": [{\"prompt_id\": 3}]}", 400},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        r = call(b, calls[i].method, calls[i].path, calls[i].body);
        cr_assert_eq(r.status, calls[i].status, "B %s %s %s: want %ld, got %ld: %s", calls[i].method, calls[i].path,
                     calls[i].body ? calls[i].body : "", calls[i].status, r.status, r.body);
        cr_assert_null(strstr(r.body, MARK), "B %s %s shows A's data: %s", calls[i].method, calls[i].path, r.body);
        pd_resp_free(&r);
    }
    /* B's number 1 is B's own */
    r = expect(b, 200, "GET", "/api/v1/workspaces/1", NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.name"), "b w", "%s", r.body);
    pd_resp_free(&r);
    r = expect(b, 200, "GET", "/api/v1/users/1", NULL);
    cr_assert_null(strstr(r.body, "admin@localhost"), "B's user 1 is A's admin: %s", r.body);
    pd_resp_free(&r);

    /* and A is exactly as before */
    for (size_t i = 0; i < 6; i++) {
        r = expect(a, 200, "GET", a_paths[i], NULL);
        cr_assert_str_eq(r.body, before[i], "A's GET %s changed after B's calls", a_paths[i]);
        pd_resp_free(&r);
        free(before[i]);
    }
}
