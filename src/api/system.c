/*
 * system.c — endpoints about the server itself.
 *
 *   GET /health    public liveness probe: {"status":"ok"|"degraded","version",
 *                  "store":{"writes":"ok"|"refused", "reason", "since"}}
 *
 * It answers from memory (the store's last write outcome), never from the database, so it
 * stays fast when the database is locked or the disk is full; "degraded" then says the
 * server is alive but refusing writes.
 */
#include "api/api.h"
#include "core/version.h"

static void health(api_req *rq)
{
    store_write_state w;
    store_write_state_get(rq->app->store, &w);
    json_t *store = w.refusing ? json_pack("{s:s, s:s, s:o}", "writes", "refused", "reason",
                                           store_failure_text(w.why), "since", api_time(w.since_ms))
                               : json_pack("{s:s}", "writes", "ok");
    http_reply_json(rq->http, 200,
                    json_pack("{s:s, s:s, s:o}", "status", w.refusing ? "degraded" : "ok", "version",
                              PROMPTD_VERSION, "store", store));
}

int api_routes_system(app *a) { return api_route(a, "GET", "/health", health, API_PUBLIC); }
