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
 * "logprobs" (with "top_logprobs") reaches an OpenAI-compatible model like any
 * option, and its log probabilities come back in choices[].logprobs, each
 * streamed chunk's with that chunk's text.
 *
 * "n" (1..16) asks for n choices: each is a model call and an execution of its
 * own, started together (so usage is the sum of what the calls reported, and
 * X-Execution-Id lists the n ids, comma-separated). Streamed, the choices'
 * chunks interleave, told apart by their index, as OpenAI's do. If a choice
 * fails, a complete answer is that failure (the other choices stay recorded).
 *
 * A stream holds its status line until the model's first byte (the request
 * stays suspended meanwhile: no thread waits), so a stream that cannot start
 * (connection refused, upstream 5xx, timeout, the provider refusing the
 * request) is a plain error answer the SDKs raise on, exactly as the complete
 * answer would be. Once any choice has sent a piece, the 200 and the role
 * chunks are out: a choice failing later gets an error chunk, and the stream
 * still ends with [DONE] when every choice has finished. With n > 1 the
 * stream opens with the first piece of any choice; a choice that failed
 * before that gets its error chunk right after the role chunks, and only
 * when every choice fails before a piece is the answer an error status (the
 * first failure's, as the complete answer would be).
 *
 * A provider's refusal (its 4xx: a context too long, a bad parameter, a model
 * it does not have) reaches the client as that status with the provider's
 * message, type, code and param; its outages are 502 / 504.
 *
 * Authentication is the promptd key as `Authorization: Bearer <key>`.
 * Errors use OpenAI's envelope {"error": {"message", "type", "param", "code"}}.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/api_run.h"
#include "api/api_stream.h"
#include "core/execution.h"
#include "core/ids.h"
#include "engine/engine.h"
#include "providers/provider.h"

/* GATEWAY_MAX_N choices at most: each is a model call of its own. */
enum { GATEWAY_MAX_N = 16 };

/* One choice of a request: its own execution and model call. */
typedef struct gateway_choice {
    struct gateway_ctx *cx;
    int index;
    json_t *logprobs; /* stream: a chunk's log probabilities, waiting for its text */
    char exec_id[ID_LEN + 1];
    /* sync: the answer, kept until every choice has one */
    json_t *message, *choice_logprobs;
    char finish_reason[32];
    /* stream: failed before the stream opened (lock): its error chunk, sent at the opening */
    char *early_error;
    int early_timeout;
} gateway_choice;

/* One request. With n > 1 the choices finish in any order, on the engine and
 * recorder threads: lock guards the tallies, and whoever finishes last (the
 * starting thread holds one count until every choice is started) answers. */
typedef struct gateway_ctx {
    http_req *http;      /* until answered: then another thread may have freed it */
    http_stream *stream; /* a stream's body, once its status line went out (lock) */
    engine_valve *valve; /* a stream's flow control, shared by its choices (api_stream.h); ours, or NULL */
    int streaming;
    int answered; /* lock: the status line is decided (stream opened, or an error answered) */
    int include_usage;
    long created;
    char model[256];
    char id[64];
    pthread_mutex_t lock;
    int pending; /* choices not finished, plus one while starting */
    int n;
    long prompt_tokens, completion_tokens, total_tokens;
    long long upstream_us; /* the longest choice's */
    int failed_status;     /* the first failure's HTTP status, 0 if none */
    enum store_failure unrecorded; /* lock: a choice whose record could not be written, why (Retry-After) */
    char *failed_error;    /* its message (malloc'd: most requests never fail) */
    /* its provider's words when it was a refusal (malloc'd), else NULL */
    char *failed_type, *failed_code, *failed_param;
    gateway_choice choices[];
} gateway_ctx;

static void gateway_free(gateway_ctx *cx)
{
    for (int i = 0; i < cx->n; i++) {
        json_decref(cx->choices[i].logprobs);
        json_decref(cx->choices[i].message);
        json_decref(cx->choices[i].choice_logprobs);
        free(cx->choices[i].early_error);
    }
    pthread_mutex_destroy(&cx->lock);
    engine_valve_unref(cx->valve);
    free(cx->failed_error);
    free(cx->failed_type);
    free(cx->failed_code);
    free(cx->failed_param);
    free(cx);
}

/* Count one finished choice (or the starter's count); 1 if it was the last. */
static int gateway_done_one(gateway_ctx *cx, const engine_result *res, int http_status, const char *error)
{
    pthread_mutex_lock(&cx->lock);
    if (res && http_status == 200) {
        cx->prompt_tokens += res->prompt_tokens;
        cx->completion_tokens += res->completion_tokens;
        cx->total_tokens += res->total_tokens;
    }
    if (res && res->upstream_us > cx->upstream_us)
        cx->upstream_us = res->upstream_us;
    if (http_status != 200 && !cx->failed_status) {
        cx->failed_status = http_status;
        cx->failed_error = strdup(error);
        if (res && res->status == ENGINE_ERR_REJECTED) { /* lost to out of memory: a plain error then */
            cx->failed_type = strdup(res->rejection.type ? res->rejection.type : "");
            cx->failed_code = strdup(res->rejection.code ? res->rejection.code : "");
            cx->failed_param = strdup(res->rejection.param ? res->rejection.param : "");
        }
    }
    int last = --cx->pending == 0;
    pthread_mutex_unlock(&cx->lock);
    return last;
}

static json_t *usage_json(long prompt_tokens, long completion_tokens, long total_tokens)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)prompt_tokens, "completion_tokens",
                     (json_int_t)completion_tokens, "total_tokens", (json_int_t)total_tokens);
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

/* A chunk for one choice; it takes the choice's waiting log probabilities. */
static json_t *chunk(gateway_choice *ch, json_t *delta, const char *finish_reason)
{
    const gateway_ctx *cx = ch->cx;
    json_t *logprobs = ch->logprobs ? ch->logprobs : json_null();
    ch->logprobs = NULL;
    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:o, s:s?}]}", "id", cx->id, "object", "chat.completion.chunk",
                     "created", (json_int_t)cx->created, "model", cx->model, "choices", "index", ch->index, "delta",
                     delta, "logprobs", logprobs, "finish_reason", finish_reason);
}

static void sse_error(http_stream *st, const char *code, const char *message)
{
    sse_data(st, json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", message, "type", "api_error", "param",
                           "code", code));
}

static void on_logprobs(void *ud, const json_t *logprobs)
{
    gateway_choice *ch = ud;
    json_decref(ch->logprobs); /* a chunk that had no text: its entries go with the next */
    ch->logprobs = json_deep_copy(logprobs);
}

/* The X-Execution-Id header: every choice's id (made before the calls start). */
static void add_ids_header(gateway_ctx *cx)
{
    char ids[GATEWAY_MAX_N * (ID_LEN + 2)];
    size_t off = 0;
    for (int i = 0; i < cx->n; i++)
        if (cx->choices[i].exec_id[0])
            off += (size_t)snprintf(ids + off, sizeof ids - off, "%s%s", off ? "," : "", cx->choices[i].exec_id);
    if (off)
        http_add_header(cx->http, "X-Execution-Id", ids);
}

/* The model's first byte is here: send the status line, the headers and, like
 * OpenAI, each choice's first chunk naming the role. Called with cx->lock
 * held; returns the stream to write to, NULL when the request was already
 * answered with an error (or the stream could not be made: then answered 500). */
static http_stream *stream_open(gateway_ctx *cx)
{
    if (cx->answered)
        return cx->stream;
    cx->answered = 1;
    add_ids_header(cx);
    if (!(cx->stream = http_reply_stream(cx->http, 200, "text/event-stream"))) {
        http_resume(cx->http); /* answered 500 */
        return NULL;
    }
    api_stream_flow(cx->stream, cx->valve);
    /* built here, not with chunk(): a choice's waiting log probabilities
     * belong to its next text chunk (and to the engine thread) */
    for (int i = 0; i < cx->n; i++)
        sse_data(cx->stream,
                 json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:n, s:n}]}", "id", cx->id, "object",
                           "chat.completion.chunk", "created", (json_int_t)cx->created, "model", cx->model, "choices",
                           "index", i, "delta", "role", "assistant", "content", "", "logprobs", "finish_reason"));
    for (int i = 0; i < cx->n; i++) /* the choices that failed before the first piece */
        if (cx->choices[i].early_error)
            sse_error(cx->stream, cx->choices[i].early_timeout ? "upstream_timeout" : "upstream_error",
                      cx->choices[i].early_error);
    http_resume(cx->http);
    return cx->stream;
}

static http_stream *stream_for_piece(gateway_ctx *cx)
{
    pthread_mutex_lock(&cx->lock);
    http_stream *st = stream_open(cx);
    pthread_mutex_unlock(&cx->lock);
    return st;
}

static void on_chunk(void *ud, const char *text, size_t len)
{
    gateway_choice *ch = ud;
    http_stream *st = stream_for_piece(ch->cx);
    if (st) /* NULL: another choice failed first and answered for the request */
        sse_data(st, chunk(ch, json_pack("{s:s%}", "content", text, len), NULL));
}

static void on_tool_chunk(void *ud, const json_t *delta)
{
    gateway_choice *ch = ud;
    http_stream *st = stream_for_piece(ch->cx);
    if (st)
        sse_data(st, chunk(ch, json_pack("{s:[O]}", "tool_calls", delta), NULL));
}

/* The request's error answer: the first failure (or out of memory), in
 * OpenAI's envelope; a provider's refusal keeps its status and words. */
static void answer_error(gateway_ctx *cx)
{
    api_run_retry_after(cx->http, cx->unrecorded);
    if (cx->failed_type && cx->failed_code && cx->failed_param && cx->failed_status < 500) {
        http_upstream_error up = {.type = cx->failed_type, .code = cx->failed_code, .param = cx->failed_param};
        http_error_upstream(cx->http, cx->failed_status, NULL, &up, "%s",
                            cx->failed_error ? cx->failed_error : "The model call failed");
    } else {
        http_error(cx->http, cx->failed_status ? cx->failed_status : 500, NULL, NULL, "%s",
                   cx->failed_error    ? cx->failed_error
                   : cx->failed_status ? "The model call failed"
                                       : "Out of memory");
    }
}

/* The stream's end, once every choice has finished (the starter's count keeps
 * it from coming before every choice started). Never opened: every choice
 * failed before a piece, and the request answers the first failure. */
static void stream_end(gateway_ctx *cx)
{
    if (!cx->answered) {
        add_ids_header(cx);
        http_set_upstream_us(cx->http, cx->upstream_us);
        answer_error(cx);
        http_resume(cx->http);
    } else if (cx->stream) {
        if (cx->include_usage && !cx->failed_status)
            sse_data(cx->stream,
                     json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", cx->id, "object", "chat.completion.chunk",
                               "created", (json_int_t)cx->created, "model", cx->model, "choices", "usage",
                               usage_json(cx->prompt_tokens, cx->completion_tokens, cx->total_tokens)));
        http_stream_write(cx->stream, "data: [DONE]\n\n", 14);
        http_stream_close(cx->stream);
    }
    gateway_free(cx);
}

/* What a failed choice says: the provider's own message for a refusal (its
 * words are the point), else the error naming the execution. */
static void failure_text(const exec_outcome *out, char *buf, size_t len)
{
    if (out->res->status == ENGINE_ERR_REJECTED || out->unrecorded) /* unrecorded: named nowhere */
        snprintf(buf, len, "%s", api_run_error_text(out->res));
    else
        snprintf(buf, len, "%s (execution %s)", api_run_error_text(out->res), out->execution_id);
}

/* A choice failed (stream): an error chunk now if the stream is open, else
 * kept for its opening (or for the error answer, should all fail). */
static void stream_choice_failed(gateway_choice *ch, int timeout, const char *error)
{
    gateway_ctx *cx = ch->cx;
    pthread_mutex_lock(&cx->lock);
    if (cx->stream)
        sse_error(cx->stream, timeout ? "upstream_timeout" : "upstream_error", error);
    else if (!cx->answered) {
        ch->early_error = strdup(error); /* out of memory: that choice's error chunk is lost, [DONE] still comes */
        ch->early_timeout = timeout;
    }
    pthread_mutex_unlock(&cx->lock);
}

static void on_finish_stream(void *ud, const exec_outcome *out)
{
    gateway_choice *ch = ud;
    gateway_ctx *cx = ch->cx;
    const engine_result *res = out->res;
    char error[700];
    failure_text(out, error, sizeof error);
    if (out->http_status == 200) {
        pthread_mutex_lock(&cx->lock);
        http_stream *st = stream_open(cx); /* an answer without a piece (empty text) opens it too */
        pthread_mutex_unlock(&cx->lock);
        if (st)
            sse_data(st, chunk(ch, json_object(), res->finish_reason ? res->finish_reason : "stop"));
    } else {
        stream_choice_failed(ch, out->http_status == 504, error);
    }
    if (gateway_done_one(cx, res, out->http_status, error))
        stream_end(cx);
}

/* The answer, once every choice has finished: all choices, or the first failure. */
static void sync_answer(gateway_ctx *cx)
{
    add_ids_header(cx);
    http_set_upstream_us(cx->http, cx->upstream_us);
    json_t *choices = cx->failed_status ? NULL : json_array();
    for (int i = 0; choices && i < cx->n; i++) {
        gateway_choice *ch = &cx->choices[i];
        json_array_append_new(choices, json_pack("{s:i, s:O, s:O, s:s}", "index", i, "message", ch->message, "logprobs",
                                                 ch->choice_logprobs ? ch->choice_logprobs : json_null(),
                                                 "finish_reason", ch->finish_reason));
    }
    if (choices && json_array_size(choices) == (size_t)cx->n)
        http_reply_json(cx->http, 200,
                        json_pack("{s:s, s:s, s:I, s:s, s:o, s:o, s:n}", "id", cx->id, "object", "chat.completion",
                                  "created", (json_int_t)cx->created, "model", cx->model, "choices", choices, "usage",
                                  usage_json(cx->prompt_tokens, cx->completion_tokens, cx->total_tokens),
                                  "system_fingerprint"));
    else {
        json_decref(choices);
        answer_error(cx);
    }
    http_resume(cx->http);
    gateway_free(cx);
}

static void on_finish_sync(void *ud, const exec_outcome *out)
{
    gateway_choice *ch = ud;
    gateway_ctx *cx = ch->cx;
    const engine_result *res = out->res;
    char error[700] = "";
    pthread_mutex_lock(&cx->lock);
    /* an execution that could not be written is not named in X-Execution-Id */
    snprintf(ch->exec_id, sizeof ch->exec_id, "%s", out->unrecorded ? "" : out->execution_id);
    if (out->unrecorded && !cx->unrecorded)
        cx->unrecorded = out->unrecorded;
    pthread_mutex_unlock(&cx->lock);
    if (out->http_status == 200) {
        /* like OpenAI: content null when the model only asked for tools */
        ch->message = json_pack("{s:s, s:o}", "role", "assistant", "content",
                                res->tool_calls && res->output_len == 0
                                    ? json_null()
                                    : json_stringn(res->output ? res->output : "", res->output_len));
        if (ch->message && res->tool_calls)
            json_object_set_new(ch->message, "tool_calls", json_deep_copy(res->tool_calls));
        ch->choice_logprobs = res->logprobs ? json_deep_copy(res->logprobs) : NULL;
        snprintf(ch->finish_reason, sizeof ch->finish_reason, "%s", res->finish_reason ? res->finish_reason : "stop");
        if (cx->n == 1 && res->model) /* the model that answered, after aliases and fallbacks */
            snprintf(cx->model, sizeof cx->model, "%s", res->model);
    } else {
        failure_text(out, error, sizeof error);
    }
    int status = out->http_status == 200 && !ch->message ? 500 : out->http_status;
    if (gateway_done_one(cx, res, status, status == 500 && !error[0] ? "Out of memory" : error))
        sync_answer(cx);
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
    if (n && !json_is_null(n) &&
        !(json_is_integer(n) && json_integer_value(n) >= 1 && json_integer_value(n) <= GATEWAY_MAX_N)) {
        http_error(rq->http, 400, NULL, "n", "'n' must be an integer from 1 to %d", GATEWAY_MAX_N);
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

    int n_choices = n && !json_is_null(n) ? (int)json_integer_value(n) : 1;
    gateway_ctx *cx = calloc(1, sizeof *cx + (size_t)n_choices * sizeof cx->choices[0]);
    if (!cx || pthread_mutex_init(&cx->lock, NULL) != 0) {
        free(cx);
        http_error(rq->http, 500, NULL, NULL, "Out of memory");
        goto out;
    }
    cx->http = rq->http;
    cx->n = n_choices;
    cx->pending = n_choices + 1;
    cx->created = (long)time(NULL);
    cx->include_usage = json_is_true(json_object_get(json_object_get(root, "stream_options"), "include_usage"));
    if (engine_model_resolve(rq->app->engine, prm.model, cx->model, sizeof cx->model) != 0)
        snprintf(cx->model, sizeof cx->model, "%s", prm.model ? prm.model : "");

    exec_request req = {
        .messages = messages, .rich_messages = rich_messages, .options = json_object_size(options) ? options : NULL};
    api_run_fill_record(rq, &prm, &req.rec);
    snprintf(req.rec.source, sizeof req.rec.source, "chat");
    req.rec.rendered_prompt = (char *)(last_user ? json_string_value(last_user) : "");
    req.rec.stream = streaming;
    req.on_chunk = streaming ? on_chunk : NULL;
    req.on_tool_chunk = streaming ? on_tool_chunk : NULL;
    req.on_logprobs = streaming ? on_logprobs : NULL;
    req.on_finish = streaming ? on_finish_stream : on_finish_sync;
    /* one valve for every choice: the client that stops reading pauses them all */
    cx->valve = streaming ? engine_valve_new(rq->app->engine) : NULL;
    req.valve = cx->valve;

    /* Suspended until the answer (or, streamed, the model's first byte) is
     * here; every choice's execution id is made now, so the header the first
     * byte sends names them all even while later choices are starting. */
    http_suspend(rq->http);
    cx->streaming = streaming;
    char chunk_id[ID_LEN + 1];
    id_new(chunk_id);
    snprintf(cx->id, sizeof cx->id, "chatcmpl-%s", chunk_id);
    for (int i = 0; i < n_choices; i++) {
        cx->choices[i].cx = cx;
        cx->choices[i].index = i;
        id_new(cx->choices[i].exec_id);
    }
    int started = 0, erc = EXEC_OK;
    for (; started < n_choices; started++) {
        char exec_id[ID_LEN + 1];
        req.ud = &cx->choices[started];
        memcpy(req.rec.id, cx->choices[started].exec_id, sizeof req.rec.id);
        if ((erc = exec_start(rq->app->store, rq->app->engine, rq->app->recorder, &req, exec_id)) != EXEC_OK)
            break;
    }
    /* the choices that did not start have no execution to name (under the
     * lock: a first piece may be writing the header from the engine thread) */
    pthread_mutex_lock(&cx->lock);
    for (int i = started; i < n_choices; i++)
        cx->choices[i].exec_id[0] = '\0';
    pthread_mutex_unlock(&cx->lock);
    if (started == 0) { /* nothing runs: answer here (no callback can come) */
        api_run_start_error(rq, erc, prm.model);
        http_resume(rq->http);
        gateway_free(cx);
        goto out;
    }
    /* the choices that did not start count as failed; then the starter's own count */
    for (int i = started; i < n_choices; i++) {
        if (streaming)
            stream_choice_failed(&cx->choices[i], 0, "A choice's execution could not start");
        gateway_done_one(cx, NULL, 503, "A choice's execution could not start");
    }
    /* from here on the request may be answered: do not touch rq->http */
    if (gateway_done_one(cx, NULL, 200, NULL)) {
        if (streaming)
            stream_end(cx);
        else
            sync_answer(cx);
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
