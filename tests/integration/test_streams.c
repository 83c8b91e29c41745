/*
 * test_streams.c — streamed answers and clients that stop reading, over real
 * sockets:
 *
 *  - a raw client sends a stream request with a large echo prompt (0.8 MB of
 *    one-letter words: 400,000 pieces) and never reads (a 4 KiB receive
 *    buffer): the server's resident memory (VmRSS of the promptd the harness
 *    started) grows by no more than the stream's cap plus the execution's own
 *    copies of the prompt and answer, and the server burns no CPU while the
 *    client stalls (the model is paused, nothing spins); past the stall
 *    deadline the connection is closed (the client finds the end of the
 *    stream without the last event), and the execution is `completed` with
 *    the whole output;
 *  - 40 such clients at once, on the OpenAI surface (the largest frames):
 *    memory stays under the documented per-stream cap times 40 plus the
 *    prompts' copies, far from the 1.5 GB it took without a cap; every
 *    execution completes;
 *  - the server's total: with a total smaller than the sum of the streams'
 *    caps, 40 stalled streams fed by an upstream (the mock provider, the
 *    paused-transfer path) hold no more than the total;
 *  - a client that reads gets every byte, through many stops and goes (a
 *    4 KiB stream cap): echo and an upstream, on each streaming route
 *    (Jarvis execute/stream, OpenAI chat completions with two choices
 *    sharing the stream, a cluster reply stream with two members).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
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

#define PROMPT_BYTES (800 * 1000) /* "a a a ...": 400,000 words */
#define STALLED 40

static pd_server S;
static mock_proc M;

static void teardown(void)
{
    pd_stop(&S);
    mock_proc_stop(&M);
}

TestSuite(streams, .fini = teardown, .timeout = 600);

/* Under `make test SAN=1` (ASAN_OPTIONS set) promptd runs several times
 * slower and AddressSanitizer's allocator keeps freed memory in quarantine:
 * RSS then says nothing of what promptd holds, so the memory figures are
 * asserted on the plain build only; everything else (the pause, the
 * deadline, the record, every byte to a reader) is checked in both. */
static int sanitized(void)
{
    const char *v = getenv("ASAN_OPTIONS");
    return v && *v;
}

/* Seconds to wait for something the server does on its own. */
static double patience(double plain) { return sanitized() ? plain * 8 : plain; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* VmRSS of pid in KiB. */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    cr_assert_gt(kib, 0, "no VmRSS for %d", (int)pid);
    return kib;
}

/* CPU time (user + system) of pid in clock ticks. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command may hold spaces */
    cr_assert(p);
    unsigned long ut = 0, st = 0;
    /* fields after the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st), 2);
    return (long)(ut + st);
}

/* "a a a ... a" of PROMPT_BYTES bytes (malloc'd). */
static char *big_text(size_t bytes)
{
    char *t = malloc(bytes + 1);
    cr_assert(t);
    for (size_t i = 0; i < bytes; i += 2) {
        t[i] = 'a';
        if (i + 1 < bytes)
            t[i + 1] = ' ';
    }
    t[bytes - 1] = 'a'; /* no trailing space: the mock trims its reply */
    t[bytes] = '\0';
    return t;
}

/* Send a POST with body on a new connection whose receive buffer is tiny,
 * read nothing; the socket. */
static int stalled_client(const char *path, const char *auth_header, const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    int small = 4096;
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)S.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
    size_t blen = strlen(body);
    char head[512];
    int hl = snprintf(head, sizeof head,
                      "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      path, auth_header, blen);
    cr_assert_eq(send(fd, head, (size_t)hl, MSG_NOSIGNAL), hl);
    for (size_t off = 0; off < blen;) {
        ssize_t n = send(fd, body + off, blen - off, MSG_NOSIGNAL);
        cr_assert_gt(n, 0, "send: %s", strerror(errno));
        off += (size_t)n;
    }
    return fd;
}

/* Read fd until the peer closes it or timeout_s passes; what came (malloc'd,
 * NUL-terminated) and whether the end was seen. */
static char *read_to_end(int fd, double timeout_s, size_t *len, int *eof)
{
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap);
    cr_assert(buf);
    *eof = 0;
    double end = now_s() + timeout_s;
    while (now_s() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)((end - now_s()) * 1000) + 1;
        if (poll(&p, 1, left) <= 0)
            continue;
        if (cap - n < 65536) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert(buf);
        }
        ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) {
            *eof = 1;
            break;
        }
        cr_assert_geq(r, 0, "recv: %s", strerror(errno));
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* 1 once the server's end of fd's connection is closed (its socket left
 * ESTABLISHED: FIN-WAIT, or gone), read in /proc/net/tcp so that the client
 * need not read (reading would feed the stream again). */
static int server_closed(int fd)
{
    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&me, &ml), 0);
    unsigned want_local = (unsigned)S.port, want_remote = ntohs(me.sin_port);
    FILE *f = fopen("/proc/net/tcp", "r");
    cr_assert(f);
    char line[512];
    int state = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned la, lp, ra, rp, st;
        if (sscanf(line, " %*d: %8X:%4X %8X:%4X %2X", &la, &lp, &ra, &rp, &st) == 5 && lp == want_local &&
            rp == want_remote)
            state = (int)st;
    }
    fclose(f);
    return state != 0x01; /* TCP_ESTABLISHED */
}

/* Wait up to timeout_s for server_closed(fd). */
static int wait_server_closed(int fd, double timeout_s)
{
    double end = now_s() + timeout_s;
    while (!server_closed(fd)) {
        if (now_s() > end)
            return 0;
        usleep(100 * 1000);
    }
    return 1;
}

/* The X-Execution-Id of a raw answer (first id when it lists several). */
static void execution_id(const char *raw, char *out, size_t outlen)
{
    const char *h = strcasestr(raw, "\r\nX-Execution-Id: ");
    cr_assert(h, "no X-Execution-Id in %.300s", raw);
    h += strlen("\r\nX-Execution-Id: ");
    size_t n = strcspn(h, ",\r\n");
    cr_assert_lt(n, outlen);
    memcpy(out, h, n);
    out[n] = '\0';
}

static void expect_completed(const char *exec_id, size_t output_len)
{
    char path[128];
    snprintf(path, sizeof path, "/executions/%s", exec_id);
    pd_resp r;
    cr_assert_eq(pd_req(&S, "GET", path, S.admin_key, NULL, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(pd_str_at(r.json, "data.attributes.status"), "completed", "%.500s", r.body);
    const char *out = pd_str_at(r.json, "data.attributes.output");
    cr_assert(out);
    cr_assert_eq(strlen(out), output_len, "execution %s recorded %zu bytes of output, not %zu", exec_id, strlen(out),
                 output_len);
    pd_resp_free(&r);
}

static char *chat_body(const char *text, int n)
{
    return pd_pack("{s:s, s:b, s:i, s:[{s:s, s:s}]}", "model", "echo", "stream", 1, "n", n, "messages", "role", "user",
                   "content", text);
}

/* Wait until the server has answered fd (its status line is in): the
 * request was taken and its stream opened. Nothing is read. */
static void wait_answered(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 60000), 1, "no answer within 60 s");
}

/* A whole stream read by a client that keeps up (libcurl): brings the
 * server's heap to what one such request takes, so that what stalled
 * streams add is measured apart from it. */
static void warm_up(const char *path, const char *const *headers, const char *body)
{
    if (sanitized())
        return; /* no memory figure is asserted there */
    pd_resp r;
    cr_assert_eq(pd_req(&S, "POST", path, headers ? NULL : S.admin_key, body, headers, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200, "%.300s", r.body);
    pd_resp_free(&r);
}

static void start(const char *const *env) { cr_assert_eq(pd_start(&S, NULL, env), 0, "promptd did not start"); }

/* Settle: RSS no longer rising (by more than 256 KiB in a second), the
 * server done with every request and every stream as full as it gets. */
static long settled_rss(void)
{
    long mark = rss_kib(S.pid), cur = mark;
    double since = now_s(), end = since + patience(20);
    while (now_s() < end) {
        usleep(250 * 1000);
        cur = rss_kib(S.pid);
        if (cur > mark + 256) {
            mark = cur;
            since = now_s();
        } else if (now_s() - since >= 1.0) {
            break;
        }
    }
    return cur;
}

/* One client on /prompts/:id/execute/stream that never reads: capped, no
 * CPU while it stalls, cut at the deadline, recorded whole. */
Test(streams, stalled_client_is_capped_then_cut_and_recorded)
{
    /* one server thread: its heap is what the warm-up grew (a second thread
     * would grow its own for the first request it takes) */
    const char *env[] = {"PROMPTD_STREAM_STALL_TIMEOUT=3", "PROMPTD_THREADS=1", NULL};
    start(env);
    char pid_[64];
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "big", "{{text}}", pid_, sizeof pid_), 201);
    char *text = big_text(PROMPT_BYTES);
    char *body = pd_pack("{s:{s:s}}", "variables", "text", text);
    char path[128], auth[128];
    snprintf(path, sizeof path, "/prompts/%s/execute/stream", pid_);
    snprintf(auth, sizeof auth, "AppId: %s", S.admin_key);

    warm_up(path, NULL, body);
    long before = rss_kib(S.pid);
    int fd = stalled_client(path, auth, body);
    wait_answered(fd);
    double t0 = now_s();
    long after = settled_rss();
    long grown = after - before;
    /* the cap (256 KiB) and a frame past it, the answer the engine keeps for
     * the record (0.8 MB), and the database's page cache taking this
     * execution's 2.4 MB row (bounded, not per stream): under 5 MB. Without
     * a cap, 10 MB of frames were held for this client (85 MB on /v1). */
    cr_log_info("one stalled execute/stream: RSS %ld -> %ld KiB (+%ld)", before, after, grown);
    if (!sanitized())
        cr_assert_lt(grown, 5 * 1024, "RSS grew by %ld KiB for one stalled stream", grown);

    /* paused, not spinning: the stall costs no CPU */
    long c0 = cpu_ticks(S.pid);
    usleep(1000 * 1000);
    long spent = cpu_ticks(S.pid) - c0;
    if (!sanitized())
        cr_assert_lt(spent, 20, "promptd used %ld ticks in 1 s of a stalled stream", spent);

    /* the deadline (3 s without taking a byte) closes the connection; not
     * before: the server's end is still open a moment before it */
    if (now_s() - t0 < 2.0)
        cr_assert_not(server_closed(fd), "closed before its deadline");
    cr_assert(wait_server_closed(fd, patience(15)), "the stalled stream was not closed %.1f s after its answer",
              now_s() - t0);
    double cut = now_s() - t0;
    cr_log_info("one stalled execute/stream: closed %.1f s after its answer (deadline 3 s)", cut);
    cr_assert_geq(cut, 2.0, "closed %.1f s after its answer, before the 3 s deadline", cut);
    size_t len;
    int eof;
    char *got = read_to_end(fd, patience(10), &len, &eof);
    close(fd);
    cr_assert(eof, "the stalled stream was not closed (%zu bytes read)", len);
    cr_assert(strstr(got, "200 OK"), "%.300s", got);
    cr_assert_null(strstr(got, "event: done"), "a cut stream must not end as if complete");
    cr_assert_lt(len, PROMPT_BYTES, "the client got %zu bytes: the stream was not cut", len);
    char eid[64];
    execution_id(got, eid, sizeof eid);
    /* the model's whole answer is recorded, whatever the client took */
    double until = now_s() + patience(10);
    for (;;) {
        pd_resp r;
        char ep[128];
        snprintf(ep, sizeof ep, "/executions/%s", eid);
        cr_assert_eq(pd_req(&S, "GET", ep, S.admin_key, NULL, NULL, &r), 0);
        int done = r.status == 200 && strcmp(pd_str_at(r.json, "data.attributes.status"), "processing") != 0;
        pd_resp_free(&r);
        if (done || now_s() > until)
            break;
        usleep(100 * 1000);
    }
    expect_completed(eid, PROMPT_BYTES);
    free(got);
    free(body);
    free(text);
}

/* 40 clients on /v1/chat/completions (about 200 bytes of frame per 2-byte
 * piece: 85 MB each without a cap) that never read. */
Test(streams, forty_stalled_clients_stay_under_the_caps)
{
    /* a deadline longer than it takes to start the 40, so that none is cut
     * before the memory is measured */
    const char *env[] = {"PROMPTD_STREAM_STALL_TIMEOUT=15", NULL};
    start(env);
    char *text = big_text(PROMPT_BYTES);
    char *body = chat_body(text, 1);
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", S.admin_key);
    int fds[STALLED];

    const char *hdrs[] = {auth, NULL};
    warm_up("/v1/chat/completions", hdrs, body);
    long before = rss_kib(S.pid);
    /* one after the other: 40 bodies of 0.8 MB read at once would raise the
     * heap for a moment, and the allocator keeps what a peak took */
    for (int i = 0; i < STALLED; i++) {
        fds[i] = stalled_client("/v1/chat/completions", auth, body);
        wait_answered(fds[i]);
    }
    double t0 = now_s(); /* the last stream's deadline runs from about here */
    long after = settled_rss();
    if (!sanitized())
        cr_assert_not(server_closed(fds[0]), "the first stream was cut before the memory was measured");
    long grown = after - before;
    cr_log_info("%d stalled /v1 streams: RSS %ld -> %ld KiB (+%ld, %ld per stream)", STALLED, before, after, grown,
                grown / STALLED);
    /* per stream: the 256 KiB cap (+ a frame), the answer's copy kept for
     * the record (0.8 MB) and the connection's own: under 1.5 MB each */
    if (!sanitized())
        cr_assert_lt(grown, STALLED * 1536L, "RSS grew by %ld KiB for %d stalled streams", grown, STALLED);

    /* all cut at the deadline; all recorded whole */
    for (int i = 0; i < STALLED; i++)
        cr_assert(wait_server_closed(fds[i], patience(30)), "stalled stream %d not closed %.1f s after the last answer",
                  i, now_s() - t0);
    cr_log_info("%d stalled streams closed within %.1f s of the last answer (deadline 15 s)", STALLED, now_s() - t0);
    for (int i = 0; i < STALLED; i++) {
        size_t len;
        int eof;
        char *got = read_to_end(fds[i], patience(20), &len, &eof);
        close(fds[i]);
        cr_assert(eof, "stalled stream %d was not closed", i);
        cr_assert_null(strstr(got, "[DONE]"), "stream %d ended as if complete", i);
        char eid[64];
        execution_id(got, eid, sizeof eid);
        free(got);
        double until = now_s() + patience(10);
        for (;;) { /* recorded by the recorder a moment after the model's end */
            char ep[128];
            pd_resp r;
            snprintf(ep, sizeof ep, "/executions/%s", eid);
            cr_assert_eq(pd_req(&S, "GET", ep, S.admin_key, NULL, NULL, &r), 0);
            int done = r.status == 200 && strcmp(pd_str_at(r.json, "data.attributes.status"), "processing") != 0;
            pd_resp_free(&r);
            if (done || now_s() > until)
                break;
            usleep(100 * 1000);
        }
        expect_completed(eid, PROMPT_BYTES);
    }
    long end = rss_kib(S.pid);
    cr_log_info("after the %d streams were cut: RSS %ld KiB", STALLED, end);
    free(body);
    free(text);
}

/* ---- clients that read: every byte, through many stops and goes ---- */

/* Every SSE event of body whose name is event (NULL: the default, unnamed
 * ones): its data parsed, passed to fn. The count. */
static int each_event(const char *body, const char *event, void (*fn)(json_t *data, void *ud), void *ud)
{
    int n = 0;
    const char *p = strstr(body, "\r\n\r\n"); /* pd_resp bodies have no head; raw ones do */
    p = p ? p + 4 : body;
    while (*p) {
        const char *end = strstr(p, "\n\n");
        if (!end)
            break;
        const char *ev = NULL, *data = NULL;
        size_t evlen = 0, dlen = 0;
        for (const char *l = p; l < end;) {
            const char *nl = memchr(l, '\n', (size_t)(end - l));
            const char *le = nl ? nl : end;
            if (strncmp(l, "event: ", 7) == 0)
                ev = l + 7, evlen = (size_t)(le - l - 7);
            else if (strncmp(l, "data: ", 6) == 0)
                data = l + 6, dlen = (size_t)(le - l - 6);
            l = nl ? nl + 1 : end;
        }
        int match = event ? ev && evlen == strlen(event) && strncmp(ev, event, evlen) == 0 : !ev;
        if (match && data && !(dlen == 6 && strncmp(data, "[DONE]", 6) == 0)) {
            json_error_t e;
            json_t *j = json_loadb(data, dlen, 0, &e);
            cr_assert(j, "bad event data: %.*s", (int)(dlen < 200 ? dlen : 200), data);
            fn(j, ud);
            json_decref(j);
            n++;
        }
        p = end + 2;
    }
    return n;
}

typedef struct texts {
    char *s[4];
    size_t len[4];
    const char *key;      /* the member that says which text (a choice's index, a reply's entity) */
    const char *names[4]; /* entity ids, for key "entity_id" */
} texts;

static void texts_add(texts *t, int i, const char *piece)
{
    cr_assert(i >= 0 && i < 4);
    size_t n = strlen(piece);
    t->s[i] = realloc(t->s[i], t->len[i] + n + 1);
    cr_assert(t->s[i]);
    memcpy(t->s[i] + t->len[i], piece, n + 1);
    t->len[i] += n;
}

static void add_content(json_t *d, void *ud) { texts_add(ud, 0, json_string_value(json_object_get(d, "content"))); }

static void add_choice(json_t *d, void *ud)
{
    json_t *c = json_array_get(json_object_get(d, "choices"), 0);
    const char *piece = pd_str_at(c, "delta.content");
    if (c && piece)
        texts_add(ud, (int)json_integer_value(json_object_get(c, "index")), piece);
}

static void add_reply(json_t *d, void *ud)
{
    texts *t = ud;
    const char *who = pd_str_at(d, "entity_id");
    for (int i = 0; i < 4; i++)
        if (t->names[i] && who && strcmp(t->names[i], who) == 0) {
            texts_add(t, i, pd_str_at(d, "content"));
            return;
        }
    cr_assert_fail("a reply_chunk from an unknown entity");
}

static void texts_free(texts *t)
{
    for (int i = 0; i < 4; i++)
        free(t->s[i]);
}

/* promptd with a 4 KiB stream cap (every few pieces stop the model) and the
 * mock as provider "openai". */
static void start_small_with_mock(void)
{
    cr_assert_eq(mock_proc_start(&M, NULL), 0, "mock did not start");
    static char oa[160];
    snprintf(oa, sizeof oa, "OPENAI_BASE_URL=%s/v1", M.base_url);
    const char *env[] = {oa, "OPENAI_API_KEY=x", "PROMPTD_STREAM_BUFFER=4K", NULL};
    start(env);
}

Test(streams, reader_gets_every_byte_of_execute_stream)
{
    start_small_with_mock();
    char pid_[64];
    cr_assert_eq(pd_create_prompt(&S, S.admin_key, "big", "{{text}}", pid_, sizeof pid_), 201);
    char *text = big_text(60 * 1000);
    const char *models[] = {"echo", "openai/m"};
    for (int m = 0; m < 2; m++) {
        char *body = pd_pack("{s:{s:s}, s:s}", "variables", "text", text, "model", models[m]);
        char path[128];
        snprintf(path, sizeof path, "/prompts/%s/execute/stream", pid_);
        pd_resp r;
        cr_assert_eq(pd_req(&S, "POST", path, S.admin_key, body, NULL, &r), 0, "%s", r.error);
        cr_assert_eq(r.status, 200, "%.300s", r.body);
        texts t = {0};
        int pieces = each_event(r.body, NULL, add_content, &t);
        cr_assert_eq(pd_count(r.body, "event: done\n"), 1, "%s: no done event", models[m]);
        char *want = malloc(strlen(text) + 16);
        cr_assert(want);
        sprintf(want, "%s%s", m == 0 ? "" : "mock reply: ", text);
        cr_assert_eq(t.len[0], strlen(want), "%s: %zu bytes of content in %d pieces, not %zu", models[m], t.len[0],
                     pieces, strlen(want));
        cr_assert(strcmp(t.s[0], want) == 0, "%s: the content differs", models[m]);
        cr_log_info("%s: %d pieces, %zu bytes through a 4 KiB stream cap", models[m], pieces, t.len[0]);
        char eid[64];
        snprintf(eid, sizeof eid, "%s", pd_header(&r, "X-Execution-Id"));
        expect_completed(eid, strlen(want));
        free(want);
        texts_free(&t);
        pd_resp_free(&r);
        free(body);
    }
    free(text);
}

/* Two choices share one stream and one valve: both arrive whole. */
Test(streams, reader_gets_every_byte_of_two_choices)
{
    start_small_with_mock();
    char *text = big_text(30 * 1000);
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", S.admin_key);
    const char *hdrs[] = {auth, NULL};
    const char *models[] = {"echo", "openai/m"};
    for (int m = 0; m < 2; m++) {
        char *body = pd_pack("{s:s, s:b, s:i, s:[{s:s, s:s}]}", "model", models[m], "stream", 1, "n", 2, "messages",
                             "role", "user", "content", text);
        pd_resp r;
        cr_assert_eq(pd_req(&S, "POST", "/v1/chat/completions", NULL, body, hdrs, &r), 0, "%s", r.error);
        cr_assert_eq(r.status, 200, "%.300s", r.body);
        cr_assert(strstr(r.body, "data: [DONE]\n\n"), "%s: no [DONE]", models[m]);
        texts t = {0};
        each_event(r.body, NULL, add_choice, &t);
        size_t want = strlen(text) + (m ? strlen("mock reply: ") : 0);
        for (int i = 0; i < 2; i++) {
            cr_assert_eq(t.len[i], want, "%s choice %d: %zu bytes, not %zu", models[m], i, t.len[i], want);
            cr_assert(strcmp(t.s[i] + (m ? strlen("mock reply: ") : 0), text) == 0, "%s choice %d differs", models[m],
                      i);
        }
        texts_free(&t);
        pd_resp_free(&r);
        free(body);
    }
    free(text);
}

/* Two members reply on one cluster stream: both arrive whole. */
Test(streams, reader_gets_every_byte_of_a_cluster_stream)
{
    const char *env[] = {"PROMPTD_STREAM_BUFFER=4K", NULL};
    start(env);
    char *text = big_text(30 * 1000);
    char ids[3][64];
    const char *what[] = {"/clusters", "/entities", "/entities"};
    const char *wrap[] = {"cluster", "entity", "entity"};
    for (int i = 0; i < 3; i++) {
        char *b = pd_pack("{s:{s:s, s:s}}", wrap[i], "name", i == 0 ? "team" : i == 1 ? "Ann" : "Bob", "model", "echo");
        pd_resp r;
        cr_assert_eq(pd_req(&S, "POST", what[i], S.admin_key, b, NULL, &r), 0);
        cr_assert_eq(r.status, 201, "%s", r.body);
        snprintf(ids[i], sizeof ids[i], "%s", pd_str_at(r.json, "data.id"));
        pd_resp_free(&r);
        free(b);
    }
    char path[256], conv[64];
    for (int i = 1; i < 3; i++) {
        snprintf(path, sizeof path, "/clusters/%s/members/%s", ids[0], ids[i]);
        pd_resp r;
        cr_assert_eq(pd_req(&S, "POST", path, S.admin_key, NULL, NULL, &r), 0);
        cr_assert_lt(r.status, 300, "%s", r.body);
        pd_resp_free(&r);
    }
    snprintf(path, sizeof path, "/clusters/%s/conversations", ids[0]);
    pd_resp r;
    cr_assert_eq(pd_req(&S, "POST", path, S.admin_key, "{\"conversation\":{\"title\":\"t\"}}", NULL, &r), 0);
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(conv, sizeof conv, "%s", pd_str_at(r.json, "data.id"));
    pd_resp_free(&r);

    char *body = pd_pack("{s:{s:s, s:s}}", "message", "role", "user", "content", text);
    snprintf(path, sizeof path, "/clusters/%s/conversations/%s/messages?stream=true", ids[0], conv);
    cr_assert_eq(pd_req(&S, "POST", path, S.admin_key, body, NULL, &r), 0, "%s", r.error);
    cr_assert_eq(r.status, 200, "%.300s", r.body);
    cr_assert_eq(pd_count(r.body, "event: done\n"), 1);
    texts t = {.names = {ids[1], ids[2]}};
    each_event(r.body, "reply_chunk", add_reply, &t);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(t.len[i], strlen(text), "member %d: %zu bytes, not %zu", i, t.len[i], strlen(text));
        cr_assert(strcmp(t.s[i], text) == 0, "member %d: the reply differs", i);
    }
    texts_free(&t);
    pd_resp_free(&r);
    free(body);
    free(text);
}

/* The server's total: streams fed by an upstream (paused transfers), each
 * allowed 1 MiB, together 4 MiB: 40 stalled clients hold about the total,
 * not 40 MiB. */
Test(streams, stalled_upstream_streams_stay_under_the_total)
{
    cr_assert_eq(mock_proc_start(&M, NULL), 0, "mock did not start");
    static char oa[160];
    snprintf(oa, sizeof oa, "OPENAI_BASE_URL=%s/v1", M.base_url);
    const char *env[] = {oa,
                         "OPENAI_API_KEY=x",
                         "PROMPTD_STREAM_BUFFER=1M",
                         "PROMPTD_STREAM_BUFFER_TOTAL=4M",
                         "PROMPTD_STREAM_STALL_TIMEOUT=120",
                         NULL}; /* none cut here: the others test the deadline */
    start(env);
    /* the mock answers with the prompt: 200 KB of one-letter words, 20 MB of
     * /v1 frames per stream */
    char *text = big_text(200 * 1000);
    char *body = pd_pack("{s:s, s:b, s:[{s:s, s:s}]}", "model", "openai/m", "stream", 1, "messages", "role", "user",
                         "content", text);
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", S.admin_key);
    const char *hdrs[] = {auth, NULL};
    warm_up("/v1/chat/completions", hdrs, body);
    int fds[STALLED];
    long before = rss_kib(S.pid);
    for (int i = 0; i < STALLED; i++) {
        fds[i] = stalled_client("/v1/chat/completions", auth, body);
        wait_answered(fds[i]);
    }
    long after = settled_rss();
    cr_assert_not(server_closed(fds[0]), "the first stream was cut before the memory was measured");
    long grown = after - before;
    cr_log_info("%d stalled upstream streams (1 MiB each, 4 MiB in all): RSS %ld -> %ld KiB (+%ld)", STALLED, before,
                after, grown);
    /* the 4 MiB total and a frame per stream, and each call's own (its
     * prompt and request body kept for the upstream, 0.4 MB, its output so
     * far, its curl handle): 18 to 26 MB measured, where the same 40 streams
     * with a 64 MiB total (their 1 MiB caps alone binding) took 64 MB */
    if (!sanitized())
        cr_assert_lt(grown, 4 * 1024 + STALLED * 900L, "RSS grew by %ld KiB", grown);
    for (int i = 0; i < STALLED; i++) /* the server notices at its next send, and the calls run to their end */
        close(fds[i]);
    free(body);
    free(text);
}
