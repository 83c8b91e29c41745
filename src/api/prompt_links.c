/*
 * prompt_links.c — what ties a prompt to its organization's resources
 * (spec 002): its workspace, its data sources and its tags. Parsed from
 * request bodies with 422s naming the field, checked against the store (an id
 * the caller's organization does not have is a 422 too: the body is
 * well-formed but names something that is not there), and shown in
 * responses. See api_v1.h. Workspaces and data sources are named on input
 * by their number in the organization or their UUID (v1_common.c); they are
 * stored and shown (on the Jarvis surface) as UUIDs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_v1.h"

#define TAGS_MAX 50
#define TAG_MAX_BYTES 64
#define PROMPT_DATA_SOURCES_MAX 100

static void field_name(char *buf, size_t len, const char *prefix, const char *name)
{
    snprintf(buf, len, "%s%s", prefix ? prefix : "", name);
}

/* 1 if the array a already holds the string s. */
static int array_has(json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (strcmp(json_string_value(v), s) == 0)
            return 1;
    }
    return 0;
}

/* Read a JSON array into *out as JSON text of strings, duplicates dropped:
 * tags (strings of 1..TAG_MAX_BYTES), or ids (data sources, each a number or
 * a UUID, given as its UUID; a number the organization has not given is a
 * 422 too). */
static int string_array(api_req *rq, json_t *obj, const char *key, const char *field, size_t max_items, int ids,
                        char **out)
{
    json_t *v = json_object_get(obj, key), *item, *uniq = NULL;
    size_t i;
    char digits[32];
    store_id uuid;
    *out = NULL;
    if (!v)
        return 0;
    if (json_is_null(v)) { /* null clears, like [] */
        v = NULL;
    } else if (!json_is_array(v)) {
        http_error(rq->http, 422, NULL, field, "'%s' must be an array of %s", field, ids ? "ids" : "strings");
        return -1;
    } else if (json_array_size(v) > max_items) {
        http_error(rq->http, 422, NULL, field, "'%s' holds at most %zu entries", field, max_items);
        return -1;
    }
    if (!(uniq = json_array()))
        goto oom;
    if (v) {
        json_array_foreach(v, i, item)
        {
            const char *s = json_string_value(item);
            size_t n = s ? json_string_length(item) : 0;
            if (ids) {
                s = api_v1_ref_text(item, digits);
                int rc = s ? api_v1_ref_lookup(rq, STORE_NUM_DATA_SOURCE, s, uuid, NULL) : API_V1_REF_BAD;
                if (rc == STORE_NOTFOUND) {
                    http_error(rq->http, 422, NULL, field,
                               "'%s' entry %zu names a data source this organization does not have", field, i);
                    goto fail;
                }
                if (rc == API_V1_REF_BAD) {
                    http_error(rq->http, 422, NULL, field,
                               "'%s' entry %zu must be a data source id: a positive integer (at most %lld) or a UUID",
                               field, i, (long long)STORE_NUM_MAX);
                    goto fail;
                }
                if (rc != STORE_OK) {
                    api_v1_store_error(rq, rc, "Data source");
                    goto fail;
                }
                s = uuid;
            } else if (!s || n == 0 || n > TAG_MAX_BYTES || strlen(s) != n) {
                http_error(rq->http, 422, NULL, field, "'%s' entry %zu must be a string of 1 to %d bytes", field, i,
                           TAG_MAX_BYTES);
                goto fail;
            }
            if (!array_has(uniq, s) && json_array_append_new(uniq, json_string(s)))
                goto oom;
        }
    }
    *out = json_dumps(uniq, JSON_COMPACT);
    json_decref(uniq);
    if (!*out)
        goto oom;
    return 0;
oom:
    http_error(rq->http, 500, NULL, NULL, "Out of memory");
fail:
    json_decref(uniq);
    return -1;
}

int api_prompt_links_parse(api_req *rq, json_t *obj, const char *prefix, api_prompt_links *out)
{
    char f_ws[64], f_tags[64], f_ds[64];
    memset(out, 0, sizeof *out);
    field_name(f_ws, sizeof f_ws, prefix, "workspace_id");
    field_name(f_tags, sizeof f_tags, prefix, "tags");
    field_name(f_ds, sizeof f_ds, prefix, "data_source_ids");

    json_t *ws = json_object_get(obj, "workspace_id");
    if (ws && json_is_null(ws)) {
        out->workspace_id = "";
    } else if (ws) {
        if (api_v1_body_ref(rq, ws, STORE_NUM_WORKSPACE, f_ws, out->workspace_buf))
            return -1;
        out->workspace_id = out->workspace_buf;
    }
    if (string_array(rq, obj, "tags", f_tags, TAGS_MAX, 0, &out->tags) ||
        string_array(rq, obj, "data_source_ids", f_ds, PROMPT_DATA_SOURCES_MAX, 1, &out->data_source_ids))
        goto fail;
    if ((out->workspace_id && *out->workspace_id) || out->data_source_ids) {
        const char *bad = NULL;
        int rc = store_prompt_refs_check(rq->app->store, rq->who.org_id, out->workspace_id, out->data_source_ids, &bad);
        if (rc == STORE_NOTFOUND) {
            int is_ws = bad && strcmp(bad, "workspace_id") == 0;
            http_error(rq->http, 422, NULL, is_ws ? f_ws : f_ds,
                       is_ws ? "'%s' does not name a workspace of this organization"
                             : "'%s' names a data source this organization does not have",
                       is_ws ? f_ws : f_ds);
            goto fail;
        }
        if (rc != STORE_OK) {
            api_v1_store_error(rq, rc, "Prompt");
            goto fail;
        }
    }
    return 0;
fail:
    api_prompt_links_free(out);
    return -1;
}

void api_prompt_links_free(api_prompt_links *l)
{
    free(l->tags);
    free(l->data_source_ids);
    memset(l, 0, sizeof *l);
}

static json_t *array_from_text(const char *text)
{
    json_t *a = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_array(a)) {
        json_decref(a);
        a = json_array();
    }
    return a;
}

void api_prompt_links_json(json_t *attrs, const store_prompt *p)
{
    if (!attrs)
        return;
    json_object_set_new(attrs, "workspace_id", p->workspace_id[0] ? json_string(p->workspace_id) : json_null());
    json_object_set_new(attrs, "tags", array_from_text(p->tags));
    json_object_set_new(attrs, "data_source_ids", array_from_text(p->data_source_ids));
}
