/*
 * sqlite_prompts.c — SQLite backend: prompts, their versions, and reactions
 * (likes, saves, follows) with the counters they move.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "store/sqlite_internal.h"

/* ---------------------------------------------------------------- prompts */

static const char SQL_PROMPT_GET[] = "SELECT " SQ_PROMPT_COLS "FROM prompts p WHERE p.org_id = ?1 AND p.id = ?2";
static const char SQL_PROMPT_INSERT[] =
    "INSERT INTO prompts (id, org_id, user_id, name, description, content, status, current_version_id, "
    "versions_count, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9)";
static const char SQL_VERSION_INSERT[] =
    "INSERT INTO prompt_versions (id, prompt_id, org_id, user_id, number, content, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
static const char SQL_PROMPT_CURRENT[] =
    "SELECT content, versions_count FROM prompts WHERE org_id = ?1 AND id = ?2";
static const char SQL_PROMPT_UPDATE[] =
    "UPDATE prompts SET name = coalesce(?3, name), description = coalesce(?4, description), "
    "content = coalesce(?5, content), status = coalesce(?6, status), "
    "current_version_id = coalesce(?7, current_version_id), versions_count = ?8, updated_at = ?9 "
    "WHERE org_id = ?1 AND id = ?2";
static const char SQL_PROMPT_DELETE[] = "DELETE FROM prompts WHERE org_id = ?1 AND id = ?2";
static const char SQL_REACTIONS_DELETE_TARGET[] =
    "DELETE FROM reactions WHERE target_type = ?1 AND target_id = ?2";
/* the reactions on the prompt's own comments (the comments cascade with the prompt, reactions do not) */
static const char SQL_REACTIONS_DELETE_PROMPT_COMMENTS[] =
    "DELETE FROM reactions WHERE target_type = 'comment' AND target_id IN "
    "(SELECT id FROM comments WHERE prompt_id = ?2 AND org_id = ?1)";

int sq_prompt_from_row(sqlite3_stmt *st, store_prompt *p)
{
    memset(p, 0, sizeof *p);
    sq_col_copy(st, 0, p->id, sizeof p->id);
    sq_col_copy(st, 1, p->org_id, sizeof p->org_id);
    sq_col_copy(st, 2, p->user_id, sizeof p->user_id);
    p->name = sq_col_strdup(st, 3);
    p->description = sq_col_strdup(st, 4);
    p->content = sq_col_strdup(st, 5);
    sq_col_copy(st, 6, p->status, sizeof p->status);
    sq_col_copy(st, 7, p->current_version_id, sizeof p->current_version_id);
    sq_col_copy(st, 8, p->published_version_id, sizeof p->published_version_id);
    p->versions_count = (long)sqlite3_column_int64(st, 9);
    p->likes_count = (long)sqlite3_column_int64(st, 10);
    p->saves_count = (long)sqlite3_column_int64(st, 11);
    p->followers_count = (long)sqlite3_column_int64(st, 12);
    p->created_at = sqlite3_column_int64(st, 13);
    p->updated_at = sqlite3_column_int64(st, 14);
    p->liked = sqlite3_column_int(st, 15);
    p->saved = sqlite3_column_int(st, 16);
    p->followed = sqlite3_column_int(st, 17);
    sq_prompt_links_from_row(st, 18, p); /* spec 002: workspace, tags, data sources */
    if (!p->name || !p->description || !p->content) {
        store_prompt_clear(p);
        return STORE_ERR;
    }
    return STORE_OK;
}

int sq_prompt_get_on(sq_conn *c, const char *org_id, const char *id, const char *viewer_id, store_prompt *out)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_PROMPT_GET);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    sq_bind_text(st, 3, viewer_id ? viewer_id : "");
    int rc = sqlite3_step(st), out_rc;
    if (rc == SQLITE_ROW)
        out_rc = sq_prompt_from_row(st, out);
    else
        out_rc = rc == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "prompt get");
    sq_stmt_done(st);
    return out_rc;
}

static int version_insert(sq_conn *c, const char *prompt_id, const char *org_id, const char *user_id, long number,
                          const char *content, int64_t now, store_id version_id)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_VERSION_INSERT);
    if (!st)
        return STORE_ERR;
    id_new(version_id);
    sq_bind_text(st, 1, version_id);
    sq_bind_text(st, 2, prompt_id);
    sq_bind_text(st, 3, org_id);
    sq_bind_text(st, 4, user_id);
    sqlite3_bind_int64(st, 5, number);
    sq_bind_text(st, 6, content);
    sqlite3_bind_int64(st, 7, now);
    return sq_step_done(c, st);
}

int sq_prompt_create(store_t *base, store_prompt *p)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    store_id version_id;
    id_new(p->id);
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_PROMPT_INSERT);
    if (!st)
        goto out;
    id_new(version_id);
    sq_bind_text(st, 1, p->id);
    sq_bind_text(st, 2, p->org_id);
    sq_bind_text(st, 3, p->user_id);
    sq_bind_text(st, 4, p->name);
    sq_bind_text(st, 5, p->description ? p->description : "");
    sq_bind_text(st, 6, p->content);
    sq_bind_text(st, 7, p->status[0] ? p->status : "draft");
    sq_bind_text(st, 8, version_id);
    sqlite3_bind_int64(st, 9, now);
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    /* version_insert makes its own id; keep the one the prompt points at */
    st = sq_stmt(c, SQL_VERSION_INSERT);
    if (!st) {
        rc = STORE_ERR;
        goto out;
    }
    sq_bind_text(st, 1, version_id);
    sq_bind_text(st, 2, p->id);
    sq_bind_text(st, 3, p->org_id);
    sq_bind_text(st, 4, p->user_id);
    sqlite3_bind_int64(st, 5, 1);
    sq_bind_text(st, 6, p->content);
    sqlite3_bind_int64(st, 7, now);
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    if ((rc = sq_prompt_links_write(c, p->org_id, p->id, p->workspace_id[0] ? p->workspace_id : NULL, p->tags,
                                    p->data_source_ids)) != STORE_OK)
        goto out;
    snprintf(p->current_version_id, sizeof p->current_version_id, "%s", version_id);
    if (!p->status[0])
        snprintf(p->status, sizeof p->status, "draft");
    p->versions_count = 1;
    p->created_at = p->updated_at = now;
out:
    return sq_w_end(s, rc);
}

int sq_prompt_get(store_t *base, const char *org_id, const char *id, const char *viewer_id, store_prompt *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = sq_prompt_get_on(c, org_id, id, viewer_id, out);
    sq_reader_put(s, c);
    return rc;
}

/* Turn free text into an FTS5 query: every word becomes a quoted prefix term
 * ("word"*), all required. Operators and punctuation in the input are never
 * interpreted. Returns 0 with *out malloc'd (empty string when no word). */
static int fts_query(const char *text, char **out)
{
    size_t n = strlen(text), o = 0, words = 0;
    char *q = malloc(n * 2 + 8 * (n / 2 + 1) + 1); /* worst case: 1-char words */
    if (!q)
        return -1;
    const unsigned char *p = (const unsigned char *)text;
    while (*p && words < 32) {
        while (*p && !(isalnum(*p) || *p >= 0x80 || *p == '_'))
            p++;
        if (!*p)
            break;
        if (o)
            q[o++] = ' ';
        q[o++] = '"';
        while (*p && (isalnum(*p) || *p >= 0x80 || *p == '_'))
            q[o++] = (char)*p++;
        q[o++] = '"';
        q[o++] = '*';
        words++;
    }
    q[o] = '\0';
    *out = q;
    return 0;
}

int sq_prompt_list(store_t *base, const char *org_id, const char *viewer_id, const store_prompt_query *q,
                          store_prompt_page *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    static const char *order_cols[] = {
        [STORE_SORT_CREATED_AT] = "p.created_at", [STORE_SORT_UPDATED_AT] = "p.updated_at",
        [STORE_SORT_NAME] = "p.name COLLATE NOCASE", [STORE_SORT_STATUS] = "p.status",
        [STORE_SORT_LIKES] = "p.likes_count"};
    const char *dir = q->sort_desc ? "DESC" : "ASC";
    char *match = NULL;
    if (q->search && fts_query(q->search, &match))
        return STORE_ERR;
    if (match && !*match) { /* only punctuation: nothing can match */
        free(match);
        return STORE_OK;
    }
    char where[512], sql[2048];
    snprintf(where, sizeof where, "FROM prompts p WHERE p.org_id = ?1%s%s", q->status ? " AND p.status = ?2" : "",
             match ? " AND p.rowid IN (SELECT rowid FROM prompts_fts WHERE prompts_fts MATCH ?4)" : "");

    int rc = STORE_ERR, step;
    sqlite3_stmt *cnt = NULL, *st = NULL;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        goto out;
    snprintf(sql, sizeof sql, "SELECT count(*), ?3 %s", where);
    if (sqlite3_prepare_v2(c->db, sql, -1, &cnt, NULL) != SQLITE_OK) {
        sq_fail(c, "prompt count prepare");
        goto out;
    }
    snprintf(sql, sizeof sql, "SELECT " SQ_PROMPT_COLS "%s ORDER BY %s %s, p.rowid %s LIMIT ?5 OFFSET ?6", where,
             order_cols[q->sort], dir, dir);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sq_fail(c, "prompt list prepare");
        goto out;
    }
    sqlite3_stmt *both[2] = {cnt, st};
    for (int i = 0; i < 2; i++) {
        sq_bind_text(both[i], 1, org_id);
        if (q->status)
            sq_bind_text(both[i], 2, q->status);
        sq_bind_text(both[i], 3, viewer_id ? viewer_id : "");
        if (match)
            sq_bind_text(both[i], 4, match);
    }
    sqlite3_bind_int64(st, 5, q->limit);
    sqlite3_bind_int64(st, 6, q->offset);

    if (sqlite3_step(cnt) != SQLITE_ROW) {
        sq_fail(c, "prompt count");
        goto out;
    }
    out->total = (long)sqlite3_column_int64(cnt, 0);
    size_t cap = 0;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sq_grow(&out->items, &cap, out->count, sizeof *out->items))
            goto out;
        if (sq_prompt_from_row(st, &out->items[out->count]) != STORE_OK)
            goto out;
        out->count++;
    }
    if (step != SQLITE_DONE) {
        sq_fail(c, "prompt list");
        goto out;
    }
    rc = STORE_OK;
out:
    sqlite3_finalize(cnt);
    sqlite3_finalize(st);
    sq_reader_put(s, c);
    free(match);
    if (rc != STORE_OK)
        store_prompt_page_free(out);
    return rc;
}

int sq_prompt_update(store_t *base, const char *org_id, const char *id, const char *user_id,
                            const store_prompt_patch *patch, store_prompt *out)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    char *old_content = NULL;
    long versions = 0;
    store_id version_id = "";
    sqlite3_stmt *st = sq_stmt(c, SQL_PROMPT_CURRENT);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        old_content = sq_col_strdup(st, 0);
        versions = (long)sqlite3_column_int64(st, 1);
    }
    sq_stmt_done(st);
    if (step == SQLITE_DONE) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    if (step != SQLITE_ROW || !old_content) {
        sq_fail(c, "prompt current");
        goto out;
    }
    if (patch->content && strcmp(patch->content, old_content) != 0) {
        versions++;
        if ((rc = version_insert(c, id, org_id, user_id, versions, patch->content, now, version_id)) != STORE_OK)
            goto out;
        rc = STORE_ERR;
    }
    if (!(st = sq_stmt(c, SQL_PROMPT_UPDATE)))
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    sq_bind_text(st, 3, patch->name);
    sq_bind_text(st, 4, patch->description);
    sq_bind_text(st, 5, patch->content);
    sq_bind_text(st, 6, patch->status);
    sq_bind_text(st, 7, version_id[0] ? version_id : NULL);
    sqlite3_bind_int64(st, 8, versions);
    sqlite3_bind_int64(st, 9, now);
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    if ((rc = sq_prompt_links_write(c, org_id, id, patch->workspace_id, patch->tags, patch->data_source_ids)) !=
        STORE_OK)
        goto out;
    rc = sq_prompt_get_on(c, org_id, id, user_id, out);
out:
    free(old_content);
    if (sq_w_end_lost(s, &rc))
        store_prompt_clear(out);
    return rc;
}

int sq_prompt_delete(store_t *base, const char *org_id, const char *id)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_REACTIONS_DELETE_PROMPT_COMMENTS);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if (!(st = sq_stmt(c, SQL_PROMPT_DELETE)))
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) { /* the rollback keeps any reaction removed above */
        rc = STORE_NOTFOUND;
        goto out;
    }
    if (!(st = sq_stmt(c, SQL_REACTIONS_DELETE_TARGET))) {
        rc = STORE_ERR;
        goto out;
    }
    sq_bind_text(st, 1, "prompt");
    sq_bind_text(st, 2, id);
    rc = sq_step_done(c, st);
out:
    return sq_w_end(s, rc);
}

/* ---------------------------------------------------------------- versions */

#define VERSION_COLS "v.id, v.prompt_id, v.user_id, v.number, v.content, v.created_at, coalesce(v.published_at, 0) "
const char SQL_PROMPT_EXISTS[] = "SELECT 1 FROM prompts WHERE org_id = ?1 AND id = ?2";
static const char SQL_VERSION_COUNT[] = "SELECT count(*) FROM prompt_versions WHERE org_id = ?1 AND prompt_id = ?2";
static const char SQL_VERSION_LIST[] = "SELECT " VERSION_COLS "FROM prompt_versions v WHERE v.org_id = ?1 AND "
                                       "v.prompt_id = ?2 ORDER BY v.number DESC LIMIT ?3 OFFSET ?4";
static const char SQL_VERSION_GET[] =
    "SELECT " VERSION_COLS "FROM prompt_versions v WHERE v.org_id = ?1 AND v.prompt_id = ?2 AND v.id = ?3";
static const char SQL_VERSION_PUBLISH[] =
    "UPDATE prompt_versions SET published_at = ?4 WHERE org_id = ?1 AND prompt_id = ?2 AND id = ?3";
static const char SQL_PROMPT_PUBLISH[] = "UPDATE prompts SET status = 'published', published_version_id = ?3, "
                                         "updated_at = ?4 WHERE org_id = ?1 AND id = ?2";

static int version_from_row(sqlite3_stmt *st, store_version *v)
{
    memset(v, 0, sizeof *v);
    sq_col_copy(st, 0, v->id, sizeof v->id);
    sq_col_copy(st, 1, v->prompt_id, sizeof v->prompt_id);
    sq_col_copy(st, 2, v->user_id, sizeof v->user_id);
    v->number = (long)sqlite3_column_int64(st, 3);
    v->content = sq_col_strdup(st, 4);
    v->created_at = sqlite3_column_int64(st, 5);
    v->published_at = sqlite3_column_int64(st, 6);
    return v->content ? STORE_OK : STORE_ERR;
}


int sq_version_list(store_t *base, const char *org_id, const char *prompt_id, long offset, long limit,
                           store_version_page *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc, step;
    size_t cap = 0;
    if ((rc = sq_exists(c, SQL_PROMPT_EXISTS, org_id, prompt_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_VERSION_COUNT);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, prompt_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        out->total = (long)sqlite3_column_int64(st, 0);
    sq_stmt_done(st);
    if (!(st = sq_stmt(c, SQL_VERSION_LIST)))
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, prompt_id);
    sqlite3_bind_int64(st, 3, limit);
    sqlite3_bind_int64(st, 4, offset);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sq_grow(&out->items, &cap, out->count, sizeof *out->items))
            break;
        if (version_from_row(st, &out->items[out->count]) != STORE_OK)
            break;
        out->count++;
    }
    sq_stmt_done(st);
    rc = step == SQLITE_DONE ? STORE_OK : sq_fail(c, "version list");
out:
    sq_reader_put(s, c);
    if (rc != STORE_OK)
        store_version_page_free(out);
    return rc;
}

static int version_get_on(sq_conn *c, const char *org_id, const char *prompt_id, const char *version_id,
                          store_version *out)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_VERSION_GET);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, prompt_id);
    sq_bind_text(st, 3, version_id);
    int step = sqlite3_step(st), rc;
    if (step == SQLITE_ROW)
        rc = version_from_row(st, out);
    else
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "version get");
    sq_stmt_done(st);
    return rc;
}

int sq_version_get(store_t *base, const char *org_id, const char *prompt_id, const char *version_id,
                          store_version *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = version_get_on(c, org_id, prompt_id, version_id, out);
    sq_reader_put(s, c);
    return rc;
}

int sq_version_publish(store_t *base, const char *org_id, const char *prompt_id, const char *version_id)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_VERSION_PUBLISH);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, prompt_id);
    sq_bind_text(st, 3, version_id);
    sqlite3_bind_int64(st, 4, now);
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    if (!(st = sq_stmt(c, SQL_PROMPT_PUBLISH))) {
        rc = STORE_ERR;
        goto out;
    }
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, prompt_id);
    sq_bind_text(st, 3, version_id);
    sqlite3_bind_int64(st, 4, now);
    rc = sq_step_done(c, st);
out:
    return sq_w_end(s, rc);
}

/* ---------------------------------------------------------------- reactions */

int sq_reaction_set(store_t *base, const char *org_id, const char *user_id, enum store_target target,
                           const char *target_id, enum store_reaction kind, int on)
{
    static const char *tables[] = {[STORE_TARGET_PROMPT] = "prompts", [STORE_TARGET_EXECUTION] = "executions",
                                   [STORE_TARGET_COMMENT] = "comments"};
    static const char *types[] = {[STORE_TARGET_PROMPT] = "prompt", [STORE_TARGET_EXECUTION] = "execution",
                                  [STORE_TARGET_COMMENT] = "comment"};
    static const char *kinds[] = {[STORE_REACT_LIKE] = "like", [STORE_REACT_SAVE] = "save",
                                  [STORE_REACT_FOLLOW] = "follow"};
    static const char *counters[] = {[STORE_REACT_LIKE] = "likes_count", [STORE_REACT_SAVE] = "saves_count",
                                     [STORE_REACT_FOLLOW] = "followers_count"};
    sq_store *s = (sq_store *)base;
    char sql[256];
    sqlite3_stmt *st = NULL;
    int rc = STORE_ERR;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;

    snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE org_id = ?1 AND id = ?2", tables[target]);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sq_fail(c, "reaction target prepare");
        goto out;
    }
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, target_id);
    int step = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "reaction target");
        goto out;
    }
    if (on)
        snprintf(sql, sizeof sql,
                 "INSERT OR IGNORE INTO reactions (user_id, target_type, target_id, kind, org_id, created_at) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    else
        snprintf(sql, sizeof sql,
                 "DELETE FROM reactions WHERE user_id = ?1 AND target_type = ?2 AND target_id = ?3 AND kind = ?4");
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sq_fail(c, "reaction prepare");
        goto out;
    }
    sq_bind_text(st, 1, user_id);
    sq_bind_text(st, 2, types[target]);
    sq_bind_text(st, 3, target_id);
    sq_bind_text(st, 4, kinds[kind]);
    if (on) {
        sq_bind_text(st, 5, org_id);
        sqlite3_bind_int64(st, 6, time_now_ms());
    }
    if (sqlite3_step(st) != SQLITE_DONE) {
        sq_fail(c, "reaction write");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_changes(c->db) == 0) { /* already in that state: counters stay */
        rc = STORE_OK;
        goto out;
    }
    snprintf(sql, sizeof sql, "UPDATE %s SET %s = max(0, %s %s 1) WHERE id = ?1", tables[target], counters[kind],
             counters[kind], on ? "+" : "-");
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sq_fail(c, "reaction counter prepare");
        goto out;
    }
    sq_bind_text(st, 1, target_id);
    rc = sqlite3_step(st) == SQLITE_DONE ? STORE_OK : sq_fail(c, "reaction counter");
out:
    sqlite3_finalize(st);
    return sq_w_end(s, rc);
}

