/*
 * test_http_edge.c — the HTTP edge keeps its promises, over raw sockets
 * (curl cannot write most of these requests):
 *  - every request within the README's limits is answered (128 query
 *    parameters, 40 parameters plus a 5 KB header field, a 4096-byte request
 *    target, 100 header fields, and all of them at once in a 12 KiB head,
 *    with a body behind it and pipelined), and one past each limit gets its
 *    4xx at once;
 *  - a Content-Length given twice with different values answers 400, a
 *    transfer coding other than chunked 501, each in the path's envelope;
 *  - requests pipelined behind one that waits on a (slow mock) model are
 *    answered, in order.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "support/harness.h"
#include "support/mock_proc.h"

static pd_server S;
static mock_proc M;

#define LIMIT_URI 4096   /* README: request targets over 4 KiB 414 */
#define LIMIT_ARGS 128   /* more query parameters 431 */
#define LIMIT_FIELDS 100 /* more header fields 431 */
#define LIMIT_HEAD 12288 /* request line + header fields over 12 KiB 431 */

static void start_default(void) { cr_assert_eq(pd_start(&S, NULL, NULL), 0, "promptd did not start"); }
static void start_with_mock(void)
{
    cr_assert_eq(mock_proc_start(&M, NULL), 0, "mock did not start");
    static char oa[160];
    snprintf(oa, sizeof oa, "OPENAI_BASE_URL=%s/v1", M.base_url);
    const char *env[] = {oa, "OPENAI_API_KEY=x", NULL};
    cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start");
}
static void stop(void) { pd_stop(&S); }
static void stop_with_mock(void)
{
    pd_stop(&S);
    mock_proc_stop(&M);
}

TestSuite(edge_limits, .init = start_default, .fini = stop, .timeout = 90);
TestSuite(edge_framing, .init = start_default, .fini = stop, .timeout = 60);
TestSuite(edge_pipeline, .init = start_with_mock, .fini = stop_with_mock, .timeout = 60);

/* ---------------------------------------------------------------- raw HTTP */

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Extra time allowed for promptd to react: it runs 10x slower under `make valgrind`. */
static int react_ms(int ms)
{
    const char *vg = getenv("PD_VALGRIND");
    return vg && *vg ? ms * 10 : ms;
}

static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s", strerror(errno));
    return fd;
}

/* All of s in as few send() calls as the kernel allows (one, for these sizes). */
static void raw_send(int fd, const char *s, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, s + off, len - off, MSG_NOSIGNAL);
        cr_assert_gt(w, 0, "send: %s", strerror(errno));
        off += (size_t)w;
    }
}

typedef struct answer {
    long status;
    int close;       /* the answer said Connection: close */
    char head[2048]; /* its status line and header fields (cut) */
    char body[2048]; /* its body (cut) */
} answer;

/* Read up to n complete answers (Content-Length bodies) in order within
 * timeout_ms. Returns how many arrived; *eof tells whether the server
 * closed the connection afterwards (checked only when all n arrived, for a
 * short while). */
static int read_answers(int fd, answer *a, int n, int timeout_ms, int *eof)
{
    size_t cap = 1 << 18, len = 0;
    char *buf = malloc(cap + 1);
    cr_assert_not_null(buf);
    long long until = mono_ms() + timeout_ms;
    int got = 0;
    *eof = 0;
    memset(a, 0, (size_t)n * sizeof *a);
    for (;;) {
        buf[len] = '\0';
        char *end;
        while (got < n && (end = strstr(buf, "\r\n\r\n"))) {
            size_t hlen = (size_t)(end + 4 - buf);
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            size_t blen = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
            if (len < hlen + blen)
                break;
            answer *x = &a[got++];
            if (sscanf(buf, "HTTP/1.1 %ld", &x->status) != 1)
                x->status = 0;
            snprintf(x->head, sizeof x->head, "%.*s", (int)hlen, buf);
            snprintf(x->body, sizeof x->body, "%.*s", (int)blen, buf + hlen);
            const char *c = strcasestr(x->head, "\r\nConnection:");
            x->close = c && strncasecmp(c + 13 + strspn(c + 13, " "), "close", 5) == 0;
            memmove(buf, buf + hlen + blen, len - hlen - blen);
            len -= hlen + blen;
            buf[len] = '\0';
        }
        long long left = until - mono_ms();
        if (got == n && left > 200)
            left = 200; /* all in: only look whether the connection ends */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        if (len == cap)
            break;
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0) {
            *eof = 1;
            break;
        }
        len += (size_t)r;
    }
    free(buf);
    return got;
}

/* A request head: method, path with nargs query parameters making a request
 * target of exactly target_len bytes (nargs 0: path as is), then Host,
 * `extra` (complete header lines, extra_fields of them) and filler fields up
 * to nfields fields in all; head_len > 0 makes the whole head (request line
 * through the blank line) exactly that long, else each filler is ~30 bytes. */
static char *make_head(const char *method, const char *path, int nargs, size_t target_len, const char *extra,
                       int extra_fields, int nfields, size_t head_len)
{
    size_t cap = 64 * 1024, n = 0;
    char *h = malloc(cap);
    cr_assert_not_null(h);
    n += (size_t)snprintf(h + n, cap - n, "%s %s", method, path);
    if (nargs > 0) {
        size_t avail = target_len - strlen(path) - 1 - (size_t)(nargs - 1); /* '?' and the '&'s */
        size_t per = avail / (size_t)nargs;
        cr_assert_geq(per, 6, "parameters too short to fit");
        h[n++] = '?';
        for (int i = 0; i < nargs; i++) {
            size_t len = per + (i == nargs - 1 ? avail % (size_t)nargs : 0);
            int k = snprintf(h + n, cap - n, "%sa%03d=", i ? "&" : "", i);
            n += (size_t)k;
            size_t v = len - (size_t)(k - (i ? 1 : 0));
            memset(h + n, 'v', v);
            n += v;
        }
        cr_assert_eq(n - strlen(method) - 1, target_len, "request target of %zu bytes", n - strlen(method) - 1);
    }
    n += (size_t)snprintf(h + n, cap - n, " HTTP/1.1\r\nHost: 127.0.0.1\r\n%s", extra ? extra : "");
    int fill = nfields - 1 - extra_fields;
    cr_assert_geq(fill, 0);
    if (fill > 0) {
        size_t per = 30, last = 30;
        if (head_len) {
            cr_assert_gt(head_len, n + 2 + (size_t)fill * 15, "head too short for its fields");
            size_t room = head_len - n - 2 - (size_t)fill * 14; /* "X-Fill-NNN: " + CRLF = 14 */
            per = room / (size_t)fill;
            last = per + room % (size_t)fill;
        }
        for (int i = 0; i < fill; i++) {
            size_t v = i == fill - 1 ? last : per;
            cr_assert_lt(n + 14 + v + 3, cap);
            n += (size_t)snprintf(h + n, cap - n, "X-Fill-%03d: ", i);
            memset(h + n, 'f', v);
            n += v;
            memcpy(h + n, "\r\n", 2);
            n += 2;
        }
    }
    memcpy(h + n, "\r\n", 3);
    n += 2;
    if (head_len)
        cr_assert_eq(n, head_len, "head of %zu bytes, wanted %zu", n, head_len);
    return h;
}

/* Send raw on a new connection, read `want` answers; returns the fd (open). */
static int exchange(const char *raw, size_t len, answer *a, int want, int timeout_ms, int *got, int *eof,
                    long long *took_ms)
{
    int fd = raw_connect();
    long long t0 = mono_ms();
    raw_send(fd, raw, len);
    *got = read_answers(fd, a, want, timeout_ms, eof);
    *took_ms = mono_ms() - t0;
    return fd;
}

/* ---------------------------------------------------------------- limits */

static void assert_answered(const char *what, const char *head, const char *body, long status)
{
    size_t hl = strlen(head), bl = body ? strlen(body) : 0;
    char *raw = malloc(2 * (hl + bl) + 1);
    cr_assert_not_null(raw);
    memcpy(raw, head, hl);
    if (bl)
        memcpy(raw + hl, body, bl);
    /* the same request twice in one send(): pipelined on a kept-alive connection */
    memcpy(raw + hl + bl, raw, hl + bl);
    answer a[2];
    int got, eof;
    long long took;
    int fd = exchange(raw, 2 * (hl + bl), a, 2, react_ms(3000), &got, &eof, &took);
    cr_log_info("%s: %zu-byte head, %d answer(s) in %lld ms", what, hl, got, took);
    cr_assert_eq(got, 2, "%s (a %zu-byte head): %d of 2 pipelined answers within 3 s%s", what, hl, got,
                 eof ? ", then the connection was closed" : "");
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(a[i].status, status, "%s, answer %d: %s%s", what, i + 1, a[i].head, a[i].body);
        cr_assert(!a[i].close, "%s, answer %d closes the connection: %s", what, i + 1, a[i].head);
    }
    cr_assert(!eof, "%s: the connection was closed after the answers", what);
    /* and a third request on the same connection, now that it has been reused */
    raw_send(fd, raw, hl + bl);
    got = read_answers(fd, a, 1, react_ms(3000), &eof);
    cr_assert_eq(got, 1, "%s: no answer to a request on the kept-alive connection", what);
    cr_assert_eq(a[0].status, status, "%s, third answer: %s%s", what, a[0].head, a[0].body);
    close(fd);
    free(raw);
}

Test(edge_limits, requests_within_the_limits_are_answered)
{
    char *h;
    h = make_head("GET", "/health", LIMIT_ARGS, 3970, NULL, 0, 6, 0); /* ~30 bytes a parameter */
    assert_answered("128 query parameters", h, NULL, 200);
    free(h);

    char big[5200];
    memcpy(big, "X-Big: ", 7);
    memset(big + 7, 'b', 5000);
    memcpy(big + 5007, "\r\n", 3);
    h = make_head("GET", "/health", 40, 1200, big, 1, 8, 0);
    assert_answered("40 query parameters and a 5 KB header field", h, NULL, 200);
    free(h);

    h = make_head("GET", "/health", 1, LIMIT_URI, NULL, 0, 5, 0);
    assert_answered("a 4096-byte request target", h, NULL, 200);
    free(h);

    h = make_head("GET", "/health", 0, 0, NULL, 0, LIMIT_FIELDS, 0);
    assert_answered("100 header fields", h, NULL, 200);
    free(h);

    /* libmicrohttpd keeps a record per cookie too: a browser's 100 cookies (closed the connection before) */
    char cookies[2048] = "Cookie: ";
    for (int i = 0; i < 100; i++)
        snprintf(cookies + strlen(cookies), sizeof cookies - strlen(cookies), "%sc%02d=%d", i ? "; " : "", i, i);
    strcat(cookies, "\r\n");
    h = make_head("GET", "/health", 0, 0, cookies, 1, 10, 0);
    assert_answered("a Cookie header of 100 cookies", h, NULL, 200);
    free(h);

    /* every limit at once: the largest request head promised */
    char auth[160];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", S.admin_key);
    h = make_head("GET", "/prompts", LIMIT_ARGS, LIMIT_URI, auth, 1, LIMIT_FIELDS, LIMIT_HEAD);
    assert_answered("4096-byte target, 128 parameters, 100 fields in 12 KiB", h, NULL, 200);
    free(h);

    /* the same with a body behind it in the same send(): body bytes fill libmicrohttpd's read buffer */
    char body[2048];
    int blen = snprintf(body, sizeof body, "{\"prompt\":{\"name\":\"edge\",\"content\":\"%0900d\"}}", 0);
    /* and the longest X-Request-Id, which the answer echoes: the answer's own header must fit too */
    char rid[129], extra[512];
    memset(rid, 'r', 128);
    rid[128] = '\0';
    snprintf(extra, sizeof extra, "%sContent-Type: application/json\r\nContent-Length: %d\r\nX-Request-Id: %s\r\n",
             auth, blen, rid);
    h = make_head("POST", "/prompts", LIMIT_ARGS, LIMIT_URI, extra, 4, LIMIT_FIELDS, LIMIT_HEAD);
    assert_answered("POST at every limit with a body", h, body, 201);
    free(h);

    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/prompts", S.admin_key, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(json_integer_value(pd_json_at(r.json, "meta.totalRecords")), 3, "%s", r.body);
    pd_resp_free(&r);
}

/* One past a limit: its 4xx at once, never a 408 after the header deadline
 * or a connection closed without an answer. */
static void assert_refused(const char *what, const char *head, long status, const char *detail)
{
    answer a[1];
    int got, eof;
    long long took;
    int fd = exchange(head, strlen(head), a, 1, react_ms(3000), &got, &eof, &took);
    close(fd);
    cr_log_info("%s: %ld in %lld ms", what, a[0].status, took);
    cr_assert_eq(got, 1, "%s: no answer within 3 s%s", what, eof ? " (the connection was closed)" : "");
    cr_assert_eq(a[0].status, status, "%s: %s%s", what, a[0].head, a[0].body);
    cr_assert_lt(took, react_ms(1000), "%s: answered after %lld ms", what, took);
    if (detail)
        cr_assert(strstr(a[0].body, detail), "%s: '%s' not in %s", what, detail, a[0].body);
    cr_assert(a[0].close, "%s: the refusal does not close the connection: %s", what, a[0].head);
}

Test(edge_limits, one_past_a_limit_is_refused_at_once)
{
    char *h;
    h = make_head("GET", "/health", 1, LIMIT_URI + 1, NULL, 0, 5, 0);
    assert_refused("a 4097-byte request target", h, 414, "over 4096 bytes");
    free(h);

    h = make_head("GET", "/health", LIMIT_ARGS + 1, 3970, NULL, 0, 5, 0);
    assert_refused("129 query parameters", h, 431, "More than 128 query parameters");
    free(h);

    h = make_head("GET", "/health", 0, 0, NULL, 0, LIMIT_FIELDS + 1, 0);
    assert_refused("101 header fields", h, 431, "Too many header fields (at most 100)");
    free(h);

    h = make_head("GET", "/health", LIMIT_ARGS, LIMIT_URI, NULL, 0, LIMIT_FIELDS, LIMIT_HEAD + 1);
    assert_refused("a 12289-byte head", h, 431, "take 12289 bytes (at most 12288)");
    free(h);

    /* far past: more than the connection's buffer holds, libmicrohttpd's own 431 */
    h = make_head("GET", "/health", 0, 0, NULL, 0, 40, 40000);
    assert_refused("a 40000-byte head", h, 431, NULL);
    free(h);

    h = make_head("GET", "/health", 0, 0, NULL, 0, 1000, 0);
    assert_refused("1000 header fields", h, 431, NULL);
    free(h);

    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/health", NULL, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200, "%s", r.body);
    pd_resp_free(&r);
    cr_assert_eq(pd_stop(&S), 0, "promptd did not exit 0 on SIGTERM");
}

/* ---------------------------------------------------------------- framing */

static const char prompt_body[] = "{\"prompt\":{\"name\":\"framed\",\"content\":\"hi\"}}";

/* POST raw (head + prompt_body) to path; one answer, which must close the connection. */
static void post_framed(const char *path, const char *fields, long status, answer *a)
{
    char raw[2048];
    int n = snprintf(raw, sizeof raw,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\n%s\r\n%s",
                     path, S.admin_key, fields, prompt_body);
    int got, eof;
    long long took;
    int fd = exchange(raw, (size_t)n, a, 1, react_ms(3000), &got, &eof, &took);
    close(fd);
    cr_assert_eq(got, 1, "POST %s with %s: no answer within 3 s%s", path, fields, eof ? " (closed)" : "");
    cr_assert_eq(a->status, status, "POST %s with %s: %s%s", path, fields, a->head, a->body);
    cr_assert_lt(took, react_ms(1000), "POST %s with %s: answered after %lld ms", path, fields, took);
    if (status >= 400) {
        cr_assert(a->close, "POST %s with %s: the refusal keeps the connection: %s", path, fields, a->head);
        cr_assert(eof, "POST %s with %s: the connection stayed open after the refusal", path, fields);
    }
}

static long prompt_count(void)
{
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", "/prompts", S.admin_key, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200, "%s", r.body);
    long n = (long)json_integer_value(pd_json_at(r.json, "meta.totalRecords"));
    pd_resp_free(&r);
    return n;
}

static void assert_jarvis(const answer *a, const char *status, const char *code, const char *detail)
{
    json_t *j = json_loads(a->body, 0, NULL);
    cr_assert_not_null(j, "not JSON: %s", a->body);
    cr_assert_str_eq(pd_str_at(j, "errors.0.status"), status, "%s", a->body);
    cr_assert_str_eq(pd_str_at(j, "errors.0.code"), code, "%s", a->body);
    cr_assert(strstr(pd_str_at(j, "errors.0.detail"), detail), "'%s' not in %s", detail, a->body);
    json_decref(j);
}

Test(edge_framing, content_length_twice_with_different_values_is_400)
{
    size_t len = sizeof prompt_body - 1;
    char f[160];
    answer a;
    snprintf(f, sizeof f, "Content-Length: %zu\r\nContent-Length: 5\r\n", len);
    post_framed("/prompts", f, 400, &a);
    assert_jarvis(&a, "400", "bad_request", "Content-Length is given more than once with different values");
    snprintf(f, sizeof f, "Content-Length: 5\r\nContent-Length: %zu\r\n", len);
    post_framed("/api/v1/prompts", f, 400, &a);
    json_t *j = json_loads(a.body, 0, NULL);
    cr_assert_not_null(j, "%s", a.body);
    cr_assert_str_eq(pd_str_at(j, "error.code"), "BAD_REQUEST", "%s", a.body);
    cr_assert(strstr(pd_str_at(j, "error.message"), "Content-Length"), "%s", a.body);
    json_decref(j);
    snprintf(f, sizeof f, "Content-Length: %zu\r\nTransfer-Encoding: chunked\r\n", len);
    post_framed("/prompts", f, 400, &a);
    assert_jarvis(&a, "400", "bad_request", "Both Transfer-Encoding and Content-Length");
    cr_assert_eq(prompt_count(), 0, "a refused request created a prompt");

    /* the same length twice is one length (RFC 9110, 8.6): accepted */
    snprintf(f, sizeof f, "Content-Length: %zu\r\nContent-Length: %zu\r\n", len, len);
    post_framed("/prompts", f, 201, &a);
    cr_assert_eq(prompt_count(), 1);
}

Test(edge_framing, transfer_coding_other_than_chunked_is_501)
{
    answer a;
    post_framed("/prompts", "Transfer-Encoding: gzip\r\n", 501, &a);
    assert_jarvis(&a, "501", "not_implemented", "Transfer-Encoding 'gzip' is not supported: only chunked");

    post_framed("/api/v1/prompts", "Transfer-Encoding: gzip\r\n", 501, &a);
    json_t *j = json_loads(a.body, 0, NULL);
    cr_assert_not_null(j, "%s", a.body);
    cr_assert(json_is_false(pd_json_at(j, "success")), "%s", a.body);
    cr_assert_str_eq(pd_str_at(j, "error.code"), "NOT_IMPLEMENTED", "%s", a.body);
    json_decref(j);

    post_framed("/v1/chat/completions", "Transfer-Encoding: gzip, chunked\r\n", 501, &a);
    j = json_loads(a.body, 0, NULL);
    cr_assert_not_null(j, "%s", a.body);
    cr_assert(strstr(pd_str_at(j, "error.message"), "'gzip, chunked' is not supported"), "%s", a.body);
    json_decref(j);

    post_framed("/prompts", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 501, &a);
    assert_jarvis(&a, "501", "not_implemented", "given more than once");
    cr_assert_eq(prompt_count(), 0, "a refused request created a prompt");

    /* chunked itself (any case) still works */
    char raw[1024];
    int n = snprintf(raw, sizeof raw,
                     "POST /prompts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nTransfer-Encoding: Chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
                     S.admin_key, sizeof prompt_body - 1, prompt_body);
    int got, eof;
    long long took;
    int fd = exchange(raw, (size_t)n, &a, 1, react_ms(3000), &got, &eof, &took);
    close(fd);
    cr_assert_eq(got, 1);
    cr_assert_eq(a.status, 201, "%s%s", a.head, a.body);
    cr_assert_eq(prompt_count(), 1);
}

/* ---------------------------------------------------------------- pipelining */

/* Requests written in one send() behind one that waits on the model (its
 * connection suspended) are answered, in order, on the same connection. */
static char *post_raw(const char *path, const char *body)
{
    char *raw = NULL;
    cr_assert_geq(asprintf(&raw,
                           "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                           "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                           path, S.admin_key, strlen(body), body),
                  0);
    return raw;
}

static const char health_raw[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

Test(edge_pipeline, requests_behind_a_waiting_one_are_answered_in_order)
{
    char pid[64], path[160];
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "msg", "{{msg}}", pid, sizeof pid), 201);
    snprintf(path, sizeof path, "/prompts/%s/execute", pid);
    char *chat =
        post_raw("/v1/chat/completions",
                 "{\"model\":\"openai/m\",\"messages\":[{\"role\":\"user\",\"content\":\"[mock:latency=700] one\"}]}");
    char *exe = post_raw(path, "{\"model\":\"openai/m\",\"variables\":{\"msg\":\"[mock:latency=500] two\"}}");
    struct {
        const char *what;
        const char *parts[4];
        int pause_after_first; /* ms between the first request and the rest: they arrive while it waits */
        long status[3];
        const char *content[3];
    } cases[] = {
        {"chat + health", {chat, health_raw, NULL}, 0, {200, 200}, {"mock reply: one", "\"status\""}},
        {"chat, then health while it waits",
         {chat, health_raw, NULL},
         200,
         {200, 200},
         {"mock reply: one", "\"status\""}},
        {"execute + health + health",
         {exe, health_raw, health_raw, NULL},
         0,
         {200, 200, 200},
         {"mock reply: two", "\"status\"", "\"status\""}},
        {"chat + execute", {chat, exe, NULL}, 0, {200, 200}, {"mock reply: one", "mock reply: two"}},
        {"execute, then chat while it waits",
         {exe, chat, NULL},
         200,
         {200, 200},
         {"mock reply: two", "mock reply: one"}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int n = 0;
        size_t len0 = strlen(cases[c].parts[0]), rest = 0;
        for (; cases[c].parts[n]; n++)
            rest += n ? strlen(cases[c].parts[n]) : 0;
        char *raw = malloc(len0 + rest + 1);
        cr_assert_not_null(raw);
        size_t off = 0;
        for (int i = 0; i < n; i++) {
            memcpy(raw + off, cases[c].parts[i], strlen(cases[c].parts[i]));
            off += strlen(cases[c].parts[i]);
        }
        int fd = raw_connect();
        if (cases[c].pause_after_first) {
            raw_send(fd, raw, len0);
            usleep((useconds_t)cases[c].pause_after_first * 1000);
            raw_send(fd, raw + len0, rest);
        } else {
            raw_send(fd, raw, off); /* one send(): every request in promptd's first read */
        }
        answer a[3];
        int eof;
        int got = read_answers(fd, a, n, react_ms(5000), &eof);
        close(fd);
        free(raw);
        cr_assert_eq(got, n, "%s: %d of %d answers%s", cases[c].what, got, n,
                     got && eof && !a[got - 1].close ? " (the connection closed without saying so)" : "");
        for (int i = 0; i < n; i++) {
            cr_assert_eq(a[i].status, cases[c].status[i], "%s, answer %d: %s%s", cases[c].what, i + 1, a[i].head,
                         a[i].body);
            cr_assert(strstr(a[i].body, cases[c].content[i]), "%s, answer %d out of order: %s", cases[c].what, i + 1,
                      a[i].body);
            cr_assert(!a[i].close, "%s, answer %d closes the connection", cases[c].what, i + 1);
        }
        cr_assert(!eof, "%s: the connection was closed after the answers", cases[c].what);
    }
    free(chat);
    free(exe);
    cr_assert_eq(pd_stop(&S), 0, "promptd did not exit 0 on SIGTERM");
}
