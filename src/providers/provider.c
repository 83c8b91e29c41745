/*
 * provider.c — helpers shared by every provider: request/response cleanup,
 * the growable buffer, token estimates, and turning untrusted upstream bytes
 * into safe human-readable error messages.
 *
 * Ownership: see provider.h. Nothing here keeps state between calls.
 */
#include "providers/provider.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void provider_request_free(provider_request *req)
{
    if (!req)
        return;
    free(req->url);
    free(req->body);
    for (size_t i = 0; i < req->n_headers; i++)
        free(req->headers[i]);
    memset(req, 0, sizeof(*req));
}

int provider_request_add_header(provider_request *req, const char *fmt, ...)
{
    va_list ap;
    char *h = NULL;
    int n;

    if (req->n_headers >= PROVIDER_MAX_HEADERS)
        return -1;
    va_start(ap, fmt);
    n = vasprintf(&h, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    req->headers[req->n_headers++] = h;
    return 0;
}

void provider_response_free(provider_response *resp)
{
    if (!resp)
        return;
    free(resp->text);
    json_decref(resp->tool_calls);
    json_decref(resp->logprobs);
    memset(resp, 0, sizeof(*resp));
}

int provider_tool_calls_merge(json_t **calls, const json_t *delta, size_t max_bytes)
{
    json_t *index = json_object_get(delta, "index"), *fn = json_object_get(delta, "function"), *v, *call;
    size_t i, total = 0;

    if (!json_is_integer(index) || json_integer_value(index) < 0 ||
        json_integer_value(index) >= PROVIDER_MAX_TOOL_CALLS)
        return -1;
    size_t idx = (size_t)json_integer_value(index);
    if (!*calls && !(*calls = json_array()))
        return -1;
    while (json_array_size(*calls) <= idx)
        if (json_array_append_new(*calls, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", "", "type", "function",
                                                    "function", "name", "", "arguments", "")) != 0)
            return -1;
    call = json_array_get(*calls, idx);
    json_t *cfn = json_object_get(call, "function");
    if (json_is_string(v = json_object_get(delta, "id")) && json_object_set(call, "id", v) != 0)
        return -1;
    if (json_is_string(v = json_object_get(delta, "type")) && json_object_set(call, "type", v) != 0)
        return -1;
    if (json_is_string(v = json_object_get(fn, "name")) && json_object_set(cfn, "name", v) != 0)
        return -1;
    if (!json_is_string(v = json_object_get(fn, "arguments")) || json_string_length(v) == 0)
        return 0;
    json_t *c;
    json_array_foreach(*calls, i, c)
        total += json_string_length(json_object_get(json_object_get(c, "function"), "arguments"));
    size_t add = json_string_length(v);
    if (total + add > max_bytes)
        return -1;
    json_t *args = json_object_get(cfn, "arguments");
    size_t have = json_string_length(args);
    char *joined = malloc(have + add);
    if (!joined)
        return -1;
    memcpy(joined, json_string_value(args), have);
    memcpy(joined + have, json_string_value(v), add);
    /* two valid UTF-8 strings make one */
    int rc = json_object_set_new(cfn, "arguments", json_stringn_nocheck(joined, have + add));
    free(joined);
    return rc == 0 ? 0 : -1;
}

long provider_estimate_tokens(size_t bytes)
{
    size_t t = bytes / 4 + (bytes % 4 != 0);
    return t < 1 ? 1 : (long)t;
}

size_t provider_messages_bytes(const provider_message *msgs, size_t n)
{
    size_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += msgs[i].content_len;
    return sum;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t provider_utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* reject overlong forms, surrogates and values past U+10FFFF */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void provider_copy_text(char *dst, size_t dstlen, const char *src, size_t srclen)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0, i = 0;

    if (dstlen == 0)
        return;
    while (i < srclen) {
        size_t l = provider_utf8_len(s + i, srclen - i);
        if (l == 0) {
            if (o + 1 >= dstlen)
                break;
            dst[o++] = '?';
            i++;
        } else if (l == 1) {
            if (o + 1 >= dstlen)
                break;
            /* messages end up in logs and JSON: no control characters */
            dst[o++] = (s[i] < 0x20 || s[i] == 0x7f) ? ' ' : (char)s[i];
            i++;
        } else {
            if (o + l >= dstlen)
                break; /* never cut a character in half */
            memcpy(dst + o, s + i, l);
            o += l;
            i += l;
        }
    }
    dst[o] = '\0';
}

const char *provider_json_error_text(const json_t *root)
{
    json_t *e, *m;

    if (!json_is_object(root))
        return NULL;
    e = json_object_get(root, "error");
    if (json_is_object(e)) {
        m = json_object_get(e, "message");
        if (json_is_string(m))
            return json_string_value(m);
        m = json_object_get(e, "type");
        if (json_is_string(m))
            return json_string_value(m);
    }
    if (json_is_string(e))
        return json_string_value(e); /* Ollama, llama.cpp: {"error":"..."} */
    m = json_object_get(root, "message");
    if (json_is_string(m))
        return json_string_value(m);
    m = json_object_get(root, "detail"); /* vLLM / FastAPI */
    if (json_is_string(m))
        return json_string_value(m);
    return NULL;
}

void provider_generic_error(long http_status, const char *body, size_t len, char *buf,
                            size_t buflen)
{
    char text[256];
    const char *msg = NULL;
    json_t *root = NULL;
    int n;

    if (buflen == 0)
        return;
    text[0] = '\0';
    if (body && len > 0) {
        root = json_loadb(body, len, 0, NULL);
        msg = provider_json_error_text(root);
        if (msg)
            provider_copy_text(text, sizeof(text), msg, strlen(msg));
        else
            provider_copy_text(text, sizeof(text), body, len < 200 ? len : 200);
    }
    if (text[0])
        n = snprintf(buf, buflen, "HTTP %ld: %s", http_status, text);
    else
        n = snprintf(buf, buflen, "HTTP %ld", http_status);
    (void)n;
    json_decref(root);
}

json_t *provider_error_begin(long http_status, const char *body, size_t len, provider_error *out)
{
    json_t *root = NULL;
    const char *msg = NULL;

    memset(out, 0, sizeof(*out));
    out->http_status = http_status;
    if (!body || len == 0)
        return NULL;
    root = json_loadb(body, len, 0, NULL);
    msg = provider_json_error_text(root);
    if (msg)
        provider_copy_text(out->message, sizeof(out->message), msg, strlen(msg));
    else
        provider_copy_text(out->message, sizeof(out->message), body, len < 200 ? len : 200);
    return root;
}

int provider_json_count(const json_t *obj, const char *key, const char *ctx, long *out,
                        char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);

    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(err, errlen, "%s.%s is not a non-negative integer", ctx, key);
        return -1;
    }
    *out = (long)json_integer_value(v);
    return 1;
}

int provider_buf_append(provider_buf *b, const char *p, size_t n, size_t max)
{
    if (n > max || b->len > max - n)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *d;
        while (cap < b->len + n + 1)
            cap *= 2;
        d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void provider_buf_reset(provider_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void provider_buf_free(provider_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}
