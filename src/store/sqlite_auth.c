/*
 * sqlite_auth.c — SQLite backend: what authentication needs beyond API keys:
 * server settings (a token-signing secret an older promptd kept here, read
 * once to move it out), users found by email (`promptd tokens create`) or by
 * an identity provider's (issuer, subject) with the first-sight binding rules
 * of store.h, organizations found by name or id, per-key rate limits, and
 * revoking a key within one organization.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/timeutil.h"
#include "store/sqlite_internal.h"

static const char SQL_SETTING_GET[] = "SELECT value FROM settings WHERE name = ?1";
static const char SQL_SETTING_DELETE[] = "DELETE FROM settings WHERE name = ?1";
/* The last column: 1 when the user is bound to an identity provider's subject. */
static const char SQL_USER_BY_EMAIL[] = "SELECT id, org_id, email, name, role, created_at, idp_subject IS NOT NULL "
                                        "FROM users WHERE org_id = ?1 AND email = ?2 COLLATE NOCASE";
static const char SQL_USER_BY_IDENTITY[] = "SELECT id, org_id, email, name, role, created_at, 1 FROM users "
                                           "WHERE org_id = ?1 AND idp_issuer = ?2 AND idp_subject = ?3";
static const char SQL_USER_PROVISION[] = "INSERT INTO users (id, org_id, email, name, role, created_at, idp_issuer, "
                                         "idp_subject) VALUES (?1, ?2, ?3, ?3, 'member', ?4, ?5, ?6)";
static const char SQL_USER_BIND[] = "UPDATE users SET idp_issuer = ?2, idp_subject = ?3, updated_at = ?4 "
                                    "WHERE id = ?1 AND idp_subject IS NULL";
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

/* One user row of SQL_USER_BY_EMAIL or SQL_USER_BY_IDENTITY (bound to ?1..?3)
 * into *out; *bound (may be NULL) says whether it is bound to an identity. */
static int user_row_on(sq_conn *c, const char *sql, const char *a1, const char *a2, const char *a3, store_user *out,
                       int *bound)
{
    sqlite3_stmt *st = sq_stmt(c, sql);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, a1);
    sq_bind_text(st, 2, a2);
    if (a3)
        sq_bind_text(st, 3, a3);
    int step = sqlite3_step(st), rc;
    if (step == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        sq_col_copy(st, 0, out->id, sizeof out->id);
        sq_col_copy(st, 1, out->org_id, sizeof out->org_id);
        out->email = sq_col_strdup(st, 2);
        out->name = sq_col_strdup(st, 3);
        sq_col_copy(st, 4, out->role, sizeof out->role);
        out->created_at = out->updated_at = sqlite3_column_int64(st, 5);
        if (bound)
            *bound = sqlite3_column_int(st, 6);
        rc = out->email && out->name ? STORE_OK : STORE_ERR;
        if (rc != STORE_OK)
            store_user_clear(out);
    } else {
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "user find");
    }
    sq_stmt_done(st);
    return rc;
}

int sq_user_find_email(store_t *base, const char *org_id, const char *email, store_user *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = user_row_on(c, SQL_USER_BY_EMAIL, org_id, email, NULL, out, NULL);
    sq_reader_put(s, c);
    return rc;
}

/* First sight of (issuer, subject), inside the write transaction: bind the
 * email's user or make a new member, by the rules of store.h. */
static int idp_first_sight_on(sq_conn *c, const store_idp_login *in, store_user *out, int *bound_now, int *refusal)
{
    int64_t now = time_now_ms();
    int bound = 0;
    /* another request may have bound this subject since the read */
    int rc = user_row_on(c, SQL_USER_BY_IDENTITY, in->org_id, in->issuer, in->subject, out, NULL);
    if (rc != STORE_NOTFOUND)
        return rc;
    if (!in->email || !in->email[0]) {
        *refusal = STORE_IDP_NO_EMAIL;
        return STORE_CONFLICT;
    }
    rc = user_row_on(c, SQL_USER_BY_EMAIL, in->org_id, in->email, NULL, out, &bound);
    if (rc == STORE_NOTFOUND) {
        store_id id;
        id_new(id);
        sqlite3_stmt *st = sq_stmt(c, SQL_USER_PROVISION);
        if (!st)
            return STORE_ERR;
        sq_bind_text(st, 1, id);
        sq_bind_text(st, 2, in->org_id);
        sq_bind_text(st, 3, in->email);
        sqlite3_bind_int64(st, 4, now);
        sq_bind_text(st, 5, in->issuer);
        sq_bind_text(st, 6, in->subject);
        if ((rc = sq_step_done(c, st)) != STORE_OK)
            return rc;
        *bound_now = 1;
        return user_row_on(c, SQL_USER_BY_IDENTITY, in->org_id, in->issuer, in->subject, out, NULL);
    }
    if (rc != STORE_OK)
        return rc;
    if (bound)
        *refusal = STORE_IDP_EMAIL_BOUND; /* one subject per user: never a second way in */
    else if (!in->email_verified)
        *refusal = STORE_IDP_EMAIL_UNVERIFIED;
    else if (strcmp(out->role, "member") != 0 && !in->link_privileged)
        *refusal = STORE_IDP_PRIVILEGED;
    if (*refusal) {
        store_user_clear(out);
        return STORE_CONFLICT;
    }
    sqlite3_stmt *st = sq_stmt(c, SQL_USER_BIND);
    if (!st) {
        store_user_clear(out);
        return STORE_ERR;
    }
    sq_bind_text(st, 1, out->id);
    sq_bind_text(st, 2, in->issuer);
    sq_bind_text(st, 3, in->subject);
    sqlite3_bind_int64(st, 4, now);
    rc = sq_step_done(c, st); /* one row: the row was read unbound in this transaction */
    if (rc != STORE_OK)
        store_user_clear(out);
    else
        *bound_now = 2;
    return rc;
}

int sq_user_idp_find(store_t *base, const store_idp_login *in, store_user *out, int *bound_now, int *refusal)
{
    sq_store *s = (sq_store *)base;
    *bound_now = *refusal = 0;
    /* a known subject (every request after the first) needs no write lock */
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = user_row_on(c, SQL_USER_BY_IDENTITY, in->org_id, in->issuer, in->subject, out, NULL);
    sq_reader_put(s, c);
    if (rc != STORE_NOTFOUND)
        return rc;
    if (!(c = sq_w_begin(s)))
        return STORE_ERR;
    int found = idp_first_sight_on(c, in, out, bound_now, refusal);
    rc = sq_w_end(s, found);                   /* a refusal rolls back: it wrote nothing */
    if (found == STORE_OK && rc != STORE_OK) { /* the commit failed: no user after all */
        store_user_clear(out);
        *bound_now = 0;
    }
    return rc;
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
