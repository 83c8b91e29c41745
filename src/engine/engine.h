/*
 * engine.h — running LLM calls without a thread per waiting request.
 *
 * The engine owns one thread that runs a libcurl multi loop. Callers (the api/
 * layer, on libmicrohttpd threads) hand it a call with engine_submit() and
 * return at once; the engine performs the upstream request(s), retries,
 * fallbacks, and reports back through callbacks that run ON THE ENGINE THREAD.
 * Callbacks must be quick and must not block (they typically copy the result
 * and resume a suspended HTTP connection).
 *
 * Model routing: "echo" (built in, offline), "openai/<model>", "anthropic/<model>",
 * "<provider-name>/<model>" for a configured OpenAI-compatible provider, or an
 * alias from the configuration. NULL or "" means the configured default model.
 *
 * Ownership: engine_submit() copies everything it needs from the call; the
 * caller may free its arguments as soon as engine_submit() returns. Pointers
 * inside engine_result are valid only during the on_done callback.
 */
#ifndef PROMPTD_ENGINE_H
#define PROMPTD_ENGINE_H

#include <jansson.h>
#include <stddef.h>

typedef struct engine engine_t;
typedef struct engine_config engine_config; /* defined in engine/engine_config.h */

enum engine_status {
    ENGINE_OK = 0,
    ENGINE_ERR_UPSTREAM = 1,    /* provider failed (5xx, 429, 401/403, malformed body, connection) -> HTTP 502 */
    ENGINE_ERR_TIMEOUT = 2,     /* upstream timed out -> HTTP 504 */
    ENGINE_ERR_UNKNOWN_MODEL = 3, /* model name routes nowhere -> HTTP 422 */
    ENGINE_ERR_SHUTDOWN = 4,    /* engine stopping; call abandoned -> HTTP 503 */
    ENGINE_ERR_INTERNAL = 5,    /* out of memory etc. -> HTTP 500 */
    /* the provider refused the request itself (a 4xx other than 401, 402, 403,
     * 407, 408 and 429: a bad parameter, a context too long, a model it does
     * not have): the caller's mistake, told in engine_result.rejection ->
     * that HTTP status. (401/403 are promptd's own credentials and 429 the
     * provider's load: those stay ENGINE_ERR_UPSTREAM.) */
    ENGINE_ERR_REJECTED = 6,
};

/* What a provider said when it refused a request (ENGINE_ERR_REJECTED), in
 * provider-neutral terms; strings are "" when the provider gave none. */
typedef struct engine_rejection {
    int http_status;     /* the provider's 4xx */
    const char *message; /* its own message */
    const char *type;    /* e.g. "invalid_request_error" */
    const char *code;    /* e.g. "context_length_exceeded" */
    const char *param;   /* e.g. "messages" */
} engine_rejection;

typedef struct engine_result {
    enum engine_status status;
    const char *model;      /* model that answered (after alias/fallback), e.g. "openai/gpt-4o" */
    const char *output;     /* full text (also when streamed); "" on failure */
    size_t output_len;
    long prompt_tokens;
    long completion_tokens;
    long total_tokens;
    long duration_ms;       /* submit -> done, all attempts included */
    long long upstream_us;  /* the model's share: first attempt's start -> done, retries and their
                               backoff included; 0 if no attempt started (echo: its reply time) */
    int attempts;           /* upstream HTTP attempts made (0 for echo) */
    int upstream_http_status; /* last upstream HTTP status, 0 if none */
    const char *finish_reason; /* "stop", "length", "tool_calls", ... or NULL */
    const json_t *tool_calls;  /* the tool calls the model asked for, OpenAI's form
                                  [{"id","type","function":{"name","arguments"}}]; NULL: none */
    const json_t *logprobs;    /* an answer's log probabilities as the provider sent them (OpenAI's
                                  choices[0].logprobs) when the "logprobs" option asked for them and
                                  the answer came in one body, else NULL; a streamed answer's go to
                                  on_logprobs piece by piece */
    const char *error;      /* human readable, NULL when status == ENGINE_OK */
    engine_rejection rejection; /* set when status == ENGINE_ERR_REJECTED, else all 0 */
} engine_result;

/* A valve: flow control between streamed calls and the one consumer they
 * feed (an SSE client). The consumer closes it when it cannot take more for
 * now and opens it when it can; while it is closed the engine hands no more
 * pieces to the calls that carry it: an upstream transfer is paused (its
 * write callback returns CURL_WRITEFUNC_PAUSE, so libcurl stops reading the
 * socket and the provider's TCP window closes), the echo model stops cutting
 * pieces. No thread waits: a held call is only a flag and a list entry on
 * the engine thread, resumed when the valve opens. Several calls may carry
 * one valve (the choices of one request, the members of one cluster reply).
 * A piece already being delivered when the valve closes is delivered whole,
 * so the consumer may get a little past its mark. The engine keeps each
 * call's whole output for its result whatever the consumer took: recording
 * never depends on the client. A held call still counts against its
 * provider's timeout_ms.
 *
 * Threads and ownership: all functions are thread-safe. engine_valve_new
 * returns one reference; engine_submit takes one of its own for the call
 * (dropped when the call ends). close and open only flip it and, on open,
 * queue a wake-up for the engine thread; they never block (open takes the
 * engine's queue lock for a moment). Every reference must be dropped before
 * engine_free. */
typedef struct engine_valve engine_valve;
/* NULL when out of memory or eng is NULL (the calls then run without one). */
engine_valve *engine_valve_new(engine_t *eng);
void engine_valve_ref(engine_valve *v);
void engine_valve_unref(engine_valve *v); /* NULL is fine */
void engine_valve_close(engine_valve *v);
void engine_valve_open(engine_valve *v);
/* The consumer is gone for good (its client left): the calls stop handing it
 * pieces (on_chunk, on_tool_chunk, on_logprobs) and run to their end at full
 * speed, their whole output still in their result; opens the valve too. */
void engine_valve_drop(engine_valve *v);

typedef struct engine_call {
    const char *model;      /* see routing above; NULL = default */
    json_t *messages;       /* array of {"role": "system"|"user"|"assistant", "content": "..."}; borrowed */
    double temperature;     /* used when has_temperature */
    int has_temperature;
    long max_tokens;        /* 0 = provider default */
    int stream;             /* 1: deliver text pieces through on_chunk as they arrive */
    /* 1: messages also carry what plain text cannot (an assistant's "tool_calls",
     * a "tool" message's "tool_call_id", parts other than text such as images)
     * and the provider is sent them */
    int rich_messages;
    /* borrowed; more request fields in OpenAI's vocabulary (tools, tool_choice,
     * top_p, stop, response_format, ...) or NULL: see provider_params.options */
    const json_t *options;
    /* engine thread; text is NOT NUL-terminated; may be called many times before on_done */
    void (*on_chunk)(void *ud, const char *text, size_t len);
    /* engine thread, streams only (may be NULL): a piece of a tool call in OpenAI's
     * delta form {"index", "id"?, "type"?, "function": {"name"?, "arguments"?}} */
    void (*on_tool_chunk)(void *ud, const json_t *delta);
    /* engine thread, streams only (may be NULL): a chunk's log probabilities
     * (OpenAI's choices[0].logprobs, borrowed), just before that chunk's text
     * reaches on_chunk */
    void (*on_logprobs)(void *ud, const json_t *logprobs);
    /* streams only, may be NULL: the consumer's flow control (see engine_valve above) */
    engine_valve *valve;
    /* engine thread; called exactly once per successfully submitted call */
    void (*on_done)(void *ud, const engine_result *res);
    void *ud;
} engine_call;

/* Start the engine thread. cfg is copied. Returns 0, or -1 with a message in err. */
int engine_new(const engine_config *cfg, engine_t **out, char *err, size_t errlen);

/* Thread-safe. Returns 0 when queued (on_done WILL be called exactly once), or a
 * nonzero enum engine_status (e.g. ENGINE_ERR_UNKNOWN_MODEL) when rejected at once,
 * in which case no callback is ever called.
 * (Implementation notes: messages must be an array of objects with a non-empty
 * string "role" and a "content" that is a string, null, or an array of
 * {"type":"text","text":...} parts (joined with newlines) and other typed parts
 * without text (images: seen only by a provider given rich_messages); anything else, or a NULL on_done, is a
 * caller bug and returns ENGINE_ERR_INTERNAL. ENGINE_ERR_SHUTDOWN once
 * engine_shutdown() has begun. Callbacks may call engine_submit() and
 * engine_shutdown(), never engine_free().) */
int engine_submit(engine_t *eng, const engine_call *call);

/* Thread-safe. 1 if the model name routes to a provider (after aliases), else 0. */
int engine_model_known(engine_t *eng, const char *model);

/* Thread-safe. Resolve a name to its canonical "provider/model" form (e.g. alias,
 * default); writes into buf. Returns 0, or -1 if unknown. */
int engine_model_resolve(engine_t *eng, const char *model, char *buf, size_t buflen);

/* Thread-safe. The wire format the model's first route speaks: "echo",
 * "openai" or "anthropic"; NULL if the name routes nowhere. (Fallbacks may
 * speak another: a request one of them cannot express fails that hop.) */
const char *engine_model_wire(engine_t *eng, const char *model);

/* New reference: JSON array of {"id","object":"model","created","owned_by"} for GET /v1/models.
 * (Lists "echo", every alias, every concrete model the configuration names,
 * and one "<provider>/" + "*" entry per provider meaning "any model of it".) */
json_t *engine_models(engine_t *eng);

/* Thread-safe. New reference: the Model object for GET /v1/models/{id} when
 * id routes somewhere (an alias, "echo", "<provider>/<model>" of a configured
 * provider: any name engine_submit would take), else NULL. */
json_t *engine_model_info(engine_t *eng, const char *id);

/* Stop accepting calls, fail every call still in flight with ENGINE_ERR_SHUTDOWN
 * (their on_done runs), stop the thread. Idempotent. */
void engine_shutdown(engine_t *eng);

/* engine_shutdown() if needed, then free. NULL is fine. */
void engine_free(engine_t *eng);

#endif
