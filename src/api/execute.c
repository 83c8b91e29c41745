/*
 * execute.c — running a stored prompt (Jarvis surface).
 *
 *   POST /prompts/:id/execute          {"variables", "model", "temperature", "max_tokens", "version_id"}
 *        -> {"data": {"id", "type": "chat_response", "attributes": {"content", "metadata": {...}}}}
 *   POST /prompts/:id/execute/stream   same body -> text/event-stream (header X-Execution-Id):
 *        (default)     data: {"content": "<piece>"}       one per piece, as it arrives
 *        event: done   data: {"prompt_execution_id", "status", "model", "usage", "duration_ms"}
 *        event: error  data: {"prompt_execution_id", "status": "failed", "error", "http_status"}
 *   POST /prompts/:id/versions/:version_id/execute[/stream]   the same, on that version (the path's
 *        version_id wins over the body's)
 *
 * The request is suspended while the engine works: no thread waits. A stream
 * holds its status line until the model's first piece, so a stream that
 * cannot start (connection refused, upstream 5xx, timeout, the provider
 * refusing the request) is the same error answer as the sync call's; once a
 * piece was sent, a failure ends the stream with "event: error". A provider's
 * refusal (its 4xx) is answered with that status and its message, its own
 * type, code and param in errors[0].meta.upstream. The execution record is
 * complete either way, also when a streaming client leaves early (the run
 * goes on; its writes are dropped). A client that reads slower than the model
 * pauses the model rather than filling the server's memory (api_stream.h).
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_run.h"
#include "api/api_stream.h"
#include "core/execution.h"
#include "core/ids.h"
#include "core/template.h"

/* One run. Its callbacks come one after the other (the pieces on the engine
 * thread, then the finish), so the stream needs no lock of its own. */
typedef struct execute_ctx {
    http_req *http;      /* suspended until answered; not touched after */
    http_stream *stream; /* a stream's body once its status line went out */
    engine_valve *valve; /* a stream's flow control (api_stream.h): our reference, or NULL */
    store_id exec_id;    /* made before the run starts: the stream's header names it */
} execute_ctx;

static void ctx_free(execute_ctx *cx)
{
    engine_valve_unref(cx->valve);
    free(cx);
}

static json_t *usage_json(const engine_result *res)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)res->prompt_tokens, "completion_tokens",
                     (json_int_t)res->completion_tokens, "total_tokens", (json_int_t)res->total_tokens);
}

static void sync_finish(void *ud, const exec_outcome *out)
{
    execute_ctx *cx = ud;
    const engine_result *res = out->res;
    if (!out->unrecorded) /* an execution that was not written is named nowhere */
        http_add_header(cx->http, "X-Execution-Id", out->execution_id);
    http_set_upstream_us(cx->http, res->upstream_us);
    if (out->http_status == 200) {
        json_t *meta = json_pack("{s:s, s:s?, s:o, s:I, s:s?, s:I}", "prompt_execution_id", out->execution_id,
                                 "model", res->model, "usage", usage_json(res), "duration_ms",
                                 (json_int_t)res->duration_ms, "finish_reason", res->finish_reason, "attempts",
                                 (json_int_t)res->attempts);
        /* duration and execution_unique_id beside the metadata: where the Jarvis SDK's execute() looks */
        json_t *attrs = json_pack("{s:s%, s:o, s:I, s:s}", "content", res->output ? res->output : "",
                                  res->output ? res->output_len : 0, "metadata", meta, "duration",
                                  (json_int_t)res->duration_ms, "execution_unique_id", out->execution_id);
        http_reply_json(cx->http, 200, json_pack("{s:o}", "data", api_resource(out->execution_id, "chat_response",
                                                                                  attrs)));
    } else {
        char msg[700];
        if (out->unrecorded)
            snprintf(msg, sizeof msg, "%s", api_run_error_text(res));
        else
            snprintf(msg, sizeof msg, "%s (execution %s)", api_run_error_text(res), out->execution_id);
        api_run_fail(cx->http, out, "Execution Failed", msg);
    }
    http_resume(cx->http);
    ctx_free(cx);
}

static void sse_event(http_stream *st, const char *event, json_t *data)
{
    char *s = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (!s)
        return;
    size_t n = strlen(s) + (event ? strlen(event) : 0) + 32;
    char *frame = malloc(n);
    if (frame) {
        int len = event ? snprintf(frame, n, "event: %s\ndata: %s\n\n", event, s) : snprintf(frame, n, "data: %s\n\n", s);
        http_stream_write(st, frame, (size_t)len);
        free(frame);
    }
    free(s);
}

/* The model's first piece (or a complete answer without one): the status
 * line and headers go out now. NULL when the stream could not be made (then
 * answered 500). */
static http_stream *stream_open(execute_ctx *cx)
{
    if (cx->stream)
        return cx->stream;
    http_add_header(cx->http, "X-Execution-Id", cx->exec_id);
    cx->stream = http_reply_stream(cx->http, 200, "text/event-stream");
    api_stream_flow(cx->stream, cx->valve);
    http_resume(cx->http);
    cx->http = NULL; /* answered */
    return cx->stream;
}

static void stream_chunk(void *ud, const char *text, size_t len)
{
    execute_ctx *cx = ud;
    if ((cx->stream || cx->http) && stream_open(cx))
        sse_event(cx->stream, NULL, json_pack("{s:s%}", "content", text, len));
}

static void stream_finish(void *ud, const exec_outcome *out)
{
    execute_ctx *cx = ud;
    const engine_result *res = out->res;
    if (!cx->stream && cx->http && out->http_status != 200) {
        sync_finish(cx, out); /* nothing was sent: the same answer as without a stream */
        return;
    }
    if (!cx->stream && (!cx->http || !stream_open(cx))) {
        ctx_free(cx);
        return;
    }
    if (out->http_status == 200)
        sse_event(cx->stream, "done",
                  json_pack("{s:s, s:s, s:s?, s:o, s:I, s:s?}", "prompt_execution_id", out->execution_id, "status",
                            out->status, "model", res->model, "usage", usage_json(res), "duration_ms",
                            (json_int_t)res->duration_ms, "finish_reason", res->finish_reason));
    else
        sse_event(cx->stream, "error",
                  json_pack("{s:s, s:s, s:s, s:i}", "prompt_execution_id", out->execution_id, "status", "failed",
                            "error", res->error ? res->error : "the model call failed", "http_status",
                            out->http_status));
    http_stream_close(cx->stream);
    ctx_free(cx);
}

static void execute(api_req *rq, int streaming)
{
    const char *id = api_param(rq, "id");
    json_t *root = NULL, *messages = NULL, *used = NULL, *missing = NULL;
    char *rendered = NULL, *vars_text = NULL;
    store_prompt p = {0};
    store_version v = {0};
    api_run_params prm;
    if (api_reject_bad_id(rq, id, "Prompt") || api_read_body(rq, &root))
        return;
    if (api_run_params_parse(rq, root, &prm))
        goto out;
    const char *path_version = api_param(rq, "version_id");
    if (path_version) {
        if (api_reject_bad_id(rq, path_version, "Version"))
            goto out;
        prm.version_id = path_version;
    }
    int rc = store_prompt_get(rq->app->store, rq->who.org_id, id, rq->who.user_id, &p);
    if (rc != STORE_OK) {
        api_store_error(rq, rc, "Prompt");
        goto out;
    }
    const char *content = p.content, *version_id = p.current_version_id;
    long version_number = p.versions_count;
    if (prm.version_id) {
        rc = store_version_get(rq->app->store, rq->who.org_id, id, prm.version_id, &v);
        if (rc != STORE_OK) {
            api_store_error(rq, rc, "Version");
            goto out;
        }
        content = v.content;
        version_id = v.id;
        version_number = v.number;
    }
    template_error terr;
    if (template_render(content, prm.variables, &rendered, &used, &missing, &terr) != 0) {
        http_error(rq->http, 422, NULL, "prompt.content", "The stored template is malformed: %s", terr.message);
        goto out;
    }
    if (json_array_size(missing) > 0) {
        char *names = json_dumps(missing, JSON_COMPACT);
        http_error(rq->http, 422, NULL, "variables", "Missing template variables: %s", names ? names : "?");
        free(names);
        goto out;
    }
    if (!(messages = json_pack("[{s:s, s:s}]", "role", "user", "content", rendered)) ||
        !(vars_text = prm.variables ? json_dumps(prm.variables, JSON_COMPACT) : strdup("{}"))) {
        http_error(rq->http, 500, NULL, NULL, "Out of memory");
        goto out;
    }

    execute_ctx *cx = calloc(1, sizeof *cx);
    if (!cx) {
        http_error(rq->http, 500, NULL, NULL, "Out of memory");
        goto out;
    }
    cx->http = rq->http;
    /* a client that stops reading pauses the model, not the server's memory */
    cx->valve = streaming ? engine_valve_new(rq->app->engine) : NULL;
    id_new(cx->exec_id);
    exec_request req = {.messages = messages, .ud = cx};
    api_run_fill_record(rq, &prm, &req.rec);
    memcpy(req.rec.prompt_id, p.id, sizeof req.rec.prompt_id);
    snprintf(req.rec.version_id, sizeof req.rec.version_id, "%s", version_id);
    req.rec.version_number = version_number;
    snprintf(req.rec.source, sizeof req.rec.source, "prompt");
    req.rec.rendered_prompt = rendered;
    req.rec.variables = vars_text;
    req.rec.stream = streaming;
    memcpy(req.rec.id, cx->exec_id, sizeof req.rec.id);
    req.on_chunk = streaming ? stream_chunk : NULL;
    req.on_finish = streaming ? stream_finish : sync_finish;
    req.valve = cx->valve;

    /* suspended before the engine can call back; a stream's status line
     * waits for the model's first piece (stream_open) */
    http_suspend(rq->http);
    char exec_id[ID_LEN + 1];
    int erc = exec_start(rq->app->store, rq->app->engine, rq->app->recorder, &req, exec_id);
    if (erc != EXEC_OK) {
        api_run_start_error(rq, erc, prm.model);
        http_resume(rq->http);
        ctx_free(cx);
    }
    /* from here on the request may already be answered: do not touch rq->http */
out:
    free(rendered);
    free(vars_text);
    json_decref(messages);
    json_decref(used);
    json_decref(missing);
    json_decref(root);
    store_prompt_clear(&p);
    store_version_clear(&v);
}

static void prompt_execute(api_req *rq) { execute(rq, 0); }
static void prompt_execute_stream(api_req *rq) { execute(rq, 1); }

int api_routes_execute(app *a)
{
    return api_route(a, "POST", "/prompts/:id/execute", prompt_execute, 0) ||
           api_route(a, "POST", "/prompts/:id/execute/stream", prompt_execute_stream, 0) ||
           api_route(a, "POST", "/prompts/:id/versions/:version_id/execute", prompt_execute, 0) ||
           api_route(a, "POST", "/prompts/:id/versions/:version_id/execute/stream", prompt_execute_stream, 0);
}
