/*
 * v1_keys.c — API key management for administrators (issue 6).
 *
 *   POST   /api/v1/keys              {name?, user_id?, rate_limit_per_minute?} -> 201, the secret shown once
 *   GET    /api/v1/keys              the organization's keys: prefixes only, never secrets
 *   DELETE /api/v1/keys/{prefix|id}  revoke (takes effect on the next request)
 *
 * Members get 403: managing keys is an administrator's job.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_v1.h"

static json_t *key_json(const store_key *k)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:o}", "id", k->id, "prefix", k->prefix, "name",
                     k->name, "user_id", k->user_id, "user_email", k->user_email, "role", k->role, "created_at",
                     api_time(k->created_at), "revoked_at", api_time(k->revoked_at), "status",
                     k->revoked_at ? "revoked" : "active", "rate_limit_per_minute",
                     k->rate_limit_per_minute < 0 ? json_null() : json_integer(k->rate_limit_per_minute));
}

static void keys_create(api_req *rq)
{
    json_t *root = NULL;
    const char *name = NULL, *user_id = rq->who.user_id;
    store_id user_buf;
    if (api_v1_require_admin(rq) || api_read_body(rq, &root))
        return;
    if (api_string_field(rq, root, "name", "name", 0, 0, 120, &name))
        goto out;
    json_t *u = json_object_get(root, "user_id");
    if (u && !json_is_null(u)) { /* the user's number in the organization, or their UUID */
        char digits[32];
        const char *given = api_v1_ref_text(u, digits);
        int rc = given ? api_v1_ref_lookup(rq, STORE_NUM_USER, given, user_buf, NULL) : API_V1_REF_BAD;
        if (rc == API_V1_REF_BAD) {
            http_error(rq->http, 422, NULL, "user_id",
                       "'user_id' must be a user id: a positive integer (at most %lld) or a UUID",
                       (long long)STORE_NUM_MAX);
            goto out;
        }
        if (rc != STORE_OK) {
            api_v1_store_error(rq, rc, "User");
            goto out;
        }
        user_id = user_buf;
    }
    long limit = -1;
    json_t *l = json_object_get(root, "rate_limit_per_minute");
    if (l && !json_is_null(l)) {
        if (!json_is_integer(l) || json_integer_value(l) < 0 || json_integer_value(l) > 1000000) {
            http_error(rq->http, 400, NULL, "rate_limit_per_minute",
                       "rate_limit_per_minute must be an integer from 0 (unlimited) to 1000000");
            goto out;
        }
        limit = (long)json_integer_value(l);
    }
    char key[AUTH_KEY_LEN + 1], prefix[STORE_KEY_PREFIX_LEN + 1];
    unsigned char hash[STORE_KEY_HASH_LEN];
    auth_key_generate(key);
    auth_key_prefix(key, prefix);
    auth_key_hash(key, hash);
    store_key k;
    int rc = store_user_key_create(rq->app->store, rq->who.org_id, user_id, name, prefix, hash, &k);
    if (rc == STORE_OK && limit >= 0)
        rc = store_key_set_rate_limit(rq->app->store, rq->who.org_id, prefix, limit);
    k.rate_limit_per_minute = limit; /* -1: the server default */
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "User");
        goto out;
    }
    json_t *data = key_json(&k);
    json_object_set_new(data, "key", json_string(key));
    api_v1_reply(rq, 201, data, "API key created: the key is shown only once, store it now");
out:
    json_decref(root);
}

static void keys_list(api_req *rq)
{
    if (api_v1_require_admin(rq))
        return;
    store_key_list l;
    int rc = store_key_list_all(rq->app->store, rq->who.org_id, &l);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "Key");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < l.count; i++)
        json_array_append_new(items, key_json(&l.items[i]));
    store_key_list_free(&l);
    api_v1_reply(rq, 200, json_pack("{s:o, s:I}", "items", items, "total", (json_int_t)json_array_size(items)),
                 "API keys retrieved");
}

static void keys_revoke(api_req *rq)
{
    const char *ref = api_param(rq, "key");
    if (api_v1_require_admin(rq))
        return;
    int rc = store_key_revoke_in_org(rq->app->store, rq->who.org_id, ref);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "API key");
        return;
    }
    api_v1_reply(rq, 200, json_pack("{s:s, s:b}", "key", ref, "revoked", 1), "API key revoked");
}

int api_routes_v1_keys(app *a)
{
    return api_route(a, "POST", "/api/v1/keys", keys_create, 0) || api_route(a, "GET", "/api/v1/keys", keys_list, 0) ||
           api_route(a, "DELETE", "/api/v1/keys/:key", keys_revoke, 0);
}
