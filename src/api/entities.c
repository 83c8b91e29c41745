/*
 * entities.c — the Jarvis entities API: the "digital twins" that are the
 * members of clusters and answer in cluster conversations (spec 001).
 *
 *   GET    /entities          list (page, records)
 *   POST   /entities          {"entity": {name, description, persona, model}} -> 201
 *   GET    /entities/:id
 *   PUT    /entities/:id      fields given are changed; "model": null or "" resets it to the default
 *   DELETE /entities/:id      204; the entity leaves every cluster (its past replies stay)
 *
 *   POST   /entities/:id/register  {"entity": {...}}: the official Jarvis SDK's registration
 *                     under a caller-chosen UUID: 201 when new (a name is required: entity.name,
 *                     else entity_alias or code), 200 with the fields given changed when the id is
 *                     already this organization's; another organization's id answers 404
 *
 * persona is the entity's system prompt. model is optional (NULL = the
 * configured default model) and must route to a provider when given. The
 * SDK's words are accepted and answered beside them: instructions = persona,
 * content = description, entity_alias = name.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/api_clusters.h"
#include "engine/engine.h"

json_t *api_entity_json(const store_entity *e)
{
    json_t *attrs = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:I, s:s, s:s, s:s, s:o, s:o}", "unique_id", e->id,
                              "name", e->name, "description", e->description, "persona", e->persona, "model",
                              e->model, "clusters_count", (json_int_t)e->clusters_count, "entity_alias", e->name,
                              "instructions", e->persona, "content", e->description, "created_at",
                              api_time(e->created_at), "updated_at", api_time(e->updated_at));
    return api_resource(e->id, "entity", attrs);
}

/* A model the engine can route (when there is an engine); answers 422 otherwise. */
static int check_model(api_req *rq, const char *model)
{
    if (!model || !rq->app->engine || engine_model_known(rq->app->engine, model))
        return 0;
    http_error(rq->http, 422, NULL, "entity.model",
               "'entity.model' is not a known model ('%s'): use echo, openai/<model>, anthropic/<model>, "
               "<provider>/<model> or a configured alias",
               model);
    return -1;
}

static void entities_list(api_req *rq)
{
    long page, records;
    if (api_page_params(rq, &page, &records))
        return;
    store_entity_page list;
    int rc = store_entity_list(rq->app->store, rq->who.org_id, (page - 1) * records, records, &list);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Entity");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, api_entity_json(&list.items[i]));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, page, records));
    store_entity_page_free(&list);
}

static void entities_create(api_req *rq)
{
    json_t *root = NULL, *obj;
    const char *name, *description, *persona, *model;
    if (api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "entity")) ||
        api_string_field(rq, obj, "name", "entity.name", 1, 1, ENTITY_NAME_MAX, &name) ||
        api_string_field(rq, obj, "description", "entity.description", 0, 0, ENTITY_DESCRIPTION_MAX,
                         &description) ||
        api_string_field(rq, obj, "persona", "entity.persona", 0, 0, ENTITY_PERSONA_MAX, &persona) ||
        api_string_field(rq, obj, "model", "entity.model", 0, 0, ENTITY_MODEL_MAX, &model))
        goto out;
    if (model && !*model)
        model = NULL;
    if (check_model(rq, model))
        goto out;

    store_entity e = {0};
    memcpy(e.org_id, rq->who.org_id, sizeof e.org_id);
    memcpy(e.user_id, rq->who.user_id, sizeof e.user_id);
    e.name = (char *)name;
    e.description = (char *)(description ? description : "");
    e.persona = (char *)(persona ? persona : "");
    e.model = (char *)model;
    int rc = store_entity_create(rq->app->store, &e);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Entity");
        goto out;
    }
    char location[64];
    snprintf(location, sizeof location, "/entities/%s", e.id);
    http_add_header(rq->http, "Location", location);
    /* e's strings are borrowed from the body: render before it is released */
    http_reply_json(rq->http, 201, json_pack("{s:o}", "data", api_entity_json(&e)));
out:
    json_decref(root);
}

static void entities_get(api_req *rq)
{
    const char *id = api_param(rq, "id");
    if (api_reject_bad_id(rq, id, "Entity"))
        return;
    store_entity e;
    int rc = store_entity_get(rq->app->store, rq->who.org_id, id, &e);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Entity");
        return;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", api_entity_json(&e)));
    store_entity_clear(&e);
}

/* The first of the keys given that obj has as a string (422 naming it when not a string). */
static int first_string(api_req *rq, json_t *obj, const char *const keys[], size_t max, const char **out)
{
    char path[64];
    *out = NULL;
    for (size_t i = 0; keys[i] && !*out; i++) {
        snprintf(path, sizeof path, "entity.%s", keys[i]);
        if (api_string_field(rq, obj, keys[i], path, 0, 0, max, out))
            return -1;
    }
    return 0;
}

/* The SDK's words for the same fields, after promptd's own. */
static const char *const NAME_KEYS[] = {"name", "entity_alias", "code", NULL};
static const char *const PERSONA_KEYS[] = {"persona", "instructions", NULL};
static const char *const DESCRIPTION_KEYS[] = {"description", "content", NULL};

static void entities_update(api_req *rq)
{
    const char *id = api_param(rq, "id");
    json_t *root = NULL, *obj;
    store_entity_patch patch = {0};
    if (api_reject_bad_id(rq, id, "Entity") || api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "entity")) ||
        first_string(rq, obj, NAME_KEYS, ENTITY_NAME_MAX, &patch.name) ||
        first_string(rq, obj, DESCRIPTION_KEYS, ENTITY_DESCRIPTION_MAX, &patch.description) ||
        first_string(rq, obj, PERSONA_KEYS, ENTITY_PERSONA_MAX, &patch.persona) ||
        api_string_field(rq, obj, "model", "entity.model", 0, 0, ENTITY_MODEL_MAX, &patch.model))
        goto out;
    json_t *name = json_object_get(obj, "name");
    if ((name && json_is_null(name)) || (patch.name && !*patch.name)) {
        http_error(rq->http, 422, NULL, "entity.name", "'entity.name' must not be null or empty");
        goto out;
    }
    /* "model": null or "" goes back to the default model */
    if (json_object_get(obj, "model") && (!patch.model || !*patch.model)) {
        patch.model = NULL;
        patch.clear_model = 1;
    }
    if (check_model(rq, patch.model))
        goto out;
    store_entity e;
    int rc = store_entity_update(rq->app->store, rq->who.org_id, id, &patch, &e);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Entity");
        goto out;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", api_entity_json(&e)));
    store_entity_clear(&e);
out:
    json_decref(root);
}

static void entities_delete(api_req *rq)
{
    const char *id = api_param(rq, "id");
    if (api_reject_bad_id(rq, id, "Entity"))
        return;
    int rc = store_entity_delete(rq->app->store, rq->who.org_id, id);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Entity");
        return;
    }
    http_reply_empty(rq->http, 204);
}

static void entities_register(api_req *rq)
{
    const char *id = api_param(rq, "id");
    json_t *root = NULL, *obj;
    store_entity_patch patch = {0};
    if (api_reject_bad_id(rq, id, "Entity") || api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "entity")) ||
        first_string(rq, obj, NAME_KEYS, ENTITY_NAME_MAX, &patch.name) ||
        first_string(rq, obj, PERSONA_KEYS, ENTITY_PERSONA_MAX, &patch.persona) ||
        first_string(rq, obj, DESCRIPTION_KEYS, ENTITY_DESCRIPTION_MAX, &patch.description) ||
        api_string_field(rq, obj, "model", "entity.model", 0, 0, ENTITY_MODEL_MAX, &patch.model))
        goto out;
    if (patch.name && !*patch.name) {
        http_error(rq->http, 422, NULL, "entity.name", "'entity.name' must not be empty");
        goto out;
    }
    if (patch.model && !*patch.model)
        patch.model = NULL;
    if (check_model(rq, patch.model))
        goto out;
    store_entity e = {0}, got;
    snprintf(e.id, sizeof e.id, "%s", id);
    /* ids are stored lowercase, as promptd issues them: an uppercase spelling names the same entity */
    for (char *c = e.id; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    id = e.id;
    memcpy(e.org_id, rq->who.org_id, sizeof e.org_id);
    memcpy(e.user_id, rq->who.user_id, sizeof e.user_id);
    e.name = (char *)patch.name;
    e.description = (char *)patch.description;
    e.persona = (char *)patch.persona;
    e.model = (char *)patch.model;
    /* a new id needs a name; a known one keeps its own */
    store_entity known;
    int rc = store_entity_get(rq->app->store, rq->who.org_id, id, &known);
    if (rc == STORE_OK)
        store_entity_clear(&known);
    else if (rc == STORE_NOTFOUND && !patch.name) {
        http_error(rq->http, 422, NULL, "entity.name",
                   "'entity.name' (or entity.entity_alias / entity.code) is required to register a new entity");
        goto out;
    }
    int created = 0;
    rc = store_entity_register(rq->app->store, &e, &patch, &got, &created);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Entity");
        goto out;
    }
    if (created) {
        char location[64];
        snprintf(location, sizeof location, "/entities/%s", got.id);
        http_add_header(rq->http, "Location", location);
    }
    http_reply_json(rq->http, created ? 201 : 200, json_pack("{s:o}", "data", api_entity_json(&got)));
    store_entity_clear(&got);
out:
    json_decref(root);
}

int api_routes_entities(app *a)
{
    return api_route(a, "GET", "/entities", entities_list, 0) ||
           api_route(a, "POST", "/entities", entities_create, 0) ||
           api_route(a, "GET", "/entities/:id", entities_get, 0) ||
           api_route(a, "PUT", "/entities/:id", entities_update, 0) ||
           api_route(a, "PATCH", "/entities/:id", entities_update, 0) ||
           api_route(a, "DELETE", "/entities/:id", entities_delete, 0) ||
           api_route(a, "POST", "/entities/:id/register", entities_register, 0);
}
