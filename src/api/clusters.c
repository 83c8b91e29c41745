/*
 * clusters.c — the Jarvis clusters API (spec 001): clusters, their member
 * entities, the prompts assigned to them, and their contexts.
 *
 *   GET    /clusters                          list (page, records)
 *   POST   /clusters                          {"cluster": {name, description}} -> 201
 *   GET    /clusters/:id                      with relationships.members
 *   PUT    /clusters/:id                      fields given are changed
 *   DELETE /clusters/:id                      204; memberships, prompt links, contexts,
 *                                             conversations and messages go with it
 *   GET    /clusters/:id/members              the member entities (page, records)
 *   POST   /clusters/:id/members/:entity_id   "Entity added to cluster successfully" (idempotent)
 *   DELETE /clusters/:id/members/:entity_id   "Entity removed from cluster successfully" (idempotent)
 *   GET    /clusters/:id/prompts              the assigned prompts (page, records)
 *   POST   /clusters/:id/prompts/:prompt_id   "Prompt added to cluster successfully" (idempotent)
 *   DELETE /clusters/:id/prompts/:prompt_id   "Prompt removed from cluster successfully" (idempotent)
 *   GET    /clusters/:id/contexts             list (page, records)
 *   POST   /clusters/:id/contexts             {"context": {name, content}} -> 201
 *   PUT    /clusters/:id/contexts/:context_id
 *   DELETE /clusters/:id/contexts/:context_id 204
 *
 * The contexts are the system context every member answers with (see
 * cluster_reply.c). Ids of another organization answer 404, as missing ones.
 *
 * The same clusters as the official Jarvis SDK reaches them, per user (:uid a
 * user of the caller's organization; a cluster that user did not create
 * answers 404 there):
 *   GET    /users/:uid/clusters               the user's clusters (page, records)
 *   POST   /users/:uid/clusters               {"cluster": {...}} -> 201, created for that user
 *   GET|PUT|DELETE /users/:uid/clusters/:id   as /clusters/:id
 *   POST   /users/:uid/clusters/:id/prompts   {"prompt": {"unique_id"}} assigns it; answers the cluster
 *   POST   /users/:uid/clusters/:id/contexts  {"context": {name}} -> 201: the SDK's "context" is
 *                                             a conversation thread of the cluster (title = name)
 *   POST   /users/:uid/clusters/:id/contexts/:conversation_id/messages
 *                                             as /clusters/:id/conversations/:conversation_id/messages
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/api_clusters.h"
#include "core/ids.h"

#define CLUSTER_NAME_MAX 255
#define CLUSTER_DESCRIPTION_MAX 10000
#define CONTEXT_NAME_MAX 255
#define CONTEXT_CONTENT_MAX 100000

void api_cluster_store_error(api_req *rq, int rc, enum store_cluster_part missing)
{
    static const char *names[] = {[STORE_PART_CLUSTER] = "Cluster",     [STORE_PART_ENTITY] = "Entity",
                                  [STORE_PART_PROMPT] = "Prompt",       [STORE_PART_CONTEXT] = "Context",
                                  [STORE_PART_CONVERSATION] = "Conversation", [STORE_PART_MESSAGE] = "Message"};
    const char *what = (unsigned)missing < sizeof names / sizeof names[0] ? names[missing] : "Cluster";
    api_store_error(rq, rc, what);
}

/* The cluster resource; relationships.members when the member ids were loaded. */
static json_t *cluster_json(const store_cluster *c, int with_members)
{
    json_t *attrs = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:o}", "unique_id", c->id, "name",
                              c->name, "description", c->description, "user_unique_id", c->user_id,
                              "members_count", (json_int_t)c->members_count,
                              "prompts_count", (json_int_t)c->prompts_count, "contexts_count",
                              (json_int_t)c->contexts_count, "conversations_count",
                              (json_int_t)c->conversations_count, "created_at", api_time(c->created_at),
                              "updated_at", api_time(c->updated_at));
    json_t *res = api_resource(c->id, "cluster", attrs);
    if (res && with_members) {
        json_t *members = json_array();
        for (size_t i = 0; i < c->member_ids_count; i++)
            json_array_append_new(members, json_pack("{s:s, s:s}", "id", c->member_ids[i], "type", "entity"));
        json_object_set_new(res, "relationships", json_pack("{s:{s:o}}", "members", "data", members));
    }
    return res;
}

static json_t *context_json(const store_context *x)
{
    json_t *attrs = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "unique_id", x->id, "name", x->name, "content",
                              x->content, "cluster_id", x->cluster_id, "created_at", api_time(x->created_at),
                              "updated_at", api_time(x->updated_at));
    return api_resource(x->id, "context", attrs);
}

/* The assigned prompt as spec 001 lists it (with a little more). */
static json_t *cluster_prompt_json(const store_prompt *p)
{
    json_t *attrs = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o}", "unique_id", p->id, "name", p->name,
                              "description", p->description, "content", p->content, "status", p->status,
                              "versions_count", (json_int_t)p->versions_count, "created_at",
                              api_time(p->created_at), "updated_at", api_time(p->updated_at));
    return api_resource(p->id, "prompt", attrs);
}

/* ---------------------------------------------------------------- clusters */

/* The clusters of the organization (user_id NULL) or of one of its users. */
static void list_clusters(api_req *rq, const char *user_id)
{
    long page, records;
    if (api_page_params(rq, &page, &records))
        return;
    store_cluster_page list;
    int rc = store_cluster_list(rq->app->store, rq->who.org_id, user_id, (page - 1) * records, records, &list);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, cluster_json(&list.items[i], 0));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, page, records));
    store_cluster_page_free(&list);
}

static void clusters_list(api_req *rq) { list_clusters(rq, NULL); }

/* Create a cluster owned by owner_id. */
static void create_cluster(api_req *rq, const char *owner_id)
{
    json_t *root = NULL, *obj;
    const char *name, *description;
    if (api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "cluster")) ||
        api_string_field(rq, obj, "name", "cluster.name", 1, 1, CLUSTER_NAME_MAX, &name) ||
        api_string_field(rq, obj, "description", "cluster.description", 0, 0, CLUSTER_DESCRIPTION_MAX,
                         &description))
        goto out;
    store_cluster c = {0};
    memcpy(c.org_id, rq->who.org_id, sizeof c.org_id);
    snprintf(c.user_id, sizeof c.user_id, "%s", owner_id);
    c.name = (char *)name;
    c.description = (char *)(description ? description : "");
    int rc = store_cluster_create(rq->app->store, &c);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        goto out;
    }
    char location[64];
    snprintf(location, sizeof location, "/clusters/%s", c.id);
    http_add_header(rq->http, "Location", location);
    /* c's strings are borrowed from the body: render before it is released */
    http_reply_json(rq->http, 201, json_pack("{s:o}", "data", cluster_json(&c, 1)));
out:
    json_decref(root);
}

static void clusters_create(api_req *rq) { create_cluster(rq, rq->who.user_id); }

static void clusters_get(api_req *rq)
{
    const char *id = api_param(rq, "id");
    if (api_reject_bad_id(rq, id, "Cluster"))
        return;
    store_cluster c;
    int rc = store_cluster_get(rq->app->store, rq->who.org_id, id, &c);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        return;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", cluster_json(&c, 1)));
    store_cluster_clear(&c);
}

static void clusters_update(api_req *rq)
{
    const char *id = api_param(rq, "id");
    json_t *root = NULL, *obj;
    store_cluster_patch patch = {0};
    if (api_reject_bad_id(rq, id, "Cluster") || api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "cluster")) ||
        api_string_field(rq, obj, "name", "cluster.name", 0, 1, CLUSTER_NAME_MAX, &patch.name) ||
        api_string_field(rq, obj, "description", "cluster.description", 0, 0, CLUSTER_DESCRIPTION_MAX,
                         &patch.description))
        goto out;
    json_t *name = json_object_get(obj, "name");
    if (name && json_is_null(name)) {
        http_error(rq->http, 422, NULL, "cluster.name", "'cluster.name' must not be null");
        goto out;
    }
    store_cluster c;
    int rc = store_cluster_update(rq->app->store, rq->who.org_id, id, &patch, &c);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        goto out;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", cluster_json(&c, 1)));
    store_cluster_clear(&c);
out:
    json_decref(root);
}

static void clusters_delete(api_req *rq)
{
    const char *id = api_param(rq, "id");
    if (api_reject_bad_id(rq, id, "Cluster"))
        return;
    int rc = store_cluster_delete(rq->app->store, rq->who.org_id, id);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        return;
    }
    http_reply_empty(rq->http, 204);
}

/* ---------------------------------------------------------------- members */

static void members_list(api_req *rq)
{
    const char *id = api_param(rq, "id");
    long page, records;
    if (api_reject_bad_id(rq, id, "Cluster") || api_page_params(rq, &page, &records))
        return;
    store_entity_page list;
    int rc = store_cluster_member_list(rq->app->store, rq->who.org_id, id, (page - 1) * records, records, &list);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, api_entity_json(&list.items[i]));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, page, records));
    store_entity_page_free(&list);
}

static void member_set(api_req *rq, int on)
{
    const char *id = api_param(rq, "id"), *entity_id = api_param(rq, "entity_id");
    if (api_reject_bad_id(rq, id, "Cluster") || api_reject_bad_id(rq, entity_id, "Entity"))
        return;
    enum store_cluster_part missing = STORE_PART_CLUSTER;
    int rc;
    if (on && rq->app->cluster_members_max > 0) {
        /* each member replies to every message with an upstream call: the cap bounds one message's cost
         * (a member added again is no new member; two adds racing past the cap are not prevented) */
        store_cluster c;
        store_entity e = {0};
        if ((rc = store_cluster_get(rq->app->store, rq->who.org_id, id, &c)) != STORE_OK) {
            api_store_error(rq, rc, "Cluster");
            return;
        }
        long count = c.members_count;
        store_cluster_clear(&c);
        if (count >= rq->app->cluster_members_max) {
            rc = store_cluster_member_get(rq->app->store, rq->who.org_id, id, entity_id, &e, &missing);
            store_entity_clear(&e);
            if (rc == STORE_NOTFOUND && missing == STORE_PART_ENTITY) {
                http_error(rq->http, 422, NULL, "entity_id",
                           "The cluster already has %ld members, the most one cluster may have (cluster_members_max)",
                           count);
                return;
            }
            if (rc != STORE_OK) {
                api_cluster_store_error(rq, rc, missing);
                return;
            }
        }
    }
    rc = store_cluster_member_set(rq->app->store, rq->who.org_id, id, entity_id, on, &missing);
    if (rc != STORE_OK) {
        api_cluster_store_error(rq, rc, missing);
        return;
    }
    http_reply_json(rq->http, 200,
                    api_message(on ? "Entity added to cluster successfully" : "Entity removed from cluster successfully"));
}

static void member_add(api_req *rq) { member_set(rq, 1); }
static void member_remove(api_req *rq) { member_set(rq, 0); }

/* ---------------------------------------------------------------- prompts */

static void cluster_prompts_list(api_req *rq)
{
    const char *id = api_param(rq, "id");
    long page, records;
    if (api_reject_bad_id(rq, id, "Cluster") || api_page_params(rq, &page, &records))
        return;
    store_prompt_page list;
    int rc = store_cluster_prompt_list(rq->app->store, rq->who.org_id, id, (page - 1) * records, records, &list);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, cluster_prompt_json(&list.items[i]));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, page, records));
    store_prompt_page_free(&list);
}

static void cluster_prompt_set(api_req *rq, int on)
{
    const char *id = api_param(rq, "id"), *prompt_id = api_param(rq, "prompt_id");
    if (api_reject_bad_id(rq, id, "Cluster") || api_reject_bad_id(rq, prompt_id, "Prompt"))
        return;
    enum store_cluster_part missing = STORE_PART_CLUSTER;
    int rc = store_cluster_prompt_set(rq->app->store, rq->who.org_id, id, prompt_id, on, &missing);
    if (rc != STORE_OK) {
        api_cluster_store_error(rq, rc, missing);
        return;
    }
    http_reply_json(rq->http, 200,
                    api_message(on ? "Prompt added to cluster successfully" : "Prompt removed from cluster successfully"));
}

static void cluster_prompt_add(api_req *rq) { cluster_prompt_set(rq, 1); }
static void cluster_prompt_remove(api_req *rq) { cluster_prompt_set(rq, 0); }

/* ---------------------------------------------------------------- contexts */

static void contexts_list(api_req *rq)
{
    const char *id = api_param(rq, "id");
    long page, records;
    if (api_reject_bad_id(rq, id, "Cluster") || api_page_params(rq, &page, &records))
        return;
    store_context_page list;
    int rc = store_context_list(rq->app->store, rq->who.org_id, id, (page - 1) * records, records, &list);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, context_json(&list.items[i]));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, page, records));
    store_context_page_free(&list);
}

static void contexts_create(api_req *rq)
{
    const char *id = api_param(rq, "id");
    json_t *root = NULL, *obj;
    const char *name, *content;
    if (api_reject_bad_id(rq, id, "Cluster") || api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "context")) ||
        api_string_field(rq, obj, "name", "context.name", 0, 0, CONTEXT_NAME_MAX, &name) ||
        api_string_field(rq, obj, "content", "context.content", 1, 1, CONTEXT_CONTENT_MAX, &content))
        goto out;
    store_context x = {0};
    x.name = (char *)(name ? name : "");
    x.content = (char *)content;
    int rc = store_context_create(rq->app->store, rq->who.org_id, id, &x);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        goto out;
    }
    /* x's strings are borrowed from the body: render before it is released */
    http_reply_json(rq->http, 201, json_pack("{s:o}", "data", context_json(&x)));
out:
    json_decref(root);
}

static void contexts_update(api_req *rq)
{
    const char *id = api_param(rq, "id"), *context_id = api_param(rq, "context_id");
    json_t *root = NULL, *obj;
    store_context_patch patch = {0};
    if (api_reject_bad_id(rq, id, "Cluster") || api_reject_bad_id(rq, context_id, "Context") ||
        api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "context")) ||
        api_string_field(rq, obj, "name", "context.name", 0, 0, CONTEXT_NAME_MAX, &patch.name) ||
        api_string_field(rq, obj, "content", "context.content", 0, 1, CONTEXT_CONTENT_MAX, &patch.content))
        goto out;
    json_t *content = json_object_get(obj, "content");
    if (content && json_is_null(content)) {
        http_error(rq->http, 422, NULL, "context.content", "'context.content' must not be null");
        goto out;
    }
    enum store_cluster_part missing = STORE_PART_CLUSTER;
    store_context x;
    int rc = store_context_update(rq->app->store, rq->who.org_id, id, context_id, &patch, &x, &missing);
    if (rc != STORE_OK) {
        api_cluster_store_error(rq, rc, missing);
        goto out;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", context_json(&x)));
    store_context_clear(&x);
out:
    json_decref(root);
}

static void contexts_delete(api_req *rq)
{
    const char *id = api_param(rq, "id"), *context_id = api_param(rq, "context_id");
    if (api_reject_bad_id(rq, id, "Cluster") || api_reject_bad_id(rq, context_id, "Context"))
        return;
    enum store_cluster_part missing = STORE_PART_CLUSTER;
    int rc = store_context_delete(rq->app->store, rq->who.org_id, id, context_id, &missing);
    if (rc != STORE_OK) {
        api_cluster_store_error(rq, rc, missing);
        return;
    }
    http_reply_empty(rq->http, 204);
}

/* ---------------------------------------------------------------- per user (the Jarvis SDK's paths) */

/* :uid is a user of the organization and, when the path names a cluster, that
 * user created it; else answers 404 and returns -1. */
static int user_cluster_check(api_req *rq)
{
    if (api_user_param(rq, "uid"))
        return -1;
    const char *id = api_param(rq, "id");
    if (!id)
        return 0;
    if (api_reject_bad_id(rq, id, "Cluster"))
        return -1;
    store_cluster c;
    int rc = store_cluster_get(rq->app->store, rq->who.org_id, id, &c);
    if (rc == STORE_OK) {
        if (strcmp(c.user_id, api_param(rq, "uid")) != 0)
            rc = STORE_NOTFOUND;
        store_cluster_clear(&c);
    }
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        return -1;
    }
    return 0;
}

static void user_clusters_list(api_req *rq)
{
    if (!user_cluster_check(rq))
        list_clusters(rq, api_param(rq, "uid"));
}

static void user_clusters_create(api_req *rq)
{
    if (!user_cluster_check(rq))
        create_cluster(rq, api_param(rq, "uid"));
}

static void user_cluster_get(api_req *rq)
{
    if (!user_cluster_check(rq))
        clusters_get(rq);
}

static void user_cluster_update(api_req *rq)
{
    if (!user_cluster_check(rq))
        clusters_update(rq);
}

static void user_cluster_delete(api_req *rq)
{
    if (!user_cluster_check(rq))
        clusters_delete(rq);
}

/* {"prompt": {"unique_id": "..."}}: assign the prompt; answers the cluster (what the SDK decodes). */
static void user_cluster_prompt_add(api_req *rq)
{
    const char *id = api_param(rq, "id"), *prompt_id;
    json_t *root = NULL, *obj;
    if (user_cluster_check(rq) || api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "prompt")) ||
        api_string_field(rq, obj, "unique_id", "prompt.unique_id", 1, 1, 64, &prompt_id))
        goto out;
    if (!id_is_uuid(prompt_id)) {
        http_error(rq->http, 422, NULL, "prompt.unique_id", "'prompt.unique_id' must be a UUID");
        goto out;
    }
    enum store_cluster_part missing = STORE_PART_CLUSTER;
    int rc = store_cluster_prompt_set(rq->app->store, rq->who.org_id, id, prompt_id, 1, &missing);
    store_cluster c;
    if (rc == STORE_OK)
        rc = store_cluster_get(rq->app->store, rq->who.org_id, id, &c);
    if (rc != STORE_OK) {
        api_cluster_store_error(rq, rc, missing);
        goto out;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", cluster_json(&c, 1)));
    store_cluster_clear(&c);
out:
    json_decref(root);
}

/* The SDK's cluster "context" is a thread the members answer in: a
 * conversation of the cluster, titled by context.name. The body may be {}
 * (the SDK sends no wrapper without data). */
static void user_cluster_context_create(api_req *rq)
{
    const char *id = api_param(rq, "id"), *name = NULL, *given_id = NULL;
    json_t *root = NULL, *obj = NULL;
    if (user_cluster_check(rq) || api_read_body(rq, &root))
        return;
    if (json_object_get(root, "context") && !(obj = api_wrapped_object(rq, root, "context")))
        goto out;
    if (obj && (api_string_field(rq, obj, "name", "context.name", 0, 1, 255, &name) ||
                api_string_field(rq, obj, "unique_id", "context.unique_id", 0, 1, 64, &given_id)))
        goto out;
    if (given_id) {
        http_error(rq->http, 422, NULL, "context.unique_id",
                   "'context.unique_id' cannot be chosen: the server assigns the id it answers");
        goto out;
    }
    store_conversation v = {0};
    snprintf(v.user_id, sizeof v.user_id, "%s", api_param(rq, "uid"));
    v.title = (char *)(name ? name : "New conversation");
    int rc = store_conversation_create(rq->app->store, rq->who.org_id, id, &v);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        goto out;
    }
    /* v.title is borrowed from the body: render before it is released */
    http_reply_json(rq->http, 201, json_pack("{s:o}", "data", api_conversation_json(&v)));
out:
    json_decref(root);
}

static void user_cluster_context_message(api_req *rq)
{
    if (!user_cluster_check(rq))
        api_cluster_message_send(rq);
}

int api_routes_clusters(app *a)
{
    return api_route(a, "GET", "/clusters", clusters_list, 0) ||
           api_route(a, "POST", "/clusters", clusters_create, 0) ||
           api_route(a, "GET", "/clusters/:id", clusters_get, 0) ||
           api_route(a, "PUT", "/clusters/:id", clusters_update, 0) ||
           api_route(a, "PATCH", "/clusters/:id", clusters_update, 0) ||
           api_route(a, "DELETE", "/clusters/:id", clusters_delete, 0) ||
           api_route(a, "GET", "/clusters/:id/members", members_list, 0) ||
           api_route(a, "POST", "/clusters/:id/members/:entity_id", member_add, 0) ||
           api_route(a, "PUT", "/clusters/:id/members/:entity_id", member_add, 0) ||
           api_route(a, "DELETE", "/clusters/:id/members/:entity_id", member_remove, 0) ||
           api_route(a, "GET", "/clusters/:id/prompts", cluster_prompts_list, 0) ||
           api_route(a, "POST", "/clusters/:id/prompts/:prompt_id", cluster_prompt_add, 0) ||
           api_route(a, "PUT", "/clusters/:id/prompts/:prompt_id", cluster_prompt_add, 0) ||
           api_route(a, "DELETE", "/clusters/:id/prompts/:prompt_id", cluster_prompt_remove, 0) ||
           api_route(a, "GET", "/clusters/:id/contexts", contexts_list, 0) ||
           api_route(a, "POST", "/clusters/:id/contexts", contexts_create, 0) ||
           api_route(a, "PUT", "/clusters/:id/contexts/:context_id", contexts_update, 0) ||
           api_route(a, "PATCH", "/clusters/:id/contexts/:context_id", contexts_update, 0) ||
           api_route(a, "DELETE", "/clusters/:id/contexts/:context_id", contexts_delete, 0) ||
           api_route(a, "GET", "/users/:uid/clusters", user_clusters_list, 0) ||
           api_route(a, "POST", "/users/:uid/clusters", user_clusters_create, 0) ||
           api_route(a, "GET", "/users/:uid/clusters/:id", user_cluster_get, 0) ||
           api_route(a, "PUT", "/users/:uid/clusters/:id", user_cluster_update, 0) ||
           api_route(a, "PATCH", "/users/:uid/clusters/:id", user_cluster_update, 0) ||
           api_route(a, "DELETE", "/users/:uid/clusters/:id", user_cluster_delete, 0) ||
           api_route(a, "POST", "/users/:uid/clusters/:id/prompts", user_cluster_prompt_add, 0) ||
           api_route(a, "POST", "/users/:uid/clusters/:id/contexts", user_cluster_context_create, 0) ||
           api_route(a, "POST", "/users/:uid/clusters/:id/contexts/:conversation_id/messages",
                     user_cluster_context_message, 0);
}
