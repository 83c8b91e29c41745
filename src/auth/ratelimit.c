/*
 * ratelimit.c — exact rate limiting (a sliding log) and the in-memory
 * backend (see ratelimit.h for the contract).
 *
 * A key's log is a ring of runs (t, n): n admissions at millisecond t,
 * oldest first, t strictly increasing. With W the window in ms and L the
 * limit, a request at t:
 *   1. drops the runs with t_run <= t - W (they left the window);
 *   2. is admitted iff count < L (count = admissions still logged), and
 *      then appends t (merged into the last run when equal);
 *   3. reports remaining = max(0, L - count) and, when count >= L, the time
 *      the next request will be admitted: the run holding the
 *      (count - L + 1)-th oldest admission, plus W (when it leaves, count
 *      drops below L).
 * Why exact: after any admission at t, the log holds <= L admissions in
 * (t - W, t]. Any window [s, s + W) containing admissions ends at its last
 * admission t, and lies inside (t - W, t]: it holds <= L.
 * A key's runs count admissions whatever the limit of the call, so a per-key
 * limit that changes applies to what the key really did in the window.
 *
 * The generic layer (ratelimit_take/peek) validates arguments, resolves the
 * limit and answers "window off" itself; a backend (struct ratelimit_ops)
 * keeps the logs and runs log_eval() atomically per key.
 *
 * The memory backend: 64 stripes, each a mutex and a chained hash table
 * (power-of-two buckets, SipHash-2-4 with a per-limiter random key, so keys
 * cannot be chosen to collide). An entry whose last admission is a window
 * old has an empty log, carries no information and is evicted: a stripe is
 * swept when an insert finds its table full (before growing it) or a window
 * has passed since its last sweep; a swept table shrinks when mostly empty.
 * A ring grows by doubling and shrinks when a quarter full. Memory therefore
 * follows the admissions within about one window.
 */
#include "auth/ratelimit.h"

#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/ratelimit_internal.h"

/* ---- the backend interface ---- */

struct ratelimit_ops {
    /* Atomically evaluate (and with consume, log) one request at now_ms for
     * a limit already resolved (1..RATELIMIT_MAX_LIMIT). now_ms -1: the
     * backend's clock, read inside the atomic step, so that concurrent
     * callers' times are in the order their checks run. Fills *out except
     * window_s. */
    int (*check)(ratelimit *rl, const char *key, size_t keylen, long limit, int64_t now_ms, int consume,
                 ratelimit_result *out);
    size_t (*sweep)(ratelimit *rl, int64_t now_ms); /* now_ms -1: the backend's clock */
    size_t (*size)(ratelimit *rl);
    void (*destroy)(ratelimit *rl);
};

struct ratelimit {
    const struct ratelimit_ops *ops;
    long limit;    /* default limit; 0 = off */
    long window_s; /* window, seconds */
    int64_t window_ms;
};

static int now_ok(int64_t now_ms) { return now_ms >= 0 && now_ms <= RATELIMIT_MAX_NOW_MS; }
_Static_assert(RATELIMIT_MAX_NOW_MS + (int64_t)RATELIMIT_MAX_WINDOW_S * 1000 < INT64_MAX / 2, "times may overflow");

static int64_t ceil_div(int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; }

/* ---- the generic layer ---- */

static int rl_check(ratelimit *rl, const char *key, long limit_override, int64_t now_ms, int consume,
                    ratelimit_result *out)
{
    int rc = RATELIMIT_ERR_ARG;
    size_t keylen;
    long limit;

    if (!out)
        return RATELIMIT_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (!rl || !key || limit_override > RATELIMIT_MAX_LIMIT || limit_override < -1)
        goto out;
    keylen = strnlen(key, RATELIMIT_KEY_MAX + 1);
    if (keylen == 0 || keylen > RATELIMIT_KEY_MAX)
        goto out;

    limit = limit_override == RATELIMIT_UNLIMITED ? 0 : limit_override > 0 ? limit_override : rl->limit;
    if (limit == 0) { /* window off */
        out->allowed = 1;
        out->window_s = rl->window_s;
        rc = RATELIMIT_OK;
        goto out;
    }
    if (now_ms != -1 && !now_ok(now_ms))
        goto out;

    rc = rl->ops->check(rl, key, keylen, limit, now_ms, consume, out);
    if (rc == RATELIMIT_OK)
        out->window_s = rl->window_s;
out:
    if (rc != RATELIMIT_OK)
        memset(out, 0, sizeof *out);
    return rc;
}

int ratelimit_take(ratelimit *rl, const char *key, long limit_override, int64_t now_ms, ratelimit_result *out)
{
    return rl_check(rl, key, limit_override, now_ms, 1, out);
}

int ratelimit_peek(ratelimit *rl, const char *key, long limit_override, int64_t now_ms, ratelimit_result *out)
{
    return rl_check(rl, key, limit_override, now_ms, 0, out);
}

size_t ratelimit_sweep(ratelimit *rl, int64_t now_ms)
{
    if (!rl || now_ms < -1)
        return 0;
    return rl->ops->sweep(rl, now_ms);
}

size_t ratelimit_size(ratelimit *rl) { return rl ? rl->ops->size(rl) : 0; }

void ratelimit_free(ratelimit *rl)
{
    if (rl)
        rl->ops->destroy(rl);
}

const char *ratelimit_strerror(int rc)
{
    switch (rc) {
    case RATELIMIT_OK: return "ok";
    case RATELIMIT_ERR_ARG: return "invalid argument";
    case RATELIMIT_ERR_NOMEM: return "out of memory";
    case RATELIMIT_ERR_BACKEND: return "rate limit backend unavailable";
    default: return "unknown error";
    }
}

/* ---- the memory backend ---- */

#define MEM_STRIPES 64 /* a power of two; the stripe is the hash's top bits */
#define MEM_STRIPE_BITS 6
#define MEM_MIN_BUCKETS 16
#define MEM_MIN_RUNS 4

typedef struct mem_run {
    int64_t t; /* ms */
    long n;    /* admissions at t (>= 1) */
} mem_run;

typedef struct mem_entry {
    struct mem_entry *next;
    uint64_t hash;
    mem_run *runs;  /* ring: runs[(head + i) % cap], i < len, oldest first */
    size_t head, len, cap;
    long count;     /* admissions in the runs */
    int64_t free_ms; /* last admission + W: the log is empty from then on (evictable) */
    size_t keylen;
    char key[]; /* keylen bytes + NUL */
} mem_entry;

typedef struct mem_stripe {
    _Alignas(64) pthread_mutex_t mu;
    mem_entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    int64_t next_sweep_ms;
} mem_stripe;

typedef struct mem_limiter {
    ratelimit base; /* first: a ratelimit * is a mem_limiter * */
    ratelimit_mem_hooks hooks;
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    mem_stripe stripes[MEM_STRIPES];
} mem_limiter;

static mem_run *run_at(const mem_entry *e, size_t i) { return &e->runs[(e->head + i) % e->cap]; }

/* Copy the ring into a new array of cap runs (>= len), oldest first at 0.
 * -1 when memory is short (the ring is left as it was). */
static int ring_resize(mem_entry *e, size_t cap)
{
    mem_run *nr = malloc(cap * sizeof *nr);
    if (!nr)
        return -1;
    for (size_t i = 0; i < e->len; i++)
        nr[i] = *run_at(e, i);
    free(e->runs);
    e->runs = nr;
    e->cap = cap;
    e->head = 0;
    return 0;
}

/* Drop the runs that left the window at now_ms; shrink a ring gone sparse. */
static void log_expire(mem_entry *e, int64_t now_ms, int64_t window_ms)
{
    while (e->len && run_at(e, 0)->t <= now_ms - window_ms) {
        e->count -= run_at(e, 0)->n;
        e->head = (e->head + 1) % e->cap;
        e->len--;
    }
    if (e->len == 0)
        e->head = 0;
    if (e->cap > MEM_MIN_RUNS && e->len * 4 < e->cap)
        (void)ring_resize(e, e->cap / 2 > MEM_MIN_RUNS ? e->cap / 2 : MEM_MIN_RUNS); /* failure: stays larger */
}

/* Log n admissions at t (not before the last run: the log stays ordered).
 * RATELIMIT_ERR_NOMEM when the ring cannot grow (nothing logged). */
static int log_append(mem_entry *e, int64_t t, long n, int64_t window_ms)
{
    if (e->len) {
        mem_run *last = run_at(e, e->len - 1);
        if (t <= last->t) {
            last->n += n;
            e->count += n;
            return RATELIMIT_OK;
        }
    }
    if (e->len == e->cap && ring_resize(e, e->cap ? e->cap * 2 : MEM_MIN_RUNS) != 0)
        return RATELIMIT_ERR_NOMEM;
    *run_at(e, e->len) = (mem_run){.t = t, .n = n};
    e->len++;
    e->count += n;
    e->free_ms = t + window_ms;
    return RATELIMIT_OK;
}

/*
 * What the key's log (already expired to now_ms; NULL = empty) means against
 * limit at now_ms. Fills every field but window_s, allowed and retry_after_s.
 */
static void log_report(const mem_entry *e, long limit, int64_t now_ms, int64_t window_ms, ratelimit_result *out)
{
    long count = e ? e->count : 0;
    out->limit = limit;
    out->remaining = count < limit ? limit - count : 0;
    if (count == 0) {
        out->reset_s = 0;
        return;
    }
    /* when the window frees its next slot: the oldest admission leaves, or
     * with the window full, enough of them for count to drop below limit */
    long need = count >= limit ? count - limit + 1 : 1, seen = 0;
    int64_t at = now_ms + window_ms; /* not reached: need <= count */
    for (size_t i = 0; i < e->len; i++) {
        const mem_run *r = run_at(e, i);
        seen += r->n;
        if (seen >= need) {
            at = r->t + window_ms;
            break;
        }
    }
    out->reset_s = (long)ceil_div(at - now_ms, 1000);
}

static uint64_t mem_hash(const mem_limiter *m, const char *key, size_t keylen)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v = 0;
    crypto_shorthash(h, (const unsigned char *)key, keylen, m->hash_key);
    for (size_t i = 0; i < sizeof h; i++)
        v = (v << 8) | h[i];
    return v;
}

static mem_stripe *mem_stripe_of(mem_limiter *m, uint64_t hash) { return &m->stripes[hash >> (64 - MEM_STRIPE_BITS)]; }

/* Rehash into n buckets (a power of two). On allocation failure the table
 * stays as it is: longer chains, still correct. Caller holds the lock. */
static void mem_resize(mem_stripe *s, size_t n)
{
    mem_entry **nb = calloc(n, sizeof *nb);
    if (!nb)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        mem_entry *e = s->buckets[i];
        while (e) {
            mem_entry *next = e->next;
            size_t b = e->hash & (n - 1);
            e->next = nb[b];
            nb[b] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = nb;
    s->nbuckets = n;
}

static void mem_entry_free(mem_entry *e)
{
    if (e) {
        free(e->runs);
        free(e);
    }
}

/* Evict the stripe's entries whose log is empty, then fit the table to what
 * is left. Caller holds the lock. Returns the number evicted. */
static size_t mem_sweep_stripe(mem_stripe *s, int64_t now_ms)
{
    size_t evicted = 0, n;

    for (size_t i = 0; i < s->nbuckets; i++) {
        mem_entry **pp = &s->buckets[i];
        while (*pp) {
            mem_entry *e = *pp;
            if (e->free_ms <= now_ms) {
                *pp = e->next;
                mem_entry_free(e);
                evicted++;
            } else {
                pp = &e->next;
            }
        }
    }
    s->count -= evicted;

    n = s->nbuckets;
    while (n > MEM_MIN_BUCKETS && s->count * 8 < n)
        n /= 2;
    if (n != s->nbuckets)
        mem_resize(s, n);
    return evicted;
}

/* The memory backend's clock: monotonic (immune to wall-clock steps), or the
 * wall clock for logs that outlive the process. */
static int64_t mem_clock_ms(const mem_limiter *m)
{
    struct timespec ts;
    clock_gettime(m->hooks.wall_clock ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static mem_entry *mem_find(mem_stripe *s, uint64_t hash, const char *key, size_t keylen)
{
    for (mem_entry *e = s->buckets[hash & (s->nbuckets - 1)]; e; e = e->next)
        if (e->hash == hash && e->keylen == keylen && memcmp(e->key, key, keylen) == 0)
            return e;
    return NULL;
}

/*
 * Make room for one more entry. A stripe is swept when its table would pass
 * 3/4 full or a window has passed since its last sweep; it grows only if
 * the sweep left it more than half full. So a sweep is followed by at least
 * a quarter table of inserts before the next full-table sweep (amortised
 * O(1)), and a table never grows because of empty logs.
 */
static void mem_prepare_insert(mem_stripe *s, int64_t now_ms, int64_t window_ms)
{
    if ((s->count + 1) * 4 > s->nbuckets * 3 || now_ms >= s->next_sweep_ms) {
        mem_sweep_stripe(s, now_ms);
        s->next_sweep_ms = now_ms + window_ms;
        if ((s->count + 1) * 2 > s->nbuckets)
            mem_resize(s, s->nbuckets * 2);
    }
}

/* A new, empty entry for key, linked into its stripe. Caller holds the lock. */
static mem_entry *mem_insert(mem_stripe *s, uint64_t hash, const char *key, size_t keylen, int64_t now_ms,
                             int64_t window_ms)
{
    mem_prepare_insert(s, now_ms, window_ms);
    mem_entry *e = calloc(1, sizeof *e + keylen + 1);
    if (!e)
        return NULL;
    e->hash = hash;
    e->keylen = keylen;
    memcpy(e->key, key, keylen);
    e->key[keylen] = '\0';
    e->next = s->buckets[hash & (s->nbuckets - 1)];
    s->buckets[hash & (s->nbuckets - 1)] = e;
    s->count++;
    return e;
}

static int mem_check(ratelimit *rl, const char *key, size_t keylen, long limit, int64_t now_ms, int consume,
                     ratelimit_result *out)
{
    mem_limiter *m = (mem_limiter *)rl;
    uint64_t hash = mem_hash(m, key, keylen);
    mem_stripe *s = mem_stripe_of(m, hash);
    int64_t w = rl->window_ms;
    int rc = RATELIMIT_OK;
    mem_entry *e;

    pthread_mutex_lock(&s->mu);
    if (now_ms == -1) {
        now_ms = mem_clock_ms(m);
        if (!now_ok(now_ms)) {
            rc = RATELIMIT_ERR_ARG;
            goto out;
        }
    }
    e = mem_find(s, hash, key, keylen);
    if (e)
        log_expire(e, now_ms, w);
    out->allowed = (e ? e->count : 0) < limit;
    if (!consume || !out->allowed) {
        log_report(e, limit, now_ms, w, out);
        if (!out->allowed)
            out->retry_after_s = out->reset_s > 0 ? out->reset_s : 1;
        goto out;
    }
    if (!e && !(e = mem_insert(s, hash, key, keylen, now_ms, w))) {
        rc = RATELIMIT_ERR_NOMEM;
        goto out;
    }
    /* a time before the key's last admission counts as that admission's time */
    int64_t at = e->len && run_at(e, e->len - 1)->t > now_ms ? run_at(e, e->len - 1)->t : now_ms;
    if ((rc = log_append(e, at, 1, w)) != RATELIMIT_OK)
        goto out; /* an entry left empty is evicted by the next sweep */
    if (m->hooks.journal)
        m->hooks.journal(m->hooks.ud, e->key, keylen, at);
    log_report(e, limit, now_ms, w, out);
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int ratelimit_mem_seed(ratelimit *rl, const char *key, int64_t at_ms, long n)
{
    mem_limiter *m = (mem_limiter *)rl;
    size_t keylen = key ? strnlen(key, RATELIMIT_KEY_MAX + 1) : 0;
    int rc = RATELIMIT_ERR_ARG;
    if (!rl || keylen == 0 || keylen > RATELIMIT_KEY_MAX || !now_ok(at_ms) || n < 1 || n > RATELIMIT_MAX_LIMIT)
        return RATELIMIT_ERR_ARG;
    uint64_t hash = mem_hash(m, key, keylen);
    mem_stripe *s = mem_stripe_of(m, hash);
    pthread_mutex_lock(&s->mu);
    mem_entry *e = mem_find(s, hash, key, keylen);
    if (!e && !(e = mem_insert(s, hash, key, keylen, at_ms, rl->window_ms))) {
        rc = RATELIMIT_ERR_NOMEM;
        goto out;
    }
    rc = log_append(e, at_ms, n, rl->window_ms);
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static size_t mem_sweep(ratelimit *rl, int64_t now_ms)
{
    mem_limiter *m = (mem_limiter *)rl;
    size_t evicted = 0;
    for (int i = 0; i < MEM_STRIPES; i++) {
        mem_stripe *s = &m->stripes[i];
        pthread_mutex_lock(&s->mu);
        int64_t t = now_ms == -1 ? mem_clock_ms(m) : now_ms;
        evicted += mem_sweep_stripe(s, t);
        s->next_sweep_ms = t + rl->window_ms;
        pthread_mutex_unlock(&s->mu);
    }
    return evicted;
}

static size_t mem_size(ratelimit *rl)
{
    mem_limiter *m = (mem_limiter *)rl;
    size_t n = 0;
    for (int i = 0; i < MEM_STRIPES; i++) {
        pthread_mutex_lock(&m->stripes[i].mu);
        n += m->stripes[i].count;
        pthread_mutex_unlock(&m->stripes[i].mu);
    }
    return n;
}

static void mem_destroy(ratelimit *rl)
{
    mem_limiter *m = (mem_limiter *)rl;
    if (m->hooks.on_free)
        m->hooks.on_free(m->hooks.ud);
    for (int i = 0; i < MEM_STRIPES; i++) {
        mem_stripe *s = &m->stripes[i];
        for (size_t b = 0; s->buckets && b < s->nbuckets; b++) {
            mem_entry *e = s->buckets[b];
            while (e) {
                mem_entry *next = e->next;
                mem_entry_free(e);
                e = next;
            }
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(m);
}

static const struct ratelimit_ops mem_ops = {
    .check = mem_check,
    .sweep = mem_sweep,
    .size = mem_size,
    .destroy = mem_destroy,
};

ratelimit *ratelimit_mem_new(long limit, long window_s, const ratelimit_mem_hooks *hooks)
{
    mem_limiter *m = NULL;
    int i, inited = 0;

    if (limit < 0 || limit > RATELIMIT_MAX_LIMIT || window_s < 1 || window_s > RATELIMIT_MAX_WINDOW_S)
        return NULL;
    if (sodium_init() < 0)
        return NULL;
    /* the stripes are cache-line aligned; sizeof is a multiple of the alignment */
    m = aligned_alloc(_Alignof(mem_limiter), sizeof *m);
    if (!m)
        goto fail;
    memset(m, 0, sizeof *m);
    m->base.ops = &mem_ops;
    m->base.limit = limit;
    m->base.window_s = window_s;
    m->base.window_ms = (int64_t)window_s * 1000;
    if (hooks)
        m->hooks = *hooks;
    randombytes_buf(m->hash_key, sizeof m->hash_key);
    for (i = 0; i < MEM_STRIPES; i++) {
        mem_stripe *s = &m->stripes[i];
        if (pthread_mutex_init(&s->mu, NULL) != 0)
            goto fail;
        inited++;
        s->buckets = calloc(MEM_MIN_BUCKETS, sizeof *s->buckets);
        if (!s->buckets)
            goto fail;
        s->nbuckets = MEM_MIN_BUCKETS;
    }
    return &m->base;

fail:
    if (m) {
        for (i = 0; i < MEM_STRIPES; i++) {
            free(m->stripes[i].buckets);
            if (i < inited)
                pthread_mutex_destroy(&m->stripes[i].mu);
        }
        free(m);
    }
    return NULL;
}

ratelimit *ratelimit_new_memory(long limit, long window_s) { return ratelimit_mem_new(limit, window_s, NULL); }

/* ---- header fields ---- */

static int name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* Append to buf at *len; RATELIMIT_ERR_ARG when it does not fit. */
static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (!buf)
        return RATELIMIT_OK;
    va_start(ap, fmt);
    n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len)
        return RATELIMIT_ERR_ARG;
    *len += (size_t)n;
    return RATELIMIT_OK;
}

int ratelimit_format_headers(const ratelimit_window *w, size_t n, char *policy, size_t policy_cap, char *state,
                             size_t state_cap)
{
    size_t plen = 0, slen = 0;
    int rc = RATELIMIT_ERR_ARG, first = 1;

    if ((policy && policy_cap == 0) || (state && state_cap == 0) || (n && !w))
        return RATELIMIT_ERR_ARG;
    if (policy)
        policy[0] = '\0';
    if (state)
        state[0] = '\0';

    for (size_t i = 0; i < n; i++) {
        const ratelimit_result *r = w[i].result;
        if (!r || !name_ok(w[i].name))
            goto out;
        if (r->limit == 0)
            continue;
        if ((rc = append(policy, policy_cap, &plen, "%s\"%s\";q=%ld;w=%ld", first ? "" : ", ", w[i].name, r->limit,
                         r->window_s)) != RATELIMIT_OK)
            goto out;
        if ((rc = append(state, state_cap, &slen, "%s\"%s\";r=%ld;t=%ld", first ? "" : ", ", w[i].name, r->remaining,
                         r->reset_s)) != RATELIMIT_OK)
            goto out;
        first = 0;
    }
    rc = RATELIMIT_OK;
out:
    if (rc != RATELIMIT_OK) {
        if (policy)
            policy[0] = '\0';
        if (state)
            state[0] = '\0';
    }
    return rc;
}

const ratelimit_result *ratelimit_tightest(const ratelimit_result *r, size_t n)
{
    const ratelimit_result *best = NULL;
    for (size_t i = 0; r && i < n; i++) {
        const ratelimit_result *c = &r[i];
        if (c->limit == 0)
            continue;
        if (!best || (!c->allowed && best->allowed) ||
            (c->allowed == best->allowed &&
             (c->remaining < best->remaining || (c->remaining == best->remaining && c->reset_s > best->reset_s))))
            best = c;
    }
    return best;
}
