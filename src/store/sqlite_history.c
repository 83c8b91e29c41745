/*
 * sqlite_history.c — SQLite backend for spec 002: the prompt history (one
 * row per prompt with its latest execution), clearing it, and the
 * organization resources its filters name: workspaces, data sources and
 * users (with their API keys). Also the prompt's links (workspace, tags,
 * data sources) that sqlite_prompts.c reads and writes through
 * SQ_PROMPT_LINK_COLS / sq_prompt_links_write.
 *
 * The history never groups executions: migration 0005 keeps a copy of each
 * prompt's latest execution on the prompt row (triggers on executions), and
 * indexes on (org_id, user_id, <sort key>) serve a page straight from the
 * index. Search goes through the FTS5 index prompts_fts (name and content),
 * with the user's words quoted so FTS operators are never interpreted.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "store/sqlite_internal.h"

/* Grow a page's items array by one slot; returns the slot or NULL. */
static int is_unique_violation(int rc) { return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY; }

/* Step a write statement: OK, CONFLICT on a unique violation, ERR otherwise. */
static int step_write(sq_conn *c, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sq_stmt_done(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return STORE_OK;
    if (is_unique_violation(rc))
        return STORE_CONFLICT;
    return sq_fail(c, what);
}

/* ---------------------------------------------------------------- prompt links */

static const char SQL_PROMPT_LINKS_UPDATE[] =
    "UPDATE prompts SET workspace_id = CASE WHEN ?3 IS NULL THEN workspace_id WHEN ?3 = '' THEN NULL "
    "ELSE (SELECT w.id FROM workspaces w WHERE w.id = ?3 AND w.org_id = ?2) END, tags = coalesce(?4, tags) "
    "WHERE id = ?1 AND org_id = ?2";
static const char SQL_PROMPT_DS_CLEAR[] = "DELETE FROM prompt_data_sources WHERE prompt_id = ?1";
static const char SQL_PROMPT_DS_INSERT[] =
    "INSERT OR IGNORE INTO prompt_data_sources (prompt_id, data_source_id) SELECT ?1, d.id FROM data_sources d "
    "WHERE d.org_id = ?2 AND d.id IN (SELECT value FROM json_each(?3))";
static const char SQL_WS_EXISTS[] = "SELECT 1 FROM workspaces WHERE org_id = ?1 AND id = ?2";
static const char SQL_DS_REFS_COUNT[] = "SELECT count(DISTINCT j.value), count(DISTINCT d.id) FROM json_each(?2) j "
                                        "LEFT JOIN data_sources d ON d.id = j.value AND d.org_id = ?1";

void sq_prompt_links_from_row(sqlite3_stmt *st, int col, store_prompt *p)
{
    sq_col_copy(st, col, p->workspace_id, sizeof p->workspace_id);
    p->tags = sq_col_strdup(st, col + 1);
    p->data_source_ids = sq_col_strdup(st, col + 2);
}

int sq_prompt_links_write(sq_conn *c, const char *org_id, const char *prompt_id, const char *workspace_id,
                          const char *tags, const char *data_source_ids)
{
    sqlite3_stmt *st;
    int rc;
    if (workspace_id || tags) {
        if (!(st = sq_stmt(c, SQL_PROMPT_LINKS_UPDATE)))
            return STORE_ERR;
        sq_bind_text(st, 1, prompt_id);
        sq_bind_text(st, 2, org_id);
        sq_bind_text(st, 3, workspace_id);
        sq_bind_text(st, 4, tags);
        if ((rc = sq_step_done(c, st)) != STORE_OK)
            return rc;
    }
    if (data_source_ids) {
        if (!(st = sq_stmt(c, SQL_PROMPT_DS_CLEAR)))
            return STORE_ERR;
        sq_bind_text(st, 1, prompt_id);
        if ((rc = sq_step_done(c, st)) != STORE_OK)
            return rc;
        if (!(st = sq_stmt(c, SQL_PROMPT_DS_INSERT)))
            return STORE_ERR;
        sq_bind_text(st, 1, prompt_id);
        sq_bind_text(st, 2, org_id);
        sq_bind_text(st, 3, data_source_ids);
        if ((rc = sq_step_done(c, st)) != STORE_OK)
            return rc;
    }
    return STORE_OK;
}

int sq_prompt_refs_check(store_t *base, const char *org_id, const char *workspace_id, const char *data_source_ids,
                         const char **bad_field)
{
    sq_store *s = (sq_store *)base;
    *bad_field = NULL;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_OK;
    if (workspace_id && *workspace_id) {
        rc = sq_exists(c, SQL_WS_EXISTS, org_id, workspace_id);
        if (rc == STORE_NOTFOUND)
            *bad_field = "workspace_id";
        if (rc != STORE_OK)
            goto out;
    }
    if (data_source_ids) {
        sqlite3_stmt *st = sq_stmt(c, SQL_DS_REFS_COUNT);
        if (!st) {
            rc = STORE_ERR;
            goto out;
        }
        sq_bind_text(st, 1, org_id);
        sq_bind_text(st, 2, data_source_ids);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            if (sqlite3_column_int64(st, 0) != sqlite3_column_int64(st, 1)) {
                rc = STORE_NOTFOUND;
                *bad_field = "data_source_ids";
            }
        } else {
            rc = sq_fail(c, "data source refs");
        }
        sq_stmt_done(st);
    }
out:
    sq_reader_put(s, c);
    return rc;
}

/* ---------------------------------------------------------------- workspaces */

#define WS_COLS                                                                                                        \
    "w.id, w.org_id, w.name, w.description, w.created_at, w.updated_at, "                                              \
    "(SELECT count(*) FROM prompts p WHERE p.workspace_id = w.id), "                                                   \
    "(SELECT count(*) FROM data_sources d WHERE d.workspace_id = w.id), w.num "

static const char SQL_WS_INSERT[] = "INSERT INTO workspaces (id, org_id, name, description, created_at, updated_at) "
                                    "VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
static const char SQL_WS_GET[] = "SELECT " WS_COLS "FROM workspaces w WHERE w.org_id = ?1 AND w.id = ?2";
static const char SQL_WS_COUNT[] = "SELECT count(*) FROM workspaces WHERE org_id = ?1";
static const char SQL_WS_LIST[] = "SELECT " WS_COLS "FROM workspaces w WHERE w.org_id = ?1 "
                                  "ORDER BY w.num LIMIT ?2 OFFSET ?3";
static const char SQL_WS_UPDATE[] = "UPDATE workspaces SET name = coalesce(?3, name), "
                                    "description = coalesce(?4, description), updated_at = ?5 "
                                    "WHERE org_id = ?1 AND id = ?2";
static const char SQL_WS_DELETE[] = "DELETE FROM workspaces WHERE org_id = ?1 AND id = ?2";

static int ws_from_row(sqlite3_stmt *st, store_workspace *w)
{
    memset(w, 0, sizeof *w);
    sq_col_copy(st, 0, w->id, sizeof w->id);
    sq_col_copy(st, 1, w->org_id, sizeof w->org_id);
    w->name = sq_col_strdup(st, 2);
    w->description = sq_col_strdup(st, 3);
    w->created_at = sqlite3_column_int64(st, 4);
    w->updated_at = sqlite3_column_int64(st, 5);
    w->prompts_count = (long)sqlite3_column_int64(st, 6);
    w->data_sources_count = (long)sqlite3_column_int64(st, 7);
    w->num = sqlite3_column_int64(st, 8);
    if (!w->name || !w->description) {
        store_workspace_clear(w);
        return STORE_ERR;
    }
    return STORE_OK;
}

static int ws_get_on(sq_conn *c, const char *org_id, const char *id, store_workspace *out)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_WS_GET);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    int step = sqlite3_step(st), rc;
    if (step == SQLITE_ROW)
        rc = ws_from_row(st, out);
    else
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "workspace get");
    sq_stmt_done(st);
    return rc;
}

int sq_workspace_create(store_t *base, store_workspace *w)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    id_new(w->id);
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_WS_INSERT);
    if (!st)
        goto out;
    sq_bind_text(st, 1, w->id);
    sq_bind_text(st, 2, w->org_id);
    sq_bind_text(st, 3, w->name);
    sq_bind_text(st, 4, w->description ? w->description : "");
    sqlite3_bind_int64(st, 5, now);
    if ((rc = step_write(c, st, "workspace insert")) == STORE_OK)
        w->created_at = w->updated_at = now;
out:
    return sq_w_end(s, rc);
}

int sq_workspace_get(store_t *base, const char *org_id, const char *id, store_workspace *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = ws_get_on(c, org_id, id, out);
    sq_reader_put(s, c);
    return rc;
}

static int ws_row(sqlite3_stmt *st, void *item) { return ws_from_row(st, item); }

int sq_workspace_list(store_t *base, const char *org_id, long offset, long limit, store_workspace_page *out)
{
    memset(out, 0, sizeof *out);
    sq_page_query q = {SQL_WS_COUNT, SQL_WS_LIST, {org_id}, 1, offset, limit, "workspace list"};
    int rc = sq_page((sq_store *)base, &q, sizeof *out->items, ws_row, &out->items, &out->count, &out->total);
    if (rc != STORE_OK)
        store_workspace_page_free(out);
    return rc;
}

int sq_workspace_update(store_t *base, const char *org_id, const char *id, const store_workspace_patch *patch,
                        store_workspace *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_WS_UPDATE);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    sq_bind_text(st, 3, patch->name);
    sq_bind_text(st, 4, patch->description);
    sqlite3_bind_int64(st, 5, time_now_ms());
    if ((rc = step_write(c, st, "workspace update")) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    rc = ws_get_on(c, org_id, id, out);
out:
    if (sq_w_end_lost(s, &rc))
        store_workspace_clear(out);
    return rc;
}

/* Run a two-parameter DELETE; NOTFOUND when it removed nothing. */
int sq_workspace_delete(store_t *base, const char *org_id, const char *id)
{
    /* prompts and data sources in it are detached (ON DELETE SET NULL) */
    return sq_delete_one((sq_store *)base, SQL_WS_DELETE, org_id, id);
}

/* ---------------------------------------------------------------- data sources */

#define DS_COLS                                                                                                        \
    "d.id, d.org_id, coalesce(d.workspace_id, ''), d.name, d.type, d.description, d.created_at, d.updated_at, "        \
    "(SELECT count(*) FROM prompt_data_sources pd WHERE pd.data_source_id = d.id), d.num, "                            \
    "coalesce((SELECT w.num FROM workspaces w WHERE w.id = d.workspace_id), 0) "

static const char SQL_DS_INSERT[] =
    "INSERT INTO data_sources (id, org_id, workspace_id, name, type, description, created_at, updated_at) "
    "VALUES (?1, ?2, nullif(?3, ''), ?4, ?5, ?6, ?7, ?7)";
static const char SQL_DS_GET[] = "SELECT " DS_COLS "FROM data_sources d WHERE d.org_id = ?1 AND d.id = ?2";
static const char SQL_DS_COUNT[] =
    "SELECT count(*) FROM data_sources d WHERE d.org_id = ?1 AND (?2 IS NULL OR d.workspace_id = ?2)";
static const char SQL_DS_LIST[] = "SELECT " DS_COLS "FROM data_sources d WHERE d.org_id = ?1 AND "
                                  "(?2 IS NULL OR d.workspace_id = ?2) ORDER BY d.num LIMIT ?3 OFFSET ?4";
static const char SQL_DS_UPDATE[] =
    "UPDATE data_sources SET name = coalesce(?3, name), type = coalesce(?4, type), "
    "description = coalesce(?5, description), "
    "workspace_id = CASE WHEN ?6 IS NULL THEN workspace_id ELSE nullif(?6, '') END, updated_at = ?7 "
    "WHERE org_id = ?1 AND id = ?2";
static const char SQL_DS_DELETE[] = "DELETE FROM data_sources WHERE org_id = ?1 AND id = ?2";

static int ds_from_row(sqlite3_stmt *st, store_data_source *d)
{
    memset(d, 0, sizeof *d);
    sq_col_copy(st, 0, d->id, sizeof d->id);
    sq_col_copy(st, 1, d->org_id, sizeof d->org_id);
    sq_col_copy(st, 2, d->workspace_id, sizeof d->workspace_id);
    d->name = sq_col_strdup(st, 3);
    d->type = sq_col_strdup(st, 4);
    d->description = sq_col_strdup(st, 5);
    d->created_at = sqlite3_column_int64(st, 6);
    d->updated_at = sqlite3_column_int64(st, 7);
    d->prompts_count = (long)sqlite3_column_int64(st, 8);
    d->num = sqlite3_column_int64(st, 9);
    d->workspace_num = sqlite3_column_int64(st, 10);
    if (!d->name || !d->type || !d->description) {
        store_data_source_clear(d);
        return STORE_ERR;
    }
    return STORE_OK;
}

static int ds_get_on(sq_conn *c, const char *org_id, const char *id, store_data_source *out)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_DS_GET);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    int step = sqlite3_step(st), rc;
    if (step == SQLITE_ROW)
        rc = ds_from_row(st, out);
    else
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "data source get");
    sq_stmt_done(st);
    return rc;
}

int sq_data_source_create(store_t *base, store_data_source *d)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    id_new(d->id);
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if (d->workspace_id[0] && (rc = sq_exists(c, SQL_WS_EXISTS, d->org_id, d->workspace_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_DS_INSERT);
    if (!st)
        goto out;
    sq_bind_text(st, 1, d->id);
    sq_bind_text(st, 2, d->org_id);
    sq_bind_text(st, 3, d->workspace_id);
    sq_bind_text(st, 4, d->name);
    sq_bind_text(st, 5, d->type);
    sq_bind_text(st, 6, d->description ? d->description : "");
    sqlite3_bind_int64(st, 7, now);
    if ((rc = step_write(c, st, "data source insert")) == STORE_OK)
        d->created_at = d->updated_at = now;
out:
    return sq_w_end(s, rc);
}

int sq_data_source_get(store_t *base, const char *org_id, const char *id, store_data_source *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = ds_get_on(c, org_id, id, out);
    sq_reader_put(s, c);
    return rc;
}

static int ds_row(sqlite3_stmt *st, void *item) { return ds_from_row(st, item); }

int sq_data_source_list(store_t *base, const char *org_id, const char *workspace_id, long offset, long limit,
                        store_data_source_page *out)
{
    memset(out, 0, sizeof *out);
    sq_page_query q = {SQL_DS_COUNT, SQL_DS_LIST, {org_id, workspace_id}, 2, offset, limit, "data source list"};
    int rc = sq_page((sq_store *)base, &q, sizeof *out->items, ds_row, &out->items, &out->count, &out->total);
    if (rc != STORE_OK)
        store_data_source_page_free(out);
    return rc;
}

int sq_data_source_update(store_t *base, const char *org_id, const char *id, const store_data_source_patch *patch,
                          store_data_source *out, int *bad_workspace)
{
    sq_store *s = (sq_store *)base;
    if (bad_workspace)
        *bad_workspace = 0;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if (patch->workspace_id && *patch->workspace_id &&
        (rc = sq_exists(c, SQL_WS_EXISTS, org_id, patch->workspace_id)) != STORE_OK) {
        if (rc == STORE_NOTFOUND && bad_workspace)
            *bad_workspace = 1;
        goto out;
    }
    rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_DS_UPDATE);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    sq_bind_text(st, 3, patch->name);
    sq_bind_text(st, 4, patch->type);
    sq_bind_text(st, 5, patch->description);
    sq_bind_text(st, 6, patch->workspace_id);
    sqlite3_bind_int64(st, 7, time_now_ms());
    if ((rc = step_write(c, st, "data source update")) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    rc = ds_get_on(c, org_id, id, out);
out:
    if (sq_w_end_lost(s, &rc))
        store_data_source_clear(out);
    return rc;
}

int sq_data_source_delete(store_t *base, const char *org_id, const char *id)
{
    /* prompt links go with it (ON DELETE CASCADE) */
    return sq_delete_one((sq_store *)base, SQL_DS_DELETE, org_id, id);
}

/* ---------------------------------------------------------------- users */

#define USER_COLS                                                                                                      \
    "u.id, u.org_id, u.email, u.name, u.role, u.created_at, coalesce(u.updated_at, u.created_at), "                    \
    "(SELECT count(*) FROM api_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL), u.num, "                       \
    "coalesce(u.history_cleared_at, 0) "

static const char SQL_USER_INSERT[] =
    "INSERT INTO users (id, org_id, email, name, role, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)";
static const char SQL_USER_GET[] = "SELECT " USER_COLS "FROM users u WHERE u.org_id = ?1 AND u.id = ?2";
static const char SQL_USER_COUNT[] = "SELECT count(*) FROM users WHERE org_id = ?1";
static const char SQL_USER_LIST[] =
    "SELECT " USER_COLS "FROM users u WHERE u.org_id = ?1 ORDER BY u.num LIMIT ?2 OFFSET ?3";
static const char SQL_USER_ROLE[] = "SELECT role FROM users WHERE org_id = ?1 AND id = ?2";
static const char SQL_USER_ADMINS[] = "SELECT count(*) FROM users WHERE org_id = ?1 AND role = 'admin'";
static const char SQL_USER_UPDATE[] =
    "UPDATE users SET email = coalesce(?3, email), name = coalesce(?4, name), role = coalesce(?5, role), "
    "updated_at = ?6 WHERE org_id = ?1 AND id = ?2";
static const char SQL_USER_DELETE[] = "DELETE FROM users WHERE org_id = ?1 AND id = ?2";
static const char SQL_USER_KEY_INSERT[] =
    "INSERT INTO api_keys (id, org_id, user_id, prefix, hash, name, created_at) "
    "SELECT ?1, u.org_id, u.id, ?4, ?5, ?6, ?7 FROM users u WHERE u.org_id = ?2 AND u.id = ?3";
static const char SQL_USER_KEY_GET[] =
    "SELECT k.id, k.org_id, k.user_id, k.prefix, k.name, k.created_at, u.role, o.name, u.email "
    "FROM api_keys k JOIN users u ON u.id = k.user_id JOIN organizations o ON o.id = k.org_id WHERE k.id = ?1";

static int user_from_row(sqlite3_stmt *st, store_user *u)
{
    memset(u, 0, sizeof *u);
    sq_col_copy(st, 0, u->id, sizeof u->id);
    sq_col_copy(st, 1, u->org_id, sizeof u->org_id);
    u->email = sq_col_strdup(st, 2);
    u->name = sq_col_strdup(st, 3);
    sq_col_copy(st, 4, u->role, sizeof u->role);
    u->created_at = sqlite3_column_int64(st, 5);
    u->updated_at = sqlite3_column_int64(st, 6);
    u->keys_count = (long)sqlite3_column_int64(st, 7);
    u->num = sqlite3_column_int64(st, 8);
    u->history_cleared_at = sqlite3_column_int64(st, 9);
    if (!u->email || !u->name) {
        store_user_clear(u);
        return STORE_ERR;
    }
    return STORE_OK;
}

static int user_get_on(sq_conn *c, const char *org_id, const char *id, store_user *out)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_USER_GET);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    int step = sqlite3_step(st), rc;
    if (step == SQLITE_ROW)
        rc = user_from_row(st, out);
    else
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "user get");
    sq_stmt_done(st);
    return rc;
}

int sq_user_create(store_t *base, store_user *u)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    id_new(u->id);
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_USER_INSERT);
    if (!st)
        goto out;
    sq_bind_text(st, 1, u->id);
    sq_bind_text(st, 2, u->org_id);
    sq_bind_text(st, 3, u->email);
    sq_bind_text(st, 4, u->name ? u->name : "");
    sq_bind_text(st, 5, u->role[0] ? u->role : "member");
    sqlite3_bind_int64(st, 6, now);
    if ((rc = step_write(c, st, "user insert")) == STORE_OK) {
        u->created_at = u->updated_at = now;
        if (!u->role[0])
            snprintf(u->role, sizeof u->role, "member");
    }
out:
    return sq_w_end(s, rc);
}

int sq_user_get(store_t *base, const char *org_id, const char *id, store_user *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = user_get_on(c, org_id, id, out);
    sq_reader_put(s, c);
    return rc;
}

static int user_row(sqlite3_stmt *st, void *item) { return user_from_row(st, item); }

int sq_user_list(store_t *base, const char *org_id, long offset, long limit, store_user_page *out)
{
    memset(out, 0, sizeof *out);
    sq_page_query q = {SQL_USER_COUNT, SQL_USER_LIST, {org_id}, 1, offset, limit, "user list"};
    int rc = sq_page((sq_store *)base, &q, sizeof *out->items, user_row, &out->items, &out->count, &out->total);
    if (rc != STORE_OK)
        store_user_page_free(out);
    return rc;
}

/* Inside a writer transaction: the user's role (NOTFOUND if not in org) and the org's admin count. */
static int user_role_on(sq_conn *c, const char *org_id, const char *id, char role[16], long *admins)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_USER_ROLE);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        sq_col_copy(st, 0, role, 16);
    sq_stmt_done(st);
    if (step != SQLITE_ROW)
        return step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "user role");
    if (!(st = sq_stmt(c, SQL_USER_ADMINS)))
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    step = sqlite3_step(st);
    *admins = step == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : 0;
    sq_stmt_done(st);
    return step == SQLITE_ROW ? STORE_OK : sq_fail(c, "user admins");
}

int sq_user_update(store_t *base, const char *org_id, const char *id, const store_user_patch *patch, store_user *out,
                   const char **conflict)
{
    sq_store *s = (sq_store *)base;
    const char *dummy;
    if (!conflict)
        conflict = &dummy;
    *conflict = NULL;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    char role[16] = "";
    long admins = 0;
    int rc = user_role_on(c, org_id, id, role, &admins);
    if (rc != STORE_OK)
        goto out;
    if (patch->role && strcmp(role, "admin") == 0 && strcmp(patch->role, "admin") != 0 && admins <= 1) {
        *conflict = "role";
        rc = STORE_CONFLICT;
        goto out;
    }
    rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_USER_UPDATE);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    sq_bind_text(st, 3, patch->email);
    sq_bind_text(st, 4, patch->name);
    sq_bind_text(st, 5, patch->role);
    sqlite3_bind_int64(st, 6, time_now_ms());
    if ((rc = step_write(c, st, "user update")) != STORE_OK) {
        if (rc == STORE_CONFLICT)
            *conflict = "email";
        goto out;
    }
    rc = user_get_on(c, org_id, id, out);
out:
    if (sq_w_end_lost(s, &rc))
        store_user_clear(out);
    return rc;
}

int sq_user_delete(store_t *base, const char *org_id, const char *id)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    char role[16] = "";
    long admins = 0;
    int rc = user_role_on(c, org_id, id, role, &admins);
    if (rc != STORE_OK)
        goto out;
    if (strcmp(role, "admin") == 0 && admins <= 1) {
        rc = STORE_CONFLICT;
        goto out;
    }
    rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_USER_DELETE);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    /* the user's API keys go with the row (ON DELETE CASCADE): they stop working at once */
    rc = step_write(c, st, "user delete");
out:
    return sq_w_end(s, rc);
}

int sq_user_key_create(store_t *base, const char *org_id, const char *user_id, const char *key_name,
                       const char *key_prefix, const unsigned char *hash, store_key *out)
{
    sq_store *s = (sq_store *)base;
    store_id id;
    id_new(id);
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_USER_KEY_INSERT);
    if (!st)
        goto out;
    sq_bind_text(st, 1, id);
    sq_bind_text(st, 2, org_id);
    sq_bind_text(st, 3, user_id);
    sq_bind_text(st, 4, key_prefix);
    sqlite3_bind_blob(st, 5, hash, STORE_KEY_HASH_LEN, SQLITE_TRANSIENT);
    sq_bind_text(st, 6, key_name ? key_name : "");
    sqlite3_bind_int64(st, 7, time_now_ms());
    if ((rc = step_write(c, st, "user key insert")) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    if (!(st = sq_stmt(c, SQL_USER_KEY_GET))) {
        rc = STORE_ERR;
        goto out;
    }
    sq_bind_text(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        sq_col_copy(st, 0, out->id, sizeof out->id);
        sq_col_copy(st, 1, out->org_id, sizeof out->org_id);
        sq_col_copy(st, 2, out->user_id, sizeof out->user_id);
        sq_col_copy(st, 3, out->prefix, sizeof out->prefix);
        sq_col_copy(st, 4, out->name, sizeof out->name);
        out->created_at = sqlite3_column_int64(st, 5);
        sq_col_copy(st, 6, out->role, sizeof out->role);
        sq_col_copy(st, 7, out->org_name, sizeof out->org_name);
        sq_col_copy(st, 8, out->user_email, sizeof out->user_email);
        memcpy(out->hash, hash, STORE_KEY_HASH_LEN);
        rc = STORE_OK;
    } else {
        rc = sq_fail(c, "user key get");
    }
    sq_stmt_done(st);
out:
    return sq_w_end(s, rc);
}

/* ---------------------------------------------------------------- history */

/* Free text -> an FTS5 query over name and content: every word a quoted
 * prefix term ("word"*), all required. Operators and punctuation in the input
 * are never interpreted (a '"' cannot occur inside a term). *out is malloc'd;
 * it is "" when the text has no word. */
static int hist_fts_query(const char *text, char **out)
{
    size_t n = strlen(text), o = 0, words = 0;
    /* each input byte at most once, plus per word: space, two quotes, star; plus the column filter */
    char *q = malloc(n + 4 * (n / 2 + 1) + 32);
    if (!q)
        return -1;
    o = (size_t)sprintf(q, "{name content} : (");
    size_t start = o;
    const unsigned char *p = (const unsigned char *)text;
    while (*p && words < 32) {
        while (*p && !(isalnum(*p) || *p >= 0x80 || *p == '_'))
            p++;
        if (!*p)
            break;
        if (o > start)
            q[o++] = ' ';
        q[o++] = '"';
        while (*p && (isalnum(*p) || *p >= 0x80 || *p == '_'))
            q[o++] = (char)*p++;
        q[o++] = '"';
        q[o++] = '*';
        words++;
    }
    if (!words)
        o = 0;
    else
        q[o++] = ')';
    q[o] = '\0';
    *out = q;
    return 0;
}

#define HIST_TIME "coalesce(p.last_executed_at, p.created_at)"
#define HIST_COLS                                                                                                      \
    "p.id, p.user_id, coalesce(p.workspace_id, ''), coalesce(p.last_execution_id, ''), p.name, p.description, "        \
    "p.content, p.tags, (SELECT json_group_array(pd.data_source_id) FROM prompt_data_sources pd "                      \
    "WHERE pd.prompt_id = p.id), p.last_status, p.status, p.last_duration_ms, " HIST_TIME ", "                         \
    "coalesce(p.last_executed_at, 0), p.created_at, p.updated_at, p.num, "                                             \
    "coalesce((SELECT u.num FROM users u WHERE u.id = p.user_id), 0), "                                                \
    "coalesce((SELECT w.num FROM workspaces w WHERE w.id = p.workspace_id), 0), "                                      \
    "(SELECT json_group_array(n) FROM (SELECT d.num AS n FROM prompt_data_sources pd "                                 \
    "JOIN data_sources d ON d.id = pd.data_source_id WHERE pd.prompt_id = p.id ORDER BY d.num)) "

static int hist_from_row(sqlite3_stmt *st, store_history_item *h)
{
    memset(h, 0, sizeof *h);
    sq_col_copy(st, 0, h->id, sizeof h->id);
    sq_col_copy(st, 1, h->user_id, sizeof h->user_id);
    sq_col_copy(st, 2, h->workspace_id, sizeof h->workspace_id);
    sq_col_copy(st, 3, h->last_execution_id, sizeof h->last_execution_id);
    h->name = sq_col_strdup(st, 4);
    h->description = sq_col_strdup(st, 5);
    h->prompt_text = sq_col_strdup(st, 6);
    h->tags = sq_col_strdup(st, 7);
    h->data_source_ids = sq_col_strdup(st, 8);
    sq_col_copy(st, 9, h->status, sizeof h->status);
    sq_col_copy(st, 10, h->prompt_status, sizeof h->prompt_status);
    h->execution_time_ms = (long)sqlite3_column_int64(st, 11);
    h->timestamp = sqlite3_column_int64(st, 12);
    h->last_executed_at = sqlite3_column_int64(st, 13);
    h->created_at = sqlite3_column_int64(st, 14);
    h->updated_at = sqlite3_column_int64(st, 15);
    h->num = sqlite3_column_int64(st, 16);
    h->user_num = sqlite3_column_int64(st, 17);
    h->workspace_num = sqlite3_column_int64(st, 18);
    h->data_source_nums = sq_col_strdup(st, 19);
    if (!h->name || !h->description || !h->prompt_text || !h->tags || !h->data_source_ids || !h->data_source_nums) {
        store_history_item_clear(h);
        return STORE_ERR;
    }
    return STORE_OK;
}

static const char SQL_HIST_CLEARED_AT[] =
    "SELECT coalesce(history_cleared_at, 0) FROM users WHERE org_id = ?1 AND id = ?2";

/* One user's last history clear (0 = never, or no such user). */
static int hist_cleared_at(sq_conn *c, const char *org_id, const char *user_id, int64_t *out)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_HIST_CLEARED_AT);
    *out = 0;
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, user_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sq_stmt_done(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? STORE_OK : sq_fail(c, "history cleared at");
}

int sq_history_list(store_t *base, const char *org_id, const store_history_query *q, store_history_page *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    static const char *order_cols[] = {
        [STORE_HSORT_TIMESTAMP] = HIST_TIME " %1$s, p.rowid %1$s",
        [STORE_HSORT_STATUS] = "p.last_status %1$s, " HIST_TIME " %1$s, p.rowid %1$s",
        [STORE_HSORT_DURATION] = "p.last_duration_ms %1$s, " HIST_TIME " %1$s, p.rowid %1$s",
        [STORE_HSORT_NAME] = "p.name COLLATE NOCASE %1$s, p.rowid %1$s",
        [STORE_HSORT_CREATED_AT] = "p.created_at %1$s, p.rowid %1$s",
    };
    if ((unsigned)q->sort >= sizeof order_cols / sizeof order_cols[0])
        return STORE_ERR;
    char *match = NULL;
    if (q->search && hist_fts_query(q->search, &match))
        return STORE_ERR;
    if (match && !*match) { /* only punctuation: nothing can match */
        free(match);
        return STORE_OK;
    }
    char where[1024], order[160], sql[2560];
    int rc = STORE_ERR, step;
    sqlite3_stmt *cnt = NULL, *st = NULL;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        goto out;
    /* One user's history starts at their last clear: that is one more lower bound on the row's time, the
     * same as time_period's (so the same index serves it). Every user's: each row against its owner's. */
    int64_t since = q->since;
    if (q->after_clear && q->user_id) {
        int64_t cleared;
        if (hist_cleared_at(c, org_id, q->user_id, &cleared) != STORE_OK)
            goto out;
        /* strictly after the clear: a row of the clear's own millisecond was there before it
         * (its time was read inside the clearing transaction) */
        if (cleared && cleared + 1 > since)
            since = cleared + 1;
    }
    int owner_clear = q->after_clear && !q->user_id;
    /* Sorted by status or duration, the page is read in the order of the (org, user, status|duration, time)
     * index, the time_period checked in its entries; the unary + keeps the planner from taking the time
     * range instead and sorting every row of it (most rows are recent, so that range is rarely selective). */
    int index_order = q->user_id && (q->sort == STORE_HSORT_STATUS || q->sort == STORE_HSORT_DURATION);
    /* An organization-wide search is driven by the FTS matches (rowid lookups, bounded by how many match)
     * rather than by walking every prompt of the organization in the org index: the unary + keeps the
     * planner off that index. With a user, the user's index range is small and drives. */
    snprintf(where, sizeof where, "FROM prompts p WHERE %sp.org_id = ?1%s%s%s%s%s%s%s", match && !q->user_id ? "+" : "",
             q->user_id ? " AND p.user_id = ?2" : "", q->workspace_id ? " AND p.workspace_id = ?3" : "",
             q->data_source_id
                 ? " AND p.id IN (SELECT pd.prompt_id FROM prompt_data_sources pd WHERE pd.data_source_id = ?4)"
                 : "",
             q->status ? " AND p.last_status = ?5" : "",
             !since        ? ""
             : index_order ? " AND +" HIST_TIME " >= ?6"
                           : " AND " HIST_TIME " >= ?6",
             match ? " AND p.rowid IN (SELECT rowid FROM prompts_fts WHERE prompts_fts MATCH ?7)" : "",
             owner_clear ? " AND +" HIST_TIME " > coalesce((SELECT u.history_cleared_at FROM users u "
                           "WHERE u.id = p.user_id), 0)"
                         : "");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(order, sizeof order, order_cols[q->sort], q->sort_desc ? "DESC" : "ASC");
#pragma GCC diagnostic pop

    snprintf(sql, sizeof sql, "SELECT count(*) %s", where);
    if (sqlite3_prepare_v2(c->db, sql, -1, &cnt, NULL) != SQLITE_OK) {
        sq_fail(c, "history count prepare");
        goto out;
    }
    snprintf(sql, sizeof sql, "SELECT " HIST_COLS "%s ORDER BY %s LIMIT ?8 OFFSET ?9", where, order);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sq_fail(c, "history list prepare");
        goto out;
    }
    sqlite3_stmt *both[2] = {cnt, st};
    for (int i = 0; i < 2; i++) {
        sq_bind_text(both[i], 1, org_id);
        if (q->user_id)
            sq_bind_text(both[i], 2, q->user_id);
        if (q->workspace_id)
            sq_bind_text(both[i], 3, q->workspace_id);
        if (q->data_source_id)
            sq_bind_text(both[i], 4, q->data_source_id);
        if (q->status)
            sq_bind_text(both[i], 5, q->status);
        if (since)
            sqlite3_bind_int64(both[i], 6, since);
        if (match)
            sq_bind_text(both[i], 7, match);
    }
    sqlite3_bind_int64(st, 8, q->limit);
    sqlite3_bind_int64(st, 9, q->offset);

    if (sqlite3_step(cnt) != SQLITE_ROW) {
        sq_fail(c, "history count");
        goto out;
    }
    out->total = (long)sqlite3_column_int64(cnt, 0);
    size_t cap = 0;
    /* a page past the end reads nothing */
    if (q->offset < out->total) {
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            if (sq_grow(&out->items, &cap, out->count, sizeof *out->items))
                goto out;
            store_history_item *h = &out->items[out->count];
            memset(h, 0, sizeof *h);
            if (hist_from_row(st, h) != STORE_OK)
                goto out;
            out->count++;
        }
        if (step != SQLITE_DONE) {
            sq_fail(c, "history list");
            goto out;
        }
    }
    rc = STORE_OK;
out:
    sqlite3_finalize(cnt);
    sqlite3_finalize(st);
    sq_reader_put(s, c);
    free(match);
    if (rc != STORE_OK)
        store_history_page_free(out);
    return rc;
}

static const char SQL_HIST_CLEAR_REACTIONS[] =
    "DELETE FROM reactions WHERE target_type = 'execution' AND target_id IN (SELECT id FROM executions "
    "WHERE org_id = ?1 AND user_id = ?2 AND status IN ('completed', 'failed', 'cancelled'))";
static const char SQL_HIST_CLEAR[] = "DELETE FROM executions WHERE org_id = ?1 AND user_id = ?2 AND "
                                     "status IN ('completed', 'failed', 'cancelled')";
/* The prompts the user's v1 raw-text submissions created (raw_hash set) that nothing holds on to any more:
 * no execution of anyone's, never edited (updated_at moves on any change through the Jarvis API) or
 * published, no links, no cluster, no reaction (store.h). */
static const char SQL_HIST_CLEAR_PROMPTS[] =
    "DELETE FROM prompts WHERE org_id = ?1 AND user_id = ?2 AND raw_hash IS NOT NULL AND versions_count = 1 "
    "AND updated_at = created_at "
    "AND status = 'draft' AND published_version_id IS NULL AND workspace_id IS NULL AND tags = '[]' "
    "AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.prompt_id = prompts.id) "
    "AND NOT EXISTS (SELECT 1 FROM prompt_data_sources pd WHERE pd.prompt_id = prompts.id) "
    "AND NOT EXISTS (SELECT 1 FROM cluster_prompts cp WHERE cp.prompt_id = prompts.id) "
    "AND NOT EXISTS (SELECT 1 FROM reactions r WHERE r.target_type = 'prompt' AND r.target_id = prompts.id)";
static const char SQL_HIST_CLEARED[] = "UPDATE users SET history_cleared_at = ?3 WHERE org_id = ?1 AND id = ?2";

int sq_history_clear(store_t *base, const char *org_id, const char *user_id, long *deleted, long *prompts_deleted)
{
    static const char *const steps[] = {SQL_HIST_CLEAR_REACTIONS, SQL_HIST_CLEAR, SQL_HIST_CLEAR_PROMPTS,
                                        SQL_HIST_CLEARED};
    sq_store *s = (sq_store *)base;
    *deleted = *prompts_deleted = 0;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    /* read under the write lock: every row written before this transaction has a time <= now */
    int64_t now = time_now_ms();
    int rc = STORE_OK;
    for (size_t i = 0; rc == STORE_OK && i < sizeof steps / sizeof steps[0]; i++) {
        sqlite3_stmt *st = sq_stmt(c, steps[i]);
        if (!st) {
            rc = STORE_ERR;
            break;
        }
        sq_bind_text(st, 1, org_id);
        sq_bind_text(st, 2, user_id);
        if (steps[i] == SQL_HIST_CLEARED)
            sqlite3_bind_int64(st, 3, now);
        /* executions: comments and earlier attempts go with them (ON DELETE CASCADE), and the triggers of
         * 0005 move each prompt's latest execution back; prompts: their versions and FTS rows go with them */
        if ((rc = sq_step_done(c, st)) != STORE_OK)
            break;
        if (steps[i] == SQL_HIST_CLEAR)
            *deleted = (long)sqlite3_changes(c->db);
        else if (steps[i] == SQL_HIST_CLEAR_PROMPTS)
            *prompts_deleted = (long)sqlite3_changes(c->db);
    }
    if (rc != STORE_OK)
        *deleted = *prompts_deleted = 0;
    return sq_w_end(s, rc);
}

/* ---------------------------------------------------------------- integer ids */

static const char SQL_NUM_USER[] = "SELECT id FROM users WHERE org_id = ?1 AND num = ?2";
static const char SQL_NUM_WORKSPACE[] = "SELECT id FROM workspaces WHERE org_id = ?1 AND num = ?2";
static const char SQL_NUM_DATA_SOURCE[] = "SELECT id FROM data_sources WHERE org_id = ?1 AND num = ?2";
static const char SQL_NUM_PROMPT[] = "SELECT id FROM prompts WHERE org_id = ?1 AND num = ?2";

int sq_num_resolve(store_t *base, const char *org_id, enum store_num_kind kind, int64_t num, store_id out)
{
    static const char *const sql[] = {[STORE_NUM_USER] = SQL_NUM_USER,
                                      [STORE_NUM_WORKSPACE] = SQL_NUM_WORKSPACE,
                                      [STORE_NUM_DATA_SOURCE] = SQL_NUM_DATA_SOURCE,
                                      [STORE_NUM_PROMPT] = SQL_NUM_PROMPT};
    sq_store *s = (sq_store *)base;
    out[0] = '\0';
    if ((unsigned)kind >= sizeof sql / sizeof sql[0])
        return STORE_ERR;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, sql[kind]);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sqlite3_bind_int64(st, 2, num);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        sq_col_copy(st, 0, out, sizeof(store_id));
        rc = STORE_OK;
    } else {
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "number resolve");
    }
    sq_stmt_done(st);
out:
    sq_reader_put(s, c);
    return rc;
}

/* ---------------------------------------------------------------- benchmarks */

static const char SQL_BENCH_EXEC_INSERT[] =
    "INSERT INTO executions (id, org_id, user_id, prompt_id, source, rendered_prompt, model, status, output, "
    "prompt_tokens, completion_tokens, total_tokens, duration_ms, attempts, created_at, finished_at, updated_at) "
    "VALUES (?1, ?2, ?3, nullif(?4, ''), ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 1, ?14, "
    "CASE WHEN ?8 IN ('completed', 'failed', 'cancelled') THEN ?14 + ?13 END, ?14 + ?13)";

int sq_bench_execution_insert_bulk(store_t *base, const store_execution *e, size_t n)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_OK;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        const store_execution *x = &e[i];
        store_id id;
        if (x->id[0])
            memcpy(id, x->id, sizeof id);
        else
            id_new(id);
        sqlite3_stmt *st = sq_stmt(c, SQL_BENCH_EXEC_INSERT);
        if (!st) {
            rc = STORE_ERR;
            break;
        }
        sq_bind_text(st, 1, id);
        sq_bind_text(st, 2, x->org_id);
        sq_bind_text(st, 3, x->user_id);
        sq_bind_text(st, 4, x->prompt_id);
        sq_bind_text(st, 5, x->source[0] ? x->source : "prompt");
        sq_bind_text(st, 6, x->rendered_prompt ? x->rendered_prompt : "");
        sq_bind_text(st, 7, x->model ? x->model : "echo");
        sq_bind_text(st, 8, x->status[0] ? x->status : "completed");
        sq_bind_text(st, 9, x->output ? x->output : "");
        sqlite3_bind_int64(st, 10, x->prompt_tokens);
        sqlite3_bind_int64(st, 11, x->completion_tokens);
        sqlite3_bind_int64(st, 12, x->total_tokens);
        sqlite3_bind_int64(st, 13, x->duration_ms);
        sqlite3_bind_int64(st, 14, x->created_at ? x->created_at : now);
        rc = step_write(c, st, "bench execution insert");
    }
    return sq_w_end(s, rc);
}
