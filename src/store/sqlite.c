/*
 * sqlite.c — the SQLite backend of store.h (the default: one file, no server).
 *
 * Connections: one writer behind a mutex, used only for short BEGIN IMMEDIATE
 * transactions (a deferred transaction that later upgrades gets SQLITE_BUSY at
 * once, ignoring busy_timeout), and a pool of reader connections that WAL lets
 * read while the writer writes. Each connection caches its prepared
 * statements, keyed by the address of the (static) SQL text.
 *
 * Durability: WAL with synchronous=NORMAL survives a process crash (the
 * promise we make); only an OS crash or power loss may lose the last commits.
 */
#include <ctype.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "store/migrations.h"
#include "store/store_backend.h"

#define SQ_STMT_CACHE 96
#define SQ_READERS 16

typedef struct sq_conn {
    sqlite3 *db;
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } cache[SQ_STMT_CACHE];
    int ncache;
} sq_conn;

typedef struct sq_store {
    struct store base; /* must be first */
    char *path;
    pthread_mutex_t wlock;
    sq_conn writer;
    pthread_mutex_t plock;
    sq_conn *idle[SQ_READERS]; /* idle reader connections */
    int nidle;
    int version;
} sq_store;

static const struct store_ops sqlite_ops;

/* ---------------------------------------------------------------- basics */

static int sq_fail(sq_conn *c, const char *what)
{
    log_error("sqlite: %s: %s", what, c && c->db ? sqlite3_errmsg(c->db) : "no connection");
    return STORE_ERR;
}

static int conn_open(sq_conn *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sqlite3_close(c->db);
        c->db = NULL;
        return STORE_ERR;
    }
    sqlite3_busy_timeout(c->db, 5000);
    sqlite3_extended_result_codes(c->db, 1);
    char *msg = NULL;
    if (sqlite3_exec(c->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                     "PRAGMA temp_store=MEMORY;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot configure %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(c->db);
        c->db = NULL;
        return STORE_ERR;
    }
    return STORE_OK;
}

static void conn_close(sq_conn *c)
{
    for (int i = 0; i < c->ncache; i++)
        sqlite3_finalize(c->cache[i].st);
    c->ncache = 0;
    if (c->db)
        sqlite3_close(c->db);
    c->db = NULL;
}

/* A prepared statement for sql (a string literal: cached by address), reset and
 * with bindings cleared. NULL on error (logged). */
static sqlite3_stmt *stmt(sq_conn *c, const char *sql)
{
    for (int i = 0; i < c->ncache; i++) {
        if (c->cache[i].sql == sql) {
            sqlite3_reset(c->cache[i].st);
            sqlite3_clear_bindings(c->cache[i].st);
            return c->cache[i].st;
        }
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        sq_fail(c, "prepare");
        return NULL;
    }
    if (c->ncache < SQ_STMT_CACHE) {
        c->cache[c->ncache].sql = sql;
        c->cache[c->ncache].st = st;
        c->ncache++;
    } else {
        log_warn("sqlite: statement cache full");
    }
    return st;
}

/* Release a statement from stmt(): reset it so it holds no read lock. */
static void stmt_done(sqlite3_stmt *st)
{
    if (st)
        sqlite3_reset(st);
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

static char *col_strdup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *)t : "");
}

static void col_copy(sqlite3_stmt *st, int i, char *dst, size_t dstlen)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(dst, dstlen, "%s", t ? (const char *)t : "");
}

static sq_conn *reader_get(sq_store *s)
{
    sq_conn *c = NULL;
    pthread_mutex_lock(&s->plock);
    if (s->nidle > 0)
        c = s->idle[--s->nidle];
    pthread_mutex_unlock(&s->plock);
    if (c)
        return c;
    c = malloc(sizeof *c);
    char err[256];
    if (!c || conn_open(c, s->path, err, sizeof err) != STORE_OK) {
        if (c)
            log_error("sqlite: reader: %s", err);
        free(c);
        return NULL;
    }
    return c;
}

static void reader_put(sq_store *s, sq_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&s->plock);
    if (s->nidle < SQ_READERS) {
        s->idle[s->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->plock);
    if (c) {
        conn_close(c);
        free(c);
    }
}

static int exec_sql(sq_conn *c, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_error("sqlite: exec failed: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return STORE_ERR;
    }
    return STORE_OK;
}

/* Writer transaction: lock, BEGIN IMMEDIATE. Every w_begin is paired with w_end. */
static sq_conn *w_begin(sq_store *s)
{
    pthread_mutex_lock(&s->wlock);
    if (exec_sql(&s->writer, "BEGIN IMMEDIATE") != STORE_OK) {
        pthread_mutex_unlock(&s->wlock);
        return NULL;
    }
    return &s->writer;
}

/* Commit when rc is STORE_OK, else roll back; unlock; return rc (or STORE_ERR if commit failed). */
static int w_end(sq_store *s, int rc)
{
    if (rc == STORE_OK) {
        if (exec_sql(&s->writer, "COMMIT") != STORE_OK) {
            exec_sql(&s->writer, "ROLLBACK");
            rc = STORE_ERR;
        }
    } else {
        exec_sql(&s->writer, "ROLLBACK");
    }
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

/* Step a write statement to completion. */
static int step_done(sq_conn *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    stmt_done(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sq_fail(c, "step");
    return STORE_OK;
}

/* ---------------------------------------------------------------- migrations */

static int migrate(sq_store *s, char *err, size_t errlen)
{
    sq_conn *c = &s->writer;
    int rc = STORE_ERR;
    pthread_mutex_lock(&s->wlock);
    if (exec_sql(c, "BEGIN IMMEDIATE") != STORE_OK) {
        snprintf(err, errlen, "cannot lock database for migration");
        pthread_mutex_unlock(&s->wlock);
        return STORE_ERR;
    }
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);

    int latest = (int)store_sqlite_migrations_count;
    if (version > latest) {
        snprintf(err, errlen, "database schema version %d is newer than this promptd (%d)", version, latest);
        goto out;
    }
    for (size_t i = 0; i < store_sqlite_migrations_count; i++) {
        const store_migration *m = &store_sqlite_migrations[i];
        if (m->version <= version)
            continue;
        char *msg = NULL;
        if (sqlite3_exec(c->db, m->sql, NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errlen, "migration %s failed: %s", m->name, msg ? msg : "?");
            sqlite3_free(msg);
            goto out;
        }
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", m->version);
        if (exec_sql(c, pragma) != STORE_OK) {
            snprintf(err, errlen, "cannot record schema version %d", m->version);
            goto out;
        }
        log_info("store: applied migration %s", m->name);
        version = m->version;
    }
    rc = STORE_OK;
out:
    exec_sql(c, rc == STORE_OK ? "COMMIT" : "ROLLBACK");
    pthread_mutex_unlock(&s->wlock);
    s->version = version;
    return rc;
}

int store_sqlite_open(const char *path, store_t **out, char *err, size_t errlen)
{
    sq_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return STORE_ERR;
    }
    s->base.ops = &sqlite_ops;
    pthread_mutex_init(&s->wlock, NULL);
    pthread_mutex_init(&s->plock, NULL);
    if (conn_open(&s->writer, path, err, errlen) != STORE_OK || migrate(s, err, errlen) != STORE_OK) {
        conn_close(&s->writer);
        pthread_mutex_destroy(&s->wlock);
        pthread_mutex_destroy(&s->plock);
        free(s->path);
        free(s);
        return STORE_ERR;
    }
    *out = &s->base;
    return STORE_OK;
}

static void sq_close(store_t *base)
{
    sq_store *s = (sq_store *)base;
    for (int i = 0; i < s->nidle; i++) {
        conn_close(s->idle[i]);
        free(s->idle[i]);
    }
    conn_close(&s->writer);
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->plock);
    free(s->path);
    free(s);
}

static int sq_schema_version(store_t *base) { return ((sq_store *)base)->version; }

/* ---------------------------------------------------------------- orgs, users, keys */

static const char SQL_ORG_COUNT[] = "SELECT count(*) FROM organizations";
static const char SQL_ORG_BY_NAME[] = "SELECT id FROM organizations WHERE name = ?1";
static const char SQL_ORG_INSERT[] = "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?2, ?3)";
static const char SQL_ADMIN_OF_ORG[] =
    "SELECT id FROM users WHERE org_id = ?1 AND role = 'admin' ORDER BY created_at, id LIMIT 1";
static const char SQL_USER_INSERT[] =
    "INSERT INTO users (id, org_id, email, name, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_KEY_INSERT[] = "INSERT INTO api_keys (id, org_id, user_id, prefix, hash, name, created_at) "
                                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
#define KEY_COLS                                                                                                   \
    "k.id, k.org_id, k.user_id, k.prefix, k.hash, k.name, k.created_at, coalesce(k.revoked_at, 0), u.role, "      \
    "o.name, u.email "
#define KEY_FROM "FROM api_keys k JOIN users u ON u.id = k.user_id JOIN organizations o ON o.id = k.org_id "
static const char SQL_KEY_BY_PREFIX[] = "SELECT " KEY_COLS KEY_FROM "WHERE k.prefix = ?1";
static const char SQL_KEY_LIST[] =
    "SELECT " KEY_COLS KEY_FROM "WHERE ?1 IS NULL OR o.name = ?1 ORDER BY k.created_at, k.id";
static const char SQL_KEY_REVOKE[] =
    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE prefix = ?1";

static void key_from_row(sqlite3_stmt *st, store_key *k)
{
    memset(k, 0, sizeof *k);
    col_copy(st, 0, k->id, sizeof k->id);
    col_copy(st, 1, k->org_id, sizeof k->org_id);
    col_copy(st, 2, k->user_id, sizeof k->user_id);
    col_copy(st, 3, k->prefix, sizeof k->prefix);
    int n = sqlite3_column_bytes(st, 4);
    const void *h = sqlite3_column_blob(st, 4);
    if (h && n == STORE_KEY_HASH_LEN)
        memcpy(k->hash, h, STORE_KEY_HASH_LEN);
    col_copy(st, 5, k->name, sizeof k->name);
    k->created_at = sqlite3_column_int64(st, 6);
    k->revoked_at = sqlite3_column_int64(st, 7);
    col_copy(st, 8, k->role, sizeof k->role);
    col_copy(st, 9, k->org_name, sizeof k->org_name);
    col_copy(st, 10, k->user_email, sizeof k->user_email);
}

/* Inside a writer transaction: the org's id, creating it when missing. */
static int org_ensure(sq_conn *c, const char *name, store_id org_id, int64_t now)
{
    sqlite3_stmt *st = stmt(c, SQL_ORG_BY_NAME);
    if (!st)
        return STORE_ERR;
    bind_text(st, 1, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        col_copy(st, 0, org_id, sizeof(store_id));
        stmt_done(st);
        return STORE_OK;
    }
    stmt_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(c, "org lookup");
    id_new(org_id);
    if (!(st = stmt(c, SQL_ORG_INSERT)))
        return STORE_ERR;
    bind_text(st, 1, org_id);
    bind_text(st, 2, name);
    sqlite3_bind_int64(st, 3, now);
    return step_done(c, st);
}

/* Inside a writer transaction: the org's first admin, creating one when missing. */
static int admin_ensure(sq_conn *c, const char *org_id, const char *email, store_id user_id, int64_t now)
{
    sqlite3_stmt *st = stmt(c, SQL_ADMIN_OF_ORG);
    if (!st)
        return STORE_ERR;
    bind_text(st, 1, org_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        col_copy(st, 0, user_id, sizeof(store_id));
        stmt_done(st);
        return STORE_OK;
    }
    stmt_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(c, "admin lookup");
    id_new(user_id);
    if (!(st = stmt(c, SQL_USER_INSERT)))
        return STORE_ERR;
    bind_text(st, 1, user_id);
    bind_text(st, 2, org_id);
    bind_text(st, 3, email);
    bind_text(st, 4, "Administrator");
    bind_text(st, 5, "admin");
    sqlite3_bind_int64(st, 6, now);
    return step_done(c, st);
}

static int key_insert(sq_conn *c, const char *org_id, const char *user_id, const char *prefix,
                      const unsigned char *hash, const char *name, int64_t now)
{
    store_id id;
    id_new(id);
    sqlite3_stmt *st = stmt(c, SQL_KEY_INSERT);
    if (!st)
        return STORE_ERR;
    bind_text(st, 1, id);
    bind_text(st, 2, org_id);
    bind_text(st, 3, user_id);
    bind_text(st, 4, prefix);
    sqlite3_bind_blob(st, 5, hash, STORE_KEY_HASH_LEN, SQLITE_TRANSIENT);
    bind_text(st, 6, name ? name : "");
    sqlite3_bind_int64(st, 7, now);
    int rc = sqlite3_step(st);
    stmt_done(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return STORE_CONFLICT;
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(c, "key insert");
}

static int sq_bootstrap(store_t *base, const char *org_name, const char *admin_email, const char *key_prefix,
                        const unsigned char *hash, int *created)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    store_id org_id, user_id;
    *created = 0;
    sq_conn *c = w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = stmt(c, SQL_ORG_COUNT);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        stmt_done(st);
        goto out;
    }
    long orgs = (long)sqlite3_column_int64(st, 0);
    stmt_done(st);
    if (orgs > 0) {
        rc = STORE_OK;
        goto out;
    }
    if ((rc = org_ensure(c, org_name, org_id, now)) != STORE_OK ||
        (rc = admin_ensure(c, org_id, admin_email, user_id, now)) != STORE_OK ||
        (rc = key_insert(c, org_id, user_id, key_prefix, hash, "bootstrap admin key", now)) != STORE_OK)
        goto out;
    *created = 1;
out:
    return w_end(s, rc);
}

static int key_find_on(sq_conn *c, const char *prefix, store_key *out)
{
    sqlite3_stmt *st = stmt(c, SQL_KEY_BY_PREFIX);
    if (!st)
        return STORE_ERR;
    bind_text(st, 1, prefix);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        key_from_row(st, out);
    stmt_done(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "key find");
}

static int sq_key_create_for_org(store_t *base, const char *org_name, const char *key_name, const char *key_prefix,
                                 const unsigned char *hash, store_key *out)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    store_id org_id, user_id;
    char email[300];
    snprintf(email, sizeof email, "admin@%s", org_name);
    sq_conn *c = w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if ((rc = org_ensure(c, org_name, org_id, now)) != STORE_OK ||
        (rc = admin_ensure(c, org_id, email, user_id, now)) != STORE_OK ||
        (rc = key_insert(c, org_id, user_id, key_prefix, hash, key_name, now)) != STORE_OK)
        goto out;
    rc = key_find_on(c, key_prefix, out);
out:
    return w_end(s, rc);
}

static int sq_key_find(store_t *base, const char *prefix, store_key *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = key_find_on(c, prefix, out);
    reader_put(s, c);
    return rc;
}

static int sq_key_list_all(store_t *base, const char *org_name, store_key_list *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    sq_conn *c = reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_OK, step;
    size_t cap = 0;
    sqlite3_stmt *st = stmt(c, SQL_KEY_LIST);
    if (!st) {
        rc = STORE_ERR;
        goto out;
    }
    bind_text(st, 1, org_name);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            store_key *n = realloc(out->items, ncap * sizeof *n);
            if (!n) {
                rc = STORE_ERR;
                break;
            }
            out->items = n;
            cap = ncap;
        }
        key_from_row(st, &out->items[out->count++]);
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = sq_fail(c, "key list");
    stmt_done(st);
out:
    reader_put(s, c);
    if (rc != STORE_OK)
        store_key_list_free(out);
    return rc;
}

static int sq_key_revoke(store_t *base, const char *prefix)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = stmt(c, SQL_KEY_REVOKE);
    if (st) {
        bind_text(st, 1, prefix);
        sqlite3_bind_int64(st, 2, time_now_ms());
        rc = step_done(c, st);
        if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
            rc = STORE_NOTFOUND;
    }
    /* NOTFOUND changes nothing; committing or rolling back is the same */
    return w_end(s, rc == STORE_NOTFOUND ? STORE_OK : rc) == STORE_OK ? rc : STORE_ERR;
}

/* ---------------------------------------------------------------- prompts */

#define PROMPT_COLS                                                                                                \
    "p.id, p.org_id, p.user_id, p.name, p.description, p.content, p.status, coalesce(p.current_version_id, ''), " \
    "coalesce(p.published_version_id, ''), p.versions_count, p.likes_count, p.saves_count, p.followers_count, "   \
    "p.created_at, p.updated_at, "                                                                                 \
    "EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = ?3 AND r.target_type = 'prompt' AND r.target_id = p.id " \
    "AND r.kind = 'like'), "                                                                                       \
    "EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = ?3 AND r.target_type = 'prompt' AND r.target_id = p.id " \
    "AND r.kind = 'save'), "                                                                                       \
    "EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = ?3 AND r.target_type = 'prompt' AND r.target_id = p.id " \
    "AND r.kind = 'follow') "

static const char SQL_PROMPT_GET[] = "SELECT " PROMPT_COLS "FROM prompts p WHERE p.org_id = ?1 AND p.id = ?2";
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

static int prompt_from_row(sqlite3_stmt *st, store_prompt *p)
{
    memset(p, 0, sizeof *p);
    col_copy(st, 0, p->id, sizeof p->id);
    col_copy(st, 1, p->org_id, sizeof p->org_id);
    col_copy(st, 2, p->user_id, sizeof p->user_id);
    p->name = col_strdup(st, 3);
    p->description = col_strdup(st, 4);
    p->content = col_strdup(st, 5);
    col_copy(st, 6, p->status, sizeof p->status);
    col_copy(st, 7, p->current_version_id, sizeof p->current_version_id);
    col_copy(st, 8, p->published_version_id, sizeof p->published_version_id);
    p->versions_count = (long)sqlite3_column_int64(st, 9);
    p->likes_count = (long)sqlite3_column_int64(st, 10);
    p->saves_count = (long)sqlite3_column_int64(st, 11);
    p->followers_count = (long)sqlite3_column_int64(st, 12);
    p->created_at = sqlite3_column_int64(st, 13);
    p->updated_at = sqlite3_column_int64(st, 14);
    p->liked = sqlite3_column_int(st, 15);
    p->saved = sqlite3_column_int(st, 16);
    p->followed = sqlite3_column_int(st, 17);
    if (!p->name || !p->description || !p->content) {
        store_prompt_clear(p);
        return STORE_ERR;
    }
    return STORE_OK;
}

static int prompt_get_on(sq_conn *c, const char *org_id, const char *id, const char *viewer_id, store_prompt *out)
{
    sqlite3_stmt *st = stmt(c, SQL_PROMPT_GET);
    if (!st)
        return STORE_ERR;
    bind_text(st, 1, org_id);
    bind_text(st, 2, id);
    bind_text(st, 3, viewer_id ? viewer_id : "");
    int rc = sqlite3_step(st), out_rc;
    if (rc == SQLITE_ROW)
        out_rc = prompt_from_row(st, out);
    else
        out_rc = rc == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "prompt get");
    stmt_done(st);
    return out_rc;
}

static int version_insert(sq_conn *c, const char *prompt_id, const char *org_id, const char *user_id, long number,
                          const char *content, int64_t now, store_id version_id)
{
    sqlite3_stmt *st = stmt(c, SQL_VERSION_INSERT);
    if (!st)
        return STORE_ERR;
    id_new(version_id);
    bind_text(st, 1, version_id);
    bind_text(st, 2, prompt_id);
    bind_text(st, 3, org_id);
    bind_text(st, 4, user_id);
    sqlite3_bind_int64(st, 5, number);
    bind_text(st, 6, content);
    sqlite3_bind_int64(st, 7, now);
    return step_done(c, st);
}

static int sq_prompt_create(store_t *base, store_prompt *p)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    store_id version_id;
    id_new(p->id);
    sq_conn *c = w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = stmt(c, SQL_PROMPT_INSERT);
    if (!st)
        goto out;
    id_new(version_id);
    bind_text(st, 1, p->id);
    bind_text(st, 2, p->org_id);
    bind_text(st, 3, p->user_id);
    bind_text(st, 4, p->name);
    bind_text(st, 5, p->description ? p->description : "");
    bind_text(st, 6, p->content);
    bind_text(st, 7, p->status[0] ? p->status : "draft");
    bind_text(st, 8, version_id);
    sqlite3_bind_int64(st, 9, now);
    if ((rc = step_done(c, st)) != STORE_OK)
        goto out;
    /* version_insert makes its own id; keep the one the prompt points at */
    st = stmt(c, SQL_VERSION_INSERT);
    if (!st) {
        rc = STORE_ERR;
        goto out;
    }
    bind_text(st, 1, version_id);
    bind_text(st, 2, p->id);
    bind_text(st, 3, p->org_id);
    bind_text(st, 4, p->user_id);
    sqlite3_bind_int64(st, 5, 1);
    bind_text(st, 6, p->content);
    sqlite3_bind_int64(st, 7, now);
    if ((rc = step_done(c, st)) != STORE_OK)
        goto out;
    snprintf(p->current_version_id, sizeof p->current_version_id, "%s", version_id);
    if (!p->status[0])
        snprintf(p->status, sizeof p->status, "draft");
    p->versions_count = 1;
    p->created_at = p->updated_at = now;
out:
    return w_end(s, rc);
}

static int sq_prompt_get(store_t *base, const char *org_id, const char *id, const char *viewer_id, store_prompt *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = prompt_get_on(c, org_id, id, viewer_id, out);
    reader_put(s, c);
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

static int sq_prompt_list(store_t *base, const char *org_id, const char *viewer_id, const store_prompt_query *q,
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
    sq_conn *c = reader_get(s);
    if (!c)
        goto out;
    snprintf(sql, sizeof sql, "SELECT count(*), ?3 %s", where);
    if (sqlite3_prepare_v2(c->db, sql, -1, &cnt, NULL) != SQLITE_OK) {
        sq_fail(c, "prompt count prepare");
        goto out;
    }
    snprintf(sql, sizeof sql, "SELECT " PROMPT_COLS "%s ORDER BY %s %s, p.id %s LIMIT ?5 OFFSET ?6", where,
             order_cols[q->sort], dir, dir);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sq_fail(c, "prompt list prepare");
        goto out;
    }
    sqlite3_stmt *both[2] = {cnt, st};
    for (int i = 0; i < 2; i++) {
        bind_text(both[i], 1, org_id);
        if (q->status)
            bind_text(both[i], 2, q->status);
        bind_text(both[i], 3, viewer_id ? viewer_id : "");
        if (match)
            bind_text(both[i], 4, match);
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
        if (out->count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            store_prompt *n = realloc(out->items, ncap * sizeof *n);
            if (!n)
                goto out;
            out->items = n;
            cap = ncap;
        }
        if (prompt_from_row(st, &out->items[out->count]) != STORE_OK)
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
    reader_put(s, c);
    free(match);
    if (rc != STORE_OK)
        store_prompt_page_free(out);
    return rc;
}

static int sq_prompt_update(store_t *base, const char *org_id, const char *id, const char *user_id,
                            const store_prompt_patch *patch, store_prompt *out)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    sq_conn *c = w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    char *old_content = NULL;
    long versions = 0;
    store_id version_id = "";
    sqlite3_stmt *st = stmt(c, SQL_PROMPT_CURRENT);
    if (!st)
        goto out;
    bind_text(st, 1, org_id);
    bind_text(st, 2, id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        old_content = col_strdup(st, 0);
        versions = (long)sqlite3_column_int64(st, 1);
    }
    stmt_done(st);
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
    if (!(st = stmt(c, SQL_PROMPT_UPDATE)))
        goto out;
    bind_text(st, 1, org_id);
    bind_text(st, 2, id);
    bind_text(st, 3, patch->name);
    bind_text(st, 4, patch->description);
    bind_text(st, 5, patch->content);
    bind_text(st, 6, patch->status);
    bind_text(st, 7, version_id[0] ? version_id : NULL);
    sqlite3_bind_int64(st, 8, versions);
    sqlite3_bind_int64(st, 9, now);
    if ((rc = step_done(c, st)) != STORE_OK)
        goto out;
    rc = prompt_get_on(c, org_id, id, user_id, out);
out:
    free(old_content);
    return w_end(s, rc);
}

static int sq_prompt_delete(store_t *base, const char *org_id, const char *id)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = stmt(c, SQL_PROMPT_DELETE);
    if (!st)
        goto out;
    bind_text(st, 1, org_id);
    bind_text(st, 2, id);
    if ((rc = step_done(c, st)) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    if (!(st = stmt(c, SQL_REACTIONS_DELETE_TARGET))) {
        rc = STORE_ERR;
        goto out;
    }
    bind_text(st, 1, "prompt");
    bind_text(st, 2, id);
    rc = step_done(c, st);
out:
    return w_end(s, rc);
}

/* ---------------------------------------------------------------- versions */

#define VERSION_COLS "v.id, v.prompt_id, v.user_id, v.number, v.content, v.created_at, coalesce(v.published_at, 0) "
static const char SQL_PROMPT_EXISTS[] = "SELECT 1 FROM prompts WHERE org_id = ?1 AND id = ?2";
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
    col_copy(st, 0, v->id, sizeof v->id);
    col_copy(st, 1, v->prompt_id, sizeof v->prompt_id);
    col_copy(st, 2, v->user_id, sizeof v->user_id);
    v->number = (long)sqlite3_column_int64(st, 3);
    v->content = col_strdup(st, 4);
    v->created_at = sqlite3_column_int64(st, 5);
    v->published_at = sqlite3_column_int64(st, 6);
    return v->content ? STORE_OK : STORE_ERR;
}

static int exists_on(sq_conn *c, const char *sql, const char *a, const char *b)
{
    sqlite3_stmt *st = stmt(c, sql);
    if (!st)
        return STORE_ERR;
    bind_text(st, 1, a);
    bind_text(st, 2, b);
    int rc = sqlite3_step(st);
    stmt_done(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "exists");
}

static int sq_version_list(store_t *base, const char *org_id, const char *prompt_id, long offset, long limit,
                           store_version_page *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    sq_conn *c = reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc, step;
    size_t cap = 0;
    if ((rc = exists_on(c, SQL_PROMPT_EXISTS, org_id, prompt_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    sqlite3_stmt *st = stmt(c, SQL_VERSION_COUNT);
    if (!st)
        goto out;
    bind_text(st, 1, org_id);
    bind_text(st, 2, prompt_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        out->total = (long)sqlite3_column_int64(st, 0);
    stmt_done(st);
    if (!(st = stmt(c, SQL_VERSION_LIST)))
        goto out;
    bind_text(st, 1, org_id);
    bind_text(st, 2, prompt_id);
    sqlite3_bind_int64(st, 3, limit);
    sqlite3_bind_int64(st, 4, offset);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            store_version *n = realloc(out->items, ncap * sizeof *n);
            if (!n)
                break;
            out->items = n;
            cap = ncap;
        }
        if (version_from_row(st, &out->items[out->count]) != STORE_OK)
            break;
        out->count++;
    }
    stmt_done(st);
    rc = step == SQLITE_DONE ? STORE_OK : sq_fail(c, "version list");
out:
    reader_put(s, c);
    if (rc != STORE_OK)
        store_version_page_free(out);
    return rc;
}

static int version_get_on(sq_conn *c, const char *org_id, const char *prompt_id, const char *version_id,
                          store_version *out)
{
    sqlite3_stmt *st = stmt(c, SQL_VERSION_GET);
    if (!st)
        return STORE_ERR;
    bind_text(st, 1, org_id);
    bind_text(st, 2, prompt_id);
    bind_text(st, 3, version_id);
    int step = sqlite3_step(st), rc;
    if (step == SQLITE_ROW)
        rc = version_from_row(st, out);
    else
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "version get");
    stmt_done(st);
    return rc;
}

static int sq_version_get(store_t *base, const char *org_id, const char *prompt_id, const char *version_id,
                          store_version *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = version_get_on(c, org_id, prompt_id, version_id, out);
    reader_put(s, c);
    return rc;
}

static int sq_version_publish(store_t *base, const char *org_id, const char *prompt_id, const char *version_id)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    sq_conn *c = w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = stmt(c, SQL_VERSION_PUBLISH);
    if (!st)
        goto out;
    bind_text(st, 1, org_id);
    bind_text(st, 2, prompt_id);
    bind_text(st, 3, version_id);
    sqlite3_bind_int64(st, 4, now);
    if ((rc = step_done(c, st)) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    if (!(st = stmt(c, SQL_PROMPT_PUBLISH))) {
        rc = STORE_ERR;
        goto out;
    }
    bind_text(st, 1, org_id);
    bind_text(st, 2, prompt_id);
    bind_text(st, 3, version_id);
    sqlite3_bind_int64(st, 4, now);
    rc = step_done(c, st);
out:
    return w_end(s, rc);
}

/* ---------------------------------------------------------------- reactions */

static int sq_reaction_set(store_t *base, const char *org_id, const char *user_id, enum store_target target,
                           const char *target_id, enum store_reaction kind, int on)
{
    static const char *tables[] = {[STORE_TARGET_PROMPT] = "prompts", [STORE_TARGET_EXECUTION] = "executions"};
    static const char *types[] = {[STORE_TARGET_PROMPT] = "prompt", [STORE_TARGET_EXECUTION] = "execution"};
    static const char *kinds[] = {[STORE_REACT_LIKE] = "like", [STORE_REACT_SAVE] = "save",
                                  [STORE_REACT_FOLLOW] = "follow"};
    static const char *counters[] = {[STORE_REACT_LIKE] = "likes_count", [STORE_REACT_SAVE] = "saves_count",
                                     [STORE_REACT_FOLLOW] = "followers_count"};
    sq_store *s = (sq_store *)base;
    char sql[256];
    sqlite3_stmt *st = NULL;
    int rc = STORE_ERR;
    sq_conn *c = w_begin(s);
    if (!c)
        return STORE_ERR;

    snprintf(sql, sizeof sql, "SELECT 1 FROM %s WHERE org_id = ?1 AND id = ?2", tables[target]);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sq_fail(c, "reaction target prepare");
        goto out;
    }
    bind_text(st, 1, org_id);
    bind_text(st, 2, target_id);
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
    bind_text(st, 1, user_id);
    bind_text(st, 2, types[target]);
    bind_text(st, 3, target_id);
    bind_text(st, 4, kinds[kind]);
    if (on) {
        bind_text(st, 5, org_id);
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
    bind_text(st, 1, target_id);
    rc = sqlite3_step(st) == SQLITE_DONE ? STORE_OK : sq_fail(c, "reaction counter");
out:
    sqlite3_finalize(st);
    return w_end(s, rc);
}

/* ---------------------------------------------------------------- executions */

#define EXEC_COLS                                                                                                  \
    "e.id, e.org_id, e.user_id, coalesce(e.api_key_id, ''), coalesce(e.prompt_id, ''), coalesce(e.version_id, ''), " \
    "coalesce(e.version_number, 0), e.source, e.rendered_prompt, e.messages, e.variables, e.metadata, e.model, "   \
    "e.temperature, coalesce(e.max_tokens, 0), e.stream, e.status, e.output, e.error, e.prompt_tokens, "           \
    "e.completion_tokens, e.total_tokens, e.duration_ms, e.attempts, e.likes_count, e.saves_count, "               \
    "e.comments_count, e.created_at, coalesce(e.finished_at, 0), e.updated_at, "                                   \
    "EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = ?3 AND r.target_type = 'execution' AND "                  \
    "r.target_id = e.id AND r.kind = 'like'), "                                                                    \
    "EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = ?3 AND r.target_type = 'execution' AND "                  \
    "r.target_id = e.id AND r.kind = 'save') "

static const char SQL_EXEC_INSERT[] =
    "INSERT INTO executions (id, org_id, user_id, api_key_id, prompt_id, version_id, version_number, source, "
    "rendered_prompt, messages, variables, metadata, model, temperature, max_tokens, stream, status, created_at, "
    "updated_at) VALUES (?1, ?2, ?3, nullif(?4, ''), nullif(?5, ''), nullif(?6, ''), nullif(?7, 0), ?8, ?9, ?10, "
    "?11, ?12, ?13, ?14, nullif(?15, 0), ?16, ?17, ?18, ?18)";
static const char SQL_EXEC_FINISH[] =
    "UPDATE executions SET status = ?2, model = coalesce(?3, model), output = ?4, error = ?5, prompt_tokens = ?6, "
    "completion_tokens = ?7, total_tokens = ?8, duration_ms = ?9, attempts = ?10, finished_at = ?11, "
    "updated_at = ?11 WHERE id = ?1 AND status IN ('queued', 'processing')";
static const char SQL_EXEC_GET[] = "SELECT " EXEC_COLS "FROM executions e WHERE e.org_id = ?1 AND e.id = ?2 AND "
                                   "(?4 IS NULL OR e.prompt_id = ?4)";

static char *col_strdup_or_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : col_strdup(st, i);
}

static int execution_from_row(sqlite3_stmt *st, store_execution *e)
{
    memset(e, 0, sizeof *e);
    col_copy(st, 0, e->id, sizeof e->id);
    col_copy(st, 1, e->org_id, sizeof e->org_id);
    col_copy(st, 2, e->user_id, sizeof e->user_id);
    col_copy(st, 3, e->api_key_id, sizeof e->api_key_id);
    col_copy(st, 4, e->prompt_id, sizeof e->prompt_id);
    col_copy(st, 5, e->version_id, sizeof e->version_id);
    e->version_number = (long)sqlite3_column_int64(st, 6);
    col_copy(st, 7, e->source, sizeof e->source);
    e->rendered_prompt = col_strdup(st, 8);
    e->messages = col_strdup_or_null(st, 9);
    e->variables = col_strdup(st, 10);
    e->metadata = col_strdup(st, 11);
    e->model = col_strdup(st, 12);
    e->has_temperature = sqlite3_column_type(st, 13) != SQLITE_NULL;
    e->temperature = sqlite3_column_double(st, 13);
    e->max_tokens = (long)sqlite3_column_int64(st, 14);
    e->stream = sqlite3_column_int(st, 15);
    col_copy(st, 16, e->status, sizeof e->status);
    e->output = col_strdup(st, 17);
    e->error = col_strdup_or_null(st, 18);
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
    if (!e->rendered_prompt || !e->variables || !e->metadata || !e->model || !e->output) {
        store_execution_clear(e);
        return STORE_ERR;
    }
    return STORE_OK;
}

static int sq_execution_create(store_t *base, store_execution *e)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    if (!e->id[0])
        id_new(e->id);
    if (!e->status[0])
        snprintf(e->status, sizeof e->status, "processing");
    sq_conn *c = w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = stmt(c, SQL_EXEC_INSERT);
    if (!st)
        goto out;
    bind_text(st, 1, e->id);
    bind_text(st, 2, e->org_id);
    bind_text(st, 3, e->user_id);
    bind_text(st, 4, e->api_key_id);
    bind_text(st, 5, e->prompt_id);
    bind_text(st, 6, e->version_id);
    sqlite3_bind_int64(st, 7, e->version_number);
    bind_text(st, 8, e->source[0] ? e->source : "prompt");
    bind_text(st, 9, e->rendered_prompt ? e->rendered_prompt : "");
    bind_text(st, 10, e->messages);
    bind_text(st, 11, e->variables ? e->variables : "{}");
    bind_text(st, 12, e->metadata ? e->metadata : "{}");
    bind_text(st, 13, e->model ? e->model : "");
    if (e->has_temperature)
        sqlite3_bind_double(st, 14, e->temperature);
    sqlite3_bind_int64(st, 15, e->max_tokens);
    sqlite3_bind_int(st, 16, e->stream);
    bind_text(st, 17, e->status);
    sqlite3_bind_int64(st, 18, now);
    if ((rc = step_done(c, st)) == STORE_OK)
        e->created_at = e->updated_at = now;
out:
    return w_end(s, rc);
}

static int sq_execution_finish(store_t *base, const char *id, const store_execution_result *r)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = stmt(c, SQL_EXEC_FINISH);
    if (!st)
        goto out;
    bind_text(st, 1, id);
    bind_text(st, 2, r->status);
    bind_text(st, 3, r->model);
    sqlite3_bind_text(st, 4, r->output ? r->output : "", r->output ? (int)r->output_len : 0, SQLITE_TRANSIENT);
    bind_text(st, 5, r->error);
    sqlite3_bind_int64(st, 6, r->prompt_tokens);
    sqlite3_bind_int64(st, 7, r->completion_tokens);
    sqlite3_bind_int64(st, 8, r->total_tokens);
    sqlite3_bind_int64(st, 9, r->duration_ms);
    sqlite3_bind_int64(st, 10, r->attempts);
    sqlite3_bind_int64(st, 11, time_now_ms());
    if ((rc = step_done(c, st)) == STORE_OK && sqlite3_changes(c->db) == 0)
        rc = STORE_CONFLICT;
out:
    return w_end(s, rc == STORE_CONFLICT ? STORE_OK : rc) == STORE_OK ? rc : STORE_ERR;
}

static int sq_execution_get(store_t *base, const char *org_id, const char *prompt_id, const char *id,
                            const char *viewer_id, store_execution *out)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = stmt(c, SQL_EXEC_GET);
    if (st) {
        bind_text(st, 1, org_id);
        bind_text(st, 2, id);
        bind_text(st, 3, viewer_id ? viewer_id : "");
        bind_text(st, 4, prompt_id);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            rc = execution_from_row(st, out);
        else
            rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "execution get");
        stmt_done(st);
    }
    reader_put(s, c);
    return rc;
}

static int sq_execution_list(store_t *base, const char *org_id, const char *viewer_id,
                             const store_execution_query *q, store_execution_page *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    static const char *order_cols[] = {[STORE_ESORT_CREATED_AT] = "e.created_at",
                                       [STORE_ESORT_DURATION] = "e.duration_ms",
                                       [STORE_ESORT_TOKENS] = "e.total_tokens",
                                       [STORE_ESORT_STATUS] = "e.status"};
    const char *dir = q->sort_desc ? "DESC" : "ASC";
    char where[256], sql[2048];
    snprintf(where, sizeof where, "FROM executions e WHERE e.org_id = ?1%s%s",
             q->prompt_id ? " AND e.prompt_id = ?4" : "", q->status ? " AND e.status = ?2" : "");
    int rc = STORE_ERR, step;
    sqlite3_stmt *cnt = NULL, *st = NULL;
    sq_conn *c = reader_get(s);
    if (!c)
        return STORE_ERR;
    if (q->prompt_id) {
        if ((rc = exists_on(c, SQL_PROMPT_EXISTS, org_id, q->prompt_id)) != STORE_OK)
            goto out;
        rc = STORE_ERR;
    }
    snprintf(sql, sizeof sql, "SELECT count(*), ?3 %s", where);
    if (sqlite3_prepare_v2(c->db, sql, -1, &cnt, NULL) != SQLITE_OK) {
        sq_fail(c, "execution count prepare");
        goto out;
    }
    snprintf(sql, sizeof sql, "SELECT " EXEC_COLS "%s ORDER BY %s %s, e.id %s LIMIT ?5 OFFSET ?6", where,
             order_cols[q->sort], dir, dir);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sq_fail(c, "execution list prepare");
        goto out;
    }
    sqlite3_stmt *both[2] = {cnt, st};
    for (int i = 0; i < 2; i++) {
        bind_text(both[i], 1, org_id);
        if (q->status)
            bind_text(both[i], 2, q->status);
        bind_text(both[i], 3, viewer_id ? viewer_id : "");
        if (q->prompt_id)
            bind_text(both[i], 4, q->prompt_id);
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
        if (out->count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            store_execution *n = realloc(out->items, ncap * sizeof *n);
            if (!n)
                goto out;
            out->items = n;
            cap = ncap;
        }
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
    reader_put(s, c);
    if (rc != STORE_OK)
        store_execution_page_free(out);
    return rc;
}

/* ---------------------------------------------------------------- comments */

static const char SQL_EXEC_EXISTS[] =
    "SELECT 1 FROM executions WHERE org_id = ?1 AND id = ?2 AND (?3 IS NULL OR prompt_id = ?3)";
static const char SQL_COMMENT_INSERT[] = "INSERT INTO comments (id, org_id, execution_id, user_id, body, "
                                         "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)";
static const char SQL_COMMENT_BUMP[] =
    "UPDATE executions SET comments_count = max(0, comments_count + ?2) WHERE id = ?1";
#define COMMENT_COLS "c.id, c.execution_id, c.user_id, c.body, coalesce(u.email, ''), c.created_at, c.updated_at "
static const char SQL_COMMENT_GET[] =
    "SELECT " COMMENT_COLS "FROM comments c LEFT JOIN users u ON u.id = c.user_id WHERE c.id = ?1";
static const char SQL_COMMENT_COUNT[] = "SELECT count(*) FROM comments WHERE execution_id = ?1";
static const char SQL_COMMENT_LIST[] = "SELECT " COMMENT_COLS "FROM comments c LEFT JOIN users u ON u.id = "
                                       "c.user_id WHERE c.execution_id = ?1 ORDER BY c.created_at, c.id "
                                       "LIMIT ?2 OFFSET ?3";
static const char SQL_COMMENT_DELETE[] = "DELETE FROM comments WHERE id = ?1 AND execution_id = ?2 AND org_id = ?3 "
                                         "AND (?4 OR user_id = ?5)";

static int exec_exists_on(sq_conn *c, const char *org_id, const char *prompt_id, const char *execution_id)
{
    sqlite3_stmt *st = stmt(c, SQL_EXEC_EXISTS);
    if (!st)
        return STORE_ERR;
    bind_text(st, 1, org_id);
    bind_text(st, 2, execution_id);
    bind_text(st, 3, prompt_id);
    int step = sqlite3_step(st);
    stmt_done(st);
    if (step == SQLITE_ROW)
        return STORE_OK;
    return step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "execution exists");
}

static int comment_from_row(sqlite3_stmt *st, store_comment *cm)
{
    memset(cm, 0, sizeof *cm);
    col_copy(st, 0, cm->id, sizeof cm->id);
    col_copy(st, 1, cm->execution_id, sizeof cm->execution_id);
    col_copy(st, 2, cm->user_id, sizeof cm->user_id);
    cm->body = col_strdup(st, 3);
    col_copy(st, 4, cm->user_email, sizeof cm->user_email);
    cm->created_at = sqlite3_column_int64(st, 5);
    cm->updated_at = sqlite3_column_int64(st, 6);
    return cm->body ? STORE_OK : STORE_ERR;
}

static int sq_comment_create(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id,
                             const char *user_id, const char *body, store_comment *out)
{
    sq_store *s = (sq_store *)base;
    store_id id;
    int64_t now = time_now_ms();
    sq_conn *c = w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    sqlite3_stmt *st;
    if ((rc = exec_exists_on(c, org_id, prompt_id, execution_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if (!(st = stmt(c, SQL_COMMENT_INSERT)))
        goto out;
    id_new(id);
    bind_text(st, 1, id);
    bind_text(st, 2, org_id);
    bind_text(st, 3, execution_id);
    bind_text(st, 4, user_id);
    bind_text(st, 5, body);
    sqlite3_bind_int64(st, 6, now);
    if (step_done(c, st) != STORE_OK || !(st = stmt(c, SQL_COMMENT_BUMP)))
        goto out;
    bind_text(st, 1, execution_id);
    sqlite3_bind_int(st, 2, 1);
    if (step_done(c, st) != STORE_OK || !(st = stmt(c, SQL_COMMENT_GET)))
        goto out;
    bind_text(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = comment_from_row(st, out);
    stmt_done(st);
out:
    return w_end(s, rc);
}

static int sq_comment_list(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id,
                           long offset, long limit, store_comment_page *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    sq_conn *c = reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc, step = SQLITE_ERROR;
    size_t cap = 0;
    sqlite3_stmt *st;
    if ((rc = exec_exists_on(c, org_id, prompt_id, execution_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if (!(st = stmt(c, SQL_COMMENT_COUNT)))
        goto out;
    bind_text(st, 1, execution_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        out->total = (long)sqlite3_column_int64(st, 0);
    stmt_done(st);
    if (!(st = stmt(c, SQL_COMMENT_LIST)))
        goto out;
    bind_text(st, 1, execution_id);
    sqlite3_bind_int64(st, 2, limit);
    sqlite3_bind_int64(st, 3, offset);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            store_comment *n = realloc(out->items, ncap * sizeof *n);
            if (!n)
                break;
            out->items = n;
            cap = ncap;
        }
        if (comment_from_row(st, &out->items[out->count]) != STORE_OK)
            break;
        out->count++;
    }
    stmt_done(st);
    rc = step == SQLITE_DONE ? STORE_OK : sq_fail(c, "comment list");
out:
    reader_put(s, c);
    if (rc != STORE_OK)
        store_comment_page_free(out);
    return rc;
}

static int sq_comment_delete(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id,
                             const char *comment_id, const char *user_id, int is_admin)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    sqlite3_stmt *st;
    if ((rc = exec_exists_on(c, org_id, prompt_id, execution_id)) != STORE_OK)
        goto out;
    rc = STORE_ERR;
    if (!(st = stmt(c, SQL_COMMENT_DELETE)))
        goto out;
    bind_text(st, 1, comment_id);
    bind_text(st, 2, execution_id);
    bind_text(st, 3, org_id);
    sqlite3_bind_int(st, 4, is_admin);
    bind_text(st, 5, user_id);
    if (step_done(c, st) != STORE_OK)
        goto out;
    if (sqlite3_changes(c->db) == 0) {
        rc = STORE_NOTFOUND;
        goto out;
    }
    if (!(st = stmt(c, SQL_COMMENT_BUMP)))
        goto out;
    bind_text(st, 1, execution_id);
    sqlite3_bind_int(st, 2, -1);
    rc = step_done(c, st);
out:
    return w_end(s, rc);
}

static const struct store_ops sqlite_ops = {
    .close = sq_close,
    .schema_version = sq_schema_version,
    .bootstrap = sq_bootstrap,
    .key_create_for_org = sq_key_create_for_org,
    .key_find = sq_key_find,
    .key_list_all = sq_key_list_all,
    .key_revoke = sq_key_revoke,
    .prompt_create = sq_prompt_create,
    .prompt_get = sq_prompt_get,
    .prompt_list = sq_prompt_list,
    .prompt_update = sq_prompt_update,
    .prompt_delete = sq_prompt_delete,
    .version_list = sq_version_list,
    .version_get = sq_version_get,
    .version_publish = sq_version_publish,
    .reaction_set = sq_reaction_set,
    .execution_create = sq_execution_create,
    .execution_finish = sq_execution_finish,
    .execution_get = sq_execution_get,
    .execution_list = sq_execution_list,
    .comment_create = sq_comment_create,
    .comment_list = sq_comment_list,
    .comment_delete = sq_comment_delete,
};
