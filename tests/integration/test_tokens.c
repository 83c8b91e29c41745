/*
 * test_tokens.c — users and bearer tokens over real HTTP (issue 6, item 2):
 *
 *  - an HS256 token printed by `promptd tokens create` works alone as
 *    `Authorization: Bearer` and names its user;
 *  - the Jarvis pair (AppId key + Bearer token): the key names the
 *    application, the token the user (a member's token with the admin's key
 *    acts as the member: 403 on /api/v1/keys);
 *  - tampered, expired, not-yet-valid, wrongly issued or signed tokens, and
 *    a token of another organization's user with this organization's key:
 *    401 (expired tokens are signed here, with the server's secret given to
 *    both through PROMPTD_JWT_SECRET, since the CLI refuses short lifetimes);
 *  - RS256 tokens of an identity provider (a throwaway RSA key pair made by
 *    the `openssl` command; skipped with a message when it is missing),
 *    signed here with libjwt: the user is provisioned as a member on first
 *    sight; wrong issuer / audience, alg none, an HS256 token made with the
 *    public key as its secret, another key's signature: 401, and nobody is
 *    provisioned by a refused token;
 *  - /api/v1/keys: an admin creates (201, the secret once), lists (no secret
 *    anywhere), revokes (the key answers 401 at once); a member gets 403;
 *    no key or token ever appears in the server log.
 */
#include <criterion/criterion.h>
#include <jwt.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "support/harness.h"

static pd_server S;
static char keydir[256]; /* RS256 key pair, when a test made one */

static void teardown(void)
{
    pd_stop(&S);
    if (keydir[0]) {
        pd_rmrf(keydir);
        keydir[0] = '\0';
    }
}

TestSuite(tokens, .fini = teardown, .timeout = 60);

/* Stop promptd with SIGTERM and require a clean exit (0): a crash on the way
 * out, or a sanitizer report in the SAN=1 build, fails the test here. */
static void stop_clean(void)
{
    if (S.pid <= 0)
        return;
    int rc = pd_kill_wait(&S, SIGTERM, 15000);
    if (rc != 0) {
        char *log = pd_read_file(S.log_path);
        size_t n = log ? strlen(log) : 0;
        cr_assert_eq(rc, 0, "promptd exited with %d after SIGTERM; the end of its log:\n%s", rc,
                     log ? log + (n > 4000 ? n - 4000 : 0) : "(none)");
        free(log);
    }
    pd_stop(&S);
}

#define SECRET "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
#define ISSUER "https://idp.example.test/"
#define AUDIENCE "promptd-api"

/* ---------------------------------------------------------------- HTTP helpers */

/* A request with an optional key (AppId) and an optional bearer value. */
static pd_resp call_as(const char *key, const char *bearer, const char *method, const char *path, const char *body)
{
    char auth[9000];
    const char *h[2] = {NULL, NULL};
    if (bearer) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
        h[0] = auth;
    }
    pd_resp r;
    int rc = pd_req(&S, method, path, key, body, h, &r);
    cr_assert_eq(rc, 0, "%s %s: transfer failed: %s", method, path, r.error);
    return r;
}

static pd_resp expect_as(long status, const char *key, const char *bearer, const char *method, const char *path,
                         const char *body)
{
    pd_resp r = call_as(key, bearer, method, path, body);
    cr_assert_eq(r.status, status, "%s %s (key %s, bearer %s): want %ld, got %ld: %s", method, path, key ? "yes" : "no",
                 bearer ? "yes" : "no", status, r.status, r.body);
    return r;
}

/* The v1 error envelope with code. */
static void assert_v1_error(const pd_resp *r, long status, const char *code, const char *what)
{
    cr_assert_eq(r->status, status, "%s: want %ld, got %ld: %s", what, status, r->status, r->body);
    cr_assert(json_is_false(pd_json_at(r->json, "success")), "%s: %s", what, r->body);
    const char *c = pd_str_at(r->json, "error.code");
    cr_assert(c && strcmp(c, code) == 0, "%s: error.code %s, want %s: %s", what, c ? c : "(none)", code, r->body);
}

/* A refused token: 401 in the v1 envelope, with WWW-Authenticate. */
static void expect_401(const char *key, const char *bearer, const char *path, const char *what)
{
    pd_resp r = call_as(key, bearer, "GET", path, NULL);
    assert_v1_error(&r, 401, "UNAUTHORIZED", what);
    const char *www = pd_header(&r, "WWW-Authenticate");
    cr_assert(www && strncmp(www, "Bearer", 6) == 0, "%s: WWW-Authenticate %s", what, www ? www : "(none)");
    pd_resp_free(&r);
}

/* GET /api/v1/users/me as key/bearer: must be 200; the user's email and role must match. */
static void expect_me(const char *key, const char *bearer, const char *email, const char *role, char *user_id,
                      size_t idlen)
{
    pd_resp r = expect_as(200, key, bearer, "GET", "/api/v1/users/me", NULL);
    const char *e = pd_str_at(r.json, "data.email"), *ro = pd_str_at(r.json, "data.role");
    cr_assert(e && strcmp(e, email) == 0, "/users/me email %s, want %s: %s", e ? e : "(none)", email, r.body);
    cr_assert(ro && strcmp(ro, role) == 0, "/users/me role %s, want %s: %s", ro ? ro : "(none)", role, r.body);
    if (user_id)
        snprintf(user_id, idlen, "%s", pd_str_at(r.json, "data.uuid") ? pd_str_at(r.json, "data.uuid") : "");
    pd_resp_free(&r);
}

/* `promptd tokens create --user EMAIL [--org ORG] [--ttl TTL]` against S's database. */
static int cli_token(const char *email, const char *org, const char *ttl, char *tok, size_t toklen)
{
    const char *args[10];
    size_t n = 0;
    args[n++] = "tokens";
    args[n++] = "create";
    args[n++] = "--user";
    args[n++] = email;
    if (org) {
        args[n++] = "--org";
        args[n++] = org;
    }
    if (ttl) {
        args[n++] = "--ttl";
        args[n++] = ttl;
    }
    args[n] = NULL;
    char out[9000] = "";
    int rc = pd_cli(&S, args, out, sizeof out);
    if (rc == 0 && tok) {
        size_t len = strcspn(out, " \r\n");
        cr_assert(len > 0 && len < toklen, "tokens create printed: %s", out);
        memcpy(tok, out, len);
        tok[len] = '\0';
    }
    return rc;
}

/* POST /api/v1/users {email, role}: the new user's id. */
static void create_user(const char *email, const char *role, char *id, size_t idlen)
{
    char *body = pd_pack("{s:s, s:s, s:s}", "email", email, "name", "Test User", "role", role);
    pd_resp r = expect_as(201, S.admin_key, NULL, "POST", "/api/v1/users", body);
    free(body);
    /* the UUID: it is what a token's sub names (data.id is the user's number in the organization) */
    snprintf(id, idlen, "%s", pd_str_at(r.json, "data.uuid") ? pd_str_at(r.json, "data.uuid") : "");
    cr_assert_eq(strlen(id), 36, "%s", r.body);
    pd_resp_free(&r);
}

/* A key for user id, issued by the admin: POST /api/v1/users/:id/api-keys. */
static void user_key(const char *user_id, char *key, size_t keylen)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/users/%s/api-keys", user_id);
    pd_resp r = expect_as(201, S.admin_key, NULL, "POST", path, "{\"name\": \"theirs\"}");
    snprintf(key, keylen, "%s", pd_str_at(r.json, "data.key") ? pd_str_at(r.json, "data.key") : "");
    cr_assert(strncmp(key, "pk_live_", 8) == 0, "%s", r.body);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- token making */

static char *b64url(const void *data, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    cr_assert_not_null(out);
    sodium_bin2base64(out, cap, data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* header.payload.signature with HMAC-SHA256 over key (any length). */
static char *sign_hs256(const char *header, const char *payload, const char *key, size_t keylen)
{
    cr_assert_eq(sodium_init() < 0, 0);
    char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
    size_t n = strlen(h) + 1 + strlen(p);
    char *input = malloc(n + 1);
    snprintf(input, n + 1, "%s.%s", h, p);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, keylen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)input, n);
    crypto_auth_hmacsha256_final(&st, mac);
    char *sig = b64url(mac, sizeof mac);
    char *tok = malloc(n + 2 + strlen(sig));
    sprintf(tok, "%s.%s", input, sig);
    free(h);
    free(p);
    free(input);
    free(sig);
    return tok;
}

/* An unsigned token: header.payload. (alg none) */
static char *unsigned_token(const char *header, const char *payload)
{
    char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
    char *tok = malloc(strlen(h) + strlen(p) + 3);
    sprintf(tok, "%s.%s.", h, p);
    free(h);
    free(p);
    return tok;
}

/* Claims of promptd's own HS256 tokens, with times relative to now. exp_rel
 * / nbf_rel of 0 leave the claim out (nbf) or... (exp is always present unless
 * no_exp). */
static char *hs_payload(const char *iss, const char *aud, const char *sub, const char *org, const char *email,
                        long long exp_rel, long long nbf_rel, int no_exp)
{
    long long now = (long long)time(NULL);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "iss", iss, "aud", aud, "sub", sub, "org", org,
                          "email", email, "role", "admin", "iat", (json_int_t)(now - 10));
    if (!no_exp)
        json_object_set_new(j, "exp", json_integer(now + exp_rel));
    if (nbf_rel)
        json_object_set_new(j, "nbf", json_integer(now + nbf_rel));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* Flip one character of a token at position i (base64url letter to another). */
static char *flip(const char *tok, size_t i)
{
    char *t = strdup(tok);
    t[i] = t[i] == 'A' ? 'B' : 'A';
    return t;
}

/* ---------------------------------------------------------------- HS256 from the CLI */

Test(tokens, cli_token_alone_names_its_user)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    char tok[9000];
    cr_assert_eq(cli_token("admin@localhost", NULL, NULL, tok, sizeof tok), 0, "tokens create failed");
    cr_assert_eq(pd_count(tok, "."), 2, "not a JWT: %s", tok);

    char via_key[64], via_token[64];
    expect_me(S.admin_key, NULL, "admin@localhost", "admin", via_key, sizeof via_key);
    expect_me(NULL, tok, "admin@localhost", "admin", via_token, sizeof via_token);
    cr_assert_str_eq(via_token, via_key, "the token names another user than the key");
    pd_resp r = expect_as(200, NULL, tok, "GET", "/api/v1/users/me", NULL);
    const char *prefix = pd_str_at(r.json, "data.api_key_prefix");
    cr_assert(!prefix || !*prefix, "a token alone used no key, yet api_key_prefix is %s", prefix);
    /* the organization is named as with the key */
    pd_resp rk = expect_as(200, S.admin_key, NULL, "GET", "/api/v1/users/me", NULL);
    const char *org_k = pd_str_at(rk.json, "data.organization"), *org_t = pd_str_at(r.json, "data.organization");
    cr_assert(org_k && *org_k && org_t && strcmp(org_k, org_t) == 0, "organization by token %s, by key %s",
              org_t ? org_t : "(none)", org_k ? org_k : "(none)");
    pd_resp_free(&rk);
    pd_resp_free(&r);

    /* the token works on every surface */
    r = expect_as(200, NULL, tok, "GET", "/prompts", NULL);
    pd_resp_free(&r);
    r = expect_as(201, NULL, tok, "POST", "/prompts", "{\"prompt\": {\"name\": \"by token\", \"content\": \"hi\"}}");
    pd_resp_free(&r);
    r = expect_as(200, NULL, tok, "GET", "/v1/models", NULL);
    pd_resp_free(&r);
    r = expect_as(200, NULL, tok, "GET", "/api/v1/keys", NULL); /* the admin's token may manage keys */
    pd_resp_free(&r);

    /* the CLI's own rules */
    cr_assert_neq(cli_token("nobody@example.com", NULL, NULL, NULL, 0), 0, "a token for an unknown user");
    cr_assert_neq(cli_token("admin@localhost", "no-such-org", NULL, NULL, 0), 0, "a token in an unknown org");
    cr_assert_neq(cli_token("admin@localhost", NULL, "59", NULL, 0), 0, "--ttl 59 accepted");
    cr_assert_eq(cli_token("admin@localhost", NULL, "60", tok, sizeof tok), 0, "--ttl 60 refused");
    expect_me(NULL, tok, "admin@localhost", "admin", NULL, 0);
    stop_clean();
}

/* The rows of settings named name in the server's database (read directly, read-only). */
static int settings_rows(const char *name)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int n = -1;
    if (sqlite3_open_v2(S.db_path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM settings WHERE name = ?1", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static int rotate_secret(void)
{
    const char *args[] = {"tokens", "rotate-secret", NULL};
    return pd_cli(&S, args, NULL, 0);
}

Test(tokens, the_secret_lives_in_an_owner_only_file_and_rotates_without_breaking_tokens)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    char path[400];
    snprintf(path, sizeof path, "%s.jwt-secret", S.db_path);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "no secret file at %s", path);
    cr_assert_eq(st.st_mode & 0777, 0600, "secret file mode %03o", (unsigned)(st.st_mode & 0777));
    cr_assert_eq(settings_rows("jwt_hs256_secret"), 0, "the secret is still in the database");

    char t1[9000], t2[9000];
    cr_assert_eq(cli_token("admin@localhost", NULL, NULL, t1, sizeof t1), 0);
    expect_me(NULL, t1, "admin@localhost", "admin", NULL, 0);

    /* a rotation: the running server keeps its secret until it restarts */
    cr_assert_eq(rotate_secret(), 0, "rotate-secret failed");
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "rotated secret file mode %03o", (unsigned)(st.st_mode & 0777));
    cr_assert_eq(cli_token("admin@localhost", NULL, NULL, t2, sizeof t2), 0);
    cr_assert_str_neq(t1, t2);
    expect_me(NULL, t1, "admin@localhost", "admin", NULL, 0);
    expect_401(NULL, t2, "/api/v1/users/me", "a token of the new secret before the restart");
    /* after it, both the old token and the new one are good */
    cr_assert_eq(pd_restart(&S, NULL, NULL), 0, "promptd did not restart");
    expect_me(NULL, t1, "admin@localhost", "admin", NULL, 0);
    expect_me(NULL, t2, "admin@localhost", "admin", NULL, 0);
    /* a second rotation drops the first secret */
    cr_assert_eq(rotate_secret(), 0, "rotate-secret failed");
    cr_assert_eq(pd_restart(&S, NULL, NULL), 0, "promptd did not restart");
    expect_401(NULL, t1, "/api/v1/users/me", "a token two rotations old");
    expect_me(NULL, t2, "admin@localhost", "admin", NULL, 0);

    /* a file others may read is refused, naming the fix */
    pd_kill_wait(&S, SIGTERM, 15000);
    cr_assert_eq(chmod(path, 0644), 0);
    const char *args[] = {"tokens", "create", "--user", "admin@localhost", NULL};
    char out[9000] = "";
    cr_assert_neq(pd_cli(&S, args, out, sizeof out), 0, "a token signed with a world-readable secret");
    char *cli_log = NULL;
    char cli_log_path[400];
    snprintf(cli_log_path, sizeof cli_log_path, "%s/cli.log", S.dir);
    cli_log = pd_read_file(cli_log_path);
    cr_assert(cli_log && strstr(cli_log, "chmod 600"), "the CLI should name the fix: %s", cli_log ? cli_log : "");
    free(cli_log);
    cr_assert_eq(chmod(path, 0600), 0);
    cr_assert_eq(pd_restart(&S, NULL, NULL), 0, "promptd did not restart");
    expect_me(NULL, t2, "admin@localhost", "admin", NULL, 0);
    stop_clean();
}

Test(tokens, a_secret_kept_in_the_database_by_an_older_version_moves_to_the_file)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    pd_resp r = expect_as(200, S.admin_key, NULL, "GET", "/api/v1/users/me", NULL);
    char sub[64], org[64];
    snprintf(sub, sizeof sub, "%s", pd_str_at(r.json, "data.uuid"));
    snprintf(org, sizeof org, "%s", pd_str_at(r.json, "data.organization_id"));
    pd_resp_free(&r);
    cr_assert_eq(pd_kill_wait(&S, SIGTERM, 15000), 0, "promptd did not stop cleanly");
    /* as an older promptd left it: 32 random bytes in settings, no file */
    char path[400];
    snprintf(path, sizeof path, "%s.jwt-secret", S.db_path);
    cr_assert_eq(unlink(path), 0);
    unsigned char legacy[32];
    randombytes_buf(legacy, sizeof legacy);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open(S.db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "INSERT INTO settings (name, value, created_at) VALUES ('jwt_hs256_secret', ?1, 0)",
                                    -1, &st, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_bind_blob(st, 1, legacy, sizeof legacy, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    /* a token that older version signed */
    char *p = hs_payload("promptd", "promptd", sub, org, "admin@localhost", 600, 0, 0);
    char *old = sign_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", p, (const char *)legacy, sizeof legacy);
    free(p);

    cr_assert_eq(pd_restart(&S, NULL, NULL), 0, "promptd did not restart");
    expect_me(NULL, old, "admin@localhost", "admin", NULL, 0);
    cr_assert_eq(settings_rows("jwt_hs256_secret"), 0, "the old secret stayed in the database");
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0, "no secret file");
    cr_assert_eq(sb.st_mode & 0777, 0600);
    /* new tokens are signed with a new secret; the carried one only verifies */
    char t[9000];
    cr_assert_eq(cli_token("admin@localhost", NULL, NULL, t, sizeof t), 0);
    expect_me(NULL, t, "admin@localhost", "admin", NULL, 0);
    cr_assert_eq(pd_restart(&S, NULL, NULL), 0, "promptd did not restart");
    expect_me(NULL, old, "admin@localhost", "admin", NULL, 0);
    free(old);
    stop_clean();
}

Test(tokens, jarvis_pair_key_names_the_app_token_names_the_user)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    char member_id[64], admin_id[64], tok[9000], admin_tok[9000], member_key[128];
    create_user("member@example.com", "member", member_id, sizeof member_id);
    cr_assert_eq(cli_token("member@example.com", NULL, NULL, tok, sizeof tok), 0, "tokens create failed");
    cr_assert_eq(cli_token("admin@localhost", NULL, NULL, admin_tok, sizeof admin_tok), 0);

    /* admin's key + member's token: the caller is the member */
    char got[64];
    expect_me(S.admin_key, tok, "member@example.com", "member", got, sizeof got);
    cr_assert_str_eq(got, member_id);
    pd_resp r = call_as(S.admin_key, tok, "GET", "/api/v1/keys", NULL);
    assert_v1_error(&r, 403, "FORBIDDEN", "admin key + member token on /api/v1/keys");
    pd_resp_free(&r);
    r = call_as(S.admin_key, tok, "POST", "/api/v1/keys", "{\"name\": \"escalate\"}");
    assert_v1_error(&r, 403, "FORBIDDEN", "admin key + member token creating a key");
    pd_resp_free(&r);
    r = call_as(S.admin_key, tok, "POST", "/api/v1/users", "{\"email\": \"x@example.com\"}");
    assert_v1_error(&r, 403, "FORBIDDEN", "admin key + member token creating a user");
    pd_resp_free(&r);
    /* the same key alone is the admin again */
    expect_me(S.admin_key, NULL, "admin@localhost", "admin", admin_id, sizeof admin_id);
    r = expect_as(200, S.admin_key, NULL, "GET", "/api/v1/keys", NULL);
    pd_resp_free(&r);

    /* the member's token alone: the member */
    expect_me(NULL, tok, "member@example.com", "member", NULL, 0);
    r = call_as(NULL, tok, "GET", "/api/v1/keys", NULL);
    assert_v1_error(&r, 403, "FORBIDDEN", "member token on /api/v1/keys");
    pd_resp_free(&r);

    /* a member's key + the admin's token: the token's user (the admin) acts */
    user_key(member_id, member_key, sizeof member_key);
    expect_me(member_key, NULL, "member@example.com", "member", NULL, 0);
    expect_me(member_key, admin_tok, "admin@localhost", "admin", NULL, 0);

    /* a prompt made through the pair belongs to the member (their history) */
    r = expect_as(201, S.admin_key, tok, "POST", "/prompts", "{\"prompt\": {\"name\": \"mine\", \"content\": \"x\"}}");
    pd_resp_free(&r);

    /* a token whose user is deleted stops working */
    char path[128];
    snprintf(path, sizeof path, "/api/v1/users/%s", member_id);
    r = expect_as(200, S.admin_key, NULL, "DELETE", path, NULL);
    pd_resp_free(&r);
    expect_401(NULL, tok, "/api/v1/users/me", "the token of a deleted user");
    expect_401(S.admin_key, tok, "/api/v1/users/me", "admin key + the token of a deleted user");
    stop_clean();
}

Test(tokens, tampered_tokens_are_refused)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    char tok[9000], other_tok[9000];
    cr_assert_eq(cli_token("admin@localhost", NULL, NULL, tok, sizeof tok), 0);
    char member_id[64];
    create_user("m2@example.com", "member", member_id, sizeof member_id);
    cr_assert_eq(cli_token("m2@example.com", NULL, NULL, other_tok, sizeof other_tok), 0);
    expect_me(NULL, tok, "admin@localhost", "admin", NULL, 0);

    size_t len = strlen(tok);
    const char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
    size_t h_end = (size_t)(dot1 - tok), p_end = (size_t)(dot2 - tok);

    char *bad[16];
    size_t n = 0;
    bad[n++] = flip(tok, len - 5);      /* signature */
    bad[n++] = flip(tok, p_end - 3);    /* payload */
    bad[n++] = flip(tok, h_end - 2);    /* header */
    bad[n++] = strndup(tok, p_end + 1); /* signature removed: "h.p." */
    bad[n++] = strndup(tok, len - 10);  /* truncated signature */
    /* the member's payload under the admin's signature */
    {
        const char *o1 = strchr(other_tok, '.'), *o2 = strrchr(other_tok, '.');
        char *t = malloc(len + strlen(other_tok) + 1);
        sprintf(t, "%.*s%.*s%s", (int)h_end, tok, (int)(o2 - o1), o1, dot2);
        bad[n++] = t;
    }
    /* a payload that makes the member an admin, with the member's own signature */
    {
        const char *o1 = strchr(other_tok, '.'), *o2 = strrchr(other_tok, '.');
        char *payload = malloc(4096);
        size_t plen = 0;
        cr_assert_eq(sodium_init() < 0, 0);
        size_t b64len = (size_t)(o2 - o1 - 1);
        cr_assert_eq(sodium_base642bin((unsigned char *)payload, 4095, o1 + 1, b64len, NULL, &plen, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
        payload[plen] = '\0';
        json_t *j = json_loads(payload, 0, NULL);
        cr_assert_not_null(j, "payload: %s", payload);
        json_object_set_new(j, "role", json_string("admin"));
        char *np = json_dumps(j, JSON_COMPACT);
        char *np64 = b64url(np, strlen(np));
        char *t = malloc(strlen(other_tok) + strlen(np64) + 8);
        sprintf(t, "%.*s.%s%s", (int)(o1 - other_tok), other_tok, np64, o2);
        bad[n++] = t;
        json_decref(j);
        free(np);
        free(np64);
        free(payload);
    }
    bad[n++] = strdup("aaaa.bbbb.cccc");
    bad[n++] = strdup("eyJhbGciOiJIUzI1NiJ9.e30.");

    for (size_t i = 0; i < n; i++) {
        char what[64];
        snprintf(what, sizeof what, "tampered token #%zu alone", i);
        expect_401(NULL, bad[i], "/api/v1/users/me", what);
        snprintf(what, sizeof what, "tampered token #%zu with a valid key", i);
        expect_401(S.admin_key, bad[i], "/api/v1/users/me", what);
        /* the Jarvis surface refuses it too, in its own envelope */
        pd_resp r = call_as(S.admin_key, bad[i], "GET", "/prompts", NULL);
        cr_assert_eq(r.status, 401, "tampered token #%zu on /prompts: %ld %s", i, r.status, r.body);
        cr_assert_str_eq(pd_str_at(r.json, "errors.0.code") ? pd_str_at(r.json, "errors.0.code") : "", "unauthorized",
                         "%s", r.body);
        pd_resp_free(&r);
        free(bad[i]);
    }
    /* the genuine ones still work */
    expect_me(NULL, tok, "admin@localhost", "admin", NULL, 0);
    expect_me(NULL, other_tok, "m2@example.com", "member", NULL, 0);
    stop_clean();
}

Test(tokens, expired_not_yet_valid_and_misissued_hs256_tokens_are_refused)
{
    const char *env[] = {"PROMPTD_JWT_SECRET=" SECRET, NULL};
    cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start");
    pd_resp r = expect_as(200, S.admin_key, NULL, "GET", "/api/v1/users/me", NULL);
    char sub[64], org[64];
    snprintf(sub, sizeof sub, "%s", pd_str_at(r.json, "data.uuid"));
    snprintf(org, sizeof org, "%s", pd_str_at(r.json, "data.organization_id"));
    pd_resp_free(&r);

    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    /* this test's signer is right: a token it makes with the server's secret works */
    char *p = hs_payload("promptd", "promptd", sub, org, "admin@localhost", 600, 0, 0);
    char *good = sign_hs256(hdr, p, SECRET, strlen(SECRET));
    expect_me(NULL, good, "admin@localhost", "admin", NULL, 0);
    expect_me(S.admin_key, good, "admin@localhost", "admin", NULL, 0);
    free(p);

    /* so does the CLI's, given the same secret */
    const char *args[] = {"tokens", "create", "--user", "admin@localhost", "--db", S.db_path, NULL};
    const char *cli_env[] = {"PROMPTD_JWT_SECRET=" SECRET, NULL};
    char out[9000] = "", err[2000] = "";
    cr_assert_eq(pd_run(args, cli_env, 30000, out, sizeof out, err, sizeof err), 0, "tokens create: %s", err);
    out[strcspn(out, " \r\n")] = '\0';
    expect_me(NULL, out, "admin@localhost", "admin", NULL, 0);

    struct {
        const char *what, *header, *iss, *aud, *key;
        long long exp_rel, nbf_rel;
        int no_exp;
    } cases[] = {
        {"expired an hour ago", NULL, "promptd", "promptd", SECRET, -3600, 0, 0},
        {"expired a day ago", NULL, "promptd", "promptd", SECRET, -86400, 0, 0},
        {"not valid for another hour (nbf)", NULL, "promptd", "promptd", SECRET, 7200, 3600, 0},
        {"no exp", NULL, "promptd", "promptd", SECRET, 0, 0, 1},
        {"wrong issuer", NULL, "someone-else", "promptd", SECRET, 600, 0, 0},
        {"wrong audience", NULL, "promptd", "another-service", SECRET, 600, 0, 0},
        {"signed with another secret", NULL, "promptd", "promptd", "another-secret-0123456789-abcdefghijklmnop", 600, 0,
         0},
        {"alg HS512 (not allowed)", "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", "promptd", "promptd", SECRET, 600, 0, 0},
        {"crit header", "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":[\"exp\"]}", "promptd", "promptd", SECRET, 600, 0,
         0},
        {"typ other than JWT", "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", "promptd", "promptd", SECRET, 600, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p = hs_payload(cases[i].iss, cases[i].aud, sub, org, "admin@localhost", cases[i].exp_rel, cases[i].nbf_rel,
                       cases[i].no_exp);
        char *t = sign_hs256(cases[i].header ? cases[i].header : hdr, p, cases[i].key, strlen(cases[i].key));
        expect_401(NULL, t, "/api/v1/users/me", cases[i].what);
        expect_401(S.admin_key, t, "/api/v1/users/me", cases[i].what);
        free(t);
        free(p);
    }
    /* alg none: no signature at all */
    p = hs_payload("promptd", "promptd", sub, org, "admin@localhost", 600, 0, 0);
    char *none = unsigned_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", p);
    expect_401(NULL, none, "/api/v1/users/me", "alg none");
    expect_401(S.admin_key, none, "/api/v1/users/me", "alg none with a key");
    free(none);
    /* a user id that does not exist, properly signed */
    free(p);
    p = hs_payload("promptd", "promptd", "0190a0b0-1234-7abc-8def-0123456789ab", org, "ghost@example.com", 600, 0, 0);
    char *ghost = sign_hs256(hdr, p, SECRET, strlen(SECRET));
    expect_401(NULL, ghost, "/api/v1/users/me", "a signed token naming no user");
    free(ghost);
    free(p);
    /* the expired one is refused with a reason that says so */
    p = hs_payload("promptd", "promptd", sub, org, "admin@localhost", -3600, 0, 0);
    char *expired = sign_hs256(hdr, p, SECRET, strlen(SECRET));
    r = call_as(NULL, expired, "GET", "/api/v1/users/me", NULL);
    cr_assert(strstr(r.body, "xpired") != NULL, "the 401 does not say the token expired: %s", r.body);
    pd_resp_free(&r);
    free(expired);
    free(p);
    expect_me(NULL, good, "admin@localhost", "admin", NULL, 0);
    free(good);
    stop_clean();
}

Test(tokens, another_organizations_user_with_this_organizations_key_is_refused)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    char other_key[128], other_tok[9000], tok[9000];
    cr_assert_eq(pd_new_org_key(&S, "other", other_key, sizeof other_key), 0);
    cr_assert_eq(cli_token("admin@other", "other", NULL, other_tok, sizeof other_tok), 0, "tokens create --org other");
    cr_assert_eq(cli_token("admin@localhost", NULL, NULL, tok, sizeof tok), 0);

    /* each token works alone, in its own organization */
    expect_me(NULL, other_tok, "admin@other", "admin", NULL, 0);
    expect_me(other_key, other_tok, "admin@other", "admin", NULL, 0);
    expect_me(NULL, tok, "admin@localhost", "admin", NULL, 0);

    /* crossed: refused, on every surface */
    expect_401(S.admin_key, other_tok, "/api/v1/users/me", "default's key + other's token");
    expect_401(other_key, tok, "/api/v1/users/me", "other's key + default's token");
    const char *paths[] = {"/prompts", "/v1/models"};
    for (size_t i = 0; i < 2; i++) {
        pd_resp r = call_as(S.admin_key, other_tok, "GET", paths[i], NULL);
        cr_assert_eq(r.status, 401, "GET %s with default's key + other's token: %ld %s", paths[i], r.status, r.body);
        pd_resp_free(&r);
    }
    /* nothing was written through the crossed pair */
    pd_resp r =
        call_as(S.admin_key, other_tok, "POST", "/prompts", "{\"prompt\": {\"name\": \"x\", \"content\": \"y\"}}");
    cr_assert_eq(r.status, 401, "%s", r.body);
    pd_resp_free(&r);
    r = expect_as(200, S.admin_key, NULL, "GET", "/prompts", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 0, "%s", r.body);
    pd_resp_free(&r);
    r = expect_as(200, other_key, NULL, "GET", "/prompts", NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 0, "%s", r.body);
    pd_resp_free(&r);
    stop_clean();
}

/* ---------------------------------------------------------------- RS256 */

typedef struct rsa_keys {
    char priv[300], pub[300], other_priv[300];
    char *priv_pem, *pub_pem, *other_priv_pem;
} rsa_keys;

static int have_openssl(void) { return system("command -v openssl >/dev/null 2>&1") == 0; }

/* A throwaway RSA key pair (and a second private key) in keydir. */
static void make_rsa_keys(rsa_keys *k)
{
    if (!have_openssl())
        cr_skip_test("the openssl command is not installed: the RS256 tests need it to make an RSA key pair");
    cr_assert_eq(pd_mkdtemp(keydir, sizeof keydir), 0);
    snprintf(k->priv, sizeof k->priv, "%s/idp.key", keydir);
    snprintf(k->pub, sizeof k->pub, "%s/idp.pub", keydir);
    snprintf(k->other_priv, sizeof k->other_priv, "%s/other.key", keydir);
    char cmd[2400];
    snprintf(cmd, sizeof cmd,
             "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '%s' 2>/dev/null && "
             "openssl pkey -in '%s' -pubout -out '%s' 2>/dev/null && "
             "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '%s' 2>/dev/null",
             k->priv, k->priv, k->pub, k->other_priv);
    cr_assert_eq(system(cmd), 0, "openssl could not make the RSA keys");
    k->priv_pem = pd_read_file(k->priv);
    k->pub_pem = pd_read_file(k->pub);
    k->other_priv_pem = pd_read_file(k->other_priv);
    cr_assert(k->priv_pem && k->pub_pem && k->other_priv_pem);
}

static void free_rsa_keys(rsa_keys *k)
{
    free(k->priv_pem);
    free(k->pub_pem);
    free(k->other_priv_pem);
}

/* An RS256 token signed by libjwt. grants: a JSON object of claims. */
static char *rs256_token(const char *priv_pem, const char *grants_json)
{
    jwt_t *j = NULL;
    cr_assert_eq(jwt_new(&j), 0);
    cr_assert_eq(jwt_add_grants_json(j, grants_json), 0, "grants: %s", grants_json);
    cr_assert_eq(jwt_set_alg(j, JWT_ALG_RS256, (const unsigned char *)priv_pem, (int)strlen(priv_pem)), 0);
    char *t = jwt_encode_str(j);
    cr_assert_not_null(t, "libjwt could not sign");
    char *copy = strdup(t);
    free(t); /* libjwt 1.10 allocates with malloc */
    jwt_free(j);
    return copy;
}

/* Claims of an identity provider's token; exp relative to now. */
static char *idp_claims(const char *iss, const char *aud_json, const char *email, long long exp_rel, const char *extra)
{
    long long now = (long long)time(NULL);
    char *s = malloc(2048);
    snprintf(s, 2048, "{\"iss\": \"%s\", \"aud\": %s, \"sub\": \"idp|%s\", %s%s%s \"iat\": %lld, \"exp\": %lld%s%s}",
             iss, aud_json, email ? email : "none", email ? "\"email\": \"" : "", email ? email : "",
             email ? "\"," : "", now - 5, now + exp_rel, extra ? ", " : "", extra ? extra : "");
    return s;
}

static void start_rs256(const rsa_keys *k)
{
    char file[400];
    snprintf(file, sizeof file, "PROMPTD_JWT_PUBLIC_KEY_FILE=%s", k->pub);
    const char *env[] = {file, "PROMPTD_JWT_ISSUER=" ISSUER, "PROMPTD_JWT_AUDIENCE=" AUDIENCE, NULL};
    cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start with an RS256 public key");
}

static long long users_total(void)
{
    pd_resp r = expect_as(200, S.admin_key, NULL, "GET", "/api/v1/users?page_size=100", NULL);
    long long n = pd_int_at(r.json, "data.pagination.total_items", -1);
    pd_resp_free(&r);
    return n;
}

static int user_listed(const char *email)
{
    pd_resp r = expect_as(200, S.admin_key, NULL, "GET", "/api/v1/users?page_size=100", NULL);
    char needle[300];
    snprintf(needle, sizeof needle, "\"email\":\"%s\"", email);
    int found = strstr(r.body, needle) != NULL;
    pd_resp_free(&r);
    return found;
}

Test(tokens, rs256_identity_provider_tokens_provision_members)
{
    rsa_keys k = {0};
    make_rsa_keys(&k);
    start_rs256(&k);
    long long before = users_total();

    char *c = idp_claims(ISSUER, "\"" AUDIENCE "\"", "new.user@example.com", 600, NULL);
    char *tok = rs256_token(k.priv_pem, c);
    free(c);
    char id1[64], id2[64];
    expect_me(NULL, tok, "new.user@example.com", "member", id1, sizeof id1);
    cr_assert_eq(users_total(), before + 1, "the provider's user was not provisioned once");
    cr_assert(user_listed("new.user@example.com"));
    /* seen again: the same user, not a second one */
    expect_me(NULL, tok, "new.user@example.com", "member", id2, sizeof id2);
    cr_assert_str_eq(id1, id2);
    cr_assert_eq(users_total(), before + 1);
    /* with the organization's key (the Jarvis pair): the same user */
    expect_me(S.admin_key, tok, "new.user@example.com", "member", id2, sizeof id2);
    cr_assert_str_eq(id1, id2);
    /* a member may not manage keys */
    pd_resp r = call_as(NULL, tok, "GET", "/api/v1/keys", NULL);
    assert_v1_error(&r, 403, "FORBIDDEN", "an RS256 member on /api/v1/keys");
    pd_resp_free(&r);
    free(tok);

    /* the provider's "role" claim does not make an admin */
    c = idp_claims(ISSUER, "\"" AUDIENCE "\"", "claims.admin@example.com", 600, "\"role\": \"admin\"");
    tok = rs256_token(k.priv_pem, c);
    free(c);
    expect_me(NULL, tok, "claims.admin@example.com", "member", NULL, 0);
    r = call_as(NULL, tok, "POST", "/api/v1/keys", "{}");
    assert_v1_error(&r, 403, "FORBIDDEN", "an RS256 token claiming admin");
    pd_resp_free(&r);
    free(tok);

    /* aud may be an array naming the audience */
    c = idp_claims(ISSUER, "[\"something-else\", \"" AUDIENCE "\"]", "array.aud@example.com", 600, NULL);
    tok = rs256_token(k.priv_pem, c);
    free(c);
    expect_me(NULL, tok, "array.aud@example.com", "member", NULL, 0);
    free(tok);

    /* a token naming the local admin's email does not become the admin
     * (the binding rules are tested below) */
    c = idp_claims(ISSUER, "\"" AUDIENCE "\"", "admin@localhost", 600, NULL);
    tok = rs256_token(k.priv_pem, c);
    free(c);
    expect_401(NULL, tok, "/api/v1/users/me", "a provider token naming admin@localhost");
    free(tok);
    free_rsa_keys(&k);
    stop_clean();
}

/* An identity provider's token for subject sub with email (NULL: none) and
 * email_verified (-1: absent, 0 false, 1 true); extra: more claims or NULL. */
static char *idp_token(const rsa_keys *k, const char *sub, const char *email, int verified, const char *extra)
{
    long long now = (long long)time(NULL);
    char claims[2048];
    snprintf(claims, sizeof claims,
             "{\"iss\": \"%s\", \"aud\": \"%s\", \"sub\": \"%s\", \"iat\": %lld, \"exp\": %lld%s%s%s%s%s%s}", ISSUER,
             AUDIENCE, sub, now - 5, now + 600, email ? ", \"email\": \"" : "", email ? email : "", email ? "\"" : "",
             verified < 0 ? ""
             : verified   ? ", \"email_verified\": true"
                          : ", \"email_verified\": false",
             extra ? ", " : "", extra ? extra : "");
    return rs256_token(k->priv_pem, claims);
}

/* The token is refused with 401 and a message containing phrase; nobody is
 * made a user by it. */
static void expect_refused(char *tok, const char *phrase, const char *what)
{
    long long before = users_total();
    pd_resp r = call_as(NULL, tok, "GET", "/api/v1/users/me", NULL);
    assert_v1_error(&r, 401, "UNAUTHORIZED", what);
    const char *msg = pd_str_at(r.json, "error.message");
    cr_assert(msg && strstr(msg, phrase), "%s: the message does not say \"%s\": %s", what, phrase, r.body);
    pd_resp_free(&r);
    /* the Jarvis pair too */
    expect_401(S.admin_key, tok, "/api/v1/users/me", what);
    cr_assert_eq(users_total(), before, "%s: a refused token made a user", what);
    free(tok);
}

Test(tokens, rs256_users_are_bound_by_issuer_and_subject_not_by_email)
{
    rsa_keys k = {0};
    make_rsa_keys(&k);
    start_rs256(&k);
    char admin_id[64], id[64], id2[64];
    expect_me(S.admin_key, NULL, "admin@localhost", "admin", admin_id, sizeof admin_id);

    /* the local admin's email, unverified or verified: never the admin */
    expect_refused(idp_token(&k, "idp|mallory", "admin@localhost", -1, NULL), "verified",
                   "admin@localhost without email_verified");
    expect_refused(idp_token(&k, "idp|mallory", "admin@localhost", 0, NULL), "verified",
                   "admin@localhost with email_verified false");
    expect_refused(idp_token(&k, "idp|mallory", "ADMIN@localhost", 1, NULL), "admin",
                   "admin@localhost (other case) with email_verified true");
    expect_refused(idp_token(&k, "idp|mallory", "admin@localhost", 1, "\"role\": \"admin\""), "admin",
                   "admin@localhost verified, claiming the admin role");
    /* and the refusals bound nothing: the admin is no one's */
    expect_me(S.admin_key, NULL, "admin@localhost", "admin", id, sizeof id);
    cr_assert_str_eq(id, admin_id);

    /* a local member is bound on first sight by a verified email only */
    char member_id[64];
    create_user("plain@example.com", "member", member_id, sizeof member_id);
    expect_refused(idp_token(&k, "idp|plain", "plain@example.com", -1, NULL), "verified",
                   "a member's email without email_verified");
    expect_refused(idp_token(&k, "idp|plain", "plain@example.com", 0, NULL), "verified",
                   "a member's email with email_verified false");
    /* a malformed email_verified is a malformed token */
    expect_refused(idp_token(&k, "idp|plain", "plain@example.com", -1, "\"email_verified\": 1"), "Invalid bearer token",
                   "email_verified as a number");
    char *tok = idp_token(&k, "idp|plain", "plain@example.com", 1, NULL);
    long long before = users_total();
    expect_me(NULL, tok, "plain@example.com", "member", id, sizeof id);
    cr_assert_str_eq(id, member_id, "the verified email did not bind the existing member");
    cr_assert_eq(users_total(), before);
    free(tok);

    /* the same subject with a new email (unverified even): the same user, who keeps the local email */
    tok = idp_token(&k, "idp|plain", "renamed@example.com", 0, NULL);
    expect_me(NULL, tok, "plain@example.com", "member", id, sizeof id);
    cr_assert_str_eq(id, member_id, "a changed email at the provider changed the user");
    expect_me(S.admin_key, tok, "plain@example.com", "member", id, sizeof id); /* the Jarvis pair */
    cr_assert_str_eq(id, member_id);
    free(tok);
    cr_assert(!user_listed("renamed@example.com"), "the new email made a second user");
    /* and with no email at all */
    tok = idp_token(&k, "idp|plain", NULL, -1, NULL);
    expect_me(NULL, tok, "plain@example.com", "member", id, sizeof id);
    cr_assert_str_eq(id, member_id);
    free(tok);
    cr_assert_eq(users_total(), before);

    /* another subject with the bound user's email, verified: refused */
    expect_refused(idp_token(&k, "idp|intruder", "plain@example.com", 1, NULL), "another",
                   "another subject with a bound user's verified email");
    /* the same subject name from another issuer is another identity */
    {
        long long now = (long long)time(NULL);
        char claims[1024];
        snprintf(claims, sizeof claims,
                 "{\"iss\": \"https://other-idp.example.test/\", \"aud\": \"%s\", \"sub\": \"idp|plain\", "
                 "\"email\": \"plain@example.com\", \"email_verified\": true, \"exp\": %lld}",
                 AUDIENCE, now + 600);
        /* promptd trusts one issuer: another's token is refused before any binding */
        expect_refused(rs256_token(k.priv_pem, claims), "issuer", "another issuer");
    }

    /* two subjects, one new email: the first makes a member; the second never shares that user */
    tok = idp_token(&k, "idp|first", "shared@example.com", 0, NULL);
    expect_me(NULL, tok, "shared@example.com", "member", id, sizeof id);
    cr_assert_eq(users_total(), before + 1);
    free(tok);
    expect_refused(idp_token(&k, "idp|second", "shared@example.com", 0, NULL), "another",
                   "a second subject with the first's unverified email");
    expect_refused(idp_token(&k, "idp|second", "SHARED@example.com", 1, NULL), "another",
                   "a second subject with the first's email, verified");
    tok = idp_token(&k, "idp|first", "shared@example.com", 1, NULL);
    expect_me(NULL, tok, "shared@example.com", "member", id2, sizeof id2);
    cr_assert_str_eq(id, id2);
    free(tok);

    /* a new subject without an email names no one */
    expect_refused(idp_token(&k, "idp|anonymous", NULL, -1, NULL), "no email", "a new subject without email");
    /* Cognito's string form of email_verified */
    create_user("cognito@example.com", "member", member_id, sizeof member_id);
    tok = idp_token(&k, "idp|cognito", "cognito@example.com", -1, "\"email_verified\": \"true\"");
    expect_me(NULL, tok, "cognito@example.com", "member", id, sizeof id);
    cr_assert_str_eq(id, member_id);
    free(tok);

    /* a bound user who is deleted takes the binding along: the subject is new again */
    char path[128];
    snprintf(path, sizeof path, "/api/v1/users/%s", member_id);
    pd_resp r = call_as(S.admin_key, NULL, "DELETE", path, NULL);
    cr_assert(r.status == 200 || r.status == 204, "DELETE %s: %ld %s", path, r.status, r.body);
    pd_resp_free(&r);
    tok = idp_token(&k, "idp|cognito", "cognito@example.com", 0, NULL);
    expect_me(NULL, tok, "cognito@example.com", "member", id, sizeof id);
    cr_assert_str_neq(id, member_id);
    free(tok);
    free_rsa_keys(&k);
    stop_clean();
}

/* Bindings are per organization: the org claim chooses where a subject is
 * bound, and a token bound in one organization never passes with another's
 * key. */
Test(tokens, rs256_bindings_belong_to_one_organization)
{
    rsa_keys k = {0};
    make_rsa_keys(&k);
    start_rs256(&k);
    char other_key[128], id_other[64], id_default[64], id[64];
    cr_assert_eq(pd_new_org_key(&S, "other", other_key, sizeof other_key), 0);

    /* the other organization's admin is as safe as ours */
    expect_refused(idp_token(&k, "idp|mallory", "admin@other", 1, "\"org\": \"other\""), "admin",
                   "the other organization's admin email, verified");
    expect_me(other_key, NULL, "admin@other", "admin", NULL, 0);

    char *in_other = idp_token(&k, "idp|traveller", "traveller@example.com", 0, "\"org\": \"other\"");
    expect_me(NULL, in_other, "traveller@example.com", "member", id_other, sizeof id_other);
    expect_me(other_key, in_other, "traveller@example.com", "member", id, sizeof id);
    cr_assert_str_eq(id, id_other);
    /* with this organization's key: refused, and nothing made here */
    long long before = users_total();
    expect_401(S.admin_key, in_other, "/api/v1/users/me", "default's key + a token bound in other");
    cr_assert_eq(users_total(), before);
    cr_assert(!user_listed("traveller@example.com"), "a token of another organization made a user here");
    free(in_other);

    /* the same subject without the org claim is a user of the default organization, another one */
    char *in_default = idp_token(&k, "idp|traveller", "traveller@example.com", 0, NULL);
    expect_me(S.admin_key, in_default, "traveller@example.com", "member", id_default, sizeof id_default);
    cr_assert_str_neq(id_default, id_other);
    expect_401(other_key, in_default, "/api/v1/users/me", "other's key + a token bound in default");
    free(in_default);
    free_rsa_keys(&k);
    stop_clean();
}

/* One first-sight request, run on its own thread. */
typedef struct first_sight {
    pthread_t thread;
    const char *token;
    long status;
    char uuid[64];
} first_sight;

static void *first_sight_run(void *arg)
{
    first_sight *f = arg;
    char auth[9000];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", f->token);
    const char *h[] = {auth, NULL};
    pd_resp r;
    f->status = pd_req(&S, "GET", "/api/v1/users/me", NULL, NULL, h, &r) == 0 ? r.status : -1;
    const char *u = f->status == 200 ? pd_str_at(r.json, "data.uuid") : NULL;
    snprintf(f->uuid, sizeof f->uuid, "%s", u ? u : "");
    pd_resp_free(&r);
    return NULL;
}

/* Many first tokens of one new subject at once: one user, bound once. */
Test(tokens, rs256_concurrent_first_sights_make_one_user)
{
    rsa_keys k = {0};
    make_rsa_keys(&k);
    start_rs256(&k);
    long long before = users_total();
    char *tok = idp_token(&k, "idp|rush", "rush@example.com", 1, NULL);
    first_sight f[8];
    for (size_t i = 0; i < 8; i++) {
        f[i] = (first_sight){.token = tok};
        cr_assert_eq(pthread_create(&f[i].thread, NULL, first_sight_run, &f[i]), 0);
    }
    for (size_t i = 0; i < 8; i++)
        pthread_join(f[i].thread, NULL);
    for (size_t i = 0; i < 8; i++) {
        cr_assert_eq(f[i].status, 200, "request %zu: %ld", i, f[i].status);
        cr_assert_str_eq(f[i].uuid, f[0].uuid, "request %zu found another user", i);
    }
    cr_assert_eq(users_total(), before + 1);
    free(tok);
    free_rsa_keys(&k);
    stop_clean();
}

Test(tokens, rs256_an_admin_is_bound_only_with_the_explicit_setting)
{
    rsa_keys k = {0};
    make_rsa_keys(&k);
    char file[400];
    snprintf(file, sizeof file, "PROMPTD_JWT_PUBLIC_KEY_FILE=%s", k.pub);
    const char *env[] = {file, "PROMPTD_JWT_ISSUER=" ISSUER, "PROMPTD_JWT_AUDIENCE=" AUDIENCE,
                         "PROMPTD_JWT_LINK_ADMINS=1", NULL};
    cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start with PROMPTD_JWT_LINK_ADMINS=1");
    char admin_id[64], id[64];
    expect_me(S.admin_key, NULL, "admin@localhost", "admin", admin_id, sizeof admin_id);
    /* still never on an unverified email */
    expect_refused(idp_token(&k, "idp|boss", "admin@localhost", 0, NULL), "verified", "unverified admin email");
    char *tok = idp_token(&k, "idp|boss", "admin@localhost", 1, NULL);
    expect_me(NULL, tok, "admin@localhost", "admin", id, sizeof id);
    cr_assert_str_eq(id, admin_id);
    free(tok);
    /* bound now: a second subject cannot take the admin over */
    expect_refused(idp_token(&k, "idp|mallory", "admin@localhost", 1, NULL), "another",
                   "a second subject with the bound admin's email");
    free_rsa_keys(&k);
    stop_clean();

    /* the setting takes 0 or 1 only */
    const char *bad_env[] = {"PROMPTD_JWT_LINK_ADMINS=yes", NULL};
    cr_assert_neq(pd_start(&S, NULL, bad_env), 0, "promptd started with PROMPTD_JWT_LINK_ADMINS=yes");
    pd_stop(&S);
}

Test(tokens, rs256_bad_tokens_are_refused_and_provision_nobody)
{
    rsa_keys k = {0};
    make_rsa_keys(&k);
    start_rs256(&k);
    long long before = users_total();
    long long now = (long long)time(NULL);
    char *c, *tok;

    struct {
        const char *what;
        char *token;
        const char *email;
    } bad[16];
    size_t n = 0;
#define BAD(what_, tok_, email_) (bad[n].what = (what_), bad[n].token = (tok_), bad[n].email = (email_), n++)

    c = idp_claims("https://evil.example.test/", "\"" AUDIENCE "\"", "iss@example.com", 600, NULL);
    BAD("wrong issuer", rs256_token(k.priv_pem, c), "iss@example.com");
    free(c);
    c = idp_claims(ISSUER, "\"another-api\"", "aud@example.com", 600, NULL);
    BAD("wrong audience", rs256_token(k.priv_pem, c), "aud@example.com");
    free(c);
    c = idp_claims(ISSUER, "[\"another-api\", \"yet-another\"]", "audarr@example.com", 600, NULL);
    BAD("audience array without ours", rs256_token(k.priv_pem, c), "audarr@example.com");
    free(c);
    c = idp_claims(ISSUER, "\"" AUDIENCE "\"", "expired@example.com", -3600, NULL);
    BAD("expired", rs256_token(k.priv_pem, c), "expired@example.com");
    free(c);
    char nbf[64];
    snprintf(nbf, sizeof nbf, "\"nbf\": %lld", now + 3600);
    c = idp_claims(ISSUER, "\"" AUDIENCE "\"", "nbf@example.com", 7200, nbf);
    BAD("not yet valid", rs256_token(k.priv_pem, c), "nbf@example.com");
    free(c);
    c = idp_claims(ISSUER, "\"" AUDIENCE "\"", "otherkey@example.com", 600, NULL);
    BAD("signed by another key", rs256_token(k.other_priv_pem, c), "otherkey@example.com");
    /* alg none over valid claims */
    BAD("alg none", unsigned_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", c), "otherkey@example.com");
    free(c);
    /* algorithm confusion: HS256 with the public key's PEM text as the HMAC secret */
    c = idp_claims(ISSUER, "\"" AUDIENCE "\"", "confused@example.com", 600, NULL);
    BAD("HS256 signed with the RSA public key as secret",
        sign_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", c, k.pub_pem, strlen(k.pub_pem)), "confused@example.com");
    free(c);
    c = idp_claims(ISSUER, "\"" AUDIENCE "\"", NULL, 600, NULL);
    BAD("no email claim", rs256_token(k.priv_pem, c), "none");
    free(c);
    c = idp_claims(ISSUER, "\"" AUDIENCE "\"", "noorg@example.com", 600, "\"org\": \"no-such-organization\"");
    BAD("org claim naming no organization", rs256_token(k.priv_pem, c), "noorg@example.com");
    free(c);
    /* a valid token with its signature bytes flipped */
    c = idp_claims(ISSUER, "\"" AUDIENCE "\"", "flipped@example.com", 600, NULL);
    tok = rs256_token(k.priv_pem, c);
    BAD("flipped signature", flip(tok, strlen(tok) - 7), "flipped@example.com");
    free(tok);
    free(c);
#undef BAD

    for (size_t i = 0; i < n; i++) {
        expect_401(NULL, bad[i].token, "/api/v1/users/me", bad[i].what);
        expect_401(S.admin_key, bad[i].token, "/api/v1/users/me", bad[i].what);
        cr_assert(!user_listed(bad[i].email), "%s: the refused token provisioned %s", bad[i].what, bad[i].email);
        free(bad[i].token);
    }
    cr_assert_eq(users_total(), before, "a refused token provisioned a user");
    free_rsa_keys(&k);
    stop_clean();
}

/* ---------------------------------------------------------------- /api/v1/keys */

Test(tokens, keys_api_create_list_revoke_and_members_get_403)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    char secrets[4][128];
    size_t nsecrets = 0;

    /* create: 201, the secret once */
    pd_resp r = expect_as(201, S.admin_key, NULL, "POST", "/api/v1/keys", "{\"name\": \"ci runner\"}");
    const char *key = pd_str_at(r.json, "data.key"), *prefix = pd_str_at(r.json, "data.prefix");
    cr_assert(key && strncmp(key, "pk_live_", 8) == 0, "data.key: %s", r.body);
    cr_assert_eq(strlen(key), 48, "a generated key is pk_live_ + 40 characters: %s", key);
    cr_assert(prefix && strlen(prefix) >= 8 && strncmp(key, prefix, strlen(prefix)) == 0 && strlen(prefix) < 48,
              "data.prefix must be the key's start: %s", r.body);
    cr_assert(json_is_true(pd_json_at(r.json, "success")), "%s", r.body);
    char k1[128], p1[64], id1[64];
    snprintf(k1, sizeof k1, "%s", key);
    snprintf(p1, sizeof p1, "%s", prefix);
    snprintf(id1, sizeof id1, "%s", pd_str_at(r.json, "data.id") ? pd_str_at(r.json, "data.id") : "");
    snprintf(secrets[nsecrets++], 128, "%s", k1);
    pd_resp_free(&r);

    /* the new key works and is the admin's */
    r = expect_as(200, k1, NULL, "GET", "/api/v1/users/me", NULL);
    cr_assert_str_eq(pd_str_at(r.json, "data.email"), "admin@localhost");
    cr_assert_str_eq(pd_str_at(r.json, "data.api_key_prefix") ? pd_str_at(r.json, "data.api_key_prefix") : "", p1);
    pd_resp_free(&r);

    r = expect_as(201, S.admin_key, NULL, "POST", "/api/v1/keys", "{}");
    char k2[128], id2[64];
    snprintf(k2, sizeof k2, "%s", pd_str_at(r.json, "data.key"));
    snprintf(id2, sizeof id2, "%s", pd_str_at(r.json, "data.id"));
    snprintf(secrets[nsecrets++], 128, "%s", k2);
    pd_resp_free(&r);

    /* list: prefixes only; no secret anywhere in the body */
    r = expect_as(200, S.admin_key, NULL, "GET", "/api/v1/keys", NULL);
    cr_assert_geq(json_array_size(pd_json_at(r.json, "data.items")), 3, "%s", r.body);
    cr_assert_not_null(strstr(r.body, p1), "the list does not show the new key's prefix: %s", r.body);
    for (size_t i = 0; i < nsecrets; i++) {
        cr_assert_null(strstr(r.body, secrets[i]), "the list shows a secret: %s", r.body);
        cr_assert_null(strstr(r.body, secrets[i] + 16), "the list shows the secret part of a key: %s", r.body);
    }
    cr_assert_null(strstr(r.body, S.admin_key + 16), "the list shows the bootstrap key's secret part");
    json_t *item;
    size_t i;
    json_array_foreach(pd_json_at(r.json, "data.items"), i, item)
    {
        cr_assert_null(json_object_get(item, "key"), "a listed key has a \"key\" member: %s", r.body);
        cr_assert_null(json_object_get(item, "hash"), "a listed key has a \"hash\" member: %s", r.body);
    }
    pd_resp_free(&r);

    /* revoke by prefix: 401 at once */
    char path[160];
    snprintf(path, sizeof path, "/api/v1/keys/%s", p1);
    r = expect_as(200, S.admin_key, NULL, "DELETE", path, NULL);
    pd_resp_free(&r);
    expect_401(k1, NULL, "/api/v1/users/me", "a key revoked by prefix");
    pd_resp r401 = call_as(k1, NULL, "GET", "/prompts", NULL);
    cr_assert_eq(r401.status, 401, "a revoked key on /prompts: %ld", r401.status);
    pd_resp_free(&r401);
    /* revoke by id */
    expect_me(k2, NULL, "admin@localhost", "admin", NULL, 0);
    snprintf(path, sizeof path, "/api/v1/keys/%s", id2);
    r = expect_as(200, S.admin_key, NULL, "DELETE", path, NULL);
    pd_resp_free(&r);
    expect_401(k2, NULL, "/api/v1/users/me", "a key revoked by id");
    /* the list says so */
    r = expect_as(200, S.admin_key, NULL, "GET", "/api/v1/keys", NULL);
    json_array_foreach(pd_json_at(r.json, "data.items"), i, item)
    {
        const char *pf = json_string_value(json_object_get(item, "prefix"));
        if (pf && strcmp(pf, p1) == 0)
            cr_assert_str_eq(json_string_value(json_object_get(item, "status")), "revoked", "%s", r.body);
    }
    pd_resp_free(&r);
    /* an unknown key: 404 */
    r = call_as(S.admin_key, NULL, "DELETE", "/api/v1/keys/pk_live_nosuchkey", NULL);
    assert_v1_error(&r, 404, "NOT_FOUND", "revoking an unknown key");
    pd_resp_free(&r);

    /* members: 403 on all three */
    char member_id[64], mkey[128];
    create_user("keys.member@example.com", "member", member_id, sizeof member_id);
    user_key(member_id, mkey, sizeof mkey);
    snprintf(secrets[nsecrets++], 128, "%s", mkey);
    r = call_as(mkey, NULL, "POST", "/api/v1/keys", "{\"name\": \"mine\"}");
    assert_v1_error(&r, 403, "FORBIDDEN", "a member creating a key");
    pd_resp_free(&r);
    r = call_as(mkey, NULL, "GET", "/api/v1/keys", NULL);
    assert_v1_error(&r, 403, "FORBIDDEN", "a member listing keys");
    pd_resp_free(&r);
    char admin_prefix[17];
    snprintf(admin_prefix, sizeof admin_prefix, "%.16s", S.admin_key);
    snprintf(path, sizeof path, "/api/v1/keys/%s", admin_prefix);
    r = call_as(mkey, NULL, "DELETE", path, NULL);
    assert_v1_error(&r, 403, "FORBIDDEN", "a member revoking the admin's key");
    pd_resp_free(&r);
    expect_me(S.admin_key, NULL, "admin@localhost", "admin", NULL, 0);

    /* an admin may issue a key for a member: that key is the member's */
    char *body = pd_pack("{s:s, s:s}", "name", "for the member", "user_id", member_id);
    r = expect_as(201, S.admin_key, NULL, "POST", "/api/v1/keys", body);
    free(body);
    char k3[128];
    snprintf(k3, sizeof k3, "%s", pd_str_at(r.json, "data.key"));
    snprintf(secrets[nsecrets++], 128, "%s", k3);
    pd_resp_free(&r);
    expect_me(k3, NULL, "keys.member@example.com", "member", NULL, 0);

    /* no key secret was ever written to the server's log */
    char *log = pd_read_file(S.log_path);
    cr_assert_not_null(log);
    for (size_t s = 0; s < nsecrets; s++)
        cr_assert_null(strstr(log, secrets[s] + 16), "the server log contains a key's secret part");
    cr_assert_null(strstr(log, S.admin_key + 16), "the server log contains the admin key's secret part");
    free(log);
    stop_clean();
}

Test(tokens, tokens_never_reach_the_log)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    char tok[9000];
    cr_assert_eq(cli_token("admin@localhost", NULL, NULL, tok, sizeof tok), 0);
    expect_me(NULL, tok, "admin@localhost", "admin", NULL, 0);
    char *bad = flip(tok, strlen(tok) - 4);
    expect_401(NULL, bad, "/api/v1/users/me", "tampered");
    const char *sig = strrchr(tok, '.') + 1, *bsig = strrchr(bad, '.') + 1;
    char *log = pd_read_file(S.log_path);
    cr_assert_not_null(log);
    cr_assert_null(strstr(log, sig), "the server log contains a token's signature");
    cr_assert_null(strstr(log, bsig), "the server log contains a refused token's signature");
    free(log);
    free(bad);
    stop_clean();
}
