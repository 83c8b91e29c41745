/*
 * api.c — the route table and the dispatcher: match the route, authenticate
 * the caller, run the endpoint. 404 and 405 for unknown routes are answered
 * here, in the style of the path's API surface.
 */
#include "api/api.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

int api_init(app *a)
{
    if (!(a->routes = router_new()))
        return -1;
    if (api_routes_system(a) || api_routes_prompts(a) || api_routes_executions(a) || api_routes_comments(a) ||
        api_routes_execute(a) || api_routes_openai(a) || api_routes_entities(a) ||
        api_routes_clusters(a) || api_routes_conversations(a) || api_routes_v1_validate(a) || api_routes_v1_prompt(a) ||
        api_routes_v1_batch(a) || api_routes_v1_sessions(a) ||
        api_routes_v1_history(a) || api_routes_v1_workspaces(a) || api_routes_v1_data_sources(a) ||
        api_routes_v1_users(a)) {
        router_free(a->routes);
        a->routes = NULL;
        return -1;
    }
    return 0;
}

void api_free(app *a)
{
    router_free(a->routes);
    a->routes = NULL;
}

int api_route(app *a, const char *method, const char *pattern, api_handler fn, int flags)
{
    /* a function pointer travels through the router's void *; POSIX guarantees the round trip */
    if (router_add(a->routes, method, pattern, *(void **)&fn, flags) != 0) {
        log_error("api: cannot register %s %s", method, pattern);
        return -1;
    }
    return 0;
}

/* The API key from AppId, X-API-Key or Authorization: Bearer (in that order:
 * Jarvis clients send AppId with a user token in Authorization). */
static const char *presented_key(http_req *req)
{
    const char *k = http_header(req, "AppId");
    if (k && *k)
        return k;
    k = http_header(req, "X-API-Key");
    if (k && *k)
        return k;
    const char *auth = http_header(req, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        auth += 7;
        while (*auth == ' ')
            auth++;
        return *auth ? auth : NULL;
    }
    return NULL;
}

static int authenticate(api_req *rq)
{
    const char *key = presented_key(rq->http);
    if (!key) {
        http_add_header(rq->http, "WWW-Authenticate", "Bearer");
        http_error(rq->http, 401, NULL, NULL,
                   "Missing API key: send it as AppId, X-API-Key or Authorization: Bearer");
        return -1;
    }
    switch (auth_key_verify(rq->app->store, key, &rq->who)) {
    case AUTH_OK:
        return 0;
    case AUTH_REVOKED:
        http_add_header(rq->http, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        http_error(rq->http, 401, NULL, NULL, "This API key has been revoked");
        return -1;
    case AUTH_INVALID:
        http_add_header(rq->http, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        http_error(rq->http, 401, NULL, NULL, "Invalid API key");
        return -1;
    default:
        http_error(rq->http, 500, NULL, NULL, "Could not check credentials");
        return -1;
    }
}

void api_dispatch(void *ctx, http_req *req)
{
    app *a = ctx;
    api_req *rq = calloc(1, sizeof *rq);
    if (!rq) {
        http_error(req, 500, NULL, NULL, "Out of memory");
        return;
    }
    rq->http = req;
    rq->app = a;
    /* owned by the request from here: handlers that suspend keep using it */
    http_set_app_data(req, rq, free);

    const char *method = http_method(req);
    int rc = router_match_path(a->routes, strcmp(method, "HEAD") == 0 ? "GET" : method, http_path(req), &rq->match);
    if (rc == ROUTER_NOT_FOUND) {
        http_error(req, 404, NULL, NULL, "No route for %s %s", method, http_path(req));
        return;
    }
    if (rc == ROUTER_BAD_METHOD) {
        http_add_header(req, "Allow", rq->match.allow);
        http_error(req, 405, NULL, NULL, "%s is not allowed here; allowed: %s", method, rq->match.allow);
        return;
    }
    if (!(rq->match.flags & API_PUBLIC) && authenticate(rq) != 0)
        return;
    api_handler fn;
    *(void **)&fn = rq->match.handler;
    fn(rq);
}
