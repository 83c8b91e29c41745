/*
 * test_bad_input.c — the bad-input corpus (issue 6, item 4): well over 300
 * bad requests, most generated from a table of the routes that take a body.
 *
 * For every POST / PUT / PATCH route that reads a JSON body:
 *   - malformed JSON (a fixed list), the route's valid body truncated,
 *     nesting of 33 and of 10,000 levels, duplicate keys (top level and
 *     nested), invalid UTF-8 in a string (overlong forms, surrogates, lone
 *     continuation bytes, truncated sequences, bytes that never occur), NUL
 *     bytes (raw, and the \u0000 escape), wrong Content-Types, a 2 MB body,
 *     101 header fields: each must answer 4xx;
 *   - every field of the valid body (and the wrapper object) replaced by
 *     values of the wrong JSON type: 4xx (POST /api/v1/validate reports
 *     problems in a 200 by design: there a 200 must say valid: false);
 *   - each string field at 100 KB, injection strings ('; DROP TABLE ...,
 *     {{, a literal \u0000, FTS5 operators, ../../etc/passwd, ...), and an
 *     empty body: these may be acceptable: 4xx, or 2xx and then the string
 *     reads back unchanged.
 * Then query strings (FTS5 operators and quotes in `search`, bad paging and
 * sort values, very long query strings), bad ids in paths (non-UUIDs, SQL,
 * traversal, 5,000 characters), and raw HTTP the client library would not
 * send (invalid UTF-8 bytes in the request line, bad Content-Length, bad
 * chunking, a 100 KB header, unknown methods).
 *
 * Rules for every case: an answer within 10 s (no hang), never 5xx, 4xx
 * unless the input is acceptable. Nothing may be stored by a rejected
 * request: the organization's counts (GET /prompts, /executions, /clusters,
 * /entities meta.totalRecords; v1 workspaces, data sources, users, keys) are
 * unchanged after all the must-reject cases, are re-read after each case that
 * may be accepted (a 4xx there must have changed nothing; a 2xx only what its
 * route creates), and at the end the database still answers, searches and
 * counts as expected. Each test prints how many cases it ran.
 *
 * Failures are collected, so one run lists every problem; the assertion at
 * the end of each test prints them.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "support/harness.h"

static pd_server S;

static void teardown(void) { pd_stop(&S); }

TestSuite(bad_input, .fini = teardown, .timeout = 120);

#define CASE_TIMEOUT_MS 10000L

/* ---------------------------------------------------------------- failures */

static char *failures;
static size_t failures_len;
static int nfailures;
static int ncases;

static void fail(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    nfailures++;
    if (nfailures > 80) /* the first 80 say enough */
        return;
    size_t ll = strlen(line);
    failures = realloc(failures, failures_len + ll + 2);
    memcpy(failures + failures_len, line, ll);
    failures_len += ll;
    failures[failures_len++] = '\n';
    failures[failures_len] = '\0';
}

/* Stop promptd with SIGTERM: it must exit 0 (a crash on the way out, or a
 * sanitizer report in the SAN=1 build, is a failure). */
static void stop_collect(void)
{
    if (S.pid <= 0)
        return;
    int rc = pd_kill_wait(&S, SIGTERM, 15000);
    if (rc != 0) {
        char *log = pd_read_file(S.log_path);
        size_t n = log ? strlen(log) : 0;
        fail("promptd exited with %d after SIGTERM; the end of its log:\n%s", rc,
             log ? log + (n > 1500 ? n - 1500 : 0) : "(none)");
        free(log);
    }
}

/* ---------------------------------------------------------------- ids of the fixtures */

typedef struct id_slot {
    const char *name;
    char value[80];
} id_slot;

#define SLOT(n)                                                                                                        \
    {                                                                                                                  \
        .name = n                                                                                                      \
    }
static id_slot IDS[] = {SLOT("P"),  SLOT("E"), SLOT("X"), SLOT("C"), SLOT("CX"),
                        SLOT("CV"), SLOT("W"), SLOT("D"), SLOT("U")};
#undef SLOT
#define N_IDS (sizeof IDS / sizeof IDS[0])

static const char *id_of(const char *name)
{
    for (size_t i = 0; i < N_IDS; i++)
        if (strcmp(IDS[i].name, name) == 0)
            return IDS[i].value;
    return NULL;
}

static void set_id(const char *name, const char *v)
{
    cr_assert(v && *v && strlen(v) < 80, "fixture {%s} has no id", name);
    for (size_t i = 0; i < N_IDS; i++)
        if (strcmp(IDS[i].name, name) == 0)
            snprintf(IDS[i].value, sizeof IDS[i].value, "%s", v);
}

/* Replace {NAME} by fixture ids. malloc'd; NULL stays NULL. */
static char *expand(const char *t)
{
    if (!t)
        return NULL;
    size_t cap = strlen(t) + 512, n = 0;
    char *out = malloc(cap);
    for (const char *p = t; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (close && close - p >= 2 && close - p <= 3) {
            char name[8];
            snprintf(name, sizeof name, "%.*s", (int)(close - p - 1), p + 1);
            const char *v = id_of(name);
            if (v) {
                n += (size_t)snprintf(out + n, cap - n, "%s", v);
                p = close + 1;
                continue;
            }
        }
        out[n++] = *p++;
    }
    out[n] = '\0';
    return out;
}

/* ---------------------------------------------------------------- HTTP */

typedef struct answer {
    long status; /* 0: no answer within the timeout, or the connection failed */
    char *body;
    size_t len;
    json_t *json;
    char error[CURL_ERROR_SIZE];
} answer;

static void answer_free(answer *a)
{
    free(a->body);
    json_decref(a->json);
    memset(a, 0, sizeof *a);
}

static size_t sink(char *data, size_t size, size_t n, void *ud)
{
    answer *a = ud;
    size_t add = size * n;
    char *p = realloc(a->body, a->len + add + 1);
    if (!p)
        return 0;
    memcpy(p + a->len, data, add);
    a->len += add;
    p[a->len] = '\0';
    a->body = p;
    return add;
}

static CURL *H; /* one handle per test: keep-alive between cases */

/*
 * One request. body (len bytes, may hold NUL) is sent when not NULL; ctype:
 * NULL = application/json when there is a body, "" = no Content-Type at all.
 * filler: that many extra "X-Filler-N" header fields.
 */
typedef struct upload {
    const char *p;
    size_t left;
} upload;

static size_t upload_read(char *dst, size_t size, size_t n, void *ud)
{
    upload *u = ud;
    size_t take = size * n < u->left ? size * n : u->left;
    if (take > 16384)
        take = 16384;
    memcpy(dst, u->p, take);
    u->p += take;
    u->left -= take;
    return take;
}

enum { SEND_EXPECT_CONTINUE = 1, SEND_CHUNKED = 2 };

static answer send_req(const char *key, const char *method, const char *path, const char *body, size_t len,
                       const char *ctype, int filler, int mode)
{
    upload up = {body, len};
    answer a = {0};
    struct curl_slist *hl = NULL;
    char line[512];
    size_t url_len = strlen(S.base_url) + strlen(path) + 1;
    char *url = malloc(url_len);
    if (!H)
        H = curl_easy_init();
    curl_easy_reset(H);
    snprintf(url, url_len, "%s%s", S.base_url, path);
    curl_easy_setopt(H, CURLOPT_URL, url);
    curl_easy_setopt(H, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(H, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(H, CURLOPT_TIMEOUT_MS, CASE_TIMEOUT_MS);
    curl_easy_setopt(H, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(H, CURLOPT_ERRORBUFFER, a.error);
    curl_easy_setopt(H, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(H, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(H, CURLOPT_PATH_AS_IS, 1L);
    if (body && (mode & SEND_CHUNKED)) {
        curl_easy_setopt(H, CURLOPT_POST, 1L);
        curl_easy_setopt(H, CURLOPT_READFUNCTION, upload_read);
        curl_easy_setopt(H, CURLOPT_READDATA, &up);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(H, CURLOPT_CUSTOMREQUEST, method);
    } else if (body) {
        curl_easy_setopt(H, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(H, CURLOPT_POSTFIELDS, body);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(H, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(H, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(H, CURLOPT_CUSTOMREQUEST, method);
    }
    if (key) {
        snprintf(line, sizeof line, "AppId: %s", key);
        hl = curl_slist_append(hl, line);
    }
    if (body || ctype) {
        const char *ct = ctype ? ctype : "application/json";
        if (*ct) {
            snprintf(line, sizeof line, "Content-Type: %s", ct);
            hl = curl_slist_append(hl, line);
        } else {
            hl = curl_slist_append(hl, "Content-Type:");
        }
    }
    /* no 100-continue round trip, unless the case asks for one */
    hl = curl_slist_append(hl, mode & SEND_EXPECT_CONTINUE ? "Expect: 100-continue" : "Expect:");
    if (mode & SEND_CHUNKED)
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
    for (int i = 0; i < filler; i++) {
        snprintf(line, sizeof line, "X-Filler-%d: %d", i, i);
        hl = curl_slist_append(hl, line);
    }
    curl_easy_setopt(H, CURLOPT_HTTPHEADER, hl);
    CURLcode cc = curl_easy_perform(H);
    if (cc == CURLE_OK)
        curl_easy_getinfo(H, CURLINFO_RESPONSE_CODE, &a.status);
    else if (!a.error[0])
        snprintf(a.error, sizeof a.error, "%s", curl_easy_strerror(cc));
    curl_slist_free_all(hl);
    free(url);
    curl_easy_setopt(H, CURLOPT_ERRORBUFFER, NULL);
    if (!a.body)
        a.body = strdup("");
    if (a.len)
        a.json = json_loadb(a.body, a.len, 0, NULL);
    return a;
}

static answer send_json(const char *method, const char *path, const char *body)
{
    return send_req(S.admin_key, method, path, body, body ? strlen(body) : 0, NULL, 0, 0);
}

/* A raw request over a socket: the status of the answer, 0 when none came. */
static long raw_http(const char *req, size_t len, char *first_line, size_t cap)
{
    first_line[0] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    long status = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return 0;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may answer and close before reading everything */
        off += (size_t)w;
    }
    char buf[4096];
    size_t got = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = CASE_TIMEOUT_MS - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        buf[got] = '\0';
        if (strstr(buf, "\r\n") || got >= sizeof buf - 1)
            break;
    }
    buf[got] = '\0';
    close(fd);
    snprintf(first_line, cap, "%.*s", (int)strcspn(buf, "\r\n"), buf);
    if (sscanf(buf, "HTTP/1.%*d %ld", &status) != 1)
        status = 0;
    return status;
}

/* ---------------------------------------------------------------- counts */

static const struct {
    const char *path, *at;
} COUNTS[] = {
    {"/prompts", "meta.totalRecords"},
    {"/executions", "meta.totalRecords"},
    {"/clusters", "meta.totalRecords"},
    {"/entities", "meta.totalRecords"},
    {"/api/v1/workspaces", "data.pagination.total_items"},
    {"/api/v1/data-sources", "data.pagination.total_items"},
    {"/api/v1/users", "data.pagination.total_items"},
    {"/api/v1/keys", "data.total"},
};
#define N_COUNTS (sizeof COUNTS / sizeof COUNTS[0])
enum {
    T_PROMPTS = 1,
    T_EXECUTIONS = 2,
    T_CLUSTERS = 4,
    T_ENTITIES = 8,
    T_WORKSPACES = 16,
    T_SOURCES = 32,
    T_USERS = 64,
    T_KEYS = 128
};

typedef struct counts {
    long long n[N_COUNTS];
} counts;

static counts read_counts(void)
{
    counts c;
    for (size_t i = 0; i < N_COUNTS; i++) {
        answer a = send_json("GET", COUNTS[i].path, NULL);
        cr_assert_eq(a.status, 200, "GET %s: %ld %s %s", COUNTS[i].path, a.status, a.error, a.body);
        json_t *v = pd_json_at(a.json, COUNTS[i].at);
        cr_assert(json_is_integer(v), "GET %s has no %s: %s", COUNTS[i].path, COUNTS[i].at, a.body);
        c.n[i] = (long long)json_integer_value(v);
        answer_free(&a);
    }
    return c;
}

/* A readable difference between two counts, "" when equal. */
static const char *counts_diff(const counts *a, const counts *b, char *buf, size_t cap)
{
    buf[0] = '\0';
    size_t n = 0;
    for (size_t i = 0; i < N_COUNTS; i++)
        if (a->n[i] != b->n[i])
            n += (size_t)snprintf(buf + n, cap - n, "%s%s %lld -> %lld", n ? ", " : "", COUNTS[i].path, a->n[i],
                                  b->n[i]);
    return buf;
}

/* ---------------------------------------------------------------- envelopes */

/* NULL when a is a JSON error in the surface's envelope. */
static const char *bad_envelope(const answer *a, const char *path)
{
    if (!a->json)
        return "the error body is not JSON";
    if (strncmp(path, "/api/v1/", 8) == 0) {
        if (!json_is_false(pd_json_at(a->json, "success")) || !pd_str_at(a->json, "error.code"))
            return "not the v1 envelope {success: false, error: {code, ...}}";
        return NULL;
    }
    if (strncmp(path, "/v1/", 4) == 0) {
        if (!pd_str_at(a->json, "error.message") || !pd_str_at(a->json, "error.type"))
            return "not the OpenAI envelope {error: {message, type, ...}}";
        return NULL;
    }
    char want[8];
    snprintf(want, sizeof want, "%ld", a->status);
    const char *st = pd_str_at(a->json, "errors.0.status");
    if (!st || strcmp(st, want) != 0 || !pd_str_at(a->json, "errors.0.code"))
        return "not the JSON:API envelope {errors: [{status, code, ...}]}";
    return NULL;
}

/* ---------------------------------------------------------------- one case */

enum expect { MUST_REJECT, MAY_ACCEPT };

typedef struct bad_case {
    const char *method;
    char *path;
    char *body; /* may hold NUL bytes: len counts */
    size_t len;
    int has_body;
    const char *ctype; /* NULL = application/json */
    int filler;
    int expect_continue; /* send "Expect: 100-continue" (the server may refuse before the body) */
    int chunked;         /* send the body chunked, without Content-Length */
    enum expect expect;
    char what[200];
    /* MAY_ACCEPT: what a 2xx may create, and the string that must read back */
    unsigned touches;
    const char *roundtrip_field; /* field name; value is roundtrip_value */
    const char *roundtrip_value;
} bad_case;

typedef struct route_spec route_spec;

static int is_json_error_status(long s) { return s != 413 && s != 414 && s != 431; }

/*
 * Run one case and judge it. rs (may be NULL) tells how to read a created or
 * updated object back. For MAY_ACCEPT cases, *running holds the counts before
 * and is updated.
 */
static void judge(const bad_case *c, const route_spec *rs, counts *running);

/* ---------------------------------------------------------------- route table */

struct route_spec {
    const char *method;
    const char *path;  /* template */
    const char *valid; /* template of a valid body */
    const char *wrapper;
    const char *get;    /* GET template to read the object back: "{self}" = path, "{new}" = data.id of the answer */
    const char *attr;   /* where fields sit in that GET: "data.attributes." or "data." */
    const char *inject; /* string field (inside the wrapper) for injection strings, or NULL */
    unsigned touches;   /* what a 2xx may add to (T_*) */
    int reports_200;    /* POST /api/v1/validate: content problems answer 200 with valid: false */
};

static const route_spec JARVIS_PROMPTS[] = {
    {"POST", "/prompts", "{\"prompt\": {\"name\": \"n\", \"description\": \"d\", \"content\": \"Hello {{who}}\"}}",
     "prompt", "/prompts/{new}", "data.attributes.", "name", T_PROMPTS, 0},
    {"PUT", "/prompts/{P}", "{\"prompt\": {\"name\": \"n2\", \"description\": \"d2\", \"content\": \"Hi {{who}}\"}}",
     "prompt", "{self}", "data.attributes.", "description", 0, 0},
    {"PATCH", "/prompts/{P}", "{\"prompt\": {\"name\": \"n3\", \"description\": \"d3\"}}", "prompt", "{self}",
     "data.attributes.", "name", 0, 0},
    {"POST", "/prompts/{P}/render", "{\"variables\": {\"who\": \"x\"}}", NULL, NULL, NULL, NULL, 0, 0},
    {"POST", "/prompts/{P}/execute",
     "{\"variables\": {\"who\": \"x\"}, \"model\": \"echo\", \"temperature\": 0.5, \"max_tokens\": 50}", NULL, NULL,
     NULL, NULL, T_EXECUTIONS, 0},
    {"POST", "/prompts/{P}/execute/stream",
     "{\"variables\": {\"who\": \"x\"}, \"model\": \"echo\", \"max_tokens\": 50}", NULL, NULL, NULL, NULL, T_EXECUTIONS,
     0},
    {"POST", "/prompts/{P}/executions/{E}/comments", "{\"comment\": {\"body\": \"a comment\"}}", "comment", NULL, NULL,
     "body", 0, 0},
};

static const route_spec JARVIS_CLUSTERS[] = {
    {"POST", "/entities",
     "{\"entity\": {\"name\": \"e\", \"description\": \"d\", \"persona\": \"p\", \"model\": \"echo\"}}", "entity",
     "/entities/{new}", "data.attributes.", "name", T_ENTITIES, 0},
    {"PUT", "/entities/{X}", "{\"entity\": {\"name\": \"e2\", \"description\": \"d2\", \"persona\": \"p2\"}}", "entity",
     "{self}", "data.attributes.", "persona", 0, 0},
    {"PATCH", "/entities/{X}", "{\"entity\": {\"name\": \"e3\"}}", "entity", "{self}", "data.attributes.", "name", 0,
     0},
    {"POST", "/clusters", "{\"cluster\": {\"name\": \"c\", \"description\": \"d\"}}", "cluster", "/clusters/{new}",
     "data.attributes.", "name", T_CLUSTERS, 0},
    {"PUT", "/clusters/{C}", "{\"cluster\": {\"name\": \"c2\", \"description\": \"d2\"}}", "cluster", "{self}",
     "data.attributes.", "description", 0, 0},
    {"PATCH", "/clusters/{C}", "{\"cluster\": {\"name\": \"c3\"}}", "cluster", "{self}", "data.attributes.", "name", 0,
     0},
    {"POST", "/clusters/{C}/contexts", "{\"context\": {\"name\": \"n\", \"content\": \"c\"}}", "context", NULL, NULL,
     "content", 0, 0},
    {"PUT", "/clusters/{C}/contexts/{CX}", "{\"context\": {\"name\": \"n2\", \"content\": \"c2\"}}", "context", NULL,
     NULL, "name", 0, 0},
    {"PATCH", "/clusters/{C}/contexts/{CX}", "{\"context\": {\"content\": \"c3\"}}", "context", NULL, NULL, "content",
     0, 0},
    {"POST", "/clusters/{C}/conversations", "{\"conversation\": {\"title\": \"t\"}}", "conversation",
     "/clusters/{C}/conversations/{new}", "data.attributes.", "title", 0, 0},
    {"PUT", "/clusters/{C}/conversations/{CV}", "{\"conversation\": {\"title\": \"t2\"}}", "conversation", "{self}",
     "data.attributes.", "title", 0, 0},
    {"PATCH", "/clusters/{C}/conversations/{CV}", "{\"conversation\": {\"title\": \"t3\"}}", "conversation", "{self}",
     "data.attributes.", "title", 0, 0},
    {"POST", "/clusters/{C}/conversations/{CV}/messages", "{\"message\": {\"role\": \"user\", \"content\": \"hi\"}}",
     "message", NULL, NULL, "content", T_EXECUTIONS, 0},
};

static const route_spec V1_ROUTES[] = {
    {"POST", "/v1/chat/completions",
     "{\"model\": \"echo\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": 0.5, "
     "\"max_tokens\": 50, \"stream\": false}",
     NULL, NULL, NULL, NULL, T_EXECUTIONS, 0},
    {"POST", "/api/v1/prompt",
     "{\"prompt_id\": \"{P}\", \"variables\": {\"who\": \"x\"}, \"metadata\": {\"k\": \"v\"}, \"async\": false, "
     "\"model\": \"echo\", \"temperature\": 0.5, \"max_tokens\": 50}",
     NULL, NULL, NULL, NULL, T_EXECUTIONS, 0},
    {"POST", "/api/v1/prompt", "{\"prompt\": \"hello there\", \"model\": \"echo\"}", NULL, NULL, NULL, "prompt",
     T_EXECUTIONS | T_PROMPTS, 0},
    {"POST", "/api/v1/prompts/batch",
     "{\"prompts\": [\"one\", {\"prompt\": \"two\"}], \"model\": \"echo\", \"max_tokens\": 50}", NULL, NULL, NULL, NULL,
     T_EXECUTIONS | T_PROMPTS, 0},
    {"POST", "/api/v1/validate",
     "{\"prompt\": \"Hello {{who}}\", \"variables\": {\"who\": \"x\"}, \"model\": \"echo\", \"temperature\": 0.5, "
     "\"max_tokens\": 50}",
     NULL, NULL, NULL, "prompt", 0, 1},
    {"POST", "/api/v1/workspaces", "{\"name\": \"w\", \"description\": \"d\"}", NULL, "/api/v1/workspaces/{new}",
     "data.", "name", T_WORKSPACES, 0},
    {"PUT", "/api/v1/workspaces/{W}", "{\"name\": \"w2\", \"description\": \"d2\"}", NULL, "{self}", "data.",
     "description", 0, 0},
    {"PATCH", "/api/v1/workspaces/{W}", "{\"description\": \"d3\"}", NULL, "{self}", "data.", "description", 0, 0},
    {"POST", "/api/v1/data-sources", "{\"name\": \"s\", \"type\": \"csv\", \"description\": \"d\"}", NULL,
     "/api/v1/data-sources/{new}", "data.", "name", T_SOURCES, 0},
    {"PUT", "/api/v1/data-sources/{D}", "{\"name\": \"s2\", \"type\": \"s3\", \"description\": \"d2\"}", NULL, "{self}",
     "data.", "description", 0, 0},
    {"PATCH", "/api/v1/data-sources/{D}", "{\"type\": \"postgresql\"}", NULL, "{self}", "data.", "type", 0, 0},
    {"POST", "/api/v1/users", "{\"email\": \"u@example.com\", \"name\": \"U\", \"role\": \"member\"}", NULL,
     "/api/v1/users/{new}", "data.", "name", T_USERS, 0},
    {"PUT", "/api/v1/users/{U}", "{\"name\": \"U2\", \"role\": \"member\"}", NULL, "{self}", "data.", "name", 0, 0},
    {"PATCH", "/api/v1/users/{U}", "{\"name\": \"U3\"}", NULL, "{self}", "data.", "name", 0, 0},
    {"POST", "/api/v1/users/{U}/api-keys", "{\"name\": \"k\"}", NULL, NULL, NULL, "name", T_KEYS, 0},
    {"POST", "/api/v1/keys", "{\"name\": \"k\", \"rate_limit_per_minute\": 5}", NULL, NULL, NULL, "name", T_KEYS, 0},
};

/* ---------------------------------------------------------------- judging */

/* Read the object back and compare field with value; NULL when it matches. */
static const char *read_back(const route_spec *rs, const char *path, const answer *a, const char *field,
                             const char *value, char *why, size_t cap)
{
    if (!rs || !field)
        return NULL;
    if (!rs->get) { /* no GET of one: the answer itself must carry the value back, when it shows the field */
        char at1[128], at2[128];
        snprintf(at1, sizeof at1, "data.attributes.%s", field);
        snprintf(at2, sizeof at2, "data.%s", field);
        const char *got = pd_str_at(a->json, at1) ? pd_str_at(a->json, at1) : pd_str_at(a->json, at2);
        if (got && strcmp(got, value) != 0) {
            snprintf(why, cap, "the answer shows %s as '%.80s' (%zu bytes), sent '%.80s' (%zu bytes)", field, got,
                     strlen(got), value, strlen(value));
            return why;
        }
        return NULL;
    }
    char *get = NULL;
    if (strcmp(rs->get, "{self}") == 0) {
        get = strdup(path);
    } else {
        const char *id = pd_str_at(a->json, "data.id");
        char num[32]; /* v1 objects of spec 002 are named by a number */
        if (!id && json_is_integer(pd_json_at(a->json, "data.id"))) {
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(pd_json_at(a->json, "data.id")));
            id = num;
        }
        if (!id) {
            snprintf(why, cap, "a 2xx without data.id: %.200s", a->body);
            return why;
        }
        char *t = expand(rs->get);
        const char *at = strstr(t, "{new}");
        cr_assert_not_null(at);
        size_t n = strlen(t) + strlen(id) + 1;
        get = malloc(n);
        snprintf(get, n, "%.*s%s%s", (int)(at - t), t, id, at + 5);
        free(t);
    }
    answer g = send_json("GET", get, NULL);
    char at[128];
    snprintf(at, sizeof at, "%s%s", rs->attr, field);
    const char *got = pd_str_at(g.json, at);
    const char *res = NULL;
    if (g.status != 200) {
        snprintf(why, cap, "GET %s after the 2xx: %ld", get, g.status);
        res = why;
    } else if (!got || strcmp(got, value) != 0) {
        snprintf(why, cap, "GET %s: %s reads back as '%.80s' (%zu bytes), sent '%.80s' (%zu bytes)", get, at,
                 got ? got : "(none)", got ? strlen(got) : 0, value, strlen(value));
        res = why;
    }
    answer_free(&g);
    free(get);
    return res;
}

static void judge(const bad_case *c, const route_spec *rs, counts *running)
{
    ncases++;
    answer a = send_req(S.admin_key, c->method, c->path, c->has_body ? c->body : NULL, c->len, c->ctype, c->filler,
                        (c->expect_continue ? SEND_EXPECT_CONTINUE : 0) | (c->chunked ? SEND_CHUNKED : 0));
    char why[512];
    if (getenv("PD_BAD_INPUT_VERBOSE"))
        fprintf(stderr, "%ld %s %.100s [%s]\n", a.status, c->method, c->path, c->what);
    if (a.status == 0) {
        fail("%s %.150s [%s]: no answer within %ld ms (%s)", c->method, c->path, c->what, CASE_TIMEOUT_MS, a.error);
        answer_free(&a);
        return;
    }
    if (a.status >= 500) {
        fail("%s %.150s [%s]: %ld (5xx): %.300s", c->method, c->path, c->what, a.status, a.body);
    } else if (a.status >= 400) {
        const char *env = is_json_error_status(a.status) ? bad_envelope(&a, c->path) : NULL;
        if (env)
            fail("%s %.150s [%s]: %ld, %s: %.200s", c->method, c->path, c->what, a.status, env, a.body);
    } else if (c->expect == MUST_REJECT) {
        /* the one endpoint that reports content problems in a 200 */
        int reported = rs && rs->reports_200 && a.status == 200 && json_is_false(pd_json_at(a.json, "data.valid"));
        if (!reported)
            fail("%s %.150s [%s]: want 4xx, got %ld: %.300s", c->method, c->path, c->what, a.status, a.body);
    } else if (c->roundtrip_field &&
               read_back(rs, c->path, &a, c->roundtrip_field, c->roundtrip_value, why, sizeof why)) {
        fail("%s %.150s [%s]: accepted (%ld) but %s", c->method, c->path, c->what, a.status, why);
    }
    if (c->expect == MAY_ACCEPT && running) {
        counts now = read_counts();
        char d[512];
        for (size_t i = 0; i < N_COUNTS; i++) {
            long long delta = now.n[i] - running->n[i];
            int allowed = a.status >= 200 && a.status < 300 && (c->touches & (1u << i));
            if (delta != 0 && !(allowed && delta > 0 && delta <= 2)) {
                fail("%s %.150s [%s]: answered %ld and changed the counts: %s", c->method, c->path, c->what, a.status,
                     counts_diff(running, &now, d, sizeof d));
                break;
            }
        }
        *running = now;
    }
    answer_free(&a);
}

/* ---------------------------------------------------------------- case makers */

static bad_case mk(const char *method, const char *path, enum expect ex, const char *fmt, ...)
{
    bad_case c = {0};
    c.method = method;
    c.path = strdup(path);
    c.expect = ex;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c.what, sizeof c.what, fmt, ap);
    va_end(ap);
    return c;
}

static void with_body(bad_case *c, const char *body, size_t len)
{
    c->body = malloc(len + 1);
    memcpy(c->body, body, len);
    c->body[len] = '\0';
    c->len = len;
    c->has_body = 1;
}

static void case_free(bad_case *c)
{
    free(c->path);
    free(c->body);
}

static void run(bad_case *c, const route_spec *rs, counts *running)
{
    judge(c, rs, running);
    case_free(c);
}

/* JSON text of j (compact). */
static char *dump(const json_t *j) { return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER); }

/* The valid body with raw bytes spliced into its first string value (after the opening quote). */
static char *splice_into_first_string(const char *valid, const char *bytes, size_t n, size_t *out_len)
{
    /* the first string value: the first '"' after a ':' */
    const char *colon = strchr(valid, ':');
    const char *q = colon;
    while (q && *q && *q != '"' && *q != '{' && *q != '[')
        q++;
    if (q && *q == '{') { /* wrapped: the first value inside */
        colon = strchr(q, ':');
        q = colon;
        while (q && *q && *q != '"')
            q++;
    }
    if (!q || *q != '"') { /* no string value: put the bytes in a new member at the start */
        size_t vl = strlen(valid);
        char *out = malloc(vl + n + 16);
        size_t o = 0;
        memcpy(out, "{\"zz\":\"", 7);
        o = 7;
        memcpy(out + o, bytes, n);
        o += n;
        memcpy(out + o, "\",", 2);
        o += 2;
        memcpy(out + o, valid + 1, vl - 1);
        o += vl - 1;
        *out_len = o;
        return out;
    }
    size_t head = (size_t)(q - valid) + 1, vl = strlen(valid);
    char *out = malloc(vl + n + 1);
    memcpy(out, valid, head);
    memcpy(out + head, bytes, n);
    memcpy(out + head + n, valid + head, vl - head);
    *out_len = vl + n;
    out[*out_len] = '\0';
    return out;
}

static char *nested(int depth)
{
    /* {"a": [[[ ... ]]]} with depth levels in all */
    char *s = malloc((size_t)depth * 2 + 16);
    size_t n = 0;
    n += (size_t)sprintf(s, "{\"a\":");
    for (int i = 1; i < depth; i++)
        s[n++] = '[';
    for (int i = 1; i < depth; i++)
        s[n++] = ']';
    s[n++] = '}';
    s[n] = '\0';
    return s;
}

static const char *const MALFORMED[] = {
    "{",
    "}",
    "{\"a\":}",
    "{\"a\" 1}",
    "{\"a\":1,}",
    "{,}",
    "[1,2",
    "nul",
    "{'a':1}",
    "{\"a\":01}",
    "{\"a\":NaN}",
    "{\"a\":Infinity}",
    "{\"a\":\"\\x\"}",
    "{\"a\":\"unterminated}",
    "{\"a\":1}}",
    "{\"a\":1} {\"b\":2}",
    "{\"a\":\"\\ud800\"}",
    "{a:1}",
    "\xef\xbb\xbf{}", /* a byte-order mark */
};

static const char *const NOT_OBJECTS[] = {"[]", "\"just a string\"", "123", "true", "null", "[{\"prompt\": {}}]"};

/* Invalid UTF-8 sequences. */
static const struct {
    const char *bytes, *name;
} BAD_UTF8[] = {
    {"\xc0\xaf", "overlong 2-byte '/'"},
    {"\xe0\x80\xaf", "overlong 3-byte '/'"},
    {"\xf0\x80\x80\xaf", "overlong 4-byte '/'"},
    {"\xed\xa0\x80", "UTF-16 surrogate U+D800"},
    {"\xed\xbf\xbf", "UTF-16 surrogate U+DFFF"},
    {"\x80", "lone continuation byte"},
    {"\xbf\xbf", "two lone continuation bytes"},
    {"\xe2\x82", "truncated 3-byte sequence"},
    {"\xff", "byte 0xFF"},
    {"\xf5\x80\x80\x80", "beyond U+10FFFF"},
};

static const char *const INJECTIONS[] = {
    "'; DROP TABLE prompts; --",
    "Robert'); DELETE FROM users WHERE ('1'='1",
    "{{",
    "}}{{#each x}}{{/each",
    "\\u0000 literally",
    "NEAR(a b) OR \"x",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "%s%s%n%x",
    "\xe2\x80\xae right-to-left \xf0\x9f\x98\x80",
};

/*
 * Fields whose type is a union in the API: OpenAI's messages[].content is a
 * string, null or an array of text parts (openai_gateway.c), so an (empty)
 * array is of an allowed type. Such cases are run with the may-accept ones.
 */
static int also_valid(const char *container, const char *key, const json_t *value)
{
    return strcmp(container, "messages[0]") == 0 && strcmp(key, "content") == 0 && json_is_array(value);
}

/* Cases put aside to run in the may-accept phase. */
static bad_case deferred[16];
static const route_spec *deferred_rs[16];
static size_t ndeferred;
static const route_spec *current_rs;

static void run_later(bad_case *c)
{
    cr_assert_lt(ndeferred, 16);
    deferred_rs[ndeferred] = current_rs;
    deferred[ndeferred++] = *c;
}

/* Every leaf of a valid body, with wrong-typed replacements. */
static void wrong_type_cases(const route_spec *rs, const char *path, const char *valid, counts *running)
{
    current_rs = rs;
    json_t *root = json_loads(valid, JSON_PRESERVE_ORDER, NULL);
    cr_assert_not_null(root, "bad valid body %s", valid);
    json_t *values_for_string[] = {json_integer(123), json_true(), json_array(), json_object()};
    json_t *values_for_number[] = {json_string("12"), json_true(), json_array(), json_object()};
    json_t *values_for_bool[] = {json_string("true"), json_integer(1), json_array()};
    json_t *values_for_object[] = {json_string("s"), json_integer(1), json_array()};
    json_t *values_for_array[] = {json_string("s"), json_integer(1), json_object()};

    /* the containers whose members are replaced: the root, the wrapper, messages[0], prompts[1] */
    json_t *containers[4];
    const char *cnames[4];
    size_t nc = 0;
    containers[nc] = root, cnames[nc++] = "";
    if (rs->wrapper && json_is_object(json_object_get(root, rs->wrapper)))
        containers[nc] = json_object_get(root, rs->wrapper), cnames[nc++] = rs->wrapper;
    if (json_is_array(json_object_get(root, "messages")))
        containers[nc] = json_array_get(json_object_get(root, "messages"), 0), cnames[nc++] = "messages[0]";
    if (json_is_array(json_object_get(root, "prompts")))
        containers[nc] = json_array_get(json_object_get(root, "prompts"), 1), cnames[nc++] = "prompts[1]";

    for (size_t ci = 0; ci < nc; ci++) {
        json_t *obj = containers[ci];
        const char *key;
        json_t *orig;
        void *iter;
        /* collect the keys first: the object is modified while we go */
        const char *keys[32];
        size_t nk = 0;
        json_object_foreach_safe(obj, iter, key, orig)
        {
            if (nk < 32)
                keys[nk++] = key;
        }
        for (size_t k = 0; k < nk; k++) {
            json_t *was = json_incref(json_object_get(obj, keys[k]));
            json_t **vals;
            size_t nv;
            if (json_is_string(was))
                vals = values_for_string, nv = 4;
            else if (json_is_number(was))
                vals = values_for_number, nv = 4;
            else if (json_is_boolean(was))
                vals = values_for_bool, nv = 3;
            else if (json_is_object(was))
                vals = values_for_object, nv = 3;
            else
                vals = values_for_array, nv = 3;
            for (size_t v = 0; v < nv; v++) {
                json_object_set(obj, keys[k], vals[v]);
                char *body = dump(root), *shown = dump(vals[v]);
                /* a field whose documented type is a union: this value is of an allowed type */
                int union_type = also_valid(cnames[ci], keys[k], vals[v]);
                bad_case c =
                    mk(rs->method, path, union_type ? MAY_ACCEPT : MUST_REJECT, "%s%s%s = %s (%s)", cnames[ci],
                       *cnames[ci] ? "." : "", keys[k], shown, union_type ? "another allowed type" : "wrong type");
                with_body(&c, body, strlen(body));
                c.touches = rs->touches;
                if (union_type)
                    run_later(&c);
                else
                    run(&c, rs, running);
                free(body);
                free(shown);
            }
            json_object_set(obj, keys[k], was);
            json_decref(was);
        }
    }
    /* the wrapper itself of the wrong type */
    if (rs->wrapper) {
        json_t *was = json_incref(json_object_get(root, rs->wrapper));
        for (size_t v = 0; v < 3; v++) {
            json_object_set(root, rs->wrapper, values_for_object[v]);
            char *body = dump(root), *shown = dump(values_for_object[v]);
            bad_case c = mk(rs->method, path, MUST_REJECT, "wrapper %s = %s", rs->wrapper, shown);
            with_body(&c, body, strlen(body));
            run(&c, rs, running);
            free(body);
            free(shown);
        }
        json_object_set(root, rs->wrapper, was);
        json_decref(was);
    }
    /* a batch entry of a type no entry may have */
    if (json_is_array(json_object_get(root, "prompts"))) {
        json_t *arr = json_object_get(root, "prompts");
        json_t *was = json_incref(json_array_get(arr, 0));
        json_t *entries[] = {json_integer(7), json_array(), json_object(), json_null()};
        for (size_t v = 0; v < 4; v++) {
            json_array_set(arr, 0, entries[v]);
            char *body = dump(root), *shown = dump(entries[v]);
            bad_case c = mk(rs->method, path, MUST_REJECT, "prompts[0] = %s", shown);
            with_body(&c, body, strlen(body));
            run(&c, rs, running);
            free(body);
            free(shown);
        }
        json_array_set(arr, 0, was);
        json_decref(was);
        for (size_t v = 0; v < 4; v++)
            json_decref(entries[v]);
    }
    for (size_t i = 0; i < 4; i++)
        json_decref(values_for_string[i]), json_decref(values_for_number[i]);
    for (size_t i = 0; i < 3; i++)
        json_decref(values_for_bool[i]), json_decref(values_for_object[i]), json_decref(values_for_array[i]);
    json_decref(root);
}

/* The syntax-level cases of one route: every one must be rejected. */
static void syntax_cases(const route_spec *rs, const char *path, const char *valid, counts *running)
{
    size_t vl = strlen(valid);
    for (size_t i = 0; i < sizeof MALFORMED / sizeof MALFORMED[0]; i++) {
        bad_case c = mk(rs->method, path, MUST_REJECT, "malformed JSON #%zu", i);
        with_body(&c, MALFORMED[i], strlen(MALFORMED[i]));
        run(&c, rs, running);
    }
    for (size_t i = 0; i < sizeof NOT_OBJECTS / sizeof NOT_OBJECTS[0]; i++) {
        bad_case c = mk(rs->method, path, MUST_REJECT, "JSON that is not an object: %s", NOT_OBJECTS[i]);
        with_body(&c, NOT_OBJECTS[i], strlen(NOT_OBJECTS[i]));
        run(&c, rs, running);
    }
    size_t cuts[] = {1, vl / 3, vl / 2, vl - 2, vl - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        bad_case c = mk(rs->method, path, MUST_REJECT, "valid body truncated to %zu of %zu bytes", cuts[i], vl);
        with_body(&c, valid, cuts[i]);
        run(&c, rs, running);
    }
    int depths[] = {33, 40, 10000};
    for (size_t i = 0; i < 3; i++) {
        char *s = nested(depths[i]);
        bad_case c = mk(rs->method, path, MUST_REJECT, "nesting %d levels", depths[i]);
        with_body(&c, s, strlen(s));
        run(&c, rs, running);
        free(s);
    }
    {
        /* deep nesting inside the valid body: a new member holding 34 levels */
        char *deep = nested(34);
        size_t n = vl + strlen(deep) + 16;
        char *s = malloc(n);
        snprintf(s, n, "{\"zz\":%s,%s", deep, valid + 1);
        bad_case c = mk(rs->method, path, MUST_REJECT, "34 levels nested inside the valid body");
        with_body(&c, s, strlen(s));
        run(&c, rs, running);
        free(s);
        free(deep);
    }
    {
        /* duplicate keys: the first member again, at the top level */
        const char *colon = strchr(valid, ':');
        size_t klen = (size_t)(colon - valid) - 1; /* "key" with quotes */
        size_t n = vl * 2 + 8;
        char *s = malloc(n);
        snprintf(s, n, "{%.*s: \"dup\", %s", (int)klen, valid + 1, valid + 1);
        bad_case c = mk(rs->method, path, MUST_REJECT, "duplicate key at the top level");
        with_body(&c, s, strlen(s));
        run(&c, rs, running);
        free(s);
        if (rs->wrapper) { /* and inside the wrapper */
            json_t *root = json_loads(valid, JSON_PRESERVE_ORDER, NULL);
            json_t *w = json_object_get(root, rs->wrapper);
            const char *k0 = NULL;
            json_t *v0;
            void *it = json_object_iter(w);
            if (it) {
                k0 = json_object_iter_key(it);
                v0 = json_object_iter_value(it);
                char *inner = dump(w), *vtext = dump(v0);
                size_t m = strlen(inner) + strlen(vtext) + strlen(k0) + strlen(rs->wrapper) + 32;
                char *b = malloc(m);
                snprintf(b, m, "{\"%s\": {\"%s\": %s, %s}", rs->wrapper, k0, vtext, inner + 1);
                bad_case c2 = mk(rs->method, path, MUST_REJECT, "duplicate key %s.%s", rs->wrapper, k0);
                with_body(&c2, b, strlen(b));
                run(&c2, rs, running);
                free(b);
                free(inner);
                free(vtext);
            }
            json_decref(root);
        }
    }
    for (size_t i = 0; i < sizeof BAD_UTF8 / sizeof BAD_UTF8[0]; i++) {
        size_t n;
        char *s = splice_into_first_string(valid, BAD_UTF8[i].bytes, strlen(BAD_UTF8[i].bytes), &n);
        bad_case c = mk(rs->method, path, MUST_REJECT, "invalid UTF-8 in a string: %s", BAD_UTF8[i].name);
        with_body(&c, s, n);
        run(&c, rs, running);
        free(s);
    }
    {
        size_t n;
        char *s = splice_into_first_string(valid, "a\0b", 3, &n);
        bad_case c = mk(rs->method, path, MUST_REJECT, "raw NUL byte inside a string");
        with_body(&c, s, n);
        run(&c, rs, running);
        free(s);
        s = splice_into_first_string(valid, "\\u0000", 6, &n);
        c = mk(rs->method, path, MUST_REJECT, "\\u0000 escape inside a string");
        with_body(&c, s, n);
        run(&c, rs, running);
        free(s);
        char *t = malloc(vl + 2);
        memcpy(t, valid, vl);
        t[vl] = '\0';
        c = mk(rs->method, path, MUST_REJECT, "NUL byte after the JSON");
        with_body(&c, t, vl + 1);
        run(&c, rs, running);
        free(t);
        char u[3] = {'\0', '{', '}'};
        c = mk(rs->method, path, MUST_REJECT, "NUL byte before the JSON");
        with_body(&c, u, 3);
        run(&c, rs, running);
    }
    const char *ctypes[] = {"text/plain", "application/xml",   "multipart/form-data; boundary=xyz",
                            "text/json",  "application/jsonx", "application/octet-stream"};
    for (size_t i = 0; i < sizeof ctypes / sizeof ctypes[0]; i++) {
        bad_case c = mk(rs->method, path, MUST_REJECT, "Content-Type: %s", ctypes[i]);
        with_body(&c, valid, vl);
        c.ctype = ctypes[i];
        run(&c, rs, running);
    }
    {
        bad_case c = mk(rs->method, path, MUST_REJECT, "form-encoded body");
        with_body(&c, "name=x&content=y", 16);
        c.ctype = "application/x-www-form-urlencoded";
        run(&c, rs, running);
    }
    {
        /* 2 MB: over the 1 MB body limit */
        size_t n = 2 * 1024 * 1024;
        char *s = malloc(n + 32);
        size_t o = (size_t)sprintf(s, "{\"zz\": \"");
        memset(s + o, 'x', n - o - 2);
        o = n - 2;
        s[o++] = '"';
        s[o++] = '}';
        bad_case c = mk(rs->method, path, MUST_REJECT, "2 MB body (Expect: 100-continue)");
        with_body(&c, s, o);
        c.expect_continue = 1;
        run(&c, rs, running);
        c = mk(rs->method, path, MUST_REJECT, "2 MB body, chunked (no length announced)");
        with_body(&c, s, o);
        c.chunked = 1;
        run(&c, rs, running);
        free(s);
    }
    {
        bad_case c = mk(rs->method, path, MUST_REJECT, "101 header fields");
        with_body(&c, valid, vl);
        c.filler = 101;
        run(&c, rs, running);
    }
}

/* The cases that may be accepted: 100 KB strings, injection strings, an empty body. */
static void maybe_cases(const route_spec *rs, const char *path, const char *valid, counts *running)
{
    json_t *root = json_loads(valid, JSON_PRESERVE_ORDER, NULL);
    json_t *obj = rs->wrapper ? json_object_get(root, rs->wrapper) : root;
    const char *key;
    json_t *v;
    void *iter;
    const char *keys[32];
    size_t nk = 0;
    json_object_foreach_safe(obj, iter, key, v)
    {
        if (json_is_string(v) && nk < 32)
            keys[nk++] = key;
    }
    static char big[100 * 1024 + 1];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (size_t k = 0; k < nk; k++) {
        json_t *was = json_incref(json_object_get(obj, keys[k]));
        json_object_set_new(obj, keys[k], json_string(big));
        char *body = dump(root);
        bad_case c = mk(rs->method, path, MAY_ACCEPT, "%s%s%s = 100 KB", rs->wrapper ? rs->wrapper : "",
                        rs->wrapper ? "." : "", keys[k]);
        with_body(&c, body, strlen(body));
        c.touches = rs->touches;
        c.roundtrip_field = keys[k];
        c.roundtrip_value = big;
        run(&c, rs, running);
        free(body);
        json_object_set(obj, keys[k], was);
        json_decref(was);
    }
    if (rs->inject && json_object_get(obj, rs->inject)) {
        json_t *was = json_incref(json_object_get(obj, rs->inject));
        for (size_t i = 0; i < sizeof INJECTIONS / sizeof INJECTIONS[0]; i++) {
            json_object_set_new(obj, rs->inject, json_string(INJECTIONS[i]));
            char *body = dump(root);
            bad_case c = mk(rs->method, path, MAY_ACCEPT, "%s = injection string #%zu", rs->inject, i);
            with_body(&c, body, strlen(body));
            c.touches = rs->touches;
            c.roundtrip_field = rs->inject;
            c.roundtrip_value = INJECTIONS[i];
            run(&c, rs, running);
            free(body);
        }
        json_object_set(obj, rs->inject, was);
        json_decref(was);
    }
    {
        bad_case c = mk(rs->method, path, MAY_ACCEPT, "empty body");
        with_body(&c, "", 0);
        c.touches = rs->touches;
        run(&c, rs, running);
        c = mk(rs->method, path, MAY_ACCEPT, "no Content-Type, valid body");
        with_body(&c, valid, strlen(valid));
        c.ctype = "";
        c.touches = rs->touches;
        run(&c, rs, running);
    }
    json_decref(root);
}

/* ---------------------------------------------------------------- fixtures */

static void make_fixture(const char *method, const char *path, const char *body, long want, const char *at,
                         const char *name)
{
    char *p = expand(path), *b = expand(body);
    answer a = send_json(method, p, b);
    cr_assert_eq(a.status, want, "fixture %s %s: %ld %s", method, p, a.status, a.body);
    if (name)
        set_id(name, pd_str_at(a.json, at));
    answer_free(&a);
    free(p);
    free(b);
}

static void start_with_fixtures(void)
{
    cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start");
    make_fixture("POST", "/prompts", "{\"prompt\": {\"name\": \"fixture\", \"content\": \"Hello {{who}}\"}}", 201,
                 "data.id", "P");
    make_fixture("POST", "/prompts/{P}/execute", "{\"variables\": {\"who\": \"fixture\"}}", 200, "data.id", "E");
    make_fixture("POST", "/entities", "{\"entity\": {\"name\": \"fixture\"}}", 201, "data.id", "X");
    make_fixture("POST", "/clusters", "{\"cluster\": {\"name\": \"fixture\"}}", 201, "data.id", "C");
    make_fixture("POST", "/clusters/{C}/contexts", "{\"context\": {\"content\": \"fixture\"}}", 201, "data.id", "CX");
    make_fixture("POST", "/clusters/{C}/conversations", "{\"conversation\": {\"title\": \"fixture\"}}", 201, "data.id",
                 "CV");
    /* v1 objects by UUID (data.id is their number in the organization; paths take either) */
    make_fixture("POST", "/api/v1/workspaces", "{\"name\": \"fixture\"}", 201, "data.uuid", "W");
    make_fixture("POST", "/api/v1/data-sources", "{\"name\": \"fixture\", \"type\": \"csv\"}", 201, "data.uuid", "D");
    make_fixture("POST", "/api/v1/users", "{\"email\": \"fixture@example.com\"}", 201, "data.uuid", "U");
}

/* Run every generated case of routes: the must-reject ones first (counts must
 * not move), then the ones that may be accepted (counts followed case by case). */
static void corpus_for(const route_spec *routes, size_t n, const char *label)
{
    start_with_fixtures();
    counts base = read_counts();
    for (size_t r = 0; r < n; r++) {
        char *path = expand(routes[r].path), *valid = expand(routes[r].valid);
        /* the valid body is valid: the corpus is about what differs from it */
        answer ok = send_json(routes[r].method, path, valid);
        cr_assert(ok.status >= 200 && ok.status < 300, "the valid body of %s %s is refused: %ld %s", routes[r].method,
                  path, ok.status, ok.body);
        answer_free(&ok);
        free(path);
        free(valid);
    }
    base = read_counts(); /* after the valid calls */

    int before_reject = ncases;
    for (size_t r = 0; r < n; r++) {
        char *path = expand(routes[r].path), *valid = expand(routes[r].valid);
        syntax_cases(&routes[r], path, valid, NULL);
        wrong_type_cases(&routes[r], path, valid, NULL);
        free(path);
        free(valid);
    }
    int n_reject = ncases - before_reject;
    counts after = read_counts();
    char d[512];
    if (strcmp(counts_diff(&base, &after, d, sizeof d), "") != 0)
        fail("%d must-reject cases changed the organization's counts: %s", n_reject, d);

    counts running = after;
    for (size_t i = 0; i < ndeferred; i++)
        run(&deferred[i], deferred_rs[i], &running);
    ndeferred = 0;
    for (size_t r = 0; r < n; r++) {
        char *path = expand(routes[r].path), *valid = expand(routes[r].valid);
        maybe_cases(&routes[r], path, valid, &running);
        free(path);
        free(valid);
    }
    counts end = read_counts();
    if (strcmp(counts_diff(&running, &end, d, sizeof d), "") != 0)
        fail("the counts moved with no request to explain it: %s", d);

    /* the database is intact */
    answer a = send_json("GET", "/prompts?search=DROP", NULL);
    if (a.status != 200)
        fail("GET /prompts?search=DROP after the corpus: %ld %s", a.status, a.body);
    answer_free(&a);
    a = send_json("GET", "/health", NULL);
    if (a.status != 200)
        fail("GET /health after the corpus: %ld", a.status);
    answer_free(&a);
    cr_assert(S.pid > 0 && kill(S.pid, 0) == 0, "promptd is gone");

    stop_collect();
    fprintf(stderr, "bad_input %s: %d cases (%d must be rejected), %d failures\n", label, ncases, n_reject, nfailures);
    if (H)
        curl_easy_cleanup(H);
    H = NULL;
    cr_assert_eq(nfailures, 0, "%d bad-input failures%s:\n%s", nfailures, nfailures > 80 ? " (first 80)" : "",
                 failures ? failures : "");
}

Test(bad_input, jarvis_prompts_executions_comments)
{
    corpus_for(JARVIS_PROMPTS, sizeof JARVIS_PROMPTS / sizeof JARVIS_PROMPTS[0], "jarvis prompts");
}

Test(bad_input, jarvis_entities_clusters_conversations)
{
    corpus_for(JARVIS_CLUSTERS, sizeof JARVIS_CLUSTERS / sizeof JARVIS_CLUSTERS[0], "jarvis clusters");
}

Test(bad_input, v1_and_openai) { corpus_for(V1_ROUTES, sizeof V1_ROUTES / sizeof V1_ROUTES[0], "v1 and openai"); }

/* ---------------------------------------------------------------- query strings, ids, raw HTTP */

static void get_case(const char *path, enum expect ex, const char *what, counts *running)
{
    bad_case c = mk("GET", path, ex, "%s", what);
    run(&c, NULL, ex == MAY_ACCEPT ? running : NULL);
}

static char *url_escape(const char *s)
{
    if (!H)
        H = curl_easy_init();
    char *e = curl_easy_escape(H, s, 0);
    char *copy = strdup(e);
    curl_free(e);
    return copy;
}

Test(bad_input, query_strings_ids_and_raw_http)
{
    start_with_fixtures();
    counts base = read_counts(), running = base;
    char path[12000];
    int before = ncases;

    /* search text: FTS5 syntax and quoting must never reach SQLite as an expression that fails */
    const char *searches[] = {"NEAR(",      "NEAR(a b",
                              "\"",         "\"unterminated",
                              "a OR",       "OR",
                              "AND",        "NOT",
                              "a NOT",      "*",
                              "a*b",        "^a",
                              "name:x",     "content:*",
                              "(((",        ")",
                              "a NEAR/2 b", "-a",
                              "+",          "'",
                              "';--",       "'; DROP TABLE prompts; --",
                              "%",          "_",
                              "\\",         "{{",
                              "\"\"",       "a \"b c",
                              "\x01\x02",   "NEAR(\"a\" \"b\", 5)"};
    const char *search_paths[] = {"/prompts?search=", "/api/v1/prompts/history?search=", "/api/v1/prompts?search="};
    for (size_t p = 0; p < 3; p++) {
        for (size_t i = 0; i < sizeof searches / sizeof searches[0]; i++) {
            char *e = url_escape(searches[i]);
            snprintf(path, sizeof path, "%s%s", search_paths[p], e);
            free(e);
            char what[128];
            snprintf(what, sizeof what, "search %zu", i);
            get_case(path, MAY_ACCEPT, what, &running);
        }
        /* long search texts: 5 KB may be refused (v1 caps it), 50 KB and 100 KB are URLs too long */
        size_t lens[] = {5000, 9000};
        for (size_t i = 0; i < 2; i++) {
            size_t o = (size_t)snprintf(path, sizeof path, "%s", search_paths[p]);
            memset(path + o, 'q', lens[i]);
            path[o + lens[i]] = '\0';
            get_case(path, MAY_ACCEPT, "long search text", &running);
        }
    }
    /* query strings too long for the server: a 4xx (414) without a hang */
    {
        static char huge[120 * 1024];
        size_t o = (size_t)snprintf(huge, sizeof huge, "/prompts?search=");
        memset(huge + o, 'q', sizeof huge - o - 1);
        huge[sizeof huge - 1] = '\0';
        bad_case c = mk("GET", huge, MUST_REJECT, "a 120 KB query string");
        run(&c, NULL, NULL);
        char *many = malloc(80 * 1024);
        o = (size_t)sprintf(many, "/prompts?");
        for (int i = 0; o < 70 * 1024; i++)
            o += (size_t)sprintf(many + o, "p%d=%d&", i, i);
        c = mk("GET", many, MUST_REJECT, "thousands of query parameters (70 KB)");
        run(&c, NULL, NULL);
        o = (size_t)sprintf(many, "/prompts?");
        for (int i = 0; i < 1000; i++)
            o += (size_t)sprintf(many + o, "p%d=%d&", i, i);
        /* short enough to be served, or refused with a 4xx: either way an answer */
        c = mk("GET", many, MAY_ACCEPT, "1,000 query parameters (9 KB)");
        run(&c, NULL, &running);
        free(many);
    }
    /* invalid UTF-8 in the path and the query (percent-encoded) */
    const char *enc[] = {"%C0%AF", "%E0%80%AF", "%ED%A0%80", "%80", "%FF", "%E2%82"};
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        snprintf(path, sizeof path, "/prompts?search=a%sb", enc[i]);
        get_case(path, MUST_REJECT, "invalid UTF-8 in the query", NULL);
        snprintf(path, sizeof path, "/prompts/%s", enc[i]);
        get_case(path, MUST_REJECT, "invalid UTF-8 in the path", NULL);
        snprintf(path, sizeof path, "/api/v1/prompts/history?search=%s", enc[i]);
        get_case(path, MUST_REJECT, "invalid UTF-8 in a v1 query", NULL);
        snprintf(path, sizeof path, "/api/v1/prompts?%s=1", enc[i]);
        get_case(path, MUST_REJECT, "invalid UTF-8 in a parameter name", NULL);
    }

    /* paging and sorting values the endpoints document as 400 */
    const char *jarvis_bad[] = {
        "page=0",      "page=-1",       "page=abc",    "page=1.5",    "page=99999999999999999999",
        "page=",       "records=0",     "records=101", "records=-5",  "records=abc",
        "records=1e3", "sort=nonsense", "sort=--name", "status=bogus"};
    const char *jarvis_lists[] = {"/prompts", "/executions", "/prompts/{P}/executions"};
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < sizeof jarvis_bad / sizeof jarvis_bad[0]; i++) {
            if (strcmp(jarvis_bad[i], "page=") == 0)
                continue; /* empty means the default */
            char *lp = expand(jarvis_lists[l]);
            snprintf(path, sizeof path, "%s?%s", lp, jarvis_bad[i]);
            free(lp);
            get_case(path, MUST_REJECT, jarvis_bad[i], NULL);
        }
    get_case("/executions?prompt_id=not-a-uuid", MUST_REJECT, "prompt_id not a UUID", NULL);
    get_case("/executions?prompt_id=%27%20OR%201%3D1", MUST_REJECT, "prompt_id SQL", NULL);
    const char *v1_bad[] = {"page=0",
                            "page=-3",
                            "page=x",
                            "page_size=0",
                            "page_size=101",
                            "page_size=abc",
                            "sort_by=password",
                            "sort_order=sideways",
                            "status=bogus",
                            "time_period=forever",
                            "workspace_id=nope",
                            "data_source_id=%27--",
                            "user_id=x%27y",
                            "page=1e9999"};
    const char *v1_lists[] = {"/api/v1/prompts/history", "/api/v1/prompts"};
    for (size_t l = 0; l < 2; l++)
        for (size_t i = 0; i < sizeof v1_bad / sizeof v1_bad[0]; i++) {
            snprintf(path, sizeof path, "%s?%s", v1_lists[l], v1_bad[i]);
            get_case(path, MUST_REJECT, v1_bad[i], NULL);
        }
    const char *v1_paged[] = {"/api/v1/users", "/api/v1/workspaces", "/api/v1/data-sources"};
    const char *v1_page_bad[] = {"page=0", "page=-1", "page=abc", "page_size=0", "page_size=101", "page_size=zz"};
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < sizeof v1_page_bad / sizeof v1_page_bad[0]; i++) {
            snprintf(path, sizeof path, "%s?%s", v1_paged[l], v1_page_bad[i]);
            get_case(path, MUST_REJECT, v1_page_bad[i], NULL);
        }
    const char *session_bad[] = {"limit=0",           "limit=1001",          "limit=-1",
                                 "limit=abc",         "from_date=yesterday", "from_date=2025-13-45",
                                 "from_date=%27%3B--"};
    for (size_t i = 0; i < sizeof session_bad / sizeof session_bad[0]; i++) {
        snprintf(path, sizeof path, "/api/v1/sessions/%s?%s", id_of("U"), session_bad[i]);
        get_case(path, MUST_REJECT, session_bad[i], NULL);
    }
    snprintf(path, sizeof path, "/clusters/%s/conversations?status=gone", id_of("C"));
    get_case(path, MUST_REJECT, "conversation status", NULL);
    const char *validate_q[] = {"variables=%7Bnot%20json", "temperature=hot", "max_tokens=-5", "prompt_id=x"};
    for (size_t i = 0; i < sizeof validate_q / sizeof validate_q[0]; i++) {
        snprintf(path, sizeof path, "/api/v1/validate?prompt=hi&%s", validate_q[i]);
        get_case(path, MAY_ACCEPT, validate_q[i], &running); /* reported in a 200 with valid: false, or a 4xx */
    }

    /* ids that are not ids */
    static char long_id[5001];
    memset(long_id, '7', 5000);
    const char *bad_ids[] = {"abc",
                             "987654", /* a number no v1 object has; not an id at all elsewhere */
                             "-1",
                             "0",
                             "null",
                             "%27%20OR%20%271%27%3D%271",
                             "%27%3B%20DROP%20TABLE%20prompts%3B--",
                             "..%2F..%2Fetc%2Fpasswd",
                             "%2e%2e",
                             "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
                             "0190a0b0-1234-7abc-8def-0123456789ab-extra",
                             "0190A0B0-1234-7ABC-8DEF-0123456789AB",
                             "%7B%7Bid%7D%7D",
                             "%20",
                             "9007199254740992", /* one past the largest v1 number */
                             "1.5",
                             "%2B1",
                             long_id};
    const char *id_routes[] = {"/prompts/%s",
                               "/prompts/%s/versions",
                               "/prompts/%s/executions",
                               "/executions/%s",
                               "/entities/%s",
                               "/clusters/%s",
                               "/clusters/%s/members",
                               "/api/v1/prompt/%s",
                               "/api/v1/batches/%s",
                               "/api/v1/workspaces/%s",
                               "/api/v1/data-sources/%s",
                               "/api/v1/users/%s",
                               "/api/v1/sessions/%s",
                               "/prompts/{P}/executions/%s",
                               "/clusters/{C}/conversations/%s",
                               "/clusters/{C}/contexts/%s"};
    for (size_t r = 0; r < sizeof id_routes / sizeof id_routes[0]; r++) {
        char *tmpl = expand(id_routes[r]);
        for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
            snprintf(path, sizeof path, tmpl, bad_ids[i]);
            /* contexts have no GET of one: DELETE it (nothing must go) */
            const char *method = strstr(id_routes[r], "contexts") ? "DELETE" : "GET";
            bad_case c = mk(method, path, MUST_REJECT, "id '%.40s'", bad_ids[i]);
            run(&c, NULL, NULL);
        }
        free(tmpl);
    }
    /* destructive methods with bad ids */
    const char *delete_routes[] = {
        "/prompts/%s",      "/entities/%s",   "/clusters/%s", "/api/v1/workspaces/%s", "/api/v1/data-sources/%s",
        "/api/v1/users/%s", "/api/v1/keys/%s"};
    for (size_t r = 0; r < sizeof delete_routes / sizeof delete_routes[0]; r++)
        for (size_t i = 0; i < 8; i++) {
            snprintf(path, sizeof path, delete_routes[r], bad_ids[i]);
            bad_case c = mk("DELETE", path, MUST_REJECT, "DELETE id '%.40s'", bad_ids[i]);
            run(&c, NULL, NULL);
        }
    counts mid = read_counts();
    char d[512];
    if (strcmp(counts_diff(&running, &mid, d, sizeof d), "") != 0)
        fail("query and id cases changed the counts: %s", d);

    /* raw HTTP */
    char req[200 * 1024], line[256];
    struct {
        const char *what;
        int may_accept; /* a 2xx is fine too */
        const char *fmt;
    } raws[] = {
        {"invalid UTF-8 bytes in the path", 0, "GET /prompts/\xff\xfe HTTP/1.1\r\nHost: x\r\nAppId: %s\r\n\r\n"},
        {"an overlong sequence in the query", 0,
         "GET /prompts?search=\xc0\xaf HTTP/1.1\r\nHost: x\r\nAppId: %s\r\n\r\n"},
        {"a surrogate in the path", 0, "GET /entities/\xed\xa0\x80 HTTP/1.1\r\nHost: x\r\nAppId: %s\r\n\r\n"},
        {"a header line without a colon", 0, "GET /prompts HTTP/1.1\r\nHost: x\r\nAppId: %s\r\nNoColonHere\r\n\r\n"},
        {"a negative Content-Length", 0,
         "POST /prompts HTTP/1.1\r\nHost: x\r\nAppId: %s\r\nContent-Type: application/json\r\nContent-Length: "
         "-5\r\n\r\n{}"},
        {"a Content-Length that is not a number", 0,
         "POST /prompts HTTP/1.1\r\nHost: x\r\nAppId: %s\r\nContent-Type: application/json\r\nContent-Length: "
         "abc\r\n\r\n{}"},
        {"an invalid chunk size", 0,
         "POST /prompts HTTP/1.1\r\nHost: x\r\nAppId: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: "
         "chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
        {"Content-Length and chunked together", 0,
         "POST /prompts HTTP/1.1\r\nHost: x\r\nAppId: %s\r\nContent-Type: application/json\r\nContent-Length: "
         "4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"},
        {"a 2 MB Content-Length announced", 0,
         "POST /prompts HTTP/1.1\r\nHost: x\r\nAppId: %s\r\nContent-Type: application/json\r\nContent-Length: "
         "2097152\r\n\r\n{"},
        {"an unknown method", 0, "FROB /prompts HTTP/1.1\r\nHost: x\r\nAppId: %s\r\n\r\n"},
        {"TRACE", 0, "TRACE /prompts HTTP/1.1\r\nHost: x\r\nAppId: %s\r\n\r\n"},
        {"a NUL byte in the path", 0, "GET /prom%%00pts HTTP/1.1\r\nHost: x\r\nAppId: %s\r\n\r\n"},
        {"a dot-dot path", 1, "GET /prompts/../../../etc/passwd HTTP/1.1\r\nHost: x\r\nAppId: %s\r\n\r\n"},
        {"an absolute-form target naming another host", 1,
         "GET http://169.254.169.254/prompts HTTP/1.1\r\nHost: x\r\nAppId: %s\r\n\r\n"},
        {"a key with control characters", 0, "GET /prompts HTTP/1.1\r\nHost: x\r\nAppId: %s\x01\x02\r\n\r\n"},
    };
    for (size_t i = 0; i < sizeof raws / sizeof raws[0]; i++) {
        int n = snprintf(req, sizeof req, raws[i].fmt, S.admin_key);
        ncases++;
        long st = raw_http(req, (size_t)n, line, sizeof line);
        if (getenv("PD_BAD_INPUT_VERBOSE"))
            fprintf(stderr, "raw %s: %s\n", raws[i].what, line);
        if (st == 0)
            fail("raw: %s: no HTTP answer within %ld ms", raws[i].what, CASE_TIMEOUT_MS);
        else if (st >= 500)
            fail("raw: %s: %s", raws[i].what, line);
        else if (st < 400 && !raws[i].may_accept)
            fail("raw: %s: want 4xx, got %s", raws[i].what, line);
    }
    {
        /* a raw NUL byte inside the request line */
        const char head[] = "GET /prom";
        int n = snprintf(req, sizeof req, "%s", head);
        req[n++] = '\0';
        n += snprintf(req + n, sizeof req - (size_t)n, "pts HTTP/1.1\r\nHost: x\r\nAppId: %s\r\n\r\n", S.admin_key);
        ncases++;
        long st = raw_http(req, (size_t)n, line, sizeof line);
        if (st == 0 || st >= 500 || st < 400)
            fail("raw: a NUL byte in the request line: %s", st ? line : "no HTTP answer");
        /* a 100 KB header value, and a 100 KB request target */
        n = snprintf(req, sizeof req, "GET /prompts HTTP/1.1\r\nHost: x\r\nAppId: %s\r\nX-Big: ", S.admin_key);
        memset(req + n, 'b', 100 * 1024);
        n += 100 * 1024;
        n += snprintf(req + n, sizeof req - (size_t)n, "\r\n\r\n");
        ncases++;
        st = raw_http(req, (size_t)n, line, sizeof line);
        if (st == 0 || st >= 500 || st < 400)
            fail("raw: a 100 KB header value: %s", st ? line : "no HTTP answer");
        n = snprintf(req, sizeof req, "GET /prompts/");
        memset(req + n, 'a', 100 * 1024);
        n += 100 * 1024;
        n += snprintf(req + n, sizeof req - (size_t)n, " HTTP/1.1\r\nHost: x\r\nAppId: %s\r\n\r\n", S.admin_key);
        ncases++;
        st = raw_http(req, (size_t)n, line, sizeof line);
        if (st == 0 || st >= 500 || st < 400)
            fail("raw: a 100 KB request target: %s", st ? line : "no HTTP answer");
    }

    counts end = read_counts();
    if (strcmp(counts_diff(&running, &end, d, sizeof d), "") != 0)
        fail("the raw cases changed the counts: %s", d);
    answer a = send_json("GET", "/health", NULL);
    if (a.status != 200)
        fail("GET /health after the corpus: %ld", a.status);
    answer_free(&a);
    cr_assert(S.pid > 0 && kill(S.pid, 0) == 0, "promptd is gone");
    stop_collect();
    fprintf(stderr, "bad_input query strings, ids and raw HTTP: %d cases, %d failures\n", ncases - before, nfailures);
    if (H)
        curl_easy_cleanup(H);
    H = NULL;
    cr_assert_eq(nfailures, 0, "%d bad-input failures%s:\n%s", nfailures, nfailures > 80 ? " (first 80)" : "",
                 failures ? failures : "");
}
