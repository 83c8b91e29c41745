/*
 * comments.c — comments on an execution (they make its comments_count real)
 * and on a prompt itself, with replies and reactions. One set of handlers
 * serves both targets: under /prompts/:id/executions/:exec_id/comments the
 * target is the execution (of that prompt), under /prompts/:id/comments the
 * prompt.
 *
 *   GET    .../comments                      page, records, parent_unique_id (its replies only)
 *   POST   .../comments                      {"comment": {"body": "..."}} -> 201
 *                                            ("content", the Jarvis SDK's word, when no body)
 *   GET    .../comments/:comment_id
 *   PUT    .../comments/:comment_id          {"comment": {"body"|"content"}} (author or admin)
 *   DELETE .../comments/:comment_id          204 (author or admin); its replies go with it
 *   POST   .../comments/:comment_id/reply    as POST .../comments, a reply to it -> 201
 *   PUT    .../comments/:comment_id/like     DELETE .../dislike
 *   PUT    .../comments/:comment_id/follow   DELETE .../unfollow
 *   PUT    .../comments/:comment_id/save     DELETE .../unsave
 *
 * Reactions are idempotent per user and answer the comment with its counters.
 * Someone else's comment answers 404 to update and delete, as a missing one
 * (no leak of who wrote what to a member who may not change it).
 */
#include <string.h>

#include "api/api.h"
#include "core/ids.h"

#define COMMENT_BODY_MAX 10000

/* The comment; body and content, user_id and user_unique_id, execution_id and
 * execution_unique_id are the same values (the SDK reads the second). */
static json_t *comment_json(const store_comment *c, const char *prompt_id)
{
    json_t *exec = c->execution_id[0] ? json_string(c->execution_id) : json_null();
    json_t *attrs = json_pack(
        "{s:s, s:O, s:O, s:s, s:s?, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:o}", "unique_id", c->id,
        "execution_id", exec, "execution_unique_id", exec, "prompt_unique_id", prompt_id, "parent_unique_id",
        c->parent_id[0] ? c->parent_id : NULL, "body", c->body, "content", c->body, "user_id", c->user_id,
        "user_unique_id", c->user_id, "author", c->user_email, "likes_count", (json_int_t)c->likes_count, "saves_count",
        (json_int_t)c->saves_count, "followers_count", (json_int_t)c->followers_count, "replies_count",
        (json_int_t)c->replies_count, "created_at", api_time(c->created_at), "updated_at", api_time(c->updated_at));
    json_decref(exec);
    return api_resource(c->id, "comment", attrs);
}

/* The target of the path: the prompt, and the execution when the path names
 * one (NULL for a prompt's own comments). 1 if it answered 404. */
static int target_ids(api_req *rq, const char **prompt_id, const char **exec_id)
{
    *prompt_id = api_param(rq, "id");
    *exec_id = api_param(rq, "exec_id");
    const char *what = *exec_id ? "Execution" : "Prompt";
    return api_reject_bad_id(rq, *prompt_id, what) || (*exec_id && api_reject_bad_id(rq, *exec_id, what));
}

static const char *target_name(const char *exec_id) { return exec_id ? "Execution" : "Prompt"; }

/* comment.body, else comment.content; required. *body borrowed from root. */
static int body_field(api_req *rq, json_t *root, const char **body)
{
    json_t *obj = api_wrapped_object(rq, root, "comment");
    if (!obj || api_string_field(rq, obj, "body", "comment.body", 0, 1, COMMENT_BODY_MAX, body) ||
        (!*body && api_string_field(rq, obj, "content", "comment.content", 0, 1, COMMENT_BODY_MAX, body)))
        return -1;
    if (!*body) {
        http_error(rq->http, 422, NULL, "comment.body", "'comment.body' (or 'comment.content') is required");
        return -1;
    }
    return 0;
}

static void comments_list(api_req *rq)
{
    const char *prompt_id, *exec_id;
    long page, records;
    if (target_ids(rq, &prompt_id, &exec_id) || api_page_params(rq, &page, &records))
        return;
    const char *parent = http_query(rq->http, "parent_unique_id");
    if (parent && !*parent)
        parent = NULL;
    if (parent && !id_is_uuid(parent)) {
        http_error(rq->http, 400, NULL, "parent_unique_id", "'parent_unique_id' must be a comment's UUID");
        return;
    }
    store_comment_page list;
    int rc = store_comment_list(rq->app->store, rq->who.org_id, prompt_id, exec_id, parent, (page - 1) * records,
                                records, &list);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, target_name(exec_id));
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, comment_json(&list.items[i], prompt_id));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, page, records));
    store_comment_page_free(&list);
}

/* A new comment on the target, or a reply to :comment_id when the path has one. */
static void comments_create(api_req *rq)
{
    const char *prompt_id, *exec_id, *body, *parent = api_param(rq, "comment_id");
    json_t *root = NULL;
    if (target_ids(rq, &prompt_id, &exec_id) || (parent && api_reject_bad_id(rq, parent, "Comment")) ||
        api_read_body(rq, &root))
        return;
    if (body_field(rq, root, &body))
        goto out;
    store_comment c;
    enum store_comment_part missing = STORE_COMMENT_TARGET;
    int rc = store_comment_create(rq->app->store, rq->who.org_id, prompt_id, exec_id, parent, rq->who.user_id, body, &c,
                                  &missing);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, missing == STORE_COMMENT_PARENT ? "Comment" : target_name(exec_id));
        goto out;
    }
    http_reply_json(rq->http, 201, json_pack("{s:o}", "data", comment_json(&c, prompt_id)));
    store_comment_clear(&c);
out:
    json_decref(root);
}

/* The comment of the path; 0, or -1 when it answered. */
static int comment_of_path(api_req *rq, const char **prompt_id, const char **exec_id, store_comment *c)
{
    const char *comment_id = api_param(rq, "comment_id");
    if (target_ids(rq, prompt_id, exec_id) || api_reject_bad_id(rq, comment_id, "Comment"))
        return -1;
    enum store_comment_part missing = STORE_COMMENT_TARGET;
    int rc = store_comment_get(rq->app->store, rq->who.org_id, *prompt_id, *exec_id, comment_id, c, &missing);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, missing == STORE_COMMENT_TARGET ? target_name(*exec_id) : "Comment");
        return -1;
    }
    return 0;
}

static void comments_get(api_req *rq)
{
    const char *prompt_id, *exec_id;
    store_comment c;
    if (comment_of_path(rq, &prompt_id, &exec_id, &c))
        return;
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", comment_json(&c, prompt_id)));
    store_comment_clear(&c);
}

static void comments_update(api_req *rq)
{
    const char *prompt_id, *exec_id, *body, *comment_id = api_param(rq, "comment_id");
    json_t *root = NULL;
    if (target_ids(rq, &prompt_id, &exec_id) || api_reject_bad_id(rq, comment_id, "Comment") ||
        api_read_body(rq, &root))
        return;
    if (body_field(rq, root, &body))
        goto out;
    store_comment c;
    int rc = store_comment_update(rq->app->store, rq->who.org_id, prompt_id, exec_id, comment_id, rq->who.user_id,
                                  rq->who.is_admin, body, &c);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Comment");
        goto out;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", comment_json(&c, prompt_id)));
    store_comment_clear(&c);
out:
    json_decref(root);
}

static void comments_delete(api_req *rq)
{
    const char *prompt_id, *exec_id, *comment_id = api_param(rq, "comment_id");
    if (target_ids(rq, &prompt_id, &exec_id) || api_reject_bad_id(rq, comment_id, "Comment"))
        return;
    int rc = store_comment_delete(rq->app->store, rq->who.org_id, prompt_id, exec_id, comment_id, rq->who.user_id,
                                  rq->who.is_admin);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, rc == STORE_NOTFOUND ? "Comment" : target_name(exec_id));
        return;
    }
    http_reply_empty(rq->http, 204);
}

/* like/dislike, follow/unfollow, save/unsave: idempotent per user; answers the comment. */
static void comment_react(api_req *rq, enum store_reaction kind, int on, const char *message)
{
    const char *prompt_id, *exec_id;
    store_comment c;
    if (comment_of_path(rq, &prompt_id, &exec_id, &c))
        return;
    int rc = store_reaction_set(rq->app->store, rq->who.org_id, rq->who.user_id, STORE_TARGET_COMMENT, c.id, kind, on);
    store_comment after;
    if (rc == STORE_OK)
        rc = store_comment_get(rq->app->store, rq->who.org_id, prompt_id, exec_id, c.id, &after, NULL);
    store_comment_clear(&c);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Comment");
        return;
    }
    http_reply_json(rq->http, 200,
                    json_pack("{s:o, s:s}", "data", comment_json(&after, prompt_id), "message", message));
    store_comment_clear(&after);
}

static void comment_like(api_req *rq) { comment_react(rq, STORE_REACT_LIKE, 1, "Comment liked successfully"); }
static void comment_dislike(api_req *rq) { comment_react(rq, STORE_REACT_LIKE, 0, "Like removed successfully"); }
static void comment_follow(api_req *rq) { comment_react(rq, STORE_REACT_FOLLOW, 1, "Comment followed successfully"); }
static void comment_unfollow(api_req *rq)
{
    comment_react(rq, STORE_REACT_FOLLOW, 0, "Comment unfollowed successfully");
}
static void comment_save(api_req *rq) { comment_react(rq, STORE_REACT_SAVE, 1, "Comment saved successfully"); }
static void comment_unsave(api_req *rq) { comment_react(rq, STORE_REACT_SAVE, 0, "Comment unsaved successfully"); }

/* The same handlers under both targets; one literal row per route, so the
 * route list (and the cross-organization test that reads it) sees each. */
int api_routes_comments(app *a)
{
    return api_route(a, "GET", "/prompts/:id/executions/:exec_id/comments", comments_list, 0) ||
           api_route(a, "POST", "/prompts/:id/executions/:exec_id/comments", comments_create, 0) ||
           api_route(a, "GET", "/prompts/:id/executions/:exec_id/comments/:comment_id", comments_get, 0) ||
           api_route(a, "PUT", "/prompts/:id/executions/:exec_id/comments/:comment_id", comments_update, 0) ||
           api_route(a, "PATCH", "/prompts/:id/executions/:exec_id/comments/:comment_id", comments_update, 0) ||
           api_route(a, "DELETE", "/prompts/:id/executions/:exec_id/comments/:comment_id", comments_delete, 0) ||
           api_route(a, "POST", "/prompts/:id/executions/:exec_id/comments/:comment_id/reply", comments_create, 0) ||
           api_route(a, "PUT", "/prompts/:id/executions/:exec_id/comments/:comment_id/like", comment_like, 0) ||
           api_route(a, "DELETE", "/prompts/:id/executions/:exec_id/comments/:comment_id/dislike", comment_dislike,
                     0) ||
           api_route(a, "PUT", "/prompts/:id/executions/:exec_id/comments/:comment_id/follow", comment_follow, 0) ||
           api_route(a, "DELETE", "/prompts/:id/executions/:exec_id/comments/:comment_id/unfollow", comment_unfollow,
                     0) ||
           api_route(a, "PUT", "/prompts/:id/executions/:exec_id/comments/:comment_id/save", comment_save, 0) ||
           api_route(a, "DELETE", "/prompts/:id/executions/:exec_id/comments/:comment_id/unsave", comment_unsave, 0) ||
           api_route(a, "GET", "/prompts/:id/comments", comments_list, 0) ||
           api_route(a, "POST", "/prompts/:id/comments", comments_create, 0) ||
           api_route(a, "GET", "/prompts/:id/comments/:comment_id", comments_get, 0) ||
           api_route(a, "PUT", "/prompts/:id/comments/:comment_id", comments_update, 0) ||
           api_route(a, "PATCH", "/prompts/:id/comments/:comment_id", comments_update, 0) ||
           api_route(a, "DELETE", "/prompts/:id/comments/:comment_id", comments_delete, 0) ||
           api_route(a, "POST", "/prompts/:id/comments/:comment_id/reply", comments_create, 0) ||
           api_route(a, "PUT", "/prompts/:id/comments/:comment_id/like", comment_like, 0) ||
           api_route(a, "DELETE", "/prompts/:id/comments/:comment_id/dislike", comment_dislike, 0) ||
           api_route(a, "PUT", "/prompts/:id/comments/:comment_id/follow", comment_follow, 0) ||
           api_route(a, "DELETE", "/prompts/:id/comments/:comment_id/unfollow", comment_unfollow, 0) ||
           api_route(a, "PUT", "/prompts/:id/comments/:comment_id/save", comment_save, 0) ||
           api_route(a, "DELETE", "/prompts/:id/comments/:comment_id/unsave", comment_unsave, 0);
}
