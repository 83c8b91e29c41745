/*
 * sqlite_rate.c — SQLite backend: the admissions of the durable rate limits
 * (table rate_hits, migration 0009; see store.h).
 */
#include "store/sqlite_internal.h"

static const char SQL_RATE_ADD[] = "INSERT INTO rate_hits (scope, bucket, at_ms, n) VALUES (?1, ?2, ?3, ?4) "
                                   "ON CONFLICT (scope, bucket, at_ms) DO UPDATE SET n = n + excluded.n";
static const char SQL_RATE_PRUNE[] = "DELETE FROM rate_hits WHERE scope = ?1 AND at_ms <= ?2";
static const char SQL_RATE_LOAD[] =
    "SELECT bucket, at_ms, n FROM rate_hits WHERE scope = ?1 AND at_ms > ?2 ORDER BY bucket, at_ms";

int sq_rate_hits_write(store_t *base, const char *scope, const store_rate_hit *hits, size_t n, int64_t prune_upto_ms)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_w_begin(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_OK;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        sqlite3_stmt *st = sq_stmt(c, SQL_RATE_ADD);
        if (!st) {
            rc = STORE_ERR;
            break;
        }
        sq_bind_text(st, 1, scope);
        sq_bind_text(st, 2, hits[i].bucket);
        sqlite3_bind_int64(st, 3, hits[i].at_ms);
        sqlite3_bind_int64(st, 4, hits[i].n);
        rc = sq_step_done(c, st);
    }
    if (rc == STORE_OK && prune_upto_ms >= 0) {
        sqlite3_stmt *st = sq_stmt(c, SQL_RATE_PRUNE);
        if (!st) {
            rc = STORE_ERR;
        } else {
            sq_bind_text(st, 1, scope);
            sqlite3_bind_int64(st, 2, prune_upto_ms);
            rc = sq_step_done(c, st);
        }
    }
    return sq_w_end(s, rc);
}

int sq_rate_hits_load(store_t *base, const char *scope, int64_t since_ms,
                      int (*fn)(void *ud, const char *bucket, int64_t at_ms, long n), void *ud)
{
    sq_store *s = (sq_store *)base;
    sq_conn *c = sq_reader_get(s);
    if (!c)
        return STORE_ERR;
    int rc = STORE_OK, step;
    sqlite3_stmt *st = sq_stmt(c, SQL_RATE_LOAD);
    if (!st) {
        rc = STORE_ERR;
        goto out;
    }
    sq_bind_text(st, 1, scope);
    sqlite3_bind_int64(st, 2, since_ms);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *bucket = (const char *)sqlite3_column_text(st, 0);
        if (!bucket || fn(ud, bucket, sqlite3_column_int64(st, 1), (long)sqlite3_column_int64(st, 2)) != 0) {
            rc = STORE_ERR;
            break;
        }
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = sq_fail(c, "rate hits load");
    sq_stmt_done(st);
out:
    sq_reader_put(s, c);
    return rc;
}
