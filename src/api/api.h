/*
 * api.h — the API layer: routes, authentication, and helpers every endpoint
 * file uses to speak HTTP <-> domain. One file per resource registers its
 * routes (api_routes_<resource>) and implements them.
 *
 * Handlers run on HTTP server threads. They answer at once (store-only work)
 * or suspend the request while the engine works (see http.h).
 */
#ifndef PROMPTD_API_H
#define PROMPTD_API_H

#include <jansson.h>
#include <stdint.h>

#include "auth/jwt.h"
#include "auth/keys.h"
#include "auth/ratelimit.h"
#include "http/http.h"
#include "http/router.h"
#include "store/store.h"

typedef struct engine engine_t;
typedef struct dispatcher dispatcher;
typedef struct recorder recorder;

/* What every request can reach: created in main, read-only while serving. */
typedef struct app {
    store_t *store;
    engine_t *engine; /* may be NULL (no execution endpoints then) */
    dispatcher *dispatcher; /* runs async executions; may be NULL (they wait in the store) */
    recorder *recorder;     /* writes sync executions in group commits; NULL = inline */
    router *routes;
    size_t body_limit;
    ratelimit *per_minute;  /* per API key (or per token user); NULL = off */
    ratelimit *per_day;     /* per user; NULL = off */
    ratelimit *per_address; /* requests that do not authenticate, per client address; NULL = off */
    promptd_jwt_config jwt; /* bearer tokens; both kinds off when unset */
    char jwt_default_org[128];
    long cluster_members_max; /* members per cluster; 0 = no cap */
    long cluster_replies_max; /* replies per cluster message; 0 = no cap */
    int jwt_link_admins; /* a provider's verified email may bind a local admin */
} app;

/* One request as the API layer sees it. */
typedef struct api_req {
    http_req *http;
    app *app;
    auth_principal who; /* valid unless the route is API_PUBLIC */
    router_match match;
    /* path parameters a route resolved itself (api_param_set), e.g. the
     * cluster of a conversation named alone: match.values point here */
    char resolved[2][40];
    int nresolved;
} api_req;

typedef void (*api_handler)(api_req *rq);

enum api_route_flags { API_PUBLIC = 1 };

/* Who is calling (auth.c): an API key (AppId, X-API-Key or Authorization:
 * Bearer), a bearer token (JWT) naming a user, or a key plus a token (the
 * Jarvis pair: the key names the application, the token the user). Fills
 * rq->who; on failure answers 401 (or 500) and returns -1. */
int api_authenticate(api_req *rq);
/* Count the request against the caller's windows and add the rate-limit
 * headers; answers 429 with Retry-After and returns -1 when over a limit. */
int api_rate_limit(api_req *rq);
/* Charge n more admissions to the caller's windows (a request that does the
 * work of n + 1, such as a cluster message's replies). All or nothing as far
 * as this request can tell: when a window has fewer than n left, nothing more
 * is charged and it answers 429 with Retry-After and returns -1. */
int api_rate_charge(api_req *rq, long n);
/* The per-address window of requests that do not authenticate (auth.c).
 * charge: count this answer (a 401, 404, 405, 413 ... already given): add
 * the window's headers, and when the address is over its limit replace the
 * answer with 429 + Retry-After (-1). Without charge: add the headers only
 * (a public route), or with refuse, answer 429 when the address is over its
 * limit (before any credential is checked) and return -1. 0 otherwise, and
 * always 0 when the window is off. */
enum api_addr_mode { API_ADDR_CHARGE, API_ADDR_SHOW, API_ADDR_REFUSE };
int api_address_limit(app *a, http_req *req, enum api_addr_mode mode);
/* The http server's own_answer hook (http.h): app is the struct app. */
void api_own_answer(void *app, http_req *req);

/* Build the route table into a->routes. Returns 0 or -1. */
int api_init(app *a);
void api_free(app *a);
/* The http_handler_fn given to the server (app is the struct app). */
void api_dispatch(void *app, http_req *req);

/* ---- per-resource route registration (one file each) ---- */
int api_routes_system(app *a);
int api_routes_prompts(app *a);
int api_routes_executions(app *a);
int api_routes_comments(app *a);
int api_routes_execute(app *a);
int api_routes_openai(app *a);
int api_routes_entities(app *a);      /* spec 001: entities.c */
int api_routes_clusters(app *a);      /* spec 001: clusters.c */
int api_routes_conversations(app *a); /* spec 001: conversations.c + cluster_reply.c */
int api_routes_v1_validate(app *a);
int api_routes_v1_prompt(app *a);
int api_routes_v1_batch(app *a);
int api_routes_v1_sessions(app *a);
int api_routes_v1_keys(app *a);
int api_routes_v1_history(app *a);
int api_routes_v1_workspaces(app *a);
int api_routes_v1_data_sources(app *a);
int api_routes_v1_users(app *a);

/* ---- helpers (common.c) ---- */

int api_route(app *a, const char *method, const char *pattern, api_handler fn, int flags);
const char *api_param(api_req *rq, const char *name);
/* Give the request a path parameter its route does not carry (name must be a
 * string literal; value is copied, at most 39 bytes), so a shorter path can
 * reuse the handler of the full one. A name already set is replaced. 0 or -1. */
int api_param_set(api_req *rq, const char *name, const char *value);
/* The path parameter `name` names a user of the caller's organization; else
 * answers 404 "User Not Found" and returns -1. */
int api_user_param(api_req *rq, const char *name);

/* Parse the JSON body. Absent body gives an empty object. On 400/415/422 it
 * answers and returns -1; on success returns 0 with a new reference in *root
 * (always a JSON object). */
int api_read_body(api_req *rq, json_t **root);

/* Borrowed member `name` of root that must be an object (Jarvis wrapper such as
 * {"prompt": {...}}); answers 422 and returns NULL when missing or not an object. */
json_t *api_wrapped_object(api_req *rq, json_t *root, const char *name);

/* A string member. required: missing/null is a 422. Empty (only whitespace)
 * is a 422 when nonempty is set. max_bytes bounds the length. On error answers
 * 422 naming `field_path` and returns -1. *out is borrowed (NULL if absent). */
int api_string_field(api_req *rq, json_t *obj, const char *key, const char *field_path, int required, int nonempty,
                     size_t max_bytes, const char **out);

/* page (>= 1, default 1) and records (1..100, default 15) from the query; answers 400 and returns -1 when bad. */
int api_page_params(api_req *rq, long *page, long *records);
/* An integer query parameter in [min, max]; absent gives def. Answers 400 on error. */
int api_query_long(api_req *rq, const char *name, long def, long min, long max, long *out);

/* Answer a store failure: STORE_NOTFOUND as 404 "<what> Not Found", other as 500. */
void api_store_error(api_req *rq, int rc, const char *what);
/* Answer a STORE_ERR by why the store failed (store_last_failure): 503 + Retry-After when
 * the database is locked elsewhere or cannot be written, 507 when the disk is full, 500
 * otherwise. Any surface's envelope. */
void api_store_failure(api_req *rq);

/* How long a request's thread may wait to start a database write (store_thread_wait_limit). */
#define API_STORE_WAIT_MS 100
/* 404 for an id that is not a UUID (no resource can have it). Returns 1 if it answered. */
int api_reject_bad_id(api_req *rq, const char *id, const char *what);

/* JSON helpers: RFC 3339 string (null for 0), JSON:API resource object, list
 * document with meta.totalPages / meta.totalRecords and the same figures as
 * current_page / total_pages / total_count / per_page (what the Jarvis SDK
 * reads). All return new references. */
json_t *api_time(int64_t ms);
json_t *api_resource(const char *id, const char *type, json_t *attributes);
json_t *api_list_doc(json_t *data, long total, long page, long records);
json_t *api_message(const char *message);

#endif
