/*
 * store_backend.h — INTERNAL: what a storage backend implements.
 *
 * store.c forwards every public store_* call through these function pointers,
 * so a new backend (PostgreSQL) is one more file that fills a struct store_ops
 * and embeds struct store as the first member of its own state.
 */
#ifndef PROMPTD_STORE_BACKEND_H
#define PROMPTD_STORE_BACKEND_H

#include <stdatomic.h>
#include <stdint.h>

#include "store/store.h"

struct store_ops {
    void (*close)(store_t *s);
    int (*schema_version)(store_t *s);
    int (*bootstrap)(store_t *s, const char *org_name, const char *admin_email, const char *key_prefix,
                     const unsigned char *hash, int *created);
    int (*key_create_for_org)(store_t *s, const char *org_name, const char *key_name, const char *key_prefix,
                              const unsigned char *hash, store_key *out);
    int (*key_find)(store_t *s, const char *prefix, store_key *out);
    int (*key_list_all)(store_t *s, const char *org_name, store_key_list *out);
    int (*key_revoke)(store_t *s, const char *prefix);
    int (*prompt_create)(store_t *s, store_prompt *p);
    int (*prompt_get)(store_t *s, const char *org_id, const char *id, const char *viewer_id, store_prompt *out);
    int (*prompt_list)(store_t *s, const char *org_id, const char *viewer_id, const store_prompt_query *q,
                       store_prompt_page *out);
    int (*prompt_update)(store_t *s, const char *org_id, const char *id, const char *user_id,
                         const store_prompt_patch *patch, store_prompt *out);
    int (*prompt_delete)(store_t *s, const char *org_id, const char *id);
    int (*version_list)(store_t *s, const char *org_id, const char *prompt_id, long offset, long limit,
                        store_version_page *out);
    int (*version_get)(store_t *s, const char *org_id, const char *prompt_id, const char *version_id,
                       store_version *out);
    int (*version_publish)(store_t *s, const char *org_id, const char *prompt_id, const char *version_id);
    int (*reaction_set)(store_t *s, const char *org_id, const char *user_id, enum store_target target,
                        const char *target_id, enum store_reaction kind, int on);
    int (*execution_create)(store_t *s, store_execution *e);
    int (*execution_finish)(store_t *s, const char *id, const store_execution_result *r);
    int (*executions_write)(store_t *s, store_exec_write *ops, size_t n);
    void (*writer_idle)(store_t *s); /* may be NULL */
    int (*execution_get)(store_t *s, const char *org_id, const char *prompt_id, const char *id,
                         const char *viewer_id, store_execution *out);
    int (*execution_list)(store_t *s, const char *org_id, const char *viewer_id, const store_execution_query *q,
                          store_execution_page *out);
    int (*comment_create)(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                          const char *parent_id, const char *user_id, const char *body, store_comment *out,
                          enum store_comment_part *missing);
    int (*comment_get)(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                       const char *comment_id, store_comment *out, enum store_comment_part *missing);
    int (*comment_list)(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                        const char *parent_id, long offset, long limit, store_comment_page *out);
    int (*comment_update)(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                          const char *comment_id, const char *user_id, int is_admin, const char *body,
                          store_comment *out);
    int (*comment_delete)(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                          const char *comment_id, const char *user_id, int is_admin);
    /* ---- entities, clusters, contexts, conversations, messages (spec 001) ---- */
    int (*entity_create)(store_t *s, store_entity *e);
    int (*entity_get)(store_t *s, const char *org_id, const char *id, store_entity *out);
    int (*entity_list)(store_t *s, const char *org_id, long offset, long limit, store_entity_page *out);
    int (*entity_update)(store_t *s, const char *org_id, const char *id, const store_entity_patch *patch,
                         store_entity *out);
    int (*entity_delete)(store_t *s, const char *org_id, const char *id);
    int (*cluster_create)(store_t *s, store_cluster *c);
    int (*cluster_get)(store_t *s, const char *org_id, const char *id, store_cluster *out);
    int (*cluster_list)(store_t *s, const char *org_id, const char *user_id, long offset, long limit,
                        store_cluster_page *out);
    int (*cluster_update)(store_t *s, const char *org_id, const char *id, const store_cluster_patch *patch,
                          store_cluster *out);
    int (*cluster_delete)(store_t *s, const char *org_id, const char *id);
    int (*cluster_member_set)(store_t *s, const char *org_id, const char *cluster_id, const char *entity_id, int on,
                              enum store_cluster_part *missing);
    int (*cluster_member_list)(store_t *s, const char *org_id, const char *cluster_id, long offset, long limit,
                               store_entity_page *out);
    int (*cluster_member_get)(store_t *s, const char *org_id, const char *cluster_id, const char *entity_id,
                              store_entity *out, enum store_cluster_part *missing);
    int (*cluster_prompt_set)(store_t *s, const char *org_id, const char *cluster_id, const char *prompt_id, int on,
                              enum store_cluster_part *missing);
    int (*cluster_prompt_list)(store_t *s, const char *org_id, const char *cluster_id, long offset, long limit,
                               store_prompt_page *out);
    int (*context_create)(store_t *s, const char *org_id, const char *cluster_id, store_context *c);
    int (*context_list)(store_t *s, const char *org_id, const char *cluster_id, long offset, long limit,
                        store_context_page *out);
    int (*context_update)(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                          const store_context_patch *patch, store_context *out, enum store_cluster_part *missing);
    int (*context_delete)(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                          enum store_cluster_part *missing);
    int (*conversation_create)(store_t *s, const char *org_id, const char *cluster_id, store_conversation *c);
    int (*conversation_get)(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                            store_conversation *out, enum store_cluster_part *missing);
    int (*conversation_list)(store_t *s, const char *org_id, const char *cluster_id, const char *status,
                             long offset, long limit, store_conversation_page *out);
    int (*entity_register)(store_t *s, store_entity *e, const store_entity_patch *patch, store_entity *out,
                           int *created);
    int (*conversation_list_org)(store_t *s, const char *org_id, const char *cluster_id, const char *user_id,
                                 const char *status, long offset, long limit, store_conversation_page *out);
    int (*conversation_locate)(store_t *s, const char *org_id, const char *id, store_id cluster_id);
    int (*conversation_empty)(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                              store_conversation *out, enum store_cluster_part *missing);
    int (*conversation_update)(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                               const store_conversation_patch *patch, store_conversation *out,
                               enum store_cluster_part *missing);
    int (*conversation_delete)(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                               enum store_cluster_part *missing);
    int (*message_add)(store_t *s, const char *org_id, const char *cluster_id, const char *conversation_id,
                       store_message *msgs, size_t n, enum store_cluster_part *missing);
    int (*message_finish)(store_t *s, const char *id, const store_message_result *r, store_message *out);
    int (*message_list)(store_t *s, const char *org_id, const char *cluster_id, const char *conversation_id,
                        const store_message_query *q, store_message_page *out, enum store_cluster_part *missing);
    int (*message_get)(store_t *s, const char *org_id, const char *cluster_id, const char *conversation_id,
                       const char *id, store_message *out, enum store_cluster_part *missing);
    /* ---- end spec 001 ---- */
    /* queue, batches, idempotency, raw prompts (sqlite_queue.c) */
    int (*queue_claim)(store_t *s, const char *owner, int64_t now, int64_t lease_until, int max, store_job **jobs, size_t *n);
    int (*queue_renew)(store_t *s, const char *owner, int64_t lease_until);
    int (*queue_finish_many)(store_t *s, const char *owner, const store_job_result *res, size_t n, size_t *applied);
    int (*execution_cancel)(store_t *s, const char *org_id, const char *id, const char *owner_id);
    int (*execution_retry)(store_t *s, const char *org_id, const char *id, const char *owner_id);
    int (*execution_attempts)(store_t *s, const char *org_id, const char *id, store_attempt **out, size_t *n);
    int (*batch_create)(store_t *s, const char *org_id, const char *user_id, store_execution *items, size_t n, store_id batch_id);
    int (*batch_get)(store_t *s, const char *org_id, const char *id, store_batch *out);
    int (*idem_begin)(store_t *s, const char *org_id, const char *caller, const char *key, const char *user_id, const unsigned char hash[32], enum store_idem_state *state, int *status_code, char **response);
    int (*idem_finish)(store_t *s, const char *org_id, const char *caller, const char *key, int status_code, const char *response);
    int (*idem_abort)(store_t *s, const char *org_id, const char *caller, const char *key);
    int (*prompt_ensure_raw_many)(store_t *s, const char *org_id, const char *user_id, size_t n,
                                  const char *const *names, const char *const *texts, const char *const *hashes,
                                  store_prompt *out);
    int (*prompt_ensure_raw)(store_t *s, const char *org_id, const char *user_id, const char *name, const char *text, const char *raw_hash, store_prompt *out);
    /* ---- prompt history (spec 002): workspaces, data sources, users, history ---- */
    int (*workspace_create)(store_t *s, store_workspace *w);
    int (*workspace_get)(store_t *s, const char *org_id, const char *id, store_workspace *out);
    int (*workspace_list)(store_t *s, const char *org_id, long offset, long limit, store_workspace_page *out);
    int (*workspace_update)(store_t *s, const char *org_id, const char *id, const store_workspace_patch *patch,
                            store_workspace *out);
    int (*workspace_delete)(store_t *s, const char *org_id, const char *id);
    int (*data_source_create)(store_t *s, store_data_source *d);
    int (*data_source_get)(store_t *s, const char *org_id, const char *id, store_data_source *out);
    int (*data_source_list)(store_t *s, const char *org_id, const char *workspace_id, long offset, long limit,
                            store_data_source_page *out);
    int (*data_source_update)(store_t *s, const char *org_id, const char *id, const store_data_source_patch *patch,
                              store_data_source *out, int *bad_workspace);
    int (*data_source_delete)(store_t *s, const char *org_id, const char *id);
    int (*prompt_refs_check)(store_t *s, const char *org_id, const char *workspace_id, const char *data_source_ids,
                             const char **bad_field);
    int (*user_create)(store_t *s, store_user *u);
    int (*user_get)(store_t *s, const char *org_id, const char *id, store_user *out);
    int (*user_list)(store_t *s, const char *org_id, long offset, long limit, store_user_page *out);
    int (*user_update)(store_t *s, const char *org_id, const char *id, const store_user_patch *patch, store_user *out,
                       const char **conflict);
    int (*user_delete)(store_t *s, const char *org_id, const char *id);
    int (*user_key_create)(store_t *s, const char *org_id, const char *user_id, const char *key_name,
                           const char *key_prefix, const unsigned char *hash, store_key *out);
    int (*history_list)(store_t *s, const char *org_id, const store_history_query *q, store_history_page *out);
    int (*history_clear)(store_t *s, const char *org_id, const char *user_id, long *deleted, long *prompts_deleted);
    int (*num_resolve)(store_t *s, const char *org_id, enum store_num_kind kind, int64_t num, store_id out);
    int (*bench_execution_insert_bulk)(store_t *s, const store_execution *e, size_t n);
    /* ---- end prompt history ---- */
    /* authentication extras (sqlite_auth.c) */
    int (*setting_get)(store_t *s, const char *name, unsigned char *out, size_t outcap, size_t *outlen);
    int (*setting_delete)(store_t *s, const char *name);
    int (*user_find_email)(store_t *s, const char *org_id, const char *email, store_user *out);
    int (*user_idp_find)(store_t *s, const store_idp_login *in, store_user *out, int *bound_now, int *refusal);
    int (*org_find)(store_t *s, const char *name_or_id, store_id org_id, char *name, size_t namelen);
    int (*key_set_rate_limit)(store_t *s, const char *org_id, const char *prefix, long per_minute);
    int (*key_revoke_in_org)(store_t *s, const char *org_id, const char *prefix_or_id);
    int (*recover_interrupted)(store_t *s, long *count);
    /* durable rate limits (sqlite_rate.c) */
    int (*rate_hits_write)(store_t *s, const char *scope, const store_rate_hit *hits, size_t n, int64_t prune_upto_ms);
    int (*rate_hits_load)(store_t *s, const char *scope, int64_t since_ms,
                          int (*fn)(void *ud, const char *bucket, int64_t at_ms, long n), void *ud);
};

struct store {
    const struct store_ops *ops;
    /* store_write_state: written by whichever thread ends a write transaction */
    _Atomic int write_refused;        /* a store_failure, 0 when writes work */
    _Atomic int64_t write_refused_since;
};

/* For backends: remember why the calling thread's store call failed (store_last_failure). */
void store_note_failure(enum store_failure f);
/* For backends: the calling thread's wait limit (store_thread_wait_limit), -1 = the default. */
long store_thread_wait_ms(void);
/* For backends: a write transaction ended; ok, or refused for why (BUSY, FULL, UNAVAILABLE;
 * other failures say nothing of the store's health and are not noted). */
void store_note_write(store_t *s, int ok, enum store_failure why);

/* Backends' constructors. */
int store_sqlite_open(const char *path, store_t **out, char *err, size_t errlen);

#endif
