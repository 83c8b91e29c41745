/*
 * engine_http.c — one upstream HTTP attempt on the engine's libcurl multi
 * handle: build it through the provider's vtable, consume the body as it
 * arrives (buffered JSON, or an SSE stream parsed incrementally and handed to
 * on_chunk), and classify the outcome when curl reports the transfer done:
 *
 *   2xx + parsable answer        -> ENGINE_OK
 *   429, 408, 5xx                -> retryable ENGINE_ERR_UPSTREAM (Retry-After honoured)
 *   401, 402, 403, 407           -> ENGINE_ERR_UPSTREAM, not retried (next fallback):
 *                                   promptd's credentials or account, not the caller's
 *   other 4xx                    -> ENGINE_ERR_REJECTED with the provider's own
 *                                   words (provider_error), not retried (next fallback)
 *   other HTTP status            -> ENGINE_ERR_UPSTREAM, not retried (next fallback)
 *   connection refused/reset/dropped, DNS, TLS handshake
 *                                -> retryable ENGINE_ERR_UPSTREAM
 *   timeout before the request was sent (connect) -> retryable ENGINE_ERR_TIMEOUT
 *   timeout after it was sent    -> ENGINE_ERR_TIMEOUT, not retried: the
 *                                   per-attempt timeout is the caller's
 *                                   latency budget, retrying would multiply it
 *   malformed / oversized answer -> ENGINE_ERR_UPSTREAM, not retried
 *   socket the engine cannot watch (epoll_ctl failed: out of kernel memory
 *   or epoll watches)            -> ENGINE_ERR_INTERNAL, not retried (next
 *                                   fallback)
 *
 * Usage missing from an otherwise good answer is NOT an error: many
 * OpenAI-compatible servers omit it (notably in streams); the tokens are then
 * estimated like the echo model does (provider_estimate_tokens). Usage that is
 * present but malformed IS an error.
 *
 * Flow control (engine.h, engine_valve): while a streamed call's valve is
 * closed, the write callback returns CURL_WRITEFUNC_PAUSE (curl keeps those
 * bytes and stops reading the socket) and the call waits on the valve's held
 * list until engine_http_unpause. A paused transfer keeps its timeout.
 *
 * Runs only on the engine thread. Ownership: the request owns its curl
 * headers, body and buffers for the duration of the attempt;
 * engine_http_release() gives them back, the easy handle going to the pool.
 */
#include "engine/engine_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

static CURL *engine_easy_get(engine_t *eng)
{
    if (eng->pool_len > 0)
        return eng->pool[--eng->pool_len];
    return curl_easy_init();
}

static void engine_easy_put(engine_t *eng, CURL *easy)
{
    if (eng->pool_len < ENGINE_POOL_MAX) {
        curl_easy_reset(easy); /* connections stay in the multi's cache */
        eng->pool[eng->pool_len++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}

void engine_http_release(engine_t *eng, engine_req *req)
{
    if (req->easy) {
        engine_easy_put(eng, req->easy);
        req->easy = NULL;
    }
    if (req->headers) {
        curl_slist_free_all(req->headers);
        req->headers = NULL;
    }
    free(req->body);
    req->body = NULL;
}

void engine_http_unpause(engine_t *eng, engine_req *req)
{
    CURLcode cc;

    (void)eng;
    if (!req->easy)
        return;
    /* curl hands over what it kept from inside this call (the write callback
     * may hold the call again) and sets its timer to act on the socket */
    cc = curl_easy_pause(req->easy, CURLPAUSE_CONT);
    if (cc != CURLE_OK) /* the transfer then stays paused until its timeout ends it */
        log_error("engine: cannot resume a paused upstream transfer: %s", curl_easy_strerror(cc));
}

void engine_http_abort(engine_t *eng, engine_req *req)
{
    const engine_hop *hop = &req->hops[req->hop];

    if (req->easy)
        curl_multi_remove_handle(eng->multi, req->easy);
    if (hop->provider >= 0)
        eng->prov[hop->provider].in_flight--;
    engine_unhold(req);
    engine_http_release(eng, req);
}

void engine_http_unwatched(engine_t *eng, CURL *easy, int err)
{
    void *priv = NULL;
    engine_req *req;

    if (!easy || curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv)
        return; /* not one of ours (curl's internal closure handle): nothing waits on it */
    req = priv;
    if (!req->watch_errno)
        req->watch_errno = err ? err : EIO;
    eng->unwatched = 1;
}

/* The attempt cannot be driven (curl's socket callback could not watch its
 * socket): without this, it would hang until its timeout. Rare (the kernel
 * out of memory or epoll watches), so walking the all-list is fine. It runs
 * after engine_http_collect, so an attempt that completed anyway counts as
 * completed. */
void engine_http_fail_unwatched(engine_t *eng)
{
    engine_req *req, *next;

    if (!eng->unwatched)
        return;
    eng->unwatched = 0;
    for (req = eng->all; req; req = next) {
        char msg[160];

        /* engine_attempt_failed may finish (free) req, never another request */
        next = req->all_next;
        if (req->state != ENGINE_REQ_RUNNING || !req->watch_errno)
            continue;
        snprintf(msg, sizeof(msg), "cannot watch the upstream connection: %s",
                 strerror(req->watch_errno));
        engine_http_abort(eng, req);
        engine_attempt_failed(eng, req, ENGINE_ERR_INTERNAL, 0, 0, msg);
    }
}

static void engine_write_fail(engine_req *req, const char *msg)
{
    if (!req->write_error)
        req->write_error = strdup(msg);
}

/* A streamed text piece: keep it for the result, hand it to the caller. */
static int engine_on_text(void *ud, const char *text, size_t len)
{
    engine_req *req = ud;

    if (provider_buf_append(&req->out, text, len, ENGINE_MAX_OUTPUT) != 0) {
        engine_write_fail(req, "streamed answer too large or out of memory");
        return -1;
    }
    if (req->on_chunk && !engine_valve_dropped(req)) {
        req->delivered = 1;
        req->on_chunk(req->ud, text, len);
    }
    return 0;
}

/* A streamed chunk's log probabilities: only passed on (not kept). */
static int engine_on_logprobs(void *ud, const json_t *logprobs)
{
    engine_req *req = ud;

    if (req->on_logprobs && !engine_valve_dropped(req))
        req->on_logprobs(req->ud, logprobs);
    return 0;
}

/* A streamed piece of a tool call: joined into req->tool_calls, then passed on. */
static int engine_on_tool(void *ud, const json_t *delta)
{
    engine_req *req = ud;

    if (provider_tool_calls_merge(&req->tool_calls, delta, ENGINE_MAX_OUTPUT) != 0) {
        engine_write_fail(req, "streamed tool calls too many, too large, or out of memory");
        return -1;
    }
    if (req->on_tool_chunk && !engine_valve_dropped(req)) {
        req->delivered = 1;
        req->on_tool_chunk(req->ud, delta);
    }
    return 0;
}

static int engine_on_sse(void *ud, const char *event, const char *data, size_t len, char *err,
                         size_t errlen)
{
    engine_req *req = ud;
    const engine_prov *p = &req->eng->prov[req->hops[req->hop].provider];

    return p->ops->parse_stream_event(&req->st, event, data, len, err, errlen);
}

/* Decide how to read the body, once the status line and headers are in. */
static void engine_pick_mode(engine_req *req)
{
    long code = 0;
    char *ct = NULL;

    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &code);
    req->last_http_status = code;
    if (code < 200 || code > 299) {
        req->mode = ENGINE_BODY_ERROR;
        return;
    }
    req->mode = ENGINE_BODY_FULL;
    if (req->stream) {
        /* a server that ignores "stream": true answers with plain JSON */
        curl_easy_getinfo(req->easy, CURLINFO_CONTENT_TYPE, &ct);
        if (!ct || strncasecmp(ct, "application/json", 16) != 0)
            req->mode = ENGINE_BODY_SSE;
    }
}

static size_t engine_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    engine_req *req = ud;
    size_t n = size * nmemb;
    char err[256];

    if (req->mode == ENGINE_BODY_UNKNOWN)
        engine_pick_mode(req);
    /* the consumer is full (engine.h, engine_valve): curl keeps these bytes
     * and stops reading the socket until engine_http_unpause */
    if (req->mode == ENGINE_BODY_SSE && !req->held && engine_valve_shut(req)) {
        engine_hold(req, ENGINE_HELD_PAUSED);
        return CURL_WRITEFUNC_PAUSE;
    }
    switch (req->mode) {
    case ENGINE_BODY_FULL:
        if (provider_buf_append(&req->resp, ptr, n, ENGINE_MAX_BODY) != 0) {
            engine_write_fail(req, "response body too large or out of memory");
            return 0;
        }
        break;
    case ENGINE_BODY_ERROR:
        if (req->resp.len < ENGINE_MAX_ERRBODY) {
            size_t room = ENGINE_MAX_ERRBODY - req->resp.len;
            if (provider_buf_append(&req->resp, ptr, n < room ? n : room, ENGINE_MAX_ERRBODY) != 0) {
                engine_write_fail(req, "out of memory");
                return 0;
            }
        }
        break;
    case ENGINE_BODY_SSE:
        err[0] = '\0';
        if (provider_sse_feed(&req->sse, ptr, n, engine_on_sse, req, err, sizeof(err)) != 0) {
            engine_write_fail(req, err[0] ? err : "malformed stream");
            return 0;
        }
        break;
    default:
        break;
    }
    return n;
}

void engine_http_start(engine_t *eng, engine_req *req)
{
    const engine_hop *hop = &req->hops[req->hop];
    engine_prov *p = &eng->prov[hop->provider];
    provider_params params;
    provider_request preq;
    char err[256];
    CURL *easy = NULL;
    struct curl_slist *h = NULL;
    CURLcode cc = CURLE_OK;

    if (!req->first_attempt_us)
        req->first_attempt_us = engine_now_us();
    /* a fresh attempt: nothing has been delivered (else we would not retry) */
    free(req->write_error);
    req->write_error = NULL;
    req->watch_errno = 0;
    req->mode = ENGINE_BODY_UNKNOWN;
    provider_buf_reset(&req->resp);
    provider_buf_reset(&req->out);
    provider_sse_reset(&req->sse);
    memset(&req->st, 0, sizeof(req->st));
    req->st.on_text = engine_on_text;
    req->st.on_tool = engine_on_tool;
    req->st.on_logprobs = engine_on_logprobs;
    req->st.ud = req;
    req->finish_reason[0] = '\0';
    json_decref(req->tool_calls);
    req->tool_calls = NULL;
    json_decref(req->logprobs);
    req->logprobs = NULL;

    memset(&params, 0, sizeof(params));
    params.model = hop->model;
    params.messages = req->msgs;
    params.n_messages = req->n_msgs;
    params.temperature = req->temperature;
    params.has_temperature = req->has_temperature;
    params.max_tokens = req->max_tokens;
    params.stream = req->stream;
    params.messages_json = req->messages_json;
    params.options = req->options;
    err[0] = '\0';
    if (p->ops->build_request(&p->ep, &params, &preq, err, sizeof(err)) != 0) {
        engine_attempt_failed(eng, req, ENGINE_ERR_INTERNAL, 0, 0, err);
        return;
    }
    for (size_t i = 0; i < preq.n_headers; i++) {
        struct curl_slist *nh = curl_slist_append(h, preq.headers[i]);
        if (!nh)
            goto oom;
        h = nh;
    }
    {
        /* no "Expect: 100-continue" round trip before large bodies */
        struct curl_slist *nh = curl_slist_append(h, "Expect:");
        if (!nh)
            goto oom;
        h = nh;
    }
    easy = engine_easy_get(eng);
    if (!easy)
        goto oom;
    cc |= curl_easy_setopt(easy, CURLOPT_URL, preq.url);
    cc |= curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    cc |= curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    cc |= curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
    cc |= curl_easy_setopt(easy, CURLOPT_POSTFIELDS, preq.body);
    cc |= curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)preq.body_len);
    cc |= curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, engine_write_cb);
    cc |= curl_easy_setopt(easy, CURLOPT_WRITEDATA, req);
    cc |= curl_easy_setopt(easy, CURLOPT_PRIVATE, req);
    cc |= curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, p->cfg->connect_timeout_ms);
    cc |= curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, p->cfg->timeout_ms);
    cc |= curl_easy_setopt(easy, CURLOPT_USERAGENT, "promptd");
    cc |= curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Every transfer holds a receive buffer while it waits. At libcurl's
     * 16 KiB default, a waiting transfer cost 28 KB resident once the heap
     * had been recycled by earlier answers, at 4 KiB 16 KB
     * (bench/curl_multi_cost.c, "idle"); at 1 KiB the 10,000-call burst's
     * peak RSS fell by another ~3 KB per call (bench/README.md). A smaller
     * buffer only means more, smaller reads of a large answer: a few
     * microseconds against a model call's hundreds of milliseconds. */
    cc |= curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, ENGINE_CURL_BUFFERSIZE);
    /* over TLS, ALPN tells quickly whether HTTP/2 can multiplex: wait for that
     * rather than open a connection per call. Never over plain http://, where
     * curl would only learn it from the first response, serialising the calls
     * behind it. */
    if (strncmp(preq.url, "https://", 8) == 0)
        cc |= curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    if (cc != CURLE_OK) {
        snprintf(err, sizeof(err), "cannot configure the HTTP request");
        goto fail;
    }
    req->easy = easy;
    req->headers = h;
    req->body = preq.body; /* POSTFIELDS is not copied by curl: keep it alive */
    preq.body = NULL;
    provider_request_free(&preq);
    if (curl_multi_add_handle(eng->multi, easy) != CURLM_OK) {
        engine_http_release(eng, req);
        engine_attempt_failed(eng, req, ENGINE_ERR_INTERNAL, 0, 0,
                              "cannot start the HTTP request");
        return;
    }
    req->state = ENGINE_REQ_RUNNING;
    req->attempt++;
    req->attempts_total++;
    p->in_flight++;
    return;
oom:
    snprintf(err, sizeof(err), "out of memory starting the HTTP request");
fail:
    if (easy)
        engine_easy_put(eng, easy);
    if (h)
        curl_slist_free_all(h);
    provider_request_free(&preq);
    engine_attempt_failed(eng, req, ENGINE_ERR_INTERNAL, 0, 0, err);
}

static int engine_curl_retryable(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

/* The transfer completed at the HTTP level with a 2xx: turn it into a result. */
static void engine_http_success(engine_t *eng, engine_req *req, const engine_prov *p)
{
    provider_response r;
    char err[256];
    size_t prompt_bytes;

    err[0] = '\0';
    if (req->mode == ENGINE_BODY_UNKNOWN)
        engine_pick_mode(req); /* an empty body */
    prompt_bytes = provider_messages_bytes(req->msgs, req->n_msgs);
    if (req->mode == ENGINE_BODY_SSE) {
        if (provider_sse_finish(&req->sse, engine_on_sse, req, err, sizeof(err)) != 0) {
            engine_attempt_failed(eng, req, ENGINE_ERR_UPSTREAM, 0, 0,
                                  err[0] ? err : "malformed stream");
            return;
        }
        if (!req->st.done && !req->st.finish_reason[0]) {
            /* neither the end marker nor a finish reason: cut off, like a dropped
             * connection, so worth another try if nothing was delivered. (A
             * finish reason without the marker is accepted: some compatible
             * servers omit "data: [DONE]".) */
            engine_attempt_failed(eng, req, ENGINE_ERR_UPSTREAM, 1, 0,
                                  "stream ended before its end marker");
            return;
        }
        memcpy(req->finish_reason, req->st.finish_reason, sizeof(req->finish_reason));
        if (req->st.has_usage) {
            req->prompt_tokens = req->st.prompt_tokens;
            req->completion_tokens = req->st.completion_tokens;
            req->total_tokens = req->st.total_tokens;
        } else {
            req->prompt_tokens = provider_estimate_tokens(prompt_bytes);
            req->completion_tokens = provider_estimate_tokens(req->out.len);
            req->total_tokens = req->prompt_tokens + req->completion_tokens;
        }
        engine_finish(eng, req, ENGINE_OK);
        return;
    }
    if (p->ops->parse_response(req->resp.data ? req->resp.data : "", req->resp.len, &r, err,
                               sizeof(err)) != 0) {
        engine_attempt_failed(eng, req, ENGINE_ERR_UPSTREAM, 0, 0,
                              err[0] ? err : "malformed response");
        return;
    }
    provider_buf_free(&req->out);
    req->out.data = r.text; /* ownership moves to the request */
    req->out.len = r.text_len;
    req->out.cap = r.text_len + 1;
    r.text = NULL;
    memcpy(req->finish_reason, r.finish_reason, sizeof(req->finish_reason));
    req->tool_calls = r.tool_calls; /* ownership moves too */
    r.tool_calls = NULL;
    req->logprobs = r.logprobs;
    r.logprobs = NULL;
    if (r.has_usage) {
        req->prompt_tokens = r.prompt_tokens;
        req->completion_tokens = r.completion_tokens;
        req->total_tokens = r.total_tokens;
    } else {
        req->prompt_tokens = provider_estimate_tokens(prompt_bytes);
        req->completion_tokens = provider_estimate_tokens(req->out.len);
        req->total_tokens = req->prompt_tokens + req->completion_tokens;
    }
    /* a stream request answered in one piece is still delivered through
     * on_chunk, in pieces its valve can stop (engine_replay) */
    if (req->stream && req->on_chunk && req->out.len > 0 && req->logprobs && req->on_logprobs &&
        !engine_valve_dropped(req))
        req->on_logprobs(req->ud, req->logprobs);
    req->sent = 0;
    req->replay_words = 0;
    engine_replay(eng, req);
}

/* A 4xx that is the caller's own mistake (see the top of this file). */
static int engine_http_rejects(long code)
{
    return code >= 400 && code <= 499 && code != 401 && code != 402 && code != 403 && code != 407 &&
           code != 408 && code != 429;
}

static void engine_http_done(engine_t *eng, engine_req *req, CURLcode cc)
{
    engine_prov *p = &eng->prov[req->hops[req->hop].provider];
    char msg[512];
    long code = 0;
    curl_off_t retry_after = 0;
    long req_size = 0;

    engine_unhold(req); /* a paused transfer can still end: its timeout */
    curl_multi_remove_handle(eng->multi, req->easy);
    p->in_flight--;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code > 0)
        req->last_http_status = code;
    curl_easy_getinfo(req->easy, CURLINFO_RETRY_AFTER, &retry_after);
    /* bytes of request sent: 0 means the timeout hit before the request left */
    curl_easy_getinfo(req->easy, CURLINFO_REQUEST_SIZE, &req_size);

    if (cc == CURLE_OK && code >= 200 && code <= 299) {
        engine_http_release(eng, req);
        engine_http_success(eng, req, p);
        return;
    }
    if (cc == CURLE_OK) {
        int retryable = code == 408 || code == 429 || code >= 500;
        long ra_ms = retry_after > 0 ? (long)(retry_after > 86400 ? 86400 : retry_after) * 1000
                                     : 0;
        enum engine_status st = ENGINE_ERR_UPSTREAM;
        p->ops->error_message(code, req->resp.data, req->resp.len, msg, sizeof(msg));
        char cred[sizeof(msg) + 128];
        const char *why = msg;
        if (code == 401 || code == 403) {
            /* said plainly: a caller reading "Incorrect API key" would blame its own key */
            snprintf(cred, sizeof(cred),
                     "the provider refused promptd's own credentials (the API key in the server's "
                     "configuration, not the caller's): %s",
                     msg);
            why = cred;
        }
        if (engine_http_rejects(code)) {
            provider_error *pe = malloc(sizeof(*pe));
            if (pe) { /* without it the call still fails, as a plain upstream failure */
                p->ops->parse_error(code, req->resp.data, req->resp.len, pe);
                free(req->rejected);
                req->rejected = pe;
                st = ENGINE_ERR_REJECTED;
            }
        }
        engine_http_release(eng, req);
        engine_attempt_failed(eng, req, st, retryable, ra_ms, why);
        return;
    }
    engine_http_release(eng, req);
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        if (req_size == 0) {
            snprintf(msg, sizeof(msg), "could not connect within %ld ms",
                     p->cfg->connect_timeout_ms);
            engine_attempt_failed(eng, req, ENGINE_ERR_TIMEOUT, 1, 0, msg);
        } else {
            snprintf(msg, sizeof(msg), "no complete answer within %ld ms", p->cfg->timeout_ms);
            engine_attempt_failed(eng, req, ENGINE_ERR_TIMEOUT, 0, 0, msg);
        }
        return;
    }
    if (cc == CURLE_WRITE_ERROR && req->write_error) {
        engine_attempt_failed(eng, req, ENGINE_ERR_UPSTREAM, 0, 0, req->write_error);
        return;
    }
    snprintf(msg, sizeof(msg), "%s", curl_easy_strerror(cc));
    engine_attempt_failed(eng, req, ENGINE_ERR_UPSTREAM, engine_curl_retryable(cc), 0, msg);
}

void engine_http_collect(engine_t *eng)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(eng->multi, &left)) != NULL) {
        void *priv = NULL;
        engine_req *req;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        req = priv;
        if (!req)
            continue;
        /* m is invalid once the handle is removed: take what we need first */
        engine_http_done(eng, req, m->data.result);
    }
}
