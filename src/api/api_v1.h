/*
 * api_v1.h — helpers shared by the /api/v1 endpoint files (specs 002, 003).
 *
 * The v1 surface answers {"success": true, "data": ..., "message": ...};
 * lists put {"items": [...], "pagination": {page, page_size, total_items,
 * total_pages}} in data and take `page` (>= 1, default 1) and `page_size`
 * (1..100, default 20) from the query. Errors come from http_error(), which
 * already speaks the v1 envelope for paths under /api/v1
 * ({"success": false, "error": {"code", "message", "field"?}, "message"}).
 *
 * Every function that can fail answers the request itself (400 naming the
 * parameter, 404, ...) and returns -1; the caller just returns. Functions
 * taking a json_t * steal the reference, even on failure.
 */
#ifndef PROMPTD_API_V1_H
#define PROMPTD_API_V1_H

#include <jansson.h>

#include "api/api.h"

#define API_V1_PAGE_SIZE_DEFAULT 20
#define API_V1_PAGE_SIZE_MAX 100

/* {"success": true, "data": data, "message": message} (data may be NULL: null). */
json_t *api_v1_envelope(json_t *data, const char *message);
/* Answer status with the success envelope. */
void api_v1_reply(api_req *rq, int status, json_t *data, const char *message);

/* {"page", "page_size", "total_items", "total_pages"}. */
json_t *api_v1_pagination(long page, long page_size, long total_items);
/* {"items": items, "pagination": {...}}. */
json_t *api_v1_list(json_t *items, long page, long page_size, long total_items);

/* page (>= 1, default 1) and page_size (1..100, default 20). */
int api_v1_page_params(api_req *rq, long *page, long *page_size);

/* A query parameter that must be one of choices (NULL-terminated, compared
 * case-sensitively). Absent or empty gives def (which may be -1 for "none").
 * *out is the index into choices. */
int api_v1_query_enum(api_req *rq, const char *name, const char *const *choices, int def, int *out);

/* An optional free-text query parameter of at most max_bytes (400 when longer).
 * Absent or only whitespace gives NULL. *out is borrowed. */
int api_v1_query_text(api_req *rq, const char *name, size_t max_bytes, const char **out);

/* The route parameter `name` as a UUID (executions, batches: things with no
 * number); 404 "<what> not found" when it cannot be one (no resource has
 * it). *out is borrowed. */
int api_v1_path_id(api_req *rq, const char *name, const char *what, const char **out);

/* ---- integer ids (spec 002) ----
 * Users, workspaces, data sources and prompts are named on input by their
 * number in the caller's organization or by their UUID (store.h, "integer
 * ids"); either way the functions give the UUID. A number is a positive
 * decimal integer of at most STORE_NUM_MAX. */

#define API_V1_REF_BAD 100 /* api_v1_ref_lookup: text is neither a UUID nor a number in range */

/* Does not answer: STORE_OK with out = the UUID (a UUID is copied unchecked;
 * a number is looked up, *num = it, or 0 for a UUID), STORE_NOTFOUND for a
 * number the organization has not given, API_V1_REF_BAD, or STORE_ERR. */
int api_v1_ref_lookup(api_req *rq, enum store_num_kind kind, const char *text, store_id out, int64_t *num);
/* An optional query parameter: absent or empty gives *given = 0. Neither
 * form: 400 naming the parameter; an unknown number: 404 "<what> not found". */
int api_v1_query_ref(api_req *rq, const char *name, enum store_num_kind kind, const char *what, store_id out,
                     int *given);
/* A route parameter: neither form is a 400 naming the parameter; an unknown
 * number a 404 "<what> not found". */
int api_v1_path_ref(api_req *rq, const char *name, enum store_num_kind kind, const char *what, store_id out);
/* The text of a body member that names an id: a JSON integer's digits (in
 * buf), a string as it is, NULL for anything else. */
const char *api_v1_ref_text(json_t *v, char buf[32]);
/* A body member v (a JSON integer, or a string holding a UUID or a number):
 * anything else, or an unknown number, is a 422 naming field. */
int api_v1_body_ref(api_req *rq, json_t *v, enum store_num_kind kind, const char *field, store_id out);
/* A number as JSON: the integer, or null for 0 (none). */
json_t *api_v1_num(int64_t num);

/* The caller must be an admin of their organization: 403 FORBIDDEN otherwise. */
int api_v1_require_admin(api_req *rq);

/* Store failures in v1 words: NOTFOUND 404 "<what> not found", CONFLICT 409,
 * anything else 500. */
void api_v1_store_error(api_req *rq, int rc, const char *what);

/* ---- a prompt's links (spec 002): workspace_id, tags, data_source_ids ----
 * Shared by the Jarvis prompts API (prompts.c) and any v1 endpoint that
 * creates prompts. Implemented in prompt_links.c. */
typedef struct api_prompt_links {
    const char *workspace_id; /* NULL = not given, "" = null (none), else workspace_buf */
    store_id workspace_buf;   /* the workspace's UUID (the body may name it by number) */
    char *tags;               /* JSON array text of strings (malloc'd), NULL = not given */
    char *data_source_ids;    /* JSON array text of ids (malloc'd), NULL = not given */
} api_prompt_links;

/* Read the optional members workspace_id (id or null), tags (array of up to
 * 50 strings of 1..64 bytes; duplicates dropped) and data_source_ids (array of
 * up to 100 ids; duplicates dropped) of obj (ids: numbers or UUIDs, kept as
 * UUIDs; out must not move while used), and check that the workspace and
 * data sources are the caller's organization's. On error answers 422 naming
 * the field (prefix + name, e.g. "prompt.tags") and returns -1. */
int api_prompt_links_parse(api_req *rq, json_t *obj, const char *prefix, api_prompt_links *out);
void api_prompt_links_free(api_prompt_links *l);
/* Add workspace_id, tags and data_source_ids of p to the object attrs (may be NULL). */
void api_prompt_links_json(json_t *attrs, const store_prompt *p);

#endif
