/*
 * v1_sessions.c — who am I, and what did a user ask (spec 003 §6).
 *
 *   GET /api/v1/users/me                  the caller: user id, email, role, organization
 *   GET /api/v1/sessions/{user_id}        every prompt request of that user with its response,
 *                                         newest first; limit (1..1000, default 100), from_date
 *
 * Members see their own session; admins anyone's in their organization.
 * Another user's id asked by a member answers 404, like an unknown one.
 * A user is named by their number in the organization or their UUID (as on
 * /api/v1/users); /users/me answers both (id and user_id: the number, uuid).
 */
#include <string.h>

#include "api/api_v1.h"
#include "core/timeutil.h"

static void users_me(api_req *rq)
{
    /* a key names its organization; a bearer token alone carries only its id */
    if (!rq->who.org_name[0]) {
        store_id id;
        if (store_org_find(rq->app->store, rq->who.org_id, id, rq->who.org_name, sizeof rq->who.org_name) != STORE_OK)
            rq->who.org_name[0] = '\0';
    }
    store_user u;
    int rc = store_user_get(rq->app->store, rq->who.org_id, rq->who.user_id, &u);
    if (rc != STORE_OK) { /* authenticated a moment ago: gone only if deleted since */
        api_v1_store_error(rq, rc, "User");
        return;
    }
    json_t *data = json_pack("{s:o, s:o, s:s, s:s, s:s, s:s, s:s, s:s}", "id", api_v1_num(u.num), "user_id",
                             api_v1_num(u.num), "uuid", rq->who.user_id, "email", rq->who.email, "role", rq->who.role,
                             "organization_id", rq->who.org_id, "organization", rq->who.org_name, "api_key_prefix",
                             rq->who.key_prefix);
    store_user_clear(&u);
    api_v1_reply(rq, 200, data, "Current user retrieved");
}

static json_t *session_item(const store_execution *e)
{
    json_t *meta = e->metadata ? json_loads(e->metadata, 0, NULL) : NULL;
    return json_pack("{s:s, s:s?, s:s, s:s, s:s, s:s?, s:s, s:s, s:{s:I, s:I, s:I}, s:I, s:o, s:o, s:o}",
                     "request_id", e->id, "prompt_id", e->prompt_id[0] ? e->prompt_id : NULL, "prompt",
                     e->rendered_prompt, "response", e->output, "status", e->status, "error", e->error, "model",
                     e->model, "source", e->source, "tokens", "prompt", (json_int_t)e->prompt_tokens, "completion",
                     (json_int_t)e->completion_tokens, "total", (json_int_t)e->total_tokens, "duration_ms",
                     (json_int_t)e->duration_ms, "created_at", api_time(e->created_at), "completed_at",
                     api_time(e->finished_at), "metadata", meta ? meta : json_object());
}

static void sessions_get(api_req *rq)
{
    store_id user_id;
    int64_t num;
    int urc = api_v1_ref_lookup(rq, STORE_NUM_USER, api_param(rq, "user_id"), user_id, &num);
    if (urc == API_V1_REF_BAD) {
        http_error(rq->http, 400, NULL, "user_id",
                   "'user_id' must be a user id: a positive integer (at most %lld) or a UUID",
                   (long long)STORE_NUM_MAX);
        return;
    }
    if (urc != STORE_OK && urc != STORE_NOTFOUND) {
        api_v1_store_error(rq, urc, "User");
        return;
    }
    if (urc == STORE_NOTFOUND || (!rq->who.is_admin && strcmp(user_id, rq->who.user_id) != 0)) {
        http_error(rq->http, 404, NULL, NULL, "User not found");
        return;
    }
    /* the user as the answer names them; an admin asking about someone: they must be in the org */
    store_user u;
    urc = store_user_get(rq->app->store, rq->who.org_id, user_id, &u);
    if (urc != STORE_OK) {
        api_v1_store_error(rq, urc, "User");
        return;
    }
    num = u.num;
    store_user_clear(&u);
    long limit;
    if (api_query_long(rq, "limit", 100, 1, 1000, &limit))
        return;
    int64_t since = 0;
    const char *from = http_query(rq->http, "from_date");
    if (from && *from && time_parse_rfc3339(from, &since) != 0) {
        http_error(rq->http, 400, NULL, "from_date",
                   "'from_date' must be a date (2025-01-10) or an RFC 3339 time (2025-01-10T10:30:00Z)");
        return;
    }
    store_execution_query q = {.user_id = user_id, .since = since, .sort = STORE_ESORT_CREATED_AT, .sort_desc = 1,
                               .offset = 0, .limit = limit};
    store_execution_page page;
    int rc = store_execution_list(rq->app->store, rq->who.org_id, NULL, &q, &page);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Session");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < page.count; i++)
        json_array_append_new(items, session_item(&page.items[i]));
    json_t *data = json_pack("{s:o, s:s, s:o, s:I, s:I}", "user_id", api_v1_num(num), "user_uuid", user_id, "items",
                             items, "count", (json_int_t)page.count, "total", (json_int_t)page.total);
    api_v1_reply(rq, 200, data, "Session history retrieved");
    store_execution_page_free(&page);
}

int api_routes_v1_sessions(app *a)
{
    return api_route(a, "GET", "/api/v1/users/me", users_me, 0) ||
           api_route(a, "GET", "/api/v1/sessions/:user_id", sessions_get, 0);
}
