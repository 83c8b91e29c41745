/*
 * common.c — helpers shared by the endpoint files: body parsing with the
 * right 400/415/422, field extraction that names the field, paging
 * parameters, store errors, and JSON:API document pieces.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/ids.h"
#include "core/timeutil.h"
#include "core/utf8.h"

#define API_JSON_MAX_DEPTH 32 /* deeper bodies are refused before parsing */

const char *api_param(api_req *rq, const char *name) { return router_param(&rq->match, name); }

int api_param_set(api_req *rq, const char *name, const char *value)
{
    router_match *m = &rq->match;
    size_t n = strlen(value);
    if (n >= sizeof rq->resolved[0])
        return -1;
    for (int i = 0; i < m->nparams; i++) {
        if (strcmp(m->names[i], name) == 0) { /* replace: the resolved value wins */
            if (rq->nresolved >= (int)(sizeof rq->resolved / sizeof rq->resolved[0]))
                return -1;
            char *slot = rq->resolved[rq->nresolved++];
            memcpy(slot, value, n + 1);
            m->values[i] = slot;
            return 0;
        }
    }
    if (m->nparams >= ROUTER_MAX_PARAMS || rq->nresolved >= (int)(sizeof rq->resolved / sizeof rq->resolved[0]))
        return -1;
    char *slot = rq->resolved[rq->nresolved++];
    memcpy(slot, value, n + 1);
    m->names[m->nparams] = name;
    m->values[m->nparams++] = slot;
    return 0;
}

int api_user_param(api_req *rq, const char *name)
{
    const char *uid = api_param(rq, name);
    store_user u;
    int rc = uid && id_is_uuid(uid) ? store_user_get(rq->app->store, rq->who.org_id, uid, &u) : STORE_NOTFOUND;
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "User");
        return -1;
    }
    store_user_clear(&u);
    return 0;
}

static int is_json_type(const char *ct)
{
    /* application/json, application/vnd.api+json, ...; parameters such as charset allowed */
    size_t n = strcspn(ct, ";");
    while (n && isspace((unsigned char)ct[n - 1]))
        n--;
    while (isspace((unsigned char)*ct) && n) {
        ct++;
        n--;
    }
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return 1;
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

int api_read_body(api_req *rq, json_t **root)
{
    size_t len;
    const char *body = http_body(rq->http, &len);
    size_t ws = 0;
    while (ws < len && isspace((unsigned char)body[ws]))
        ws++;
    if (ws == len) { /* no body: same as {} so field rules speak */
        *root = json_object();
        return *root ? 0 : -1;
    }
    const char *ct = http_header(rq->http, "Content-Type");
    /* `curl -d '{...}'` labels JSON as a form: take it when it is a JSON object */
    int curl_form = ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0 && body[ws] == '{';
    if (ct && !is_json_type(ct) && !curl_form) {
        http_error(rq->http, 415, NULL, NULL, "Content-Type must be application/json (got %s)", ct);
        return -1;
    }
    if (!utf8_valid(body, len)) {
        http_error(rq->http, 400, "Malformed JSON", NULL, "The request body is not valid UTF-8");
        return -1;
    }
    if (json_nesting_depth(body, len, API_JSON_MAX_DEPTH) > API_JSON_MAX_DEPTH) {
        http_error(rq->http, 400, "Malformed JSON", NULL, "The request body nests deeper than %d levels",
                   API_JSON_MAX_DEPTH);
        return -1;
    }
    json_error_t err;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!j) {
        http_error(rq->http, 400, "Malformed JSON", NULL, "Malformed JSON at line %d, column %d: %s", err.line,
                   err.column, err.text);
        return -1;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        http_error(rq->http, 422, NULL, NULL, "The request body must be a JSON object");
        return -1;
    }
    *root = j;
    return 0;
}

json_t *api_wrapped_object(api_req *rq, json_t *root, const char *name)
{
    json_t *o = json_object_get(root, name);
    if (!o || json_is_null(o)) {
        http_error(rq->http, 422, NULL, name, "'%s' is required: send {\"%s\": {...}}", name, name);
        return NULL;
    }
    if (!json_is_object(o)) {
        http_error(rq->http, 422, NULL, name, "'%s' must be an object", name);
        return NULL;
    }
    return o;
}

int api_string_field(api_req *rq, json_t *obj, const char *key, const char *field_path, int required, int nonempty,
                     size_t max_bytes, const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required) {
            http_error(rq->http, 422, NULL, field_path, "'%s' is required", field_path);
            return -1;
        }
        return 0;
    }
    if (!json_is_string(v)) {
        http_error(rq->http, 422, NULL, field_path, "'%s' must be a string", field_path);
        return -1;
    }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (nonempty) {
        size_t i = 0;
        while (i < n && isspace((unsigned char)s[i]))
            i++;
        if (i == n) {
            http_error(rq->http, 422, NULL, field_path, "'%s' must not be empty", field_path);
            return -1;
        }
    }
    if (max_bytes && n > max_bytes) {
        http_error(rq->http, 422, NULL, field_path, "'%s' is too long (%zu bytes; at most %zu)", field_path, n,
                   max_bytes);
        return -1;
    }
    *out = s;
    return 0;
}

int api_query_long(api_req *rq, const char *name, long def, long min, long max, long *out)
{
    const char *s = http_query(rq->http, name);
    if (!s || !*s) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) {
        http_error(rq->http, 400, NULL, name, "'%s' must be an integer from %ld to %ld", name, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int api_page_params(api_req *rq, long *page, long *records)
{
    if (api_query_long(rq, "page", 1, 1, 1000000000L, page) ||
        api_query_long(rq, "records", 15, 1, 100, records))
        return -1;
    return 0;
}

void api_store_error(api_req *rq, int rc, const char *what)
{
    if (rc == STORE_NOTFOUND) {
        char title[96];
        snprintf(title, sizeof title, "%s Not Found", what);
        char lower[64];
        snprintf(lower, sizeof lower, "%s", what);
        for (char *p = lower; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        http_error(rq->http, 404, title, NULL, "The requested %s could not be found.", lower);
        return;
    }
    if (rc == STORE_CONFLICT) {
        http_error(rq->http, 409, NULL, NULL, "The %s conflicts with an existing one.", what);
        return;
    }
    api_store_failure(rq);
}

void api_store_failure(api_req *rq)
{
    enum store_failure why = store_last_failure();
    switch (why) {
    case STORE_FAIL_BUSY:
        http_add_header(rq->http, "Retry-After", "1");
        http_error(rq->http, 503, NULL, NULL, "Nothing was written: %s; try again", store_failure_text(why));
        break;
    case STORE_FAIL_FULL:
        http_error(rq->http, 507, NULL, NULL, "Nothing was written: %s", store_failure_text(why));
        break;
    case STORE_FAIL_UNAVAILABLE:
        http_add_header(rq->http, "Retry-After", "5");
        http_error(rq->http, 503, NULL, NULL, "Nothing was written: %s", store_failure_text(why));
        break;
    default: http_error(rq->http, 500, NULL, NULL, "The server could not complete the request"); break;
    }
}

int api_reject_bad_id(api_req *rq, const char *id, const char *what)
{
    if (id_is_uuid(id))
        return 0;
    api_store_error(rq, STORE_NOTFOUND, what);
    return 1;
}

json_t *api_time(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    char buf[RFC3339_LEN + 1];
    time_format_rfc3339(ms, buf);
    return json_string(buf);
}

json_t *api_resource(const char *id, const char *type, json_t *attributes)
{
    return json_pack("{s:s, s:s, s:o}", "id", id, "type", type, "attributes", attributes);
}

json_t *api_list_doc(json_t *data, long total, long page, long records)
{
    long pages = records > 0 ? (total + records - 1) / records : 0;
    /* the documents' camelCase pair, and the snake_case keys the Jarvis SDK's
     * codec reads (extractPageMeta): the same figures under both names */
    return json_pack("{s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}}", "data", data, "meta", "totalPages",
                     (json_int_t)pages, "totalRecords", (json_int_t)total, "current_page", (json_int_t)page,
                     "total_pages", (json_int_t)pages, "total_count", (json_int_t)total, "per_page",
                     (json_int_t)records);
}

json_t *api_message(const char *message) { return json_pack("{s:s}", "message", message); }
