/*
 * test_keys.c — auth/keys: generated key format, prefix, hash, the rules for
 * caller-chosen keys, and verification against a real store (valid, wrong,
 * unknown, revoked), and that an unknown prefix costs the same work as a
 * known one: the store reads a decoy row and the hash is computed and
 * compared either way (the time itself is measured by bench/bench_keys.c).
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dlfcn.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "auth/keys.h"
#include "core/log.h"
#include "store/store.h"
#include "support/harness.h"

/* Counting stand-ins for the two libsodium calls a key check makes: this
 * program's definitions take the place of the library's for the code linked
 * into it (auth/keys.o), and forward to the library's (RTLD_NEXT). */
static int counting;
static int hashes, compares;
static unsigned char compared_with[STORE_KEY_HASH_LEN];

int crypto_generichash(unsigned char *out, size_t outlen, const unsigned char *in, unsigned long long inlen,
                       const unsigned char *key, size_t keylen)
{
    int (*real)(unsigned char *, size_t, const unsigned char *, unsigned long long, const unsigned char *, size_t) =
        (int (*)(unsigned char *, size_t, const unsigned char *, unsigned long long, const unsigned char *,
                 size_t))dlsym(RTLD_NEXT, "crypto_generichash");
    if (!real)
        abort();
    if (counting)
        hashes++;
    return real(out, outlen, in, inlen, key, keylen);
}

int sodium_memcmp(const void *const b1, const void *const b2, size_t len)
{
    int (*real)(const void *, const void *, size_t) =
        (int (*)(const void *, const void *, size_t))dlsym(RTLD_NEXT, "sodium_memcmp");
    if (!real)
        abort();
    if (counting) {
        compares++;
        if (len == STORE_KEY_HASH_LEN)
            memcpy(compared_with, b2, len);
    }
    return real(b1, b2, len);
}

static void setup(void) { cr_assert_geq(sodium_init(), 0); }

TestSuite(keys, .init = setup);

Test(keys, generated_format)
{
    char a[AUTH_KEY_LEN + 1], b[AUTH_KEY_LEN + 1];
    auth_key_generate(a);
    auth_key_generate(b);
    cr_assert_eq(strlen(a), AUTH_KEY_LEN);
    cr_assert_eq(AUTH_KEY_LEN, 48);
    cr_assert(strncmp(a, "pk_live_", 8) == 0, "%s", a);
    cr_assert(strncmp(a, AUTH_KEY_PREFIX, strlen(AUTH_KEY_PREFIX)) == 0);
    for (size_t i = 8; i < AUTH_KEY_LEN; i++)
        cr_assert(isalnum((unsigned char)a[i]), "non-base62 character in %s", a);
    cr_assert_str_neq(a, b);
    cr_assert(auth_key_acceptable(a), "a generated key is not acceptable: %s", a);
}

Test(keys, generated_keys_use_the_whole_alphabet)
{
    int seen[128] = {0};
    for (int n = 0; n < 200; n++) {
        char k[AUTH_KEY_LEN + 1];
        auth_key_generate(k);
        for (size_t i = 8; i < AUTH_KEY_LEN; i++)
            seen[(unsigned char)k[i]] = 1;
    }
    int distinct = 0;
    for (int c = 0; c < 128; c++)
        distinct += seen[c];
    cr_assert_eq(distinct, 62, "8000 random characters used only %d of 62 symbols", distinct);
}

Test(keys, prefixes_of_generated_keys_differ)
{
    /* the prefix is the lookup key: 8 random characters after pk_live_ */
    char p1[STORE_KEY_PREFIX_LEN + 1], p2[STORE_KEY_PREFIX_LEN + 1], k[AUTH_KEY_LEN + 1];
    auth_key_generate(k);
    auth_key_prefix(k, p1);
    auth_key_generate(k);
    auth_key_prefix(k, p2);
    cr_assert_str_neq(p1, p2);
}

Test(keys, prefix)
{
    char p[STORE_KEY_PREFIX_LEN + 1];
    auth_key_prefix("pk_live_ABCDEFGHijklmnop0123456789", p);
    cr_assert_str_eq(p, "pk_live_ABCDEFGH");
    cr_assert_eq(strlen(p), STORE_KEY_PREFIX_LEN);
    auth_key_prefix("short", p);
    cr_assert_str_eq(p, "short");
    auth_key_prefix("", p);
    cr_assert_str_eq(p, "");
    auth_key_prefix("exactly16chars!!", p);
    cr_assert_str_eq(p, "exactly16chars!!");
}

Test(keys, hash_is_stable_and_distinct)
{
    unsigned char h1[STORE_KEY_HASH_LEN], h2[STORE_KEY_HASH_LEN], h3[STORE_KEY_HASH_LEN], zero[STORE_KEY_HASH_LEN];
    memset(zero, 0, sizeof zero);
    auth_key_hash("pk_live_same_key_0123456789", h1);
    auth_key_hash("pk_live_same_key_0123456789", h2);
    auth_key_hash("pk_live_same_key_0123456788", h3);
    cr_assert_eq(memcmp(h1, h2, sizeof h1), 0);
    cr_assert_neq(memcmp(h1, h3, sizeof h1), 0);
    cr_assert_neq(memcmp(h1, zero, sizeof h1), 0);
    /* the whole key counts, not only its prefix */
    auth_key_hash("pk_live_same_key_0123456789X", h3);
    cr_assert_neq(memcmp(h1, h3, sizeof h1), 0);
    /* and it is not the key itself */
    cr_assert_null(memmem(h1, sizeof h1, "pk_live_", 8));
}

Test(keys, acceptable_rules)
{
    char k[300];
    memset(k, 'a', sizeof k);
    k[19] = '\0';
    cr_assert_not(auth_key_acceptable(k), "19 characters");
    k[19] = 'a';
    k[20] = '\0';
    cr_assert(auth_key_acceptable(k), "20 characters");
    memset(k, 'a', sizeof k);
    k[256] = '\0';
    cr_assert(auth_key_acceptable(k), "256 characters");
    k[256] = 'a';
    k[257] = '\0';
    cr_assert_not(auth_key_acceptable(k), "257 characters");

    cr_assert(auth_key_acceptable("!#$%&'()*+,-./0123456789:;<=>?@[]^_`{|}~"), "printable punctuation");
    cr_assert_not(auth_key_acceptable("abcdefghij klmnopqrstuvwxyz"), "a space");
    cr_assert_not(auth_key_acceptable("abcdefghij\tklmnopqrstuvwxyz"), "a tab");
    cr_assert_not(auth_key_acceptable("abcdefghijklmnopqrstuvwxyz\n"), "a newline");
    cr_assert_not(auth_key_acceptable("abcdefghij\x7fklmnopqrstuvwxyz"), "DEL");
    cr_assert_not(auth_key_acceptable("abcdefghij\xc3\xa9klmnopqrstuvwxyz"), "non-ASCII");
    cr_assert_not(auth_key_acceptable(""));
    cr_assert_not(auth_key_acceptable(NULL));
}

/* ---------------------------------------------------------------- verification */

static char DIR_[256];
static store_t *ST;

static void store_setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    log_set_level(LOG_WARN); /* no "applied migration" lines */
    cr_assert_eq(pd_mkdtemp(DIR_, sizeof DIR_), 0);
    char path[320], err[256];
    snprintf(path, sizeof path, "%s/keys.db", DIR_);
    cr_assert_eq(store_open(path, &ST, err, sizeof err), STORE_OK, "%s", err);
}

static void store_teardown(void)
{
    store_close(ST);
    ST = NULL;
    pd_rmrf(DIR_);
}

TestSuite(keys_verify, .init = store_setup, .fini = store_teardown);

/* A new key for org in the store; the key into key, its row into row. */
static void add_key(const char *org, char key[AUTH_KEY_LEN + 1], store_key *row)
{
    char prefix[STORE_KEY_PREFIX_LEN + 1];
    unsigned char hash[STORE_KEY_HASH_LEN];
    auth_key_generate(key);
    auth_key_prefix(key, prefix);
    auth_key_hash(key, hash);
    cr_assert_eq(store_key_create_for_org(ST, org, "test", prefix, hash, row), STORE_OK);
}

Test(keys_verify, valid_key)
{
    char key[AUTH_KEY_LEN + 1];
    store_key row;
    add_key("acme", key, &row);
    auth_principal who;
    memset(&who, 0x55, sizeof who);
    cr_assert_eq(auth_key_verify(ST, key, &who), AUTH_OK);
    cr_assert_str_eq(who.org_id, row.org_id);
    cr_assert_str_eq(who.user_id, row.user_id);
    cr_assert_str_eq(who.key_id, row.id);
    cr_assert_str_eq(who.role, "admin");
    cr_assert_eq(who.is_admin, 1);
}

Test(keys_verify, chosen_key_from_bootstrap)
{
    const char *key = "my-chosen-admin-key-0123456789";
    char prefix[STORE_KEY_PREFIX_LEN + 1];
    unsigned char hash[STORE_KEY_HASH_LEN];
    auth_key_prefix(key, prefix);
    auth_key_hash(key, hash);
    int created = 0;
    cr_assert_eq(store_bootstrap(ST, "default", "admin@localhost", prefix, hash, &created), STORE_OK);
    cr_assert_eq(created, 1);
    auth_principal who;
    cr_assert_eq(auth_key_verify(ST, key, &who), AUTH_OK);
    cr_assert(who.is_admin);
}

Test(keys_verify, wrong_and_unknown_keys)
{
    char key[AUTH_KEY_LEN + 1];
    store_key row;
    add_key("acme", key, &row);
    auth_principal who;
    char wrong[AUTH_KEY_LEN + 1];
    memcpy(wrong, key, sizeof wrong);
    wrong[AUTH_KEY_LEN - 1] = wrong[AUTH_KEY_LEN - 1] == 'a' ? 'b' : 'a'; /* same prefix, other secret */
    cr_assert_eq(auth_key_verify(ST, wrong, &who), AUTH_INVALID);
    char other[AUTH_KEY_LEN + 1];
    auth_key_generate(other); /* never stored */
    cr_assert_eq(auth_key_verify(ST, other, &who), AUTH_INVALID);
    char prefix_only[STORE_KEY_PREFIX_LEN + 1];
    auth_key_prefix(key, prefix_only);
    cr_assert_eq(auth_key_verify(ST, prefix_only, &who), AUTH_INVALID);
    cr_assert_eq(auth_key_verify(ST, "", &who), AUTH_INVALID);
    cr_assert_eq(auth_key_verify(ST, "with spaces inside the key!", &who), AUTH_INVALID);
    char longer[AUTH_KEY_LEN + 2];
    snprintf(longer, sizeof longer, "%sX", key);
    cr_assert_eq(auth_key_verify(ST, longer, &who), AUTH_INVALID);
}

Test(keys_verify, revoked_key)
{
    char a[AUTH_KEY_LEN + 1], b[AUTH_KEY_LEN + 1];
    store_key ra, rb;
    add_key("acme", a, &ra);
    add_key("acme", b, &rb);
    cr_assert_eq(store_key_revoke(ST, ra.prefix), STORE_OK);
    auth_principal who;
    cr_assert_eq(auth_key_verify(ST, a, &who), AUTH_REVOKED);
    cr_assert_eq(auth_key_verify(ST, b, &who), AUTH_OK);
    /* a wrong secret under a revoked prefix is just invalid */
    a[AUTH_KEY_LEN - 1] = a[AUTH_KEY_LEN - 1] == 'a' ? 'b' : 'a';
    cr_assert_eq(auth_key_verify(ST, a, &who), AUTH_INVALID);
}

Test(keys_verify, organizations_are_told_apart)
{
    char a[AUTH_KEY_LEN + 1], b[AUTH_KEY_LEN + 1];
    store_key ra, rb;
    add_key("acme", a, &ra);
    add_key("beta", b, &rb);
    auth_principal wa, wb;
    cr_assert_eq(auth_key_verify(ST, a, &wa), AUTH_OK);
    cr_assert_eq(auth_key_verify(ST, b, &wb), AUTH_OK);
    cr_assert_str_neq(wa.org_id, wb.org_id);
    cr_assert_str_neq(wa.user_id, wb.user_id);
}

/* The work of a check, counted: one hash and one constant-time compare. */
static int verify_counted(const char *key, auth_principal *who)
{
    hashes = compares = 0;
    memset(compared_with, 0, sizeof compared_with);
    counting = 1;
    int rc = auth_key_verify(ST, key, who);
    counting = 0;
    return rc;
}

Test(keys_verify, an_unknown_prefix_does_the_work_of_a_known_one)
{
    char oldest[AUTH_KEY_LEN + 1], key[AUTH_KEY_LEN + 1];
    store_key oldest_row, row;
    add_key("acme", oldest, &oldest_row);
    add_key("beta", key, &row);
    auth_principal who;

    /* a known prefix with a wrong secret: hashed, compared with its row's hash */
    char wrong[AUTH_KEY_LEN + 1];
    memcpy(wrong, key, sizeof wrong);
    wrong[AUTH_KEY_LEN - 1] = wrong[AUTH_KEY_LEN - 1] == 'a' ? 'b' : 'a';
    cr_assert_eq(verify_counted(wrong, &who), AUTH_INVALID);
    cr_assert_eq(hashes, 1, "a known prefix was hashed %d times", hashes);
    cr_assert_eq(compares, 1, "a known prefix was compared %d times", compares);
    cr_assert_eq(memcmp(compared_with, row.hash, STORE_KEY_HASH_LEN), 0, "not compared with its own row's hash");

    /* an unknown prefix: hashed as well, and compared with a decoy row the
     * store read (the oldest key), not with nothing */
    char unknown[AUTH_KEY_LEN + 1];
    auth_key_generate(unknown);
    cr_assert_eq(verify_counted(unknown, &who), AUTH_INVALID);
    cr_assert_eq(hashes, 1, "an unknown prefix was hashed %d times", hashes);
    cr_assert_eq(compares, 1, "an unknown prefix was compared %d times", compares);
    cr_assert_eq(memcmp(compared_with, oldest_row.hash, STORE_KEY_HASH_LEN), 0,
                 "an unknown prefix was not compared with the decoy row's hash");

    /* the decoy never lets anything in: not even the decoy key's own secret
     * behind another prefix */
    char mixed[AUTH_KEY_LEN + 1];
    memcpy(mixed, unknown, STORE_KEY_PREFIX_LEN);
    memcpy(mixed + STORE_KEY_PREFIX_LEN, oldest + STORE_KEY_PREFIX_LEN, sizeof mixed - STORE_KEY_PREFIX_LEN);
    cr_assert_eq(verify_counted(mixed, &who), AUTH_INVALID);

    /* a valid key: the same work */
    cr_assert_eq(verify_counted(key, &who), AUTH_OK);
    cr_assert_eq(hashes, 1);
    cr_assert_eq(compares, 1);
    cr_assert_str_eq(who.key_id, row.id);
}

Test(keys_verify, the_store_answers_a_miss_with_a_decoy_row)
{
    store_key found;
    /* no key at all: nothing to read, a zeroed row */
    memset(&found, 0x55, sizeof found);
    cr_assert_eq(store_key_find(ST, "pk_live_nothere0", &found), STORE_NOTFOUND);
    cr_assert_str_eq(found.id, "");
    char nohash[STORE_KEY_HASH_LEN] = {0};
    cr_assert_eq(memcmp(found.hash, nohash, sizeof nohash), 0);
    /* and an unknown key still costs a hash and a compare */
    auth_principal who;
    char unknown[AUTH_KEY_LEN + 1];
    auth_key_generate(unknown);
    cr_assert_eq(verify_counted(unknown, &who), AUTH_INVALID);
    cr_assert_eq(hashes, 1);
    cr_assert_eq(compares, 1);

    char a[AUTH_KEY_LEN + 1], b[AUTH_KEY_LEN + 1];
    store_key ra, rb;
    add_key("acme", a, &ra);
    add_key("acme", b, &rb);
    /* a hit is the key's own row */
    cr_assert_eq(store_key_find(ST, rb.prefix, &found), STORE_OK);
    cr_assert_str_eq(found.id, rb.id);
    /* a miss is NOTFOUND with the oldest key's row, read in full */
    cr_assert_eq(store_key_find(ST, "pk_live_nothere0", &found), STORE_NOTFOUND);
    cr_assert_str_eq(found.id, ra.id);
    cr_assert_str_eq(found.prefix, ra.prefix);
    cr_assert_eq(memcmp(found.hash, ra.hash, STORE_KEY_HASH_LEN), 0);
    cr_assert_str_eq(found.role, "admin");
    cr_assert_str_eq(found.org_name, "acme");
}
