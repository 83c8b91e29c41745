/*
 * store.c — picks the backend for a location and forwards each call to it,
 * plus the helpers that free what the store hands out (backend independent).
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "store/store_backend.h"

/* ---- failures and health (backend independent) ---- */

static _Thread_local enum store_failure last_failure;
static _Thread_local long wait_limit_ms = -1;

void store_note_failure(enum store_failure f) { last_failure = f; }
enum store_failure store_last_failure(void) { return last_failure; }
void store_failure_reset(void) { last_failure = STORE_FAIL_NONE; }
void store_thread_wait_limit(long ms) { wait_limit_ms = ms; }
long store_thread_wait_ms(void) { return wait_limit_ms; }

const char *store_failure_text(enum store_failure f)
{
    switch (f) {
    case STORE_FAIL_NONE: return "no failure";
    case STORE_FAIL_BUSY: return "the database is locked by another process";
    case STORE_FAIL_FULL: return "the disk is full";
    case STORE_FAIL_UNAVAILABLE: return "the database cannot be written (I/O error or read-only)";
    default: return "internal error";
    }
}

void store_note_write(store_t *s, int ok, enum store_failure why)
{
    if (ok) {
        if (atomic_load_explicit(&s->write_refused, memory_order_relaxed))
            atomic_store(&s->write_refused, STORE_FAIL_NONE);
        return;
    }
    if (why != STORE_FAIL_BUSY && why != STORE_FAIL_FULL && why != STORE_FAIL_UNAVAILABLE)
        return;
    int none = STORE_FAIL_NONE;
    if (atomic_compare_exchange_strong(&s->write_refused, &none, (int)why))
        atomic_store(&s->write_refused_since, time_now_ms());
    else
        atomic_store(&s->write_refused, (int)why);
}

void store_write_state_get(store_t *s, store_write_state *out)
{
    int why = atomic_load(&s->write_refused);
    out->refusing = why != STORE_FAIL_NONE;
    out->why = (enum store_failure)why;
    out->since_ms = out->refusing ? atomic_load(&s->write_refused_since) : 0;
}

int store_open(const char *location, store_t **out, char *err, size_t errlen)
{
    if (!location || !*location) {
        snprintf(err, errlen, "no database location given");
        return STORE_ERR;
    }
    if (strncmp(location, "postgres://", 11) == 0 || strncmp(location, "postgresql://", 13) == 0) {
        snprintf(err, errlen, "PostgreSQL is not built into this promptd yet");
        return STORE_ERR;
    }
    if (strncmp(location, "sqlite:", 7) == 0)
        location += 7;
    return store_sqlite_open(location, out, err, errlen);
}

void store_close(store_t *s)
{
    if (s)
        s->ops->close(s);
}

int store_schema_version(store_t *s) { return s->ops->schema_version(s); }

int store_bootstrap(store_t *s, const char *org_name, const char *admin_email, const char *key_prefix,
                    const unsigned char hash[STORE_KEY_HASH_LEN], int *created)
{
    return s->ops->bootstrap(s, org_name, admin_email, key_prefix, hash, created);
}

int store_key_create_for_org(store_t *s, const char *org_name, const char *key_name, const char *key_prefix,
                             const unsigned char hash[STORE_KEY_HASH_LEN], store_key *out)
{
    return s->ops->key_create_for_org(s, org_name, key_name, key_prefix, hash, out);
}

int store_key_find(store_t *s, const char *prefix, store_key *out) { return s->ops->key_find(s, prefix, out); }

int store_key_list_all(store_t *s, const char *org_name, store_key_list *out)
{
    return s->ops->key_list_all(s, org_name, out);
}

int store_key_revoke(store_t *s, const char *prefix) { return s->ops->key_revoke(s, prefix); }

int store_prompt_create(store_t *s, store_prompt *p) { return s->ops->prompt_create(s, p); }

int store_prompt_get(store_t *s, const char *org_id, const char *id, const char *viewer_id, store_prompt *out)
{
    return s->ops->prompt_get(s, org_id, id, viewer_id, out);
}

int store_prompt_list(store_t *s, const char *org_id, const char *viewer_id, const store_prompt_query *q,
                      store_prompt_page *out)
{
    return s->ops->prompt_list(s, org_id, viewer_id, q, out);
}

int store_prompt_update(store_t *s, const char *org_id, const char *id, const char *user_id,
                        const store_prompt_patch *patch, store_prompt *out)
{
    return s->ops->prompt_update(s, org_id, id, user_id, patch, out);
}

int store_prompt_delete(store_t *s, const char *org_id, const char *id)
{
    return s->ops->prompt_delete(s, org_id, id);
}

int store_version_list(store_t *s, const char *org_id, const char *prompt_id, long offset, long limit,
                           store_version_page *out)
{
    return s->ops->version_list(s, org_id, prompt_id, offset, limit, out);
}

int store_version_get(store_t *s, const char *org_id, const char *prompt_id, const char *version_id,
                      store_version *out)
{
    return s->ops->version_get(s, org_id, prompt_id, version_id, out);
}

int store_version_publish(store_t *s, const char *org_id, const char *prompt_id, const char *version_id)
{
    return s->ops->version_publish(s, org_id, prompt_id, version_id);
}

int store_reaction_set(store_t *s, const char *org_id, const char *user_id, enum store_target target,
                       const char *target_id, enum store_reaction kind, int on)
{
    return s->ops->reaction_set(s, org_id, user_id, target, target_id, kind, on);
}

int store_execution_create(store_t *s, store_execution *e) { return s->ops->execution_create(s, e); }

int store_executions_write(store_t *s, store_exec_write *ops, size_t n) { return s->ops->executions_write(s, ops, n); }
void store_writer_idle(store_t *s)
{
    if (s->ops->writer_idle)
        s->ops->writer_idle(s);
}

int store_execution_finish(store_t *s, const char *id, const store_execution_result *r)
{
    return s->ops->execution_finish(s, id, r);
}

int store_execution_get(store_t *s, const char *org_id, const char *prompt_id, const char *id,
                        const char *viewer_id, store_execution *out)
{
    return s->ops->execution_get(s, org_id, prompt_id, id, viewer_id, out);
}

int store_execution_list(store_t *s, const char *org_id, const char *viewer_id, const store_execution_query *q,
                         store_execution_page *out)
{
    return s->ops->execution_list(s, org_id, viewer_id, q, out);
}

int store_comment_create(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                         const char *parent_id, const char *user_id, const char *body, store_comment *out,
                         enum store_comment_part *missing)
{
    return s->ops->comment_create(s, org_id, prompt_id, execution_id, parent_id, user_id, body, out, missing);
}

int store_comment_get(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                      const char *comment_id, store_comment *out, enum store_comment_part *missing)
{
    return s->ops->comment_get(s, org_id, prompt_id, execution_id, comment_id, out, missing);
}

int store_comment_list(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                       const char *parent_id, long offset, long limit, store_comment_page *out)
{
    return s->ops->comment_list(s, org_id, prompt_id, execution_id, parent_id, offset, limit, out);
}

int store_comment_update(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                         const char *comment_id, const char *user_id, int is_admin, const char *body,
                         store_comment *out)
{
    return s->ops->comment_update(s, org_id, prompt_id, execution_id, comment_id, user_id, is_admin, body, out);
}

int store_comment_delete(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                         const char *comment_id, const char *user_id, int is_admin)
{
    return s->ops->comment_delete(s, org_id, prompt_id, execution_id, comment_id, user_id, is_admin);
}

/* ---- queue, batches, idempotency, raw prompts ---- */

int store_queue_claim(store_t *s, const char *owner, int64_t now, int64_t lease_until, int max, store_job **jobs, size_t *n)
{
    return s->ops->queue_claim(s, owner, now, lease_until, max, jobs, n);
}

int store_queue_renew(store_t *s, const char *owner, int64_t lease_until)
{
    return s->ops->queue_renew(s, owner, lease_until);
}

int store_queue_finish_many(store_t *s, const char *owner, const store_job_result *res, size_t n, size_t *applied)
{
    return s->ops->queue_finish_many(s, owner, res, n, applied);
}

int store_execution_cancel(store_t *s, const char *org_id, const char *id, const char *owner_id)
{
    return s->ops->execution_cancel(s, org_id, id, owner_id);
}

int store_execution_retry(store_t *s, const char *org_id, const char *id, const char *owner_id)
{
    return s->ops->execution_retry(s, org_id, id, owner_id);
}

int store_execution_attempts(store_t *s, const char *org_id, const char *id, store_attempt **out, size_t *n)
{
    return s->ops->execution_attempts(s, org_id, id, out, n);
}

int store_batch_create(store_t *s, const char *org_id, const char *user_id, store_execution *items, size_t n, store_id batch_id)
{
    return s->ops->batch_create(s, org_id, user_id, items, n, batch_id);
}

int store_batch_get(store_t *s, const char *org_id, const char *id, store_batch *out)
{
    return s->ops->batch_get(s, org_id, id, out);
}

int store_idem_begin(store_t *s, const char *org_id, const char *caller, const char *key, const char *user_id, const unsigned char hash[32], enum store_idem_state *state, int *status_code, char **response)
{
    return s->ops->idem_begin(s, org_id, caller, key, user_id, hash, state, status_code, response);
}

int store_idem_finish(store_t *s, const char *org_id, const char *caller, const char *key, int status_code, const char *response)
{
    return s->ops->idem_finish(s, org_id, caller, key, status_code, response);
}

int store_idem_abort(store_t *s, const char *org_id, const char *caller, const char *key)
{
    return s->ops->idem_abort(s, org_id, caller, key);
}

int store_prompt_ensure_raw_many(store_t *s, const char *org_id, const char *user_id, size_t n,
                                 const char *const *names, const char *const *texts, const char *const *hashes,
                                 store_prompt *out)
{
    return s->ops->prompt_ensure_raw_many(s, org_id, user_id, n, names, texts, hashes, out);
}

int store_prompt_ensure_raw(store_t *s, const char *org_id, const char *user_id, const char *name, const char *text, const char *raw_hash, store_prompt *out)
{
    return s->ops->prompt_ensure_raw(s, org_id, user_id, name, text, raw_hash, out);
}

/* ---- authentication extras ---- */

int store_setting_get(store_t *s, const char *name, unsigned char *out, size_t outcap, size_t *outlen)
{
    return s->ops->setting_get(s, name, out, outcap, outlen);
}

int store_setting_delete(store_t *s, const char *name) { return s->ops->setting_delete(s, name); }

int store_user_find_email(store_t *s, const char *org_id, const char *email, store_user *out)
{
    return s->ops->user_find_email(s, org_id, email, out);
}

int store_user_idp_find(store_t *s, const store_idp_login *in, store_user *out, int *bound_now, int *refusal)
{
    return s->ops->user_idp_find(s, in, out, bound_now, refusal);
}

int store_org_find(store_t *s, const char *name_or_id, store_id org_id, char *name, size_t namelen)
{
    return s->ops->org_find(s, name_or_id, org_id, name, namelen);
}

int store_key_set_rate_limit(store_t *s, const char *org_id, const char *prefix, long per_minute)
{
    return s->ops->key_set_rate_limit(s, org_id, prefix, per_minute);
}

int store_key_revoke_in_org(store_t *s, const char *org_id, const char *prefix_or_id)
{
    return s->ops->key_revoke_in_org(s, org_id, prefix_or_id);
}

int store_recover_interrupted(store_t *s, long *count) { return s->ops->recover_interrupted(s, count); }

int store_rate_hits_write(store_t *s, const char *scope, const store_rate_hit *hits, size_t n, int64_t prune_upto_ms)
{
    return s->ops->rate_hits_write(s, scope, hits, n, prune_upto_ms);
}

int store_rate_hits_load(store_t *s, const char *scope, int64_t since_ms,
                         int (*fn)(void *ud, const char *bucket, int64_t at_ms, long n), void *ud)
{
    return s->ops->rate_hits_load(s, scope, since_ms, fn, ud);
}

/* ---- freeing what the store hands out ---- */

void store_key_list_free(store_key_list *l)
{
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

void store_prompt_clear(store_prompt *p)
{
    free(p->name);
    free(p->description);
    free(p->content);
    free(p->tags);
    free(p->data_source_ids);
    memset(p, 0, sizeof *p);
}

void store_prompt_page_free(store_prompt_page *l)
{
    for (size_t i = 0; i < l->count; i++)
        store_prompt_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

void store_version_clear(store_version *v)
{
    free(v->content);
    memset(v, 0, sizeof *v);
}

void store_version_page_free(store_version_page *l)
{
    for (size_t i = 0; i < l->count; i++)
        store_version_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

void store_execution_clear(store_execution *e)
{
    free(e->rendered_prompt);
    free(e->messages);
    free(e->variables);
    free(e->metadata);
    free(e->model);
    free(e->output);
    free(e->error);
    free(e->tool_calls);
    memset(e, 0, sizeof *e);
}

void store_execution_page_free(store_execution_page *l)
{
    for (size_t i = 0; i < l->count; i++)
        store_execution_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

void store_comment_clear(store_comment *c)
{
    free(c->body);
    memset(c, 0, sizeof *c);
}

void store_comment_page_free(store_comment_page *l)
{
    for (size_t i = 0; i < l->count; i++)
        store_comment_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* ---- entities, clusters, contexts, conversations, messages (spec 001) ---- */

int store_entity_create(store_t *s, store_entity *e) { return s->ops->entity_create(s, e); }

int store_entity_get(store_t *s, const char *org_id, const char *id, store_entity *out)
{
    return s->ops->entity_get(s, org_id, id, out);
}

int store_entity_list(store_t *s, const char *org_id, long offset, long limit, store_entity_page *out)
{
    return s->ops->entity_list(s, org_id, offset, limit, out);
}

int store_entity_update(store_t *s, const char *org_id, const char *id, const store_entity_patch *patch,
                        store_entity *out)
{
    return s->ops->entity_update(s, org_id, id, patch, out);
}

int store_entity_delete(store_t *s, const char *org_id, const char *id)
{
    return s->ops->entity_delete(s, org_id, id);
}

int store_cluster_create(store_t *s, store_cluster *c) { return s->ops->cluster_create(s, c); }

int store_cluster_get(store_t *s, const char *org_id, const char *id, store_cluster *out)
{
    return s->ops->cluster_get(s, org_id, id, out);
}

int store_cluster_list(store_t *s, const char *org_id, const char *user_id, long offset, long limit,
                       store_cluster_page *out)
{
    return s->ops->cluster_list(s, org_id, user_id, offset, limit, out);
}

int store_cluster_update(store_t *s, const char *org_id, const char *id, const store_cluster_patch *patch,
                         store_cluster *out)
{
    return s->ops->cluster_update(s, org_id, id, patch, out);
}

int store_cluster_delete(store_t *s, const char *org_id, const char *id)
{
    return s->ops->cluster_delete(s, org_id, id);
}

int store_cluster_member_set(store_t *s, const char *org_id, const char *cluster_id, const char *entity_id, int on,
                             enum store_cluster_part *missing)
{
    return s->ops->cluster_member_set(s, org_id, cluster_id, entity_id, on, missing);
}

int store_cluster_member_list(store_t *s, const char *org_id, const char *cluster_id, long offset, long limit,
                              store_entity_page *out)
{
    return s->ops->cluster_member_list(s, org_id, cluster_id, offset, limit, out);
}

int store_cluster_member_get(store_t *s, const char *org_id, const char *cluster_id, const char *entity_id,
                             store_entity *out, enum store_cluster_part *missing)
{
    return s->ops->cluster_member_get(s, org_id, cluster_id, entity_id, out, missing);
}

int store_cluster_prompt_set(store_t *s, const char *org_id, const char *cluster_id, const char *prompt_id, int on,
                             enum store_cluster_part *missing)
{
    return s->ops->cluster_prompt_set(s, org_id, cluster_id, prompt_id, on, missing);
}

int store_cluster_prompt_list(store_t *s, const char *org_id, const char *cluster_id, long offset, long limit,
                              store_prompt_page *out)
{
    return s->ops->cluster_prompt_list(s, org_id, cluster_id, offset, limit, out);
}

int store_context_create(store_t *s, const char *org_id, const char *cluster_id, store_context *c)
{
    return s->ops->context_create(s, org_id, cluster_id, c);
}

int store_context_list(store_t *s, const char *org_id, const char *cluster_id, long offset, long limit,
                       store_context_page *out)
{
    return s->ops->context_list(s, org_id, cluster_id, offset, limit, out);
}

int store_context_update(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                         const store_context_patch *patch, store_context *out, enum store_cluster_part *missing)
{
    return s->ops->context_update(s, org_id, cluster_id, id, patch, out, missing);
}

int store_context_delete(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                         enum store_cluster_part *missing)
{
    return s->ops->context_delete(s, org_id, cluster_id, id, missing);
}

int store_conversation_create(store_t *s, const char *org_id, const char *cluster_id, store_conversation *c)
{
    return s->ops->conversation_create(s, org_id, cluster_id, c);
}

int store_conversation_get(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                           store_conversation *out, enum store_cluster_part *missing)
{
    return s->ops->conversation_get(s, org_id, cluster_id, id, out, missing);
}

int store_conversation_list(store_t *s, const char *org_id, const char *cluster_id, const char *status,
                            long offset, long limit, store_conversation_page *out)
{
    return s->ops->conversation_list(s, org_id, cluster_id, status, offset, limit, out);
}

int store_entity_register(store_t *s, store_entity *e, const store_entity_patch *patch, store_entity *out,
                          int *created)
{
    return s->ops->entity_register(s, e, patch, out, created);
}

int store_conversation_list_org(store_t *s, const char *org_id, const char *cluster_id, const char *user_id,
                                const char *status, long offset, long limit, store_conversation_page *out)
{
    return s->ops->conversation_list_org(s, org_id, cluster_id, user_id, status, offset, limit, out);
}

int store_conversation_locate(store_t *s, const char *org_id, const char *id, store_id cluster_id)
{
    return s->ops->conversation_locate(s, org_id, id, cluster_id);
}

int store_conversation_empty(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                             store_conversation *out, enum store_cluster_part *missing)
{
    return s->ops->conversation_empty(s, org_id, cluster_id, id, out, missing);
}

int store_conversation_update(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                              const store_conversation_patch *patch, store_conversation *out,
                              enum store_cluster_part *missing)
{
    return s->ops->conversation_update(s, org_id, cluster_id, id, patch, out, missing);
}

int store_conversation_delete(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                              enum store_cluster_part *missing)
{
    return s->ops->conversation_delete(s, org_id, cluster_id, id, missing);
}

int store_message_add(store_t *s, const char *org_id, const char *cluster_id, const char *conversation_id,
                      store_message *msgs, size_t n, enum store_cluster_part *missing)
{
    return s->ops->message_add(s, org_id, cluster_id, conversation_id, msgs, n, missing);
}

int store_message_finish(store_t *s, const char *id, const store_message_result *r, store_message *out)
{
    return s->ops->message_finish(s, id, r, out);
}

int store_message_list(store_t *s, const char *org_id, const char *cluster_id, const char *conversation_id,
                       const store_message_query *q, store_message_page *out, enum store_cluster_part *missing)
{
    return s->ops->message_list(s, org_id, cluster_id, conversation_id, q, out, missing);
}

int store_message_get(store_t *s, const char *org_id, const char *cluster_id, const char *conversation_id,
                      const char *id, store_message *out, enum store_cluster_part *missing)
{
    return s->ops->message_get(s, org_id, cluster_id, conversation_id, id, out, missing);
}

void store_entity_clear(store_entity *e)
{
    free(e->name);
    free(e->description);
    free(e->persona);
    free(e->model);
    memset(e, 0, sizeof *e);
}

void store_entity_page_free(store_entity_page *l)
{
    for (size_t i = 0; i < l->count; i++)
        store_entity_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

void store_cluster_clear(store_cluster *c)
{
    free(c->name);
    free(c->description);
    free(c->member_ids);
    memset(c, 0, sizeof *c);
}

void store_cluster_page_free(store_cluster_page *l)
{
    for (size_t i = 0; i < l->count; i++)
        store_cluster_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

void store_context_clear(store_context *c)
{
    free(c->name);
    free(c->content);
    memset(c, 0, sizeof *c);
}

void store_context_page_free(store_context_page *l)
{
    for (size_t i = 0; i < l->count; i++)
        store_context_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

void store_conversation_clear(store_conversation *c)
{
    free(c->title);
    memset(c, 0, sizeof *c);
}

void store_conversation_page_free(store_conversation_page *l)
{
    for (size_t i = 0; i < l->count; i++)
        store_conversation_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

void store_message_clear(store_message *m)
{
    free(m->content);
    free(m->entity_name);
    free(m->error);
    free(m->model);
    memset(m, 0, sizeof *m);
}

void store_message_page_free(store_message_page *l)
{
    for (size_t i = 0; i < l->count; i++)
        store_message_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* ---- prompt history (spec 002): workspaces, data sources, users, history ---- */

int store_workspace_create(store_t *s, store_workspace *w) { return s->ops->workspace_create(s, w); }

int store_workspace_get(store_t *s, const char *org_id, const char *id, store_workspace *out)
{
    return s->ops->workspace_get(s, org_id, id, out);
}

int store_workspace_list(store_t *s, const char *org_id, long offset, long limit, store_workspace_page *out)
{
    return s->ops->workspace_list(s, org_id, offset, limit, out);
}

int store_workspace_update(store_t *s, const char *org_id, const char *id, const store_workspace_patch *patch,
                           store_workspace *out)
{
    return s->ops->workspace_update(s, org_id, id, patch, out);
}

int store_workspace_delete(store_t *s, const char *org_id, const char *id)
{
    return s->ops->workspace_delete(s, org_id, id);
}

void store_workspace_clear(store_workspace *w)
{
    free(w->name);
    free(w->description);
    memset(w, 0, sizeof *w);
}

void store_workspace_page_free(store_workspace_page *l)
{
    for (size_t i = 0; i < l->count; i++)
        store_workspace_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

int store_data_source_create(store_t *s, store_data_source *d) { return s->ops->data_source_create(s, d); }

int store_data_source_get(store_t *s, const char *org_id, const char *id, store_data_source *out)
{
    return s->ops->data_source_get(s, org_id, id, out);
}

int store_data_source_list(store_t *s, const char *org_id, const char *workspace_id, long offset, long limit,
                           store_data_source_page *out)
{
    return s->ops->data_source_list(s, org_id, workspace_id, offset, limit, out);
}

int store_data_source_update(store_t *s, const char *org_id, const char *id, const store_data_source_patch *patch,
                             store_data_source *out, int *bad_workspace)
{
    return s->ops->data_source_update(s, org_id, id, patch, out, bad_workspace);
}

int store_data_source_delete(store_t *s, const char *org_id, const char *id)
{
    return s->ops->data_source_delete(s, org_id, id);
}

void store_data_source_clear(store_data_source *d)
{
    free(d->name);
    free(d->type);
    free(d->description);
    memset(d, 0, sizeof *d);
}

void store_data_source_page_free(store_data_source_page *l)
{
    for (size_t i = 0; i < l->count; i++)
        store_data_source_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

int store_prompt_refs_check(store_t *s, const char *org_id, const char *workspace_id, const char *data_source_ids,
                            const char **bad_field)
{
    return s->ops->prompt_refs_check(s, org_id, workspace_id, data_source_ids, bad_field);
}

int store_user_create(store_t *s, store_user *u) { return s->ops->user_create(s, u); }

int store_user_get(store_t *s, const char *org_id, const char *id, store_user *out)
{
    return s->ops->user_get(s, org_id, id, out);
}

int store_user_list(store_t *s, const char *org_id, long offset, long limit, store_user_page *out)
{
    return s->ops->user_list(s, org_id, offset, limit, out);
}

int store_user_update(store_t *s, const char *org_id, const char *id, const store_user_patch *patch,
                      store_user *out, const char **conflict)
{
    return s->ops->user_update(s, org_id, id, patch, out, conflict);
}

int store_user_delete(store_t *s, const char *org_id, const char *id) { return s->ops->user_delete(s, org_id, id); }

int store_user_key_create(store_t *s, const char *org_id, const char *user_id, const char *key_name,
                          const char *key_prefix, const unsigned char hash[STORE_KEY_HASH_LEN], store_key *out)
{
    return s->ops->user_key_create(s, org_id, user_id, key_name, key_prefix, hash, out);
}

void store_user_clear(store_user *u)
{
    free(u->email);
    free(u->name);
    memset(u, 0, sizeof *u);
}

void store_user_page_free(store_user_page *l)
{
    for (size_t i = 0; i < l->count; i++)
        store_user_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

int store_history_list(store_t *s, const char *org_id, const store_history_query *q, store_history_page *out)
{
    return s->ops->history_list(s, org_id, q, out);
}

int store_history_clear(store_t *s, const char *org_id, const char *user_id, long *deleted, long *prompts_deleted)
{
    long d, p;
    return s->ops->history_clear(s, org_id, user_id, deleted ? deleted : &d, prompts_deleted ? prompts_deleted : &p);
}

int store_num_resolve(store_t *s, const char *org_id, enum store_num_kind kind, int64_t num, store_id out)
{
    return s->ops->num_resolve(s, org_id, kind, num, out);
}

int store_bench_execution_insert_bulk(store_t *s, const store_execution *e, size_t n)
{
    return s->ops->bench_execution_insert_bulk(s, e, n);
}

void store_history_item_clear(store_history_item *h)
{
    free(h->name);
    free(h->description);
    free(h->prompt_text);
    free(h->tags);
    free(h->data_source_ids);
    free(h->data_source_nums);
    memset(h, 0, sizeof *h);
}

void store_history_page_free(store_history_page *l)
{
    for (size_t i = 0; i < l->count; i++)
        store_history_item_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* ---- end prompt history ---- */
