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
 * Response: the "text" blocks of "content" concatenated; stop_reason mapped
 *           to OpenAI-style finish reasons (end_turn/stop_sequence -> "stop",
 *           max_tokens -> "length", tool_use -> "tool_calls"); usage
 *           input_tokens (+ cache_creation/cache_read input tokens, which
 *           Anthropic counts separately) and output_tokens.
 * Stream:   events message_start (input usage), content_block_delta with
 *           text_delta pieces, message_delta (stop_reason, output usage),
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
        json_t *c, *o;

        if (anthropic_is_system(m->role)) {
            if ((sys.len > 0 && provider_buf_append(&sys, "\n\n", 2, (size_t)-1) != 0) ||
                provider_buf_append(&sys, m->content, m->content_len, (size_t)-1) != 0)
                goto oom;
            continue;
        }
        c = json_stringn(m->content, m->content_len);
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
        if (strcmp(json_string_value(bt), "text") != 0)
            continue; /* thinking, tool_use ...: not part of the text answer */
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
    /* ping, content_block_start/stop and unknown events carry nothing we need */
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

const provider_ops provider_anthropic_ops = {
    .type = "anthropic",
    .build_request = anthropic_build_request,
    .parse_response = anthropic_parse_response,
    .parse_stream_event = anthropic_parse_stream_event,
    .error_message = anthropic_error_message,
};
