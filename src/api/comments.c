/*
 * comments.c — comments on an execution (they make comments_count real).
 *
 *   GET    /prompts/:id/executions/:exec_id/comments               page, records
 *   POST   /prompts/:id/executions/:exec_id/comments               {"comment": {"body": "..."}} -> 201
 *                                                                   ("content", the Jarvis SDK's word, when no body)
 *   DELETE /prompts/:id/executions/:exec_id/comments/:comment_id   204 (author or admin)
 */
#include "api/api.h"

#define COMMENT_BODY_MAX 10000

/* The comment; body and content, user_id and user_unique_id, execution_id
 * and execution_unique_id are the same values (the SDK reads the second). */
static json_t *comment_json(const store_comment *c, const char *prompt_id)
{
    json_t *attrs = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "unique_id", c->id,
                              "execution_id", c->execution_id, "execution_unique_id", c->execution_id,
                              "prompt_unique_id", prompt_id, "body", c->body, "content", c->body, "user_id",
                              c->user_id, "user_unique_id", c->user_id, "author", c->user_email, "created_at",
                              api_time(c->created_at), "updated_at", api_time(c->updated_at));
    return api_resource(c->id, "comment", attrs);
}

static int ids_ok(api_req *rq, const char **prompt_id, const char **exec_id)
{
    *prompt_id = api_param(rq, "id");
    *exec_id = api_param(rq, "exec_id");
    return !api_reject_bad_id(rq, *prompt_id, "Execution") && !api_reject_bad_id(rq, *exec_id, "Execution");
}

static void comments_list(api_req *rq)
{
    const char *prompt_id, *exec_id;
    long page, records;
    if (!ids_ok(rq, &prompt_id, &exec_id) || api_page_params(rq, &page, &records))
        return;
    store_comment_page list;
    int rc = store_comment_list(rq->app->store, rq->who.org_id, prompt_id, exec_id, (page - 1) * records, records,
                                &list);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Execution");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, comment_json(&list.items[i], prompt_id));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, page, records));
    store_comment_page_free(&list);
}

static void comments_create(api_req *rq)
{
    const char *prompt_id, *exec_id, *body;
    json_t *root = NULL, *obj;
    if (!ids_ok(rq, &prompt_id, &exec_id) || api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "comment")) ||
        api_string_field(rq, obj, "body", "comment.body", 0, 1, COMMENT_BODY_MAX, &body) ||
        (!body && api_string_field(rq, obj, "content", "comment.content", 0, 1, COMMENT_BODY_MAX, &body)))
        goto out;
    if (!body) {
        http_error(rq->http, 422, NULL, "comment.body", "'comment.body' (or 'comment.content') is required");
        goto out;
    }
    store_comment c;
    int rc = store_comment_create(rq->app->store, rq->who.org_id, prompt_id, exec_id, rq->who.user_id, body, &c);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Execution");
        goto out;
    }
    http_reply_json(rq->http, 201, json_pack("{s:o}", "data", comment_json(&c, prompt_id)));
    store_comment_clear(&c);
out:
    json_decref(root);
}

static void comments_delete(api_req *rq)
{
    const char *prompt_id, *exec_id, *comment_id = api_param(rq, "comment_id");
    if (!ids_ok(rq, &prompt_id, &exec_id) || api_reject_bad_id(rq, comment_id, "Comment"))
        return;
    int rc = store_comment_delete(rq->app->store, rq->who.org_id, prompt_id, exec_id, comment_id, rq->who.user_id,
                                  rq->who.is_admin);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, rc == STORE_NOTFOUND ? "Comment" : "Execution");
        return;
    }
    http_reply_empty(rq->http, 204);
}

int api_routes_comments(app *a)
{
    return api_route(a, "GET", "/prompts/:id/executions/:exec_id/comments", comments_list, 0) ||
           api_route(a, "POST", "/prompts/:id/executions/:exec_id/comments", comments_create, 0) ||
           api_route(a, "DELETE", "/prompts/:id/executions/:exec_id/comments/:comment_id", comments_delete, 0);
}
