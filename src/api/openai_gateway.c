/*
 * openai_gateway.c — an OpenAI-compatible surface, so apps built on the
 * OpenAI SDKs point their base URL at promptd (http://HOST:PORT/v1) and keep
 * working; every call is recorded as an execution (source "chat").
 *
 *   POST /v1/chat/completions   {model, messages, temperature, max_tokens | max_completion_tokens,
 *                                stream, stream_options: {include_usage}, tools, tool_choice, ...}
 *   GET  /v1/models
 *   GET  /v1/models/{model}     (model ids have slashes: "openai/gpt-4o")
 *
 * Tool calling works as with OpenAI: "tools" and "tool_choice" go to the
 * model, its tool calls come back in message.tool_calls (streamed: as
 * delta.tool_calls pieces) with finish_reason "tool_calls", and the app sends
 * the results back as "tool" messages next to the assistant's tool_calls.
 * Every other field (top_p, stop, response_format, seed, ...) goes to an
 * OpenAI-compatible model as it is, so a server's own extras work too; an
 * Anthropic model gets the ones the Messages API can express (top_p, top_k,
 * stop, tools, tool_choice, parallel_tool_calls, user) and any other is a 400
 * naming it; echo ignores them. The tool calls are recorded with the
 * execution ("tool_calls").
 *
 * Authentication is the promptd key as `Authorization: Bearer <key>`.
 * Errors use OpenAI's envelope {"error": {"message", "type", "param", "code"}}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/api_run.h"
#include "core/execution.h"
#include "core/ids.h"
#include "engine/engine.h"
#include "providers/provider.h"

typedef struct gateway_ctx {
    http_req *http;
    http_stream *stream;
    int include_usage;
    long created;
    char model[256];
    char id[64];
} gateway_ctx;

static json_t *usage_json(const engine_result *res)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)res->prompt_tokens, "completion_tokens",
                     (json_int_t)res->completion_tokens, "total_tokens", (json_int_t)res->total_tokens);
}

static void sse_data(http_stream *st, json_t *data)
{
    char *s = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (!s)
        return;
    size_t n = strlen(s);
    char *frame = malloc(n + 9);
    if (frame) {
        memcpy(frame, "data: ", 6);
        memcpy(frame + 6, s, n);
        memcpy(frame + 6 + n, "\n\n", 2);
        http_stream_write(st, frame, n + 8);
        free(frame);
    }
    free(s);
}

static json_t *chunk(const gateway_ctx *cx, json_t *delta, const char *finish_reason)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:s?}]}", "id", cx->id, "object", "chat.completion.chunk",
                     "created", (json_int_t)cx->created, "model", cx->model, "choices", "index", 0, "delta", delta,
                     "finish_reason", finish_reason);
}

static void on_chunk(void *ud, const char *text, size_t len)
{
    gateway_ctx *cx = ud;
    sse_data(cx->stream, chunk(cx, json_pack("{s:s%}", "content", text, len), NULL));
}

static void on_tool_chunk(void *ud, const json_t *delta)
{
    gateway_ctx *cx = ud;
    sse_data(cx->stream, chunk(cx, json_pack("{s:[O]}", "tool_calls", delta), NULL));
}

static void on_finish_stream(void *ud, const exec_outcome *out)
{
    gateway_ctx *cx = ud;
    const engine_result *res = out->res;
    if (out->http_status == 200) {
        sse_data(cx->stream, chunk(cx, json_object(), res->finish_reason ? res->finish_reason : "stop"));
        if (cx->include_usage)
            sse_data(cx->stream, json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", cx->id, "object",
                                           "chat.completion.chunk", "created", (json_int_t)cx->created, "model",
                                           cx->model, "choices", "usage", usage_json(res)));
    } else {
        sse_data(cx->stream, json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message",
                                       res->error ? res->error : "the model call failed", "type", "api_error",
                                       "param", "code", out->http_status == 504 ? "upstream_timeout"
                                                                                 : "upstream_error"));
    }
    http_stream_write(cx->stream, "data: [DONE]\n\n", 14);
    http_stream_close(cx->stream);
    free(cx);
}

static void on_finish_sync(void *ud, const exec_outcome *out)
{
    gateway_ctx *cx = ud;
    const engine_result *res = out->res;
    http_add_header(cx->http, "X-Execution-Id", out->execution_id);
    http_set_upstream_us(cx->http, res->upstream_us);
    if (out->http_status == 200) {
        /* like OpenAI: content null when the model only asked for tools */
        json_t *message = json_pack("{s:s, s:o}", "role", "assistant", "content",
                                    res->tool_calls && res->output_len == 0
                                        ? json_null()
                                        : json_stringn(res->output ? res->output : "", res->output_len));
        if (message && res->tool_calls)
            json_object_set_new(message, "tool_calls", json_deep_copy(res->tool_calls));
        json_t *body =
            json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:s}], s:o, s:n}", "id", cx->id, "object", "chat.completion",
                      "created", (json_int_t)cx->created, "model", res->model ? res->model : cx->model, "choices",
                      "index", 0, "message", message, "finish_reason", res->finish_reason ? res->finish_reason : "stop",
                      "usage", usage_json(res), "system_fingerprint");
        http_reply_json(cx->http, 200, body);
    } else {
        http_error(cx->http, out->http_status, NULL, NULL, "%s (execution %s)",
                   res->error ? res->error : "the model call failed", out->execution_id);
    }
    http_resume(cx->http);
    free(cx);
}

/* The text of a message's content: a string, null (""), or an array of parts
 * whose "text" strings are joined with newlines. A part without text but with
 * a "type" (image_url, input_audio, ...) sets *other and adds no text. */
static int content_text(json_t *content, json_t **out, int *other)
{
    *other = 0;
    if (json_is_string(content)) {
        *out = json_incref(content);
        return 0;
    }
    if (json_is_null(content)) {
        *out = json_string("");
        return 0;
    }
    if (!json_is_array(content))
        return -1;
    size_t i, total = 0;
    json_t *part;
    json_array_foreach(content, i, part)
    {
        json_t *text = json_object_get(part, "text");
        if (!json_is_object(part))
            return -1;
        if (json_is_string(text))
            total += json_string_length(text) + 1;
        else if (!text && json_is_string(json_object_get(part, "type")))
            *other = 1;
        else
            return -1;
    }
    char *buf = malloc(total + 1), *p = buf;
    if (!buf)
        return -1;
    json_array_foreach(content, i, part)
    {
        json_t *text = json_object_get(part, "text");
        if (!text)
            continue;
        if (p != buf)
            *p++ = '\n';
        memcpy(p, json_string_value(text), json_string_length(text));
        p += json_string_length(text);
    }
    *out = json_stringn(buf, (size_t)(p - buf));
    free(buf);
    return *out ? 0 : -1;
}

/* Parts other than text, in a user message: an OpenAI-compatible model gets
 * them as they are; an Anthropic one takes images (image_url with an http(s)
 * or a base64 data: URL) and nothing else. */
static int check_parts(api_req *rq, size_t i, const char *role, json_t *content, const char *wire)
{
    size_t k;
    json_t *part;
    if (strcmp(role, "user")) {
        http_error(rq->http, 400, NULL, "messages",
                   "messages[%zu].content: only user messages may have parts "
                   "other than text",
                   i);
        return -1;
    }
    json_array_foreach(content, k, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));
        if (json_object_get(part, "text"))
            continue;
        const char *url = json_string_value(json_object_get(json_object_get(part, "image_url"), "url"));
        if (!strcmp(type, "image_url") && !url) {
            http_error(rq->http, 400, NULL, "messages", "messages[%zu].content[%zu].image_url.url must be a string", i,
                       k);
            return -1;
        }
        if (wire && !strcmp(wire, "anthropic") && !provider_anthropic_part_ok(part)) {
            http_error(rq->http, 400, NULL, "messages",
                       "messages[%zu].content[%zu]: Anthropic models take text "
                       "and images (an http(s) URL or a base64 data:image/ URL) only",
                       i, k);
            return -1;
        }
    }
    return 0;
}

/* An assistant message's tool_calls: [{id, type: "function", function: {name, arguments}}].
 * For an Anthropic model the arguments must be a JSON object (they become its "input"). */
static int check_tool_calls(api_req *rq, size_t i, json_t *calls, const char *wire)
{
    size_t k;
    json_t *c;
    if (!json_is_array(calls) || json_array_size(calls) == 0)
        goto bad;
    json_array_foreach(calls, k, c)
    {
        json_t *fn = json_object_get(c, "function");
        const char *type = json_string_value(json_object_get(c, "type"));
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        if (!json_is_string(json_object_get(c, "id")) || (type && strcmp(type, "function")) ||
            !json_is_string(json_object_get(fn, "name")) || !args)
            goto bad;
        if (wire && !strcmp(wire, "anthropic") && !provider_anthropic_arguments_ok(args)) {
            http_error(rq->http, 400, NULL, "messages",
                       "messages[%zu].tool_calls[%zu].function.arguments must "
                       "be a JSON object for this model",
                       i, k);
            return -1;
        }
    }
    return 0;
bad:
    http_error(rq->http, 400, NULL, "messages",
               "messages[%zu].tool_calls must be an array of {\"id\", \"type\": "
               "\"function\", \"function\": {\"name\", \"arguments\"}}",
               i);
    return -1;
}

/* Validate and normalise messages into [{"role","content"}] plus, where given,
 * "tool_calls" (assistant) and "tool_call_id" (tool); a user message with parts
 * other than text keeps its parts as "content". *rich is set when any message
 * carries such things; *last_user is a new reference to the last user
 * message's text. Answers 400 on error. */
static json_t *normalise_messages(api_req *rq, json_t *messages, const char *wire, json_t **last_user, int *rich)
{
    *last_user = NULL;
    *rich = 0;
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        http_error(rq->http, 400, NULL, "messages", "'messages' must be a non-empty array");
        return NULL;
    }
    json_t *norm = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *text = NULL, *calls = json_object_get(m, "tool_calls");
        const char *call_id = json_string_value(json_object_get(m, "tool_call_id"));
        if (calls && json_is_null(calls))
            calls = NULL;
        if (!json_is_object(m) || !role ||
            (strcmp(role, "system") && strcmp(role, "developer") && strcmp(role, "user") && strcmp(role, "assistant") &&
             strcmp(role, "tool"))) {
            http_error(rq->http, 400, NULL, "messages",
                       "messages[%zu].role must be system, developer, user, "
                       "assistant or tool",
                       i);
            goto fail;
        }
        if (!strcmp(role, "tool") && !call_id) {
            http_error(rq->http, 400, NULL, "messages",
                       "messages[%zu].tool_call_id must be the id of the tool "
                       "call this message answers",
                       i);
            goto fail;
        }
        if (calls && strcmp(role, "assistant")) {
            http_error(rq->http, 400, NULL, "messages", "messages[%zu].tool_calls is only for assistant messages", i);
            goto fail;
        }
        if (calls && check_tool_calls(rq, i, calls, wire))
            goto fail;
        json_t *content = json_object_get(m, "content");
        if (!content && calls)
            content = json_null(); /* an assistant turn that only calls tools may omit it */
        int other;
        if (content_text(content, &text, &other) != 0) {
            http_error(rq->http, 400, NULL, "messages",
                       "messages[%zu].content must be a string or an array of "
                       "parts",
                       i);
            goto fail;
        }
        if (other && check_parts(rq, i, role, content, wire)) {
            json_decref(text);
            goto fail;
        }
        if (!strcmp(role, "user")) {
            json_decref(*last_user);
            *last_user = json_incref(text);
        }
        if (other) { /* the model gets the parts; the record and echo the text */
            json_decref(text);
            text = json_incref(content);
            *rich = 1;
        }
        json_t *n = json_pack("{s:s, s:o}", "role", !strcmp(role, "developer") ? "system" : role, "content", text);
        if (n && calls) {
            json_object_set(n, "tool_calls", calls);
            *rich = 1;
        }
        if (n && call_id) {
            json_object_set_new(n, "tool_call_id", json_string(call_id));
            *rich = 1;
        }
        json_array_append_new(norm, n);
    }
    return norm;
fail:
    json_decref(*last_user);
    *last_user = NULL;
    json_decref(norm);
    return NULL;
}

/* Why a known option's value is wrong, or NULL. */
static const char *option_problem(const char *key, json_t *v)
{
    static const char tools_shape[] = "'tools' must be an array of {\"type\": \"function\", \"function\": "
                                      "{\"name\", \"description\"?, \"parameters\"?}}";
    if (!strcmp(key, "tools")) {
        size_t k;
        json_t *t;
        if (!json_is_array(v))
            return tools_shape;
        json_array_foreach(v, k, t)
        {
            json_t *fn = json_object_get(t, "function"), *params = json_object_get(fn, "parameters");
            const char *type = json_string_value(json_object_get(t, "type"));
            const char *name = json_string_value(json_object_get(fn, "name"));
            if (!type || strcmp(type, "function") || !name || !*name || (params && !json_is_object(params)))
                return tools_shape;
        }
        return NULL;
    }
    if (!strcmp(key, "tool_choice")) {
        const char *s = json_string_value(v);
        if (s ? strcmp(s, "auto") && strcmp(s, "none") && strcmp(s, "required")
              : !json_is_string(json_object_get(json_object_get(v, "function"), "name")))
            return "'tool_choice' must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", "
                   "\"function\": {\"name\"}}";
        return NULL;
    }
    if (!strcmp(key, "parallel_tool_calls") && !json_is_boolean(v))
        return "'parallel_tool_calls' must be a boolean";
    if (!strcmp(key, "top_p") && (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1))
        return "'top_p' must be a number from 0 to 1";
    if (!strcmp(key, "stop") && !json_is_string(v) && !json_is_array(v))
        return "'stop' must be a string or an array of strings";
    return NULL;
}

/* The request's other fields, for the model (see the top of this file): known
 * ones checked, the rest passed on. Answers 400 naming the field on error. */
static json_t *collect_options(api_req *rq, json_t *root, const char *wire)
{
    /* read by the gateway itself (variables and version_id by the shared run parser) */
    static const char *const own[] = {"model",      "messages", "stream",    "stream_options", "temperature",
                                      "max_tokens", "n",        "variables", "version_id"};
    json_t *opts = json_object(), *v;
    const char *key;
    if (!opts) {
        http_error(rq->http, 500, NULL, NULL, "Out of memory");
        return NULL;
    }
    json_object_foreach(root, key, v)
    {
        size_t i;
        for (i = 0; i < sizeof own / sizeof own[0] && strcmp(key, own[i]); i++)
            ;
        if (i < sizeof own / sizeof own[0] || json_is_null(v))
            continue;
        const char *why = option_problem(key, v);
        if (why) {
            http_error(rq->http, 400, NULL, key, "%s", why);
            goto fail;
        }
        if (wire && !strcmp(wire, "anthropic") && !provider_anthropic_option_ok(key)) {
            http_error(rq->http, 400, NULL, key, "'%s' is not supported by Anthropic models", key);
            goto fail;
        }
        json_object_set(opts, key, v);
    }
    return opts;
fail:
    json_decref(opts);
    return NULL;
}

static void chat_completions(api_req *rq)
{
    json_t *root = NULL, *messages = NULL, *options = NULL;
    api_run_params prm;
    json_t *last_user = NULL;
    if (api_read_body(rq, &root))
        return;
    if (api_run_params_parse(rq, root, &prm))
        goto out;
    json_t *mct = json_object_get(root, "max_completion_tokens");
    if (mct && !json_is_null(mct)) {
        if (!json_is_integer(mct) || json_integer_value(mct) < 1 || json_integer_value(mct) > API_MAX_TOKENS_MAX) {
            http_error(rq->http, 400, NULL, "max_completion_tokens", "'max_completion_tokens' must be a positive "
                       "integer");
            goto out;
        }
        prm.max_tokens = (long)json_integer_value(mct);
    }
    json_t *n = json_object_get(root, "n");
    if (n && !json_is_null(n) && !(json_is_integer(n) && json_integer_value(n) == 1)) {
        http_error(rq->http, 400, NULL, "n", "Only n = 1 is supported");
        goto out;
    }
    json_t *stream = json_object_get(root, "stream");
    if (stream && !json_is_null(stream) && !json_is_boolean(stream)) {
        http_error(rq->http, 400, NULL, "stream", "'stream' must be a boolean");
        goto out;
    }
    int streaming = json_is_true(stream), rich_messages;
    const char *wire = rq->app->engine ? engine_model_wire(rq->app->engine, prm.model) : NULL;
    if (!(messages = normalise_messages(rq, json_object_get(root, "messages"), wire, &last_user, &rich_messages)) ||
        !(options = collect_options(rq, root, wire)))
        goto out;

    gateway_ctx *cx = calloc(1, sizeof *cx);
    if (!cx) {
        http_error(rq->http, 500, NULL, NULL, "Out of memory");
        goto out;
    }
    cx->http = rq->http;
    cx->created = (long)time(NULL);
    cx->include_usage = json_is_true(json_object_get(json_object_get(root, "stream_options"), "include_usage"));
    if (engine_model_resolve(rq->app->engine, prm.model, cx->model, sizeof cx->model) != 0)
        snprintf(cx->model, sizeof cx->model, "%s", prm.model ? prm.model : "");

    exec_request req = {.messages = messages,
                        .rich_messages = rich_messages,
                        .options = json_object_size(options) ? options : NULL,
                        .ud = cx};
    api_run_fill_record(rq, &prm, &req.rec);
    snprintf(req.rec.source, sizeof req.rec.source, "chat");
    req.rec.rendered_prompt = (char *)(last_user ? json_string_value(last_user) : "");
    req.rec.stream = streaming;
    req.on_chunk = streaming ? on_chunk : NULL;
    req.on_tool_chunk = streaming ? on_tool_chunk : NULL;
    req.on_finish = streaming ? on_finish_stream : on_finish_sync;

    char exec_id[ID_LEN + 1];
    if (streaming) {
        if (!(cx->stream = http_reply_stream(rq->http, 200, "text/event-stream"))) {
            free(cx);
            goto out;
        }
    } else {
        http_suspend(rq->http);
    }
    /* chunk ids must be known before the first chunk: use a fresh id, the execution's is in a header */
    char chunk_id[ID_LEN + 1];
    id_new(chunk_id);
    snprintf(cx->id, sizeof cx->id, "chatcmpl-%s", chunk_id);
    /* like OpenAI, the first chunk names the role; written before the call
     * starts, since its pieces arrive on the engine thread */
    if (streaming)
        sse_data(cx->stream, chunk(cx, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL));
    int erc = exec_start(rq->app->store, rq->app->engine, rq->app->recorder, &req, exec_id);
    if (erc != EXEC_OK) {
        if (streaming) {
            sse_data(cx->stream, json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message",
                                           "the execution could not start", "type", "api_error", "param", "code",
                                           "internal_error"));
            http_stream_close(cx->stream);
        } else {
            api_run_start_error(rq, erc, prm.model);
            http_resume(rq->http);
        }
        free(cx);
    } else if (streaming) {
        http_add_header(rq->http, "X-Execution-Id", exec_id);
    }
out:
    json_decref(last_user);
    json_decref(options);
    json_decref(messages);
    json_decref(root);
}

static void list_models(api_req *rq)
{
    json_t *data = rq->app->engine ? engine_models(rq->app->engine) : json_array();
    http_reply_json(rq->http, 200, json_pack("{s:s, s:o}", "object", "list", "data", data ? data : json_array()));
}

/* Any name a completion would take is a model (promptd does not ask upstreams
 * for their catalogues), so the SDKs' models.retrieve works for all of them. */
static void get_model(api_req *rq)
{
    const char *id = api_param(rq, "model");
    json_t *m = rq->app->engine ? engine_model_info(rq->app->engine, id) : NULL;
    if (!m) {
        api_run_unknown_model(rq, id);
        return;
    }
    http_reply_json(rq->http, 200, m);
}

int api_routes_openai(app *a)
{
    return api_route(a, "POST", "/v1/chat/completions", chat_completions, 0) ||
           api_route(a, "GET", "/v1/models", list_models, 0) || api_route(a, "GET", "/v1/models/*model", get_model, 0);
}
