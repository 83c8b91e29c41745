/*
 * provider.h — the wire formats of LLM providers, behind one small vtable.
 *
 * Nothing outside src/providers/ knows what an OpenAI or Anthropic request or
 * response looks like. The engine (src/engine/) owns the transport (libcurl),
 * the retries and the scheduling; a provider only turns a call into an HTTP
 * request (URL, headers, JSON body) and turns the bytes that come back into
 * text, tool calls, usage and a finish reason. Tool calls travel in OpenAI's
 * shape whatever the wire format, as the gateway speaks it.
 *
 * Everything a provider parses is UNTRUSTED input: a missing field, a field of
 * the wrong type or broken JSON makes the parser return -1 with a clear message
 * in err; it never crashes and never reads past the given length.
 *
 * Ownership:
 *   - provider_request: every pointer inside is malloc'd by build_request and
 *     released by provider_request_free() (also after a failed build).
 *   - provider_response: text (and tool_calls, logprobs: JSON references) is made by
 *     parse_response (or the echo provider) and released by
 *     provider_response_free().
 *   - provider_stream: owned by the caller; the parser only fills its fields
 *     and hands text pieces to on_text (pieces are borrowed, valid only during
 *     the call, NOT NUL-terminated).
 *   - provider_buf / provider_sse: owned by whoever embeds them; _free releases
 *     their heap memory, the struct itself may then be reused.
 * All functions are reentrant; the module has no state of its own.
 */
#ifndef PROMPTD_PROVIDER_H
#define PROMPTD_PROVIDER_H

#include <jansson.h>
#include <stddef.h>

enum { PROVIDER_MAX_HEADERS = 8, PROVIDER_FINISH_LEN = 32, PROVIDER_MAX_TOOL_CALLS = 128 };

/* One chat message, flattened to plain text. content may contain NUL bytes. */
typedef struct provider_message {
    const char *role;
    const char *content;
    size_t content_len;
} provider_message;

/* What one upstream call asks for. model is WITHOUT the provider prefix. */
typedef struct provider_params {
    const char *model;
    const provider_message *messages;
    size_t n_messages;
    double temperature;
    int has_temperature;
    long max_tokens; /* 0 = provider default */
    int stream;
    /* The messages in OpenAI's vocabulary, with what text cannot carry: an
     * assistant's "tool_calls" [{id, type, function: {name, arguments}}] and a
     * "tool" message's "tool_call_id". NULL: messages (above) say everything.
     * Its "content" members are flattened text, as in messages. */
    const json_t *messages_json;
    /* More request fields in OpenAI's vocabulary ("tools", "tool_choice",
     * "top_p", "stop", "response_format", ...), or NULL. The openai format
     * sends them as they are; anthropic translates the ones it can express
     * and fails the build naming any other (provider_anthropic_option_ok). */
    const json_t *options;
} provider_params;

/* Where the provider lives; base_url has no trailing '/'. api_key may be NULL. */
typedef struct provider_endpoint {
    const char *base_url;
    const char *api_key;
} provider_endpoint;

/* A built upstream request: POST url with headers and body. */
typedef struct provider_request {
    char *url;
    char *body;
    size_t body_len;
    char *headers[PROVIDER_MAX_HEADERS]; /* "Name: value" */
    size_t n_headers;
} provider_request;

/* A parsed complete (non-streamed) answer. */
typedef struct provider_response {
    char *text; /* NUL-terminated, may contain NUL bytes; text_len is authoritative */
    size_t text_len;
    long prompt_tokens;
    long completion_tokens;
    long total_tokens;
    int has_usage; /* 0: the provider sent no usage; the caller estimates */
    char finish_reason[PROVIDER_FINISH_LEN]; /* "" when unknown */
    /* The tool calls the model asked for, in OpenAI's form
     * [{"id","type":"function","function":{"name","arguments"}}], or NULL. */
    json_t *tool_calls;
    /* choices[0].logprobs as the provider sent it ({"content": [...], ...}),
     * when asked for with the "logprobs" option; else NULL. */
    json_t *logprobs;
} provider_response;

/* A non-2xx answer in provider-neutral terms: what the provider said, in its
 * own words, so a caller can pass a refusal on without knowing the wire
 * format. Every string is "" when the provider gave none; all are copied
 * with provider_copy_text (valid UTF-8, no control bytes, cut short). */
typedef struct provider_error {
    long http_status;
    char message[512]; /* the provider's message, else the start of the body */
    char type[64];     /* its kind, e.g. "invalid_request_error" */
    char code[64];     /* e.g. "context_length_exceeded" (OpenAI's error.code) */
    char param[64];    /* the request field at fault, e.g. "messages" */
} provider_error;

/* Receives a streamed text piece; returns 0, or -1 to abort the stream. */
typedef int (*provider_text_fn)(void *ud, const char *text, size_t len);
/* Receives a streamed piece of a tool call in OpenAI's delta form
 * {"index", "id"?, "type"?, "function": {"name"?, "arguments"?}} (borrowed);
 * pieces with the same index belong to one call, "arguments" accumulates.
 * Returns 0, or -1 to abort the stream. */
typedef int (*provider_tool_fn)(void *ud, const json_t *delta);
/* Receives a streamed chunk's log probabilities (OpenAI's choices[0].logprobs,
 * borrowed), before that chunk's text goes to on_text. 0, or -1 to abort. */
typedef int (*provider_logprobs_fn)(void *ud, const json_t *logprobs);

/* Incremental state of one streamed answer. Zero it, set on_text/ud, then feed
 * events. done becomes 1 when the provider's end-of-stream marker arrives. */
typedef struct provider_stream {
    provider_text_fn on_text;
    provider_tool_fn on_tool; /* may be NULL: tool calls are then dropped */
    provider_logprobs_fn on_logprobs; /* may be NULL: log probabilities are then dropped */
    void *ud;
    long prompt_tokens;
    long completion_tokens;
    long total_tokens;
    int has_usage;
    int done;
    char finish_reason[PROVIDER_FINISH_LEN];
    unsigned scratch; /* the parser's private state; zero at the start */
    int tool_block;   /* anthropic: 1 while a tool_use block is open */
    int tools_seen;   /* tool calls started so far (numbers the pieces that carry no index) */
} provider_stream;

typedef struct provider_ops {
    const char *type; /* "openai", "anthropic" */
    /* Build the HTTP request for params. 0, or -1 with err (req is then freed). */
    int (*build_request)(const provider_endpoint *ep, const provider_params *params,
                         provider_request *req, char *err, size_t errlen);
    /* Parse a complete 2xx body. 0, or -1 with err (out is then freed). */
    int (*parse_response)(const char *body, size_t len, provider_response *out, char *err,
                          size_t errlen);
    /* Parse one SSE event (event name may be ""; data is the joined data lines,
     * NUL-terminated at data[len]). 0, or -1 with err: the stream is broken or
     * the provider reported an error inside it. */
    int (*parse_stream_event)(provider_stream *st, const char *event, const char *data,
                              size_t len, char *err, size_t errlen);
    /* Describe a non-2xx answer for humans (never includes credentials). */
    void (*error_message)(long http_status, const char *body, size_t len, char *buf,
                          size_t buflen);
    /* The same answer taken apart into out (never fails: what the body does
     * not say stays ""). body may be NULL or anything at all. */
    void (*parse_error)(long http_status, const char *body, size_t len, provider_error *out);
} provider_ops;

extern const provider_ops provider_openai_ops;
extern const provider_ops provider_anthropic_ops;

/* 1 if the anthropic format can express the OpenAI request field name
 * (options above), else 0. Lets a caller refuse an option with a 400 before
 * anything is recorded, instead of a failed call. */
int provider_anthropic_option_ok(const char *name);
/* 1 if the anthropic format can carry this content part of a user message
 * (OpenAI's form: text, or an image_url with an http(s) or base64 data:image/
 * URL), else 0. */
int provider_anthropic_part_ok(const json_t *part);
/* 1 if a tool call's arguments (JSON text; "" counts as {}) can become the
 * "input" object of an Anthropic tool_use block, else 0. */
int provider_anthropic_arguments_ok(const char *arguments);

/* ---- echo: built in, offline, deterministic (see echo.c) ---- */

/* output = content of the last "user" message ("" if none); token estimates. */
int provider_echo_reply(const provider_message *msgs, size_t n, provider_response *out,
                        char *err, size_t errlen);
/* Length of the streamed piece starting at off: one word plus the whitespace
 * after it (leading whitespace at off is included too). 0 at the end. */
size_t provider_echo_piece(const char *text, size_t len, size_t off);

/* ---- shared helpers (provider.c) ---- */

/* Join one streamed tool-call piece (OpenAI's delta form, as provider_tool_fn
 * receives it) into *calls, the complete calls so far ([{"id","type",
 * "function":{"name","arguments"}}], created on first use): the piece's
 * "index" picks the call, id, type and name are set when given and the
 * arguments appended. 0, or -1 when the index is not 0..PROVIDER_MAX_TOOL_CALLS-1,
 * the arguments of all calls together would pass max_bytes, or out of memory. */
int provider_tool_calls_merge(json_t **calls, const json_t *delta, size_t max_bytes);

void provider_request_free(provider_request *req);
/* Append a header built with printf. 0, or -1 when full or out of memory. */
int provider_request_add_header(provider_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void provider_response_free(provider_response *resp);

/* Token estimate used whenever a provider gives no usage: ceil(bytes / 4),
 * at least 1. Roughly right for English text with BPE tokenizers. */
long provider_estimate_tokens(size_t bytes);
/* Sum of the content bytes of all messages (the prompt-side estimate input). */
size_t provider_messages_bytes(const provider_message *msgs, size_t n);

/* Copy a human-readable message: UTF-8 kept but truncated at a character
 * boundary, control bytes replaced by ' '. Raw bytes that are not valid UTF-8
 * become '?'. Always NUL-terminates when dstlen > 0. */
void provider_copy_text(char *dst, size_t dstlen, const char *src, size_t srclen);
/* Shared fallback for error_message: "HTTP <status>: <message or body snippet>"
 * where message comes from a JSON body's error.message / message / error
 * when present. */
void provider_generic_error(long http_status, const char *body, size_t len, char *buf,
                            size_t buflen);

/* Start out for http_status: message from a JSON body's own error text
 * (provider_json_error_text) or, when the body is not such JSON, its first
 * 200 bytes; type, code and param "". Returns the parsed body (new
 * reference, to read the format's own fields from) or NULL. */
json_t *provider_error_begin(long http_status, const char *body, size_t len, provider_error *out);

/* obj[key] as a token count: 1 and *out set when it is a non-negative JSON
 * integer, 0 when absent or null, -1 with err ("<ctx>.<key> is not a
 * non-negative integer") for any other value. */
int provider_json_count(const json_t *obj, const char *key, const char *ctx, long *out,
                        char *err, size_t errlen);
/* The provider's own error message inside a parsed body ({"error": {"message"}},
 * {"error": "..."}, {"message"}, {"detail"}), or NULL. Borrowed from root. */
const char *provider_json_error_text(const json_t *root);

/* A growable byte buffer, always NUL-terminated when data != NULL. */
typedef struct provider_buf {
    char *data;
    size_t len;
    size_t cap;
} provider_buf;

/* Append n bytes; -1 on out of memory or when len would exceed max. */
int provider_buf_append(provider_buf *b, const char *p, size_t n, size_t max);
void provider_buf_reset(provider_buf *b); /* len = 0, memory kept */
void provider_buf_free(provider_buf *b);

/* ---- Server-Sent Events framing (sse.c), shared by the streaming providers ---- */

/* Called once per complete event. 0, or -1 with err set. */
typedef int (*provider_sse_fn)(void *ud, const char *event, const char *data, size_t len,
                               char *err, size_t errlen);

typedef struct provider_sse {
    provider_buf line;  /* the current, incomplete line */
    provider_buf data;  /* data lines of the current event, joined by '\n' */
    char event[64];     /* "event:" field of the current event, truncated */
    int has_data;
    int last_cr; /* previous chunk ended in '\r': skip a leading '\n' */
} provider_sse;

enum { PROVIDER_SSE_MAX_LINE = 1 << 20 }; /* a longer line is a broken stream */

/* Feed raw bytes; dispatches every completed event. 0, or -1 with err. */
int provider_sse_feed(provider_sse *s, const char *p, size_t n, provider_sse_fn fn, void *ud,
                      char *err, size_t errlen);
/* End of the byte stream: dispatch a final event that lacked its blank line. */
int provider_sse_finish(provider_sse *s, provider_sse_fn fn, void *ud, char *err,
                        size_t errlen);
void provider_sse_reset(provider_sse *s); /* forget partial state, keep memory */
void provider_sse_free(provider_sse *s);

#endif
