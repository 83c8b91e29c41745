/*
 * test_store.c — store/ on a temp SQLite file: migrations and reopening,
 * bootstrap, API keys, prompts (create, get, list with filters / search /
 * sort / paging, update with versions, publish, delete), reactions with
 * idempotent counters, isolation between organizations, the integer ids of
 * migration 0008 (per organization, never reused) and what a history clear
 * deletes and hides.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/ids.h"
#include "core/log.h"
#include "store/store.h"
#include "support/harness.h"

static char DIR_[256], PATH[320];
static store_t *ST;
static store_key ORG1, ORG2; /* a key row (org_id, user_id) of each organization */

static void fake_key(const char *seed, char prefix[STORE_KEY_PREFIX_LEN + 1], unsigned char hash[STORE_KEY_HASH_LEN])
{
    snprintf(prefix, STORE_KEY_PREFIX_LEN + 1, "pk_test_%.8s", seed);
    crypto_generichash(hash, STORE_KEY_HASH_LEN, (const unsigned char *)seed, strlen(seed), NULL, 0);
}

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    log_set_level(LOG_WARN); /* no "applied migration" lines */
    cr_assert_eq(pd_mkdtemp(DIR_, sizeof DIR_), 0);
    snprintf(PATH, sizeof PATH, "%s/store.db", DIR_);
    char err[256];
    cr_assert_eq(store_open(PATH, &ST, err, sizeof err), STORE_OK, "%s", err);
    char prefix[STORE_KEY_PREFIX_LEN + 1];
    unsigned char hash[STORE_KEY_HASH_LEN];
    fake_key("org1key1", prefix, hash);
    cr_assert_eq(store_key_create_for_org(ST, "org1", "k", prefix, hash, &ORG1), STORE_OK);
    usleep(2000); /* distinct creation times: "oldest first" is then well defined */
    fake_key("org2key1", prefix, hash);
    cr_assert_eq(store_key_create_for_org(ST, "org2", "k", prefix, hash, &ORG2), STORE_OK);
}

static void teardown(void)
{
    store_close(ST);
    ST = NULL;
    pd_rmrf(DIR_);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 30);

/* Create a prompt in ORG1's organization (or org if given); id into id. */
static void make_prompt_in(const store_key *org, const char *name, const char *description, const char *content,
                           store_id id)
{
    store_prompt p = {0};
    memcpy(p.org_id, org->org_id, sizeof p.org_id);
    memcpy(p.user_id, org->user_id, sizeof p.user_id);
    p.name = (char *)name;
    p.description = (char *)description;
    p.content = (char *)content;
    cr_assert_eq(store_prompt_create(ST, &p), STORE_OK);
    cr_assert(id_is_uuid(p.id));
    memcpy(id, p.id, sizeof(store_id));
}

static void make_prompt(const char *name, const char *content, store_id id)
{
    make_prompt_in(&ORG1, name, "", content, id);
}

static store_prompt get1(const char *id)
{
    store_prompt p;
    cr_assert_eq(store_prompt_get(ST, ORG1.org_id, id, ORG1.user_id, &p), STORE_OK);
    return p;
}

/* Names of a list query joined by ',' */
static long list_names(const store_prompt_query *q, char *out, size_t outlen)
{
    store_prompt_page page;
    cr_assert_eq(store_prompt_list(ST, ORG1.org_id, ORG1.user_id, q, &page), STORE_OK);
    out[0] = '\0';
    for (size_t i = 0; i < page.count; i++) {
        if (i)
            strncat(out, ",", outlen - strlen(out) - 1);
        strncat(out, page.items[i].name, outlen - strlen(out) - 1);
    }
    long total = page.total;
    store_prompt_page_free(&page);
    return total;
}

/* ---------------------------------------------------------------- lifecycle */

Test(store, migrates_and_reopens)
{
    int v = store_schema_version(ST);
    cr_assert_geq(v, 1);
    store_id id;
    make_prompt("kept", "c", id);
    store_close(ST);
    char err[256];
    cr_assert_eq(store_open(PATH, &ST, err, sizeof err), STORE_OK, "reopen: %s", err);
    cr_assert_eq(store_schema_version(ST), v, "reopening changed the schema version");
    store_prompt p = get1(id);
    cr_assert_str_eq(p.name, "kept");
    store_prompt_clear(&p);
    /* the sqlite: prefix names the same file */
    store_t *again = NULL;
    char loc[400];
    snprintf(loc, sizeof loc, "sqlite:%s", PATH);
    cr_assert_eq(store_open(loc, &again, err, sizeof err), STORE_OK, "%s", err);
    cr_assert_eq(store_prompt_get(again, ORG1.org_id, id, NULL, &p), STORE_OK);
    store_prompt_clear(&p);
    store_close(again);
}

/* A database of schema version 7 (before comments could be on prompts) with
 * a comment on an execution: migration 0011 rebuilds the comments table and
 * the comment comes through, id, body and order intact, and the new kinds of
 * comments work on the upgraded file. The old schema comes from the migration
 * files in the source tree (the test runs from the repository root). */
Test(store, comments_survive_the_0011_rebuild)
{
    char dir[256], path[320];
    cr_assert_eq(pd_mkdtemp(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/v7.db", dir);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    static const char *const files[] = {"0001_init", "0002_executions", "0003_clusters", "0004_queue",
                                        "0005_history", "0006_auth", "0007_tool_calls"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char file[128];
        snprintf(file, sizeof file, "src/store/migrations/sqlite/%s.sql", files[i]);
        char *sql = pd_read_file(file);
        if (!sql) {
            sqlite3_close(db);
            pd_rmrf(dir);
            cr_skip_test("%s is not reachable from the working directory", file);
        }
        char *msg = NULL;
        cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s: %s", file, msg ? msg : "?");
        free(sql);
    }
    static const char seed[] =
        "PRAGMA user_version=7;"
        "INSERT INTO organizations VALUES ('o1', 'old', 1);"
        "INSERT INTO users (id, org_id, email, role, created_at) VALUES ('u1', 'o1', 'a@x', 'admin', 1);"
        "INSERT INTO prompts (id, org_id, user_id, name, content, created_at, updated_at) "
        "  VALUES ('p1', 'o1', 'u1', 'n', 'c', 1, 1);"
        "INSERT INTO executions (id, org_id, user_id, prompt_id, source, model, status, comments_count, created_at, "
        "  updated_at) VALUES ('e1', 'o1', 'u1', 'p1', 'prompt', 'echo', 'completed', 2, 1, 1);"
        "INSERT INTO comments (id, org_id, execution_id, user_id, body, created_at, updated_at) "
        "  VALUES ('0190a0b0-1234-7abc-8def-0123456789ff', 'o1', 'e1', 'u1', 'second by id, first by time', 5, 5),"
        "         ('0190a0b0-1234-7abc-8def-000000000001', 'o1', 'e1', 'u1', 'same time, inserted later', 5, 5);";
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(db, seed, NULL, NULL, &msg), SQLITE_OK, "%s", msg ? msg : "?");
    sqlite3_close(db);

    store_t *s = NULL;
    char err[256];
    cr_assert_eq(store_open(path, &s, err, sizeof err), STORE_OK, "upgrade: %s", err);
    cr_assert_geq(store_schema_version(s), 11);
    store_comment_page page;
    cr_assert_eq(store_comment_list(s, "o1", "p1", "e1", NULL, 0, 10, &page), STORE_OK);
    cr_assert_eq(page.total, 2);
    cr_assert_str_eq(page.items[0].body, "second by id, first by time", "insertion order kept");
    cr_assert_str_eq(page.items[0].id, "0190a0b0-1234-7abc-8def-0123456789ff");
    cr_assert_str_eq(page.items[1].body, "same time, inserted later");
    cr_assert_str_eq(page.items[0].user_email, "a@x");
    store_comment_page_free(&page);
    /* the new kinds of comments on the upgraded file */
    store_comment c, r;
    enum store_comment_part missing;
    cr_assert_eq(store_comment_create(s, "o1", "p1", NULL, NULL, "u1", "on the prompt", &c, &missing), STORE_OK);
    cr_assert_str_eq(c.prompt_id, "p1");
    cr_assert_str_eq(c.execution_id, "");
    cr_assert_eq(store_comment_create(s, "o1", "p1", "e1", "0190a0b0-1234-7abc-8def-0123456789ff", "u1", "a reply", &r,
                                      &missing),
                 STORE_OK);
    cr_assert_str_eq(r.parent_id, "0190a0b0-1234-7abc-8def-0123456789ff");
    /* a reply's parent must be on the same target */
    store_comment bad;
    cr_assert_eq(store_comment_create(s, "o1", "p1", NULL, c.id, "u1", "x", &bad, &missing), STORE_OK,
                 "a reply on the prompt to a prompt comment");
    store_comment_clear(&bad);
    cr_assert_eq(store_comment_create(s, "o1", "p1", NULL, r.id, "u1", "x", &bad, &missing), STORE_NOTFOUND,
                 "an execution's comment is no parent on the prompt");
    cr_assert_eq(missing, STORE_COMMENT_PARENT);
    store_comment_clear(&c);
    store_comment_clear(&r);
    store_close(s);
    pd_rmrf(dir);
}

/* Rows in the reactions table naming target (read from the file itself). */
static long reactions_on(const char *target_type, const char *target_id)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open_v2(PATH, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM reactions WHERE target_type = ?1 AND target_id = ?2", -1,
                                    &st, NULL),
                 SQLITE_OK);
    sqlite3_bind_text(st, 1, target_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, target_id, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    long n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* A comment's reactions go with it: deleted with the comment (and its
 * replies), and with the prompt it is on. */
Test(store, comment_reactions_go_with_the_comment)
{
    store_id prompt;
    make_prompt("p", "c", prompt);
    store_comment top, reply, other;
    enum store_comment_part missing;
    cr_assert_eq(store_comment_create(ST, ORG1.org_id, prompt, NULL, NULL, ORG1.user_id, "top", &top, &missing),
                 STORE_OK);
    cr_assert_eq(store_comment_create(ST, ORG1.org_id, prompt, NULL, top.id, ORG1.user_id, "re", &reply, &missing),
                 STORE_OK);
    cr_assert_eq(store_comment_create(ST, ORG1.org_id, prompt, NULL, NULL, ORG1.user_id, "other", &other, &missing),
                 STORE_OK);
    const char *ids[] = {top.id, reply.id, other.id};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(store_reaction_set(ST, ORG1.org_id, ORG1.user_id, STORE_TARGET_COMMENT, ids[i], STORE_REACT_LIKE, 1),
                     STORE_OK);
        cr_assert_eq(reactions_on("comment", ids[i]), 1);
    }
    store_comment got;
    cr_assert_eq(store_comment_get(ST, ORG1.org_id, prompt, NULL, top.id, &got, NULL), STORE_OK);
    cr_assert_eq(got.likes_count, 1);
    cr_assert_eq(got.replies_count, 1);
    store_comment_clear(&got);
    /* another organization cannot like it */
    cr_assert_eq(store_reaction_set(ST, ORG2.org_id, ORG2.user_id, STORE_TARGET_COMMENT, top.id, STORE_REACT_LIKE, 1),
                 STORE_NOTFOUND);
    cr_assert_eq(store_comment_delete(ST, ORG1.org_id, prompt, NULL, top.id, ORG1.user_id, 0), STORE_OK);
    cr_assert_eq(reactions_on("comment", top.id), 0);
    cr_assert_eq(reactions_on("comment", reply.id), 0, "the reply's went with it");
    cr_assert_eq(reactions_on("comment", other.id), 1);
    cr_assert_eq(store_prompt_delete(ST, ORG1.org_id, prompt), STORE_OK);
    cr_assert_eq(reactions_on("comment", other.id), 0, "and with the prompt");
    store_comment_clear(&top);
    store_comment_clear(&reply);
    store_comment_clear(&other);
}

Test(store, bad_locations_fail_cleanly)
{
    store_t *s = NULL;
    char err[256] = "";
    cr_assert_neq(store_open("/nonexistent-dir/really/x.db", &s, err, sizeof err), STORE_OK);
    cr_assert_gt(strlen(err), 0);
    err[0] = '\0';
    cr_assert_neq(store_open("", &s, err, sizeof err), STORE_OK);
    cr_assert_gt(strlen(err), 0);
    store_close(NULL);
}

Test(store, bootstrap_only_once)
{
    /* setup made organizations already: bootstrap must not add one */
    char prefix[STORE_KEY_PREFIX_LEN + 1];
    unsigned char hash[STORE_KEY_HASH_LEN];
    fake_key("bootstr1", prefix, hash);
    int created = 7;
    cr_assert_eq(store_bootstrap(ST, "default", "admin@localhost", prefix, hash, &created), STORE_OK);
    cr_assert_eq(created, 0);
    store_key k;
    cr_assert_eq(store_key_find(ST, prefix, &k), STORE_NOTFOUND);

    /* on an empty database it creates the organization, the admin and the key, once */
    char path[400], err[256];
    snprintf(path, sizeof path, "%s/fresh.db", DIR_);
    store_t *fresh;
    cr_assert_eq(store_open(path, &fresh, err, sizeof err), STORE_OK, "%s", err);
    cr_assert_eq(store_bootstrap(fresh, "default", "admin@localhost", prefix, hash, &created), STORE_OK);
    cr_assert_eq(created, 1);
    cr_assert_eq(store_key_find(fresh, prefix, &k), STORE_OK);
    cr_assert_str_eq(k.org_name, "default");
    cr_assert_str_eq(k.user_email, "admin@localhost");
    cr_assert_str_eq(k.role, "admin");
    cr_assert_eq(memcmp(k.hash, hash, sizeof hash), 0);
    cr_assert_eq(k.revoked_at, 0);
    cr_assert_gt(k.created_at, 0);
    char p2[STORE_KEY_PREFIX_LEN + 1];
    unsigned char h2[STORE_KEY_HASH_LEN];
    fake_key("bootstr2", p2, h2);
    cr_assert_eq(store_bootstrap(fresh, "default", "admin@localhost", p2, h2, &created), STORE_OK);
    cr_assert_eq(created, 0);
    cr_assert_eq(store_key_find(fresh, p2, &k), STORE_NOTFOUND);
    store_key_list l;
    cr_assert_eq(store_key_list_all(fresh, NULL, &l), STORE_OK);
    cr_assert_eq(l.count, 1);
    store_key_list_free(&l);
    store_close(fresh);
}

/* ---------------------------------------------------------------- keys */

Test(store, keys_create_find_list_revoke)
{
    char prefix[STORE_KEY_PREFIX_LEN + 1];
    unsigned char hash[STORE_KEY_HASH_LEN];
    store_key k2;
    usleep(2000);
    fake_key("org1key2", prefix, hash);
    cr_assert_eq(store_key_create_for_org(ST, "org1", "second", prefix, hash, &k2), STORE_OK);
    cr_assert_str_eq(k2.org_id, ORG1.org_id, "same organization by name");
    cr_assert_str_eq(k2.user_id, ORG1.user_id, "the same admin user");
    cr_assert_str_eq(k2.prefix, prefix);
    cr_assert_str_eq(k2.name, "second");
    cr_assert_str_eq(k2.org_name, "org1");
    cr_assert_str_eq(k2.role, "admin");
    cr_assert(id_is_uuid(k2.id));
    cr_assert_str_neq(k2.id, ORG1.id);
    cr_assert_str_neq(ORG1.org_id, ORG2.org_id);

    store_key found;
    cr_assert_eq(store_key_find(ST, prefix, &found), STORE_OK);
    cr_assert_str_eq(found.id, k2.id);
    cr_assert_eq(memcmp(found.hash, hash, sizeof hash), 0);
    cr_assert_eq(store_key_find(ST, "pk_test_nothere", &found), STORE_NOTFOUND);

    /* a prefix is unique */
    store_key dup;
    cr_assert_eq(store_key_create_for_org(ST, "org2", "dup", prefix, hash, &dup), STORE_CONFLICT);

    store_key_list l;
    cr_assert_eq(store_key_list_all(ST, NULL, &l), STORE_OK);
    cr_assert_eq(l.count, 3);
    cr_assert_str_eq(l.items[0].id, ORG1.id, "oldest first");
    cr_assert_str_eq(l.items[1].id, ORG2.id, "oldest first");
    cr_assert_str_eq(l.items[2].id, k2.id, "oldest first");
    store_key_list_free(&l);
    cr_assert_eq(store_key_list_all(ST, "org1", &l), STORE_OK);
    cr_assert_eq(l.count, 2);
    for (size_t i = 0; i < l.count; i++)
        cr_assert_str_eq(l.items[i].org_name, "org1");
    store_key_list_free(&l);
    cr_assert_eq(store_key_list_all(ST, "nobody", &l), STORE_OK);
    cr_assert_eq(l.count, 0);
    store_key_list_free(&l);

    cr_assert_eq(store_key_revoke(ST, prefix), STORE_OK);
    cr_assert_eq(store_key_find(ST, prefix, &found), STORE_OK);
    cr_assert_gt(found.revoked_at, 0);
    int64_t first = found.revoked_at;
    usleep(2000);
    cr_assert_eq(store_key_revoke(ST, prefix), STORE_OK, "revoking twice");
    cr_assert_eq(store_key_find(ST, prefix, &found), STORE_OK);
    cr_assert_eq(found.revoked_at, first, "the revocation time moved");
    cr_assert_eq(store_key_revoke(ST, "pk_test_nothere"), STORE_NOTFOUND);
    /* the others are untouched */
    cr_assert_eq(store_key_find(ST, ORG1.prefix, &found), STORE_OK);
    cr_assert_eq(found.revoked_at, 0);
}

/* ---------------------------------------------------------------- prompts */

Test(store, prompt_create_and_get)
{
    store_prompt p = {0};
    memcpy(p.org_id, ORG1.org_id, sizeof p.org_id);
    memcpy(p.user_id, ORG1.user_id, sizeof p.user_id);
    p.name = "Email";
    p.description = "Writes";
    p.content = "Dear {{who}}";
    cr_assert_eq(store_prompt_create(ST, &p), STORE_OK);
    cr_assert(id_is_uuid(p.id));
    cr_assert(id_is_uuid(p.current_version_id));
    cr_assert_str_eq(p.status, "draft");
    cr_assert_eq(p.versions_count, 1);
    cr_assert_gt(p.created_at, 0);

    store_prompt g = get1(p.id);
    cr_assert_str_eq(g.id, p.id);
    cr_assert_str_eq(g.org_id, ORG1.org_id);
    cr_assert_str_eq(g.user_id, ORG1.user_id);
    cr_assert_str_eq(g.name, "Email");
    cr_assert_str_eq(g.description, "Writes");
    cr_assert_str_eq(g.content, "Dear {{who}}");
    cr_assert_str_eq(g.status, "draft");
    cr_assert_str_eq(g.current_version_id, p.current_version_id);
    cr_assert_str_eq(g.published_version_id, "");
    cr_assert_eq(g.versions_count, 1);
    cr_assert_eq(g.likes_count + g.saves_count + g.followers_count, 0);
    cr_assert_eq(g.created_at, p.created_at);
    cr_assert_eq(g.updated_at, p.created_at);
    cr_assert_eq(g.liked + g.saved + g.followed, 0);
    store_prompt_clear(&g);

    store_version v;
    cr_assert_eq(store_version_get(ST, ORG1.org_id, p.id, p.current_version_id, &v), STORE_OK);
    cr_assert_eq(v.number, 1);
    cr_assert_str_eq(v.content, "Dear {{who}}");
    cr_assert_str_eq(v.prompt_id, p.id);
    cr_assert_eq(v.published_at, 0);
    store_version_clear(&v);

    cr_assert_eq(store_prompt_get(ST, ORG1.org_id, "0190a0b0-1234-7abc-8def-0123456789ab", NULL, &g), STORE_NOTFOUND);
}

Test(store, prompt_list_pages_and_filters)
{
    store_id id;
    char name[16];
    for (int i = 0; i < 7; i++) {
        snprintf(name, sizeof name, "n%d", i);
        make_prompt(name, "c", id);
        usleep(2000);
    }
    store_prompt_patch archive = {.status = "archived"};
    store_prompt out;
    cr_assert_eq(store_prompt_update(ST, ORG1.org_id, id, ORG1.user_id, &archive, &out), STORE_OK);
    store_prompt_clear(&out);

    char got[256];
    store_prompt_query q = {.sort = STORE_SORT_CREATED_AT, .sort_desc = 1, .offset = 0, .limit = 3};
    cr_assert_eq(list_names(&q, got, sizeof got), 7);
    cr_assert_str_eq(got, "n6,n5,n4");
    q.offset = 6;
    cr_assert_eq(list_names(&q, got, sizeof got), 7);
    cr_assert_str_eq(got, "n0");
    q.offset = 9;
    cr_assert_eq(list_names(&q, got, sizeof got), 7);
    cr_assert_str_eq(got, "");
    q = (store_prompt_query){.sort = STORE_SORT_CREATED_AT, .sort_desc = 0, .limit = 100};
    cr_assert_eq(list_names(&q, got, sizeof got), 7);
    cr_assert_str_eq(got, "n0,n1,n2,n3,n4,n5,n6");
    q.status = "archived";
    cr_assert_eq(list_names(&q, got, sizeof got), 1);
    cr_assert_str_eq(got, "n6");
    q.status = "draft";
    cr_assert_eq(list_names(&q, got, sizeof got), 6);
    q.status = "published";
    cr_assert_eq(list_names(&q, got, sizeof got), 0);
}

/* Ids are random (UUIDv4): rows made within one millisecond share created_at
 * and must still list in creation order, both ways (the tiebreak is the
 * insertion order, not the id). */
Test(store, same_millisecond_keeps_creation_order)
{
    enum { N = 40 };
    store_id id;
    char name[16], want_asc[N * 4] = "", want_desc[N * 4] = "";
    for (int i = 0; i < N; i++) { /* no sleep: many share a millisecond */
        snprintf(name, sizeof name, "t%02d", i);
        make_prompt(name, "c", id);
        if (i)
            strcat(want_asc, ",");
        strcat(want_asc, name);
    }
    for (int i = N - 1; i >= 0; i--) {
        snprintf(name, sizeof name, "%st%02d", i == N - 1 ? "" : ",", i);
        strcat(want_desc, name);
    }
    char got[N * 4 + 8];
    store_prompt_query q = {.sort = STORE_SORT_CREATED_AT, .limit = 100};
    cr_assert_eq(list_names(&q, got, sizeof got), N);
    cr_assert_str_eq(got, want_asc);
    q.sort_desc = 1;
    cr_assert_eq(list_names(&q, got, sizeof got), N);
    cr_assert_str_eq(got, want_desc);
}

Test(store, prompt_list_sorts)
{
    store_id a, b, c;
    make_prompt("banana", "x", b);
    usleep(2000);
    make_prompt("Apple", "x", a);
    usleep(2000);
    make_prompt("cherry", "x", c);
    char got[256];
    store_prompt_query q = {.sort = STORE_SORT_NAME, .limit = 10};
    list_names(&q, got, sizeof got);
    cr_assert_str_eq(got, "Apple,banana,cherry", "name order ignores case");
    q.sort_desc = 1;
    list_names(&q, got, sizeof got);
    cr_assert_str_eq(got, "cherry,banana,Apple");
    cr_assert_eq(store_reaction_set(ST, ORG1.org_id, ORG1.user_id, STORE_TARGET_PROMPT, c, STORE_REACT_LIKE, 1),
                 STORE_OK);
    q = (store_prompt_query){.sort = STORE_SORT_LIKES, .sort_desc = 1, .limit = 1};
    list_names(&q, got, sizeof got);
    cr_assert_str_eq(got, "cherry");
    usleep(2000);
    store_prompt_patch touch = {.description = "touched"};
    store_prompt out;
    cr_assert_eq(store_prompt_update(ST, ORG1.org_id, b, ORG1.user_id, &touch, &out), STORE_OK);
    store_prompt_clear(&out);
    q = (store_prompt_query){.sort = STORE_SORT_UPDATED_AT, .sort_desc = 1, .limit = 1};
    list_names(&q, got, sizeof got);
    cr_assert_str_eq(got, "banana");
}

Test(store, prompt_search)
{
    store_id id;
    make_prompt_in(&ORG1, "Quarterly report", "", "Summarize {{quarter}} numbers", id);
    make_prompt_in(&ORG1, "Email helper", "Drafts marketing emails", "Write to {{person}}", id);
    make_prompt_in(&ORG1, "Translator", "", "Translate into French", id);
    make_prompt_in(&ORG2, "Quarterly secret", "", "other org", id);
    struct {
        const char *search, *want;
        long total;
    } cases[] = {
        {"quart", "Quarterly report", 1},
        {"market", "Email helper", 1},
        {"FRENCH", "Translator", 1},
        {"summarize numbers", "Quarterly report", 1},
        {"report email", "", 0},
        {"arterly", "", 0},
        {"\"quarterly\"", "Quarterly report", 1},
        {"quart*", "Quarterly report", 1},
        {"NOT report", "", 0},
        {"(", "", 0},
        {"-", "", 0},
        {"secret", "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[256];
        store_prompt_query q = {.search = cases[i].search, .sort = STORE_SORT_NAME, .limit = 10};
        cr_assert_eq(list_names(&q, got, sizeof got), cases[i].total, "search '%s'", cases[i].search);
        cr_assert_str_eq(got, cases[i].want, "search '%s'", cases[i].search);
    }
}

Test(store, prompt_update_and_versions)
{
    store_id id;
    make_prompt("first", "v1", id);
    store_prompt before = get1(id);

    store_prompt out;
    store_prompt_patch rename = {.name = "second"};
    cr_assert_eq(store_prompt_update(ST, ORG1.org_id, id, ORG1.user_id, &rename, &out), STORE_OK);
    cr_assert_str_eq(out.name, "second");
    cr_assert_str_eq(out.content, "v1");
    cr_assert_eq(out.versions_count, 1);
    cr_assert_str_eq(out.current_version_id, before.current_version_id);
    store_prompt_clear(&out);

    store_prompt_patch same = {.content = "v1"};
    cr_assert_eq(store_prompt_update(ST, ORG1.org_id, id, ORG1.user_id, &same, &out), STORE_OK);
    cr_assert_eq(out.versions_count, 1, "the same content made a version");
    store_prompt_clear(&out);

    store_prompt_patch change = {.content = "v2"};
    cr_assert_eq(store_prompt_update(ST, ORG1.org_id, id, ORG1.user_id, &change, &out), STORE_OK);
    cr_assert_eq(out.versions_count, 2);
    cr_assert_str_eq(out.content, "v2");
    cr_assert_str_neq(out.current_version_id, before.current_version_id);
    store_id v2;
    memcpy(v2, out.current_version_id, sizeof v2);
    store_prompt_clear(&out);
    change.content = "v3";
    cr_assert_eq(store_prompt_update(ST, ORG1.org_id, id, ORG1.user_id, &change, &out), STORE_OK);
    cr_assert_eq(out.versions_count, 3);
    cr_assert_eq(out.created_at, before.created_at);
    store_prompt_clear(&out);

    store_version_page vp;
    cr_assert_eq(store_version_list(ST, ORG1.org_id, id, 0, 10, &vp), STORE_OK);
    cr_assert_eq(vp.total, 3);
    cr_assert_eq(vp.count, 3);
    cr_assert_eq(vp.items[0].number, 3, "newest first");
    cr_assert_str_eq(vp.items[0].content, "v3");
    cr_assert_eq(vp.items[1].number, 2);
    cr_assert_str_eq(vp.items[1].id, v2);
    cr_assert_eq(vp.items[2].number, 1);
    cr_assert_str_eq(vp.items[2].id, before.current_version_id);
    cr_assert_str_eq(vp.items[2].content, "v1");
    store_version_page_free(&vp);
    cr_assert_eq(store_version_list(ST, ORG1.org_id, id, 1, 1, &vp), STORE_OK);
    cr_assert_eq(vp.total, 3);
    cr_assert_eq(vp.count, 1);
    cr_assert_eq(vp.items[0].number, 2);
    store_version_page_free(&vp);

    /* publish the first version: the prompt is published, its content stays the latest */
    cr_assert_eq(store_version_publish(ST, ORG1.org_id, id, before.current_version_id), STORE_OK);
    store_prompt now = get1(id);
    cr_assert_str_eq(now.status, "published");
    cr_assert_str_eq(now.published_version_id, before.current_version_id);
    cr_assert_str_eq(now.content, "v3");
    store_prompt_clear(&now);
    store_version v;
    cr_assert_eq(store_version_get(ST, ORG1.org_id, id, before.current_version_id, &v), STORE_OK);
    cr_assert_gt(v.published_at, 0);
    store_version_clear(&v);
    cr_assert_eq(store_version_publish(ST, ORG1.org_id, id, "0190a0b0-1234-7abc-8def-0123456789ab"), STORE_NOTFOUND);
    store_prompt_clear(&before);

    cr_assert_eq(
        store_prompt_update(ST, ORG1.org_id, "0190a0b0-1234-7abc-8def-0123456789ab", ORG1.user_id, &change, &out),
        STORE_NOTFOUND);
}

Test(store, versions_belong_to_their_prompt)
{
    store_id a, b;
    make_prompt("a", "a", a);
    make_prompt("b", "b", b);
    store_prompt pb = get1(b);
    store_version v;
    cr_assert_eq(store_version_get(ST, ORG1.org_id, a, pb.current_version_id, &v), STORE_NOTFOUND);
    cr_assert_eq(store_version_publish(ST, ORG1.org_id, a, pb.current_version_id), STORE_NOTFOUND);
    store_prompt pa = get1(a);
    cr_assert_str_eq(pa.status, "draft");
    store_prompt_clear(&pa);
    store_prompt_clear(&pb);
    store_version_page vp;
    cr_assert_eq(store_version_list(ST, ORG1.org_id, "0190a0b0-1234-7abc-8def-0123456789ab", 0, 10, &vp),
                 STORE_NOTFOUND);
}

Test(store, prompt_delete)
{
    store_id id, keep;
    make_prompt("doomed", "x", id);
    make_prompt("kept", "y", keep);
    cr_assert_eq(store_reaction_set(ST, ORG1.org_id, ORG1.user_id, STORE_TARGET_PROMPT, id, STORE_REACT_LIKE, 1),
                 STORE_OK);
    cr_assert_eq(store_prompt_delete(ST, ORG1.org_id, id), STORE_OK);
    store_prompt p;
    cr_assert_eq(store_prompt_get(ST, ORG1.org_id, id, NULL, &p), STORE_NOTFOUND);
    cr_assert_eq(store_prompt_delete(ST, ORG1.org_id, id), STORE_NOTFOUND);
    store_version_page vp;
    cr_assert_eq(store_version_list(ST, ORG1.org_id, id, 0, 10, &vp), STORE_NOTFOUND);
    cr_assert_eq(store_reaction_set(ST, ORG1.org_id, ORG1.user_id, STORE_TARGET_PROMPT, id, STORE_REACT_LIKE, 0),
                 STORE_NOTFOUND);
    char got[64];
    store_prompt_query q = {.limit = 10};
    cr_assert_eq(list_names(&q, got, sizeof got), 1);
    cr_assert_str_eq(got, "kept");
}

/* ---------------------------------------------------------------- reactions */

Test(store, reactions_are_idempotent)
{
    store_id id;
    make_prompt("r", "x", id);
    struct {
        enum store_reaction kind;
    } kinds[] = {{STORE_REACT_LIKE}, {STORE_REACT_SAVE}, {STORE_REACT_FOLLOW}};
    for (size_t k = 0; k < 3; k++) {
        for (int rep = 0; rep < 3; rep++)
            cr_assert_eq(store_reaction_set(ST, ORG1.org_id, ORG1.user_id, STORE_TARGET_PROMPT, id, kinds[k].kind, 1),
                         STORE_OK);
    }
    store_prompt p = get1(id);
    cr_assert_eq(p.likes_count, 1);
    cr_assert_eq(p.saves_count, 1);
    cr_assert_eq(p.followers_count, 1);
    cr_assert(p.liked && p.saved && p.followed);
    store_prompt_clear(&p);
    /* another viewer sees the counts but not the flags */
    cr_assert_eq(store_prompt_get(ST, ORG1.org_id, id, "0190a0b0-1234-7abc-8def-0123456789ab", &p), STORE_OK);
    cr_assert_eq(p.likes_count, 1);
    cr_assert(!p.liked && !p.saved && !p.followed);
    store_prompt_clear(&p);

    for (int rep = 0; rep < 3; rep++)
        cr_assert_eq(store_reaction_set(ST, ORG1.org_id, ORG1.user_id, STORE_TARGET_PROMPT, id, STORE_REACT_LIKE, 0),
                     STORE_OK);
    p = get1(id);
    cr_assert_eq(p.likes_count, 0, "unlike went below zero or did not count");
    cr_assert_eq(p.saves_count, 1);
    cr_assert_eq(p.followers_count, 1);
    cr_assert(!p.liked && p.saved && p.followed);
    store_prompt_clear(&p);

    /* a second user of the organization counts separately */
    const char *u2 = "0190a0b0-0000-7000-8000-00000000beef";
    cr_assert_eq(store_reaction_set(ST, ORG1.org_id, u2, STORE_TARGET_PROMPT, id, STORE_REACT_SAVE, 1), STORE_OK);
    p = get1(id);
    cr_assert_eq(p.saves_count, 2);
    store_prompt_clear(&p);
    cr_assert_eq(store_reaction_set(ST, ORG1.org_id, ORG1.user_id, STORE_TARGET_PROMPT, id, STORE_REACT_SAVE, 0),
                 STORE_OK);
    p = get1(id);
    cr_assert_eq(p.saves_count, 1);
    cr_assert(!p.saved);
    store_prompt_clear(&p);
}

/* ---------------------------------------------------------------- organizations */

Test(store, another_organization_gets_notfound)
{
    store_id id;
    make_prompt("mine", "v1", id);
    store_prompt p = get1(id);
    store_id v1;
    memcpy(v1, p.current_version_id, sizeof v1);
    store_prompt_clear(&p);

    const char *o2 = ORG2.org_id, *u2 = ORG2.user_id;
    cr_assert_eq(store_prompt_get(ST, o2, id, u2, &p), STORE_NOTFOUND);
    store_prompt_patch patch = {.name = "stolen", .content = "stolen"};
    cr_assert_eq(store_prompt_update(ST, o2, id, u2, &patch, &p), STORE_NOTFOUND);
    cr_assert_eq(store_prompt_delete(ST, o2, id), STORE_NOTFOUND);
    store_version_page vp;
    cr_assert_eq(store_version_list(ST, o2, id, 0, 10, &vp), STORE_NOTFOUND);
    store_version v;
    cr_assert_eq(store_version_get(ST, o2, id, v1, &v), STORE_NOTFOUND);
    cr_assert_eq(store_version_publish(ST, o2, id, v1), STORE_NOTFOUND);
    for (int k = STORE_REACT_LIKE; k <= STORE_REACT_FOLLOW; k++)
        cr_assert_eq(store_reaction_set(ST, o2, u2, STORE_TARGET_PROMPT, id, (enum store_reaction)k, 1),
                     STORE_NOTFOUND);
    store_prompt_page page;
    store_prompt_query q = {.limit = 100};
    cr_assert_eq(store_prompt_list(ST, o2, u2, &q, &page), STORE_OK);
    cr_assert_eq(page.total, 0);
    cr_assert_eq(page.count, 0);
    store_prompt_page_free(&page);

    p = get1(id);
    cr_assert_str_eq(p.name, "mine");
    cr_assert_str_eq(p.content, "v1");
    cr_assert_str_eq(p.status, "draft");
    cr_assert_eq(p.versions_count, 1);
    cr_assert_eq(p.likes_count + p.saves_count + p.followers_count, 0);
    store_prompt_clear(&p);
}

typedef struct writer_arg {
    int n, ok;
} writer_arg;

static void *writer(void *arg)
{
    writer_arg *a = arg;
    for (int i = 0; i < 25; i++) {
        store_prompt p = {0};
        char name[32];
        snprintf(name, sizeof name, "t%d-%d", a->n, i);
        memcpy(p.org_id, ORG1.org_id, sizeof p.org_id);
        memcpy(p.user_id, ORG1.user_id, sizeof p.user_id);
        p.name = name;
        p.description = "";
        p.content = "x";
        if (store_prompt_create(ST, &p) == STORE_OK)
            a->ok++;
    }
    return NULL;
}

Test(store, concurrent_writers)
{
    enum { THREADS = 8 };
    pthread_t t[THREADS];
    writer_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (writer_arg){.n = i};
        cr_assert_eq(pthread_create(&t[i], NULL, writer, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(args[i].ok, 25, "thread %d: %d of 25 creates succeeded", i, args[i].ok);
    store_prompt_page page;
    store_prompt_query q = {.limit = 1};
    cr_assert_eq(store_prompt_list(ST, ORG1.org_id, NULL, &q, &page), STORE_OK);
    cr_assert_eq(page.total, THREADS * 25);
    store_prompt_page_free(&page);
}

/* ---------------------------------------------------------------- integer ids (migration 0008) */

Test(store, numbers_are_per_organization_and_never_reused)
{
    store_id a, b, c, other, got;
    make_prompt("one", "1", a);
    make_prompt("two", "2", b);
    make_prompt_in(&ORG2, "theirs", "", "x", other);
    cr_assert_eq(store_num_resolve(ST, ORG1.org_id, STORE_NUM_PROMPT, 1, got), STORE_OK);
    cr_assert_str_eq(got, a);
    cr_assert_eq(store_num_resolve(ST, ORG1.org_id, STORE_NUM_PROMPT, 2, got), STORE_OK);
    cr_assert_str_eq(got, b);
    cr_assert_eq(store_num_resolve(ST, ORG2.org_id, STORE_NUM_PROMPT, 1, got), STORE_OK, "ORG2 counts from 1 too");
    cr_assert_str_eq(got, other);
    cr_assert_eq(store_num_resolve(ST, ORG2.org_id, STORE_NUM_PROMPT, 2, got), STORE_NOTFOUND);
    cr_assert_eq(got[0], '\0');
    /* the highest goes; the next prompt does not take its number */
    cr_assert_eq(store_prompt_delete(ST, ORG1.org_id, b), STORE_OK);
    cr_assert_eq(store_num_resolve(ST, ORG1.org_id, STORE_NUM_PROMPT, 2, got), STORE_NOTFOUND);
    make_prompt("three", "3", c);
    cr_assert_eq(store_num_resolve(ST, ORG1.org_id, STORE_NUM_PROMPT, 3, got), STORE_OK);
    cr_assert_str_eq(got, c);
    /* users: each organization's admin is its user 1 */
    cr_assert_eq(store_num_resolve(ST, ORG1.org_id, STORE_NUM_USER, 1, got), STORE_OK);
    cr_assert_str_eq(got, ORG1.user_id);
    cr_assert_eq(store_num_resolve(ST, ORG2.org_id, STORE_NUM_USER, 1, got), STORE_OK);
    cr_assert_str_eq(got, ORG2.user_id);
    store_user u;
    cr_assert_eq(store_user_get(ST, ORG1.org_id, ORG1.user_id, &u), STORE_OK);
    cr_assert_eq(u.num, 1);
    cr_assert_eq(u.history_cleared_at, 0);
    store_user_clear(&u);
    /* workspaces and data sources */
    store_workspace w = {0};
    memcpy(w.org_id, ORG2.org_id, sizeof w.org_id);
    w.name = (char *)"w";
    cr_assert_eq(store_workspace_create(ST, &w), STORE_OK);
    store_data_source d = {0};
    memcpy(d.org_id, ORG2.org_id, sizeof d.org_id);
    memcpy(d.workspace_id, w.id, sizeof d.workspace_id);
    d.name = (char *)"d";
    d.type = (char *)"csv";
    cr_assert_eq(store_data_source_create(ST, &d), STORE_OK);
    store_data_source dg;
    cr_assert_eq(store_data_source_get(ST, ORG2.org_id, d.id, &dg), STORE_OK);
    cr_assert_eq(dg.num, 1);
    cr_assert_eq(dg.workspace_num, 1);
    store_data_source_clear(&dg);
    cr_assert_eq(store_num_resolve(ST, ORG1.org_id, STORE_NUM_WORKSPACE, 1, got), STORE_NOTFOUND);
    cr_assert_eq(store_num_resolve(ST, ORG1.org_id, STORE_NUM_DATA_SOURCE, 1, got), STORE_NOTFOUND);
    cr_assert_eq(store_num_resolve(ST, ORG2.org_id, STORE_NUM_DATA_SOURCE, 1, got), STORE_OK);
    cr_assert_str_eq(got, d.id);
}

Test(store, history_clear_deletes_raw_prompts_and_hides_the_rest)
{
    store_id stored;
    make_prompt("stored", "kept", stored);
    store_prompt raw = {0}, theirs = {0};
    cr_assert_eq(store_prompt_ensure_raw(ST, ORG1.org_id, ORG1.user_id, "raw", "raw text", "hash-1", &raw), STORE_OK);
    cr_assert_eq(store_prompt_ensure_raw(ST, ORG2.org_id, ORG2.user_id, "raw", "raw text", "hash-1", &theirs),
                 STORE_OK);
    store_history_query q = {.user_id = ORG1.user_id, .after_clear = 1, .limit = 20};
    store_history_page page;
    cr_assert_eq(store_history_list(ST, ORG1.org_id, &q, &page), STORE_OK);
    cr_assert_eq(page.total, 2);
    store_history_page_free(&page);
    usleep(2000);

    long deleted = -1, prompts_deleted = -1;
    cr_assert_eq(store_history_clear(ST, ORG1.org_id, ORG1.user_id, &deleted, &prompts_deleted), STORE_OK);
    cr_assert_eq(deleted, 0);
    cr_assert_eq(prompts_deleted, 1);
    store_prompt p;
    cr_assert_eq(store_prompt_get(ST, ORG1.org_id, raw.id, ORG1.user_id, &p), STORE_NOTFOUND);
    cr_assert_eq(store_prompt_get(ST, ORG1.org_id, stored, ORG1.user_id, &p), STORE_OK);
    store_prompt_clear(&p);
    cr_assert_eq(store_prompt_get(ST, ORG2.org_id, theirs.id, ORG2.user_id, &p), STORE_OK, "another org's went");
    store_prompt_clear(&p);
    /* the history is empty; the list (after_clear 0) still shows the stored prompt */
    cr_assert_eq(store_history_list(ST, ORG1.org_id, &q, &page), STORE_OK);
    cr_assert_eq(page.total, 0);
    store_history_page_free(&page);
    q.after_clear = 0;
    cr_assert_eq(store_history_list(ST, ORG1.org_id, &q, &page), STORE_OK);
    cr_assert_eq(page.total, 1);
    cr_assert_str_eq(page.items[0].id, stored);
    store_history_page_free(&page);
    /* every user's view: ORG1's admin row hidden by their clear */
    store_history_query all = {.after_clear = 1, .limit = 20};
    cr_assert_eq(store_history_list(ST, ORG1.org_id, &all, &page), STORE_OK);
    cr_assert_eq(page.total, 0);
    store_history_page_free(&page);
    store_user u;
    cr_assert_eq(store_user_get(ST, ORG1.org_id, ORG1.user_id, &u), STORE_OK);
    cr_assert_gt(u.history_cleared_at, 0);
    store_user_clear(&u);
    store_prompt_clear(&raw);
    store_prompt_clear(&theirs);
}

/* ---- durable rate limits: rate_hits ---- */

typedef struct hit_row {
    char bucket[32];
    int64_t at;
    long n;
} hit_row;

typedef struct hit_rows {
    hit_row rows[16];
    int count;
    int stop_after; /* 0 = never */
} hit_rows;

static int collect_hit(void *ud, const char *bucket, int64_t at_ms, long n)
{
    hit_rows *h = ud;
    if (h->count >= 16)
        return -1;
    snprintf(h->rows[h->count].bucket, sizeof h->rows[h->count].bucket, "%s", bucket);
    h->rows[h->count].at = at_ms;
    h->rows[h->count].n = n;
    h->count++;
    return h->stop_after && h->count >= h->stop_after;
}

Test(store, rate_hits_add_up_load_in_order_and_prune)
{
    store_rate_hit w1[] = {{"user:b", 1000, 1}, {"user:a", 2000, 2}, {"user:a", 1000, 1}, {"key:x", 1500, 1}};
    cr_assert_eq(store_rate_hits_write(ST, "day", w1, 4, -1), STORE_OK);
    /* the same bucket and time again adds up; another scope is apart */
    store_rate_hit w2[] = {{"user:a", 2000, 3}};
    cr_assert_eq(store_rate_hits_write(ST, "day", w2, 1, -1), STORE_OK);
    cr_assert_eq(store_rate_hits_write(ST, "minute", w2, 1, -1), STORE_OK);

    hit_rows h = {0};
    cr_assert_eq(store_rate_hits_load(ST, "day", 0, collect_hit, &h), STORE_OK);
    cr_assert_eq(h.count, 4);
    const hit_row want[] = {{"key:x", 1500, 1}, {"user:a", 1000, 1}, {"user:a", 2000, 5}, {"user:b", 1000, 1}};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(h.rows[i].bucket, want[i].bucket, "row %d", i);
        cr_assert_eq(h.rows[i].at, want[i].at, "row %d", i);
        cr_assert_eq(h.rows[i].n, want[i].n, "row %d", i);
    }
    /* since is exclusive: rows at or before it are left out */
    memset(&h, 0, sizeof h);
    cr_assert_eq(store_rate_hits_load(ST, "day", 1000, collect_hit, &h), STORE_OK);
    cr_assert_eq(h.count, 2);
    /* a callback that stops the read makes it an error */
    memset(&h, 0, sizeof h);
    h.stop_after = 1;
    cr_assert_eq(store_rate_hits_load(ST, "day", 0, collect_hit, &h), STORE_ERR);

    /* prune deletes what is at or before the time, in the same transaction as the write */
    store_rate_hit w3[] = {{"user:c", 3000, 1}};
    cr_assert_eq(store_rate_hits_write(ST, "day", w3, 1, 1500), STORE_OK);
    memset(&h, 0, sizeof h);
    cr_assert_eq(store_rate_hits_load(ST, "day", 0, collect_hit, &h), STORE_OK);
    cr_assert_eq(h.count, 2);
    cr_assert_str_eq(h.rows[0].bucket, "user:a");
    cr_assert_eq(h.rows[0].at, 2000);
    cr_assert_str_eq(h.rows[1].bucket, "user:c");
    /* ... only in its scope */
    memset(&h, 0, sizeof h);
    cr_assert_eq(store_rate_hits_load(ST, "minute", 0, collect_hit, &h), STORE_OK);
    cr_assert_eq(h.count, 1);
    cr_assert_eq(h.rows[0].n, 3);
    /* nothing to write, only a prune, is fine */
    cr_assert_eq(store_rate_hits_write(ST, "minute", NULL, 0, 5000), STORE_OK);
    memset(&h, 0, sizeof h);
    cr_assert_eq(store_rate_hits_load(ST, "minute", 0, collect_hit, &h), STORE_OK);
    cr_assert_eq(h.count, 0);
}

/* ---------------------------------------------------------------- identity provider users */

/* store_user_idp_find for subject sub of issuer "iss" in org's organization. */
static int idp_find(const store_key *org, const char *sub, const char *email, int verified, int link, store_user *u,
                    int *bound_now, int *refusal)
{
    store_idp_login in = {.org_id = org->org_id,
                          .issuer = "iss",
                          .subject = sub,
                          .email = email,
                          .email_verified = verified,
                          .link_privileged = link};
    return store_user_idp_find(ST, &in, u, bound_now, refusal);
}

Test(store, identity_provider_users_bind_by_subject_by_the_first_sight_rules)
{
    store_user u, admin;
    int bound_now, refusal;
    cr_assert_eq(store_user_get(ST, ORG1.org_id, ORG1.user_id, &admin), STORE_OK);

    /* an admin's email: refused unverified, refused verified without the setting; nothing bound */
    cr_assert_eq(idp_find(&ORG1, "s-admin", admin.email, 0, 0, &u, &bound_now, &refusal), STORE_CONFLICT);
    cr_assert_eq(refusal, STORE_IDP_EMAIL_UNVERIFIED);
    cr_assert_eq(idp_find(&ORG1, "s-admin", admin.email, 1, 0, &u, &bound_now, &refusal), STORE_CONFLICT);
    cr_assert_eq(refusal, STORE_IDP_PRIVILEGED);
    cr_assert_eq(idp_find(&ORG1, "s-admin", NULL, 0, 0, &u, &bound_now, &refusal), STORE_CONFLICT);
    cr_assert_eq(refusal, STORE_IDP_NO_EMAIL);
    /* with the setting: bound */
    cr_assert_eq(idp_find(&ORG1, "s-admin", admin.email, 1, 1, &u, &bound_now, &refusal), STORE_OK);
    cr_assert_eq(bound_now, 2);
    cr_assert_str_eq(u.id, admin.id);
    cr_assert_str_eq(u.role, "admin");
    store_user_clear(&u);
    /* found again by subject alone, with no email */
    cr_assert_eq(idp_find(&ORG1, "s-admin", "", 0, 0, &u, &bound_now, &refusal), STORE_OK);
    cr_assert_eq(bound_now, 0);
    cr_assert_str_eq(u.id, admin.id);
    store_user_clear(&u);
    /* another subject with the bound admin's email: refused even with the setting */
    cr_assert_eq(idp_find(&ORG1, "s-other", admin.email, 1, 1, &u, &bound_now, &refusal), STORE_CONFLICT);
    cr_assert_eq(refusal, STORE_IDP_EMAIL_BOUND);

    /* a new email: a new member, bound; in the other organization the subject is someone else */
    store_user n1, n2;
    cr_assert_eq(idp_find(&ORG1, "s-new", "new@example.com", 0, 0, &n1, &bound_now, &refusal), STORE_OK);
    cr_assert_eq(bound_now, 1);
    cr_assert_str_eq(n1.role, "member");
    cr_assert_str_eq(n1.email, "new@example.com");
    cr_assert_eq(idp_find(&ORG2, "s-new", "new@example.com", 0, 0, &n2, &bound_now, &refusal), STORE_OK);
    cr_assert_eq(bound_now, 1);
    cr_assert_str_neq(n1.id, n2.id);
    cr_assert_str_eq(n2.org_id, ORG2.org_id);
    store_user_clear(&n2);
    /* the same subject of another issuer is another identity */
    store_idp_login other = {
        .org_id = ORG1.org_id, .issuer = "iss2", .subject = "s-new", .email = "new@example.com", .email_verified = 1};
    cr_assert_eq(store_user_idp_find(ST, &other, &u, &bound_now, &refusal), STORE_CONFLICT);
    cr_assert_eq(refusal, STORE_IDP_EMAIL_BOUND);
    /* a changed email keeps the user and the local email */
    cr_assert_eq(idp_find(&ORG1, "s-new", "changed@example.com", 1, 0, &u, &bound_now, &refusal), STORE_OK);
    cr_assert_str_eq(u.id, n1.id);
    cr_assert_str_eq(u.email, "new@example.com");
    store_user_clear(&u);
    store_user_clear(&n1);
    store_user_clear(&admin);
}
