/*
 * store.c — picks the backend for a location and forwards each call to it,
 * plus the helpers that free what the store hands out (backend independent).
 */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_backend.h"

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
                         const char *user_id, const char *body, store_comment *out)
{
    return s->ops->comment_create(s, org_id, prompt_id, execution_id, user_id, body, out);
}

int store_comment_list(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                       long offset, long limit, store_comment_page *out)
{
    return s->ops->comment_list(s, org_id, prompt_id, execution_id, offset, limit, out);
}

int store_comment_delete(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                         const char *comment_id, const char *user_id, int is_admin)
{
    return s->ops->comment_delete(s, org_id, prompt_id, execution_id, comment_id, user_id, is_admin);
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
