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

/*
 * Why a store call failed. STORE_ERR says only that it failed; the kind of the calling
 * thread's most recent failure says whether the caller should blame itself, wait, or give
 * up: the API answers 503 with Retry-After for BUSY, 507 for FULL, 503 for UNAVAILABLE and
 * 500 only for OTHER. Thread-local; store_failure_reset() clears it (do so per request).
 */
enum store_failure {
    STORE_FAIL_NONE = 0,
    STORE_FAIL_BUSY,        /* the write lock was not had in time (another process holds it) */
    STORE_FAIL_FULL,        /* the disk (or the database's size limit) is full */
    STORE_FAIL_UNAVAILABLE, /* the file cannot be written at all (I/O error, read-only) */
    STORE_FAIL_OTHER        /* anything else: a bug or corruption */
};
enum store_failure store_last_failure(void);
void store_failure_reset(void);
/* A few words for a failure kind ("disk full", ...), static storage. */
const char *store_failure_text(enum store_failure f);

/*
 * How long the calling thread may wait to start a write: for the store's own writer (held by
 * another thread of this process) and for the database's lock (held by another process), in
 * milliseconds; -1 (the default) = as long as the store's busy timeout (5 s). Threads that
 * must not stall, such as the HTTP threads, set a short limit: a write that cannot start in
 * time fails at once with STORE_FAIL_BUSY. Thread-local.
 */
void store_thread_wait_limit(long ms);

/* Whether the store is refusing writes now: the last write transaction failed as BUSY,
 * FULL or UNAVAILABLE (why, and since when), until one succeeds again. For /health. */
typedef struct store_write_state {
    int refusing;
    enum store_failure why;
    int64_t since_ms; /* Unix ms of the first refusal in a row */
} store_write_state;
void store_write_state_get(store_t *s, store_write_state *out);
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
    long rate_limit_per_minute;     /* -1 = the server's default, 0 = unlimited */
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

/* Look an active or revoked key up by prefix (the caller checks hash and
 * revoked_at). STORE_NOTFOUND when no key has it: *out then holds a decoy,
 * another key's row read by the same work (zeroed when there are no keys),
 * so that the caller can compare its hash too and a miss takes as long as
 * a hit. Never use a decoy for anything but that comparison. */
int store_key_find(store_t *s, const char *prefix, store_key *out);
/* Every key (org_name NULL) or one organization's keys (by name or id), oldest first. */
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
    /* spec 002 (migration 0005): on create, workspace_id ("" = none), tags and
     * data_source_ids (JSON array texts, NULL = none) are read from here; the
     * caller checks them first with store_prompt_refs_check(). Filled on get/list. */
    store_id workspace_id;
    char *tags, *data_source_ids;
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
    const char *workspace_id;    /* NULL = unchanged, "" = none */
    const char *tags;            /* JSON array text; NULL = unchanged */
    const char *data_source_ids; /* JSON array text of ids; NULL = unchanged */
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

enum store_target { STORE_TARGET_PROMPT, STORE_TARGET_EXECUTION, STORE_TARGET_COMMENT };
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
    int async;        /* 1: run by the queue's dispatcher */
    store_id batch_id; /* "" when none */
    long retries;     /* times it was retried (earlier attempts in store_execution_attempts) */
    int64_t started_at;
    char *tool_calls; /* JSON array of the tool calls the model answered with, or NULL */
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
    const char *tool_calls; /* JSON array text, or NULL */
} store_execution_result;

/* Finish an execution that is still queued or processing. STORE_CONFLICT if it
 * already reached a terminal state (so each ends exactly once). */
int store_execution_finish(store_t *s, const char *id, const store_execution_result *r);

/* One write of a group commit: insert a new execution, or finish one. */
typedef struct store_exec_write {
    store_execution *create;              /* insert this row (id, status set); NULL: finish */
    const char *finish_id;                /* the execution to finish with *finish */
    const store_execution_result *finish;
    int rc; /* out: STORE_OK; STORE_CONFLICT (finish: not queued/processing, or no such row); STORE_ERR */
} store_exec_write;

/* Apply n writes in order in ONE transaction (core/recorder.c batches the
 * executions of sync requests this way). STORE_OK when it committed, each
 * op's own outcome in its rc; STORE_ERR when the transaction failed and
 * nothing was written. */
int store_executions_write(store_t *s, store_exec_write *ops, size_t n);

/* The execution writer (core/recorder.c) has nothing queued: a moment for the
 * store's deferred upkeep that only a writer can finish without making anyone
 * wait. SQLite: the last few frames of a checkpoint, so that the WAL can start
 * over (sqlite.c, "checkpoints"). Cheap when nothing is due. */
void store_writer_idle(store_t *s);

/* prompt_id: when not NULL the execution must belong to that prompt. */
int store_execution_get(store_t *s, const char *org_id, const char *prompt_id, const char *id,
                        const char *viewer_id, store_execution *out);

enum store_execution_sort { STORE_ESORT_CREATED_AT, STORE_ESORT_DURATION, STORE_ESORT_TOKENS, STORE_ESORT_STATUS };

typedef struct store_execution_query {
    const char *prompt_id; /* NULL = all prompts (and chat requests) */
    const char *version_id; /* NULL = any version; else only runs of that version */
    const char *user_id;   /* NULL = every user */
    int64_t since;         /* 0 = no lower bound on created_at */
    const char *status;    /* NULL = any */
    enum store_execution_sort sort;
    int sort_desc;
    long offset, limit;
} store_execution_query;

/* STORE_NOTFOUND when q->prompt_id is set and that prompt is not in org_id. */
int store_execution_list(store_t *s, const char *org_id, const char *viewer_id, const store_execution_query *q,
                         store_execution_page *out);

/* ---- comments on executions and on prompts ----
 *
 * A comment's target is an execution (execution_id given; it must be of
 * prompt_id when that is given too) or, with execution_id NULL, the prompt
 * prompt_id itself. parent_id makes it a reply to a comment on the same
 * target; deleting a comment deletes its replies (and their reactions). */

typedef struct store_comment {
    store_id id, execution_id, prompt_id, parent_id, user_id; /* execution_id or prompt_id is "" */
    char *body;
    char user_email[256];
    long likes_count, saves_count, followers_count, replies_count;
    int64_t created_at, updated_at;
} store_comment;

/* Which part of a comment's path was not found. */
enum store_comment_part { STORE_COMMENT_TARGET, STORE_COMMENT_ONE, STORE_COMMENT_PARENT };

typedef struct store_comment_page {
    store_comment *items;
    size_t count;
    long total;
} store_comment_page;

void store_comment_clear(store_comment *c);
void store_comment_page_free(store_comment_page *l);
/* The target must be in org_id; an execution's comments_count counts it.
 * STORE_NOTFOUND with *missing naming the target or the parent. */
int store_comment_create(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                         const char *parent_id, const char *user_id, const char *body, store_comment *out,
                         enum store_comment_part *missing);
/* STORE_NOTFOUND with *missing (when not NULL) naming the target or the comment. */
int store_comment_get(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                      const char *comment_id, store_comment *out, enum store_comment_part *missing);
/* Oldest first; parent_id NULL = every comment on the target (replies too),
 * else the replies to that comment. */
int store_comment_list(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                       const char *parent_id, long offset, long limit, store_comment_page *out);
/* A new body; only the author or an admin (STORE_NOTFOUND otherwise too). */
int store_comment_update(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                         const char *comment_id, const char *user_id, int is_admin, const char *body,
                         store_comment *out);
/* Only the author or an admin may delete: STORE_NOTFOUND otherwise too (no leak). */
int store_comment_delete(store_t *s, const char *org_id, const char *prompt_id, const char *execution_id,
                         const char *comment_id, const char *user_id, int is_admin);

/* ---- entities, clusters, contexts, conversations, messages (spec 001) ----
 *
 * An entity is an AI "digital twin" (name, persona = its system prompt, model).
 * A cluster groups entities (members) and holds prompts, contexts and
 * conversations; deleting a cluster removes its links, contexts and
 * conversations (with their messages), never the entities or prompts.
 * Functions on something inside a cluster say which part was not found
 * through *missing (may be NULL) when they return STORE_NOTFOUND. */

enum store_cluster_part {
    STORE_PART_CLUSTER,
    STORE_PART_ENTITY,
    STORE_PART_PROMPT,
    STORE_PART_CONTEXT,
    STORE_PART_CONVERSATION,
    STORE_PART_MESSAGE,
};

typedef struct store_entity {
    store_id id, org_id, user_id;
    char *name, *description, *persona;
    char *model; /* NULL = the default model */
    long clusters_count;
    int64_t created_at, updated_at;
} store_entity;

typedef struct store_entity_page {
    store_entity *items;
    size_t count;
    long total;
} store_entity_page;

void store_entity_clear(store_entity *e);
void store_entity_page_free(store_entity_page *l);
/* Inserts; fills e->id and the times (name required; other strings may be NULL). */
int store_entity_create(store_t *s, store_entity *e);
int store_entity_get(store_t *s, const char *org_id, const char *id, store_entity *out);
/* Oldest first. */
int store_entity_list(store_t *s, const char *org_id, long offset, long limit, store_entity_page *out);
/* Fields left NULL are unchanged; clear_model sets the model back to the default. */
typedef struct store_entity_patch {
    const char *name, *description, *persona, *model;
    int clear_model;
} store_entity_patch;
/* Register an entity under a caller-chosen id (the Jarvis SDK's
 * POST /entities/:id/register), in one transaction: a new id is inserted
 * from e (name required, *created = 1); an id already in e->org_id is
 * changed by patch as store_entity_update does (*created = 0). An id of
 * another organization is STORE_NOTFOUND (no leak). Fills *out. */
int store_entity_register(store_t *s, store_entity *e, const store_entity_patch *patch, store_entity *out,
                          int *created);
int store_entity_update(store_t *s, const char *org_id, const char *id, const store_entity_patch *patch,
                        store_entity *out);
/* Also removes the entity from every cluster. */
int store_entity_delete(store_t *s, const char *org_id, const char *id);

typedef struct store_cluster {
    store_id id, org_id, user_id;
    char *name, *description;
    long members_count, prompts_count, contexts_count, conversations_count;
    int64_t created_at, updated_at;
    store_id *member_ids; /* filled by store_cluster_get (oldest member first), else NULL */
    size_t member_ids_count;
} store_cluster;

typedef struct store_cluster_page {
    store_cluster *items;
    size_t count;
    long total;
} store_cluster_page;

void store_cluster_clear(store_cluster *c);
void store_cluster_page_free(store_cluster_page *l);
int store_cluster_create(store_t *s, store_cluster *c);
int store_cluster_get(store_t *s, const char *org_id, const char *id, store_cluster *out);
/* Oldest first; member_ids stay NULL. */
/* Oldest first; user_id NULL = every cluster of the organization, else only
 * the clusters that user created (the Jarvis SDK's /users/:uid/clusters). */
int store_cluster_list(store_t *s, const char *org_id, const char *user_id, long offset, long limit,
                       store_cluster_page *out);
typedef struct store_cluster_patch {
    const char *name, *description;
} store_cluster_patch;
int store_cluster_update(store_t *s, const char *org_id, const char *id, const store_cluster_patch *patch,
                         store_cluster *out);
int store_cluster_delete(store_t *s, const char *org_id, const char *id);

/* Add (on=1) or remove (on=0) a member; repeats change nothing. Both the
 * cluster and the entity must be in org_id. */
int store_cluster_member_set(store_t *s, const char *org_id, const char *cluster_id, const char *entity_id, int on,
                             enum store_cluster_part *missing);
/* The member entities, oldest membership first (limit < 0: all of them). */
int store_cluster_member_list(store_t *s, const char *org_id, const char *cluster_id, long offset, long limit,
                              store_entity_page *out);
/* The entity if it is a member (STORE_NOTFOUND with *missing ENTITY when not). */
int store_cluster_member_get(store_t *s, const char *org_id, const char *cluster_id, const char *entity_id,
                             store_entity *out, enum store_cluster_part *missing);

/* Assign (on=1) or unassign (on=0) a prompt; repeats change nothing. */
int store_cluster_prompt_set(store_t *s, const char *org_id, const char *cluster_id, const char *prompt_id, int on,
                             enum store_cluster_part *missing);
/* The assigned prompts, oldest assignment first (the viewer's reactions are not filled). */
int store_cluster_prompt_list(store_t *s, const char *org_id, const char *cluster_id, long offset, long limit,
                              store_prompt_page *out);

typedef struct store_context {
    store_id id, cluster_id;
    char *name, *content;
    int64_t created_at, updated_at;
} store_context;

typedef struct store_context_page {
    store_context *items;
    size_t count;
    long total;
} store_context_page;

void store_context_clear(store_context *c);
void store_context_page_free(store_context_page *l);
/* c->name may be NULL (stored empty). Fills id and times. */
int store_context_create(store_t *s, const char *org_id, const char *cluster_id, store_context *c);
/* Oldest first (limit < 0: all of them). */
int store_context_list(store_t *s, const char *org_id, const char *cluster_id, long offset, long limit,
                       store_context_page *out);
typedef struct store_context_patch {
    const char *name, *content;
} store_context_patch;
int store_context_update(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                         const store_context_patch *patch, store_context *out, enum store_cluster_part *missing);
int store_context_delete(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                         enum store_cluster_part *missing);

typedef struct store_conversation {
    store_id id, cluster_id, user_id;
    char *title;
    char status[16]; /* "active" | "archived" */
    long messages_count;
    int64_t created_at, updated_at;
} store_conversation;

typedef struct store_conversation_page {
    store_conversation *items;
    size_t count;
    long total;
} store_conversation_page;

void store_conversation_clear(store_conversation *c);
void store_conversation_page_free(store_conversation_page *l);
/* Fills id, status "active", times. */
int store_conversation_create(store_t *s, const char *org_id, const char *cluster_id, store_conversation *c);
int store_conversation_get(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                           store_conversation *out, enum store_cluster_part *missing);
/* Newest first; status NULL = any. */
int store_conversation_list(store_t *s, const char *org_id, const char *cluster_id, const char *status,
                            long offset, long limit, store_conversation_page *out);
/* The conversations of the organization's clusters, newest first; each filter
 * NULL = any (a cluster_id of another organization simply matches nothing). */
int store_conversation_list_org(store_t *s, const char *org_id, const char *cluster_id, const char *user_id,
                                const char *status, long offset, long limit, store_conversation_page *out);
/* The cluster a conversation of org_id belongs to (ids are unique across
 * clusters), for paths that name the conversation alone. STORE_NOTFOUND when
 * no cluster of org_id has it. */
int store_conversation_locate(store_t *s, const char *org_id, const char *id, store_id cluster_id);
/* Delete every message of the conversation (it stays, messages_count 0) and
 * fill *out with it. Replies still running find their row gone and are dropped. */
int store_conversation_empty(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                             store_conversation *out, enum store_cluster_part *missing);
typedef struct store_conversation_patch {
    const char *title, *status;
} store_conversation_patch;
int store_conversation_update(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                              const store_conversation_patch *patch, store_conversation *out,
                              enum store_cluster_part *missing);
int store_conversation_delete(store_t *s, const char *org_id, const char *cluster_id, const char *id,
                              enum store_cluster_part *missing);

typedef struct store_message {
    store_id id, conversation_id, user_id, entity_id, execution_id; /* "" when none */
    char role[16];   /* "user" | "assistant" | "system" */
    char status[16]; /* "processing" | "completed" | "failed" */
    char *content;
    char *entity_name; /* NULL unless an entity wrote it */
    char *error;       /* NULL unless failed */
    char *model;       /* NULL unless a model wrote it */
    long prompt_tokens, completion_tokens, total_tokens, duration_ms;
    int64_t created_at, updated_at;
} store_message;

typedef struct store_message_page {
    store_message *items;
    size_t count;
    long total;
} store_message_page;

void store_message_clear(store_message *m);
void store_message_page_free(store_message_page *l);
/* Add n messages to a conversation in one transaction, in this order (each
 * gets id and times; an empty status means "completed"); messages_count moves
 * by n. STORE_CONFLICT when the conversation is archived. */
int store_message_add(store_t *s, const char *org_id, const char *cluster_id, const char *conversation_id,
                      store_message *msgs, size_t n, enum store_cluster_part *missing);

/* The outcome of a reply that was added as "processing". */
typedef struct store_message_result {
    const char *status; /* completed | failed */
    const char *content;
    size_t content_len;
    const char *error, *model, *execution_id; /* NULL = none / unchanged */
    long prompt_tokens, completion_tokens, total_tokens, duration_ms;
} store_message_result;
/* Finish a "processing" message; STORE_CONFLICT if it already finished, STORE_NOTFOUND
 * if it is gone (its conversation was deleted meanwhile). On STORE_OK fills *out
 * (when not NULL) with the finished row. */
int store_message_finish(store_t *s, const char *id, const store_message_result *r, store_message *out);

typedef struct store_message_query {
    long offset, limit;
    int latest; /* 1: the newest `limit` messages (offset ignored), still oldest first */
} store_message_query;
/* Oldest first. */
int store_message_list(store_t *s, const char *org_id, const char *cluster_id, const char *conversation_id,
                       const store_message_query *q, store_message_page *out, enum store_cluster_part *missing);
int store_message_get(store_t *s, const char *org_id, const char *cluster_id, const char *conversation_id,
                      const char *id, store_message *out, enum store_cluster_part *missing);

/* ---- the durable queue of async executions ---- */

/* What a worker needs to run a claimed execution. */
typedef struct store_job {
    store_id id;
    char *messages; /* JSON array text */
    char *model;
    double temperature;
    int has_temperature;
    long max_tokens;
    int stream;
} store_job;

void store_jobs_free(store_job *jobs, size_t n);

/* Claim up to max async executions that are queued, or processing with an
 * expired lease (their worker died), oldest first: they become processing,
 * leased to owner until lease_until. *jobs is malloc'd (store_jobs_free). */
int store_queue_claim(store_t *s, const char *owner, int64_t now, int64_t lease_until, int max, store_job **jobs,
                      size_t *n);
/* Extend every lease owner holds. */
int store_queue_renew(store_t *s, const char *owner, int64_t lease_until);

typedef struct store_job_result {
    const char *id;
    int release; /* 1: give the job back (queued again, lease dropped) instead of finishing it */
    store_execution_result r;
} store_job_result;

/* Finish (or release) many claimed jobs in ONE transaction (group commit).
 * Fenced: a row is changed only while it is still processing under owner's
 * lease, so a job reclaimed after a lost lease ends exactly once. *applied
 * counts the rows changed. */
int store_queue_finish_many(store_t *s, const char *owner, const store_job_result *res, size_t n, size_t *applied);

/* Cancel a queued or processing async execution (its result, if one comes,
 * is then dropped). owner_id: when not NULL, only that user's executions
 * (others are STORE_NOTFOUND). STORE_CONFLICT when it already ended or runs
 * synchronously (its caller is waiting for it). */
int store_execution_cancel(store_t *s, const char *org_id, const char *id, const char *owner_id);

/* Run a failed or cancelled execution again: its current outcome is kept as
 * an earlier attempt and it is queued (async) again. owner_id as for cancel.
 * STORE_CONFLICT when it is not failed or cancelled. */
int store_execution_retry(store_t *s, const char *org_id, const char *id, const char *owner_id);

typedef struct store_attempt {
    long number;
    char status[16];
    char *output, *error, *model;
    long prompt_tokens, completion_tokens, total_tokens, duration_ms;
    int64_t started_at, finished_at;
} store_attempt;

void store_attempts_free(store_attempt *a, size_t n);
/* Earlier attempts of an execution, oldest first (empty when never retried). */
int store_execution_attempts(store_t *s, const char *org_id, const char *id, store_attempt **out, size_t *n);

/* ---- batches ---- */

typedef struct store_batch {
    store_id id, user_id;
    long total, queued, processing, completed, failed, cancelled;
    int64_t created_at;
} store_batch;

/* Insert a batch and its n executions (async, queued) in one transaction.
 * Fills each item's id and the batch id. */
int store_batch_create(store_t *s, const char *org_id, const char *user_id, store_execution *items, size_t n,
                       store_id batch_id);
int store_batch_get(store_t *s, const char *org_id, const char *id, store_batch *out);

/* ---- idempotency keys ---- */

enum store_idem_state { STORE_IDEM_NEW = 0, STORE_IDEM_REPLAY, STORE_IDEM_IN_PROGRESS, STORE_IDEM_MISMATCH };

/* Keys are scoped to (org_id, caller): caller names who sent the request (the
 * api/ layer passes "<user id>/<api key id>"), so two callers of one
 * organization choosing the same key never share an answer. */
#define STORE_IDEM_CALLER_LEN (2 * sizeof(store_id))

/* Reserve (org_id, caller, key) for a request whose body hashes to hash, or
 * find the earlier use: REPLAY fills *status_code and *response (malloc'd)
 * with the first answer; MISMATCH when the key was used with another body. */
int store_idem_begin(store_t *s, const char *org_id, const char *caller, const char *key, const char *user_id,
                     const unsigned char hash[32], enum store_idem_state *state, int *status_code, char **response);
/* Record the answer of a reserved key. */
int store_idem_finish(store_t *s, const char *org_id, const char *caller, const char *key, int status_code,
                      const char *response);
/* Drop a reservation whose request was not accepted. */
int store_idem_abort(store_t *s, const char *org_id, const char *caller, const char *key);

/* ---- raw prompts (v1) ---- */

/* The prompt holding this exact raw text for this user (found by raw_hash), or
 * a new one named name. Fills *out. */
int store_prompt_ensure_raw(store_t *s, const char *org_id, const char *user_id, const char *name, const char *text,
                            const char *raw_hash, store_prompt *out);

/* ---- prompt history (spec 002): workspaces, data sources, users, history ----
 *
 * Workspaces and data sources are organization-scoped (a data source may
 * belong to one workspace; deleting the workspace detaches it, and detaches
 * the prompts in it). Names are unique per organization (STORE_CONFLICT).
 * Prompts carry a workspace, tags and data sources (store_prompt fields) and a
 * copy of their latest execution kept by triggers, which the history reads. */

typedef struct store_workspace {
    store_id id, org_id;
    int64_t num; /* the organization's number for it (migration 0008: see "integer ids" below) */
    char *name, *description;
    long prompts_count, data_sources_count;
    int64_t created_at, updated_at;
} store_workspace;

typedef struct store_workspace_page {
    store_workspace *items;
    size_t count;
    long total;
} store_workspace_page;

void store_workspace_clear(store_workspace *w);
void store_workspace_page_free(store_workspace_page *l);
/* In: org_id, name, description (may be NULL). Fills id and times. */
int store_workspace_create(store_t *s, store_workspace *w);
int store_workspace_get(store_t *s, const char *org_id, const char *id, store_workspace *out);
/* In number order: the order they were created in (numbers are given in commit order). */
int store_workspace_list(store_t *s, const char *org_id, long offset, long limit, store_workspace_page *out);
typedef struct store_workspace_patch {
    const char *name, *description; /* NULL = unchanged */
} store_workspace_patch;
int store_workspace_update(store_t *s, const char *org_id, const char *id, const store_workspace_patch *patch,
                           store_workspace *out);
int store_workspace_delete(store_t *s, const char *org_id, const char *id);

typedef struct store_data_source {
    store_id id, org_id, workspace_id; /* workspace_id "" when none */
    int64_t num, workspace_num;        /* workspace_num 0 when none */
    char *name, *type, *description;
    long prompts_count;
    int64_t created_at, updated_at;
} store_data_source;

typedef struct store_data_source_page {
    store_data_source *items;
    size_t count;
    long total;
} store_data_source_page;

void store_data_source_clear(store_data_source *d);
void store_data_source_page_free(store_data_source_page *l);
/* In: org_id, workspace_id ("" = none), name, type, description. STORE_NOTFOUND
 * when the workspace is not in org_id. */
int store_data_source_create(store_t *s, store_data_source *d);
int store_data_source_get(store_t *s, const char *org_id, const char *id, store_data_source *out);
/* In number order (creation order); workspace_id NULL = every data source of the organization. */
int store_data_source_list(store_t *s, const char *org_id, const char *workspace_id, long offset, long limit,
                           store_data_source_page *out);
typedef struct store_data_source_patch {
    const char *name, *type, *description; /* NULL = unchanged */
    const char *workspace_id;              /* NULL = unchanged, "" = detach */
} store_data_source_patch;
/* STORE_NOTFOUND with *bad_workspace = 1 when patch->workspace_id is not in org_id. */
int store_data_source_update(store_t *s, const char *org_id, const char *id, const store_data_source_patch *patch,
                             store_data_source *out, int *bad_workspace);
int store_data_source_delete(store_t *s, const char *org_id, const char *id);

/* Check the references a prompt is given: workspace_id (NULL or "" = none)
 * and data_source_ids (a JSON array text of ids, or NULL) must all be in
 * org_id. STORE_NOTFOUND names the bad one in *bad_field ("workspace_id" or
 * "data_source_ids"). */
int store_prompt_refs_check(store_t *s, const char *org_id, const char *workspace_id, const char *data_source_ids,
                            const char **bad_field);

/* Users of an organization. Email is unique per organization. */
typedef struct store_user {
    store_id id, org_id;
    int64_t num;
    int64_t history_cleared_at; /* the user's last history clear; 0 = never */
    char *email, *name;
    char role[16]; /* "admin" | "member" */
    long keys_count; /* active API keys */
    int64_t created_at, updated_at;
} store_user;

typedef struct store_user_page {
    store_user *items;
    size_t count;
    long total;
} store_user_page;

void store_user_clear(store_user *u);
void store_user_page_free(store_user_page *l);
/* In: org_id, email, name (may be NULL), role. STORE_CONFLICT on a taken email. */
int store_user_create(store_t *s, store_user *u);
int store_user_get(store_t *s, const char *org_id, const char *id, store_user *out);
/* In number order (creation order). */
int store_user_list(store_t *s, const char *org_id, long offset, long limit, store_user_page *out);
typedef struct store_user_patch {
    const char *email, *name, *role; /* NULL = unchanged */
} store_user_patch;
/* STORE_CONFLICT with *conflict = "email" (taken) or "role" (it would leave
 * the organization without an admin). */
int store_user_update(store_t *s, const char *org_id, const char *id, const store_user_patch *patch,
                      store_user *out, const char **conflict);
/* Deletes the user and their API keys (which stop working at once); their
 * prompts and executions stay with the organization. STORE_CONFLICT when the
 * user is the organization's last admin. */
int store_user_delete(store_t *s, const char *org_id, const char *id);
/* A new API key (prefix, hash) for a user of org_id; fills *out. */
int store_user_key_create(store_t *s, const char *org_id, const char *user_id, const char *key_name,
                          const char *key_prefix, const unsigned char hash[STORE_KEY_HASH_LEN], store_key *out);

/* History: one row per prompt with its latest execution. */
typedef struct store_history_item {
    store_id id, user_id, workspace_id, last_execution_id; /* "" when none */
    int64_t num;           /* the prompt's number */
    int64_t user_num;      /* 0 when the owner was deleted (the prompt stays with the organization) */
    int64_t workspace_num; /* 0 when none */
    char *name, *description, *prompt_text;
    char *tags;            /* JSON array text of strings */
    char *data_source_ids; /* JSON array text of ids */
    char *data_source_nums; /* JSON array text of the same data sources' numbers, ascending */
    char status[16];        /* the latest execution's status, or "draft" (never executed) */
    char prompt_status[16]; /* the prompt's own: draft | published | archived */
    long execution_time_ms; /* the latest execution's duration (0 for a draft) */
    int64_t timestamp;      /* the latest execution's created_at, or the prompt's created_at for a draft */
    int64_t last_executed_at; /* 0 = never */
    int64_t created_at, updated_at;
} store_history_item;

typedef struct store_history_page {
    store_history_item *items;
    size_t count;
    long total;
} store_history_page;

void store_history_item_clear(store_history_item *h);
void store_history_page_free(store_history_page *l);

enum store_history_sort {
    STORE_HSORT_TIMESTAMP,
    STORE_HSORT_STATUS,
    STORE_HSORT_DURATION,
    STORE_HSORT_NAME,
    STORE_HSORT_CREATED_AT,
};

typedef struct store_history_query {
    const char *user_id;        /* owner of the prompts; NULL = every user of the organization */
    const char *workspace_id;   /* NULL = any */
    const char *data_source_id; /* NULL = any */
    const char *status;         /* latest execution status or "draft"; NULL = any */
    const char *search;         /* words matched (prefix) in name or text through FTS5; NULL = none */
    int64_t since;              /* rows whose timestamp >= since; 0 = all time */
    int after_clear;            /* 1: only rows whose timestamp is at or after their owner's last
                                   history clear (the history); 0: every row (the prompt list) */
    enum store_history_sort sort;
    int sort_desc;
    long offset, limit;
} store_history_query;

/* The filters are taken as given (the caller checks that the ids it passes are in org_id). */
int store_history_list(store_t *s, const char *org_id, const store_history_query *q, store_history_page *out);
/* Clear a user's history, in one transaction:
 *  - delete their finished executions (completed, failed, cancelled) with
 *    their comments, attempts and reactions; queued and running ones stay
 *    (the queue or a waiting client still owns them);
 *  - delete the prompts that their v1 raw-text submissions created (raw_hash
 *    set, owned by them) that nothing else holds on to: no execution left
 *    (anyone's), never changed since created (one version, updated_at =
 *    created_at), still a draft, no workspace, tags or data sources, in no
 *    cluster, with no reaction. A prompt made a stored prompt since (e.g.
 *    renamed, edited or linked through the Jarvis API) stays;
 *  - record the time of the clear: from now on their history shows only rows
 *    whose timestamp is at or after it (store_history_query.after_clear), so
 *    the prompts that stay (stored Jarvis prompts, which are not history) are
 *    no longer listed until they run again.
 * Other users' executions and prompts are untouched. *deleted = executions
 * removed, *prompts_deleted = prompts removed (either may be NULL). */
int store_history_clear(store_t *s, const char *org_id, const char *user_id, long *deleted, long *prompts_deleted);

/* FOR BENCHMARKS (bench/bench_history.c): insert n executions in one
 * transaction, each finished with the given status/duration; the history
 * triggers run as for any insert. e[i].created_at is kept when set. */
int store_bench_execution_insert_bulk(store_t *s, const store_execution *e, size_t n);

/* ---- end prompt history ---- */

/* ---- integer ids (spec 002) ----
 *
 * Users, workspaces, data sources and prompts carry a number besides their
 * UUID: per organization, from 1, in creation order, never reused (migration
 * 0008). The v1 surface answers it as `id` and takes either form. */

enum store_num_kind { STORE_NUM_USER, STORE_NUM_WORKSPACE, STORE_NUM_DATA_SOURCE, STORE_NUM_PROMPT };
/* The largest number accepted as input: 2^53 - 1, the largest integer every
 * JSON client (JavaScript's included) holds exactly. */
#define STORE_NUM_MAX 9007199254740991LL

/* The UUID of the row of kind numbered num in org_id; STORE_NOTFOUND when
 * there is none (another organization's number included). */
int store_num_resolve(store_t *s, const char *org_id, enum store_num_kind kind, int64_t num, store_id out);

/* ---- authentication extras ---- */

/* The value of setting `name` into out (outcap bytes; STORE_ERR when larger), or
 * STORE_NOTFOUND. */
int store_setting_get(store_t *s, const char *name, unsigned char *out, size_t outcap, size_t *outlen);
/* Forget setting `name` (STORE_OK when there was none too). */
int store_setting_delete(store_t *s, const char *name);
/* A user of org_id by email (case-insensitive). */
int store_user_find_email(store_t *s, const char *org_id, const char *email, store_user *out);

/* An identity provider's user as its verified token names them: the binding
 * is (issuer, subject) within org_id; the email only helps on first sight.
 * Borrowed strings. */
typedef struct store_idp_login {
    const char *org_id;
    const char *issuer, *subject; /* the token's iss and sub: never empty */
    const char *email;            /* "" or NULL = the token names none */
    int email_verified;           /* the provider vouches that the email is the subject's */
    int link_privileged;          /* a verified email may bind a user whose role is above member */
} store_idp_login;

/* Why a first sight binds no user (*refusal with STORE_CONFLICT). */
enum store_idp_refusal {
    STORE_IDP_NO_EMAIL = 1,     /* no user is bound and the token has no email to name a new one */
    STORE_IDP_EMAIL_UNVERIFIED, /* the email is a local user's, and the provider does not vouch for it */
    STORE_IDP_EMAIL_BOUND,      /* the email's user is bound to another identity */
    STORE_IDP_PRIVILEGED        /* the email's user is an admin, and link_privileged is off */
};

/*
 * The user bound to (issuer, subject) in in->org_id. On first sight, in one
 * write transaction: a user with the token's email that is bound to no
 * identity is bound, if the email is verified and the user is a member (or
 * link_privileged); with no user of that email, a new member is made with it
 * and bound. STORE_OK fills *out (the caller's, freed with store_user_clear)
 * and sets *bound_now: 0 the subject was bound before, 1 a new member was
 * made, 2 an existing user was bound;
 * STORE_CONFLICT sets *refusal. A later token of the same subject finds the
 * same user whatever email it carries; the local email is not changed.
 */
int store_user_idp_find(store_t *s, const store_idp_login *in, store_user *out, int *bound_now, int *refusal);
/* An organization's id (and, when name is not NULL, its name) from its name or id. */
int store_org_find(store_t *s, const char *name_or_id, store_id org_id, char *name, size_t namelen);
/* Per-key requests per minute; -1 = back to the server default, 0 = unlimited. */
int store_key_set_rate_limit(store_t *s, const char *org_id, const char *prefix, long per_minute);
/* Revoke a key of org_id named by its prefix or id; STORE_NOTFOUND if none. */
int store_key_revoke_in_org(store_t *s, const char *org_id, const char *prefix_or_id);

/* ---- durable rate limits (auth/ratelimit_store.c) ---- */

/* n admissions of bucket at at_ms, in the limiter named scope. */
typedef struct store_rate_hit {
    const char *bucket; /* borrowed */
    int64_t at_ms;
    long n;
} store_rate_hit;

/* In ONE transaction: add the n hits of scope (a hit at a time the bucket
 * already has adds to it), then, when prune_upto_ms >= 0, delete the scope's
 * rows at or before prune_upto_ms (they left the window). */
int store_rate_hits_write(store_t *s, const char *scope, const store_rate_hit *hits, size_t n, int64_t prune_upto_ms);
/* Every hit of scope after since_ms, ordered by bucket then time, handed to
 * fn (bucket is valid during the call); fn returning non-zero stops the read
 * with STORE_ERR. */
int store_rate_hits_load(store_t *s, const char *scope, int64_t since_ms,
                         int (*fn)(void *ud, const char *bucket, int64_t at_ms, long n), void *ud);

/* ---- start-up ---- */

/* Mark work that a previous run left half done as failed: synchronous
 * executions and cluster replies still "processing" (their clients are gone).
 * Async executions are not touched: the queue runs them again. Call at start,
 * before serving. Single-node stores only (one server per database). */
int store_recover_interrupted(store_t *s, long *count);

/* The same for n texts in ONE transaction (batches): out[i] for texts[i]. On
 * failure nothing is kept and out is cleared. */
int store_prompt_ensure_raw_many(store_t *s, const char *org_id, const char *user_id, size_t n,
                                 const char *const *names, const char *const *texts, const char *const *hashes,
                                 store_prompt *out);

/* ---- lifecycle ---- */

/* Open (creating if needed) and migrate to the latest schema. */
int store_open(const char *location, store_t **out, char *err, size_t errlen);
void store_close(store_t *s);
/* Schema version after migration. */
int store_schema_version(store_t *s);

#endif
