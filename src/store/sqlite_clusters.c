/*
 * sqlite_clusters.c — SQLite backend of spec 001: entities, clusters and
 * their members, assigned prompts, contexts, conversations and messages.
 *
 * Every query is scoped by the caller's organization: entities and clusters
 * carry org_id; contexts, conversations and messages are reached through
 * their cluster, whose org_id is checked first (cluster_check). A row of
 * another organization is STORE_NOTFOUND, and *missing says which part of
 * the path was not found.
 *
 * Counts: members_count, prompts_count, contexts_count and
 * conversations_count are counted when read (the foreign keys cascade link
 * rows away whenever a cluster, entity or prompt is deleted, by whatever
 * code), messages_count is a counter moved in the transaction that adds
 * messages (only this file adds or removes them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "store/sqlite_internal.h"

/* Set *missing (when asked for) and return STORE_NOTFOUND. */
static int not_found(enum store_cluster_part *missing, enum store_cluster_part part)
{
    if (missing)
        *missing = part;
    return STORE_NOTFOUND;
}

/* A one-row count query with up to two text parameters; -1 on error. */
static long count_rows(sq_conn *c, const char *sql, const char *a, const char *b)
{
    sqlite3_stmt *st = sq_stmt(c, sql);
    if (!st)
        return -1;
    sq_bind_text(st, 1, a);
    if (b)
        sq_bind_text(st, 2, b);
    long n = sqlite3_step(st) == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : -1;
    sq_stmt_done(st);
    if (n < 0)
        sq_fail(c, "count");
    return n;
}

static const char SQL_CLUSTER_EXISTS[] = "SELECT 1 FROM clusters WHERE org_id = ?1 AND id = ?2";
static const char SQL_ENTITY_EXISTS[] = "SELECT 1 FROM entities WHERE org_id = ?1 AND id = ?2";

/* The cluster is in org_id: STORE_OK, or STORE_NOTFOUND with *missing CLUSTER. */
static int cluster_check(sq_conn *c, const char *org_id, const char *cluster_id, enum store_cluster_part *missing)
{
    int rc = sq_exists(c, SQL_CLUSTER_EXISTS, org_id, cluster_id);
    return rc == STORE_NOTFOUND ? not_found(missing, STORE_PART_CLUSTER) : rc;
}

/* ---------------------------------------------------------------- entities */

#define ENTITY_COLS                                                                                                \
    "e.id, e.org_id, e.user_id, e.name, e.description, e.persona, e.model, e.created_at, e.updated_at, "           \
    "(SELECT count(*) FROM cluster_members cm WHERE cm.entity_id = e.id) "

static const char SQL_ENTITY_INSERT[] =
    "INSERT INTO entities (id, org_id, user_id, name, description, persona, model, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)";
static const char SQL_ENTITY_GET[] = "SELECT " ENTITY_COLS "FROM entities e WHERE e.org_id = ?1 AND e.id = ?2";
static const char SQL_ENTITY_COUNT[] = "SELECT count(*) FROM entities WHERE org_id = ?1";
static const char SQL_ENTITY_LIST[] = "SELECT " ENTITY_COLS "FROM entities e WHERE e.org_id = ?1 "
                                      "ORDER BY e.created_at, e.rowid LIMIT ?2 OFFSET ?3";
static const char SQL_ENTITY_UPDATE[] =
    "UPDATE entities SET name = coalesce(?3, name), description = coalesce(?4, description), "
    "persona = coalesce(?5, persona), model = CASE WHEN ?7 THEN NULL ELSE coalesce(?6, model) END, "
    "updated_at = ?8 WHERE org_id = ?1 AND id = ?2";
static const char SQL_ENTITY_DELETE[] = "DELETE FROM entities WHERE org_id = ?1 AND id = ?2";

static int entity_from_row(sqlite3_stmt *st, store_entity *e)
{
    memset(e, 0, sizeof *e);
    sq_col_copy(st, 0, e->id, sizeof e->id);
    sq_col_copy(st, 1, e->org_id, sizeof e->org_id);
    sq_col_copy(st, 2, e->user_id, sizeof e->user_id);
    e->name = sq_col_strdup(st, 3);
    e->description = sq_col_strdup(st, 4);
    e->persona = sq_col_strdup(st, 5);
    e->model = sq_col_strdup_or_null(st, 6);
    e->created_at = sqlite3_column_int64(st, 7);
    e->updated_at = sqlite3_column_int64(st, 8);
    e->clusters_count = (long)sqlite3_column_int64(st, 9);
    if (!e->name || !e->description || !e->persona || (sqlite3_column_type(st, 6) != SQLITE_NULL && !e->model)) {
        store_entity_clear(e);
        return STORE_ERR;
    }
    return STORE_OK;
}

/* Run a query that yields at most one entity row (params bound by the caller). */
static int entity_one(sq_conn *c, sqlite3_stmt *st, store_entity *out)
{
    int step = sqlite3_step(st), rc;
    if (step == SQLITE_ROW)
        rc = entity_from_row(st, out);
    else
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "entity get");
    sq_stmt_done(st);
    return rc;
}

static int entity_get_on(sq_conn *c, const char *org_id, const char *id, store_entity *out)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_ENTITY_GET);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    return entity_one(c, st, out);
}

/* Step a list query into a page of entities. */
static int entity_rows(sq_conn *c, sqlite3_stmt *st, store_entity_page *out)
{
    size_t cap = 0;
    int step, rc = STORE_OK;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sq_grow(&out->items, &cap, out->count, sizeof *out->items) ||
            entity_from_row(st, &out->items[out->count]) != STORE_OK) {
            rc = STORE_ERR;
            break;
        }
        out->count++;
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = sq_fail(c, "entity list");
    sq_stmt_done(st);
    return rc;
}

int sq_entity_create(store_t *base, store_entity *e)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    id_new(e->id);
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_ENTITY_INSERT);
    if (!st)
        goto out;
    sq_bind_text(st, 1, e->id);
    sq_bind_text(st, 2, e->org_id);
    sq_bind_text(st, 3, e->user_id);
    sq_bind_text(st, 4, e->name);
    sq_bind_text(st, 5, e->description ? e->description : "");
    sq_bind_text(st, 6, e->persona ? e->persona : "");
    sq_bind_text(st, 7, e->model && *e->model ? e->model : NULL);
    sqlite3_bind_int64(st, 8, now);
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    e->created_at = e->updated_at = now;
    e->clusters_count = 0;
out:
    return sq_w_end(s, rc);
}

int sq_entity_get(store_t *base, const char *org_id, const char *id, store_entity *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = entity_get_on(c, org_id, id, out);
    sq_reader_put(s, c);
    return rc;
}

static int entity_row(sqlite3_stmt *st, void *item) { return entity_from_row(st, item); }

int sq_entity_list(store_t *base, const char *org_id, long offset, long limit, store_entity_page *out)
{
    memset(out, 0, sizeof *out);
    sq_page_query q = {SQL_ENTITY_COUNT, SQL_ENTITY_LIST, {org_id}, 1, offset, limit, "entity list"};
    int rc = sq_page((sq_store *)base, &q, sizeof *out->items, entity_row, &out->items, &out->count, &out->total);
    if (rc != STORE_OK)
        store_entity_page_free(out);
    return rc;
}

int sq_entity_update(store_t *base, const char *org_id, const char *id, const store_entity_patch *patch,
                     store_entity *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_ENTITY_UPDATE);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    sq_bind_text(st, 3, patch->name);
    sq_bind_text(st, 4, patch->description);
    sq_bind_text(st, 5, patch->persona);
    sq_bind_text(st, 6, patch->model);
    sqlite3_bind_int(st, 7, patch->clear_model ? 1 : 0);
    sqlite3_bind_int64(st, 8, time_now_ms());
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    rc = entity_get_on(c, org_id, id, out);
out:
    if (sq_w_end_lost(s, &rc))
        store_entity_clear(out);
    return rc;
}

static const char SQL_ENTITY_ID_ORG[] = "SELECT org_id FROM entities WHERE id = ?1";

int sq_entity_register(store_t *base, store_entity *e, const store_entity_patch *patch, store_entity *out,
                       int *created)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    *created = 0;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR, step;
    store_id owner = "";
    sqlite3_stmt *st = sq_stmt(c, SQL_ENTITY_ID_ORG);
    if (!st)
        goto out;
    sq_bind_text(st, 1, e->id);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        sq_col_copy(st, 0, owner, sizeof owner);
    sq_stmt_done(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = sq_fail(c, "entity register");
        goto out;
    }
    if (owner[0] && strcmp(owner, e->org_id) != 0) {
        rc = STORE_NOTFOUND; /* another organization's id: as if missing, never a conflict that leaks it */
        goto out;
    }
    if (owner[0]) { /* registered before: the fields given change it */
        if (!(st = sq_stmt(c, SQL_ENTITY_UPDATE)))
            goto out;
        sq_bind_text(st, 1, e->org_id);
        sq_bind_text(st, 2, e->id);
        sq_bind_text(st, 3, patch->name);
        sq_bind_text(st, 4, patch->description);
        sq_bind_text(st, 5, patch->persona);
        sq_bind_text(st, 6, patch->model);
        sqlite3_bind_int(st, 7, patch->clear_model ? 1 : 0);
        sqlite3_bind_int64(st, 8, now);
    } else {
        if (!(st = sq_stmt(c, SQL_ENTITY_INSERT)))
            goto out;
        sq_bind_text(st, 1, e->id);
        sq_bind_text(st, 2, e->org_id);
        sq_bind_text(st, 3, e->user_id);
        sq_bind_text(st, 4, e->name);
        sq_bind_text(st, 5, e->description ? e->description : "");
        sq_bind_text(st, 6, e->persona ? e->persona : "");
        sq_bind_text(st, 7, e->model && *e->model ? e->model : NULL);
        sqlite3_bind_int64(st, 8, now);
        *created = 1;
    }
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    rc = entity_get_on(c, e->org_id, e->id, out);
out:
    if (rc != STORE_OK)
        *created = 0;
    return sq_w_end(s, rc);
}

int sq_entity_delete(store_t *base, const char *org_id, const char *id)
{
    /* memberships go with it (cluster_members.entity_id cascades) */
    return sq_delete_one((sq_store *)base, SQL_ENTITY_DELETE, org_id, id);
}

/* ---------------------------------------------------------------- clusters */

#define CLUSTER_COLS                                                                                               \
    "c.id, c.org_id, c.user_id, c.name, c.description, c.created_at, c.updated_at, "                               \
    "(SELECT count(*) FROM cluster_members cm WHERE cm.cluster_id = c.id), "                                       \
    "(SELECT count(*) FROM cluster_prompts cp WHERE cp.cluster_id = c.id), "                                       \
    "(SELECT count(*) FROM cluster_contexts cx WHERE cx.cluster_id = c.id), "                                      \
    "(SELECT count(*) FROM conversations cv WHERE cv.cluster_id = c.id) "

static const char SQL_CLUSTER_INSERT[] =
    "INSERT INTO clusters (id, org_id, user_id, name, description, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)";
static const char SQL_CLUSTER_GET[] = "SELECT " CLUSTER_COLS "FROM clusters c WHERE c.org_id = ?1 AND c.id = ?2";
static const char SQL_CLUSTER_COUNT[] =
    "SELECT count(*) FROM clusters WHERE org_id = ?1 AND (?2 IS NULL OR user_id = ?2)";
static const char SQL_CLUSTER_LIST[] = "SELECT " CLUSTER_COLS "FROM clusters c WHERE c.org_id = ?1 "
                                       "AND (?2 IS NULL OR c.user_id = ?2) "
                                       "ORDER BY c.created_at, c.rowid LIMIT ?3 OFFSET ?4";
static const char SQL_CLUSTER_MEMBER_IDS[] =
    "SELECT entity_id FROM cluster_members WHERE cluster_id = ?1 ORDER BY created_at, rowid";
static const char SQL_CLUSTER_UPDATE[] =
    "UPDATE clusters SET name = coalesce(?3, name), description = coalesce(?4, description), updated_at = ?5 "
    "WHERE org_id = ?1 AND id = ?2";
static const char SQL_CLUSTER_DELETE[] = "DELETE FROM clusters WHERE org_id = ?1 AND id = ?2";

static int cluster_from_row(sqlite3_stmt *st, store_cluster *c)
{
    memset(c, 0, sizeof *c);
    sq_col_copy(st, 0, c->id, sizeof c->id);
    sq_col_copy(st, 1, c->org_id, sizeof c->org_id);
    sq_col_copy(st, 2, c->user_id, sizeof c->user_id);
    c->name = sq_col_strdup(st, 3);
    c->description = sq_col_strdup(st, 4);
    c->created_at = sqlite3_column_int64(st, 5);
    c->updated_at = sqlite3_column_int64(st, 6);
    c->members_count = (long)sqlite3_column_int64(st, 7);
    c->prompts_count = (long)sqlite3_column_int64(st, 8);
    c->contexts_count = (long)sqlite3_column_int64(st, 9);
    c->conversations_count = (long)sqlite3_column_int64(st, 10);
    if (!c->name || !c->description) {
        store_cluster_clear(c);
        return STORE_ERR;
    }
    return STORE_OK;
}

static int cluster_member_ids(sq_conn *c, store_cluster *out)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_CLUSTER_MEMBER_IDS);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, out->id);
    size_t cap = 0;
    int step, rc = STORE_OK;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sq_grow(&out->member_ids, &cap, out->member_ids_count, sizeof *out->member_ids)) {
            rc = STORE_ERR;
            break;
        }
        sq_col_copy(st, 0, out->member_ids[out->member_ids_count++], sizeof(store_id));
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = sq_fail(c, "cluster members");
    sq_stmt_done(st);
    return rc;
}

/* The cluster with its member ids. */
static int cluster_get_on(sq_conn *c, const char *org_id, const char *id, store_cluster *out)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_CLUSTER_GET);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    int step = sqlite3_step(st), rc;
    if (step == SQLITE_ROW)
        rc = cluster_from_row(st, out);
    else
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "cluster get");
    sq_stmt_done(st);
    if (rc == STORE_OK && (rc = cluster_member_ids(c, out)) != STORE_OK)
        store_cluster_clear(out);
    return rc;
}

int sq_cluster_create(store_t *base, store_cluster *cl)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    id_new(cl->id);
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_CLUSTER_INSERT);
    if (!st)
        goto out;
    sq_bind_text(st, 1, cl->id);
    sq_bind_text(st, 2, cl->org_id);
    sq_bind_text(st, 3, cl->user_id);
    sq_bind_text(st, 4, cl->name);
    sq_bind_text(st, 5, cl->description ? cl->description : "");
    sqlite3_bind_int64(st, 6, now);
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    cl->created_at = cl->updated_at = now;
    cl->members_count = cl->prompts_count = cl->contexts_count = cl->conversations_count = 0;
out:
    return sq_w_end(s, rc);
}

int sq_cluster_get(store_t *base, const char *org_id, const char *id, store_cluster *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    /* one read transaction, so the counts and the member ids agree */
    int rc = sq_exec(c, "BEGIN");
    if (rc == STORE_OK) {
        rc = cluster_get_on(c, org_id, id, out);
        sq_exec(c, "COMMIT");
    }
    sq_reader_put(s, c);
    return rc;
}

static int cluster_row(sqlite3_stmt *st, void *item) { return cluster_from_row(st, item); }

int sq_cluster_list(store_t *base, const char *org_id, const char *user_id, long offset, long limit,
                    store_cluster_page *out)
{
    memset(out, 0, sizeof *out);
    sq_page_query q = {SQL_CLUSTER_COUNT, SQL_CLUSTER_LIST, {org_id, user_id}, 2, offset, limit, "cluster list"};
    int rc = sq_page((sq_store *)base, &q, sizeof *out->items, cluster_row, &out->items, &out->count, &out->total);
    if (rc != STORE_OK)
        store_cluster_page_free(out);
    return rc;
}

int sq_cluster_update(store_t *base, const char *org_id, const char *id, const store_cluster_patch *patch,
                      store_cluster *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_CLUSTER_UPDATE);
    if (!st)
        goto out;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, id);
    sq_bind_text(st, 3, patch->name);
    sq_bind_text(st, 4, patch->description);
    sqlite3_bind_int64(st, 5, time_now_ms());
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    rc = cluster_get_on(c, org_id, id, out);
out:
    if (sq_w_end_lost(s, &rc))
        store_cluster_clear(out);
    return rc;
}

int sq_cluster_delete(store_t *base, const char *org_id, const char *id)
{
    /* members, prompt links, contexts, conversations and their messages cascade */
    return sq_delete_one((sq_store *)base, SQL_CLUSTER_DELETE, org_id, id);
}

/* ---------------------------------------------------------------- members */

static const char SQL_MEMBER_INSERT[] =
    "INSERT OR IGNORE INTO cluster_members (cluster_id, entity_id, created_at) VALUES (?1, ?2, ?3)";
static const char SQL_MEMBER_DELETE[] = "DELETE FROM cluster_members WHERE cluster_id = ?1 AND entity_id = ?2";
static const char SQL_MEMBER_COUNT[] = "SELECT count(*) FROM cluster_members WHERE cluster_id = ?1";
static const char SQL_MEMBER_LIST[] =
    "SELECT " ENTITY_COLS "FROM cluster_members m JOIN entities e ON e.id = m.entity_id WHERE m.cluster_id = ?1 "
    "ORDER BY m.created_at, m.rowid LIMIT ?2 OFFSET ?3";
static const char SQL_MEMBER_GET[] = "SELECT " ENTITY_COLS "FROM cluster_members m JOIN entities e ON "
                                     "e.id = m.entity_id WHERE m.cluster_id = ?1 AND m.entity_id = ?2";

/* Link or unlink (cluster, other) in a link table; both must be in org_id. */
static int link_set(sq_store *s, const char *org_id, const char *cluster_id, const char *other_id, int on,
                    const char *exists_sql, enum store_cluster_part other_part, const char *insert_sql,
                    const char *delete_sql, enum store_cluster_part *missing)
{
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if ((rc = cluster_check(c, org_id, cluster_id, missing)) != STORE_OK)
        goto out;
    if ((rc = sq_exists(c, exists_sql, org_id, other_id)) != STORE_OK) {
        if (rc == STORE_NOTFOUND)
            not_found(missing, other_part);
        goto out;
    }
    rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, on ? insert_sql : delete_sql);
    if (!st)
        goto out;
    sq_bind_text(st, 1, cluster_id);
    sq_bind_text(st, 2, other_id);
    if (on)
        sqlite3_bind_int64(st, 3, time_now_ms());
    /* INSERT OR IGNORE / DELETE of nothing: a repeat changes nothing */
    rc = sq_step_done(c, st);
out:
    return sq_w_end(s, rc);
}

int sq_cluster_member_set(store_t *base, const char *org_id, const char *cluster_id, const char *entity_id, int on,
                          enum store_cluster_part *missing)
{
    return link_set((sq_store *)base, org_id, cluster_id, entity_id, on, SQL_ENTITY_EXISTS, STORE_PART_ENTITY,
                    SQL_MEMBER_INSERT, SQL_MEMBER_DELETE, missing);
}

int sq_cluster_member_list(store_t *base, const char *org_id, const char *cluster_id, long offset, long limit,
                           store_entity_page *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if ((rc = cluster_check(c, org_id, cluster_id, NULL)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((out->total = count_rows(c, SQL_MEMBER_COUNT, cluster_id, NULL)) < 0)
        goto out;
    sqlite3_stmt *st = sq_stmt(c, SQL_MEMBER_LIST);
    if (!st)
        goto out;
    sq_bind_text(st, 1, cluster_id);
    sqlite3_bind_int64(st, 2, limit < 0 ? -1 : limit);
    sqlite3_bind_int64(st, 3, limit < 0 ? 0 : offset);
    rc = entity_rows(c, st, out);
out:
    sq_reader_put(s, c);
    if (rc != STORE_OK)
        store_entity_page_free(out);
    return rc;
}

int sq_cluster_member_get(store_t *base, const char *org_id, const char *cluster_id, const char *entity_id,
                          store_entity *out, enum store_cluster_part *missing)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if ((rc = cluster_check(c, org_id, cluster_id, missing)) != STORE_OK)
        goto out;
    sqlite3_stmt *st = sq_stmt(c, SQL_MEMBER_GET);
    if (!st) {
        rc = STORE_ERR;
        goto out;
    }
    sq_bind_text(st, 1, cluster_id);
    sq_bind_text(st, 2, entity_id);
    if ((rc = entity_one(c, st, out)) == STORE_NOTFOUND)
        not_found(missing, STORE_PART_ENTITY);
out:
    sq_reader_put(s, c);
    return rc;
}

/* ---------------------------------------------------------------- cluster prompts */

static const char SQL_CPROMPT_INSERT[] =
    "INSERT OR IGNORE INTO cluster_prompts (cluster_id, prompt_id, created_at) VALUES (?1, ?2, ?3)";
static const char SQL_CPROMPT_DELETE[] = "DELETE FROM cluster_prompts WHERE cluster_id = ?1 AND prompt_id = ?2";
static const char SQL_CPROMPT_COUNT[] = "SELECT count(*) FROM cluster_prompts WHERE cluster_id = ?1";
static const char SQL_CPROMPT_LIST[] =
    "SELECT " SQ_PROMPT_COLS "FROM cluster_prompts cp JOIN prompts p ON p.id = cp.prompt_id WHERE cp.cluster_id = ?1 "
    "ORDER BY cp.created_at, cp.rowid LIMIT ?4 OFFSET ?5";

int sq_cluster_prompt_set(store_t *base, const char *org_id, const char *cluster_id, const char *prompt_id, int on,
                          enum store_cluster_part *missing)
{
    return link_set((sq_store *)base, org_id, cluster_id, prompt_id, on, SQL_PROMPT_EXISTS, STORE_PART_PROMPT,
                    SQL_CPROMPT_INSERT, SQL_CPROMPT_DELETE, missing);
}

int sq_cluster_prompt_list(store_t *base, const char *org_id, const char *cluster_id, long offset, long limit,
                           store_prompt_page *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc, step;
    size_t cap = 0;
    if ((rc = cluster_check(c, org_id, cluster_id, NULL)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((out->total = count_rows(c, SQL_CPROMPT_COUNT, cluster_id, NULL)) < 0)
        goto out;
    sqlite3_stmt *st = sq_stmt(c, SQL_CPROMPT_LIST);
    if (!st)
        goto out;
    sq_bind_text(st, 1, cluster_id);
    sq_bind_text(st, 3, ""); /* no viewer: liked/saved/followed are false */
    sqlite3_bind_int64(st, 4, limit);
    sqlite3_bind_int64(st, 5, offset);
    rc = STORE_OK;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sq_grow(&out->items, &cap, out->count, sizeof *out->items) ||
            sq_prompt_from_row(st, &out->items[out->count]) != STORE_OK) {
            rc = STORE_ERR;
            break;
        }
        out->count++;
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = sq_fail(c, "cluster prompt list");
    sq_stmt_done(st);
out:
    sq_reader_put(s, c);
    if (rc != STORE_OK)
        store_prompt_page_free(out);
    return rc;
}

/* ---------------------------------------------------------------- contexts */

#define CONTEXT_COLS "x.id, x.cluster_id, x.name, x.content, x.created_at, x.updated_at "
static const char SQL_CONTEXT_INSERT[] =
    "INSERT INTO cluster_contexts (id, cluster_id, name, content, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
static const char SQL_CONTEXT_COUNT[] = "SELECT count(*) FROM cluster_contexts WHERE cluster_id = ?1";
static const char SQL_CONTEXT_LIST[] = "SELECT " CONTEXT_COLS "FROM cluster_contexts x WHERE x.cluster_id = ?1 "
                                       "ORDER BY x.created_at, x.rowid LIMIT ?2 OFFSET ?3";
static const char SQL_CONTEXT_GET[] =
    "SELECT " CONTEXT_COLS "FROM cluster_contexts x WHERE x.cluster_id = ?1 AND x.id = ?2";
static const char SQL_CONTEXT_UPDATE[] =
    "UPDATE cluster_contexts SET name = coalesce(?3, name), content = coalesce(?4, content), updated_at = ?5 "
    "WHERE cluster_id = ?1 AND id = ?2";
static const char SQL_CONTEXT_DELETE[] = "DELETE FROM cluster_contexts WHERE cluster_id = ?1 AND id = ?2";

static int context_from_row(sqlite3_stmt *st, store_context *x)
{
    memset(x, 0, sizeof *x);
    sq_col_copy(st, 0, x->id, sizeof x->id);
    sq_col_copy(st, 1, x->cluster_id, sizeof x->cluster_id);
    x->name = sq_col_strdup(st, 2);
    x->content = sq_col_strdup(st, 3);
    x->created_at = sqlite3_column_int64(st, 4);
    x->updated_at = sqlite3_column_int64(st, 5);
    if (!x->name || !x->content) {
        store_context_clear(x);
        return STORE_ERR;
    }
    return STORE_OK;
}

int sq_context_create(store_t *base, const char *org_id, const char *cluster_id, store_context *x)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if ((rc = cluster_check(c, org_id, cluster_id, NULL)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_CONTEXT_INSERT);
    if (!st)
        goto out;
    id_new(x->id);
    snprintf(x->cluster_id, sizeof x->cluster_id, "%s", cluster_id);
    sq_bind_text(st, 1, x->id);
    sq_bind_text(st, 2, cluster_id);
    sq_bind_text(st, 3, x->name ? x->name : "");
    sq_bind_text(st, 4, x->content);
    sqlite3_bind_int64(st, 5, now);
    if ((rc = sq_step_done(c, st)) == STORE_OK)
        x->created_at = x->updated_at = now;
out:
    return sq_w_end(s, rc);
}

int sq_context_list(store_t *base, const char *org_id, const char *cluster_id, long offset, long limit,
                    store_context_page *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc, step;
    size_t cap = 0;
    if ((rc = cluster_check(c, org_id, cluster_id, NULL)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((out->total = count_rows(c, SQL_CONTEXT_COUNT, cluster_id, NULL)) < 0)
        goto out;
    sqlite3_stmt *st = sq_stmt(c, SQL_CONTEXT_LIST);
    if (!st)
        goto out;
    sq_bind_text(st, 1, cluster_id);
    sqlite3_bind_int64(st, 2, limit < 0 ? -1 : limit);
    sqlite3_bind_int64(st, 3, limit < 0 ? 0 : offset);
    rc = STORE_OK;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sq_grow(&out->items, &cap, out->count, sizeof *out->items) ||
            context_from_row(st, &out->items[out->count]) != STORE_OK) {
            rc = STORE_ERR;
            break;
        }
        out->count++;
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = sq_fail(c, "context list");
    sq_stmt_done(st);
out:
    sq_reader_put(s, c);
    if (rc != STORE_OK)
        store_context_page_free(out);
    return rc;
}

int sq_context_update(store_t *base, const char *org_id, const char *cluster_id, const char *id,
                      const store_context_patch *patch, store_context *out, enum store_cluster_part *missing)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if ((rc = cluster_check(c, org_id, cluster_id, missing)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_CONTEXT_UPDATE);
    if (!st)
        goto out;
    sq_bind_text(st, 1, cluster_id);
    sq_bind_text(st, 2, id);
    sq_bind_text(st, 3, patch->name);
    sq_bind_text(st, 4, patch->content);
    sqlite3_bind_int64(st, 5, time_now_ms());
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        rc = not_found(missing, STORE_PART_CONTEXT);
        goto out;
    }
    if (!(st = sq_stmt(c, SQL_CONTEXT_GET))) {
        rc = STORE_ERR;
        goto out;
    }
    sq_bind_text(st, 1, cluster_id);
    sq_bind_text(st, 2, id);
    rc = sqlite3_step(st) == SQLITE_ROW ? context_from_row(st, out) : sq_fail(c, "context get");
    sq_stmt_done(st);
out:
    return sq_w_end(s, rc);
}

int sq_context_delete(store_t *base, const char *org_id, const char *cluster_id, const char *id,
                      enum store_cluster_part *missing)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if ((rc = cluster_check(c, org_id, cluster_id, missing)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_CONTEXT_DELETE);
    if (!st)
        goto out;
    sq_bind_text(st, 1, cluster_id);
    sq_bind_text(st, 2, id);
    if ((rc = sq_step_done(c, st)) == STORE_OK && sqlite3_changes(c->db) == 0)
        rc = not_found(missing, STORE_PART_CONTEXT);
out:
    return sq_w_end(s, rc);
}

/* ---------------------------------------------------------------- conversations */

#define CONVERSATION_COLS "v.id, v.cluster_id, v.user_id, v.title, v.status, v.messages_count, v.created_at, v.updated_at "
static const char SQL_CONVERSATION_INSERT[] =
    "INSERT INTO conversations (id, cluster_id, user_id, title, status, messages_count, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, 'active', 0, ?5, ?5)";
static const char SQL_CONVERSATION_GET[] =
    "SELECT " CONVERSATION_COLS "FROM conversations v WHERE v.cluster_id = ?1 AND v.id = ?2";
static const char SQL_CONVERSATION_COUNT[] =
    "SELECT count(*) FROM conversations WHERE cluster_id = ?1 AND (?2 IS NULL OR status = ?2)";
static const char SQL_CONVERSATION_LIST[] =
    "SELECT " CONVERSATION_COLS "FROM conversations v WHERE v.cluster_id = ?1 AND (?2 IS NULL OR v.status = ?2) "
    "ORDER BY v.created_at DESC, v.rowid DESC LIMIT ?3 OFFSET ?4";
static const char SQL_CONVERSATION_UPDATE[] =
    "UPDATE conversations SET title = coalesce(?3, title), status = coalesce(?4, status), updated_at = ?5 "
    "WHERE cluster_id = ?1 AND id = ?2";
static const char SQL_CONVERSATION_DELETE[] = "DELETE FROM conversations WHERE cluster_id = ?1 AND id = ?2";
/* Across the organization's clusters (the Jarvis SDK's /conversations): reached through the cluster's org_id. */
static const char SQL_CONVERSATION_COUNT_ORG[] =
    "SELECT count(*) FROM conversations v JOIN clusters c ON c.id = v.cluster_id WHERE c.org_id = ?1 "
    "AND (?2 IS NULL OR v.user_id = ?2) AND (?3 IS NULL OR v.status = ?3) AND (?4 IS NULL OR v.cluster_id = ?4)";
static const char SQL_CONVERSATION_LIST_ORG[] =
    "SELECT " CONVERSATION_COLS "FROM conversations v JOIN clusters c ON c.id = v.cluster_id WHERE c.org_id = ?1 "
    "AND (?2 IS NULL OR v.user_id = ?2) AND (?3 IS NULL OR v.status = ?3) AND (?4 IS NULL OR v.cluster_id = ?4) "
    "ORDER BY v.created_at DESC, v.rowid DESC LIMIT ?5 OFFSET ?6";
static const char SQL_CONVERSATION_LOCATE[] =
    "SELECT v.cluster_id FROM conversations v JOIN clusters c ON c.id = v.cluster_id WHERE c.org_id = ?1 AND v.id = ?2";
static const char SQL_CONVERSATION_CLEAR[] = "DELETE FROM messages WHERE conversation_id = ?1";
static const char SQL_CONVERSATION_ZERO[] =
    "UPDATE conversations SET messages_count = 0, updated_at = ?2 WHERE id = ?1";
static const char SQL_CONVERSATION_BUMP[] =
    "UPDATE conversations SET messages_count = messages_count + ?2, updated_at = ?3 WHERE id = ?1";

static int conversation_from_row(sqlite3_stmt *st, store_conversation *v)
{
    memset(v, 0, sizeof *v);
    sq_col_copy(st, 0, v->id, sizeof v->id);
    sq_col_copy(st, 1, v->cluster_id, sizeof v->cluster_id);
    sq_col_copy(st, 2, v->user_id, sizeof v->user_id);
    v->title = sq_col_strdup(st, 3);
    sq_col_copy(st, 4, v->status, sizeof v->status);
    v->messages_count = (long)sqlite3_column_int64(st, 5);
    v->created_at = sqlite3_column_int64(st, 6);
    v->updated_at = sqlite3_column_int64(st, 7);
    return v->title ? STORE_OK : STORE_ERR;
}

/* The conversation when it is in the cluster (which must be in org_id). */
static int conversation_get_on(sq_conn *c, const char *org_id, const char *cluster_id, const char *id,
                               store_conversation *out, enum store_cluster_part *missing)
{
    int rc;
    if ((rc = cluster_check(c, org_id, cluster_id, missing)) != STORE_OK)
        return rc;
    sqlite3_stmt *st = sq_stmt(c, SQL_CONVERSATION_GET);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, cluster_id);
    sq_bind_text(st, 2, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        rc = conversation_from_row(st, out);
    else
        rc = step == SQLITE_DONE ? not_found(missing, STORE_PART_CONVERSATION) : sq_fail(c, "conversation get");
    sq_stmt_done(st);
    return rc;
}

int sq_conversation_create(store_t *base, const char *org_id, const char *cluster_id, store_conversation *v)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if ((rc = cluster_check(c, org_id, cluster_id, NULL)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_CONVERSATION_INSERT);
    if (!st)
        goto out;
    id_new(v->id);
    snprintf(v->cluster_id, sizeof v->cluster_id, "%s", cluster_id);
    sq_bind_text(st, 1, v->id);
    sq_bind_text(st, 2, cluster_id);
    sq_bind_text(st, 3, v->user_id);
    sq_bind_text(st, 4, v->title);
    sqlite3_bind_int64(st, 5, now);
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    snprintf(v->status, sizeof v->status, "active");
    v->messages_count = 0;
    v->created_at = v->updated_at = now;
out:
    return sq_w_end(s, rc);
}

int sq_conversation_get(store_t *base, const char *org_id, const char *cluster_id, const char *id,
                        store_conversation *out, enum store_cluster_part *missing)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = conversation_get_on(c, org_id, cluster_id, id, out, missing);
    sq_reader_put(s, c);
    return rc;
}

int sq_conversation_list(store_t *base, const char *org_id, const char *cluster_id, const char *status,
                         long offset, long limit, store_conversation_page *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc, step;
    size_t cap = 0;
    if ((rc = cluster_check(c, org_id, cluster_id, NULL)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if ((out->total = count_rows(c, SQL_CONVERSATION_COUNT, cluster_id, status)) < 0)
        goto out;
    sqlite3_stmt *st = sq_stmt(c, SQL_CONVERSATION_LIST);
    if (!st)
        goto out;
    sq_bind_text(st, 1, cluster_id);
    sq_bind_text(st, 2, status);
    sqlite3_bind_int64(st, 3, limit);
    sqlite3_bind_int64(st, 4, offset);
    rc = STORE_OK;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sq_grow(&out->items, &cap, out->count, sizeof *out->items) ||
            conversation_from_row(st, &out->items[out->count]) != STORE_OK) {
            rc = STORE_ERR;
            break;
        }
        out->count++;
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = sq_fail(c, "conversation list");
    sq_stmt_done(st);
out:
    sq_reader_put(s, c);
    if (rc != STORE_OK)
        store_conversation_page_free(out);
    return rc;
}

int sq_conversation_update(store_t *base, const char *org_id, const char *cluster_id, const char *id,
                           const store_conversation_patch *patch, store_conversation *out,
                           enum store_cluster_part *missing)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if ((rc = cluster_check(c, org_id, cluster_id, missing)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_CONVERSATION_UPDATE);
    if (!st)
        goto out;
    sq_bind_text(st, 1, cluster_id);
    sq_bind_text(st, 2, id);
    sq_bind_text(st, 3, patch->title);
    sq_bind_text(st, 4, patch->status);
    sqlite3_bind_int64(st, 5, time_now_ms());
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        rc = not_found(missing, STORE_PART_CONVERSATION);
        goto out;
    }
    rc = conversation_get_on(c, org_id, cluster_id, id, out, missing);
out:
    if (sq_w_end_lost(s, &rc))
        store_conversation_clear(out);
    return rc;
}

int sq_conversation_delete(store_t *base, const char *org_id, const char *cluster_id, const char *id,
                           enum store_cluster_part *missing)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if ((rc = cluster_check(c, org_id, cluster_id, missing)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_CONVERSATION_DELETE);
    if (!st)
        goto out;
    sq_bind_text(st, 1, cluster_id);
    sq_bind_text(st, 2, id);
    /* its messages cascade */
    if ((rc = sq_step_done(c, st)) == STORE_OK && sqlite3_changes(c->db) == 0)
        rc = not_found(missing, STORE_PART_CONVERSATION);
out:
    return sq_w_end(s, rc);
}

static int conversation_row(sqlite3_stmt *st, void *item) { return conversation_from_row(st, item); }

int sq_conversation_list_org(store_t *base, const char *org_id, const char *cluster_id, const char *user_id,
                             const char *status, long offset, long limit, store_conversation_page *out)
{
    memset(out, 0, sizeof *out);
    sq_page_query q = {SQL_CONVERSATION_COUNT_ORG, SQL_CONVERSATION_LIST_ORG, {org_id, user_id, status, cluster_id}, 4,
                       offset, limit, "conversation list (organization)"};
    int rc = sq_page((sq_store *)base, &q, sizeof *out->items, conversation_row, &out->items, &out->count,
                     &out->total);
    if (rc != STORE_OK)
        store_conversation_page_free(out);
    return rc;
}

int sq_conversation_locate(store_t *base, const char *org_id, const char *id, store_id cluster_id)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_CONVERSATION_LOCATE);
    if (st) {
        sq_bind_text(st, 1, org_id);
        sq_bind_text(st, 2, id);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            sq_col_copy(st, 0, cluster_id, sizeof(store_id));
            rc = STORE_OK;
        } else {
            rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "conversation locate");
        }
        sq_stmt_done(st);
    }
    sq_reader_put(s, c);
    return rc;
}

int sq_conversation_empty(store_t *base, const char *org_id, const char *cluster_id, const char *id,
                          store_conversation *out, enum store_cluster_part *missing)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    store_conversation cur = {0};
    sqlite3_stmt *st;
    /* the conversation must be in the cluster, and the cluster in org_id */
    int rc = conversation_get_on(c, org_id, cluster_id, id, &cur, missing);
    store_conversation_clear(&cur);
    if (rc != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if (!(st = sq_stmt(c, SQL_CONVERSATION_CLEAR)))
        goto out;
    sq_bind_text(st, 1, id);
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if (!(st = sq_stmt(c, SQL_CONVERSATION_ZERO)))
        goto out;
    sq_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, time_now_ms());
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    rc = conversation_get_on(c, org_id, cluster_id, id, out, missing);
out:
    if (sq_w_end_lost(s, &rc))
        store_conversation_clear(out);
    return rc;
}

/* ---------------------------------------------------------------- messages */

#define MESSAGE_COLS                                                                                               \
    "m.id, m.conversation_id, coalesce(m.user_id, ''), coalesce(m.entity_id, ''), coalesce(m.execution_id, ''), "  \
    "m.role, m.status, m.content, m.entity_name, m.error, m.model, m.prompt_tokens, m.completion_tokens, "         \
    "m.total_tokens, m.duration_ms, m.created_at, m.updated_at "
static const char SQL_MESSAGE_INSERT[] =
    "INSERT INTO messages (id, conversation_id, role, content, user_id, entity_id, entity_name, status, error, "
    "model, execution_id, prompt_tokens, completion_tokens, total_tokens, duration_ms, created_at, updated_at) "
    "VALUES (?1, ?2, ?3, ?4, nullif(?5, ''), nullif(?6, ''), ?7, ?8, ?9, ?10, nullif(?11, ''), ?12, ?13, ?14, "
    "?15, ?16, ?16)";
static const char SQL_MESSAGE_FINISH[] =
    "UPDATE messages SET status = ?2, content = ?3, error = ?4, model = coalesce(?5, model), "
    "execution_id = coalesce(?6, execution_id), prompt_tokens = ?7, completion_tokens = ?8, total_tokens = ?9, "
    "duration_ms = ?10, updated_at = ?11 WHERE id = ?1 AND status = 'processing'";
static const char SQL_MESSAGE_BY_ID[] = "SELECT " MESSAGE_COLS "FROM messages m WHERE m.id = ?1";
static const char SQL_MESSAGE_GET[] =
    "SELECT " MESSAGE_COLS "FROM messages m WHERE m.conversation_id = ?1 AND m.id = ?2";
static const char SQL_MESSAGE_COUNT[] = "SELECT count(*) FROM messages WHERE conversation_id = ?1";
static const char SQL_MESSAGE_LIST[] = "SELECT " MESSAGE_COLS "FROM messages m WHERE m.conversation_id = ?1 "
                                       "ORDER BY m.seq LIMIT ?2 OFFSET ?3";
static const char SQL_MESSAGE_LATEST[] =
    "SELECT * FROM (SELECT " MESSAGE_COLS ", m.seq FROM messages m WHERE m.conversation_id = ?1 "
    "ORDER BY m.seq DESC LIMIT ?2) ORDER BY seq";

static int message_from_row(sqlite3_stmt *st, store_message *m)
{
    memset(m, 0, sizeof *m);
    sq_col_copy(st, 0, m->id, sizeof m->id);
    sq_col_copy(st, 1, m->conversation_id, sizeof m->conversation_id);
    sq_col_copy(st, 2, m->user_id, sizeof m->user_id);
    sq_col_copy(st, 3, m->entity_id, sizeof m->entity_id);
    sq_col_copy(st, 4, m->execution_id, sizeof m->execution_id);
    sq_col_copy(st, 5, m->role, sizeof m->role);
    sq_col_copy(st, 6, m->status, sizeof m->status);
    m->content = sq_col_strdup(st, 7);
    m->entity_name = sq_col_strdup_or_null(st, 8);
    m->error = sq_col_strdup_or_null(st, 9);
    m->model = sq_col_strdup_or_null(st, 10);
    m->prompt_tokens = (long)sqlite3_column_int64(st, 11);
    m->completion_tokens = (long)sqlite3_column_int64(st, 12);
    m->total_tokens = (long)sqlite3_column_int64(st, 13);
    m->duration_ms = (long)sqlite3_column_int64(st, 14);
    m->created_at = sqlite3_column_int64(st, 15);
    m->updated_at = sqlite3_column_int64(st, 16);
    if (!m->content || (sqlite3_column_type(st, 8) != SQLITE_NULL && !m->entity_name) ||
        (sqlite3_column_type(st, 9) != SQLITE_NULL && !m->error) ||
        (sqlite3_column_type(st, 10) != SQLITE_NULL && !m->model)) {
        store_message_clear(m);
        return STORE_ERR;
    }
    return STORE_OK;
}

/* Run a query that yields at most one message row (params bound by the caller). */
static int message_one(sq_conn *c, sqlite3_stmt *st, store_message *out)
{
    int step = sqlite3_step(st), rc;
    if (step == SQLITE_ROW)
        rc = message_from_row(st, out);
    else
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "message get");
    sq_stmt_done(st);
    return rc;
}

static int message_insert(sq_conn *c, const char *conversation_id, store_message *m, int64_t now)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_MESSAGE_INSERT);
    if (!st)
        return STORE_ERR;
    id_new(m->id);
    snprintf(m->conversation_id, sizeof m->conversation_id, "%s", conversation_id);
    if (!m->status[0])
        snprintf(m->status, sizeof m->status, "completed");
    sq_bind_text(st, 1, m->id);
    sq_bind_text(st, 2, conversation_id);
    sq_bind_text(st, 3, m->role);
    sq_bind_text(st, 4, m->content ? m->content : "");
    sq_bind_text(st, 5, m->user_id);
    sq_bind_text(st, 6, m->entity_id);
    sq_bind_text(st, 7, m->entity_name);
    sq_bind_text(st, 8, m->status);
    sq_bind_text(st, 9, m->error);
    sq_bind_text(st, 10, m->model);
    sq_bind_text(st, 11, m->execution_id);
    sqlite3_bind_int64(st, 12, m->prompt_tokens);
    sqlite3_bind_int64(st, 13, m->completion_tokens);
    sqlite3_bind_int64(st, 14, m->total_tokens);
    sqlite3_bind_int64(st, 15, m->duration_ms);
    sqlite3_bind_int64(st, 16, now);
    int rc = sq_step_done(c, st);
    if (rc == STORE_OK)
        m->created_at = m->updated_at = now;
    return rc;
}

int sq_message_add(store_t *base, const char *org_id, const char *cluster_id, const char *conversation_id,
                   store_message *msgs, size_t n, enum store_cluster_part *missing)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    store_conversation conv = {0};
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if ((rc = conversation_get_on(c, org_id, cluster_id, conversation_id, &conv, missing)) != STORE_OK)
        goto out;
    if (strcmp(conv.status, "active") != 0) {
        rc = STORE_CONFLICT;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = message_insert(c, conversation_id, &msgs[i], now)) != STORE_OK)
            goto out;
    sqlite3_stmt *st = sq_stmt(c, SQL_CONVERSATION_BUMP);
    if (!st) {
        rc = STORE_ERR;
        goto out;
    }
    sq_bind_text(st, 1, conversation_id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)n);
    sqlite3_bind_int64(st, 3, now);
    rc = sq_step_done(c, st);
out:
    store_conversation_clear(&conv);
    return sq_w_end(s, rc);
}

int sq_message_finish(store_t *base, const char *id, const store_message_result *r, store_message *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_MESSAGE_FINISH);
    if (!st)
        goto out;
    sq_bind_text(st, 1, id);
    sq_bind_text(st, 2, r->status);
    sqlite3_bind_text(st, 3, r->content ? r->content : "", r->content ? (int)r->content_len : 0, SQLITE_TRANSIENT);
    sq_bind_text(st, 4, r->error);
    sq_bind_text(st, 5, r->model);
    sq_bind_text(st, 6, r->execution_id && *r->execution_id ? r->execution_id : NULL);
    sqlite3_bind_int64(st, 7, r->prompt_tokens);
    sqlite3_bind_int64(st, 8, r->completion_tokens);
    sqlite3_bind_int64(st, 9, r->total_tokens);
    sqlite3_bind_int64(st, 10, r->duration_ms);
    sqlite3_bind_int64(st, 11, time_now_ms());
    if ((rc = sq_step_done(c, st)) != STORE_OK)
        goto out;
    int changed = sqlite3_changes(c->db) > 0;
    if (!(st = sq_stmt(c, SQL_MESSAGE_BY_ID))) {
        rc = STORE_ERR;
        goto out;
    }
    sq_bind_text(st, 1, id);
    store_message row;
    rc = message_one(c, st, &row);
    if (rc == STORE_OK && !changed) {
        rc = STORE_CONFLICT; /* it had finished already */
        store_message_clear(&row);
    } else if (rc == STORE_OK) {
        if (out)
            *out = row;
        else
            store_message_clear(&row);
    }
out:
    return sq_w_end(s, rc);
}

int sq_message_list(store_t *base, const char *org_id, const char *cluster_id, const char *conversation_id,
                    const store_message_query *q, store_message_page *out, enum store_cluster_part *missing)
{
    sq_store *s = (sq_store *)base;
    store_conversation conv = {0};
    memset(out, 0, sizeof *out);
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc, step;
    size_t cap = 0;
    if ((rc = sq_exec(c, "BEGIN")) != STORE_OK)
        goto out;
    if ((rc = conversation_get_on(c, org_id, cluster_id, conversation_id, &conv, missing)) != STORE_OK)
        goto done;
    rc = STORE_ERR;
    if ((out->total = count_rows(c, SQL_MESSAGE_COUNT, conversation_id, NULL)) < 0)
        goto done;
    sqlite3_stmt *st = sq_stmt(c, q->latest ? SQL_MESSAGE_LATEST : SQL_MESSAGE_LIST);
    if (!st)
        goto done;
    sq_bind_text(st, 1, conversation_id);
    sqlite3_bind_int64(st, 2, q->limit);
    if (!q->latest)
        sqlite3_bind_int64(st, 3, q->offset);
    rc = STORE_OK;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sq_grow(&out->items, &cap, out->count, sizeof *out->items) ||
            message_from_row(st, &out->items[out->count]) != STORE_OK) {
            rc = STORE_ERR;
            break;
        }
        out->count++;
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = sq_fail(c, "message list");
    sq_stmt_done(st);
done:
    sq_exec(c, "COMMIT");
out:
    store_conversation_clear(&conv);
    sq_reader_put(s, c);
    if (rc != STORE_OK)
        store_message_page_free(out);
    return rc;
}

int sq_message_get(store_t *base, const char *org_id, const char *cluster_id, const char *conversation_id,
                   const char *id, store_message *out, enum store_cluster_part *missing)
{
    sq_store *s = (sq_store *)base;
    store_conversation conv = {0};
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if ((rc = conversation_get_on(c, org_id, cluster_id, conversation_id, &conv, missing)) != STORE_OK)
        goto out;
    sqlite3_stmt *st = sq_stmt(c, SQL_MESSAGE_GET);
    if (!st) {
        rc = STORE_ERR;
        goto out;
    }
    sq_bind_text(st, 1, conversation_id);
    sq_bind_text(st, 2, id);
    if ((rc = message_one(c, st, out)) == STORE_NOTFOUND)
        not_found(missing, STORE_PART_MESSAGE);
out:
    store_conversation_clear(&conv);
    sq_reader_put(s, c);
    return rc;
}
