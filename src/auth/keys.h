/*
 * keys.h — API keys: generation, hashing, verification.
 *
 * A generated key is "pk_live_" followed by 40 base62 characters from
 * libsodium's CSPRNG (~238 bits). The store keeps only the first
 * STORE_KEY_PREFIX_LEN characters in clear (to find the row and to show the
 * key in listings) and a BLAKE2b-256 hash of the whole key; verification
 * compares hashes in constant time. A fast hash is right here: keys carry far
 * too much entropy for guessing, unlike passwords. A check does the same work
 * whether the prefix exists or not (the store reads a decoy row on a miss;
 * the hash is always computed and compared), so its time does not tell which
 * prefixes exist (bench/bench_keys.c measures it).
 */
#ifndef PROMPTD_AUTH_KEYS_H
#define PROMPTD_AUTH_KEYS_H

#include <stddef.h>

#include "store/store.h"

#define AUTH_KEY_PREFIX "pk_live_"
#define AUTH_KEY_LEN 48    /* generated keys: 8 + 40 */
#define AUTH_KEY_MIN_LEN 20 /* shortest key accepted (PROMPTD_ADMIN_KEY) */
#define AUTH_KEY_MAX_LEN 256

typedef struct auth_principal {
    store_id org_id, user_id, key_id;
    char role[16];
    int is_admin;
    char email[256];    /* the user's */
    char org_name[128];
    char key_prefix[STORE_KEY_PREFIX_LEN + 1]; /* "" when authenticated by a token alone */
    long key_rate_limit;                        /* the key's own per-minute limit; -1 = default */
} auth_principal;

enum auth_rc { AUTH_OK = 0, AUTH_INVALID = 1, AUTH_REVOKED = 2, AUTH_ERROR = -1 };

/* libsodium must be initialised (sodium_init) before these. */
void auth_key_generate(char out[AUTH_KEY_LEN + 1]);
void auth_key_hash(const char *key, unsigned char hash[STORE_KEY_HASH_LEN]);
/* First STORE_KEY_PREFIX_LEN characters of key (or fewer if shorter). */
void auth_key_prefix(const char *key, char prefix[STORE_KEY_PREFIX_LEN + 1]);
/* 1 if a caller-chosen key is acceptable: AUTH_KEY_MIN_LEN..AUTH_KEY_MAX_LEN printable ASCII, no spaces. */
int auth_key_acceptable(const char *key);
/* Check a presented key against the store; fill *out on AUTH_OK. */
int auth_key_verify(store_t *store, const char *presented, auth_principal *out);

#endif
