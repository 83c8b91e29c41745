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
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/api_clusters.h"

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
    json_t *attrs = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:o}", "unique_id", c->id, "name", c->name,
                              "description", c->description, "members_count", (json_int_t)c->members_count,
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

static void clusters_list(api_req *rq)
{
    long page, records;
    if (api_page_params(rq, &page, &records))
        return;
    store_cluster_page list;
    int rc = store_cluster_list(rq->app->store, rq->who.org_id, (page - 1) * records, records, &list);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Cluster");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, cluster_json(&list.items[i], 0));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, records));
    store_cluster_page_free(&list);
}

static void clusters_create(api_req *rq)
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
    memcpy(c.user_id, rq->who.user_id, sizeof c.user_id);
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
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, records));
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
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, records));
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
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, records));
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
           api_route(a, "DELETE", "/clusters/:id/contexts/:context_id", contexts_delete, 0);
}
