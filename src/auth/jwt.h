/*
 * jwt.h — bearer tokens: verifying JWTs (HS256, RS256) and issuing HS256 ones.
 *
 * `Authorization: Bearer <JWT>` identifies a user. Two kinds verify:
 *   - HS256 tokens promptd issues itself (`promptd tokens create`), signed
 *     with a secret of at least PROMPTD_JWT_MIN_SECRET bytes;
 *   - RS256 tokens from an external identity provider, checked against its
 *     RSA public key (PEM, SubjectPublicKeyInfo: "BEGIN PUBLIC KEY").
 * Either kind is accepted only if the configuration holds its key; the alg a
 * token names must be one of those, and it is verified with that kind's key
 * only (an RSA public key is never used as an HMAC secret). `alg: none`, any
 * other alg, a `crit` header, tokens over PROMPTD_JWT_MAX_LEN bytes and
 * duplicate JSON members are rejected. `iss`, `aud` (a string or an array),
 * `exp` and `sub` are required; `exp` and `nbf` are checked with a leeway.
 * HMAC signatures are compared in constant time (libsodium); RSA goes
 * through libjwt (OpenSSL). Nothing here logs, and no token, secret or key
 * is ever copied into an error message.
 *
 * Known limit (libjwt 1.10): a `typ` header other than "JWT" (for example
 * RFC 9068's "at+jwt") cannot be verified and answers PROMPTD_JWT_UNSUPPORTED;
 * configure the identity provider to send typ "JWT" or none.
 *
 * Names carry a promptd_ / PROMPTD_ prefix to stay clear of libjwt's jwt_*.
 * Every function is thread-safe and keeps no state between calls.
 */
#ifndef PROMPTD_AUTH_JWT_H
#define PROMPTD_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

#define PROMPTD_JWT_MAX_LEN 8192               /* longest token accepted, bytes */
#define PROMPTD_JWT_MIN_SECRET 32              /* shortest HS256 secret, bytes */
#define PROMPTD_JWT_DEFAULT_ISSUER "promptd"   /* iss of issued tokens, expected of HS256 */
#define PROMPTD_JWT_DEFAULT_AUDIENCE "promptd" /* aud of issued tokens, expected of HS256 */
#define PROMPTD_JWT_DEFAULT_LIFETIME_S 86400L  /* issued tokens: 24 h */
#define PROMPTD_JWT_MAX_LIFETIME_S 31622400L   /* issued tokens: at most 366 days */
#define PROMPTD_JWT_DEFAULT_LEEWAY_S 60L       /* recommended clock-skew allowance */
#define PROMPTD_JWT_MAX_LEEWAY_S 600L

enum promptd_jwt_rc {
    PROMPTD_JWT_OK = 0,
    PROMPTD_JWT_MALFORMED,       /* not header.payload.signature, bad base64url or JSON, duplicate
                                    member, too long, or a claim of the wrong type or too long */
    PROMPTD_JWT_BAD_SIGNATURE,   /* signature does not verify with the configured key */
    PROMPTD_JWT_EXPIRED,         /* now >= exp + leeway */
    PROMPTD_JWT_NOT_YET_VALID,   /* now + leeway < nbf */
    PROMPTD_JWT_WRONG_ISSUER,    /* iss is not the expected issuer */
    PROMPTD_JWT_WRONG_AUDIENCE,  /* aud does not name the expected audience */
    PROMPTD_JWT_ALG_NOT_ALLOWED, /* alg none, unknown, or not enabled by the configuration */
    PROMPTD_JWT_MISSING_CLAIM,   /* sub, iss, aud or exp absent */
    PROMPTD_JWT_UNSUPPORTED,     /* crit header, or typ other than "JWT" */
    PROMPTD_JWT_INVALID_ARG,     /* unusable configuration or arguments (see each function) */
    PROMPTD_JWT_ERROR            /* out of memory, or libjwt failed */
};

/*
 * What verification accepts. Borrowed pointers, read during the call only.
 * Zero-initialise and set what is used; at least one key must be set.
 */
typedef struct promptd_jwt_config {
    /* HS256, promptd's own tokens: NULL = not accepted. >= PROMPTD_JWT_MIN_SECRET bytes. */
    const unsigned char *hs256_secret;
    size_t hs256_secret_len;
    /* The secret before a rotation, accepted but never used to sign (NULL = none): tokens
     * issued before the rotation stay good until they expire. Same length rule. */
    const unsigned char *hs256_previous_secret;
    size_t hs256_previous_secret_len;
    const char *hs256_issuer;   /* NULL = PROMPTD_JWT_DEFAULT_ISSUER */
    const char *hs256_audience; /* NULL = PROMPTD_JWT_DEFAULT_AUDIENCE */
    /* RS256, an identity provider's tokens: the PEM text (not a path) of its RSA public
     * key, NUL-terminated, <= 16 KiB; NULL = not accepted. Issuer and audience are
     * then required: the provider's own values. */
    const char *rs256_public_key_pem;
    const char *rs256_issuer;
    const char *rs256_audience;
    long leeway_s; /* 0..PROMPTD_JWT_MAX_LEEWAY_S; PROMPTD_JWT_DEFAULT_LEEWAY_S recommended */
} promptd_jwt_config;

/* A token's claims. Strings are NUL-terminated; "" when absent. */
typedef struct promptd_jwt_claims {
    char sub[128]; /* subject: promptd user id (HS256) or the provider's subject (RS256) */
    char email[256];
    int email_verified; /* 1: "email_verified" is true (or the string "true", as some providers send) */
    char org[128]; /* organization id, optional for RS256 */
    char role[64]; /* "admin" | "member" in promptd's tokens; the provider's value as is */
    char iss[256];
    char aud[256];           /* verify: the configured audience it matched; issue: "" = default */
    long long exp, nbf, iat; /* seconds since the epoch; nbf and iat 0 when absent */
    char alg[8];             /* "HS256" or "RS256" */
} promptd_jwt_claims;

/*
 * Check a configuration once, at start-up: PROMPTD_JWT_OK, or
 * PROMPTD_JWT_INVALID_ARG when no key is set, the secret is shorter than
 * PROMPTD_JWT_MIN_SECRET, the PEM is not an RSA "PUBLIC KEY" (a private key
 * is refused), RS256 lacks its issuer or audience, or the leeway is out of
 * range. promptd_jwt_verify() runs the same checks.
 */
int promptd_jwt_config_check(const promptd_jwt_config *cfg);

/*
 * Verify `token` (without "Bearer ") at now_s (seconds since the epoch; -1 =
 * the real clock). On PROMPTD_JWT_OK fills *out; on any other code *out is
 * zeroed. Claims longer than their field are PROMPTD_JWT_MALFORMED, never
 * truncated.
 */
int promptd_jwt_verify(const promptd_jwt_config *cfg, const char *token, int64_t now_s, promptd_jwt_claims *out);

/*
 * Issue an HS256 token for claims->sub (required) with claims->role
 * ("admin" or "member", required), claims->email and claims->org (optional),
 * iss = claims->iss or PROMPTD_JWT_DEFAULT_ISSUER, aud = claims->aud or
 * PROMPTD_JWT_DEFAULT_AUDIENCE, iat = nbf = now_s (-1 = the real clock),
 * exp = now_s + lifetime_s (0 = PROMPTD_JWT_DEFAULT_LIFETIME_S, at most
 * PROMPTD_JWT_MAX_LIFETIME_S); claims->exp/nbf/iat/alg are ignored.
 * On PROMPTD_JWT_OK *token_out is a malloc'd string the caller frees with
 * free(); otherwise it is NULL. PROMPTD_JWT_INVALID_ARG for a short secret
 * or missing/invalid claims.
 */
int promptd_jwt_issue_hs256(const unsigned char *secret, size_t secret_len, const promptd_jwt_claims *claims,
                            long lifetime_s, int64_t now_s, char **token_out);

/* Text for a PROMPTD_JWT_* code (static storage; never mentions the token). */
const char *promptd_jwt_strerror(int rc);

/*
 * 1 if s has the shape of a compact JWS: three base64url segments joined by
 * dots, the first two non-empty (the third may be empty, as in alg none),
 * at most PROMPTD_JWT_MAX_LEN bytes; 0 otherwise. Tells a bearer token from
 * an API key ("pk_live_...", which has no dot). Says nothing of validity.
 */
int promptd_jwt_looks_like(const char *s);

#endif
