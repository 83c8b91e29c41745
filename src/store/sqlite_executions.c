/*
 * sqlite_executions.c — SQLite backend: executions and comments on them.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "store/sqlite_internal.h"

/* ---------------------------------------------------------------- executions */

#define EXEC_COLS                                                                                                      \
    "e.id, e.org_id, e.user_id, coalesce(e.api_key_id, ''), coalesce(e.prompt_id, ''), coalesce(e.version_id, ''), "   \
    "coalesce(e.version_number, 0), e.source, e.rendered_prompt, e.messages, e.variables, e.metadata, e.model, "       \
    "e.temperature, coalesce(e.max_tokens, 0), e.stream, e.status, e.output, e.error, e.prompt_tokens, "               \
    "e.completion_tokens, e.total_tokens, e.duration_ms, e.attempts, e.likes_count, e.saves_count, "                   \
    "e.comments_count, e.created_at, coalesce(e.finished_at, 0), e.updated_at, "                                       \
    "EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = ?3 AND r.target_type = 'execution' AND "                      \
    "r.target_id = e.id AND r.kind = 'like'), "                                                                        \
    "EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = ?3 AND r.target_type = 'execution' AND "                      \
    "r.target_id = e.id AND r.kind = 'save'), "                                                                        \
    "e.async, coalesce(e.batch_id, ''), e.retries, coalesce(e.started_at, 0), e.tool_calls "

const char SQL_EXEC_INSERT[] =
    "INSERT INTO executions (id, org_id, user_id, api_key_id, prompt_id, version_id, version_number, source, "
    "rendered_prompt, messages, variables, metadata, model, temperature, max_tokens, stream, status, created_at, "
    "updated_at, async, batch_id, started_at) VALUES (?1, ?2, ?3, nullif(?4, ''), nullif(?5, ''), nullif(?6, ''), "
    "nullif(?7, 0), ?8, ?9, ?10, ?11, ?12, ?13, ?14, nullif(?15, 0), ?16, ?17, ?18, ?18, ?19, nullif(?20, ''), "
    "CASE WHEN ?17 = 'processing' THEN ?18 END)";
static const char SQL_EXEC_FINISH[] =
    "UPDATE executions SET status = ?2, model = coalesce(?3, model), output = ?4, error = ?5, prompt_tokens = ?6, "
    "completion_tokens = ?7, total_tokens = ?8, duration_ms = ?9, attempts = ?10, finished_at = ?11, "
    "updated_at = ?11, tool_calls = ?12 WHERE id = ?1 AND status IN ('queued', 'processing')";
static const char SQL_EXEC_GET[] = "SELECT " EXEC_COLS "FROM executions e WHERE e.org_id = ?1 AND e.id = ?2 AND "
                                   "(?4 IS NULL OR e.prompt_id = ?4)";


static int execution_from_row(sqlite3_stmt *st, store_execution *e)
{
    memset(e, 0, sizeof *e);
    sq_col_copy(st, 0, e->id, sizeof e->id);
    sq_col_copy(st, 1, e->org_id, sizeof e->org_id);
    sq_col_copy(st, 2, e->user_id, sizeof e->user_id);
    sq_col_copy(st, 3, e->api_key_id, sizeof e->api_key_id);
    sq_col_copy(st, 4, e->prompt_id, sizeof e->prompt_id);
    sq_col_copy(st, 5, e->version_id, sizeof e->version_id);
    e->version_number = (long)sqlite3_column_int64(st, 6);
    sq_col_copy(st, 7, e->source, sizeof e->source);
    e->rendered_prompt = sq_col_strdup(st, 8);
    e->messages = sq_col_strdup_or_null(st, 9);
    e->variables = sq_col_strdup(st, 10);
    e->metadata = sq_col_strdup(st, 11);
    e->model = sq_col_strdup(st, 12);
    e->has_temperature = sqlite3_column_type(st, 13) != SQLITE_NULL;
    e->temperature = sqlite3_column_double(st, 13);
    e->max_tokens = (long)sqlite3_column_int64(st, 14);
    e->stream = sqlite3_column_int(st, 15);
    sq_col_copy(st, 16, e->status, sizeof e->status);
    e->output = sq_col_strdup(st, 17);
    e->error = sq_col_strdup_or_null(st, 18);
    e->prompt_tokens = (long)sqlite3_column_int64(st, 19);
    e->completion_tokens = (long)sqlite3_column_int64(st, 20);
    e->total_tokens = (long)sqlite3_column_int64(st, 21);
    e->duration_ms = (long)sqlite3_column_int64(st, 22);
    e->attempts = (long)sqlite3_column_int64(st, 23);
    e->likes_count = (long)sqlite3_column_int64(st, 24);
    e->saves_count = (long)sqlite3_column_int64(st, 25);
    e->comments_count = (long)sqlite3_column_int64(st, 26);
    e->created_at = sqlite3_column_int64(st, 27);
    e->finished_at = sqlite3_column_int64(st, 28);
    e->updated_at = sqlite3_column_int64(st, 29);
    e->liked = sqlite3_column_int(st, 30);
    e->saved = sqlite3_column_int(st, 31);
    e->async = sqlite3_column_int(st, 32);
    sq_col_copy(st, 33, e->batch_id, sizeof e->batch_id);
    e->retries = (long)sqlite3_column_int64(st, 34);
    e->started_at = sqlite3_column_int64(st, 35);
    e->tool_calls = sq_col_strdup_or_null(st, 36);
    if (!e->rendered_prompt || !e->variables || !e->metadata || !e->model || !e->output) {
        store_execution_clear(e);
        return STORE_ERR;
    }
    return STORE_OK;
}

int sq_execution_create(store_t *base, store_execution *e)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = sq_execution_insert_on(c, e, now);
    if (rc == STORE_OK)
        e->created_at = e->updated_at = now;
    return sq_w_end(s, rc);
}

int sq_execution_insert_on(sq_conn *c, store_execution *e, int64_t now)
{
    if (!e->id[0])
        id_new(e->id);
    if (!e->status[0])
        snprintf(e->status, sizeof e->status, "processing");
    sqlite3_stmt *st = sq_stmt(c, SQL_EXEC_INSERT);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, e->id);
    sq_bind_text(st, 2, e->org_id);
    sq_bind_text(st, 3, e->user_id);
    sq_bind_text(st, 4, e->api_key_id);
    sq_bind_text(st, 5, e->prompt_id);
    sq_bind_text(st, 6, e->version_id);
    sqlite3_bind_int64(st, 7, e->version_number);
    sq_bind_text(st, 8, e->source[0] ? e->source : "prompt");
    sq_bind_text(st, 9, e->rendered_prompt ? e->rendered_prompt : "");
    sq_bind_text(st, 10, e->messages);
    sq_bind_text(st, 11, e->variables ? e->variables : "{}");
    sq_bind_text(st, 12, e->metadata ? e->metadata : "{}");
    sq_bind_text(st, 13, e->model ? e->model : "");
    if (e->has_temperature)
        sqlite3_bind_double(st, 14, e->temperature);
    sqlite3_bind_int64(st, 15, e->max_tokens);
    sqlite3_bind_int(st, 16, e->stream);
    sq_bind_text(st, 17, e->status);
    sqlite3_bind_int64(st, 18, now);
    sqlite3_bind_int(st, 19, e->async);
    sq_bind_text(st, 20, e->batch_id);
    return sq_step_done(c, st);
}

/* The finishing UPDATE on an open writer transaction: STORE_CONFLICT when the
 * execution is not queued or processing (already ended, or not there). */
static int sq_execution_finish_on(sq_conn *c, const char *id, const store_execution_result *r, int64_t now)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_EXEC_FINISH);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, id);
    sq_bind_text(st, 2, r->status);
    sq_bind_text(st, 3, r->model);
    sqlite3_bind_text(st, 4, r->output ? r->output : "", r->output ? (int)r->output_len : 0, SQLITE_TRANSIENT);
    sq_bind_text(st, 5, r->error);
    sqlite3_bind_int64(st, 6, r->prompt_tokens);
    sqlite3_bind_int64(st, 7, r->completion_tokens);
    sqlite3_bind_int64(st, 8, r->total_tokens);
    sqlite3_bind_int64(st, 9, r->duration_ms);
    sqlite3_bind_int64(st, 10, r->attempts);
    sqlite3_bind_int64(st, 11, now);
    sq_bind_text(st, 12, r->tool_calls);
    int rc = sq_step_done(c, st);
    if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
        rc = STORE_CONFLICT;
    return rc;
}

int sq_execution_finish(store_t *base, const char *id, const store_execution_result *r)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = sq_execution_finish_on(c, id, r, time_now_ms());
    return sq_w_end(s, rc == STORE_CONFLICT ? STORE_OK : rc) == STORE_OK ? rc : STORE_ERR;
}

/* Group commit: the ops in order, one transaction. A statement that fails is
 * undone alone (SQLite rolls back the statement, not the transaction) and
 * reported in its op; the rest still commit. */
int sq_executions_write(store_t *base, store_exec_write *ops, size_t n)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int64_t now = time_now_ms();
    for (size_t i = 0; i < n; i++) {
        if (ops[i].create) {
            ops[i].rc = sq_execution_insert_on(c, ops[i].create, now);
            if (ops[i].rc == STORE_OK)
                ops[i].create->created_at = ops[i].create->updated_at = now;
        } else {
            ops[i].rc = sq_execution_finish_on(c, ops[i].finish_id, ops[i].finish, now);
        }
    }
    if (!sqlite3_get_autocommit(c->db))
        return sq_w_end(s, STORE_OK);
    /* an I/O error or a full disk rolled the whole transaction back */
    sq_w_end(s, STORE_ERR);
    return STORE_ERR;
}

int sq_execution_get(store_t *base, const char *org_id, const char *prompt_id, const char *id,
                            const char *viewer_id, store_execution *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_EXEC_GET);
    if (st) {
        sq_bind_text(st, 1, org_id);
        sq_bind_text(st, 2, id);
        sq_bind_text(st, 3, viewer_id ? viewer_id : "");
        sq_bind_text(st, 4, prompt_id);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            rc = execution_from_row(st, out);
        else
            rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "execution get");
        sq_stmt_done(st);
    }
    sq_reader_put(s, c);
    return rc;
}

int sq_execution_list(store_t *base, const char *org_id, const char *viewer_id,
                             const store_execution_query *q, store_execution_page *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    static const char *order_cols[] = {[STORE_ESORT_CREATED_AT] = "e.created_at",
                                       [STORE_ESORT_DURATION] = "e.duration_ms",
                                       [STORE_ESORT_TOKENS] = "e.total_tokens",
                                       [STORE_ESORT_STATUS] = "e.status"};
    const char *dir = q->sort_desc ? "DESC" : "ASC";
    char where[320], sql[2048];
    snprintf(where, sizeof where, "FROM executions e WHERE e.org_id = ?1%s%s%s%s%s",
             q->prompt_id ? " AND e.prompt_id = ?4" : "", q->status ? " AND e.status = ?2" : "",
             q->user_id ? " AND e.user_id = ?7" : "", q->since ? " AND e.created_at >= ?8" : "",
             q->version_id ? " AND e.version_id = ?9" : "");
    int rc = STORE_ERR, step;
    sqlite3_stmt *cnt = NULL, *st = NULL;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    if (q->prompt_id) {
        if ((rc = sq_exists(c, SQL_PROMPT_EXISTS, org_id, q->prompt_id)) != STORE_OK)
            goto out;
        rc = STORE_ERR;
    }
    snprintf(sql, sizeof sql, "SELECT count(*), ?3 %s", where);
    if (sqlite3_prepare_v2(c->db, sql, -1, &cnt, NULL) != SQLITE_OK) {
        sq_fail(c, "execution count prepare");
        goto out;
    }
    snprintf(sql, sizeof sql, "SELECT " EXEC_COLS "%s ORDER BY %s %s, e.rowid %s LIMIT ?5 OFFSET ?6", where,
             order_cols[q->sort], dir, dir);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sq_fail(c, "execution list prepare");
        goto out;
    }
    sqlite3_stmt *both[2] = {cnt, st};
    for (int i = 0; i < 2; i++) {
        sq_bind_text(both[i], 1, org_id);
        if (q->status)
            sq_bind_text(both[i], 2, q->status);
        sq_bind_text(both[i], 3, viewer_id ? viewer_id : "");
        if (q->prompt_id)
            sq_bind_text(both[i], 4, q->prompt_id);
        if (q->user_id)
            sq_bind_text(both[i], 7, q->user_id);
        if (q->since)
            sqlite3_bind_int64(both[i], 8, q->since);
        if (q->version_id)
            sq_bind_text(both[i], 9, q->version_id);
    }
    sqlite3_bind_int64(st, 5, q->limit);
    sqlite3_bind_int64(st, 6, q->offset);
    if (sqlite3_step(cnt) != SQLITE_ROW) {
        sq_fail(c, "execution count");
        goto out;
    }
    out->total = (long)sqlite3_column_int64(cnt, 0);
    size_t cap = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sq_grow(&out->items, &cap, out->count, sizeof *out->items))
            goto out;
        if (execution_from_row(st, &out->items[out->count]) != STORE_OK)
            goto out;
        out->count++;
    }
    if (step != SQLITE_DONE) {
        sq_fail(c, "execution list");
        goto out;
    }
    rc = STORE_OK;
out:
    sqlite3_finalize(cnt);
    sqlite3_finalize(st);
    sq_reader_put(s, c);
    if (rc != STORE_OK)
        store_execution_page_free(out);
    return rc;
}

/* ---------------------------------------------------------------- comments */

/* A comment is on one target: an execution (of prompt_id when given) or, with
 * no execution, the prompt itself. The statements below come in pairs, [0] for
 * an execution's comments and [1] for a prompt's own; ?1 is the target id. */

static const char SQL_EXEC_EXISTS[] =
    "SELECT 1 FROM executions WHERE org_id = ?1 AND id = ?2 AND (?3 IS NULL OR prompt_id = ?3)";
static const char *const SQL_COMMENT_INSERT[2] = {
    "INSERT INTO comments (id, org_id, execution_id, parent_id, user_id, body, created_at, updated_at) "
    "VALUES (?2, ?3, ?1, ?4, ?5, ?6, ?7, ?7)",
    "INSERT INTO comments (id, org_id, prompt_id, parent_id, user_id, body, created_at, updated_at) "
    "VALUES (?2, ?3, ?1, ?4, ?5, ?6, ?7, ?7)"};
#define COMMENT_COLS                                                                                               \
    "c.id, coalesce(c.execution_id, ''), coalesce(c.prompt_id, ''), coalesce(c.parent_id, ''), c.user_id, c.body, " \
    "coalesce(u.email, ''), c.likes_count, c.saves_count, c.followers_count, c.replies_count, c.created_at, "      \
    "c.updated_at "
#define COMMENT_FROM "FROM comments c LEFT JOIN users u ON u.id = c.user_id "
static const char *const SQL_COMMENT_GET[2] = {
    "SELECT " COMMENT_COLS COMMENT_FROM "WHERE c.execution_id = ?1 AND c.id = ?2 AND c.org_id = ?3",
    "SELECT " COMMENT_COLS COMMENT_FROM "WHERE c.prompt_id = ?1 AND c.id = ?2 AND c.org_id = ?3"};
static const char *const SQL_COMMENT_COUNT[2] = {
    "SELECT count(*) FROM comments WHERE execution_id = ?1 AND (?2 IS NULL OR parent_id = ?2)",
    "SELECT count(*) FROM comments WHERE prompt_id = ?1 AND (?2 IS NULL OR parent_id = ?2)"};
static const char *const SQL_COMMENT_LIST[2] = {
    "SELECT " COMMENT_COLS COMMENT_FROM "WHERE c.execution_id = ?1 AND (?2 IS NULL OR c.parent_id = ?2) "
    "ORDER BY c.created_at, c.rowid LIMIT ?3 OFFSET ?4",
    "SELECT " COMMENT_COLS COMMENT_FROM "WHERE c.prompt_id = ?1 AND (?2 IS NULL OR c.parent_id = ?2) "
    "ORDER BY c.created_at, c.rowid LIMIT ?3 OFFSET ?4"};
static const char *const SQL_COMMENT_UPDATE[2] = {
    "UPDATE comments SET body = ?4, updated_at = ?5 WHERE execution_id = ?1 AND id = ?2 AND org_id = ?3 "
    "AND (?6 OR user_id = ?7)",
    "UPDATE comments SET body = ?4, updated_at = ?5 WHERE prompt_id = ?1 AND id = ?2 AND org_id = ?3 "
    "AND (?6 OR user_id = ?7)"};
static const char *const SQL_COMMENT_DELETE[2] = {
    "DELETE FROM comments WHERE execution_id = ?1 AND id = ?2 AND org_id = ?3 AND (?4 OR user_id = ?5)",
    "DELETE FROM comments WHERE prompt_id = ?1 AND id = ?2 AND org_id = ?3 AND (?4 OR user_id = ?5)"};
/* the reactions on a comment and on every reply below it (they go with it) */
static const char SQL_COMMENT_REACTIONS_DELETE[] =
    "WITH RECURSIVE thread(id) AS (SELECT ?1 UNION ALL SELECT c.id FROM comments c JOIN thread t ON c.parent_id = t.id) "
    "DELETE FROM reactions WHERE target_type = 'comment' AND target_id IN (SELECT id FROM thread)";
static const char SQL_COMMENT_PARENT_OF[] = "SELECT coalesce(parent_id, '') FROM comments WHERE id = ?1";
static const char SQL_COMMENT_REPLIES_BUMP[] =
    "UPDATE comments SET replies_count = max(0, replies_count + ?2) WHERE id = ?1";
/* an execution's comments_count counts every comment on it, replies included */
static const char SQL_EXEC_COMMENTS_RECOUNT[] =
    "UPDATE executions SET comments_count = (SELECT count(*) FROM comments WHERE execution_id = ?1) WHERE id = ?1";

/* The target exists in org_id: an execution (of prompt_id when not NULL), or
 * with execution_id NULL the prompt. */
static int target_exists_on(sq_conn *c, const char *org_id, const char *prompt_id, const char *execution_id)
{
    if (!execution_id)
        return sq_exists(c, SQL_PROMPT_EXISTS, org_id, prompt_id);
    sqlite3_stmt *st = sq_stmt(c, SQL_EXEC_EXISTS);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, execution_id);
    sq_bind_text(st, 3, prompt_id);
    int step = sqlite3_step(st);
    sq_stmt_done(st);
    if (step == SQLITE_ROW)
        return STORE_OK;
    return step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "execution exists");
}

static int comment_from_row(sqlite3_stmt *st, store_comment *cm)
{
    memset(cm, 0, sizeof *cm);
    sq_col_copy(st, 0, cm->id, sizeof cm->id);
    sq_col_copy(st, 1, cm->execution_id, sizeof cm->execution_id);
    sq_col_copy(st, 2, cm->prompt_id, sizeof cm->prompt_id);
    sq_col_copy(st, 3, cm->parent_id, sizeof cm->parent_id);
    sq_col_copy(st, 4, cm->user_id, sizeof cm->user_id);
    cm->body = sq_col_strdup(st, 5);
    sq_col_copy(st, 6, cm->user_email, sizeof cm->user_email);
    cm->likes_count = (long)sqlite3_column_int64(st, 7);
    cm->saves_count = (long)sqlite3_column_int64(st, 8);
    cm->followers_count = (long)sqlite3_column_int64(st, 9);
    cm->replies_count = (long)sqlite3_column_int64(st, 10);
    cm->created_at = sqlite3_column_int64(st, 11);
    cm->updated_at = sqlite3_column_int64(st, 12);
    return cm->body ? STORE_OK : STORE_ERR;
}

/* The comment on the target (checked in org_id first); *missing (when not
 * NULL) says which was not found. */
static int comment_get_on(sq_conn *c, const char *org_id, const char *prompt_id, const char *execution_id,
                          const char *comment_id, store_comment *out, enum store_comment_part *missing)
{
    if (missing)
        *missing = STORE_COMMENT_TARGET;
    int rc = target_exists_on(c, org_id, prompt_id, execution_id);
    if (rc != STORE_OK)
        return rc;
    if (missing)
        *missing = STORE_COMMENT_ONE;
    sqlite3_stmt *st = sq_stmt(c, SQL_COMMENT_GET[execution_id ? 0 : 1]);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, execution_id ? execution_id : prompt_id);
    sq_bind_text(st, 2, comment_id);
    sq_bind_text(st, 3, org_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = comment_from_row(st, out);
    else
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "comment get");
    sq_stmt_done(st);
    return rc;
}

/* Move a comment's replies_count by delta. */
static int replies_bump(sq_conn *c, const char *parent_id, int delta)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_COMMENT_REPLIES_BUMP);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, parent_id);
    sqlite3_bind_int(st, 2, delta);
    return sq_step_done(c, st);
}

static int exec_comments_recount(sq_conn *c, const char *execution_id)
{
    if (!execution_id)
        return STORE_OK;
    sqlite3_stmt *st = sq_stmt(c, SQL_EXEC_COMMENTS_RECOUNT);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, execution_id);
    return sq_step_done(c, st);
}

int sq_comment_create(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id,
                      const char *parent_id, const char *user_id, const char *body, store_comment *out,
                      enum store_comment_part *missing)
{
    sq_store *s = (sq_store *)base;
    store_id id;
    int64_t now = time_now_ms();
    *missing = STORE_COMMENT_TARGET;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    sqlite3_stmt *st;
    if ((rc = target_exists_on(c, org_id, prompt_id, execution_id)) != STORE_OK)
        goto out;
    if (parent_id) { /* a reply: its parent is on the same target */
        store_comment parent;
        *missing = STORE_COMMENT_PARENT;
        if ((rc = comment_get_on(c, org_id, prompt_id, execution_id, parent_id, &parent, NULL)) != STORE_OK)
            goto out;
        store_comment_clear(&parent);
        if ((rc = replies_bump(c, parent_id, 1)) != STORE_OK)
            goto out;
    }
    rc = STORE_ERR;
    if (!(st = sq_stmt(c, SQL_COMMENT_INSERT[execution_id ? 0 : 1])))
        goto out;
    id_new(id);
    sq_bind_text(st, 1, execution_id ? execution_id : prompt_id);
    sq_bind_text(st, 2, id);
    sq_bind_text(st, 3, org_id);
    sq_bind_text(st, 4, parent_id);
    sq_bind_text(st, 5, user_id);
    sq_bind_text(st, 6, body);
    sqlite3_bind_int64(st, 7, now);
    if (sq_step_done(c, st) != STORE_OK || exec_comments_recount(c, execution_id) != STORE_OK)
        goto out;
    rc = comment_get_on(c, org_id, prompt_id, execution_id, id, out, NULL);
out:
    if (sq_w_end_lost(s, &rc))
        store_comment_clear(out);
    return rc;
}

int sq_comment_get(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id,
                   const char *comment_id, store_comment *out, enum store_comment_part *missing)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = comment_get_on(c, org_id, prompt_id, execution_id, comment_id, out, missing);
    sq_reader_put(s, c);
    return rc;
}

int sq_comment_list(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id,
                    const char *parent_id, long offset, long limit, store_comment_page *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc, step = SQLITE_ERROR, k = execution_id ? 0 : 1;
    const char *target = execution_id ? execution_id : prompt_id;
    size_t cap = 0;
    sqlite3_stmt *st;
    if ((rc = target_exists_on(c, org_id, prompt_id, execution_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if (!(st = sq_stmt(c, SQL_COMMENT_COUNT[k])))
        goto out;
    sq_bind_text(st, 1, target);
    sq_bind_text(st, 2, parent_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        out->total = (long)sqlite3_column_int64(st, 0);
    sq_stmt_done(st);
    if (!(st = sq_stmt(c, SQL_COMMENT_LIST[k])))
        goto out;
    sq_bind_text(st, 1, target);
    sq_bind_text(st, 2, parent_id);
    sqlite3_bind_int64(st, 3, limit);
    sqlite3_bind_int64(st, 4, offset);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sq_grow(&out->items, &cap, out->count, sizeof *out->items))
            break;
        if (comment_from_row(st, &out->items[out->count]) != STORE_OK)
            break;
        out->count++;
    }
    sq_stmt_done(st);
    rc = step == SQLITE_DONE ? STORE_OK : sq_fail(c, "comment list");
out:
    sq_reader_put(s, c);
    if (rc != STORE_OK)
        store_comment_page_free(out);
    return rc;
}

int sq_comment_update(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id,
                      const char *comment_id, const char *user_id, int is_admin, const char *body, store_comment *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    sqlite3_stmt *st;
    if ((rc = target_exists_on(c, org_id, prompt_id, execution_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if (!(st = sq_stmt(c, SQL_COMMENT_UPDATE[execution_id ? 0 : 1])))
        goto out;
    sq_bind_text(st, 1, execution_id ? execution_id : prompt_id);
    sq_bind_text(st, 2, comment_id);
    sq_bind_text(st, 3, org_id);
    sq_bind_text(st, 4, body);
    sqlite3_bind_int64(st, 5, time_now_ms());
    sqlite3_bind_int(st, 6, is_admin);
    sq_bind_text(st, 7, user_id);
    if (sq_step_done(c, st) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) { /* not there, or not the caller's: the same 404 */
        rc = STORE_NOTFOUND;
        goto out;
    }
    rc = comment_get_on(c, org_id, prompt_id, execution_id, comment_id, out, NULL);
out:
    if (sq_w_end_lost(s, &rc))
        store_comment_clear(out);
    return rc;
}

int sq_comment_delete(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id,
                      const char *comment_id, const char *user_id, int is_admin)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    sqlite3_stmt *st;
    store_id parent = "";
    if ((rc = target_exists_on(c, org_id, prompt_id, execution_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if (!(st = sq_stmt(c, SQL_COMMENT_PARENT_OF)))
        goto out;
    sq_bind_text(st, 1, comment_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        sq_col_copy(st, 0, parent, sizeof parent);
    sq_stmt_done(st);
    /* the reactions first: the replies they name are still there to be found */
    if (!(st = sq_stmt(c, SQL_COMMENT_REACTIONS_DELETE)))
        goto out;
    sq_bind_text(st, 1, comment_id);
    if (sq_step_done(c, st) != STORE_OK || !(st = sq_stmt(c, SQL_COMMENT_DELETE[execution_id ? 0 : 1])))
        goto out;
    sq_bind_text(st, 1, execution_id ? execution_id : prompt_id);
    sq_bind_text(st, 2, comment_id);
    sq_bind_text(st, 3, org_id);
    sqlite3_bind_int(st, 4, is_admin);
    sq_bind_text(st, 5, user_id);
    if (sq_step_done(c, st) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) { /* the rollback restores any reaction removed above */
        rc = STORE_NOTFOUND;
        goto out;
    }
    /* its replies went with it (ON DELETE CASCADE) */
    if ((parent[0] && replies_bump(c, parent, -1) != STORE_OK) || exec_comments_recount(c, execution_id) != STORE_OK)
        goto out;
    rc = STORE_OK;
out:
    return sq_w_end(s, rc);
}

