/*
 * recorder.c — the group-commit writer of sync executions (see recorder.h).
 *
 * Loop: wait until something is queued, take up to RECORDER_BATCH_MAX ops,
 * write them in one transaction, run their callbacks, free them. If the
 * transaction as a whole fails (a full disk, an I/O error), each op is
 * written again in its own transaction, so one bad op cannot take the
 * others down with it.
 *
 * A create that failed is kept in the stash (recorder thread only) instead of
 * freed; its finish takes it out and writes it first, so an execution whose
 * create met a moment of full disk is still recorded whole when space is back
 * by its end, and the finish's callback learns why when it is not.
 */
#include "core/recorder.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/thread.h"

#define RECORDER_BATCH_MAX 1024 /* ops per transaction: bounds one COMMIT's latency */

typedef struct rec_op {
    struct rec_op *next;
    int is_create;
    store_execution row;          /* create: the row, owning its strings */
    store_id finish_id;           /* finish */
    store_execution_result res;   /* finish: strings below */
    char *model, *output, *error, *tool_calls; /* owned */
    recorder_done_fn done;
    void *ud;
    enum store_failure why; /* a stashed create: why it could not be written */
    int retried;            /* a stashed create written again before its finish */
} rec_op;

struct recorder {
    store_t *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    rec_op *head, *tail; /* guarded by lock */
    int stopping;        /* guarded by lock */
    /* recorder thread only: a batch is its ops plus, before a finish, the
     * create of that execution taken back from the stash */
    store_exec_write batch[2 * RECORDER_BATCH_MAX];
    rec_op *batch_op[2 * RECORDER_BATCH_MAX];
    enum store_failure batch_why[2 * RECORDER_BATCH_MAX];
    rec_op *ops[RECORDER_BATCH_MAX];
    rec_op *stash; /* creates that could not be written, waiting for their finish (recorder thread) */
};

static char *copy_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* strdup that keeps NULL as NULL; *failed is set when a copy failed. */
static char *copy_opt(const char *s, int *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = 1;
    return d;
}

static void op_free(rec_op *op)
{
    if (!op)
        return;
    store_execution_clear(&op->row);
    free(op->model);
    free(op->output);
    free(op->error);
    free(op->tool_calls);
    free(op);
}

/* Queue op, whose copies succeeded unless copy_failed; on any failure op is
 * freed and nothing was queued. */
static int enqueue(recorder *r, rec_op *op, int copy_failed)
{
    if (copy_failed) {
        op_free(op);
        return -1;
    }
    pthread_mutex_lock(&r->lock);
    if (r->stopping) {
        pthread_mutex_unlock(&r->lock);
        op_free(op);
        return -1;
    }
    if (r->tail)
        r->tail->next = op;
    else
        r->head = op;
    r->tail = op;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

int recorder_create(recorder *r, const store_execution *e)
{
    if (!r)
        return -1;
    rec_op *op = calloc(1, sizeof *op);
    if (!op)
        return -1;
    int failed = 0;
    op->is_create = 1;
    op->row = *e; /* fixed-size fields; the strings are copied below */
    op->row.rendered_prompt = copy_opt(e->rendered_prompt, &failed);
    op->row.messages = copy_opt(e->messages, &failed);
    op->row.variables = copy_opt(e->variables, &failed);
    op->row.metadata = copy_opt(e->metadata, &failed);
    op->row.model = copy_opt(e->model, &failed);
    op->row.output = NULL;
    op->row.error = NULL;
    return enqueue(r, op, failed);
}

int recorder_finish(recorder *r, const char *id, const store_execution_result *res, recorder_done_fn done, void *ud)
{
    if (!r)
        return -1;
    rec_op *op = calloc(1, sizeof *op);
    if (!op)
        return -1;
    int failed = 0;
    snprintf(op->finish_id, sizeof op->finish_id, "%s", id);
    op->res = *res;
    op->model = copy_opt(res->model, &failed);
    op->error = copy_opt(res->error, &failed);
    op->tool_calls = copy_opt(res->tool_calls, &failed);
    if (res->output) {
        op->output = copy_n(res->output, res->output_len);
        failed |= op->output == NULL;
    }
    op->res.model = op->model;
    op->res.error = op->error;
    op->res.output = op->output;
    op->res.tool_calls = op->tool_calls;
    op->done = done;
    op->ud = ud;
    return enqueue(r, op, failed);
}

/* Take the stashed create of execution id out of the stash, or NULL. */
static rec_op *stash_take(recorder *r, const char *id)
{
    for (rec_op **p = &r->stash; *p; p = &(*p)->next) {
        if (strcmp((*p)->row.id, id) == 0) {
            rec_op *op = *p;
            *p = op->next;
            op->next = NULL;
            return op;
        }
    }
    return NULL;
}

/* Why the write that just failed on this thread failed (OTHER when the store
 * did not say: a constraint, a bug). */
static enum store_failure failure_now(void)
{
    enum store_failure why = store_last_failure();
    return why == STORE_FAIL_NONE ? STORE_FAIL_OTHER : why;
}

/* Write the n ops taken from the queue, each finish preceded by its stashed
 * create if it has one: one transaction, or, if that fails, one each.
 * Returns the number of batch entries (r->batch_op, r->batch, r->batch_why). */
static size_t write_batch(recorder *r, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        rec_op *op = r->ops[i];
        rec_op *again = op->is_create ? NULL : stash_take(r, op->finish_id);
        if (again) {
            again->retried = 1;
            r->batch_op[m] = again;
            r->batch[m++] = (store_exec_write){.create = &again->row, .rc = STORE_ERR};
        }
        r->batch_op[m] = op;
        r->batch[m++] = (store_exec_write){
            .create = op->is_create ? &op->row : NULL, .finish_id = op->finish_id, .finish = &op->res, .rc = STORE_ERR};
    }
    store_failure_reset();
    if (store_executions_write(r->store, r->batch, m) == STORE_OK) {
        /* committed; an op that failed alone broke a rule (a constraint) */
        for (size_t j = 0; j < m; j++)
            r->batch_why[j] = r->batch[j].rc == STORE_ERR ? STORE_FAIL_OTHER : STORE_FAIL_NONE;
        return m;
    }
    enum store_failure why = failure_now();
    if (why != STORE_FAIL_OTHER) {
        /* the lock, the disk or the file refused the transaction: each op
         * alone would meet the same refusal (and a lock its busy timeout
         * again, once per op), so all of them failed for that reason */
        log_warn("recorder: a batch of %zu execution writes failed: %s", m, store_failure_text(why));
        for (size_t j = 0; j < m; j++) {
            r->batch[j].rc = STORE_ERR;
            r->batch_why[j] = why;
        }
        return m;
    }
    log_warn("recorder: a batch of %zu execution writes failed; writing them one by one", m);
    for (size_t j = 0; j < m; j++) {
        rec_op *op = r->batch_op[j];
        store_failure_reset();
        r->batch[j].rc = r->batch[j].create ? store_execution_create(r->store, &op->row)
                                            : store_execution_finish(r->store, op->finish_id, &op->res);
        r->batch_why[j] = r->batch[j].rc == STORE_ERR ? failure_now() : STORE_FAIL_NONE;
    }
    return m;
}

/* After the write: keep the creates that failed, run the finishes' callbacks
 * (with why their execution is not durable, if it is not), free the rest. */
static void settle_batch(recorder *r, size_t m)
{
    enum store_failure create_why = STORE_FAIL_NONE; /* the retried create just before a finish */
    for (size_t j = 0; j < m; j++) {
        rec_op *op = r->batch_op[j];
        int rc = r->batch[j].rc;
        enum store_failure why = r->batch_why[j];
        if (op->is_create) {
            if (rc == STORE_OK) {
                op_free(op);
            } else if (op->retried) { /* its finish (next) is the last chance: it reports this */
                log_error("execution %s: could not record it (%s)", op->row.id, store_failure_text(why));
                create_why = why;
                op_free(op);
            } else { /* kept for its finish to try again */
                log_warn("execution %s: could not record it yet (%s)", op->row.id, store_failure_text(why));
                op->why = why;
                op->next = r->stash;
                r->stash = op;
            }
            continue;
        }
        if (create_why != STORE_FAIL_NONE) {
            why = create_why;
            create_why = STORE_FAIL_NONE;
        } else if (why == STORE_FAIL_NONE) {
            /* its create failed in this very batch (so it was not retried) */
            rec_op *lost = stash_take(r, op->finish_id);
            if (lost) {
                why = lost->why;
                log_error("execution %s: could not record it (%s)", lost->row.id, store_failure_text(why));
                op_free(lost);
            }
        }
        if (op->done)
            op->done(op->ud, rc, why);
        op_free(op);
    }
}

static void *recorder_main(void *arg)
{
    recorder *r = arg;

    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (!r->head && !r->stopping)
            pthread_cond_wait(&r->wake, &r->lock);
        if (!r->head)
            break; /* stopping, and everything is written */
        size_t n = 0;
        while (r->head && n < RECORDER_BATCH_MAX) {
            r->ops[n++] = r->head;
            r->head = r->head->next;
        }
        if (!r->head)
            r->tail = NULL;
        pthread_mutex_unlock(&r->lock);

        settle_batch(r, write_batch(r, n));
        pthread_mutex_lock(&r->lock);
        if (!r->head && !r->stopping) { /* nobody is waiting for a write: the store's upkeep */
            pthread_mutex_unlock(&r->lock);
            store_writer_idle(r->store);
            pthread_mutex_lock(&r->lock);
        }
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

int recorder_start(store_t *store, recorder **out, char *err, size_t errlen)
{
    *out = NULL;
    recorder *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "recorder: out of memory");
        return -1;
    }
    r->store = store;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    int rc = thread_start(&r->thread, "pd-recorder", recorder_main, r);
    if (rc != 0) {
        snprintf(err, errlen, "recorder: cannot start the thread: %s", strerror(rc));
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

void recorder_stop(recorder *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL); /* the thread writes what is queued first */
    /* creates whose finish went another way (written inline): never recorded */
    while (r->stash) {
        rec_op *op = r->stash;
        r->stash = op->next;
        log_error("execution %s: never recorded (%s)", op->row.id, store_failure_text(op->why));
        op_free(op);
    }
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
