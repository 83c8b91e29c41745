/*
 * ratelimit_internal.h — INTERNAL to src/auth/ratelimit*.c: what the durable
 * backend (ratelimit_store.c) reuses of the memory backend (ratelimit.c).
 *
 * The durable backend is the memory backend with a journal: every admission
 * is handed to journal() inside the key's atomic step (so the journal sees a
 * key's admissions in order), and the logs are seeded from the store before
 * the limiter serves.
 */
#ifndef PROMPTD_AUTH_RATELIMIT_INTERNAL_H
#define PROMPTD_AUTH_RATELIMIT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "auth/ratelimit.h"

typedef struct ratelimit_mem_hooks {
    int wall_clock; /* 1: now_ms -1 reads CLOCK_REALTIME (times that survive a restart) */
    /* Called with the key's stripe locked, for each admission: must be quick
     * and must not call back into the limiter. NULL = none. */
    void (*journal)(void *ud, const char *key, size_t keylen, int64_t at_ms);
    /* Called first by ratelimit_free() (flush and stop what journal feeds). NULL = none. */
    void (*on_free)(void *ud);
    void *ud;
} ratelimit_mem_hooks;

/* A memory limiter with hooks (copied). NULL as ratelimit_new_memory. */
ratelimit *ratelimit_mem_new(long limit, long window_s, const ratelimit_mem_hooks *hooks);

/* Log n admissions of key at at_ms without checking the limit or calling the
 * journal (loading what the store holds). Call before the limiter serves, in
 * time order per key. RATELIMIT_OK, _ERR_ARG or _ERR_NOMEM. */
int ratelimit_mem_seed(ratelimit *rl, const char *key, int64_t at_ms, long n);

#endif
