/*
 * sqlite_internal.h — INTERNAL to the SQLite backend: connection pool,
 * statement cache, transaction helpers, and the functions each
 * sqlite_*.c file contributes to the store_ops table in sqlite.c.
 */
#ifndef PROMPTD_STORE_SQLITE_INTERNAL_H
#define PROMPTD_STORE_SQLITE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>

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

/* Log the connection's last error; returns STORE_ERR. */
int sq_fail(sq_conn *c, const char *what);
int sq_conn_open(sq_conn *c, const char *path, char *err, size_t errlen);
void sq_conn_close(sq_conn *c);
/* Cached prepared statement for sql (a static string: cached by address), reset. NULL on error. */
sqlite3_stmt *sq_stmt(sq_conn *c, const char *sql);
/* Reset a statement from sq_stmt() so it holds no lock. */
void sq_stmt_done(sqlite3_stmt *st);
/* Bind text (NULL binds SQL NULL). */
int sq_bind_text(sqlite3_stmt *st, int i, const char *s);
char *sq_col_strdup(sqlite3_stmt *st, int i);
char *sq_col_strdup_or_null(sqlite3_stmt *st, int i);
void sq_col_copy(sqlite3_stmt *st, int i, char *dst, size_t dstlen);
/* A reader connection from the pool (opened on demand); give it back with sq_reader_put. */
sq_conn *sq_reader_get(sq_store *s);
void sq_reader_put(sq_store *s, sq_conn *c);
int sq_exec(sq_conn *c, const char *sql);
/* Writer transaction: lock + BEGIN IMMEDIATE; every sq_w_begin is paired with sq_w_end,
 * which commits when rc is STORE_OK, else rolls back, and returns rc (STORE_ERR if the commit failed). */
sq_conn *sq_w_begin(sq_store *s);
int sq_w_end(sq_store *s, int rc);
/* Step a write statement to completion. */
int sq_step_done(sq_conn *c, sqlite3_stmt *st);
/* STORE_OK if the two-parameter query returns a row, STORE_NOTFOUND if not. */
int sq_exists(sq_conn *c, const char *sql, const char *a, const char *b);

extern const char SQL_PROMPT_EXISTS[];

/* sqlite_prompts.c, sqlite_executions.c */
int sq_prompt_create(store_t *base, store_prompt *p);
int sq_prompt_get(store_t *base, const char *org_id, const char *id, const char *viewer_id, store_prompt *out);
int sq_prompt_list(store_t *base, const char *org_id, const char *viewer_id, const store_prompt_query *q, store_prompt_page *out);
int sq_prompt_update(store_t *base, const char *org_id, const char *id, const char *user_id, const store_prompt_patch *patch, store_prompt *out);
int sq_prompt_delete(store_t *base, const char *org_id, const char *id);
int sq_version_list(store_t *base, const char *org_id, const char *prompt_id, long offset, long limit, store_version_page *out);
int sq_version_get(store_t *base, const char *org_id, const char *prompt_id, const char *version_id, store_version *out);
int sq_version_publish(store_t *base, const char *org_id, const char *prompt_id, const char *version_id);
int sq_reaction_set(store_t *base, const char *org_id, const char *user_id, enum store_target target, const char *target_id, enum store_reaction kind, int on);
int sq_execution_create(store_t *base, store_execution *e);
int sq_execution_finish(store_t *base, const char *id, const store_execution_result *r);
int sq_execution_get(store_t *base, const char *org_id, const char *prompt_id, const char *id, const char *viewer_id, store_execution *out);
int sq_execution_list(store_t *base, const char *org_id, const char *viewer_id, const store_execution_query *q, store_execution_page *out);
int sq_comment_create(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id, const char *user_id, const char *body, store_comment *out);
int sq_comment_list(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id, long offset, long limit, store_comment_page *out);
int sq_comment_delete(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id, const char *comment_id, const char *user_id, int is_admin);

#endif
