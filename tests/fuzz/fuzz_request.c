/*
 * fuzz_request.c — libFuzzer target for what promptd itself parses of a
 * request (libmicrohttpd owns the HTTP/1.1 framing):
 *
 *  mode 0  a whole request, "METHOD TARGET ...\nName: value\n...\n\nBODY",
 *          through api_dispatch: routing, the API key from AppId /
 *          X-API-Key / Authorization: Bearer, key checks against a real
 *          store, 401 / 404 / 405 answers; GET and POST /api/v1/validate
 *          run authenticated (an "AppId: KEY" header stands for the real
 *          key there), which parses query numbers, a JSON variables object
 *          and the template. Then the query helpers (api_page_params,
 *          api_v1_page_params, api_query_long, api_v1_query_enum / _id /
 *          _text) on the same request;
 *  mode 1  time_parse_rfc3339 (query filters), with a format/parse round trip;
 *  mode 2  a credential as presented: auth_key_acceptable, auth_key_prefix,
 *          promptd_jwt_looks_like, promptd_jwt_verify (HS256 and RS256
 *          configured), which must never accept a token it cannot have signed;
 *  mode 3  "HEADER-JSON\nPAYLOAD-JSON" signed here with the HS256 secret, so
 *          the claim rules (iss, aud, exp, nbf, sub, lengths) are reached;
 *  mode 4  "SUB\nEMAIL\nORG\nROLE\nISS": promptd_jwt_issue_hs256 then
 *          promptd_jwt_verify must give the same claims back;
 *  mode 5  promptd_jwt_config_check on a PEM text (the RS256 key file).
 * The first byte of the input picks the mode.
 * Checked: answers are 2xx/4xx JSON objects (never 5xx), parsers stay in
 * bounds, and the invariants named above.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_v1.h"
#include "auth/jwt.h"
#include "auth/keys.h"
#include "core/timeutil.h"
#include "fuzz/fuzz_http.h"

#define NOW_S 1700000000LL

static app the_app;
static auth_principal who;
static char key[AUTH_KEY_LEN + 1];
static const unsigned char secret[] = "fuzz-secret-fuzz-secret-fuzz-secret-0123456789";

/* A throwaway RSA public key made for this file (its private half was never kept). */
static const char rsa_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAowPvTfcYE1Y6byt4uKIK\n"
                              "NcOne1h91cXo2uhYbYqR6wER6QdwPJIvtpzNojAgk0Z4YCms0K4ARF8X2Z/f414D\n"
                              "m4zyhIdH687WJrxo0LQKDzWvwaBNVaC7vIYXuPef3KKr8fZXbrFvdgJCoz/Jhv+D\n"
                              "CY3ckTwPDI+uoU6GHyJ5zNeYxRZ0u8CPWuOhtdJLp+hwLtLtRfhtejfbYWR7QcCl\n"
                              "grl6LJBvF3b/eDqF0nFto2eAwasPUIQVeXu+hNYbEQcA3JryuTuTgVKAhzRTFeMN\n"
                              "bS+EPFXKGTiy8Lxzx6aOqHExvkDaWtAzw8XiTZr/eaOXBb2VP+DI7vdLTFQkC5FT\n"
                              "VwIDAQAB\n"
                              "-----END PUBLIC KEY-----\n";

static promptd_jwt_config jwt_cfg(void)
{
    promptd_jwt_config c = {0};
    c.hs256_secret = secret;
    c.hs256_secret_len = sizeof secret - 1;
    c.rs256_public_key_pem = rsa_pub;
    c.rs256_issuer = "https://idp.example";
    c.rs256_audience = "promptd";
    c.leeway_s = PROMPTD_JWT_DEFAULT_LEEWAY_S;
    return c;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0 || api_init(&the_app) != 0)
        abort();
    fz_app_store(&the_app, &who, key);
    the_app.body_limit = 1 << 20;
    promptd_jwt_config c = jwt_cfg();
    if (promptd_jwt_config_check(&c) != PROMPTD_JWT_OK)
        fz_fail("the fuzz JWT configuration is refused", NULL);
    return 0;
}

/* ---- mode 0: a request ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* %XX-decode s in place (and '+' -> ' ' when plus); stops at a decoded NUL, as a C string would. */
static void unescape(char *s, int plus)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        } else {
            *o++ = plus && *p == '+' ? ' ' : *p;
        }
    }
    *o = '\0';
}

static void add_query(http_req *r, char *q)
{
    char *save = NULL;
    for (char *kv = strtok_r(q, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq++ = '\0';
        unescape(kv, 1);
        if (eq)
            unescape(eq, 1);
        fz_req_query(r, kv, eq ? eq : "");
    }
}

static void query_helpers(http_req *r)
{
    api_req rq = {.http = r, .app = &the_app, .who = who};
    long a, b;
    int e;
    const char *s;
    static const char *const orders[] = {"asc", "desc", NULL};

    fz_req_reset_answer(r);
    if (api_page_params(&rq, &a, &b) != 0)
        fz_req_expect_answer(r, 0, "api_page_params");
    else if (a < 1 || a > 1000000000L || b < 1 || b > 100)
        fz_fail("api_page_params let a value out of range", NULL);
    fz_req_reset_answer(r);
    if (api_v1_page_params(&rq, &a, &b) != 0)
        fz_req_expect_answer(r, 0, "api_v1_page_params");
    else if (a < 1 || b < 1 || b > API_V1_PAGE_SIZE_MAX)
        fz_fail("api_v1_page_params let a value out of range", NULL);
    fz_req_reset_answer(r);
    if (api_query_long(&rq, "limit", 7, -5, 5, &a) != 0)
        fz_req_expect_answer(r, 0, "api_query_long");
    else if (a != 7 && (a < -5 || a > 5))
        fz_fail("api_query_long let a value out of range", NULL);
    fz_req_reset_answer(r);
    if (api_v1_query_enum(&rq, "order", orders, 1, &e) != 0)
        fz_req_expect_answer(r, 0, "api_v1_query_enum");
    else if (e < 0 || e > 1)
        fz_fail("api_v1_query_enum out of range", NULL);
    fz_req_reset_answer(r);
    if (api_v1_query_id(&rq, "prompt_id", &s) != 0)
        fz_req_expect_answer(r, 0, "api_v1_query_id");
    fz_req_reset_answer(r);
    if (api_v1_query_text(&rq, "search", 200, &s) != 0)
        fz_req_expect_answer(r, 0, "api_v1_query_text");
    else if (s && strlen(s) > 200)
        fz_fail("api_v1_query_text let a long value through", NULL);
    const char *since = http_query(r, "since");
    int64_t ms;
    if (since)
        (void)time_parse_rfc3339(since, &ms);
    fz_req_reset_answer(r);
}

static void mode_request(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        fz_fail("out of memory", NULL);
    memcpy(text, data, size);
    text[size] = '\0';

    /* the request line */
    char *line_end = strchr(text, '\n');
    char *rest = line_end ? line_end + 1 : text + size;
    if (line_end)
        *line_end = '\0';
    char *save = NULL;
    char *method = strtok_r(text, " \r", &save);
    char *target = method ? strtok_r(NULL, " \r", &save) : NULL;
    if (!method || !target) {
        free(text);
        return;
    }
    char *query = strchr(target, '?');
    if (query)
        *query++ = '\0';
    unescape(target, 0);

    http_req *r = fz_req_new(method, target);
    if (query)
        add_query(r, query);

    /* headers until an empty line, then the body */
    int wants_key = 0;
    while (rest && *rest && *rest != '\n' && strncmp(rest, "\r\n", 2) != 0) {
        char *eol = strchr(rest, '\n');
        if (eol)
            *eol = '\0';
        size_t n = strlen(rest);
        if (n && rest[n - 1] == '\r')
            rest[n - 1] = '\0';
        char *colon = strchr(rest, ':');
        if (colon) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (strcmp(rest, "AppId") == 0 && strcmp(v, "KEY") == 0)
                wants_key = 1;
            else
                fz_req_header(r, rest, v);
        }
        rest = eol ? eol + 1 : NULL;
    }
    if (rest && *rest)
        rest += *rest == '\r' ? 2 : 1;
    if (rest) {
        size_t off = (size_t)(rest - text);
        if (off <= size)
            fz_req_body(r, rest, size - off);
    }
    /* the real key only where the handler needs nothing but the store */
    if (wants_key && strcmp(http_path(r), "/api/v1/validate") == 0)
        fz_req_header(r, "AppId", key);

    api_dispatch(&the_app, r);
    fz_req_expect_answer(r, 1, "a request was answered 5xx or without a JSON object");
    query_helpers(r);
    fz_req_free(r);
    free(text);
}

/* ---- mode 1: RFC 3339 ---- */

static void mode_time(const uint8_t *data, size_t size)
{
    char s[128];
    if (size >= sizeof s)
        size = sizeof s - 1;
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t ms = 0;
    if (time_parse_rfc3339(s, &ms) != 0)
        return;
    /* years 1000..9999 print as four digits and parse back to the second */
    if (ms >= -30610224000000LL && ms < 253402300800000LL) {
        char out[RFC3339_LEN + 1];
        int64_t back = 0, secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
        time_format_rfc3339(secs * 1000, out);
        if (time_parse_rfc3339(out, &back) != 0 || back != secs * 1000)
            fz_fail("an RFC 3339 time does not round-trip", s);
    }
}

/* ---- mode 2: a presented credential ---- */

static void mode_credential(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        fz_fail("out of memory", NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    size_t n = strlen(s);

    int ok = auth_key_acceptable(s);
    int want = n >= AUTH_KEY_MIN_LEN && n <= AUTH_KEY_MAX_LEN;
    for (size_t i = 0; want && i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] > '~')
            want = 0;
    if (ok != want)
        fz_fail("auth_key_acceptable disagrees with its contract", NULL);
    char prefix[STORE_KEY_PREFIX_LEN + 1];
    auth_key_prefix(s, prefix);
    if (strlen(prefix) > STORE_KEY_PREFIX_LEN || strncmp(prefix, s, strlen(prefix)) != 0)
        fz_fail("auth_key_prefix", NULL);
    if (ok) {
        auth_principal p;
        if (auth_key_verify(the_app.store, s, &p) == AUTH_OK && strcmp(s, key) != 0)
            fz_fail("a key that was never created verifies", NULL);
    }

    int looks = promptd_jwt_looks_like(s);
    if (looks) {
        const char *d1 = strchr(s, '.');
        const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
        if (!d1 || !d2 || strchr(d2 + 1, '.') || n > PROMPTD_JWT_MAX_LEN || d1 == s || d2 == d1 + 1)
            fz_fail("promptd_jwt_looks_like accepted a bad shape", NULL);
    }
    promptd_jwt_config c = jwt_cfg();
    promptd_jwt_claims cl;
    int rc = promptd_jwt_verify(&c, s, NOW_S, &cl);
    if (rc == PROMPTD_JWT_OK)
        fz_fail("a token nobody signed verifies", s);
    static const promptd_jwt_claims zero;
    if (memcmp(&cl, &zero, sizeof cl) != 0)
        fz_fail("a refused token left claims behind", NULL);
    if (!promptd_jwt_strerror(rc))
        fz_fail("no text for a JWT code", NULL);
    free(s);
}

/* ---- mode 3: signed tokens with fuzzed header and payload ---- */

static char *b64url(const void *bin, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    if (!out)
        fz_fail("out of memory", NULL);
    sodium_bin2base64(out, cap, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

static void mode_signed(const uint8_t *data, size_t size)
{
    fz_pieces pc;
    fz_split(data, size, '\n', 2, &pc);
    if (pc.n < 2 || pc.len[0] + pc.len[1] > 6000) {
        fz_split_free(&pc);
        return;
    }
    char *h = b64url(pc.p[0], pc.len[0]), *p = b64url(pc.p[1], pc.len[1]);
    size_t signed_len = strlen(h) + 1 + strlen(p);
    char *tok = malloc(signed_len + 64);
    if (!tok)
        fz_fail("out of memory", NULL);
    snprintf(tok, signed_len + 64, "%s.%s", h, p);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, secret, sizeof secret - 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok, signed_len);
    crypto_auth_hmacsha256_final(&st, mac);
    char *sig = b64url(mac, sizeof mac);
    snprintf(tok + signed_len, 64, ".%s", sig);

    promptd_jwt_config c = jwt_cfg();
    promptd_jwt_claims cl;
    int rc = promptd_jwt_verify(&c, tok, NOW_S, &cl);
    if (rc == PROMPTD_JWT_OK) {
        if (strcmp(cl.alg, "HS256") != 0 || !cl.sub[0] || strcmp(cl.iss, PROMPTD_JWT_DEFAULT_ISSUER) != 0 ||
            strcmp(cl.aud, PROMPTD_JWT_DEFAULT_AUDIENCE) != 0)
            fz_fail("accepted claims break the rules", tok);
        if (NOW_S - c.leeway_s >= cl.exp || NOW_S + c.leeway_s < cl.nbf)
            fz_fail("an expired or not yet valid token was accepted", tok);
        if (!memchr(cl.email, '\0', sizeof cl.email) || !memchr(cl.org, '\0', sizeof cl.org) ||
            !memchr(cl.role, '\0', sizeof cl.role))
            fz_fail("a claim is not terminated", NULL);
    } else {
        static const promptd_jwt_claims zero;
        if (memcmp(&cl, &zero, sizeof cl) != 0)
            fz_fail("a refused token left claims behind", NULL);
    }
    free(h);
    free(p);
    free(sig);
    free(tok);
    fz_split_free(&pc);
}

/* ---- mode 4: issue, then verify ---- */

static void copy_field(char *dst, size_t cap, const fz_pieces *pc, int i)
{
    if (i < pc->n)
        snprintf(dst, cap, "%s", pc->p[i]);
}

static void mode_issue(const uint8_t *data, size_t size)
{
    fz_pieces pc;
    fz_split(data, size, '\n', 5, &pc);
    promptd_jwt_claims in = {0}, out;
    copy_field(in.sub, sizeof in.sub, &pc, 0);
    copy_field(in.email, sizeof in.email, &pc, 1);
    copy_field(in.org, sizeof in.org, &pc, 2);
    copy_field(in.role, sizeof in.role, &pc, 3);
    copy_field(in.iss, sizeof in.iss, &pc, 4);
    char *tok = NULL;
    long lifetime = (long)(size * 97) % (PROMPTD_JWT_MAX_LIFETIME_S + 10);
    int rc = promptd_jwt_issue_hs256(secret, sizeof secret - 1, &in, lifetime, NOW_S, &tok);
    if (rc != PROMPTD_JWT_OK) {
        if (tok)
            fz_fail("a refused issue returned a token", NULL);
        fz_split_free(&pc);
        return;
    }
    promptd_jwt_config c = jwt_cfg();
    if (in.iss[0])
        c.hs256_issuer = in.iss;
    int vr = promptd_jwt_verify(&c, tok, NOW_S, &out);
    /* the claims came back, unless a member was not valid UTF-8 (then the token cannot be made) */
    if (vr == PROMPTD_JWT_OK) {
        if (strcmp(out.sub, in.sub) || strcmp(out.email, in.email) || strcmp(out.org, in.org) ||
            strcmp(out.role, in.role) || out.iat != NOW_S || out.nbf != NOW_S)
            fz_fail("an issued token verified with other claims", tok);
    } else if (vr != PROMPTD_JWT_MALFORMED) {
        fz_fail("an issued token does not verify", promptd_jwt_strerror(vr));
    }
    free(tok);
    fz_split_free(&pc);
}

/* ---- mode 5: the RS256 key ---- */

static void mode_pem(const uint8_t *data, size_t size)
{
    char *pem = malloc(size + 1);
    if (!pem)
        fz_fail("out of memory", NULL);
    memcpy(pem, data, size);
    pem[size] = '\0';
    promptd_jwt_config c = {0};
    c.rs256_public_key_pem = pem;
    c.rs256_issuer = "i";
    c.rs256_audience = "a";
    (void)promptd_jwt_config_check(&c);
    free(pem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 6) {
    case 0: mode_request(data + 1, size - 1); break;
    case 1: mode_time(data + 1, size - 1); break;
    case 2: mode_credential(data + 1, size - 1); break;
    case 3: mode_signed(data + 1, size - 1); break;
    case 4: mode_issue(data + 1, size - 1); break;
    default: mode_pem(data + 1, size - 1); break;
    }
    return 0;
}
