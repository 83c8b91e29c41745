/*
 * keys.c — API key generation and verification (see keys.h).
 */
#include "auth/keys.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

void auth_key_generate(char out[AUTH_KEY_LEN + 1])
{
    size_t p = strlen(AUTH_KEY_PREFIX);
    memcpy(out, AUTH_KEY_PREFIX, p);
    for (; p < AUTH_KEY_LEN; p++)
        out[p] = base62[randombytes_uniform(62)];
    out[AUTH_KEY_LEN] = '\0';
}

void auth_key_hash(const char *key, unsigned char hash[STORE_KEY_HASH_LEN])
{
    crypto_generichash(hash, STORE_KEY_HASH_LEN, (const unsigned char *)key, strlen(key), NULL, 0);
}

void auth_key_prefix(const char *key, char prefix[STORE_KEY_PREFIX_LEN + 1])
{
    size_t n = strnlen(key, STORE_KEY_PREFIX_LEN);
    memcpy(prefix, key, n);
    prefix[n] = '\0';
}

int auth_key_acceptable(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n < AUTH_KEY_MIN_LEN || n > AUTH_KEY_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (key[i] <= ' ' || key[i] > '~')
            return 0;
    return 1;
}

int auth_key_verify(store_t *store, const char *presented, auth_principal *out)
{
    if (!auth_key_acceptable(presented))
        return AUTH_INVALID;
    char prefix[STORE_KEY_PREFIX_LEN + 1];
    unsigned char hash[STORE_KEY_HASH_LEN];
    store_key k;
    auth_key_prefix(presented, prefix);
    /* An unknown prefix does the same work as a known one with a wrong
     * secret: the store reads a decoy row, and the hash is computed and
     * compared either way, so the answer's timing does not tell a guesser
     * which prefixes exist. */
    int rc = store_key_find(store, prefix, &k);
    if (rc != STORE_OK && rc != STORE_NOTFOUND)
        return AUTH_ERROR;
    auth_key_hash(presented, hash);
    int same = sodium_memcmp(hash, k.hash, STORE_KEY_HASH_LEN) == 0;
    if (rc == STORE_NOTFOUND || !same)
        return AUTH_INVALID;
    if (k.revoked_at)
        return AUTH_REVOKED;
    memset(out, 0, sizeof *out);
    memcpy(out->org_id, k.org_id, sizeof out->org_id);
    memcpy(out->user_id, k.user_id, sizeof out->user_id);
    memcpy(out->key_id, k.id, sizeof out->key_id);
    snprintf(out->role, sizeof out->role, "%s", k.role);
    out->is_admin = strcmp(k.role, "admin") == 0;
    snprintf(out->email, sizeof out->email, "%s", k.user_email);
    snprintf(out->org_name, sizeof out->org_name, "%s", k.org_name);
    memcpy(out->key_prefix, k.prefix, sizeof out->key_prefix);
    out->key_rate_limit = k.rate_limit_per_minute;
    return AUTH_OK;
}
