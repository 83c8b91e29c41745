/*
 * prompts.c — the Jarvis prompts API: /prompts CRUD, render, versions and
 * publishing, and the prompt's social actions (like, follow, save).
 *
 *   GET    /prompts                      list (page, records, status, search, sort)
 *   POST   /prompts                      {"prompt": {name, description, content}} -> 201
 *                                         ("abstract", the Jarvis SDK's word, when no description;
 *                                         answered as abstract, with version, likes, user_unique_id)
 *                                         (optional: workspace_id, data_source_ids, tags; see prompt_links.c)
 *   GET    /prompts/:id
 *   PUT    /prompts/:id                  a content change makes a new version
 *   DELETE /prompts/:id                  204
 *   POST   /prompts/:id/render           {"variables": {...}} (or "placeholders", the Jarvis SDK's
 *                                         word); data.meta says placeholders_provided / _missing /
 *                                         all_placeholders as the SDK reads them
 *   GET    /prompts/:id/versions
 *   POST   /prompts/:id/versions/:version_id/publish
 *   PUT    /prompts/:id/like    DELETE /prompts/:id/dislike
 *   PUT    /prompts/:id/follow  DELETE /prompts/:id/unfollow
 *   PUT    /prompts/:id/save    DELETE /prompts/:id/unsave
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_v1.h" /* api_prompt_links_*: workspace_id, tags, data_source_ids */
#include "core/ids.h"
#include "core/template.h"
#include "core/timeutil.h"

#define PROMPT_NAME_MAX 255
#define PROMPT_DESCRIPTION_MAX 10000
#define PROMPT_CONTENT_MAX 200000

static json_t *version_ref(const char *id)
{
    return id && *id ? json_pack("{s:{s:s, s:s}}", "data", "id", id, "type", "prompt_version")
                     : json_pack("{s:n}", "data");
}

/* The JSON:API resource of a prompt. */
static json_t *prompt_json(const store_prompt *p)
{
    json_t *vars = NULL;
    if (template_variables(p->content, &vars, NULL) != 0)
        vars = json_array();
    json_t *attrs = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:b, s:b, s:b, s:s?, s:s?, s:o, s:o}", "unique_id",
        p->id, "name", p->name, "description", p->description, "content", p->content, "status", p->status,
        "variables", vars, "versions_count", (json_int_t)p->versions_count, "likes_count",
        (json_int_t)p->likes_count, "saves_count", (json_int_t)p->saves_count, "followers_count",
        (json_int_t)p->followers_count, "liked", p->liked, "saved", p->saved, "followed", p->followed,
        "current_version_id", p->current_version_id[0] ? p->current_version_id : NULL, "published_version_id",
        p->published_version_id[0] ? p->published_version_id : NULL, "created_at", api_time(p->created_at),
        "updated_at", api_time(p->updated_at));
    api_prompt_links_json(attrs, p);
    /* the Jarvis SDK's names for the same values (its promptMapper) */
    if (attrs) {
        json_object_set_new(attrs, "abstract", json_string(p->description));
        json_object_set_new(attrs, "version", json_integer(p->versions_count));
        json_object_set_new(attrs, "likes", json_integer(p->likes_count));
        json_object_set_new(attrs, "user_unique_id", json_string(p->user_id));
    }
    json_t *res = api_resource(p->id, "prompt", attrs);
    if (res)
        json_object_set_new(res, "relationships",
                            json_pack("{s:o, s:o}", "current_version", version_ref(p->current_version_id),
                                      "published_version", version_ref(p->published_version_id)));
    return res;
}

static json_t *version_json(const store_version *v)
{
    json_t *attrs = json_pack("{s:s, s:s, s:I, s:s, s:b, s:o, s:o}", "unique_id", v->id, "prompt_id", v->prompt_id,
                              "version_number", (json_int_t)v->number, "content", v->content, "published",
                              v->published_at != 0, "published_at", api_time(v->published_at), "created_at",
                              api_time(v->created_at));
    return api_resource(v->id, "prompt_version", attrs);
}

/* Checks content as a template; answers 422 naming the field when malformed. */
static int check_template(api_req *rq, const char *content)
{
    template_error terr;
    json_t *names = NULL;
    if (template_variables(content, &names, &terr) != 0) {
        http_error(rq->http, 422, NULL, "prompt.content", "'prompt.content' is not a valid template: %s",
                   terr.message);
        return -1;
    }
    json_decref(names);
    return 0;
}

static int parse_sort(const char *s, enum store_prompt_sort *sort, int *desc)
{
    static const struct {
        const char *name;
        enum store_prompt_sort sort;
    } keys[] = {{"created_at", STORE_SORT_CREATED_AT}, {"updated_at", STORE_SORT_UPDATED_AT},
                {"name", STORE_SORT_NAME},             {"status", STORE_SORT_STATUS},
                {"likes_count", STORE_SORT_LIKES}};
    *desc = 0;
    if (*s == '-') {
        *desc = 1;
        s++;
    } else if (*s == '+') {
        s++;
    }
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (strcmp(s, keys[i].name) == 0) {
            *sort = keys[i].sort;
            return 0;
        }
    }
    return -1;
}

static int valid_status(const char *s)
{
    return strcmp(s, "draft") == 0 || strcmp(s, "published") == 0 || strcmp(s, "archived") == 0;
}

static void prompts_list(api_req *rq)
{
    long page, records;
    if (api_page_params(rq, &page, &records))
        return;
    store_prompt_query q = {.sort = STORE_SORT_CREATED_AT, .sort_desc = 1};
    q.status = http_query(rq->http, "status");
    if (q.status && !*q.status)
        q.status = NULL;
    if (q.status && !valid_status(q.status)) {
        http_error(rq->http, 400, NULL, "status", "'status' must be one of draft, published, archived");
        return;
    }
    q.search = http_query(rq->http, "search");
    if (q.search && !*q.search)
        q.search = NULL;
    const char *sort = http_query(rq->http, "sort");
    if (sort && *sort && parse_sort(sort, &q.sort, &q.sort_desc)) {
        http_error(rq->http, 400, NULL, "sort",
                   "'sort' must be one of created_at, updated_at, name, status, likes_count, optionally "
                   "prefixed with '-' for descending order");
        return;
    }
    q.offset = (page - 1) * records;
    q.limit = records;

    store_prompt_page list;
    int rc = store_prompt_list(rq->app->store, rq->who.org_id, rq->who.user_id, &q, &list);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Prompt");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, prompt_json(&list.items[i]));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, page, records));
    store_prompt_page_free(&list);
}

static void prompts_create(api_req *rq)
{
    json_t *root = NULL, *obj;
    const char *name, *description, *content;
    api_prompt_links links = {0};
    if (api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "prompt")) ||
        api_string_field(rq, obj, "name", "prompt.name", 1, 1, PROMPT_NAME_MAX, &name) ||
        api_string_field(rq, obj, "description", "prompt.description", 0, 0, PROMPT_DESCRIPTION_MAX,
                         &description) ||
        (!description && api_string_field(rq, obj, "abstract", "prompt.abstract", 0, 0, PROMPT_DESCRIPTION_MAX,
                                          &description)) ||
        api_string_field(rq, obj, "content", "prompt.content", 1, 1, PROMPT_CONTENT_MAX, &content) ||
        check_template(rq, content) || api_prompt_links_parse(rq, obj, "prompt.", &links))
        goto out;

    store_prompt p = {0};
    memcpy(p.org_id, rq->who.org_id, sizeof p.org_id);
    memcpy(p.user_id, rq->who.user_id, sizeof p.user_id);
    p.name = (char *)name;
    p.description = (char *)(description ? description : "");
    p.content = (char *)content;
    snprintf(p.workspace_id, sizeof p.workspace_id, "%s", links.workspace_id ? links.workspace_id : "");
    p.tags = links.tags;
    p.data_source_ids = links.data_source_ids;
    int rc = store_prompt_create(rq->app->store, &p);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Prompt");
        goto out;
    }
    store_prompt created;
    rc = store_prompt_get(rq->app->store, rq->who.org_id, p.id, rq->who.user_id, &created);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Prompt");
        goto out;
    }
    char location[64];
    snprintf(location, sizeof location, "/prompts/%s", created.id);
    http_add_header(rq->http, "Location", location);
    http_reply_json(rq->http, 201, json_pack("{s:o}", "data", prompt_json(&created)));
    store_prompt_clear(&created);
out:
    api_prompt_links_free(&links);
    json_decref(root);
}

static void prompts_get(api_req *rq)
{
    const char *id = api_param(rq, "id");
    if (api_reject_bad_id(rq, id, "Prompt"))
        return;
    store_prompt p;
    int rc = store_prompt_get(rq->app->store, rq->who.org_id, id, rq->who.user_id, &p);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Prompt");
        return;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", prompt_json(&p)));
    store_prompt_clear(&p);
}

static void prompts_update(api_req *rq)
{
    const char *id = api_param(rq, "id");
    json_t *root = NULL, *obj;
    store_prompt_patch patch = {0};
    api_prompt_links links = {0};
    if (api_reject_bad_id(rq, id, "Prompt") || api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "prompt")) ||
        api_string_field(rq, obj, "name", "prompt.name", 0, 1, PROMPT_NAME_MAX, &patch.name) ||
        api_string_field(rq, obj, "description", "prompt.description", 0, 0, PROMPT_DESCRIPTION_MAX,
                         &patch.description) ||
        (!patch.description && api_string_field(rq, obj, "abstract", "prompt.abstract", 0, 0,
                                                PROMPT_DESCRIPTION_MAX, &patch.description)) ||
        api_string_field(rq, obj, "content", "prompt.content", 0, 1, PROMPT_CONTENT_MAX, &patch.content) ||
        api_string_field(rq, obj, "status", "prompt.status", 0, 1, 16, &patch.status) ||
        (patch.content && check_template(rq, patch.content)) || api_prompt_links_parse(rq, obj, "prompt.", &links))
        goto out;
    patch.workspace_id = links.workspace_id;
    patch.tags = links.tags;
    patch.data_source_ids = links.data_source_ids;
    if (patch.status && !valid_status(patch.status)) {
        http_error(rq->http, 422, NULL, "prompt.status", "'prompt.status' must be one of draft, published, archived");
        goto out;
    }
    store_prompt p;
    int rc = store_prompt_update(rq->app->store, rq->who.org_id, id, rq->who.user_id, &patch, &p);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Prompt");
        goto out;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", prompt_json(&p)));
    store_prompt_clear(&p);
out:
    api_prompt_links_free(&links);
    json_decref(root);
}

static void prompts_delete(api_req *rq)
{
    const char *id = api_param(rq, "id");
    if (api_reject_bad_id(rq, id, "Prompt"))
        return;
    int rc = store_prompt_delete(rq->app->store, rq->who.org_id, id);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Prompt");
        return;
    }
    http_reply_empty(rq->http, 204);
}

static void prompts_render(api_req *rq)
{
    const char *id = api_param(rq, "id");
    json_t *root = NULL;
    const char *version_id = NULL;
    store_prompt p = {0};
    store_version v = {0};
    if (api_reject_bad_id(rq, id, "Prompt") || api_read_body(rq, &root))
        return;
    const char *vars_field = "variables";
    json_t *vars = json_object_get(root, "variables");
    if (!vars || json_is_null(vars)) {
        vars_field = "placeholders";
        vars = json_object_get(root, "placeholders");
    }
    if (vars && !json_is_null(vars) && !json_is_object(vars)) {
        http_error(rq->http, 422, NULL, vars_field, "'%s' must be an object", vars_field);
        goto out;
    }
    if (api_string_field(rq, root, "version_id", "version_id", 0, 1, 64, &version_id))
        goto out;
    int rc = store_prompt_get(rq->app->store, rq->who.org_id, id, rq->who.user_id, &p);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Prompt");
        goto out;
    }
    const char *content = p.content, *used_version = p.current_version_id;
    if (version_id) {
        rc = id_is_uuid(version_id) ? store_version_get(rq->app->store, rq->who.org_id, id, version_id, &v)
                                    : STORE_NOTFOUND;
        if (rc != STORE_OK) {
            api_store_error(rq, rc, "Version");
            goto out;
        }
        content = v.content;
        used_version = v.id;
    }
    char *rendered = NULL;
    json_t *used = NULL, *missing = NULL;
    template_error terr;
    if (template_render(content, vars, &rendered, &used, &missing, &terr) != 0) {
        http_error(rq->http, 422, NULL, "prompt.content", "The stored template is malformed: %s", terr.message);
        goto out;
    }
    json_t *all = NULL, *provided = json_array();
    if (template_variables(content, &all, NULL) != 0)
        all = json_array();
    const char *key;
    json_t *value;
    if (json_is_object(vars))
        json_object_foreach(vars, key, value) json_array_append_new(provided, json_string(key));
    json_t *meta = json_pack("{s:o, s:O, s:o, s:o}", "placeholders_provided", provided, "placeholders_missing",
                             missing, "all_placeholders", all, "rendered_at", api_time(time_now_ms()));
    json_t *attrs = json_pack("{s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:s}", "rendered_content", rendered,
                              "variables_used", used, "missing_variables", missing, "prompt_id", p.id, "version_id",
                              used_version, "prompt_unique_id", p.id, "version_unique_id", used_version, "name",
                              p.name);
    free(rendered);
    json_t *res = api_resource(p.id, "rendered_prompt", attrs);
    if (res && meta)
        json_object_set_new(res, "meta", meta);
    else
        json_decref(meta);
    http_reply_json(rq->http, 200, json_pack("{s:o}", "data", res));
out:
    store_prompt_clear(&p);
    store_version_clear(&v);
    json_decref(root);
}

static void versions_list(api_req *rq)
{
    const char *id = api_param(rq, "id");
    long page, records;
    if (api_reject_bad_id(rq, id, "Prompt") || api_page_params(rq, &page, &records))
        return;
    store_version_page list;
    int rc = store_version_list(rq->app->store, rq->who.org_id, id, (page - 1) * records, records, &list);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Prompt");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < list.count; i++)
        json_array_append_new(data, version_json(&list.items[i]));
    http_reply_json(rq->http, 200, api_list_doc(data, list.total, page, records));
    store_version_page_free(&list);
}

static void versions_publish(api_req *rq)
{
    const char *id = api_param(rq, "id"), *vid = api_param(rq, "version_id");
    if (api_reject_bad_id(rq, id, "Prompt") || api_reject_bad_id(rq, vid, "Version"))
        return;
    int rc = store_version_publish(rq->app->store, rq->who.org_id, id, vid);
    store_prompt p;
    if (rc == STORE_OK)
        rc = store_prompt_get(rq->app->store, rq->who.org_id, id, rq->who.user_id, &p);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Version");
        return;
    }
    http_reply_json(rq->http, 200, json_pack("{s:o, s:s}", "data", prompt_json(&p), "message",
                                             "Version published successfully"));
    store_prompt_clear(&p);
}

/* like/dislike, follow/unfollow, save/unsave: idempotent per user. */
static void prompt_react(api_req *rq, enum store_reaction kind, int on, const char *message)
{
    const char *id = api_param(rq, "id");
    if (api_reject_bad_id(rq, id, "Prompt"))
        return;
    int rc = store_reaction_set(rq->app->store, rq->who.org_id, rq->who.user_id, STORE_TARGET_PROMPT, id, kind, on);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Prompt");
        return;
    }
    http_reply_json(rq->http, 200, api_message(message));
}

static void prompt_like(api_req *rq) { prompt_react(rq, STORE_REACT_LIKE, 1, "Prompt liked successfully"); }
static void prompt_dislike(api_req *rq) { prompt_react(rq, STORE_REACT_LIKE, 0, "Like removed successfully"); }
static void prompt_follow(api_req *rq) { prompt_react(rq, STORE_REACT_FOLLOW, 1, "Prompt followed successfully"); }
static void prompt_unfollow(api_req *rq)
{
    prompt_react(rq, STORE_REACT_FOLLOW, 0, "Prompt unfollowed successfully");
}
static void prompt_save(api_req *rq) { prompt_react(rq, STORE_REACT_SAVE, 1, "Prompt saved successfully"); }
static void prompt_unsave(api_req *rq) { prompt_react(rq, STORE_REACT_SAVE, 0, "Prompt unsaved successfully"); }

int api_routes_prompts(app *a)
{
    return api_route(a, "GET", "/prompts", prompts_list, 0) || api_route(a, "POST", "/prompts", prompts_create, 0) ||
           api_route(a, "GET", "/prompts/:id", prompts_get, 0) ||
           api_route(a, "PUT", "/prompts/:id", prompts_update, 0) ||
           api_route(a, "PATCH", "/prompts/:id", prompts_update, 0) ||
           api_route(a, "DELETE", "/prompts/:id", prompts_delete, 0) ||
           api_route(a, "POST", "/prompts/:id/render", prompts_render, 0) ||
           api_route(a, "GET", "/prompts/:id/versions", versions_list, 0) ||
           api_route(a, "POST", "/prompts/:id/versions/:version_id/publish", versions_publish, 0) ||
           api_route(a, "PUT", "/prompts/:id/like", prompt_like, 0) ||
           api_route(a, "DELETE", "/prompts/:id/dislike", prompt_dislike, 0) ||
           api_route(a, "PUT", "/prompts/:id/follow", prompt_follow, 0) ||
           api_route(a, "DELETE", "/prompts/:id/unfollow", prompt_unfollow, 0) ||
           api_route(a, "PUT", "/prompts/:id/save", prompt_save, 0) ||
           api_route(a, "DELETE", "/prompts/:id/unsave", prompt_unsave, 0);
}
