/*
 * store_backend.h — INTERNAL: what a storage backend implements.
 *
 * store.c forwards every public store_* call through these function pointers,
 * so a new backend (PostgreSQL) is one more file that fills a struct store_ops
 * and embeds struct store as the first member of its own state.
 */
#ifndef PROMPTD_STORE_BACKEND_H
#define PROMPTD_STORE_BACKEND_H

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
    int (*execution_get)(store_t *s, const char *org_id, const char *prompt_id, const char *id,
                         const char *viewer_id, store_execution *out);
    int (*execution_list)(store_t *s, const char *org_id, const char *viewer_id, const store_execution_query *q,
                          store_execution_page *out);
    int (*comment_create)(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                          const char *user_id, const char *body, store_comment *out);
    int (*comment_list)(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                        long offset, long limit, store_comment_page *out);
    int (*comment_delete)(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                          const char *comment_id, const char *user_id, int is_admin);
};

struct store {
    const struct store_ops *ops;
};

/* Backends' constructors. */
int store_sqlite_open(const char *path, store_t **out, char *err, size_t errlen);

#endif
