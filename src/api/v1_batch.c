/*
 * v1_batch.c — batches of prompts (spec 003 §3.2).
 *
 *   POST /api/v1/prompts/batch   {"prompts": ["text", {single-prompt fields}, ...],
 *                                 "model"?, "temperature"?, "max_tokens"?, "metadata"?}   (defaults for entries)
 *        -> 202 {"success", "status": "submitted", "batch_id", "request_ids": [...], "data": {...}, "message"}
 *   GET  /api/v1/batches/{id}    counts (total, queued, processing, completed, failed, cancelled) and a status
 *
 * All entries are checked first; one bad entry rejects the batch (400, every
 * problem listed with its index) and nothing is stored. Accepted entries are
 * written in one transaction, queued for the dispatcher. At most
 * V1_BATCH_MAX entries (413 beyond). Idempotency-Key honoured.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_idempotency.h"
#include "api/api_v1.h"
#include "api/api_v1_prompt.h"
#include "core/dispatcher.h"
#include "engine/engine.h"

typedef struct batch_entry {
    v1_prompt_req pr;
    store_prompt prompt;
    char *metadata_text, *vars_text, *messages_text;
    char model[256];
} batch_entry;

/* Every raw-text entry's prompt, found or created in one transaction. */
static int resolve_raw_prompts(api_req *rq, batch_entry *entries, size_t n)
{
    const char **names = calloc(n, sizeof *names), **texts = calloc(n, sizeof *texts),
               **hashes = calloc(n, sizeof *hashes);
    char(*name_buf)[V1_RAW_NAME_MAX + 4] = calloc(n, sizeof *name_buf);
    char(*hash_buf)[65] = calloc(n, sizeof *hash_buf);
    store_prompt *found = calloc(n, sizeof *found);
    size_t *index = calloc(n, sizeof *index), m = 0;
    int rc = STORE_ERR;
    if (!names || !texts || !hashes || !name_buf || !hash_buf || !found || !index)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (entries[i].pr.prompt_id[0])
            continue;
        v1_raw_identity(entries[i].pr.text, name_buf[m], hash_buf[m]);
        names[m] = name_buf[m];
        hashes[m] = hash_buf[m];
        texts[m] = entries[i].pr.text;
        index[m++] = i;
    }
    rc = m ? store_prompt_ensure_raw_many(rq->app->store, rq->who.org_id, rq->who.user_id, m, names, texts, hashes,
                                          found)
           : STORE_OK;
    for (size_t k = 0; rc == STORE_OK && k < m; k++) {
        entries[index[k]].prompt = found[k]; /* moved: the entry owns it now */
        memset(&found[k], 0, sizeof found[k]);
    }
out:
    free(names);
    free(texts);
    free(hashes);
    free(name_buf);
    free(hash_buf);
    free(found);
    free(index);
    return rc;
}

static void batch_submit(api_req *rq)
{
    json_t *body = NULL, *errors = json_array(), *warnings = json_array(), *ids = NULL;
    batch_entry *entries = NULL;
    store_execution *recs = NULL;
    size_t n = 0, i;
    api_idem idem = {0};
    if (api_read_body(rq, &body) || api_idem_begin(rq, &idem))
        goto out;
    json_t *list = json_object_get(body, "prompts");
    if (!json_is_array(list) || json_array_size(list) == 0) {
        http_error(rq->http, 400, NULL, "prompts", "'prompts' must be a non-empty array of strings or objects");
        goto abort;
    }
    n = json_array_size(list);
    if (n > V1_BATCH_MAX) {
        http_error(rq->http, 413, NULL, "prompts", "A batch holds at most %d prompts (got %zu)", V1_BATCH_MAX, n);
        goto abort;
    }
    entries = calloc(n, sizeof *entries);
    recs = calloc(n, sizeof *recs);
    if (!entries || !recs) {
        http_error(rq->http, 500, NULL, NULL, "Out of memory");
        goto abort;
    }
    json_t *item;
    json_array_foreach(list, i, item)
    {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "prompts[%zu].", i);
        v1_prompt_check(rq, item, body, prefix, &entries[i].pr, errors, warnings);
    }
    if (json_array_size(errors) > 0) {
        v1_reply_invalid(rq, errors);
        goto abort;
    }
    if (resolve_raw_prompts(rq, entries, n) != STORE_OK) {
        api_v1_store_error(rq, STORE_ERR, "Prompt");
        goto abort;
    }
    for (i = 0; i < n; i++) {
        batch_entry *e = &entries[i];
        int rc = v1_fill_record(rq, &e->pr, &recs[i], &e->prompt, &e->metadata_text, &e->vars_text);
        json_t *messages = json_pack("[{s:s, s:s}]", "role", "user", "content", e->pr.rendered);
        e->messages_text = messages ? json_dumps(messages, JSON_COMPACT) : NULL;
        json_decref(messages);
        if (rc != STORE_OK || !e->messages_text) {
            api_v1_store_error(rq, rc == STORE_OK ? STORE_ERR : rc, "Prompt");
            goto abort;
        }
        if (engine_model_resolve(rq->app->engine, e->pr.model, e->model, sizeof e->model) == 0)
            recs[i].model = e->model;
        recs[i].messages = e->messages_text;
    }
    store_id batch_id;
    int rc = store_batch_create(rq->app->store, rq->who.org_id, rq->who.user_id, recs, n, batch_id);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Batch");
        goto abort;
    }
    dispatcher_notify(rq->app->dispatcher);
    ids = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(ids, json_string(recs[i].id));
    json_t *data = json_pack("{s:s, s:O, s:I, s:s, s:O}", "batch_id", batch_id, "request_ids", ids, "total",
                             (json_int_t)n, "status", "queued", "warnings", warnings);
    json_t *env = json_pack("{s:b, s:s, s:s, s:O, s:o, s:s}", "success", 1, "status", "submitted", "batch_id",
                            batch_id, "request_ids", ids, "data", data, "message", "Batch submitted for processing");
    api_idem_save(rq->app->store, &idem, 202, env);
    char location[80];
    snprintf(location, sizeof location, "/api/v1/batches/%s", batch_id);
    http_add_header(rq->http, "Location", location);
    http_reply_json(rq->http, 202, env);
    goto out;
abort:
    api_idem_abort(rq->app->store, &idem);
out:
    if (entries) {
        for (i = 0; i < n; i++) {
            v1_prompt_req_clear(&entries[i].pr);
            store_prompt_clear(&entries[i].prompt);
            free(entries[i].metadata_text);
            free(entries[i].vars_text);
            free(entries[i].messages_text);
        }
    }
    free(entries);
    free(recs);
    json_decref(ids);
    json_decref(errors);
    json_decref(warnings);
    json_decref(body);
}

/* queued: nothing started; processing: some left; then the terminal words. */
static const char *batch_status(const store_batch *b)
{
    long open = b->queued + b->processing, ended = b->completed + b->failed + b->cancelled;
    if (open > 0)
        return ended == 0 && b->processing == 0 ? "queued" : "processing";
    if (b->cancelled == b->total)
        return "cancelled";
    if (b->failed == 0 && b->cancelled == 0)
        return "completed";
    if (b->completed == 0)
        return "failed";
    return "completed_with_errors";
}

static void batch_get(api_req *rq)
{
    const char *id;
    if (api_v1_path_id(rq, "id", "Batch", &id))
        return;
    store_batch b;
    int rc = store_batch_get(rq->app->store, rq->who.org_id, id, &b);
    /* as for single requests: a member sees their own batches, an admin all of them */
    if (rc == STORE_OK && !rq->who.is_admin && strcmp(b.user_id, rq->who.user_id) != 0)
        rc = STORE_NOTFOUND;
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Batch");
        return;
    }
    const char *status = batch_status(&b);
    json_t *data = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:o}", "batch_id", b.id, "status", status,
                             "total", (json_int_t)b.total, "queued", (json_int_t)b.queued, "processing",
                             (json_int_t)b.processing, "completed", (json_int_t)b.completed, "failed",
                             (json_int_t)b.failed, "cancelled", (json_int_t)b.cancelled, "user_id", b.user_id,
                             "created_at", api_time(b.created_at));
    json_t *env = json_pack("{s:b, s:s, s:s, s:o, s:s}", "success", 1, "status", status, "batch_id", b.id, "data",
                            data, "message", "Batch status retrieved");
    http_reply_json(rq->http, 200, env);
}

int api_routes_v1_batch(app *a)
{
    return api_route(a, "POST", "/api/v1/prompts/batch", batch_submit, 0) ||
           api_route(a, "GET", "/api/v1/batches/:id", batch_get, 0);
}
