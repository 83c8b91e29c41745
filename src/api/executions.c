/*
 * executions.c — execution history (spec 000) and its social side.
 *
 *   GET    /prompts/:id/executions                      page, records, status, sort
 *   GET    /prompts/:id/executions/:exec_id
 *   PUT    /prompts/:id/executions/:exec_id/like        DELETE .../dislike
 *   PUT    /prompts/:id/executions/:exec_id/save        DELETE .../unsave
 *   GET    /executions                                  every execution (prompt_id, status, sort filters)
 *   GET    /executions/:id
 *   POST   /executions/:id/cancel                       a queued or running async execution -> cancelled
 *                                                       (409 once it ended, or for a sync one)
 *   GET    /prompts/:id/versions/:version_id/executions the runs of one version (as the prompt's list)
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_executions.h"
#include "core/ids.h"

static json_t *json_or_empty_object(const char *text)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    return j ? j : json_object();
}

json_t *api_execution_json(const store_execution *e)
{
    json_t *attrs = json_pack(
        "{s:s, s:s?, s:s?, s:o, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, "
        "s:s?, s:b, s:b, s:o, s:o, s:o}",
        "unique_id", e->id, "prompt_id", e->prompt_id[0] ? e->prompt_id : NULL, "version_id",
        e->version_id[0] ? e->version_id : NULL, "version_number",
        e->version_number ? json_integer(e->version_number) : json_null(), "source", e->source, "rendered_prompt",
        e->rendered_prompt, "output", e->output, "variables", json_or_empty_object(e->variables), "model", e->model,
        "temperature", e->has_temperature ? json_real(e->temperature) : json_null(), "max_tokens",
        e->max_tokens ? json_integer(e->max_tokens) : json_null(), "tokens_used", (json_int_t)e->total_tokens,
        "prompt_tokens", (json_int_t)e->prompt_tokens, "completion_tokens", (json_int_t)e->completion_tokens,
        "duration_ms", (json_int_t)e->duration_ms, "attempts", (json_int_t)e->attempts, "likes_count",
        (json_int_t)e->likes_count, "saves_count", (json_int_t)e->saves_count, "comments_count",
        (json_int_t)e->comments_count, "status", e->status, "error", e->error, "liked", e->liked, "saved", e->saved,
        "metadata", json_or_empty_object(e->metadata), "created_at", api_time(e->created_at), "finished_at",
        api_time(e->finished_at));
    /* The names the Jarvis SDK reads (its executionMapper), beside the
     * documents' own: the same values, never a second source of truth. */
    if (attrs) {
        json_object_set_new(attrs, "input", json_string(e->rendered_prompt ? e->rendered_prompt : ""));
        json_object_set_new(attrs, "tokens", json_integer(e->total_tokens));
        json_object_set_new(attrs, "duration", json_integer(e->duration_ms));
        json_object_set_new(attrs, "prompt_unique_id", e->prompt_id[0] ? json_string(e->prompt_id) : json_null());
        json_object_set_new(attrs, "version_unique_id", e->version_id[0] ? json_string(e->version_id) : json_null());
        json_object_set_new(attrs, "started_at", api_time(e->started_at));
        json_object_set_new(attrs, "completed_at", api_time(e->finished_at));
        json_object_set_new(attrs, "updated_at", api_time(e->updated_at ? e->updated_at : e->created_at));
    }
    /* only when the model answered with tool calls (chat completions through the gateway) */
    json_t *tool_calls = e->tool_calls ? json_loads(e->tool_calls, 0, NULL) : NULL;
    if (attrs && tool_calls)
        json_object_set(attrs, "tool_calls", tool_calls);
    json_decref(tool_calls);
    return api_resource(e->id, "prompt_execution", attrs);
}

static int valid_exec_status(const char *s)
{
    static const char *ok[] = {"queued", "processing", "completed", "failed", "cancelled"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(s, ok[i]) == 0)
            return 1;
    return 0;
}

static int parse_exec_sort(const char *s, enum store_execution_sort *sort, int *desc)
{
    static const struct {
        const char *name;
        enum store_execution_sort sort;
    } keys[] = {{"created_at", STORE_ESORT_CREATED_AT},
                {"duration_ms", STORE_ESORT_DURATION},
                {"tokens_used", STORE_ESORT_TOKENS},
                {"status", STORE_ESORT_STATUS}};
    *desc = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (strcmp(s, keys[i].name) == 0) {
            *sort = keys[i].sort;
            return 0;
        }
    }
    return -1;
}

static void list_executions(api_req *rq, const char *prompt_id, const char *version_id)
{
    long page, records;
    if (api_page_params(rq, &page, &records))
        return;
    store_execution_query q = {
        .prompt_id = prompt_id, .version_id = version_id, .sort = STORE_ESORT_CREATED_AT, .sort_desc = 1};
    q.status = http_query(rq->http, "status");
    if (q.status && !*q.status)
        q.status = NULL;
    if (q.status && !valid_exec_status(q.status)) {
        http_error(rq->http, 400, NULL, "status",
                   "'status' must be one of queued, processing, completed, failed, cancelled");
        return;
    }
    const char *sort = http_query(rq->http, "sort");
    if (sort && *sort && parse_exec_sort(sort, &q.sort, &q.sort_desc)) {
        http_error(rq->http, 400, NULL, "sort",
                   "'sort' must be one of created_at, duration_ms, tokens_used, status, optionally prefixed with "
                   "'-' for descending order");
        return;
    }
    q.offset = (page - 1) * records;
    q.limit = records;
    store_execution_page list;
    int rc = store_execution_list(rq->app->store, rq->who.org_id, rq->who.user_id, &q, &list);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Prompt");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, api_execution_json(&list.items[i]));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, page, records));
    store_execution_page_free(&list);
}

static void prompt_executions_list(api_req *rq)
{
    const char *id = api_param(rq, "id");
    if (api_reject_bad_id(rq, id, "Prompt"))
        return;
    list_executions(rq, id, NULL);
}

static void version_executions_list(api_req *rq)
{
    const char *id = api_param(rq, "id"), *vid = api_param(rq, "version_id");
    if (api_reject_bad_id(rq, id, "Prompt") || api_reject_bad_id(rq, vid, "Version"))
        return;
    store_version v;
    int rc = store_version_get(rq->app->store, rq->who.org_id, id, vid, &v);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Version");
        return;
    }
    store_version_clear(&v);
    list_executions(rq, id, vid);
}

static void executions_list(api_req *rq)
{
    const char *prompt_id = http_query(rq->http, "prompt_id");
    if (prompt_id && *prompt_id && !id_is_uuid(prompt_id)) {
        http_error(rq->http, 400, NULL, "prompt_id", "'prompt_id' must be a UUID");
        return;
    }
    list_executions(rq, prompt_id && *prompt_id ? prompt_id : NULL, NULL);
}

static void get_execution(api_req *rq, const char *prompt_id, const char *exec_id)
{
    if ((prompt_id && api_reject_bad_id(rq, prompt_id, "Execution")) || api_reject_bad_id(rq, exec_id, "Execution"))
        return;
    store_execution e;
    int rc = store_execution_get(rq->app->store, rq->who.org_id, prompt_id, exec_id, rq->who.user_id, &e);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Execution");
        return;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", api_execution_json(&e)));
    store_execution_clear(&e);
}

static void prompt_execution_get(api_req *rq) { get_execution(rq, api_param(rq, "id"), api_param(rq, "exec_id")); }
static void execution_get(api_req *rq) { get_execution(rq, NULL, api_param(rq, "id")); }

static void execution_cancel(api_req *rq)
{
    const char *id = api_param(rq, "id");
    if (api_reject_bad_id(rq, id, "Execution"))
        return;
    int rc = store_execution_cancel(rq->app->store, rq->who.org_id, id, rq->who.is_admin ? NULL : rq->who.user_id);
    if (rc == STORE_CONFLICT) {
        http_error(rq->http, 409, "Execution Not Cancellable", NULL,
                   "Only a queued or running async execution can be cancelled; this one has ended or runs "
                   "synchronously");
        return;
    }
    store_execution e;
    if (rc == STORE_OK)
        rc = store_execution_get(rq->app->store, rq->who.org_id, NULL, id, rq->who.user_id, &e);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Execution");
        return;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", api_execution_json(&e)));
    store_execution_clear(&e);
}

/* like/dislike, save/unsave on an execution of a prompt. */
static void execution_react(api_req *rq, enum store_reaction kind, int on, const char *message)
{
    const char *prompt_id = api_param(rq, "id"), *exec_id = api_param(rq, "exec_id");
    if (api_reject_bad_id(rq, prompt_id, "Execution") || api_reject_bad_id(rq, exec_id, "Execution"))
        return;
    store_execution e;
    int rc = store_execution_get(rq->app->store, rq->who.org_id, prompt_id, exec_id, rq->who.user_id, &e);
    if (rc == STORE_OK) {
        store_execution_clear(&e);
        rc = store_reaction_set(rq->app->store, rq->who.org_id, rq->who.user_id, STORE_TARGET_EXECUTION, exec_id,
                                kind, on);
    }
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Execution");
        return;
    }
    http_reply_json(rq->http, 200, api_message(message));
}

static void exec_like(api_req *rq) { execution_react(rq, STORE_REACT_LIKE, 1, "Execution liked successfully"); }
static void exec_dislike(api_req *rq) { execution_react(rq, STORE_REACT_LIKE, 0, "Like removed successfully"); }
static void exec_save(api_req *rq) { execution_react(rq, STORE_REACT_SAVE, 1, "Execution saved successfully"); }
static void exec_unsave(api_req *rq) { execution_react(rq, STORE_REACT_SAVE, 0, "Execution unsaved successfully"); }

int api_routes_executions(app *a)
{
    return api_route(a, "GET", "/prompts/:id/executions", prompt_executions_list, 0) ||
           api_route(a, "GET", "/prompts/:id/executions/:exec_id", prompt_execution_get, 0) ||
           api_route(a, "PUT", "/prompts/:id/executions/:exec_id/like", exec_like, 0) ||
           api_route(a, "DELETE", "/prompts/:id/executions/:exec_id/dislike", exec_dislike, 0) ||
           api_route(a, "PUT", "/prompts/:id/executions/:exec_id/save", exec_save, 0) ||
           api_route(a, "DELETE", "/prompts/:id/executions/:exec_id/unsave", exec_unsave, 0) ||
           api_route(a, "GET", "/executions", executions_list, 0) ||
           api_route(a, "GET", "/executions/:id", execution_get, 0) ||
           api_route(a, "POST", "/executions/:id/cancel", execution_cancel, 0) ||
           api_route(a, "GET", "/prompts/:id/versions/:version_id/executions", version_executions_list, 0);
}
