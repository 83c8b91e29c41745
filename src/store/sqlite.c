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
#include "core/thread.h"
#include "core/timeutil.h"
#include "store/migrations.h"
#include "store/sqlite_internal.h"


static const struct store_ops sqlite_ops;

/* ---------------------------------------------------------------- basics */

/* What an SQLite result code means for the caller (store_failure). */
static enum store_failure failure_of(int code)
{
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return STORE_FAIL_BUSY;
    case SQLITE_FULL: return STORE_FAIL_FULL;
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN: return STORE_FAIL_UNAVAILABLE;
    default: return STORE_FAIL_OTHER;
    }
}

int sq_fail(sq_conn *c, const char *what)
{
    log_error("sqlite: %s: %s", what, c && c->db ? sqlite3_errmsg(c->db) : "no connection");
    store_note_failure(c && c->db ? failure_of(sqlite3_extended_errcode(c->db)) : STORE_FAIL_OTHER);
    return STORE_ERR;
}

int sq_conn_open(sq_conn *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sqlite3_close(c->db);
        c->db = NULL;
        return STORE_ERR;
    }
    /* SQLite opens a file it may not write read-only without a word, and every write would
     * then fail later with a 500: say so now, at start-up, where the fix is obvious */
    if (sqlite3_db_readonly(c->db, "main") == 1) {
        snprintf(err, errlen,
                 "the database %s is read-only (its file, its folder or its file system refuses writes); "
                 "promptd needs to write it",
                 path);
        sqlite3_close(c->db);
        c->db = NULL;
        return STORE_ERR;
    }
    sqlite3_busy_timeout(c->db, SQ_BUSY_TIMEOUT_MS);
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

void sq_conn_close(sq_conn *c)
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
sqlite3_stmt *sq_stmt(sq_conn *c, const char *sql)
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

/* Release a statement from sq_stmt(): reset it so it holds no read lock. */
void sq_stmt_done(sqlite3_stmt *st)
{
    if (st)
        sqlite3_reset(st);
}

int sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
}

char *sq_col_strdup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return strdup(t ? (const char *)t : "");
}

void sq_col_copy(sqlite3_stmt *st, int i, char *dst, size_t dstlen)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(dst, dstlen, "%s", t ? (const char *)t : "");
}

sq_conn *sq_reader_get(sq_store *s)
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
    if (!c || sq_conn_open(c, s->path, err, sizeof err) != STORE_OK) {
        if (c)
            log_error("sqlite: reader: %s", err);
        free(c);
        return NULL;
    }
    return c;
}

void sq_reader_put(sq_store *s, sq_conn *c)
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
        sq_conn_close(c);
        free(c);
    }
}

int sq_exec(sq_conn *c, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        log_error("sqlite: exec failed: %s", msg ? msg : "?");
        sqlite3_free(msg);
        store_note_failure(failure_of(sqlite3_extended_errcode(c->db)));
        return STORE_ERR;
    }
    return STORE_OK;
}

/* Writer transaction: lock, BEGIN IMMEDIATE. Every w_begin is paired with w_end. */
/*
 * A thread with a wait limit (store_thread_wait_limit) waits at most that long in all: for the
 * writer mutex, then for the database's lock (the busy timeout, set per transaction since
 * threads with and without a limit share the one writer connection).
 */
sq_conn *sq_w_begin(sq_store *s)
{
    long limit = store_thread_wait_ms();
    long busy_ms = SQ_BUSY_TIMEOUT_MS;
    if (limit < 0) {
        pthread_mutex_lock(&s->wlock);
    } else {
        int64_t start = time_mono_ms();
        struct timespec until;
        time_deadline(CLOCK_REALTIME, limit, &until);
        if (pthread_mutex_timedlock(&s->wlock, &until) != 0) {
            log_warn("sqlite: the writer was busy for %ld ms; a write is refused", limit);
            store_note_failure(STORE_FAIL_BUSY);
            store_note_write(&s->base, 0, STORE_FAIL_BUSY);
            return NULL;
        }
        busy_ms = limit - (long)(time_mono_ms() - start);
        if (busy_ms < 0)
            busy_ms = 0;
    }
    sqlite3_busy_timeout(s->writer.db, (int)busy_ms);
    if (sq_exec(&s->writer, "BEGIN IMMEDIATE") != STORE_OK) {
        store_note_write(&s->base, 0, store_last_failure());
        pthread_mutex_unlock(&s->wlock);
        return NULL;
    }
    return &s->writer;
}

/* Commit when rc is STORE_OK, else roll back; unlock; return rc (or STORE_ERR if commit failed). */
int sq_w_end(sq_store *s, int rc)
{
    if (rc == STORE_OK) {
        if (sq_exec(&s->writer, "COMMIT") != STORE_OK) {
            enum store_failure why = store_last_failure();
            sq_exec(&s->writer, "ROLLBACK");
            store_note_failure(why);
            rc = STORE_ERR;
        }
    } else {
        enum store_failure why = store_last_failure();
        sq_exec(&s->writer, "ROLLBACK");
        store_note_failure(why);
    }
    /* a transaction that the database accepted, or refused for want of lock, space or disk */
    if (rc == STORE_ERR)
        store_note_write(&s->base, 0, store_last_failure());
    else
        store_note_write(&s->base, 1, STORE_FAIL_NONE);
    pthread_mutex_unlock(&s->wlock);
    return rc;
}

int sq_w_end_lost(sq_store *s, int *rc)
{
    int was_ok = *rc == STORE_OK;
    *rc = sq_w_end(s, *rc);
    return was_ok && *rc != STORE_OK;
}

/* Step a write statement to completion. */
int sq_step_done(sq_conn *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sq_stmt_done(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sq_fail(c, "step");
    return STORE_OK;
}

int sq_exists(sq_conn *c, const char *sql, const char *a, const char *b)
{
    sqlite3_stmt *st = sq_stmt(c, sql);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, a);
    sq_bind_text(st, 2, b);
    int rc = sqlite3_step(st);
    sq_stmt_done(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "exists");
}

char *sq_col_strdup_or_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : sq_col_strdup(st, i);
}

int sq_grow(void *items_ptr, size_t *cap, size_t count, size_t elem)
{
    if (count < *cap)
        return 0;
    void *items; /* items_ptr is a T **: copied, not cast, so no type-punned access */
    memcpy(&items, items_ptr, sizeof items);
    size_t ncap = *cap ? *cap * 2 : 16;
    void *n = realloc(items, ncap * elem);
    if (!n)
        return -1;
    memcpy(items_ptr, &n, sizeof n);
    *cap = ncap;
    return 0;
}

int sq_change_one(sq_store *s, const char *sql, const char *org_id, const char *id, const sqlite3_int64 *value)
{
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, sql);
    if (st) {
        sq_bind_text(st, 1, org_id);
        sq_bind_text(st, 2, id);
        if (value)
            sqlite3_bind_int64(st, 3, *value);
        rc = sq_step_done(c, st);
        if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
            rc = STORE_NOTFOUND;
    }
    /* NOTFOUND changed nothing: committing is the same as rolling back */
    return sq_w_end(s, rc == STORE_NOTFOUND ? STORE_OK : rc) == STORE_OK ? rc : STORE_ERR;
}

int sq_page(sq_store *s, const sq_page_query *q, size_t item_size, int (*read_row)(sqlite3_stmt *st, void *item),
            void *items_ptr, size_t *count, long *total)
{
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR, step = SQLITE_ERROR;
    size_t cap = 0;
    sqlite3_stmt *st = sq_stmt(c, q->count_sql);
    if (!st)
        goto out;
    for (int i = 0; i < q->nargs; i++)
        sq_bind_text(st, i + 1, q->args[i]);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sq_stmt_done(st);
        rc = sq_fail(c, q->what);
        goto out;
    }
    *total = (long)sqlite3_column_int64(st, 0);
    sq_stmt_done(st);
    if (!(st = sq_stmt(c, q->list_sql)))
        goto out;
    for (int i = 0; i < q->nargs; i++)
        sq_bind_text(st, i + 1, q->args[i]);
    sqlite3_bind_int64(st, q->nargs + 1, q->limit);
    sqlite3_bind_int64(st, q->nargs + 2, q->offset);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sq_grow(items_ptr, &cap, *count, item_size))
            break;
        char *items;
        memcpy(&items, items_ptr, sizeof items);
        void *item = items + *count * item_size;
        memset(item, 0, item_size);
        if (read_row(st, item) != STORE_OK)
            break;
        (*count)++;
    }
    sq_stmt_done(st);
    rc = step == SQLITE_DONE ? STORE_OK : sq_fail(c, q->what);
out:
    sq_reader_put(s, c);
    return rc;
}

/* ---------------------------------------------------------------- migrations */

static int migrate(sq_store *s, char *err, size_t errlen)
{
    sq_conn *c = &s->writer;
    int rc = STORE_ERR;
    pthread_mutex_lock(&s->wlock);
    if (sq_exec(c, "BEGIN IMMEDIATE") != STORE_OK) {
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

    int latest = 0; /* the list is in version order; the last is the newest */
    if (store_sqlite_migrations_count)
        latest = store_sqlite_migrations[store_sqlite_migrations_count - 1].version;
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
        if (sq_exec(c, pragma) != STORE_OK) {
            snprintf(err, errlen, "cannot record schema version %d", m->version);
            goto out;
        }
        log_info("store: applied migration %s", m->name);
        version = m->version;
    }
    rc = STORE_OK;
out:
    sq_exec(c, rc == STORE_OK ? "COMMIT" : "ROLLBACK");
    pthread_mutex_unlock(&s->wlock);
    s->version = version;
    return rc;
}

/* ---------------------------------------------------------------- checkpoints
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past
 * 1,000 pages: on whichever thread made that commit, under the writer lock,
 * with an fsync — a latency spike for one unlucky request, and every writer
 * behind it waits. Here the writer never checkpoints: its WAL hook (which
 * replaces the automatic checkpoint) only tells a thread of the store's own,
 * which runs a PASSIVE checkpoint on its own connection. A passive checkpoint
 * copies what no reader still needs and blocks neither the writer nor the
 * readers; the WAL starts over at the next write once all of it was copied.
 * The last connection to close checkpoints whatever is left.
 *
 * The WAL starts over only in a write transaction that began after a
 * checkpoint had copied all of it. The checkpointer copies 10,000 pages in
 * 35-65 ms (bench/README.md), while the writer keeps committing, so that
 * moment rarely comes by itself: each commit past the threshold used to wake
 * another small checkpoint, 100-600 of them (each with its own sync) until
 * one won the race. So the checkpointer is woken only while more than
 * SQ_CHECKPOINT_TAIL frames are left to copy; the last few are copied by the
 * writer itself the next time it has nothing queued (store_writer_idle), and
 * its next transaction starts the WAL over. A writer that is never idle
 * leaves the WAL growing, with the checkpointer copying behind it, until it
 * is.
 *
 * 10,000 pages (~40 MB of WAL) rather than SQLite's 1,000: the hot pages
 * (index leaves, the history rows) are rewritten by nearly every commit, and a
 * checkpoint copies each page once however often it was written, so rarer
 * checkpoints copy far less. Closed loop A/B, two runs each: 5,701 / 6,023 ->
 * 6,750 / 6,940 req/s (gateway), server CPU 238 / 229 -> 208 / 203 us per
 * request. */
#define SQ_CHECKPOINT_PAGES 10000
/* frames small enough for the idle writer to copy: 1 MB, a few ms */
#define SQ_CHECKPOINT_TAIL 256

static int sq_wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    sq_store *s = ud;
    pthread_mutex_lock(&s->ck_lock);
    s->ck_wal_pages = pages;
    if (pages < s->ck_copied)
        s->ck_copied = 0; /* the WAL started over */
    if (pages >= SQ_CHECKPOINT_PAGES && !s->ck_due && !s->ck_busy && pages - s->ck_copied > SQ_CHECKPOINT_TAIL) {
        s->ck_due = 1;
        pthread_cond_signal(&s->ck_wake);
    }
    pthread_mutex_unlock(&s->ck_lock);
    return SQLITE_OK;
}

static void *sq_checkpointer(void *arg)
{
    sq_store *s = arg;
    pthread_mutex_lock(&s->ck_lock);
    while (!s->ck_stop) {
        if (!s->ck_due) {
            pthread_cond_wait(&s->ck_wake, &s->ck_lock);
            continue;
        }
        s->ck_due = 0;
        s->ck_busy = 1;
        pthread_mutex_unlock(&s->ck_lock);
        int log_pages = 0, copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(s->ck.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("sqlite: checkpoint: %s", sqlite3_errmsg(s->ck.db));
        pthread_mutex_lock(&s->ck_lock);
        s->ck_busy = 0;
        if (rc == SQLITE_OK && copied > s->ck_copied)
            s->ck_copied = copied;
    }
    pthread_mutex_unlock(&s->ck_lock);
    return NULL;
}

/* The writer has nothing queued: copy the few frames the checkpointer left,
 * on the writer's own connection, so that its next transaction starts the WAL
 * over. */
static void sq_writer_idle(store_t *base)
{
    sq_store *s = (sq_store *)base;
    pthread_mutex_lock(&s->ck_lock);
    int tail = s->ck_started && !s->ck_due && !s->ck_busy && s->ck_wal_pages >= SQ_CHECKPOINT_PAGES &&
               s->ck_wal_pages - s->ck_copied <= SQ_CHECKPOINT_TAIL;
    pthread_mutex_unlock(&s->ck_lock);
    if (!tail)
        return;
    int log_pages = 0, copied = 0;
    pthread_mutex_lock(&s->wlock);
    int rc = sqlite3_wal_checkpoint_v2(s->writer.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
    pthread_mutex_unlock(&s->wlock);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log_warn("sqlite: checkpoint: %s", sqlite3_errmsg(s->writer.db));
    pthread_mutex_lock(&s->ck_lock);
    if (rc == SQLITE_OK && copied > s->ck_copied)
        s->ck_copied = copied;
    pthread_mutex_unlock(&s->ck_lock);
}

/* Open the checkpointer's connection and start it, then hook the writer. */
static int sq_checkpointer_start(sq_store *s, char *err, size_t errlen)
{
    if (sq_conn_open(&s->ck, s->path, err, errlen) != STORE_OK)
        return STORE_ERR;
    int rc = thread_start(&s->ck_thread, "pd-checkpoint", sq_checkpointer, s);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the checkpoint thread: %s", strerror(rc));
        return STORE_ERR;
    }
    s->ck_started = 1;
    sqlite3_wal_hook(s->writer.db, sq_wal_hook, s);
    return STORE_OK;
}

static void sq_checkpointer_stop(sq_store *s)
{
    if (s->ck_started) {
        sqlite3_wal_hook(s->writer.db, NULL, NULL);
        pthread_mutex_lock(&s->ck_lock);
        s->ck_stop = 1;
        pthread_cond_signal(&s->ck_wake);
        pthread_mutex_unlock(&s->ck_lock);
        pthread_join(s->ck_thread, NULL);
        s->ck_started = 0;
    }
    sq_conn_close(&s->ck);
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
    pthread_mutex_init(&s->ck_lock, NULL);
    pthread_cond_init(&s->ck_wake, NULL);
    if (sq_conn_open(&s->writer, path, err, errlen) != STORE_OK || migrate(s, err, errlen) != STORE_OK ||
        sq_checkpointer_start(s, err, errlen) != STORE_OK) {
        sq_checkpointer_stop(s);
        sq_conn_close(&s->writer);
        pthread_cond_destroy(&s->ck_wake);
        pthread_mutex_destroy(&s->ck_lock);
        pthread_mutex_destroy(&s->wlock);
        pthread_mutex_destroy(&s->plock);
        free(s->path);
        free(s);
        return STORE_ERR;
    }
    *out = &s->base;
    return STORE_OK;
}

void sq_close(store_t *base)
{
    sq_store *s = (sq_store *)base;
    sq_checkpointer_stop(s);
    for (int i = 0; i < s->nidle; i++) {
        sq_conn_close(s->idle[i]);
        free(s->idle[i]);
    }
    sq_conn_close(&s->writer); /* the last connection: it checkpoints what is left */
    pthread_cond_destroy(&s->ck_wake);
    pthread_mutex_destroy(&s->ck_lock);
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->plock);
    free(s->path);
    free(s);
}

int sq_schema_version(store_t *base) { return ((sq_store *)base)->version; }

/* ---------------------------------------------------------------- orgs, users, keys */

static const char SQL_ORG_COUNT[] = "SELECT count(*) FROM organizations";
static const char SQL_ORG_BY_NAME[] = "SELECT id FROM organizations WHERE name = ?1";
static const char SQL_ORG_INSERT[] = "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?2, ?3)";
static const char SQL_ADMIN_OF_ORG[] =
    "SELECT id FROM users WHERE org_id = ?1 AND role = 'admin' ORDER BY created_at, rowid LIMIT 1";
static const char SQL_USER_INSERT[] =
    "INSERT INTO users (id, org_id, email, name, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_KEY_INSERT[] = "INSERT INTO api_keys (id, org_id, user_id, prefix, hash, name, created_at) "
                                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
#define KEY_COLS                                                                                                   \
    "k.id, k.org_id, k.user_id, k.prefix, k.hash, k.name, k.created_at, coalesce(k.revoked_at, 0), u.role, "      \
    "o.name, u.email, coalesce(k.rate_limit_per_minute, -1) "
#define KEY_FROM "FROM api_keys k JOIN users u ON u.id = k.user_id JOIN organizations o ON o.id = k.org_id "
static const char SQL_KEY_BY_PREFIX[] = "SELECT " KEY_COLS KEY_FROM "WHERE k.prefix = ?1";
/* The key with this prefix, or else a decoy: the oldest key. Either way the
 * query probes the prefix index, finds the oldest key, and reads one key row
 * with its user and organization, so a miss costs what a hit does; the last
 * column says which it was. */
static const char SQL_KEY_OR_DECOY[] =
    "SELECT " KEY_COLS ", k.prefix = ?1 " KEY_FROM
    "WHERE k.rowid = (SELECT coalesce(p.rowid, d.r) FROM (SELECT min(rowid) AS r FROM api_keys) AS d "
    "LEFT JOIN api_keys AS p ON p.prefix = ?1)";
static const char SQL_KEY_LIST[] =
    "SELECT " KEY_COLS KEY_FROM "WHERE ?1 IS NULL OR o.name = ?1 OR o.id = ?1 ORDER BY k.created_at, k.rowid";
static const char SQL_KEY_REVOKE[] =
    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE prefix = ?1";

static void key_from_row(sqlite3_stmt *st, store_key *k)
{
    memset(k, 0, sizeof *k);
    sq_col_copy(st, 0, k->id, sizeof k->id);
    sq_col_copy(st, 1, k->org_id, sizeof k->org_id);
    sq_col_copy(st, 2, k->user_id, sizeof k->user_id);
    sq_col_copy(st, 3, k->prefix, sizeof k->prefix);
    int n = sqlite3_column_bytes(st, 4);
    const void *h = sqlite3_column_blob(st, 4);
    if (h && n == STORE_KEY_HASH_LEN)
        memcpy(k->hash, h, STORE_KEY_HASH_LEN);
    sq_col_copy(st, 5, k->name, sizeof k->name);
    k->created_at = sqlite3_column_int64(st, 6);
    k->revoked_at = sqlite3_column_int64(st, 7);
    sq_col_copy(st, 8, k->role, sizeof k->role);
    sq_col_copy(st, 9, k->org_name, sizeof k->org_name);
    sq_col_copy(st, 10, k->user_email, sizeof k->user_email);
    k->rate_limit_per_minute = (long)sqlite3_column_int64(st, 11);
}

/* Inside a writer transaction: the org's id, creating it when missing. */
static int org_ensure(sq_conn *c, const char *name, store_id org_id, int64_t now)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_ORG_BY_NAME);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        sq_col_copy(st, 0, org_id, sizeof(store_id));
        sq_stmt_done(st);
        return STORE_OK;
    }
    sq_stmt_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(c, "org lookup");
    id_new(org_id);
    if (!(st = sq_stmt(c, SQL_ORG_INSERT)))
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    sq_bind_text(st, 2, name);
    sqlite3_bind_int64(st, 3, now);
    return sq_step_done(c, st);
}

/* Inside a writer transaction: the org's first admin, creating one when missing. */
static int admin_ensure(sq_conn *c, const char *org_id, const char *email, store_id user_id, int64_t now)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_ADMIN_OF_ORG);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, org_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        sq_col_copy(st, 0, user_id, sizeof(store_id));
        sq_stmt_done(st);
        return STORE_OK;
    }
    sq_stmt_done(st);
    if (rc != SQLITE_DONE)
        return sq_fail(c, "admin lookup");
    id_new(user_id);
    if (!(st = sq_stmt(c, SQL_USER_INSERT)))
        return STORE_ERR;
    sq_bind_text(st, 1, user_id);
    sq_bind_text(st, 2, org_id);
    sq_bind_text(st, 3, email);
    sq_bind_text(st, 4, "Administrator");
    sq_bind_text(st, 5, "admin");
    sqlite3_bind_int64(st, 6, now);
    return sq_step_done(c, st);
}

static int key_insert(sq_conn *c, const char *org_id, const char *user_id, const char *prefix,
                      const unsigned char *hash, const char *name, int64_t now)
{
    store_id id;
    id_new(id);
    sqlite3_stmt *st = sq_stmt(c, SQL_KEY_INSERT);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, id);
    sq_bind_text(st, 2, org_id);
    sq_bind_text(st, 3, user_id);
    sq_bind_text(st, 4, prefix);
    sqlite3_bind_blob(st, 5, hash, STORE_KEY_HASH_LEN, SQLITE_TRANSIENT);
    sq_bind_text(st, 6, name ? name : "");
    sqlite3_bind_int64(st, 7, now);
    int rc = sqlite3_step(st);
    sq_stmt_done(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return STORE_CONFLICT;
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(c, "key insert");
}

int sq_bootstrap(store_t *base, const char *org_name, const char *admin_email, const char *key_prefix,
                        const unsigned char *hash, int *created)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    store_id org_id, user_id;
    *created = 0;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_ORG_COUNT);
    if (!st || sqlite3_step(st) != SQLITE_ROW) {
        sq_stmt_done(st);
        goto out;
    }
    long orgs = (long)sqlite3_column_int64(st, 0);
    sq_stmt_done(st);
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
    return sq_w_end(s, rc);
}

static int key_find_on(sq_conn *c, const char *prefix, store_key *out)
{
    sqlite3_stmt *st = sq_stmt(c, SQL_KEY_BY_PREFIX);
    if (!st)
        return STORE_ERR;
    sq_bind_text(st, 1, prefix);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        key_from_row(st, out);
    sq_stmt_done(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "key find");
}

int sq_key_create_for_org(store_t *base, const char *org_name, const char *key_name, const char *key_prefix,
                                 const unsigned char *hash, store_key *out)
{
    sq_store *s = (sq_store *)base;
    int64_t now = time_now_ms();
    store_id org_id, user_id;
    char email[300];
    snprintf(email, sizeof email, "admin@%s", org_name);
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc;
    if ((rc = org_ensure(c, org_name, org_id, now)) != STORE_OK ||
        (rc = admin_ensure(c, org_id, email, user_id, now)) != STORE_OK ||
        (rc = key_insert(c, org_id, user_id, key_prefix, hash, key_name, now)) != STORE_OK)
        goto out;
    rc = key_find_on(c, key_prefix, out);
out:
    return sq_w_end(s, rc);
}

int sq_key_find(store_t *base, const char *prefix, store_key *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_KEY_OR_DECOY);
    if (!st)
        goto out;
    sq_bind_text(st, 1, prefix);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        key_from_row(st, out); /* the decoy's row too: the same copying work */
        rc = sqlite3_column_int(st, 12) ? STORE_OK : STORE_NOTFOUND;
    } else {
        rc = step == SQLITE_DONE ? STORE_NOTFOUND : sq_fail(c, "key find"); /* no key at all */
    }
    sq_stmt_done(st);
out:
    sq_reader_put(s, c);
    return rc;
}

int sq_key_list_all(store_t *base, const char *org_name, store_key_list *out)
{
    sq_store *s = (sq_store *)base;
    memset(out, 0, sizeof *out);
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_OK, step;
    size_t cap = 0;
    sqlite3_stmt *st = sq_stmt(c, SQL_KEY_LIST);
    if (!st) {
        rc = STORE_ERR;
        goto out;
    }
    sq_bind_text(st, 1, org_name);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (sq_grow(&out->items, &cap, out->count, sizeof *out->items)) {
            rc = STORE_ERR;
            break;
        }
        key_from_row(st, &out->items[out->count++]);
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = sq_fail(c, "key list");
    sq_stmt_done(st);
out:
    sq_reader_put(s, c);
    if (rc != STORE_OK)
        store_key_list_free(out);
    return rc;
}

int sq_key_revoke(store_t *base, const char *prefix)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_ERR;
    sqlite3_stmt *st = sq_stmt(c, SQL_KEY_REVOKE);
    if (st) {
        sq_bind_text(st, 1, prefix);
        sqlite3_bind_int64(st, 2, time_now_ms());
        rc = sq_step_done(c, st);
        if (rc == STORE_OK && sqlite3_changes(c->db) == 0)
            rc = STORE_NOTFOUND;
    }
    /* NOTFOUND changes nothing; committing or rolling back is the same */
    return sq_w_end(s, rc == STORE_NOTFOUND ? STORE_OK : rc) == STORE_OK ? rc : STORE_ERR;
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
    .executions_write = sq_executions_write,
    .writer_idle = sq_writer_idle,
    .execution_get = sq_execution_get,
    .execution_list = sq_execution_list,
    .comment_create = sq_comment_create,
    .comment_get = sq_comment_get,
    .comment_list = sq_comment_list,
    .comment_update = sq_comment_update,
    .comment_delete = sq_comment_delete,
    /* sqlite_clusters.c (spec 001) */
    .entity_create = sq_entity_create,
    .entity_get = sq_entity_get,
    .entity_list = sq_entity_list,
    .entity_update = sq_entity_update,
    .entity_delete = sq_entity_delete,
    .cluster_create = sq_cluster_create,
    .cluster_get = sq_cluster_get,
    .cluster_list = sq_cluster_list,
    .cluster_update = sq_cluster_update,
    .cluster_delete = sq_cluster_delete,
    .cluster_member_set = sq_cluster_member_set,
    .cluster_member_list = sq_cluster_member_list,
    .cluster_member_get = sq_cluster_member_get,
    .cluster_prompt_set = sq_cluster_prompt_set,
    .cluster_prompt_list = sq_cluster_prompt_list,
    .context_create = sq_context_create,
    .context_list = sq_context_list,
    .context_update = sq_context_update,
    .context_delete = sq_context_delete,
    .conversation_create = sq_conversation_create,
    .conversation_get = sq_conversation_get,
    .conversation_list = sq_conversation_list,
    .conversation_list_org = sq_conversation_list_org,
    .entity_register = sq_entity_register,
    .conversation_locate = sq_conversation_locate,
    .conversation_empty = sq_conversation_empty,
    .conversation_update = sq_conversation_update,
    .conversation_delete = sq_conversation_delete,
    .message_add = sq_message_add,
    .message_finish = sq_message_finish,
    .message_list = sq_message_list,
    .message_get = sq_message_get,
    .queue_claim = sq_queue_claim,
    .queue_renew = sq_queue_renew,
    .queue_finish_many = sq_queue_finish_many,
    .execution_cancel = sq_execution_cancel,
    .execution_retry = sq_execution_retry,
    .execution_attempts = sq_execution_attempts,
    .batch_create = sq_batch_create,
    .batch_get = sq_batch_get,
    .idem_begin = sq_idem_begin,
    .idem_finish = sq_idem_finish,
    .idem_abort = sq_idem_abort,
    .prompt_ensure_raw = sq_prompt_ensure_raw,
    .prompt_ensure_raw_many = sq_prompt_ensure_raw_many,
    /* ---- prompt history (sqlite_history.c) ---- */
    .workspace_create = sq_workspace_create,
    .workspace_get = sq_workspace_get,
    .workspace_list = sq_workspace_list,
    .workspace_update = sq_workspace_update,
    .workspace_delete = sq_workspace_delete,
    .data_source_create = sq_data_source_create,
    .data_source_get = sq_data_source_get,
    .data_source_list = sq_data_source_list,
    .data_source_update = sq_data_source_update,
    .data_source_delete = sq_data_source_delete,
    .prompt_refs_check = sq_prompt_refs_check,
    .user_create = sq_user_create,
    .user_get = sq_user_get,
    .user_list = sq_user_list,
    .user_update = sq_user_update,
    .user_delete = sq_user_delete,
    .user_key_create = sq_user_key_create,
    .history_list = sq_history_list,
    .history_clear = sq_history_clear,
    .num_resolve = sq_num_resolve,
    .bench_execution_insert_bulk = sq_bench_execution_insert_bulk,
    /* ---- end prompt history ---- */
    .setting_get = sq_setting_get,
    .setting_delete = sq_setting_delete,
    .user_find_email = sq_user_find_email,
    .user_idp_find = sq_user_idp_find,
    .org_find = sq_org_find,
    .key_set_rate_limit = sq_key_set_rate_limit,
    .key_revoke_in_org = sq_key_revoke_in_org,
    .recover_interrupted = sq_recover_interrupted,
    .rate_hits_write = sq_rate_hits_write,
    .rate_hits_load = sq_rate_hits_load,
};
