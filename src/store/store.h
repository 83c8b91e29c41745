/*
 * store.h — the one storage interface. Nothing outside src/store/ writes SQL.
 *
 * A store is opened from a location ("path/to/file.db" or "sqlite:PATH"; a
 * "postgres://" backend can be added as one more file implementing
 * struct store_ops). Every function is thread-safe: the SQLite backend keeps
 * one writer connection behind a mutex (writes are short BEGIN IMMEDIATE
 * transactions) and a pool of reader connections (WAL lets them read while
 * the writer writes).
 *
 * Conventions:
 *  - Return STORE_OK (0), STORE_NOTFOUND, STORE_CONFLICT, or STORE_ERR (-1,
 *    an internal failure, logged by the backend).
 *  - Every resource query takes the caller's organization id: a row owned by
 *    another organization is STORE_NOTFOUND, exactly like a missing one.
 *  - Structs filled by the store own their heap strings; release them with the
 *    matching *_clear() / *_list_free(). Fixed-size id fields need no freeing.
 *  - Times are integer milliseconds since the Unix epoch (UTC).
 */
#ifndef PROMPTD_STORE_H
#define PROMPTD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/ids.h"

enum store_rc { STORE_ERR = -1, STORE_OK = 0, STORE_NOTFOUND = 1, STORE_CONFLICT = 2 };

typedef struct store store_t;
typedef char store_id[ID_LEN + 1];

/* ---- organizations, users, API keys ---- */

#define STORE_KEY_PREFIX_LEN 16 /* bytes of a key kept in clear, used for lookup */
#define STORE_KEY_HASH_LEN 32

typedef struct store_key {
    store_id id, org_id, user_id;
    char prefix[STORE_KEY_PREFIX_LEN + 1];
    unsigned char hash[STORE_KEY_HASH_LEN];
    char role[16];        /* the owning user's role: "admin" | "member" */
    char org_name[128];
    char user_email[256];
    char name[128];
    int64_t created_at, revoked_at; /* revoked_at 0 = active */
} store_key;

typedef struct store_key_list {
    store_key *items;
    size_t count;
} store_key_list;

/* Only when the store holds no organization at all: create organization
 * org_name, its admin user admin_email and the admin key (prefix, hash).
 * *created is 1 if it did so, 0 if the store was already bootstrapped. */
int store_bootstrap(store_t *s, const char *org_name, const char *admin_email, const char *key_prefix,
                    const unsigned char hash[STORE_KEY_HASH_LEN], int *created);

/* Create (if missing) organization org_name and its admin user, then add a key
 * for that admin. Fills *out with the new key's row. */
int store_key_create_for_org(store_t *s, const char *org_name, const char *key_name, const char *key_prefix,
                             const unsigned char hash[STORE_KEY_HASH_LEN], store_key *out);

/* Look an active or revoked key up by prefix (the caller checks hash and revoked_at). */
int store_key_find(store_t *s, const char *prefix, store_key *out);
/* Every key (org_name NULL) or one organization's keys, oldest first. */
int store_key_list_all(store_t *s, const char *org_name, store_key_list *out);
void store_key_list_free(store_key_list *l);
/* Mark revoked; STORE_NOTFOUND if no key has this prefix. Idempotent. */
int store_key_revoke(store_t *s, const char *prefix);

/* ---- prompts ---- */

typedef struct store_prompt {
    store_id id, org_id, user_id, current_version_id, published_version_id;
    char *name, *description, *content;
    char status[16]; /* "draft" | "published" | "archived" */
    long versions_count, likes_count, saves_count, followers_count;
    int64_t created_at, updated_at;
    /* the viewing user's own reactions */
    int liked, saved, followed;
} store_prompt;

void store_prompt_clear(store_prompt *p);

typedef struct store_prompt_page {
    store_prompt *items;
    size_t count;
    long total; /* rows matching the filter, all pages */
} store_prompt_page;

void store_prompt_page_free(store_prompt_page *l);

enum store_prompt_sort {
    STORE_SORT_CREATED_AT,
    STORE_SORT_UPDATED_AT,
    STORE_SORT_NAME,
    STORE_SORT_STATUS,
    STORE_SORT_LIKES,
};

typedef struct store_prompt_query {
    const char *status;  /* NULL = any */
    const char *search;  /* NULL = none; words matched (prefix) in name, description, content */
    enum store_prompt_sort sort;
    int sort_desc;
    long offset, limit;
} store_prompt_query;

/* Inserts the prompt and its version 1; fills p->id, current_version_id, times. */
int store_prompt_create(store_t *s, store_prompt *p);
int store_prompt_get(store_t *s, const char *org_id, const char *id, const char *viewer_id, store_prompt *out);
int store_prompt_list(store_t *s, const char *org_id, const char *viewer_id, const store_prompt_query *q,
                      store_prompt_page *out);

/* Fields left NULL are unchanged. A content different from the current one
 * adds a new version. Fills *out with the updated row. */
typedef struct store_prompt_patch {
    const char *name, *description, *content, *status;
} store_prompt_patch;
int store_prompt_update(store_t *s, const char *org_id, const char *id, const char *user_id,
                        const store_prompt_patch *patch, store_prompt *out);
int store_prompt_delete(store_t *s, const char *org_id, const char *id);

typedef struct store_version {
    store_id id, prompt_id, user_id;
    long number;
    char *content;
    int64_t created_at, published_at; /* published_at 0 = never */
} store_version;

typedef struct store_version_page {
    store_version *items;
    size_t count;
    long total;
} store_version_page;

void store_version_clear(store_version *v);
void store_version_page_free(store_version_page *l);
/* Newest first. */
int store_version_list(store_t *s, const char *org_id, const char *prompt_id, long offset, long limit,
                           store_version_page *out);
int store_version_get(store_t *s, const char *org_id, const char *prompt_id, const char *version_id,
                      store_version *out);
/* Mark the version published and make it the prompt's published version
 * (prompt status "published"; content stays the latest version). */
int store_version_publish(store_t *s, const char *org_id, const char *prompt_id, const char *version_id);

/* ---- reactions (like, save, follow) ---- */

enum store_target { STORE_TARGET_PROMPT, STORE_TARGET_EXECUTION };
enum store_reaction { STORE_REACT_LIKE, STORE_REACT_SAVE, STORE_REACT_FOLLOW };

/* Set (on=1) or clear (on=0) the user's reaction; the target's counter moves
 * only when the state changes, so repeats are harmless. STORE_NOTFOUND when the
 * target is not in org_id. */
int store_reaction_set(store_t *s, const char *org_id, const char *user_id, enum store_target target,
                       const char *target_id, enum store_reaction kind, int on);

/* ---- executions ---- */

typedef struct store_execution {
    store_id id, org_id, user_id, api_key_id, prompt_id, version_id; /* "" when none */
    long version_number;   /* 0 when none */
    char source[16];       /* "prompt" | "chat" | "v1" */
    char *rendered_prompt; /* the text sent (for chat: the last user message) */
    char *messages;        /* JSON array sent to the model, or NULL */
    char *variables;       /* JSON object text */
    char *metadata;        /* JSON object text */
    char *model;
    double temperature;
    int has_temperature;
    long max_tokens; /* 0 = not set */
    int stream;
    char status[16]; /* queued | processing | completed | failed | cancelled */
    char *output;
    char *error; /* NULL unless failed */
    long prompt_tokens, completion_tokens, total_tokens;
    long duration_ms, attempts;
    long likes_count, saves_count, comments_count;
    int64_t created_at, finished_at, updated_at;
    int liked, saved; /* the viewing user's */
} store_execution;

void store_execution_clear(store_execution *e);

typedef struct store_execution_page {
    store_execution *items;
    size_t count;
    long total;
} store_execution_page;

void store_execution_page_free(store_execution_page *l);

/* Insert a new execution (id, times filled in). Strings may be NULL (stored empty). */
int store_execution_create(store_t *s, store_execution *e);

/* The outcome of a run, written once when it ends. */
typedef struct store_execution_result {
    const char *status; /* completed | failed | cancelled */
    const char *model;  /* model that answered; NULL keeps the requested one */
    const char *output;
    size_t output_len;
    const char *error;
    long prompt_tokens, completion_tokens, total_tokens;
    long duration_ms, attempts;
} store_execution_result;

/* Finish an execution that is still queued or processing. STORE_CONFLICT if it
 * already reached a terminal state (so each ends exactly once). */
int store_execution_finish(store_t *s, const char *id, const store_execution_result *r);

/* prompt_id: when not NULL the execution must belong to that prompt. */
int store_execution_get(store_t *s, const char *org_id, const char *prompt_id, const char *id,
                        const char *viewer_id, store_execution *out);

enum store_execution_sort { STORE_ESORT_CREATED_AT, STORE_ESORT_DURATION, STORE_ESORT_TOKENS, STORE_ESORT_STATUS };

typedef struct store_execution_query {
    const char *prompt_id; /* NULL = all prompts (and chat requests) */
    const char *status;    /* NULL = any */
    enum store_execution_sort sort;
    int sort_desc;
    long offset, limit;
} store_execution_query;

/* STORE_NOTFOUND when q->prompt_id is set and that prompt is not in org_id. */
int store_execution_list(store_t *s, const char *org_id, const char *viewer_id, const store_execution_query *q,
                         store_execution_page *out);

/* ---- comments on executions ---- */

typedef struct store_comment {
    store_id id, execution_id, user_id;
    char *body;
    char user_email[256];
    int64_t created_at, updated_at;
} store_comment;

typedef struct store_comment_page {
    store_comment *items;
    size_t count;
    long total;
} store_comment_page;

void store_comment_clear(store_comment *c);
void store_comment_page_free(store_comment_page *l);
/* The execution must be in org_id (and belong to prompt_id when given). Bumps comments_count. */
int store_comment_create(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                         const char *user_id, const char *body, store_comment *out);
/* Oldest first. */
int store_comment_list(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                       long offset, long limit, store_comment_page *out);
/* Only the author or an admin may delete: STORE_NOTFOUND otherwise too (no leak). */
int store_comment_delete(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                         const char *comment_id, const char *user_id, int is_admin);

/* ---- lifecycle ---- */

/* Open (creating if needed) and migrate to the latest schema. */
int store_open(const char *location, store_t **out, char *err, size_t errlen);
void store_close(store_t *s);
/* Schema version after migration. */
int store_schema_version(store_t *s);

#endif
