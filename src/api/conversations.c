/*
 * conversations.c — the Jarvis cluster conversations API (spec 001) and the
 * messages in them. Sending a message (the cluster answers) is in
 * cluster_reply.c.
 *
 *   GET    /clusters/:id/conversations                          list, newest first (page, records, status)
 *   POST   /clusters/:id/conversations                          {"conversation": {title}} -> 201
 *   GET    /clusters/:id/conversations/:conversation_id
 *   PUT    /clusters/:id/conversations/:conversation_id          {"conversation": {title, status}}
 *   DELETE /clusters/:id/conversations/:conversation_id          204, with its messages
 *   POST   /clusters/:id/conversations/:conversation_id/archive  status "archived" (no new messages)
 *   POST   /clusters/:id/conversations/:conversation_id/restore  status "active"
 *   GET    /clusters/:id/conversations/:conversation_id/messages oldest first (page, records)
 *   POST   /clusters/:id/conversations/:conversation_id/messages see cluster_reply.c
 *   GET    /clusters/:id/conversations/:conversation_id/messages/:message_id
 *
 * "name" is accepted and answered beside "title" (the official Jarvis SDK's
 * word), agent_unique_id/user_unique_id beside cluster_id/user_id. The same
 * conversations as the SDK reaches them, by id alone (ids are unique across
 * clusters; the conversation's cluster is looked up, then the handler of the
 * full path runs):
 *   GET    /conversations                      the organization's (page, records, status,
 *                                              agent_unique_id = cluster, user_unique_id)
 *   POST   /conversations                      {"conversation": {agent_unique_id (the cluster whose
 *                                              members answer), name, user_unique_id}} -> 201
 *   GET|DELETE /conversations/:conversation_id
 *   GET|POST   /conversations/:conversation_id/messages
 *   POST   /conversations/:conversation_id/clear    deletes its messages; answers it
 *   PUT    /conversations/:conversation_id/rename   {"name": "..."} (top-level, as the SDK sends it)
 *   PUT    /conversations/:conversation_id/archive  PUT .../restore
 *   GET    /identities/:uid/conversations      a user's (:uid of the organization)
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/api_clusters.h"
#include "core/ids.h"

#define CONVERSATION_TITLE_MAX 255

json_t *api_conversation_json(const store_conversation *c)
{
    json_t *attrs = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "unique_id", c->id,
                              "title", c->title, "name", c->title, "messages_count", (json_int_t)c->messages_count,
                              "status", c->status, "cluster_id", c->cluster_id, "agent_unique_id", c->cluster_id,
                              "user_id", c->user_id, "user_unique_id", c->user_id, "created_at",
                              api_time(c->created_at), "updated_at", api_time(c->updated_at));
    return api_resource(c->id, "conversation", attrs);
}

json_t *api_cluster_message_json(const store_message *m)
{
    json_t *attrs = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:{s:I, s:I, s:I}, s:I, s:o, s:o}", "unique_id",
        m->id, "role", m->role, "content", m->content ? m->content : "", "status", m->status, "conversation_id",
        m->conversation_id, "entity_id", m->entity_id[0] ? m->entity_id : NULL, "entity_name", m->entity_name,
        "model", m->model, "error", m->error, "execution_id", m->execution_id[0] ? m->execution_id : NULL, "usage",
        "prompt_tokens", (json_int_t)m->prompt_tokens, "completion_tokens", (json_int_t)m->completion_tokens,
        "total_tokens", (json_int_t)m->total_tokens, "duration_ms", (json_int_t)m->duration_ms, "created_at",
        api_time(m->created_at), "updated_at", api_time(m->updated_at));
    json_t *res = api_resource(m->id, "message", attrs);
    if (res && m->entity_id[0])
        json_object_set_new(res, "relationships",
                            json_pack("{s:{s:{s:s, s:s}}}", "entity", "data", "id", m->entity_id, "type", "entity"));
    return res;
}

static int valid_status(const char *s) { return strcmp(s, "active") == 0 || strcmp(s, "archived") == 0; }

static void conversations_list(api_req *rq)
{
    const char *id = api_param(rq, "id");
    long page, records;
    if (api_reject_bad_id(rq, id, "Cluster") || api_page_params(rq, &page, &records))
        return;
    const char *status = http_query(rq->http, "status");
    if (status && !*status)
        status = NULL;
    if (status && !valid_status(status)) {
        http_error(rq->http, 400, NULL, "status", "'status' must be active or archived");
        return;
    }
    store_conversation_page list;
    int rc = store_conversation_list(rq->app->store, rq->who.org_id, id, status, (page - 1) * records, records,
                                     &list);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, api_conversation_json(&list.items[i]));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, page, records));
    store_conversation_page_free(&list);
}

/* conversation.title, or conversation.name (the SDK's word) when no title:
 * one of them is required when `required`. */
static int title_field(api_req *rq, json_t *obj, int required, const char **title)
{
    if (api_string_field(rq, obj, "title", "conversation.title", 0, 1, CONVERSATION_TITLE_MAX, title))
        return -1;
    if (*title)
        return 0;
    if (api_string_field(rq, obj, "name", "conversation.name", 0, 1, CONVERSATION_TITLE_MAX, title))
        return -1;
    if (!*title && required) {
        http_error(rq->http, 422, NULL, "conversation.title", "'conversation.title' (or 'conversation.name') is required");
        return -1;
    }
    return 0;
}

/* conversation.user_unique_id: a user of the organization (422 naming the
 * field otherwise); the caller when absent. */
static int owner_field(api_req *rq, json_t *obj, store_id owner)
{
    const char *uid;
    if (api_string_field(rq, obj, "user_unique_id", "conversation.user_unique_id", 0, 1, 64, &uid))
        return -1;
    if (!uid) {
        snprintf(owner, sizeof(store_id), "%s", rq->who.user_id);
        return 0;
    }
    store_user u;
    int rc = id_is_uuid(uid) ? store_user_get(rq->app->store, rq->who.org_id, uid, &u) : STORE_NOTFOUND;
    if (rc == STORE_NOTFOUND) {
        http_error(rq->http, 422, NULL, "conversation.user_unique_id",
                   "'conversation.user_unique_id' is not a user of this organization");
        return -1;
    }
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "User");
        return -1;
    }
    store_user_clear(&u);
    snprintf(owner, sizeof(store_id), "%s", uid);
    return 0;
}

static void conversations_create(api_req *rq)
{
    const char *id = api_param(rq, "id");
    json_t *root = NULL, *obj;
    const char *title;
    store_conversation c = {0};
    if (api_reject_bad_id(rq, id, "Cluster") || api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "conversation")) || title_field(rq, obj, 1, &title) ||
        owner_field(rq, obj, c.user_id))
        goto out;
    c.title = (char *)title;
    int rc = store_conversation_create(rq->app->store, rq->who.org_id, id, &c);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        goto out;
    }
    /* c.title is borrowed from the body: render before it is released */
    http_reply_json(rq->http, 201, json_pack("{s:o}", "data", api_conversation_json(&c)));
out:
    json_decref(root);
}

/* The cluster and conversation ids of the path; 1 if it answered 404. */
static int reject_bad_ids(api_req *rq, const char **id, const char **conversation_id)
{
    *id = api_param(rq, "id");
    *conversation_id = api_param(rq, "conversation_id");
    return api_reject_bad_id(rq, *id, "Cluster") || api_reject_bad_id(rq, *conversation_id, "Conversation");
}

static void conversations_get(api_req *rq)
{
    const char *id, *conversation_id;
    if (reject_bad_ids(rq, &id, &conversation_id))
        return;
    enum store_cluster_part missing = STORE_PART_CLUSTER;
    store_conversation c;
    int rc = store_conversation_get(rq->app->store, rq->who.org_id, id, conversation_id, &c, &missing);
    if (rc != STORE_OK) {
        api_cluster_store_error(rq, rc, missing);
        return;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", api_conversation_json(&c)));
    store_conversation_clear(&c);
}

/* Apply a patch and answer the conversation (with message when not NULL). */
static void conversation_patch(api_req *rq, const char *id, const char *conversation_id,
                               const store_conversation_patch *patch, const char *message)
{
    enum store_cluster_part missing = STORE_PART_CLUSTER;
    store_conversation c;
    int rc = store_conversation_update(rq->app->store, rq->who.org_id, id, conversation_id, patch, &c, &missing);
    if (rc != STORE_OK) {
        api_cluster_store_error(rq, rc, missing);
        return;
    }
    json_t *doc = json_pack("{s:o}", "data", api_conversation_json(&c));
    if (doc && message)
        json_object_set_new(doc, "message", json_string(message));
    http_reply_json(rq->http, 200, doc);
    store_conversation_clear(&c);
}

static void conversations_update(api_req *rq)
{
    const char *id, *conversation_id;
    json_t *root = NULL, *obj;
    store_conversation_patch patch = {0};
    if (reject_bad_ids(rq, &id, &conversation_id) || api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "conversation")) || title_field(rq, obj, 0, &patch.title) ||
        api_string_field(rq, obj, "status", "conversation.status", 0, 1, 16, &patch.status))
        goto out;
    json_t *title = json_object_get(obj, "title");
    if (!title)
        title = json_object_get(obj, "name");
    if (title && json_is_null(title)) {
        http_error(rq->http, 422, NULL, "conversation.title", "'conversation.title' must not be null");
        goto out;
    }
    if (patch.status && !valid_status(patch.status)) {
        http_error(rq->http, 422, NULL, "conversation.status", "'conversation.status' must be active or archived");
        goto out;
    }
    conversation_patch(rq, id, conversation_id, &patch, NULL);
out:
    json_decref(root);
}

static void conversations_archive(api_req *rq)
{
    const char *id, *conversation_id;
    if (reject_bad_ids(rq, &id, &conversation_id))
        return;
    store_conversation_patch patch = {.status = "archived"};
    conversation_patch(rq, id, conversation_id, &patch, "Conversation archived successfully");
}

static void conversations_restore(api_req *rq)
{
    const char *id, *conversation_id;
    if (reject_bad_ids(rq, &id, &conversation_id))
        return;
    store_conversation_patch patch = {.status = "active"};
    conversation_patch(rq, id, conversation_id, &patch, "Conversation restored successfully");
}

static void conversations_delete(api_req *rq)
{
    const char *id, *conversation_id;
    if (reject_bad_ids(rq, &id, &conversation_id))
        return;
    enum store_cluster_part missing = STORE_PART_CLUSTER;
    int rc = store_conversation_delete(rq->app->store, rq->who.org_id, id, conversation_id, &missing);
    if (rc != STORE_OK) {
        api_cluster_store_error(rq, rc, missing);
        return;
    }
    http_reply_empty(rq->http, 204);
}

static void messages_list(api_req *rq)
{
    const char *id, *conversation_id;
    long page, records;
    if (reject_bad_ids(rq, &id, &conversation_id) || api_page_params(rq, &page, &records))
        return;
    enum store_cluster_part missing = STORE_PART_CLUSTER;
    store_message_query q = {.offset = (page - 1) * records, .limit = records};
    store_message_page list;
    int rc = store_message_list(rq->app->store, rq->who.org_id, id, conversation_id, &q, &list, &missing);
    if (rc != STORE_OK) {
        api_cluster_store_error(rq, rc, missing);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, api_cluster_message_json(&list.items[i]));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, page, records));
    store_message_page_free(&list);
}

static void messages_get(api_req *rq)
{
    const char *id, *conversation_id, *message_id = api_param(rq, "message_id");
    if (reject_bad_ids(rq, &id, &conversation_id) || api_reject_bad_id(rq, message_id, "Message"))
        return;
    enum store_cluster_part missing = STORE_PART_CLUSTER;
    store_message m;
    int rc = store_message_get(rq->app->store, rq->who.org_id, id, conversation_id, message_id, &m, &missing);
    if (rc != STORE_OK) {
        api_cluster_store_error(rq, rc, missing);
        return;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", api_cluster_message_json(&m)));
    store_message_clear(&m);
}

/* ---------------------------------------------------------------- by id alone (the Jarvis SDK's paths) */

/* Find the cluster of :conversation_id and hand it to the full path's handler as :id. */
static int locate(api_req *rq)
{
    const char *conversation_id = api_param(rq, "conversation_id");
    if (api_reject_bad_id(rq, conversation_id, "Conversation"))
        return -1;
    store_id cluster_id;
    int rc = store_conversation_locate(rq->app->store, rq->who.org_id, conversation_id, cluster_id);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Conversation");
        return -1;
    }
    if (api_param_set(rq, "id", cluster_id)) {
        api_store_error(rq, STORE_ERR, "Conversation");
        return -1;
    }
    return 0;
}

static void list_org(api_req *rq, const char *user_id)
{
    long page, records;
    if (api_page_params(rq, &page, &records))
        return;
    const char *status = http_query(rq->http, "status"), *cluster_id = http_query(rq->http, "agent_unique_id");
    if (!cluster_id || !*cluster_id)
        cluster_id = http_query(rq->http, "cluster_id");
    if (!user_id)
        user_id = http_query(rq->http, "user_unique_id");
    if (status && !*status)
        status = NULL;
    if (cluster_id && !*cluster_id)
        cluster_id = NULL;
    if (user_id && !*user_id)
        user_id = NULL;
    if (status && !valid_status(status)) {
        http_error(rq->http, 400, NULL, "status", "'status' must be active or archived");
        return;
    }
    store_conversation_page list;
    int rc = store_conversation_list_org(rq->app->store, rq->who.org_id, cluster_id, user_id, status,
                                         (page - 1) * records, records, &list);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Conversation");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, api_conversation_json(&list.items[i]));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, page, records));
    store_conversation_page_free(&list);
}

static void org_conversations_list(api_req *rq) { list_org(rq, NULL); }

static void identity_conversations_list(api_req *rq)
{
    if (!api_user_param(rq, "uid"))
        list_org(rq, api_param(rq, "uid"));
}

/* POST /conversations: the cluster comes in the body (agent_unique_id or cluster_id). */
static void org_conversations_create(api_req *rq)
{
    json_t *root = NULL, *obj;
    const char *cluster_id;
    if (api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "conversation")) ||
        api_string_field(rq, obj, "agent_unique_id", "conversation.agent_unique_id", 0, 1, 64, &cluster_id))
        goto out;
    if (!cluster_id &&
        api_string_field(rq, obj, "cluster_id", "conversation.cluster_id", 0, 1, 64, &cluster_id))
        goto out;
    if (!cluster_id) {
        http_error(rq->http, 422, NULL, "conversation.agent_unique_id",
                   "'conversation.agent_unique_id' (the cluster whose members answer) is required");
        goto out;
    }
    if (!id_is_uuid(cluster_id)) {
        http_error(rq->http, 422, NULL, "conversation.agent_unique_id",
                   "'conversation.agent_unique_id' must be a cluster's UUID");
        goto out;
    }
    if (api_param_set(rq, "id", cluster_id)) {
        api_store_error(rq, STORE_ERR, "Conversation");
        goto out;
    }
    conversations_create(rq);
out:
    json_decref(root);
}

static void org_conversation_get(api_req *rq)
{
    if (!locate(rq))
        conversations_get(rq);
}

static void org_conversation_delete(api_req *rq)
{
    if (!locate(rq))
        conversations_delete(rq);
}

static void org_conversation_archive(api_req *rq)
{
    if (!locate(rq))
        conversations_archive(rq);
}

static void org_conversation_restore(api_req *rq)
{
    if (!locate(rq))
        conversations_restore(rq);
}

static void org_messages_list(api_req *rq)
{
    if (!locate(rq))
        messages_list(rq);
}

static void org_message_send(api_req *rq)
{
    if (!locate(rq))
        api_cluster_message_send(rq);
}

/* {"name": "..."} at the top level (the SDK's rename), or the wrapped form. */
static void org_conversation_rename(api_req *rq)
{
    json_t *root = NULL, *obj;
    store_conversation_patch patch = {0};
    if (locate(rq) || api_read_body(rq, &root))
        return;
    obj = json_object_get(root, "conversation");
    if (!json_is_object(obj))
        obj = root;
    if (title_field(rq, obj, 0, &patch.title))
        goto out;
    if (!patch.title) {
        http_error(rq->http, 422, NULL, "name", "'name' is required");
        goto out;
    }
    conversation_patch(rq, api_param(rq, "id"), api_param(rq, "conversation_id"), &patch, NULL);
out:
    json_decref(root);
}

static void org_conversation_clear(api_req *rq)
{
    if (locate(rq))
        return;
    enum store_cluster_part missing = STORE_PART_CONVERSATION;
    store_conversation c;
    int rc = store_conversation_empty(rq->app->store, rq->who.org_id, api_param(rq, "id"),
                                      api_param(rq, "conversation_id"), &c, &missing);
    if (rc != STORE_OK) {
        api_cluster_store_error(rq, rc, missing);
        return;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o, s:s}", "data", api_conversation_json(&c), "message",
                                             "Conversation cleared successfully"));
    store_conversation_clear(&c);
}

int api_routes_conversations(app *a)
{
    return api_route(a, "GET", "/clusters/:id/conversations", conversations_list, 0) ||
           api_route(a, "POST", "/clusters/:id/conversations", conversations_create, 0) ||
           api_route(a, "GET", "/clusters/:id/conversations/:conversation_id", conversations_get, 0) ||
           api_route(a, "PUT", "/clusters/:id/conversations/:conversation_id", conversations_update, 0) ||
           api_route(a, "PATCH", "/clusters/:id/conversations/:conversation_id", conversations_update, 0) ||
           api_route(a, "DELETE", "/clusters/:id/conversations/:conversation_id", conversations_delete, 0) ||
           api_route(a, "POST", "/clusters/:id/conversations/:conversation_id/archive", conversations_archive, 0) ||
           api_route(a, "POST", "/clusters/:id/conversations/:conversation_id/restore", conversations_restore, 0) ||
           api_route(a, "GET", "/clusters/:id/conversations/:conversation_id/messages", messages_list, 0) ||
           api_route(a, "POST", "/clusters/:id/conversations/:conversation_id/messages", api_cluster_message_send,
                     0) ||
           api_route(a, "GET", "/clusters/:id/conversations/:conversation_id/messages/:message_id", messages_get,
                     0) ||
           api_route(a, "GET", "/conversations", org_conversations_list, 0) ||
           api_route(a, "POST", "/conversations", org_conversations_create, 0) ||
           api_route(a, "GET", "/conversations/:conversation_id", org_conversation_get, 0) ||
           api_route(a, "DELETE", "/conversations/:conversation_id", org_conversation_delete, 0) ||
           api_route(a, "GET", "/conversations/:conversation_id/messages", org_messages_list, 0) ||
           api_route(a, "POST", "/conversations/:conversation_id/messages", org_message_send, 0) ||
           api_route(a, "POST", "/conversations/:conversation_id/clear", org_conversation_clear, 0) ||
           api_route(a, "PUT", "/conversations/:conversation_id/rename", org_conversation_rename, 0) ||
           api_route(a, "PUT", "/conversations/:conversation_id/archive", org_conversation_archive, 0) ||
           api_route(a, "PUT", "/conversations/:conversation_id/restore", org_conversation_restore, 0) ||
           api_route(a, "GET", "/identities/:uid/conversations", identity_conversations_list, 0);
}
