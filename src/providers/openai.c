/*
 * openai.c — the OpenAI Chat Completions wire format.
 *
 * Speaks to any OpenAI-compatible server: OpenAI itself, vLLM, llama.cpp's
 * server, Ollama, LM Studio. The endpoint is base_url + "/chat/completions"
 * (base_url usually ends in "/v1"). "Authorization: Bearer <key>" is sent only
 * when a key is configured, since local servers usually have none.
 *
 * Request: {"model", "messages":[{"role","content"}], "temperature"?,
 *           "max_tokens"? (only when > 0; not when the options carry
 *           "max_completion_tokens", which newer OpenAI models require),
 *           "stream", and when streaming "stream_options": {"include_usage":
 *           true} so the last chunk carries the token usage}, plus every
 *           option (tools, tool_choice, response_format, top_p, ...) as given:
 *           compatible servers each accept their own extras.
 * Response: choices[0].message.content (null counts as ""), its tool_calls
 *           (kept as they are, once checked for shape), choices[0].
 *           finish_reason, its logprobs (an object, kept as it is, when the
 *           "logprobs" option asked for them), usage.{prompt,completion,
 *           total}_tokens. A missing
 *           or null "usage" is reported as has_usage = 0 (the engine then
 *           estimates); a usage of the wrong shape is an error.
 * Stream:   "data: {chunk}" events with choices[0].delta.content pieces and
 *           delta.tool_calls pieces (handed on one by one; numbered when a
 *           server leaves out their "index"), each chunk's logprobs (to
 *           on_logprobs, before its text), a
 *           finish_reason, a final chunk with "usage" and empty choices, and
 *           "data: [DONE]".
 *
 * Every answer is untrusted: wrong types or broken JSON return -1 with a
 * message, never crash. Ownership: see provider.h.
 */
#include "providers/provider.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The options, except the fields this format sets itself. */
static int openai_add_options(json_t *body, const json_t *options)
{
    static const char *const own[] = {"model", "messages", "stream", "stream_options", "temperature", "max_tokens"};
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)options, key, v)
    {
        size_t i;
        for (i = 0; i < sizeof(own) / sizeof(own[0]) && strcmp(key, own[i]) != 0; i++)
            ;
        if (i == sizeof(own) / sizeof(own[0]) && json_object_set(body, key, v) != 0)
            return -1;
    }
    return 0;
}

static int openai_build_request(const provider_endpoint *ep, const provider_params *p,
                                provider_request *req, char *err, size_t errlen)
{
    json_t *body = NULL, *msgs = NULL;
    int rc = -1;

    memset(req, 0, sizeof(*req));
    if (asprintf(&req->url, "%s/chat/completions", ep->base_url) < 0) {
        req->url = NULL;
        goto oom;
    }
    body = json_object();
    msgs = p->messages_json ? json_incref((json_t *)p->messages_json) : json_array();
    if (!body || !msgs)
        goto oom;
    for (size_t i = 0; !p->messages_json && i < p->n_messages; i++) {
        json_t *c = json_stringn(p->messages[i].content, p->messages[i].content_len);
        json_t *m = json_pack("{s:s, s:o}", "role", p->messages[i].role, "content", c);
        if (!c || !m || json_array_append_new(msgs, m) != 0) {
            snprintf(err, errlen, "message %zu cannot be encoded (invalid UTF-8?)", i);
            goto out;
        }
    }
    if (json_object_set_new(body, "model", json_string(p->model)) != 0 ||
        json_object_set(body, "messages", msgs) != 0 ||
        json_object_set_new(body, "stream", json_boolean(p->stream)) != 0)
        goto oom;
    if (p->has_temperature &&
        json_object_set_new(body, "temperature", json_real(p->temperature)) != 0)
        goto oom;
    if (p->max_tokens > 0 && !json_object_get(p->options, "max_completion_tokens") &&
        json_object_set_new(body, "max_tokens", json_integer(p->max_tokens)) != 0)
        goto oom;
    if (p->stream &&
        json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1)) != 0)
        goto oom;
    if (openai_add_options(body, p->options) != 0)
        goto oom;
    req->body = json_dumps(body, JSON_COMPACT);
    if (!req->body)
        goto oom;
    req->body_len = strlen(req->body);
    if (provider_request_add_header(req, "Content-Type: application/json") != 0 ||
        provider_request_add_header(req, "Accept: %s", p->stream ? "text/event-stream"
                                                                 : "application/json") != 0)
        goto oom;
    if (ep->api_key && ep->api_key[0] &&
        provider_request_add_header(req, "Authorization: Bearer %s", ep->api_key) != 0)
        goto oom;
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory building the request");
out:
    json_decref(msgs);
    json_decref(body);
    if (rc != 0)
        provider_request_free(req);
    return rc;
}

/* usage object -> counts. 1 when present, 0 when absent/null, -1 on bad shape. */
static int openai_usage(const json_t *root, long *pt, long *ct, long *tt, char *err,
                        size_t errlen)
{
    json_t *u = json_object_get(root, "usage");
    long total = 0;
    int r;

    if (!u || json_is_null(u))
        return 0;
    if (!json_is_object(u)) {
        snprintf(err, errlen, "usage is not an object");
        return -1;
    }
    if (provider_json_count(u, "prompt_tokens", "usage", pt, err, errlen) != 1 ||
        provider_json_count(u, "completion_tokens", "usage", ct, err, errlen) != 1) {
        if (!err[0])
            snprintf(err, errlen, "usage lacks prompt_tokens or completion_tokens");
        return -1;
    }
    r = provider_json_count(u, "total_tokens", "usage", &total, err, errlen);
    if (r < 0)
        return -1;
    *tt = r == 1 ? total : *pt + *ct;
    return 1;
}

/* finish_reason: string, null or absent. */
static int openai_finish(const json_t *choice, char *dst, size_t dstlen, char *err,
                         size_t errlen)
{
    json_t *f = json_object_get(choice, "finish_reason");

    if (!f || json_is_null(f))
        return 0;
    if (!json_is_string(f)) {
        snprintf(err, errlen, "finish_reason is not a string");
        return -1;
    }
    provider_copy_text(dst, dstlen, json_string_value(f), json_string_length(f));
    return 0;
}

/* An "error" member in a 2xx body means the server failed after all. */
static int openai_body_error(const json_t *root, char *err, size_t errlen)
{
    json_t *e = json_object_get(root, "error");
    const char *msg;
    char text[256];

    if (!e || json_is_null(e))
        return 0;
    msg = provider_json_error_text(root);
    provider_copy_text(text, sizeof(text), msg ? msg : "unspecified", msg ? strlen(msg) : 11);
    snprintf(err, errlen, "provider reported an error: %s", text);
    return -1;
}

/* message.tool_calls: absent, null, or an array of complete calls. */
static int openai_tool_calls(json_t *tc, json_t **out, char *err, size_t errlen)
{
    size_t i;
    json_t *call;

    if (!tc || json_is_null(tc))
        return 0;
    if (!json_is_array(tc)) {
        snprintf(err, errlen, "choices[0].message.tool_calls is not an array");
        return -1;
    }
    json_array_foreach(tc, i, call)
    {
        json_t *fn = json_object_get(call, "function");
        if (!json_is_object(call) || !json_is_string(json_object_get(call, "id")) || !json_is_object(fn) ||
            !json_is_string(json_object_get(fn, "name")) || !json_is_string(json_object_get(fn, "arguments"))) {
            snprintf(err, errlen, "choices[0].message.tool_calls[%zu] is not a function call", i);
            return -1;
        }
    }
    if (json_array_size(tc) > 0)
        *out = json_incref(tc);
    return 0;
}

/* choices[0].logprobs: null or absent (0, *out NULL), or an object (0, *out
 * borrowed), else -1 with err. */
static int openai_logprobs(const json_t *choice, json_t **out, char *err, size_t errlen)
{
    json_t *lp = json_object_get(choice, "logprobs");

    *out = NULL;
    if (!lp || json_is_null(lp))
        return 0;
    if (!json_is_object(lp)) {
        snprintf(err, errlen, "choices[0].logprobs is not an object");
        return -1;
    }
    *out = lp;
    return 0;
}

static int openai_parse_response(const char *body, size_t len, provider_response *out,
                                 char *err, size_t errlen)
{
    json_t *root = NULL, *choices, *choice, *msg, *content, *logprobs;
    int rc = -1, u;

    memset(out, 0, sizeof(*out));
    err[0] = '\0';
    root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        snprintf(err, errlen, "response is not a JSON object");
        goto out;
    }
    if (openai_body_error(root, err, errlen) != 0)
        goto out;
    choices = json_object_get(root, "choices");
    if (!json_is_array(choices) || json_array_size(choices) == 0) {
        snprintf(err, errlen, "response has no choices array");
        goto out;
    }
    choice = json_array_get(choices, 0);
    msg = json_object_get(choice, "message");
    if (!json_is_object(choice) || !json_is_object(msg)) {
        snprintf(err, errlen, "choices[0].message is not an object");
        goto out;
    }
    content = json_object_get(msg, "content");
    if (content && !json_is_null(content) && !json_is_string(content)) {
        snprintf(err, errlen, "choices[0].message.content is not a string");
        goto out;
    }
    if (openai_finish(choice, out->finish_reason, sizeof(out->finish_reason), err, errlen) != 0)
        goto out;
    if (openai_tool_calls(json_object_get(msg, "tool_calls"), &out->tool_calls, err, errlen) != 0)
        goto out;
    if (openai_logprobs(choice, &logprobs, err, errlen) != 0)
        goto out;
    out->logprobs = json_incref(logprobs);
    u = openai_usage(root, &out->prompt_tokens, &out->completion_tokens, &out->total_tokens,
                     err, errlen);
    if (u < 0)
        goto out;
    out->has_usage = u;
    out->text_len = json_is_string(content) ? json_string_length(content) : 0;
    out->text = malloc(out->text_len + 1);
    if (!out->text) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (out->text_len)
        memcpy(out->text, json_string_value(content), out->text_len);
    out->text[out->text_len] = '\0';
    rc = 0;
out:
    json_decref(root);
    if (rc != 0)
        provider_response_free(out);
    return rc;
}

/* delta.tool_calls: each piece goes to on_tool once checked. A piece without
 * "index" (some compatible servers leave it out) gets one: a piece with an "id"
 * opens the next call, any other continues the last one. */
static int openai_tool_deltas(provider_stream *st, json_t *tc, char *err, size_t errlen)
{
    size_t i;
    json_t *d;

    if (!tc || json_is_null(tc))
        return 0;
    if (!json_is_array(tc)) {
        snprintf(err, errlen, "stream chunk delta.tool_calls is not an array");
        return -1;
    }
    json_array_foreach(tc, i, d)
    {
        json_t *idx = json_object_get(d, "index"), *fn = json_object_get(d, "function");
        json_int_t index = json_is_integer(idx)                       ? json_integer_value(idx)
                           : json_is_string(json_object_get(d, "id")) ? st->tools_seen
                           : st->tools_seen > 0                       ? st->tools_seen - 1
                                                                      : 0;
        if (!json_is_object(d) || (idx && !json_is_integer(idx)) || index < 0 || index >= PROVIDER_MAX_TOOL_CALLS ||
            (fn && !json_is_null(fn) && !json_is_object(fn))) {
            snprintf(err, errlen, "stream chunk delta.tool_calls[%zu] is malformed", i);
            return -1;
        }
        if (index >= st->tools_seen)
            st->tools_seen = (int)index + 1;
        if (!st->on_tool)
            continue;
        int rc;
        if (idx) {
            rc = st->on_tool(st->ud, d);
        } else {
            json_t *numbered = json_deep_copy(d);
            rc = !numbered || json_object_set_new(numbered, "index", json_integer(index)) != 0
                     ? -1
                     : st->on_tool(st->ud, numbered);
            json_decref(numbered);
        }
        if (rc != 0) {
            snprintf(err, errlen, "stream aborted by the receiver");
            return -1;
        }
    }
    return 0;
}

static int openai_parse_stream_event(provider_stream *st, const char *event, const char *data,
                                     size_t len, char *err, size_t errlen)
{
    json_t *root = NULL, *choices, *choice, *delta, *content, *logprobs;
    int rc = -1, u;
    long pt = 0, ct = 0, tt = 0;

    (void)event; /* OpenAI streams carry no event names */
    err[0] = '\0';
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        st->done = 1;
        return 0;
    }
    if (st->done)
        return 0; /* nothing after [DONE] matters */
    root = json_loadb(data, len, 0, NULL);
    if (!json_is_object(root)) {
        snprintf(err, errlen, "stream chunk is not a JSON object");
        goto out;
    }
    if (openai_body_error(root, err, errlen) != 0)
        goto out;
    choices = json_object_get(root, "choices");
    if (choices && !json_is_null(choices) && !json_is_array(choices)) {
        snprintf(err, errlen, "stream chunk choices is not an array");
        goto out;
    }
    choice = json_array_get(choices, 0); /* NULL for the usage-only chunk */
    if (choice) {
        if (!json_is_object(choice)) {
            snprintf(err, errlen, "stream chunk choices[0] is not an object");
            goto out;
        }
        delta = json_object_get(choice, "delta");
        if (delta && !json_is_null(delta) && !json_is_object(delta)) {
            snprintf(err, errlen, "stream chunk delta is not an object");
            goto out;
        }
        content = json_object_get(delta, "content");
        if (content && !json_is_null(content) && !json_is_string(content)) {
            snprintf(err, errlen, "stream chunk delta.content is not a string");
            goto out;
        }
        if (openai_finish(choice, st->finish_reason, sizeof(st->finish_reason), err, errlen) !=
            0)
            goto out;
        if (openai_logprobs(choice, &logprobs, err, errlen) != 0)
            goto out;
        if (logprobs && st->on_logprobs && st->on_logprobs(st->ud, logprobs) != 0) {
            snprintf(err, errlen, "stream aborted by the receiver");
            goto out;
        }
        if (json_is_string(content) && json_string_length(content) > 0 && st->on_text &&
            st->on_text(st->ud, json_string_value(content), json_string_length(content)) != 0) {
            snprintf(err, errlen, "stream aborted by the receiver");
            goto out;
        }
        if (openai_tool_deltas(st, json_object_get(delta, "tool_calls"), err, errlen) != 0)
            goto out;
    }
    u = openai_usage(root, &pt, &ct, &tt, err, errlen);
    if (u < 0)
        goto out;
    if (u == 1) {
        st->prompt_tokens = pt;
        st->completion_tokens = ct;
        st->total_tokens = tt;
        st->has_usage = 1;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static void openai_error_message(long http_status, const char *body, size_t len, char *buf,
                                 size_t buflen)
{
    provider_generic_error(http_status, body, len, buf, buflen);
}

/* {"error": {"message", "type", "param", "code"}}: code is a string, or a
 * number from some compatible servers; null or absent fields stay "". */
static void openai_parse_error(long http_status, const char *body, size_t len, provider_error *out)
{
    json_t *root = provider_error_begin(http_status, body, len, out);
    json_t *e = json_object_get(root, "error"), *v;

    if (json_is_object(e)) {
        if (json_is_string(v = json_object_get(e, "type")))
            provider_copy_text(out->type, sizeof(out->type), json_string_value(v), json_string_length(v));
        if (json_is_string(v = json_object_get(e, "code")))
            provider_copy_text(out->code, sizeof(out->code), json_string_value(v), json_string_length(v));
        else if (json_is_integer(v))
            snprintf(out->code, sizeof(out->code), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        if (json_is_string(v = json_object_get(e, "param")))
            provider_copy_text(out->param, sizeof(out->param), json_string_value(v), json_string_length(v));
    }
    json_decref(root);
}

const provider_ops provider_openai_ops = {
    .type = "openai",
    .build_request = openai_build_request,
    .parse_response = openai_parse_response,
    .parse_stream_event = openai_parse_stream_event,
    .error_message = openai_error_message,
    .parse_error = openai_parse_error,
};
