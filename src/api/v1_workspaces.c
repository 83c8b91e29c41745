/*
 * v1_workspaces.c — workspaces, the organization-scoped groups that prompts
 * and data sources belong to (the workspace_id filter of spec 002).
 *
 *   POST   /api/v1/workspaces          {name, description?} -> 201 (admins)
 *   GET    /api/v1/workspaces          page, page_size -> items + pagination
 *   GET    /api/v1/workspaces/:id
 *   PUT    /api/v1/workspaces/:id      {name?, description?} (PATCH alike; admins)
 *   DELETE /api/v1/workspaces/:id      (admins) its prompts and data sources stay, detached
 *
 * Names are unique in an organization (409). Every member may read; only
 * admins change (403 for members). Another organization's id is a 404.
 * A workspace's id is its number in the organization (spec 002's
 * workspace_id); :id takes it or the UUID, which answers carry as uuid.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_v1.h"

#define WS_NAME_MAX 255
#define WS_DESCRIPTION_MAX 10000

static json_t *workspace_json(const store_workspace *w)
{
    return json_pack("{s:o, s:s, s:s, s:s, s:I, s:I, s:o, s:o}", "id", api_v1_num(w->num), "uuid", w->id, "name",
                     w->name, "description", w->description, "prompts_count", (json_int_t)w->prompts_count,
                     "data_sources_count", (json_int_t)w->data_sources_count, "created_at", api_time(w->created_at),
                     "updated_at", api_time(w->updated_at));
}

static void conflict(api_req *rq, const char *name)
{
    http_error(rq->http, 409, NULL, "name", "A workspace named '%s' already exists in this organization",
               name ? name : "");
}

static void workspaces_create(api_req *rq)
{
    json_t *root = NULL;
    const char *name, *description;
    store_workspace w = {0};
    if (api_v1_require_admin(rq) || api_read_body(rq, &root))
        return;
    if (api_string_field(rq, root, "name", "name", 1, 1, WS_NAME_MAX, &name) ||
        api_string_field(rq, root, "description", "description", 0, 0, WS_DESCRIPTION_MAX, &description))
        goto out;
    memcpy(w.org_id, rq->who.org_id, sizeof w.org_id);
    w.name = (char *)name;
    w.description = (char *)description;
    int rc = store_workspace_create(rq->app->store, &w);
    if (rc == STORE_CONFLICT) {
        conflict(rq, name);
        goto out;
    }
    store_workspace created;
    if (rc == STORE_OK)
        rc = store_workspace_get(rq->app->store, rq->who.org_id, w.id, &created);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Workspace");
        goto out;
    }
    char location[80];
    snprintf(location, sizeof location, "/api/v1/workspaces/%lld", (long long)created.num);
    http_add_header(rq->http, "Location", location);
    api_v1_reply(rq, 201, workspace_json(&created), "Workspace created successfully");
    store_workspace_clear(&created);
out:
    json_decref(root);
}

static void workspaces_list(api_req *rq)
{
    long page, page_size;
    if (api_v1_page_params(rq, &page, &page_size))
        return;
    store_workspace_page l;
    int rc = store_workspace_list(rq->app->store, rq->who.org_id, (page - 1) * page_size, page_size, &l);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Workspace");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < l.count; i++)
        json_array_append_new(items, workspace_json(&l.items[i]));
    api_v1_reply(rq, 200, api_v1_list(items, page, page_size, l.total), "Workspaces retrieved successfully");
    store_workspace_page_free(&l);
}

static void workspaces_get(api_req *rq)
{
    store_id id;
    if (api_v1_path_ref(rq, "id", STORE_NUM_WORKSPACE, "Workspace", id))
        return;
    store_workspace w;
    int rc = store_workspace_get(rq->app->store, rq->who.org_id, id, &w);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Workspace");
        return;
    }
    api_v1_reply(rq, 200, workspace_json(&w), "Workspace retrieved successfully");
    store_workspace_clear(&w);
}

static void workspaces_update(api_req *rq)
{
    store_id id;
    json_t *root = NULL;
    store_workspace_patch patch = {0};
    if (api_v1_path_ref(rq, "id", STORE_NUM_WORKSPACE, "Workspace", id) || api_v1_require_admin(rq) ||
        api_read_body(rq, &root))
        return;
    if (api_string_field(rq, root, "name", "name", 0, 1, WS_NAME_MAX, &patch.name) ||
        api_string_field(rq, root, "description", "description", 0, 0, WS_DESCRIPTION_MAX, &patch.description))
        goto out;
    store_workspace w;
    int rc = store_workspace_update(rq->app->store, rq->who.org_id, id, &patch, &w);
    if (rc == STORE_CONFLICT) {
        conflict(rq, patch.name);
        goto out;
    }
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Workspace");
        goto out;
    }
    api_v1_reply(rq, 200, workspace_json(&w), "Workspace updated successfully");
    store_workspace_clear(&w);
out:
    json_decref(root);
}

static void workspaces_delete(api_req *rq)
{
    store_id id;
    store_workspace w;
    if (api_v1_path_ref(rq, "id", STORE_NUM_WORKSPACE, "Workspace", id) || api_v1_require_admin(rq))
        return;
    /* read first: the answer names it by number, which a UUID path does not give */
    int64_t num = 0;
    int rc = store_workspace_get(rq->app->store, rq->who.org_id, id, &w);
    if (rc == STORE_OK) {
        num = w.num;
        store_workspace_clear(&w);
        rc = store_workspace_delete(rq->app->store, rq->who.org_id, id);
    }
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Workspace");
        return;
    }
    api_v1_reply(rq, 200, json_pack("{s:o, s:s, s:b}", "id", api_v1_num(num), "uuid", id, "deleted", 1),
                 "Workspace deleted successfully");
}

int api_routes_v1_workspaces(app *a)
{
    return api_route(a, "POST", "/api/v1/workspaces", workspaces_create, 0) ||
           api_route(a, "GET", "/api/v1/workspaces", workspaces_list, 0) ||
           api_route(a, "GET", "/api/v1/workspaces/:id", workspaces_get, 0) ||
           api_route(a, "PUT", "/api/v1/workspaces/:id", workspaces_update, 0) ||
           api_route(a, "PATCH", "/api/v1/workspaces/:id", workspaces_update, 0) ||
           api_route(a, "DELETE", "/api/v1/workspaces/:id", workspaces_delete, 0);
}
