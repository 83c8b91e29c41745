/*
 * test_faults.c — the store refusing writes, reproduced for real, over HTTP:
 *
 *  - another process holds the database's write lock (BEGIN EXCLUSIVE through
 *    SQLite, for longer than promptd's busy timeout): /health and reads stay
 *    quick, writes fail fast with 503 and Retry-After in each surface's
 *    envelope and write nothing, /health says writes are refused; once the lock
 *    is gone, writes work again and /health says so;
 *  - the disk is full (the database on a small tmpfs, filled to the last byte;
 *    needs root to mount, skipped otherwise): writes answer 507 naming the
 *    cause, reads and /health keep working; with space back, writes work;
 *  - no answer names an execution that was not written: under the full disk
 *    (and under the foreign lock) every route that runs a model, sync,
 *    streamed, async and cluster, answers either with an execution that
 *    GET /executions/:id then shows, or with 507 (503 + Retry-After for the
 *    lock) in its envelope naming the cause, never 500, and without the
 *    model's answer.
 *
 * "Quick" is asserted loosely (under 2 s, where a stalled thread waits out the
 * 5 s busy timeout): the figures themselves are measured in bench/, not here.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include "support/harness.h"
#include "support/mock_proc.h"

#ifndef DURABLE_N
#define DURABLE_N 10 /* requests of each kind under a refusing store (-DDURABLE_N=... to measure more) */
#endif

static pd_server S;
static mock_proc M;   /* the mock provider, when a test started one */
static char mnt[256]; /* the tmpfs, when a test mounted one */

static void teardown(void)
{
    pd_stop(&S);
    mock_proc_stop(&M);
    if (mnt[0]) {
        umount2(mnt, MNT_DETACH);
        rmdir(mnt);
        mnt[0] = '\0';
    }
}

TestSuite(faults, .fini = teardown, .timeout = 90);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A request as the admin; its time in seconds into *secs. */
static pd_resp timed(const char *method, const char *path, const char *body, double *secs)
{
    pd_resp r;
    double t0 = now_s();
    int rc = pd_req(&S, method, path, S.admin_key, body, NULL, &r);
    *secs = now_s() - t0;
    cr_assert_eq(rc, 0, "%s %s: transfer failed: %s", method, path, r.error);
    return r;
}

static long prompt_count(void)
{
    double secs;
    pd_resp r = timed("GET", "/prompts?records=100", NULL, &secs);
    cr_assert_eq(r.status, 200, "%s", r.body);
    long n = (long)pd_int_at(r.json, "meta.totalRecords", -1);
    pd_resp_free(&r);
    return n;
}

/* /health: 200, quick, and its store.writes. */
static void expect_health(const char *writes, const char *reason_part)
{
    double secs;
    pd_resp r = timed("GET", "/health", NULL, &secs);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_lt(secs, 2.0, "/health took %.2f s", secs);
    cr_assert_str_eq(pd_str_at(r.json, "store.writes"), writes, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "status"), strcmp(writes, "ok") ? "degraded" : "ok", "%s", r.body);
    if (reason_part)
        cr_assert(strstr(r.body, reason_part), "/health should say why: %s", r.body);
    pd_resp_free(&r);
}

/* A write on each surface answers status quickly in that surface's envelope, naming the
 * cause, and writes nothing. */
static void expect_writes_refused(long status, const char *v1_code, const char *cause)
{
    long before = prompt_count();
    double secs;
    pd_resp j = timed("POST", "/prompts", "{\"prompt\": {\"name\": \"while refused\", \"content\": \"x\"}}", &secs);
    cr_assert_eq(j.status, status, "Jarvis write: %s", j.body);
    cr_assert_lt(secs, 2.0, "a refused write took %.2f s", secs);
    cr_assert_str_eq(pd_str_at(j.json, "errors.0.status"), status == 503 ? "503" : "507", "%s", j.body);
    cr_assert(strstr(j.body, cause), "should name the cause (%s): %s", cause, j.body);
    if (status == 503)
        cr_assert_not_null(pd_header(&j, "Retry-After"), "503 without Retry-After");
    pd_resp v = timed("POST", "/api/v1/workspaces", "{\"name\": \"while refused\"}", &secs);
    cr_assert_eq(v.status, status, "v1 write: %s", v.body);
    cr_assert_str_eq(pd_str_at(v.json, "error.code"), v1_code, "%s", v.body);
    cr_assert(json_is_false(pd_json_at(v.json, "success")), "%s", v.body);
    pd_resp_free(&j);
    pd_resp_free(&v);
    cr_assert_eq(prompt_count(), before, "a refused write left a prompt behind");
}

/* ---- no answer names an execution that was not written ---- */

typedef struct durable_tally {
    int answers;    /* requests sent */
    int named;      /* answers that named an execution */
    int unrecorded; /* ...that GET /executions/:id did not find */
    int refused;    /* answered with the store's refusal (507 / 503) */
} durable_tally;

/* Whether GET /executions/:id finds each id of a comma-separated list. */
static int all_recorded(const char *ids)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", ids);
    int ok = 1;
    for (char *save = NULL, *id = strtok_r(buf, ", ", &save); id; id = strtok_r(NULL, ", ", &save)) {
        char path[128];
        snprintf(path, sizeof path, "/executions/%s", id);
        pd_resp g;
        cr_assert_eq(pd_req(&S, "GET", path, S.admin_key, NULL, NULL, &g), 0);
        cr_assert(g.status == 200 || g.status == 404, "GET %s: %ld %s", path, g.status, g.body);
        ok &= g.status == 200;
        pd_resp_free(&g);
    }
    return ok;
}

/* One request that runs a model while the store refuses writes: it either
 * answers 2xx naming executions that are all recorded, or `refusal` (507, or
 * 503 with Retry-After) naming `cause` in its surface's envelope (JSON:API
 * errors, the OpenAI error object, or the v1 envelope), with no execution
 * named and no model output in it. `marker` is a text only the model's
 * answer would carry. */
static void run_while_refused(durable_tally *t, long refusal, const char *cause, const char *marker, const char *method,
                              const char *path, const char *body)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, method, path, S.admin_key, body, NULL, &r), 0, "%s %s: %s", method, path, r.error);
    t->answers++;
    const char *ids = pd_header(&r, "X-Execution-Id");
    if (r.status >= 200 && r.status < 300) {
        if (ids && *ids) {
            t->named++;
            t->unrecorded += !all_recorded(ids);
        }
        const char *exec_id = pd_str_at(r.json, "included.0.attributes.execution_id"); /* cluster replies */
        if (exec_id) {
            t->named++;
            t->unrecorded += !all_recorded(exec_id);
        }
        pd_resp_free(&r);
        return;
    }
    t->refused++;
    cr_assert_eq(r.status, refusal, "%s %s answered %ld: %s", method, path, r.status, r.body);
    cr_assert(strstr(r.body, cause), "%s %s should name the cause (%s): %s", method, path, cause, r.body);
    cr_assert(!ids || !*ids, "%s %s: a refusal names execution %s", method, path, ids);
    cr_assert(!strstr(r.body, marker), "%s %s: the model's answer went out unrecorded: %s", method, path, r.body);
    if (refusal == 503)
        cr_assert_not_null(pd_header(&r, "Retry-After"), "%s %s: 503 without Retry-After", method, path);
    if (strncmp(path, "/api/v1/", 8) == 0)
        cr_assert(json_is_false(pd_json_at(r.json, "success")) && pd_str_at(r.json, "error.code"),
                  "not the v1 envelope: %s", r.body);
    else if (strncmp(path, "/v1/", 4) == 0)
        cr_assert_not_null(pd_str_at(r.json, "error.message"), "not the OpenAI envelope: %s", r.body);
    else
        cr_assert_not_null(pd_str_at(r.json, "errors.0.detail"), "not the JSON:API envelope: %s", r.body);
    pd_resp_free(&r);
}

/* What runs a model, made while the store still writes. */
typedef struct model_routes {
    char prompt[64], cluster[64], conversation[64], entity[64], execution[64];
} model_routes;

static void create_at(const char *path, const char *body, char *id)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, "POST", path, S.admin_key, body, NULL, &r), 0);
    cr_assert_eq(r.status, 201, "POST %s: %s", path, r.body);
    snprintf(id, 64, "%s", pd_str_at(r.json, "data.id"));
    pd_resp_free(&r);
}

static void model_routes_make(model_routes *m)
{
    char *entity = m->entity, path[200];
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "runs", "durable {{word}}", m->prompt, sizeof m->prompt), 201);
    create_at("/entities", "{\"entity\": {\"name\": \"Ada\", \"model\": \"echo\"}}", entity);
    create_at("/clusters", "{\"cluster\": {\"name\": \"durable\"}}", m->cluster);
    snprintf(path, sizeof path, "/clusters/%s/members/%s", m->cluster, entity);
    pd_resp r;
    cr_assert_eq(pd_req(&S, "POST", path, S.admin_key, NULL, NULL, &r), 0);
    cr_assert(r.status == 200 || r.status == 201, "%s", r.body);
    pd_resp_free(&r);
    snprintf(path, sizeof path, "/clusters/%s/conversations", m->cluster);
    create_at(path, "{\"conversation\": {\"title\": \"durable\"}}", m->conversation);
    snprintf(path, sizeof path, "/prompts/%s/execute", m->prompt);
    cr_assert_eq(pd_req(&S, "POST", path, S.admin_key, "{\"variables\": {\"word\": \"x\"}}", NULL, &r), 0);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(m->execution, sizeof m->execution, "%s", pd_header(&r, "X-Execution-Id"));
    pd_resp_free(&r);
}

/* Every other kind of write while the disk is full: 507 naming the cause in
 * its surface's envelope (or a 4xx the request earns anyway), never a 500. */
static void other_writes_refused(const model_routes *m)
{
    static const char *const idem[] = {"Idempotency-Key: durable-full-1", NULL};
    struct {
        const char *method, *fmt, *body;
        int with_key;
    } w[] = {
        {"POST", "/prompts/%s/executions/%s/comments", "{\"comment\": {\"content\": \"nice\"}}", 0},
        {"PUT", "/prompts/%s/executions/%s/like", NULL, 0},
        {"PUT", "/prompts/%s/executions/%s/save", NULL, 0},
        {"PUT", "/prompts/%s/like", NULL, 0},
        {"PUT", "/prompts/%s/follow", NULL, 0},
        {"PUT", "/prompts/%s", "{\"prompt\": {\"description\": \"while full\"}}", 0},
        {"POST", "/prompts", "{\"prompt\": {\"name\": \"keyed\", \"content\": \"x\"}}", 1},
        {"POST", "/api/v1/prompt", "{\"prompt\": \"a raw prompt while full\"}", 1},
        {"POST", "/api/v1/prompts/batch", "{\"prompts\": [{\"prompt\": \"one\"}, {\"prompt\": \"two\"}]}", 1},
        {"POST", "/entities", "{\"entity\": {\"name\": \"Bo\"}}", 0},
        {"POST", "/clusters/%s/contexts", "{\"context\": {\"name\": \"c\", \"content\": \"x\"}}", 0},
        {"POST", "/api/v1/users", "{\"email\": \"full@example.com\", \"name\": \"Full\"}", 0},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        char path[300];
        if (strstr(w[i].fmt, "/clusters/%s"))
            snprintf(path, sizeof path, w[i].fmt, m->cluster);
        else
            snprintf(path, sizeof path, w[i].fmt, m->prompt, m->execution);
        pd_resp r;
        cr_assert_eq(pd_req(&S, w[i].method, path, S.admin_key, w[i].body, w[i].with_key ? idem : NULL, &r), 0);
        cr_assert(r.status < 500 || r.status == 507, "%s %s on a full disk answered %ld: %s", w[i].method, path,
                  r.status, r.body);
        if (r.status == 507)
            cr_assert(strstr(r.body, "disk is full"), "%s %s: %s", w[i].method, path, r.body);
        cr_assert(r.status >= 400, "%s %s wrote on a full disk? %ld %s", w[i].method, path, r.status, r.body);
        pd_resp_free(&r);
    }
}

/* n requests of each kind that runs a model; every answer is checked by run_while_refused. */
static durable_tally run_every_kind(const model_routes *m, int n, long refusal, const char *cause)
{
    durable_tally t = {0};
    char path[300], body[300];
    for (int i = 0; i < n; i++) {
        char marker[32];
        snprintf(marker, sizeof marker, "zq%dmark", i); /* echo answers with it: only the model's output has it */
        snprintf(body, sizeof body, "{\"variables\": {\"word\": \"%s\"}}", marker);
        snprintf(path, sizeof path, "/prompts/%s/execute", m->prompt);
        run_while_refused(&t, refusal, cause, marker, "POST", path, body);
        snprintf(path, sizeof path, "/prompts/%s/execute/stream", m->prompt);
        run_while_refused(&t, refusal, cause, marker, "POST", path, body);
        snprintf(body, sizeof body, "{\"model\": \"echo\", \"messages\": [{\"role\": \"user\", \"content\": \"%s\"}]}",
                 marker);
        run_while_refused(&t, refusal, cause, marker, "POST", "/v1/chat/completions", body);
        snprintf(body, sizeof body,
                 "{\"model\": \"echo\", \"stream\": true, \"messages\": [{\"role\": \"user\", "
                 "\"content\": \"%s\"}]}",
                 marker);
        run_while_refused(&t, refusal, cause, marker, "POST", "/v1/chat/completions", body);
        snprintf(body, sizeof body, "{\"prompt_id\": \"%s\", \"variables\": {\"word\": \"%s\"}}", m->prompt, marker);
        run_while_refused(&t, refusal, cause, marker, "POST", "/api/v1/prompt", body);
        snprintf(body, sizeof body, "{\"prompt_id\": \"%s\", \"async\": true, \"variables\": {\"word\": \"%s\"}}",
                 m->prompt, marker);
        run_while_refused(&t, refusal, cause, marker, "POST", "/api/v1/prompt", body);
        snprintf(path, sizeof path, "/clusters/%s/conversations/%s/messages", m->cluster, m->conversation);
        snprintf(body, sizeof body, "{\"message\": {\"content\": \"%s\"}}", marker);
        run_while_refused(&t, refusal, cause, marker, "POST", path, body);
    }
    return t;
}

Test(faults, a_foreign_write_lock_stalls_nothing_and_writes_fail_fast)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "before", "hello", NULL, 0), 201);
    model_routes m;
    model_routes_make(&m);
    expect_health("ok", NULL);

    sqlite3 *db = NULL;
    char *msg = NULL;
    cr_assert_eq(sqlite3_open(S.db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    cr_assert_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, &msg), SQLITE_OK, "%s", msg ? msg : "");

    /* reads answer as usual */
    double secs;
    pd_resp r = timed("GET", "/prompts", NULL, &secs);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_lt(secs, 2.0, "a read took %.2f s under the lock", secs);
    pd_resp_free(&r);
    expect_writes_refused(503, "SERVICE_UNAVAILABLE", "locked");
    expect_health("refused", "locked");
    /* a run whose record meets the lock (on the recorder: its busy timeout, twice) is refused
     * with 503 + Retry-After, not answered; a stream's record meets it before the stream starts */
    durable_tally t = {0};
    char path[200];
    snprintf(path, sizeof path, "/prompts/%s/execute", m.prompt);
    run_while_refused(&t, 503, "locked", "zqlockmark", "POST", path, "{\"variables\": {\"word\": \"zqlockmark\"}}");
    snprintf(path, sizeof path, "/prompts/%s/execute/stream", m.prompt);
    run_while_refused(&t, 503, "locked", "zqlockmark", "POST", path, "{\"variables\": {\"word\": \"zqlockmark\"}}");
    run_while_refused(&t, 503, "locked", "zqlockmark", "POST", "/v1/chat/completions",
                      "{\"messages\": [{\"role\": \"user\", \"content\": \"zqlockmark\"}]}");
    cr_assert_eq(t.unrecorded, 0);
    cr_assert_eq(t.refused, 3, "%d of 3 runs were refused under the lock", t.refused);

    cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, &msg), SQLITE_OK, "%s", msg ? msg : "");
    sqlite3_close(db);
    /* the lock is gone: writes work again (the first one may still meet the lock's tail) */
    long status = 0;
    for (int i = 0; i < 50 && status != 201; i++) {
        status = pd_create_prompt(&S, S.admin_key, "after", "hello", NULL, 0);
        if (status != 201)
            usleep(100 * 1000);
    }
    cr_assert_eq(status, 201, "writes did not come back after the lock");
    expect_health("ok", NULL);
    cr_assert_eq(prompt_count(), 3);
}

/* Fill the file system holding dir to its last byte; returns the filler's path. */
static void fill_disk(const char *dir, char *filler, size_t len)
{
    snprintf(filler, len, "%s/filler", dir);
    int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    static char block[4096];
    size_t sz = sizeof block;
    for (;;) {
        ssize_t w = write(fd, block, sz);
        if (w < 0 && errno == ENOSPC) {
            if (sz == 1)
                break;
            sz /= 2;
            continue;
        }
        cr_assert_geq(w, 0, "write: %s", strerror(errno));
    }
    close(fd);
}

Test(faults, a_full_disk_answers_507_and_reads_go_on)
{
    snprintf(mnt, sizeof mnt, "/tmp/promptd-tmpfs-XXXXXX");
    cr_assert_not_null(mkdtemp(mnt));
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=8m,mode=0700") != 0) {
        rmdir(mnt);
        mnt[0] = '\0';
        cr_skip_test("cannot mount a tmpfs here (%s): run as root to reproduce a full disk", strerror(errno));
    }
    char db_path[320];
    snprintf(db_path, sizeof db_path, "%s/promptd.db", mnt);
    const char *args[] = {"--db", db_path, NULL};
    cr_assert_eq(pd_start(&S, args, NULL), 0, "promptd did not start on the tmpfs");
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "before", "hello", NULL, 0), 201);
    model_routes m;
    model_routes_make(&m);

    char filler[400];
    fill_disk(mnt, filler, sizeof filler);
    /* the first refused write may be a few; insist until the disk's refusal shows */
    double secs;
    long status = 0;
    for (int i = 0; i < 200 && status != 507; i++) {
        char body[200];
        snprintf(body, sizeof body, "{\"prompt\": {\"name\": \"fill %d\", \"content\": \"%0120d\"}}", i, i);
        pd_resp r = timed("POST", "/prompts", body, &secs);
        status = r.status;
        cr_assert(status == 201 || status == 507, "a write on a full disk answered %ld: %s", status, r.body);
        pd_resp_free(&r);
    }
    cr_assert_eq(status, 507, "the full disk never refused a write");
    expect_writes_refused(507, "INSUFFICIENT_STORAGE", "disk is full");
    expect_health("refused", "disk is full");

    /* every kind of request that runs a model: none names an execution that was not written */
    durable_tally t = run_every_kind(&m, DURABLE_N, 507, "disk is full");
    fprintf(stderr, "full disk: %d answers, %d refused (507), %d named an execution, %d of those unrecorded\n",
            t.answers, t.refused, t.named, t.unrecorded);
    cr_assert_eq(t.unrecorded, 0, "%d answers named an execution that was not written", t.unrecorded);
    cr_assert_gt(t.refused, 0, "the full disk refused nothing");
    other_writes_refused(&m);
    expect_health("refused", "disk is full");

    cr_assert_eq(unlink(filler), 0);
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "after", "hello", NULL, 0), 201);
    expect_health("ok", NULL);
    /* with space back, the same requests run and are recorded */
    t = run_every_kind(&m, 1, 507, "disk is full");
    cr_assert_eq(t.refused, 0, "a request was still refused with space back");
    cr_assert_eq(t.unrecorded, 0);
    cr_assert_geq(t.named, 6, "%d answers named their execution", t.named);
    pd_stop(&S);
}

/* ---- a run that spans the disk filling up or freeing ---- */

/* Mount the small tmpfs and start promptd on it with the mock provider as
 * "openai"; skips the test when no tmpfs can be mounted. */
static void start_on_tmpfs_with_mock(void)
{
    snprintf(mnt, sizeof mnt, "/tmp/promptd-tmpfs-XXXXXX");
    cr_assert_not_null(mkdtemp(mnt));
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=8m,mode=0700") != 0) {
        rmdir(mnt);
        mnt[0] = '\0';
        cr_skip_test("cannot mount a tmpfs here (%s): run as root to reproduce a full disk", strerror(errno));
    }
    cr_assert_eq(mock_proc_start(&M, NULL), 0, "the mock provider did not start");
    char db_path[320], base[128];
    snprintf(db_path, sizeof db_path, "%s/promptd.db", mnt);
    snprintf(base, sizeof base, "OPENAI_BASE_URL=%s/v1", M.base_url);
    const char *args[] = {"--db", db_path, NULL};
    const char *env[] = {base, "OPENAI_API_KEY=x", NULL};
    cr_assert_eq(pd_start(&S, args, env), 0, "promptd did not start on the tmpfs");
}

/* Fill the disk and write until the store says so (a write may still fit in
 * space SQLite already had). */
static void fill_until_refused(char *filler, size_t len)
{
    fill_disk(mnt, filler, len);
    long status = 0;
    for (int i = 0; i < 200 && status != 507; i++) {
        char body[200];
        snprintf(body, sizeof body, "{\"prompt\": {\"name\": \"fill %d\", \"content\": \"%0120d\"}}", i, i);
        pd_resp r;
        cr_assert_eq(pd_req(&S, "POST", "/prompts", S.admin_key, body, NULL, &r), 0);
        status = r.status;
        pd_resp_free(&r);
    }
    cr_assert_eq(status, 507, "the full disk never refused a write");
}

typedef struct bg_req {
    pthread_t thread;
    const char *method;
    char path[200], body[300];
    pd_resp resp;
    int rc;
} bg_req;

static void *bg_main(void *arg)
{
    bg_req *b = arg;
    b->rc = pd_req(&S, b->method, b->path, S.admin_key, b->body, NULL, &b->resp);
    return NULL;
}

static void bg_start(bg_req *b) { cr_assert_eq(pthread_create(&b->thread, NULL, bg_main, b), 0); }

static void bg_join(bg_req *b)
{
    pthread_join(b->thread, NULL);
    cr_assert_eq(b->rc, 0, "%s %s: %s", b->method, b->path, b->resp.error);
}

/* The create of a run meets the full disk; space is back before the model
 * answers: the run is recorded whole (its create written with its finish)
 * and answered 200 naming it. */
Test(faults, a_create_refused_by_a_full_disk_is_written_with_its_finish)
{
    start_on_tmpfs_with_mock();
    char prompt[64], filler[400];
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "slow", "[mock:latency=2500] slow answer", prompt, sizeof prompt),
                 201);
    fill_until_refused(filler, sizeof filler);
    bg_req b = {.method = "POST"};
    snprintf(b.path, sizeof b.path, "/prompts/%s/execute", prompt);
    snprintf(b.body, sizeof b.body, "{\"model\": \"openai/gpt-4o-mini\"}");
    bg_start(&b);
    usleep(800 * 1000); /* the create was queued and refused meanwhile */
    cr_assert_eq(unlink(filler), 0);
    bg_join(&b);
    cr_assert_eq(b.resp.status, 200, "%s", b.resp.body);
    const char *id = pd_header(&b.resp, "X-Execution-Id");
    cr_assert_not_null(id);
    char path[128];
    snprintf(path, sizeof path, "/executions/%s", id);
    pd_resp_free(&b.resp);
    pd_resp g;
    cr_assert_eq(pd_req(&S, "GET", path, S.admin_key, NULL, NULL, &g), 0);
    cr_assert_eq(g.status, 200, "the execution the answer named was not written: %s", g.body);
    cr_assert_str_eq(pd_str_at(g.json, "data.attributes.status"), "completed", "%s", g.body);
    pd_resp_free(&g);
}

/* A stream started (its first row written), then the disk filled before its
 * end: the stream ends with an error event saying the execution could not be
 * recorded, not with a clean "done". */
Test(faults, a_stream_whose_final_record_is_refused_ends_with_an_error_event)
{
    start_on_tmpfs_with_mock();
    char prompt[64], filler[400];
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "drip",
                                  "[mock:drip=250] one two three four five six seven eight "
                                  "nine ten eleven twelve",
                                  prompt, sizeof prompt),
                 201);
    bg_req b = {.method = "POST"};
    snprintf(b.path, sizeof b.path, "/prompts/%s/execute/stream", prompt);
    snprintf(b.body, sizeof b.body, "{\"model\": \"openai/gpt-4o-mini\"}");
    bg_start(&b);
    usleep(600 * 1000); /* the stream is open and dripping */
    fill_until_refused(filler, sizeof filler);
    bg_join(&b);
    cr_assert_eq(b.resp.status, 200, "%s", b.resp.body);
    cr_assert(strstr(b.resp.body, "event: error"), "the stream ended cleanly: %s", b.resp.body);
    cr_assert(strstr(b.resp.body, "could not be recorded"), "%s", b.resp.body);
    cr_assert(!strstr(b.resp.body, "event: done"), "%s", b.resp.body);
    pd_resp_free(&b.resp);
}
