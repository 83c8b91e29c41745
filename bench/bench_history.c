/*
 * bench_history.c — the spec 002 history query at scale (issue 4, item 9).
 *
 * Fills a fresh SQLite database through the store API (the same code promptd
 * runs) with one organization, U users, W workspaces, D data sources, P
 * prompts (90% of them executed, 10% drafts) and N executions arriving in
 * time order over the last 120 days (store_bench_execution_insert_bulk: 10,000 rows per
 * transaction, the history triggers of migration 0005 running on every row),
 * then times store_history_list — the exact call behind
 * GET /api/v1/prompts/history — for Q pages with varying filters:
 *
 *   history+search   user + status + time_period + FTS5 search, sorted, page 1..3
 *   history          the same filters without search (baseline 1)
 *   LIKE search      the same search as LIKE '%word%' scans (baseline 2, raw SQL)
 *   group-by         the same filtered page computed from executions with
 *                    GROUP BY prompt_id, i.e. without the denormalised
 *                    latest-execution columns (baseline 3, raw SQL)
 *
 * The baselines' SQL lives here, not in src/, because promptd never runs it:
 * it is what the history would cost without the design choices measured.
 * Every query answers a COUNT for the pagination object and one page.
 *
 *   bench_history [--executions N] [--prompts P] [--users U] [--queries Q]
 *                 [--db PATH] [--keep] [--reuse] [--slow MS]
 * Defaults: 1,000,000 executions, 50,000 prompts, 10 users, 200 queries.
 * --reuse with --db: query a database a previous run filled (and kept), without filling it again.
 * Build and run: make bench-history (BENCH_ARGS="..." passes arguments).
 */
#include <sodium.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "store/store.h"

#define WORKSPACES 8
#define DATA_SOURCES 20
#define CHUNK 10000
#define DAY_MS 86400000LL

static const char *const WORDS[] = {
    "sales",      "revenue",  "churn",     "region",   "customer", "forecast",  "margin",    "pipeline",
    "quarter",    "invoice",  "refund",    "supplier", "shipment", "warehouse", "inventory", "budget",
    "payroll",    "hiring",   "retention", "campaign", "funnel",   "cohort",    "segment",   "pricing",
    "discount",   "contract", "renewal",   "support",  "ticket",   "latency",   "outage",    "incident",
    "deploy",     "release",  "feature",   "roadmap",  "summary",  "report",    "trend",     "anomaly",
    "growth",     "decline",  "weekly",    "monthly",  "annual",   "europe",    "america",   "asia",
    "partner",    "vendor",   "product",   "service",  "order",    "return",    "audit",     "risk",
    "compliance", "policy",   "security",  "access",   "usage",    "billing",   "quota",     "capacity"};
#define NWORDS (sizeof WORDS / sizeof WORDS[0])

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static long rand_below(long n) { return (long)(next_rand() % (uint64_t)n); }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* p-th percentile (0..100) of n sorted values, nearest rank. */
static double pct(const double *v, size_t n, double p)
{
    size_t i = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (i < 1)
        i = 1;
    if (i > n)
        i = n;
    return v[i - 1];
}

typedef struct series {
    const char *name;
    double *ms;
    size_t n;
    long rows; /* total_items summed, to show the work is the same */
} series;

static void report(series *s, double base_p50)
{
    qsort(s->ms, s->n, sizeof *s->ms, cmp_double);
    double p50 = pct(s->ms, s->n, 50), p99 = pct(s->ms, s->n, 99);
    printf("  %-16s %5zu queries  p50 %9.3f ms  p99 %9.3f ms  max %9.3f ms", s->name, s->n, p50, p99, s->ms[s->n - 1]);
    if (base_p50 > 0)
        printf("  p50 x%.1f", p50 / base_p50);
    printf("  (avg total_items %ld)\n", s->n ? s->rows / (long)s->n : 0);
}

/* One query's parameters, drawn once and used by every variant. */
typedef struct qparams {
    int user;
    const char *status; /* NULL = any */
    int period_days;    /* 0 = all */
    const char *word;
    enum store_history_sort sort;
    int desc;
    long page;
} qparams;

static const char *PERIOD_NAMES[] = {"all", "last_7_days", "last_30_days", "last_90_days"};
static const int PERIOD_DAYS[] = {0, 7, 30, 90};

/* ---------------------------------------------------------------- raw-SQL baselines */

static const char *order_sql(const qparams *q, int grouped)
{
    static char buf[128];
    const char *dir = q->desc ? "DESC" : "ASC";
    const char *ts = grouped ? "l.ts" : "coalesce(p.last_executed_at, p.created_at)";
    switch (q->sort) {
    case STORE_HSORT_STATUS:
        snprintf(buf, sizeof buf, "%s %s, %s %s", grouped ? "e.status" : "p.last_status", dir, ts, dir);
        break;
    case STORE_HSORT_DURATION:
        snprintf(buf, sizeof buf, "%s %s", grouped ? "e.duration_ms" : "p.last_duration_ms", dir);
        break;
    default: snprintf(buf, sizeof buf, "%s %s", ts, dir); break;
    }
    return buf;
}

/* Run a count + page pair of raw SQL statements; returns the count or -1. */
static long run_pair(sqlite3 *db, const char *where_sql, const char *cols, const char *order, const char *org,
                     const char *user, const qparams *q, int64_t since, const char *like)
{
    char sql[2048];
    long total = -1;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0)
            snprintf(sql, sizeof sql, "SELECT count(*) %s", where_sql);
        else
            snprintf(sql, sizeof sql, "SELECT %s %s ORDER BY %s LIMIT 20 OFFSET ?6", cols, where_sql, order);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
            fprintf(stderr, "baseline prepare: %s\n%s\n", sqlite3_errmsg(db), sql);
            return -1;
        }
        sqlite3_bind_text(st, 1, org, -1, SQLITE_STATIC);
        if (user)
            sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
        if (q->status)
            sqlite3_bind_text(st, 3, q->status, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, since);
        if (like)
            sqlite3_bind_text(st, 5, like, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, (q->page - 1) * 20);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            if (pass == 0)
                total = (long)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            fprintf(stderr, "baseline step: %s\n", sqlite3_errmsg(db));
            return -1;
        }
    }
    return total;
}

/* The same search as LIKE scans over name and content (user NULL: the whole organization). */
static long like_query(sqlite3 *db, const char *org, const char *user, const qparams *q, int64_t since)
{
    char where_sql[512], like[64];
    snprintf(like, sizeof like, "%%%s%%", q->word);
    snprintf(where_sql, sizeof where_sql,
             "FROM prompts p WHERE p.org_id = ?1 %s %s AND coalesce(p.last_executed_at, p.created_at) >= ?4 AND "
             "(p.name LIKE ?5 OR p.content LIKE ?5)",
             user ? "AND p.user_id = ?2" : "", q->status ? "AND p.last_status = ?3" : "");
    return run_pair(db, where_sql, "p.id, p.name, p.content, p.last_status, p.last_duration_ms", order_sql(q, 0), org,
                    user, q, since, like);
}

/* The filtered page computed from executions (no denormalised columns). Drafts are left out. */
static long grouped_query(sqlite3 *db, const char *org, const char *user, const qparams *q, int64_t since)
{
    char where_sql[1024];
    snprintf(where_sql, sizeof where_sql,
             "FROM (SELECT prompt_id, max(created_at) AS ts FROM executions WHERE org_id = ?1 AND user_id = ?2 "
             "AND prompt_id IS NOT NULL GROUP BY prompt_id) l "
             "JOIN prompts p ON p.id = l.prompt_id "
             "JOIN executions e ON e.prompt_id = l.prompt_id AND e.created_at = l.ts "
             "WHERE p.org_id = ?1 %s AND l.ts >= ?4",
             q->status ? "AND e.status = ?3" : "");
    return run_pair(db, where_sql, "p.id, p.name, p.content, e.status, e.duration_ms", order_sql(q, 1), org, user, q,
                    since, NULL);
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(stderr, "usage: bench_history [--executions N] [--prompts P] [--users U] [--queries Q] [--db PATH] "
                    "[--keep] [--reuse]\n");
}

int main(int argc, char **argv)
{
    long n_exec = 1000000, n_prompts = 50000, n_users = 10, n_queries = 200;
    const char *db_arg = NULL;
    int keep = 0, reuse = 0, rc = 1;
    double slow_ms = 0; /* --slow MS: print the parameters of history queries slower than this */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--executions") && i + 1 < argc)
            n_exec = atol(argv[++i]);
        else if (!strcmp(argv[i], "--prompts") && i + 1 < argc)
            n_prompts = atol(argv[++i]);
        else if (!strcmp(argv[i], "--users") && i + 1 < argc)
            n_users = atol(argv[++i]);
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc)
            n_queries = atol(argv[++i]);
        else if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db_arg = argv[++i];
        else if (!strcmp(argv[i], "--keep"))
            keep = 1;
        else if (!strcmp(argv[i], "--reuse"))
            reuse = 1;
        else if (!strcmp(argv[i], "--slow") && i + 1 < argc)
            slow_ms = atof(argv[++i]);
        else {
            usage();
            return 2;
        }
    }
    if (n_exec < 1 || n_prompts < 10 || n_users < 1 || n_queries < 1 || (reuse && !db_arg)) {
        usage();
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (reuse)
        keep = 1;
    if (sodium_init() < 0) {
        fprintf(stderr, "bench_history: libsodium init failed\n");
        return 1;
    }

    char dir[] = "/tmp/bench_history.XXXXXX", path[256];
    if (db_arg) {
        snprintf(path, sizeof path, "%s", db_arg);
    } else {
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(path, sizeof path, "%s/history.db", dir);
    }
    if (!reuse)
        unlink(path);

    store_t *s = NULL;
    char err[256];
    store_id *users = calloc((size_t)n_users, sizeof *users);
    store_id *prompts = calloc((size_t)n_prompts, sizeof *prompts);
    int *prompt_owner = calloc((size_t)n_prompts, sizeof *prompt_owner);
    store_execution *batch = calloc(CHUNK, sizeof *batch);
    enum { NSER = 6 };
    series ser[NSER] = {{"history+search", NULL, 0, 0}, {"history", NULL, 0, 0},    {"LIKE search", NULL, 0, 0},
                        {"group-by", NULL, 0, 0},       {"org+search", NULL, 0, 0}, {"org LIKE search", NULL, 0, 0}};
    qparams *qs = calloc((size_t)n_queries, sizeof *qs);
    sqlite3 *raw = NULL;
    if (!users || !prompts || !prompt_owner || !batch || !qs) {
        fprintf(stderr, "bench_history: out of memory\n");
        goto out;
    }
    for (int i = 0; i < NSER; i++)
        if (!(ser[i].ms = calloc((size_t)n_queries, sizeof(double))))
            goto out;
    if (store_open(path, &s, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "bench_history: %s\n", err);
        goto out;
    }
    store_key admin;
    int64_t now = time_now_ms();
    if (reuse) {
        store_user_page up;
        if (store_key_find(s, "pk_live_benchkey", &admin) != STORE_OK ||
            store_user_list(s, admin.org_id, 0, n_users, &up) != STORE_OK) {
            fprintf(stderr, "bench_history: %s was not filled by bench_history\n", path);
            goto out;
        }
        n_users = (long)up.count;
        for (size_t u = 0; u < up.count; u++)
            memcpy(users[u], up.items[u].id, sizeof users[u]);
        store_user_page_free(&up);
        printf("bench_history: reusing %s (%ld users)\n", path, n_users);
        goto filled;
    }
    printf("bench_history: %ld executions, %ld prompts, %ld users, %d workspaces, %d data sources (SQLite %s)\n",
           n_exec, n_prompts, n_users, WORKSPACES, DATA_SOURCES, sqlite3_libversion());
    printf("database: %s\n", path);

    /* ---- the organization and what its filters name */
    double t0 = now_s();
    unsigned char hash[STORE_KEY_HASH_LEN] = {0};
    if (store_key_create_for_org(s, "bench", "bench", "pk_live_benchkey", hash, &admin) != STORE_OK)
        goto out;
    memcpy(users[0], admin.user_id, sizeof users[0]);
    for (long u = 1; u < n_users; u++) {
        char email[64];
        snprintf(email, sizeof email, "user%ld@bench.example", u);
        store_user su = {0};
        memcpy(su.org_id, admin.org_id, sizeof su.org_id);
        su.email = email;
        snprintf(su.role, sizeof su.role, "member");
        if (store_user_create(s, &su) != STORE_OK)
            goto out;
        memcpy(users[u], su.id, sizeof users[u]);
    }
    store_id ws[WORKSPACES], ds[DATA_SOURCES];
    for (int i = 0; i < WORKSPACES; i++) {
        char name[32];
        snprintf(name, sizeof name, "workspace %d", i);
        store_workspace w = {0};
        memcpy(w.org_id, admin.org_id, sizeof w.org_id);
        w.name = name;
        if (store_workspace_create(s, &w) != STORE_OK)
            goto out;
        memcpy(ws[i], w.id, sizeof ws[i]);
    }
    for (int i = 0; i < DATA_SOURCES; i++) {
        char name[32];
        snprintf(name, sizeof name, "source %d", i);
        store_data_source d = {0};
        memcpy(d.org_id, admin.org_id, sizeof d.org_id);
        memcpy(d.workspace_id, ws[i % WORKSPACES], sizeof d.workspace_id);
        d.name = name;
        d.type = "postgresql";
        if (store_data_source_create(s, &d) != STORE_OK)
            goto out;
        memcpy(ds[i], d.id, sizeof ds[i]);
    }

    /* ---- prompts: names and texts from the word list, so searches have a realistic selectivity */
    for (long i = 0; i < n_prompts; i++) {
        char name[128], content[512], tags[64], dsl[160];
        const char *a = WORDS[rand_below(NWORDS)], *b = WORDS[rand_below(NWORDS)], *c = WORDS[rand_below(NWORDS)],
                   *d = WORDS[rand_below(NWORDS)], *e = WORDS[rand_below(NWORDS)];
        snprintf(name, sizeof name, "%s %s %ld", a, b, i);
        snprintf(content, sizeof content, "Show me the %s %s by %s for the last %s, with {{detail}} per %s.", a, c, d,
                 e, b);
        snprintf(tags, sizeof tags, "[\"%s\"]", WORDS[rand_below(NWORDS)]);
        int nds = (int)rand_below(3);
        size_t o = (size_t)snprintf(dsl, sizeof dsl, "[");
        for (int k = 0; k < nds; k++)
            o += (size_t)snprintf(dsl + o, sizeof dsl - o, "%s\"%s\"", k ? "," : "", ds[rand_below(DATA_SOURCES)]);
        snprintf(dsl + o, sizeof dsl - o, "]");
        store_prompt p = {0};
        int owner = (int)rand_below(n_users);
        memcpy(p.org_id, admin.org_id, sizeof p.org_id);
        memcpy(p.user_id, users[owner], sizeof p.user_id);
        memcpy(p.workspace_id, ws[rand_below(WORKSPACES)], sizeof p.workspace_id);
        p.name = name;
        p.content = content;
        p.tags = tags;
        p.data_source_ids = dsl;
        if (store_prompt_create(s, &p) != STORE_OK) {
            fprintf(stderr, "bench_history: prompt create failed\n");
            goto out;
        }
        memcpy(prompts[i], p.id, sizeof prompts[i]);
        prompt_owner[i] = owner;
    }
    double t1 = now_s();
    printf("fill: %ld prompts (with versions, FTS rows, data source links) in %.1f s (%.0f/s)\n", n_prompts, t1 - t0,
           (double)n_prompts / (t1 - t0));

    /* ---- executions: a random executed prompt each, spread evenly over the last 120 days */
    long executed = n_prompts - n_prompts / 10; /* the last 10% stay drafts */
    static const char *const STATUSES[] = {"completed", "completed", "completed", "completed", "completed",
                                           "completed", "completed", "completed", "failed",    "processing"};
    for (long done = 0; done < n_exec;) {
        size_t n = (size_t)(n_exec - done < CHUNK ? n_exec - done : CHUNK);
        for (size_t i = 0; i < n; i++) {
            store_execution *x = &batch[i];
            long pi = rand_below(executed);
            memset(x, 0, sizeof *x);
            memcpy(x->org_id, admin.org_id, sizeof x->org_id);
            memcpy(x->user_id, users[prompt_owner[pi]], sizeof x->user_id);
            memcpy(x->prompt_id, prompts[pi], sizeof x->prompt_id);
            snprintf(x->status, sizeof x->status, "%s", STATUSES[rand_below(10)]);
            x->rendered_prompt = "Show me the sales by region";
            x->output = "Sales by region: ...";
            x->prompt_tokens = 12;
            x->completion_tokens = 40 + rand_below(400);
            x->total_tokens = x->prompt_tokens + x->completion_tokens;
            x->duration_ms = 50 + rand_below(5000);
            /* in time order, as executions arrive, with jitter so some land out of order */
            x->created_at = now - 120 * DAY_MS +
                            (int64_t)((double)(done + (long)i) * (120.0 * DAY_MS / (double)n_exec)) + rand_below(60000);
        }
        if (store_bench_execution_insert_bulk(s, batch, n) != STORE_OK) {
            fprintf(stderr, "bench_history: bulk insert failed\n");
            goto out;
        }
        done += (long)n;
    }
    double t2 = now_s();
    printf("fill: %ld executions in %.1f s (%.0f rows/s, triggers included)\n", n_exec, t2 - t1,
           (double)n_exec / (t2 - t1));

filled:
    if (sqlite3_open_v2(path, &raw, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_history: cannot open %s for the baselines\n", path);
        goto out;
    }
    sqlite3_exec(raw, "PRAGMA temp_store=MEMORY", NULL, NULL, NULL);

    /* ---- the queries: one draw of parameters, every variant runs the same */
    static const char *const QSTATUS[] = {NULL, "completed", "failed", NULL};
    static const enum store_history_sort QSORT[] = {STORE_HSORT_TIMESTAMP, STORE_HSORT_STATUS, STORE_HSORT_DURATION};
    for (long i = 0; i < n_queries; i++) {
        qparams *q = &qs[i];
        q->user = (int)rand_below(n_users);
        q->status = QSTATUS[rand_below(4)];
        q->period_days = (int)rand_below(4);
        q->word = WORDS[rand_below(NWORDS)];
        q->sort = QSORT[rand_below(3)];
        q->desc = rand_below(4) != 0;
        q->page = 1 + rand_below(3);
    }
    /* warm the caches the way a running server has them */
    for (long i = 0; i < n_queries && i < 20; i++) {
        store_history_query hq = {.user_id = users[qs[i].user], .sort = STORE_HSORT_TIMESTAMP, .limit = 20};
        store_history_page pg;
        if (store_history_list(s, admin.org_id, &hq, &pg) == STORE_OK)
            store_history_page_free(&pg);
    }
    long grouped_runs = n_queries < 50 ? n_queries : 50; /* slow: fewer runs */
    for (long i = 0; i < n_queries; i++) {
        qparams *q = &qs[i];
        int64_t since = PERIOD_DAYS[q->period_days] ? now - PERIOD_DAYS[q->period_days] * DAY_MS : 0;
        for (int v = 0; v < 2; v++) {
            store_history_query hq = {.user_id = users[q->user],
                                      .status = q->status,
                                      .since = since,
                                      .after_clear = 1, /* as the endpoint asks it */
                                      .search = v == 0 ? q->word : NULL,
                                      .sort = q->sort,
                                      .sort_desc = q->desc,
                                      .offset = (q->page - 1) * 20,
                                      .limit = 20};
            store_history_page pg;
            double a = now_s();
            if (store_history_list(s, admin.org_id, &hq, &pg) != STORE_OK) {
                fprintf(stderr, "bench_history: history query failed\n");
                goto out;
            }
            double took = (now_s() - a) * 1000.0;
            ser[v].ms[ser[v].n++] = took;
            if (slow_ms > 0 && took > slow_ms)
                fprintf(stderr, "slow %.1f ms: search=%s status=%s period=%s sort=%d desc=%d page=%ld total=%ld\n",
                        took, hq.search ? hq.search : "-", q->status ? q->status : "-", PERIOD_NAMES[q->period_days],
                        (int)q->sort, q->desc, q->page, pg.total);
            ser[v].rows += pg.total;
            store_history_page_free(&pg);
        }
        double a = now_s();
        long total = like_query(raw, admin.org_id, users[q->user], q, since);
        if (total < 0)
            goto out;
        ser[2].ms[ser[2].n++] = (now_s() - a) * 1000.0;
        ser[2].rows += total;
        if (i < grouped_runs) {
            a = now_s();
            total = grouped_query(raw, admin.org_id, users[q->user], q, since);
            if (total < 0)
                goto out;
            ser[3].ms[ser[3].n++] = (now_s() - a) * 1000.0;
            ser[3].rows += total;
        }
        /* an admin's organization-wide view (user_id=all): FTS5 against LIKE over every prompt */
        store_history_query oq = {.status = q->status,
                                  .since = since,
                                  .search = q->word,
                                  .sort = q->sort,
                                  .sort_desc = q->desc,
                                  .offset = (q->page - 1) * 20,
                                  .limit = 20};
        store_history_page opg;
        a = now_s();
        if (store_history_list(s, admin.org_id, &oq, &opg) != STORE_OK)
            goto out;
        ser[4].ms[ser[4].n++] = (now_s() - a) * 1000.0;
        ser[4].rows += opg.total;
        store_history_page_free(&opg);
        a = now_s();
        if ((total = like_query(raw, admin.org_id, NULL, q, since)) < 0)
            goto out;
        ser[5].ms[ser[5].n++] = (now_s() - a) * 1000.0;
        ser[5].rows += total;
    }

    printf("\nquery mix: user of %ld; status any/completed/failed; time_period %s/%s/%s/%s; one search word of %zu;\n"
           "           sort_by timestamp/status/execution_time; asc or desc; page 1..3 of 20. COUNT + page each.\n",
           n_users, PERIOD_NAMES[0], PERIOD_NAMES[1], PERIOD_NAMES[2], PERIOD_NAMES[3], NWORDS);
    double base = 0;
    qsort(ser[1].ms, ser[1].n, sizeof(double), cmp_double);
    base = pct(ser[1].ms, ser[1].n, 50);
    report(&ser[0], base);
    report(&ser[1], 0);
    report(&ser[2], base);
    report(&ser[3], base);
    report(&ser[4], base);
    report(&ser[5], base);
    printf("(ratios: p50 against 'history', the same filtered page without search; 'org' = user_id=all;\n"
           " LIKE counts substrings, FTS5 word prefixes, so their total_items differ slightly)\n");
    rc = 0;
out:
    if (raw)
        sqlite3_close(raw);
    store_close(s);
    for (int i = 0; i < NSER; i++)
        free(ser[i].ms);
    free(qs);
    free(batch);
    free(prompt_owner);
    free(prompts);
    free(users);
    if (!db_arg && !keep) {
        char f[300];
        const char *suffix[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            snprintf(f, sizeof f, "%s%s", path, suffix[i]);
            unlink(f);
        }
        rmdir(dir);
    } else if (keep) {
        printf("kept %s\n", path);
    }
    return rc;
}
