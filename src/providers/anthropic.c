/*
 * anthropic.c — the Anthropic Messages API wire format.
 *
 * Endpoint base_url + "/v1/messages" (base_url is "https://api.anthropic.com"
 * by default). Headers "x-api-key" (when a key is set) and
 * "anthropic-version: 2023-06-01".
 *
 * Request: {"model", "max_tokens" (required by Anthropic: ANTHROPIC_DEFAULT_
 *           MAX_TOKENS when the caller gives none), "messages", "system"?,
 *           "temperature"?, "stream"}. Messages with role "system" (or
 *           "developer") are lifted out of the list and joined with a blank
 *           line into the top-level "system" string, as the API requires.
 *           With messages_json, a user message's parts become blocks (text;
 *           image_url as an image from a base64 data: URL or an http(s) URL),
 *           an assistant's tool_calls become tool_use
 *           blocks (arguments parsed back into "input") and "tool" messages
 *           tool_result blocks of a user turn (consecutive ones share it).
 *           Options translated from OpenAI's vocabulary: top_p, top_k, stop
 *           (-> stop_sequences), tools (function tools -> name, description,
 *           input_schema), tool_choice (auto, none, required -> any, a named
 *           function -> tool), parallel_tool_calls: false (->
 *           disable_parallel_tool_use), user (-> metadata.user_id);
 *           max_completion_tokens is carried by max_tokens. Any other option
 *           fails the build with its name (provider_anthropic_option_ok).
 * Response: the "text" blocks of "content" concatenated, "tool_use" blocks
 *           as OpenAI tool_calls (input serialised as arguments); stop_reason mapped
 *           to OpenAI-style finish reasons (end_turn/stop_sequence -> "stop",
 *           max_tokens -> "length", tool_use -> "tool_calls"); usage
 *           input_tokens (+ cache_creation/cache_read input tokens, which
 *           Anthropic counts separately) and output_tokens.
 * Stream:   events message_start (input usage), content_block_delta with
 *           text_delta pieces, content_block_start of a tool_use block and its
 *           input_json_delta pieces (handed on as OpenAI tool-call deltas,
 *           numbered among the tool calls only), message_delta (stop_reason,
 *           output usage),
 *           message_stop (end), ping, error.
 *
 * Every answer is untrusted: wrong types or broken JSON return -1 with a
 * message, never crash. Ownership: see provider.h.
 */
#include "providers/provider.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ANTHROPIC_DEFAULT_MAX_TOKENS = 1024 };

/* provider_stream.scratch bits: which halves of the usage the stream has sent */
enum { ANTHROPIC_SAW_INPUT = 1u, ANTHROPIC_SAW_OUTPUT = 2u };

static void anthropic_stream_usage(provider_stream *st)
{
    st->total_tokens = st->prompt_tokens + st->completion_tokens;
    st->has_usage = (st->scratch & (ANTHROPIC_SAW_INPUT | ANTHROPIC_SAW_OUTPUT)) ==
                    (ANTHROPIC_SAW_INPUT | ANTHROPIC_SAW_OUTPUT);
}

static int anthropic_is_system(const char *role)
{
    return strcmp(role, "system") == 0 || strcmp(role, "developer") == 0;
}

int provider_anthropic_option_ok(const char *name)
{
    static const char *const ok[] = {
        "top_p", "top_k", "stop", "tools", "tool_choice", "parallel_tool_calls", "user", "max_completion_tokens"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(name, ok[i]) == 0)
            return 1;
    return 0;
}

int provider_anthropic_part_ok(const json_t *part)
{
    const char *url = json_string_value(json_object_get(json_object_get(part, "image_url"), "url"));
    const char *comma = url ? strchr(url, ',') : NULL;

    if (json_is_string(json_object_get(part, "text")))
        return 1;
    if (!url)
        return 0;
    if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0)
        return 1;
    return strncmp(url, "data:image/", 11) == 0 && comma && strncmp(comma - 7, ";base64", 7) == 0;
}

int provider_anthropic_arguments_ok(const char *arguments)
{
    if (!*arguments)
        return 1;
    json_t *input = json_loads(arguments, 0, NULL);
    int ok = json_is_object(input);
    json_decref(input);
    return ok;
}

/* OpenAI content parts -> Anthropic blocks: text, and image_url as an image
 * from a base64 data: URL or from an http(s) URL. NULL with err otherwise. */
static json_t *anthropic_parts(const json_t *parts, size_t i, char *err, size_t errlen)
{
    json_t *blocks = json_array(), *part, *b = NULL;
    size_t k;

    if (!blocks)
        goto oom;
    json_array_foreach(parts, k, part)
    {
        json_t *text = json_object_get(part, "text");
        const char *url = json_string_value(json_object_get(json_object_get(part, "image_url"), "url"));
        const char *comma = url ? strchr(url, ',') : NULL;
        if (json_is_string(text)) {
            b = json_pack("{s:s, s:O}", "type", "text", "text", text);
        } else if (url && strncmp(url, "data:", 5) == 0 && comma && comma - url > 12 &&
                   strncmp(comma - 7, ";base64", 7) == 0) {
            b = json_pack("{s:s, s:{s:s, s:s#, s:s}}", "type", "image", "source", "type", "base64", "media_type",
                          url + 5, (int)(comma - 7 - (url + 5)), "data", comma + 1);
        } else if (url && (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0)) {
            b = json_pack("{s:s, s:{s:s, s:s}}", "type", "image", "source", "type", "url", "url", url);
        } else {
            snprintf(err, errlen, "messages[%zu].content[%zu] is neither text nor an image Anthropic can take", i, k);
            json_decref(blocks);
            return NULL;
        }
        if (!b || json_array_append_new(blocks, b) != 0)
            goto oom;
    }
    return blocks;
oom:
    json_decref(blocks);
    snprintf(err, errlen, "out of memory building the request");
    return NULL;
}

/* An assistant turn with tool calls (-> tool_use blocks) or a "tool" message
 * (-> a tool_result block, in the user turn the previous one opened). */
static int anthropic_tool_turn(json_t *msgs, const provider_message *m, const json_t *mj, size_t i, char *err,
                               size_t errlen)
{
    json_t *blocks, *last = json_array_get(msgs, json_array_size(msgs) - 1);
    json_t *text = m->content_len ? json_stringn(m->content, m->content_len) : NULL;

    if (m->content_len && !text) {
        snprintf(err, errlen, "message %zu cannot be encoded (invalid UTF-8?)", i);
        return -1;
    }
    if (strcmp(m->role, "tool") == 0) {
        const char *id = json_string_value(json_object_get(mj, "tool_call_id"));
        json_t *res = json_pack("{s:s, s:s, s:o}", "type", "tool_result", "tool_use_id", id ? id : "", "content",
                                text ? text : json_string(""));
        blocks = json_object_get(last, "content");
        if (!res)
            goto oom;
        if (json_is_array(blocks) && strcmp(json_string_value(json_object_get(last, "role")), "user") == 0)
            return json_array_append_new(blocks, res) == 0 ? 0 : -1;
        return json_array_append_new(msgs, json_pack("{s:s, s:[o]}", "role", "user", "content", res)) == 0 ? 0 : -1;
    }
    size_t k;
    json_t *call;
    blocks = json_array();
    if (!blocks)
        goto oom;
    if (text && json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "text", "text", text)) != 0) {
        json_decref(blocks);
        return -1;
    }
    json_array_foreach(json_object_get(mj, "tool_calls"), k, call)
    {
        json_t *fn = json_object_get(call, "function");
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        json_t *input = args && *args ? json_loads(args, 0, NULL) : json_object();
        if (!json_is_object(input)) {
            json_decref(input);
            json_decref(blocks);
            snprintf(err, errlen, "messages[%zu].tool_calls[%zu].function.arguments is not a JSON object", i, k);
            return -1;
        }
        const char *id = json_string_value(json_object_get(call, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (json_array_append_new(blocks, json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id", id ? id : "",
                                                    "name", name ? name : "", "input", input)) != 0) {
            json_decref(blocks);
            goto oom;
        }
    }
    if (json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", "assistant", "content", blocks)) != 0)
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory building the request");
    return -1;
}

/* OpenAI's function tools -> Anthropic's {name, description, input_schema}. */
static json_t *anthropic_tools(const json_t *tools)
{
    json_t *out = json_array(), *t;
    size_t i;

    json_array_foreach(tools, i, t)
    {
        json_t *fn = json_object_get(t, "function"), *desc = json_object_get(fn, "description");
        json_t *schema = json_object_get(fn, "parameters");
        json_t *o = json_pack("{s:s?, s:o}", "name", json_string_value(json_object_get(fn, "name")), "input_schema",
                              json_is_object(schema) ? json_incref(schema)
                                                     : json_pack("{s:s, s:{}}", "type", "object", "properties"));
        if (!o || (json_is_string(desc) && json_object_set(o, "description", desc) != 0) ||
            json_array_append_new(out, o) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *anthropic_tool_choice(const json_t *choice)
{
    const char *s = json_string_value(choice);
    if (s)
        return json_pack("{s:s}", "type", !strcmp(s, "required") ? "any" : !strcmp(s, "none") ? "none" : "auto");
    const char *name = json_string_value(json_object_get(json_object_get(choice, "function"), "name"));
    return name ? json_pack("{s:s, s:s}", "type", "tool", "name", name) : json_pack("{s:s}", "type", "auto");
}

static int anthropic_add_options(json_t *body, const json_t *options, char *err, size_t errlen)
{
    const char *key;
    json_t *v, *choice = NULL;

    json_object_foreach((json_t *)options, key, v)
    {
        if (!provider_anthropic_option_ok(key)) {
            snprintf(err, errlen, "'%s' is not supported by Anthropic models", key);
            return -1;
        }
    }
    if ((v = json_object_get(options, "top_p")) && json_object_set(body, "top_p", v) != 0)
        goto oom;
    if ((v = json_object_get(options, "top_k")) && json_object_set(body, "top_k", v) != 0)
        goto oom;
    v = json_object_get(options, "stop");
    if (json_is_string(v) ? json_object_set_new(body, "stop_sequences", json_pack("[O]", v)) != 0
                          : json_is_array(v) && json_object_set(body, "stop_sequences", v) != 0)
        goto oom;
    v = json_object_get(options, "tools");
    if (json_is_array(v) && json_array_size(v) > 0 && json_object_set_new(body, "tools", anthropic_tools(v)) != 0)
        goto oom;
    if ((v = json_object_get(options, "tool_choice")) && !json_is_null(v) && !(choice = anthropic_tool_choice(v)))
        goto oom;
    if (json_is_false(json_object_get(options, "parallel_tool_calls"))) {
        if (!choice && !(choice = json_pack("{s:s}", "type", "auto")))
            goto oom;
        json_object_set_new(choice, "disable_parallel_tool_use", json_true());
    }
    if (choice && json_object_set_new(body, "tool_choice", choice) != 0)
        goto oom;
    v = json_object_get(options, "user");
    if (json_is_string(v) && json_object_set_new(body, "metadata", json_pack("{s:O}", "user_id", v)) != 0)
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory building the request");
    return -1;
}

static int anthropic_build_request(const provider_endpoint *ep, const provider_params *p,
                                   provider_request *req, char *err, size_t errlen)
{
    json_t *body = NULL, *msgs = NULL;
    provider_buf sys = {0};
    int rc = -1;

    memset(req, 0, sizeof(*req));
    if (asprintf(&req->url, "%s/v1/messages", ep->base_url) < 0) {
        req->url = NULL;
        goto oom;
    }
    body = json_object();
    msgs = json_array();
    if (!body || !msgs)
        goto oom;
    for (size_t i = 0; i < p->n_messages; i++) {
        const provider_message *m = &p->messages[i];
        const json_t *mj = json_array_get(p->messages_json, i);
        json_t *c, *o;

        if (anthropic_is_system(m->role)) {
            if ((sys.len > 0 && provider_buf_append(&sys, "\n\n", 2, (size_t)-1) != 0) ||
                provider_buf_append(&sys, m->content, m->content_len, (size_t)-1) != 0)
                goto oom;
            continue;
        }
        if (mj && (strcmp(m->role, "tool") == 0 || json_object_get(mj, "tool_calls"))) {
            if (anthropic_tool_turn(msgs, m, mj, i, err, errlen) != 0)
                goto out;
            continue;
        }
        if (mj && json_is_array(json_object_get(mj, "content"))) {
            if (!(c = anthropic_parts(json_object_get(mj, "content"), i, err, errlen)))
                goto out;
        } else {
            c = json_stringn(m->content, m->content_len);
        }
        o = json_pack("{s:s, s:o}", "role", m->role, "content", c);
        if (!c || !o || json_array_append_new(msgs, o) != 0) {
            snprintf(err, errlen, "message %zu cannot be encoded (invalid UTF-8?)", i);
            goto out;
        }
    }
    if (json_object_set_new(body, "model", json_string(p->model)) != 0 ||
        json_object_set_new(body, "max_tokens",
                            json_integer(p->max_tokens > 0 ? p->max_tokens
                                                           : ANTHROPIC_DEFAULT_MAX_TOKENS)) != 0 ||
        json_object_set(body, "messages", msgs) != 0 ||
        json_object_set_new(body, "stream", json_boolean(p->stream)) != 0)
        goto oom;
    if (sys.len > 0 && json_object_set_new(body, "system", json_stringn(sys.data, sys.len)) != 0)
        goto oom;
    if (p->has_temperature &&
        json_object_set_new(body, "temperature", json_real(p->temperature)) != 0)
        goto oom;
    if (anthropic_add_options(body, p->options, err, errlen) != 0)
        goto out;
    req->body = json_dumps(body, JSON_COMPACT);
    if (!req->body)
        goto oom;
    req->body_len = strlen(req->body);
    if (provider_request_add_header(req, "Content-Type: application/json") != 0 ||
        provider_request_add_header(req, "Accept: %s", p->stream ? "text/event-stream"
                                                                 : "application/json") != 0 ||
        provider_request_add_header(req, "anthropic-version: 2023-06-01") != 0)
        goto oom;
    if (ep->api_key && ep->api_key[0] &&
        provider_request_add_header(req, "x-api-key: %s", ep->api_key) != 0)
        goto oom;
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory building the request");
out:
    provider_buf_free(&sys);
    json_decref(msgs);
    json_decref(body);
    if (rc != 0)
        provider_request_free(req);
    return rc;
}

/* Anthropic stop_reason -> the OpenAI-style names the engine reports. */
static void anthropic_finish(const char *stop, char *dst, size_t dstlen)
{
    const char *f = stop;

    if (strcmp(stop, "end_turn") == 0 || strcmp(stop, "stop_sequence") == 0)
        f = "stop";
    else if (strcmp(stop, "max_tokens") == 0)
        f = "length";
    else if (strcmp(stop, "tool_use") == 0)
        f = "tool_calls";
    provider_copy_text(dst, dstlen, f, strlen(f));
}

static int anthropic_stop_reason(const json_t *obj, char *dst, size_t dstlen, char *err,
                                 size_t errlen)
{
    json_t *s = json_object_get(obj, "stop_reason");

    if (!s || json_is_null(s))
        return 0;
    if (!json_is_string(s)) {
        snprintf(err, errlen, "stop_reason is not a string");
        return -1;
    }
    anthropic_finish(json_string_value(s), dst, dstlen);
    return 0;
}

/* input side: input_tokens + cache tokens. 1 present, 0 absent, -1 bad. */
static int anthropic_input_tokens(const json_t *u, long *out, char *err, size_t errlen)
{
    long in = 0, cc = 0, cr = 0;
    int r = provider_json_count(u, "input_tokens", "usage", &in, err, errlen);

    if (r <= 0)
        return r;
    if (provider_json_count(u, "cache_creation_input_tokens", "usage", &cc, err, errlen) < 0 ||
        provider_json_count(u, "cache_read_input_tokens", "usage", &cr, err, errlen) < 0)
        return -1;
    *out = in + cc + cr;
    return 1;
}

static int anthropic_error_event(const json_t *root, char *err, size_t errlen)
{
    const char *msg = provider_json_error_text(root);
    char text[256];

    provider_copy_text(text, sizeof(text), msg ? msg : "unspecified", msg ? strlen(msg) : 11);
    snprintf(err, errlen, "provider reported an error: %s", text);
    return -1;
}

/* A tool_use block -> one OpenAI tool call appended to *calls. */
static int anthropic_tool_use(const json_t *blk, json_t **calls, char *err, size_t errlen)
{
    json_t *id = json_object_get(blk, "id"), *name = json_object_get(blk, "name");
    json_t *input = json_object_get(blk, "input");
    char *args;

    if (!json_is_string(id) || !json_is_string(name) || !json_is_object(input)) {
        snprintf(err, errlen, "a tool_use block lacks its id, name or input");
        return -1;
    }
    if (!*calls && !(*calls = json_array()))
        goto oom;
    if (!(args = json_dumps(input, JSON_COMPACT)))
        goto oom;
    json_t *call = json_pack("{s:O, s:s, s:{s:O, s:s}}", "id", id, "type", "function", "function", "name", name,
                             "arguments", args);
    free(args);
    if (!call || json_array_append_new(*calls, call) != 0)
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int anthropic_parse_response(const char *body, size_t len, provider_response *out,
                                    char *err, size_t errlen)
{
    json_t *root = NULL, *content, *type, *u, *blk;
    provider_buf text = {0};
    size_t i;
    int rc = -1, r1, r2;

    memset(out, 0, sizeof(*out));
    err[0] = '\0';
    root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        snprintf(err, errlen, "response is not a JSON object");
        goto out;
    }
    type = json_object_get(root, "type");
    if (json_is_string(type) && strcmp(json_string_value(type), "error") == 0) {
        anthropic_error_event(root, err, errlen);
        goto out;
    }
    content = json_object_get(root, "content");
    if (!json_is_array(content)) {
        snprintf(err, errlen, "response content is not an array");
        goto out;
    }
    json_array_foreach(content, i, blk) {
        json_t *bt = json_object_get(blk, "type"), *tx = json_object_get(blk, "text");
        if (!json_is_object(blk) || !json_is_string(bt)) {
            snprintf(err, errlen, "content[%zu] is not a typed block", i);
            goto out;
        }
        if (strcmp(json_string_value(bt), "tool_use") == 0) {
            if (anthropic_tool_use(blk, &out->tool_calls, err, errlen) != 0)
                goto out;
            continue;
        }
        if (strcmp(json_string_value(bt), "text") != 0)
            continue; /* thinking ...: not part of the text answer */
        if (!json_is_string(tx)) {
            snprintf(err, errlen, "content[%zu].text is not a string", i);
            goto out;
        }
        if (provider_buf_append(&text, json_string_value(tx), json_string_length(tx),
                                (size_t)-1) != 0) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    if (anthropic_stop_reason(root, out->finish_reason, sizeof(out->finish_reason), err,
                              errlen) != 0)
        goto out;
    u = json_object_get(root, "usage");
    if (u && !json_is_null(u)) {
        if (!json_is_object(u)) {
            snprintf(err, errlen, "usage is not an object");
            goto out;
        }
        r1 = anthropic_input_tokens(u, &out->prompt_tokens, err, errlen);
        r2 = provider_json_count(u, "output_tokens", "usage", &out->completion_tokens, err,
                                 errlen);
        if (r1 < 0 || r2 < 0)
            goto out;
        if (r1 == 0 || r2 == 0) {
            snprintf(err, errlen, "usage lacks input_tokens or output_tokens");
            goto out;
        }
        out->total_tokens = out->prompt_tokens + out->completion_tokens;
        out->has_usage = 1;
    }
    if (provider_buf_append(&text, "", 0, (size_t)-1) != 0) { /* ensure allocated */
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    out->text = text.data;
    out->text_len = text.len;
    text.data = NULL;
    rc = 0;
out:
    provider_buf_free(&text);
    json_decref(root);
    if (rc != 0)
        provider_response_free(out);
    return rc;
}

/* Hand one tool-call delta (a new reference, NULL when out of memory) on. */
static int anthropic_stream_tool_piece(provider_stream *st, json_t *d, char *err, size_t errlen)
{
    int rc = 0;
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (st->on_tool && st->on_tool(st->ud, d) != 0) {
        snprintf(err, errlen, "stream aborted by the receiver");
        rc = -1;
    }
    json_decref(d);
    return rc;
}

/* content_block_start: a tool_use block opens tool call number tools_seen. */
static int anthropic_stream_tool_start(provider_stream *st, const json_t *root, char *err, size_t errlen)
{
    json_t *blk = json_object_get(root, "content_block");
    json_t *id = json_object_get(blk, "id"), *name = json_object_get(blk, "name");

    const char *type = json_string_value(json_object_get(blk, "type"));
    if (!type || strcmp(type, "tool_use") != 0)
        return 0;
    if (!json_is_string(id) || !json_is_string(name)) {
        snprintf(err, errlen, "a tool_use block lacks its id or name");
        return -1;
    }
    if (st->tools_seen >= PROVIDER_MAX_TOOL_CALLS) {
        snprintf(err, errlen, "more than %d tool calls in one answer", PROVIDER_MAX_TOOL_CALLS);
        return -1;
    }
    st->tool_block = 1;
    st->tools_seen++;
    return anthropic_stream_tool_piece(st,
                                       json_pack("{s:i, s:O, s:s, s:{s:O, s:s}}", "index", st->tools_seen - 1, "id", id,
                                                 "type", "function", "function", "name", name, "arguments", ""),
                                       err, errlen);
}

static int anthropic_parse_stream_event(provider_stream *st, const char *event,
                                        const char *data, size_t len, char *err, size_t errlen)
{
    json_t *root = NULL, *t, *delta, *u, *msg;
    const char *type;
    int rc = -1, r;
    long v = 0;

    err[0] = '\0';
    root = json_loadb(data, len, 0, NULL);
    if (!json_is_object(root)) {
        snprintf(err, errlen, "stream event is not a JSON object");
        goto out;
    }
    t = json_object_get(root, "type");
    type = json_is_string(t) ? json_string_value(t) : event;
    if (strcmp(type, "error") == 0) {
        anthropic_error_event(root, err, errlen);
        goto out;
    }
    if (strcmp(type, "message_start") == 0) {
        msg = json_object_get(root, "message");
        u = json_object_get(msg, "usage");
        if (!json_is_object(msg) || (u && !json_is_null(u) && !json_is_object(u))) {
            snprintf(err, errlen, "message_start has a malformed message");
            goto out;
        }
        r = anthropic_input_tokens(u, &v, err, errlen);
        if (r < 0)
            goto out;
        if (r == 1) {
            st->prompt_tokens = v;
            st->scratch |= ANTHROPIC_SAW_INPUT;
            anthropic_stream_usage(st);
        }
    } else if (strcmp(type, "content_block_start") == 0) {
        if (anthropic_stream_tool_start(st, root, err, errlen) != 0)
            goto out;
    } else if (strcmp(type, "content_block_stop") == 0) {
        st->tool_block = 0;
    } else if (strcmp(type, "content_block_delta") == 0) {
        json_t *dt, *tx;
        delta = json_object_get(root, "delta");
        dt = json_object_get(delta, "type");
        if (!json_is_object(delta) || !json_is_string(dt)) {
            snprintf(err, errlen, "content_block_delta has a malformed delta");
            goto out;
        }
        if (strcmp(json_string_value(dt), "text_delta") == 0) {
            tx = json_object_get(delta, "text");
            if (!json_is_string(tx)) {
                snprintf(err, errlen, "text_delta.text is not a string");
                goto out;
            }
            if (json_string_length(tx) > 0 && st->on_text &&
                st->on_text(st->ud, json_string_value(tx), json_string_length(tx)) != 0) {
                snprintf(err, errlen, "stream aborted by the receiver");
                goto out;
            }
        } else if (strcmp(json_string_value(dt), "input_json_delta") == 0 && st->tool_block) {
            tx = json_object_get(delta, "partial_json");
            if (!json_is_string(tx)) {
                snprintf(err, errlen, "input_json_delta.partial_json is not a string");
                goto out;
            }
            if (anthropic_stream_tool_piece(
                    st, json_pack("{s:i, s:{s:O}}", "index", st->tools_seen - 1, "function", "arguments", tx), err,
                    errlen) != 0)
                goto out;
        }
    } else if (strcmp(type, "message_delta") == 0) {
        delta = json_object_get(root, "delta");
        u = json_object_get(root, "usage");
        if ((delta && !json_is_object(delta)) || (u && !json_is_null(u) && !json_is_object(u))) {
            snprintf(err, errlen, "message_delta is malformed");
            goto out;
        }
        if (delta && anthropic_stop_reason(delta, st->finish_reason, sizeof(st->finish_reason),
                                           err, errlen) != 0)
            goto out;
        r = provider_json_count(u, "output_tokens", "usage", &v, err, errlen);
        if (r < 0)
            goto out;
        if (r == 1) {
            st->completion_tokens = v;
            st->scratch |= ANTHROPIC_SAW_OUTPUT;
        }
        /* newer API versions repeat the input tokens here */
        r = anthropic_input_tokens(u, &v, err, errlen);
        if (r < 0)
            goto out;
        if (r == 1) {
            st->prompt_tokens = v;
            st->scratch |= ANTHROPIC_SAW_INPUT;
        }
        anthropic_stream_usage(st);
    } else if (strcmp(type, "message_stop") == 0) {
        st->done = 1;
    }
    /* ping and unknown events carry nothing we need */
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static void anthropic_error_message(long http_status, const char *body, size_t len, char *buf,
                                    size_t buflen)
{
    provider_generic_error(http_status, body, len, buf, buflen);
}

/* {"type": "error", "error": {"type", "message"}}: Anthropic names the kind
 * (invalid_request_error, not_found_error, request_too_large, ...) and has
 * no code or param. */
static void anthropic_parse_error(long http_status, const char *body, size_t len, provider_error *out)
{
    json_t *root = provider_error_begin(http_status, body, len, out);
    json_t *t = json_object_get(json_object_get(root, "error"), "type");

    if (json_is_string(t))
        provider_copy_text(out->type, sizeof(out->type), json_string_value(t), json_string_length(t));
    json_decref(root);
}

const provider_ops provider_anthropic_ops = {
    .type = "anthropic",
    .build_request = anthropic_build_request,
    .parse_response = anthropic_parse_response,
    .parse_stream_event = anthropic_parse_stream_event,
    .error_message = anthropic_error_message,
    .parse_error = anthropic_parse_error,
};
