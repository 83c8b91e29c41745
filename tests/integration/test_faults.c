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
 *    cause, reads and /health keep working; with space back, writes work.
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

#include "support/harness.h"

static pd_server S;
static char mnt[256]; /* the tmpfs, when a test mounted one */

static void teardown(void)
{
    pd_stop(&S);
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

Test(faults, a_foreign_write_lock_stalls_nothing_and_writes_fail_fast)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "before", "hello", NULL, 0), 201);
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
    cr_assert_eq(prompt_count(), 2);
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

    cr_assert_eq(unlink(filler), 0);
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "after", "hello", NULL, 0), 201);
    expect_health("ok", NULL);
    pd_stop(&S);
}
