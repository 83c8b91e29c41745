/*
 * api_v1_prompt.h — the single-prompt fields of spec 003 (POST /api/v1/prompt,
 * each entry of POST /api/v1/prompts/batch, /api/v1/validate), checked by
 * one function so the three agree on what the document's 400 row means.
 */
#ifndef PROMPTD_API_V1_PROMPT_H
#define PROMPTD_API_V1_PROMPT_H

#include <jansson.h>

#include "api/api.h"

#define V1_PROMPT_MAX_BYTES 100000
#define V1_METADATA_MAX_BYTES 16384
#define V1_BATCH_MAX 1000

/* A checked single-prompt request. Strings are borrowed from the body. */
typedef struct v1_prompt_req {
    const char *text;      /* the template text (raw prompt, or the stored prompt's content) */
    store_id prompt_id;    /* a stored prompt's UUID (the body names it by number or UUID), "" for a raw prompt */
    json_t *variables;     /* borrowed object or NULL */
    json_t *metadata;      /* borrowed object or NULL */
    const char *model;     /* NULL = default */
    double temperature;
    int has_temperature;
    long max_tokens;
    int async;
    /* filled by the check */
    json_t *found_variables;   /* new ref: variables in the template */
    json_t *missing_variables; /* new ref */
    char *rendered;            /* malloc'd, NULL when the template is malformed */
    long estimated_tokens;
    char *stored_content;      /* malloc'd copy of a stored prompt's content */
} v1_prompt_req;

/* Check obj (one request or batch entry; a JSON string is taken as
 * {"prompt": <string>}) against every rule. Errors go to `errors` and
 * warnings to `warnings` as {"field", "code", "message"} objects, field names
 * prefixed with `prefix` (e.g. "prompts[3]."). defaults (or NULL) supplies
 * model/temperature/max_tokens/metadata when the entry has none. Returns the
 * number of errors added. Always release with v1_prompt_req_clear. */
int v1_prompt_check(api_req *rq, json_t *obj, json_t *defaults, const char *prefix, v1_prompt_req *out,
                    json_t *errors, json_t *warnings);
void v1_prompt_req_clear(v1_prompt_req *r);

#define V1_RAW_NAME_MAX 60

/* A raw prompt's name (its start, on one line) and the hex hash that finds
 * it again. */
void v1_raw_identity(const char *text, char name[V1_RAW_NAME_MAX + 4], char hash_hex[65]);

/* Fill an execution record from a checked request for *prompt. When prompt
 * is zeroed (no id) it is resolved first: the stored prompt, or the raw
 * text's own prompt, created on first use. rec's strings are borrowed from
 * pr, except *metadata_text and *vars_text, which the caller frees. Returns a
 * store code. */
int v1_fill_record(api_req *rq, const v1_prompt_req *pr, store_execution *rec, store_prompt *prompt,
                   char **metadata_text, char **vars_text);

/* 400 BAD_REQUEST whose message is the first error and whose error.details lists all. */
void v1_reply_invalid(api_req *rq, json_t *errors);

#endif
