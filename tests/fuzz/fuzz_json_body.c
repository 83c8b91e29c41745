/*
 * fuzz_json_body.c — libFuzzer target for JSON request bodies: api_read_body
 * (Content-Type rules, JSON parsing with duplicate members rejected, the
 * object requirement and whatever limits it enforces), the field walkers
 * (api_wrapped_object, api_string_field), a prompt's links
 * (api_prompt_links_parse) and the /api/v1 prompt rules (v1_prompt_check,
 * v1_reply_invalid, which render the template with the given variables).
 *
 * Input: "CONTENT-TYPE\nBODY" (an empty first line sends no Content-Type).
 * The input's length picks the error style (Jarvis, /api/v1, OpenAI).
 * Checked: every refusal is a 4xx whose body is a JSON object, never a 5xx;
 * an accepted body is an object that survives a dump and reload unchanged;
 * and the v1 checks list each problem as {field, code, message} strings.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_v1.h"
#include "api/api_v1_prompt.h"
#include "fuzz/fuzz_http.h"

static app the_app;
static auth_principal who;
static char key[AUTH_KEY_LEN + 1];

static const char *const paths[] = {"/prompts", "/api/v1/validate", "/v1/chat/completions"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_app_store(&the_app, &who, key);
    the_app.body_limit = 1 << 20;
    return 0;
}

static void check_issues(const json_t *list, const char *what)
{
    size_t i;
    json_t *v;
    if (!json_is_array(list))
        fz_fail(what, "not an array");
    json_array_foreach(list, i, v)
    {
        if (!json_is_string(json_object_get(v, "field")) || !json_is_string(json_object_get(v, "code")) ||
            !json_is_string(json_object_get(v, "message")))
            fz_fail(what, "an issue lacks field, code or message");
    }
}

/* The v1 rules on one request object (or a batch entry). */
static void v1_rules(api_req *rq, json_t *obj, json_t *defaults, const char *prefix)
{
    json_t *errors = json_array(), *warnings = json_array();
    v1_prompt_req pr;
    int n = v1_prompt_check(rq, obj, defaults, prefix, &pr, errors, warnings);
    if (n < 0 || (size_t)n != json_array_size(errors))
        fz_fail("v1_prompt_check miscounted its errors", NULL);
    check_issues(errors, "v1 errors");
    check_issues(warnings, "v1 warnings");
    if (pr.text && !pr.found_variables && json_array_size(errors) == 0)
        fz_fail("a valid prompt without its variables", NULL);
    if (json_array_size(errors)) {
        fz_req_reset_answer(rq->http);
        v1_reply_invalid(rq, errors);
        if (fz_req_status(rq->http) != 400)
            fz_fail("v1_reply_invalid did not answer 400", NULL);
        fz_req_expect_answer(rq->http, 0, "v1_reply_invalid");
    }
    v1_prompt_req_clear(&pr);
    json_decref(errors);
    json_decref(warnings);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_pieces pc;
    fz_split(data, size, '\n', 2, &pc);
    const char *ct = pc.p[0];
    const char *body = pc.n > 1 ? pc.p[1] : "";
    size_t body_len = pc.n > 1 ? pc.len[1] : 0;

    http_req *r = fz_req_new("POST", paths[size % 3]);
    if (*ct)
        fz_req_header(r, "Content-Type", ct);
    fz_req_body(r, body, body_len);
    api_req rq = {.http = r, .app = &the_app, .who = who};

    json_t *root = NULL;
    if (api_read_body(&rq, &root) != 0) {
        fz_req_expect_answer(r, 0, "api_read_body refused without a 4xx JSON answer");
        goto out;
    }
    if (!json_is_object(root))
        fz_fail("api_read_body gave something other than an object", NULL);
    if (fz_req_status(r))
        fz_fail("api_read_body answered and succeeded", NULL);

    /* dump + reload is the identity (what the store keeps is what came in) */
    char *dumped = json_dumps(root, JSON_COMPACT);
    if (!dumped)
        fz_fail("an accepted body cannot be serialised", NULL);
    json_t *again = json_loads(dumped, JSON_REJECT_DUPLICATES, NULL);
    if (!again || !json_equal(again, root))
        fz_fail("an accepted body does not survive a dump and reload", dumped);
    json_decref(again);
    free(dumped);

    /* the Jarvis walkers */
    json_t *prompt = api_wrapped_object(&rq, root, "prompt");
    if (!prompt) {
        fz_req_expect_answer(r, 0, "api_wrapped_object");
    } else {
        const char *name = NULL, *content = NULL, *desc = NULL;
        fz_req_reset_answer(r);
        if (api_string_field(&rq, prompt, "name", "prompt.name", 1, 1, 255, &name) ||
            api_string_field(&rq, prompt, "content", "prompt.content", 1, 1, 0, &content) ||
            api_string_field(&rq, prompt, "description", "prompt.description", 0, 0, 1000, &desc)) {
            fz_req_expect_answer(r, 0, "api_string_field");
        } else {
            if (!name || !content || !*name)
                fz_fail("a required field passed without a value", NULL);
            if (strlen(name) > 255 || (desc && strlen(desc) > 1000))
                fz_fail("a field passed over its limit", NULL);
        }
        fz_req_reset_answer(r);
        api_prompt_links l;
        if (api_prompt_links_parse(&rq, prompt, "prompt.", &l) != 0)
            fz_req_expect_answer(r, 0, "api_prompt_links_parse");
        else
            api_prompt_links_free(&l);
    }

    /* the v1 rules: the body itself, and each entry of a batch */
    v1_rules(&rq, root, NULL, "");
    json_t *list = json_object_get(root, "prompts");
    if (json_is_array(list)) {
        size_t i;
        json_t *entry;
        char prefix[32];
        json_array_foreach(list, i, entry)
        {
            if (i >= 8)
                break;
            snprintf(prefix, sizeof prefix, "prompts[%zu].", i);
            v1_rules(&rq, entry, json_object_get(root, "defaults"), prefix);
        }
    }
out:
    json_decref(root);
    fz_req_free(r);
    fz_split_free(&pc);
    return 0;
}
