/*
 * system.c — endpoints about the server itself.
 *
 *   GET /health    public liveness probe: {"status":"ok","version":...}
 */
#include "api/api.h"
#include "core/version.h"

static void health(api_req *rq)
{
    http_reply_json(rq->http, 200, json_pack("{s:s, s:s}", "status", "ok", "version", PROMPTD_VERSION));
}

int api_routes_system(app *a) { return api_route(a, "GET", "/health", health, API_PUBLIC); }
