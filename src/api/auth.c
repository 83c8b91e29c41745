/*
 * auth.c — authentication and rate limiting for every non-public route.
 *
 * Credentials, in this order:
 *   AppId: <key> or X-API-Key: <key>     the API key; with it, an
 *   Authorization: Bearer <JWT>          names the user (the Jarvis pair);
 *   Authorization: Bearer <key|JWT>      alone: a key, or a token naming a user.
 * A bearer value that is neither a JWT nor needed (a key already given) is
 * ignored. Tokens: HS256 ones promptd issues (`promptd tokens create`; sub =
 * user id, org = organization id) and RS256 ones of an identity provider
 * (PROMPTD_JWT_PUBLIC_KEY_FILE). A provider's user is the local user bound
 * to the token's (iss, sub) in the "org" claim's organization or
 * PROMPTD_JWT_DEFAULT_ORG, whatever email the token carries now. On first
 * sight of a subject (store_user_idp_find): a new email makes a new member;
 * an existing unbound user's email binds that user only when the token says
 * email_verified and the user is a member (an admin too with
 * PROMPTD_JWT_LINK_ADMINS=1); otherwise 401 naming the rule: a fresh member
 * cannot be made instead, since an email names one user per organization,
 * and taking an account over on an unvouched email is the attack refused.
 * A token for a user of another organization than the key's is refused.
 *
 * Rate limits (spec 003 §5), exact windows (auth/ratelimit.h):
 * PROMPTD_RATE_LIMIT_PER_MINUTE per API key (a key may carry its own limit)
 * and PROMPTD_RATE_LIMIT_PER_DAY per user, both kept in the database so a
 * restart does not reset them. Every authenticated response carries
 * X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (of the
 * tightest window) and the IETF draft's RateLimit-Policy and RateLimit
 * fields for both windows.
 *
 * Requests that do not authenticate are never charged to a key or user (no
 * key is known, and charging a claimed key would let anyone exhaust another
 * client's window). They are charged to their client address instead
 * (PROMPTD_RATE_LIMIT_PER_ADDRESS, window "address"): a 401, and every answer
 * given before authentication (unknown path 404, 405, 413, 431, 400 for a
 * URL that is not UTF-8). That brakes guessing keys: once an address is over
 * its limit, every request from it that needs credentials is answered 429
 * BEFORE its credentials are checked, so a guess can no longer be told right
 * from wrong, and a valid key from that address waits too. Those answers
 * carry the address window's fields. Public routes (the health check) are
 * neither charged nor refused; they show the address window's state.
 * Windows of 0 are off and described by no field.
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/ids.h"
#include "core/log.h"

static const char *bearer_value(http_req *req)
{
    const char *auth = http_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return NULL;
    auth += 7;
    while (*auth == ' ')
        auth++;
    return *auth ? auth : NULL;
}

static int unauthorized(api_req *rq, const char *detail)
{
    http_add_header(rq->http, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    http_error(rq->http, 401, NULL, NULL, "%s", detail);
    return -1;
}

static int key_auth(api_req *rq, const char *key)
{
    switch (auth_key_verify(rq->app->store, key, &rq->who)) {
    case AUTH_OK: return 0;
    case AUTH_REVOKED: return unauthorized(rq, "This API key has been revoked");
    case AUTH_INVALID: return unauthorized(rq, "Invalid API key");
    default: http_error(rq->http, 500, NULL, NULL, "Could not check credentials"); return -1;
    }
}

/* Why an identity provider's token was bound to no user. The messages name
 * the rule, not the user or the email (a guesser learns only what the token
 * already said). */
static const char *idp_refusal_text(int refusal)
{
    switch (refusal) {
    case STORE_IDP_NO_EMAIL: return "The bearer token's subject is not known here and the token has no email claim";
    case STORE_IDP_EMAIL_UNVERIFIED:
        return "The bearer token's email belongs to a local user, but the identity provider does not say it is "
               "verified (email_verified)";
    case STORE_IDP_EMAIL_BOUND:
        return "The bearer token's email belongs to a local user bound to another identity provider subject";
    case STORE_IDP_PRIVILEGED:
        return "The bearer token's email belongs to a local admin, whom identity provider tokens may not become "
               "(PROMPTD_JWT_LINK_ADMINS)";
    default: return "The bearer token's user cannot be bound";
    }
}

/* Verify a bearer token and find its user. org_id, when given, is the
 * organization the user must belong to (the key's). */
static int token_auth(api_req *rq, const char *token, const char *org_id)
{
    app *a = rq->app;
    if (!a->jwt.hs256_secret && !a->jwt.rs256_public_key_pem)
        return unauthorized(rq, "Bearer tokens are not enabled on this server");
    promptd_jwt_claims c;
    int rc = promptd_jwt_verify(&a->jwt, token, -1, &c);
    if (rc != PROMPTD_JWT_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "Invalid bearer token: %s", promptd_jwt_strerror(rc));
        return unauthorized(rq, msg);
    }
    store_id token_org;
    store_user u;
    if (!strcmp(c.alg, "HS256")) {
        if (!id_is_uuid(c.org) || !id_is_uuid(c.sub))
            return unauthorized(rq, "Invalid bearer token: no organization or user");
        memcpy(token_org, c.org, sizeof token_org);
        rc = store_user_get(a->store, token_org, c.sub, &u);
    } else {
        rc = store_org_find(a->store, c.org[0] ? c.org : a->jwt_default_org, token_org, NULL, 0);
        if (rc == STORE_OK) {
            store_idp_login in = {.org_id = token_org,
                                  .issuer = c.iss,
                                  .subject = c.sub,
                                  .email = c.email,
                                  .email_verified = c.email_verified,
                                  .link_privileged = a->jwt_link_admins};
            int bound_now, refusal;
            rc = store_user_idp_find(a->store, &in, &u, &bound_now, &refusal);
            if (rc == STORE_CONFLICT)
                return unauthorized(rq, idp_refusal_text(refusal));
            if (rc == STORE_OK && bound_now)
                log_info("identity provider subject bound to %s user %s of organization %s",
                         bound_now == 1 ? "new" : "existing", u.id, u.org_id);
        }
    }
    if (rc == STORE_NOTFOUND)
        return unauthorized(rq, "The bearer token's user does not exist");
    if (rc != STORE_OK) {
        http_error(rq->http, 500, NULL, NULL, "Could not check credentials");
        return -1;
    }
    if (org_id && strcmp(org_id, u.org_id) != 0) {
        store_user_clear(&u);
        return unauthorized(rq, "The bearer token's user belongs to another organization than the API key");
    }
    if (!org_id) { /* a token alone: no key */
        memset(&rq->who, 0, sizeof rq->who);
        rq->who.key_rate_limit = -1;
    }
    memcpy(rq->who.org_id, u.org_id, sizeof rq->who.org_id);
    memcpy(rq->who.user_id, u.id, sizeof rq->who.user_id);
    snprintf(rq->who.role, sizeof rq->who.role, "%s", u.role);
    rq->who.is_admin = !strcmp(u.role, "admin");
    snprintf(rq->who.email, sizeof rq->who.email, "%s", u.email);
    store_user_clear(&u);
    return 0;
}

int api_authenticate(api_req *rq)
{
    const char *key = http_header(rq->http, "AppId");
    if (!key || !*key)
        key = http_header(rq->http, "X-API-Key");
    if (key && !*key)
        key = NULL;
    const char *bearer = bearer_value(rq->http);
    if (key) {
        if (key_auth(rq, key))
            return -1;
        if (bearer && strcmp(bearer, key) != 0 && promptd_jwt_looks_like(bearer))
            return token_auth(rq, bearer, rq->who.org_id);
        return 0;
    }
    if (bearer)
        return promptd_jwt_looks_like(bearer) ? token_auth(rq, bearer, NULL) : key_auth(rq, bearer);
    http_add_header(rq->http, "WWW-Authenticate", "Bearer");
    http_error(rq->http, 401, NULL, NULL, "Missing credentials: send an API key as AppId, X-API-Key or "
                                          "Authorization: Bearer, or a bearer token");
    return -1;
}

/* A window's policy name: its length in words, when it has one. */
static const char *window_name(long window_s, char *buf, size_t cap)
{
    switch (window_s) {
    case 1: return "second";
    case 60: return "minute";
    case 3600: return "hour";
    case 86400: return "day";
    default: snprintf(buf, cap, "%lds", window_s); return buf;
    }
}

/* The rate-limit fields of n windows (limit > 0 each, n >= 1) on req.
 * Returns the largest Retry-After of a refused window (then also sent), 0
 * when every window admitted. */
static long limit_headers(http_req *req, const ratelimit_result *res, ratelimit_window *win, size_t n)
{
    char policy[256], state[256], num[32];
    if (ratelimit_format_headers(win, n, policy, sizeof policy, state, sizeof state) == 0) {
        http_add_header(req, "RateLimit-Policy", policy);
        http_add_header(req, "RateLimit", state);
    }
    const ratelimit_result *tight = ratelimit_tightest(res, n);
    snprintf(num, sizeof num, "%ld", tight->limit);
    http_add_header(req, "X-RateLimit-Limit", num);
    snprintf(num, sizeof num, "%ld", tight->remaining);
    http_add_header(req, "X-RateLimit-Remaining", num);
    snprintf(num, sizeof num, "%ld", tight->reset_s);
    http_add_header(req, "X-RateLimit-Reset", num);
    long retry = 0;
    for (size_t i = 0; i < n; i++)
        if (!res[i].allowed && res[i].retry_after_s > retry)
            retry = res[i].retry_after_s;
    if (retry) {
        snprintf(num, sizeof num, "%ld", retry);
        http_add_header(req, "Retry-After", num);
    }
    return retry;
}

int api_address_limit(app *a, http_req *req, enum api_addr_mode mode)
{
    char bucket[80];
    ratelimit_result res;
    if (!a->per_address || http_client_address(req, bucket, sizeof bucket) != 0)
        return 0;
    int rc = mode == API_ADDR_CHARGE ? ratelimit_take(a->per_address, bucket, 0, -1, &res)
                                     : ratelimit_peek(a->per_address, bucket, 0, -1, &res);
    if (rc != RATELIMIT_OK || res.limit == 0 || (mode == API_ADDR_REFUSE && res.allowed))
        return 0; /* REFUSE lets through: the answer will carry the windows that then apply */
    if (mode == API_ADDR_SHOW)
        res.allowed = 1, res.retry_after_s = 0; /* a public route is never refused */
    ratelimit_window win = {.name = "address", .result = &res};
    long retry = limit_headers(req, &res, &win, 1);
    if (!retry)
        return 0;
    http_error(req, 429, NULL, NULL,
               "Too many requests without valid credentials from this address: try again in %ld s", retry);
    return -1;
}

void api_own_answer(void *ctx, http_req *req) { (void)api_address_limit(ctx, req, API_ADDR_CHARGE); }

int api_rate_limit(api_req *rq)
{
    app *a = rq->app;
    ratelimit_result res[2];
    ratelimit_window win[2];
    char names[2][24];
    size_t n = 0;
    char bucket[80];
    if (a->per_minute) {
        long override = rq->who.key_rate_limit < 0 ? 0 : rq->who.key_rate_limit == 0 ? RATELIMIT_UNLIMITED
                                                                                      : rq->who.key_rate_limit;
        if (rq->who.key_id[0])
            snprintf(bucket, sizeof bucket, "key:%s", rq->who.key_id);
        else
            snprintf(bucket, sizeof bucket, "token:%s", rq->who.user_id);
        if (ratelimit_take(a->per_minute, bucket, override, -1, &res[n]) == RATELIMIT_OK && res[n].limit > 0)
            win[n] = (ratelimit_window){.name = window_name(res[n].window_s, names[n], sizeof names[n]),
                                        .result = &res[n]},
            n++;
    }
    if (a->per_day) {
        /* a request the minute window refused is not charged to the day */
        int refused = n > 0 && !res[0].allowed;
        snprintf(bucket, sizeof bucket, "user:%s", rq->who.user_id);
        int rc = refused ? ratelimit_peek(a->per_day, bucket, 0, -1, &res[n])
                         : ratelimit_take(a->per_day, bucket, 0, -1, &res[n]);
        if (rc == RATELIMIT_OK && res[n].limit > 0)
            win[n] = (ratelimit_window){.name = window_name(res[n].window_s, names[n], sizeof names[n]),
                                        .result = &res[n]},
            n++;
    }
    if (n == 0)
        return 0;
    if (n == 2 && strcmp(win[0].name, win[1].name) == 0) /* two windows of one length: keep them apart */
        win[0].name = "key", win[1].name = "user";
    long retry = limit_headers(rq->http, res, win, n);
    if (retry == 0)
        return 0;
    http_error(rq->http, 429, NULL, NULL, "Rate limit exceeded: try again in %ld s", retry);
    return -1;
}

/* Why not one atomic "take n": the limiter's contract is one admission per
 * take, and each take is atomic on its own. So the windows are first read
 * (peek): a caller with fewer than n left is refused before anything is
 * charged or run. Then the n admissions are taken one by one; should a
 * concurrent request of the same caller win a slot in between, the take that
 * loses refuses this request too, and the admissions already taken stay
 * charged: the caller may pay for work it did not get, never get work it
 * did not pay for, so the limit holds exactly. */
int api_rate_charge(api_req *rq, long n)
{
    app *a = rq->app;
    struct {
        ratelimit *rl;
        long override;
        char bucket[80];
    } w[2];
    size_t k = 0;
    if (n <= 0)
        return 0;
    if (a->per_minute) {
        w[k].rl = a->per_minute;
        w[k].override = rq->who.key_rate_limit < 0    ? 0
                        : rq->who.key_rate_limit == 0 ? RATELIMIT_UNLIMITED
                                                      : rq->who.key_rate_limit;
        if (rq->who.key_id[0])
            snprintf(w[k].bucket, sizeof w[k].bucket, "key:%s", rq->who.key_id);
        else
            snprintf(w[k].bucket, sizeof w[k].bucket, "token:%s", rq->who.user_id);
        k++;
    }
    if (a->per_day) {
        w[k].rl = a->per_day;
        w[k].override = 0;
        snprintf(w[k].bucket, sizeof w[k].bucket, "user:%s", rq->who.user_id);
        k++;
    }
    long retry = 0;
    for (size_t i = 0; i < k; i++) {
        ratelimit_result r;
        if (ratelimit_peek(w[i].rl, w[i].bucket, w[i].override, -1, &r) == RATELIMIT_OK && r.limit > 0 &&
            r.remaining < n) {
            long wait = r.reset_s > 0 ? r.reset_s : 1;
            if (wait > retry)
                retry = wait;
        }
    }
    for (size_t i = 0; i < k && retry == 0; i++) {
        for (long t = 0; t < n; t++) {
            ratelimit_result r;
            if (ratelimit_take(w[i].rl, w[i].bucket, w[i].override, -1, &r) != RATELIMIT_OK || r.limit == 0)
                break; /* off for this caller (or the limiter failed: as api_rate_limit, not held against them) */
            if (!r.allowed) {
                retry = r.retry_after_s > 0 ? r.retry_after_s : 1;
                break;
            }
        }
    }
    if (retry == 0)
        return 0;
    char num[32];
    snprintf(num, sizeof num, "%ld", retry);
    http_add_header(rq->http, "Retry-After", num);
    http_error(rq->http, 429, NULL, NULL,
               "Rate limit exceeded: this request counts as %ld more requests than the caller has left; try again "
               "in %ld s",
               n, retry);
    return -1;
}
