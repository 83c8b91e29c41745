/*
 * v1_prompt.c — single prompts on the v1 surface (spec 003).
 *
 *   POST /api/v1/prompt                {prompt | prompt_id, variables, metadata, async, model,
 *                                       temperature, max_tokens}   (Idempotency-Key honoured)
 *        sync  -> 200 {"success", "status": "completed", "request_id", "data": {...}, "message"}
 *        async -> 202 {"success", "status": "submitted", "request_id", "data": {...}, "message"}
 *   GET  /api/v1/prompt/{id}           status, output, error, tokens, timings, earlier attempts
 *   POST /api/v1/prompt/{id}/cancel    queued or processing -> cancelled (409 when it already ended)
 *   POST /api/v1/prompt/{id}/retry     failed or cancelled -> queued again; earlier attempts kept
 *
 * A raw prompt text is recorded as a prompt of the caller (named after its
 * text; the same text from the same user reuses it), so history and
 * sessions show it.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_idempotency.h"
#include "api/api_run.h"
#include "api/api_v1.h"
#include "api/api_v1_prompt.h"
#include "core/dispatcher.h"
#include "core/execution.h"
#include "core/ids.h"


/* The request as v1 shows it. attempts may be NULL. */
static json_t *v1_request_json(const store_execution *e, const store_attempt *attempts, size_t nattempts)
{
    json_t *earlier = json_array();
    for (size_t i = 0; i < nattempts; i++) {
        const store_attempt *a = &attempts[i];
        json_array_append_new(earlier, json_pack("{s:I, s:s, s:s, s:s?, s:s, s:{s:I, s:I, s:I}, s:I, s:o, s:o}",
                                                 "attempt", (json_int_t)a->number, "status", a->status, "output",
                                                 a->output, "error", a->error, "model", a->model, "tokens",
                                                 "prompt", (json_int_t)a->prompt_tokens, "completion",
                                                 (json_int_t)a->completion_tokens, "total",
                                                 (json_int_t)a->total_tokens, "duration_ms",
                                                 (json_int_t)a->duration_ms, "started_at", api_time(a->started_at),
                                                 "completed_at", api_time(a->finished_at)));
    }
    json_t *meta = e->metadata ? json_loads(e->metadata, 0, NULL) : NULL;
    long queue_ms = e->started_at && e->created_at ? (long)(e->started_at - e->created_at) : 0;
    return json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s, s:s?, s:s, s:b, s:{s:I, s:I, s:I}, "
                     "s:{s:o, s:o, s:o, s:I, s:I}, s:I, s:o, s:o}",
                     "request_id", e->id, "status", e->status, "prompt_id", e->prompt_id[0] ? e->prompt_id : NULL,
                     "batch_id", e->batch_id[0] ? e->batch_id : NULL, "prompt", e->rendered_prompt, "output",
                     e->output, "error", e->error, "model", e->model, "async", e->async, "tokens", "prompt",
                     (json_int_t)e->prompt_tokens, "completion", (json_int_t)e->completion_tokens, "total",
                     (json_int_t)e->total_tokens, "timings", "created_at", api_time(e->created_at), "started_at",
                     api_time(e->started_at), "completed_at", api_time(e->finished_at), "queue_ms",
                     (json_int_t)queue_ms, "duration_ms", (json_int_t)e->duration_ms, "retries",
                     (json_int_t)e->retries, "attempts", earlier, "metadata", meta ? meta : json_object());
}

/* {"success", "status", "request_id", "data", "message"}: both documents' fields. */
static json_t *v1_request_envelope(const char *status, const char *request_id, json_t *data, const char *message)
{
    return json_pack("{s:b, s:s, s:s, s:o, s:s}", "success", 1, "status", status, "request_id", request_id, "data",
                     data ? data : json_null(), "message", message);
}

void v1_raw_identity(const char *text, char name[V1_RAW_NAME_MAX + 4], char hash_hex[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)text, strlen(text), NULL, 0);
    sodium_bin2hex(hash_hex, 65, h, sizeof h);
    /* the name is the text's start on one line, cut at a UTF-8 character boundary */
    const char *p = text;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    size_t len = strlen(p), n = len < V1_RAW_NAME_MAX ? len : V1_RAW_NAME_MAX;
    while (n > 0 && n < len && ((unsigned char)p[n] & 0xC0) == 0x80) /* p[n] continues a character */
        n--;
    for (size_t i = 0; i < n; i++)
        name[i] = (p[i] == '\n' || p[i] == '\r' || p[i] == '\t') ? ' ' : p[i];
    name[n] = '\0';
    if (n < len)
        strcat(name, "...");
}

int v1_fill_record(api_req *rq, const v1_prompt_req *pr, store_execution *rec, store_prompt *prompt,
                   char **metadata_text, char **vars_text)
{
    memset(rec, 0, sizeof *rec);
    *metadata_text = *vars_text = NULL;
    int rc = STORE_OK;
    if (!prompt->id[0]) { /* not resolved by the caller */
        if (pr->prompt_id[0]) {
            rc = store_prompt_get(rq->app->store, rq->who.org_id, pr->prompt_id, rq->who.user_id, prompt);
        } else {
            char name[V1_RAW_NAME_MAX + 4], hash[65];
            v1_raw_identity(pr->text, name, hash);
            rc = store_prompt_ensure_raw(rq->app->store, rq->who.org_id, rq->who.user_id, name, pr->text, hash,
                                         prompt);
        }
    }
    if (rc != STORE_OK)
        return rc;
    memcpy(rec->org_id, rq->who.org_id, sizeof rec->org_id);
    memcpy(rec->user_id, rq->who.user_id, sizeof rec->user_id);
    memcpy(rec->api_key_id, rq->who.key_id, sizeof rec->api_key_id);
    memcpy(rec->prompt_id, prompt->id, sizeof rec->prompt_id);
    memcpy(rec->version_id, prompt->current_version_id, sizeof rec->version_id);
    rec->version_number = prompt->versions_count;
    snprintf(rec->source, sizeof rec->source, "v1");
    rec->rendered_prompt = pr->rendered;
    rec->model = (char *)pr->model;
    rec->temperature = pr->temperature;
    rec->has_temperature = pr->has_temperature;
    rec->max_tokens = pr->max_tokens;
    *metadata_text = pr->metadata ? json_dumps(pr->metadata, JSON_COMPACT) : strdup("{}");
    *vars_text = pr->variables ? json_dumps(pr->variables, JSON_COMPACT) : strdup("{}");
    rec->metadata = *metadata_text;
    rec->variables = *vars_text;
    return (*metadata_text && *vars_text) ? STORE_OK : STORE_ERR;
}

typedef struct sync_ctx {
    http_req *http;
    store_t *store;
    api_idem idem;
    store_id prompt_id;
} sync_ctx;

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

static void sync_finish(void *ud, const exec_outcome *out)
{
    sync_ctx *cx = ud;
    const engine_result *res = out->res;
    store_execution e = {0};
    json_t *body;
    int status = out->http_status;
    if (out->unrecorded) {
        /* nothing durable to name or to replay: the key is released, so a retry runs again */
        api_idem_abort(cx->store, &cx->idem);
        api_run_retry_after(cx->http, out->unrecorded);
        http_set_upstream_us(cx->http, res->upstream_us);
        http_error(cx->http, status, NULL, NULL, "%s", api_run_error_text(res));
        http_resume(cx->http);
        free(cx);
        return;
    }
    memcpy(e.id, out->execution_id, sizeof e.id);
    memcpy(e.prompt_id, cx->prompt_id, sizeof e.prompt_id);
    snprintf(e.status, sizeof e.status, "%s", out->status);
    e.output = (char *)(res->output ? res->output : "");
    e.error = (char *)(status == 200 ? NULL : res->error);
    e.model = (char *)(res->model ? res->model : "");
    e.rendered_prompt = (char *)"";
    e.prompt_tokens = res->prompt_tokens;
    e.completion_tokens = res->completion_tokens;
    e.total_tokens = res->total_tokens;
    e.duration_ms = res->duration_ms;
    json_t *data = v1_request_json(&e, NULL, 0);
    json_object_del(data, "prompt");
    if (status == 200) {
        body = v1_request_envelope("completed", out->execution_id, data, "Prompt processed successfully");
    } else {
        int rejected = res->status == ENGINE_ERR_REJECTED && status < 500;
        const char *code = rejected        ? http_status_code(HTTP_STYLE_V1, status)
                           : status == 504 ? "UPSTREAM_TIMEOUT"
                           : status == 503 ? "SERVICE_UNAVAILABLE"
                                           : "UPSTREAM_ERROR";
        const char *msg = api_run_error_text(res);
        body = json_pack("{s:b, s:s, s:s, s:{s:s, s:s}, s:o, s:s}", "success", 0, "status", "failed", "request_id",
                         out->execution_id, "error", "code", code, "message", msg, "data", data, "message", msg);
        if (body && rejected) /* the provider refused the request: its own words, as http_error_upstream gives them */
            json_object_set_new(json_object_get(body, "error"), "upstream",
                                json_pack("{s:s?, s:s?, s:s?}", "type", nonempty(res->rejection.type), "code",
                                          nonempty(res->rejection.code), "param", nonempty(res->rejection.param)));
    }
    api_idem_save(cx->store, &cx->idem, status, body);
    http_add_header(cx->http, "X-Execution-Id", out->execution_id);
    http_set_upstream_us(cx->http, res->upstream_us);
    http_reply_json(cx->http, status, body);
    http_resume(cx->http);
    free(cx);
}

static void prompt_submit(api_req *rq)
{
    json_t *body = NULL, *errors = json_array(), *warnings = json_array(), *messages = NULL;
    v1_prompt_req pr = {0};
    store_prompt prompt = {0};
    store_execution rec;
    char *metadata_text = NULL, *vars_text = NULL;
    api_idem idem;
    if (api_read_body(rq, &body) || api_idem_begin(rq, &idem))
        goto out;
    if (v1_prompt_check(rq, body, NULL, "", &pr, errors, warnings) > 0) {
        api_idem_abort(rq->app->store, &idem);
        v1_reply_invalid(rq, errors);
        goto out;
    }
    int rc = v1_fill_record(rq, &pr, &rec, &prompt, &metadata_text, &vars_text);
    if (rc != STORE_OK) {
        api_idem_abort(rq->app->store, &idem);
        api_v1_store_error(rq, rc, "Prompt");
        goto out;
    }
    messages = json_pack("[{s:s, s:s}]", "role", "user", "content", pr.rendered);

    if (pr.async) {
        char model[256];
        if (engine_model_resolve(rq->app->engine, pr.model, model, sizeof model) == 0)
            rec.model = model;
        rec.async = 1;
        snprintf(rec.status, sizeof rec.status, "queued");
        char *msgs = json_dumps(messages, JSON_COMPACT);
        rec.messages = msgs;
        rc = msgs ? store_execution_create(rq->app->store, &rec) : STORE_ERR;
        free(msgs);
        if (rc != STORE_OK) {
            api_idem_abort(rq->app->store, &idem);
            api_v1_store_error(rq, rc, "Prompt");
            goto out;
        }
        dispatcher_notify(rq->app->dispatcher);
        json_t *data = json_pack("{s:s, s:s, s:s, s:o, s:O}", "request_id", rec.id, "status", "queued", "prompt_id",
                                 prompt.id, "created_at", api_time(rec.created_at), "warnings", warnings);
        json_t *env = v1_request_envelope("submitted", rec.id, data, "Prompt submitted for processing");
        api_idem_save(rq->app->store, &idem, 202, env);
        char location[80];
        snprintf(location, sizeof location, "/api/v1/prompt/%s", rec.id);
        http_add_header(rq->http, "X-Execution-Id", rec.id);
        http_add_header(rq->http, "Location", location);
        http_reply_json(rq->http, 202, env);
        goto out;
    }

    sync_ctx *cx = calloc(1, sizeof *cx);
    if (!cx) {
        api_idem_abort(rq->app->store, &idem);
        http_error(rq->http, 500, NULL, NULL, "Out of memory");
        goto out;
    }
    cx->http = rq->http;
    cx->store = rq->app->store;
    cx->idem = idem;
    memcpy(cx->prompt_id, prompt.id, sizeof cx->prompt_id);
    exec_request req = {.rec = rec, .messages = messages, .on_finish = sync_finish, .ud = cx};
    char exec_id[ID_LEN + 1];
    http_suspend(rq->http);
    int erc = exec_start(rq->app->store, rq->app->engine, rq->app->recorder, &req, exec_id);
    if (erc == EXEC_STORE_ERROR) {
        api_v1_store_error(rq, STORE_ERR, "Prompt"); /* why the store refused: 507 / 503 / 500 */
        api_idem_abort(rq->app->store, &idem);
        http_resume(rq->http);
        free(cx);
    } else if (erc != EXEC_OK) {
        api_idem_abort(rq->app->store, &idem);
        http_error(rq->http, erc == EXEC_UNKNOWN_MODEL ? 400 : 503, NULL, erc == EXEC_UNKNOWN_MODEL ? "model" : NULL,
                   "%s", erc == EXEC_UNKNOWN_MODEL ? "unknown model" : "the prompt could not be started");
        http_resume(rq->http);
        free(cx);
    }
    /* from here a sync request may already be answered: do not touch rq->http */
out:
    free(metadata_text);
    free(vars_text);
    json_decref(messages);
    store_prompt_clear(&prompt);
    v1_prompt_req_clear(&pr);
    json_decref(errors);
    json_decref(warnings);
    json_decref(body);
}

static void prompt_status(api_req *rq)
{
    const char *id;
    if (api_v1_path_id(rq, "id", "Prompt request", &id))
        return;
    store_execution e;
    int rc = store_execution_get(rq->app->store, rq->who.org_id, NULL, id, rq->who.user_id, &e);
    /* reading follows the rule of cancel and retry: a member sees their own requests, an
     * admin every request of the organization; another's answers as if it did not exist */
    if (rc == STORE_OK && !rq->who.is_admin && strcmp(e.user_id, rq->who.user_id) != 0) {
        store_execution_clear(&e);
        rc = STORE_NOTFOUND;
    }
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Prompt request");
        return;
    }
    store_attempt *attempts = NULL;
    size_t n = 0;
    store_execution_attempts(rq->app->store, rq->who.org_id, id, &attempts, &n);
    json_t *data = v1_request_json(&e, attempts, n);
    http_reply_json(rq->http, 200, v1_request_envelope(e.status, e.id, data, "Prompt request retrieved"));
    store_attempts_free(attempts, n);
    store_execution_clear(&e);
}

static void prompt_cancel(api_req *rq)
{
    const char *id;
    if (api_v1_path_id(rq, "id", "Prompt request", &id))
        return;
    /* members cancel their own requests; admins anyone's in the organization */
    int rc = store_execution_cancel(rq->app->store, rq->who.org_id, id, rq->who.is_admin ? NULL : rq->who.user_id);
    if (rc == STORE_CONFLICT) {
        http_error(rq->http, 409, NULL, NULL,
                   "This prompt request has already ended, or runs synchronously, and cannot be cancelled");
        return;
    }
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Prompt request");
        return;
    }
    http_reply_json(rq->http, 200,
                    v1_request_envelope("cancelled", id, json_pack("{s:s, s:s}", "request_id", id, "status", "cancelled"),
                                        "Prompt request cancelled"));
}

static void prompt_retry(api_req *rq)
{
    const char *id;
    if (api_v1_path_id(rq, "id", "Prompt request", &id))
        return;
    int rc = store_execution_retry(rq->app->store, rq->who.org_id, id, rq->who.is_admin ? NULL : rq->who.user_id);
    if (rc == STORE_CONFLICT) {
        http_error(rq->http, 409, NULL, NULL, "Only a failed or cancelled prompt request can be retried");
        return;
    }
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Prompt request");
        return;
    }
    dispatcher_notify(rq->app->dispatcher);
    http_reply_json(rq->http, 202,
                    v1_request_envelope("submitted", id, json_pack("{s:s, s:s}", "request_id", id, "status", "queued"),
                                        "Prompt request queued for retry"));
}

int api_routes_v1_prompt(app *a)
{
    return api_route(a, "POST", "/api/v1/prompt", prompt_submit, 0) ||
           api_route(a, "GET", "/api/v1/prompt/:id", prompt_status, 0) ||
           api_route(a, "POST", "/api/v1/prompt/:id/cancel", prompt_cancel, 0) ||
           api_route(a, "POST", "/api/v1/prompt/:id/retry", prompt_retry, 0);
}
