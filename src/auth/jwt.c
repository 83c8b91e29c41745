/*
 * jwt.c — JWT verification (HS256, RS256) and HS256 issuing (see jwt.h).
 *
 * Verification never lets the token choose how it is checked:
 *   1. shape: <= 8 KiB, three base64url segments (strict: libsodium rejects
 *      padding, stray characters and non-zero trailing bits);
 *   2. header and payload: JSON objects, duplicate members rejected (so no
 *      two readers can see different claims), no NUL in strings;
 *   3. alg: exactly "HS256" with a secret configured, or exactly "RS256" with
 *      a public key configured; anything else (none, HS512, ES256, HS256 when
 *      only an RSA key is set, ...) is PROMPTD_JWT_ALG_NOT_ALLOWED before any
 *      key is touched; then `crit` and a typ other than "JWT" are refused;
 *   4. signature: HS256 here, HMAC-SHA256 with libsodium and a constant-time
 *      compare of the decoded 32 bytes (not trusting the libjwt build to do
 *      that); RS256 through libjwt's jwt_decode() with the PEM, which it only
 *      ever sees for an RS256 token. libjwt skips verification when given no
 *      key: it is never called without one;
 *   5. claims: iss, aud, exp, nbf (with leeway), then sub and the user fields.
 * Issuing uses libjwt: jwt_new, grants, jwt_set_alg(HS256), jwt_encode_str.
 */
#include "auth/jwt.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PEM_MAX 16384 /* longest public-key PEM accepted, bytes */

enum alg_kind { ALG_HS256, ALG_RS256 };

const char *promptd_jwt_strerror(int rc)
{
    switch (rc) {
    case PROMPTD_JWT_OK: return "ok";
    case PROMPTD_JWT_MALFORMED: return "malformed token";
    case PROMPTD_JWT_BAD_SIGNATURE: return "bad token signature";
    case PROMPTD_JWT_EXPIRED: return "token expired";
    case PROMPTD_JWT_NOT_YET_VALID: return "token not yet valid";
    case PROMPTD_JWT_WRONG_ISSUER: return "wrong token issuer";
    case PROMPTD_JWT_WRONG_AUDIENCE: return "wrong token audience";
    case PROMPTD_JWT_ALG_NOT_ALLOWED: return "token algorithm not allowed";
    case PROMPTD_JWT_MISSING_CLAIM: return "token lacks a required claim";
    case PROMPTD_JWT_UNSUPPORTED: return "unsupported token header";
    case PROMPTD_JWT_INVALID_ARG: return "invalid JWT configuration or argument";
    case PROMPTD_JWT_ERROR: return "JWT internal error";
    default: return "unknown JWT error";
    }
}

/* ---- shape ---- */

static int b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int promptd_jwt_looks_like(const char *s)
{
    size_t seg_len[3] = {0, 0, 0}, n;
    int seg = 0;

    if (!s)
        return 0;
    for (n = 0; s[n]; n++) {
        if (n >= PROMPTD_JWT_MAX_LEN)
            return 0;
        if (s[n] == '.') {
            if (++seg > 2)
                return 0;
        } else if (b64url_char(s[n])) {
            seg_len[seg]++;
        } else {
            return 0;
        }
    }
    return seg == 2 && seg_len[0] > 0 && seg_len[1] > 0;
}

/* Decode one base64url segment holding a JSON object; NULL if it is not one. */
static json_t *segment_json(const char *seg, size_t len)
{
    unsigned char buf[PROMPTD_JWT_MAX_LEN];
    const char *end = NULL;
    size_t n = 0;
    json_t *j;

    if (sodium_base642bin(buf, sizeof buf, seg, len, NULL, &n, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != seg + len)
        return NULL;
    /* no JSON_ALLOW_NUL: "\u0000" in a string is a parse error */
    j = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* ---- configuration ---- */

static int nonempty(const char *s) { return s && *s; }

/* 1 if pem holds an RSA SubjectPublicKeyInfo ("BEGIN PUBLIC KEY" with the
 * rsaEncryption OID) and no private key. */
static int pem_is_rsa_public(const char *pem)
{
    static const char begin[] = "-----BEGIN PUBLIC KEY-----", endm[] = "-----END PUBLIC KEY-----";
    /* 1.2.840.113549.1.1.1 */
    static const unsigned char rsa_oid[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
    unsigned char der[8192];
    const char *b, *e, *stop = NULL;
    size_t dlen = 0;

    if (strnlen(pem, PEM_MAX + 1) > PEM_MAX || strstr(pem, "PRIVATE KEY"))
        return 0;
    b = strstr(pem, begin);
    if (!b)
        return 0;
    b += sizeof begin - 1;
    e = strstr(b, endm);
    if (!e)
        return 0;
    if (sodium_base642bin(der, sizeof der, b, (size_t)(e - b), " \t\r\n", &dlen, &stop,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return 0;
    for (; stop < e; stop++) /* only whitespace may follow the base64 body */
        if (!strchr(" \t\r\n", *stop))
            return 0;
    /* SEQUENCE { SEQUENCE { OID rsaEncryption, NULL }, BIT STRING }: the OID sits in the first bytes */
    return dlen > 32 && der[0] == 0x30 && memmem(der, 32, rsa_oid, sizeof rsa_oid) != NULL;
}

int promptd_jwt_config_check(const promptd_jwt_config *cfg)
{
    if (!cfg || (!cfg->hs256_secret && !cfg->rs256_public_key_pem))
        return PROMPTD_JWT_INVALID_ARG;
    if (cfg->leeway_s < 0 || cfg->leeway_s > PROMPTD_JWT_MAX_LEEWAY_S)
        return PROMPTD_JWT_INVALID_ARG;
    if (cfg->hs256_secret) {
        if (cfg->hs256_secret_len < PROMPTD_JWT_MIN_SECRET || cfg->hs256_secret_len > INT_MAX)
            return PROMPTD_JWT_INVALID_ARG;
        if (cfg->hs256_previous_secret && (cfg->hs256_previous_secret_len < PROMPTD_JWT_MIN_SECRET ||
                                           cfg->hs256_previous_secret_len > INT_MAX))
            return PROMPTD_JWT_INVALID_ARG;
        if ((cfg->hs256_issuer && !*cfg->hs256_issuer) || (cfg->hs256_audience && !*cfg->hs256_audience))
            return PROMPTD_JWT_INVALID_ARG;
    }
    if (cfg->rs256_public_key_pem) {
        if (!nonempty(cfg->rs256_issuer) || !nonempty(cfg->rs256_audience))
            return PROMPTD_JWT_INVALID_ARG;
        if (!pem_is_rsa_public(cfg->rs256_public_key_pem))
            return PROMPTD_JWT_INVALID_ARG;
    }
    return PROMPTD_JWT_OK;
}

/* ---- signatures ---- */

static int verify_hs256(const unsigned char *secret, size_t secret_len, const char *token, size_t signed_len,
                        const char *sig, size_t sig_len)
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES], got[crypto_auth_hmacsha256_BYTES + 3];
    crypto_auth_hmacsha256_state st;
    const char *end = NULL;
    size_t got_len = 0;
    int rc = PROMPTD_JWT_BAD_SIGNATURE;

    sodium_memzero(&st, sizeof st);
    if (sodium_base642bin(got, sizeof got, sig, sig_len, NULL, &got_len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != sig + sig_len || got_len != sizeof mac)
        goto out;
    if (crypto_auth_hmacsha256_init(&st, secret, secret_len) != 0 ||
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)token, signed_len) != 0 ||
        crypto_auth_hmacsha256_final(&st, mac) != 0) {
        rc = PROMPTD_JWT_ERROR;
        goto out;
    }
    if (sodium_memcmp(mac, got, sizeof mac) == 0)
        rc = PROMPTD_JWT_OK;
out:
    sodium_memzero(&st, sizeof st);
    sodium_memzero(mac, sizeof mac);
    return rc;
}

static int verify_rs256(const promptd_jwt_config *cfg, const char *token)
{
    const char *pem = cfg->rs256_public_key_pem;
    jwt_t *j = NULL;
    int e, rc;

    /* the key is never NULL here: libjwt would then skip the signature */
    e = jwt_decode(&j, token, (const unsigned char *)pem, (int)strlen(pem));
    if (e == ENOMEM)
        rc = PROMPTD_JWT_ERROR;
    else if (e != 0 || !j)
        rc = PROMPTD_JWT_BAD_SIGNATURE;
    else if (jwt_get_alg(j) != JWT_ALG_RS256)
        rc = PROMPTD_JWT_ALG_NOT_ALLOWED;
    else
        rc = PROMPTD_JWT_OK;
    if (j)
        jwt_free(j);
    return rc;
}

/* ---- claims ---- */

/* A string claim into dst[cap]: absent or null is "" (PROMPTD_JWT_MISSING_CLAIM
 * if required, as is ""); another type or too long is MALFORMED. */
static int claim_str(json_t *obj, const char *name, char *dst, size_t cap, int required)
{
    json_t *v = json_object_get(obj, name);
    size_t n;

    dst[0] = '\0';
    if (!v || json_is_null(v))
        return required ? PROMPTD_JWT_MISSING_CLAIM : PROMPTD_JWT_OK;
    if (!json_is_string(v))
        return PROMPTD_JWT_MALFORMED;
    n = json_string_length(v);
    if (n >= cap || memchr(json_string_value(v), '\0', n))
        return PROMPTD_JWT_MALFORMED;
    if (required && n == 0)
        return PROMPTD_JWT_MISSING_CLAIM;
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
    return PROMPTD_JWT_OK;
}

/* A NumericDate claim (integer or real seconds); absent is 0. */
static int claim_time(json_t *obj, const char *name, long long *dst, int required)
{
    json_t *v = json_object_get(obj, name);

    *dst = 0;
    if (!v)
        return required ? PROMPTD_JWT_MISSING_CLAIM : PROMPTD_JWT_OK;
    if (json_is_integer(v)) {
        *dst = json_integer_value(v);
        return PROMPTD_JWT_OK;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        long long t;
        if (!(d > -1e15 && d < 1e15)) /* also false for NaN */
            return PROMPTD_JWT_MALFORMED;
        t = (long long)d;
        if ((double)t > d) /* floor */
            t--;
        *dst = t;
        return PROMPTD_JWT_OK;
    }
    return PROMPTD_JWT_MALFORMED;
}

/* OpenID Connect's email_verified: a boolean; absent or null is false. Some
 * providers (Amazon Cognito) send the strings "true" and "false". */
static int claim_verified(json_t *obj, const char *name, int *dst)
{
    json_t *v = json_object_get(obj, name);

    *dst = 0;
    if (!v || json_is_null(v) || json_is_false(v))
        return PROMPTD_JWT_OK;
    if (json_is_true(v)) {
        *dst = 1;
        return PROMPTD_JWT_OK;
    }
    if (json_is_string(v)) {
        if (!strcmp(json_string_value(v), "true"))
            *dst = 1;
        else if (strcmp(json_string_value(v), "false") != 0)
            return PROMPTD_JWT_MALFORMED;
        return PROMPTD_JWT_OK;
    }
    return PROMPTD_JWT_MALFORMED;
}

static int json_str_eq(json_t *v, const char *want)
{
    size_t n = json_string_length(v);
    return strlen(want) == n && memcmp(json_string_value(v), want, n) == 0;
}

/* aud is a string or an array of strings; one must equal want. */
static int check_aud(json_t *payload, const char *want)
{
    json_t *v = json_object_get(payload, "aud"), *item;
    size_t i;
    int found = 0;

    if (!v || json_is_null(v))
        return PROMPTD_JWT_MISSING_CLAIM;
    if (json_is_string(v))
        return json_str_eq(v, want) ? PROMPTD_JWT_OK : PROMPTD_JWT_WRONG_AUDIENCE;
    if (!json_is_array(v))
        return PROMPTD_JWT_MALFORMED;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return PROMPTD_JWT_MALFORMED;
        found |= json_str_eq(item, want);
    }
    return found ? PROMPTD_JWT_OK : PROMPTD_JWT_WRONG_AUDIENCE;
}

static int read_claims(json_t *payload, enum alg_kind kind, const promptd_jwt_config *cfg, long long now,
                       promptd_jwt_claims *out)
{
    const char *want_iss, *want_aud;
    long long leeway = cfg->leeway_s;
    int rc;

    if (kind == ALG_HS256) {
        want_iss = cfg->hs256_issuer ? cfg->hs256_issuer : PROMPTD_JWT_DEFAULT_ISSUER;
        want_aud = cfg->hs256_audience ? cfg->hs256_audience : PROMPTD_JWT_DEFAULT_AUDIENCE;
    } else {
        want_iss = cfg->rs256_issuer;
        want_aud = cfg->rs256_audience;
    }

    if ((rc = claim_str(payload, "iss", out->iss, sizeof out->iss, 1)) != PROMPTD_JWT_OK)
        return rc;
    if (strcmp(out->iss, want_iss) != 0)
        return PROMPTD_JWT_WRONG_ISSUER;
    if ((rc = check_aud(payload, want_aud)) != PROMPTD_JWT_OK)
        return rc;
    if (strlen(want_aud) >= sizeof out->aud)
        return PROMPTD_JWT_INVALID_ARG;
    memcpy(out->aud, want_aud, strlen(want_aud) + 1);

    if ((rc = claim_time(payload, "exp", &out->exp, 1)) != PROMPTD_JWT_OK ||
        (rc = claim_time(payload, "nbf", &out->nbf, 0)) != PROMPTD_JWT_OK ||
        (rc = claim_time(payload, "iat", &out->iat, 0)) != PROMPTD_JWT_OK)
        return rc;
    /* written so that no sum can overflow: now and leeway are small */
    if (now - leeway >= out->exp)
        return PROMPTD_JWT_EXPIRED;
    if (json_object_get(payload, "nbf") && now + leeway < out->nbf)
        return PROMPTD_JWT_NOT_YET_VALID;

    if ((rc = claim_str(payload, "sub", out->sub, sizeof out->sub, 1)) != PROMPTD_JWT_OK ||
        (rc = claim_str(payload, "email", out->email, sizeof out->email, 0)) != PROMPTD_JWT_OK ||
        (rc = claim_verified(payload, "email_verified", &out->email_verified)) != PROMPTD_JWT_OK ||
        (rc = claim_str(payload, "org", out->org, sizeof out->org, 0)) != PROMPTD_JWT_OK ||
        (rc = claim_str(payload, "role", out->role, sizeof out->role, 0)) != PROMPTD_JWT_OK)
        return rc;
    memcpy(out->alg, kind == ALG_HS256 ? "HS256" : "RS256", 6);
    return PROMPTD_JWT_OK;
}

/* ---- verify ---- */

int promptd_jwt_verify(const promptd_jwt_config *cfg, const char *token, int64_t now_s, promptd_jwt_claims *out)
{
    json_t *header = NULL, *payload = NULL, *typ;
    const char *d1, *d2, *sig;
    enum alg_kind kind;
    int rc;

    if (!out)
        return PROMPTD_JWT_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if ((rc = promptd_jwt_config_check(cfg)) != PROMPTD_JWT_OK)
        goto out;
    rc = PROMPTD_JWT_INVALID_ARG;
    if (now_s == -1)
        now_s = (int64_t)time(NULL);
    if (!token || now_s < 0 || now_s > ((int64_t)1 << 40))
        goto out;
    rc = PROMPTD_JWT_ERROR;
    if (sodium_init() < 0)
        goto out;

    /* 1. shape (looks_like also bounds the length) */
    rc = PROMPTD_JWT_MALFORMED;
    if (!promptd_jwt_looks_like(token))
        goto out;
    d1 = strchr(token, '.');
    d2 = strchr(d1 + 1, '.');
    sig = d2 + 1;

    /* 2. header and payload */
    header = segment_json(token, (size_t)(d1 - token));
    payload = segment_json(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!header || !payload || !json_is_string(json_object_get(header, "alg")))
        goto out;

    /* 3. the alg must be one this configuration enables, then no header we do not understand */
    rc = PROMPTD_JWT_ALG_NOT_ALLOWED;
    if (json_str_eq(json_object_get(header, "alg"), "HS256") && cfg->hs256_secret)
        kind = ALG_HS256;
    else if (json_str_eq(json_object_get(header, "alg"), "RS256") && cfg->rs256_public_key_pem)
        kind = ALG_RS256;
    else
        goto out;
    rc = PROMPTD_JWT_UNSUPPORTED;
    typ = json_object_get(header, "typ");
    if (json_object_get(header, "crit") ||
        (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0)))
        goto out;

    /* 4. signature, with the key of that kind only */
    rc = PROMPTD_JWT_BAD_SIGNATURE;
    if (*sig == '\0')
        goto out;
    if (kind == ALG_HS256) {
        rc = verify_hs256(cfg->hs256_secret, cfg->hs256_secret_len, token, (size_t)(d2 - token), sig, strlen(sig));
        /* during a rotation, tokens signed with the secret before it are still good */
        if (rc == PROMPTD_JWT_BAD_SIGNATURE && cfg->hs256_previous_secret)
            rc = verify_hs256(cfg->hs256_previous_secret, cfg->hs256_previous_secret_len, token,
                              (size_t)(d2 - token), sig, strlen(sig));
    } else {
        rc = verify_rs256(cfg, token);
    }
    if (rc != PROMPTD_JWT_OK)
        goto out;

    /* 5. claims */
    rc = read_claims(payload, kind, cfg, (long long)now_s, out);
out:
    json_decref(header);
    json_decref(payload);
    if (rc != PROMPTD_JWT_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- issue ---- */

/* 1 if the fixed-size field holds a NUL-terminated string */
#define FIELD_OK(f) (memchr((f), '\0', sizeof(f)) != NULL)

int promptd_jwt_issue_hs256(const unsigned char *secret, size_t secret_len, const promptd_jwt_claims *claims,
                            long lifetime_s, int64_t now_s, char **token_out)
{
    const char *iss, *aud;
    jwt_t *j = NULL;
    char *tok = NULL;
    int rc = PROMPTD_JWT_INVALID_ARG;

    if (!token_out)
        return PROMPTD_JWT_INVALID_ARG;
    *token_out = NULL;
    if (!secret || secret_len < PROMPTD_JWT_MIN_SECRET || secret_len > INT_MAX || !claims)
        goto out;
    if (!FIELD_OK(claims->sub) || !FIELD_OK(claims->email) || !FIELD_OK(claims->org) || !FIELD_OK(claims->role) ||
        !FIELD_OK(claims->iss) || !FIELD_OK(claims->aud))
        goto out;
    if (!claims->sub[0] || (strcmp(claims->role, "admin") != 0 && strcmp(claims->role, "member") != 0))
        goto out;
    if (lifetime_s == 0)
        lifetime_s = PROMPTD_JWT_DEFAULT_LIFETIME_S;
    if (lifetime_s < 0 || lifetime_s > PROMPTD_JWT_MAX_LIFETIME_S)
        goto out;
    if (now_s == -1)
        now_s = (int64_t)time(NULL);
    if (now_s < 0 || now_s > ((int64_t)1 << 40))
        goto out;
    iss = claims->iss[0] ? claims->iss : PROMPTD_JWT_DEFAULT_ISSUER;
    aud = claims->aud[0] ? claims->aud : PROMPTD_JWT_DEFAULT_AUDIENCE;

    rc = PROMPTD_JWT_ERROR;
    if (jwt_new(&j) != 0)
        goto out;
    if (jwt_add_grant(j, "iss", iss) != 0 || jwt_add_grant(j, "sub", claims->sub) != 0 ||
        jwt_add_grant(j, "aud", aud) != 0 || jwt_add_grant(j, "role", claims->role) != 0 ||
        (claims->email[0] && jwt_add_grant(j, "email", claims->email) != 0) ||
        (claims->org[0] && jwt_add_grant(j, "org", claims->org) != 0) ||
        jwt_add_grant_int(j, "iat", (long)now_s) != 0 || jwt_add_grant_int(j, "nbf", (long)now_s) != 0 ||
        jwt_add_grant_int(j, "exp", (long)(now_s + lifetime_s)) != 0)
        goto out;
    /* libjwt copies the key and scrubs its copy in jwt_free() */
    if (jwt_set_alg(j, JWT_ALG_HS256, secret, (int)secret_len) != 0)
        goto out;
    tok = jwt_encode_str(j);
    if (!tok)
        goto out;
    *token_out = tok;
    rc = PROMPTD_JWT_OK;
out:
    if (j)
        jwt_free(j);
    return rc;
}
