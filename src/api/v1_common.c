/*
 * v1_common.c — the /api/v1 envelope, pagination object and query-parameter
 * parsing shared by the v1 endpoint files (see api_v1.h for the contract).
 * Bad query values are a 400 BAD_REQUEST naming the parameter, never a 5xx.
 *
 * Integer ids (spec 002): users, workspaces, data sources and prompts are
 * named by their organization's number for them or by their UUID; a number
 * is looked up in the caller's organization only, so another organization's
 * number is "not found" like one never given (store.h, "integer ids").
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "api/api_v1.h"
#include "core/ids.h"

json_t *api_v1_envelope(json_t *data, const char *message)
{
    return json_pack("{s:b, s:o, s:s}", "success", 1, "data", data ? data : json_null(), "message",
                     message ? message : "OK");
}

void api_v1_reply(api_req *rq, int status, json_t *data, const char *message)
{
    json_t *body = api_v1_envelope(data, message);
    if (!body) {
        http_error(rq->http, 500, NULL, NULL, "Out of memory");
        return;
    }
    http_reply_json(rq->http, status, body);
}

json_t *api_v1_pagination(long page, long page_size, long total_items)
{
    long pages = page_size > 0 ? (total_items + page_size - 1) / page_size : 0;
    return json_pack("{s:I, s:I, s:I, s:I}", "page", (json_int_t)page, "page_size", (json_int_t)page_size,
                     "total_items", (json_int_t)total_items, "total_pages", (json_int_t)pages);
}

json_t *api_v1_list(json_t *items, long page, long page_size, long total_items)
{
    return json_pack("{s:o, s:o}", "items", items ? items : json_array(), "pagination",
                     api_v1_pagination(page, page_size, total_items));
}

int api_v1_page_params(api_req *rq, long *page, long *page_size)
{
    if (api_query_long(rq, "page", 1, 1, 1000000000L, page) ||
        api_query_long(rq, "page_size", API_V1_PAGE_SIZE_DEFAULT, 1, API_V1_PAGE_SIZE_MAX, page_size))
        return -1;
    return 0;
}

int api_v1_query_enum(api_req *rq, const char *name, const char *const *choices, int def, int *out)
{
    const char *s = http_query(rq->http, name);
    if (!s || !*s) {
        *out = def;
        return 0;
    }
    for (int i = 0; choices[i]; i++)
        if (strcmp(s, choices[i]) == 0) {
            *out = i;
            return 0;
        }
    char allowed[512];
    size_t n = 0;
    allowed[0] = '\0';
    for (int i = 0; choices[i] && n < sizeof allowed; i++)
        n += (size_t)snprintf(allowed + n, sizeof allowed - n, "%s%s", i ? ", " : "", choices[i]);
    http_error(rq->http, 400, NULL, name, "'%s' must be one of: %s", name, allowed);
    return -1;
}

int api_v1_query_text(api_req *rq, const char *name, size_t max_bytes, const char **out)
{
    const char *s = http_query(rq->http, name);
    *out = NULL;
    if (!s)
        return 0;
    size_t n = strlen(s);
    if (max_bytes && n > max_bytes) {
        http_error(rq->http, 400, NULL, name, "'%s' is too long (%zu bytes; at most %zu)", name, n, max_bytes);
        return -1;
    }
    for (const char *p = s; *p; p++)
        if (!isspace((unsigned char)*p)) {
            *out = s;
            break;
        }
    return 0;
}

int api_v1_path_id(api_req *rq, const char *name, const char *what, const char **out)
{
    const char *s = api_param(rq, name);
    *out = NULL;
    if (!s || !id_is_uuid(s)) {
        http_error(rq->http, 404, NULL, NULL, "%s not found", what);
        return -1;
    }
    *out = s;
    return 0;
}

int api_v1_require_admin(api_req *rq)
{
    if (rq->who.is_admin)
        return 0;
    http_error(rq->http, 403, NULL, NULL, "Only an administrator of the organization may do this");
    return -1;
}

void api_v1_store_error(api_req *rq, int rc, const char *what)
{
    if (rc == STORE_NOTFOUND)
        http_error(rq->http, 404, NULL, NULL, "%s not found", what);
    else if (rc == STORE_CONFLICT)
        http_error(rq->http, 409, NULL, NULL, "The %s conflicts with an existing one", what);
    else
        api_store_failure(rq);
}

/* ---------------------------------------------------------------- integer ids */

static const char *const REF_WHAT[] = {[STORE_NUM_USER] = "user",
                                       [STORE_NUM_WORKSPACE] = "workspace",
                                       [STORE_NUM_DATA_SOURCE] = "data source",
                                       [STORE_NUM_PROMPT] = "prompt"};

/* A positive decimal integer of at most STORE_NUM_MAX: digits only, no leading zero. */
static int parse_num(const char *s, int64_t *out)
{
    int64_t v = 0;
    if (!s || !*s || *s == '0')
        return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (v > (STORE_NUM_MAX - (*p - '0')) / 10) /* v * 10 + digit would pass the maximum */
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < 1)
        return -1;
    *out = v;
    return 0;
}

int api_v1_ref_lookup(api_req *rq, enum store_num_kind kind, const char *text, store_id out, int64_t *num)
{
    int64_t n = 0;
    out[0] = '\0';
    if (num)
        *num = 0;
    if (text && id_is_uuid(text)) {
        snprintf(out, sizeof(store_id), "%s", text);
        return STORE_OK;
    }
    if (parse_num(text, &n))
        return API_V1_REF_BAD;
    if (num)
        *num = n;
    return store_num_resolve(rq->app->store, rq->who.org_id, kind, n, out);
}

static void ref_bad(api_req *rq, int status, enum store_num_kind kind, const char *name)
{
    http_error(rq->http, status, NULL, name, "'%s' must be a %s id: a positive integer (at most %lld) or a UUID", name,
               REF_WHAT[kind], (long long)STORE_NUM_MAX);
}

int api_v1_query_ref(api_req *rq, const char *name, enum store_num_kind kind, const char *what, store_id out,
                     int *given)
{
    const char *s = http_query(rq->http, name);
    out[0] = '\0';
    *given = 0;
    if (!s || !*s)
        return 0;
    int rc = api_v1_ref_lookup(rq, kind, s, out, NULL);
    if (rc == API_V1_REF_BAD) {
        ref_bad(rq, 400, kind, name);
        return -1;
    }
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, what);
        return -1;
    }
    *given = 1;
    return 0;
}

int api_v1_path_ref(api_req *rq, const char *name, enum store_num_kind kind, const char *what, store_id out)
{
    int rc = api_v1_ref_lookup(rq, kind, api_param(rq, name), out, NULL);
    if (rc == API_V1_REF_BAD) {
        ref_bad(rq, 400, kind, name);
        return -1;
    }
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, what);
        return -1;
    }
    return 0;
}

const char *api_v1_ref_text(json_t *v, char buf[32])
{
    if (json_is_integer(v)) {
        snprintf(buf, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    return json_string_value(v);
}

int api_v1_body_ref(api_req *rq, json_t *v, enum store_num_kind kind, const char *field, store_id out)
{
    char digits[32];
    const char *text = api_v1_ref_text(v, digits);
    out[0] = '\0';
    int rc = text ? api_v1_ref_lookup(rq, kind, text, out, NULL) : API_V1_REF_BAD;
    if (rc == API_V1_REF_BAD) {
        ref_bad(rq, 422, kind, field);
        return -1;
    }
    if (rc == STORE_NOTFOUND) {
        http_error(rq->http, 422, NULL, field, "'%s' does not name a %s of this organization", field, REF_WHAT[kind]);
        return -1;
    }
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, REF_WHAT[kind]);
        return -1;
    }
    return 0;
}

json_t *api_v1_num(int64_t num) { return num > 0 ? json_integer((json_int_t)num) : json_null(); }
