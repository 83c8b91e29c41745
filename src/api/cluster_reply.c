/*
 * cluster_reply.c — sending a message to a cluster conversation, and the
 * cluster answering it (spec 001).
 *
 *   POST /clusters/:id/conversations/:conversation_id/messages[?stream=true]
 *        {"message": {"role": "user", "content": "...", "entity_id": optional}}
 *
 * A "user" message is stored, then every member entity (or only entity_id,
 * which must be a member) replies through the engine, all at once: each
 * reply is a call with
 *   system:    the entity's persona, the cluster's contexts ("name: content")
 *              and any system messages of the conversation,
 *   history:   the last CLUSTER_HISTORY_MAX completed messages, user turns as
 *              "user", assistant turns as "assistant" (another entity's
 *              prefixed with its name),
 *   user:      the new message.
 * Each reply is an "assistant" message naming its entity, added as
 * "processing" together with the user message (so replies keep the members'
 * order) and finished as "completed" or "failed" (with its error); each is
 * also recorded as an execution (source "cluster", see core/execution.h),
 * whose id the message keeps. Messages with role "assistant" or "system"
 * are stored without replies (entity_id then names the author).
 *
 * No thread waits: the request is suspended (or, with stream=true, answered
 * by an SSE stream) while the engine runs the calls; a counter under a mutex
 * (the replies still running, plus one held by the handler while it submits)
 * tells the last finisher to answer:
 *   201 {"data": <the user message, relationships.replies>, "included": [<replies>],
 *        "meta": {"replies_count", "completed_count", "failed_count"}}
 * or, streamed (200, text/event-stream):
 *   event: message      data: {"data": <the user message>}
 *   event: reply_chunk  data: {"message_id", "entity_id", "entity_name", "content": "<piece>"}
 *   event: reply        data: {"data": <a finished reply>}        one per member
 *   event: done         data: {"message_id", "replies_count", "completed_count", "failed_count"}
 *
 * When every reply fails, the answer is not 201 (nor a 200 stream) but the
 * first failure's (in the members' order) error: 502 / 504 for an outage, the
 * provider's own 4xx with its message for a refusal (its type, code and
 * param in errors[0].meta.upstream); the user message and the failed replies
 * stay in the conversation, as they do in a mixed outcome. So a stream holds
 * its status line until a member's first piece (or a completed reply): a
 * stream that cannot start is that error answer; the replies that failed
 * before it started are sent as "reply" events right after "message".
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_clusters.h"
#include "api/api_idempotency.h"
#include "api/api_run.h"
#include "api/api_stream.h"
#include "core/execution.h"
#include "core/log.h"
#include "core/timeutil.h"

#define CLUSTER_HISTORY_MAX 50

typedef struct reply_join reply_join;

/* One member's reply while it runs. */
typedef struct reply_slot {
    reply_join *join;
    store_message msg; /* the "processing" row as added (owns entity_name and model) */
    json_t *resource;  /* the finished reply, set once by reply_done */
    int failed;
    int finished; /* join->lock: resource is final (a stream sends it once open) */
    /* a failure's answer, should every reply fail: its HTTP status, message
     * and (a provider's refusal) its words; malloc'd, only for failures */
    int http_status;
    enum store_failure retry_after; /* a failure to record: BUSY / UNAVAILABLE answer with Retry-After */
    char *error;
    char *rej_type, *rej_code, *rej_param;
} reply_slot;

/* Everything the replies share; freed by whoever finishes last. */
struct reply_join {
    store_t *store;
    http_req *http;      /* sync: the suspended request */
    http_stream *stream; /* streaming: the answer being written */
    engine_valve *valve; /* streaming: flow control shared by the replies (api_stream.h); ours, or NULL */
    api_idem idem;       /* the Idempotency-Key reserved for this request, if any */
    pthread_mutex_t lock;
    size_t pending; /* replies running + 1 while the handler submits */
    int streaming;  /* a stream was asked for; stream is set once its status line went out (lock) */
    json_t *user_message;
    size_t count;
    reply_slot slots[];
};

/* ---------------------------------------------------------------- SSE */

/* Write one event and drop the reference to data. */
static void sse_send(http_stream *st, const char *event, json_t *data)
{
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if (!text)
        return;
    size_t n = strlen(text) + strlen(event) + 24;
    char *frame = malloc(n);
    if (frame) {
        int len = snprintf(frame, n, "event: %s\ndata: %s\n\n", event, text);
        http_stream_write(st, frame, (size_t)len);
        free(frame);
    }
    free(text);
}

/* ---------------------------------------------------------------- the answer */

static void join_free(reply_join *j)
{
    for (size_t i = 0; i < j->count; i++) {
        json_decref(j->slots[i].resource);
        store_message_clear(&j->slots[i].msg);
        free(j->slots[i].error);
        free(j->slots[i].rej_type);
        free(j->slots[i].rej_code);
        free(j->slots[i].rej_param);
    }
    json_decref(j->user_message);
    engine_valve_unref(j->valve);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

/* The user message's resource with relationships.replies (new reference). */
static json_t *user_message_with_replies(reply_join *j)
{
    json_t *res = json_deep_copy(j->user_message);
    if (!res)
        return NULL;
    json_t *refs = json_array();
    for (size_t i = 0; i < j->count; i++)
        json_array_append_new(refs, json_pack("{s:s, s:s}", "id", j->slots[i].msg.id, "type", "message"));
    json_t *rel = json_object_get(res, "relationships");
    if (!rel) {
        rel = json_object();
        json_object_set_new(res, "relationships", rel);
    }
    json_object_set_new(rel, "replies", json_pack("{s:o}", "data", refs));
    return res;
}

/* {role, content, timestamp} of a message resource, as the Jarvis SDK's
 * sendMessage reads it (new reference). */
static json_t *plain_message(json_t *resource)
{
    json_t *a = json_object_get(resource, "attributes");
    return json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?}", "role", json_object_get(a, "role"), "content",
                     json_object_get(a, "content"), "timestamp", json_object_get(a, "created_at"), "entity_id",
                     json_object_get(a, "entity_id"), "entity_name", json_object_get(a, "entity_name"));
}

/* The JSON answer: the user message with relationships.replies, the replies
 * in `included`, the counts in `meta` (new reference, NULL when out of memory).
 * Beside them, the plain summary the Jarvis SDK reads: `message` (the user's),
 * `response` and `execution_unique_id` (the first completed reply), `tokens`
 * (all replies' total). */
static json_t *join_document(reply_join *j, size_t failed)
{
    json_t *included = json_array(), *first = NULL;
    json_int_t tokens = 0;
    for (size_t i = 0; i < j->count; i++) {
        json_t *r = j->slots[i].resource;
        json_array_append(included, r);
        json_t *a = json_object_get(r, "attributes");
        tokens += json_integer_value(json_object_get(json_object_get(a, "usage"), "total_tokens"));
        if (!first && !j->slots[i].failed)
            first = r;
    }
    json_t *doc = json_pack("{s:o, s:o, s:{s:I, s:I, s:I}}", "data", user_message_with_replies(j), "included",
                            included, "meta", "replies_count", (json_int_t)j->count, "completed_count",
                            (json_int_t)(j->count - failed), "failed_count", (json_int_t)failed);
    if (!doc)
        return NULL;
    json_object_set_new(doc, "message", plain_message(j->user_message));
    json_object_set_new(doc, "response", first ? plain_message(first) : json_null());
    json_t *exec = first ? json_object_get(json_object_get(first, "attributes"), "execution_id") : NULL;
    json_object_set_new(doc, "execution_unique_id", exec ? json_incref(exec) : json_null());
    json_object_set_new(doc, "tokens", json_integer(tokens));
    return doc;
}

/* Every reply failed: answer the first failure (in the members' order) as the
 * request's error; the Idempotency-Key is released, so a retry runs again. */
static void join_fail(reply_join *j)
{
    const reply_slot *f = &j->slots[0];
    for (size_t i = 0; i < j->count; i++)
        if (j->slots[i].error) {
            f = &j->slots[i];
            break;
        }
    api_idem_abort(j->store, &j->idem);
    const char *uid = json_string_value(json_object_get(j->user_message, "id"));
    int status = f->http_status ? f->http_status : 502;
    api_run_retry_after(j->http, f->retry_after);
    if (f->rej_type && f->rej_code && f->rej_param && status < 500) {
        http_upstream_error up = {.type = f->rej_type, .code = f->rej_code, .param = f->rej_param};
        http_error_upstream(j->http, status, "Reply Failed", &up, "%s replied with an error: %s (message %s)",
                            f->msg.entity_name ? f->msg.entity_name : "a member", f->error ? f->error : "?",
                            uid ? uid : "?");
    } else {
        http_error(j->http, status, "Reply Failed", NULL, "No member could reply; %s: %s (message %s)",
                   f->msg.entity_name ? f->msg.entity_name : "a member",
                   f->error ? f->error : "the reply could not be started", uid ? uid : "?");
    }
    http_resume(j->http);
    join_free(j);
}

/* Every reply is in: answer (sync) or end the stream, keep the answer for
 * Idempotency-Key repeats (the JSON form, also for a stream), free everything;
 * or, when every reply failed before anything was sent, join_fail. */
static void join_complete(reply_join *j)
{
    size_t failed = 0;
    for (size_t i = 0; i < j->count; i++)
        failed += j->slots[i].failed ? 1 : 0;
    if (j->streaming && !j->stream) {
        if (j->http) { /* never opened: no piece came and no reply completed */
            join_fail(j);
            return;
        }
        api_idem_abort(j->store, &j->idem); /* the stream could not be made: answered 500 */
        join_free(j);
        return;
    }
    if (!j->streaming && failed == j->count) {
        join_fail(j);
        return;
    }
    json_t *doc = !j->stream || j->idem.active ? join_document(j, failed) : NULL;
    if (doc)
        api_idem_save(j->store, &j->idem, 201, doc);
    else
        api_idem_abort(j->store, &j->idem);
    if (j->stream) {
        const char *user_id = json_string_value(json_object_get(j->user_message, "id"));
        sse_send(j->stream, "done",
                 json_pack("{s:s, s:I, s:I, s:I}", "message_id", user_id ? user_id : "", "replies_count",
                           (json_int_t)j->count, "completed_count", (json_int_t)(j->count - failed),
                           "failed_count", (json_int_t)failed));
        http_stream_close(j->stream);
        json_decref(doc);
    } else {
        if (doc)
            http_reply_json(j->http, 201, doc);
        else
            http_error(j->http, 500, NULL, NULL, "Out of memory");
        http_resume(j->http);
    }
    join_free(j);
}

/* The first piece (or completed reply) is here: the status line, the user
 * message, and the replies that failed before. Called with j->lock held;
 * NULL when the stream could not be made (then answered 500). */
static http_stream *stream_open(reply_join *j)
{
    if (j->stream || !j->http)
        return j->stream;
    j->stream = http_reply_stream(j->http, 200, "text/event-stream");
    api_stream_flow(j->stream, j->valve);
    http_resume(j->http);
    j->http = NULL; /* answered */
    if (!j->stream)
        return NULL;
    sse_send(j->stream, "message", json_pack("{s:O}", "data", j->user_message));
    for (size_t i = 0; i < j->count; i++)
        if (j->slots[i].finished && j->slots[i].resource)
            sse_send(j->stream, "reply", json_pack("{s:O}", "data", j->slots[i].resource));
    return j->stream;
}

/* Drop one reference; the last one answers. */
static void join_release(reply_join *j)
{
    pthread_mutex_lock(&j->lock);
    int last = --j->pending == 0;
    pthread_mutex_unlock(&j->lock);
    if (last)
        join_complete(j);
}

/* Record a reply's outcome, tell a streaming client, release the slot. */
static void slot_finish(reply_slot *slot, const store_message_result *r, int http_status,
                        const engine_rejection *rejected)
{
    reply_join *j = slot->join;
    store_message row;
    store_message_result lost;
    char lost_error[160];
    slot->failed = strcmp(r->status, "completed") != 0;
    store_failure_reset();
    int rc = store_message_finish(j->store, slot->msg.id, r, &row);
    if (rc == STORE_ERR) {
        /* the store refused the reply's outcome: its text is not handed out unrecorded; the
         * reply answers as failed, with why (and, should every reply fail, the request too) */
        enum store_failure why = store_last_failure() ? store_last_failure() : STORE_FAIL_OTHER;
        log_error("cluster reply %s: could not record the outcome (%s)", slot->msg.id, store_failure_text(why));
        snprintf(lost_error, sizeof lost_error, "The reply could not be recorded: %s", store_failure_text(why));
        lost = (store_message_result){
            .status = "failed", .content = "", .error = lost_error, .model = r->model, .execution_id = r->execution_id};
        r = &lost;
        slot->failed = 1;
        http_status = exec_unrecorded_http_status(why);
        rejected = NULL;
        if (why == STORE_FAIL_BUSY || why == STORE_FAIL_UNAVAILABLE)
            slot->retry_after = why;
    }
    if (rc == STORE_OK) {
        slot->resource = api_cluster_message_json(&row);
        store_message_clear(&row);
    } else {
        /* not recorded (conversation deleted meanwhile, or a store failure): still answer what happened */
        store_message m = slot->msg; /* shallow: borrowed for rendering only */
        snprintf(m.status, sizeof m.status, "%s", r->status);
        m.content = (char *)(r->content ? r->content : "");
        m.error = (char *)r->error;
        if (r->model)
            m.model = (char *)r->model;
        if (r->execution_id)
            snprintf(m.execution_id, sizeof m.execution_id, "%s", r->execution_id);
        m.prompt_tokens = r->prompt_tokens;
        m.completion_tokens = r->completion_tokens;
        m.total_tokens = r->total_tokens;
        m.duration_ms = r->duration_ms;
        m.updated_at = time_now_ms();
        char *content = strndup(m.content, r->content_len);
        m.content = content ? content : "";
        slot->resource = api_cluster_message_json(&m);
        free(content);
    }
    if (slot->failed) { /* kept for join_fail, should every reply fail */
        slot->http_status = http_status;
        slot->error = strdup(r->error ? r->error : "the reply failed");
        if (rejected) {
            slot->rej_type = strdup(rejected->type ? rejected->type : "");
            slot->rej_code = strdup(rejected->code ? rejected->code : "");
            slot->rej_param = strdup(rejected->param ? rejected->param : "");
        }
    }
    if (j->streaming) {
        pthread_mutex_lock(&j->lock);
        slot->finished = 1;
        if (j->stream) { /* open: this reply goes out now */
            if (slot->resource)
                sse_send(j->stream, "reply", json_pack("{s:O}", "data", slot->resource));
        } else if (!slot->failed) {
            stream_open(j); /* sends every finished reply, this one included */
        }
        /* else failed before the stream opened: sent when it opens, or answered by join_fail */
        pthread_mutex_unlock(&j->lock);
    }
    join_release(j);
}

/* ---------------------------------------------------------------- engine callbacks (engine thread) */

static void reply_chunk(void *ud, const char *text, size_t len)
{
    reply_slot *slot = ud;
    reply_join *j = slot->join;
    if (!j->streaming)
        return;
    /* under the lock: the first piece opens the stream, and nothing may pass the "message" event */
    pthread_mutex_lock(&j->lock);
    http_stream *st = stream_open(j);
    if (st)
        sse_send(st, "reply_chunk",
                 json_pack("{s:s, s:s, s:s?, s:s%}", "message_id", slot->msg.id, "entity_id", slot->msg.entity_id,
                           "entity_name", slot->msg.entity_name, "content", text, len));
    pthread_mutex_unlock(&j->lock);
}

static void reply_done(void *ud, const exec_outcome *out)
{
    reply_slot *slot = ud;
    const engine_result *res = out->res;
    int ok = strcmp(out->status, "completed") == 0;
    store_message_result r = {
        .status = ok ? "completed" : "failed",
        .content = ok && res->output ? res->output : "",
        .content_len = ok && res->output ? res->output_len : 0,
        .error = ok ? NULL : api_run_error_text(res),
        .model = res->model,
        .execution_id = out->unrecorded ? NULL : out->execution_id, /* never name one not written */
        .prompt_tokens = res->prompt_tokens,
        .completion_tokens = res->completion_tokens,
        .total_tokens = res->total_tokens,
        .duration_ms = res->duration_ms,
    };
    if (out->unrecorded == STORE_FAIL_BUSY || out->unrecorded == STORE_FAIL_UNAVAILABLE)
        slot->retry_after = out->unrecorded;
    slot_finish(slot, &r, out->http_status, res->status == ENGINE_ERR_REJECTED ? &res->rejection : NULL);
}

/* ---------------------------------------------------------------- what a member is sent */

/* [system, history..., user] for entity e (new reference, NULL when out of memory). */
static json_t *reply_messages(const store_entity *e, const store_context_page *contexts,
                              const store_message_page *history, const char *content)
{
    char *system = NULL;
    size_t system_len = 0;
    json_t *msgs = NULL;
    FILE *f = open_memstream(&system, &system_len);
    if (!f)
        return NULL;
    if (e->persona && *e->persona)
        fputs(e->persona, f);
    else
        fprintf(f, "You are %s.", e->name);
    int others = 0;
    for (size_t i = 0; i < history->count; i++) {
        const store_message *m = &history->items[i];
        if (strcmp(m->role, "assistant") == 0 && m->entity_id[0] && strcmp(m->entity_id, e->id) != 0)
            others = 1;
    }
    if (others)
        fputs("\n\nYou are one member of a group; the replies of the other members are shown prefixed with "
              "their names.",
              f);
    if (contexts->count)
        fputs("\n\nContext:", f);
    for (size_t i = 0; i < contexts->count; i++) {
        const store_context *x = &contexts->items[i];
        if (x->name && *x->name)
            fprintf(f, "\n%s: %s", x->name, x->content);
        else
            fprintf(f, "\n%s", x->content);
    }
    for (size_t i = 0; i < history->count; i++)
        if (strcmp(history->items[i].role, "system") == 0 && strcmp(history->items[i].status, "completed") == 0)
            fprintf(f, "\n\n%s", history->items[i].content);
    if (fclose(f) != 0 || !system)
        goto out;

    if (!(msgs = json_pack("[{s:s, s:s}]", "role", "system", "content", system)))
        goto out;
    for (size_t i = 0; i < history->count; i++) {
        const store_message *m = &history->items[i];
        json_t *turn = NULL;
        if (strcmp(m->status, "completed") != 0 || strcmp(m->role, "system") == 0)
            continue;
        if (strcmp(m->role, "user") == 0) {
            turn = json_pack("{s:s, s:s}", "role", "user", "content", m->content);
        } else if (m->entity_id[0] && strcmp(m->entity_id, e->id) != 0) {
            size_t n = strlen(m->content) + (m->entity_name ? strlen(m->entity_name) : 0) + 8;
            char *prefixed = malloc(n);
            if (prefixed) {
                snprintf(prefixed, n, "%s: %s", m->entity_name ? m->entity_name : "Member", m->content);
                turn = json_pack("{s:s, s:s}", "role", "assistant", "content", prefixed);
                free(prefixed);
            }
        } else {
            turn = json_pack("{s:s, s:s}", "role", "assistant", "content", m->content);
        }
        if (!turn || json_array_append_new(msgs, turn) != 0) {
            json_decref(msgs);
            msgs = NULL;
            goto out;
        }
    }
    if (json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", content)) != 0) {
        json_decref(msgs);
        msgs = NULL;
    }
out:
    free(system);
    return msgs;
}

/* Hand slot i's call to the engine; when it cannot start, finish it as failed at once. */
static void reply_start(api_req *rq, reply_join *j, size_t i, const store_entity *e, json_t *messages,
                        const char *content, const char *cluster_id, const char *conversation_id,
                        const char *user_message_id)
{
    reply_slot *slot = &j->slots[i];
    char *metadata = NULL;
    json_t *meta = json_pack("{s:s, s:s, s:s, s:s, s:s}", "cluster_id", cluster_id, "conversation_id",
                             conversation_id, "entity_id", e->id, "message_id", slot->msg.id, "user_message_id",
                             user_message_id);
    if (meta)
        metadata = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);

    exec_request req = {.messages = messages, .ud = slot};
    memcpy(req.rec.org_id, rq->who.org_id, sizeof req.rec.org_id);
    memcpy(req.rec.user_id, rq->who.user_id, sizeof req.rec.user_id);
    memcpy(req.rec.api_key_id, rq->who.key_id, sizeof req.rec.api_key_id);
    snprintf(req.rec.source, sizeof req.rec.source, "cluster");
    req.rec.rendered_prompt = (char *)content;
    req.rec.metadata = metadata;
    req.rec.model = e->model;
    req.rec.stream = j->streaming;
    req.on_chunk = j->streaming ? reply_chunk : NULL;
    req.on_finish = reply_done;
    req.valve = j->valve;

    char exec_id[ID_LEN + 1];
    int erc = messages ? exec_start(rq->app->store, rq->app->engine, rq->app->recorder, &req, exec_id) : EXEC_STORE_ERROR;
    free(metadata);
    if (erc == EXEC_OK)
        return;
    char error[300];
    int status = erc == EXEC_UNKNOWN_MODEL ? 422 : erc == EXEC_ENGINE_ERROR ? 503 : 500;
    enum store_failure why = store_last_failure(); /* exec_start's, on this thread */
    if (erc == EXEC_UNKNOWN_MODEL) {
        snprintf(error, sizeof error, "unknown model '%s'", e->model ? e->model : "(default)");
    } else if (erc == EXEC_ENGINE_ERROR) {
        snprintf(error, sizeof error, "the model engine is not accepting work (shutting down)");
    } else if (why != STORE_FAIL_NONE) { /* the execution's record was refused */
        snprintf(error, sizeof error, "the reply's execution could not be recorded: %s", store_failure_text(why));
        status = exec_unrecorded_http_status(why);
        if (why == STORE_FAIL_BUSY || why == STORE_FAIL_UNAVAILABLE)
            slot->retry_after = why;
    } else {
        snprintf(error, sizeof error, "the reply could not be started");
    }
    store_message_result r = {.status = "failed", .content = "", .error = error};
    slot_finish(slot, &r, status, NULL);
}

/* ---------------------------------------------------------------- the handler */

static int valid_role(const char *r)
{
    return strcmp(r, "user") == 0 || strcmp(r, "assistant") == 0 || strcmp(r, "system") == 0;
}

static int wants_stream(api_req *rq, json_t *root)
{
    const char *q = http_query(rq->http, "stream");
    if (q && (strcmp(q, "true") == 0 || strcmp(q, "1") == 0))
        return 1;
    return json_is_true(json_object_get(root, "stream"));
}

/* Answer at once when nobody replies (role other than user, or no members). */
static void answer_without_replies(api_req *rq, json_t *user_message, int streaming, const api_idem *idem)
{
    json_t *data = json_deep_copy(user_message);
    if (data && json_is_object(data)) {
        json_t *rel = json_object_get(data, "relationships");
        if (!rel) {
            rel = json_object();
            json_object_set_new(data, "relationships", rel);
        }
        json_object_set_new(rel, "replies", json_pack("{s:[]}", "data"));
    }
    json_t *doc = json_pack("{s:o, s:[], s:{s:i, s:i, s:i}}", "data", data, "included", "meta", "replies_count", 0,
                            "completed_count", 0, "failed_count", 0);
    if (doc)
        api_idem_save(rq->app->store, idem, 201, doc);
    else
        api_idem_abort(rq->app->store, idem);
    if (!streaming) {
        http_reply_json(rq->http, 201, doc);
        return;
    }
    json_decref(doc);
    http_stream *st = http_reply_stream(rq->http, 200, "text/event-stream");
    if (!st)
        return;
    const char *id = json_string_value(json_object_get(user_message, "id"));
    sse_send(st, "message", json_pack("{s:O}", "data", user_message));
    sse_send(st, "done", json_pack("{s:s, s:i, s:i, s:i}", "message_id", id ? id : "", "replies_count", 0,
                                   "completed_count", 0, "failed_count", 0));
    http_stream_close(st);
}

void api_cluster_message_send(api_req *rq)
{
    const char *id = api_param(rq, "id"), *conversation_id = api_param(rq, "conversation_id");
    json_t *root = NULL, *obj, *user_json = NULL;
    const char *role, *content, *entity_id;
    store_conversation conv = {0};
    store_entity_page members = {0};
    store_context_page contexts = {0};
    store_message_page history = {0};
    store_message *msgs = NULL;
    enum store_cluster_part missing = STORE_PART_CLUSTER;
    api_idem idem = {0};
    int idem_settled = 0; /* the reservation was saved or handed on: do not abort it at out */
    int rc;

    if (api_reject_bad_id(rq, id, "Cluster") || api_reject_bad_id(rq, conversation_id, "Conversation") ||
        api_read_body(rq, &root))
        return;
    if (!(obj = api_wrapped_object(rq, root, "message")) ||
        api_string_field(rq, obj, "role", "message.role", 0, 1, 16, &role) ||
        api_string_field(rq, obj, "content", "message.content", 1, 1, MESSAGE_CONTENT_MAX, &content) ||
        api_string_field(rq, obj, "entity_id", "message.entity_id", 0, 1, 64, &entity_id))
        goto out;
    if (!entity_id && api_string_field(rq, root, "entity_id", "entity_id", 0, 1, 64, &entity_id))
        goto out;
    if (!role)
        role = "user";
    if (!valid_role(role)) {
        http_error(rq->http, 422, NULL, "message.role", "'message.role' must be one of user, assistant, system");
        goto out;
    }
    int streaming = wants_stream(rq, root);
    if (api_idem_begin(rq, &idem)) {
        idem_settled = 1; /* answered (replay, 409, 422...): nothing of ours is reserved */
        goto out;
    }

    /* who replies (or, for other roles, who wrote it) */
    rc = store_conversation_get(rq->app->store, rq->who.org_id, id, conversation_id, &conv, &missing);
    if (rc != STORE_OK) {
        api_cluster_store_error(rq, rc, missing);
        goto out;
    }
    if (strcmp(conv.status, "active") != 0)
        goto archived;
    if (entity_id) {
        if (api_reject_bad_id(rq, entity_id, "Entity"))
            goto out;
        if (!(members.items = calloc(1, sizeof *members.items)))
            goto oom;
        rc = store_cluster_member_get(rq->app->store, rq->who.org_id, id, entity_id, &members.items[0], &missing);
        if (rc != STORE_OK) {
            if (rc == STORE_NOTFOUND && missing == STORE_PART_ENTITY)
                http_error(rq->http, 404, "Entity Not Found", "message.entity_id",
                           "The entity %s is not a member of this cluster.", entity_id);
            else
                api_cluster_store_error(rq, rc, missing);
            goto out;
        }
        members.count = members.total = 1;
    } else if (strcmp(role, "user") == 0) {
        rc = store_cluster_member_list(rq->app->store, rq->who.org_id, id, 0, -1, &members);
        if (rc != STORE_OK) {
            api_store_error(rq, rc, "Cluster");
            goto out;
        }
    }
    size_t replies = strcmp(role, "user") == 0 ? members.count : 0;
    if (rq->app->cluster_replies_max > 0 && replies > (size_t)rq->app->cluster_replies_max) {
        http_error(rq->http, 422, NULL, "message.entity_id",
                   "The cluster has %zu members and one message may ask for at most %ld replies "
                   "(cluster_replies_max): name the member who should reply in 'message.entity_id'",
                   replies, rq->app->cluster_replies_max);
        goto out;
    }
    /* the request was counted once; each reply after the first is one more upstream call */
    if (replies > 1 && api_rate_charge(rq, (long)replies - 1))
        goto out;
    if (replies) {
        store_message_query q = {.limit = CLUSTER_HISTORY_MAX, .latest = 1};
        if ((rc = store_context_list(rq->app->store, rq->who.org_id, id, 0, -1, &contexts)) != STORE_OK ||
            (rc = store_message_list(rq->app->store, rq->who.org_id, id, conversation_id, &q, &history,
                                     &missing)) != STORE_OK) {
            api_cluster_store_error(rq, rc, missing);
            goto out;
        }
        if (!rq->app->engine) {
            http_error(rq->http, 503, NULL, NULL, "No model engine is running");
            goto out;
        }
    }

    /* the user message and one "processing" reply per member, in one transaction */
    if (!(msgs = calloc(1 + replies, sizeof *msgs)))
        goto oom;
    snprintf(msgs[0].role, sizeof msgs[0].role, "%s", role);
    msgs[0].content = (char *)content;
    memcpy(msgs[0].user_id, rq->who.user_id, sizeof msgs[0].user_id);
    if (!replies && members.count == 1) { /* another role, written in an entity's name */
        memcpy(msgs[0].entity_id, members.items[0].id, sizeof msgs[0].entity_id);
        msgs[0].entity_name = members.items[0].name;
    }
    for (size_t i = 0; i < replies; i++) {
        store_message *m = &msgs[1 + i];
        snprintf(m->role, sizeof m->role, "assistant");
        snprintf(m->status, sizeof m->status, "processing");
        m->content = "";
        memcpy(m->entity_id, members.items[i].id, sizeof m->entity_id);
        m->entity_name = members.items[i].name;
        m->model = members.items[i].model;
    }
    rc = store_message_add(rq->app->store, rq->who.org_id, id, conversation_id, msgs, 1 + replies, &missing);
    if (rc == STORE_CONFLICT)
        goto archived;
    if (rc != STORE_OK) {
        api_cluster_store_error(rq, rc, missing);
        goto out;
    }
    if (!(user_json = api_cluster_message_json(&msgs[0])))
        goto oom;
    if (!replies) {
        answer_without_replies(rq, user_json, streaming, &idem);
        idem_settled = 1;
        goto out;
    }

    /* the replies: all submitted at once, the last to finish answers */
    reply_join *j = calloc(1, sizeof *j + replies * sizeof j->slots[0]);
    if (!j)
        goto oom;
    pthread_mutex_init(&j->lock, NULL);
    j->store = rq->app->store;
    j->http = rq->http;
    j->pending = replies + 1;
    j->count = replies;
    j->user_message = json_incref(user_json);
    j->idem = idem;
    idem_settled = 1; /* join_complete saves it (join_free alone does not: aborted below) */
    for (size_t i = 0; i < replies; i++) {
        reply_slot *slot = &j->slots[i];
        slot->join = j;
        slot->msg = msgs[1 + i];
        slot->msg.content = NULL;
        slot->msg.entity_name = strdup(members.items[i].name);
        slot->msg.model = members.items[i].model ? strdup(members.items[i].model) : NULL;
    }
    /* suspended before the engine can call back; a stream's status line
     * waits for a member's first piece (stream_open) */
    j->streaming = streaming;
    /* one valve for every member: a client that stops reading pauses them all */
    j->valve = streaming ? engine_valve_new(rq->app->engine) : NULL;
    http_suspend(rq->http);
    for (size_t i = 0; i < replies; i++) {
        json_t *call = reply_messages(&members.items[i], &contexts, &history, content);
        reply_start(rq, j, i, &members.items[i], call, content, id, conversation_id, msgs[0].id);
        json_decref(call);
    }
    /* from here on the request may be answered: do not touch rq->http */
    join_release(j);
    goto out;

archived:
    http_error(rq->http, 409, "Conversation Archived", NULL,
               "The conversation is archived: restore it before sending messages.");
    goto out;
oom:
    http_error(rq->http, 500, NULL, NULL, "Out of memory");
out:
    if (!idem_settled)
        api_idem_abort(rq->app->store, &idem);
    free(msgs);
    json_decref(user_json);
    store_message_page_free(&history);
    store_context_page_free(&contexts);
    store_entity_page_free(&members);
    store_conversation_clear(&conv);
    json_decref(root);
}
