/*
 * test_recorder.c — core/recorder.c on a temp SQLite file: a finish's
 * callback runs only once its row is committed (and after the create queued
 * before it), a finish of an unknown execution reports STORE_CONFLICT, a bad
 * create does not take its batch down, many threads queueing at once lose
 * nothing, and stopping writes everything still queued.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/ids.h"
#include "core/log.h"
#include "core/recorder.h"
#include "store/store.h"
#include "support/harness.h"

static char DIR_[256], PATH[320];
static store_t *ST;
static store_key ORG;

static void setup(void)
{
    cr_assert_geq(sodium_init(), 0);
    log_set_level(LOG_WARN);
    cr_assert_eq(pd_mkdtemp(DIR_, sizeof DIR_), 0);
    snprintf(PATH, sizeof PATH, "%s/store.db", DIR_);
    char err[256];
    cr_assert_eq(store_open(PATH, &ST, err, sizeof err), STORE_OK, "%s", err);
    char prefix[STORE_KEY_PREFIX_LEN + 1] = "pk_test_recorder";
    unsigned char hash[STORE_KEY_HASH_LEN] = {1};
    cr_assert_eq(store_key_create_for_org(ST, "org", "k", prefix, hash, &ORG), STORE_OK);
}

static void teardown(void)
{
    store_close(ST);
    ST = NULL;
    pd_rmrf(DIR_);
}

TestSuite(recorder, .init = setup, .fini = teardown, .timeout = 60);

/* A new "processing" execution of ORG with a fresh id. */
static store_execution new_row(const char *org_id)
{
    store_execution e = {0};
    id_new(e.id);
    snprintf(e.org_id, sizeof e.org_id, "%s", org_id);
    snprintf(e.user_id, sizeof e.user_id, "%s", ORG.user_id);
    snprintf(e.source, sizeof e.source, "chat");
    snprintf(e.status, sizeof e.status, "processing");
    e.rendered_prompt = "hello";
    e.messages = "[{\"role\":\"user\",\"content\":\"hello\"}]";
    e.model = "echo";
    return e;
}

typedef struct seen {
    pthread_mutex_t lock;
    int calls, rc, row_status_ok;
    enum store_failure why;
    char output[64];
} seen;

/* Recorder thread: read the row back; it must already be final. */
static void on_done(void *ud, int store_rc, enum store_failure why)
{
    seen *s = ud;
    pthread_mutex_lock(&s->lock);
    s->calls++;
    s->rc = store_rc;
    s->why = why;
    pthread_mutex_unlock(&s->lock);
}

static const store_execution_result RESULT = {.status = "completed", .model = "echo", .output = "hello",
                                              .output_len = 5, .total_tokens = 3, .duration_ms = 7};

static int wait_calls(seen *s, int n)
{
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock(&s->lock);
        int c = s->calls;
        pthread_mutex_unlock(&s->lock);
        if (c >= n)
            return c;
        usleep(1000);
    }
    return -1;
}

Test(recorder, finish_callback_runs_after_commit)
{
    recorder *r;
    char err[128];
    cr_assert_eq(recorder_start(ST, &r, err, sizeof err), 0, "%s", err);
    store_execution e = new_row(ORG.org_id);
    seen s = {.lock = PTHREAD_MUTEX_INITIALIZER, .rc = -100};
    cr_assert_eq(recorder_create(r, &e), 0);
    cr_assert_eq(recorder_finish(r, e.id, &RESULT, on_done, &s), 0);
    cr_assert_eq(wait_calls(&s, 1), 1);
    cr_assert_eq(s.rc, STORE_OK);
    cr_assert_eq(s.why, STORE_FAIL_NONE);
    store_execution got;
    cr_assert_eq(store_execution_get(ST, ORG.org_id, NULL, e.id, NULL, &got), STORE_OK);
    cr_assert_str_eq(got.status, "completed");
    cr_assert_str_eq(got.output, "hello");
    cr_assert_eq(got.total_tokens, 3);
    cr_assert_str_eq(got.rendered_prompt, "hello");
    store_execution_clear(&got);
    recorder_stop(r);
}

Test(recorder, unknown_execution_is_a_conflict_and_bad_create_stays_alone)
{
    recorder *r;
    char err[128];
    cr_assert_eq(recorder_start(ST, &r, err, sizeof err), 0, "%s", err);
    /* an org that does not exist violates the foreign key: that insert fails, its neighbours commit */
    store_execution good1 = new_row(ORG.org_id), bad = new_row("no-such-org"), good2 = new_row(ORG.org_id);
    seen s1 = {.lock = PTHREAD_MUTEX_INITIALIZER}, sb = {.lock = PTHREAD_MUTEX_INITIALIZER},
         s2 = {.lock = PTHREAD_MUTEX_INITIALIZER}, sx = {.lock = PTHREAD_MUTEX_INITIALIZER};
    cr_assert_eq(recorder_create(r, &good1), 0);
    cr_assert_eq(recorder_create(r, &bad), 0);
    cr_assert_eq(recorder_create(r, &good2), 0);
    cr_assert_eq(recorder_finish(r, good1.id, &RESULT, on_done, &s1), 0);
    cr_assert_eq(recorder_finish(r, bad.id, &RESULT, on_done, &sb), 0);
    cr_assert_eq(recorder_finish(r, good2.id, &RESULT, on_done, &s2), 0);
    cr_assert_eq(recorder_finish(r, "0190aaaa-0000-7000-8000-000000000000", &RESULT, on_done, &sx), 0);
    recorder_stop(r); /* writes everything queued first */
    cr_assert_eq(s1.calls, 1);
    cr_assert_eq(s1.rc, STORE_OK);
    cr_assert_eq(s2.rc, STORE_OK);
    cr_assert_eq(sb.calls, 1);
    cr_assert_eq(sb.rc, STORE_CONFLICT, "the finish of a row that was never written: %d", sb.rc);
    cr_assert_eq(sb.why, STORE_FAIL_OTHER, "the finish must say its execution is not durable");
    cr_assert_eq(s1.why, STORE_FAIL_NONE);
    cr_assert_eq(s2.why, STORE_FAIL_NONE);
    cr_assert_eq(sx.rc, STORE_CONFLICT);
    store_execution got;
    cr_assert_eq(store_execution_get(ST, ORG.org_id, NULL, good2.id, NULL, &got), STORE_OK);
    cr_assert_str_eq(got.status, "completed");
    store_execution_clear(&got);
}

/* ---- many producers at once; stop with work still queued ---- */

#define PRODUCERS 8
#define PER_PRODUCER 250

static atomic_int DONE_OK;

static void count_done(void *ud, int rc, enum store_failure why)
{
    (void)ud;
    (void)why;
    if (rc == STORE_OK)
        atomic_fetch_add(&DONE_OK, 1);
}

static void *producer(void *arg)
{
    recorder *r = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        store_execution e = new_row(ORG.org_id);
        if (recorder_create(r, &e) != 0 || recorder_finish(r, e.id, &RESULT, count_done, NULL) != 0)
            return (void *)1;
    }
    return NULL;
}

Test(recorder, concurrent_producers_then_stop_loses_nothing)
{
    recorder *r;
    char err[128];
    atomic_store(&DONE_OK, 0);
    cr_assert_eq(recorder_start(ST, &r, err, sizeof err), 0, "%s", err);
    pthread_t t[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, producer, r), 0);
    for (int i = 0; i < PRODUCERS; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        cr_assert_null(ret);
    }
    recorder_stop(r); /* immediately: what is still queued must be written now */
    cr_assert_eq(atomic_load(&DONE_OK), PRODUCERS * PER_PRODUCER);
    store_execution_query q = {.limit = 1, .status = "completed"};
    store_execution_page page;
    cr_assert_eq(store_execution_list(ST, ORG.org_id, NULL, &q, &page), STORE_OK);
    cr_assert_eq(page.total, PRODUCERS * PER_PRODUCER);
    store_execution_page_free(&page);
}

/* ---- a create the store refused: kept, written again with its finish ---- */

/* Another connection holds the database's write lock until lock_release. */
static sqlite3 *lock_take(void)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    cr_assert_eq(sqlite3_open(PATH, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, &msg), SQLITE_OK, "%s", msg ? msg : "");
    return db;
}

static void lock_release(sqlite3 *db)
{
    cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* The create meets a foreign lock (and fails after the 5 s busy timeout);
 * the lock is gone by the finish: the execution is recorded whole. */
Test(recorder, a_refused_create_is_written_with_its_finish)
{
    recorder *r;
    char err[128];
    cr_assert_eq(recorder_start(ST, &r, err, sizeof err), 0, "%s", err);
    sqlite3 *db = lock_take();
    store_execution e = new_row(ORG.org_id);
    cr_assert_eq(recorder_create(r, &e), 0);
    sleep(7); /* past the busy timeout: the create failed */
    store_execution got;
    lock_release(db);
    cr_assert_eq(store_execution_get(ST, ORG.org_id, NULL, e.id, NULL, &got), STORE_NOTFOUND,
                 "the create should have met the lock");
    seen s = {.lock = PTHREAD_MUTEX_INITIALIZER, .rc = -100};
    cr_assert_eq(recorder_finish(r, e.id, &RESULT, on_done, &s), 0);
    cr_assert_eq(wait_calls(&s, 1), 1);
    cr_assert_eq(s.rc, STORE_OK);
    cr_assert_eq(s.why, STORE_FAIL_NONE);
    cr_assert_eq(store_execution_get(ST, ORG.org_id, NULL, e.id, NULL, &got), STORE_OK);
    cr_assert_str_eq(got.status, "completed");
    cr_assert_str_eq(got.rendered_prompt, "hello");
    store_execution_clear(&got);
    recorder_stop(r);
}

/* Still locked at the finish: its callback says the execution is not durable, and why. */
Test(recorder, a_finish_says_why_its_execution_is_not_durable)
{
    recorder *r;
    char err[128];
    cr_assert_eq(recorder_start(ST, &r, err, sizeof err), 0, "%s", err);
    sqlite3 *db = lock_take();
    store_execution e = new_row(ORG.org_id);
    seen s = {.lock = PTHREAD_MUTEX_INITIALIZER, .rc = -100};
    cr_assert_eq(recorder_create(r, &e), 0);
    cr_assert_eq(recorder_finish(r, e.id, &RESULT, on_done, &s), 0);
    cr_assert_eq(wait_calls(&s, 1), 1);
    lock_release(db);
    cr_assert_neq(s.rc, STORE_OK);
    cr_assert_eq(s.why, STORE_FAIL_BUSY, "why: %d", s.why);
    store_execution got;
    cr_assert_eq(store_execution_get(ST, ORG.org_id, NULL, e.id, NULL, &got), STORE_NOTFOUND);
    recorder_stop(r);
}

Test(recorder, calls_after_stop_are_refused)
{
    cr_assert_eq(recorder_create(NULL, &(store_execution){0}), -1);
    cr_assert_eq(recorder_finish(NULL, "x", &RESULT, NULL, NULL), -1);
    recorder_stop(NULL);
}

/* The WAL's size in bytes and its checkpoint sequence (bytes 12-15 of its
 * header, big-endian: SQLite adds one each time the WAL starts over). */
static void wal_state(long *size, unsigned *seq)
{
    char path[360];
    unsigned char h[16] = {0};
    snprintf(path, sizeof path, "%s-wal", PATH);
    FILE *f = fopen(path, "rb");
    *size = 0;
    *seq = 0;
    if (!f)
        return;
    if (fread(h, 1, sizeof h, f) == sizeof h)
        *seq = (unsigned)h[12] << 24 | (unsigned)h[13] << 16 | (unsigned)h[14] << 8 | h[15];
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fclose(f);
}

/* A steady writer that is idle between batches, as the recorder is between
 * requests: about 2.5 times the checkpoint size (10,000 pages) of answers
 * goes through it, and the WAL starts over along the way instead of growing
 * (store/sqlite.c, "checkpoints"). */
Test(recorder, the_wal_starts_over_under_a_steady_writer)
{
    enum { BATCHES = 120, PER_BATCH = 12, OUTPUT = 64 * 1024 };
    static char output[OUTPUT];
    memset(output, 'x', sizeof output);
    store_execution_result res = RESULT;
    res.output = output;
    res.output_len = sizeof output;
    recorder *r;
    char err[128];
    cr_assert_eq(recorder_start(ST, &r, err, sizeof err), 0, "%s", err);
    long size, max_size = 0;
    unsigned seq, first_seq, restarts = 0;
    wal_state(&size, &first_seq);
    seq = first_seq;
    for (int b = 0; b < BATCHES; b++) {
        seen s = {.lock = PTHREAD_MUTEX_INITIALIZER};
        for (int i = 0; i < PER_BATCH; i++) {
            store_execution e = new_row(ORG.org_id);
            cr_assert_eq(recorder_create(r, &e), 0);
            cr_assert_eq(recorder_finish(r, e.id, &res, on_done, &s), 0);
        }
        cr_assert_eq(wait_calls(&s, PER_BATCH), PER_BATCH, "batch %d was not written", b);
        unsigned now;
        wal_state(&size, &now);
        if (size > max_size)
            max_size = size;
        if (now != seq)
            restarts++;
        seq = now;
        usleep(10 * 1000); /* the writer is idle between requests */
    }
    recorder_stop(r);
    cr_assert_geq(restarts, 1, "the WAL never started over (sequence %u, largest %ld bytes)", first_seq, max_size);
    /* 10,000 pages of 4 KiB and their 24-byte frame headers, twice, plus a batch */
    cr_assert_lt(max_size, 2L * 10000 * (4096 + 24) + PER_BATCH * 20 * 4120, "the WAL grew to %ld bytes", max_size);
}
