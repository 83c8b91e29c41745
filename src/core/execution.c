/*
 * execution.c — record, run, finish (see execution.h).
 *
 * With a recorder, both writes go to its thread (a streamed execution's
 * create excepted: see exec_start) and the caller's on_finish runs there once
 * the outcome is committed; the engine's result does not
 * outlive run_done, so it is copied into the run first. Without one (or if
 * queueing fails) the writes happen inline, as the store calls they are.
 * When the record cannot be made durable, on_finish gets a failure saying so
 * (exec_outcome.unrecorded) in place of the engine's answer.
 */
#include "core/execution.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/log.h"

typedef struct exec_run {
    store_t *store;
    recorder *rec;
    store_id id;
    char request_id[129]; /* the HTTP request that started the run (log.h), "" for none: the engine
                             and recorder threads name it in the lines they log for this run */
    void (*on_chunk)(void *ud, const char *text, size_t len);
    void (*on_tool_chunk)(void *ud, const json_t *delta);
    void (*on_logprobs)(void *ud, const json_t *logprobs);
    void (*on_finish)(void *ud, const exec_outcome *out);
    void *ud;
    /* the engine's answer, copied for a finish the recorder completes later */
    engine_result res;
    char *model, *output, *error, *finish_reason;
    char *rej_message, *rej_type, *rej_code, *rej_param;
    json_t *tool_calls, *logprobs;
} exec_run;

static void run_free(exec_run *run)
{
    free(run->model);
    free(run->output);
    free(run->error);
    free(run->finish_reason);
    free(run->rej_message);
    free(run->rej_type);
    free(run->rej_code);
    free(run->rej_param);
    json_decref(run->tool_calls);
    json_decref(run->logprobs);
    free(run);
}

int exec_http_status(enum engine_status st)
{
    switch (st) {
    case ENGINE_OK: return 200;
    case ENGINE_ERR_TIMEOUT: return 504;
    case ENGINE_ERR_SHUTDOWN: return 503;
    case ENGINE_ERR_UNKNOWN_MODEL: return 422;
    case ENGINE_ERR_INTERNAL: return 500;
    case ENGINE_ERR_REJECTED: return 400;
    case ENGINE_ERR_UPSTREAM:
    default: return 502;
    }
}

int exec_result_http_status(const engine_result *res)
{
    int st = res->rejection.http_status;
    if (res->status == ENGINE_ERR_REJECTED && st >= 400 && st <= 499)
        return st;
    return exec_http_status(res->status);
}

static void run_chunk(void *ud, const char *text, size_t len)
{
    exec_run *run = ud;
    if (run->on_chunk)
        run->on_chunk(run->ud, text, len);
}

static void run_tool_chunk(void *ud, const json_t *delta)
{
    exec_run *run = ud;
    if (run->on_tool_chunk)
        run->on_tool_chunk(run->ud, delta);
}

static void run_logprobs(void *ud, const json_t *logprobs)
{
    exec_run *run = ud;
    if (run->on_logprobs)
        run->on_logprobs(run->ud, logprobs);
}

int exec_unrecorded_http_status(enum store_failure why)
{
    switch (why) {
    case STORE_FAIL_FULL: return 507;
    case STORE_FAIL_BUSY:
    case STORE_FAIL_UNAVAILABLE: return 503;
    default: return 500;
    }
}

/* Tell the caller. When the record is not durable (unrecorded != NONE) the
 * engine's answer is withheld: the caller gets a failure saying why, so no
 * answer hands out a model's output under an execution id that reads 404. */
static void run_outcome(exec_run *run, const char *status, const engine_result *res, enum store_failure unrecorded)
{
    exec_outcome out = {
        .execution_id = run->id, .status = status, .http_status = exec_result_http_status(res), .res = res};
    engine_result withheld;
    char error[160];
    if (unrecorded != STORE_FAIL_NONE) {
        snprintf(error, sizeof error, "The execution could not be recorded: %s", store_failure_text(unrecorded));
        withheld = (engine_result){.status = ENGINE_ERR_INTERNAL,
                                   .model = res->model,
                                   .output = "",
                                   .error = error,
                                   .prompt_tokens = res->prompt_tokens,
                                   .completion_tokens = res->completion_tokens,
                                   .total_tokens = res->total_tokens,
                                   .duration_ms = res->duration_ms,
                                   .attempts = res->attempts,
                                   .upstream_us = res->upstream_us};
        out.status = "failed";
        out.http_status = exec_unrecorded_http_status(unrecorded);
        out.res = &withheld;
        out.unrecorded = unrecorded;
    }
    run->on_finish(run->ud, &out);
}

/* Recorder thread: the outcome is committed (why == NONE), or could not be. */
static void run_recorded(void *ud, int store_rc, enum store_failure why)
{
    exec_run *run = ud;
    log_set_request(run->request_id[0] ? run->request_id : NULL);
    if (why != STORE_FAIL_NONE)
        log_error("execution %s: could not record the outcome (store error %d: %s)", run->id, store_rc,
                  store_failure_text(why));
    run_outcome(run, run->res.status == ENGINE_OK ? "completed" : "failed", &run->res, why);
    run_free(run);
    log_set_request(NULL);
}

/* Keep what the engine reported past run_done. -1 when out of memory. */
static int run_keep(exec_run *run, const engine_result *res)
{
    run->res = *res;
    run->model = res->model ? strdup(res->model) : NULL;
    run->error = res->error ? strdup(res->error) : NULL;
    run->finish_reason = res->finish_reason ? strdup(res->finish_reason) : NULL;
    run->output = malloc(res->output_len + 1);
    run->tool_calls = res->tool_calls ? json_deep_copy(res->tool_calls) : NULL;
    run->logprobs = res->logprobs ? json_deep_copy(res->logprobs) : NULL;
    if ((res->model && !run->model) || (res->error && !run->error) || (res->finish_reason && !run->finish_reason) ||
        !run->output || (res->tool_calls && !run->tool_calls) || (res->logprobs && !run->logprobs))
        return -1;
    if (res->status == ENGINE_ERR_REJECTED) {
        const engine_rejection *rj = &res->rejection;
        if (!(run->rej_message = strdup(rj->message ? rj->message : "")) ||
            !(run->rej_type = strdup(rj->type ? rj->type : "")) ||
            !(run->rej_code = strdup(rj->code ? rj->code : "")) ||
            !(run->rej_param = strdup(rj->param ? rj->param : "")))
            return -1;
        run->res.rejection.message = run->rej_message;
        run->res.rejection.type = run->rej_type;
        run->res.rejection.code = run->rej_code;
        run->res.rejection.param = run->rej_param;
    }
    if (res->output_len)
        memcpy(run->output, res->output, res->output_len);
    run->output[res->output_len] = '\0';
    run->res.model = run->model;
    run->res.error = run->error;
    run->res.finish_reason = run->finish_reason;
    run->res.output = run->output;
    run->res.tool_calls = run->tool_calls;
    run->res.logprobs = run->logprobs;
    return 0;
}

/* Engine thread. */
static void run_done(void *ud, const engine_result *res)
{
    exec_run *run = ud;
    int ok = res->status == ENGINE_OK;
    log_set_request(run->request_id[0] ? run->request_id : NULL);
    char *tool_calls = res->tool_calls ? json_dumps(res->tool_calls, JSON_COMPACT) : NULL;
    store_execution_result r = {
        .status = ok ? "completed" : "failed",
        .model = res->model,
        .output = res->output ? res->output : "",
        .output_len = res->output ? res->output_len : 0,
        .error = ok ? NULL : (res->error ? res->error : "the model call failed"),
        .prompt_tokens = res->prompt_tokens,
        .completion_tokens = res->completion_tokens,
        .total_tokens = res->total_tokens,
        .duration_ms = res->duration_ms,
        .attempts = res->attempts,
        .tool_calls = tool_calls,
    };
    if (run->rec && run_keep(run, res) == 0 && recorder_finish(run->rec, run->id, &r, run_recorded, run) == 0) {
        free(tool_calls);
        log_set_request(NULL);
        return; /* run_recorded answers */
    }
    store_failure_reset();
    int rc = store_execution_finish(run->store, run->id, &r);
    enum store_failure why = STORE_FAIL_NONE;
    if (rc != STORE_OK && rc != STORE_CONFLICT) {
        why = store_last_failure() != STORE_FAIL_NONE ? store_last_failure() : STORE_FAIL_OTHER;
        log_error("execution %s: could not record the outcome (%s)", run->id, store_failure_text(why));
    }
    free(tool_calls);
    run_outcome(run, r.status, res, why);
    run_free(run);
    log_set_request(NULL);
}

int exec_start(store_t *store, engine_t *engine, recorder *recorder, exec_request *req, char id_out[ID_LEN + 1])
{
    char model[256];
    store_failure_reset(); /* on EXEC_STORE_ERROR it says why */
    if (!engine || engine_model_resolve(engine, req->rec.model, model, sizeof model) != 0)
        return EXEC_UNKNOWN_MODEL;
    exec_run *run = calloc(1, sizeof *run);
    if (!run)
        return EXEC_STORE_ERROR;
    run->store = store;
    run->rec = recorder;
    run->on_chunk = req->on_chunk;
    run->on_tool_chunk = req->on_tool_chunk;
    run->on_logprobs = req->on_logprobs;
    run->on_finish = req->on_finish;
    run->ud = req->ud;
    snprintf(run->request_id, sizeof run->request_id, "%s", log_request() ? log_request() : "");

    store_execution rec = req->rec; /* shallow: strings stay the caller's */
    rec.model = model;
    snprintf(rec.status, sizeof rec.status, "processing");
    char *messages = json_dumps(req->messages, JSON_COMPACT);
    rec.messages = messages;
    int rc = STORE_ERR;
    if (messages) {
        if (!rec.id[0]) /* the recorder needs the id now; the store would make the same kind */
            id_new(rec.id);
        /* A stream names its execution (X-Execution-Id) before it ends, and the
         * client may read the record at once: its row is written here, before
         * the answer starts. Every other caller answers only after the finish
         * is committed, which the recorder orders after this create. */
        rc = recorder && !rec.stream && recorder_create(recorder, &rec) == 0 ? STORE_OK
                                                                              : store_execution_create(store, &rec);
    }
    free(messages);
    if (rc != STORE_OK) {
        run_free(run);
        return EXEC_STORE_ERROR;
    }
    memcpy(run->id, rec.id, sizeof run->id);
    memcpy(id_out, rec.id, ID_LEN + 1);

    engine_call call = {
        .model = model,
        .messages = req->messages,
        .temperature = rec.temperature,
        .has_temperature = rec.has_temperature,
        .max_tokens = rec.max_tokens,
        .stream = rec.stream,
        .rich_messages = req->rich_messages,
        .options = req->options,
        .on_chunk = run_chunk,
        .on_tool_chunk = req->on_tool_chunk ? run_tool_chunk : NULL,
        .on_logprobs = req->on_logprobs ? run_logprobs : NULL,
        .on_done = run_done,
        .ud = run,
        .valve = req->valve,
    };
    int erc = engine_submit(engine, &call);
    if (erc != 0) {
        /* rejected at once: no callback will come, so finish the record here */
        engine_result res = {.status = (enum engine_status)erc, .model = model, .output = "",
                             .error = erc == ENGINE_ERR_SHUTDOWN ? "the server is shutting down"
                                                                 : "the engine refused the call"};
        store_execution_result r = {.status = "failed", .model = model, .output = "", .error = res.error};
        if (!recorder || recorder_finish(recorder, run->id, &r, NULL, NULL) != 0)
            store_execution_finish(store, run->id, &r);
        run_free(run);
        return EXEC_ENGINE_ERROR;
    }
    return EXEC_OK;
}
