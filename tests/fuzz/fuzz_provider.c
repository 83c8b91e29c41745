/*
 * fuzz_provider.c — libFuzzer target for what promptd parses of a model
 * provider's answers, the most untrusted input it reads (providers.h: "a
 * missing field, a field of the wrong type or broken JSON ... never crashes"),
 * and for the requests it builds from a client's messages and options.
 *
 * The first byte picks the mode, the second the wire format (even: OpenAI,
 * odd: Anthropic); the rest is the input:
 *  mode 0  a complete answer body through parse_response, and the same bytes
 *          as an error body through parse_error;
 *  mode 1  a byte stream through the SSE framing (provider_sse_feed in chunks
 *          whose sizes the input's own bytes pick, then provider_sse_finish)
 *          into parse_stream_event, its text and tool-call pieces joined as
 *          the engine joins them (provider_tool_calls_merge);
 *  mode 2  "MESSAGES-JSON\nOPTIONS-JSON": build_request from messages in
 *          OpenAI's vocabulary (tool_calls, tool_call_id, content parts) and
 *          options (tools, tool_choice, stop, ...), as the gateway hands them on.
 * Checked: the parsers return 0 or -1 with a message and stay in bounds; an
 * accepted answer's tool calls are an array of {id, type, function: {name,
 * arguments}} strings, and its logprobs (answer or chunk) an object; a joined stream's calls stay within the limits; a
 * built request's body is JSON (or the build failed with a message).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "providers/provider.h"

enum { MAX_MESSAGES = 64, MAX_JOINED = 1 << 16 };

static void check_calls(const json_t *calls)
{
    size_t i;
    json_t *c;
    if (!calls)
        return;
    if (!json_is_array(calls))
        abort();
    json_array_foreach(calls, i, c)
    {
        json_t *fn = json_object_get(c, "function");
        if (!json_is_string(json_object_get(c, "id")) || !json_is_object(fn) ||
            !json_is_string(json_object_get(fn, "name")) || !json_is_string(json_object_get(fn, "arguments")))
            abort();
    }
}

static int on_text(void *ud, const char *text, size_t len)
{
    (void)ud;
    volatile char sink = 0;
    for (size_t i = 0; i < len; i++)
        sink ^= text[i];
    (void)sink;
    return 0;
}

static int on_logprobs(void *ud, const json_t *logprobs)
{
    (void)ud;
    if (!json_is_object(logprobs))
        abort();
    return 0;
}

typedef struct stream_ctx {
    const provider_ops *ops;
    provider_stream st;
    json_t *calls;
} stream_ctx;

static int on_tool(void *ud, const json_t *delta)
{
    stream_ctx *sc = ud;
    /* a refused piece ends the stream, as in the engine */
    return provider_tool_calls_merge(&sc->calls, delta, MAX_JOINED);
}

static int on_event(void *ud, const char *event, const char *data, size_t len, char *err, size_t errlen)
{
    stream_ctx *sc = ud;
    return sc->ops->parse_stream_event(&sc->st, event, data, len, err, errlen);
}

static void check_err(int rc, const char *err)
{
    if (rc != 0 && rc != -1)
        abort();
    if (rc == -1 && !err[0])
        abort(); /* every refusal says why */
}

/* A provider_error field: terminated inside its array, no control bytes. */
static void check_error_text(const char *s, size_t cap)
{
    size_t len = strnlen(s, cap);
    if (len == cap)
        abort();
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
}

static void answer(const provider_ops *ops, const uint8_t *p, size_t n)
{
    provider_error pe;
    ops->parse_error(400 + (long)(n % 200), (const char *)p, n, &pe);
    check_error_text(pe.message, sizeof pe.message);
    check_error_text(pe.type, sizeof pe.type);
    check_error_text(pe.code, sizeof pe.code);
    check_error_text(pe.param, sizeof pe.param);

    provider_response r;
    char err[256] = "";
    int rc = ops->parse_response((const char *)p, n, &r, err, sizeof err);
    check_err(rc, err);
    if (rc == 0) {
        if (!r.text || r.text[r.text_len] != '\0')
            abort();
        check_calls(r.tool_calls);
        if (r.logprobs && !json_is_object(r.logprobs))
            abort();
    }
    provider_response_free(&r);
}

static void stream(const provider_ops *ops, const uint8_t *p, size_t n)
{
    stream_ctx sc = {.ops = ops};
    provider_sse sse = {0};
    char err[256] = "";
    sc.st.on_text = on_text;
    sc.st.on_tool = on_tool;
    sc.st.on_logprobs = on_logprobs;
    sc.st.ud = &sc;
    int rc = 0;
    size_t off = 0;
    while (rc == 0 && off < n) {
        size_t chunk = 1 + p[off] % 61; /* the input cuts itself into network reads */
        if (chunk > n - off)
            chunk = n - off;
        rc = provider_sse_feed(&sse, (const char *)p + off, chunk, on_event, &sc, err, sizeof err);
        off += chunk;
    }
    if (rc == 0)
        rc = provider_sse_finish(&sse, on_event, &sc, err, sizeof err);
    check_err(rc, err);
    check_calls(sc.calls);
    if (json_array_size(sc.calls) > PROVIDER_MAX_TOOL_CALLS)
        abort();
    json_decref(sc.calls);
    provider_sse_free(&sse);
}

static void build(const provider_ops *ops, const uint8_t *p, size_t n)
{
    const uint8_t *nl = memchr(p, '\n', n);
    size_t mlen = nl ? (size_t)(nl - p) : n;
    json_t *msgs = json_loadb((const char *)p, mlen, JSON_REJECT_DUPLICATES, NULL);
    json_t *opts = nl ? json_loadb((const char *)nl + 1, n - mlen - 1, JSON_REJECT_DUPLICATES, NULL) : NULL;
    provider_message flat[MAX_MESSAGES];
    size_t count = 0, i;
    json_t *m;
    /* the flat view the engine makes: role and the text of a string content */
    json_array_foreach(msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        if (count == MAX_MESSAGES || !json_is_object(m) || !role)
            break;
        flat[count].role = role;
        flat[count].content = json_is_string(content) ? json_string_value(content) : "";
        flat[count].content_len = json_is_string(content) ? json_string_length(content) : 0;
        count++;
    }
    if (count == json_array_size(msgs) && (!opts || json_is_object(opts))) {
        provider_params prm = {.model = "m",
                               .messages = flat,
                               .n_messages = count,
                               .messages_json = msgs,
                               .options = opts,
                               .max_tokens = 16,
                               .stream = (int)(n & 1)};
        provider_endpoint ep = {.base_url = "http://127.0.0.1:1", .api_key = "k"};
        provider_request req;
        char err[256] = "";
        int rc = ops->build_request(&ep, &prm, &req, err, sizeof err);
        check_err(rc, err);
        if (rc == 0) {
            json_t *body = json_loadb(req.body, req.body_len, 0, NULL);
            if (!json_is_object(body))
                abort();
            json_decref(body);
            provider_request_free(&req);
        }
    }
    json_decref(msgs);
    json_decref(opts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const provider_ops *ops = data[1] & 1 ? &provider_anthropic_ops : &provider_openai_ops;
    switch (data[0] % 3) {
    case 0: answer(ops, data + 2, size - 2); break;
    case 1: stream(ops, data + 2, size - 2); break;
    default: build(ops, data + 2, size - 2); break;
    }
    return 0;
}
