/*
 * mock_state.c — the little state the mock keeps across requests:
 *   - counters for GET /_mock/stats: completion/message requests seen, how
 *     many are in flight now (arrived, answer not yet fully sent) and the
 *     highest in_flight since start or the last POST /_mock/reset;
 *   - the fail_times table: how often each distinct last-user-message text
 *     carrying [mock:fail_times=N] has failed so far (a small chained hash).
 * Everything is under one mutex; MHD may call in from several threads.
 */
#include "mock/mock_llm.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define FAIL_BUCKETS 256

typedef struct fail_entry {
    struct fail_entry *next;
    char *key;
    long count;
} fail_entry;

static struct {
    pthread_mutex_t mu;
    long long requests;
    long long in_flight;
    long long max_in_flight;
    fail_entry *fail[FAIL_BUCKETS];
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

void mock_stats_begin(void)
{
    pthread_mutex_lock(&S.mu);
    S.requests++;
    S.in_flight++;
    if (S.in_flight > S.max_in_flight)
        S.max_in_flight = S.in_flight;
    pthread_mutex_unlock(&S.mu);
}

void mock_stats_end(void)
{
    pthread_mutex_lock(&S.mu);
    S.in_flight--;
    pthread_mutex_unlock(&S.mu);
}

char *mock_stats_json(void)
{
    json_t *o;

    pthread_mutex_lock(&S.mu);
    o = json_pack("{s:I,s:I,s:I}", "requests", (json_int_t)S.requests, "in_flight", (json_int_t)S.in_flight,
                  "max_in_flight", (json_int_t)S.max_in_flight);
    pthread_mutex_unlock(&S.mu);
    if (o == NULL)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Caller holds S.mu. */
static void fail_table_clear(void)
{
    for (size_t b = 0; b < FAIL_BUCKETS; b++) {
        fail_entry *e = S.fail[b];
        while (e != NULL) {
            fail_entry *next = e->next;
            free(e->key);
            free(e);
            e = next;
        }
        S.fail[b] = NULL;
    }
}

void mock_stats_reset(void)
{
    pthread_mutex_lock(&S.mu);
    S.requests = 0;
    S.max_in_flight = S.in_flight;
    fail_table_clear();
    pthread_mutex_unlock(&S.mu);
}

static size_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return (size_t)(h % FAIL_BUCKETS);
}

/* Caller holds S.mu. Finds or adds key; NULL on allocation failure. */
static fail_entry *fail_lookup(const char *key)
{
    size_t b = fnv1a(key);
    fail_entry *e;

    for (e = S.fail[b]; e != NULL; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->key = strdup(key);
    if (e->key == NULL) {
        free(e);
        return NULL;
    }
    e->next = S.fail[b];
    S.fail[b] = e;
    return e;
}

bool mock_fail_times_hit(const char *key, long n)
{
    bool hit = false;
    fail_entry *e;

    pthread_mutex_lock(&S.mu);
    e = fail_lookup(key);
    if (e == NULL)
        hit = true; /* out of memory: failing is the safe answer */
    else if (e->count < n) {
        e->count++;
        hit = true;
    }
    pthread_mutex_unlock(&S.mu);
    return hit;
}

void mock_state_free(void)
{
    pthread_mutex_lock(&S.mu);
    fail_table_clear();
    pthread_mutex_unlock(&S.mu);
}
