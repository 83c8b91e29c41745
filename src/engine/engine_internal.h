/*
 * engine_internal.h — the engine's private data structures, shared by
 * engine.c (public API, thread, queues, timers, completion) and
 * engine_http.c (one upstream HTTP attempt on libcurl). Not for use outside
 * src/engine/.
 *
 * Ownership and threads:
 *   - engine_t is created and freed by the caller of engine_new/engine_free.
 *     Its configuration copy is read-only after engine_new, so routing
 *     functions read it from any thread without locking.
 *   - lock protects ONLY in_head/in_tail, stopping, join_claimed and the
 *     reopened-valve queue (and each queued valve's queued/next).
 *   - wake_fd (an eventfd in the thread's epoll set) is how other threads
 *     wake the engine thread: engine_submit writes to it, under lock, when it
 *     made the inbound queue non-empty, engine_shutdown when it sets
 *     stopping. The thread reads it (resetting the count) before it next
 *     takes the queue, so no wake-up is lost; a spare one costs one turn.
 *   - Everything else (requests past the inbound queue, provider state, the
 *     timer heap, the easy-handle pool, the multi handle, the epoll set and
 *     curl's timer) belongs to the engine thread alone. libcurl's socket and
 *     timer callbacks run inside curl calls the engine thread makes (and in
 *     curl_multi_cleanup, from engine_free, after the thread has ended).
 *   - An engine_req is allocated by engine_submit, handed to the engine
 *     thread through the inbound queue, and freed by the engine thread right
 *     after its on_done returns. At any moment a live request is in exactly
 *     one place: the inbound queue, a provider's wait FIFO, the timer heap,
 *     the multi handle, or (HELD) its valve's held list (state says which; a
 *     paused transfer is both in the multi handle and on that list); every
 *     live request past the inbound queue is also on the all-list, which is
 *     what shutdown walks.
 *   - A valve (engine.h) is shared with other threads through its atomics
 *     and reference count only; its held list is the engine thread's.
 */
#ifndef PROMPTD_ENGINE_INTERNAL_H
#define PROMPTD_ENGINE_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>

#include "engine/engine.h"
#include "engine/engine_config.h"
#include "providers/provider.h"

#define ENGINE_MAX_BODY (16u << 20)   /* a complete answer larger than this is refused */
#define ENGINE_MAX_OUTPUT (16u << 20) /* streamed text larger than this is refused */
#define ENGINE_MAX_ERRBODY (16u << 10) /* only the start of an error body is kept */
#define ENGINE_POOL_MAX 64            /* idle easy handles kept for reuse */
#define ENGINE_MAX_POLL_MS 1000       /* wake at least this often, as a safety net */
#define ENGINE_EPOLL_BATCH 256        /* socket events taken per epoll_wait */
/* libcurl's receive buffer per transfer (CURLOPT_BUFFERSIZE; 1 KiB is
 * libcurl's minimum), instead of its 16 KiB default: see engine_http_start. */
#define ENGINE_CURL_BUFFERSIZE 1024L
/* An answer known whole (echo, or a stream request answered in one body) is
 * handed to on_chunk in pieces of at most this many bytes, so a closed valve
 * (engine.h) stops it within one piece. */
#define ENGINE_PIECE_MAX (16u << 10)

enum engine_req_state {
    ENGINE_REQ_INBOUND = 0, /* in eng->in_head queue, not yet seen by the thread */
    ENGINE_REQ_WAITING,     /* in a provider's FIFO, waiting for a concurrency slot */
    ENGINE_REQ_BACKOFF,     /* in the timer heap, waiting to retry */
    ENGINE_REQ_RUNNING,     /* an easy handle in the multi */
    ENGINE_REQ_HELD,        /* an answer known whole, its delivery waiting for its valve to open */
};

/* Why a call is on its valve's held list (engine_req.held). */
enum engine_held {
    ENGINE_HELD_NO = 0,
    ENGINE_HELD_PAUSED, /* RUNNING: its transfer is paused (the write callback said CURL_WRITEFUNC_PAUSE) */
    ENGINE_HELD_REPLAY, /* HELD: engine_replay goes on from req->sent */
};

/* See engine.h. refs and closed are atomics (any thread); queued and next
 * belong to eng->lock; held to the engine thread. */
struct engine_valve {
    engine_t *eng;
    _Atomic int refs;
    _Atomic int closed;
    _Atomic int dropped;       /* engine_valve_drop: no piece is delivered any more */
    int queued;                /* on eng->reopened (which holds a reference) */
    struct engine_valve *next; /* eng->reopened */
    struct engine_req *held;   /* the calls waiting for it to open (held_next) */
};

/* How the body of the current attempt is being consumed. */
enum engine_body_mode {
    ENGINE_BODY_UNKNOWN = 0, /* no byte seen yet */
    ENGINE_BODY_FULL,        /* a complete JSON answer: buffered, parsed at the end */
    ENGINE_BODY_SSE,         /* a 2xx event stream: parsed as it arrives */
    ENGINE_BODY_ERROR,       /* non-2xx: the start is kept for the error message */
};

/* One model of a call's chain: the routed model, then its fallbacks. */
typedef struct engine_hop {
    int provider;     /* index into eng->prov, or ENGINE_ROUTE_ECHO */
    const char *name; /* canonical "provider/model" or "echo" (inside the hop block) */
    const char *model; /* the part after "provider/", inside name */
} engine_hop;

typedef struct engine_req {
    struct engine_req *next;     /* inbound queue or provider FIFO */
    struct engine_req *all_prev; /* all-list (engine thread) */
    struct engine_req *all_next;
    engine_t *eng;

    /* the call, copied at submit */
    void (*on_chunk)(void *ud, const char *text, size_t len);
    void (*on_tool_chunk)(void *ud, const json_t *delta);
    void (*on_logprobs)(void *ud, const json_t *logprobs);
    void (*on_done)(void *ud, const engine_result *res);
    void *ud;
    double temperature;
    int has_temperature;
    long max_tokens;
    int stream;
    provider_message *msgs; /* one block: array, then the strings */
    size_t n_msgs;
    json_t *messages_json; /* a private copy when the call has tool messages, else NULL */
    json_t *options;       /* a private copy of the call's options, or NULL */
    engine_hop *hops; /* one block: array, then the names */
    size_t n_hops;
    size_t hop; /* current hop */

    /* flow control (engine.h, engine_valve): a reference, or NULL */
    engine_valve *valve;
    enum engine_held held;                    /* on valve->held, and why */
    struct engine_req *held_prev, *held_next; /* valve->held */
    size_t sent;                              /* engine_replay: bytes of out handed to on_chunk */
    int replay_words;                         /* engine_replay cuts at words (echo) */

    /* progress */
    enum engine_req_state state;
    int attempt;        /* attempts on the current hop */
    int attempts_total; /* all upstream attempts */
    int delivered;      /* a chunk reached on_chunk: no retry, no fallback */
    uint64_t submitted_ms;
    uint64_t first_attempt_us; /* engine_now_us() when the first attempt (or echo) began; 0: none yet */
    uint64_t due_ms; /* BACKOFF: when to try again */
    long last_http_status;
    enum engine_status err_status; /* the last failure */
    char *error;                   /* the last failure's message, malloc'd */
    /* the last failure's refusal when err_status is ENGINE_ERR_REJECTED,
     * malloc'd (few calls fail: not carried by every request), else NULL */
    provider_error *rejected;
    int watch_errno; /* RUNNING: errno of an epoll_ctl that failed for this attempt's socket */

    /* current attempt (RUNNING) */
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    enum engine_body_mode mode;
    char *write_error; /* set when the write callback refused the body */
    provider_buf resp; /* FULL or ERROR body */
    provider_sse sse;
    provider_stream st;

    /* the answer */
    provider_buf out;
    long prompt_tokens;
    long completion_tokens;
    long total_tokens;
    char finish_reason[PROVIDER_FINISH_LEN];
    json_t *tool_calls; /* complete calls (a stream's pieces joined), or NULL */
    json_t *logprobs;   /* a complete answer's choices[0].logprobs, or NULL */
} engine_req;

/* Per-provider runtime state. */
typedef struct engine_prov {
    const engine_provider_config *cfg; /* inside eng->cfg */
    const provider_ops *ops;
    provider_endpoint ep;
    int in_flight;
    engine_req *wait_head; /* FIFO of calls waiting for a slot */
    engine_req *wait_tail;
} engine_prov;

struct engine {
    engine_config cfg;
    long long started; /* Unix seconds: the "created" of every model in GET /v1/models */
    engine_prov *prov; /* cfg.n_providers entries */

    pthread_mutex_t lock;
    engine_req *in_head; /* guarded by lock */
    engine_req *in_tail;
    int stopping;     /* guarded by lock */
    engine_valve *reopened; /* guarded by lock: valves opened since the thread last looked (engine_reopen) */
    int join_claimed; /* guarded by lock */
    pthread_t thread;
    int thread_started;
    int curl_ready;
    int wake_fd; /* eventfd; -1 until created (see the top of this file) */

    CURLM *multi;
    int epfd;              /* epoll set: curl's sockets (data.fd) and wake_fd; -1 until created */
    int curl_timer_on;     /* curl asked to be called at curl_due_us (a one-shot timer) */
    uint64_t curl_due_us;  /* engine_now_us() clock */
    uint64_t curl_kick_us; /* the last curl_multi_socket_action(CURL_SOCKET_TIMEOUT) */
    int unwatched;         /* some RUNNING request has watch_errno set */
    engine_req *all; /* engine thread from here on */
    engine_req **heap;
    size_t heap_len;
    size_t heap_cap;
    CURL *pool[ENGINE_POOL_MAX];
    size_t pool_len;
};

/* engine.c */
uint64_t engine_now_ms(void);
uint64_t engine_now_us(void);
void engine_begin(engine_t *eng, engine_req *req);
void engine_finish(engine_t *eng, engine_req *req, enum engine_status status);
/* Record a failed attempt/hop and decide: retry later, next hop, or finish. */
void engine_attempt_failed(engine_t *eng, engine_req *req, enum engine_status status,
                           int retryable, long retry_after_ms, const char *msg);
void engine_set_error(engine_req *req, enum engine_status status, const char *msg);
/* 1 when the call carries a valve that is closed. */
int engine_valve_shut(const engine_req *req);
/* 1 when the call's consumer is gone (engine_valve_drop): no more pieces. */
int engine_valve_dropped(const engine_req *req);
/* Put req on its valve's held list (why: ENGINE_HELD_PAUSED / _REPLAY), or take it off. */
void engine_hold(engine_req *req, enum engine_held why);
void engine_unhold(engine_req *req);
/* A stream request answered in one piece: its tool calls go out as one delta each. */
void engine_tool_pieces(engine_req *req);
/* Hand req->out from req->sent to on_chunk (a stream's) in pieces, holding
 * the call while its valve is closed; then the tool calls as pieces, then
 * engine_finish(ENGINE_OK). */
void engine_replay(engine_t *eng, engine_req *req);

/* engine_http.c */
/* Start one upstream attempt (the caller checked the concurrency cap). */
void engine_http_start(engine_t *eng, engine_req *req);
/* Handle every finished transfer reported by the multi handle. */
void engine_http_collect(engine_t *eng);
/* Remove a running transfer without reporting (shutdown). */
void engine_http_abort(engine_t *eng, engine_req *req);
/* The socket callback could not add easy's socket to the epoll set (err is
 * errno): mark its request so that engine_http_fail_unwatched ends it. */
void engine_http_unwatched(engine_t *eng, CURL *easy, int err);
/* Fail every attempt marked by engine_http_unwatched (outside curl's callbacks). */
void engine_http_fail_unwatched(engine_t *eng);
/* The valve of a paused transfer opened: let curl read again (it may hand over
 * what it kept at once, and the call may be held again). */
void engine_http_unpause(engine_t *eng, engine_req *req);
/* Free per-attempt memory (headers, body); the easy handle goes back to the pool. */
void engine_http_release(engine_t *eng, engine_req *req);

#endif
