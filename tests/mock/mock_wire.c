/*
 * mock_wire.c — renders the mock's answers in the providers' wire formats:
 * OpenAI chat.completion bodies and chat.completion.chunk SSE streams,
 * Anthropic Messages bodies and their named SSE events, and both providers'
 * error bodies. An answer is either text or 1..8 calls to one tool, possibly
 * after a text part (OpenAI message.tool_calls and tool_calls deltas, one
 * call after the other; Anthropic tool_use blocks and input_json_delta
 * events). Also the deliberately broken variants (malformed JSON, wrong
 * types, missing usage) that the [mock:...] directives ask for.
 */
#include "mock/mock_llm.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ------------------------------------------------------ */

/* Id of tool call k (0-based): "call_mock_K" / "toolu_mock_K", K = k + 1. */
static void tool_call_id(const mock_reply *r, size_t k, char *buf, size_t size)
{
    snprintf(buf, size, "%s%zu", r->api == MOCK_OPENAI ? "call_mock_" : "toolu_mock_", k + 1);
}

/* Number, or the same number as a string when bad_types. */
static json_t *count_value(size_t n, bool bad_types)
{
    char buf[32];

    if (!bad_types)
        return json_integer((json_int_t)n);
    snprintf(buf, sizeof(buf), "%zu", n);
    return json_string(buf);
}

/* The text as a string, or a number instead when bad_types. */
static json_t *text_value(const char *text, size_t len, bool bad_types)
{
    if (bad_types)
        return json_integer((json_int_t)len);
    return json_stringn(text, len);
}

static json_t *usage_object(const mock_reply *r)
{
    if (r->api == MOCK_OPENAI)
        return json_pack("{s:o,s:o,s:o}", "prompt_tokens", count_value(r->prompt_tokens, r->bad_types),
                         "completion_tokens", count_value(r->completion_tokens, r->bad_types), "total_tokens",
                         count_value(r->prompt_tokens + r->completion_tokens, r->bad_types));
    return json_pack("{s:o,s:o}", "input_tokens", count_value(r->prompt_tokens, r->bad_types), "output_tokens",
                     count_value(r->completion_tokens, r->bad_types));
}

static const char *finish_reason(const mock_reply *r)
{
    if (r->api == MOCK_OPENAI)
        return r->tool_name != NULL ? "tool_calls" : r->truncated ? "length" : "stop";
    return r->tool_name != NULL ? "tool_use" : r->truncated ? "max_tokens" : "end_turn";
}

/* Anthropic tool_use "input" of call k: its ARGS object, or a number when
 * bad_types. */
static json_t *tool_input(const mock_reply *r, size_t k)
{
    const char *args = r->tool_args[k];

    if (r->bad_types)
        return text_value(args, strlen(args), true);
    return json_loads(args, 0, NULL);
}

/* Appends v (released) to arr; false (arr untouched) on failure. */
static bool append(json_t *arr, json_t *v) { return json_array_append_new(arr, v) == 0; }

/* Compact JSON text of obj (NULL-safe; obj is released). */
static char *dump_and_free(json_t *obj)
{
    char *s;

    if (obj == NULL)
        return NULL;
    s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return s;
}

/* Cuts a JSON text in half: a strict prefix of an object is never valid. */
static void break_json(char *s)
{
    size_t len = strlen(s);

    s[len > 1 ? len / 2 : len] = '\0';
}

/* ---- non-stream bodies -------------------------------------------------- */

/* Entry k of message.tool_calls. */
/* The logprobs entry of TEXT's piece i: {"token", "logprob", "bytes", "top_logprobs"}. */
static json_t *logprob_entry(const char *p, size_t len, size_t i)
{
    json_t *bytes = json_array();
    for (size_t k = 0; bytes != NULL && k < len; k++)
        if (!append(bytes, json_integer((unsigned char)p[k]))) {
            json_decref(bytes);
            bytes = NULL;
        }
    return json_pack("{s:s%,s:f,s:o,s:[]}", "token", p, len, "logprob", -0.25 * (double)(i + 1), "bytes", bytes,
                     "top_logprobs");
}

/* choices[0].logprobs of a body: an entry per word piece of TEXT, or null
 * without the option or for tool calls. */
static json_t *openai_logprobs(const mock_reply *r)
{
    mock_piece *pieces = NULL;
    json_t *content;
    size_t n;

    if (!r->logprobs || r->tool_name != NULL || r->text == NULL)
        return json_null();
    if ((n = mock_split_pieces(r->text, &pieces)) == (size_t)-1 || (content = json_array()) == NULL) {
        free(pieces);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!append(content, logprob_entry(pieces[i].p, pieces[i].len, i))) {
            json_decref(content);
            free(pieces);
            return NULL;
        }
    free(pieces);
    return json_pack("{s:o,s:n}", "content", content, "refusal");
}

static json_t *openai_tool_call(const mock_reply *r, size_t k)
{
    char id[32];
    const char *args = r->tool_args[k];

    tool_call_id(r, k, id, sizeof(id));
    return json_pack("{s:s,s:s,s:{s:s,s:o}}", "id", id, "type", "function", "function", "name", r->tool_name,
                     "arguments", text_value(args, strlen(args), r->bad_types));
}

/* choices[0].message: text content, or the tool calls with the text before
 * them as content (null without one). */
static json_t *openai_message(const mock_reply *r)
{
    json_t *content = r->text != NULL ? text_value(r->text, strlen(r->text), r->bad_types) : json_null();
    json_t *calls;

    if (r->tool_name == NULL)
        return json_pack("{s:s,s:o}", "role", "assistant", "content", content);
    calls = json_array();
    for (size_t k = 0; calls != NULL && k < r->n_calls; k++)
        if (!append(calls, openai_tool_call(r, k))) {
            json_decref(calls);
            calls = NULL;
        }
    return json_pack("{s:s,s:o,s:o}", "role", "assistant", "content", content, "tool_calls", calls);
}

static json_t *openai_body(const mock_reply *r)
{
    json_t *msg = openai_message(r);
    json_t *choice = json_pack("{s:i,s:o,s:o,s:s}", "index", 0, "message", msg, "logprobs", openai_logprobs(r),
                               "finish_reason", finish_reason(r));
    json_t *body = json_pack("{s:s,s:s,s:I,s:s,s:[o]}", "id", r->id, "object", "chat.completion", "created",
                             (json_int_t)r->created, "model", r->model, "choices", choice);

    if (body != NULL && !r->no_usage && json_object_set_new(body, "usage", usage_object(r)) != 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}

/* Content blocks: the text (if any), then one tool_use per call. */
static json_t *anthropic_content(const mock_reply *r)
{
    json_t *content = json_array();
    bool ok = content != NULL;

    if (ok && r->text != NULL)
        ok = append(content,
                    json_pack("{s:s,s:o}", "type", "text", "text", text_value(r->text, strlen(r->text), r->bad_types)));
    for (size_t k = 0; ok && k < r->n_calls; k++) {
        char id[32];
        tool_call_id(r, k, id, sizeof(id));
        ok = append(content, json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", id, "name", r->tool_name, "input",
                                       tool_input(r, k)));
    }
    if (!ok) {
        json_decref(content);
        return NULL;
    }
    return content;
}

static json_t *anthropic_body(const mock_reply *r)
{
    json_t *body =
        json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:n}", "id", r->id, "type", "message", "role", "assistant", "model",
                  r->model, "content", anthropic_content(r), "stop_reason", finish_reason(r), "stop_sequence");

    if (body != NULL && !r->no_usage && json_object_set_new(body, "usage", usage_object(r)) != 0) {
        json_decref(body);
        return NULL;
    }
    return body;
}

char *mock_reply_body(const mock_reply *r)
{
    char *s = dump_and_free(r->api == MOCK_OPENAI ? openai_body(r) : anthropic_body(r));

    if (s != NULL && r->malformed)
        break_json(s);
    return s;
}

/* ---- SSE event lists ---------------------------------------------------- */

static int sse_push(mock_sse *sse, char *ev, bool piece)
{
    if (sse->n == sse->cap) {
        size_t cap = sse->cap ? sse->cap * 2 : 16;
        char **ev2 = realloc(sse->ev, cap * sizeof(*ev2));
        if (ev2 == NULL)
            return -1;
        sse->ev = ev2;
        size_t *len2 = realloc(sse->len, cap * sizeof(*len2));
        if (len2 == NULL)
            return -1;
        sse->len = len2;
        bool *piece2 = realloc(sse->piece, cap * sizeof(*piece2));
        if (piece2 == NULL)
            return -1;
        sse->piece = piece2;
        sse->cap = cap;
    }
    sse->ev[sse->n] = ev;
    sse->len[sse->n] = strlen(ev);
    sse->piece[sse->n] = piece;
    sse->n++;
    return 0;
}

/* Appends "event: NAME\n" (if name) "data: DATA\n\n". */
static int sse_add_text(mock_sse *sse, const char *name, const char *data, bool piece)
{
    char *ev = NULL;
    int n;

    if (name != NULL)
        n = asprintf(&ev, "event: %s\ndata: %s\n\n", name, data);
    else
        n = asprintf(&ev, "data: %s\n\n", data);
    if (n < 0)
        return -1;
    if (sse_push(sse, ev, piece) != 0) {
        free(ev);
        return -1;
    }
    return 0;
}

/* Appends obj (released) as an event; with broken, its JSON is cut short. */
static int sse_add_json(mock_sse *sse, const char *name, json_t *obj, bool piece, bool broken)
{
    char *data = dump_and_free(obj);
    int rc;

    if (data == NULL)
        return -1;
    if (broken)
        break_json(data);
    rc = sse_add_text(sse, name, data, piece);
    free(data);
    return rc;
}

void mock_sse_free(mock_sse *sse)
{
    for (size_t i = 0; i < sse->n; i++)
        free(sse->ev[i]);
    free(sse->ev);
    free(sse->len);
    free(sse->piece);
    memset(sse, 0, sizeof(*sse));
}

/* ---- pieces ------------------------------------------------------------- */

/* How a text is cut into piece events. */
typedef enum split_mode {
    SPLIT_WORDS, /* a word each: TEXT */
    SPLIT_WHOLE, /* a single piece: the text before tool calls */
    SPLIT_THIRDS /* about a third each: a tool call's ARGS */
} split_mode;

/* Builds the event for piece i of the content at index (OpenAI: the tool
 * call's index; Anthropic: the content block's). */
typedef json_t *(*piece_event)(const mock_reply *r, int index, size_t i, const mock_piece *pc);

/* Appends the pieces of text as piece events named name (NULL: none).
 * *sent counts the pieces of the whole stream; with malformed, the stream's
 * first piece is followed by a broken copy of itself. Returns 0 or -1. */
static int add_pieces(const mock_reply *r, mock_sse *sse, const char *name, const char *text, split_mode mode,
                      int index, piece_event make, size_t *sent)
{
    mock_piece whole = {text, strlen(text)};
    mock_piece *pieces = NULL;
    const mock_piece *list = &whole;
    size_t n = 1;
    int rc = 0;

    if (mode != SPLIT_WHOLE) {
        n = mode == SPLIT_WORDS ? mock_split_pieces(text, &pieces) : mock_split_thirds(text, &pieces);
        if (n == (size_t)-1)
            return -1;
        list = pieces;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *data = dump_and_free(make(r, index, i, &list[i]));
        if (data == NULL) {
            rc = -1;
            break;
        }
        rc = sse_add_text(sse, name, data, true);
        if (rc == 0 && *sent == 0 && r->malformed) {
            break_json(data);
            rc = sse_add_text(sse, name, data, false);
        }
        (*sent)++;
        free(data);
    }
    free(pieces);
    return rc;
}

/* ---- OpenAI stream ------------------------------------------------------ */

static json_t *openai_chunk(const mock_reply *r, json_t *choices)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:o}", "id", r->id, "object", "chat.completion.chunk", "created",
                     (json_int_t)r->created, "model", r->model, "choices", choices);
}

/* A chunk whose choices[0] has this delta (released) and no finish_reason. */
static json_t *openai_delta_chunk(const mock_reply *r, json_t *delta)
{
    return openai_chunk(r, json_pack("[{s:i,s:o,s:n,s:n}]", "index", 0, "delta", delta, "logprobs", "finish_reason"));
}

/* Piece i of TEXT, or of the text before tool calls (index unused). */
static json_t *openai_text_chunk(const mock_reply *r, int index, size_t i, const mock_piece *pc)
{
    (void)index;
    json_t *chunk = openai_delta_chunk(
        r, json_pack("{s:s,s:o}", "role", "assistant", "content", text_value(pc->p, pc->len, r->bad_types)));
    if (chunk != NULL && r->logprobs && r->tool_name == NULL &&
        json_object_set_new(json_array_get(json_object_get(chunk, "choices"), 0), "logprobs",
                            json_pack("{s:[o],s:n}", "content", logprob_entry(pc->p, pc->len, i), "refusal")) != 0) {
        json_decref(chunk);
        return NULL;
    }
    return chunk;
}

/* A piece of the ARGS of the tool call at index. */
static json_t *openai_args_chunk(const mock_reply *r, int index, size_t i, const mock_piece *pc)
{
    (void)i;
    return openai_delta_chunk(r, json_pack("{s:[{s:i,s:{s:o}}]}", "tool_calls", "index", index, "function", "arguments",
                                           text_value(pc->p, pc->len, r->bad_types)));
}

/* The first chunk of tool call k: its id, type and name, no arguments yet;
 * as the stream's first chunk it also carries the role and "content": null. */
static json_t *openai_tool_start_chunk(const mock_reply *r, size_t k, bool first)
{
    char id[32];
    json_t *call;

    tool_call_id(r, k, id, sizeof(id));
    call = json_pack("[{s:i,s:s,s:s,s:{s:s,s:s}}]", "index", (int)k, "id", id, "type", "function", "function", "name",
                     r->tool_name, "arguments", "");
    if (first)
        return openai_delta_chunk(r, json_pack("{s:s,s:n,s:o}", "role", "assistant", "content", "tool_calls", call));
    return openai_delta_chunk(r, json_pack("{s:o}", "tool_calls", call));
}

/* The text (if any), then each tool call: its start chunk and its ARGS
 * pieces; the finish chunk, usage, [DONE]. */
static int openai_stream(const mock_reply *r, mock_sse *sse)
{
    size_t sent = 0;

    if (r->text != NULL && add_pieces(r, sse, NULL, r->text, r->tool_name != NULL ? SPLIT_WHOLE : SPLIT_WORDS, 0,
                                      openai_text_chunk, &sent) != 0)
        return -1;
    for (size_t k = 0; k < r->n_calls; k++) {
        if (sse_add_json(sse, NULL, openai_tool_start_chunk(r, k, k == 0 && r->text == NULL), false, false) != 0)
            return -1;
        if (add_pieces(r, sse, NULL, r->tool_args[k], SPLIT_THIRDS, (int)k, openai_args_chunk, &sent) != 0)
            return -1;
    }
    json_t *fin = openai_chunk(
        r, json_pack("[{s:i,s:{},s:n,s:s}]", "index", 0, "delta", "logprobs", "finish_reason", finish_reason(r)));
    if (sse_add_json(sse, NULL, fin, false, r->malformed && sent == 0) != 0)
        return -1;
    if (r->include_usage && !r->no_usage) {
        json_t *chunk = openai_chunk(r, json_array());
        if (chunk == NULL || json_object_set_new(chunk, "usage", usage_object(r)) != 0) {
            json_decref(chunk);
            return -1;
        }
        if (sse_add_json(sse, NULL, chunk, false, false) != 0)
            return -1;
    }
    return sse_add_text(sse, NULL, "[DONE]", false);
}

/* ---- Anthropic stream --------------------------------------------------- */

static json_t *anthropic_start(const mock_reply *r)
{
    json_t *msg = json_pack("{s:s,s:s,s:s,s:s,s:[],s:n,s:n}", "id", r->id, "type", "message", "role", "assistant",
                            "model", r->model, "content", "stop_reason", "stop_sequence");

    if (msg != NULL && !r->no_usage) {
        json_t *usage = json_pack("{s:o,s:o}", "input_tokens", count_value(r->prompt_tokens, r->bad_types),
                                  "output_tokens", count_value(1, r->bad_types));
        if (json_object_set_new(msg, "usage", usage) != 0) {
            json_decref(msg);
            return NULL;
        }
    }
    return json_pack("{s:s,s:o}", "type", "message_start", "message", msg);
}

/* A piece of text in the text block at index (text_delta). */
static json_t *anthropic_text_delta(const mock_reply *r, int index, size_t i, const mock_piece *pc)
{
    (void)i;
    return json_pack("{s:s,s:i,s:{s:s,s:o}}", "type", "content_block_delta", "index", index, "delta", "type",
                     "text_delta", "text", text_value(pc->p, pc->len, r->bad_types));
}

/* A piece of ARGS in the tool_use block at index (input_json_delta). */
static json_t *anthropic_json_delta(const mock_reply *r, int index, size_t i, const mock_piece *pc)
{
    (void)i;
    return json_pack("{s:s,s:i,s:{s:s,s:o}}", "type", "content_block_delta", "index", index, "delta", "type",
                     "input_json_delta", "partial_json", text_value(pc->p, pc->len, r->bad_types));
}

/* An empty text block at index. */
static json_t *anthropic_text_start(int index)
{
    return json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_start", "index", index, "content_block", "type",
                     "text", "text", "");
}

/* The tool_use block of call k, at index, with empty input. */
static json_t *anthropic_tool_start(const mock_reply *r, size_t k, int index)
{
    char id[32];

    tool_call_id(r, k, id, sizeof(id));
    return json_pack("{s:s,s:i,s:{s:s,s:s,s:s,s:{}}}", "type", "content_block_start", "index", index, "content_block",
                     "type", "tool_use", "id", id, "name", r->tool_name, "input");
}

static json_t *anthropic_block_stop(int index)
{
    return json_pack("{s:s,s:i}", "type", "content_block_stop", "index", index);
}

static json_t *anthropic_message_delta(const mock_reply *r)
{
    json_t *ev = json_pack("{s:s,s:{s:s,s:n}}", "type", "message_delta", "delta", "stop_reason", finish_reason(r),
                           "stop_sequence");

    if (ev != NULL && !r->no_usage) {
        json_t *usage = json_pack("{s:o}", "output_tokens", count_value(r->completion_tokens, r->bad_types));
        if (json_object_set_new(ev, "usage", usage) != 0) {
            json_decref(ev);
            return NULL;
        }
    }
    return ev;
}

/* message_start; the text block (if any), then a tool_use block per call,
 * each with its start, pieces and stop; message_delta, message_stop. */
static int anthropic_stream(const mock_reply *r, mock_sse *sse)
{
    size_t sent = 0;
    int index = 0;

    if (sse_add_json(sse, "message_start", anthropic_start(r), false, false) != 0)
        return -1;
    if (r->text != NULL) {
        if (sse_add_json(sse, "content_block_start", anthropic_text_start(index), false, false) != 0)
            return -1;
        if (add_pieces(r, sse, "content_block_delta", r->text, r->tool_name != NULL ? SPLIT_WHOLE : SPLIT_WORDS, index,
                       anthropic_text_delta, &sent) != 0)
            return -1;
        if (sse_add_json(sse, "content_block_stop", anthropic_block_stop(index), false, r->malformed && sent == 0) != 0)
            return -1;
        index++;
    }
    for (size_t k = 0; k < r->n_calls; k++, index++) {
        if (sse_add_json(sse, "content_block_start", anthropic_tool_start(r, k, index), false, false) != 0)
            return -1;
        if (add_pieces(r, sse, "content_block_delta", r->tool_args[k], SPLIT_THIRDS, index, anthropic_json_delta,
                       &sent) != 0)
            return -1;
        if (sse_add_json(sse, "content_block_stop", anthropic_block_stop(index), false, false) != 0)
            return -1;
    }
    if (sse_add_json(sse, "message_delta", anthropic_message_delta(r), false, false) != 0)
        return -1;
    return sse_add_json(sse, "message_stop", json_pack("{s:s}", "type", "message_stop"), false, false);
}

int mock_reply_stream(const mock_reply *r, mock_sse *sse)
{
    int rc;

    memset(sse, 0, sizeof(*sse));
    rc = r->api == MOCK_OPENAI ? openai_stream(r, sse) : anthropic_stream(r, sse);
    if (rc != 0)
        mock_sse_free(sse);
    return rc;
}

/* ---- errors ------------------------------------------------------------- */

/* OpenAI: error type and code for a status (code may be NULL). */
static void openai_error_kind(unsigned status, const char **type, const char **code)
{
    *code = NULL;
    *type = status >= 500 ? "server_error" : "invalid_request_error";
    if (status == 401)
        *code = "invalid_api_key";
    else if (status == 404)
        *code = "model_not_found";
    else if (status == 429) {
        *type = "requests";
        *code = "rate_limit_exceeded";
    }
}

static const char *anthropic_error_type(unsigned status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

static const char *default_message(unsigned status)
{
    switch (status) {
    case 400: return "Invalid request.";
    case 401: return "Incorrect API key provided.";
    case 403: return "You are not allowed to perform this request.";
    case 404: return "The requested resource does not exist.";
    case 413: return "Request exceeds the maximum allowed size.";
    case 429: return "Rate limit reached for requests. Please try again later.";
    case 503:
    case 529: return "The server is overloaded. Please try again later.";
    default:
        return status >= 500 ? "The server had an error while processing your request."
                             : "The request could not be processed.";
    }
}

char *mock_error_body(mock_api api, unsigned status, const char *message)
{
    return mock_error_body_with(api, status, message, NULL, NULL, NULL);
}

char *mock_error_body_with(mock_api api, unsigned status, const char *message, const char *type_given,
                           const char *code_given, const char *param)
{
    const char *msg = message != NULL ? message : default_message(status);

    if (api == MOCK_OPENAI) {
        const char *type, *code;
        openai_error_kind(status, &type, &code);
        if (message != NULL && status != 401)
            code = NULL; /* a specific message is not, e.g., a missing model */
        if (type_given != NULL)
            type = type_given;
        if (code_given != NULL)
            code = code_given;
        return dump_and_free(
            json_pack("{s:{s:s,s:s,s:s?,s:s?}}", "error", "message", msg, "type", type, "param", param, "code", code));
    }
    return dump_and_free(json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
                                   type_given != NULL ? type_given : anthropic_error_type(status), "message", msg));
}
