/*
 * test_providers.c — the provider wire formats (src/providers/) in isolation:
 * request building for OpenAI-compatible servers and Anthropic, parsing of
 * complete and streamed answers, and above all that hostile or broken
 * answers (wrong types, missing fields, truncated or random bytes, deep
 * nesting) give a clean error and never a crash (run this under ASan/UBSan).
 * Also the SSE framing, the echo model, and error-message sanitising.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/provider.h"

TestSuite(providers, .timeout = 30);

/* ---- helpers ---- */

static int parse(const provider_ops *ops, const char *body, provider_response *r, char *err)
{
    err[0] = '\0';
    return ops->parse_response(body, strlen(body), r, err, 256);
}

typedef struct collected {
    char text[4096];
    size_t len;
    int pieces;
} collected;

static int collect_text(void *ud, const char *t, size_t n)
{
    collected *c = ud;
    cr_assert_lt(c->len + n, sizeof(c->text));
    memcpy(c->text + c->len, t, n);
    c->len += n;
    c->text[c->len] = '\0';
    c->pieces++;
    return 0;
}

static int event(const provider_ops *ops, provider_stream *st, const char *ev, const char *data,
                 char *err)
{
    err[0] = '\0';
    return ops->parse_stream_event(st, ev, data, strlen(data), err, 256);
}

static const char *header(const provider_request *r, const char *prefix)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strncmp(r->headers[i], prefix, strlen(prefix)) == 0)
            return r->headers[i];
    return NULL;
}

/* ---- OpenAI: requests ---- */

Test(providers, openai_build_request)
{
    provider_message msgs[] = {{"system", "be nice", 7}, {"user", "hi", 2}};
    provider_params p = {.model = "gpt-4o", .messages = msgs, .n_messages = 2, .stream = 1,
                         .max_tokens = 50, .temperature = 0.25, .has_temperature = 1};
    provider_endpoint ep = {.base_url = "http://h:1/v1", .api_key = "k123"};
    provider_request r;
    char err[256];
    json_t *b;

    cr_assert_eq(provider_openai_ops.build_request(&ep, &p, &r, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(r.url, "http://h:1/v1/chat/completions");
    cr_assert_str_eq(header(&r, "Authorization:"), "Authorization: Bearer k123");
    cr_assert_str_eq(header(&r, "Content-Type:"), "Content-Type: application/json");
    cr_assert_str_eq(header(&r, "Accept:"), "Accept: text/event-stream");
    b = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert_not_null(b);
    cr_assert_str_eq(json_string_value(json_object_get(b, "model")), "gpt-4o");
    cr_assert(json_is_true(json_object_get(b, "stream")));
    cr_assert(json_is_true(json_object_get(json_object_get(b, "stream_options"), "include_usage")));
    cr_assert_eq(json_integer_value(json_object_get(b, "max_tokens")), 50);
    cr_assert_float_eq(json_real_value(json_object_get(b, "temperature")), 0.25, 1e-12);
    cr_assert_eq(json_array_size(json_object_get(b, "messages")), 2);
    json_decref(b);
    provider_request_free(&r);

    /* no key, no stream, defaults: no Authorization, no optional fields */
    ep.api_key = NULL;
    p.stream = 0;
    p.max_tokens = 0;
    p.has_temperature = 0;
    cr_assert_eq(provider_openai_ops.build_request(&ep, &p, &r, err, sizeof(err)), 0);
    cr_assert_null(header(&r, "Authorization:"));
    b = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert(json_is_false(json_object_get(b, "stream")));
    cr_assert_null(json_object_get(b, "stream_options"));
    cr_assert_null(json_object_get(b, "max_tokens"));
    cr_assert_null(json_object_get(b, "temperature"));
    json_decref(b);
    provider_request_free(&r);

    /* an empty key is no key */
    ep.api_key = "";
    cr_assert_eq(provider_openai_ops.build_request(&ep, &p, &r, err, sizeof(err)), 0);
    cr_assert_null(header(&r, "Authorization:"));
    provider_request_free(&r);
}

Test(providers, openai_build_request_binary_content)
{
    provider_message bad[] = {{"user", "\xff\xfe", 2}};
    provider_message nul[] = {{"user", "a\0b", 3}};
    provider_params p = {.model = "m", .messages = bad, .n_messages = 1};
    provider_endpoint ep = {.base_url = "http://h"};
    provider_request r;
    char err[256] = "";
    json_t *b;

    cr_assert_eq(provider_openai_ops.build_request(&ep, &p, &r, err, sizeof(err)), -1);
    cr_assert(strstr(err, "UTF-8") != NULL, "%s", err);
    cr_assert_null(r.url, "freed after a failed build");
    p.messages = nul;
    cr_assert_eq(provider_openai_ops.build_request(&ep, &p, &r, err, sizeof(err)), 0);
    b = json_loadb(r.body, r.body_len, JSON_ALLOW_NUL, NULL);
    cr_assert_not_null(b, "%s", r.body);
    cr_assert_eq(json_string_length(json_object_get(json_array_get(json_object_get(b, "messages"), 0),
                                                    "content")),
                 3);
    json_decref(b);
    provider_request_free(&r);
}

/* ---- OpenAI: complete answers ---- */

Test(providers, openai_parse_response_ok)
{
    provider_response r;
    char err[256];

    cr_assert_eq(parse(&provider_openai_ops,
                       "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hi!\"},"
                       "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":7,"
                       "\"completion_tokens\":2,\"total_tokens\":9}}",
                       &r, err),
                 0, "%s", err);
    cr_assert_str_eq(r.text, "Hi!");
    cr_assert_eq(r.text_len, 3);
    cr_assert_str_eq(r.finish_reason, "length");
    cr_assert(r.has_usage);
    cr_assert_eq(r.prompt_tokens, 7);
    cr_assert_eq(r.completion_tokens, 2);
    cr_assert_eq(r.total_tokens, 9);
    provider_response_free(&r);

    /* null content, no finish_reason, no total: "" and a computed total */
    cr_assert_eq(parse(&provider_openai_ops,
                       "{\"choices\":[{\"message\":{\"content\":null}}],"
                       "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":0}}",
                       &r, err),
                 0, "%s", err);
    cr_assert_str_eq(r.text, "");
    cr_assert_str_eq(r.finish_reason, "");
    cr_assert_eq(r.total_tokens, 1);
    provider_response_free(&r);

    /* no usage at all: success, has_usage = 0 (the engine estimates) */
    cr_assert_eq(parse(&provider_openai_ops, "{\"choices\":[{\"message\":{\"content\":\"x\"}}]}",
                       &r, err),
                 0);
    cr_assert_not(r.has_usage);
    provider_response_free(&r);
    cr_assert_eq(parse(&provider_openai_ops,
                       "{\"choices\":[{\"message\":{\"content\":\"x\"}}],\"usage\":null}", &r, err),
                 0);
    cr_assert_not(r.has_usage);
    provider_response_free(&r);
}

Test(providers, openai_parse_response_hostile)
{
    static const char *const bad[] = {
        "",
        "null",
        "[]",
        "\"text\"",
        "42",
        "{",
        "{\"choices\":",
        "{}",
        "{\"choices\":[]}",
        "{\"choices\":{}}",
        "{\"choices\":[1]}",
        "{\"choices\":[{}]}",
        "{\"choices\":[{\"message\":\"hi\"}]}",
        "{\"choices\":[{\"message\":{\"content\":42}}]}",
        "{\"choices\":[{\"message\":{\"content\":[\"a\"]}}]}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"},\"finish_reason\":7}]}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":\"lots\"}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":{}}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":\"1\","
        "\"completion_tokens\":\"2\"}}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":-1,"
        "\"completion_tokens\":2}}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":1.5,"
        "\"completion_tokens\":2}}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":1,"
        "\"completion_tokens\":2,\"total_tokens\":\"3\"}}",
        "{\"error\":{\"message\":\"quota exceeded\"}}",
        "{\"choices\":[{\"message\":{\"content\":\"a\"}}]} trailing",
        "{\"choices\":[{\"message\":{\"content\":\"\\ud800\"}}]}",
    };
    provider_response r;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(parse(&provider_openai_ops, bad[i], &r, err), -1, "accepted: %s", bad[i]);
        cr_assert_neq(err[0], '\0', "no message for: %s", bad[i]);
        cr_assert_null(r.text);
    }
    cr_assert_eq(parse(&provider_openai_ops, "{\"error\":{\"message\":\"quota exceeded\"}}", &r,
                       err),
                 -1);
    cr_assert(strstr(err, "quota exceeded") != NULL, "%s", err);
}

Test(providers, deep_nesting_and_random_bytes_do_not_crash)
{
    enum { DEPTH = 100000 };
    char *deep = malloc(2 * DEPTH + 1);
    provider_response r;
    provider_stream st = {0};
    char err[256];
    unsigned seed = 12345;
    const provider_ops *ops[] = {&provider_openai_ops, &provider_anthropic_ops};

    memset(deep, '[', DEPTH);
    memset(deep + DEPTH, ']', DEPTH);
    deep[2 * DEPTH] = '\0';
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(parse(ops[k], deep, &r, err), -1);
        cr_assert_eq(event(ops[k], &st, "", deep, err), -1);
    }
    free(deep);

    /* random bytes, and random mutations of a valid answer */
    for (int i = 0; i < 3000; i++) {
        char buf[256];
        size_t n = (size_t)(rand_r(&seed) % (int)sizeof(buf));
        const char *base = i % 2 ? "{\"choices\":[{\"delta\":{\"content\":\"ab\"},\"finish_reason\":"
                                   "null}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}"
                                 : "{\"type\":\"content_block_delta\",\"delta\":{\"type\":"
                                   "\"text_delta\",\"text\":\"ab\"}}";
        if (i % 3 == 0) {
            for (size_t j = 0; j < n; j++)
                buf[j] = (char)rand_r(&seed);
        } else {
            n = strlen(base);
            memcpy(buf, base, n);
            for (int m = 0; m < 3; m++)
                buf[rand_r(&seed) % (int)n] = (char)rand_r(&seed);
        }
        for (int k = 0; k < 2; k++) {
            if (ops[k]->parse_response(buf, n, &r, err, sizeof(err)) == 0)
                provider_response_free(&r);
            memset(&st, 0, sizeof(st));
            ops[k]->parse_stream_event(&st, i % 2 ? "message_start" : "", buf, n, err,
                                       sizeof(err));
        }
    }
}

/* ---- OpenAI: streams ---- */

Test(providers, openai_stream_events)
{
    provider_stream st = {0};
    collected c = {0};
    char err[256];

    st.on_text = collect_text;
    st.ud = &c;
    cr_assert_eq(event(&provider_openai_ops, &st, "",
                       "{\"choices\":[{\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}",
                       err),
                 0, "%s", err);
    cr_assert_eq(event(&provider_openai_ops, &st, "",
                       "{\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}", err),
                 0);
    cr_assert_eq(event(&provider_openai_ops, &st, "",
                       "{\"choices\":[{\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}",
                       err),
                 0);
    cr_assert_not(st.has_usage);
    cr_assert_eq(event(&provider_openai_ops, &st, "",
                       "{\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,"
                       "\"total_tokens\":5}}",
                       err),
                 0);
    cr_assert_not(st.done);
    cr_assert_eq(event(&provider_openai_ops, &st, "", "[DONE]", err), 0);
    cr_assert(st.done);
    cr_assert_str_eq(c.text, "Hello");
    cr_assert_eq(c.pieces, 2);
    cr_assert_str_eq(st.finish_reason, "stop");
    cr_assert(st.has_usage);
    cr_assert_eq(st.total_tokens, 5);

    /* errors inside the stream */
    memset(&st, 0, sizeof(st));
    cr_assert_eq(event(&provider_openai_ops, &st, "", "{\"error\":{\"message\":\"overloaded\"}}",
                       err),
                 -1);
    cr_assert(strstr(err, "overloaded") != NULL);
    cr_assert_eq(event(&provider_openai_ops, &st, "", "{\"choices\":[{\"delta\":{\"content\":1}}]}",
                       err),
                 -1);
    cr_assert_eq(event(&provider_openai_ops, &st, "", "{\"choices\":\"x\"}", err), -1);
    cr_assert_eq(event(&provider_openai_ops, &st, "", "{\"choices\":[{\"delta\":[]}]}", err), -1);
    cr_assert_eq(event(&provider_openai_ops, &st, "", "{\"choices\":[{\"delta\":{\"cont", err), -1);
    cr_assert_eq(event(&provider_openai_ops, &st, "", "", err), -1);
}

/* Log probabilities: a body's choices[0].logprobs kept as sent; a stream's
 * handed to on_logprobs before the same chunk's text; a wrong type fails. */
typedef struct lp_log {
    char order[64]; /* 'L' for logprobs, 'T' for text, in arrival order */
    char tokens[128];
} lp_log;

static int lp_logprobs(void *ud, const json_t *lp)
{
    lp_log *l = ud;
    strcat(l->order, "L");
    strcat(l->tokens, json_string_value(json_object_get(json_array_get(json_object_get(lp, "content"), 0), "token")));
    return 0;
}

static int lp_text(void *ud, const char *t, size_t n)
{
    (void)t;
    (void)n;
    strcat(((lp_log *)ud)->order, "T");
    return 0;
}

Test(providers, openai_logprobs)
{
    provider_response r;
    char err[256];
    cr_assert_eq(parse(&provider_openai_ops,
                       "{\"choices\":[{\"message\":{\"content\":\"Hi\"},\"logprobs\":{\"content\":[{\"token\":"
                       "\"Hi\",\"logprob\":-0.5,\"bytes\":[72,105],\"top_logprobs\":[]}],\"refusal\":null}}]}",
                       &r, err),
                 0, "%s", err);
    cr_assert_not_null(r.logprobs);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(json_object_get(r.logprobs, "content"), 0), "token")), "Hi");
    provider_response_free(&r);
    cr_assert_eq(
        parse(&provider_openai_ops, "{\"choices\":[{\"message\":{\"content\":\"Hi\"},\"logprobs\":null}]}", &r, err), 0,
        "%s", err);
    cr_assert_null(r.logprobs);
    provider_response_free(&r);
    static const char *const bad[] = {"[]", "1", "\"x\"", "true"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"choices\":[{\"message\":{\"content\":\"Hi\"},\"logprobs\":%s}]}", bad[i]);
        cr_assert_eq(parse(&provider_openai_ops, body, &r, err), -1, "%s", body);
        cr_assert(strstr(err, "logprobs"), "%s", err);
        cr_assert_null(r.logprobs);
    }

    provider_stream st = {0};
    lp_log l = {0};
    st.on_text = lp_text;
    st.on_logprobs = lp_logprobs;
    st.ud = &l;
    cr_assert_eq(
        event(&provider_openai_ops, &st, "",
              "{\"choices\":[{\"delta\":{\"content\":\"He\"},\"logprobs\":{\"content\":[{\"token\":\"He\"}]}}]}", err),
        0, "%s", err);
    cr_assert_eq(
        event(&provider_openai_ops, &st, "", "{\"choices\":[{\"delta\":{\"content\":\"y\"},\"logprobs\":null}]}", err),
        0, "%s", err);
    cr_assert_eq(event(&provider_openai_ops, &st, "",
                       "{\"choices\":[{\"delta\":{\"content\":\"!\"},\"logprobs\":{\"content\":[{\"token\":\"!\"}]}}]}",
                       err),
                 0, "%s", err);
    cr_assert_str_eq(l.order, "LTTLT", "logprobs before their chunk's text");
    cr_assert_str_eq(l.tokens, "He!");
    cr_assert_eq(event(&provider_openai_ops, &st, "", "{\"choices\":[{\"delta\":{},\"logprobs\":[1]}]}", err), -1);
    /* without a receiver they are dropped */
    st.on_logprobs = NULL;
    cr_assert_eq(event(&provider_openai_ops, &st, "",
                       "{\"choices\":[{\"delta\":{\"content\":\"x\"},\"logprobs\":{\"content\":[]}}]}", err),
                 0, "%s", err);
}

/* ---- Anthropic ---- */

Test(providers, anthropic_build_request)
{
    provider_message msgs[] = {{"system", "A", 1},
                               {"user", "q1", 2},
                               {"assistant", "a1", 2},
                               {"developer", "B", 1},
                               {"user", "q2", 2}};
    provider_params p = {.model = "claude-x", .messages = msgs, .n_messages = 5, .stream = 1};
    provider_endpoint ep = {.base_url = "https://api.anthropic.com", .api_key = "sk-ant"};
    provider_request r;
    char err[256];
    json_t *b, *m;

    cr_assert_eq(provider_anthropic_ops.build_request(&ep, &p, &r, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_str_eq(r.url, "https://api.anthropic.com/v1/messages");
    cr_assert_str_eq(header(&r, "x-api-key:"), "x-api-key: sk-ant");
    cr_assert_str_eq(header(&r, "anthropic-version:"), "anthropic-version: 2023-06-01");
    cr_assert_null(header(&r, "Authorization:"));
    b = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert_not_null(b);
    cr_assert_str_eq(json_string_value(json_object_get(b, "system")), "A\n\nB");
    cr_assert_eq(json_integer_value(json_object_get(b, "max_tokens")), 1024);
    cr_assert(json_is_true(json_object_get(b, "stream")));
    cr_assert_null(json_object_get(b, "stream_options"));
    cr_assert_null(json_object_get(b, "temperature"));
    m = json_object_get(b, "messages");
    cr_assert_eq(json_array_size(m), 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(m, 1), "role")), "assistant");
    json_decref(b);
    provider_request_free(&r);

    p.max_tokens = 9;
    p.has_temperature = 1;
    p.temperature = 1.0;
    p.n_messages = 1; /* no system message: no "system" field */
    p.messages = msgs + 1;
    ep.api_key = NULL;
    cr_assert_eq(provider_anthropic_ops.build_request(&ep, &p, &r, err, sizeof(err)), 0);
    cr_assert_null(header(&r, "x-api-key:"));
    b = json_loadb(r.body, r.body_len, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(b, "max_tokens")), 9);
    cr_assert_null(json_object_get(b, "system"));
    cr_assert(json_is_number(json_object_get(b, "temperature")));
    json_decref(b);
    provider_request_free(&r);
}

Test(providers, anthropic_parse_response)
{
    provider_response r;
    char err[256];
    static const char *const bad[] = {
        "{}",
        "{\"content\":\"text\"}",
        "{\"content\":[{\"text\":\"no type\"}]}",
        "{\"content\":[{\"type\":\"text\",\"text\":5}]}",
        "{\"content\":[],\"usage\":{\"input_tokens\":\"3\",\"output_tokens\":1}}",
        "{\"content\":[],\"usage\":{\"input_tokens\":3}}",
        "{\"content\":[],\"stop_reason\":1}",
        "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
        "{\"content\":[{\"type\":\"text\",\"text\":\"cut",
    };

    cr_assert_eq(parse(&provider_anthropic_ops,
                       "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"Hello \"},"
                       "{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}},"
                       "{\"type\":\"text\",\"text\":\"world\"}],\"stop_reason\":\"max_tokens\","
                       "\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,"
                       "\"output_tokens\":3}}",
                       &r, err),
                 0, "%s", err);
    cr_assert_str_eq(r.text, "Hello world");
    cr_assert_str_eq(r.finish_reason, "length");
    cr_assert_eq(r.prompt_tokens, 15);
    cr_assert_eq(r.completion_tokens, 3);
    cr_assert_eq(r.total_tokens, 18);
    provider_response_free(&r);

    cr_assert_eq(parse(&provider_anthropic_ops,
                       "{\"content\":[],\"stop_reason\":\"end_turn\"}", &r, err),
                 0);
    cr_assert_str_eq(r.text, "");
    cr_assert_str_eq(r.finish_reason, "stop");
    cr_assert_not(r.has_usage);
    provider_response_free(&r);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(parse(&provider_anthropic_ops, bad[i], &r, err), -1, "accepted: %s", bad[i]);
        cr_assert_neq(err[0], '\0');
    }
    cr_assert_eq(parse(&provider_anthropic_ops, bad[7], &r, err), -1);
    cr_assert(strstr(err, "Overloaded") != NULL, "%s", err);
}

Test(providers, anthropic_stream_events)
{
    provider_stream st = {0};
    collected c = {0};
    char err[256];
    const provider_ops *a = &provider_anthropic_ops;

    st.on_text = collect_text;
    st.ud = &c;
    cr_assert_eq(event(a, &st, "message_start",
                       "{\"type\":\"message_start\",\"message\":{\"content\":[],"
                       "\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}",
                       err),
                 0, "%s", err);
    cr_assert_not(st.has_usage, "usage is whole only with the output side");
    cr_assert_eq(event(a, &st, "content_block_start",
                       "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                       "{\"type\":\"text\",\"text\":\"\"}}",
                       err),
                 0);
    cr_assert_eq(event(a, &st, "ping", "{\"type\":\"ping\"}", err), 0);
    cr_assert_eq(event(a, &st, "content_block_delta",
                       "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                       "\"text_delta\",\"text\":\"Hi \"}}",
                       err),
                 0);
    cr_assert_eq(event(a, &st, "content_block_delta",
                       "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                       "\"input_json_delta\",\"partial_json\":\"{\"}}",
                       err),
                 0);
    cr_assert_eq(event(a, &st, "content_block_delta",
                       "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                       "\"text_delta\",\"text\":\"there\"}}",
                       err),
                 0);
    cr_assert_eq(event(a, &st, "message_delta",
                       "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
                       "\"usage\":{\"output_tokens\":4}}",
                       err),
                 0);
    cr_assert_not(st.done);
    cr_assert_eq(event(a, &st, "message_stop", "{\"type\":\"message_stop\"}", err), 0);
    cr_assert(st.done);
    cr_assert_str_eq(c.text, "Hi there");
    cr_assert(st.has_usage);
    cr_assert_eq(st.prompt_tokens, 12);
    cr_assert_eq(st.completion_tokens, 4);
    cr_assert_eq(st.total_tokens, 16);
    cr_assert_str_eq(st.finish_reason, "stop");

    memset(&st, 0, sizeof(st));
    cr_assert_eq(event(a, &st, "error",
                       "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                       "\"message\":\"Overloaded\"}}",
                       err),
                 -1);
    cr_assert(strstr(err, "Overloaded") != NULL);
    cr_assert_eq(event(a, &st, "message_start", "{\"type\":\"message_start\",\"message\":3}", err),
                 -1);
    cr_assert_eq(event(a, &st, "", "{\"type\":\"content_block_delta\",\"delta\":{\"type\":"
                                   "\"text_delta\",\"text\":null}}",
                       err),
                 -1);
    cr_assert_eq(event(a, &st, "", "{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":"
                                   "\"4\"}}",
                       err),
                 -1);
    cr_assert_eq(event(a, &st, "", "not json", err), -1);
    /* the event name stands in when "type" is missing */
    memset(&st, 0, sizeof(st));
    cr_assert_eq(event(a, &st, "message_stop", "{}", err), 0);
    cr_assert(st.done);
}

/* ---- error messages ---- */

static void errmsg(const provider_ops *ops, long status, const char *body, char *buf, size_t n)
{
    ops->error_message(status, body, body ? strlen(body) : 0, buf, n);
}

Test(providers, error_messages)
{
    char buf[300];
    char big[2000];

    errmsg(&provider_openai_ops, 429, "{\"error\":{\"message\":\"Rate limit\",\"type\":\"x\"}}", buf,
           sizeof(buf));
    cr_assert_str_eq(buf, "HTTP 429: Rate limit");
    errmsg(&provider_anthropic_ops, 529,
           "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
           buf, sizeof(buf));
    cr_assert_str_eq(buf, "HTTP 529: Overloaded");
    errmsg(&provider_openai_ops, 404, "{\"error\":\"model 'x' not found\"}", buf, sizeof(buf));
    cr_assert_str_eq(buf, "HTTP 404: model 'x' not found");
    errmsg(&provider_openai_ops, 502, "<html>\r\nBad\tgateway\x01</html>", buf, sizeof(buf));
    cr_assert_str_eq(buf, "HTTP 502: <html>  Bad gateway </html>");
    provider_openai_ops.error_message(500, NULL, 0, buf, sizeof(buf));
    cr_assert_str_eq(buf, "HTTP 500");
    memset(big, 'x', sizeof(big));
    provider_openai_ops.error_message(500, big, sizeof(big), buf, sizeof(buf));
    cr_assert_lt(strlen(buf), 220, "a raw body is cut short");
    provider_openai_ops.error_message(500, "x", 1, buf, 5);
    cr_assert_str_eq(buf, "HTTP");
}

Test(providers, parse_error_takes_the_providers_words)
{
    provider_error e;
    const char *oai =
        "{\"error\":{\"message\":\"This model's maximum context length is 8192 tokens.\","
        "\"type\":\"invalid_request_error\",\"param\":\"messages\",\"code\":\"context_length_exceeded\"}}";

    provider_openai_ops.parse_error(400, oai, strlen(oai), &e);
    cr_assert_eq(e.http_status, 400);
    cr_assert_str_eq(e.message, "This model's maximum context length is 8192 tokens.");
    cr_assert_str_eq(e.type, "invalid_request_error");
    cr_assert_str_eq(e.code, "context_length_exceeded");
    cr_assert_str_eq(e.param, "messages");

    /* null param and code, a numeric code, a plain-string error, no body, not JSON */
    const char *nulls =
        "{\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}";
    provider_openai_ops.parse_error(422, nulls, strlen(nulls), &e);
    cr_assert_str_eq(e.message, "bad");
    cr_assert_str_eq(e.code, "");
    cr_assert_str_eq(e.param, "");
    const char *num = "{\"error\":{\"message\":\"m\",\"code\":400}}";
    provider_openai_ops.parse_error(400, num, strlen(num), &e);
    cr_assert_str_eq(e.code, "400");
    cr_assert_str_eq(e.type, "");
    provider_openai_ops.parse_error(404, "{\"error\":\"model 'x' not found\"}", 31, &e);
    cr_assert_str_eq(e.message, "model 'x' not found");
    provider_openai_ops.parse_error(413, NULL, 0, &e);
    cr_assert_eq(e.http_status, 413);
    cr_assert_str_eq(e.message, "");
    provider_openai_ops.parse_error(400, "<html>\x01no</html>", strlen("<html>\x01no</html>"), &e);
    cr_assert_str_eq(e.message, "<html> no</html>");

    const char *ant =
        "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"prompt is too long\"}}";
    provider_anthropic_ops.parse_error(400, ant, strlen(ant), &e);
    cr_assert_str_eq(e.message, "prompt is too long");
    cr_assert_str_eq(e.type, "invalid_request_error");
    cr_assert_str_eq(e.code, "");
    cr_assert_str_eq(e.param, "");
}

Test(providers, copy_text_is_safe_utf8)
{
    char out[8];

    provider_copy_text(out, sizeof(out), "abc", 3);
    cr_assert_str_eq(out, "abc");
    /* "ab" + U+00E9 (2 bytes) + U+20AC (3 bytes) = 7 bytes: fits exactly */
    provider_copy_text(out, sizeof(out), "ab\xc3\xa9\xe2\x82\xac", 7);
    cr_assert_str_eq(out, "ab\xc3\xa9\xe2\x82\xac");
    /* one more byte of room needed for the euro: never cut it in half */
    provider_copy_text(out, 7, "ab\xc3\xa9\xe2\x82\xac", 7);
    cr_assert_str_eq(out, "ab\xc3\xa9");
    provider_copy_text(out, sizeof(out), "\xff\xc3(\xed\xa0\x80", 6);
    cr_assert_str_eq(out, "?" "?(" "???"); /* split: "??(" is a trigraph in C17 */
    provider_copy_text(out, sizeof(out), "a\nb\0c", 5);
    cr_assert_str_eq(out, "a b c");
    provider_copy_text(out, 1, "abc", 3);
    cr_assert_str_eq(out, "");
}

/* ---- echo ---- */

Test(providers, echo_reply_and_pieces)
{
    provider_message m[] = {{"system", "12345", 5}, {"user", "first", 5}, {"assistant", "x", 1},
                            {"user", " hi  there\n", 11}};
    provider_response r;
    char err[64];
    size_t off = 0, n;
    int pieces = 0;
    char joined[32] = "";

    cr_assert_eq(provider_echo_reply(m, 4, &r, err, sizeof(err)), 0);
    cr_assert_str_eq(r.text, " hi  there\n");
    cr_assert_eq(r.prompt_tokens, 6); /* 22 bytes -> ceil(22/4) */
    cr_assert_eq(r.completion_tokens, 3); /* 11 bytes */
    cr_assert_eq(r.total_tokens, 9);
    cr_assert_str_eq(r.finish_reason, "stop");
    while ((n = provider_echo_piece(r.text, r.text_len, off)) > 0) {
        strncat(joined, r.text + off, n);
        off += n;
        pieces++;
    }
    cr_assert_str_eq(joined, r.text);
    cr_assert_eq(pieces, 2);
    provider_response_free(&r);

    /* no user message: "" with minimum token counts */
    cr_assert_eq(provider_echo_reply(m, 1, &r, err, sizeof(err)), 0);
    cr_assert_str_eq(r.text, "");
    cr_assert_eq(r.prompt_tokens, 2);
    cr_assert_eq(r.completion_tokens, 1);
    provider_response_free(&r);
    cr_assert_eq(provider_estimate_tokens(0), 1);
    cr_assert_eq(provider_estimate_tokens(4), 1);
    cr_assert_eq(provider_estimate_tokens(5), 2);
}

/* ---- SSE framing ---- */

typedef struct sse_log {
    char buf[4096];
    size_t len;
    int events;
} sse_log;

static int sse_record(void *ud, const char *ev, const char *data, size_t len, char *err,
                      size_t errlen)
{
    sse_log *l = ud;
    int n;

    (void)err;
    (void)errlen;
    cr_assert_eq(data[len], '\0', "data is NUL-terminated");
    n = snprintf(l->buf + l->len, sizeof(l->buf) - l->len, "<%s|%.*s>", ev, (int)len, data);
    l->len += (size_t)n;
    l->events++;
    return 0;
}

static void sse_run(const char *in, size_t chunk, sse_log *l)
{
    provider_sse s = {0};
    char err[128];
    size_t n = strlen(in);

    memset(l, 0, sizeof(*l));
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        cr_assert_eq(provider_sse_feed(&s, in + off, k, sse_record, l, err, sizeof(err)), 0);
    }
    cr_assert_eq(provider_sse_finish(&s, sse_record, l, err, sizeof(err)), 0);
    provider_sse_free(&s);
}

Test(providers, sse_framing)
{
    const char *in = ": keep-alive comment\r\n"
                     "event: message_start\r\n"
                     "data: {\"a\":1}\r\n"
                     "\r\n"
                     "data:no-space\n"
                     "data:  two spaces\n"
                     "id: 7\n"
                     "\n"
                     "\n"
                     "event: x\rdata: cr only\r\r"
                     "data: [DONE]\n\n"
                     "data: last without blank line";
    const char *want = "<message_start|{\"a\":1}><|no-space\n two spaces><x|cr only><|[DONE]>"
                       "<|last without blank line>";
    sse_log l;

    for (size_t chunk = 1; chunk <= strlen(in); chunk++) {
        sse_run(in, chunk, &l);
        cr_assert_str_eq(l.buf, want, "chunk size %zu", chunk);
        cr_assert_eq(l.events, 5);
    }
}

static int sse_fail(void *ud, const char *ev, const char *data, size_t len, char *err,
                    size_t errlen)
{
    (void)ud;
    (void)ev;
    (void)data;
    (void)len;
    snprintf(err, errlen, "refused");
    return -1;
}

Test(providers, sse_limits_and_errors)
{
    provider_sse s = {0};
    char err[128] = "";
    char *big = malloc(PROVIDER_SSE_MAX_LINE + 10);
    sse_log l = {0};

    memset(big, 'a', PROVIDER_SSE_MAX_LINE + 10);
    memcpy(big, "data: ", 6);
    cr_assert_eq(provider_sse_feed(&s, big, PROVIDER_SSE_MAX_LINE + 10, sse_record, &l, err,
                                   sizeof(err)),
                 -1);
    cr_assert(strstr(err, "too long") != NULL, "%s", err);
    free(big);
    provider_sse_free(&s);

    /* the callback's error stops the feed */
    err[0] = '\0';
    cr_assert_eq(provider_sse_feed(&s, "data: x\n\n", 9, sse_fail, NULL, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "refused");
    provider_sse_free(&s);

    /* a reset forgets a half-received event */
    cr_assert_eq(provider_sse_feed(&s, "data: half", 10, sse_record, &l, err, sizeof(err)), 0);
    provider_sse_reset(&s);
    cr_assert_eq(provider_sse_feed(&s, "data: new\n\n", 11, sse_record, &l, err, sizeof(err)), 0);
    cr_assert_str_eq(l.buf, "<|new>");
    provider_sse_free(&s);
}

/* ---- tool calls ---- */

typedef struct tool_pieces {
    json_t *deltas; /* copies of what on_tool received */
} tool_pieces;

static int collect_tool(void *ud, const json_t *d)
{
    tool_pieces *t = ud;
    json_array_append_new(t->deltas, json_deep_copy(d));
    return 0;
}

Test(providers, openai_tool_calls)
{
    provider_response r;
    char err[256];

    cr_assert_eq(parse(&provider_openai_ops,
                       "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
                       "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
                       "\"finish_reason\":\"tool_calls\"}]}",
                       &r, err),
                 0, "%s", err);
    cr_assert_eq(json_array_size(r.tool_calls), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(r.tool_calls, 0), "id")), "c1");
    cr_assert_str_eq(r.finish_reason, "tool_calls");
    cr_assert_eq(r.text_len, 0);
    provider_response_free(&r);

    static const char *const bad[] = {
        "{\"choices\":[{\"message\":{\"tool_calls\":{}}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[1]}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"f\"}}]}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":1,\"arguments\":\"\"}}]}}]}",
        "{\"choices\":[{\"message\":{\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(parse(&provider_openai_ops, bad[i], &r, err), -1, "accepted: %s", bad[i]);
        cr_assert_null(r.tool_calls);
    }

    /* streamed pieces are handed on as they are; malformed ones break the stream */
    tool_pieces t = {json_array()};
    provider_stream st = {0};
    st.on_tool = collect_tool;
    st.ud = &t;
    cr_assert_eq(event(&provider_openai_ops, &st, "",
                       "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"type\":\"function\","
                       "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
                       err),
                 0, "%s", err);
    cr_assert_eq(event(&provider_openai_ops, &st, "",
                       "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]},"
                       "\"finish_reason\":\"tool_calls\"}]}",
                       err),
                 0, "%s", err);
    cr_assert_eq(json_array_size(t.deltas), 2);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(json_array_get(t.deltas, 1), "function"), "arguments")),
        "{}");
    cr_assert_str_eq(st.finish_reason, "tool_calls");
    /* pieces without an index (some compatible servers): an id opens the next call */
    provider_stream st2 = {0};
    tool_pieces t2 = {json_array()};
    st2.on_tool = collect_tool;
    st2.ud = &t2;
    static const char *const unnumbered[] = {
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"f\"}}]}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\"{}\"}}]}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"b\",\"function\":{\"name\":\"g\"}}]}}]}",
    };
    for (size_t i = 0; i < sizeof(unnumbered) / sizeof(unnumbered[0]); i++)
        cr_assert_eq(event(&provider_openai_ops, &st2, "", unnumbered[i], err), 0, "%s", err);
    cr_assert_eq(json_array_size(t2.deltas), 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(json_integer_value(json_object_get(json_array_get(t2.deltas, i), "index")), i < 2 ? 0 : 1,
                     "piece %zu", i);
    json_decref(t2.deltas);

    static const char *const bad_stream[] = {
        "{\"choices\":[{\"delta\":{\"tool_calls\":{}}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":\"0\"}]}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":-1}]}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":100000}]}}]}",
        "{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":\"f\"}]}}]}",
    };
    for (size_t i = 0; i < sizeof(bad_stream) / sizeof(bad_stream[0]); i++)
        cr_assert_eq(event(&provider_openai_ops, &st, "", bad_stream[i], err), -1, "accepted: %s", bad_stream[i]);
    json_decref(t.deltas);
}

Test(providers, anthropic_tool_use)
{
    provider_response r;
    char err[256];

    cr_assert_eq(parse(&provider_anthropic_ops,
                       "{\"content\":[{\"type\":\"text\",\"text\":\"Let me look.\"},{\"type\":\"tool_use\",\"id\":"
                       "\"tu1\",\"name\":\"f\",\"input\":{\"a\":[1,2]}}],\"stop_reason\":\"tool_use\","
                       "\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}",
                       &r, err),
                 0, "%s", err);
    cr_assert_str_eq(r.text, "Let me look.");
    cr_assert_str_eq(r.finish_reason, "tool_calls");
    json_t *c = json_array_get(r.tool_calls, 0);
    cr_assert_str_eq(json_string_value(json_object_get(c, "id")), "tu1");
    cr_assert_str_eq(json_string_value(json_object_get(c, "type")), "function");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "function"), "name")), "f");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "function"), "arguments")), "{\"a\":[1,2]}");
    provider_response_free(&r);
    cr_assert_eq(
        parse(&provider_anthropic_ops, "{\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\"}]}", &r, err),
        -1, "a tool_use without input");
    cr_assert_eq(
        parse(&provider_anthropic_ops, "{\"content\":[{\"type\":\"tool_use\",\"name\":\"f\",\"input\":{}}]}", &r, err),
        -1, "a tool_use without id");

    /* stream: tool calls are numbered among themselves, text blocks aside */
    tool_pieces t = {json_array()};
    provider_stream st = {0};
    st.on_tool = collect_tool;
    st.ud = &t;
    static const char *const evs[] = {
        "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
        "{\"type\":\"content_block_stop\",\"index\":0}",
        "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu1\","
        "\"name\":\"f\",\"input\":{}}}",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":"
        "\"{\\\"a\\\":\"}}",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":"
        "\"1}\"}}",
        "{\"type\":\"content_block_stop\",\"index\":1}",
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        cr_assert_eq(event(&provider_anthropic_ops, &st, "", evs[i], err), 0, "%s: %s", evs[i], err);
    cr_assert_eq(json_array_size(t.deltas), 3);
    json_t *first = json_array_get(t.deltas, 0);
    cr_assert_eq(json_integer_value(json_object_get(first, "index")), 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "id")), "tu1");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(first, "function"), "name")), "f");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(json_array_get(t.deltas, 2), "function"), "arguments")),
        "1}");
    cr_assert_eq(event(&provider_anthropic_ops, &st, "",
                       "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\"}}", err),
                 -1, "a tool_use block without id and name");
    json_decref(t.deltas);
}

Test(providers, options_and_rich_messages_in_requests)
{
    json_t *opts = json_loads("{\"top_p\":0.5,\"seed\":3,\"max_tokens\":9,\"model\":\"evil\"}", 0, NULL);
    json_t *mj = json_loads("[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"\","
                            "\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
                            "\"arguments\":\"{}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"r\"}]",
                            0, NULL);
    provider_message msgs[] = {{"user", "q", 1}, {"assistant", "", 0}, {"tool", "r", 1}};
    provider_params p = {.model = "m", .messages = msgs, .n_messages = 3, .messages_json = mj, .options = opts};
    provider_endpoint ep = {.base_url = "http://x"};
    provider_request req;
    char err[256];

    /* openai: options as given, except the fields the format sets itself */
    cr_assert_eq(provider_openai_ops.build_request(&ep, &p, &req, err, sizeof(err)), 0, "%s", err);
    json_t *b = json_loads(req.body, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(b, "model")), "m");
    cr_assert_eq(json_integer_value(json_object_get(b, "seed")), 3);
    cr_assert_null(json_object_get(b, "max_tokens"));
    cr_assert(json_equal(json_object_get(b, "messages"), mj));
    json_decref(b);
    provider_request_free(&req);

    /* anthropic: seed cannot be expressed */
    cr_assert_eq(provider_anthropic_ops.build_request(&ep, &p, &req, err, sizeof(err)), -1);
    cr_assert(strstr(err, "'seed'") != NULL, "%s", err);
    json_object_del(opts, "seed");
    json_object_del(opts, "max_tokens");
    json_object_del(opts, "model");
    cr_assert_eq(provider_anthropic_ops.build_request(&ep, &p, &req, err, sizeof(err)), 0, "%s", err);
    b = json_loads(req.body, 0, NULL);
    json_t *want = json_loads("[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":[{\"type\":"
                              "\"tool_use\",\"id\":\"c1\",\"name\":\"f\",\"input\":{}}]},{\"role\":\"user\","
                              "\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"c1\",\"content\":\"r\"}]}]",
                              0, NULL);
    cr_assert(json_equal(json_object_get(b, "messages"), want), "%s", req.body);
    json_decref(want);
    json_decref(b);
    provider_request_free(&req);
    cr_assert(provider_anthropic_option_ok("top_p"));
    cr_assert_not(provider_anthropic_option_ok("logit_bias"));
    json_decref(opts);
    json_decref(mj);
}

Test(providers, tool_call_pieces_are_joined_by_index)
{
    json_t *calls = NULL;
    static const char *const pieces[] = {
        "{\"index\":0,\"id\":\"a\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}",
        "{\"index\":1,\"id\":\"b\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"x\\\"\"}}",
        "{\"index\":0,\"function\":{\"arguments\":\"{\\\"y\\\":\"}}",
        "{\"index\":1,\"function\":{\"arguments\":\":1}\"}}",
        "{\"index\":0,\"function\":{\"arguments\":\"2}\"}}",
    };
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        json_t *d = json_loads(pieces[i], 0, NULL);
        cr_assert_eq(provider_tool_calls_merge(&calls, d, 1000), 0, "%s", pieces[i]);
        json_decref(d);
    }
    json_t *want = json_loads("[{\"id\":\"a\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
                              "\"{\\\"y\\\":2}\"}},{\"id\":\"b\",\"type\":\"function\",\"function\":{\"name\":\"g\","
                              "\"arguments\":\"{\\\"x\\\":1}\"}}]",
                              0, NULL);
    cr_assert(json_equal(calls, want), "%s", json_dumps(calls, JSON_COMPACT));
    json_decref(want);

    /* an index out of range, and arguments past the limit, are refused */
    json_t *d = json_pack("{s:i}", "index", PROVIDER_MAX_TOOL_CALLS);
    cr_assert_eq(provider_tool_calls_merge(&calls, d, 1000), -1);
    json_decref(d);
    d = json_pack("{s:i}", "index", -1);
    cr_assert_eq(provider_tool_calls_merge(&calls, d, 1000), -1);
    json_decref(d);
    d = json_pack("{s:s}", "index", "0");
    cr_assert_eq(provider_tool_calls_merge(&calls, d, 1000), -1);
    json_decref(d);
    d = json_pack("{s:i, s:{s:s}}", "index", 1, "function", "arguments", "0123456789");
    cr_assert_eq(provider_tool_calls_merge(&calls, d, 23), -1, "14 bytes so far + 10 would pass 23");
    cr_assert_eq(provider_tool_calls_merge(&calls, d, 24), 0, "14 + 10 = 24 fits");
    json_decref(d);
    /* a later piece may name a call the stream skipped: the gap is an empty call */
    d = json_pack("{s:i, s:s}", "index", 3, "id", "d");
    cr_assert_eq(provider_tool_calls_merge(&calls, d, 1000), 0);
    cr_assert_eq(json_array_size(calls), 4);
    json_decref(d);
    json_decref(calls);
}

Test(providers, what_anthropic_can_take)
{
    static const struct {
        const char *part;
        int ok;
    } parts[] = {
        {"{\"type\":\"text\",\"text\":\"hi\"}", 1},
        {"{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}", 1},
        {"{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x/y.png\"}}", 1},
        {"{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}", 1},
        {"{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/svg+xml,<svg/>\"}}", 0},
        {"{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/,x\"}}", 0},
        {"{\"type\":\"image_url\",\"image_url\":{\"url\":\"ftp://x/y.png\"}}", 0},
        {"{\"type\":\"image_url\",\"image_url\":{}}", 0},
        {"{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"AAAA\"}}", 0},
    };
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        json_t *p = json_loads(parts[i].part, 0, NULL);
        cr_assert_eq(provider_anthropic_part_ok(p), parts[i].ok, "%s", parts[i].part);
        json_decref(p);
    }
    cr_assert(provider_anthropic_arguments_ok(""));
    cr_assert(provider_anthropic_arguments_ok("{\"a\":1}"));
    cr_assert_not(provider_anthropic_arguments_ok("[1]"));
    cr_assert_not(provider_anthropic_arguments_ok("{\"a\":"));
}
