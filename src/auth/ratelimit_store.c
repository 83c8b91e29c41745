/*
 * ratelimit_store.c — the durable rate-limit backend (ratelimit_new_durable,
 * see ratelimit.h): the memory backend's exact sliding logs, timed by the
 * wall clock, with every admission journaled to the store.
 *
 * The journal: the memory backend hands each admission (key, time) to
 * journal_add() inside the key's atomic step; it is appended to a pending
 * list under this limiter's own mutex (the writer is woken when the list
 * stops being empty). The writer takes everything pending, at most once per
 * RL_COMMIT_EVERY_MS, merges equal (key, time) pairs and writes them in ONE
 * transaction (store_rate_hits_write), deleting in the same transaction the
 * rows that left the window (at most once a minute). While one batch
 * commits, the next one queues up. No caller ever waits on the database: a
 * request pays one uncontended mutex and an append.
 *
 * Journaled times are rounded UP to RL_QUANTUM_MS (1 s): a busy key writes
 * at most one row a second, not one per request. The logs in memory stay
 * exact to the millisecond; only what a restart loads is rounded, and
 * always later, so after a restart a slot may come back up to 1 s late,
 * never early: the limit still holds in every window.
 *
 * On start the rows of the last window are read back into the logs, so a
 * restarted server goes on counting where the previous one stopped.
 *
 * What a crash (kill -9, power loss with the OS) can lose: the admissions
 * still pending or in the batch being committed when the process died —
 * those of the last few milliseconds (RL_COMMIT_EVERY_MS plus one commit). After a restart a
 * key may thus be admitted that many more times within the window than its
 * limit; nothing else is lost. A clean stop (ratelimit_free) writes
 * everything before it returns. A write that fails (disk full) is logged
 * with the number of admissions the database will not remember; the limits
 * of the running process stay exact. If the writer falls behind by more than
 * RL_PENDING_MAX admissions, the newest are not journaled (logged likewise):
 * memory stays bounded when the database is stuck.
 *
 * The wall clock: logs must mean the same after a restart, so this backend
 * reads CLOCK_REALTIME. A clock stepped back makes windows last longer (the
 * log stays ordered: see ratelimit_take); one stepped forward ends them early.
 *
 * Ownership: the limiter owns its struct durable (freed by on_free, called
 * first by ratelimit_free) and the pending keys; the store is borrowed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/ratelimit.h"
#include "auth/ratelimit_internal.h"
#include "core/log.h"
#include "core/thread.h"
#include "store/store.h"

#define RL_PENDING_MAX (1u << 20)   /* admissions waiting to be written, at most */
#define RL_PRUNE_EVERY_MS 60000     /* delete expired rows at most this often */
#define RL_QUANTUM_MS 1000          /* journaled times are rounded up to this (see the top) */
#define RL_COMMIT_EVERY_MS 5        /* at most one commit per this long: a busy server's admissions
                                       go in batches, not one small transaction each */
#define RL_SCOPE_MAX 32

typedef struct pending_hit {
    size_t off; /* the key: keys[off .. off + keylen], NUL-terminated */
    int64_t at_ms;
} pending_hit;

typedef struct pending {
    pending_hit *items;
    size_t n, cap;
    char *keys;
    size_t keys_len, keys_cap;
} pending;

typedef struct durable {
    store_t *store;
    char scope[RL_SCOPE_MAX + 1];
    int64_t window_ms;
    pthread_mutex_t mu; /* q, stop, dropped */
    pthread_cond_t wake;
    pending q;
    int stop;
    int idle; /* the writer waits for work (under mu) */
    size_t dropped;
    pthread_t thread;
    int running;
    int sync_ready;
    int64_t last_prune_ms;
} durable;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pending_free(pending *p)
{
    free(p->items);
    free(p->keys);
    memset(p, 0, sizeof *p);
}

/* Append one hit; -1 when memory is short (nothing appended). */
static int pending_add(pending *p, const char *key, size_t keylen, int64_t at_ms)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        pending_hit *ni = realloc(p->items, cap * sizeof *ni);
        if (!ni)
            return -1;
        p->items = ni;
        p->cap = cap;
    }
    if (p->keys_len + keylen + 1 > p->keys_cap) {
        size_t cap = p->keys_cap ? p->keys_cap : 1024;
        while (cap < p->keys_len + keylen + 1)
            cap *= 2;
        char *nk = realloc(p->keys, cap);
        if (!nk)
            return -1;
        p->keys = nk;
        p->keys_cap = cap;
    }
    memcpy(p->keys + p->keys_len, key, keylen);
    p->keys[p->keys_len + keylen] = '\0';
    p->items[p->n++] = (pending_hit){.off = p->keys_len, .at_ms = at_ms};
    p->keys_len += keylen + 1;
    return 0;
}

/* The memory backend's journal hook (the key's stripe is locked). */
static void journal_add(void *ud, const char *key, size_t keylen, int64_t at_ms)
{
    durable *d = ud;
    at_ms = (at_ms + RL_QUANTUM_MS - 1) / RL_QUANTUM_MS * RL_QUANTUM_MS;
    pthread_mutex_lock(&d->mu);
    int was_empty = d->q.n == 0 && d->dropped == 0;
    if (d->q.n >= RL_PENDING_MAX || pending_add(&d->q, key, keylen, at_ms) != 0)
        d->dropped++;
    if (was_empty && d->idle) /* the writer sleeps only on nothing to do: wake it once per batch */
        pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->mu);
}

/* Write one batch (merging equal key and time); logs what could not be kept. */
static void write_batch(durable *d, pending *b, size_t dropped)
{
    store_rate_hit *hits = b->n ? malloc(b->n * sizeof *hits) : NULL;
    size_t n = 0;
    if (b->n && !hits) {
        log_error("ratelimit %s: out of memory: %zu admissions not written (a restart would forget them)", d->scope,
                  b->n);
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        const char *key = b->keys + b->items[i].off;
        if (n && hits[n - 1].at_ms == b->items[i].at_ms && strcmp(hits[n - 1].bucket, key) == 0) {
            hits[n - 1].n++;
            continue;
        }
        hits[n++] = (store_rate_hit){.bucket = key, .at_ms = b->items[i].at_ms, .n = 1};
    }
    int64_t now = wall_ms(), prune = -1;
    if (now - d->last_prune_ms >= RL_PRUNE_EVERY_MS) {
        prune = now - d->window_ms;
        d->last_prune_ms = now;
    }
    if (store_rate_hits_write(d->store, d->scope, hits, n, prune) != STORE_OK)
        log_error("ratelimit %s: could not write %zu admissions (a restart would forget them)", d->scope, b->n);
    if (dropped)
        log_error("ratelimit %s: %zu admissions were not queued for writing (writer behind or out of memory)",
                  d->scope, dropped);
    free(hits);
}

/* Sleep until RL_COMMIT_EVERY_MS after the last commit began (a stop ends it early). */
static void writer_pace(durable *d, int64_t last_commit_ms)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    int64_t wait_ms = last_commit_ms + RL_COMMIT_EVERY_MS - now_ms;
    if (wait_ms <= 0)
        return;
    struct timespec until = now;
    until.tv_nsec += (long)wait_ms * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&d->mu);
    while (!d->stop && pthread_cond_timedwait(&d->wake, &d->mu, &until) == 0)
        ; /* woken early (a spurious wake-up; callers do not signal a busy writer): wait on */
    pthread_mutex_unlock(&d->mu);
}

static void *writer_main(void *arg)
{
    durable *d = arg;
    pending batch = {0};
    int64_t last_commit_ms = 0;
    for (;;) {
        writer_pace(d, last_commit_ms);
        pthread_mutex_lock(&d->mu);
        while (!d->stop && d->q.n == 0 && d->dropped == 0) {
            d->idle = 1;
            pthread_cond_wait(&d->wake, &d->mu);
            d->idle = 0;
        }
        if (d->stop && d->q.n == 0 && d->dropped == 0) {
            pthread_mutex_unlock(&d->mu);
            break;
        }
        /* swap: the callers go on appending to the (emptied, reused) other buffer */
        pending t = d->q;
        d->q = batch;
        d->q.n = 0;
        d->q.keys_len = 0;
        batch = t;
        size_t dropped = d->dropped;
        d->dropped = 0;
        pthread_mutex_unlock(&d->mu);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        last_commit_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        write_batch(d, &batch, dropped);
        batch.n = 0;
        batch.keys_len = 0;
    }
    pending_free(&batch);
    return NULL;
}

/* The limiter's on_free hook: write what is pending, stop, free. */
static void durable_free(void *ud)
{
    durable *d = ud;
    if (!d)
        return;
    if (d->running) {
        pthread_mutex_lock(&d->mu);
        d->stop = 1;
        pthread_cond_signal(&d->wake);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
    }
    if (d->sync_ready) {
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->mu);
    }
    pending_free(&d->q);
    free(d);
}

typedef struct seed_ctx {
    ratelimit *rl;
    size_t rows;
    int rc;
} seed_ctx;

static int seed_row(void *ud, const char *bucket, int64_t at_ms, long n)
{
    seed_ctx *c = ud;
    c->rc = ratelimit_mem_seed(c->rl, bucket, at_ms, n);
    if (c->rc == RATELIMIT_ERR_ARG) { /* a row no limiter could have written: skip it, keep the rest */
        c->rc = RATELIMIT_OK;
        return 0;
    }
    c->rows++;
    return c->rc != RATELIMIT_OK;
}

ratelimit *ratelimit_new_durable(long limit, long window_s, struct store *store, const char *scope, char *err,
                                 size_t errlen)
{
    ratelimit *rl = NULL;
    durable *d = NULL;
    size_t scope_len = scope ? strlen(scope) : 0;
    if (!store || scope_len == 0 || scope_len > RL_SCOPE_MAX) {
        snprintf(err, errlen, "rate limit: a durable limiter needs a store and a scope of 1..%d characters",
                 RL_SCOPE_MAX);
        return NULL;
    }
    if (!(d = calloc(1, sizeof *d))) {
        snprintf(err, errlen, "rate limit %s: out of memory", scope);
        return NULL;
    }
    d->store = store;
    memcpy(d->scope, scope, scope_len + 1);
    d->window_ms = (int64_t)window_s * 1000;
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        free(d);
        snprintf(err, errlen, "rate limit %s: cannot create a mutex", scope);
        return NULL;
    }
    pthread_condattr_t ca;
    int crc = pthread_condattr_init(&ca);
    if (crc == 0) {
        crc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* writer_pace's waits ignore wall-clock steps */
        if (crc == 0)
            crc = pthread_cond_init(&d->wake, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (crc != 0) {
        pthread_mutex_destroy(&d->mu);
        free(d);
        snprintf(err, errlen, "rate limit %s: cannot create a condition variable", scope);
        return NULL;
    }
    d->sync_ready = 1;
    ratelimit_mem_hooks hooks = {.wall_clock = 1, .journal = journal_add, .on_free = durable_free, .ud = d};
    if (!(rl = ratelimit_mem_new(limit, window_s, &hooks))) {
        durable_free(d);
        snprintf(err, errlen, "rate limit %s: bad limit (%ld) or window (%ld s), or out of memory", scope, limit,
                 window_s);
        return NULL;
    }
    /* from here the limiter owns d */
    seed_ctx sc = {.rl = rl};
    int64_t now = wall_ms();
    int rc = store_rate_hits_load(store, scope, now - d->window_ms, seed_row, &sc);
    if (rc != STORE_OK) {
        snprintf(err, errlen, "rate limit %s: cannot load the admissions of the last %ld s from the database (%s)",
                 scope, window_s, sc.rc != RATELIMIT_OK ? ratelimit_strerror(sc.rc) : "store error");
        goto fail;
    }
    d->last_prune_ms = 0; /* the first batch prunes what expired while the server was down */
    if ((rc = thread_start(&d->thread, "pd-ratelimit", writer_main, d)) != 0) {
        snprintf(err, errlen, "rate limit %s: cannot start its writer thread", scope);
        goto fail;
    }
    d->running = 1;
    if (sc.rows)
        log_info("rate limit %s: %zu admission times of the last %ld s loaded from the database", scope, sc.rows,
                 window_s);
    return rl;
fail:
    ratelimit_free(rl);
    return NULL;
}
