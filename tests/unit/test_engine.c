/*
 * test_engine.c — the engine (src/engine/) end to end: the echo model, routing,
 * and the OpenAI and Anthropic providers against the mock LLM server
 * (tests/mock/, started per test through tests/support/mock_proc.h): text,
 * usage, streaming, retries with backoff and Retry-After, fallbacks,
 * timeouts, broken answers, the per-provider concurrency cap, thousands of
 * calls in flight, and shutdown with calls in flight.
 *
 * Every callback runs on the engine thread; results are copied into a tcall
 * under the group's mutex and the test thread waits on its condition variable.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "engine/engine.h"
#include "engine/engine_config.h"
#include "support/mock_proc.h"

/* One timeout for every test: Criterion 2.4.1 leaks a little memory in its
 * runner (seen by LeakSanitizer) when tests with different timeouts run in
 * parallel. */
TestSuite(engine_echo, .timeout = 30);
TestSuite(engine_routing, .timeout = 30);
TestSuite(engine_mock, .timeout = 30);
TestSuite(engine_lifecycle, .timeout = 30);

/* ---- collecting results ---- */

typedef struct tgroup {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} tgroup;

typedef struct tcall {
    tgroup *g;
    int own_g; /* g was allocated for this call alone */
    int done_count;
    int chunk_count;
    char *chunks;
    size_t chunks_len;
    enum engine_status status;
    char *model;
    char *output;
    size_t output_len;
    char *error;
    char *finish;
    long pt, ct, tt, duration_ms;
    int attempts, http;
    int rej_status; /* engine_result.rejection, kept when status is ENGINE_ERR_REJECTED */
    char *rej_message, *rej_type, *rej_code, *rej_param;
} tcall;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    cr_assert_not_null(d);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void on_chunk(void *ud, const char *text, size_t len)
{
    tcall *c = ud;
    pthread_mutex_lock(&c->g->mu);
    c->chunks = realloc(c->chunks, c->chunks_len + len + 1);
    memcpy(c->chunks + c->chunks_len, text, len);
    c->chunks_len += len;
    c->chunks[c->chunks_len] = '\0';
    c->chunk_count++;
    pthread_mutex_unlock(&c->g->mu);
}

static void on_done(void *ud, const engine_result *r)
{
    tcall *c = ud;
    pthread_mutex_lock(&c->g->mu);
    c->done_count++;
    c->status = r->status;
    free(c->model);
    free(c->output);
    free(c->error);
    free(c->finish);
    c->model = r->model ? strdup(r->model) : NULL;
    c->output = dupn(r->output ? r->output : "", r->output ? r->output_len : 0);
    c->output_len = r->output_len;
    c->error = r->error ? strdup(r->error) : NULL;
    c->finish = r->finish_reason ? strdup(r->finish_reason) : NULL;
    c->pt = r->prompt_tokens;
    c->ct = r->completion_tokens;
    c->tt = r->total_tokens;
    c->duration_ms = r->duration_ms;
    c->attempts = r->attempts;
    c->http = r->upstream_http_status;
    c->rej_status = r->rejection.http_status;
    free(c->rej_message);
    free(c->rej_type);
    free(c->rej_code);
    free(c->rej_param);
    c->rej_message = r->rejection.message ? strdup(r->rejection.message) : NULL;
    c->rej_type = r->rejection.type ? strdup(r->rejection.type) : NULL;
    c->rej_code = r->rejection.code ? strdup(r->rejection.code) : NULL;
    c->rej_param = r->rejection.param ? strdup(r->rejection.param) : NULL;
    c->g->done++;
    pthread_cond_broadcast(&c->g->cv);
    pthread_mutex_unlock(&c->g->mu);
}

static void group_init(tgroup *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->done = 0;
}

/* Wait until n calls of the group are done; 0, or -1 on timeout. */
static int group_wait(tgroup *g, int n, long timeout_ms)
{
    struct timespec ts;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g->mu);
    while (g->done < n && rc == 0)
        if (pthread_cond_timedwait(&g->cv, &g->mu, &ts) != 0)
            rc = -1;
    rc = g->done >= n ? 0 : -1;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

static void tcall_clear(tcall *c)
{
    if (c->own_g) {
        pthread_mutex_destroy(&c->g->mu);
        pthread_cond_destroy(&c->g->cv);
        free(c->g);
    }
    free(c->chunks);
    free(c->model);
    free(c->output);
    free(c->error);
    free(c->finish);
    free(c->rej_message);
    free(c->rej_type);
    free(c->rej_code);
    free(c->rej_param);
    memset(c, 0, sizeof(*c));
}

static json_t *user_msgs(const char *text)
{
    return json_pack("[{s:s, s:s}]", "role", "user", "content", text);
}

/* Submit one call and wait for it. */
static int run_call(engine_t *eng, const char *model, json_t *msgs, int stream, tcall *c,
                    long timeout_ms)
{
    tgroup *g = malloc(sizeof(*g));
    engine_call call = {0};
    int rc;

    cr_assert_not_null(g);
    group_init(g);
    memset(c, 0, sizeof(*c));
    c->g = g;
    c->own_g = 1;
    call.model = model;
    call.messages = msgs;
    call.stream = stream;
    call.on_chunk = on_chunk;
    call.on_done = on_done;
    call.ud = c;
    rc = engine_submit(eng, &call);
    if (rc != 0) {
        tcall_clear(c); /* no callback will ever come */
        return rc;
    }
    cr_assert_eq(group_wait(g, 1, timeout_ms), 0, "call did not finish in %ld ms", timeout_ms);
    return 0;
}

static void run_text(engine_t *eng, const char *model, const char *text, int stream, tcall *c)
{
    json_t *m = user_msgs(text);
    cr_assert_eq(run_call(eng, model, m, stream, c, 15000), 0);
    json_decref(m);
}

/* ---- engine set-up ---- */

static mock_proc mock;

static void start_mock(const char *const *args)
{
    cr_assert_eq(mock_proc_start(&mock, args), 0, "mock did not start (PROMPTD_MOCK_BIN?)");
}

/* Providers "mock" (OpenAI-compatible at base/v1) and "claude" (Anthropic at
 * base), with fast retries so tests stay quick. */
static void mock_config(engine_config *cfg, int cap, long timeout_ms)
{
    char url[128];
    engine_provider_config *p;

    engine_config_init(cfg);
    snprintf(url, sizeof(url), "%s/v1", mock.base_url);
    p = engine_config_set_provider(cfg, "mock", ENGINE_PROVIDER_OPENAI, url, NULL);
    cr_assert_not_null(p);
    p->max_concurrency = cap;
    p->timeout_ms = timeout_ms;
    p->connect_timeout_ms = 2000;
    p = engine_config_set_provider(cfg, "claude", ENGINE_PROVIDER_ANTHROPIC, mock.base_url, NULL);
    cr_assert_not_null(p);
    p->max_concurrency = cap;
    p->timeout_ms = timeout_ms;
    p->connect_timeout_ms = 2000;
    cfg->retry_base_delay_ms = 10;
    cfg->retry_max_delay_ms = 50;
}

static engine_t *new_engine(const engine_config *cfg)
{
    engine_t *eng = NULL;
    char err[256] = "";
    cr_assert_eq(engine_new(cfg, &eng, err, sizeof(err)), 0, "engine_new: %s", err);
    return eng;
}

static engine_t *mock_engine(int cap, long timeout_ms)
{
    engine_config cfg;
    engine_t *eng;

    mock_config(&cfg, cap, timeout_ms);
    eng = new_engine(&cfg);
    engine_config_free(&cfg);
    return eng;
}

/* GET base_url + path from the mock with a plain easy handle. */
static size_t grow_cb(char *p, size_t s, size_t n, void *ud)
{
    char **buf = ud;
    size_t old = *buf ? strlen(*buf) : 0;
    *buf = realloc(*buf, old + s * n + 1);
    memcpy(*buf + old, p, s * n);
    (*buf)[old + s * n] = '\0';
    return s * n;
}

static json_t *mock_stats(void)
{
    char url[160];
    char *body = NULL;
    CURL *h = curl_easy_init();
    json_t *j;

    cr_assert_not_null(h);
    snprintf(url, sizeof(url), "%s/_mock/stats", mock.base_url);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    cr_assert_eq(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    j = json_loads(body ? body : "", 0, NULL);
    free(body);
    cr_assert_not_null(j);
    return j;
}

/* A loopback URL nobody listens on: bind a port, then close it. */
static void dead_url(char *buf, size_t n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    snprintf(buf, n, "http://127.0.0.1:%d/v1", ntohs(a.sin_port));
}

/* ---- echo ---- */

Test(engine_echo, sync)
{
    engine_config cfg;
    engine_t *eng;
    tcall c;
    json_t *m = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "role", "system", "content",
                          "be brief", "role", "user", "content", "first question", "role",
                          "user", "content", "hello echo world");

    engine_config_init(&cfg);
    eng = new_engine(&cfg);
    cr_assert_eq(run_call(eng, "echo", m, 0, &c, 5000), 0);
    cr_assert_eq(c.status, ENGINE_OK);
    cr_assert_str_eq(c.model, "echo");
    cr_assert_str_eq(c.output, "hello echo world");
    cr_assert_eq(c.output_len, 16);
    /* 8 + 14 + 16 = 38 bytes of prompt -> ceil(38/4) = 10; 16 bytes out -> 4 */
    cr_assert_eq(c.pt, 10);
    cr_assert_eq(c.ct, 4);
    cr_assert_eq(c.tt, 14);
    cr_assert_eq(c.attempts, 0);
    cr_assert_str_eq(c.finish, "stop");
    cr_assert_null(c.error);
    cr_assert_eq(c.chunk_count, 0, "no chunks without stream");
    tcall_clear(&c);
    /* NULL model = the default, echo */
    cr_assert_eq(run_call(eng, NULL, m, 0, &c, 5000), 0);
    cr_assert_str_eq(c.model, "echo");
    tcall_clear(&c);
    json_decref(m);
    engine_free(eng);
}

Test(engine_echo, stream_word_by_word)
{
    engine_config cfg;
    engine_t *eng;
    tcall c;

    engine_config_init(&cfg);
    eng = new_engine(&cfg);
    run_text(eng, "echo", "one two  three\nfour", 1, &c);
    cr_assert_eq(c.status, ENGINE_OK);
    cr_assert_str_eq(c.output, "one two  three\nfour");
    cr_assert_str_eq(c.chunks, "one two  three\nfour");
    cr_assert_eq(c.chunk_count, 4);
    tcall_clear(&c);
    /* empty prompt: empty answer, tokens at their minimum */
    run_text(eng, "echo", "", 1, &c);
    cr_assert_eq(c.status, ENGINE_OK);
    cr_assert_str_eq(c.output, "");
    cr_assert_eq(c.chunk_count, 0);
    cr_assert_eq(c.pt, 1);
    cr_assert_eq(c.ct, 1);
    tcall_clear(&c);
    engine_free(eng);
}

Test(engine_echo, bad_messages_rejected_synchronously)
{
    engine_config cfg;
    engine_t *eng;
    tcall c;
    json_t *bad1 = json_pack("{s:s}", "role", "user");
    json_t *bad2 = json_pack("[{s:s,s:i}]", "role", "user", "content", 3);
    json_t *bad3 = json_pack("[{s:s}]", "content", "no role");
    json_t *parts =
        json_pack("[{s:s,s:[{s:s,s:s},{s:s,s:{s:s}},{s:s,s:s}]}]", "role", "user", "content", "type", "text", "text",
                  "ab", "type", "image_url", "image_url", "url", "http://x/y.png", "type", "text", "text", "cd");
    json_t *bad4 = json_pack("[{s:s,s:[{s:s}]}]", "role", "user", "content", "url", "untyped, textless");

    engine_config_init(&cfg);
    eng = new_engine(&cfg);
    cr_assert_eq(run_call(eng, "echo", bad1, 0, &c, 1000), ENGINE_ERR_INTERNAL);
    cr_assert_eq(run_call(eng, "echo", bad2, 0, &c, 1000), ENGINE_ERR_INTERNAL);
    cr_assert_eq(run_call(eng, "echo", bad3, 0, &c, 1000), ENGINE_ERR_INTERNAL);
    cr_assert_eq(run_call(eng, "echo", NULL, 0, &c, 1000), ENGINE_ERR_INTERNAL);
    cr_assert_eq(run_call(eng, "echo", bad4, 0, &c, 1000), ENGINE_ERR_INTERNAL);
    /* content as an array of parts: the text parts joined with newlines, an image adds no text */
    cr_assert_eq(run_call(eng, "echo", parts, 0, &c, 5000), 0);
    cr_assert_str_eq(c.output, "ab\ncd");
    tcall_clear(&c);
    json_decref(bad1);
    json_decref(bad2);
    json_decref(bad3);
    json_decref(bad4);
    json_decref(parts);
    engine_free(eng);
}

/* ---- routing ---- */

Test(engine_routing, aliases_default_unknown)
{
    char url[64];
    engine_config cfg;
    engine_t *eng;
    tcall c;
    char buf[128];
    const char *fb[] = {"echo"};
    json_t *models, *m;
    size_t i;
    int seen_alias = 0, seen_wild = 0, seen_echo = 0;

    engine_config_init(&cfg);
    dead_url(url, sizeof(url));
    cr_assert_not_null(engine_config_set_provider(&cfg, "local", ENGINE_PROVIDER_OPENAI, url,
                                                  NULL));
    cfg.retry_base_delay_ms = 5;
    cfg.retry_max_delay_ms = 20;
    cr_assert_eq(engine_config_set_alias(&cfg, "fast", "echo"), 0);
    cr_assert_eq(engine_config_set_alias(&cfg, "big", "local/llama3.2:8b"), 0);
    cr_assert_eq(engine_config_set_default(&cfg, "fast"), 0);
    cr_assert_eq(engine_config_set_fallbacks(&cfg, "big", fb, 1), 0);
    eng = new_engine(&cfg);
    engine_config_free(&cfg);

    cr_assert(engine_model_known(eng, "echo"));
    cr_assert(engine_model_known(eng, "fast"));
    cr_assert(engine_model_known(eng, NULL));
    cr_assert(engine_model_known(eng, "local/anything/with/slashes"));
    cr_assert_not(engine_model_known(eng, "openai/gpt-4o"), "no openai provider configured");
    cr_assert_not(engine_model_known(eng, "local/"));
    cr_assert_not(engine_model_known(eng, "gpt-4o"));
    cr_assert_not(engine_model_known(eng, "echo/x"));

    cr_assert_eq(engine_model_resolve(eng, "big", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "local/llama3.2:8b");
    cr_assert_eq(engine_model_resolve(eng, "", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "echo");
    cr_assert_eq(engine_model_resolve(eng, "nope", buf, sizeof(buf)), -1);
    cr_assert_eq(engine_model_resolve(eng, "big", buf, 4), -1, "buffer too small");

    /* unknown: rejected at once, no callback ever */
    {
        json_t *msgs = user_msgs("x");
        cr_assert_eq(run_call(eng, "openai/gpt-4o", msgs, 0, &c, 1000), ENGINE_ERR_UNKNOWN_MODEL);
        cr_assert_eq(c.done_count, 0);
        json_decref(msgs);
    }
    /* the alias routes to echo, reported under its canonical name */
    run_text(eng, "fast", "via alias", 0, &c);
    cr_assert_eq(c.status, ENGINE_OK);
    cr_assert_str_eq(c.model, "echo");
    cr_assert_str_eq(c.output, "via alias");
    tcall_clear(&c);
    /* the default (an alias) */
    run_text(eng, NULL, "via default", 0, &c);
    cr_assert_str_eq(c.model, "echo");
    tcall_clear(&c);
    /* "big" goes to a dead port (connection refused, retried), then falls back to echo */
    run_text(eng, "big", "fallback please", 0, &c);
    cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
    cr_assert_str_eq(c.model, "echo");
    cr_assert_eq(c.attempts, 3);
    cr_assert_str_eq(c.output, "fallback please");
    tcall_clear(&c);

    models = engine_models(eng);
    cr_assert(json_is_array(models));
    json_array_foreach(models, i, m) {
        const char *id = json_string_value(json_object_get(m, "id"));
        cr_assert_str_eq(json_string_value(json_object_get(m, "object")), "model");
        cr_assert(json_is_string(json_object_get(m, "owned_by")));
        if (strcmp(id, "echo") == 0)
            seen_echo = 1;
        if (strcmp(id, "big") == 0) {
            seen_alias = 1;
            cr_assert_str_eq(json_string_value(json_object_get(m, "owned_by")), "local");
        }
        if (strcmp(id, "local/*") == 0)
            seen_wild = 1;
    }
    cr_assert(seen_echo && seen_alias && seen_wild);
    json_decref(models);
    engine_free(eng);
}

Test(engine_routing, connection_refused_exhausts_retries)
{
    char url[64];
    engine_config cfg;
    engine_t *eng;
    tcall c;

    engine_config_init(&cfg);
    dead_url(url, sizeof(url));
    cr_assert_not_null(engine_config_set_provider(&cfg, "dead", ENGINE_PROVIDER_OPENAI, url, NULL));
    cfg.retry_base_delay_ms = 5;
    cfg.retry_max_delay_ms = 20;
    eng = new_engine(&cfg);
    engine_config_free(&cfg);
    run_text(eng, "dead/m", "hi", 0, &c);
    cr_assert_eq(c.status, ENGINE_ERR_UPSTREAM);
    cr_assert_eq(c.attempts, 3);
    cr_assert_eq(c.http, 0);
    cr_assert_not_null(c.error);
    cr_assert(strstr(c.error, "dead/m") != NULL, "%s", c.error);
    cr_assert_str_eq(c.output, "");
    tcall_clear(&c);
    engine_free(eng);
}

/* ---- OpenAI and Anthropic against the mock ---- */

Test(engine_mock, openai_sync_and_stream)
{
    engine_t *eng;
    tcall c;

    start_mock(NULL);
    eng = mock_engine(16, 10000);
    run_text(eng, "mock/gpt-test", "hello there world", 0, &c);
    cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
    cr_assert_str_eq(c.output, "mock reply: hello there world");
    cr_assert_str_eq(c.model, "mock/gpt-test");
    cr_assert_eq(c.pt, 3);
    cr_assert_eq(c.ct, 5);
    cr_assert_eq(c.tt, 8);
    cr_assert_eq(c.attempts, 1);
    cr_assert_eq(c.http, 200);
    cr_assert_str_eq(c.finish, "stop");
    tcall_clear(&c);

    run_text(eng, "mock/gpt-test", "stream me please", 1, &c);
    cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
    cr_assert_str_eq(c.output, "mock reply: stream me please");
    cr_assert_str_eq(c.chunks, "mock reply: stream me please");
    cr_assert_gt(c.chunk_count, 1);
    cr_assert_eq(c.pt, 3, "usage from the include_usage chunk");
    cr_assert_eq(c.ct, 5);
    cr_assert_str_eq(c.finish, "stop");
    tcall_clear(&c);
    engine_free(eng);
    mock_proc_stop(&mock);
}

Test(engine_mock, openai_request_shape)
{
    engine_t *eng;
    tcall c;
    json_t *req, *msgs;
    engine_call call = {0};
    tgroup g;

    start_mock(NULL);
    eng = mock_engine(16, 10000);
    group_init(&g);
    memset(&c, 0, sizeof(c));
    c.g = &g;
    msgs = json_pack("[{s:s,s:s},{s:s,s:s}]", "role", "system", "content", "sys", "role", "user",
                     "content", "[mock:echo_request]");
    call.model = "mock/gpt-x";
    call.messages = msgs;
    call.temperature = 0.5;
    call.has_temperature = 1;
    call.max_tokens = 77;
    call.on_done = on_done;
    call.ud = &c;
    cr_assert_eq(engine_submit(eng, &call), 0);
    cr_assert_eq(group_wait(&g, 1, 10000), 0);
    cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
    req = json_loads(c.output, 0, NULL);
    cr_assert_not_null(req, "%s", c.output);
    cr_assert_str_eq(json_string_value(json_object_get(req, "model")), "gpt-x");
    cr_assert_eq(json_integer_value(json_object_get(req, "max_tokens")), 77);
    cr_assert_float_eq(json_real_value(json_object_get(req, "temperature")), 0.5, 1e-9);
    cr_assert(json_is_false(json_object_get(req, "stream")));
    cr_assert_eq(json_array_size(json_object_get(req, "messages")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(req, "messages"), 0), "role")),
                     "system");
    json_decref(req);
    json_decref(msgs);
    tcall_clear(&c);
    engine_free(eng);
    mock_proc_stop(&mock);
}

Test(engine_mock, anthropic_sync_and_stream)
{
    engine_t *eng;
    tcall c;
    json_t *msgs, *req;

    start_mock(NULL);
    eng = mock_engine(16, 10000);
    run_text(eng, "claude/claude-test", "hello claude", 0, &c);
    cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
    cr_assert_str_eq(c.output, "mock reply: hello claude");
    cr_assert_str_eq(c.model, "claude/claude-test");
    cr_assert_eq(c.pt, 2);
    cr_assert_eq(c.ct, 4);
    cr_assert_eq(c.tt, 6);
    cr_assert_str_eq(c.finish, "stop");
    tcall_clear(&c);

    run_text(eng, "claude/claude-test", "stream from claude now", 1, &c);
    cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
    cr_assert_str_eq(c.chunks, "mock reply: stream from claude now");
    cr_assert_str_eq(c.output, c.chunks);
    cr_assert_gt(c.chunk_count, 1);
    cr_assert_eq(c.pt, 4);
    cr_assert_eq(c.ct, 6);
    cr_assert_eq(c.tt, 10);
    tcall_clear(&c);

    /* system messages go to the top-level "system"; max_tokens defaults */
    msgs = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "role", "system", "content", "rule one",
                     "role", "system", "content", "rule two", "role", "user", "content",
                     "[mock:echo_request]");
    cr_assert_eq(run_call(eng, "claude/c", msgs, 0, &c, 10000), 0);
    cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
    req = json_loads(c.output, 0, NULL);
    cr_assert_not_null(req, "%s", c.output);
    cr_assert_str_eq(json_string_value(json_object_get(req, "system")), "rule one\n\nrule two");
    cr_assert_eq(json_integer_value(json_object_get(req, "max_tokens")), 1024);
    cr_assert_eq(json_array_size(json_object_get(req, "messages")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(req, "model")), "c");
    json_decref(req);
    json_decref(msgs);
    tcall_clear(&c);
    engine_free(eng);
    mock_proc_stop(&mock);
}

Test(engine_mock, api_keys_are_sent)
{
    const char *args[] = {"--require-key", "sekrit", NULL};
    engine_config cfg;
    engine_t *eng;
    tcall c;
    char url[128];

    start_mock(args);
    mock_config(&cfg, 8, 10000);
    snprintf(url, sizeof(url), "%s/v1", mock.base_url);
    cr_assert_not_null(engine_config_set_provider(&cfg, "keyed", ENGINE_PROVIDER_OPENAI, url,
                                                  "sekrit"));
    cr_assert_not_null(engine_config_set_provider(&cfg, "akeyed", ENGINE_PROVIDER_ANTHROPIC,
                                                  mock.base_url, "sekrit"));
    eng = new_engine(&cfg);
    engine_config_free(&cfg);
    run_text(eng, "keyed/m", "with key", 0, &c);
    cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
    tcall_clear(&c);
    run_text(eng, "akeyed/m", "with key", 0, &c);
    cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
    tcall_clear(&c);
    /* no key: 401, not retried, the secret never appears in the message */
    run_text(eng, "mock/m", "without key", 0, &c);
    cr_assert_eq(c.status, ENGINE_ERR_UPSTREAM);
    cr_assert_eq(c.http, 401);
    cr_assert_eq(c.attempts, 1);
    cr_assert(strstr(c.error, "401") != NULL, "%s", c.error);
    cr_assert(strstr(c.error, "sekrit") == NULL);
    tcall_clear(&c);
    engine_free(eng);
    mock_proc_stop(&mock);
}

/* An idle engine thread sleeps in epoll_wait for up to a second: a call must
 * still start at once, whether it comes from another thread (the eventfd
 * wake-up), from a retry timer, or from an on_done on the engine thread
 * itself, and the transfer it adds must be driven at once (curl's 0 ms
 * timer). Each of those, if lost, costs every call of its kind ~1 s
 * (ENGINE_MAX_POLL_MS); the median of each kind is checked, so that one call
 * slowed down by the machine (or valgrind) does not fail the test. */
enum { IDLE_CALLS = 6 };

typedef struct relay {
    engine_t *eng;
    tcall last;
    int hops;
    long ms[IDLE_CALLS];
} relay;

static void on_done_relay(void *ud, const engine_result *r)
{
    relay *rl = ud;

    rl->ms[rl->hops] = r->duration_ms;
    if (r->status == ENGINE_OK && ++rl->hops < IDLE_CALLS) {
        engine_call call = {0};
        json_t *m = user_msgs("relay");
        call.model = "mock/m";
        call.messages = m;
        call.on_done = on_done_relay;
        call.ud = rl;
        cr_assert_eq(engine_submit(rl->eng, &call), 0);
        json_decref(m);
        return;
    }
    on_done(&rl->last, r);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static long median_ms(long *ms)
{
    qsort(ms, IDLE_CALLS, sizeof(ms[0]), cmp_long);
    return ms[IDLE_CALLS / 2];
}

Test(engine_mock, idle_engine_starts_calls_at_once)
{
    engine_t *eng;
    tcall c;
    relay rl = {0};
    tgroup g;
    engine_call call = {0};
    json_t *m;
    long plain[IDLE_CALLS], retried[IDLE_CALLS];

    start_mock(NULL);
    eng = mock_engine(8, 10000);
    run_text(eng, "mock/m", "warm-up", 0, &c); /* the connection is set up once */
    tcall_clear(&c);
    for (int i = 0; i < 2 * IDLE_CALLS; i++) {
        char text[64];
        int retry = i % 2;

        usleep(30 * 1000); /* let the engine thread go back to sleep */
        snprintf(text, sizeof(text), "%s call %d", retry ? "[mock:fail_times=1]" : "plain", i);
        run_text(eng, i % 3 ? "mock/m" : "claude/m", text, i % 4 < 2, &c);
        cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
        cr_assert_eq(c.attempts, retry ? 2 : 1);
        (retry ? retried : plain)[i / 2] = c.duration_ms;
        tcall_clear(&c);
    }
    cr_assert_lt(median_ms(plain), 500, "calls from another thread took %ld ms", plain[IDLE_CALLS / 2]);
    cr_assert_lt(median_ms(retried), 500, "retried calls took %ld ms", retried[IDLE_CALLS / 2]);
    /* each on_done submits the next call from the engine thread */
    group_init(&g);
    rl.eng = eng;
    rl.last.g = &g;
    m = user_msgs("relay");
    call.model = "mock/m";
    call.messages = m;
    call.on_done = on_done_relay;
    call.ud = &rl;
    usleep(30 * 1000);
    cr_assert_eq(engine_submit(eng, &call), 0);
    cr_assert_eq(group_wait(&g, 1, 15000), 0);
    cr_assert_eq(rl.last.status, ENGINE_OK);
    cr_assert_eq(rl.hops, IDLE_CALLS);
    cr_assert_lt(median_ms(rl.ms), 500, "calls from the engine thread took %ld ms",
                 rl.ms[IDLE_CALLS / 2]);
    tcall_clear(&rl.last);
    json_decref(m);
    engine_free(eng);
    mock_proc_stop(&mock);
}

/* ---- retries, fallbacks, timeouts ---- */

Test(engine_mock, retries_then_success)
{
    engine_t *eng;
    tcall c;

    start_mock(NULL);
    eng = mock_engine(8, 10000);
    run_text(eng, "mock/m", "[mock:fail_times=2] flaky", 0, &c);
    cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
    cr_assert_eq(c.attempts, 3);
    cr_assert_str_eq(c.output, "mock reply: flaky");
    tcall_clear(&c);
    /* a stream that fails before its first chunk is retried too */
    run_text(eng, "claude/m", "[mock:fail_times=1] flaky stream", 1, &c);
    cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
    cr_assert_eq(c.attempts, 2);
    cr_assert_str_eq(c.chunks, "mock reply: flaky stream");
    tcall_clear(&c);
    engine_free(eng);
    mock_proc_stop(&mock);
}

Test(engine_mock, retry_after_honoured)
{
    engine_config cfg;
    engine_t *eng;
    tcall c;
    long long t0;

    start_mock(NULL);
    mock_config(&cfg, 8, 10000);
    cfg.retry_max_attempts = 2;
    eng = new_engine(&cfg);
    engine_config_free(&cfg);
    t0 = now_ms();
    run_text(eng, "mock/m", "[mock:status=429] [mock:retry_after=1] slow down", 0, &c);
    cr_assert_eq(c.status, ENGINE_ERR_UPSTREAM);
    cr_assert_eq(c.attempts, 2);
    cr_assert_eq(c.http, 429);
    cr_assert_geq(now_ms() - t0, 1000, "Retry-After: 1 not honoured");
    cr_assert_geq(c.duration_ms, 1000);
    cr_assert_lt(c.duration_ms, 3000);
    tcall_clear(&c);
    engine_free(eng);
    mock_proc_stop(&mock);
}

Test(engine_mock, retry_after_is_capped)
{
    engine_config cfg;
    engine_t *eng;
    tcall c;

    start_mock(NULL);
    mock_config(&cfg, 8, 10000);
    cfg.retry_max_attempts = 2;
    cfg.retry_after_max_ms = 200;
    eng = new_engine(&cfg);
    engine_config_free(&cfg);
    run_text(eng, "mock/m", "[mock:status=503] [mock:retry_after=3600] down", 0, &c);
    cr_assert_eq(c.status, ENGINE_ERR_UPSTREAM);
    cr_assert_eq(c.http, 503);
    cr_assert_eq(c.attempts, 2);
    cr_assert_geq(c.duration_ms, 200);
    cr_assert_lt(c.duration_ms, 2000);
    tcall_clear(&c);
    engine_free(eng);
    mock_proc_stop(&mock);
}

Test(engine_mock, exhausted_retries_and_client_errors)
{
    engine_t *eng;
    tcall c;

    start_mock(NULL);
    eng = mock_engine(8, 10000);
    run_text(eng, "mock/m", "[mock:status=500] always", 0, &c);
    cr_assert_eq(c.status, ENGINE_ERR_UPSTREAM);
    cr_assert_eq(c.attempts, 3);
    cr_assert_eq(c.http, 500);
    cr_assert_not_null(c.error);
    cr_assert_str_eq(c.output, "");
    tcall_clear(&c);
    /* 400 is the caller's fault: not retried, and reported as the provider's refusal in its own words */
    run_text(eng, "claude/m", "[mock:status=400] [mock:error_message=prompt is too long] bad", 0, &c);
    cr_assert_eq(c.status, ENGINE_ERR_REJECTED);
    cr_assert_eq(c.attempts, 1);
    cr_assert_eq(c.http, 400);
    cr_assert_eq(c.rej_status, 400);
    cr_assert_str_eq(c.rej_message, "prompt is too long");
    cr_assert_str_eq(c.rej_type, "invalid_request_error");
    cr_assert_str_eq(c.rej_code, "");
    cr_assert(strstr(c.error, "prompt is too long"), "%s", c.error);
    tcall_clear(&c);
    run_text(eng, "mock/m",
             "[mock:status=400] [mock:error_code=context_length_exceeded] [mock:error_param=messages] long", 0, &c);
    cr_assert_eq(c.status, ENGINE_ERR_REJECTED);
    cr_assert_str_eq(c.rej_code, "context_length_exceeded");
    cr_assert_str_eq(c.rej_param, "messages");
    tcall_clear(&c);
    /* 401 and 403 are promptd's own credentials, 429 the provider's load: failures, not refusals */
    const char *outages[] = {"[mock:status=401] key", "[mock:status=403] no", "[mock:status=429] busy"};
    for (size_t i = 0; i < 3; i++) {
        run_text(eng, "mock/m", outages[i], 0, &c);
        cr_assert_eq(c.status, ENGINE_ERR_UPSTREAM, "%s", outages[i]);
        cr_assert_eq(c.rej_status, 0, "%s", outages[i]);
        tcall_clear(&c);
    }
    engine_free(eng);
    mock_proc_stop(&mock);
}

Test(engine_mock, fallback_to_next_model)
{
    engine_config cfg;
    engine_t *eng;
    tcall c;
    const char *fb[] = {"mock/b", "claude/c"};

    start_mock(NULL);
    mock_config(&cfg, 8, 10000);
    cr_assert_eq(engine_config_set_fallbacks(&cfg, "mock/a", fb, 2), 0);
    cr_assert_eq(engine_config_set_alias(&cfg, "primary", "mock/a"), 0);
    eng = new_engine(&cfg);
    engine_config_free(&cfg);
    run_text(eng, "primary", "[mock:fail_model=a] go", 0, &c);
    cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
    cr_assert_str_eq(c.model, "mock/b");
    cr_assert_eq(c.attempts, 4, "3 attempts on mock/a, then 1 on mock/b");
    cr_assert_str_eq(c.output, "mock reply: go");
    tcall_clear(&c);
    /* everything fails: the last model's error is reported */
    run_text(eng, "mock/a", "[mock:status=500] all down", 0, &c);
    cr_assert_eq(c.status, ENGINE_ERR_UPSTREAM);
    cr_assert_str_eq(c.model, "claude/c");
    cr_assert_eq(c.attempts, 9);
    tcall_clear(&c);
    /* a refusal moves on to the fallbacks too; the call ends with the last model's outcome:
     * refused by the last one (after another's 500) is a refusal ... */
    run_text(eng, "mock/a", "[mock:fail_model=a] [mock:status=400] refused at the end", 0, &c);
    cr_assert_eq(c.status, ENGINE_ERR_REJECTED, "%d %s", c.status, c.error ? c.error : "");
    cr_assert_str_eq(c.model, "claude/c");
    cr_assert_eq(c.attempts, 5, "3 attempts on mock/a, 1 on mock/b, 1 on claude/c");
    cr_assert_eq(c.rej_status, 400);
    tcall_clear(&c);
    /* ... and refused first but failing last is a failure, with no refusal left over */
    run_text(eng, "mock/a", "[mock:fail_model=c] [mock:status=400] down at the end", 0, &c);
    cr_assert_eq(c.status, ENGINE_ERR_UPSTREAM, "%d %s", c.status, c.error ? c.error : "");
    cr_assert_str_eq(c.model, "claude/c");
    cr_assert_eq(c.rej_status, 0);
    cr_assert_null(c.rej_message);
    tcall_clear(&c);
    engine_free(eng);
    mock_proc_stop(&mock);
}

Test(engine_mock, timeout)
{
    engine_t *eng;
    tcall c;

    start_mock(NULL);
    eng = mock_engine(8, 300);
    run_text(eng, "mock/m", "[mock:latency=3000] too slow", 0, &c);
    cr_assert_eq(c.status, ENGINE_ERR_TIMEOUT, "%d %s", c.status, c.error ? c.error : "");
    cr_assert_eq(c.attempts, 1, "a timeout after sending is not retried");
    cr_assert_geq(c.duration_ms, 290);
    cr_assert_lt(c.duration_ms, 2000);
    tcall_clear(&c);
    /* streams too */
    run_text(eng, "claude/m", "[mock:latency=3000] too slow", 1, &c);
    cr_assert_eq(c.status, ENGINE_ERR_TIMEOUT);
    tcall_clear(&c);
    engine_free(eng);
    mock_proc_stop(&mock);
}

/* ---- untrusted answers ---- */

Test(engine_mock, broken_answers_fail_cleanly)
{
    static const char *const models[] = {"mock/m", "claude/m"};
    engine_t *eng;
    tcall c;

    start_mock(NULL);
    eng = mock_engine(8, 10000);
    for (int mi = 0; mi < 2; mi++) {
        for (int stream = 0; stream < 2; stream++) {
            const char *model = models[mi];
            run_text(eng, model, "[mock:malformed] broken", stream, &c);
            cr_assert_eq(c.status, ENGINE_ERR_UPSTREAM, "%s malformed stream=%d", model, stream);
            cr_assert_not_null(c.error);
            cr_assert_str_eq(c.output, "");
            cr_assert_eq(c.attempts, 1, "a malformed answer is not retried");
            tcall_clear(&c);

            run_text(eng, model, "[mock:bad_types] types", stream, &c);
            cr_assert_eq(c.status, ENGINE_ERR_UPSTREAM, "%s bad_types stream=%d", model, stream);
            cr_assert(strstr(c.error, "not a") != NULL, "%s", c.error);
            tcall_clear(&c);

            /* no usage: a success with estimated tokens (see engine_http.c) */
            run_text(eng, model, "[mock:no_usage] count me", stream, &c);
            cr_assert_eq(c.status, ENGINE_OK, "%s no_usage stream=%d: %s", model, stream,
                         c.error ? c.error : "");
            cr_assert_str_eq(c.output, "mock reply: count me");
            /* prompt "[mock:no_usage] count me" = 24 bytes -> 6; output 20 bytes -> 5 */
            cr_assert_eq(c.pt, 6);
            cr_assert_eq(c.ct, 5);
            cr_assert_eq(c.tt, 11);
            tcall_clear(&c);
        }
    }
    /* dropped connection: retried, then a clean failure */
    run_text(eng, "mock/m", "[mock:drop] gone", 0, &c);
    cr_assert_eq(c.status, ENGINE_ERR_UPSTREAM);
    cr_assert_eq(c.attempts, 3);
    cr_assert_eq(c.http, 0);
    tcall_clear(&c);
    /* dropped after the first streamed chunk: NOT retried (the client has it) */
    run_text(eng, "claude/m", "[mock:drop] gone mid stream", 1, &c);
    cr_assert_eq(c.status, ENGINE_ERR_UPSTREAM);
    cr_assert_eq(c.attempts, 1);
    cr_assert_geq(c.chunk_count, 1);
    tcall_clear(&c);
    run_text(eng, "mock/m", "[mock:drop] gone mid stream", 1, &c);
    cr_assert_eq(c.status, ENGINE_ERR_UPSTREAM);
    cr_assert_eq(c.attempts, 1);
    cr_assert_geq(c.chunk_count, 1);
    tcall_clear(&c);
    engine_free(eng);
    mock_proc_stop(&mock);
}

Test(engine_mock, drip_stream_arrives_piecewise)
{
    engine_t *eng;
    tcall c;

    start_mock(NULL);
    eng = mock_engine(8, 10000);
    run_text(eng, "mock/m", "[mock:drip=40] a b c d e", 1, &c);
    cr_assert_eq(c.status, ENGINE_OK, "%s", c.error ? c.error : "");
    cr_assert_str_eq(c.chunks, "mock reply: a b c d e");
    cr_assert_eq(c.chunk_count, 7);
    cr_assert_geq(c.duration_ms, 200);
    tcall_clear(&c);
    engine_free(eng);
    mock_proc_stop(&mock);
}

/* ---- scale and concurrency ---- */

static void submit_many(engine_t *eng, tcall *calls, int n, tgroup *g, const char *model,
                        const char *fmt)
{
    for (int i = 0; i < n; i++) {
        char text[64];
        engine_call call = {0};
        json_t *m;

        snprintf(text, sizeof(text), fmt, i);
        m = user_msgs(text);
        calls[i].g = g;
        call.model = model;
        call.messages = m;
        call.on_chunk = on_chunk;
        call.on_done = on_done;
        call.ud = &calls[i];
        cr_assert_eq(engine_submit(eng, &call), 0);
        json_decref(m); /* the engine copied what it needs */
    }
}

Test(engine_mock, concurrency_cap_respected)
{
    enum { N = 50, CAP = 5 };
    engine_t *eng;
    tcall *calls = calloc(N, sizeof(*calls));
    tgroup g;
    json_t *st;

    start_mock(NULL);
    eng = mock_engine(CAP, 10000);
    group_init(&g);
    submit_many(eng, calls, N, &g, "mock/m", "[mock:latency=100] call %d");
    cr_assert_eq(group_wait(&g, N, 15000), 0);
    for (int i = 0; i < N; i++) {
        char want[64];
        snprintf(want, sizeof(want), "mock reply: call %d", i);
        cr_assert_eq(calls[i].done_count, 1);
        cr_assert_eq(calls[i].status, ENGINE_OK);
        cr_assert_str_eq(calls[i].output, want);
        tcall_clear(&calls[i]);
    }
    st = mock_stats();
    cr_assert_eq(json_integer_value(json_object_get(st, "requests")), N);
    cr_assert_leq(json_integer_value(json_object_get(st, "max_in_flight")), CAP);
    cr_assert_geq(json_integer_value(json_object_get(st, "max_in_flight")), 2);
    json_decref(st);
    free(calls);
    engine_free(eng);
    mock_proc_stop(&mock);
}

Test(engine_mock, two_thousand_in_flight)
{
    enum { N = 2000 };
    const char *args[] = {"--latency-ms", "1000", NULL};
    engine_t *eng;
    tcall *calls = calloc(N, sizeof(*calls));
    tgroup g;
    long long t0;
    json_t *st;

    start_mock(args);
    eng = mock_engine(N, 20000);
    group_init(&g);
    t0 = now_ms();
    submit_many(eng, calls, N, &g, "mock/m", "call number %d");
    cr_assert_eq(group_wait(&g, N, 20000), 0, "not all calls finished");
    cr_assert_lt(now_ms() - t0, 8000, "2000 concurrent 1 s calls took %lld ms", now_ms() - t0);
    for (int i = 0; i < N; i++) {
        char want[64];
        snprintf(want, sizeof(want), "mock reply: call number %d", i);
        cr_assert_eq(calls[i].done_count, 1);
        cr_assert_eq(calls[i].status, ENGINE_OK, "call %d: %s", i,
                     calls[i].error ? calls[i].error : "");
        cr_assert_str_eq(calls[i].output, want);
        cr_assert_eq(calls[i].attempts, 1);
        tcall_clear(&calls[i]);
    }
    st = mock_stats();
    cr_assert_gt(json_integer_value(json_object_get(st, "max_in_flight")), N / 2,
                 "the calls really overlapped");
    json_decref(st);
    free(calls);
    engine_free(eng);
    mock_proc_stop(&mock);
}

static void on_done_count(void *ud, const engine_result *r)
{
    tcall *c = ud;
    pthread_mutex_lock(&c->g->mu);
    c->done_count++;
    c->status = r->status;
    c->g->done++;
    pthread_cond_broadcast(&c->g->cv);
    pthread_mutex_unlock(&c->g->mu);
}

Test(engine_mock, shutdown_fails_every_call_once)
{
    enum { N = 120 };
    engine_config cfg;
    engine_t *eng;
    tcall *calls = calloc(N, sizeof(*calls));
    tgroup g;
    long long t0;
    engine_call call = {0};
    json_t *m;

    start_mock(NULL);
    mock_config(&cfg, 40, 30000);
    /* calls that fail sit in backoff; with full jitter a single delay may be
     * short, but 19 of them cannot all be */
    cfg.retry_base_delay_ms = 5000;
    cfg.retry_max_delay_ms = 5000;
    cfg.retry_max_attempts = 20;
    eng = new_engine(&cfg);
    engine_config_free(&cfg);
    group_init(&g);
    for (int i = 0; i < N; i++) {
        /* 40 in flight and 40 waiting for a slot on "mock" (cap 40), and 40
         * in backoff after a quick failure on "claude" */
        m = user_msgs(i % 3 == 2 ? "[mock:status=503] soon in backoff" : "[mock:latency=10000] slow");
        calls[i].g = &g;
        call.model = i % 3 == 2 ? "claude/m" : "mock/m";
        call.messages = m;
        call.stream = i % 2;
        call.on_chunk = on_chunk;
        call.on_done = on_done_count;
        call.ud = &calls[i];
        cr_assert_eq(engine_submit(eng, &call), 0);
        json_decref(m);
    }
    usleep(500 * 1000); /* let them reach the mock */
    t0 = now_ms();
    engine_shutdown(eng);
    cr_assert_lt(now_ms() - t0, 2000, "shutdown waited for the calls");
    cr_assert_eq(g.done, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(calls[i].done_count, 1, "call %d: on_done ran %d times", i,
                     calls[i].done_count);
        cr_assert_eq(calls[i].status, ENGINE_ERR_SHUTDOWN, "call %d: status %d", i,
                     calls[i].status);
    }
    /* after shutdown: rejected synchronously, no callback */
    m = user_msgs("late");
    call.messages = m;
    call.ud = &calls[0];
    cr_assert_eq(engine_submit(eng, &call), ENGINE_ERR_SHUTDOWN);
    cr_assert_eq(calls[0].done_count, 1);
    json_decref(m);
    engine_shutdown(eng); /* idempotent */
    engine_free(eng);
    free(calls);
    mock_proc_stop(&mock);
}

struct submitter {
    engine_t *eng;
    tcall *calls;
    int n;
    tgroup *g;
    int failures;
};

static void *submitter_main(void *arg)
{
    struct submitter *a = arg;

    for (int i = 0; i < a->n; i++) {
        engine_call call = {0};
        json_t *m = user_msgs("from a thread");
        a->calls[i].g = a->g;
        call.model = "echo";
        call.messages = m;
        call.stream = i % 2;
        call.on_chunk = on_chunk;
        call.on_done = on_done;
        call.ud = &a->calls[i];
        if (engine_submit(a->eng, &call) != 0)
            a->failures++;
        json_decref(m);
    }
    return NULL;
}

Test(engine_lifecycle, submit_from_many_threads)
{
    enum { T = 8, PER = 500 };
    engine_config cfg;
    engine_t *eng;
    tcall *calls = calloc(T * PER, sizeof(*calls));
    tgroup g;
    pthread_t th[T];
    struct submitter args[T];

    engine_config_init(&cfg);
    eng = new_engine(&cfg);
    group_init(&g);
    for (int t = 0; t < T; t++) {
        args[t] = (struct submitter){eng, calls + t * PER, PER, &g, 0};
        cr_assert_eq(pthread_create(&th[t], NULL, submitter_main, &args[t]), 0);
    }
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        cr_assert_eq(args[t].failures, 0);
    }
    cr_assert_eq(group_wait(&g, T * PER, 10000), 0);
    for (int i = 0; i < T * PER; i++) {
        cr_assert_eq(calls[i].done_count, 1);
        cr_assert_str_eq(calls[i].output, "from a thread");
        if (i % 2)
            cr_assert_str_eq(calls[i].chunks, "from a thread");
        tcall_clear(&calls[i]);
    }
    free(calls);
    engine_free(eng);
}

/* on_done may submit a follow-up call (it only takes the inbound lock) */
typedef struct chain {
    engine_t *eng;
    tcall last;
    int hops;
} chain;

static void on_done_chain(void *ud, const engine_result *r)
{
    chain *ch = ud;
    (void)r;
    if (++ch->hops < 5) {
        engine_call call = {0};
        json_t *m = user_msgs("again");
        call.model = "echo";
        call.messages = m;
        call.on_done = on_done_chain;
        call.ud = ch;
        cr_assert_eq(engine_submit(ch->eng, &call), 0);
        json_decref(m);
        return;
    }
    on_done(&ch->last, r);
}

Test(engine_lifecycle, submit_from_callback)
{
    engine_config cfg;
    engine_t *eng;
    chain ch = {0};
    tgroup g;
    engine_call call = {0};
    json_t *m = user_msgs("start");

    engine_config_init(&cfg);
    eng = new_engine(&cfg);
    group_init(&g);
    ch.eng = eng;
    ch.last.g = &g;
    call.model = "echo";
    call.messages = m;
    call.on_done = on_done_chain;
    call.ud = &ch;
    cr_assert_eq(engine_submit(eng, &call), 0);
    cr_assert_eq(group_wait(&g, 1, 5000), 0);
    cr_assert_eq(ch.hops, 5);
    cr_assert_str_eq(ch.last.output, "again");
    tcall_clear(&ch.last);
    json_decref(m);
    engine_free(eng);
}
