/*
 * v1_data_sources.c — data sources, the organization-scoped things prompts
 * read from (the data_source_id filter and data_source_ids of spec 002).
 *
 *   POST   /api/v1/data-sources        {name, type, description?, workspace_id?} -> 201 (admins)
 *   GET    /api/v1/data-sources        page, page_size, workspace_id -> items + pagination
 *   GET    /api/v1/data-sources/:id
 *   PUT    /api/v1/data-sources/:id    any of the fields; workspace_id null detaches (PATCH alike; admins)
 *   DELETE /api/v1/data-sources/:id    (admins) prompts lose the link
 *
 * `type` is free text naming the kind of source (postgresql, s3, csv, ...).
 * Names are unique in an organization (409). A workspace_id the organization
 * does not have is a 422 naming the field; another organization's data source
 * is a 404. Every member may read; only admins change (403 for members).
 * A data source's id is its number in the organization, workspace_id its
 * workspace's (spec 002); inputs take a number or the UUID, which answers
 * carry as uuid.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_v1.h"

#define DS_NAME_MAX 255
#define DS_TYPE_MAX 64
#define DS_DESCRIPTION_MAX 10000

static json_t *data_source_json(const store_data_source *d)
{
    return json_pack("{s:o, s:s, s:s, s:s, s:s, s:o, s:I, s:o, s:o}", "id", api_v1_num(d->num), "uuid", d->id, "name",
                     d->name, "type", d->type, "description", d->description, "workspace_id",
                     api_v1_num(d->workspace_num), "prompts_count", (json_int_t)d->prompts_count, "created_at",
                     api_time(d->created_at), "updated_at", api_time(d->updated_at));
}

static void conflict(api_req *rq, const char *name)
{
    http_error(rq->http, 409, NULL, "name", "A data source named '%s' already exists in this organization",
               name ? name : "");
}

static void bad_workspace(api_req *rq)
{
    http_error(rq->http, 422, NULL, "workspace_id", "'workspace_id' does not name a workspace of this organization");
}

/* workspace_id of a body: absent = *out NULL, null = "" (none), else a
 * workspace number or UUID, given as its UUID in buf (422 otherwise, and for
 * a number the organization has not given). */
static int workspace_field(api_req *rq, json_t *root, store_id buf, const char **out)
{
    json_t *v = json_object_get(root, "workspace_id");
    *out = NULL;
    if (!v)
        return 0;
    if (json_is_null(v)) {
        *out = "";
        return 0;
    }
    if (api_v1_body_ref(rq, v, STORE_NUM_WORKSPACE, "workspace_id", buf))
        return -1;
    *out = buf;
    return 0;
}

static void data_sources_create(api_req *rq)
{
    json_t *root = NULL;
    const char *name, *type, *description, *ws;
    store_id ws_buf;
    store_data_source d = {0};
    if (api_v1_require_admin(rq) || api_read_body(rq, &root))
        return;
    if (api_string_field(rq, root, "name", "name", 1, 1, DS_NAME_MAX, &name) ||
        api_string_field(rq, root, "type", "type", 1, 1, DS_TYPE_MAX, &type) ||
        api_string_field(rq, root, "description", "description", 0, 0, DS_DESCRIPTION_MAX, &description) ||
        workspace_field(rq, root, ws_buf, &ws))
        goto out;
    memcpy(d.org_id, rq->who.org_id, sizeof d.org_id);
    snprintf(d.workspace_id, sizeof d.workspace_id, "%s", ws ? ws : "");
    d.name = (char *)name;
    d.type = (char *)type;
    d.description = (char *)description;
    int rc = store_data_source_create(rq->app->store, &d);
    if (rc == STORE_CONFLICT) {
        conflict(rq, name);
        goto out;
    }
    if (rc == STORE_NOTFOUND) {
        bad_workspace(rq);
        goto out;
    }
    store_data_source created;
    if (rc == STORE_OK)
        rc = store_data_source_get(rq->app->store, rq->who.org_id, d.id, &created);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Data source");
        goto out;
    }
    char location[80];
    snprintf(location, sizeof location, "/api/v1/data-sources/%lld", (long long)created.num);
    http_add_header(rq->http, "Location", location);
    api_v1_reply(rq, 201, data_source_json(&created), "Data source created successfully");
    store_data_source_clear(&created);
out:
    json_decref(root);
}

static void data_sources_list(api_req *rq)
{
    long page, page_size;
    store_id ws_buf;
    int has_ws;
    if (api_v1_page_params(rq, &page, &page_size) ||
        api_v1_query_ref(rq, "workspace_id", STORE_NUM_WORKSPACE, "Workspace", ws_buf, &has_ws))
        return;
    const char *ws = has_ws ? ws_buf : NULL;
    int rc;
    if (ws) {
        store_workspace w;
        if ((rc = store_workspace_get(rq->app->store, rq->who.org_id, ws, &w)) != STORE_OK) {
            api_v1_store_error(rq, rc, "Workspace");
            return;
        }
        store_workspace_clear(&w);
    }
    store_data_source_page l;
    rc = store_data_source_list(rq->app->store, rq->who.org_id, ws, (page - 1) * page_size, page_size, &l);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Data source");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < l.count; i++)
        json_array_append_new(items, data_source_json(&l.items[i]));
    api_v1_reply(rq, 200, api_v1_list(items, page, page_size, l.total), "Data sources retrieved successfully");
    store_data_source_page_free(&l);
}

static void data_sources_get(api_req *rq)
{
    store_id id;
    if (api_v1_path_ref(rq, "id", STORE_NUM_DATA_SOURCE, "Data source", id))
        return;
    store_data_source d;
    int rc = store_data_source_get(rq->app->store, rq->who.org_id, id, &d);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Data source");
        return;
    }
    api_v1_reply(rq, 200, data_source_json(&d), "Data source retrieved successfully");
    store_data_source_clear(&d);
}

static void data_sources_update(api_req *rq)
{
    store_id id, ws_buf;
    json_t *root = NULL;
    store_data_source_patch patch = {0};
    if (api_v1_path_ref(rq, "id", STORE_NUM_DATA_SOURCE, "Data source", id) || api_v1_require_admin(rq) ||
        api_read_body(rq, &root))
        return;
    if (api_string_field(rq, root, "name", "name", 0, 1, DS_NAME_MAX, &patch.name) ||
        api_string_field(rq, root, "type", "type", 0, 1, DS_TYPE_MAX, &patch.type) ||
        api_string_field(rq, root, "description", "description", 0, 0, DS_DESCRIPTION_MAX, &patch.description) ||
        workspace_field(rq, root, ws_buf, &patch.workspace_id))
        goto out;
    store_data_source d;
    int bad_ws = 0;
    int rc = store_data_source_update(rq->app->store, rq->who.org_id, id, &patch, &d, &bad_ws);
    if (rc == STORE_CONFLICT) {
        conflict(rq, patch.name);
        goto out;
    }
    if (rc == STORE_NOTFOUND && bad_ws) {
        bad_workspace(rq);
        goto out;
    }
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Data source");
        goto out;
    }
    api_v1_reply(rq, 200, data_source_json(&d), "Data source updated successfully");
    store_data_source_clear(&d);
out:
    json_decref(root);
}

static void data_sources_delete(api_req *rq)
{
    store_id id;
    store_data_source d;
    if (api_v1_path_ref(rq, "id", STORE_NUM_DATA_SOURCE, "Data source", id) || api_v1_require_admin(rq))
        return;
    /* read first: the answer names it by number, which a UUID path does not give */
    int64_t num = 0;
    int rc = store_data_source_get(rq->app->store, rq->who.org_id, id, &d);
    if (rc == STORE_OK) {
        num = d.num;
        store_data_source_clear(&d);
        rc = store_data_source_delete(rq->app->store, rq->who.org_id, id);
    }
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Data source");
        return;
    }
    api_v1_reply(rq, 200, json_pack("{s:o, s:s, s:b}", "id", api_v1_num(num), "uuid", id, "deleted", 1),
                 "Data source deleted successfully");
}

int api_routes_v1_data_sources(app *a)
{
    return api_route(a, "POST", "/api/v1/data-sources", data_sources_create, 0) ||
           api_route(a, "GET", "/api/v1/data-sources", data_sources_list, 0) ||
           api_route(a, "GET", "/api/v1/data-sources/:id", data_sources_get, 0) ||
           api_route(a, "PUT", "/api/v1/data-sources/:id", data_sources_update, 0) ||
           api_route(a, "PATCH", "/api/v1/data-sources/:id", data_sources_update, 0) ||
           api_route(a, "DELETE", "/api/v1/data-sources/:id", data_sources_delete, 0);
}
