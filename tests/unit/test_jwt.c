/*
 * test_jwt.c — bearer tokens (src/auth/jwt.h): HS256 issue and verify,
 * tampering, time and audience checks, algorithm confusion, malformed input,
 * and RS256 with throwaway RSA keys.
 *
 * Adversarial tokens are built by hand: header and payload JSON, base64url
 * by libsodium, HS256 signatures by libsodium's HMAC, RS256 signatures by the
 * `openssl` command (which also generates the keys, into a temporary
 * directory per test). Without the `openssl` command the RS256 tests skip
 * and say so.
 */
#include <criterion/criterion.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/jwt.h"

/* One timeout for every suite (see test_engine.c on Criterion's runner). */
TestSuite(jwt, .timeout = 60);
TestSuite(jwt_rs256, .timeout = 60);

#define NOW 1750000000LL

static const unsigned char SECRET[] = "0123456789abcdef0123456789abcdef-test-secret";
#define SECRET_LEN (sizeof SECRET - 1)

static promptd_jwt_config hs_cfg(void)
{
    promptd_jwt_config c = {0};
    c.hs256_secret = SECRET;
    c.hs256_secret_len = SECRET_LEN;
    c.leeway_s = PROMPTD_JWT_DEFAULT_LEEWAY_S;
    return c;
}

static promptd_jwt_claims user_claims(void)
{
    promptd_jwt_claims c = {0};
    strcpy(c.sub, "0190f5c2-0000-7000-8000-000000000001");
    strcpy(c.email, "ada@example.com");
    strcpy(c.org, "0190f5c2-0000-7000-8000-0000000000aa");
    strcpy(c.role, "member");
    return c;
}

static char *issue(long lifetime_s, int64_t now_s)
{
    promptd_jwt_claims c = user_claims();
    char *tok = NULL;
    cr_assert_eq(promptd_jwt_issue_hs256(SECRET, SECRET_LEN, &c, lifetime_s, now_s, &tok), PROMPTD_JWT_OK);
    cr_assert_not_null(tok);
    return tok;
}

static int verify(const promptd_jwt_config *cfg, const char *tok, int64_t now)
{
    promptd_jwt_claims out;
    return promptd_jwt_verify(cfg, tok, now, &out);
}

/* ---- crafting tokens by hand ---- */

static void b64url(const void *bin, size_t len, char *out, size_t cap)
{
    cr_assert_geq(cap, sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING));
    sodium_bin2base64(out, cap, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* "b64(header).b64(payload)" in a malloc'd buffer with room for a signature */
static char *signing_input(const char *header, const char *payload)
{
    size_t cap = strlen(header) * 2 + strlen(payload) * 2 + 1024;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    b64url(header, strlen(header), s, cap);
    strcat(s, ".");
    b64url(payload, strlen(payload), s + strlen(s), cap - strlen(s));
    return s;
}

/* header.payload.HMAC-SHA256(key), or an empty signature when key is NULL */
static char *craft_hs(const char *header, const char *payload, const void *key, size_t keylen)
{
    char *s = signing_input(header, payload);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    strcat(s, ".");
    if (key) {
        crypto_auth_hmacsha256_init(&st, key, keylen);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)s, strlen(s) - 1);
        crypto_auth_hmacsha256_final(&st, mac);
        b64url(mac, sizeof mac, s + strlen(s), 64);
    }
    return s;
}

static char *payload_std(char *buf, size_t cap, const char *iss, const char *aud_json, long long exp)
{
    snprintf(buf, cap,
             "{\"iss\":\"%s\",\"aud\":%s,\"sub\":\"u-1\",\"email\":\"ada@example.com\",\"org\":\"o-1\","
             "\"role\":\"member\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld}",
             iss, aud_json, NOW, NOW, exp);
    return buf;
}

static const char HS_HEADER[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* an HS256 token over arbitrary payload JSON, signed with SECRET */
static char *hs_token(const char *payload) { return craft_hs(HS_HEADER, payload, SECRET, SECRET_LEN); }

/* ---- HS256: issue and verify ---- */

Test(jwt, issue_verify_round_trip)
{
    promptd_jwt_config cfg = hs_cfg();
    promptd_jwt_claims out;
    char *tok = issue(0, NOW);

    cr_assert(promptd_jwt_looks_like(tok));
    cr_assert_eq(promptd_jwt_verify(&cfg, tok, NOW + 10, &out), PROMPTD_JWT_OK);
    cr_assert_str_eq(out.sub, "0190f5c2-0000-7000-8000-000000000001");
    cr_assert_str_eq(out.email, "ada@example.com");
    cr_assert_str_eq(out.org, "0190f5c2-0000-7000-8000-0000000000aa");
    cr_assert_str_eq(out.role, "member");
    cr_assert_str_eq(out.iss, "promptd");
    cr_assert_str_eq(out.aud, "promptd");
    cr_assert_str_eq(out.alg, "HS256");
    cr_assert_eq(out.iat, NOW);
    cr_assert_eq(out.nbf, NOW);
    cr_assert_eq(out.exp, NOW + PROMPTD_JWT_DEFAULT_LIFETIME_S);
    free(tok);

    /* the real clock both ways */
    tok = issue(3600, -1);
    cr_assert_eq(promptd_jwt_verify(&cfg, tok, -1, &out), PROMPTD_JWT_OK);
    cr_assert_eq(out.exp - out.iat, 3600);
    free(tok);
}

Test(jwt, issue_custom_issuer_audience_and_admin)
{
    promptd_jwt_claims c = user_claims(), out;
    promptd_jwt_config cfg = hs_cfg();
    char *tok = NULL;
    strcpy(c.role, "admin");
    strcpy(c.iss, "promptd-eu");
    strcpy(c.aud, "promptd-api");
    c.email[0] = '\0'; /* optional claims may be left out */
    c.org[0] = '\0';
    cr_assert_eq(promptd_jwt_issue_hs256(SECRET, SECRET_LEN, &c, 600, NOW, &tok), PROMPTD_JWT_OK);

    cr_assert_eq(verify(&cfg, tok, NOW), PROMPTD_JWT_WRONG_ISSUER);
    cfg.hs256_issuer = "promptd-eu";
    cr_assert_eq(verify(&cfg, tok, NOW), PROMPTD_JWT_WRONG_AUDIENCE);
    cfg.hs256_audience = "promptd-api";
    cr_assert_eq(promptd_jwt_verify(&cfg, tok, NOW, &out), PROMPTD_JWT_OK);
    cr_assert_str_eq(out.role, "admin");
    cr_assert_str_eq(out.email, "");
    cr_assert_str_eq(out.org, "");
    cr_assert_str_eq(out.aud, "promptd-api");
    cr_assert_eq(out.exp, NOW + 600);
    free(tok);
}

Test(jwt, issue_rejects_bad_arguments)
{
    promptd_jwt_claims c = user_claims();
    char *tok = (char *)"untouched";
    cr_assert_eq(promptd_jwt_issue_hs256(SECRET, 31, &c, 0, NOW, &tok), PROMPTD_JWT_INVALID_ARG);
    cr_assert_null(tok);
    cr_assert_eq(promptd_jwt_issue_hs256(NULL, 0, &c, 0, NOW, &tok), PROMPTD_JWT_INVALID_ARG);
    cr_assert_eq(promptd_jwt_issue_hs256(SECRET, SECRET_LEN, NULL, 0, NOW, &tok), PROMPTD_JWT_INVALID_ARG);
    cr_assert_eq(promptd_jwt_issue_hs256(SECRET, SECRET_LEN, &c, -1, NOW, &tok), PROMPTD_JWT_INVALID_ARG);
    cr_assert_eq(promptd_jwt_issue_hs256(SECRET, SECRET_LEN, &c, PROMPTD_JWT_MAX_LIFETIME_S + 1, NOW, &tok),
                 PROMPTD_JWT_INVALID_ARG);
    cr_assert_eq(promptd_jwt_issue_hs256(SECRET, SECRET_LEN, &c, 0, -7, &tok), PROMPTD_JWT_INVALID_ARG);
    cr_assert_eq(promptd_jwt_issue_hs256(SECRET, SECRET_LEN, &c, 0, NOW, NULL), PROMPTD_JWT_INVALID_ARG);
    strcpy(c.role, "owner");
    cr_assert_eq(promptd_jwt_issue_hs256(SECRET, SECRET_LEN, &c, 0, NOW, &tok), PROMPTD_JWT_INVALID_ARG);
    c = user_claims();
    c.sub[0] = '\0';
    cr_assert_eq(promptd_jwt_issue_hs256(SECRET, SECRET_LEN, &c, 0, NOW, &tok), PROMPTD_JWT_INVALID_ARG);
    c = user_claims();
    memset(c.email, 'x', sizeof c.email); /* not NUL-terminated */
    cr_assert_eq(promptd_jwt_issue_hs256(SECRET, SECRET_LEN, &c, 0, NOW, &tok), PROMPTD_JWT_INVALID_ARG);
    cr_assert_null(tok);
}

/* ---- tampering ---- */

Test(jwt, tampered_payload_and_signature)
{
    promptd_jwt_config cfg = hs_cfg();
    char *tok = issue(0, NOW);
    char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
    char payload[1024], forged_payload[1024];
    unsigned char raw[1024];
    size_t rawlen;

    /* payload: member -> admin, re-encoded, original signature kept */
    cr_assert_eq(sodium_base642bin(raw, sizeof raw - 1, d1 + 1, (size_t)(d2 - d1 - 1), NULL, &rawlen, NULL,
                                   sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                 0);
    raw[rawlen] = '\0';
    char *role = strstr((char *)raw, "\"member\"");
    cr_assert_not_null(role);
    snprintf(payload, sizeof payload, "%.*s\"admin\"%s", (int)(role - (char *)raw), (char *)raw, role + 8);
    b64url(payload, strlen(payload), forged_payload, sizeof forged_payload);
    char forged[4096];
    snprintf(forged, sizeof forged, "%.*s.%s%s", (int)(d1 - tok), tok, forged_payload, d2);
    cr_assert_eq(verify(&cfg, forged, NOW), PROMPTD_JWT_BAD_SIGNATURE);

    /* signature: one character changed, still valid base64url */
    char *t2 = strdup(tok);
    char *s = strrchr(t2, '.') + 1;
    s[0] = s[0] == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(&cfg, t2, NOW), PROMPTD_JWT_BAD_SIGNATURE);
    /* truncated, extended, emptied */
    strcpy(t2, tok);
    t2[strlen(t2) - 1] = '\0';
    cr_assert_eq(verify(&cfg, t2, NOW), PROMPTD_JWT_BAD_SIGNATURE);
    char longer[4096];
    snprintf(longer, sizeof longer, "%sAAAA", tok);
    cr_assert_eq(verify(&cfg, longer, NOW), PROMPTD_JWT_BAD_SIGNATURE);
    strcpy(t2, tok);
    strrchr(t2, '.')[1] = '\0';
    cr_assert_eq(verify(&cfg, t2, NOW), PROMPTD_JWT_BAD_SIGNATURE);

    /* another secret */
    promptd_jwt_config other = hs_cfg();
    other.hs256_secret = (const unsigned char *)"another-secret-another-secret-another";
    other.hs256_secret_len = strlen((const char *)other.hs256_secret);
    cr_assert_eq(verify(&other, tok, NOW), PROMPTD_JWT_BAD_SIGNATURE);

    /* the untouched token still verifies */
    cr_assert_eq(verify(&cfg, tok, NOW), PROMPTD_JWT_OK);
    free(t2);
    free(tok);
}

/* ---- time ---- */

Test(jwt, expired_and_leeway)
{
    promptd_jwt_config cfg = hs_cfg(); /* leeway 60 s */
    char *tok = issue(3600, NOW);
    cr_assert_eq(verify(&cfg, tok, NOW + 3600 + 59), PROMPTD_JWT_OK);
    cr_assert_eq(verify(&cfg, tok, NOW + 3600 + 60), PROMPTD_JWT_EXPIRED);
    cr_assert_eq(verify(&cfg, tok, NOW + 86400 * 2), PROMPTD_JWT_EXPIRED);
    cfg.leeway_s = 0;
    cr_assert_eq(verify(&cfg, tok, NOW + 3599), PROMPTD_JWT_OK);
    cr_assert_eq(verify(&cfg, tok, NOW + 3600), PROMPTD_JWT_EXPIRED);
    free(tok);

    /* exp as a real number (NumericDate may be fractional) */
    char p[512];
    snprintf(p, sizeof p, "{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"u\",\"exp\":%lld.75}", NOW + 10);
    tok = hs_token(p);
    cr_assert_eq(verify(&cfg, tok, NOW + 9), PROMPTD_JWT_OK);
    cr_assert_eq(verify(&cfg, tok, NOW + 10), PROMPTD_JWT_EXPIRED);
    free(tok);
}

Test(jwt, not_yet_valid)
{
    promptd_jwt_config cfg = hs_cfg();
    char *tok = issue(0, NOW + 3600); /* nbf an hour ahead */
    cr_assert_eq(verify(&cfg, tok, NOW), PROMPTD_JWT_NOT_YET_VALID);
    cr_assert_eq(verify(&cfg, tok, NOW + 3600 - 60), PROMPTD_JWT_OK); /* within the leeway */
    cr_assert_eq(verify(&cfg, tok, NOW + 3600 - 61), PROMPTD_JWT_NOT_YET_VALID);
    free(tok);
}

/* ---- issuer, audience, required claims ---- */

Test(jwt, issuer_audience_and_required_claims)
{
    promptd_jwt_config cfg = hs_cfg();
    char p[1024], *tok;
    struct {
        const char *payload;
        int want;
    } cases[] = {
        {"{\"iss\":\"evil\",\"aud\":\"promptd\",\"sub\":\"u\",\"exp\":%lld}", PROMPTD_JWT_WRONG_ISSUER},
        {"{\"iss\":\"promptdx\",\"aud\":\"promptd\",\"sub\":\"u\",\"exp\":%lld}", PROMPTD_JWT_WRONG_ISSUER},
        {"{\"iss\":\"promptd\",\"aud\":\"other\",\"sub\":\"u\",\"exp\":%lld}", PROMPTD_JWT_WRONG_AUDIENCE},
        {"{\"iss\":\"promptd\",\"aud\":[\"a\",\"b\"],\"sub\":\"u\",\"exp\":%lld}", PROMPTD_JWT_WRONG_AUDIENCE},
        {"{\"iss\":\"promptd\",\"aud\":[],\"sub\":\"u\",\"exp\":%lld}", PROMPTD_JWT_WRONG_AUDIENCE},
        {"{\"iss\":\"promptd\",\"aud\":[\"a\",\"promptd\"],\"sub\":\"u\",\"exp\":%lld}", PROMPTD_JWT_OK},
        {"{\"iss\":\"promptd\",\"aud\":[\"promptd\",7],\"sub\":\"u\",\"exp\":%lld}", PROMPTD_JWT_MALFORMED},
        {"{\"iss\":\"promptd\",\"aud\":7,\"sub\":\"u\",\"exp\":%lld}", PROMPTD_JWT_MALFORMED},
        {"{\"aud\":\"promptd\",\"sub\":\"u\",\"exp\":%lld}", PROMPTD_JWT_MISSING_CLAIM},
        {"{\"iss\":\"promptd\",\"sub\":\"u\",\"exp\":%lld}", PROMPTD_JWT_MISSING_CLAIM},
        {"{\"iss\":\"promptd\",\"aud\":\"promptd\",\"exp\":%lld}", PROMPTD_JWT_MISSING_CLAIM},
        {"{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"\",\"exp\":%lld}", PROMPTD_JWT_MISSING_CLAIM},
        {"{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"u\",\"x\":%lld}", PROMPTD_JWT_MISSING_CLAIM},
        /* claims of the wrong type */
        {"{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":42,\"exp\":%lld}", PROMPTD_JWT_MALFORMED},
        {"{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"u\",\"exp\":\"%lld\"}", PROMPTD_JWT_MALFORMED},
        {"{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"u\",\"role\":[\"admin\"],\"exp\":%lld}",
         PROMPTD_JWT_MALFORMED},
        {"{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"u\",\"nbf\":true,\"exp\":%lld}", PROMPTD_JWT_MALFORMED},
        {"{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"u\",\"email\":null,\"exp\":%lld}", PROMPTD_JWT_OK},
        {"{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"u\",\"exp\":%lld,\"exp\":1}", PROMPTD_JWT_MALFORMED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(p, sizeof p, cases[i].payload, NOW + 600);
        tok = hs_token(p);
        cr_expect_eq(verify(&cfg, tok, NOW), cases[i].want, "case %zu: %s -> %s", i, p,
                     promptd_jwt_strerror(verify(&cfg, tok, NOW)));
        free(tok);
    }

    /* a claim longer than its field is rejected, not truncated */
    char email[400];
    memset(email, 'e', sizeof email - 1);
    email[sizeof email - 1] = '\0';
    snprintf(p, sizeof p, "{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"u\",\"email\":\"%s\",\"exp\":%lld}",
             email, NOW + 600);
    tok = hs_token(p);
    cr_assert_eq(verify(&cfg, tok, NOW), PROMPTD_JWT_MALFORMED);
    free(tok);
}

/* ---- algorithms ---- */

/* OpenID Connect's email_verified: true (or Cognito's "true") verifies the
 * email; false, "false", null or absent do not; another type is malformed. */
Test(jwt, email_verified_claim)
{
    promptd_jwt_config cfg = hs_cfg();
    struct {
        const char *value; /* NULL = absent */
        int rc, verified;
    } cases[] = {
        {NULL, PROMPTD_JWT_OK, 0},
        {"true", PROMPTD_JWT_OK, 1},
        {"false", PROMPTD_JWT_OK, 0},
        {"null", PROMPTD_JWT_OK, 0},
        {"\"true\"", PROMPTD_JWT_OK, 1},
        {"\"false\"", PROMPTD_JWT_OK, 0},
        {"\"yes\"", PROMPTD_JWT_MALFORMED, 0},
        {"1", PROMPTD_JWT_MALFORMED, 0},
        {"{}", PROMPTD_JWT_MALFORMED, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char p[512];
        snprintf(p, sizeof p,
                 "{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"u\",\"email\":\"ada@example.com\","
                 "\"exp\":%lld%s%s}",
                 NOW + 600, cases[i].value ? ",\"email_verified\":" : "", cases[i].value ? cases[i].value : "");
        char *tok = hs_token(p);
        promptd_jwt_claims c;
        memset(&c, 0x55, sizeof c);
        int rc = promptd_jwt_verify(&cfg, tok, NOW, &c);
        cr_assert_eq(rc, cases[i].rc, "email_verified %s: rc %d, want %d", cases[i].value ? cases[i].value : "absent",
                     rc, cases[i].rc);
        cr_assert_eq(c.email_verified, cases[i].verified, "email_verified %s: %d",
                     cases[i].value ? cases[i].value : "absent", c.email_verified);
        free(tok);
    }
}

Test(jwt, alg_none_and_other_algs_rejected)
{
    promptd_jwt_config cfg = hs_cfg();
    char p[512];
    payload_std(p, sizeof p, "promptd", "\"promptd\"", NOW + 600);

    const char *headers[] = {
        "{\"alg\":\"none\"}",   "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"None\"}",   "{\"alg\":\"NONE\"}",
        "{\"alg\":\"hs256\"}",  "{\"alg\":\"HS512\"}",
        "{\"alg\":\"HS384\"}",  "{\"alg\":\"ES256\"}",
        "{\"alg\":\"RS256\"}", /* RS256 is not enabled by an HS-only configuration */
        "{\"alg\":\"HS256 \"}", "{\"alg\":\"\"}",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char *unsigned_tok = craft_hs(headers[i], p, NULL, 0);
        char *signed_tok = craft_hs(headers[i], p, SECRET, SECRET_LEN);
        cr_expect(promptd_jwt_looks_like(unsigned_tok), "%s", headers[i]);
        cr_expect_eq(verify(&cfg, unsigned_tok, NOW), PROMPTD_JWT_ALG_NOT_ALLOWED, "%s unsigned", headers[i]);
        cr_expect_eq(verify(&cfg, signed_tok, NOW), PROMPTD_JWT_ALG_NOT_ALLOWED, "%s signed", headers[i]);
        free(unsigned_tok);
        free(signed_tok);
    }

    /* alg none as libjwt itself writes it */
    jwt_t *j = NULL;
    cr_assert_eq(jwt_new(&j), 0);
    jwt_add_grants_json(j, p);
    cr_assert_eq(jwt_set_alg(j, JWT_ALG_NONE, NULL, 0), 0);
    char *none = jwt_encode_str(j);
    cr_assert_not_null(none);
    cr_assert_eq(verify(&cfg, none, NOW), PROMPTD_JWT_ALG_NOT_ALLOWED);
    free(none);
    /* HS512 by libjwt with the very same secret */
    cr_assert_eq(jwt_set_alg(j, JWT_ALG_HS512, SECRET, (int)SECRET_LEN), 0);
    char *hs512 = jwt_encode_str(j);
    cr_assert_eq(verify(&cfg, hs512, NOW), PROMPTD_JWT_ALG_NOT_ALLOWED);
    free(hs512);
    jwt_free(j);

    /* the alg must be a string */
    char *t = craft_hs("{\"alg\":256}", p, SECRET, SECRET_LEN);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_MALFORMED);
    free(t);
    t = craft_hs("{\"typ\":\"JWT\"}", p, SECRET, SECRET_LEN);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_MALFORMED);
    free(t);
}

Test(jwt, unsupported_headers)
{
    promptd_jwt_config cfg = hs_cfg();
    char p[512], *t;
    payload_std(p, sizeof p, "promptd", "\"promptd\"", NOW + 600);

    t = craft_hs("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", p, SECRET, SECRET_LEN);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_UNSUPPORTED);
    free(t);
    t = craft_hs("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", p, SECRET, SECRET_LEN);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_UNSUPPORTED);
    free(t);
    t = craft_hs("{\"alg\":\"HS256\",\"typ\":1}", p, SECRET, SECRET_LEN);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_UNSUPPORTED);
    free(t);
    /* typ is case-insensitive, and optional; other header members are ignored */
    t = craft_hs("{\"alg\":\"HS256\",\"typ\":\"jwt\",\"kid\":\"k1\"}", p, SECRET, SECRET_LEN);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_OK);
    free(t);
    t = craft_hs("{\"alg\":\"HS256\"}", p, SECRET, SECRET_LEN);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_OK);
    free(t);
    /* a duplicate alg is malformed, whichever value comes last */
    t = craft_hs("{\"alg\":\"none\",\"alg\":\"HS256\"}", p, SECRET, SECRET_LEN);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_MALFORMED);
    free(t);
}

/* ---- malformed input ---- */

Test(jwt, garbage_is_malformed)
{
    promptd_jwt_config cfg = hs_cfg();
    const char *garbage[] = {
        "",
        "abc",
        "pk_live_abcdefghijklmnopqrstuvwxyz0123456789ABCD",
        "a.b",
        "a.b.c.d",
        "..",
        "...",
        ".b.c",
        "a..c",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.sig=", /* padding */
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.s+g/", /* base64, not base64url */
        "eyJhbGciOiJIUzI1NiJ9 .eyJzdWIiOiJ1In0.abc", /* space */
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.abc",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0\n.abc",
        "aGVsbG8.d29ybGQ.abc",                       /* base64url, not JSON */
        "W10.W10.abc",                               /* [] and [] */
        "IjEi.IjEi.abc",                             /* "1" and "1" */
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0x.abc", /* trailing garbage in the payload */
        "eyJhbGciOiJIUzI1NiJ9.A.abc",                /* one base64 char: impossible length */
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In1.abc",  /* non-zero trailing bits */
        "\xff\xfe.\x01\x02.x",
    };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        promptd_jwt_claims out;
        memset(&out, 0x5a, sizeof out);
        cr_expect_eq(promptd_jwt_verify(&cfg, garbage[i], NOW, &out), PROMPTD_JWT_MALFORMED, "case %zu", i);
        cr_expect_eq(out.sub[0], '\0', "claims zeroed on failure");
    }

    char p[256], *t;
    /* NUL inside a JSON string */
    snprintf(p, sizeof p, "{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"u\\u0000admin\",\"exp\":%lld}",
             NOW + 600);
    t = hs_token(p);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_MALFORMED);
    free(t);

    /* a well-formed token just over 8 KiB */
    size_t big = PROMPTD_JWT_MAX_LEN;
    char *pad = malloc(big);
    memset(pad, 'x', big - 1);
    pad[big - 1] = '\0';
    char *bp = malloc(big + 256);
    snprintf(bp, big + 256, "{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"u\",\"pad\":\"%s\",\"exp\":%lld}", pad,
             NOW + 600);
    t = hs_token(bp);
    cr_assert_gt(strlen(t), PROMPTD_JWT_MAX_LEN);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_MALFORMED);
    cr_assert_not(promptd_jwt_looks_like(t));
    free(t);
    /* ... and one just under it verifies */
    pad[PROMPTD_JWT_MAX_LEN * 3 / 4 - 300] = '\0';
    snprintf(bp, big + 256, "{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"u\",\"pad\":\"%s\",\"exp\":%lld}", pad,
             NOW + 600);
    t = hs_token(bp);
    cr_assert_leq(strlen(t), PROMPTD_JWT_MAX_LEN);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_OK);
    free(t);
    free(pad);
    free(bp);

    promptd_jwt_claims out;
    cr_assert_eq(promptd_jwt_verify(&cfg, NULL, NOW, &out), PROMPTD_JWT_INVALID_ARG);
    cr_assert_eq(promptd_jwt_verify(&cfg, "a.b.c", NOW, NULL), PROMPTD_JWT_INVALID_ARG);
    cr_assert_eq(promptd_jwt_verify(&cfg, "a.b.c", -2, &out), PROMPTD_JWT_INVALID_ARG);
}

Test(jwt, looks_like_tells_tokens_from_keys)
{
    char *tok = issue(0, NOW);
    cr_assert(promptd_jwt_looks_like(tok));
    free(tok);
    cr_assert(promptd_jwt_looks_like("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0."));
    cr_assert(promptd_jwt_looks_like("a.b.c"));
    cr_assert(promptd_jwt_looks_like("a-_.b_-.c-_"));

    cr_assert_not(promptd_jwt_looks_like(NULL));
    cr_assert_not(promptd_jwt_looks_like(""));
    cr_assert_not(promptd_jwt_looks_like("pk_live_abcdefghijklmnopqrstuvwxyz0123456789ABCD"));
    cr_assert_not(promptd_jwt_looks_like("my-admin-key-0123456789"));
    cr_assert_not(promptd_jwt_looks_like("a.b"));
    cr_assert_not(promptd_jwt_looks_like("a.b.c.d"));
    cr_assert_not(promptd_jwt_looks_like(".b.c"));
    cr_assert_not(promptd_jwt_looks_like("a..c"));
    cr_assert_not(promptd_jwt_looks_like("a.b.c="));
    cr_assert_not(promptd_jwt_looks_like("a.b+.c"));
    cr_assert_not(promptd_jwt_looks_like("a.b.c "));
}

Test(jwt, the_previous_secret_verifies_but_only_while_configured)
{
    static const unsigned char NEXT[] = "a-new-secret-after-rotation-0123456789abcdef";
    char *old_tok = issue(3600, -1); /* signed with SECRET */
    char *new_tok = NULL;
    promptd_jwt_claims claims = user_claims();
    cr_assert_eq(promptd_jwt_issue_hs256(NEXT, sizeof NEXT - 1, &claims, 3600, -1, &new_tok), PROMPTD_JWT_OK);
    /* after a rotation: NEXT signs, SECRET still verifies */
    promptd_jwt_config c = hs_cfg();
    c.hs256_secret = NEXT;
    c.hs256_secret_len = sizeof NEXT - 1;
    c.hs256_previous_secret = SECRET;
    c.hs256_previous_secret_len = SECRET_LEN;
    cr_assert_eq(promptd_jwt_config_check(&c), PROMPTD_JWT_OK);
    cr_assert_eq(verify(&c, new_tok, -1), PROMPTD_JWT_OK);
    cr_assert_eq(verify(&c, old_tok, -1), PROMPTD_JWT_OK);
    /* without the previous secret the old token is refused; the new one stands */
    c.hs256_previous_secret = NULL;
    c.hs256_previous_secret_len = 0;
    cr_assert_eq(verify(&c, old_tok, -1), PROMPTD_JWT_BAD_SIGNATURE);
    cr_assert_eq(verify(&c, new_tok, -1), PROMPTD_JWT_OK);
    /* a token tampered with fails against both */
    c.hs256_previous_secret = SECRET;
    c.hs256_previous_secret_len = SECRET_LEN;
    char *last = old_tok + strlen(old_tok) - 2; /* another base64url character: a wrong MAC */
    *last = *last == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(&c, old_tok, -1), PROMPTD_JWT_BAD_SIGNATURE);
    /* a short previous secret is a bad configuration */
    c.hs256_previous_secret_len = PROMPTD_JWT_MIN_SECRET - 1;
    cr_assert_eq(promptd_jwt_config_check(&c), PROMPTD_JWT_INVALID_ARG);
    free(old_tok);
    free(new_tok);
}

Test(jwt, config_check)
{
    promptd_jwt_config c = {0};
    cr_assert_eq(promptd_jwt_config_check(NULL), PROMPTD_JWT_INVALID_ARG);
    cr_assert_eq(promptd_jwt_config_check(&c), PROMPTD_JWT_INVALID_ARG); /* no key at all */
    c = hs_cfg();
    cr_assert_eq(promptd_jwt_config_check(&c), PROMPTD_JWT_OK);
    c.hs256_secret_len = PROMPTD_JWT_MIN_SECRET - 1;
    cr_assert_eq(promptd_jwt_config_check(&c), PROMPTD_JWT_INVALID_ARG);
    c = hs_cfg();
    c.leeway_s = -1;
    cr_assert_eq(promptd_jwt_config_check(&c), PROMPTD_JWT_INVALID_ARG);
    c.leeway_s = PROMPTD_JWT_MAX_LEEWAY_S + 1;
    cr_assert_eq(promptd_jwt_config_check(&c), PROMPTD_JWT_INVALID_ARG);
    c = hs_cfg();
    c.hs256_issuer = "";
    cr_assert_eq(promptd_jwt_config_check(&c), PROMPTD_JWT_INVALID_ARG);

    /* verification refuses an unusable configuration before looking at the token */
    char *tok = issue(0, NOW);
    c.hs256_secret_len = 16;
    c.hs256_issuer = NULL;
    cr_assert_eq(verify(&c, tok, NOW), PROMPTD_JWT_INVALID_ARG);
    cr_assert_eq(verify(NULL, tok, NOW), PROMPTD_JWT_INVALID_ARG);
    free(tok);

    /* RS256: the PEM must be an RSA public key, issuer and audience set */
    c = (promptd_jwt_config){0};
    c.rs256_public_key_pem = "-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----\n";
    c.rs256_issuer = "https://idp.example";
    c.rs256_audience = "promptd";
    cr_assert_eq(promptd_jwt_config_check(&c), PROMPTD_JWT_INVALID_ARG);
    c.rs256_public_key_pem = "just text";
    cr_assert_eq(promptd_jwt_config_check(&c), PROMPTD_JWT_INVALID_ARG);
    c.rs256_public_key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    cr_assert_eq(promptd_jwt_config_check(&c), PROMPTD_JWT_INVALID_ARG);

    for (int rc = PROMPTD_JWT_OK; rc <= PROMPTD_JWT_ERROR; rc++)
        cr_assert_not_null(promptd_jwt_strerror(rc));
    cr_assert_str_eq(promptd_jwt_strerror(PROMPTD_JWT_EXPIRED), "token expired");
    cr_assert_str_eq(promptd_jwt_strerror(999), "unknown JWT error");
}

/* ---- RS256 with throwaway keys ---- */

typedef struct keys {
    char dir[64];
    char priv_a[128], pub_a[128], priv_b[128];
    char *pem_a;      /* public key A */
    char *priv_pem_a; /* private key A */
    char *priv_pem_b; /* private key B */
} keys;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    char *buf = malloc(65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int have_openssl(void) { return system("command -v openssl >/dev/null 2>&1") == 0; }

static void run(const char *cmd) { cr_assert_eq(system(cmd), 0, "command failed: %s", cmd); }

static void keys_make(keys *k)
{
    char cmd[1024];
    if (!have_openssl())
        cr_skip_test("the openssl command is not installed: RS256 tests need it to make keys");
    snprintf(k->dir, sizeof k->dir, "/tmp/promptd-jwt-XXXXXX");
    cr_assert_not_null(mkdtemp(k->dir));
    snprintf(k->priv_a, sizeof k->priv_a, "%s/a.key", k->dir);
    snprintf(k->pub_a, sizeof k->pub_a, "%s/a.pub", k->dir);
    snprintf(k->priv_b, sizeof k->priv_b, "%s/b.key", k->dir);
    snprintf(cmd, sizeof cmd,
             "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null && "
             "openssl pkey -in %s -pubout -out %s 2>/dev/null && "
             "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null",
             k->priv_a, k->priv_a, k->pub_a, k->priv_b);
    run(cmd);
    k->pem_a = slurp(k->pub_a);
    k->priv_pem_a = slurp(k->priv_a);
    k->priv_pem_b = slurp(k->priv_b);
}

static void keys_free(keys *k)
{
    char cmd[128];
    free(k->pem_a);
    free(k->priv_pem_a);
    free(k->priv_pem_b);
    snprintf(cmd, sizeof cmd, "rm -rf %s", k->dir);
    run(cmd);
}

static promptd_jwt_config rs_cfg(const keys *k)
{
    promptd_jwt_config c = {0};
    c.rs256_public_key_pem = k->pem_a;
    c.rs256_issuer = "https://idp.example";
    c.rs256_audience = "promptd-api";
    c.leeway_s = 60;
    return c;
}

/* an RS256 token signed by libjwt with a private PEM (libjwt writes typ "JWT") */
static char *rs_token(const char *priv_pem, const char *payload)
{
    jwt_t *j = NULL;
    cr_assert_eq(jwt_new(&j), 0);
    cr_assert_eq(jwt_add_grants_json(j, payload), 0);
    cr_assert_eq(jwt_set_alg(j, JWT_ALG_RS256, (const unsigned char *)priv_pem, (int)strlen(priv_pem)), 0);
    char *t = jwt_encode_str(j);
    cr_assert_not_null(t);
    jwt_free(j);
    return t;
}

/* an RS256 token over an arbitrary header, signed by the openssl command */
static char *rs_token_openssl(const keys *k, const char *priv_path, const char *header, const char *payload)
{
    char in[160], sigf[160], cmd[1024];
    char *s = signing_input(header, payload);
    snprintf(in, sizeof in, "%s/in", k->dir);
    snprintf(sigf, sizeof sigf, "%s/sig", k->dir);
    FILE *f = fopen(in, "wb");
    cr_assert_not_null(f);
    fwrite(s, 1, strlen(s), f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "openssl dgst -sha256 -sign %s -out %s %s", priv_path, sigf, in);
    run(cmd);
    f = fopen(sigf, "rb");
    cr_assert_not_null(f);
    unsigned char sig[1024];
    size_t n = fread(sig, 1, sizeof sig, f);
    fclose(f);
    cr_assert_eq(n, 256);
    strcat(s, ".");
    b64url(sig, n, s + strlen(s), 400);
    return s;
}

Test(jwt_rs256, verify_identity_provider_token)
{
    keys k;
    keys_make(&k);
    promptd_jwt_config cfg = rs_cfg(&k);
    promptd_jwt_claims out;
    char p[1024];
    cr_assert_eq(promptd_jwt_config_check(&cfg), PROMPTD_JWT_OK);

    snprintf(p, sizeof p,
             "{\"iss\":\"https://idp.example\",\"aud\":[\"other\",\"promptd-api\"],\"sub\":\"auth0|42\","
             "\"email\":\"grace@example.com\",\"org\":\"acme\",\"role\":\"admin\",\"iat\":%lld,\"nbf\":%lld,"
             "\"exp\":%lld}",
             NOW, NOW, NOW + 300);
    char *t = rs_token(k.priv_pem_a, p);
    cr_assert_eq(promptd_jwt_verify(&cfg, t, NOW + 1, &out), PROMPTD_JWT_OK);
    cr_assert_str_eq(out.sub, "auth0|42");
    cr_assert_str_eq(out.email, "grace@example.com");
    cr_assert_str_eq(out.org, "acme");
    cr_assert_str_eq(out.role, "admin");
    cr_assert_str_eq(out.iss, "https://idp.example");
    cr_assert_str_eq(out.aud, "promptd-api");
    cr_assert_str_eq(out.alg, "RS256");
    cr_assert_eq(out.exp, NOW + 300);

    /* the same checks of time, issuer and audience apply */
    cr_assert_eq(verify(&cfg, t, NOW + 300 + 60), PROMPTD_JWT_EXPIRED);
    cr_assert_eq(verify(&cfg, t, NOW - 61), PROMPTD_JWT_NOT_YET_VALID);
    cfg.rs256_issuer = "https://idp.other";
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_WRONG_ISSUER);
    cfg = rs_cfg(&k);
    cfg.rs256_audience = "promptd";
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_WRONG_AUDIENCE);
    free(t);

    /* a token signed by the openssl command (no typ header) verifies too */
    cfg = rs_cfg(&k);
    snprintf(p, sizeof p, "{\"iss\":\"https://idp.example\",\"aud\":\"promptd-api\",\"sub\":\"s\",\"exp\":%lld}",
             NOW + 300);
    t = rs_token_openssl(&k, k.priv_a, "{\"alg\":\"RS256\",\"kid\":\"key-1\"}", p);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_OK);
    free(t);
    /* typ "at+jwt" (RFC 9068) is a known limit of libjwt 1.10 */
    t = rs_token_openssl(&k, k.priv_a, "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}", p);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_UNSUPPORTED);
    free(t);
    keys_free(&k);
}

Test(jwt_rs256, other_key_and_tampering_rejected)
{
    keys k;
    keys_make(&k);
    promptd_jwt_config cfg = rs_cfg(&k);
    char p[512];
    snprintf(p, sizeof p, "{\"iss\":\"https://idp.example\",\"aud\":\"promptd-api\",\"sub\":\"s\",\"exp\":%lld}",
             NOW + 300);

    char *t = rs_token(k.priv_pem_b, p); /* a different key pair */
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_BAD_SIGNATURE);
    free(t);

    t = rs_token(k.priv_pem_a, p);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_OK);
    char *s = strrchr(t, '.') + 1;
    s[10] = s[10] == 'A' ? 'B' : 'A';
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_BAD_SIGNATURE);
    strrchr(t, '.')[1] = '\0';
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_BAD_SIGNATURE);
    free(t);

    /* payload swapped under a valid signature */
    char *good = rs_token(k.priv_pem_a, p);
    char p2[512], b2[1024], forged[4096];
    snprintf(p2, sizeof p2, "{\"iss\":\"https://idp.example\",\"aud\":\"promptd-api\",\"sub\":\"root\",\"exp\":%lld}",
             NOW + 300);
    b64url(p2, strlen(p2), b2, sizeof b2);
    char *d1 = strchr(good, '.'), *d2 = strchr(d1 + 1, '.');
    snprintf(forged, sizeof forged, "%.*s.%s%s", (int)(d1 - good), good, b2, d2);
    cr_assert_eq(verify(&cfg, forged, NOW), PROMPTD_JWT_BAD_SIGNATURE);
    free(good);
    keys_free(&k);
}

Test(jwt_rs256, algorithm_confusion)
{
    keys k;
    keys_make(&k);
    promptd_jwt_config cfg = rs_cfg(&k); /* RS256 only */
    char p[512];
    snprintf(p, sizeof p, "{\"iss\":\"https://idp.example\",\"aud\":\"promptd-api\",\"sub\":\"s\",\"exp\":%lld}",
             NOW + 300);

    /* the classic attack: HS256 keyed with the (public) PEM text */
    char *t = craft_hs(HS_HEADER, p, k.pem_a, strlen(k.pem_a));
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_ALG_NOT_ALLOWED);
    free(t);
    /* ... and an honest HS256 token: not enabled here */
    char *hs = issue(0, NOW);
    cr_assert_eq(verify(&cfg, hs, NOW), PROMPTD_JWT_ALG_NOT_ALLOWED);
    /* alg none with RS256 configured */
    t = craft_hs("{\"alg\":\"none\"}", p, NULL, 0);
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_ALG_NOT_ALLOWED);
    free(t);

    /* both kinds enabled: each verifies with its own key and issuer only */
    cfg.hs256_secret = SECRET;
    cfg.hs256_secret_len = SECRET_LEN;
    cr_assert_eq(verify(&cfg, hs, NOW), PROMPTD_JWT_OK);
    t = craft_hs(HS_HEADER, p, k.pem_a, strlen(k.pem_a));
    cr_assert_eq(verify(&cfg, t, NOW), PROMPTD_JWT_BAD_SIGNATURE);
    free(t);
    char *rs = rs_token(k.priv_pem_a, p);
    cr_assert_eq(verify(&cfg, rs, NOW), PROMPTD_JWT_OK);
    free(rs);
    /* an RS256 token carrying promptd's own issuer is still an RS256 token: wrong issuer */
    char p3[512];
    snprintf(p3, sizeof p3, "{\"iss\":\"promptd\",\"aud\":\"promptd\",\"sub\":\"s\",\"exp\":%lld}", NOW + 300);
    rs = rs_token(k.priv_pem_a, p3);
    cr_assert_eq(verify(&cfg, rs, NOW), PROMPTD_JWT_WRONG_ISSUER);
    free(rs);
    free(hs);
    keys_free(&k);
}

Test(jwt_rs256, config_refuses_private_and_non_rsa_keys)
{
    keys k;
    keys_make(&k);
    promptd_jwt_config cfg = rs_cfg(&k);
    cr_assert_eq(promptd_jwt_config_check(&cfg), PROMPTD_JWT_OK);

    cfg.rs256_public_key_pem = k.priv_pem_a; /* the private key by mistake */
    cr_assert_eq(promptd_jwt_config_check(&cfg), PROMPTD_JWT_INVALID_ARG);

    char ec_priv[160], ec_pub[160], cmd[1024];
    snprintf(ec_priv, sizeof ec_priv, "%s/ec.key", k.dir);
    snprintf(ec_pub, sizeof ec_pub, "%s/ec.pub", k.dir);
    snprintf(cmd, sizeof cmd,
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s 2>/dev/null && "
             "openssl pkey -in %s -pubout -out %s 2>/dev/null",
             ec_priv, ec_priv, ec_pub);
    run(cmd);
    char *ec = slurp(ec_pub);
    cfg.rs256_public_key_pem = ec;
    cr_assert_eq(promptd_jwt_config_check(&cfg), PROMPTD_JWT_INVALID_ARG);
    free(ec);

    cfg = rs_cfg(&k);
    cfg.rs256_issuer = NULL;
    cr_assert_eq(promptd_jwt_config_check(&cfg), PROMPTD_JWT_INVALID_ARG);
    cfg = rs_cfg(&k);
    cfg.rs256_audience = "";
    cr_assert_eq(promptd_jwt_config_check(&cfg), PROMPTD_JWT_INVALID_ARG);
    keys_free(&k);
}
