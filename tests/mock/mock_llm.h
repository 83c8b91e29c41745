/*
 * mock_llm.h — internal interfaces shared by the modules of the mock LLM
 * provider (every .c file in tests/mock/, linked into the single binary mock_llm).
 *
 *   mock_text.c    [mock:...] directives, word counting, splitting into pieces
 *   mock_wire.c    OpenAI / Anthropic JSON bodies, SSE events, error bodies
 *   mock_timer.c   one timer thread that resumes suspended MHD connections
 *   mock_loop.c    the threads that run the MHD daemons (MHD_run + epoll wait)
 *   mock_state.c   request statistics and the fail_times table
 *   mock_server.c  the libmicrohttpd access handler: routing, answers, streams
 *   mock_llm.c     main(): command line, daemon start, signals, shutdown
 *
 * Nothing here is used by promptd itself; the mock exists only so that tests
 * and benchmarks can run the real provider code against a local server.
 */
#ifndef PROMPTD_TESTS_MOCK_LLM_H
#define PROMPTD_TESTS_MOCK_LLM_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- mock_text.c ------------------------------------------------------- */

/* Most tool calls one answer can make ([mock:tool_calls=N]). */
#define MOCK_MAX_TOOL_CALLS 8

/* Directives found in the last user message. Numeric fields are -1 (or 0 for
 * status) when the directive was absent or its value invalid. */
typedef struct mock_directives {
    long latency_ms;
    long error_latency_ms; /* [mock:error_latency=MS]: the delay of an error answer instead */
    int status;
    long retry_after;
    long fail_times;
    char *fail_model; /* malloc'd, or NULL */
    /* with [mock:status=CODE]: the error body's own words (malloc'd, or NULL) */
    char *error_message, *error_type, *error_code, *error_param;
    long drip_ms;
    long tool_calls; /* 1..MOCK_MAX_TOOL_CALLS */
    bool malformed;
    bool no_usage;
    bool bad_types;
    bool drop;
    bool echo_request;
    bool tool_text;
} mock_directives;

/* Parses every [mock:NAME] / [mock:NAME=VALUE] in text into d and stores in
 * *cleaned (malloc'd) the text with the directives removed (see mock_text.c
 * for the exact whitespace rule). Returns 0, or -1 on allocation failure. */
int mock_directives_parse(const char *text, mock_directives *d, char **cleaned);
void mock_directives_free(mock_directives *d);

/* Number of whitespace-separated words in s. */
size_t mock_count_words(const char *s);

/* Cuts s (in place) right after its n-th word. Returns true if anything was
 * cut, i.e. s had more than n words. */
bool mock_truncate_words(char *s, size_t n);

/* One streamed piece: a word plus the whitespace after it (the first piece
 * also carries any leading whitespace), so the pieces concatenate to the
 * original text exactly. Points into the text. */
typedef struct mock_piece {
    const char *p;
    size_t len;
} mock_piece;

/* Splits text into pieces; *out is malloc'd (NULL when there are none).
 * Returns the number of pieces, or (size_t)-1 on allocation failure. */
size_t mock_split_pieces(const char *text, mock_piece **out);

/* Splits text into (at most) three pieces of about equal length for a
 * streamed tool call's arguments, never inside a UTF-8 sequence: each cut
 * moves forward to the next sequence start, and a piece left empty is
 * omitted. Same contract as mock_split_pieces(). */
size_t mock_split_thirds(const char *text, mock_piece **out);

/* ---- mock_wire.c ------------------------------------------------------- */

typedef enum mock_api { MOCK_OPENAI, MOCK_ANTHROPIC } mock_api;

/* Everything needed to render one successful completion: text, or calls
 * to one tool, optionally after a text part. */
typedef struct mock_reply {
    mock_api api;
    const char *id; /* "chatcmpl-…" or "msg_…" */
    const char *model;
    long long created; /* unix seconds */
    /* TEXT, already truncated; with tool_name the text before the calls
     * (streamed as one piece), or NULL for none */
    const char *text;
    /* non-NULL: the answer is n_calls (1..MOCK_MAX_TOOL_CALLS) calls to this
     * tool, ids "call_mock_K" / "toolu_mock_K"; tool_args[K-1] is the ARGS of
     * call K, the compact JSON of an object (never truncated) */
    const char *tool_name;
    const char *tool_args[MOCK_MAX_TOOL_CALLS];
    size_t n_calls; /* 0 without tool_name */
    size_t prompt_tokens;
    size_t completion_tokens;
    bool truncated;     /* finish_reason "length" / stop_reason "max_tokens" */
    bool include_usage; /* OpenAI stream: stream_options.include_usage */
    bool logprobs;      /* OpenAI: choices[].logprobs for the TEXT pieces */
    bool no_usage;
    bool bad_types;
    bool malformed;
} mock_reply;

/* A list of complete SSE events ("event: …\ndata: …\n\n" or "data: …\n\n").
 * piece[i] is true for events that carry one piece of TEXT, of the text
 * before tool calls, or of a tool call's ARGS (drip and drop apply to them). */
typedef struct mock_sse {
    char **ev;
    size_t *len;
    bool *piece;
    size_t n;
    size_t cap;
} mock_sse;

/* Non-stream body (malloc'd JSON text, or deliberately broken text when
 * r->malformed). NULL on allocation failure. */
char *mock_reply_body(const mock_reply *r);

/* Fills sse with the whole event stream for r. Returns 0 or -1. */
int mock_reply_stream(const mock_reply *r, mock_sse *sse);
void mock_sse_free(mock_sse *sse);

/* Error body in the provider's own format for HTTP status; message may be
 * NULL for a default one. malloc'd, NULL on allocation failure. */
char *mock_error_body(mock_api api, unsigned status, const char *message);

/* The same with the provider's own fields given: type (OpenAI error.type,
 * Anthropic error.type), code and param (OpenAI only: error.code,
 * error.param); NULL for each gives mock_error_body's. */
char *mock_error_body_with(mock_api api, unsigned status, const char *message, const char *type, const char *code,
                           const char *param);

/* ---- mock_timer.c ------------------------------------------------------ */

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t mock_now_ms(void);

int mock_timer_start(void);

/* Suspends c and schedules MHD_resume_connection(c) at due_ms (monotonic).
 * Must be called from the access handler or a content reader of c. Returns
 * 0, or -1 when the timer is shutting down or out of memory (c is then NOT
 * suspended). */
int mock_timer_suspend(struct MHD_Connection *c, uint64_t due_ms);

/* Resumes every pending connection at once, stops and joins the thread.
 * Call before mock_loop_stop() and MHD_stop_daemon(). Safe when the timer
 * never started. */
void mock_timer_stop(void);

/* ---- mock_loop.c ------------------------------------------------------- */

/* Starts one thread per daemon (started with MHD_USE_EPOLL, no internal
 * thread) that runs it with MHD_run(). Returns 0, or -1 (message on stderr;
 * call mock_loop_stop() to clean up what did start). */
int mock_loop_start(struct MHD_Daemon *const *daemons, size_t n);

/* Makes every loop run MHD_run() soon: call after MHD_resume_connection(),
 * which wakes nobody without an internal thread. Thread-safe; a no-op before
 * mock_loop_start() and after mock_loop_stop(). */
void mock_loop_wake(void);

/* Lets each loop run MHD_run() once more (processing the resumes done by
 * mock_timer_stop()), then joins the threads. Call after mock_timer_stop()
 * and before MHD_stop_daemon(). Safe when the loops never started. */
void mock_loop_stop(void);

/* ---- mock_state.c ------------------------------------------------------ */

void mock_stats_begin(void);
void mock_stats_end(void);
/* {"requests":N,"in_flight":N,"max_in_flight":N}; malloc'd or NULL. */
char *mock_stats_json(void);
/* Zeroes the counters (max_in_flight restarts from the current in_flight)
 * and forgets the fail_times table. */
void mock_stats_reset(void);

/* fail_times bookkeeping: returns true if this request (keyed by the raw
 * last-user-message text) is one of the first n and must fail. */
bool mock_fail_times_hit(const char *key, long n);

/* Frees the fail_times table (at exit). */
void mock_state_free(void);

/* ---- mock_server.c ----------------------------------------------------- */

typedef struct mock_config {
    long latency_ms;
    const char *require_key; /* NULL: no key required */
    bool verbose;
} mock_config;

/* Access handler and completion callback for MHD_start_daemon; cls is a
 * const mock_config *. */
enum MHD_Result mock_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                            const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls);
void mock_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe);

#endif
