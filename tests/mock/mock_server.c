/*
 * mock_server.c — the mock LLM provider's request handling (libmicrohttpd).
 *
 * Routes:
 *   POST /v1/chat/completions   OpenAI chat completions (stream or not)
 *   POST /v1/messages           Anthropic Messages (stream or not)
 *   GET  /v1/models             {"object":"list","data":[{"id":"mock-1",...}]}
 *   GET  /_mock/stats           {"requests":N,"in_flight":N,"max_in_flight":N}
 *   POST /_mock/reset           zeroes the counters, forgets fail_times
 *
 * The reply TEXT is "mock reply: " + the last user message with its
 * [mock:...] directives removed (mock_text.c), or with [mock:echo_request]
 * the compact JSON of the request body. The last user message is the last
 * one with role "user"; its text is its string content, or the "text" of
 * its parts joined with "\n" (so none from Anthropic tool_result blocks).
 * Token accounting, deterministic:
 * prompt tokens P = whitespace-separated words in the content of every
 * message (plus the Anthropic "system" field; for content given as an array
 * of parts, the words of every part's "text"); completion tokens C = words
 * of TEXT. max_tokens (OpenAI: max_tokens or max_completion_tokens) smaller
 * than C truncates TEXT to that many words: finish_reason "length" /
 * stop_reason "max_tokens".
 *
 * Tools. The answer depends on the LAST message of the request:
 *   - a tool result (OpenAI: role "tool"; Anthropic: role "user" with a
 *     {"type":"tool_result",...} block in its content array), with or
 *     without "tools": TEXT = "mock reply: tool said " + the result's text
 *     (OpenAI: the message's content; Anthropic: the first tool_result's
 *     "content"; either a string or text parts joined with "\n");
 *   - a plain user message and a non-empty "tools" array: instead of TEXT,
 *     ONE call to the FIRST tool (OpenAI tools[0].function.name, Anthropic
 *     tools[0].name; not a string: 400) with ARGS = the compact JSON of
 *     {"text": the cleaned last user message}, e.g. {"text":"hi there"}.
 *     OpenAI: message {"role":"assistant","content":null,"tool_calls":[{"id":
 *     "call_mock_1","type":"function","function":{"name":N,"arguments":ARGS}}]},
 *     finish_reason "tool_calls"; streamed, a first chunk with that tool
 *     call and "arguments":"", then ARGS in 2 or 3 pieces (thirds, never
 *     inside a UTF-8 sequence) as deltas {"tool_calls":[{"index":0,
 *     "function":{"arguments":PIECE}}]}, a finish chunk, usage, [DONE].
 *     Anthropic: content [{"type":"tool_use","id":"toolu_mock_1","name":N,
 *     "input":{"text":...}}], stop_reason "tool_use"; streamed, a tool_use
 *     content_block_start with "input":{}, then the pieces as
 *     input_json_delta "partial_json" deltas. C = words of ARGS; max_tokens
 *     does not truncate a tool call.
 * [mock:echo_request] wins over both (a TEXT answer). Every directive works
 * for tool calls as for TEXT: drip spaces the ARGS pieces, drop cuts after
 * the first one, malformed breaks the body or repeats the first piece
 * broken, bad_types makes ARGS (and Anthropic "input") a number.
 * Two directives shape a tool-call answer (elsewhere they are ignored):
 *   - [mock:tool_calls=N] (1..8; another N is ignored like any invalid
 *     value, leaving one call): N calls to the first tool instead of one;
 *     call K (1..N) has the id "call_mock_K" / "toolu_mock_K" and ARGS_K =
 *     the compact JSON of {"text": the cleaned message, "n": K}. OpenAI:
 *     message.tool_calls lists them in order; streamed, one call after the
 *     other: its first chunk (index K-1, id, name, "arguments":"") then its
 *     pieces, each delta naming "index":K-1; only the stream's first chunk
 *     carries "role":"assistant","content":null. Anthropic: N tool_use
 *     blocks; streamed, per call content_block_start, its input_json_delta
 *     pieces, content_block_stop, each with the block's index among all the
 *     content blocks. C = the words of every ARGS_K.
 *   - [mock:tool_text]: the text part "Let me check." before the calls.
 *     OpenAI: message.content is that text instead of null; streamed, one
 *     content delta {"role":"assistant","content":"Let me check."} before
 *     the first call's chunk (which then carries no role). Anthropic: a
 *     {"type":"text",...} block first; streamed, that text block at index 0
 *     (content_block_start with "text":"", one text_delta, content_block_stop),
 *     the tool_use blocks at 1..N. Its 3 words count into C, its delta is a
 *     piece (drip, drop and malformed treat it as the first piece).
 *
 * Log probabilities (OpenAI, "logprobs": true): choices[0].logprobs is
 * {"content": [one entry per word piece of TEXT: {"token": PIECE, "logprob":
 * -0.25 * (i + 1), "bytes": PIECE's bytes, "top_logprobs": []}], "refusal":
 * null}; streamed, each TEXT chunk carries the entry of its own piece. Tool
 * calls carry none ("logprobs": null, as without the option).
 *
 * Directives in the last user message (several may combine; with a tool
 * result last, OpenAI takes them from the last role "user" message before
 * it, Anthropic from the text blocks next to the tool_result):
 *   [mock:latency=MS]     delay this answer (overrides --latency-ms)
 *   [mock:status=CODE]    answer CODE (400..599) with an error body in the
 *                         provider's format; codes below 400 are ignored
 *   [mock:retry_after=S]  with an error answer: also send Retry-After: S
 *   [mock:error_latency=MS] an error answer (status, fail_times, fail_model)
 *                         is delayed MS instead of the latency
 *   [mock:error_message=TEXT], [mock:error_type=T], [mock:error_code=C],
 *   [mock:error_param=P]  with [mock:status=CODE]: the error body says these
 *                         (OpenAI error.message/type/code/param; Anthropic
 *                         error.message/type, code and param ignored)
 *   [mock:fail_times=N]   the first N requests with this exact last-user text
 *                         (directives included) get 500, later ones succeed
 *   [mock:fail_model=M]   500 when the request's model is M
 *   [mock:malformed]      200 with invalid JSON (stream: one broken data line
 *                         after the first piece)
 *   [mock:no_usage]       omit usage everywhere
 *   [mock:bad_types]      text as a number, usage numbers as strings
 *   [mock:drop]           close the connection without an answer (stream:
 *                         after the first piece has been sent)
 *   [mock:drip=MS]        stream: pieces MS apart
 *   [mock:echo_request]   TEXT = the compact JSON of the request body
 *   [mock:tool_calls=N]   a tool-call answer makes N (1..8) calls (above)
 *   [mock:tool_text]      a tool-call answer starts with a text part (above)
 * Precedence: drop, fail_model, fail_times, status, then a normal answer.
 * Before any of them: with --require-key, 401 unless the key is sent
 * (OpenAI: "Authorization: Bearer KEY"; Anthropic: "x-api-key: KEY";
 * /v1/models takes either); Anthropic without an anthropic-version header,
 * a body that is not a JSON object, a missing model or messages array or
 * (Anthropic) a missing max_tokens: 400 in the provider's format.
 * The delay (latency) applies to every answer of the /v1/ routes, errors and
 * drops included; /_mock/ routes answer at once.
 *
 * Life of a request (no thread ever waits): the first handler call only
 * allocates per-request state; upload calls append the body; on the final
 * call the whole answer is prepared ("plan"); if it must wait, the connection
 * is suspended and mock_timer.c resumes it when due, MHD calls the handler
 * again and the answer is queued then. Streams are served by a content
 * reader that suspends itself the same way between drip pieces.
 */
#include "mock/mock_llm.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BODY (32u * 1024u * 1024u)
#define STREAM_BLOCK 16384
/* The text part before the tool calls with [mock:tool_text]. */
#define MOCK_TOOL_TEXT "Let me check."

typedef enum route {
    ROUTE_UNKNOWN,
    ROUTE_BAD_METHOD,
    ROUTE_OPENAI,
    ROUTE_ANTHROPIC,
    ROUTE_MODELS,
    ROUTE_STATS,
    ROUTE_RESET
} route;

/* An SSE stream being sent; owned by its MHD response. */
typedef struct stream {
    struct MHD_Connection *conn;
    mock_sse sse;
    size_t idx;        /* next event */
    size_t off;        /* bytes of ev[idx] already sent */
    long drip_ms;      /* <= 0: no drip */
    uint64_t next_due; /* earliest time for the next piece (drip) */
    bool piece_sent;   /* at least one piece event has gone out */
    bool drop;         /* close the connection after the first piece */
} stream;

/* Everything about the answer, decided on the final handler call. */
typedef struct plan {
    mock_api api;
    uint64_t delay_ms;
    bool drop;
    unsigned status;
    char *body;             /* non-stream body (malloc'd) */
    stream *strm;           /* stream answer, or NULL */
    long retry_after;       /* -1: no Retry-After */
    unsigned long long seq; /* makes the ids unique */
    char request_id[40];
} plan;

typedef struct request {
    route route;
    char *what; /* "METHOD URL", for messages */
    bool counted;
    char *body;
    size_t len, cap;
    bool too_large;
    plan *plan;
} request;

static atomic_ullong next_id = 1;

/* ---- requests ----------------------------------------------------------- */

static route route_of(const char *url, const char *method)
{
    bool get = strcmp(method, "GET") == 0;
    bool post = strcmp(method, "POST") == 0;

    if (strcmp(url, "/v1/chat/completions") == 0)
        return post ? ROUTE_OPENAI : ROUTE_BAD_METHOD;
    if (strcmp(url, "/v1/messages") == 0)
        return post ? ROUTE_ANTHROPIC : ROUTE_BAD_METHOD;
    if (strcmp(url, "/v1/models") == 0)
        return get ? ROUTE_MODELS : ROUTE_BAD_METHOD;
    if (strcmp(url, "/_mock/stats") == 0)
        return get ? ROUTE_STATS : ROUTE_BAD_METHOD;
    if (strcmp(url, "/_mock/reset") == 0)
        return post ? ROUTE_RESET : ROUTE_BAD_METHOD;
    return ROUTE_UNKNOWN;
}

static request *request_new(const char *url, const char *method)
{
    request *req = calloc(1, sizeof(*req));

    if (req == NULL)
        return NULL;
    if (asprintf(&req->what, "%s %s", method, url) < 0) {
        free(req);
        return NULL;
    }
    req->route = route_of(url, method);
    if (req->route == ROUTE_OPENAI || req->route == ROUTE_ANTHROPIC) {
        mock_stats_begin();
        req->counted = true;
    }
    return req;
}

static int request_append(request *req, const char *data, size_t n)
{
    if (req->too_large || req->len + n > MAX_BODY) {
        req->too_large = true;
        return 0;
    }
    if (req->len + n + 1 > req->cap) {
        size_t cap = req->cap ? req->cap : 4096;
        while (cap < req->len + n + 1)
            cap *= 2;
        char *b = realloc(req->body, cap);
        if (b == NULL)
            return -1;
        req->body = b;
        req->cap = cap;
    }
    memcpy(req->body + req->len, data, n);
    req->len += n;
    req->body[req->len] = '\0';
    return 0;
}

static void stream_free(void *cls)
{
    stream *s = cls;

    if (s == NULL)
        return;
    mock_sse_free(&s->sse);
    free(s);
}

static void plan_free(plan *p)
{
    if (p == NULL)
        return;
    free(p->body);
    stream_free(p->strm);
    free(p);
}

static void request_free(request *req)
{
    plan_free(req->plan);
    free(req->body);
    free(req->what);
    free(req);
}

/* ---- plans -------------------------------------------------------------- */

static plan *plan_new(mock_api api, long delay_ms)
{
    plan *p = calloc(1, sizeof(*p));
    unsigned long long id = atomic_fetch_add(&next_id, 1);

    if (p == NULL)
        return NULL;
    p->api = api;
    p->delay_ms = delay_ms > 0 ? (uint64_t)delay_ms : 0;
    p->status = MHD_HTTP_OK;
    p->retry_after = -1;
    p->seq = id;
    snprintf(p->request_id, sizeof(p->request_id), "req_mock%012llx", id);
    return p;
}

/* Turns p into an error answer; returns p, or NULL (p freed) on failure. */
static plan *plan_error(plan *p, unsigned status, const char *message)
{
    p->status = status;
    free(p->body);
    p->body = mock_error_body(p->api, status, message);
    if (p->body == NULL) {
        plan_free(p);
        return NULL;
    }
    return p;
}

/* Makes p a 200 answer with body (taken over); NULL (p freed) if !body. */
static plan *plan_body(plan *p, char *body)
{
    free(p->body);
    p->body = body;
    if (body == NULL) {
        plan_free(p);
        return NULL;
    }
    return p;
}

static bool header_equals(struct MHD_Connection *conn, const char *name, const char *expect)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    return v != NULL && strcmp(v, expect) == 0;
}

/* NULL key: always ok. OpenAI wants a bearer token, Anthropic x-api-key. */
static bool auth_ok(struct MHD_Connection *conn, const char *key, bool openai, bool anthropic)
{
    char bearer[512];

    if (key == NULL)
        return true;
    if (anthropic && header_equals(conn, "x-api-key", key))
        return true;
    if (!openai || snprintf(bearer, sizeof(bearer), "Bearer %s", key) >= (int)sizeof(bearer))
        return false;
    return header_equals(conn, MHD_HTTP_HEADER_AUTHORIZATION, bearer);
}

static char *models_body(void)
{
    json_t *o = json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "object", "list", "data", "id", "mock-1", "object", "model",
                          "owned_by", "mock");
    char *s;

    if (o == NULL)
        return NULL;
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* ---- reading the request JSON ------------------------------------------- */

/* Words of a content value: a string, or an array of parts with "text". */
static size_t content_words(const json_t *content)
{
    size_t n = 0, i;
    json_t *part;

    if (json_is_string(content))
        return mock_count_words(json_string_value(content));
    if (!json_is_array(content))
        return 0;
    json_array_foreach(content, i, part)
    {
        json_t *text = json_object_get(part, "text");
        if (json_is_string(text))
            n += mock_count_words(json_string_value(text));
    }
    return n;
}

static size_t prompt_words(const json_t *root)
{
    json_t *messages = json_object_get(root, "messages");
    json_t *m;
    size_t i, n = content_words(json_object_get(root, "system"));

    json_array_foreach(messages, i, m) n += content_words(json_object_get(m, "content"));
    return n;
}

/* Text of a content value; array parts are joined with "\n". malloc'd. */
static char *content_text(const json_t *content)
{
    size_t i;
    json_t *part;
    char *out = strdup("");

    if (json_is_string(content)) {
        free(out);
        return strdup(json_string_value(content));
    }
    json_array_foreach(content, i, part)
    {
        json_t *text = json_object_get(part, "text");
        char *joined = NULL;
        if (out == NULL || !json_is_string(text))
            continue;
        if (asprintf(&joined, "%s%s%s", out, *out ? "\n" : "", json_string_value(text)) < 0)
            joined = NULL;
        free(out);
        out = joined;
    }
    return out;
}

/* Text of the last message with role "user" ("" if none): its string
 * content or the "text" of its parts (an Anthropic tool_result block has
 * none). malloc'd. */
static char *last_user_text(const json_t *root)
{
    json_t *messages = json_object_get(root, "messages");

    for (size_t i = json_array_size(messages); i > 0; i--) {
        json_t *m = json_array_get(messages, i - 1);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role != NULL && strcmp(role, "user") == 0)
            return content_text(json_object_get(m, "content"));
    }
    return strdup("");
}

/* What the last message of the request is. */
typedef enum last_kind {
    LAST_OTHER,      /* none, or an assistant / system message */
    LAST_USER,       /* a plain user message */
    LAST_TOOL_RESULT /* OpenAI role "tool"; Anthropic a user message with a tool_result block */
} last_kind;

/* First tool_result block of an Anthropic content array, or NULL. */
static json_t *first_tool_result(const json_t *content)
{
    size_t i;
    json_t *part;

    json_array_foreach(content, i, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));
        if (type != NULL && strcmp(type, "tool_result") == 0)
            return part;
    }
    return NULL;
}

/* Classifies the last message; for a tool result stores its text (string
 * content or its text parts joined, "" when it has none) in *result,
 * malloc'd. Returns 0, or -1 on allocation failure. */
static int last_message(const json_t *root, mock_api api, last_kind *kind, char **result)
{
    json_t *messages = json_object_get(root, "messages");
    size_t n = json_array_size(messages);
    json_t *m = n > 0 ? json_array_get(messages, n - 1) : NULL;
    const char *role = json_string_value(json_object_get(m, "role"));
    json_t *content = json_object_get(m, "content");
    json_t *block;

    *kind = LAST_OTHER;
    *result = NULL;
    if (role == NULL)
        return 0;
    if (api == MOCK_OPENAI && strcmp(role, "tool") == 0) {
        *kind = LAST_TOOL_RESULT;
        *result = content_text(content);
    } else if (strcmp(role, "user") != 0) {
        return 0;
    } else if (api == MOCK_ANTHROPIC && (block = first_tool_result(content)) != NULL) {
        *kind = LAST_TOOL_RESULT;
        *result = content_text(json_object_get(block, "content"));
    } else {
        *kind = LAST_USER;
        return 0;
    }
    return *result != NULL ? 0 : -1;
}

/* Name of the first tool (OpenAI tools[0].function.name, Anthropic
 * tools[0].name), or NULL. Borrowed from root. */
static const char *first_tool_name(const json_t *root, mock_api api)
{
    json_t *tool = json_array_get(json_object_get(root, "tools"), 0);

    if (api == MOCK_OPENAI)
        tool = json_object_get(tool, "function");
    return json_string_value(json_object_get(tool, "name"));
}

/* max_tokens as a limit: -1 when absent/null, -2 when invalid. */
static long long max_tokens_of(const json_t *root, mock_api api)
{
    json_t *v = json_object_get(root, "max_tokens");

    if (api == MOCK_OPENAI && (v == NULL || json_is_null(v)))
        v = json_object_get(root, "max_completion_tokens");
    if (v == NULL || json_is_null(v))
        return api == MOCK_ANTHROPIC ? -2 : -1;
    if (!json_is_integer(v) || json_integer_value(v) < (api == MOCK_ANTHROPIC ? 1 : 0))
        return -2;
    return json_integer_value(v);
}

/* ---- completions -------------------------------------------------------- */

/* The parts of a completion request that the answer depends on. */
typedef struct completion {
    json_t *root;
    const char *model;
    long long max_tokens;
    bool stream;
    bool include_usage;
    bool logprobs;         /* OpenAI: "logprobs": true */
    const char *tool_name; /* the first tool's, when tools is a non-empty array */
    last_kind last;        /* what the last message is */
    char *tool_result;     /* its text when it is a tool result, else NULL */
    char *raw_user;        /* last user text, directives included */
    char *cleaned;         /* the same without directives */
    mock_directives d;
} completion;

static void completion_free(completion *c)
{
    json_decref(c->root);
    free(c->tool_result);
    free(c->raw_user);
    free(c->cleaned);
    mock_directives_free(&c->d);
}

/* Parses and validates the body; on a client error returns its message. */
static const char *completion_parse(const request *req, mock_api api, completion *c, bool *oom)
{
    json_t *so;

    memset(c, 0, sizeof(*c));
    *oom = false;
    c->root = json_loadb(req->body ? req->body : "", req->len, 0, NULL);
    if (!json_is_object(c->root))
        return "We could not parse the JSON body of your request.";
    c->model = json_string_value(json_object_get(c->root, "model"));
    if (c->model == NULL)
        return "model: a string is required";
    if (!json_is_array(json_object_get(c->root, "messages")))
        return "messages: an array is required";
    c->max_tokens = max_tokens_of(c->root, api);
    if (c->max_tokens == -2)
        return api == MOCK_ANTHROPIC ? "max_tokens: an integer >= 1 is required"
                                     : "max_tokens: must be a non-negative integer";
    if (json_array_size(json_object_get(c->root, "tools")) > 0) {
        c->tool_name = first_tool_name(c->root, api);
        if (c->tool_name == NULL)
            return api == MOCK_ANTHROPIC ? "tools.0.name: a string is required"
                                         : "tools.0.function.name: a string is required";
    }
    c->stream = json_is_true(json_object_get(c->root, "stream"));
    so = json_object_get(c->root, "stream_options");
    c->include_usage = json_is_true(json_object_get(so, "include_usage"));
    c->logprobs = api == MOCK_OPENAI && json_is_true(json_object_get(c->root, "logprobs"));
    if (last_message(c->root, api, &c->last, &c->tool_result) != 0) {
        *oom = true;
        return NULL;
    }
    c->raw_user = last_user_text(c->root);
    if (c->raw_user == NULL || mock_directives_parse(c->raw_user, &c->d, &c->cleaned) != 0)
        *oom = true;
    return NULL;
}

/* Whether the answer is a call to the first tool rather than text. */
static bool is_tool_call(const completion *c)
{
    return c->tool_name != NULL && c->last == LAST_USER && !c->d.echo_request;
}

/* ARGS of tool call k (1-based): the compact JSON of {"text": cleaned},
 * or with [mock:tool_calls=N] of {"text": cleaned, "n": k}. malloc'd. */
static char *tool_args(const completion *c, size_t k)
{
    json_t *args = c->d.tool_calls > 0 ? json_pack("{s:s,s:I}", "text", c->cleaned, "n", (json_int_t)k)
                                       : json_pack("{s:s}", "text", c->cleaned);
    char *s;

    if (args == NULL)
        return NULL;
    s = json_dumps(args, JSON_COMPACT);
    json_decref(args);
    return s;
}

/* TEXT for a reply that is not a tool call (malloc'd). */
static char *reply_text(const completion *c)
{
    char *text = NULL;
    int n;

    if (c->d.echo_request)
        return json_dumps(c->root, JSON_COMPACT);
    if (c->tool_result != NULL)
        n = asprintf(&text, "mock reply: tool said %s", c->tool_result);
    else
        n = asprintf(&text, "mock reply: %s", c->cleaned);
    return n < 0 ? NULL : text;
}

static stream *stream_new(struct MHD_Connection *conn, const mock_reply *r, const completion *c)
{
    stream *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    if (mock_reply_stream(r, &s->sse) != 0) {
        free(s);
        return NULL;
    }
    s->conn = conn;
    s->drip_ms = c->d.drip_ms;
    s->drop = c->d.drop;
    return s;
}

/* Fills r (text, tool calls, completion tokens) for a tool-call answer;
 * the ARGS go to args[], the text part (if any) to *text, all malloc'd.
 * Returns 0, or -1 on allocation failure (the caller frees what is set). */
static int tool_call_reply(const completion *c, mock_reply *r, char **args, char **text)
{
    r->tool_name = c->tool_name;
    r->n_calls = c->d.tool_calls > 0 ? (size_t)c->d.tool_calls : 1;
    if (c->d.tool_text) {
        if ((*text = strdup(MOCK_TOOL_TEXT)) == NULL)
            return -1;
        r->completion_tokens += mock_count_words(*text);
    }
    for (size_t k = 0; k < r->n_calls; k++) {
        if ((args[k] = tool_args(c, k + 1)) == NULL)
            return -1;
        r->tool_args[k] = args[k];
        r->completion_tokens += mock_count_words(args[k]);
    }
    return 0;
}

/* Fills p with the successful answer for c. */
static plan *completion_answer(plan *p, struct MHD_Connection *conn, const completion *c)
{
    char id[48];
    char *text = NULL;
    char *args[MOCK_MAX_TOOL_CALLS] = {NULL};
    mock_reply r = {
        .api = p->api,
        .id = id,
        .model = c->model,
        .created = (long long)time(NULL),
        .include_usage = c->include_usage,
        .logprobs = c->logprobs,
        .no_usage = c->d.no_usage,
        .bad_types = c->d.bad_types,
        .malformed = c->d.malformed,
    };

    snprintf(id, sizeof(id), "%smock%012llx", p->api == MOCK_OPENAI ? "chatcmpl-" : "msg_", p->seq);
    r.prompt_tokens = prompt_words(c->root);
    if (is_tool_call(c)) {
        if (tool_call_reply(c, &r, args, &text) != 0)
            goto fail;
    } else {
        if ((text = reply_text(c)) == NULL)
            goto fail;
        r.completion_tokens = mock_count_words(text);
        if (c->max_tokens >= 0 && (unsigned long long)c->max_tokens < r.completion_tokens) {
            mock_truncate_words(text, (size_t)c->max_tokens);
            r.completion_tokens = (size_t)c->max_tokens;
            r.truncated = true;
        }
    }
    r.text = text;
    if (c->stream) {
        p->strm = stream_new(conn, &r, c);
        if (p->strm == NULL)
            goto fail;
    } else {
        p->body = mock_reply_body(&r);
        if (p->body == NULL)
            goto fail;
    }
    goto out;
fail:
    plan_free(p);
    p = NULL;
out:
    for (size_t k = 0; k < MOCK_MAX_TOOL_CALLS; k++)
        free(args[k]);
    free(text);
    return p;
}

static plan *completion_plan(const mock_config *cfg, const request *req, struct MHD_Connection *conn, mock_api api)
{
    plan *p = plan_new(api, cfg->latency_ms);
    completion c;
    const char *bad;
    bool oom = false;

    memset(&c, 0, sizeof(c));
    if (p == NULL)
        return NULL;
    if (!auth_ok(conn, cfg->require_key, api == MOCK_OPENAI, api == MOCK_ANTHROPIC)) {
        p = plan_error(p, 401, api == MOCK_OPENAI ? "Incorrect API key provided." : "invalid x-api-key");
        goto out;
    }
    if (api == MOCK_ANTHROPIC && MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "anthropic-version") == NULL) {
        p = plan_error(p, 400, "anthropic-version: header is required");
        goto out;
    }
    if (req->too_large) {
        p = plan_error(p, 413, NULL);
        goto out;
    }
    bad = completion_parse(req, api, &c, &oom);
    if (oom) {
        plan_free(p);
        p = NULL;
        goto out;
    }
    if (bad != NULL) {
        p = plan_error(p, 400, bad);
        goto out;
    }
    if (c.d.latency_ms >= 0)
        p->delay_ms = (uint64_t)c.d.latency_ms;
    p->retry_after = c.d.retry_after;
    if (c.d.drop && !c.stream)
        p->drop = true;
    else if (c.d.fail_model != NULL && strcmp(c.d.fail_model, c.model) == 0)
        p = plan_error(p, 500, "mock: this model is configured to fail");
    else if (c.d.fail_times > 0 && mock_fail_times_hit(c.raw_user, c.d.fail_times))
        p = plan_error(p, 500, NULL);
    else if (c.d.status >= 400) {
        p = plan_error(p, (unsigned)c.d.status, NULL);
        if (p != NULL && (c.d.error_message || c.d.error_type || c.d.error_code || c.d.error_param)) {
            free(p->body);
            p->body = mock_error_body_with(p->api, p->status, c.d.error_message, c.d.error_type, c.d.error_code,
                                           c.d.error_param);
            if (p->body == NULL) {
                plan_free(p);
                p = NULL;
            }
        }
    } else
        p = completion_answer(p, conn, &c);
    if (p != NULL && p->status >= 400 && c.d.error_latency_ms >= 0)
        p->delay_ms = (uint64_t)c.d.error_latency_ms;
out:
    completion_free(&c);
    return p;
}

static plan *make_plan(const mock_config *cfg, request *req, struct MHD_Connection *conn)
{
    plan *p;
    char *msg = NULL;
    bool bad_method;
    mock_api api;

    switch (req->route) {
    case ROUTE_OPENAI: return completion_plan(cfg, req, conn, MOCK_OPENAI);
    case ROUTE_ANTHROPIC: return completion_plan(cfg, req, conn, MOCK_ANTHROPIC);
    case ROUTE_MODELS:
        if ((p = plan_new(MOCK_OPENAI, cfg->latency_ms)) == NULL)
            return NULL;
        if (!auth_ok(conn, cfg->require_key, true, true))
            return plan_error(p, 401, NULL);
        return plan_body(p, models_body());
    case ROUTE_STATS:
        if ((p = plan_new(MOCK_OPENAI, 0)) == NULL)
            return NULL;
        return plan_body(p, mock_stats_json());
    case ROUTE_RESET:
        if ((p = plan_new(MOCK_OPENAI, 0)) == NULL)
            return NULL;
        mock_stats_reset();
        return plan_body(p, mock_stats_json());
    default: break;
    }
    bad_method = req->route == ROUTE_BAD_METHOD;
    api = strstr(req->what, " /v1/messages") != NULL ? MOCK_ANTHROPIC : MOCK_OPENAI;
    if ((p = plan_new(api, 0)) == NULL)
        return NULL;
    if (asprintf(&msg, "%s: %s", bad_method ? "Method not allowed" : "Unknown request URL", req->what) < 0) {
        plan_free(p);
        return NULL;
    }
    p = plan_error(p, bad_method ? 405 : 404, msg);
    free(msg);
    return p;
}

/* ---- streaming ---------------------------------------------------------- */

/* MHD content reader: copies events, waiting (suspended) between drip
 * pieces and failing the connection after the first piece for drop. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream *s = cls;
    size_t n = 0;

    (void)pos;
    while (n < max && s->idx < s->sse.n) {
        bool piece = s->sse.piece[s->idx];
        if (s->off == 0 && s->drop && s->piece_sent) {
            if (n > 0)
                break;
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (s->off == 0 && piece && s->piece_sent && s->drip_ms > 0 && mock_now_ms() < s->next_due) {
            if (n > 0)
                break;
            if (mock_timer_suspend(s->conn, s->next_due) != 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            return 0;
        }
        size_t left = s->sse.len[s->idx] - s->off;
        size_t k = left < max - n ? left : max - n;
        memcpy(buf + n, s->sse.ev[s->idx] + s->off, k);
        n += k;
        s->off += k;
        if (s->off == s->sse.len[s->idx]) {
            s->idx++;
            s->off = 0;
            if (piece) {
                s->piece_sent = true;
                if (s->drip_ms > 0)
                    s->next_due = mock_now_ms() + (uint64_t)s->drip_ms;
            }
        }
    }
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    return (ssize_t)n;
}

/* ---- answering ---------------------------------------------------------- */

static enum MHD_Result add_headers(struct MHD_Response *resp, const plan *p, bool sse)
{
    char ra[24];

    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                sse ? "text/event-stream; charset=utf-8" : "application/json") != MHD_YES)
        return MHD_NO;
    if (sse && MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES)
        return MHD_NO;
    if (MHD_add_response_header(resp, p->api == MOCK_OPENAI ? "x-request-id" : "request-id", p->request_id) != MHD_YES)
        return MHD_NO;
    if (p->retry_after >= 0 && p->status >= 400) {
        snprintf(ra, sizeof(ra), "%ld", p->retry_after);
        if (MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra) != MHD_YES)
            return MHD_NO;
    }
    return MHD_YES;
}

static enum MHD_Result answer(const mock_config *cfg, request *req, struct MHD_Connection *conn)
{
    plan *p = req->plan;
    struct MHD_Response *resp;
    bool sse = p->strm != NULL;
    enum MHD_Result rc = MHD_NO;

    if (cfg->verbose)
        fprintf(stderr, "mock_llm: %s -> %s%u%s\n", req->what, p->drop ? "drop " : "", p->status,
                sse ? " (stream)" : "");
    if (p->drop)
        return MHD_NO;
    if (!sse && p->body == NULL)
        return MHD_NO; /* called again after queueing: MHD_queue_response() says MHD_YES but
                          queues nothing while the daemon shuts down; just close */
    if (sse)
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, p->strm, stream_free);
    else
        resp = MHD_create_response_from_buffer(strlen(p->body), p->body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL)
        return MHD_NO;
    if (sse)
        p->strm = NULL; /* the response owns it now */
    else
        p->body = NULL;
    if (add_headers(resp, p, sse) == MHD_YES)
        rc = MHD_queue_response(conn, p->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result mock_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                            const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    const mock_config *cfg = cls;
    request *req = *con_cls;

    (void)version;
    if (req == NULL) { /* first call: state only; answering now would force Connection: close */
        req = request_new(url, method);
        *con_cls = req;
        return req != NULL ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size > 0) {
        int rc = request_append(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return rc == 0 ? MHD_YES : MHD_NO;
    }
    if (req->plan == NULL) {
        req->plan = make_plan(cfg, req, conn);
        if (req->plan == NULL)
            return MHD_NO;
        if (req->plan->delay_ms > 0) /* resumed by mock_timer.c, then called again */
            return mock_timer_suspend(conn, mock_now_ms() + req->plan->delay_ms) == 0 ? MHD_YES : MHD_NO;
    }
    return answer(cfg, req, conn);
}

void mock_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    request *req = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (req == NULL)
        return;
    if (req->counted)
        mock_stats_end();
    request_free(req);
    *con_cls = NULL;
}
