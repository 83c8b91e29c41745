/*
 * response.c — building answers: raw bodies, JSON, empty, extra headers, and
 * the error envelope of each API style (see http.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/utf8.h"
#include "http/http_internal.h"

void http_reply(http_req *r, int status, const char *content_type, char *body, size_t len)
{
    free(r->out_body);
    free(r->out_type);
    r->out_status = status;
    r->out_body = body;
    r->out_len = body ? len : 0;
    r->out_type = content_type ? strdup(content_type) : NULL;
    r->reply_ready = 1;
}

void http_reply_json(http_req *r, int status, json_t *json)
{
    /* 15 significant digits: 0.7 stays 0.7 (17 would print 0.69999999999999996) */
    char *s = json ? json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(json);
    if (!s) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        log_error("http: cannot serialise a JSON answer");
        http_reply(r, 500, "application/json", strdup(oom), sizeof oom - 1);
        return;
    }
    http_reply(r, status, "application/json", s, strlen(s));
}

void http_reply_empty(http_req *r, int status) { http_reply(r, status, NULL, NULL, 0); }

void http_set_upstream_us(http_req *r, long long us) { r->upstream_us = us < 0 ? 0 : us; }

void http_add_header(http_req *r, const char *name, const char *value)
{
    for (size_t i = 0; i < r->nheaders; i++) { /* replace: a header is set once */
        if (strcasecmp(r->headers[i].name, name) == 0) {
            char *v = strdup(value);
            if (v) {
                free(r->headers[i].value);
                r->headers[i].value = v;
            }
            return;
        }
    }
    if (r->nheaders == r->cap_headers) {
        size_t cap = r->cap_headers ? r->cap_headers * 2 : 8;
        struct http_header_kv *n = realloc(r->headers, cap * sizeof *n);
        if (!n)
            return;
        r->headers = n;
        r->cap_headers = cap;
    }
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return;
    }
    r->headers[r->nheaders].name = n;
    r->headers[r->nheaders].value = v;
    r->nheaders++;
}

struct status_words {
    int status;
    const char *title, *jarvis, *v1, *openai_type;
};

static const struct status_words words[] = {
    {400, "Bad Request", "bad_request", "BAD_REQUEST", "invalid_request_error"},
    {401, "Unauthorized", "unauthorized", "UNAUTHORIZED", "authentication_error"},
    {403, "Forbidden", "forbidden", "FORBIDDEN", "permission_error"},
    {404, "Not Found", "not_found", "NOT_FOUND", "not_found_error"},
    {405, "Method Not Allowed", "method_not_allowed", "METHOD_NOT_ALLOWED", "invalid_request_error"},
    {409, "Conflict", "conflict", "CONFLICT", "invalid_request_error"},
    {413, "Payload Too Large", "payload_too_large", "PAYLOAD_TOO_LARGE", "invalid_request_error"},
    {415, "Unsupported Media Type", "unsupported_media_type", "UNSUPPORTED_MEDIA_TYPE", "invalid_request_error"},
    {422, "Unprocessable Entity", "unprocessable_entity", "VALIDATION_ERROR", "invalid_request_error"},
    {429, "Too Many Requests", "rate_limited", "RATE_LIMITED", "rate_limit_error"},
    {431, "Request Header Fields Too Large", "headers_too_large", "HEADERS_TOO_LARGE", "invalid_request_error"},
    {500, "Internal Server Error", "internal_error", "INTERNAL_SERVER_ERROR", "api_error"},
    {501, "Not Implemented", "not_implemented", "NOT_IMPLEMENTED", "invalid_request_error"},
    {502, "Bad Gateway", "upstream_error", "UPSTREAM_ERROR", "api_error"},
    {503, "Service Unavailable", "service_unavailable", "SERVICE_UNAVAILABLE", "api_error"},
    {504, "Gateway Timeout", "upstream_timeout", "UPSTREAM_TIMEOUT", "timeout_error"},
    {507, "Insufficient Storage", "insufficient_storage", "INSUFFICIENT_STORAGE", "api_error"},
};

static const struct status_words *words_for(int status)
{
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (words[i].status == status)
            return &words[i];
    return status >= 500 ? &words[11] : &words[0]; /* 500, 400 */
}

const char *http_status_code(enum http_style style, int status)
{
    const struct status_words *w = words_for(status);
    return style == HTTP_STYLE_V1 ? w->v1 : style == HTTP_STYLE_OPENAI ? w->openai_type : w->jarvis;
}

/* The error envelope of r's style. up: an upstream's own words to pass on
 * (http_error_upstream), or NULL. */
static void error_reply(http_req *r, int status, const char *title, const char *field, const http_upstream_error *up,
                        char *detail)
{
    utf8_scrub(detail); /* it may quote request bytes, or be cut inside a character */
    const struct status_words *w = words_for(status);
    char status_s[8];
    snprintf(status_s, sizeof status_s, "%d", status);
    json_t *body = NULL, *upstream = NULL;
    if (up) /* what the provider said of its refusal: {type, code, param}, null where it said nothing */
        upstream =
            json_pack("{s:s?, s:s?, s:s?}", "type", up->type && *up->type ? up->type : NULL, "code",
                      up->code && *up->code ? up->code : NULL, "param", up->param && *up->param ? up->param : NULL);

    switch (r->style) {
    case HTTP_STYLE_V1: {
        json_t *err = json_pack("{s:s, s:s}", "code", w->v1, "message", detail);
        if (err && field)
            json_object_set_new(err, "field", json_string(field));
        if (err && upstream)
            json_object_set(err, "upstream", upstream);
        body = json_pack("{s:b, s:o, s:s}", "success", 0, "error", err, "message", detail);
        break;
    }
    case HTTP_STYLE_OPENAI: {
        /* an upstream's refusal keeps its own type, code and param, as OpenAI's SDKs read them */
        if (up)
            body = json_pack("{s:{s:s, s:s, s:O, s:O}}", "error", "message", detail, "type",
                             up->type && *up->type ? up->type : w->openai_type, "param",
                             json_object_get(upstream, "param"), "code", json_object_get(upstream, "code"));
        else
            body = json_pack("{s:{s:s, s:s, s:s?, s:s}}", "error", "message", detail, "type", w->openai_type, "param",
                             field, "code", w->jarvis);
        break;
    }
    case HTTP_STYLE_JARVIS:
    default: {
        json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "status", status_s, "code", w->jarvis, "title",
                              title ? title : w->title, "detail", detail);
        if (e && field) {
            char pointer[160];
            snprintf(pointer, sizeof pointer, "/%s", field);
            for (char *p = pointer; *p; p++)
                if (*p == '.')
                    *p = '/';
            json_object_set_new(e, "source", json_pack("{s:s}", "pointer", pointer));
        }
        if (e && upstream)
            json_object_set_new(e, "meta", json_pack("{s:O}", "upstream", upstream));
        body = json_pack("{s:[o]}", "errors", e);
        break;
    }
    }
    json_decref(upstream);
    http_reply_json(r, status, body);
}

void http_error(http_req *r, int status, const char *title, const char *field, const char *detail_fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, detail_fmt);
    vsnprintf(detail, sizeof detail, detail_fmt, ap);
    va_end(ap);
    error_reply(r, status, title, field, NULL, detail);
}

void http_error_upstream(http_req *r, int status, const char *title, const http_upstream_error *up,
                         const char *detail_fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, detail_fmt);
    vsnprintf(detail, sizeof detail, detail_fmt, ap);
    va_end(ap);
    error_reply(r, status, title, NULL, up, detail);
}
