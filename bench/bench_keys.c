/*
 * bench_keys.c — how long an API key check takes, by what the presented key
 * gets right: does the answer's timing tell a known prefix from an unknown one?
 *
 * A key is "pk_live_" + 40 random characters; the store finds its row by the
 * first 16 characters (the prefix, shown in listings) and compares a hash of
 * the whole key. A check that answers an unknown prefix faster than a known
 * prefix with a wrong secret tells a guesser which prefixes exist. This
 * program fills a fresh SQLite database through the store API (the code
 * promptd runs) with K keys and times auth_key_verify() — the exact call
 * behind every request that sends a key — in-process, for three kinds of key,
 * interleaved so that drift of the machine touches each kind alike:
 *
 *   valid            a stored key (AUTH_OK; for reference)
 *   known prefix     a stored key's prefix with another secret (AUTH_INVALID)
 *   unknown prefix   a freshly generated key no row has (AUTH_INVALID)
 *
 * It prints each kind's median, p10 and p90 and the ratio of the two invalid
 * kinds' medians (1.00 = the same work). Timing is per call with
 * CLOCK_MONOTONIC; the first W rounds are a warm-up and not counted.
 *
 *   bench_keys [--keys K] [--rounds N] [--db PATH]
 * Defaults: 1,000 keys, 20,000 rounds (each round checks one key of each kind).
 * Build and run: make bench-keys (BENCH_ARGS="..." passes arguments).
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/keys.h"
#include "core/log.h"
#include "store/store.h"

#define WARMUP 2000

enum kind { VALID, KNOWN_PREFIX, UNKNOWN_PREFIX, KINDS };
static const char *const KIND_NAME[KINDS] = {"valid", "known prefix", "unknown prefix"};
static const int KIND_WANT[KINDS] = {AUTH_OK, AUTH_INVALID, AUTH_INVALID};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long nkeys = 1000, rounds = 20000;
    const char *db = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--keys") && i + 1 < argc)
            nkeys = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--keys K] [--rounds N] [--db PATH]\n", argv[0]);
            return 2;
        }
    }
    if (nkeys < 1 || rounds < 1) {
        fprintf(stderr, "--keys and --rounds must be at least 1\n");
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "libsodium did not initialise\n");
        return 1;
    }
    log_set_level(LOG_WARN);

    int status = 1;
    char dir[] = "/tmp/bench_keys.XXXXXX", path[600], err[256];
    store_t *st = NULL;
    char(*keys)[AUTH_KEY_LEN + 1] = calloc((size_t)nkeys, sizeof *keys);
    int64_t *t[KINDS] = {0};
    for (int k = 0; k < KINDS; k++)
        t[k] = calloc((size_t)rounds, sizeof(int64_t));
    if (!keys || !t[0] || !t[1] || !t[2]) {
        fprintf(stderr, "out of memory\n");
        goto out;
    }
    if (!db) {
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            goto out;
        }
        snprintf(path, sizeof path, "%s/keys.db", dir);
        db = path;
    }
    if (store_open(db, &st, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "store_open %s: %s\n", db, err);
        goto out;
    }
    for (long i = 0; i < nkeys; i++) {
        char prefix[STORE_KEY_PREFIX_LEN + 1];
        unsigned char hash[STORE_KEY_HASH_LEN];
        store_key row;
        auth_key_generate(keys[i]);
        auth_key_prefix(keys[i], prefix);
        auth_key_hash(keys[i], hash);
        if (store_key_create_for_org(st, "bench", "bench", prefix, hash, &row) != STORE_OK) {
            fprintf(stderr, "could not store key %ld\n", i);
            goto out;
        }
    }

    printf("auth_key_verify: %ld keys stored, %ld rounds of 3 checks (+%d warm-up rounds)\n", nkeys, rounds, WARMUP);
    for (long r = -WARMUP; r < rounds; r++) {
        char probe[KINDS][AUTH_KEY_LEN + 1];
        const char *stored = keys[randombytes_uniform((uint32_t)nkeys)];
        memcpy(probe[VALID], stored, sizeof probe[VALID]);
        memcpy(probe[KNOWN_PREFIX], stored, sizeof probe[KNOWN_PREFIX]);
        /* another secret behind the same prefix: change the last character */
        probe[KNOWN_PREFIX][AUTH_KEY_LEN - 1] = probe[KNOWN_PREFIX][AUTH_KEY_LEN - 1] == 'a' ? 'b' : 'a';
        auth_key_generate(probe[UNKNOWN_PREFIX]);
        for (int j = 0; j < KINDS; j++) {
            int k = (int)((r + WARMUP + j) % KINDS); /* rotate the order each round */
            auth_principal who;
            int64_t t0 = now_ns();
            int rc = auth_key_verify(st, probe[k], &who);
            int64_t dt = now_ns() - t0;
            if (rc != KIND_WANT[k]) {
                fprintf(stderr, "%s: auth_key_verify answered %d, expected %d\n", KIND_NAME[k], rc, KIND_WANT[k]);
                goto out;
            }
            if (r >= 0)
                t[k][r] = dt;
        }
    }

    double med[KINDS];
    for (int k = 0; k < KINDS; k++) {
        qsort(t[k], (size_t)rounds, sizeof(int64_t), cmp_i64);
        med[k] = (double)t[k][rounds / 2] / 1000.0;
        printf("  %-15s median %8.2f us  p10 %8.2f us  p90 %8.2f us\n", KIND_NAME[k], med[k],
               (double)t[k][rounds / 10] / 1000.0, (double)t[k][rounds * 9 / 10] / 1000.0);
    }
    printf("  unknown/known prefix median ratio %.3f (difference %+.2f us)\n", med[UNKNOWN_PREFIX] / med[KNOWN_PREFIX],
           med[UNKNOWN_PREFIX] - med[KNOWN_PREFIX]);
    status = 0;
out:
    store_close(st);
    if (db == path) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    for (int k = 0; k < KINDS; k++)
        free(t[k]);
    free(keys);
    return status;
}
