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

#define SQ_STMT_CACHE 256 /* > every static SQL text of all sqlite_*.c (about 125 now): a full cache leaks statements */
#define SQ_READERS 16

typedef struct sq_conn {
    sqlite3 *db;
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } cache[SQ_STMT_CACHE];
    int ncache;
} sq_conn;

#define SQ_BUSY_TIMEOUT_MS 5000 /* how long a thread without a wait limit waits for another process's lock */

typedef struct sq_store {
    struct store base; /* must be first */
    char *path;
    pthread_mutex_t wlock;
    sq_conn writer;
    pthread_mutex_t plock;
    sq_conn *idle[SQ_READERS]; /* idle reader connections */
    int nidle;
    int version;
    /* checkpoints, off the commit path (sqlite.c, "checkpoints") */
    sq_conn ck;              /* the checkpointer's own connection */
    pthread_t ck_thread;
    int ck_started;
    pthread_mutex_t ck_lock;
    pthread_cond_t ck_wake;
    int ck_due, ck_stop;     /* under ck_lock */
    int ck_busy;             /* under ck_lock: the checkpointer is copying */
    int ck_wal_pages;        /* under ck_lock: the WAL's frames after the last commit */
    int ck_copied;           /* under ck_lock: of those, copied to the database by a checkpoint */
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
/* sq_w_end(s, *rc) into *rc, and 1 when the transaction had succeeded but its COMMIT failed (a
 * full disk): a write that read its result back into *out must free it then, since nothing was
 * written and nothing may be handed out. */
int sq_w_end_lost(sq_store *s, int *rc);
/* Step a write statement to completion. */
int sq_step_done(sq_conn *c, sqlite3_stmt *st);
/* Make room for one more element in a growing array: items_ptr is the
 * address of a T * holding count of *cap elements of size elem; doubles it
 * when full. 0, or -1 when memory is short (the array is left intact). */
int sq_grow(void *items_ptr, size_t *cap, size_t count, size_t elem);

/* One write transaction running sql (an UPDATE or DELETE) with ?1 = org_id,
 * ?2 = id and, when value is not NULL, ?3 = *value: STORE_NOTFOUND when it
 * changed no row (another organization's id is not found either). */
int sq_change_one(sq_store *s, const char *sql, const char *org_id, const char *id, const sqlite3_int64 *value);
#define sq_delete_one(s, sql, org_id, id) sq_change_one((s), (sql), (org_id), (id), NULL)

/* A page of a plain list: *total from count_sql, then the rows of list_sql,
 * each read by read_row into a new item (zeroed) of item_size appended to
 * *items_ptr (a T **). Both statements bind args[0..nargs) to ?1..?nargs
 * (NULL binds SQL NULL); list_sql also binds limit to ?nargs+1 and offset to
 * ?nargs+2. On failure the items read so far stay for the caller's page free. */
typedef struct sq_page_query {
    const char *count_sql, *list_sql;
    const char *args[4];
    int nargs;
    long offset, limit;
    const char *what; /* names the list in the log */
} sq_page_query;
int sq_page(sq_store *s, const sq_page_query *q, size_t item_size, int (*read_row)(sqlite3_stmt *st, void *item),
            void *items_ptr, size_t *count, long *total);
/* STORE_OK if the two-parameter query returns a row, STORE_NOTFOUND if not. */
int sq_exists(sq_conn *c, const char *sql, const char *a, const char *b);

/* The columns of a prompt row as sq_prompt_from_row() reads them, from table
 * alias p; ?3 is the viewing user (for liked/saved/followed), "" for none. */
#define SQ_PROMPT_COLS                                                                                                \
    "p.id, p.org_id, p.user_id, p.name, p.description, p.content, p.status, coalesce(p.current_version_id, ''), " \
    "coalesce(p.published_version_id, ''), p.versions_count, p.likes_count, p.saves_count, p.followers_count, "   \
    "p.created_at, p.updated_at, "                                                                                 \
    "EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = ?3 AND r.target_type = 'prompt' AND r.target_id = p.id " \
    "AND r.kind = 'like'), "                                                                                       \
    "EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = ?3 AND r.target_type = 'prompt' AND r.target_id = p.id " \
    "AND r.kind = 'save'), "                                                                                       \
    "EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = ?3 AND r.target_type = 'prompt' AND r.target_id = p.id " \
    "AND r.kind = 'follow'), " SQ_PROMPT_LINK_COLS

int sq_prompt_from_row(sqlite3_stmt *st, store_prompt *p);

extern const char SQL_PROMPT_EXISTS[];
extern const char SQL_EXEC_INSERT[];
/* Insert one execution inside the caller's writer transaction (id/status defaulted). */
int sq_execution_insert_on(sq_conn *c, store_execution *e, int64_t now);

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
int sq_executions_write(store_t *base, store_exec_write *ops, size_t n);
int sq_execution_get(store_t *base, const char *org_id, const char *prompt_id, const char *id, const char *viewer_id, store_execution *out);
int sq_execution_list(store_t *base, const char *org_id, const char *viewer_id, const store_execution_query *q, store_execution_page *out);
int sq_comment_create(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id,
                      const char *parent_id, const char *user_id, const char *body, store_comment *out,
                      enum store_comment_part *missing);
int sq_comment_get(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id,
                   const char *comment_id, store_comment *out, enum store_comment_part *missing);
int sq_comment_list(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id,
                    const char *parent_id, long offset, long limit, store_comment_page *out);
int sq_comment_update(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id,
                      const char *comment_id, const char *user_id, int is_admin, const char *body, store_comment *out);
int sq_comment_delete(store_t *base, const char *org_id, const char *prompt_id, const char *execution_id, const char *comment_id, const char *user_id, int is_admin);

/* ---- sqlite_clusters.c: entities, clusters, contexts, conversations, messages (spec 001) ---- */
int sq_entity_create(store_t *base, store_entity *e);
int sq_entity_get(store_t *base, const char *org_id, const char *id, store_entity *out);
int sq_entity_list(store_t *base, const char *org_id, long offset, long limit, store_entity_page *out);
int sq_entity_update(store_t *base, const char *org_id, const char *id, const store_entity_patch *patch, store_entity *out);
int sq_entity_delete(store_t *base, const char *org_id, const char *id);
int sq_cluster_create(store_t *base, store_cluster *c);
int sq_cluster_get(store_t *base, const char *org_id, const char *id, store_cluster *out);
int sq_cluster_list(store_t *base, const char *org_id, const char *user_id, long offset, long limit,
                    store_cluster_page *out);
int sq_cluster_update(store_t *base, const char *org_id, const char *id, const store_cluster_patch *patch, store_cluster *out);
int sq_cluster_delete(store_t *base, const char *org_id, const char *id);
int sq_cluster_member_set(store_t *base, const char *org_id, const char *cluster_id, const char *entity_id, int on, enum store_cluster_part *missing);
int sq_cluster_member_list(store_t *base, const char *org_id, const char *cluster_id, long offset, long limit, store_entity_page *out);
int sq_cluster_member_get(store_t *base, const char *org_id, const char *cluster_id, const char *entity_id, store_entity *out, enum store_cluster_part *missing);
int sq_cluster_prompt_set(store_t *base, const char *org_id, const char *cluster_id, const char *prompt_id, int on, enum store_cluster_part *missing);
int sq_cluster_prompt_list(store_t *base, const char *org_id, const char *cluster_id, long offset, long limit, store_prompt_page *out);
int sq_context_create(store_t *base, const char *org_id, const char *cluster_id, store_context *c);
int sq_context_list(store_t *base, const char *org_id, const char *cluster_id, long offset, long limit, store_context_page *out);
int sq_context_update(store_t *base, const char *org_id, const char *cluster_id, const char *id, const store_context_patch *patch, store_context *out, enum store_cluster_part *missing);
int sq_context_delete(store_t *base, const char *org_id, const char *cluster_id, const char *id, enum store_cluster_part *missing);
int sq_conversation_create(store_t *base, const char *org_id, const char *cluster_id, store_conversation *c);
int sq_conversation_get(store_t *base, const char *org_id, const char *cluster_id, const char *id, store_conversation *out, enum store_cluster_part *missing);
int sq_entity_register(store_t *base, store_entity *e, const store_entity_patch *patch, store_entity *out,
                       int *created);
int sq_conversation_list_org(store_t *base, const char *org_id, const char *cluster_id, const char *user_id,
                             const char *status, long offset, long limit, store_conversation_page *out);
int sq_conversation_locate(store_t *base, const char *org_id, const char *id, store_id cluster_id);
int sq_conversation_empty(store_t *base, const char *org_id, const char *cluster_id, const char *id,
                          store_conversation *out, enum store_cluster_part *missing);
int sq_conversation_list(store_t *base, const char *org_id, const char *cluster_id, const char *status, long offset, long limit, store_conversation_page *out);
int sq_conversation_update(store_t *base, const char *org_id, const char *cluster_id, const char *id, const store_conversation_patch *patch, store_conversation *out, enum store_cluster_part *missing);
int sq_conversation_delete(store_t *base, const char *org_id, const char *cluster_id, const char *id, enum store_cluster_part *missing);
int sq_message_add(store_t *base, const char *org_id, const char *cluster_id, const char *conversation_id, store_message *msgs, size_t n, enum store_cluster_part *missing);
int sq_message_finish(store_t *base, const char *id, const store_message_result *r, store_message *out);
int sq_message_list(store_t *base, const char *org_id, const char *cluster_id, const char *conversation_id, const store_message_query *q, store_message_page *out, enum store_cluster_part *missing);
int sq_message_get(store_t *base, const char *org_id, const char *cluster_id, const char *conversation_id, const char *id, store_message *out, enum store_cluster_part *missing);
/* ---- end sqlite_clusters.c ---- */

/* sqlite_queue.c */
int sq_prompt_get_on(sq_conn *c, const char *org_id, const char *id, const char *viewer_id, store_prompt *out);
int sq_queue_claim(store_t *base, const char *owner, int64_t now, int64_t lease_until, int max, store_job **jobs, size_t *n);
int sq_queue_renew(store_t *base, const char *owner, int64_t lease_until);
int sq_queue_finish_many(store_t *base, const char *owner, const store_job_result *res, size_t n, size_t *applied);
int sq_execution_cancel(store_t *base, const char *org_id, const char *id, const char *owner_id);
int sq_execution_retry(store_t *base, const char *org_id, const char *id, const char *owner_id);
int sq_execution_attempts(store_t *base, const char *org_id, const char *id, store_attempt **out, size_t *n);
int sq_batch_create(store_t *base, const char *org_id, const char *user_id, store_execution *items, size_t n, store_id batch_id);
int sq_batch_get(store_t *base, const char *org_id, const char *id, store_batch *out);
int sq_idem_begin(store_t *base, const char *org_id, const char *caller, const char *key, const char *user_id, const unsigned char hash[32], enum store_idem_state *state, int *status_code, char **response);
int sq_idem_finish(store_t *base, const char *org_id, const char *caller, const char *key, int status_code, const char *response);
int sq_idem_abort(store_t *base, const char *org_id, const char *caller, const char *key);
int sq_prompt_ensure_raw_many(store_t *base, const char *org_id, const char *user_id, size_t n,
                              const char *const *names, const char *const *texts, const char *const *hashes,
                              store_prompt *out);
int sq_prompt_ensure_raw(store_t *base, const char *org_id, const char *user_id, const char *name, const char *text, const char *raw_hash, store_prompt *out);

/* ---- sqlite_history.c (spec 002: workspaces, data sources, users, history) ---- */
/* Columns appended to PROMPT_COLS (sqlite_prompts.c): workspace, tags, data sources. */
#define SQ_PROMPT_LINK_COLS                                                                                        \
    "coalesce(p.workspace_id, ''), p.tags, (SELECT json_group_array(pd.data_source_id) FROM prompt_data_sources pd " \
    "WHERE pd.prompt_id = p.id) "
/* Read SQ_PROMPT_LINK_COLS starting at column col into p. */
void sq_prompt_links_from_row(sqlite3_stmt *st, int col, store_prompt *p);
/* Inside a writer transaction: set a prompt's workspace (NULL unchanged, "" none), tags (JSON array text, NULL
 * unchanged) and data sources (JSON array text of ids, NULL unchanged; ids not in org_id are skipped). */
int sq_prompt_links_write(sq_conn *c, const char *org_id, const char *prompt_id, const char *workspace_id,
                          const char *tags, const char *data_source_ids);
int sq_workspace_create(store_t *base, store_workspace *w);
int sq_workspace_get(store_t *base, const char *org_id, const char *id, store_workspace *out);
int sq_workspace_list(store_t *base, const char *org_id, long offset, long limit, store_workspace_page *out);
int sq_workspace_update(store_t *base, const char *org_id, const char *id, const store_workspace_patch *patch, store_workspace *out);
int sq_workspace_delete(store_t *base, const char *org_id, const char *id);
int sq_data_source_create(store_t *base, store_data_source *d);
int sq_data_source_get(store_t *base, const char *org_id, const char *id, store_data_source *out);
int sq_data_source_list(store_t *base, const char *org_id, const char *workspace_id, long offset, long limit, store_data_source_page *out);
int sq_data_source_update(store_t *base, const char *org_id, const char *id, const store_data_source_patch *patch, store_data_source *out, int *bad_workspace);
int sq_data_source_delete(store_t *base, const char *org_id, const char *id);
int sq_prompt_refs_check(store_t *base, const char *org_id, const char *workspace_id, const char *data_source_ids, const char **bad_field);
int sq_user_create(store_t *base, store_user *u);
int sq_user_get(store_t *base, const char *org_id, const char *id, store_user *out);
int sq_user_list(store_t *base, const char *org_id, long offset, long limit, store_user_page *out);
int sq_user_update(store_t *base, const char *org_id, const char *id, const store_user_patch *patch, store_user *out, const char **conflict);
int sq_user_delete(store_t *base, const char *org_id, const char *id);
int sq_user_key_create(store_t *base, const char *org_id, const char *user_id, const char *key_name, const char *key_prefix, const unsigned char *hash, store_key *out);
int sq_history_list(store_t *base, const char *org_id, const store_history_query *q, store_history_page *out);
int sq_history_clear(store_t *base, const char *org_id, const char *user_id, long *deleted, long *prompts_deleted);
int sq_num_resolve(store_t *base, const char *org_id, enum store_num_kind kind, int64_t num, store_id out);
int sq_bench_execution_insert_bulk(store_t *base, const store_execution *e, size_t n);
/* ---- end sqlite_history.c ---- */

/* sqlite_auth.c */
int sq_setting_get(store_t *base, const char *name, unsigned char *out, size_t outcap, size_t *outlen);
int sq_setting_delete(store_t *base, const char *name);
int sq_user_find_email(store_t *base, const char *org_id, const char *email, store_user *out);
int sq_user_idp_find(store_t *base, const store_idp_login *in, store_user *out, int *bound_now, int *refusal);
int sq_org_find(store_t *base, const char *name_or_id, store_id org_id, char *name, size_t namelen);
int sq_key_set_rate_limit(store_t *base, const char *org_id, const char *prefix, long per_minute);
int sq_key_revoke_in_org(store_t *base, const char *org_id, const char *prefix_or_id);

int sq_recover_interrupted(store_t *base, long *count);

/* sqlite_rate.c */
int sq_rate_hits_write(store_t *base, const char *scope, const store_rate_hit *hits, size_t n, int64_t prune_upto_ms);
int sq_rate_hits_load(store_t *base, const char *scope, int64_t since_ms,
                      int (*fn)(void *ud, const char *bucket, int64_t at_ms, long n), void *ud);

#endif
