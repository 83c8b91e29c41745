/*
 * run.c — shared run parameters for execution endpoints (see api_run.h).
 */
#include <stdio.h>
#include <string.h>

#include "api/api_run.h"
#include "core/ids.h"
#include "engine/engine.h"

/* (api_run.h) An unknown model. The OpenAI surface answers as OpenAI does (404,
 * code model_not_found), so the SDKs raise their NotFoundError; the Jarvis
 * surface keeps its 422 naming the field. */
void api_run_unknown_model(api_req *rq, const char *model)
{
    if (http_style_of(rq->http) == HTTP_STYLE_OPENAI) {
        char msg[400];
        snprintf(msg, sizeof msg, "The model '%.200s' does not exist: use echo, openai/<model>, anthropic/<model>, "
                 "<provider>/<model> or a configured alias", model ? model : "");
        json_t *body = json_pack("{s:{s:s, s:s, s:s, s:s}}", "error", "message", msg, "type",
                                 "invalid_request_error", "param", "model", "code", "model_not_found");
        if (body) {
            http_reply_json(rq->http, 404, body);
            return;
        }
    }
    http_error(rq->http, 422, NULL, "model", "Unknown model '%s': use echo, openai/<model>, "
               "anthropic/<model>, <provider>/<model> or a configured alias", model ? model : "");
}

int api_run_params_parse(api_req *rq, json_t *root, api_run_params *out)
{
    /* OpenAI clients expect 400 invalid_request_error for a bad parameter; the Jarvis surface says 422 */
    int bad = http_style_of(rq->http) == HTTP_STYLE_OPENAI ? 400 : 422;
    memset(out, 0, sizeof *out);
    if (api_string_field(rq, root, "model", "model", 0, 1, 200, &out->model) ||
        api_string_field(rq, root, "version_id", "version_id", 0, 1, 64, &out->version_id))
        return -1;
    if (out->version_id && !id_is_uuid(out->version_id)) {
        http_error(rq->http, bad, NULL, "version_id", "'version_id' must be a version's UUID");
        return -1;
    }
    json_t *t = json_object_get(root, "temperature");
    if (t && !json_is_null(t)) {
        if (!json_is_number(t) || json_number_value(t) < 0 || json_number_value(t) > API_TEMPERATURE_MAX) {
            http_error(rq->http, bad, NULL, "temperature", "'temperature' must be a number from 0 to 2");
            return -1;
        }
        out->temperature = json_number_value(t);
        out->has_temperature = 1;
    }
    json_t *m = json_object_get(root, "max_tokens");
    if (m && !json_is_null(m)) {
        if (!json_is_integer(m) || json_integer_value(m) < 1 || json_integer_value(m) > API_MAX_TOKENS_MAX) {
            http_error(rq->http, bad, NULL, "max_tokens", "'max_tokens' must be an integer from 1 to %d",
                       API_MAX_TOKENS_MAX);
            return -1;
        }
        out->max_tokens = (long)json_integer_value(m);
    }
    json_t *v = json_object_get(root, "variables");
    if (v && !json_is_null(v)) {
        if (!json_is_object(v)) {
            http_error(rq->http, bad, NULL, "variables", "'variables' must be an object");
            return -1;
        }
        out->variables = v;
    }
    if (!rq->app->engine) {
        http_error(rq->http, 503, NULL, NULL, "No model engine is running");
        return -1;
    }
    if (!engine_model_known(rq->app->engine, out->model)) {
        api_run_unknown_model(rq, out->model);
        return -1;
    }
    return 0;
}

void api_run_fill_record(api_req *rq, const api_run_params *prm, store_execution *rec)
{
    memset(rec, 0, sizeof *rec);
    memcpy(rec->org_id, rq->who.org_id, sizeof rec->org_id);
    memcpy(rec->user_id, rq->who.user_id, sizeof rec->user_id);
    memcpy(rec->api_key_id, rq->who.key_id, sizeof rec->api_key_id);
    rec->model = (char *)prm->model;
    rec->temperature = prm->temperature;
    rec->has_temperature = prm->has_temperature;
    rec->max_tokens = prm->max_tokens;
}

void api_run_start_error(api_req *rq, int exec_rc, const char *model)
{
    switch (exec_rc) {
    case EXEC_UNKNOWN_MODEL: api_run_unknown_model(rq, model); break;
    case EXEC_ENGINE_ERROR:
        http_error(rq->http, 503, NULL, NULL, "The model engine is not accepting work (shutting down)");
        break;
    default: /* the record could not be written: why, in the store's words (507 / 503 / 500) */
        api_store_failure(rq);
        break;
    }
}

void api_run_retry_after(http_req *h, enum store_failure why)
{
    /* as api_store_failure: a lock passes soon, a file that cannot be written later */
    if (why == STORE_FAIL_BUSY)
        http_add_header(h, "Retry-After", "1");
    else if (why == STORE_FAIL_UNAVAILABLE)
        http_add_header(h, "Retry-After", "5");
}

const char *api_run_error_text(const engine_result *res)
{
    if (res->status == ENGINE_ERR_REJECTED && res->rejection.message && *res->rejection.message)
        return res->rejection.message;
    return res->error ? res->error : "the model call failed";
}

void api_run_fail(http_req *h, const exec_outcome *out, const char *title, const char *detail)
{
    const engine_result *res = out->res;
    api_run_retry_after(h, out->unrecorded);
    if (res->status == ENGINE_ERR_REJECTED && out->http_status >= 400 && out->http_status <= 499) {
        http_upstream_error up = {
            .type = res->rejection.type, .code = res->rejection.code, .param = res->rejection.param};
        http_error_upstream(h, out->http_status, title, &up, "%s", detail);
        return;
    }
    http_error(h, out->http_status, title, NULL, "%s", detail);
}
