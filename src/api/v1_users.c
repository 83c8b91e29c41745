/*
 * v1_users.c — the users of an organization (the user_id of spec 002's
 * history, the owners of prompts and API keys).
 *
 *   POST   /api/v1/users                 {email, name?, role?} -> 201 (admins)
 *   GET    /api/v1/users                 page, page_size -> items + pagination
 *   GET    /api/v1/users/:id             ("me" = the caller)
 *   PUT    /api/v1/users/:id             {email?, name?, role?} (PATCH alike)
 *   DELETE /api/v1/users/:id             (admins)
 *   POST   /api/v1/users/:id/api-keys    {name?} -> 201 with the new key, shown once
 *
 * Rules: role is "admin" or "member" (default member). Email is unique in the
 * organization (compared lowercased; 409). Every member may read the
 * organization's users; admins change anyone, a member may change only their
 * own name and email (403 otherwise, and for a role change). The last admin
 * can be neither demoted nor deleted (409), so an organization always has an
 * administrator. Deleting a user deletes their API keys, which stop working
 * at once; their prompts and executions stay with the organization. A key is
 * issued by an admin or by the user themselves. Another organization's user
 * is a 404. A user's id is their number in the organization (spec 002's
 * user_id); :id takes it, the UUID (answered as uuid; API keys and tokens
 * name users by it) or "me".
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_v1.h"
#include "auth/keys.h"

#define USER_EMAIL_MAX 254
#define USER_NAME_MAX 255
#define KEY_NAME_MAX 120

static json_t *user_json(const store_user *u)
{
    return json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o}", "id", api_v1_num(u->num), "uuid", u->id, "email",
                     u->email, "name", u->name, "role", u->role, "organization_id", u->org_id, "api_keys_count",
                     (json_int_t)u->keys_count, "created_at", api_time(u->created_at), "updated_at",
                     api_time(u->updated_at));
}

/* The :id parameter as a UUID in buf, with "me" meaning the caller. */
static int user_id_param(api_req *rq, store_id buf, const char **id)
{
    const char *s = api_param(rq, "id");
    if (s && strcmp(s, "me") == 0) {
        *id = rq->who.user_id;
        return 0;
    }
    *id = buf;
    return api_v1_path_ref(rq, "id", STORE_NUM_USER, "User", buf);
}

static int is_self(api_req *rq, const char *id) { return strcmp(id, rq->who.user_id) == 0; }

/* A lowercased copy of an email that looks like one (something@something); 422 otherwise. */
static int email_field(api_req *rq, json_t *root, int required, char **out)
{
    const char *s;
    *out = NULL;
    if (api_string_field(rq, root, "email", "email", required, 1, USER_EMAIL_MAX, &s))
        return -1;
    if (!s)
        return 0;
    const char *at = strchr(s, '@');
    if (!at || at == s || !at[1] || strchr(at + 1, '@') || strpbrk(s, " \t\r\n")) {
        http_error(rq->http, 422, NULL, "email", "'email' must be an email address");
        return -1;
    }
    if (!(*out = strdup(s))) {
        http_error(rq->http, 500, NULL, NULL, "Out of memory");
        return -1;
    }
    for (char *p = *out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return 0;
}

static int role_field(api_req *rq, json_t *root, const char **out)
{
    if (api_string_field(rq, root, "role", "role", 0, 1, 16, out))
        return -1;
    if (*out && strcmp(*out, "admin") != 0 && strcmp(*out, "member") != 0) {
        http_error(rq->http, 422, NULL, "role", "'role' must be one of: admin, member");
        return -1;
    }
    return 0;
}

static void users_create(api_req *rq)
{
    json_t *root = NULL;
    char *email = NULL;
    const char *name, *role;
    store_user u = {0};
    if (api_v1_require_admin(rq) || api_read_body(rq, &root))
        return;
    if (email_field(rq, root, 1, &email) || api_string_field(rq, root, "name", "name", 0, 0, USER_NAME_MAX, &name) ||
        role_field(rq, root, &role))
        goto out;
    memcpy(u.org_id, rq->who.org_id, sizeof u.org_id);
    u.email = email;
    u.name = (char *)name;
    snprintf(u.role, sizeof u.role, "%s", role ? role : "member");
    int rc = store_user_create(rq->app->store, &u);
    if (rc == STORE_CONFLICT) {
        http_error(rq->http, 409, NULL, "email", "A user with email '%s' already exists in this organization", email);
        goto out;
    }
    store_user created;
    if (rc == STORE_OK)
        rc = store_user_get(rq->app->store, rq->who.org_id, u.id, &created);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "User");
        goto out;
    }
    char location[80];
    snprintf(location, sizeof location, "/api/v1/users/%lld", (long long)created.num);
    http_add_header(rq->http, "Location", location);
    api_v1_reply(rq, 201, user_json(&created), "User created successfully");
    store_user_clear(&created);
out:
    free(email);
    json_decref(root);
}

static void users_list(api_req *rq)
{
    long page, page_size;
    if (api_v1_page_params(rq, &page, &page_size))
        return;
    store_user_page l;
    int rc = store_user_list(rq->app->store, rq->who.org_id, (page - 1) * page_size, page_size, &l);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "User");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < l.count; i++)
        json_array_append_new(items, user_json(&l.items[i]));
    api_v1_reply(rq, 200, api_v1_list(items, page, page_size, l.total), "Users retrieved successfully");
    store_user_page_free(&l);
}

static void users_get(api_req *rq)
{
    const char *id;
    store_id buf;
    if (user_id_param(rq, buf, &id))
        return;
    store_user u;
    int rc = store_user_get(rq->app->store, rq->who.org_id, id, &u);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "User");
        return;
    }
    api_v1_reply(rq, 200, user_json(&u), "User retrieved successfully");
    store_user_clear(&u);
}

static void users_update(api_req *rq)
{
    const char *id;
    store_id buf;
    json_t *root = NULL;
    char *email = NULL;
    store_user_patch patch = {0};
    if (user_id_param(rq, buf, &id))
        return;
    if (!rq->who.is_admin && !is_self(rq, id)) {
        /* a member may not touch others: same answer whether they exist or not */
        http_error(rq->http, 403, NULL, NULL, "Only an administrator may change other users");
        return;
    }
    if (api_read_body(rq, &root))
        return;
    if (email_field(rq, root, 0, &email) ||
        api_string_field(rq, root, "name", "name", 0, 0, USER_NAME_MAX, &patch.name) ||
        role_field(rq, root, &patch.role))
        goto out;
    if (patch.role && !rq->who.is_admin && strcmp(patch.role, rq->who.role) != 0) {
        http_error(rq->http, 403, NULL, "role", "Only an administrator may change a role");
        goto out;
    }
    patch.email = email;
    store_user u;
    const char *conflict = NULL;
    int rc = store_user_update(rq->app->store, rq->who.org_id, id, &patch, &u, &conflict);
    if (rc == STORE_CONFLICT && conflict && strcmp(conflict, "role") == 0) {
        http_error(rq->http, 409, NULL, "role", "The organization's last admin cannot stop being one");
        goto out;
    }
    if (rc == STORE_CONFLICT) {
        http_error(rq->http, 409, NULL, "email", "A user with email '%s' already exists in this organization",
                   email ? email : "");
        goto out;
    }
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "User");
        goto out;
    }
    api_v1_reply(rq, 200, user_json(&u), "User updated successfully");
    store_user_clear(&u);
out:
    free(email);
    json_decref(root);
}

static void users_delete(api_req *rq)
{
    const char *id;
    store_id buf;
    store_user u;
    if (user_id_param(rq, buf, &id) || api_v1_require_admin(rq))
        return;
    /* read first: the answer names them by number, which a UUID path does not give */
    int64_t num = 0;
    int rc = store_user_get(rq->app->store, rq->who.org_id, id, &u);
    if (rc == STORE_OK) {
        num = u.num;
        store_user_clear(&u);
        rc = store_user_delete(rq->app->store, rq->who.org_id, id);
    }
    if (rc == STORE_CONFLICT) {
        http_error(rq->http, 409, NULL, NULL, "The organization's last admin cannot be deleted");
        return;
    }
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "User");
        return;
    }
    api_v1_reply(rq, 200, json_pack("{s:o, s:s, s:b}", "id", api_v1_num(num), "uuid", id, "deleted", 1),
                 "User deleted successfully");
}

static void users_key_create(api_req *rq)
{
    const char *id, *name;
    store_id buf;
    json_t *root = NULL;
    if (user_id_param(rq, buf, &id))
        return;
    if (!rq->who.is_admin && !is_self(rq, id)) {
        http_error(rq->http, 403, NULL, NULL, "Only an administrator may issue keys for other users");
        return;
    }
    if (api_read_body(rq, &root))
        return;
    if (api_string_field(rq, root, "name", "name", 0, 0, KEY_NAME_MAX, &name))
        goto out;
    char key[AUTH_KEY_LEN + 1], prefix[STORE_KEY_PREFIX_LEN + 1];
    unsigned char hash[STORE_KEY_HASH_LEN];
    auth_key_generate(key);
    auth_key_prefix(key, prefix);
    auth_key_hash(key, hash);
    store_key k;
    int rc = store_user_key_create(rq->app->store, rq->who.org_id, id, name, prefix, hash, &k);
    if (rc != STORE_OK) {
        api_v1_store_error(rq, rc, "User");
        goto out;
    }
    api_v1_reply(rq, 201,
                 json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "id", k.id, "key", key, "prefix", k.prefix, "user_id",
                           k.user_id, "name", k.name, "created_at", api_time(k.created_at)),
                 "API key created: it is shown only once, keep it");
out:
    json_decref(root);
}

int api_routes_v1_users(app *a)
{
    return api_route(a, "POST", "/api/v1/users", users_create, 0) ||
           api_route(a, "GET", "/api/v1/users", users_list, 0) ||
           api_route(a, "GET", "/api/v1/users/:id", users_get, 0) ||
           api_route(a, "PUT", "/api/v1/users/:id", users_update, 0) ||
           api_route(a, "PATCH", "/api/v1/users/:id", users_update, 0) ||
           api_route(a, "DELETE", "/api/v1/users/:id", users_delete, 0) ||
           api_route(a, "POST", "/api/v1/users/:id/api-keys", users_key_create, 0);
}
