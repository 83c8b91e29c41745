/*
 * dispatcher.c — the async queue's worker (see dispatcher.h).
 *
 * Loop: flush outcomes (one transaction for all that arrived), claim more
 * rows while below max_in_flight, submit them, renew leases when due, then
 * sleep on the condition variable until an outcome arrives, new work is
 * announced, or the poll interval passes. Engine callbacks only append to
 * the outcome list and signal: the engine thread never touches SQLite here.
 */
#include "core/dispatcher.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/thread.h"
#include "core/timeutil.h"

typedef struct outcome {
    struct outcome *next;
    store_job_result res;
    store_id id;
    char *model, *output, *error;
} outcome;

#define FLUSH_RETRY_MIN_MS 100   /* first wait after an outcome write failed */
#define FLUSH_RETRY_MAX_MS 5000  /* longest wait between attempts */
#define STOP_GIVE_UP_MS 10000    /* at stop, how long unwritable outcomes are retried */

struct dispatcher {
    store_t *store;
    engine_t *engine;
    dispatcher_config cfg;
    char owner[64];
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int notified, quiescing, stopping;
    int in_flight;     /* claimed, outcome not yet written: every row this worker's lease holds */
    outcome *done;     /* outcomes waiting to be written (LIFO; order does not matter) */
    size_t done_count;
    /* dispatcher thread only: when the last write of outcomes failed, the next try and the wait */
    int64_t retry_at_ms, retry_wait_ms, stop_deadline_ms;
};

/* One claimed job on its way through the engine. Its outcome is allocated when the job is
 * submitted, so finishing never needs memory: an outcome is never lost to a failed malloc. */
typedef struct job_ctx {
    dispatcher *d;
    outcome *o;
} job_ctx;

static char *dup_or_null(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void outcome_free(outcome *o)
{
    free(o->model);
    free(o->output);
    free(o->error);
    free(o);
}

/* Hand an outcome to the dispatcher thread for writing (any thread). */
static void outcome_post(dispatcher *d, outcome *o)
{
    pthread_mutex_lock(&d->lock);
    o->next = d->done;
    d->done = o;
    d->done_count++;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
}

/* Engine thread: copy the outcome and hand it to the dispatcher thread. */
static void job_done(void *ud, const engine_result *res)
{
    job_ctx *jc = ud;
    dispatcher *d = jc->d;
    outcome *o = jc->o;
    if (res->status == ENGINE_ERR_SHUTDOWN) {
        o->res.release = 1; /* not the job's fault: run it again after restart */
    } else {
        int ok = res->status == ENGINE_OK;
        o->model = res->model ? strdup(res->model) : NULL;
        o->output = dup_or_null(res->output ? res->output : "", res->output ? res->output_len : 0);
        o->error = ok ? NULL : strdup(res->error ? res->error : "the model call failed");
        if ((res->model && !o->model) || !o->output || (!ok && !o->error)) {
            /* the answer cannot be kept: give the job back to run again rather than drop it */
            log_error("dispatcher: out of memory recording %s; it is queued again", o->id);
            free(o->model);
            free(o->output);
            free(o->error);
            o->model = o->output = o->error = NULL;
            o->res.release = 1;
        } else {
            o->res.r = (store_execution_result){
                .status = ok ? "completed" : "failed",
                .model = o->model,
                .output = o->output,
                .output_len = res->output ? res->output_len : 0,
                .error = o->error,
                .prompt_tokens = res->prompt_tokens,
                .completion_tokens = res->completion_tokens,
                .total_tokens = res->total_tokens,
                .duration_ms = res->duration_ms,
                .attempts = res->attempts,
            };
        }
    }
    outcome_post(d, o);
    free(jc);
}

/*
 * Write every pending outcome in one transaction. When the store refuses (a full disk, a lock
 * held elsewhere past the busy timeout), the outcomes are kept and tried again later, with a
 * growing wait: the jobs stay this worker's (their leases are renewed, as it still knows them)
 * until their outcomes are written. Only at stop, after STOP_GIVE_UP_MS, are they let go: their
 * leases then expire and the jobs run again after a restart.
 */
static void flush_outcomes(dispatcher *d)
{
    pthread_mutex_lock(&d->lock);
    outcome *list = d->done;
    size_t n = d->done_count;
    d->done = NULL;
    d->done_count = 0;
    int stopping = d->stopping;
    pthread_mutex_unlock(&d->lock);
    if (!n)
        return;
    store_job_result *res = malloc(n * sizeof *res);
    size_t i = 0, applied = 0;
    for (outcome *o = list; o && res; o = o->next)
        res[i++] = o->res;
    int ok = res && store_queue_finish_many(d->store, d->owner, res, n, &applied) == STORE_OK;
    free(res);
    int64_t now = time_mono_ms();
    if (!ok && stopping && !d->stop_deadline_ms)
        d->stop_deadline_ms = now + STOP_GIVE_UP_MS;
    if (!ok && !(stopping && now >= d->stop_deadline_ms)) {
        d->retry_wait_ms = d->retry_wait_ms ? d->retry_wait_ms * 2 : FLUSH_RETRY_MIN_MS;
        if (d->retry_wait_ms > FLUSH_RETRY_MAX_MS)
            d->retry_wait_ms = FLUSH_RETRY_MAX_MS;
        d->retry_at_ms = now + d->retry_wait_ms;
        log_error("dispatcher: could not record %zu outcomes; trying again in %lld ms", n,
                  (long long)d->retry_wait_ms);
        pthread_mutex_lock(&d->lock);
        outcome *last = list;
        while (last->next)
            last = last->next;
        last->next = d->done; /* back in front of whatever arrived meanwhile */
        d->done = list;
        d->done_count += n;
        pthread_mutex_unlock(&d->lock);
        return;
    }
    if (!ok)
        log_error("dispatcher: stopping without recording %zu outcomes; their leases will expire and they will run "
                  "again after a restart",
                  n);
    d->retry_wait_ms = d->retry_at_ms = 0;
    while (list) {
        outcome *next = list->next;
        outcome_free(list);
        list = next;
    }
    pthread_mutex_lock(&d->lock);
    d->in_flight -= (int)n;
    pthread_mutex_unlock(&d->lock);
}

static int submit_job(dispatcher *d, const store_job *j)
{
    json_error_t jerr;
    json_t *messages = json_loads(j->messages, 0, &jerr);
    job_ctx *jc = calloc(1, sizeof *jc);
    outcome *o = calloc(1, sizeof *o);
    int rc = -1;
    if (!messages || !json_is_array(messages) || !jc || !o)
        goto out;
    memcpy(o->id, j->id, sizeof o->id);
    o->res.id = o->id;
    jc->d = d;
    jc->o = o;
    engine_call call = {.model = j->model,
                        .messages = messages,
                        .temperature = j->temperature,
                        .has_temperature = j->has_temperature,
                        .max_tokens = j->max_tokens,
                        .on_done = job_done,
                        .ud = jc};
    if (engine_submit(d->engine, &call) == 0) {
        jc = NULL; /* job_done frees it and posts o */
        o = NULL;
        rc = 0;
    }
out:
    json_decref(messages);
    free(jc);
    free(o);
    return rc;
}

/* A job the engine would not take ends failed at once (unknown model after a
 * config change, bad stored messages), written like any outcome (and retried
 * like one). Returns -1 only when not even that can be remembered. */
static int reject_job(dispatcher *d, const store_job *j)
{
    outcome *o = calloc(1, sizeof *o);
    if (!o)
        return -1;
    memcpy(o->id, j->id, sizeof o->id);
    o->res.id = o->id;
    o->res.r = (store_execution_result){
        .status = "failed", .output = "", .error = "the model could not be called (unknown model or bad request)"};
    outcome_post(d, o);
    return 0;
}

static void claim_and_submit(dispatcher *d)
{
    pthread_mutex_lock(&d->lock);
    int room = d->cfg.max_in_flight - d->in_flight;
    int stopping = d->quiescing || d->stopping;
    pthread_mutex_unlock(&d->lock);
    if (stopping || room <= 0)
        return;
    if (room > d->cfg.claim_batch)
        room = d->cfg.claim_batch;
    int64_t now = time_now_ms();
    store_job *jobs = NULL;
    size_t n = 0;
    if (store_queue_claim(d->store, d->owner, now, now + d->cfg.lease_ms, room, &jobs, &n) != STORE_OK) {
        log_error("dispatcher: claim failed");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&d->lock);
        d->in_flight++;
        pthread_mutex_unlock(&d->lock);
        if (submit_job(d, &jobs[i]) != 0 && reject_job(d, &jobs[i]) != 0) {
            /* nothing can be remembered of it: let it go back to the queue now */
            size_t applied;
            store_job_result r = {.id = jobs[i].id, .release = 1};
            if (store_queue_finish_many(d->store, d->owner, &r, 1, &applied) != STORE_OK)
                log_error("dispatcher: cannot give back %s; it runs again once its lease expires", jobs[i].id);
            pthread_mutex_lock(&d->lock);
            d->in_flight--;
            pthread_mutex_unlock(&d->lock);
        }
    }
    store_jobs_free(jobs, n);
    if (n == (size_t)room) { /* there may be more: come back at once */
        pthread_mutex_lock(&d->lock);
        d->notified = 1;
        pthread_mutex_unlock(&d->lock);
    }
}

static void *dispatcher_main(void *arg)
{
    dispatcher *d = arg;
    int64_t next_renew = time_mono_ms() + d->cfg.lease_ms / 3;
    for (;;) {
        if (time_mono_ms() >= d->retry_at_ms)
            flush_outcomes(d);
        claim_and_submit(d);
        int64_t now = time_mono_ms();
        if (now >= next_renew) {
            /* every row under this owner is one this worker still knows (in_flight): running,
             * or with an outcome waiting to be written */
            if (store_queue_renew(d->store, d->owner, time_now_ms() + d->cfg.lease_ms) != STORE_OK)
                log_error("dispatcher: could not renew its leases");
            next_renew = now + d->cfg.lease_ms / 3;
        }
        pthread_mutex_lock(&d->lock);
        if (d->stopping && d->in_flight == 0 && !d->done) {
            pthread_mutex_unlock(&d->lock);
            break;
        }
        int flush_due = d->done && now >= d->retry_at_ms;
        if (!d->notified && !flush_due) {
            int64_t wait_ms = d->cfg.idle_poll_ms;
            if (next_renew - now < wait_ms)
                wait_ms = next_renew - now > 0 ? next_renew - now : 1;
            if (d->done && d->retry_at_ms - now < wait_ms)
                wait_ms = d->retry_at_ms - now > 0 ? d->retry_at_ms - now : 1;
            struct timespec ts;
            time_deadline(CLOCK_REALTIME, wait_ms, &ts);
            pthread_cond_timedwait(&d->wake, &d->lock, &ts);
        }
        d->notified = 0;
        pthread_mutex_unlock(&d->lock);
    }
    return NULL;
}

int dispatcher_start(store_t *store, engine_t *engine, const dispatcher_config *cfg, dispatcher **out, char *err,
                     size_t errlen)
{
    dispatcher *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    d->store = store;
    d->engine = engine;
    d->cfg = *cfg;
    if (d->cfg.lease_ms <= 0)
        d->cfg.lease_ms = 30000;
    if (d->cfg.max_in_flight <= 0)
        d->cfg.max_in_flight = 1024;
    if (d->cfg.claim_batch <= 0)
        d->cfg.claim_batch = 256;
    if (d->cfg.idle_poll_ms <= 0)
        d->cfg.idle_poll_ms = 500;
    char id[ID_LEN + 1];
    id_new(id);
    snprintf(d->owner, sizeof d->owner, "worker-%s", id);
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    if (thread_start(&d->thread, "pd-dispatcher", dispatcher_main, d) != 0) {
        snprintf(err, errlen, "cannot start the dispatcher thread");
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void dispatcher_notify(dispatcher *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->notified = 1;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
}

void dispatcher_quiesce(dispatcher *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->quiescing = 1;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
}

void dispatcher_stop(dispatcher *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->quiescing = d->stopping = 1;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    flush_outcomes(d);
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
