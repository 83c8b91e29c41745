/*
 * v1_common.c — the /api/v1 envelope, pagination object and query-parameter
 * parsing shared by the v1 endpoint files (see api_v1.h for the contract).
 * Bad query values are a 400 BAD_REQUEST naming the parameter, never a 5xx.
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

int api_v1_query_id(api_req *rq, const char *name, const char **out)
{
    const char *s = http_query(rq->http, name);
    *out = NULL;
    if (!s || !*s)
        return 0;
    if (!id_is_uuid(s)) {
        http_error(rq->http, 400, NULL, name, "'%s' must be an id (a UUID such as those this API returns)", name);
        return -1;
    }
    *out = s;
    return 0;
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
