/*
 * execution.h — the life of one execution, without HTTP: write the record,
 * hand the call to the engine, and when the engine answers write the outcome
 * (exactly once) before telling the caller.
 *
 * The caller's callbacks: on_chunk on the engine thread for each piece of
 * streamed text, then on_finish once, after the record is final (so a client
 * that reads the execution right after the answer sees it complete) — on the
 * recorder's thread when a recorder writes the rows (core/recorder.h), else
 * on the engine thread.
 */
#ifndef PROMPTD_CORE_EXECUTION_H
#define PROMPTD_CORE_EXECUTION_H

#include <jansson.h>

#include "core/recorder.h"
#include "engine/engine.h"
#include "store/store.h"

typedef struct exec_outcome {
    const char *execution_id;
    const char *status;       /* "completed" | "failed" */
    /* 200, or 502 / 504 / 503 / 500 for the failure, or the provider's own
     * 4xx when it refused the request (res->rejection says what it said) */
    int http_status;
    const engine_result *res; /* the engine's answer (output, usage, model, error, rejection) */
    /* STORE_FAIL_NONE when the execution's record is durable. Else why it
     * could not be written: then status is "failed", http_status is 507 (a
     * full disk), 503 (locked, or not writable: answer with Retry-After) or
     * 500, and res is a failure whose error says the execution was not
     * recorded, with no output: the model's answer is not handed out
     * unrecorded, and the answer should not name the execution. */
    enum store_failure unrecorded;
} exec_outcome;

typedef struct exec_request {
    /* The record to create: org_id, user_id, api_key_id, prompt_id, version_id,
     * version_number, source, rendered_prompt, variables, metadata, model,
     * temperature, max_tokens, stream. status is filled by exec_start, and id
     * too unless the caller made one (id_new: a caller that names its
     * executions before they start, as a held stream's header does). */
    store_execution rec;
    json_t *messages; /* borrowed: [{"role","content"}...] sent to the model */
    int rich_messages;     /* messages carry tool calls or non-text parts (engine_call) */
    const json_t *options; /* borrowed; more request fields, or NULL (engine_call) */
    void (*on_chunk)(void *ud, const char *text, size_t len);
    void (*on_tool_chunk)(void *ud, const json_t *delta); /* streams; may be NULL */
    void (*on_logprobs)(void *ud, const json_t *logprobs); /* streams; may be NULL (engine_call) */
    void (*on_finish)(void *ud, const exec_outcome *out);
    void *ud;
    /* streams, may be NULL: the consumer's flow control, passed to the
     * engine (engine_call.valve, which takes its own reference) */
    engine_valve *valve;
} exec_request;

enum exec_rc { EXEC_OK = 0, EXEC_UNKNOWN_MODEL = 1, EXEC_STORE_ERROR = 2, EXEC_ENGINE_ERROR = 3 };

/* Start: resolve the model (rec.model is replaced by its canonical name),
 * write the record as "processing" (through recorder when not NULL: queued,
 * not waited for; a stream's record is written at once, as it names its
 * execution before it ends) and submit. On EXEC_OK, on_finish will be called exactly once; on anything else
 * no callback runs. On EXEC_STORE_ERROR, store_last_failure() on the calling
 * thread says why (STORE_FAIL_NONE: out of memory). The execution id is written to id_out. The caller keeps
 * ownership of the strings in req->rec (exec_start copies what it needs). */
int exec_start(store_t *store, engine_t *engine, recorder *recorder, exec_request *req, char id_out[ID_LEN + 1]);

/* Map an engine status to the HTTP status promptd answers with
 * (ENGINE_ERR_REJECTED: 400, the refusal's own status is in exec_result_http_status). */
int exec_http_status(enum engine_status st);
/* The HTTP status for an engine result: exec_http_status, except that a
 * refusal (ENGINE_ERR_REJECTED) answers with the provider's own 4xx. */
int exec_result_http_status(const engine_result *res);
/* The HTTP status for a record that could not be written: 507 for a full
 * disk, 503 for a lock or a file that cannot be written, 500 otherwise. */
int exec_unrecorded_http_status(enum store_failure why);

#endif
