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
        api_routes_v1_batch(a) || api_routes_v1_sessions(a) || api_routes_v1_keys(a) ||
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
    /* an HTTP thread never stalls on the database: a write that cannot start within
     * API_STORE_WAIT_MS fails, and the client gets a 503 (api_store_failure) */
    store_failure_reset();
    store_thread_wait_limit(API_STORE_WAIT_MS);
    /* owned by the request from here: handlers that suspend keep using it */
    http_set_app_data(req, rq, free);

    const char *method = http_method(req);
    int rc = router_match_path(a->routes, strcmp(method, "HEAD") == 0 ? "GET" : method, http_path(req), &rq->match);
    /* answers that authenticate no one are charged to the client's address (auth.c) */
    if (rc == ROUTER_NOT_FOUND) {
        http_error(req, 404, NULL, NULL, "No route for %s %s", method, http_path(req));
        (void)api_address_limit(a, req, API_ADDR_CHARGE);
        return;
    }
    if (rc == ROUTER_BAD_METHOD) {
        http_add_header(req, "Allow", rq->match.allow);
        http_error(req, 405, NULL, NULL, "%s is not allowed here; allowed: %s", method, rq->match.allow);
        (void)api_address_limit(a, req, API_ADDR_CHARGE);
        return;
    }
    if (rq->match.flags & API_PUBLIC) {
        (void)api_address_limit(a, req, API_ADDR_SHOW);
    } else {
        if (api_address_limit(a, req, API_ADDR_REFUSE) != 0)
            return;
        if (api_authenticate(rq) != 0) {
            if (http_reply_status(req) == 401) /* not a 500: the caller did nothing wrong */
                (void)api_address_limit(a, req, API_ADDR_CHARGE);
            return;
        }
        if (api_rate_limit(rq) != 0)
            return;
    }
    api_handler fn;
    *(void **)&fn = rq->match.handler;
    fn(rq);
}
