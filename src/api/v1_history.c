/*
 * v1_history.c — the prompt history of spec 002 and the v1 prompt list.
 *
 *   GET    /api/v1/prompts/history   one row per prompt with its latest execution
 *   DELETE /api/v1/prompts/history   clear the caller's history (store_history_clear says what goes)
 *   GET    /api/v1/prompts           the organization's prompts, same filters and paging
 *
 * Query parameters (both GETs): workspace_id, status (completed, failed,
 * processing, draft = never executed; also queued, cancelled), data_source_id,
 * time_period (last_7_days, last_30_days, last_90_days, all), search (words
 * in the name or text, through the FTS5 index), user_id, page (>= 1),
 * page_size (1..100, default 20), sort_by (timestamp, status, execution_time;
 * the list also takes name, created_at), sort_order (asc, desc; default
 * desc). Any bad value is a 400 naming the parameter; an id of something the
 * caller's organization does not have is a 404.
 *
 * user_id: the history defaults to the caller; an admin may name any user of
 * the organization (or "all"), a member naming anyone else gets 404. The
 * prompt list defaults to every user of the organization (prompts are
 * visible organization-wide, as on /prompts) and takes any user_id of it.
 *
 * Ids are integers as in the document: a row's id is its prompt's number,
 * user_id, workspace_id and data_source_ids the numbers of those (null, or
 * absent from the array, when the owner or workspace is gone); uuid is the
 * prompt's UUID. Filters take a number or a UUID (v1_common.c). A row's
 * timestamp is its latest execution's start, or the prompt's creation for a
 * draft; time_period filters on it.
 *
 * The history shows a user's rows from their last clear on (DELETE); the
 * prompt list is not history and shows every prompt.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_v1.h"
#include "core/timeutil.h"

#define SEARCH_MAX 500

static const char *const STATUS_CHOICES[] = {"completed", "failed", "processing", "draft", "queued", "cancelled", NULL};
static const char *const PERIOD_CHOICES[] = {"last_7_days", "last_30_days", "last_90_days", "all", NULL};
static const int PERIOD_DAYS[] = {7, 30, 90, 0};
static const char *const ORDER_CHOICES[] = {"asc", "desc", NULL};
/* history sort keys first; the prompt list takes the whole list */
static const char *const SORT_CHOICES[] = {"timestamp", "execution_time", "status", NULL};
static const char *const LIST_SORT_CHOICES[] = {"timestamp", "execution_time", "status", "name", "created_at", NULL};
static const enum store_history_sort SORT_KEYS[] = {STORE_HSORT_TIMESTAMP, STORE_HSORT_DURATION, STORE_HSORT_STATUS,
                                                    STORE_HSORT_NAME, STORE_HSORT_CREATED_AT};

/* A JSON array from stored JSON text (an empty array when absent or bad). */
static json_t *json_array_text(const char *text)
{
    json_t *a = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_array(a)) {
        json_decref(a);
        a = json_array();
    }
    return a;
}

static json_t *id_or_null(const char *id) { return id && *id ? json_string(id) : json_null(); }

/* The spec 002 item: id, name, prompt_text, status, execution_time_ms,
 * timestamp, data_source_ids, user_id, workspace_id; plus uuid, tags and
 * latest_execution_id (an execution: a UUID, as GET /api/v1/prompt/{id}
 * takes it). The prompt list adds the prompt's own fields. */
static json_t *item_json(const store_history_item *h, int full)
{
    int draft = h->last_executed_at == 0;
    json_t *o = json_pack("{s:o, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", api_v1_num(h->num),
                          "uuid", h->id, "name", h->name, "prompt_text", h->prompt_text, "status", h->status,
                          "execution_time_ms", draft ? json_null() : json_integer(h->execution_time_ms), "timestamp",
                          api_time(h->timestamp), "data_source_ids", json_array_text(h->data_source_nums), "user_id",
                          api_v1_num(h->user_num), "workspace_id", api_v1_num(h->workspace_num), "tags",
                          json_array_text(h->tags), "latest_execution_id", id_or_null(h->last_execution_id));
    if (o && full) {
        json_object_set_new(o, "description", json_string(h->description));
        json_object_set_new(o, "prompt_status", json_string(h->prompt_status));
        json_object_set_new(o, "last_executed_at", api_time(h->last_executed_at));
        json_object_set_new(o, "created_at", api_time(h->created_at));
        json_object_set_new(o, "updated_at", api_time(h->updated_at));
    }
    return o;
}

/* Resolve the user_id parameter into *user (NULL = every user; else the
 * caller's id or buf). def_all: absent means every user (list) instead of
 * the caller (history). members_any: a member may name any user of the
 * organization. */
static int resolve_user(api_req *rq, int def_all, int members_any, int allow_all, store_id buf, const char **user)
{
    const char *s = http_query(rq->http, "user_id");
    *user = rq->who.user_id;
    if (!s || !*s) {
        if (def_all)
            *user = NULL;
        return 0;
    }
    if (strcmp(s, "me") == 0)
        return 0;
    if (strcmp(s, "all") == 0) {
        if (!allow_all) {
            http_error(rq->http, 400, NULL, "user_id", "'user_id' must be a user id or \"me\"");
            return -1;
        }
        if (!rq->who.is_admin && !members_any) {
            http_error(rq->http, 404, NULL, "user_id", "User not found");
            return -1;
        }
        *user = NULL;
        return 0;
    }
    int64_t num;
    int rc = api_v1_ref_lookup(rq, STORE_NUM_USER, s, buf, &num);
    if (rc == API_V1_REF_BAD) {
        http_error(rq->http, 400, NULL, "user_id",
                   "'user_id' must be a user id (a positive integer of at most %lld, or a UUID)%s",
                   (long long)STORE_NUM_MAX, allow_all ? ", \"me\" or \"all\"" : " or \"me\"");
        return -1;
    }
    if (rc != STORE_OK && rc != STORE_NOTFOUND) {
        api_v1_store_error(rq, rc, "User");
        return -1;
    }
    if (rc == STORE_OK && strcmp(buf, rq->who.user_id) == 0)
        return 0;
    if (!rq->who.is_admin && !members_any) { /* never tell a member whether that user exists */
        http_error(rq->http, 404, NULL, "user_id", "User not found");
        return -1;
    }
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "User");
        return -1;
    }
    store_user u;
    if (!num && (rc = store_user_get(rq->app->store, rq->who.org_id, buf, &u)) != STORE_OK) {
        api_v1_store_error(rq, rc, "User");
        return -1;
    }
    if (!num)
        store_user_clear(&u);
    *user = buf;
    return 0;
}

/* The ids a query names, pointed to by its store_history_query. */
typedef struct query_ids {
    store_id user, workspace, data_source;
} query_ids;

/* Parse every filter, paging and sort parameter into q. Answers and returns -1 on a bad one. */
static int parse_query(api_req *rq, int list, store_history_query *q, query_ids *ids, long *page, long *page_size)
{
    int status, period, order, sort, has_ws, has_ds;
    memset(q, 0, sizeof *q);
    if (api_v1_page_params(rq, page, page_size) || api_v1_query_enum(rq, "status", STATUS_CHOICES, -1, &status) ||
        api_v1_query_enum(rq, "time_period", PERIOD_CHOICES, 3, &period) ||
        api_v1_query_enum(rq, "sort_order", ORDER_CHOICES, 1, &order) ||
        api_v1_query_enum(rq, "sort_by", list ? LIST_SORT_CHOICES : SORT_CHOICES, 0, &sort) ||
        api_v1_query_ref(rq, "workspace_id", STORE_NUM_WORKSPACE, "Workspace", ids->workspace, &has_ws) ||
        api_v1_query_ref(rq, "data_source_id", STORE_NUM_DATA_SOURCE, "Data source", ids->data_source, &has_ds) ||
        api_v1_query_text(rq, "search", SEARCH_MAX, &q->search) ||
        resolve_user(rq, list, list, 1, ids->user, &q->user_id))
        return -1;
    q->after_clear = !list;
    q->status = status >= 0 ? STATUS_CHOICES[status] : NULL;
    q->since = PERIOD_DAYS[period] ? time_now_ms() - (int64_t)PERIOD_DAYS[period] * 86400000 : 0;
    q->sort_desc = order == 1;
    q->sort = SORT_KEYS[sort];
    q->offset = (*page - 1) * *page_size;
    q->limit = *page_size;
    int rc;
    /* a number was looked up in the organization already; a UUID is checked here */
    if (has_ws) {
        store_workspace w;
        if ((rc = store_workspace_get(rq->app->store, rq->who.org_id, ids->workspace, &w)) != STORE_OK) {
            api_v1_store_error(rq, rc, "Workspace");
            return -1;
        }
        store_workspace_clear(&w);
        q->workspace_id = ids->workspace;
    }
    if (has_ds) {
        store_data_source d;
        if ((rc = store_data_source_get(rq->app->store, rq->who.org_id, ids->data_source, &d)) != STORE_OK) {
            api_v1_store_error(rq, rc, "Data source");
            return -1;
        }
        store_data_source_clear(&d);
        q->data_source_id = ids->data_source;
    }
    return 0;
}

static void answer_page(api_req *rq, int list)
{
    store_history_query q;
    query_ids ids;
    long page, page_size;
    if (parse_query(rq, list, &q, &ids, &page, &page_size))
        return;
    store_history_page res;
    int rc = store_history_list(rq->app->store, rq->who.org_id, &q, &res);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Prompt");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < res.count; i++)
        json_array_append_new(items, item_json(&res.items[i], list));
    api_v1_reply(rq, 200, api_v1_list(items, page, page_size, res.total),
                 list ? "Prompts retrieved successfully" : "Prompt history retrieved successfully");
    store_history_page_free(&res);
}

static void history_get(api_req *rq) { answer_page(rq, 0); }

static void prompts_list(api_req *rq) { answer_page(rq, 1); }

static void history_delete(api_req *rq)
{
    const char *user;
    store_id buf;
    if (resolve_user(rq, 0, 0, 0, buf, &user))
        return;
    long deleted = 0, prompts_deleted = 0;
    int rc = store_history_clear(rq->app->store, rq->who.org_id, user, &deleted, &prompts_deleted);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "History");
        return;
    }
    api_v1_reply(
        rq, 200,
        json_pack("{s:I, s:I}", "deleted", (json_int_t)deleted, "prompts_deleted", (json_int_t)prompts_deleted),
        "Prompt history cleared successfully");
}

int api_routes_v1_history(app *a)
{
    return api_route(a, "GET", "/api/v1/prompts/history", history_get, 0) ||
           api_route(a, "DELETE", "/api/v1/prompts/history", history_delete, 0) ||
           api_route(a, "GET", "/api/v1/prompts", prompts_list, 0);
}
