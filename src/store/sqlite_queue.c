/*
 * sqlite_queue.c — SQLite backend: the durable queue of async executions
 * (claim with a lease, renew, fenced group-commit finish), cancel and retry,
 * batches, idempotency keys, and raw-text prompts.
 *
 * Exactly one terminal state per execution: every finishing UPDATE says
 * "WHERE status = 'processing' AND lease_owner = me", so a worker that lost
 * its lease (it stalled or died and the row was claimed again) changes
 * nothing, and a cancelled row stays cancelled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "store/sqlite_internal.h"

static const char SQL_QUEUE_CLAIM[] =
    "UPDATE executions SET status = 'processing', lease_owner = ?1, lease_expires_at = ?3, "
    "started_at = coalesce(started_at, ?2), updated_at = ?2 "
    /* expired leases first, then the oldest queued (ids are random: ties within a millisecond go by
     * rowid, the insertion order); the redundant "status IN (...)" lets SQLite use the
     * partial index executions_queue, whose rows are only the unfinished async ones */
    "WHERE id IN (SELECT id FROM ("
    "SELECT id, 0 AS pri, created_at, rowid AS seq FROM executions WHERE async = 1 "
    "AND status IN ('queued', 'processing') AND status = 'processing' AND lease_expires_at < ?2 "
    "UNION ALL SELECT * FROM (SELECT id, 1, created_at, rowid FROM executions WHERE async = 1 "
    "AND status IN ('queued', 'processing') AND status = 'queued' ORDER BY created_at, rowid LIMIT ?4)) "
    "ORDER BY pri, created_at, seq LIMIT ?4) "
    "RETURNING id, coalesce(messages, '[]'), model, temperature, coalesce(max_tokens, 0), stream";
static const char SQL_QUEUE_RENEW[] = "UPDATE executions SET lease_expires_at = ?2 WHERE lease_owner = ?1 AND "
                                      "status = 'processing'";
static const char SQL_QUEUE_FINISH[] =
    "UPDATE executions SET status = ?3, model = coalesce(?4, model), output = ?5, error = ?6, prompt_tokens = ?7, "
    "completion_tokens = ?8, total_tokens = ?9, duration_ms = ?10, attempts = ?11, finished_at = ?12, "
    "updated_at = ?12, lease_owner = NULL, lease_expires_at = NULL "
    "WHERE id = ?1 AND status = 'processing' AND lease_owner = ?2";
static const char SQL_QUEUE_RELEASE[] = "UPDATE executions SET status = 'queued', lease_owner = NULL, "
                                        "lease_expires_at = NULL WHERE id = ?1 AND status = 'processing' AND "
                                        "lease_owner = ?2";
static const char SQL_EXEC_CANCEL[] =
    "UPDATE executions SET status = 'cancelled', finished_at = ?3, updated_at = ?3, lease_owner = NULL, "
    "lease_expires_at = NULL WHERE org_id = ?1 AND id = ?2 AND (?4 IS NULL OR user_id = ?4) AND async = 1 AND "
    "status IN ('queued', 'processing')";
static const char SQL_EXEC_STATUS[] =
    "SELECT status, retries FROM executions WHERE org_id = ?1 AND id = ?2 AND (?3 IS NULL OR user_id = ?3)";
static const char SQL_ATTEMPT_SAVE[] =
    "INSERT INTO execution_attempts (execution_id, number, status, output, error, model, prompt_tokens, "
    "completion_tokens, total_tokens, duration_ms, started_at, finished_at) "
    "SELECT id, retries + 1, status, output, error, model, prompt_tokens, completion_tokens, total_tokens, "
    "duration_ms, started_at, finished_at FROM executions WHERE id = ?1";
static const char SQL_EXEC_REQUEUE[] =
    "UPDATE executions SET status = 'queued', async = 1, retries = retries + 1, output = '', error = NULL, "
    "prompt_tokens = 0, completion_tokens = 0, total_tokens = 0, duration_ms = 0, attempts = 0, "
    "started_at = NULL, finished_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = ?2, "
    "created_at = created_at WHERE id = ?1";
static const char SQL_ATTEMPTS_LIST[] =
    "SELECT a.number, a.status, a.output, a.error, a.model, a.prompt_tokens, a.completion_tokens, a.total_tokens, "
    "a.duration_ms, coalesce(a.started_at, 0), coalesce(a.finished_at, 0) FROM execution_attempts a "
    "JOIN executions e ON e.id = a.execution_id WHERE e.org_id = ?1 AND a.execution_id = ?2 ORDER BY a.number";
static const char SQL_BATCH_INSERT[] =
    "INSERT INTO batches (id, org_id, user_id, total, created_at) VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_BATCH_GET[] = "SELECT id, user_id, total, created_at FROM batches WHERE org_id = ?1 AND id = ?2";
static const char SQL_BATCH_COUNTS[] = "SELECT status, count(*) FROM executions WHERE batch_id = ?1 GROUP BY status";
static const char SQL_IDEM_EXPIRE[] =
    "DELETE FROM idempotency_keys WHERE org_id = ?1 AND caller = ?5 AND idem_key = ?2 AND (created_at < ?3 OR "
    "(status_code = 0 AND created_at < ?4))";
static const char SQL_IDEM_INSERT[] = "INSERT OR IGNORE INTO idempotency_keys (org_id, idem_key, user_id, "
                                      "request_hash, created_at, caller) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_IDEM_GET[] = "SELECT request_hash, status_code, response FROM idempotency_keys WHERE org_id = ?1 "
                                   "AND caller = ?3 AND idem_key = ?2";
static const char SQL_IDEM_FINISH[] = "UPDATE idempotency_keys SET status_code = ?3, response = ?4 WHERE org_id = ?1 "
                                      "AND caller = ?5 AND idem_key = ?2";
static const char SQL_IDEM_DELETE[] =
    "DELETE FROM idempotency_keys WHERE org_id = ?1 AND caller = ?3 AND idem_key = ?2 AND status_code = 0";
static const char SQL_RAW_FIND[] = "SELECT id FROM prompts WHERE org_id = ?1 AND user_id = ?2 AND raw_hash = ?3";
static const char SQL_RAW_INSERT[] =
    "INSERT INTO prompts (id, org_id, user_id, name, description, content, status, current_version_id, "
    "versions_count, created_at, updated_at, raw_hash) VALUES (?1, ?2, ?3, ?4, '', ?5, 'draft', ?6, 1, ?7, ?7, ?8)";
static const char SQL_RAW_VERSION[] = "INSERT INTO prompt_versions (id, prompt_id, org_id, user_id, number, content, "
                                      "created_at) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)";

void store_jobs_free(store_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(jobs[i].messages);
        free(jobs[i].model);
    }
    free(jobs);
}

void store_attempts_free(store_attempt *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].output);
        free(a[i].error);
        free(a[i].model);
    }
    free(a);
}

int sq_queue_claim(store_t *base, const char *owner, int64_t now, int64_t lease_until, int max, store_job **jobs,
                   size_t *n)
{
    sq_store *s = (sq_store *)base;
    *jobs = NULL;
    *n = 0;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR, step;
    size_t cap = 0;
    store_job *out = NULL;
    sqlite3_stmt *st = sq_stmt(c, SQL_QUEUE_CLAIM);
    if (!st)
        goto out;
    sq_bind_text(st, 1, owner);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, lease_until);
    sqlite3_bind_int(st, 4, max);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sq_grow(&out, &cap, *n, sizeof *out))
            break;
        store_job *j = &out[*n];
        memset(j, 0, sizeof *j);
        sq_col_copy(st, 0, j->id, sizeof j->id);
        j->messages = sq_col_strdup(st, 1);
        j->model = sq_col_strdup(st, 2);
        j->has_temperature = sqlite3_column_type(st, 3) != SQLITE_NULL;
        j->temperature = sqlite3_column_double(st, 3);
        j->max_tokens = (long)sqlite3_column_int64(st, 4);
        j->stream = sqlite3_column_int(st, 5);
        (*n)++;
        if (!j->messages || !j->model)
            break;
    }
    sq_stmt_done(st);
    rc = step == SQLITE_DONE ? STORE_OK : sq_fail(c, "queue claim");
out:
    rc = sq_w_end(s, rc);
    if (rc != STORE_OK) {
        store_jobs_free(out, *n);
        out = NULL;
        *n = 0;
    }
    *jobs = out;
    return rc;
}

int sq_queue_renew(store_t *base, const char *owner, int64_t lease_until)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_QUEUE_RENEW);
    if (st) {
        sq_bind_text(st, 1, owner);
        sqlite3_bind_int64(st, 2, lease_until);
        rc = sq_step_done(c, st);
    }
    return sq_w_end(s, rc);
}

int sq_queue_finish_many(store_t *base, const char *owner, const store_job_result *res, size_t n, size_t *applied)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    *applied = 0;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_OK;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        const store_job_result *j = &res[i];
        sqlite3_stmt *st = sq_stmt(c, j->release ? SQL_QUEUE_RELEASE : SQL_QUEUE_FINISH);
        if (!st) {
            rc = STORE_ERR;
            break;
        }
        sq_bind_text(st, 1, j->id);
        sq_bind_text(st, 2, owner);
        if (!j->release) {
            sq_bind_text(st, 3, j->r.status);
            sq_bind_text(st, 4, j->r.model);
            sqlite3_bind_text(st, 5, j->r.output ? j->r.output : "", j->r.output ? (int)j->r.output_len : 0,
                              SQLITE_TRANSIENT);
            sq_bind_text(st, 6, j->r.error);
            sqlite3_bind_int64(st, 7, j->r.prompt_tokens);
            sqlite3_bind_int64(st, 8, j->r.completion_tokens);
            sqlite3_bind_int64(st, 9, j->r.total_tokens);
            sqlite3_bind_int64(st, 10, j->r.duration_ms);
            sqlite3_bind_int64(st, 11, j->r.attempts);
            sqlite3_bind_int64(st, 12, now);
        }
        rc = sq_step_done(c, st);
        if (rc == STORE_OK)
            *applied += (size_t)sqlite3_changes(c->db);
    }
    return sq_w_end(s, rc);
}

int sq_execution_cancel(store_t *base, const char *org_id, const char *id, const char *owner_id)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_EXEC_CANCEL);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    sqlite3_bind_int64(st, 3, time_now_ms());
    sq_bind_text(st, 4, owner_id);
    if ((rc = sq_step_done(c, st)) != STORE_OK || sqlite3_changes(c->db) > 0)
        goto out;
    /* nothing changed: missing, or already ended */
    if (!(st = sq_stmt(c, SQL_EXEC_STATUS))) {
        rc = STORE_ERR;
        goto out;
    }
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    sq_bind_text(st, 3, owner_id);
    int step = sqlite3_step(st);
    sq_stmt_done(st);
    rc = step == SQLITE_ROW ? STORE_CONFLICT : step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "cancel");
out:
    if (rc == STORE_OK)
        return sq_w_end(s, STORE_OK);
    sq_w_end(s, STORE_ERR); /* nothing to keep */
    return rc;
}

int sq_execution_retry(store_t *base, const char *org_id, const char *id, const char *owner_id)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    char status[16] = "";
    sqlite3_stmt *st = sq_stmt(c, SQL_EXEC_STATUS);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    sq_bind_text(st, 3, owner_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        sq_col_copy(st, 0, status, sizeof status);
    sq_stmt_done(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "retry");
        goto out;
    }
    if (strcmp(status, "failed") != 0 && strcmp(status, "cancelled") != 0) {
        rc = STORE_CONFLICT;
        goto out;
    }
    if (!(st = sq_stmt(c, SQL_ATTEMPT_SAVE)))
        goto out;
    sq_bind_text(st, 1, id);
    if (sq_step_done(c, st) != STORE_OK || !(st = sq_stmt(c, SQL_EXEC_REQUEUE)))
        goto out;
    sq_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, time_now_ms());
    rc = sq_step_done(c, st);
out:
    /* NOTFOUND / CONFLICT changed nothing: roll back, report them */
    if (rc == STORE_OK)
        return sq_w_end(s, STORE_OK);
    sq_w_end(s, STORE_ERR);
    return rc;
}

int sq_execution_attempts(store_t *base, const char *org_id, const char *id, store_attempt **out, size_t *n)
{
    sq_store *s = (sq_store *)base;
    *out = NULL;
    *n = 0;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR, step = SQLITE_ERROR;
    size_t cap = 0;
    sqlite3_stmt *st = sq_stmt(c, SQL_ATTEMPTS_LIST);
    if (st) {
        sq_bind_text(st, 1, org_id);
        sq_bind_text(st, 2, id);
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            if (sq_grow(&*out, &cap, *n, sizeof **out))
                break;
            store_attempt *a = &(*out)[*n];
            memset(a, 0, sizeof *a);
            a->number = (long)sqlite3_column_int64(st, 0);
            sq_col_copy(st, 1, a->status, sizeof a->status);
            a->output = sq_col_strdup(st, 2);
            a->error = sq_col_strdup_or_null(st, 3);
            a->model = sq_col_strdup(st, 4);
            a->prompt_tokens = (long)sqlite3_column_int64(st, 5);
            a->completion_tokens = (long)sqlite3_column_int64(st, 6);
            a->total_tokens = (long)sqlite3_column_int64(st, 7);
            a->duration_ms = (long)sqlite3_column_int64(st, 8);
            a->started_at = sqlite3_column_int64(st, 9);
            a->finished_at = sqlite3_column_int64(st, 10);
            (*n)++;
        }
        sq_stmt_done(st);
        rc = step == SQLITE_DONE ? STORE_OK : sq_fail(c, "attempts");
    }
    sq_reader_put(s, c);
    if (rc != STORE_OK) {
        store_attempts_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int sq_batch_create(store_t *base, const char *org_id, const char *user_id, store_execution *items, size_t n,
                    store_id batch_id)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    id_new(batch_id);
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_BATCH_INSERT);
    if (!st)
        goto out;
    sq_bind_text(st, 1, batch_id);
    sq_bind_text(st, 2, org_id);
    sq_bind_text(st, 3, user_id);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)n);
    sqlite3_bind_int64(st, 5, now);
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        store_execution *e = &items[i];
        memcpy(e->batch_id, batch_id, sizeof e->batch_id);
        e->async = 1;
        snprintf(e->status, sizeof e->status, "queued");
        rc = sq_execution_insert_on(c, e, now);
        e->created_at = e->updated_at = now;
    }
out:
    return sq_w_end(s, rc);
}

int sq_batch_get(store_t *base, const char *org_id, const char *id, store_batch *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR, step;
    sqlite3_stmt *st = sq_stmt(c, SQL_BATCH_GET);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        sq_col_copy(st, 0, out->id, sizeof out->id);
        sq_col_copy(st, 1, out->user_id, sizeof out->user_id);
        out->total = (long)sqlite3_column_int64(st, 2);
        out->created_at = sqlite3_column_int64(st, 3);
    }
    sq_stmt_done(st);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "batch get");
        goto out;
    }
    if (!(st = sq_stmt(c, SQL_BATCH_COUNTS)))
        goto out;
    sq_bind_text(st, 1, id);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(st, 0);
        long count = (long)sqlite3_column_int64(st, 1);
        if (!status)
            continue;
        if (!strcmp(status, "queued"))
            out->queued = count;
        else if (!strcmp(status, "processing"))
            out->processing = count;
        else if (!strcmp(status, "completed"))
            out->completed = count;
        else if (!strcmp(status, "failed"))
            out->failed = count;
        else if (!strcmp(status, "cancelled"))
            out->cancelled = count;
    }
    sq_stmt_done(st);
    rc = step == SQLITE_DONE ? STORE_OK : sq_fail(c, "batch counts");
out:
    sq_reader_put(s, c);
    return rc;
}

int sq_idem_begin(store_t *base, const char *org_id, const char *caller, const char *key, const char *user_id,
                  const unsigned char hash[32], enum store_idem_state *state, int *status_code, char **response)
{
    sq_store *s = (sq_store *)base;
    *response = NULL;
    *status_code = 0;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    int64_t now = time_now_ms();
    /* a key is remembered for a day; a reservation whose request never finished (a crash) for 10 minutes */
    sqlite3_stmt *st = sq_stmt(c, SQL_IDEM_EXPIRE);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, key);
    sqlite3_bind_int64(st, 3, now - 24LL * 3600 * 1000);
    sqlite3_bind_int64(st, 4, now - 10LL * 60 * 1000);
    sq_bind_text(st, 5, caller);
    if (sq_step_done(c, st) != STORE_OK || !(st = sq_stmt(c, SQL_IDEM_INSERT)))
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, key);
    sq_bind_text(st, 3, user_id);
    sqlite3_bind_blob(st, 4, hash, 32, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, time_now_ms());
    sq_bind_text(st, 6, caller);
    if (sq_step_done(c, st) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 1) {
        *state = STORE_IDEM_NEW;
        rc = STORE_OK;
        goto out;
    }
    if (!(st = sq_stmt(c, SQL_IDEM_GET)))
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, key);
    sq_bind_text(st, 3, caller);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const void *h = sqlite3_column_blob(st, 0);
        int same = h && sqlite3_column_bytes(st, 0) == 32 && memcmp(h, hash, 32) == 0;
        *status_code = sqlite3_column_int(st, 1);
        if (!same)
            *state = STORE_IDEM_MISMATCH;
        else if (*status_code == 0)
            *state = STORE_IDEM_IN_PROGRESS;
        else {
            *state = STORE_IDEM_REPLAY;
            *response = sq_col_strdup(st, 2);
        }
        rc = STORE_OK;
    }
    sq_stmt_done(st);
out:
    return sq_w_end(s, rc);
}

int sq_idem_finish(store_t *base, const char *org_id, const char *caller, const char *key, int status_code,
                   const char *response)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_IDEM_FINISH);
    if (st) {
        sq_bind_text(st, 1, org_id);
        sq_bind_text(st, 2, key);
        sqlite3_bind_int(st, 3, status_code);
        sq_bind_text(st, 4, response);
        sq_bind_text(st, 5, caller);
        rc = sq_step_done(c, st);
    }
    return sq_w_end(s, rc);
}

int sq_idem_abort(store_t *base, const char *org_id, const char *caller, const char *key)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_IDEM_DELETE);
    if (st) {
        sq_bind_text(st, 1, org_id);
        sq_bind_text(st, 2, key);
        sq_bind_text(st, 3, caller);
        rc = sq_step_done(c, st);
    }
    return sq_w_end(s, rc);
}

/* Inside a writer transaction: find or create the raw prompt, then read it into *out. */
static int ensure_raw_on(sq_conn *c, const char *org_id, const char *user_id, const char *name, const char *text,
                         const char *raw_hash, int64_t now, store_prompt *out)
{
    store_id id = "", version_id;
    sqlite3_stmt *st = sq_stmt(c, SQL_RAW_FIND);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, user_id);
    sq_bind_text(st, 3, raw_hash);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        sq_col_copy(st, 0, id, sizeof id);
    sq_stmt_done(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return sq_fail(c, "raw prompt find");
    if (!id[0]) {
        id_new(id);
        id_new(version_id);
        if (!(st = sq_stmt(c, SQL_RAW_INSERT)))
            return STORE_ERR;
        sq_bind_text(st, 1, id);
        sq_bind_text(st, 2, org_id);
        sq_bind_text(st, 3, user_id);
        sq_bind_text(st, 4, name);
        sq_bind_text(st, 5, text);
        sq_bind_text(st, 6, version_id);
        sqlite3_bind_int64(st, 7, now);
        sq_bind_text(st, 8, raw_hash);
        if (sq_step_done(c, st) != STORE_OK || !(st = sq_stmt(c, SQL_RAW_VERSION)))
            return STORE_ERR;
        sq_bind_text(st, 1, version_id);
        sq_bind_text(st, 2, id);
        sq_bind_text(st, 3, org_id);
        sq_bind_text(st, 4, user_id);
        sq_bind_text(st, 5, text);
        sqlite3_bind_int64(st, 6, now);
        if (sq_step_done(c, st) != STORE_OK)
            return STORE_ERR;
    }
    return sq_prompt_get_on(c, org_id, id, user_id, out);
}

int sq_prompt_ensure_raw(store_t *base, const char *org_id, const char *user_id, const char *name, const char *text,
                         const char *raw_hash, store_prompt *out)
{
    return sq_prompt_ensure_raw_many(base, org_id, user_id, 1, &name, &text, &raw_hash, out);
}

int sq_prompt_ensure_raw_many(store_t *base, const char *org_id, const char *user_id, size_t n,
                              const char *const *names, const char *const *texts, const char *const *hashes,
                              store_prompt *out)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    memset(out, 0, n * sizeof *out);
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_OK;
    for (size_t i = 0; i < n && rc == STORE_OK; i++)
        rc = ensure_raw_on(c, org_id, user_id, names[i], texts[i], hashes[i], now, &out[i]);
    rc = sq_w_end(s, rc);
    if (rc != STORE_OK)
        for (size_t i = 0; i < n; i++)
            store_prompt_clear(&out[i]);
    return rc;
}

int sq_recover_interrupted(store_t *base, long *count)
{
    static const char *const sql[] = {
        "UPDATE executions SET status = 'failed', error = 'interrupted: promptd stopped before the model "
        "answered', finished_at = ?1, updated_at = ?1 WHERE async = 0 AND status IN ('queued', 'processing')",
        "UPDATE messages SET status = 'failed', error = 'interrupted: promptd stopped before the model answered', "
        "updated_at = ?1 WHERE status = 'processing'",
    };
    sq_store *s = (sq_store *)base;
    *count = 0;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_OK;
    for (size_t i = 0; i < sizeof sql / sizeof sql[0] && rc == STORE_OK; i++) {
        sqlite3_stmt *st = sq_stmt(c, sql[i]);
        if (!st) {
            rc = STORE_ERR;
            break;
        }
        sqlite3_bind_int64(st, 1, time_now_ms());
        rc = sq_step_done(c, st);
        if (rc == STORE_OK)
            *count += sqlite3_changes(c->db);
    }
    return sq_w_end(s, rc);
}
