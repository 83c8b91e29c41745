/*
 * v1_validate.c — the rules of a single prompt request (api_v1_prompt.h)
 * and the validation endpoints of spec 003.
 *
 *   GET  /api/v1/validate?prompt=...&model=&temperature=&max_tokens=&variables={json}&prompt_id=
 *   POST /api/v1/validate   {prompt | prompt_id, variables, metadata, model, temperature, max_tokens, async}
 *     -> 200 {"success": true, "data": {"valid", "errors", "warnings", "variables",
 *             "missing_variables", "estimated_tokens", "model"}, "message"}
 *
 * The report is 200 whether or not the prompt is valid: validating is the
 * request, and it succeeded. POST /api/v1/prompt answers the same errors 400.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_v1.h"
#include "api/api_v1_prompt.h"
#include "core/template.h"
#include "engine/engine.h"

static void add_issue(json_t *list, const char *prefix, const char *field, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void add_issue(json_t *list, const char *prefix, const char *field, const char *code, const char *fmt, ...)
{
    char msg[512], name[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", field);
    json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "field", name, "code", code, "message", msg));
}

/* Estimate tokens the way the echo model documents it: ceil(bytes / 4). */
static long estimate_tokens(const char *s) { return s ? (long)((strlen(s) + 3) / 4) : 0; }

void v1_prompt_req_clear(v1_prompt_req *r)
{
    json_decref(r->found_variables);
    json_decref(r->missing_variables);
    free(r->rendered);
    free(r->stored_content);
    memset(r, 0, sizeof *r);
}

/* Member of obj, else of defaults. */
static json_t *field(json_t *obj, json_t *defaults, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if ((!v || json_is_null(v)) && defaults)
        v = json_object_get(defaults, key);
    return v && !json_is_null(v) ? v : NULL;
}

int v1_prompt_check(api_req *rq, json_t *obj, json_t *defaults, const char *prefix, v1_prompt_req *out,
                    json_t *errors, json_t *warnings)
{
    size_t before = json_array_size(errors);
    json_t *wrapped = NULL;
    memset(out, 0, sizeof *out);
    if (json_is_string(obj)) {
        wrapped = json_pack("{s:O}", "prompt", obj);
        obj = wrapped;
    }
    if (!json_is_object(obj)) {
        add_issue(errors, prefix, "prompt", "INVALID_TYPE", "each prompt must be a string or an object");
        goto out;
    }

    json_t *v = json_object_get(obj, "prompt_id");
    int has_prompt_id = v && !json_is_null(v);
    if (has_prompt_id) { /* the prompt's number in the organization, or its UUID */
        char digits[32];
        const char *given = api_v1_ref_text(v, digits);
        int rc = given ? api_v1_ref_lookup(rq, STORE_NUM_PROMPT, given, out->prompt_id, NULL) : API_V1_REF_BAD;
        if (rc == API_V1_REF_BAD) {
            add_issue(errors, prefix, "prompt_id", "INVALID_TYPE",
                      "prompt_id must be a prompt's id: a positive integer (at most %lld) or a UUID",
                      (long long)STORE_NUM_MAX);
        } else if (rc != STORE_OK) {
            add_issue(errors, prefix, "prompt_id", "NOT_FOUND", "no prompt with id %s", given);
            out->prompt_id[0] = '\0';
        }
    }
    v = json_object_get(obj, "prompt");
    if (v && !json_is_null(v) && !json_is_string(v)) {
        add_issue(errors, prefix, "prompt", "INVALID_TYPE", "prompt must be a string");
    } else if (v && !json_is_null(v)) {
        out->text = json_string_value(v);
    }
    if (out->text && out->prompt_id[0]) {
        add_issue(errors, prefix, "prompt", "CONFLICTING_FIELDS", "give either prompt or prompt_id, not both");
    } else if (out->prompt_id[0]) {
        store_prompt p;
        int rc = store_prompt_get(rq->app->store, rq->who.org_id, out->prompt_id, rq->who.user_id, &p);
        if (rc == STORE_OK) {
            out->stored_content = p.content;
            p.content = NULL;
            out->text = out->stored_content;
            store_prompt_clear(&p);
        } else {
            add_issue(errors, prefix, "prompt_id", "NOT_FOUND", "no prompt with id %s", out->prompt_id);
        }
    } else if ((!v || json_is_null(v)) && !has_prompt_id) {
        add_issue(errors, prefix, "prompt", "MISSING_FIELD", "prompt is required");
    }
    if (out->text && !out->prompt_id[0]) {
        const char *p = out->text;
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            add_issue(errors, prefix, "prompt", "EMPTY_PROMPT", "prompt must not be empty");
        else if (strlen(out->text) > V1_PROMPT_MAX_BYTES)
            add_issue(errors, prefix, "prompt", "PROMPT_TOO_LONG", "prompt is %zu bytes; the limit is %d",
                      strlen(out->text), V1_PROMPT_MAX_BYTES);
    }

    if ((v = field(obj, NULL, "variables"))) {
        if (!json_is_object(v))
            add_issue(errors, prefix, "variables", "INVALID_TYPE", "variables must be an object");
        else
            out->variables = v;
    }
    if ((v = field(obj, defaults, "metadata"))) {
        char *dumped = json_is_object(v) ? json_dumps(v, JSON_COMPACT) : NULL;
        if (!json_is_object(v))
            add_issue(errors, prefix, "metadata", "INVALID_TYPE", "metadata must be an object");
        else if (dumped && strlen(dumped) > V1_METADATA_MAX_BYTES)
            add_issue(errors, prefix, "metadata", "TOO_LARGE", "metadata is over %d bytes", V1_METADATA_MAX_BYTES);
        else
            out->metadata = v;
        free(dumped);
    }
    if ((v = field(obj, NULL, "async"))) {
        if (!json_is_boolean(v))
            add_issue(errors, prefix, "async", "INVALID_TYPE", "async must be true or false");
        else
            out->async = json_is_true(v);
    }
    if ((v = field(obj, defaults, "model"))) {
        if (!json_is_string(v))
            add_issue(errors, prefix, "model", "INVALID_TYPE", "model must be a string");
        else
            out->model = json_string_value(v);
    }
    if (!rq->app->engine || (out->model && !engine_model_known(rq->app->engine, out->model)) ||
        (!out->model && !engine_model_known(rq->app->engine, NULL)))
        add_issue(errors, prefix, "model", "UNKNOWN_MODEL", "unknown model '%s'", out->model ? out->model : "");
    if ((v = field(obj, defaults, "temperature"))) {
        if (!json_is_number(v))
            add_issue(errors, prefix, "temperature", "INVALID_TYPE", "temperature must be a number");
        else if (json_number_value(v) < 0 || json_number_value(v) > 2)
            add_issue(errors, prefix, "temperature", "OUT_OF_RANGE", "temperature must be from 0 to 2");
        else {
            out->temperature = json_number_value(v);
            out->has_temperature = 1;
            if (out->temperature > 1.5)
                add_issue(warnings, prefix, "temperature", "HIGH_TEMPERATURE",
                          "temperatures above 1.5 give erratic output on most models");
        }
    }
    if ((v = field(obj, defaults, "max_tokens"))) {
        if (!json_is_integer(v))
            add_issue(errors, prefix, "max_tokens", "INVALID_TYPE", "max_tokens must be an integer");
        else if (json_integer_value(v) < 1 || json_integer_value(v) > 1000000)
            add_issue(errors, prefix, "max_tokens", "OUT_OF_RANGE", "max_tokens must be from 1 to 1000000");
        else
            out->max_tokens = (long)json_integer_value(v);
    }

    if (out->text) {
        template_error terr;
        if (template_variables(out->text, &out->found_variables, &terr) != 0) {
            add_issue(errors, prefix, "prompt", "MALFORMED_TEMPLATE", "%s", terr.message);
        } else if (template_render(out->text, out->variables, &out->rendered, NULL, &out->missing_variables,
                                   &terr) == 0) {
            out->estimated_tokens = estimate_tokens(out->rendered);
            if (json_array_size(out->missing_variables)) {
                char *names = json_dumps(out->missing_variables, JSON_COMPACT);
                add_issue(errors, prefix, "variables", "MISSING_VARIABLES", "missing template variables: %s",
                          names ? names : "?");
                free(names);
            }
            if (out->estimated_tokens > 32000)
                add_issue(warnings, prefix, "prompt", "LONG_PROMPT",
                          "about %ld tokens: longer than many models' context", out->estimated_tokens);
            const char *key;
            json_t *val;
            json_object_foreach(out->variables, key, val)
            {
                int used = 0;
                size_t i;
                json_t *name;
                json_array_foreach(out->found_variables, i, name) used |= !strcmp(json_string_value(name), key);
                if (!used)
                    add_issue(warnings, prefix, "variables", "UNUSED_VARIABLE",
                              "variable '%s' does not appear in the prompt", key);
            }
        }
    }
out:
    json_decref(wrapped);
    return (int)(json_array_size(errors) - before);
}

void v1_reply_invalid(api_req *rq, json_t *errors)
{
    json_t *first = json_array_get(errors, 0);
    const char *msg = json_string_value(json_object_get(first, "message"));
    const char *field = json_string_value(json_object_get(first, "field"));
    char text[600];
    snprintf(text, sizeof text, "%s%s%s", field ? field : "", field ? ": " : "", msg ? msg : "invalid request");
    json_t *body = json_pack("{s:b, s:{s:s, s:s, s:s?, s:O}, s:s}", "success", 0, "error", "code", "BAD_REQUEST",
                             "message", text, "field", field, "details", errors, "message", text);
    http_reply_json(rq->http, 400, body);
}

/* ---- the endpoints ---- */

static void validate_report(api_req *rq, json_t *body)
{
    json_t *errors = json_array(), *warnings = json_array();
    v1_prompt_req pr;
    v1_prompt_check(rq, body, NULL, "", &pr, errors, warnings);
    char model[256] = "";
    if (rq->app->engine)
        engine_model_resolve(rq->app->engine, pr.model, model, sizeof model);
    int valid = json_array_size(errors) == 0;
    json_t *data = json_pack("{s:b, s:o, s:o, s:o, s:o, s:I, s:s?}", "valid", valid, "errors", errors, "warnings",
                             warnings, "variables", pr.found_variables ? json_incref(pr.found_variables) : json_array(),
                             "missing_variables",
                             pr.missing_variables ? json_incref(pr.missing_variables) : json_array(),
                             "estimated_tokens", (json_int_t)pr.estimated_tokens, "model", model[0] ? model : NULL);
    api_v1_reply(rq, 200, data, valid ? "Prompt is valid" : "Prompt is not valid");
    v1_prompt_req_clear(&pr);
}

static void validate_post(api_req *rq)
{
    json_t *body;
    if (api_read_body(rq, &body))
        return;
    validate_report(rq, body);
    json_decref(body);
}

/* GET: query parameters become the same body; numbers and the variables
 * object are parsed from their text, and a bad one is reported, not fatal. */
static void validate_get(api_req *rq)
{
    json_t *body = json_object();
    const char *s;
    static const char *const strings[] = {"prompt", "model", "prompt_id"};
    for (size_t i = 0; i < 3; i++)
        if ((s = http_query(rq->http, strings[i])))
            json_object_set_new(body, strings[i], json_string(s));
    if ((s = http_query(rq->http, "temperature")) && *s) {
        char *end;
        errno = 0;
        double t = strtod(s, &end);
        json_object_set_new(body, "temperature", errno || *end ? json_string(s) : json_real(t));
    }
    if ((s = http_query(rq->http, "max_tokens")) && *s) {
        char *end;
        errno = 0;
        long long m = strtoll(s, &end, 10);
        json_object_set_new(body, "max_tokens", errno || *end ? json_string(s) : json_integer(m));
    }
    if ((s = http_query(rq->http, "variables")) && *s) {
        json_t *vars = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
        json_object_set_new(body, "variables", vars ? vars : json_string(s));
    }
    if (json_object_size(body) == 0 || !json_object_get(body, "prompt")) {
        if (!json_object_get(body, "prompt_id"))
            json_object_set_new(body, "prompt", json_null());
    }
    validate_report(rq, body);
    json_decref(body);
}

int api_routes_v1_validate(app *a)
{
    return api_route(a, "GET", "/api/v1/validate", validate_get, 0) ||
           api_route(a, "POST", "/api/v1/validate", validate_post, 0);
}
