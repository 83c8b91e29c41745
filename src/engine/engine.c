/*
 * engine.c — the public engine API (engine.h), its one thread, and the life
 * of a call from submit to on_done: routing, the inbound queue, per-provider
 * concurrency FIFOs, retry timers, fallbacks, the built-in echo model, and
 * shutdown. The upstream HTTP attempt itself lives in engine_http.c.
 *
 * The thread's loop never sleeps and never blocks except in epoll_wait on
 * one epoll set: the upstream sockets libcurl asks it to watch
 * (CURLMOPT_SOCKETFUNCTION) and an eventfd through which engine_submit and
 * engine_shutdown wake it. The wait ends at the earliest of curl's timer
 * (CURLMOPT_TIMERFUNCTION), the earliest retry timer and ENGINE_MAX_POLL_MS.
 * libcurl is then driven with curl_multi_socket_action for the ready
 * sockets and the due timer only, so a turn costs what happened in it, not
 * one look at every transfer in flight as curl_multi_perform does.
 *
 * Flow control: a streamed call may carry a valve (engine.h). An answer known
 * whole (echo, or a stream request answered in one body) is handed out by
 * engine_replay in pieces, stopping while the valve is closed (state HELD);
 * a streamed transfer is paused by its write callback (engine_http.c).
 * Opening a valve queues it for this thread (eng->reopened), which resumes
 * its held calls at the top of its next turn (engine_reopen).
 *
 * Ownership: see engine_internal.h. In short, a request belongs to the
 * submitter until engine_submit queues it, then to the engine thread, which
 * frees it immediately after calling its on_done exactly once.
 */
#include "engine/engine_internal.h"

#include <errno.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/thread.h"

uint64_t engine_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The same clock in microseconds: curl's timer is kept at this resolution so
 * that rounding never wakes the thread before curl's deadline. */
uint64_t engine_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Wake the engine thread (any thread; the caller holds eng->lock). */
static void engine_wake(engine_t *eng)
{
    const uint64_t one = 1;
    ssize_t n = write(eng->wake_fd, &one, sizeof(one));

    /* Ignored: EAGAIN means the count is at its maximum, so the thread is
     * woken anyway, and nothing else can fail on our own eventfd; should it,
     * the thread still finds the work at its next turn, at most
     * ENGINE_MAX_POLL_MS later. */
    (void)n;
}

/* ---- requests ---- */

static void engine_req_free(engine_req *req)
{
    if (!req)
        return;
    free(req->msgs);
    free(req->hops);
    free(req->error);
    free(req->rejected);
    free(req->write_error);
    free(req->body);
    if (req->headers)
        curl_slist_free_all(req->headers);
    provider_buf_free(&req->resp);
    provider_sse_free(&req->sse);
    provider_buf_free(&req->out);
    json_decref(req->messages_json);
    json_decref(req->options);
    json_decref(req->tool_calls);
    json_decref(req->logprobs);
    engine_valve_unref(req->valve);
    free(req);
}

/* A stream request answered in one piece: its tool calls go out as one delta each. */
void engine_tool_pieces(engine_req *req)
{
    size_t i;
    json_t *call;

    if (!req->stream || !req->on_tool_chunk || engine_valve_dropped(req))
        return;
    json_array_foreach(req->tool_calls, i, call)
    {
        json_t *d = json_deep_copy(call);
        if (d && json_object_set_new(d, "index", json_integer((json_int_t)i)) == 0)
            req->on_tool_chunk(req->ud, d);
        json_decref(d);
    }
}

/* ---- valves (engine.h) ---- */

engine_valve *engine_valve_new(engine_t *eng)
{
    engine_valve *v;

    if (!eng || !(v = calloc(1, sizeof(*v))))
        return NULL;
    v->eng = eng;
    atomic_init(&v->refs, 1);
    atomic_init(&v->closed, 0);
    atomic_init(&v->dropped, 0);
    return v;
}

void engine_valve_ref(engine_valve *v)
{
    if (v)
        atomic_fetch_add(&v->refs, 1);
}

void engine_valve_unref(engine_valve *v)
{
    /* the last reference: no call carries it (each holds one), nor the queue */
    if (v && atomic_fetch_sub(&v->refs, 1) == 1)
        free(v);
}

void engine_valve_close(engine_valve *v)
{
    if (v)
        atomic_store(&v->closed, 1);
}

void engine_valve_open(engine_valve *v)
{
    engine_t *eng;

    /* Only a closed -> open change can matter: a call is held only after it
     * saw the valve closed, so the change that follows is what queues it. */
    if (!v || !atomic_exchange(&v->closed, 0))
        return;
    eng = v->eng;
    pthread_mutex_lock(&eng->lock);
    if (!v->queued) {
        v->queued = 1;
        atomic_fetch_add(&v->refs, 1); /* the queue's */
        v->next = eng->reopened;
        eng->reopened = v;
        if (eng->wake_fd >= 0)
            engine_wake(eng);
    }
    pthread_mutex_unlock(&eng->lock);
}

void engine_valve_drop(engine_valve *v)
{
    if (!v)
        return;
    atomic_store(&v->dropped, 1);
    engine_valve_open(v);
}

int engine_valve_shut(const engine_req *req)
{
    return req->valve && atomic_load(&req->valve->closed) && !atomic_load(&req->valve->dropped);
}

int engine_valve_dropped(const engine_req *req) { return req->valve && atomic_load(&req->valve->dropped); }

void engine_hold(engine_req *req, enum engine_held why)
{
    engine_valve *v = req->valve;

    req->held = why;
    req->held_prev = NULL;
    req->held_next = v->held;
    if (v->held)
        v->held->held_prev = req;
    v->held = req;
}

void engine_unhold(engine_req *req)
{
    engine_valve *v = req->valve;

    if (!req->held)
        return;
    if (req->held_prev)
        req->held_prev->held_next = req->held_next;
    else
        v->held = req->held_next;
    if (req->held_next)
        req->held_next->held_prev = req->held_prev;
    req->held_prev = req->held_next = NULL;
    req->held = ENGINE_HELD_NO;
}

/* Engine thread: the valves opened since the last turn let their calls go
 * on. A valve closed again meanwhile keeps them: its next opening queues it
 * again. */
static void engine_reopen(engine_t *eng)
{
    engine_valve *v, *next;

    pthread_mutex_lock(&eng->lock);
    v = eng->reopened;
    eng->reopened = NULL;
    for (engine_valve *q = v; q; q = q->next)
        q->queued = 0;
    pthread_mutex_unlock(&eng->lock);
    for (; v; v = next) {
        engine_req *list;

        next = v->next;
        if (atomic_load(&v->closed)) {
            engine_valve_unref(v);
            continue;
        }
        /* taken off as a whole: a call that is held again joins a fresh list */
        list = v->held;
        v->held = NULL;
        while (list) {
            engine_req *req = list;
            enum engine_held why = req->held;

            list = req->held_next;
            if (list)
                list->held_prev = NULL;
            req->held_prev = req->held_next = NULL;
            req->held = ENGINE_HELD_NO;
            if (why == ENGINE_HELD_REPLAY)
                engine_replay(eng, req); /* may finish (free) req, never another call */
            else
                engine_http_unpause(eng, req);
        }
        engine_valve_unref(v);
    }
}

/* The length of the next piece of a known answer: a word for echo (what the
 * non-held echo always sent), at most ENGINE_PIECE_MAX, never inside a UTF-8
 * sequence unless a single sequence-less run leaves no other cut. */
static size_t engine_piece_len(const engine_req *req)
{
    const char *p = req->out.data;
    size_t left = req->out.len - req->sent, n, cut;

    n = req->replay_words ? provider_echo_piece(p, req->out.len, req->sent) : left;
    if (n <= ENGINE_PIECE_MAX)
        return n;
    cut = req->sent + ENGINE_PIECE_MAX;
    while (cut > req->sent && ((unsigned char)p[cut] & 0xC0u) == 0x80u)
        cut--;
    return cut > req->sent ? cut - req->sent : ENGINE_PIECE_MAX;
}

void engine_replay(engine_t *eng, engine_req *req)
{
    if (req->stream && req->on_chunk) {
        while (req->sent < req->out.len && !engine_valve_dropped(req)) {
            size_t n;

            if (engine_valve_shut(req)) {
                req->state = ENGINE_REQ_HELD;
                engine_hold(req, ENGINE_HELD_REPLAY);
                return;
            }
            n = engine_piece_len(req);
            req->delivered = 1;
            req->on_chunk(req->ud, req->out.data + req->sent, n);
            req->sent += n;
        }
    }
    engine_tool_pieces(req);
    engine_finish(eng, req, ENGINE_OK);
}

/* Text of one message's content: a string, null (""), or an array of parts
 * whose "text" strings are joined with newlines; parts with another "type" and
 * no text (images, audio) add nothing here (providers given the call's
 * messages_json see them). -1 otherwise. */
static int engine_content_len(const json_t *c, size_t *len)
{
    size_t i, texts = 0;
    json_t *part;

    *len = 0;
    if (json_is_null(c))
        return 0;
    if (json_is_string(c)) {
        *len = json_string_length(c);
        return 0;
    }
    if (!json_is_array(c))
        return -1;
    json_array_foreach(c, i, part) {
        json_t *t = json_object_get(part, "type"), *x = json_object_get(part, "text");
        if (json_is_string(x) && (!t || (json_is_string(t) && strcmp(json_string_value(t), "text") == 0))) {
            *len += json_string_length(x) + (texts++ > 0);
            continue;
        }
        if (x || !json_is_string(t))
            return -1;
    }
    return 0;
}

static char *engine_content_copy(const json_t *c, char *dst)
{
    size_t i;
    json_t *part;
    size_t texts = 0;

    if (json_is_string(c)) {
        memcpy(dst, json_string_value(c), json_string_length(c));
        return dst + json_string_length(c);
    }
    json_array_foreach(c, i, part) {
        json_t *x = json_object_get(part, "text");
        if (!x)
            continue;
        if (texts++ > 0)
            *dst++ = '\n';
        memcpy(dst, json_string_value(x), json_string_length(x));
        dst += json_string_length(x);
    }
    return dst;
}

/* Flatten messages into one block: the array, then "role\0content\0" strings.
 * One allocation per call keeps 10,000 waiting calls cheap. */
static int engine_copy_messages(engine_req *req, const json_t *messages)
{
    size_t n, i, total, clen;
    json_t *m;
    char *p;

    if (!json_is_array(messages))
        return -1;
    n = json_array_size(messages);
    total = n * sizeof(provider_message);
    json_array_foreach(messages, i, m) {
        json_t *role = json_object_get(m, "role");
        if (!json_is_object(m) || !json_is_string(role) || json_string_length(role) == 0 ||
            strlen(json_string_value(role)) != json_string_length(role) ||
            engine_content_len(json_object_get(m, "content"), &clen) != 0)
            return -1;
        total += json_string_length(role) + 1 + clen + 1;
    }
    req->msgs = malloc(total ? total : 1);
    if (!req->msgs)
        return -1;
    req->n_msgs = n;
    p = (char *)(req->msgs + n);
    json_array_foreach(messages, i, m) {
        json_t *role = json_object_get(m, "role"), *c = json_object_get(m, "content");
        char *end;

        req->msgs[i].role = p;
        memcpy(p, json_string_value(role), json_string_length(role) + 1);
        p += json_string_length(role) + 1;
        req->msgs[i].content = p;
        end = c && !json_is_null(c) ? engine_content_copy(c, p) : p;
        req->msgs[i].content_len = (size_t)(end - p);
        *end = '\0';
        p = end + 1;
    }
    return 0;
}

/* The routed model followed by its configured fallbacks (deduplicated). */
static int engine_build_hops(engine_t *eng, engine_req *req, const char *model)
{
    const char *names[64];
    int provs[64];
    size_t n = 0, total = 0;
    const char *target = NULL;
    const engine_fallback *fb;
    int r;
    char *p;

    r = engine_config_route(&eng->cfg, model, &target);
    if (r == ENGINE_ROUTE_UNKNOWN)
        return ENGINE_ERR_UNKNOWN_MODEL;
    names[n] = target;
    provs[n++] = r;
    fb = engine_config_fallbacks(&eng->cfg, target);
    for (size_t i = 0; fb && i < fb->n_models && n < sizeof(names) / sizeof(names[0]); i++) {
        const char *t = NULL;
        size_t j;
        int fr = engine_config_route(&eng->cfg, fb->models[i], &t);

        if (fr == ENGINE_ROUTE_UNKNOWN)
            continue; /* validated at load; a hand-built config may still be wrong */
        for (j = 0; j < n && strcmp(names[j], t) != 0; j++)
            ;
        if (j < n)
            continue;
        names[n] = t;
        provs[n++] = fr;
    }
    for (size_t i = 0; i < n; i++)
        total += strlen(names[i]) + 1;
    req->hops = malloc(n * sizeof(engine_hop) + total);
    if (!req->hops)
        return ENGINE_ERR_INTERNAL;
    req->n_hops = n;
    p = (char *)(req->hops + n);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        memcpy(p, names[i], len + 1);
        req->hops[i].provider = provs[i];
        req->hops[i].name = p;
        req->hops[i].model = provs[i] == ENGINE_ROUTE_ECHO ? p : strchr(p, '/') + 1;
        p += len + 1;
    }
    return 0;
}

int engine_submit(engine_t *eng, const engine_call *call)
{
    engine_req *req;
    int rc;

    if (!eng || !call || !call->on_done)
        return ENGINE_ERR_INTERNAL;
    req = calloc(1, sizeof(*req));
    if (!req)
        return ENGINE_ERR_INTERNAL;
    req->eng = eng;
    req->submitted_ms = engine_now_ms();
    rc = engine_build_hops(eng, req, call->model);
    if (rc != 0)
        goto fail;
    if (engine_copy_messages(req, call->messages) != 0) {
        rc = ENGINE_ERR_INTERNAL; /* not an array of {role, content}: the caller validates */
        goto fail;
    }
    /* deep copies: the engine thread must share no reference count with the caller's */
    if ((call->rich_messages && !(req->messages_json = json_deep_copy(call->messages))) ||
        (call->options && !(req->options = json_deep_copy(call->options)))) {
        rc = ENGINE_ERR_INTERNAL;
        goto fail;
    }
    req->on_chunk = call->on_chunk;
    req->on_tool_chunk = call->on_tool_chunk;
    req->on_logprobs = call->on_logprobs;
    req->on_done = call->on_done;
    req->ud = call->ud;
    req->temperature = call->temperature;
    req->has_temperature = call->has_temperature;
    req->max_tokens = call->max_tokens > 0 ? call->max_tokens : 0;
    req->stream = call->stream != 0;
    if (req->stream && call->valve) {
        req->valve = call->valve;
        engine_valve_ref(req->valve);
    }
    req->state = ENGINE_REQ_INBOUND;

    pthread_mutex_lock(&eng->lock);
    if (eng->stopping) {
        pthread_mutex_unlock(&eng->lock);
        rc = ENGINE_ERR_SHUTDOWN;
        goto fail;
    }
    if (eng->in_tail) {
        /* not empty: a wake-up is already pending or the thread has yet to
         * take the queue, which it does after reading the eventfd */
        eng->in_tail->next = req;
    } else {
        eng->in_head = req;
        /* under the lock, so engine_free cannot run between queueing and waking */
        engine_wake(eng);
    }
    eng->in_tail = req;
    pthread_mutex_unlock(&eng->lock);
    return 0;
fail:
    engine_req_free(req);
    return rc;
}

/* ---- completion ---- */

void engine_set_error(engine_req *req, enum engine_status status, const char *msg)
{
    char *e = NULL;

    if (asprintf(&e, "%s: %s", req->hops[req->hop].name, msg) < 0)
        e = NULL; /* the status alone still tells what happened */
    free(req->error);
    req->error = e;
    req->err_status = status;
    if (status != ENGINE_ERR_REJECTED) {
        /* a later failure of another kind (a fallback's 5xx) is what the call ends with */
        free(req->rejected);
        req->rejected = NULL;
    }
}

static void engine_all_unlink(engine_t *eng, engine_req *req)
{
    if (req->all_prev)
        req->all_prev->all_next = req->all_next;
    else if (eng->all == req)
        eng->all = req->all_next;
    if (req->all_next)
        req->all_next->all_prev = req->all_prev;
    req->all_prev = req->all_next = NULL;
}

/* Report the call and free it. The request must be in no queue or heap. */
void engine_finish(engine_t *eng, engine_req *req, enum engine_status status)
{
    engine_result res;
    const char *msg;

    memset(&res, 0, sizeof(res));
    res.status = status;
    res.model = req->hops[req->hop].name;
    res.duration_ms = (long)(engine_now_ms() - req->submitted_ms);
    if (req->first_attempt_us)
        res.upstream_us = (long long)(engine_now_us() - req->first_attempt_us);
    res.attempts = req->attempts_total;
    res.upstream_http_status = (int)req->last_http_status;
    if (status == ENGINE_OK) {
        res.output = req->out.data ? req->out.data : "";
        res.output_len = req->out.len;
        res.prompt_tokens = req->prompt_tokens;
        res.completion_tokens = req->completion_tokens;
        res.total_tokens = req->total_tokens;
        res.finish_reason = req->finish_reason[0] ? req->finish_reason : NULL;
        res.tool_calls = req->tool_calls;
        res.logprobs = req->logprobs;
    } else {
        switch (status) {
        case ENGINE_ERR_SHUTDOWN:
            msg = "engine shutting down";
            break;
        case ENGINE_ERR_TIMEOUT:
            msg = "upstream timed out";
            break;
        case ENGINE_ERR_INTERNAL:
            msg = "internal error";
            break;
        case ENGINE_ERR_REJECTED:
            msg = "upstream refused the request";
            break;
        default:
            msg = "upstream failed";
            break;
        }
        res.output = "";
        /* a shutdown says so even if an earlier attempt left another message */
        res.error = status != ENGINE_ERR_SHUTDOWN && req->error ? req->error : msg;
        if (status == ENGINE_ERR_REJECTED && req->rejected) {
            res.rejection.http_status = (int)req->rejected->http_status;
            res.rejection.message = req->rejected->message[0] ? req->rejected->message : res.error;
            res.rejection.type = req->rejected->type;
            res.rejection.code = req->rejected->code;
            res.rejection.param = req->rejected->param;
        } else if (status == ENGINE_ERR_REJECTED) {
            res.status = ENGINE_ERR_UPSTREAM; /* its details were lost to out of memory */
        }
    }
    engine_all_unlink(eng, req);
    engine_unhold(req);
    req->on_done(req->ud, &res);
    engine_req_free(req);
}

/* ---- timers: a binary min-heap on due_ms ---- */

static int engine_heap_push(engine_t *eng, engine_req *req)
{
    size_t i;

    if (eng->heap_len == eng->heap_cap) {
        size_t cap = eng->heap_cap ? eng->heap_cap * 2 : 64;
        engine_req **h = realloc(eng->heap, cap * sizeof(*h));
        if (!h)
            return -1;
        eng->heap = h;
        eng->heap_cap = cap;
    }
    i = eng->heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (eng->heap[parent]->due_ms <= req->due_ms)
            break;
        eng->heap[i] = eng->heap[parent];
        i = parent;
    }
    eng->heap[i] = req;
    return 0;
}

static engine_req *engine_heap_pop(engine_t *eng)
{
    engine_req *top, *last;
    size_t i = 0;

    if (eng->heap_len == 0)
        return NULL;
    top = eng->heap[0];
    last = eng->heap[--eng->heap_len];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= eng->heap_len)
            break;
        if (c + 1 < eng->heap_len && eng->heap[c + 1]->due_ms < eng->heap[c]->due_ms)
            c++;
        if (last->due_ms <= eng->heap[c]->due_ms)
            break;
        eng->heap[i] = eng->heap[c];
        i = c;
    }
    if (eng->heap_len > 0)
        eng->heap[i] = last;
    return top;
}

/* Full-jitter exponential backoff, raised to the upstream's Retry-After. */
static long engine_backoff_ms(const engine_t *eng, int attempt, long retry_after_ms)
{
    long cap = eng->cfg.retry_base_delay_ms, delay;

    for (int i = 1; i < attempt && cap < eng->cfg.retry_max_delay_ms; i++)
        cap *= 2;
    if (cap > eng->cfg.retry_max_delay_ms)
        cap = eng->cfg.retry_max_delay_ms;
    delay = cap > 0 ? (long)randombytes_uniform((uint32_t)cap + 1u) : 0;
    if (retry_after_ms > 0) {
        if (retry_after_ms > eng->cfg.retry_after_max_ms)
            retry_after_ms = eng->cfg.retry_after_max_ms;
        if (delay < retry_after_ms)
            delay = retry_after_ms;
    }
    return delay;
}

void engine_attempt_failed(engine_t *eng, engine_req *req, enum engine_status status,
                           int retryable, long retry_after_ms, const char *msg)
{
    engine_set_error(req, status, msg);
    if (req->delivered) {
        /* the client already holds part of this answer: another attempt or
         * model would splice two different answers together */
        engine_finish(eng, req, status);
        return;
    }
    if (retryable && req->attempt < eng->cfg.retry_max_attempts) {
        req->due_ms = engine_now_ms() + (uint64_t)engine_backoff_ms(eng, req->attempt,
                                                                   retry_after_ms);
        req->state = ENGINE_REQ_BACKOFF;
        if (engine_heap_push(eng, req) == 0)
            return;
        engine_set_error(req, ENGINE_ERR_INTERNAL, "out of memory scheduling a retry");
        engine_finish(eng, req, ENGINE_ERR_INTERNAL);
        return;
    }
    if (req->hop + 1 < req->n_hops) {
        req->hop++;
        req->attempt = 0;
        engine_begin(eng, req);
        return;
    }
    engine_finish(eng, req, status);
}

/* ---- echo ---- */

static void engine_echo(engine_t *eng, engine_req *req)
{
    provider_response r;
    char err[128];

    if (!req->first_attempt_us)
        req->first_attempt_us = engine_now_us();
    if (provider_echo_reply(req->msgs, req->n_msgs, &r, err, sizeof(err)) != 0) {
        engine_set_error(req, ENGINE_ERR_INTERNAL, err);
        engine_finish(eng, req, ENGINE_ERR_INTERNAL);
        return;
    }
    provider_buf_free(&req->out);
    req->out.data = r.text; /* ownership moves to the request */
    req->out.len = r.text_len;
    req->out.cap = r.text_len + 1;
    req->prompt_tokens = r.prompt_tokens;
    req->completion_tokens = r.completion_tokens;
    req->total_tokens = r.total_tokens;
    memcpy(req->finish_reason, r.finish_reason, sizeof(req->finish_reason));
    /* echo never fails from here (no retry, no fallback): the prompt's copy
     * is not needed while a held stream waits for its client */
    free(req->msgs);
    req->msgs = NULL;
    req->n_msgs = 0;
    req->sent = 0;
    req->replay_words = 1;
    engine_replay(eng, req);
}

/* ---- scheduling ---- */

/* Run the current hop: echo at once, or an upstream attempt when the
 * provider has a free slot, else wait in its FIFO. */
void engine_begin(engine_t *eng, engine_req *req)
{
    const engine_hop *hop = &req->hops[req->hop];
    engine_prov *p;

    if (hop->provider == ENGINE_ROUTE_ECHO) {
        engine_echo(eng, req);
        return;
    }
    p = &eng->prov[hop->provider];
    /* strict FIFO: while anyone waits, newcomers queue behind them */
    if (p->in_flight >= p->cfg->max_concurrency || p->wait_head) {
        req->state = ENGINE_REQ_WAITING;
        req->next = NULL;
        if (p->wait_tail)
            p->wait_tail->next = req;
        else
            p->wait_head = req;
        p->wait_tail = req;
        return;
    }
    engine_http_start(eng, req);
}

/* Let waiting calls take the slots that freed up. */
static void engine_pump(engine_t *eng)
{
    for (size_t i = 0; i < eng->cfg.n_providers; i++) {
        engine_prov *p = &eng->prov[i];
        while (p->wait_head && p->in_flight < p->cfg->max_concurrency) {
            engine_req *req = p->wait_head;
            p->wait_head = req->next;
            if (!p->wait_head)
                p->wait_tail = NULL;
            req->next = NULL;
            engine_http_start(eng, req);
        }
    }
}

static void engine_fire_timers(engine_t *eng)
{
    uint64_t now = engine_now_ms();

    while (eng->heap_len > 0 && eng->heap[0]->due_ms <= now) {
        engine_req *req = engine_heap_pop(eng);
        engine_begin(eng, req);
    }
}

/* How long epoll_wait may sleep: until the earliest of the first retry
 * timer, curl's timer and ENGINE_MAX_POLL_MS. */
static int engine_poll_timeout(const engine_t *eng)
{
    int ms = ENGINE_MAX_POLL_MS;

    if (eng->heap_len > 0) {
        uint64_t now = engine_now_ms();
        if (eng->heap[0]->due_ms <= now)
            return 0;
        if (eng->heap[0]->due_ms - now < (uint64_t)ms)
            ms = (int)(eng->heap[0]->due_ms - now);
    }
    if (eng->curl_timer_on) {
        uint64_t now = engine_now_us();
        if (eng->curl_due_us <= now)
            return 0;
        /* rounded up: waking early would only find curl's timer not yet due */
        if ((eng->curl_due_us - now + 999u) / 1000u < (uint64_t)ms)
            ms = (int)((eng->curl_due_us - now + 999u) / 1000u);
    }
    return ms;
}

/* ---- libcurl's event interface ---- */

/* CURLMOPT_SOCKETFUNCTION: curl says which of its sockets to watch for what.
 * sockp is NULL until we have added s to the epoll set (then it is eng, set
 * with curl_multi_assign), so the usual case costs one epoll_ctl; the
 * fallbacks cover a set that disagrees with curl's view (a descriptor number
 * closed and reused, a curl_multi_assign that failed). */
static int engine_curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *ud, void *sockp)
{
    engine_t *eng = ud;
    struct epoll_event ev;
    int rc;

    if (what == CURL_POLL_REMOVE) {
        /* ENOENT: never added (an earlier epoll_ctl failed); EBADF: already
         * closed. Anything else would be a bug: say so; nothing more to do,
         * as the socket leaves the set by itself when curl closes it. */
        if (epoll_ctl(eng->epfd, EPOLL_CTL_DEL, s, NULL) != 0 && errno != ENOENT &&
            errno != EBADF)
            log_warn("engine: epoll_ctl(DEL) on an upstream socket: %s", strerror(errno));
        return 0;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) | (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    ev.data.fd = s;
    if (!sockp) {
        rc = epoll_ctl(eng->epfd, EPOLL_CTL_ADD, s, &ev);
        if (rc != 0 && errno == EEXIST)
            rc = epoll_ctl(eng->epfd, EPOLL_CTL_MOD, s, &ev);
        /* s is in curl's socket hash while it calls us, so this cannot fail;
         * if it did, the next change would take the ADD path again and fall
         * back to MOD: correct, one system call dearer */
        if (rc == 0)
            (void)curl_multi_assign(eng->multi, s, eng);
    } else {
        rc = epoll_ctl(eng->epfd, EPOLL_CTL_MOD, s, &ev);
        if (rc != 0 && errno == ENOENT)
            rc = epoll_ctl(eng->epfd, EPOLL_CTL_ADD, s, &ev);
    }
    /* Returning -1 would make curl fail every transfer of the multi handle,
     * for good: only the attempt behind this socket fails (after this curl
     * call returns), which it would otherwise do at its timeout at best. */
    if (rc != 0)
        engine_http_unwatched(eng, easy, errno);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: a one-shot timer; -1 removes it, 0 means at once
 * (as for a transfer just added by engine_http_start: the loop's next wait
 * then does not sleep). */
static int engine_curl_timer_cb(CURLM *multi, long timeout_ms, void *ud)
{
    engine_t *eng = ud;

    (void)multi;
    if (timeout_ms < 0) {
        eng->curl_timer_on = 0;
        return 0;
    }
    /* the loop wakes every ENGINE_MAX_POLL_MS anyway; the cap keeps the
     * sum below from overflowing */
    if (timeout_ms > 86400000L)
        timeout_ms = 86400000L;
    eng->curl_timer_on = 1;
    eng->curl_due_us = engine_now_us() + (uint64_t)timeout_ms * 1000u;
    return 0;
}

/* Let curl act on one ready socket (bits: CURL_CSELECT_*) or, with
 * CURL_SOCKET_TIMEOUT, on whatever its timers say is due. */
static void engine_curl_act(engine_t *eng, curl_socket_t s, int bits)
{
    int running = 0;
    CURLMcode mc;

    if (s == CURL_SOCKET_TIMEOUT) {
        /* the timer has fired; curl re-arms it from inside this call if needed */
        eng->curl_timer_on = 0;
        eng->curl_kick_us = engine_now_us();
    }
    mc = curl_multi_socket_action(eng->multi, s, bits, &running);
    /* Failures of a transfer come back through curl_multi_info_read; this is
     * the multi handle itself (out of memory). Its timer may then be stale:
     * the loop calls it again within ENGINE_MAX_POLL_MS whatever the timer
     * says. */
    if (mc != CURLM_OK)
        log_error("engine: curl_multi_socket_action: %s", curl_multi_strerror(mc));
}

/* Act on one batch of epoll events, then on curl's timer if it is due. */
static void engine_curl_events(engine_t *eng, const struct epoll_event *ev, int n)
{
    uint64_t now;

    for (int i = 0; i < n; i++) {
        int bits = 0;

        if (ev[i].data.fd == eng->wake_fd) {
            uint64_t count;
            /* reset the count before the loop next takes the inbound queue
             * (see engine_internal.h); EAGAIN: already read, a spare wake-up */
            if (read(eng->wake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
                log_error("engine: reading the wake-up eventfd: %s", strerror(errno));
            continue;
        }
        if (ev[i].events & EPOLLIN)
            bits |= CURL_CSELECT_IN;
        if (ev[i].events & EPOLLOUT)
            bits |= CURL_CSELECT_OUT;
        /* an error or hang-up: let curl read, so it reports the real cause */
        if (ev[i].events & (EPOLLERR | EPOLLHUP))
            bits |= CURL_CSELECT_ERR | CURL_CSELECT_IN;
        engine_curl_act(eng, ev[i].data.fd, bits);
    }
    now = engine_now_us();
    if ((eng->curl_timer_on && eng->curl_due_us <= now) ||
        now - eng->curl_kick_us >= (uint64_t)ENGINE_MAX_POLL_MS * 1000u)
        engine_curl_act(eng, CURL_SOCKET_TIMEOUT, 0);
}

/* Shutdown: every call the thread still holds ends with ENGINE_ERR_SHUTDOWN. */
static void engine_fail_all(engine_t *eng)
{
    /* queues and the heap only point into the all-list: forget them first */
    eng->heap_len = 0;
    for (size_t i = 0; i < eng->cfg.n_providers; i++)
        eng->prov[i].wait_head = eng->prov[i].wait_tail = NULL;
    while (eng->all) {
        engine_req *req = eng->all;
        engine_unhold(req);
        if (req->state == ENGINE_REQ_HELD) {
            /* the answer is whole: hand the rest over without flow control */
            engine_valve_unref(req->valve);
            req->valve = NULL;
            engine_replay(eng, req);
            continue;
        }
        if (req->state == ENGINE_REQ_RUNNING)
            engine_http_abort(eng, req);
        engine_finish(eng, req, ENGINE_ERR_SHUTDOWN);
    }
}

static void *engine_main(void *arg)
{
    engine_t *eng = arg;
    struct epoll_event ev[ENGINE_EPOLL_BATCH];

    for (;;) {
        engine_req *in;
        int stop, n;

        pthread_mutex_lock(&eng->lock);
        in = eng->in_head;
        eng->in_head = eng->in_tail = NULL;
        stop = eng->stopping;
        pthread_mutex_unlock(&eng->lock);

        while (in) {
            engine_req *req = in;
            in = req->next;
            req->next = NULL;
            req->all_next = eng->all;
            if (eng->all)
                eng->all->all_prev = req;
            eng->all = req;
            if (stop)
                engine_finish(eng, req, ENGINE_ERR_SHUTDOWN);
            else
                engine_begin(eng, req);
        }
        if (stop)
            break;
        engine_reopen(eng);
        engine_fire_timers(eng);
        /* transfers started above set curl's timer to 0: this wait does not
         * sleep, and engine_curl_events starts them at once */
        n = epoll_wait(eng->epfd, ev, ENGINE_EPOLL_BATCH, engine_poll_timeout(eng));
        if (n < 0) {
            /* EINTR cannot happen (every signal is blocked on this thread);
             * anything else (EBADF, EINVAL) is a bug: say so, and go on
             * without events rather than stop serving calls */
            if (errno != EINTR)
                log_error("engine: epoll_wait: %s", strerror(errno));
            n = 0;
        }
        engine_curl_events(eng, ev, n);
        engine_http_collect(eng);
        engine_http_fail_unwatched(eng);
        engine_pump(eng);
    }
    engine_fail_all(eng);
    return NULL;
}

/* ---- lifecycle ---- */

int engine_new(const engine_config *cfg, engine_t **out, char *err, size_t errlen)
{
    engine_t *eng = NULL;
    int rc;

    *out = NULL;
    if (!cfg) {
        snprintf(err, errlen, "engine: no configuration");
        return -1;
    }
    if (engine_config_validate(cfg, err, errlen) != 0)
        return -1;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "engine: libsodium failed to initialise");
        return -1;
    }
    eng = calloc(1, sizeof(*eng));
    if (!eng)
        goto oom;
    eng->wake_fd = eng->epfd = -1; /* for engine_free on the way out */
    if (pthread_mutex_init(&eng->lock, NULL) != 0) {
        free(eng);
        snprintf(err, errlen, "engine: cannot create a mutex");
        return -1;
    }
    eng->started = (long long)time(NULL);
    if (engine_config_copy(&eng->cfg, cfg) != 0)
        goto oom;
    if (eng->cfg.n_providers) {
        eng->prov = calloc(eng->cfg.n_providers, sizeof(*eng->prov));
        if (!eng->prov)
            goto oom;
    }
    for (size_t i = 0; i < eng->cfg.n_providers; i++) {
        engine_prov *p = &eng->prov[i];
        p->cfg = &eng->cfg.providers[i];
        p->ops = p->cfg->type == ENGINE_PROVIDER_ANTHROPIC ? &provider_anthropic_ops
                                                           : &provider_openai_ops;
        p->ep.base_url = p->cfg->base_url;
        p->ep.api_key = p->cfg->api_key;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, errlen, "engine: libcurl failed to initialise");
        goto fail;
    }
    eng->curl_ready = 1;
    eng->multi = curl_multi_init();
    if (!eng->multi)
        goto oom;
    {
        /* keep idle keep-alive connections for as many calls as may run at once */
        long maxconn = 0;
        for (size_t i = 0; i < eng->cfg.n_providers; i++)
            maxconn += eng->cfg.providers[i].max_concurrency;
        if (maxconn < 16)
            maxconn = 16;
        if (maxconn > 4096)
            maxconn = 4096;
        curl_multi_setopt(eng->multi, CURLMOPT_MAXCONNECTS, maxconn);
    }
    eng->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (eng->epfd < 0) {
        snprintf(err, errlen, "engine: epoll_create1: %s", strerror(errno));
        goto fail;
    }
    eng->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (eng->wake_fd < 0) {
        snprintf(err, errlen, "engine: eventfd: %s", strerror(errno));
        goto fail;
    }
    {
        struct epoll_event ev;

        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.fd = eng->wake_fd;
        if (epoll_ctl(eng->epfd, EPOLL_CTL_ADD, eng->wake_fd, &ev) != 0) {
            snprintf(err, errlen, "engine: epoll_ctl: %s", strerror(errno));
            goto fail;
        }
    }
    if (curl_multi_setopt(eng->multi, CURLMOPT_SOCKETFUNCTION, engine_curl_socket_cb) !=
            CURLM_OK ||
        curl_multi_setopt(eng->multi, CURLMOPT_SOCKETDATA, eng) != CURLM_OK ||
        curl_multi_setopt(eng->multi, CURLMOPT_TIMERFUNCTION, engine_curl_timer_cb) != CURLM_OK ||
        curl_multi_setopt(eng->multi, CURLMOPT_TIMERDATA, eng) != CURLM_OK) {
        snprintf(err, errlen, "engine: libcurl lacks the multi socket interface");
        goto fail;
    }
    eng->curl_kick_us = engine_now_us();
    rc = thread_start(&eng->thread, "pd-engine", engine_main, eng);
    if (rc != 0) {
        snprintf(err, errlen, "engine: cannot start the thread: %s", strerror(rc));
        goto fail;
    }
    eng->thread_started = 1;
    *out = eng;
    return 0;
oom:
    snprintf(err, errlen, "engine: out of memory");
fail:
    engine_free(eng);
    return -1;
}

void engine_shutdown(engine_t *eng)
{
    int join = 0;

    if (!eng)
        return;
    pthread_mutex_lock(&eng->lock);
    eng->stopping = 1;
    if (eng->thread_started && !eng->join_claimed &&
        !pthread_equal(pthread_self(), eng->thread)) {
        /* from a callback on the engine thread we can only ask it to stop;
         * engine_free joins later */
        eng->join_claimed = 1;
        join = 1;
    }
    if (eng->wake_fd >= 0)
        engine_wake(eng);
    pthread_mutex_unlock(&eng->lock);
    if (join)
        pthread_join(eng->thread, NULL);
}

void engine_free(engine_t *eng)
{
    if (!eng)
        return;
    engine_shutdown(eng);
    for (size_t i = 0; i < eng->pool_len; i++)
        curl_easy_cleanup(eng->pool[i]);
    /* curl may still call the socket callback here (removing sockets): the
     * epoll set is closed after it */
    if (eng->multi)
        curl_multi_cleanup(eng->multi);
    if (eng->epfd >= 0)
        close(eng->epfd);
    if (eng->wake_fd >= 0)
        close(eng->wake_fd);
    if (eng->curl_ready)
        curl_global_cleanup();
    while (eng->reopened) { /* opened after the thread's last turn: the queue's references */
        engine_valve *v = eng->reopened;
        eng->reopened = v->next;
        engine_valve_unref(v);
    }
    free(eng->heap);
    free(eng->prov);
    engine_config_free(&eng->cfg);
    pthread_mutex_destroy(&eng->lock);
    free(eng);
}

/* ---- routing queries (read-only config: any thread) ---- */

int engine_model_known(engine_t *eng, const char *model)
{
    return eng && engine_config_route(&eng->cfg, model, NULL) != ENGINE_ROUTE_UNKNOWN;
}

int engine_model_resolve(engine_t *eng, const char *model, char *buf, size_t buflen)
{
    const char *t = NULL;
    size_t n;

    if (!eng || engine_config_route(&eng->cfg, model, &t) == ENGINE_ROUTE_UNKNOWN)
        return -1;
    n = strlen(t);
    if (n + 1 > buflen)
        return -1;
    memcpy(buf, t, n + 1);
    return 0;
}

const char *engine_model_wire(engine_t *eng, const char *model)
{
    const char *t = NULL;
    int r = eng ? engine_config_route(&eng->cfg, model, &t) : ENGINE_ROUTE_UNKNOWN;

    if (r == ENGINE_ROUTE_UNKNOWN)
        return NULL;
    if (r == ENGINE_ROUTE_ECHO)
        return "echo";
    return eng->cfg.providers[r].type == ENGINE_PROVIDER_ANTHROPIC ? "anthropic" : "openai";
}

/* OpenAI's Model object. created is when this engine started: promptd does
 * not know when an upstream made its models. */
static json_t *engine_model_object(const engine_t *eng, const char *id, const char *owner)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "id", id, "object", "model", "created", (json_int_t)eng->started,
                     "owned_by", owner);
}

static int engine_models_add(const engine_t *eng, json_t *arr, const char *id, const char *owner)
{
    size_t i;
    json_t *m;

    json_array_foreach(arr, i, m)
        if (strcmp(json_string_value(json_object_get(m, "id")), id) == 0)
            return 0;
    m = engine_model_object(eng, id, owner);
    return m ? json_array_append_new(arr, m) : -1;
}

json_t *engine_model_info(engine_t *eng, const char *id)
{
    const char *t;
    int r;

    if (!eng || !id || !*id || (r = engine_config_route(&eng->cfg, id, &t)) == ENGINE_ROUTE_UNKNOWN)
        return NULL;
    return engine_model_object(eng, id, r == ENGINE_ROUTE_ECHO ? "promptd" : eng->cfg.providers[r].name);
}

/* owned_by for a canonical model name: its provider, or "promptd" for echo. */
static const char *engine_models_owner(const engine_t *eng, const char *target, int r)
{
    (void)target;
    return r == ENGINE_ROUTE_ECHO ? "promptd" : eng->cfg.providers[r].name;
}

/* The list, in this order: "echo"; every alias (owned by its target's
 * provider); every concrete model the configuration names (default model,
 * alias targets, fallback models), so they are discoverable; then, per
 * provider, one wildcard entry whose id is the provider name followed by
 * a slash and an asterisk, e.g. "openai/" "*", meaning "any model name that
 * provider accepts": promptd does not ask upstreams for their catalogues. */
json_t *engine_models(engine_t *eng)
{
    json_t *arr = json_array();
    const char *t;
    int r, rc = 0;

    if (!arr || !eng)
        return arr;
    rc |= engine_models_add(eng, arr, "echo", "promptd");
    for (size_t i = 0; i < eng->cfg.n_aliases; i++) {
        r = engine_config_route(&eng->cfg, eng->cfg.aliases[i].name, &t);
        if (r != ENGINE_ROUTE_UNKNOWN)
            rc |= engine_models_add(eng, arr, eng->cfg.aliases[i].name, engine_models_owner(eng, t, r));
    }
    r = engine_config_route(&eng->cfg, NULL, &t);
    if (r != ENGINE_ROUTE_UNKNOWN)
        rc |= engine_models_add(eng, arr, t, engine_models_owner(eng, t, r));
    for (size_t i = 0; i < eng->cfg.n_aliases; i++) {
        r = engine_config_route(&eng->cfg, eng->cfg.aliases[i].name, &t);
        if (r != ENGINE_ROUTE_UNKNOWN)
            rc |= engine_models_add(eng, arr, t, engine_models_owner(eng, t, r));
    }
    for (size_t i = 0; i < eng->cfg.n_fallbacks; i++) {
        const engine_fallback *f = &eng->cfg.fallbacks[i];
        r = engine_config_route(&eng->cfg, f->model, &t);
        if (r != ENGINE_ROUTE_UNKNOWN)
            rc |= engine_models_add(eng, arr, t, engine_models_owner(eng, t, r));
        for (size_t j = 0; j < f->n_models; j++) {
            r = engine_config_route(&eng->cfg, f->models[j], &t);
            if (r != ENGINE_ROUTE_UNKNOWN)
                rc |= engine_models_add(eng, arr, t, engine_models_owner(eng, t, r));
        }
    }
    for (size_t i = 0; i < eng->cfg.n_providers; i++) {
        char id[256];
        snprintf(id, sizeof(id), "%s/*", eng->cfg.providers[i].name);
        rc |= engine_models_add(eng, arr, id, eng->cfg.providers[i].name);
    }
    if (rc != 0) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}
