/*
 * sqlite_auth.c — SQLite backend: what authentication needs beyond API keys:
 * server settings (a token-signing secret an older promptd kept here, read once to move it out), users found by email (bearer
 * tokens name a user), organizations found by name or id, per-key rate
 * limits, and revoking a key within one organization.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/timeutil.h"
#include "store/sqlite_internal.h"

static const char SQL_SETTING_GET[] = "SELECT value FROM settings WHERE name = ?1";
static const char SQL_SETTING_DELETE[] = "DELETE FROM settings WHERE name = ?1";
static const char SQL_USER_BY_EMAIL[] =
    "SELECT id, org_id, email, name, role, created_at FROM users WHERE org_id = ?1 AND email = ?2 COLLATE NOCASE";
static const char SQL_USER_PROVISION[] = "INSERT INTO users (id, org_id, email, name, role, created_at) "
                                         "VALUES (?1, ?2, ?3, ?3, ?4, ?5)";
static const char SQL_ORG_FIND[] = "SELECT id, name FROM organizations WHERE id = ?1 OR name = ?1 LIMIT 1";
static const char SQL_KEY_LIMIT[] =
    "UPDATE api_keys SET rate_limit_per_minute = nullif(?3, -1) WHERE org_id = ?1 AND prefix = ?2";
static const char SQL_KEY_REVOKE_ORG[] = "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?3) "
                                         "WHERE org_id = ?1 AND (prefix = ?2 OR id = ?2)";

int sq_setting_get(store_t *base, const char *name, unsigned char *out, size_t outcap, size_t *outlen)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_SETTING_GET);
    if (!st)
        goto out;
    sq_bind_text(st, 1, name);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        const void *v = sqlite3_column_blob(st, 0);
        if (n <= outcap) {
            if (n)
                memcpy(out, v, n);
            *outlen = n;
            rc = STORE_OK;
        }
    } else if (step == SQLITE_DONE) {
        rc = STORE_NOTFOUND;
    } else {
        rc = sq_fail(c, "setting get");
    }
    sq_stmt_done(st);
out:
    sq_reader_put(s, c);
    return rc;
}

int sq_setting_delete(store_t *base, const char *name)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_SETTING_DELETE);
    if (st) {
        sq_bind_text(st, 1, name);
        rc = sq_step_done(c, st);
    }
    return sq_w_end(s, rc);
}

static int user_by_email_on(sq_conn *c, const char *org_id, const char *email, store_user *out)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_USER_BY_EMAIL);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, email);
    int step = sqlite3_step(st), rc;
    if (step == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        sq_col_copy(st, 0, out->id, sizeof out->id);
        sq_col_copy(st, 1, out->org_id, sizeof out->org_id);
        out->email = sq_col_strdup(st, 2);
        out->name = sq_col_strdup(st, 3);
        sq_col_copy(st, 4, out->role, sizeof out->role);
        out->created_at = out->updated_at = sqlite3_column_int64(st, 5);
        rc = out->email && out->name ? STORE_OK : STORE_ERR;
        if (rc != STORE_OK)
            store_user_clear(out);
    } else {
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "user by email");
    }
    sq_stmt_done(st);
    return rc;
}

int sq_user_find_email(store_t *base, const char *org_id, const char *email, int provision_role_member,
                       store_user *out)
{
    sq_store *s = (sq_store *)base;
    if (!provision_role_member) {
        sq_conn *c = sq_reader_get(s);
        if (!c)
            return STORE_ERR;
        int rc = user_by_email_on(c, org_id, email, out);
        sq_reader_put(s, c);
        return rc;
    }
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = user_by_email_on(c, org_id, email, out);
    if (rc == STORE_NOTFOUND) {
        store_id id;
        id_new(id);
        sqlite3_stmt *st = sq_stmt(c, SQL_USER_PROVISION);
        rc = STORE_ERR;
        if (st) {
            sq_bind_text(st, 1, id);
            sq_bind_text(st, 2, org_id);
            sq_bind_text(st, 3, email);
            sq_bind_text(st, 4, "member");
            sqlite3_bind_int64(st, 5, time_now_ms());
            if (sq_step_done(c, st) == STORE_OK)
                rc = user_by_email_on(c, org_id, email, out);
        }
    }
    return sq_w_end(s, rc);
}

int sq_org_find(store_t *base, const char *name_or_id, store_id org_id, char *name, size_t namelen)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_ORG_FIND);
    if (st) {
        sq_bind_text(st, 1, name_or_id);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            sq_col_copy(st, 0, org_id, sizeof(store_id));
            if (name)
                sq_col_copy(st, 1, name, namelen);
        }
        rc = step == SQLITE_ROW ? STORE_OK : step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "org find");
        sq_stmt_done(st);
    }
    sq_reader_put(s, c);
    return rc;
}

int sq_key_set_rate_limit(store_t *base, const char *org_id, const char *prefix, long per_minute)
{
    sqlite3_int64 v = per_minute < 0 ? -1 : per_minute;
    return sq_change_one((sq_store *)base, SQL_KEY_LIMIT, org_id, prefix, &v);
}

int sq_key_revoke_in_org(store_t *base, const char *org_id, const char *prefix_or_id)
{
    sqlite3_int64 now = time_now_ms();
    return sq_change_one((sq_store *)base, SQL_KEY_REVOKE_ORG, org_id, prefix_or_id, &now);
}
