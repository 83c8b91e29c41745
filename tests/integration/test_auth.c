/*
 * test_auth.c — API keys over real HTTP: 401 without or with a bad key (with
 * WWW-Authenticate), the three headers a key may come in, the Jarvis AppId +
 * Bearer pair, revocation taking effect at once on a running server, and
 * isolation between organizations (another organization's ids are 404 and
 * nothing changes). Each test has its own promptd (fixtures).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/harness.h"

static pd_server S;

/* Last step of the tests that exercise the most code: promptd must exit 0 on
 * SIGTERM, which under SAN=1 also means no leak or sanitizer report. */
#define ASSERT_CLEAN_EXIT()                                                                                            \
    cr_assert_eq(pd_stop(&S), 0, "promptd did not exit 0 on SIGTERM (its log is above if a sanitizer spoke)")

static void setup(void) { cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start"); }
static void teardown(void) { pd_stop(&S); /* no-op when the test already stopped it */ }

TestSuite(auth, .init = setup, .fini = teardown, .timeout = 60);

static pd_resp req(const char *method, const char *path, const char *key, const char *body, const char *const *headers)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, method, path, key, body, headers, &r), 0, "%s %s: %s", method, path, r.error);
    return r;
}

static void assert_401(const pd_resp *r)
{
    cr_assert_eq(r->status, 401, "want 401, got %ld: %s", r->status, r->body);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.status"), "401", "%s", r->body);
    cr_assert_str_eq(pd_str_at(r->json, "errors.0.code"), "unauthorized", "%s", r->body);
    cr_assert_not_null(pd_str_at(r->json, "errors.0.title"), "%s", r->body);
    cr_assert_not_null(pd_str_at(r->json, "errors.0.detail"), "%s", r->body);
    const char *www = pd_header(r, "WWW-Authenticate");
    cr_assert_not_null(www, "401 without WWW-Authenticate");
    cr_assert(strncmp(www, "Bearer", 6) == 0, "WWW-Authenticate: %s", www);
}

static long status_of(const char *method, const char *path, const char *key, const char *body)
{
    pd_resp r = req(method, path, key, body, NULL);
    long st = r.status;
    cr_assert(st < 500, "%s %s: %ld %s", method, path, st, r.body);
    pd_resp_free(&r);
    return st;
}

static long total_prompts(const char *key)
{
    pd_resp r = req("GET", "/prompts", key, NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    long n = (long)pd_int_at(r.json, "meta.totalRecords", -1);
    pd_resp_free(&r);
    return n;
}

/* ---------------------------------------------------------------- 401 */

Test(auth, missing_key_is_401)
{
    pd_resp r = req("GET", "/prompts", NULL, NULL, NULL);
    assert_401(&r);
    pd_resp_free(&r);
    r = req("POST", "/prompts", NULL, "{\"prompt\":{\"name\":\"n\",\"content\":\"c\"}}", NULL);
    assert_401(&r);
    pd_resp_free(&r);
    /* credentials are checked before the body */
    r = req("POST", "/prompts", NULL, "{\"prompt\":", NULL);
    assert_401(&r);
    pd_resp_free(&r);
    r = req("GET", "/prompts/0190a0b0-1234-7abc-8def-0123456789ab", NULL, NULL, NULL);
    assert_401(&r);
    pd_resp_free(&r);
    /* empty credentials are no credentials */
    const char *const empty[][2] = {
        {"AppId:", NULL}, {"Authorization: Bearer ", NULL}, {"X-API-Key:", NULL}, {"Authorization: Bearer", NULL}};
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        r = req("GET", "/prompts", NULL, NULL, empty[i]);
        assert_401(&r);
        pd_resp_free(&r);
    }
    cr_assert_eq(total_prompts(S.admin_key), 0);
    ASSERT_CLEAN_EXIT();
}

Test(auth, wrong_key_is_401)
{
    char same_prefix[96];
    snprintf(same_prefix, sizeof same_prefix, "%s", S.admin_key);
    size_t n = strlen(same_prefix);
    same_prefix[n - 1] = same_prefix[n - 1] == 'a' ? 'b' : 'a';
    char prefix_only[32];
    snprintf(prefix_only, sizeof prefix_only, "%.16s", S.admin_key);
    char longer[128];
    snprintf(longer, sizeof longer, "%sX", S.admin_key);
    const char *keys[] = {"pk_live_0123456789abcdefghijABCDEFGHIJ0123456789",
                          same_prefix,
                          prefix_only,
                          longer,
                          "short",
                          "with space in the middle of it",
                          "\t"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        pd_resp r = req("GET", "/prompts", keys[i], NULL, NULL);
        assert_401(&r);
        pd_resp_free(&r);
        char bearer[200];
        snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", keys[i]);
        const char *const h[] = {bearer, NULL};
        r = req("GET", "/prompts", NULL, NULL, h);
        assert_401(&r);
        pd_resp_free(&r);
    }
    /* other schemes are not keys */
    char basic[200];
    snprintf(basic, sizeof basic, "Authorization: Basic %s", S.admin_key);
    const char *const h[] = {basic, NULL};
    pd_resp r = req("GET", "/prompts", NULL, NULL, h);
    assert_401(&r);
    pd_resp_free(&r);
    ASSERT_CLEAN_EXIT();
}

Test(auth, health_needs_no_key)
{
    pd_resp r = req("GET", "/health", NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    pd_resp_free(&r);
    r = req("GET", "/health", "not-a-valid-key-at-all", NULL, NULL);
    cr_assert_eq(r.status, 200);
    pd_resp_free(&r);
}

/* ---------------------------------------------------------------- where the key may be */

Test(auth, key_accepted_in_each_header)
{
    char appid[200], bearer[200], bearer_lc[200], xkey[200];
    snprintf(appid, sizeof appid, "AppId: %s", S.admin_key);
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", S.admin_key);
    snprintf(bearer_lc, sizeof bearer_lc, "authorization: bearer %s", S.admin_key);
    snprintf(xkey, sizeof xkey, "X-API-Key: %s", S.admin_key);
    const char *const *sets[] = {
        (const char *const[]){appid, NULL},
        (const char *const[]){bearer, NULL},
        (const char *const[]){bearer_lc, NULL},
        (const char *const[]){xkey, NULL},
        /* Jarvis clients: the API key as AppId, a user token as Bearer */
        (const char *const[]){appid, "Authorization: Bearer some-other-token", NULL},
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        pd_resp r = req("GET", "/prompts", NULL, NULL, sets[i]);
        cr_assert_eq(r.status, 200, "header set %zu: %ld %s", i, r.status, r.body);
        pd_resp_free(&r);
        r = req("POST", "/prompts", NULL, "{\"prompt\":{\"name\":\"n\",\"content\":\"c\"}}", sets[i]);
        cr_assert_eq(r.status, 201, "header set %zu: %ld %s", i, r.status, r.body);
        pd_resp_free(&r);
    }
    cr_assert_eq(total_prompts(S.admin_key), 5);
    ASSERT_CLEAN_EXIT();
}

/* ---------------------------------------------------------------- revocation */

Test(auth, revoked_key_is_refused_at_once)
{
    char key[128];
    cr_assert_eq(pd_new_org_key(&S, "default", key, sizeof key), 0);
    cr_assert(strncmp(key, "pk_live_", 8) == 0, "%s", key);
    cr_assert_eq(status_of("GET", "/prompts", key, NULL), 200);

    char prefix[17];
    snprintf(prefix, sizeof prefix, "%.16s", key);
    char out[256];
    const char *args[] = {"keys", "revoke", prefix, NULL};
    cr_assert_eq(pd_cli(&S, args, out, sizeof out), 0, "keys revoke: %s", out);

    pd_resp r = req("GET", "/prompts", key, NULL, NULL);
    assert_401(&r);
    pd_resp_free(&r);
    char bearer[200];
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", key);
    const char *const h[] = {bearer, NULL};
    r = req("POST", "/prompts", NULL, "{\"prompt\":{\"name\":\"n\",\"content\":\"c\"}}", h);
    assert_401(&r);
    pd_resp_free(&r);
    /* the other keys of the organization still work */
    cr_assert_eq(status_of("GET", "/prompts", S.admin_key, NULL), 200);
    cr_assert_eq(total_prompts(S.admin_key), 0);
    ASSERT_CLEAN_EXIT();
}

Test(auth, revoking_the_admin_key)
{
    char prefix[17];
    snprintf(prefix, sizeof prefix, "%.16s", S.admin_key);
    cr_assert_eq(status_of("GET", "/prompts", S.admin_key, NULL), 200);
    const char *args[] = {"keys", "revoke", prefix, NULL};
    cr_assert_eq(pd_cli(&S, args, NULL, 0), 0);
    pd_resp r = req("GET", "/prompts", S.admin_key, NULL, NULL);
    assert_401(&r);
    pd_resp_free(&r);
    /* revoking again is harmless */
    cr_assert_eq(pd_cli(&S, args, NULL, 0), 0);
}

/* ---------------------------------------------------------------- organizations */

Test(auth, keys_of_one_organization_share_its_prompts)
{
    char k1[128], k2[128], id[64];
    cr_assert_eq(pd_new_org_key(&S, "other", k1, sizeof k1), 0);
    cr_assert_eq(pd_new_org_key(&S, "other", k2, sizeof k2), 0);
    cr_assert_str_neq(k1, k2);
    cr_assert_eq(pd_create_prompt(&S, k1, "shared", "c", id, sizeof id), 201);
    char path[128];
    snprintf(path, sizeof path, "/prompts/%s", id);
    cr_assert_eq(status_of("GET", path, k2, NULL), 200);
    cr_assert_eq(total_prompts(k2), 1);
    cr_assert_eq(total_prompts(S.admin_key), 0);
}

Test(auth, another_organization_sees_nothing_and_changes_nothing)
{
    char other[128], id[64], v1[64], path[256];
    /* organization 1: a prompt with two versions, liked */
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "Secret plan", "Step one for {{who}}", id, sizeof id), 201);
    snprintf(path, sizeof path, "/prompts/%s", id);
    pd_resp r = req("GET", path, S.admin_key, NULL, NULL);
    snprintf(v1, sizeof v1, "%s", pd_str_at(r.json, "data.attributes.current_version_id"));
    pd_resp_free(&r);
    cr_assert_eq(status_of("PUT", path, S.admin_key, "{\"prompt\":{\"content\":\"Step two for {{who}}\"}}"), 200);
    snprintf(path, sizeof path, "/prompts/%s/like", id);
    cr_assert_eq(status_of("PUT", path, S.admin_key, NULL), 200);
    snprintf(path, sizeof path, "/prompts/%s", id);
    r = req("GET", path, S.admin_key, NULL, NULL);
    cr_assert_eq(r.status, 200);
    char *before = json_dumps(pd_json_at(r.json, "data"), JSON_SORT_KEYS);
    pd_resp_free(&r);

    /* organization 2 */
    cr_assert_eq(pd_new_org_key(&S, "other", other, sizeof other), 0);
    r = req("GET", "/prompts", other, NULL, NULL);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 0, "%s", r.body);
    cr_assert_eq(json_array_size(pd_json_at(r.json, "data")), 0, "%s", r.body);
    pd_resp_free(&r);
    r = req("GET", "/prompts?search=secret", other, NULL, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 0, "%s", r.body);
    pd_resp_free(&r);

    struct {
        const char *method, *fmt, *body;
    } attempts[] = {
        {"GET", "/prompts/%s", NULL},
        {"PUT", "/prompts/%s", "{\"prompt\":{\"name\":\"pwned\",\"content\":\"pwned\"}}"},
        {"PATCH", "/prompts/%s", "{\"prompt\":{\"status\":\"archived\"}}"},
        {"POST", "/prompts/%s/render", "{\"variables\":{\"who\":\"me\"}}"},
        {"GET", "/prompts/%s/versions", NULL},
        {"PUT", "/prompts/%s/like", NULL},
        {"DELETE", "/prompts/%s/dislike", NULL},
        {"PUT", "/prompts/%s/follow", NULL},
        {"DELETE", "/prompts/%s/unfollow", NULL},
        {"PUT", "/prompts/%s/save", NULL},
        {"DELETE", "/prompts/%s/unsave", NULL},
        {"DELETE", "/prompts/%s", NULL},
    };
    for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
        snprintf(path, sizeof path, attempts[i].fmt, id);
        r = req(attempts[i].method, path, other, attempts[i].body, NULL);
        cr_assert_eq(r.status, 404, "%s %s by another organization: %ld %s", attempts[i].method, path, r.status,
                     r.body);
        cr_assert_str_eq(pd_str_at(r.json, "errors.0.code"), "not_found", "%s", r.body);
        pd_resp_free(&r);
    }
    snprintf(path, sizeof path, "/prompts/%s/versions/%s/publish", id, v1);
    r = req("POST", path, other, NULL, NULL);
    cr_assert_eq(r.status, 404, "publish by another organization: %ld %s", r.status, r.body);
    pd_resp_free(&r);

    /* organization 2's own prompt is invisible to organization 1 */
    char theirs[64];
    cr_assert_eq(pd_create_prompt(&S, other, "Theirs", "t", theirs, sizeof theirs), 201);
    cr_assert_eq(total_prompts(other), 1);
    snprintf(path, sizeof path, "/prompts/%s", theirs);
    cr_assert_eq(status_of("GET", path, S.admin_key, NULL), 404);
    cr_assert_eq(status_of("DELETE", path, S.admin_key, NULL), 404);
    cr_assert_eq(status_of("GET", path, other, NULL), 200);

    /* organization 1's prompt is exactly as it was */
    cr_assert_eq(total_prompts(S.admin_key), 1);
    snprintf(path, sizeof path, "/prompts/%s", id);
    r = req("GET", path, S.admin_key, NULL, NULL);
    cr_assert_eq(r.status, 200, "the prompt is gone: %s", r.body);
    char *after = json_dumps(pd_json_at(r.json, "data"), JSON_SORT_KEYS);
    cr_assert_str_eq(after, before);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.name"), "Secret plan");
    cr_assert_eq(pd_int_at(r.json, "data.attributes.versions_count", -1), 2);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.likes_count", -1), 1);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.saves_count", -1), 0);
    cr_assert_eq(pd_int_at(r.json, "data.attributes.followers_count", -1), 0);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.status"), "draft");
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/prompts/%s/versions", id);
    r = req("GET", path, S.admin_key, NULL, NULL);
    cr_assert_eq(pd_int_at(r.json, "meta.totalRecords", -1), 2);
    cr_assert(json_is_false(pd_json_at(r.json, "data.1.attributes.published")));
    pd_resp_free(&r);
    free(before);
    free(after);
    ASSERT_CLEAN_EXIT();
}
