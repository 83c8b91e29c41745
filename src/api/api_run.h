/*
 * api_run.h — the run parameters every execution endpoint accepts (model,
 * temperature, max_tokens, variables, version_id), validated the same way
 * everywhere, and the mapping of start failures to HTTP answers.
 */
#ifndef PROMPTD_API_RUN_H
#define PROMPTD_API_RUN_H

#include <jansson.h>

#include "api/api.h"
#include "core/execution.h"

#define API_TEMPERATURE_MAX 2.0
#define API_MAX_TOKENS_MAX 1000000

typedef struct api_run_params {
    const char *model;    /* NULL = default; borrowed from the body */
    double temperature;
    int has_temperature;
    long max_tokens;      /* 0 = not set */
    json_t *variables;    /* borrowed object or NULL */
    const char *version_id; /* borrowed or NULL */
} api_run_params;

/* Parse from root (the body object). Answers 422 naming the field and returns
 * -1 on a bad value, including a model that routes to no provider. */
int api_run_params_parse(api_req *rq, json_t *root, api_run_params *out);

/* Fill the identity and parameter fields of an execution record. */
void api_run_fill_record(api_req *rq, const api_run_params *prm, store_execution *rec);

/* Answer a model name that routes nowhere: 404 model_not_found on the OpenAI
 * surface (as OpenAI answers, so the SDKs raise NotFoundError), else 422
 * naming "model". */
void api_run_unknown_model(api_req *rq, const char *model);

/* What went wrong with a failed execution, for the client: the provider's
 * own message when it refused the request, else the engine's error. */
const char *api_run_error_text(const engine_result *res);

/* Answer a failed execution (out->http_status != 200) on h, in its style:
 * the status exec chose, and for a provider's refusal its 4xx with its type,
 * code and param (http_error_upstream); Retry-After when the record could
 * not be written for a while. detail is the message. */
void api_run_fail(http_req *h, const exec_outcome *out, const char *title, const char *detail);

/* Retry-After for an execution that could not be recorded (exec_outcome's
 * unrecorded): set for a lock or a file that cannot be written (503), not
 * for a full disk (507) nor for NONE. */
void api_run_retry_after(http_req *h, enum store_failure why);

/* Answer an exec_start() failure: EXEC_STORE_ERROR answers why the store
 * refused (api_store_failure: 507 / 503 with Retry-After / 500), read from
 * the calling thread, so call it right after exec_start. */
void api_run_start_error(api_req *rq, int exec_rc, const char *model);

#endif
